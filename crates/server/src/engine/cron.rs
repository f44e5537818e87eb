//! Scheduled prompts (docs/protocol.md §4.4): the stored tasks, their changes, and the
//! scheduler that fires them into conversations as `cron_prompt` queue items.
//!
//! The scheduler looks at every minute once, at its start (by the [`schedule::Clock`] of the
//! configuration), and remembers in the store the minute it looked at last. A minute that passed
//! while the server was down (or that it could not look at in time) is caught up at the next
//! look: the newest fire a task missed runs if it is at most [`GRACE`] old, and the others are
//! recorded as missed (`missed_count`, a `skipped` run log entry); a one-off task more than
//! [`GRACE`] overdue becomes `missed`. Misses older than [`LOOK_BACK`] are not counted. Tasks
//! that ended are deleted after [`ENDED_KEPT`].

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use letta_app_server_protocol::{
    CronRunAction, CronRunLogEntry, CronRunLogStatus, CronRunOutcome, CronRunReason, CronTask, CronTaskStatus,
    CronsChange, CronsUpdated, JsonObject, QueueItemKind, QueueItemSource, RuntimeScope,
};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::engine::Engine;
use crate::engine::catalog::{new_conversation, scope_of};
use crate::engine::conversation::Conversation;
use crate::schedule::{self, Expression, Firing};

/// How late a fire may still run, and how overdue a one-off task may be before it is missed
/// (real Letta's five minutes).
pub const GRACE: SignedDuration = SignedDuration::from_mins(5);
/// How far back the scheduler counts the misses of a server that was down.
pub const LOOK_BACK: SignedDuration = SignedDuration::from_hours(24 * 7);
/// Tasks an agent may have that can still fire (active or paused), as on real Letta.
pub const MAX_TASKS_PER_AGENT: usize = 50;
/// How long a task that ended (`fired`, `missed`, `cancelled`) is kept (real Letta's 24 h); the
/// scheduler looks for older ones every hour.
pub const ENDED_KEPT: SignedDuration = SignedDuration::from_hours(24);

/// What made a task fire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// Its time came.
    Scheduled,
    /// `cron_trigger`: a run now, which does not use up a one-off task.
    Manual,
}

/// The minute `at` falls in.
fn minute_of(at: Timestamp) -> Timestamp {
    Timestamp::from_millisecond(at.as_millisecond() - at.as_millisecond().rem_euclid(60_000)).unwrap_or(at)
}

/// `at` as ISO-8601 with milliseconds, as real Letta stores times.
pub fn iso(at: Timestamp) -> String {
    at.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

fn parse_iso(text: Option<&str>) -> Option<Timestamp> {
    text.and_then(|text| text.parse().ok())
}

/// Sends `crons_updated` (without envelope) to every connected client.
pub fn announce(engine: &Engine, agent_id: Option<&str>, conversation_id: Option<&str>) {
    let change = CronsUpdated {
        envelope: None,
        body: CronsChange {
            timestamp: engine.crons.clock.now().as_millisecond().max(0) as u64,
            agent_id: agent_id.map(str::to_owned),
            conversation_id: conversation_id.map(|id| Some(id.to_owned())),
        },
    };
    engine.audience.notify_everyone(change.into());
}

impl Engine {
    /// Runs the scheduler until `shutdown`: at each minute, fires the tasks due and records the
    /// ones missed.
    pub async fn run_scheduler(self: Arc<Self>, shutdown: CancellationToken) {
        let mut looked = match self.store.cron_watermark().await {
            Ok(Some(minute)) => Timestamp::from_millisecond(minute).ok(),
            _ => None,
        };
        let mut collected: Option<Timestamp> = None;
        loop {
            let now = self.crons.clock.now();
            let minute = minute_of(now);
            // The first look ever starts at this minute.
            let from = looked.unwrap_or(minute - SignedDuration::from_mins(1));
            if minute > from {
                self.look(from, minute, now).await;
                looked = Some(minute);
                let _ = self.store.save_cron_watermark(minute.as_millisecond()).await;
            }
            if collected.is_none_or(|at| now.duration_since(at) >= SignedDuration::from_hours(1)) {
                self.collect_ended(now).await;
                collected = Some(now);
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = self.crons.clock.next_minute() => {}
            }
        }
    }

    /// Looks at the minutes after `from` up to `minute` (the current one) for every active task.
    async fn look(self: &Arc<Self>, from: Timestamp, minute: Timestamp, now: Timestamp) {
        let Ok(tasks) = self.store.active_cron_tasks().await else {
            return;
        };
        let verdicts = move || {
            (tasks.into_iter())
                .map(|task| {
                    let verdict = match parse_iso(task.scheduled_for.as_deref()) {
                        Some(at) if !task.recurring => Some(one_off(at, now)),
                        _ => Expression::parse(&task.cron).map(|cron| matches(&cron, &task, from, minute, now)),
                    };
                    (task, verdict)
                })
                .collect::<Vec<_>>()
        };
        // After a long downtime each task's minutes since (up to a week of them) are matched:
        // on the blocking pool, off the workers that serve the clients.
        let matched = if minute.duration_since(from) > SignedDuration::from_hours(1) {
            tokio::task::spawn_blocking(verdicts).await.unwrap_or_default()
        } else {
            verdicts()
        };
        for (task, verdict) in matched {
            let Some((due, missed)) = verdict else {
                self.invalid_cron(task).await;
                continue;
            };
            let id = task.id.clone();
            if missed > 0 {
                self.record_missed(&id, missed, due.is_none(), now).await;
            }
            if let Some(intended) = due {
                let _ = self.fire(&id, Trigger::Scheduled, intended).await;
            }
        }
    }

    /// Deletes, with their run logs, the tasks that ended (`fired`, `missed`, `cancelled`) more
    /// than [`ENDED_KEPT`] ago, counted from the latest of their creation, fire and miss: real
    /// Letta's hourly clean-up (which keeps the run logs; here they go with the task).
    async fn collect_ended(&self, now: Timestamp) {
        let _changing = self.crons.changing().await;
        let Ok(tasks) = self.store.ended_cron_tasks().await else {
            return;
        };
        for task in tasks {
            let times = [&task.last_fired_at, &task.fired_at, &task.missed_at];
            let latest = (times.into_iter().filter_map(|at| parse_iso(at.as_deref())))
                .chain(parse_iso(Some(&task.created_at)))
                .max();
            let old = latest.is_some_and(|at| now.duration_since(at) > ENDED_KEPT);
            if old && self.store.delete_cron_tasks(Some(task.id.clone()), None).await.is_ok() {
                announce(self, Some(&task.agent_id), Some(&task.conversation_id));
            }
        }
    }

    /// Records `count` fires of task `id` as missed; a one-off task (`ended`) is then `missed`.
    async fn record_missed(&self, id: &str, count: u64, ended: bool, now: Timestamp) {
        let _changing = self.crons.changing().await;
        let Ok(Some(mut task)) = self.store.cron_task(id.to_owned()).await else {
            return;
        };
        // Paused or changed by a command since the scheduler looked.
        if task.status != CronTaskStatus::Active {
            return;
        }
        let previous_failure = task.last_run_outcome == Some(CronRunOutcome::Failed);
        let reason = match (previous_failure, task.last_run_reason.clone()) {
            (true, Some(reason)) => reason,
            _ => CronRunReason::SchedulerInactive,
        };
        if !previous_failure {
            task.last_run_error = None;
        }
        task.missed_count += count;
        task.last_missed_at = Some(task.scheduled_for.clone().unwrap_or_else(|| iso(now)));
        task.last_run_at = Some(iso(now));
        task.last_run_outcome = Some(CronRunOutcome::Missed);
        task.last_run_reason = Some(reason.clone());
        if ended && !task.recurring {
            task.status = CronTaskStatus::Missed;
            task.missed_at = Some(iso(now));
        }
        let entry = CronRunLogEntry {
            status: Some(CronRunLogStatus::Skipped),
            outcome: Some(CronRunOutcome::Missed),
            reason: Some(reason),
            error: task.last_run_error.clone(),
            summary: Some("missed".into()),
            scheduled_for: Some(task.scheduled_for.clone()),
            missed_count: Some(count),
            ..log_entry(&task, now)
        };
        let _ = self.store.save_cron_task(task.clone()).await;
        let _ = self.store.append_cron_run(entry).await;
        announce(self, Some(&task.agent_id), Some(&task.conversation_id));
    }

    /// Marks a task whose cron expression no longer parses as failed, once.
    async fn invalid_cron(&self, task: CronTask) {
        let error = format!(
            "Invalid cron expression \"{}\". Delete and recreate this schedule.",
            task.cron
        );
        if task.last_run_error.as_deref() == Some(error.as_str()) {
            return;
        }
        let _changing = self.crons.changing().await;
        // As it is now: a command may have changed it since the scheduler looked.
        let Ok(Some(mut task)) = self.store.cron_task(task.id).await else {
            return;
        };
        if Expression::parse(&task.cron).is_some() || task.last_run_error.as_deref() == Some(error.as_str()) {
            return;
        }
        let now = self.crons.clock.now();
        fail(&mut task, CronRunReason::InvalidCron, error, now);
        let _ = self.store.save_cron_task(task.clone()).await;
        announce(self, Some(&task.agent_id), Some(&task.conversation_id));
    }

    /// Fires task `id` now, as meant for `intended`: queues its prompt in its conversation (a new
    /// one for `"new"`), records the run, and tells every client. Returns the task afterwards,
    /// or why it could not fire (recorded on the task too).
    pub async fn fire(self: &Arc<Self>, id: &str, trigger: Trigger, intended: Timestamp) -> Result<CronTask, String> {
        // Held throughout: a command changing the task meanwhile waits for the fire's record.
        let _changing = self.crons.changing().await;
        let Some(mut task) = self.store.cron_task(id.to_owned()).await.map_err(|e| e.to_string())? else {
            return Err("Schedule not found".into());
        };
        if trigger == Trigger::Scheduled && task.status != CronTaskStatus::Active {
            return Err("Schedule is not active".into());
        }
        let now = self.crons.clock.now();
        // A one-off time moved into the future since the scheduler looked: not due any more.
        let due_at = parse_iso(task.scheduled_for.as_deref()).filter(|_| !task.recurring);
        if trigger == Trigger::Scheduled && due_at.is_some_and(|at| at > now) {
            return Err("Schedule is not due".into());
        }
        let queued = self.queue_prompt(&task, intended, now).await;
        let mut fired_in = task.conversation_id.clone();
        let result = match queued {
            Ok(conversation_id) => {
                fired_in.clone_from(&conversation_id);
                let reason = if task.recurring {
                    CronRunReason::ScheduledTimeMatched
                } else {
                    CronRunReason::OneOffDue
                };
                task.last_fired_at = Some(iso(now));
                task.fire_count += 1;
                task.last_run_at = Some(iso(now));
                task.last_run_outcome = Some(CronRunOutcome::Queued);
                task.last_run_reason = Some(reason.clone());
                task.last_run_error = None;
                if trigger == Trigger::Scheduled && !task.recurring {
                    task.status = CronTaskStatus::Fired;
                    task.fired_at = Some(iso(now));
                }
                let entry = CronRunLogEntry {
                    status: Some(CronRunLogStatus::Ok),
                    outcome: Some(CronRunOutcome::Queued),
                    reason: Some(reason),
                    conversation_id: Some(conversation_id),
                    scheduled_for: Some(task.scheduled_for.clone()),
                    fired_at: Some(iso(now)),
                    ..log_entry(&task, now)
                };
                let _ = self.store.append_cron_run(entry).await;
                Ok(())
            }
            Err(error) => {
                let reason = if error == Conversation::QUEUE_FULL {
                    CronRunReason::QueueFull
                } else {
                    CronRunReason::RuntimeUnavailable
                };
                fail(&mut task, reason.clone(), error.clone(), now);
                let entry = CronRunLogEntry {
                    status: Some(CronRunLogStatus::Error),
                    outcome: Some(CronRunOutcome::Failed),
                    reason: Some(reason),
                    error: Some(error.clone()),
                    ..log_entry(&task, now)
                };
                let _ = self.store.append_cron_run(entry).await;
                Err(error)
            }
        };
        self.store
            .save_cron_task(task.clone())
            .await
            .map_err(|e| e.to_string())?;
        announce(self, Some(&task.agent_id), Some(&fired_in));
        result.map(|()| task)
    }

    /// Queues the prompt of `task` in its conversation; the conversation's id.
    async fn queue_prompt(
        self: &Arc<Self>,
        task: &CronTask,
        intended: Timestamp,
        now: Timestamp,
    ) -> Result<String, String> {
        let scope = match task.conversation_id.as_str() {
            "new" => {
                let body = json!({"summary": task.name, "tags": ["origin:schedule"]});
                let body: JsonObject = body.as_object().cloned().unwrap_or_default();
                let conversation = new_conversation(self, "conv", Some(&task.agent_id), body).await?;
                let id = conversation.get("id").and_then(|id| id.as_str()).unwrap_or_default();
                RuntimeScope::new(&task.agent_id, id)
            }
            id => scope_of(self, id, Some(&task.agent_id)).await?.0,
        };
        let conversation = self.conversation(&scope).await.map_err(|error| error.to_string())?;
        let firing = Firing {
            name: &task.name,
            description: &task.description,
            timezone: &task.timezone,
            cron: &task.cron,
            prompt: &task.prompt,
            fire_number: task.recurring.then_some(task.fire_count + 1),
            scheduled: intended,
            now,
        };
        let origin = (QueueItemKind::CronPrompt, QueueItemSource::Cron);
        conversation.queue_prompt(&self.context, origin, firing.text()).await?;
        Ok(scope.conversation_id)
    }
}

/// The fire of an active one-off task due at `at`, if due now, and its miss, if overdue by more
/// than [`GRACE`].
fn one_off(at: Timestamp, now: Timestamp) -> (Option<Timestamp>, u64) {
    if at > now {
        (None, 0)
    } else if now.duration_since(at) > GRACE {
        (None, 1)
    } else {
        (Some(at), 0)
    }
}

/// The fire due of a cron task among the minutes after `from` up to `minute`: the newest match,
/// if at most [`GRACE`] old; and how many matches are missed (the older ones, and the newest
/// when too old). A one-off task without a time fires once, at its first match.
fn matches(
    expression: &Expression,
    task: &CronTask,
    from: Timestamp,
    minute: Timestamp,
    now: Timestamp,
) -> (Option<Timestamp>, u64) {
    let zone = schedule::zone(&task.timezone).unwrap_or_else(jiff::tz::TimeZone::system);
    let created = parse_iso(Some(&task.created_at)).map(minute_of);
    let start = [
        Some(from),
        created.map(|c| c - SignedDuration::from_mins(1)),
        Some(now - LOOK_BACK),
    ]
    .into_iter()
    .flatten()
    .max()
    .unwrap_or(from);
    let mut matched = Vec::new();
    let mut at = start + SignedDuration::from_mins(1);
    while at <= minute {
        if expression.matches(at, &zone) {
            matched.push(at);
        }
        at += SignedDuration::from_mins(1);
    }
    let Some(&newest) = matched.last() else {
        return (None, 0);
    };
    let fresh = now.duration_since(newest) <= GRACE;
    if !task.recurring {
        // A one-off task without a time: its first match is its only fire.
        return if fresh && matched.len() == 1 {
            (Some(newest), 0)
        } else {
            (None, 1)
        };
    }
    let missed = matched.len() as u64 - u64::from(fresh);
    (fresh.then_some(newest), missed)
}

/// Records a failed run on `task`.
fn fail(task: &mut CronTask, reason: CronRunReason, error: String, now: Timestamp) {
    task.last_run_at = Some(iso(now));
    task.last_run_outcome = Some(CronRunOutcome::Failed);
    task.last_run_reason = Some(reason);
    task.last_run_error = Some(error);
    task.failed_count += 1;
}

/// A run log entry of `task` at `now`, to complete.
fn log_entry(task: &CronTask, now: Timestamp) -> CronRunLogEntry {
    CronRunLogEntry {
        ts: now.as_millisecond().max(0) as u64,
        job_id: task.id.clone(),
        action: CronRunAction::Finished,
        status: None,
        outcome: None,
        reason: None,
        error: None,
        summary: None,
        agent_id: Some(task.agent_id.clone()),
        conversation_id: Some(task.conversation_id.clone()),
        run_id: None,
        run_at_ms: Some(now.as_millisecond().max(0) as u64),
        queue_item_id: None,
        scheduled_for: None,
        fired_at: None,
        missed_count: None,
    }
}

/// The jitter of `task` as it is now (a new or changed task): see [`schedule::jitter_ms`].
pub fn jitter_of(task: &CronTask) -> i64 {
    let created = parse_iso(Some(&task.created_at)).unwrap_or_else(Timestamp::now);
    schedule::jitter_ms(
        &task.id,
        task.recurring,
        &task.cron,
        parse_iso(task.scheduled_for.as_deref()),
        created,
    )
}
