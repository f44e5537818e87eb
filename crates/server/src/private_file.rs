//! A JSON file only its owner may read, kept in memory: provider keys (`providers/auth.json`)
//! and agents' secrets (`secrets/agent-secrets.json`).
//!
//! The file is read when it is opened (and again while it could not be read), and rewritten
//! whole on each change: written to a new file created with owner-only permissions (0600, in a
//! 0700 directory), synced, then renamed over the old one, so it is never readable by others,
//! not even while it is written, and never half written.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::sync::lock;

/// A private JSON file and its contents in memory.
pub struct PrivateFile<T> {
    path: PathBuf,
    /// The contents as last read or written, or why the file could not be read.
    contents: Mutex<Result<T, String>>,
    /// Held while the file is rewritten, so that changes apply one after another.
    writing: tokio::sync::Mutex<()>,
}

impl<T: Serialize + DeserializeOwned + Default + Clone + Send + 'static> PrivateFile<T> {
    /// The file at `path` (`T::default()` when there is none).
    pub fn open(path: PathBuf) -> Self {
        let contents = read(&path);
        Self {
            path,
            contents: Mutex::new(contents),
            writing: tokio::sync::Mutex::new(()),
        }
    }

    /// The contents as last read, or why the file could not be read (then read again).
    pub fn current(&self) -> Result<T, String> {
        let mut contents = lock(&self.contents);
        if contents.is_err() {
            *contents = read(&self.path);
        }
        contents.clone()
    }

    /// Reads the contents as last read without copying them (`None` while the file cannot be
    /// read).
    pub fn with<R>(&self, read: impl FnOnce(&T) -> R) -> Option<R> {
        lock(&self.contents).as_ref().ok().map(read)
    }

    /// Applies `change` to the contents and rewrites the file (on a blocking thread); the new
    /// contents, or why they could not be read or written (nothing changed then). `change` may
    /// refuse, with its reason.
    pub async fn change(&self, change: impl FnOnce(&mut T) -> Result<(), String>) -> Result<T, String> {
        let _writing = self.writing.lock().await;
        let mut contents = self.current()?;
        change(&mut contents)?;
        let (path, written) = (self.path.clone(), contents.clone());
        tokio::task::spawn_blocking(move || write(&path, &written))
            .await
            .map_err(|error| format!("cannot write {}: {error}", self.path.display()))??;
        *lock(&self.contents) = Ok(contents.clone());
        Ok(contents)
    }
}

fn read<T: DeserializeOwned + Default>(path: &Path) -> Result<T, String> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|error| format!("cannot read {}: {error}", path.display())),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(T::default()),
        Err(error) => Err(format!("cannot read {}: {error}", path.display())),
    }
}

/// Writes `contents` to `path` atomically, readable by its owner only.
fn write<T: Serialize>(path: &Path, contents: &T) -> Result<(), String> {
    let failed = |error: std::io::Error| format!("cannot write {}: {error}", path.display());
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(failed)?;
    // A directory that existed already is made owner-only too.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(failed)?;
    let json =
        serde_json::to_vec_pretty(contents).map_err(|error| format!("cannot encode {}: {error}", path.display()))?;
    let name = path.file_name().and_then(|name| name.to_str()).unwrap_or("file");
    let temporary = dir.join(format!("{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temporary)
        .and_then(|mut out| {
            out.write_all(&json)?;
            out.write_all(b"\n")?;
            out.sync_all()
        })
        .and_then(|()| std::fs::rename(&temporary, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written.map_err(failed)?;
    // The rename is durable once the directory is synced.
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(failed)
}

/// Creates (or empties) the file at `path` for writing, readable by its owner only, in an
/// owner-only directory made as needed: a subagent's or a background command's output file.
pub fn create(path: &Path) -> std::io::Result<std::fs::File> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
}

/// Deletes the oldest files of `dir` (by modification time) past `keep`, except those in
/// `except`: the output files of a kind of background task.
pub fn prune(dir: &Path, keep: usize, except: &[PathBuf]) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut files: Vec<(std::time::SystemTime, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_file()))
        .filter_map(|entry| Some((entry.metadata().ok()?.modified().ok()?, entry.path())))
        .collect();
    if files.len() <= keep {
        return;
    }
    files.sort();
    let excess = files.len() - keep;
    for (_, path) in files.iter().filter(|(_, path)| !except.contains(path)).take(excess) {
        let _ = std::fs::remove_file(path);
    }
}
