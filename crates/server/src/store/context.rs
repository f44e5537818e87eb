//! What of a conversation's history a model is sent (its context), compactions that shorten it,
//! and forks that copy it.
//!
//! A compaction appends its summary as a message and records which stored messages it kept
//! (`compactions`: the summary's `seq` and the first kept message's). The context is then the
//! summary followed by every message from the first kept one on, in order; the messages before
//! it stay stored and listed. Clearing (`/clear`) is a compaction without a summary that keeps
//! nothing.

use letta_app_server_protocol::{JsonObject, RuntimeScope};
use rusqlite::{OptionalExtension, Savepoint, params};
use serde_json::Value;

use super::catalog::insert_conversation;
use super::messages::{Encoded, append};
use super::{Reply, Store, StoreError, key};
use crate::history::HistoryMessage;

/// A compaction to record.
#[derive(Debug, Clone)]
pub struct CompactionRecord {
    /// The summary the model wrote.
    pub summary: String,
    /// The message a model is sent in place of what was compacted.
    pub message: HistoryMessage,
    /// The first message kept after the summary (`None`: nothing kept).
    pub first_kept_seq: Option<i64>,
    /// Letta's `compaction_stats`.
    pub stats: Value,
}

impl Store {
    /// A conversation's context, with the `seq` of each stored message.
    pub fn context(&self, scope: &RuntimeScope) -> Reply<Vec<(i64, HistoryMessage)>> {
        let (agent, conversation) = key(scope);
        self.call(move |c| context(&c.savepoint()?, &agent, &conversation))
    }

    /// Appends a compaction's summary and records it; the context now starts with it.
    pub fn compact(&self, scope: &RuntimeScope, record: CompactionRecord) -> Reply<()> {
        let (agent, conversation) = key(scope);
        let encoded = Encoded::new(&record.message);
        self.transaction(move |t| {
            append(t, &agent, &conversation, None, &[encoded?])?;
            let summary_seq = t.last_insert_rowid();
            let first_kept = record.first_kept_seq.unwrap_or(summary_seq + 1);
            let summary = (record.summary, record.stats.to_string());
            insert_compaction(t, (&agent, &conversation), Some(summary_seq), first_kept, Some(summary))
        })
    }

    /// Clears a conversation's context: later turns are sent none of its messages so far, which
    /// stay stored and listed.
    pub fn clear_context(&self, scope: &RuntimeScope) -> Reply<()> {
        let (agent, conversation) = key(scope);
        self.transaction(move |t| {
            let next: i64 = t.query_row("SELECT coalesce(max(seq), 0) + 1 FROM messages", [], |row| row.get(0))?;
            insert_compaction(t, (&agent, &conversation), None, next, None)
        })
    }

    /// Creates the conversation `state` (of `target`) holding the messages of `source` up to and
    /// including the stored message `through` (all of them when `None`), with new ids, and its
    /// compactions among them. `Ok(false)` when `through` is not a message of `source`.
    pub fn fork(
        &self,
        source: &RuntimeScope,
        through: Option<String>,
        target: &RuntimeScope,
        state: JsonObject,
        created_at: String,
    ) -> Reply<bool> {
        let (agent, conversation) = key(source);
        let (target_agent, target_id) = key(target);
        self.transaction(move |t| {
            let last = match through {
                Some(id) => match seq_of(t, &agent, &conversation, &id)? {
                    Some(seq) => seq,
                    None => return Ok(false),
                },
                None => i64::MAX,
            };
            insert_conversation(t, &target_id, &target_agent, &state, &created_at)?;
            let rows: Vec<(i64, Option<String>, String, String)> = t
                .prepare(
                    "SELECT seq, run_id, body, created_at FROM messages
                     WHERE agent_id = ?1 AND conversation_id = ?2 AND seq <= ?3 ORDER BY seq",
                )?
                .query_map(params![agent, conversation, last], |row| {
                    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
                })?
                .collect::<Result<_, _>>()?;
            let mut new_seq = std::collections::HashMap::new();
            let mut insert = t.prepare(
                "INSERT INTO messages (agent_id, conversation_id, run_id, body, created_at, message_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for (seq, run_id, body, date) in rows {
                // Replies keep no id of their own: the copy is listed under a new one.
                let message = match serde_json::from_str(&body)? {
                    HistoryMessage::Assistant {
                        reasoning,
                        text,
                        tool_calls,
                        ..
                    } => HistoryMessage::Assistant {
                        id: None,
                        reasoning,
                        text,
                        tool_calls,
                    },
                    other => other,
                };
                let body = serde_json::to_string(&message)?;
                let id = crate::clock::new_id("message");
                insert.execute(params![target_agent, target_id, run_id, body, date, id])?;
                new_seq.insert(seq, t.last_insert_rowid());
            }
            let compactions: Vec<CompactionRow> = t
                .prepare(
                    "SELECT summary_seq, first_kept_seq, summary, stats FROM compactions
                     WHERE agent_id = ?1 AND conversation_id = ?2 AND coalesce(summary_seq, first_kept_seq - 1) <= ?3
                     ORDER BY id",
                )?
                .query_map(params![agent, conversation, last], |row| {
                    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
                })?
                .collect::<Result<_, _>>()?;
            // Messages the fork stores from now on come after every copied one.
            let next: i64 = t.query_row("SELECT coalesce(max(seq), 0) + 1 FROM messages", [], |row| row.get(0))?;
            for (summary_seq, first_kept, summary, stats) in compactions {
                // The first kept message maps to the first copied message at or after it; with
                // none (a clear, or a compaction that kept nothing), to what comes next.
                let kept = new_seq
                    .iter()
                    .filter(|(old, _)| **old >= first_kept)
                    .map(|(_, new)| *new)
                    .min()
                    .unwrap_or(next);
                let summary_seq = summary_seq.and_then(|seq| new_seq.get(&seq).copied());
                let target = (target_agent.as_str(), target_id.as_str());
                insert_compaction(t, target, summary_seq, kept, summary.zip(stats))?;
            }
            Ok(true)
        })
    }
}

/// A stored compaction: its summary's `seq` (none for a clear), its first kept message's, its
/// summary and statistics.
type CompactionRow = (Option<i64>, i64, Option<String>, Option<String>);

/// Records a compaction (`summary`: its text and statistics; none for a clear).
fn insert_compaction(
    t: &Savepoint<'_>,
    (agent, conversation): (&str, &str),
    summary_seq: Option<i64>,
    first_kept_seq: i64,
    summary: Option<(String, String)>,
) -> Result<(), StoreError> {
    let (summary, stats) = summary.unzip();
    t.execute(
        "INSERT INTO compactions (agent_id, conversation_id, summary_seq, first_kept_seq, summary, stats)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![agent, conversation, summary_seq, first_kept_seq, summary, stats],
    )?;
    Ok(())
}

/// The `seq` of the stored message listed as `id` (or as one of its parts) in a conversation.
pub(super) fn seq_of(t: &Savepoint<'_>, agent: &str, conversation: &str, id: &str) -> Result<Option<i64>, StoreError> {
    Ok(
        t.prepare_cached("SELECT seq FROM messages WHERE message_id = ?1 AND agent_id = ?2 AND conversation_id = ?3")?
            .query_row(params![crate::transcript::stored_id(id), agent, conversation], |row| {
                row.get(0)
            })
            .optional()?,
    )
}

/// A conversation's context (see the module's documentation), with each message's `seq`.
pub(super) fn context(
    t: &Savepoint<'_>,
    agent: &str,
    conversation: &str,
) -> Result<Vec<(i64, HistoryMessage)>, StoreError> {
    let latest: Option<(Option<i64>, i64)> = t
        .prepare_cached(
            "SELECT summary_seq, first_kept_seq FROM compactions
             WHERE agent_id = ?1 AND conversation_id = ?2 ORDER BY id DESC LIMIT 1",
        )?
        .query_row([agent, conversation], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    let (summary_seq, first_kept) = latest.unwrap_or((None, 0));
    let mut messages = Vec::new();
    // Earlier compactions' summaries among the kept messages are not part of it.
    let mut query = t.prepare_cached(
        "SELECT seq, body FROM messages
         WHERE agent_id = ?1 AND conversation_id = ?2 AND (seq = ?4 OR (seq >= ?3 AND seq NOT IN (
             SELECT summary_seq FROM compactions
             WHERE agent_id = ?1 AND conversation_id = ?2 AND summary_seq IS NOT NULL)))
         ORDER BY seq",
    )?;
    let rows = query.query_map(params![agent, conversation, first_kept, summary_seq], |row| {
        Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?))
    })?;
    for row in rows {
        let (seq, body) = row?;
        messages.push((seq, serde_json::from_str(&body)?));
    }
    // The summary comes first, before the messages it kept.
    if let Some(at) = messages.iter().position(|(seq, _)| Some(*seq) == summary_seq) {
        let summary = messages.remove(at);
        messages.insert(0, summary);
    }
    Ok(messages)
}

#[cfg(test)]
mod tests {
    use letta_app_server_protocol::{JsonObject, MessageContent, RuntimeScope};
    use serde_json::json;

    use super::CompactionRecord;
    use crate::history::HistoryMessage;
    use crate::store::Store;

    fn user(text: &str) -> HistoryMessage {
        HistoryMessage::User {
            content: MessageContent::Text(text.into()),
        }
    }

    fn texts(context: &[(i64, HistoryMessage)]) -> Vec<String> {
        context
            .iter()
            .map(|(_, message)| match message {
                HistoryMessage::User {
                    content: MessageContent::Text(text),
                } => text.clone(),
                other => format!("{other:?}"),
            })
            .collect()
    }

    async fn compact(store: &Store, scope: &RuntimeScope, name: &str, first_kept_seq: Option<i64>) {
        let record = CompactionRecord {
            summary: name.into(),
            message: user(name),
            first_kept_seq,
            stats: json!({}),
        };
        store.compact(scope, record).await.expect("compacted");
    }

    /// A second compaction that keeps messages from before the first one's summary leaves that
    /// summary out: the context holds the latest summary only.
    #[tokio::test]
    async fn only_the_latest_summary_is_in_the_context() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(&dir.path().join("store.sqlite3"), Default::default()).expect("store");
        let scope = RuntimeScope::new("agent-1", "default");
        let messages = (1..=4).map(|n| user(&format!("m{n}"))).collect();
        store.append_messages(&scope, None, messages).await.expect("stored");
        let seqs: Vec<i64> = store
            .context(&scope)
            .await
            .expect("read")
            .iter()
            .map(|(s, _)| *s)
            .collect();
        compact(&store, &scope, "S1", Some(seqs[2])).await;
        assert_eq!(texts(&store.context(&scope).await.expect("read")), ["S1", "m3", "m4"]);
        compact(&store, &scope, "S2", Some(seqs[3])).await;
        assert_eq!(texts(&store.context(&scope).await.expect("read")), ["S2", "m4"]);
    }

    /// A fork of a cleared conversation sends the fork's own later messages to the model.
    #[tokio::test]
    async fn a_fork_of_a_cleared_conversation_keeps_its_own_messages() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(&dir.path().join("store.sqlite3"), Default::default()).expect("store");
        let source = RuntimeScope::new("agent-1", "default");
        store
            .append_messages(&source, None, vec![user("old")])
            .await
            .expect("stored");
        store.clear_context(&source).await.expect("cleared");
        let target = RuntimeScope::new("agent-1", "conv-fork");
        let state: JsonObject = json!({"id": "conv-fork", "agent_id": "agent-1"})
            .as_object()
            .cloned()
            .unwrap_or_default();
        let forked = store.fork(&source, None, &target, state, "t".into()).await;
        assert!(forked.expect("forked"));
        assert!(
            store.context(&target).await.expect("read").is_empty(),
            "cleared in the fork too"
        );
        store
            .append_messages(&target, None, vec![user("new")])
            .await
            .expect("stored");
        assert_eq!(texts(&store.context(&target).await.expect("read")), ["new"]);
    }
}
