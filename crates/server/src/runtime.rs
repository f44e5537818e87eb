//! The shared runtime: client sessions, scope subscriptions, and the conversations they drive.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use letta_app_server_protocol::{ErrorCode, ErrorFrame, RuntimeEvent, RuntimeScope, ServerFrame};

use crate::config::Config;
use crate::conversation::{Agent, Conversation};
use crate::external::ExternalTools;
use crate::history::{HistoryMessage, ToolCall};
use crate::outbound::{EventFrame, Limits, Outbound, Outgoing};
use crate::provider::Providers;
use crate::store::{Store, StoreError};
use crate::tools::{LocalTool, ToolKind};

/// The result a tool call gets when the server stopped before it was answered.
const STALE_RESULT: &str =
    "This tool call was still pending when the server stopped. It may or may not have run; it was not run again.";

/// Identifies a client session (one socket, or a control + stream pair).
pub type SessionId = u64;

/// One client session.
#[derive(Debug)]
pub struct Session {
    /// Its id.
    pub id: SessionId,
    /// Its outbound queue.
    pub outbound: Arc<Outbound>,
    /// The device status last replayed to it per scope, to omit unchanged ones from `sync`.
    replayed_device: Mutex<HashMap<RuntimeScope, String>>,
    /// Set when a new control session replaced it: its turns and queued inputs go with it,
    /// whichever of its own close and the replacement is handled first.
    abandoned: AtomicBool,
}

impl Session {
    /// Queues a direct frame (a response or notification). One larger than half the session's
    /// outbound byte limit is replaced by an `error` frame saying so: no answer to one frame can
    /// close the socket it answers. (The limits on client input keep every answer far smaller.)
    pub fn send(&self, frame: impl Into<ServerFrame>) {
        let frame = frame.into();
        let mut bytes = serde_json::to_vec(&frame).unwrap_or_default();
        let limit = self.outbound.max_bytes() / 2;
        if bytes.len() > limit {
            #[derive(serde::Deserialize)]
            struct Answering {
                request_id: Option<String>,
            }
            let answering = serde_json::from_slice::<Answering>(&bytes).ok();
            let error = ErrorFrame {
                request_id: answering.and_then(|a| a.request_id),
                code: ErrorCode::Internal,
                message: format!(
                    "the `{}` answer would be {} bytes, over this connection's limit of {limit}",
                    frame.frame_type(),
                    bytes.len()
                ),
                frame_type: None,
            };
            bytes = serde_json::to_vec(&ServerFrame::from(error.bounded())).unwrap_or_default();
        }
        self.outbound.push(Outgoing::Direct(Bytes::from(bytes)));
    }

    /// Queues a runtime event for this session only.
    pub fn send_event(&self, scope: &RuntimeScope, event: &RuntimeEvent) {
        self.outbound
            .push(Outgoing::Event(Arc::new(EventFrame::new(event, scope))));
    }

    /// Marks it replaced by a new control session: when it closes, the turns it started are
    /// aborted even when other sessions watch them, and its queued inputs are removed
    /// (docs/protocol.md §1.10). Set before its close can be handled.
    pub fn abandon(&self) {
        self.abandoned.store(true, Ordering::SeqCst);
    }

    /// Records `device` as replayed for `scope`; `false` if it equals the previous replay.
    pub fn note_replayed_device(&self, scope: &RuntimeScope, device: String) -> bool {
        let mut replayed = lock(&self.replayed_device);
        replayed.insert(scope.clone(), device.clone()).as_deref() != Some(device.as_str())
    }
}

/// Why a scope cannot be used.
#[derive(Debug)]
pub enum ScopeError {
    /// No such agent.
    UnknownAgent(String),
    /// No such conversation.
    UnknownConversation(String),
    /// The conversation belongs to another agent.
    WrongAgent {
        /// The conversation.
        conversation: String,
        /// Its agent.
        owner: String,
        /// The agent asked for.
        agent: String,
    },
    /// The store failed.
    Store(StoreError),
}

impl std::fmt::Display for ScopeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::UnknownAgent(agent) => write!(f, "Agent {agent} not found"),
            Self::UnknownConversation(conversation) => write!(f, "Conversation {conversation} not found"),
            Self::WrongAgent {
                conversation,
                owner,
                agent,
            } => {
                write!(f, "Conversation {conversation} belongs to {owner}, not {agent}")
            }
            Self::Store(error) => write!(f, "{error}"),
        }
    }
}

impl From<StoreError> for ScopeError {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

/// Locks a std mutex, ignoring poisoning (state stays consistent: no panics while locked).
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The runtime shared by every session.
pub struct Runtime {
    /// Configuration.
    pub config: Config,
    /// The durable store.
    pub store: Store,
    /// Model providers.
    pub providers: Providers,
    /// The local tools.
    pub tools: Vec<Arc<dyn LocalTool>>,
    /// Controller-owned tools and their calls in flight.
    pub external: ExternalTools,
    next_session: AtomicU64,
    /// Set once the server is stopping: no new turn starts from the queue.
    stopping: AtomicBool,
    sessions: Mutex<HashMap<SessionId, Arc<Session>>>,
    subscriptions: Mutex<HashMap<RuntimeScope, Vec<SessionId>>>,
    conversations: Mutex<HashMap<RuntimeScope, Arc<Conversation>>>,
    /// Held while a conversation is loaded from the store, one per conversation being loaded.
    loading: Mutex<HashMap<RuntimeScope, Arc<tokio::sync::Mutex<()>>>>,
}

impl Runtime {
    /// A runtime over an open store.
    pub fn new(config: Config, store: Store) -> Arc<Self> {
        let providers = Providers::new(config.providers.clone());
        Arc::new(Self {
            config,
            store,
            providers,
            tools: crate::tools::all().into_iter().map(Arc::from).collect(),
            external: ExternalTools::default(),
            next_session: AtomicU64::new(0),
            stopping: AtomicBool::new(false),
            sessions: Mutex::default(),
            subscriptions: Mutex::default(),
            conversations: Mutex::default(),
            loading: Mutex::default(),
        })
    }

    /// Registers a new session.
    pub fn open_session(&self) -> Arc<Session> {
        let id = self.next_session.fetch_add(1, Ordering::Relaxed);
        let limits = Limits {
            coalesce_after: 64,
            max_frames: self.config.max_queued_frames,
            max_bytes: self.config.max_queued_bytes,
            patience: self.config.slow_reader_patience,
        };
        let session = Arc::new(Session {
            id,
            outbound: Outbound::new(limits),
            replayed_device: Mutex::default(),
            abandoned: AtomicBool::new(false),
        });
        lock(&self.sessions).insert(id, session.clone());
        self.external.session_opened(id);
        session
    }

    /// Forgets a closed session: its subscriptions and the turns only it was watching
    /// (docs/protocol.md §5 (g)); its queued inputs stay (Letta 0.34, §4.7 of its changes), unless it
    /// was [abandoned](Session::abandon). Closing a session twice does nothing more.
    pub async fn close_session(self: &Arc<Self>, session: SessionId) {
        self.release_session(session).await;
    }

    async fn release_session(self: &Arc<Self>, session: SessionId) {
        let Some(closed) = lock(&self.sessions).remove(&session) else {
            return;
        };
        let abort_its_turns = closed.abandoned.load(Ordering::SeqCst);
        self.external.session_closed(session);
        let scopes: Vec<RuntimeScope> = {
            let mut subscriptions = lock(&self.subscriptions);
            let mut scopes = Vec::new();
            for (scope, sessions) in subscriptions.iter_mut() {
                if let Some(position) = sessions.iter().position(|s| *s == session) {
                    sessions.remove(position);
                    scopes.push(scope.clone());
                }
            }
            subscriptions.retain(|_, sessions| !sessions.is_empty());
            scopes
        };
        for scope in scopes {
            let conversation = lock(&self.conversations).get(&scope).cloned();
            if let Some(conversation) = conversation {
                conversation.session_closed(self, session, abort_its_turns).await;
            }
        }
    }

    /// Stops every turn (their output so far is saved) and waits, up to `grace`, for them to end
    /// and for the store to finish its writes.
    pub async fn shutdown(self: &Arc<Self>, grace: std::time::Duration) {
        self.stop();
        let conversations: Vec<Arc<Conversation>> = lock(&self.conversations).values().cloned().collect();
        for conversation in &conversations {
            conversation.abort(self, None, None).await;
        }
        let deadline = tokio::time::Instant::now() + grace;
        for conversation in &conversations {
            while conversation.has_turn().await && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
        let _ = self.store.flush().await;
    }

    /// Marks the server as stopping: no turn starts any more, and inputs are refused.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    /// Whether the server is stopping (waiting queue items then stay queued, in the store).
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// A session by id, if it is still open.
    pub fn session(&self, id: SessionId) -> Option<Arc<Session>> {
        lock(&self.sessions).get(&id).cloned()
    }

    /// Sends every pending approval question of every conversation to a newly connected
    /// session, before it subscribes to anything (docs/protocol.md §1.5).
    pub async fn replay_pending_approvals(&self, session: &Session) {
        let conversations: Vec<Arc<Conversation>> = lock(&self.conversations).values().cloned().collect();
        for conversation in conversations {
            conversation.replay_pending_approval(session).await;
        }
    }

    /// Subscribes a session to a scope's runtime events, unless it has closed meanwhile (a
    /// command's handling can outlast its connection): a closed session must not count as a
    /// watcher. [`Runtime::close_session`] forgets the session before its subscriptions, and
    /// this checks it under the subscriptions' lock, so either it sees the close or the close
    /// sees its subscription.
    pub fn subscribe(&self, session: SessionId, scope: &RuntimeScope) {
        let mut subscriptions = lock(&self.subscriptions);
        if !lock(&self.sessions).contains_key(&session) {
            return;
        }
        let sessions = subscriptions.entry(scope.clone()).or_default();
        if !sessions.contains(&session) {
            sessions.push(session);
        }
    }

    /// Whether any session is subscribed to `scope`.
    pub fn has_subscribers(&self, scope: &RuntimeScope) -> bool {
        lock(&self.subscriptions).get(scope).is_some_and(|s| !s.is_empty())
    }

    /// Sends a runtime event to every subscriber of its scope (serialised once).
    pub fn broadcast(&self, scope: &RuntimeScope, event: &RuntimeEvent) {
        let targets: Vec<Arc<Session>> = {
            let subscriptions = lock(&self.subscriptions);
            let Some(ids) = subscriptions.get(scope) else { return };
            let sessions = lock(&self.sessions);
            ids.iter().filter_map(|id| sessions.get(id).cloned()).collect()
        };
        if targets.is_empty() {
            return;
        }
        let frame = Arc::new(EventFrame::new(event, scope));
        for session in targets {
            session.outbound.push(Outgoing::Event(frame.clone()));
        }
    }

    /// Resolves once no subscriber of `scope` is [busy](Outbound::is_busy), except one that has
    /// taken nothing for [`Config::slow_reader_patience`] (a stuck reader is left to
    /// the queue's limits instead of holding the turn up).
    pub async fn subscribers_ready(&self, scope: &RuntimeScope) {
        let outbounds: Vec<Arc<Outbound>> = {
            let subscriptions = lock(&self.subscriptions);
            let Some(ids) = subscriptions.get(scope) else { return };
            let sessions = lock(&self.sessions);
            ids.iter()
                .filter_map(|id| sessions.get(id))
                .filter(|session| session.outbound.is_busy())
                .map(|session| session.outbound.clone())
                .collect()
        };
        for outbound in outbounds {
            outbound.drained().await;
        }
    }

    /// The conversation runtime of a scope with `session` subscribed to it. A conversation
    /// evicted between the lookup and the subscription is loaded again.
    pub async fn subscribed_conversation(
        self: &Arc<Self>,
        session: SessionId,
        scope: &RuntimeScope,
    ) -> Result<Arc<Conversation>, ScopeError> {
        loop {
            let conversation = self.conversation(scope).await?;
            self.subscribe(session, &conversation.scope);
            // Eviction checks the subscriptions before it marks a conversation: either it saw
            // this one, or the mark is visible now.
            if !conversation.is_evicted() {
                return Ok(conversation);
            }
        }
    }

    /// One eviction sweep: drops the conversations that `sweeps` consecutive sweeps found idle
    /// with no subscriber (real Letta evicts idle conversation runtimes too, docs/protocol.md §3.3).
    /// Their state is in the store; the next use loads them again. Returns how many were dropped.
    pub fn evict_idle(&self, sweeps: u32) -> usize {
        let mut conversations = lock(&self.conversations);
        let subscriptions = lock(&self.subscriptions);
        let before = conversations.len();
        conversations.retain(|scope, conversation| {
            let unwatched = subscriptions.get(scope).is_none_or(Vec::is_empty);
            !conversation.sweep(unwatched, sweeps)
        });
        before - conversations.len()
    }

    /// How many conversations are in memory.
    pub fn loaded_conversations(&self) -> usize {
        lock(&self.conversations).len()
    }

    /// The conversation runtime of a scope, loading it from the store on first use.
    pub async fn conversation(self: &Arc<Self>, scope: &RuntimeScope) -> Result<Arc<Conversation>, ScopeError> {
        let key = RuntimeScope::new(scope.agent_id.clone(), scope.conversation_id.clone());
        if let Some(conversation) = lock(&self.conversations).get(&key).cloned() {
            return Ok(conversation);
        }
        // One load of a conversation at a time: a second load of a conversation that started a
        // turn meanwhile would take that turn for one the previous process left running.
        let gate = lock(&self.loading).entry(key.clone()).or_default().clone();
        let _loading = gate.lock().await;
        if let Some(conversation) = lock(&self.conversations).get(&key).cloned() {
            return Ok(conversation);
        }
        let loaded = self.load(&key).await.map(|conversation| {
            let conversation = Arc::new(conversation);
            lock(&self.conversations).insert(key.clone(), conversation.clone());
            conversation
        });
        // Only once it is in memory (or failed to load): a load starting now finds it there.
        let mut loading = lock(&self.loading);
        if loading.get(&key).is_some_and(|current| Arc::ptr_eq(current, &gate)) {
            loading.remove(&key);
        }
        loaded
    }

    /// Loads a conversation runtime from the store.
    async fn load(self: &Arc<Self>, key: &RuntimeScope) -> Result<Conversation, ScopeError> {
        let agent = self
            .store
            .agent(key.agent_id.clone())
            .await?
            .ok_or_else(|| ScopeError::UnknownAgent(key.agent_id.clone()))?;
        if key.conversation_id != "default" {
            let conversation = self
                .store
                .conversation(key.conversation_id.clone())
                .await?
                .ok_or_else(|| ScopeError::UnknownConversation(key.conversation_id.clone()))?;
            let owner = conversation
                .get("agent_id")
                .and_then(|v| v.as_str())
                .unwrap_or_default();
            if owner != key.agent_id {
                return Err(ScopeError::WrongAgent {
                    conversation: key.conversation_id.clone(),
                    owner: owner.to_owned(),
                    agent: key.agent_id.clone(),
                });
            }
        }
        let mut restored = self.store.restore(key).await?;
        // Calls a previous process left unanswered: interactive ones are asked again on
        // `recover_approvals`; the others may have run already, so they are never re-run: the
        // model gets a stale result instead (docs/protocol.md §3.10).
        let (recoverable, stale): (Vec<ToolCall>, Vec<ToolCall>) = crate::conversation::unanswered(&restored.history)
            .into_iter()
            .partition(|call| {
                self.tools
                    .iter()
                    .any(|tool| tool.name() == call.name && tool.kind() == ToolKind::Interactive)
            });
        if !stale.is_empty() {
            let results: Vec<HistoryMessage> = stale
                .into_iter()
                .map(|call| HistoryMessage::ToolResult {
                    tool_call_id: call.id,
                    content: STALE_RESULT.into(),
                    is_error: true,
                })
                .collect();
            self.store.append_messages(key, None, results.clone()).await?;
            restored.history.extend(results);
        }
        Ok(Conversation::new(
            key.clone(),
            Agent::from_state(&agent),
            restored,
            recoverable,
            &self.config,
        ))
    }
}
