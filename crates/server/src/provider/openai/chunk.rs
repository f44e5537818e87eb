//! The streamed chunks' wire format, borrowing from the event data where possible (a whole
//! non-streamed completion reads the same way, its `message` standing for the `delta`).

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::provider::Usage;

#[derive(Deserialize)]
pub(super) struct WireChunk<'a> {
    #[serde(default, borrow)]
    pub(super) choices: Option<Vec<WireChoice<'a>>>,
    #[serde(default)]
    pub(super) usage: Option<WireUsage>,
    #[serde(default)]
    pub(super) error: Option<serde_json::Value>,
}

#[derive(Deserialize)]
pub(super) struct WireChoice<'a> {
    #[serde(default)]
    pub(super) index: u64,
    /// `message` in a non-streamed completion.
    #[serde(default, borrow, alias = "message")]
    pub(super) delta: Option<WireDelta<'a>>,
    #[serde(default, borrow)]
    pub(super) finish_reason: LenientStr<'a>,
}

#[derive(Deserialize)]
pub(super) struct WireDelta<'a> {
    #[serde(default, borrow)]
    pub(super) content: LenientStr<'a>,
    #[serde(default, borrow)]
    pub(super) reasoning_content: LenientStr<'a>,
    #[serde(default, borrow)]
    pub(super) reasoning: LenientStr<'a>,
    #[serde(default, borrow)]
    pub(super) tool_calls: Option<Vec<WireToolCallDelta<'a>>>,
}

#[derive(Deserialize)]
pub(super) struct WireToolCallDelta<'a> {
    #[serde(default)]
    pub(super) index: Option<u64>,
    #[serde(default, borrow)]
    pub(super) id: LenientStr<'a>,
    #[serde(default, borrow)]
    pub(super) function: Option<WireFunctionDelta<'a>>,
}

#[derive(Deserialize)]
pub(super) struct WireFunctionDelta<'a> {
    #[serde(default, borrow)]
    pub(super) name: LenientStr<'a>,
    #[serde(default, borrow)]
    pub(super) arguments: LenientJson<'a>,
}

#[derive(Deserialize)]
pub(super) struct WireUsage {
    #[serde(default)]
    pub(super) prompt_tokens: Option<u64>,
    #[serde(default)]
    pub(super) completion_tokens: Option<u64>,
    #[serde(default)]
    pub(super) prompt_tokens_details: Option<WirePromptDetails>,
    #[serde(default)]
    pub(super) completion_tokens_details: Option<WireCompletionDetails>,
}

#[derive(Deserialize)]
pub(super) struct WirePromptDetails {
    #[serde(default)]
    pub(super) cached_tokens: Option<u64>,
}

#[derive(Deserialize)]
pub(super) struct WireCompletionDetails {
    #[serde(default)]
    pub(super) reasoning_tokens: Option<u64>,
}

impl From<WireUsage> for Usage {
    fn from(usage: WireUsage) -> Self {
        Self {
            prompt_tokens: usage.prompt_tokens.unwrap_or(0),
            completion_tokens: usage.completion_tokens.unwrap_or(0),
            cached_input_tokens: usage
                .prompt_tokens_details
                .and_then(|details| details.cached_tokens)
                .unwrap_or(0),
            reasoning_tokens: usage
                .completion_tokens_details
                .and_then(|details| details.reasoning_tokens)
                .unwrap_or(0),
        }
    }
}

/// A string field that tolerates other JSON: `null`, booleans and numbers are `None`; objects and
/// arrays are `None` too, or written back as JSON text when `KEEP_JSON` (tool-call arguments that
/// some servers send as an object).
#[derive(Default)]
pub(super) struct LenientStr<'a, const KEEP_JSON: bool = false>(pub(super) Option<Cow<'a, str>>);

/// Tool-call arguments: a string, or JSON kept as text.
pub(super) type LenientJson<'a> = LenientStr<'a, true>;

impl<'de: 'a, 'a, const KEEP_JSON: bool> Deserialize<'de> for LenientStr<'a, KEEP_JSON> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(LenientStrVisitor::<KEEP_JSON>)
    }
}

struct LenientStrVisitor<const KEEP_JSON: bool>;

impl<'de, const KEEP_JSON: bool> Visitor<'de> for LenientStrVisitor<KEEP_JSON> {
    type Value = LenientStr<'de, KEEP_JSON>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: de::Error>(self, value: &'de str) -> Result<Self::Value, E> {
        Ok(LenientStr(Some(Cow::Borrowed(value))))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
        Ok(LenientStr(Some(Cow::Owned(value.to_owned()))))
    }

    fn visit_string<E: de::Error>(self, value: String) -> Result<Self::Value, E> {
        Ok(LenientStr(Some(Cow::Owned(value))))
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(LenientStr(None))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(LenientStr(None))
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(LenientStr(None))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(LenientStr(None))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(LenientStr(None))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(LenientStr(None))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        if !KEEP_JSON {
            IgnoredAny::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
            return Ok(LenientStr(None));
        }
        let value = serde_json::Value::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
        Ok(LenientStr(Some(Cow::Owned(value.to_string()))))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        if !KEEP_JSON {
            IgnoredAny::deserialize(de::value::MapAccessDeserializer::new(map))?;
            return Ok(LenientStr(None));
        }
        let value = serde_json::Value::deserialize(de::value::MapAccessDeserializer::new(map))?;
        Ok(LenientStr(Some(Cow::Owned(value.to_string()))))
    }
}
