//! A local OpenAI-compatible Chat Completions server (hyper 1, in-process) that streams as many
//! chunks as the newest user message asks for, so that the server's OpenAI-compatible provider
//! can be measured without a model.
//!
//! `POST /v1/chat/completions` answers `text/event-stream`:
//! `data: {"choices":[{"index":0,"delta":{"content":…}}]}` per chunk, then a chunk with
//! `finish_reason: "stop"`, a usage chunk and `data: [DONE]`. The newest user message steers it
//! with the scripted model's directives:
//!
//! * `[[deltas: N]]`: `N` chunks (default 1);
//! * `[[delay: MS]]`: wait `MS` milliseconds before each chunk;
//! * `[[reply: TEXT]]`: the text of a single chunk (default `Hello!`).
//!
//! With `[[deltas: N]]` each chunk's text is the time it was handed to the connection, in
//! microseconds since [`MockLlm::epoch`], followed by a space, so that a client receiving the
//! server's `stream_delta` can tell exactly how long the chunk took to get through the server.

use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming};
use hyper::header::HeaderValue;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::BenchResult;

/// Chunks buffered between a response's feeder task and its connection.
const CHANNEL_CHUNKS: usize = 32;

/// The running mock; stops serving when dropped.
pub struct MockLlm {
    /// `http://127.0.0.1:<port>/v1`.
    pub base_url: String,
    /// The zero of the time stamps in chunk texts.
    pub epoch: Instant,
    task: JoinHandle<()>,
}

impl MockLlm {
    /// Binds a free loopback port and starts serving (inside a Tokio runtime).
    pub async fn start(epoch: Instant) -> BenchResult<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("binding the mock LLM server: {e}"))?;
        let port = listener
            .local_addr()
            .map_err(|e| format!("mock LLM address: {e}"))?
            .port();
        let task = tokio::spawn(accept(listener, Arc::new(epoch)));
        Ok(Self {
            base_url: format!("http://127.0.0.1:{port}/v1"),
            epoch,
            task,
        })
    }

    /// The send time of a time-stamped chunk text (see the module docs).
    pub fn stamp_of(&self, text: &str) -> Option<Instant> {
        let micros: u64 = text.trim().parse().ok()?;
        Some(self.epoch + Duration::from_micros(micros))
    }
}

impl Drop for MockLlm {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept(listener: TcpListener, epoch: Arc<Instant>) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let epoch = epoch.clone();
        connections.spawn(async move {
            let service = service_fn(move |request| respond(request, *epoch));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
        while connections.try_join_next().is_some() {}
    }
}

/// What the newest user message asks for.
#[derive(Debug, Default, PartialEq)]
struct Ask {
    deltas: Option<usize>,
    delay: Option<Duration>,
    reply: Option<String>,
}

impl Ask {
    fn parse(text: &str) -> Self {
        let mut ask = Self::default();
        let mut rest = text;
        while let Some(start) = rest.find("[[") {
            let Some(length) = rest[start..].find("]]") else { break };
            let directive = &rest[start + 2..start + length];
            rest = &rest[start + length + 2..];
            let (name, argument) = directive.split_once(':').unwrap_or((directive, ""));
            let argument = argument.trim();
            match name.trim() {
                "deltas" => ask.deltas = argument.parse().ok(),
                "delay" => ask.delay = argument.parse().ok().map(Duration::from_millis),
                "reply" => ask.reply = Some(argument.to_owned()),
                _ => {}
            }
        }
        ask
    }
}

/// The text of the newest user message of a Chat Completions request.
fn newest_user_text(request: &Value) -> String {
    let Some(messages) = request["messages"].as_array() else {
        return String::new();
    };
    let Some(user) = messages.iter().rev().find(|message| message["role"] == "user") else {
        return String::new();
    };
    match &user["content"] {
        Value::String(text) => text.clone(),
        Value::Array(parts) => parts.iter().filter_map(|part| part["text"].as_str()).collect(),
        _ => String::new(),
    }
}

async fn respond(request: Request<Incoming>, epoch: Instant) -> Result<Response<ChannelBody>, Infallible> {
    let (parts, body) = request.into_parts();
    if parts.method != hyper::Method::POST || parts.uri.path() != "/v1/chat/completions" {
        return Ok(status(StatusCode::NOT_FOUND, "no such route"));
    }
    let Ok(body) = body.collect().await.map(|collected| collected.to_bytes()) else {
        return Ok(status(StatusCode::BAD_REQUEST, "unreadable body"));
    };
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return Ok(status(StatusCode::BAD_REQUEST, "body is not JSON"));
    };
    let ask = Ask::parse(&newest_user_text(&request));
    let prompt_tokens = request["messages"].as_array().map_or(0, Vec::len) as u64;
    let (sender, receiver) = mpsc::channel(CHANNEL_CHUNKS);
    tokio::spawn(feed(sender, ask, prompt_tokens, epoch));
    let mut response = Response::new(ChannelBody { receiver });
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static("text/event-stream"));
    response
        .headers_mut()
        .insert("cache-control", HeaderValue::from_static("no-cache"));
    Ok(response)
}

/// Writes the response's events into the body channel; stops when the client goes away.
async fn feed(sender: mpsc::Sender<Frame<Bytes>>, ask: Ask, prompt_tokens: u64, epoch: Instant) {
    let event = |value: Value| Frame::data(Bytes::from(format!("data: {value}\n\n")));
    let chunk = |text: &str| {
        event(json!({"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": text}}]}))
    };
    let count = ask.deltas.unwrap_or(1);
    for _ in 0..count {
        if let Some(delay) = ask.delay {
            tokio::time::sleep(delay).await;
        }
        let text = match (&ask.deltas, &ask.reply) {
            (None, Some(reply)) => reply.clone(),
            (None, None) => "Hello!".to_owned(),
            (Some(_), _) => format!("{} ", epoch.elapsed().as_micros()),
        };
        if sender.send(chunk(&text)).await.is_err() {
            return;
        }
    }
    let finish =
        json!({"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]});
    let usage = json!({"object": "chat.completion.chunk", "choices": [], "usage": {
        "prompt_tokens": prompt_tokens, "completion_tokens": count, "total_tokens": prompt_tokens + count as u64}});
    for frame in [
        event(finish),
        event(usage),
        Frame::data(Bytes::from_static(b"data: [DONE]\n\n")),
    ] {
        if sender.send(frame).await.is_err() {
            return;
        }
    }
}

fn status(code: StatusCode, message: &str) -> Response<ChannelBody> {
    let (sender, receiver) = mpsc::channel(1);
    let body = json!({"error": {"message": message}}).to_string();
    let _ = sender.try_send(Frame::data(Bytes::from(body)));
    let mut response = Response::new(ChannelBody { receiver });
    *response.status_mut() = code;
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    response
}

/// A response body fed through a channel; it ends when the sender is dropped.
struct ChannelBody {
    receiver: mpsc::Receiver<Frame<Bytes>>,
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        self.receiver.poll_recv(cx).map(|frame| frame.map(Ok))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directives_steer_the_reply() {
        assert_eq!(
            Ask::parse("go [[deltas: 50]] [[delay: 20]] [[think: x]]"),
            Ask {
                deltas: Some(50),
                delay: Some(Duration::from_millis(20)),
                reply: None
            }
        );
        assert_eq!(Ask::parse("[[reply: hi there]]").reply.as_deref(), Some("hi there"));
        let request = json!({"messages": [{"role": "user", "content": "old"}, {"role": "assistant", "content": "x"},
            {"role": "user", "content": [{"type": "text", "text": "new"}]}]});
        assert_eq!(newest_user_text(&request), "new");
    }
}
