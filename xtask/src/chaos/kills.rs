//! Phase 1, kills: clients send inputs (each with a unique `client_message_id` written into its
//! text) while the server is killed with `SIGKILL` in the middle of turns and restarted on the
//! same data directory. Clients reconnect, resume their conversation and retry every input they
//! have no answer for (and a few they have). Afterwards the store must hold every acknowledged
//! input's user message exactly once, and every turn cut short must have been reported.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::stream::SplitStream;
use futures_util::{SinkExt, StreamExt};
use letta_app_server_tests::schema::Schemas;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{RngExt, SeedableRng};
use serde_json::Value;
use tokio::sync::{Mutex, watch};
use tokio_tungstenite::tungstenite::Message;

use super::wire::{self, Checker, Socket};
use super::{Check, Scale, first};
use crate::bench::client;
use crate::bench::process::ServerProcess;
use crate::bench::report::thousands;

const PHASE: &str = "kills";

/// Clients, and the conversations they share (two clients each).
const CLIENTS: usize = 6;
const CONVERSATIONS: usize = 3;
/// How long every input may take to be acknowledged, and the queues to drain, once the last
/// kill is over.
const FINISH: Duration = Duration::from_secs(120);
/// Finishing gives up sooner when the store has not changed (no queue item started, no
/// message written) for this long.
const STALLED: Duration = Duration::from_secs(20);
/// A kill waits this long at most for a turn to be streaming.
const MID_TURN_WAIT: Duration = Duration::from_secs(3);
/// What a turn cut short by the end of the server process reports (README, "Durable").
const INTERRUPTED: &str = "The server stopped while this turn was running; its output so far was kept";
/// Acknowledged inputs each client sends again after reconnecting (they must not run again).
const DUPLICATES_PER_RECONNECT: usize = 3;

/// What the clients are doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Sending new inputs.
    Sending,
    /// No new inputs: waiting for answers and for the queues to run.
    Finishing,
    /// Disconnect.
    Done,
}

/// What every client shares.
struct Shared {
    url: watch::Receiver<String>,
    stage: watch::Receiver<Stage>,
    schemas: Arc<Schemas>,
    started: Instant,
    /// When a stream delta last arrived, ms since `started`.
    last_delta: AtomicU64,
    record: Mutex<Record>,
}

/// What the clients saw.
#[derive(Debug, Default)]
struct Record {
    /// Every input created, by `client_message_id`: its answer once it came.
    inputs: BTreeMap<String, Option<Answer>>,
    /// Every `turn_finished`: (conversation, turn id) → stop reason.
    finished: BTreeMap<(String, String), String>,
    dispositions: BTreeMap<String, u64>,
    retries: u64,
    duplicates: u64,
    /// Answers to a duplicate that said it would run again (`disposition` other than queued or
    /// started, or a refusal).
    duplicate_answers: BTreeMap<String, u64>,
    reconnects: u64,
    errors: Vec<String>,
    /// `loop_error` deltas by id (both clients of a conversation get each): their message.
    loop_errors: BTreeMap<String, String>,
    violations: Vec<String>,
}

/// The first answer to an input.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Answer {
    Accepted(String),
    Refused(String),
}

/// Runs the phase and returns its checks.
pub async fn run(binary: &Path, schemas: Arc<Schemas>, seed: u64, scale: Scale) -> Result<Vec<Check>, String> {
    let data = tempfile::Builder::new()
        .prefix("letta-chaos-")
        .tempdir()
        .map_err(|e| format!("creating a data directory: {e}"))?;
    let mut server = ServerProcess::start_in(binary, data.path(), &[]).await?;
    let mut runtimes = Vec::new();
    {
        let mut socket = wire::connect(&server.url).await.ok_or("could not connect")?;
        let mut checker = Checker::new(schemas.clone());
        for index in 0..CONVERSATIONS {
            runtimes.push(wire::create_runtime(&mut socket, &mut checker, &format!("Kills {index}")).await?);
        }
        let _ = socket.close(None).await;
    }
    let (url_tx, url) = watch::channel(server.url.clone());
    let (stage_tx, stage) = watch::channel(Stage::Sending);
    let shared = Arc::new(Shared {
        url,
        stage,
        schemas,
        started: Instant::now(),
        last_delta: AtomicU64::new(0),
        record: Mutex::new(Record::default()),
    });
    let mut clients = tokio::task::JoinSet::new();
    for index in 0..CLIENTS {
        let runtime = runtimes[index % CONVERSATIONS].clone();
        let rng = StdRng::seed_from_u64(seed ^ (0x2000 + index as u64));
        clients.spawn(run_client(index, runtime, shared.clone(), rng));
    }

    let mut rng = StdRng::seed_from_u64(seed ^ 0x2fff);
    let kills = scale.count(20);
    let (mut mid_turn, mut crashes) = (0, Vec::new());
    for _ in 0..kills {
        tokio::time::sleep(Duration::from_millis(rng.random_range(1500..4500))).await;
        let waiting = Instant::now();
        while !streaming(&shared) && waiting.elapsed() < MID_TURN_WAIT {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        mid_turn += usize::from(streaming(&shared));
        if let Some(status) = server.exit_status() {
            crashes.push(format!("the server exited by itself ({status})"));
        }
        server.kill().await?;
        server = ServerProcess::start_in(binary, data.path(), &[]).await?;
        let _ = url_tx.send(server.url.clone());
    }

    let _ = stage_tx.send(Stage::Finishing);
    let finishing = Instant::now();
    let database = data.path().join("letta-app-server.sqlite3");
    let (mut drained, mut progress, mut last_busy) = (false, Instant::now(), None);
    while finishing.elapsed() < FINISH && progress.elapsed() < STALLED {
        let answered = shared.record.lock().await.inputs.values().all(Option::is_some);
        let busy = busy(&database).ok();
        if answered && busy.is_some_and(|(queued, running, _)| queued + running == 0) {
            drained = true;
            break;
        }
        if busy != last_busy {
            (last_busy, progress) = (busy, Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // The last turns' frames are on their way to the clients.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = stage_tx.send(Stage::Done);
    while clients.join_next().await.is_some() {}
    if let Some(status) = server.exit_status() {
        crashes.push(format!("the server exited by itself ({status})"));
    }
    let _ = server.stop().await;

    let record = shared.record.lock().await;
    let store = read_store(&database)?;
    let outcome = Outcome {
        kills,
        mid_turn,
        crashes,
        drained,
        finishing: finishing.elapsed(),
    };
    Ok(checks(&record, &store, &outcome))
}

/// Whether a stream delta arrived in the last 100 ms.
fn streaming(shared: &Shared) -> bool {
    let now = shared.started.elapsed().as_millis() as u64;
    now.saturating_sub(shared.last_delta.load(Ordering::Relaxed)) < 100
}

/// One client: connects (again after each kill), resumes its conversation, retries, sends.
async fn run_client(index: usize, runtime: Value, shared: Arc<Shared>, mut rng: StdRng) {
    let conversation = runtime["conversation_id"].as_str().unwrap_or_default().to_owned();
    let mut created: Vec<String> = Vec::new();
    let mut attempt = 0u64;
    loop {
        if *shared.stage.borrow() == Stage::Done {
            return;
        }
        let url = shared.url.borrow().clone();
        let Some(socket) = wire::connect(&url).await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        attempt += 1;
        if attempt > 1 {
            shared.record.lock().await.reconnects += 1;
        }
        let (mut sink, source) = socket.split();
        let queue = Arc::new(AtomicUsize::new(0));
        let (resumed_tx, mut resumed) = watch::channel(false);
        let reader = tokio::spawn(read(
            source,
            shared.clone(),
            conversation.clone(),
            queue.clone(),
            resumed_tx,
        ));
        let start = wire::resume(&format!("rs-{index}-{attempt}"), &runtime);
        let waited = async {
            sink.send(Message::text(start.to_string())).await.ok()?;
            resumed.wait_for(|resumed| *resumed).await.ok().map(drop)
        };
        if tokio::time::timeout(wire::FRAME_TIMEOUT, waited)
            .await
            .ok()
            .flatten()
            .is_none()
        {
            reader.abort();
            continue;
        }
        // Retry what has no answer yet, and send a few answered ones again.
        let (unanswered, answered): (Vec<String>, Vec<String>) = {
            let record = shared.record.lock().await;
            created
                .iter()
                .cloned()
                .partition(|id| record.inputs.get(id).is_none_or(Option::is_none))
        };
        let duplicates: Vec<String> = if attempt > 1 {
            answered.sample(&mut rng, DUPLICATES_PER_RECONNECT).cloned().collect()
        } else {
            Vec::new()
        };
        let mut failed = false;
        for id in unanswered.iter().chain(&duplicates) {
            let frame = input(id, attempt, &runtime, &mut rng);
            failed |= sink.send(Message::text(frame.to_string())).await.is_err();
        }
        {
            let mut record = shared.record.lock().await;
            record.retries += unanswered.len() as u64;
            record.duplicates += duplicates.len() as u64;
        }
        // New inputs while the stage allows, at random moments, keeping the queue short.
        let mut queue_limit = rng.random_range(2..6);
        while !failed && !reader.is_finished() {
            let stage = *shared.stage.borrow();
            if stage == Stage::Done {
                let _ = sink.close().await;
                reader.abort();
                return;
            }
            if stage == Stage::Sending && queue.load(Ordering::Relaxed) < queue_limit {
                let id = format!("k{index}-{}", created.len());
                created.push(id.clone());
                shared.record.lock().await.inputs.insert(id.clone(), None);
                let frame = input(&id, attempt, &runtime, &mut rng);
                failed = sink.send(Message::text(frame.to_string())).await.is_err();
                queue_limit = rng.random_range(2..6);
            }
            tokio::time::sleep(Duration::from_millis(rng.random_range(20..250))).await;
        }
        reader.abort();
    }
}

/// An `input` for `id`: a short reply, or (one in three) a slow one that keeps the conversation
/// busy so that later inputs queue. The text carries `<<id>>`, which the store check looks for.
fn input(id: &str, attempt: u64, runtime: &Value, rng: &mut StdRng) -> Value {
    let directive = if rng.random_ratio(1, 3) {
        "[[deltas: 60]] [[delay: 20]]"
    } else {
        "[[chunks: 3]]"
    };
    let text = format!("chaos input <<{id}>> {directive}");
    client::input(&format!("{id}.{attempt}"), runtime, &text, id)
}

/// Reads one connection's frames into the record until it ends.
async fn read(
    mut source: SplitStream<Socket>,
    shared: Arc<Shared>,
    conversation: String,
    queue: Arc<AtomicUsize>,
    resumed: watch::Sender<bool>,
) {
    let mut checker = Checker::new(shared.schemas.clone());
    while let Some(Ok(message)) = source.next().await {
        let Message::Text(text) = message else { continue };
        let Some(frame) = checker.check(text.as_str()) else {
            continue;
        };
        let mut record = shared.record.lock().await;
        record.violations.append(&mut checker.violations);
        match frame["type"].as_str().unwrap_or_default() {
            "stream_delta" => {
                let now = shared.started.elapsed().as_millis() as u64;
                shared.last_delta.store(now, Ordering::Relaxed);
                let delta = &frame["delta"];
                if delta["message_type"] == "loop_error" {
                    let id = delta["id"].as_str().unwrap_or_default().to_owned();
                    let message = delta["message"].as_str().unwrap_or_default().to_owned();
                    record.loop_errors.insert(id, message);
                }
            }
            "runtime_start_response" if frame["success"] == true => {
                let _ = resumed.send(true);
            }
            "update_queue" if frame["runtime"]["conversation_id"] == conversation.as_str() => {
                queue.store(frame["queue"].as_array().map_or(0, Vec::len), Ordering::Relaxed);
            }
            "input_accepted" => answer(&mut record, &frame),
            "turn_finished" => {
                let key = (
                    frame["runtime"]["conversation_id"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    frame["turn_id"].as_str().unwrap_or_default().to_owned(),
                );
                record
                    .finished
                    .insert(key, frame["stop_reason"].as_str().unwrap_or_default().to_owned());
            }
            "error" | "runtime_start_response" => record.errors.push(wire::shorten(text.as_str())),
            _ => {}
        }
    }
}

/// Records an `input_accepted`.
fn answer(record: &mut Record, frame: &Value) {
    let request_id = frame["request_id"].as_str().unwrap_or_default();
    let (id, _attempt) = request_id.rsplit_once('.').unwrap_or((request_id, ""));
    let answer = if frame["accepted"] == true {
        Answer::Accepted(frame["disposition"].as_str().unwrap_or("none").to_owned())
    } else {
        Answer::Refused(frame["error"].as_str().unwrap_or_default().to_owned())
    };
    let label = match &answer {
        Answer::Accepted(disposition) => disposition.clone(),
        Answer::Refused(error) => format!("refused: {error}"),
    };
    match record.inputs.get_mut(id) {
        Some(first @ None) => {
            *first = Some(answer);
            *record.dispositions.entry(label).or_default() += 1;
        }
        Some(Some(_)) => *record.duplicate_answers.entry(label).or_default() += 1,
        None => record.errors.push(format!("an answer to an unknown input: {frame}")),
    }
}

/// What the store holds that is not done: queued items, running turns, and the messages
/// written so far (to see progress).
fn busy(database: &Path) -> Result<(i64, i64, i64), rusqlite::Error> {
    let connection = rusqlite::Connection::open_with_flags(database, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    connection.query_row(
        "SELECT (SELECT COUNT(*) FROM queue WHERE state = 'queued'), (SELECT COUNT(*) FROM turns WHERE state = 'running'),
                (SELECT COUNT(*) FROM messages)",
        [],
        |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
    )
}

/// What the store says once the server stopped.
struct Store {
    /// How many stored user messages carry each `<<id>>`.
    runs: BTreeMap<String, usize>,
    /// Ledger state of each input.
    ledger: BTreeMap<String, String>,
    /// Turns that ended with an error: (conversation, turn id).
    cut_short: BTreeSet<(String, String)>,
    /// Items still queued.
    queued: BTreeSet<String>,
}

fn read_store(database: &Path) -> Result<Store, String> {
    let sql = |e: rusqlite::Error| format!("reading {}: {e}", database.display());
    let connection =
        rusqlite::Connection::open_with_flags(database, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(sql)?;
    let mut runs = BTreeMap::new();
    let mut query = connection.prepare("SELECT body FROM messages").map_err(sql)?;
    for body in query.query_map([], |row| row.get::<_, String>(0)).map_err(sql)? {
        let body: Value = serde_json::from_str(&body.map_err(sql)?).map_err(|e| format!("a stored message: {e}"))?;
        if body["role"] == "user" {
            for id in markers(&body["content"].to_string()) {
                *runs.entry(id).or_default() += 1;
            }
        }
    }
    let pairs = |statement: &str| -> Result<Vec<(String, String)>, String> {
        let mut query = connection.prepare(statement).map_err(sql)?;
        let rows = query
            .query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)))
            .map_err(sql)?;
        rows.collect::<Result<_, _>>().map_err(sql)
    };
    Ok(Store {
        runs,
        ledger: pairs("SELECT client_message_id, state FROM inputs")?
            .into_iter()
            .collect(),
        cut_short: pairs("SELECT conversation_id, turn_id FROM turns WHERE state IN ('error', 'interrupted')")?
            .into_iter()
            .collect(),
        queued: pairs("SELECT client_message_id, '' FROM queue WHERE state = 'queued'")?
            .into_iter()
            .map(|(id, _)| id)
            .collect(),
    })
}

/// Every `id` of `<<id>>` in `text`.
fn markers(text: &str) -> Vec<String> {
    text.split("<<")
        .skip(1)
        .filter_map(|rest| rest.split_once(">>").map(|(id, _)| id.to_owned()))
        .collect()
}

/// How the kills went: the kills, how many hit a streaming reply, exits the kills did not
/// cause, whether the store drained and how long finishing took.
struct Outcome {
    kills: usize,
    mid_turn: usize,
    crashes: Vec<String>,
    drained: bool,
    finishing: Duration,
}

fn checks(record: &Record, store: &Store, outcome: &Outcome) -> Vec<Check> {
    let Outcome {
        kills,
        mid_turn,
        ref crashes,
        drained,
        finishing,
    } = *outcome;
    let acked: Vec<&String> = record
        .inputs
        .iter()
        .filter(|(_, answer)| matches!(answer, Some(Answer::Accepted(_))))
        .map(|(id, _)| id)
        .collect();
    let runs = |id: &String| store.runs.get(id).copied().unwrap_or(0);
    let describe = |id: &String| {
        format!(
            "{id} (ran {} times; ledger: {}; {})",
            runs(id),
            store.ledger.get(id).map_or("absent", String::as_str),
            if store.queued.contains(id) {
                "still queued"
            } else {
                "not queued"
            }
        )
    };
    let lost: Vec<String> = acked.iter().filter(|id| runs(id) == 0).map(|id| describe(id)).collect();
    let twice: Vec<String> = acked.iter().filter(|id| runs(id) > 1).map(|id| describe(id)).collect();
    let unanswered: Vec<String> = record
        .inputs
        .iter()
        .filter(|(_, answer)| answer.is_none())
        .map(|(id, _)| describe(id))
        .collect();
    let unreported: Vec<String> = store
        .cut_short
        .iter()
        .filter(|key| record.finished.get(*key).map(String::as_str) != Some("error"))
        .map(|(conversation, turn)| format!("{turn} of {conversation}"))
        .collect();
    let mut checks = vec![
        Check::info(
            PHASE,
            "inputs sent",
            format!(
                "{} by {CLIENTS} clients on {CONVERSATIONS} conversations ({} retried after a reconnect, {} acknowledged ones sent again)",
                thousands(record.inputs.len() as u64),
                thousands(record.retries),
                thousands(record.duplicates)
            ),
        ),
        Check::info(
            PHASE,
            "answers (first answer per input)",
            format!(
                "{} acknowledged ({}); answers to inputs sent again: {}",
                thousands(acked.len() as u64),
                super::list(&record.dispositions),
                super::list(&record.duplicate_answers)
            ),
        ),
        Check::hard(
            PHASE,
            "inputs never answered",
            format!("{}{}", unanswered.len(), first(&unanswered)),
            unanswered.is_empty(),
            "0",
        ),
        Check::hard(
            PHASE,
            "store idle after the last kill (no queued item, no running turn)",
            if drained {
                "yes".to_owned()
            } else {
                format!(
                    "no: {} items still queued {:.0} s after the last kill",
                    store.queued.len(),
                    finishing.as_secs_f64()
                )
            },
            drained,
            "yes",
        ),
        Check::info(
            PHASE,
            "acknowledged inputs whose turn started exactly once (user message stored once)",
            thousands(acked.iter().filter(|id| runs(id) == 1).count() as u64),
        ),
        Check::hard(
            PHASE,
            "acknowledged inputs lost",
            format!("{}{}", lost.len(), first(&lost)),
            lost.is_empty(),
            "0",
        ),
        Check::hard(
            PHASE,
            "acknowledged inputs run twice or more",
            format!("{}{}", twice.len(), first(&twice)),
            twice.is_empty(),
            "0",
        ),
        Check::info(
            PHASE,
            "kill -9s",
            format!(
                "{kills} ({mid_turn} while a reply was streaming); {} reconnects",
                record.reconnects
            ),
        ),
        Check::hard(
            PHASE,
            "turns cut short (store: error or interrupted) reported by turn_finished stop_reason error",
            format!(
                "{} of {}{}",
                store.cut_short.len() - unreported.len(),
                store.cut_short.len(),
                first(&unreported)
            ),
            unreported.is_empty(),
            "all",
        ),
        Check::hard(
            PHASE,
            "server crashes (exits not caused by the kills)",
            format!("{}{}", crashes.len(), first(crashes)),
            crashes.is_empty(),
            "0",
        ),
        Check::hard(
            PHASE,
            "frames violating the schema or event_seq",
            format!("{}{}", record.violations.len(), first(&record.violations)),
            record.violations.is_empty(),
            "0",
        ),
    ];
    let mut loop_errors: BTreeMap<&str, u64> = BTreeMap::new();
    for message in record.loop_errors.values() {
        *loop_errors.entry(message.as_str()).or_default() += 1;
    }
    let unexpected: BTreeMap<&str, u64> = loop_errors
        .iter()
        .filter(|(message, _)| **message != INTERRUPTED)
        .map(|(message, count)| (*message, *count))
        .collect();
    checks.push(Check::info(
        PHASE,
        "loop_error deltas reporting a turn cut short by a kill",
        thousands(loop_errors.get(INTERRUPTED).copied().unwrap_or(0)),
    ));
    checks.push(Check::expect(
        PHASE,
        "other loop_error deltas",
        format!("{} ({})", unexpected.values().sum::<u64>(), super::list(&unexpected)),
        unexpected.is_empty(),
        "0 (reported, not enforced)",
    ));
    checks.push(Check::expect(
        PHASE,
        "error frames and failed runtime_starts",
        format!("{}{}", record.errors.len(), first(&record.errors)),
        record.errors.is_empty(),
        "0 (reported, not enforced)",
    ));
    checks
}

#[cfg(test)]
mod tests {
    use super::markers;

    #[test]
    fn markers_are_found_in_merged_batches() {
        let merged = r#"[{"type":"text","text":"chaos input <<k1-2>> [[chunks: 3]]"},{"type":"text","text":"\n"},{"type":"text","text":"chaos input <<k1-12>>"}]"#;
        assert_eq!(markers(merged), ["k1-2", "k1-12"]);
        assert!(markers("no marker <<unclosed").is_empty());
    }
}
