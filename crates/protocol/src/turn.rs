//! `turn_finished`: the end of a turn (docs/protocol.md §3.6).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{AgentScope, StopReason, TurnUsage};

/// Runtime event: exactly once per turn, after its final loop/device statuses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TurnFinished {
    /// The turn's id, opaque: `turn-<uuid>` on Letta 0.34.12 and this server; Letta 0.32.18 sent
    /// `batch-direct-<uuid>`, `batch-<n>` (not unique) or `recovery-<uuid>`.
    pub turn_id: String,
    /// Why the turn ended (never `requires_approval`).
    pub stop_reason: StopReason,
    /// Letta 0.34: the `terminal_consumer_id`s of the inputs the turn ran, first seen first;
    /// absent when none carried one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminal_consumer_ids: Option<Vec<String>>,
    /// The turn's last run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// Human-readable error (same text as the terminal `loop_error`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The turn's final token counters, as declared by Letta (not seen in its recordings; this
    /// server sends them in `usage_statistics` deltas instead).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<TurnUsage>,
}

/// Letta 0.34: a client's receipt for a `turn_finished`. Accepted without an answer (Letta 0.34's
/// App Server does not replay `turn_finished` either).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TurnFinishedAck {
    /// The scope of the acknowledged turn (`agent_id` is `null` for an agent-free conversation).
    pub runtime: AgentScope,
    /// The acknowledged frame's `idempotency_key` (1–256 characters).
    pub idempotency_key: String,
    /// Who acknowledges (a `terminal_consumer_id`).
    pub consumer_id: String,
}
