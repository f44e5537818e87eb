//! The argument helpers every tool shares: the JSON Schema of an argument object, typed readers of
//! the arguments with errors a model can act on, and [`try_arg`] to return such an error as the
//! tool's result.

use letta_app_server_protocol::JsonObject;
use serde_json::{Value, json};

/// A JSON Schema object with `properties`, `required` and `additionalProperties: false`.
pub(super) fn object_schema(properties: Value, required: &[&str]) -> JsonObject {
    let mut schema = JsonObject::new();
    schema.insert("type".into(), json!("object"));
    schema.insert("properties".into(), properties);
    schema.insert("required".into(), json!(required));
    schema.insert("additionalProperties".into(), json!(false));
    schema
}

/// A required string argument.
pub(super) fn required_str<'a>(args: &'a JsonObject, name: &str) -> Result<&'a str, String> {
    match args.get(name) {
        Some(Value::String(value)) => Ok(value),
        None | Some(Value::Null) => Err(format!("Missing required argument `{name}`.")),
        Some(other) => Err(format!("Argument `{name}` must be a string, got {}.", type_name(other))),
    }
}

/// An optional string argument.
pub(super) fn optional_str<'a>(args: &'a JsonObject, name: &str) -> Result<Option<&'a str>, String> {
    match args.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(value)) => Ok(Some(value)),
        Some(other) => Err(format!("Argument `{name}` must be a string, got {}.", type_name(other))),
    }
}

/// An optional boolean argument (`"true"`/`"false"` strings are accepted too).
pub(super) fn optional_bool(args: &JsonObject, name: &str) -> Result<Option<bool>, String> {
    match args.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(value)) => Ok(Some(*value)),
        Some(Value::String(value)) if value.eq_ignore_ascii_case("true") => Ok(Some(true)),
        Some(Value::String(value)) if value.eq_ignore_ascii_case("false") => Ok(Some(false)),
        Some(other) => Err(format!(
            "Argument `{name}` must be a boolean, got {}.",
            type_name(other)
        )),
    }
}

/// An optional non-negative integer argument (whole floats and digit strings are accepted too).
pub(super) fn optional_u64(args: &JsonObject, name: &str) -> Result<Option<u64>, String> {
    let invalid =
        |shown: &dyn std::fmt::Display| format!("Argument `{name}` must be a non-negative integer, got {shown}.");
    match args.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(number)) => {
            if let Some(value) = number.as_u64() {
                Ok(Some(value))
            } else if let Some(value) = number.as_f64().filter(|v| v.fract() == 0.0 && *v >= 0.0 && *v < 1e15) {
                Ok(Some(value as u64))
            } else {
                Err(invalid(number))
            }
        }
        Some(Value::String(text)) => text.trim().parse().map(Some).map_err(|_| invalid(&format!("{text:?}"))),
        Some(other) => Err(invalid(&type_name(other))),
    }
}

/// An optional array argument.
pub(super) fn optional_array<'a>(args: &'a JsonObject, name: &str) -> Result<Option<&'a [Value]>, String> {
    match args.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(values)) => Ok(Some(values)),
        Some(other) => Err(format!("Argument `{name}` must be an array, got {}.", type_name(other))),
    }
}

/// A required array argument.
pub(super) fn required_array<'a>(args: &'a JsonObject, name: &str) -> Result<&'a [Value], String> {
    optional_array(args, name)?.ok_or_else(|| format!("Missing required argument `{name}`."))
}

/// The JSON type name of a value, for error messages.
pub(super) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Unwraps a helper result inside a tool body.
macro_rules! try_arg {
    ($result:expr) => {
        match $result {
            Ok(value) => value,
            Err(error) => return ToolResult::error(error),
        }
    };
}
pub(super) use try_arg;
