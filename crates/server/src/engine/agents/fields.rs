//! The fields of an `AgentCreateParams` or `AgentUpdateParams` body this server keeps, each
//! type-checked and bounded; every other field of a body is accepted and ignored, as Letta
//! Code's local backend does.

use letta_app_server_protocol::JsonObject;
use serde_json::{Value, json};

use super::{AGENT_TYPES, DEFAULT_AGENT_TYPE, DEFAULT_NAME};
use crate::limits::{MAX_LIST_ENTRIES, MAX_NAME_BYTES, MAX_SETTINGS_BYTES, MAX_SYSTEM_BYTES, MAX_TEXT_BYTES};
use crate::provider::Providers;

/// What a body is read for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// A new agent (`AgentCreateParams`).
    Create,
    /// Changes to an agent (`AgentUpdateParams`, which cannot change `agent_type`).
    Update,
}

/// How a kept field is read. A `null` leaves a field as it is, except where it clears it.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// A string of at most this many bytes.
    Text(usize),
    /// A string of at most this many bytes, or `null`, which clears it.
    NullableText(usize),
    /// An object of at most [`MAX_SETTINGS_BYTES`] as JSON, or `null`, which clears it.
    NullableObject,
    /// A boolean, or `null`, which clears it.
    NullableBool,
    /// A list of tags (duplicates dropped).
    Tags,
    /// A model handle the providers resolve; `""` means the server's default model.
    Model,
    /// One of Letta's agent types ([`AGENT_TYPES`]).
    AgentType,
}

/// The kept top-level fields.
const FIELDS: [(&str, Kind); 11] = [
    ("name", Kind::Text(MAX_NAME_BYTES)),
    ("description", Kind::NullableText(MAX_TEXT_BYTES)),
    ("system", Kind::Text(MAX_SYSTEM_BYTES)),
    ("model", Kind::Model),
    ("tags", Kind::Tags),
    ("metadata", Kind::NullableObject),
    ("hidden", Kind::NullableBool),
    ("timezone", Kind::NullableText(MAX_NAME_BYTES)),
    ("embedding", Kind::NullableText(MAX_NAME_BYTES)),
    ("compaction_settings", Kind::NullableObject),
    ("agent_type", Kind::AgentType),
];

/// The kept fields of a body, read and bounded.
#[derive(Debug, Clone, Default)]
pub struct AgentFields {
    /// Top-level fields to set (`null` clears a nullable one).
    set: JsonObject,
    /// The model settings the body names: `model_settings` and its shortcuts
    /// `context_window_limit`, `max_tokens` and `parallel_tool_calls`, as Letta Code keeps them.
    settings: JsonObject,
}

impl AgentFields {
    /// Reads the kept fields of `body`; the first field of the wrong type or size, or a model
    /// handle `providers` cannot resolve, is the error.
    pub fn read(body: &JsonObject, purpose: Purpose, providers: &Providers) -> Result<Self, String> {
        let mut fields = Self::default();
        for (key, kind) in FIELDS {
            if key == "agent_type" && purpose == Purpose::Update {
                continue;
            }
            let Some(value) = body.get(key) else { continue };
            if let Some(value) = read(key, kind, value, providers)? {
                fields.set.insert(key.to_owned(), value);
            }
        }
        match body.get("model_settings") {
            None | Some(Value::Null) => {}
            Some(Value::Object(settings)) if json_bytes(settings) <= MAX_SETTINGS_BYTES => {
                fields.settings.clone_from(settings);
            }
            Some(_) => return Err(invalid("model_settings", &object_expected())),
        }
        for key in ["context_window_limit", "max_tokens"] {
            match body.get(key) {
                None => {}
                Some(Value::Null) if key == "max_tokens" => {
                    fields.settings.insert(key.into(), Value::Null);
                }
                Some(Value::Null) => {}
                Some(value) if value.as_u64().is_some_and(|n| n > 0) => {
                    fields.settings.insert(key.into(), value.clone());
                }
                Some(_) => return Err(invalid(key, "a positive integer or null")),
            }
        }
        match body.get("parallel_tool_calls") {
            None | Some(Value::Null) => {}
            Some(Value::Bool(parallel)) => {
                fields
                    .settings
                    .insert("parallel_tool_calls".into(), Value::Bool(*parallel));
            }
            Some(_) => return Err(invalid("parallel_tool_calls", "true, false or null")),
        }
        Ok(fields)
    }

    /// The record of a new agent `id` created at `now`: these fields over the defaults.
    pub fn new_record(self, id: &str, now: &str) -> JsonObject {
        let mut record = json!({
            "id": id, "name": DEFAULT_NAME, "description": null, "system": "",
            "agent_type": DEFAULT_AGENT_TYPE, "tags": [], "model": null, "model_settings": {},
            "metadata": null, "created_at": now, "updated_at": now,
        })
        .as_object()
        .cloned()
        .unwrap_or_default();
        record.extend(self.set);
        record.insert("model_settings".into(), Value::Object(self.settings));
        record
    }

    /// Applies these fields to an agent's `record` at `now`. A new model starts from fresh
    /// model settings (those of the body only), as in Letta Code.
    pub fn apply(self, record: &mut JsonObject, now: &str) {
        let new_model = self
            .set
            .get("model")
            .is_some_and(|model| Some(model) != record.get("model"));
        let mut settings = match record.get("model_settings") {
            Some(Value::Object(settings)) if !new_model => settings.clone(),
            _ => JsonObject::new(),
        };
        let settings_changed = new_model || !self.settings.is_empty();
        settings.extend(self.settings);
        record.extend(self.set);
        if settings_changed {
            record.insert("model_settings".into(), Value::Object(settings));
        }
        record.insert("updated_at".into(), Value::String(now.to_owned()));
    }
}

/// Reads one kept field: the value to store, `None` to leave it.
fn read(key: &str, kind: Kind, value: &Value, providers: &Providers) -> Result<Option<Value>, String> {
    let fits = |text: &str, limit: usize| text.len() <= limit;
    match (kind, value) {
        (Kind::NullableText(_) | Kind::NullableObject | Kind::NullableBool, Value::Null) => Ok(Some(Value::Null)),
        (_, Value::Null) => Ok(None),
        (Kind::Text(limit) | Kind::NullableText(limit), Value::String(text)) if fits(text, limit) => {
            Ok(Some(value.clone()))
        }
        (Kind::Text(limit), _) => Err(invalid(key, &format!("a string of at most {limit} bytes"))),
        (Kind::NullableText(limit), _) => Err(invalid(key, &format!("a string of at most {limit} bytes, or null"))),
        (Kind::NullableObject, Value::Object(object)) if json_bytes(object) <= MAX_SETTINGS_BYTES => {
            Ok(Some(value.clone()))
        }
        (Kind::NullableObject, _) => Err(invalid(key, &object_expected())),
        (Kind::NullableBool, Value::Bool(_)) => Ok(Some(value.clone())),
        (Kind::NullableBool, _) => Err(invalid(key, "true, false or null")),
        (Kind::Tags, Value::Array(tags))
            if tags.len() <= MAX_LIST_ENTRIES
                && tags.iter().all(|t| t.as_str().is_some_and(|t| fits(t, MAX_NAME_BYTES))) =>
        {
            let mut distinct: Vec<Value> = Vec::with_capacity(tags.len());
            for tag in tags {
                if !distinct.contains(tag) {
                    distinct.push(tag.clone());
                }
            }
            Ok(Some(Value::Array(distinct)))
        }
        (Kind::Tags, _) => Err(invalid(
            key,
            &format!("an array of at most {MAX_LIST_ENTRIES} strings of at most {MAX_NAME_BYTES} bytes each"),
        )),
        (Kind::Model, Value::String(handle)) if handle.is_empty() => Ok(Some(Value::Null)),
        (Kind::Model, Value::String(handle)) if fits(handle, MAX_NAME_BYTES) => {
            check_model(handle, providers)?;
            Ok(Some(value.clone()))
        }
        (Kind::Model, _) => Err(invalid(
            key,
            &format!("a model handle (`provider/model`) of at most {MAX_NAME_BYTES} bytes"),
        )),
        (Kind::AgentType, Value::String(agent_type)) if AGENT_TYPES.contains(&agent_type.as_str()) => {
            Ok(Some(value.clone()))
        }
        (Kind::AgentType, _) => Err(invalid(key, &format!("one of {}", AGENT_TYPES.join(", ")))),
    }
}

/// Refuses a model handle the providers cannot resolve, or one that names no model.
fn check_model(handle: &str, providers: &Providers) -> Result<(), String> {
    let unknown = |reason: &str| format!("Unknown model \"{handle}\": {reason}");
    match providers.resolve(Some(handle)) {
        Ok((_, model)) if model.is_empty() => Err(unknown("a handle is `provider/model`, and this one names no model")),
        Ok(_) => Ok(()),
        Err(reason) => Err(unknown(&reason)),
    }
}

fn invalid(key: &str, expected: &str) -> String {
    format!("invalid agent field `{key}`: expected {expected}")
}

fn object_expected() -> String {
    format!("an object of at most {MAX_SETTINGS_BYTES} bytes as JSON, or null")
}

fn json_bytes(object: &JsonObject) -> usize {
    serde_json::to_vec(object).map_or(usize::MAX, |json| json.len())
}
