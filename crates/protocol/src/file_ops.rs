//! `file_ops`: collaborative-editing operations on a file, sent both ways (docs/protocol.md §4.1,
//! §5 (c)). The server's, a runtime event, announces a change the agent made; a client's, a
//! command without an answer, carries an editor's changes (with `document_content`, the file's
//! new content).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The body of `file_ops` in both directions: the runtime event broadcast when an agent's
/// `Edit`/`Write` changed a file, and the command an editor sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FileOps {
    /// The file.
    pub path: String,
    /// Collaborative-editing causal graph entries.
    pub cg_entries: Vec<CausalGraphEntry>,
    /// Collaborative-editing operations.
    pub ops: Vec<FileOp>,
    /// Who generated the operations (`agent` for agent edits; an editor window's id).
    pub source: String,
    /// The file's whole content after the operations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_content: Option<String>,
}

impl FileOps {
    /// The `file_ops` the server sends for an edit of its own (an agent's tool, `edit_file`):
    /// no operations, `source` `agent`, the file's whole new `content`.
    pub fn agent_edit(path: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            cg_entries: Vec::new(),
            ops: Vec::new(),
            source: "agent".into(),
            document_content: Some(content.into()),
        }
    }
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
    /// Kind of a file operation. Open in the server's frames; a client's `file_ops` with another
    /// kind is invalid (the server could not apply it).
    pub enum FileOpKind {
        /// Insert.
        Insert = "ins",
        /// Delete.
        Delete = "del",
    }
}
