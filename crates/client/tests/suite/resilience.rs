//! What the client does when things go wrong: timeouts, refused commands, frames it does not
//! know, slow consumers, dropped sockets, server restarts, closing.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use letta_app_server_client::types::{
    ApprovalDecision, DevicePermissionMode, ExternalToolDefinition, ListMemory, RuntimeScope, RuntimeStart, ServerFrame,
};
use letta_app_server_client::{Client, Error, Frame, Gap, Transport, Turn};
use serde_json::json;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

use crate::support::{Connect, TestServer, assistant_text, collect, frames_until, new_runtime, next, tool_returns};

#[tokio::test]
async fn a_command_without_an_answer_times_out() {
    let server = TestServer::start().await;
    let client = server.rust_client(Transport::Single).await;
    // The server ignores `pong`, so nothing answers this request id.
    let error = client
        .with_timeout(Duration::from_millis(100))
        .request(&json!({"type": "pong", "request_id": "p-1"}), "p-1")
        .await
        .unwrap_err();
    assert_eq!(
        error,
        Error::Timeout {
            request_id: "p-1".into(),
            after: Duration::from_millis(100)
        }
    );
    assert_eq!(error.to_string(), "timed out after 100ms waiting for the answer to p-1");
    // The client is still usable.
    client.app_server_info().await.unwrap();
}

#[tokio::test]
async fn the_servers_error_frame_is_a_typed_error() {
    let server = TestServer::start().await;
    let client = server.rust_client(Transport::Single).await;
    let error = client
        .request(&json!({"type": "teleport", "request_id": "t-1"}), "t-1")
        .await
        .unwrap_err();
    let Error::Server {
        request_id,
        code,
        message,
    } = &error
    else {
        panic!("{error:?}");
    };
    assert_eq!((request_id.as_deref(), code.as_str()), (Some("t-1"), "unknown_type"));
    assert!(message.contains("teleport"), "{message}");

    let not_a_command = json!({"type": "pong"}).as_object().unwrap().clone();
    let error = client.command(not_a_command).await.unwrap_err();
    assert!(
        matches!(&error, Error::Protocol { message } if message.contains("not a command with an answer")),
        "{error:?}"
    );

    let nowhere = RuntimeScope::new("agent-missing", "conv-missing");
    let error = client.abort(&nowhere).await.unwrap_err();
    assert!(
        matches!(&error, Error::Server { code, .. } if code == "unknown_runtime"),
        "{error:?}"
    );

    let error = client
        .runtime_start(RuntimeStart {
            agent_id: Some("agent-missing".into()),
            ..RuntimeStart::default()
        })
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::Rejected { frame_type, .. } if frame_type == "runtime_start_response"),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_command_the_server_does_not_implement_fails_at_once() {
    let server = TestServer::start().await;
    // Far below any wait: the refusal must not be a timeout.
    let client = server
        .rust_client(Transport::Single)
        .await
        .with_timeout(Duration::from_secs(5));
    let list = json!({"type": "channels_list"});
    let error = client.command(list.as_object().unwrap().clone()).await.unwrap_err();
    assert!(
        matches!(&error, Error::Rejected { request_id, frame_type, message }
            if request_id == "channels-list-1"
                && frame_type == "channels_list_response"
                && message == "this server does not support `channels_list` yet"),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_streamed_command_and_one_with_an_error_object_fail_at_once_too() {
    let server = TestServer::start().await;
    let client = server
        .rust_client(Transport::Single)
        .await
        .with_timeout(Duration::from_secs(5));
    // `list_memory` is answered in chunks until `done: true`; its refusal (an unknown agent) is
    // that last chunk, which ends the stream with the refusal, and a one-answer `command` will
    // not send it.
    let list = json!({"type": "list_memory", "agent_id": "agent-1"});
    let one = client.command(list.as_object().unwrap().clone()).await.unwrap_err();
    assert!(matches!(&one, Error::Protocol { .. }), "{one:?}");
    let typed: ListMemory = serde_json::from_value(json!({"type": "list_memory", "request_id": "",
        "agent_id": "agent-1"}))
    .unwrap();
    let mut chunks = client.call_stream(&typed).await.unwrap();
    let error = chunks.next().await.expect("the refusal").unwrap_err();
    assert!(chunks.next().await.is_none(), "the refusal ends the stream");
    assert!(
        matches!(&error, Error::Rejected { request_id, frame_type, message }
            if request_id.starts_with("list-memory-")
                && frame_type == "list_memory_response"
                && message == "Agent agent-1 not found"),
        "{error:?}"
    );
    // `chatgpt_usage_read_response.error` is an object; its `message` is the refusal's.
    let usage = json!({"type": "chatgpt_usage_read", "target": "local"});
    let error = client.command(usage.as_object().unwrap().clone()).await.unwrap_err();
    assert!(
        matches!(&error, Error::Rejected { frame_type, message, .. }
            if frame_type == "chatgpt_usage_read_response"
                && message == "this server does not support `chatgpt_usage_read` yet"),
        "{error:?}"
    );
}

#[tokio::test]
async fn connect_failures_say_what_happened() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closed_port = listener.local_addr().unwrap();
    drop(listener);
    let refused = Client::connect(&format!("ws://{closed_port}")).await.err().unwrap();
    assert!(matches!(refused, Error::Connect { .. }), "{refused:?}");

    let server = TestServer::start().await;
    let wrong_path = Client::connect(&format!("{}/elsewhere", server.url("")))
        .await
        .err()
        .unwrap();
    assert!(
        matches!(&wrong_path, Error::Connect { message, .. } if message.contains("HTTP 404")),
        "{wrong_path:?}"
    );
    let bad_url = Client::connect("ftp://127.0.0.1:1").await.err().unwrap();
    assert!(matches!(bad_url, Error::InvalidUrl { .. }));
    let blank_token = Client::builder(&server.url(""))
        .token(" ")
        .connect()
        .await
        .err()
        .unwrap();
    assert!(blank_token.to_string().contains("must not be empty"), "{blank_token}");
}

/// A server that answers `app_server_info`, then sends frames a newer server might send.
#[tokio::test]
async fn frames_and_deltas_from_a_newer_server_pass_through() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let scope = json!({"agent_id": "agent-1", "conversation_id": "conv-1"});
    let envelope = |seq: u64| {
        json!({"runtime": scope, "event_seq": seq, "emitted_at": "2026-12-01T00:00:00.000Z",
               "idempotency_key": format!("x:{seq}:k")})
    };
    let mut unknown_frame = json!({"type": "hologram_ready", "resolution": 8});
    let mut unknown_delta = json!({"type": "stream_delta", "delta": {"message_type": "hologram_delta", "z": 1}});
    let mut known = json!({"type": "update_subagent_state", "subagents": []});
    for (seq, frame) in [&mut unknown_frame, &mut unknown_delta, &mut known]
        .into_iter()
        .enumerate()
    {
        frame
            .as_object_mut()
            .unwrap()
            .extend(envelope(seq as u64 + 1).as_object().unwrap().clone());
    }
    let frames = [unknown_frame.clone(), unknown_delta.clone(), known.clone()];
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let mut socket = tokio_tungstenite::accept_async(stream).await.unwrap();
        while let Some(Ok(Message::Text(text))) = socket.next().await {
            let request: serde_json::Value = serde_json::from_str(&text).unwrap();
            let info = json!({"type": "app_server_info_response", "request_id": request["request_id"],
                "success": true, "backend": "local", "letta_code_version": "9.9.9", "protocol_version": 1,
                "capabilities": {"agent_management": true, "conversation_management": true,
                    "memory_management": true, "runtime_start": true, "split_channels": false,
                    "hologram_support": true}});
            socket.send(Message::text(info.to_string())).await.unwrap();
            for frame in &frames {
                socket.send(Message::text(frame.to_string())).await.unwrap();
            }
        }
    });

    let client = Client::connect(&format!("ws://{addr}")).await.unwrap();
    let mut events = client.events();
    let info = client.app_server_info().await.unwrap();
    assert_eq!(info.letta_code_version, "9.9.9");
    // The typed answer keeps the fields this version knows; `command` returns the frame whole.
    let command = json!({"type": "app_server_info"}).as_object().unwrap().clone();
    let whole = client.command(command).await.unwrap();
    assert_eq!(whole.request_id(), Some("app-server-info-2"));
    assert_eq!(whole.json()["capabilities"]["hologram_support"], true);
    let received: Vec<Frame> = frames_until(&mut events, |f| f.frame_type() == "update_subagent_state").await;
    let [response, hologram, delta, subagents] = &received[..4] else {
        panic!("{received:?}");
    };
    assert!(matches!(
        response.typed,
        Some(ServerFrame::AppServerInfoResponse { .. })
    ));
    assert_eq!(
        (hologram.frame_type(), hologram.typed.is_none()),
        ("hologram_ready", true)
    );
    assert_eq!(hologram.raw.json(), unknown_frame);
    assert_eq!((delta.frame_type(), delta.typed.is_none()), ("stream_delta", true));
    assert_eq!(delta.runtime(), Some(&RuntimeScope::new("agent-1", "conv-1")));
    assert_eq!(delta.raw.json(), unknown_delta);
    assert!(matches!(subagents.typed, Some(ServerFrame::UpdateSubagentState { .. })));
    client.close().await;
}

#[tokio::test]
async fn a_stream_that_stops_reading_skips_and_says_so_without_holding_anything_up() {
    let server = TestServer::start().await;
    let client = server.rust_client(Transport::Single).await;
    let runtime = new_runtime(&client, "Slow reader").await;
    let mut idle = client.events_with_capacity(8);
    // Another stream and the commands carry on while `idle` is full.
    let frames = collect(client.send_message(&runtime, "[[deltas: 100]]").await.unwrap()).await;
    assert_eq!(frames.last().unwrap().frame_type(), "turn_finished");
    client.app_server_info().await.unwrap();

    let mut received = 0;
    let missed = loop {
        match next(&mut idle).await {
            Ok(_) => received += 1,
            Err(Gap::Lagged { missed }) => break missed,
            Err(other) => panic!("{other:?}"),
        }
    };
    assert_eq!(received, 8);
    assert!(missed > 100, "{missed}");
    // After the gap the stream goes on with what comes next.
    client.app_server_info().await.unwrap();
    let after = next(&mut idle).await.unwrap();
    assert_eq!(after.frame_type(), "app_server_info_response");
    client.close().await;
}

#[tokio::test]
async fn closing_fails_pending_commands_and_ends_streams() {
    let server = TestServer::start().await;
    let client = server.rust_client(Transport::Single).await;
    let mut events = client.events();
    let waiting = {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .request(&json!({"type": "pong", "request_id": "p-9"}), "p-9")
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    client.close().await;
    assert_eq!(waiting.await.unwrap().unwrap_err(), Error::Closed);
    assert!(events.next().await.is_none());
    assert_eq!(client.app_server_info().await.unwrap_err(), Error::Closed);
}

#[tokio::test]
async fn without_reconnect_a_lost_connection_ends_the_client() {
    let mut server = TestServer::start().await;
    let client = server.rust_client(Transport::Single).await;
    let mut events = client.events();
    server.stop().await;
    assert!(matches!(next(&mut events).await, Err(Gap::Disconnected { .. })));
    assert!(events.next().await.is_none());
    let error = client.app_server_info().await.unwrap_err();
    assert!(matches!(error, Error::Disconnected { .. }), "{error:?}");
}

#[tokio::test]
async fn after_the_server_drops_the_socket_the_client_restores_runtimes_and_tools() {
    for transport in [Transport::Single, Transport::Split] {
        let server = TestServer::start_with(|config| config.max_frame_bytes = 4096).await;
        let client = server.replaying(transport).connect().await.unwrap();
        client.register_external_tool(
            ExternalToolDefinition::new("echo_tool", "Echoes", json!({"type": "object"})),
            |call| async move { Ok::<_, String>(format!("echo {}", call.input["word"])) },
        );
        let runtime = new_runtime(&client, "Reconnecting").await;
        let mut events = client.events();

        // A frame over the server's limit: the server answers with an error frame and closes
        // the socket with 1009.
        client
            .send(&json!({"type": "pong", "padding": "x".repeat(8192)}))
            .await
            .unwrap();
        let refused = next(&mut events).await.unwrap();
        assert_eq!(refused.raw.json()["code"], "frame_too_large");
        let dropped = next(&mut events).await;
        assert!(
            matches!(&dropped, Err(Gap::Disconnected { reason }) if reason.contains("1009")),
            "{transport:?}: {dropped:?}"
        );
        assert_eq!(next(&mut events).await.unwrap_err(), Gap::Reconnected);
        // The runtime_start is re-run: its response and replay follow.
        let replay = frames_until(&mut events, |f| f.frame_type() == "update_subagent_state").await;
        assert_eq!(replay[0].frame_type(), "runtime_start_response");

        // The runtime works, and so does the tool: it was registered again.
        let frames = collect(
            client
                .send_message(&runtime, r#"[[tool: echo_tool {"word":"again"}]]"#)
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(tool_returns(&frames), [r#"echo "again""#], "{transport:?}");
        client.close().await;
    }
}

#[tokio::test]
async fn after_a_server_restart_the_client_resumes_the_conversation() {
    let mut server = TestServer::start().await;
    let client = server.replaying(Transport::Single).connect().await.unwrap();
    let runtime = new_runtime(&client, "Durable").await;
    collect(client.send_message(&runtime, "[[reply: before]]").await.unwrap()).await;
    let mut events = client.events();

    server.restart().await;
    assert!(matches!(next(&mut events).await, Err(Gap::Disconnected { .. })));
    assert!(matches!(next(&mut events).await, Err(Gap::Reconnected)));
    let replay = frames_until(&mut events, |f| f.frame_type() == "update_subagent_state").await;
    let response = replay[0].raw.json();
    assert_eq!(response["created"], json!({"agent": false, "conversation": false}));

    let frames = collect(client.send_message(&runtime, "[[reply: after]]").await.unwrap()).await;
    assert_eq!(assistant_text(&frames), "after");
    client.close().await;
}

#[tokio::test]
async fn replayed_approvals_are_delivered_once_per_connection() {
    let server = TestServer::start_with(|config| config.max_frame_bytes = 4096).await;
    let client = server.replaying(Transport::Single).connect().await.unwrap();
    let runtime = new_runtime(&client, "Approvals").await;
    // A second watcher keeps the turn (and its approval) alive while the first reconnects.
    let watcher = server.rust_client(Transport::Single).await;
    watcher.runtime_start(RuntimeStart::join(&runtime)).await.unwrap();
    let mut strict = RuntimeStart::join(&runtime);
    strict.mode = Some(DevicePermissionMode::Strict);
    client.runtime_start(strict).await.unwrap();
    let mut events = client.runtime_events(&runtime);
    let mut turn = client
        .send_message(&runtime, r#"[[tool: Bash {"command":"echo once"}]]"#)
        .await
        .unwrap();
    let asked = frames_until(&mut turn, |f| f.frame_type() == "control_request").await;
    let request_id = asked.last().unwrap().raw.request_id().unwrap().to_owned();
    frames_until(&mut events, |f| f.frame_type() == "control_request").await;

    // `sync` replays the pending approval; the stream does not see it twice, and the device
    // status still lists it.
    client.sync(&runtime).await.unwrap();
    let replay = frames_until(&mut events, |f| f.frame_type() == "sync_response").await;
    assert!(replay.iter().all(|f| f.frame_type() != "control_request"), "{replay:?}");
    let device = replay
        .iter()
        .find(|f| f.frame_type() == "update_device_status")
        .unwrap()
        .raw
        .json();
    assert_eq!(
        device["device_status"]["pending_control_requests"][0]["request_id"],
        request_id
    );

    // After a reconnect, which replays it on connect and on runtime_start, the stream gets it
    // once more: what the new connection says is pending.
    client
        .send(&json!({"type": "pong", "padding": "x".repeat(8192)}))
        .await
        .unwrap();
    assert!(matches!(next(&mut events).await, Err(Gap::Disconnected { .. })));
    assert!(matches!(next(&mut events).await, Err(Gap::Reconnected)));
    let after = frames_until(&mut events, |f| f.frame_type() == "update_subagent_state").await;
    assert!(
        after.iter().any(|f| f.frame_type() == "runtime_start_response"),
        "{after:?}"
    );
    let asked_again: Vec<_> = after
        .iter()
        .filter(|f| f.frame_type() == "control_request")
        .map(|f| f.raw.request_id())
        .collect();
    assert_eq!(asked_again, [Some(request_id.as_str())], "{after:?}");
    let pending = client.pending_approvals(Some(&runtime));
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert_eq!(pending[0].raw.request_id(), Some(request_id.as_str()));

    client
        .answer_approval(&runtime, &request_id, ApprovalDecision::allow())
        .await
        .unwrap();
    let done = frames_until(&mut events, |f| f.frame_type() == "turn_finished").await;
    assert_eq!(tool_returns(&done), ["once\n"]);
    client.close().await;
    watcher.close().await;
}

/// Starts a runtime of `client` in `strict` mode and a turn that stops at an approval; returns
/// the runtime, the approval's `request_id` and the turn, once nothing more comes until the
/// approval is answered.
async fn ask_for_approval(client: &Client, name: &str) -> (RuntimeScope, String, Turn) {
    let runtime = new_runtime(client, name).await;
    let mut strict = RuntimeStart::join(&runtime);
    strict.mode = Some(DevicePermissionMode::Strict);
    client.runtime_start(strict).await.expect("the mode is set");
    let mut turn = client
        .send_message(&runtime, r#"[[tool: Bash {"command":"echo hi","description":"x"}]]"#)
        .await
        .expect("the turn starts");
    let asked = frames_until(&mut turn, |f| f.frame_type() == "control_request").await;
    let request_id = asked
        .last()
        .and_then(|f| f.raw.request_id())
        .expect("an approval id")
        .to_owned();
    // The statuses that follow the question.
    frames_until(&mut turn, |f| f.frame_type() == "update_device_status").await;
    (runtime, request_id, turn)
}

#[tokio::test]
async fn a_stream_made_after_an_approval_arrived_still_sees_it_once() {
    let server = TestServer::start().await;
    let client = server.rust_client(Transport::Single).await;
    let (runtime, request_id, turn) = ask_for_approval(&client, "Late stream").await;

    let pending = client.pending_approvals(None);
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert_eq!(pending[0].raw.request_id(), Some(request_id.as_str()));
    let mut late = client.events();
    let first = next(&mut late).await.unwrap();
    assert_eq!(
        (first.frame_type(), first.raw.request_id()),
        ("control_request", Some(request_id.as_str()))
    );
    client.sync(&runtime).await.unwrap();
    let replay = frames_until(&mut late, |f| f.frame_type() == "sync_response").await;
    assert!(replay.iter().all(|f| f.frame_type() != "control_request"), "{replay:?}");

    client
        .answer_approval(&runtime, &request_id, ApprovalDecision::allow())
        .await
        .unwrap();
    let done = frames_until(&mut late, |f| f.frame_type() == "turn_finished").await;
    assert!(done.iter().all(|f| f.frame_type() != "control_request"), "{done:?}");
    assert_eq!(tool_returns(&collect(turn).await), ["hi\n"]);

    // Answered: a stream made now starts with what comes next.
    assert!(client.pending_approvals(Some(&runtime)).is_empty());
    let mut after = client.runtime_events(&runtime);
    client.sync(&runtime).await.unwrap();
    let replay = frames_until(&mut after, |f| f.frame_type() == "sync_response").await;
    assert!(replay.iter().all(|f| f.frame_type() != "control_request"), "{replay:?}");
    client.close().await;
}

#[tokio::test]
async fn a_replayed_approval_reaches_a_stream_that_skipped_it() {
    let server = TestServer::start().await;
    let client = server.rust_client(Transport::Single).await;
    // Room for one frame: it keeps the turn's first and skips the rest, the approval included.
    let mut small = client.events_with_capacity(1);
    let (runtime, request_id, turn) = ask_for_approval(&client, "Skipped").await;
    assert!(next(&mut small).await.is_ok());
    assert!(matches!(next(&mut small).await, Err(Gap::Lagged { .. })));

    // `sync` replays it, and this stream, which never had it, gets it.
    client.sync(&runtime).await.unwrap();
    let replayed = next(&mut small).await.unwrap();
    assert_eq!(
        (replayed.frame_type(), replayed.raw.request_id()),
        ("control_request", Some(request_id.as_str()))
    );
    client
        .answer_approval(&runtime, &request_id, ApprovalDecision::allow())
        .await
        .unwrap();
    assert_eq!(tool_returns(&collect(turn).await), ["hi\n"]);
    client.close().await;
}

#[tokio::test]
#[allow(clippy::result_large_err)] // the handshake callback's signature is tungstenite's
async fn the_token_goes_in_the_upgrade_and_another_protocol_version_is_a_mismatch() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (seen_tx, seen) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let mut authorization = None;
        let mut socket = tokio_tungstenite::accept_hdr_async(
            stream,
            |request: &tokio_tungstenite::tungstenite::handshake::server::Request, response| {
                authorization = request
                    .headers()
                    .get("authorization")
                    .map(|v| v.to_str().unwrap_or_default().to_owned());
                Ok(response)
            },
        )
        .await
        .unwrap();
        let _ = seen_tx.send(authorization);
        while let Some(Ok(Message::Text(text))) = socket.next().await {
            let request: serde_json::Value = serde_json::from_str(&text).unwrap();
            let info = json!({"type": "app_server_info_response", "request_id": request["request_id"],
                "success": true, "backend": "local", "letta_code_version": "9.9.9", "protocol_version": 2,
                "capabilities": {"agent_management": true, "conversation_management": true,
                    "memory_management": true, "runtime_start": true, "split_channels": false}});
            socket.send(Message::text(info.to_string())).await.unwrap();
        }
    });
    let client = Client::builder(&format!("ws://{addr}"))
        .token("secret-token")
        .connect()
        .await
        .unwrap();
    assert_eq!(seen.await.unwrap().as_deref(), Some("Bearer secret-token"));
    let error = client.app_server_info().await.unwrap_err();
    assert!(
        matches!(&error, Error::Protocol { message } if message.contains("protocol version 2")),
        "{error:?}"
    );
    client.close().await;
}

#[tokio::test]
async fn tools_registered_without_subscribing_are_registered_again_after_a_reconnect() {
    let server = TestServer::start_with(|config| config.max_frame_bytes = 4096).await;
    let owner = server.rust_client(Transport::Single).await;
    let runtime = new_runtime(&owner, "Owner").await;
    let tools = server.builder(Transport::Single).connect().await.unwrap();
    tools.on_external_tool_call(|call| async move { Ok::<_, String>(format!("served {}", call.tool_name)) });
    tools
        .runtime_external_tools_update(vec![letta_app_server_client::types::ExternalToolsUpdate {
            runtimes: vec![runtime.clone()],
            external_tools: vec![letta_app_server_client::types::ExternalToolGroup {
                scope_id: None,
                tools: vec![ExternalToolDefinition::new(
                    "remote_tool",
                    "Served elsewhere",
                    json!({}),
                )],
            }],
        }])
        .await
        .unwrap();
    let call = r#"[[tool: remote_tool {}]]"#;
    let frames = collect(owner.send_message(&runtime, call).await.unwrap()).await;
    assert_eq!(tool_returns(&frames), ["served remote_tool"]);

    let mut events = tools.events();
    tools
        .send(&json!({"type": "pong", "padding": "x".repeat(8192)}))
        .await
        .unwrap();
    while !matches!(next(&mut events).await, Err(Gap::Reconnected)) {}
    frames_until(&mut events, |f| {
        f.frame_type() == "runtime_external_tools_update_response"
    })
    .await;
    let frames = collect(owner.send_message(&runtime, call).await.unwrap()).await;
    assert_eq!(tool_returns(&frames), ["served remote_tool"]);
    owner.close().await;
    tools.close().await;
}
