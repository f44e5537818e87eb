//! The Node SDK against a plain `ws` client: the frames per second each receives during a
//! 10,000-delta reply from the same server. `bindings/node/bench/frames.mjs` measures, on Node;
//! this module builds the addon, starts the server and puts the figures in the table.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use tokio::process::Command;

use super::BenchResult;
use super::process::ServerProcess;
use super::report::{Row, Unit};
use super::scenarios::{Bench, SCRIPTED};
use crate::repo_root;

/// The npm package, relative to the repository root.
const PACKAGE: &str = "bindings/node";
/// Replies per client (taking turns, reply by reply).
const REPLIES: usize = 9;
/// How long the measuring script may take.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(300);
/// The SDK must receive at least as many frames per second as the plain client.
const TARGET_RATIO: f64 = 1.0;

/// What `frames.mjs` prints.
#[derive(Debug, Deserialize)]
struct Measured {
    deltas: u64,
    replies: usize,
    #[serde(flatten)]
    clients: HashMap<String, Client>,
}

#[derive(Debug, Deserialize)]
struct Client {
    /// Median frames per second over the replies.
    median: f64,
    /// The median over the rounds of this client's rate divided by the plain client's.
    ratio: f64,
}

impl Bench<'_> {
    /// Frames per second received by the SDK (through `onMessage` and through `events()`) and
    /// by plain `ws` + `JSON.parse`, and the SDK's ratio to the plain client. A run that cannot
    /// be made (no Node, a failed build) is a failed row, not an error.
    pub async fn node_sdk_suite(&mut self) -> BenchResult<()> {
        let measured = match self.node_measurements().await {
            Ok(measured) => measured,
            Err(error) => {
                self.rows.push(Row::failed(
                    "Node SDK ÷ plain ws, frames/s during a 10,000-delta reply",
                    SCRIPTED.name,
                    &error,
                    Some(target()),
                ));
                return Ok(());
            }
        };
        let (Some(plain), Some(on_message), Some(events)) = (
            measured.clients.get("ws"),
            measured.clients.get("onMessage"),
            measured.clients.get("events"),
        ) else {
            return Err(format!("frames.mjs did not measure every client: {measured:?}"));
        };
        let reply = format!("{}-delta", super::report::thousands(measured.deltas));
        for (what, value) in [
            ("plain `ws` + `JSON.parse`", plain.median),
            ("Node SDK, `onMessage`", on_message.median),
            ("Node SDK, `for await` of `events()`", events.median),
        ] {
            self.rows.push(
                Row::new(
                    &format!("{reply} reply: frames/s received by {what}, median"),
                    SCRIPTED.name,
                    value,
                    Unit::PerSecond,
                    None,
                )
                .detail(format!("{} replies", measured.replies)),
            );
        }
        for (what, client) in [("`onMessage`", on_message), ("`events()`", events)] {
            self.rows.push(Row::ratio(
                &format!("Node SDK ({what}) ÷ plain ws, frames/s, median of the rounds"),
                SCRIPTED.name,
                client.ratio,
                TARGET_RATIO,
            ));
        }
        Ok(())
    }

    async fn node_measurements(&self) -> BenchResult<Measured> {
        let package = repo_root().join(PACKAGE);
        if !package.join("node_modules").is_dir() {
            npm(&package, &["ci", "--no-audit", "--no-fund", "--loglevel=error"]).await?;
        }
        npm(&package, &["run", "build"]).await?;
        let server = ServerProcess::start(self.binary, &[]).await?;
        let output = tokio::time::timeout(
            SCRIPT_TIMEOUT,
            Command::new("node")
                .arg(package.join("bench").join("frames.mjs"))
                .arg(&server.url)
                .arg(REPLIES.to_string())
                .kill_on_drop(true)
                .output(),
        )
        .await;
        let stopped = server.stop().await;
        let output = output
            .map_err(|_| format!("frames.mjs took longer than {SCRIPT_TIMEOUT:?}"))?
            .map_err(|e| format!("could not start node: {e}"))?;
        stopped?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            return Err(format!("frames.mjs failed: {}", stderr.trim().replace('\n', " ")));
        }
        serde_json::from_slice(&output.stdout).map_err(|e| format!("unreadable output of frames.mjs: {e}"))
    }
}

fn target() -> String {
    format!("≥ {TARGET_RATIO:.2}×")
}

/// `npm <args>` in the package; an error says which command failed.
async fn npm(package: &Path, args: &[&str]) -> BenchResult<()> {
    eprintln!("==> {PACKAGE}: npm {}", args.join(" "));
    let status = Command::new("npm")
        .args(args)
        .current_dir(package)
        .status()
        .await
        .map_err(|e| format!("could not start npm: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`npm {}` failed in {PACKAGE}", args.join(" ")))
    }
}
