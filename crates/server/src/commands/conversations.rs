//! The conversations group (docs/protocol.md §4.7): `conversation_list`,
//! `conversation_retrieve`, `conversation_create`, `conversation_update`,
//! `conversation_messages_list`, `conversation_fork`, `conversation_compact` and
//! `conversation_recompile`.
//!
//! Each answers with its own response: `success: true` and the result, or `success: false` with
//! Letta's error text (`Conversation <id> not found`, …) and the result field empty.

use letta_app_server_protocol::{
    ClientFrame, Compaction, Conversation, ConversationCompact, ConversationCompactResponse, ConversationCreate,
    ConversationCreateResponse, ConversationFork, ConversationForkResponse, ConversationList, ConversationListResponse,
    ConversationMessagesList, ConversationMessagesListResponse, ConversationRecompile, ConversationRecompileResponse,
    ConversationRetrieve, ConversationRetrieveResponse, ConversationUpdate, ConversationUpdateResponse,
    ForkedConversation, HistoryMessage, JsonObject, ServerFrame,
};
use serde_json::{Value, json};

use super::params::Params;
use crate::clock::now_iso;
use crate::engine::Engine;
use crate::engine::catalog::{Fork, fork_conversation, new_conversation, scope_of};
use crate::engine::conversation::{Agent, CompactionMode};
use crate::store::{ConversationQuery, MessageQuery, Order};

/// Handles one command of the group; `None` for a frame of another group.
pub(super) async fn handle(engine: &std::sync::Arc<Engine>, frame: ClientFrame) -> Option<ServerFrame> {
    Some(match frame {
        ClientFrame::ConversationList(command) => list(engine, command).await,
        ClientFrame::ConversationRetrieve(command) => retrieve(engine, command).await,
        ClientFrame::ConversationCreate(command) => create(engine, command).await,
        ClientFrame::ConversationUpdate(command) => update(engine, command).await,
        ClientFrame::ConversationMessagesList(command) => messages(engine, command).await,
        ClientFrame::ConversationFork(command) => fork(engine, command).await,
        ClientFrame::ConversationCompact(command) => compact(engine, command).await,
        ClientFrame::ConversationRecompile(command) => recompile(engine, command).await,
        _ => return None,
    })
}

/// A stored conversation as the `Conversation` of a response.
fn public(state: JsonObject) -> Result<Conversation, String> {
    serde_json::from_value(Value::Object(state)).map_err(|e| format!("a stored conversation is damaged: {e}"))
}

async fn list(engine: &Engine, command: ConversationList) -> ServerFrame {
    let request_id = command.request_id.clone();
    let result = async {
        let params = Params::new(command.query.as_ref(), "query");
        let archived = match params.choice("archive_status", &["unarchived", "archived", "all"])? {
            Some("archived") => Some(true),
            Some("all") => None,
            _ => Some(false),
        };
        let query = ConversationQuery {
            agent_id: params.id("agent_id")?.map(str::to_owned),
            after: params.id("after")?.map(str::to_owned),
            limit: params.limit(20)?,
            order: order(&params)?,
            by_creation: params.choice("order_by", &["created_at", "last_message_at", "last_run_completion"])?
                == Some("created_at"),
            archived,
            include_hidden: params.boolean("include_hidden")?.unwrap_or(false),
            summary_search: (params.text("summary_search", crate::limits::MAX_NAME_BYTES)?)
                .map(|text| text.trim().to_lowercase())
                .filter(|text| !text.is_empty()),
        };
        let after = query.after.clone();
        let listed = (engine.store.list_conversations(query).await).map_err(|e| e.to_string())?;
        let listed = listed.ok_or_else(|| format!("Conversation {} not found", after.unwrap_or_default()))?;
        listed.into_iter().map(public).collect::<Result<Vec<_>, _>>()
    }
    .await;
    let (conversations, error) = split(result);
    ConversationListResponse {
        request_id,
        success: error.is_none(),
        conversations: conversations.unwrap_or_default(),
        error,
    }
    .into()
}

fn order(params: &Params<'_>) -> Result<Order, String> {
    Ok(match params.choice("order", &["asc", "desc"])? {
        Some("asc") => Order::Asc,
        _ => Order::Desc,
    })
}

/// `Ok` as a value, `Err` as an error text.
fn split<T>(result: Result<T, String>) -> (Option<T>, Option<String>) {
    match result {
        Ok(value) => (Some(value), None),
        Err(error) => (None, Some(error)),
    }
}

async fn retrieve(engine: &Engine, command: ConversationRetrieve) -> ServerFrame {
    let result = async {
        let (_, state) = scope_of(engine, &command.conversation_id, None).await?;
        public(state.unwrap_or_default())
    }
    .await;
    let (conversation, error) = split(result);
    ConversationRetrieveResponse {
        request_id: command.request_id,
        success: error.is_none(),
        conversation,
        error,
    }
    .into()
}

/// Fields of `ConversationCreateParams` / `ConversationUpdateParams` this server checks: each
/// with what it must be.
const FIELDS: &[(&str, Kind)] = &[
    ("summary", Kind::Text),
    ("description", Kind::Text),
    ("model", Kind::Text),
    ("model_settings", Kind::Object),
    ("context_window_limit", Kind::Count),
    ("archived", Kind::Flag),
    ("hidden", Kind::Flag),
    ("last_message_at", Kind::Text),
];

#[derive(Debug, Clone, Copy)]
enum Kind {
    Text,
    Object,
    Count,
    Flag,
}

/// Checks the known fields of a create or update body; returns the ones to store (`null`
/// included). A model must be one this server can run.
fn checked_fields(engine: &Engine, body: &JsonObject) -> Result<JsonObject, String> {
    let mut fields = JsonObject::new();
    for (key, kind) in FIELDS {
        let Some(value) = body.get(*key) else { continue };
        let fits = match kind {
            _ if value.is_null() => !matches!(kind, Kind::Flag),
            Kind::Text => value.is_string(),
            Kind::Object => value.is_object(),
            Kind::Count => value.as_u64().is_some(),
            Kind::Flag => value.is_boolean(),
        };
        if !fits {
            let what = match kind {
                Kind::Text => "a string or null",
                Kind::Object => "an object or null",
                Kind::Count => "a positive integer or null",
                Kind::Flag => "true or false",
            };
            return Err(format!("Invalid body.{key}: expected {what}"));
        }
        if let ("model", Some(model)) = (*key, value.as_str()) {
            engine.providers.resolve(Some(model))?;
        }
        fields.insert((*key).to_owned(), value.clone());
    }
    Ok(fields)
}

async fn create(engine: &Engine, command: ConversationCreate) -> ServerFrame {
    let result = async {
        let agent_id = Params::new(Some(&command.body), "body")
            .id("agent_id")?
            .ok_or("Invalid body.agent_id: expected the id of the conversation's agent")?;
        scope_of(engine, "default", Some(agent_id)).await?;
        let fields = checked_fields(engine, &command.body)?;
        let mut body = command.body.clone();
        body.extend(fields);
        public(new_conversation(engine, "conv", Some(agent_id), body).await?)
    }
    .await;
    let (conversation, error) = split(result);
    ConversationCreateResponse {
        request_id: command.request_id,
        success: error.is_none(),
        conversation,
        error,
    }
    .into()
}

async fn update(engine: &Engine, command: ConversationUpdate) -> ServerFrame {
    let result = async {
        if command.conversation_id == "default" {
            return Err("Default conversation cannot be updated".to_owned());
        }
        scope_of(engine, &command.conversation_id, None).await?;
        let mut patch = checked_fields(engine, &command.body)?;
        let now = now_iso();
        if let Some(archived) = patch.get("archived").and_then(Value::as_bool) {
            patch.insert("archived_at".into(), if archived { json!(now) } else { Value::Null });
        }
        patch.insert("updated_at".into(), json!(now));
        let id = command.conversation_id.clone();
        let state = (engine.store.patch_conversation(id, patch).await).map_err(|e| e.to_string())?;
        public(state.ok_or_else(|| format!("Conversation {} not found", command.conversation_id))?)
    }
    .await;
    let (conversation, error) = split(result);
    ConversationUpdateResponse {
        request_id: command.request_id,
        success: error.is_none(),
        conversation,
        error,
    }
    .into()
}

async fn messages(engine: &Engine, command: ConversationMessagesList) -> ServerFrame {
    let result = async {
        let params = Params::new(command.query.as_ref(), "query");
        let query = MessageQuery {
            before: params.id("before")?.map(str::to_owned),
            after: params.id("after")?.map(str::to_owned),
            limit: params.limit(50)?,
            order: order(&params)?,
            types: params.names("include_return_message_types")?,
        };
        let (scope, _) = scope_of(engine, &command.conversation_id, params.id("agent_id")?).await?;
        let page = (engine.store.messages_page(&scope, query).await).map_err(|e| e.to_string())??;
        let messages = page
            .messages
            .into_iter()
            .map(|m| serde_json::from_value(Value::Object(m)));
        let messages: Vec<HistoryMessage> =
            (messages.collect::<Result<_, _>>()).map_err(|e| format!("a stored message is damaged: {e}"))?;
        Ok((messages, page.next_before, page.has_more))
    }
    .await;
    let (page, error) = split(result);
    let (messages, next_before, has_more) = page.unwrap_or_default();
    ConversationMessagesListResponse {
        request_id: command.request_id,
        success: error.is_none(),
        messages,
        next_before,
        has_more,
        error,
    }
    .into()
}

async fn fork(engine: &Engine, command: ConversationFork) -> ServerFrame {
    let result = async {
        let body = command.body.clone().unwrap_or_default();
        let fork = Fork {
            agent_id: body.agent_id.as_deref(),
            through: body.message_id.clone(),
            hidden: body.hidden,
        };
        let id = fork_conversation(engine, &command.conversation_id, fork).await?;
        Ok(ForkedConversation { id })
    }
    .await;
    let (conversation, error) = split(result);
    ConversationForkResponse {
        request_id: command.request_id,
        success: error.is_none(),
        conversation,
        error,
    }
    .into()
}

async fn compact(engine: &std::sync::Arc<Engine>, command: ConversationCompact) -> ServerFrame {
    let result: Result<Compaction, String> = async {
        let body = Params::new(command.body.as_ref(), "body");
        let mode = match command.body.as_ref().and_then(|b| b.get("compaction_settings")) {
            None | Some(Value::Null) => None,
            Some(Value::Object(settings)) => Params::new(Some(settings), "body.compaction_settings")
                .choice(
                    "mode",
                    &[
                        "all",
                        "sliding_window",
                        "self_compact_all",
                        "self_compact_sliding_window",
                    ],
                )?
                .and_then(CompactionMode::from_wire),
            Some(_) => return Err("Invalid body.compaction_settings: expected an object".into()),
        };
        let (scope, _) = scope_of(engine, &command.conversation_id, body.id("agent_id")?).await?;
        let conversation = engine.conversation(&scope).await.map_err(|e| e.to_string())?;
        conversation
            .compact(engine, mode.unwrap_or(CompactionMode::SlidingWindow))
            .await
    }
    .await;
    let (compaction, error) = split(result);
    ConversationCompactResponse {
        request_id: command.request_id,
        success: error.is_none(),
        compaction,
        error,
    }
    .into()
}

async fn recompile(engine: &Engine, command: ConversationRecompile) -> ServerFrame {
    let result = async {
        let body = Params::new(command.body.as_ref(), "body");
        body.boolean("dry_run")?;
        let (scope, _) = scope_of(engine, &command.conversation_id, body.id("agent_id")?).await?;
        Ok(Agent::resolve(engine, &scope).await?.system)
    }
    .await;
    let (result, error) = split(result);
    ConversationRecompileResponse {
        request_id: command.request_id,
        success: error.is_none(),
        result,
        error,
    }
    .into()
}
