//! The durable store: one SQLite file holding agents, conversations, per-scope settings, the
//! ledger of accepted inputs, the queue of inputs waiting to run, every turn, and every message
//! of every turn, in order.
//!
//! SQLite runs on a dedicated thread. Each operation is queued for it **when it is called** (not
//! when its [`Reply`] is first polled), so operations run in the order they were called; await
//! the reply for the result, or drop it to write in the background (still in order). WAL mode
//! with `synchronous=NORMAL`: a committed write survives the process being killed.
//!
//! What is durable when (the server acknowledges an input only after its write committed):
//! * an input that starts a turn: its ledger entry, the turn, and the user message, together;
//! * an input that is queued: its ledger entry and its queue items (content, options, position);
//! * a dequeued batch: the items leave the queue as their turn and user message are written;
//! * a run's reply text: checkpointed while it streams ([`Store::save_partial`]), replaced by the
//!   complete message when the run ends;
//! * a turn that was running when the process died is ended with an error on the next load of
//!   its conversation ([`Store::restore`]), keeping the partial reply, and reads as
//!   `interrupted` until its end was queued for a client ([`Store::turns_reported`]).

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};

use letta_app_server_protocol::{JsonObject, QueueMessage, RuntimeScope};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use tokio::sync::{mpsc, oneshot};

use crate::history::HistoryMessage;

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

/// The result of a store operation that has been queued; resolves once it ran.
#[must_use = "the operation is queued either way; await the reply to know it committed"]
pub struct Reply<R>(Result<oneshot::Receiver<Result<R, StoreError>>, ()>);

impl<R> Future for Reply<R> {
    type Output = Result<R, StoreError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let stopped = || StoreError("the store thread stopped".into());
        match &mut self.get_mut().0 {
            Ok(receiver) => Pin::new(receiver).poll(cx).map(|result| result.map_err(|_| stopped())?),
            Err(()) => Poll::Ready(Err(stopped())),
        }
    }
}

/// Handle to the store thread; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    /// Unbounded so that an operation is queued at the moment it is called; callers await their
    /// replies, so the queue holds at most about one operation per task (plus the background
    /// checkpoints of streaming runs, a few per second each).
    jobs: mpsc::UnboundedSender<Job>,
}

/// Per-scope settings that survive restarts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeSettings {
    /// Permission mode (wire spelling).
    pub mode: Option<String>,
    /// Working directory.
    pub cwd: Option<String>,
}

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

/// A turn a previous process left running, ended with an error by [`Store::restore`], that no
/// client has been told of yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterruptedTurn {
    /// Its `turn_id`.
    pub turn_id: String,
    /// The `client_message_id`s it had consumed.
    pub client_ids: Vec<String>,
}

/// Everything a conversation runtime is loaded with.
#[derive(Debug, Clone)]
pub struct Restored {
    /// Its settings.
    pub settings: ScopeSettings,
    /// Its history, oldest first.
    pub history: Vec<HistoryMessage>,
    /// Its waiting queue items, in order.
    pub queue: Vec<QueueEntry>,
    /// The number of its next queue item (`q-<n>`): item ids are never given twice.
    pub next_queue_item: i64,
    /// Turns that were cut short by the end of the previous process.
    pub interrupted: Vec<InterruptedTurn>,
}

/// The error every turn cut short by the end of the server process ends with.
pub const INTERRUPTED_TURN_ERROR: &str = "The server stopped while this turn was running; its output so far was kept";

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
    CREATE TABLE IF NOT EXISTS queue (
        agent_id TEXT NOT NULL, conversation_id TEXT NOT NULL, item_no INTEGER NOT NULL,
        client_message_id TEXT NOT NULL, item TEXT NOT NULL, options TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'queued',
        PRIMARY KEY (agent_id, conversation_id, item_no));
    CREATE TABLE IF NOT EXISTS turns (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, turn_id TEXT NOT NULL,
        agent_id TEXT NOT NULL, conversation_id TEXT NOT NULL,
        client_message_ids TEXT NOT NULL, state TEXT NOT NULL, error TEXT,
        started_at TEXT NOT NULL, finished_at TEXT);
    CREATE INDEX IF NOT EXISTS running_turns ON turns (agent_id, conversation_id) WHERE state = 'running';
    CREATE TABLE IF NOT EXISTS partial_replies (
        run_id TEXT PRIMARY KEY, agent_id TEXT NOT NULL, conversation_id TEXT NOT NULL, body TEXT NOT NULL);
";

/// The schema version [`SCHEMA`] and [`migrate`] bring a database to (`PRAGMA user_version`).
const SCHEMA_VERSION: i64 = 1;

/// Brings a database written by an earlier version up to [`SCHEMA_VERSION`].
fn migrate(connection: &Connection) -> Result<(), StoreError> {
    let version: i64 = connection.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if version < 1 {
        // Version 0 kept the queue in memory only: its inputs carry no state. Whatever they were,
        // they are not waiting any more, so they read as started (a retry does not run them).
        let has_state = connection
            .prepare("SELECT 1 FROM pragma_table_info('inputs') WHERE name = 'state'")?
            .exists([])?;
        if !has_state {
            connection.execute_batch("ALTER TABLE inputs ADD COLUMN state TEXT NOT NULL DEFAULT 'started'")?;
        }
    }
    connection.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}"))?;
    Ok(())
}

impl Store {
    /// Opens (creating or upgrading if needed) the database at `path` and starts the store
    /// thread.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let mut connection = Connection::open(path)?;
        connection.execute_batch(SCHEMA)?;
        migrate(&connection)?;
        let (jobs, mut receiver) = mpsc::unbounded_channel::<Job>();
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

    /// Queues `operation` now; the reply resolves with its result.
    fn call<R: Send + 'static>(
        &self,
        operation: impl FnOnce(&mut Connection) -> Result<R, StoreError> + Send + 'static,
    ) -> Reply<R> {
        let (reply, result) = oneshot::channel();
        let job: Job = Box::new(move |connection| {
            let _ = reply.send(operation(connection));
        });
        Reply(self.jobs.send(job).map(|()| result).map_err(|_| ()))
    }

    /// Queues `operation` to run in one transaction.
    fn transaction<R: Send + 'static>(
        &self,
        operation: impl FnOnce(&Transaction<'_>) -> Result<R, StoreError> + Send + 'static,
    ) -> Reply<R> {
        self.call(move |c| {
            let transaction = c.transaction()?;
            let result = operation(&transaction)?;
            transaction.commit()?;
            Ok(result)
        })
    }

    /// Resolves once every operation queued before this call is done.
    pub fn flush(&self) -> Reply<()> {
        self.call(|_| Ok(()))
    }

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

    /// Saves a new conversation.
    pub fn insert_conversation(
        &self,
        id: String,
        agent_id: String,
        state: &JsonObject,
        created_at: String,
    ) -> Reply<()> {
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

    /// Saves the settings of a scope.
    pub fn save_scope_settings(&self, scope: &RuntimeScope, settings: ScopeSettings) -> Reply<()> {
        let (agent, conversation) = key(scope);
        self.call(move |c| {
            c.execute(
                "INSERT INTO scope_settings (agent_id, conversation_id, mode, cwd) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (agent_id, conversation_id) DO UPDATE SET mode = excluded.mode, cwd = excluded.cwd",
                params![agent, conversation, settings.mode, settings.cwd],
            )?;
            Ok(())
        })
    }

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

    /// Starts a turn that consumes no input (a recovery turn).
    pub fn start_turn(&self, scope: &RuntimeScope, turn: TurnStart) -> Reply<()> {
        let (agent, conversation) = key(scope);
        let turn = EncodedTurn::new(turn);
        self.transaction(move |t| insert_turn(t, &agent, &conversation, &turn?))
    }

    /// Removes queue items before they ran: their inputs read as cancelled.
    pub fn cancel_queued(&self, scope: &RuntimeScope, item_nos: Vec<i64>) -> Reply<()> {
        let (agent, conversation) = key(scope);
        self.transaction(move |t| remove_queued(t, &agent, &conversation, &item_nos, InputState::Cancelled))
    }

    /// Records how the running turn of a scope ended (`stop_reason` in its wire spelling); a
    /// conversation runs one turn at a time.
    pub fn finish_turn(&self, scope: &RuntimeScope, stop_reason: String, error: Option<String>) -> Reply<()> {
        let (agent, conversation) = key(scope);
        let finished_at = crate::clock::now_iso();
        self.call(move |c| {
            c.execute(
                "UPDATE turns SET state = ?3, error = ?4, finished_at = ?5
                 WHERE agent_id = ?1 AND conversation_id = ?2 AND state = 'running'",
                params![agent, conversation, stop_reason, error, finished_at],
            )?;
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

    /// Checkpoints the reply a run has streamed so far; replaced when the run's messages are
    /// appended, kept as the run's message if the process dies first.
    pub fn save_partial(&self, scope: &RuntimeScope, run_id: String, message: &HistoryMessage) -> Reply<()> {
        let (agent, conversation) = key(scope);
        let body = serde_json::to_string(message);
        self.call(move |c| {
            c.execute(
                "INSERT INTO partial_replies (run_id, agent_id, conversation_id, body) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (run_id) DO UPDATE SET body = excluded.body",
                params![run_id, agent, conversation, body?],
            )?;
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
        let bodies = messages
            .iter()
            .map(serde_json::to_string)
            .collect::<Result<Vec<_>, _>>();
        self.transaction(move |t| {
            if let Some(run_id) = &run_id {
                t.execute("DELETE FROM partial_replies WHERE run_id = ?1", [run_id])?;
            }
            append(t, &agent, &conversation, run_id.as_deref(), &bodies?)
        })
    }

    /// Loads a conversation runtime's durable state. Turns the previous process left running
    /// are ended first, in one transaction: their checkpointed partial replies join the history
    /// and they are recorded as failed with [`INTERRUPTED_TURN_ERROR`]; the ones no client was
    /// told of yet come back in [`Restored::interrupted`].
    pub fn restore(&self, scope: &RuntimeScope) -> Reply<Restored> {
        let (agent, conversation) = key(scope);
        self.transaction(move |t| {
            let interrupted = end_interrupted_turns(t, &agent, &conversation)?;
            let settings = t
                .query_row(
                    "SELECT mode, cwd FROM scope_settings WHERE agent_id = ?1 AND conversation_id = ?2",
                    [&agent, &conversation],
                    |row| {
                        Ok(ScopeSettings {
                            mode: row.get(0)?,
                            cwd: row.get(1)?,
                        })
                    },
                )
                .optional()?
                .unwrap_or_default();
            let mut history = Vec::new();
            let mut query = t.prepare_cached(
                "SELECT body FROM messages WHERE agent_id = ?1 AND conversation_id = ?2 ORDER BY seq",
            )?;
            for body in query.query_map([&agent, &conversation], |row| row.get::<_, String>(0))? {
                history.push(serde_json::from_str(&body?)?);
            }
            let mut queue = Vec::new();
            let mut query = t.prepare_cached(
                "SELECT item, options FROM queue
                 WHERE agent_id = ?1 AND conversation_id = ?2 AND state = 'queued' ORDER BY item_no",
            )?;
            let rows = query.query_map([&agent, &conversation], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
            })?;
            for row in rows {
                let (item, options) = row?;
                queue.push(QueueEntry {
                    item: serde_json::from_str(&item)?,
                    options,
                });
            }
            let next_queue_item = t.query_row(
                "SELECT COALESCE(MAX(item_no), 0) + 1 FROM queue WHERE agent_id = ?1 AND conversation_id = ?2",
                [&agent, &conversation],
                |row| row.get(0),
            )?;
            Ok(Restored {
                settings,
                history,
                queue,
                next_queue_item,
                interrupted,
            })
        })
    }
}

fn key(scope: &RuntimeScope) -> (String, String) {
    (scope.agent_id.clone(), scope.conversation_id.clone())
}

/// A queue item ready for its rows.
struct EncodedEntry {
    item_no: i64,
    client_id: String,
    item: String,
    options: String,
}

/// A turn ready for its rows.
struct EncodedTurn {
    turn_id: String,
    ids: Vec<String>,
    client_ids: String,
    user: Option<String>,
}

impl EncodedTurn {
    fn new(turn: TurnStart) -> Result<Self, StoreError> {
        Ok(Self {
            turn_id: turn.turn_id,
            client_ids: serde_json::to_string(&turn.client_ids)?,
            ids: turn.client_ids,
            user: turn.user.as_ref().map(serde_json::to_string).transpose()?,
        })
    }
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

fn append(
    t: &Transaction<'_>,
    agent: &str,
    conversation: &str,
    run_id: Option<&str>,
    bodies: &[String],
) -> Result<(), StoreError> {
    let created_at = crate::clock::now_iso();
    let mut insert = t.prepare_cached(
        "INSERT INTO messages (agent_id, conversation_id, run_id, body, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for body in bodies {
        insert.execute(params![agent, conversation, run_id, body, created_at])?;
    }
    Ok(())
}

fn insert_turn(t: &Transaction<'_>, agent: &str, conversation: &str, turn: &EncodedTurn) -> Result<(), StoreError> {
    t.execute(
        "INSERT INTO turns (turn_id, agent_id, conversation_id, client_message_ids, state, started_at)
         VALUES (?1, ?2, ?3, ?4, 'running', ?5)",
        params![
            turn.turn_id,
            agent,
            conversation,
            turn.client_ids,
            crate::clock::now_iso()
        ],
    )?;
    append(t, agent, conversation, None, turn.user.as_slice())
}

/// Takes queue items out of the queue and moves their inputs to `state`. Their rows stay, without
/// content, so that item numbers are never given twice in a conversation.
fn remove_queued(
    t: &Transaction<'_>,
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

/// Ends the turns a previous process left running (see [`Store::restore`]): their partial
/// replies join the history and they read as `interrupted` until [`Store::turns_reported`].
/// Returns every interrupted turn not reported yet, oldest first.
fn end_interrupted_turns(
    t: &Transaction<'_>,
    agent: &str,
    conversation: &str,
) -> Result<Vec<InterruptedTurn>, StoreError> {
    let finished_at = crate::clock::now_iso();
    let ended = t.execute(
        "UPDATE turns SET state = 'interrupted', error = ?3, finished_at = ?4
         WHERE agent_id = ?1 AND conversation_id = ?2 AND state = 'running'",
        params![agent, conversation, INTERRUPTED_TURN_ERROR, finished_at],
    )?;
    if ended > 0 {
        let mut partial = t.prepare_cached(
            "DELETE FROM partial_replies WHERE agent_id = ?1 AND conversation_id = ?2 RETURNING run_id, body",
        )?;
        let replies = partial
            .query_map([agent, conversation], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        for (run_id, body) in replies {
            append(t, agent, conversation, Some(&run_id), &[body])?;
        }
    }
    let mut unreported = t.prepare_cached(
        "SELECT turn_id, client_message_ids FROM turns
         WHERE agent_id = ?1 AND conversation_id = ?2 AND state = 'interrupted' ORDER BY seq",
    )?;
    let rows = unreported.query_map([agent, conversation], |row| {
        Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
    })?;
    let mut interrupted = Vec::new();
    for row in rows {
        let (turn_id, client_ids) = row?;
        interrupted.push(InterruptedTurn {
            turn_id,
            client_ids: serde_json::from_str(&client_ids)?,
        });
    }
    Ok(interrupted)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database written before the queue was durable (schema version 0) is upgraded: its inputs
    /// read as started, and the new tables work.
    #[tokio::test]
    async fn a_version_0_database_is_upgraded() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("store.sqlite3");
        let old = Connection::open(&path).expect("open");
        old.execute_batch(
            "CREATE TABLE inputs (
                agent_id TEXT NOT NULL, conversation_id TEXT NOT NULL, client_message_id TEXT NOT NULL,
                disposition TEXT NOT NULL, request_id TEXT, payload TEXT NOT NULL, accepted_at TEXT NOT NULL,
                PRIMARY KEY (agent_id, conversation_id, client_message_id));
             INSERT INTO inputs VALUES ('agent-1', 'default', 'cm-old', 'queued', NULL, '{}', 'then');",
        )
        .expect("a version 0 database");
        drop(old);

        let store = Store::open(&path).expect("upgraded");
        let scope = RuntimeScope::new("agent-1", "default");
        let retry = |id: &str| {
            let turn = TurnStart {
                turn_id: format!("turn-{id}"),
                client_ids: vec![id.to_owned()],
                user: None,
            };
            store.accept_input(&scope, None, "{}".into(), Admission::Started(turn))
        };
        assert_eq!(retry("cm-old").await.expect("stored"), Some(InputState::Started));
        assert_eq!(retry("cm-new").await.expect("stored"), None);
        assert_eq!(retry("cm-new").await.expect("stored"), Some(InputState::Started));
        let restored = store.restore(&scope).await.expect("restored");
        assert_eq!(
            restored.interrupted,
            [InterruptedTurn {
                turn_id: "turn-cm-new".into(),
                client_ids: vec!["cm-new".into()]
            }],
            "a turn left running is ended on the next load"
        );
        assert_eq!(
            store.restore(&scope).await.expect("restored").interrupted.len(),
            1,
            "reported on every load until a client was told"
        );
        store
            .turns_reported(&scope, vec!["turn-cm-new".into()])
            .await
            .expect("stored");
        assert!(store.restore(&scope).await.expect("restored").interrupted.is_empty());
    }

    /// Queue item numbers are never given twice in a conversation, even once its queue is empty.
    #[tokio::test]
    async fn queue_item_numbers_are_not_reused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(&dir.path().join("store.sqlite3")).expect("opened");
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
