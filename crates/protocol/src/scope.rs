//! The runtime scope that addresses one agent conversation.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A resolved `{agent_id, conversation_id}` scope (docs/protocol.md §2.4).
///
/// `conversation_id: "default"` addresses the agent's built-in default conversation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
pub struct RuntimeScope {
    /// The agent id.
    pub agent_id: String,
    /// The conversation id, or `"default"`.
    pub conversation_id: String,
    /// Inbound only: the user a relay acts for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acting_user_id: Option<String>,
}

impl RuntimeScope {
    /// A scope without an acting user.
    pub fn new(agent_id: impl Into<String>, conversation_id: impl Into<String>) -> Self {
        Self {
            agent_id: agent_id.into(),
            conversation_id: conversation_id.into(),
            acting_user_id: None,
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
