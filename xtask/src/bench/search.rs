//! The search group on a large tree: `search_files` (fuzzy, and `""` for the most recent files)
//! and `grep_in_files` over a generated project of 100,000 files, one call at a time on one
//! socket.

use std::path::Path;
use std::time::Instant;

use serde_json::{Value, json};

use super::BenchResult;
use super::client::Client;
use super::listing::{Timing, timed};
use super::process::{ServerProcess, temp_dir};
use super::report::{Row, Unit};
use super::scenarios::{Bench, millis};

/// Files of the generated tree: packages × modules × files.
const PACKAGES: usize = 50;
const MODULES: usize = 20;
const FILES: usize = 100;
/// What the files are named after, in turn.
const NAMES: &[&str] = &[
    "parser", "lexer", "handler", "config", "client", "server", "model", "view", "store", "util",
];
/// Queries typed into a file finder, in turn.
const QUERIES: &[&str] = &[
    "parser_042",
    "pkg_07/mod_13",
    "hndlr",
    "mod_19/view_099.rs",
    "s",
    "lexer 12 mod_03",
    "cfg",
    "store.rs",
];
/// Timed `search_files` calls of each kind, after as many unmeasured ones as there are queries.
const SEARCHES: usize = 200;
/// Timed `grep_in_files` calls of each kind, after one unmeasured one.
const GREPS: usize = 10;
/// The search-files target, median.
const SEARCH_TARGET_MS: f64 = 20.0;

impl Bench<'_> {
    /// Generates the tree, then times `search_files` and `grep_in_files` on it.
    pub async fn search_suite(&mut self) -> BenchResult<()> {
        let tree = temp_dir("tree")?;
        let root = tree.path().to_owned();
        let generating = Instant::now();
        tokio::task::spawn_blocking(move || generate(&root))
            .await
            .map_err(|e| format!("generating the tree: {e}"))??;
        let generated = generating.elapsed();
        let files = PACKAGES * MODULES * FILES;
        let server = ServerProcess::start(self.binary, &[]).await?;
        let mut client = Client::connect(&server.url).await?;
        let cwd = tree.path().display().to_string();

        let first = Instant::now();
        call(
            &server,
            &mut client,
            json!({"type": "search_files", "request_id": "sf-first", "query": "parser",
            "cwd": cwd}),
        )
        .await?;
        self.notes.push(format!(
            "search: generating {files} files took {:.1} s; the first search_files (walking and indexing them) {:.0} ms",
            generated.as_secs_f64(),
            millis(first.elapsed())
        ));

        let fuzzy = timed(&server, &mut client, (SEARCHES, QUERIES.len()), |n, _| {
            json!({"type": "search_files", "request_id": format!("sf-{n}"), "query": QUERIES[n % QUERIES.len()],
                "max_results": 50, "cwd": cwd})
        })
        .await?;
        self.push(
            "search_files: fuzzy query in 100,000 files (50 results)",
            &fuzzy,
            Some(SEARCH_TARGET_MS),
        );
        let recent = timed(&server, &mut client, (SEARCHES, QUERIES.len()), |n, _| {
            json!({"type": "search_files", "request_id": format!("sr-{n}"), "query": "", "max_results": 50,
                "cwd": cwd})
        })
        .await?;
        self.push(
            "search_files: \"\" (most recent) in 100,000 files (50 results)",
            &recent,
            Some(SEARCH_TARGET_MS),
        );
        let rare = timed(&server, &mut client, (GREPS, 1), |n, _| {
            json!({"type": "grep_in_files", "request_id": format!("gr-{n}"), "query": "todo(search-bench)",
                "cwd": cwd})
        })
        .await?;
        self.push("grep_in_files: a literal in 100 of 100,000 files", &rare, None);
        let common = timed(&server, &mut client, (GREPS, 1), |n, _| {
            json!({"type": "grep_in_files", "request_id": format!("gc-{n}"), "query": r"fn \w+_\d\d7\(",
                "is_regex": true, "case_sensitive": true, "cwd": cwd})
        })
        .await?;
        self.push(
            "grep_in_files: a regex in every tenth file (first 500 of 10,000 lines sent)",
            &common,
            None,
        );
        client.close().await;
        server.stop().await?;
        Ok(())
    }

    fn push(&mut self, metric: &str, timing: &Timing, target: Option<f64>) {
        self.rows.push(
            Row::new(
                &format!("{metric}, median"),
                "—",
                timing.latency.median,
                Unit::Millis,
                target,
            )
            .detail(format!(
                "p99 {}; server CPU {} per call",
                Unit::Millis.show(timing.latency.p99),
                Unit::Micros.show(timing.cpu_per_call)
            )),
        );
    }
}

/// Writes the tree under `root`: `pkg_PP/mod_MM/NAME_FFF.rs`, a few lines each; one file in a
/// thousand holds `TODO(search-bench)`.
fn generate(root: &Path) -> BenchResult<()> {
    for package in 0..PACKAGES {
        for module in 0..MODULES {
            let directory = root.join(format!("pkg_{package:02}/mod_{module:02}"));
            std::fs::create_dir_all(&directory).map_err(|e| format!("creating {}: {e}", directory.display()))?;
            for file in 0..FILES {
                let name = NAMES[(package + module + file) % NAMES.len()];
                let todo = if ((package * MODULES + module) * FILES + file).is_multiple_of(1000) {
                    "// TODO(search-bench): look here\n"
                } else {
                    ""
                };
                let text = format!(
                    "// pkg_{package:02} mod_{module:02}\n{todo}pub fn {name}_{file:03}(input: u32) -> u32 {{\n    input + {file}\n}}\n"
                );
                let path = directory.join(format!("{name}_{file:03}.rs"));
                std::fs::write(&path, text).map_err(|e| format!("writing {}: {e}", path.display()))?;
            }
        }
    }
    Ok(())
}

/// Sends `frame` and waits for its successful answer (untimed).
async fn call(server: &ServerProcess, client: &mut Client, frame: Value) -> BenchResult<()> {
    timed(server, client, (0, 1), |_, _| frame.clone()).await.map(|_| ())
}
