//! Loading a conversation runtime's durable state, ending first the turns a previous process
//! left running.

use letta_app_server_protocol::RuntimeScope;
use rusqlite::{OptionalExtension, Savepoint, params};

use super::catalog::ScopeSettings;
use super::context::context;
use super::inputs::QueueEntry;
use super::messages::{Encoded, append};
use super::{Reply, Store, StoreError, key};
use crate::history::HistoryMessage;

/// A turn a previous process left running, ended with an error by [`Store::restore`], that no
/// client has been told of yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterruptedTurn {
    /// Its `turn_id`.
    pub turn_id: String,
    /// The `client_message_id`s it had consumed.
    pub client_ids: Vec<String>,
}

/// Everything a conversation runtime is loaded with.
#[derive(Debug, Clone)]
pub struct Restored {
    /// Its settings.
    pub settings: ScopeSettings,
    /// Its context (what a model is sent of its history), oldest first.
    pub history: Vec<HistoryMessage>,
    /// Its waiting queue items, in order.
    pub queue: Vec<QueueEntry>,
    /// The number of its next queue item (`q-<n>`): item ids are never given twice.
    pub next_queue_item: i64,
    /// Turns that were cut short by the end of the previous process.
    pub interrupted: Vec<InterruptedTurn>,
}

/// The error every turn cut short by the end of the server process ends with.
pub const INTERRUPTED_TURN_ERROR: &str = "The server stopped while this turn was running; its output so far was kept";

impl Store {
    /// Loads a conversation runtime's durable state. Turns the previous process left running
    /// are ended first, in one transaction: their checkpointed partial replies join the history
    /// and they are recorded as failed with [`INTERRUPTED_TURN_ERROR`]; the ones no client was
    /// told of yet come back in [`Restored::interrupted`].
    pub fn restore(&self, scope: &RuntimeScope) -> Reply<Restored> {
        let (agent, conversation) = key(scope);
        self.transaction(move |t| {
            let interrupted = end_interrupted_turns(t, &agent, &conversation)?;
            let settings = t
                .query_row(
                    "SELECT mode, cwd, preferences FROM scope_settings WHERE agent_id = ?1 AND conversation_id = ?2",
                    [&agent, &conversation],
                    |row| {
                        Ok(ScopeSettings {
                            mode: row.get(0)?,
                            cwd: row.get(1)?,
                            preferences: row.get(2)?,
                        })
                    },
                )
                .optional()?
                .unwrap_or_default();
            let history = context(t, &agent, &conversation)?
                .into_iter()
                .map(|(_, message)| message)
                .collect();
            let mut queue = Vec::new();
            let mut query = t.prepare_cached(
                "SELECT item, options FROM queue
                 WHERE agent_id = ?1 AND conversation_id = ?2 AND state = 'queued' ORDER BY item_no",
            )?;
            let rows = query.query_map([&agent, &conversation], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
            })?;
            for row in rows {
                let (item, options) = row?;
                queue.push(QueueEntry {
                    item: serde_json::from_str(&item)?,
                    options,
                });
            }
            let next_queue_item = t.query_row(
                "SELECT COALESCE(MAX(item_no), 0) + 1 FROM queue WHERE agent_id = ?1 AND conversation_id = ?2",
                [&agent, &conversation],
                |row| row.get(0),
            )?;
            Ok(Restored {
                settings,
                history,
                queue,
                next_queue_item,
                interrupted,
            })
        })
    }
}

/// Ends the running turns of a scope: they were cut short. (Every load of a conversation runs
/// this and [`UNREPORTED`]: both are answered from partial indexes, `running_turns` and
/// `interrupted_turns`, not by reading every turn ever stored.)
const END_RUNNING: &str = "UPDATE turns SET state = 'interrupted', error = ?3, finished_at = ?4
     WHERE agent_id = ?1 AND conversation_id = ?2 AND state = 'running'";

/// The interrupted turns of a scope no client was told of yet, oldest first.
const UNREPORTED: &str = "SELECT turn_id, client_message_ids FROM turns
     WHERE agent_id = ?1 AND conversation_id = ?2 AND state = 'interrupted' ORDER BY seq";

/// Ends the turns a previous process left running (see [`Store::restore`]): their partial
/// replies join the history and they read as `interrupted` until [`Store::turns_reported`].
/// Returns every interrupted turn not reported yet, oldest first.
fn end_interrupted_turns(
    t: &Savepoint<'_>,
    agent: &str,
    conversation: &str,
) -> Result<Vec<InterruptedTurn>, StoreError> {
    let finished_at = crate::clock::now_iso();
    let ended =
        t.prepare_cached(END_RUNNING)?
            .execute(params![agent, conversation, INTERRUPTED_TURN_ERROR, finished_at])?;
    if ended > 0 {
        let mut partial = t.prepare_cached(
            "DELETE FROM partial_replies WHERE agent_id = ?1 AND conversation_id = ?2 RETURNING run_id, body",
        )?;
        let replies = partial
            .query_map([agent, conversation], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        for (run_id, body) in replies {
            append(t, agent, conversation, Some(&run_id), &[Encoded::decode(body)?])?;
        }
    }
    let mut unreported = t.prepare_cached(UNREPORTED)?;
    let rows = unreported.query_map([agent, conversation], |row| {
        Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
    })?;
    let mut interrupted = Vec::new();
    for row in rows {
        let (turn_id, client_ids) = row?;
        interrupted.push(InterruptedTurn {
            turn_id,
            client_ids: serde_json::from_str(&client_ids)?,
        });
    }
    Ok(interrupted)
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::{END_RUNNING, UNREPORTED};
    use crate::store::Store;

    /// Loading a conversation reads its turns through an index, whatever else is stored: a scan
    /// made `runtime_start` on a cold conversation take half a second with five million turns
    /// stored.
    #[test]
    fn loading_a_conversation_reads_no_other_turns() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("store.sqlite3");
        drop(Store::open(&path, Default::default()).expect("store"));
        let connection = Connection::open(&path).expect("open");
        for (statement, index) in [(END_RUNNING, "running_turns"), (UNREPORTED, "interrupted_turns")] {
            let mut explain = connection
                .prepare(&format!("EXPLAIN QUERY PLAN {statement}"))
                .expect("plan");
            // Unbound parameters are NULL: the plan does not depend on them.
            let mut rows = explain.raw_query();
            let mut plan = Vec::new();
            while let Some(row) = rows.next().expect("plan row") {
                plan.push(row.get::<_, String>(3).expect("plan detail"));
            }
            let plan = plan.join("; ");
            assert!(plan.contains(&format!("USING INDEX {index}")), "{statement}: {plan}");
            assert!(!plan.contains("SCAN"), "{statement}: {plan}");
        }
    }
}
