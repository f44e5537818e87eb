//! Schema diff: what changed between two bundles, and whom each change breaks.
//!
//! [`diff`] walks two bundles side by side, frame by frame ([`Bundle::frames`] of each
//! [`Direction`], matched by their `type` constant), then into properties, array items, map
//! values and union branches, resolving every `$ref` into the bundle's `definitions` (a
//! definition that refers to itself is compared once per path). Each difference is a [`Change`]:
//! where ([`Change::path`]), what ([`ChangeKind`]) and whom it breaks ([`Class`]).
//!
//! # Paths
//!
//! A path is readable and starts at the frame: `ServerFrame[turn_finished].usage.total_tokens`.
//!
//! | part | means |
//! |---|---|
//! | `ClientFrame[input]`, `ServerFrame[turn_finished]` | the frame of that `type` |
//! | `.name` | a property |
//! | `[]` | the items of an array (`[0]`, `[1]` for the positions of a tuple) |
//! | `{}` | the values of a map (`additionalProperties`) |
//! | `[create_message]` | the branch of a tagged union with that tag (`kind`, `message_type`, …) |
//! | `<string>`, `<#1>` | a branch of an untagged union, by its JSON type, else by its position |
//!
//! Untagged union branches (`string` or `array` content) are matched by their JSON type when it
//! tells them apart on both sides, the others by their order. Descriptions are not compared,
//! except for the openness they declare (below). A definition shared by several frames is
//! reported under each frame that uses it, because the class depends on the direction.
//!
//! # Classes
//!
//! * **Breaks clients**: a client written against OLD can fail against a server that follows
//!   NEW. Frames it sends may now be rejected (client frames *narrowed*: a frame type removed, a
//!   field made required, a value removed, a type narrowed), or frames it receives may now carry
//!   what it could not expect (server frames *widened*: a value or branch added to a closed enum
//!   or union, a field made optional or nullable, a required field removed, a type widened), or a
//!   server frame type it may wait for is gone.
//! * **Breaks servers**: a server implementing OLD no longer conforms to NEW. New clients send
//!   what it would reject (client frames widened: a frame type added, a field added to an object
//!   that refuses unknown fields, a value added to a closed enum, a required field made
//!   optional), or NEW requires what it never sends (server frames narrowed: a required field
//!   added, a field made non-nullable, a value removed from a closed enum).
//! * **Breaks both** ([`Class::BreaksBoth`]): both at once, e.g. a type changed from string to
//!   integer, or a field added as required to an object that refuses unknown fields.
//! * **Compatible**: neither; for example an optional field added to an object that tolerates
//!   unknown fields, a new server frame type (`ServerFrame` is open), a value added to an open
//!   enum of server frames.
//!
//! Widening is harmless where the receiver (under OLD) tolerates the new values, narrowing where
//! the receiver under NEW does:
//!
//! * **Objects** tolerate unknown fields unless `additionalProperties` is `false`: the protocol
//!   crate ignores extra fields in both directions, and marks the few objects that refuse them
//!   that way (README, "Compatibility rules"). A removed optional field is compatible where
//!   unknown fields are tolerated, an added optional one likewise.
//! * **Enums and tagged unions** are open (an unknown value is kept) or closed (an error). This
//!   project's bundles mark the open ones with `"x-open": true` ([`OPEN_KEYWORD`], emitted by
//!   the protocol crate for `ServerFrame`, its informational enums and its open tagged unions);
//!   whatever is unmarked is closed. In an older bundle without the keyword, a description
//!   sentence starting with `Open:` or `Closed:` declares it, and undeclared, a named one (a
//!   definition) is taken as open in server frames and everything else as closed.
//! * **Frame types** follow the same rule: `ClientFrame` is closed, so a new command breaks
//!   servers; `ServerFrame` is open, so a new server frame is compatible. A removed server frame
//!   type still breaks clients: an old client may wait for it (a response, `turn_finished`).
//! * **Opening** a closed enum or union is widening (NEW senders may send values OLD receivers
//!   reject); **closing** an open one is narrowing.
//!
//! ```
//! use letta_app_server_protocol::compat::{Bundle, ChangeKind, Class, diff};
//! use serde_json::json;
//!
//! let bundle = |status: serde_json::Value| {
//!     Bundle::from_value(json!({"definitions": {
//!         "ClientFrame": {"oneOf": []},
//!         "ServerFrame": {"oneOf": [{"type": "object", "required": ["type", "status"], "properties": {
//!             "type": {"const": "job_done"},
//!             "status": status,
//!         }}]},
//!     }}))
//! };
//! let old = bundle(json!({"type": "string", "enum": ["ok", "failed"]}))?;
//! let new = bundle(json!({"type": "string", "enum": ["ok", "failed", "cancelled"]}))?;
//! let changes = diff(&old, &new);
//! assert_eq!(changes[0].path, "ServerFrame[job_done].status");
//! assert_eq!(changes[0].kind, ChangeKind::ValueAdded { value: json!("cancelled") });
//! // An inline enum is closed: an old client may meet a value it cannot read.
//! assert_eq!(changes[0].class, Class::BreaksClients);
//! # Ok::<(), letta_app_server_protocol::compat::BundleError>(())
//! ```

use std::collections::{BTreeSet, HashSet};
use std::fmt;

use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

use super::bundle::{Bundle, Direction};
use crate::schema::OPEN_KEYWORD;

/// Whom a change breaks (see the [module docs](self) for the rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Class {
    /// Breaks clients written against the old bundle and servers implementing it.
    BreaksBoth,
    /// A client written against the old bundle can fail against a server that follows the new.
    BreaksClients,
    /// A server implementing the old bundle no longer conforms to the new one.
    BreaksServers,
    /// Neither.
    Compatible,
}

impl Class {
    /// Every class, the most breaking first.
    pub const ALL: [Class; 4] = [
        Class::BreaksBoth,
        Class::BreaksClients,
        Class::BreaksServers,
        Class::Compatible,
    ];

    /// The class of a change that breaks clients, servers, both or neither.
    pub fn new(breaks_clients: bool, breaks_servers: bool) -> Self {
        match (breaks_clients, breaks_servers) {
            (true, true) => Self::BreaksBoth,
            (true, false) => Self::BreaksClients,
            (false, true) => Self::BreaksServers,
            (false, false) => Self::Compatible,
        }
    }

    /// Whether clients written against the old bundle can fail.
    pub fn breaks_clients(self) -> bool {
        matches!(self, Self::BreaksBoth | Self::BreaksClients)
    }

    /// Whether servers implementing the old bundle no longer conform.
    pub fn breaks_servers(self) -> bool {
        matches!(self, Self::BreaksBoth | Self::BreaksServers)
    }

    /// `breaks-both`, `breaks-clients`, `breaks-servers` or `compatible`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BreaksBoth => "breaks-both",
            Self::BreaksClients => "breaks-clients",
            Self::BreaksServers => "breaks-servers",
            Self::Compatible => "compatible",
        }
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One difference between two bundles.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// Where, from the frame down (`ServerFrame[turn_finished].usage`; see the module docs).
    pub path: String,
    /// Who sends the frame it is in.
    #[serde(serialize_with = "direction_name")]
    pub direction: Direction,
    /// What changed.
    #[serde(flatten)]
    pub kind: ChangeKind,
    /// Whom it breaks.
    pub class: Class,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.kind)
    }
}

fn direction_name<S: Serializer>(direction: &Direction, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(direction.as_str())
}

/// What changed at a [`Change::path`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChangeKind {
    /// A frame type is new.
    FrameAdded,
    /// A frame type is gone.
    FrameRemoved,
    /// A union has a new branch.
    BranchAdded,
    /// A union lost a branch.
    BranchRemoved,
    /// An object has a new property.
    FieldAdded {
        /// Whether the new property is required.
        required: bool,
    },
    /// An object lost a property.
    FieldRemoved {
        /// Whether the property was required.
        required: bool,
    },
    /// An optional property became required.
    MadeRequired,
    /// A required property became optional.
    MadeOptional,
    /// `null` is now allowed.
    MadeNullable,
    /// `null` is no longer allowed.
    MadeNonNullable,
    /// The new schema accepts every value the old one did, and more.
    TypeWidened {
        /// The old type.
        from: String,
        /// The new type.
        to: String,
    },
    /// The old schema accepted every value the new one does, and more.
    TypeNarrowed {
        /// The old type.
        from: String,
        /// The new type.
        to: String,
    },
    /// Each schema accepts values the other rejects.
    TypeChanged {
        /// The old type.
        from: String,
        /// The new type.
        to: String,
    },
    /// An enum or constant allows a new value.
    ValueAdded {
        /// The value.
        value: Value,
    },
    /// An enum or constant no longer allows a value.
    ValueRemoved {
        /// The value.
        value: Value,
    },
    /// A closed enum or union became open: unknown values are now kept.
    UnionOpened,
    /// An open enum or union became closed: unknown values are now rejected.
    UnionClosed,
    /// An object that refused unknown properties now allows them.
    UnknownFieldsAllowed,
    /// An object that allowed unknown properties now refuses them.
    UnknownFieldsRejected,
}

impl fmt::Display for ChangeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let required = |required: &bool| if *required { "required" } else { "optional" };
        match self {
            Self::FrameAdded => f.write_str("frame type added"),
            Self::FrameRemoved => f.write_str("frame type removed"),
            Self::BranchAdded => f.write_str("union branch added"),
            Self::BranchRemoved => f.write_str("union branch removed"),
            Self::FieldAdded { required: r } => write!(f, "{} field added", required(r)),
            Self::FieldRemoved { required: r } => write!(f, "{} field removed", required(r)),
            Self::MadeRequired => f.write_str("optional field made required"),
            Self::MadeOptional => f.write_str("required field made optional"),
            Self::MadeNullable => f.write_str("null now allowed"),
            Self::MadeNonNullable => f.write_str("null no longer allowed"),
            Self::TypeWidened { from, to } => write!(f, "type widened from {from} to {to}"),
            Self::TypeNarrowed { from, to } => write!(f, "type narrowed from {from} to {to}"),
            Self::TypeChanged { from, to } => write!(f, "type changed from {from} to {to}"),
            Self::ValueAdded { value } => write!(f, "value {value} added"),
            Self::ValueRemoved { value } => write!(f, "value {value} removed"),
            Self::UnionOpened => f.write_str("opened: unknown values are now kept"),
            Self::UnionClosed => f.write_str("closed: unknown values are now rejected"),
            Self::UnknownFieldsAllowed => f.write_str("unknown fields now allowed"),
            Self::UnknownFieldsRejected => f.write_str("unknown fields now rejected"),
        }
    }
}

/// Every change from `old` to `new`: client frames first, then server frames, each in the new
/// bundle's order with removed frames last.
pub fn diff(old: &Bundle, new: &Bundle) -> Vec<Change> {
    let mut changes = Vec::new();
    let marked = (marks_openness(old), marks_openness(new));
    for direction in Direction::BOTH {
        let union = direction.union();
        let declared = |bundle: &Bundle| bundle.definitions().get(union).and_then(declared_openness);
        let declared = (declared(old), declared(new));
        // The unions of frames are definitions: unmarked, open in server frames of an older bundle.
        let open = (
            declared.0.unwrap_or(!marked.0 && direction == Direction::Server),
            declared.1.unwrap_or(!marked.1 && direction == Direction::Server),
        );
        let mut walk = Walk {
            old: old.definitions(),
            new: new.definitions(),
            direction,
            marked,
            active: HashSet::new(),
            changes: &mut changes,
        };
        walk.openness(union, declared, open);
        walk.branches(
            union,
            &frames_by_type(old, direction),
            &frames_by_type(new, direction),
            open,
            true,
        );
    }
    changes
}

/// The frames of a direction keyed by `type` (`#<position>` for a branch without one).
fn frames_by_type(bundle: &Bundle, direction: Direction) -> Vec<(String, &Value)> {
    bundle
        .frames(direction)
        .into_iter()
        .enumerate()
        .map(|(position, (frame_type, branch))| {
            let key = if frame_type.is_empty() {
                format!("#{position}")
            } else {
                frame_type.to_owned()
            };
            (key, branch)
        })
        .collect()
}

/// Accepts anything: an absent `items` or `additionalProperties`.
static ANY: Value = Value::Bool(true);

/// One side-by-side walk of the frames of one direction.
struct Walk<'a, 'c> {
    old: &'a Map<String, Value>,
    new: &'a Map<String, Value>,
    direction: Direction,
    /// Whether each bundle marks its open enums and unions with [`OPEN_KEYWORD`] (then whatever
    /// is unmarked is closed).
    marked: (bool, bool),
    /// The pairs of schemas (by address in their bundles) being compared on the current path:
    /// the recursion guard. Both bundles are finite, so an endless descent comes back to a pair,
    /// which has been compared from there already.
    active: HashSet<(*const Value, *const Value)>,
    changes: &'c mut Vec<Change>,
}

impl<'a> Walk<'a, '_> {
    /// Records a change that widens (NEW accepts what OLD's receivers reject) or narrows (OLD's
    /// senders may send what NEW rejects) what a frame of this direction may hold.
    fn push(&mut self, path: impl Into<String>, kind: ChangeKind, widens: bool, narrows: bool) {
        let (breaks_clients, breaks_servers) = match self.direction {
            Direction::Client => (narrows, widens),
            // An old client may be waiting for a frame type the new server never sends.
            Direction::Server => (widens || kind == ChangeKind::FrameRemoved, narrows),
        };
        self.changes.push(Change {
            path: path.into(),
            direction: self.direction,
            kind,
            class: Class::new(breaks_clients, breaks_servers),
        });
    }

    fn compare(&mut self, path: &str, old: &'a Value, new: &'a Value) {
        let old = Node::resolve(self.old, old);
        let new = Node::resolve(self.new, new);
        let pair: (*const Value, *const Value) = (old.schema, new.schema);
        if !self.active.insert(pair) {
            return;
        }
        self.compare_nodes(path, &old, &new);
        self.active.remove(&pair);
    }

    fn compare_nodes(&mut self, path: &str, old: &Node<'a>, new: &Node<'a>) {
        match (old.nullable, new.nullable) {
            (false, true) => self.push(path, ChangeKind::MadeNullable, true, false),
            (true, false) => self.push(path, ChangeKind::MadeNonNullable, false, true),
            _ => {}
        }
        let open = (
            old.open(self.direction, self.marked.0),
            new.open(self.direction, self.marked.1),
        );
        match (&old.shape, &new.shape) {
            (Shape::Any, Shape::Any) => {}
            (Shape::Any, _) => self.push(
                path,
                ChangeKind::TypeNarrowed {
                    from: old.describe(),
                    to: new.describe(),
                },
                false,
                true,
            ),
            (_, Shape::Any) => self.push(
                path,
                ChangeKind::TypeWidened {
                    from: old.describe(),
                    to: new.describe(),
                },
                true,
                false,
            ),
            (Shape::Values(before), Shape::Values(after)) => {
                for value in after.iter().filter(|value| !before.contains(value)) {
                    let value = (*value).clone();
                    self.push(path, ChangeKind::ValueAdded { value }, !open.0, false);
                }
                for value in before.iter().filter(|value| !after.contains(value)) {
                    let value = (*value).clone();
                    self.push(path, ChangeKind::ValueRemoved { value }, false, !open.1);
                }
                self.openness(path, (old.declared_open, new.declared_open), open);
            }
            (
                Shape::Tagged { tag, branches: before },
                Shape::Tagged {
                    tag: same,
                    branches: after,
                },
            ) if tag == same => {
                let keyed = |branches: &[(&'a str, &'a Value)]| -> Vec<(String, &'a Value)> {
                    branches
                        .iter()
                        .map(|(tag, branch)| ((*tag).to_owned(), *branch))
                        .collect()
                };
                self.branches(path, &keyed(before), &keyed(after), open, false);
                self.openness(path, (old.declared_open, new.declared_open), open);
            }
            (Shape::Union(before), Shape::Union(after)) => {
                self.untagged(path, before, after, open);
                self.openness(path, (old.declared_open, new.declared_open), open);
            }
            (Shape::Union(before), _) => self.untagged(path, before, &[new.schema], open),
            (_, Shape::Union(after)) => self.untagged(path, &[old.schema], after, open),
            (Shape::Typed(before), Shape::Typed(after)) => {
                self.compare_typed(path, old.schema, new.schema, before, after)
            }
            (Shape::Other(before), Shape::Other(after))
                if without_annotations(before) == without_annotations(after) => {}
            // From constants to their type, or back: harmless where the constants are open.
            (Shape::Values(values), Shape::Typed(types)) if values.iter().all(|value| admits(types, value)) => {
                let kind = ChangeKind::TypeWidened {
                    from: old.describe(),
                    to: new.describe(),
                };
                self.push(path, kind, !open.0, false)
            }
            (Shape::Typed(types), Shape::Values(values)) if values.iter().all(|value| admits(types, value)) => {
                let kind = ChangeKind::TypeNarrowed {
                    from: old.describe(),
                    to: new.describe(),
                };
                self.push(path, kind, false, !open.1)
            }
            _ => self.push(
                path,
                ChangeKind::TypeChanged {
                    from: old.describe(),
                    to: new.describe(),
                },
                true,
                true,
            ),
        }
    }

    /// Reports a change of openness that a description declares (a default that changes because
    /// a type became a definition, or stopped being one, is no change of the protocol).
    fn openness(&mut self, path: &str, declared: (Option<bool>, Option<bool>), (old_open, new_open): (bool, bool)) {
        if declared == (None, None) {
            return;
        }
        match (old_open, new_open) {
            (false, true) => self.push(path, ChangeKind::UnionOpened, true, false),
            (true, false) => self.push(path, ChangeKind::UnionClosed, false, true),
            _ => {}
        }
    }

    /// The branches of a tagged union (or the frames of a direction), matched by key.
    fn branches(
        &mut self,
        path: &str,
        old: &[(String, &'a Value)],
        new: &[(String, &'a Value)],
        (old_open, new_open): (bool, bool),
        frames: bool,
    ) {
        let (added, removed) = if frames {
            (ChangeKind::FrameAdded, ChangeKind::FrameRemoved)
        } else {
            (ChangeKind::BranchAdded, ChangeKind::BranchRemoved)
        };
        for (key, after) in new {
            let at = format!("{path}[{key}]");
            match old.iter().find(|(old_key, _)| old_key == key) {
                Some((_, before)) => self.compare(&at, before, after),
                None => self.push(at, added.clone(), !old_open, false),
            }
        }
        for (key, _) in old
            .iter()
            .filter(|(key, _)| !new.iter().any(|(new_key, _)| new_key == key))
        {
            self.push(format!("{path}[{key}]"), removed.clone(), false, !new_open);
        }
    }

    /// The branches of an untagged union: matched by their JSON type where it is unique on both
    /// sides, the others by their order.
    fn untagged(&mut self, path: &str, old: &[&'a Value], new: &[&'a Value], (old_open, new_open): (bool, bool)) {
        let kinds = |definitions, branches: &[&'a Value]| -> Vec<String> {
            branches
                .iter()
                .map(|branch| Node::resolve(definitions, branch).kind())
                .collect()
        };
        let (old_kinds, new_kinds) = (kinds(self.old, old), kinds(self.new, new));
        let unique = |kinds: &[String], kind: &String| kinds.iter().filter(|k| *k == kind).count() == 1;
        let label = |kinds: &[String], index: usize| {
            if unique(kinds, &kinds[index]) {
                format!("{path}<{}>", kinds[index])
            } else {
                format!("{path}<#{index}>")
            }
        };
        let mut pairs = Vec::new();
        for (i, kind) in old_kinds.iter().enumerate() {
            if unique(&old_kinds, kind)
                && unique(&new_kinds, kind)
                && let Some(j) = new_kinds.iter().position(|k| k == kind)
            {
                pairs.push((i, j));
            }
        }
        let rest_old: Vec<usize> = (0..old.len()).filter(|i| !pairs.iter().any(|(p, _)| p == i)).collect();
        let rest_new: Vec<usize> = (0..new.len()).filter(|j| !pairs.iter().any(|(_, q)| q == j)).collect();
        pairs.extend(rest_old.iter().copied().zip(rest_new.iter().copied()));
        pairs.sort_by_key(|(_, j)| *j);
        for (i, j) in &pairs {
            self.compare(&label(&new_kinds, *j), old[*i], new[*j]);
        }
        for j in rest_new.iter().skip(rest_old.len()) {
            self.push(label(&new_kinds, *j), ChangeKind::BranchAdded, !old_open, false);
        }
        for i in rest_old.iter().skip(rest_new.len()) {
            self.push(label(&old_kinds, *i), ChangeKind::BranchRemoved, false, !new_open);
        }
    }

    fn compare_typed(
        &mut self,
        path: &str,
        old: &'a Value,
        new: &'a Value,
        before: &BTreeSet<&'a str>,
        after: &BTreeSet<&'a str>,
    ) {
        let widens = after.iter().any(|t| !covers(before, t));
        let narrows = before.iter().any(|t| !covers(after, t));
        if widens || narrows {
            let (from, to) = (types_text(before), types_text(after));
            let kind = match (widens, narrows) {
                (true, false) => ChangeKind::TypeWidened { from, to },
                (false, true) => ChangeKind::TypeNarrowed { from, to },
                _ => ChangeKind::TypeChanged { from, to },
            };
            self.push(path, kind, widens, narrows);
        }
        let both = |t: &str| before.contains(t) && after.contains(t);
        if both("object") {
            self.compare_object(path, old, new);
        }
        if both("array") {
            self.compare_array(path, old, new);
        }
        for numeric in ["integer", "number"] {
            if both(numeric) {
                let (from, to) = (describe_number(numeric, old), describe_number(numeric, new));
                self.compare_range(path, Range::of_number(old), Range::of_number(new), from, to);
            }
        }
        // What this walk does not compare (`pattern`, `maxLength`, …) cannot be told widened or
        // narrowed: a change of it is a change of the type, for both sides.
        let numeric = both("integer") || both("number");
        let (before, after) = (uncompared(old, numeric), uncompared(new, numeric));
        if before != after {
            let text = |rest: Map<String, Value>| Value::Object(rest).to_string();
            let kind = ChangeKind::TypeChanged {
                from: text(before),
                to: text(after),
            };
            self.push(path, kind, true, true);
        }
    }

    fn compare_object(&mut self, path: &str, old: &'a Value, new: &'a Value) {
        let properties = |schema: &'a Value| schema["properties"].as_object();
        let required = |schema: &'a Value| -> BTreeSet<&'a str> {
            schema["required"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect()
        };
        let (before, after) = (properties(old), properties(new));
        let (was_required, is_required) = (required(old), required(new));
        let (old_extra, new_extra) = (Extra::of(old), Extra::of(new));
        for (name, schema) in after.into_iter().flatten() {
            let at = format!("{path}.{name}");
            let now = is_required.contains(name.as_str());
            match before.and_then(|before| before.get(name)) {
                None => self.push(at, ChangeKind::FieldAdded { required: now }, !old_extra.tolerant(), now),
                Some(previous) => {
                    match (was_required.contains(name.as_str()), now) {
                        (false, true) => self.push(at.clone(), ChangeKind::MadeRequired, false, true),
                        (true, false) => self.push(at.clone(), ChangeKind::MadeOptional, true, false),
                        _ => {}
                    }
                    self.compare(&at, previous, schema);
                }
            }
        }
        for (name, _) in before.into_iter().flatten() {
            if after.is_none_or(|after| !after.contains_key(name)) {
                let was = was_required.contains(name.as_str());
                self.push(
                    format!("{path}.{name}"),
                    ChangeKind::FieldRemoved { required: was },
                    was,
                    !new_extra.tolerant(),
                );
            }
        }
        let values = format!("{path}{{}}");
        match (old_extra, new_extra) {
            (Extra::Closed, Extra::Closed) | (Extra::Open, Extra::Open) => {}
            (_, Extra::Closed) => self.push(path, ChangeKind::UnknownFieldsRejected, false, true),
            (Extra::Closed, _) => self.push(path, ChangeKind::UnknownFieldsAllowed, true, false),
            (Extra::Values(before), Extra::Values(after)) => self.compare(&values, before, after),
            (Extra::Open, Extra::Values(after)) => self.compare(&values, &ANY, after),
            (Extra::Values(before), Extra::Open) => self.compare(&values, before, &ANY),
        }
    }

    fn compare_array(&mut self, path: &str, old: &'a Value, new: &'a Value) {
        let items = |schema: &'a Value| schema.get("items").unwrap_or(&ANY);
        match (items(old), items(new)) {
            (Value::Array(before), Value::Array(after)) => {
                for (index, (before, after)) in before.iter().zip(after).enumerate() {
                    self.compare(&format!("{path}[{index}]"), before, after);
                }
            }
            (Value::Array(_), _) | (_, Value::Array(_)) => {
                let describe = |schema: &Value| if schema["items"].is_array() { "tuple" } else { "array" };
                let (from, to) = (describe(old).to_owned(), describe(new).to_owned());
                self.push(format!("{path}[]"), ChangeKind::TypeChanged { from, to }, true, true);
            }
            (before, after) => self.compare(&format!("{path}[]"), before, after),
        }
        let (from, to) = (describe_length(old), describe_length(new));
        self.compare_range(path, Range::of_length(old), Range::of_length(new), from, to);
    }

    fn compare_range(&mut self, path: &str, before: Range, after: Range, from: String, to: String) {
        if before == after {
            return;
        }
        let widens = after.low < before.low || after.high > before.high;
        let narrows = after.low > before.low || after.high < before.high;
        let kind = match (widens, narrows) {
            (true, false) => ChangeKind::TypeWidened { from, to },
            (false, true) => ChangeKind::TypeNarrowed { from, to },
            _ => ChangeKind::TypeChanged { from, to },
        };
        self.push(path, kind, widens, narrows);
    }
}

/// A schema with its `$ref`s, single-`allOf` wrappers and nullability taken apart.
struct Node<'a> {
    /// The last definition the schema was reached through.
    name: Option<&'a str>,
    /// The schema itself, after the references.
    schema: &'a Value,
    nullable: bool,
    /// `Open:` or `Closed:` in a description on the way.
    declared_open: Option<bool>,
    shape: Shape<'a>,
}

enum Shape<'a> {
    /// No constraint.
    Any,
    /// Constants: `const`, `enum`, or a union of constants.
    Values(Vec<&'a Value>),
    /// Objects told apart by a required constant property.
    Tagged {
        tag: &'a str,
        branches: Vec<(&'a str, &'a Value)>,
    },
    /// Any other union.
    Union(Vec<&'a Value>),
    /// A schema with `type` (or properties or items): its JSON types besides `null`.
    Typed(BTreeSet<&'a str>),
    /// Keywords this diff does not take apart (several `allOf`s, `not`, a `$ref` to nothing),
    /// compared as JSON.
    Other(&'a Value),
}

/// How many unions deep a schema's branches are looked into to tell its shape.
const MAX_UNION_DEPTH: usize = 8;

/// Keywords that say nothing about which values a schema accepts.
const ANNOTATIONS: &[&str] = &["description", "title", "default", "examples", "$schema", "definitions"];

impl<'a> Node<'a> {
    fn resolve(definitions: &'a Map<String, Value>, schema: &'a Value) -> Self {
        Self::resolve_nested(definitions, schema, 0)
    }

    /// [`Node::resolve`] of a union's branch `depth` unions down: a union that is its own branch
    /// (`A = A | string`) ends as a schema compared as JSON.
    fn resolve_nested(definitions: &'a Map<String, Value>, mut schema: &'a Value, depth: usize) -> Self {
        let mut node = Node {
            name: None,
            schema,
            nullable: false,
            declared_open: None,
            shape: Shape::Any,
        };
        // References to references end; a definition that is only a reference to itself is
        // compared as JSON.
        for _ in 0..=definitions.len() {
            node.schema = schema;
            if let Some(declared) = declared_openness(schema) {
                node.declared_open = Some(declared);
            }
            let Some(object) = schema.as_object() else {
                node.shape = if schema == &Value::Bool(false) {
                    Shape::Other(schema)
                } else {
                    Shape::Any
                };
                return node;
            };
            if let Some(target) = object.get("$ref").and_then(Value::as_str) {
                let name = target.strip_prefix("#/definitions/");
                let Some((name, definition)) = name.and_then(|name| Some((name, definitions.get(name)?))) else {
                    node.shape = Shape::Other(schema);
                    return node;
                };
                node.name = Some(name);
                schema = definition;
                continue;
            }
            if let Some(Value::Array(all_of)) = object.get("allOf")
                && let [single] = all_of.as_slice()
                && object
                    .keys()
                    .all(|key| key == "allOf" || ANNOTATIONS.contains(&key.as_str()))
            {
                schema = single;
                continue;
            }
            if let Some(Value::Array(branches)) = object.get("oneOf").or_else(|| object.get("anyOf")) {
                if depth > MAX_UNION_DEPTH {
                    node.shape = Shape::Other(schema);
                    return node;
                }
                let (nulls, rest): (Vec<&Value>, Vec<&Value>) =
                    branches.iter().partition(|branch| is_null(definitions, branch, depth));
                node.nullable |= !nulls.is_empty();
                if let [single] = rest.as_slice() {
                    schema = single;
                    continue;
                }
                node.shape = union_shape(definitions, rest, depth);
                return node;
            }
            node.shape = typed_shape(schema, object, &mut node.nullable);
            return node;
        }
        node.shape = Shape::Other(schema);
        node
    }

    /// Whether a receiver keeps a value this schema does not list (see the module docs): as
    /// declared, else closed in a bundle that `marked` its open ones, else (an older bundle) open
    /// when it is a named enum or union of server frames.
    fn open(&self, direction: Direction, marked: bool) -> bool {
        self.declared_open.unwrap_or(
            !marked
                && direction == Direction::Server
                && self.name.is_some()
                && matches!(self.shape, Shape::Values(_) | Shape::Tagged { .. }),
        )
    }

    /// The JSON type that tells an untagged branch apart (`string`, `array`, `object`, …).
    fn kind(&self) -> String {
        match &self.shape {
            Shape::Any => "any".to_owned(),
            Shape::Values(values) => types_text(&values.iter().map(|value| json_type(value)).collect()),
            Shape::Tagged { .. } => "object".to_owned(),
            Shape::Union(_) => "union".to_owned(),
            Shape::Typed(types) => types_text(types),
            Shape::Other(_) => "schema".to_owned(),
        }
    }

    /// What the schema accepts, in a few words.
    fn describe(&self) -> String {
        match &self.shape {
            Shape::Any => "any value".to_owned(),
            Shape::Values(values) if values.is_empty() => "null".to_owned(),
            Shape::Values(values) if values.len() <= 3 => values
                .iter()
                .map(|value| value.to_string())
                .collect::<Vec<_>>()
                .join(" | "),
            Shape::Values(values) => format!("one of {} values", values.len()),
            Shape::Tagged { tag, .. } => format!("union tagged by `{tag}`"),
            Shape::Union(branches) => format!("union of {}", branches.len()),
            Shape::Typed(types) => types_text(types),
            Shape::Other(schema) => without_annotations(schema).to_string(),
        }
    }
}

/// The shape of a `oneOf`/`anyOf` without its `null` branches.
fn union_shape<'a>(definitions: &'a Map<String, Value>, branches: Vec<&'a Value>, depth: usize) -> Shape<'a> {
    let nodes: Vec<Node<'a>> = branches
        .iter()
        .map(|branch| Node::resolve_nested(definitions, branch, depth + 1))
        .collect();
    if nodes.iter().all(|node| matches!(node.shape, Shape::Values(_))) {
        let mut values = Vec::new();
        for node in &nodes {
            if let Shape::Values(more) = &node.shape {
                for value in more {
                    if !values.contains(value) {
                        values.push(*value);
                    }
                }
            }
        }
        return Shape::Values(values);
    }
    match tag_of(&nodes) {
        Some(tag) => Shape::Tagged {
            tag,
            branches: nodes
                .iter()
                .zip(&branches)
                .filter_map(|(node, branch)| Some((node.schema["properties"][tag]["const"].as_str()?, *branch)))
                .collect(),
        },
        None => Shape::Union(branches),
    }
}

/// The property every branch requires as a distinct string constant, if there is one.
fn tag_of<'a>(nodes: &[Node<'a>]) -> Option<&'a str> {
    let constant = |node: &Node<'a>, name: &str| -> Option<&'a str> {
        let required = node.schema["required"].as_array()?.iter().any(|r| r == name);
        if required {
            node.schema["properties"][name]["const"].as_str()
        } else {
            None
        }
    };
    let first: &'a Map<String, Value> = nodes.first()?.schema["properties"].as_object()?;
    first.keys().map(String::as_str).find(|name| {
        let tags: Option<HashSet<&str>> = nodes.iter().map(|node| constant(node, name)).collect();
        tags.is_some_and(|tags| tags.len() == nodes.len())
    })
}

/// The shape of a schema without a union: constants, or JSON types.
fn typed_shape<'a>(schema: &'a Value, object: &'a Map<String, Value>, nullable: &mut bool) -> Shape<'a> {
    let mut types: BTreeSet<&'a str> = match object.get("type") {
        Some(Value::String(single)) => BTreeSet::from([single.as_str()]),
        Some(Value::Array(several)) => several.iter().filter_map(Value::as_str).collect(),
        _ => BTreeSet::new(),
    };
    if types.remove("null") {
        *nullable = true;
        if types.is_empty() {
            return Shape::Values(Vec::new());
        }
    }
    let values: Option<Vec<&'a Value>> = match (object.get("const"), object.get("enum")) {
        (Some(constant), _) => Some(vec![constant]),
        (None, Some(Value::Array(values))) => Some(values.iter().collect()),
        _ => None,
    };
    if let Some(mut values) = values {
        *nullable |= values.iter().any(|value| value.is_null());
        values.retain(|value| !value.is_null());
        return Shape::Values(values);
    }
    if types.is_empty() {
        if object.contains_key("properties") || object.contains_key("additionalProperties") {
            types.insert("object");
        } else if object.contains_key("items") {
            types.insert("array");
        }
    }
    if !types.is_empty() {
        return Shape::Typed(types);
    }
    if object.keys().all(|key| ANNOTATIONS.contains(&key.as_str())) {
        Shape::Any
    } else {
        Shape::Other(schema)
    }
}

/// The keywords [`Walk`] compares (besides [`ANNOTATIONS`]); `format` is compared for numbers.
const COMPARED: &[&str] = &[
    "$ref",
    "additionalProperties",
    "allOf",
    "anyOf",
    "const",
    "enum",
    "items",
    "maxItems",
    "minItems",
    "maximum",
    "minimum",
    "oneOf",
    "properties",
    "required",
    "type",
    OPEN_KEYWORD,
];

/// The keywords of `schema` that [`Walk`] does not compare.
fn uncompared(schema: &Value, numeric: bool) -> Map<String, Value> {
    let compared = |key: &str| COMPARED.contains(&key) || ANNOTATIONS.contains(&key) || (numeric && key == "format");
    schema
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(key, _)| !compared(key))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect()
}

/// Whether a union branch is `{"type": "null"}` (or `{"const": null}`).
fn is_null(definitions: &Map<String, Value>, branch: &Value, depth: usize) -> bool {
    let node = Node::resolve_nested(definitions, branch, depth + 1);
    node.nullable && matches!(&node.shape, Shape::Values(values) if values.is_empty())
}

/// Whether a bundle marks its open enums and unions with [`OPEN_KEYWORD`] (this project's do
/// since the keyword exists; older ones only say it in descriptions).
fn marks_openness(bundle: &Bundle) -> bool {
    bundle
        .definitions()
        .values()
        .any(|definition| definition.get(OPEN_KEYWORD).is_some())
}

/// What a schema declares: its [`OPEN_KEYWORD`], else a description sentence starting with
/// `Open:` (`Some(true)`) or `Closed:` (`Some(false)`).
fn declared_openness(schema: &Value) -> Option<bool> {
    if let Some(open) = schema.get(OPEN_KEYWORD) {
        return open.as_bool();
    }
    let text = schema.get("description")?.as_str()?;
    let starts_sentence = |at: usize| {
        let before = text[..at].trim_end();
        before.is_empty() || before.ends_with('.')
    };
    [("Open:", true), ("Closed:", false)]
        .into_iter()
        .filter_map(|(marker, open)| {
            let at = text
                .match_indices(marker)
                .map(|(at, _)| at)
                .find(|at| starts_sentence(*at))?;
            Some((at, open))
        })
        .min()
        .map(|(_, open)| open)
}

/// A schema without its annotations, for comparing schemas this diff does not take apart.
fn without_annotations(schema: &Value) -> Value {
    match schema {
        Value::Object(object) => Value::Object(
            object
                .iter()
                .filter(|(key, _)| !ANNOTATIONS.contains(&key.as_str()))
                .map(|(key, value)| (key.clone(), without_annotations(value)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_annotations).collect()),
        other => other.clone(),
    }
}

/// The JSON type of a value, as `type` names it.
fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(number) if number.is_i64() || number.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Whether a set of JSON types accepts values of type `json_type` (`number` covers `integer`).
fn covers(types: &BTreeSet<&str>, json_type: &str) -> bool {
    types.contains(json_type) || (json_type == "integer" && types.contains("number"))
}

/// Whether a set of JSON types accepts `value`.
fn admits(types: &BTreeSet<&str>, value: &Value) -> bool {
    covers(types, json_type(value))
}

fn types_text(types: &BTreeSet<&str>) -> String {
    types.iter().copied().collect::<Vec<_>>().join(" | ")
}

/// What an object says about properties it does not list.
#[derive(Clone, Copy)]
enum Extra<'a> {
    /// Anything (`additionalProperties` absent or `true`).
    Open,
    /// Nothing (`additionalProperties: false`).
    Closed,
    /// Values of this schema (a map).
    Values(&'a Value),
}

impl<'a> Extra<'a> {
    fn of(schema: &'a Value) -> Self {
        match schema.get("additionalProperties") {
            None | Some(Value::Bool(true)) => Self::Open,
            Some(Value::Bool(false)) => Self::Closed,
            Some(values) => Self::Values(values),
        }
    }

    /// Whether an object ignores a property it does not list, whatever its value.
    fn tolerant(self) -> bool {
        matches!(self, Self::Open)
    }
}

/// The bounds of a number (from its `format` and `minimum`/`maximum`) or of an array's length.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Range {
    low: f64,
    high: f64,
}

impl Range {
    fn of_number(schema: &Value) -> Self {
        let (low, high) = match schema["format"].as_str() {
            Some("int8") => (i8::MIN as f64, i8::MAX as f64),
            Some("int16") => (i16::MIN as f64, i16::MAX as f64),
            Some("int32") => (i32::MIN as f64, i32::MAX as f64),
            Some("int64" | "int") => (i64::MIN as f64, i64::MAX as f64),
            Some("uint8") => (0.0, u8::MAX as f64),
            Some("uint16") => (0.0, u16::MAX as f64),
            Some("uint32") => (0.0, u32::MAX as f64),
            Some("uint64" | "uint") => (0.0, u64::MAX as f64),
            _ => (f64::NEG_INFINITY, f64::INFINITY),
        };
        Self {
            low: schema["minimum"].as_f64().map_or(low, |minimum| minimum.max(low)),
            high: schema["maximum"].as_f64().map_or(high, |maximum| maximum.min(high)),
        }
    }

    fn of_length(schema: &Value) -> Self {
        Self {
            low: schema["minItems"].as_f64().unwrap_or(0.0),
            high: schema["maxItems"].as_f64().unwrap_or(f64::INFINITY),
        }
    }
}

/// `integer (uint32)`, `number >= 1`: a number's type, format and bounds as the schema writes them.
fn describe_number(numeric: &str, schema: &Value) -> String {
    let mut text = numeric.to_owned();
    if let Some(format) = schema["format"].as_str() {
        text.push_str(&format!(" ({format})"));
    }
    for (keyword, sign) in [("minimum", ">="), ("maximum", "<=")] {
        if let Some(bound) = schema.get(keyword) {
            text.push_str(&format!(" {sign} {bound}"));
        }
    }
    text
}

/// `array`, `array of 2 to 2 items`: an array and the bounds of its length.
fn describe_length(schema: &Value) -> String {
    match (schema.get("minItems"), schema.get("maxItems")) {
        (None, None) => "array".to_owned(),
        (Some(low), None) => format!("array of at least {low} items"),
        (None, Some(high)) => format!("array of at most {high} items"),
        (Some(low), Some(high)) => format!("array of {low} to {high} items"),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// A bundle with these client and server frames and definitions.
    fn bundle(client: Value, server: Value, definitions: Value) -> Bundle {
        let mut all = definitions.as_object().cloned().unwrap_or_default();
        all.insert(
            "ClientFrame".into(),
            json!({"description": "Closed: commands.", "oneOf": client}),
        );
        all.insert(
            "ServerFrame".into(),
            json!({"description": "Open: kept.", "oneOf": server}),
        );
        Bundle::from_value(json!({ "definitions": all })).expect("a bundle")
    }

    /// A frame object: its `type` constant, then `properties`, all required unless listed in
    /// `optional`.
    fn frame(frame_type: &str, properties: Value, optional: &[&str]) -> Value {
        let mut all = json!({"type": {"type": "string", "const": frame_type}});
        all.as_object_mut()
            .expect("an object")
            .extend(properties.as_object().cloned().unwrap_or_default());
        let required: Vec<&String> = all
            .as_object()
            .expect("an object")
            .keys()
            .filter(|name| !optional.contains(&name.as_str()))
            .collect();
        json!({"type": "object", "properties": all, "required": required})
    }

    /// A change as `(path, kind, class)`.
    type Found = (String, ChangeKind, Class);

    /// The changes from a client frame `old` to `new`, and from a server frame `old` to `new`,
    /// both named `f`.
    fn both_ways(old: Value, new: Value, definitions: Value) -> (Vec<Found>, Vec<Found>) {
        let summary = |changes: Vec<Change>| -> Vec<Found> {
            changes
                .into_iter()
                .map(|change| (change.path, change.kind, change.class))
                .collect()
        };
        let server = diff(
            &bundle(json!([]), json!([old]), definitions.clone()),
            &bundle(json!([]), json!([new]), definitions.clone()),
        );
        let client = diff(
            &bundle(json!([old]), json!([]), definitions.clone()),
            &bundle(json!([new]), json!([]), definitions),
        );
        (summary(client), summary(server))
    }

    /// Checks that changing frame `f` from `old` to `new` is exactly one change at `path` of
    /// `kind`, classed `client` in a client frame and `server` in a server frame.
    #[track_caller]
    fn one_change(old: Value, new: Value, path: &str, kind: ChangeKind, client: Class, server: Class) {
        one_change_with(old, new, json!({}), path, kind, client, server);
    }

    #[track_caller]
    fn one_change_with(
        old: Value,
        new: Value,
        definitions: Value,
        path: &str,
        kind: ChangeKind,
        client: Class,
        server: Class,
    ) {
        let (in_client, in_server) = both_ways(old, new, definitions);
        assert_eq!(
            in_client,
            [(format!("ClientFrame[f]{path}"), kind.clone(), client)],
            "in a client frame"
        );
        assert_eq!(
            in_server,
            [(format!("ServerFrame[f]{path}"), kind, server)],
            "in a server frame"
        );
    }

    #[test]
    fn identical_bundles_have_no_changes() {
        assert_eq!(diff(&Bundle::current(), &Bundle::current()), []);
        let old = bundle(
            json!([frame("a", json!({"x": {"type": "string"}}), &[])]),
            json!([]),
            json!({}),
        );
        let reordered = json!({"required": ["x", "type"], "type": "object", "description": "Reworded.",
            "properties": {"x": {"type": "string", "description": "New words."}, "type": {"const": "a", "type": "string"}}});
        assert_eq!(diff(&old, &bundle(json!([reordered]), json!([]), json!({}))), []);
    }

    #[test]
    fn frame_types_added_and_removed() {
        let empty = bundle(json!([]), json!([]), json!({}));
        let full = bundle(
            json!([frame("go", json!({}), &[])]),
            json!([frame("went", json!({}), &[])]),
            json!({}),
        );
        let changes = diff(&empty, &full);
        // A new command is refused by an old server; a new server frame is ignored by old clients.
        assert_eq!(changes[0].path, "ClientFrame[go]");
        assert_eq!(
            (changes[0].kind.clone(), changes[0].class),
            (ChangeKind::FrameAdded, Class::BreaksServers)
        );
        assert_eq!(changes[1].path, "ServerFrame[went]");
        assert_eq!(
            (changes[1].kind.clone(), changes[1].class),
            (ChangeKind::FrameAdded, Class::Compatible)
        );
        // A removed command is refused to old clients; a removed server frame may be awaited.
        let changes = diff(&full, &empty);
        assert_eq!(
            (changes[0].kind.clone(), changes[0].class),
            (ChangeKind::FrameRemoved, Class::BreaksClients)
        );
        assert_eq!(
            (changes[1].kind.clone(), changes[1].class),
            (ChangeKind::FrameRemoved, Class::BreaksClients)
        );
        assert_eq!(changes.len(), 2);
    }

    #[test]
    fn a_closed_server_frame_union_makes_new_server_frames_break_clients() {
        let closed = |frames: Value| {
            let mut bundle = bundle(json!([]), frames, json!({})).value().clone();
            bundle["definitions"]["ServerFrame"]["description"] =
                json!("Server frames. Closed: an unknown type is an error.");
            Bundle::from_value(bundle).expect("a bundle")
        };
        let changes = diff(&closed(json!([])), &closed(json!([frame("new", json!({}), &[])])));
        assert_eq!(
            (changes[0].kind.clone(), changes[0].class),
            (ChangeKind::FrameAdded, Class::BreaksClients)
        );
        // Closing the union: an old server may send a frame type new clients refuse.
        let open = bundle(json!([]), json!([]), json!({}));
        let changes = diff(&open, &closed(json!([])));
        assert_eq!(changes[0].path, "ServerFrame");
        assert_eq!(
            (changes[0].kind.clone(), changes[0].class),
            (ChangeKind::UnionClosed, Class::BreaksServers)
        );
    }

    #[test]
    fn optional_fields_added_and_removed_are_compatible_where_unknown_fields_are_ignored() {
        let without = frame("f", json!({}), &[]);
        let with = frame("f", json!({"note": {"type": "string"}}), &["note"]);
        let added = ChangeKind::FieldAdded { required: false };
        one_change(
            without.clone(),
            with.clone(),
            ".note",
            added,
            Class::Compatible,
            Class::Compatible,
        );
        let removed = ChangeKind::FieldRemoved { required: false };
        one_change(with, without, ".note", removed, Class::Compatible, Class::Compatible);
    }

    #[test]
    fn fields_added_and_removed_where_unknown_fields_are_refused() {
        let closed = |mut frame: Value| {
            frame["additionalProperties"] = json!(false);
            frame
        };
        let without = closed(frame("f", json!({}), &[]));
        let optional = closed(frame("f", json!({"note": {"type": "string"}}), &["note"]));
        let required = closed(frame("f", json!({"note": {"type": "string"}}), &[]));
        // Old receivers refuse the field: new clients break old servers, new servers old clients.
        let added = ChangeKind::FieldAdded { required: false };
        one_change(
            without.clone(),
            optional.clone(),
            ".note",
            added,
            Class::BreaksServers,
            Class::BreaksClients,
        );
        // Required as well: old senders lack it.
        let added = ChangeKind::FieldAdded { required: true };
        one_change(
            without.clone(),
            required,
            ".note",
            added,
            Class::BreaksBoth,
            Class::BreaksBoth,
        );
        // New receivers refuse what old senders may send.
        let removed = ChangeKind::FieldRemoved { required: false };
        one_change(
            optional,
            without,
            ".note",
            removed,
            Class::BreaksClients,
            Class::BreaksServers,
        );
    }

    #[test]
    fn required_fields_added_and_removed() {
        let without = frame("f", json!({}), &[]);
        let with = frame("f", json!({"id": {"type": "string"}}), &[]);
        // Old clients do not send it; old servers do not send it.
        let added = ChangeKind::FieldAdded { required: true };
        one_change(
            without.clone(),
            with.clone(),
            ".id",
            added,
            Class::BreaksClients,
            Class::BreaksServers,
        );
        // Old servers require it; old clients expect it.
        let removed = ChangeKind::FieldRemoved { required: true };
        one_change(
            with,
            without,
            ".id",
            removed,
            Class::BreaksServers,
            Class::BreaksClients,
        );
    }

    #[test]
    fn required_and_optional() {
        let required = frame("f", json!({"id": {"type": "string"}}), &[]);
        let optional = frame("f", json!({"id": {"type": "string"}}), &["id"]);
        one_change(
            optional.clone(),
            required.clone(),
            ".id",
            ChangeKind::MadeRequired,
            Class::BreaksClients,
            Class::BreaksServers,
        );
        one_change(
            required,
            optional,
            ".id",
            ChangeKind::MadeOptional,
            Class::BreaksServers,
            Class::BreaksClients,
        );
    }

    #[test]
    fn nullable() {
        let plain = frame("f", json!({"at": {"type": "string"}}), &[]);
        let typed = frame("f", json!({"at": {"type": ["string", "null"]}}), &[]);
        let wrapped = frame(
            "f",
            json!({"at": {"anyOf": [{"$ref": "#/definitions/At"}, {"type": "null"}]}}),
            &[],
        );
        let at = json!({"At": {"type": "string"}});
        one_change(
            plain.clone(),
            typed.clone(),
            ".at",
            ChangeKind::MadeNullable,
            Class::BreaksServers,
            Class::BreaksClients,
        );
        one_change(
            typed.clone(),
            plain,
            ".at",
            ChangeKind::MadeNonNullable,
            Class::BreaksClients,
            Class::BreaksServers,
        );
        // `type: [T, "null"]` and `anyOf: [T, null]` say the same.
        let (client, server) = both_ways(typed, wrapped, at);
        assert_eq!((client, server), (vec![], vec![]));
    }

    #[test]
    fn types_widened_narrowed_and_changed() {
        let of = |schema: Value| frame("f", json!({ "n": schema }), &[]);
        let widened = ChangeKind::TypeWidened {
            from: "integer".into(),
            to: "number".into(),
        };
        one_change(
            of(json!({"type": "integer"})),
            of(json!({"type": "number"})),
            ".n",
            widened,
            Class::BreaksServers,
            Class::BreaksClients,
        );
        let narrowed = ChangeKind::TypeNarrowed {
            from: "integer | string".into(),
            to: "string".into(),
        };
        one_change(
            of(json!({"type": ["string", "integer"]})),
            of(json!({"type": "string"})),
            ".n",
            narrowed,
            Class::BreaksClients,
            Class::BreaksServers,
        );
        let changed = ChangeKind::TypeChanged {
            from: "string".into(),
            to: "integer".into(),
        };
        one_change(
            of(json!({"type": "string"})),
            of(json!({"type": "integer"})),
            ".n",
            changed,
            Class::BreaksBoth,
            Class::BreaksBoth,
        );
        let narrowed = ChangeKind::TypeNarrowed {
            from: "any value".into(),
            to: "string".into(),
        };
        one_change(
            of(json!({})),
            of(json!({"type": "string"})),
            ".n",
            narrowed,
            Class::BreaksClients,
            Class::BreaksServers,
        );
    }

    #[test]
    fn a_union_becoming_any_value_is_widened() {
        let union = frame(
            "f",
            json!({"v": {"anyOf": [{"type": "string"}, {"type": "array"}]}}),
            &[],
        );
        let any = frame("f", json!({"v": {"description": "Anything."}}), &[]);
        let widened = ChangeKind::TypeWidened {
            from: "union of 2".into(),
            to: "any value".into(),
        };
        one_change(union, any, ".v", widened, Class::BreaksServers, Class::BreaksClients);
    }

    #[test]
    fn number_and_length_bounds() {
        let of = |schema: Value| frame("f", json!({ "n": schema }), &[]);
        let widened = ChangeKind::TypeWidened {
            from: "integer (uint32) >= 0".into(),
            to: "integer (uint64) >= 0".into(),
        };
        let (u32_, u64_) = (
            json!({"type": "integer", "format": "uint32", "minimum": 0}),
            json!({"type": "integer", "format": "uint64", "minimum": 0}),
        );
        one_change(
            of(u32_),
            of(u64_),
            ".n",
            widened,
            Class::BreaksServers,
            Class::BreaksClients,
        );
        let narrowed = ChangeKind::TypeNarrowed {
            from: "array".into(),
            to: "array of at least 1 items".into(),
        };
        let (any, some) = (
            json!({"type": "array", "items": {"type": "string"}}),
            json!({"type": "array", "items": {"type": "string"}, "minItems": 1}),
        );
        one_change(
            of(any),
            of(some),
            ".n",
            narrowed,
            Class::BreaksClients,
            Class::BreaksServers,
        );
    }

    #[test]
    fn values_of_an_inline_enum_are_closed_both_ways() {
        let of = |values: Value| frame("f", json!({"mode": {"type": "string", "enum": values}}), &[]);
        let added = ChangeKind::ValueAdded { value: json!("c") };
        one_change(
            of(json!(["a", "b"])),
            of(json!(["a", "b", "c"])),
            ".mode",
            added,
            Class::BreaksServers,
            Class::BreaksClients,
        );
        let removed = ChangeKind::ValueRemoved { value: json!("b") };
        one_change(
            of(json!(["a", "b"])),
            of(json!(["a"])),
            ".mode",
            removed,
            Class::BreaksClients,
            Class::BreaksServers,
        );
        // A constant is a one-value enum; a union of constants is an enum too.
        let constant = |value: &str| frame("f", json!({"mode": {"type": "string", "const": value}}), &[]);
        let union = frame(
            "f",
            json!({"mode": {"oneOf": [{"const": "a", "description": "A."}, {"const": "b"}]}}),
            &[],
        );
        let added = ChangeKind::ValueAdded { value: json!("b") };
        one_change(
            constant("a"),
            union,
            ".mode",
            added,
            Class::BreaksServers,
            Class::BreaksClients,
        );
    }

    #[test]
    fn values_of_a_named_enum_are_open_in_server_frames_unless_declared_closed() {
        let frame = frame("f", json!({"status": {"$ref": "#/definitions/Status"}}), &[]);
        let status = |values: Value, description: &str| json!({"Status": {"type": "string", "enum": values, "description": description}});
        let (client, server) = both_ways(frame.clone(), frame.clone(), json!({}));
        assert_eq!((client.len(), server.len()), (0, 0));
        // Undeclared: open in server frames (unknown values are kept), closed in client frames.
        let old = bundle(json!([frame]), json!([frame]), status(json!(["ok"]), "A status."));
        let new = bundle(
            json!([frame]),
            json!([frame]),
            status(json!(["ok", "late"]), "A status."),
        );
        let classes: Vec<(String, Class)> = diff(&old, &new).into_iter().map(|c| (c.path, c.class)).collect();
        assert_eq!(
            classes,
            [
                ("ClientFrame[f].status".to_owned(), Class::BreaksServers),
                ("ServerFrame[f].status".to_owned(), Class::Compatible)
            ]
        );
        // Removing a value is harmless for new clients that keep unknown ones.
        let classes: Vec<Class> = diff(&new, &old).into_iter().map(|c| c.class).collect();
        assert_eq!(classes, [Class::BreaksClients, Class::Compatible]);
        // Declared closed: a new value breaks old clients.
        let old = bundle(
            json!([]),
            json!([frame]),
            status(json!(["ok"]), "A status. Closed: unknown ones are errors."),
        );
        let new = bundle(
            json!([]),
            json!([frame]),
            status(json!(["ok", "late"]), "A status. Closed: unknown ones are errors."),
        );
        assert_eq!(diff(&old, &new)[0].class, Class::BreaksClients);
    }

    #[test]
    fn keywords_the_diff_does_not_compare_change_the_type_for_both_sides() {
        let old = frame("f", json!({"name": {"type": "string"}}), &[]);
        let new = frame(
            "f",
            json!({"name": {"type": "string", "maxLength": 3, "pattern": "^a"}}),
            &[],
        );
        let (client, server) = both_ways(old.clone(), new, json!({}));
        let expected = vec![(
            "ClientFrame[f].name".to_owned(),
            ChangeKind::TypeChanged {
                from: "{}".to_owned(),
                to: r#"{"maxLength":3,"pattern":"^a"}"#.to_owned(),
            },
            Class::BreaksBoth,
        )];
        assert_eq!(client, expected);
        assert_eq!(server[0].2, Class::BreaksBoth);
        // A number's `format` is compared as a range, not as an unknown keyword.
        let int = |format: &str| frame("f", json!({"n": {"type": "integer", "format": format}}), &[]);
        let (client, _) = both_ways(int("uint32"), int("uint64"), json!({}));
        assert!(matches!(client[0].1, ChangeKind::TypeWidened { .. }), "{client:?}");
    }

    #[test]
    fn references_met_on_alternate_levels_of_each_side_end() {
        // OLD comes back to A on even levels, NEW to B on odd ones: no two definitions are ever
        // compared with each other, but the pairs of schemas repeat.
        let definitions = json!({
            "A": {"type": "object", "properties": {"c": {"type": "object", "properties": {"c": {"$ref": "#/definitions/A"}}}}},
            "B": {"type": "object", "properties": {"c": {"type": "object", "properties": {
                "c": {"$ref": "#/definitions/B"}, "extra": {"type": "string"}}}}},
        });
        let old = frame("f", json!({"tree": {"$ref": "#/definitions/A"}}), &[]);
        let new = frame(
            "f",
            json!({"tree": {"type": "object", "properties": {"c": {"$ref": "#/definitions/B"}}}}),
            &[],
        );
        let (client, _) = both_ways(old, new, definitions);
        let paths: Vec<&str> = client.iter().map(|(path, _, _)| path.as_str()).collect();
        assert_eq!(paths, ["ClientFrame[f].tree.c.c.extra"]);
    }

    #[test]
    fn in_a_bundle_that_marks_open_enums_the_unmarked_ones_are_closed() {
        let frame = frame(
            "f",
            json!({"status": {"$ref": "#/definitions/Status"}, "mode": {"$ref": "#/definitions/Mode"}}),
            &[],
        );
        let definitions = |values: Value| {
            json!({
                "Status": {"type": "string", "enum": values, OPEN_KEYWORD: true},
                "Mode": {"type": "string", "enum": values},
            })
        };
        let old = bundle(json!([]), json!([frame]), definitions(json!(["ok"])));
        let new = bundle(json!([]), json!([frame]), definitions(json!(["ok", "late"])));
        let classes: Vec<(String, Class)> = diff(&old, &new).into_iter().map(|c| (c.path, c.class)).collect();
        assert_eq!(
            classes,
            [
                ("ServerFrame[f].status".to_owned(), Class::Compatible),
                ("ServerFrame[f].mode".to_owned(), Class::BreaksClients)
            ]
        );
        // The marker itself going away closes the enum.
        let closed = bundle(
            json!([]),
            json!([frame]),
            json!({
                "Status": {"type": "string", "enum": ["ok"]},
                "Mode": {"type": "string", "enum": ["ok"], OPEN_KEYWORD: true},
            }),
        );
        let kinds: Vec<(String, ChangeKind, Class)> = diff(&old, &closed)
            .into_iter()
            .map(|c| (c.path, c.kind, c.class))
            .collect();
        assert_eq!(
            kinds,
            [
                (
                    "ServerFrame[f].status".to_owned(),
                    ChangeKind::UnionClosed,
                    Class::BreaksServers
                ),
                (
                    "ServerFrame[f].mode".to_owned(),
                    ChangeKind::UnionOpened,
                    Class::BreaksClients
                )
            ]
        );
    }

    #[test]
    fn unions_opened_and_closed() {
        let frame = frame("f", json!({"status": {"$ref": "#/definitions/Status"}}), &[]);
        let status =
            |description: &str| json!({"Status": {"type": "string", "enum": ["ok"], "description": description}});
        let (open, closed) = (
            status("Open: unknown ones are kept."),
            status("Closed: unknown ones are errors."),
        );
        let opened = |old: &Value, new: &Value| {
            let changes = diff(
                &bundle(json!([frame]), json!([frame]), old.clone()),
                &bundle(json!([frame]), json!([frame]), new.clone()),
            );
            changes.into_iter().map(|c| (c.kind, c.class)).collect::<Vec<_>>()
        };
        // New senders may send values old receivers refuse.
        assert_eq!(
            opened(&closed, &open),
            [
                (ChangeKind::UnionOpened, Class::BreaksServers),
                (ChangeKind::UnionOpened, Class::BreaksClients)
            ]
        );
        // New receivers refuse values old senders were free to send.
        assert_eq!(
            opened(&open, &closed),
            [
                (ChangeKind::UnionClosed, Class::BreaksClients),
                (ChangeKind::UnionClosed, Class::BreaksServers)
            ]
        );
    }

    #[test]
    fn unknown_fields_allowed_and_rejected() {
        let open = frame("f", json!({}), &[]);
        let mut closed = open.clone();
        closed["additionalProperties"] = json!(false);
        one_change(
            closed.clone(),
            open.clone(),
            "",
            ChangeKind::UnknownFieldsAllowed,
            Class::BreaksServers,
            Class::BreaksClients,
        );
        one_change(
            open,
            closed,
            "",
            ChangeKind::UnknownFieldsRejected,
            Class::BreaksClients,
            Class::BreaksServers,
        );
    }

    #[test]
    fn maps_and_arrays_are_walked() {
        let of = |value: &str| {
            frame(
                "f",
                json!({
                    "env": {"type": "object", "additionalProperties": {"type": value}},
                    "list": {"type": "array", "items": {"type": "object", "properties": {"x": {"type": value}}}},
                }),
                &[],
            )
        };
        let (client, _) = both_ways(of("string"), of("integer"), json!({}));
        let paths: Vec<&str> = client.iter().map(|(path, ..)| path.as_str()).collect();
        assert_eq!(paths, ["ClientFrame[f].env{}", "ClientFrame[f].list[].x"]);
    }

    #[test]
    fn tagged_union_branches_are_matched_by_tag() {
        let part = |kind: &str, extra: Value| {
            let mut properties = json!({"kind": {"type": "string", "const": kind}});
            properties
                .as_object_mut()
                .expect("an object")
                .extend(extra.as_object().cloned().unwrap_or_default());
            json!({"type": "object", "properties": properties, "required": ["kind"]})
        };
        let frame = frame("f", json!({"part": {"$ref": "#/definitions/Part"}}), &[]);
        let (old, new) = (&frame, &frame);
        let old_definitions = json!({"Part": {"oneOf": [part("text", json!({})), part("image", json!({}))]}});
        let new_definitions =
            json!({"Part": {"oneOf": [part("image", json!({"alt": {"type": "string"}})), part("audio", json!({}))]}});
        let changes = diff(
            &bundle(json!([old]), json!([old]), old_definitions),
            &bundle(json!([new]), json!([new]), new_definitions),
        );
        let found: Vec<(&str, &ChangeKind, Class)> =
            changes.iter().map(|c| (c.path.as_str(), &c.kind, c.class)).collect();
        assert_eq!(
            found,
            [
                (
                    "ClientFrame[f].part[image].alt",
                    &ChangeKind::FieldAdded { required: false },
                    Class::Compatible
                ),
                (
                    "ClientFrame[f].part[audio]",
                    &ChangeKind::BranchAdded,
                    Class::BreaksServers
                ),
                (
                    "ClientFrame[f].part[text]",
                    &ChangeKind::BranchRemoved,
                    Class::BreaksClients
                ),
                // A named union of server frames is open: old clients keep an unknown part.
                (
                    "ServerFrame[f].part[image].alt",
                    &ChangeKind::FieldAdded { required: false },
                    Class::Compatible
                ),
                (
                    "ServerFrame[f].part[audio]",
                    &ChangeKind::BranchAdded,
                    Class::Compatible
                ),
                (
                    "ServerFrame[f].part[text]",
                    &ChangeKind::BranchRemoved,
                    Class::Compatible
                ),
            ]
        );
    }

    #[test]
    fn untagged_union_branches_are_matched_by_type_then_position() {
        let of = |branches: Value| frame("f", json!({"content": {"anyOf": branches}}), &[]);
        let string = json!({"type": "string"});
        let strings = json!({"type": "array", "items": {"type": "string"}});
        let numbers = json!({"type": "array", "items": {"type": "number"}});
        let object = json!({"type": "object"});
        // Reordered and one more: the branches pair up by type.
        let (client, server) = both_ways(
            of(json!([string, strings])),
            of(json!([strings, string, object])),
            json!({}),
        );
        assert_eq!(
            client,
            [(
                "ClientFrame[f].content<object>".to_owned(),
                ChangeKind::BranchAdded,
                Class::BreaksServers
            )]
        );
        assert_eq!(
            server,
            [(
                "ServerFrame[f].content<object>".to_owned(),
                ChangeKind::BranchAdded,
                Class::BreaksClients
            )]
        );
        // Two arrays: by position.
        let (client, _) = both_ways(of(json!([strings, numbers])), of(json!([numbers, strings])), json!({}));
        let paths: Vec<&str> = client.iter().map(|(path, ..)| path.as_str()).collect();
        assert_eq!(paths, ["ClientFrame[f].content<#0>[]", "ClientFrame[f].content<#1>[]"]);
        // One type becoming a union of two: a branch added.
        let (client, _) = both_ways(
            frame("f", json!({"content": string}), &[]),
            of(json!([string, strings])),
            json!({}),
        );
        assert_eq!(
            client,
            [(
                "ClientFrame[f].content<array>".to_owned(),
                ChangeKind::BranchAdded,
                Class::BreaksServers
            )]
        );
    }

    #[test]
    fn enums_becoming_strings_and_back() {
        let of = |schema: Value| frame("f", json!({"mode": schema}), &[]);
        let widened = ChangeKind::TypeWidened {
            from: "\"a\" | \"b\"".into(),
            to: "string".into(),
        };
        one_change(
            of(json!({"enum": ["a", "b"]})),
            of(json!({"type": "string"})),
            ".mode",
            widened,
            Class::BreaksServers,
            Class::BreaksClients,
        );
        let narrowed = ChangeKind::TypeNarrowed {
            from: "string".into(),
            to: "\"a\" | \"b\"".into(),
        };
        one_change(
            of(json!({"type": "string"})),
            of(json!({"enum": ["a", "b"]})),
            ".mode",
            narrowed,
            Class::BreaksClients,
            Class::BreaksServers,
        );
    }

    #[test]
    fn references_are_resolved_and_recursion_ends() {
        let tree = |leaf: &str| {
            json!({"Tree": {"type": "object", "properties": {
                "leaf": {"type": leaf},
                "children": {"type": "array", "items": {"$ref": "#/definitions/Tree"}},
            }}})
        };
        let frame = frame("f", json!({"tree": {"$ref": "#/definitions/Tree"}}), &[]);
        let (client, server) = both_ways(frame.clone(), frame.clone(), tree("string"));
        assert_eq!((client, server), (vec![], vec![]));
        let changes = diff(
            &bundle(json!([frame]), json!([]), tree("string")),
            &bundle(json!([frame]), json!([]), tree("integer")),
        );
        let paths: Vec<&str> = changes.iter().map(|change| change.path.as_str()).collect();
        assert_eq!(paths, ["ClientFrame[f].tree.leaf"]);
        // A definition renamed is no change.
        let renamed = json!({"Node": tree("string")["Tree"].clone()})
            .to_string()
            .replace("/Tree", "/Node");
        let renamed_frame = json!(frame).to_string().replace("/Tree", "/Node");
        let old = bundle(json!([frame]), json!([]), tree("string"));
        let new = bundle(
            json!([serde_json::from_str::<Value>(&renamed_frame).expect("JSON")]),
            json!([]),
            serde_json::from_str(&renamed).expect("JSON"),
        );
        assert_eq!(diff(&old, &new), []);
    }

    #[test]
    fn a_union_that_is_its_own_branch_ends() {
        let frame = frame("f", json!({"v": {"$ref": "#/definitions/Loop"}}), &[]);
        let looped = |other: &str| json!({"Loop": {"anyOf": [{"$ref": "#/definitions/Loop"}, {"type": other}]}});
        let (client, _) = both_ways(frame.clone(), frame.clone(), looped("string"));
        assert_eq!(client, []);
        let changes = diff(
            &bundle(json!([frame]), json!([]), looped("string")),
            &bundle(json!([frame]), json!([]), looped("integer")),
        );
        assert!(
            changes.iter().all(|change| change.path.starts_with("ClientFrame[f].v")),
            "{changes:?}"
        );
        assert!(!changes.is_empty());
    }

    #[test]
    fn changes_serialise_with_their_kind_and_class() {
        let change = Change {
            path: "ServerFrame[f].x".into(),
            direction: Direction::Server,
            kind: ChangeKind::FieldAdded { required: true },
            class: Class::BreaksServers,
        };
        assert_eq!(
            serde_json::to_value(&change).expect("JSON"),
            json!({"path": "ServerFrame[f].x", "direction": "server", "kind": "field_added", "required": true, "class": "breaks-servers"})
        );
        assert_eq!(change.to_string(), "ServerFrame[f].x: required field added");
    }

    #[test]
    fn declared_openness_starts_a_sentence() {
        assert_eq!(declared_openness(&json!({"description": "Open: kept."})), Some(true));
        assert_eq!(
            declared_openness(&json!({"description": "A mode. Closed: an error."})),
            Some(false)
        );
        assert_eq!(
            declared_openness(&json!({"description": "Open in the server's frames."})),
            None
        );
        assert_eq!(
            declared_openness(&json!({"description": "Values: `Open:` quoted"})),
            None
        );
        assert_eq!(declared_openness(&json!({"type": "string"})), None);
    }
}
