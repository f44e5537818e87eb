//! The real server binary as a child process on a free loopback port: started on a data
//! directory, stopped with `SIGTERM`, killed with `SIGKILL` (`kill -9`), and started again on the
//! same directory. The server's tests pass `env!("CARGO_BIN_EXE_letta-app-server")`; xtask builds
//! the binary and passes its path; other crates' tests find it with [`server_binary`].

use std::io::{BufRead, BufReader};
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

/// How long the server may take to print its address.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);

/// The server binary for the tests of a crate other than the server's (cargo gives
/// `CARGO_BIN_EXE_<name>` to a package's own tests only): `LETTA_APP_SERVER_BIN` when set (as xtask
/// sets it for the SDKs' tests), else `letta-app-server` in the target directory of the running
/// test, where `cargo nextest run --workspace` and `cargo test --workspace` (so `cargo xtask
/// test`) build it along with the test. Running one crate's tests alone needs `cargo build -p
/// letta-app-server` first; the error says so.
pub fn server_binary() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("LETTA_APP_SERVER_BIN") {
        return Ok(PathBuf::from(path));
    }
    let test = std::env::current_exe().map_err(|e| format!("the test's own path: {e}"))?;
    // The test is `target/<profile>/deps/<name>-<hash>`; the binaries are in `target/<profile>/`.
    let profile = test
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| format!("{} is not in a target directory", test.display()))?;
    let binary = profile.join(format!("letta-app-server{}", std::env::consts::EXE_SUFFIX));
    if binary.is_file() {
        Ok(binary)
    } else {
        Err(format!(
            "no server binary at {}: run the workspace's tests (`cargo xtask test`), or `cargo build -p \
             letta-app-server` first, or set LETTA_APP_SERVER_BIN",
            binary.display()
        ))
    }
}

/// `binary --listen ws://127.0.0.1:0 --data-dir <data_dir> <args>`, its standard input closed.
pub fn command(binary: &Path, data_dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(binary);
    command
        .args(["--listen", "ws://127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .args(args)
        .stdin(Stdio::null());
    command
}

/// A started server; killed (and reaped) when dropped, so a failed test or run leaves no server
/// behind. Dereferences to its [`Child`].
pub struct ServerProcess {
    child: Child,
    /// `ws://127.0.0.1:<port>/ws`.
    pub url: String,
    /// What it prints to stdout after its first line, read by a thread so that the server never
    /// blocks on a full pipe.
    stdout: Receiver<String>,
    /// What it writes to stderr (its logs), when [`spawn_logged`](Self::spawn_logged) kept it.
    stderr: Option<Receiver<String>>,
}

/// A thread that sends each line read from `pipe`, so that the server never blocks on a full
/// pipe (lines go on being read after the receiver is gone).
fn lines_of(pipe: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (lines_tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { return };
            let _ = lines_tx.send(line);
        }
    });
    lines
}

impl ServerProcess {
    /// Starts `command` (the binary, listening on a free port; see [`command`]) and waits for its
    /// `Listening on ws://HOST:PORT` line. Its stderr goes to ours.
    pub fn spawn(command: Command) -> Result<Self, String> {
        Self::start(command, Stdio::inherit())
    }

    /// Like [`spawn`](Self::spawn), but keeps what the server writes to stderr (its logs) for
    /// [`log_lines`](Self::log_lines).
    pub fn spawn_logged(command: Command) -> Result<Self, String> {
        Self::start(command, Stdio::piped())
    }

    /// Like [`spawn`](Self::spawn), but what the server writes to stderr (its logs) is
    /// discarded, as by a collector that keeps up (the benchmarks).
    pub fn spawn_quiet(command: Command) -> Result<Self, String> {
        Self::start(command, Stdio::null())
    }

    fn start(mut command: Command, stderr: Stdio) -> Result<Self, String> {
        let program = command.get_program().to_string_lossy().into_owned();
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("starting {program}: {e}"))?;
        let stdout = lines_of(child.stdout.take().ok_or("no stdout pipe")?);
        let stderr = child.stderr.take().map(lines_of);
        let mut server = Self {
            child,
            url: String::new(),
            stdout,
            stderr,
        };
        let first = server
            .next_line(STARTUP_TIMEOUT)
            .ok_or_else(|| format!("{program} printed no address within {STARTUP_TIMEOUT:?}"))?;
        let base = first
            .strip_prefix("Listening on ")
            .ok_or_else(|| format!("unexpected first line from {program}: {first:?}"))?
            .trim();
        server.url = format!("{base}/ws");
        Ok(server)
    }

    /// The next line the server printed to stdout, waiting up to `wait`; `None` when none came
    /// (or stdout closed).
    pub fn next_line(&self, wait: Duration) -> Option<String> {
        self.stdout.recv_timeout(wait).ok()
    }

    /// The lines it wrote to stderr since the last call, once none came for `quiet` (none
    /// unless it was started with [`spawn_logged`](Self::spawn_logged)).
    pub fn log_lines(&self, quiet: Duration) -> Vec<String> {
        let Some(stderr) = &self.stderr else {
            return Vec::new();
        };
        std::iter::from_fn(|| stderr.recv_timeout(quiet).ok()).collect()
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// How it ended, if it has (`None` while it runs).
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Kills it with `SIGKILL` (`kill -9`: no chance to save anything) and reaps it.
    pub fn kill_9(&mut self) -> Result<(), String> {
        let pid = self.pid();
        self.child
            .kill()
            .and_then(|()| self.child.wait().map(drop))
            .map_err(|e| format!("killing the server (pid {pid}): {e}"))
    }

    /// Asks it to stop (`SIGTERM`) and waits up to `timeout`; kills it if it does not stop in
    /// time. Returns how long the shutdown took and how it exited, or an error saying what went
    /// wrong.
    pub fn terminate(&mut self, timeout: Duration) -> Result<(Duration, ExitStatus), String> {
        let pid = self.pid();
        let started = Instant::now();
        let signalled = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .is_ok_and(|status| status.success());
        while signalled && started.elapsed() < timeout {
            match self.child.try_wait() {
                Ok(Some(status)) => return Ok((started.elapsed(), status)),
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                Err(error) => return Err(format!("waiting for the server (pid {pid}): {error}")),
            }
        }
        let _ = self.kill_9();
        Err(format!(
            "the server (pid {pid}) did not stop within {timeout:?} of SIGTERM and was killed"
        ))
    }
}

impl Deref for ServerProcess {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.child
    }
}

impl DerefMut for ServerProcess {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.child
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs `binary --data-dir <a fresh directory> <args>` and expects it to refuse them: a failure
/// exit status within ten seconds (a binary that accepted them and serves is killed), and
/// `expected` in what it printed to stderr.
pub fn refused(binary: &Path, args: &[&str], expected: &str) {
    // A data directory of its own, should the arguments be accepted after all.
    let data = tempfile::tempdir().expect("a temporary directory");
    let mut child = Command::new(binary)
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
