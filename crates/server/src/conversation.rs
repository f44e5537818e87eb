//! One conversation runtime: its queue, its turn, its loop and device state, and the frames
//! each change produces (docs/protocol.md §3.3–§3.13, frame order of §5).
//!
//! State changes happen under the async `state` lock. Every frame of the scope is emitted under
//! the sync `emitter` lock, which also records whether the current run was cancelled, so that no
//! output of an aborted run is sent after the abort's frames.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use letta_app_server_protocol::{
    AbortMessageResponse, ApprovalDecision, ApprovalResponse, CanUseToolRequest, ChangeDeviceState, ContentPart,
    ControlRequest, CreateMessage, Delta, DeltaMeta, DevicePermissionMode, DeviceStatus, Disposition, Input,
    InputAccepted, JsonObject, LoopError, LoopState, LoopStatus, MessageContent, PendingControlRequest, QueueItemKind,
    QueueItemSource, QueueMessage, QueueRemoval, RemovalDisposition, RemoveQueueItem, RemoveQueueItemResponse,
    RuntimeEvent, RuntimeScope, Status, StatusLevel, StopReason, StreamDelta, ToolsetName, ToolsetPreference,
    TurnFinished, UpdateDeviceStatus, UpdateLoopStatus, UpdateQueue, UpdateSubagentState, UserMessage,
};
use tokio_util::sync::CancellationToken;

use crate::clock::{new_id, now_iso};
use crate::config::Config;
use crate::history::{HistoryMessage, ToolCall};
use crate::permissions::Rules;
use crate::runtime::{Runtime, Session, SessionId, lock};
use crate::store::{
    Admission, INTERRUPTED_TURN_ERROR, InputState, InterruptedTurn, QueueEntry, Restored, ScopeSettings, TurnStart,
    item_no,
};
use crate::toolbox::TurnOptions;
use crate::turn;

/// How many `client_message_id`s a conversation remembers for de-duplication in memory (the
/// store remembers all of them).
const REMEMBERED_CLIENT_IDS: usize = 4096;
/// Runs listed in `client_message_ids_by_run_id`.
const REMEMBERED_RUNS: usize = 32;
/// Client ids listed in `client_message_ids_by_run_id` at most (the oldest runs go first): the map
/// is in every `update_loop_status`, so it stays small whatever the inputs carried.
const REMEMBERED_RUN_CLIENT_IDS: usize = 512;
/// A new item beyond this many evicts the oldest waiting one.
const QUEUE_SOFT_LIMIT: usize = 100;
/// Inputs beyond this many waiting items are rejected.
const QUEUE_HARD_LIMIT: usize = 300;
/// Inputs that would bring the content of the waiting items past this many bytes (as JSON) are
/// rejected: every `update_queue` carries all of it to every subscriber.
pub const QUEUE_CONTENT_LIMIT: usize = 4 * 1024 * 1024;

/// What a turn needs to know about its agent.
#[derive(Debug, Clone)]
pub struct Agent {
    /// The model handle (`ollama/llama3`), if any.
    pub model: Option<String>,
    /// The system prompt.
    pub system: String,
}

impl Agent {
    /// Reads the fields a turn needs from a stored agent state.
    pub fn from_state(state: &JsonObject) -> Self {
        let text = |key: &str| state.get(key).and_then(|v| v.as_str()).map(str::to_owned);
        Self {
            model: text("model"),
            system: text("system").unwrap_or_default(),
        }
    }
}

/// A waiting input.
#[derive(Debug, Clone)]
struct Queued {
    item: QueueMessage,
    /// The session that sent it, while it is connected; restored items and those of a closed
    /// session belong to none.
    session: Option<SessionId>,
    options: TurnOptions,
    /// Size of its content as JSON (see [`QUEUE_CONTENT_LIMIT`]).
    content_bytes: usize,
}

impl Queued {
    fn new(item: QueueMessage, session: Option<SessionId>, options: TurnOptions) -> Self {
        let content_bytes = content_bytes(&item.content);
        Self {
            item,
            session,
            options,
            content_bytes,
        }
    }

    /// Its durable form.
    fn entry(&self) -> QueueEntry {
        QueueEntry {
            item: self.item.clone(),
            options: serde_json::to_string(&self.options).unwrap_or_default(),
        }
    }
}

fn content_bytes(content: &MessageContent) -> usize {
    serde_json::to_vec(content).map_or(0, |bytes| bytes.len())
}

/// The controller's answer to a `control_request`.
#[derive(Debug)]
pub(crate) enum ApprovalAnswer {
    /// Run the tool, with replacement arguments if given; `save` selects the "don't ask again"
    /// suggestion.
    Allow {
        updated_input: Option<JsonObject>,
        save: bool,
    },
    /// Don't run it; the text is the tool result.
    Deny(String),
}

/// The approval question the turn is waiting on (one at a time, docs/protocol.md §3.9).
#[derive(Debug)]
pub(crate) struct PendingApproval {
    pub(crate) request_id: String,
    pub(crate) request: CanUseToolRequest,
    pub(crate) answer: tokio::sync::oneshot::Sender<ApprovalAnswer>,
}

/// How a turn ended.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// The model finished.
    Completed(StopReason),
    /// The turn failed; the text is reported in `turn_finished.error` and a terminal
    /// `loop_error`.
    Failed(StopReason, String),
    /// `abort_message`, or its only watcher left.
    Cancelled,
}

/// What a turn is started with.
struct Batch {
    turn_id: String,
    origin: Option<SessionId>,
    from_queue: bool,
    content: Option<MessageContent>,
    client_ids: Vec<String>,
    options: TurnOptions,
    resume: Vec<ToolCall>,
}

impl Batch {
    /// What the store records when it starts.
    fn record(&self) -> TurnStart {
        TurnStart {
            turn_id: self.turn_id.clone(),
            client_ids: self.client_ids.clone(),
            user: self.content.clone().map(|content| HistoryMessage::User { content }),
        }
    }
}

/// How an input is taken in: a turn it starts, or items it queues (removing the oldest waiting
/// ones past the soft limit).
enum Admitted {
    Direct(Batch),
    Queued { items: Vec<Queued>, evicted: Vec<i64> },
}

/// The turn in progress.
#[derive(Debug)]
pub(crate) struct ActiveTurn {
    pub(crate) turn_id: String,
    /// The session that started it, if any (a turn of restored queue items has none).
    pub(crate) origin: Option<SessionId>,
    pub(crate) cancel: CancellationToken,
    pub(crate) run_id: Option<String>,
    /// Whether it is a dequeued batch (which ends with boundary snapshots).
    pub(crate) from_queue: bool,
}

impl PendingApproval {
    /// The `control_request` event asking this question.
    pub(crate) fn event(&self, scope: &RuntimeScope) -> RuntimeEvent {
        ControlRequest {
            request_id: self.request_id.clone(),
            request: self.request.clone(),
            agent_id: Some(scope.agent_id.clone()),
            conversation_id: Some(scope.conversation_id.clone()),
        }
        .into()
    }
}

/// Mutable state of a conversation.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) mode: DevicePermissionMode,
    pub(crate) cwd: String,
    cwd_revision: u64,
    pub(crate) loop_state: LoopState,
    queue: VecDeque<Queued>,
    next_queue_item: i64,
    pub(crate) turn: Option<ActiveTurn>,
    /// Shared with the model request of the running run; append with `Arc::make_mut`.
    pub(crate) history: Arc<Vec<HistoryMessage>>,
    /// The approval question being asked.
    pub(crate) pending: Option<PendingApproval>,
    /// Rules saved with "don't ask again".
    pub(crate) rules: Rules,
    /// Model-facing names of the tools the last turn offered; `None` before the first turn.
    pub(crate) loaded_tools: Option<Vec<String>>,
    /// Interactive tool calls left unanswered by a previous process, to ask again.
    recoverable: Vec<ToolCall>,
    /// Turns the previous process left running (ended with an error by the store), reported to
    /// the first session the scope is replayed to.
    interrupted: Vec<InterruptedTurn>,
    /// Recently seen `client_message_id`s and their inputs' states (the store knows them all).
    client_ids: HashMap<String, InputState>,
    client_id_order: VecDeque<String>,
}

impl State {
    /// Removes the waiting items with these numbers (their removal is stored already): their
    /// inputs read as cancelled, and the `removed` entries of the next `update_queue` say so.
    fn cancel(&mut self, item_nos: &[i64]) -> Vec<QueueRemoval> {
        let mut removed = Vec::new();
        self.queue.retain(|q| {
            let keep = !item_nos.contains(&item_no(&q.item.id));
            if !keep {
                removed.push(QueueRemoval {
                    client_message_id: q.item.client_message_id.clone(),
                    disposition: RemovalDisposition::Cancelled,
                });
            }
            keep
        });
        for entry in &removed {
            remember(self, entry.client_message_id.clone(), InputState::Cancelled);
        }
        removed
    }

    /// The queue items for `messages` (client id and content each) sent by `session`, if they
    /// fit the queue's limits (the rejection's error text otherwise).
    fn admit(
        &self,
        messages: Vec<(String, MessageContent)>,
        session: SessionId,
        options: TurnOptions,
    ) -> Result<Admitted, String> {
        if self.queue.len() + messages.len() > QUEUE_HARD_LIMIT {
            return Err(format!(
                "Input was rejected by the queue: {} items would be waiting, over the limit of {QUEUE_HARD_LIMIT}",
                self.queue.len() + messages.len()
            ));
        }
        let items: Vec<Queued> = (self.next_queue_item..)
            .zip(messages)
            .map(|(number, (client_message_id, content))| {
                let item = QueueMessage {
                    id: format!("q-{number}"),
                    client_message_id,
                    kind: QueueItemKind::Message,
                    source: QueueItemSource::User,
                    content,
                    enqueued_at: now_iso(),
                };
                Queued::new(item, Some(session), options.clone())
            })
            .collect();
        let bytes: usize = self.queue.iter().chain(&items).map(|q| q.content_bytes).sum();
        if bytes > QUEUE_CONTENT_LIMIT {
            return Err(format!(
                "Input was rejected by the queue: the waiting inputs would hold {bytes} bytes of content, \
                 over the limit of {QUEUE_CONTENT_LIMIT}"
            ));
        }
        // Past the soft limit, the oldest waiting messages make room.
        let excess = (self.queue.len() + items.len()).saturating_sub(QUEUE_SOFT_LIMIT);
        let evicted = self
            .queue
            .iter()
            .filter(|q| q.item.kind == QueueItemKind::Message)
            .take(excess)
            .map(|q| item_no(&q.item.id))
            .collect();
        Ok(Admitted::Queued { items, evicted })
    }
}

/// Orders a scope's frames and cancels a run's output atomically with an abort.
#[derive(Debug, Default)]
pub(crate) struct Emitter {
    run_cancelled: bool,
}

/// One conversation runtime.
pub struct Conversation {
    /// The scope.
    pub scope: RuntimeScope,
    /// The agent.
    pub agent: Agent,
    pub(crate) state: tokio::sync::Mutex<State>,
    emitter: Mutex<Emitter>,
    /// Consecutive eviction sweeps that found it idle and unwatched.
    idle_sweeps: AtomicU32,
    /// Set when it was dropped from memory; whoever still holds it must load it again.
    evicted: AtomicBool,
}

impl Conversation {
    /// A conversation runtime with its restored state (settings, history, waiting queue, turns
    /// cut short), and the interactive calls to ask again.
    pub fn new(
        scope: RuntimeScope,
        agent: Agent,
        restored: Restored,
        recoverable: Vec<ToolCall>,
        config: &Config,
    ) -> Self {
        let Restored {
            settings,
            history,
            queue,
            next_queue_item,
            interrupted,
        } = restored;
        let queue = queue
            .into_iter()
            .map(|entry| {
                let options = serde_json::from_str(&entry.options).unwrap_or_default();
                Queued::new(entry.item, None, options)
            })
            .collect();
        let mode = settings
            .mode
            .as_deref()
            .and_then(DevicePermissionMode::from_wire)
            .unwrap_or(config.default_mode);
        let state = State {
            mode,
            cwd: settings.cwd.unwrap_or_else(|| config.boot_cwd.clone()),
            cwd_revision: 0,
            loop_state: LoopState {
                status: LoopStatus::WaitingOnInput,
                active_run_ids: Vec::new(),
                client_message_ids_by_run_id: None,
                executing_tool_call_ids: Vec::new(),
            },
            queue,
            next_queue_item,
            turn: None,
            history: Arc::new(history),
            pending: None,
            rules: Rules::default(),
            loaded_tools: None,
            recoverable,
            interrupted,
            client_ids: HashMap::new(),
            client_id_order: VecDeque::new(),
        };
        Self {
            scope,
            agent,
            state: tokio::sync::Mutex::new(state),
            emitter: Mutex::default(),
            idle_sweeps: AtomicU32::new(0),
            evicted: AtomicBool::new(false),
        }
    }

    // ----- eviction --------------------------------------------------------------------------

    /// Counts one eviction sweep: `true` once `sweeps` consecutive sweeps found it `unwatched`
    /// and idle (no turn, approval or recovery), when it is marked evicted. A busy state
    /// (locked) counts as not idle. Its waiting queue items are in the store, and come back with it.
    pub(crate) fn sweep(&self, unwatched: bool, sweeps: u32) -> bool {
        let idle = unwatched
            && self.state.try_lock().is_ok_and(|state| {
                state.turn.is_none()
                    && state.pending.is_none()
                    && state.recoverable.is_empty()
                    && state.interrupted.is_empty()
            });
        if !idle {
            self.idle_sweeps.store(0, Ordering::Relaxed);
            return false;
        }
        if self.idle_sweeps.fetch_add(1, Ordering::Relaxed) + 1 < sweeps {
            return false;
        }
        self.evicted.store(true, Ordering::SeqCst);
        true
    }

    /// Whether it was dropped from memory (see [`Runtime::subscribed_conversation`]).
    pub(crate) fn is_evicted(&self) -> bool {
        self.evicted.load(Ordering::SeqCst)
    }

    // ----- emitting -------------------------------------------------------------------------

    /// Broadcasts events of this scope, in order.
    pub(crate) fn emit(&self, runtime: &Runtime, events: impl IntoIterator<Item = RuntimeEvent>) {
        let _order = lock(&self.emitter);
        for event in events {
            runtime.broadcast(&self.scope, &event);
        }
    }

    /// Broadcasts output of the current run, unless the run was cancelled.
    pub(crate) fn emit_run_output(&self, runtime: &Runtime, events: impl IntoIterator<Item = RuntimeEvent>) {
        let order = lock(&self.emitter);
        if order.run_cancelled {
            return;
        }
        for event in events {
            runtime.broadcast(&self.scope, &event);
        }
    }

    /// Sends a direct frame to one session, ordered with this scope's events.
    fn reply(&self, session: &Session, frame: impl Into<letta_app_server_protocol::ServerFrame>) {
        let _order = lock(&self.emitter);
        session.send(frame);
    }

    pub(crate) fn loop_event(state: &State) -> RuntimeEvent {
        UpdateLoopStatus {
            loop_status: state.loop_state.clone(),
        }
        .into()
    }

    pub(crate) fn device_event(state: &State) -> RuntimeEvent {
        UpdateDeviceStatus {
            device_status: Self::device_status(state),
        }
        .into()
    }

    fn device_status(state: &State) -> DeviceStatus {
        DeviceStatus {
            current_connection_id: Some("app-server".into()),
            connection_name: Some(hostname()),
            is_online: true,
            is_processing: state.turn.is_some() && state.loop_state.status != LoopStatus::WaitingOnInput,
            current_permission_mode: state.mode,
            current_working_directory: Some(state.cwd.clone()),
            cwd_revision: Some(state.cwd_revision),
            git_context: None,
            letta_code_version: Some(env!("CARGO_PKG_VERSION").into()),
            current_toolset: state.loaded_tools.as_ref().map(|_| ToolsetName::Default),
            current_toolset_preference: ToolsetPreference::Auto,
            current_loaded_tools: state.loaded_tools.clone().unwrap_or_default(),
            current_available_skills: Vec::new(),
            background_processes: Vec::new(),
            pending_control_requests: state
                .pending
                .iter()
                .map(|p| PendingControlRequest {
                    request_id: p.request_id.clone(),
                    request: p.request.clone(),
                })
                .collect(),
            experiments: Vec::new(),
            memory_directory: None,
            cwd_map: None,
            boot_working_directory: None,
            should_doctor: None,
            reflection_settings: None,
            supported_commands: Vec::new(),
            mod_commands: None,
        }
    }

    fn queue_event(state: &State, removed: Vec<QueueRemoval>) -> RuntimeEvent {
        UpdateQueue {
            queue: state.queue.iter().map(|q| q.item.clone()).collect(),
            removed,
        }
        .into()
    }

    fn subagent_event() -> RuntimeEvent {
        UpdateSubagentState { subagents: Vec::new() }.into()
    }

    /// A `loop_error` delta (non-terminal unless `terminal`).
    pub(crate) fn loop_error(
        message: String,
        stop_reason: StopReason,
        terminal: bool,
        run_id: Option<String>,
    ) -> RuntimeEvent {
        StreamDelta {
            delta: Delta::LoopError(LoopError {
                meta: DeltaMeta {
                    id: Some(new_id("lifecycle")),
                    date: Some(now_iso()),
                    run_id,
                    ..DeltaMeta::default()
                },
                message,
                stop_reason,
                is_terminal: terminal,
                api_error: None,
            }),
            subagent_id: None,
        }
        .into()
    }

    /// Sends a non-terminal `loop_error` to the scope (bad `input` payloads, failed commands).
    /// The message may quote client input, so it is cut as an `error` frame's would be.
    pub fn protocol_violation(&self, runtime: &Runtime, message: String) {
        let message = letta_app_server_protocol::cut(message, letta_app_server_protocol::MESSAGE_BYTES);
        self.emit(runtime, [Self::loop_error(message, StopReason::Error, false, None)]);
    }

    pub(crate) fn set_status(state: &mut State, status: LoopStatus) {
        if status == LoopStatus::WaitingOnInput {
            state.loop_state.active_run_ids.clear();
        }
        state.loop_state.status = status;
    }

    /// Records that `run_id` consumed these client ids (for `client_message_ids_by_run_id`).
    pub(crate) fn start_run(&self, state: &mut State, run_id: &str, client_ids: &[String]) {
        lock(&self.emitter).run_cancelled = false;
        state.loop_state.active_run_ids = vec![run_id.to_owned()];
        if !client_ids.is_empty() {
            let runs = state
                .loop_state
                .client_message_ids_by_run_id
                .get_or_insert_with(Default::default);
            runs.insert(run_id.to_owned(), client_ids.to_vec());
            let mut listed: usize = runs.values().map(Vec::len).sum();
            while runs.len() > 1 && (runs.len() > REMEMBERED_RUNS || listed > REMEMBERED_RUN_CLIENT_IDS) {
                if let Some((_, ids)) = runs.shift_remove_index(0) {
                    listed -= ids.len();
                }
            }
        }
        if let Some(turn) = state.turn.as_mut() {
            turn.run_id = Some(run_id.to_owned());
        }
    }

    // ----- replay ---------------------------------------------------------------------------

    /// Replays the scope's state to one session: device status (unless unchanged since the last
    /// replay to it and not forced), loop status, queue, subagents (docs/protocol.md §3.10).
    pub async fn replay(&self, session: &Session, force_device: bool) {
        let state = self.state.lock().await;
        let device = Self::device_event(&state);
        let device_json = serde_json::to_string(&device).unwrap_or_default();
        let changed = session.note_replayed_device(&self.scope, device_json);
        let _order = lock(&self.emitter);
        if let Some(pending) = &state.pending {
            session.send_event(&self.scope, &pending.event(&self.scope));
        }
        if changed || force_device {
            session.send_event(&self.scope, &device);
        }
        session.send_event(&self.scope, &Self::loop_event(&state));
        session.send_event(&self.scope, &Self::queue_event(&state, Vec::new()));
        session.send_event(&self.scope, &Self::subagent_event());
    }

    /// Tells the scope's subscribers how the turns a previous process left running ended, if
    /// no client was told yet: as any failed turn, with `turn_finished` (`stop_reason: error`)
    /// and a terminal `loop_error`. Called on `runtime_start` and `sync`, before a recovery turn
    /// can start.
    pub async fn report_interrupted(&self, runtime: &Runtime) {
        let mut state = self.state.lock().await;
        if state.interrupted.is_empty() {
            return;
        }
        let turns = std::mem::take(&mut state.interrupted);
        let events = turns.iter().flat_map(|turn| {
            let finished: RuntimeEvent = TurnFinished {
                turn_id: turn.turn_id.clone(),
                stop_reason: StopReason::Error,
                run_id: None,
                error: Some(INTERRUPTED_TURN_ERROR.into()),
            }
            .into();
            let error = Self::loop_error(INTERRUPTED_TURN_ERROR.into(), StopReason::Error, true, None);
            [finished, error]
        });
        self.emit(runtime, events);
        // Written in the background; until it is, a restart reports them again.
        let reported = turns.into_iter().map(|turn| turn.turn_id).collect();
        drop(runtime.store.turns_reported(&self.scope, reported));
    }

    /// `recover_approvals`: when the scope is idle, asks again the interactive tool calls a
    /// previous process left unanswered, in a turn of their own (docs/protocol.md §3.10).
    pub async fn recover_approvals(self: &Arc<Self>, runtime: &Arc<Runtime>, session: &Session) {
        let mut state = self.state.lock().await;
        if state.turn.is_some() || state.pending.is_some() || state.recoverable.is_empty() {
            return;
        }
        let batch = Batch {
            turn_id: new_id("turn"),
            origin: Some(session.id),
            from_queue: false,
            content: None,
            client_ids: Vec::new(),
            options: TurnOptions::default(),
            resume: std::mem::take(&mut state.recoverable),
        };
        if let Err(error) = runtime.store.start_turn(&self.scope, batch.record()).await {
            state.recoverable = batch.resume;
            self.protocol_violation(runtime, format!("Could not start the recovery turn: {error}"));
            return;
        }
        self.start_turn(runtime, &mut state, batch);
    }

    /// Sends the pending approval question, if any, to one session.
    pub async fn replay_pending_approval(&self, session: &Session) {
        let state = self.state.lock().await;
        if let Some(pending) = &state.pending {
            let _order = lock(&self.emitter);
            session.send_event(&self.scope, &pending.event(&self.scope));
        }
    }

    /// Handles `input` `approval_response`: the first answer to the pending question wins;
    /// anything else gets `accepted: false` (docs/protocol.md §3.3, §3.9).
    pub async fn answer_approval(
        &self,
        runtime: &Runtime,
        session: &Session,
        input: &Input,
        answer: &ApprovalResponse,
    ) {
        let mut state = self.state.lock().await;
        let pending = state.pending.take_if(|p| p.request_id == answer.request_id);
        let accepted = pending.is_some();
        if let Some(pending) = pending {
            self.emit(runtime, [Self::loop_event(&state), Self::device_event(&state)]);
            let reply = match (&answer.decision, &answer.error) {
                (
                    Some(ApprovalDecision::Allow {
                        updated_input,
                        selected_permission_suggestion_ids,
                        ..
                    }),
                    _,
                ) => ApprovalAnswer::Allow {
                    updated_input: updated_input.clone(),
                    save: selected_permission_suggestion_ids
                        .iter()
                        .flatten()
                        .any(|id| id == crate::permissions::SAVE_DEFAULT),
                },
                (Some(ApprovalDecision::Deny { message }), _) => ApprovalAnswer::Deny(message.clone()),
                (None, error) => ApprovalAnswer::Deny(error.clone().unwrap_or_default()),
            };
            let _ = pending.answer.send(reply);
        }
        let error = (!accepted).then(|| "Approval request is no longer pending".to_owned());
        if let Some(answer) = acknowledgement(input, None, error) {
            self.reply(session, answer);
        }
    }

    // ----- input ----------------------------------------------------------------------------

    /// Handles `input` `create_message`: start a turn when idle, else queue (docs/protocol.md §3.3).
    /// The input is acknowledged only once it is durable as work to do (see [`crate::store`]);
    /// a `client_message_id` seen before gets its input's current state and runs nothing.
    pub async fn submit(
        self: &Arc<Self>,
        runtime: &Arc<Runtime>,
        session: &Arc<Session>,
        input: &Input,
        payload: &CreateMessage,
    ) {
        let reply = |disposition: Option<Disposition>, error: Option<String>| {
            if let Some(answer) = acknowledgement(input, disposition, error) {
                self.reply(session, answer);
            }
        };
        let client_ids: Vec<String> = payload
            .messages
            .iter()
            .filter_map(|m| m.client_message_id.clone())
            .collect();
        let client_id = client_ids.first().cloned().unwrap_or_else(|| new_id("cm-submit"));
        let mut state = self.state.lock().await;
        if let Some(known) = state.client_ids.get(&client_id).copied() {
            let (disposition, error) = retry_answer(known);
            return reply(disposition, error);
        }
        if runtime.is_stopping() {
            // Real Letta's answer for an input to a runtime that is going away.
            return reply(None, Some("Runtime is no longer active".into()));
        }
        let content = merge_contents(payload.messages.iter().map(|m| &m.content));
        let options = TurnOptions::from(payload);
        let admitted = if state.turn.is_none() && state.queue.is_empty() {
            Admitted::Direct(Batch {
                turn_id: new_id("turn"),
                origin: Some(session.id),
                from_queue: false,
                content: Some(content),
                client_ids: if client_ids.is_empty() {
                    vec![client_id.clone()]
                } else {
                    client_ids
                },
                options,
                resume: Vec::new(),
            })
        } else {
            // Several messages that each carry an id wait as separate items.
            let messages: Vec<(String, MessageContent)> =
                if payload.messages.len() == 1 || client_ids.len() != payload.messages.len() {
                    vec![(client_id.clone(), content)]
                } else {
                    let contents = payload.messages.iter().map(|m| m.content.clone());
                    client_ids.into_iter().zip(contents).collect()
                };
            match state.admit(messages, session.id, options) {
                Ok(admitted) => admitted,
                Err(error) => return reply(None, Some(error)),
            }
        };
        let admission = match &admitted {
            Admitted::Direct(batch) => Admission::Started(batch.record()),
            Admitted::Queued { items, evicted } => Admission::Queued {
                entries: items.iter().map(Queued::entry).collect(),
                evicted: evicted.clone(),
            },
        };
        let payload_json = serde_json::to_string(payload).unwrap_or_default();
        let stored = runtime
            .store
            .accept_input(&self.scope, input.request_id.clone(), payload_json, admission)
            .await;
        match stored {
            Ok(None) => {}
            Ok(Some(known)) => {
                remember(&mut state, client_id, known);
                let (disposition, error) = retry_answer(known);
                return reply(disposition, error);
            }
            Err(error) => return reply(None, Some(format!("Input could not be stored: {error}"))),
        }
        match admitted {
            Admitted::Direct(batch) => {
                remember(&mut state, client_id, InputState::Started);
                reply(Some(Disposition::Started), None);
                self.start_turn(runtime, &mut state, batch);
            }
            Admitted::Queued { items, evicted } => {
                for item in &items {
                    remember(&mut state, item.item.client_message_id.clone(), InputState::Queued);
                }
                reply(Some(Disposition::Queued), None);
                let removed = state.cancel(&evicted);
                state.next_queue_item += items.len() as i64;
                state.queue.extend(items);
                self.emit(runtime, [Self::queue_event(&state, removed)]);
            }
        }
    }

    /// Starts a turn whose input is already stored (the caller holds the state lock).
    fn start_turn(self: &Arc<Self>, runtime: &Arc<Runtime>, state: &mut State, batch: Batch) {
        let cancel = CancellationToken::new();
        state.turn = Some(ActiveTurn {
            turn_id: batch.turn_id,
            origin: batch.origin,
            cancel: cancel.clone(),
            run_id: None,
            from_queue: batch.from_queue,
        });
        if let Some(content) = &batch.content {
            Arc::make_mut(&mut state.history).push(HistoryMessage::User {
                content: content.clone(),
            });
        }
        Self::set_status(state, LoopStatus::SendingApiRequest);
        self.emit(runtime, [Self::loop_event(state), Self::device_event(state)]);
        let turn = turn::Turn {
            resume: batch.resume,
            client_ids: batch.client_ids,
            options: batch.options,
            origin: batch.origin,
            cancel,
        };
        tokio::spawn(turn::run(runtime.clone(), self.clone(), turn));
    }

    /// Ends the turn: records how it ended, then the final statuses, `turn_finished`, then the
    /// next queued batch (while someone watches) or the turn-end boundary snapshots
    /// (docs/protocol.md §3.6, §5 (e), (f), (i)).
    pub(crate) async fn finish_turn(self: &Arc<Self>, runtime: &Arc<Runtime>, state: &mut State, outcome: Outcome) {
        let Some(turn) = state.turn.take() else { return };
        Self::set_status(state, LoopStatus::WaitingOnInput);
        let (stop_reason, error) = match outcome {
            Outcome::Completed(stop_reason) => (stop_reason, None),
            Outcome::Failed(stop_reason, error) => (stop_reason, Some(error)),
            Outcome::Cancelled => (StopReason::Cancelled, None),
        };
        let recorded = runtime
            .store
            .finish_turn(&self.scope, stop_reason.to_string(), error.clone())
            .await;
        if let Err(error) = recorded {
            self.protocol_violation(runtime, format!("Could not save the end of the turn: {error}"));
        }
        let finished: RuntimeEvent = TurnFinished {
            turn_id: turn.turn_id,
            stop_reason: stop_reason.clone(),
            run_id: turn.run_id.clone(),
            error: error.clone(),
        }
        .into();
        let device = Self::device_event(state);
        // An abort already sent the idle statuses; a cancelled turn only reports its end.
        let mut events = if stop_reason == StopReason::Cancelled {
            vec![finished, device]
        } else {
            vec![Self::loop_event(state), device, finished]
        };
        if let Some(error) = error {
            events.push(Self::loop_error(error, stop_reason, true, turn.run_id));
        }
        self.emit(runtime, events);
        if !self.start_next_batch(runtime, state).await && turn.from_queue {
            self.emit(runtime, [Self::queue_event(state, Vec::new()), Self::loop_event(state)]);
        }
    }

    /// Starts the waiting queue items, if the conversation is idle and someone watches it: a
    /// queue whose sessions all left waits (durably) for the next subscriber, as on Letta 0.34.
    pub async fn resume_queue(self: &Arc<Self>, runtime: &Arc<Runtime>) {
        let mut state = self.state.lock().await;
        if state.turn.is_none() && state.pending.is_none() {
            self.start_next_batch(runtime, &mut state).await;
        }
    }

    /// Dequeues the leading coalescable items as one turn; `false` if there are none, or nobody
    /// watches the scope, or the server is stopping (the items wait).
    async fn start_next_batch(self: &Arc<Self>, runtime: &Arc<Runtime>, state: &mut State) -> bool {
        let Some(first) = state.queue.front() else {
            return false;
        };
        if !runtime.has_subscribers(&self.scope) || runtime.is_stopping() {
            return false;
        }
        let (origin, image_failure_mode) = (first.session, first.options.image_failure_mode);
        let count = state
            .queue
            .iter()
            .take_while(|q| q.session == origin && q.options.image_failure_mode == image_failure_mode)
            .count();
        let batch: Vec<&Queued> = state.queue.iter().take(count).collect();
        let content = merge_contents(batch.iter().map(|q| &q.item.content));
        let client_ids: Vec<String> = batch.iter().map(|q| q.item.client_message_id.clone()).collect();
        let item_nos: Vec<i64> = batch.iter().map(|q| item_no(&q.item.id)).collect();
        let batch = Batch {
            turn_id: new_id("turn"),
            origin,
            from_queue: true,
            content: Some(content.clone()),
            client_ids: client_ids.clone(),
            options: batch[0].options.clone(),
            resume: Vec::new(),
        };
        if let Err(error) = runtime.store.start_batch(&self.scope, item_nos, batch.record()).await {
            self.protocol_violation(runtime, format!("Could not start the queued turn: {error}"));
            return false;
        }
        state.queue.drain(..count);
        for id in &client_ids {
            remember(state, id.clone(), InputState::Started);
        }
        let echo: RuntimeEvent = StreamDelta {
            delta: Delta::UserMessage(UserMessage {
                meta: DeltaMeta {
                    kind: Some(letta_app_server_protocol::DeltaMarker::Message),
                    id: Some(new_id("user-msg")),
                    date: Some(now_iso()),
                    otid: client_ids.first().cloned(),
                    ..DeltaMeta::default()
                },
                content,
                created_by_id: None,
            }),
            subagent_id: None,
        }
        .into();
        Self::set_status(state, LoopStatus::WaitingOnInput);
        self.emit(
            runtime,
            [echo, Self::queue_event(state, Vec::new()), Self::loop_event(state)],
        );
        self.start_turn(runtime, state, batch);
        let removed = client_ids
            .into_iter()
            .map(|client_message_id| QueueRemoval {
                client_message_id,
                disposition: RemovalDisposition::Dequeued,
            })
            .collect();
        self.emit(runtime, [Self::queue_event(state, removed)]);
        true
    }

    // ----- abort, queue edits, device state, disconnects -------------------------------------

    /// Whether a turn is running (or still unwinding).
    pub async fn has_turn(&self) -> bool {
        self.state.lock().await.turn.is_some()
    }

    /// Handles `abort_message` (docs/protocol.md §3.12, §5 (f)).
    pub async fn abort(&self, runtime: &Runtime, session: Option<&Session>, request_id: Option<String>) {
        let mut state = self.state.lock().await;
        let aborted = self.interrupt(runtime, &mut state);
        if let (Some(session), Some(request_id)) = (session, request_id) {
            self.reply(
                session,
                AbortMessageResponse {
                    request_id,
                    runtime: self.scope.clone(),
                    aborted,
                    success: true,
                    error: None,
                },
            );
        }
    }

    /// Cancels the active turn's current run and tells the scope; `false` if nothing ran.
    fn interrupt(&self, runtime: &Runtime, state: &mut State) -> bool {
        let Some(turn) = state.turn.as_ref() else { return false };
        if turn.cancel.is_cancelled() {
            return false;
        }
        let run_id = turn.run_id.clone();
        turn.cancel.cancel();
        state.pending = None;
        Self::set_status(state, LoopStatus::WaitingOnInput);
        let status: RuntimeEvent = StreamDelta {
            delta: Delta::Status(Status {
                meta: DeltaMeta {
                    id: Some(new_id("lifecycle")),
                    date: Some(now_iso()),
                    run_id,
                    ..DeltaMeta::default()
                },
                message: "Interrupted".into(),
                level: StatusLevel::Warning,
            }),
            subagent_id: None,
        }
        .into();
        let events = [Self::loop_event(state), Self::device_event(state), status];
        let mut order = lock(&self.emitter);
        order.run_cancelled = true;
        for event in events {
            runtime.broadcast(&self.scope, &event);
        }
        true
    }

    /// Handles `remove_queue_item`: the response, then an authoritative snapshot.
    pub async fn remove_queue_item(&self, runtime: &Runtime, session: &Session, command: &RemoveQueueItem) {
        let mut state = self.state.lock().await;
        let mut removed = Vec::new();
        if state.queue.iter().any(|q| q.item.id == command.item_id) {
            let item_nos = vec![item_no(&command.item_id)];
            match runtime.store.cancel_queued(&self.scope, item_nos.clone()).await {
                Ok(()) => removed = state.cancel(&item_nos),
                Err(error) => self.protocol_violation(runtime, format!("Could not remove the queue item: {error}")),
            }
        }
        self.reply(
            session,
            RemoveQueueItemResponse {
                request_id: command.request_id.clone(),
                success: !removed.is_empty(),
                item_id: command.item_id.clone(),
            },
        );
        self.emit(runtime, [Self::queue_event(&state, removed)]);
    }

    /// Handles `change_device_state` (docs/protocol.md §3.13).
    pub async fn change_device_state(&self, runtime: &Runtime, command: &ChangeDeviceState) {
        let mut state = self.state.lock().await;
        let idle = state.turn.is_none();
        if idle {
            Self::set_status(&mut state, LoopStatus::ExecutingCommand);
            self.emit(runtime, [Self::loop_event(&state)]);
        }
        let payload = &command.payload;
        if let Some(mode) = payload.mode {
            state.mode = mode.resolve();
        }
        if let Some(cwd) = &payload.cwd {
            let target = Path::new(&state.cwd).join(cwd);
            if target.is_dir() {
                state.cwd = target.canonicalize().unwrap_or(target).display().to_string();
            }
            state.cwd_revision += 1;
        }
        if payload.mode.is_some() || payload.cwd.is_some() {
            self.save_settings(runtime, &state).await;
        }
        let mut events = Vec::new();
        if payload.mode.is_some() {
            events.push(Self::loop_event(&state));
        }
        events.push(Self::device_event(&state));
        if idle {
            Self::set_status(&mut state, LoopStatus::WaitingOnInput);
            events.push(Self::loop_event(&state));
        }
        self.emit(runtime, events);
    }

    /// Moves the scope to a new working directory (`SetWorkingDirectory`), persisted and shown
    /// in the device status.
    pub(crate) async fn set_cwd(&self, runtime: &Runtime, cwd: String) {
        let mut state = self.state.lock().await;
        state.cwd = cwd;
        state.cwd_revision += 1;
        self.save_settings(runtime, &state).await;
        self.emit(runtime, [Self::device_event(&state)]);
    }

    /// Applies `runtime_start`'s `mode` and `cwd` (persisted).
    pub async fn apply_start_settings(
        &self,
        runtime: &Runtime,
        mode: Option<DevicePermissionMode>,
        cwd: Option<Option<String>>,
    ) {
        if mode.is_none() && cwd.is_none() {
            return;
        }
        let mut state = self.state.lock().await;
        if let Some(mode) = mode {
            state.mode = mode;
        }
        match cwd {
            Some(Some(cwd)) if Path::new(&cwd).is_dir() => state.cwd = cwd,
            Some(None) => state.cwd = runtime.config.boot_cwd.clone(),
            _ => {}
        }
        self.save_settings(runtime, &state).await;
    }

    /// Persists the scope's mode and working directory.
    async fn save_settings(&self, runtime: &Runtime, state: &State) {
        let settings = ScopeSettings {
            mode: Some(state.mode.as_str().to_owned()),
            cwd: Some(state.cwd.clone()),
        };
        if let Err(error) = runtime.store.save_scope_settings(&self.scope, settings).await {
            self.protocol_violation(runtime, format!("Could not save the runtime settings: {error}"));
        }
    }

    /// A session closed: its queued inputs stay (they no longer belong to it), and the turn it
    /// started is cancelled if nobody else watches the scope (docs/protocol.md §5 (g), §7 item 12). An
    /// abandoned session (`abort_its_turns`, a replaced control session) takes its queued inputs
    /// and its turn with it.
    pub async fn session_closed(self: &Arc<Self>, runtime: &Arc<Runtime>, session: SessionId, abort_its_turns: bool) {
        let mut state = self.state.lock().await;
        let theirs = |q: &Queued| q.session == Some(session);
        if abort_its_turns {
            // A replaced control session takes its waiting inputs with it (docs/protocol.md §1.10).
            let item_nos: Vec<i64> = state
                .queue
                .iter()
                .filter(|q| theirs(q))
                .map(|q| item_no(&q.item.id))
                .collect();
            if !item_nos.is_empty() {
                if let Err(error) = runtime.store.cancel_queued(&self.scope, item_nos.clone()).await {
                    self.protocol_violation(runtime, format!("Could not remove the queue items: {error}"));
                    return;
                }
                let removed = state.cancel(&item_nos);
                self.emit(runtime, [Self::queue_event(&state, removed)]);
            }
        } else {
            // Its waiting inputs stay: they were acknowledged (as on Letta 0.34).
            for item in state.queue.iter_mut().filter(|q| q.session == Some(session)) {
                item.session = None;
            }
        }
        // The turn it started ends when nobody else watches it (or it was replaced); otherwise it
        // belongs to nobody from now on. A turn that belongs to nobody ends when nobody watches it.
        let watched = runtime.has_subscribers(&self.scope);
        let abandoned = match state.turn.as_mut() {
            Some(turn) if turn.origin == Some(session) => {
                let abandoned = abort_its_turns || !watched;
                turn.origin = None;
                abandoned
            }
            Some(turn) => turn.origin.is_none() && !watched,
            None => false,
        };
        if abandoned {
            self.interrupt(runtime, &mut state);
        }
    }
}

/// The `input_accepted` answering `input`, when it carried a `request_id`: accepted unless there
/// is an `error`.
pub(crate) fn acknowledgement(
    input: &Input,
    disposition: Option<Disposition>,
    error: Option<String>,
) -> Option<InputAccepted> {
    Some(InputAccepted {
        request_id: input.request_id.clone()?,
        runtime: input.runtime.clone(),
        accepted: error.is_none(),
        disposition,
        error,
    })
}

/// The answer to an input whose `client_message_id` is already known: its current state.
fn retry_answer(known: InputState) -> (Option<Disposition>, Option<String>) {
    match known {
        InputState::Queued => (Some(Disposition::Queued), None),
        InputState::Started => (Some(Disposition::Started), None),
        InputState::Cancelled => (None, Some("Input was removed from the queue before it ran".into())),
    }
}

/// Records the state of an input in the conversation's memory of recent ids.
fn remember(state: &mut State, client_id: String, known: InputState) {
    if state.client_ids.insert(client_id.clone(), known).is_none() {
        state.client_id_order.push_back(client_id);
        while state.client_id_order.len() > REMEMBERED_CLIENT_IDS {
            if let Some(old) = state.client_id_order.pop_front() {
                state.client_ids.remove(&old);
            }
        }
    }
}

/// Joins message contents into one: a single content stays as it is; several become one part
/// array with `"\n"` text separators (docs/protocol.md §3.4).
pub(crate) fn merge_contents<'a>(contents: impl Iterator<Item = &'a MessageContent>) -> MessageContent {
    let contents: Vec<&MessageContent> = contents.collect();
    if let [single] = contents.as_slice() {
        return (*single).clone();
    }
    let mut parts = Vec::new();
    for (index, content) in contents.into_iter().enumerate() {
        if index > 0 {
            parts.push(ContentPart::text("\n"));
        }
        match content {
            MessageContent::Text(text) => parts.push(ContentPart::text(text.clone())),
            MessageContent::Parts(content_parts) => parts.extend(content_parts.iter().cloned()),
        }
    }
    MessageContent::Parts(parts)
}

/// The host name, read once.
fn hostname() -> String {
    static HOSTNAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HOSTNAME
        .get_or_init(|| {
            std::fs::read_to_string("/etc/hostname")
                .map(|h| h.trim().to_owned())
                .unwrap_or_else(|_| "localhost".into())
        })
        .clone()
}

/// The tool calls of the newest assistant message that have no result in `history`.
pub(crate) fn unanswered(history: &[HistoryMessage]) -> Vec<ToolCall> {
    let answered: Vec<&str> = history
        .iter()
        .rev()
        .map_while(|message| match message {
            HistoryMessage::ToolResult { tool_call_id, .. } => Some(tool_call_id.as_str()),
            _ => None,
        })
        .collect();
    match history
        .iter()
        .rev()
        .find(|m| !matches!(m, HistoryMessage::ToolResult { .. }))
    {
        Some(HistoryMessage::Assistant { tool_calls, .. }) => tool_calls
            .iter()
            .filter(|call| !answered.contains(&call.id.as_str()))
            .cloned()
            .collect(),
        _ => Vec::new(),
    }
}
