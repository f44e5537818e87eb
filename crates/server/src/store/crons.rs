//! Scheduled prompts (docs/protocol.md §4.4): each task as its `CronTask` JSON (`cron_tasks`,
//! listed in the order they were added), each task's run log (`cron_runs`, the newest
//! [`MAX_RUNS`] entries of a task), and the minute up to which the scheduler has looked.

use letta_app_server_protocol::{CronRunLogEntry, CronTask};
use rusqlite::{Connection, OptionalExtension, params};

use super::{Reply, Store, StoreError};

/// Run log entries kept per task (real Letta keeps the last 2,000 lines of a task's log).
pub const MAX_RUNS: i64 = 2000;

/// The `server_settings` key of the scheduler's watermark.
const WATERMARK: &str = "cron_evaluated_until";

impl Store {
    /// The stored tasks, of one agent or of all, in the order they were added.
    pub fn cron_tasks(&self, agent_id: Option<String>) -> Reply<Vec<CronTask>> {
        self.call(move |c| tasks(c, "?1 IS NULL OR agent_id = ?1", [agent_id]))
    }

    /// The tasks that can fire (`status: "active"`), in the order they were added.
    pub fn active_cron_tasks(&self) -> Reply<Vec<CronTask>> {
        self.call(|c| tasks(c, "json_extract(task, '$.status') = 'active'", []))
    }

    /// Stores a new task; `false` (and nothing stored) when its id is taken.
    pub fn insert_cron_task(&self, task: CronTask) -> Reply<bool> {
        self.call(move |c| {
            let inserted = c.execute(
                "INSERT INTO cron_tasks (id, agent_id, task) VALUES (?1, ?2, ?3) ON CONFLICT (id) DO NOTHING",
                params![task.id, task.agent_id, serde_json::to_string(&task)?],
            )?;
            Ok(inserted == 1)
        })
    }

    /// The task `id`, if stored.
    pub fn cron_task(&self, id: String) -> Reply<Option<CronTask>> {
        self.call(move |c| {
            let task: Option<String> = c
                .query_row("SELECT task FROM cron_tasks WHERE id = ?1", [id], |row| row.get(0))
                .optional()?;
            Ok(task.map(|task| serde_json::from_str(&task)).transpose()?)
        })
    }

    /// Stores a changed task in its place (or a new one).
    pub fn save_cron_task(&self, task: CronTask) -> Reply<()> {
        self.call(move |c| {
            c.execute(
                "INSERT INTO cron_tasks (id, agent_id, task) VALUES (?1, ?2, ?3)
                 ON CONFLICT (id) DO UPDATE SET task = excluded.task",
                params![task.id, task.agent_id, serde_json::to_string(&task)?],
            )?;
            Ok(())
        })
    }

    /// The tasks that ended (`fired`, `missed` or `cancelled`), for the scheduler's clean-up.
    pub fn ended_cron_tasks(&self) -> Reply<Vec<CronTask>> {
        self.call(|c| {
            let ended = "json_extract(task, '$.status') IN ('fired', 'missed', 'cancelled')";
            tasks(c, ended, [])
        })
    }

    /// Deletes tasks and their run logs: the one `id`, or every task of `agent_id`; how many.
    pub fn delete_cron_tasks(&self, id: Option<String>, agent_id: Option<String>) -> Reply<u64> {
        self.transaction(move |t| {
            let filter = "(?1 IS NOT NULL AND id = ?1) OR (?2 IS NOT NULL AND agent_id = ?2)";
            t.execute(
                &format!("DELETE FROM cron_runs WHERE task_id IN (SELECT id FROM cron_tasks WHERE {filter})"),
                params![id, agent_id],
            )?;
            let deleted = t.execute(&format!("DELETE FROM cron_tasks WHERE {filter}"), params![id, agent_id])?;
            Ok(deleted as u64)
        })
    }

    /// Appends an entry to a task's run log, forgetting its oldest beyond [`MAX_RUNS`].
    pub fn append_cron_run(&self, entry: CronRunLogEntry) -> Reply<()> {
        self.call(move |c| {
            c.execute(
                "INSERT INTO cron_runs (task_id, ts, entry) VALUES (?1, ?2, ?3)",
                params![entry.job_id, entry.ts as i64, serde_json::to_string(&entry)?],
            )?;
            c.execute(
                "DELETE FROM cron_runs WHERE task_id = ?1 AND seq NOT IN
                 (SELECT seq FROM cron_runs WHERE task_id = ?1 ORDER BY seq DESC LIMIT ?2)",
                params![entry.job_id, MAX_RUNS],
            )?;
            Ok(())
        })
    }

    /// A task's run log, newest first.
    pub fn cron_runs(&self, task_id: String) -> Reply<Vec<CronRunLogEntry>> {
        self.call(move |c| {
            let mut query = c.prepare("SELECT entry FROM cron_runs WHERE task_id = ?1 ORDER BY ts DESC, seq DESC")?;
            let rows = query.query_map([task_id], |row| row.get::<_, String>(0))?;
            let mut entries = Vec::new();
            for row in rows {
                entries.push(serde_json::from_str(&row?)?);
            }
            Ok(entries)
        })
    }

    /// The minute (ms since the epoch) up to which the scheduler has looked, if it ever has.
    pub fn cron_watermark(&self) -> Reply<Option<i64>> {
        self.call(|c| {
            let value: Option<String> = c
                .query_row("SELECT value FROM server_settings WHERE key = ?1", [WATERMARK], |row| {
                    row.get(0)
                })
                .optional()?;
            Ok(value.and_then(|value| value.parse().ok()))
        })
    }

    /// Records the minute up to which the scheduler has looked.
    pub fn save_cron_watermark(&self, minute: i64) -> Reply<()> {
        self.save_setting(WATERMARK.to_owned(), minute.to_string())
    }
}

/// The stored tasks `condition` selects, in the order they were added.
fn tasks(c: &Connection, condition: &str, params: impl rusqlite::Params) -> Result<Vec<CronTask>, StoreError> {
    let mut query = c.prepare(&format!("SELECT task FROM cron_tasks WHERE {condition} ORDER BY rowid"))?;
    let rows = query.query_map(params, |row| row.get::<_, String>(0))?;
    let mut tasks = Vec::new();
    for row in rows {
        tasks.push(serde_json::from_str(&row?)?);
    }
    Ok(tasks)
}
