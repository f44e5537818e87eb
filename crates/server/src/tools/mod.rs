//! Local tools the server runs for the model, with Letta Code's model-facing names and argument
//! schemas (docs/protocol.md §6.2): `Bash`, `Read`, `Write`, `Edit`, `MultiEdit`, `Grep`, `Glob`, `LS`,
//! `TodoWrite`, `SetWorkingDirectory`, `AskUserQuestion` (in Letta 0.32's and 0.34's versions),
//! `memory`, `Skill`, `Agent`, `TaskOutput`, `TaskStop`, `Monitor`.
//!
//! A tool never fails the turn: every problem becomes an error result the model sees.

mod agent;
mod args;
mod ask;
mod bash;
mod cwd;
mod diff;
mod edit;
mod files;
mod memory;
mod monitor;
mod search;
mod skill;
mod todo;

#[cfg(test)]
mod tests;

#[cfg(test)]
pub(crate) use agent::NoTasks;
pub use agent::{AgentRequest, Tasks};
pub use bash::ShellRequest;
pub(crate) use bash::{ShellEnd, run_shell};
/// The exact-match replacement of `Edit`, which the `edit_file` command shares.
pub(crate) use edit::{Occurrences, ReplaceError, check_strings, replace};
pub use monitor::MonitorRequest;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;

use letta_app_server_protocol::{DiffPreview, JsonObject};
use tokio_util::sync::CancellationToken;

/// How a tool relates to permission modes (docs/protocol.md §3.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolKind {
    /// Only reads: auto-allowed in `standard` and `acceptEdits`.
    ReadOnly,
    /// Changes files: auto-allowed in `acceptEdits`.
    Edit,
    /// Runs shell commands: read-only commands are auto-allowed in `standard`.
    Shell,
    /// Needs the user's answer: always asks, whatever the mode.
    Interactive,
    /// Anything else (e.g. `SetWorkingDirectory`): asks unless the mode is `unrestricted`.
    Other,
    /// Changes only the agent's own memory, with guards of its own (`memory`): allowed as a
    /// read-only tool is, asked in `strict`.
    Memory,
    /// Posts something for the user, whose answer arrives later as a message (0.34's
    /// asynchronous `AskUserQuestion`): allowed in every mode.
    Posting,
}

/// A line of output a running tool produced, for the streaming snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputLine {
    /// A stdout line.
    Stdout(String),
    /// A stderr line.
    Stderr(String),
}

/// What a tool run needs from the runtime.
pub struct ToolContext<'a> {
    /// The runtime's working directory; relative paths resolve against it.
    pub cwd: &'a Path,
    /// Cancelled when the turn is aborted: a running process must be killed.
    pub cancel: &'a CancellationToken,
    /// The model's id of this call.
    pub call_id: &'a str,
    /// The agent's secrets, by name: a shell command gets those it names as `$NAME`, and their
    /// values are redacted from what it prints.
    pub secrets: &'a BTreeMap<String, String>,
    /// The agent's memory, when it has a repository (`memory`, `Skill`).
    pub memory: Option<&'a crate::memory::Memory>,
    /// The server's skills (`Skill`).
    pub skills: &'a crate::skills::Skills,
    /// The conversation's subagent tasks (`Agent`, `TaskOutput`, `TaskStop`).
    pub tasks: &'a dyn Tasks,
    /// Receives output lines while the tool runs.
    pub output: &'a mut (dyn FnMut(OutputLine) + Send),
}

/// The result of one tool call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolResult {
    /// The text the model sees.
    pub text: String,
    /// Whether the tool failed.
    pub is_error: bool,
    /// Captured stdout lines (shell tools).
    pub stdout: Vec<String>,
    /// Captured stderr lines (shell tools).
    pub stderr: Vec<String>,
    /// A new working directory the tool selected (`SetWorkingDirectory`).
    pub new_cwd: Option<PathBuf>,
    /// A file the tool wrote, with its new content (`Write`, `Edit`, `MultiEdit`), for the
    /// `file_ops` broadcast.
    pub changed_file: Option<(PathBuf, String)>,
    /// The memory files the tool committed, relative to the memory (`memory`), for the
    /// `memory_updated` push.
    pub memory_changed: Vec<String>,
}

impl ToolResult {
    /// A successful result.
    pub fn ok(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            ..Self::default()
        }
    }

    /// A failed result.
    pub fn error(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            is_error: true,
            ..Self::default()
        }
    }
}

/// The future of one tool run.
pub type ToolFuture<'a> = Pin<Box<dyn Future<Output = ToolResult> + Send + 'a>>;

/// A local tool.
pub trait LocalTool: Send + Sync {
    /// Model-facing name.
    fn name(&self) -> &'static str;
    /// The name toolsets and `client_toolset` use for it: its model-facing name, unless two
    /// versions share that name (see [`opted_in`]).
    fn id(&self) -> &'static str {
        self.name()
    }
    /// What the tool does, for the model.
    fn description(&self) -> &'static str;
    /// JSON Schema of its arguments.
    fn parameters(&self) -> JsonObject;
    /// How permission modes treat it.
    fn kind(&self) -> ToolKind;
    /// A preview of the file changes it would make, for the approval question (edit tools).
    fn preview(&self, _args: &JsonObject, _cwd: &Path) -> Option<Vec<DiffPreview>> {
        None
    }
    /// Runs the tool.
    fn run<'a>(&'a self, args: JsonObject, context: ToolContext<'a>) -> ToolFuture<'a>;
}

/// Every local tool this server has.
pub fn all() -> Vec<Box<dyn LocalTool>> {
    vec![
        Box::new(agent::Agent),
        Box::new(ask::AskUserQuestion),
        Box::new(ask::AskUserQuestionAsync),
        Box::new(bash::Bash),
        Box::new(cwd::SetWorkingDirectory),
        Box::new(edit::Edit),
        Box::new(edit::MultiEdit),
        Box::new(files::Read),
        Box::new(files::Write),
        Box::new(files::Ls),
        Box::new(memory::MemoryTool),
        Box::new(monitor::Monitor),
        Box::new(search::Grep),
        Box::new(search::Glob),
        Box::new(skill::Skill),
        Box::new(agent::TaskOutput),
        Box::new(agent::TaskStop),
        Box::new(todo::TodoWrite),
    ]
}

/// The tools of Letta's `default` toolset that this server has; the others (`Grep`, `Glob`,
/// `LS`, `MultiEdit`, `TodoWrite`) are added with `client_toolset.include` or by naming them in
/// `client_tool_allowlist`.
pub const DEFAULT_TOOLSET: &[&str] = &[
    "Agent",
    "AskUserQuestion",
    "Bash",
    "SetWorkingDirectory",
    "Edit",
    "memory",
    "Monitor",
    "Read",
    "Skill",
    "TaskOutput",
    "TaskStop",
    "Write",
];

/// The [`LocalTool::id`] of the tool a client opts into by naming `name` in
/// `client_preferences.toolset.include` (Letta 0.34): `AskUserQuestion` is then the asynchronous
/// version; every other name is the tool itself.
pub fn opted_in(name: &str) -> &str {
    match name {
        "AskUserQuestion" => "AskUserQuestionAsync",
        other => other,
    }
}

/// Resolves `path` against `cwd` (absolute paths stay as they are).
pub fn resolve(cwd: &Path, path: &str) -> PathBuf {
    let path = Path::new(path);
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        cwd.join(path)
    }
}

/// Resolves `path` against `cwd` like [`resolve`], dropping `.` components (`./a` → `a`).
fn resolve_path(cwd: &Path, path: &str) -> PathBuf {
    resolve(cwd, path).components().collect()
}

/// Cuts `text` to `max` characters; returns how many characters were cut (counting `extra`
/// characters already dropped elsewhere), or `None` when it fits.
pub(crate) fn truncate_chars(text: &mut String, max: usize, extra: usize) -> Option<usize> {
    let total = text.chars().count() + extra;
    if total <= max {
        return None;
    }
    let cut = text.char_indices().nth(max).map_or(text.len(), |(index, _)| index);
    text.truncate(cut);
    Some(total - max)
}
