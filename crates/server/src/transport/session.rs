//! A session's main socket: a current-Letta client's single socket, or the control socket of a
//! split session (which replaces the split session before it). Both run the same way: a writer
//! task drains the session's queue while this task reads.

use std::future::Future;
use std::sync::Arc;

use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_util::sync::CancellationToken;

use super::close::{Closed, finish};
use super::read::read;
use super::tcp::Tcp;
use super::write::{StreamSocket, write};
use super::{Socket, SplitSession, Transport};
use crate::sessions::{Client, Sessions};

/// A current-Letta client: one socket for everything. Returns how it ended.
pub(super) async fn single(transport: Arc<Transport>, tcp: Tcp, socket: Socket) -> Closed {
    let sessions = &transport.sessions;
    let client = sessions.open_session();
    sessions.replay_pending_approvals(&client).await;
    let (_no_stream, stream_sockets) = mpsc::channel(1);
    let ended = transport.shutdown.child_token();
    run_session(sessions, tcp, socket, &client, stream_sockets, &ended, async {}).await
}

/// The control socket of a split session; replaces any existing split session. Returns how it
/// ended.
pub(super) async fn control(transport: Arc<Transport>, tcp: Tcp, socket: Socket) -> Closed {
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
    run_session(sessions, tcp, socket, &client, stream_sockets, &ended, stopped).await
}

/// Runs the socket of `session` (a single socket, or a split session's control socket): writes
/// its queue, reads and dispatches its frames, and once reading stopped runs `stopped`, releases
/// the session and closes the socket. Returns how it ended.
async fn run_session(
    sessions: &Sessions,
    tcp: Tcp,
    socket: Socket,
    client: &Arc<Client>,
    stream_sockets: mpsc::Receiver<StreamSocket>,
    ended: &CancellationToken,
    stopped: impl Future<Output = ()>,
) -> Closed {
    let session = &client.session;
    let config = sessions.config();
    let (sink, mut source) = socket.split();
    let writer = tokio::spawn(write(session.clone(), sink, stream_sockets, config.ping_interval));
    let ending = read(config, client, &mut source, ended).await;
    if ending.on_purpose() {
        session.leave();
    }
    ending.start(&tcp, &session.outbound);
    let closed = ending.closed(&session.outbound);
    stopped.await;
    sessions.close_session(session.id).await;
    finish(&tcp, &mut source, ending, writer, config).await;
    closed
}
