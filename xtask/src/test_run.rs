//! `cargo xtask test`: everything CI runs, set up from scratch.

use std::process::Command;

use crate::repo_root;

/// One step of the test run.
struct Step {
    name: &'static str,
    program: &'static str,
    args: &'static [&'static str],
    /// Environment variables the step sets.
    env: &'static [(&'static str, &'static str)],
    hint: &'static str,
}

const FMT: Step = Step {
    name: "formatting",
    program: "cargo",
    args: &["fmt", "--all", "--", "--check"],
    env: &[],
    hint: "run `cargo fmt --all`",
};

const CLIPPY: Step = Step {
    name: "clippy",
    program: "cargo",
    args: &[
        "clippy",
        "--workspace",
        "--all-targets",
        "--locked",
        "--",
        "-D",
        "warnings",
    ],
    env: &[],
    hint: "fix the lints above",
};

/// The server without its default features (no OTLP export), as a lean build gets it.
const CLIPPY_LEAN_SERVER: Step = Step {
    name: "clippy (server without default features)",
    program: "cargo",
    args: &[
        "clippy",
        "-p",
        "letta-app-server",
        "--no-default-features",
        "--locked",
        "--",
        "-D",
        "warnings",
    ],
    env: &[],
    hint: "fix the warnings above (code behind `#[cfg(feature = \"otlp\")]` and its absence)",
};

const DOCS: Step = Step {
    name: "docs",
    program: "cargo",
    args: &["doc", "--workspace", "--no-deps", "--locked", "--quiet"],
    env: &[("RUSTDOCFLAGS", "-D warnings")],
    hint: "fix the documentation warnings above (broken links, say)",
};

const NEXTEST: Step = Step {
    name: "tests",
    program: "cargo",
    args: &["nextest", "run", "--workspace", "--locked", "--no-fail-fast"],
    env: &[],
    hint: "see the failing tests above",
};

const DOCTESTS: Step = Step {
    name: "doctests",
    program: "cargo",
    args: &["test", "--workspace", "--locked", "--doc"],
    env: &[],
    hint: "see the failing doctests above",
};

const CARGO_TEST: Step = Step {
    name: "tests",
    program: "cargo",
    args: &["test", "--workspace", "--locked", "--no-fail-fast"],
    env: &[],
    hint: "see the failing tests above",
};

/// Runs formatting, lint and documentation checks, then every test (the Node and Python SDKs' last). Returns
/// an error naming the failed step.
pub fn run() -> Result<(), String> {
    // nextest does not run doctests; plain `cargo test` runs both. The test summary comes last.
    let tests: &[Step] = if has_nextest() {
        &[DOCTESTS, NEXTEST]
    } else {
        &[CARGO_TEST]
    };
    for step in [&FMT, &CLIPPY, &CLIPPY_LEAN_SERVER, &DOCS].into_iter().chain(tests) {
        eprintln!("==> {}: {} {}", step.name, step.program, step.args.join(" "));
        let status = Command::new(step.program)
            .args(step.args)
            .current_dir(repo_root())
            // Snapshot tests must fail on a mismatch, never rewrite their snapshots, in a test run.
            .env("CI", std::env::var("CI").unwrap_or_else(|_| "true".into()))
            .envs(step.env.iter().copied())
            .status()
            .map_err(|e| format!("could not start `{}`: {e}", step.program))?;
        if !status.success() {
            return Err(format!("{} failed: {}", step.name, step.hint));
        }
    }
    crate::test_node::run_tests()?;
    crate::test_python::run_tests()
}

fn has_nextest() -> bool {
    Command::new("cargo")
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|out| out.status.success())
}
