//! Validating frames against the checked-in schema bundle.

use jsonschema::Validator;
use letta_app_server_protocol::{CLIENT_FRAMES, SERVER_FRAMES};
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
    /// The direction of a frame: its `type`'s (anything not sent by clients is a server frame);
    /// for a type both sides send (`file_ops`), the server's when the frame carries the runtime
    /// envelope (`event_seq`), since the server sends it as a runtime event.
    pub fn of(frame: &Value) -> Self {
        let frame_type = frame["type"].as_str().unwrap_or_default();
        let both_ways = SERVER_FRAMES.iter().any(|server| server.name == frame_type);
        if !CLIENT_FRAMES.contains(&frame_type) || (both_ways && frame.get("event_seq").is_some()) {
            Self::Server
        } else {
            Self::Client
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
