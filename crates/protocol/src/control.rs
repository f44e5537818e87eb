//! Runtime control commands: `sync`, `abort_message`, `change_device_state`
//! (docs/protocol.md §3.10, §3.12, §3.13).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{RequestedPermissionMode, RuntimeScope};

/// Asks for an authoritative replay of the scope's state (pending approvals, device, loop,
/// queue, subagents) to this socket. Subscribes the socket to the scope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Sync {
    /// When present the server answers with `sync_response` after the replay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The scope.
    pub runtime: RuntimeScope,
    /// Consult the backend for approvals left pending by a previous process (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recover_approvals: Option<bool>,
    /// Include `update_device_status` even if unchanged (default false here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_device_status: Option<bool>,
    /// This server's extension (docs/protocol.md §2.2): subscribe with a resume cursor, the
    /// last `conversation_seq` this client has (`0`: none yet). The answer then carries
    /// `resume`, and the scope's runtime events `conversation_seq`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume_after: Option<u64>,
}

/// Result of `sync`, sent after the replay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SyncResponse {
    /// Echo of the request's id.
    pub request_id: String,
    /// Echo of the scope.
    pub runtime: RuntimeScope,
    /// Whether the replay happened.
    pub success: bool,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Where the event stream resumes, when the request had `resume_after`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume: Option<Resume>,
}

/// Where a scope's event stream resumes for a subscription with `resume_after` (this server's
/// extension, docs/protocol.md §2.2).
///
/// `resumed: true`: every event of the scope after the cursor follows, exactly once and in
/// order, then the live stream; the state replay is left out. `resumed: false` (a first
/// subscription, a cursor older than what is retained, or one the server does not know): the
/// usual state replay follows, and the events after `last_seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Resume {
    /// Whether the events after the cursor follow instead of the state replay.
    pub resumed: bool,
    /// The events that follow are those after this one: the cursor when it resumed, else the
    /// scope's last event when the subscription was made. The client's cursor from now on.
    pub last_seq: u64,
    /// The oldest `conversation_seq` retained (`last_seq + 1` when none is).
    pub oldest_retained: u64,
}

/// Cancels the scope's active turn and pending approvals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AbortMessage {
    /// When present the server answers with `abort_message_response`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The scope.
    pub runtime: RuntimeScope,
    /// Fallback hint for backend cancellation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
}

/// Result of `abort_message`. `aborted: false, success: true` when nothing was running.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AbortMessageResponse {
    /// Echo of the request's id.
    pub request_id: String,
    /// Echo of the scope.
    pub runtime: RuntimeScope,
    /// Whether something was aborted.
    pub aborted: bool,
    /// Whether the command succeeded.
    pub success: bool,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Changes the permission mode and/or working directory of a scope. No response frame; the
/// change shows in `update_loop_status` / `update_device_status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ChangeDeviceState {
    /// The scope (unless overridden in the payload).
    pub runtime: RuntimeScope,
    /// The change.
    pub payload: DeviceStateChange,
}

/// The body of `change_device_state`; an empty payload just re-sends the device status.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct DeviceStateChange {
    /// New permission mode (legacy aliases accepted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<RequestedPermissionMode>,
    /// New working directory; relative paths resolve against the current one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// Overrides `runtime.agent_id` as the target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// Overrides `runtime.conversation_id` as the target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
}
