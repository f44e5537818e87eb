//! The bounded outbound queue of one client session (REFERENCE §2.6).
//!
//! Runtime events are serialised once ([`EventFrame`]) and queued for every subscriber; the
//! session's writer assigns the per-session `event_seq` and appends the envelope when it writes.
//! While the queue is backed up, a status frame is replaced by a newer one of the same type and
//! scope. Past the frame limit while the socket does not drain, or past the byte limit at any
//! time, the session is closed with a reason: deltas are never dropped silently.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use letta_app_server_protocol::{RuntimeEvent, RuntimeScope, UpdateQueue};
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// A runtime event serialised once for all its subscribers.
#[derive(Debug)]
pub struct EventFrame {
    /// The event's `type`.
    pub frame_type: &'static str,
    /// Its scope.
    pub scope: RuntimeScope,
    /// Whether a newer frame of the same type and scope may replace it while queued.
    pub coalesces: bool,
    /// `{"type":…,<payload fields>,"runtime":{…}` — everything but the per-session fields.
    prefix: String,
}

impl EventFrame {
    /// Serialises `event` for `scope`.
    pub fn new(event: &RuntimeEvent, scope: &RuntimeScope) -> Self {
        let coalesces = match event {
            RuntimeEvent::UpdateDeviceStatus(_)
            | RuntimeEvent::UpdateLoopStatus(_)
            | RuntimeEvent::UpdateSubagentState(_) => true,
            RuntimeEvent::UpdateQueue(UpdateQueue { removed, .. }) => removed.is_empty(),
            _ => false,
        };
        let mut prefix = serde_json::to_string(event).unwrap_or_default();
        prefix.pop(); // the closing brace; the envelope follows
        prefix.push_str(",\"runtime\":");
        let scope = RuntimeScope::new(scope.agent_id.clone(), scope.conversation_id.clone());
        prefix.push_str(&serde_json::to_string(&scope).unwrap_or_default());
        Self {
            frame_type: event.frame_type(),
            scope,
            coalesces,
            prefix,
        }
    }

    /// The complete frame for one session, emitted at `emitted_at`.
    pub fn render(&self, event_seq: u64, emitted_at: &str) -> String {
        use std::fmt::Write as _;
        let mut out = String::with_capacity(self.prefix.len() + 140);
        out.push_str(&self.prefix);
        let key = uuid::Uuid::new_v4();
        let _ = write!(
            out,
            ",\"event_seq\":{event_seq},\"emitted_at\":\"{emitted_at}\",\"idempotency_key\":\"{}:{event_seq}:{key}\"}}",
            self.frame_type
        );
        out
    }

    fn len(&self) -> usize {
        self.prefix.len() + 140
    }
}

/// Which socket of a split session a frame goes to (REFERENCE §1.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Responses, approvals, `turn_finished`, tool calls.
    Control,
    /// Stream deltas and status snapshots.
    Stream,
}

/// One queued frame.
#[derive(Debug, Clone)]
pub enum Outgoing {
    /// A runtime event, enveloped when written.
    Event(Arc<EventFrame>),
    /// A direct frame (response or notification), already serialised.
    Direct(Bytes),
}

impl Outgoing {
    /// The socket this frame is written to in a split session.
    pub fn route(&self) -> Route {
        match self {
            Self::Event(event) => match event.frame_type {
                "stream_delta"
                | "update_device_status"
                | "update_loop_status"
                | "update_queue"
                | "update_subagent_state" => Route::Stream,
                _ => Route::Control,
            },
            Self::Direct(_) => Route::Control,
        }
    }

    fn len(&self) -> usize {
        match self {
            Self::Event(event) => event.len(),
            Self::Direct(bytes) => bytes.len(),
        }
    }
}

/// Limits of one outbound queue.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Status frames coalesce only while at least this many frames wait (a reader that keeps up
    /// sees every transition).
    pub coalesce_after: usize,
    /// Frames queued at most.
    pub max_frames: usize,
    /// Bytes queued at most.
    pub max_bytes: usize,
}

#[derive(Debug, Default)]
struct State {
    queue: VecDeque<Outgoing>,
    bytes: usize,
    closed: Option<(CloseCode, String)>,
}

/// The outbound queue of one session; cheap to share.
#[derive(Debug)]
pub struct Outbound {
    limits: Limits,
    state: Mutex<State>,
    ready: Notify,
    /// Set while the writer waits for the socket to take more data: only then does a long queue
    /// mean a slow reader (a writer that merely has not run yet is not one).
    backed_up: AtomicBool,
}

impl Outbound {
    /// An empty queue.
    pub fn new(limits: Limits) -> Arc<Self> {
        Arc::new(Self {
            limits,
            state: Mutex::default(),
            ready: Notify::new(),
            backed_up: AtomicBool::new(false),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues a frame, coalescing status snapshots; closes the session when a limit is passed.
    pub fn push(&self, frame: Outgoing) {
        let mut state = self.state();
        if state.closed.is_some() {
            return;
        }
        if let Outgoing::Event(event) = &frame
            && event.coalesces
            && state.queue.len() >= self.limits.coalesce_after
            && let Some(queued) = state.queue.iter_mut().rev().find(|queued| {
                matches!(queued, Outgoing::Event(q) if q.frame_type == event.frame_type && q.scope == event.scope)
            })
        {
            let old = std::mem::replace(queued, frame.clone());
            state.bytes = state.bytes + frame.len() - old.len();
            return;
        }
        state.bytes += frame.len();
        state.queue.push_back(frame);
        let backed_up = self.backed_up.load(Ordering::Relaxed);
        if (backed_up && state.queue.len() > self.limits.max_frames) || state.bytes > self.limits.max_bytes {
            state.closed = Some((
                CloseCode::Policy,
                format!(
                    "outbound queue overflow: over {} frames or {} bytes queued",
                    self.limits.max_frames, self.limits.max_bytes
                ),
            ));
            state.queue.clear();
            state.bytes = 0;
        }
        drop(state);
        self.ready.notify_one();
    }

    /// Closes the queue: the writer sends what is queued, then a close frame with this code and
    /// reason. Frames pushed afterwards are dropped.
    pub fn close(&self, code: CloseCode, reason: impl Into<String>) {
        let mut state = self.state();
        if state.closed.is_none() {
            state.closed = Some((code, reason.into()));
        }
        drop(state);
        self.ready.notify_one();
    }

    /// Records whether the writer is waiting for the socket to drain.
    pub fn set_backed_up(&self, backed_up: bool) {
        self.backed_up.store(backed_up, Ordering::Relaxed);
    }

    /// Waits for queued frames and takes up to `max_frames` of them (at least one), so the
    /// writer can send a burst with one flush; once the queue is closed and drained, `Err` with
    /// the close code and reason.
    pub async fn next_batch(&self, max_frames: usize) -> Result<Vec<Outgoing>, (CloseCode, String)> {
        loop {
            let notified = self.ready.notified();
            {
                let mut state = self.state();
                if !state.queue.is_empty() {
                    let count = state.queue.len().min(max_frames);
                    let batch: Vec<Outgoing> = state.queue.drain(..count).collect();
                    state.bytes -= batch.iter().map(Outgoing::len).sum::<usize>();
                    return Ok(batch);
                }
                if let Some(closed) = &state.closed {
                    return Err(closed.clone());
                }
            }
            notified.await;
        }
    }
}
