//! The model commands (docs/protocol.md §4.3): `list_models` (the scripted model and what each
//! provider offers), `update_model` (the agent's model for its default conversation, else the
//! conversation's own) and `update_toolset`.

use std::collections::BTreeMap;
use std::sync::Arc;

use letta_app_server_protocol::{
    JsonObject, ListModels, ListModelsResponse, ListModelsResponseModelEntry, ModelAppliedTo, ReasoningEffort,
    UpdateModel, UpdateModelPayload, UpdateModelResponse, UpdateToolset, UpdateToolsetResponse,
};
use serde_json::{Value, json};

use super::Caller;
use crate::engine::Engine;
use crate::engine::conversation::Conversation;
use crate::provider::kinds::{Kind, SPECS};
use crate::provider::{Offered, SCRIPTED_HANDLE, SCRIPTED_ID};

/// The scripted model's label.
const SCRIPTED_LABEL: &str = "Scripted (offline)";
/// Real Letta's answer when neither the id nor the handle names a model.
const MODEL_NOT_FOUND: &str = "Model not found. Provide a valid model_id from list_models or a model_handle.";

/// `list_models`: the scripted model, then the models each provider offers (docs/protocol.md
/// §4.3: which providers are asked, the timeout and the cache).
pub(super) async fn list_models(engine: &Engine, command: ListModels) -> ListModelsResponse {
    let mut entries = vec![ListModelsResponseModelEntry {
        id: SCRIPTED_ID.into(),
        handle: SCRIPTED_HANDLE.into(),
        label: SCRIPTED_LABEL.into(),
        description: "Built-in deterministic model: answers offline, follows [[directives]] in the message".into(),
        is_default: Some(true),
        is_featured: Some(true),
        free: Some(true),
        ..Default::default()
    }];
    let available = engine
        .providers
        .offered(command.force == Some(true))
        .await
        .ok()
        .map(|offered| {
            let mut handles = vec![SCRIPTED_HANDLE.to_owned()];
            for Offered { kind, models } in offered {
                for model in models {
                    let handle = format!("{}/{model}", kind.spec().prefix);
                    handles.push(handle.clone());
                    entries.push(ListModelsResponseModelEntry {
                        id: handle.clone(),
                        handle,
                        label: model,
                        description: String::new(),
                        ..Default::default()
                    });
                }
            }
            handles
        });
    // Every name a provider may be stored under, to the handle prefix of its models.
    let aliases: BTreeMap<String, String> = SPECS
        .iter()
        .flat_map(|spec| {
            spec.provider_names
                .iter()
                .map(|name| ((*name).to_owned(), spec.prefix.to_owned()))
        })
        .collect();
    ListModelsResponse {
        request_id: command.request_id,
        success: true,
        entries,
        available_handles: Some(available),
        byok_provider_aliases: Some(aliases),
        error: None,
    }
}

/// The model an `update_model` selects.
struct Selected {
    id: String,
    handle: String,
    label: String,
}

/// What `payload` selects, as real Letta reads it: the scripted model's catalog id, a handle
/// given as `model_id` (every other catalog id is a handle), else `model_handle`. The handle must
/// name a model of a provider this server drives (which need not be running yet).
fn select(engine: &Engine, payload: &UpdateModelPayload) -> Result<Selected, String> {
    let given = |value: &Option<String>| value.clone().filter(|v| !v.is_empty());
    let (id, handle) = match (given(&payload.model_id), given(&payload.model_handle)) {
        (Some(id), _) if id == SCRIPTED_ID => {
            return Ok(Selected {
                id,
                handle: SCRIPTED_HANDLE.into(),
                label: SCRIPTED_LABEL.into(),
            });
        }
        (Some(id), handle) if id.contains('/') => (id.clone(), handle.unwrap_or(id)),
        (_, Some(handle)) => (handle.clone(), handle),
        (_, None) => return Err(MODEL_NOT_FOUND.into()),
    };
    let Some((prefix, model)) = handle.split_once('/').filter(|(_, model)| !model.is_empty()) else {
        return Err(format!("Model handle `{handle}` names no model; use provider/model"));
    };
    let label = if prefix == "scripted" { SCRIPTED_LABEL } else { model }.to_owned();
    engine.providers.resolve(Some(&handle))?;
    Ok(Selected { id, handle, label })
}

/// The `model_settings` stored with a model, as real Letta's local backend writes them: the
/// provider type, parallel tool calls, and the reasoning effort when one was given for an
/// OpenAI-compatible provider (the scripted model has none).
fn model_settings(handle: &str, effort: Option<Option<ReasoningEffort>>) -> JsonObject {
    let prefix = handle.split_once('/').map_or(handle, |(prefix, _)| prefix);
    let kind = Kind::from_prefix(prefix);
    let provider_type = kind.map_or("scripted", |kind| kind.spec().provider_type);
    let mut settings = JsonObject::from_iter([
        ("provider_type".to_owned(), json!(provider_type)),
        ("parallel_tool_calls".to_owned(), json!(true)),
    ]);
    if let (Some(_), Some(effort)) = (kind, effort) {
        settings.insert(
            "reasoning".into(),
            effort.map_or(Value::Null, |effort| json!({"reasoning_effort": effort})),
        );
        settings.insert("reasoning_effort".into(), json!(effort));
    }
    settings
}

/// Letta Code's label of a reasoning effort, for the status notice.
fn effort_label(effort: ReasoningEffort) -> &'static str {
    match effort {
        ReasoningEffort::None => "No Reasoning",
        ReasoningEffort::Minimal => "minimal",
        ReasoningEffort::Low => "Low",
        ReasoningEffort::Medium => "Medium",
        ReasoningEffort::High => "High",
        ReasoningEffort::Xhigh => "Extra High",
        ReasoningEffort::Max => "Max",
    }
}

/// `update_model`: stores the model on the agent (its default conversation) or on the
/// conversation (which then overrides its agent's), tells the scope, answers. The next turn
/// runs with it.
pub(super) async fn update_model(caller: &Arc<dyn Caller>, command: UpdateModel) -> Option<Arc<Conversation>> {
    let engine = caller.engine();
    let UpdateModel {
        request_id,
        runtime,
        payload,
    } = command;
    let failed = |error: String, selected: Option<&Selected>| UpdateModelResponse {
        request_id: request_id.clone(),
        success: false,
        runtime: Some(runtime.clone()),
        model_id: selected.map(|s| s.id.clone()).or_else(|| payload.model_id.clone()),
        model_handle: selected
            .map(|s| s.handle.clone())
            .or_else(|| payload.model_handle.clone()),
        error: Some(error),
        ..Default::default()
    };
    let conversation = match caller.subscribe(&runtime, false).await {
        Ok(conversation) => conversation,
        Err(error) => {
            caller.send(failed(error.to_string(), None));
            return None;
        }
    };
    let selected = match select(engine, &payload) {
        Ok(selected) => selected,
        Err(error) => {
            caller.send(failed(error, None));
            return Some(conversation);
        }
    };
    let settings = model_settings(&selected.handle, payload.reasoning_effort);
    let patch = JsonObject::from_iter([
        ("model".to_owned(), json!(selected.handle)),
        ("model_settings".to_owned(), Value::Object(settings.clone())),
    ]);
    let (applied_to, stored, missing) = match (&runtime.agent_id, runtime.conversation_id.as_str()) {
        (Some(agent_id), "default") => (
            ModelAppliedTo::Agent,
            engine.store.patch_agent(agent_id.clone(), patch).await,
            format!("Agent {agent_id} not found"),
        ),
        (_, conversation_id) => (
            ModelAppliedTo::Conversation,
            engine.store.patch_conversation(conversation_id.to_owned(), patch).await,
            format!("Conversation {conversation_id} not found"),
        ),
    };
    match stored {
        Ok(Some(_)) => {}
        Ok(None) => {
            caller.send(failed(missing, Some(&selected)));
            return Some(conversation);
        }
        Err(error) => {
            caller.send(failed(error.to_string(), Some(&selected)));
            return Some(conversation);
        }
    }
    let effort = match (&settings.get("reasoning_effort"), payload.reasoning_effort) {
        (Some(_), Some(Some(effort))) => format!(" ({})", effort_label(effort)),
        _ => String::new(),
    };
    let message = format!("Model updated to {}{effort}.", selected.label);
    conversation.announce(engine, message).await;
    caller.send(UpdateModelResponse {
        request_id,
        success: true,
        runtime: Some(runtime),
        applied_to: Some(applied_to),
        model_id: Some(selected.id),
        model_handle: Some(selected.handle),
        model_settings: Some(Some(settings)),
        error: None,
    });
    Some(conversation)
}

/// `update_toolset`: stores the scope's toolset preference and loads its tools, tells the scope,
/// answers; a toolset this server does not have is refused.
pub(super) async fn update_toolset(caller: &Arc<dyn Caller>, command: UpdateToolset) -> Option<Arc<Conversation>> {
    let UpdateToolset {
        request_id,
        runtime,
        toolset_preference,
    } = command;
    let (conversation, set) = match caller.subscribe(&runtime, false).await {
        Ok(conversation) => {
            let set = conversation
                .set_toolset(caller.engine(), toolset_preference.clone())
                .await;
            (Some(conversation), set)
        }
        Err(error) => (None, Err(error.to_string())),
    };
    let response = match set {
        Ok(toolset) => UpdateToolsetResponse {
            request_id,
            success: true,
            runtime: Some(runtime),
            current_toolset: Some(toolset),
            current_toolset_preference: Some(toolset_preference),
            error: None,
        },
        Err(error) => UpdateToolsetResponse {
            request_id,
            success: false,
            runtime: Some(runtime),
            error: Some(error),
            ..Default::default()
        },
    };
    caller.send(response);
    conversation
}
