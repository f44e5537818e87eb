//! The committed memory as the system prompt shows it, laid out as real Letta's local backend
//! lays it out: the persona as `<self>`, the other `system/` files in full as a tree of tags,
//! and the remaining files (except `skills/`) as a directory tree the agent can read from.

use std::collections::BTreeMap;
use std::path::Path;

use super::files::front_matter;
use super::{MAX_FILE_BYTES, by_name, repo};

/// Where a system prompt takes the memory; appended when the prompt does not name it.
const CORE_MEMORY: &str = "{CORE_MEMORY}";

/// A committed markdown file.
struct Block {
    /// Its path without `.md` (`system/human`).
    label: String,
    /// Its path.
    path: String,
    /// Its front matter's description, trimmed.
    description: String,
    /// Its body.
    value: String,
}

/// The memory at `root` as it is committed at `HEAD`, rendered for the system prompt (empty
/// without markdown files); files over [`MAX_FILE_BYTES`] are left out.
pub fn core_memory(root: &Path) -> Result<String, String> {
    let blocks = committed(root)?;
    if blocks.is_empty() {
        return Ok(String::new());
    }
    let mut lines = vec!["Reminder: <projection> contains the local path of the memory file projection.".to_owned()];
    if let Some(persona) = blocks.iter().find(|block| block.label == "system/persona") {
        lines.extend([
            String::new(),
            "<self>".into(),
            "<projection>$MEMORY_DIR/system/persona.md</projection>".into(),
            persona.value.trim_end().to_owned(),
            "</self>".into(),
        ]);
    }
    let system: Vec<&Block> = blocks
        .iter()
        .filter(|block| block.label.starts_with("system/") && block.label != "system/persona")
        .collect();
    let external: Vec<&Block> = blocks
        .iter()
        .filter(|block| !block.label.starts_with("system/") && !block.label.starts_with("skills/"))
        .collect();
    if !system.is_empty() || !external.is_empty() {
        lines.extend([String::new(), "<memory>".into()]);
        let mut tree = Tag::default();
        for block in &system {
            let parts = block.label["system/".len()..]
                .split('/')
                .filter(|part| !part.is_empty());
            let node = parts.fold(&mut tree, |node, part| {
                node.children.entry(part.to_owned()).or_default()
            });
            node.block = Some(block);
        }
        tree.render(0, "", &mut lines);
        if !external.is_empty() {
            lines.push("<external_projection>".into());
            lines.push("${MEMORY_DIR}/".into());
            let mut tree = Folder::default();
            for block in &external {
                let parts = block.path.split('/').filter(|part| !part.is_empty());
                parts.fold(&mut tree, |node, part| node.0.entry(part.to_owned()).or_default());
            }
            tree.render("", &mut lines);
            lines.push("</external_projection>".into());
        }
        lines.push("</memory>".into());
    }
    Ok(lines.join("\n"))
}

/// `system` with `core_memory` in place of `{CORE_MEMORY}`, or after it.
pub fn inject(system: &str, core_memory: &str) -> String {
    if system.contains(CORE_MEMORY) {
        system.replace(CORE_MEMORY, core_memory)
    } else {
        format!("{}\n\n{core_memory}", system.trim_end())
    }
}

/// The markdown files committed at `HEAD`, ordered by label.
fn committed(root: &Path) -> Result<Vec<Block>, String> {
    let repository = repo::open(root)?;
    let Ok(tree) = repository.head_tree() else {
        return Ok(Vec::new());
    };
    let records = tree
        .traverse()
        .breadthfirst
        .files()
        .map_err(|error| error.to_string())?;
    let mut blocks = Vec::new();
    for record in records {
        let path = record.filepath.to_string();
        let Some(label) = path.strip_suffix(".md") else {
            continue;
        };
        if !record.mode.is_blob() {
            continue;
        }
        let Ok(blob) = repository.find_object(record.oid) else {
            continue;
        };
        if blob.data.len() > MAX_FILE_BYTES {
            continue;
        }
        let read = front_matter(&String::from_utf8_lossy(&blob.data));
        blocks.push(Block {
            label: label.to_owned(),
            path: path.clone(),
            description: read.description.unwrap_or_default().trim().to_owned(),
            value: read.body,
        });
    }
    blocks.sort_by(|a, b| by_name(&a.label, &b.label));
    Ok(blocks)
}

/// A level of the `system/` tree: each name a tag, a file's content inside its tag.
#[derive(Default)]
struct Tag<'a> {
    block: Option<&'a Block>,
    children: BTreeMap<String, Tag<'a>>,
}

impl Tag<'_> {
    fn render(&self, indent: usize, path: &str, lines: &mut Vec<String>) {
        let pad = "  ".repeat(indent);
        let mut names: Vec<&String> = self.children.keys().collect();
        names.sort_by(|a, b| by_name(a, b));
        for name in names {
            let child = &self.children[name];
            let path = if path.is_empty() {
                name.clone()
            } else {
                format!("{path}/{name}")
            };
            lines.push(format!("{pad}<{name}>"));
            if let Some(block) = child.block {
                lines.push(format!("{pad}  <projection>$MEMORY_DIR/system/{path}.md</projection>"));
                if !block.description.is_empty() {
                    lines.push(format!("{pad}  <description>{}</description>", block.description));
                }
                let value = block.value.trim_end();
                if !value.is_empty() {
                    lines.push(format!("{pad}  {value}"));
                }
            }
            child.render(indent + 1, &path, lines);
            lines.push(format!("{pad}</{name}>"));
        }
    }
}

/// A directory of the files outside `system/`, drawn as `tree` draws it (directories first).
#[derive(Default)]
struct Folder(BTreeMap<String, Folder>);

impl Folder {
    fn render(&self, prefix: &str, lines: &mut Vec<String>) {
        let mut names: Vec<(&String, &Folder)> = self.0.iter().collect();
        names.sort_by(|(a, a_node), (b, b_node)| {
            let (a_dir, b_dir) = (!a_node.0.is_empty(), !b_node.0.is_empty());
            b_dir.cmp(&a_dir).then_with(|| by_name(a, b))
        });
        let count = names.len();
        for (index, (name, node)) in names.into_iter().enumerate() {
            let last = index + 1 == count;
            let is_dir = !node.0.is_empty();
            let connector = if last { "└── " } else { "├── " };
            lines.push(format!("{prefix}{connector}{name}{}", if is_dir { "/" } else { "" }));
            if is_dir {
                node.render(&format!("{prefix}{}", if last { "    " } else { "│   " }), lines);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::{Author, repo};

    #[test]
    fn the_prompt_shows_the_persona_the_system_tree_and_the_other_files() {
        let root = tempfile::tempdir().unwrap();
        repo::initialize(root.path(), "agent-1").unwrap();
        let files = [
            ("system/persona.md", "---\ndescription: Who I am\n---\nI am Sam.\n"),
            ("system/human.md", "---\ndescription: The user\n---\nName: Ada\n"),
            ("system/prefs/coding.md", "---\ndescription: Coding\n---\nTabs.\n"),
            ("notes/ideas.md", "---\ndescription: Ideas\n---\nMore.\n"),
            ("journal.md", "x"),
            ("skills/x/SKILL.md", "skill"),
        ];
        for (path, content) in files {
            let path = root.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, content).unwrap();
        }
        // Only what is committed: an uncommitted file is not shown.
        let paths: Vec<String> = files[..5].iter().map(|(path, _)| (*path).to_owned()).collect();
        let author = Author::agent("agent-1", "Sam");
        repo::commit(root.path(), &paths, "memories", &author).unwrap();
        let expected = "\
Reminder: <projection> contains the local path of the memory file projection.

<self>
<projection>$MEMORY_DIR/system/persona.md</projection>
I am Sam.
</self>

<memory>
<human>
  <projection>$MEMORY_DIR/system/human.md</projection>
  <description>The user</description>
  Name: Ada
</human>
<prefs>
  <coding>
    <projection>$MEMORY_DIR/system/prefs/coding.md</projection>
    <description>Coding</description>
    Tabs.
  </coding>
</prefs>
<external_projection>
${MEMORY_DIR}/
├── notes/
│   └── ideas.md
└── journal.md
</external_projection>
</memory>";
        assert_eq!(core_memory(root.path()).unwrap(), expected);
        assert_eq!(inject("You are helpful.\n", "M"), "You are helpful.\n\nM");
        assert_eq!(inject("A {CORE_MEMORY} B", "M"), "A M B");
    }

    #[test]
    fn an_empty_memory_adds_nothing() {
        let root = tempfile::tempdir().unwrap();
        repo::initialize(root.path(), "agent-1").unwrap();
        assert_eq!(core_memory(root.path()).unwrap(), "");
    }
}
