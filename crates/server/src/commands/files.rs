//! The files group (docs/protocol.md §4.1): `list_in_directory`, `get_tree`, `read_file`,
//! `write_file`, and the `file_ops` an editor sends with `document_content`.
//!
//! These commands come from the controller, which authenticated as the device's user, not from
//! the model: no permission mode applies to them, as on real Letta. A relative path is resolved
//! against the boot working directory. Errors carry Node's texts, as real Letta's do.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use letta_app_server_protocol::{
    ErrorCode, ErrorFrame, FileEncoding, FileEntryKind, FileOps, FrameType, GetTree, GetTreeResponse, ListInDirectory,
    ListInDirectoryResponse, ReadFile, ReadFileResponse, TreeEntry, WriteFile, WriteFileResponse,
};

use super::Caller;
use crate::limits::{MAX_DOCUMENT_BYTES, MAX_PAGE_ITEMS};

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

/// A file's bytes, if it is a file of at most [`MAX_DOCUMENT_BYTES`].
fn read_bounded(path: &Path) -> Result<Vec<u8>, String> {
    let metadata = std::fs::metadata(path).map_err(|error| node_error(&error, "open", path))?;
    if metadata.is_dir() {
        return Err("EISDIR: illegal operation on a directory, read".into());
    }
    if metadata.len() > MAX_DOCUMENT_BYTES as u64 {
        return Err(format!(
            "File too large: {} bytes (this server reads at most {MAX_DOCUMENT_BYTES})",
            metadata.len()
        ));
    }
    std::fs::read(path).map_err(|error| node_error(&error, "open", path))
}

/// `read_file`: the content as UTF-8 text (failing on a file that is not), or base64.
pub(super) async fn read_file(caller: &dyn Caller, read: ReadFile) {
    let path = resolve(caller, &read.path);
    let encoding = read.encoding.unwrap_or(FileEncoding::Utf8);
    let content = blocking(move || {
        let bytes = read_bounded(&path)?;
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
