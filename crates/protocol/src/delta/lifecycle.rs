//! Lifecycle notices (family B of docs/protocol.md §3.5): tool execution, commands, status, retries
//! and loop errors. They carry no `type: "message"` (except Cloud's translated `retry`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::DeltaMeta;
use super::letta::ToolStatus;
use crate::StopReason;

/// The permission check has sorted a run's client-side tool calls. Sent once per run that
/// requested any, after its `stop_reason` (`requires_approval`) and before any
/// `control_request`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ApprovalClassificationEnd {
    /// Shared fields (`id` `lifecycle-<uuid>`, `date`, `run_id`).
    #[serde(flatten)]
    pub meta: DeltaMeta,
    /// Calls allowed without asking (by the permission mode or a saved rule).
    pub auto_allowed_tool_call_ids: Vec<String>,
    /// Calls refused without asking; the refusal becomes the tool result.
    pub auto_denied_tool_call_ids: Vec<String>,
    /// Calls that need an answer: one `control_request` each, one at a time.
    pub user_input_tool_call_ids: Vec<String>,
}

/// An approved client-side or external tool is about to run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ClientToolStart {
    /// Shared fields; `id` is the approval request message's id when known.
    #[serde(flatten)]
    pub meta: DeltaMeta,
    /// The call.
    pub tool_call_id: String,
    /// The tool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_name: Option<String>,
    /// Arguments as a JSON string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_args: Option<String>,
}

/// A decided tool finished: executed, denied (no `client_tool_start` then) or aborted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ClientToolEnd {
    /// Shared fields.
    #[serde(flatten)]
    pub meta: DeltaMeta,
    /// The call.
    pub tool_call_id: String,
    /// Outcome.
    pub status: ToolStatus,
}

/// A shell command began (declared by the protocol, never emitted by real Letta).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CommandStart {
    /// Shared fields.
    #[serde(flatten)]
    pub meta: DeltaMeta,
    /// Command id.
    pub command_id: String,
    /// The command line.
    pub input: String,
}

/// A shell command finished (declared by the protocol, never emitted by real Letta).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CommandEnd {
    /// Shared fields.
    #[serde(flatten)]
    pub meta: DeltaMeta,
    /// Command id.
    pub command_id: String,
    /// The command line.
    pub input: String,
    /// Its output.
    pub output: String,
    /// Whether it succeeded.
    pub success: bool,
    /// Render the output dimmed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dim_output: Option<bool>,
    /// The output is preformatted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preformatted: Option<bool>,
}

/// An `execute_command` slash command began.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SlashCommandStart {
    /// Shared fields.
    #[serde(flatten)]
    pub meta: DeltaMeta,
    /// Command id.
    pub command_id: String,
    /// The command as typed (e.g. `/compact`).
    pub input: String,
}

/// An `execute_command` slash command finished (also for unknown commands).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SlashCommandEnd {
    /// Shared fields.
    #[serde(flatten)]
    pub meta: DeltaMeta,
    /// Command id.
    pub command_id: String,
    /// The command as typed.
    pub input: String,
    /// Its output.
    pub output: String,
    /// Whether it succeeded.
    pub success: bool,
}

open_enum! {
    /// Severity of a status notice.
    pub enum StatusLevel {
        /// Information.
        Info = "info",
        /// Something succeeded.
        Success = "success",
        /// Something needs attention (e.g. `Interrupted`).
        Warning = "warning",
    }
}

/// A status notice (e.g. `Interrupted` on abort).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Status {
    /// Shared fields.
    #[serde(flatten)]
    pub meta: DeltaMeta,
    /// The notice.
    pub message: String,
    /// Severity.
    pub level: StatusLevel,
}

open_enum! {
    /// What kind of retry a `retry` notice announces.
    pub enum RetryKind {
        /// The same provider is asked again.
        ProviderRetry = "provider_retry",
        /// Another transport is tried.
        TransportFallback = "transport_fallback",
    }
}

/// The server is about to re-send the model request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Retry {
    /// Shared fields.
    #[serde(flatten)]
    pub meta: DeltaMeta,
    /// Human-readable notice.
    pub message: String,
    /// Why the previous attempt stopped.
    pub reason: StopReason,
    /// This attempt's number (1-based).
    pub attempt: u32,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// Delay before the attempt.
    pub delay_ms: u64,
    /// Kind of retry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_kind: Option<RetryKind>,
    /// Provider involved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// Transport given up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_transport: Option<String>,
    /// Transport tried next.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_transport: Option<String>,
    /// Provider error code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
}

/// A loop error. Non-terminal: mid-stream error, protocol violation, failed device-state
/// change. Terminal: once, after `turn_finished`, when a turn ends in error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LoopError {
    /// Shared fields.
    #[serde(flatten)]
    pub meta: DeltaMeta,
    /// What went wrong.
    pub message: String,
    /// Stop reason it maps to.
    pub stop_reason: StopReason,
    /// Whether the turn ended because of it.
    pub is_terminal: bool,
    /// Letta 0.34: the accepted inputs that failed before a run was created for them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_message_ids: Option<Vec<String>>,
    /// The backend error behind it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_error: Option<ApiError>,
}

/// The backend error behind a `loop_error`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ApiError {
    /// Always `error_message`.
    pub message_type: String,
    /// What went wrong.
    pub message: String,
    /// Error class.
    pub error_type: String,
    /// The run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// More detail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}
