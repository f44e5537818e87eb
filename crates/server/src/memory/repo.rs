//! A memory's git repository: made as real Letta's local backend makes it (branch `main`, the
//! agent's identity in the local configuration, an empty first commit), committed to one change
//! at a time, and read back as `git log`, `git show <ref>:<path>` and `git show <sha>` print.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::path::Path;

use gix::bstr::ByteSlice;
use gix::objs::tree::EntryKind;
use gix::{ObjectId, Repository};
use similar::TextDiff;

use super::{Author, MAX_FILE_BYTES};

/// The author of the first commit, as real Letta names it.
const FIRST_AUTHOR: &str = "Letta Agent";
/// The message of the first commit, as `git commit -m` writes real Letta's.
const FIRST_COMMIT: &str = "chore: initialize empty local memory\n";
/// Lines of context around each change of a diff, as git's default.
const DIFF_CONTEXT: usize = 3;
/// Hex digits of an abbreviated object id in a diff's `index` line, as git's default.
const ABBREV: usize = 7;

/// Held while a commit is made: the server's memory commits (a few milliseconds each) are made
/// one at a time, so two turns of one agent never race for its `HEAD` and index.
static COMMITS: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn failed(what: &str) -> impl Fn(&dyn Display) -> String + '_ {
    move |error| format!("{what}: {error}")
}

/// Opens the repository at `directory`, ignoring the user's git configuration.
pub fn open(directory: &Path) -> Result<Repository, String> {
    gix::open_opts(directory, gix::open::Options::isolated())
        .map_err(|error| failed("Could not open the memory repository")(&error))
}

/// Makes `directory` the memory repository of `agent_id` with a first commit, keeping whatever
/// it already holds (an existing repository keeps its history).
pub fn initialize(directory: &Path, agent_id: &str) -> Result<(), String> {
    let failed = failed("Could not create the memory repository");
    std::fs::create_dir_all(directory).map_err(|e| failed(&e))?;
    // Isolated: the user's `init.defaultBranch` does not apply, and Letta's branch is `main`.
    let options = gix::open::Options::isolated();
    let repository = if directory.join(".git").is_dir() {
        gix::open_opts(directory, options).map_err(|e| failed(&e))?
    } else {
        let kind = gix::create::Kind::WithWorktree;
        let created = gix::ThreadSafeRepository::init_opts(directory, kind, gix::create::Options::default(), options);
        created.map_err(|e| failed(&e))?.to_thread_local()
    };
    let email = format!("{agent_id}@letta.com");
    configure(&repository.git_dir().join("config"), agent_id, &email).map_err(|e| failed(&e))?;
    if repository.head_id().is_ok() {
        return Ok(());
    }
    let tree = repository
        .write_object(gix::objs::Tree::empty())
        .map_err(|e| failed(&e))?;
    let author = Author {
        name: FIRST_AUTHOR.into(),
        email,
    };
    write_commit(&repository, &author, FIRST_COMMIT, tree.detach(), None).map_err(|e| failed(&e))?;
    Ok(())
}

/// Writes the agent's identity into the repository's local configuration, as real Letta does
/// (and `commit.gpgsign = false` unless set).
fn configure(path: &Path, agent_id: &str, email: &str) -> Result<(), String> {
    let mut config = gix::config::File::from_path_no_includes(path.to_owned(), gix::config::Source::Local)
        .map_err(|error| error.to_string())?;
    let mut values = vec![
        ("letta.agentId", agent_id),
        ("user.email", email),
        ("user.name", FIRST_AUTHOR),
    ];
    if config.raw_value("commit.gpgsign").is_err() {
        values.push(("commit.gpgsign", "false"));
    }
    for (key, value) in values {
        config.set_raw_value(key, value).map_err(|error| error.to_string())?;
    }
    std::fs::write(path, config.to_bstring()).map_err(|error| error.to_string())
}

/// Commits `paths` (relative to the root, as they are now in the working tree: a missing one is
/// removed, a directory taken whole) on top of `HEAD`, with `message`; returns the new commit's
/// id, or none when nothing changed. Only these paths are committed, whatever else changed, and
/// the index is made to match the new commit so that `git status` in the directory stays clean.
pub fn commit(root: &Path, paths: &[String], message: &str, author: &Author) -> Result<Option<String>, String> {
    let failed = failed("Could not commit to the memory repository");
    let _one_at_a_time = COMMITS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let repository = open(root)?;
    let head = repository.head_commit().map_err(|e| failed(&e))?;
    let old_tree = head.tree_id().map_err(|e| failed(&e))?.detach();
    let mut editor = repository.edit_tree(old_tree).map_err(|e| failed(&e))?;
    for path in paths {
        editor.remove(path.as_str()).map_err(|e| failed(&e))?;
        let mut files = Vec::new();
        working_files(&root.join(path), path, &mut files).map_err(|e| failed(&e))?;
        for (relative, kind, bytes) in files {
            let blob = repository.write_blob(bytes).map_err(|e| failed(&e))?;
            editor.upsert(relative.as_str(), kind, blob).map_err(|e| failed(&e))?;
        }
    }
    let new_tree = editor.write().map_err(|e| failed(&e))?.detach();
    if new_tree == old_tree {
        return Ok(None);
    }
    // As `git commit -m`: trailing blanks dropped, one line end added.
    let message = format!("{}\n", message.trim_end());
    let id = write_commit(&repository, author, &message, new_tree, Some(head.id)).map_err(|e| failed(&e))?;
    let mut index = repository.index_from_tree(&new_tree).map_err(|e| failed(&e))?;
    index.write(Default::default()).map_err(|e| failed(&e))?;
    Ok(Some(id.to_string()))
}

/// The files at `path` (`relative` in the repository): the file itself, every file under a
/// directory (except a nested `.git`), or nothing when it is gone.
fn working_files(path: &Path, relative: &str, out: &mut Vec<(String, EntryKind, Vec<u8>)>) -> std::io::Result<()> {
    let metadata = match std::fs::symlink_metadata(path) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(error),
    };
    if metadata.is_symlink() {
        let target = std::fs::read_link(path)?;
        out.push((
            relative.into(),
            EntryKind::Link,
            target.into_os_string().into_encoded_bytes(),
        ));
    } else if metadata.is_dir() {
        for entry in std::fs::read_dir(path)? {
            let entry = entry?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if name != ".git" {
                working_files(&entry.path(), &format!("{relative}/{name}"), out)?;
            }
        }
    } else {
        use std::os::unix::fs::PermissionsExt;
        let kind = match metadata.permissions().mode() & 0o111 {
            0 => EntryKind::Blob,
            _ => EntryKind::BlobExecutable,
        };
        out.push((relative.into(), kind, std::fs::read(path)?));
    }
    Ok(())
}

/// Writes a commit of `tree` by `author` (also its committer) and moves `HEAD` to it.
fn write_commit(
    repository: &Repository,
    author: &Author,
    message: &str,
    tree: ObjectId,
    parent: Option<ObjectId>,
) -> Result<ObjectId, gix::Error> {
    let signature = gix::actor::Signature {
        name: author.name.as_str().into(),
        email: author.email.as_str().into(),
        time: gix::date::Time::now_local_or_utc(),
    };
    let mut time = gix::date::parse::TimeBuf::default();
    let signature = signature.to_ref(&mut time);
    let id = repository.commit_as(signature, signature, "HEAD", message, tree, parent)?;
    Ok(id.detach())
}

/// One commit as `memory_history` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logged {
    /// Its id.
    pub sha: String,
    /// The first paragraph of its message, on one line (`%s`).
    pub subject: String,
    /// Its author's time, ISO-8601 with the author's offset (`%aI`, `Z` for UTC).
    pub timestamp: String,
    /// Its author's name.
    pub author: String,
}

/// Up to `limit` commits reachable from `HEAD`, newest first, as `git log` lists them; with
/// `path`, only those that changed it (a file or a directory).
pub fn history(root: &Path, path: Option<&str>, limit: usize) -> Result<Vec<Logged>, String> {
    let failed = failed("Could not read the memory history");
    let repository = open(root)?;
    let head = repository.head_id().map_err(|e| failed(&e))?;
    let walk = repository.rev_walk([head]).all().map_err(|e| failed(&e))?;
    let mut logged = Vec::new();
    for info in walk {
        if logged.len() >= limit {
            break;
        }
        let info = info.map_err(|e| failed(&e))?;
        let commit = info.object().map_err(|e| failed(&e))?;
        if let Some(path) = path {
            let now = entry_at(&repository, Some(commit.id), path)?;
            let before = entry_at(&repository, commit.parent_ids().next().map(|id| id.detach()), path)?;
            if now == before {
                continue;
            }
        }
        let author = commit.author().map_err(|e| failed(&e))?;
        let time = author.time().map_err(|e| failed(&e))?;
        logged.push(Logged {
            sha: commit.id.to_string(),
            subject: commit.message().map_err(|e| failed(&e))?.summary().to_string(),
            timestamp: iso_strict(time),
            author: author.name.to_string(),
        });
    }
    Ok(logged)
}

/// `time` as `%aI` prints it: ISO-8601 with the offset, `Z` for UTC (as git 2.4x does).
fn iso_strict(time: gix::date::Time) -> String {
    let text = time.format_or_unix(gix::date::time::format::ISO8601_STRICT);
    match text.strip_suffix("+00:00") {
        Some(utc) => format!("{utc}Z"),
        None => text,
    }
}

/// The id of what `path` names in `commit`'s tree (none without a commit or such an entry).
fn entry_at(repository: &Repository, commit: Option<ObjectId>, path: &str) -> Result<Option<ObjectId>, String> {
    let Some(commit) = commit else {
        return Ok(None);
    };
    let failed = failed("Could not read the memory history");
    let tree = repository
        .find_commit(commit)
        .and_then(|commit| commit.tree())
        .map_err(|e| failed(&e))?;
    let entry = tree.lookup_entry_by_path(path).map_err(|e| failed(&e))?;
    Ok(entry.map(|entry| entry.object_id()))
}

/// The content of the file `path` at the revision `rev` (a commit id, `HEAD~1`, …), as text.
pub fn file_at(root: &Path, path: &str, rev: &str) -> Result<String, String> {
    let repository = open(root)?;
    let tree = repository
        .rev_parse_single(rev)
        .and_then(|id| id.object())
        .and_then(|object| object.peel_to_tree())
        .map_err(|_| format!("invalid object name '{rev}'"))?;
    let entry = tree
        .lookup_entry_by_path(path)
        .map_err(|error| error.to_string())?
        .filter(|entry| entry.mode().is_blob())
        .ok_or_else(|| format!("path '{path}' does not exist in '{rev}'"))?;
    let blob = entry.object().map_err(|error| error.to_string())?;
    if blob.data.len() > MAX_FILE_BYTES {
        return Err(format!(
            "{path} is {} bytes at {rev}, over the {MAX_FILE_BYTES} bytes this server reads",
            blob.data.len()
        ));
    }
    Ok(String::from_utf8_lossy(&blob.data).into_owned())
}

/// The changes of the commit `rev` against its first parent, as `git show --format= <rev>`
/// prints them (a root commit against the empty tree).
pub fn commit_diff(root: &Path, rev: &str) -> Result<String, String> {
    let repository = open(root)?;
    let commit = repository
        .rev_parse_single(rev)
        .and_then(|id| id.object())
        .and_then(|object| object.peel_to_commit())
        .map_err(|_| format!("bad revision '{rev}'"))?;
    let read = |error: &dyn Display| format!("Could not read commit {rev}: {error}");
    let new = files_of(&repository, Some(commit.tree_id().map_err(|e| read(&e))?.detach()))?;
    let parent = match commit.parent_ids().next() {
        Some(parent) => Some(
            parent
                .object()
                .and_then(|object| object.peel_to_commit())
                .and_then(|commit| commit.tree_id())
                .map_err(|e| read(&e))?
                .detach(),
        ),
        None => None,
    };
    let old = files_of(&repository, parent)?;
    let mut paths: Vec<&String> = old.keys().chain(new.keys()).collect();
    paths.sort();
    paths.dedup();
    let mut diff = String::new();
    // The bytes of the files read so far: a diff shows at most `MAX_FILE_BYTES` of them.
    let mut read_bytes = 0;
    for path in paths {
        let (before, after) = (old.get(path), new.get(path));
        if before == after {
            continue;
        }
        let mut blob = |side: Option<&(EntryKind, ObjectId)>| -> Result<Vec<u8>, String> {
            let Some((_, id)) = side else {
                return Ok(Vec::new());
            };
            let object = repository.find_object(*id).map_err(|e| read(&e))?;
            read_bytes += object.data.len();
            Ok(object.detach().data)
        };
        let (old_bytes, new_bytes) = (blob(before)?, blob(after)?);
        if read_bytes > MAX_FILE_BYTES {
            return Err(format!("The changes of {rev} are larger than this server shows"));
        }
        file_diff(&mut diff, path, before, after, &old_bytes, &new_bytes);
    }
    Ok(diff)
}

/// Every file of `tree` (none without a tree), by path.
fn files_of(
    repository: &Repository,
    tree: Option<ObjectId>,
) -> Result<BTreeMap<String, (EntryKind, ObjectId)>, String> {
    let Some(tree) = tree else {
        return Ok(BTreeMap::new());
    };
    let read = |error: &dyn Display| format!("Could not read tree {tree}: {error}");
    let tree = repository.find_tree(tree).map_err(|e| read(&e))?;
    let records = tree.traverse().breadthfirst.files().map_err(|e| read(&e))?;
    Ok(records
        .into_iter()
        .filter(|record| !record.mode.is_tree())
        .map(|record| (record.filepath.to_string(), (record.mode.kind(), record.oid)))
        .collect())
}

/// The line git's default rule shows after a hunk's header: the nearest one before the hunk that
/// starts with a letter, `_` or `$`, cut to 80 bytes, without trailing blanks.
fn function_line<'a>(before: &[&'a str]) -> Option<&'a str> {
    let line = before
        .iter()
        .rev()
        .find(|line| line.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_' || c == '$'))?;
    let mut end = line.len().min(80);
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    Some(line[..end].trim_end())
}

/// Appends the `git diff` text of one file changed from `before` to `after`.
fn file_diff(
    out: &mut String,
    path: &str,
    before: Option<&(EntryKind, ObjectId)>,
    after: Option<&(EntryKind, ObjectId)>,
    old: &[u8],
    new: &[u8],
) {
    use std::fmt::Write;
    let mode = |kind: EntryKind| format!("{:o}", gix::objs::tree::EntryMode::from(kind).value());
    let short = |side: Option<&(EntryKind, ObjectId)>| {
        side.map_or_else(|| "0".repeat(ABBREV), |(_, id)| id.to_hex_with_len(ABBREV).to_string())
    };
    let _ = writeln!(out, "diff --git a/{path} b/{path}");
    match (before, after) {
        (None, Some((kind, _))) => {
            let _ = writeln!(out, "new file mode {}", mode(*kind));
        }
        (Some((kind, _)), None) => {
            let _ = writeln!(out, "deleted file mode {}", mode(*kind));
        }
        (Some((old_kind, _)), Some((new_kind, _))) if old_kind != new_kind => {
            let _ = writeln!(out, "old mode {}\nnew mode {}", mode(*old_kind), mode(*new_kind));
        }
        _ => {}
    }
    let _ = write!(out, "index {}..{}", short(before), short(after));
    match (before, after) {
        (Some((old_kind, _)), Some((new_kind, _))) if old_kind == new_kind => {
            let _ = writeln!(out, " {}", mode(*new_kind));
        }
        _ => out.push('\n'),
    }
    if old.is_empty() && new.is_empty() {
        return;
    }
    let (from, to) = (
        before.map_or_else(|| "/dev/null".to_owned(), |_| format!("a/{path}")),
        after.map_or_else(|| "/dev/null".to_owned(), |_| format!("b/{path}")),
    );
    // As git: a NUL byte in the first 8000 makes a file binary.
    let binary = |bytes: &[u8]| bytes[..bytes.len().min(8000)].contains(&0);
    match (old.to_str(), new.to_str()) {
        (Ok(old), Ok(new)) if !binary(old.as_bytes()) && !binary(new.as_bytes()) => {
            let diff = TextDiff::from_lines(old, new);
            let _ = writeln!(out, "--- {from}\n+++ {to}");
            let old_lines: Vec<&str> = old.split_inclusive('\n').collect();
            for hunk in diff.unified_diff().context_radius(DIFF_CONTEXT).iter_hunks() {
                let text = hunk.to_string();
                let (header, changes) = text.split_once('\n').unwrap_or((&text, ""));
                let start = hunk.ops().first().map_or(0, |op| op.old_range().start);
                match function_line(&old_lines[..start.min(old_lines.len())]) {
                    Some(line) => {
                        let _ = writeln!(out, "{header} {line}");
                    }
                    None => {
                        let _ = writeln!(out, "{header}");
                    }
                }
                out.push_str(changes);
            }
        }
        _ => {
            let _ = writeln!(out, "Binary files {from} and {to} differ");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    /// What the `git` program prints for `args` in `root` (the reference this module matches).
    fn git(root: &Path, args: &[&str]) -> String {
        let output = Command::new("git")
            .args(args)
            .current_dir(root)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", root)
            .output()
            .expect("git runs");
        assert!(
            output.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    #[test]
    fn commits_read_back_as_git_shows_them() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        initialize(root, "agent-1").unwrap();
        let author = Author::agent("agent-1", "Sam");
        let write = |path: &str, text: &str| {
            let path = root.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        let commit = |paths: &[&str], message: &str| {
            let paths: Vec<String> = paths.iter().map(|path| (*path).to_owned()).collect();
            super::commit(root, &paths, message, &author).unwrap()
        };
        write("system/human.md", "---\ndescription: The user\n---\nName: Ada\n");
        write("notes/a.md", "one\ntwo\nthree\nfour\nfive\nsix\nseven\neight\n");
        write("untracked.md", "not committed\n");
        let first = commit(&["system/human.md", "notes"], "Remember Ada\n\nBody text").unwrap();
        write(
            "system/human.md",
            "---\ndescription: The user\n---\nName: Ada\nLikes: tea",
        );
        write("notes/a.md", "one\ntwo\nthree\nfour\nFIVE\nsix\nseven\neight\n");
        write("notes/b.png", "\u{0}binary");
        let second = commit(&["system/human.md", "notes/a.md", "notes/b.png"], "Tea").unwrap();
        std::fs::remove_file(root.join("notes/a.md")).unwrap();
        let third = commit(&["notes/a.md"], "Forget a").unwrap();
        assert_eq!(commit(&["notes/a.md", "missing.md"], "Nothing"), None);

        for sha in [&first, &second, &third] {
            let ours = commit_diff(root, sha).unwrap();
            assert_eq!(
                ours,
                git(root, &["show", "--format=", "--no-color", sha]),
                "diff of {sha}"
            );
        }
        let initial = git(root, &["rev-list", "--max-parents=0", "HEAD"]);
        assert_eq!(commit_diff(root, initial.trim()).unwrap(), "");

        let log = |path: Option<&str>| {
            let logged = history(root, path, 50).unwrap();
            logged
                .iter()
                .map(|c| format!("{}|{}|{}|{}\n", c.sha, c.subject, c.timestamp, c.author))
                .collect::<String>()
        };
        let format = "--format=%H|%s|%aI|%an";
        assert_eq!(log(None), git(root, &["log", format]));
        assert_eq!(log(Some("notes/a.md")), git(root, &["log", format, "--", "notes/a.md"]));
        assert_eq!(log(Some("system")), git(root, &["log", format, "--", "system"]));
        assert_eq!(history(root, None, 2).unwrap().len(), 2);

        assert_eq!(
            file_at(root, "notes/a.md", &first).unwrap(),
            git(root, &["show", &format!("{first}:notes/a.md")])
        );
        assert_eq!(
            file_at(root, "system/human.md", "HEAD~1").unwrap(),
            "---\ndescription: The user\n---\nName: Ada\nLikes: tea"
        );
        assert_eq!(
            file_at(root, "notes/a.md", "HEAD").unwrap_err(),
            "path 'notes/a.md' does not exist in 'HEAD'"
        );
        assert_eq!(
            file_at(root, "notes", &first).unwrap_err(),
            format!("path 'notes' does not exist in '{first}'")
        );
        assert_eq!(file_at(root, "x.md", "nope").unwrap_err(), "invalid object name 'nope'");
        assert_eq!(commit_diff(root, "nope").unwrap_err(), "bad revision 'nope'");

        // Only the named paths were committed, and the index matches the last commit.
        assert_eq!(git(root, &["status", "--porcelain"]), "?? untracked.md\n");
        assert_eq!(
            git(root, &["log", "-1", "--format=%an <%ae>"]),
            "Sam <agent-1@letta.com>\n"
        );
    }
}
