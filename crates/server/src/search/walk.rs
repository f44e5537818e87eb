//! Walking a tree the way ripgrep does (honouring `.gitignore`), and `glob` filters.

use std::path::Path;

use ignore::types::TypesBuilder;
use ignore::{DirEntry, WalkBuilder};

/// A walker over `root`, sorted by file name, that honours `.gitignore`, `.ignore` and
/// `.git/info/exclude` (even outside a git repository), skips hidden files unless `hidden`, and
/// keeps only files of a ripgrep file type if one is given.
pub fn walker(root: &Path, file_type: Option<&str>, hidden: bool) -> Result<WalkBuilder, String> {
    let mut builder = WalkBuilder::new(root);
    builder
        .require_git(false)
        .hidden(!hidden)
        .sort_by_file_name(|a, b| a.cmp(b));
    if !hidden {
        // The walker lets a hidden file through when a glob or type selects it; skip it anyway.
        builder.filter_entry(|entry| entry.depth() == 0 || !entry.file_name().as_encoded_bytes().starts_with(b"."));
    }
    if let Some(file_type) = file_type {
        let mut types = TypesBuilder::new();
        types.add_defaults();
        types.select(file_type);
        match types.build() {
            Ok(types) => {
                builder.types(types);
            }
            Err(_) => {
                return Err(format!(
                    "Unknown file type {file_type:?}. Use a ripgrep type name such as rust, py, js, ts, go, \
                     java, c, cpp, md, json or yaml, or use glob instead."
                ));
            }
        }
    }
    Ok(builder)
}

/// The files `walker` yields under `root` that `filter` keeps (matched against their path
/// relative to `root`). When `root` is itself a file, it is the one file, whatever the filter,
/// as ripgrep searches a file it is given.
pub fn files<'a>(walker: &WalkBuilder, root: &'a Path, filter: &'a GlobFilter) -> impl Iterator<Item = DirEntry> + 'a {
    walker.build().filter_map(Result::ok).filter(move |entry| {
        let path = entry.path();
        entry.file_type().is_some_and(|kind| kind.is_file())
            && (entry.depth() == 0 || filter.is_match(path.strip_prefix(root).unwrap_or(path)))
    })
}

/// A `glob` filter: whitespace-separated globs, `!` before a glob excludes. A glob without `/`
/// matches file names, one with `/` paths relative to the searched directory.
pub struct GlobFilter {
    include: globset::GlobSet,
    exclude: globset::GlobSet,
}

impl GlobFilter {
    /// The filter of `globs` (`""` keeps every file).
    pub fn new(globs: &str) -> Result<Self, String> {
        let mut include = globset::GlobSetBuilder::new();
        let mut exclude = globset::GlobSetBuilder::new();
        for pattern in globs.split_whitespace() {
            let (set, glob) = match pattern.strip_prefix('!') {
                Some(glob) => (&mut exclude, glob),
                None => (&mut include, pattern),
            };
            let glob = glob.strip_prefix('/').unwrap_or(glob);
            let glob = if glob.contains('/') {
                glob.to_owned()
            } else {
                format!("**/{glob}")
            };
            let glob = globset::GlobBuilder::new(&glob)
                .literal_separator(true)
                .build()
                .map_err(|error| format!("Invalid glob {pattern:?}: {error}"))?;
            set.add(glob);
        }
        let build =
            |set: globset::GlobSetBuilder| set.build().map_err(|error| format!("Invalid glob {globs:?}: {error}"));
        Ok(Self {
            include: build(include)?,
            exclude: build(exclude)?,
        })
    }

    /// Whether the filter keeps the file at `relative`.
    pub fn is_match(&self, relative: &Path) -> bool {
        (self.include.is_empty() || self.include.is_match(relative)) && !self.exclude.is_match(relative)
    }
}
