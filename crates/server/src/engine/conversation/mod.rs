//! One conversation runtime: its queue, its turn, its loop and device state, and the frames
//! each change produces (docs/protocol.md §3.3–§3.13, frame order of §5).
//!
//! State changes happen under the async `state` lock. Every frame of the scope is emitted under
//! the sync `emitter` lock, which also records whether the current run was cancelled, so that no
//! output of an aborted run is sent after the abort's frames.
//!
//! * [`state`] — the mutable state and the queue's limits.
//! * [`events`] — the status snapshots and lifecycle deltas.
//! * `input` — `create_message` and `approval_response`, a turn's start and end, the queue.
//! * `control` — abort, queue edits, device state, settings, sessions leaving.
//! * `model` — the model and toolset commands' effects: the toolset preference, status notices.
//! * `replay` — bringing a client up to date, recovering a previous process's turns.
//! * `remind` — the reminders a turn's input starts with (the agent's secret names).
//! * `host` — the [`TurnHost`](crate::engine::turn::TurnHost) a running turn talks to.

mod compact;
mod control;
mod events;
mod host;
mod input;
mod model;
mod remind;
mod replay;
mod slash;
mod state;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use letta_app_server_protocol::{
    DevicePermissionMode, JsonObject, LoopState, LoopStatus, RuntimeEvent, RuntimeScope, StopReason, ToolsetPreference,
};

use crate::engine::clients::Peer;
use crate::engine::context::Context;
use crate::engine::memfs;
use crate::history::{HistoryMessage, ToolCall};
use crate::permissions::Rules;
use crate::store::Restored;
use crate::sync::lock;
pub use compact::Mode as CompactionMode;
pub(crate) use input::{CLIENT_PREFERENCES_VIOLATION, acknowledgement};
pub use slash::SUPPORTED_COMMANDS;
use state::{Emitter, Queued, REMEMBERED_RUN_CLIENT_IDS, REMEMBERED_RUNS, State};

/// What a turn needs to know about its agent, read from the store when the turn starts, so that
/// a turn always runs with the agent's current settings (an agent-free conversation's own `model`
/// and `system`; a conversation's own `model`, when set, overrides its agent's).
#[derive(Debug, Clone)]
pub struct Agent {
    /// The model handle (`ollama/llama3`), if any.
    pub model: Option<String>,
    /// The system prompt, with the agent's committed memory when it has a memory repository.
    pub system: String,
    /// The reasoning effort in the settings of whichever carries the model (`update_model`'s).
    pub reasoning_effort: Option<String>,
}

impl Agent {
    /// The agent a turn of `scope` runs as, or why there is none (it was deleted).
    pub async fn resolve(context: &Context, scope: &RuntimeScope) -> Result<Self, String> {
        let text = |state: &JsonObject, key: &str| state.get(key).and_then(|v| v.as_str()).map(str::to_owned);
        let conversation = match scope.conversation_id.as_str() {
            "default" => None,
            id => Some(
                (context.store.conversation(id.to_owned()).await)
                    .map_err(|error| error.to_string())?
                    .ok_or_else(|| format!("Conversation {id} not found"))?,
            ),
        };
        let agent = match &scope.agent_id {
            Some(id) => (context.store.agent(id.clone()).await)
                .map_err(|error| error.to_string())?
                .ok_or_else(|| format!("Agent {id} not found"))?,
            None => conversation
                .clone()
                .ok_or("an agent-free conversation needs a conversation id")?,
        };
        // The conversation's own model, with its settings, overrides its agent's.
        let carrier = conversation
            .as_ref()
            .filter(|c| text(c, "model").is_some())
            .unwrap_or(&agent);
        let settings = carrier.get("model_settings").and_then(|v| v.as_object());
        Ok(Self {
            model: text(carrier, "model"),
            system: memfs::system_prompt(
                context,
                scope.agent_id.as_deref(),
                text(&agent, "system").unwrap_or_default(),
            )
            .await,
            reasoning_effort: settings.and_then(|s| text(s, "reasoning_effort")),
        })
    }
}

/// One conversation engine.
pub struct Conversation {
    /// The scope.
    pub scope: RuntimeScope,
    state: tokio::sync::Mutex<State>,
    emitter: Mutex<Emitter>,
    /// Consecutive eviction sweeps that found it idle and unwatched.
    idle_sweeps: AtomicU32,
    /// Set when it was dropped from memory; whoever still holds it must load it again.
    evicted: AtomicBool,
    /// Set when its agent is being deleted: it accepts and starts nothing any more.
    deleted: AtomicBool,
}

impl Conversation {
    /// A conversation runtime with its restored state (settings, history, waiting queue, turns
    /// cut short), and the interactive calls to ask again.
    pub fn new(scope: RuntimeScope, restored: Restored, recoverable: Vec<ToolCall>, context: &Context) -> Self {
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
            .unwrap_or(context.config.default_mode);
        let state = State {
            mode,
            own_cwd: settings.cwd,
            settings: context.settings.clone(),
            subagents: context.subagents.clone(),
            shells: context.shells.clone(),
            preferences: (settings.preferences.as_deref())
                .and_then(|json| serde_json::from_str(json).ok())
                .unwrap_or_default(),
            loop_state: LoopState {
                status: LoopStatus::WaitingOnInput,
                active_run_ids: Vec::new(),
                client_message_ids_by_run_id: None,
                executing_tool_call_ids: Vec::new(),
            },
            queue,
            next_queue_item,
            turn: None,
            compacting: false,
            history: Arc::new(history),
            pending: None,
            rules: Rules::default(),
            loaded_tools: None,
            toolset: None,
            toolset_preference: ToolsetPreference::Auto,
            recoverable,
            interrupted,
            secret_names: None,
            client_ids: HashMap::new(),
            client_id_order: VecDeque::new(),
        };
        Self {
            scope,
            state: tokio::sync::Mutex::new(state),
            emitter: Mutex::default(),
            idle_sweeps: AtomicU32::new(0),
            evicted: AtomicBool::new(false),
            deleted: AtomicBool::new(false),
        }
    }

    /// The runtime, with the toolset preference its scope stored (`update_toolset`'s).
    pub fn with_toolset_preference(mut self, preference: ToolsetPreference) -> Self {
        self.state.get_mut().toolset_preference = preference;
        self
    }

    // ----- eviction --------------------------------------------------------------------------

    /// Counts one eviction sweep: `true` once `sweeps` consecutive sweeps found it `unwatched`
    /// and idle (no turn, approval, recovery or parked queue item, whose pause lives only in
    /// memory), when it is marked evicted. A busy state (locked) counts as not idle. Its waiting
    /// queue items are in the store, and come back with it.
    pub(crate) fn sweep(&self, unwatched: bool, sweeps: u32) -> bool {
        let idle = unwatched
            && self.state.try_lock().is_ok_and(|state| {
                !state.compacting
                    && state.turn.is_none()
                    && state.pending.is_none()
                    && state.recoverable.is_empty()
                    && state.interrupted.is_empty()
                    && !state.has_paused()
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

    /// Whether it was dropped from memory (see `Sessions::subscribed_conversation`).
    pub(crate) fn is_evicted(&self) -> bool {
        self.evicted.load(Ordering::SeqCst)
    }

    /// Whether its agent is being deleted (see `Conversation::forget`).
    fn is_deleted(&self) -> bool {
        self.deleted.load(Ordering::SeqCst)
    }

    // ----- emitting -------------------------------------------------------------------------

    /// Broadcasts events of this scope, in order.
    pub(crate) fn emit(&self, engine: &Context, events: impl IntoIterator<Item = RuntimeEvent>) {
        let _order = lock(&self.emitter);
        for event in events {
            engine.audience.broadcast(&self.scope, &event);
        }
    }

    /// Broadcasts output of the current run, unless the run was cancelled; whether it did.
    pub(crate) fn emit_run_output<'e>(
        &self,
        engine: &Context,
        events: impl IntoIterator<Item = &'e RuntimeEvent>,
    ) -> bool {
        let order = lock(&self.emitter);
        if order.run_cancelled {
            return false;
        }
        for event in events {
            engine.audience.broadcast(&self.scope, event);
        }
        true
    }

    /// Sends a direct frame to one session, ordered with this scope's events.
    fn reply(&self, peer: &dyn Peer, frame: impl Into<letta_app_server_protocol::ServerFrame>) {
        let _order = lock(&self.emitter);
        peer.send_frame(frame.into());
    }

    /// Sends a non-terminal `loop_error` to the scope (bad `input` payloads, failed commands).
    /// The message may quote client input, so it is cut as an `error` frame's would be.
    pub fn protocol_violation(&self, engine: &Context, message: String) {
        let message = letta_app_server_protocol::cut(message, letta_app_server_protocol::MESSAGE_BYTES);
        self.emit(engine, [Self::loop_error(message, StopReason::Error, false, None)]);
    }

    fn set_status(state: &mut State, status: LoopStatus) {
        if status == LoopStatus::WaitingOnInput {
            state.loop_state.active_run_ids.clear();
        }
        state.loop_state.status = status;
    }

    /// Records that `run_id` consumed these client ids (for `client_message_ids_by_run_id`).
    fn start_run(&self, state: &mut State, run_id: &str, client_ids: &[String]) {
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
