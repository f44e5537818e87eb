//! `turn_finished`: the end of a turn (docs/protocol.md §3.6).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::StopReason;

/// Runtime event: exactly once per turn, after its final loop/device statuses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TurnFinished {
    /// The turn's id, opaque: `turn-<uuid>` on Letta 0.34.12 and this server; Letta 0.32.18 sent
    /// `batch-direct-<uuid>`, `batch-<n>` (not unique) or `recovery-<uuid>`.
    pub turn_id: String,
    /// Why the turn ended (never `requires_approval`).
    pub stop_reason: StopReason,
    /// The turn's last run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// Human-readable error (same text as the terminal `loop_error`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}
