//! The engine: the registry of conversation runtimes and what they share (store, providers,
//! tools, external tool registrations). It knows the clients only through two narrow
//! interfaces that the sessions layer implements: [`Audience`] (everyone watching a scope) and
//! [`Peer`] (the one client a command came from).
//!
//! * [`conversation`] — one conversation: queue, device and loop state, the frames each change
//!   produces.
//! * [`turn`] — one turn: model runs, tool calls, approvals, behind [`turn::TurnHost`].
//! * [`toolbox`] — the tools a turn offers; [`external`] — controller-owned tools.

pub(crate) mod conversation;
pub(crate) mod external;
pub(crate) mod toolbox;
pub(crate) mod turn;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use letta_app_server_protocol::{RuntimeEvent, RuntimeScope, ServerFrame};

use crate::config::Config;
use crate::history::{HistoryMessage, ToolCall};
use crate::provider::Providers;
use crate::store::{Store, StoreError};
use crate::sync::lock;
use crate::tools::{LocalTool, ToolKind};
use conversation::{Agent, Conversation};
use external::ExternalTools;

/// The result a tool call gets when the server stopped before it was answered.
const STALE_RESULT: &str =
    "This tool call was still pending when the server stopped. It may or may not have run; it was not run again.";

/// Identifies a client session (one socket, or a control + stream pair).
pub type SessionId = u64;

/// The one client a command came from: answers go straight to it.
pub trait Peer: Send + Sync {
    /// Its session id.
    fn id(&self) -> SessionId;
    /// Queues a direct frame (a response) for it.
    fn send_frame(&self, frame: ServerFrame);
    /// Queues a runtime event of `scope` for it alone.
    fn send_event(&self, scope: &RuntimeScope, event: &RuntimeEvent);
    /// Records `device` as replayed to it for `scope`; `false` if it equals the previous replay.
    fn note_replayed_device(&self, scope: &RuntimeScope, device: String) -> bool;
}

/// Everyone watching the conversations: the subscribers of each scope.
pub trait Audience: Send + Sync {
    /// Sends a runtime event to every subscriber of its scope.
    fn broadcast(&self, scope: &RuntimeScope, event: &RuntimeEvent);
    /// Whether any session is subscribed to `scope`.
    fn is_watched(&self, scope: &RuntimeScope) -> bool;
    /// Resolves once the subscribers of `scope` have taken what was sent to them (a stuck
    /// reader is left to its queue's limits).
    fn readers_ready<'a>(&'a self, scope: &'a RuntimeScope) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>>;
    /// Sends a direct frame to one session; `false` if it is not connected.
    fn send_to(&self, session: SessionId, frame: ServerFrame) -> bool;
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

/// The conversation runtimes and everything they share.
pub struct Engine {
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
    /// The clients watching.
    pub audience: Arc<dyn Audience>,
    /// Set once the server is stopping: no new turn starts from the queue.
    stopping: AtomicBool,
    conversations: Mutex<HashMap<RuntimeScope, Arc<Conversation>>>,
    /// Held while a conversation is loaded from the store, one per conversation being loaded.
    loading: Mutex<HashMap<RuntimeScope, Arc<tokio::sync::Mutex<()>>>>,
}

impl Engine {
    /// An engine over an open store, whose events go to `audience`.
    pub fn new(config: Config, store: Store, audience: Arc<dyn Audience>) -> Arc<Self> {
        let providers = Providers::new(config.providers.clone());
        Arc::new(Self {
            config,
            store,
            providers,
            tools: crate::tools::all().into_iter().map(Arc::from).collect(),
            external: ExternalTools::default(),
            audience,
            stopping: AtomicBool::new(false),
            conversations: Mutex::default(),
            loading: Mutex::default(),
        })
    }

    /// A session stopped watching `scopes`: each loaded conversation among them hears of it
    /// (see [`Conversation::session_closed`]).
    pub async fn session_left(self: &Arc<Self>, session: SessionId, scopes: Vec<RuntimeScope>, abort_its_turns: bool) {
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

    /// Sends every pending approval question of every conversation to a newly connected
    /// session, before it subscribes to anything (docs/protocol.md §1.5).
    pub async fn replay_pending_approvals(&self, peer: &dyn Peer) {
        let conversations: Vec<Arc<Conversation>> = lock(&self.conversations).values().cloned().collect();
        for conversation in conversations {
            conversation.replay_pending_approval(peer).await;
        }
    }

    /// One eviction sweep: drops the conversations that `sweeps` consecutive sweeps found idle
    /// with no subscriber (`is_watched` says which scopes have one; real Letta evicts idle
    /// conversation runtimes too, docs/protocol.md §3.3). Their state is in the store; the next
    /// use loads them again. Returns how many were dropped.
    pub fn evict_idle(&self, sweeps: u32, is_watched: impl Fn(&RuntimeScope) -> bool) -> usize {
        let mut conversations = lock(&self.conversations);
        let before = conversations.len();
        conversations.retain(|scope, conversation| !conversation.sweep(!is_watched(scope), sweeps));
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
        let (recoverable, stale): (Vec<ToolCall>, Vec<ToolCall>) = conversation::unanswered(&restored.history)
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
