//! The server under test as a child process (the shared test support's), and what `/proc`
//! says about it.

use std::path::Path;
use std::time::Duration;

use letta_app_server_tests::process;

use super::BenchResult;

/// How long the server may take to stop after `SIGTERM`.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// A running `letta-app-server`: the shared test support's process (killed when dropped) and
/// the `/proc` readings the measurements take.
pub struct ServerProcess {
    process: process::ServerProcess,
    /// Its process id.
    pub pid: u32,
    /// `ws://127.0.0.1:<port>/ws`.
    pub url: String,
    /// The data directory when it is the server's own (removed when dropped).
    _data: Option<tempfile::TempDir>,
}

impl ServerProcess {
    /// Starts `binary --listen ws://127.0.0.1:0 --data-dir <fresh temp dir>` with these extra
    /// environment variables and waits for its `Listening on ws://HOST:PORT` line.
    pub async fn start(binary: &Path, env: &[(&str, String)]) -> BenchResult<Self> {
        let data = temp_dir("data")?;
        let mut server = Self::start_in(binary, data.path(), env).await?;
        server._data = Some(data);
        Ok(server)
    }

    /// Starts `binary --listen ws://127.0.0.1:0 --data-dir <data_dir>` (a directory the caller
    /// keeps, e.g. across restarts), working in that directory, and waits for its address.
    pub async fn start_in(binary: &Path, data_dir: &Path, env: &[(&str, String)]) -> BenchResult<Self> {
        let mut command = process::command(binary, data_dir, &[]);
        command.current_dir(data_dir);
        for (name, value) in env {
            command.env(name, value);
        }
        // Waiting for the address blocks: not on the runtime's threads.
        let process = tokio::task::spawn_blocking(move || process::ServerProcess::spawn_quiet(command))
            .await
            .map_err(|e| format!("starting the server: {e}"))??;
        Ok(Self {
            pid: process.pid(),
            url: process.url.clone(),
            process,
            _data: None,
        })
    }

    /// Kills the server with `SIGKILL` (`kill -9`: no chance to save anything) and reaps it.
    pub async fn kill(mut self) -> BenchResult<()> {
        self.process.kill_9()
    }

    /// How the server ended, if it has (`None` while it runs).
    pub fn exit_status(&mut self) -> Option<std::process::ExitStatus> {
        self.process.exit_status()
    }

    /// How many files (sockets included) the server has open: the entries of `/proc/<pid>/fd`.
    pub fn open_files(&self) -> BenchResult<usize> {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid))
            .map(Iterator::count)
            .map_err(|e| format!("reading /proc/{}/fd: {e}", self.pid))
    }

    /// User + system CPU time the server has used so far, all threads, in clock ticks.
    pub fn cpu_ticks(&self) -> BenchResult<u64> {
        cpu_ticks(self.pid)
    }

    /// `VmRSS` (resident now), `RssAnon` (its anonymous part) and `VmHWM` (peak resident) in
    /// bytes.
    pub fn memory(&self) -> BenchResult<Memory> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .map_err(|e| format!("reading /proc/{}/status: {e}", self.pid))?;
        let kib = |key: &str| -> BenchResult<u64> {
            status
                .lines()
                .find_map(|line| line.strip_prefix(key))
                .and_then(|value| value.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .map(|kib| kib * 1024)
                .ok_or_else(|| format!("no {key} in /proc/{}/status", self.pid))
        };
        Ok(Memory {
            rss: kib("VmRSS:")?,
            anon: kib("RssAnon:")?,
            peak: kib("VmHWM:")?,
        })
    }

    /// Resets the peak resident set size (`VmHWM`) to the current one, so that the next
    /// [`ServerProcess::memory`] reports the peak of what happened since; `false` where the
    /// kernel does not allow it (then `VmHWM` is the peak since the server started).
    pub fn reset_peak(&self) -> bool {
        std::fs::write(format!("/proc/{}/clear_refs", self.pid), "5").is_ok()
    }

    /// Asks the server to stop (`SIGTERM`) and waits for it; kills it if it does not stop in
    /// time. Returns how long the shutdown took, or an error naming what went wrong.
    pub async fn stop(mut self) -> BenchResult<Duration> {
        tokio::task::spawn_blocking(move || self.process.terminate(SHUTDOWN_TIMEOUT).map(|(took, _)| took))
            .await
            .map_err(|e| format!("stopping the server: {e}"))?
    }
}

/// A new directory under the system's temp directory, named `letta-bench-<purpose>-…`, removed
/// when dropped.
pub fn temp_dir(purpose: &str) -> BenchResult<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix(&format!("letta-bench-{purpose}-"))
        .tempdir()
        .map_err(|e| format!("creating a temporary directory ({purpose}): {e}"))
}

/// Resident memory of a process.
#[derive(Debug, Clone, Copy)]
pub struct Memory {
    /// `VmRSS`, bytes.
    pub rss: u64,
    /// `RssAnon`, bytes: the resident memory that is not file pages (the binary's code, mapped
    /// from the page cache, is most of the rest, and varies with what the cache holds).
    pub anon: u64,
    /// `VmHWM`, bytes.
    pub peak: u64,
}

/// User + system CPU time a process has used so far, all its threads, in clock ticks
/// (`utime` + `stime` of `/proc/<pid>/stat`).
pub fn cpu_ticks(pid: u32) -> BenchResult<u64> {
    let stat =
        std::fs::read_to_string(format!("/proc/{pid}/stat")).map_err(|e| format!("reading /proc/{pid}/stat: {e}"))?;
    // The command name (field 2) may contain spaces; the fields after it are plain numbers.
    let rest = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state); utime and stime are fields 14 and 15.
    let field = |index: usize| -> BenchResult<u64> {
        fields
            .get(index - 3)
            .and_then(|value| value.parse().ok())
            .ok_or_else(|| format!("no field {index} in /proc/{pid}/stat"))
    };
    Ok(field(14)? + field(15)?)
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 when it cannot be asked).
pub fn clock_ticks_per_second() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .filter(|ticks| *ticks > 0)
        .unwrap_or(100)
}
