//! A local OpenAI-compatible Chat Completions server (hyper, in-process) for the server's tests,
//! the benchmarks and the conformance kit.
//!
//! A [`MockServer`] on `127.0.0.1:<free port>` lists [`MockServer::set_models`]'s ids at
//! `GET /v1/models` and serves `POST /v1/chat/completions`, where a [`Responder`] answers each
//! request:
//!
//! * [`Script`] ([`MockServer::scripted`]) answers with a script of [`MockResponse`]s (SSE chunks
//!   with delays, error statuses, broken or stalled streams) and records the requests;
//! * [`Directives`] streams what the newest user message asks for with the scripted model's
//!   directives, time-stamping chunks for latency measurements;
//! * [`Conformance`] is the conformance kit's model (`letta-app-server-tools conformance
//!   --serve-model`): stateless and steered by directives, so it behaves the same behind any
//!   server.

mod chunks;
mod conformance;
mod directives;
mod script;
mod server;

pub use chunks::{finish_chunk, reasoning_chunk, text_chunk, tool_chunk, usage_chunk};
pub use conformance::Conformance;
pub use directives::Directives;
pub use script::{MockResponse, Script};
pub use server::{MockServer, ReceivedRequest, Reply, Responder, StreamEnd};
