//! The runtime scope that addresses one agent conversation.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A resolved `{agent_id, conversation_id}` scope (docs/protocol.md §2.4).
///
/// `conversation_id: "default"` addresses the agent's built-in default conversation; `agent_id:
/// null` an agent-free conversation (Letta 0.34's `ConversationRuntimeScope`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
pub struct RuntimeScope {
    /// The agent id, or `null` for an agent-free conversation (required either way).
    #[serde(deserialize_with = "crate::serde_util::present")]
    #[schemars(required, schema_with = "crate::serde_util::nullable::<String>")]
    pub agent_id: Option<String>,
    /// The conversation id, or `"default"`.
    pub conversation_id: String,
    /// Inbound only: the user a relay acts for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acting_user_id: Option<String>,
}

impl RuntimeScope {
    /// A scope of an agent's conversation, without an acting user.
    pub fn new(agent_id: impl Into<String>, conversation_id: impl Into<String>) -> Self {
        Self {
            agent_id: Some(agent_id.into()),
            conversation_id: conversation_id.into(),
            acting_user_id: None,
        }
    }

    /// The scope of an agent-free conversation (`agent_id: null`), without an acting user.
    pub fn agent_free(conversation_id: impl Into<String>) -> Self {
        Self {
            agent_id: None,
            conversation_id: conversation_id.into(),
            acting_user_id: None,
        }
    }

    /// The same scope without `acting_user_id` (what identifies the conversation).
    pub fn without_acting_user(&self) -> Self {
        Self {
            acting_user_id: None,
            ..self.clone()
        }
    }
}

/// `agent/conversation`, with `null` for the agent of an agent-free conversation.
impl std::fmt::Display for RuntimeScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let agent = self.agent_id.as_deref().unwrap_or("null");
        write!(f, "{agent}/{}", self.conversation_id)
    }
}

/// The scope of a command about an agent's own runtime — launching subagents, slash commands,
/// monitors, teleport, binding a chat channel, reflection settings: Letta 0.34's
/// `AgentRuntimeScope`, whose `agent_id` is a string, never `null` (docs/protocol.md §2.4).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
pub struct AgentRuntimeScope {
    /// The agent id.
    pub agent_id: String,
    /// The conversation id, or `"default"`.
    pub conversation_id: String,
    /// Inbound only: the user a relay acts for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acting_user_id: Option<String>,
}

impl AgentRuntimeScope {
    /// A scope of an agent's conversation, without an acting user.
    pub fn new(agent_id: impl Into<String>, conversation_id: impl Into<String>) -> Self {
        Self {
            agent_id: agent_id.into(),
            conversation_id: conversation_id.into(),
            acting_user_id: None,
        }
    }
}

impl From<AgentRuntimeScope> for RuntimeScope {
    fn from(scope: AgentRuntimeScope) -> Self {
        Self {
            agent_id: Some(scope.agent_id),
            conversation_id: scope.conversation_id,
            acting_user_id: scope.acting_user_id,
        }
    }
}

/// A scope whose agent may be `null` (an agent-free conversation, Letta 0.34).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub struct AgentScope {
    /// The agent id, or `null` (required either way).
    #[schemars(required, schema_with = "crate::serde_util::nullable::<String>")]
    pub agent_id: Option<String>,
    /// The conversation id.
    pub conversation_id: String,
}
