//! One subagent: what it was asked, how far it got, how it ended, and its output file.

use std::io::{BufWriter, Write as _};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use letta_app_server_protocol::{RuntimeScope, SubagentSnapshot, SubagentStatus, SubagentToolCall, cut};
use tokio::sync::watch;

use super::texts;
use crate::sync::lock;

/// An output file takes the streamed messages up to this size; its final `result` line always.
pub const OUTPUT_FILE_BYTES: u64 = 16 * 1024 * 1024;
/// A snapshot shows at most this many bytes of the prompt, and of each tool call's arguments: it
/// goes to every subscriber of the parent at every change.
pub const SNAPSHOT_TEXT_BYTES: usize = 4096;
/// A snapshot lists the newest tool calls only, at most this many.
pub const SNAPSHOT_TOOL_CALLS: usize = 50;

/// How a subagent ended.
#[derive(Debug, Clone)]
pub(crate) struct Finished {
    /// Its final message, or why it failed.
    pub(crate) report: Result<String, String>,
    pub(crate) total_tokens: u64,
    pub(crate) tool_uses: usize,
    pub(crate) duration_ms: u64,
}

/// What changes while a subagent runs.
pub(super) struct Progress {
    pub(super) status: SubagentStatus,
    pub(super) tool_calls: Vec<SubagentToolCall>,
    pub(super) total_tokens: u64,
    /// Set by `TaskStop` (or the foreground call's cancellation): a failure is `Aborted by user`
    /// and no notification follows it.
    pub(super) stopped: bool,
    pub(super) finished: Option<Finished>,
    /// Set once its end was reported (see `Subagents::announce`).
    pub(super) announced: bool,
    /// The output file while it takes messages, and what it holds.
    pub(super) output: Option<(BufWriter<std::fs::File>, u64)>,
}

/// One subagent.
pub(crate) struct Run {
    /// `task_N`, for `TaskOutput`, `TaskStop` and the notification.
    pub(crate) task_id: String,
    /// `subagent-<ms>-<n>`, in snapshots and deltas.
    pub(crate) subagent_id: String,
    /// Its type.
    pub(crate) kind: String,
    pub(crate) description: String,
    pub(super) prompt: String,
    /// The launching conversation.
    pub(crate) parent: RuntimeScope,
    /// The subagent's conversation.
    pub(crate) child: RuntimeScope,
    /// The `client_message_id` of its input in `child`: the turn that consumes it is the
    /// subagent's.
    pub(crate) input_id: String,
    /// 1 for a conversation's subagents, 2 for theirs.
    pub(crate) depth: u32,
    pub(crate) background: bool,
    /// `launch_subagent`'s `notify: "caller"`.
    pub(super) notify_caller: bool,
    pub(super) tool_call_id: Option<String>,
    pub(super) model: Option<String>,
    /// Where its messages and result are written (JSON lines).
    pub(crate) output_file: PathBuf,
    pub(super) start_time: u64,
    pub(super) started: Instant,
    pub(super) progress: Mutex<Progress>,
    /// Becomes `true` once its end was reported.
    pub(super) done: watch::Sender<bool>,
}

impl Run {
    pub(super) fn is_finished(&self) -> bool {
        lock(&self.progress).finished.is_some()
    }

    /// How it ended, once it did.
    pub(crate) fn finished(&self) -> Option<Finished> {
        lock(&self.progress).finished.clone()
    }

    /// Waits up to `wait` for its end to be reported; how it ended, if it did.
    pub(crate) async fn wait(&self, wait: Duration) -> Option<Finished> {
        let mut done = self.done.subscribe();
        let _ = tokio::time::timeout(wait, done.wait_for(|done| *done)).await;
        self.finished()
    }

    /// Records how it ended, unless it already has (the first end counts); `false` then. A failure
    /// after `TaskStop` is `Aborted by user`. The output file gets its `result` line and closes.
    pub(crate) fn settle(&self, report: Result<String, String>) -> bool {
        let mut progress = lock(&self.progress);
        if progress.finished.is_some() {
            return false;
        }
        let report = match report {
            Err(_) if progress.stopped => Err("Aborted by user".to_owned()),
            report => report,
        };
        let finished = Finished {
            report,
            total_tokens: progress.total_tokens,
            tool_uses: progress.tool_calls.len(),
            duration_ms: elapsed_ms(self.started),
        };
        progress.status = match finished.report {
            Ok(_) => SubagentStatus::Completed,
            Err(_) => SubagentStatus::Error,
        };
        let line = serde_json::json!({
            "type": "result",
            "subtype": if finished.report.is_ok() { "success" } else { "error" },
            "result": finished.report.as_ref().unwrap_or_else(|error| error),
            "total_tokens": finished.total_tokens,
            "duration_ms": finished.duration_ms,
        });
        progress.finished = Some(finished);
        write_output(&mut progress, &line, true);
        true
    }

    /// Its entry in the parent's `update_subagent_state` (prompt and arguments cut to
    /// [`SNAPSHOT_TEXT_BYTES`], the newest [`SNAPSHOT_TOOL_CALLS`] calls).
    pub(super) fn snapshot(&self) -> SubagentSnapshot {
        let progress = lock(&self.progress);
        let finished = progress.finished.as_ref();
        let duration_ms = finished.map_or_else(|| elapsed_ms(self.started), |f| f.duration_ms);
        let skipped = progress.tool_calls.len().saturating_sub(SNAPSHOT_TOOL_CALLS);
        let tool_calls = (progress.tool_calls.iter().skip(skipped))
            .map(|call| SubagentToolCall {
                args: cut(call.args.clone(), SNAPSHOT_TEXT_BYTES),
                ..call.clone()
            })
            .collect();
        SubagentSnapshot {
            subagent_id: self.subagent_id.clone(),
            subagent_type: self.kind.clone(),
            description: self.description.clone(),
            prompt: Some(cut(self.prompt.clone(), SNAPSHOT_TEXT_BYTES)),
            status: progress.status.clone(),
            agent_url: self.child.agent_id.clone(),
            conversation_id: Some(Some(self.child.conversation_id.clone())),
            super_run_id: None,
            model: self.model.clone(),
            is_background: Some(self.background),
            claims_parent_runtime: None,
            silent: Some(false),
            tool_call_id: self.tool_call_id.clone(),
            parent_agent_id: self.parent.agent_id.clone(),
            parent_conversation_id: Some(self.parent.conversation_id.clone()),
            start_time: self.start_time,
            tool_calls,
            total_tokens: progress.total_tokens,
            duration_ms,
            error: finished.and_then(|f| f.report.clone().err()),
            result: finished
                .filter(|_| self.notify_caller)
                .map(|finished| texts::outcome(self, finished)),
        }
    }
}

/// Appends a line to the output file (while it holds less than [`OUTPUT_FILE_BYTES`], unless
/// `last`, which also closes it).
pub(super) fn write_output(progress: &mut Progress, line: &serde_json::Value, last: bool) {
    let Some((file, written)) = progress.output.as_mut() else {
        return;
    };
    let mut line = line.to_string();
    line.push('\n');
    if (last || *written + line.len() as u64 <= OUTPUT_FILE_BYTES) && file.write_all(line.as_bytes()).is_ok() {
        *written += line.len() as u64;
    }
    if last {
        // A failed write loses only the transcript; the report still reaches the parent.
        let _ = file.flush();
        progress.output = None;
    }
}

pub(super) fn elapsed_ms(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}
