//! The witness: an ordinary client running ordinary turns next to the abusive ones. Every turn
//! must end with `end_turn`, every frame must match the schema, and its latency is compared
//! with a quiet baseline.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::SinkExt;
use letta_app_server_tests::schema::Schemas;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use super::wire::{self, Checker, FRAME_TIMEOUT, Socket};
use super::{Check, first};
use crate::bench::client;
use crate::bench::scenarios::Stats;

/// What the witness's turns ask for: a reply in a few chunks.
const TURN_TEXT: &str = "witness turn [[chunks: 4]]";
/// Pause between the witness's turns.
const PAUSE: Duration = Duration::from_millis(20);

/// What the witness saw.
#[derive(Debug, Default)]
pub struct Report {
    /// Turns that ended with `end_turn`, each with its latency (input sent → `turn_finished`), ms.
    pub latencies: Vec<f64>,
    /// Turns (or connections) that went wrong, and how.
    pub failures: Vec<String>,
    /// Frames that violated the schema or the `event_seq` sequence.
    pub violations: Vec<String>,
}

impl Report {
    /// Turns that finished well.
    pub fn completed(&self) -> usize {
        self.latencies.len()
    }

    /// Median, p99 and maximum of the latencies of the turns that finished well.
    pub fn latency(&self) -> Stats {
        Stats::of(self.latencies.clone())
    }
}

/// A witness running turns in the background until [`Running::finish`].
pub struct Running {
    stop: watch::Sender<bool>,
    task: JoinHandle<Report>,
}

impl Running {
    /// Stops the witness after its current turn and returns what it saw.
    pub async fn finish(self) -> Report {
        let _ = self.stop.send(true);
        self.task.await.unwrap_or_else(|error| Report {
            failures: vec![format!("the witness task failed: {error}")],
            ..Report::default()
        })
    }
}

/// Runs `turns` turns on a quiet server: the baseline.
pub async fn baseline(url: &str, schemas: Arc<Schemas>, turns: usize) -> Report {
    let (_stop, stopped) = watch::channel(false);
    run(url.to_owned(), schemas, Some(turns), stopped).await
}

/// Starts a witness that runs turns until it is finished.
pub fn spawn(url: &str, schemas: Arc<Schemas>) -> Running {
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(run(url.to_owned(), schemas, None, stopped));
    Running { stop, task }
}

async fn run(url: String, schemas: Arc<Schemas>, turns: Option<usize>, stopped: watch::Receiver<bool>) -> Report {
    let mut report = Report::default();
    let mut turn = 0;
    // A broken connection is a failure; the witness then connects again and goes on measuring.
    while !*stopped.borrow() && turns.is_none_or(|turns| turn < turns) {
        let mut checker = Checker::new(schemas.clone());
        let connected = match wire::connect(&url).await {
            Some(mut socket) => wire::create_runtime(&mut socket, &mut checker, "Witness")
                .await
                .map(|runtime| (socket, runtime)),
            None => Err("could not connect".to_owned()),
        };
        let (mut socket, runtime) = match connected {
            Ok(connected) => connected,
            Err(error) => {
                report.failures.push(format!("witness connection: {error}"));
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        while !*stopped.borrow() && turns.is_none_or(|turns| turn < turns) {
            turn += 1;
            let result = one_turn(&mut socket, &mut checker, &runtime, turn).await;
            match result {
                Ok(latency) => report.latencies.push(latency),
                Err(error) => {
                    report.failures.push(format!("witness turn {turn}: {error}"));
                    break;
                }
            }
            tokio::time::sleep(PAUSE).await;
        }
        report.violations.append(&mut checker.violations);
        let _ = socket.close(None).await;
    }
    report
}

/// One turn; its latency in ms, or what went wrong.
async fn one_turn(
    socket: &mut Socket,
    checker: &mut Checker,
    runtime: &serde_json::Value,
    turn: usize,
) -> Result<f64, String> {
    let id = format!("witness-{turn}");
    let frame = client::input(&id, runtime, TURN_TEXT, &id);
    let sent = Instant::now();
    socket
        .send(Message::text(frame.to_string()))
        .await
        .map_err(|e| format!("sending the input: {e}"))?;
    loop {
        let text = wire::next_text(socket, FRAME_TIMEOUT)
            .await
            .map_err(|e| e.to_string())?;
        let Some(frame) = checker.check(&text) else { continue };
        match frame["type"].as_str() {
            Some("input_accepted") if frame["accepted"] != true => return Err(format!("input refused: {text}")),
            Some("error") => return Err(format!("error frame: {}", wire::shorten(&text))),
            Some("turn_finished") => {
                return if frame["stop_reason"] == "end_turn" {
                    Ok(sent.elapsed().as_secs_f64() * 1000.0)
                } else {
                    Err(format!("turn ended with {}", wire::shorten(&text)))
                };
            }
            _ => {}
        }
    }
}

/// The witness's checks: every turn completed, every frame valid; latency against the baseline.
pub fn checks(phase: &'static str, baseline: &Report, under_load: &Report) -> Vec<Check> {
    let failures: Vec<String> = baseline.failures.iter().chain(&under_load.failures).cloned().collect();
    let violations: Vec<String> = baseline
        .violations
        .iter()
        .chain(&under_load.violations)
        .cloned()
        .collect();
    let total = baseline.completed() + under_load.completed() + failures.len();
    let (quiet, loaded) = (baseline.latency(), under_load.latency());
    vec![
        Check::hard(
            phase,
            "witness turns completed with end_turn",
            format!(
                "{} of {total} ({} quiet, {} during the abuse){}",
                baseline.completed() + under_load.completed(),
                baseline.completed(),
                under_load.completed(),
                first(&failures)
            ),
            failures.is_empty() && under_load.completed() > 0,
            "all",
        ),
        Check::hard(
            phase,
            "witness frames violating the schema or event_seq",
            format!("{}{}", violations.len(), first(&violations)),
            violations.is_empty(),
            "0",
        ),
        Check::info(
            phase,
            "witness turn latency p50 / p99, quiet",
            format!("{:.2} / {:.2} ms", quiet.median, quiet.p99),
        ),
        Check::info(
            phase,
            "witness turn latency p50 / p99 / max, during the abuse",
            format!("{:.2} / {:.2} / {:.1} ms", loaded.median, loaded.p99, loaded.max),
        ),
    ]
}
