//! Model providers: where a turn's assistant output comes from.
//!
//! A provider turns a [`ModelRequest`] (system prompt, history, tools) into a stream of
//! [`ProviderEvent`]s delivered to a sink, and returns why the model stopped. The turn engine
//! converts the events into `stream_delta` frames; cancelling a turn drops the provider's future.
//!
//! * [`scripted`] — the embedded offline default: deterministic, follows directives in the user
//!   text.
//! * [`openai`] — OpenAI-compatible Chat Completions with SSE streaming (`llama.cpp/…`,
//!   `ollama/…`, `lmstudio/…`, `openai/…`, `openai-compatible/…`).
//!
//! [`Providers`] picks one from a model handle; [`kinds`] names the providers this server drives,
//! `connections` keeps those `connect_provider` connected (`<data_dir>/providers/auth.json`), and
//! `catalog` asks them which models they offer.

mod catalog;
mod connections;
pub mod kinds;
pub mod openai;
mod registry;
pub mod scripted;

pub use connections::AuthFile;
pub use registry::{Offered, ProviderSettings, Providers, SCRIPTED_HANDLE, SCRIPTED_ID};

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use letta_app_server_protocol::JsonObject;
use serde_json::value::RawValue;

use crate::history::{HistoryMessage, ToolCall};

/// The system prompt of a compaction's model request: the model is sent the messages to
/// compact, then [`SUMMARY_REQUEST`], and its reply is the summary.
pub const SUMMARY_SYSTEM: &str = "You summarise conversations between a user and an AI agent so that the agent \
can continue without them. Keep what the agent will need: the user's goals and preferences, decisions \
made, facts learned, files and commands involved, and work still open. Write plain prose, at most 300 words.";

/// The last message of a compaction's model request.
pub const SUMMARY_REQUEST: &str = "Summarise the conversation above.";

/// A tool offered to the model.
#[derive(Debug, Clone)]
pub struct ToolSpec {
    /// Model-facing name.
    pub name: String,
    /// What it does.
    pub description: String,
    /// JSON Schema of its arguments, serialised once: a request copies it as it is (the
    /// schemas are most of a request's bytes, and serialising them again for every request was
    /// a tenth of a turn start's CPU).
    pub parameters: Box<RawValue>,
}

impl ToolSpec {
    /// The spec of a tool with this schema of its arguments.
    pub fn new(name: String, description: String, parameters: &JsonObject) -> Self {
        let parameters = serde_json::value::to_raw_value(parameters).expect("a JSON object serialises");
        Self {
            name,
            description,
            parameters,
        }
    }
}

impl PartialEq for ToolSpec {
    fn eq(&self, other: &Self) -> bool {
        (self.name == other.name && self.description == other.description)
            && self.parameters.get() == other.parameters.get()
    }
}

/// Everything a provider needs for one model request.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelRequest {
    /// The model id without the provider prefix (`llama3` for `ollama/llama3`).
    pub model: String,
    /// The system prompt.
    pub system: String,
    /// The conversation so far, oldest first, ending with the new input: shared with the
    /// conversation, which appends to it copy-on-write (in place once no request holds it).
    pub messages: Arc<Vec<HistoryMessage>>,
    /// Tools the model may call (shared by the runs of a turn).
    pub tools: Arc<[Arc<ToolSpec>]>,
    /// The reasoning effort `update_model` chose (`low`, `high`, …), if any; `None` leaves it to
    /// the provider.
    pub reasoning_effort: Option<String>,
}

/// Token usage of one model request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Prompt tokens.
    pub prompt_tokens: u64,
    /// Completion tokens.
    pub completion_tokens: u64,
    /// Prompt tokens served from a cache.
    pub cached_input_tokens: u64,
    /// Reasoning tokens.
    pub reasoning_tokens: u64,
}

/// Something the model produced, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum ProviderEvent {
    /// A fragment of visible reasoning.
    Reasoning(String),
    /// A fragment of reply text.
    Text(String),
    /// A complete tool call.
    ToolCall(ToolCall),
    /// Token usage (at most once per request).
    Usage(Usage),
    /// The request failed and is about to be sent again.
    Retry(RetryNotice),
}

/// A retry announcement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryNotice {
    /// This attempt's number, from 1.
    pub attempt: u32,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// Delay before the attempt.
    pub delay_ms: u64,
    /// Why the previous attempt failed.
    pub reason: String,
}

/// Why the model stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// The reply is complete.
    EndTurn,
    /// The model called tools and waits for their results.
    ToolCalls,
    /// The output token limit was reached.
    MaxTokens,
}

/// A failed model request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderError {
    /// Short description (e.g. `500: upstream exploded`).
    pub message: String,
    /// Whether the failure was in the provider's API (HTTP status, transport) rather than in
    /// what it returned.
    pub kind: ProviderErrorKind,
}

/// Class of a provider failure; maps to the turn's stop reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderErrorKind {
    /// The provider could not be reached or answered with an error status
    /// (`llm_api_error`).
    Api,
    /// The provider answered with something unusable (`invalid_llm_response`).
    InvalidResponse,
    /// The request itself was rejected, e.g. HTTP 400 (`error`).
    Request,
}

impl std::fmt::Display for ProviderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ProviderError {}

/// Receives a provider's events as they are produced.
///
/// Any `FnMut(ProviderEvent)` closure is a sink that is always ready.
pub trait EventSink: Send {
    /// Takes the next event.
    fn event(&mut self, event: ProviderEvent);

    /// Resolves once the consumers can take more events. Providers await it between network
    /// reads (and the scripted model between chunks), so a model that streams faster than the
    /// websocket readers take its output is read no faster than they are (docs/protocol.md §2.6).
    fn ready(&mut self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(std::future::ready(()))
    }
}

impl<F: FnMut(ProviderEvent) + Send> EventSink for F {
    fn event(&mut self, event: ProviderEvent) {
        self(event);
    }
}

/// The future a provider returns for one request.
pub type ProviderFuture<'a> = Pin<Box<dyn Future<Output = Result<FinishReason, ProviderError>> + Send + 'a>>;

/// A source of model output.
pub trait ModelProvider: Send + Sync {
    /// Runs one model request, delivering events to `sink` in order.
    fn stream<'a>(&'a self, request: &'a ModelRequest, sink: &'a mut dyn EventSink) -> ProviderFuture<'a>;
}

/// A shared provider.
pub type SharedProvider = Arc<dyn ModelProvider>;
