//! Parsing frames from JSON with errors that name the frame type and the offending field.

use std::fmt;

use serde::de::{DeserializeOwned, Error as _, Unexpected};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::objects_only::ObjectsOnly;
use crate::{ErrorCode, ErrorFrame};

/// What was wrong with a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FrameErrorKind {
    /// The text is not JSON.
    MalformedJson,
    /// The JSON is not an object.
    NotAnObject,
    /// The object has no string `type` field.
    MissingType,
    /// The `type` is not one this side of the protocol accepts.
    UnknownType,
    /// The `type` is known but a field is missing, of the wrong type or has a value the protocol
    /// does not allow (for example an unknown approval decision).
    InvalidFrame,
}

impl FrameErrorKind {
    /// The stable `code` of the [`ErrorFrame`] a server answers this error with.
    pub fn code(self) -> ErrorCode {
        match self {
            Self::MalformedJson => ErrorCode::MalformedJson,
            Self::NotAnObject | Self::InvalidFrame => ErrorCode::InvalidFrame,
            Self::MissingType => ErrorCode::MissingType,
            Self::UnknownType => ErrorCode::UnknownType,
        }
    }
}

/// A frame that could not be parsed: which frame, which field, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameError {
    /// What kind of problem this is.
    pub kind: FrameErrorKind,
    /// The frame's `type`, when it had a string one.
    pub frame_type: Option<String>,
    /// The frame's `request_id`, when it had a string one (so a server can answer it).
    pub request_id: Option<String>,
    /// Dotted path of the offending field inside the frame (`payload.decision.behavior`), when
    /// the problem is in a field.
    pub path: Option<String>,
    /// The underlying reason.
    pub reason: String,
}

impl FrameError {
    /// Builds the [`ErrorFrame`] a server sends back for this error, with its echoes of the bad
    /// frame [bounded](ErrorFrame::bounded).
    pub fn to_error_frame(&self) -> ErrorFrame {
        ErrorFrame {
            request_id: self.request_id.clone(),
            code: self.kind.code(),
            message: self.to_string(),
            frame_type: self.frame_type.clone(),
        }
        .bounded()
    }

    pub(crate) fn malformed(error: &serde_json::Error) -> Self {
        Self::bare(
            FrameErrorKind::MalformedJson,
            format!("frame is not valid JSON: {error}"),
        )
    }

    pub(crate) fn bare(kind: FrameErrorKind, reason: impl Into<String>) -> Self {
        Self {
            kind,
            frame_type: None,
            request_id: None,
            path: None,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.frame_type, &self.path, self.kind) {
            (Some(frame_type), _, FrameErrorKind::UnknownType) => {
                write!(f, "unknown frame type `{frame_type}`: {}", self.reason)
            }
            (Some(frame_type), Some(path), _) => {
                write!(f, "invalid `{frame_type}` frame: field `{path}`: {}", self.reason)
            }
            (Some(frame_type), None, _) => write!(f, "invalid `{frame_type}` frame: {}", self.reason),
            (None, _, _) => f.write_str(&self.reason),
        }
    }
}

impl std::error::Error for FrameError {}

/// A field-level deserialisation failure with the path of the field.
#[derive(Debug)]
pub(crate) struct PathError {
    pub(crate) path: Option<String>,
    pub(crate) reason: String,
}

impl fmt::Display for PathError {
    /// `at `path`: reason` — the form [`path_tracked`] recognises when a nested union's error
    /// surfaces through an outer deserialiser, so the two paths join into one.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            Some(path) => write!(f, "at `{path}`: {}", self.reason),
            None => f.write_str(&self.reason),
        }
    }
}

/// Deserialises `T`, recording the path of the field that failed, and reading every struct
/// inside only from a JSON object ([`ObjectsOnly`]). Tagged unions buffer their input, which
/// hides the path inside them from `serde_path_to_error`; they report it in their error text
/// ([`PathError`]'s `Display`) and it is joined to the outer path here.
pub(crate) fn path_tracked<'de, D, T>(deserializer: D) -> Result<T, PathError>
where
    D: Deserializer<'de, Error = serde_json::Error>,
    T: Deserialize<'de>,
{
    serde_path_to_error::deserialize(ObjectsOnly(deserializer)).map_err(|error| {
        let outer = Some(error.path().to_string()).filter(|path| path != ".");
        let reason = error.into_inner().to_string();
        let nested = reason.strip_prefix("at `").and_then(|rest| rest.split_once("`: "));
        match nested {
            Some((inner, reason)) => PathError {
                path: Some(match outer {
                    Some(outer) if inner.starts_with('[') => format!("{outer}{inner}"),
                    Some(outer) => format!("{outer}.{inner}"),
                    None => inner.to_owned(),
                }),
                reason: reason.to_owned(),
            },
            None => PathError { path: outer, reason },
        }
    })
}

/// `deserialize_with` functions for fields holding an internally tagged enum
/// (`#[serde(tag = …)]`). serde's derive buffers such an enum's input before reading it, out of
/// [`ObjectsOnly`]'s reach, and reads an array by position (`["allow"]` as
/// `{"behavior":"allow"}`); these read it only from an object.
pub(crate) mod tagged_object {
    use super::*;

    /// A required field.
    pub(crate) fn required<'de, D: Deserializer<'de>, T: DeserializeOwned>(deserializer: D) -> Result<T, D::Error> {
        from_object(Value::deserialize(deserializer)?).map_err(D::Error::custom)
    }

    /// An optional field (`null` or absent is `None`; mark it `#[serde(default)]`).
    pub(crate) fn optional<'de, D: Deserializer<'de>, T: DeserializeOwned>(
        deserializer: D,
    ) -> Result<Option<T>, D::Error> {
        Option::<Value>::deserialize(deserializer)?
            .map(from_object)
            .transpose()
            .map_err(D::Error::custom)
    }

    fn from_object<T: DeserializeOwned>(value: Value) -> Result<T, PathError> {
        if value.is_array() {
            return Err(PathError {
                path: None,
                reason: serde_json::Error::invalid_type(Unexpected::Seq, &"an object").to_string(),
            });
        }
        path_tracked(value)
    }
}

/// A JSON object split into its tag and the rest, ready for dispatch on the tag.
pub(crate) struct Tagged {
    pub(crate) tag: String,
    pub(crate) request_id: Option<String>,
    pub(crate) value: Value,
}

/// Reads the string tag field `tag_field` of a frame object.
pub(crate) fn split_tag(value: Value, tag_field: &str) -> Result<Tagged, FrameError> {
    let Value::Object(object) = &value else {
        return Err(FrameError::bare(
            FrameErrorKind::NotAnObject,
            format!("expected a JSON object, got {}", json_kind(&value)),
        ));
    };
    let request_id = object.get("request_id").and_then(Value::as_str).map(str::to_owned);
    match object.get(tag_field) {
        Some(Value::String(tag)) => Ok(Tagged {
            tag: tag.clone(),
            request_id,
            value,
        }),
        Some(other) => Err(FrameError {
            request_id,
            ..FrameError::bare(
                FrameErrorKind::MissingType,
                format!("field `{tag_field}` must be a string, got {}", json_kind(other)),
            )
        }),
        None => Err(FrameError {
            request_id,
            ..FrameError::bare(FrameErrorKind::MissingType, format!("missing field `{tag_field}`"))
        }),
    }
}

impl Tagged {
    /// Deserialises the whole object as the body of the frame type `tag`.
    pub(crate) fn body<T: serde::de::DeserializeOwned>(self) -> Result<T, FrameError> {
        path_tracked(self.value).map_err(|error| FrameError {
            kind: FrameErrorKind::InvalidFrame,
            frame_type: Some(self.tag),
            request_id: self.request_id,
            path: error.path,
            reason: error.reason,
        })
    }

    /// The error for a tag this side of the protocol does not accept.
    pub(crate) fn unknown(self, accepted: &[&str]) -> FrameError {
        FrameError {
            kind: FrameErrorKind::UnknownType,
            frame_type: Some(self.tag),
            request_id: self.request_id,
            path: None,
            reason: format!("expected one of {}", accepted.join(", ")),
        }
    }
}

/// Deserialises the body of a nested tagged union (a `stream_delta` payload, an `input`
/// payload) after its tag matched `T`, reporting failures as a [`PathError`].
pub(crate) fn union_body<T: serde::de::DeserializeOwned>(tagged: Tagged) -> Result<T, PathError> {
    path_tracked(tagged.value)
}

/// The error of a nested union whose tag is unknown.
pub(crate) fn unknown_union_tag(tagged: &Tagged, tag_field: &str, accepted: &[&str]) -> PathError {
    let accepted = accepted
        .iter()
        .map(|tag| format!("`{tag}`"))
        .collect::<Vec<_>>()
        .join(", ");
    PathError {
        path: Some(tag_field.to_owned()),
        reason: format!("unknown variant `{}`, expected one of {accepted}", tagged.tag),
    }
}

/// Parses JSON text into a [`Value`], mapping syntax errors to [`FrameErrorKind::MalformedJson`].
pub(crate) fn parse_json(text: &str) -> Result<Value, FrameError> {
    serde_json::from_str(text).map_err(|error| FrameError::malformed(&error))
}

/// How a JSON value's type reads in an error message.
pub(crate) fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
