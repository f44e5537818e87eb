//! The search group (docs/protocol.md §4.1): `search_files`, a fuzzy path finder, and
//! `grep_in_files`, a project-wide content search.
//!
//! Like the files group, these come from the controller, not the model: no permission mode
//! applies to them, as on real Letta. `cwd` defaults to the boot working directory, a relative
//! one is resolved against it, and the paths answered are relative to it (`/`-separated).
//! Both run detached, as on real Letta, so a long search does not hold up later frames.
//!
//! * `search_files` matches the query fuzzily (nucleo, fzf syntax, smart case) against the
//!   cached index of the directory's files (see [`crate::search::index`]: `.gitignore`
//!   honoured, hidden files kept, `.git` skipped, at most 200,000 files, refreshed in the
//!   background once 2 s old); `""` answers the most recently modified files. Files only, best
//!   first; `max_results` defaults to 5 and is clamped to `1..=`[`MAX_SEARCH_RESULTS`], as real
//!   Letta does. A `cwd` that does not exist or is not a directory fails with Node's error text
//!   (real Letta answers an empty list).
//! * `grep_in_files` searches the files that are not ignored or hidden, in path order, with
//!   ripgrep's libraries (as real Letta runs ripgrep): literal unless `is_regex`, case-insensitive
//!   unless `case_sensitive`, `whole_word`, a `glob` filter. Columns are 1-based UTF-16 code units
//!   of the line's first match, as real Letta answers. `before`/`after` are the lines directly
//!   around the match (present only when `context_lines` > 0). `total_matches` and
//!   `total_files` count every matching line and file, also past `max_results`; `truncated` says
//!   that fewer were sent. An empty query, or the home directory as `cwd`, finds nothing, as on
//!   real Letta. Bounds: [`MAX_GREP_RESULTS`], [`MAX_CONTEXT_LINES`], [`MAX_LINE_CHARS`],
//!   [`MAX_GREP_BYTES`], [`GREP_TIMEOUT`].

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use letta_app_server_protocol::{
    FileEntryKind, GrepInFiles, GrepInFilesResponse, SearchFiles, SearchFilesEntry, SearchFilesResponse,
};

use super::Caller;
use super::files::{blocking, node_error, resolve};
use crate::limits::MAX_PAGE_BYTES;
use crate::search::grep::{FoundLines, LineSearch, LineSearchError, Pattern, find_lines};

/// `search_files`'s `max_results` when absent (real Letta's).
pub const DEFAULT_SEARCH_RESULTS: usize = 5;
/// The largest `max_results` of `search_files` (real Letta's).
pub const MAX_SEARCH_RESULTS: usize = 200;
/// `grep_in_files`'s `max_results` when absent (real Letta's).
pub const DEFAULT_GREP_RESULTS: usize = 500;
/// The largest `max_results` of `grep_in_files`.
pub const MAX_GREP_RESULTS: usize = 5_000;
/// `grep_in_files`'s `context_lines` when absent (real Letta's).
pub const DEFAULT_CONTEXT_LINES: usize = 2;
/// The largest `context_lines` of `grep_in_files`.
pub const MAX_CONTEXT_LINES: usize = 10;
/// Characters of a line (`text`, `before`, `after`) `grep_in_files` sends; a longer line is cut
/// there (its columns still count from the start of the whole line).
pub const MAX_LINE_CHARS: usize = 1_000;
/// Bytes of lines and paths one `grep_in_files` answer carries; past them it ends before
/// `max_results`, `truncated`.
pub const MAX_GREP_BYTES: usize = MAX_PAGE_BYTES;
/// How long `grep_in_files` searches before failing (real Letta gives ripgrep as long).
pub const GREP_TIMEOUT: Duration = Duration::from_secs(30);

/// The directory a command's `cwd` names: resolved against the boot working directory, which
/// is also the default.
fn search_root(caller: &dyn Caller, cwd: Option<&str>) -> PathBuf {
    match cwd {
        Some(cwd) => resolve(caller, cwd),
        None => PathBuf::from(caller.engine().settings.boot_cwd()),
    }
}

/// `count` as a `usize` clamped to `low..=high`, or `default`.
fn bounded(count: Option<u64>, default: usize, low: usize, high: usize) -> usize {
    count.map_or(default, |count| {
        usize::try_from(count).unwrap_or(usize::MAX).clamp(low, high)
    })
}

/// `search_files`: the best fuzzy matches of `query` among the files of `cwd`, or its most
/// recently modified files for `""`.
pub(super) async fn search_files(caller: &dyn Caller, search: SearchFiles) {
    let root = search_root(caller, search.cwd.as_deref());
    let limit = bounded(search.max_results, DEFAULT_SEARCH_RESULTS, 1, MAX_SEARCH_RESULTS);
    let found = find_files(caller, root, search.query, limit).await;
    caller.send(SearchFilesResponse {
        request_id: search.request_id,
        success: found.is_ok(),
        error: found.as_ref().err().cloned(),
        files: found
            .unwrap_or_default()
            .into_iter()
            .map(|path| SearchFilesEntry {
                path,
                kind: FileEntryKind::File,
            })
            .collect(),
    });
}

async fn find_files(caller: &dyn Caller, root: PathBuf, query: String, limit: usize) -> Result<Vec<String>, String> {
    let scandir = |error: &io::Error, root: &Path| node_error(error, "scandir", root);
    let canonical = tokio::fs::canonicalize(&root)
        .await
        .map_err(|error| scandir(&error, &root))?;
    let index = caller
        .engine()
        .file_indexes
        .get(&canonical)
        .await
        .map_err(|error| scandir(&error, &root))?;
    // Matching a large index takes milliseconds: off the runtime's threads.
    blocking(move || {
        let query = query.trim();
        let files = if query.is_empty() {
            index.recent(limit)
        } else {
            index.fuzzy(query, limit)
        };
        Ok(files.into_iter().map(str::to_owned).collect())
    })
    .await
}

/// `grep_in_files`: the lines of the files under `cwd` that match `query`.
pub(super) async fn grep_in_files(caller: &dyn Caller, grep: GrepInFiles) {
    let root = search_root(caller, grep.cwd.as_deref());
    let request_id = grep.request_id.clone();
    let answer = match blocking(move || grep_lines(&root, &grep)).await {
        Ok(found) => GrepInFilesResponse {
            request_id,
            success: true,
            truncated: found.total_matches > found.matches.len() as u64,
            matches: found.matches,
            total_matches: found.total_matches,
            total_files: found.total_files,
            error: None,
        },
        Err(error) => GrepInFilesResponse {
            request_id,
            success: false,
            error: Some(error),
            ..Default::default()
        },
    };
    caller.send(answer);
}

fn grep_lines(root: &Path, grep: &GrepInFiles) -> Result<FoundLines, String> {
    if grep.query.is_empty() {
        return Ok(FoundLines::default());
    }
    std::fs::metadata(root).map_err(|error| node_error(&error, "scandir", root))?;
    if dirs::home_dir().is_some_and(|home| home == root) {
        return Ok(FoundLines::default());
    }
    let search = LineSearch {
        root,
        pattern: Pattern {
            text: &grep.query,
            literal: !grep.is_regex.unwrap_or(false),
            case_insensitive: !grep.case_sensitive.unwrap_or(false),
            whole_word: grep.whole_word.unwrap_or(false),
            multiline: false,
        },
        glob: grep.glob.as_deref().unwrap_or_default().trim(),
        context: bounded(grep.context_lines, DEFAULT_CONTEXT_LINES, 0, MAX_CONTEXT_LINES),
        max_matches: bounded(grep.max_results, DEFAULT_GREP_RESULTS, 0, MAX_GREP_RESULTS),
        max_line_chars: MAX_LINE_CHARS,
        max_bytes: MAX_GREP_BYTES,
        deadline: Instant::now() + GREP_TIMEOUT,
    };
    find_lines(&search).map_err(|error| match error {
        LineSearchError::Invalid(message) => message,
        LineSearchError::TimedOut => format!("grep_in_files timed out after {}s", GREP_TIMEOUT.as_secs()),
    })
}
