//! The memory group (docs/protocol.md §4.2): `enable_memfs`, `list_memory`, `read_memory_file`,
//! `write_memory_file`, `delete_memory_file`, `memory_history`, `memory_file_at_ref` and
//! `memory_commit_diff`, on the agent's memory repository (see [`crate::memory`]).
//!
//! Every command but `enable_memfs` needs the agent to have a repository. Writes and deletions
//! are commits, each followed by `memory_updated` for the changed path (to the client that made
//! them, as on real Letta) before the answer.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use letta_app_server_protocol::{
    DeleteMemoryFile, DeleteMemoryFileResponse, EnableMemfs, EnableMemfsResponse, ListMemory, ListMemoryResponse,
    MemoryCommitDiff, MemoryCommitDiffResponse, MemoryFileAtRef, MemoryFileAtRefResponse, MemoryFileEncoding,
    MemoryHistory, MemoryHistoryCommitEntry, MemoryHistoryResponse, MemoryUpdated, ReadMemoryFile,
    ReadMemoryFileResponse, WriteMemoryFile, WriteMemoryFileResponse,
};

use super::Caller;
use crate::engine::{Engine, memfs};
use crate::memory::{self, MAX_FILE_BYTES, Memory, files, repo};

/// Files in one `list_memory_response` chunk, as real Letta sends them.
const CHUNK_FILES: usize = 5;
/// Bytes of content after which a chunk ends early, so that chunks stay far below a connection's
/// outbound limit.
const CHUNK_BYTES: usize = crate::limits::MAX_PAGE_BYTES;
/// Commits `memory_history` lists when the request names no `limit`, as real Letta.
const DEFAULT_HISTORY: u64 = 50;
/// The most commits one `memory_history` lists.
const MAX_HISTORY: u64 = crate::limits::MAX_PAGE_ITEMS as u64;

/// `enable_memfs`: creates the agent's memory repository if it has none, answers with its
/// directory, then, as real Letta, sends `memory_updated` for every path (`*`); the subscribers of
/// the agent's loaded conversations get a device status showing the directory.
pub(super) async fn enable_memfs(caller: &Arc<dyn Caller>, enable: EnableMemfs) {
    let engine = caller.engine();
    let created = memfs::enable(engine, &enable.agent_id).await;
    let success = created.is_ok();
    let (memory_directory, error) = match created {
        Ok(directory) => (Some(directory.display().to_string()), None),
        Err(error) => (None, Some(error)),
    };
    caller.send(EnableMemfsResponse {
        request_id: enable.request_id,
        success,
        memory_directory,
        error,
    });
    if !success {
        return;
    }
    updated(caller, "*".into());
    for conversation in engine.loaded() {
        if conversation.scope.agent_id.as_deref() == Some(enable.agent_id.as_str()) {
            conversation.settings_changed(engine).await;
        }
    }
}

/// `list_memory`: the agent's markdown files and images, five to a chunk (fewer when their
/// content is large), the last with `done: true`; one empty chunk when there are none, or when
/// the agent has no memory repository (`memfs_enabled: false`).
pub(super) async fn list_memory(caller: &Arc<dyn Caller>, list: ListMemory) {
    let request_id = list.request_id.clone();
    let chunk = |entries, done, total| ListMemoryResponse {
        request_id: request_id.clone(),
        entries,
        done,
        total,
        success: true,
        error: None,
        memfs_enabled: Some(true),
        memfs_initialized: Some(true),
    };
    let root = match memfs::of(caller.engine(), &list.agent_id).await {
        Ok(Some(memory)) => memory.root,
        Ok(None) => {
            return caller.send(ListMemoryResponse {
                memfs_enabled: Some(false),
                memfs_initialized: Some(false),
                ..chunk(Vec::new(), true, 0)
            });
        }
        Err(error) => {
            return caller.send(ListMemoryResponse {
                success: false,
                error: Some(error),
                ..chunk(Vec::new(), true, 0)
            });
        }
    };
    let scan_root = root.clone();
    let Ok(paths) = blocking(move || Ok(files::scan(&scan_root))).await else {
        return caller.send(chunk(Vec::new(), true, 0));
    };
    let total = paths.len() as u64;
    let markdown = Arc::new(list.include_references.unwrap_or(false).then(|| {
        paths
            .iter()
            .filter(|path| path.to_ascii_lowercase().ends_with(".md"))
            .cloned()
            .collect()
    }));
    let mut rest = paths.into_iter();
    // An entry read that did not fit the chunk before: the next one starts with it.
    let mut held = None;
    loop {
        let mut batch = Vec::new();
        let mut bytes = 0;
        while batch.len() < CHUNK_FILES {
            let entry = match held.take() {
                Some(entry) => entry,
                None => {
                    let Some(path) = rest.next() else { break };
                    let (root, markdown) = (root.clone(), Arc::clone(&markdown));
                    let read = move || Ok(files::entry(&root, &path, markdown.as_ref().as_ref()));
                    let Ok(entry) = blocking(read).await else { continue };
                    entry
                }
            };
            let size = files::json_bytes(&entry.content);
            if !batch.is_empty() && bytes + size > CHUNK_BYTES {
                held = Some(entry);
                break;
            }
            bytes += size;
            batch.push(entry);
        }
        let done = held.is_none() && rest.len() == 0;
        // Only this client reads the listing: it waits for the client rather than filling its
        // queue.
        caller.room().await;
        caller.send(chunk(batch, done, total));
        if done {
            return;
        }
    }
}

/// `read_memory_file`: a file of the working tree, as text or base64.
pub(super) async fn read_memory_file(engine: &Engine, read: ReadMemoryFile) -> ReadMemoryFileResponse {
    let encoding = read.encoding.unwrap_or_default();
    let result = async {
        let path = memory::relative_path(&read.path)?;
        let Memory { root, .. } = repository(engine, &read.agent_id, "").await?;
        let file = path.clone();
        let bytes = blocking(move || {
            let full = memory::inside(&root, &file)?;
            let size = std::fs::metadata(&full)
                .map_err(|error| format!("{file}: {error}"))?
                .len();
            if size > MAX_FILE_BYTES as u64 {
                return Err(format!(
                    "{file} is {size} bytes, over the {MAX_FILE_BYTES} bytes this server reads"
                ));
            }
            std::fs::read(&full).map_err(|error| format!("{file}: {error}"))
        })
        .await?;
        let content = match encoding {
            MemoryFileEncoding::Utf8 => String::from_utf8_lossy(&bytes).into_owned(),
            MemoryFileEncoding::Base64 => BASE64.encode(bytes),
        };
        // Escaped, text of control characters grows up to six times; base64 only by a third.
        if files::json_bytes(&content) > CHUNK_BYTES * 3 / 2 {
            return Err(format!(
                "{path} is too large as JSON text: read it with encoding base64"
            ));
        }
        Ok::<_, String>((path, content))
    }
    .await;
    let (path, content, error) = match result {
        Ok((path, content)) => (path, Some(content), None),
        Err(error) => (read.path, None, Some(error)),
    };
    ReadMemoryFileResponse {
        request_id: read.request_id,
        agent_id: read.agent_id,
        path,
        content,
        encoding,
        success: error.is_none(),
        error,
    }
}

/// `write_memory_file`: writes the file and commits it (`Update memory file <path>` unless the
/// request gives a message); `memory_updated` precedes the answer when a commit was made.
pub(super) async fn write_memory_file(caller: &Arc<dyn Caller>, write: WriteMemoryFile) {
    const COMMAND: &str = "write_memory_file: ";
    let result = async {
        let path = memory::relative_path(&write.path).map_err(|error| format!("{COMMAND}{error}"))?;
        let bytes = match write.encoding.unwrap_or_default() {
            MemoryFileEncoding::Utf8 => write.content.into_bytes(),
            MemoryFileEncoding::Base64 => BASE64
                .decode(write.content.trim())
                .map_err(|error| format!("{COMMAND}content is not base64: {error}"))?,
        };
        let Memory { root, author } = repository(caller.engine(), &write.agent_id, COMMAND).await?;
        let message = commit_message(write.commit_message.as_deref(), "Update", &path);
        let file = path.clone();
        let sha = blocking(move || {
            let full = memory::inside(&root, &file)?;
            if let Some(parent) = full.parent() {
                std::fs::create_dir_all(parent).map_err(|error| format!("{file}: {error}"))?;
            }
            std::fs::write(&full, bytes).map_err(|error| format!("{file}: {error}"))?;
            repo::commit(&root, std::slice::from_ref(&file), &message, &author)
        })
        .await?;
        Ok::<_, String>((path, sha))
    }
    .await;
    let response = WriteMemoryFileResponse {
        request_id: write.request_id,
        agent_id: write.agent_id,
        ..Default::default()
    };
    caller.send(match committed(caller, result) {
        Ok((path, commit_sha)) => WriteMemoryFileResponse {
            path,
            success: true,
            committed: Some(commit_sha.is_some()),
            commit_sha,
            ..response
        },
        Err(error) => WriteMemoryFileResponse {
            path: write.path,
            error: Some(error),
            ..response
        },
    });
}

/// `delete_memory_file`: removes the file and commits that (`Delete memory file <path>` unless
/// the request gives a message); a file already absent succeeds without a commit.
pub(super) async fn delete_memory_file(caller: &Arc<dyn Caller>, delete: DeleteMemoryFile) {
    const COMMAND: &str = "delete_memory_file: ";
    let result = async {
        let path = memory::relative_path(&delete.path).map_err(|error| format!("{COMMAND}{error}"))?;
        let Memory { root, author } = repository(caller.engine(), &delete.agent_id, COMMAND).await?;
        let message = commit_message(delete.commit_message.as_deref(), "Delete", &path);
        let file = path.clone();
        let sha = blocking(move || {
            let full = memory::inside(&root, &file)?;
            // A file already gone (removed by another program, or a deletion whose commit
            // failed) is committed too: its commit removes it from `HEAD`, if it is there.
            match std::fs::remove_file(&full) {
                Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(format!("{file}: {error}")),
                _ => repo::commit(&root, std::slice::from_ref(&file), &message, &author),
            }
        })
        .await?;
        Ok::<_, String>((path, sha))
    }
    .await;
    let response = DeleteMemoryFileResponse {
        request_id: delete.request_id,
        agent_id: delete.agent_id,
        ..Default::default()
    };
    caller.send(match committed(caller, result) {
        Ok((path, commit_sha)) => DeleteMemoryFileResponse {
            path,
            success: true,
            committed: Some(commit_sha.is_some()),
            commit_sha,
            ..response
        },
        Err(error) => DeleteMemoryFileResponse {
            path: delete.path,
            error: Some(error),
            ..response
        },
    });
}

/// `memory_history`: the commits of the memory, or of one path, newest first.
pub(super) async fn memory_history(engine: &Engine, history: MemoryHistory) -> MemoryHistoryResponse {
    let limit = history.limit.unwrap_or(DEFAULT_HISTORY).min(MAX_HISTORY) as usize;
    let file_path = history.file_path.clone().unwrap_or_default();
    let result = async {
        let path = match file_path.as_str() {
            "" => None,
            path => Some(memory::relative_path(path)?),
        };
        let Memory { root, .. } = repository(engine, &history.agent_id, "").await?;
        blocking(move || repo::history(&root, path.as_deref(), limit)).await
    }
    .await;
    let (commits, error) = match result {
        Ok(commits) => (commits, None),
        Err(error) => (Vec::new(), Some(error)),
    };
    MemoryHistoryResponse {
        request_id: history.request_id,
        file_path,
        commits: commits
            .into_iter()
            .map(|commit| MemoryHistoryCommitEntry {
                sha: commit.sha,
                message: commit.subject,
                timestamp: commit.timestamp,
                author_name: Some(commit.author),
            })
            .collect(),
        success: error.is_none(),
        error,
    }
}

/// `memory_file_at_ref`: a file as it was at a revision.
pub(super) async fn memory_file_at_ref(engine: &Engine, at: MemoryFileAtRef) -> MemoryFileAtRefResponse {
    let result = async {
        let path = memory::relative_path(&at.file_path)?;
        let Memory { root, .. } = repository(engine, &at.agent_id, "").await?;
        let rev = at.git_ref.clone();
        blocking(move || repo::file_at(&root, &path, &rev)).await
    }
    .await;
    let (content, error) = split(result);
    MemoryFileAtRefResponse {
        request_id: at.request_id,
        file_path: at.file_path,
        git_ref: at.git_ref,
        content,
        success: error.is_none(),
        error,
    }
}

/// `memory_commit_diff`: the changes one commit made, as `git show` prints them.
pub(super) async fn memory_commit_diff(engine: &Engine, diff: MemoryCommitDiff) -> MemoryCommitDiffResponse {
    let result = async {
        let Memory { root, .. } = repository(engine, &diff.agent_id, "").await?;
        let sha = diff.sha.clone();
        blocking(move || repo::commit_diff(&root, &sha)).await
    }
    .await;
    let (diff_text, error) = split(result);
    MemoryCommitDiffResponse {
        request_id: diff.request_id,
        sha: diff.sha,
        diff: diff_text,
        success: error.is_none(),
        error,
    }
}

/// The agent's memory repository, or why there is none (`prefix` names the command in the
/// message, as real Letta's write and delete errors do).
async fn repository(engine: &Engine, agent_id: &str, prefix: &str) -> Result<Memory, String> {
    match memfs::of(engine, agent_id).await {
        Ok(Some(memory)) => Ok(memory),
        Ok(None) => Err(format!("{prefix}memfs is not enabled for this agent")),
        Err(error) => Err(format!("{prefix}{error}")),
    }
}

/// The message of a commit: the request's, or `<verb> memory file <path>`.
fn commit_message(given: Option<&str>, verb: &str, path: &str) -> String {
    match given.map(str::trim).filter(|message| !message.is_empty()) {
        Some(message) => message.to_owned(),
        None => format!("{verb} memory file {path}"),
    }
}

/// A write's or deletion's outcome, `memory_updated` sent first when it made a commit.
fn committed(
    caller: &Arc<dyn Caller>,
    result: Result<(String, Option<String>), String>,
) -> Result<(String, Option<String>), String> {
    if let Ok((path, Some(_))) = &result {
        updated(caller, path.clone());
    }
    result
}

/// Sends the client `memory_updated` for `path`.
fn updated(caller: &Arc<dyn Caller>, path: String) {
    caller.send(MemoryUpdated {
        affected_paths: vec![path],
        timestamp: crate::clock::now_millis(),
    });
}

/// Runs file-system work on a blocking thread.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> Result<T, String> + Send + 'static) -> Result<T, String> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| error.to_string())?
}

fn split(result: Result<String, String>) -> (Option<String>, Option<String>) {
    match result {
        Ok(value) => (Some(value), None),
        Err(error) => (None, Some(error)),
    }
}
