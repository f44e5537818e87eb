//! Background shell commands (`Bash` with `run_in_background`, and the commands `Monitor`
//! watches, docs/protocol.md §4.16): each runs as its own task until it exits, times out (if
//! given a timeout), is stopped by `TaskStop` (or `monitor_stop`), or the server stops. Its output
//! lines go to `<data dir>/tasks/<id>-<ms>.log` as they come (stderr ones prefixed `[stderr] `);
//! while it runs, its conversation's `device_status.background_processes` lists it as `bash` or
//! `monitor`; when it ends by itself a `task_notification` is queued on its conversation (none
//! after a stop). A monitor's stdout lines are also its events (see `monitor`).
//!
//! Bounds: [`MAX_PER_CONVERSATION`] running per conversation and [`MAX_RUNNING`] in the server,
//! monitors included; output files hold at most [`OUTPUT_FILE_BYTES`], the newest
//! [`MAX_OUTPUT_FILES`] are kept. Ended commands stay readable by `TaskOutput` for [`KEPT_FOR`]
//! (at most [`KEPT_PER_CONVERSATION`] per conversation). A conversation's commands stop when
//! its agent is deleted, or when the subagent that started them ends.

mod monitor;

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use letta_app_server_protocol::{BackgroundProcess, BashProcess, MonitorProcess, MonitorSource, RuntimeScope};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::Engine;
use super::notices::task_notification;
use crate::sync::lock;
use crate::tools::{OutputLine, ShellRequest, ToolResult, run_shell};
pub(crate) use monitor::Monitor;

/// Background commands running at once per conversation.
pub const MAX_PER_CONVERSATION: usize = 8;
/// Background commands running at once in the server (Letta's limit of background processes).
pub const MAX_RUNNING: usize = 32;
/// Output files kept in `<data dir>/commands` (the oldest go first).
pub const MAX_OUTPUT_FILES: usize = 256;
/// How long an ended command stays readable by `TaskOutput`.
pub const KEPT_FOR: Duration = Duration::from_secs(300);
/// Ended commands kept per conversation at most.
pub const KEPT_PER_CONVERSATION: usize = 16;
/// An output file takes lines up to this size.
pub const OUTPUT_FILE_BYTES: u64 = 16 * 1024 * 1024;
/// Characters of a command's output a notification or `TaskOutput` shows (its end).
const SHOWN_CHARS: usize = 10_000;
/// No timeout: a background command without one runs until it exits or is stopped.
const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// One background command.
pub(crate) struct Shell {
    /// `bash_N`, or `monitor_N`.
    pub(crate) id: String,
    /// Set for a monitor's command.
    monitor: Option<Monitor>,
    /// Its conversation.
    pub(crate) scope: RuntimeScope,
    command: String,
    description: Option<String>,
    started_at_ms: u64,
    started: Instant,
    pub(crate) output_file: PathBuf,
    cancel: CancellationToken,
    state: Mutex<ShellState>,
    done: watch::Sender<bool>,
}

#[derive(Default)]
struct ShellState {
    /// Its output so far, as the model would read it (the newest [`SHOWN_CHARS`] or so).
    tail: String,
    /// How it ended: the tool result of the command.
    result: Option<ToolResult>,
    /// Stopped by `TaskStop`: no notification.
    stopped: bool,
    output: Option<(std::fs::File, u64)>,
}

impl Shell {
    /// Its status and output, after waiting up to `wait` for it to end: `running` (the output so
    /// far) or `completed` / `failed` (the command's result).
    pub(crate) async fn output(&self, wait: Duration) -> (&'static str, String) {
        let mut done = self.done.subscribe();
        let _ = tokio::time::timeout(wait, done.wait_for(|done| *done)).await;
        let state = lock(&self.state);
        match &state.result {
            None if state.tail.is_empty() => ("running", "(no output yet)".to_owned()),
            None => ("running", tail_chars(&state.tail, SHOWN_CHARS)),
            Some(result) if result.is_error => ("failed", result.text.clone()),
            Some(result) => ("completed", result.text.clone()),
        }
    }

    fn is_running(&self) -> bool {
        lock(&self.state).result.is_none()
    }

    fn record(&self, line: OutputLine) {
        let line = match line {
            OutputLine::Stdout(line) => {
                if let Some(monitor) = &self.monitor {
                    monitor.push(line.clone());
                }
                line
            }
            OutputLine::Stderr(line) => format!("[stderr] {line}"),
        };
        let mut state = lock(&self.state);
        state.tail.push_str(&line);
        state.tail.push('\n');
        if state.tail.len() > 2 * SHOWN_CHARS * 4 {
            let keep = state.tail.len() - SHOWN_CHARS * 4;
            let cut = (keep..state.tail.len())
                .find(|&at| state.tail.is_char_boundary(at))
                .unwrap_or(0);
            state.tail.drain(..cut);
        }
        if let Some((file, written)) = state.output.as_mut()
            && *written + (line.len() as u64) < OUTPUT_FILE_BYTES
            && writeln!(file, "{line}").is_ok()
        {
            *written += line.len() as u64 + 1;
        }
    }

    /// The `task_notification` of its end.
    fn notification(&self, result: &ToolResult) -> String {
        let (status, verb) = if result.is_error {
            ("failed", "failed")
        } else {
            ("completed", "completed")
        };
        let name = self.description.as_deref().unwrap_or(&self.command);
        // The end of its output, which says how it ended.
        let shown = format!("$ {}\n\n{}", self.command, tail_chars(&result.text, SHOWN_CHARS));
        task_notification(
            &self.id,
            status,
            &format!("Background command \"{name}\" {verb}"),
            &shown,
            &[format!("duration_ms: {}", self.started.elapsed().as_millis())],
            &self.output_file,
        )
    }
}

/// The server's background commands.
pub struct Shells {
    engine: OnceLock<Weak<Engine>>,
    /// Where output files go (`<data dir>/tasks`, with the subagents').
    directory: PathBuf,
    /// The running commands, and the recently ended ones.
    shells: Mutex<Vec<Arc<Shell>>>,
    /// Numbers `bash_N`, and `monitor_N`.
    next: (AtomicU64, AtomicU64),
}

impl std::fmt::Debug for Shells {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shells")
            .field("shells", &lock(&self.shells).len())
            .finish_non_exhaustive()
    }
}

impl Shells {
    /// None yet; output files go to `<data_dir>/tasks`.
    pub(crate) fn new(data_dir: &std::path::Path) -> Self {
        Self {
            engine: OnceLock::new(),
            directory: data_dir.join("commands"),
            shells: Mutex::default(),
            next: (AtomicU64::new(1), AtomicU64::new(1)),
        }
    }

    /// Gives it the registry of conversation runtimes (once, when the engine is made).
    pub(crate) fn bind(&self, engine: &Arc<Engine>) {
        let _ = self.engine.set(Arc::downgrade(engine));
    }

    /// The running commands of `scope`, for `device_status.background_processes`: commands,
    /// then monitors, each newest first (as in Letta).
    pub(crate) fn processes_of(&self, scope: &RuntimeScope) -> Vec<BackgroundProcess> {
        let shells = lock(&self.shells);
        let of_scope = || (shells.iter().rev()).filter(|shell| shell.scope == *scope && shell.is_running());
        let commands = of_scope().filter(|shell| shell.monitor.is_none()).map(|shell| {
            BackgroundProcess::Bash(BashProcess {
                process_id: shell.id.clone(),
                command: shell.command.clone(),
                started_at_ms: Some(shell.started_at_ms),
                status: "running".into(),
                exit_code: None,
            })
        });
        let monitors = of_scope().filter_map(|shell| {
            let monitor = shell.monitor.as_ref()?;
            Some(BackgroundProcess::Monitor(MonitorProcess {
                process_id: shell.id.clone(),
                description: monitor.description.clone(),
                source: MonitorSource::Command,
                started_at_ms: shell.started_at_ms,
                status: "running".into(),
                persistent: monitor.persistent,
            }))
        });
        commands.chain(monitors).collect()
    }

    /// The text of an event of monitor `shell` saying `text`.
    pub(crate) fn event_of(&self, shell: &Shell, text: &str) -> String {
        let description = shell
            .monitor
            .as_ref()
            .map_or("", |monitor| monitor.description.as_str());
        super::notices::monitor_event(&shell.id, description, text)
    }

    /// The monitor `id` (running or recently ended), of whichever conversation (for
    /// `monitor_stop`).
    pub(crate) fn monitor(&self, id: &str) -> Option<Arc<Shell>> {
        (lock(&self.shells).iter())
            .find(|shell| shell.id == id && shell.monitor.is_some())
            .cloned()
    }

    /// The command `id` of `scope` (running or recently ended).
    pub(crate) fn find(&self, scope: &RuntimeScope, id: &str) -> Option<Arc<Shell>> {
        (lock(&self.shells).iter())
            .find(|shell| shell.scope == *scope && shell.id == id)
            .cloned()
    }

    /// Starts `request` in the background for `scope` (as `monitor`'s command, if given); its
    /// record, or why not.
    pub(crate) fn start(
        &self,
        scope: &RuntimeScope,
        request: ShellRequest,
        monitor: Option<Monitor>,
    ) -> Result<Arc<Shell>, String> {
        let engine = (self.engine.get().and_then(Weak::upgrade)).ok_or("The server is stopping")?;
        let mut shells = lock(&self.shells);
        // Checked under the lock that `stop_all` takes: none starts after it.
        if engine.is_stopping() {
            return Err("The server is stopping".into());
        }
        forget_ended(&mut shells, scope);
        let running = shells.iter().filter(|shell| shell.is_running()).count();
        let here = (shells.iter())
            .filter(|shell| shell.scope == *scope && shell.is_running())
            .count();
        if here >= MAX_PER_CONVERSATION || running >= MAX_RUNNING {
            let (count, limit) = if here >= MAX_PER_CONVERSATION {
                (here, MAX_PER_CONVERSATION)
            } else {
                (running, MAX_RUNNING)
            };
            return Err(format!(
                "Too many background processes already running ({count}/{limit}). Stop one before starting another."
            ));
        }
        let id = match monitor {
            None => format!("bash_{}", self.next.0.fetch_add(1, Ordering::Relaxed)),
            Some(_) => format!("monitor_{}", self.next.1.fetch_add(1, Ordering::Relaxed)),
        };
        let output_file = self.directory.join(format!("{id}-{}.log", crate::clock::now_millis()));
        let listed: Vec<PathBuf> = shells.iter().map(|shell| shell.output_file.clone()).collect();
        crate::private_file::prune(&self.directory, MAX_OUTPUT_FILES - 1, &listed);
        let file = crate::private_file::create(&output_file)
            .map_err(|error| format!("Could not create the output file {}: {error}", output_file.display()))?;
        let (done, _) = watch::channel(false);
        let shell = Arc::new(Shell {
            id,
            monitor,
            scope: scope.clone(),
            command: request.command.clone(),
            description: request.description.clone(),
            started_at_ms: crate::clock::now_millis(),
            started: Instant::now(),
            output_file,
            cancel: CancellationToken::new(),
            state: Mutex::new(ShellState {
                output: Some((file, 0)),
                ..ShellState::default()
            }),
            done,
        });
        shells.push(shell.clone());
        drop(shells);
        tokio::spawn(run(engine, shell.clone(), request));
        Ok(shell)
    }

    /// Stops `shell` (`TaskStop`, `monitor_stop`): it is killed and no notification follows;
    /// `false` if it had ended or was stopped already.
    pub(crate) fn stop(&self, shell: &Shell) -> bool {
        let mut state = lock(&shell.state);
        if state.result.is_some() || state.stopped {
            return false;
        }
        state.stopped = true;
        shell.cancel.cancel();
        true
    }

    /// Kills every background command of the scopes `which` selects (the server is stopping, an
    /// agent is deleted, a subagent ended).
    pub(crate) fn stop_all(&self, which: impl Fn(&RuntimeScope) -> bool) {
        for shell in lock(&self.shells).iter().filter(|shell| which(&shell.scope)) {
            self.stop(shell);
        }
    }
}

/// Runs `shell` to its end (a monitor's events meanwhile), then reports it.
async fn run(engine: Arc<Engine>, shell: Arc<Shell>, request: ShellRequest) {
    let timeout = request.timeout.unwrap_or(FOREVER);
    engine.shells.changed(&engine, &shell.scope).await;
    if shell.monitor.is_some() {
        tokio::spawn(monitor::pump(engine.clone(), shell.clone()));
    }
    let (result, end) = run_shell(
        &request.command,
        timeout,
        &request.cwd,
        &shell.cancel,
        &request.secrets,
        &mut |line| shell.record(line),
    )
    .await;
    let stopped = {
        let mut state = lock(&shell.state);
        if let Some((file, _)) = state.output.as_mut() {
            let _ = writeln!(file, "{}", end_line(&result));
        }
        state.output = None;
        state.result = Some(result.clone());
        state.stopped
    };
    shell.done.send_replace(true);
    engine.shells.changed(&engine, &shell.scope).await;
    if stopped {
        return;
    }
    match &shell.monitor {
        None => tell(&engine, &shell.scope, shell.notification(&result)).await,
        Some(watching) => {
            for notice in monitor::last_event(&shell)
                .into_iter()
                .chain(watching.ending(&shell, end))
            {
                tell(&engine, &shell.scope, notice).await;
            }
        }
    }
}

/// Queues `notice` as a `task_notification` on the conversation of `scope`.
async fn tell(engine: &Arc<Engine>, scope: &RuntimeScope, notice: String) {
    if let Ok(conversation) = engine.conversation(scope).await {
        conversation.notify(engine, notice).await;
    }
}

impl Shells {
    /// Tells `scope`'s subscribers that its background processes changed.
    async fn changed(&self, engine: &Engine, scope: &RuntimeScope) {
        if let Some(conversation) = engine.loaded_conversation(scope) {
            conversation.settings_changed(engine).await;
        }
    }
}

/// Drops the ended commands past [`KEPT_FOR`], and those past [`KEPT_PER_CONVERSATION`] of
/// `scope`.
fn forget_ended(shells: &mut Vec<Arc<Shell>>, scope: &RuntimeScope) {
    shells.retain(|shell| shell.is_running() || shell.started.elapsed() < KEPT_FOR);
    let ended: Vec<Arc<Shell>> = (shells.iter())
        .filter(|shell| shell.scope == *scope && !shell.is_running())
        .cloned()
        .collect();
    let excess = ended.len().saturating_sub(KEPT_PER_CONVERSATION - 1);
    shells.retain(|shell| !ended[..excess].iter().any(|old| Arc::ptr_eq(old, shell)));
}

/// The last `max` characters of `text`, after a line saying how many were cut.
fn tail_chars(text: &str, max: usize) -> String {
    let total = text.chars().count();
    match text.char_indices().nth(total.saturating_sub(max)) {
        Some((at, _)) if total > max => format!("… [{} characters cut]\n{}", total - max, &text[at..]),
        _ => text.to_owned(),
    }
}

/// The output file's last line: how the command ended.
fn end_line(result: &ToolResult) -> String {
    let last = result.text.lines().last().unwrap_or_default();
    format!("[{}] {last}", if result.is_error { "failed" } else { "completed" })
}
