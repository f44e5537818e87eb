//! Checking frames against a schema bundle, and against this version's parser.

use std::collections::HashMap;
use std::fmt;

use jsonschema::error::{TypeKind, ValidationError, ValidationErrorKind};
use serde_json::{Map, Value, json};

use super::bundle::{Bundle, BundleError, Direction};
use crate::parse::json_kind;
use crate::schema::OPEN_KEYWORD;
use crate::{ClientFrame, ServerFrame};

/// One way a frame breaks the protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The offending value, as the server's error messages write it (`payload.decision`,
    /// `messages[0].content`); empty for the frame as a whole.
    pub path: String,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.reason)
        } else {
            write!(f, "{}: {}", self.path, self.reason)
        }
    }
}

/// The longest reason kept: the schema's messages quote the offending value, which can be large.
const MAX_REASON_CHARS: usize = 300;

impl Violation {
    fn new(path: impl Into<String>, reason: impl Into<String>) -> Self {
        let mut reason: String = reason.into();
        if let Some((cut, _)) = reason.char_indices().nth(MAX_REASON_CHARS) {
            reason.truncate(cut);
            reason.push('…');
        }
        Self {
            path: path.into(),
            reason,
        }
    }
}

/// The `event_seq` of the frames one connection receives: from 1, without gaps, whatever runtime
/// an event belongs to (docs/protocol.md §2.2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventSeq {
    last: u64,
}

impl EventSeq {
    /// Takes the next frame received: `Err((last, seq))` when its `event_seq` does not follow
    /// the last one. A frame without one (a response, a direct notification) passes.
    ///
    /// ```
    /// use letta_app_server_protocol::compat::EventSeq;
    /// use serde_json::json;
    ///
    /// let mut seq = EventSeq::default();
    /// assert_eq!(seq.follow(&json!({"type": "update_queue", "event_seq": 1})), Ok(()));
    /// assert_eq!(seq.follow(&json!({"type": "sync_response"})), Ok(()));
    /// assert_eq!(seq.follow(&json!({"type": "update_queue", "event_seq": 3})), Err((1, 3)));
    /// ```
    pub fn follow(&mut self, frame: &Value) -> Result<(), (u64, u64)> {
        let Some(seq) = frame.get("event_seq").and_then(Value::as_u64) else {
            return Ok(());
        };
        let last = std::mem::replace(&mut self.last, seq);
        if seq == last + 1 { Ok(()) } else { Err((last, seq)) }
    }
}

/// The frames of one direction, one compiled schema per frame `type`.
struct Frames {
    by_type: HashMap<String, Compiled>,
    /// Branches without a `type` constant (none in this project's bundle), as one union.
    untagged: Option<Compiled>,
    /// The union of the frames is marked open ([`OPEN_KEYWORD`]): a receiver keeps a frame type
    /// it does not know.
    open: bool,
}

/// A compiled schema and the document it was compiled from (error locations point into it).
struct Compiled {
    validator: jsonschema::Validator,
    root: Value,
}

/// Checks frames against a schema bundle.
///
/// [`Validator::current`] checks what this version accepts: the schema, then (for a frame the
/// schema accepts) the parser's checks the schema cannot express: non-empty ids, exactly one of
/// two fields, a runtime listed once, known file operations (docs/protocol.md §1.8).
/// [`Validator::new`] checks against any bundle, an older release's for example, with the schema
/// alone. Both are strict: a value the schema does not list is a violation, even where a
/// receiver would keep it; [`Validator::keeping_unknown`] judges as a receiver does.
///
/// ```
/// use letta_app_server_protocol::compat::{Direction, Validator};
/// use serde_json::json;
///
/// let validator = Validator::current();
/// let frame = json!({"type": "input", "request_id": "in-1", "payload": {"kind": "bogus"}});
/// let violations = validator.validate(Direction::Client, &frame);
/// assert!(!violations.is_empty());
/// assert!(validator.validate(Direction::Client, &json!({"type": "app_server_info", "request_id": "i-1"})).is_empty());
/// ```
pub struct Validator {
    client: Frames,
    server: Frames,
    parser_checks: bool,
    keep_unknown: bool,
}

impl fmt::Debug for Validator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Validator")
            .field("client_types", &self.client.by_type.len())
            .field("server_types", &self.server.by_type.len())
            .field("parser_checks", &self.parser_checks)
            .field("keep_unknown", &self.keep_unknown)
            .finish()
    }
}

impl Validator {
    /// This version's rules: its bundle and its parser.
    pub fn current() -> Self {
        let mut validator = Self::new(&Bundle::current()).expect("this version's bundle compiles");
        validator.parser_checks = true;
        validator
    }

    /// The rules of `bundle`'s schema alone.
    pub fn new(bundle: &Bundle) -> Result<Self, BundleError> {
        Ok(Self {
            client: Frames::compile(bundle, Direction::Client)?,
            server: Frames::compile(bundle, Direction::Server)?,
            parser_checks: false,
            keep_unknown: false,
        })
    }

    /// Judges as a receiver of this version does: accepts a frame type it does not know where
    /// the union of frames is open (`ServerFrame`), and a value or tag it does not know where the
    /// bundle marks the enum or union open ([`OPEN_KEYWORD`]: stop reasons, delta types, …).
    /// What the conformance kit uses, so that a newer server passes.
    ///
    /// ```
    /// use letta_app_server_protocol::compat::{Direction, Validator};
    /// use serde_json::json;
    ///
    /// let hologram = json!({"type": "hologram_ready"});
    /// assert!(!Validator::current().validate(Direction::Server, &hologram).is_empty());
    /// assert!(Validator::current().keeping_unknown().validate(Direction::Server, &hologram).is_empty());
    /// ```
    pub fn keeping_unknown(mut self) -> Self {
        self.keep_unknown = true;
        self
    }

    /// Every violation of a frame sent in `direction`; empty when it is valid.
    pub fn validate(&self, direction: Direction, frame: &Value) -> Vec<Violation> {
        let Some(object) = frame.as_object() else {
            return vec![Violation::new(
                "",
                format!("a frame is a JSON object, not {}", json_kind(frame)),
            )];
        };
        let frames = match direction {
            Direction::Client => &self.client,
            Direction::Server => &self.server,
        };
        let compiled = match object.get("type") {
            None => return vec![Violation::new("", "missing field `type`")],
            Some(Value::String(name)) => match frames.by_type.get(name).or(frames.untagged.as_ref()) {
                Some(compiled) => compiled,
                None if self.keep_unknown && frames.open => return Vec::new(),
                None => {
                    return vec![Violation::new(
                        "type",
                        format!("`{name}` is not a {direction} frame type of this schema"),
                    )];
                }
            },
            Some(other) => {
                return vec![Violation::new(
                    "type",
                    format!("must be a string, not {}", json_kind(other)),
                )];
            }
        };
        let open_in = self.keep_unknown.then_some(&compiled.root);
        let violations: Vec<Violation> = compiled
            .validator
            .iter_errors(frame)
            .flat_map(|error| explain(&error, open_in))
            .collect();
        if violations.is_empty() && self.parser_checks {
            return parser_violations(direction, frame);
        }
        violations
    }

    /// Every violation of a frame given as the text of a websocket message.
    pub fn validate_text(&self, direction: Direction, text: &str) -> Vec<Violation> {
        self.validate_message(Some(direction), text)
    }

    /// Every violation of the text of a websocket message sent by `direction`, or, when `None`,
    /// by its frame type's sender ([`Direction::of`]).
    pub fn validate_message(&self, direction: Option<Direction>, text: &str) -> Vec<Violation> {
        match serde_json::from_str::<Value>(text) {
            Ok(frame) => self.validate(direction.unwrap_or_else(|| Direction::of(&frame)), &frame),
            Err(error) => vec![Violation::new("", format!("not JSON: {error}"))],
        }
    }
}

impl Frames {
    fn compile(bundle: &Bundle, direction: Direction) -> Result<Self, BundleError> {
        let definitions = bundle.definitions();
        // A type with several branches (none in this project's bundle) is their union.
        let mut branches: HashMap<&str, Vec<Value>> = HashMap::new();
        let mut untagged = Vec::new();
        for (name, branch) in bundle.frames(direction) {
            if name.is_empty() {
                untagged.push(branch.clone());
            } else {
                branches.entry(name).or_default().push(branch.clone());
            }
        }
        let mut by_type = HashMap::new();
        for (name, mut alternatives) in branches {
            let schema = match alternatives.len() {
                1 => alternatives.remove(0),
                _ => json!({ "oneOf": alternatives }),
            };
            by_type.insert(name.to_owned(), compile(&schema, definitions)?);
        }
        let untagged = if untagged.is_empty() {
            None
        } else {
            Some(compile(&json!({ "oneOf": untagged }), definitions)?)
        };
        let open = definitions.get(direction.union()).is_some_and(is_open);
        Ok(Self {
            by_type,
            untagged,
            open,
        })
    }
}

/// A draft-07 validator of `schema`, with the definitions it refers to (and only those: a
/// frame uses a few of the bundle's hundreds).
fn compile(schema: &Value, definitions: &Map<String, Value>) -> Result<Compiled, BundleError> {
    let mut used = Map::new();
    let mut pending = Vec::new();
    references(schema, &mut pending);
    while let Some(name) = pending.pop() {
        if used.contains_key(&name) {
            continue;
        }
        let definition = definitions
            .get(&name)
            .ok_or_else(|| BundleError(format!("`#/definitions/{name}` is referred to but not defined")))?;
        references(definition, &mut pending);
        used.insert(name, definition.clone());
    }
    let mut root = schema.clone();
    if let Some(object) = root.as_object_mut() {
        object.insert("definitions".to_owned(), Value::Object(used));
    }
    let validator =
        jsonschema::draft7::new(&root).map_err(|e| BundleError(format!("the schema does not compile: {e}")))?;
    Ok(Compiled { validator, root })
}

/// Whether a schema is marked open ([`OPEN_KEYWORD`]).
fn is_open(schema: &Value) -> bool {
    schema.get(OPEN_KEYWORD).and_then(Value::as_bool) == Some(true)
}

/// Whether the keyword an error comes from belongs to a schema of `root` marked open (the
/// `enum` of an open enum, the `oneOf` of an open union).
fn in_open_schema(error: &ValidationError<'_>, root: &Value) -> bool {
    let location = error.schema_path().as_str();
    let parent = location.rsplit_once('/').map_or("", |(parent, _)| parent);
    root.pointer(parent).is_some_and(is_open)
}

/// Pushes the names of the definitions `schema` refers to.
fn references(schema: &Value, names: &mut Vec<String>) {
    match schema {
        Value::Object(object) => {
            for (key, value) in object {
                match (key.as_str(), value) {
                    ("$ref", Value::String(target)) => {
                        if let Some(name) = target.strip_prefix("#/definitions/") {
                            names.push(name.to_owned());
                        }
                    }
                    _ => references(value, names),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| references(item, names)),
        _ => {}
    }
}

/// The violations a schema error stands for. A value that matches no branch of a union is
/// explained through the one branch it was meant for — the branch its tag (`kind`, `type`, …)
/// selects, or the only one of its JSON type (`null` or an object, for an optional object) —
/// or as a tag that selects none, instead of as a failed `oneOf`. A missing or unknown field is
/// reported at its own path.
///
/// With `open_in` (the compiled document, when unknown values are kept), a value or tag an open
/// enum or union does not list is no violation.
fn explain(error: &ValidationError<'_>, open_in: Option<&Value>) -> Vec<Violation> {
    let path = error.instance_path();
    let kept = |error: &ValidationError<'_>| open_in.is_some_and(|root| in_open_schema(error, root));
    let depth = path.iter().count();
    let context = match error.kind() {
        ValidationErrorKind::OneOfNotValid { context } | ValidationErrorKind::AnyOf { context } => context,
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            return unexpected
                .iter()
                .map(|name| Violation::new(join(&dotted(path), name), "unknown field"))
                .collect();
        }
        ValidationErrorKind::Required { property } => {
            let name = property.as_str().map_or_else(|| property.to_string(), str::to_owned);
            return vec![Violation::new(join(&dotted(path), &name), "missing required field")];
        }
        ValidationErrorKind::Enum { .. } | ValidationErrorKind::Constant { .. } if kept(error) => return Vec::new(),
        _ => return vec![Violation::new(dotted(path), error.to_string())],
    };
    // The tag property and the value it must have, when a branch fails on its tag.
    let tag_of = |branch: &Vec<ValidationError<'static>>| {
        branch.iter().find_map(|e| match e.kind() {
            ValidationErrorKind::Constant { expected_value } if e.instance_path().iter().count() == depth + 1 => {
                let tag = e.instance_path().iter().last()?.to_string();
                Some((tag, expected_value.clone()))
            }
            _ => None,
        })
    };
    let wrong_type = |branch: &Vec<ValidationError<'static>>| {
        branch
            .iter()
            .any(|e| matches!(e.kind(), ValidationErrorKind::Type { .. }) && e.instance_path().iter().count() == depth)
    };
    let tags: Vec<_> = context.iter().map(tag_of).collect();
    let meant: Vec<_> = context
        .iter()
        .zip(&tags)
        .filter(|(branch, tag)| tag.is_none() && !wrong_type(branch))
        .map(|(branch, _)| branch)
        .collect();
    if let [branch] = meant.as_slice() {
        return branch.iter().flat_map(|error| explain(error, open_in)).collect();
    }
    let tagged: Vec<_> = tags.iter().flatten().collect();
    if meant.is_empty() && !tagged.is_empty() && tagged.iter().all(|(name, _)| *name == tagged[0].0) {
        if kept(error) {
            return Vec::new();
        }
        let name = &tagged[0].0;
        let allowed: Vec<String> = tagged.iter().map(|(_, value)| value.to_string()).collect();
        let got = error.instance()[name.as_str()].to_string();
        return vec![Violation::new(
            join(&dotted(path), name),
            format!("{got} is not one of {}", allowed.join(", ")),
        )];
    }
    if meant.is_empty() && context.iter().all(wrong_type) {
        let mut types: Vec<String> = context
            .iter()
            .flatten()
            .filter_map(|e| match e.kind() {
                ValidationErrorKind::Type { kind } => Some(match kind {
                    TypeKind::Single(single) => vec![single.to_string()],
                    TypeKind::Multiple(set) => set.iter().map(|t| t.to_string()).collect(),
                }),
                _ => None,
            })
            .flatten()
            .collect();
        types.dedup();
        return vec![Violation::new(
            dotted(path),
            format!("must be {}, not {}", types.join(" or "), json_kind(error.instance())),
        )];
    }
    vec![Violation::new(dotted(path), error.to_string())]
}

/// `parent.name`, or `name` at the top.
fn join(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_owned()
    } else {
        format!("{parent}.{name}")
    }
}

/// The parser's verdict on a frame the schema accepts.
fn parser_violations(direction: Direction, frame: &Value) -> Vec<Violation> {
    let error = match direction {
        Direction::Client => ClientFrame::from_value(frame.clone()).err(),
        Direction::Server => ServerFrame::from_value(frame.clone()).err(),
    };
    error
        .map(|error| vec![Violation::new(error.path.clone().unwrap_or_default(), error.reason)])
        .unwrap_or_default()
}

/// A JSON pointer as a dotted path with indexes in brackets.
fn dotted(location: &jsonschema::paths::Location) -> String {
    let mut path = String::new();
    for segment in location.iter() {
        match segment {
            jsonschema::paths::LocationSegment::Property(name) => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(&name);
            }
            jsonschema::paths::LocationSegment::Index(index) => {
                path.push_str(&format!("[{index}]"));
            }
        }
    }
    path
}
