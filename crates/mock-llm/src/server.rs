//! The HTTP side: connections, routing, and streaming a [`Reply`] with backpressure.

use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use futures_util::stream::{self, BoxStream};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming};
use hyper::header::HeaderValue;
use hyper::service::service_fn;
use hyper::{HeaderMap, Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio::task::{JoinHandle, JoinSet};

/// The route the [`Responder`] answers.
const ROUTE: &str = "/v1/chat/completions";
/// The model list (`GET`), answered with [`MockServer::set_models`]'s ids; anything else gets 404.
const MODELS_ROUTE: &str = "/v1/models";

/// The largest request body read: a conversation's whole history fits, a runaway client does not.
const MAX_BODY_BYTES: usize = 64 << 20;

/// A `POST /v1/chat/completions` request.
#[derive(Debug, Clone)]
pub struct ReceivedRequest {
    /// Request headers.
    pub headers: HeaderMap,
    /// The body parsed as JSON (`Value::String` with the raw text when it is not JSON).
    pub body: Value,
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

/// An answer to one request; its body is written chunk by chunk as the client takes it.
pub struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) content_type: &'static str,
    /// Wait before sending the response headers.
    pub(crate) head_delay: Duration,
    /// One HTTP chunk per item; an item may take its time (a delay, a time stamp).
    pub(crate) body: BoxStream<'static, Bytes>,
    pub(crate) end: StreamEnd,
}

impl Reply {
    /// `{"error":{"message":…}}` with this status.
    pub(crate) fn error(status: StatusCode, message: &str) -> Self {
        Self::complete(status, &json!({"error": {"message": message}}))
    }

    /// `200 application/json` with this body.
    pub(crate) fn json(body: &Value) -> Self {
        Self::complete(StatusCode::OK, body)
    }

    fn complete(status: StatusCode, body: &Value) -> Self {
        Self {
            status,
            content_type: "application/json",
            head_delay: Duration::ZERO,
            body: stream::iter([Bytes::from(body.to_string())]).boxed(),
            end: StreamEnd::Complete,
        }
    }

    /// `200 text/event-stream` with this body.
    pub(crate) fn event_stream(body: BoxStream<'static, Bytes>) -> Self {
        Self {
            status: StatusCode::OK,
            content_type: "text/event-stream",
            head_delay: Duration::ZERO,
            body,
            end: StreamEnd::Complete,
        }
    }
}

/// Answers the requests of a [`MockServer`]: [`Script`](crate::Script) or
/// [`Directives`](crate::Directives).
pub trait Responder: Send + Sync + 'static {
    /// Whether each chunk of a streamed body goes out in a write of its own, even when the next
    /// is ready at once (otherwise the connection may write ready chunks together).
    const WRITE_EACH_CHUNK: bool;

    /// The answer to `request`.
    fn respond(&self, request: ReceivedRequest) -> Reply;
}

struct Shared<R> {
    responder: R,
    /// Streamed bodies the client went away from before they were finished.
    abandoned: AtomicUsize,
    /// Connections accepted.
    connections: AtomicUsize,
    /// Connections that ended.
    closed_connections: AtomicUsize,
    /// The ids `GET /v1/models` lists.
    models: Mutex<Vec<String>>,
    /// `GET /v1/models` requests answered.
    model_lists: AtomicUsize,
    changed: Notify,
}

/// A running server; stops when dropped.
pub struct MockServer<R> {
    /// `http://127.0.0.1:<port>/v1`.
    pub base_url: String,
    shared: Arc<Shared<R>>,
    task: JoinHandle<()>,
}

impl<R: Responder> MockServer<R> {
    /// Binds a free loopback port and serves `responder` (inside a Tokio runtime).
    pub fn start(responder: R) -> io::Result<Self> {
        Self::start_on(0, responder)
    }

    /// Binds `127.0.0.1:port` (a free port for 0) and serves `responder` (inside a Tokio
    /// runtime).
    pub fn start_on(port: u16, responder: R) -> io::Result<Self> {
        let listener = std::net::TcpListener::bind(("127.0.0.1", port))?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let shared = Arc::new(Shared {
            responder,
            abandoned: AtomicUsize::new(0),
            connections: AtomicUsize::new(0),
            closed_connections: AtomicUsize::new(0),
            models: Mutex::default(),
            model_lists: AtomicUsize::new(0),
            changed: Notify::new(),
        });
        let task = tokio::spawn(accept_loop(listener, Arc::clone(&shared)));
        Ok(Self {
            base_url: format!("http://127.0.0.1:{port}/v1"),
            shared,
            task,
        })
    }

    /// What answers the requests.
    pub fn responder(&self) -> &R {
        &self.shared.responder
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

    /// Sets the model ids `GET /v1/models` lists (none at first), in OpenAI's list format.
    pub fn set_models<S: Into<String>>(&self, ids: impl IntoIterator<Item = S>) {
        *lock(&self.shared.models) = ids.into_iter().map(Into::into).collect();
    }

    /// How many `GET /v1/models` requests were answered.
    pub fn model_lists(&self) -> usize {
        self.shared.model_lists.load(Ordering::SeqCst)
    }

    /// Waits until `condition` holds, up to `timeout`; returns whether it held. It is checked
    /// again whenever a request comes in, a connection ends or a stream is abandoned.
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

impl<R> Drop for MockServer<R> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop<R: Responder>(listener: tokio::net::TcpListener, shared: Arc<Shared<R>>) {
    // Connections (and the bodies they stream) are aborted with the accept loop.
    let mut connections = JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
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

async fn handle<R: Responder>(
    request: Request<Incoming>,
    shared: Arc<Shared<R>>,
) -> Result<Response<StreamBody<R>>, Infallible> {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path_and_query().map_or("", |path| path.as_str());
    let reply = if parts.method == Method::GET && path == MODELS_ROUTE {
        shared.model_lists.fetch_add(1, Ordering::SeqCst);
        let data: Vec<Value> = lock(&shared.models)
            .iter()
            .map(|id| json!({"id": id, "object": "model", "owned_by": "mock"}))
            .collect();
        shared.changed.notify_waiters();
        Reply::json(&json!({"object": "list", "data": data}))
    } else if parts.method != Method::POST || path != ROUTE {
        Reply::error(StatusCode::NOT_FOUND, &format!("no route for {path}"))
    } else if let Ok(collected) = http_body_util::Limited::new(body, MAX_BODY_BYTES).collect().await {
        let bytes = collected.to_bytes();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        let reply = shared.responder.respond(ReceivedRequest {
            headers: parts.headers,
            body,
        });
        shared.changed.notify_waiters();
        reply
    } else {
        Reply::error(StatusCode::BAD_REQUEST, "unreadable body, or larger than 64 MiB")
    };
    // A zero sleep still waits for the timer's next tick (about a millisecond).
    if !reply.head_delay.is_zero() {
        tokio::time::sleep(reply.head_delay).await;
    }
    let mut response = Response::new(StreamBody {
        body: reply.body,
        end: reply.end,
        pause: false,
        drained: false,
        finished: false,
        shared,
    });
    *response.status_mut() = reply.status;
    let headers = response.headers_mut();
    headers.insert("content-type", HeaderValue::from_static(reply.content_type));
    headers.insert("cache-control", HeaderValue::from_static("no-cache"));
    Ok(response)
}

type FrameResult = Result<Frame<Bytes>, io::Error>;

/// A response body that its connection polls straight from the reply's stream: a chunk is made
/// (and a [`Directives`](crate::Directives) time stamp taken) when the connection is ready to
/// write it, not earlier in a task of its own whose chunk would then wait for the connection's
/// turn on the runtime (a wait that a latency measured from the stamp would count).
struct StreamBody<R> {
    body: BoxStream<'static, Bytes>,
    end: StreamEnd,
    /// Set after a chunk when each goes out alone: the next poll yields once, so the
    /// connection writes what it has.
    pause: bool,
    /// The reply's stream has no more chunks.
    drained: bool,
    /// The body ended as its reply says (a broken one included).
    finished: bool,
    shared: Arc<Shared<R>>,
}

impl<R: Responder> Body for StreamBody<R> {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<FrameResult>> {
        if self.finished {
            return Poll::Ready(None);
        }
        if std::mem::take(&mut self.pause) {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        if !self.drained {
            match self.body.poll_next_unpin(cx) {
                Poll::Ready(Some(chunk)) if R::WRITE_EACH_CHUNK => {
                    self.pause = true;
                    return Poll::Ready(Some(Ok(Frame::data(chunk))));
                }
                Poll::Ready(Some(chunk)) => return Poll::Ready(Some(Ok(Frame::data(self.gather(chunk, cx))))),
                Poll::Ready(None) => self.drained = true,
                Poll::Pending => return Poll::Pending,
            }
        }
        self.finished = self.end != StreamEnd::Stall;
        match self.end {
            StreamEnd::Complete => Poll::Ready(None),
            StreamEnd::Break => Poll::Ready(Some(Err(io::Error::other("mock: connection broken on purpose")))),
            // Never woken: the body stays open until the connection drops it.
            StreamEnd::Stall => Poll::Pending,
        }
    }
}

/// The most bytes of ready chunks [`StreamBody`] writes as one.
const GATHER_BYTES: usize = 16 * 1024;

impl<R> StreamBody<R> {
    /// `first` and the chunks ready right after it, up to [`GATHER_BYTES`]: a burst goes out in
    /// few writes, as a server's socket would send it, while a chunk made after a wait still
    /// goes out alone, stamped just before its write.
    fn gather(&mut self, first: Bytes, cx: &mut Context<'_>) -> Bytes {
        let mut gathered: Option<BytesMut> = None;
        while gathered.as_ref().map_or(first.len(), BytesMut::len) < GATHER_BYTES {
            match self.body.poll_next_unpin(cx) {
                Poll::Ready(Some(chunk)) => gathered
                    .get_or_insert_with(|| BytesMut::from(&first[..]))
                    .extend_from_slice(&chunk),
                Poll::Ready(None) => {
                    self.drained = true;
                    break;
                }
                Poll::Pending => break,
            }
        }
        gathered.map_or(first, BytesMut::freeze)
    }
}

impl<R> Drop for StreamBody<R> {
    /// A body dropped before its last chunk (or while it stalls) was abandoned by its client;
    /// one dropped between its last chunk and its end was not.
    fn drop(&mut self) {
        if !self.finished && (!self.drained || self.end == StreamEnd::Stall) {
            self.shared.abandoned.fetch_add(1, Ordering::SeqCst);
            self.shared.changed.notify_waiters();
        }
    }
}

/// Locks a mutex, whatever a panicking holder left in it.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The raw HTTP/1.1 response of a server at `base_url` (`http://HOST:PORT/v1`) to
/// `POST /v1/chat/completions` with `body`, for the responders' unit tests.
#[cfg(test)]
pub(crate) async fn post_chat(base_url: &str, body: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = base_url.trim_start_matches("http://").trim_end_matches("/v1");
    let mut stream = tokio::net::TcpStream::connect(address).await.expect("connect");
    let request = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: {address}\r\nconnection: close\r\n\
         content-length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    response
}
