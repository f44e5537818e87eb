//! What language bindings build on: commands sent as text (and restored after a reconnect), a
//! stream that holds reading back instead of skipping, shared request numbering, checking
//! options before connecting.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use letta_app_server_client::types::{ExternalToolDefinition, RuntimeScope};
use letta_app_server_client::{Client, Error, Gap, RawEvents, Transport};
use serde_json::{Value, json};

use crate::support::{Connect, TestServer, collect, new_runtime, tool_returns};

/// The next item of a raw stream, failing the test after [`crate::support::WAIT`].
async fn next_raw(events: &mut RawEvents) -> Result<Value, Gap> {
    tokio::time::timeout(crate::support::WAIT, events.next())
        .await
        .expect("a frame in time")
        .expect("the stream goes on")
        .map(|frame| frame.json())
}

/// Reads a raw stream until a frame of `frame_type`, returning it.
async fn until(events: &mut RawEvents, frame_type: &str) -> Value {
    loop {
        let frame = next_raw(events).await.expect("no gap");
        if frame["type"] == frame_type {
            return frame;
        }
    }
}

#[tokio::test]
async fn a_paced_stream_holds_reading_back_and_never_skips() {
    let server = TestServer::start().await;
    let client = server.rust_client(Transport::Single).await;
    let runtime = new_runtime(&client, "Paced").await;
    let mut paced = client.raw_events_paced(16);
    let input = json!({"type": "input", "request_id": "in-paced", "runtime": runtime,
        "payload": {"kind": "create_message", "messages": [{"role": "user", "content": "[[deltas: 2000]]"}]}});
    client.send_text(input.to_string()).await.unwrap();

    // Nobody reads the paced stream: once it is full the client stops reading, so even a
    // command's answer waits.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let info = client.with_timeout(Duration::from_millis(300)).app_server_info().await;
    assert!(matches!(info, Err(Error::Timeout { .. })), "{info:?}");

    let mut deltas = 0;
    loop {
        let frame = next_raw(&mut paced).await.expect("a paced stream never skips");
        if frame["delta"]["message_type"] == "assistant_message" {
            deltas += 1;
        }
        if frame["type"] == "turn_finished" {
            break;
        }
    }
    assert_eq!(deltas, 2000);
    client.app_server_info().await.unwrap();
    client.close().await;
}

#[tokio::test]
async fn commands_sent_as_text_are_restored_after_a_reconnect() {
    let server = TestServer::start_with(|config| config.max_frame_bytes = 4096).await;
    let owner = server.rust_client(Transport::Single).await;
    let synced = new_runtime(&owner, "Synced as text").await;

    let client = server.builder(Transport::Single).connect().await.unwrap();
    client.on_external_tool_call(|call| async move { Ok::<_, String>(format!("echo {}", call.input["word"])) });
    let mut events = client.raw_events(None);
    let tool = ExternalToolDefinition::new("echo_tool", "Echoes", json!({"type": "object"}));
    let start = json!({"type": "runtime_start", "request_id": "text-start",
        "create_agent": {"body": {"name": "Started as text"}}, "external_tools": [{"tools": [tool]}]});
    client.send_text(start.to_string()).await.unwrap();
    let started = until(&mut events, "runtime_start_response").await;
    let runtime: RuntimeScope = serde_json::from_value(started["runtime"].clone()).unwrap();
    let sync = json!({"type": "sync", "request_id": "text-sync", "runtime": synced});
    client.send_text(sync.to_string()).await.unwrap();
    until(&mut events, "sync_response").await;

    // A frame over the server's limit makes it close the socket; the client reconnects.
    client
        .send_text(json!({"type": "pong", "padding": "x".repeat(8192)}).to_string())
        .await
        .unwrap();
    // The subscriptions sent as text asked for a resumable stream too: they resume, and the
    // streams miss nothing.
    while !matches!(next_raw(&mut events).await, Err(Gap::Interrupted { .. })) {}
    let (mut restored, mut resumed) = (Vec::new(), false);
    while restored.len() < 2 {
        match next_raw(&mut events).await {
            Ok(frame) if frame["type"] == "runtime_start_response" || frame["type"] == "sync_response" => {
                assert_eq!(frame["resume"]["resumed"], true, "{frame}");
                restored.push(frame["runtime"].clone());
            }
            Ok(_) => {}
            Err(Gap::Resumed) => resumed = true,
            Err(gap) => panic!("{gap:?}"),
        }
    }
    assert!(resumed, "told once both answered that they resumed");
    let expected = [
        serde_json::to_value(&runtime).unwrap(),
        serde_json::to_value(&synced).unwrap(),
    ];
    assert!(expected.iter().all(|scope| restored.contains(scope)), "{restored:?}");

    // The tool registered by the text runtime_start was registered again.
    let call = r#"[[tool: echo_tool {"word":"again"}]]"#;
    let frames = collect(client.send_message(&runtime, call).await.unwrap()).await;
    assert_eq!(tool_returns(&frames), [r#"echo "again""#]);
    owner.close().await;
    client.close().await;
}

#[tokio::test]
async fn a_refused_text_command_is_not_restored() {
    let server = TestServer::start_with(|config| config.max_frame_bytes = 4096).await;
    let client = server.builder(Transport::Single).connect().await.unwrap();
    let mut events = client.raw_events(None);
    let unknown = json!({"type": "sync", "request_id": "no-such", "runtime": {"agent_id": "agent-x", "conversation_id": "conv-x"}});
    client.send_text(unknown.to_string()).await.unwrap();
    assert_eq!(until(&mut events, "error").await["code"], "unknown_runtime");
    client
        .send_text(json!({"type": "pong", "padding": "x".repeat(8192)}).to_string())
        .await
        .unwrap();
    while next_raw(&mut events).await != Err(Gap::Reconnected) {}
    // Nothing is replayed: the next frame is the answer to a fresh command.
    client
        .send_text(json!({"type": "app_server_info", "request_id": "after"}).to_string())
        .await
        .unwrap();
    assert_eq!(next_raw(&mut events).await.unwrap()["type"], "app_server_info_response");
    client.close().await;
}

#[tokio::test]
async fn a_stream_from_connect_paced_misses_not_even_the_first_frame() {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;

    // A server that speaks first, as soon as the socket opens.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let mut socket = tokio_tungstenite::accept_async(stream).await.unwrap();
        socket.send(Message::text(r#"{"type":"hello_first"}"#)).await.unwrap();
        // Keep the socket open until the client goes.
        while let Some(Ok(_)) = futures_util::StreamExt::next(&mut socket).await {}
    });
    let (client, mut events) = Client::builder(&format!("ws://{addr}")).connect_paced(4).await.unwrap();
    assert_eq!(next_raw(&mut events).await.unwrap()["type"], "hello_first");
    client.close().await;
}

#[tokio::test]
async fn request_ids_come_from_a_shared_counter() {
    let server = TestServer::start().await;
    let counter = Arc::new(AtomicU64::new(41));
    let client = Client::builder(&server.url(""))
        .request_numbers(Arc::clone(&counter))
        .connect()
        .await
        .unwrap();
    assert_eq!(client.next_request_id("x"), "x-41");
    assert_eq!(counter.load(Ordering::Relaxed), 42);
    client.close().await;
}

#[test]
fn options_are_checked_without_connecting() {
    assert!(Client::builder("ws://127.0.0.1:1").validate().is_ok());
    let scheme = Client::builder("ftp://h/").validate().unwrap_err();
    assert!(
        matches!(&scheme, Error::InvalidUrl { reason, .. } if reason == "Unsupported app-server URL protocol: ftp:"),
        "{scheme:?}"
    );
    let token = Client::builder("ws://h:1").token(" ").validate().unwrap_err();
    assert!(
        matches!(&token, Error::InvalidUrl { reason, .. } if reason == "app-server auth token must not be empty"),
        "{token:?}"
    );
}
