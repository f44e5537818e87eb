//! Agents, conversations, and the settings of each scope that survive restarts.

use letta_app_server_protocol::{JsonObject, RuntimeScope};
use rusqlite::{OptionalExtension, Transaction, params};

use super::{Reply, Store, StoreError, key};

/// Per-scope settings that survive restarts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeSettings {
    /// Permission mode (wire spelling).
    pub mode: Option<String>,
    /// Working directory.
    pub cwd: Option<String>,
    /// The remembered `client_preferences` (JSON).
    pub preferences: Option<String>,
}

impl Store {
    /// Saves a new agent.
    pub fn insert_agent(&self, id: String, state: &JsonObject, created_at: String) -> Reply<()> {
        let state = serde_json::to_string(state);
        self.call(move |c| {
            c.execute(
                "INSERT INTO agents (id, state, created_at) VALUES (?1, ?2, ?3)",
                params![id, state?, created_at],
            )?;
            Ok(())
        })
    }

    /// An agent's state.
    pub fn agent(&self, id: String) -> Reply<Option<JsonObject>> {
        self.call(move |c| {
            let state: Option<String> = c
                .query_row("SELECT state FROM agents WHERE id = ?1", [id], |row| row.get(0))
                .optional()?;
            Ok(state.map(|s| serde_json::from_str(&s)).transpose()?)
        })
    }

    /// Merges `patch` into an agent's state (each top-level key replaced; a `null` value
    /// stored as `null`), in one transaction; the new state, or `None` when there is no such
    /// agent.
    pub fn patch_agent(&self, id: String, patch: JsonObject) -> Reply<Option<JsonObject>> {
        self.transaction(move |t| patch_state(t, "agents", &id, patch))
    }

    /// Saves a new conversation of `scope` (an agent-free one has no agent).
    pub fn insert_conversation(&self, scope: &RuntimeScope, state: &JsonObject, created_at: String) -> Reply<()> {
        let (agent_id, id) = key(scope);
        let state = serde_json::to_string(state);
        self.call(move |c| {
            c.execute(
                "INSERT INTO conversations (id, agent_id, state, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![id, agent_id, state?, created_at],
            )?;
            Ok(())
        })
    }

    /// A conversation's state.
    pub fn conversation(&self, id: String) -> Reply<Option<JsonObject>> {
        self.call(move |c| {
            let state: Option<String> = c
                .query_row("SELECT state FROM conversations WHERE id = ?1", [id], |row| row.get(0))
                .optional()?;
            Ok(state.map(|s| serde_json::from_str(&s)).transpose()?)
        })
    }

    /// Merges `patch` into a conversation's state, as [`Store::patch_agent`] does an agent's.
    pub fn patch_conversation(&self, id: String, patch: JsonObject) -> Reply<Option<JsonObject>> {
        self.transaction(move |t| patch_state(t, "conversations", &id, patch))
    }

    /// Saves the settings of a scope.
    pub fn save_scope_settings(&self, scope: &RuntimeScope, settings: ScopeSettings) -> Reply<()> {
        let (agent, conversation) = key(scope);
        self.call(move |c| {
            c.execute(
                "INSERT INTO scope_settings (agent_id, conversation_id, mode, cwd, preferences)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (agent_id, conversation_id) DO UPDATE
                 SET mode = excluded.mode, cwd = excluded.cwd, preferences = excluded.preferences",
                params![agent, conversation, settings.mode, settings.cwd, settings.preferences],
            )?;
            Ok(())
        })
    }
}

/// Merges `patch` into the JSON `state` of row `id` of `table` (`agents` or `conversations`).
fn patch_state(
    t: &Transaction<'_>,
    table: &str,
    id: &str,
    patch: JsonObject,
) -> Result<Option<JsonObject>, StoreError> {
    let state: Option<String> = t
        .query_row(&format!("SELECT state FROM {table} WHERE id = ?1"), [id], |row| {
            row.get(0)
        })
        .optional()?;
    let Some(state) = state else {
        return Ok(None);
    };
    let mut state: JsonObject = serde_json::from_str(&state)?;
    state.extend(patch);
    t.execute(
        &format!("UPDATE {table} SET state = ?1 WHERE id = ?2"),
        params![serde_json::to_string(&state)?, id],
    )?;
    Ok(Some(state))
}
