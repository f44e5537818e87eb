//! Letta message chunks (family A of docs/protocol.md §3.5).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::DeltaMeta;
use crate::serde_util::nullable;
use crate::{JsonObject, MessageContent, StopReason};

/// Model text fragment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AssistantMessage {
    /// Shared fields.
    #[serde(flatten)]
    pub meta: DeltaMeta,
    /// The fragment.
    pub content: MessageContent,
}

/// Visible reasoning fragment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ReasoningMessage {
    /// Shared fields.
    #[serde(flatten)]
    pub meta: DeltaMeta,
    /// The fragment.
    pub reasoning: String,
    /// Where the reasoning comes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Provider signature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

/// Reasoning the provider hides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct HiddenReasoningMessage {
    /// Shared fields.
    #[serde(flatten)]
    pub meta: DeltaMeta,
    /// Why it is hidden.
    pub state: HiddenReasoningState,
    /// Opaque hidden reasoning, if any. Letta sends it as `null` when there is none.
    #[schemars(required, schema_with = "nullable::<String>")]
    pub hidden_reasoning: Option<String>,
}

open_enum! {
    /// Why reasoning is hidden.
    pub enum HiddenReasoningState {
        /// Redacted by the provider.
        Redacted = "redacted",
        /// Omitted.
        Omitted = "omitted",
    }
}

/// A tool call, complete or as a streamed fragment.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct ToolCallDelta {
    /// Call id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    /// Tool name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Arguments as (a fragment of) a JSON string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<String>,
}

/// A server-side tool call (Letta Cloud only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ToolCallMessage {
    /// Shared fields.
    #[serde(flatten)]
    pub meta: DeltaMeta,
    /// The call.
    pub tool_call: ToolCallDelta,
    /// Parallel calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCallDelta>>,
}

/// The model asked for a client-side tool; precedes `stop_reason requires_approval`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ApprovalRequestMessage {
    /// Shared fields.
    #[serde(flatten)]
    pub meta: DeltaMeta,
    /// The call.
    pub tool_call: ToolCallDelta,
    /// Parallel calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCallDelta>>,
}

open_enum! {
    /// Outcome of a tool call.
    pub enum ToolStatus {
        /// The tool succeeded.
        Success = "success",
        /// The tool failed, was denied or was interrupted.
        Error = "error",
    }
}

/// One tool result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ToolReturn {
    /// The call this answers.
    pub tool_call_id: String,
    /// Outcome.
    pub status: ToolStatus,
    /// Result text the model sees.
    pub tool_return: String,
    /// Captured stdout lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout: Option<Vec<String>>,
    /// Captured stderr lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr: Option<Vec<String>>,
}

/// Tool results. Server-made results also repeat the single result in the top-level fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ToolReturnMessage {
    /// Shared fields.
    #[serde(flatten)]
    pub meta: DeltaMeta,
    /// The results.
    pub tool_returns: Vec<ToolReturn>,
    /// Single-result form: call id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    /// Single-result form: outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ToolStatus>,
    /// Single-result form: text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_return: Option<String>,
    /// Single-result form: stdout lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout: Option<Vec<String>>,
    /// Single-result form: stderr lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr: Option<Vec<String>>,
}

/// An approval echoed by the backend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ApprovalResponseMessage {
    /// Shared fields.
    #[serde(flatten)]
    pub meta: DeltaMeta,
    /// Per-call approvals, as the backend sent them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approvals: Option<Vec<Value>>,
    /// Single-approval form: approved?
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approve: Option<bool>,
    /// Single-approval form: why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Single-approval form: the request answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_request_id: Option<String>,
}

/// A user message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct UserMessage {
    /// Shared fields.
    #[serde(flatten)]
    pub meta: DeltaMeta,
    /// The content.
    pub content: MessageContent,
    /// The acting user of a relayed input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by_id: Option<String>,
}

/// A system message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SystemMessage {
    /// Shared fields.
    #[serde(flatten)]
    pub meta: DeltaMeta,
    /// The content.
    pub content: MessageContent,
}

/// Token usage of one run; sent before its `stop_reason`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UsageStatistics {
    /// Shared fields.
    #[serde(flatten)]
    pub meta: DeltaMeta,
    /// Prompt tokens (optional in Letta's declarations; this server always sends it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens: Option<u64>,
    /// Completion tokens (optional in Letta's declarations; this server always sends it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_tokens: Option<u64>,
    /// Total tokens (optional in Letta's declarations; this server always sends it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_tokens: Option<u64>,
    /// Prompt tokens served from cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_input_tokens: Option<u64>,
    /// Prompt tokens written to cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write_tokens: Option<u64>,
    /// Reasoning tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_tokens: Option<u64>,
    /// Tokens in the context window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_tokens: Option<u64>,
    /// Steps in the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_count: Option<u64>,
    /// Runs covered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_ids: Option<Vec<String>>,
}

/// Letta's `LettaUsageStatistics` as `turn_finished.usage` carries it: a turn's final counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TurnUsage {
    /// `"usage_statistics"` when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_type: Option<String>,
    /// The counters.
    #[serde(flatten)]
    pub usage: UsageStatistics,
}

/// The last chunk of each run (not of the turn).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StopReasonMessage {
    /// Shared fields.
    #[serde(flatten)]
    pub meta: DeltaMeta,
    /// Why the run stopped.
    pub stop_reason: StopReason,
}

/// A keepalive Letta sends during a long request so that the stream does not time out; it
/// carries nothing but the shared fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Ping {
    /// Shared fields (`id` and `date` always).
    #[serde(flatten)]
    pub meta: DeltaMeta,
}

/// A backend error inside a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ErrorMessage {
    /// Shared fields.
    #[serde(flatten)]
    pub meta: DeltaMeta,
    /// What went wrong.
    pub message: String,
    /// Error class (e.g. `local_backend_error`).
    pub error_type: String,
    /// More detail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Whether the backend will retry (local backend).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retryable: Option<bool>,
}

/// A backend event (local backend): provider retries, compaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EventMessage {
    /// Shared fields.
    #[serde(flatten)]
    pub meta: DeltaMeta,
    /// Event kind (e.g. `retry`).
    pub event_type: String,
    /// Event data (for `retry`: `attempt`, `max_attempts`, `delay_ms`, `message`).
    pub event_data: JsonObject,
}

/// A compaction summary (local backend).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SummaryMessage {
    /// Shared fields.
    #[serde(flatten)]
    pub meta: DeltaMeta,
    /// The summary text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
}
