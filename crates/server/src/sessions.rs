//! Client sessions: who is connected, which scopes each one watches, and the fan-out of a
//! scope's events to its subscribers' outbound queues.
//!
//! The transport holds [`Sessions`] and one [`Client`] per connection, and hands each frame to
//! its client. Below, the commands see a client as a [`Caller`]; the engine sees the subscribers
//! only as an [`Audience`] and a command's client only as a [`Peer`].

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use letta_app_server_protocol::{ErrorCode, ErrorFrame, Resume, RuntimeEvent, RuntimeScope, ServerFrame};

use crate::commands::terminal::Terminals;
use crate::commands::watch::Watches;
use crate::commands::{self, AnswerResume, Caller};
use crate::config::{Config, ResumeLimits};
use crate::engine::conversation::Conversation;
use crate::engine::{Audience, Engine, Peer, ScopeError, SessionId};
use crate::journal::Journal;
use crate::metrics::{Metrics, Snapshot};
use crate::outbound::{EventFrame, Limits, Outbound, Outgoing};
use crate::store::Store;
use crate::sync::lock;

/// One client session.
#[derive(Debug)]
pub struct Session {
    /// Its id.
    pub id: SessionId,
    /// Its outbound queue.
    pub outbound: Arc<Outbound>,
    /// A digest of the device status last replayed to it per scope, to omit unchanged ones from
    /// `sync` (a digest, not the JSON: a connection may watch thousands of runtimes).
    replayed_device: Mutex<HashMap<RuntimeScope, u64>>,
    /// Its terminals, killed when it closes.
    terminals: Terminals,
    /// Its file watches, ended when it closes.
    watches: Watches,
    /// Places for its commands that run on their own (see [`crate::limits::MAX_DETACHED_COMMANDS`]).
    detached: Arc<tokio::sync::Semaphore>,
    /// Set when a new control session replaced it: its turns and queued inputs go with it,
    /// whichever of its own close and the replacement is handled first.
    abandoned: AtomicBool,
    /// Set when its client closed it on purpose: nothing waits for it to come back.
    left: AtomicBool,
}

impl Session {
    /// Queues a direct frame (a response or notification). One larger than half the session's
    /// outbound byte limit is replaced by an `error` frame saying so: no answer to one frame can
    /// close the socket it answers. (The limits on client input keep every answer far smaller.)
    pub fn send(&self, frame: impl Into<ServerFrame>) {
        let mut frame = frame.into();
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
            frame = ServerFrame::from(error.bounded());
            bytes = serde_json::to_vec(&frame).unwrap_or_default();
        }
        if let ServerFrame::Error(error) = &frame {
            let code = error.code.as_str();
            Metrics::count(&self.outbound.metrics().error_frames, "code", code);
            // The message can quote the client's input: only at debug.
            tracing::info!(code, request_id = error.request_id, "error frame sent");
            tracing::debug!(code, message = error.message, "error frame's message");
        }
        self.outbound.push(Outgoing::Direct(Bytes::from(bytes)));
    }

    /// Queues a runtime event for this session only.
    fn send_event(&self, scope: &RuntimeScope, event: &RuntimeEvent) {
        self.outbound
            .push(Outgoing::Event(Arc::new(EventFrame::new(event, scope))));
    }

    /// Marks it replaced by a new control session: when it closes, the turns it started are
    /// aborted even when other sessions watch them, and its queued inputs are removed
    /// (docs/protocol.md §1.10). Set before its close can be handled.
    pub fn abandon(&self) {
        self.abandoned.store(true, Ordering::SeqCst);
    }

    /// Marks it closed by its client on purpose (a close frame, normal or without a code): the
    /// turns only it watched end when it closes, even when it had subscribed with
    /// `resume_after` (no grace). Set before its close is handled.
    pub fn leave(&self) {
        self.left.store(true, Ordering::SeqCst);
    }

    /// Records `device` as replayed for `scope`; `false` if it equals the previous replay.
    fn note_replayed_device(&self, scope: &RuntimeScope, device: &str) -> bool {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::hash::DefaultHasher::new();
        device.hash(&mut hasher);
        let digest = hasher.finish();
        let mut replayed = lock(&self.replayed_device);
        replayed.insert(scope.clone(), digest) != Some(digest)
    }
}

/// The subscribers of one scope, and its [`Journal`] once a session subscribed to it with
/// `resume_after` (kept while its conversation is in memory).
#[derive(Default)]
struct Watch {
    sessions: Vec<SessionId>,
    journal: Option<Arc<Journal>>,
}

impl Watch {
    /// Whether a session is subscribed, or a resuming one left less than the grace ago.
    fn is_watched(&self) -> bool {
        !self.sessions.is_empty() || self.journal.as_ref().is_some_and(|journal| journal.lingers())
    }
}

/// The open sessions and their subscriptions: the engine's [`Audience`].
struct Watchers {
    sessions: Mutex<HashMap<SessionId, Arc<Session>>>,
    subscriptions: Mutex<HashMap<RuntimeScope, Watch>>,
    /// Where the journals are kept, and what they retain.
    store: Store,
    resume: ResumeLimits,
}

impl Watchers {
    /// The journal of `scope`, made now if it has none.
    fn journal(&self, watch: &mut Watch, scope: &RuntimeScope) -> Arc<Journal> {
        (watch
            .journal
            .get_or_insert_with(|| Journal::new(self.resume, Some((self.store.clone(), scope.clone())))))
        .clone()
    }

    /// The sessions subscribed to `scope`, and its journal.
    fn subscribers(&self, scope: &RuntimeScope) -> (Vec<Arc<Session>>, Option<Arc<Journal>>) {
        let subscriptions = lock(&self.subscriptions);
        let Some(watch) = subscriptions.get(scope) else {
            return (Vec::new(), None);
        };
        let sessions = lock(&self.sessions);
        let targets = (watch.sessions.iter())
            .filter_map(|id| sessions.get(id).cloned())
            .collect();
        (targets, watch.journal.clone())
    }
}

impl Audience for Watchers {
    /// Serialises the event once for every subscriber (and numbers and retains it, in a scope
    /// with a journal).
    fn broadcast(&self, scope: &RuntimeScope, event: &RuntimeEvent) {
        let (targets, journal) = self.subscribers(scope);
        if let Some(journal) = journal {
            let plain = targets.iter().map(|session| (session.id, &*session.outbound));
            journal.publish(EventFrame::new(event, scope), plain);
            return;
        }
        if targets.is_empty() {
            return;
        }
        let frame = Arc::new(EventFrame::new(event, scope));
        for session in targets {
            session.outbound.push(Outgoing::Event(frame.clone()));
        }
    }

    fn notify_everyone(&self, frame: ServerFrame) {
        let sessions: Vec<Arc<Session>> = lock(&self.sessions).values().cloned().collect();
        for session in sessions {
            session.send(frame.clone());
        }
    }

    fn notify(&self, scope: &RuntimeScope, frame: ServerFrame) {
        for session in self.subscribers(scope).0 {
            session.send(frame.clone());
        }
    }

    fn is_watched(&self, scope: &RuntimeScope) -> bool {
        lock(&self.subscriptions).get(scope).is_some_and(Watch::is_watched)
    }

    /// Resolves once no subscriber of `scope` is [busy](Outbound::is_busy), except one that has
    /// taken nothing for [`Config::slow_reader_patience`].
    fn readers_ready<'a>(&'a self, scope: &'a RuntimeScope) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        let outbounds: Vec<Arc<Outbound>> = {
            let subscriptions = lock(&self.subscriptions);
            let Some(watch) = subscriptions.get(scope) else {
                return Box::pin(std::future::ready(()));
            };
            let sessions = lock(&self.sessions);
            (watch.sessions.iter())
                .filter_map(|id| sessions.get(id))
                .filter(|session| session.outbound.is_busy())
                .map(|session| session.outbound.clone())
                .collect()
        };
        Box::pin(async move {
            for outbound in outbounds {
                outbound.drained().await;
            }
        })
    }

    fn send_to(&self, session: SessionId, frame: ServerFrame) -> bool {
        let Some(session) = lock(&self.sessions).get(&session).cloned() else {
            return false;
        };
        session.send(frame);
        true
    }

    fn restore<'a>(&'a self, scope: &'a RuntimeScope) -> Pin<Box<dyn Future<Output = bool> + Send + 'a>> {
        Box::pin(async move {
            let Ok(Some(stored)) = self.store.journal(scope).await else {
                return false;
            };
            let journal = Journal::restored(self.resume, self.store.clone(), scope.clone(), stored);
            let mut subscriptions = lock(&self.subscriptions);
            let watch = subscriptions.entry(scope.clone()).or_default();
            if watch.journal.is_some() {
                return false;
            }
            watch.journal = Some(journal);
            true
        })
    }
}

/// Every client session, over the engine they drive.
pub struct Sessions {
    engine: Arc<Engine>,
    watchers: Arc<Watchers>,
    next_session: AtomicU64,
}

impl Sessions {
    /// The sessions of a new engine over an open store.
    pub fn new(config: Config, store: Store) -> Arc<Self> {
        let watchers = Arc::new(Watchers {
            sessions: Mutex::default(),
            subscriptions: Mutex::default(),
            store: store.clone(),
            resume: config.resume,
        });
        let engine = Engine::new(config, store, watchers.clone());
        Arc::new(Self {
            engine,
            watchers,
            next_session: AtomicU64::new(0),
        })
    }

    /// The engine.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.engine.config
    }

    /// The server's metrics in the Prometheus text format, with the runtimes subscribed to and
    /// the conversations loaded now.
    pub fn metrics(&self) -> String {
        let subscribed_runtimes = (lock(&self.watchers.subscriptions).values())
            .filter(|watch| !watch.sessions.is_empty())
            .count();
        self.engine.metrics.render(Snapshot {
            subscribed_runtimes: i64::try_from(subscribed_runtimes).unwrap_or(i64::MAX),
            loaded_conversations: i64::try_from(self.engine.loaded_conversations()).unwrap_or(i64::MAX),
        })
    }

    /// Registers a new session, for a new client.
    pub fn open_session(self: &Arc<Self>) -> Arc<Client> {
        let id = self.next_session.fetch_add(1, Ordering::Relaxed);
        let config = self.config();
        let limits = Limits {
            coalesce_after: 64,
            max_frames: config.max_queued_frames,
            max_bytes: config.max_queued_bytes,
            patience: config.slow_reader_patience,
        };
        let session = Arc::new(Session {
            id,
            outbound: Outbound::new(limits, self.engine.metrics.clone()),
            replayed_device: Mutex::default(),
            terminals: Terminals::default(),
            watches: Watches::default(),
            detached: Arc::new(tokio::sync::Semaphore::new(crate::limits::MAX_DETACHED_COMMANDS)),
            abandoned: AtomicBool::new(false),
            left: AtomicBool::new(false),
        });
        lock(&self.watchers.sessions).insert(id, session.clone());
        self.engine.external.session_opened(id);
        Arc::new(Client {
            session,
            sessions: self.clone(),
        })
    }

    /// Forgets a closed session: its subscriptions and the turns only it was watching
    /// (docs/protocol.md §5 (g)); its queued inputs stay (docs/protocol.md §8.7), unless it
    /// was [abandoned](Session::abandon). A turn that only it watched, having subscribed with
    /// `resume_after`, goes on for the resume grace, and ends then if nobody came back
    /// (docs/protocol.md §2.2), unless its client [left](Session::leave) on purpose. Closing a
    /// session twice does nothing more.
    pub async fn close_session(&self, session: SessionId) {
        let Some(closed) = lock(&self.watchers.sessions).remove(&session) else {
            return;
        };
        closed.terminals.close();
        closed.watches.close();
        let abort_its_turns = closed.abandoned.load(Ordering::SeqCst);
        let may_come_back = !closed.left.load(Ordering::SeqCst);
        self.engine.external.session_closed(session);
        let (scopes, lingering) = {
            let mut subscriptions = lock(&self.watchers.subscriptions);
            let (mut scopes, mut lingering) = (Vec::new(), Vec::new());
            for (scope, watch) in subscriptions.iter_mut() {
                if let Some(position) = watch.sessions.iter().position(|s| *s == session) {
                    watch.sessions.remove(position);
                    scopes.push(scope.clone());
                    if let Some(journal) = &watch.journal
                        && journal.leave(session, may_come_back)
                        && journal.lingers()
                    {
                        lingering.push(scope.clone());
                    }
                }
            }
            subscriptions.retain(|_, watch| !watch.sessions.is_empty() || watch.journal.is_some());
            (scopes, lingering)
        };
        self.engine.session_left(session, scopes, abort_its_turns).await;
        if !lingering.is_empty() {
            // Once the grace is over, what nobody came back to watch ends as it would have.
            let engine = self.engine.clone();
            let grace = self.config().resume.grace;
            tokio::spawn(async move {
                tokio::time::sleep(grace).await;
                engine.session_left(session, lingering, false).await;
            });
        }
    }

    /// Sends every pending approval question to a newly connected client (docs/protocol.md §1.5).
    pub async fn replay_pending_approvals(&self, client: &Client) {
        self.engine.replay_pending_approvals(client).await;
    }

    /// Subscribes a session to a scope's runtime events, unless it has closed meanwhile (a
    /// command's handling can outlast its connection): a closed session must not count as a
    /// watcher. [`Sessions::close_session`] forgets the session before its subscriptions, and
    /// this checks it under the subscriptions' lock, so either it sees the close or the close
    /// sees its subscription.
    /// With `resuming`, the session joins the scope's journal (made now if it has none), which
    /// numbers the scope's events from then on.
    fn subscribe(&self, session: SessionId, scope: &RuntimeScope, resuming: bool) {
        let mut subscriptions = lock(&self.watchers.subscriptions);
        let Some(outbound) = lock(&self.watchers.sessions).get(&session).map(|s| s.outbound.clone()) else {
            return;
        };
        let watch = subscriptions.entry(scope.clone()).or_default();
        if !watch.sessions.contains(&session) {
            watch.sessions.push(session);
        }
        if resuming {
            self.watchers.journal(watch, scope).join(session, &outbound);
        }
    }

    /// The conversation runtime of a scope with `session` subscribed to it (see
    /// [`Sessions::subscribe`]). A conversation evicted between the lookup and the
    /// subscription is loaded again.
    pub async fn subscribed_conversation(
        &self,
        session: SessionId,
        scope: &RuntimeScope,
        resuming: bool,
    ) -> Result<Arc<Conversation>, ScopeError> {
        loop {
            let conversation = self.engine.conversation(scope).await?;
            self.subscribe(session, &conversation.scope, resuming);
            // Eviction checks the subscriptions before it marks a conversation: either it saw
            // this one, or the mark is visible now.
            if !conversation.is_evicted() {
                return Ok(conversation);
            }
        }
    }

    /// One eviction sweep (see [`Engine::evict_idle`]), with the subscriptions held so that no
    /// subscription slips in between the check and the mark. The journals of the conversations
    /// no longer in memory (evicted now, or deleted) go too, from memory and from the store: a
    /// client that comes back to them gets the state replay.
    pub fn evict_idle(&self, sweeps: u32) -> usize {
        let mut subscriptions = lock(&self.watchers.subscriptions);
        let evicted = self
            .engine
            .evict_idle(sweeps, |scope| subscriptions.get(scope).is_some_and(Watch::is_watched));
        subscriptions.retain(|scope, watch| {
            let keep =
                watch.is_watched() || self.engine.loaded_conversation(scope).is_some() || self.engine.is_loading(scope);
            if !keep && watch.journal.is_some() {
                // Deleted in the background, after any write of it already queued.
                drop(self.watchers.store.delete_journal(scope));
            }
            keep
        });
        evicted
    }

    /// Answers a subscription to `scope` made with `resume_after` (see [`Journal::answer`]).
    fn answer_resuming(&self, session: SessionId, scope: &RuntimeScope, cursor: u64, send: AnswerResume<'_>) -> Resume {
        let journal = (lock(&self.watchers.subscriptions).get(scope)).and_then(|watch| watch.journal.clone());
        match journal {
            Some(journal) => journal.answer(session, cursor, send),
            // Evicted meanwhile (the session left): a first subscription's answer.
            None => {
                let resume = Resume {
                    resumed: false,
                    last_seq: 0,
                    oldest_retained: 1,
                };
                send(resume);
                resume
            }
        }
    }
}

/// A connected client: its session, over the sessions it belongs to. The transport holds one
/// per connection and hands it each frame; commands see it as their [`Caller`].
pub struct Client {
    /// Its session.
    pub session: Arc<Session>,
    sessions: Arc<Sessions>,
}

impl Client {
    /// Handles one text frame from this client.
    pub async fn handle_text(self: &Arc<Self>, text: &str) {
        let caller: Arc<dyn Caller> = self.clone();
        commands::handle_text(&caller, text).await;
    }
}

impl Peer for Client {
    fn id(&self) -> SessionId {
        self.session.id
    }

    fn send_frame(&self, frame: ServerFrame) {
        self.session.send(frame);
    }

    fn send_event(&self, scope: &RuntimeScope, event: &RuntimeEvent) {
        self.session.send_event(scope, event);
    }

    fn note_replayed_device(&self, scope: &RuntimeScope, device: &str) -> bool {
        self.session.note_replayed_device(scope, device)
    }
}

impl Caller for Client {
    fn engine(&self) -> &Arc<Engine> {
        &self.sessions.engine
    }

    fn subscribe<'a>(
        &'a self,
        scope: &'a RuntimeScope,
        resuming: bool,
    ) -> Pin<Box<dyn Future<Output = Result<Arc<Conversation>, ScopeError>> + Send + 'a>> {
        Box::pin(self.sessions.subscribed_conversation(self.session.id, scope, resuming))
    }

    fn answer_resuming(&self, scope: &RuntimeScope, cursor: u64, send: AnswerResume<'_>) -> Resume {
        (self.sessions).answer_resuming(self.session.id, &scope.without_acting_user(), cursor, send)
    }

    fn as_peer(&self) -> &dyn Peer {
        self
    }

    fn terminals(&self) -> &Terminals {
        &self.session.terminals
    }

    fn watches(&self) -> &Watches {
        &self.session.watches
    }

    fn room(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(self.session.outbound.room())
    }

    fn detached(&self) -> &Arc<tokio::sync::Semaphore> {
        &self.session.detached
    }
}
