//! `Grep` and `Glob`: ripgrep-style searches that honour `.gitignore` and skip hidden files, on
//! the walk and matcher of [`crate::search`] (shared with `grep_in_files`).

use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use grep_searcher::{Searcher, Sink, SinkContext, SinkContextKind, SinkMatch};
use letta_app_server_protocol::JsonObject;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::args::{object_schema, optional_bool, optional_str, optional_u64, required_str, try_arg};
use super::{LocalTool, ToolContext, ToolFuture, ToolKind, ToolResult, resolve_path};
use crate::search::grep::{Pattern, display_line};
use crate::search::walk::{self, GlobFilter, walker};

/// Characters of one matching line `Grep` shows.
const MAX_LINE_CHARS: usize = 500;
/// Characters of `Grep` output the model sees.
const MAX_OUTPUT_CHARS: usize = 30_000;
/// Output lines `Grep` collects at most before giving up.
const MAX_COLLECTED: usize = 100_000;
/// Files `Glob` returns at most.
const MAX_GLOB_RESULTS: usize = 100;

// ---------------------------------------------------------------------------------------------
// Grep.
// ---------------------------------------------------------------------------------------------

/// `Grep`: searches file contents with a regular expression.
pub struct Grep;

#[derive(Clone, Copy, PartialEq, Eq)]
enum OutputMode {
    Content,
    FilesWithMatches,
    Count,
}

struct GrepOptions {
    pattern: String,
    root: PathBuf,
    glob: Option<String>,
    mode: OutputMode,
    before: usize,
    after: usize,
    line_numbers: bool,
    case_insensitive: bool,
    file_type: Option<String>,
    head_limit: Option<usize>,
    offset: usize,
    multiline: bool,
}

impl GrepOptions {
    fn from_args(args: &JsonObject, cwd: &Path) -> Result<Self, String> {
        let pattern = required_str(args, "pattern")?.to_owned();
        let root = resolve_path(cwd, optional_str(args, "path")?.unwrap_or("."));
        let glob = optional_str(args, "glob")?
            .filter(|glob| !glob.trim().is_empty())
            .map(str::to_owned);
        let mode = match optional_str(args, "output_mode")? {
            None | Some("files_with_matches") => OutputMode::FilesWithMatches,
            Some("content") => OutputMode::Content,
            Some("count") => OutputMode::Count,
            Some(other) => {
                return Err(format!(
                    "Unknown output_mode {other:?}: use \"content\", \"files_with_matches\" or \"count\"."
                ));
            }
        };
        let as_usize = |value: Option<u64>| value.map(|value| usize::try_from(value).unwrap_or(usize::MAX));
        let both = as_usize(optional_u64(args, "-C")?).or(as_usize(optional_u64(args, "context")?));
        let before = as_usize(optional_u64(args, "-B")?).or(both).unwrap_or(0);
        let after = as_usize(optional_u64(args, "-A")?).or(both).unwrap_or(0);
        let file_type = optional_str(args, "type")?
            .filter(|kind| !kind.trim().is_empty())
            .map(str::to_owned);
        Ok(Self {
            pattern,
            root,
            glob,
            mode,
            before,
            after,
            line_numbers: optional_bool(args, "-n")?.unwrap_or(true),
            case_insensitive: optional_bool(args, "-i")?.unwrap_or(false),
            file_type,
            head_limit: as_usize(optional_u64(args, "head_limit")?).filter(|limit| *limit > 0),
            offset: as_usize(optional_u64(args, "offset")?).unwrap_or(0),
            multiline: optional_bool(args, "multiline")?.unwrap_or(false),
        })
    }
}

impl LocalTool for Grep {
    fn name(&self) -> &'static str {
        "Grep"
    }

    fn description(&self) -> &'static str {
        "Searches file contents with a regular expression (Rust regex syntax, like ripgrep), \
         honouring .gitignore and skipping hidden files. Filter files with `glob` (e.g. `*.rs`, \
         `*.{ts,tsx}`) or `type` (e.g. `rust`, `py`, `js`). `output_mode`: `files_with_matches` \
         (default; paths, most recently modified first), `content` (matching lines as \
         `path:line:text`, with optional context lines) or `count` (matches per file). Patterns \
         match within one line unless `multiline` is true. Use `head_limit`/`offset` to page \
         through large results."
    }

    fn parameters(&self) -> JsonObject {
        object_schema(
            json!({
                "pattern": {
                    "type": "string",
                    "description": "Regular expression to search for (escape literal braces, e.g. `interface\\{\\}`)."
                },
                "path": {
                    "type": "string",
                    "description": "File or directory to search (default: the working directory)."
                },
                "glob": {
                    "type": "string",
                    "description": "Glob of files to search, e.g. `*.js` or `src/**/*.{ts,tsx}`; several separated by spaces."
                },
                "output_mode": {
                    "type": "string",
                    "enum": ["content", "files_with_matches", "count"],
                    "description": "`content` shows matching lines, `files_with_matches` (default) file paths, `count` match counts."
                },
                "-A": {"type": "integer", "minimum": 0, "description": "Lines to show after each match (content mode)."},
                "-B": {"type": "integer", "minimum": 0, "description": "Lines to show before each match (content mode)."},
                "-C": {"type": "integer", "minimum": 0, "description": "Lines to show before and after each match (content mode)."},
                "context": {"type": "integer", "minimum": 0, "description": "Same as -C."},
                "-n": {"type": "boolean", "description": "Show line numbers (content mode, default true)."},
                "-i": {"type": "boolean", "description": "Case-insensitive search."},
                "type": {
                    "type": "string",
                    "description": "ripgrep file type to search, e.g. `rust`, `py`, `js`, `go`, `java`."
                },
                "head_limit": {
                    "type": "integer",
                    "minimum": 0,
                    "description": "Return only the first N lines (content), files or counts, after `offset`."
                },
                "offset": {
                    "type": "integer",
                    "minimum": 0,
                    "description": "Skip the first N lines, files or counts (default 0)."
                },
                "multiline": {
                    "type": "boolean",
                    "description": "Let the pattern span lines; `.` then also matches newlines (default false)."
                }
            }),
            &["pattern"],
        )
    }

    fn kind(&self) -> ToolKind {
        ToolKind::ReadOnly
    }

    fn run<'a>(&'a self, args: JsonObject, context: ToolContext<'a>) -> ToolFuture<'a> {
        Box::pin(async move {
            let options = try_arg!(GrepOptions::from_args(&args, context.cwd));
            let cancel = context.cancel.clone();
            tokio::task::spawn_blocking(move || grep(&options, &cancel))
                .await
                .unwrap_or_else(|error| ToolResult::error(format!("Grep failed: {error}")))
        })
    }
}

fn grep(options: &GrepOptions, cancel: &CancellationToken) -> ToolResult {
    if !options.root.exists() {
        return ToolResult::error(format!("Path does not exist: {}", options.root.display()));
    }
    let pattern = Pattern {
        text: &options.pattern,
        case_insensitive: options.case_insensitive,
        multiline: options.multiline,
        ..Pattern::default()
    };
    let matcher = match pattern.matcher() {
        Ok(matcher) => matcher,
        Err(error) => {
            let hint = if options.multiline {
                ""
            } else {
                " (to match across lines, set multiline to true)"
            };
            return ToolResult::error(format!("Invalid pattern {:?}: {error}{hint}", options.pattern));
        }
    };
    let content = options.mode == OutputMode::Content;
    let mut searcher = if content {
        pattern.searcher(options.before, options.after)
    } else {
        pattern.searcher(0, 0)
    };
    let walker = match walker(&options.root, options.file_type.as_deref(), false) {
        Ok(walker) => walker,
        Err(error) => return ToolResult::error(error),
    };
    let filter = match GlobFilter::new(options.glob.as_deref().unwrap_or_default()) {
        Ok(filter) => filter,
        Err(error) => return ToolResult::error(error),
    };

    let mut lines: Vec<String> = Vec::new();
    let mut files: Vec<(PathBuf, SystemTime)> = Vec::new();
    let mut counts: Vec<(PathBuf, u64)> = Vec::new();
    let mut gave_up = false;
    for entry in walk::files(&walker, &options.root, &filter) {
        if cancel.is_cancelled() {
            return ToolResult::error("Interrupted by user");
        }
        let path = entry.path();
        match options.mode {
            OutputMode::Content => {
                let before = lines.len();
                let mut sink = ContentSink {
                    path: path.display().to_string(),
                    line_numbers: options.line_numbers,
                    out: &mut lines,
                    separate: options.before > 0 || options.after > 0,
                    started: false,
                };
                if searcher.search_path(&matcher, path, &mut sink).is_err() {
                    lines.truncate(before);
                }
                if lines.len() >= MAX_COLLECTED {
                    gave_up = true;
                    break;
                }
            }
            OutputMode::FilesWithMatches => {
                let mut sink = CountSink {
                    count: 0,
                    stop_at_first: true,
                };
                if searcher.search_path(&matcher, path, &mut sink).is_ok() && sink.count > 0 {
                    let modified = entry.metadata().ok().and_then(|metadata| metadata.modified().ok());
                    files.push((path.to_path_buf(), modified.unwrap_or(SystemTime::UNIX_EPOCH)));
                }
            }
            OutputMode::Count => {
                let mut sink = CountSink {
                    count: 0,
                    stop_at_first: false,
                };
                if searcher.search_path(&matcher, path, &mut sink).is_ok() && sink.count > 0 {
                    counts.push((path.to_path_buf(), sink.count));
                }
            }
        }
    }

    let page = |total: usize| {
        let start = options.offset.min(total);
        let end = options
            .head_limit
            .map_or(total, |limit| start.saturating_add(limit).min(total));
        (start, end)
    };
    let pagination_note = |start: usize, end: usize, total: usize, what: &str| {
        if start == 0 && end == total {
            String::new()
        } else {
            format!(
                "\n\n(Showing {what} {}-{end} of {total}; use offset and head_limit to see others.)",
                start + 1
            )
        }
    };
    let mut text = match options.mode {
        OutputMode::Content => {
            if lines.is_empty() {
                return ToolResult::ok("No matches found");
            }
            let (start, end) = page(lines.len());
            let mut text = lines[start..end].join("\n");
            text.push_str(&pagination_note(start, end, lines.len(), "lines"));
            if gave_up {
                text.push_str(&format!(
                    "\n\n(Stopped after {MAX_COLLECTED} lines; narrow the search with path, glob or type.)"
                ));
            }
            text
        }
        OutputMode::FilesWithMatches => {
            if files.is_empty() {
                return ToolResult::ok("No matches found");
            }
            files.sort_by(|(path_a, time_a), (path_b, time_b)| time_b.cmp(time_a).then_with(|| path_a.cmp(path_b)));
            let (start, end) = page(files.len());
            let noun = if files.len() == 1 { "file" } else { "files" };
            let mut text = format!("Found {} {noun}", files.len());
            for (path, _) in &files[start..end] {
                text.push('\n');
                text.push_str(&path.display().to_string());
            }
            text.push_str(&pagination_note(start, end, files.len(), "files"));
            text
        }
        OutputMode::Count => {
            if counts.is_empty() {
                return ToolResult::ok("No matches found");
            }
            let (start, end) = page(counts.len());
            let total: u64 = counts.iter().map(|(_, count)| count).sum();
            let mut text: String = counts[start..end]
                .iter()
                .map(|(path, count)| format!("{}:{count}\n", path.display()))
                .collect();
            let noun = if counts.len() == 1 { "file" } else { "files" };
            text.push_str(&format!(
                "\nFound {total} matching lines across {} {noun}.",
                counts.len()
            ));
            text.push_str(&pagination_note(start, end, counts.len(), "files"));
            text
        }
    };
    if let Some(cut) = super::truncate_chars(&mut text, MAX_OUTPUT_CHARS, 0) {
        text.push_str(&format!(
            "\n… [output truncated: {cut} more characters; use head_limit and offset, or a narrower path, glob or type]"
        ));
    }
    ToolResult::ok(text)
}

/// Collects `path:line:text` lines (`-` instead of `:` for context lines, `--` between groups).
struct ContentSink<'a> {
    path: String,
    line_numbers: bool,
    out: &'a mut Vec<String>,
    separate: bool,
    started: bool,
}

impl ContentSink<'_> {
    fn push(&mut self, line_number: Option<u64>, bytes: &[u8], separator: char) {
        if !self.started {
            self.started = true;
            if self.separate && !self.out.is_empty() {
                self.out.push("--".into());
            }
        }
        let (mut text, cut) = display_line(bytes, MAX_LINE_CHARS);
        if cut {
            text.push_str("… [line truncated]");
        }
        let line = match line_number.filter(|_| self.line_numbers) {
            Some(number) => format!("{}{separator}{number}{separator}{text}", self.path),
            None => format!("{}{separator}{text}", self.path),
        };
        self.out.push(line);
    }
}

impl Sink for ContentSink<'_> {
    type Error = io::Error;

    fn matched(&mut self, _searcher: &Searcher, found: &SinkMatch<'_>) -> Result<bool, io::Error> {
        let first = found.line_number();
        for (index, line) in found.lines().enumerate() {
            self.push(first.map(|first| first + index as u64), line, ':');
        }
        Ok(self.out.len() < MAX_COLLECTED)
    }

    fn context(&mut self, _searcher: &Searcher, context: &SinkContext<'_>) -> Result<bool, io::Error> {
        let separator = match context.kind() {
            SinkContextKind::Before | SinkContextKind::After => '-',
            SinkContextKind::Other => ':',
        };
        self.push(context.line_number(), context.bytes(), separator);
        Ok(self.out.len() < MAX_COLLECTED)
    }

    fn context_break(&mut self, _searcher: &Searcher) -> Result<bool, io::Error> {
        self.out.push("--".into());
        Ok(true)
    }
}

/// Counts matching lines, or stops at the first match.
struct CountSink {
    count: u64,
    stop_at_first: bool,
}

impl Sink for CountSink {
    type Error = io::Error;

    fn matched(&mut self, _searcher: &Searcher, found: &SinkMatch<'_>) -> Result<bool, io::Error> {
        self.count += found.lines().count().max(1) as u64;
        Ok(!self.stop_at_first)
    }
}

// ---------------------------------------------------------------------------------------------
// Glob.
// ---------------------------------------------------------------------------------------------

/// `Glob`: finds files by name pattern.
pub struct Glob;

impl LocalTool for Glob {
    fn name(&self) -> &'static str {
        "Glob"
    }

    fn description(&self) -> &'static str {
        "Finds files whose path matches a glob pattern such as `**/*.rs` or `src/**/*.{ts,tsx}` \
         (`*` does not cross `/`; `**` matches any number of directories), relative to `path` \
         (default: the working directory). Honours .gitignore and skips hidden files unless the \
         pattern names them. Returns absolute paths, most recently modified first, at most 100."
    }

    fn parameters(&self) -> JsonObject {
        object_schema(
            json!({
                "pattern": {
                    "type": "string",
                    "description": "Glob pattern to match file paths against, e.g. `**/*.py`."
                },
                "path": {
                    "type": "string",
                    "description": "Directory to search in (default: the working directory)."
                }
            }),
            &["pattern"],
        )
    }

    fn kind(&self) -> ToolKind {
        ToolKind::ReadOnly
    }

    fn run<'a>(&'a self, args: JsonObject, context: ToolContext<'a>) -> ToolFuture<'a> {
        Box::pin(async move {
            let pattern = try_arg!(required_str(&args, "pattern")).to_owned();
            let root = resolve_path(context.cwd, try_arg!(optional_str(&args, "path")).unwrap_or("."));
            let cancel = context.cancel.clone();
            tokio::task::spawn_blocking(move || glob(&pattern, &root, &cancel))
                .await
                .unwrap_or_else(|error| ToolResult::error(format!("Glob failed: {error}")))
        })
    }
}

fn glob(pattern: &str, root: &Path, cancel: &CancellationToken) -> ToolResult {
    if pattern.trim().is_empty() {
        return ToolResult::error("`pattern` is empty.");
    }
    let pattern = pattern.strip_prefix("./").unwrap_or(pattern);
    let absolute = Path::new(pattern).is_absolute();
    // An absolute pattern is searched from its longest directory prefix without wildcards.
    let base;
    let root = if absolute {
        let components: Vec<_> = Path::new(pattern).components().collect();
        let literal = components
            .iter()
            .take_while(|component| {
                !component
                    .as_os_str()
                    .as_encoded_bytes()
                    .iter()
                    .any(|b| b"*?[{".contains(b))
            })
            .count()
            .min(components.len().saturating_sub(1));
        base = components[..literal].iter().collect::<PathBuf>();
        base.as_path()
    } else {
        root
    };
    if !root.is_dir() {
        return ToolResult::error(format!("Directory does not exist: {}", root.display()));
    }
    let matcher = match globset::GlobBuilder::new(pattern).literal_separator(true).build() {
        Ok(glob) => glob.compile_matcher(),
        Err(error) => return ToolResult::error(format!("Invalid glob pattern {pattern:?}: {error}")),
    };
    let names_hidden = pattern
        .split('/')
        .any(|part| part.starts_with('.') && part != "." && part != "..");
    let mut builder = match walker(root, None, names_hidden) {
        Ok(builder) => builder,
        Err(error) => return ToolResult::error(error),
    };
    if !absolute && !pattern.contains("**") {
        builder.max_depth(Some(pattern.matches('/').count() + 1));
    }
    let mut found: Vec<(PathBuf, SystemTime)> = Vec::new();
    for entry in builder.build() {
        if cancel.is_cancelled() {
            return ToolResult::error("Interrupted by user");
        }
        let Ok(entry) = entry else { continue };
        if !entry.file_type().is_some_and(|kind| kind.is_file()) {
            continue;
        }
        let path = entry.path();
        let candidate = if absolute {
            path
        } else {
            path.strip_prefix(root).unwrap_or(path)
        };
        if matcher.is_match(candidate) {
            let modified = entry.metadata().ok().and_then(|metadata| metadata.modified().ok());
            found.push((path.to_path_buf(), modified.unwrap_or(SystemTime::UNIX_EPOCH)));
        }
    }
    if found.is_empty() {
        return ToolResult::ok("No files found");
    }
    found.sort_by(|(path_a, time_a), (path_b, time_b)| time_b.cmp(time_a).then_with(|| path_a.cmp(path_b)));
    let total = found.len();
    let mut text = found
        .iter()
        .take(MAX_GLOB_RESULTS)
        .map(|(path, _)| path.display().to_string())
        .collect::<Vec<_>>()
        .join("\n");
    if total > MAX_GLOB_RESULTS {
        text.push_str(&format!(
            "\n(Results are truncated: showing the {MAX_GLOB_RESULTS} most recently modified of {total} files. \
             Use a more specific path or pattern.)"
        ));
    }
    ToolResult::ok(text)
}
