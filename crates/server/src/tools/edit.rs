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
        if self.old_string == self.new_string {
            return Err("old_string and new_string are identical; there is nothing to change.".into());
        }
        if self.old_string.is_empty() {
            return Err("old_string must not be empty. To create or overwrite a whole file use Write.".into());
        }
        let (mut old, mut new) = (self.old_string.to_owned(), self.new_string.to_owned());
        let mut count = content.matches(&old).count();
        // A model usually writes `\n` line endings; accept them for a file with CRLF endings.
        if count == 0 && content.contains("\r\n") && old.contains('\n') && !old.contains('\r') {
            let crlf_old = old.replace('\n', "\r\n");
            let crlf_count = content.matches(&crlf_old).count();
            if crlf_count > 0 {
                old = crlf_old;
                new = new.replace("\r\n", "\n").replace('\n', "\r\n");
                count = crlf_count;
            }
        }
        match count {
            0 => Err(format!(
                "old_string was not found in the file. It must match the file exactly, including \
                 whitespace and indentation; read the file again to get the current text.\nold_string: {}",
                self.old_string
            )),
            1 => Ok((content.replacen(&old, &new, 1), 1)),
            _ if self.replace_all => Ok((content.replace(&old, &new), count)),
            _ => Err(format!(
                "old_string occurs {count} times in the file, but replace_all is false. Add more \
                 surrounding context to old_string so it matches exactly one place, or set \
                 replace_all to true to replace every occurrence.\nold_string: {}",
                self.old_string
            )),
        }
    }
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
