//! `input`: start a turn or answer an approval (docs/protocol.md §3.3).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::parse::tagged_object;
use crate::{JsonObject, MessageCreate, RuntimeScope, TeleportContinue, ToolsetPreference};

/// Sends user messages or an approval answer to a runtime. Subscribes the socket to the scope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Input {
    /// When present the server answers with `input_accepted`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Letta 0.34: who consumes this input's turn end; echoed in `turn_finished.terminal_consumer_ids`.
    /// 1–256 characters of `A-Z a-z 0-9 . _ ~ : % -`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminal_consumer_id: Option<String>,
    /// The target scope.
    pub runtime: RuntimeScope,
    /// What to do.
    pub payload: InputPayload,
}

tagged_union! {
    /// The body of an `input`, discriminated by `kind`. Closed: an unknown kind is an error.
    pub enum InputPayload: closed tag kind = "kind" {
        /// Send user messages: start a turn when the conversation is idle, else queue them.
        CreateMessage(CreateMessage) = "create_message",
        /// Answer a pending `control_request`.
        ApprovalResponse(ApprovalResponse) = "approval_response",
        /// Continue a conversation teleported from another device.
        TeleportContinue(TeleportContinue) = "teleport_continue",
    }
}

/// `payload.kind: "create_message"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CreateMessage {
    /// The messages; several messages form one turn.
    pub messages: Vec<MessageCreate>,
    /// What to do with unusable images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_failure_mode: Option<ImageFailureMode>,
    /// Restrict the locally executed tools for this turn (`[]` = none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_tool_allowlist: Option<Vec<String>>,
    /// Per-turn toolset preset and extra tools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_toolset: Option<ClientToolset>,
    /// Make scoped external tools visible for this turn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_tool_scope_ids: Option<Vec<String>>,
    /// Drop interactive (AskUserQuestion-style) tools, for headless clients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude_interactive_tools: Option<bool>,
    /// Letta 0.34: the conversation's remembered client choices. Omitted keeps the remembered
    /// ones, supplied replaces them, `{}` clears them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_preferences: Option<ClientPreferences>,
}

/// Client choices a conversation remembers until they are replaced (Letta 0.34). Closed: any
/// other key is an error.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientPreferences {
    /// Extra bundled tools offered on every turn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub toolset: Option<ToolsetInclude>,
}

/// `client_preferences.toolset`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ToolsetInclude {
    /// Bundled tools by model-facing name (unknown names are a protocol violation).
    pub include: Vec<String>,
}

impl CreateMessage {
    /// A payload carrying `messages` and no per-turn options.
    pub fn new(messages: Vec<MessageCreate>) -> Self {
        Self {
            messages,
            image_failure_mode: None,
            client_tool_allowlist: None,
            client_toolset: None,
            external_tool_scope_ids: None,
            exclude_interactive_tools: None,
            client_preferences: None,
        }
    }
}

/// What to do with an image the model cannot use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ImageFailureMode {
    /// Fail the turn.
    Strict,
    /// Drop the image.
    Drop,
}

/// A per-turn toolset preset plus extra bundled tools.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ClientToolset {
    /// Preset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<ToolsetPreference>,
    /// Extra bundled tools by name (unknown names fail the turn).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include: Option<Vec<String>>,
}

/// `payload.kind: "approval_response"`: answers the `control_request` with `request_id`.
/// One of `decision` / `error` is expected; `error` is treated as a denial.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ApprovalResponse {
    /// The `control_request`'s id (`perm-<tool_call_id>`).
    pub request_id: String,
    /// The decision.
    #[serde(
        default,
        deserialize_with = "tagged_object::optional",
        skip_serializing_if = "Option::is_none"
    )]
    pub decision: Option<ApprovalDecision>,
    /// The client failed to decide; treated as a denial with this text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// An approval decision. Closed: an unknown `behavior` is an error, never "allow".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "behavior", rename_all = "snake_case")]
pub enum ApprovalDecision {
    /// Run the tool.
    Allow {
        /// Optional note.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        /// Replacement tool arguments.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        updated_input: Option<JsonObject>,
        /// Permission suggestions to persist as rules before running.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        selected_permission_suggestion_ids: Option<Vec<String>>,
    },
    /// Do not run the tool; `message` becomes the tool result the model sees.
    Deny {
        /// Why (required).
        message: String,
    },
}

/// The server's acknowledgement of an `input` that carried a `request_id`. Means "taken into
/// the dispatch/queue path", never "turn finished".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct InputAccepted {
    /// Echo of the request's id.
    pub request_id: String,
    /// Echo of the request's scope.
    pub runtime: RuntimeScope,
    /// Whether the input was accepted.
    pub accepted: bool,
    /// For an accepted `create_message`: started a turn, or queued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disposition: Option<Disposition>,
    /// Why it was rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What happened to an accepted `create_message`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Disposition {
    /// The conversation was idle: a turn started.
    Started,
    /// Appended to the conversation's queue.
    Queued,
}

/// The legacy input form (`type: "message"`), still accepted and converted to `input`.
/// It has no `request_id`, so it is never acknowledged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LegacyMessage {
    /// The agent.
    #[serde(rename = "agentId")]
    pub agent_id: String,
    /// The conversation; defaults to `"default"`. The snake_case spelling `conversation_id` is
    /// accepted too.
    #[serde(
        default,
        rename = "conversationId",
        alias = "conversation_id",
        skip_serializing_if = "Option::is_none"
    )]
    pub conversation_id: Option<String>,
    /// The messages.
    pub messages: Vec<MessageCreate>,
    /// As `create_message.client_tool_allowlist`.
    #[serde(default, rename = "clientToolAllowlist", skip_serializing_if = "Option::is_none")]
    pub client_tool_allowlist: Option<Vec<String>>,
    /// As `create_message.client_toolset`.
    #[serde(default, rename = "clientToolset", skip_serializing_if = "Option::is_none")]
    pub client_toolset: Option<ClientToolset>,
    /// As `create_message.external_tool_scope_ids`.
    #[serde(default, rename = "externalToolScopeIds", skip_serializing_if = "Option::is_none")]
    pub external_tool_scope_ids: Option<Vec<String>>,
}

impl LegacyMessage {
    /// The equivalent `input` (no `request_id`, conversation defaulting to `"default"`).
    pub fn into_input(self) -> Input {
        let conversation_id = self.conversation_id.unwrap_or_else(|| "default".to_owned());
        Input {
            request_id: None,
            terminal_consumer_id: None,
            runtime: RuntimeScope::new(self.agent_id, conversation_id),
            payload: InputPayload::CreateMessage(CreateMessage {
                client_tool_allowlist: self.client_tool_allowlist,
                client_toolset: self.client_toolset,
                external_tool_scope_ids: self.external_tool_scope_ids,
                ..CreateMessage::new(self.messages)
            }),
        }
    }
}

/// A JSON `{"type":"pong"}`: accepted and ignored (keepalive uses websocket ping frames).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct Pong {}
