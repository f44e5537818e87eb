//! `Edit` and `MultiEdit`.

use std::path::Path;

use letta_app_server_protocol::{DiffPreview, JsonObject};
use serde_json::{Value, json};

use super::args::{object_schema, optional_bool, required_array, required_str, try_arg, type_name};
use super::diff::{diff_preview, fallback_preview};
use super::files::{read_text_file, read_text_file_blocking, write_text_file};
use super::{LocalTool, ToolContext, ToolFuture, ToolKind, ToolResult, resolve_path};

/// One replacement.
struct Replacement<'a> {
    old_string: &'a str,
    new_string: &'a str,
    replace_all: bool,
}

impl<'a> Replacement<'a> {
    fn from_args(args: &'a JsonObject) -> Result<Self, String> {
        Ok(Self {
            old_string: required_str(args, "old_string")?,
            new_string: required_str(args, "new_string")?,
            replace_all: optional_bool(args, "replace_all")?.unwrap_or(false),
        })
    }

    /// Applies the replacement to `content`, returning the new content and how many occurrences
    /// were replaced.
    fn apply(&self, content: &str) -> Result<(String, usize), String> {
        let occurrences = if self.replace_all {
            Occurrences::All
        } else {
            Occurrences::One
        };
        match replace(content, self.old_string, self.new_string, occurrences, usize::MAX) {
            Ok(replaced) => Ok((replaced.content, replaced.count)),
            Err(ReplaceError::Empty) => {
                Err("old_string must not be empty. To create or overwrite a whole file use Write.".into())
            }
            Err(ReplaceError::Identical) => {
                Err("old_string and new_string are identical; there is nothing to change.".into())
            }
            Err(ReplaceError::NotFound) => Err(format!(
                "old_string was not found in the file. It must match the file exactly, including \
                 whitespace and indentation; read the file again to get the current text.\nold_string: {}",
                self.old_string
            )),
            Err(ReplaceError::Count { found, .. }) => Err(format!(
                "old_string occurs {found} times in the file, but replace_all is false. Add more \
                 surrounding context to old_string so it matches exactly one place, or set \
                 replace_all to true to replace every occurrence.\nold_string: {}",
                self.old_string
            )),
            // Not reached: the tool sets no size limit.
            Err(ReplaceError::TooLarge { bytes }) => Err(format!("the edited file would be {bytes} bytes")),
        }
    }
}

/// How many occurrences of the old string a [`replace`] expects, and replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Occurrences {
    /// Exactly one.
    One,
    /// Every one (at least one).
    All,
    /// Exactly this many, all replaced.
    Exactly(usize),
}

/// Why a [`replace`] was not made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ReplaceError {
    /// The old string is empty.
    Empty,
    /// The old and new strings are the same.
    Identical,
    /// The old string is not in the content.
    NotFound,
    /// The old string occurs `found` times, not the `expected` count.
    Count {
        /// How many occurrences were expected.
        expected: usize,
        /// How many there are.
        found: usize,
    },
    /// The result would be `bytes` long, over the limit given.
    TooLarge {
        /// Its length.
        bytes: usize,
    },
}

/// A replacement made by [`replace`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Replaced {
    /// The new content.
    pub content: String,
    /// How many occurrences were replaced.
    pub count: usize,
    /// The line (from 1) of the first occurrence.
    pub first_line: usize,
}

/// Whether `old` can be replaced with `new` at all, whatever the content: it is not empty and
/// `new` differs from it. [`replace`] checks this first.
pub(crate) fn check_strings(old: &str, new: &str) -> Result<(), ReplaceError> {
    if old.is_empty() {
        return Err(ReplaceError::Empty);
    }
    if old == new {
        return Err(ReplaceError::Identical);
    }
    Ok(())
}

/// Replaces `old` with `new` in `content`, as the `Edit` tool and the `edit_file` command do: an
/// exact match, its count checked against `occurrences`, the result at most `max_bytes` long.
///
/// A file with CRLF line endings keeps them: an `old` written with `\n` endings (as models and
/// editors usually send it) matches the file's `\r\n` ones, and `new` is then written with `\r\n`.
pub(crate) fn replace(
    content: &str,
    old: &str,
    new: &str,
    occurrences: Occurrences,
    max_bytes: usize,
) -> Result<Replaced, ReplaceError> {
    check_strings(old, new)?;
    let (mut old, mut new) = (old.to_owned(), new.to_owned());
    let mut found = content.matches(&old).count();
    if found == 0 && content.contains("\r\n") && old.contains('\n') && !old.contains('\r') {
        let crlf_old = old.replace('\n', "\r\n");
        let crlf_found = content.matches(&crlf_old).count();
        if crlf_found > 0 {
            old = crlf_old;
            new = new.replace("\r\n", "\n").replace('\n', "\r\n");
            found = crlf_found;
        }
    }
    let expected = match occurrences {
        _ if found == 0 => return Err(ReplaceError::NotFound),
        Occurrences::One => 1,
        Occurrences::All => found,
        Occurrences::Exactly(expected) => expected,
    };
    if found != expected {
        return Err(ReplaceError::Count { expected, found });
    }
    let bytes = (content.len() - found * old.len()).saturating_add(found.saturating_mul(new.len()));
    if bytes > max_bytes {
        return Err(ReplaceError::TooLarge { bytes });
    }
    let first = content.find(&old).unwrap_or_default();
    Ok(Replaced {
        content: content.replace(&old, &new),
        count: found,
        first_line: content[..first].matches('\n').count() + 1,
    })
}

/// The `edits` of a `MultiEdit` call.
fn parse_edits(args: &JsonObject) -> Result<Vec<Replacement<'_>>, String> {
    let edits = required_array(args, "edits")?;
    if edits.is_empty() {
        return Err("`edits` must contain at least one edit.".into());
    }
    edits
        .iter()
        .enumerate()
        .map(|(index, edit)| match edit {
            Value::Object(edit) => Replacement::from_args(edit).map_err(|error| format!("edits[{index}]: {error}")),
            other => Err(format!(
                "edits[{index}] must be an object with old_string and new_string, got {}.",
                type_name(other)
            )),
        })
        .collect()
}

/// Applies `edits` in order; on failure returns the failed edit's index and why.
fn apply_all(content: &str, edits: &[Replacement<'_>]) -> Result<(String, usize), (usize, String)> {
    let mut content = content.to_owned();
    let mut replaced = 0;
    for (index, edit) in edits.iter().enumerate() {
        match edit.apply(&content) {
            Ok((next, count)) => {
                content = next;
                replaced += count;
            }
            Err(error) => return Err((index, error)),
        }
    }
    Ok((content, replaced))
}

/// The preview of applying `edits` to the file at `path`.
fn edit_preview(path: &Path, edits: &[Replacement<'_>]) -> DiffPreview {
    let old = match read_text_file_blocking(path) {
        Ok(old) => old,
        Err(reason) => return fallback_preview(path, reason),
    };
    match apply_all(&old, edits) {
        Ok((new, _)) => diff_preview(path, &old, &new),
        Err((_, reason)) if edits.len() == 1 => fallback_preview(path, reason),
        Err((index, reason)) => fallback_preview(path, format!("edits[{index}] cannot be applied: {reason}")),
    }
}

/// Reads the file, applies `edits`, writes it back.
async fn edit_file(path: &Path, edits: &[Replacement<'_>], single: bool) -> ToolResult {
    let content = match read_text_file(path).await {
        Ok(content) => content,
        Err(error) if single => {
            return ToolResult::error(format!(
                "{error} Edit only changes existing files; use Write to create one."
            ));
        }
        Err(error) => return ToolResult::error(error),
    };
    let (new_content, replaced) = match apply_all(&content, edits) {
        Ok(result) => result,
        Err((_, error)) if single => return ToolResult::error(error),
        Err((index, error)) => {
            return ToolResult::error(format!(
                "edits[{index}] (edit {} of {}) failed: {error}\nNo edits were applied; the file is unchanged.",
                index + 1,
                edits.len()
            ));
        }
    };
    if let Err(error) = write_text_file(path, &new_content).await {
        return ToolResult::error(error);
    }
    let text = if single {
        let times = if replaced == 1 {
            "1 occurrence".to_owned()
        } else {
            format!("{replaced} occurrences")
        };
        format!(
            "The file {} has been updated successfully ({times} replaced).",
            path.display()
        )
    } else {
        format!(
            "Applied {} edits to {} ({replaced} replacements in total).",
            edits.len(),
            path.display()
        )
    };
    ToolResult {
        changed_file: Some((path.to_path_buf(), new_content)),
        ..ToolResult::ok(text)
    }
}

const FILE_PATH_DESCRIPTION: &str = "Path of the file to change (absolute, or relative to the working directory).";
const OLD_STRING_DESCRIPTION: &str = "The exact text to replace, including whitespace and indentation. It must occur exactly once unless replace_all is true.";
const NEW_STRING_DESCRIPTION: &str = "The text to replace it with (must differ from old_string).";
const REPLACE_ALL_DESCRIPTION: &str = "Replace every occurrence of old_string (default false).";

/// `Edit`: replaces a string in a file.
pub struct Edit;

impl LocalTool for Edit {
    fn name(&self) -> &'static str {
        "Edit"
    }

    fn description(&self) -> &'static str {
        "Replaces `old_string` with `new_string` in an existing file. `old_string` must match the \
         file exactly and occur exactly once, so include enough surrounding lines to make it \
         unique; set `replace_all` to replace every occurrence (e.g. to rename a variable). Read \
         the file first. Use Write to create new files."
    }

    fn parameters(&self) -> JsonObject {
        object_schema(
            json!({
                "file_path": {"type": "string", "description": FILE_PATH_DESCRIPTION},
                "old_string": {"type": "string", "description": OLD_STRING_DESCRIPTION},
                "new_string": {"type": "string", "description": NEW_STRING_DESCRIPTION},
                "replace_all": {"type": "boolean", "default": false, "description": REPLACE_ALL_DESCRIPTION}
            }),
            &["file_path", "old_string", "new_string"],
        )
    }

    fn kind(&self) -> ToolKind {
        ToolKind::Edit
    }

    fn preview(&self, args: &JsonObject, cwd: &Path) -> Option<Vec<DiffPreview>> {
        let file_path = required_str(args, "file_path").ok()?;
        let edit = Replacement::from_args(args).ok()?;
        Some(vec![edit_preview(&resolve_path(cwd, file_path), &[edit])])
    }

    fn run<'a>(&'a self, args: JsonObject, context: ToolContext<'a>) -> ToolFuture<'a> {
        Box::pin(async move {
            let file_path = try_arg!(required_str(&args, "file_path"));
            let edit = try_arg!(Replacement::from_args(&args));
            edit_file(&resolve_path(context.cwd, file_path), &[edit], true).await
        })
    }
}

/// `MultiEdit`: several replacements in one file, all or nothing.
pub struct MultiEdit;

impl LocalTool for MultiEdit {
    fn name(&self) -> &'static str {
        "MultiEdit"
    }

    fn description(&self) -> &'static str {
        "Makes several replacements in one existing file. Each edit works like Edit (exact \
         `old_string`, unique unless `replace_all`) and applies to the result of the previous \
         edits, in order. Either every edit succeeds and the file is written, or nothing changes."
    }

    fn parameters(&self) -> JsonObject {
        object_schema(
            json!({
                "file_path": {"type": "string", "description": FILE_PATH_DESCRIPTION},
                "edits": {
                    "type": "array",
                    "minItems": 1,
                    "description": "The edits, applied in order.",
                    "items": {
                        "type": "object",
                        "properties": {
                            "old_string": {"type": "string", "description": OLD_STRING_DESCRIPTION},
                            "new_string": {"type": "string", "description": NEW_STRING_DESCRIPTION},
                            "replace_all": {"type": "boolean", "default": false, "description": REPLACE_ALL_DESCRIPTION}
                        },
                        "required": ["old_string", "new_string"],
                        "additionalProperties": false
                    }
                }
            }),
            &["file_path", "edits"],
        )
    }

    fn kind(&self) -> ToolKind {
        ToolKind::Edit
    }

    fn preview(&self, args: &JsonObject, cwd: &Path) -> Option<Vec<DiffPreview>> {
        let file_path = required_str(args, "file_path").ok()?;
        let edits = parse_edits(args).ok()?;
        Some(vec![edit_preview(&resolve_path(cwd, file_path), &edits)])
    }

    fn run<'a>(&'a self, args: JsonObject, context: ToolContext<'a>) -> ToolFuture<'a> {
        Box::pin(async move {
            let file_path = try_arg!(required_str(&args, "file_path"));
            let edits = try_arg!(parse_edits(&args));
            edit_file(&resolve_path(context.cwd, file_path), &edits, false).await
        })
    }
}
