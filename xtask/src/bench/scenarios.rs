//! The measurements, each run against a real server process over real sockets.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use letta_app_server_mock_llm::{Directives, MockServer};
use serde_json::Value;
use tokio::task::JoinSet;

use super::BenchResult;
use super::client::{self, Client, Received};
use super::process::{ServerProcess, clock_ticks_per_second};
use super::report::{Row, Unit, thousands};

/// `runtime_start`s measured (after [`WARMUP`] unmeasured ones).
const RUNTIME_STARTS: usize = 200;
/// Unmeasured operations before each latency series.
const WARMUP: usize = 10;
/// Runtimes the short turns are spread over, and turns on each.
const SHORT_TURN_RUNTIMES: usize = 10;
const SHORT_TURNS_EACH: usize = 20;
/// The short turn's user text: a one-chunk reply from either model.
const SHORT_TEXT: &str = "hello [[reply: Hello!]]";
/// Chunks of the long reply, and how often it is repeated (to average out the 10 ms
/// resolution of the CPU counters).
const LONG_DELTAS: usize = 10_000;
const LONG_REPEATS: usize = 5;
/// When the long reply cannot be streamed in one turn: turns of this many chunks instead.
const FALLBACK_DELTAS: usize = 400;
/// The concurrency test: runtimes, those of them that stream, sockets they share, chunks per
/// reply, pause between chunks.
const SCALE_RUNTIMES: usize = 10_000;
const SCALE_STREAMING: usize = 1_000;
const SCALE_SOCKETS: usize = 100;
const SCALE_DELTAS: usize = 50;
const SCALE_DELAY_MS: u64 = 50;
/// The first chunks of each reply, streamed while the other runtimes' turns are still starting,
/// are also left out of a second set of percentiles.
const RAMP_DELTAS: usize = 5;
/// How often the resident set is sampled during the concurrency test.
const RSS_SAMPLE_EVERY: Duration = Duration::from_millis(25);

const MIB: f64 = 1024.0 * 1024.0;

/// Which model the agents use.
#[derive(Debug, Clone, Copy)]
pub struct Provider {
    /// Name in the table.
    pub name: &'static str,
    /// The agent's model handle (`None`: the server's scripted model).
    pub model: Option<&'static str>,
}

/// The scripted model built into the server.
pub const SCRIPTED: Provider = Provider {
    name: "scripted",
    model: None,
};

/// The OpenAI-compatible provider (`llama.cpp/…` handles) against the in-process mock.
pub const OPENAI: Provider = Provider {
    name: "openai-compatible",
    model: Some("llama.cpp/bench-model"),
};

/// Everything a scenario needs.
pub struct Bench<'a> {
    /// The release server binary.
    pub binary: &'a Path,
    /// The local Chat Completions server.
    pub mock: Arc<MockServer<Directives>>,
    /// Rows measured so far.
    pub rows: Vec<Row>,
    /// Observations for the notes under the table.
    pub notes: Vec<String>,
}

impl Bench<'_> {
    async fn server(&self) -> BenchResult<ServerProcess> {
        ServerProcess::start(self.binary, &[("LLAMA_CPP_BASE_URL", self.mock.base_url.clone())]).await
    }

    pub(crate) async fn stop(&mut self, server: ServerProcess) {
        if let Err(error) = server.stop().await {
            self.notes.push(error);
        }
    }

    /// Idle memory, `runtime_start` latency, short turns, wire bytes and the long reply, on one
    /// server.
    pub async fn single_runtime_suite(&mut self, provider: Provider) -> BenchResult<()> {
        let server = self.server().await?;
        let result = self.single_runtime_measurements(provider, &server).await;
        self.stop(server).await;
        result
    }

    async fn single_runtime_measurements(&mut self, provider: Provider, server: &ServerProcess) -> BenchResult<()> {
        let name = provider.name;
        let mut client = Client::connect(&server.url).await?;
        let first = client::start_runtime(&mut client, "rs-idle", provider.model).await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let idle = server.memory()?;
        self.rows.push(
            Row::new(
                "RSS idle (after start + one runtime)",
                name,
                idle.rss as f64 / MIB,
                Unit::Mib,
                Some(15.0),
            )
            .detail(format!(
                "{} anonymous, the rest mostly the binary's code pages",
                Unit::Mib.show(idle.anon as f64 / MIB)
            ))
            .letta("254 MiB"),
        );

        // 1. runtime_start for a new agent and conversation.
        let mut responses = Vec::with_capacity(RUNTIME_STARTS);
        let mut replays = Vec::with_capacity(RUNTIME_STARTS);
        for index in 0..WARMUP + RUNTIME_STARTS {
            let started = client::start_runtime(&mut client, &format!("rs-{index}"), provider.model).await?;
            if index >= WARMUP {
                responses.push(millis(started.response));
                replays.push(millis(started.replayed));
            }
        }
        let (responses, replays) = (Stats::of(responses), Stats::of(replays));
        self.rows.push(
            Row::new(
                "runtime_start (new agent + conversation) → response, median",
                name,
                responses.median,
                Unit::Millis,
                Some(5.0),
            )
            .detail(format!("p99 {}", Unit::Millis.show(responses.p99)))
            .letta("232 ms"),
        );
        self.rows.push(
            Row::new(
                "runtime_start → replay complete, median",
                name,
                replays.median,
                Unit::Millis,
                None,
            )
            .detail(format!("p99 {}", Unit::Millis.show(replays.p99))),
        );

        // 2 and 4. Short turns: latency and bytes on the wire.
        let mut runtimes = vec![first.runtime];
        for index in 1..SHORT_TURN_RUNTIMES {
            runtimes.push(
                client::start_runtime(&mut client, &format!("rs-short-{index}"), provider.model)
                    .await?
                    .runtime,
            );
        }
        for index in 0..WARMUP {
            short_turn(&mut client, &runtimes[0], &format!("warm-{index}")).await?;
        }
        let mut first_delta = Vec::new();
        let mut finished = Vec::new();
        let mut bytes = Vec::new();
        let mut frames = Vec::new();
        let mut sizes = Vec::new();
        let mut first_turn_bytes = Vec::new();
        let ticks_before = server.cpu_ticks()?;
        for turn in 0..SHORT_TURNS_EACH {
            for (index, runtime) in runtimes.iter().enumerate() {
                let measured = short_turn(&mut client, runtime, &format!("short-{index}-{turn}")).await?;
                // Every runtime but the first (which had the warm-up turns) starts fresh.
                if turn == 0 && index > 0 {
                    first_turn_bytes.push(measured.bytes as f64);
                }
                first_delta.push(millis(measured.first_delta));
                finished.push(millis(measured.finished));
                bytes.push(measured.bytes as f64);
                frames.push(measured.frames as f64);
                sizes = measured.sizes;
            }
        }
        let short_turns = finished.len();
        let ticks = server.cpu_ticks()?.saturating_sub(ticks_before);
        self.notes.push(format!(
            "{name}: the bytes of a short turn, by frame: {}",
            breakdown(&sizes)
        ));
        let (first_delta, finished) = (Stats::of(first_delta), Stats::of(finished));
        let (bytes, frames) = (Stats::of(bytes), Stats::of(frames));
        self.rows.push(
            Row::new(
                "short turn: input → first assistant delta, median",
                name,
                first_delta.median,
                Unit::Millis,
                None,
            )
            .detail(format!("p99 {}", Unit::Millis.show(first_delta.p99))),
        );
        self.rows.push(
            Row::new(
                "short turn: input → turn_finished, median",
                name,
                finished.median,
                Unit::Millis,
                Some(2.0),
            )
            .detail(format!("p99 {}", Unit::Millis.show(finished.p99)))
            .letta("41 ms"),
        );
        self.rows.push(
            Row::new(
                "short turn: wire bytes (sent + received)",
                name,
                bytes.median,
                Unit::Bytes,
                Some(6000.0),
            )
            .detail(format!(
                "{} frames; a conversation's first turn: {}",
                frames.median,
                Unit::Bytes.show(Stats::of(first_turn_bytes).median)
            ))
            .letta("21.6 KB"),
        );
        self.rows.push(
            Row::new(
                "short turn: server CPU per turn",
                name,
                ticks_to_micros(ticks) / 1000.0 / short_turns as f64,
                Unit::Millis,
                None,
            )
            .detail(format!("{ticks} ticks / {short_turns} turns")),
        );

        // 3 and 5. The long reply.
        let runtime = client::start_runtime(&mut client, "rs-long", provider.model)
            .await?
            .runtime;
        self.long_reply(provider, server, client, runtime).await
    }

    /// The long reply: [`LONG_REPEATS`] replies of [`LONG_DELTAS`] chunks; when the server
    /// cannot stream one, the same number of chunks in turns of [`FALLBACK_DELTAS`].
    async fn long_reply(
        &mut self,
        provider: Provider,
        server: &ServerProcess,
        mut client: Client,
        runtime: Value,
    ) -> BenchResult<()> {
        let name = provider.name;
        let metric = format!("{}-delta reply", thousands(LONG_DELTAS as u64));
        let peak_resettable = server.reset_peak();
        let ticks_before = server.cpu_ticks()?;
        let mut rates = Vec::new();
        let mut failure = None;
        for repeat in 0..LONG_REPEATS {
            match long_turn(&mut client, &runtime, &format!("long-{repeat}"), LONG_DELTAS).await {
                Ok(elapsed) => rates.push(LONG_DELTAS as f64 / elapsed.as_secs_f64()),
                Err(error) => {
                    failure = Some(error);
                    break;
                }
            }
        }
        let mut ticks = server.cpu_ticks()?.saturating_sub(ticks_before);
        let mut deltas = LONG_DELTAS * LONG_REPEATS;
        let mut what = metric.clone();
        match failure {
            None => self.rows.push(
                Row::new(
                    &format!("{metric}: deltas/s (input → turn_finished), median"),
                    name,
                    Stats::of(rates).median,
                    Unit::PerSecond,
                    None,
                )
                .detail(format!("{LONG_REPEATS} replies")),
            ),
            Some(error) => {
                self.rows.push(Row::failed(
                    &format!("{metric}: deltas/s"),
                    name,
                    "could not be streamed (see the notes)",
                    None,
                ));
                let turns = deltas / FALLBACK_DELTAS;
                self.notes.push(format!(
                    "{name}: a {}-delta reply could not be streamed: {error}. The CPU per delta comes from \
                     {turns} turns of {FALLBACK_DELTAS} deltas instead (per-turn costs included).",
                    thousands(LONG_DELTAS as u64),
                ));
                let mut client = Client::connect(&server.url).await?;
                let runtime = client::start_runtime(&mut client, "rs-long-turns", provider.model)
                    .await?
                    .runtime;
                let ticks_before = server.cpu_ticks()?;
                let started = Instant::now();
                for turn in 0..turns {
                    long_turn(&mut client, &runtime, &format!("long-turn-{turn}"), FALLBACK_DELTAS).await?;
                }
                let elapsed = started.elapsed();
                ticks = server.cpu_ticks()?.saturating_sub(ticks_before);
                deltas = turns * FALLBACK_DELTAS;
                what = format!("{turns} × {FALLBACK_DELTAS}-delta turns instead");
                self.rows.push(
                    Row::new(
                        &format!("{what}: deltas/s"),
                        name,
                        deltas as f64 / elapsed.as_secs_f64(),
                        Unit::PerSecond,
                        None,
                    )
                    .detail("input of the first → turn_finished of the last"),
                );
                client.close().await;
            }
        }
        self.rows.push(
            Row::new(
                &format!("{what}: server CPU per delta"),
                name,
                ticks_to_micros(ticks) / deltas as f64,
                Unit::Micros,
                Some(5.0),
            )
            .detail(format!("{ticks} ticks / {} deltas", thousands(deltas as u64)))
            .letta("0.55 ms"),
        );
        let peak = server.memory()?.peak;
        let label = if peak_resettable {
            "RSS peak during the long reply (VmHWM)"
        } else {
            "RSS peak since start, long reply included (VmHWM)"
        };
        self.rows
            .push(Row::new(label, name, peak as f64 / MIB, Unit::Mib, Some(30.0)));
        // After the peak: the resuming client's reply keeps its last 10,000 events.
        if deltas == LONG_DELTAS * LONG_REPEATS {
            self.resumable_reply(provider, &metric, server, &mut client).await?;
        }
        client.close().await;
        Ok(())
    }

    /// The long reply again, to a client that subscribed with `resume_after`: each event is
    /// numbered, retained, and written to the store before that client gets it.
    async fn resumable_reply(
        &mut self,
        provider: Provider,
        metric: &str,
        server: &ServerProcess,
        client: &mut Client,
    ) -> BenchResult<()> {
        let name = provider.name;
        let runtime = client::start_resumable_runtime(client, "rs-long-resumable", provider.model)
            .await?
            .runtime;
        let ticks_before = server.cpu_ticks()?;
        let mut rates = Vec::new();
        for repeat in 0..LONG_REPEATS {
            let elapsed = long_turn(client, &runtime, &format!("long-resumable-{repeat}"), LONG_DELTAS).await?;
            rates.push(LONG_DELTAS as f64 / elapsed.as_secs_f64());
        }
        let ticks = server.cpu_ticks()?.saturating_sub(ticks_before);
        let deltas = LONG_DELTAS * LONG_REPEATS;
        self.rows.push(
            Row::new(
                &format!("{metric}, resumable stream: deltas/s, median"),
                name,
                Stats::of(rates).median,
                Unit::PerSecond,
                None,
            )
            .detail("subscribed with `resume_after`: every event numbered, kept and stored before it is sent"),
        );
        self.rows.push(
            Row::new(
                &format!("{metric}, resumable stream: server CPU per delta"),
                name,
                ticks_to_micros(ticks) / deltas as f64,
                Unit::Micros,
                None,
            )
            .detail(format!("{ticks} ticks / {} deltas", thousands(deltas as u64))),
        );
        Ok(())
    }

    /// 1,000 runtimes streaming at once: per-delta latency and memory, on a fresh server.
    pub async fn scale_suite(&mut self, provider: Provider) -> BenchResult<()> {
        let server = self.server().await?;
        let result = self.scale_measurements(provider, &server).await;
        self.stop(server).await;
        result
    }

    async fn scale_measurements(&mut self, provider: Provider, server: &ServerProcess) -> BenchResult<()> {
        let name = provider.name;
        let per_socket = SCALE_RUNTIMES / SCALE_SOCKETS;
        let streaming_per_socket = SCALE_STREAMING / SCALE_SOCKETS;
        let empty = server.memory()?;
        let setup = Instant::now();
        let mut tasks = JoinSet::new();
        for socket in 0..SCALE_SOCKETS {
            let url = server.url.clone();
            tasks.spawn(async move {
                let mut client = Client::connect(&url).await?;
                let mut runtimes = Vec::with_capacity(per_socket);
                for index in 0..per_socket {
                    let id = format!("rs-{socket}-{index}");
                    runtimes.push(client::start_runtime(&mut client, &id, provider.model).await?.runtime);
                }
                Ok::<_, String>((client, runtimes))
            });
        }
        let mut sockets = Vec::with_capacity(SCALE_SOCKETS);
        while let Some(joined) = tasks.join_next().await {
            sockets.push(joined.map_err(|e| format!("a setup task failed: {e}"))??);
        }
        let setup = setup.elapsed();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let idle = server.memory()?;
        let peak_resettable = server.reset_peak();
        let ticks_before = server.cpu_ticks()?;

        let sampler = RssSampler::start(server.pid);
        let own_ticks_before = own_cpu_ticks()?;
        let started = Instant::now();
        // Inputs are spread evenly over one chunk interval, so that the streams are not in step.
        let spacing = Duration::from_millis(SCALE_DELAY_MS) / SCALE_STREAMING as u32;
        let first_input = tokio::time::Instant::now() + Duration::from_millis(10);
        let mut streams = JoinSet::new();
        for (socket, (client, mut runtimes)) in sockets.into_iter().enumerate() {
            // The others stay subscribed on the same socket, idle.
            runtimes.truncate(streaming_per_socket);
            let offsets = (0..runtimes.len())
                .map(|index| first_input + spacing * (socket + index * SCALE_SOCKETS) as u32)
                .collect();
            streams.spawn(stream_replies(
                client,
                runtimes,
                offsets,
                socket,
                provider,
                self.mock.clone(),
            ));
        }
        let mut latencies = Vec::with_capacity(SCALE_STREAMING * SCALE_DELTAS);
        let mut failures = Vec::new();
        while let Some(joined) = streams.join_next().await {
            match joined
                .map_err(|e| format!("a streaming task failed: {e}"))
                .and_then(|r| r)
            {
                Ok(measured) => latencies.extend(measured),
                Err(error) => failures.push(error),
            }
        }
        let elapsed = started.elapsed();
        let ticks = server.cpu_ticks()?.saturating_sub(ticks_before);
        let own_ticks = own_cpu_ticks()?.saturating_sub(own_ticks_before);
        let sampled_peak = sampler.stop().await;
        let memory = server.memory()?;
        let peak = if peak_resettable {
            memory.peak
        } else {
            sampled_peak.max(memory.rss)
        };

        let deltas = latencies.len();
        let expected = SCALE_STREAMING * SCALE_DELTAS;
        let runtimes = thousands(SCALE_RUNTIMES as u64);
        self.rows.push(
            Row::new(
                &format!("{runtimes} runtimes: setup ({SCALE_SOCKETS} sockets, runtime_starts)"),
                name,
                millis(setup),
                Unit::Millis,
                None,
            )
            .detail(format!(
                "RSS {} before, {} after",
                Unit::Mib.show(empty.rss as f64 / MIB),
                Unit::Mib.show(idle.rss as f64 / MIB)
            )),
        );
        self.rows.push(
            Row::new(
                &format!("{runtimes} idle runtimes: RSS per runtime"),
                name,
                idle.rss.saturating_sub(empty.rss) as f64 / SCALE_RUNTIMES as f64,
                Unit::Bytes,
                Some(4096.0),
            )
            .detail(format!(
                "(RSS after the runtime_starts − before) / runtimes; anonymous only: {}",
                Unit::Bytes.show(idle.anon.saturating_sub(empty.anon) as f64 / SCALE_RUNTIMES as f64)
            )),
        );
        let label = format!(
            "{} of {runtimes} runtimes × {SCALE_DELTAS} deltas",
            thousands(SCALE_STREAMING as u64)
        );
        if deltas == 0 {
            let why = failures.first().cloned().unwrap_or_else(|| "no deltas".into());
            self.rows
                .push(Row::failed(&format!("{label}: per-delta latency"), name, &why, None));
            return Ok(());
        }
        let steady = Stats::of(
            latencies
                .iter()
                .filter(|latency| latency.position > RAMP_DELTAS)
                .map(|latency| latency.millis)
                .collect(),
        );
        let latency = Stats::of(latencies.into_iter().map(|latency| latency.millis).collect());
        let method = if provider.model.is_some() {
            "mock send → client receive"
        } else {
            "delta date → client receive, ≤ 1 ms high"
        };
        self.rows.push(
            Row::new(
                &format!("{label}: per-delta latency p50"),
                name,
                latency.median,
                Unit::Millis,
                None,
            )
            .detail(method),
        );
        self.rows.push(
            Row::new(
                &format!("{label}: per-delta latency p99"),
                name,
                latency.p99,
                Unit::Millis,
                Some(10.0),
            )
            .detail(format!(
                "max {}; without each reply's first {RAMP_DELTAS}: p50 {}, p99 {}",
                Unit::Millis.show(latency.max),
                Unit::Millis.show(steady.median),
                Unit::Millis.show(steady.p99)
            )),
        );
        self.rows.push(
            Row::new(
                &format!("{label}: RSS peak while streaming"),
                name,
                peak as f64 / MIB,
                Unit::Mib,
                None,
            )
            .detail(format!(
                "{} deltas in {:.2} s, {} /s",
                thousands(deltas as u64),
                elapsed.as_secs_f64(),
                thousands((deltas as f64 / elapsed.as_secs_f64()) as u64)
            )),
        );
        self.rows.push(
            Row::new(
                &format!("{label}: server CPU per delta"),
                name,
                ticks_to_micros(ticks) / deltas as f64,
                Unit::Micros,
                None,
            )
            .detail(format!(
                "whole turns; the server's CPU was {:.0} % of the phase's time (one runtime thread, \
                 the store's beside it); the benchmark's clients and mock used {} per delta",
                ticks_to_micros(ticks) / (elapsed.as_secs_f64() * 1e4),
                Unit::Micros.show(ticks_to_micros(own_ticks) / deltas as f64)
            )),
        );
        if deltas < expected || !failures.is_empty() {
            self.notes.push(format!(
                "{name}: the concurrency test received {} of {} deltas; {} socket(s) failed{}",
                thousands(deltas as u64),
                thousands(expected as u64),
                failures.len(),
                failures.first().map(|f| format!(", e.g. {f}")).unwrap_or_default()
            ));
        }
        Ok(())
    }
}

/// What one short turn took.
struct ShortTurn {
    first_delta: Duration,
    finished: Duration,
    bytes: usize,
    frames: usize,
    /// Each frame's type (`stream_delta` with its message type) and length, the input first.
    sizes: Vec<(String, usize)>,
}

/// Sends a short input and reads until `turn_finished`.
async fn short_turn(client: &mut Client, runtime: &Value, id: &str) -> BenchResult<ShortTurn> {
    let sent = Instant::now();
    let mut bytes = client.send(&client::input(id, runtime, SHORT_TEXT, id)).await?;
    let mut sizes = vec![("input (sent)".to_owned(), bytes)];
    let mut first_delta = None;
    let mut frames = 0;
    loop {
        let frame = client.recv().await?;
        bytes += frame.text.len();
        frames += 1;
        let kind = match frame.frame_type() {
            "stream_delta" => frame
                .lite()?
                .delta
                .and_then(|delta| delta.message_type.map(|kind| kind.into_owned()))
                .unwrap_or_else(|| "stream_delta".into()),
            other => other.to_owned(),
        };
        if first_delta.is_none() && kind == "assistant_message" {
            first_delta = Some(frame.at - sent);
        }
        sizes.push((kind, frame.text.len()));
        if frame.frame_type() == "turn_finished" {
            check_finished(&frame)?;
            return Ok(ShortTurn {
                first_delta: first_delta.ok_or("a short turn finished without an assistant delta")?,
                finished: frame.at - sent,
                bytes,
                frames,
                sizes,
            });
        }
    }
}

/// Streams a reply of `deltas` chunks; returns the time from input to `turn_finished`.
pub(crate) async fn long_turn(client: &mut Client, runtime: &Value, id: &str, deltas: usize) -> BenchResult<Duration> {
    let sent = Instant::now();
    client
        .send(&client::input(id, runtime, &format!("long [[deltas: {deltas}]]"), id))
        .await?;
    let mut received = 0;
    loop {
        let frame = client.recv().await.map_err(|e| {
            format!(
                "{e}, after {} of {} deltas",
                thousands(received),
                thousands(deltas as u64)
            )
        })?;
        match frame.frame_type() {
            "stream_delta" => received += u64::from(frame.lite()?.delta.is_some_and(|delta| delta.is_assistant())),
            "turn_finished" => {
                check_finished(&frame)?;
                if received != deltas as u64 {
                    return Err(format!("the turn finished after {received} of {deltas} deltas"));
                }
                return Ok(frame.at - sent);
            }
            _ => {}
        }
    }
}

/// `a 120 B, b 2 × 300 B, …` in order of first appearance.
fn breakdown(sizes: &[(String, usize)]) -> String {
    let mut kinds: Vec<(&str, usize, usize)> = Vec::new();
    for (kind, size) in sizes {
        match kinds.iter_mut().find(|(known, ..)| known == kind) {
            Some((_, count, total)) => {
                *count += 1;
                *total += size;
            }
            None => kinds.push((kind, 1, *size)),
        }
    }
    let parts: Vec<String> = kinds
        .iter()
        .map(|(kind, count, total)| match count {
            1 => format!("{kind} {} B", thousands(*total as u64)),
            _ => format!("{kind} {count} × {} B", thousands((total / count) as u64)),
        })
        .collect();
    parts.join(", ")
}

fn check_finished(frame: &Received) -> BenchResult<()> {
    let lite = frame.lite()?;
    match lite.stop_reason.as_deref() {
        Some("end_turn") => Ok(()),
        _ => Err(format!("the turn did not end normally: {}", frame.text)),
    }
}

/// One delta's latency in the concurrency test.
struct Latency {
    /// Its position in its reply, from 1.
    position: usize,
    millis: f64,
}

/// One socket of the concurrency test: one input per runtime, each at its time, then every
/// delta's latency until each runtime's turn finished.
async fn stream_replies(
    client: Client,
    runtimes: Vec<Value>,
    send_at: Vec<tokio::time::Instant>,
    socket: usize,
    provider: Provider,
    mock: Arc<MockServer<Directives>>,
) -> BenchResult<Vec<Latency>> {
    let (mut sink, mut source) = client.split();
    let text = format!("stream [[deltas: {SCALE_DELTAS}]] [[delay: {SCALE_DELAY_MS}]]");
    // The inputs go out at their times while the replies are read.
    let inputs: Vec<(tokio::time::Instant, Value)> = runtimes
        .iter()
        .zip(send_at)
        .enumerate()
        .map(|(index, (runtime, at))| {
            let id = format!("scale-{socket}-{index}");
            (at, client::input(&id, runtime, &text, &id))
        })
        .collect();
    let sender = tokio::spawn(async move {
        for (at, input) in inputs {
            tokio::time::sleep_until(at).await;
            client::send(&mut sink, &input).await?;
        }
        Ok::<_, String>(sink)
    });
    let mut latencies = Vec::with_capacity(runtimes.len() * SCALE_DELTAS);
    let mut received = HashMap::new();
    let mut finished = 0;
    while finished < runtimes.len() {
        let frame = client::recv(&mut source).await?;
        match frame.frame_type() {
            "stream_delta" => {
                let lite = frame.lite()?;
                let Some(delta) = lite.delta.filter(|delta| delta.is_assistant()) else {
                    continue;
                };
                let latency = if provider.model.is_some() {
                    mock.responder()
                        .stamp_of(&delta.text())
                        .map(|sent| frame.at.saturating_duration_since(sent))
                } else {
                    delta
                        .created()
                        .map(|created| frame.wall.duration_since(created).unwrap_or_default())
                };
                let latency = latency.ok_or_else(|| format!("a delta without a time stamp: {}", frame.text))?;
                let conversation = lite
                    .runtime
                    .as_ref()
                    .map(|r| r["conversation_id"].to_string())
                    .unwrap_or_default();
                let position = received.entry(conversation).or_insert(0);
                *position += 1;
                latencies.push(Latency {
                    position: *position,
                    millis: millis(latency),
                });
            }
            "turn_finished" => {
                check_finished(&frame)?;
                finished += 1;
            }
            _ => {}
        }
    }
    let sink = sender.await.map_err(|e| format!("an input task failed: {e}"))??;
    drop((sink, source));
    Ok(latencies)
}

/// User + system CPU time of this process (the benchmark's clients and mock), in clock ticks.
fn own_cpu_ticks() -> BenchResult<u64> {
    super::process::cpu_ticks(std::process::id())
}

/// Samples a process's `VmRSS` in the background; [`RssSampler::stop`] returns the largest.
struct RssSampler {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<u64>,
}

impl RssSampler {
    fn start(pid: u32) -> Self {
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let mut largest = 0;
            loop {
                if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status"))
                    && let Some(rss) = status
                        .lines()
                        .find_map(|line| line.strip_prefix("VmRSS:"))
                        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                {
                    largest = largest.max(rss * 1024);
                }
                tokio::select! {
                    _ = &mut stopped => return largest,
                    () = tokio::time::sleep(RSS_SAMPLE_EVERY) => {}
                }
            }
        });
        Self { stop, task }
    }

    async fn stop(self) -> u64 {
        let _ = self.stop.send(());
        self.task.await.unwrap_or_default()
    }
}

/// Median, 99th percentile and maximum of a series.
pub(crate) struct Stats {
    pub(crate) median: f64,
    pub(crate) p99: f64,
    pub(crate) max: f64,
}

impl Stats {
    pub(crate) fn of(mut values: Vec<f64>) -> Self {
        values.sort_by(f64::total_cmp);
        Self {
            median: percentile(&values, 0.5),
            p99: percentile(&values, 0.99),
            max: values.last().copied().unwrap_or_default(),
        }
    }
}

/// The nearest-rank percentile `q` (0–1) of sorted values.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub(crate) fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

pub(crate) fn ticks_to_micros(ticks: u64) -> f64 {
    ticks as f64 * 1_000_000.0 / clock_ticks_per_second() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 0.5), 50.0);
        assert_eq!(percentile(&values, 0.99), 99.0);
        assert_eq!(percentile(&[3.0], 0.99), 3.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }
}
