//! Scripted answers for tests.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream;
use hyper::StatusCode;
use serde_json::Value;

use crate::chunks::{DONE, sse_event};
use crate::server::{MockServer, ReceivedRequest, Reply, Responder, StreamEnd};

/// One piece of a body, written after a delay.
#[derive(Debug, Clone)]
struct MockChunk {
    delay: Duration,
    /// One HTTP chunk.
    bytes: Bytes,
}

/// One scripted answer: a status, and a body written chunk by chunk.
#[derive(Debug, Clone)]
pub struct MockResponse {
    status: u16,
    content_type: &'static str,
    head_delay: Duration,
    chunks: Vec<MockChunk>,
    end: StreamEnd,
}

impl MockResponse {
    /// A complete SSE stream: one `data:` event per JSON value, then `data: [DONE]`.
    pub fn sse(events: impl IntoIterator<Item = Value>) -> Self {
        let events = events.into_iter().map(|event| sse_event(&event));
        Self::stream(events.chain([Bytes::from_static(DONE)]))
    }

    /// An SSE stream of one `data:` event per JSON value, without `data: [DONE]`.
    pub fn sse_without_done(events: impl IntoIterator<Item = Value>) -> Self {
        Self::stream(events.into_iter().map(|event| sse_event(&event)))
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
        Self::stream(pieces.into_iter().map(|piece| Bytes::from(piece.into())))
    }

    /// An error status with a JSON body.
    pub fn error(status: u16, body: Value) -> Self {
        Self::complete(status, body)
    }

    /// `200 application/json` with this body (a non-streamed completion).
    pub fn json(body: Value) -> Self {
        Self::complete(200, body)
    }

    /// `status` with a JSON body in one chunk.
    fn complete(status: u16, body: Value) -> Self {
        Self {
            status,
            content_type: "application/json",
            ..Self::stream([Bytes::from(body.to_string())])
        }
    }

    /// `200 text/event-stream`, one HTTP chunk per piece.
    fn stream(pieces: impl IntoIterator<Item = Bytes>) -> Self {
        let chunks = pieces
            .into_iter()
            .map(|bytes| MockChunk {
                delay: Duration::ZERO,
                bytes,
            })
            .collect();
        Self {
            status: 200,
            content_type: "text/event-stream",
            head_delay: Duration::ZERO,
            chunks,
            end: StreamEnd::Complete,
        }
    }

    /// The same response ending another way.
    pub fn ending(mut self, end: StreamEnd) -> Self {
        self.end = end;
        self
    }

    /// The same response with `delay` before every chunk.
    pub fn chunk_delay(mut self, delay: Duration) -> Self {
        for chunk in &mut self.chunks {
            chunk.delay = delay;
        }
        self
    }

    /// The same response with the headers sent after `delay`.
    pub fn head_delay(mut self, delay: Duration) -> Self {
        self.head_delay = delay;
        self
    }

    /// The same response re-cut into HTTP chunks of at most `size` bytes (each keeps the delay of
    /// the chunk it came from on its first piece).
    pub fn split_every(mut self, size: usize) -> Self {
        let size = size.max(1);
        let mut split = Vec::new();
        for chunk in self.chunks.drain(..) {
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
        self.chunks = split;
        self
    }

    fn reply(&self) -> Reply {
        let body = stream::iter(self.chunks.clone()).then(|chunk| async move {
            if !chunk.delay.is_zero() {
                tokio::time::sleep(chunk.delay).await;
            }
            chunk.bytes
        });
        Reply {
            status: StatusCode::from_u16(self.status).expect("a valid HTTP status"),
            content_type: self.content_type,
            head_delay: self.head_delay,
            body: body.boxed(),
            end: self.end,
        }
    }
}

/// Answers with a script of [`MockResponse`]s, one per request in order (the last one repeats),
/// and records every request.
pub struct Script {
    responses: Vec<MockResponse>,
    next: AtomicUsize,
    requests: Mutex<Vec<ReceivedRequest>>,
}

impl Responder for Script {
    /// Every chunk is a write of its own, as a test scripted it.
    const WRITE_EACH_CHUNK: bool = true;

    fn respond(&self, request: ReceivedRequest) -> Reply {
        self.requests.lock().expect("requests lock").push(request);
        let index = self.next.fetch_add(1, Ordering::SeqCst).min(self.responses.len() - 1);
        self.responses[index].reply()
    }
}

impl MockServer<Script> {
    /// Serves `responses` (inside a Tokio runtime).
    pub fn scripted(responses: Vec<MockResponse>) -> Self {
        assert!(!responses.is_empty(), "the script needs at least one response");
        Self::start(Script {
            responses,
            next: AtomicUsize::new(0),
            requests: Mutex::new(Vec::new()),
        })
        .expect("start the mock server")
    }

    /// The requests received so far.
    pub fn requests(&self) -> Vec<ReceivedRequest> {
        self.responder().requests.lock().expect("requests lock").clone()
    }

    /// How many requests were received.
    pub fn request_count(&self) -> usize {
        self.responder().requests.lock().expect("requests lock").len()
    }
}
