//! The `<task-notification>` text that reports a background task's end to its conversation, as
//! real Letta formats it for subagents and background commands (docs/protocol.md §4.16).

use std::path::Path;

/// The notification of task `task_id`: `status` (`completed` or `failed`), a one-line `summary`,
/// the `result`, the `usage` lines, then where its full transcript is. The summary and result
/// are escaped (`&`, `<`, `>`), so that no output can close the tags.
pub(crate) fn task_notification(
    task_id: &str,
    status: &str,
    summary: &str,
    result: &str,
    usage: &[String],
    transcript: &Path,
) -> String {
    format!(
        "<task-notification>\n<task-id>{task_id}</task-id>\n<status>{status}</status>\n<summary>{}</summary>\n\
         <result>{}</result>\n<usage>{}</usage>\n</task-notification>\nFull transcript available at: {}",
        escape(summary),
        escape(result),
        usage.join("\n"),
        transcript.display()
    )
}

/// The notification of one event of monitor `task_id` watching `description`: no status, no
/// transcript line (real Letta's format).
pub(crate) fn monitor_event(task_id: &str, description: &str, event: &str) -> String {
    format!(
        "<task-notification>\n<task-id>{task_id}</task-id>\n<summary>{}</summary>\n<result>\n<event>{}</event>\n\
         </result>\n</task-notification>",
        escape(&format!("Monitor event: \"{description}\"")),
        escape(event)
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}
