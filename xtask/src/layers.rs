//! The module graph of every crate in the workspace: no two sibling modules may import each other,
//! directly or through others, and the server's top-level modules import only downwards.
//!
//! Read from the source text (comments removed), so paths inside macro bodies count too. An edge
//! `a → b` between two children of one parent means some file under `a` names `crate::…::b` or
//! `super::…b`. A child using its parent's items (or the parent its children) is not an edge.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::repo_root;

/// The crates whose module graphs are checked, as directories under the repository root.
pub const CRATES: &[&str] = &[
    "crates/protocol",
    "crates/client",
    "crates/server",
    "crates/mock-llm",
    "bindings/node",
    "bindings/python",
    "tests",
    "xtask",
];

/// The server's layers, top first: a top-level module may import only modules of its own layer or
/// of a layer below it. Every top-level module of the server must be listed.
pub const SERVER_LAYERS: &[&[&str]] = &[
    // HTTP and websockets: reads frames, writes each session's outbound queue.
    &["transport"],
    // The OpenAI-compatible API: HTTP requests as turns of an in-process protocol client.
    &["openai_api"],
    // Who is connected and what each one watches; the queue the transport drains; the
    // numbered, retained events of the scopes subscribed with `resume_after`.
    &["sessions", "outbound", "journal"],
    // One handler module per command group.
    &["commands"],
    // Conversations, their turns, the tools a turn offers.
    &["engine"],
    // `search`: walking, grepping and fuzzy-indexing directory trees (the tools, the search group);
    // `secrets`: agents' secrets; `memory`: agents' memory repositories (the `memory` tool's too);
    // `schedule`: scheduled prompts' cron rules and clock.
    &[
        "permissions",
        "provider",
        "tools",
        "store",
        "config",
        "search",
        "secrets",
        "memory",
        "schedule",
        "skills",
    ],
    &[
        "history",
        "transcript",
        "auth",
        "tls",
        "limits",
        "clock",
        "sync",
        "private_file",
        "metrics",
        "logging",
    ],
];

/// A module path inside one crate (`[]` is the crate root).
type ModPath = Vec<String>;

/// Every module of a crate and the modules each one names.
#[derive(Debug, Default)]
pub struct Graph {
    /// Module → the module paths its own file refers to (resolved to the longest known module).
    refs: BTreeMap<ModPath, BTreeSet<ModPath>>,
}

impl Graph {
    /// Reads the crate in `dir` (its `src/` tree).
    pub fn read(dir: &Path) -> Result<Self, String> {
        let mut files = Vec::new();
        collect_rs(&dir.join("src"), &mut files)?;
        let mut texts = BTreeMap::new();
        for file in files {
            let rel = file.strip_prefix(dir.join("src")).map_err(|e| e.to_string())?;
            let text = std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
            texts.insert(module_of(rel), strip_comments(&text));
        }
        Ok(Self::from_sources(texts))
    }

    /// Builds the graph from module path → source text (comments already removed).
    pub fn from_sources(texts: BTreeMap<ModPath, String>) -> Self {
        let known: BTreeSet<ModPath> = texts.keys().cloned().collect();
        let mut refs = BTreeMap::new();
        for (module, text) in &texts {
            let mut targets = BTreeSet::new();
            for path in referenced_paths(module, text) {
                if let Some(target) = longest_known(&known, &path) {
                    targets.insert(target);
                }
            }
            refs.insert(module.clone(), targets);
        }
        Self { refs }
    }

    /// Edges between sibling modules: `(parent, from child, to child)`.
    pub fn sibling_edges(&self) -> BTreeSet<(ModPath, String, String)> {
        let mut edges = BTreeSet::new();
        for (from, targets) in &self.refs {
            for to in targets {
                let common = from.iter().zip(to).take_while(|(a, b)| a == b).count();
                if common < from.len() && common < to.len() {
                    edges.insert((from[..common].to_vec(), from[common].clone(), to[common].clone()));
                }
            }
        }
        edges
    }

    /// Every cycle among sibling modules, as `parent: a → b → … → a` lines.
    pub fn cycles(&self) -> Vec<String> {
        let mut by_parent: BTreeMap<ModPath, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
        for (parent, from, to) in self.sibling_edges() {
            by_parent.entry(parent).or_default().entry(from).or_default().insert(to);
        }
        let mut found = Vec::new();
        for (parent, graph) in by_parent {
            for component in strongly_connected(&graph) {
                let scope = if parent.is_empty() {
                    "crate".to_owned()
                } else {
                    parent.join("::")
                };
                found.push(format!("{scope}: {}", component.join(" ⇄ ")));
            }
        }
        found
    }

    /// Imports between top-level modules that go upwards through `layers` (top first), and
    /// top-level modules missing from `layers`.
    pub fn layer_violations(&self, layers: &[&[&str]]) -> Vec<String> {
        let layer_of = |name: &str| layers.iter().position(|layer| layer.contains(&name));
        let mut problems = Vec::new();
        for module in self.refs.keys().filter(|m| m.len() == 1) {
            if layer_of(&module[0]).is_none() {
                problems.push(format!("`{}` is in no layer", module[0]));
            }
        }
        for (parent, from, to) in self.sibling_edges() {
            if !parent.is_empty() {
                continue;
            }
            if let (Some(a), Some(b)) = (layer_of(&from), layer_of(&to))
                && b < a
            {
                problems.push(format!("`{from}` (layer {a}) imports `{to}` (layer {b}, above it)"));
            }
        }
        problems
    }
}

/// Every problem in the workspace: sibling cycles in every crate, upward imports in the server.
pub fn check() -> Result<Vec<String>, String> {
    let mut problems = Vec::new();
    for dir in CRATES {
        let graph = Graph::read(&repo_root().join(dir))?;
        problems.extend(
            graph
                .cycles()
                .into_iter()
                .map(|c| format!("{dir}: import cycle in {c}")),
        );
        if *dir == "crates/server" {
            problems.extend(
                graph
                    .layer_violations(SERVER_LAYERS)
                    .into_iter()
                    .map(|p| format!("{dir}: {p}")),
            );
        }
    }
    Ok(problems)
}

fn collect_rs(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.is_dir() {
            collect_rs(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    Ok(())
}

/// `a/b.rs` and `a/b/mod.rs` → `[a, b]`; `lib.rs` and `main.rs` → `[]`.
fn module_of(rel: &Path) -> ModPath {
    let mut parts: ModPath = rel
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod"))
        || (parts.len() == 1 && matches!(parts[0].as_str(), "lib" | "main"))
    {
        parts.pop();
    }
    parts
}

/// Source text with comments, string literals (plain and raw) and character literals blanked out.
fn strip_comments(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let at = |i: usize| chars.get(i).copied().unwrap_or('\0');
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let word_before = i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_');
        if c == '/' && at(i + 1) == '/' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && at(i + 1) == '*' {
            i += 2;
            while i < chars.len() && !(chars[i] == '*' && at(i + 1) == '/') {
                i += 1;
            }
            i += 2;
        } else if c == 'r' && !word_before && (at(i + 1) == '"' || at(i + 1) == '#') {
            let hashes = chars[i + 1..].iter().take_while(|&&h| h == '#').count();
            if at(i + 1 + hashes) != '"' {
                out.push(c);
                i += 1;
                continue;
            }
            i += 2 + hashes;
            while i < chars.len() && !(chars[i] == '"' && (1..=hashes).all(|n| at(i + n) == '#')) {
                i += 1;
            }
            i += 1 + hashes;
            out.push_str("\"\"");
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if c == '\'' && (at(i + 2) == '\'' || at(i + 1) == '\\') {
            // A character literal (a lifetime has no closing quote right after one character).
            i += 1;
            while i < chars.len() && chars[i] != '\'' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("' '");
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// The absolute module paths that `text` (the file of `module`) names through `crate::` or
/// `super::`, with `use` groups (`crate::{a, b::c}`) expanded.
fn referenced_paths(module: &[String], text: &str) -> Vec<ModPath> {
    let bytes = text.as_bytes();
    let mut paths = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let starts_word =
            i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_' || bytes[i - 1] == b':');
        let base = if !starts_word {
            None
        } else if text[i..].starts_with("crate::") {
            i += "crate::".len();
            Some(Vec::new())
        } else if text[i..].starts_with("super::") {
            let mut base = module.to_vec();
            while text[i..].starts_with("super::") {
                i += "super::".len();
                base.pop();
            }
            Some(base)
        } else {
            None
        };
        match base {
            Some(base) => {
                let (found, end) = parse_tree(text, i, base);
                paths.extend(found);
                i = end;
            }
            None => i += 1,
        }
    }
    paths
}

/// Parses `a::b`, `a::{b, c::d}` or `{…}` at `start` below `base`; returns the paths and the end.
fn parse_tree(text: &str, start: usize, base: ModPath) -> (Vec<ModPath>, usize) {
    let bytes = text.as_bytes();
    let mut path = base;
    let mut i = start;
    loop {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i < bytes.len() && bytes[i] == b'{' {
            let mut found = Vec::new();
            i += 1;
            loop {
                while i < bytes.len() && (bytes[i].is_ascii_whitespace() || bytes[i] == b',') {
                    i += 1;
                }
                if i >= bytes.len() || bytes[i] == b'}' {
                    return (found, i + 1);
                }
                let (inner, end) = parse_tree(text, i, path.clone());
                found.extend(inner);
                if end <= i {
                    return (found, i + 1);
                }
                i = end;
            }
        }
        let word_end = text[i..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(bytes.len(), |n| i + n);
        if word_end == i {
            return (vec![path], i);
        }
        let word = &text[i..word_end];
        if word != "self" {
            path.push(word.to_owned());
        }
        i = word_end;
        if text[i..].starts_with("::") {
            i += 2;
        } else {
            return (vec![path], i);
        }
    }
}

fn longest_known(known: &BTreeSet<ModPath>, path: &[String]) -> Option<ModPath> {
    (0..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|p| known.contains(p))
}

/// The strongly connected components with more than one member (Tarjan), each sorted.
fn strongly_connected(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct Walk<'a> {
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        found: Vec<Vec<String>>,
    }
    impl<'a> Walk<'a> {
        fn visit(&mut self, node: &'a str) {
            let n = self.index.len();
            self.index.insert(node, n);
            self.low.insert(node, n);
            self.stack.push(node);
            self.on_stack.insert(node);
            for next in self.graph.get(node).into_iter().flatten() {
                if !self.index.contains_key(next.as_str()) {
                    self.visit(next);
                    let low = self.low[node].min(self.low[next.as_str()]);
                    self.low.insert(node, low);
                } else if self.on_stack.contains(next.as_str()) {
                    let low = self.low[node].min(self.index[next.as_str()]);
                    self.low.insert(node, low);
                }
            }
            if self.low[node] == self.index[node] {
                let mut component = Vec::new();
                while let Some(top) = self.stack.pop() {
                    self.on_stack.remove(top);
                    component.push(top.to_owned());
                    if top == node {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.found.push(component);
                }
            }
        }
    }
    let mut walk = Walk {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for node in graph.keys() {
        if !walk.index.contains_key(node.as_str()) {
            walk.visit(node);
        }
    }
    walk.found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(files: &[(&str, &str)]) -> Graph {
        Graph::from_sources(
            files
                .iter()
                .map(|(path, text)| (module_of(Path::new(path)), strip_comments(text)))
                .collect(),
        )
    }

    #[test]
    fn finds_sibling_cycles_through_groups_super_and_macros() {
        let g = graph(&[
            ("lib.rs", "mod a; mod b; mod c; mod t;"),
            ("a.rs", "use crate::{b::{X, Y}, t};"),
            ("b.rs", "fn f() { tokio::select! { _ = crate::c::g() => {} } }"),
            (
                "c.rs",
                "// use crate::a;\nconst S: &str = \"crate::a\"; const R: &str = r#\"\"crate::a\"\"#; const Q: char = '\"';",
            ),
            ("t/mod.rs", "mod files; mod edit; pub use files::F;"),
            ("t/files.rs", "use super::edit::diff;"),
            ("t/edit.rs", "use super::{files::Args, F};"),
        ]);
        assert_eq!(graph_cycles(&g), ["t: edit ⇄ files"]);
        let g = graph(&[
            ("lib.rs", "mod a; mod b; mod c;"),
            ("a.rs", "use crate::b::X;"),
            ("b.rs", "use crate::c::Y;"),
            ("c.rs", "fn f() { crate::a::z(); }"),
        ]);
        assert_eq!(graph_cycles(&g), ["crate: a ⇄ b ⇄ c"]);
    }

    fn graph_cycles(g: &Graph) -> Vec<String> {
        g.cycles()
    }

    #[test]
    fn parent_and_child_references_are_not_edges() {
        let g = graph(&[
            ("lib.rs", "mod p; fn f() { crate::p::q::r(); }"),
            ("p/mod.rs", "mod q; pub fn helper() {} pub use q::r;"),
            ("p/q.rs", "use super::helper; use crate::p::helper as h;"),
        ]);
        assert!(g.sibling_edges().is_empty(), "{:?}", g.sibling_edges());
    }

    #[test]
    fn upward_imports_and_unlisted_modules_are_reported() {
        let g = graph(&[
            ("lib.rs", "mod top; mod low; mod stray;"),
            ("top.rs", "use crate::low::X;"),
            ("low.rs", "use crate::top::Y;"),
            ("stray.rs", ""),
        ]);
        assert_eq!(
            g.layer_violations(&[&["top"], &["low"]]),
            [
                "`stray` is in no layer",
                "`low` (layer 1) imports `top` (layer 0, above it)"
            ]
        );
    }

    /// The workspace itself: no cycles, no upward imports.
    #[test]
    fn workspace_modules_are_layered() {
        let problems = check().expect("sources readable");
        assert!(problems.is_empty(), "module graph problems:\n{}", problems.join("\n"));
    }
}
