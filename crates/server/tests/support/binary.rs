//! The real server binary, started on a free loopback port.

#![allow(dead_code)] // each test binary uses a different part of this module

use std::io::{BufRead, BufReader};
use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The binary with `--listen` (a free port), `--data-dir data_dir` and `args`.
pub fn command(data_dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_letta-app-server"));
    command.args(["--listen", "--data-dir"]).arg(data_dir).args(args);
    command
}

/// A started server process; killed when dropped (a failed test leaves no server behind).
pub struct ServerProcess(Child);

impl Deref for ServerProcess {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl DerefMut for ServerProcess {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Starts the binary with `--listen` (a free port), `--data-dir data_dir` and `args`; returns it
/// and its websocket URL once it printed its four address lines.
pub fn spawn_server(data_dir: &Path, args: &[&str]) -> (ServerProcess, String) {
    spawn(command(data_dir, args))
}

/// Starts `command` (the binary, listening); returns it and its websocket URL once it printed
/// its four address lines.
pub fn spawn(mut command: Command) -> (ServerProcess, String) {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the server binary");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().expect("a line").expect("readable");
    let base = first
        .strip_prefix("Listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {first}"))
        .to_owned();
    let websocket = lines.next().expect("a line").expect("readable");
    assert_eq!(websocket, format!("WebSocket: {base}/ws"));
    assert_eq!(
        lines.next().expect("line").expect("readable"),
        format!("Control channel: {base}/ws?channel=control")
    );
    assert_eq!(
        lines.next().expect("line").expect("readable"),
        format!("Stream channel: {base}/ws?channel=stream")
    );
    (ServerProcess(child), format!("{base}/ws"))
}

/// Runs the binary with `args` and expects it to refuse them: a failure exit status within
/// ten seconds (a binary that accepted them and serves is killed), and `expected` in what it
/// printed to stderr.
pub fn refused(args: &[&str], expected: &str) {
    // A data directory of its own, should the arguments be accepted after all.
    let data = tempfile::tempdir().expect("a temporary directory");
    let mut child = Command::new(env!("CARGO_BIN_EXE_letta-app-server"))
        .arg("--data-dir")
        .arg(data.path())
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the server binary");
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().expect("poll the server binary").is_none() {
        if Instant::now() > deadline {
            child.kill().expect("kill");
            panic!("{args:?} was accepted: the server is running");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let output = child.wait_with_output().expect("its output");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{args:?} was accepted");
    assert!(
        stderr.contains(expected),
        "{args:?}: expected {expected:?} in {stderr:?}"
    );
}
