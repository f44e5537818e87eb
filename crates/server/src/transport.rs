//! HTTP and websocket transport on one port (docs/protocol.md §1.4, §1.5, §1.7, §1.9, §1.10).
//!
//! * `GET /healthz`, `/readyz` → `ok`; `GET /app-server-info` → the info response as JSON.
//! * `/ws` (or `/`) without `channel`: one bidirectional socket per client, any number of them.
//! * `/ws?channel=control` + `/ws?channel=stream`: the seed design's split session. One control
//!   session at a time; a new one replaces the old (its sockets are closed, its turns aborted,
//!   its queued inputs cancelled). Stream deltas and status snapshots go to the stream socket
//!   while it is open, everything else to control; one `event_seq` for the pair.
//!
//! Every request passes the checks of [`http`]; a client has [`Config::http_header_timeout`] to
//! send a request head. Each websocket is pinged every [`Config::ping_interval`], and cut off
//! when its peer sends nothing at all for [`Config::silent_peer_timeout`]. A websocket ends with
//! the close handshake of RFC 6455 §7: the server answers a peer's close frame with the same
//! code; it closes with 1008 (queue overflow, replaced session), 1001 (shutdown), 1002 (protocol
//! violation), 1007 (invalid UTF-8) or 1009 (frame too large, after an `error` frame) and waits
//! for the peer's answer. After a violation it stops reading frames and discards the peer's
//! input until the peer closes, so the peer reads the close frame instead of a reset. Whatever
//! does not finish within [`Config::close_timeout`] is cut off with a TCP reset.
//!
//! [`Config::http_header_timeout`]: crate::Config::http_header_timeout
//! [`Config::ping_interval`]: crate::Config::ping_interval
//! [`Config::silent_peer_timeout`]: crate::Config::silent_peer_timeout
//! [`Config::close_timeout`]: crate::Config::close_timeout

mod http;
mod tcp;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use letta_app_server_protocol::{ErrorCode, ErrorFrame};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, mpsc, oneshot, watch};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::{CapacityError, ProtocolError};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::clock;
use crate::config::Config;
use crate::outbound::{Outbound, Outgoing, Route};
use crate::sessions::{Client, Session, Sessions};
use http::{Body, Refusal};
use tcp::Tcp;

type Socket = WebSocketStream<Tcp>;
type Sink = SplitSink<Socket, Message>;
type Source = SplitStream<Socket>;

/// How long a stream socket waits for its control socket.
const STREAM_WAITS_FOR_CONTROL: Duration = Duration::from_secs(5);

/// What a failed connection discards beyond the frame limit while waiting for the peer to close:
/// the rest of an oversized frame, and a little more.
const DISCARD_SLACK: usize = 64 * 1024;

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

/// What a split session's stream socket (by id) asks of the session's writer, which holds its
/// sink.
enum StreamSocket {
    /// Write stream frames here from now on.
    Attach(u64, Sink),
    /// Let the sink go, after sending this close frame if there is one; answer when done.
    /// Stream frames go to control again.
    Detach(u64, Option<(CloseCode, String)>, oneshot::Sender<()>),
}

/// State shared by every connection of one server.
pub(crate) struct Transport {
    sessions: Arc<Sessions>,
    split: Mutex<Option<SplitSession>>,
    split_changed: watch::Sender<u64>,
    shutdown: CancellationToken,
    /// Every connection's task, so that a shutdown can wait for their close frames.
    tasks: TaskTracker,
}

impl Transport {
    pub(crate) fn new(sessions: Arc<Sessions>, shutdown: CancellationToken) -> Arc<Self> {
        Arc::new(Self {
            sessions,
            split: Mutex::new(None),
            split_changed: watch::Sender::new(0),
            shutdown,
            tasks: TaskTracker::new(),
        })
    }

    /// After shutdown was signalled: waits, up to `deadline`, for every connection to finish
    /// closing (its close frame written, or its TCP connection reset).
    pub(crate) async fn connections_closed(&self, deadline: Duration) {
        self.tasks.close();
        let _ = tokio::time::timeout(deadline, self.tasks.wait()).await;
    }
}

/// Accepts connections until `shutdown` is cancelled.
pub(crate) async fn serve(listener: TcpListener, transport: Arc<Transport>) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(transport.sessions.config().http_header_timeout);
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
        transport.tasks.clone().spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let transport = transport.clone();
                async move { Ok::<_, std::convert::Infallible>(route(transport, request)) }
            });
            let _ = http
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades()
                .await;
        });
    }
}

fn route(transport: Arc<Transport>, request: Request<Incoming>) -> Response<Body> {
    if let Err(refusal) = http::admit(&request) {
        return refusal.response();
    }
    if !http::wants_websocket(&request) {
        return http::plain_route(request.uri().path());
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
        // The connection is served over `TokioIo<TcpStream>`, so this always succeeds.
        let Ok(parts) = upgraded.downcast::<TokioIo<TcpStream>>() else {
            return;
        };
        let tcp = Tcp::new(parts.io.into_inner());
        let config = WebSocketConfig::default()
            .max_message_size(Some(max))
            .max_frame_size(Some(max));
        // Frames the client sent right behind its request were read with it.
        let socket =
            WebSocketStream::from_partially_read(tcp.clone(), parts.read_buf.to_vec(), Role::Server, Some(config))
                .await;
        match role {
            Channel::Single => single(transport, tcp, socket).await,
            Channel::Control => control(transport, tcp, socket).await,
            Channel::Stream => stream(transport, tcp, socket).await,
        }
    });
    http::switching_protocols(&accept)
}

#[derive(Debug, Clone, Copy)]
enum Channel {
    Single,
    Control,
    Stream,
}

/// A current-Letta client: one socket for everything.
async fn single(transport: Arc<Transport>, tcp: Tcp, socket: Socket) {
    let sessions = &transport.sessions;
    let client = sessions.open_session();
    sessions.replay_pending_approvals(&client).await;
    let (_no_stream, stream_sockets) = mpsc::channel(1);
    let ended = transport.shutdown.child_token();
    run_session(sessions, tcp, socket, &client, stream_sockets, &ended, async {}).await;
}

/// The control socket of a split session; replaces any existing split session.
async fn control(transport: Arc<Transport>, tcp: Tcp, socket: Socket) {
    let sessions = &transport.sessions;
    let client = sessions.open_session();
    let session = &client.session;
    sessions.replay_pending_approvals(&client).await;
    let (to_writer, stream_sockets) = mpsc::channel(4);
    let ended = transport.shutdown.child_token();
    let replaced = transport.split.lock().await.replace(SplitSession {
        session: session.clone(),
        to_writer,
        stream: None,
        streams: 0,
        ended: ended.clone(),
    });
    transport.split_changed.send_modify(|generation| *generation += 1);
    if let Some(old) = replaced {
        old.session.abandon();
        // Closed before `ended` fires, so its sockets see this reason.
        old.session
            .outbound
            .close(CloseCode::Policy, "replaced by a new control session");
        old.ended.cancel();
        sessions.close_session(old.session.id).await;
    }
    let stopped = async {
        let mut split = transport.split.lock().await;
        if split.as_ref().is_some_and(|s| s.session.id == session.id) {
            *split = None;
        }
        drop(split);
        ended.cancel();
    };
    run_session(sessions, tcp, socket, &client, stream_sockets, &ended, stopped).await;
}

/// Runs the socket of `session` (a single socket, or a split session's control socket): writes
/// its queue, reads and dispatches its frames, and once reading stopped runs `stopped`, releases
/// the session and closes the socket.
async fn run_session(
    sessions: &Sessions,
    tcp: Tcp,
    socket: Socket,
    client: &Arc<Client>,
    stream_sockets: mpsc::Receiver<StreamSocket>,
    ended: &CancellationToken,
    stopped: impl Future<Output = ()>,
) {
    let session = &client.session;
    let config = sessions.config();
    let (sink, mut source) = socket.split();
    let writer = tokio::spawn(write(session.clone(), sink, stream_sockets, config.ping_interval));
    let ending = read(config, client, &mut source, ended).await;
    ending.start(&tcp, &session.outbound);
    stopped.await;
    sessions.close_session(session.id).await;
    finish(&tcp, &mut source, ending, writer, config).await;
}

/// The stream socket of a split session: attaches to the active control session (waiting up to
/// five seconds for one). It only receives; a second stream socket is refused.
async fn stream(transport: Arc<Transport>, tcp: Tcp, socket: Socket) {
    let config = transport.sessions.config();
    let mut changes = transport.split_changed.subscribe();
    let waiting = tokio::time::sleep(STREAM_WAITS_FOR_CONTROL);
    tokio::pin!(waiting);
    let (sink, mut source) = socket.split();
    let refusal = loop {
        let attached = match transport.split.lock().await.as_mut() {
            Some(split) if split.stream.is_some() => break (CloseCode::Policy, "stream channel already connected"),
            Some(split) => {
                split.streams += 1;
                split.stream = Some(split.streams);
                Some(Attached {
                    id: split.streams,
                    session: split.session.clone(),
                    to_writer: split.to_writer.clone(),
                    ended: split.ended.clone(),
                })
            }
            None => None,
        };
        if let Some(attached) = attached {
            return serve_stream(&transport, &tcp, sink, source, attached).await;
        }
        tokio::select! {
            _ = changes.changed() => {}
            () = &mut waiting => break (CloseCode::Policy, "control channel did not connect"),
            () = transport.shutdown.cancelled() => break (CloseCode::Away, "server shutting down"),
        }
    };
    let (code, reason) = refusal;
    let close_sent = async move {
        let mut sink = sink;
        let _ = sink.send(close(code, reason)).await;
    };
    finish(&tcp, &mut source, Ending::Closing, close_sent, config).await;
}

/// A stream socket attached to a split session.
struct Attached {
    id: u64,
    session: Arc<Session>,
    to_writer: mpsc::Sender<StreamSocket>,
    ended: CancellationToken,
}

/// A stream socket attached to a split session: hands its sink to the session's writer and reads
/// until it ends.
async fn serve_stream(transport: &Transport, tcp: &Tcp, sink: Sink, mut source: Source, attached: Attached) {
    let Attached {
        id,
        session,
        to_writer,
        ended,
    } = attached;
    let config = transport.sessions.config();
    let Ok(permit) = to_writer.reserve().await else {
        // The session ended before the stream socket could attach.
        let close_sent = async move {
            let mut sink = sink;
            let _ = sink.send(close(CONTROL_LOST.0, CONTROL_LOST.1)).await;
        };
        return finish(tcp, &mut source, Ending::Closing, close_sent, config).await;
    };
    permit.send(StreamSocket::Attach(id, sink));
    let silent = tokio::time::sleep(config.silent_peer_timeout);
    tokio::pin!(silent);
    let ending = loop {
        let message = tokio::select! {
            biased;
            () = ended.cancelled() => break Ending::Closing,
            message = source.next() => message,
            () = &mut silent => break Ending::Lost,
        };
        silent.as_mut().reset(Instant::now() + config.silent_peer_timeout);
        if let Err(ending) = classify(message, &session) {
            break ending;
        }
    };
    {
        let mut split = transport.split.lock().await;
        if let Some(split) = split.as_mut().filter(|split| split.stream == Some(id)) {
            split.stream = None;
        }
    }
    // As the session ends, its writer sends the stream socket the session's close frame itself.
    // Otherwise the writer lets the sink go, after the close frame of a violation.
    let (detached, done) = oneshot::channel();
    let detach = match &ending {
        Ending::Closing => None,
        Ending::Failed(code, reason) => Some(StreamSocket::Detach(id, Some((*code, reason.clone())), detached)),
        Ending::PeerClosed => Some(StreamSocket::Detach(id, None, detached)),
        Ending::Lost => {
            tcp.terminate();
            // Without waiting: the connection is gone, and the writer's next write to it fails anyway.
            let _ = to_writer.try_send(StreamSocket::Detach(id, None, detached));
            None
        }
    };
    let close_sent = async {
        if let Some(detach) = detach
            && to_writer.send(detach).await.is_ok()
        {
            let _ = done.await;
        }
    };
    finish(tcp, &mut source, ending, close_sent, config).await;
}

/// Why a socket stopped being read.
enum Ending {
    /// The peer sent a close frame; tungstenite has queued the answer (the same code).
    PeerClosed,
    /// The session's queue was closed (overflow, replacement, shutdown, a failed control socket):
    /// the writer sends what is queued, then the close frame.
    Closing,
    /// The peer broke the protocol: the connection fails (RFC 6455 §7.1.7) with this close code.
    Failed(CloseCode, String),
    /// The connection broke, or the peer fell silent: it is cut off.
    Lost,
}

impl Ending {
    /// Stops a session's writer the way this ending needs: a lost connection is cut off first,
    /// so nothing more is written to it.
    fn start(&self, tcp: &Tcp, outbound: &Outbound) {
        match self {
            // tungstenite refuses the writer's own close frame: its answer is already queued.
            Self::PeerClosed => outbound.close(CloseCode::Normal, ""),
            Self::Closing => {}
            Self::Failed(code, reason) => outbound.close(*code, reason.as_str()),
            Self::Lost => {
                tcp.terminate();
                control_lost(outbound);
            }
        }
    }
}

/// Sorts a message read from a socket: a data frame, ping or pong to go on with, or why the
/// socket ends. A frame over the size limit also gets an `error` frame (to `session`).
fn classify(message: Option<Result<Message, WsError>>, session: &Session) -> Result<Message, Ending> {
    match message {
        Some(Ok(Message::Close(_))) => Err(Ending::PeerClosed),
        Some(Ok(message)) => Ok(message),
        Some(Err(WsError::Capacity(CapacityError::MessageTooLong { size, max_size }))) => {
            session.send(ErrorFrame {
                request_id: None,
                code: ErrorCode::FrameTooLarge,
                message: format!("frame of {size} bytes exceeds the limit of {max_size} bytes"),
                frame_type: None,
            });
            Err(Ending::Failed(CloseCode::Size, "frame too large".into()))
        }
        Some(Err(WsError::Utf8(_))) => Err(Ending::Failed(CloseCode::Invalid, "text is not valid UTF-8".into())),
        Some(Err(WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake))) | None => Err(Ending::Lost),
        Some(Err(WsError::Protocol(violation))) => Err(Ending::Failed(CloseCode::Protocol, violation.to_string())),
        Some(Err(_)) => Err(Ending::Lost),
    }
}

/// Ends a socket once reading stopped: completes the close handshake (reading on until the
/// peer's close frame, while `close_sent` sends ours or tungstenite's answer goes out), or fails
/// the connection (after `close_sent`, FIN, then the peer's input is discarded until it closes).
/// Whatever does not finish within the close deadline is cut off.
async fn finish(tcp: &Tcp, source: &mut Source, ending: Ending, close_sent: impl Future, config: &Config) {
    let handshake = async {
        match ending {
            Ending::PeerClosed | Ending::Closing => {
                let answered = async { while let Some(Ok(_)) = source.next().await {} };
                tokio::join!(answered, close_sent);
                true
            }
            Ending::Failed(..) => {
                close_sent.await;
                tcp.shutdown_write();
                tcp.discard_input(config.max_frame_bytes.saturating_add(DISCARD_SLACK))
                    .await
            }
            Ending::Lost => false,
        }
    };
    if !tokio::time::timeout(config.close_timeout, handshake)
        .await
        .unwrap_or(false)
    {
        tcp.terminate();
    }
}

/// A close frame; the reason is cut to the 123 bytes a control frame has room for.
fn close(code: CloseCode, reason: &str) -> Message {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    Message::Close(Some(CloseFrame {
        code,
        reason: reason[..end].into(),
    }))
}

/// Reads frames until the peer closes, the session's queue is closed, the session ends (the
/// server shuts down, or a new control session replaces it), the peer breaks the protocol or
/// falls silent.
async fn read(config: &Config, client: &Arc<Client>, source: &mut Source, ended: &CancellationToken) -> Ending {
    let session = &client.session;
    let silence = config.silent_peer_timeout;
    let silent = tokio::time::sleep(silence);
    tokio::pin!(silent);
    loop {
        let message = tokio::select! {
            biased;
            () = session.outbound.closing() => return Ending::Closing,
            () = ended.cancelled() => {
                session.outbound.close(CloseCode::Away, "server shutting down");
                return Ending::Closing;
            }
            message = source.next() => message,
            () = &mut silent => return Ending::Lost,
        };
        // Anything at all, a pong included, shows the peer is there.
        silent.as_mut().reset(Instant::now() + silence);
        match classify(message, session) {
            Ok(Message::Text(text)) => client.handle_text(text.as_str()).await,
            Ok(Message::Binary(bytes)) => match std::str::from_utf8(&bytes) {
                Ok(text) => client.handle_text(text).await,
                Err(_) => session.send(ErrorFrame {
                    request_id: None,
                    code: ErrorCode::MalformedJson,
                    message: "binary frame is not UTF-8 JSON".into(),
                    frame_type: None,
                }),
            },
            // tungstenite answers pings itself.
            Ok(_) => {}
            Err(ending) => return ending,
        }
    }
}

/// Frames written per flush at most.
const FRAMES_PER_FLUSH: usize = 256;

/// Writes a session's queued frames, assigning `event_seq`; routes to the stream socket of a
/// split session while one is attached. A burst of queued frames is written with one flush.
/// Pings every socket it writes to every `ping_interval`. Once the queue is closed, or the control
/// socket cannot be written, sends the close frame to each socket and returns.
async fn write(
    session: Arc<Session>,
    mut control: Sink,
    mut stream_sockets: mpsc::Receiver<StreamSocket>,
    ping_interval: Duration,
) {
    let mut stream: Option<(u64, Sink)> = None;
    let mut event_seq = 0;
    let ping_interval = ping_interval.max(Duration::from_millis(1)); // an interval cannot be zero
    let mut pings = tokio::time::interval_at(Instant::now() + ping_interval, ping_interval);
    pings.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let (code, reason) = 'writing: loop {
        let next = tokio::select! {
            biased;
            Some(request) = stream_sockets.recv() => {
                match request {
                    StreamSocket::Attach(id, sink) => stream = Some((id, sink)),
                    StreamSocket::Detach(id, close_frame, done) => {
                        if stream.as_ref().is_some_and(|(attached, _)| *attached == id)
                            && let (Some((_, mut sink)), Some((code, reason))) = (stream.take(), close_frame)
                        {
                            let _ = sink.send(close(code, &reason)).await;
                        }
                        let _ = done.send(());
                    }
                }
                continue;
            }
            _ = pings.tick() => {
                if let Some((_, sink)) = stream.as_mut()
                    && sink.send(Message::Ping(Bytes::new())).await.is_err()
                {
                    stream = None;
                }
                if control.send(Message::Ping(Bytes::new())).await.is_err() {
                    break 'writing control_lost(&session.outbound);
                }
                continue;
            }
            next = session.outbound.next_batch(FRAMES_PER_FLUSH) => next,
        };
        let mut frames = match next {
            Ok(frames) => frames,
            Err(closed) => break closed,
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
                && let Some((_, sink)) = stream.as_mut()
            {
                if sink.feed(Message::text(text.clone())).await.is_ok() {
                    stream_fed = true;
                    continue;
                }
                // The stream socket went away: from now on everything goes to control.
                stream = None;
            }
            if control.feed(Message::text(text)).await.is_err() {
                break 'writing control_lost(&session.outbound);
            }
            control_fed = true;
        }
        session.outbound.set_backed_up(true);
        if stream_fed
            && let Some((_, sink)) = stream.as_mut()
            && sink.flush().await.is_err()
        {
            stream = None;
        }
        let flushed = !control_fed || control.flush().await.is_ok();
        session.outbound.set_backed_up(false);
        if !flushed {
            break control_lost(&session.outbound);
        }
    };
    if let Some((_, mut sink)) = stream {
        let _ = sink.send(close(code, &reason)).await;
    }
    let _ = control.send(close(code, &reason)).await;
}

/// The close code and reason of a split session's stream socket when its control socket fails.
const CONTROL_LOST: (CloseCode, &str) = (CloseCode::Away, "control channel closed");

/// Closes the queue of a session whose control socket failed; returns the close code and reason
/// for its other socket.
fn control_lost(outbound: &Outbound) -> (CloseCode, String) {
    let (code, reason) = CONTROL_LOST;
    outbound.close(code, reason);
    (code, reason.to_owned())
}
