//! `cargo xtask <task>`: see `cargo xtask help`.

use std::process::ExitCode;

use xtask::{artefacts, drift, repo_root, test_run};

const HELP: &str = "\
usage: cargo xtask <task>

tasks:
  schema    write schema/ (JSON Schema bundle and meta.json) from the protocol crate
  codegen   write schema/ and every file generated from it (Rust client types, Python and TypeScript frame types)
  test      check formatting and lints, then run every test (what CI runs)
  bench     build the server in release mode, benchmark it, write BENCHMARKS.md
  bench search | bench terminal
            only the search or the terminal benchmark; prints its rows, writes nothing
  chaos     build the server in release mode, kill it, feed it mutated frames and abusive
            connections; check that nothing acknowledged is lost and no client hurts another;
            write the figures into BENCHMARKS.md (fails when a hard guarantee fails)
  help      show this message

";

fn main() -> ExitCode {
    let task = std::env::args().nth(1).unwrap_or_default();
    let result = match task.as_str() {
        "schema" => write(artefacts::schema()),
        "codegen" => artefacts::all().and_then(write),
        "test" => test_run::run(),
        "bench" => xtask::bench::run(&std::env::args().skip(2).collect::<Vec<_>>()),
        "chaos" => xtask::chaos::run(&std::env::args().skip(2).collect::<Vec<_>>()),
        "help" | "--help" | "-h" => {
            print!("{HELP}{}", xtask::chaos::USAGE);
            Ok(())
        }
        other => Err(format!("unknown task `{other}`\n\n{HELP}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn write(artefacts: Vec<artefacts::Artefact>) -> Result<(), String> {
    let changed = drift::write(&repo_root(), &artefacts).map_err(|e| format!("writing generated files: {e}"))?;
    if changed.is_empty() {
        println!("generated files are up to date");
    }
    for path in changed {
        println!("wrote {path}");
    }
    Ok(())
}
