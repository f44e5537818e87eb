//! `stream_delta`: streamed agent output and turn lifecycle notices (docs/protocol.md §3.5).
//!
//! Two families share one union discriminated by `message_type`: Letta message chunks
//! ([`letta`]) and lifecycle notices ([`lifecycle`]). Chunks are incremental fragments to be
//! concatenated by (`message_type`, `otid` or `id`). The union is open: a `message_type` this
//! version does not know parses into [`Delta::Unknown`] with its JSON kept.

pub mod letta;
pub mod lifecycle;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use letta::*;
pub use lifecycle::*;

/// Runtime event: one streamed chunk or lifecycle notice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StreamDelta {
    /// The chunk.
    pub delta: Delta,
    /// Present when the chunk comes from a subagent (the envelope's `runtime` is then the
    /// parent's scope).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subagent_id: Option<String>,
}

open_enum! {
    /// The `type` marker of a delta.
    pub enum DeltaMarker {
        /// A Letta message chunk.
        Message = "message",
    }
}

/// Fields every delta may carry. Letta message chunks carry `type: "message"` and most of
/// these; lifecycle notices carry `id`, `date` and `run_id`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct DeltaMeta {
    /// `"message"` on Letta message chunks (and Cloud's translated `retry`).
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<DeltaMarker>,
    /// Chunk id (`letta-msg-<n>`, `lifecycle-<uuid>`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// ISO-8601 time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    /// Offline thread id, stable across the chunks of one message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otid: Option<String>,
    /// Backend run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// Position within the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq_id: Option<u64>,
    /// Backend step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_id: Option<String>,
    /// Author name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Sender id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_id: Option<String>,
    /// Marks an error message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_err: Option<bool>,
    /// Agent (local backend).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// Conversation (local backend).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
}

tagged_union! {
    /// The payload of a `stream_delta`, discriminated by `message_type`.
    pub enum Delta: open tag message_type = "message_type" {
    /// Model text.
    AssistantMessage(AssistantMessage) = "assistant_message",
    /// Visible reasoning.
    ReasoningMessage(ReasoningMessage) = "reasoning_message",
    /// Provider-hidden reasoning.
    HiddenReasoningMessage(HiddenReasoningMessage) = "hidden_reasoning_message",
    /// A server-side tool call (Letta Cloud).
    ToolCallMessage(ToolCallMessage) = "tool_call_message",
    /// The model asked for a client-side tool.
    ApprovalRequestMessage(ApprovalRequestMessage) = "approval_request_message",
    /// A tool result.
    ToolReturnMessage(ToolReturnMessage) = "tool_return_message",
    /// An approval echoed by the backend.
    ApprovalResponseMessage(ApprovalResponseMessage) = "approval_response_message",
    /// A user message (dequeued-batch echo and injected content).
    UserMessage(UserMessage) = "user_message",
    /// A system message.
    SystemMessage(SystemMessage) = "system_message",
    /// Token usage of a run.
    UsageStatistics(UsageStatistics) = "usage_statistics",
    /// Last chunk of each run.
    StopReason(StopReasonMessage) = "stop_reason",
    /// A backend error inside a run.
    ErrorMessage(ErrorMessage) = "error_message",
    /// A keepalive during a long request.
    Ping(Ping) = "ping",
    /// A backend event such as a provider retry.
    EventMessage(EventMessage) = "event_message",
    /// A compaction summary.
    SummaryMessage(SummaryMessage) = "summary_message",
    /// A run's client-side tool calls sorted into auto-allowed, auto-denied and asked.
    ApprovalClassificationEnd(ApprovalClassificationEnd) = "approval_classification_end",
    /// An approved client-side tool is about to run.
    ClientToolStart(ClientToolStart) = "client_tool_start",
    /// A decided client-side tool finished (also for denied tools).
    ClientToolEnd(ClientToolEnd) = "client_tool_end",
    /// Declared by the protocol but never emitted by real Letta.
    CommandStart(CommandStart) = "command_start",
    /// Declared by the protocol but never emitted by real Letta.
    CommandEnd(CommandEnd) = "command_end",
    /// A slash command began.
    SlashCommandStart(SlashCommandStart) = "slash_command_start",
    /// A slash command finished.
    SlashCommandEnd(SlashCommandEnd) = "slash_command_end",
    /// A status notice.
    Status(Status) = "status",
    /// The server is about to re-send a model request.
    Retry(Retry) = "retry",
    /// A loop error; terminal ones follow `turn_finished`.
    LoopError(LoopError) = "loop_error",
    }
    common meta: DeltaMeta;
}
