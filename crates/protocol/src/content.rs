//! User message content: `MessageCreate` and its content parts.

use schemars::JsonSchema;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::parse::{json_kind, path_tracked, tagged_object};

/// Who a message is from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MessageRole {
    /// The user.
    User,
    /// The system.
    System,
    /// The assistant.
    Assistant,
}

/// The optional `type` marker of a `MessageCreate`; only `"message"` is allowed in
/// `input.kind=create_message` (approval messages go through `approval_response`). Closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MessageMarker {
    /// A plain message.
    Message,
}

/// One message sent to the agent (Letta `MessageCreate` plus `client_message_id`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MessageCreate {
    /// Author role.
    pub role: MessageRole,
    /// Text, or an array of content parts.
    pub content: MessageContent,
    /// Client-chosen idempotency and correlation key (docs/protocol.md §3.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_message_id: Option<String>,
    /// Offline thread id; defaults to `client_message_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otid: Option<String>,
    /// Display name of the author.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Sender id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_id: Option<String>,
    /// Group id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
    /// Batch item id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_item_id: Option<String>,
    /// Always `"message"` when present.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<MessageMarker>,
}

impl MessageCreate {
    /// A user message with plain text content.
    pub fn user_text(text: impl Into<String>) -> Self {
        Self {
            role: MessageRole::User,
            content: MessageContent::Text(text.into()),
            client_message_id: None,
            otid: None,
            name: None,
            sender_id: None,
            group_id: None,
            batch_item_id: None,
            kind: None,
        }
    }
}

/// Message content: a plain string or an array of parts.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum MessageContent {
    /// Plain text.
    Text(String),
    /// Content parts.
    Parts(Vec<ContentPart>),
}

impl<'de> Deserialize<'de> for MessageContent {
    // Dispatch on the JSON type instead of trying each variant, so that an error inside a part
    // names the part's field rather than "did not match any variant".
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::String(text) => Ok(Self::Text(text)),
            parts @ Value::Array(_) => path_tracked(parts).map(Self::Parts).map_err(D::Error::custom),
            other => Err(D::Error::custom(format!(
                "expected a string or an array of content parts, got {}",
                json_kind(&other)
            ))),
        }
    }
}

tagged_union! {
    /// One part of message content. Open: a part type this version does not know is kept.
    pub enum ContentPart: open tag part_type = "type" {
        /// A text fragment.
        Text(TextPart) = "text",
        /// An image.
        Image(ImagePart) = "image",
    }
}

impl ContentPart {
    /// A text part.
    pub fn text(text: impl Into<String>) -> Self {
        Self::Text(TextPart { text: text.into() })
    }
}

/// A text content part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TextPart {
    /// The text.
    pub text: String,
}

/// An image content part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ImagePart {
    /// Where the image comes from.
    #[serde(deserialize_with = "tagged_object::required")]
    pub source: ImageSource,
}

/// Where an image content part comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ImageSource {
    /// Inline base64 data.
    Base64 {
        /// MIME type, e.g. `image/png`.
        media_type: String,
        /// Base64-encoded bytes.
        data: String,
    },
    /// A URL the server fetches.
    Url {
        /// The image URL.
        url: String,
    },
    /// A file stored by Letta.
    Letta {
        /// The Letta file id.
        file_id: String,
    },
}
