//! Schema bundles: this version's, or one read from a file, and the frame types each declares.

use std::fmt;

use serde_json::Value;

use crate::{CLIENT_FRAMES, SERVER_FRAMES};

/// Which side sends a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    /// Client to server (the `ClientFrame` union).
    Client,
    /// Server to client (the `ServerFrame` union).
    Server,
}

impl Direction {
    /// Both directions, client first.
    pub const BOTH: [Direction; 2] = [Direction::Client, Direction::Server];

    /// The direction of a frame, when nothing else says: its `type`'s in this version (a type
    /// clients do not send is a server frame); for a type both sides send (`file_ops`), the
    /// server's when the frame carries the runtime envelope (`event_seq`).
    pub fn of(frame: &Value) -> Self {
        let frame_type = frame["type"].as_str().unwrap_or_default();
        let both_ways = SERVER_FRAMES.iter().any(|server| server.name == frame_type);
        if !CLIENT_FRAMES.contains(&frame_type) || (both_ways && frame.get("event_seq").is_some()) {
            Self::Server
        } else {
            Self::Client
        }
    }

    /// The name of the bundle's union of this direction's frames.
    pub fn union(self) -> &'static str {
        match self {
            Self::Client => "ClientFrame",
            Self::Server => "ServerFrame",
        }
    }

    /// `client` or `server`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Client => "client",
            Self::Server => "server",
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Direction {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "client" => Ok(Self::Client),
            "server" => Ok(Self::Server),
            other => Err(format!("`{other}` is not a direction (client or server)")),
        }
    }
}

/// A schema bundle in the shape of `schema/frames.schema.json`: draft-07 `definitions` holding
/// the `ClientFrame` and `ServerFrame` unions, each a `oneOf` of frame objects tagged by a `type`
/// constant.
#[derive(Debug, Clone, PartialEq)]
pub struct Bundle {
    value: Value,
}

/// Why a document is not a schema bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleError(pub String);

impl fmt::Display for BundleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BundleError {}

impl Bundle {
    /// The bundle of this version of the protocol crate (what `schema/frames.schema.json` holds).
    pub fn current() -> Self {
        Self {
            value: crate::schema::bundle(),
        }
    }

    /// A bundle from its JSON text.
    pub fn from_json(text: &str) -> Result<Self, BundleError> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| BundleError(format!("the schema bundle is not JSON: {e}")))?;
        Self::from_value(value)
    }

    /// A bundle from its JSON value; both unions must be there.
    pub fn from_value(value: Value) -> Result<Self, BundleError> {
        for direction in Direction::BOTH {
            let union = direction.union();
            if !value["definitions"][union]["oneOf"].is_array() {
                return Err(BundleError(format!(
                    "not a frames schema bundle: `definitions.{union}.oneOf` is missing"
                )));
            }
        }
        Ok(Self { value })
    }

    /// The bundle as JSON.
    pub fn value(&self) -> &Value {
        &self.value
    }

    /// The named definitions.
    pub fn definitions(&self) -> &serde_json::Map<String, Value> {
        static EMPTY: std::sync::OnceLock<serde_json::Map<String, Value>> = std::sync::OnceLock::new();
        self.value["definitions"]
            .as_object()
            .unwrap_or_else(|| EMPTY.get_or_init(serde_json::Map::new))
    }

    /// The frames of one direction as `(type, schema of the frame object)`, in the bundle's order;
    /// a branch without a `type` constant is listed under an empty type. A branch may be the
    /// object itself or a `$ref` to its definition.
    pub fn frames(&self, direction: Direction) -> Vec<(&str, &Value)> {
        self.value["definitions"][direction.union()]["oneOf"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|branch| (self.frame_type(branch).unwrap_or_default(), branch))
            .collect()
    }

    /// The `type` constant of a frame branch, through a `$ref` to a definition.
    fn frame_type<'a>(&'a self, branch: &'a Value) -> Option<&'a str> {
        let object = match branch["$ref"]
            .as_str()
            .and_then(|target| target.strip_prefix("#/definitions/"))
        {
            Some(name) => self.definitions().get(name)?,
            None => branch,
        };
        object["properties"]["type"]["const"].as_str()
    }
}
