//! The transport: HTTP routes, both websocket transports, bad input and slow readers.

use std::time::Duration;

use letta_app_server_tests::invalid_frames;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::support::drive::http;
use crate::support::metrics::{until, value};
use crate::support::wire::{Client, create_runtime, start_runtime, summary, user_input};
use crate::support::{TestServer, wire};

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
    // Desktop's remote mode refuses a server without the agents and conversations groups.
    assert_eq!(
        (
            &capabilities["agent_management"],
            &capabilities["conversation_management"]
        ),
        (&json!(true), &json!(true))
    );
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
    // A bad payload of another command (`update_model`) gets the error frame only: its
    // `payload` is not an input's, so the scope it names gets no loop_error.
    client
        .send(
            json!({"type": "update_model", "request_id": "bad-5", "runtime": runtime,
        "payload": {"reasoning_effort": "extreme"}}),
        )
        .await;
    let error = client.recv().await;
    assert_eq!(
        (&error["type"], &error["request_id"]),
        (&json!("error"), &json!("bad-5"))
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
    // Long enough, on a loaded machine, to fill the socket buffers, outlast the turn's patience
    // and pass the limit; reading earlier would drain the queue instead.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let close = client.closed().await.expect("close frame");
    assert_eq!(close.code, CloseCode::Policy);
    assert!(close.reason.contains("outbound queue overflow"), "{close:?}");
    let metrics = until(&server, |m| value(m, "letta_connections", &[]) == 0.0).await;
    assert_eq!(value(&metrics, "letta_overflow_closes_total", &[]), 1.0);
    assert_eq!(
        value(&metrics, "letta_connections_closed_total", &[("code", "1008")]),
        1.0
    );
    assert!(value(&metrics, "letta_frames_dropped_total", &[]) > 0.0);
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

// ---- Limits and timeouts of the connection itself (issue #12, items 4 and 5) ----

/// The key of RFC 6455's example handshake.
const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// A header to set (`Some`) or remove (`None`).
type HeaderChange<'a> = (&'a str, Option<&'a str>);

/// A valid upgrade request for `/ws`, with the request line replaced and headers changed.
fn upgrade_request(request_line: &str, change: &[HeaderChange]) -> String {
    let mut headers = vec![
        ("Host", "localhost"),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Version", "13"),
        ("Sec-WebSocket-Key", KEY),
    ];
    for (name, value) in change {
        headers.retain(|(n, _)| n != name);
        if let Some(value) = value {
            headers.push((name, value));
        }
    }
    let headers: String = headers.iter().map(|(n, v)| format!("{n}: {v}\r\n")).collect();
    format!("{request_line}\r\n{headers}\r\n")
}

async fn connect(server: &TestServer) -> tokio::net::TcpStream {
    let address = server.server.as_ref().expect("running").local_addr();
    tokio::net::TcpStream::connect(address).await.expect("connect")
}

/// Reads until the server ends the connection (EOF or reset); panics if it does not within 10 s.
async fn read_to_close(stream: &mut tokio::net::TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    let mut buffer = [0; 8192];
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "the server kept the connection open; received {:?}",
            String::from_utf8_lossy(&received)
        )
    });
    received
}

/// Writes `request` on a new connection; returns everything the server sent until it closed
/// the connection.
async fn exchange(server: &TestServer, request: &str) -> String {
    let mut stream = connect(server).await;
    stream.write_all(request.as_bytes()).await.expect("write");
    String::from_utf8_lossy(&read_to_close(&mut stream).await).into_owned()
}

/// A websocket opened by hand on `/ws`: the 101 response is read byte by byte, so nothing after
/// it is consumed.
async fn raw_socket(server: &TestServer) -> tokio::net::TcpStream {
    raw_socket_at(server, "/ws").await
}

async fn raw_socket_at(server: &TestServer, path: &str) -> tokio::net::TcpStream {
    let mut stream = connect(server).await;
    stream
        .write_all(upgrade_request(&format!("GET {path} HTTP/1.1"), &[]).as_bytes())
        .await
        .expect("write");
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(stream.read_u8().await.expect("response head"));
    }
    assert!(head.starts_with(b"HTTP/1.1 101 "), "{}", String::from_utf8_lossy(&head));
    stream
}

#[tokio::test]
async fn a_client_that_never_reads_is_cut_off_after_the_close_deadline() {
    let server = TestServer::start_with(|config| {
        config.max_queued_frames = 64;
        config.close_timeout = Duration::from_millis(500);
    })
    .await;
    let mut client = server.client().await;
    let runtime = start_runtime(&mut client).await;
    client
        .send(user_input("in-1", &runtime, "[[deltas: 100000]]", "cm-1"))
        .await;
    // The client reads nothing more: the queue overflows, the close frame cannot be written, and
    // the server must not wait for it forever. The reset frees the buffers the peer pinned.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(error) = client.tcp().take_error().expect("SO_ERROR") {
            assert_eq!(error.kind(), std::io::ErrorKind::ConnectionReset, "{error}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the server still holds a connection whose peer stopped reading"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_silent_peer_is_pinged_then_cut_off() {
    let server = TestServer::start_with(|config| {
        config.ping_interval = Duration::from_millis(100);
        config.silent_peer_timeout = Duration::from_millis(800);
    })
    .await;
    // Never answers a ping.
    let mut silent = raw_socket(&server).await;
    let received = read_to_close(&mut silent).await;
    assert!(
        received.starts_with(&[0x89, 0x00]),
        "the first frame is an empty ping: {received:?}"
    );
}

#[tokio::test]
async fn a_peer_that_answers_pings_stays_connected_however_idle() {
    let server = TestServer::start_with(|config| {
        config.ping_interval = Duration::from_millis(200);
        config.silent_peer_timeout = Duration::from_millis(1500);
    })
    .await;
    let mut client = server.client().await;
    let pings = client.idle(Duration::from_secs(4)).await;
    assert!(pings >= 5, "pinged {pings} times in 4 s");
    client
        .send(json!({"type": "app_server_info", "request_id": "still-here"}))
        .await;
    assert_eq!(client.recv().await["request_id"], "still-here");
}

#[tokio::test]
async fn incomplete_idle_and_silent_http_connections_are_closed() {
    let server = TestServer::start_with(|config| config.http_header_timeout = Duration::from_millis(500)).await;
    let mut silent = connect(&server).await;
    let mut partial = connect(&server).await;
    partial
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: local")
        .await
        .expect("write");
    let mut idle = connect(&server).await;
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .expect("write");
    assert!(read_to_close(&mut silent).await.is_empty());
    assert!(read_to_close(&mut partial).await.is_empty());
    let answered = String::from_utf8(read_to_close(&mut idle).await).expect("text");
    assert!(answered.starts_with("HTTP/1.1 200 OK\r\n"), "{answered}");
}

// ---- The websocket layer (RFC 6455; issue #12, item 6) ----

/// A masked client frame: `head` is the first byte (FIN, RSV bits, opcode).
fn masked_frame(head: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126);
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut frame = vec![head, 0x80 | payload.len() as u8];
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

/// Opens a websocket on `path` by hand, writes `bytes` and returns the code of the close frame
/// the server answers with.
async fn close_code_after(server: &TestServer, path: &str, bytes: &[u8]) -> Option<CloseCode> {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::{Message, protocol::Role};
    let mut stream = raw_socket_at(server, path).await;
    stream.write_all(bytes).await.expect("write");
    let mut ws = tokio_tungstenite::WebSocketStream::from_raw_socket(stream, Role::Client, None).await;
    loop {
        match tokio::time::timeout(wire::FRAME_TIMEOUT, ws.next())
            .await
            .expect("an answer")
        {
            Some(Ok(Message::Close(close))) => return close.map(|c| c.code),
            Some(Ok(_)) => {}
            _ => return None,
        }
    }
}

#[tokio::test]
async fn a_close_frame_is_answered_with_the_same_code() {
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let answer = client
        .close_with(CloseFrame {
            code: CloseCode::Normal,
            reason: "bye".into(),
        })
        .await;
    assert_eq!(answer.map(|c| c.code), Some(CloseCode::Normal));
    let mut client = server.client().await;
    let answer = client
        .close_with(CloseFrame {
            code: CloseCode::Away,
            reason: "".into(),
        })
        .await;
    assert_eq!(answer.map(|c| c.code), Some(CloseCode::Away));
}

#[tokio::test]
async fn protocol_violations_close_with_1002_and_bad_utf8_with_1007() {
    let server = TestServer::start().await;
    let json = br#"{"type":"app_server_info"}"#;
    let mut unmasked = vec![0x81, json.len() as u8];
    unmasked.extend_from_slice(json);
    let cases: [(&str, Vec<u8>, CloseCode); 8] = [
        ("unmasked frame", unmasked, CloseCode::Protocol),
        ("RSV1 set", masked_frame(0xc1, json), CloseCode::Protocol),
        ("reserved data opcode", masked_frame(0x83, json), CloseCode::Protocol),
        ("reserved control opcode", masked_frame(0x8b, b""), CloseCode::Protocol),
        (
            "continuation without a start",
            masked_frame(0x80, json),
            CloseCode::Protocol,
        ),
        ("fragmented ping", masked_frame(0x09, b""), CloseCode::Protocol),
        (
            "invalid UTF-8 text",
            masked_frame(0x81, &[b'"', 0xff, 0xfe, b'"']),
            CloseCode::Invalid,
        ),
        (
            "invalid UTF-8 across fragments",
            [masked_frame(0x01, &[b'"', 0xe2]), masked_frame(0x80, &[0x28, b'"'])].concat(),
            CloseCode::Invalid,
        ),
    ];
    for (case, bytes, expected) in cases {
        assert_eq!(close_code_after(&server, "/ws", &bytes).await, Some(expected), "{case}");
    }
    // The stream socket of a split session too; its control socket carries on.
    let mut control = Client::connect(&server.url("/ws?channel=control")).await;
    assert_eq!(
        close_code_after(&server, "/ws?channel=stream", &masked_frame(0xc1, json)).await,
        Some(CloseCode::Protocol)
    );
    control
        .send(json!({"type": "app_server_info", "request_id": "still-here"}))
        .await;
    assert_eq!(control.recv().await["request_id"], "still-here");
}

#[tokio::test]
async fn a_stream_socket_closes_on_its_own_and_a_second_one_is_refused() {
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;
    let server = TestServer::start().await;
    let mut control = Client::connect(&server.url("/ws?channel=control")).await;
    let mut stream = Client::connect(&server.url("/ws?channel=stream")).await;
    control.send(create_runtime("rs-1")).await;
    let runtime = control.recv_until_type("runtime_start_response").await.pop().unwrap()["runtime"].clone();
    stream.recv_until_type("update_subagent_state").await;

    let mut second = Client::connect(&server.url("/ws?channel=stream")).await;
    let refused = second.closed().await.expect("close frame");
    assert_eq!(
        (refused.code, refused.reason.as_str()),
        (CloseCode::Policy, "stream channel already connected")
    );

    let answer = stream
        .close_with(CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        })
        .await;
    assert_eq!(answer.map(|c| c.code), Some(CloseCode::Normal));
    // Its frames go to control now, and another stream socket may attach.
    control.send(user_input("in-1", &runtime, "hello", "cm-1")).await;
    let frames = control.recv_until_type("turn_finished").await;
    assert!(frames.iter().any(|f| f["type"] == "stream_delta"), "{frames:?}");
    let mut third = Client::connect(&server.url("/ws?channel=stream")).await;
    for attempt in 2.. {
        assert!(attempt < 50, "the third stream socket never attached");
        let id = format!("cm-{attempt}");
        control.send(user_input(&id, &runtime, "again", &id)).await;
        let frames = control.recv_until_type("turn_finished").await;
        if frames.iter().all(|f| f["type"] != "stream_delta") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    third.recv_until_type("stream_delta").await;
}

#[tokio::test]
async fn shutdown_closes_sockets_with_1001() {
    let mut server = TestServer::start().await;
    let mut client = server.client().await;
    client
        .send(json!({"type": "app_server_info", "request_id": "i-1"}))
        .await;
    client.recv().await;
    let shutdown = tokio::spawn(server.server.take().expect("running").shutdown());
    let close = client.closed().await.expect("close frame");
    assert_eq!(
        (close.code, close.reason.as_str()),
        (CloseCode::Away, "server shutting down")
    );
    shutdown.await.expect("shut down");
}

#[tokio::test]
async fn a_frame_over_the_default_limit_gets_an_error_and_close_1009_not_a_reset() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    client.send_text(&"x".repeat(16 * 1024 * 1024 + 1)).await;
    let close = client.closed().await.expect("close frame");
    assert_eq!(close.code, CloseCode::Size);
    assert_eq!(summary(&client.received), ["error frame_too_large"]);
}

// ---- The HTTP upgrade (RFC 6455 §4.2; issue #12, item 7) ----

#[tokio::test]
async fn bad_upgrades_are_refused_and_the_connection_closed() {
    let server = TestServer::start().await;
    let cases: [(&str, &[HeaderChange], &str); 9] = [
        ("POST /ws HTTP/1.1", &[], "405"),
        ("GET /ws HTTP/1.0", &[], "400"),
        ("GET /ws HTTP/1.1", &[("Sec-WebSocket-Version", None)], "400"),
        ("GET /ws HTTP/1.1", &[("Sec-WebSocket-Version", Some("8"))], "426"),
        ("GET /ws HTTP/1.1", &[("Connection", None)], "400"),
        ("GET /ws HTTP/1.1", &[("Connection", Some("keep-alive"))], "400"),
        ("GET /ws HTTP/1.1", &[("Sec-WebSocket-Key", None)], "400"),
        ("GET /ws HTTP/1.1", &[("Sec-WebSocket-Key", Some("not a key"))], "400"),
        // Valid base64 of 15 bytes, not 16.
        (
            "GET /ws HTTP/1.1",
            &[("Sec-WebSocket-Key", Some("AAAAAAAAAAAAAAAAAAAA"))],
            "400",
        ),
    ];
    for (request_line, change, status) in cases {
        let request = upgrade_request(request_line, change);
        let response = exchange(&server, &request).await;
        let lower = response.to_ascii_lowercase();
        assert_eq!(response.split(' ').nth(1), Some(status), "{request}\n=> {response}");
        assert!(lower.contains("\r\nconnection: close\r\n"), "{request}\n=> {response}");
        if status == "426" {
            assert!(lower.contains("\r\nsec-websocket-version: 13\r\n"), "{response}");
        }
        if status == "405" {
            assert!(lower.contains("\r\nallow: get\r\n"), "{response}");
        }
    }
    // Token lists and any letter case are fine.
    let mut stream = connect(&server).await;
    let request = upgrade_request(
        "GET /ws HTTP/1.1",
        &[
            ("Connection", Some("keep-alive, Upgrade")),
            ("Upgrade", Some("WebSocket")),
        ],
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut head = [0; 13];
    stream.read_exact(&mut head).await.expect("read");
    assert_eq!(&head, b"HTTP/1.1 101 ");
}

#[tokio::test]
async fn a_frame_sent_right_behind_the_upgrade_request_is_read() {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::{Message, protocol::Role};
    let server = TestServer::start().await;
    let mut stream = connect(&server).await;
    let request = upgrade_request("GET /ws HTTP/1.1", &[]);
    let frame = masked_frame(0x81, br#"{"type":"app_server_info","request_id":"eager"}"#);
    stream
        .write_all(&[request.as_bytes(), &frame].concat())
        .await
        .expect("write");
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(stream.read_u8().await.expect("response head"));
    }
    assert!(head.starts_with(b"HTTP/1.1 101 "), "{}", String::from_utf8_lossy(&head));
    let mut ws = tokio_tungstenite::WebSocketStream::from_raw_socket(stream, Role::Client, None).await;
    let answer = tokio::time::timeout(wire::FRAME_TIMEOUT, ws.next())
        .await
        .expect("an answer");
    let Some(Ok(Message::Text(text))) = answer else {
        panic!("{answer:?}")
    };
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap()["request_id"], "eager");
}

#[tokio::test]
async fn a_request_pipelined_after_a_refused_upgrade_is_never_served() {
    let server = TestServer::start().await;
    let refused = upgrade_request("GET /ws HTTP/1.1", &[("Sec-WebSocket-Version", Some("8"))]);
    let valid = upgrade_request("GET /ws HTTP/1.1", &[]);
    let response = exchange(&server, &format!("{refused}{valid}")).await;
    assert!(response.starts_with("HTTP/1.1 426 "), "{response}");
    assert_eq!(response.matches("HTTP/1.1 ").count(), 1, "{response}");
}

// ---- Host names (DNS rebinding; issue #12, item 8) ----

#[tokio::test]
async fn only_loopback_host_names_are_served_without_authentication() {
    let server = TestServer::start().await;
    let info = |host: &str| format!("GET /app-server-info HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    for host in [
        "localhost",
        "LocalHost:8283",
        "127.0.0.1",
        "127.0.0.1:8283",
        "127.45.6.7:1",
        "[::1]",
        "[::1]:8283",
        "[0:0:0:0:0:0:0:1]:8283",
    ] {
        assert_eq!(http(&server, &info(host)).await.0, "HTTP/1.1 200 OK", "{host}");
    }
    for host in [
        "evil.example",
        "evil.example:8283",
        "localhost.evil.example",
        "127.0.0.1.nip.io",
        "app.localhost",
        "10.0.0.1",
        "0.0.0.0",
        "[::]",
        "2130706433",
        "localhost@evil.example",
    ] {
        let response = exchange(&server, &info(host)).await;
        assert!(response.starts_with("HTTP/1.1 403 "), "{host}: {response}");
    }
    // No Host, two of them, or an absolute request target naming another host.
    for request in [
        "GET /app-server-info HTTP/1.1\r\n\r\n".to_owned(),
        "GET /app-server-info HTTP/1.1\r\nHost: localhost\r\nHost: localhost\r\n\r\n".to_owned(),
        "GET /app-server-info HTTP/1.1\r\nHost: localhost:99999\r\n\r\n".to_owned(),
    ] {
        let response = exchange(&server, &request).await;
        assert!(response.starts_with("HTTP/1.1 400 "), "{request}: {response}");
    }
    let response = exchange(
        &server,
        "GET http://evil.example/app-server-info HTTP/1.1\r\nHost: localhost\r\n\r\n",
    )
    .await;
    assert!(response.starts_with("HTTP/1.1 403 "), "{response}");
    // HTTP/1.0 has no Host requirement; a browser always sends one.
    let response = exchange(&server, "GET /healthz HTTP/1.0\r\n\r\n").await;
    assert!(response.starts_with("HTTP/1.0 200 OK\r\n"), "{response}");
    // Upgrades too.
    let response = exchange(
        &server,
        &upgrade_request("GET /ws HTTP/1.1", &[("Host", Some("evil.example"))]),
    )
    .await;
    assert!(response.starts_with("HTTP/1.1 403 "), "{response}");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_does_not_hold_up_a_shutdown() {
    let mut server = TestServer::start_with(|config| {
        config.close_timeout = Duration::from_secs(30);
        config.http_header_timeout = Duration::from_secs(60);
    })
    .await;
    let mut idle = connect(&server).await;
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .expect("write");
    let mut answer = [0u8; 17];
    idle.read_exact(&mut answer).await.expect("the answer's status line");
    assert_eq!(&answer, b"HTTP/1.1 200 OK\r\n");
    // Kept alive for another request; a shutdown closes it at once instead of waiting for the
    // close deadline (30 s here) that websockets get.
    let stopped = tokio::time::timeout(Duration::from_secs(5), server.stop()).await;
    assert!(stopped.is_ok(), "the shutdown waited for the idle connection");
}
