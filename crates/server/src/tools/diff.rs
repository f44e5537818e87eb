//! The diff previews of the file-editing tools (`Write`, `Edit`, `MultiEdit`) for the approval
//! question.

use std::path::Path;
use std::time::Duration;

use letta_app_server_protocol::{AdvancedDiff, DiffHunk, DiffLine, DiffLineKind, DiffNotice, DiffPreview};
use similar::{ChangeTag, TextDiff};

/// Lines of context around each change in a diff preview.
const DIFF_CONTEXT: usize = 3;
/// The longest a preview's diff may take to compute.
const DIFF_TIMEOUT: Duration = Duration::from_millis(200);

/// A diff preview of `old` → `new` for `path`. Diffing large, very different texts is bounded
/// by [`DIFF_TIMEOUT`], after which the diff is coarser (more lines removed and added).
pub(super) fn diff_preview(path: &Path, old: &str, new: &str) -> DiffPreview {
    let old_lines: Vec<&str> = old.lines().collect();
    let new_lines: Vec<&str> = new.lines().collect();
    let diff = TextDiff::configure()
        .timeout(DIFF_TIMEOUT)
        .diff_slices(&old_lines, &new_lines);
    let mut hunks = Vec::new();
    for group in diff.grouped_ops(DIFF_CONTEXT) {
        let (Some(first), Some(last)) = (group.first(), group.last()) else {
            continue;
        };
        let old_range = first.old_range().start..last.old_range().end;
        let new_range = first.new_range().start..last.new_range().end;
        let mut lines = Vec::new();
        for op in &group {
            for change in diff.iter_changes(op) {
                let kind = match change.tag() {
                    ChangeTag::Equal => DiffLineKind::Context,
                    ChangeTag::Delete => DiffLineKind::Remove,
                    ChangeTag::Insert => DiffLineKind::Add,
                };
                let content = change.value().strip_suffix('\r').unwrap_or(change.value()).to_owned();
                lines.push(DiffLine { kind, content });
            }
        }
        // Unified-diff convention: an empty range starts at the line before it.
        let start = |range: &std::ops::Range<usize>| {
            if range.is_empty() {
                range.start as u64
            } else {
                range.start as u64 + 1
            }
        };
        hunks.push(DiffHunk {
            old_start: start(&old_range),
            old_lines: old_range.len() as u64,
            new_start: start(&new_range),
            new_lines: new_range.len() as u64,
            lines,
        });
    }
    DiffPreview::Advanced(AdvancedDiff {
        file_name: file_name(path),
        hunks,
    })
}

/// A preview saying why no diff could be computed.
pub(super) fn fallback_preview(path: &Path, reason: String) -> DiffPreview {
    DiffPreview::Fallback(DiffNotice {
        file_name: file_name(path),
        reason,
    })
}

/// The last component of a path, for diff previews.
fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |name| name.to_string_lossy().into_owned(),
    )
}
