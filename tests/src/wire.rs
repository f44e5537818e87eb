//! The schema-checking wire client: a raw websocket client that checks every frame it receives
//! against `schema/frames.schema.json` and `event_seq` against the sequence, plus the frames and
//! readings the tests share. [`Checker`] is the check alone, for callers that collect violations
//! instead of failing (the chaos run).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures_util::{SinkExt, Stream, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use letta_app_server_protocol::compat::EventSeq;

use crate::schema::{Direction, Schemas};

/// How long a test waits for one frame.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(10);

/// A client websocket.
pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The schemas, compiled once per process.
pub fn schemas() -> Arc<Schemas> {
    static SCHEMAS: OnceLock<Arc<Schemas>> = OnceLock::new();
    SCHEMAS.get_or_init(|| Arc::new(Schemas::load())).clone()
}

/// Connects to `url`; `None` when the server does not answer within `timeout` (e.g. it is being
/// restarted).
pub async fn connect(url: &str, timeout: Duration) -> Option<Socket> {
    match tokio::time::timeout(timeout, tokio_tungstenite::connect_async(url)).await {
        Ok(Ok((socket, _))) => Some(socket),
        _ => None,
    }
}

/// The next text (or binary) frame from `socket` (or its receiving half), as text; `Err` says
/// why there is none: the server closed the socket (with its close code and reason), the socket
/// failed, or nothing came within `timeout`. For callers that go on after a failure; [`Client`]
/// fails the test instead.
pub async fn next_text<S>(socket: &mut S, timeout: Duration) -> Result<String, Ended>
where
    S: Stream<Item = Result<Message, WsError>> + Unpin,
{
    loop {
        let message = tokio::time::timeout(timeout, socket.next())
            .await
            .map_err(|_| Ended::Silent(timeout))?;
        match message {
            Some(Ok(Message::Text(text))) => return Ok(text.as_str().to_owned()),
            Some(Ok(Message::Binary(bytes))) => return Ok(String::from_utf8_lossy(&bytes).into_owned()),
            Some(Ok(Message::Close(close))) => {
                return Err(Ended::Closed(close.map_or_else(
                    || "no close code".to_owned(),
                    |c| format!("{} {}", u16::from(c.code), c.reason).trim_end().to_owned(),
                )));
            }
            Some(Ok(_)) => {}
            Some(Err(error)) => return Err(Ended::Failed(error.to_string())),
            None => return Err(Ended::Closed("no close frame".into())),
        }
    }
}

/// Why a connection gave no frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// The server closed it: close code and reason, or `no close frame`.
    Closed(String),
    /// It failed (reset, protocol error).
    Failed(String),
    /// Nothing arrived within this timeout.
    Silent(Duration),
}

impl std::fmt::Display for Ended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Closed(how) => write!(f, "closed by the server ({how})"),
            Self::Failed(error) => write!(f, "failed: {error}"),
            Self::Silent(timeout) => write!(f, "no frame within {timeout:?}"),
        }
    }
}

/// Checks what one connection receives: every frame against `schema/frames.schema.json`, and
/// `event_seq` gap-free from 1.
pub struct Checker {
    schemas: Arc<Schemas>,
    /// `None` for one socket of a split pair, whose sequence is shared with the other.
    sequence: Option<EventSeq>,
    /// Every violation seen, with the frame (shortened).
    pub violations: Vec<String>,
}

impl Checker {
    /// A checker for a new connection.
    pub fn new(schemas: Arc<Schemas>) -> Self {
        Self {
            schemas,
            sequence: Some(EventSeq::default()),
            violations: Vec::new(),
        }
    }

    /// A checker that leaves `event_seq` alone: for one socket of a split pair (`?channel=`),
    /// which sees part of a sequence it shares with the other.
    pub fn unsequenced(schemas: Arc<Schemas>) -> Self {
        Self {
            sequence: None,
            ..Self::new(schemas)
        }
    }

    /// Parses and checks one frame; `None` when it is not JSON (a violation too).
    pub fn check(&mut self, text: &str) -> Option<Value> {
        let Ok(frame) = serde_json::from_str::<Value>(text) else {
            self.violations.push(format!("not JSON: {}", shorten(text)));
            return None;
        };
        for error in self.schemas.errors(Direction::Server, &frame) {
            self.violations.push(format!("{error}: {}", shorten(text)));
        }
        if let Some(Err((last, seq))) = self.sequence.as_mut().map(|sequence| sequence.follow(&frame)) {
            self.violations
                .push(format!("event_seq {seq} after {last}: {}", shorten(text)));
        }
        Some(frame)
    }
}

/// `text`, cut to a few hundred characters for a report.
pub fn shorten(text: &str) -> String {
    const KEEP: usize = 300;
    match text.char_indices().nth(KEEP) {
        Some((at, _)) => format!("{}… ({} bytes)", &text[..at], text.len()),
        None => text.to_owned(),
    }
}

/// The schema-checking wire client, which records every frame it receives.
///
/// Every frame it receives must be valid against the schema and continue the `event_seq`
/// sequence (one socket of a split pair shares the sequence and is not checked for it); anything
/// else fails the test.
pub struct Client {
    ws: Socket,
    /// Every frame received, in order.
    pub received: Vec<Value>,
    checker: Checker,
}

impl Client {
    /// Connects to `url`.
    pub async fn connect(url: &str) -> Self {
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .unwrap_or_else(|e| panic!("connect {url}: {e}"));
        let checker = if url.contains("channel=") {
            Checker::unsequenced(schemas())
        } else {
            Checker::new(schemas())
        };
        Self {
            ws,
            received: Vec::new(),
            checker,
        }
    }

    /// Sends a JSON frame.
    pub async fn send(&mut self, frame: Value) {
        self.send_text(&frame.to_string()).await;
    }

    /// Sends raw text.
    pub async fn send_text(&mut self, text: &str) {
        self.ws.send(Message::text(text)).await.expect("send");
    }

    /// The next frame; checks it against the schema and the `event_seq` sequence.
    pub async fn recv(&mut self) -> Value {
        loop {
            let message = tokio::time::timeout(FRAME_TIMEOUT, self.ws.next())
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "no frame within {FRAME_TIMEOUT:?}; received so far:\n{}",
                        summary(&self.received).join("\n")
                    )
                });
            match message {
                Some(Ok(Message::Text(text))) => {
                    let frame = self.checker.check(text.as_str());
                    let violations = std::mem::take(&mut self.checker.violations);
                    assert!(
                        violations.is_empty(),
                        "the server broke the protocol:\n{}",
                        violations.join("\n")
                    );
                    let frame = frame.expect("a checked frame is JSON");
                    self.received.push(frame.clone());
                    return frame;
                }
                Some(Ok(Message::Close(close))) => {
                    panic!("socket closed: {close:?}\n{}", summary(&self.received).join("\n"))
                }
                Some(Ok(_)) => {}
                other => panic!("socket failed: {other:?}"),
            }
        }
    }

    /// Frames up to and including the first that matches `done`.
    pub async fn recv_until(&mut self, done: impl Fn(&Value) -> bool) -> Vec<Value> {
        let mut frames = Vec::new();
        loop {
            let frame = self.recv().await;
            let finished = done(&frame);
            frames.push(frame);
            if finished {
                return frames;
            }
        }
    }

    /// Frames up to and including the first of type `frame_type`.
    pub async fn recv_until_type(&mut self, frame_type: &str) -> Vec<Value> {
        self.recv_until(|f| f["type"] == frame_type).await
    }

    /// Asserts that nothing arrives within `wait`.
    pub async fn expect_silence(&mut self, wait: Duration) {
        if let Ok(Some(Ok(message))) = tokio::time::timeout(wait, self.ws.next()).await {
            panic!("expected no frame, got {message:?}");
        }
    }

    /// Waits for the server to close the socket; returns the close frame.
    pub async fn closed(&mut self) -> Option<CloseFrame> {
        loop {
            match tokio::time::timeout(FRAME_TIMEOUT, self.ws.next())
                .await
                .expect("socket closes")
            {
                Some(Ok(Message::Close(close))) => return close,
                Some(Ok(Message::Text(text))) => self.received.push(serde_json::from_str(text.as_str()).expect("JSON")),
                Some(Ok(_)) => {}
                _ => return None,
            }
        }
    }

    /// Reads for `wait`, answering pings as every client must (tungstenite does while reading),
    /// and fails on any other frame; returns how many pings arrived.
    pub async fn idle(&mut self, wait: Duration) -> usize {
        let until = tokio::time::Instant::now() + wait;
        let mut pings = 0;
        loop {
            match tokio::time::timeout_at(until, self.ws.next()).await {
                Err(_) => return pings,
                Ok(Some(Ok(Message::Ping(_)))) => pings += 1,
                Ok(other) => panic!("expected only pings, got {other:?}"),
            }
        }
    }

    /// Starts the close handshake with `frame`; returns the close frame the server answers with
    /// (`None` when the connection ends without one).
    pub async fn close_with(&mut self, frame: CloseFrame) -> Option<CloseFrame> {
        self.ws.send(Message::Close(Some(frame))).await.expect("send close");
        loop {
            match tokio::time::timeout(FRAME_TIMEOUT, self.ws.next())
                .await
                .expect("the server answers")
            {
                Some(Ok(Message::Close(close))) => return close,
                Some(Ok(_)) => {}
                _ => return None,
            }
        }
    }

    /// The TCP connection under the websocket.
    pub fn tcp(&self) -> &TcpStream {
        match self.ws.get_ref() {
            MaybeTlsStream::Plain(stream) => stream,
            _ => panic!("the tests use plain TCP"),
        }
    }

    /// Closes the socket normally.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }

    /// Drops the TCP connection without a close handshake.
    pub fn drop_connection(self) {
        drop(self.ws);
    }
}

/// A `runtime_start` that creates an agent and a conversation.
pub fn create_runtime(request_id: &str) -> Value {
    json!({"type": "runtime_start", "request_id": request_id, "create_agent": {"body": {"name": "Test Agent"}}})
}

/// An `input` with one user text message.
pub fn user_input(request_id: &str, runtime: &Value, text: &str, client_message_id: &str) -> Value {
    json!({"type": "input", "request_id": request_id, "runtime": runtime, "payload": {"kind": "create_message",
        "messages": [{"role": "user", "content": text, "client_message_id": client_message_id}]}})
}

/// Starts a runtime on `client` and reads the response and the replay; returns the scope.
pub async fn start_runtime(client: &mut Client) -> Value {
    client.send(create_runtime("rs-1")).await;
    let frames = client.recv_until_type("update_subagent_state").await;
    let response = frames
        .iter()
        .find(|f| f["type"] == "runtime_start_response")
        .expect("response");
    assert_eq!(response["success"], true, "{response}");
    response["runtime"].clone()
}

/// One line per frame: type, delta message type or loop status, and a few telling fields.
pub fn summary(frames: &[Value]) -> Vec<String> {
    frames
        .iter()
        .map(|frame| {
            let mut line = frame["type"].as_str().unwrap_or("?").to_owned();
            match line.as_str() {
                "stream_delta" => {
                    let delta = &frame["delta"];
                    line = format!("delta {}", delta["message_type"].as_str().unwrap_or("?"));
                    for key in ["reasoning", "stop_reason", "message", "status", "tool_return"] {
                        if let Some(value) = delta.get(key).and_then(Value::as_str) {
                            line.push_str(&format!(" {key}={value:?}"));
                        }
                    }
                    if let Some(content) = delta.get("content") {
                        line.push_str(&format!(" content={}", text_of(content)));
                    }
                    for key in ["auto_allowed", "auto_denied", "user_input"] {
                        if let Some(ids) = delta.get(format!("{key}_tool_call_ids")) {
                            line.push_str(&format!(" {key}={ids}"));
                        }
                    }
                }
                "update_loop_status" => {
                    line = format!("loop {}", frame["loop_status"]["status"].as_str().unwrap_or("?"))
                }
                "update_device_status" => {
                    line = format!("device processing={}", frame["device_status"]["is_processing"]);
                }
                "update_queue" => {
                    let queue: Vec<&str> = frame["queue"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|q| q["client_message_id"].as_str())
                        .collect();
                    let removed: Vec<String> = frame["removed"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|r| {
                            format!(
                                "{}:{}",
                                r["client_message_id"].as_str().unwrap_or("?"),
                                r["disposition"].as_str().unwrap_or("?")
                            )
                        })
                        .collect();
                    line = format!("queue {queue:?} removed {removed:?}");
                }
                "input_accepted" => {
                    line = format!(
                        "input_accepted accepted={} {}",
                        frame["accepted"],
                        frame.get("disposition").or(frame.get("error")).unwrap_or(&Value::Null)
                    );
                }
                "turn_finished" => line = format!("turn_finished {}", frame["stop_reason"].as_str().unwrap_or("?")),
                "error" => line = format!("error {}", frame["code"].as_str().unwrap_or("?")),
                _ => {
                    if let Some(success) = frame.get("success") {
                        line.push_str(&format!(" success={success}"));
                    }
                }
            }
            line
        })
        .collect()
}

fn text_of(content: &Value) -> String {
    match content {
        Value::String(text) => format!("{text:?}"),
        Value::Array(parts) => format!(
            "{:?}",
            parts.iter().filter_map(|p| p["text"].as_str()).collect::<String>()
        ),
        other => other.to_string(),
    }
}

/// The frames with volatile values replaced: times, machine paths, and every UUID and short
/// random id (numbered by first appearance, so equal ids stay equal).
pub fn normalize(frames: &[Value]) -> Vec<Value> {
    let mut ids = HashMap::new();
    frames
        .iter()
        .map(|frame| normalize_value(frame, &mut ids, None))
        .collect()
}

fn normalize_value(value: &Value, ids: &mut HashMap<String, usize>, key: Option<&str>) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let value = normalize_value(v, ids, Some(k));
                    (replace_uuids(k, ids), value)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|v| normalize_value(v, ids, key)).collect()),
        Value::String(text) => match key {
            Some("emitted_at" | "date" | "created_at" | "updated_at" | "enqueued_at") => json!("<time>"),
            Some("current_working_directory" | "connection_name" | "letta_code_version") => {
                json!(format!("<{}>", key.unwrap_or_default()))
            }
            _ => Value::String(replace_uuids(text, ids)),
        },
        other => other.clone(),
    }
}

fn replace_uuids(text: &str, ids: &mut HashMap<String, usize>) -> String {
    let bytes = text.as_bytes();
    let mut out = String::new();
    let mut index = 0;
    while index < text.len() {
        let short = index > 0
            && bytes[index - 1] == b'-'
            && index + 16 <= text.len()
            && bytes[index..index + 16].iter().all(u8::is_ascii_hexdigit)
            && bytes.get(index + 16).is_none_or(|b| !b.is_ascii_hexdigit());
        if short {
            let id = &text[index..index + 16];
            let next = ids.len() + 1;
            let number = *ids.entry(id.to_owned()).or_insert(next);
            out.push_str(&format!("<id-{number}>"));
            index += 16;
        } else if index + 36 <= text.len() && is_uuid(&bytes[index..index + 36]) {
            let uuid = &text[index..index + 36];
            let next = ids.len() + 1;
            let number = *ids.entry(uuid.to_owned()).or_insert(next);
            out.push_str(&format!("<uuid-{number}>"));
            index += 36;
        } else {
            let ch = text[index..].chars().next().unwrap_or_default();
            out.push(ch);
            index += ch.len_utf8();
        }
    }
    out
}

fn is_uuid(bytes: &[u8]) -> bool {
    bytes.iter().enumerate().all(|(i, b)| match i {
        8 | 13 | 18 | 23 => *b == b'-',
        _ => b.is_ascii_hexdigit(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The golden `stream_delta/assistant_message` with `event_seq` set to `seq`.
    fn delta(seq: u64) -> Value {
        let mut frame = crate::golden_frames()
            .into_iter()
            .find(|golden| golden.name() == "stream_delta/assistant_message")
            .expect("the golden assistant delta")
            .json;
        frame["event_seq"] = json!(seq);
        frame
    }

    #[test]
    fn the_checker_passes_valid_frames_in_sequence() {
        let mut checker = Checker::new(schemas());
        for seq in 1..=3 {
            assert!(checker.check(&delta(seq).to_string()).is_some());
        }
        assert_eq!(checker.violations, Vec::<String>::new());
    }

    #[test]
    fn the_checker_reports_schema_violations_gaps_and_non_json() {
        let mut checker = Checker::new(schemas());
        let mut without_delta = delta(1);
        without_delta.as_object_mut().expect("an object").remove("delta");
        checker.check(&without_delta.to_string());
        assert!(!checker.violations.is_empty(), "a delta without its delta passed");
        checker.violations.clear();
        checker.check(&delta(3).to_string());
        assert_eq!(checker.violations.len(), 1, "{:?}", checker.violations);
        assert!(
            checker.violations[0].starts_with("event_seq 3 after 1: "),
            "{:?}",
            checker.violations
        );
        checker.violations.clear();
        assert_eq!(checker.check("not json"), None);
        assert_eq!(checker.violations, ["not JSON: not json"]);

        let mut unsequenced = Checker::unsequenced(schemas());
        unsequenced.check(&delta(7).to_string());
        assert_eq!(unsequenced.violations, Vec::<String>::new());
    }
}
