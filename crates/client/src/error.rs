//! What can go wrong, as types a caller can match on.

use std::fmt;
use std::time::Duration;

/// Why a client call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The URL cannot name an App Server.
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The TLS settings cannot be used: CA certificates that are not PEM, or not certificates
    /// ([`ClientBuilder::ca_pem`](crate::ClientBuilder::ca_pem)).
    InvalidTls {
        /// What is wrong with them.
        reason: String,
    },
    /// The websocket could not be opened (refused, HTTP error on the upgrade, bad token, a TLS
    /// handshake that failed, …).
    Connect {
        /// The URL dialled.
        url: String,
        /// What the connection attempt reported.
        message: String,
    },
    /// No answer within the request's timeout. The command may still take effect.
    Timeout {
        /// The request that timed out.
        request_id: String,
        /// How long the client waited.
        after: Duration,
    },
    /// The server answered with an `error` frame: it could not accept the command (only this
    /// project's server sends these; real Letta drops such frames).
    Server {
        /// The command's `request_id`, when it had one.
        request_id: Option<String>,
        /// The stable reason code (`invalid_frame`, `unknown_runtime`, …).
        code: String,
        /// What was wrong.
        message: String,
    },
    /// The server answered but refused: `success: false` in a response, or `accepted: false`
    /// in an `input_accepted`.
    Rejected {
        /// The command's `request_id`.
        request_id: String,
        /// The type of the answer.
        frame_type: String,
        /// The server's reason.
        message: String,
    },
    /// The connection dropped before an answer came. The command may or may not have taken
    /// effect.
    Disconnected {
        /// The close code and reason, or the transport error.
        reason: String,
    },
    /// The client was closed with [`Client::close`](crate::Client::close).
    Closed,
    /// The server's answer does not match this version of the protocol.
    Protocol {
        /// What did not match.
        message: String,
    },
    /// An event stream had a gap (see [`Gap`]); returned by `?` on a stream item.
    Gap(Gap),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidUrl { url, reason } => write!(f, "invalid App Server URL `{url}`: {reason}"),
            Error::InvalidTls { reason } => write!(f, "invalid TLS settings: {reason}"),
            Error::Connect { url, message } => write!(f, "could not connect to {url}: {message}"),
            Error::Timeout { request_id, after } => {
                write!(f, "timed out after {after:?} waiting for the answer to {request_id}")
            }
            Error::Server {
                request_id,
                code,
                message,
            } => match request_id {
                Some(id) => write!(f, "the server refused {id} ({code}): {message}"),
                None => write!(f, "the server refused a frame ({code}): {message}"),
            },
            Error::Rejected {
                request_id,
                frame_type,
                message,
            } => write!(f, "{request_id} failed ({frame_type}): {message}"),
            Error::Disconnected { reason } => write!(f, "the connection to the App Server dropped: {reason}"),
            Error::Closed => f.write_str("the client was closed"),
            Error::Protocol { message } => write!(f, "protocol mismatch: {message}"),
            Error::Gap(gap) => gap.fmt(f),
        }
    }
}

impl std::error::Error for Error {}

/// A place in an event stream where frames may be missing, or where the connection changed
/// without any going missing ([`Gap::Interrupted`], [`Gap::Resumed`]). The stream goes on
/// after it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Gap {
    /// This stream fell behind by more than its capacity and skipped `missed` frames (other
    /// streams, requests and tool handlers are not affected).
    Lagged {
        /// How many frames this stream skipped.
        missed: u64,
    },
    /// The connection dropped. Without automatic reconnect the stream ends after this.
    Disconnected {
        /// The close code and reason, or the transport error.
        reason: String,
    },
    /// The client reconnected; the replays of the runtimes it restores follow.
    Reconnected,
    /// The connection dropped, and the client reconnects to resume every runtime's event
    /// stream where it left off (see the crate docs on reconnecting): nothing is missing unless
    /// [`Gap::Reconnected`] follows instead of [`Gap::Resumed`].
    Interrupted {
        /// The close code and reason, or the transport error.
        reason: String,
    },
    /// After [`Gap::Interrupted`]: the client reconnected and every runtime's event stream
    /// resumed where it left off. Nothing is missing.
    Resumed,
}

impl fmt::Display for Gap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Gap::Lagged { missed } => write!(f, "the event stream fell behind and skipped {missed} frame(s)"),
            Gap::Disconnected { reason } => write!(f, "the connection to the App Server dropped: {reason}"),
            Gap::Reconnected => f.write_str("reconnected to the App Server"),
            Gap::Interrupted { reason } => write!(
                f,
                "the connection to the App Server dropped ({reason}); reconnecting to resume"
            ),
            Gap::Resumed => f.write_str("reconnected to the App Server; every event stream resumed"),
        }
    }
}

impl std::error::Error for Gap {}

impl From<Gap> for Error {
    fn from(gap: Gap) -> Self {
        Error::Gap(gap)
    }
}
