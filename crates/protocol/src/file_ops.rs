//! `file_ops`: the agent changed a file (docs/protocol.md §4.1, §5 (c)).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Runtime event broadcast when an agent's `Edit`/`Write` changed a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FileOps {
    /// The file.
    pub path: String,
    /// Collaborative-editing causal graph entries.
    pub cg_entries: Vec<CausalGraphEntry>,
    /// Collaborative-editing operations.
    pub ops: Vec<FileOp>,
    /// Who changed the file (`agent` for agent edits).
    pub source: String,
    /// The full new content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_content: Option<String>,
}

/// A causal graph entry of a collaborative edit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CausalGraphEntry {
    /// Editing agent id.
    pub agent: String,
    /// First sequence number.
    pub seq: u64,
    /// Number of operations.
    pub len: u64,
    /// Parent versions as `[agent, seq]` pairs.
    pub parents: Vec<(String, u64)>,
}

/// One collaborative-editing operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FileOp {
    /// Insert or delete.
    #[serde(rename = "type")]
    pub kind: FileOpKind,
    /// Character position.
    pub pos: u64,
    /// Inserted text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

open_enum! {
    /// Kind of a file operation.
    pub enum FileOpKind {
        /// Insert.
        Insert = "ins",
        /// Delete.
        Delete = "del",
    }
}
