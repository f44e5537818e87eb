//! The envelope that every runtime event carries on the wire (docs/protocol.md §2.1).

use schemars::JsonSchema;
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize};

use crate::RuntimeScope;
use crate::parse::path_tracked;

/// Per-connection delivery fields appended after the payload of every runtime event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Envelope {
    /// The scope the event belongs to.
    pub runtime: RuntimeScope,
    /// Per-connection counter: 1 for the first enveloped frame on a socket, +1 per frame written,
    /// no gaps. Restarts on reconnect; there is no resume cursor.
    pub event_seq: u64,
    /// ISO-8601 time the frame was serialised.
    pub emitted_at: String,
    /// `"<type>:<event_seq>:<uuid-v4>"`.
    pub idempotency_key: String,
}

/// A runtime event payload with its [`Envelope`]; on the wire the envelope fields follow the
/// payload fields in one flat object.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Enveloped<E> {
    /// The event's payload fields.
    #[serde(flatten)]
    pub body: E,
    /// The delivery fields.
    #[serde(flatten)]
    pub envelope: Envelope,
}

impl<'de, E: DeserializeOwned> Deserialize<'de> for Enveloped<E> {
    // The payload and the envelope are read from one buffered object separately instead of with
    // `#[serde(flatten)]`, so that errors keep the path of the offending field.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        let envelope = path_tracked(&value).map_err(D::Error::custom)?;
        let body = path_tracked(value).map_err(D::Error::custom)?;
        Ok(Self { body, envelope })
    }
}
