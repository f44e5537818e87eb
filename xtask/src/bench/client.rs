//! A minimal websocket client for the benchmarks: sends frames, receives them with their
//! arrival time, counts bytes, and reads only what a measurement needs.

use std::borrow::Cow;
use std::time::{Duration, Instant, SystemTime};

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
/// An `input` with one user text message.
pub use letta_app_server_tests::wire::user_input as input;
use letta_app_server_tests::wire::{Socket, next_text};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use super::BenchResult;

/// How long a client waits for one frame before giving up.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(30);

/// One received text frame.
#[derive(Debug)]
pub struct Received {
    /// The frame.
    pub text: String,
    /// When it was read off the socket (monotonic).
    pub at: Instant,
    /// When it was read off the socket (wall clock, to compare with the server's timestamps).
    pub wall: SystemTime,
}

impl Received {
    /// The frame's `type`.
    pub fn frame_type(&self) -> &str {
        frame_type(&self.text)
    }

    /// The parts of the frame the benchmarks look at.
    pub fn lite(&self) -> BenchResult<Lite<'_>> {
        serde_json::from_str(&self.text).map_err(|e| format!("unreadable frame ({e}): {}", self.text))
    }
}

/// The `type` of a server frame. Every frame this server sends starts with `{"type":"…"`; the
/// fallback parses the frame.
pub fn frame_type(text: &str) -> &str {
    text.strip_prefix("{\"type\":\"")
        .and_then(|rest| rest.split_once('"'))
        .map_or("?", |(kind, _)| kind)
}

/// The fields of a frame the benchmarks read; everything else is skipped unparsed.
#[derive(Debug, Deserialize)]
pub struct Lite<'a> {
    /// `stream_delta.delta`.
    #[serde(borrow)]
    pub delta: Option<LiteDelta<'a>>,
    /// `runtime` of events and responses.
    pub runtime: Option<Value>,
    /// `runtime_start_response.success`.
    pub success: Option<bool>,
    /// `turn_finished.stop_reason`.
    #[serde(borrow)]
    pub stop_reason: Option<Cow<'a, str>>,
}

/// The fields of a delta the benchmarks read.
#[derive(Debug, Deserialize)]
pub struct LiteDelta<'a> {
    /// `assistant_message`, `usage_statistics`, …
    #[serde(borrow)]
    pub message_type: Option<Cow<'a, str>>,
    /// When the server made the chunk (ISO 8601, milliseconds).
    #[serde(borrow)]
    pub date: Option<Cow<'a, str>>,
    /// The chunk's content: a string or text parts.
    pub content: Option<Value>,
}

impl LiteDelta<'_> {
    /// Whether this is a chunk of the assistant's reply.
    pub fn is_assistant(&self) -> bool {
        self.message_type.as_deref() == Some("assistant_message")
    }

    /// The text of the content.
    pub fn text(&self) -> String {
        match &self.content {
            Some(Value::String(text)) => text.clone(),
            Some(Value::Array(parts)) => parts.iter().filter_map(|part| part["text"].as_str()).collect(),
            _ => String::new(),
        }
    }

    /// `date` as a wall-clock time.
    pub fn created(&self) -> Option<SystemTime> {
        self.date
            .as_deref()
            .and_then(|date| humantime::parse_rfc3339(date).ok())
    }
}

/// A websocket connection to the server.
pub struct Client {
    sink: SplitSink<Socket, Message>,
    source: SplitStream<Socket>,
}

impl Client {
    /// Connects to `url`.
    pub async fn connect(url: &str) -> BenchResult<Self> {
        let (socket, _) = tokio_tungstenite::connect_async(url)
            .await
            .map_err(|e| format!("connecting to {url}: {e}"))?;
        let (sink, source) = socket.split();
        Ok(Self { sink, source })
    }

    /// Sends a frame; returns its length in bytes.
    pub async fn send(&mut self, frame: &Value) -> BenchResult<usize> {
        send(&mut self.sink, frame).await
    }

    /// The next text frame.
    pub async fn recv(&mut self) -> BenchResult<Received> {
        recv(&mut self.source).await
    }

    /// Splits the client into its sending and receiving halves.
    pub fn split(self) -> (SplitSink<Socket, Message>, SplitStream<Socket>) {
        (self.sink, self.source)
    }

    /// Closes the connection.
    pub async fn close(mut self) {
        let _ = self.sink.close().await;
    }
}

/// Sends a frame on a sending half; returns its length in bytes.
pub async fn send(sink: &mut SplitSink<Socket, Message>, frame: &Value) -> BenchResult<usize> {
    let text = frame.to_string();
    let length = text.len();
    sink.send(Message::text(text))
        .await
        .map_err(|e| format!("sending a frame: {e}"))?;
    Ok(length)
}

/// The next text frame from a receiving half; a close or a silence of [`FRAME_TIMEOUT`] is an
/// error that says why.
pub async fn recv(source: &mut SplitStream<Socket>) -> BenchResult<Received> {
    let text = next_text(source, FRAME_TIMEOUT)
        .await
        .map_err(|ended| format!("no frame from the server: the socket {ended}"))?;
    let (at, wall) = (Instant::now(), SystemTime::now());
    Ok(Received { text, at, wall })
}

/// A `runtime_start` creating an agent (with this model handle, or the scripted model) and a
/// new conversation.
pub fn runtime_start(request_id: &str, model: Option<&str>) -> Value {
    let mut body = json!({"name": "Bench Agent"});
    if let Some(model) = model {
        body["model"] = json!(model);
    }
    json!({"type": "runtime_start", "request_id": request_id, "create_agent": {"body": body}})
}

/// What a `runtime_start` round trip took.
#[derive(Debug)]
pub struct Started {
    /// The new scope (`{"agent_id", "conversation_id"}`).
    pub runtime: Value,
    /// Until `runtime_start_response`.
    pub response: Duration,
    /// Until the replay's last frame (`update_subagent_state`).
    pub replayed: Duration,
}

/// Starts a runtime for a new agent and conversation on `client` and reads the replay.
pub async fn start_runtime(client: &mut Client, request_id: &str, model: Option<&str>) -> BenchResult<Started> {
    start(client, &runtime_start(request_id, model)).await
}

/// Starts a runtime for a new agent, subscribed with `resume_after: 0` (its events are
/// numbered, retained and written to the store before they are sent), and reads the replay.
pub async fn start_resumable_runtime(
    client: &mut Client,
    request_id: &str,
    model: Option<&str>,
) -> BenchResult<Started> {
    let mut frame = runtime_start(request_id, model);
    frame["resume_after"] = json!(0);
    start(client, &frame).await
}

/// Starts a runtime on the stored conversation of `runtime` (`{"agent_id", "conversation_id"}`)
/// and reads the replay.
pub async fn resume_runtime(client: &mut Client, request_id: &str, runtime: &Value) -> BenchResult<Started> {
    let frame = json!({"type": "runtime_start", "request_id": request_id,
        "agent_id": runtime["agent_id"], "conversation_id": runtime["conversation_id"]});
    start(client, &frame).await
}

/// Sends a `runtime_start` and reads its response and replay.
async fn start(client: &mut Client, frame: &Value) -> BenchResult<Started> {
    let sent = Instant::now();
    client.send(frame).await?;
    let mut response = None;
    loop {
        let frame = client.recv().await?;
        match frame.frame_type() {
            "runtime_start_response" => {
                let lite = frame.lite()?;
                if lite.success != Some(true) {
                    return Err(format!("runtime_start failed: {}", frame.text));
                }
                let runtime = lite.runtime.ok_or("runtime_start_response without a runtime")?;
                response = Some((runtime, frame.at - sent));
            }
            "update_subagent_state" => {
                if let Some((runtime, response)) = response {
                    return Ok(Started {
                        runtime,
                        response,
                        replayed: frame.at - sent,
                    });
                }
            }
            "error" => return Err(format!("runtime_start failed: {}", frame.text)),
            _ => {}
        }
    }
}
