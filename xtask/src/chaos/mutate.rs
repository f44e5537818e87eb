//! Mutated client frames, derived from the golden client frames (`tests/frames/<type>/`) and
//! the frames a server must reject (`tests/invalid_frames/`). Deterministic: the same seed
//! gives the same frames.

use std::sync::Arc;

use letta_app_server_tests::schema::Direction;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{RngExt, SeedableRng};
use serde_json::{Map, Value, json};

/// The server's default largest inbound frame (`--max-frame-bytes`).
pub const MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;

/// How a frame was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// A golden frame as it is.
    Golden,
    /// A case of `tests/invalid_frames/` as it is.
    InvalidCase,
    /// A value replaced by one of another type (object → array, string → number, null, …).
    TypeConfusion,
    /// A field removed.
    DroppedField,
    /// A top-level field written twice, the first time with another value.
    DuplicatedField,
    /// A string (an id, preferably) replaced by one of 256 KiB to 4 MiB.
    LongString,
    /// A whole frame larger than the server's limit.
    OversizedFrame,
    /// A value replaced by arrays or objects nested thousands deep.
    DeepNesting,
    /// The JSON text cut short.
    Truncated,
    /// Invalid escapes and numbers: lone surrogates, `\u0000`, `1e999`, 40-digit integers.
    BadLiterals,
    /// Two to four of the mutations above on one frame.
    Stacked,
    /// Random printable text that looks a little like JSON.
    RandomText,
    /// Random bytes in a binary frame.
    RandomBinary,
    /// A text frame whose bytes are not UTF-8 (a websocket protocol error).
    InvalidUtf8Text,
    /// A binary frame whose bytes are not UTF-8.
    InvalidUtf8Binary,
}

impl Kind {
    /// How it is named in reports.
    pub fn label(self) -> &'static str {
        match self {
            Self::Golden => "golden frame as is",
            Self::InvalidCase => "invalid-frame case as is",
            Self::TypeConfusion => "type confusion",
            Self::DroppedField => "dropped field",
            Self::DuplicatedField => "duplicated field",
            Self::LongString => "string of 256 KiB–4 MiB",
            Self::OversizedFrame => "frame over the 16 MiB limit",
            Self::DeepNesting => "deep nesting",
            Self::Truncated => "truncated JSON",
            Self::BadLiterals => "bad escapes and numbers",
            Self::Stacked => "several mutations",
            Self::RandomText => "random text",
            Self::RandomBinary => "random binary",
            Self::InvalidUtf8Text => "invalid UTF-8 text frame",
            Self::InvalidUtf8Binary => "invalid UTF-8 binary frame",
        }
    }
}

/// How many of each kind, per 1,000 frames. Frames of MiBs are rare: they dominate the run
/// time and the memory of the clients and the server.
const WEIGHTS: &[(Kind, u32)] = &[
    (Kind::Golden, 20),
    (Kind::InvalidCase, 40),
    (Kind::TypeConfusion, 200),
    (Kind::DroppedField, 140),
    (Kind::DuplicatedField, 80),
    (Kind::LongString, 6),
    (Kind::OversizedFrame, 1),
    (Kind::DeepNesting, 50),
    (Kind::Truncated, 120),
    (Kind::BadLiterals, 80),
    (Kind::Stacked, 130),
    (Kind::RandomText, 60),
    (Kind::RandomBinary, 40),
    (Kind::InvalidUtf8Text, 3),
    (Kind::InvalidUtf8Binary, 30),
];

/// What goes on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// A text frame.
    Text(String),
    /// A binary frame.
    Binary(Vec<u8>),
    /// A text frame whose bytes are not UTF-8 (sent as a raw websocket frame).
    BadText(Vec<u8>),
}

impl Payload {
    /// The frame's length in bytes.
    pub fn len(&self) -> usize {
        match self {
            Self::Text(text) => text.len(),
            Self::Binary(bytes) | Self::BadText(bytes) => bytes.len(),
        }
    }
}

/// One mutated frame.
#[derive(Debug, Clone)]
pub struct Mutant {
    /// How it was made.
    pub kind: Kind,
    /// The frame.
    pub payload: Payload,
    /// Its `type`, when it is still a JSON object with a string `type` (for the report).
    pub frame_type: Option<String>,
    /// Its `request_id`, when it is still a JSON object with a string one (to recognise a late
    /// answer).
    pub request_id: Option<String>,
}

/// The frames mutations start from.
pub struct Corpus {
    /// Golden client frames.
    golden: Vec<Value>,
    /// The texts of the invalid-frame cases.
    invalid: Vec<String>,
}

impl Corpus {
    /// Loads the golden client frames and the invalid-frame cases from `tests/`.
    pub fn load() -> Arc<Self> {
        let golden = letta_app_server_tests::golden_frames()
            .into_iter()
            .filter(|frame| frame.sent_by(Direction::Client))
            .map(|frame| frame.json)
            .collect();
        let invalid = letta_app_server_tests::invalid_frames()
            .into_iter()
            .map(|case| case.text)
            .collect();
        Arc::new(Self { golden, invalid })
    }
}

/// Makes mutated frames from a seed. Every frame that has a `request_id` gets a unique one
/// (`<prefix>-<n>`) before it is mutated.
pub struct Mutator {
    rng: StdRng,
    corpus: Arc<Corpus>,
    prefix: String,
    serial: u64,
}

/// Nested arrays or objects this deep at most (serde_json stops at 128).
const MAX_DEPTH: usize = 100_000;

impl Mutator {
    /// A generator seeded with `seed`; its request ids start with `prefix`.
    pub fn new(corpus: Arc<Corpus>, seed: u64, prefix: &str) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
            corpus,
            prefix: prefix.to_owned(),
            serial: 0,
        }
    }

    /// The next frame.
    pub fn next_frame(&mut self) -> Mutant {
        let total: u32 = WEIGHTS.iter().map(|(_, weight)| weight).sum();
        let mut pick = self.rng.random_range(0..total);
        let kind = WEIGHTS
            .iter()
            .find(|(_, weight)| {
                let found = pick < *weight;
                pick = pick.saturating_sub(*weight);
                found
            })
            .map_or(Kind::TypeConfusion, |(kind, _)| *kind);
        self.make(kind)
    }

    /// A frame of this kind.
    pub fn make(&mut self, kind: Kind) -> Mutant {
        let payload = match kind {
            Kind::InvalidCase => Payload::Text(self.corpus.invalid.choose(&mut self.rng).cloned().unwrap_or_default()),
            Kind::RandomText => Payload::Text(self.random_text()),
            Kind::RandomBinary => {
                let mut bytes = vec![0; self.rng.random_range(1..2048)];
                self.rng.fill(&mut bytes[..]);
                Payload::Binary(bytes)
            }
            Kind::InvalidUtf8Text => Payload::BadText(self.invalid_utf8()),
            Kind::InvalidUtf8Binary => Payload::Binary(self.invalid_utf8()),
            Kind::OversizedFrame => {
                let mut frame = self.golden();
                frame["padding"] = json!("x".repeat(MAX_FRAME_BYTES + 1));
                Payload::Text(frame.to_string())
            }
            Kind::Stacked => {
                let mut frame = self.golden();
                let mut text = None;
                for _ in 0..self.rng.random_range(2..=4) {
                    let step = *[
                        Kind::TypeConfusion,
                        Kind::DroppedField,
                        Kind::DeepNesting,
                        Kind::BadLiterals,
                    ]
                    .choose(&mut self.rng)
                    .unwrap_or(&Kind::TypeConfusion);
                    // A textual mutation ends the stack: its result is no longer a value.
                    if let Some(mutated) = self.mutate(&mut frame, step) {
                        text = Some(mutated);
                        break;
                    }
                }
                Payload::Text(text.unwrap_or_else(|| frame.to_string()))
            }
            Kind::Golden
            | Kind::TypeConfusion
            | Kind::DroppedField
            | Kind::DuplicatedField
            | Kind::LongString
            | Kind::DeepNesting
            | Kind::Truncated
            | Kind::BadLiterals => {
                let mut frame = self.golden();
                let text = self.mutate(&mut frame, kind);
                Payload::Text(text.unwrap_or_else(|| frame.to_string()))
            }
        };
        let parsed = match &payload {
            Payload::Text(text) => serde_json::from_str::<Value>(text).ok(),
            Payload::Binary(_) | Payload::BadText(_) => None,
        };
        let field = |name: &str| {
            parsed
                .as_ref()
                .and_then(|frame| frame.get(name))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        Mutant {
            kind,
            frame_type: field("type"),
            request_id: field("request_id"),
            payload,
        }
    }

    /// A golden frame, with a unique `request_id` if it has one.
    fn golden(&mut self) -> Value {
        let mut frame = self.corpus.golden.choose(&mut self.rng).cloned().unwrap_or_default();
        if frame.get("request_id").is_some_and(Value::is_string) {
            self.serial += 1;
            frame["request_id"] = json!(format!("{}-{}", self.prefix, self.serial));
        }
        frame
    }

    /// Applies one mutation: in place (returns `None`), or as text when the result is no longer
    /// a JSON value that serde can hold (returns the text).
    fn mutate(&mut self, frame: &mut Value, kind: Kind) -> Option<String> {
        match kind {
            Kind::TypeConfusion => {
                let path = self.any_path(frame);
                if let Some(node) = pointer_mut(frame, &path) {
                    *node = self.confused(node);
                }
                None
            }
            Kind::DroppedField => {
                let objects: Vec<Vec<Step>> = paths(frame)
                    .into_iter()
                    .filter(|path| {
                        pointer(frame, path)
                            .and_then(Value::as_object)
                            .is_some_and(|o| !o.is_empty())
                    })
                    .collect();
                if let Some(path) = objects.choose(&mut self.rng)
                    && let Some(Value::Object(object)) = pointer_mut(frame, path)
                {
                    let keys: Vec<String> = object.keys().cloned().collect();
                    if let Some(key) = keys.choose(&mut self.rng) {
                        object.remove(key);
                    }
                }
                None
            }
            Kind::DuplicatedField => {
                let object = frame.as_object()?;
                let key = object
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .choose(&mut self.rng)?
                    .clone();
                let first = self.confused(&object[&key]);
                let text = frame.to_string();
                // `{"key":<other value>,` + the frame without its opening brace.
                Some(format!(
                    "{{{}:{},{}",
                    json!(key),
                    first,
                    text.get(1..).unwrap_or_default()
                ))
            }
            Kind::LongString => {
                let strings: Vec<Vec<Step>> = paths(frame)
                    .into_iter()
                    .filter(|path| pointer(frame, path).is_some_and(Value::is_string))
                    .collect();
                let ids: Vec<&Vec<Step>> = strings.iter().filter(|path| is_id(path)).collect();
                let path = match ids.choose(&mut self.rng) {
                    Some(path) if self.rng.random_bool(0.8) => (*path).clone(),
                    _ => strings.choose(&mut self.rng)?.clone(),
                };
                let length = self.rng.random_range(256 * 1024..=4 * 1024 * 1024);
                let unit = self.random_word(64);
                if let Some(node) = pointer_mut(frame, &path) {
                    *node = json!(unit.repeat(length / unit.len()));
                }
                None
            }
            Kind::DeepNesting => {
                let depth = self.rng.random_range(200..=MAX_DEPTH);
                let (open, close) = if self.rng.random_bool(0.5) {
                    ("[".to_owned(), "]")
                } else {
                    ("{\"a\":".to_owned(), "}")
                };
                Some(self.splice(frame, &format!("{}1{}", open.repeat(depth), close.repeat(depth))))
            }
            Kind::Truncated => {
                let text = frame.to_string();
                let mut cut = self.rng.random_range(0..text.len().max(1));
                while !text.is_char_boundary(cut) {
                    cut -= 1;
                }
                Some(text[..cut].to_owned())
            }
            Kind::BadLiterals => {
                let literal = *[
                    r#""\ud800""#,
                    r#""\udfff\ud800""#,
                    r#""a\u0000b""#,
                    r#""\x41""#,
                    r#""tab	inside""#,
                    "1e999",
                    "-1e999",
                    "-0",
                    "1234567890123456789012345678901234567890",
                    "0x10",
                    "NaN",
                    "Infinity",
                    "01",
                    "+1",
                    "\"\u{feff}\"",
                ]
                .choose(&mut self.rng)
                .unwrap_or(&"1e999");
                Some(self.splice(frame, literal))
            }
            _ => None,
        }
    }

    /// The frame's text with one value (anywhere but the root) replaced by `replacement` text.
    fn splice(&mut self, frame: &mut Value, replacement: &str) -> String {
        const MARKER: &str = "\u{1}splice\u{1}";
        let candidates: Vec<Vec<Step>> = paths(frame).into_iter().filter(|path| !path.is_empty()).collect();
        match candidates
            .choose(&mut self.rng)
            .and_then(|path| pointer_mut(frame, path))
        {
            Some(node) => {
                *node = json!(MARKER);
                frame.to_string().replacen(&json!(MARKER).to_string(), replacement, 1)
            }
            None => replacement.to_owned(),
        }
    }

    /// A value of another type than `value`.
    fn confused(&mut self, value: &Value) -> Value {
        let options = match value {
            Value::Object(object) => vec![
                Value::Array(object.values().cloned().collect()),
                json!(object.len()),
                json!("object"),
            ],
            Value::Array(items) => vec![
                Value::Object(
                    items
                        .iter()
                        .enumerate()
                        .map(|(index, item)| (index.to_string(), item.clone()))
                        .collect::<Map<String, Value>>(),
                ),
                json!(items.len()),
                json!(""),
            ],
            Value::String(text) => vec![
                json!(text.len()),
                json!(-1),
                json!(true),
                json!([text]),
                json!({ "value": text }),
            ],
            Value::Number(number) => vec![
                json!(number.to_string()),
                json!(false),
                json!([number]),
                json!(u64::MAX),
            ],
            Value::Bool(flag) => vec![json!(flag.to_string()), json!(u8::from(*flag))],
            Value::Null => vec![json!({}), json!(""), json!(0)],
        };
        let mut options = options;
        options.push(Value::Null);
        if value.is_null() {
            options.pop();
        }
        options.choose(&mut self.rng).cloned().unwrap_or(Value::Null)
    }

    /// Any node of `frame`, the root included.
    fn any_path(&mut self, frame: &Value) -> Vec<Step> {
        paths(frame).choose(&mut self.rng).cloned().unwrap_or_default()
    }

    fn random_word(&mut self, length: usize) -> String {
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789-";
        (0..length)
            .map(|_| char::from(*ALPHABET.choose(&mut self.rng).unwrap_or(&b'x')))
            .collect()
    }

    fn random_text(&mut self) -> String {
        const ALPHABET: &[char] = &[
            '{', '}', '[', ']', '"', ':', ',', '\\', ' ', 't', 'y', 'p', 'e', '0', '1', 'n', 'u', 'l', 'é', '€', '😀',
            '\u{0}', '\n',
        ];
        let length = self.rng.random_range(0..512);
        (0..length)
            .map(|_| *ALPHABET.choose(&mut self.rng).unwrap_or(&' '))
            .collect()
    }

    /// A golden frame's text with some bytes made invalid UTF-8.
    fn invalid_utf8(&mut self) -> Vec<u8> {
        let mut bytes = self.golden().to_string().into_bytes();
        for _ in 0..self.rng.random_range(1..=3) {
            let at = self.rng.random_range(0..bytes.len().max(1));
            let bad: &[u8] = [&[0xff][..], &[0xc0, 0x80], &[0xed, 0xa0, 0x80], &[0xe2, 0x82]]
                .choose(&mut self.rng)
                .copied()
                .unwrap_or(&[0xff]);
            bytes.splice(at..at, bad.iter().copied());
        }
        bytes
    }
}

/// One step of a path into a JSON value.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

/// Whether a path ends in an id field (`request_id`, `agent_id`, `client_message_id`, …).
fn is_id(path: &[Step]) -> bool {
    matches!(path.last(), Some(Step::Key(key)) if key == "id" || key.ends_with("_id"))
}

/// The path of every node of `value`, the root (`[]`) first.
fn paths(value: &Value) -> Vec<Vec<Step>> {
    let mut out = vec![Vec::new()];
    let mut index = 0;
    while index < out.len() {
        let path = out[index].clone();
        match pointer(value, &path) {
            Some(Value::Object(object)) => {
                for key in object.keys() {
                    out.push([path.clone(), vec![Step::Key(key.clone())]].concat());
                }
            }
            Some(Value::Array(items)) => {
                for item in 0..items.len() {
                    out.push([path.clone(), vec![Step::Index(item)]].concat());
                }
            }
            _ => {}
        }
        index += 1;
    }
    out
}

fn pointer<'a>(value: &'a Value, path: &[Step]) -> Option<&'a Value> {
    path.iter().try_fold(value, |node, step| match step {
        Step::Key(key) => node.get(key),
        Step::Index(index) => node.get(index),
    })
}

fn pointer_mut<'a>(value: &'a mut Value, path: &[Step]) -> Option<&'a mut Value> {
    path.iter().try_fold(value, |node, step| match step {
        Step::Key(key) => node.get_mut(key),
        Step::Index(index) => node.get_mut(index),
    })
}

#[cfg(test)]
mod tests {
    use letta_app_server_protocol::ClientFrame;

    use super::*;

    fn mutator(seed: u64) -> Mutator {
        Mutator::new(Corpus::load(), seed, "m")
    }

    #[test]
    fn the_same_seed_makes_the_same_frames() {
        let (mut a, mut b) = (mutator(7), mutator(7));
        for _ in 0..300 {
            let (x, y) = (a.next_frame(), b.next_frame());
            assert_eq!((x.kind, &x.payload), (y.kind, &y.payload));
        }
        let mut c = mutator(8);
        let differ = (0..50).any(|_| a.next_frame().payload != c.next_frame().payload);
        assert!(differ, "another seed makes other frames");
    }

    #[test]
    fn each_kind_breaks_the_frame_as_it_says() {
        let mut mutator = mutator(1);
        for _ in 0..50 {
            let nested = mutator.make(Kind::DeepNesting);
            let Payload::Text(text) = &nested.payload else {
                panic!("text")
            };
            assert!(
                text.contains("[[[[[[[[") || text.contains(r#"{"a":{"a":"#),
                "{text:.200}"
            );
            assert!(serde_json::from_str::<Value>(text).is_err(), "too deep for serde_json");

            let Payload::Text(text) = mutator.make(Kind::Truncated).payload else {
                panic!("text")
            };
            assert!(
                serde_json::from_str::<Value>(&text).is_err(),
                "a cut frame is not JSON: {text}"
            );

            let long = mutator.make(Kind::LongString);
            assert!(
                (200 * 1024..MAX_FRAME_BYTES).contains(&long.payload.len()),
                "{}",
                long.payload.len()
            );

            let Payload::Text(text) = mutator.make(Kind::DuplicatedField).payload else {
                panic!("text")
            };
            let key = text[1..].split(':').next().expect("a key");
            assert!(text.matches(&format!("{key}:")).count() >= 2, "{text:.300}");

            let Payload::BadText(bytes) = mutator.make(Kind::InvalidUtf8Text).payload else {
                panic!("raw text")
            };
            assert!(std::str::from_utf8(&bytes).is_err());
        }
        assert!(mutator.make(Kind::OversizedFrame).payload.len() > MAX_FRAME_BYTES);
    }

    #[test]
    fn golden_frames_stay_valid_and_get_unique_request_ids() {
        let mut mutator = mutator(3);
        let mut ids = std::collections::HashSet::new();
        for _ in 0..200 {
            let golden = mutator.make(Kind::Golden);
            let Payload::Text(text) = &golden.payload else {
                panic!("text")
            };
            assert!(ClientFrame::from_json(text).is_ok(), "{text}");
            if let Some(id) = golden.request_id {
                assert!(ids.insert(id.clone()), "{id} twice");
            }
        }
        assert!(ids.len() > 50);
        let confused = (0..200)
            .filter(|_| match mutator.make(Kind::TypeConfusion).payload {
                Payload::Text(text) => ClientFrame::from_json(&text).is_err(),
                _ => false,
            })
            .count();
        assert!(
            confused > 100,
            "most type confusions make an invalid frame: {confused} of 200"
        );
    }
}
