//! The conversation history: what the turn engine appends, the store keeps and every model
//! provider is sent.

use letta_app_server_protocol::MessageContent;
use serde::{Deserialize, Serialize};

/// One message of the conversation history sent to the model (and stored).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum HistoryMessage {
    /// A user message.
    User {
        /// Text or content parts (text and images).
        content: MessageContent,
    },
    /// An assistant reply, possibly with tool calls.
    Assistant {
        /// The id its `stream_delta`s carried, which the history lists it under (stored messages
        /// of earlier versions have none: the store gives them one).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        /// What the model reasoned before replying (listed, never sent back to a model).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reasoning: Option<String>,
        /// The reply text (may be empty when the model only called tools).
        text: String,
        /// Tool calls the model made.
        tool_calls: Vec<ToolCall>,
    },
    /// The result of one tool call.
    ToolResult {
        /// The call answered.
        tool_call_id: String,
        /// The result text the model sees.
        content: String,
        /// Whether the tool failed.
        is_error: bool,
    },
    /// Why a turn failed, as its `error_message` said (listed, never sent to a model).
    Error {
        /// The error text.
        message: String,
    },
}

/// A complete tool call made by the model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The call id (the provider's, or generated when it has none).
    pub id: String,
    /// The tool's name.
    pub name: String,
    /// The arguments as a JSON string.
    pub arguments: String,
}
