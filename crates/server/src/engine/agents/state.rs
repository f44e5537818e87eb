//! A stored agent record as a Letta `AgentState` (`@letta-ai/letta-client`): every field that
//! type requires is present, so client code written for real Letta renders it.

use letta_app_server_protocol::{AgentState, JsonObject};
use serde_json::{Value, json};

use super::{AGENT_TYPES, DEFAULT_AGENT_TYPE, DEFAULT_NAME};
use crate::provider::ProviderSettings;

/// The context window an agent shows when its model settings name none (Letta Code's).
const DEFAULT_CONTEXT_WINDOW: u64 = 128_000;

/// `record` as a Letta `AgentState`: its kept fields, with defaults for any it lacks or holds
/// in an unusable shape (a record written by an earlier version stored its create body as it
/// came). The attachments this server has no notion of are empty: `tools` (a turn's tools are
/// the server's local tools and the controller's external tools), `blocks` and `memory.blocks`
/// (an agent's memory is its memory directory), `sources`. `llm_config` is derived from
/// `model`, with the endpoint this server calls for it (`endpoints`).
pub fn agent_state(record: &JsonObject, endpoints: &ProviderSettings) -> AgentState {
    let text = |key: &str| record.get(key).and_then(Value::as_str);
    let nullable_text = |key: &str| text(key).map_or(Value::Null, Value::from);
    let object = |key: &str| record.get(key).filter(|value| value.is_object()).cloned();
    let tags: Vec<&Value> = match record.get("tags") {
        Some(Value::Array(tags)) => tags.iter().filter(|tag| tag.is_string()).collect(),
        _ => Vec::new(),
    };
    let model = text("model").filter(|model| !model.is_empty());
    let settings = match object("model_settings") {
        Some(Value::Object(settings)) => settings,
        _ => JsonObject::new(),
    };
    let agent_type = text("agent_type")
        .filter(|agent_type| AGENT_TYPES.contains(agent_type))
        .unwrap_or(DEFAULT_AGENT_TYPE);
    let rest = json!({
        "agent_type": agent_type,
        "description": nullable_text("description"),
        "system": text("system").unwrap_or_default(),
        "tags": tags,
        "tools": [],
        "blocks": [],
        "sources": [],
        "memory": {"blocks": []},
        "model": model,
        "model_settings": settings,
        "llm_config": llm_config(model, &settings, endpoints),
        "embedding": nullable_text("embedding"),
        "metadata": object("metadata"),
        "timezone": nullable_text("timezone"),
        "created_at": nullable_text("created_at"),
        "updated_at": nullable_text("updated_at"),
    });
    let mut rest = rest.as_object().cloned().unwrap_or_default();
    if let Some(hidden) = record.get("hidden").filter(|hidden| hidden.is_boolean()) {
        rest.insert("hidden".into(), hidden.clone());
    }
    if let Some(compaction) = object("compaction_settings") {
        rest.insert("compaction_settings".into(), compaction);
    }
    AgentState {
        id: text("id").unwrap_or_default().to_owned(),
        name: text("name").unwrap_or(DEFAULT_NAME).to_owned(),
        rest,
    }
}

/// The `llm_config` of an agent on `handle` (`None`: the server's default, the scripted model):
/// the model id, Letta's endpoint type for the provider and the endpoint this server calls, as
/// Letta Code's local backend derives it. Providers Letta has no endpoint type for (the
/// scripted model) show as `openai`-compatible, with the whole handle as the model.
fn llm_config(handle: Option<&str>, settings: &JsonObject, endpoints: &ProviderSettings) -> Value {
    let (model, endpoint_type, endpoint) = match handle.and_then(|handle| handle.split_once('/')) {
        Some(("openai", model)) => (model, "openai", Some(&endpoints.openai)),
        Some(("ollama", model)) => (model, "ollama", Some(&endpoints.ollama)),
        Some(("lmstudio", model)) => (model, "lmstudio", Some(&endpoints.lmstudio)),
        Some(("llama.cpp", model)) => (model, "llamacpp", Some(&endpoints.llama_cpp)),
        _ => (handle.unwrap_or("scripted"), "openai", None),
    };
    let context_window = settings
        .get("context_window_limit")
        .and_then(Value::as_u64)
        .unwrap_or(DEFAULT_CONTEXT_WINDOW);
    let mut config = json!({
        "model": model,
        "model_endpoint_type": endpoint_type,
        "context_window": context_window,
        "handle": handle,
    });
    if let Some(endpoint) = endpoint {
        config["model_endpoint"] = json!(endpoint);
    }
    for key in ["max_tokens", "parallel_tool_calls"] {
        if let Some(value) = settings.get(key) {
            config[key] = value.clone();
        }
    }
    config
}

#[cfg(test)]
mod tests {
    use letta_app_server_protocol::JsonObject;
    use serde_json::json;

    use super::agent_state;
    use crate::provider::ProviderSettings;

    fn endpoints() -> ProviderSettings {
        ProviderSettings {
            llama_cpp: "http://llama/v1".into(),
            ollama: "http://ollama/v1".into(),
            lmstudio: "http://lmstudio/v1".into(),
            openai: "https://openai/v1".into(),
            openai_api_key: None,
            retry_base_delay: std::time::Duration::ZERO,
            model_list_timeout: std::time::Duration::ZERO,
            model_list_ttl: std::time::Duration::ZERO,
        }
    }

    fn record(value: serde_json::Value) -> JsonObject {
        value.as_object().cloned().expect("an object")
    }

    /// A record an earlier version stored (the create body plus a few defaults, `tools` as
    /// names) reads as a complete `AgentState`.
    #[test]
    fn an_older_record_reads_as_a_complete_agent_state() {
        let old = record(json!({
            "name": "Old", "tools": ["web_search"], "include_base_tools": false, "id": "agent-1",
            "description": null, "system": "Be brief.", "tags": ["a", 7], "model": null,
            "created_at": "2026-01-01T00:00:00.000Z", "updated_at": "2026-01-01T00:00:00.000Z",
        }));
        let state = serde_json::to_value(agent_state(&old, &endpoints())).expect("JSON");
        assert_eq!(
            state,
            json!({
                "id": "agent-1", "name": "Old", "agent_type": "letta_v1_agent", "description": null,
                "system": "Be brief.", "tags": ["a"], "tools": [], "blocks": [], "sources": [],
                "memory": {"blocks": []}, "model": null, "model_settings": {},
                "llm_config": {"model": "scripted", "model_endpoint_type": "openai",
                    "context_window": 128000, "handle": null},
                "embedding": null, "metadata": null, "timezone": null,
                "created_at": "2026-01-01T00:00:00.000Z", "updated_at": "2026-01-01T00:00:00.000Z",
            })
        );
        let bare = serde_json::to_value(agent_state(&record(json!({"id": "agent-2"})), &endpoints())).expect("JSON");
        assert_eq!((&bare["name"], &bare["system"]), (&json!("Letta Code"), &json!("")));
    }

    /// `llm_config` names the provider's endpoint type and the endpoint this server calls.
    #[test]
    fn llm_config_follows_the_model_handle() {
        let cases = [
            ("llama.cpp/qwen", "qwen", "llamacpp", Some("http://llama/v1")),
            ("ollama/llama3", "llama3", "ollama", Some("http://ollama/v1")),
            ("lmstudio/m", "m", "lmstudio", Some("http://lmstudio/v1")),
            ("openai/gpt-4o", "gpt-4o", "openai", Some("https://openai/v1")),
            ("scripted/echo", "scripted/echo", "openai", None),
        ];
        for (handle, model, endpoint_type, endpoint) in cases {
            let agent = record(json!({"id": "a", "model": handle,
                "model_settings": {"context_window_limit": 32000, "max_tokens": 512}}));
            let state = agent_state(&agent, &endpoints());
            let config = &state.rest["llm_config"];
            assert_eq!(
                (
                    &config["model"],
                    &config["model_endpoint_type"],
                    config.get("model_endpoint"),
                    &config["context_window"],
                    &config["max_tokens"],
                    &config["handle"]
                ),
                (
                    &json!(model),
                    &json!(endpoint_type),
                    endpoint.map(|e| json!(e)).as_ref(),
                    &json!(32000),
                    &json!(512),
                    &json!(handle)
                ),
                "{handle}"
            );
        }
    }
}
