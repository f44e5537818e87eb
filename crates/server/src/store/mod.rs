//! The durable store: one SQLite file holding agents, conversations, per-scope settings, the
//! ledger of accepted inputs, the queue of inputs waiting to run, every turn, and every message
//! of every turn, in order.
//!
//! SQLite runs on a dedicated thread. Each operation is queued for it **when it is called** (not
//! when its [`Reply`] is first polled), so operations run in the order they were called; await
//! the reply for the result, or drop it to write in the background (still in order). What is
//! queued together commits together (see [`GROUP`]); a reply resolves once its operation's
//! group committed, and a failed commit fails every operation of its group. WAL mode with `synchronous=NORMAL`: a committed write survives the process
//! being killed.
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
mod journal;
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
use rusqlite::config::DbConfig;
use rusqlite::{Connection, Savepoint};
use tokio::sync::{mpsc, oneshot};

use crate::metrics::Metrics;

pub use agents::{AgentQuery, UnknownCursor};
pub use catalog::ScopeSettings;
pub use context::CompactionRecord;
pub use inputs::{Admission, InputState, QueueEntry, item_no};
pub use journal::{StoredEvent, StoredJournal};
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

/// An operation for the store thread: it runs, then is told whether its group committed.
type Job = Box<dyn FnOnce(&mut Connection) -> Finish + Send>;

/// What is left of a job once it ran: sending its reply, given how its group's commit went.
type Finish = Box<dyn FnOnce(Result<(), &StoreError>) + Send>;

/// The most operations one commit covers.
///
/// Group commit: the store thread takes every operation already queued (up to this many) and
/// runs them in one transaction, each in a savepoint of its own, then commits once. A commit
/// (SQLite's `COMMIT`, writing the WAL frames) was 40 % of the store thread's time when a
/// thousand turns started at once; grouped, pages the operations share are written once. An
/// operation alone in the queue commits alone, as before, so nothing waits for company.
const GROUP: usize = 32;

/// Prepared statements the store thread keeps (see [`Store::open`]).
const STATEMENT_CACHE: usize = 64;

/// The result of a store operation that has been queued; resolves once it ran and its group
/// committed (or failed: a commit's failure is every operation's in its group).
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
    /// Where writes' durations and failed operations are counted.
    metrics: Arc<Metrics>,
}

impl Store {
    /// Opens (creating or upgrading if needed) the database at `path` and starts the store
    /// thread, which counts its work in `metrics`.
    pub fn open(path: &Path, metrics: Arc<Metrics>) -> Result<Self, StoreError> {
        let connection = Connection::open(path)?;
        // Every statement a turn runs stays prepared (rusqlite keeps 16 by default; the store
        // has a few dozen): parsing SQL again was a visible part of a turn's CPU.
        connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        // And they stay prepared across uses: without the query planner stability guarantee,
        // SQLite marks a statement to be planned again when a parameter it compared (`col = ?`,
        // `LIMIT ?`) is rebound, and rusqlite clears a cached statement's parameters after each
        // use, so every cached statement was parsed and planned again on every use.
        connection.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
        connection.execute_batch(schema::SCHEMA)?;
        schema::migrate(&connection)?;
        let (jobs, receiver) = mpsc::unbounded_channel::<Job>();
        std::thread::Builder::new()
            .name("store".into())
            .spawn(move || serve(connection, receiver))
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
            Box::new(move |group: Result<(), &StoreError>| {
                // A write is only reported done once its group committed.
                let result = result.and_then(|value| group.map(|()| value).map_err(|e| StoreError(e.0.clone())));
                if let Err(error) = &result {
                    metrics.store_errors.inc();
                    tracing::error!(%error, "store operation failed");
                }
                let _ = reply.send(result);
            })
        });
        Reply(self.jobs.send(job).map(|()| result).map_err(|_| ()))
    }

    /// Queues `operation` to run all or nothing (a savepoint in its group's transaction), whose
    /// duration is observed.
    fn transaction<R: Send + 'static>(
        &self,
        operation: impl FnOnce(&Savepoint<'_>) -> Result<R, StoreError> + Send + 'static,
    ) -> Reply<R> {
        let metrics = self.metrics.clone();
        self.call(move |c| {
            let started = Instant::now();
            let savepoint = c.savepoint()?;
            let result = operation(&savepoint)?;
            savepoint.commit()?;
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

/// The store thread: runs the queued operations in groups (see [`GROUP`]) until every handle
/// is dropped.
fn serve(mut connection: Connection, mut receiver: mpsc::UnboundedReceiver<Job>) {
    let mut group = Vec::with_capacity(GROUP);
    while let Some(job) = receiver.blocking_recv() {
        group.push(job);
        while group.len() < GROUP
            && let Ok(job) = receiver.try_recv()
        {
            group.push(job);
        }
        let mut grouped = group.len() > 1 && connection.execute_batch("BEGIN").is_ok();
        let mut ran = Vec::with_capacity(group.len());
        for job in group.drain(..) {
            let finish = job(&mut connection);
            if !grouped {
                // Alone, an operation's savepoint is its own transaction.
                let open = left_open(&connection);
                finish(open.as_ref().map_or(Ok(()), Err));
            } else if connection.is_autocommit() {
                // SQLite rolled the group's transaction back (an I/O error, a full disk): what ran
                // in it is lost, and the rest of the group runs alone.
                let lost = StoreError("rolled back with the other operations of its commit after a failure".into());
                ran.drain(..).for_each(|finish: Finish| finish(Err(&lost)));
                finish(Err(&lost));
                grouped = false;
            } else {
                ran.push(finish);
            }
        }
        if grouped {
            let committed = connection.execute_batch("COMMIT").map_err(StoreError::from);
            let committed = committed.and_then(|()| left_open(&connection).map_or(Ok(()), Err));
            if let Err(error) = &committed {
                let _ = left_open(&connection);
                tracing::error!(%error, "a store commit failed");
            }
            ran.into_iter()
                .for_each(|finish| finish(committed.as_ref().map(|_| ())));
        }
    }
}

/// Rolls back a transaction a failure left open, so that nothing later nests in it unseen (a
/// savepoint would); the error to report for what ran in it, if there was one.
fn left_open(connection: &Connection) -> Option<StoreError> {
    if connection.is_autocommit() {
        return None;
    }
    let _ = connection.execute_batch("ROLLBACK");
    Some(StoreError("its transaction did not end and was rolled back".into()))
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

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::sync::mpsc;

    use rusqlite::Connection;

    use super::{Reply, Store, StoreError};

    /// A store in a new directory with a table `scratch (n)`, and the path of its file.
    async fn store() -> (tempfile::TempDir, PathBuf, Store) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("store.sqlite3");
        let store = Store::open(&path, Default::default()).expect("store");
        store
            .transaction(|t| Ok(t.execute_batch("CREATE TABLE scratch (n INTEGER NOT NULL)")?))
            .await
            .expect("table");
        (dir, path, store)
    }

    /// Holds the store thread in an operation until the returned sender is used, so that what is
    /// queued meanwhile runs as one group.
    fn hold(store: &Store) -> (Reply<()>, mpsc::Sender<()>) {
        let (entered, inside) = mpsc::channel();
        let (release, held) = mpsc::channel::<()>();
        let hold = store.call(move |_| {
            let _ = entered.send(());
            let _ = held.recv();
            Ok(())
        });
        inside.recv().expect("the store thread holds");
        (hold, release)
    }

    /// Queues a write of `n` into `scratch`.
    fn write(store: &Store, n: i32) -> Reply<i32> {
        store.transaction(move |t| {
            t.execute("INSERT INTO scratch (n) VALUES (?1)", [n])?;
            Ok(n)
        })
    }

    /// What `scratch` holds, read by another connection (so: what was committed).
    fn committed(path: &Path) -> Vec<i32> {
        let reader = Connection::open(path).expect("reader");
        let mut rows = reader.prepare("SELECT n FROM scratch ORDER BY n").expect("select");
        let rows = rows.query_map([], |row| row.get(0)).expect("rows");
        rows.map(|n| n.expect("n")).collect()
    }

    async fn results<R>(replies: Vec<Reply<R>>) -> Vec<Result<R, String>> {
        let mut results = Vec::new();
        for reply in replies {
            results.push(reply.await.map_err(|e| e.to_string()));
        }
        results
    }

    /// Operations queued together commit together, each all or nothing: a failing one leaves no
    /// trace and the others of its group are kept; no reply comes before its group committed.
    #[tokio::test]
    async fn a_group_commits_once_and_each_operation_all_or_nothing() {
        let (_dir, path, store) = store().await;
        let (held, release) = hold(&store);
        // The group's last operation lingers until the first reply was checked (at most 200 ms):
        // a reply sent before the commit would be checked while it lingers.
        let (checked, linger) = mpsc::channel::<()>();
        let mut linger = Some(linger);
        let failing = |t: &rusqlite::Savepoint<'_>| {
            t.execute("INSERT INTO scratch (n) VALUES (5)", [])?;
            t.execute_batch("INSERT INTO no_such_table VALUES (1)")?;
            Ok(5)
        };
        let mut writes: Vec<Reply<i32>> = (0..9)
            .map(|n| match n {
                5 => store.transaction(failing),
                n => write(&store, n),
            })
            .collect();
        let linger = linger.take().expect("one");
        writes.push(store.transaction(move |t| {
            t.execute("INSERT INTO scratch (n) VALUES (9)", [])?;
            let _ = linger.recv_timeout(std::time::Duration::from_millis(200));
            Ok(9)
        }));
        release.send(()).expect("release");
        held.await.expect("hold");
        let mut writes = writes.into_iter();
        let first = writes.next().expect("a write").await;
        assert_eq!(
            committed(&path),
            [0, 1, 2, 3, 4, 6, 7, 8, 9],
            "the first reply came before the commit"
        );
        let _ = checked.send(());
        assert_eq!(first.ok(), Some(0));
        let results = results(writes.collect()).await;
        for (n, result) in (1..).zip(&results) {
            match n {
                5 => assert!(
                    result.as_ref().is_err_and(|e| e.contains("no_such_table")),
                    "{result:?}"
                ),
                _ => assert_eq!(result.as_ref().ok(), Some(&n), "{result:?}"),
            }
        }
    }

    /// When SQLite ends a group's transaction on its own (as after an I/O error), what ran in it
    /// is reported lost and the rest of the group still commits, one operation at a time.
    #[tokio::test]
    async fn a_group_rolled_back_by_sqlite_reports_its_writes_lost() {
        let (_dir, path, store) = store().await;
        let (held, release) = hold(&store);
        let before = vec![write(&store, 0), write(&store, 1)];
        let rollback = store.call(|c| Ok(c.execute_batch("ROLLBACK")?));
        let after = vec![write(&store, 3), write(&store, 4)];
        release.send(()).expect("release");
        held.await.expect("hold");
        for result in results(before).await {
            assert!(result.is_err_and(|e| e.contains("rolled back")));
        }
        assert!(rollback.await.is_err());
        assert_eq!(results(after).await, [Ok(3), Ok(4)]);
        assert_eq!(committed(&path), [3, 4]);
    }

    /// A cached statement stays prepared from one use to the next, whatever its parameters.
    #[tokio::test]
    async fn cached_statements_are_not_prepared_again() {
        let (_dir, _path, store) = store().await;
        let reprepared = store.call(|c| {
            let sql = "SELECT count(*) FROM messages WHERE agent_id = ?1 AND conversation_id = ?2 LIMIT ?3";
            let mut reprepared = 0;
            for n in 1..=3 {
                let mut statement = c.prepare_cached(sql)?;
                statement.query_row(rusqlite::params![format!("agent-{n}"), "c", n], |_| Ok(()))?;
                reprepared = statement.get_status(rusqlite::StatementStatus::RePrepare);
            }
            Ok(reprepared)
        });
        assert_eq!(reprepared.await.expect("queries"), 0);
    }

    /// A commit that fails fails every operation of its group, and the store goes on.
    #[tokio::test]
    async fn a_failed_commit_fails_its_group_and_the_store_goes_on() {
        let (_dir, path, store) = store().await;
        // A foreign key checked only at the commit.
        store
            .call(|c| {
                Ok(c.execute_batch(
                    "PRAGMA foreign_keys = ON;
                     CREATE TABLE parent (id INTEGER PRIMARY KEY);
                     CREATE TABLE child (p INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED);",
                )?)
            })
            .await
            .expect("tables");
        let (held, release) = hold(&store);
        let dangling = store.transaction(|t| Ok(t.execute_batch("INSERT INTO child (p) VALUES (42)")?));
        let group = vec![write(&store, 0), write(&store, 1)];
        release.send(()).expect("release");
        held.await.expect("hold");
        assert!(dangling.await.is_err_and(|e: StoreError| e.0.contains("FOREIGN KEY")));
        for result in results(group).await {
            assert!(
                result.is_err_and(|e| e.contains("FOREIGN KEY")),
                "every operation of the group failed"
            );
        }
        assert_eq!(write(&store, 7).await.ok(), Some(7));
        assert_eq!(committed(&path), [7]);
    }
}
