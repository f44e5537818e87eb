//! Terminal throughput: `yes | head -c 100M` in a terminal of the server, its output received
//! as `terminal_output` frames by a websocket client, in MB/s, with the server's CPU time; and
//! the same output read straight from a pseudo-terminal, the machine's ceiling for any terminal.

use std::borrow::Cow;
use std::io::Read;
use std::time::Instant;

use serde::Deserialize;
use serde_json::json;

use super::BenchResult;
use super::client::{Client, frame_type};
use super::process::ServerProcess;
use super::report::{Row, Unit};
use super::scenarios::{Bench, millis, ticks_to_micros};

/// Bytes the shell writes.
const OUTPUT: u64 = 100_000_000;
/// The target, MB/s received.
const TARGET: f64 = 100.0;

/// The fields of a terminal frame the benchmark reads.
#[derive(Deserialize)]
struct TerminalFrame<'a> {
    #[serde(borrow, default)]
    data: Cow<'a, str>,
    #[serde(rename = "exitCode", default)]
    exit_code: Option<i32>,
}

impl Bench<'_> {
    /// Spawns a terminal and times 100 MB of its output through the socket.
    pub async fn terminal_suite(&mut self) -> BenchResult<()> {
        let metric = "terminal: `yes | head -c 100M` received through terminal_output";
        match self.terminal_throughput().await {
            Ok((rate, detail)) => self
                .rows
                .push(Row::at_least(metric, "—", rate, Unit::MbPerSecond, TARGET).detail(detail)),
            Err(why) => self
                .rows
                .push(Row::failed(metric, "—", &why, Some(format!("≥ {TARGET} MB/s")))),
        }
        let metric = "terminal: the same output read straight from a pseudo-terminal (the ceiling)";
        match pty_ceiling().await {
            Ok(rate) => self.rows.push(Row::new(metric, "—", rate, Unit::MbPerSecond, None)),
            Err(why) => self.rows.push(Row::failed(metric, "—", &why, None)),
        }
        Ok(())
    }

    /// MB/s received, and a detail with the server's CPU.
    async fn terminal_throughput(&self) -> BenchResult<(f64, String)> {
        let server = ServerProcess::start(self.binary, &[("SHELL", "/bin/sh".to_owned())]).await?;
        let mut client = Client::connect(&server.url).await?;
        client
            .send(&json!({"type": "terminal_spawn", "terminal_id": "bench", "cols": 80, "rows": 24}))
            .await?;
        let spawned = client.recv().await?;
        if spawned.frame_type() != "terminal_spawned" {
            return Err(format!("terminal_spawn was answered {}", spawned.text));
        }
        // No echo and no "\n" → "\r\n": the client receives what the shell wrote.
        let command = format!("stty -echo -opost; yes | head -c {OUTPUT}; exit 0\n");
        let cpu_before = server.cpu_ticks()?;
        let started = Instant::now();
        client
            .send(&json!({"type": "terminal_input", "terminal_id": "bench", "data": command}))
            .await?;
        let (mut received, mut frames) = (0_u64, 0_u64);
        loop {
            let frame = client.recv().await?;
            match frame_type(&frame.text) {
                "terminal_output" => {
                    let output: TerminalFrame<'_> =
                        serde_json::from_str(&frame.text).map_err(|e| format!("a terminal_output: {e}"))?;
                    received += output.data.len() as u64;
                    frames += 1;
                }
                "terminal_exited" => {
                    let exited: TerminalFrame<'_> =
                        serde_json::from_str(&frame.text).map_err(|e| format!("a terminal_exited: {e}"))?;
                    if exited.exit_code != Some(0) {
                        return Err(format!("the shell ended {}", frame.text));
                    }
                    break;
                }
                _ => return Err(format!("unexpected frame {}", frame.text)),
            }
        }
        let elapsed = started.elapsed();
        let cpu = ticks_to_micros(server.cpu_ticks()? - cpu_before) / 1_000_000.0;
        client.close().await;
        server.stop().await?;
        if received < OUTPUT {
            return Err(format!("{received} bytes of {OUTPUT} arrived"));
        }
        let seconds = elapsed.as_secs_f64();
        let rate = received as f64 / 1e6 / seconds;
        Ok((
            rate,
            format!(
                "{received} bytes in {frames} frames in {:.0} ms; server CPU {:.2} s, {:.0}% of one core",
                millis(elapsed),
                cpu,
                cpu / seconds * 100.0
            ),
        ))
    }
}

/// MB/s of the benchmark's output read from a pseudo-terminal by a thread that does nothing
/// else (blocking reads): what the kernel's pseudo-terminal delivers on this machine, which no
/// terminal over it beats.
async fn pty_ceiling() -> BenchResult<f64> {
    tokio::task::spawn_blocking(|| {
        let failed = |error: pty_process::Error| format!("a pseudo-terminal: {error}");
        let (mut pty, pts) = pty_process::blocking::open().map_err(failed)?;
        let mut child = pty_process::blocking::Command::new("/bin/sh")
            .args(["-c", &format!("stty -echo -opost; yes | head -c {OUTPUT}")])
            .spawn(pts)
            .map_err(failed)?;
        let mut buffer = vec![0; 64 * 1024];
        let (started, mut received) = (Instant::now(), 0_u64);
        // End of file, or EIO once the shell and its children let go of the terminal.
        while let Ok(read @ 1..) = pty.read(&mut buffer) {
            received += read as u64;
        }
        let seconds = started.elapsed().as_secs_f64();
        let _ = child.wait();
        if received < OUTPUT {
            return Err(format!("{received} bytes of {OUTPUT} arrived"));
        }
        Ok(received as f64 / 1e6 / seconds)
    })
    .await
    .map_err(|error| format!("the reading thread: {error}"))?
}
