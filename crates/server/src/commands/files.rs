//! The files group (docs/protocol.md §4.1): `list_in_directory`, `get_tree`, `read_file`,
//! `write_file`, `edit_file`, and the `file_ops` an editor sends with `document_content`.
//! Watching files is in `watch`.
//!
//! These commands come from the controller, which authenticated as the device's user, not from
//! the model: no permission mode applies to them, as on real Letta. A relative path is resolved
//! against the boot working directory. Errors carry Node's texts, as real Letta's do.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use letta_app_server_protocol::{
    EditFile, EditFileResponse, ErrorCode, ErrorFrame, FileEncoding, FileEntryKind, FileOps, FrameType, GetTree,
    GetTreeResponse, ListInDirectory, ListInDirectoryResponse, MaybeEnveloped, ReadFile, ReadFileResponse, ServerFrame,
    TreeEntry, WriteFile, WriteFileResponse,
};

use super::Caller;
use crate::limits::{MAX_DOCUMENT_BYTES, MAX_PAGE_ITEMS};
use crate::tools::{Occurrences, ReplaceError, check_strings, replace};

/// Entries `get_tree` lists at most; a larger subtree is cut there (depth first, by name).
pub const MAX_TREE_ENTRIES: usize = 10_000;

/// Real Letta's (Node's) text for an I/O error of the system call `syscall` on `path`.
pub(super) fn node_error(error: &std::io::Error, syscall: &str, path: &Path) -> String {
    let what = match error.kind() {
        ErrorKind::NotFound => "ENOENT: no such file or directory".to_owned(),
        ErrorKind::PermissionDenied => "EACCES: permission denied".to_owned(),
        ErrorKind::NotADirectory => "ENOTDIR: not a directory".to_owned(),
        ErrorKind::IsADirectory => "EISDIR: illegal operation on a directory".to_owned(),
        _ => error.to_string(),
    };
    format!("{what}, {syscall} '{}'", path.display())
}

/// `path` resolved against the boot working directory.
pub(super) fn resolve(caller: &dyn Caller, path: &str) -> PathBuf {
    Path::new(&caller.engine().settings.boot_cwd()).join(path)
}

/// Runs blocking file work off the runtime's threads.
pub(super) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|error| Err(error.to_string()))
}

/// A directory's entries split into folders and other entries, each sorted by name.
fn read_directory(directory: &Path) -> Result<(Vec<String>, Vec<String>), String> {
    let entries = std::fs::read_dir(directory).map_err(|error| node_error(&error, "scandir", directory))?;
    let (mut folders, mut files) = (Vec::new(), Vec::new());
    for entry in entries {
        let entry = entry.map_err(|error| node_error(&error, "scandir", directory))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        // A symbolic link is listed as what it points to (a dangling one as a file).
        let is_dir = std::fs::metadata(entry.path()).is_ok_and(|metadata| metadata.is_dir());
        if is_dir { folders.push(name) } else { files.push(name) }
    }
    folders.sort();
    files.sort();
    Ok((folders, files))
}

/// `list_in_directory`: folders then (with `include_files`) files, each sorted by name, the
/// window `offset .. offset + limit` of them (at most [`MAX_PAGE_ITEMS`]).
pub(super) async fn list_in_directory(caller: &dyn Caller, list: ListInDirectory) {
    let directory = resolve(caller, &list.path);
    let include_files = list.include_files.unwrap_or(false);
    let offset = usize::try_from(list.offset.unwrap_or(0)).unwrap_or(usize::MAX);
    let limit = list.limit.map_or(MAX_PAGE_ITEMS, |limit| {
        usize::try_from(limit).unwrap_or(usize::MAX).min(MAX_PAGE_ITEMS)
    });
    let listed = blocking(move || read_directory(&directory)).await;
    let answer = match listed {
        Ok((folders, files)) => {
            let files = if include_files { files } else { Vec::new() };
            let total = folders.len() + files.len();
            let end = offset.saturating_add(limit).min(total);
            let start = offset.min(end);
            let window = |names: Vec<String>, from: usize| -> Vec<String> {
                names
                    .into_iter()
                    .enumerate()
                    .filter(|(index, _)| (start..end).contains(&(index + from)))
                    .map(|(_, name)| name)
                    .collect()
            };
            let folder_count = folders.len();
            ListInDirectoryResponse {
                request_id: list.request_id,
                success: true,
                path: list.path,
                folders: window(folders, 0),
                files: include_files.then(|| window(files, folder_count)),
                has_more: end < total,
                total: Some(total as u64),
                error: None,
            }
        }
        Err(error) => ListInDirectoryResponse {
            request_id: list.request_id,
            success: false,
            path: list.path,
            error: Some(error),
            ..Default::default()
        },
    };
    caller.send(answer);
}

/// The entries of `directory` down to `depth` levels, paths relative to `root`, depth first by
/// name; whether entries deeper than `depth` exist. Symbolic links to directories are not
/// followed (listed as files), so a link cycle cannot loop.
fn tree(root: &Path, depth: u64) -> Result<(Vec<TreeEntry>, bool), String> {
    fn walk(
        root: &Path,
        directory: &Path,
        depth: u64,
        entries: &mut Vec<TreeEntry>,
        deeper: &mut bool,
    ) -> Result<(), String> {
        let mut children = std::fs::read_dir(directory)
            .map_err(|error| node_error(&error, "scandir", directory))?
            .filter_map(Result::ok)
            .map(|entry| (entry.file_name(), entry.file_type().is_ok_and(|kind| kind.is_dir())))
            .collect::<Vec<_>>();
        children.sort();
        for (name, is_dir) in children {
            if entries.len() >= MAX_TREE_ENTRIES {
                return Ok(());
            }
            let path = directory.join(&name);
            let relative = path.strip_prefix(root).unwrap_or(&path).display().to_string();
            entries.push(TreeEntry {
                path: relative,
                kind: if is_dir {
                    FileEntryKind::Dir
                } else {
                    FileEntryKind::File
                },
            });
            if !is_dir {
                continue;
            }
            if depth > 1 {
                // An unreadable subdirectory is listed, without its entries.
                let _ = walk(root, &path, depth - 1, entries, deeper);
            } else if !*deeper {
                *deeper = std::fs::read_dir(&path).is_ok_and(|mut children| children.next().is_some());
            }
        }
        Ok(())
    }
    let mut entries = Vec::new();
    let mut deeper = false;
    if depth > 0 {
        walk(root, root, depth, &mut entries, &mut deeper)?;
    } else {
        std::fs::read_dir(root).map_err(|error| node_error(&error, "scandir", root))?;
    }
    Ok((entries, deeper))
}

/// `get_tree`: the subtree under `path`, `depth` levels deep (at most [`MAX_TREE_ENTRIES`]).
pub(super) async fn get_tree(caller: &dyn Caller, get: GetTree) {
    let root = resolve(caller, &get.path);
    let depth = get.depth;
    let answer = match blocking(move || tree(&root, depth)).await {
        Ok((entries, has_more_depth)) => GetTreeResponse {
            request_id: get.request_id,
            success: true,
            path: get.path,
            entries,
            has_more_depth,
            error: None,
        },
        Err(error) => GetTreeResponse {
            request_id: get.request_id,
            success: false,
            path: get.path,
            error: Some(error),
            ..Default::default()
        },
    };
    caller.send(answer);
}

/// A file's bytes, if it is a file of at most [`MAX_DOCUMENT_BYTES`]; `io_error` words a
/// failure (a directory is [`ErrorKind::IsADirectory`]).
fn read_bounded(path: &Path, io_error: impl Fn(&std::io::Error) -> String) -> Result<Vec<u8>, String> {
    let metadata = std::fs::metadata(path).map_err(|error| io_error(&error))?;
    if metadata.is_dir() {
        return Err(io_error(&ErrorKind::IsADirectory.into()));
    }
    if metadata.len() > MAX_DOCUMENT_BYTES as u64 {
        return Err(format!(
            "File too large: {} bytes (this server reads at most {MAX_DOCUMENT_BYTES})",
            metadata.len()
        ));
    }
    std::fs::read(path).map_err(|error| io_error(&error))
}

/// `read_file`: the content as UTF-8 text (failing on a file that is not), or base64.
pub(super) async fn read_file(caller: &dyn Caller, read: ReadFile) {
    let path = resolve(caller, &read.path);
    let encoding = read.encoding.unwrap_or(FileEncoding::Utf8);
    let content = blocking(move || {
        // Node opens a directory, then fails to read it.
        let bytes = read_bounded(&path, |error| match error.kind() {
            ErrorKind::IsADirectory => "EISDIR: illegal operation on a directory, read".to_owned(),
            _ => node_error(error, "open", &path),
        })?;
        match encoding {
            FileEncoding::Utf8 => String::from_utf8(bytes)
                .map_err(|_| "File is not valid UTF-8 text; read it with encoding \"base64\"".to_owned()),
            FileEncoding::Base64 => Ok(data_encoding::BASE64.encode(&bytes)),
        }
    })
    .await;
    caller.send(ReadFileResponse {
        request_id: read.request_id,
        success: content.is_ok(),
        path: read.path,
        encoding: content.is_ok().then_some(encoding),
        error: content.as_ref().err().cloned(),
        content: content.ok(),
    });
}

/// Overwrites (or creates) the file at `path`; its parent directory must exist.
async fn overwrite(caller: &dyn Caller, path: &str, content: String) -> Result<(), String> {
    let path = resolve(caller, path);
    blocking(move || std::fs::write(&path, content).map_err(|error| node_error(&error, "open", &path))).await
}

/// `write_file`: overwrites the file with `content`.
pub(super) async fn write_file(caller: &dyn Caller, write: WriteFile) {
    let result = overwrite(caller, &write.path, write.content).await;
    caller.send(WriteFileResponse {
        request_id: write.request_id,
        success: result.is_ok(),
        path: write.path,
        error: result.err(),
    });
}

/// Real Letta's (its Edit tool's) text for an I/O error on `path` while editing it.
fn edit_error(error: &std::io::Error, path: &Path, cwd: &str) -> String {
    match error.kind() {
        ErrorKind::NotFound => format!(
            "File does not exist. Attempted path: {}. Current working directory: {cwd}",
            path.display()
        ),
        ErrorKind::PermissionDenied => format!("Permission denied: {}", path.display()),
        ErrorKind::IsADirectory => format!("Path is a directory: {}", path.display()),
        _ => node_error(error, "open", path),
    }
}

/// Real Letta's text for a file that is not UTF-8 text.
fn not_utf8(bytes: &[u8], path: &Path) -> String {
    let bom = match bytes {
        [0xff, 0xfe, ..] => "UTF-16LE",
        [0xfe, 0xff, ..] => "UTF-16BE",
        _ => {
            return format!(
                "File is not valid UTF-8 text: {}. The file contains bytes that cannot be decoded as UTF-8.",
                path.display()
            );
        }
    };
    format!(
        "File is not valid UTF-8 text: {}. Detected {bom} BOM; convert the file to UTF-8 and retry.",
        path.display()
    )
}

/// Real Letta's text for an `old_string` that is not in `content`, with its guesses why.
fn not_found(old: &str, content: &str) -> String {
    let content = content.replace("\r\n", "\n");
    let mut hints = Vec::new();
    let trimmed = old.trim();
    if trimmed != old && !trimmed.is_empty() && content.contains(trimmed) {
        hints.push("Leading or trailing whitespace differs from the file.");
    }
    let smart = [('\'', '\u{2019}'), ('"', '\u{201C}'), ('"', '\u{201D}')];
    if smart
        .iter()
        .any(|&(plain, curly)| old.contains(plain) && content.contains(&old.replace(plain, &curly.to_string())))
    {
        hints.push("Quote characters may differ (straight vs smart quotes).");
    }
    let collapse = |text: &str| text.split_whitespace().collect::<Vec<_>>().join(" ");
    let collapsed = collapse(old);
    if collapsed.chars().count() >= 20 && collapsed != old && collapse(&content).contains(&collapsed) {
        hints.push("Line breaks or indentation may not match exactly.");
    }
    if hints.is_empty() {
        hints.push("The snippet may be stale; re-read the file and copy exact text.");
    }
    format!(
        "String to replace not found in file.\nString: {old}\nPossible mismatch reasons:\n- {}",
        hints.join("\n- ")
    )
}

/// Applies `edit` to the file at `path`: the new content, how many occurrences were replaced,
/// and the line of the first; else real Letta's error text. The strings are checked before the
/// file is read, in real Letta's order.
fn edit_text(edit: &EditFile, path: &Path, cwd: &str) -> Result<(String, usize, usize), String> {
    let occurrences = match (edit.expected_replacements, edit.replace_all) {
        (Some(0), _) => return Err("expected_replacements must be a positive integer when provided.".into()),
        (Some(expected), _) => Occurrences::Exactly(usize::try_from(expected).unwrap_or(usize::MAX)),
        (None, Some(true)) => Occurrences::All,
        (None, _) => Occurrences::One,
    };
    let wording = |error| match error {
        ReplaceError::Empty => "old_string cannot be empty. Provide the exact text you want to replace.".to_owned(),
        ReplaceError::Identical => "No changes to make: old_string and new_string are exactly the same.".to_owned(),
        ReplaceError::NotFound => not_found(&edit.old_string, ""),
        ReplaceError::Count { expected, found } => format!(
            "Expected {expected} occurrence{} but found {found}. Update old_string to be more specific, or set \
             replace_all/expected_replacements correctly.",
            if expected == 1 { "" } else { "s" }
        ),
        ReplaceError::TooLarge { bytes } => {
            format!("The edited file would be {bytes} bytes (this server writes at most {MAX_DOCUMENT_BYTES})")
        }
    };
    check_strings(&edit.old_string, &edit.new_string).map_err(wording)?;
    let bytes = read_bounded(path, |error| edit_error(error, path, cwd))?;
    let content = String::from_utf8(bytes).map_err(|error| not_utf8(error.as_bytes(), path))?;
    let replaced = replace(
        &content,
        &edit.old_string,
        &edit.new_string,
        occurrences,
        MAX_DOCUMENT_BYTES,
    )
    .map_err(|error| match error {
        ReplaceError::NotFound => not_found(&edit.old_string, &content),
        other => wording(other),
    })?;
    std::fs::write(path, &replaced.content).map_err(|error| edit_error(&error, path, cwd))?;
    Ok((replaced.content, replaced.count, replaced.first_line))
}

/// `edit_file`: replaces `old_string` in the file (once, every time with `replace_all`, or
/// exactly `expected_replacements` times), as real Letta's Edit tool does, and answers with the
/// count and the line of the first replacement. The file keeps its line endings (see
/// [`replace`]). The file and the result are at most [`MAX_DOCUMENT_BYTES`].
pub(super) async fn edit_file(caller: &dyn Caller, edit: EditFile) {
    let cwd = caller.engine().settings.boot_cwd();
    let path = resolve(caller, &edit.file_path);
    let (request_id, file_path) = (edit.request_id.clone(), edit.file_path.clone());
    let edited = blocking(move || edit_text(&edit, &path, &cwd).map(|edited| (path, edited))).await;
    let answer = match edited {
        Ok((path, (content, count, first_line))) => {
            // As real Letta Code does, the new content goes to this socket first (no envelope:
            // it is no runtime's event).
            caller.send(ServerFrame::FileOps(MaybeEnveloped {
                body: FileOps::agent_edit(file_path.clone(), content),
                envelope: None,
            }));
            EditFileResponse {
                request_id,
                success: true,
                file_path,
                message: Some(format!(
                    "Successfully replaced {count} occurrence{} in {}",
                    if count == 1 { "" } else { "s" },
                    path.display()
                )),
                replacements: count as u64,
                start_line: Some(first_line as u64),
                error: None,
            }
        }
        Err(error) => EditFileResponse {
            request_id,
            success: false,
            file_path,
            message: None,
            replacements: 0,
            start_line: None,
            error: Some(error),
        },
    };
    caller.send(answer);
}

/// An editor's `file_ops`: with `document_content`, the file is overwritten with it. No answer,
/// as on real Letta; a write that fails is reported in this project's `error` frame (code
/// `internal`). Without `document_content` there is nothing to apply.
pub(super) async fn file_ops(caller: &dyn Caller, ops: FileOps) {
    if let Some(content) = ops.document_content
        && let Err(error) = overwrite(caller, &ops.path, content).await
    {
        caller.send(ErrorFrame {
            request_id: None,
            code: ErrorCode::Internal,
            message: error,
            frame_type: Some(FileOps::TYPE.to_owned()),
        });
    }
}
