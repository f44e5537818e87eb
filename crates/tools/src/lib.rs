//! The library behind `letta-app-server-tools`, the command line for people who check
//! compatibility with the Letta Code App Server v2 websocket protocol.
//!
//! * [`export`]: the schema bundle, TypeScript declarations and Python types of this version.
//! * [`codegen`]: the TypeScript and Python generators behind the export (and `cargo xtask
//!   codegen`).
//! * [`validate`]: recorded frames checked against the schema, with a readable report.
//! * [`diff`]: the changes between two schema bundles as a report or JSON, the CI gate, and the
//!   old bundle read from a git revision.
//! * [`conformance`]: the conformance kit, which drives a running App Server through the
//!   protocol's lifecycles and reports a result per check, and its model server.
//!
//! Frame validation and the schema diff themselves are [`letta_app_server_protocol::compat`],
//! which Rust users can call from their own tests without this crate.

pub mod codegen;
pub mod conformance;
pub mod diff;
pub mod export;
pub mod validate;
