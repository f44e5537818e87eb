//! Timestamps and ids.

use std::time::SystemTime;

/// The current time as ISO-8601 with milliseconds (`2026-11-25T03:00:46.534Z`).
pub fn now_iso() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

/// A new random id with a prefix: `<prefix>-<uuid-v4>`.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4())
}
