//! `control_request`: the server asks whether a tool may run (docs/protocol.md §3.9).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::JsonObject;
use crate::serde_util::nullable;

/// Runtime event: asks every subscriber of the scope to approve one tool call. Answered with
/// `input` `approval_response` carrying the same `request_id`; the first answer wins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ControlRequest {
    /// `perm-<tool_call_id>`.
    pub request_id: String,
    /// What is asked.
    pub request: CanUseToolRequest,
    /// The scope's agent (also in the envelope's `runtime`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// The scope's conversation (also in the envelope's `runtime`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
}

/// The question of a `control_request`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CanUseToolRequest {
    /// Always `can_use_tool`.
    pub subtype: ControlSubtype,
    /// Model-facing tool name.
    pub tool_name: String,
    /// Parsed tool arguments (`{}` if unparsable).
    pub input: JsonObject,
    /// The model's tool call id.
    pub tool_call_id: String,
    /// "Yes, and don't ask again…" options the client may select when allowing.
    pub permission_suggestions: Vec<PermissionSuggestion>,
    /// Path that triggered the question; always `null` on real Letta.
    #[schemars(required, schema_with = "nullable::<String>")]
    pub blocked_path: Option<String>,
    /// Previews of the file changes, for file-editing tools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diffs: Option<Vec<DiffPreview>>,
}

open_enum! {
    /// Subtype of a control request.
    pub enum ControlSubtype {
        /// May this tool run?
        CanUseTool = "can_use_tool",
    }
}

/// A rule the client may ask the server to save when allowing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PermissionSuggestion {
    /// Id to list in `selected_permission_suggestion_ids`.
    pub id: String,
    /// Text to show.
    pub text: String,
}

tagged_union! {
    /// A preview of the change a file-editing tool would make, discriminated by `mode`.
    pub enum DiffPreview: open tag mode = "mode" {
        /// A computed diff.
        Advanced(AdvancedDiff) = "advanced",
        /// No diff could be computed; `reason` says why.
        Fallback(DiffNotice) = "fallback",
        /// The change cannot be previewed.
        Unpreviewable(DiffNotice) = "unpreviewable",
    }
}

/// A computed diff of one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AdvancedDiff {
    /// File name.
    #[serde(rename = "fileName")]
    pub file_name: String,
    /// Changed regions.
    pub hunks: Vec<DiffHunk>,
}

/// Why a file's change has no computed diff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DiffNotice {
    /// File name.
    #[serde(rename = "fileName")]
    pub file_name: String,
    /// Why.
    pub reason: String,
}

/// One changed region of a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DiffHunk {
    /// First line in the old file (1-based).
    pub old_start: u64,
    /// Lines in the old file.
    pub old_lines: u64,
    /// First line in the new file (1-based).
    pub new_start: u64,
    /// Lines in the new file.
    pub new_lines: u64,
    /// The lines.
    pub lines: Vec<DiffLine>,
}

/// One line of a hunk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DiffLine {
    /// Context, added or removed.
    #[serde(rename = "type")]
    pub kind: DiffLineKind,
    /// The line's text.
    pub content: String,
}

open_enum! {
    /// Kind of a diff line.
    pub enum DiffLineKind {
        /// Unchanged.
        Context = "context",
        /// Added.
        Add = "add",
        /// Removed.
        Remove = "remove",
    }
}
