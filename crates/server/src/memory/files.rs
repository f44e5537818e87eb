//! The working tree of a memory as `list_memory` shows it: its markdown files and images in
//! real Letta's order, each file's front matter, and the `[[wiki links]]` between files.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::LazyLock;

use letta_app_server_protocol::{MemoryFileEntry, MemoryFileKind};
use regex::Regex;

use super::{MAX_FILE_BYTES, by_name};

/// The images a memory viewer shows, by extension (lower case).
const IMAGE_TYPES: &[(&str, &str)] = &[
    ("gif", "image/gif"),
    ("jpeg", "image/jpeg"),
    ("jpg", "image/jpeg"),
    ("png", "image/png"),
    ("webp", "image/webp"),
];

/// A `[[target]]` or `[[target|label]]` link.
static WIKI_LINK: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\[\[([^\]|]+)(?:\|[^\]]+)?\]\]").expect("a valid pattern"));

/// A memory file's description and body, as real Letta reads its front matter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrontMatter {
    /// The `description:` value, when the front matter has it as a single value.
    pub description: Option<String>,
    /// The text after the front matter, trimmed (all of it, untrimmed, when there is none).
    pub body: String,
}

/// Reads `raw`'s front matter: `---`, `key: value` lines (a key with `- item` lines below is a
/// list), `---`. A byte-order mark is dropped and line ends become `\n` first.
pub fn front_matter(raw: &str) -> FrontMatter {
    let text = normalized(raw);
    let Some((header, body)) = split_front_matter(&text) else {
        return FrontMatter {
            description: None,
            body: text,
        };
    };
    FrontMatter {
        description: value(header, "description"),
        body: body.trim().to_owned(),
    }
}

/// The value of `key` in `raw`'s front matter, unless it is a list.
pub fn field(raw: &str, key: &str) -> Option<String> {
    let text = normalized(raw);
    split_front_matter(&text).and_then(|(header, _)| value(header, key))
}

/// `raw` without a byte-order mark, its line ends `\n`.
fn normalized(raw: &str) -> String {
    raw.strip_prefix('\u{feff}')
        .unwrap_or(raw)
        .replace("\r\n", "\n")
        .replace('\r', "\n")
}

/// The header and body of `text`, when it starts with a `---` line closed by a later one (the
/// first closing line wins).
fn split_front_matter(text: &str) -> Option<(&str, &str)> {
    let rest = text.strip_prefix("---\n")?;
    let mut from = 0;
    while let Some(found) = rest[from..].find("\n---") {
        let at = from + found;
        let after = &rest[at + 4..];
        if after.is_empty() || after.starts_with('\n') {
            return Some((&rest[..at], after.strip_prefix('\n').unwrap_or(after)));
        }
        from = at + 1;
    }
    None
}

/// The value of `wanted` in a front matter header, unless it is a list.
fn value(header: &str, wanted: &str) -> Option<String> {
    let mut found = None;
    let mut open_key: Option<&str> = None;
    let mut items = 0;
    let close = |key: Option<&str>, items: usize, found: &mut Option<String>| {
        if key == Some(wanted) {
            *found = (items == 0).then(String::new);
        }
    };
    for line in header.split('\n') {
        if open_key.is_some() && line.trim().starts_with('-') {
            items += 1;
            continue;
        }
        close(open_key.take(), items, &mut found);
        items = 0;
        let Some(colon) = line.find(':').filter(|&colon| colon > 0) else {
            continue;
        };
        let (key, value) = (line[..colon].trim(), line[colon + 1..].trim());
        if value.is_empty() {
            open_key = Some(key);
        } else if key == wanted {
            found = Some(value.to_owned());
        }
    }
    close(open_key, items, &mut found);
    found
}

/// What `list_memory` shows of the file at `relative`: none for a file that is neither
/// markdown nor an image.
fn kind_of(relative: &str) -> Option<(MemoryFileKind, &'static str)> {
    let name = relative.rsplit('/').next().unwrap_or(relative);
    let extension = name.rsplit_once('.')?.1.to_ascii_lowercase();
    if extension == "md" {
        return Some((MemoryFileKind::Markdown, "text/markdown"));
    }
    let (_, mime) = IMAGE_TYPES.iter().find(|(known, _)| *known == extension)?;
    Some((MemoryFileKind::Image, mime))
}

/// The markdown files and images of the memory at `root`, relative to it, in real Letta's order:
/// depth first, directories before files, `system/` first at the top; names starting with `.`
/// (the repository itself) and symbolic links are left out (real Letta follows links, out of
/// the memory too).
pub fn scan(root: &Path) -> Vec<String> {
    let mut found = Vec::new();
    walk(root, "", &mut found);
    found
}

fn walk(directory: &Path, prefix: &str, found: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(directory) else {
        return;
    };
    let mut children: Vec<(String, bool)> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let kind = entry.file_type().ok()?;
            (!name.starts_with('.') && !kind.is_symlink()).then_some((name, kind.is_dir()))
        })
        .collect();
    children.sort_by(|(a, a_dir), (b, b_dir)| {
        b_dir
            .cmp(a_dir)
            .then_with(|| match (prefix.is_empty() && *a_dir, a.as_str(), b.as_str()) {
                (true, "system", _) => std::cmp::Ordering::Less,
                (true, _, "system") => std::cmp::Ordering::Greater,
                _ => by_name(a, b),
            })
    });
    for (name, is_dir) in children {
        let relative = format!("{prefix}{name}");
        if is_dir {
            walk(&directory.join(&name), &format!("{relative}/"), found);
        } else if kind_of(&relative).is_some() {
            found.push(relative);
        }
    }
}

/// The `list_memory` entry of `relative` (one of [`scan`]'s) in the memory at `root`; with
/// `markdown` (every markdown path of the listing), also the files it links to.
pub fn entry(root: &Path, relative: &str, markdown: Option<&BTreeSet<String>>) -> MemoryFileEntry {
    let path = root.join(relative);
    let (kind, mime) = kind_of(relative).unwrap_or((MemoryFileKind::Markdown, "text/markdown"));
    let mut entry = MemoryFileEntry {
        relative_path: relative.to_owned(),
        is_system: relative.starts_with("system/"),
        description: None,
        content: String::new(),
        size: 0,
        references: markdown.map(|_| Vec::new()),
        kind: Some(kind.clone()),
        mime_type: Some(Some(mime.to_owned())),
    };
    let size = std::fs::metadata(&path).map_or(0, |metadata| metadata.len());
    if kind == MemoryFileKind::Image || size > MAX_FILE_BYTES as u64 {
        entry.size = size;
        return entry;
    }
    let raw = std::fs::read(&path).map_or_else(
        |_| "(unable to read file)".to_owned(),
        |bytes| String::from_utf8_lossy(&bytes).into_owned(),
    );
    let FrontMatter { description, body } = front_matter(&raw);
    // Escaped, a file of control characters is up to six times larger: its content is left out
    // when it would not fit an answer.
    if json_bytes(&body) > MAX_FILE_BYTES {
        entry.size = size;
        return entry;
    }
    if let Some(markdown) = markdown {
        entry.references = Some(references(&body, relative, markdown));
    }
    // Real Letta's `size` is the body's length in UTF-16 code units (JavaScript's `length`).
    entry.size = body.encode_utf16().count() as u64;
    entry.description = description;
    entry.content = body;
    entry
}

/// The bytes of `text` as a JSON string.
pub fn json_bytes(text: &str) -> usize {
    serde_json::to_string(text).map_or(usize::MAX, |json| json.len())
}

/// The markdown files `body` (of the file `source`) links to with `[[…]]`, each once, in order.
fn references(body: &str, source: &str, markdown: &BTreeSet<String>) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    for link in WIKI_LINK.captures_iter(body) {
        if let Some(target) = resolve_link(&link[1], source, markdown)
            && target != source
            && !found.contains(&target)
        {
            found.push(target);
        }
    }
    found
}

/// The file a link's target names, as real Letta resolves it: relative to the linking file
/// (`./`, `../`, or a plain name next to it), from the root, or under `system/`; `.md` implied.
fn resolve_link(raw: &str, source: &str, markdown: &BTreeSet<String>) -> Option<String> {
    let target = raw.trim();
    if target.is_empty() || ["http://", "https://", "mailto:"].iter().any(|p| target.starts_with(p)) {
        return None;
    }
    let target = target.strip_prefix('<').unwrap_or(target);
    let target = target.strip_suffix('>').unwrap_or(target);
    let target = target.split('#').next().unwrap_or_default();
    let target = target.split('?').next().unwrap_or_default().trim().replace('\\', "/");
    if target.is_empty() {
        return None;
    }
    let source_dir = source.rsplit_once('/').map_or("", |(dir, _)| dir);
    let explicit = target.starts_with("./") || target.starts_with("../");
    let candidate = if explicit {
        normalize(&format!("{source_dir}/{target}"))
    } else {
        normalize(target.strip_prefix('/').unwrap_or(&target))
    };
    if candidate.is_empty() || candidate == ".." || candidate.starts_with("../") {
        return None;
    }
    let with_extension = if candidate.ends_with(".md") {
        candidate
    } else {
        format!("{candidate}.md")
    };
    let mut candidates = vec![with_extension.clone()];
    if !explicit && !target.starts_with('/') && !source_dir.is_empty() {
        candidates.push(normalize(&format!("{source_dir}/{with_extension}")));
    }
    if !with_extension.starts_with("system/") {
        candidates.push(normalize(&format!("system/{with_extension}")));
    }
    candidates.into_iter().find(|candidate| markdown.contains(candidate))
}

/// A relative `/`-path with `.` and inner `..` resolved (leading `..` kept); `""` for the root.
fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." if parts.last().is_some_and(|last| *last != "..") => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    parts.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn front_matter_gives_the_description_and_the_trimmed_body() {
        let read = front_matter("\u{feff}---\r\ndescription: Who I am\r\nlimit: 5\r\n---\r\n\r\nI am Sam.\r\n");
        assert_eq!(read.description.as_deref(), Some("Who I am"));
        assert_eq!(read.body, "I am Sam.");
        let list = front_matter("---\ndescription:\n  - a\n  - b\n---\nx");
        assert_eq!((list.description, list.body.as_str()), (None, "x"));
        let empty = front_matter("---\ndescription:\n---\n");
        assert_eq!(empty.description.as_deref(), Some(""));
        let none = front_matter("no header\n");
        assert_eq!((none.description, none.body.as_str()), (None, "no header\n"));
        let unclosed = front_matter("---\ndescription: x\n---more\n");
        assert_eq!(unclosed.description, None);
    }

    #[test]
    fn links_resolve_next_to_the_file_from_the_root_or_under_system() {
        let markdown: BTreeSet<String> = ["system/human.md", "notes/a.md", "notes/b.md", "projects.md"]
            .into_iter()
            .map(String::from)
            .collect();
        let body = "See [[b]], [[human|the user]], [[../projects]], [[/projects.md#x]], \
                    [[https://x.org]], [[missing]], [[a]] and [[b]] again.";
        assert_eq!(
            references(body, "notes/a.md", &markdown),
            ["notes/b.md", "system/human.md", "projects.md"]
        );
    }

    #[test]
    fn the_listing_puts_system_first_and_directories_before_files() {
        let root = tempfile::tempdir().unwrap();
        for file in [
            "zeta.md",
            "Alpha.md",
            "system/persona.md",
            "system/human/prefs.md",
            "archive/old.md",
            "archive/photo.PNG",
            "archive/data.json",
            ".hidden/x.md",
        ] {
            let path = root.path().join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "x").unwrap();
        }
        // Links are not followed, into the memory or out of it.
        std::os::unix::fs::symlink("/etc", root.path().join("etc")).unwrap();
        std::os::unix::fs::symlink(root.path().join("zeta.md"), root.path().join("link.md")).unwrap();
        assert_eq!(
            scan(root.path()),
            [
                "system/human/prefs.md",
                "system/persona.md",
                "archive/old.md",
                "archive/photo.PNG",
                "Alpha.md",
                "zeta.md"
            ]
        );
        let image = entry(root.path(), "archive/photo.PNG", None);
        assert_eq!(
            (image.kind, image.mime_type, image.size),
            (Some(MemoryFileKind::Image), Some(Some("image/png".into())), 1)
        );
    }
}
