//! How a socket ends: why reading stopped ([`Ending`]), the close handshake of RFC 6455 §7 or
//! the failed connection after a violation, and the close frames themselves.

use std::future::Future;

use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::Source;
use super::tcp::Tcp;
use crate::config::Config;
use crate::outbound::Outbound;

/// What a failed connection discards beyond the frame limit while waiting for the peer to close:
/// the rest of an oversized frame, and a little more.
const DISCARD_SLACK: usize = 64 * 1024;

/// Why a socket stopped being read.
pub(super) enum Ending {
    /// The peer sent a close frame (with this code and reason, if any); tungstenite has queued
    /// the answer (the same code).
    PeerClosed(Option<(u16, String)>),
    /// The session's queue was closed (overflow, replacement, shutdown, a failed control socket):
    /// the writer sends what is queued, then the close frame.
    Closing,
    /// The peer broke the protocol: the connection fails (RFC 6455 §7.1.7) with this close code.
    Failed(CloseCode, String),
    /// The connection broke, or the peer fell silent: it is cut off.
    Lost,
}

/// How a socket ended, as its log line and metrics tell it.
#[derive(Debug)]
pub(super) struct Closed {
    /// Who closed it: `client`, `server`, or `nobody` (the connection broke or went silent).
    pub by: &'static str,
    /// The close code, if a close frame was sent.
    pub code: Option<u16>,
    /// The close frame's reason.
    pub reason: String,
}

impl Closed {
    /// Closed by the server with `code` and `reason`.
    pub(super) fn by_server(code: CloseCode, reason: &str) -> Self {
        Self {
            by: "server",
            code: Some(code.into()),
            reason: reason.to_owned(),
        }
    }
}

impl Ending {
    /// Whether the client ended the session on purpose: a close frame with the normal code
    /// (1000) or none. A dropped connection, and "going away" (1001, which proxies send too),
    /// are not.
    pub(super) fn on_purpose(&self) -> bool {
        matches!(self, Self::PeerClosed(None | Some((1000, _))))
    }

    /// How the socket ended, once [`start`](Self::start) ran: a [`Closing`](Self::Closing)
    /// socket with the code and reason its queue was closed with.
    pub(super) fn closed(&self, outbound: &Outbound) -> Closed {
        match self {
            Self::PeerClosed(frame) => Closed {
                by: "client",
                code: frame.as_ref().map(|(code, _)| *code),
                reason: frame.as_ref().map(|(_, reason)| reason.clone()).unwrap_or_default(),
            },
            Self::Closing => outbound.closed_with().map_or(
                Closed {
                    by: "server",
                    code: None,
                    reason: String::new(),
                },
                |(code, reason)| Closed::by_server(code, &reason),
            ),
            Self::Failed(code, reason) => Closed::by_server(*code, reason),
            Self::Lost => Closed {
                by: "nobody",
                code: None,
                reason: String::new(),
            },
        }
    }

    /// Stops a session's writer the way this ending needs: a lost connection is cut off first,
    /// so nothing more is written to it.
    pub(super) fn start(&self, tcp: &Tcp, outbound: &Outbound) {
        match self {
            // tungstenite refuses the writer's own close frame: its answer is already queued.
            Self::PeerClosed(_) => outbound.close(CloseCode::Normal, ""),
            Self::Closing => {}
            Self::Failed(code, reason) => outbound.close(*code, reason.as_str()),
            Self::Lost => {
                tcp.terminate();
                control_lost(outbound);
            }
        }
    }
}

/// Ends a socket once reading stopped: completes the close handshake (reading on until the
/// peer's close frame, while `close_sent` sends ours or tungstenite's answer goes out), or fails
/// the connection (after `close_sent`, FIN, then the peer's input is discarded until it closes).
/// Whatever does not finish within the close deadline is cut off.
pub(super) async fn finish(tcp: &Tcp, source: &mut Source, ending: Ending, close_sent: impl Future, config: &Config) {
    let handshake = async {
        match ending {
            Ending::PeerClosed(_) | Ending::Closing => {
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
pub(super) fn close(code: CloseCode, reason: &str) -> Message {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    Message::Close(Some(CloseFrame {
        code,
        reason: reason[..end].into(),
    }))
}

/// The close code and reason of a split session's stream socket when its control socket fails.
pub(super) const CONTROL_LOST: (CloseCode, &str) = (CloseCode::Away, "control channel closed");

/// Closes the queue of a session whose control socket failed; returns the close code and reason
/// for its other socket.
pub(super) fn control_lost(outbound: &Outbound) -> (CloseCode, String) {
    let (code, reason) = CONTROL_LOST;
    outbound.close(code, reason);
    (code, reason.to_owned())
}
