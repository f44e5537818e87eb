//! Frame types of the Letta Code App Server **v2 websocket protocol**.
//!
//! This crate is the single source of truth of the project: the JSON Schema in `schema/`, the
//! generated Rust client types and the Node and Python typings all derive from the types here.
//!
//! * [`ClientFrame`] — every frame a controller sends (the nine Tier-A commands, plus the legacy
//!   `message` input form and `pong`), closed: an unknown `type` is a [`FrameError`].
//! * [`ServerFrame`] — every frame the server sends: command responses, direct notifications and
//!   enveloped runtime events. Open: a frame type this version does not know parses into
//!   [`ServerFrame::Unknown`] with its JSON kept, so an older client survives a newer server.
//! * [`RuntimeEvent`] — the payload of an enveloped runtime event without its per-connection
//!   [`Envelope`]; a server serialises it once and appends the envelope per connection.
//!
//! Each command is declared once (wire name, request type, response type, request-id prefix) and
//! each event once (wire name, type, [`Delivery`]) in `frames.rs`; the enums, the
//! [`FrameType::TYPE`] name constants, the [`Request`] pairing and the machine-readable
//! [`COMMANDS`]/[`SERVER_FRAMES`]/[`EVENTS`] lists are derived from that declaration.
//!
//! ```
//! use letta_app_server_protocol::{ClientFrame, ServerFrame, FrameType, RuntimeStart};
//!
//! let frame = ClientFrame::from_json(r#"{"type":"runtime_start","request_id":"rs-1","agent_id":"agent-1"}"#)?;
//! let ClientFrame::RuntimeStart(start) = &frame else { unreachable!() };
//! assert_eq!(start.agent_id.as_deref(), Some("agent-1"));
//! assert_eq!(RuntimeStart::TYPE, "runtime_start");
//!
//! // A frame type from a newer server is kept, not rejected.
//! let future = ServerFrame::from_json(r#"{"type":"hologram","x":1}"#)?;
//! assert_eq!(future.frame_type(), "hologram");
//! # Ok::<(), letta_app_server_protocol::FrameError>(())
//! ```

#[macro_use]
mod macros;

mod agents;
mod approval;
mod channels;
#[cfg(feature = "compat")]
pub mod compat;
mod content;
mod control;
mod conversations;
mod cron;
mod cwd;
pub mod delta;
mod device_status;
mod envelope;
mod error_frame;
mod external_tools;
mod file_ops;
mod files;
mod frames;
mod git;
mod info;
mod input;
mod loop_status;
mod memory;
mod models;
mod modes;
mod objects_only;
mod parse;
mod queue;
mod runtime_start;
pub mod schema;
mod scope;
mod secrets;
mod serde_util;
mod settings;
mod skills;
mod subagent;
mod task_control;
mod teleport;
mod terminal;
mod turn;
mod validate;

pub use agents::*;
pub use approval::*;
pub use channels::*;
pub use content::*;
pub use control::*;
pub use conversations::*;
pub use cron::*;
pub use cwd::*;
pub use delta::*;
pub use device_status::*;
pub use envelope::*;
pub use error_frame::*;
pub use external_tools::*;
pub use file_ops::*;
pub use files::*;
pub use frames::*;
pub use git::*;
pub use info::*;
pub use input::*;
pub use loop_status::*;
pub use memory::*;
pub use models::*;
pub use modes::*;
pub use parse::*;
pub use queue::*;
pub use runtime_start::*;
pub use scope::*;
pub use secrets::*;
pub use settings::*;
pub use skills::*;
pub use subagent::*;
pub use task_control::*;
pub use teleport::*;
pub use terminal::*;
pub use turn::*;

/// The protocol version this crate speaks, as reported in `app_server_info_response`
/// (`protocol_version`). Real Letta Code reports `1`.
pub const PROTOCOL_VERSION: u32 = 1;

/// How a client that cannot set an `Authorization` header — a web page — sends its bearer token
/// to a server with authentication: as a `Sec-WebSocket-Protocol` value, this prefix followed by
/// the token (an extension of this implementation; real Letta has none). The server echoes the
/// value back as the selected subprotocol.
pub const BEARER_SUBPROTOCOL_PREFIX: &str = "letta-app-server.bearer.";

/// An open-ended JSON object the protocol passes through without pinning its fields down
/// (agent state, conversation, tool parameter schemas, tool inputs).
pub type JsonObject = serde_json::Map<String, serde_json::Value>;
