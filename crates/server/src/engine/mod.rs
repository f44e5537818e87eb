//! The engine: the registry of conversation runtimes and what they share (store, providers,
//! tools, external tool registrations). It knows the clients only through two narrow
//! interfaces that the sessions layer implements: [`Audience`] (everyone watching a scope) and
//! [`Peer`] (the one client a command came from).
//!
//! * [`conversation`] — one conversation: queue, device and loop state, the frames each change
//!   produces.
//! * [`turn`] — one turn: model runs, tool calls, approvals, behind [`turn::TurnHost`].
//! * [`toolbox`] — the tools a turn offers; [`external`] — controller-owned tools.
//! * [`agents`] — creating, updating, showing and deleting agents.
//! * [`settings`] — server-wide settings (boot directory, experiments, reflection);
//!   [`memfs`] — agents' memory repositories.
//! * [`cron`] — scheduled prompts and the scheduler that fires them.
//! * [`subagents`] — conversations that work for another conversation's agent; `delegate` —
//!   launching one; [`shells`] — background shell commands; `notices` — the notification of a
//!   background task's end.

pub(crate) mod agents;
pub(crate) mod catalog;
pub(crate) mod clients;
pub(crate) mod context;
pub(crate) mod conversation;
pub(crate) mod cron;
mod delegate;
pub(crate) mod external;
pub(crate) mod memfs;
mod notices;
pub(crate) mod settings;
pub(crate) mod shells;
pub(crate) mod subagents;
pub(crate) mod toolbox;
pub(crate) mod turn;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use letta_app_server_protocol::{JsonObject, RuntimeScope};

use crate::config::Config;
use crate::history::{HistoryMessage, ToolCall};
use crate::store::{Store, StoreError};
use crate::sync::lock;
use crate::tools::ToolKind;
pub use clients::{Audience, Peer, SessionId};
pub use context::Context;
use conversation::Conversation;

/// The result a tool call gets when the server stopped before it was answered.
const STALE_RESULT: &str =
    "This tool call was still pending when the server stopped. It may or may not have run; it was not run again.";

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

/// The registry of conversation runtimes, over the [`Context`] they share (which it derefs to,
/// so the layers above reach the store, the configuration and the external tools through it).
pub struct Engine {
    context: Arc<Context>,
    conversations: Mutex<HashMap<RuntimeScope, Arc<Conversation>>>,
    /// Held while a conversation is loaded from the store, one per conversation being loaded.
    loading: Mutex<HashMap<RuntimeScope, Arc<tokio::sync::Mutex<()>>>>,
    /// Agents being deleted: none of their conversations loads (see [`Engine::forget_agent`]).
    deleting: Mutex<HashSet<String>>,
}

impl std::ops::Deref for Engine {
    type Target = Arc<Context>;

    fn deref(&self) -> &Arc<Context> {
        &self.context
    }
}

impl Engine {
    /// An engine over an open store, whose events go to `audience`.
    pub fn new(config: Config, store: Store, audience: Arc<dyn Audience>) -> Arc<Self> {
        let engine = Arc::new(Self {
            context: Arc::new(Context::new(config, store, audience)),
            conversations: Mutex::default(),
            loading: Mutex::default(),
            deleting: Mutex::default(),
        });
        engine.subagents.bind(&engine);
        engine.shells.bind(&engine);
        engine
    }

    /// A session stopped watching `scopes`: each loaded conversation among them hears of it
    /// (see [`Conversation::session_closed`]).
    pub async fn session_left(self: &Arc<Self>, session: SessionId, scopes: Vec<RuntimeScope>, abort_its_turns: bool) {
        for scope in scopes {
            let conversation = lock(&self.conversations).get(&scope).cloned();
            if let Some(conversation) = conversation {
                conversation
                    .session_closed(&self.context, session, abort_its_turns)
                    .await;
            }
        }
    }

    /// Stops every turn (their output so far is saved) and waits, up to `grace`, for them to end
    /// and for the store to finish its writes.
    pub async fn shutdown(self: &Arc<Self>, grace: std::time::Duration) {
        self.stop();
        self.shells.stop_all(|_| true);
        let conversations = self.loaded();
        for conversation in &conversations {
            conversation.abort(&self.context, None, None).await;
        }
        let deadline = tokio::time::Instant::now() + grace;
        for conversation in &conversations {
            while conversation.has_turn().await && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
        // Stopped subagents queue their notifications on their parents.
        while self.subagents.unannounced() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let _ = self.store.flush().await;
    }

    /// Sends every pending approval question of every conversation to a newly connected
    /// session, before it subscribes to anything (docs/protocol.md §1.5).
    pub async fn replay_pending_approvals(&self, peer: &dyn Peer) {
        let conversations = self.loaded();
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

    /// Whether the conversation of `scope` is being loaded.
    pub fn is_loading(&self, scope: &RuntimeScope) -> bool {
        lock(&self.loading).contains_key(scope)
    }

    /// The conversations in memory.
    pub fn loaded(&self) -> Vec<Arc<Conversation>> {
        lock(&self.conversations).values().cloned().collect()
    }

    /// The conversation of `scope`, if it is in memory.
    pub fn loaded_conversation(&self, scope: &RuntimeScope) -> Option<Arc<Conversation>> {
        lock(&self.conversations).get(&scope.without_acting_user()).cloned()
    }

    /// The working directory of `scope`, whether or not it is in memory: its own, else the boot
    /// working directory.
    pub async fn scope_cwd(&self, scope: &RuntimeScope) -> Result<String, StoreError> {
        if let Some(conversation) = self.loaded_conversation(scope) {
            return Ok(conversation.cwd().await);
        }
        let own = self.store.scope_cwd(&scope.without_acting_user()).await?;
        Ok(own.unwrap_or_else(|| self.settings.boot_cwd()))
    }

    /// How many conversations are in memory.
    pub fn loaded_conversations(&self) -> usize {
        lock(&self.conversations).len()
    }

    /// The conversation runtime of a scope, loading it from the store on first use.
    pub async fn conversation(self: &Arc<Self>, scope: &RuntimeScope) -> Result<Arc<Conversation>, ScopeError> {
        let key = scope.without_acting_user();
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
        let loaded = match self.load(&key).await {
            Ok(conversation) => {
                // A resumable stream kept in the store numbers its events from where it stopped;
                // its clients learn the state it is in now (after a restart, it changed).
                let restored = self.audience.restore(&key).await;
                let conversation = Arc::new(conversation);
                lock(&self.conversations).insert(key.clone(), conversation.clone());
                if restored {
                    conversation.announce_state(&self.context).await;
                }
                Ok(conversation)
            }
            Err(error) => Err(error),
        };
        // Only once it is in memory (or failed to load): a load starting now finds it there.
        let mut loading = lock(&self.loading);
        if loading.get(&key).is_some_and(|current| Arc::ptr_eq(current, &gate)) {
            loading.remove(&key);
        }
        loaded
    }

    /// The stored conversation of `key`, which must belong to its agent (or, for `agent_id:
    /// null`, to none).
    pub async fn stored_conversation(&self, key: &RuntimeScope) -> Result<JsonObject, ScopeError> {
        let conversation = self
            .store
            .conversation(key.conversation_id.clone())
            .await?
            .ok_or_else(|| ScopeError::UnknownConversation(key.conversation_id.clone()))?;
        let owner = conversation.get("agent_id").and_then(|v| v.as_str());
        if owner != key.agent_id.as_deref() {
            return Err(ScopeError::WrongAgent {
                conversation: key.conversation_id.clone(),
                owner: owner.unwrap_or("null").to_owned(),
                agent: key.agent_id.as_deref().unwrap_or("null").to_owned(),
            });
        }
        Ok(conversation)
    }

    /// Loads a conversation runtime from the store, once its agent and conversation exist.
    async fn load(self: &Arc<Self>, key: &RuntimeScope) -> Result<Conversation, ScopeError> {
        match &key.agent_id {
            Some(agent_id) if lock(&self.deleting).contains(agent_id) => {
                return Err(ScopeError::UnknownAgent(agent_id.clone()));
            }
            Some(agent_id) => {
                self.store
                    .agent(agent_id.clone())
                    .await?
                    .ok_or_else(|| ScopeError::UnknownAgent(agent_id.clone()))?;
                if key.conversation_id != "default" {
                    self.stored_conversation(key).await?;
                }
            }
            None => {
                self.stored_conversation(key).await?;
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
                    .any(|loaded| loaded.tool.name() == call.name && loaded.tool.kind() == ToolKind::Interactive)
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
        let toolset_preference = self.store.toolset_preference(key).await?;
        Ok(Conversation::new(key.clone(), restored, recoverable, &self.context)
            .with_toolset_preference(toolset_preference))
    }
}
