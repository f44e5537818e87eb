//! Subagents: the `update_subagent_state` snapshot (docs/protocol.md §3.14) and the
//! `launch_subagent` command (§4.16).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::AgentRuntimeScope;
use crate::serde_util::{double_option, nullable};

/// Runtime event: the subagents launched by the scope's agent/conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UpdateSubagentState {
    /// All of them.
    pub subagents: Vec<SubagentSnapshot>,
}

/// One subagent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SubagentSnapshot {
    /// Subagent id.
    pub subagent_id: String,
    /// Its type (e.g. `explore`).
    pub subagent_type: String,
    /// What it was asked to do, briefly.
    pub description: String,
    /// The full prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// Lifecycle state.
    pub status: SubagentStatus,
    /// Where to view it.
    #[schemars(required, schema_with = "nullable::<String>")]
    pub agent_url: Option<String>,
    /// Its conversation (`null` before it has one).
    #[serde(
        default,
        deserialize_with = "double_option::deserialize",
        skip_serializing_if = "Option::is_none"
    )]
    pub conversation_id: Option<Option<String>>,
    /// Letta 0.34: the run that supervises it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub super_run_id: Option<String>,
    /// Its model handle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Runs in the background.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_background: Option<bool>,
    /// Letta 0.34: it runs in its parent's runtime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claims_parent_runtime: Option<bool>,
    /// Produces no visible output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub silent: Option<bool>,
    /// The tool call that launched it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    /// The launching agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_agent_id: Option<String>,
    /// The launching conversation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_conversation_id: Option<String>,
    /// Start time, ms since the epoch.
    pub start_time: u64,
    /// Tool calls it made.
    pub tool_calls: Vec<SubagentToolCall>,
    /// Tokens used.
    pub total_tokens: u64,
    /// Run time so far.
    pub duration_ms: u64,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Letta 0.34: its final report, truncated, for a `notify: "caller"` launch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
}

open_enum! {
    /// Lifecycle state of a subagent.
    pub enum SubagentStatus {
        /// Not started yet.
        Pending = "pending",
        /// Running.
        Running = "running",
        /// Finished.
        Completed = "completed",
        /// Failed.
        Error = "error",
    }
}

/// A tool call a subagent made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SubagentToolCall {
    /// Call id.
    pub id: String,
    /// Tool name.
    pub name: String,
    /// Arguments as a JSON string.
    pub args: String,
}

/// Launches a subagent from a conversation (advertised by the `launch_subagent` capability).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LaunchSubagent {
    /// Correlates the response.
    pub request_id: String,
    /// The parent conversation: the launch's context and where completion is reported.
    pub runtime: AgentRuntimeScope,
    /// What to launch.
    pub args: SubagentLaunchArgs,
    /// The agent or external-tool call that asked for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    /// Letta 0.34: who reports the completion (requires the `launch_subagent_notify_caller`
    /// capability).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<SubagentLaunchNotify>,
}

/// The arguments of `launch_subagent`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SubagentLaunchArgs {
    /// Its type (e.g. `explore`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subagent_type: Option<String>,
    /// The full prompt.
    pub prompt: String,
    /// What it is asked to do, briefly.
    pub description: String,
    /// The id of its first input (not the command's `request_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_message_id: Option<String>,
    /// Model handle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Run it as this existing agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// Run it in this existing conversation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
    /// The computer to run it on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub computer: Option<String>,
    /// Letta 0.34: which MCP servers it gets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mcp: Option<SubagentMcp>,
    /// Most turns it may take.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_turns: Option<u64>,
}

/// The MCP servers of a launched subagent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SubagentMcp {
    /// Whether it inherits the parent's MCP servers.
    pub inherit: bool,
    /// Only these servers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub servers: Option<Vec<String>>,
}

/// Who reports a launched subagent's completion. Closed: an unknown value is an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SubagentLaunchNotify {
    /// The launching client: the server sends no notification of its own and puts the final
    /// report in the snapshot's `result`.
    Caller,
}

/// Result of `launch_subagent`. Letta declares it as a union on `success`: `true` with
/// `task_id`, `output_file`, `agent_id` and `conversation_id` (both may be `null`), or `false`
/// with `error` and `error_code?`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct LaunchSubagentResponse {
    /// Echo of the request's id.
    pub request_id: String,
    /// Letta 0.34: echo of the parent scope, for relays.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<AgentRuntimeScope>,
    /// Whether it was launched.
    pub success: bool,
    /// On success: its background task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    /// On success: the file its output goes to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_file: Option<String>,
    /// On success: its agent, or `null`.
    #[serde(
        default,
        deserialize_with = "double_option::deserialize",
        skip_serializing_if = "Option::is_none"
    )]
    pub agent_id: Option<Option<String>>,
    /// On success: its conversation, or `null`.
    #[serde(
        default,
        deserialize_with = "double_option::deserialize",
        skip_serializing_if = "Option::is_none"
    )]
    pub conversation_id: Option<Option<String>>,
    /// On failure: why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Letta 0.34, on failure: why a Claude Code or Codex worker could not start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<SubagentStartupErrorCode>,
}

open_enum! {
    /// Why a Claude Code or Codex subagent worker could not start.
    pub enum SubagentStartupErrorCode {
        /// The worker is not installed.
        NotInstalled = "not_installed",
        /// The worker is not signed in.
        NotSignedIn = "not_signed_in",
    }
}

impl crate::Refuse for LaunchSubagent {
    fn refuse(&self, error: String) -> Option<LaunchSubagentResponse> {
        Some(LaunchSubagentResponse {
            request_id: self.request_id.clone(),
            runtime: Some(self.runtime.clone()),
            success: false,
            error: Some(error),
            ..Default::default()
        })
    }
}
