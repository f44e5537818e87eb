//! Commands that change a conversation without an input: abort, queue edits, device state,
//! settings, and sessions leaving (docs/protocol.md §3.12, §3.13, §5 (f), (g)).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use letta_app_server_protocol::{
    AbortMessageResponse, ChangeDeviceState, DevicePermissionMode, LoopStatus, RemoveQueueItem,
    RemoveQueueItemResponse, ResumeQueueResponse, StatusLevel,
};

use super::Conversation;
use super::state::{Queued, State};
use crate::engine::clients::{Peer, SessionId};
use crate::engine::context::Context;
use crate::store::{ScopeSettings, item_no};
use crate::sync::lock;

impl Conversation {
    /// How many items wait in its queue.
    pub(crate) async fn waiting(&self) -> usize {
        self.state.lock().await.queue.len()
    }

    /// Whether a turn is running (or still unwinding).
    pub async fn has_turn(&self) -> bool {
        self.state.lock().await.turn.is_some()
    }

    /// Handles `abort_message` (docs/protocol.md §3.12, §5 (f)); without a `peer`, the server
    /// stopping. An `abort_message` that cancelled something parks the waiting user messages,
    /// as Letta 0.34 does, until `resume_queue` or the next `input` releases them.
    pub async fn abort(&self, engine: &Context, peer: Option<&dyn Peer>, request_id: Option<String>) {
        let mut state = self.state.lock().await;
        let aborted = self.interrupt(engine, &mut state);
        if aborted && peer.is_some() && state.pause_user_messages() {
            self.emit(engine, [Self::queue_event(&state, Vec::new())]);
        }
        if let (Some(peer), Some(request_id)) = (peer, request_id) {
            self.reply(
                peer,
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

    /// Drops it from use because its agent is being deleted: it is marked deleted (nothing new
    /// is accepted or started) and evicted (whoever holds it must load it again, which fails),
    /// its running turn is aborted as by `abort_message` (its pending approval withdrawn), and
    /// its waiting queue items are cancelled (an `update_queue` lists them as removed). Their
    /// rows go with the agent's.
    pub(crate) async fn forget(&self, engine: &Context) {
        let mut state = self.state.lock().await;
        self.deleted.store(true, Ordering::SeqCst);
        self.evicted.store(true, Ordering::SeqCst);
        state.shells.stop_all(|scope| *scope == self.scope);
        self.interrupt(engine, &mut state);
        let waiting: Vec<i64> = state.queue.iter().map(|q| item_no(&q.item.id)).collect();
        if !waiting.is_empty() {
            let removed = state.cancel(&waiting);
            self.emit(engine, [Self::queue_event(&state, removed)]);
        }
    }

    /// Handles `resume_queue` (Letta 0.34): releases the parked queue items, answers (when the
    /// command carried a `request_id`) with how many, then shows the queue if that changed it.
    /// The caller then starts the queue, as after every command.
    pub async fn release_paused(&self, engine: &Context, peer: &dyn Peer, request_id: Option<String>) {
        let mut state = self.state.lock().await;
        let resumed = state.release_paused();
        if let Some(request_id) = request_id {
            self.reply(
                peer,
                ResumeQueueResponse {
                    request_id,
                    runtime: self.scope.clone(),
                    resumed: resumed as u64,
                    success: true,
                    error: None,
                },
            );
        }
        if resumed > 0 {
            self.emit(engine, [Self::queue_event(&state, Vec::new())]);
        }
    }

    /// Cancels the active turn's current run and tells the scope; `false` if nothing ran.
    fn interrupt(&self, engine: &Context, state: &mut State) -> bool {
        let Some(turn) = state.turn.as_ref() else { return false };
        if turn.cancel.is_cancelled() {
            return false;
        }
        let run_id = turn.run_id.clone();
        turn.cancel.cancel();
        state.pending = None;
        Self::set_status(state, LoopStatus::WaitingOnInput);
        let status = Self::status_event("Interrupted".into(), StatusLevel::Warning, run_id);
        let events = [Self::loop_event(state), self.device_event(state), status];
        let mut order = lock(&self.emitter);
        order.run_cancelled = true;
        for event in events {
            engine.audience.broadcast(&self.scope, &event);
        }
        true
    }

    /// Withdraws the input `client_id` (a stopped subagent's): its running turn is aborted as by
    /// `abort_message` (`true`: the turn's end follows), or its waiting queue item removed.
    pub(crate) async fn withdraw(&self, engine: &Context, client_id: &str) -> bool {
        let mut state = self.state.lock().await;
        if (state.turn.as_ref()).is_some_and(|turn| turn.client_ids.iter().any(|id| id == client_id)) {
            return self.interrupt(engine, &mut state);
        }
        let waiting: Vec<i64> = (state.queue.iter())
            .filter(|q| q.item.client_message_id == client_id)
            .map(|q| item_no(&q.item.id))
            .collect();
        if !waiting.is_empty() && engine.store.cancel_queued(&self.scope, waiting.clone()).await.is_ok() {
            let removed = state.cancel(&waiting);
            self.emit(engine, [Self::queue_event(&state, removed)]);
        }
        false
    }

    /// Handles `remove_queue_item`: the response, then an authoritative snapshot.
    pub async fn remove_queue_item(&self, engine: &Context, peer: &dyn Peer, command: &RemoveQueueItem) {
        let mut state = self.state.lock().await;
        let mut removed = Vec::new();
        if state.queue.iter().any(|q| q.item.id == command.item_id) {
            let item_nos = vec![item_no(&command.item_id)];
            match engine.store.cancel_queued(&self.scope, item_nos.clone()).await {
                Ok(()) => removed = state.cancel(&item_nos),
                Err(error) => self.protocol_violation(engine, format!("Could not remove the queue item: {error}")),
            }
        }
        self.reply(
            peer,
            RemoveQueueItemResponse {
                request_id: command.request_id.clone(),
                success: !removed.is_empty(),
                item_id: command.item_id.clone(),
            },
        );
        self.emit(engine, [Self::queue_event(&state, removed)]);
    }

    /// Handles `change_device_state` (docs/protocol.md §3.13).
    pub async fn change_device_state(&self, engine: &Context, command: &ChangeDeviceState) {
        let mut state = self.state.lock().await;
        let idle = state.turn.is_none();
        if idle {
            Self::set_status(&mut state, LoopStatus::ExecutingCommand);
            self.emit(engine, [Self::loop_event(&state)]);
        }
        let payload = &command.payload;
        if let Some(mode) = payload.mode {
            state.mode = mode.resolve();
        }
        if let Some(cwd) = &payload.cwd {
            let target = Path::new(&state.cwd()).join(cwd);
            if target.is_dir() {
                state.set_cwd(target.canonicalize().unwrap_or(target).display().to_string());
            } else {
                state.settings.bump_cwd_revision();
            }
        }
        if payload.mode.is_some() || payload.cwd.is_some() {
            self.save_settings(engine, &state).await;
        }
        let mut events = Vec::new();
        if payload.mode.is_some() {
            events.push(Self::loop_event(&state));
        }
        events.push(self.device_event(&state));
        if idle {
            Self::set_status(&mut state, LoopStatus::WaitingOnInput);
            events.push(Self::loop_event(&state));
        }
        self.emit(engine, events);
    }

    /// Moves the scope to a new working directory (`SetWorkingDirectory`), persisted and shown
    /// in the device status.
    pub(crate) async fn set_cwd(&self, engine: &Context, cwd: String) {
        let mut state = self.state.lock().await;
        state.set_cwd(cwd);
        self.save_settings(engine, &state).await;
        self.emit(engine, [self.device_event(&state)]);
    }

    /// The working directory (its own, else the boot working directory).
    pub async fn cwd(&self) -> String {
        self.state.lock().await.cwd()
    }

    /// The boot working directory changed: a scope without a directory of its own moved with
    /// it, and its subscribers see a device status saying so.
    pub async fn boot_cwd_changed(&self, engine: &Context) {
        let state = self.state.lock().await;
        if state.own_cwd.is_none() {
            self.emit(engine, [self.device_event(&state)]);
        }
    }

    /// A server-wide setting its device status shows changed: its subscribers get a new one.
    pub async fn settings_changed(&self, engine: &Context) {
        let state = self.state.lock().await;
        self.emit(engine, [self.device_event(&state)]);
    }

    /// Applies `runtime_start`'s `mode` and `cwd` (persisted).
    pub async fn apply_start_settings(
        &self,
        engine: &Context,
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
            Some(Some(cwd)) if Path::new(&cwd).is_dir() => state.adopt_cwd(cwd),
            Some(None) => state.own_cwd = None,
            _ => {}
        }
        self.save_settings(engine, &state).await;
    }

    /// Persists the scope's mode, working directory and client preferences.
    pub(super) async fn save_settings(&self, engine: &Context, state: &State) {
        let settings = ScopeSettings {
            mode: Some(state.mode.as_str().to_owned()),
            cwd: state.own_cwd.clone(),
            preferences: serde_json::to_string(&state.preferences).ok(),
        };
        if let Err(error) = engine.store.save_scope_settings(&self.scope, settings).await {
            self.protocol_violation(engine, format!("Could not save the runtime settings: {error}"));
        }
    }

    /// A session closed: its queued inputs stay (they no longer belong to it), and the turn it
    /// started is cancelled if nobody else watches the scope (docs/protocol.md §5 (g), §7 item 12). An
    /// abandoned session (`abort_its_turns`, a replaced control session) takes its queued inputs
    /// and its turn with it.
    pub async fn session_closed(self: &Arc<Self>, engine: &Arc<Context>, session: SessionId, abort_its_turns: bool) {
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
                if let Err(error) = engine.store.cancel_queued(&self.scope, item_nos.clone()).await {
                    self.protocol_violation(engine, format!("Could not remove the queue items: {error}"));
                    return;
                }
                let removed = state.cancel(&item_nos);
                self.emit(engine, [Self::queue_event(&state, removed)]);
            }
        } else {
            // Its waiting inputs stay: they were acknowledged (as on Letta 0.34).
            for item in state.queue.iter_mut().filter(|q| q.session == Some(session)) {
                item.session = None;
            }
        }
        // The turn it started ends when nobody else watches it (or it was replaced); otherwise it
        // belongs to nobody from now on. A turn that belongs to nobody ends when nobody watches it.
        let watched = engine.audience.is_watched(&self.scope);
        let abandoned = match state.turn.as_mut() {
            Some(turn) if turn.origin == Some(session) => {
                let abandoned = abort_its_turns || !watched;
                turn.origin = None;
                abandoned
            }
            // A scheduled prompt's or a subagent's turn needs no watcher.
            Some(turn) => turn.origin.is_none() && !watched && !turn.autonomous,
            None => false,
        };
        if abandoned {
            self.interrupt(engine, &mut state);
        }
    }
}
