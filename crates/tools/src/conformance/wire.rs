//! Raw frames over one websocket: every frame received is checked against this version's schema
//! and the socket's `event_seq` sequence, and kept, so that a check can wait for a frame and
//! then judge the order of everything around it.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use letta_app_server_protocol::compat::{Direction, EventSeq, Validator};
use rustls::ClientConfig;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::http::header::AUTHORIZATION;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use super::driver::{Step, Stop};

/// A wait for one frame may last this many frame timeouts in all, however busy the socket is.
const WAIT_LIMIT: u32 = 6;

/// Where to connect and how.
pub(crate) struct Dialer {
    pub(crate) url: String,
    pub(crate) token: Option<String>,
    pub(crate) tls: Option<Arc<ClientConfig>>,
    pub(crate) frame_timeout: Duration,
    pub(crate) validator: Arc<Validator>,
    /// Where transcripts go (`--record`), one JSONL file per check.
    pub(crate) record: Option<PathBuf>,
}

impl Dialer {
    /// Opens a socket for the check `check`; `name` labels it in failure reasons (`A`, `B`).
    pub(crate) async fn connect(&self, check: &str, name: &'static str) -> Result<Conn, String> {
        let mut request = self
            .url
            .as_str()
            .into_client_request()
            .map_err(|e| format!("{}: {e}", self.url))?;
        if let Some(token) = &self.token {
            let value = HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| "the token is not a valid header value".to_owned())?;
            request.headers_mut().insert(AUTHORIZATION, value);
        }
        let connector = self.tls.as_ref().map(|config| Connector::Rustls(Arc::clone(config)));
        let dial = tokio_tungstenite::connect_async_tls_with_config(request, None, false, connector);
        let ws = match tokio::time::timeout(self.frame_timeout, dial).await {
            Err(_) => return Err(format!("connecting to {} took over {:?}", self.url, self.frame_timeout)),
            Ok(Err(tungstenite::Error::Http(response))) => {
                return Err(format!("connecting to {}: HTTP {}", self.url, response.status()));
            }
            Ok(Err(error)) => return Err(format!("connecting to {}: {error}", self.url)),
            Ok(Ok((ws, _))) => ws,
        };
        Ok(Conn {
            ws,
            name,
            frames: Vec::new(),
            cursor: 0,
            sequence: EventSeq::default(),
            requests: 0,
            frame_timeout: self.frame_timeout,
            validator: Arc::clone(&self.validator),
            transcript: self.record.as_ref().map(|dir| Transcript {
                path: dir.join(format!("{check}.jsonl")),
                opened: Instant::now(),
                lines: Vec::new(),
            }),
        })
    }
}

/// What one socket sent and received, for `--record`: JSONL records `{conn, ms, dir:
/// "send"|"recv", frame}` (`raw` for text that is not JSON), as `validate` reads them. Written,
/// after those of the check's other sockets, when the socket is dropped.
struct Transcript {
    path: PathBuf,
    opened: Instant,
    lines: Vec<String>,
}

impl Transcript {
    fn add(&mut self, name: &str, dir: &str, text: &str) {
        let mut record = json!({"conn": name, "ms": self.opened.elapsed().as_millis() as u64, "dir": dir});
        match serde_json::from_str::<Value>(text) {
            Ok(frame) => record["frame"] = frame,
            Err(_) => record["raw"] = json!(text),
        }
        self.lines.push(record.to_string());
    }
}

impl Drop for Transcript {
    fn drop(&mut self) {
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .and_then(|mut file| file.write_all((self.lines.join("\n") + "\n").as_bytes()));
        if let Err(error) = written {
            eprintln!("letta-app-server-tools: recording {}: {error}", self.path.display());
        }
    }
}

/// One socket and everything it received.
pub(crate) struct Conn {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    name: &'static str,
    /// Every frame received, in order.
    frames: Vec<Value>,
    /// Frames before this one were passed over by a wait.
    cursor: usize,
    /// This socket's `event_seq` so far.
    sequence: EventSeq,
    requests: u64,
    frame_timeout: Duration,
    validator: Arc<Validator>,
    transcript: Option<Transcript>,
}

impl Conn {
    /// The socket's label.
    pub(crate) fn name(&self) -> &'static str {
        self.name
    }

    /// The frame received at `at`.
    pub(crate) fn frame(&self, at: usize) -> &Value {
        &self.frames[at]
    }

    /// The frames received from `from` on.
    pub(crate) fn since(&self, from: usize) -> &[Value] {
        &self.frames[from.min(self.frames.len())..]
    }

    /// The frames received from `from` up to and including `to`.
    pub(crate) fn between(&self, from: usize, to: usize) -> &[Value] {
        &self.frames[from.min(to)..=to]
    }

    /// The position of the next frame to arrive; later waits look from there on.
    pub(crate) fn mark(&mut self) -> usize {
        self.cursor = self.frames.len();
        self.cursor
    }

    /// Makes later waits look again from `at` on (a position from [`Conn::mark`]).
    pub(crate) fn seek(&mut self, at: usize) {
        self.cursor = at.min(self.frames.len());
    }

    /// Sends a frame.
    pub(crate) async fn send(&mut self, frame: &Value) -> Step<()> {
        self.send_text(&frame.to_string()).await
    }

    /// Sends raw text.
    pub(crate) async fn send_text(&mut self, text: &str) -> Step<()> {
        if let Some(transcript) = &mut self.transcript {
            transcript.add(self.name, "send", text);
        }
        let sent = tokio::time::timeout(self.frame_timeout, self.ws.send(Message::text(text))).await;
        match sent {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(Stop::Fail(format!("{}: sending failed: {error}", self.name))),
            Err(_) => Err(Stop::Fail(format!(
                "{}: sending took over {:?}",
                self.name, self.frame_timeout
            ))),
        }
    }

    /// A fresh `request_id` for a command of `kind`, unique among the check's sockets
    /// (`input-B-3`).
    pub(crate) fn request_id(&mut self, kind: &str) -> String {
        self.requests += 1;
        format!("{}-{}-{}", kind.replace('_', "-"), self.name, self.requests)
    }

    /// Sends `frame` (given a fresh `request_id` unless it has one) and waits for the direct
    /// answer of type `answer` carrying its `request_id`. An `error` frame for it fails the check.
    pub(crate) async fn request(&mut self, mut frame: Value, answer: &str) -> Step<Value> {
        if frame.get("request_id").is_none() {
            frame["request_id"] = json!(self.request_id(frame["type"].as_str().unwrap_or("request")));
        }
        let id = frame["request_id"].clone();
        self.send(&frame).await?;
        let what = format!("`{answer}` to `{}`", frame["type"].as_str().unwrap_or_default());
        let at = self
            .wait_for(&what, |f| {
                f["request_id"] == id && f.get("event_seq").is_none() && (f["type"] == answer || f["type"] == "error")
            })
            .await?;
        let reply = self.frames[at].clone();
        if reply["type"] == "error" {
            return Err(Stop::Fail(format!(
                "{}: `{}` was answered with an `error` frame: {}: {}",
                self.name,
                frame["type"].as_str().unwrap_or_default(),
                reply["code"].as_str().unwrap_or_default(),
                reply["message"].as_str().unwrap_or_default()
            )));
        }
        Ok(reply)
    }

    /// Waits for the first frame from the current position on that `matches`; returns its
    /// position, and later waits look after it. Fails when none comes: nothing at all for a frame
    /// timeout, or not this within [`WAIT_LIMIT`] frame timeouts.
    pub(crate) async fn wait_for(&mut self, what: &str, matches: impl Fn(&Value) -> bool) -> Step<usize> {
        self.wait_unless(what, matches, |_| false).await
    }

    /// [`Conn::wait_for`], failing at once when a frame that `ends` the wait comes first (a
    /// `turn_finished` while waiting for something of the turn).
    pub(crate) async fn wait_unless(
        &mut self,
        what: &str,
        matches: impl Fn(&Value) -> bool,
        ends: impl Fn(&Value) -> bool,
    ) -> Step<usize> {
        let deadline = Instant::now() + self.frame_timeout * WAIT_LIMIT;
        loop {
            let waiting = &self.frames[self.cursor..];
            if let Some(offset) = waiting.iter().position(|f| matches(f) || ends(f)) {
                let at = self.cursor + offset;
                self.cursor = at + 1;
                let frame = &self.frames[at];
                if !matches(frame) {
                    let detail = match (frame["stop_reason"].as_str(), frame["error"].as_str()) {
                        (Some(reason), Some(error)) => format!(" with `stop_reason: {reason}` ({})", cut(error)),
                        (Some(reason), None) => format!(" with `stop_reason: {reason}`"),
                        _ => format!(": {}", cut(&frame.to_string())),
                    };
                    return Err(Stop::Fail(format!(
                        "{}: `{}`{detail} came before any {what}",
                        self.name,
                        describe(frame)
                    )));
                }
                return Ok(at);
            }
            if !self.read(deadline).await? {
                let how = if Instant::now() >= deadline {
                    format!("within {}s", (self.frame_timeout * WAIT_LIMIT).as_secs_f64())
                } else {
                    format!("(nothing came for {}s)", self.frame_timeout.as_secs_f64())
                };
                return Err(Stop::Fail(format!(
                    "{}: no {what} {how}; the last frames: {}",
                    self.name,
                    self.recent()
                )));
            }
        }
    }

    /// Closes the socket and waits (a frame timeout at most) for the server's close frame, so
    /// that the server has seen the close when this returns.
    pub(crate) async fn close(mut self) {
        let _ = tokio::time::timeout(self.frame_timeout, async {
            let _ = self.ws.close(None).await;
            while let Some(Ok(_)) = self.ws.next().await {}
        })
        .await;
    }

    /// Reads one frame (checked and kept); `false` when none came before `deadline` or a frame
    /// timeout of silence.
    async fn read(&mut self, deadline: Instant) -> Step<bool> {
        loop {
            let until = deadline.min(Instant::now() + self.frame_timeout);
            let message = match tokio::time::timeout_at(until, self.ws.next()).await {
                Err(_) => return Ok(false),
                Ok(message) => message,
            };
            let text = match message {
                Some(Ok(Message::Text(text))) => text.as_str().to_owned(),
                Some(Ok(Message::Binary(bytes))) => String::from_utf8_lossy(&bytes).into_owned(),
                Some(Ok(Message::Close(close))) => {
                    let how = close.map_or_else(
                        || "without a close code".to_owned(),
                        |close| format!("with {} {}", u16::from(close.code), close.reason),
                    );
                    return Err(Stop::Fail(format!(
                        "{}: the server closed the socket {}; the last frames: {}",
                        self.name,
                        how.trim_end(),
                        self.recent()
                    )));
                }
                Some(Ok(_)) => continue,
                Some(Err(error)) => return Err(Stop::Fail(format!("{}: the socket failed: {error}", self.name))),
                None => return Err(Stop::Fail(format!("{}: the socket ended", self.name))),
            };
            self.accept(&text)?;
            return Ok(true);
        }
    }

    /// Checks a received frame against the schema and the `event_seq` sequence, and keeps it.
    fn accept(&mut self, text: &str) -> Step<()> {
        if let Some(transcript) = &mut self.transcript {
            transcript.add(self.name, "recv", text);
        }
        let frame: Value = serde_json::from_str(text).map_err(|_| {
            Stop::Fail(format!(
                "{}: the server sent a frame that is not JSON: {}",
                self.name,
                cut(text)
            ))
        })?;
        if let Some(violation) = self.validator.validate(Direction::Server, &frame).first() {
            return Err(Stop::Fail(format!(
                "{}: a `{}` frame breaks the schema: {violation}: {}",
                self.name,
                frame["type"].as_str().unwrap_or("?"),
                cut(text)
            )));
        }
        if let Err((last, seq)) = self.sequence.follow(&frame) {
            return Err(Stop::Fail(format!(
                "{}: `event_seq` {seq} follows {last} (it counts each socket's events from 1 without gaps)",
                self.name
            )));
        }
        self.frames.push(frame);
        Ok(())
    }

    /// The last few frames from the current position on, briefly.
    fn recent(&self) -> String {
        const SHOWN: usize = 12;
        let frames = self.since(self.cursor);
        let skipped = frames.len().saturating_sub(SHOWN);
        let shown = summarize(&frames[skipped..]);
        if skipped > 0 {
            format!("({skipped} earlier) {shown}")
        } else {
            shown
        }
    }
}

/// `frames` described one by one, a run of alike ones once with its count (`stream_delta
/// assistant_message ×12`); `none` when there are none.
pub(crate) fn summarize(frames: &[Value]) -> String {
    let mut runs: Vec<(String, usize)> = Vec::new();
    for frame in frames {
        let described = describe(frame);
        match runs.last_mut() {
            Some((last, count)) if *last == described => *count += 1,
            _ => runs.push((described, 1)),
        }
    }
    if runs.is_empty() {
        return "none".to_owned();
    }
    let runs: Vec<String> = runs
        .into_iter()
        .map(|(described, count)| {
            if count > 1 {
                format!("{described} ×{count}")
            } else {
                described
            }
        })
        .collect();
    runs.join(", ")
}

/// A frame's type, with its delta's `message_type` or its loop status (`stream_delta
/// assistant_message`, `update_loop_status WAITING_ON_INPUT`).
pub(crate) fn describe(frame: &Value) -> String {
    let kind = frame["type"].as_str().unwrap_or("?");
    match (delta(frame), loop_status(frame)) {
        (Some(delta), _) => format!("{kind} {delta}"),
        (_, Some(status)) => format!("{kind} {status}"),
        _ => kind.to_owned(),
    }
}

/// The `message_type` of a `stream_delta`.
pub(crate) fn delta(frame: &Value) -> Option<&str> {
    (frame["type"] == "stream_delta").then(|| frame["delta"]["message_type"].as_str())?
}

/// The status of an `update_loop_status`.
pub(crate) fn loop_status(frame: &Value) -> Option<&str> {
    (frame["type"] == "update_loop_status").then(|| frame["loop_status"]["status"].as_str())?
}

/// `text`, cut to a few hundred characters for a failure reason.
pub(crate) fn cut(text: &str) -> String {
    const KEEP: usize = 240;
    match text.char_indices().nth(KEEP) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}
