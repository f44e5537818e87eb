//! The transport: HTTP routes, both websocket transports, bad input and slow readers.

#[path = "support/wire.rs"]
mod wire;

use std::time::Duration;

use letta_app_server_tests::invalid_frames;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use wire::{Client, TestServer, start_runtime, summary, user_input};

/// A raw HTTP/1.1 request; returns the status line and the body.
async fn http(server: &TestServer, request: &str) -> (String, String) {
    let address = server.server.as_ref().expect("running").local_addr();
    let mut stream = tokio::net::TcpStream::connect(address).await.expect("connect");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    let status = response.lines().next().unwrap_or_default().to_owned();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn get(path: &str, extra: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{extra}\r\n")
}

#[tokio::test]
async fn http_routes_share_the_port() {
    let server = TestServer::start().await;
    assert_eq!(
        http(&server, &get("/healthz", "")).await,
        ("HTTP/1.1 200 OK".into(), "ok\n".into())
    );
    assert_eq!(http(&server, &get("/readyz", "")).await.0, "HTTP/1.1 200 OK");
    let (status, body) = http(&server, &get("/app-server-info", "")).await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    let info: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (&info["type"], &info["request_id"], &info["protocol_version"]),
        (&json!("app_server_info_response"), &json!("http-info"), &json!(1))
    );
    // The official client's `isAppServerInfoResponseMessage` check.
    let capabilities = info["capabilities"].as_object().unwrap();
    for flag in [
        "agent_management",
        "conversation_management",
        "memory_management",
        "runtime_start",
        "split_channels",
    ] {
        assert!(capabilities[flag].is_boolean(), "{flag}");
    }
    assert!(info["letta_code_version"].is_string() && ["local", "api"].contains(&info["backend"].as_str().unwrap()));
    assert_eq!(http(&server, &get("/nope", "")).await.0, "HTTP/1.1 404 Not Found");
    assert_eq!(
        http(&server, &get("/healthz", "Origin: http://evil.example\r\n"))
            .await
            .0,
        "HTTP/1.1 403 Forbidden"
    );
    let upgrade = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
    assert_eq!(
        http(&server, &get("/ws?channel=sideways", upgrade)).await.0,
        "HTTP/1.1 400 Bad Request"
    );
    assert_eq!(
        http(&server, &get("/elsewhere", upgrade)).await.0,
        "HTTP/1.1 404 Not Found"
    );
    assert_eq!(
        http(
            &server,
            &get("/ws", &format!("{upgrade}Origin: http://evil.example\r\n"))
        )
        .await
        .0,
        "HTTP/1.1 403 Forbidden"
    );
}

#[tokio::test]
async fn every_invalid_frame_gets_the_expected_error_and_the_socket_stays_open() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let runtime = start_runtime(&mut client).await;
    for case in invalid_frames() {
        // Point scoped frames at the started runtime, so payload errors reach it.
        let text = case
            .text
            .replace(
                "\"agent_id\":\"agent-1\"",
                &format!("\"agent_id\":{}", runtime["agent_id"]),
            )
            .replace(
                "\"conversation_id\":\"conv-1\"",
                &format!("\"conversation_id\":{}", runtime["conversation_id"]),
            );
        client.send_text(&text).await;
        let error = client.recv_until_type("error").await.pop().unwrap();
        for field in ["code", "request_id", "frame_type"] {
            assert_eq!(error.get(field), case.expect.get(field), "{}: {error}", case.case);
        }
        if let Some(path) = case.expect["path"].as_str() {
            assert!(
                error["message"].as_str().unwrap().contains(path),
                "{}: {error}",
                case.case
            );
        }
    }
    // Real Letta's answers to bad `input` payloads: a non-terminal loop_error, and for an approval
    // inside create_message also a rejected input_accepted.
    client
        .send(json!({"type": "input", "request_id": "bad-3", "runtime": runtime,
        "payload": {"kind": "create_message", "messages": [{"type": "approval", "approvals": []}]}}))
        .await;
    let frames = client.recv_until(|f| f["delta"]["message_type"] == "loop_error").await;
    assert_eq!(
        summary(&frames),
        [
            "error invalid_frame",
            "input_accepted accepted=false \"Approval payloads require approval_response\"",
            "delta loop_error stop_reason=\"error\" message=\"Protocol violation: approval payloads are not allowed in input.kind=create_message. Use input.kind=approval_response.\""
        ]
    );
    client
        .send(json!({"type": "input", "request_id": "bad-2", "runtime": runtime, "payload": {"kind": "frobnicate"}}))
        .await;
    let frames = client.recv_until(|f| f["delta"]["message_type"] == "loop_error").await;
    assert_eq!(
        frames.last().unwrap()["delta"]["message"],
        "Unsupported input payload kind: frobnicate"
    );
    // A bad payload before a scope written as an array: no scope, so no loop_error.
    client
        .send(
            json!({"type": "input", "request_id": "bad-4", "payload": {"kind": "frobnicate"},
        "runtime": [runtime["agent_id"], runtime["conversation_id"]]}),
        )
        .await;
    let error = client.recv().await;
    assert_eq!(
        (&error["type"], &error["request_id"]),
        (&json!("error"), &json!("bad-4"))
    );
    client.expect_silence(Duration::from_millis(300)).await;
    // Still usable.
    client.send(user_input("in-ok", &runtime, "hello", "cm-ok")).await;
    assert_eq!(
        client.recv_until_type("turn_finished").await.last().unwrap()["stop_reason"],
        "end_turn"
    );
}

#[tokio::test]
async fn commands_for_unknown_runtimes_get_an_error() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let ghost = json!({"agent_id": "agent-ghost", "conversation_id": "conv-ghost"});
    client.send(user_input("in-1", &ghost, "hello", "cm-1")).await;
    let frames = client.recv_until_type("input_accepted").await;
    assert_eq!(
        summary(&frames),
        [
            "error unknown_runtime",
            "input_accepted accepted=false \"Unknown runtime agent-ghost/conv-ghost\""
        ]
    );
    assert!(
        frames[0]["message"]
            .as_str()
            .unwrap()
            .contains("send runtime_start first"),
        "{}",
        frames[0]
    );
    assert_eq!(
        (&frames[0]["request_id"], &frames[0]["frame_type"]),
        (&json!("in-1"), &json!("input"))
    );
    client
        .send(json!({"type": "sync", "request_id": "s-1", "runtime": ghost}))
        .await;
    assert_eq!(
        summary(&client.recv_until_type("sync_response").await),
        ["error unknown_runtime", "sync_response success=false"]
    );
}

#[tokio::test]
async fn an_oversized_frame_gets_an_error_and_close_1009() {
    let server = TestServer::start_with(|config| config.max_frame_bytes = 4096).await;
    let mut client = server.client().await;
    client
        .send_text(&format!(
            "{{\"type\":\"app_server_info\",\"request_id\":\"{}\"}}",
            "x".repeat(5000)
        ))
        .await;
    let close = client.closed().await.expect("close frame");
    assert_eq!(close.code, CloseCode::Size);
    assert_eq!(summary(&client.received), ["error frame_too_large"]);
}

#[tokio::test]
async fn a_client_that_stops_reading_is_closed_with_a_reason() {
    let server = TestServer::start_with(|config| config.max_queued_frames = 64).await;
    let mut client = server.client().await;
    let runtime = start_runtime(&mut client).await;
    client
        .send(user_input("in-1", &runtime, "[[deltas: 100000]]", "cm-1"))
        .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let close = client.closed().await.expect("close frame");
    assert_eq!(close.code, CloseCode::Policy);
    assert!(close.reason.contains("outbound queue overflow"), "{close:?}");
}

#[tokio::test]
async fn split_channels_route_events_to_the_stream_socket_with_one_event_seq() {
    let server = TestServer::start().await;
    let mut control = Client::connect(&server.url("/ws?channel=control")).await;
    let mut stream = Client::connect(&server.url("/ws?channel=stream")).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    control
        .send(json!({"type": "runtime_start", "request_id": "rs-1", "create_agent": {"body": {}}}))
        .await;
    let response = control.recv().await;
    assert_eq!(response["type"], "runtime_start_response");
    let runtime = response["runtime"].clone();
    stream.recv_until_type("update_subagent_state").await;
    control
        .send(user_input("in-1", &runtime, "hello [[reply: one two]]", "cm-1"))
        .await;
    assert_eq!(control.recv().await["type"], "input_accepted");
    let finished = control.recv().await;
    assert_eq!(finished["type"], "turn_finished", "turn_finished goes to control");
    let streamed = stream
        .recv_until(|f| f["type"] == "update_device_status" && f["device_status"]["is_processing"] == false)
        .await;
    assert!(
        streamed
            .iter()
            .all(|f| f["type"] != "turn_finished" && f["type"] != "input_accepted")
    );
    // One gap-free event_seq across the pair.
    let mut seqs: Vec<u64> = control
        .received
        .iter()
        .chain(&stream.received)
        .filter_map(|f| f["event_seq"].as_u64())
        .collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_new_control_session_replaces_the_old_one() {
    let server = TestServer::start().await;
    let mut old = Client::connect(&server.url("/ws?channel=control")).await;
    let runtime = start_runtime(&mut old).await;
    old.send(user_input(
        "in-1",
        &runtime,
        "slow [[deltas: 200]] [[delay: 10]]",
        "cm-1",
    ))
    .await;
    old.recv_until(|f| f["delta"]["message_type"] == "assistant_message")
        .await;

    let mut new = Client::connect(&server.url("/ws?channel=control")).await;
    let close = old.closed().await.expect("the old control socket is closed");
    assert!(close.reason.contains("replaced"), "{close:?}");
    new.send(json!({"type": "sync", "request_id": "s-1", "runtime": runtime}))
        .await;
    let replay = new.recv_until_type("sync_response").await;
    assert!(
        summary(&replay).contains(&"loop WAITING_ON_INPUT".to_owned()),
        "the old session's turn was aborted: {replay:?}"
    );
}

#[tokio::test]
async fn a_stream_socket_without_control_is_refused() {
    let server = TestServer::start_with(|_| {}).await;
    let mut stream = Client::connect(&server.url("/ws?channel=stream")).await;
    let close = tokio::time::timeout(Duration::from_secs(8), stream.closed())
        .await
        .unwrap()
        .expect("close");
    assert_eq!(close.reason.as_str(), "control channel did not connect");
}
