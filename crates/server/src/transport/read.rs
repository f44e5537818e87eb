//! Reading a socket: each data frame goes to the session's client; anything else either goes
//! on (pings, pongs) or says why the socket ends.

use std::sync::Arc;

use futures_util::StreamExt;
use letta_app_server_protocol::{ErrorCode, ErrorFrame};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::error::{CapacityError, ProtocolError};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_util::sync::CancellationToken;

use super::Source;
use super::close::Ending;
use crate::config::Config;
use crate::sessions::{Client, Session};

/// Reads frames until the peer closes, the session's queue is closed, the session ends (the
/// server shuts down, or a new control session replaces it), the peer breaks the protocol or
/// falls silent.
pub(super) async fn read(
    config: &Config,
    client: &Arc<Client>,
    source: &mut Source,
    ended: &CancellationToken,
) -> Ending {
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

/// Sorts a message read from a socket: a data frame, ping or pong to go on with, or why the
/// socket ends. A frame over the size limit also gets an `error` frame (to `session`).
pub(super) fn classify(message: Option<Result<Message, WsError>>, session: &Session) -> Result<Message, Ending> {
    match message {
        Some(Ok(Message::Close(frame))) => Err(Ending::PeerClosed(
            frame.map(|frame| (u16::from(frame.code), frame.reason.as_str().to_owned())),
        )),
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
