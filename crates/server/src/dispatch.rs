//! What the server does with each client frame (docs/protocol.md §3), and with frames it cannot accept
//! (§1.8, plus this project's `error` frame).

use std::sync::Arc;

use letta_app_server_protocol::{
    AbortMessageResponse, AppServerInfoResponse, Backend, Capabilities, ClientFrame, Created, ECHOED_ID_BYTES,
    ErrorCode, ErrorFrame, FrameError, FrameErrorKind, Input, InputAccepted, InputPayload, JsonObject,
    PROTOCOL_VERSION, RemoveQueueItemResponse, RuntimeExternalToolsUpdateResponse, RuntimeScope, RuntimeStart,
    RuntimeStartResponse, SyncResponse,
};
use serde_json::{Value, json};

use crate::clock::{new_id, now_iso};
use crate::conversation::{Conversation, acknowledgement};
use crate::runtime::{Runtime, ScopeError, Session};

/// The `app_server_info_response` body (also served at `GET /app-server-info`).
pub fn app_server_info(request_id: String) -> AppServerInfoResponse {
    AppServerInfoResponse {
        request_id,
        success: true,
        backend: Backend::Local,
        letta_code_version: env!("CARGO_PKG_VERSION").into(),
        protocol_version: PROTOCOL_VERSION,
        capabilities: Capabilities {
            agent_management: false,
            conversation_management: false,
            memory_management: false,
            runtime_start: true,
            runtime_workspace_sandbox: Some(false),
            runtime_external_tools_update: Some(true),
            split_channels: true,
            launch_subagent: None,
            structured_outputs: None,
        },
    }
}

/// Handles one text frame from a session.
pub async fn handle_text(runtime: &Arc<Runtime>, session: &Arc<Session>, text: &str) {
    match ClientFrame::from_json(text) {
        Ok(frame) => match crate::limits::check(&frame, text.len()) {
            Ok(()) => handle(runtime, session, frame).await,
            Err(violation) => session.send(
                ErrorFrame {
                    request_id: crate::limits::request_id(&frame).map(str::to_owned),
                    code: ErrorCode::LimitExceeded,
                    message: format!("invalid `{}` frame: {violation}", frame.frame_type()),
                    frame_type: Some(frame.frame_type().to_owned()),
                }
                .bounded(),
            ),
        },
        Err(error) => reject(runtime, session, text, error).await,
    }
}

/// Answers a frame that could not be parsed: our `error` frame, plus what real Letta sends for a
/// bad `input` payload or an unknown permission mode (a non-terminal `loop_error` for the scope).
/// Any other malformed `change_device_state` payload is one real Letta drops silently.
async fn reject(runtime: &Arc<Runtime>, session: &Arc<Session>, text: &str, error: FrameError) {
    session.send(error.to_error_frame());
    if error.kind != FrameErrorKind::InvalidFrame || !error.path.as_deref().is_some_and(|p| p.starts_with("payload")) {
        return;
    }
    let Ok(raw) = serde_json::from_str::<Value>(text) else {
        return;
    };
    // Only an object is a scope (serde alone reads one from an array too).
    let Some(scope) = raw["runtime"]
        .is_object()
        .then(|| serde_json::from_value::<RuntimeScope>(raw["runtime"].clone()).ok())
        .flatten()
    else {
        return;
    };
    let Ok(conversation) = runtime.subscribed_conversation(session.id, &scope).await else {
        return;
    };
    let message = match (error.frame_type.as_deref(), error.path.as_deref()) {
        (Some("change_device_state"), Some("payload.mode")) => {
            format!("Unsupported permission mode: {}", display(&raw["payload"]["mode"]))
        }
        (Some("change_device_state"), _) => return,
        (_, Some("payload.kind")) => format!("Unsupported input payload kind: {}", display(&raw["payload"]["kind"])),
        (_, Some(path)) if path.starts_with("payload.messages") && path.ends_with(".type") => {
            if let Some(request_id) = raw["request_id"].as_str() {
                session.send(InputAccepted {
                    request_id: letta_app_server_protocol::cut(request_id.to_owned(), ECHOED_ID_BYTES),
                    runtime: scope,
                    accepted: false,
                    disposition: None,
                    error: Some("Approval payloads require approval_response".into()),
                });
            }
            "Protocol violation: approval payloads are not allowed in input.kind=create_message. \
             Use input.kind=approval_response."
                .to_owned()
        }
        _ => format!("Protocol violation: {error}"),
    };
    conversation.protocol_violation(runtime, message);
}

fn display(value: &Value) -> String {
    value.as_str().map_or_else(|| value.to_string(), str::to_owned)
}

/// Handles one parsed client frame. A command that subscribed the session to a conversation
/// then starts the conversation's waiting queue items, if it is idle.
pub async fn handle(runtime: &Arc<Runtime>, session: &Arc<Session>, frame: ClientFrame) {
    if let Some(conversation) = command(runtime, session, frame).await {
        conversation.resume_queue(runtime).await;
    }
}

/// Handles one parsed client frame; returns the conversation it addressed, if any.
async fn command(runtime: &Arc<Runtime>, session: &Arc<Session>, frame: ClientFrame) -> Option<Arc<Conversation>> {
    match frame {
        ClientFrame::AppServerInfo(info) => {
            session.send(app_server_info(info.request_id));
            None
        }
        ClientFrame::RuntimeStart(start) => {
            // A detached task, as on real Letta: later frames are not blocked behind it.
            let (runtime, session) = (runtime.clone(), session.clone());
            tokio::spawn(async move {
                if let Some(conversation) = runtime_start(&runtime, &session, start).await {
                    conversation.resume_queue(&runtime).await;
                }
            });
            None
        }
        ClientFrame::Input(input) => self::input(runtime, session, input).await,
        ClientFrame::LegacyMessage(message) => self::input(runtime, session, message.into_input()).await,
        ClientFrame::Sync(sync) => {
            let request_id = sync.request_id.clone();
            let conversation = scoped(runtime, session, &sync.runtime, ("sync", sync.request_id.as_ref())).await;
            match &conversation {
                Some(conversation) => {
                    conversation.report_interrupted(runtime).await;
                    if sync.recover_approvals.unwrap_or(true) {
                        conversation.recover_approvals(runtime, session).await;
                    }
                    conversation
                        .replay(session, sync.force_device_status.unwrap_or(false))
                        .await;
                    if let Some(request_id) = request_id {
                        session.send(SyncResponse {
                            request_id,
                            runtime: sync.runtime,
                            success: true,
                            error: None,
                        });
                    }
                }
                None => {
                    if let Some(request_id) = request_id {
                        let error = Some(unknown_runtime(&sync.runtime));
                        session.send(SyncResponse {
                            request_id,
                            runtime: sync.runtime,
                            success: false,
                            error,
                        });
                    }
                }
            }
            conversation
        }
        ClientFrame::AbortMessage(abort) => {
            let conversation = scoped(
                runtime,
                session,
                &abort.runtime,
                ("abort_message", abort.request_id.as_ref()),
            )
            .await;
            if let Some(conversation) = &conversation {
                conversation.abort(runtime, Some(session), abort.request_id).await;
            } else {
                if let Some(request_id) = abort.request_id {
                    let error = Some(unknown_runtime(&abort.runtime));
                    session.send(AbortMessageResponse {
                        request_id,
                        runtime: abort.runtime,
                        aborted: false,
                        success: false,
                        error,
                    });
                }
            }
            conversation
        }
        ClientFrame::ChangeDeviceState(change) => {
            let mut target = change.runtime.clone();
            if let Some(agent_id) = &change.payload.agent_id {
                target.agent_id.clone_from(agent_id);
            }
            if let Some(conversation_id) = &change.payload.conversation_id {
                target.conversation_id.clone_from(conversation_id);
            }
            let conversation = scoped(runtime, session, &target, ("change_device_state", None)).await;
            if let Some(conversation) = &conversation {
                conversation.change_device_state(runtime, &change).await;
            }
            conversation
        }
        ClientFrame::RemoveQueueItem(remove) => {
            let scope = &remove.runtime;
            let conversation = scoped(runtime, session, scope, ("remove_queue_item", Some(&remove.request_id))).await;
            match &conversation {
                Some(conversation) => conversation.remove_queue_item(runtime, session, &remove).await,
                None => session.send(RemoveQueueItemResponse {
                    request_id: remove.request_id,
                    success: false,
                    item_id: remove.item_id,
                }),
            }
            conversation
        }
        ClientFrame::RuntimeExternalToolsUpdate(update) => {
            // Registers without subscribing (docs/protocol.md §3.11).
            let registered = update.updates.iter().try_for_each(|entry| {
                let scopes: Vec<RuntimeScope> = entry
                    .runtimes
                    .iter()
                    .map(|scope| RuntimeScope::new(scope.agent_id.clone(), scope.conversation_id.clone()))
                    .collect();
                runtime.external.replace(session.id, &scopes, &entry.external_tools)
            });
            session.send(RuntimeExternalToolsUpdateResponse {
                request_id: update.request_id,
                success: registered.is_ok(),
                error: registered.err(),
            });
            None
        }
        // Unknown or late answers are ignored, as on real Letta.
        ClientFrame::ExternalToolCallResponse(response) => {
            runtime.external.answer(response);
            None
        }
        ClientFrame::Pong(_) => None,
    }
}

/// Resolves a command's scope and subscribes the session to it; answers an `error` frame (with
/// the command's type and `request_id`) when the scope does not exist.
async fn scoped(
    runtime: &Arc<Runtime>,
    session: &Arc<Session>,
    scope: &RuntimeScope,
    command: (&str, Option<&String>),
) -> Option<Arc<Conversation>> {
    match runtime.subscribed_conversation(session.id, scope).await {
        Ok(conversation) => Some(conversation),
        Err(error) => {
            let code = if matches!(error, ScopeError::Store(_)) {
                ErrorCode::Internal
            } else {
                ErrorCode::UnknownRuntime
            };
            session.send(ErrorFrame {
                request_id: command.1.cloned(),
                code,
                message: format!("{error}; send runtime_start first"),
                frame_type: Some(command.0.to_owned()),
            });
            None
        }
    }
}

fn unknown_runtime(scope: &RuntimeScope) -> String {
    format!("Unknown runtime {}/{}", scope.agent_id, scope.conversation_id)
}

async fn input(runtime: &Arc<Runtime>, session: &Arc<Session>, input: Input) -> Option<Arc<Conversation>> {
    let Some(conversation) = scoped(runtime, session, &input.runtime, ("input", input.request_id.as_ref())).await
    else {
        if let Some(answer) = acknowledgement(&input, None, Some(unknown_runtime(&input.runtime))) {
            session.send(answer);
        }
        return None;
    };
    match &input.payload {
        InputPayload::CreateMessage(payload) => conversation.submit(runtime, session, &input, payload).await,
        InputPayload::ApprovalResponse(answer) => conversation.answer_approval(runtime, session, &input, answer).await,
    }
    Some(conversation)
}

/// `runtime_start`: resolve or create the agent and conversation, apply settings, subscribe,
/// answer and replay (docs/protocol.md §3.2, §5 (a)); returns the conversation it started.
async fn runtime_start(
    runtime: &Arc<Runtime>,
    session: &Arc<Session>,
    start: RuntimeStart,
) -> Option<Arc<Conversation>> {
    let request_id = start.request_id.clone();
    let failed = |error: String| RuntimeStartResponse {
        request_id: request_id.clone(),
        success: false,
        runtime: None,
        agent: None,
        conversation: None,
        created: Created::default(),
        error: Some(error),
    };
    let resolved = match resolve(runtime, &start).await {
        Ok(resolved) => resolved,
        Err(error) => {
            session.send(failed(error));
            return None;
        }
    };
    let (scope, agent, conversation_state, created) = resolved;
    let conversation = match runtime.subscribed_conversation(session.id, &scope).await {
        Ok(conversation) => conversation,
        Err(error) => {
            session.send(failed(error.to_string()));
            return None;
        }
    };
    conversation
        .apply_start_settings(runtime, start.mode, start.cwd.clone())
        .await;
    let tools = start.external_tools.as_deref().unwrap_or_default();
    if let Err(error) = runtime
        .external
        .replace(session.id, std::slice::from_ref(&scope), tools)
    {
        session.send(failed(error));
        return None;
    }
    let response = RuntimeStartResponse {
        request_id: request_id.clone(),
        success: true,
        runtime: Some(scope),
        agent: Some(agent),
        conversation: Some(conversation_state),
        created,
        error: None,
    };
    let wait = start.wait_for_replay.unwrap_or(false);
    conversation.report_interrupted(runtime).await;
    if start.recover_approvals.unwrap_or(true) {
        conversation.recover_approvals(runtime, session).await;
    }
    if !wait {
        session.send(response.clone());
    }
    conversation
        .replay(session, start.force_device_status.unwrap_or(true))
        .await;
    if wait {
        session.send(response);
    }
    Some(conversation)
}

type Resolved = (RuntimeScope, JsonObject, JsonObject, Created);

async fn resolve(runtime: &Arc<Runtime>, start: &RuntimeStart) -> Result<Resolved, String> {
    let store = &runtime.store;
    let mut created = Created::default();
    let (agent_id, agent) = match (&start.agent_id, &start.create_agent) {
        (Some(agent_id), None) => {
            let agent = store.agent(agent_id.clone()).await.map_err(|e| e.to_string())?;
            (
                agent_id.clone(),
                agent.ok_or_else(|| format!("Agent {agent_id} not found"))?,
            )
        }
        (None, Some(create)) => {
            let id = new_id("agent");
            let now = now_iso();
            let mut agent = create.body.clone();
            let defaults = json!({
                "id": id, "name": "agent", "description": null, "system": "", "tools": [], "tags": [],
                "model": null, "created_at": now, "updated_at": now,
            });
            for (key, value) in defaults.as_object().into_iter().flatten() {
                agent.entry(key.clone()).or_insert_with(|| value.clone());
            }
            agent.insert("id".into(), Value::String(id.clone()));
            store
                .insert_agent(id.clone(), &agent, now)
                .await
                .map_err(|e| e.to_string())?;
            created.agent = true;
            (id, agent)
        }
        _ => return Err("runtime_start requires exactly one of agent_id or create_agent".into()),
    };
    let conversation = match (&start.conversation_id, &start.create_conversation) {
        (Some(_), Some(_)) => {
            return Err("runtime_start accepts conversation_id or create_conversation, not both".into());
        }
        (Some(id), None) if id == "default" => default_conversation(&agent_id),
        (Some(id), None) => {
            let conversation = store.conversation(id.clone()).await.map_err(|e| e.to_string())?;
            let conversation = conversation.ok_or_else(|| format!("Conversation {id} not found"))?;
            let owner = conversation.get("agent_id").and_then(Value::as_str).unwrap_or_default();
            if owner != agent_id {
                return Err(format!("Conversation {id} belongs to {owner}, not {agent_id}"));
            }
            conversation
        }
        (None, create) => {
            let id = new_id("conv");
            let now = now_iso();
            let mut conversation = create.as_ref().and_then(|c| c.body.clone()).unwrap_or_default();
            let defaults = json!({
                "id": id, "agent_id": agent_id, "archived": false, "archived_at": null, "created_at": now,
                "updated_at": now, "last_message_at": null, "summary": null, "in_context_message_ids": [],
            });
            for (key, value) in defaults.as_object().into_iter().flatten() {
                conversation.entry(key.clone()).or_insert_with(|| value.clone());
            }
            conversation.insert("id".into(), Value::String(id.clone()));
            conversation.insert("agent_id".into(), Value::String(agent_id.clone()));
            store
                .insert_conversation(id, agent_id.clone(), &conversation, now)
                .await
                .map_err(|e| e.to_string())?;
            created.conversation = true;
            conversation
        }
    };
    let conversation_id = conversation
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or("default")
        .to_owned();
    Ok((
        RuntimeScope::new(agent_id, conversation_id),
        agent,
        conversation,
        created,
    ))
}

/// The synthesized default conversation of an agent (never stored, docs/protocol.md §3.2).
fn default_conversation(agent_id: &str) -> JsonObject {
    let now = now_iso();
    let conversation = json!({
        "id": "default", "agent_id": agent_id, "archived": false, "archived_at": null, "created_at": now,
        "updated_at": now, "last_message_at": null, "summary": null, "in_context_message_ids": [],
    });
    conversation.as_object().cloned().unwrap_or_default()
}
