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
//!
//! The handle and its thread are here; the operations live with the tables they write:
//! [`schema`] (tables and migrations), [`catalog`] (agents, conversations, per-scope settings),
//! [`agents`] (listing, updating and deleting agents), [`inputs`] (the ledger of accepted inputs
//! and the queue), [`turns`], [`messages`] (the history and partial replies), [`context`] (what a
//! model is sent of the history: compactions, clears, forks), [`listing`] (pages of conversations
//! and messages), [`restore`] (loading a conversation after a restart), [`toolsets`] (each scope's
//! toolset preference), [`settings`] (server-wide settings, the working directories scopes
//! chose) and [`openai`] (the OpenAI-compatible API's pinned chats and idempotent outcomes).

mod agents;
mod catalog;
mod context;
mod crons;
mod inputs;
mod listing;
mod messages;
mod openai;
mod restore;
mod schema;
mod settings;
mod toolsets;
mod turns;

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use letta_app_server_protocol::RuntimeScope;
use rusqlite::{Connection, Transaction};
use tokio::sync::{mpsc, oneshot};

use crate::metrics::Metrics;

pub use agents::{AgentQuery, UnknownCursor};
pub use catalog::ScopeSettings;
pub use context::CompactionRecord;
pub use inputs::{Admission, InputState, QueueEntry, item_no};
pub use listing::{ConversationQuery, MessageQuery, Order};
pub use restore::{INTERRUPTED_TURN_ERROR, InterruptedTurn, Restored};
pub use settings::ReflectionRow;
pub use turns::TurnStart;

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

/// Prepared statements the store thread keeps (see [`Store::open`]).
const STATEMENT_CACHE: usize = 64;

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
    /// Where transactions' durations and failed operations are counted.
    metrics: Arc<Metrics>,
}

impl Store {
    /// Opens (creating or upgrading if needed) the database at `path` and starts the store
    /// thread, which counts its work in `metrics`.
    pub fn open(path: &Path, metrics: Arc<Metrics>) -> Result<Self, StoreError> {
        let mut connection = Connection::open(path)?;
        // Every statement a turn runs stays prepared (rusqlite keeps 16 by default; the store
        // has a few dozen): parsing SQL again was a visible part of a turn's CPU.
        connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        connection.execute_batch(schema::SCHEMA)?;
        schema::migrate(&connection)?;
        let (jobs, mut receiver) = mpsc::unbounded_channel::<Job>();
        std::thread::Builder::new()
            .name("store".into())
            .spawn(move || {
                while let Some(job) = receiver.blocking_recv() {
                    job(&mut connection);
                }
            })
            .map_err(|e| StoreError(format!("starting the store thread: {e}")))?;
        Ok(Self { jobs, metrics })
    }

    /// Queues `operation` now; the reply resolves with its result. A failure is counted and
    /// logged (SQLite's message, never the data).
    fn call<R: Send + 'static>(
        &self,
        operation: impl FnOnce(&mut Connection) -> Result<R, StoreError> + Send + 'static,
    ) -> Reply<R> {
        let (reply, result) = oneshot::channel();
        let metrics = self.metrics.clone();
        let job: Job = Box::new(move |connection| {
            let result = operation(connection);
            if let Err(error) = &result {
                metrics.store_errors.inc();
                tracing::error!(%error, "store operation failed");
            }
            let _ = reply.send(result);
        });
        Reply(self.jobs.send(job).map(|()| result).map_err(|_| ()))
    }

    /// Queues `operation` to run in one transaction, whose duration is observed.
    fn transaction<R: Send + 'static>(
        &self,
        operation: impl FnOnce(&Transaction<'_>) -> Result<R, StoreError> + Send + 'static,
    ) -> Reply<R> {
        let metrics = self.metrics.clone();
        self.call(move |c| {
            let started = Instant::now();
            let transaction = c.transaction()?;
            let result = operation(&transaction)?;
            transaction.commit()?;
            metrics.store_write.observe(started.elapsed().as_secs_f64());
            Ok(result)
        })
    }

    /// The metrics this store counts its work in (the server's).
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Resolves once every operation queued before this call is done.
    pub fn flush(&self) -> Reply<()> {
        self.call(|_| Ok(()))
    }
}

/// The `agent_id` and `conversation_id` columns of a scope.
fn key(scope: &RuntimeScope) -> (String, String) {
    // An agent-free conversation is keyed by an empty agent id, which no agent has (ids are
    // never empty), so the tables need no nullable column.
    (
        scope.agent_id.clone().unwrap_or_default(),
        scope.conversation_id.clone(),
    )
}
