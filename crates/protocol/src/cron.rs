//! The scheduled prompts (cron) group: `cron_list`, `cron_add`, `cron_get`, `cron_runs`,
//! `cron_trigger`, `cron_pause`, `cron_resume`, `cron_update`, `cron_delete`,
//! `cron_delete_all`, their responses and the `crons_updated` push (docs/protocol.md §4.4).
//!
//! A firing task queues a `cron_prompt` item with `source: "cron"` (§3.4). The values a server
//! reports about tasks and runs (statuses, outcomes, reasons) are open enums.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::MaybeEnveloped;
use crate::serde_util::{double_option, nullable};

/// Lists scheduled tasks, optionally of one agent or conversation.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct CronList {
    /// Correlates the response.
    pub request_id: String,
    /// Only this agent's tasks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// Only this conversation's tasks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
}

/// Result of `cron_list`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct CronListResponse {
    /// Echo of the request's id.
    pub request_id: String,
    /// The tasks (empty on failure).
    pub tasks: Vec<CronTask>,
    /// Whether the tasks were listed.
    pub success: bool,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Schedules a prompt.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct CronAdd {
    /// Correlates the response.
    pub request_id: String,
    /// The agent the prompt goes to.
    pub agent_id: String,
    /// Where it goes: absent or `"new"` for a fresh conversation per firing, `"default"`, or a
    /// conversation id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
    /// Short name.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// Cron expression.
    pub cron: String,
    /// IANA time zone of the expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// Fires repeatedly (`false`: once).
    pub recurring: bool,
    /// The prompt to queue when it fires.
    pub prompt: String,
    /// ISO-8601 time of a one-off firing; absent or `null` for none.
    #[serde(
        default,
        deserialize_with = "double_option::deserialize",
        skip_serializing_if = "Option::is_none"
    )]
    pub scheduled_for: Option<Option<String>>,
}

/// Result of `cron_add`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct CronAddResponse {
    /// Echo of the request's id.
    pub request_id: String,
    /// Whether the task was added.
    pub success: bool,
    /// The new task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<CronTask>,
    /// A notice about the schedule (the task was still added).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Reads one task.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct CronGet {
    /// Correlates the response.
    pub request_id: String,
    /// The task.
    pub task_id: String,
}

/// Result of `cron_get`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct CronGetResponse {
    /// Echo of the request's id.
    pub request_id: String,
    /// Whether the lookup ran.
    pub success: bool,
    /// Whether the task exists.
    pub found: bool,
    /// The task; `null` when not found.
    #[schemars(required, schema_with = "nullable::<CronTask>")]
    pub task: Option<CronTask>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Reads a page of a task's run log.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct CronRuns {
    /// Correlates the response.
    pub request_id: String,
    /// The task.
    pub task_id: String,
    /// Page size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    /// Entries to skip.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// Only the entries of this run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
}

/// Result of `cron_runs`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct CronRunsResponse {
    /// Echo of the request's id.
    pub request_id: String,
    /// Whether the log was read.
    pub success: bool,
    /// The page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<CronRunLogPage>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Fires a task now.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct CronTrigger {
    /// Correlates the response.
    pub request_id: String,
    /// The task.
    pub task_id: String,
}

/// Pauses a task.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct CronPause {
    /// Correlates the response.
    pub request_id: String,
    /// The task.
    pub task_id: String,
}

/// Resumes a paused task.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct CronResume {
    /// Correlates the response.
    pub request_id: String,
    /// The task.
    pub task_id: String,
    /// The new ISO-8601 firing time; required when resuming an overdue one-off task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_for: Option<String>,
}

/// The response of `cron_trigger`, `cron_pause` and `cron_resume`: the task as it is now.
macro_rules! found_task_response {
    ($( $(#[$meta:meta])* $name:ident )+) => {$(
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
        pub struct $name {
            /// Echo of the request's id.
            pub request_id: String,
            /// Whether the command succeeded.
            pub success: bool,
            /// Whether the task exists.
            pub found: bool,
            /// The task as it is now.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub task: Option<CronTask>,
            /// Why it failed.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub error: Option<String>,
        }
    )+};
}

found_task_response! {
    /// Result of `cron_trigger`.
    CronTriggerResponse
    /// Result of `cron_pause`.
    CronPauseResponse
    /// Result of `cron_resume`.
    CronResumeResponse
}

/// Changes a task; absent fields stay as they are.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct CronUpdate {
    /// Correlates the response.
    pub request_id: String,
    /// The task.
    pub task_id: String,
    /// New name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// New description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// New target conversation (as in `cron_add`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
    /// New cron expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    /// New time zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// Fires repeatedly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recurring: Option<bool>,
    /// New prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// New one-off firing time; `null` clears it.
    #[serde(
        default,
        deserialize_with = "double_option::deserialize",
        skip_serializing_if = "Option::is_none"
    )]
    pub scheduled_for: Option<Option<String>>,
}

/// Result of `cron_update`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct CronUpdateResponse {
    /// Echo of the request's id.
    pub request_id: String,
    /// Whether the task was changed.
    pub success: bool,
    /// The task as it is now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<CronTask>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Deletes a task.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct CronDelete {
    /// Correlates the response.
    pub request_id: String,
    /// The task.
    pub task_id: String,
}

/// Result of `cron_delete`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct CronDeleteResponse {
    /// Echo of the request's id.
    pub request_id: String,
    /// Whether the command succeeded.
    pub success: bool,
    /// Whether the task existed.
    pub found: bool,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Deletes every task of an agent.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct CronDeleteAll {
    /// Correlates the response.
    pub request_id: String,
    /// The agent.
    pub agent_id: String,
}

/// Result of `cron_delete_all`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct CronDeleteAllResponse {
    /// Echo of the request's id.
    pub request_id: String,
    /// Whether the command succeeded.
    pub success: bool,
    /// Echo of the agent id.
    pub agent_id: String,
    /// How many tasks were deleted.
    pub deleted: u64,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Push: the scheduled tasks changed. Sent directly (no envelope) to the socket after its cron
/// command, and as an enveloped runtime event of the task's scope when the scheduler fires one.
pub type CronsUpdated = MaybeEnveloped<CronsChange>;

/// What a `crons_updated` says changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CronsChange {
    /// When, ms since the epoch.
    pub timestamp: u64,
    /// The agent whose tasks changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// The conversation of the task that changed, as stored (`"new"` for a task that starts a
    /// fresh one each time), or the one a fire prompted; absent when an agent's tasks all went.
    #[serde(
        default,
        deserialize_with = "double_option::deserialize",
        skip_serializing_if = "Option::is_none"
    )]
    pub conversation_id: Option<Option<String>>,
}

/// A scheduled task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CronTask {
    /// Task id.
    pub id: String,
    /// The agent it prompts.
    pub agent_id: String,
    /// Its target conversation (`"new"`, `"default"` or an id).
    pub conversation_id: String,
    /// Short name.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// Cron expression.
    pub cron: String,
    /// IANA time zone.
    pub timezone: String,
    /// Fires repeatedly.
    pub recurring: bool,
    /// The prompt it queues.
    pub prompt: String,
    /// Lifecycle state.
    pub status: CronTaskStatus,
    /// ISO-8601 creation time.
    pub created_at: String,
    /// ISO-8601 expiry time, if any.
    #[schemars(required, schema_with = "nullable::<String>")]
    pub expires_at: Option<String>,
    /// ISO-8601 time of the last firing.
    #[schemars(required, schema_with = "nullable::<String>")]
    pub last_fired_at: Option<String>,
    /// How often it fired.
    pub fire_count: u64,
    /// Why it was cancelled.
    #[schemars(required, schema_with = "nullable::<CronCancelReason>")]
    pub cancel_reason: Option<CronCancelReason>,
    /// Random delay added to each firing, ms.
    pub jitter_offset_ms: i64,
    /// ISO-8601 time of the last run.
    #[schemars(required, schema_with = "nullable::<String>")]
    pub last_run_at: Option<String>,
    /// What the last run did.
    #[schemars(required, schema_with = "nullable::<CronRunOutcome>")]
    pub last_run_outcome: Option<CronRunOutcome>,
    /// Why the last run did that.
    #[schemars(required, schema_with = "nullable::<CronRunReason>")]
    pub last_run_reason: Option<CronRunReason>,
    /// The last run's error.
    #[schemars(required, schema_with = "nullable::<String>")]
    pub last_run_error: Option<String>,
    /// ISO-8601 time of the last missed firing.
    #[schemars(required, schema_with = "nullable::<String>")]
    pub last_missed_at: Option<String>,
    /// How many firings were missed.
    pub missed_count: u64,
    /// How many runs failed.
    pub failed_count: u64,
    /// ISO-8601 time of a one-off firing.
    #[schemars(required, schema_with = "nullable::<String>")]
    pub scheduled_for: Option<String>,
    /// ISO-8601 time a one-off task fired.
    #[schemars(required, schema_with = "nullable::<String>")]
    pub fired_at: Option<String>,
    /// ISO-8601 time a one-off task was missed.
    #[schemars(required, schema_with = "nullable::<String>")]
    pub missed_at: Option<String>,
}

open_enum! {
    /// Lifecycle state of a scheduled task.
    pub enum CronTaskStatus {
        /// Waiting for its next firing.
        Active = "active",
        /// Paused by `cron_pause`.
        Paused = "paused",
        /// A one-off task that fired.
        Fired = "fired",
        /// A one-off task whose time passed without firing.
        Missed = "missed",
        /// Cancelled (see `cancel_reason`).
        Cancelled = "cancelled",
    }
}

open_enum! {
    /// Why a task was cancelled.
    pub enum CronCancelReason {
        /// Its conversation no longer exists.
        ConversationNotFound = "conversation_not_found",
        /// It expired.
        Expired = "expired",
    }
}

open_enum! {
    /// What a run did.
    pub enum CronRunOutcome {
        /// Its prompt was queued.
        Queued = "queued",
        /// Its time passed without a run.
        Missed = "missed",
        /// It failed.
        Failed = "failed",
        /// It was skipped.
        Skipped = "skipped",
    }
}

open_enum! {
    /// Why a run had its outcome.
    pub enum CronRunReason {
        /// The cron expression matched.
        ScheduledTimeMatched = "scheduled_time_matched",
        /// A one-off task was due.
        OneOffDue = "one_off_due",
        /// The scheduler was not running.
        SchedulerInactive = "scheduler_inactive",
        /// It started too late.
        StartedTooLate = "started_too_late",
        /// The conversation's queue was full.
        QueueFull = "queue_full",
        /// The runtime was unavailable.
        RuntimeUnavailable = "runtime_unavailable",
        /// The task was cancelled.
        TaskCancelled = "task_cancelled",
        /// The cron expression is invalid.
        InvalidCron = "invalid_cron",
        /// The scheduler failed.
        SchedulerError = "scheduler_error",
    }
}

/// A page of a task's run log. Its field names are camelCase on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CronRunLogPage {
    /// The entries.
    pub entries: Vec<CronRunLogEntry>,
    /// Entries in the whole log.
    pub total: u64,
    /// Entries skipped.
    pub offset: u64,
    /// Page size.
    pub limit: u64,
    /// Whether more entries follow.
    #[serde(rename = "hasMore")]
    pub has_more: bool,
    /// The offset of the next page; `null` when there is none.
    #[serde(rename = "nextOffset")]
    #[schemars(required, schema_with = "nullable::<u64>")]
    pub next_offset: Option<u64>,
}

/// One entry of a task's run log. Its field names are camelCase on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CronRunLogEntry {
    /// When, ms since the epoch.
    pub ts: u64,
    /// The task.
    pub job_id: String,
    /// What happened (`finished`).
    pub action: CronRunAction,
    /// How the run ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<CronRunLogStatus>,
    /// What the run did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<CronRunOutcome>,
    /// Why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<CronRunReason>,
    /// The run's error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// A summary of the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// The agent prompted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// The conversation prompted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
    /// The backend run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// When it ran, ms since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_at_ms: Option<u64>,
    /// The queue item it created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_item_id: Option<String>,
    /// ISO-8601 time of the one-off firing, if any.
    #[serde(
        default,
        deserialize_with = "double_option::deserialize",
        skip_serializing_if = "Option::is_none"
    )]
    pub scheduled_for: Option<Option<String>>,
    /// ISO-8601 time it fired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fired_at: Option<String>,
    /// How many fires a `missed` entry stands for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missed_count: Option<u64>,
}

open_enum! {
    /// The action of a run log entry.
    pub enum CronRunAction {
        /// A run finished.
        Finished = "finished",
    }
}

open_enum! {
    /// How a logged run ended.
    pub enum CronRunLogStatus {
        /// It succeeded.
        Ok = "ok",
        /// It failed.
        Error = "error",
        /// It was skipped.
        Skipped = "skipped",
    }
}

refused_with_empty_fields! {
    CronList => CronListResponse,
    CronAdd => CronAddResponse,
    CronGet => CronGetResponse,
    CronRuns => CronRunsResponse,
    CronTrigger => CronTriggerResponse,
    CronPause => CronPauseResponse,
    CronResume => CronResumeResponse,
    CronUpdate => CronUpdateResponse,
    CronDelete => CronDeleteResponse,
}

impl crate::Refuse for CronDeleteAll {
    fn refuse(&self, error: String) -> Option<CronDeleteAllResponse> {
        Some(CronDeleteAllResponse {
            request_id: self.request_id.clone(),
            success: false,
            agent_id: self.agent_id.clone(),
            deleted: 0,
            error: Some(error),
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::{ClientFrame, ServerFrame};

    #[test]
    fn an_update_tells_a_cleared_one_off_time_from_an_unchanged_one() {
        let cleared = json!({"type": "cron_update", "request_id": "cu-1", "task_id": "t", "scheduled_for": null});
        let unchanged = json!({"type": "cron_update", "request_id": "cu-2", "task_id": "t"});
        for (frame, expected) in [(cleared, Some(None)), (unchanged, None)] {
            let ClientFrame::CronUpdate(update) = ClientFrame::from_value(frame.clone()).unwrap() else {
                panic!("not a cron_update");
            };
            assert_eq!(update.scheduled_for, expected);
            let again = serde_json::to_value(ClientFrame::from(update)).unwrap();
            assert_eq!(again, frame);
        }
    }

    #[test]
    fn crons_updated_comes_direct_or_enveloped_and_a_bad_envelope_is_an_error() {
        let direct = json!({"type": "crons_updated", "timestamp": 1, "conversation_id": null});
        let ServerFrame::CronsUpdated(update) = ServerFrame::from_value(direct.clone()).unwrap() else {
            panic!("not crons_updated");
        };
        assert_eq!((update.envelope, update.body.conversation_id), (None, Some(None)));

        let mut enveloped = json!({
            "type": "crons_updated", "timestamp": 1, "agent_id": "agent-1",
            "runtime": {"agent_id": "agent-1", "conversation_id": "conv-1"},
            "event_seq": 3, "emitted_at": "2026-12-01T00:00:00.000Z", "idempotency_key": "crons_updated:3:u",
        });
        let parsed = ServerFrame::from_value(enveloped.clone()).unwrap();
        let ServerFrame::CronsUpdated(update) = &parsed else {
            panic!("not crons_updated");
        };
        assert_eq!(update.envelope.as_ref().map(|e| e.event_seq), Some(3));
        assert_eq!(serde_json::to_value(&parsed).unwrap(), enveloped);

        enveloped["event_seq"] = json!("three");
        let error = ServerFrame::from_value(enveloped.clone()).unwrap_err();
        assert_eq!(error.path.as_deref(), Some("event_seq"));
        enveloped.as_object_mut().unwrap().remove("event_seq");
        assert!(ServerFrame::from_value(enveloped).is_err(), "half an envelope");
    }
}
