//! What every chaos client shares: websocket connections, the schema check of each frame the
//! server sends, and the frames a client sends.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use letta_app_server_tests::schema::{Direction, Schemas};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A client websocket.
pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long a client waits for a frame it expects before it gives up on the connection.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(30);

/// Connects to `url`; `None` when the server does not answer (e.g. it is being restarted).
pub async fn connect(url: &str) -> Option<Socket> {
    let connecting = tokio_tungstenite::connect_async(url);
    match tokio::time::timeout(FRAME_TIMEOUT, connecting).await {
        Ok(Ok((socket, _))) => Some(socket),
        _ => None,
    }
}

/// The next text (or binary) frame, as text; `Err` says why there is none: the server closed
/// the socket (with its close code and reason), the socket failed, or nothing came in time.
pub async fn next_text(socket: &mut Socket, timeout: Duration) -> Result<String, Ended> {
    loop {
        let message = tokio::time::timeout(timeout, socket.next())
            .await
            .map_err(|_| Ended::Silent)?;
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
    /// Nothing arrived within the timeout.
    Silent,
}

impl std::fmt::Display for Ended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Closed(how) => write!(f, "closed by the server ({how})"),
            Self::Failed(error) => write!(f, "failed: {error}"),
            Self::Silent => write!(f, "no frame within {FRAME_TIMEOUT:?}"),
        }
    }
}

/// Checks what one connection receives: every frame against `schema/frames.schema.json`, and
/// `event_seq` gap-free from 1.
pub struct Checker {
    schemas: Arc<Schemas>,
    last_seq: u64,
    /// Every violation seen, with the frame (shortened).
    pub violations: Vec<String>,
}

impl Checker {
    /// A checker for a new connection.
    pub fn new(schemas: Arc<Schemas>) -> Self {
        Self {
            schemas,
            last_seq: 0,
            violations: Vec::new(),
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
        if let Some(seq) = frame.get("event_seq").and_then(Value::as_u64) {
            if seq != self.last_seq + 1 {
                self.violations
                    .push(format!("event_seq {seq} after {}: {}", self.last_seq, shorten(text)));
            }
            self.last_seq = seq;
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

/// A `runtime_start` that resumes (`agent_id` + `conversation_id`) a conversation.
pub fn resume(request_id: &str, runtime: &Value) -> Value {
    json!({"type": "runtime_start", "request_id": request_id,
        "agent_id": runtime["agent_id"], "conversation_id": runtime["conversation_id"]})
}

/// Creates an agent and a conversation on `socket`; returns the scope once the replay is read.
pub async fn create_runtime(socket: &mut Socket, checker: &mut Checker, name: &str) -> Result<Value, String> {
    use futures_util::SinkExt;
    let request = json!({"type": "runtime_start", "request_id": format!("rs-{name}"),
        "create_agent": {"body": {"name": name}}});
    socket
        .send(Message::text(request.to_string()))
        .await
        .map_err(|e| format!("sending runtime_start: {e}"))?;
    let mut runtime = None;
    loop {
        let text = next_text(socket, FRAME_TIMEOUT)
            .await
            .map_err(|e| format!("runtime_start: {e}"))?;
        let Some(frame) = checker.check(&text) else { continue };
        match frame["type"].as_str() {
            Some("runtime_start_response") if frame["success"] == true => runtime = Some(frame["runtime"].clone()),
            Some("runtime_start_response" | "error") => return Err(format!("runtime_start failed: {text}")),
            Some("update_subagent_state") => {
                if let Some(runtime) = runtime {
                    return Ok(runtime);
                }
            }
            _ => {}
        }
    }
}
