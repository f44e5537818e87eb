//! `diff`: the changes from one schema bundle to another, one line per change tagged with its
//! class, or JSON; which of them fail a CI gate; and the old bundle read from a git revision.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use letta_app_server_protocol::compat::{Change, Class};
use serde_json::{Value, json};

/// Where `--from-git` finds the bundle in a revision, and in a working tree.
pub const SCHEMA_PATH: &str = "schema/frames.schema.json";

/// Which breaking changes fail the gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailOn {
    /// Changes that break clients (written against the old bundle).
    Client,
    /// Changes that break servers (implementing the old bundle).
    Server,
    /// Every breaking change.
    Any,
}

impl FailOn {
    /// Whether `change` fails the gate.
    pub fn fails(self, change: &Change) -> bool {
        match self {
            Self::Client => change.class.breaks_clients(),
            Self::Server => change.class.breaks_servers(),
            Self::Any => change.class != Class::Compatible,
        }
    }
}

/// The report: `OLD -> NEW`, then one line per change (`CLASS  PATH: WHAT`), the most breaking
/// classes first, then the count of each class.
pub fn report(old: &str, new: &str, changes: &[Change]) -> String {
    let mut out = format!("{old} -> {new}\n");
    let width = Class::ALL.iter().map(|class| class.as_str().len()).max().unwrap_or(0);
    for class in Class::ALL {
        for change in changes.iter().filter(|change| change.class == class) {
            let _ = writeln!(out, "{:<width$}  {change}", class.as_str());
        }
    }
    let counts: Vec<String> = Class::ALL
        .iter()
        .map(|class| format!("{} {}", count(changes, *class), class.as_str()))
        .collect();
    let _ = writeln!(out, "{} changes: {}", changes.len(), counts.join(", "));
    out
}

/// The report as JSON: `old`, `new`, `changes` (each with `path`, `direction`, `kind` and the
/// kind's fields, `class` and a readable `description`) and `summary` (the count of each class).
pub fn json(old: &str, new: &str, changes: &[Change]) -> Value {
    let changes: Vec<Value> = changes
        .iter()
        .map(|change| {
            let mut value = serde_json::to_value(change).unwrap_or_default();
            value["description"] = Value::String(change.kind.to_string());
            value
        })
        .collect();
    let summary: serde_json::Map<String, Value> = Class::ALL
        .iter()
        .map(|class| (class.as_str().to_owned(), json!(count_values(&changes, *class))))
        .collect();
    json!({"old": old, "new": new, "changes": changes, "summary": summary})
}

fn count(changes: &[Change], class: Class) -> usize {
    changes.iter().filter(|change| change.class == class).count()
}

fn count_values(changes: &[Value], class: Class) -> usize {
    changes
        .iter()
        .filter(|change| change["class"] == class.as_str())
        .count()
}

/// The git repository containing the current directory.
pub fn repository() -> Result<gix::Repository, String> {
    let here = std::env::current_dir().map_err(|e| format!("reading the current directory: {e}"))?;
    gix::discover(&here).map_err(|e| format!("{} is not in a git repository: {e}", here.display()))
}

/// The text of [`SCHEMA_PATH`] at revision `rev` of `repository` (anything `git rev-parse`
/// takes: a branch, a tag, `origin/main`, `HEAD~3`, a commit id).
pub fn bundle_at(repository: &gix::Repository, rev: &str) -> Result<String, String> {
    let commit = repository
        .rev_parse_single(rev)
        .map_err(|e| format!("unknown revision `{rev}`: {e}"))?;
    let tree = commit
        .object()
        .map_err(|e| format!("reading `{rev}`: {e}"))?
        .peel_to_tree()
        .map_err(|e| format!("`{rev}` is not a commit or tree: {e}"))?;
    let entry = tree
        .lookup_entry_by_path(SCHEMA_PATH)
        .map_err(|e| format!("reading {SCHEMA_PATH} at `{rev}`: {e}"))?
        .ok_or_else(|| format!("{SCHEMA_PATH} does not exist at `{rev}`"))?;
    let blob = entry
        .object()
        .map_err(|e| format!("reading {SCHEMA_PATH} at `{rev}`: {e}"))?;
    String::from_utf8(blob.data.clone()).map_err(|_| format!("{SCHEMA_PATH} at `{rev}` is not UTF-8 text"))
}

/// [`SCHEMA_PATH`] in the working tree of `repository`, if it has one and the file exists.
pub fn working_tree_bundle(repository: &gix::Repository) -> Option<PathBuf> {
    let path = repository.workdir()?.join(SCHEMA_PATH);
    path.is_file().then_some(path)
}

/// How a report names a bundle read from a file (`-` is standard input).
pub fn file_label(path: &Path) -> String {
    if path == Path::new("-") {
        "standard input".to_owned()
    } else {
        path.display().to_string()
    }
}
