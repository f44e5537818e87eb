//! Validating frames against the checked-in schema bundle.

use letta_app_server_protocol::compat::{Bundle, Validator};

pub use letta_app_server_protocol::compat::Direction;

/// Validators for client and server frames, compiled from the checked-in bundle, the schema
/// alone (the parser's own checks are tested on their own).
pub struct Schemas(Validator);

impl Schemas {
    /// Compiles the checked-in bundle (`schema/frames.schema.json`; the xtask tests check that it
    /// is current).
    pub fn load() -> Self {
        let path = crate::repo_root().join("schema/frames.schema.json");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        let bundle = Bundle::from_json(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Self(Validator::new(&bundle).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
    }

    /// Every validation error of `frame`, as readable lines.
    pub fn errors(&self, direction: Direction, frame: &serde_json::Value) -> Vec<String> {
        self.0
            .validate(direction, frame)
            .into_iter()
            .map(|violation| violation.to_string())
            .collect()
    }
}
