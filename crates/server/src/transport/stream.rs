//! The stream socket of a split session: it attaches to the active control session, hands its
//! sink to that session's writer, and only reads (pongs, and the close handshake).

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_util::sync::CancellationToken;

use super::close::{CONTROL_LOST, Closed, Ending, close, finish};
use super::read::classify;
use super::tcp::Tcp;
use super::write::StreamSocket;
use super::{Sink, Socket, Source, Transport};
use crate::sessions::Session;

/// How long a stream socket waits for its control socket.
const STREAM_WAITS_FOR_CONTROL: Duration = Duration::from_secs(5);

/// The stream socket of a split session: attaches to the active control session (waiting up to
/// five seconds for one). It only receives; a second stream socket is refused. Returns how it
/// ended.
pub(super) async fn stream(transport: Arc<Transport>, tcp: Tcp, socket: Socket) -> Closed {
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
    Closed::by_server(code, reason)
}

/// A stream socket attached to a split session.
struct Attached {
    id: u64,
    session: Arc<Session>,
    to_writer: mpsc::Sender<StreamSocket>,
    ended: CancellationToken,
}

/// A stream socket attached to a split session: hands its sink to the session's writer and reads
/// until it ends. Returns how it ended.
async fn serve_stream(transport: &Transport, tcp: &Tcp, sink: Sink, mut source: Source, attached: Attached) -> Closed {
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
        finish(tcp, &mut source, Ending::Closing, close_sent, config).await;
        return Closed::by_server(CONTROL_LOST.0, CONTROL_LOST.1);
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
        Ending::PeerClosed(_) => Some(StreamSocket::Detach(id, None, detached)),
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
    let closed = ending.closed(&session.outbound);
    finish(tcp, &mut source, ending, close_sent, config).await;
    closed
}
