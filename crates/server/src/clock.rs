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

/// A short random id with a prefix: `<prefix>-<16 hex digits>` (64 random bits), for ids that
/// are repeated in many frames (run ids).
pub fn new_short_id(prefix: &str) -> String {
    format!("{prefix}-{:016x}", uuid::Uuid::new_v4().as_u64_pair().0)
}

/// The current time in milliseconds since the Unix epoch.
pub fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
}
