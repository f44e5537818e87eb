//! The durable store: one SQLite file holding agents, conversations, per-scope settings,
//! every accepted input and every message of every turn, in order.
//!
//! SQLite runs on a dedicated thread; callers await the result of each operation. WAL mode with
//! `synchronous=NORMAL`: a committed write survives the process being killed.

use std::path::Path;

use letta_app_server_protocol::{JsonObject, RuntimeScope};
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::{mpsc, oneshot};

use crate::provider::HistoryMessage;

/// A store failure.
#[derive(Debug)]
pub struct StoreError(pub String);

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "store: {}", self.0)
    }
}

impl std::error::Error for StoreError {}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        Self(error.to_string())
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(error: serde_json::Error) -> Self {
        Self(error.to_string())
    }
}

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// Operations waiting for the store thread at most; callers wait for room beyond that.
const QUEUED_JOBS: usize = 1024;

/// Handle to the store thread; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    jobs: mpsc::Sender<Job>,
}

/// Per-scope settings that survive restarts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeSettings {
    /// Permission mode (wire spelling).
    pub mode: Option<String>,
    /// Working directory.
    pub cwd: Option<String>,
}

const SCHEMA: &str = "
    PRAGMA journal_mode = WAL;
    PRAGMA synchronous = NORMAL;
    CREATE TABLE IF NOT EXISTS agents (
        id TEXT PRIMARY KEY, state TEXT NOT NULL, created_at TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS conversations (
        id TEXT PRIMARY KEY, agent_id TEXT NOT NULL, state TEXT NOT NULL, created_at TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS scope_settings (
        agent_id TEXT NOT NULL, conversation_id TEXT NOT NULL, mode TEXT, cwd TEXT,
        PRIMARY KEY (agent_id, conversation_id));
    CREATE TABLE IF NOT EXISTS inputs (
        agent_id TEXT NOT NULL, conversation_id TEXT NOT NULL, client_message_id TEXT NOT NULL,
        disposition TEXT NOT NULL, request_id TEXT, payload TEXT NOT NULL, accepted_at TEXT NOT NULL,
        PRIMARY KEY (agent_id, conversation_id, client_message_id));
    CREATE TABLE IF NOT EXISTS messages (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, agent_id TEXT NOT NULL, conversation_id TEXT NOT NULL,
        run_id TEXT, body TEXT NOT NULL, created_at TEXT NOT NULL);
    CREATE INDEX IF NOT EXISTS messages_by_conversation ON messages (agent_id, conversation_id, seq);
";

impl Store {
    /// Opens (creating if needed) the database at `path` and starts the store thread.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let mut connection = Connection::open(path)?;
        connection.execute_batch(SCHEMA)?;
        let (jobs, mut receiver) = mpsc::channel::<Job>(QUEUED_JOBS);
        std::thread::Builder::new()
            .name("store".into())
            .spawn(move || {
                while let Some(job) = receiver.blocking_recv() {
                    job(&mut connection);
                }
            })
            .map_err(|e| StoreError(format!("starting the store thread: {e}")))?;
        Ok(Self { jobs })
    }

    async fn call<R: Send + 'static>(
        &self,
        operation: impl FnOnce(&mut Connection) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        let (reply, result) = oneshot::channel();
        let job: Job = Box::new(move |connection| {
            let _ = reply.send(operation(connection));
        });
        self.jobs
            .send(job)
            .await
            .map_err(|_| StoreError("the store thread stopped".into()))?;
        result
            .await
            .map_err(|_| StoreError("the store thread stopped".into()))?
    }

    /// Waits until every operation queued before this call is done.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.call(|_| Ok(())).await
    }

    /// Saves a new agent.
    pub async fn insert_agent(&self, id: String, state: JsonObject, created_at: String) -> Result<(), StoreError> {
        let state = serde_json::to_string(&state)?;
        self.call(move |c| {
            c.execute(
                "INSERT INTO agents (id, state, created_at) VALUES (?1, ?2, ?3)",
                params![id, state, created_at],
            )?;
            Ok(())
        })
        .await
    }

    /// An agent's state.
    pub async fn agent(&self, id: String) -> Result<Option<JsonObject>, StoreError> {
        self.call(move |c| {
            let state: Option<String> = c
                .query_row("SELECT state FROM agents WHERE id = ?1", [id], |row| row.get(0))
                .optional()?;
            Ok(state.map(|s| serde_json::from_str(&s)).transpose()?)
        })
        .await
    }

    /// Saves a new conversation.
    pub async fn insert_conversation(
        &self,
        id: String,
        agent_id: String,
        state: JsonObject,
        created_at: String,
    ) -> Result<(), StoreError> {
        let state = serde_json::to_string(&state)?;
        self.call(move |c| {
            c.execute(
                "INSERT INTO conversations (id, agent_id, state, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![id, agent_id, state, created_at],
            )?;
            Ok(())
        })
        .await
    }

    /// A conversation's state.
    pub async fn conversation(&self, id: String) -> Result<Option<JsonObject>, StoreError> {
        self.call(move |c| {
            let state: Option<String> = c
                .query_row("SELECT state FROM conversations WHERE id = ?1", [id], |row| row.get(0))
                .optional()?;
            Ok(state.map(|s| serde_json::from_str(&s)).transpose()?)
        })
        .await
    }

    /// The saved settings of a scope.
    pub async fn scope_settings(&self, scope: &RuntimeScope) -> Result<ScopeSettings, StoreError> {
        let (agent, conversation) = (scope.agent_id.clone(), scope.conversation_id.clone());
        self.call(move |c| {
            let row = c
                .query_row(
                    "SELECT mode, cwd FROM scope_settings WHERE agent_id = ?1 AND conversation_id = ?2",
                    [agent, conversation],
                    |row| {
                        Ok(ScopeSettings {
                            mode: row.get(0)?,
                            cwd: row.get(1)?,
                        })
                    },
                )
                .optional()?;
            Ok(row.unwrap_or_default())
        })
        .await
    }

    /// Saves the settings of a scope.
    pub async fn save_scope_settings(&self, scope: &RuntimeScope, settings: ScopeSettings) -> Result<(), StoreError> {
        let (agent, conversation) = (scope.agent_id.clone(), scope.conversation_id.clone());
        self.call(move |c| {
            c.execute(
                "INSERT INTO scope_settings (agent_id, conversation_id, mode, cwd) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (agent_id, conversation_id) DO UPDATE SET mode = excluded.mode, cwd = excluded.cwd",
                params![agent, conversation, settings.mode, settings.cwd],
            )?;
            Ok(())
        })
        .await
    }

    /// Records an accepted input. Returns the disposition it was first accepted with when the
    /// `client_message_id` is already known (a retry), in which case nothing is written.
    pub async fn accept_input(
        &self,
        scope: &RuntimeScope,
        client_message_id: String,
        disposition: &'static str,
        request_id: Option<String>,
        payload: String,
    ) -> Result<Option<String>, StoreError> {
        let (agent, conversation) = (scope.agent_id.clone(), scope.conversation_id.clone());
        let accepted_at = crate::clock::now_iso();
        self.call(move |c| {
            let existing: Option<String> = c
                .query_row(
                    "SELECT disposition FROM inputs WHERE agent_id = ?1 AND conversation_id = ?2 AND client_message_id = ?3",
                    params![agent, conversation, client_message_id],
                    |row| row.get(0),
                )
                .optional()?;
            if existing.is_some() {
                return Ok(existing);
            }
            c.execute(
                "INSERT INTO inputs (agent_id, conversation_id, client_message_id, disposition, request_id, payload, accepted_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![agent, conversation, client_message_id, disposition, request_id, payload, accepted_at],
            )?;
            Ok(None)
        })
        .await
    }

    /// Appends messages to a conversation's history.
    pub async fn append_messages(
        &self,
        scope: &RuntimeScope,
        run_id: Option<String>,
        messages: Vec<HistoryMessage>,
    ) -> Result<(), StoreError> {
        let (agent, conversation) = (scope.agent_id.clone(), scope.conversation_id.clone());
        let bodies = messages
            .iter()
            .map(serde_json::to_string)
            .collect::<Result<Vec<_>, _>>()?;
        let created_at = crate::clock::now_iso();
        self.call(move |c| {
            let transaction = c.transaction()?;
            {
                let mut insert = transaction.prepare_cached(
                    "INSERT INTO messages (agent_id, conversation_id, run_id, body, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                )?;
                for body in bodies {
                    insert.execute(params![agent, conversation, run_id, body, created_at])?;
                }
            }
            transaction.commit()?;
            Ok(())
        })
        .await
    }

    /// A conversation's history, oldest first.
    pub async fn history(&self, scope: &RuntimeScope) -> Result<Vec<HistoryMessage>, StoreError> {
        let (agent, conversation) = (scope.agent_id.clone(), scope.conversation_id.clone());
        self.call(move |c| {
            let mut query = c.prepare_cached(
                "SELECT body FROM messages WHERE agent_id = ?1 AND conversation_id = ?2 ORDER BY seq",
            )?;
            let bodies = query.query_map([agent, conversation], |row| row.get::<_, String>(0))?;
            let mut messages = Vec::new();
            for body in bodies {
                messages.push(serde_json::from_str(&body?)?);
            }
            Ok(messages)
        })
        .await
    }
}
