//! The agents group: `agent_list`, `agent_retrieve`, `agent_create`, `agent_update`,
//! `agent_delete`, and the preset-based `create_agent` (docs/protocol.md §4).
//!
//! Query parameters and bodies are Letta API objects (`AgentListParams`, `AgentCreateParams`,
//! `AgentUpdateParams`) that the server forwards to its backend; they stay open JSON objects.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::JsonObject;
use crate::serde_util::nullable;

/// A Letta `AgentState`: the fields this project relies on typed, every other field kept.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct AgentState {
    /// The agent's id.
    pub id: String,
    /// The agent's name.
    pub name: String,
    /// The rest of the agent's state (`system`, `tools`, `llm_config`, `tags`, …), as sent.
    #[serde(flatten)]
    pub rest: JsonObject,
}

/// Lists agents.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct AgentList {
    /// Correlates the response.
    pub request_id: String,
    /// Letta `AgentListParams` (`limit`, `after`, `name`, `tags`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<JsonObject>,
}

/// Result of `agent_list`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct AgentListResponse {
    /// Echo of the request's id.
    pub request_id: String,
    /// Whether the agents were listed.
    pub success: bool,
    /// The agents (empty on failure).
    pub agents: Vec<AgentState>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Reads one agent.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct AgentRetrieve {
    /// Correlates the response.
    pub request_id: String,
    /// The agent.
    pub agent_id: String,
}

object_response! {
    /// Result of `agent_retrieve`.
    AgentRetrieveResponse { agent: AgentState, schema "nullable::<AgentState>" }
    /// Result of `agent_create`.
    AgentCreateResponse { agent: AgentState, schema "nullable::<AgentState>" }
    /// Result of `agent_update`.
    AgentUpdateResponse { agent: AgentState, schema "nullable::<AgentState>" }
}

/// Creates an agent from a Letta `AgentCreateParams` body.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct AgentCreate {
    /// Correlates the response.
    pub request_id: String,
    /// Letta `AgentCreateParams` (`name`, `model`, `system`, `tools`, …).
    pub body: JsonObject,
}

/// Updates an agent with a Letta `AgentUpdateParams` body.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct AgentUpdate {
    /// Correlates the response.
    pub request_id: String,
    /// The agent.
    pub agent_id: String,
    /// Letta `AgentUpdateParams`: the fields to change.
    pub body: JsonObject,
}

/// Deletes an agent.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct AgentDelete {
    /// Correlates the response.
    pub request_id: String,
    /// The agent.
    pub agent_id: String,
}

/// Result of `agent_delete`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct AgentDeleteResponse {
    /// Echo of the request's id.
    pub request_id: String,
    /// Whether the agent was deleted.
    pub success: bool,
    /// Echo of the agent id.
    pub agent_id: String,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Creates an agent from one of Letta Code's built-in personality presets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CreateAgentCommand {
    /// Correlates the response.
    pub request_id: String,
    /// The preset.
    pub personality: Personality,
    /// Model identifier (the preset's default when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Extra tags for the new agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// Pin the agent globally after creation (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin_global: Option<bool>,
}

/// A built-in personality preset of `create_agent`. Closed: an unknown preset is an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Personality {
    /// Memo.
    Memo,
    /// The tutorial agent.
    Tutorial,
    /// No personality.
    Blank,
    /// Linus.
    Linus,
    /// Kawaii.
    Kawaii,
}

/// Result of `create_agent`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct CreateAgentResponse {
    /// Echo of the request's id.
    pub request_id: String,
    /// Whether the agent was created.
    pub success: bool,
    /// The new agent's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// The new agent's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The new agent's model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

refused_with_empty_fields! {
    AgentList => AgentListResponse,
    AgentRetrieve => AgentRetrieveResponse,
    AgentCreate => AgentCreateResponse,
    AgentUpdate => AgentUpdateResponse,
    CreateAgentCommand => CreateAgentResponse,
}

impl crate::Refuse for AgentDelete {
    fn refuse(&self, error: String) -> Option<AgentDeleteResponse> {
        Some(AgentDeleteResponse {
            request_id: self.request_id.clone(),
            success: false,
            agent_id: self.agent_id.clone(),
            error: Some(error),
        })
    }
}
