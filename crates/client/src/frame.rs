//! Frames as the client receives them: the text, the few fields every frame is routed by, and
//! the typed view from the generated types.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::Error;
use crate::types::{RuntimeScope, ServerFrame};

/// A frame the server sent, kept as its text, with its `type`, `request_id` and runtime scope
/// read off once on arrival. Cloning is cheap: clones share one allocation.
#[derive(Clone)]
pub struct RawFrame(Arc<Inner>);

struct Inner {
    text: Utf8Bytes,
    frame_type: Box<str>,
    request_id: Option<Box<str>>,
    runtime: Option<RuntimeScope>,
    event_seq: Option<u64>,
    conversation_seq: Option<u64>,
}

/// The routing fields of a frame, borrowed from its text.
#[derive(Deserialize, Default)]
struct Head<'a> {
    #[serde(rename = "type", borrow, default)]
    frame_type: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    request_id: Option<Cow<'a, str>>,
    #[serde(default)]
    runtime: Option<RuntimeScope>,
    #[serde(default)]
    event_seq: Option<u64>,
    #[serde(default)]
    conversation_seq: Option<u64>,
}

impl RawFrame {
    /// Reads the routing fields of `text`. A frame whose fields have unexpected types is read
    /// field by field; text that is not a JSON object gets the type `""`. Either way it is
    /// delivered, so nothing the server sends is lost.
    pub(crate) fn new(text: Utf8Bytes) -> Self {
        let head = match serde_json::from_str::<Head<'_>>(text.as_str()) {
            Ok(head) => head,
            Err(_) => lenient_head(text.as_str()),
        };
        Self(Arc::new(Inner {
            frame_type: head.frame_type.unwrap_or_default().into(),
            request_id: head.request_id.map(Into::into),
            runtime: head.runtime,
            event_seq: head.event_seq,
            conversation_seq: head.conversation_seq,
            text,
        }))
    }

    /// The frame's `type` (`""` if it had none).
    pub fn frame_type(&self) -> &str {
        &self.0.frame_type
    }

    /// The frame's `request_id`, if it has one.
    pub fn request_id(&self) -> Option<&str> {
        self.0.request_id.as_deref()
    }

    /// The runtime the frame belongs to (the envelope's or the response's `runtime`).
    pub fn runtime(&self) -> Option<&RuntimeScope> {
        self.0.runtime.as_ref()
    }

    /// The envelope's `event_seq` of a runtime event.
    pub fn event_seq(&self) -> Option<u64> {
        self.0.event_seq
    }

    /// The envelope's `conversation_seq`: a runtime event's place in its conversation, on a
    /// runtime subscribed with `resume_after` (this project's server, see the crate docs on
    /// reconnecting).
    pub fn conversation_seq(&self) -> Option<u64> {
        self.0.conversation_seq
    }

    /// The frame exactly as received.
    pub fn text(&self) -> &str {
        self.0.text.as_str()
    }

    /// The frame as a JSON value.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.text()).unwrap_or_else(|_| serde_json::Value::String(self.text().to_owned()))
    }

    /// Parses the frame into `T` (a generated frame struct such as
    /// [`types::RuntimeStartResponse`](crate::types::RuntimeStartResponse)).
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_str(self.text()).map_err(|e| Error::Protocol {
            message: format!("`{}` frame does not match this client's types: {e}", self.frame_type()),
        })
    }

    /// Whether the frame belongs to `scope`.
    pub fn is_for(&self, scope: &RuntimeScope) -> bool {
        self.runtime()
            .is_some_and(|own| own.agent_id == scope.agent_id && own.conversation_id == scope.conversation_id)
    }

    /// Parses the typed view.
    pub fn into_frame(self) -> Frame {
        let typed = serde_json::from_str(self.text()).ok();
        Frame { raw: self, typed }
    }
}

/// The routing fields of a frame that does not have the usual shape.
fn lenient_head(text: &str) -> Head<'static> {
    let Ok(serde_json::Value::Object(fields)) = serde_json::from_str(text) else {
        return Head::default();
    };
    let string = |key: &str| {
        fields
            .get(key)
            .and_then(|v| v.as_str())
            .map(|s| Cow::Owned(s.to_owned()))
    };
    let number = |key: &str| fields.get(key).and_then(serde_json::Value::as_u64);
    Head {
        frame_type: string("type"),
        request_id: string("request_id"),
        runtime: fields
            .get("runtime")
            .and_then(|runtime| serde_json::from_value(runtime.clone()).ok()),
        event_seq: number("event_seq"),
        conversation_seq: number("conversation_seq"),
    }
}

impl From<String> for RawFrame {
    /// A frame from its text (a recorded frame, say), read as if it had been received.
    fn from(text: String) -> Self {
        Self::new(text.into())
    }
}

impl fmt::Debug for RawFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text())
    }
}

/// A frame with its typed view.
///
/// `typed` is `None` when the generated types do not describe the frame: a frame type, delta
/// type or enum value from a newer server. Such frames are delivered all the same, with their
/// text, type and scope, so a client never fails on what it does not know.
#[derive(Clone, Debug)]
pub struct Frame {
    /// The frame as received.
    pub raw: RawFrame,
    /// The frame parsed into the generated [`ServerFrame`] union.
    pub typed: Option<ServerFrame>,
}

impl Frame {
    /// The frame's `type`.
    pub fn frame_type(&self) -> &str {
        self.raw.frame_type()
    }

    /// The runtime the frame belongs to.
    pub fn runtime(&self) -> Option<&RuntimeScope> {
        self.raw.runtime()
    }
}
