//! Reading recorded frames (JSONL transcripts, JSON arrays, a single frame, browser HAR exports)
//! and checking them all.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

use super::bundle::Direction;
use super::check::{Validator, Violation};

/// Where a message sits in its transcript.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Position {
    /// A line of a JSONL transcript (1-based).
    Line(usize),
    /// An element of a JSON array, or a websocket message of a HAR export in file order
    /// (1-based).
    Item(usize),
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Line(line) => write!(f, "line {line}"),
            Self::Item(item) => write!(f, "message {item}"),
        }
    }
}

/// One websocket message of a transcript.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Where it is.
    pub position: Position,
    /// Who sent it, when the transcript says.
    pub direction: Option<Direction>,
    /// The message as sent: a frame, or text that was recorded raw (which may not be JSON).
    pub message: Message,
}

/// A recorded websocket message.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// A parsed frame (any JSON value: one that is not an object is invalid).
    Frame(Value),
    /// The text of a message, recorded as it was sent.
    Text(String),
}

/// The transcript formats [`read`] recognises.
///
/// * JSONL: one record a line, each either a frame or an object holding one in `frame` (or
///   its raw text in `raw`) with the sender in `dir` (`send`/`out` for the client,
///   `recv`/`in` for the server), as `captures/*.jsonl` and `tests/traces/*.jsonl` record them.
///   Records whose `dir` names no sender (`open`, `close`, `mark`, `event`), or that hold no
///   message, are skipped; a line that is not JSON is a message that is not JSON.
/// * A JSON array of such records or frames, or a single frame.
/// * A HAR export of a browser's network panel: the `_webSocketMessages` of its entries
///   (`send` is the client, `receive` the server; binary messages are skipped).
pub fn read(text: &str) -> Vec<Entry> {
    let whole = text.trim_start();
    if (whole.starts_with('[') || whole.starts_with('{'))
        && let Ok(document) = serde_json::from_str::<Value>(whole)
    {
        return match document {
            Value::Array(items) => items
                .into_iter()
                .enumerate()
                .filter_map(|(index, item)| record(Position::Item(index + 1), item))
                .collect(),
            har if har["log"]["entries"].is_array() => har_messages(&har),
            single => record(Position::Line(1), single).into_iter().collect(),
        };
    }
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .filter_map(|(index, line)| {
            let position = Position::Line(index + 1);
            match serde_json::from_str::<Value>(line) {
                Ok(value) => record(position, value),
                Err(_) => Some(Entry {
                    position,
                    direction: None,
                    message: Message::Text(line.to_owned()),
                }),
            }
        })
        .collect()
}

/// The message of a transcript record, or of a bare frame; `None` for a record of something
/// else (a connection opening or closing).
fn record(position: Position, value: Value) -> Option<Entry> {
    let is_record = value.get("type").is_none() && ["frame", "raw", "dir"].iter().any(|key| value.get(key).is_some());
    if !is_record {
        return Some(Entry {
            position,
            direction: None,
            message: Message::Frame(value),
        });
    }
    // A record whose `dir` names no sender (`open`, `close`, `mark`, `event`) holds no message,
    // whatever else it carries.
    let direction = match value.get("dir") {
        Some(dir) => Some(dir.as_str().and_then(direction_of)?),
        None => None,
    };
    let message = match (value.get("frame"), value["raw"].as_str()) {
        (Some(frame), _) => Message::Frame(frame.clone()),
        (None, Some(raw)) => Message::Text(raw.to_owned()),
        (None, None) => return None,
    };
    Some(Entry {
        position,
        direction,
        message,
    })
}

/// The sender a transcript's `dir` names.
fn direction_of(dir: &str) -> Option<Direction> {
    match dir {
        "send" | "sent" | "out" | "client" => Some(Direction::Client),
        "recv" | "receive" | "received" | "in" | "server" => Some(Direction::Server),
        _ => None,
    }
}

/// The text websocket messages of a HAR export, in file order.
fn har_messages(har: &Value) -> Vec<Entry> {
    let messages = har["log"]["entries"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|entry| entry["_webSocketMessages"].as_array().into_iter().flatten());
    messages
        .enumerate()
        // Opcode 1 is a text message; 2 (binary) carries no frame.
        .filter(|(_, message)| message["opcode"].as_u64().unwrap_or(1) == 1)
        .filter_map(|(index, message)| {
            Some(Entry {
                position: Position::Item(index + 1),
                direction: message["type"].as_str().and_then(direction_of),
                message: Message::Text(message["data"].as_str()?.to_owned()),
            })
        })
        .collect()
}

/// An invalid message of a transcript.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// Where it is.
    pub position: Position,
    /// Who sent it.
    pub direction: Direction,
    /// Its `type`, when it has a string one.
    pub frame_type: Option<String>,
    /// What is wrong with it.
    pub violations: Vec<Violation>,
}

/// How many messages of one frame type were checked, and how many were invalid.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Messages checked.
    pub checked: usize,
    /// Of which invalid.
    pub invalid: usize,
}

/// The outcome of checking a transcript.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    /// Every invalid message, in transcript order.
    pub findings: Vec<Finding>,
    /// Counts by direction and frame type (`(no type)` for messages without one).
    pub by_type: BTreeMap<(Direction, String), Tally>,
}

impl Report {
    /// How many messages were checked.
    pub fn checked(&self) -> usize {
        self.by_type.values().map(|tally| tally.checked).sum()
    }

    /// Whether every message is valid.
    pub fn is_valid(&self) -> bool {
        self.findings.is_empty()
    }

    /// Adds the findings and counts of `other` (another transcript's).
    pub fn merge(&mut self, other: Report) {
        self.findings.extend(other.findings);
        for (key, tally) in other.by_type {
            let total = self.by_type.entry(key).or_default();
            total.checked += tally.checked;
            total.invalid += tally.invalid;
        }
    }
}

/// Checks every message of `entries`. A message's sender is the transcript's, else `direction`,
/// else its type's ([`Direction::of`]).
pub fn check(validator: &Validator, entries: &[Entry], direction: Option<Direction>) -> Report {
    let mut report = Report::default();
    for entry in entries {
        let parsed = match &entry.message {
            Message::Frame(frame) => Ok(frame.clone()),
            Message::Text(text) => serde_json::from_str::<Value>(text).map_err(|e| format!("not JSON: {e}")),
        };
        let frame = parsed.as_ref().unwrap_or(&Value::Null);
        let sender = entry.direction.or(direction).unwrap_or_else(|| Direction::of(frame));
        let violations = match &parsed {
            Ok(frame) => validator.validate(sender, frame),
            Err(reason) => vec![Violation {
                path: String::new(),
                reason: reason.clone(),
            }],
        };
        let frame_type = frame["type"].as_str().map(str::to_owned);
        let tally = report
            .by_type
            .entry((sender, frame_type.clone().unwrap_or_else(|| "(no type)".to_owned())))
            .or_default();
        tally.checked += 1;
        if !violations.is_empty() {
            tally.invalid += 1;
            report.findings.push(Finding {
                position: entry.position,
                direction: sender,
                frame_type,
                violations,
            });
        }
    }
    report
}
