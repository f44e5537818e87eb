//! The `error` frame: this project's answer to bad input (real Letta drops such frames silently).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

open_enum! {
    /// Stable machine-readable reason of an `error` frame.
    pub enum ErrorCode {
        /// The frame was not valid JSON.
        MalformedJson = "malformed_json",
        /// The frame had no string `type`.
        MissingType = "missing_type",
        /// The frame's `type` is not a command this server accepts.
        UnknownType = "unknown_type",
        /// A field was missing, of the wrong type, or had a value the protocol does not allow.
        InvalidFrame = "invalid_frame",
        /// The frame exceeded the server's size limit.
        FrameTooLarge = "frame_too_large",
        /// The frame named a runtime that has not been started.
        UnknownRuntime = "unknown_runtime",
        /// A field of the frame was longer than the server accepts (an id, a name, a document).
        LimitExceeded = "limit_exceeded",
        /// The command is in the protocol but this server does not implement it yet (commands
        /// whose response can say so get that response instead).
        Unsupported = "unsupported",
        /// The server failed while handling the frame.
        Internal = "internal",
    }
}

/// Sent by this project's server, only to the socket that sent a frame it could not accept.
/// The socket stays open, except after `frame_too_large` (then closed with code 1009).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ErrorFrame {
    /// The `request_id` of the bad frame, when it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Stable reason code.
    pub code: ErrorCode,
    /// What was wrong, for a person to act on.
    pub message: String,
    /// The `type` of the bad frame, when it had a string one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame_type: Option<String>,
}

/// Bytes of an echoed `request_id` or `frame_type` an [`ErrorFrame`] keeps at most.
pub const ECHOED_ID_BYTES: usize = 256;
/// Bytes of an [`ErrorFrame`]'s `message` at most.
pub const MESSAGE_BYTES: usize = 2048;

impl ErrorFrame {
    /// The frame with its echoes of the bad input bounded: a `request_id` or `frame_type` past
    /// [`ECHOED_ID_BYTES`] and a `message` past [`MESSAGE_BYTES`] are cut, with a marker saying
    /// how much was cut. An answer to a frame is never much larger than an ordinary one.
    pub fn bounded(self) -> Self {
        Self {
            request_id: self.request_id.map(|id| cut(id, ECHOED_ID_BYTES)),
            code: self.code,
            message: cut(self.message, MESSAGE_BYTES),
            frame_type: self.frame_type.map(|frame_type| cut(frame_type, ECHOED_ID_BYTES)),
        }
    }
}

/// `text` cut to at most `max` bytes (on a character boundary) and followed by `…[N bytes cut]`,
/// when it is longer: how a server echoes client input it cannot vouch for.
pub fn cut(mut text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let removed = text.len() - end;
    text.truncate(end);
    text.push_str(&format!("…[{removed} bytes cut]"));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echoes_of_bad_input_are_cut_with_a_marker() {
        let frame = ErrorFrame {
            request_id: Some("r".repeat(300)),
            code: ErrorCode::InvalidFrame,
            message: format!("unknown variant `{}`", "é".repeat(2000)),
            frame_type: Some("short".into()),
        }
        .bounded();
        assert_eq!(frame.request_id, Some(format!("{}…[44 bytes cut]", "r".repeat(256))));
        assert_eq!(frame.frame_type.as_deref(), Some("short"));
        // 17 ASCII bytes, then two-byte characters: the cut falls on the boundary before 2048.
        assert!(frame.message.ends_with("é…[1971 bytes cut]"), "{}", frame.message);
        assert_eq!(frame.message.len(), 2047 + "…[1971 bytes cut]".len());
    }
}
