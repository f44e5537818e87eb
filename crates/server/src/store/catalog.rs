//! Agents, conversations, and the settings of each scope that survive restarts.

use letta_app_server_protocol::{JsonObject, RuntimeScope};
use rusqlite::{OptionalExtension, Savepoint, params};

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
        let state = state.clone();
        self.call(move |c| insert_conversation(c, &id, &agent_id, &state, &created_at))
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

    /// Deletes a conversation and everything stored under it: its messages, partial replies,
    /// turns, input ledger, queue, settings, and the chats pinned to it. `false` when it was not
    /// stored.
    pub fn delete_conversation(&self, scope: &RuntimeScope) -> Reply<bool> {
        let (agent, conversation) = key(scope);
        self.transaction(move |t| {
            let deleted = t.execute(
                "DELETE FROM conversations WHERE id = ?1 AND agent_id = ?2",
                [&conversation, &agent],
            )? > 0;
            for table in OWNED_BY_A_CONVERSATION {
                t.execute(
                    &format!("DELETE FROM {table} WHERE agent_id = ?1 AND conversation_id = ?2"),
                    [&agent, &conversation],
                )?;
            }
            Ok(deleted)
        })
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

/// The tables whose rows belong to a conversation in their `agent_id` and `conversation_id`
/// columns.
const OWNED_BY_A_CONVERSATION: [&str; 11] = [
    "scope_settings",
    "inputs",
    "messages",
    "queue",
    "turns",
    "partial_replies",
    "compactions",
    "toolset_preferences",
    "openai_chats",
    "journals",
    "journal_events",
];

/// Merges `patch` into the JSON `state` of row `id` of `table` (`agents` or `conversations`).
fn patch_state(t: &Savepoint<'_>, table: &str, id: &str, patch: JsonObject) -> Result<Option<JsonObject>, StoreError> {
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
    if table == "conversations" {
        let listed = Listed::of(&state);
        t.execute(
            "UPDATE conversations SET listed_at = coalesce(?1, listed_at), hidden = ?2, archived = ?3 WHERE id = ?4",
            params![listed.at, listed.hidden, listed.archived, id],
        )?;
    }
    Ok(Some(state))
}

/// Inserts a conversation row, with the columns `conversation_list` sorts and filters by.
pub(super) fn insert_conversation(
    c: &rusqlite::Connection,
    id: &str,
    agent_id: &str,
    state: &JsonObject,
    created_at: &str,
) -> Result<(), StoreError> {
    let listed = Listed::of(state);
    c.execute(
        "INSERT INTO conversations (id, agent_id, state, created_at, listed_at, hidden, archived)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            id,
            agent_id,
            serde_json::to_string(state)?,
            created_at,
            listed.at.unwrap_or_else(|| created_at.to_owned()),
            listed.hidden,
            listed.archived
        ],
    )?;
    Ok(())
}

/// What a conversation is listed by: its last activity (`last_message_at`, else `updated_at`),
/// and whether it is hidden or archived.
struct Listed {
    at: Option<String>,
    hidden: bool,
    archived: bool,
}

impl Listed {
    fn of(state: &JsonObject) -> Self {
        let text = |key: &str| state.get(key).and_then(|v| v.as_str()).map(str::to_owned);
        let flag = |key: &str| state.get(key).and_then(serde_json::Value::as_bool).unwrap_or(false);
        Self {
            at: text("last_message_at").or_else(|| text("updated_at")),
            hidden: flag("hidden"),
            archived: flag("archived"),
        }
    }
}
