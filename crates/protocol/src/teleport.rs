//! Teleport, moving a conversation between devices: `teleport_probe`, `teleport_request`,
//! `teleport_failed`, `teleport_probe_response` and `teleport_ready` (docs/protocol.md §4.15).
//!
//! The destination device continues with an `input` whose `payload.kind` is
//! `teleport_continue`.

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{AgentRuntimeScope, ClientPreferences, DevicePermissionMode, JsonObject};

/// Asks whether this server can take part in a teleport.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TeleportProbe {
    /// Correlates the response.
    pub request_id: String,
    /// The conversation to move.
    pub runtime: AgentRuntimeScope,
}

/// Result of `teleport_probe`: what a teleport-capable server guarantees.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TeleportProbeResponse {
    /// Echo of the request's id.
    pub request_id: String,
    /// Echo of the scope.
    pub runtime: AgentRuntimeScope,
    /// Teleport is supported.
    pub supported: True,
    /// Inputs already accepted run before the handoff.
    pub drains_accepted_inputs: True,
    /// Repeating a `teleport_continue` does not run it twice.
    pub idempotent_continuation: True,
}

/// Asks the source device to hand a conversation over to `target`; answered by a
/// `teleport_ready` runtime event (correlated by `teleport_id`, not `request_id`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TeleportRequest {
    /// The command's id.
    pub request_id: String,
    /// Names this teleport in `teleport_ready`, `teleport_failed` and `teleport_continue`.
    pub teleport_id: String,
    /// The conversation to move.
    pub runtime: AgentRuntimeScope,
    /// Where it goes.
    pub target: TeleportTarget,
}

/// The device a conversation is teleported to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TeleportTarget {
    /// Its connection.
    pub connection_id: String,
    /// Its device.
    pub device_id: String,
    /// Its connection's display name.
    pub connection_name: String,
}

/// Tells the source device that the handoff failed; it resumes with its pending continuation.
/// No answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TeleportFailed {
    /// The teleport.
    pub teleport_id: String,
    /// The conversation.
    pub runtime: AgentRuntimeScope,
    /// What went wrong.
    pub error: String,
}

/// Runtime event, to the socket that sent `teleport_request`: the source device is ready to hand
/// the conversation over (its `runtime` is the envelope's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TeleportReady {
    /// Letta 0.34: the conversation's client preferences, for the destination to carry on with
    /// (absent from Letta 0.32.18).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_preferences: Option<ClientPreferences>,
    /// The teleport.
    pub teleport_id: String,
    /// Whether the source is ready.
    pub success: bool,
    /// Whether a turn is still running.
    pub active_turn: bool,
    /// The conversation's permission mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<DevicePermissionMode>,
    /// Approval answers the destination must send on in its `teleport_continue`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continuation: Option<TeleportContinuation>,
    /// Why it is not ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `input.payload.kind: "teleport_continue"`: the destination of a teleport carries the source's
/// pending approval answers on (docs/protocol.md §4.15).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TeleportContinue {
    /// Letta 0.34: the conversation's client preferences, as the source's `teleport_ready` gave them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_preferences: Option<ClientPreferences>,
    /// The teleport, as the destination's `runtime_start.teleport_id` named it.
    pub teleport_id: String,
    /// The device the conversation comes from.
    pub source: TeleportSource,
    /// The source's pending approval answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continuation: Option<TeleportContinuation>,
}

/// The source device of a teleport.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TeleportSource {
    /// The device's id.
    pub device_id: String,
    /// The name of its connection.
    pub connection_name: String,
}

/// Pending approval answers carried across a teleport.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TeleportContinuation {
    /// Letta `ApprovalCreate.approvals` entries (approval or tool returns), as sent.
    pub approvals: Vec<JsonObject>,
}

/// The JSON literal `true`: a field the protocol declares as always `true`. Hand-written because
/// a `bool` would accept and schema `false`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct True;

impl Serialize for True {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bool(true)
    }
}

impl<'de> Deserialize<'de> for True {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if bool::deserialize(deserializer)? {
            Ok(Self)
        } else {
            Err(D::Error::custom("expected `true`"))
        }
    }
}

impl JsonSchema for True {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "True".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "boolean", "const": true })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::ServerFrame;

    #[test]
    fn a_probe_response_says_true_or_is_invalid() {
        let mut frame = json!({
            "type": "teleport_probe_response", "request_id": "tp-1",
            "runtime": {"agent_id": "agent-1", "conversation_id": "default"},
            "supported": true, "drains_accepted_inputs": true, "idempotent_continuation": true,
        });
        let parsed = ServerFrame::from_value(frame.clone()).unwrap();
        assert_eq!(serde_json::to_value(parsed).unwrap(), frame);
        frame["supported"] = json!(false);
        let error = ServerFrame::from_value(frame).unwrap_err();
        assert_eq!(error.path.as_deref(), Some("supported"));
    }
}
