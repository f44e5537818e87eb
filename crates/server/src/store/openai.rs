//! What the OpenAI-compatible API remembers: which conversation each keyed chat of an agent
//! runs in (`openai_chats`), and the outcomes of requests sent with an idempotency key
//! (`openai_outcomes`, bounded).

use rusqlite::{OptionalExtension, params};

use super::{Reply, Store};

/// Outcomes of idempotent requests kept at most; storing one more forgets the oldest.
pub const MAX_OUTCOMES: i64 = 1024;

/// How long an idempotent request's outcome is kept, in seconds (24 hours).
pub const OUTCOME_SECONDS: i64 = 24 * 60 * 60;

impl Store {
    /// The conversation the chat `chat_key` of `agent_id` runs in, if it has one.
    pub fn chat_conversation(&self, agent_id: String, chat_key: String) -> Reply<Option<String>> {
        self.call(move |c| {
            Ok(c.query_row(
                "SELECT conversation_id FROM openai_chats WHERE agent_id = ?1 AND chat_key = ?2",
                [agent_id, chat_key],
                |row| row.get(0),
            )
            .optional()?)
        })
    }

    /// Pins the chat `chat_key` of `agent_id` to `conversation_id` (replacing an earlier pin).
    pub fn save_chat_conversation(
        &self,
        agent_id: String,
        chat_key: String,
        conversation_id: String,
        created_at: String,
    ) -> Reply<()> {
        self.call(move |c| {
            c.execute(
                "INSERT INTO openai_chats (agent_id, chat_key, conversation_id, created_at)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (agent_id, chat_key) DO UPDATE SET conversation_id = excluded.conversation_id",
                params![agent_id, chat_key, conversation_id, created_at],
            )?;
            Ok(())
        })
    }

    /// The outcome stored under an idempotency `key` less than [`OUTCOME_SECONDS`] before `now`
    /// (Unix seconds), if any.
    pub fn idempotent_outcome(&self, key: String, now: i64) -> Reply<Option<String>> {
        self.call(move |c| {
            Ok(c.query_row(
                "SELECT outcome FROM openai_outcomes WHERE key = ?1 AND stored_at > ?2",
                params![key, now - OUTCOME_SECONDS],
                |row| row.get(0),
            )
            .optional()?)
        })
    }

    /// Stores the outcome of an idempotent request of `agent_id` under `key` at `now` (Unix
    /// seconds), then forgets the outcomes past [`OUTCOME_SECONDS`] and all but the newest
    /// [`MAX_OUTCOMES`].
    pub fn save_idempotent_outcome(&self, key: String, agent_id: String, outcome: String, now: i64) -> Reply<()> {
        self.transaction(move |t| {
            t.execute(
                "INSERT INTO openai_outcomes (key, agent_id, outcome, stored_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (key) DO UPDATE SET outcome = excluded.outcome, stored_at = excluded.stored_at",
                params![key, agent_id, outcome, now],
            )?;
            t.execute(
                "DELETE FROM openai_outcomes WHERE stored_at <= ?1 OR key IN (
                     SELECT key FROM openai_outcomes ORDER BY stored_at DESC, rowid DESC LIMIT -1 OFFSET ?2)",
                params![now - OUTCOME_SECONDS, MAX_OUTCOMES],
            )?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{MAX_OUTCOMES, OUTCOME_SECONDS};
    use crate::store::Store;

    #[tokio::test]
    async fn chats_are_pinned_per_agent() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(&dir.path().join("store.sqlite3"), Default::default()).expect("store");
        let pinned = |agent: &str, key: &str| store.chat_conversation(agent.into(), key.into());
        assert_eq!(pinned("agent-a", "chat").await.expect("read"), None);
        for (agent, conversation) in [("agent-a", "conv-1"), ("agent-b", "conv-2"), ("agent-a", "conv-3")] {
            store
                .save_chat_conversation(agent.into(), "chat".into(), conversation.into(), "t".into())
                .await
                .expect("pinned");
        }
        assert_eq!(
            pinned("agent-a", "chat").await.expect("read").as_deref(),
            Some("conv-3")
        );
        assert_eq!(
            pinned("agent-b", "chat").await.expect("read").as_deref(),
            Some("conv-2")
        );
    }

    #[tokio::test]
    async fn outcomes_are_kept_for_a_day_and_only_the_newest() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(&dir.path().join("store.sqlite3"), Default::default()).expect("store");
        let save = |key: String, now: i64| store.save_idempotent_outcome(key, "agent".into(), "{}".into(), now);
        save("old".into(), 0).await.expect("saved");
        assert!(
            store
                .idempotent_outcome("old".into(), OUTCOME_SECONDS - 1)
                .await
                .expect("read")
                .is_some()
        );
        assert!(
            store
                .idempotent_outcome("old".into(), OUTCOME_SECONDS)
                .await
                .expect("read")
                .is_none()
        );
        for n in 0..=MAX_OUTCOMES {
            save(format!("key-{n}"), 10).await.expect("saved");
        }
        let kept = |key: &str| store.idempotent_outcome(key.into(), 10);
        assert!(kept("key-0").await.expect("read").is_none(), "the oldest went");
        assert!(kept("key-1").await.expect("read").is_some());
        assert!(kept(&format!("key-{MAX_OUTCOMES}")).await.expect("read").is_some());
    }
}
