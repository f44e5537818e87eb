//! `update_subagent_state`: subagents launched by the scope (docs/protocol.md §3.14).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::serde_util::nullable;

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
    /// Its conversation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
    /// Its model handle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Runs in the background.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_background: Option<bool>,
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
