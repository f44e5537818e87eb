//! Deleting an agent: its conversation runtimes leave memory (their turns aborted, their queues
//! and pending approvals dropped), then the store forgets it and everything it owns
//! (docs/protocol.md §4.6). Deleting one conversation (the OpenAI-compatible API's stateless
//! requests) goes the same way.

use std::sync::Arc;
use std::time::Duration;

use letta_app_server_protocol::RuntimeScope;

use crate::engine::Engine;
use crate::engine::conversation::Conversation;
use crate::store::StoreError;
use crate::sync::lock;

/// How long a deletion waits for the aborted turns of the agent to end (their output so far is
/// saved, then deleted with the rest); a turn still unwinding after that is deleted under it.
const TURN_END_GRACE: Duration = Duration::from_secs(5);

impl Engine {
    /// Deletes an agent: every loaded conversation runtime of it is dropped from memory, its
    /// running turn aborted (its subscribers get the abort's frames and `turn_finished` with
    /// `stop_reason: "cancelled"`), its pending approval withdrawn and its waiting queue items
    /// cancelled (an `update_queue` saying so); then its record, conversations, messages,
    /// turns, input ledger, queue and settings are deleted from the store, and its memory
    /// repository and secrets from the data directory, and its scheduled prompts. Meanwhile and after,
    /// none of its conversations loads: commands naming them get the unknown-runtime answer.
    /// `false` when there is no such agent.
    pub async fn forget_agent(self: &Arc<Self>, agent_id: &str) -> Result<bool, StoreError> {
        if self.store.agent(agent_id.to_owned()).await?.is_none() {
            return Ok(false);
        }
        lock(&self.deleting).insert(agent_id.to_owned());
        let deleted = self.forget_loaded_agent(agent_id).await;
        lock(&self.deleting).remove(agent_id);
        deleted
    }

    async fn forget_loaded_agent(self: &Arc<Self>, agent_id: &str) -> Result<bool, StoreError> {
        self.forget_loaded(|scope| scope.agent_id.as_deref() == Some(agent_id))
            .await;
        // Its background commands too, whether or not their conversations are in memory.
        self.shells
            .stop_all(|scope| scope.agent_id.as_deref() == Some(agent_id));
        let deleted = self.store.delete_agent(agent_id.to_owned()).await?;
        if deleted && let Err(error) = self.settings.forget_agent(agent_id) {
            // The agent is gone; a leftover directory is only disk space.
            tracing::warn!(agent = agent_id, %error, "could not remove the memory repository");
        }
        if deleted && let Err(error) = self.secrets.forget(agent_id).await {
            tracing::warn!(agent = agent_id, %error, "could not remove the secrets");
        }
        if deleted {
            // Under the tasks' lock: a fire in progress cannot store a deleted task again.
            let _changing = self.crons.changing().await;
            if self.store.delete_cron_tasks(None, Some(agent_id.to_owned())).await? > 0 {
                crate::engine::cron::announce(self, Some(agent_id), None);
            }
        }
        Ok(deleted)
    }

    /// Deletes one conversation of an agent as [`Engine::forget_agent`] deletes an agent's: its
    /// runtime leaves memory (a running turn aborted, waiting items cancelled), then the store
    /// forgets it and everything stored under it. A load of it afterwards fails as for an
    /// unknown conversation. `false` when it was not stored.
    pub async fn forget_conversation(self: &Arc<Self>, scope: &RuntimeScope) -> Result<bool, StoreError> {
        let key = scope.without_acting_user();
        self.forget_loaded(|loaded| *loaded == key).await;
        self.store.delete_conversation(&key).await
    }

    /// Drops the loaded conversation runtimes whose scope is `owned` from memory (after loads of
    /// them that already started), and waits, up to [`TURN_END_GRACE`], for their aborted turns
    /// to end.
    async fn forget_loaded(self: &Arc<Self>, owned: impl Fn(&RuntimeScope) -> bool) {
        // Loads that started before `deleting` named the agent finish first; later ones fail.
        let loads: Vec<_> = lock(&self.loading)
            .iter()
            .filter(|(scope, _)| owned(scope))
            .map(|(_, gate)| gate.clone())
            .collect();
        for gate in loads {
            drop(gate.lock().await);
        }
        let forgotten: Vec<Arc<Conversation>> = {
            let mut conversations = lock(&self.conversations);
            let scopes: Vec<_> = conversations.keys().filter(|scope| owned(scope)).cloned().collect();
            scopes.iter().filter_map(|scope| conversations.remove(scope)).collect()
        };
        for conversation in &forgotten {
            conversation.forget(&self.context).await;
        }
        let deadline = tokio::time::Instant::now() + TURN_END_GRACE;
        for conversation in &forgotten {
            while conversation.has_turn().await && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}
