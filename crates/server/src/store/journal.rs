//! The retained events of the resumable event stream (docs/protocol.md §2.2): per scope, its last
//! `conversation_seq` and the newest events, so that a client can resume after a restart too.

use letta_app_server_protocol::RuntimeScope;
use rusqlite::{OptionalExtension, params};

use super::{Reply, Store, key};

/// One retained event as stored: its number, `type`, whether it coalesces, and its JSON without
/// the per-connection envelope fields (the protocol crate's `SerializedEvent`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// Its `conversation_seq`.
    pub seq: u64,
    /// Its `type`.
    pub frame_type: String,
    /// Whether it is a snapshot a newer one replaces in a backed-up queue.
    pub coalesces: bool,
    /// Its JSON up to the envelope's per-connection fields.
    pub prefix: String,
}

/// A scope's stored journal: its last number, and its retained events, oldest first.
#[derive(Debug, Default)]
pub struct StoredJournal {
    /// The last `conversation_seq` given.
    pub last_seq: u64,
    /// The events retained.
    pub events: Vec<StoredEvent>,
}

impl Store {
    /// Appends `events` to the journal of `scope`, whose last number is now `last_seq`, and
    /// forgets its events numbered below `oldest`.
    pub fn write_journal(
        &self,
        scope: &RuntimeScope,
        events: Vec<StoredEvent>,
        last_seq: u64,
        oldest: u64,
    ) -> Reply<()> {
        let (agent, conversation) = key(scope);
        self.transaction(move |t| {
            let seq = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
            t.prepare_cached(
                "INSERT INTO journals (agent_id, conversation_id, last_seq) VALUES (?1, ?2, ?3)
                 ON CONFLICT (agent_id, conversation_id) DO UPDATE SET last_seq = excluded.last_seq",
            )?
            .execute(params![agent, conversation, seq(last_seq)])?;
            let mut insert = t.prepare_cached(
                "INSERT OR REPLACE INTO journal_events
                     (agent_id, conversation_id, seq, frame_type, coalesces, prefix)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for event in events {
                insert.execute(params![
                    agent,
                    conversation,
                    seq(event.seq),
                    event.frame_type,
                    event.coalesces,
                    event.prefix
                ])?;
            }
            t.prepare_cached("DELETE FROM journal_events WHERE agent_id = ?1 AND conversation_id = ?2 AND seq < ?3")?
                .execute(params![agent, conversation, seq(oldest)])?;
            Ok(())
        })
    }

    /// Deletes the stored journal of `scope`.
    pub fn delete_journal(&self, scope: &RuntimeScope) -> Reply<()> {
        let (agent, conversation) = key(scope);
        self.transaction(move |t| {
            for table in ["journals", "journal_events"] {
                t.prepare_cached(&format!(
                    "DELETE FROM {table} WHERE agent_id = ?1 AND conversation_id = ?2"
                ))?
                .execute(params![agent, conversation])?;
            }
            Ok(())
        })
    }

    /// The stored journal of `scope`, if it has one.
    pub fn journal(&self, scope: &RuntimeScope) -> Reply<Option<StoredJournal>> {
        let (agent, conversation) = key(scope);
        self.call(move |c| {
            let last_seq: Option<i64> = c
                .prepare_cached("SELECT last_seq FROM journals WHERE agent_id = ?1 AND conversation_id = ?2")?
                .query_row(params![agent, conversation], |row| row.get(0))
                .optional()?;
            let Some(last_seq) = last_seq else {
                return Ok(None);
            };
            let mut select = c.prepare_cached(
                "SELECT seq, frame_type, coalesces, prefix FROM journal_events
                 WHERE agent_id = ?1 AND conversation_id = ?2 ORDER BY seq",
            )?;
            let events = select
                .query_map(params![agent, conversation], |row| {
                    Ok(StoredEvent {
                        seq: u64::try_from(row.get::<_, i64>(0)?).unwrap_or_default(),
                        frame_type: row.get(1)?,
                        coalesces: row.get(2)?,
                        prefix: row.get(3)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Some(StoredJournal {
                last_seq: u64::try_from(last_seq).unwrap_or_default(),
                events,
            }))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(seq: u64) -> StoredEvent {
        StoredEvent {
            seq,
            frame_type: "update_queue".into(),
            coalesces: true,
            prefix: format!(r#"{{"type":"update_queue","queue":[],"removed":[],"n":{seq}"#),
        }
    }

    #[tokio::test]
    async fn a_journal_keeps_its_last_number_and_the_events_from_the_oldest_on() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(&dir.path().join("store.sqlite3"), Default::default()).expect("store");
        let scope = RuntimeScope::new("agent-1", "conv-1");
        assert!(store.journal(&scope).await.unwrap().is_none());
        store
            .write_journal(&scope, (10..15).map(event).collect(), 14, 10)
            .await
            .unwrap();
        store
            .write_journal(&scope, (15..17).map(event).collect(), 16, 13)
            .await
            .unwrap();
        let journal = store.journal(&scope).await.unwrap().unwrap();
        assert_eq!(journal.last_seq, 16);
        assert_eq!(journal.events, (13..17).map(event).collect::<Vec<_>>());
        let other = RuntimeScope::new("agent-1", "conv-2");
        assert!(store.journal(&other).await.unwrap().is_none());
        // Deleting the conversation, or the journal alone, deletes it.
        store.delete_journal(&scope).await.unwrap();
        assert!(store.journal(&scope).await.unwrap().is_none());
        store.write_journal(&scope, vec![event(20)], 20, 20).await.unwrap();
        store.delete_conversation(&scope).await.unwrap();
        assert!(store.journal(&scope).await.unwrap().is_none());
    }
}
