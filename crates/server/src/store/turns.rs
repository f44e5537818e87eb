//! Turns: written as they start (with their user message), ended with their stop reason, and
//! the interrupted ones marked once a client was told.

use letta_app_server_protocol::RuntimeScope;
use rusqlite::{Savepoint, params};

use super::messages::{Encoded, append};
use super::{Reply, Store, StoreError, key};
use crate::history::HistoryMessage;

/// A turn as it starts.
#[derive(Debug, Clone)]
pub struct TurnStart {
    /// Its `turn_id`.
    pub turn_id: String,
    /// The `client_message_id`s it consumes.
    pub client_ids: Vec<String>,
    /// Its user message, appended to the history (none for a recovery turn).
    pub user: Option<HistoryMessage>,
}

impl Store {
    /// Starts a turn that consumes no input (a recovery turn).
    pub fn start_turn(&self, scope: &RuntimeScope, turn: TurnStart) -> Reply<()> {
        let (agent, conversation) = key(scope);
        let turn = EncodedTurn::new(turn);
        self.transaction(move |t| insert_turn(t, &agent, &conversation, &turn?))
    }

    /// Records how the running turn of a scope ended (`stop_reason` in its wire spelling); a
    /// conversation runs one turn at a time.
    pub fn finish_turn(&self, scope: &RuntimeScope, stop_reason: String, error: Option<String>) -> Reply<()> {
        let (agent, conversation) = key(scope);
        let finished_at = crate::clock::now_iso();
        self.call(move |c| {
            c.prepare_cached(
                "UPDATE turns SET state = ?3, error = ?4, finished_at = ?5
                 WHERE agent_id = ?1 AND conversation_id = ?2 AND state = 'running'",
            )?
            .execute(params![agent, conversation, stop_reason, error, finished_at])?;
            Ok(())
        })
    }

    /// Records that the end of these interrupted turns was sent to a client: they read as
    /// failed (`error`) from now on, and are not reported again.
    pub fn turns_reported(&self, scope: &RuntimeScope, turn_ids: Vec<String>) -> Reply<()> {
        let (agent, conversation) = key(scope);
        self.transaction(move |t| {
            let mut reported = t.prepare_cached(
                "UPDATE turns SET state = 'error'
                 WHERE agent_id = ?1 AND conversation_id = ?2 AND turn_id = ?3 AND state = 'interrupted'",
            )?;
            for turn_id in turn_ids {
                reported.execute(params![agent, conversation, turn_id])?;
            }
            Ok(())
        })
    }
}

/// A turn ready for its rows.
pub(super) struct EncodedTurn {
    turn_id: String,
    pub(super) ids: Vec<String>,
    client_ids: String,
    user: Option<Encoded>,
}

impl EncodedTurn {
    pub(super) fn new(turn: TurnStart) -> Result<Self, StoreError> {
        Ok(Self {
            turn_id: turn.turn_id,
            client_ids: serde_json::to_string(&turn.client_ids)?,
            ids: turn.client_ids,
            user: turn.user.as_ref().map(Encoded::new).transpose()?,
        })
    }
}

pub(super) fn insert_turn(
    t: &Savepoint<'_>,
    agent: &str,
    conversation: &str,
    turn: &EncodedTurn,
) -> Result<(), StoreError> {
    t.prepare_cached(
        "INSERT INTO turns (turn_id, agent_id, conversation_id, client_message_ids, state, started_at)
         VALUES (?1, ?2, ?3, ?4, 'running', ?5)",
    )?
    .execute(params![
        turn.turn_id,
        agent,
        conversation,
        turn.client_ids,
        crate::clock::now_iso()
    ])?;
    append(t, agent, conversation, None, turn.user.as_slice())
}
