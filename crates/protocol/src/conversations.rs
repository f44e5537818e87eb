//! The conversations group: `conversation_list`, `conversation_retrieve`,
//! `conversation_create`, `conversation_update`, `conversation_recompile`,
//! `conversation_fork`, `conversation_messages_list` and `conversation_compact`
//! (docs/protocol.md §4).
//!
//! Query parameters and bodies are Letta API objects (`ConversationListParams`,
//! `ConversationCreateParams`, `MessageListParams`, …) that the server forwards to its backend;
//! they stay open JSON objects. `conversation_fork`'s body is Letta Code's own and is typed.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::JsonObject;
use crate::serde_util::nullable;

/// A Letta `Conversation`: the fields this project relies on typed, every other field kept.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct Conversation {
    /// The conversation's id.
    pub id: String,
    /// The agent it belongs to; `null` for an agent-free conversation (Letta 0.34).
    #[schemars(required, schema_with = "nullable::<String>")]
    pub agent_id: Option<String>,
    /// The rest of the conversation (`summary`, `created_at`, `archived`, …), as sent.
    #[serde(flatten)]
    pub rest: JsonObject,
}

/// A message of a conversation's history (a Letta `LettaMessage`): the fields this project
/// relies on typed, every other field kept.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct HistoryMessage {
    /// The message's id.
    pub id: String,
    /// ISO-8601 time of the message.
    pub date: String,
    /// What kind of message (`user_message`, `assistant_message`, `tool_call_message`, …).
    pub message_type: String,
    /// The rest of the message (`content`, `role`, `tool_call`, …), as sent.
    #[serde(flatten)]
    pub rest: JsonObject,
}

/// Lists conversations.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct ConversationList {
    /// Correlates the response.
    pub request_id: String,
    /// Letta `ConversationListParams` (`agent_id`, `limit`, `after`, `order`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<JsonObject>,
}

/// Result of `conversation_list`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct ConversationListResponse {
    /// Echo of the request's id.
    pub request_id: String,
    /// Whether the conversations were listed.
    pub success: bool,
    /// The conversations (empty on failure).
    pub conversations: Vec<Conversation>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Reads one conversation.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct ConversationRetrieve {
    /// Correlates the response.
    pub request_id: String,
    /// The conversation.
    pub conversation_id: String,
}

/// Creates a conversation.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct ConversationCreate {
    /// Correlates the response.
    pub request_id: String,
    /// Letta `ConversationCreateParams` (`agent_id` required by Letta; `summary`, `model`, …).
    pub body: JsonObject,
    /// Set by a relay: the user the new conversation is attributed to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acting_user_id: Option<String>,
}

/// Updates a conversation.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct ConversationUpdate {
    /// Correlates the response.
    pub request_id: String,
    /// The conversation.
    pub conversation_id: String,
    /// Letta `ConversationUpdateParams`: the fields to change.
    pub body: JsonObject,
}

object_response! {
    /// Result of `conversation_retrieve`.
    ConversationRetrieveResponse { conversation: Conversation, schema "nullable::<Conversation>" }
    /// Result of `conversation_create`.
    ConversationCreateResponse { conversation: Conversation, schema "nullable::<Conversation>" }
    /// Result of `conversation_update`.
    ConversationUpdateResponse { conversation: Conversation, schema "nullable::<Conversation>" }
    /// Result of `conversation_fork`: the new conversation's id.
    ConversationForkResponse { conversation: ForkedConversation, schema "nullable::<ForkedConversation>" }
    /// Result of `conversation_compact`.
    ConversationCompactResponse { compaction: Compaction, schema "nullable::<Compaction>" }
    /// Result of `conversation_recompile`: the recompiled system prompt (or what it would be,
    /// for a dry run).
    ConversationRecompileResponse { result: String, schema "nullable::<String>" }
}

/// Recompiles a conversation's system prompt.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct ConversationRecompile {
    /// Correlates the response.
    pub request_id: String,
    /// The conversation.
    pub conversation_id: String,
    /// Letta `ConversationRecompileParams` (`dry_run`, `agent_id`, `compaction_settings`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<JsonObject>,
}

/// Forks a conversation into a new one.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct ConversationFork {
    /// Correlates the response.
    pub request_id: String,
    /// The conversation to fork.
    pub conversation_id: String,
    /// How to fork.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<ConversationForkBody>,
    /// Set by a relay: the user the new conversation is attributed to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acting_user_id: Option<String>,
}

/// The body of `conversation_fork`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct ConversationForkBody {
    /// The agent, for forking its default conversation (agent-direct mode). `null` is read as
    /// absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// Hide the forked conversation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hidden: Option<bool>,
    /// Fork through this message (inclusive) instead of the whole history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
}

/// The conversation `conversation_fork` created.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct ForkedConversation {
    /// Its id.
    pub id: String,
}

/// Lists a conversation's messages, newest first.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct ConversationMessagesList {
    /// Correlates the response.
    pub request_id: String,
    /// The conversation.
    pub conversation_id: String,
    /// Letta `MessageListParams` (`limit`, `before`, `after`, `order`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<JsonObject>,
}

/// Result of `conversation_messages_list`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct ConversationMessagesListResponse {
    /// Echo of the request's id.
    pub request_id: String,
    /// Whether the messages were listed.
    pub success: bool,
    /// The page of messages (empty on failure).
    pub messages: Vec<HistoryMessage>,
    /// The cursor for the next (older) page; `null` when there is none.
    #[schemars(required, schema_with = "nullable::<String>")]
    pub next_before: Option<String>,
    /// Whether older messages exist.
    pub has_more: bool,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Summarises a conversation's older messages to free context.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct ConversationCompact {
    /// Correlates the response.
    pub request_id: String,
    /// The conversation.
    pub conversation_id: String,
    /// Letta `MessageCompactParams`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<JsonObject>,
}

/// What `conversation_compact` did (a Letta `CompactionResponse`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct Compaction {
    /// Messages in context before.
    pub num_messages_before: u64,
    /// Messages in context after.
    pub num_messages_after: u64,
    /// The summary that replaced them.
    pub summary: String,
}

refused_with_empty_fields! {
    ConversationList => ConversationListResponse,
    ConversationRetrieve => ConversationRetrieveResponse,
    ConversationCreate => ConversationCreateResponse,
    ConversationUpdate => ConversationUpdateResponse,
    ConversationRecompile => ConversationRecompileResponse,
    ConversationFork => ConversationForkResponse,
    ConversationMessagesList => ConversationMessagesListResponse,
    ConversationCompact => ConversationCompactResponse,
}
