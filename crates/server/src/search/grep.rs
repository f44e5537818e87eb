//! Content search with ripgrep's libraries: the matcher and searcher the `Grep` tool and
//! `grep_in_files` share, and the line-level search `grep_in_files` answers with.

use std::collections::VecDeque;
use std::io;
use std::path::Path;
use std::time::Instant;

use grep_regex::{RegexMatcher, RegexMatcherBuilder};
use grep_searcher::{BinaryDetection, Searcher, SearcherBuilder, Sink, SinkContext, SinkMatch};
use letta_app_server_protocol::GrepInFilesMatch;

use super::walk::{GlobFilter, files, walker};

/// What to search for.
#[derive(Debug, Clone, Copy, Default)]
pub struct Pattern<'a> {
    /// A regular expression (Rust `regex` syntax, as ripgrep's), or the literal text.
    pub text: &'a str,
    /// `text` is literal text, not a regular expression.
    pub literal: bool,
    /// Ignore case.
    pub case_insensitive: bool,
    /// Match only where the match is a whole word.
    pub whole_word: bool,
    /// Let a match span lines (`.` then also matches a line break).
    pub multiline: bool,
}

impl Pattern<'_> {
    /// The matcher of the pattern; the error is the regex parser's, as ripgrep prints it.
    pub fn matcher(&self) -> Result<RegexMatcher, grep_regex::Error> {
        let mut builder = RegexMatcherBuilder::new();
        builder
            .fixed_strings(self.literal)
            .case_insensitive(self.case_insensitive)
            .word(self.whole_word)
            .multi_line(true);
        if self.multiline {
            builder.dot_matches_new_line(true);
        } else {
            builder.line_terminator(Some(b'\n'));
        }
        builder.build(self.text)
    }

    /// A searcher for the pattern, with line numbers and `before`/`after` lines of context,
    /// that stops at a file's first NUL byte (a binary file, as ripgrep skips it).
    pub fn searcher(&self, before: usize, after: usize) -> Searcher {
        SearcherBuilder::new()
            .line_number(true)
            .multi_line(self.multiline)
            .binary_detection(BinaryDetection::quit(0))
            .before_context(before)
            .after_context(after)
            .build()
    }
}

/// A line without its line terminator, decoded lossily, cut after `max_chars` characters;
/// whether it was cut.
pub fn display_line(bytes: &[u8], max_chars: usize) -> (String, bool) {
    let line = String::from_utf8_lossy(strip_terminator(bytes));
    match line.char_indices().nth(max_chars) {
        Some((cut, _)) => (line[..cut].to_owned(), true),
        None => (line.into_owned(), false),
    }
}

fn strip_terminator(bytes: &[u8]) -> &[u8] {
    let bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    bytes.strip_suffix(b"\r").unwrap_or(bytes)
}

/// A line-level search under a directory ([`find_lines`]).
#[derive(Debug, Clone, Copy)]
pub struct LineSearch<'a> {
    /// The directory searched (or the one file).
    pub root: &'a Path,
    /// What to find.
    pub pattern: Pattern<'a>,
    /// Only files this `glob` filter keeps ([`GlobFilter`]); `""` for all.
    pub glob: &'a str,
    /// Lines of context before and after each match; `0` for none (no `before`/`after`).
    pub context: usize,
    /// Matching lines kept at most (all are counted).
    pub max_matches: usize,
    /// Characters of a line kept at most.
    pub max_line_chars: usize,
    /// Bytes of kept text (lines, context, paths) after which no further match is kept.
    pub max_bytes: usize,
    /// When the search gives up.
    pub deadline: Instant,
}

/// What [`find_lines`] found.
#[derive(Debug, Default)]
pub struct FoundLines {
    /// The matching lines kept, by path then line.
    pub matches: Vec<GrepInFilesMatch>,
    /// Matching lines in all.
    pub total_matches: u64,
    /// Files with a matching line.
    pub total_files: u64,
}

/// Why [`find_lines`] failed.
#[derive(Debug)]
pub enum LineSearchError {
    /// The pattern or the glob is invalid (the message says why).
    Invalid(String),
    /// The search passed its deadline.
    TimedOut,
}

/// Searches the files under `search.root` that are not ignored (`.gitignore`) or hidden, in
/// path order, for lines matching the pattern. Each match records the first match on its line,
/// in 1-based UTF-16 columns (as JavaScript counts, and real Letta answers), and the lines
/// directly before and after it in its file. Binary and unreadable files are skipped.
pub fn find_lines(search: &LineSearch<'_>) -> Result<FoundLines, LineSearchError> {
    let matcher = search
        .pattern
        .matcher()
        .map_err(|error| LineSearchError::Invalid(error.to_string()))?;
    let filter = GlobFilter::new(search.glob).map_err(LineSearchError::Invalid)?;
    let walker = walker(search.root, None, false).map_err(LineSearchError::Invalid)?;
    let mut searcher = search.pattern.searcher(search.context, search.context);
    let mut found = FoundLines::default();
    let mut bytes = 0;
    for entry in files(&walker, search.root, &filter) {
        if Instant::now() > search.deadline {
            return Err(LineSearchError::TimedOut);
        }
        let path = entry.path();
        let relative = match path.strip_prefix(search.root) {
            Ok(relative) if !relative.as_os_str().is_empty() => relative,
            // The root is the file searched: its name, as real Letta answers.
            _ => Path::new(path.file_name().unwrap_or(path.as_os_str())),
        };
        let mut sink = LineSink {
            matcher: &matcher,
            search,
            path: relative.to_string_lossy().into_owned(),
            found: &mut found,
            bytes: &mut bytes,
            recent: VecDeque::new(),
            pending: Vec::new(),
            hit: false,
            timed_out: false,
        };
        // An unreadable file is skipped.
        let _ = searcher.search_path(&matcher, path, &mut sink);
        let (hit, timed_out) = (sink.hit, sink.timed_out);
        found.total_files += u64::from(hit);
        if timed_out {
            return Err(LineSearchError::TimedOut);
        }
    }
    Ok(found)
}

/// The length of `bytes`, decoded lossily, in UTF-16 code units.
fn utf16_len(bytes: &[u8]) -> u64 {
    String::from_utf8_lossy(bytes).encode_utf16().count() as u64
}

/// Collects one file's matching lines with their context.
struct LineSink<'a> {
    matcher: &'a RegexMatcher,
    search: &'a LineSearch<'a>,
    /// The file, relative to the root.
    path: String,
    found: &'a mut FoundLines,
    /// Bytes of kept text so far, across files.
    bytes: &'a mut usize,
    /// The last `context` lines seen (matching or not), with their numbers: the next match's
    /// `before`.
    recent: VecDeque<(u64, String)>,
    /// Kept matches still collecting `after` lines: index in `found.matches`, line number.
    pending: Vec<(usize, u64)>,
    /// The file has a matching line.
    hit: bool,
    timed_out: bool,
}

impl LineSink<'_> {
    /// Records line `number` as a later line of the pending matches and as a recent line.
    fn seen(&mut self, number: u64, bytes: &[u8]) {
        let context = self.search.context;
        if context == 0 {
            return;
        }
        let (text, _) = display_line(bytes, self.search.max_line_chars);
        let matches = &mut self.found.matches;
        let kept = &mut *self.bytes;
        self.pending.retain(|&(index, line)| {
            let last = line + context as u64;
            if number <= last
                && let Some(after) = matches[index].after.as_mut()
            {
                *kept += text.len();
                after.push(text.clone());
            }
            number < last
        });
        if self.recent.len() == context {
            self.recent.pop_front();
        }
        self.recent.push_back((number, text));
    }

    /// Whether the search must stop (past its deadline).
    fn late(&mut self) -> bool {
        self.timed_out = Instant::now() > self.search.deadline;
        self.timed_out
    }
}

impl Sink for LineSink<'_> {
    type Error = io::Error;

    fn matched(&mut self, _searcher: &Searcher, found: &SinkMatch<'_>) -> Result<bool, io::Error> {
        if self.late() {
            return Ok(false);
        }
        let first = found.line_number().unwrap_or(0);
        for (offset, bytes) in found.lines().enumerate() {
            let number = first + offset as u64;
            self.hit = true;
            self.found.total_matches += 1;
            let keep = self.found.matches.len() < self.search.max_matches && *self.bytes < self.search.max_bytes;
            if keep {
                let line = strip_terminator(bytes);
                let (start, end) = grep_matcher::Matcher::find(self.matcher, line)
                    .ok()
                    .flatten()
                    .map_or((0, 0), |found| (found.start(), found.end()));
                let column = utf16_len(&line[..start]) + 1;
                let (text, _) = display_line(line, self.search.max_line_chars);
                let context = self.search.context as u64;
                let before = (context > 0).then(|| {
                    self.recent
                        .iter()
                        .filter(|(seen, _)| seen + context >= number)
                        .map(|(_, text)| text.clone())
                        .collect::<Vec<_>>()
                });
                *self.bytes += self.path.len() + text.len() + before.iter().flatten().map(String::len).sum::<usize>();
                self.found.matches.push(GrepInFilesMatch {
                    path: self.path.clone(),
                    line: number,
                    column,
                    column_end: column + utf16_len(&line[start..end]),
                    text,
                    before,
                    after: (context > 0).then(Vec::new),
                });
                self.seen(number, bytes);
                if context > 0 {
                    self.pending.push((self.found.matches.len() - 1, number));
                }
            } else {
                self.seen(number, bytes);
            }
        }
        Ok(true)
    }

    fn context(&mut self, _searcher: &Searcher, context: &SinkContext<'_>) -> Result<bool, io::Error> {
        if self.late() {
            return Ok(false);
        }
        self.seen(context.line_number().unwrap_or(0), context.bytes());
        Ok(true)
    }
}
