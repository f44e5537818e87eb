//! Watching files (docs/protocol.md §4.1): `watch_file`, `unwatch_file`, and the `file_changed`
//! pushed to the watching connection when a watched file changes.
//!
//! Changes come from the operating system's file notifications (inotify, FSEvents, … through
//! `notify`), debounced as real Letta's 150 ms timer does: a path's events are pushed once, when
//! it has been quiet for [`DEBOUNCE`] (a file written without pause is reported when the writes
//! stop). The OS watches the file's directory, not the file, and events are filtered by name: an editor
//! that saves by writing a new file and renaming it over the old one is seen, and so is a file
//! deleted and created again (real Letta Code's `fs.watch` follows the old file instead, and
//! stops at a deletion). A deleted file pushes nothing (it has no modification time); its
//! watch stays until `unwatch_file`. Watching a directory reports changes of its entries.
//!
//! As on real Letta, watches are per connection and per path as the client wrote it,
//! counted: watching a path twice needs two `unwatch_file`s, and an `unwatch_file` of a path
//! not watched does nothing. A connection watches at most [`MAX_WATCHES`] paths; a
//! `watch_file` past it, or of a path that cannot be watched (it does not exist), is answered
//! with this project's `error` frame carrying its `request_id` (code `limit_exceeded`, or
//! `internal` with Node's text, `ENOENT: no such file or directory, watch '<path>'`); real Letta
//! ignores such a watch silently. Every watch of a connection ends when it closes: its OS
//! watcher (one per connection with watches, made on the first and dropped with the last) goes
//! with it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime};

use letta_app_server_protocol::{ErrorCode, ErrorFrame, FileChanged, FrameType, UnwatchFile, WatchFile};
use notify_debouncer_mini::notify::{RecommendedWatcher, RecursiveMode};
use notify_debouncer_mini::{DebounceEventResult, DebouncedEventKind, Debouncer, new_debouncer};

use super::Caller;
use super::files::{node_error, resolve};
use crate::sync::lock;

/// Paths one connection may watch at once (each counted once, however many times watched).
pub const MAX_WATCHES: usize = 256;

/// How long a watched path must be quiet before its change is pushed.
pub const DEBOUNCE: Duration = Duration::from_millis(150);

/// The watches of one connection.
#[derive(Default)]
pub struct Watches {
    state: Mutex<State>,
}

impl std::fmt::Debug for Watches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = lock(&self.state);
        let watched = lock(&state.table).watches.len();
        f.debug_struct("Watches").field("watched", &watched).finish()
    }
}

#[derive(Default)]
struct State {
    /// Set when the connection closed: no watch starts afterwards.
    closed: bool,
    /// The OS watcher, made on the first watch and dropped with the last.
    debouncer: Option<Debouncer<RecommendedWatcher>>,
    /// What is watched, shared with the watcher's thread.
    table: Arc<Mutex<Table>>,
}

#[derive(Default)]
struct Table {
    /// The path as the client wrote it → its watch.
    watches: HashMap<String, Watch>,
    /// A directory the OS watches → how many watches need it.
    directories: HashMap<PathBuf, usize>,
}

struct Watch {
    /// The file (symbolic links resolved), or the directory.
    target: PathBuf,
    /// The directory the OS watches: the file's, or the watched directory itself.
    directory: PathBuf,
    /// `watch_file`s of the path not yet unwatched.
    count: usize,
}

impl Watch {
    /// Whether a change of `changed` is a change of what this watches.
    fn sees(&self, changed: &Path) -> bool {
        changed == self.target || (self.directory == self.target && changed.parent() == Some(self.target.as_path()))
    }
}

impl Watches {
    /// Ends every watch of the connection (it closed); none starts afterwards.
    pub fn close(&self) {
        let mut state = lock(&self.state);
        state.closed = true;
        state.debouncer = None;
        let mut table = lock(&state.table);
        table.watches.clear();
        table.directories.clear();
    }
}

/// `watch_file`: starts watching the path (relative to the boot working directory), or counts
/// one more watch of a path watched already. No answer, unless it cannot start.
pub(super) fn watch(caller: &Arc<dyn Caller>, watch: WatchFile) {
    let refuse = |code, message: String| {
        caller.send(ErrorFrame {
            request_id: Some(watch.request_id.clone()),
            code,
            message,
            frame_type: Some(WatchFile::TYPE.to_owned()),
        });
    };
    let mut state = lock(&caller.watches().state);
    if state.closed {
        return;
    }
    let shared = Arc::clone(&state.table);
    let mut table = lock(&shared);
    if let Some(watched) = table.watches.get_mut(&watch.path) {
        watched.count += 1;
        return;
    }
    if table.watches.len() >= MAX_WATCHES {
        return refuse(
            ErrorCode::LimitExceeded,
            format!("too many watched files: a connection may watch {MAX_WATCHES} at once"),
        );
    }
    let path = resolve(caller.as_ref(), &watch.path);
    let target = match std::fs::canonicalize(&path) {
        Ok(target) => target,
        Err(error) => return refuse(ErrorCode::Internal, node_error(&error, "watch", &path)),
    };
    let directory = match target.parent() {
        Some(parent) if !target.is_dir() => parent.to_path_buf(),
        _ => target.clone(),
    };
    if !table.directories.contains_key(&directory) {
        let debouncer = match &mut state.debouncer {
            Some(debouncer) => debouncer,
            empty => match new_debouncer(DEBOUNCE, pusher(Arc::downgrade(caller), Arc::clone(&shared))) {
                Ok(debouncer) => empty.insert(debouncer),
                Err(error) => return refuse(ErrorCode::Internal, format!("cannot watch files: {error}")),
            },
        };
        if let Err(error) = debouncer.watcher().watch(&directory, RecursiveMode::NonRecursive) {
            if table.watches.is_empty() {
                state.debouncer = None;
            }
            return refuse(ErrorCode::Internal, format!("cannot watch {}: {error}", path.display()));
        }
    }
    *table.directories.entry(directory.clone()).or_default() += 1;
    table.watches.insert(
        watch.path,
        Watch {
            target,
            directory,
            count: 1,
        },
    );
}

/// `unwatch_file`: counts one watch of the path off; the last one stops watching it. A path
/// not watched is ignored, as on real Letta.
pub(super) fn unwatch(caller: &Arc<dyn Caller>, unwatch: UnwatchFile) {
    let mut state = lock(&caller.watches().state);
    let shared = Arc::clone(&state.table);
    let mut table = lock(&shared);
    let Some(watched) = table.watches.get_mut(&unwatch.path) else {
        return;
    };
    watched.count -= 1;
    if watched.count > 0 {
        return;
    }
    let Some(Watch { directory, .. }) = table.watches.remove(&unwatch.path) else {
        return;
    };
    let needed = table.directories.get_mut(&directory).map(|count| {
        *count -= 1;
        *count
    });
    if needed == Some(0) {
        table.directories.remove(&directory);
        if let Some(debouncer) = &mut state.debouncer {
            // Fails only when the directory is gone, and its OS watch with it.
            let _ = debouncer.watcher().unwatch(&directory);
        }
    }
    if table.watches.is_empty() {
        state.debouncer = None;
    }
}

/// What the watcher's thread does with each batch of debounced changes: a `file_changed` for
/// every watch that sees one, with the file's modification time (none for a file that is
/// gone). The debouncer's reports of a path still changing (`AnyContinuous`, which it makes for
/// any burst of more than one event) are left out: the change is reported once it is quiet.
fn pusher(caller: Weak<dyn Caller>, table: Arc<Mutex<Table>>) -> impl FnMut(DebounceEventResult) + Send + 'static {
    move |events| {
        let (Ok(events), Some(caller)) = (events, caller.upgrade()) else {
            return;
        };
        let changed: HashMap<String, PathBuf> = {
            let table = lock(&table);
            table
                .watches
                .iter()
                .filter(|(_, watch)| {
                    events
                        .iter()
                        .any(|event| event.kind == DebouncedEventKind::Any && watch.sees(&event.path))
                })
                .map(|(path, watch)| (path.clone(), watch.target.clone()))
                .collect()
        };
        for (path, target) in changed {
            let Ok(modified) = std::fs::metadata(&target).and_then(|metadata| metadata.modified()) else {
                continue;
            };
            caller.send(FileChanged {
                path,
                last_modified: milliseconds(modified),
            });
        }
    }
}

/// A modification time in whole milliseconds since the Unix epoch, as real Letta rounds it.
fn milliseconds(time: SystemTime) -> f64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |since| (since.as_secs_f64() * 1000.0).round())
}
