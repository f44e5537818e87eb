//! `update_loop_status`: what the agent loop of a scope is doing (docs/protocol.md §3.7).

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Runtime event: a loop state snapshot. Sent on every transition, often repeated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UpdateLoopStatus {
    /// The snapshot.
    pub loop_status: LoopState,
}

/// The state of a scope's agent loop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LoopState {
    /// What the loop is doing.
    pub status: LoopStatus,
    /// The current backend run, if any (0 or 1 entries).
    pub active_run_ids: Vec<String>,
    /// Which `client_message_id`s each of the last runs consumed, oldest run first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_message_ids_by_run_id: Option<IndexMap<String, Vec<String>>>,
    /// Tool calls executing now (only while `EXECUTING_CLIENT_SIDE_TOOL`).
    pub executing_tool_call_ids: Vec<String>,
}

open_enum! {
    /// Agent loop state.
    pub enum LoopStatus {
        /// Idle (also while a cancelled turn unwinds).
        WaitingOnInput = "WAITING_ON_INPUT",
        /// Turn started / preparing a (re)send.
        SendingApiRequest = "SENDING_API_REQUEST",
        /// Request sent, no stream yet.
        WaitingForApiResponse = "WAITING_FOR_API_RESPONSE",
        /// Pre-stream retry in progress.
        RetryingApiRequest = "RETRYING_API_REQUEST",
        /// Consuming the model stream.
        ProcessingApiResponse = "PROCESSING_API_RESPONSE",
        /// Stopped for tool approval.
        WaitingOnApproval = "WAITING_ON_APPROVAL",
        /// Executing approved local or external tools.
        ExecutingClientSideTool = "EXECUTING_CLIENT_SIDE_TOOL",
        /// A synchronous command owns the idle conversation.
        ExecutingCommand = "EXECUTING_COMMAND",
    }
}
