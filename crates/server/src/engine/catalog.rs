//! Conversations as Letta objects: creating them (`runtime_start`, `conversation_create`,
//! `conversation_fork`) and finding the scope a conversation id names.

use letta_app_server_protocol::{JsonObject, RuntimeScope, ToolsetPreference};
use serde_json::{Value, json};

use crate::clock::{new_id, now_iso};
use crate::engine::context::Context;

/// Stores a new conversation `<prefix>-<uuid>` of `agent_id` (`None`: agent-free, marked
/// `agent_free: true`) made of `body` and Letta's defaults; returns it.
pub async fn new_conversation(
    context: &Context,
    prefix: &str,
    agent_id: Option<&str>,
    body: JsonObject,
) -> Result<JsonObject, String> {
    let id = new_id(prefix);
    let now = now_iso();
    let mut conversation = conversation_object(&id, agent_id, &now, body);
    if agent_id.is_none() {
        conversation.insert("agent_free".into(), Value::Bool(true));
    }
    let scope = RuntimeScope {
        agent_id: agent_id.map(str::to_owned),
        ..RuntimeScope::agent_free(id)
    };
    (context.store.insert_conversation(&scope, &conversation, now).await).map_err(|e| e.to_string())?;
    Ok(conversation)
}

/// The synthesized default conversation of an agent (never stored, docs/protocol.md §3.2).
pub fn default_conversation(agent_id: &str) -> JsonObject {
    conversation_object("default", Some(agent_id), &now_iso(), JsonObject::new())
}

/// A Letta `Conversation` object: `body` with Letta's defaults for what it leaves out, and its
/// `id` and `agent_id`.
pub fn conversation_object(id: &str, agent_id: Option<&str>, now: &str, mut body: JsonObject) -> JsonObject {
    let defaults = json!({
        "id": id, "agent_id": agent_id, "archived": false, "archived_at": null, "created_at": now,
        "updated_at": now, "last_message_at": null, "summary": null, "in_context_message_ids": [],
    });
    for (key, value) in defaults.as_object().into_iter().flatten() {
        body.entry(key.clone()).or_insert_with(|| value.clone());
    }
    body.insert("id".into(), json!(id));
    body.insert("agent_id".into(), json!(agent_id));
    body
}

/// The stored agent `agent_id`, or Letta's words for its absence (an empty id names no agent).
pub async fn stored_agent(context: &Context, agent_id: &str) -> Result<JsonObject, String> {
    if agent_id.trim().is_empty() {
        return Err("No agent context set. Agent ID is required.".into());
    }
    match context.store.agent(agent_id.to_owned()).await {
        Ok(Some(agent)) => Ok(agent),
        Ok(None) => Err(format!("Agent {agent_id} not found")),
        Err(error) => Err(error.to_string()),
    }
}

/// The scope a conversation id names, with the stored conversation: `default` is the default
/// conversation of `agent_id` (which must exist; it has no stored object); any other id must be
/// a stored conversation (agent-free ones have no agent). Errors are Letta's texts.
pub async fn scope_of(
    context: &Context,
    conversation_id: &str,
    agent_id: Option<&str>,
) -> Result<(RuntimeScope, Option<JsonObject>), String> {
    let store = &context.store;
    if conversation_id == "default" {
        let agent_id = agent_id.ok_or("Conversation default not found: name its agent with agent_id")?;
        stored_agent(context, agent_id).await?;
        return Ok((RuntimeScope::new(agent_id, "default"), None));
    }
    let conversation = (store.conversation(conversation_id.to_owned()).await)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("Conversation {conversation_id} not found"))?;
    let owner = conversation.get("agent_id").and_then(Value::as_str).map(str::to_owned);
    let scope = RuntimeScope {
        agent_id: owner,
        ..RuntimeScope::agent_free(conversation_id)
    };
    Ok((scope, Some(conversation)))
}

/// How to fork a conversation (`conversation_fork`'s body).
#[derive(Debug, Clone, Default)]
pub struct Fork<'a> {
    /// The agent of the fork (default: the source's).
    pub agent_id: Option<&'a str>,
    /// The last stored message the fork keeps (default: all of them).
    pub through: Option<String>,
    /// Whether the fork is hidden from listings.
    pub hidden: Option<bool>,
}

/// Stores a fork `conv-<uuid>` of the conversation `source_id`: its summary, model, settings
/// and toolset preference, and its history (up to `fork.through`); returns the fork's id.
/// Errors are Letta's texts.
pub async fn fork_conversation(context: &Context, source_id: &str, fork: Fork<'_>) -> Result<String, String> {
    let (source, state) = scope_of(context, source_id, fork.agent_id).await?;
    let agent_id = fork.agent_id.map(str::to_owned).or_else(|| source.agent_id.clone());
    if let Some(agent_id) = &agent_id {
        scope_of(context, "default", Some(agent_id)).await?;
    }
    let state = state.unwrap_or_default();
    let mut copied = JsonObject::new();
    for key in ["summary", "model", "model_settings", "context_window_limit", "system"] {
        if let Some(value) = state.get(key) {
            copied.insert(key.into(), value.clone());
        }
    }
    if let Some(hidden) = fork.hidden {
        copied.insert("hidden".into(), json!(hidden));
    }
    let id = new_id("conv");
    let now = now_iso();
    let mut forked = conversation_object(&id, agent_id.as_deref(), &now, copied);
    if agent_id.is_none() {
        forked.insert("agent_free".into(), json!(true));
    }
    let target = RuntimeScope {
        agent_id,
        ..RuntimeScope::agent_free(id.clone())
    };
    let store = &context.store;
    let forked = store.fork(&source, fork.through.clone(), &target, forked, now).await;
    if !forked.map_err(|e| e.to_string())? {
        return Err(format!("Message {} not found", fork.through.unwrap_or_default()));
    }
    // The fork keeps the source's toolset, as on real Letta.
    let toolset = store.toolset_preference(&source).await.map_err(|e| e.to_string())?;
    if toolset != ToolsetPreference::Auto {
        (store.save_toolset_preference(&target, &toolset).await).map_err(|e| e.to_string())?;
    }
    Ok(id)
}
