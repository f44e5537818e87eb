//! Taking in `input`: new messages start a turn or wait in the queue, approval answers reach
//! the turn waiting on them; a turn's start and end, and the queue moving on
//! (docs/protocol.md §3.3, §3.4, §3.6, §3.9, §5).

use std::sync::Arc;

use letta_app_server_protocol::{
    ApprovalDecision, ApprovalResponse, ContentPart, CreateMessage, Delta, DeltaMeta, Disposition, Input,
    InputAccepted, LoopStatus, MessageContent, QueueItemKind, QueueItemSource, QueueMessage, QueueRemoval,
    RemovalDisposition, RuntimeEvent, StopReason, StreamDelta, TurnFinished, UserMessage,
};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::state::{ActiveTurn, Admitted, Batch, QUEUE_CONTENT_LIMIT, QUEUE_HARD_LIMIT, Queued, State, remember};
use super::{Conversation, host};
use crate::clock::{new_id, now_iso};
use crate::engine::clients::Peer;
use crate::engine::context::Context;
use crate::engine::toolbox::TurnOptions;
use crate::engine::turn::{ApprovalAnswer, Outcome};
use crate::history::HistoryMessage;
use crate::metrics::Metrics;
use crate::store::{Admission, InputState, item_no};

impl Conversation {
    /// Handles `input` `approval_response`: the first answer to the pending question wins;
    /// anything else gets `accepted: false` (docs/protocol.md §3.3, §3.9).
    pub async fn answer_approval(&self, engine: &Context, peer: &dyn Peer, input: &Input, answer: &ApprovalResponse) {
        let mut state = self.state.lock().await;
        let pending = state.pending.take_if(|p| p.request_id == answer.request_id);
        let accepted = pending.is_some();
        if let Some(pending) = pending {
            self.emit(engine, [Self::loop_event(&state), self.device_event(&state)]);
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
            self.reply(peer, answer);
        }
    }

    // ----- input ----------------------------------------------------------------------------

    /// Handles `input` `create_message`: start a turn when idle, else queue (docs/protocol.md §3.3).
    /// The input is acknowledged only once it is durable as work to do (see [`crate::store`]);
    /// a `client_message_id` seen before gets its input's current state and runs nothing.
    pub async fn submit(
        self: &Arc<Self>,
        engine: &Arc<Context>,
        peer: &dyn Peer,
        input: &Input,
        payload: &CreateMessage,
    ) {
        let reply = |disposition: Option<Disposition>, error: Option<String>| {
            if let Some(answer) = acknowledgement(input, disposition, error) {
                self.reply(peer, answer);
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
        if engine.is_stopping() || self.is_deleted() {
            // Real Letta's answer for an input to a runtime that is going away (here: the
            // server is stopping, or its agent is being deleted).
            return reply(None, Some("Runtime is no longer active".into()));
        }
        let preferences = payload.client_preferences.as_ref().unwrap_or(&state.preferences);
        let preferred: Vec<String> = preferences.toolset.iter().flat_map(|t| t.include.clone()).collect();
        if preferred
            .iter()
            .any(|name| !engine.tools.iter().any(|loaded| loaded.tool.name() == name))
        {
            // Letta 0.34's answer: this loop_error, and no `input_accepted`.
            return self.protocol_violation(engine, CLIENT_PREFERENCES_VIOLATION.into());
        }
        let content = merge_contents(payload.messages.iter().map(|m| &m.content));
        let options = TurnOptions::new(input, payload, preferred);
        let mut admitted = if state.turn.is_none() && state.queue.is_empty() && !state.compacting {
            Admitted::Direct(Box::new(Batch {
                turn_id: new_id("turn"),
                origin: Some(peer.id()),
                from_queue: false,
                content: Some(content),
                client_ids: if client_ids.is_empty() {
                    vec![client_id.clone()]
                } else {
                    client_ids
                },
                consumers: options.terminal_consumer.iter().cloned().collect(),
                options,
                resume: Vec::new(),
                autonomous: false,
            }))
        } else {
            // Several messages that each carry an id wait as separate items.
            let messages: Vec<(String, MessageContent)> =
                if payload.messages.len() == 1 || client_ids.len() != payload.messages.len() {
                    vec![(client_id.clone(), content)]
                } else {
                    let contents = payload.messages.iter().map(|m| m.content.clone());
                    client_ids.into_iter().zip(contents).collect()
                };
            match state.admit(messages, peer.id(), options) {
                Ok(admitted) => admitted,
                Err(error) => return reply(None, Some(error)),
            }
        };
        let notice = match &mut admitted {
            Admitted::Direct(batch) => self
                .secrets_notice(engine, &state)
                .inspect(|notice| notice.prepend(batch)),
            Admitted::Queued { .. } => None,
        };
        let admission = match &admitted {
            Admitted::Direct(batch) => Admission::Started(batch.record()),
            Admitted::Queued { items, evicted } => Admission::Queued {
                entries: items.iter().map(Queued::entry).collect(),
                evicted: evicted.clone(),
            },
        };
        let payload_json = serde_json::to_string(payload).unwrap_or_default();
        let stored = engine
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
        if let Some(preferences) = &payload.client_preferences {
            state.preferences = preferences.clone();
            self.save_settings(engine, &state).await;
        }
        match admitted {
            Admitted::Direct(batch) => {
                if let Some(notice) = notice {
                    notice.told(&mut state);
                }
                remember(&mut state, client_id, InputState::Started);
                reply(Some(Disposition::Started), None);
                self.start_turn(engine, &mut state, *batch);
            }
            Admitted::Queued { items, evicted } => {
                for item in &items {
                    remember(&mut state, item.item.client_message_id.clone(), InputState::Queued);
                }
                reply(Some(Disposition::Queued), None);
                // A new message releases the items an abort parked (Letta 0.34).
                state.release_paused();
                let removed = state.cancel(&evicted);
                state.next_queue_item += items.len() as i64;
                state.queue.extend(items);
                self.emit(engine, [Self::queue_event(&state, removed)]);
            }
        }
    }

    /// Starts a turn whose input is already stored (the caller holds the state lock).
    pub(super) fn start_turn(self: &Arc<Self>, engine: &Arc<Context>, state: &mut State, batch: Batch) {
        let cancel = CancellationToken::new();
        state.turn = Some(Box::new(ActiveTurn {
            turn_id: batch.turn_id.clone(),
            origin: batch.origin,
            cancel: cancel.clone(),
            run_id: None,
            from_queue: batch.from_queue,
            client_ids: batch.client_ids.clone(),
            consumers: batch.consumers.clone(),
            autonomous: batch.autonomous,
        }));
        if let Some(content) = &batch.content {
            Arc::make_mut(&mut state.history).push(HistoryMessage::User {
                content: content.clone(),
            });
        }
        Self::set_status(state, LoopStatus::SendingApiRequest);
        self.emit(engine, [Self::loop_event(state), self.device_event(state)]);
        engine.metrics.turns_started.inc();
        // A span of its own, not the starting connection's: a turn outlives its connection.
        let span = tracing::info_span!(
            parent: None,
            "turn",
            agent = self.scope.agent_id,
            conversation = self.scope.conversation_id,
            turn_id = batch.turn_id,
            run_id = tracing::field::Empty,
        );
        span.in_scope(|| tracing::info!(inputs = batch.client_ids.len(), "turn started"));
        let run = host::run_turn(engine.clone(), self.clone(), batch, cancel);
        tokio::spawn(run.instrument(span));
    }

    /// Ends the turn: records how it ended, then the final statuses, `turn_finished`, then the
    /// next queued batch (while someone watches) or the turn-end boundary snapshots
    /// (docs/protocol.md §3.6, §5 (e), (f), (i)).
    pub(super) async fn finish_turn(self: &Arc<Self>, engine: &Arc<Context>, state: &mut State, outcome: Outcome) {
        let Some(turn) = state.turn.take() else { return };
        Self::set_status(state, LoopStatus::WaitingOnInput);
        let (stop_reason, error) = match outcome {
            Outcome::Completed(stop_reason) => (stop_reason, None),
            Outcome::Failed(stop_reason, error) => (stop_reason, Some(error)),
            Outcome::Cancelled => (StopReason::Cancelled, None),
        };
        Metrics::count(&engine.metrics.turns_finished, "stop_reason", stop_reason.as_str());
        // The error can quote the model's answer: only at debug.
        tracing::info!(stop_reason = stop_reason.as_str(), "turn finished");
        if let Some(error) = &error {
            tracing::debug!(error, "turn's error");
        }
        let recorded = engine
            .store
            .finish_turn(&self.scope, stop_reason.to_string(), error.clone())
            .await;
        if let Err(error) = recorded {
            self.protocol_violation(engine, format!("Could not save the end of the turn: {error}"));
        }
        let finished: RuntimeEvent = TurnFinished {
            turn_id: turn.turn_id,
            terminal_consumer_ids: (!turn.consumers.is_empty()).then_some(turn.consumers),
            stop_reason: stop_reason.clone(),
            run_id: turn.run_id.clone(),
            error: error.clone(),
            usage: None,
        }
        .into();
        let device = self.device_event(state);
        // An abort already sent the idle statuses; a cancelled turn only reports its end.
        let mut events = if stop_reason == StopReason::Cancelled {
            vec![finished, device]
        } else {
            vec![Self::loop_event(state), device, finished]
        };
        if let Some(error) = error {
            let mut loop_error = Self::loop_error(error, stop_reason, true, turn.run_id.clone());
            if turn.run_id.is_none() {
                // Letta 0.34 names the inputs that failed before a run was created for them.
                Self::name_inputs(&mut loop_error, turn.client_ids);
            }
            events.push(loop_error);
        }
        self.emit(engine, events);
        if !self.start_next_batch(engine, state).await && turn.from_queue {
            self.emit(engine, [Self::queue_event(state, Vec::new()), Self::loop_event(state)]);
        }
    }

    /// Real Letta's error text for a prompt its full queue refused.
    pub(crate) const QUEUE_FULL: &'static str = "queue buffer limit";

    /// Queues a `task_notification` item carrying `content` (a backgrounded external tool's
    /// outcome), durably, and starts it at once if the conversation is idle (Letta 0.34).
    pub(crate) async fn notify(self: &Arc<Self>, engine: &Arc<Context>, content: String) {
        let origin = (QueueItemKind::TaskNotification, QueueItemSource::TaskNotification);
        // A notification that cannot be queued is lost; the store's refusal was reported.
        let _ = self.queue_prompt(engine, origin, content).await;
    }

    /// Queues an item of `kind` from `source` carrying `content`, durably, and starts it at once
    /// if the conversation is idle; or why not: the conversation was deleted, the queue is full
    /// ([`QUEUE_FULL`], its item and content limits), or the store refused it.
    pub(crate) async fn queue_prompt(
        self: &Arc<Self>,
        engine: &Arc<Context>,
        origin: (QueueItemKind, QueueItemSource),
        content: String,
    ) -> Result<(), String> {
        let mut state = self.state.lock().await;
        self.enqueue(engine, &mut state, origin, None, content, TurnOptions::default())
            .await
    }

    /// Starts a subagent's turn on its input `content` (a `subagent` queue item whose
    /// `client_message_id` is `input_id`, run with `options`), which needs the conversation idle
    /// with nothing waiting: another's turn or input is not mixed with the subagent's.
    pub(crate) async fn start_subagent(
        self: &Arc<Self>,
        engine: &Arc<Context>,
        input_id: String,
        content: String,
        options: TurnOptions,
    ) -> Result<(), String> {
        let mut state = self.state.lock().await;
        if state.turn.is_some() || state.pending.is_some() || !state.queue.is_empty() || state.compacting {
            return Err(format!(
                "Conversation {} is busy: a subagent can only be deployed on an idle conversation",
                self.scope.conversation_id
            ));
        }
        let origin = (QueueItemKind::Message, QueueItemSource::Subagent);
        self.enqueue(engine, &mut state, origin, Some(input_id.clone()), content, options)
            .await?;
        let started = (state.turn.as_ref()).is_some_and(|turn| turn.client_ids.contains(&input_id));
        if !started {
            // The server is stopping, or the store refused the start: the item goes again.
            let waiting: Vec<i64> = (state.queue.iter())
                .filter(|q| q.item.client_message_id == input_id)
                .map(|q| item_no(&q.item.id))
                .collect();
            if engine.store.cancel_queued(&self.scope, waiting.clone()).await.is_ok() {
                let removed = state.cancel(&waiting);
                self.emit(engine, [Self::queue_event(&state, removed)]);
            }
            return Err("The subagent's turn could not start".into());
        }
        Ok(())
    }

    /// Queues an item (`client_message_id` `client_id`, else `cm-q-N`); see
    /// [`Conversation::queue_prompt`].
    async fn enqueue(
        self: &Arc<Self>,
        engine: &Arc<Context>,
        state: &mut State,
        (kind, source): (QueueItemKind, QueueItemSource),
        client_id: Option<String>,
        content: String,
        options: TurnOptions,
    ) -> Result<(), String> {
        if self.is_deleted() {
            return Err("Conversation runtime unavailable".into());
        }
        let number = state.next_queue_item;
        let item = QueueMessage {
            id: format!("q-{number}"),
            client_message_id: client_id.unwrap_or_else(|| format!("cm-q-{number}")),
            kind,
            source,
            content: MessageContent::Text(content),
            enqueued_at: now_iso(),
            paused: None,
        };
        let queued = Queued::new(item, None, options);
        let bytes: usize = state.queue.iter().map(|q| q.content_bytes).sum::<usize>() + queued.content_bytes;
        if state.queue.len() >= QUEUE_HARD_LIMIT || bytes > QUEUE_CONTENT_LIMIT {
            return Err(Self::QUEUE_FULL.into());
        }
        let admission = Admission::Queued {
            entries: vec![queued.entry()],
            evicted: Vec::new(),
        };
        let payload = serde_json::to_string(&queued.item.content).unwrap_or_default();
        let stored = engine.store.accept_input(&self.scope, None, payload, admission).await;
        if !matches!(stored, Ok(None)) {
            let error = stored
                .err()
                .map_or_else(|| "its id is taken".to_owned(), |e| e.to_string());
            let error = format!("Could not queue a prompt: {error}");
            self.protocol_violation(engine, error.clone());
            return Err(error);
        }
        remember(state, queued.item.client_message_id.clone(), InputState::Queued);
        state.next_queue_item += 1;
        state.queue.push_back(queued);
        self.emit(engine, [Self::queue_event(state, Vec::new())]);
        if state.turn.is_none() && state.pending.is_none() {
            self.start_next_batch(engine, state).await;
        }
        Ok(())
    }

    /// Starts the waiting queue items, if the conversation is idle and someone watches it: a
    /// queue whose sessions all left waits (durably) for the next subscriber, as on Letta 0.34.
    pub async fn resume_queue(self: &Arc<Self>, engine: &Arc<Context>) {
        let mut state = self.state.lock().await;
        if state.turn.is_none() && state.pending.is_none() {
            self.start_next_batch(engine, &mut state).await;
        }
    }

    /// Dequeues the leading coalescable items as one turn; `false` if there are none, or nobody
    /// watches the scope (unless they are all scheduled prompts), or the server is stopping (the items wait), or its agent is deleted, or
    /// a compaction runs (it starts them when it ends).
    pub(super) async fn start_next_batch(self: &Arc<Self>, engine: &Arc<Context>, state: &mut State) -> bool {
        if state.compacting {
            return false;
        }
        let batch = state.next_batch();
        // A scheduled prompt or a subagent's input runs on its own: nobody need watch its
        // conversation.
        let autonomous =
            (batch.iter()).all(|q| matches!(q.item.source, QueueItemSource::Cron | QueueItemSource::Subagent));
        let watched = autonomous || engine.audience.is_watched(&self.scope);
        if batch.is_empty() || !watched || engine.is_stopping() || self.is_deleted() {
            return false;
        }
        let content = merge_contents(batch.iter().map(|q| &q.item.content));
        let client_ids: Vec<String> = batch.iter().map(|q| q.item.client_message_id.clone()).collect();
        let item_nos: Vec<i64> = batch.iter().map(|q| item_no(&q.item.id)).collect();
        let mut consumers: Vec<String> = Vec::new();
        for consumer in batch.iter().filter_map(|q| q.options.terminal_consumer.as_ref()) {
            if !consumers.contains(consumer) {
                consumers.push(consumer.clone());
            }
        }
        let mut batch = Batch {
            turn_id: new_id("turn"),
            origin: batch[0].session,
            from_queue: true,
            content: Some(content.clone()),
            client_ids: client_ids.clone(),
            consumers,
            options: batch[0].options.clone(),
            resume: Vec::new(),
            autonomous,
        };
        let notice = self.secrets_notice(engine, state);
        if let Some(notice) = &notice {
            notice.prepend(&mut batch);
        }
        if let Err(error) = engine
            .store
            .start_batch(&self.scope, item_nos.clone(), batch.record())
            .await
        {
            self.protocol_violation(engine, format!("Could not start the queued turn: {error}"));
            return false;
        }
        if let Some(notice) = notice {
            notice.told(state);
        }
        state.queue.retain(|q| !item_nos.contains(&item_no(&q.item.id)));
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
            engine,
            [echo, Self::queue_event(state, Vec::new()), Self::loop_event(state)],
        );
        self.start_turn(engine, state, batch);
        let removed = client_ids
            .into_iter()
            .map(|client_message_id| QueueRemoval {
                client_message_id,
                disposition: RemovalDisposition::Dequeued,
            })
            .collect();
        self.emit(engine, [Self::queue_event(state, removed)]);
        true
    }
}

/// Letta 0.34's `loop_error` text for `client_preferences` it cannot accept.
pub(crate) const CLIENT_PREFERENCES_VIOLATION: &str = "Protocol violation: client_preferences must contain only an optional toolset with include: known bundled tool names[]";

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
