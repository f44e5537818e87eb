//! The runtime commands: `runtime_start` (docs/protocol.md §3.2, §5 (a)), `sync` (§3.10) and
//! `change_device_state` (§3.13).

use std::sync::Arc;

use letta_app_server_protocol::{
    ChangeDeviceState, Created, JsonObject, Resume, RuntimeScope, RuntimeStart, RuntimeStartResponse, SyncResponse,
};
use serde_json::Value;

use super::{Caller, scoped, subscribed, unknown_runtime};
use crate::engine::Engine;
use crate::engine::catalog::{default_conversation, new_conversation};
use crate::engine::conversation::Conversation;

/// `sync`: report turns cut short, ask again the approvals a previous process left, replay the
/// scope's state, answer (docs/protocol.md §3.10). With `resume_after`, the answer comes first,
/// then the events after the cursor or, when it cannot resume, the replay (§2.2).
pub(super) async fn sync(caller: &Arc<dyn Caller>, sync: letta_app_server_protocol::Sync) -> Option<Arc<Conversation>> {
    let engine = caller.engine();
    let request_id = sync.request_id.clone();
    let resuming = sync.resume_after.is_some();
    let command = ("sync", sync.request_id.as_ref());
    let conversation = subscribed(caller, &sync.runtime, command, resuming).await;
    let answer = |success: bool, error: Option<String>, resume: Option<Resume>| {
        if let Some(request_id) = request_id.clone() {
            caller.send(SyncResponse {
                request_id,
                runtime: sync.runtime.clone(),
                success,
                error,
                resume,
            });
        }
    };
    let Some(conversation) = &conversation else {
        answer(false, Some(unknown_runtime(&sync.runtime)), None);
        return None;
    };
    conversation.report_interrupted(engine).await;
    if sync.recover_approvals.unwrap_or(true) {
        conversation.recover_approvals(engine, caller.as_peer()).await;
    }
    let replay = |conversation: Arc<Conversation>| async move {
        let force_device = sync.force_device_status.unwrap_or(false);
        conversation.replay(caller.as_peer(), force_device).await;
    };
    match sync.resume_after {
        Some(cursor) => {
            let resume = caller.answer_resuming(
                &sync.runtime,
                cursor,
                Box::new(|resume| answer(true, None, Some(resume))),
            );
            if !resume.resumed {
                replay(conversation.clone()).await;
            }
        }
        None => {
            replay(conversation.clone()).await;
            answer(true, None, None);
        }
    }
    Some(conversation.clone())
}

/// `change_device_state`: the payload may name another scope than the envelope (docs/protocol.md §3.13).
pub(super) async fn change_device_state(
    caller: &Arc<dyn Caller>,
    change: ChangeDeviceState,
) -> Option<Arc<Conversation>> {
    let mut target = change.runtime.clone();
    if let Some(agent_id) = &change.payload.agent_id {
        target.agent_id = Some(agent_id.clone());
    }
    if let Some(conversation_id) = &change.payload.conversation_id {
        target.conversation_id.clone_from(conversation_id);
    }
    let conversation = scoped(caller, &target, ("change_device_state", None)).await;
    if let Some(conversation) = &conversation {
        conversation.change_device_state(caller.engine(), &change).await;
    }
    conversation
}

/// `runtime_start`: resolve or create the agent and conversation, apply settings, subscribe,
/// answer and replay (docs/protocol.md §3.2, §5 (a)); returns the conversation it started.
/// With `resume_after`, the answer comes first (whatever `wait_for_replay` says), then the
/// events after the cursor or, when it cannot resume, the replay (§2.2).
pub(super) async fn runtime_start(caller: &Arc<dyn Caller>, start: RuntimeStart) -> Option<Arc<Conversation>> {
    let request_id = start.request_id.clone();
    let failed = |error: String| RuntimeStartResponse {
        request_id: request_id.clone(),
        success: false,
        runtime: None,
        agent: None,
        conversation: None,
        created: Created::default(),
        error: Some(error),
        resume: None,
    };
    let resolved = match resolve(caller.engine(), &start).await {
        Ok(resolved) => resolved,
        Err(error) => {
            caller.send(failed(error));
            return None;
        }
    };
    let (scope, agent, conversation_state, created) = resolved;
    let conversation = match caller.subscribe(&scope, start.resume_after.is_some()).await {
        Ok(conversation) => conversation,
        Err(error) => {
            caller.send(failed(error.to_string()));
            return None;
        }
    };
    conversation
        .apply_start_settings(caller.engine(), start.mode, start.cwd.clone())
        .await;
    let tools = start.external_tools.as_deref().unwrap_or_default();
    if let Err(error) = caller
        .engine()
        .external
        .replace(caller.id(), std::slice::from_ref(&scope), tools)
    {
        match start.resume_after {
            // Subscribed all the same: it gets the scope's events from now on.
            Some(_) => {
                caller.answer_resuming(&scope, 0, Box::new(|_| caller.send(failed(error))));
            }
            None => caller.send(failed(error)),
        }
        return None;
    }
    let response = RuntimeStartResponse {
        request_id: request_id.clone(),
        success: true,
        runtime: Some(scope.clone()),
        agent,
        conversation: Some(conversation_state),
        created,
        error: None,
        resume: None,
    };
    let force_device = start.force_device_status.unwrap_or(true);
    conversation.report_interrupted(caller.engine()).await;
    if start.recover_approvals.unwrap_or(true) {
        conversation.recover_approvals(caller.engine(), caller.as_peer()).await;
    }
    if let Some(cursor) = start.resume_after {
        let answer = |resume| {
            caller.send(RuntimeStartResponse {
                resume: Some(resume),
                ..response
            });
        };
        if !caller.answer_resuming(&scope, cursor, Box::new(answer)).resumed {
            conversation.replay(caller.as_peer(), force_device).await;
        }
        return Some(conversation);
    }
    let wait = start.wait_for_replay.unwrap_or(false);
    if !wait {
        caller.send(response.clone());
    }
    conversation.replay(caller.as_peer(), force_device).await;
    if wait {
        caller.send(response);
    }
    Some(conversation)
}

type Resolved = (RuntimeScope, Option<JsonObject>, JsonObject, Created);

/// Letta 0.34's answer to an agent-free `create_conversation` without a model or system prompt.
const AGENT_FREE_NEEDS: &str = "Agent-free conversation creation requires body.model and body.system";

async fn resolve(engine: &Engine, start: &RuntimeStart) -> Result<Resolved, String> {
    let mut created = Created::default();
    let (agent_id, agent) = match (&start.agent_id, &start.create_agent) {
        (Some(agent_id), None) => (agent_id.clone(), engine.agent(agent_id).await?),
        (None, Some(create)) => {
            let record = engine.create_agent(&create.body).await?;
            created.agent = true;
            let agent = engine.agent_state(&record);
            (agent.id.clone(), agent)
        }
        (None, None) if start.create_conversation.is_some() || start.conversation_id.is_some() => {
            return agent_free(engine, start).await;
        }
        _ => return Err("runtime_start requires exactly one of agent_id or create_agent".into()),
    };
    let conversation = match (&start.conversation_id, &start.create_conversation) {
        (Some(_), Some(_)) => return Err(BOTH_CONVERSATIONS.into()),
        (Some(id), None) if id == "default" => default_conversation(&agent_id),
        (Some(id), None) => stored_conversation(engine, RuntimeScope::new(agent_id.clone(), id)).await?,
        (None, create) => {
            let body = create.as_ref().and_then(|c| c.body.clone()).unwrap_or_default();
            let conversation = new_conversation(engine, "conv", Some(&agent_id), body).await?;
            created.conversation = true;
            conversation
        }
    };
    let conversation_id = conversation
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or("default")
        .to_owned();
    let agent = match serde_json::to_value(agent) {
        Ok(Value::Object(agent)) => agent,
        _ => JsonObject::new(),
    };
    Ok((
        RuntimeScope::new(agent_id, conversation_id),
        Some(agent),
        conversation,
        created,
    ))
}

const BOTH_CONVERSATIONS: &str = "runtime_start accepts conversation_id or create_conversation, not both";

/// `runtime_start` without an agent (Letta 0.34, docs/protocol.md §8.2): creates an agent-free
/// conversation from `create_conversation.body` (which must name `model` and `system`), or joins
/// the agent-free conversation `conversation_id`.
async fn agent_free(engine: &Engine, start: &RuntimeStart) -> Result<Resolved, String> {
    let mut created = Created::default();
    let conversation = match (&start.conversation_id, &start.create_conversation) {
        (Some(_), Some(_)) => return Err(BOTH_CONVERSATIONS.into()),
        (Some(id), None) => stored_conversation(engine, RuntimeScope::agent_free(id)).await?,
        (None, create) => {
            let body = create.as_ref().and_then(|c| c.body.clone()).unwrap_or_default();
            let given = |key: &str| {
                body.get(key)
                    .and_then(Value::as_str)
                    .is_some_and(|text| !text.is_empty())
            };
            if !given("model") || !given("system") {
                return Err(AGENT_FREE_NEEDS.into());
            }
            let conversation = new_conversation(engine, "local-conv", None, body).await?;
            created.conversation = true;
            conversation
        }
    };
    let conversation_id = conversation.get("id").and_then(Value::as_str).unwrap_or_default();
    Ok((RuntimeScope::agent_free(conversation_id), None, conversation, created))
}

/// The stored conversation of `scope`, which must belong to its agent (`null`: to none).
async fn stored_conversation(engine: &Engine, scope: RuntimeScope) -> Result<JsonObject, String> {
    engine.stored_conversation(&scope).await.map_err(|e| e.to_string())
}
