//! The Node SDK's part of `cargo xtask test`: the npm packages from the lockfile, the release
//! addon, then `node --test` against the debug server binary.

use std::process::Command;

use crate::repo_root;
use crate::test_python::{run, server_binary, server_log_filter};

/// The npm package, relative to the repository root.
pub const PACKAGE: &str = "bindings/node";

/// Runs the whole Node part: `npm ci`, the addon, the server binary, the tests.
pub fn run_tests() -> Result<(), String> {
    run(
        "node packages",
        Command::new("npm").args(["ci", "--prefix", PACKAGE, "--no-audit", "--no-fund", "--loglevel=error"]),
    )?;
    run(
        "node addon",
        Command::new("npm").args(["run", "build", "--prefix", PACKAGE]),
    )?;
    let server = server_binary()?;
    run(
        "node tests",
        Command::new("node")
            // A test that hangs fails instead of holding up the run.
            .args(["--test", "--test-timeout=60000"])
            .args(test_files()?)
            .env("LETTA_APP_SERVER_BIN", &server)
            .env("RUST_LOG", server_log_filter()),
    )
}

/// `bindings/node/test/*.test.mjs` (the folder also holds helpers and fixtures, which
/// `node --test` would run as tests if given the folder).
fn test_files() -> Result<Vec<String>, String> {
    let dir = repo_root().join(PACKAGE).join("test");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .map_err(|e| format!("reading {}: {e}", dir.display()))?
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".test.mjs"))
        .map(|name| format!("{PACKAGE}/test/{name}"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(format!("no *.test.mjs files in {}", dir.display()));
    }
    Ok(files)
}
