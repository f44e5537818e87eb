//! The files and editor group: `search_files`, `grep_in_files`, `list_in_directory`,
//! `get_tree`, `read_file`, `write_file`, `watch_file`, `unwatch_file`, `edit_file`, their
//! responses and the `file_changed` push (docs/protocol.md §4.1). `file_ops`, sent both ways, is
//! in `file_ops.rs`.
//!
//! Paths are absolute unless a field says otherwise. Counts that Letta Code gives defaults for
//! (`max_results`, `context_lines`, …) stay absent when the client leaves them out.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::serde_util::nullable;

/// Searches file paths in the index of a working directory.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct SearchFiles {
    /// Correlates the response.
    pub request_id: String,
    /// Substring of the paths to find; `""` returns the most recently modified files.
    pub query: String,
    /// How many files at most (Letta Code: 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_results: Option<u64>,
    /// Only files under this directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
}

/// Result of `search_files`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct SearchFilesResponse {
    /// Echo of the request's id.
    pub request_id: String,
    /// Whether the search ran.
    pub success: bool,
    /// The files found (empty on failure).
    pub files: Vec<SearchFilesEntry>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A file `search_files` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SearchFilesEntry {
    /// Its path.
    pub path: String,
    /// What it is: always `file`.
    #[serde(rename = "type")]
    pub kind: FileEntryKind,
}

open_enum! {
    /// What a listed path is.
    pub enum FileEntryKind {
        /// A file.
        File = "file",
        /// A directory.
        Dir = "dir",
    }
}

/// Searches file contents ("find in files"), answering with the matching lines.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct GrepInFiles {
    /// Correlates the response.
    pub request_id: String,
    /// The text to find, or a regular expression when `is_regex`.
    pub query: String,
    /// Read `query` as a regular expression (default `false`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_regex: Option<bool>,
    /// Match case (default `false`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case_sensitive: Option<bool>,
    /// Match whole words only (default `false`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub whole_word: Option<bool>,
    /// Only files matching this glob (`*.tsx`, `src/**/*.ts`); empty means all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub glob: Option<String>,
    /// The directory to search; the index root when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// How many matching lines at most (Letta Code: 500).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_results: Option<u64>,
    /// Lines of context before and after each match (Letta Code: 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_lines: Option<u64>,
}

/// Result of `grep_in_files`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct GrepInFilesResponse {
    /// Echo of the request's id.
    pub request_id: String,
    /// Whether the search ran.
    pub success: bool,
    /// The matching lines (empty on failure).
    pub matches: Vec<GrepInFilesMatch>,
    /// Matching lines in all, including those past `max_results`.
    pub total_matches: u64,
    /// Files with a match.
    pub total_files: u64,
    /// Whether `matches` stops at `max_results`.
    pub truncated: bool,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One line `grep_in_files` matched.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct GrepInFilesMatch {
    /// The file, relative to the search root.
    pub path: String,
    /// The line's number, from 1.
    pub line: u64,
    /// The column where the match starts, from 1.
    pub column: u64,
    /// The column after the match ends, from 1.
    pub column_end: u64,
    /// The whole line, without its line break.
    pub text: String,
    /// Up to `context_lines` lines before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Vec<String>>,
    /// Up to `context_lines` lines after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Vec<String>>,
}

/// Lists one directory's folders, and its files when asked.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct ListInDirectory {
    /// Correlates the response; without it the server still answers, uncorrelated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The directory.
    pub path: String,
    /// Also list the entries that are not directories, in `files`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_files: Option<bool>,
    /// How many entries (folders and files together) at most.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    /// How many entries to skip first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
}

/// Result of `list_in_directory`. Note the camelCase `hasMore`, as Letta Code sends it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct ListInDirectoryResponse {
    /// Echo of the request's id, when it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Whether the directory was listed.
    pub success: bool,
    /// The directory listed.
    pub path: String,
    /// Its subdirectories' names (empty on failure).
    pub folders: Vec<String>,
    /// Its other entries' names, when `include_files` was set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<Vec<String>>,
    /// Whether entries past `offset + limit` remain.
    #[serde(rename = "hasMore")]
    pub has_more: bool,
    /// How many entries the directory has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Lists a subtree.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct GetTree {
    /// Correlates the response.
    pub request_id: String,
    /// The subtree's root.
    pub path: String,
    /// How many levels below the root at most.
    pub depth: u64,
}

/// Result of `get_tree`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct GetTreeResponse {
    /// Echo of the request's id.
    pub request_id: String,
    /// Whether the subtree was listed.
    pub success: bool,
    /// The subtree's root.
    pub path: String,
    /// Its entries (empty on failure).
    pub entries: Vec<TreeEntry>,
    /// Whether entries deeper than `depth` exist.
    pub has_more_depth: bool,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// An entry of `get_tree_response`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TreeEntry {
    /// Its path, relative to the root.
    pub path: String,
    /// A file or a directory.
    #[serde(rename = "type")]
    pub kind: FileEntryKind,
}

/// How a file's content travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum FileEncoding {
    /// UTF-8 text (the default).
    #[serde(rename = "utf8")]
    Utf8,
    /// The raw bytes, base64-encoded (binary files such as images).
    #[serde(rename = "base64")]
    Base64,
}

/// Reads a file.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct ReadFile {
    /// Correlates the response.
    pub request_id: String,
    /// The file.
    pub path: String,
    /// How to send the content (default `utf8`, which fails on a file that is not UTF-8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<FileEncoding>,
}

/// Result of `read_file`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct ReadFileResponse {
    /// Echo of the request's id.
    pub request_id: String,
    /// Whether the file was read.
    pub success: bool,
    /// The file.
    pub path: String,
    /// Its content; `null` on failure.
    #[schemars(required, schema_with = "nullable::<String>")]
    pub content: Option<String>,
    /// The encoding of `content`, as requested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<FileEncoding>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Overwrites a file.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct WriteFile {
    /// Correlates the response.
    pub request_id: String,
    /// The file.
    pub path: String,
    /// Its whole new content.
    pub content: String,
}

/// Result of `write_file`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct WriteFileResponse {
    /// Echo of the request's id.
    pub request_id: String,
    /// Whether the file was written.
    pub success: bool,
    /// The file.
    pub path: String,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Starts watching a file for changes made outside the editor; each is pushed as
/// `file_changed`. No answer.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct WatchFile {
    /// Names the command (no response echoes it).
    pub request_id: String,
    /// The file.
    pub path: String,
}

/// Stops watching a file. No answer.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct UnwatchFile {
    /// Names the command (no response echoes it).
    pub request_id: String,
    /// The file.
    pub path: String,
}

/// Replaces exact text in a file. On success, real Letta Code also sends a `file_ops` with the
/// new content.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct EditFile {
    /// Correlates the response.
    pub request_id: String,
    /// The file.
    pub file_path: String,
    /// The exact text to replace.
    pub old_string: String,
    /// Its replacement.
    pub new_string: String,
    /// Replace every occurrence, not just one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replace_all: Option<bool>,
    /// How many replacements the client expects; a different count fails the edit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_replacements: Option<u64>,
}

/// Result of `edit_file`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct EditFileResponse {
    /// Echo of the request's id.
    pub request_id: String,
    /// Whether the file was edited.
    pub success: bool,
    /// The file.
    pub file_path: String,
    /// What was done, for people; `null` on failure.
    #[schemars(required, schema_with = "nullable::<String>")]
    pub message: Option<String>,
    /// How many occurrences were replaced.
    pub replacements: u64,
    /// The line of the first replacement, from 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_line: Option<u64>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Direct notification: a file `watch_file` watches changed (debounced).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FileChanged {
    /// The file.
    pub path: String,
    /// Its modification time in milliseconds since the Unix epoch; may have a fraction, as a
    /// file system's modification time does.
    #[serde(rename = "lastModified")]
    pub last_modified: f64,
}

refused_with_empty_fields! {
    SearchFiles => SearchFilesResponse,
    GrepInFiles => GrepInFilesResponse,
}

refused_with_empty_fields! {
    GetTree => GetTreeResponse { path },
    ReadFile => ReadFileResponse { path },
    WriteFile => WriteFileResponse { path },
    EditFile => EditFileResponse { file_path },
}

impl crate::Refuse for ListInDirectory {
    fn refuse(&self, error: String) -> Option<ListInDirectoryResponse> {
        Some(ListInDirectoryResponse {
            request_id: Some(self.request_id.clone()?),
            success: false,
            path: self.path.clone(),
            error: Some(error),
            ..Default::default()
        })
    }
}
