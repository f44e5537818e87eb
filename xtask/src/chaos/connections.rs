//! Phase 3, connection abuse: thousands of connect/disconnect cycles, readers that stall in the
//! middle of a long reply, half-open HTTP requests, websockets that never say anything, and
//! garbage on the socket, all while the witness runs ordinary turns. Afterwards the server's open
//! files must come back to where they were.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::SinkExt;
use futures_util::future::join_all;
use letta_app_server_tests::schema::Schemas;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Mutex;
use tokio::task::JoinSet;
use tokio_tungstenite::MaybeTlsStream;
use tokio_tungstenite::tungstenite::Message;

use super::wire::{self, Checker, Ended, Socket};
use super::{Check, Scale, list, server_checks, witness};
use crate::bench::client;
use crate::bench::process::ServerProcess;
use crate::bench::report::thousands;

const PHASE: &str = "connections";

/// How long the server may take to close a connection it should close at once (garbage).
const PROMPT_CLOSE: Duration = Duration::from_secs(5);
/// How long the open files may take to come back to the baseline once the abusers left.
const SETTLE: Duration = Duration::from_secs(30);
/// Open files above the baseline still counted as "back".
const FD_SLACK: usize = 2;
/// Concurrent connect/disconnect loops.
const CYCLERS: usize = 8;
/// What each stalled reader asks for and never reads: about 10 MB of frames.
const STALLED_TEXT: &str = "stall [[deltas: 20000]]";

/// Runs the phase on a fresh server; the held connections stay open for `hold`.
pub async fn run(
    binary: &Path,
    schemas: Arc<Schemas>,
    seed: u64,
    scale: Scale,
    hold: Duration,
) -> Result<Vec<Check>, String> {
    let mut server = ServerProcess::start(binary, &[]).await?;
    let address = server
        .url
        .trim_start_matches("ws://")
        .split('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    let baseline = witness::baseline(&server.url, schemas.clone(), scale.count(100)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (base_fds, base_rss) = (server.open_files()?, server.memory()?.rss);
    let peak_reset = server.reset_peak();
    let witness = witness::spawn(&server.url, schemas.clone());
    let peak_fds = Arc::new(AtomicUsize::new(base_fds));
    let sampler = sample_open_files(server.pid, peak_fds.clone());

    // The held connections, opened first, then the cycles and the garbage.
    let held_at = Instant::now();
    let (stalled, stalled_failures) = open_stalled_readers(&server.url, &schemas, scale.count(20)).await;
    let mut silent = Vec::new();
    for _ in 0..scale.count(50) {
        if let Some(socket) = wire::connect(&server.url).await {
            silent.push(socket);
        }
    }
    let mut half_open = Vec::new();
    for _ in 0..scale.count(50) {
        if let Ok(mut stream) = TcpStream::connect(&address).await
            && stream
                .write_all(b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n")
                .await
                .is_ok()
        {
            half_open.push(stream);
        }
    }
    let cycles = scale.count(5_000);
    let cycle_tally = Arc::new(Mutex::new(CycleTally::default()));
    let mut tasks = JoinSet::new();
    for index in 0..CYCLERS {
        let count = cycles / CYCLERS + usize::from(index < cycles % CYCLERS);
        let rng = StdRng::seed_from_u64(seed ^ (0x3000 + index as u64));
        tasks.spawn(cycle(
            server.url.clone(),
            address.clone(),
            count,
            rng,
            cycle_tally.clone(),
        ));
    }
    let garbage = scale.count(200);
    let garbage_rng = StdRng::seed_from_u64(seed ^ 0x4000);
    let garbage_result = send_garbage(&server.url, &address, garbage, garbage_rng).await;
    let garbage_time = held_at.elapsed();
    while tasks.join_next().await.is_some() {}
    let cycles_time = held_at.elapsed();
    let busy = held_at.elapsed();
    tokio::time::sleep(hold.saturating_sub(busy)).await;
    let held_for = held_at.elapsed();

    // Which held connections did the server close by itself?
    let fds_held = server.open_files()?;
    let stalled_count = stalled.len();
    let stalled_closed = tally(
        join_all(stalled.into_iter().map(|mut socket| async move {
            let how = closed_how(&mut socket).await;
            let _ = socket.close(None).await;
            how
        }))
        .await,
    );
    let silent_count = silent.len();
    let silent_closed = tally(
        join_all(
            silent
                .into_iter()
                .map(|mut socket| async move { closed_how(&mut socket).await }),
        )
        .await,
    );
    let half_open_count = half_open.len();
    let half_open_closed = tally(
        join_all(
            half_open
                .into_iter()
                .map(|mut stream| async move { tcp_closed_how(&mut stream).await }),
        )
        .await,
    );

    // Everyone has left: the open files must come back.
    let released = Instant::now();
    let mut fds_after = server.open_files()?;
    while fds_after > base_fds + FD_SLACK && released.elapsed() < SETTLE {
        tokio::time::sleep(Duration::from_millis(200)).await;
        fds_after = server.open_files()?;
    }
    let settle_time = released.elapsed();
    let under_abuse = witness.finish().await;
    sampler.abort();
    let memory = server.memory()?;
    let mut checks = server_checks(PHASE, &mut server);
    let _ = server.stop().await;

    let cycles = cycle_tally.lock().await;
    checks.push(Check::hard(
        PHASE,
        "connect/disconnect cycles that failed",
        format!(
            "{} of {} in {:.0} s, {} at a time ({}){}",
            cycles.failures.len(),
            thousands(cycles.done),
            cycles_time.as_secs_f64(),
            CYCLERS,
            list(&cycles.by_behaviour),
            super::first(&cycles.failures)
        ),
        cycles.failures.is_empty(),
        "0",
    ));
    let (garbage_closed, garbage_open) = garbage_result;
    checks.push(Check::expect(
        PHASE,
        "garbage connections the server closed within 5 s",
        format!(
            "{garbage_closed} of {} (one after another, in {:.0} s)",
            garbage_closed + garbage_open,
            garbage_time.as_secs_f64()
        ),
        garbage_open == 0,
        "all (reported, not enforced)",
    ));
    checks.push(Check::info(
        PHASE,
        format!(
            "stalled readers ({STALLED_TEXT:?}, never read) the server closed within {:.0} s",
            held_for.as_secs_f64()
        ),
        format!(
            "{} of {stalled_count}{}",
            closed_count(&stalled_closed),
            describe(&stalled_closed, &stalled_failures)
        ),
    ));
    checks.push(Check::info(
        PHASE,
        format!(
            "silent websockets the server closed within {:.0} s",
            held_for.as_secs_f64()
        ),
        format!(
            "{} of {silent_count}{}",
            closed_count(&silent_closed),
            describe(&silent_closed, &[])
        ),
    ));
    checks.push(Check::info(
        PHASE,
        format!(
            "half-open HTTP requests the server closed within {:.0} s",
            held_for.as_secs_f64()
        ),
        format!(
            "{} of {half_open_count}{}",
            closed_count(&half_open_closed),
            describe(&half_open_closed, &[])
        ),
    ));
    checks.push(Check::hard(
        PHASE,
        "server open files: baseline → peak → held → after the abusers left",
        format!(
            "{base_fds} → {} → {fds_held} → {fds_after} (after {:.1} s)",
            peak_fds.load(Ordering::Relaxed).max(fds_held),
            settle_time.as_secs_f64()
        ),
        fds_after <= base_fds + FD_SLACK,
        &format!("back to ≤ baseline + {FD_SLACK} within {} s", SETTLE.as_secs()),
    ));
    let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    checks.push(Check::info(
        PHASE,
        "server RSS: baseline → peak (VmHWM) → after",
        format!(
            "{:.1} → {:.1}{} → {:.1} MiB",
            mib(base_rss),
            mib(memory.peak),
            if peak_reset { "" } else { " (since start)" },
            mib(memory.rss)
        ),
    ));
    checks.extend(witness::checks(PHASE, &baseline, &under_abuse));
    Ok(checks)
}

/// Records the largest open-file count of `pid` every 100 ms until aborted.
fn sample_open_files(pid: u32, peak: Arc<AtomicUsize>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
                peak.fetch_max(entries.count(), Ordering::Relaxed);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
}

/// Readers that start a long reply and never read it; also what went wrong opening them.
async fn open_stalled_readers(url: &str, schemas: &Arc<Schemas>, count: usize) -> (Vec<Socket>, Vec<String>) {
    let (mut sockets, mut failures) = (Vec::new(), Vec::new());
    for index in 0..count {
        let Some(mut socket) = wire::connect(url).await else {
            failures.push("could not connect".to_owned());
            continue;
        };
        let mut checker = Checker::new(schemas.clone());
        match wire::create_runtime(&mut socket, &mut checker, &format!("Stalled {index}")).await {
            Ok(runtime) => {
                let id = format!("stall-{index}");
                let input = client::input(&id, &runtime, STALLED_TEXT, &id);
                if socket.send(Message::text(input.to_string())).await.is_ok() {
                    sockets.push(socket);
                }
            }
            Err(error) => failures.push(error),
        }
    }
    (sockets, failures)
}

/// Whether the server closed a websocket: reads what is buffered until the close, an error,
/// or a second of silence (`open`).
async fn closed_how(socket: &mut Socket) -> String {
    loop {
        match wire::next_text(socket, Duration::from_secs(1)).await {
            Ok(_) => {}
            Err(Ended::Silent(_)) => return "open".into(),
            Err(Ended::Closed(how)) => return format!("closed {how}"),
            Err(Ended::Failed(error)) => return format!("failed: {error}"),
        }
    }
}

/// Whether the server closed a raw TCP connection: end of stream, a reset, or an answer.
async fn tcp_closed_how(stream: &mut TcpStream) -> String {
    let mut buffer = vec![0; 4096];
    match tokio::time::timeout(Duration::from_secs(1), stream.read(&mut buffer)).await {
        Err(_) => "open".into(),
        Ok(Ok(0)) => "closed".into(),
        Ok(Ok(read)) => {
            let answer = String::from_utf8_lossy(&buffer[..read]);
            format!("answered {:?}", answer.lines().next().unwrap_or_default())
        }
        Ok(Err(error)) => format!("failed: {}", error.kind()),
    }
}

/// How many of each outcome.
fn tally(outcomes: Vec<String>) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for outcome in outcomes {
        *counts.entry(outcome).or_default() += 1;
    }
    counts
}

fn closed_count(outcomes: &BTreeMap<String, u64>) -> u64 {
    outcomes
        .iter()
        .filter(|(how, _)| how.as_str() != "open")
        .map(|(_, count)| count)
        .sum()
}

fn describe(outcomes: &BTreeMap<String, u64>, failures: &[String]) -> String {
    let mut out = format!(" ({})", list(outcomes));
    if !failures.is_empty() {
        out.push_str(&format!(
            "; {} could not be opened{}",
            failures.len(),
            super::first(failures)
        ));
    }
    out
}

/// What the connect/disconnect cycles did.
#[derive(Debug, Default)]
struct CycleTally {
    done: u64,
    by_behaviour: BTreeMap<&'static str, u64>,
    failures: Vec<String>,
}

/// `count` connections, each doing one random short thing and leaving.
async fn cycle(url: String, address: String, count: usize, mut rng: StdRng, tally: Arc<Mutex<CycleTally>>) {
    const BEHAVIOURS: [&str; 6] = [
        "close handshake",
        "dropped at once",
        "app_server_info then dropped",
        "runtime_start then dropped unread",
        "TCP connect only",
        "GET /healthz",
    ];
    for _ in 0..count {
        let behaviour = rng.random_range(0..BEHAVIOURS.len());
        let result = match behaviour {
            0..=3 => match wire::connect(&url).await {
                None => Err("could not connect".to_owned()),
                Some(mut socket) => websocket_cycle(&mut socket, behaviour).await,
            },
            4 => TcpStream::connect(&address).await.map(drop).map_err(|e| e.to_string()),
            _ => healthz(&address).await,
        };
        let mut tally = tally.lock().await;
        tally.done += 1;
        *tally.by_behaviour.entry(BEHAVIOURS[behaviour]).or_default() += 1;
        if let Err(error) = result {
            tally.failures.push(format!("{}: {error}", BEHAVIOURS[behaviour]));
        }
    }
}

async fn websocket_cycle(socket: &mut Socket, behaviour: usize) -> Result<(), String> {
    match behaviour {
        0 => {
            socket.close(None).await.map_err(|e| e.to_string())?;
            // The server's close frame, then the end.
            match wire::next_text(socket, wire::FRAME_TIMEOUT).await {
                Err(Ended::Closed(_) | Ended::Failed(_)) => Ok(()),
                Err(Ended::Silent(_)) => Err("no answer to the close handshake".into()),
                Ok(text) => Err(format!("a frame after the close: {}", wire::shorten(&text))),
            }
        }
        1 => Ok(()),
        2 => {
            let info = json!({"type": "app_server_info", "request_id": "cycle"}).to_string();
            socket.send(Message::text(info)).await.map_err(|e| e.to_string())?;
            wire::next_text(socket, wire::FRAME_TIMEOUT)
                .await
                .map(drop)
                .map_err(|e| e.to_string())
        }
        _ => {
            let start =
                json!({"type": "runtime_start", "request_id": "cycle", "create_agent": {"body": {"name": "Cycle"}}});
            socket
                .send(Message::text(start.to_string()))
                .await
                .map_err(|e| e.to_string())
        }
    }
}

async fn healthz(address: &str) -> Result<(), String> {
    let mut stream = TcpStream::connect(address).await.map_err(|e| e.to_string())?;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await
        .map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    tokio::time::timeout(wire::FRAME_TIMEOUT, stream.read_to_end(&mut answer))
        .await
        .map_err(|_| "no answer".to_owned())?
        .map_err(|e| e.to_string())?;
    if answer.starts_with(b"HTTP/1.1 200") {
        Ok(())
    } else {
        Err(format!("answered {:?}", String::from_utf8_lossy(&answer)))
    }
}

/// `count` connections that send garbage: random bytes instead of HTTP, or random bytes
/// instead of websocket frames after the handshake. Returns how many the server closed within
/// [`PROMPT_CLOSE`] and how many it left open.
async fn send_garbage(url: &str, address: &str, count: usize, mut rng: StdRng) -> (u64, u64) {
    let (mut closed, mut open) = (0, 0);
    for _ in 0..count {
        let mut garbage = vec![0u8; rng.random_range(1..4096)];
        rng.fill(&mut garbage[..]);
        let closed_in_time = if rng.random_bool(0.5) {
            let Ok(mut stream) = TcpStream::connect(address).await else {
                open += 1;
                continue;
            };
            let _ = stream.write_all(&garbage).await;
            let mut sink = Vec::new();
            tokio::time::timeout(PROMPT_CLOSE, stream.read_to_end(&mut sink))
                .await
                .is_ok()
        } else {
            let Some(mut socket) = wire::connect(url).await else {
                open += 1;
                continue;
            };
            if let MaybeTlsStream::Plain(stream) = socket.get_mut() {
                let _ = stream.write_all(&garbage).await;
            }
            loop {
                match wire::next_text(&mut socket, PROMPT_CLOSE).await {
                    Ok(_) => {}
                    Err(Ended::Silent(_)) => break false,
                    Err(_) => break true,
                }
            }
        };
        if closed_in_time {
            closed += 1;
        } else {
            open += 1;
        }
    }
    (closed, open)
}
