//! `runtime_start`: resolve or create an agent and a conversation (docs/protocol.md §3.2).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::serde_util::{double_option, nullable};
use crate::{DevicePermissionMode, ExternalToolGroup, JsonObject, RuntimeScope};

/// Resolves or creates an agent and a conversation, subscribes the sending connection to the
/// scope, registers the controller's external tools and replays the scope's state.
///
/// Exactly one of `agent_id` / `create_agent` must be given (checked by the server, which
/// answers a violation with a failed [`RuntimeStartResponse`]). Without `conversation_id` and
/// `create_conversation` a **new** conversation is created; `"default"` selects the agent's
/// default conversation.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct RuntimeStart {
    /// Correlates the response.
    pub request_id: String,
    /// An existing agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// Create a new agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_agent: Option<CreateAgent>,
    /// An existing conversation, or `"default"`. Not combinable with `create_conversation`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
    /// Create a new conversation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_conversation: Option<CreateConversation>,
    /// Tags merged into the conversation's `tags` (ignored for `default`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_source_tags: Option<Vec<String>>,
    /// Initial working directory: absent leaves it unchanged, `null` resets it to the server's
    /// boot directory.
    #[serde(
        default,
        deserialize_with = "double_option::deserialize",
        skip_serializing_if = "Option::is_none"
    )]
    pub cwd: Option<Option<String>>,
    /// Permission mode for the scope (persisted). Legacy aliases are not accepted here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<DevicePermissionMode>,
    /// Confine tools to a directory tree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_sandbox: Option<WorkspaceSandbox>,
    /// Skill source override for the scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skill_sources: Option<Vec<SkillSource>>,
    /// When `skill_sources` is absent: `true` keeps an existing override, otherwise it is cleared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preserve_skill_sources: Option<bool>,
    /// Who is connecting (diagnostics only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_info: Option<ClientInfo>,
    /// Probe for approvals left pending by a previous process before the replay (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recover_approvals: Option<bool>,
    /// Include `update_device_status` in the replay even if unchanged (default true here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_device_status: Option<bool>,
    /// Send the response after the replay instead of before it (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_for_replay: Option<bool>,
    /// Controller-owned tools for this runtime; replaces this connection's registrations
    /// (absent clears them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_tools: Option<Vec<ExternalToolGroup>>,
    /// This server's extension (docs/protocol.md §2.2): subscribe with a resume cursor, the
    /// last `conversation_seq` this client has (`0`: none yet). The answer then carries
    /// `resume`, and the scope's runtime events `conversation_seq`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume_after: Option<u64>,
}

/// How to create an agent in `runtime_start`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct CreateAgent {
    /// Letta `AgentCreateParams` (`name`, `model`, `system`, `tools`, …), passed through.
    pub body: JsonObject,
    /// Pin the agent in local settings (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin_global: Option<bool>,
    /// Give the agent its own memory repository (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memfs: Option<bool>,
}

/// How to create a conversation in `runtime_start`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct CreateConversation {
    /// Letta `ConversationCreateParams` without `agent_id` (e.g. `summary`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<JsonObject>,
}

/// Confines tools to `root`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct WorkspaceSandbox {
    /// Directory tools may touch; the cwd must be inside it.
    pub root: String,
    /// Isolation root.
    pub isolation_root: String,
}

/// Where skills are loaded from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SkillSource {
    /// Skills shipped with the server.
    Bundled,
    /// User-wide skills.
    Global,
    /// The agent's own skills.
    Agent,
    /// Skills of the project in the cwd.
    Project,
}

/// Identifies the connecting client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ClientInfo {
    /// Client name.
    pub name: String,
    /// Human-readable title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Client version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// Result of `runtime_start`. Sent before the state replay unless `wait_for_replay`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RuntimeStartResponse {
    /// Echo of the request's id.
    pub request_id: String,
    /// Whether the runtime started.
    pub success: bool,
    /// The resolved scope; `null` on failure.
    #[schemars(required, schema_with = "nullable::<RuntimeScope>")]
    pub runtime: Option<RuntimeScope>,
    /// Letta `AgentState` as the backend returned it; `null` if not resolved.
    #[schemars(required, schema_with = "nullable::<JsonObject>")]
    pub agent: Option<JsonObject>,
    /// Letta `Conversation`; `null` if not resolved.
    #[schemars(required, schema_with = "nullable::<JsonObject>")]
    pub conversation: Option<JsonObject>,
    /// What was created by this call.
    pub created: Created,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Where the event stream resumes, when the request had `resume_after`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume: Option<crate::Resume>,
}

/// What `runtime_start` created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct Created {
    /// A new agent was created.
    pub agent: bool,
    /// A new conversation was created.
    pub conversation: bool,
}
