//! Compatibility checking (the `compat` feature): schema bundles, frame validation, transcripts.
//!
//! The library behind `letta-app-server-tools validate` and `diff`, for Rust users who check
//! frames in their own tests:
//!
//! * [`Bundle`]: a schema bundle, this version's ([`Bundle::current`]) or one read from a file
//!   (an older release's `frames.schema.json`), and the frame types of each [`Direction`].
//! * [`Validator`]: the [`Violation`]s of a frame, each with the dotted path of the offending
//!   value and the reason.
//! * [`transcript`]: reads recorded frames (JSONL, JSON arrays, HAR exports) and checks them all
//!   into a [`Report`](transcript::Report) by frame type.
//! * [`diff()`]: the [`Change`]s between two bundles, each with its path and its [`Class`]
//!   (breaks clients, breaks servers, both, or compatible); the [`diff`](mod@diff) module
//!   documents the paths and the classification rules.
//!
//! ```
//! use letta_app_server_protocol::compat::{Validator, transcript};
//!
//! let recorded = r#"{"dir":"send","frame":{"type":"app_server_info","request_id":"i-1"}}
//! {"dir":"send","frame":{"type":"runtime_start","request_id":"rs-1","agent_id":42}}
//! {"dir":"recv","raw":"{not json"}"#;
//! let report = transcript::check(&Validator::current(), &transcript::read(recorded), None);
//! assert_eq!(report.checked(), 3);
//! assert_eq!(report.findings.len(), 2);
//! assert_eq!(report.findings[0].violations[0].path, "agent_id");
//! ```

mod bundle;
mod check;
pub mod diff;
pub mod transcript;

pub use bundle::{Bundle, BundleError, Direction};
pub use check::{EventSeq, Validator, Violation};
pub use diff::{Change, ChangeKind, Class, diff};
