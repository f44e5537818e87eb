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
//! was delivered, a failure ends the request with [`ProviderErrorKind::Api`](super::ProviderErrorKind::Api); a response whose
//! `finish_reason` was already seen counts as complete even if its connection then breaks.
//! Other 4xx statuses fail at once with [`ProviderErrorKind::Request`](super::ProviderErrorKind::Request); unparsable chunks with
//! [`ProviderErrorKind::InvalidResponse`](super::ProviderErrorKind::InvalidResponse); an `error` object in the stream with
//! [`ProviderErrorKind::Api`](super::ProviderErrorKind::Api) (not retried).
//!
//! A server that ignores `stream: true` and answers with one `chat.completion` JSON object is
//! understood too (the body is sniffed: `{` starts a JSON answer, anything else is SSE).
//!
//! Nothing is spawned: dropping the future returned by [`ModelProvider::stream`] drops the
//! response body, which closes the connection.
//!
//! The parts, one file each: `request` builds the HTTP request and its JSON body, `sse` splits
//! the body into server-sent events, `chunk` reads one streamed chunk, `stream` turns the chunks
//! into events, and `failure` classifies what went wrong and how long to wait before a retry;
//! `models` asks the server which models it offers (`GET {base_url}/models`).

mod chunk;
mod failure;
mod models;
mod request;
mod sse;
mod stream;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Response, StatusCode};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::time::Instant;

use crate::metrics::Metrics;

use self::failure::{
    AttemptError, ERROR_BODY_LIMIT, Failure, api_error, backoff, error_body_message, error_chain, invalid_response,
    read_error_body, request_error, retry_after, truncate,
};
use self::request::{Target, WireRequest};
use self::sse::SseParser;
use self::stream::StreamState;
use super::{
    EventSink, FinishReason, ModelProvider, ModelRequest, ProviderError, ProviderEvent, ProviderFuture, RetryNotice,
};

/// Bytes of SSE parsed between two waits for the consumers ([`EventSink::ready`]): at most a
/// hundred or so chunks.
const PACE_BYTES: usize = 4096;
/// Longest SSE line, SSE event or JSON answer accepted, in bytes.
const MAX_BUFFER: usize = 64 * 1024 * 1024;
/// Longest server-requested `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// How long idle pooled connections are kept.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

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
    /// Where each attempt is counted, under this provider's name ([`Self::observed`]).
    observer: Option<(&'static str, Arc<Metrics>)>,
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
    /// [`ProviderErrorKind::Request`](super::ProviderErrorKind::Request). Needs no runtime; requests need a Tokio runtime with timers.
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
            observer: None,
        }
    }

    /// Counts every attempt in `metrics` under the provider name `provider` (its model handles'
    /// prefix), and logs it: status, latency and attempt number, never the request or answer.
    pub fn observed(mut self, provider: &'static str, metrics: Arc<Metrics>) -> Self {
        self.observer = Some((provider, metrics));
        self
    }

    /// Records an attempt that took `took` to its status (`None`: no response).
    fn attempted(&self, attempt: u32, took: Duration, status: Option<StatusCode>) {
        let Some((provider, metrics)) = &self.observer else {
            return;
        };
        let failed = !status.is_some_and(|status| status.is_success());
        metrics.provider_attempt(provider, took, failed.then(|| status.map(|status| status.as_u16())));
        let latency_ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX);
        let status = status.map(|status| status.as_u16());
        if failed {
            tracing::warn!(provider, status, latency_ms, attempt, "model request failed");
        } else {
            tracing::info!(provider, status, latency_ms, attempt, "model request");
        }
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
            let (error, reason, retry_after) = match self.attempt(target, &body, sink, attempt).await {
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
            tracing::info!(attempt, delay_ms = delay.as_millis(), "retrying the model request");
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

    /// Sends the request once (attempt number `attempt`) and streams the answer.
    async fn attempt(
        &self,
        target: &Target,
        body: &Bytes,
        sink: &mut dyn EventSink,
        attempt: u32,
    ) -> Result<FinishReason, AttemptError> {
        let request = target.request(body.clone()).map_err(AttemptError::Fatal)?;
        let timeout = self.settings.request_timeout;
        let started = Instant::now();
        let response = tokio::time::timeout(timeout, self.client.request(request)).await;
        let status = match &response {
            Ok(Ok(response)) => Some(response.status()),
            _ => None,
        };
        self.attempted(attempt, started.elapsed(), status);
        let response = match response {
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

/// What a successful response body is, sniffed from its first non-blank byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyMode {
    Unknown,
    Sse,
    Json,
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
