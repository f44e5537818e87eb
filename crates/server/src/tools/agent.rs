//! The tools that hand work to subagents and look after it (docs/protocol.md §4.16, §6.2):
//! `Agent` (Letta's `Task`, shown to the model as `Agent`), `TaskOutput` and `TaskStop` (which
//! also read and stop background shell commands). The work itself is the engine's; a tool
//! reaches it through [`Tasks`], which the running turn provides.

use std::time::Duration;

use letta_app_server_protocol::JsonObject;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::args::{object_schema, optional_bool, optional_str, optional_u64, required_str, try_arg};
use super::{LocalTool, ToolContext, ToolFuture, ToolKind, ToolResult};

/// The longest `TaskOutput` waits (Letta's schema maximum), in milliseconds.
const MAX_WAIT_MS: u64 = 600_000;

/// What an `Agent` call asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentRequest {
    /// A few words on the task (`summary` of its notification).
    pub description: String,
    /// The task.
    pub prompt: String,
    /// Its subagent type; required unless an existing agent or conversation is deployed.
    pub subagent_type: Option<String>,
    /// A model handle other than the parent's.
    pub model: Option<String>,
    /// Whether the call returns at once (the type's default when not given).
    pub run_in_background: Option<bool>,
    /// Deploy this existing agent (on a new conversation).
    pub agent_id: Option<String>,
    /// Deploy this existing conversation.
    pub conversation_id: Option<String>,
}

/// The background tasks of a running turn's conversation: subagents (`task_N`), shell commands
/// (`bash_N`) and monitors (`monitor_N`).
pub trait Tasks: Send + Sync {
    /// Launches a subagent for the `Agent` call `call_id`: in the background, the receipt; in
    /// the foreground, its report once it finished (`cancel` stops it).
    fn launch<'a>(&'a self, request: AgentRequest, call_id: &'a str, cancel: &'a CancellationToken) -> ToolFuture<'a>;
    /// A task's state and report, after waiting up to `wait` for it to finish.
    fn output<'a>(&'a self, task_id: &'a str, wait: Duration, cancel: &'a CancellationToken) -> ToolFuture<'a>;
    /// Stops a task this conversation launched.
    fn stop<'a>(&'a self, task_id: &'a str) -> ToolFuture<'a>;
    /// Starts a shell command in the background (`Bash` with `run_in_background`): the receipt.
    fn shell<'a>(&'a self, request: super::ShellRequest) -> ToolFuture<'a>;
    /// Starts a monitor (`Monitor`): the receipt.
    fn monitor<'a>(&'a self, request: super::MonitorRequest) -> ToolFuture<'a>;
}

/// `Agent`: launches a subagent.
pub struct Agent;

impl LocalTool for Agent {
    fn name(&self) -> &'static str {
        "Agent"
    }

    fn description(&self) -> &'static str {
        "Hands a self-contained task to a subagent: another agent that works on its own, with its \
         own tools, and reports back once. Types: `general-purpose` (reads, edits and runs \
         commands), `explore` (only reads and searches files). Write the prompt as a full \
         briefing: the subagent sees nothing of this conversation. By default it runs in the \
         background: the call returns a task id at once, and its report arrives later as a \
         <task-notification> message, so keep working meanwhile. With `run_in_background: false` \
         the call waits and returns the report. `agent_id` deploys an existing agent on a new \
         conversation, `conversation_id` continues an existing conversation."
    }

    fn parameters(&self) -> JsonObject {
        object_schema(
            json!({
                "description": {"type": "string", "description": "The task in three to five words."},
                "prompt": {"type": "string", "description": "The task, with everything the subagent needs to know."},
                "subagent_type": {"type": "string", "description": "The kind of subagent: `general-purpose` or `explore`."},
                "model": {"type": "string", "description": "A model handle for the subagent; it uses yours if omitted."},
                "run_in_background": {"type": "boolean", "description": "Whether to return at once with a task id (the default) instead of waiting for the report."},
                "agent_id": {"type": "string", "description": "Deploy this existing agent instead of a new one, on a new conversation."},
                "conversation_id": {"type": "string", "description": "Continue this existing conversation (its agent is deployed)."}
            }),
            &["description", "prompt", "subagent_type"],
        )
    }

    fn kind(&self) -> ToolKind {
        ToolKind::Other
    }

    fn run<'a>(&'a self, args: JsonObject, context: ToolContext<'a>) -> ToolFuture<'a> {
        Box::pin(async move {
            let request = AgentRequest {
                description: try_arg!(required_str(&args, "description")).to_owned(),
                prompt: try_arg!(required_str(&args, "prompt")).to_owned(),
                subagent_type: try_arg!(optional_str(&args, "subagent_type")).map(str::to_owned),
                model: try_arg!(optional_str(&args, "model")).map(str::to_owned),
                run_in_background: try_arg!(optional_bool(&args, "run_in_background")),
                agent_id: try_arg!(optional_str(&args, "agent_id")).map(str::to_owned),
                conversation_id: try_arg!(optional_str(&args, "conversation_id")).map(str::to_owned),
            };
            context.tasks.launch(request, context.call_id, context.cancel).await
        })
    }
}

/// `TaskOutput`: a subagent task's state and report, optionally after waiting for it.
pub struct TaskOutput;

impl LocalTool for TaskOutput {
    fn name(&self) -> &'static str {
        "TaskOutput"
    }

    fn description(&self) -> &'static str {
        "Shows a background task's status and, once it finished, its report. With `block: true` it \
         waits up to `timeout` milliseconds for the task to finish. Needed only to wait on purpose: \
         a finished task's report arrives as a <task-notification> message anyway."
    }

    fn parameters(&self) -> JsonObject {
        object_schema(
            json!({
                "task_id": {"type": "string", "description": "The task's id (`task_1`)."},
                "block": {"type": "boolean", "description": "Whether to wait for the task to finish."},
                "timeout": {"type": "number", "minimum": 0, "maximum": MAX_WAIT_MS, "description": "How long to wait at most, in milliseconds."}
            }),
            &["task_id", "block", "timeout"],
        )
    }

    fn kind(&self) -> ToolKind {
        ToolKind::ReadOnly
    }

    fn run<'a>(&'a self, args: JsonObject, context: ToolContext<'a>) -> ToolFuture<'a> {
        Box::pin(async move {
            let task_id = try_arg!(required_str(&args, "task_id"));
            let block = try_arg!(optional_bool(&args, "block")).unwrap_or(false);
            let timeout = try_arg!(optional_u64(&args, "timeout")).unwrap_or(30_000);
            let wait = if block {
                Duration::from_millis(timeout.min(MAX_WAIT_MS))
            } else {
                Duration::ZERO
            };
            context.tasks.output(task_id, wait, context.cancel).await
        })
    }
}

/// `TaskStop`: stops a background task of this conversation.
pub struct TaskStop;

impl LocalTool for TaskStop {
    fn name(&self) -> &'static str {
        "TaskStop"
    }

    fn description(&self) -> &'static str {
        "Stops a background task this conversation started. No notification follows for a stopped task."
    }

    fn parameters(&self) -> JsonObject {
        object_schema(
            json!({"task_id": {"type": "string", "description": "The task's id (`task_1`)."}}),
            &["task_id"],
        )
    }

    // It only stops work the same conversation started.
    fn kind(&self) -> ToolKind {
        ToolKind::ReadOnly
    }

    fn run<'a>(&'a self, args: JsonObject, context: ToolContext<'a>) -> ToolFuture<'a> {
        Box::pin(async move {
            let task_id = try_arg!(required_str(&args, "task_id"));
            context.tasks.stop(task_id).await
        })
    }
}

/// Tasks for tests that run tools outside a conversation: every call fails.
#[cfg(test)]
pub(crate) struct NoTasks;

#[cfg(test)]
impl Tasks for NoTasks {
    fn launch<'a>(&'a self, _: AgentRequest, _: &'a str, _: &'a CancellationToken) -> ToolFuture<'a> {
        Box::pin(std::future::ready(ToolResult::error("No subagents here")))
    }

    fn output<'a>(&'a self, _: &'a str, _: Duration, _: &'a CancellationToken) -> ToolFuture<'a> {
        Box::pin(std::future::ready(ToolResult::error("No subagents here")))
    }

    fn stop<'a>(&'a self, _: &'a str) -> ToolFuture<'a> {
        Box::pin(std::future::ready(ToolResult::error("No subagents here")))
    }

    fn shell<'a>(&'a self, _: super::ShellRequest) -> ToolFuture<'a> {
        Box::pin(std::future::ready(ToolResult::error("No background commands here")))
    }

    fn monitor<'a>(&'a self, _: super::MonitorRequest) -> ToolFuture<'a> {
        Box::pin(std::future::ready(ToolResult::error("No monitors here")))
    }
}
