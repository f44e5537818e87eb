//! Controller-owned external tools (docs/protocol.md §3.11).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{JsonObject, RuntimeScope};

/// A group of external tools, optionally visible only to turns that list its `scope_id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ExternalToolGroup {
    /// Offer these tools only on turns whose `input` lists this id in `external_tool_scope_ids`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope_id: Option<String>,
    /// The tools.
    pub tools: Vec<ExternalToolDefinition>,
}

/// One tool the controller executes itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ExternalToolDefinition {
    /// Model-facing name.
    pub name: String,
    /// Display label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// What the tool does (shown to the model).
    pub description: String,
    /// JSON Schema of the arguments.
    pub parameters: JsonObject,
    /// Letta 0.34: how long to wait for the controller's answer, in ms (1000–300000; default
    /// 300000). Expiry fails the call; it does not cancel the controller's work.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Letta 0.34: whether a call still unanswered after the server's auto-background delay
    /// (10 s by default) ends the turn and reports its result later as a task notification
    /// (default `true`); `false` waits inline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_background: Option<bool>,
}

/// Replaces this connection's external tools on many runtimes at once, without subscribing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RuntimeExternalToolsUpdate {
    /// Correlates the response.
    pub request_id: String,
    /// The updates; a runtime may appear only once across all of them.
    pub updates: Vec<ExternalToolsUpdate>,
}

/// One entry of `runtime_external_tools_update`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ExternalToolsUpdate {
    /// The runtimes (non-empty).
    pub runtimes: Vec<RuntimeScope>,
    /// Their new tool set (empty removes them).
    pub external_tools: Vec<ExternalToolGroup>,
}

/// Result of `runtime_external_tools_update`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RuntimeExternalToolsUpdateResponse {
    /// Echo of the request's id.
    pub request_id: String,
    /// Whether the update applied.
    pub success: bool,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Asks the owning controller to execute one of its tools. Direct (no envelope), only to the
/// connection that registered the tool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ExternalToolCallRequest {
    /// `external-tool-<uuid>`; echo it in `external_tool_call_response`.
    pub request_id: String,
    /// The runtime the tool was registered for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<RuntimeScope>,
    /// The tool's `scope_id`, if registered with one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope_id: Option<String>,
    /// The model's tool call id.
    pub tool_call_id: String,
    /// The tool.
    pub tool_name: String,
    /// Parsed arguments.
    pub input: JsonObject,
}

/// The controller's answer to an `external_tool_call_request`: a `result` or an `error`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ExternalToolCallResponse {
    /// The request's id.
    pub request_id: String,
    /// The tool's output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<ExternalToolResult>,
    /// The tool failed; the model sees `External tool execution error: <error>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Output of an external tool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ExternalToolResult {
    /// Content parts: `text` parts are joined with newlines, `image` parts sent as images.
    pub content: Vec<ExternalToolContent>,
    /// Report the result to the model as an error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_error: Option<bool>,
}

/// One part of an external tool's output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ExternalToolContent {
    /// Part type (`text`, `image`, …).
    #[serde(rename = "type")]
    pub kind: String,
    /// Text of a `text` part.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Base64 data of an `image` part.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// MIME type of an `image` part.
    #[serde(default, rename = "mimeType", skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
}
