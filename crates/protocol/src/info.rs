//! `app_server_info`: capability discovery (docs/protocol.md §3.1).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::Backend;

/// Asks the server what it is and what it supports. No scope, no side effects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AppServerInfo {
    /// Correlates the response.
    pub request_id: String,
}

/// The server's identity and capabilities.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AppServerInfoResponse {
    /// Echo of the request's id (`"http-info"` on the HTTP route).
    pub request_id: String,
    /// Always `true`.
    pub success: bool,
    /// The backend agents run on.
    pub backend: Backend,
    /// Version of the server (Letta Code's package version on real Letta).
    pub letta_code_version: String,
    /// Protocol version; `1`.
    pub protocol_version: u32,
    /// Feature flags.
    pub capabilities: Capabilities,
}

/// Feature flags of `app_server_info_response`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Capabilities {
    /// Agent commands are available.
    pub agent_management: bool,
    /// Conversation commands are available.
    pub conversation_management: bool,
    /// Memory commands are available.
    pub memory_management: bool,
    /// `runtime_start` is available.
    pub runtime_start: bool,
    /// `runtime_start.workspace_sandbox` is supported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_workspace_sandbox: Option<bool>,
    /// `runtime_external_tools_update` is supported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_external_tools_update: Option<bool>,
    /// The server accepts the split `?channel=control` / `?channel=stream` transport.
    pub split_channels: bool,
    /// `launch_subagent` is supported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch_subagent: Option<bool>,
    /// Structured outputs are supported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub structured_outputs: Option<bool>,
    /// Letta 0.34: `runtime_start` can create a conversation without an agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_free_conversations: Option<bool>,
    /// Letta 0.34: `launch_subagent` accepts `notify: "caller"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch_subagent_notify_caller: Option<bool>,
    /// This server's extension: `runtime_start` and `sync` accept `resume_after`, and the runtime
    /// events of a scope subscribed that way carry `conversation_seq` (docs/protocol.md §2.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_resume: Option<bool>,
}
