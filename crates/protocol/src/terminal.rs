//! The terminal group: `terminal_spawn`, `terminal_input`, `terminal_resize`, `terminal_kill`
//! and the pushes `terminal_spawned`, `terminal_output`, `terminal_exited` (docs/protocol.md
//! §4.14).
//!
//! A terminal is a pseudo-terminal of one connection, named by the client's `terminal_id`. None
//! of these frames has a `request_id` or an envelope: the pushes go to the connection that owns
//! the terminal.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Starts a terminal (or, if one with this id is alive, has `terminal_spawned` sent again).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct TerminalSpawn {
    /// The client's name for the terminal.
    pub terminal_id: String,
    /// Columns.
    pub cols: u32,
    /// Rows.
    pub rows: u32,
    /// The shell's working directory; the boot working directory when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
}

/// Types into a terminal.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct TerminalInput {
    /// The terminal.
    pub terminal_id: String,
    /// The bytes to write, as text.
    pub data: String,
}

/// Resizes a terminal.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct TerminalResize {
    /// The terminal.
    pub terminal_id: String,
    /// Columns.
    pub cols: u32,
    /// Rows.
    pub rows: u32,
}

/// Ends a terminal's process; `terminal_exited` follows.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct TerminalKill {
    /// The terminal.
    pub terminal_id: String,
}

/// Direct notification: a terminal started.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct TerminalSpawned {
    /// The terminal.
    pub terminal_id: String,
    /// Its process id.
    pub pid: u32,
}

/// Direct notification: output of a terminal.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct TerminalOutput {
    /// The terminal.
    pub terminal_id: String,
    /// The bytes it wrote, as text (escape sequences included).
    pub data: String,
}

/// Direct notification: a terminal's process ended.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct TerminalExited {
    /// The terminal.
    pub terminal_id: String,
    /// The process's exit code.
    #[serde(rename = "exitCode")]
    pub exit_code: i32,
    /// Why the terminal failed, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}
