//! Client errors as JavaScript errors.

use napi::Error;

/// A client error for JavaScript. A bad URL or token keeps the official helper's message.
pub(crate) fn to_js(error: letta_app_server_client::Error) -> Error {
    match error {
        letta_app_server_client::Error::InvalidUrl { reason, .. } => Error::from_reason(reason),
        other => Error::from_reason(other.to_string()),
    }
}
