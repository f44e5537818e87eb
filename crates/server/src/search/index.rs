//! The file index of `search_files`: the files under a directory that are not ignored, with
//! their modification times, matched fuzzily with nucleo (the matcher of the Helix editor); and
//! a bounded cache of indexes, one per directory.
//!
//! An index is built by walking the directory with the `ignore` crate on two threads, honouring
//! `.gitignore`, `.ignore` and `.git/info/exclude` (even outside a git repository), including
//! hidden files but never `.git`, and not following symbolic links. It holds at most
//! [`MAX_INDEXED_FILES`] files. The cache holds at most [`MAX_CACHED_INDEXES`] indexes, dropping
//! the least recently used. An index is served as long as it is cached: one older than
//! [`FRESH_FOR`] is served once more while a fresh one is built in the background (one build at
//! a time per directory), so a search never waits for a walk, except the first one of a
//! directory.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use ignore::{WalkBuilder, WalkState};
use nucleo_matcher::pattern::{CaseMatching, Normalization, Pattern};
use nucleo_matcher::{Config, Matcher, Utf32Str};

use crate::sync::lock;

/// Files one index holds at most; the files past it (in walk order) are not found.
pub const MAX_INDEXED_FILES: usize = 200_000;
/// Indexes (directories) the cache holds at most.
pub const MAX_CACHED_INDEXES: usize = 4;
/// How long an index is served without being rebuilt in the background.
pub const FRESH_FOR: Duration = Duration::from_secs(2);
/// Threads that walk a directory.
const WALK_THREADS: usize = 2;

/// The files under one directory, with their modification order.
#[derive(Debug)]
pub struct FileIndex {
    /// Paths relative to the directory, `/`-separated, sorted.
    files: Vec<Box<str>>,
    /// Indexes into `files`, most recently modified first (ties by path).
    recency: Vec<u32>,
    /// When the walk began.
    built: Instant,
}

impl FileIndex {
    /// Walks `root` (a directory) and indexes its files.
    pub fn build(root: &Path) -> io::Result<Self> {
        if !std::fs::metadata(root)?.is_dir() {
            return Err(io::ErrorKind::NotADirectory.into());
        }
        let built = Instant::now();
        let collected = Mutex::new(Vec::new());
        let count = AtomicUsize::new(0);
        let mut walker = WalkBuilder::new(root);
        walker
            .require_git(false)
            .hidden(false)
            .follow_links(false)
            .threads(WALK_THREADS)
            .filter_entry(|entry| entry.file_name() != ".git");
        walker.build_parallel().run(|| {
            let mut batch = Batch {
                files: Vec::new(),
                into: &collected,
            };
            let count = &count;
            Box::new(move |entry| {
                let Ok(entry) = entry else {
                    return WalkState::Continue;
                };
                if !entry.file_type().is_some_and(|kind| kind.is_file()) {
                    return WalkState::Continue;
                }
                if count.fetch_add(1, Ordering::Relaxed) >= MAX_INDEXED_FILES {
                    return WalkState::Quit;
                }
                let modified = entry.metadata().ok().and_then(|metadata| metadata.modified().ok());
                let path = entry.path().strip_prefix(root).unwrap_or(entry.path());
                batch.files.push((
                    path.to_string_lossy().into(),
                    modified.unwrap_or(SystemTime::UNIX_EPOCH),
                ));
                WalkState::Continue
            })
        });
        let mut files = collected
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        files.sort_unstable_by(|(a, _), (b, _)| a.cmp(b));
        let mut recency: Vec<u32> = (0..files.len() as u32).collect();
        recency.sort_by_key(|&index| Reverse(files[index as usize].1));
        Ok(Self {
            files: files.into_iter().map(|(path, _)| path).collect(),
            recency,
            built,
        })
    }

    /// The `limit` most recently modified files.
    pub fn recent(&self, limit: usize) -> Vec<&str> {
        self.recency
            .iter()
            .take(limit)
            .map(|&index| &*self.files[index as usize])
            .collect()
    }

    /// The `limit` files whose paths best match `query`, best first. The query is fzf's syntax,
    /// as nucleo reads it: words separated by spaces must all match; a word matches fuzzily
    /// (its characters in order), `'word` exactly, `^word` at the start, `word$` at the end,
    /// `!word` excludes. Case is ignored unless the query has an upper-case letter. Among equal
    /// scores, shorter paths come first, then by path.
    pub fn fuzzy(&self, query: &str, limit: usize) -> Vec<&str> {
        let pattern = Pattern::parse(query, CaseMatching::Smart, Normalization::Smart);
        let mut matcher = Matcher::new(Config::DEFAULT.match_paths());
        let mut buffer = Vec::new();
        // The best `limit` so far, worst on top.
        let mut best: BinaryHeap<Reverse<Rank>> = BinaryHeap::new();
        for (index, path) in self.files.iter().enumerate() {
            let Some(score) = pattern.score(Utf32Str::new(path, &mut buffer), &mut matcher) else {
                continue;
            };
            let rank = (score, Reverse(path.len()), Reverse(index));
            if best.len() < limit {
                best.push(Reverse(rank));
            } else if best.peek().is_some_and(|Reverse(worst)| rank > *worst) {
                best.pop();
                best.push(Reverse(rank));
            }
        }
        best.into_sorted_vec()
            .into_iter()
            .map(|Reverse((_, _, Reverse(index)))| &*self.files[index])
            .collect()
    }
}

/// How well a file matched, better when greater: its score, then a shorter path, then an
/// earlier one (its index in the sorted files).
type Rank = (u32, Reverse<usize>, Reverse<usize>);

/// One walking thread's files, added to the others' when the thread is done.
struct Batch<'a> {
    files: Vec<(Box<str>, SystemTime)>,
    into: &'a Mutex<Vec<(Box<str>, SystemTime)>>,
}

impl Drop for Batch<'_> {
    fn drop(&mut self) {
        lock(self.into).append(&mut self.files);
    }
}

/// The cached index of one directory.
#[derive(Default)]
struct Slot {
    /// The index, once built; held while the first one is built.
    index: tokio::sync::Mutex<Option<Arc<FileIndex>>>,
    /// A background rebuild is under way.
    refreshing: AtomicBool,
}

/// The cached directories: each one's slot and when it was last searched.
type Slots = Mutex<HashMap<PathBuf, (Arc<Slot>, Instant)>>;

/// The cache of indexes, at most [`MAX_CACHED_INDEXES`], by directory.
#[derive(Default)]
pub struct FileIndexes {
    slots: Arc<Slots>,
}

impl FileIndexes {
    /// The index of the directory `root` (a canonical path): the cached one, rebuilt in the
    /// background when older than [`FRESH_FOR`]; on a miss, built now.
    pub async fn get(&self, root: &Path) -> io::Result<Arc<FileIndex>> {
        let slot = self.slot(root);
        let mut index = slot.index.lock().await;
        if let Some(index) = index.as_ref() {
            if index.built.elapsed() > FRESH_FOR && !slot.refreshing.swap(true, Ordering::SeqCst) {
                self.refresh(root.to_owned(), slot.clone());
            }
            return Ok(index.clone());
        }
        let built = build(root.to_owned()).await;
        match built {
            Ok(built) => Ok(index.insert(built).clone()),
            Err(error) => {
                self.forget(root, &slot);
                Err(error)
            }
        }
    }

    /// The slot of `root`, made (evicting the least recently used) if there is none.
    fn slot(&self, root: &Path) -> Arc<Slot> {
        let mut slots = lock(&self.slots);
        if let Some((slot, used)) = slots.get_mut(root) {
            *used = Instant::now();
            return slot.clone();
        }
        if slots.len() >= MAX_CACHED_INDEXES
            && let Some(oldest) = slots
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(root, _)| root.clone())
        {
            slots.remove(&oldest);
        }
        let slot = Arc::new(Slot::default());
        slots.insert(root.to_owned(), (slot.clone(), Instant::now()));
        slot
    }

    /// Drops `slot` from the cache, if it is still the slot of `root`.
    fn forget(&self, root: &Path, slot: &Arc<Slot>) {
        forget(&self.slots, root, slot);
    }

    /// Rebuilds the index of `root` in the background; a directory gone is dropped.
    fn refresh(&self, root: PathBuf, slot: Arc<Slot>) {
        let slots = self.slots.clone();
        tokio::spawn(async move {
            match build(root.clone()).await {
                Ok(built) => *slot.index.lock().await = Some(built),
                Err(_) => forget(&slots, &root, &slot),
            }
            slot.refreshing.store(false, Ordering::SeqCst);
        });
    }
}

fn forget(slots: &Slots, root: &Path, slot: &Arc<Slot>) {
    let mut slots = lock(slots);
    if slots.get(root).is_some_and(|(cached, _)| Arc::ptr_eq(cached, slot)) {
        slots.remove(root);
    }
}

/// Builds the index of `root` off the runtime's threads.
async fn build(root: PathBuf) -> io::Result<Arc<FileIndex>> {
    tokio::task::spawn_blocking(move || FileIndex::build(&root).map(Arc::new))
        .await
        .unwrap_or_else(|error| Err(io::Error::other(error)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        for file in files {
            let path = dir.path().join(file);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("dir");
            std::fs::write(path, "").expect("file");
        }
        dir
    }

    #[test]
    fn it_honours_gitignore_keeps_hidden_files_and_skips_git() {
        let dir = tree(&[
            "src/main.rs",
            ".github/ci.yml",
            ".git/HEAD",
            "target/out.o",
            "notes.log",
        ]);
        std::fs::write(dir.path().join(".gitignore"), "target/\n*.log\n").expect("gitignore");
        let index = FileIndex::build(dir.path()).expect("index");
        assert_eq!(
            index.files.iter().map(|f| &**f).collect::<Vec<_>>(),
            [".github/ci.yml", ".gitignore", "src/main.rs"]
        );
    }

    #[test]
    fn fuzzy_matches_rank_by_score_then_length() {
        let dir = tree(&[
            "src/main.rs",
            "crates/x/src/main.rs",
            "docs/maintenance.md",
            "README.md",
        ]);
        let index = FileIndex::build(dir.path()).expect("index");
        assert_eq!(index.fuzzy("main.rs", 5), ["src/main.rs", "crates/x/src/main.rs"]);
        assert_eq!(index.fuzzy("main", 1), ["src/main.rs"]);
        assert_eq!(index.fuzzy("mnrs", 5).len(), 2);
        assert!(index.fuzzy("zzz", 5).is_empty());
    }

    #[test]
    fn recent_files_come_newest_first() {
        let dir = tree(&["a", "b", "c"]);
        for (name, age) in [("a", 30), ("b", 10), ("c", 20)] {
            let file = std::fs::File::options()
                .write(true)
                .open(dir.path().join(name))
                .expect("open");
            file.set_modified(SystemTime::now() - Duration::from_secs(age))
                .expect("mtime");
        }
        let index = FileIndex::build(dir.path()).expect("index");
        assert_eq!(index.recent(2), ["b", "c"]);
    }

    #[test]
    fn a_file_is_not_a_directory_to_index() {
        let dir = tree(&["a"]);
        let error = FileIndex::build(&dir.path().join("a")).expect_err("not a directory");
        assert_eq!(error.kind(), io::ErrorKind::NotADirectory);
    }
}
