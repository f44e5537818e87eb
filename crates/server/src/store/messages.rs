//! A conversation's history: appending messages in order, and checkpointing the reply a run has
//! streamed so far.

use letta_app_server_protocol::RuntimeScope;
use rusqlite::{Transaction, params};

use super::{Reply, Store, StoreError, key};
use crate::history::HistoryMessage;

impl Store {
    /// Checkpoints the reply a run has streamed so far; replaced when the run's messages are
    /// appended, kept as the run's message if the process dies first.
    pub fn save_partial(&self, scope: &RuntimeScope, run_id: String, message: &HistoryMessage) -> Reply<()> {
        let (agent, conversation) = key(scope);
        let body = serde_json::to_string(message);
        self.call(move |c| {
            c.execute(
                "INSERT INTO partial_replies (run_id, agent_id, conversation_id, body) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (run_id) DO UPDATE SET body = excluded.body",
                params![run_id, agent, conversation, body?],
            )?;
            Ok(())
        })
    }

    /// Appends messages to a conversation's history; with a `run_id`, they replace that run's
    /// checkpointed partial reply.
    pub fn append_messages(
        &self,
        scope: &RuntimeScope,
        run_id: Option<String>,
        messages: Vec<HistoryMessage>,
    ) -> Reply<()> {
        let (agent, conversation) = key(scope);
        let bodies = messages
            .iter()
            .map(serde_json::to_string)
            .collect::<Result<Vec<_>, _>>();
        self.transaction(move |t| {
            if let Some(run_id) = &run_id {
                t.execute("DELETE FROM partial_replies WHERE run_id = ?1", [run_id])?;
            }
            append(t, &agent, &conversation, run_id.as_deref(), &bodies?)
        })
    }
}

pub(super) fn append(
    t: &Transaction<'_>,
    agent: &str,
    conversation: &str,
    run_id: Option<&str>,
    bodies: &[String],
) -> Result<(), StoreError> {
    let created_at = crate::clock::now_iso();
    let mut insert = t.prepare_cached(
        "INSERT INTO messages (agent_id, conversation_id, run_id, body, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for body in bodies {
        insert.execute(params![agent, conversation, run_id, body, created_at])?;
    }
    Ok(())
}
