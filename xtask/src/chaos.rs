//! `cargo xtask chaos`: drives the release server with kills, mutated frames and connection
//! abuse, checks that nothing acknowledged is lost and that no client can hurt another, prints
//! the figures and writes them into the chaos section of `BENCHMARKS.md`.
//!
//! Three phases, each against its own server process (see `chaos/intro.md`, the section's
//! introduction, for what each measures):
//!
//! 1. `kills`: inputs from several clients while the server is killed with `SIGKILL`;
//! 2. `frames`: mutated frames from abusive clients next to a `witness` running ordinary turns;
//! 3. `connections`: connection cycles, stalled readers, half-open requests, garbage.
//!
//! Everything random comes from `--seed`, which is printed: the same seed makes the same frames,
//! inputs and kill times (what the server does with them still depends on timing). The task
//! fails when a hard guarantee fails; the other figures are reported.

mod connections;
mod frames;
mod kills;
mod mutate;
mod wire;
mod witness;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use letta_app_server_tests::schema::Schemas;

use crate::bench;
use crate::bench::process::ServerProcess;
use crate::bench::report::{self, CHAOS_HEADING, Verdict};
use crate::repo_root;

/// The options, for `cargo xtask help`.
pub const USAGE: &str = "\
chaos options:
  --seed N        seed of everything random (default: from the clock; printed, to replay a run)
  --scale X       multiply every count (frames, kills, connections, turns) by X (default 1)
  --only PHASE    run one phase: kills, frames or connections (repeatable)
  --hold SECS     how long the connection phase holds stalled, silent and half-open
                  connections before checking which the server closed (default 15)
  --no-write      print the table but leave BENCHMARKS.md alone
";

/// What a run does.
#[derive(Debug, Clone)]
struct Options {
    seed: u64,
    scale: Scale,
    phases: Vec<Phase>,
    hold: Duration,
    write: bool,
}

/// A phase of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Kills,
    Frames,
    Connections,
}

const PHASES: [(&str, Phase); 3] = [
    ("kills", Phase::Kills),
    ("frames", Phase::Frames),
    ("connections", Phase::Connections),
];

/// The factor every count is multiplied by.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scale(f64);

impl Scale {
    /// `base` scaled, at least 1.
    pub fn count(self, base: usize) -> usize {
        ((base as f64 * self.0).round() as usize).max(1)
    }
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        seed: SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(1, |since| since.as_nanos() as u64 % 1_000_000_000),
        scale: Scale(1.0),
        phases: Vec::new(),
        hold: Duration::from_secs(15),
        write: true,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value\n\n{USAGE}"));
        match arg.as_str() {
            "--seed" => options.seed = value()?.parse().map_err(|e| format!("--seed: {e}"))?,
            "--scale" => {
                let scale: f64 = value()?.parse().map_err(|e| format!("--scale: {e}"))?;
                if !(scale > 0.0 && scale.is_finite()) {
                    return Err("--scale must be a positive number".into());
                }
                options.scale = Scale(scale);
            }
            "--only" => {
                let name = value()?;
                let phase = PHASES
                    .iter()
                    .find(|(known, _)| known == name)
                    .ok_or_else(|| format!("--only: no phase `{name}` (kills, frames, connections)"))?;
                options.phases.push(phase.1);
            }
            "--hold" => {
                let seconds: u64 = value()?.parse().map_err(|e| format!("--hold: {e}"))?;
                options.hold = Duration::from_secs(seconds);
            }
            "--no-write" => options.write = false,
            other => return Err(format!("unknown chaos option `{other}`\n\n{USAGE}")),
        }
    }
    if options.phases.is_empty() {
        options.phases = PHASES.iter().map(|(_, phase)| *phase).collect();
    }
    Ok(options)
}

/// Runs the chaos phases; an error when an option is wrong, a phase cannot run, or a hard
/// guarantee failed.
pub fn run(args: &[String]) -> Result<(), String> {
    let options = parse(args)?;
    let mut task = vec!["chaos".to_owned()];
    task.extend(args.iter().cloned());
    // The abusive clients share the machine with the server: an unoptimised client would be
    // what is measured.
    if let Some(result) = bench::in_optimised_build(&task) {
        return result;
    }
    let started = SystemTime::now();
    let clock = Instant::now();
    let binary = bench::build_server()?;
    bench::raise_open_files();
    let replay = replay_command(&options);
    eprintln!("==> seed {} (replay: {replay})", options.seed);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("starting the Tokio runtime: {e}"))?;
    let schemas = Arc::new(Schemas::load());
    let mut checks = Vec::new();
    for phase in &options.phases {
        let phase_started = Instant::now();
        let result = runtime.block_on(async {
            match phase {
                Phase::Kills => {
                    eprintln!("==> kills: inputs from several clients, the server killed with SIGKILL mid-turn");
                    kills::run(&binary, schemas.clone(), options.seed, options.scale).await
                }
                Phase::Frames => {
                    eprintln!("==> frames: mutated frames from abusive clients next to a witness");
                    frames::run(&binary, schemas.clone(), options.seed, options.scale).await
                }
                Phase::Connections => {
                    eprintln!(
                        "==> connections: cycles, stalled readers, half-open requests, garbage (held {} s)",
                        options.hold.as_secs()
                    );
                    connections::run(&binary, schemas.clone(), options.seed, options.scale, options.hold).await
                }
            }
        });
        checks.extend(result?);
        let name = PHASES.iter().find(|(_, p)| p == phase).map_or("", |(name, _)| *name);
        checks.push(Check::info(
            name,
            "phase duration",
            format!("{:.0} s", phase_started.elapsed().as_secs_f64()),
        ));
    }
    let elapsed = clock.elapsed();
    let rows: Vec<Vec<String>> = checks.iter().map(Check::cells).collect();
    println!();
    print!("{}", report::plain(&HEADERS, &rows));
    println!(
        "\nseed {}; replay: {replay}; {:.0} s in all",
        options.seed,
        elapsed.as_secs_f64()
    );
    let failed: Vec<String> = checks
        .iter()
        .filter(|c| c.verdict == Verdict::Fail)
        .map(|c| format!("{}: {}", c.phase, c.what))
        .collect();
    let verdict = if failed.is_empty() {
        "Every hard guarantee held.".to_owned()
    } else {
        format!("**{} hard guarantee(s) failed**: {}.", failed.len(), failed.join("; "))
    };
    if options.write {
        let path = repo_root().join("BENCHMARKS.md");
        let run = format!(
            "### {}\n\n`{replay}`{}, {:.0} s in all. {verdict}\n\n{}",
            report::run_on(started),
            if options.phases.len() < PHASES.len() {
                " (not every phase)"
            } else {
                ""
            },
            elapsed.as_secs_f64(),
            report::markdown(&HEADERS, &rows)
        );
        write_section(&path, &run)?;
        println!("wrote {}", path.display());
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} hard guarantee(s) failed (seed {}): {}",
            failed.len(),
            options.seed,
            failed.join("; ")
        ))
    }
}

fn replay_command(options: &Options) -> String {
    let mut command = format!("cargo xtask chaos --seed {}", options.seed);
    if options.scale != Scale(1.0) {
        command.push_str(&format!(" --scale {}", options.scale.0));
    }
    if options.phases.len() < PHASES.len() {
        for phase in &options.phases {
            let name = PHASES.iter().find(|(_, p)| p == phase).map_or("", |(name, _)| name);
            command.push_str(&format!(" --only {name}"));
        }
    }
    if options.hold != Duration::from_secs(15) {
        command.push_str(&format!(" --hold {}", options.hold.as_secs()));
    }
    command
}

/// Runs kept in the chaos section: this one and the previous ones.
const RUNS_KEPT: usize = 3;

/// The section's introduction: what each phase does and checks.
const INTRO: &str = include_str!("chaos/intro.md");

/// Rewrites the chaos section at the end of `BENCHMARKS.md`: its introduction, this run, then
/// the previous runs (up to [`RUNS_KEPT`] in all). The rest of the file is kept as it is.
fn write_section(path: &std::path::Path, run: &str) -> Result<(), String> {
    let existing = std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let old = report::section_from(&existing, CHAOS_HEADING);
    let before = existing[..existing.len() - old.len()].trim_end();
    let mut out = format!("{before}\n\n{CHAOS_HEADING}\n\n{}\n", INTRO.trim());
    out.push_str(&format!("\n{}", run.trim_end()));
    out.push('\n');
    for previous in previous_runs(old).into_iter().take(RUNS_KEPT - 1) {
        out.push_str(&format!("\n{}\n", previous.trim_end()));
    }
    std::fs::write(path, out).map_err(|e| format!("writing {}: {e}", path.display()))
}

/// The runs (`### Run on …` blocks) of an existing chaos section, newest first.
fn previous_runs(section: &str) -> Vec<&str> {
    let starts: Vec<usize> = section.match_indices("\n### Run on ").map(|(at, _)| at + 1).collect();
    starts
        .iter()
        .enumerate()
        .map(|(index, start)| &section[*start..starts.get(index + 1).copied().unwrap_or(section.len())])
        .collect()
}

const HEADERS: [&str; 5] = ["phase", "check", "value", "expected", "result"];

/// One line of the summary.
#[derive(Debug, Clone)]
pub struct Check {
    phase: &'static str,
    what: String,
    value: String,
    expected: String,
    verdict: Verdict,
}

impl Check {
    /// A hard guarantee: the run fails when it does not hold.
    pub fn hard(
        phase: &'static str,
        what: impl Into<String>,
        value: impl Into<String>,
        ok: bool,
        expected: &str,
    ) -> Self {
        Self {
            phase,
            what: what.into(),
            value: value.into(),
            expected: expected.to_owned(),
            verdict: if ok { Verdict::Pass } else { Verdict::Fail },
        }
    }

    /// An expectation that is reported but does not fail the run (`warn` when it does not hold).
    pub fn expect(
        phase: &'static str,
        what: impl Into<String>,
        value: impl Into<String>,
        ok: bool,
        expected: &str,
    ) -> Self {
        Self {
            verdict: if ok { Verdict::Pass } else { Verdict::Warn },
            ..Self::hard(phase, what, value, ok, expected)
        }
    }

    /// A figure, for information.
    pub fn info(phase: &'static str, what: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            verdict: Verdict::Info,
            expected: "—".into(),
            ..Self::hard(phase, what, value, true, "")
        }
    }

    fn cells(&self) -> Vec<String> {
        vec![
            self.phase.to_owned(),
            self.what.clone(),
            self.value.clone(),
            self.expected.clone(),
            self.verdict.label().to_owned(),
        ]
    }
}

/// The check every phase ends with: the server is still running (it never died by itself).
fn server_checks(phase: &'static str, server: &mut ServerProcess) -> Vec<Check> {
    let status = server.exit_status();
    vec![Check::hard(
        phase,
        "server crashes",
        status.map_or_else(|| "0".to_owned(), |status| format!("1: the server exited ({status})")),
        status.is_none(),
        "0",
    )]
}

/// `a 3, b 2` for a report; `none` when empty.
fn list<K: std::fmt::Display>(counts: &BTreeMap<K, u64>) -> String {
    if counts.is_empty() {
        return "none".into();
    }
    counts
        .iter()
        .map(|(key, count)| format!("{key} {}", report::thousands(*count)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The sum of the counts, for people.
fn sum(counts: &BTreeMap<String, u64>) -> String {
    report::thousands(counts.values().sum())
}

/// `; first: …` with the first of `items` (shortened), or nothing.
fn first(items: &[String]) -> String {
    items
        .first()
        .map(|item| format!("; first: {}", wire::shorten(item)))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_parsed_and_replayed() {
        let args: Vec<String> = ["--seed", "42", "--scale", "0.5", "--only", "kills", "--no-write"]
            .map(str::to_owned)
            .to_vec();
        let options = parse(&args).expect("valid");
        assert_eq!((options.seed, options.scale, options.write), (42, Scale(0.5), false));
        assert_eq!(options.phases, [Phase::Kills]);
        assert_eq!(
            replay_command(&options),
            "cargo xtask chaos --seed 42 --scale 0.5 --only kills"
        );
        assert_eq!(Scale(0.001).count(100), 1);
        assert!(parse(&["--scale".to_owned(), "-1".to_owned()]).is_err());
        assert!(parse(&["--bogus".to_owned()]).is_err());
    }

    #[test]
    fn previous_runs_are_kept_newest_first() {
        let section = "## Chaos\n\nintro\n\n### Run on B\n\nb\n\n### Run on A\n\na\n";
        assert_eq!(previous_runs(section), ["### Run on B\n\nb\n\n", "### Run on A\n\na\n"]);
        assert!(previous_runs("## Chaos\n\nintro\n").is_empty());
    }
}
