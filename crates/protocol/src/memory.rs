//! The memory group (an agent's memory filesystem, MemFS): `list_memory`, `memory_history`,
//! `memory_file_at_ref`, `memory_commit_diff`, `read_memory_file`, `write_memory_file`,
//! `delete_memory_file`, `enable_memfs`, and the `memory_updated` notification
//! (docs/protocol.md §4.2).
//!
//! `list_memory` is the protocol's one streamed command: it is answered by several
//! `list_memory_response` frames with its `request_id`, the last of which carries `done: true`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::serde_util::{double_option, nullable};

/// Lists an agent's memory files; answered in chunks until one has `done: true`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct ListMemory {
    /// Correlates every response chunk.
    pub request_id: String,
    /// The agent whose memory to list.
    pub agent_id: String,
    /// Also parse each file's references to other files (graph edges).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_references: Option<bool>,
}

/// One chunk of the answer to `list_memory`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct ListMemoryResponse {
    /// Echo of the request's id.
    pub request_id: String,
    /// This chunk's files.
    pub entries: Vec<MemoryFileEntry>,
    /// Whether this is the last chunk.
    pub done: bool,
    /// How many files the whole listing has.
    pub total: u64,
    /// Whether the memory was listed.
    pub success: bool,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Whether the agent has the memory filesystem enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memfs_enabled: Option<bool>,
    /// Whether its memory repository exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memfs_initialized: Option<bool>,
}

/// A file of an agent's memory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct MemoryFileEntry {
    /// Path relative to the memory root (`system/persona.md`).
    pub relative_path: String,
    /// Whether it is a system file (always in the agent's context).
    pub is_system: bool,
    /// The description from its front matter, or `null`.
    #[schemars(required, schema_with = "nullable::<String>")]
    pub description: Option<String>,
    /// Its content.
    pub content: String,
    /// Its size in bytes.
    pub size: u64,
    /// Paths it refers to (with `include_references`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub references: Option<Vec<String>>,
    /// What kind of file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<MemoryFileKind>,
    /// Its MIME type (absent, `null` or a value).
    #[serde(
        default,
        deserialize_with = "double_option::deserialize",
        skip_serializing_if = "Option::is_none"
    )]
    pub mime_type: Option<Option<String>>,
}

open_enum! {
    /// Kind of a memory file.
    pub enum MemoryFileKind {
        /// A markdown document.
        Markdown = "markdown",
        /// An image.
        Image = "image",
    }
}

/// How a memory file's content is encoded. Closed: an unknown encoding is an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
pub enum MemoryFileEncoding {
    /// UTF-8 text (the default).
    #[default]
    #[serde(rename = "utf8")]
    Utf8,
    /// Base64-encoded bytes.
    #[serde(rename = "base64")]
    Base64,
}

/// Reads the git history of an agent's memory, or of one of its files.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct MemoryHistory {
    /// Correlates the response.
    pub request_id: String,
    /// The agent.
    pub agent_id: String,
    /// A file relative to the memory root; absent for the history of all files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_path: Option<String>,
    /// The most commits to return (default 50).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
}

/// Result of `memory_history`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct MemoryHistoryResponse {
    /// Echo of the request's id.
    pub request_id: String,
    /// The file whose history this is.
    pub file_path: String,
    /// The commits, newest first (empty on failure).
    pub commits: Vec<MemoryHistoryCommitEntry>,
    /// Whether the history was read.
    pub success: bool,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One commit of an agent's memory repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct MemoryHistoryCommitEntry {
    /// The commit's SHA.
    pub sha: String,
    /// Its message.
    pub message: String,
    /// Its time (ISO-8601).
    pub timestamp: String,
    /// Its author, or `null`.
    #[schemars(required, schema_with = "nullable::<String>")]
    pub author_name: Option<String>,
}

/// Reads a memory file as it was at a commit.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct MemoryFileAtRef {
    /// Correlates the response.
    pub request_id: String,
    /// The agent.
    pub agent_id: String,
    /// The file, relative to the memory root.
    pub file_path: String,
    /// The commit's SHA.
    #[serde(rename = "ref")]
    pub git_ref: String,
}

/// Result of `memory_file_at_ref`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct MemoryFileAtRefResponse {
    /// Echo of the request's id.
    pub request_id: String,
    /// Echo of the file.
    pub file_path: String,
    /// Echo of the commit.
    #[serde(rename = "ref")]
    pub git_ref: String,
    /// The file's content at that commit; `null` on failure.
    #[schemars(required, schema_with = "nullable::<String>")]
    pub content: Option<String>,
    /// Whether the file was read.
    pub success: bool,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Shows the diff of one commit of an agent's memory.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct MemoryCommitDiff {
    /// Correlates the response.
    pub request_id: String,
    /// The agent.
    pub agent_id: String,
    /// The commit's SHA.
    pub sha: String,
}

/// Result of `memory_commit_diff`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct MemoryCommitDiffResponse {
    /// Echo of the request's id.
    pub request_id: String,
    /// Echo of the commit.
    pub sha: String,
    /// The commit's diff; `null` on failure.
    #[schemars(required, schema_with = "nullable::<String>")]
    pub diff: Option<String>,
    /// Whether the diff was read.
    pub success: bool,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Reads a file of an agent's memory working tree.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct ReadMemoryFile {
    /// Correlates the response.
    pub request_id: String,
    /// The agent.
    pub agent_id: String,
    /// The file, relative to the memory root.
    pub path: String,
    /// How to encode the content (default `utf8`; `base64` for binary files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<MemoryFileEncoding>,
}

/// Result of `read_memory_file`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct ReadMemoryFileResponse {
    /// Echo of the request's id.
    pub request_id: String,
    /// Echo of the agent.
    pub agent_id: String,
    /// Echo of the file.
    pub path: String,
    /// The content; `null` on failure.
    #[schemars(required, schema_with = "nullable::<String>")]
    pub content: Option<String>,
    /// How `content` is encoded.
    pub encoding: MemoryFileEncoding,
    /// Whether the file was read.
    pub success: bool,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Writes a file into an agent's memory and commits it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct WriteMemoryFile {
    /// Correlates the response.
    pub request_id: String,
    /// The agent.
    pub agent_id: String,
    /// The file, relative to the memory root (rejected if it leaves the root).
    pub path: String,
    /// The content, as `encoding` says.
    pub content: String,
    /// How `content` is encoded (default `utf8`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<MemoryFileEncoding>,
    /// The commit message (a default one when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit_message: Option<String>,
}

/// Deletes a file of an agent's memory and commits the deletion (succeeds without a commit if
/// the file is already absent).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct DeleteMemoryFile {
    /// Correlates the response.
    pub request_id: String,
    /// The agent.
    pub agent_id: String,
    /// The file, relative to the memory root.
    pub path: String,
    /// The commit message (a default one when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit_message: Option<String>,
}

// The results of `write_memory_file` and `delete_memory_file`, which have the same fields.
macro_rules! memory_commit_response {
    ($( $(#[$meta:meta])* $name:ident )+) => {$(
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
        pub struct $name {
            /// Echo of the request's id.
            pub request_id: String,
            /// Echo of the agent.
            pub agent_id: String,
            /// Echo of the file.
            pub path: String,
            /// Whether the change was made.
            pub success: bool,
            /// Whether a commit was made.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub committed: Option<bool>,
            /// The commit's SHA.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub commit_sha: Option<String>,
            /// Why it failed.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub error: Option<String>,
        }
    )+};
}

memory_commit_response! {
    /// Result of `write_memory_file`.
    WriteMemoryFileResponse
    /// Result of `delete_memory_file`.
    DeleteMemoryFileResponse
}

/// Turns on the memory filesystem for an agent.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct EnableMemfs {
    /// Correlates the response.
    pub request_id: String,
    /// The agent.
    pub agent_id: String,
}

/// Result of `enable_memfs`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct EnableMemfsResponse {
    /// Echo of the request's id.
    pub request_id: String,
    /// Whether it was turned on.
    pub success: bool,
    /// The agent's memory directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_directory: Option<String>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Direct notification (no envelope): files of an agent's memory changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct MemoryUpdated {
    /// The changed files, relative to the memory root.
    pub affected_paths: Vec<String>,
    /// When, in milliseconds since the epoch.
    pub timestamp: u64,
}

impl crate::Refuse for ListMemory {
    /// One chunk, the last (`done: true`), so that a client reading chunks stops.
    fn refuse(&self, error: String) -> Option<ListMemoryResponse> {
        Some(ListMemoryResponse {
            request_id: self.request_id.clone(),
            done: true,
            error: Some(error),
            ..Default::default()
        })
    }
}

impl crate::Refuse for MemoryHistory {
    fn refuse(&self, error: String) -> Option<MemoryHistoryResponse> {
        Some(MemoryHistoryResponse {
            request_id: self.request_id.clone(),
            file_path: self.file_path.clone().unwrap_or_default(),
            error: Some(error),
            ..Default::default()
        })
    }
}

impl crate::Refuse for MemoryFileAtRef {
    fn refuse(&self, error: String) -> Option<MemoryFileAtRefResponse> {
        Some(MemoryFileAtRefResponse {
            request_id: self.request_id.clone(),
            file_path: self.file_path.clone(),
            git_ref: self.git_ref.clone(),
            error: Some(error),
            ..Default::default()
        })
    }
}

impl crate::Refuse for MemoryCommitDiff {
    fn refuse(&self, error: String) -> Option<MemoryCommitDiffResponse> {
        Some(MemoryCommitDiffResponse {
            request_id: self.request_id.clone(),
            sha: self.sha.clone(),
            error: Some(error),
            ..Default::default()
        })
    }
}

impl crate::Refuse for ReadMemoryFile {
    fn refuse(&self, error: String) -> Option<ReadMemoryFileResponse> {
        Some(ReadMemoryFileResponse {
            request_id: self.request_id.clone(),
            agent_id: self.agent_id.clone(),
            path: self.path.clone(),
            encoding: self.encoding.unwrap_or_default(),
            error: Some(error),
            ..Default::default()
        })
    }
}

impl crate::Refuse for WriteMemoryFile {
    fn refuse(&self, error: String) -> Option<WriteMemoryFileResponse> {
        Some(WriteMemoryFileResponse {
            request_id: self.request_id.clone(),
            agent_id: self.agent_id.clone(),
            path: self.path.clone(),
            error: Some(error),
            ..Default::default()
        })
    }
}

impl crate::Refuse for DeleteMemoryFile {
    fn refuse(&self, error: String) -> Option<DeleteMemoryFileResponse> {
        Some(DeleteMemoryFileResponse {
            request_id: self.request_id.clone(),
            agent_id: self.agent_id.clone(),
            path: self.path.clone(),
            error: Some(error),
            ..Default::default()
        })
    }
}

refused_with_empty_fields! {
    EnableMemfs => EnableMemfsResponse,
}
