//! The Python SDK's part of `cargo xtask test`: a virtual environment with pinned tools, the
//! release wheel, and pytest against the debug server binary.
//!
//! Tools are called as `.venv/bin/<tool>`, never through an activated environment: pyo3's build
//! script reruns when `PATH` or `VIRTUAL_ENV` change, which would rebuild it every time.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::repo_root;

/// The tools the tests need, from PyPI, pinned (`websockets` for the scripted peer that answers
/// commands with streams of frames, `openai` for the OpenAI-compatible API's tests and example,
/// `prometheus-client` for its parser of the Prometheus text format, which reads `/metrics`).
pub const TOOLS: &[&str] = &[
    MATURIN,
    "pytest==9.2.0",
    "mypy==2.4.1",
    "websockets==17.4",
    "openai==3.51.0",
    "prometheus-client==0.26.0",
];
/// The pinned maturin, which builds the wheel (also for the benchmark).
pub const MATURIN: &str = "maturin==1.16.0";

/// Where the wheel is built (the tests install it from there into a fresh environment).
pub const WHEEL_DIR: &str = "target/python-wheel";

/// The virtual environment, made by the first run.
pub fn venv() -> PathBuf {
    repo_root().join(".venv")
}

/// A program of the virtual environment.
pub fn venv_bin(program: &str) -> PathBuf {
    venv().join("bin").join(program)
}

/// Makes the virtual environment if needed and installs `tools` (pinned) into it.
pub fn prepare(tools: &[&str]) -> Result<(), String> {
    if !venv_bin("python").is_file() {
        run("python venv", Command::new("python3").args(["-m", "venv"]).arg(venv()))?;
    }
    run(
        "python tools",
        Command::new(venv_bin("pip"))
            .args(["install", "-q", "--disable-pip-version-check"])
            .args(tools),
    )
}

/// Builds the wheel into [`WHEEL_DIR`] and installs it into the virtual environment.
pub fn build_wheel() -> Result<PathBuf, String> {
    let dir = repo_root().join(WHEEL_DIR);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|e| format!("removing {}: {e}", dir.display()))?;
    }
    run(
        "python wheel",
        Command::new(venv_bin("maturin"))
            .args([
                "build",
                "--release",
                "--locked",
                "-q",
                "-m",
                "bindings/python/Cargo.toml",
                "-o",
            ])
            .arg(&dir),
    )?;
    let wheel = std::fs::read_dir(&dir)
        .map_err(|e| format!("reading {}: {e}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .find(|path| path.extension().is_some_and(|ext| ext == "whl"))
        .ok_or_else(|| format!("maturin left no wheel in {}", dir.display()))?;
    run(
        "python install",
        Command::new(venv_bin("pip"))
            .args([
                "install",
                "-q",
                "--no-index",
                "--force-reinstall",
                "--disable-pip-version-check",
            ])
            .arg(&wheel),
    )?;
    Ok(wheel)
}

/// The debug server binary, built if needed.
pub fn server_binary() -> Result<PathBuf, String> {
    run(
        "server binary",
        Command::new("cargo").args(["build", "--locked", "-q", "-p", "letta-app-server"]),
    )?;
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| repo_root().join("target"), PathBuf::from);
    Ok(repo_root().join(target).join("debug").join("letta-app-server"))
}

/// Runs the whole Python part: environment, wheel, server binary, pytest.
pub fn run_tests() -> Result<(), String> {
    prepare(TOOLS)?;
    build_wheel()?;
    let server = server_binary()?;
    run(
        "python tests",
        Command::new(venv_bin("python"))
            .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "bindings/python/tests"])
            .env("LETTA_APP_SERVER_BIN", &server)
            .env("RUST_LOG", server_log_filter()),
    )
}

/// The log filter of the servers the SDKs' tests start: `RUST_LOG` when set, else `warn` (a
/// line per connection and turn at `info` would bury the tests' own output).
pub(crate) fn server_log_filter() -> String {
    std::env::var("RUST_LOG")
        .ok()
        .filter(|filter| !filter.is_empty())
        .unwrap_or_else(|| "warn".into())
}

/// Runs `command` in the repository root, echoing it; an error names `step`.
pub(crate) fn run(step: &str, command: &mut Command) -> Result<(), String> {
    command.current_dir(repo_root());
    eprintln!("==> {step}: {}", shown(command));
    let status = command.status().map_err(|e| {
        format!(
            "{step}: could not start `{}`: {e}",
            command.get_program().to_string_lossy()
        )
    })?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{step} failed (see above)"))
    }
}

fn shown(command: &Command) -> String {
    let root = repo_root();
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|part| {
            let part = Path::new(part);
            part.strip_prefix(&root).unwrap_or(part).display().to_string()
        })
        .collect::<Vec<_>>()
        .join(" ")
}
