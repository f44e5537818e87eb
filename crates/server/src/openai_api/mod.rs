//! The OpenAI-compatible HTTP API (`--openai-api`, docs/protocol.md §9), on the websocket's port:
//! each agent is a model. Optional, and orthogonal to the websocket protocol; real Letta's
//! `--openai-api` facade, with the differences the protocol document lists.
//!
//! * `GET /v1/models` ([`models`](mod@models)) — one model per agent.
//! * `POST /v1/chat/completions` ([`chat`]) — a turn; streamed as `chat.completion.chunk`s or
//!   answered as one `chat.completion`.
//! * `POST /v1/responses` ([`responses`]) — a turn as a Responses API response, continued with
//!   `previous_response_id`.
//!
//! Which conversation a request runs in: the one pinned to its chat key (`X-Letta-Chat-Key`, or
//! `X-OpenWebUI-Chat-Id` on streaming requests), which then gets only the newest user message;
//! else a fresh conversation into which the request's transcript is copied, deleted after the
//! turn. Turns run through [`turn`] as an in-process protocol client; [`content`] reads the
//! messages.
//!
//! The transport admits each request first ([`crate::transport`]: the bearer token when
//! authentication is configured, no `Origin`); here the method, the body (at most
//! [`Config::max_frame_bytes`](crate::Config::max_frame_bytes), JSON), and the rest.

mod chat;
mod content;
mod models;
mod responses;
mod turn;

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use letta_app_server_protocol::{JsonObject, RuntimeScope};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::clock::now_iso;
use crate::engine::catalog::new_conversation;
use crate::history::HistoryMessage;
use crate::sessions::Sessions;
use crate::sync::lock;
use turn::{Failure, Outcome};

/// The body of every answer of the API.
pub(crate) type Body = UnsyncBoxBody<Bytes, Infallible>;

/// How long a client has to send a request body once its head arrived.
const BODY_TIMEOUT: Duration = Duration::from_secs(60);

/// Longest chat key or idempotency key, in bytes.
const MAX_KEY_BYTES: usize = 512;

/// Whether `path` is one of the API's (`/v1/…`).
pub(crate) fn serves(path: &str) -> bool {
    path == "/v1" || path.starts_with("/v1/")
}

/// The API over the server's sessions.
pub(crate) struct Api {
    sessions: Arc<Sessions>,
    /// Cancelled when the server stops: running turns are stopped, their requests answered.
    shutdown: CancellationToken,
    /// Held while the conversation of a keyed chat is found or created, so that concurrent
    /// first requests of one chat share one conversation.
    chats: tokio::sync::Mutex<()>,
    /// The idempotency keys whose request is running, with where its outcome will be published.
    running: Mutex<HashMap<String, watch::Receiver<Option<Arc<Outcome>>>>>,
    /// The turns and the work after them (deleting a throwaway conversation, storing an
    /// outcome), which go on after their client left and which a shutdown waits for.
    pub(crate) tasks: TaskTracker,
}

impl Api {
    /// The API over `sessions`, until `shutdown` is cancelled.
    pub(crate) fn new(sessions: Arc<Sessions>, shutdown: CancellationToken) -> Arc<Self> {
        Arc::new(Self {
            sessions,
            shutdown,
            chats: tokio::sync::Mutex::new(()),
            running: Mutex::default(),
            tasks: TaskTracker::new(),
        })
    }

    /// Answers an admitted request to one of the API's paths.
    pub(crate) async fn handle(self: &Arc<Self>, request: Request<Incoming>) -> Response<Body> {
        let path = request.uri().path();
        let allowed = match path {
            "/v1/models" => Method::GET,
            "/v1/chat/completions" | "/v1/responses" => Method::POST,
            _ => {
                return ApiError::new(StatusCode::NOT_FOUND, format!("unknown endpoint {path}")).response();
            }
        };
        if request.method() != allowed {
            let mut response =
                ApiError::new(StatusCode::METHOD_NOT_ALLOWED, format!("{path} accepts {allowed} only")).response();
            let allow = if allowed == Method::GET { "GET" } else { "POST" };
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(allow));
            return response;
        }
        let answered = match path {
            "/v1/models" => self
                .list_models()
                .await
                .map(|list| json_response(StatusCode::OK, &list)),
            "/v1/chat/completions" => {
                let (parts, body) = request.into_parts();
                match self.read_json(body, &parts.headers).await {
                    Ok(body) => self.chat_completions(&parts.headers, body).await,
                    Err(error) => Err(error),
                }
            }
            _ => {
                let (parts, body) = request.into_parts();
                match self.read_json(body, &parts.headers).await {
                    Ok(body) => self.responses(&parts.headers, body).await,
                    Err(error) => Err(error),
                }
            }
        };
        answered.unwrap_or_else(ApiError::response)
    }

    /// The request body as a JSON object: at most [`Config::max_frame_bytes`] (413 past it),
    /// within [`BODY_TIMEOUT`] (408 past it).
    ///
    /// [`Config::max_frame_bytes`]: crate::Config::max_frame_bytes
    async fn read_json(&self, body: Incoming, headers: &HeaderMap) -> Result<JsonObject, ApiError> {
        let max = self.sessions.config().max_frame_bytes;
        let too_large = || {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body too large: at most {max} bytes"),
            )
        };
        let declared =
            (headers.get(header::CONTENT_LENGTH)).and_then(|length| length.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|length| length > max as u64) {
            return Err(too_large());
        }
        let read = tokio::time::timeout(BODY_TIMEOUT, Limited::new(body, max).collect()).await;
        let bytes = match read {
            Err(_) => {
                return Err(ApiError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "the request body did not arrive in time",
                ));
            }
            Ok(Err(error)) if error.is::<http_body_util::LengthLimitError>() => return Err(too_large()),
            Ok(Err(_)) => return Err(ApiError::invalid("the request body could not be read")),
            Ok(Ok(collected)) => collected.to_bytes(),
        };
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(object)) => Ok(object),
            Ok(_) => Err(ApiError::invalid("the request body must be a JSON object")),
            Err(error) => Err(ApiError::invalid(format!("invalid JSON body: {error}"))),
        }
    }

    /// The conversation of the chat `chat_key` of `agent_id`: the one pinned to it, or a new one
    /// pinned to it now.
    async fn chat_conversation(&self, agent_id: &str, chat_key: &str) -> Result<RuntimeScope, ApiError> {
        let store = &self.sessions.engine().store;
        let _creating = self.chats.lock().await;
        let pinned = store.chat_conversation(agent_id.to_owned(), chat_key.to_owned()).await;
        if let Some(id) = pinned.map_err(ApiError::internal)? {
            let stored = store.conversation(id.clone()).await.map_err(ApiError::internal)?;
            if stored.is_some() {
                return Ok(RuntimeScope::new(agent_id, id));
            }
        }
        let scope = self.new_conversation(agent_id, false, Vec::new()).await?;
        let pinned = store.save_chat_conversation(
            agent_id.to_owned(),
            chat_key.to_owned(),
            scope.conversation_id.clone(),
            now_iso(),
        );
        pinned.await.map_err(ApiError::internal)?;
        Ok(scope)
    }

    /// A new conversation of `agent_id` (`hidden` from listings unless asked for) holding
    /// `history`.
    async fn new_conversation(
        &self,
        agent_id: &str,
        hidden: bool,
        history: Vec<HistoryMessage>,
    ) -> Result<RuntimeScope, ApiError> {
        let mut body = JsonObject::new();
        if hidden {
            body.insert("hidden".into(), Value::Bool(true));
        }
        let engine = self.sessions.engine();
        let created = new_conversation(engine, "conv", Some(agent_id), body).await;
        let id = created.map_err(ApiError::internal)?["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let scope = RuntimeScope::new(agent_id, id);
        if !history.is_empty()
            && let Err(error) = engine.store.append_messages(&scope, None, history).await
        {
            // Nothing names the conversation yet: it would be left behind.
            forget(self, &scope).await;
            return Err(ApiError::internal(error));
        }
        Ok(scope)
    }
}

/// Deletes the conversation of `scope`, made for a request that can no longer name it; a
/// failure is only logged.
async fn forget(api: &Api, scope: &RuntimeScope) {
    if let Err(error) = api.sessions.engine().forget_conversation(scope).await {
        tracing::warn!(conversation = scope.conversation_id, %error, "could not delete the conversation");
    }
}

/// The agent (model) a request names: its non-empty `model`.
fn model_of(body: &JsonObject) -> Result<String, ApiError> {
    match body.get("model") {
        Some(Value::String(model)) if !model.is_empty() => Ok(model.clone()),
        _ => Err(ApiError::invalid("you must provide a model parameter").param("model")),
    }
}

/// A header's value, when it is present, not empty and at most [`MAX_KEY_BYTES`] (400 past it).
fn header_key(headers: &HeaderMap, name: &'static str) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(name) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| ApiError::invalid(format!("{name} must be visible ASCII")))?;
    if value.len() > MAX_KEY_BYTES {
        return Err(ApiError::invalid(format!(
            "{name} is longer than {MAX_KEY_BYTES} bytes"
        )));
    }
    Ok((!value.is_empty()).then(|| value.to_owned()))
}

/// The chat key of a request: `X-Letta-Chat-Key`, or on a streaming request
/// `X-OpenWebUI-Chat-Id` (Open WebUI's background requests — titles, tags — do not stream, and
/// must not land in the chat's conversation).
fn chat_key(headers: &HeaderMap, streaming: bool) -> Result<Option<String>, ApiError> {
    match header_key(headers, "x-letta-chat-key")? {
        Some(key) => Ok(Some(key)),
        None if streaming => header_key(headers, "x-openwebui-chat-id"),
        None => Ok(None),
    }
}

/// An error answered in OpenAI's shape: `{"error": {"message", "type", "param", "code"}}`.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    message: String,
    param: Option<&'static str>,
    code: Option<&'static str>,
    /// Sent with `x-should-retry: false`: the input was accepted into a turn, so a retry would
    /// run it again (OpenAI's client retries 408, 409, 429 and 5xx unless told not to).
    final_answer: bool,
}

impl ApiError {
    /// An error with this status.
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            param: None,
            code: None,
            final_answer: false,
        }
    }

    /// The error answer of a failed turn: final unless nothing of the turn ran.
    fn failed(failure: &Failure) -> Self {
        let status = StatusCode::from_u16(failure.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        Self {
            final_answer: !failure.retryable,
            ..Self::new(status, failure.message.clone())
        }
    }

    /// 400 `invalid_request_error`.
    fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 500: the store or the engine failed.
    fn internal(error: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, error.to_string())
    }

    /// Names the request field at fault.
    fn param(mut self, param: &'static str) -> Self {
        self.param = Some(param);
        self
    }

    /// Gives the error a code (`model_not_found`, …).
    fn code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }

    /// OpenAI's error `type` for the status.
    fn kind(&self) -> &'static str {
        match self.status {
            StatusCode::UNAUTHORIZED => "authentication_error",
            StatusCode::FORBIDDEN => "permission_error",
            status if status.is_server_error() => "server_error",
            _ => "invalid_request_error",
        }
    }

    /// The error object.
    fn body(&self) -> Value {
        json!({"error": {"message": self.message, "type": self.kind(), "param": self.param, "code": self.code}})
    }

    /// The answer.
    fn response(self) -> Response<Body> {
        let mut response = json_response(self.status, &self.body());
        if self.final_answer {
            response
                .headers_mut()
                .insert("x-should-retry", HeaderValue::from_static("false"));
        }
        response
    }
}

/// A refusal of the transport's admission checks (401 with its reason, 403, 400), in OpenAI's
/// error shape; the transport adds the refusal's headers.
pub(crate) fn refused(status: StatusCode, reason: &str) -> Response<Body> {
    let message = match reason.trim() {
        "" if status == StatusCode::FORBIDDEN => "requests from web pages (with an Origin header) are not served",
        "" => "the request was refused",
        reason => reason,
    };
    ApiError::new(status, message).response()
}

/// A JSON answer.
fn json_response(status: StatusCode, body: &Value) -> Response<Body> {
    let bytes = Bytes::from(serde_json::to_vec(body).unwrap_or_default());
    let mut response = Response::new(Full::new(bytes).boxed_unsync());
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// A `text/event-stream` answer whose body is `events`, each already framed.
fn event_stream(events: impl Stream<Item = Bytes> + Send + 'static) -> Response<Body> {
    let body = StreamBody::new(events.map(|bytes| Ok::<_, Infallible>(Frame::data(bytes))));
    let mut response = Response::new(body.boxed_unsync());
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// One `data:` event.
fn data_event(value: &Value) -> Bytes {
    Bytes::from(format!("data: {value}\n\n"))
}

/// Unix seconds now.
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs() as i64)
}

/// Where an idempotent request's outcome comes from.
enum Claim {
    /// No earlier request: this one runs, and publishes its outcome here.
    Run(turn::OutcomeSender),
    /// An earlier request's outcome, once it is known.
    Replay(watch::Receiver<Option<Arc<Outcome>>>),
}

impl Api {
    /// Claims an idempotency `key` of a request to `agent_id`: the outcome of an earlier request
    /// with it (running, or stored within [`crate::store`]'s retention), or the right to run it.
    async fn claim(self: &Arc<Self>, key: &str, agent_id: &str) -> Result<Claim, ApiError> {
        let (sender, receiver) = {
            let mut running = lock(&self.running);
            if let Some(earlier) = running.get(key) {
                return Ok(Claim::Replay(earlier.clone()));
            }
            let (sender, receiver) = watch::channel(None);
            running.insert(key.to_owned(), receiver.clone());
            (sender, receiver)
        };
        // An earlier request stored its outcome before it gave up its claim.
        let stored = self
            .sessions
            .engine()
            .store
            .idempotent_outcome(key.to_owned(), unix_now());
        let stored = match stored.await {
            Ok(stored) => stored.and_then(|json| serde_json::from_str::<Outcome>(&json).ok()),
            Err(error) => {
                lock(&self.running).remove(key);
                return Err(ApiError::internal(error));
            }
        };
        if let Some(outcome) = stored {
            sender.send_replace(Some(Arc::new(outcome)));
            lock(&self.running).remove(key);
            return Ok(Claim::Replay(receiver));
        }
        // Once the outcome is known: stored if the turn succeeded (a failed one may be retried),
        // then the claim is given up — even if the client went away.
        let api = self.clone();
        let (key, agent) = (key.to_owned(), agent_id.to_owned());
        self.tasks.spawn(async move {
            let outcome = turn::settled(receiver.clone()).await;
            if outcome.failure.is_none() {
                let json = serde_json::to_string(&*outcome).unwrap_or_default();
                let store = &api.sessions.engine().store;
                if let Err(error) = store
                    .save_idempotent_outcome(key.clone(), agent, json, unix_now())
                    .await
                {
                    tracing::warn!(%error, "could not store an idempotent outcome");
                }
            }
            let mut running = lock(&api.running);
            if running.get(&key).is_some_and(|current| current.same_channel(&receiver)) {
                running.remove(&key);
            }
        });
        Ok(Claim::Run(sender))
    }
}
