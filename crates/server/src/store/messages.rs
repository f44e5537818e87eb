//! A conversation's history: appending messages in order, and checkpointing the reply a run has
//! streamed so far.

use letta_app_server_protocol::RuntimeScope;
use rusqlite::{Savepoint, params};

use super::{Reply, Store, StoreError, key};
use crate::history::HistoryMessage;

impl Store {
    /// Checkpoints the reply a run has streamed so far; replaced when the run's messages are
    /// appended, kept as the run's message if the process dies first.
    pub fn save_partial(&self, scope: &RuntimeScope, run_id: String, message: &HistoryMessage) -> Reply<()> {
        let (agent, conversation) = key(scope);
        let body = serde_json::to_string(message);
        self.call(move |c| {
            c.prepare_cached(
                "INSERT INTO partial_replies (run_id, agent_id, conversation_id, body) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (run_id) DO UPDATE SET body = excluded.body",
            )?
            .execute(params![run_id, agent, conversation, body?])?;
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
        let encoded = messages.iter().map(Encoded::new).collect::<Result<Vec<_>, _>>();
        self.transaction(move |t| {
            if let Some(run_id) = &run_id {
                t.prepare_cached("DELETE FROM partial_replies WHERE run_id = ?1")?
                    .execute([run_id])?;
            }
            append(t, &agent, &conversation, run_id.as_deref(), &encoded?)
        })
    }
}

/// A history message ready to be stored: its id and its JSON body.
pub(super) struct Encoded {
    id: String,
    body: String,
}

impl Encoded {
    /// Encodes a message.
    pub(super) fn new(message: &HistoryMessage) -> Result<Self, serde_json::Error> {
        Ok(Self {
            id: id_of(message),
            body: serde_json::to_string(message)?,
        })
    }

    /// A message stored as JSON (a checkpointed partial reply).
    pub(super) fn decode(body: String) -> Result<Self, serde_json::Error> {
        Ok(Self {
            id: id_of(&serde_json::from_str(&body)?),
            body,
        })
    }
}

/// The id a message is listed under: a reply keeps the id its deltas carried, any other message
/// gets a new one.
fn id_of(message: &HistoryMessage) -> String {
    match message {
        HistoryMessage::Assistant { id: Some(id), .. } => id.clone(),
        _ => crate::clock::new_id("message"),
    }
}

/// Appends messages to a conversation's history, and marks the conversation as active now (its
/// `last_message_at`, which `conversation_list` sorts by).
pub(super) fn append(
    t: &Savepoint<'_>,
    agent: &str,
    conversation: &str,
    run_id: Option<&str>,
    messages: &[Encoded],
) -> Result<(), StoreError> {
    if messages.is_empty() {
        return Ok(());
    }
    let created_at = crate::clock::now_iso();
    let mut insert = t.prepare_cached(
        "INSERT INTO messages (agent_id, conversation_id, run_id, body, created_at, message_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for message in messages {
        insert.execute(params![
            agent,
            conversation,
            run_id,
            message.body,
            created_at,
            message.id
        ])?;
    }
    t.prepare_cached(
        "UPDATE conversations SET listed_at = ?2,
             state = json_set(state, '$.last_message_at', ?2, '$.updated_at', ?2)
         WHERE id = ?1",
    )?
    .execute(params![conversation, created_at])?;
    Ok(())
}
