//! Operating the server: its logs (`--log-level`, `--log-format`, `RUST_LOG`) and `GET /metrics`
//! (README "Operating the server").

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use letta_app_server_mock_llm::{MockResponse, MockServer, finish_chunk, text_chunk};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::support::metrics::{scrape, until, value};
use crate::support::wire::{Client, user_input};
use crate::support::{TestServer, binary};

const TOKEN: &str = "log-test-token-5d1e";
const USER_TEXT: &str = "user-words-never-logged-3a9";
const REPLY_TEXT: &str = "reply-words-never-logged-b42";

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Frames up to and including the first of `kind`.
async fn until_type(socket: &mut Socket, kind: &str) -> Vec<Value> {
    let mut frames = Vec::new();
    while let Some(Ok(message)) = socket.next().await {
        let Ok(text) = message.to_text() else { continue };
        let frame: Value = serde_json::from_str(text).unwrap_or_default();
        let done = frame["type"] == kind;
        frames.push(frame);
        if done {
            return frames;
        }
    }
    panic!("the socket ended before a {kind} frame");
}

/// The span named `name` of a JSON log line, if the line is inside one.
fn span<'l>(line: &'l Value, name: &str) -> Option<&'l Value> {
    line["spans"].as_array()?.iter().find(|span| span["name"] == name)
}

/// The JSON log line whose message is `message` (the first one).
fn event<'l>(lines: &'l [Value], message: &str) -> &'l Value {
    (lines.iter())
        .find(|line| line["message"] == message)
        .unwrap_or_else(|| panic!("no {message:?} among {lines:#?}"))
}

#[tokio::test]
async fn json_logs_tell_connections_turns_and_errors_but_never_texts_or_tokens() {
    let data = tempfile::tempdir().expect("a temporary directory");
    let token_file = data.path().join("token");
    std::fs::write(&token_file, TOKEN).expect("the token file");
    let token_path = token_file.to_str().expect("a UTF-8 path");
    let data_dir = data.path().join("data");
    let args = [
        "--ws-auth",
        "capability-token",
        "--ws-token-file",
        token_path,
        "--log-format",
        "json",
    ];
    let mut server = binary::ServerProcess::spawn_logged(binary::command(&data_dir, &args)).expect("started");

    let mut request = server.url.as_str().into_client_request().expect("a request");
    let bearer = format!("Bearer {TOKEN}").parse().expect("a header value");
    request.headers_mut().insert("authorization", bearer);
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.expect("connected");
    let send = |frame: Value| Message::text(frame.to_string());
    let start = json!({"type": "runtime_start", "request_id": "rs-1", "create_agent": {"body": {"name": "Logged"}}});
    socket.send(send(start)).await.expect("sent");
    let runtime = until_type(&mut socket, "update_subagent_state").await[0]["runtime"].clone();
    let text = format!("[[reply: {REPLY_TEXT}]] {USER_TEXT}");
    socket
        .send(send(user_input("in-1", &runtime, &text, "cm-1")))
        .await
        .expect("sent");
    let turn = until_type(&mut socket, "turn_finished").await;
    assert!(
        turn.iter().any(|f| f.to_string().contains(REPLY_TEXT)),
        "the model replied"
    );
    socket
        .send(send(json!({"type": "no_such_command", "request_id": "bad-1"})))
        .await
        .expect("sent");
    assert_eq!(
        until_type(&mut socket, "error").await.last().expect("an error")["code"],
        "unknown_type"
    );
    let bye = CloseFrame {
        code: CloseCode::Normal,
        reason: "done".into(),
    };
    socket.close(Some(bye)).await.expect("closed");
    while socket.next().await.is_some() {}
    server.terminate(Duration::from_secs(10)).expect("stopped");

    let raw = server.log_lines(Duration::from_millis(200));
    for secret in [USER_TEXT, REPLY_TEXT, TOKEN] {
        assert!(
            raw.iter().all(|line| !line.contains(secret)),
            "{secret} was logged:\n{}",
            raw.join("\n")
        );
    }
    let lines: Vec<Value> = (raw.iter())
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?} is not JSON: {e}")))
        .collect();
    assert!(
        lines
            .iter()
            .all(|line| line["timestamp"].is_string() && line["level"].is_string())
    );

    let listening = event(&lines, "listening");
    assert_eq!(listening["level"], "INFO");
    assert!(
        listening["address"]
            .as_str()
            .expect("an address")
            .starts_with("127.0.0.1:")
    );

    let opened = event(&lines, "connection opened");
    let connection = span(opened, "connection").expect("in the connection's span");
    assert!(connection["peer"].as_str().expect("a peer").starts_with("127.0.0.1:"));
    assert_eq!(connection["channel"], "single");

    let started = event(&lines, "turn started");
    let turn_span = span(started, "turn").expect("in the turn's span");
    assert_eq!(turn_span["agent"], runtime["agent_id"]);
    assert_eq!(turn_span["conversation"], runtime["conversation_id"]);
    assert!(turn_span["turn_id"].is_string());
    let finished = event(&lines, "turn finished");
    assert_eq!(finished["stop_reason"], "end_turn");
    assert!(span(finished, "turn").expect("in the turn's span")["run_id"].is_string());

    let error = event(&lines, "error frame sent");
    assert_eq!(
        (&error["code"], &error["request_id"]),
        (&json!("unknown_type"), &json!("bad-1"))
    );
    assert_eq!(
        span(error, "connection").expect("in the connection's span")["id"],
        connection["id"]
    );

    let closed = event(&lines, "connection closed");
    assert_eq!(
        (&closed["by"], &closed["code"], &closed["reason"]),
        (&json!("client"), &json!(1000), &json!("done"))
    );
    assert_eq!(event(&lines, "stopping")["signal"], "SIGTERM");
}

#[test]
fn text_logs_follow_the_log_level_then_rust_log() {
    let data = tempfile::tempdir().expect("a temporary directory");
    let started = |level: Option<&str>| {
        let args: Vec<&str> = level.map_or_else(Vec::new, |level| vec!["--log-level", level]);
        let mut command = binary::command(data.path(), &args);
        command.env("RUST_LOG", "warn");
        let mut server = binary::ServerProcess::spawn_logged(command).expect("started");
        server.terminate(Duration::from_secs(10)).expect("stopped");
        server.log_lines(Duration::from_millis(200))
    };
    let quiet = started(None);
    assert!(quiet.is_empty(), "RUST_LOG=warn hides what is at info: {quiet:?}");
    let told = started(Some("info"));
    let listening = told
        .iter()
        .find(|line| line.contains("listening"))
        .expect("a listening line");
    assert!(
        listening.contains(" INFO letta_app_server: listening address=127.0.0.1:"),
        "{listening}"
    );
    binary::refused(&["--log-level", "letta_app_server=loud"], "invalid log filter");
    binary::refused(&["--log-format", "xml"], "invalid value 'xml'");
    binary::refused(
        &["--otlp-endpoint", "collector:4318"],
        "--otlp-endpoint must be an http:// or https:// URL",
    );
}

/// An agent of the OpenAI-compatible model served by `mock`, on a new runtime of `client`.
async fn model_runtime(client: &mut Client) -> Value {
    client
        .send(json!({"type": "runtime_start", "request_id": "rs-m", "create_agent":
            {"body": {"name": "Measured", "model": "llama.cpp/mock-model"}}}))
        .await;
    client.recv_until_type("update_subagent_state").await[0]["runtime"].clone()
}

#[tokio::test]
async fn metrics_count_connections_turns_deltas_errors_providers_and_approvals() {
    let outage = MockResponse::error(500, json!({"error": {"message": "upstream exploded"}}));
    let mock = MockServer::scripted(vec![
        outage,
        MockResponse::sse([text_chunk("Hi"), text_chunk(" there"), finish_chunk("stop")]),
    ]);
    let base_url = mock.base_url.clone();
    let server = TestServer::start_with(|config| {
        config.providers.llama_cpp = base_url;
        config.providers.retry_base_delay = Duration::from_millis(10);
    })
    .await;
    let mut client = server.client().await;
    let runtime = model_runtime(&mut client).await;
    client.send(user_input("in-1", &runtime, "hi", "cm-1")).await;
    let frames = client.recv_until_type("turn_finished").await;
    assert_eq!(frames.last().expect("the end")["stop_reason"], "end_turn");
    client
        .send(json!({"type": "no_such_command", "request_id": "bad-1"}))
        .await;
    client.recv_until_type("error").await;

    let metrics = scrape(&server).await;
    let deltas = frames.iter().filter(|f| f["type"] == "stream_delta").count() as f64;
    let llama = [("provider", "llama.cpp")];
    for (name, labels, expected) in [
        ("letta_connections", &[][..], 1.0),
        ("letta_connections_opened_total", &[], 1.0),
        ("letta_subscribed_runtimes", &[], 1.0),
        ("letta_loaded_conversations", &[], 1.0),
        ("letta_turns_started_total", &[], 1.0),
        ("letta_turns_finished_total", &[("stop_reason", "end_turn")], 1.0),
        ("letta_deltas_sent_total", &[], deltas),
        ("letta_error_frames_total", &[("code", "unknown_type")], 1.0),
        ("letta_provider_errors_total", &[("status", "500")], 1.0),
        ("letta_provider_request_duration_seconds", &llama, 2.0),
        ("letta_approvals_pending", &[], 0.0),
    ] {
        assert_eq!(value(&metrics, name, labels), expected, "{name}{labels:?}");
    }
    assert!(value(&metrics, "letta_frames_sent_total", &[]) > deltas);
    assert!(value(&metrics, "letta_outbound_queue_depth", &[]) >= 1.0);
    assert!(value(&metrics, "letta_store_write_duration_seconds", &[]) >= 2.0);

    // An approval is pending from the question to its answer.
    let mut asker = server.client().await;
    asker
        .send(
            json!({"type": "runtime_start", "request_id": "rs-a", "mode": "standard",
            "cwd": server.data.path(), "create_agent": {"body": {"name": "Careful"}}}),
        )
        .await;
    let careful = asker.recv_until_type("update_subagent_state").await[0]["runtime"].clone();
    let command = json!({"command": "mkdir -p made && echo made", "description": "Make a directory"});
    asker
        .send(user_input(
            "in-a",
            &careful,
            &format!("[[tool: Bash {command}]]"),
            "cm-a",
        ))
        .await;
    asker.recv_until_type("control_request").await;
    let asked = scrape(&server).await;
    assert_eq!(
        (
            value(&asked, "letta_approvals_asked_total", &[]),
            value(&asked, "letta_approvals_pending", &[])
        ),
        (1.0, 1.0)
    );
    asker
        .send(
            json!({"type": "input", "request_id": "ans-1", "runtime": careful, "payload":
            {"kind": "approval_response", "request_id": "perm-call_1", "decision": {"behavior": "allow"}}}),
        )
        .await;
    asker.recv_until_type("turn_finished").await;
    assert_eq!(value(&scrape(&server).await, "letta_approvals_pending", &[]), 0.0);

    // Connections closed, by code.
    let normal = || CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    };
    client.close_with(normal()).await;
    asker.close_with(normal()).await;
    let closed = until(&server, |m| value(m, "letta_connections", &[]) == 0.0).await;
    assert_eq!(value(&closed, "letta_connections", &[]), 0.0);
    assert_eq!(
        value(&closed, "letta_connections_closed_total", &[("code", "1000")]),
        2.0
    );
    assert_eq!(value(&closed, "letta_subscribed_runtimes", &[]), 0.0);
}

/// An OTLP/HTTP collector on a free loopback port: its base URL, and the bodies of the
/// `POST /v1/traces` requests it received.
#[cfg(feature = "otlp")]
async fn collector() -> (String, std::sync::Arc<std::sync::Mutex<Vec<bytes::Bytes>>>) {
    use http_body_util::{BodyExt, Full};
    use hyper::{Request, Response, body::Incoming};
    use hyper_util::rt::TokioIo;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let address = listener.local_addr().expect("its address");
    let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = received.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let kept = kept.clone();
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let kept = kept.clone();
                async move {
                    let traces = request.uri().path() == "/v1/traces";
                    let body = request.into_body().collect().await?.to_bytes();
                    if traces {
                        kept.lock().expect("the bodies").push(body);
                    }
                    Ok::<_, hyper::Error>(Response::new(Full::new(bytes::Bytes::new())))
                }
            });
            tokio::spawn(hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service));
        }
    });
    (format!("http://{address}"), received)
}

#[cfg(feature = "otlp")]
// The collector must go on serving while the test waits for the server to stop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spans_reach_an_otlp_collector_with_their_fields_and_events() {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
    use prost::Message as _;

    let (endpoint, received) = collector().await;
    let data = tempfile::tempdir().expect("a temporary directory");
    let command = binary::command(data.path(), &["--otlp-endpoint", &endpoint]);
    let mut server = binary::ServerProcess::spawn_logged(command).expect("started");
    let mut client = Client::connect(&server.url).await;
    let runtime = crate::support::wire::start_runtime(&mut client).await;
    client
        .send(user_input("in-1", &runtime, "[[reply: traced]]", "cm-1"))
        .await;
    client.recv_until_type("turn_finished").await;
    client.close().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Stopping exports what is left.
    server.terminate(Duration::from_secs(20)).expect("stopped");

    let bodies = received.lock().expect("the bodies").clone();
    assert!(
        !bodies.is_empty(),
        "nothing exported; the server said:\n{}",
        server.log_lines(Duration::from_millis(100)).join("\n")
    );
    let requests: Vec<ExportTraceServiceRequest> = (bodies.iter())
        .map(|body| ExportTraceServiceRequest::decode(body.as_ref()).expect("OTLP protobuf"))
        .collect();
    let text = |value: &Option<opentelemetry_proto::tonic::common::v1::AnyValue>| match value
        .as_ref()
        .and_then(|v| v.value.as_ref())
    {
        Some(Any::StringValue(text)) => text.clone(),
        Some(Any::IntValue(number)) => number.to_string(),
        other => format!("{other:?}"),
    };
    let service = (requests.iter())
        .flat_map(|request| &request.resource_spans)
        .filter_map(|spans| spans.resource.as_ref())
        .flat_map(|resource| &resource.attributes)
        .find(|attribute| attribute.key == "service.name")
        .map(|attribute| text(&attribute.value));
    assert_eq!(service.as_deref(), Some("letta-app-server"));
    let spans: Vec<_> = (requests.iter())
        .flat_map(|request| &request.resource_spans)
        .flat_map(|resource| &resource.scope_spans)
        .flat_map(|scope| &scope.spans)
        .collect();
    let attributes = |name: &str| -> std::collections::HashMap<String, String> {
        let span = spans
            .iter()
            .find(|span| span.name == name)
            .unwrap_or_else(|| panic!("no {name} span"));
        span.attributes
            .iter()
            .map(|a| (a.key.clone(), text(&a.value)))
            .collect()
    };
    let events = |name: &str| -> Vec<String> {
        let span = spans.iter().find(|span| span.name == name).expect("the span");
        span.events.iter().map(|event| event.name.clone()).collect()
    };
    let turn = attributes("turn");
    assert_eq!(turn["agent"], runtime["agent_id"].as_str().expect("an id"));
    assert_eq!(
        turn["conversation"],
        runtime["conversation_id"].as_str().expect("an id")
    );
    assert!(
        turn["turn_id"].starts_with("turn-") && turn["run_id"].starts_with("run-"),
        "{turn:?}"
    );
    assert_eq!(events("turn"), ["turn started", "turn finished"]);
    let connection = attributes("connection");
    assert_eq!(connection["channel"], "single");
    assert!(connection["peer"].starts_with("127.0.0.1:"), "{connection:?}");
    assert_eq!(events("connection"), ["connection opened", "connection closed"]);
}
