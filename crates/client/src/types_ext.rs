//! Constructors for the generated types the client API takes.

use crate::types::{
    ApprovalDecision, ContentPart, CreateAgent, InputPayload, MessageContent, MessageCreate, MessageRole, RuntimeScope,
    RuntimeStart, Sync,
};

impl RuntimeScope {
    /// The runtime of `agent_id` and `conversation_id` (or `"default"`).
    pub fn new(agent_id: impl Into<String>, conversation_id: impl Into<String>) -> Self {
        Self {
            agent_id: Some(agent_id.into()),
            conversation_id: conversation_id.into(),
            acting_user_id: None,
        }
    }
}

impl RuntimeStart {
    /// Creates an agent named `name` (scripted model on this project's server unless the
    /// body names a `model`) and a new conversation.
    pub fn new_agent(name: &str) -> Self {
        let body = serde_json::Map::from_iter([("name".to_owned(), name.into())]);
        Self {
            create_agent: Some(CreateAgent {
                body,
                ..CreateAgent::default()
            }),
            ..Self::default()
        }
    }

    /// Joins an existing agent and conversation (an agent-free conversation by its id alone).
    pub fn join(scope: &RuntimeScope) -> Self {
        Self {
            agent_id: scope.agent_id.clone(),
            conversation_id: Some(scope.conversation_id.clone()),
            ..Self::default()
        }
    }
}

impl Sync {
    /// `sync` of `scope`: subscribes to it and replays its state.
    pub fn new(scope: &RuntimeScope) -> Self {
        Self {
            type_: "sync".into(),
            request_id: None,
            runtime: scope.clone(),
            force_device_status: None,
            recover_approvals: None,
            resume_after: None,
        }
    }
}

impl InputPayload {
    /// A `create_message` payload of one user message.
    pub fn user_text(text: &str) -> Self {
        InputPayload::CreateMessage {
            messages: vec![MessageCreate {
                role: MessageRole::User,
                content: MessageContent::String(text.to_owned()),
                client_message_id: None,
                batch_item_id: None,
                group_id: None,
                name: None,
                otid: None,
                sender_id: None,
                type_: None,
            }],
            client_preferences: None,
            client_tool_allowlist: None,
            client_toolset: None,
            exclude_interactive_tools: None,
            external_tool_scope_ids: None,
            image_failure_mode: None,
        }
    }
}

impl ApprovalDecision {
    /// Run the tool as the model asked.
    pub fn allow() -> Self {
        ApprovalDecision::Allow {
            message: None,
            selected_permission_suggestion_ids: None,
            updated_input: None,
        }
    }

    /// Run the tool with these arguments instead. `input` should be a JSON object; any other
    /// value leaves the model's arguments unchanged.
    pub fn allow_with_input(input: serde_json::Value) -> Self {
        ApprovalDecision::Allow {
            message: None,
            selected_permission_suggestion_ids: None,
            updated_input: input.as_object().cloned(),
        }
    }

    /// Do not run the tool; the model gets `message` as its result.
    pub fn deny(message: impl Into<String>) -> Self {
        ApprovalDecision::Deny {
            message: message.into(),
        }
    }
}

impl MessageContent {
    /// The text: the string itself, or the text parts joined (images are left out).
    pub fn text(&self) -> String {
        match self {
            MessageContent::String(text) => text.clone(),
            MessageContent::Array(parts) => parts
                .iter()
                .filter_map(|part| match part {
                    ContentPart::Text { text } => Some(text.as_str()),
                    ContentPart::Image { .. } => None,
                })
                .collect(),
        }
    }
}
