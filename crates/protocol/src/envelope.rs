//! The envelope that every runtime event carries on the wire (docs/protocol.md §2.1).

use std::fmt::Display;

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
    /// no gaps. Restarts on reconnect (the resume cursor is `conversation_seq`).
    pub event_seq: u64,
    /// ISO-8601 time the frame was serialised.
    pub emitted_at: String,
    /// `"<type>:<event_seq>:<uuid-v4>"`.
    pub idempotency_key: String,
    /// This server's extension, only on a scope subscribed with `resume_after`: the event's
    /// position in its conversation, which increases and is never reused, across reconnects
    /// (docs/protocol.md §2.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_seq: Option<u64>,
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

/// A frame sent both ways by the server: as a runtime event with its [`Envelope`], and
/// directly to one socket without one (`file_ops` after that socket's `edit_file`,
/// `crons_updated` after its cron command).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct MaybeEnveloped<E> {
    /// The frame's payload fields.
    #[serde(flatten)]
    pub body: E,
    /// The delivery fields, when it was sent as a runtime event.
    #[serde(flatten)]
    pub envelope: Option<Envelope>,
}

impl<'de, E: DeserializeOwned> Deserialize<'de> for MaybeEnveloped<E> {
    // Read as `Enveloped` is; a flattened `Option` would besides drop a malformed envelope
    // instead of rejecting it.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        let envelope = Envelope::read_optional(&value).map_err(D::Error::custom)?;
        let body = path_tracked(value).map_err(D::Error::custom)?;
        Ok(Self { body, envelope })
    }
}

/// How the frames of a server's runtime events are built and read, whether they always carry
/// an envelope ([`Enveloped`]) or only sometimes ([`MaybeEnveloped`]).
pub trait EventFrame<E> {
    /// The frame of `body` as a runtime event.
    fn enveloped(body: E, envelope: Envelope) -> Self;
    /// The envelope, when the frame has one.
    fn envelope(&self) -> Option<&Envelope>;
}

impl<E> EventFrame<E> for Enveloped<E> {
    fn enveloped(body: E, envelope: Envelope) -> Self {
        Self { body, envelope }
    }

    fn envelope(&self) -> Option<&Envelope> {
        Some(&self.envelope)
    }
}

impl<E> EventFrame<E> for MaybeEnveloped<E> {
    fn enveloped(body: E, envelope: Envelope) -> Self {
        Self {
            body,
            envelope: Some(envelope),
        }
    }

    fn envelope(&self) -> Option<&Envelope> {
        self.envelope.as_ref()
    }
}

impl Envelope {
    /// The field names of an envelope.
    const FIELDS: [&'static str; 5] = [
        "runtime",
        "event_seq",
        "emitted_at",
        "idempotency_key",
        "conversation_seq",
    ];

    /// Reads the envelope of a frame that carries one only sometimes ([`MaybeEnveloped`]): `None`
    /// when the frame has none of its fields, else the whole envelope, which must then be valid.
    fn read_optional(frame: &serde_json::Value) -> Result<Option<Self>, crate::PathError> {
        if Self::FIELDS.iter().any(|field| frame.get(field).is_some()) {
            path_tracked(frame).map(Some)
        } else {
            Ok(None)
        }
    }

    /// The `idempotency_key` of the frame of type `frame_type` numbered `event_seq`:
    /// `"<type>:<event_seq>:<nonce>"`, with a fresh UUID v4 as `nonce`.
    pub fn idempotency_key(frame_type: &str, event_seq: u64, nonce: impl Display) -> String {
        Key(frame_type, event_seq, nonce).to_string()
    }
}

/// Writes an `idempotency_key` without allocating: `(type, event_seq, nonce)`.
struct Key<'a, N>(&'a str, u64, N);

impl<N: Display> Display for Key<'_, N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.0, self.1, self.2)
    }
}

/// Bytes reserved for an event's serialisation: a stream delta with its scope fits.
const PREFIX_CAPACITY: usize = 512;

/// Bytes the per-connection envelope fields add at most (`event_seq`, `emitted_at`,
/// `idempotency_key` with a UUID, `conversation_seq`).
const ENVELOPE_CAPACITY: usize = 180;

/// A runtime event serialised once for every connection it goes to: the payload and its
/// `runtime` scope, to which [`render`](Self::render) appends the per-connection fields of the
/// [`Envelope`]. Writes the same JSON as serialising
/// [`RuntimeEvent::with_envelope`](crate::RuntimeEvent::with_envelope), without serialising the
/// payload once per connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SerializedEvent {
    frame_type: &'static str,
    /// `{"type":…,<payload fields>,"runtime":{…}` — everything but the per-connection fields.
    prefix: String,
}

impl SerializedEvent {
    /// Serialises `event` for `scope`.
    pub fn new(event: &crate::RuntimeEvent, scope: &RuntimeScope) -> Self {
        // One buffer, sized for a delta, for the event and its scope.
        let mut prefix = Vec::with_capacity(PREFIX_CAPACITY);
        // Serialising the protocol's own types into memory cannot fail.
        let _ = serde_json::to_writer(&mut prefix, event);
        prefix.pop(); // the closing brace; the envelope follows
        prefix.extend_from_slice(b",\"runtime\":");
        let _ = serde_json::to_writer(&mut prefix, scope);
        Self {
            frame_type: event.frame_type(),
            // serde_json writes UTF-8.
            prefix: String::from_utf8(prefix).unwrap_or_default(),
        }
    }

    /// An event of type `frame_type` as a server kept it to send again later (its
    /// [`prefix`](Self::prefix)).
    pub fn from_prefix(frame_type: &'static str, prefix: String) -> Self {
        Self { frame_type, prefix }
    }

    /// The event's `type`.
    pub fn frame_type(&self) -> &'static str {
        self.frame_type
    }

    /// Everything but the per-connection fields: `{"type":…,<payload fields>,"runtime":{…}`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The complete frame numbered `event_seq` on its connection, emitted at `emitted_at` (an
    /// ISO-8601 time, written as is), with `nonce` (a fresh UUID v4) in its
    /// [`idempotency_key`](Envelope::idempotency_key), and its
    /// [`conversation_seq`](Envelope::conversation_seq) if given.
    pub fn render(
        &self,
        event_seq: u64,
        emitted_at: &str,
        nonce: impl Display,
        conversation_seq: Option<u64>,
    ) -> String {
        use std::fmt::Write as _;
        let mut out = String::with_capacity(self.size_hint());
        out.push_str(&self.prefix);
        let key = Key(self.frame_type, event_seq, nonce);
        let _ = write!(
            out,
            ",\"event_seq\":{event_seq},\"emitted_at\":\"{emitted_at}\",\"idempotency_key\":\"{key}\""
        );
        if let Some(seq) = conversation_seq {
            let _ = write!(out, ",\"conversation_seq\":{seq}");
        }
        out.push('}');
        out
    }

    /// The most bytes [`render`](Self::render) writes (what a queue counts the event as).
    pub fn size_hint(&self) -> usize {
        self.prefix.len() + ENVELOPE_CAPACITY
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{RuntimeEvent, ServerFrame, TurnFinished};

    #[test]
    fn a_rendered_event_is_the_enveloped_frame() {
        let scope = RuntimeScope::new("agent-1", "conv-1");
        let event = RuntimeEvent::from(TurnFinished {
            turn_id: "turn-1".into(),
            stop_reason: "end_turn".into(),
            terminal_consumer_ids: None,
            run_id: None,
            error: Some("say \"hi\"".into()),
            usage: None,
        });
        let nonce = "8d3a9c2e-0000-4000-8000-000000000000";
        let serialized = SerializedEvent::new(&event, &scope);
        for conversation_seq in [None, Some(41)] {
            let text = serialized.render(7, "2026-01-01T00:00:00.000Z", nonce, conversation_seq);
            let expected = event.clone().with_envelope(Envelope {
                runtime: scope.clone(),
                event_seq: 7,
                emitted_at: "2026-01-01T00:00:00.000Z".into(),
                idempotency_key: Envelope::idempotency_key("turn_finished", 7, nonce),
                conversation_seq,
            });
            assert_eq!(text, serde_json::to_string(&expected).unwrap_or_default());
            assert!(text.len() <= serialized.size_hint());
            assert_eq!(ServerFrame::from_json(&text).ok(), Some(expected));
        }
        let kept = SerializedEvent::from_prefix("turn_finished", serialized.prefix().to_owned());
        assert_eq!(kept, serialized);
    }
}
