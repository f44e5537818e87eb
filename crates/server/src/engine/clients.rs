//! How the engine reaches the clients: two narrow interfaces that the sessions layer implements,
//! [`Audience`] (everyone watching a scope) and [`Peer`] (the one client a command came from).

use std::future::Future;
use std::pin::Pin;

use letta_app_server_protocol::{RuntimeEvent, RuntimeScope, ServerFrame};

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
    fn note_replayed_device(&self, scope: &RuntimeScope, device: &str) -> bool;
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
    /// Sends a direct frame (no envelope) to every connected session.
    fn notify_everyone(&self, frame: ServerFrame);
    /// Sends a direct frame (no envelope) to every subscriber of `scope`.
    fn notify(&self, scope: &RuntimeScope, frame: ServerFrame);
    /// Sends a direct frame to one session; `false` if it is not connected.
    fn send_to(&self, session: SessionId, frame: ServerFrame) -> bool;
    /// Called as the conversation of `scope` is loaded, before any of its events: restores the
    /// retained events of its resumable stream from the store, if it has them; `true` then.
    fn restore<'a>(&'a self, scope: &'a RuntimeScope) -> Pin<Box<dyn Future<Output = bool> + Send + 'a>>;
}
