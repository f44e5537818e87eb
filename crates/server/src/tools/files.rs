//! `Read`, `Write` and `LS`, and the text-file reading and writing the edit tools share.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use letta_app_server_protocol::{DiffPreview, JsonObject};
use serde_json::{Value, json};

use super::args::{object_schema, optional_array, optional_u64, required_str, try_arg};
use super::diff::{diff_preview, fallback_preview};
use super::{LocalTool, ToolContext, ToolFuture, ToolKind, ToolResult, resolve_path};

/// Lines `Read` returns when no `limit` is given.
const DEFAULT_READ_LIMIT: u64 = 2000;
/// Characters of one line `Read` shows.
const MAX_LINE_CHARS: usize = 2000;
/// How much of a file is checked for NUL bytes.
const BINARY_PROBE_BYTES: usize = 8 * 1024;
/// Entries `LS` lists at most.
const MAX_LS_ENTRIES: usize = 1000;

// ---------------------------------------------------------------------------------------------
// Text files.
// ---------------------------------------------------------------------------------------------

/// Reads a text file for editing, with errors a model can act on.
pub(super) async fn read_text_file(path: &Path) -> Result<String, String> {
    match tokio::fs::metadata(path).await {
        Ok(metadata) if metadata.is_dir() => {
            return Err(format!("{} is a directory, not a file.", path.display()));
        }
        Ok(_) => {}
        Err(error) if error.kind() == ErrorKind::NotFound => {
            return Err(format!("File does not exist: {}", path.display()));
        }
        Err(error) => return Err(format!("Cannot access {}: {error}", path.display())),
    }
    let bytes = tokio::fs::read(path)
        .await
        .map_err(|error| format!("Cannot read {}: {error}", path.display()))?;
    String::from_utf8(bytes).map_err(|_| format!("{} is not a UTF-8 text file and cannot be edited.", path.display()))
}

/// Same as [`read_text_file`], blocking (for previews).
pub(super) fn read_text_file_blocking(path: &Path) -> Result<String, String> {
    match std::fs::metadata(path) {
        Ok(metadata) if metadata.is_dir() => {
            return Err(format!("{} is a directory, not a file.", path.display()));
        }
        Ok(_) => {}
        Err(error) if error.kind() == ErrorKind::NotFound => {
            return Err(format!("File does not exist: {}", path.display()));
        }
        Err(error) => return Err(format!("Cannot access {}: {error}", path.display())),
    }
    let bytes = std::fs::read(path).map_err(|error| format!("Cannot read {}: {error}", path.display()))?;
    String::from_utf8(bytes).map_err(|_| format!("{} is not a UTF-8 text file.", path.display()))
}

/// Writes `content` to `path`, creating parent directories.
pub(super) async fn write_text_file(path: &Path, content: &str) -> Result<(), String> {
    if let Some(parent) = path.parent().filter(|parent| !parent.as_os_str().is_empty()) {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|error| format!("Cannot create directory {}: {error}", parent.display()))?;
    }
    tokio::fs::write(path, content)
        .await
        .map_err(|error| format!("Cannot write {}: {error}", path.display()))
}

// ---------------------------------------------------------------------------------------------
// Read.
// ---------------------------------------------------------------------------------------------

/// `Read`: shows a text file with line numbers.
pub struct Read;

impl LocalTool for Read {
    fn name(&self) -> &'static str {
        "Read"
    }

    fn description(&self) -> &'static str {
        "Reads a text file and returns its lines numbered like `cat -n` (line number, tab, line). \
         By default returns up to 2000 lines from the start; use `offset` (1-based first line) and \
         `limit` (number of lines) to read other parts of long files. Lines longer than 2000 \
         characters are truncated. Cannot read directories (use LS) or binary files."
    }

    fn parameters(&self) -> JsonObject {
        object_schema(
            json!({
                "file_path": {
                    "type": "string",
                    "description": "Path of the file to read (absolute, or relative to the working directory)."
                },
                "offset": {
                    "type": "integer",
                    "minimum": 1,
                    "description": "1-based line number to start reading at. Only needed for long files."
                },
                "limit": {
                    "type": "integer",
                    "minimum": 1,
                    "description": "Number of lines to read (default 2000). Only needed for long files."
                }
            }),
            &["file_path"],
        )
    }

    fn kind(&self) -> ToolKind {
        ToolKind::ReadOnly
    }

    fn run<'a>(&'a self, args: JsonObject, context: ToolContext<'a>) -> ToolFuture<'a> {
        Box::pin(async move {
            let file_path = try_arg!(required_str(&args, "file_path"));
            let offset = try_arg!(optional_u64(&args, "offset")).unwrap_or(1).max(1);
            let limit = try_arg!(optional_u64(&args, "limit")).unwrap_or(DEFAULT_READ_LIMIT);
            if limit == 0 {
                return ToolResult::error("Argument `limit` must be at least 1.");
            }
            let path = resolve_path(context.cwd, file_path);
            read_file(&path, offset, limit).await
        })
    }
}

async fn read_file(path: &Path, offset: u64, limit: u64) -> ToolResult {
    match tokio::fs::metadata(path).await {
        Ok(metadata) if metadata.is_dir() => {
            return ToolResult::error(format!(
                "{} is a directory, not a file. Use LS to list its contents.",
                path.display()
            ));
        }
        Ok(_) => {}
        Err(error) if error.kind() == ErrorKind::NotFound => {
            return ToolResult::error(format!("File does not exist: {}", path.display()));
        }
        Err(error) => return ToolResult::error(format!("Cannot access {}: {error}", path.display())),
    }
    let bytes = match tokio::fs::read(path).await {
        Ok(bytes) => bytes,
        Err(error) => return ToolResult::error(format!("Cannot read {}: {error}", path.display())),
    };
    if bytes[..bytes.len().min(BINARY_PROBE_BYTES)].contains(&0) {
        return ToolResult::error(format!(
            "{} appears to be a binary file; Read only shows text files.",
            path.display()
        ));
    }
    if bytes.is_empty() {
        return ToolResult::ok(format!("The file {} exists but is empty.", path.display()));
    }
    let text = String::from_utf8_lossy(&bytes);
    let total = text.lines().count() as u64;
    if offset > total {
        return ToolResult::error(format!(
            "Offset {offset} is past the end of {} ({total} lines). Use an offset between 1 and {total}.",
            path.display()
        ));
    }
    let first = offset - 1;
    let mut out = String::new();
    let mut shown = 0u64;
    for (index, line) in text.lines().enumerate().skip(first as usize).take(limit as usize) {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let line_number = index + 1;
        if line.chars().count() > MAX_LINE_CHARS {
            let cut: String = line.chars().take(MAX_LINE_CHARS).collect();
            out.push_str(&format!("{line_number:>6}\t{cut}… [line truncated]\n"));
        } else {
            out.push_str(&format!("{line_number:>6}\t{line}\n"));
        }
        shown += 1;
    }
    let last = first + shown;
    if last < total {
        out.push_str(&format!(
            "\n(Showing lines {}-{last} of {total}. Use offset and limit to read more.)\n",
            first + 1
        ));
    }
    ToolResult::ok(out)
}

// ---------------------------------------------------------------------------------------------
// Write.
// ---------------------------------------------------------------------------------------------

/// `Write`: creates or overwrites a file.
pub struct Write;

impl LocalTool for Write {
    fn name(&self) -> &'static str {
        "Write"
    }

    fn description(&self) -> &'static str {
        "Writes `content` to a file, replacing it if it exists and creating it (and its parent \
         directories) if it does not. Prefer Edit for changing part of an existing file; read a \
         file before overwriting it."
    }

    fn parameters(&self) -> JsonObject {
        object_schema(
            json!({
                "file_path": {
                    "type": "string",
                    "description": "Path of the file to write (absolute, or relative to the working directory)."
                },
                "content": {
                    "type": "string",
                    "description": "The complete new content of the file."
                }
            }),
            &["file_path", "content"],
        )
    }

    fn kind(&self) -> ToolKind {
        ToolKind::Edit
    }

    fn preview(&self, args: &JsonObject, cwd: &Path) -> Option<Vec<DiffPreview>> {
        let (Ok(file_path), Ok(content)) = (required_str(args, "file_path"), required_str(args, "content")) else {
            return None;
        };
        let path = resolve_path(cwd, file_path);
        let old = match std::fs::metadata(&path) {
            Err(error) if error.kind() == ErrorKind::NotFound => String::new(),
            _ => match read_text_file_blocking(&path) {
                Ok(old) => old,
                Err(reason) => return Some(vec![fallback_preview(&path, reason)]),
            },
        };
        Some(vec![diff_preview(&path, &old, content)])
    }

    fn run<'a>(&'a self, args: JsonObject, context: ToolContext<'a>) -> ToolFuture<'a> {
        Box::pin(async move {
            let file_path = try_arg!(required_str(&args, "file_path"));
            let content = try_arg!(required_str(&args, "content"));
            let path = resolve_path(context.cwd, file_path);
            let existed = match tokio::fs::metadata(&path).await {
                Ok(metadata) if metadata.is_dir() => {
                    return ToolResult::error(format!("{} is a directory; cannot write to it.", path.display()));
                }
                Ok(_) => true,
                Err(error) if error.kind() == ErrorKind::NotFound => false,
                Err(error) => return ToolResult::error(format!("Cannot access {}: {error}", path.display())),
            };
            if let Err(error) = write_text_file(&path, content).await {
                return ToolResult::error(error);
            }
            let text = if existed {
                format!("The file {} has been updated successfully.", path.display())
            } else {
                format!("File created successfully at: {}", path.display())
            };
            ToolResult {
                changed_file: Some((path, content.to_owned())),
                ..ToolResult::ok(text)
            }
        })
    }
}

// ---------------------------------------------------------------------------------------------
// LS.
// ---------------------------------------------------------------------------------------------

/// `LS`: lists a directory.
pub struct Ls;

impl LocalTool for Ls {
    fn name(&self) -> &'static str {
        "LS"
    }

    fn description(&self) -> &'static str {
        "Lists the files and directories directly inside a directory, sorted by name; directories \
         end with `/`. `ignore` takes glob patterns (e.g. `*.log`, `node_modules`) of names to leave \
         out. Use Glob or Grep to search recursively."
    }

    fn parameters(&self) -> JsonObject {
        object_schema(
            json!({
                "path": {
                    "type": "string",
                    "description": "Directory to list (absolute, or relative to the working directory)."
                },
                "ignore": {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": "Glob patterns of entry names to leave out."
                }
            }),
            &["path"],
        )
    }

    fn kind(&self) -> ToolKind {
        ToolKind::ReadOnly
    }

    fn run<'a>(&'a self, args: JsonObject, context: ToolContext<'a>) -> ToolFuture<'a> {
        Box::pin(async move {
            let path = resolve_path(context.cwd, try_arg!(required_str(&args, "path")));
            let ignore = try_arg!(ignore_set(try_arg!(optional_array(&args, "ignore"))));
            tokio::task::spawn_blocking(move || list_directory(&path, &ignore))
                .await
                .unwrap_or_else(|error| ToolResult::error(format!("LS failed: {error}")))
        })
    }
}

fn ignore_set(patterns: Option<&[Value]>) -> Result<globset::GlobSet, String> {
    let mut builder = globset::GlobSetBuilder::new();
    for (index, pattern) in patterns.unwrap_or_default().iter().enumerate() {
        let Value::String(pattern) = pattern else {
            return Err(format!("ignore[{index}] must be a string glob pattern."));
        };
        let pattern = pattern.trim_end_matches('/');
        let glob =
            globset::Glob::new(pattern).map_err(|error| format!("Invalid ignore pattern {pattern:?}: {error}"))?;
        builder.add(glob);
    }
    builder
        .build()
        .map_err(|error| format!("Invalid ignore patterns: {error}"))
}

fn list_directory(path: &PathBuf, ignore: &globset::GlobSet) -> ToolResult {
    let entries = match std::fs::read_dir(path) {
        Ok(entries) => entries,
        Err(error) if error.kind() == ErrorKind::NotFound => {
            return ToolResult::error(format!("Directory does not exist: {}", path.display()));
        }
        Err(error) if error.kind() == ErrorKind::NotADirectory => {
            return ToolResult::error(format!(
                "{} is not a directory. Use Read to read a file.",
                path.display()
            ));
        }
        Err(error) => return ToolResult::error(format!("Cannot list {}: {error}", path.display())),
    };
    let mut names = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if ignore.is_match(&name) || ignore.is_match(entry.path()) {
            continue;
        }
        // Follow symlinks so a link to a directory is shown as one.
        let is_dir = std::fs::metadata(entry.path())
            .map(|metadata| metadata.is_dir())
            .unwrap_or(false);
        names.push(if is_dir { format!("{name}/") } else { name });
    }
    names.sort();
    let total = names.len();
    let mut out = format!("{}/\n", path.display().to_string().trim_end_matches('/'));
    if total == 0 {
        out.push_str("(empty directory)\n");
    }
    for name in names.iter().take(MAX_LS_ENTRIES) {
        out.push_str("  - ");
        out.push_str(name);
        out.push('\n');
    }
    if total > MAX_LS_ENTRIES {
        out.push_str(&format!(
            "\n(Showing {MAX_LS_ENTRIES} of {total} entries. Use Glob with a more specific pattern to find files.)\n"
        ));
    }
    ToolResult::ok(out)
}
