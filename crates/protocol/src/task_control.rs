//! Task control: slash commands (`execute_command`, docs/protocol.md §4.11), stopping a monitor
//! (`monitor_stop`, §4.16) and Letta 0.34's browser-device MCP OAuth (`browser_device_mcp_oauth`,
//! `browser_device_mcp_oauth_cancel`, §4.17).

use schemars::JsonSchema;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::{AgentRuntimeScope, PathError};

/// Runs a slash command in an agent conversation. Its subscribers get `slash_command_start` and
/// `slash_command_end` deltas, then the asker gets `execute_command_response`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ExecuteCommand {
    /// The command's name (`clear`, `compact`, `context-limit`, a mod command, …).
    pub command_id: String,
    /// Correlates the response.
    pub request_id: String,
    /// The conversation it runs in.
    pub runtime: AgentRuntimeScope,
    /// Everything after the command name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<String>,
}

/// Result of `execute_command`. It has no `error` field: a failure is `success: false` with the
/// reason in `output` (e.g. `Unknown command: X`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ExecuteCommandResponse {
    /// Echo of the request's id.
    pub request_id: String,
    /// Whether the command succeeded.
    pub success: bool,
    /// What it printed, or why it failed.
    pub output: String,
}

/// Stops a running background monitor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct MonitorStop {
    /// Correlates the response.
    pub request_id: String,
    /// The conversation the monitor belongs to.
    pub runtime: AgentRuntimeScope,
    /// The monitor's `process_id` (from `device_status.background_processes`).
    pub process_id: String,
}

/// Result of `monitor_stop`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct MonitorStopResponse {
    /// Echo of the request's id.
    pub request_id: String,
    /// Echo of the scope.
    pub runtime: AgentRuntimeScope,
    /// Echo of the process id.
    pub process_id: String,
    /// Whether the command succeeded.
    pub success: bool,
    /// Whether a monitor was stopped.
    pub stopped: bool,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl crate::Refuse for MonitorStop {
    fn refuse(&self, error: String) -> Option<MonitorStopResponse> {
        Some(MonitorStopResponse {
            request_id: self.request_id.clone(),
            runtime: self.runtime.clone(),
            process_id: self.process_id.clone(),
            success: false,
            stopped: false,
            error: Some(error),
        })
    }
}

/// Letta 0.34: starts a localhost-callback MCP OAuth flow on this device, outside any turn.
/// Exactly these keys (and `type`); another one is an error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, remote = "Self")]
pub struct BrowserDeviceMcpOAuth {
    /// Correlates the response; also the operation's id for `browser_device_mcp_oauth_cancel`.
    pub request_id: String,
    /// The key the browser hands the result back with.
    pub handoff_key: String,
    /// The MCP service.
    pub service: String,
    /// The MCP server's URL.
    pub server_url: String,
    /// The time left for the whole operation, ms (at most 285000).
    pub timeout_ms: u64,
}

/// Letta 0.34: cancels a `browser_device_mcp_oauth` operation; no answer. Exactly this key (and
/// `type`); another one is an error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, remote = "Self")]
pub struct BrowserDeviceMcpOAuthCancel {
    /// The `request_id` of the `browser_device_mcp_oauth` to cancel.
    pub operation_id: String,
}

/// Implements `Serialize` and `Deserialize` for frame bodies whose keys Letta checks exactly
/// (`#[serde(deny_unknown_fields, remote = "Self")]`): the derived functions, with the frame's
/// `type` (which the enclosing union reads) taken out first, and the path of an error kept.
macro_rules! exact_keys {
    ($($body:ty),+) => {$(
        impl Serialize for $body {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                Self::serialize(self, serializer)
            }
        }

        impl<'de> Deserialize<'de> for $body {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let mut value = Value::deserialize(deserializer)?;
                if let Value::Object(object) = &mut value {
                    object.remove("type");
                }
                let mut track = serde_path_to_error::Track::new();
                Self::deserialize(serde_path_to_error::Deserializer::new(value, &mut track)).map_err(|error| {
                    let path = track.path().to_string();
                    D::Error::custom(PathError {
                        path: (path != ".").then_some(path),
                        reason: error.to_string(),
                    })
                })
            }
        }
    )+};
}

exact_keys!(BrowserDeviceMcpOAuth, BrowserDeviceMcpOAuthCancel);

/// Letta 0.34: the final result of `browser_device_mcp_oauth`, without credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BrowserDeviceMcpOAuthResponse {
    /// Echo of the request's id.
    pub request_id: String,
    /// Whether the server was authorised.
    pub success: bool,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<BrowserDeviceMcpOAuthErrorCode>,
}

open_enum! {
    /// Why a browser-device MCP OAuth flow failed.
    pub enum BrowserDeviceMcpOAuthErrorCode {
        /// A flow for this service is already running.
        AlreadyConnecting = "already_connecting",
        /// The authorisation failed.
        AuthorizationFailed = "authorization_failed",
        /// It was cancelled.
        Cancelled = "cancelled",
        /// The command was invalid.
        InvalidRequest = "invalid_request",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::{ClientFrame, FrameErrorKind};

    #[test]
    fn browser_device_oauth_takes_exactly_its_keys() {
        let frame = json!({
            "type": "browser_device_mcp_oauth", "request_id": "bo-1", "handoff_key": "hk",
            "service": "linear", "server_url": "https://mcp.linear.app/sse", "timeout_ms": 285000,
        });
        let parsed = ClientFrame::from_value(frame.clone()).unwrap();
        assert_eq!(serde_json::to_value(parsed).unwrap(), frame);

        let mut extra = frame.clone();
        extra["agent_id"] = json!("agent-1");
        let error = ClientFrame::from_value(extra).unwrap_err();
        assert_eq!(
            (error.kind, error.path.as_deref()),
            (FrameErrorKind::InvalidFrame, Some("agent_id"))
        );

        let mut wrong = frame;
        wrong["timeout_ms"] = json!("soon");
        let error = ClientFrame::from_value(wrong).unwrap_err();
        assert_eq!(error.path.as_deref(), Some("timeout_ms"));
        assert_eq!(error.request_id.as_deref(), Some("bo-1"));
    }
}
