//! A conversation's mutable state: its queue and the limits on it, the turn in progress, the
//! pending approval question, and the memory of recent `client_message_id`s.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use letta_app_server_protocol::{
    CanUseToolRequest, ClientPreferences, ControlRequest, DevicePermissionMode, LoopState, MessageContent,
    QueueItemKind, QueueItemSource, QueueMessage, QueueRemoval, RemovalDisposition, RuntimeEvent, RuntimeScope,
    ToolsetName, ToolsetPreference,
};
use tokio_util::sync::CancellationToken;

use crate::clock::now_iso;
use crate::engine::clients::SessionId;
use crate::engine::settings::Settings;
use crate::engine::toolbox::TurnOptions;
use crate::engine::turn::ApprovalAnswer;
use crate::history::{HistoryMessage, ToolCall};
use crate::permissions::Rules;
use crate::store::{InputState, InterruptedTurn, QueueEntry, TurnStart, item_no};

/// How many `client_message_id`s a conversation remembers for de-duplication in memory (the
/// store remembers all of them).
pub(super) const REMEMBERED_CLIENT_IDS: usize = 4096;
/// Runs listed in `client_message_ids_by_run_id`.
pub(super) const REMEMBERED_RUNS: usize = 32;
/// Client ids listed in `client_message_ids_by_run_id` at most (the oldest runs go first): the map
/// is in every `update_loop_status`, so it stays small whatever the inputs carried.
pub(super) const REMEMBERED_RUN_CLIENT_IDS: usize = 512;
/// A new item beyond this many evicts the oldest waiting one.
pub(super) const QUEUE_SOFT_LIMIT: usize = 100;
/// Inputs beyond this many waiting items are rejected.
pub(super) const QUEUE_HARD_LIMIT: usize = 300;
/// Inputs that would bring the content of the waiting items past this many bytes (as JSON) are
/// rejected: every `update_queue` carries all of it to every subscriber.
pub(super) const QUEUE_CONTENT_LIMIT: usize = 4 * 1024 * 1024;

/// A waiting input.
#[derive(Debug, Clone)]
pub(super) struct Queued {
    pub(super) item: QueueMessage,
    /// The session that sent it, while it is connected; restored items and those of a closed
    /// session belong to none.
    pub(super) session: Option<SessionId>,
    pub(super) options: TurnOptions,
    /// Size of its content as JSON (see [`QUEUE_CONTENT_LIMIT`]).
    pub(super) content_bytes: usize,
}

impl Queued {
    pub(super) fn new(item: QueueMessage, session: Option<SessionId>, options: TurnOptions) -> Self {
        let content_bytes = content_bytes(&item.content);
        Self {
            item,
            session,
            options,
            content_bytes,
        }
    }

    /// Its durable form.
    pub(super) fn entry(&self) -> QueueEntry {
        QueueEntry {
            item: self.item.clone(),
            options: serde_json::to_string(&self.options).unwrap_or_default(),
        }
    }
}

fn content_bytes(content: &MessageContent) -> usize {
    serde_json::to_vec(content).map_or(0, |bytes| bytes.len())
}

/// The approval question the turn is waiting on (one at a time, docs/protocol.md §3.9).
#[derive(Debug)]
pub(super) struct PendingApproval {
    pub(super) request_id: String,
    pub(super) request: CanUseToolRequest,
    pub(super) answer: tokio::sync::oneshot::Sender<ApprovalAnswer>,
}

/// What a turn is started with.
pub(super) struct Batch {
    pub(super) turn_id: String,
    pub(super) origin: Option<SessionId>,
    pub(super) from_queue: bool,
    pub(super) content: Option<MessageContent>,
    pub(super) client_ids: Vec<String>,
    /// The `terminal_consumer_id`s of its inputs, first seen first, without repeats.
    pub(super) consumers: Vec<String>,
    pub(super) options: TurnOptions,
    pub(super) resume: Vec<ToolCall>,
    /// A scheduled prompt's or a subagent's turn: it runs whether or not anyone watches.
    pub(super) autonomous: bool,
}

impl Batch {
    /// What the store records when it starts.
    pub(super) fn record(&self) -> TurnStart {
        TurnStart {
            turn_id: self.turn_id.clone(),
            client_ids: self.client_ids.clone(),
            user: self.content.clone().map(|content| HistoryMessage::User { content }),
        }
    }
}

/// How an input is taken in: a turn it starts, or items it queues (removing the oldest waiting
/// ones past the soft limit).
pub(super) enum Admitted {
    Direct(Box<Batch>),
    Queued { items: Vec<Queued>, evicted: Vec<i64> },
}

/// The turn in progress.
#[derive(Debug)]
pub(super) struct ActiveTurn {
    pub(super) turn_id: String,
    /// The session that started it, if any (a turn of restored queue items has none).
    pub(super) origin: Option<SessionId>,
    pub(super) cancel: CancellationToken,
    pub(super) run_id: Option<String>,
    /// Whether it is a dequeued batch (which ends with boundary snapshots).
    pub(super) from_queue: bool,
    /// The client ids of its inputs (named by a `loop_error` if it fails before its first run).
    pub(super) client_ids: Vec<String>,
    /// For `turn_finished.terminal_consumer_ids`.
    pub(super) consumers: Vec<String>,
    /// See [`Batch::autonomous`]: it is not abandoned when its watchers leave.
    pub(super) autonomous: bool,
}

impl PendingApproval {
    /// The `control_request` event asking this question.
    pub(super) fn event(&self, scope: &RuntimeScope) -> RuntimeEvent {
        ControlRequest {
            request_id: self.request_id.clone(),
            request: self.request.clone(),
            agent_id: scope.agent_id.clone(),
            conversation_id: Some(scope.conversation_id.clone()),
        }
        .into()
    }
}

/// Mutable state of a conversation.
#[derive(Debug)]
pub(super) struct State {
    pub(super) mode: DevicePermissionMode,
    /// The working directory the scope chose; `None`: the boot working directory.
    pub(super) own_cwd: Option<String>,
    /// The server-wide settings its device status shows.
    pub(super) settings: Arc<Settings>,
    /// The server's subagents (this scope's, for its snapshots and device status).
    pub(super) subagents: Arc<crate::engine::subagents::Subagents>,
    /// The server's background commands (this scope's, for its device status).
    pub(super) shells: Arc<crate::engine::shells::Shells>,
    /// The remembered `client_preferences` (Letta 0.34): replaced by an input that carries
    /// them, cleared by `{}`.
    pub(super) preferences: ClientPreferences,
    pub(super) loop_state: LoopState,
    pub(super) queue: VecDeque<Queued>,
    pub(super) next_queue_item: i64,
    /// The running turn. This and [`State::pending`] are boxed: an idle runtime has neither,
    /// and inline they would be a third of its size.
    pub(super) turn: Option<Box<ActiveTurn>>,
    /// Set while a compaction summarises the context: inputs wait in the queue meanwhile.
    pub(super) compacting: bool,
    /// Shared with the model request of the running run; append with `Arc::make_mut`.
    pub(super) history: Arc<Vec<HistoryMessage>>,
    /// The approval question being asked.
    pub(super) pending: Option<Box<PendingApproval>>,
    /// Rules saved with "don't ask again".
    pub(super) rules: Rules,
    /// Model-facing names of the tools the last turn offered (or `update_toolset` loaded);
    /// `None` before either.
    pub(super) loaded_tools: Option<Vec<String>>,
    /// The toolset of the loaded tools.
    pub(super) toolset: Option<ToolsetName>,
    /// The toolset preference `update_toolset` set (persisted): the toolset of every turn whose
    /// input names no `client_toolset.base`.
    pub(super) toolset_preference: ToolsetPreference,
    /// Interactive tool calls left unanswered by a previous process, to ask again.
    pub(super) recoverable: Vec<ToolCall>,
    /// Turns the previous process left running (ended with an error by the store), reported to
    /// the first session the scope is replayed to.
    pub(super) interrupted: Vec<InterruptedTurn>,
    /// The agent's secret names the model was last told of (`\0`-joined; `None`: not yet, or
    /// not since the last compaction), see `remind`.
    pub(super) secret_names: Option<String>,
    /// Recently seen `client_message_id`s and their inputs' states (the store knows them all).
    pub(super) client_ids: HashMap<String, InputState>,
    pub(super) client_id_order: VecDeque<String>,
}

impl State {
    /// The working directory: the scope's own, else the boot working directory.
    pub(super) fn cwd(&self) -> String {
        self.own_cwd.clone().unwrap_or_else(|| self.settings.boot_cwd())
    }

    /// Makes `cwd` the scope's working directory; choosing the boot working directory clears
    /// the scope's own, as on real Letta.
    pub(super) fn adopt_cwd(&mut self, cwd: String) {
        self.own_cwd = (cwd != self.settings.boot_cwd()).then_some(cwd);
    }

    /// Moves the scope to `cwd`, counted as a working-directory change (`cwd_revision`).
    pub(super) fn set_cwd(&mut self, cwd: String) {
        self.adopt_cwd(cwd);
        self.settings.bump_cwd_revision();
    }

    /// Parks the waiting user messages (Letta 0.34's answer to `abort_message`): they stay queued
    /// but no turn takes them until they are released; `true` if any was parked.
    pub(super) fn pause_user_messages(&mut self) -> bool {
        let mut paused = false;
        for queued in &mut self.queue {
            let item = &mut queued.item;
            if item.kind == QueueItemKind::Message && item.source == QueueItemSource::User && item.paused.is_none() {
                item.paused = Some(true);
                paused = true;
            }
        }
        paused
    }

    /// Releases every parked item; how many there were.
    pub(super) fn release_paused(&mut self) -> usize {
        self.queue
            .iter_mut()
            .filter_map(|queued| queued.item.paused.take())
            .count()
    }

    /// The items the next queued turn takes: the leading waiting items (parked ones wait for
    /// `resume_queue` or the next input) of one session and image mode.
    pub(super) fn next_batch(&self) -> Vec<&Queued> {
        let mut ready = self.queue.iter().filter(|q| q.item.paused.is_none()).peekable();
        let Some(first) = ready.peek() else {
            return Vec::new();
        };
        let (origin, image_failure_mode) = (first.session, first.options.image_failure_mode);
        ready
            .take_while(|q| q.session == origin && q.options.image_failure_mode == image_failure_mode)
            .collect()
    }

    /// Whether an item is parked.
    pub(super) fn has_paused(&self) -> bool {
        self.queue.iter().any(|queued| queued.item.paused.is_some())
    }

    /// Removes the waiting items with these numbers (their removal is stored already): their
    /// inputs read as cancelled, and the `removed` entries of the next `update_queue` say so.
    pub(super) fn cancel(&mut self, item_nos: &[i64]) -> Vec<QueueRemoval> {
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
    pub(super) fn admit(
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
                    paused: None,
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
pub(super) struct Emitter {
    pub(super) run_cancelled: bool,
}

/// Records the state of an input in the conversation's memory of recent ids.
pub(super) fn remember(state: &mut State, client_id: String, known: InputState) {
    if state.client_ids.insert(client_id.clone(), known).is_none() {
        state.client_id_order.push_back(client_id);
        while state.client_id_order.len() > REMEMBERED_CLIENT_IDS {
            if let Some(old) = state.client_id_order.pop_front() {
                state.client_ids.remove(&old);
            }
        }
    }
}
