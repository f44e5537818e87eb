//! The edits of the model's `memory` tool (docs/protocol.md §6.2), on the working tree of a
//! memory, with real Letta's rules and messages: a block is a markdown file with a front matter
//! that has a `description` (and maybe `read_only: true`); paths are given relative to the memory
//! (`system/human.md`, `.md` optional) or absolute inside it.

use std::path::Path;

use super::inside;

/// One `memory` tool command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Makes a new block.
    Create {
        path: String,
        description: String,
        text: String,
    },
    /// Replaces the first occurrence of `old` in a block's body.
    StrReplace { path: String, old: String, new: String },
    /// Inserts `text` before body line `line` (1-based; past the end appends).
    Insert { path: String, line: i64, text: String },
    /// Deletes a block, or a directory of them.
    Delete { path: String },
    /// Moves a block.
    Rename { from: String, to: String },
    /// Sets a block's description.
    UpdateDescription { path: String, description: String },
}

impl Command {
    /// Its `command` name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Create { .. } => "create",
            Self::StrReplace { .. } => "str_replace",
            Self::Insert { .. } => "insert",
            Self::Delete { .. } => "delete",
            Self::Rename { .. } => "rename",
            Self::UpdateDescription { .. } => "update_description",
        }
    }
}

/// A block's front matter and body.
struct Block {
    description: String,
    read_only: Option<String>,
    body: String,
}

impl Block {
    fn render(&self) -> Result<String, String> {
        let description = self.description.trim();
        if description.is_empty() {
            return Err("memory: 'description' must not be empty".into());
        }
        let mut text = format!(
            "---\ndescription: {}\n",
            description.replace("\r\n", " ").replace('\n', " ").trim()
        );
        if let Some(read_only) = &self.read_only {
            text.push_str(&format!("read_only: {read_only}\n"));
        }
        text.push_str("---\n");
        text.push_str(&self.body);
        Ok(text)
    }
}

/// Runs `command` on the memory at `root`; returns the paths it changed, relative to the root.
pub fn apply(root: &Path, command: &Command) -> Result<Vec<String>, String> {
    let write = |relative: &str, block: &Block| -> Result<(), String> {
        let path = inside(root, relative)?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|error| error.to_string())?;
        }
        std::fs::write(path, block.render()?).map_err(|error| error.to_string())
    };
    match command {
        Command::Create {
            path,
            description,
            text,
        } => {
            let relative = format!("{}.md", label(root, path, "file_path")?);
            if root.join(&relative).exists() {
                return Err(format!("memory create: block already exists at {path}"));
            }
            let block = Block {
                description: description.clone(),
                read_only: None,
                body: text.clone(),
            };
            write(&relative, &block)?;
            Ok(vec![relative])
        }
        Command::StrReplace { path, old, new } => {
            let (relative, mut block) = editable(root, path)?;
            let Some(at) = block.body.find(old.as_str()) else {
                return Err("memory str_replace: old_string was not found in the target memory block".into());
            };
            block.body.replace_range(at..at + old.len(), new);
            write(&relative, &block)?;
            Ok(vec![relative])
        }
        Command::Insert { path, line, text } => {
            let (relative, mut block) = editable(root, path)?;
            let mut lines: Vec<&str> = if block.body.is_empty() {
                Vec::new()
            } else {
                block.body.split('\n').collect()
            };
            let at = usize::try_from(line.saturating_sub(1).max(0))
                .unwrap_or(usize::MAX)
                .min(lines.len());
            lines.splice(at..at, text.split('\n'));
            block.body = lines.join("\n");
            write(&relative, &block)?;
            Ok(vec![relative])
        }
        Command::Delete { path } => {
            let label = label(root, path, "file_path")?;
            let directory = inside(root, &label)?;
            if directory.is_dir() {
                if let Some(locked) = read_only_in(&directory) {
                    return Err(format!(
                        "memory: {} is read_only and cannot be modified",
                        locked.display()
                    ));
                }
                std::fs::remove_dir_all(directory).map_err(|error| error.to_string())?;
                return Ok(vec![label]);
            }
            let (relative, _) = editable(root, path)?;
            std::fs::remove_file(root.join(&relative)).map_err(|error| error.to_string())?;
            Ok(vec![relative])
        }
        Command::Rename { from, to } => {
            let old = format!("{}.md", label(root, from, "old_path")?);
            let new = format!("{}.md", label(root, to, "new_path")?);
            let target = inside(root, &new)?;
            if target.exists() {
                return Err(format!("memory rename: destination already exists at {to}"));
            }
            editable(root, from)?;
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(|error| error.to_string())?;
            }
            std::fs::rename(root.join(&old), target).map_err(|error| error.to_string())?;
            Ok(vec![old, new])
        }
        Command::UpdateDescription { path, description } => {
            let (relative, mut block) = editable(root, path)?;
            block.description = description.clone();
            write(&relative, &block)?;
            Ok(vec![relative])
        }
    }
}

/// A block marked `read_only: true` in `directory` or below, if any.
fn read_only_in(directory: &Path) -> Option<std::path::PathBuf> {
    for entry in std::fs::read_dir(directory).ok()?.filter_map(Result::ok) {
        let path = entry.path();
        let kind = entry.file_type().ok()?;
        if kind.is_dir() {
            if let Some(found) = read_only_in(&path) {
                return Some(found);
            }
        } else if kind.is_file()
            && let Ok(raw) = std::fs::read(&path)
            && parse(&String::from_utf8_lossy(&raw)).is_ok_and(|block| block.read_only.as_deref() == Some("true"))
        {
            return Some(path);
        }
    }
    None
}

/// The block at `input` (with `.md`) and its parsed content, unless it is read-only.
fn editable(root: &Path, input: &str) -> Result<(String, Block), String> {
    let relative = format!("{}.md", label(root, input, "file_path")?);
    let path = inside(root, &relative)?;
    let raw = std::fs::read(&path).map_err(|error| format!("memory: failed to read {input}: {error}"))?;
    let block = parse(&String::from_utf8_lossy(&raw))?;
    if block.read_only.as_deref() == Some("true") {
        return Err(format!("memory: {input} is read_only and cannot be modified"));
    }
    Ok((relative, block))
}

/// A block's front matter and body.
fn parse(raw: &str) -> Result<Block, String> {
    let missing = || "memory: target file is missing required frontmatter".to_owned();
    let rest = raw
        .strip_prefix("---\n")
        .or_else(|| raw.strip_prefix("---\r\n"))
        .ok_or_else(missing)?;
    // The first `---` line closes the front matter.
    let at = rest.find("\n---").ok_or_else(missing)?;
    let header = rest[..at].strip_suffix('\r').unwrap_or(&rest[..at]);
    let after = &rest[at + 4..];
    let body = after
        .strip_prefix("\r\n")
        .or_else(|| after.strip_prefix('\n'))
        .unwrap_or(after);
    let mut description = None;
    let mut read_only = None;
    for line in header.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let Some(colon) = line.find(':').filter(|&colon| colon > 0) else {
            continue;
        };
        let value = line[colon + 1..].trim().to_owned();
        match line[..colon].trim() {
            "description" => description = Some(value),
            "read_only" => read_only = Some(value),
            _ => {}
        }
    }
    let description = description
        .filter(|description| !description.trim().is_empty())
        .ok_or("memory: target file frontmatter is missing 'description'")?;
    Ok(Block {
        description,
        read_only,
        body: body.to_owned(),
    })
}

/// A block's path as the model gave it, relative to the memory and without `.md`; an absolute
/// path must lie inside `root`.
pub fn label(root: &Path, input: &str, field: &str) -> Result<String, String> {
    let raw = input.trim();
    if raw.is_empty() {
        return Err(format!("memory: '{field}' must be a non-empty string"));
    }
    if raw.starts_with("~/") || raw.starts_with("$HOME/") {
        return Err(format!(
            "memory: '{field}' must be a memory-relative file path, not a home-relative filesystem path"
        ));
    }
    let relative = if Path::new(raw).is_absolute() {
        match Path::new(raw).strip_prefix(root) {
            Ok(inner) if !inner.as_os_str().is_empty() => inner.to_string_lossy().into_owned(),
            _ => {
                return Err(format!(
                    "The memory tool can only be used to modify files in {{{}}} or provided as a relative path",
                    root.display()
                ));
            }
        }
    } else {
        raw.replace('\\', "/")
    };
    let label = relative.strip_prefix("memory/").unwrap_or(&relative);
    let label = label.strip_suffix(".md").unwrap_or(label);
    let segments: Vec<&str> = label.split('/').filter(|segment| !segment.is_empty()).collect();
    if segments.is_empty() {
        return Err(format!("memory: '{field}' resolves to an empty memory label"));
    }
    if segments.iter().any(|segment| matches!(*segment, "." | "..")) {
        return Err(format!("memory: '{field}' contains invalid path traversal segment"));
    }
    if segments.iter().any(|segment| segment.contains('\0')) {
        return Err(format!("memory: '{field}' contains invalid null bytes"));
    }
    if segments.iter().any(|segment| segment.eq_ignore_ascii_case(".git")) {
        return Err(format!(
            "memory: '{field}' may not name the repository's .git directory"
        ));
    }
    Ok(segments.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(root: &Path, path: &str) -> String {
        std::fs::read_to_string(root.join(path)).unwrap()
    }

    #[test]
    fn blocks_are_created_edited_renamed_and_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let create = Command::Create {
            path: "system/human".into(),
            description: "The user.\nMultiline".into(),
            text: "Name: Ada\nLikes: tea".into(),
        };
        assert_eq!(apply(root, &create).unwrap(), ["system/human.md"]);
        assert_eq!(
            read(root, "system/human.md"),
            "---\ndescription: The user. Multiline\n---\nName: Ada\nLikes: tea"
        );
        assert!(apply(root, &create).unwrap_err().contains("already exists"));

        let replace = Command::StrReplace {
            path: format!("{}/system/human.md", root.display()),
            old: "tea".into(),
            new: "coffee".into(),
        };
        apply(root, &replace).unwrap();
        let insert = Command::Insert {
            path: "system/human.md".into(),
            line: 2,
            text: "Lives: Paris".into(),
        };
        apply(root, &insert).unwrap();
        let describe = Command::UpdateDescription {
            path: "memory/system/human.md".into(),
            description: "Facts about the user".into(),
        };
        apply(root, &describe).unwrap();
        assert_eq!(
            read(root, "system/human.md"),
            "---\ndescription: Facts about the user\n---\nName: Ada\nLives: Paris\nLikes: coffee"
        );

        let rename = Command::Rename {
            from: "system/human".into(),
            to: "people/ada.md".into(),
        };
        assert_eq!(apply(root, &rename).unwrap(), ["system/human.md", "people/ada.md"]);
        assert_eq!(
            apply(root, &Command::Delete { path: "people".into() }).unwrap(),
            ["people"]
        );
        assert!(!root.join("people").exists());
    }

    #[test]
    fn bad_paths_missing_front_matter_and_read_only_blocks_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("plain.md"), "no front matter").unwrap();
        std::fs::write(
            root.join("locked.md"),
            "---\ndescription: x\nread_only: true\n---\nbody",
        )
        .unwrap();
        std::fs::create_dir_all(root.join("system/deep")).unwrap();
        std::fs::write(
            root.join("system/deep/persona.md"),
            "---\ndescription: x\nread_only: true\n---\n",
        )
        .unwrap();
        let whole = apply(root, &Command::Delete { path: "system".into() }).unwrap_err();
        assert!(whole.contains("read_only"), "{whole}");
        let edit = |path: &str| {
            apply(
                root,
                &Command::StrReplace {
                    path: path.into(),
                    old: "b".into(),
                    new: "c".into(),
                },
            )
            .unwrap_err()
        };
        assert!(
            edit("plain").contains("missing required frontmatter"),
            "{}",
            edit("plain")
        );
        assert!(edit("locked").contains("read_only"));
        assert!(edit("../outside").contains("traversal"));
        assert!(edit("/etc/passwd").contains("can only be used to modify files in"));
        assert!(edit("~/notes").contains("home-relative"));
        assert!(edit(".git/config").contains(".git"));
        assert!(edit("missing").contains("failed to read missing"));
    }
}
