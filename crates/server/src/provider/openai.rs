//! OpenAI-compatible Chat Completions provider with SSE streaming.
//!
//! [`OpenAiCompatible`] sends `POST {base_url}/chat/completions` with `stream: true`,
//! `stream_options.include_usage`, `store: false` and the offered tools (the request Letta's local
//! backend makes for `llama.cpp/…`, `ollama/…`, `lmstudio/…`, `openai-compatible/…` handles,
//! docs/protocol.md §6.1) and turns the server-sent events into [`ProviderEvent`]s:
//!
//! * `choices[0].delta.reasoning_content` (or `delta.reasoning`) → [`ProviderEvent::Reasoning`],
//!   `choices[0].delta.content` → [`ProviderEvent::Text`], one event per SSE chunk, as they arrive;
//! * `delta.tool_calls[]` fragments are accumulated by `index` and emitted as complete
//!   [`ProviderEvent::ToolCall`]s, in index order, when the stream finishes (a call without an id
//!   gets `call_<n>`, `n` being its position among the response's calls, from 0);
//! * the `usage` object → one [`ProviderEvent::Usage`] after the tool calls;
//! * `finish_reason` → [`FinishReason`]; a response with tool calls always finishes with
//!   [`FinishReason::ToolCalls`].
//!
//! Failures and retries: HTTP 429 and 5xx, connection errors, timeouts and broken streams are
//! retried while nothing has been delivered to the sink yet, up to
//! [`OpenAiSettings::max_attempts`] attempts in total, waiting
//! `retry_base_delay * 2^(retry - 1)` (or the server's `Retry-After`, when longer, up to 60 s)
//! before retry `retry`. Each retry is announced first with a [`ProviderEvent::Retry`] whose
//! `attempt` is the retry's number (from 1) and whose `max_attempts` is the number of retries
//! allowed (`max_attempts - 1`), like Letta's `event_message {event_type:"retry"}`. Once output
//! was delivered, a failure ends the request with [`ProviderErrorKind::Api`]; a response whose
//! `finish_reason` was already seen counts as complete even if its connection then breaks.
//! Other 4xx statuses fail at once with [`ProviderErrorKind::Request`]; unparsable chunks with
//! [`ProviderErrorKind::InvalidResponse`]; an `error` object in the stream with
//! [`ProviderErrorKind::Api`] (not retried).
//!
//! A server that ignores `stream: true` and answers with one `chat.completion` JSON object is
//! understood too (the body is sniffed: `{` starts a JSON answer, anything else is SSE).
//!
//! Nothing is spawned: dropping the future returned by [`ModelProvider::stream`] drops the
//! response body, which closes the connection.

use std::borrow::Cow;
use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{HeaderMap, Request, Response, StatusCode, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use letta_app_server_protocol::{ContentPart, ImagePart, ImageSource, JsonObject, MessageContent, TextPart};
use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use tokio::time::Instant;

use super::{
    EventSink, FinishReason, HistoryMessage, ModelProvider, ModelRequest, ProviderError, ProviderErrorKind,
    ProviderEvent, ProviderFuture, RetryNotice, ToolCall, Usage,
};

/// Bytes of SSE parsed between two waits for the consumers ([`EventSink::ready`]): at most a
/// hundred or so chunks.
const PACE_BYTES: usize = 4096;

/// Longest error body quoted in a [`ProviderError`] message, in bytes.
const ERROR_BODY_LIMIT: usize = 2048;
/// Longest error body read from an error response, in bytes.
const ERROR_BODY_READ_LIMIT: usize = 64 * 1024;
/// Longest SSE line, SSE event or JSON answer accepted, in bytes.
const MAX_BUFFER: usize = 64 * 1024 * 1024;
/// Longest server-requested `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// How long idle pooled connections are kept.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// The `User-Agent` sent with every request.
const USER_AGENT: &str = concat!("letta-app-server/", env!("CARGO_PKG_VERSION"));

/// Connection and retry settings of an [`OpenAiCompatible`] provider.
#[derive(Clone, PartialEq, Eq)]
pub struct OpenAiSettings {
    /// Base URL of the API including its version path, e.g. `http://127.0.0.1:8080/v1`;
    /// `/chat/completions` is appended (a trailing slash is ignored). `http` and `https` work.
    pub base_url: String,
    /// API key, sent as `Authorization: Bearer <key>` when set and not empty.
    pub api_key: Option<String>,
    /// Attempts per request in total, the first included (default 3; 0 counts as 1).
    pub max_attempts: u32,
    /// Delay before the first retry, doubled for each further retry (default 1 s).
    pub retry_base_delay: Duration,
    /// Longest wait for the response headers, connecting included (default 60 s).
    pub request_timeout: Duration,
    /// Longest gap between two chunks of a streamed response (default 120 s).
    pub idle_timeout: Duration,
}

impl Default for OpenAiSettings {
    fn default() -> Self {
        Self {
            base_url: String::new(),
            api_key: None,
            max_attempts: 3,
            retry_base_delay: Duration::from_secs(1),
            request_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(120),
        }
    }
}

impl fmt::Debug for OpenAiSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiSettings")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("max_attempts", &self.max_attempts)
            .field("retry_base_delay", &self.retry_base_delay)
            .field("request_timeout", &self.request_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .finish()
    }
}

/// A [`ModelProvider`] for OpenAI-compatible Chat Completions APIs (OpenAI, llama.cpp, Ollama,
/// LM Studio, vLLM, OpenRouter, …), streaming with server-sent events.
///
/// Cheap to clone; clones share the connection pool. See the [module docs](self) for the event
/// mapping, retries and error classes.
#[derive(Clone)]
pub struct OpenAiCompatible {
    settings: OpenAiSettings,
    /// The endpoint and headers, or why the settings are unusable (reported per request).
    target: Result<Target, String>,
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

/// Where requests go.
#[derive(Clone)]
struct Target {
    endpoint: Uri,
    authorization: Option<HeaderValue>,
}

impl fmt::Debug for OpenAiCompatible {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiCompatible")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl OpenAiCompatible {
    /// Creates the provider. Never fails: unusable settings (an empty or invalid `base_url`, an API
    /// key that is not a valid header value) make every request fail with
    /// [`ProviderErrorKind::Request`]. Needs no runtime; requests need a Tokio runtime with timers.
    pub fn new(settings: OpenAiSettings) -> Self {
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .build();
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .build(connector);
        let target = Target::from_settings(&settings);
        Self {
            settings,
            target,
            client,
        }
    }

    /// The settings the provider was created with.
    pub fn settings(&self) -> &OpenAiSettings {
        &self.settings
    }

    /// Runs one request with retries.
    async fn run(&self, request: &ModelRequest, sink: &mut dyn EventSink) -> Result<FinishReason, ProviderError> {
        let target = self.target.as_ref().map_err(|message| request_error(message.clone()))?;
        let body = serde_json::to_vec(&WireRequest::new(request))
            .map_err(|error| request_error(format!("cannot encode the request: {error}")))?;
        let body = Bytes::from(body);
        let max_attempts = self.settings.max_attempts.max(1);
        let mut attempt = 1;
        loop {
            let (error, reason, retry_after) = match self.attempt(target, &body, sink).await {
                Ok(finish) => return Ok(finish),
                Err(AttemptError::Fatal(error)) => return Err(error),
                Err(AttemptError::Retryable {
                    error,
                    reason,
                    retry_after,
                }) => (error, reason, retry_after),
            };
            if attempt >= max_attempts {
                return Err(error);
            }
            let mut delay = backoff(self.settings.retry_base_delay, attempt);
            if let Some(retry_after) = retry_after {
                delay = delay.max(retry_after.min(MAX_RETRY_AFTER));
            }
            sink.event(ProviderEvent::Retry(RetryNotice {
                attempt,
                max_attempts: max_attempts - 1,
                delay_ms: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                reason,
            }));
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    /// Sends the request once and streams the answer.
    async fn attempt(
        &self,
        target: &Target,
        body: &Bytes,
        sink: &mut dyn EventSink,
    ) -> Result<FinishReason, AttemptError> {
        let request = target.request(body.clone()).map_err(AttemptError::Fatal)?;
        let timeout = self.settings.request_timeout;
        let response = match tokio::time::timeout(timeout, self.client.request(request)).await {
            Ok(Ok(response)) => response,
            Ok(Err(error)) => {
                let message = format!("request failed: {}", error_chain(&error));
                return Err(AttemptError::retryable(message));
            }
            Err(_) => {
                let message = format!("no response within {}", humantime::format_duration(timeout));
                return Err(AttemptError::retryable(message));
            }
        };
        if !response.status().is_success() {
            return Err(self.status_error(response).await);
        }
        let mut state = StreamState::default();
        match self.read_body(response.into_body(), &mut state, sink).await {
            Ok(()) => {}
            Err(Failure::Provider(error)) => return Err(AttemptError::Fatal(error)),
            // The model said it was done: what is missing is at most the usage.
            Err(Failure::Transport(_)) if state.finish.is_some() => {}
            Err(Failure::Transport(message)) if state.delivered => {
                return Err(AttemptError::Fatal(api_error(message)));
            }
            Err(Failure::Transport(message)) => return Err(AttemptError::retryable(message)),
        }
        state.finish(sink).map_err(AttemptError::Fatal)
    }

    /// Classifies a non-success response.
    async fn status_error(&self, response: Response<Incoming>) -> AttemptError {
        let status = response.status();
        let retry_after = retry_after(response.headers());
        let body = read_error_body(response.into_body(), self.settings.request_timeout).await;
        let body_text = String::from_utf8_lossy(&body);
        let body_text = body_text.trim();
        let quoted = if body_text.is_empty() {
            status.canonical_reason().unwrap_or("no body")
        } else {
            truncate(body_text, ERROR_BODY_LIMIT)
        };
        let message = format!("{}: {quoted}", status.as_u16());
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            let detail = error_body_message(&body).map(|detail| truncate(&detail, ERROR_BODY_LIMIT).to_owned());
            let reason = format!("{}: {}", status.as_u16(), detail.as_deref().unwrap_or(quoted));
            AttemptError::Retryable {
                error: api_error(message),
                reason,
                retry_after,
            }
        } else if status.is_client_error() {
            AttemptError::Fatal(request_error(message))
        } else {
            AttemptError::Fatal(api_error(message))
        }
    }

    /// Reads a successful response: SSE, or one JSON completion.
    async fn read_body(
        &self,
        mut body: Incoming,
        state: &mut StreamState,
        sink: &mut dyn EventSink,
    ) -> Result<(), Failure> {
        let idle_timeout = self.settings.idle_timeout;
        let idle = tokio::time::sleep(idle_timeout);
        tokio::pin!(idle);
        let mut parser = SseParser::default();
        let mut mode = BodyMode::Unknown;
        let mut json = Vec::new();
        loop {
            let frame = tokio::select! {
                biased;
                frame = body.frame() => frame,
                () = &mut idle => {
                    return Err(Failure::Transport(format!(
                        "stream stalled: no data for {}",
                        humantime::format_duration(idle_timeout)
                    )));
                }
            };
            let frame = match frame {
                None => break,
                Some(Ok(frame)) => frame,
                Some(Err(error)) => return Err(Failure::Transport(format!("stream broken: {}", error_chain(&error)))),
            };
            idle.as_mut().reset(Instant::now() + idle_timeout);
            let Ok(data) = frame.into_data() else { continue };
            if mode == BodyMode::Unknown {
                match data.iter().find(|byte| !byte.is_ascii_whitespace()) {
                    None => continue,
                    Some(b'{') => mode = BodyMode::Json,
                    Some(_) => mode = BodyMode::Sse,
                }
            }
            if mode == BodyMode::Json {
                if json.len() + data.len() > MAX_BUFFER {
                    return Err(Failure::Provider(invalid_response("the response is too large")));
                }
                json.extend_from_slice(&data);
                continue;
            }
            for piece in data.chunks(PACE_BYTES) {
                parser
                    .feed(piece, &mut |event| state.on_data(event, sink))
                    .map_err(Failure::Provider)?;
                if state.done {
                    drain(&mut body).await;
                    return Ok(());
                }
                sink.ready().await;
            }
            // Waiting for the consumers is not the model stalling.
            idle.as_mut().reset(Instant::now() + idle_timeout);
        }
        if mode == BodyMode::Json {
            state.on_data(&json, sink).map_err(Failure::Provider)?;
            state.done = true;
        } else {
            parser
                .finish(&mut |event| state.on_data(event, sink))
                .map_err(Failure::Provider)?;
        }
        Ok(())
    }
}

impl ModelProvider for OpenAiCompatible {
    fn stream<'a>(&'a self, request: &'a ModelRequest, sink: &'a mut dyn EventSink) -> ProviderFuture<'a> {
        Box::pin(self.run(request, sink))
    }
}

impl Target {
    fn from_settings(settings: &OpenAiSettings) -> Result<Self, String> {
        let base = settings.base_url.trim().trim_end_matches('/');
        if base.is_empty() {
            return Err("no base URL is configured for the OpenAI-compatible provider".to_owned());
        }
        let url = format!("{base}/chat/completions");
        let endpoint: Uri = url
            .parse()
            .map_err(|error| format!("invalid base URL {base:?}: {error}"))?;
        match endpoint.scheme_str() {
            Some("http" | "https") if endpoint.authority().is_some() => {}
            _ => return Err(format!("invalid base URL {base:?}: expected http:// or https://")),
        }
        let authorization = match settings.api_key.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(key) => {
                let mut value = HeaderValue::try_from(format!("Bearer {key}"))
                    .map_err(|_| "the API key is not a valid header value".to_owned())?;
                value.set_sensitive(true);
                Some(value)
            }
        };
        Ok(Self {
            endpoint,
            authorization,
        })
    }

    fn request(&self, body: Bytes) -> Result<Request<Full<Bytes>>, ProviderError> {
        let mut builder = Request::post(self.endpoint.clone())
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, "text/event-stream")
            .header(header::USER_AGENT, USER_AGENT);
        if let Some(authorization) = &self.authorization {
            builder = builder.header(header::AUTHORIZATION, authorization.clone());
        }
        builder
            .body(Full::new(body))
            .map_err(|error| request_error(format!("cannot build the request: {error}")))
    }
}

/// How one attempt failed.
enum AttemptError {
    /// Worth another attempt: nothing was delivered to the sink yet.
    Retryable {
        /// The error if no attempt is left.
        error: ProviderError,
        /// The reason announced in the retry notice.
        reason: String,
        /// The server's `Retry-After`.
        retry_after: Option<Duration>,
    },
    /// Final.
    Fatal(ProviderError),
}

impl AttemptError {
    fn retryable(message: String) -> Self {
        Self::Retryable {
            error: api_error(message.clone()),
            reason: message,
            retry_after: None,
        }
    }
}

/// How reading a response body failed.
enum Failure {
    /// The connection broke or stalled.
    Transport(String),
    /// The provider sent something unusable or an error.
    Provider(ProviderError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyMode {
    Unknown,
    Sse,
    Json,
}

fn api_error(message: String) -> ProviderError {
    ProviderError {
        message,
        kind: ProviderErrorKind::Api,
    }
}

fn request_error(message: String) -> ProviderError {
    ProviderError {
        message,
        kind: ProviderErrorKind::Request,
    }
}

fn invalid_response(message: impl Into<String>) -> ProviderError {
    ProviderError {
        message: message.into(),
        kind: ProviderErrorKind::InvalidResponse,
    }
}

/// `base * 2^(retry - 1)`, saturating.
fn backoff(base: Duration, retry: u32) -> Duration {
    let factor = 1_u32.checked_shl(retry.saturating_sub(1)).unwrap_or(u32::MAX);
    base.saturating_mul(factor)
}

/// A `Retry-After` given in seconds.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let seconds: u64 = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim().parse().ok()?;
    Some(Duration::from_secs(seconds))
}

/// An error and its sources, `: `-separated.
fn error_chain(error: &dyn StdError) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(error) = source {
        let text = error.to_string();
        if !message.ends_with(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = error.source();
    }
    message
}

/// The longest prefix of `text` of at most `max` bytes ending on a char boundary.
fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Reads the start of an error body (best effort).
async fn read_error_body(mut body: Incoming, timeout: Duration) -> Vec<u8> {
    let mut bytes = Vec::new();
    let read = async {
        while let Some(Ok(frame)) = body.frame().await {
            if let Ok(data) = frame.into_data() {
                bytes.extend_from_slice(&data);
                if bytes.len() >= ERROR_BODY_READ_LIMIT {
                    break;
                }
            }
        }
    };
    let _ = tokio::time::timeout(timeout, read).await;
    bytes
}

/// Consumes what is already buffered after `[DONE]`, so the connection can be reused.
async fn drain(body: &mut Incoming) {
    for _ in 0..8 {
        match tokio::time::timeout(Duration::ZERO, body.frame()).await {
            Ok(Some(Ok(_))) => {}
            _ => return,
        }
    }
}

/// The message of an error body such as `{"error":{"message":"…"}}`.
fn error_body_message(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    json_error_message(&value)
}

/// The message of a JSON error: `error.message`, `error` (a string), `message` or `detail`.
fn json_error_message(value: &serde_json::Value) -> Option<String> {
    let error = value.get("error").unwrap_or(value);
    if let Some(text) = error.as_str() {
        return Some(text.to_owned());
    }
    ["message", "detail"].iter().find_map(|key| match error.get(key)? {
        serde_json::Value::String(text) => Some(text.clone()),
        serde_json::Value::Null => None,
        other => Some(other.to_string()),
    })
}

/// The message of an `error` object found in the stream.
fn stream_error_message(error: &serde_json::Value) -> String {
    let message = json_error_message(error).unwrap_or_else(|| error.to_string());
    let code = error.get("code").filter(|code| code.is_number() || code.is_string());
    let message = match code {
        Some(serde_json::Value::String(code)) => format!("{code}: {message}"),
        Some(code) => format!("{code}: {message}"),
        None => message,
    };
    truncate(&message, ERROR_BODY_LIMIT).to_owned()
}

// ---------------------------------------------------------------------------------------------
// Server-sent events

/// An incremental SSE parser (the `data` field only; `event`, `id`, `retry` are ignored).
#[derive(Default)]
struct SseParser {
    /// The incomplete line carried over from the previous chunk.
    line: Vec<u8>,
    /// The data of the event being built.
    data: Vec<u8>,
    /// Whether the event being built has a `data` field.
    has_data: bool,
    /// The previous chunk ended with `\r`: a leading `\n` belongs to that line end.
    skip_lf: bool,
}

type OnEvent<'f> = dyn FnMut(&[u8]) -> Result<(), ProviderError> + 'f;

impl SseParser {
    /// Parses one chunk, calling `on_event` with the data of each complete event.
    fn feed(&mut self, mut chunk: &[u8], on_event: &mut OnEvent<'_>) -> Result<(), ProviderError> {
        if std::mem::take(&mut self.skip_lf) && chunk.first() == Some(&b'\n') {
            chunk = &chunk[1..];
        }
        while let Some(end) = chunk.iter().position(|&byte| byte == b'\n' || byte == b'\r') {
            let (line, rest) = chunk.split_at(end);
            let Some((&terminator, mut rest)) = rest.split_first() else {
                break;
            };
            if terminator == b'\r' {
                match rest.first() {
                    Some(b'\n') => rest = &rest[1..],
                    None => self.skip_lf = true,
                    Some(_) => {}
                }
            }
            if self.line.is_empty() {
                self.line_complete(line, on_event)?;
            } else {
                let mut carried = std::mem::take(&mut self.line);
                carried.extend_from_slice(line);
                let result = self.line_complete(&carried, on_event);
                carried.clear();
                self.line = carried;
                result?;
            }
            chunk = rest;
        }
        if self.line.len() + chunk.len() > MAX_BUFFER {
            return Err(invalid_response("an SSE line is too long"));
        }
        self.line.extend_from_slice(chunk);
        Ok(())
    }

    /// Ends the stream: an unterminated last line and event still count.
    fn finish(&mut self, on_event: &mut OnEvent<'_>) -> Result<(), ProviderError> {
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.line_complete(&line, on_event)?;
        }
        self.dispatch(on_event)
    }

    fn line_complete(&mut self, line: &[u8], on_event: &mut OnEvent<'_>) -> Result<(), ProviderError> {
        let (field, value) = match line.iter().position(|&byte| byte == b':') {
            None if line.is_empty() => return self.dispatch(on_event),
            None => (line, &[][..]),
            Some(0) => return Ok(()), // a comment
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
        };
        if field == b"data" {
            if self.data.len() + value.len() > MAX_BUFFER {
                return Err(invalid_response("an SSE event is too large"));
            }
            if self.has_data {
                self.data.push(b'\n');
            }
            self.data.extend_from_slice(value);
            self.has_data = true;
        }
        Ok(())
    }

    fn dispatch(&mut self, on_event: &mut OnEvent<'_>) -> Result<(), ProviderError> {
        if !std::mem::take(&mut self.has_data) {
            return Ok(());
        }
        let result = on_event(&self.data);
        self.data.clear();
        result
    }
}

// ---------------------------------------------------------------------------------------------
// Stream state

/// What one response produced so far.
#[derive(Default)]
struct StreamState {
    /// Tool calls being assembled, in order of appearance.
    tool_calls: Vec<PartialToolCall>,
    /// The latest usage seen.
    usage: Option<Usage>,
    /// The finish reason, once seen.
    finish: Option<FinishReason>,
    /// `data: [DONE]` was seen.
    done: bool,
    /// Text or reasoning went to the sink: the request can no longer be retried.
    delivered: bool,
}

/// A tool call being assembled from fragments.
struct PartialToolCall {
    index: u64,
    id: String,
    name: String,
    arguments: String,
}

impl StreamState {
    /// Handles the data of one SSE event (or a whole JSON completion).
    fn on_data(&mut self, data: &[u8], sink: &mut dyn EventSink) -> Result<(), ProviderError> {
        let data = data.trim_ascii();
        if self.done || data.is_empty() {
            return Ok(());
        }
        if data == b"[DONE]" {
            self.done = true;
            return Ok(());
        }
        let chunk: WireChunk<'_> = serde_json::from_slice(data).map_err(|error| {
            let quoted = String::from_utf8_lossy(data);
            invalid_response(format!(
                "invalid JSON in the response: {error}: {}",
                truncate(&quoted, 200)
            ))
        })?;
        if let Some(error) = chunk.error {
            return Err(api_error(stream_error_message(&error)));
        }
        if let Some(usage) = chunk.usage {
            self.usage = Some(usage.into());
        }
        for choice in chunk.choices.into_iter().flatten().filter(|choice| choice.index == 0) {
            if let Some(delta) = choice.delta {
                let reasoning = delta.reasoning_content.0.filter(|text| !text.is_empty());
                if let Some(reasoning) = reasoning.or(delta.reasoning.0).filter(|text| !text.is_empty()) {
                    self.delivered = true;
                    sink.event(ProviderEvent::Reasoning(reasoning.into_owned()));
                }
                if let Some(text) = delta.content.0.filter(|text| !text.is_empty()) {
                    self.delivered = true;
                    sink.event(ProviderEvent::Text(text.into_owned()));
                }
                for fragment in delta.tool_calls.into_iter().flatten() {
                    self.add_tool_fragment(fragment);
                }
            }
            if let Some(reason) = choice.finish_reason.0 {
                self.finish = Some(match &*reason {
                    "tool_calls" | "function_call" => FinishReason::ToolCalls,
                    "length" | "max_tokens" => FinishReason::MaxTokens,
                    _ => FinishReason::EndTurn,
                });
            }
        }
        Ok(())
    }

    fn add_tool_fragment(&mut self, fragment: WireToolCallDelta<'_>) {
        let id = fragment.id.0.filter(|id| !id.is_empty());
        let existing = match (fragment.index, id.as_deref()) {
            // The same index with a different id is a new call (servers that send whole calls).
            (Some(index), id) => self
                .tool_calls
                .iter()
                .rposition(|call| call.index == index)
                .filter(|&at| id.is_none_or(|id| self.tool_calls[at].id.is_empty() || self.tool_calls[at].id == id)),
            (None, Some(id)) => self.tool_calls.iter().rposition(|call| call.id == id),
            (None, None) => self.tool_calls.len().checked_sub(1),
        };
        let at = match existing {
            Some(at) => at,
            None => {
                let index = fragment
                    .index
                    .unwrap_or_else(|| self.tool_calls.iter().map(|call| call.index + 1).max().unwrap_or(0));
                self.tool_calls.push(PartialToolCall {
                    index,
                    id: String::new(),
                    name: String::new(),
                    arguments: String::new(),
                });
                self.tool_calls.len() - 1
            }
        };
        let call = &mut self.tool_calls[at];
        if let Some(id) = id
            && call.id.is_empty()
        {
            call.id = id.into_owned();
        }
        if let Some(function) = fragment.function {
            if let Some(name) = function.name.0
                && call.name != name
            {
                call.name.push_str(&name);
            }
            if let Some(arguments) = function.arguments.0 {
                call.arguments.push_str(&arguments);
            }
        }
    }

    /// Completes a response: emits the tool calls and the usage and returns why it stopped.
    fn finish(self, sink: &mut dyn EventSink) -> Result<FinishReason, ProviderError> {
        if !self.done && self.finish.is_none() {
            return Err(invalid_response("stream ended unexpectedly"));
        }
        let mut calls = self.tool_calls;
        calls.sort_by_key(|call| call.index);
        let has_calls = !calls.is_empty();
        for (n, call) in calls.into_iter().enumerate() {
            let id = if call.id.is_empty() {
                format!("call_{n}")
            } else {
                call.id
            };
            let arguments = if call.arguments.trim().is_empty() {
                "{}".to_owned()
            } else {
                call.arguments
            };
            sink.event(ProviderEvent::ToolCall(ToolCall {
                id,
                name: call.name,
                arguments,
            }));
        }
        if let Some(usage) = self.usage {
            sink.event(ProviderEvent::Usage(usage));
        }
        Ok(match self.finish {
            _ if has_calls => FinishReason::ToolCalls,
            // `tool_calls` without any call: nothing to wait for.
            Some(FinishReason::ToolCalls) | None => FinishReason::EndTurn,
            Some(finish) => finish,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Wire format: request

/// The request body.
#[derive(Serialize)]
struct WireRequest<'a> {
    model: &'a str,
    messages: Vec<WireMessage<'a>>,
    stream: bool,
    stream_options: StreamOptions,
    store: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<WireTool<'a>>,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

#[derive(Serialize)]
#[serde(tag = "role", rename_all = "lowercase")]
enum WireMessage<'a> {
    System {
        content: &'a str,
    },
    User {
        content: WireUserContent<'a>,
    },
    Assistant {
        /// `null` when the reply only calls tools.
        content: Option<&'a str>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        tool_calls: Vec<WireToolCall<'a>>,
    },
    Tool {
        tool_call_id: &'a str,
        content: &'a str,
    },
}

#[derive(Serialize)]
#[serde(untagged)]
enum WireUserContent<'a> {
    Text(&'a str),
    Parts(Vec<WirePart<'a>>),
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WirePart<'a> {
    Text { text: Cow<'a, str> },
    ImageUrl { image_url: WireImageUrl<'a> },
}

#[derive(Serialize)]
struct WireImageUrl<'a> {
    url: ImageUrl<'a>,
}

/// An image URL; inline data is written as a `data:` URL without building it first.
enum ImageUrl<'a> {
    Data { media_type: &'a str, data: &'a str },
    Url(&'a str),
}

impl Serialize for ImageUrl<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Data { media_type, data } => serializer.collect_str(&format_args!("data:{media_type};base64,{data}")),
            Self::Url(url) => serializer.serialize_str(url),
        }
    }
}

#[derive(Serialize)]
struct WireToolCall<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: WireFunctionCall<'a>,
}

#[derive(Serialize)]
struct WireFunctionCall<'a> {
    name: &'a str,
    arguments: &'a str,
}

#[derive(Serialize)]
struct WireTool<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    function: WireFunction<'a>,
}

#[derive(Serialize)]
struct WireFunction<'a> {
    name: &'a str,
    description: &'a str,
    parameters: &'a JsonObject,
}

impl<'a> WireRequest<'a> {
    fn new(request: &'a ModelRequest) -> Self {
        let mut messages = Vec::with_capacity(request.messages.len() + 1);
        if !request.system.is_empty() {
            messages.push(WireMessage::System {
                content: &request.system,
            });
        }
        messages.extend(request.messages.iter().map(WireMessage::from_history));
        let tools = request
            .tools
            .iter()
            .map(|tool| WireTool {
                kind: "function",
                function: WireFunction {
                    name: &tool.name,
                    description: &tool.description,
                    parameters: &tool.parameters,
                },
            })
            .collect();
        Self {
            model: &request.model,
            messages,
            stream: true,
            stream_options: StreamOptions { include_usage: true },
            store: false,
            tools,
        }
    }
}

impl<'a> WireMessage<'a> {
    fn from_history(message: &'a HistoryMessage) -> Self {
        match message {
            HistoryMessage::User {
                content: MessageContent::Text(text),
            } => Self::User {
                content: WireUserContent::Text(text),
            },
            HistoryMessage::User {
                content: MessageContent::Parts(parts),
            } => Self::User {
                content: WireUserContent::Parts(parts.iter().map(WirePart::from_part).collect()),
            },
            HistoryMessage::Assistant { text, tool_calls } => Self::Assistant {
                // Without tool calls OpenAI requires a content string.
                content: (!text.is_empty() || tool_calls.is_empty()).then_some(text.as_str()),
                tool_calls: tool_calls
                    .iter()
                    .map(|call| WireToolCall {
                        id: &call.id,
                        kind: "function",
                        function: WireFunctionCall {
                            name: &call.name,
                            arguments: if call.arguments.trim().is_empty() {
                                "{}"
                            } else {
                                &call.arguments
                            },
                        },
                    })
                    .collect(),
            },
            HistoryMessage::ToolResult {
                tool_call_id,
                content,
                is_error: _,
            } => Self::Tool { tool_call_id, content },
        }
    }
}

impl<'a> WirePart<'a> {
    fn from_part(part: &'a ContentPart) -> Self {
        match part {
            ContentPart::Text(TextPart { text }) => Self::Text {
                text: Cow::Borrowed(text),
            },
            ContentPart::Image(ImagePart {
                source: ImageSource::Base64 { media_type, data },
            }) => Self::ImageUrl {
                image_url: WireImageUrl {
                    url: ImageUrl::Data { media_type, data },
                },
            },
            ContentPart::Image(ImagePart {
                source: ImageSource::Url { url },
            }) => Self::ImageUrl {
                image_url: WireImageUrl {
                    url: ImageUrl::Url(url),
                },
            },
            ContentPart::Image(ImagePart {
                source: ImageSource::Letta { file_id },
            }) => Self::Text {
                text: Cow::Owned(format!(
                    "[image omitted: Letta file {file_id} cannot be sent to this model provider]"
                )),
            },
            ContentPart::Unknown(value) => {
                let kind = value
                    .get("type")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or("unknown");
                Self::Text {
                    text: Cow::Owned(format!(
                        "[content part of type {kind:?} omitted: not supported by this model provider]"
                    )),
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Wire format: streamed chunks (borrowing from the event data where possible)

#[derive(Deserialize)]
struct WireChunk<'a> {
    #[serde(default, borrow)]
    choices: Option<Vec<WireChoice<'a>>>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct WireChoice<'a> {
    #[serde(default)]
    index: u64,
    /// `message` in a non-streamed completion.
    #[serde(default, borrow, alias = "message")]
    delta: Option<WireDelta<'a>>,
    #[serde(default, borrow)]
    finish_reason: LenientStr<'a>,
}

#[derive(Deserialize)]
struct WireDelta<'a> {
    #[serde(default, borrow)]
    content: LenientStr<'a>,
    #[serde(default, borrow)]
    reasoning_content: LenientStr<'a>,
    #[serde(default, borrow)]
    reasoning: LenientStr<'a>,
    #[serde(default, borrow)]
    tool_calls: Option<Vec<WireToolCallDelta<'a>>>,
}

#[derive(Deserialize)]
struct WireToolCallDelta<'a> {
    #[serde(default)]
    index: Option<u64>,
    #[serde(default, borrow)]
    id: LenientStr<'a>,
    #[serde(default, borrow)]
    function: Option<WireFunctionDelta<'a>>,
}

#[derive(Deserialize)]
struct WireFunctionDelta<'a> {
    #[serde(default, borrow)]
    name: LenientStr<'a>,
    #[serde(default, borrow)]
    arguments: LenientJson<'a>,
}

#[derive(Deserialize)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
    #[serde(default)]
    prompt_tokens_details: Option<WirePromptDetails>,
    #[serde(default)]
    completion_tokens_details: Option<WireCompletionDetails>,
}

#[derive(Deserialize)]
struct WirePromptDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct WireCompletionDetails {
    #[serde(default)]
    reasoning_tokens: Option<u64>,
}

impl From<WireUsage> for Usage {
    fn from(usage: WireUsage) -> Self {
        Self {
            prompt_tokens: usage.prompt_tokens.unwrap_or(0),
            completion_tokens: usage.completion_tokens.unwrap_or(0),
            cached_input_tokens: usage
                .prompt_tokens_details
                .and_then(|details| details.cached_tokens)
                .unwrap_or(0),
            reasoning_tokens: usage
                .completion_tokens_details
                .and_then(|details| details.reasoning_tokens)
                .unwrap_or(0),
        }
    }
}

/// A string field that tolerates other JSON: `null`, booleans and numbers are `None`; objects and
/// arrays are `None` too, or written back as JSON text when `KEEP_JSON` (tool-call arguments that
/// some servers send as an object).
#[derive(Default)]
struct LenientStr<'a, const KEEP_JSON: bool = false>(Option<Cow<'a, str>>);

/// Tool-call arguments: a string, or JSON kept as text.
type LenientJson<'a> = LenientStr<'a, true>;

impl<'de: 'a, 'a, const KEEP_JSON: bool> Deserialize<'de> for LenientStr<'a, KEEP_JSON> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(LenientStrVisitor::<KEEP_JSON>)
    }
}

struct LenientStrVisitor<const KEEP_JSON: bool>;

impl<'de, const KEEP_JSON: bool> Visitor<'de> for LenientStrVisitor<KEEP_JSON> {
    type Value = LenientStr<'de, KEEP_JSON>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: de::Error>(self, value: &'de str) -> Result<Self::Value, E> {
        Ok(LenientStr(Some(Cow::Borrowed(value))))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
        Ok(LenientStr(Some(Cow::Owned(value.to_owned()))))
    }

    fn visit_string<E: de::Error>(self, value: String) -> Result<Self::Value, E> {
        Ok(LenientStr(Some(Cow::Owned(value))))
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(LenientStr(None))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(LenientStr(None))
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(LenientStr(None))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(LenientStr(None))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(LenientStr(None))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(LenientStr(None))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        if !KEEP_JSON {
            IgnoredAny::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
            return Ok(LenientStr(None));
        }
        let value = serde_json::Value::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
        Ok(LenientStr(Some(Cow::Owned(value.to_string()))))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        if !KEEP_JSON {
            IgnoredAny::deserialize(de::value::MapAccessDeserializer::new(map))?;
            return Ok(LenientStr(None));
        }
        let value = serde_json::Value::deserialize(de::value::MapAccessDeserializer::new(map))?;
        Ok(LenientStr(Some(Cow::Owned(value.to_string()))))
    }
}
