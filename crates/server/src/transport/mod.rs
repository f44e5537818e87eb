//! HTTP and websocket transport on one port (docs/protocol.md §1.4, §1.5, §1.7, §1.9, §1.10).
//!
//! * `GET /healthz`, `/readyz` → `ok`; `GET /app-server-info` → the info response as JSON.
//! * `/v1/…` with [`Config::openai_api`]: the OpenAI-compatible API ([`openai_api`]).
//! * `GET /inspect` with [`Config::inspect`]: the inspector's page ([`inspect`]).
//! * `/ws` (or `/`) without `channel`: one bidirectional socket per client, any number of them.
//! * `/ws?channel=control` + `/ws?channel=stream`: the seed design's split session. One control
//!   session at a time; a new one replaces the old (its sockets are closed, its turns aborted,
//!   its queued inputs cancelled). Stream deltas and status snapshots go to the stream socket
//!   while it is open, everything else to control; one `event_seq` for the pair.
//!
//! On a TLS port ([`Config::tls`]) every connection first completes its TLS handshake, within
//! [`Config::tls_handshake_timeout`] ([`io`]). Every request passes the checks of [`http`]; a
//! client has [`Config::http_header_timeout`] to send a request head. Each websocket is pinged
//! every [`Config::ping_interval`], and cut off when its peer sends nothing at all for
//! [`Config::silent_peer_timeout`]. A websocket ends with the close handshake of RFC 6455 §7:
//! the server answers a peer's close frame with the same code; it closes with 1008 (queue
//! overflow, replaced session), 1001 (shutdown), 1002 (protocol violation), 1007 (invalid UTF-8)
//! or 1009 (frame too large, after an `error` frame) and waits for the peer's answer. After a
//! violation it stops reading frames and discards the peer's input until the peer closes, so the
//! peer reads the close frame instead of a reset. Whatever does not finish within
//! [`Config::close_timeout`] is cut off with a TCP reset.
//!
//! Here: accepting connections and routing requests. The rest, one file each: [`http`] (request
//! checks, plain routes, the handshake), [`io`] (a connection's bytes, plain or TLS), [`tcp`]
//! (the TCP connection under them), [`session`] (running a single or control socket),
//! [`stream`] (a split session's stream socket), [`read`] (reading frames),
//! [`write`](mod@write) (writing a session's queue), [`close`] (how a socket ends: the close
//! handshake) and [`inspect`] (the inspector's page).
//!
//! [`Config::tls`]: crate::Config::tls
//! [`Config::tls_handshake_timeout`]: crate::Config::tls_handshake_timeout
//! [`Config::http_header_timeout`]: crate::Config::http_header_timeout
//! [`Config::openai_api`]: crate::Config::openai_api
//! [`Config::inspect`]: crate::Config::inspect
//! [`Config::ping_interval`]: crate::Config::ping_interval
//! [`Config::silent_peer_timeout`]: crate::Config::silent_peer_timeout
//! [`Config::close_timeout`]: crate::Config::close_timeout

mod close;
mod http;
mod inspect;
mod io;
mod read;
mod session;
mod stream;
mod tcp;
mod write;

pub(crate) use inspect::own_origins;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Mutex, mpsc, watch};
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::metrics::Metrics;
use crate::openai_api;
use crate::sessions::{Session, Sessions};
use http::{Body, Refusal};
use io::Io;
use tcp::Tcp;
use write::StreamSocket;

/// The initial capacity of a connection's read buffer (tungstenite's default is 128 KiB). Client
/// frames are mostly small, and a larger one grows the buffer as it arrives (up to the frame
/// limit), so an idle connection keeps 8 KiB instead of 128.
const READ_BUFFER_BYTES: usize = 8 * 1024;

type Socket = WebSocketStream<Io>;
type Sink = SplitSink<Socket, Message>;
type Source = SplitStream<Socket>;

/// The active split (control + stream) session.
struct SplitSession {
    session: Arc<Session>,
    /// Requests to the session's writer about the stream socket.
    to_writer: mpsc::Sender<StreamSocket>,
    /// The id of the attached stream socket (a second one is refused).
    stream: Option<u64>,
    /// Stream sockets attached so far, to tell them apart.
    streams: u64,
    /// Cancelled when the session is replaced or ends.
    ended: CancellationToken,
}

/// State shared by every connection of one server.
pub(crate) struct Transport {
    sessions: Arc<Sessions>,
    /// The OpenAI-compatible API, when the configuration turns it on.
    api: Option<Arc<openai_api::Api>>,
    split: Mutex<Option<SplitSession>>,
    split_changed: watch::Sender<u64>,
    shutdown: CancellationToken,
    /// Every connection's task, so that a shutdown can wait for their close frames.
    tasks: TaskTracker,
    /// The number of the next websocket connection, for the logs.
    next_connection: AtomicU64,
}

impl Transport {
    pub(crate) fn new(sessions: Arc<Sessions>, shutdown: CancellationToken) -> Arc<Self> {
        Arc::new(Self {
            api: (sessions.config().openai_api).then(|| openai_api::Api::new(sessions.clone(), shutdown.clone())),
            sessions,
            split: Mutex::new(None),
            split_changed: watch::Sender::new(0),
            shutdown,
            tasks: TaskTracker::new(),
            next_connection: AtomicU64::new(1),
        })
    }

    /// After shutdown was signalled: waits, up to `deadline`, for every connection to finish
    /// closing (its close frame written, or its TCP connection reset) and for the OpenAI API's
    /// turns to be wound up (their throwaway conversations deleted, their outcomes stored).
    pub(crate) async fn connections_closed(&self, deadline: Duration) {
        self.tasks.close();
        let api_tasks = self.api.as_ref().map(|api| {
            api.tasks.close();
            api.tasks.clone()
        });
        let finished = async {
            self.tasks.wait().await;
            if let Some(tasks) = api_tasks {
                tasks.wait().await;
            }
        };
        let _ = tokio::time::timeout(deadline, finished).await;
    }
}

/// Accepts connections until `shutdown` is cancelled. Each is served in a task of its own,
/// which first completes the TLS handshake on a TLS port.
pub(crate) async fn serve(listener: TcpListener, transport: Arc<Transport>) {
    let config = transport.sessions.config();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(config.http_header_timeout);
    let tls = config.tls.as_ref().map(|tls| TlsAcceptor::from(tls.server_config()));
    let handshake_timeout = config.tls_handshake_timeout;
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(_) => continue,
            },
            () = transport.shutdown.cancelled() => return,
        };
        let _ = stream.set_nodelay(true);
        let transport = transport.clone();
        let http = http.clone();
        let tls = tls.clone();
        transport.tasks.clone().spawn(async move {
            let tcp = Tcp::new(stream);
            let io = match tls {
                None => Io::Plain(tcp),
                Some(acceptor) => {
                    let handshake = tokio::time::timeout(handshake_timeout, Io::accept_tls(tcp, &acceptor));
                    let accepted = tokio::select! {
                        accepted = handshake => accepted.ok().flatten(),
                        () = transport.shutdown.cancelled() => None,
                    };
                    match accepted {
                        Some(io) => io,
                        None => return,
                    }
                }
            };
            let shutdown = transport.shutdown.clone();
            let service = hyper::service::service_fn(move |request| {
                let transport = transport.clone();
                async move { Ok::<_, std::convert::Infallible>(respond(transport, request).await) }
            });
            let connection = http.serve_connection(TokioIo::new(io), service).with_upgrades();
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                // An idle keep-alive connection closes at once, one mid-request after its answer
                // (upgraded sockets have left it and close with their session).
                () = shutdown.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
    }
}

/// Answers a request: the OpenAI-compatible API's, once admitted, by [`openai_api`]; every other
/// by [`route`].
async fn respond(transport: Arc<Transport>, request: Request<Incoming>) -> Response<openai_api::Body> {
    if let Some(api) = &transport.api
        && openai_api::serves(request.uri().path())
        && !http::wants_websocket(&request)
    {
        let config = transport.sessions.config();
        return match http::admit(&request, config) {
            Ok(_) => api.handle(request).await,
            Err(refusal) => {
                let mut response = openai_api::refused(refusal.status(), refusal.reason());
                refusal.add_headers(response.headers_mut());
                response
            }
        };
    }
    route(transport, request).map(BodyExt::boxed_unsync)
}

fn route(transport: Arc<Transport>, request: Request<Incoming>) -> Response<Body> {
    let config = transport.sessions.config();
    let subprotocol = match http::admit(&request, config) {
        Ok(subprotocol) => subprotocol,
        Err(refusal) => return refusal.response(),
    };
    if !http::wants_websocket(&request) {
        if config.inspect && request.uri().path() == inspect::PATH {
            return inspect::response(&config.ws_path);
        }
        return http::plain_route(request.uri().path(), &transport.sessions);
    }
    let path = request.uri().path();
    if path != transport.sessions.config().ws_path && path != "/" {
        return Refusal::new(StatusCode::NOT_FOUND, "").response();
    }
    let accept = match http::check_handshake(&request) {
        Ok(accept) => accept,
        Err(refusal) => return refusal.response(),
    };
    let channel = request
        .uri()
        .query()
        .into_iter()
        .flat_map(|query| query.split('&'))
        .find_map(|pair| pair.strip_prefix("channel="));
    let role = match channel {
        None => Channel::Single,
        Some("control" | "") => Channel::Control,
        Some("stream") => Channel::Stream,
        Some(_) => {
            return Refusal::new(StatusCode::BAD_REQUEST, "unknown channel: use control or stream\n").response();
        }
    };
    let max = transport.sessions.config().max_frame_bytes;
    transport.tasks.clone().spawn(async move {
        let Ok(upgraded) = hyper::upgrade::on(request).await else {
            return;
        };
        // The connection is served over `TokioIo<Io>`, so this always succeeds.
        let Ok(parts) = upgraded.downcast::<TokioIo<Io>>() else {
            return;
        };
        let io = parts.io.into_inner();
        let tcp = io.tcp();
        let config = WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER_BYTES)
            .max_message_size(Some(max))
            .max_frame_size(Some(max));
        // Frames the client sent right behind its request were read with it.
        let socket =
            WebSocketStream::from_partially_read(io, parts.read_buf.to_vec(), Role::Server, Some(config)).await;
        let id = transport.next_connection.fetch_add(1, Ordering::Relaxed);
        let peer = tcp.peer().map(tracing::field::display);
        let span = tracing::info_span!("connection", id, peer, channel = role.name());
        serve_socket(transport, tcp, socket, role).instrument(span).await;
    });
    http::switching_protocols(&accept, subprotocol)
}

/// Serves an upgraded websocket of `role` to its end; counts and logs its opening and its close.
async fn serve_socket(transport: Arc<Transport>, tcp: Tcp, socket: Socket, role: Channel) {
    let metrics = transport.sessions.engine().metrics.clone();
    metrics.connections_opened.inc();
    metrics.connections.inc();
    tracing::info!("connection opened");
    let closed = match role {
        Channel::Single => session::single(transport, tcp, socket).await,
        Channel::Control => session::control(transport, tcp, socket).await,
        Channel::Stream => stream::stream(transport, tcp, socket).await,
    };
    metrics.connections.dec();
    let code = closed.code.map_or_else(|| "none".to_owned(), |code| code.to_string());
    Metrics::count(&metrics.connections_closed, "code", code);
    let close::Closed { by, code, reason } = closed;
    // A close the server had to make (a violation, an overflow, a replacement) is worth a look.
    if by == "server" && code.is_some_and(|code| ![1000, 1001].contains(&code)) {
        tracing::warn!(by, code, reason, "connection closed");
    } else {
        tracing::info!(by, code, reason, "connection closed");
    }
}

#[derive(Debug, Clone, Copy)]
enum Channel {
    Single,
    Control,
    Stream,
}

impl Channel {
    /// Its name in the logs.
    fn name(self) -> &'static str {
        match self {
            Self::Single => "single",
            Self::Control => "control",
            Self::Stream => "stream",
        }
    }
}
