//! Bringing a client up to date: the state replay, turns a previous process left running,
//! and approvals to ask again (docs/protocol.md §3.10).

use std::sync::Arc;

use letta_app_server_protocol::{RuntimeEvent, StopReason, TurnFinished};

use super::Conversation;
use super::state::Batch;
use crate::clock::new_id;
use crate::engine::clients::Peer;
use crate::engine::context::Context;
use crate::engine::toolbox::TurnOptions;
use crate::store::INTERRUPTED_TURN_ERROR;
use crate::sync::lock;

impl Conversation {
    /// Replays the scope's state to one session: device status (unless unchanged since the last
    /// replay to it and not forced), loop status, queue, subagents (docs/protocol.md §3.10).
    pub async fn replay(&self, peer: &dyn Peer, force_device: bool) {
        let state = self.state.lock().await;
        let device = self.device_event(&state);
        let device_json = serde_json::to_string(&device).unwrap_or_default();
        let changed = peer.note_replayed_device(&self.scope, &device_json);
        let _order = lock(&self.emitter);
        if let Some(pending) = &state.pending {
            peer.send_event(&self.scope, &pending.event(&self.scope));
        }
        if changed || force_device {
            peer.send_event(&self.scope, &device);
        }
        peer.send_event(&self.scope, &Self::loop_event(&state));
        peer.send_event(&self.scope, &Self::queue_event(&state, Vec::new()));
        peer.send_event(&self.scope, &state.subagents.state_of(&self.scope));
    }

    /// Broadcasts the scope's state (loop, device, queue): for the clients of a resumable stream
    /// restored with the conversation, whose last events may predate a restart.
    pub async fn announce_state(&self, engine: &Context) {
        let state = self.state.lock().await;
        let events = [
            self.device_event(&state),
            Self::loop_event(&state),
            Self::queue_event(&state, Vec::new()),
        ];
        self.emit(engine, events);
    }

    /// Tells the scope's subscribers how the turns a previous process left running ended, if
    /// no client was told yet: as any failed turn, with `turn_finished` (`stop_reason: error`)
    /// and a terminal `loop_error`. Called on `runtime_start` and `sync`, before a recovery turn
    /// can start.
    pub async fn report_interrupted(&self, engine: &Context) {
        let mut state = self.state.lock().await;
        if state.interrupted.is_empty() {
            return;
        }
        let turns = std::mem::take(&mut state.interrupted);
        let events = turns.iter().flat_map(|turn| {
            let finished: RuntimeEvent = TurnFinished {
                terminal_consumer_ids: None,
                turn_id: turn.turn_id.clone(),
                stop_reason: StopReason::Error,
                run_id: None,
                error: Some(INTERRUPTED_TURN_ERROR.into()),
                usage: None,
            }
            .into();
            let error = Self::loop_error(INTERRUPTED_TURN_ERROR.into(), StopReason::Error, true, None);
            [finished, error]
        });
        self.emit(engine, events);
        // Written in the background; until it is, a restart reports them again.
        let reported = turns.into_iter().map(|turn| turn.turn_id).collect();
        drop(engine.store.turns_reported(&self.scope, reported));
    }

    /// `recover_approvals`: when the scope is idle, asks again the interactive tool calls a
    /// previous process left unanswered, in a turn of their own (docs/protocol.md §3.10).
    pub async fn recover_approvals(self: &Arc<Self>, engine: &Arc<Context>, peer: &dyn Peer) {
        let mut state = self.state.lock().await;
        if state.turn.is_some() || state.pending.is_some() || state.recoverable.is_empty() {
            return;
        }
        let batch = Batch {
            turn_id: new_id("turn"),
            origin: Some(peer.id()),
            from_queue: false,
            content: None,
            client_ids: Vec::new(),
            consumers: Vec::new(),
            options: TurnOptions::default(),
            resume: std::mem::take(&mut state.recoverable),
            autonomous: false,
        };
        if let Err(error) = engine.store.start_turn(&self.scope, batch.record()).await {
            state.recoverable = batch.resume;
            self.protocol_violation(engine, format!("Could not start the recovery turn: {error}"));
            return;
        }
        self.start_turn(engine, &mut state, batch);
    }

    /// Sends the pending approval question, if any, to one session.
    pub async fn replay_pending_approval(&self, peer: &dyn Peer) {
        let state = self.state.lock().await;
        if let Some(pending) = &state.pending {
            let _order = lock(&self.emitter);
            peer.send_event(&self.scope, &pending.event(&self.scope));
        }
    }
}
