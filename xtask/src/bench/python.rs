//! The Python SDK: frames per second a Python client receives during a 10,000-delta reply,
//! the SDK (`letta_app_server`) against a client built on the `websockets` package with
//! `json.loads`, taking turns on one server. The clients are `bindings/python/bench/deltas.py`, run
//! in the virtual environment of `cargo xtask test` with `websockets` added and the release
//! wheel installed.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use super::BenchResult;
use super::process::ServerProcess;
use super::report::{Row, Unit};
use super::scenarios::{SCRIPTED, Stats};
use crate::{repo_root, test_python};

/// The clients, relative to the repository root.
const SCRIPT: &str = "bindings/python/bench/deltas.py";
/// Replies measured per client, after one warm-up.
const REPLIES: usize = 9;
/// The SDK should receive at least this many times the frames per second of the plain client.
const TARGET_RATIO: f64 = 2.0;
/// What the benchmark needs from PyPI besides the package itself.
const TOOLS: &[&str] = &[test_python::MATURIN, "websockets==17.4"];
/// The longest the clients may take (they take seconds); a hung one is killed.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(300);

const METRIC: &str = "10,000-delta reply: frames/s received by";

/// Measures both clients and adds their rows (a failed row when Python cannot run them).
pub async fn suite(binary: &Path, rows: &mut Vec<Row>) {
    let ratio_metric = "Python SDK ÷ websockets + json.loads, frames/s, median of the rounds";
    match measure(binary).await {
        Ok(rates) => {
            for (what, rates) in [
                ("the Python SDK", &rates.sdk),
                ("websockets + json.loads", &rates.plain),
            ] {
                rows.push(
                    Row::new(
                        &format!("{METRIC} {what}, median"),
                        SCRIPTED.name,
                        median(rates.clone()),
                        Unit::PerSecond,
                        None,
                    )
                    .detail(format!("{REPLIES} replies")),
                );
            }
            let ratios = rates
                .sdk
                .iter()
                .zip(&rates.plain)
                .map(|(sdk, plain)| sdk / plain)
                .collect();
            rows.push(Row::ratio(ratio_metric, SCRIPTED.name, median(ratios), TARGET_RATIO));
        }
        Err(why) => rows.push(Row::failed(
            ratio_metric,
            SCRIPTED.name,
            &why,
            Some(format!("≥ {TARGET_RATIO:.2}×")),
        )),
    }
}

/// Frames per second of each reply, per client; the clients took turns, so the `n`th rates of
/// the two were measured one after the other (a round).
struct Rates {
    sdk: Vec<f64>,
    plain: Vec<f64>,
}

/// The rates of the SDK and of the plain client, taking turns on one server.
async fn measure(binary: &Path) -> BenchResult<Rates> {
    eprintln!("==> Python SDK: the virtual environment and the release wheel");
    test_python::prepare(TOOLS)?;
    test_python::build_wheel()?;
    eprintln!("==> Python SDK: frames/s during a 10,000-delta reply, SDK and websockets");
    let server = ServerProcess::start(binary, &[]).await?;
    let output = tokio::time::timeout(
        SCRIPT_TIMEOUT,
        tokio::process::Command::new(test_python::venv_bin("python"))
            .arg(repo_root().join(SCRIPT))
            .args([server.url.as_str(), &REPLIES.to_string()])
            .stderr(std::process::Stdio::inherit())
            .kill_on_drop(true)
            .output(),
    )
    .await;
    server.stop().await?;
    let output = output
        .map_err(|_| format!("the Python benchmark took longer than {SCRIPT_TIMEOUT:?}"))?
        .map_err(|e| format!("starting the Python benchmark: {e}"))?;
    if !output.status.success() {
        return Err(format!("the Python benchmark failed ({})", output.status));
    }
    let report: Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| format!("the Python benchmark's report is not JSON ({e})"))?;
    Ok(Rates {
        sdk: client_rates(&report, "sdk")?,
        plain: client_rates(&report, "websockets")?,
    })
}

/// One client's rates in the report, one per reply.
fn client_rates(report: &Value, client: &str) -> BenchResult<Vec<f64>> {
    let rates: Vec<f64> = report[client]
        .as_array()
        .map(|rates| rates.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default();
    if rates.len() != REPLIES {
        return Err(format!("the {client} client reported {} replies", rates.len()));
    }
    Ok(rates)
}

/// The median of some rates.
fn median(rates: Vec<f64>) -> f64 {
    Stats::of(rates).median
}
