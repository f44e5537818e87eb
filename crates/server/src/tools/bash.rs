//! `Bash`: runs a shell command in the working directory.

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use letta_app_server_protocol::JsonObject;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::args::{object_schema, optional_bool, optional_str, optional_u64, required_str, try_arg};
use super::{LocalTool, OutputLine, ToolContext, ToolFuture, ToolKind, ToolResult};

/// Timeout when none is given.
const DEFAULT_TIMEOUT_MS: u64 = 120_000;
/// Largest timeout a call may ask for.
const MAX_TIMEOUT_MS: u64 = 600_000;
/// Characters of output the model sees.
const MAX_OUTPUT_CHARS: usize = 30_000;
/// Bytes after which an unterminated line is cut into a line of its own.
const MAX_LINE_BYTES: usize = 64 * 1024;
/// Bytes of output kept per stream (the rest is only counted).
const CAPTURE_BYTES: usize = 4 * 1024 * 1024;
/// How long to wait for output after the shell exits (background children may hold the pipes).
const DRAIN_AFTER_EXIT: Duration = Duration::from_millis(250);

/// `Bash`: runs `bash -c <command>`.
pub struct Bash;

impl LocalTool for Bash {
    fn name(&self) -> &'static str {
        "Bash"
    }

    fn description(&self) -> &'static str {
        "Runs a bash command in the working directory and returns its stdout followed by its \
         stderr (at most 30000 characters). Standard input is closed, so interactive commands fail. \
         A non-zero exit status makes the call fail with `Exit code N`. The command is killed after \
         `timeout` milliseconds (default 120000, at most 600000). Quote paths that contain spaces. \
         Prefer the Read, Edit, Write, Grep and Glob tools over cat, sed, grep or find. With \
         `run_in_background` it returns at once (a server, a long build): its end arrives as a \
         <task-notification> message, and only a `timeout` given stops it early."
    }

    fn parameters(&self) -> JsonObject {
        object_schema(
            json!({
                "command": {
                    "type": "string",
                    "description": "The command to run with `bash -c`."
                },
                "description": {
                    "type": "string",
                    "description": "What the command does, in 5-10 words (shown to the user)."
                },
                "timeout": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": MAX_TIMEOUT_MS,
                    "description": "Timeout in milliseconds (default 120000, at most 600000)."
                },
                "run_in_background": {
                    "type": "boolean",
                    "description": "Run it in the background: the call returns its id (`bash_1`) at once; read its output with TaskOutput, stop it with TaskStop; a <task-notification> message reports its end."
                }
            }),
            &["command", "description"],
        )
    }

    fn kind(&self) -> ToolKind {
        ToolKind::Shell
    }

    fn run<'a>(&'a self, args: JsonObject, context: ToolContext<'a>) -> ToolFuture<'a> {
        Box::pin(async move {
            let command = try_arg!(required_str(&args, "command"));
            // Described as required for the model, but a missing description harms nothing.
            let description = try_arg!(optional_str(&args, "description"));
            let timeout_ms = try_arg!(optional_u64(&args, "timeout")).unwrap_or(DEFAULT_TIMEOUT_MS);
            if timeout_ms > MAX_TIMEOUT_MS {
                return ToolResult::error(format!(
                    "timeout {timeout_ms} ms is too large: the maximum is {MAX_TIMEOUT_MS} ms (10 minutes)."
                ));
            }
            if timeout_ms == 0 {
                return ToolResult::error("timeout must be at least 1 ms; omit it for the default of 120000 ms.");
            }
            let background = try_arg!(optional_bool(&args, "run_in_background")) == Some(true);
            if command.trim().is_empty() {
                return ToolResult::error("`command` is empty.");
            }
            if !context.cwd.is_dir() {
                return ToolResult::error(format!(
                    "The working directory {} does not exist; use SetWorkingDirectory to choose another.",
                    context.cwd.display()
                ));
            }
            if background {
                let request = ShellRequest {
                    command: command.to_owned(),
                    description: description.map(str::to_owned),
                    // In the background only a timeout given counts (real Letta applies its
                    // default there too, killing long-running servers after two minutes).
                    timeout: try_arg!(optional_u64(&args, "timeout")).map(Duration::from_millis),
                    cwd: context.cwd.to_path_buf(),
                    secrets: context.secrets.clone(),
                };
                return context.tasks.shell(request).await;
            }
            let timeout = Duration::from_millis(timeout_ms);
            run_shell(
                command,
                timeout,
                context.cwd,
                context.cancel,
                context.secrets,
                context.output,
            )
            .await
            .0
        })
    }
}

#[derive(Clone, Copy)]
enum Stream {
    Stdout,
    Stderr,
}

/// Lines of one stream, kept up to [`CAPTURE_BYTES`].
#[derive(Default)]
struct Capture {
    lines: Vec<String>,
    bytes: usize,
    /// Characters (with newlines) of lines not kept.
    dropped_chars: usize,
}

impl Capture {
    fn push(&mut self, line: String) {
        if self.bytes + line.len() <= CAPTURE_BYTES {
            self.bytes += line.len() + 1;
            self.lines.push(line);
        } else {
            self.dropped_chars += line.chars().count() + 1;
        }
    }
}

enum Outcome {
    Exited(ExitStatus),
    TimedOut,
    Interrupted,
}

/// A command to run in the background (`run_in_background`), which outlives the turn: the
/// engine keeps it (see [`super::Tasks::shell`]).
#[derive(Debug, Clone)]
pub struct ShellRequest {
    pub command: String,
    pub description: Option<String>,
    /// Killed after this long, if given.
    pub timeout: Option<Duration>,
    pub cwd: std::path::PathBuf,
    /// The agent's secrets (those the command names go to its environment).
    pub secrets: BTreeMap<String, String>,
}

/// How a shell command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ShellEnd {
    /// It exited, with this code (none when a signal ended it).
    Exited(Option<i32>),
    /// Its timeout passed; it was killed.
    TimedOut,
    /// It was cancelled; it was killed.
    Interrupted,
}

/// Runs `bash -c <command>` in `cwd` in a process group of its own, killed on `cancel` or after
/// `timeout`; each output line (secrets redacted) goes to `output` as it comes; the result is
/// what the model reads (stdout, then stderr, at most 30000 characters, with how it ended), and
/// how it ended.
pub(crate) async fn run_shell(
    command: &str,
    timeout: Duration,
    cwd: &std::path::Path,
    cancel: &tokio_util::sync::CancellationToken,
    secrets: &BTreeMap<String, String>,
    output: &mut (dyn FnMut(OutputLine) + Send),
) -> (ToolResult, ShellEnd) {
    let secrets = named_secrets(command, secrets);
    let mut child = match tokio::process::Command::new("bash")
        .arg("-c")
        .arg(command)
        .envs(secrets.iter().copied())
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
    {
        Ok(child) => child,
        Err(error) => {
            return (
                ToolResult::error(format!("Failed to start bash: {error}")),
                ShellEnd::Exited(None),
            );
        }
    };
    // The shell leads its own process group, so the group id is its pid. The guard kills the
    // group if this future is dropped before the command finished.
    let mut group = GroupGuard(child.id().and_then(|pid| i32::try_from(pid).ok()).map(Pid::from_raw));

    let (sender, mut receiver) = mpsc::unbounded_channel();
    let mut readers = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        readers.push(tokio::spawn(read_lines(stdout, Stream::Stdout, sender.clone())));
    }
    if let Some(stderr) = child.stderr.take() {
        readers.push(tokio::spawn(read_lines(stderr, Stream::Stderr, sender.clone())));
    }
    drop(sender);

    let mut stdout = Capture::default();
    let mut stderr = Capture::default();
    let mut record = |stream: Stream, line: String| match (stream, redact(line, &secrets)) {
        (Stream::Stdout, line) => {
            output(OutputLine::Stdout(line.clone()));
            stdout.push(line);
        }
        (Stream::Stderr, line) => {
            output(OutputLine::Stderr(line.clone()));
            stderr.push(line);
        }
    };

    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    let drain = tokio::time::sleep(timeout + DRAIN_AFTER_EXIT);
    tokio::pin!(drain);
    let mut exited: Option<ExitStatus> = None;
    let mut readers_done = false;
    let outcome = loop {
        if readers_done && let Some(status) = exited {
            break Outcome::Exited(status);
        }
        tokio::select! {
            biased;
            () = cancel.cancelled() => {
                group.kill();
                break Outcome::Interrupted;
            }
            () = &mut deadline, if exited.is_none() => {
                group.kill();
                break Outcome::TimedOut;
            }
            line = receiver.recv(), if !readers_done => match line {
                Some((stream, line)) => record(stream, line),
                None => readers_done = true,
            },
            status = child.wait(), if exited.is_none() => match status {
                Ok(status) => {
                    exited = Some(status);
                    drain.as_mut().reset(Instant::now() + DRAIN_AFTER_EXIT);
                }
                Err(error) => {
                    group.kill();
                    for reader in &readers {
                        reader.abort();
                    }
                    let result = ToolResult::error(format!("Failed to wait for the command: {error}"));
                    return (result, ShellEnd::Exited(None));
                }
            },
            () = &mut drain, if exited.is_some() => {
                // Background processes still hold the pipes; stop reading them.
                if let Some(status) = exited {
                    break Outcome::Exited(status);
                }
            }
        }
    };

    if matches!(outcome, Outcome::Exited(_)) {
        // Whatever the command left running in the background may go on.
        group.0 = None;
    } else {
        // Reap the shell; the group was killed, so this is immediate.
        let _ = tokio::time::timeout(Duration::from_secs(1), child.wait()).await;
    }
    while let Ok((stream, line)) = receiver.try_recv() {
        record(stream, line);
    }
    for reader in &readers {
        reader.abort();
    }

    // As a terminal shows it: every line ends with a newline (real Letta returns `made-dir\n`).
    let text: String = stdout
        .lines
        .iter()
        .chain(&stderr.lines)
        .map(|line| format!("{line}\n"))
        .collect();
    // Again as a whole: a value of several lines is in no single line.
    let mut text = redact(text, &secrets);
    if let Some(cut) = super::truncate_chars(&mut text, MAX_OUTPUT_CHARS, stdout.dropped_chars + stderr.dropped_chars) {
        text.push_str(&format!("\n… [output truncated: {cut} more characters]"));
    }

    let end = match outcome {
        Outcome::Interrupted => ShellEnd::Interrupted,
        Outcome::TimedOut => ShellEnd::TimedOut,
        Outcome::Exited(status) => ShellEnd::Exited(status.code()),
    };
    let (text, is_error) = match outcome {
        Outcome::Interrupted => ("Interrupted by user".to_owned(), true),
        Outcome::TimedOut => (
            append_note(
                text,
                &format!(
                    "Command timed out after {} ms and was killed. Use a larger `timeout` (at most {MAX_TIMEOUT_MS} ms) \
                     if it needs longer.",
                    timeout.as_millis()
                ),
            ),
            true,
        ),
        Outcome::Exited(status) => match (status.code(), status.signal()) {
            (Some(0), _) if text.is_empty() => ("(no output)".to_owned(), false),
            (Some(0), _) => (text, false),
            (Some(code), _) => (append_note(text, &format!("Exit code {code}")), true),
            (None, Some(signal)) => (append_note(text, &format!("Killed by signal {signal}")), true),
            (None, None) => (append_note(text, "The command ended abnormally"), true),
        },
    };
    let result = ToolResult {
        text,
        is_error,
        stdout: stdout.lines,
        stderr: stderr.lines,
        ..ToolResult::default()
    };
    (result, end)
}

/// The secrets `command` names as shell variables (`$NAME`, `${NAME}`, `${NAME:-…}`, `${#NAME}`,
/// `${!NAME}`), as real Letta passes them: in the environment, so their values are never in the
/// command itself. Scanned by hand: the grammar is one character class after `$`.
fn named_secrets<'s>(command: &str, secrets: &'s BTreeMap<String, String>) -> Vec<(&'s str, &'s str)> {
    if secrets.is_empty() {
        return Vec::new();
    }
    let mut named = BTreeMap::new();
    for (at, _) in command.match_indices('$') {
        let rest = &command[at + 1..];
        let rest = rest
            .strip_prefix("{#")
            .or_else(|| rest.strip_prefix("{!"))
            .or_else(|| rest.strip_prefix('{'))
            .unwrap_or(rest);
        let end = rest
            .char_indices()
            .find(|&(index, c)| !(c == '_' || c.is_ascii_uppercase() || (index > 0 && c.is_ascii_digit())))
            .map_or(rest.len(), |(index, _)| index);
        if let Some((name, value)) = secrets.get_key_value(&rest[..end]) {
            named.insert(name.as_str(), value.as_str());
        }
    }
    named.into_iter().collect()
}

/// `text` with each value of `secrets` replaced by `NAME=<REDACTED>`, longest first (so that a
/// value inside another is not half replaced), as real Letta shows them to the model.
fn redact(text: String, secrets: &[(&str, &str)]) -> String {
    let mut by_length: Vec<_> = secrets.iter().filter(|(_, value)| !value.is_empty()).collect();
    by_length.sort_by_key(|(_, value)| std::cmp::Reverse(value.len()));
    by_length.into_iter().fold(text, |text, (name, value)| {
        if text.contains(value) {
            text.replace(value, &format!("{name}=<REDACTED>"))
        } else {
            text
        }
    })
}

/// Kills a process group when asked or dropped.
struct GroupGuard(Option<Pid>);

impl GroupGuard {
    fn kill(&self) {
        if let Some(group) = self.0 {
            // Fails only if the whole group is already gone.
            let _ = killpg(group, Signal::SIGKILL);
        }
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

fn append_note(mut text: String, note: &str) -> String {
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(note);
    text
}

/// Sends the lines of `reader` (decoded lossily, without line terminators) until end of file.
async fn read_lines(reader: impl AsyncRead + Unpin, stream: Stream, sender: mpsc::UnboundedSender<(Stream, String)>) {
    let mut reader = BufReader::new(reader);
    let mut pending = Vec::new();
    let send = |pending: &mut Vec<u8>| {
        if pending.last() == Some(&b'\n') {
            pending.pop();
            if pending.last() == Some(&b'\r') {
                pending.pop();
            }
        }
        let line = String::from_utf8_lossy(pending).into_owned();
        pending.clear();
        sender.send((stream, line)).is_ok()
    };
    loop {
        let buffer = match reader.fill_buf().await {
            Ok([]) | Err(_) => break,
            Ok(buffer) => buffer,
        };
        let (taken, complete) = match buffer.iter().position(|&byte| byte == b'\n') {
            Some(index) => (index + 1, true),
            None => (buffer.len(), false),
        };
        pending.extend_from_slice(&buffer[..taken]);
        reader.consume(taken);
        if (complete || pending.len() >= MAX_LINE_BYTES) && !send(&mut pending) {
            return;
        }
    }
    if !pending.is_empty() {
        send(&mut pending);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::{named_secrets, redact};

    #[test]
    fn a_command_gets_the_secrets_it_names_in_any_shell_form() {
        let secrets: BTreeMap<String, String> = [("API_KEY", "k"), ("B", "b"), ("UNUSED", "u")]
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect();
        let named = |command: &str| named_secrets(command, &secrets);
        assert_eq!(named("curl -H \"$API_KEY\" ${B:-x}"), [("API_KEY", "k"), ("B", "b")]);
        assert_eq!(
            named("echo ${#API_KEY} ${!B} ${API_KEY}"),
            [("API_KEY", "k"), ("B", "b")]
        );
        assert_eq!(named("echo $API_KEYS $api_key $1B UNUSED"), []);
    }

    #[test]
    fn values_are_redacted_longest_first() {
        let secrets = [("SHORT", "abc"), ("LONG", "abcdef"), ("EMPTY", "")];
        assert_eq!(
            redact("x abcdef abc y".to_owned(), &secrets),
            "x LONG=<REDACTED> SHORT=<REDACTED> y"
        );
    }
}
