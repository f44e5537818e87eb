//! Validating frames against the checked-in schema bundle.

use jsonschema::Validator;
use letta_app_server_protocol::CLIENT_FRAMES;
use serde_json::{Value, json};

/// Which side sends a frame type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Client to server.
    Client,
    /// Server to client.
    Server,
}

impl Direction {
    /// The direction of a frame `type` (anything not sent by clients is a server frame).
    pub fn of(frame_type: &str) -> Self {
        if CLIENT_FRAMES.contains(&frame_type) {
            Self::Client
        } else {
            Self::Server
        }
    }
}

/// Validators for client and server frames, compiled from the schema bundle.
pub struct Schemas {
    client: Validator,
    server: Validator,
}

impl Schemas {
    /// Compiles the checked-in bundle (`schema/frames.schema.json`; the xtask tests check that it
    /// is current).
    pub fn load() -> Self {
        let path = crate::repo_root().join("schema/frames.schema.json");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        let bundle: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
        let compile = |definition: &str| {
            let mut root = bundle.clone();
            root["oneOf"] = json!([{ "$ref": format!("#/definitions/{definition}") }]);
            jsonschema::draft7::new(&root).unwrap_or_else(|e| panic!("schema for {definition} does not compile: {e}"))
        };
        Self {
            client: compile("ClientFrame"),
            server: compile("ServerFrame"),
        }
    }

    /// Every validation error of `frame`, as readable lines.
    pub fn errors(&self, direction: Direction, frame: &Value) -> Vec<String> {
        let validator = match direction {
            Direction::Client => &self.client,
            Direction::Server => &self.server,
        };
        validator
            .iter_errors(frame)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect()
    }
}
