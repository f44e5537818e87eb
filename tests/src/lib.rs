//! Test support shared by the workspace's tests and xtask.
//!
//! Loaders for the language-neutral test corpus under `tests/`:
//!
//! * `frames/<type>/<case>.json` — golden frames, one JSON object each;
//! * `invalid_frames/<case>.json` — frames a server must reject, with the expected error;
//! * `traces/*.jsonl` — recorded sessions against real Letta Code.
//!
//! Other languages read the same files directly; see `tests/README.md`.
//!
//! And the test servers and the client that checks what they send:
//!
//! * [`schema`] — the checked-in schema bundle, compiled for validating frames;
//! * [`wire`] — the schema-checking websocket client;
//! * [`process`] — the server binary as a child process (stop, restart, `kill -9`);
//! * `server` (feature `server`) — the server in this process, configurable and restartable.

mod named_frames;
pub mod process;
pub mod schema;
#[cfg(feature = "server")]
pub mod server;
pub mod wire;

use std::path::{Path, PathBuf};

use serde_json::Value;

/// The `tests/` directory.
pub fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    corpus_dir().parent().map(Path::to_path_buf).unwrap_or_default()
}

/// One golden frame.
#[derive(Debug, Clone)]
pub struct GoldenFrame {
    /// The directory name: the frame's `type`.
    pub frame_type: String,
    /// The file name without `.json`.
    pub case: String,
    /// The frame.
    pub json: Value,
}

impl GoldenFrame {
    /// Whether `direction`'s side sends it: the sides of its `type`. Of a type both sides send
    /// (`file_ops`), the server sends every form, clients only the one without the runtime
    /// envelope (`event_seq`).
    pub fn sent_by(&self, direction: schema::Direction) -> bool {
        use letta_app_server_protocol::{CLIENT_FRAMES, SERVER_FRAMES};
        let frame_type = self.json["type"].as_str().unwrap_or_default();
        match direction {
            schema::Direction::Client => CLIENT_FRAMES.contains(&frame_type) && self.json.get("event_seq").is_none(),
            schema::Direction::Server => SERVER_FRAMES.iter().any(|frame| frame.name == frame_type),
        }
    }

    /// The sides that send it (see [`GoldenFrame::sent_by`]), client first.
    pub fn directions(&self) -> impl Iterator<Item = schema::Direction> + '_ {
        schema::Direction::BOTH
            .into_iter()
            .filter(|direction| self.sent_by(*direction))
    }

    /// `<type>/<case>`, for messages.
    pub fn name(&self) -> String {
        format!("{}/{}", self.frame_type, self.case)
    }
}

/// Every golden frame, sorted by type then case.
pub fn golden_frames() -> Vec<GoldenFrame> {
    let mut frames = Vec::new();
    for type_dir in sorted_entries(&corpus_dir().join("frames"))
        .into_iter()
        .filter(|p| p.is_dir())
    {
        let frame_type = file_stem(&type_dir);
        for file in sorted_entries(&type_dir).into_iter().filter(|p| is_json(p)) {
            frames.push(GoldenFrame {
                frame_type: frame_type.clone(),
                case: file_stem(&file),
                json: read_json(&file),
            });
        }
    }
    frames
}

/// One frame a server must reject.
#[derive(Debug, Clone)]
pub struct InvalidFrame {
    /// The file name without `.json`.
    pub case: String,
    /// What the case shows.
    pub description: String,
    /// The exact text sent over the socket.
    pub text: String,
    /// The frame is valid against `schema/frames.schema.json`: what is wrong with it is a check
    /// the schema does not express (a non-empty id, exactly one of two fields, a runtime listed
    /// once), made by the parser after the types.
    pub schema_accepts: bool,
    /// The expected `error` frame fields: `code`, and `request_id`, `frame_type`, `path` when
    /// they apply (`path` is the offending field, present in the error message).
    pub expect: Value,
}

/// Every invalid-frame case, sorted by name.
pub fn invalid_frames() -> Vec<InvalidFrame> {
    sorted_entries(&corpus_dir().join("invalid_frames"))
        .into_iter()
        .filter(|p| is_json(p))
        .map(|file| {
            let json = read_json(&file);
            InvalidFrame {
                case: file_stem(&file),
                description: json["description"].as_str().unwrap_or_default().to_owned(),
                text: json["text"].as_str().unwrap_or_default().to_owned(),
                schema_accepts: json["schema_accepts"].as_bool().unwrap_or(false),
                expect: json["expect"].clone(),
            }
        })
        .collect()
}

/// One line of a recorded trace.
#[derive(Debug, Clone)]
pub struct TraceLine {
    /// Trace file name.
    pub file: String,
    /// 1-based line number.
    pub line: usize,
    /// `out` (client sent), `in` (client received), `open`, `close` or `mark`.
    pub dir: String,
    /// Connection label.
    pub conn: String,
    /// The frame: an object, or a string for a non-JSON message.
    pub frame: Value,
}

/// Every line of every trace file.
pub fn trace_lines() -> Vec<TraceLine> {
    let mut lines = Vec::new();
    for file in sorted_entries(&corpus_dir().join("traces"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
    {
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("reading {}: {e}", file.display()));
        for (index, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let record: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{name}:{}: {e}", index + 1));
            lines.push(TraceLine {
                file: name.clone(),
                line: index + 1,
                dir: record["dir"].as_str().unwrap_or_default().to_owned(),
                conn: record["conn"].as_str().unwrap_or_default().to_owned(),
                frame: record["frame"].clone(),
            });
        }
    }
    lines
}

fn sorted_entries(dir: &Path) -> Vec<PathBuf> {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
    let mut paths: Vec<PathBuf> = entries.filter_map(|entry| entry.ok().map(|e| e.path())).collect();
    paths.sort();
    paths
}

fn is_json(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "json")
}

fn file_stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}
