//! The ledger of accepted inputs and the queue of inputs waiting to run: accepting an input
//! (de-duplicated by `client_message_id`), starting a turn on a dequeued batch, cancelling
//! queue items.

use letta_app_server_protocol::{QueueMessage, RuntimeScope};
use rusqlite::{OptionalExtension, Savepoint, params};

use super::turns::{EncodedTurn, TurnStart, insert_turn};
use super::{Reply, Store, StoreError, key};

/// What became of an accepted input (its ledger entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputState {
    /// Waiting in the queue.
    Queued,
    /// Its turn started (and may have ended).
    Started,
    /// Removed from the queue before it ran.
    Cancelled,
}

impl InputState {
    fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Started => "started",
            Self::Cancelled => "cancelled",
        }
    }

    fn from_column(text: &str) -> Self {
        match text {
            "queued" => Self::Queued,
            "cancelled" => Self::Cancelled,
            _ => Self::Started,
        }
    }
}

/// One waiting queue item: what it shows in `update_queue`, and how its turn runs.
#[derive(Debug, Clone)]
pub struct QueueEntry {
    /// The item as `update_queue` shows it (`id` is `q-<n>`).
    pub item: QueueMessage,
    /// Its turn options, as JSON.
    pub options: String,
}

/// How an accepted input is admitted.
#[derive(Debug, Clone)]
pub enum Admission {
    /// The conversation was idle: this turn starts.
    Started(TurnStart),
    /// These items join the queue, and these older ones (by item number) leave it unrun to make
    /// room.
    Queued {
        /// The new items.
        entries: Vec<QueueEntry>,
        /// Items removed to make room.
        evicted: Vec<i64>,
    },
}

impl Store {
    /// Records an accepted input and admits it, in one transaction: a ledger entry for each of
    /// its `client_message_id`s (the turn's, or the queue items'; the payload is kept with the
    /// first), and the turn it starts or the items it queues. When one of its ids is already in
    /// the ledger (a retry), nothing is written and that input's current state is returned.
    pub fn accept_input(
        &self,
        scope: &RuntimeScope,
        request_id: Option<String>,
        payload: String,
        admission: Admission,
    ) -> Reply<Option<InputState>> {
        let (agent, conversation) = key(scope);
        let accepted_at = crate::clock::now_iso();
        let admission = encode_admission(admission);
        self.transaction(move |t| {
            let admission = admission?;
            let (ids, disposition) = match &admission {
                EncodedAdmission::Started(turn) => (turn.ids.clone(), InputState::Started),
                EncodedAdmission::Queued(entries, _) => (
                    entries.iter().map(|e| e.client_id.clone()).collect(),
                    InputState::Queued,
                ),
            };
            let mut known = t.prepare_cached(
                "SELECT state FROM inputs WHERE agent_id = ?1 AND conversation_id = ?2 AND client_message_id = ?3",
            )?;
            for id in &ids {
                let state: Option<String> = known
                    .query_row(params![agent, conversation, id], |row| row.get(0))
                    .optional()?;
                if let Some(state) = state {
                    return Ok(Some(InputState::from_column(&state)));
                }
            }
            let mut ledger = t.prepare_cached(
                "INSERT OR IGNORE INTO inputs
                 (agent_id, conversation_id, client_message_id, disposition, request_id, payload, accepted_at, state)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?4)",
            )?;
            for (index, id) in ids.iter().enumerate() {
                let payload = if index == 0 { payload.as_str() } else { "" };
                let disposition = disposition.as_str();
                ledger.execute(params![
                    agent,
                    conversation,
                    id,
                    disposition,
                    request_id,
                    payload,
                    accepted_at
                ])?;
            }
            match admission {
                EncodedAdmission::Started(turn) => insert_turn(t, &agent, &conversation, &turn)?,
                EncodedAdmission::Queued(entries, evicted) => {
                    remove_queued(t, &agent, &conversation, &evicted, InputState::Cancelled)?;
                    let mut queue = t.prepare_cached(
                        "INSERT INTO queue (agent_id, conversation_id, item_no, client_message_id, item, options)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    )?;
                    for entry in entries {
                        queue.execute(params![
                            agent,
                            conversation,
                            entry.item_no,
                            entry.client_id,
                            entry.item,
                            entry.options
                        ])?;
                    }
                }
            }
            Ok(None)
        })
    }

    /// Starts a turn on dequeued items: they leave the queue, their inputs read as started, and
    /// the turn and its user message are written, in one transaction.
    pub fn start_batch(&self, scope: &RuntimeScope, item_nos: Vec<i64>, turn: TurnStart) -> Reply<()> {
        let (agent, conversation) = key(scope);
        let turn = EncodedTurn::new(turn);
        self.transaction(move |t| {
            let turn = turn?;
            remove_queued(t, &agent, &conversation, &item_nos, InputState::Started)?;
            insert_turn(t, &agent, &conversation, &turn)
        })
    }

    /// Removes queue items before they ran: their inputs read as cancelled.
    pub fn cancel_queued(&self, scope: &RuntimeScope, item_nos: Vec<i64>) -> Reply<()> {
        let (agent, conversation) = key(scope);
        self.transaction(move |t| remove_queued(t, &agent, &conversation, &item_nos, InputState::Cancelled))
    }
}

/// A queue item ready for its rows.
struct EncodedEntry {
    item_no: i64,
    client_id: String,
    item: String,
    options: String,
}

enum EncodedAdmission {
    Started(EncodedTurn),
    Queued(Vec<EncodedEntry>, Vec<i64>),
}

/// Serialises an admission on the caller's thread (the store thread only writes).
fn encode_admission(admission: Admission) -> Result<EncodedAdmission, StoreError> {
    Ok(match admission {
        Admission::Started(turn) => EncodedAdmission::Started(EncodedTurn::new(turn)?),
        Admission::Queued { entries, evicted } => EncodedAdmission::Queued(
            entries
                .into_iter()
                .map(|entry| {
                    Ok(EncodedEntry {
                        item_no: item_no(&entry.item.id),
                        client_id: entry.item.client_message_id.clone(),
                        item: serde_json::to_string(&entry.item)?,
                        options: entry.options,
                    })
                })
                .collect::<Result<_, StoreError>>()?,
            evicted,
        ),
    })
}

/// The number of a queue item id `q-<n>` (0 for any other form).
pub fn item_no(id: &str) -> i64 {
    id.strip_prefix("q-").and_then(|n| n.parse().ok()).unwrap_or(0)
}

/// Takes queue items out of the queue and moves their inputs to `state`. Their rows stay, without
/// content, so that item numbers are never given twice in a conversation.
fn remove_queued(
    t: &Savepoint<'_>,
    agent: &str,
    conversation: &str,
    item_nos: &[i64],
    state: InputState,
) -> Result<(), StoreError> {
    let mut client_id = t.prepare_cached(
        "UPDATE queue SET state = ?4, item = '', options = ''
         WHERE agent_id = ?1 AND conversation_id = ?2 AND item_no = ?3 AND state = 'queued'
         RETURNING client_message_id",
    )?;
    let mut ledger = t.prepare_cached(
        "UPDATE inputs SET state = ?4 WHERE agent_id = ?1 AND conversation_id = ?2 AND client_message_id = ?3",
    )?;
    for item_no in item_nos {
        let removed: Option<String> = client_id
            .query_row(params![agent, conversation, item_no, state.as_str()], |row| row.get(0))
            .optional()?;
        if let Some(removed) = removed {
            ledger.execute(params![agent, conversation, removed, state.as_str()])?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    /// Queue item numbers are never given twice in a conversation, even once its queue is empty.
    #[tokio::test]
    async fn queue_item_numbers_are_not_reused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(&dir.path().join("store.sqlite3"), Default::default()).expect("opened");
        let scope = RuntimeScope::new("agent-1", "default");
        let item = |id: &str| QueueEntry {
            item: serde_json::from_value(serde_json::json!({"id": id, "client_message_id": format!("cm-{id}"),
                "kind": "message", "source": "user", "content": "hi", "enqueued_at": "now"}))
            .expect("an item"),
            options: "{}".into(),
        };
        let queued = Admission::Queued {
            entries: vec![item("q-1"), item("q-2")],
            evicted: Vec::new(),
        };
        assert_eq!(
            store
                .accept_input(&scope, None, "{}".into(), queued)
                .await
                .expect("stored"),
            None
        );
        let turn = TurnStart {
            turn_id: "turn-1".into(),
            client_ids: vec!["cm-q-1".into(), "cm-q-2".into()],
            user: None,
        };
        store.start_batch(&scope, vec![1, 2], turn).await.expect("started");
        let restored = store.restore(&scope).await.expect("restored");
        assert!(restored.queue.is_empty());
        assert_eq!(restored.next_queue_item, 3);
    }
}
