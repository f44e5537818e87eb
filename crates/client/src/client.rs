//! The client handle and its commands; connecting is in the `builder` module.

use std::fmt::Display;
use std::future::Future;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use tokio::task::JoinHandle;

use crate::answers::refuse_error_frame;
use crate::command::{self, Call, StreamCall};
use crate::connection::{self, Connection};
use crate::events::{Events, RawEvents};
use crate::frame::{Frame, RawFrame};
use crate::options::Options;
use crate::requests::Requests;
use crate::responses::{RawResponses, Responses};
use crate::shared::Shared;
use crate::tools::{self, ExternalTools};
use crate::turn::Turn;
use crate::types::{
    AbortMessage, AbortMessageResponse, AppServerInfo, AppServerInfoResponse, ApprovalDecision,
    ExternalToolCallRequest, ExternalToolDefinition, ExternalToolGroup, ExternalToolResult, ExternalToolsUpdate, Input,
    InputAccepted, InputPayload, RemoveQueueItem, RemoveQueueItemResponse, RuntimeExternalToolsUpdate,
    RuntimeExternalToolsUpdateResponse, RuntimeScope, RuntimeStart, RuntimeStartResponse, SyncResponse,
};
use crate::{Error, JsonObject};

/// A connection to an App Server. Cheap to clone; clones share the connection. The connection
/// closes with [`Client::close`] or when the last clone is dropped.
#[derive(Clone)]
pub struct Client {
    handle: Arc<Handle>,
    timeout: Duration,
}

struct Handle {
    shared: Arc<Shared>,
    tools: Arc<ExternalTools>,
    /// How many frames a stream buffers by default.
    event_capacity: usize,
    supervisor: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.close();
    }
}

impl Client {
    /// Connects with `options` (checked), numbering request ids from `next_id`, and runs
    /// `before_reading` on the client's core before the first frame is read.
    pub(crate) async fn start<T>(
        options: Options,
        next_id: Arc<AtomicU64>,
        before_reading: impl FnOnce(&Shared) -> T,
    ) -> Result<(Client, T), Error> {
        let sockets = connection::open(&options).await?;
        let timeout = options.request_timeout;
        let event_capacity = options.event_capacity;
        let resuming = options.reconnect.as_ref().is_some_and(|policy| policy.resume);
        let shared = Arc::new(Shared::new(next_id, resuming));
        let tools = Arc::new(ExternalTools::default());
        let subscribed = before_reading(&shared);
        let supervisor = connection::start(
            Connection {
                options,
                shared: Arc::clone(&shared),
                tools: Arc::clone(&tools),
            },
            sockets,
        );
        let client = Client {
            handle: Arc::new(Handle {
                shared,
                tools,
                event_capacity,
                supervisor: Mutex::new(Some(supervisor)),
            }),
            timeout,
        };
        Ok((client, subscribed))
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.handle.shared
    }

    /// How long this client's commands wait for their answers.
    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// This client with another timeout for its commands.
    pub fn with_timeout(&self, timeout: Duration) -> Client {
        Client {
            handle: Arc::clone(&self.handle),
            timeout,
        }
    }

    /// A fresh request id, `"<prefix>-<n>"`.
    pub fn next_request_id(&self, prefix: &str) -> String {
        self.shared().next_request_id(prefix)
    }

    // ----- events ---------------------------------------------------------------------------

    /// Every frame the server sends from now on, typed, after the approvals pending now (see
    /// [`Client::pending_approvals`]). Every stream of this client starts that way.
    pub fn events(&self) -> Events {
        Events::new(self.raw_events(None))
    }

    /// [`Client::events`] with a buffer of `capacity` frames instead of the client's default.
    pub fn events_with_capacity(&self, capacity: usize) -> Events {
        Events::new(self.shared().subscribe(None, capacity))
    }

    /// The frames of one runtime from now on, typed.
    pub fn runtime_events(&self, scope: &RuntimeScope) -> Events {
        Events::new(self.raw_events(Some(scope)))
    }

    /// Frames as received, of every runtime or of one.
    pub fn raw_events(&self, scope: Option<&RuntimeScope>) -> RawEvents {
        self.shared().subscribe(scope.cloned(), self.handle.event_capacity)
    }

    /// Every frame as received, through a stream that does not skip: while it holds
    /// `capacity` unread items the client stops reading the socket, so command answers, tool
    /// calls and the other streams wait too, and the server holds back the turns it streams to
    /// this connection (and, past its slow-reader limits, closes it). For a consumer that
    /// always reads, such as a language binding's dispatcher.
    pub fn raw_events_paced(&self, capacity: usize) -> RawEvents {
        self.shared().subscribe_paced(capacity)
    }

    /// Frames as received, of every runtime or of one, through a stream of the client's
    /// `event_capacity` that holds reading back while it is full, for at most `patience` at a
    /// time. A consumer that keeps reading gets every frame however fast the server sends (the
    /// server holds its turns back, as for a plain websocket reader); one that stops for longer
    /// than `patience` stops holding up the connection and falls behind as a
    /// [`Client::raw_events`] stream does (skipping, then [`Gap::Lagged`](crate::Gap::Lagged))
    /// until it has drained half its buffer.
    pub fn raw_events_patient(&self, scope: Option<&RuntimeScope>, patience: Duration) -> RawEvents {
        self.shared()
            .subscribe_patient(scope.cloned(), self.handle.event_capacity, patience)
    }

    /// The `control_request`s pending, of every runtime or of `scope`'s, oldest first, as last
    /// received: those the server asked on this connection (or replayed to it: on connect, on
    /// `sync` and on `runtime_start`) and has not settled. An approval is settled once its
    /// runtime's `update_device_status` no longer lists it in `pending_control_requests`, or its
    /// turn's `turn_finished` arrives. Empty while disconnected.
    pub fn pending_approvals(&self, scope: Option<&RuntimeScope>) -> Vec<Frame> {
        self.shared()
            .pending_approvals(scope)
            .into_iter()
            .map(RawFrame::into_frame)
            .collect()
    }

    // ----- sending --------------------------------------------------------------------------

    /// Sends any frame without waiting for an answer. A `runtime_start`, `sync` (with a
    /// `request_id`) or `runtime_external_tools_update` that the server accepts is restored
    /// after a reconnect, as if sent with the typed method.
    pub async fn send<T: Serialize + ?Sized>(&self, frame: &T) -> Result<(), Error> {
        self.shared().send(to_text(frame)?).await
    }

    /// [`Client::send`] for a frame given as JSON text, sent as it is.
    pub async fn send_text(&self, text: String) -> Result<(), Error> {
        self.shared().send(text).await
    }

    /// Sends a frame that carries `request_id` and returns the first frame the server answers
    /// with that `request_id` (an `error` frame is returned as [`Error::Server`]).
    pub async fn request<T: Serialize + ?Sized>(&self, frame: &T, request_id: &str) -> Result<Frame, Error> {
        // With no answer types listed, the first frame with the id answers.
        let raw = self
            .shared()
            .request(to_text(frame)?, request_id, &[], self.timeout)
            .await?;
        refuse_error_frame(&raw)?;
        Ok(raw.into_frame())
    }

    /// Sends a command answered by one frame, given as a JSON object, and returns the answer as
    /// received, unchanged (one answered by a stream of frames is [`Error::Protocol`]: see
    /// [`Client::command_stream`]): what the typed methods do, for callers that hold frames as JSON
    /// (language bindings, proxies) and must not lose fields this version does not know.
    ///
    /// An absent or empty `request_id` is filled in (`"<command>-<n>"`); a `runtime_start`
    /// without `external_tools` offers the tools registered with
    /// [`Client::register_external_tool`]. An `error` frame is [`Error::Server`], `success:
    /// false` or `accepted: false` is [`Error::Rejected`], another protocol version in
    /// `app_server_info_response` is [`Error::Protocol`]. A `runtime_start`, `sync` or
    /// `runtime_external_tools_update` that succeeds is restored after a reconnect.
    pub async fn command(&self, mut frame: JsonObject) -> Result<RawFrame, Error> {
        let starts_runtime = frame.get("type").and_then(Value::as_str) == Some("runtime_start");
        if starts_runtime && frame.get("external_tools").is_none_or(Value::is_null) {
            let tools = self.handle.tools.definitions();
            if !tools.is_empty() {
                let groups = vec![ExternalToolGroup { scope_id: None, tools }];
                frame.insert(
                    "external_tools".into(),
                    serde_json::to_value(groups).unwrap_or_default(),
                );
            }
        }
        command::send(self.shared(), frame, self.timeout).await
    }

    /// Sends a command answered by a stream, given as a JSON object, and returns its answer
    /// frames as received, unchanged, until the one that carries `done: true` (see
    /// [`RawResponses`]): [`Client::call_stream`] for callers that hold frames as JSON. An
    /// absent or empty `request_id` is filled in (`"<command>-<n>"`). A command that is not
    /// answered by a stream is [`Error::Protocol`].
    pub async fn command_stream(&self, frame: JsonObject) -> Result<RawResponses, Error> {
        command::send_stream(&self.handle.shared, frame, self.timeout).await
    }

    /// Sends any command the server answers with one frame and returns that frame, typed:
    /// `type` is set and an empty `request_id` filled in (`"<command>-<n>"`); every command of
    /// the protocol table implements [`Call`] (see [`meta`](crate::meta)). Otherwise as
    /// [`Client::command`]: an `error` frame is [`Error::Server`], an answer with `success:
    /// false` (or `accepted: false`) is [`Error::Rejected`], and so on.
    ///
    /// ```no_run
    /// # async fn run(client: letta_app_server_client::Client) -> Result<(), letta_app_server_client::Error> {
    /// use letta_app_server_client::types::AgentList;
    ///
    /// let listed = client
    ///     .call(&AgentList { type_: String::new(), request_id: String::new(), query: None })
    ///     .await?;
    /// println!("{} agents", listed.agents.len());
    /// # Ok(()) }
    /// ```
    pub async fn call<C: Call>(&self, command: &C) -> Result<C::Response, Error> {
        self.command(command::typed_object(command, C::TYPE)?).await?.parse()
    }

    /// Sends any command the server answers with a stream of frames and returns them, typed,
    /// up to the one that carries `done: true` (see [`Responses`] for how it ends); every such
    /// command of the protocol table implements [`StreamCall`]. `type` is set and an empty
    /// `request_id` filled in.
    pub async fn call_stream<C: StreamCall>(&self, command: &C) -> Result<Responses<C::Response>, Error> {
        let frame = command::typed_object(command, C::TYPE)?;
        Ok(Responses::new(self.command_stream(frame).await?))
    }

    /// `app_server_info`: the server's version and capabilities. Fails with
    /// [`Error::Protocol`] when the server speaks another protocol version.
    pub async fn app_server_info(&self) -> Result<AppServerInfoResponse, Error> {
        self.call(&AppServerInfo {
            type_: "app_server_info".into(),
            request_id: String::new(),
        })
        .await
    }

    /// `runtime_start`: resolves or creates an agent and a conversation and subscribes this
    /// connection to them. `type` and an empty `request_id` are filled in; when `external_tools`
    /// is `None`, the tools registered with [`Client::register_external_tool`] are offered.
    /// The runtime is restored after a reconnect.
    pub async fn runtime_start(&self, mut command: RuntimeStart) -> Result<RuntimeStartResponse, Error> {
        command.type_ = "runtime_start".into();
        self.call(&command).await
    }

    /// `sync`: subscribes to `scope` and replays its state (pending approvals, device and loop
    /// status, queue, subagents) before the answer.
    pub async fn sync(&self, scope: &RuntimeScope) -> Result<SyncResponse, Error> {
        self.call(&crate::types::Sync::new(scope)).await
    }

    /// `abort_message`: cancels the runtime's turn and rejects its pending approvals.
    /// `aborted` says whether there was anything to cancel.
    pub async fn abort(&self, scope: &RuntimeScope) -> Result<AbortMessageResponse, Error> {
        self.call(&AbortMessage {
            type_: "abort_message".into(),
            request_id: None,
            runtime: scope.clone(),
            run_id: None,
        })
        .await
    }

    /// `remove_queue_item`: withdraws a queued input.
    pub async fn remove_queue_item(
        &self,
        scope: &RuntimeScope,
        item_id: &str,
    ) -> Result<RemoveQueueItemResponse, Error> {
        self.call(&RemoveQueueItem {
            type_: "remove_queue_item".into(),
            request_id: String::new(),
            runtime: scope.clone(),
            item_id: item_id.to_owned(),
        })
        .await
    }

    /// `runtime_external_tools_update`: replaces this connection's external tools of many
    /// runtimes at once, without subscribing to them. They are registered again after a
    /// reconnect.
    pub async fn runtime_external_tools_update(
        &self,
        updates: Vec<ExternalToolsUpdate>,
    ) -> Result<RuntimeExternalToolsUpdateResponse, Error> {
        self.call(&RuntimeExternalToolsUpdate {
            type_: "runtime_external_tools_update".into(),
            request_id: String::new(),
            updates,
        })
        .await
    }

    /// `input`: sends messages (a turn starts, or the input queues) or answers an approval.
    /// Fails with [`Error::Rejected`] when the server does not accept it.
    pub async fn input(&self, scope: &RuntimeScope, payload: InputPayload) -> Result<InputAccepted, Error> {
        self.send_input(scope, payload).await?.parse()
    }

    /// `input`, answered by its `input_accepted` frame.
    async fn send_input(&self, scope: &RuntimeScope, payload: InputPayload) -> Result<RawFrame, Error> {
        let input = Input {
            type_: "input".into(),
            request_id: None,
            terminal_consumer_id: None,
            runtime: scope.clone(),
            payload,
        };
        self.command(command::to_object(&input)?).await
    }

    /// Sends `payload` and returns the stream of the turn it starts or joins, up to its
    /// `turn_finished`. Messages without a `client_message_id` get a unique one, which is how
    /// a queued input finds its turn.
    pub async fn turn(&self, scope: &RuntimeScope, payload: InputPayload) -> Result<Turn, Error> {
        // Subscribe first so that none of the turn's frames can be missed.
        self.turn_on(self.raw_events(Some(scope)), scope, payload).await
    }

    /// [`Client::turn`] through a [`Client::raw_events_patient`] stream: a consumer that keeps
    /// reading gets every frame of the turn, however long.
    pub async fn turn_patient(
        &self,
        scope: &RuntimeScope,
        payload: InputPayload,
        patience: Duration,
    ) -> Result<Turn, Error> {
        self.turn_on(self.raw_events_patient(Some(scope), patience), scope, payload)
            .await
    }

    async fn turn_on(&self, events: RawEvents, scope: &RuntimeScope, mut payload: InputPayload) -> Result<Turn, Error> {
        let mut ids = Vec::new();
        if let InputPayload::CreateMessage { messages, .. } = &mut payload {
            for message in messages.iter_mut() {
                let id = message
                    .client_message_id
                    .get_or_insert_with(|| format!("cm-{}", uuid::Uuid::new_v4()));
                ids.push(id.clone());
            }
        }
        Turn::new(events, self.send_input(scope, payload).await?, ids)
    }

    /// Sends one user message and returns the stream of its turn.
    pub async fn send_message(&self, scope: &RuntimeScope, text: &str) -> Result<Turn, Error> {
        self.turn(scope, InputPayload::user_text(text)).await
    }

    /// Answers the `control_request` `request_id` of `scope`: allow (possibly with edited
    /// input) or deny. The first answer wins; a late one fails with [`Error::Rejected`].
    pub async fn answer_approval(
        &self,
        scope: &RuntimeScope,
        request_id: &str,
        decision: ApprovalDecision,
    ) -> Result<InputAccepted, Error> {
        let payload = InputPayload::ApprovalResponse {
            request_id: request_id.to_owned(),
            decision: Some(decision),
            error: None,
        };
        self.input(scope, payload).await
    }

    // ----- external tools -------------------------------------------------------------------

    /// Serves an external tool: `runtime_start`s from now on offer it (unless they name their
    /// own `external_tools`), and its calls are answered with `handler`'s result. An `Err`, or
    /// a panic, is answered as an error the model sees.
    pub fn register_external_tool<F, Fut, R, E>(&self, definition: ExternalToolDefinition, handler: F)
    where
        F: Fn(ExternalToolCallRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, E>> + Send + 'static,
        R: Into<ExternalToolResult>,
        E: Display,
    {
        self.handle.tools.register(definition, tools::handler(handler));
    }

    /// Answers calls of external tools that have no handler of their own (tools registered
    /// through `runtime_start.external_tools` directly, for example).
    pub fn on_external_tool_call<F, Fut, R, E>(&self, handler: F)
    where
        F: Fn(ExternalToolCallRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, E>> + Send + 'static,
        R: Into<ExternalToolResult>,
        E: Display,
    {
        self.handle.tools.set_fallback(tools::handler(handler));
    }

    // ----- closing --------------------------------------------------------------------------

    /// Closes the connection: pending commands fail with [`Error::Closed`], event streams end.
    pub async fn close(&self) {
        self.shared().close();
        let supervisor = self
            .handle
            .supervisor
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(supervisor) = supervisor {
            let _ = supervisor.await;
        }
    }
}

fn to_text<T: Serialize + ?Sized>(frame: &T) -> Result<String, Error> {
    serde_json::to_string(frame).map_err(|e| Error::Protocol {
        message: format!("the frame cannot be serialised: {e}"),
    })
}
