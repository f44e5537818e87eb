//! What the model reads about a subagent, in real Letta's formats (docs/protocol.md §4.16): the
//! `Agent` tool's results, and the `<task-notification>` a background subagent ends with.

use super::{Finished, Run};
use crate::engine::notices::task_notification;
use crate::tools::truncate_chars;

/// A report is cut to this many characters (Letta's `TASK_OUTPUT_CHARS`).
const REPORT_CHARS: usize = 30_000;

/// The first line of every result: `subagent_type=… subagent_id=… subagent_status=…
/// agent_id=… conversation_id=…`.
fn header(run: &Run, success: bool) -> String {
    let status = if success { "success" } else { "error" };
    let mut header = format!(
        "subagent_type={} subagent_id={} subagent_status={status}",
        run.kind, run.subagent_id
    );
    if let Some(agent_id) = &run.child.agent_id {
        header.push_str(&format!(" agent_id={agent_id}"));
    }
    header.push_str(&format!(" conversation_id={}", run.child.conversation_id));
    header
}

/// The header, a blank line, then the report (cut to [`REPORT_CHARS`]) or `Error: …`.
pub(super) fn outcome(run: &Run, finished: &Finished) -> String {
    match &finished.report {
        Ok(report) => {
            let mut report = report.clone();
            if let Some(cut) = truncate_chars(&mut report, REPORT_CHARS, 0) {
                report.push_str(&format!("\n… [{cut} characters cut]"));
            }
            format!("{}\n\n{report}", header(run, true))
        }
        Err(error) => format!("{}\n\nError: {error}", header(run, false)),
    }
}

/// The result of a foreground `Agent` call.
pub(super) fn foreground(run: &Run, finished: &Finished) -> String {
    format!("{}\nOutput file: {}", outcome(run, finished), run.output_file.display())
}

/// The result of a background `Agent` call, returned at once.
pub(super) fn receipt(run: &Run) -> String {
    let mut receipt = format!("Task running in background with task ID: {}\n", run.task_id);
    if let Some(agent_id) = &run.child.agent_id {
        receipt.push_str(&format!("Agent ID: {agent_id}\n"));
    }
    receipt.push_str(&format!(
        "Conversation ID: {}\nOutput file: {}\n\nIts report will arrive by itself as a \
         <task-notification> message once the task is done: there is no need to wait for it, \
         poll it or read the output file. Go on with your work.",
        run.child.conversation_id,
        run.output_file.display()
    ));
    receipt
}

/// The `task_notification` queue item's text that ends a background subagent.
pub(super) fn notification(run: &Run, finished: &Finished) -> String {
    let (status, verb) = match finished.report {
        Ok(_) => ("completed", "completed"),
        Err(_) => ("failed", "failed"),
    };
    let mut usage = Vec::new();
    if finished.total_tokens > 0 {
        usage.push(format!("total_tokens: {}", finished.total_tokens));
    }
    usage.push(format!("tool_uses: {}", finished.tool_uses));
    usage.push(format!("duration_ms: {}", finished.duration_ms));
    task_notification(
        &run.task_id,
        status,
        &format!("Agent \"{}\" {verb}", run.description),
        &outcome(run, finished),
        &usage,
        &run.output_file,
    )
}
