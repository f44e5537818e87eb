//! The scheduled prompts group (docs/protocol.md §4.4): `cron_list`, `cron_add`, `cron_get`,
//! `cron_runs`, `cron_trigger`, `cron_pause`, `cron_resume`, `cron_update`, `cron_delete`,
//! `cron_delete_all`, on the tasks the engine's scheduler fires (see [`crate::engine::cron`]).
//!
//! A command that changes a task answers, then sends every client `crons_updated` (without
//! envelope; real Letta sends it to the client of the command only). `cron_trigger`'s fire
//! sends its own.

use letta_app_server_protocol::{
    CronAdd, CronAddResponse, CronDelete, CronDeleteAll, CronDeleteAllResponse, CronDeleteResponse, CronGet,
    CronGetResponse, CronList, CronListResponse, CronPause, CronPauseResponse, CronResume, CronResumeResponse,
    CronRunLogPage, CronRuns, CronRunsResponse, CronTask, CronTaskStatus, CronTrigger, CronTriggerResponse, CronUpdate,
    CronUpdateResponse,
};

use crate::engine::Engine;
use crate::engine::catalog::stored_agent;
use crate::engine::cron::{MAX_TASKS_PER_AGENT, Trigger, announce, iso, jitter_of};
use crate::schedule::{Expression, local_zone_name};

/// Run log entries `cron_runs` answers when asked for none in particular, and at most.
const RUNS_PAGE: u64 = 50;
const MAX_RUNS_PAGE: u64 = 200;

/// The tasks a command changed, for the `crons_updated` that follows its answer: the agent's,
/// or one conversation's of it.
pub(super) struct Changed {
    agent_id: String,
    conversation_id: Option<String>,
}

/// Sends a changing command's answer, then `crons_updated` for what it changed.
pub(super) fn reply(
    caller: &dyn super::Caller,
    (answer, changed): (impl Into<letta_app_server_protocol::ServerFrame>, Option<Changed>),
) {
    caller.send_frame(answer.into());
    if let Some(changed) = changed {
        changed.announce(caller.engine());
    }
}

impl Changed {
    fn task(task: &CronTask) -> Option<Self> {
        Some(Self {
            agent_id: task.agent_id.clone(),
            conversation_id: Some(task.conversation_id.clone()),
        })
    }

    /// Sends every client `crons_updated` for it.
    fn announce(&self, engine: &Engine) {
        announce(engine, Some(&self.agent_id), self.conversation_id.as_deref());
    }
}

/// `cron_list`: every task, or an agent's or a conversation's, in the order they were added.
pub(super) async fn list(engine: &Engine, list: CronList) -> CronListResponse {
    let listed = engine
        .store
        .cron_tasks(list.agent_id.clone().filter(|id| !id.is_empty()))
        .await;
    let (tasks, error) = match listed {
        Ok(tasks) => {
            let conversation = list.conversation_id.as_deref().filter(|id| !id.is_empty());
            let tasks = tasks
                .into_iter()
                .filter(|task| conversation.is_none_or(|id| task.conversation_id == id))
                .collect();
            (tasks, None)
        }
        Err(error) => (Vec::new(), Some(error.to_string())),
    };
    CronListResponse {
        request_id: list.request_id,
        success: error.is_none(),
        tasks,
        error,
    }
}

/// `cron_add`: a new active task of a stored agent (the conversation `"new"` unless given, the
/// server's time zone unless given).
pub(super) async fn add(engine: &Engine, add: CronAdd) -> (CronAddResponse, Option<Changed>) {
    let request_id = add.request_id.clone();
    let added = async {
        let scheduled_for = match add.scheduled_for.flatten().filter(|at| !at.is_empty()) {
            Some(at) => Some(timestamp(&at)?),
            None => None,
        };
        stored_agent(engine, &add.agent_id).await?;
        let _changing = engine.crons.changing().await;
        let tasks = engine.store.cron_tasks(Some(add.agent_id.clone())).await.map_err(|e| e.to_string())?;
        let live = tasks
            .iter()
            .filter(|task| matches!(task.status, CronTaskStatus::Active | CronTaskStatus::Paused))
            .count();
        if live >= MAX_TASKS_PER_AGENT {
            return Err(format!(
                "Agent {} has {live} active or paused tasks (max {MAX_TASKS_PER_AGENT}). Delete some before adding more.",
                add.agent_id
            ));
        }
        check_cron(&add.cron)?;
        let now = engine.crons.clock.now();
        let mut task = CronTask {
            id: new_task_id(),
            agent_id: add.agent_id,
            conversation_id: add.conversation_id.unwrap_or_else(|| "new".into()),
            name: add.name,
            description: add.description,
            cron: add.cron,
            timezone: add.timezone.unwrap_or_else(local_zone_name),
            recurring: add.recurring,
            prompt: add.prompt,
            status: CronTaskStatus::Active,
            created_at: iso(now),
            expires_at: None,
            last_fired_at: None,
            fire_count: 0,
            cancel_reason: None,
            jitter_offset_ms: 0,
            last_run_at: None,
            last_run_outcome: None,
            last_run_reason: None,
            last_run_error: None,
            last_missed_at: None,
            missed_count: 0,
            failed_count: 0,
            scheduled_for: scheduled_for.map(iso),
            fired_at: None,
            missed_at: None,
        };
        // Ids are 32 random bits, as real Letta's: a taken one is drawn again.
        for _ in 0..8 {
            task.jitter_offset_ms = jitter_of(&task);
            if engine.store.insert_cron_task(task.clone()).await.map_err(|e| e.to_string())? {
                return Ok(task);
            }
            task.id = new_task_id();
        }
        Err("Could not find a free task id".to_owned())
    }
    .await;
    match added {
        Ok(task) => (
            CronAddResponse {
                request_id,
                success: true,
                warning: None,
                error: None,
                task: Some(task.clone()),
            },
            Changed::task(&task),
        ),
        Err(error) => (
            CronAddResponse {
                request_id,
                error: Some(error),
                ..Default::default()
            },
            None,
        ),
    }
}

/// `cron_get`: the task, or `found: false` with `task: null`.
pub(super) async fn get(engine: &Engine, get: CronGet) -> CronGetResponse {
    match engine.store.cron_task(get.task_id).await {
        Ok(task) => CronGetResponse {
            request_id: get.request_id,
            success: true,
            found: task.is_some(),
            task,
            error: None,
        },
        Err(error) => CronGetResponse {
            request_id: get.request_id,
            error: Some(error.to_string()),
            ..Default::default()
        },
    }
}

/// `cron_runs`: a page of the task's run log, newest first (`limit` 50 by default, at most
/// 200); an unknown task's log is empty.
pub(super) async fn runs(engine: &Engine, runs: CronRuns) -> CronRunsResponse {
    if runs.task_id.trim().is_empty() || runs.task_id.contains(['/', '\\', '\0']) {
        return CronRunsResponse {
            request_id: runs.request_id,
            error: Some("invalid cron run log job id".into()),
            ..Default::default()
        };
    }
    let entries = match engine.store.cron_runs(runs.task_id).await {
        Ok(entries) => entries,
        Err(error) => {
            return CronRunsResponse {
                request_id: runs.request_id,
                error: Some(error.to_string()),
                ..Default::default()
            };
        }
    };
    let entries: Vec<_> = entries
        .into_iter()
        .filter(|entry| runs.run_id.as_ref().is_none_or(|id| entry.run_id.as_ref() == Some(id)))
        .collect();
    let limit = runs.limit.unwrap_or(RUNS_PAGE).clamp(1, MAX_RUNS_PAGE);
    let offset = runs.offset.unwrap_or(0);
    let total = entries.len() as u64;
    let page: Vec<_> = entries
        .into_iter()
        .skip(usize::try_from(offset).unwrap_or(usize::MAX))
        .take(limit as usize)
        .collect();
    let next = offset.saturating_add(page.len() as u64);
    CronRunsResponse {
        request_id: runs.request_id,
        success: true,
        page: Some(CronRunLogPage {
            entries: page,
            total,
            offset,
            limit,
            has_more: next < total,
            next_offset: (next < total).then_some(next),
        }),
        error: None,
    }
}

/// `cron_trigger`: runs an active or paused task now (a one-off task stays active).
pub(super) async fn trigger(engine: &std::sync::Arc<Engine>, trigger: CronTrigger) -> CronTriggerResponse {
    let response = |found, task, error: Option<String>| CronTriggerResponse {
        request_id: trigger.request_id.clone(),
        success: error.is_none(),
        found,
        task,
        error,
    };
    let task = match engine.store.cron_task(trigger.task_id.clone()).await {
        Ok(Some(task)) => task,
        Ok(None) => return response(false, None, Some("Schedule not found".into())),
        Err(error) => return response(false, None, Some(error.to_string())),
    };
    if !matches!(task.status, CronTaskStatus::Active | CronTaskStatus::Paused) {
        return response(true, Some(task), Some("Completed schedules cannot run again".into()));
    }
    let now = engine.crons.clock.now();
    match engine.fire(&task.id, Trigger::Manual, now).await {
        Ok(fired) => response(true, Some(fired), None),
        Err(error) => {
            let current = engine.store.cron_task(task.id.clone()).await.ok().flatten();
            response(true, current.or(Some(task)), Some(error))
        }
    }
}

/// `cron_pause`: an active task stops firing (a paused one stays so).
pub(super) async fn pause(engine: &Engine, pause: CronPause) -> (CronPauseResponse, Option<Changed>) {
    let (found, task, error) = change_status(engine, &pause.task_id, CronTaskStatus::Paused, None).await;
    let changed = task.as_ref().filter(|_| error.is_none()).and_then(Changed::task);
    let response = CronPauseResponse {
        request_id: pause.request_id,
        success: error.is_none(),
        found,
        task,
        error,
    };
    (response, changed)
}

/// `cron_resume`: a paused task fires again; an overdue one-off task needs a new future
/// `scheduled_for`.
pub(super) async fn resume(engine: &Engine, resume: CronResume) -> (CronResumeResponse, Option<Changed>) {
    let (found, task, error) = change_status(
        engine,
        &resume.task_id,
        CronTaskStatus::Active,
        resume.scheduled_for.as_deref(),
    )
    .await;
    let changed = task.as_ref().filter(|_| error.is_none()).and_then(Changed::task);
    let response = CronResumeResponse {
        request_id: resume.request_id,
        success: error.is_none(),
        found,
        task,
        error,
    };
    (response, changed)
}

/// Pauses or resumes task `id`: whether it exists, the task as it is now, or why not.
async fn change_status(
    engine: &Engine,
    id: &str,
    to: CronTaskStatus,
    resume_at: Option<&str>,
) -> (bool, Option<CronTask>, Option<String>) {
    let resume_at = match resume_at.map(timestamp).transpose() {
        Ok(at) => at,
        Err(error) => return (false, None, Some(error)),
    };
    let _changing = engine.crons.changing().await;
    let mut task = match engine.store.cron_task(id.to_owned()).await {
        Ok(Some(task)) => task,
        Ok(None) => return (false, None, Some("Schedule not found".into())),
        Err(error) => return (false, None, Some(error.to_string())),
    };
    let (from, verb) = match to {
        CronTaskStatus::Paused => (CronTaskStatus::Active, "paused"),
        _ => (CronTaskStatus::Paused, "resumed"),
    };
    if task.status == to {
        return (true, Some(task), None);
    }
    if task.status != from {
        return (true, Some(task), Some(format!("Completed schedules cannot be {verb}")));
    }
    if to == CronTaskStatus::Active && !task.recurring {
        let at = resume_at.or_else(|| task.scheduled_for.as_deref().and_then(|at| at.parse().ok()));
        let Some(at) = at else {
            return (
                true,
                Some(task),
                Some("A one-off schedule requires a valid scheduled_for timestamp".into()),
            );
        };
        if at <= engine.crons.clock.now() {
            return (
                true,
                Some(task),
                Some("An overdue one-off schedule requires a new future scheduled_for timestamp".into()),
            );
        }
        if resume_at.is_some() {
            task.scheduled_for = Some(iso(at));
            task.jitter_offset_ms = jitter_of(&task);
        }
    }
    task.status = to;
    if let Err(error) = engine.store.save_cron_task(task.clone()).await {
        return (true, Some(task), Some(error.to_string()));
    }
    (true, Some(task), None)
}

/// `cron_update`: changes the fields given (`scheduled_for: null` clears it); a new cron
/// expression is checked, and a new time or schedule recomputes the jitter.
pub(super) async fn update(engine: &Engine, update: CronUpdate) -> (CronUpdateResponse, Option<Changed>) {
    let request_id = update.request_id.clone();
    let updated = async {
        let scheduled_for = match &update.scheduled_for {
            Some(Some(at)) => Some(Some(iso(timestamp(at)?))),
            Some(None) => Some(None),
            None => None,
        };
        let _changing = engine.crons.changing().await;
        let mut task = engine
            .store
            .cron_task(update.task_id.clone())
            .await
            .map_err(|e| e.to_string())?
            .ok_or("Cron task not found")?;
        if let Some(cron) = update.cron {
            check_cron(&cron)?;
            if cron != task.cron && task.last_run_reason == Some(letta_app_server_protocol::CronRunReason::InvalidCron)
            {
                task.last_run_at = None;
                task.last_run_outcome = None;
                task.last_run_reason = None;
                task.last_run_error = None;
            }
            task.cron = cron;
        }
        let fields = [
            (update.name, &mut task.name),
            (update.description, &mut task.description),
            (update.conversation_id, &mut task.conversation_id),
            (update.timezone, &mut task.timezone),
            (update.prompt, &mut task.prompt),
        ];
        for (given, field) in fields {
            if let Some(given) = given {
                *field = given;
            }
        }
        if let Some(recurring) = update.recurring {
            task.recurring = recurring;
        }
        if let Some(scheduled_for) = scheduled_for {
            task.scheduled_for = scheduled_for;
        }
        task.jitter_offset_ms = jitter_of(&task);
        engine
            .store
            .save_cron_task(task.clone())
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>(task)
    }
    .await;
    let (task, error) = match updated {
        Ok(task) => (Some(task), None),
        Err(error) => (None, Some(error)),
    };
    let changed = task.as_ref().and_then(Changed::task);
    let response = CronUpdateResponse {
        request_id,
        success: error.is_none(),
        task,
        error,
    };
    (response, changed)
}

/// `cron_delete`: deletes a task and its run log (`found: false` for an unknown one).
pub(super) async fn delete(engine: &Engine, delete: CronDelete) -> (CronDeleteResponse, Option<Changed>) {
    let _changing = engine.crons.changing().await;
    let task = engine.store.cron_task(delete.task_id.clone()).await;
    let deleted = match task {
        Ok(Some(task)) => engine
            .store
            .delete_cron_tasks(Some(task.id.clone()), None)
            .await
            .map(|_| Some(task)),
        Ok(None) => Ok(None),
        Err(error) => Err(error),
    };
    match deleted {
        Ok(task) => {
            let response = CronDeleteResponse {
                request_id: delete.request_id,
                success: true,
                found: task.is_some(),
                error: None,
            };
            (response, task.as_ref().and_then(Changed::task))
        }
        Err(error) => {
            let response = CronDeleteResponse {
                request_id: delete.request_id,
                error: Some(error.to_string()),
                ..Default::default()
            };
            (response, None)
        }
    }
}

/// `cron_delete_all`: deletes every task of an agent.
pub(super) async fn delete_all(engine: &Engine, delete: CronDeleteAll) -> (CronDeleteAllResponse, Option<Changed>) {
    let _changing = engine.crons.changing().await;
    let deleted = engine
        .store
        .delete_cron_tasks(None, Some(delete.agent_id.clone()))
        .await;
    let (deleted, error) = match deleted {
        Ok(deleted) => (deleted, None),
        Err(error) => (0, Some(error.to_string())),
    };
    let changed = (deleted > 0).then(|| Changed {
        agent_id: delete.agent_id.clone(),
        conversation_id: None,
    });
    let response = CronDeleteAllResponse {
        request_id: delete.request_id,
        success: error.is_none(),
        agent_id: delete.agent_id,
        deleted,
        error,
    };
    (response, changed)
}

/// A task id: 8 hex digits, as real Letta's.
fn new_task_id() -> String {
    format!("{:08x}", uuid::Uuid::new_v4().as_u128() as u32)
}

/// Real Letta's refusal of a cron expression it does not take.
fn check_cron(cron: &str) -> Result<(), String> {
    match Expression::parse(cron) {
        Some(_) => Ok(()),
        None => Err(format!("Invalid cron expression \"{cron}\". Schedule was not saved.")),
    }
}

/// An ISO-8601 time given for `scheduled_for`.
fn timestamp(text: &str) -> Result<jiff::Timestamp, String> {
    text.parse().map_err(|_| "Invalid scheduled_for timestamp".to_owned())
}
