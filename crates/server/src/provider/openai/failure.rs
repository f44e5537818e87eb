//! How a request fails: the error classes, the retry timing and the messages quoted from error
//! bodies and error chunks.

use std::error::Error as StdError;
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::HeaderMap;
use hyper::body::Incoming;
use hyper::header;

use crate::provider::{ProviderError, ProviderErrorKind};

/// Longest error body quoted in a [`ProviderError`] message, in bytes.
pub(super) const ERROR_BODY_LIMIT: usize = 2048;
/// Longest error body read from an error response, in bytes.
const ERROR_BODY_READ_LIMIT: usize = 64 * 1024;

/// How one attempt failed.
pub(super) enum AttemptError {
    /// Worth another attempt: nothing was delivered to the sink yet.
    Retryable {
        /// The error if no attempt is left.
        error: ProviderError,
        /// The reason announced in the retry notice.
        reason: String,
        /// The server's `Retry-After`.
        retry_after: Option<Duration>,
    },
    /// Final.
    Fatal(ProviderError),
}

impl AttemptError {
    pub(super) fn retryable(message: String) -> Self {
        Self::Retryable {
            error: api_error(message.clone()),
            reason: message,
            retry_after: None,
        }
    }
}

/// How reading a response body failed.
pub(super) enum Failure {
    /// The connection broke or stalled.
    Transport(String),
    /// The provider sent something unusable or an error.
    Provider(ProviderError),
}

pub(super) fn api_error(message: String) -> ProviderError {
    ProviderError {
        message,
        kind: ProviderErrorKind::Api,
    }
}

pub(super) fn request_error(message: String) -> ProviderError {
    ProviderError {
        message,
        kind: ProviderErrorKind::Request,
    }
}

pub(super) fn invalid_response(message: impl Into<String>) -> ProviderError {
    ProviderError {
        message: message.into(),
        kind: ProviderErrorKind::InvalidResponse,
    }
}

/// `base * 2^(retry - 1)`, saturating.
pub(super) fn backoff(base: Duration, retry: u32) -> Duration {
    let factor = 1_u32.checked_shl(retry.saturating_sub(1)).unwrap_or(u32::MAX);
    base.saturating_mul(factor)
}

/// A `Retry-After` given in seconds.
pub(super) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let seconds: u64 = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim().parse().ok()?;
    Some(Duration::from_secs(seconds))
}

/// An error and its sources, `: `-separated.
pub(super) fn error_chain(error: &dyn StdError) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(error) = source {
        let text = error.to_string();
        if !message.ends_with(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = error.source();
    }
    message
}

/// The longest prefix of `text` of at most `max` bytes ending on a char boundary.
pub(super) fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Reads the start of an error body (best effort).
pub(super) async fn read_error_body(mut body: Incoming, timeout: Duration) -> Vec<u8> {
    let mut bytes = Vec::new();
    let read = async {
        while let Some(Ok(frame)) = body.frame().await {
            if let Ok(data) = frame.into_data() {
                bytes.extend_from_slice(&data);
                if bytes.len() >= ERROR_BODY_READ_LIMIT {
                    break;
                }
            }
        }
    };
    let _ = tokio::time::timeout(timeout, read).await;
    bytes
}

/// The message of an error body such as `{"error":{"message":"…"}}`.
pub(super) fn error_body_message(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    json_error_message(&value)
}

/// The message of a JSON error: `error.message`, `error` (a string), `message` or `detail`.
fn json_error_message(value: &serde_json::Value) -> Option<String> {
    let error = value.get("error").unwrap_or(value);
    if let Some(text) = error.as_str() {
        return Some(text.to_owned());
    }
    ["message", "detail"].iter().find_map(|key| match error.get(key)? {
        serde_json::Value::String(text) => Some(text.clone()),
        serde_json::Value::Null => None,
        other => Some(other.to_string()),
    })
}

/// The message of an `error` object found in the stream.
pub(super) fn stream_error_message(error: &serde_json::Value) -> String {
    let message = json_error_message(error).unwrap_or_else(|| error.to_string());
    let code = error.get("code").filter(|code| code.is_number() || code.is_string());
    let message = match code {
        Some(serde_json::Value::String(code)) => format!("{code}: {message}"),
        Some(code) => format!("{code}: {message}"),
        None => message,
    };
    truncate(&message, ERROR_BODY_LIMIT).to_owned()
}
