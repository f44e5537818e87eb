//! The terminal group (docs/protocol.md §4.14): `terminal_spawn`, `terminal_input`,
//! `terminal_resize`, `terminal_kill`, and the pushes `terminal_spawned`, `terminal_output`,
//! `terminal_exited`.
//!
//! A terminal is the configured shell ([`Config::shell`](crate::config::Config::shell)) on a
//! pseudo-terminal of its own, owned by one connection and named by the client's `terminal_id`.
//! Its output goes to that connection only, and waits for room in the connection's outbound
//! queue ([`Caller::room`]): a reader that falls behind stops the shell's writes, as a real
//! terminal does, and nothing piles up in memory. Every terminal of a connection is killed when
//! the connection closes; a connection has at most [`MAX_TERMINALS`].

use std::collections::HashMap;
use std::io::ErrorKind;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::FutureExt;
use letta_app_server_protocol::{
    ErrorCode, ErrorFrame, FrameType, TerminalExited, TerminalInput, TerminalKill, TerminalOutput, TerminalResize,
    TerminalSpawn, TerminalSpawned,
};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use pty_process::{OwnedReadPty, OwnedWritePty, Size};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::Caller;
use crate::sync::lock;

/// Terminals one connection may have alive at once; a `terminal_spawn` past it is answered
/// `terminal_exited` with `exitCode: -1` and an error, as a shell that could not start.
pub const MAX_TERMINALS: usize = 16;

/// Bytes of output one `terminal_output` carries at most (before JSON escaping).
const OUTPUT_CHUNK: usize = 16 * 1024;

/// Inputs and resizes queued for one terminal's writer; past it, `terminal_input` waits for
/// the shell to read.
const INPUT_QUEUE: usize = 64;

/// How long a killed shell's process group has between `SIGHUP` and `SIGKILL`.
const HANGUP_GRACE: Duration = Duration::from_secs(2);

/// How long a terminal may stay silent once its shell exited before its output is taken as
/// ended (a background process can keep the pseudo-terminal open). Waiting for the reader does
/// not count: what the shell wrote is all sent before `terminal_exited`.
const OUTPUT_GRACE: Duration = Duration::from_millis(500);

/// The terminals of one connection.
#[derive(Debug, Default)]
pub struct Terminals {
    alive: Mutex<HashMap<String, Handle>>,
    /// Cancelled when the connection closes: every terminal is killed.
    closed: CancellationToken,
}

/// What a connection holds of one of its terminals.
#[derive(Debug, Clone)]
struct Handle {
    pid: u32,
    control: mpsc::Sender<Control>,
    kill: CancellationToken,
}

/// What a terminal's writer is asked to do, in order.
#[derive(Debug)]
enum Control {
    Input(String),
    Resize(Size),
}

impl Terminals {
    /// Kills every terminal of the connection (it closed); none is spawned afterwards.
    pub fn close(&self) {
        self.closed.cancel();
        lock(&self.alive).clear();
    }

    fn get(&self, terminal_id: &str) -> Option<Handle> {
        lock(&self.alive).get(terminal_id).cloned()
    }
}

/// `terminal_spawn`: starts the shell in `cwd` (relative to the boot working directory; the
/// boot working directory when absent) and answers `terminal_spawned`; a terminal of this id
/// that is alive is answered `terminal_spawned` again. A shell that cannot start is answered
/// `terminal_exited` with `exitCode: -1` and Node's error text, as real Letta does.
pub(super) fn spawn(caller: &Arc<dyn Caller>, spawn: TerminalSpawn) {
    let terminals = caller.terminals();
    let failed = |error: String| TerminalExited {
        terminal_id: spawn.terminal_id.clone(),
        exit_code: -1,
        error: Some(error),
    };
    let mut alive = lock(&terminals.alive);
    if terminals.closed.is_cancelled() {
        return;
    }
    if let Some(terminal) = alive.get(&spawn.terminal_id) {
        caller.send(TerminalSpawned {
            terminal_id: spawn.terminal_id.clone(),
            pid: terminal.pid,
        });
        return;
    }
    if alive.len() >= MAX_TERMINALS {
        drop(alive);
        caller.send(failed(format!(
            "too many terminals: a connection may have {MAX_TERMINALS} at once"
        )));
        return;
    }
    let cwd = Path::new(&caller.engine().settings.boot_cwd()).join(spawn.cwd.as_deref().unwrap_or_default());
    let started = start(&caller.engine().config.shell, &cwd, size(spawn.rows, spawn.cols));
    let (pty, child) = match started {
        Ok(started) => started,
        Err(error) => {
            drop(alive);
            caller.send(failed(error));
            return;
        }
    };
    let pid = child.id().unwrap_or_default();
    let (control, requests) = mpsc::channel(INPUT_QUEUE);
    let kill = terminals.closed.child_token();
    alive.insert(
        spawn.terminal_id.clone(),
        Handle {
            pid,
            control,
            kill: kill.clone(),
        },
    );
    drop(alive);
    caller.send(TerminalSpawned {
        terminal_id: spawn.terminal_id.clone(),
        pid,
    });
    tokio::spawn(run(
        caller.clone(),
        (spawn.terminal_id, pid),
        pty,
        child,
        requests,
        kill,
    ));
}

/// A pseudo-terminal of `size` with `shell` started on it in `cwd`, or Node's error text
/// (`spawn <shell> ENOENT`).
fn start(shell: &str, cwd: &Path, size: Size) -> Result<(pty_process::Pty, tokio::process::Child), String> {
    let failed = |error: std::io::Error| {
        let code = match error.kind() {
            ErrorKind::NotFound => "ENOENT".to_owned(),
            ErrorKind::PermissionDenied => "EACCES".to_owned(),
            _ => error.to_string(),
        };
        format!("spawn {shell} {code}")
    };
    let io = |error: pty_process::Error| match error {
        pty_process::Error::Io(error) => failed(error),
        other => failed(std::io::Error::other(other.to_string())),
    };
    let (pty, pts) = pty_process::open().map_err(io)?;
    pty.resize(size).map_err(io)?;
    let child = pty_process::Command::new(shell)
        .current_dir(cwd)
        .env("TERM", "xterm-256color")
        .kill_on_drop(true)
        .spawn(pts)
        .map_err(io)?;
    Ok((pty, child))
}

fn size(rows: u32, cols: u32) -> Size {
    let clamp = |n: u32| u16::try_from(n.max(1)).unwrap_or(u16::MAX);
    Size::new(clamp(rows), clamp(cols))
}

/// A terminal's life: its writer and its output run until the shell exits (or is killed), then
/// `terminal_exited` follows the last output.
async fn run(
    caller: Arc<dyn Caller>,
    (terminal_id, pid): (String, u32),
    pty: pty_process::Pty,
    mut child: tokio::process::Child,
    requests: mpsc::Receiver<Control>,
    kill: CancellationToken,
) {
    let (reader, writer) = pty.into_split();
    let exited = CancellationToken::new();
    let output = tokio::spawn(forward_output(
        caller.clone(),
        terminal_id.clone(),
        reader,
        exited.clone(),
    ));
    let writing = tokio::spawn(write_input(writer, requests));
    let status = tokio::select! {
        status = child.wait() => status,
        () = kill.cancelled() => terminate(&mut child).await,
    };
    writing.abort();
    exited.cancel();
    // Ends once the rest of the output is sent (or the connection closed).
    let _ = output.await;
    let terminals = caller.terminals();
    {
        let mut alive = lock(&terminals.alive);
        // Unless it was killed, and a new terminal took the id since.
        if alive.get(&terminal_id).is_some_and(|handle| handle.pid == pid) {
            alive.remove(&terminal_id);
        }
    }
    if terminals.closed.is_cancelled() {
        return;
    }
    let (exit_code, error) = match status {
        Ok(status) => (
            status
                .code()
                .or_else(|| status.signal().map(|signal| 128 + signal))
                .unwrap_or(-1),
            None,
        ),
        Err(error) => (-1, Some(error.to_string())),
    };
    caller.send(TerminalExited {
        terminal_id,
        exit_code,
        error,
    });
}

/// Hangs up the shell's process group, as closing a terminal window does; what is still alive
/// after [`HANGUP_GRACE`] is killed.
async fn terminate(child: &mut tokio::process::Child) -> std::io::Result<std::process::ExitStatus> {
    // The shell leads its own session and process group.
    let group = child.id().and_then(|pid| i32::try_from(pid).ok()).map(Pid::from_raw);
    let signal = |signal| {
        if let Some(group) = group {
            // Fails only when the whole group is gone already.
            let _ = killpg(group, signal);
        }
    };
    signal(Signal::SIGHUP);
    if let Ok(status) = tokio::time::timeout(HANGUP_GRACE, child.wait()).await {
        return status;
    }
    signal(Signal::SIGKILL);
    child.wait().await
}

/// Writes inputs and applies resizes in the order they came.
async fn write_input(mut writer: OwnedWritePty, mut requests: mpsc::Receiver<Control>) {
    while let Some(request) = requests.recv().await {
        let written = match request {
            Control::Input(data) => writer.write_all(data.as_bytes()).await.map_err(|_| ()),
            Control::Resize(size) => writer.resize(size).map_err(|_| ()),
        };
        if written.is_err() {
            return;
        }
    }
}

/// Sends the terminal's output as `terminal_output` frames until the pseudo-terminal closes (or
/// stays silent for [`OUTPUT_GRACE`] after the shell `exited`):
/// each read takes what is ready, up to [`OUTPUT_CHUNK`] bytes, and waits for room in the
/// connection's queue first. Bytes are decoded as UTF-8; a character split between reads is
/// sent whole with the next frame.
async fn forward_output(
    caller: Arc<dyn Caller>,
    terminal_id: String,
    mut reader: OwnedReadPty,
    exited: CancellationToken,
) {
    let closed = caller.terminals().closed.clone();
    let mut buffer = vec![0; OUTPUT_CHUNK];
    let mut pending = Vec::new();
    loop {
        tokio::select! {
            () = caller.room() => {}
            () = closed.cancelled() => return,
        }
        let mut filled = tokio::select! {
            read = reader.read(&mut buffer) => match read {
                // End of file, or EIO once every process let go of the terminal.
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            },
            () = closed.cancelled() => return,
            () = silent_after(&exited) => return,
        };
        while filled < OUTPUT_CHUNK {
            match reader.read(&mut buffer[filled..]).now_or_never() {
                Some(Ok(n)) if n > 0 => filled += n,
                _ => break,
            }
        }
        pending.extend_from_slice(&buffer[..filled]);
        let data = decode(&mut pending);
        if !data.is_empty() {
            caller.send(TerminalOutput {
                terminal_id: terminal_id.clone(),
                data,
            });
        }
    }
}

/// Resolves [`OUTPUT_GRACE`] after the shell exited (a read of the terminal that takes longer
/// then waits for a background process that kept the terminal open).
async fn silent_after(exited: &CancellationToken) {
    exited.cancelled().await;
    tokio::time::sleep(OUTPUT_GRACE).await;
}

/// Takes the text at the start of `bytes`: invalid UTF-8 becomes U+FFFD; an incomplete
/// character at the end stays in `bytes` for the next read.
fn decode(bytes: &mut Vec<u8>) -> String {
    let mut text = String::with_capacity(bytes.len());
    let mut rest: &[u8] = bytes;
    loop {
        match std::str::from_utf8(rest) {
            Ok(valid) => {
                text.push_str(valid);
                rest = &[];
                break;
            }
            Err(error) => {
                let (valid, after) = rest.split_at(error.valid_up_to());
                text.push_str(std::str::from_utf8(valid).unwrap_or_default());
                match error.error_len() {
                    Some(invalid) => {
                        text.push(char::REPLACEMENT_CHARACTER);
                        rest = &after[invalid..];
                    }
                    None => {
                        rest = after;
                        break;
                    }
                }
            }
        }
    }
    let kept = rest.len();
    bytes.drain(..bytes.len() - kept);
    text
}

/// `terminal_input`: the text is written to the terminal, in order with the other inputs.
pub(super) async fn input(caller: &Arc<dyn Caller>, input: TerminalInput) {
    let Some(terminal) = known(caller, &input.terminal_id, TerminalInput::TYPE) else {
        return;
    };
    if terminal.control.send(Control::Input(input.data)).await.is_err() {
        unknown(caller.as_ref(), &input.terminal_id, TerminalInput::TYPE);
    }
}

/// `terminal_resize`: the terminal's rows and columns change (the shell gets `SIGWINCH`).
pub(super) async fn resize(caller: &Arc<dyn Caller>, resize: TerminalResize) {
    let Some(terminal) = known(caller, &resize.terminal_id, TerminalResize::TYPE) else {
        return;
    };
    let size = size(resize.rows, resize.cols);
    if terminal.control.send(Control::Resize(size)).await.is_err() {
        unknown(caller.as_ref(), &resize.terminal_id, TerminalResize::TYPE);
    }
}

/// `terminal_kill`: the terminal is forgotten at once (later commands naming it are answered
/// as for an unknown one) and its shell's process group hung up; `terminal_exited` follows.
pub(super) fn kill(caller: &Arc<dyn Caller>, kill: TerminalKill) {
    let killed = lock(&caller.terminals().alive).remove(&kill.terminal_id);
    match killed {
        Some(terminal) => terminal.kill.cancel(),
        None => unknown(caller.as_ref(), &kill.terminal_id, TerminalKill::TYPE),
    }
}

/// The alive terminal `terminal_id` of the caller's connection; else an `error` frame.
fn known(caller: &Arc<dyn Caller>, terminal_id: &str, frame_type: &str) -> Option<Handle> {
    let terminal = caller.terminals().get(terminal_id);
    if terminal.is_none() {
        unknown(caller.as_ref(), terminal_id, frame_type);
    }
    terminal
}

/// Answers a command naming no alive terminal of the connection (never spawned, exited, or
/// killed): an `error` frame of code `invalid_frame`.
fn unknown(caller: &dyn Caller, terminal_id: &str, frame_type: &str) {
    caller.send(ErrorFrame {
        request_id: None,
        code: ErrorCode::InvalidFrame,
        message: format!("Terminal not found: {terminal_id}"),
        frame_type: Some(frame_type.to_owned()),
    });
}

#[cfg(test)]
mod tests {
    use super::decode;

    #[test]
    fn a_character_split_between_reads_is_sent_whole() {
        let mut pending = "a é".as_bytes().to_vec();
        let last = pending.pop().expect("a byte");
        assert_eq!(decode(&mut pending), "a ");
        assert_eq!(pending.len(), 1);
        pending.push(last);
        pending.extend_from_slice(b"\xffz");
        assert_eq!(decode(&mut pending), "é\u{FFFD}z");
        assert!(pending.is_empty());
    }
}
