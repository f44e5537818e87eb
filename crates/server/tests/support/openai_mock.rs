//! A scripted OpenAI Chat Completions server for tests.
//!
//! [`MockOpenAi::start`] serves `POST /v1/chat/completions` on `127.0.0.1:<random port>` with a
//! script of [`MockResponse`]s, one per request in order (the last one repeats), and records every
//! request it gets. Responses can stream SSE chunks with delays, answer with an error status, break
//! the connection mid-stream or stall; the server notes when a client goes away before a streamed
//! body was finished.
//!
//! Include it with `#[path = "support/openai_mock.rs"] mod openai_mock;`.

#![allow(dead_code)]

use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming};
use hyper::header::HeaderValue;
use hyper::service::service_fn;
use hyper::{HeaderMap, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

/// One piece of a streamed body, written after a delay.
#[derive(Debug, Clone)]
pub struct MockChunk {
    /// Wait before writing.
    pub delay: Duration,
    /// The bytes (one HTTP chunk).
    pub bytes: Bytes,
}

/// How a streamed body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEnd {
    /// Normally.
    Complete,
    /// The connection is dropped without finishing the body.
    Break,
    /// Nothing more is sent; the body stays open until the client goes away.
    Stall,
}

/// One scripted answer.
#[derive(Debug, Clone)]
pub enum MockResponse {
    /// `200 text/event-stream` with these chunks.
    Sse {
        /// Wait before sending the response headers.
        head_delay: Duration,
        /// The body, chunk by chunk.
        chunks: Vec<MockChunk>,
        /// How the body ends.
        end: StreamEnd,
    },
    /// An answer with a status and a complete body.
    Status {
        /// HTTP status.
        status: u16,
        /// `Content-Type`.
        content_type: String,
        /// The body.
        body: String,
    },
}

impl MockResponse {
    /// A complete SSE stream: one `data:` event per JSON value, then `data: [DONE]`.
    pub fn sse(events: impl IntoIterator<Item = Value>) -> Self {
        let mut chunks: Vec<String> = events.into_iter().map(|event| format!("data: {event}\n\n")).collect();
        chunks.push("data: [DONE]\n\n".to_owned());
        Self::raw(chunks)
    }

    /// An SSE stream of one `data:` event per JSON value, without `data: [DONE]`.
    pub fn sse_without_done(events: impl IntoIterator<Item = Value>) -> Self {
        Self::raw(events.into_iter().map(|event| format!("data: {event}\n\n")))
    }

    /// SSE events, then the connection is dropped.
    pub fn broken(events: impl IntoIterator<Item = Value>) -> Self {
        Self::sse_without_done(events).ending(StreamEnd::Break)
    }

    /// SSE events, then nothing more (the body stays open).
    pub fn stalled(events: impl IntoIterator<Item = Value>) -> Self {
        Self::sse_without_done(events).ending(StreamEnd::Stall)
    }

    /// A complete stream of these raw body pieces, sent as they are.
    pub fn raw<S: Into<String>>(pieces: impl IntoIterator<Item = S>) -> Self {
        let chunks = pieces
            .into_iter()
            .map(|piece| MockChunk {
                delay: Duration::ZERO,
                bytes: Bytes::from(piece.into()),
            })
            .collect();
        Self::Sse {
            head_delay: Duration::ZERO,
            chunks,
            end: StreamEnd::Complete,
        }
    }

    /// An error status with a JSON body.
    pub fn error(status: u16, body: Value) -> Self {
        Self::Status {
            status,
            content_type: "application/json".to_owned(),
            body: body.to_string(),
        }
    }

    /// `200 application/json` with this body (a non-streamed completion).
    pub fn json(body: Value) -> Self {
        Self::Status {
            status: 200,
            content_type: "application/json".to_owned(),
            body: body.to_string(),
        }
    }

    /// The same stream ending another way.
    pub fn ending(mut self, how: StreamEnd) -> Self {
        if let Self::Sse { end, .. } = &mut self {
            *end = how;
        }
        self
    }

    /// The same stream with `delay` before every chunk.
    pub fn chunk_delay(mut self, delay: Duration) -> Self {
        if let Self::Sse { chunks, .. } = &mut self {
            for chunk in chunks {
                chunk.delay = delay;
            }
        }
        self
    }

    /// The same stream with the response headers sent after `delay`.
    pub fn head_delay(mut self, delay: Duration) -> Self {
        if let Self::Sse { head_delay, .. } = &mut self {
            *head_delay = delay;
        }
        self
    }

    /// The same stream re-cut into HTTP chunks of at most `size` bytes (each keeps the delay of
    /// the chunk it came from on its first piece).
    pub fn split_every(mut self, size: usize) -> Self {
        if let Self::Sse { chunks, .. } = &mut self {
            let size = size.max(1);
            let mut split = Vec::new();
            for chunk in chunks.drain(..) {
                let mut delay = chunk.delay;
                let mut offset = 0;
                while offset < chunk.bytes.len() {
                    let end = (offset + size).min(chunk.bytes.len());
                    split.push(MockChunk {
                        delay,
                        bytes: chunk.bytes.slice(offset..end),
                    });
                    delay = Duration::ZERO;
                    offset = end;
                }
            }
            *chunks = split;
        }
        self
    }
}

/// `{"choices":[{"index":0,"delta":{"content":text}}]}`.
pub fn text_chunk(text: &str) -> Value {
    json!({"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": text}}]})
}

/// `{"choices":[{"index":0,"delta":{"reasoning_content":text}}]}`.
pub fn reasoning_chunk(text: &str) -> Value {
    json!({"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"reasoning_content": text}}]})
}

/// A tool-call fragment; `None` fields are left out.
pub fn tool_chunk(index: u64, id: Option<&str>, name: Option<&str>, arguments: Option<&str>) -> Value {
    let mut function = serde_json::Map::new();
    if let Some(name) = name {
        function.insert("name".to_owned(), json!(name));
    }
    if let Some(arguments) = arguments {
        function.insert("arguments".to_owned(), json!(arguments));
    }
    let mut call = json!({"index": index, "function": function});
    if let Some(id) = id {
        call["id"] = json!(id);
        call["type"] = json!("function");
    }
    json!({"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"tool_calls": [call]}}]})
}

/// A chunk with an empty delta and a finish reason.
pub fn finish_chunk(reason: &str) -> Value {
    json!({"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {}, "finish_reason": reason}]})
}

/// The final usage chunk of `stream_options.include_usage`.
pub fn usage_chunk(prompt: u64, completion: u64, cached: u64, reasoning: u64) -> Value {
    json!({
        "object": "chat.completion.chunk",
        "choices": [],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached},
            "completion_tokens_details": {"reasoning_tokens": reasoning},
        },
    })
}

/// A request the server got.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// HTTP method.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Request headers.
    pub headers: HeaderMap,
    /// The body parsed as JSON (`Value::String` with the raw text when it is not JSON).
    pub body: Value,
}

#[derive(Default)]
struct Shared {
    script: Vec<MockResponse>,
    next: AtomicUsize,
    requests: Mutex<Vec<RecordedRequest>>,
    /// Streamed bodies the client went away from before they were finished.
    abandoned: AtomicUsize,
    /// Connections accepted.
    connections: AtomicUsize,
    /// Connections that ended.
    closed_connections: AtomicUsize,
    changed: Notify,
}

/// A running mock server; stops when dropped.
pub struct MockOpenAi {
    /// `http://127.0.0.1:<port>/v1`.
    pub base_url: String,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl MockOpenAi {
    /// Starts serving `script` (must be called inside a Tokio runtime).
    pub fn start(script: Vec<MockResponse>) -> Self {
        assert!(!script.is_empty(), "the script needs at least one response");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the mock server");
        listener.set_nonblocking(true).expect("non-blocking listener");
        let port = listener.local_addr().expect("local address").port();
        let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
        let shared = Arc::new(Shared {
            script,
            ..Shared::default()
        });
        let task = tokio::spawn(accept_loop(listener, Arc::clone(&shared)));
        Self {
            base_url: format!("http://127.0.0.1:{port}/v1"),
            shared,
            task,
        }
    }

    /// The requests received so far.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.requests.lock().expect("requests lock").clone()
    }

    /// How many requests were received.
    pub fn request_count(&self) -> usize {
        self.shared.requests.lock().expect("requests lock").len()
    }

    /// How many streamed bodies the client abandoned before they were finished.
    pub fn abandoned_streams(&self) -> usize {
        self.shared.abandoned.load(Ordering::SeqCst)
    }

    /// How many connections were accepted.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// How many connections have ended.
    pub fn closed_connections(&self) -> usize {
        self.shared.closed_connections.load(Ordering::SeqCst)
    }

    /// Waits until `condition` holds, up to `timeout`; returns whether it held.
    pub async fn wait_until(&self, timeout: Duration, condition: impl Fn(&Self) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let changed = self.shared.changed.notified();
            if condition(self) {
                return true;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return condition(self);
            }
        }
    }
}

impl Drop for MockOpenAi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(listener: tokio::net::TcpListener, shared: Arc<Shared>) {
    // Connections (and their body feeders) are aborted with the accept loop.
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        shared.connections.fetch_add(1, Ordering::SeqCst);
        let shared = Arc::clone(&shared);
        connections.spawn(async move {
            let service = service_fn({
                let shared = Arc::clone(&shared);
                move |request| handle(request, Arc::clone(&shared))
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
            shared.closed_connections.fetch_add(1, Ordering::SeqCst);
            shared.changed.notify_waiters();
        });
        while connections.try_join_next().is_some() {}
    }
}

async fn handle(request: Request<Incoming>, shared: Arc<Shared>) -> Result<Response<MockBody>, Infallible> {
    let (parts, body) = request.into_parts();
    let bytes = body
        .collect()
        .await
        .map(|collected| collected.to_bytes())
        .unwrap_or_default();
    let body =
        serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    let path = parts
        .uri
        .path_and_query()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_default();
    let recorded = RecordedRequest {
        method: parts.method.to_string(),
        path: path.clone(),
        headers: parts.headers,
        body,
    };
    let method_ok = recorded.method == "POST";
    shared.requests.lock().expect("requests lock").push(recorded);
    shared.changed.notify_waiters();
    if !method_ok || path != "/v1/chat/completions" {
        let body = json!({"error": {"message": format!("no route for {path}")}}).to_string();
        return Ok(status_response(404, "application/json", body));
    }
    let index = shared.next.fetch_add(1, Ordering::SeqCst).min(shared.script.len() - 1);
    match shared.script[index].clone() {
        MockResponse::Status {
            status,
            content_type,
            body,
        } => Ok(status_response(status, &content_type, body)),
        MockResponse::Sse {
            head_delay,
            chunks,
            end,
        } => {
            tokio::time::sleep(head_delay).await;
            let (sender, receiver) = mpsc::channel(1);
            tokio::spawn(feed(sender, chunks, end, Arc::clone(&shared)));
            let mut response = Response::new(MockBody { receiver });
            response
                .headers_mut()
                .insert("content-type", HeaderValue::from_static("text/event-stream"));
            response
                .headers_mut()
                .insert("cache-control", HeaderValue::from_static("no-cache"));
            Ok(response)
        }
    }
}

fn status_response(status: u16, content_type: &str, body: String) -> Response<MockBody> {
    let (sender, receiver) = mpsc::channel(1);
    let _ = sender.try_send(Ok(Frame::data(Bytes::from(body))));
    let mut response = Response::new(MockBody { receiver });
    *response.status_mut() = StatusCode::from_u16(status).expect("valid status");
    response.headers_mut().insert(
        "content-type",
        HeaderValue::from_str(content_type).expect("content type"),
    );
    response
}

type FrameResult = Result<Frame<Bytes>, io::Error>;

async fn feed(sender: mpsc::Sender<FrameResult>, chunks: Vec<MockChunk>, end: StreamEnd, shared: Arc<Shared>) {
    let abandoned = || {
        shared.abandoned.fetch_add(1, Ordering::SeqCst);
        shared.changed.notify_waiters();
    };
    for chunk in chunks {
        if !chunk.delay.is_zero() {
            tokio::select! {
                () = tokio::time::sleep(chunk.delay) => {}
                () = sender.closed() => return abandoned(),
            }
        }
        if sender.send(Ok(Frame::data(chunk.bytes))).await.is_err() {
            return abandoned();
        }
    }
    match end {
        StreamEnd::Complete => {}
        StreamEnd::Break => {
            let _ = sender
                .send(Err(io::Error::other("mock: connection broken on purpose")))
                .await;
        }
        StreamEnd::Stall => {
            sender.closed().await;
            abandoned();
        }
    }
}

/// A response body fed through a channel.
struct MockBody {
    receiver: mpsc::Receiver<FrameResult>,
}

impl Body for MockBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<FrameResult>> {
        self.receiver.poll_recv(cx)
    }
}
