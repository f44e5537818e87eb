//! `cargo xtask bench`: builds the server in release mode, measures it over real sockets with
//! the scripted model and with the OpenAI-compatible provider (against a local streaming
//! Chat Completions server), prints the results and writes them into `BENCHMARKS.md`.
//!
//! What is measured, and how, is described in `BENCHMARKS.md` (its introduction is
//! `bench/intro.md`). The benchmarks are not tests: a missed target is marked `FAIL` in the table
//! but the task still succeeds; only a benchmark that cannot run at all is an error.

pub(crate) mod client;
mod listing;
mod logging;
mod node;
pub(crate) mod process;
mod python;
pub(crate) mod report;
pub(crate) mod scenarios;
mod search;
mod stored;
mod terminal;

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use letta_app_server_mock_llm::{Directives, MockServer};

use crate::repo_root;
use report::Row;
use scenarios::{Bench, OPENAI, SCRIPTED};

/// What the benchmarks return on failure: a message for the terminal.
pub(crate) type BenchResult<T> = Result<T, String>;

/// Open files the concurrency test needs: two sockets per runtime's model request (server and
/// mock), the websocket connections, and some slack.
const OPEN_FILES: u64 = 8192;

/// The benchmarks `cargo xtask bench <suite>` runs alone (printed, not written).
const SUITES: &[&str] = &["single", "search", "terminal", "logging", "scale", "listing", "stored"];

/// Set in the optimised copy of xtask that [`in_optimised_build`] starts from a debug build.
const OPTIMISED: &str = "LETTA_BENCH_OPTIMISED";

/// Runs every benchmark, prints the table and rewrites the results section of `BENCHMARKS.md`;
/// with a suite name (`single`, `search`, `terminal`, `logging`, `scale`, `listing` or `stored`) as
/// argument, only that benchmark, printed and not written.
///
/// The clients and the local model server share the machine with the server under test, so an
/// unoptimised xtask (what `cargo xtask` builds) would measure itself: it runs an optimised
/// build of itself instead (`cargo run --release -p xtask -- bench`).
pub fn run(args: &[String]) -> Result<(), String> {
    let only = match args {
        [] => None,
        [suite] if SUITES.contains(&suite.as_str()) => Some(suite.clone()),
        other => {
            return Err(format!(
                "unknown benchmark `{}` (suites: {})",
                other.join(" "),
                SUITES.join(", ")
            ));
        }
    };
    let mut own_args = vec!["bench".to_owned()];
    own_args.extend_from_slice(args);
    if let Some(result) = in_optimised_build(&own_args) {
        return result;
    }
    let started = SystemTime::now();
    let clock = Instant::now();
    let binary = build_server()?;
    raise_open_files();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("starting the Tokio runtime: {e}"))?;
    let mock = start_mock()?;
    let (rows, notes) = runtime.block_on(benchmarks(binary, mock, only.as_deref()))?;
    println!();
    print!("{}", report::plain_table(&rows));
    if only.is_some() {
        return Ok(());
    }
    for note in &notes {
        println!("note: {note}");
    }
    let path = repo_root().join("BENCHMARKS.md");
    report::write_markdown(&path, &rows, &notes, started)?;
    println!(
        "\nwrote {} ({:.0} s in all)",
        path.display(),
        clock.elapsed().as_secs_f64()
    );
    Ok(())
}

/// In an unoptimised build of xtask (what `cargo xtask` builds), runs `cargo run --release -p
/// xtask -- <args>` and returns its outcome; `None` in the optimised build, which does the work.
pub(crate) fn in_optimised_build(args: &[String]) -> Option<Result<(), String>> {
    if !cfg!(debug_assertions) || std::env::var_os(OPTIMISED).is_some() {
        return None;
    }
    eprintln!(
        "==> building an optimised xtask: cargo run --release -p xtask -- {}",
        args.join(" ")
    );
    let status = Command::new(cargo())
        .args(["run", "--release", "--quiet", "-p", "xtask", "--"])
        .args(args)
        .env(OPTIMISED, "1")
        .current_dir(repo_root())
        .status();
    Some(match status {
        Ok(status) if status.success() => Ok(()),
        Ok(_) => Err(format!("the optimised `{}` run failed (see above)", args.join(" "))),
        Err(error) => Err(format!("could not start cargo: {error}")),
    })
}

/// Raises this process's open-file limit (the server inherits it); a warning when it cannot.
pub(crate) fn raise_open_files() {
    if let Err(error) = rlimit::increase_nofile_limit(OPEN_FILES) {
        eprintln!("warning: could not raise the open-file limit: {error}");
    }
}

/// Names a server binary to benchmark instead of building one (e.g. another version's).
const SERVER_OVERRIDE: &str = "LETTA_BENCH_SERVER";

/// `cargo build --release -p letta-app-server`; returns the binary's path. With
/// `LETTA_BENCH_SERVER=<path>` that binary is used and nothing is built.
pub(crate) fn build_server() -> BenchResult<PathBuf> {
    if let Some(binary) = std::env::var_os(SERVER_OVERRIDE).filter(|value| !value.is_empty()) {
        let binary = PathBuf::from(binary);
        eprintln!("==> benchmarking {} ({SERVER_OVERRIDE})", binary.display());
        return if binary.is_file() {
            Ok(binary)
        } else {
            Err(format!("{SERVER_OVERRIDE}: no file at {}", binary.display()))
        };
    }
    eprintln!("==> building: cargo build --release -p letta-app-server");
    let status = Command::new(cargo())
        .args(["build", "--release", "-p", "letta-app-server"])
        .current_dir(repo_root())
        .status()
        .map_err(|e| format!("could not start cargo: {e}"))?;
    if !status.success() {
        return Err("building the server failed".into());
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| repo_root().join("target"), PathBuf::from);
    let binary = repo_root().join(target).join("release").join("letta-app-server");
    if !binary.is_file() {
        return Err(format!("no server binary at {}", binary.display()));
    }
    Ok(binary)
}

/// The cargo that runs this task.
fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// Starts the mock model server on a runtime and thread of its own, for the rest of the process:
/// on the clients' runtime, a chunk due to be sent would wait behind the frames of a hundred
/// sockets being read, and that wait would count as the server's latency.
fn start_mock() -> BenchResult<Arc<MockServer<Directives>>> {
    let (started, mock) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("mock-llm".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(runtime) => runtime,
                Err(error) => return drop(started.send(Err(format!("starting the mock's runtime: {error}")))),
            };
            runtime.block_on(async move {
                match MockServer::start(Directives::new(Instant::now())) {
                    Ok(mock) => {
                        let _ = started.send(Ok(Arc::new(mock)));
                        std::future::pending::<()>().await;
                    }
                    Err(error) => drop(started.send(Err(format!("starting the mock LLM server: {error}")))),
                }
            });
        })
        .map_err(|e| format!("starting the mock's thread: {e}"))?;
    mock.recv().map_err(|_| "the mock's thread ended".to_owned())?
}

async fn benchmarks(
    binary: PathBuf,
    mock: Arc<MockServer<Directives>>,
    only: Option<&str>,
) -> BenchResult<(Vec<Row>, Vec<String>)> {
    let mut bench = Bench {
        binary: &binary,
        mock,
        rows: Vec::new(),
        notes: Vec::new(),
    };
    match only {
        Some("search") => bench.search_suite().await?,
        Some("logging") => bench.logging_suite().await?,
        Some("listing") => bench.listing_suite().await?,
        Some("stored") => bench.stored_suite().await?,
        Some("single") => {
            for provider in [SCRIPTED, OPENAI] {
                bench.single_runtime_suite(provider).await?;
            }
        }
        Some("scale") => {
            for provider in [SCRIPTED, OPENAI] {
                bench.scale_suite(provider).await?;
            }
        }
        Some(_) => bench.terminal_suite().await?,
        None => every_suite(&mut bench).await?,
    }
    Ok((bench.rows, bench.notes))
}

async fn every_suite(bench: &mut Bench<'_>) -> BenchResult<()> {
    for provider in [SCRIPTED, OPENAI] {
        eprintln!("==> {}: runtime_start, short turns, long reply", provider.name);
        bench.single_runtime_suite(provider).await?;
        eprintln!("==> {}: 1,000 concurrent runtimes", provider.name);
        bench.scale_suite(provider).await?;
    }
    eprintln!("==> logging: CPU per delta at info and with logging off");
    bench.logging_suite().await?;
    eprintln!("==> listing: pages of a 10,000-message conversation and of 10,000 conversations");
    bench.listing_suite().await?;
    eprintln!("==> stored: startup and cold runtime_start over 10,000 conversations of 1,000 messages");
    bench.stored_suite().await?;
    eprintln!("==> search: search_files and grep_in_files in a tree of 100,000 files");
    bench.search_suite().await?;
    eprintln!("==> the Node SDK against plain ws: frames/s of a 10,000-delta reply");
    bench.node_sdk_suite().await?;
    eprintln!("==> the Python SDK against websockets: frames/s of a 10,000-delta reply");
    python::suite(bench.binary, &mut bench.rows).await;
    eprintln!("==> terminal: `yes | head -c 100M` through terminal_output");
    bench.terminal_suite().await?;
    Ok(())
}
