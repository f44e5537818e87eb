//! Agents' memory (MemFS, docs/protocol.md §4.2): per agent, a git repository of markdown files
//! whose `system/` files are part of every prompt. This module works on one repository's
//! directory and knows nothing of agents, clients or turns:
//!
//! * [`repo`] — making a repository, committing changed paths, the history, a file at a
//!   revision, the diff of a commit (with gix: no `git` program is needed).
//! * [`files`] — the working tree as `list_memory` shows it, and a file's front matter.
//! * [`prompt`] — the committed memory as the system prompt shows it.
//! * [`blocks`] — the edits of the model's `memory` tool on one file.
//!
//! Everything here blocks on the file system: callers run it on a blocking thread.

pub mod blocks;
pub mod files;
pub mod prompt;
pub mod repo;

use std::cmp::Ordering;
use std::path::{Path, PathBuf};

/// Bytes of a memory file the server reads into an answer or a prompt: a larger one is refused
/// by `read_memory_file` and `memory_file_at_ref`, listed without its content, and left out of
/// the prompt.
pub const MAX_FILE_BYTES: usize = crate::limits::MAX_DOCUMENT_BYTES;

/// One agent's memory: its repository's directory and the author of its commits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Memory {
    /// The repository's directory (its working tree).
    pub root: PathBuf,
    /// Who the agent's commits are by.
    pub author: Author,
}

/// Who a commit is by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Author {
    /// Its author's name (the agent's name).
    pub name: String,
    /// Its author's e-mail (`<agent id>@letta.com`, as real Letta writes it).
    pub email: String,
}

impl Author {
    /// The agent `agent_id` named `name` (its id when the name is blank), as real Letta signs
    /// its memory commits.
    pub fn agent(agent_id: &str, name: &str) -> Self {
        let name = name.trim();
        Self {
            name: if name.is_empty() { agent_id } else { name }.to_owned(),
            email: format!("{agent_id}@letta.com"),
        }
    }
}

/// `path` as a path inside the memory root, `/`-separated with `.` and `..` resolved
/// (`a/./b/../c` → `a/c`), or why it is not one: it is empty, absolute, leaves the root, names
/// the root itself, or lies in the repository's `.git` directory (which real Letta lets a client
/// write into; this server does not).
pub fn relative_path(path: &str) -> Result<String, &'static str> {
    if path.is_empty() || path.starts_with('/') {
        return Err("path must be a non-empty relative path");
    }
    if path.contains('\0') {
        return Err("path must not contain NUL bytes");
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err("path must resolve inside the memory root");
                }
            }
            part => parts.push(part),
        }
    }
    if parts.is_empty() {
        return Err("path must resolve inside the memory root");
    }
    if parts.iter().any(|part| part.eq_ignore_ascii_case(".git")) {
        return Err("path must not be inside the memory repository's .git directory");
    }
    Ok(parts.join("/"))
}

/// Where `relative` (from [`relative_path`]) lies in the memory at `root`, or why it may not be
/// used: a symbolic link on the way leads out of the root, or it is itself a link (writing
/// through a dangling one would create a file elsewhere).
pub fn inside(root: &Path, relative: &str) -> Result<PathBuf, String> {
    let path = root.join(relative);
    let outside = || format!("{relative} leads outside the memory directory");
    if std::fs::symlink_metadata(&path).is_ok_and(|metadata| metadata.is_symlink()) {
        return Err(format!("{relative} is a symbolic link"));
    }
    let root = root.canonicalize().map_err(|error| error.to_string())?;
    let mut existing = path.as_path();
    loop {
        match existing.canonicalize() {
            Ok(real) if real.starts_with(&root) => return Ok(path),
            Ok(_) => return Err(outside()),
            Err(_) => existing = existing.parent().ok_or_else(outside)?,
        }
    }
}

/// The order in which real Letta lists names (JavaScript's `localeCompare`, as near as plain
/// comparisons come): letters without regard to case, then lower case before upper case.
pub fn by_name(a: &str, b: &str) -> Ordering {
    a.to_lowercase().cmp(&b.to_lowercase()).then_with(|| b.cmp(a))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_stay_inside_the_root() {
        assert_eq!(relative_path("system/./persona.md"), Ok("system/persona.md".into()));
        assert_eq!(relative_path("a//b/../c.md"), Ok("a/c.md".into()));
        for bad in ["", "/etc/passwd", "..", "../x.md", "a/../..", "a/..", ".", "a\0b"] {
            assert!(relative_path(bad).is_err(), "{bad:?}");
        }
        assert!(relative_path(".git/config").is_err());
        assert!(relative_path("notes/.GIT/hooks/pre-commit").is_err());
    }

    #[test]
    fn names_sort_as_real_letta_lists_them() {
        let mut names = vec!["b.md", "B.md", "a.md", "Zeta.md", "alpha.md"];
        names.sort_by(|a, b| by_name(a, b));
        assert_eq!(names, ["a.md", "alpha.md", "b.md", "B.md", "Zeta.md"]);
    }

    #[cfg(unix)]
    #[test]
    fn a_link_out_of_the_root_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), root.path().join("out")).unwrap();
        assert!(inside(root.path(), "out/secret.md").is_err());
        assert!(inside(root.path(), "system/new/persona.md").is_ok());
        std::os::unix::fs::symlink("/tmp/not-there-yet.md", root.path().join("dangling.md")).unwrap();
        assert!(
            inside(root.path(), "dangling.md").is_err(),
            "a write would create a file elsewhere"
        );
    }
}
