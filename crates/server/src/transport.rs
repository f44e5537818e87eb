//! HTTP and websocket transport on one port (REFERENCE §1.4, §1.5, §1.10).
//!
//! * `GET /healthz`, `/readyz` → `ok`; `GET /app-server-info` → the info response as JSON.
//! * `/ws` (or `/`) without `channel`: one bidirectional socket per client, any number of them.
//! * `/ws?channel=control` + `/ws?channel=stream`: the seed design's split session. One control
//!   session at a time; a new one replaces the old (its sockets are closed, its turns aborted,
//!   its queued inputs cancelled). Stream deltas and status snapshots go to the stream socket
//!   while it is open, everything else to control; one `event_seq` for the pair.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use letta_app_server_protocol::{ErrorCode, ErrorFrame};
use tokio::net::TcpListener;
use tokio::sync::{Mutex, mpsc, watch};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message, error::CapacityError, handshake::derive_accept_key};
use tokio_util::sync::CancellationToken;

use crate::clock;
use crate::dispatch;
use crate::outbound::{Outgoing, Route};
use crate::runtime::{Runtime, Session};

type Socket = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;
type Sink = SplitSink<Socket, Message>;
type Source = SplitStream<Socket>;

/// How long a stream socket waits for its control socket.
const STREAM_WAITS_FOR_CONTROL: Duration = Duration::from_secs(5);

/// The active split (control + stream) session.
struct SplitSession {
    session: Arc<Session>,
    /// Hands the stream socket's sink to the session's writer.
    attach_stream: mpsc::Sender<Sink>,
    /// Cancelled when the session is replaced or ends.
    ended: CancellationToken,
}

/// State shared by every connection of one server.
pub(crate) struct Transport {
    runtime: Arc<Runtime>,
    split: Mutex<Option<SplitSession>>,
    split_changed: watch::Sender<u64>,
    shutdown: CancellationToken,
}

impl Transport {
    pub(crate) fn new(runtime: Arc<Runtime>, shutdown: CancellationToken) -> Arc<Self> {
        Arc::new(Self {
            runtime,
            split: Mutex::new(None),
            split_changed: watch::Sender::new(0),
            shutdown,
        })
    }
}

/// Accepts connections until `shutdown` is cancelled.
pub(crate) async fn serve(listener: TcpListener, transport: Arc<Transport>) {
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
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let transport = transport.clone();
                async move { Ok::<_, std::convert::Infallible>(route(transport, request)) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades()
                .await;
        });
    }
}

fn plain(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

fn route(transport: Arc<Transport>, request: Request<Incoming>) -> Response<Full<Bytes>> {
    if request.headers().contains_key(header::ORIGIN) {
        return plain(StatusCode::FORBIDDEN, "");
    }
    let path = request.uri().path();
    let is_upgrade = request
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if !is_upgrade {
        return match path {
            "/healthz" | "/readyz" => plain(StatusCode::OK, "ok\n"),
            "/app-server-info" => {
                let body = serde_json::to_vec(&letta_app_server_protocol::ServerFrame::from(
                    dispatch::app_server_info("http-info".into()),
                ))
                .unwrap_or_default();
                let mut response = Response::new(Full::new(Bytes::from(body)));
                response
                    .headers_mut()
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
                response
            }
            _ => plain(StatusCode::NOT_FOUND, ""),
        };
    }
    if path != transport.runtime.config.ws_path && path != "/" {
        return plain(StatusCode::NOT_FOUND, "");
    }
    let channel = request
        .uri()
        .query()
        .into_iter()
        .flat_map(|query| query.split('&'))
        .find_map(|pair| pair.strip_prefix("channel="))
        .map(str::to_owned);
    let role = match channel.as_deref() {
        None => Channel::Single,
        Some("control" | "") => Channel::Control,
        Some("stream") => Channel::Stream,
        Some(_) => return plain(StatusCode::BAD_REQUEST, "unknown channel: use control or stream\n"),
    };
    let Some(accept) = request
        .headers()
        .get(header::SEC_WEBSOCKET_KEY)
        .map(|key| derive_accept_key(key.as_bytes()))
    else {
        return plain(StatusCode::BAD_REQUEST, "missing Sec-WebSocket-Key\n");
    };
    let max = transport.runtime.config.max_frame_bytes;
    tokio::spawn(async move {
        let Ok(upgraded) = hyper::upgrade::on(request).await else {
            return;
        };
        let config = WebSocketConfig::default()
            .max_message_size(Some(max))
            .max_frame_size(Some(max));
        let socket = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config)).await;
        match role {
            Channel::Single => single(transport, socket).await,
            Channel::Control => control(transport, socket).await,
            Channel::Stream => stream(transport, socket).await,
        }
    });
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(accept) = HeaderValue::from_str(&accept) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    response
}

#[derive(Debug, Clone, Copy)]
enum Channel {
    Single,
    Control,
    Stream,
}

/// A current-Letta client: one socket for everything.
async fn single(transport: Arc<Transport>, socket: Socket) {
    let runtime = transport.runtime.clone();
    let session = runtime.open_session();
    runtime.replay_pending_approvals(&session).await;
    let (sink, source) = socket.split();
    let (_attach, attached) = mpsc::channel(1);
    let writer = tokio::spawn(write(session.clone(), sink, attached));
    let ended = transport.shutdown.child_token();
    read(&runtime, &session, source, &ended).await;
    session.outbound.close(CloseCode::Normal, "");
    runtime.close_session(session.id).await;
    let _ = writer.await;
}

/// The control socket of a split session; replaces any existing split session.
async fn control(transport: Arc<Transport>, socket: Socket) {
    let runtime = transport.runtime.clone();
    let session = runtime.open_session();
    runtime.replay_pending_approvals(&session).await;
    let (sink, source) = socket.split();
    let (attach_stream, attached) = mpsc::channel(1);
    let ended = transport.shutdown.child_token();
    let replaced = transport.split.lock().await.replace(SplitSession {
        session: session.clone(),
        attach_stream,
        ended: ended.clone(),
    });
    transport.split_changed.send_modify(|generation| *generation += 1);
    if let Some(old) = replaced {
        old.ended.cancel();
        old.session
            .outbound
            .close(CloseCode::Policy, "replaced by a new control session");
        runtime.abandon_session(old.session.id).await;
    }
    let writer = tokio::spawn(write(session.clone(), sink, attached));
    read(&runtime, &session, source, &ended).await;
    {
        let mut split = transport.split.lock().await;
        if split.as_ref().is_some_and(|s| s.session.id == session.id) {
            *split = None;
        }
    }
    ended.cancel();
    session.outbound.close(CloseCode::Normal, "");
    runtime.close_session(session.id).await;
    let _ = writer.await;
}

/// The stream socket of a split session: attaches to the active control session (waiting up to
/// five seconds for one). It only receives; a second stream socket is refused.
async fn stream(transport: Arc<Transport>, socket: Socket) {
    let mut changes = transport.split_changed.subscribe();
    let deadline = tokio::time::sleep(STREAM_WAITS_FOR_CONTROL);
    tokio::pin!(deadline);
    let (mut sink, mut source) = socket.split();
    let (attach, ended) = loop {
        if let Some(split) = transport.split.lock().await.as_ref() {
            break (split.attach_stream.clone(), split.ended.clone());
        }
        tokio::select! {
            _ = changes.changed() => {}
            () = &mut deadline => {
                let _ = sink.send(close(CloseCode::Policy, "control channel did not connect")).await;
                return;
            }
        }
    };
    if let Err(mpsc::error::TrySendError::Full(mut sink) | mpsc::error::TrySendError::Closed(mut sink)) =
        attach.try_send(sink)
    {
        let _ = sink
            .send(close(CloseCode::Policy, "stream channel already connected"))
            .await;
        return;
    }
    // The writer owns the sink now; wait for the peer to close or the session to end.
    loop {
        tokio::select! {
            message = source.next() => match message {
                Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
            () = ended.cancelled() => return,
        }
    }
}

fn close(code: CloseCode, reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.to_owned().into(),
    }))
}

/// Reads frames until the peer closes, the session ends or the server shuts down.
async fn read(runtime: &Arc<Runtime>, session: &Arc<Session>, mut source: Source, ended: &CancellationToken) {
    loop {
        let message = tokio::select! {
            message = source.next() => message,
            () = ended.cancelled() => return,
        };
        match message {
            Some(Ok(Message::Text(text))) => dispatch::handle_text(runtime, session, text.as_str()).await,
            Some(Ok(Message::Binary(bytes))) => match std::str::from_utf8(&bytes) {
                Ok(text) => dispatch::handle_text(runtime, session, text).await,
                Err(_) => session.send(ErrorFrame {
                    request_id: None,
                    code: ErrorCode::MalformedJson,
                    message: "binary frame is not UTF-8 JSON".into(),
                    frame_type: None,
                }),
            },
            Some(Ok(Message::Close(_))) | None => return,
            Some(Ok(_)) => {}
            Some(Err(WsError::Capacity(CapacityError::MessageTooLong { size, max_size }))) => {
                session.send(ErrorFrame {
                    request_id: None,
                    code: ErrorCode::FrameTooLarge,
                    message: format!("frame of {size} bytes exceeds the limit of {max_size} bytes"),
                    frame_type: None,
                });
                session.outbound.close(CloseCode::Size, "frame too large");
                return;
            }
            Some(Err(_)) => return,
        }
    }
}

/// Frames written per flush at most.
const FRAMES_PER_FLUSH: usize = 256;

/// Writes a session's queued frames, assigning `event_seq`; routes to the stream socket of a
/// split session while one is attached. A burst of queued frames is written with one flush.
async fn write(session: Arc<Session>, mut control: Sink, mut attached: mpsc::Receiver<Sink>) {
    let mut stream: Option<Sink> = None;
    let mut event_seq = 0;
    loop {
        let next = tokio::select! {
            biased;
            Some(sink) = attached.recv() => {
                stream = Some(sink);
                continue;
            }
            next = session.outbound.next_batch(FRAMES_PER_FLUSH) => next,
        };
        let mut frames = match next {
            Ok(frames) => frames,
            Err((code, reason)) => {
                if let Some(mut sink) = stream.take() {
                    let _ = sink.send(close(code, &reason)).await;
                }
                let _ = control.send(close(code, &reason)).await;
                return;
            }
        };
        if frames.len() < FRAMES_PER_FLUSH / 8 {
            // Let the producers that woke us add to the batch: fewer, larger socket writes.
            tokio::task::yield_now().await;
            frames.extend(session.outbound.take(FRAMES_PER_FLUSH - frames.len()));
        }
        // Frames written together were serialised at the same moment.
        let emitted_at = clock::now_iso();
        let (mut stream_fed, mut control_fed) = (false, false);
        for frame in frames {
            let route = frame.route();
            let text = match frame {
                Outgoing::Event(event) => {
                    event_seq += 1;
                    event.render(event_seq, &emitted_at)
                }
                Outgoing::Direct(bytes) => String::from_utf8(bytes.to_vec()).unwrap_or_default(),
            };
            if route == Route::Stream
                && let Some(sink) = stream.as_mut()
            {
                if sink.feed(Message::text(text.clone())).await.is_ok() {
                    stream_fed = true;
                    continue;
                }
                // The stream socket went away: from now on everything goes to control.
                stream = None;
            }
            if control.feed(Message::text(text)).await.is_err() {
                return;
            }
            control_fed = true;
        }
        session.outbound.set_backed_up(true);
        if stream_fed
            && let Some(sink) = stream.as_mut()
            && sink.flush().await.is_err()
        {
            stream = None;
        }
        let flushed = !control_fed || control.flush().await.is_ok();
        session.outbound.set_backed_up(false);
        if !flushed {
            return;
        }
    }
}
