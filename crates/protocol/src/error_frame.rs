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
        /// The server failed while handling the frame.
        Internal = "internal",
    }
}

/// Sent by this project's server, only to the socket that sent a frame it could not accept.
/// The socket stays open.
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
