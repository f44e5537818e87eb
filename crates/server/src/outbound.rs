//! The bounded outbound queue of one client session (docs/protocol.md §2.6).
//!
//! Runtime events are serialised once ([`EventFrame`]) and queued for every subscriber; the
//! session's writer assigns the per-session `event_seq` and the protocol crate appends the
//! envelope when it writes. The protocol table says which socket of a split session an event goes
//! to and whether it coalesces: while the queue is backed up, a coalescing event (a status
//! snapshot) is replaced by a newer one of the same type and scope. Past the frame limit while
//! the socket does not drain, or past the byte limit at any time, the session is closed with a
//! reason: deltas are never dropped silently.
//!
//! Model streams do not outrun their readers: once a quarter of the frame limit is queued, the
//! turn stops reading the model until the writer catches up ([`Outbound::drained`]). A reader
//! that takes nothing for [`Limits::patience`] stops holding the turn up and meets the limits.
//!
//! A session subscribed with `resume_after` is given a scope's numbered events only once they are
//! written to the store ([`crate::journal`]), later than they were made. So that it still gets
//! every frame in the order the server made them, each such event holds its place in the queue
//! from the moment it is made ([`Outbound::expect`]) until it is handed over
//! ([`Outbound::fill`]): frames made after it wait behind it (they count against the byte limit).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use letta_app_server_protocol::{Delivery, EVENTS, RuntimeEvent, RuntimeScope, SerializedEvent};
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

/// A runtime event serialised once for all its subscribers.
#[derive(Debug)]
pub struct EventFrame {
    /// Its scope.
    pub scope: RuntimeScope,
    /// How the protocol table delivers it.
    pub delivery: Delivery,
    /// Whether it is a `stream_delta` (counted in the metrics).
    pub is_delta: bool,
    /// Its `conversation_seq`, once a [journal](crate::journal) numbered it.
    pub conversation_seq: Option<u64>,
    /// The payload and scope, enveloped per session by the protocol crate.
    serialized: SerializedEvent,
}

impl EventFrame {
    /// Serialises `event` for `scope`.
    pub fn new(event: &RuntimeEvent, scope: &RuntimeScope) -> Self {
        let scope = scope.without_acting_user();
        Self {
            serialized: SerializedEvent::new(event, &scope),
            scope,
            is_delta: matches!(event, RuntimeEvent::StreamDelta(_)),
            conversation_seq: None,
            delivery: Delivery {
                coalesces: event.coalesces(),
                ..event.delivery()
            },
        }
    }

    /// An event a [journal](crate::journal) kept in the store: its `type`, whether it
    /// coalesced, its serialisation without the per-connection fields, its `conversation_seq`.
    /// `None` if `frame_type` names no runtime event (a store written by a later version).
    pub fn restored(scope: &RuntimeScope, frame_type: &str, coalesces: bool, prefix: String, seq: u64) -> Option<Self> {
        let info = EVENTS.iter().find(|event| event.name == frame_type)?;
        Some(Self {
            scope: scope.without_acting_user(),
            delivery: Delivery {
                coalesces,
                ..info.delivery
            },
            is_delta: info.name == "stream_delta",
            conversation_seq: Some(seq),
            serialized: SerializedEvent::from_prefix(info.name, prefix),
        })
    }

    /// The event's `type`.
    pub fn frame_type(&self) -> &'static str {
        self.serialized.frame_type()
    }

    /// Its serialisation without the per-connection fields (what a journal keeps in the store).
    pub fn prefix(&self) -> &str {
        self.serialized.prefix()
    }

    /// The complete frame for one session, emitted at `emitted_at`; with its `conversation_seq`
    /// for a session that subscribed with `resume_after` (`numbered`).
    pub fn render(&self, event_seq: u64, emitted_at: &str, numbered: bool) -> String {
        let conversation_seq = self.conversation_seq.filter(|_| numbered);
        (self.serialized).render(event_seq, emitted_at, uuid::Uuid::new_v4(), conversation_seq)
    }

    /// The bytes it is counted as in a queue.
    pub fn len(&self) -> usize {
        self.serialized.size_hint()
    }
}

/// Which socket of a split session a frame goes to (docs/protocol.md §1.10).
pub use letta_app_server_protocol::Channel;

/// One queued frame.
#[derive(Debug, Clone)]
pub enum Outgoing {
    /// A runtime event, enveloped when written.
    Event(Arc<EventFrame>),
    /// A runtime event for a session that subscribed to its scope with `resume_after`:
    /// enveloped with its `conversation_seq` too.
    Resumable(Arc<EventFrame>),
    /// A direct frame (response or notification), already serialised.
    Direct(Bytes),
}

impl Outgoing {
    /// The socket this frame is written to in a split session.
    pub fn route(&self) -> Channel {
        match self.event() {
            Some(event) => event.delivery.channel,
            None => Channel::Control,
        }
    }

    /// The runtime event, if it is one.
    pub fn event(&self) -> Option<&Arc<EventFrame>> {
        match self {
            Self::Event(event) | Self::Resumable(event) => Some(event),
            Self::Direct(_) => None,
        }
    }

    fn len(&self) -> usize {
        match self {
            Self::Event(event) | Self::Resumable(event) => event.len(),
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
    /// How long a producer waits for a writer that takes nothing.
    pub patience: Duration,
}

#[derive(Debug, Default)]
struct State {
    queue: VecDeque<Outgoing>,
    bytes: usize,
    closed: Option<(CloseCode, String)>,
    /// While a numbered event this session is owed is not handed over: it and every frame made
    /// after it, in order.
    waiting: VecDeque<Waiting>,
    /// The frames in `waiting` (places of events not handed over yet are not frames), and their
    /// bytes.
    waiting_frames: usize,
    waiting_bytes: usize,
}

/// A place in the queue while an owed numbered event is not handed over.
#[derive(Debug)]
enum Waiting {
    /// A frame made after an owed event.
    Frame(Outgoing),
    /// An event of journal `journal`, owed until it is handed over (`Some`).
    Event {
        journal: u64,
        event: Option<Arc<EventFrame>>,
    },
}

impl State {
    /// Adds a frame to `waiting`.
    fn wait(&mut self, frame: Outgoing) {
        self.waiting_frames += 1;
        self.waiting_bytes += frame.len();
        self.waiting.push_back(Waiting::Frame(frame));
    }

    /// Moves the frames at the head of `waiting` that nothing holds back any more to the queue.
    fn release(&mut self) {
        loop {
            let frame = match self.waiting.front() {
                Some(Waiting::Frame(_) | Waiting::Event { event: Some(_), .. }) => match self.waiting.pop_front() {
                    Some(Waiting::Frame(frame)) => frame,
                    Some(Waiting::Event { event: Some(event), .. }) => Outgoing::Resumable(event),
                    _ => return,
                },
                _ => return,
            };
            self.waiting_frames -= 1;
            self.waiting_bytes -= frame.len();
            self.bytes += frame.len();
            self.queue.push_back(frame);
        }
    }
}

/// The outbound queue of one session; cheap to share.
#[derive(Debug)]
pub struct Outbound {
    limits: Limits,
    /// Where coalesced and dropped frames, overflows and the depth at each batch are counted.
    metrics: Arc<Metrics>,
    state: Mutex<State>,
    ready: Notify,
    /// Notified whenever the writer takes a batch.
    taken: Notify,
    /// Cancelled when the queue is closed.
    closed: CancellationToken,
    /// Set when a producer gave up waiting for the writer; cleared when the writer takes frames.
    /// While set, producers do not wait for this queue.
    stalled: AtomicBool,
    /// Set while the writer waits for the socket to take more data: only then does a long queue
    /// mean a slow reader (a writer that merely has not run yet is not one).
    backed_up: AtomicBool,
}

impl Outbound {
    /// An empty queue, counting in `metrics`.
    pub fn new(limits: Limits, metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Self {
            limits,
            metrics,
            state: Mutex::default(),
            ready: Notify::new(),
            taken: Notify::new(),
            closed: CancellationToken::new(),
            stalled: AtomicBool::new(false),
            backed_up: AtomicBool::new(false),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues a frame, coalescing status snapshots; closes the session when a limit is passed.
    /// Behind an owed numbered event, it waits for that event.
    pub fn push(&self, frame: Outgoing) {
        let mut state = self.state();
        if state.closed.is_some() {
            self.metrics.frames_dropped.inc();
            return;
        }
        if !state.waiting.is_empty() {
            state.wait(frame);
            self.check_limits(&mut state);
            return;
        }
        // A session that subscribed with `resume_after` gets every event of the scope
        // (`Resumable`): those never coalesce.
        if let Outgoing::Event(event) = &frame
            && event.delivery.coalesces
            && state.queue.len() >= self.limits.coalesce_after
            && let Some(queued) = state.queue.iter_mut().rev().find(|queued| {
                matches!(queued, Outgoing::Event(q) if q.frame_type() == event.frame_type() && q.scope == event.scope)
            })
            // The latest queued frame of the type and scope is replaced only if it coalesces
            // itself: an `update_queue` with removals stays, or its removals would be lost (and
            // an older one is not replaced past it, which would reorder them).
            && matches!(queued, Outgoing::Event(q) if q.delivery.coalesces)
        {
            let old = std::mem::replace(queued, frame.clone());
            state.bytes = state.bytes + frame.len() - old.len();
            self.metrics.frames_coalesced.inc();
            return;
        }
        state.bytes += frame.len();
        state.queue.push_back(frame);
        self.check_limits(&mut state);
        drop(state);
        self.ready.notify_one();
    }

    /// Closes the session, dropping what it has queued, when a limit is passed: the frame limit
    /// while the socket is backed up, the byte limit at any time (frames waiting behind an owed
    /// event included).
    fn check_limits(&self, state: &mut State) {
        let backed_up = self.backed_up.load(Ordering::Relaxed);
        let frames = state.queue.len() + state.waiting_frames;
        if (backed_up && frames > self.limits.max_frames) || state.bytes + state.waiting_bytes > self.limits.max_bytes {
            state.closed = Some((
                CloseCode::Policy,
                format!(
                    "outbound queue overflow: over {} frames or {} bytes queued",
                    self.limits.max_frames, self.limits.max_bytes
                ),
            ));
            self.metrics.overflow_closes.inc();
            self.metrics.frames_dropped.inc_by(frames as u64);
            state.queue.clear();
            state.bytes = 0;
            state.waiting.clear();
            state.waiting_frames = 0;
            state.waiting_bytes = 0;
            self.closed.cancel();
        }
    }

    /// Holds places for `count` numbered events of journal `journal` that this session is owed:
    /// frames pushed from now on wait behind them.
    pub fn expect(&self, journal: u64, count: u64) {
        let mut state = self.state();
        if state.closed.is_some() {
            return;
        }
        for _ in 0..count {
            state.waiting.push_back(Waiting::Event { journal, event: None });
        }
    }

    /// Hands over the next owed event of journal `journal` (they are handed over in the order
    /// they were owed); it and what waited behind it go to the queue. One nothing was owed for
    /// is queued as it is.
    pub fn fill(&self, journal: u64, event: Arc<EventFrame>) {
        let mut state = self.state();
        if state.closed.is_some() {
            self.metrics.frames_dropped.inc();
            return;
        }
        let state = &mut *state;
        let place = state
            .waiting
            .iter_mut()
            .find(|waiting| matches!(waiting, Waiting::Event { journal: j, event: None } if *j == journal));
        match place {
            Some(Waiting::Event { event: place, .. }) => {
                state.waiting_frames += 1;
                state.waiting_bytes += event.len();
                *place = Some(event);
            }
            _ => {
                state.bytes += event.len();
                state.queue.push_back(Outgoing::Resumable(event));
            }
        }
        state.release();
        self.check_limits(state);
        self.ready.notify_one();
    }

    /// Gives up the places of every event of journal `journal` still owed (its subscription
    /// ended): what waited behind them goes to the queue.
    pub fn forget(&self, journal: u64) {
        let mut state = self.state();
        state
            .waiting
            .retain(|waiting| !matches!(waiting, Waiting::Event { journal: j, event: None } if *j == journal));
        state.release();
        drop(state);
        self.ready.notify_one();
    }

    /// Closes the queue: the writer sends what is queued, then a close frame with this code and
    /// reason. Frames pushed afterwards are dropped.
    pub fn close(&self, code: CloseCode, reason: impl Into<String>) {
        let mut state = self.state();
        if state.closed.is_none() {
            // What was made is sent before the close frame; the events still owed will not be.
            state
                .waiting
                .retain(|waiting| !matches!(waiting, Waiting::Event { event: None, .. }));
            state.release();
            state.closed = Some((code, reason.into()));
            self.closed.cancel();
        }
        drop(state);
        self.ready.notify_one();
    }

    /// The code and reason the queue was closed with, once it is.
    pub fn closed_with(&self) -> Option<(CloseCode, String)> {
        self.state().closed.clone()
    }

    /// Resolves once the queue is closed, by [`close`](Self::close) or by passing a limit.
    pub async fn closing(&self) {
        self.closed.cancelled().await;
    }

    /// Whether a quarter of the frame limit or more is queued and the writer is not stalled:
    /// producers that can wait (model streams) should.
    pub fn is_busy(&self) -> bool {
        if self.stalled.load(Ordering::Relaxed) {
            return false;
        }
        let state = self.state();
        state.closed.is_none() && state.queue.len() >= (self.limits.max_frames / 4).max(1)
    }

    /// Waits until the queue is no longer [busy](Self::is_busy), is closed, or the queue is closed, or the
    /// writer has taken nothing for [`Limits::patience`].
    pub async fn drained(&self) {
        loop {
            let taken = self.taken.notified();
            if !self.is_busy() {
                return;
            }
            if tokio::time::timeout(self.limits.patience, taken).await.is_err() {
                if !self.stalled.swap(true, Ordering::Relaxed) {
                    tracing::info!(
                        patience_ms = self.limits.patience.as_millis(),
                        "slow reader: took nothing in time, the model stream no longer waits for it"
                    );
                }
                return;
            }
        }
    }

    /// Waits, however long the writer takes, until less than a quarter of the frame limit and
    /// of the byte limit is queued, or the queue is closed. For a producer only this session
    /// reads (a terminal): it waits for its reader as a pseudo-terminal's writer does, so the
    /// queue never grows past a quarter of its limits plus one frame.
    pub async fn room(&self) {
        loop {
            let taken = self.taken.notified();
            {
                let state = self.state();
                if state.closed.is_some()
                    || (state.queue.len() < (self.limits.max_frames / 4).max(1)
                        && state.bytes < self.limits.max_bytes / 4)
                {
                    return;
                }
            }
            tokio::select! {
                () = taken => {}
                () = self.closed.cancelled() => return,
            }
        }
    }

    /// The metrics it counts in.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The most frames the queue holds while its socket is backed up.
    pub fn max_frames(&self) -> usize {
        self.limits.max_frames
    }

    /// The most bytes the queue holds before the session is closed.
    pub fn max_bytes(&self) -> usize {
        self.limits.max_bytes
    }

    /// Records whether the writer is waiting for the socket to drain.
    pub fn set_backed_up(&self, backed_up: bool) {
        self.backed_up.store(backed_up, Ordering::Relaxed);
    }

    /// Takes up to `max_frames` queued frames without waiting (none once closed).
    pub fn take(&self, max_frames: usize) -> Vec<Outgoing> {
        let mut state = self.state();
        if state.closed.is_some() {
            return Vec::new();
        }
        let count = state.queue.len().min(max_frames);
        let batch: Vec<Outgoing> = state.queue.drain(..count).collect();
        state.bytes -= batch.iter().map(Outgoing::len).sum::<usize>();
        drop(state);
        if count > 0 {
            self.stalled.store(false, Ordering::Relaxed);
            self.taken.notify_waiters();
        }
        batch
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
                    self.metrics.queue_depth.observe(state.queue.len() as f64);
                    let count = state.queue.len().min(max_frames);
                    let batch: Vec<Outgoing> = state.queue.drain(..count).collect();
                    state.bytes -= batch.iter().map(Outgoing::len).sum::<usize>();
                    drop(state);
                    self.stalled.store(false, Ordering::Relaxed);
                    self.taken.notify_waiters();
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

#[cfg(test)]
mod tests {
    use futures_util::FutureExt;
    use letta_app_server_protocol::{
        LoopState, LoopStatus, QueueRemoval, RemovalDisposition, UpdateLoopStatus, UpdateQueue,
    };

    use super::*;

    const PATIENCE: Duration = Duration::from_millis(500);

    fn queue(max_frames: usize) -> Arc<Outbound> {
        Outbound::new(
            Limits {
                coalesce_after: 64,
                max_frames,
                max_bytes: 1 << 24,
                patience: PATIENCE,
            },
            Arc::default(),
        )
    }

    fn direct() -> Outgoing {
        Outgoing::Direct(Bytes::from_static(b"{}"))
    }

    fn event(event: impl Into<RuntimeEvent>) -> Outgoing {
        Outgoing::Event(Arc::new(EventFrame::new(
            &event.into(),
            &RuntimeScope::new("agent-1", "conv-1"),
        )))
    }

    fn queue_update(removed: usize) -> Outgoing {
        let removal = QueueRemoval {
            client_message_id: "cm-1".into(),
            disposition: RemovalDisposition::Dequeued,
        };
        event(UpdateQueue {
            queue: Vec::new(),
            removed: vec![removal; removed],
        })
    }

    #[test]
    fn the_protocol_table_routes_and_coalesces_events() {
        let outbound = Outbound::new(
            Limits {
                coalesce_after: 1,
                ..queue(64).limits
            },
            Arc::default(),
        );
        let loop_status = || {
            event(UpdateLoopStatus {
                loop_status: LoopState {
                    status: LoopStatus::WaitingOnInput,
                    active_run_ids: Vec::new(),
                    client_message_ids_by_run_id: None,
                    executing_tool_call_ids: Vec::new(),
                },
            })
        };
        assert_eq!(loop_status().route(), Channel::Stream);
        assert_eq!(direct().route(), Channel::Control);
        for frame in [
            loop_status(),
            loop_status(),
            queue_update(0),
            queue_update(1),
            queue_update(0),
        ] {
            outbound.push(frame);
        }
        let kept: Vec<String> = outbound
            .take(10)
            .iter()
            .map(|frame| match frame {
                Outgoing::Event(event) | Outgoing::Resumable(event) => {
                    format!("{}:{}", event.frame_type(), event.delivery.coalesces)
                }
                Outgoing::Direct(_) => "direct".into(),
            })
            .collect();
        assert_eq!(
            kept,
            [
                "update_loop_status:true",
                "update_queue:true",
                "update_queue:false",
                "update_queue:true"
            ],
            "a newer snapshot replaces a queued one; removals are never replaced"
        );

        // The events of a scope subscribed with `resume_after` all arrive.
        let resumable = || match loop_status() {
            Outgoing::Event(event) => Outgoing::Resumable(event),
            other => other,
        };
        for frame in [resumable(), resumable(), resumable()] {
            outbound.push(frame);
        }
        assert_eq!(outbound.take(10).len(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn frames_made_after_an_owed_event_wait_for_it_and_go_out_in_order() {
        /// What the queue holds: the text of a direct frame, `#` for a numbered event.
        fn order(outbound: &Outbound) -> String {
            (outbound.take(100).iter())
                .map(|frame| match frame {
                    Outgoing::Direct(bytes) => String::from_utf8_lossy(bytes).into_owned(),
                    _ => "#".to_owned(),
                })
                .collect()
        }
        let numbered = || {
            let scope = RuntimeScope::new("agent-1", "conv-1");
            let empty = UpdateQueue {
                queue: Vec::new(),
                removed: Vec::new(),
            };
            Arc::new(EventFrame::new(&empty.into(), &scope))
        };
        let text = |text: &'static str| Outgoing::Direct(Bytes::from_static(text.as_bytes()));
        let outbound = queue(64);
        outbound.expect(7, 2);
        outbound.push(text("a"));
        outbound.fill(7, numbered());
        assert_eq!(order(&outbound), "#", "the second owed event holds `a` back");
        outbound.push(text("b"));
        outbound.fill(7, numbered());
        assert_eq!(order(&outbound), "#ab");
        outbound.push(text("c"));
        assert_eq!(order(&outbound), "c", "nothing owed: at once");

        // Another journal's events, and a subscription that ends with its events still owed.
        outbound.expect(8, 1);
        outbound.push(text("d"));
        outbound.expect(9, 1);
        outbound.push(text("e"));
        outbound.fill(9, numbered());
        assert_eq!(order(&outbound), "");
        outbound.forget(8);
        assert_eq!(order(&outbound), "d#e");

        // A close sends what was made; the owed events will not come.
        outbound.expect(7, 1);
        outbound.push(text("f"));
        outbound.close(CloseCode::Normal, "bye");
        let batch = outbound.next_batch(10).now_or_never().expect("ready").expect("frames");
        assert_eq!(batch.len(), 1);
        assert!(matches!(&batch[0], Outgoing::Direct(bytes) if &bytes[..] == b"f"));
    }

    #[tokio::test]
    async fn frames_waiting_behind_an_owed_event_count_against_the_byte_limit() {
        let outbound = Outbound::new(
            Limits {
                coalesce_after: 64,
                max_frames: 64,
                max_bytes: 10,
                patience: PATIENCE,
            },
            Arc::default(),
        );
        outbound.expect(1, 1);
        outbound.push(Outgoing::Direct(Bytes::from_static(b"0123456789")));
        assert!(outbound.closed_with().is_none());
        outbound.push(direct());
        assert_eq!(outbound.closed_with().map(|(code, _)| code), Some(CloseCode::Policy));
    }

    #[tokio::test]
    async fn places_of_owed_events_are_not_frames_against_the_frame_limit() {
        // A long catch-up owes many events at once, while its socket is backed up.
        let outbound = queue(4);
        outbound.set_backed_up(true);
        outbound.expect(1, 1000);
        outbound.push(direct());
        assert!(outbound.closed_with().is_none(), "one frame queued");
        for _ in 0..4 {
            outbound.push(direct());
        }
        assert_eq!(
            outbound.closed_with().map(|(code, _)| code),
            Some(CloseCode::Policy),
            "five frames"
        );
    }

    #[tokio::test]
    async fn a_producer_waits_for_the_writer_once_a_quarter_of_the_limit_is_queued() {
        let outbound = queue(8);
        outbound.push(direct());
        assert!(!outbound.is_busy());
        outbound.push(direct());
        assert!(outbound.is_busy(), "2 of 8 frames");

        let waiter = tokio::spawn({
            let outbound = outbound.clone();
            async move { outbound.drained().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        assert_eq!(outbound.next_batch(1).await.map(|batch| batch.len()), Ok(1));
        tokio::time::timeout(Duration::from_millis(1), waiter)
            .await
            .expect("the writer took a frame")
            .expect("no panic");
    }

    #[tokio::test(start_paused = true)]
    async fn a_writer_that_takes_nothing_stops_holding_the_producer_up() {
        let outbound = queue(8);
        for _ in 0..4 {
            outbound.push(direct());
        }
        let started = tokio::time::Instant::now();
        outbound.drained().await;
        assert_eq!(started.elapsed(), PATIENCE);
        assert!(!outbound.is_busy(), "stalled: nobody waits for it any more");
        outbound.drained().await;
        assert_eq!(started.elapsed(), PATIENCE);

        assert_eq!(outbound.take(1).len(), 1);
        assert!(outbound.is_busy(), "the writer moved again: 3 of 8 frames");
    }

    #[tokio::test(start_paused = true)]
    async fn a_terminal_waits_for_room_however_slow_the_writer_is() {
        let outbound = queue(8);
        outbound.push(direct());
        outbound.push(direct());
        let waiter = tokio::spawn({
            let outbound = outbound.clone();
            async move { outbound.room().await }
        });
        tokio::time::sleep(PATIENCE * 4).await;
        assert!(!waiter.is_finished(), "no patience: it waits for its reader");
        assert_eq!(outbound.take(1).len(), 1);
        tokio::time::timeout(Duration::from_millis(1), waiter)
            .await
            .expect("the writer took a frame")
            .expect("no panic");

        outbound.push(direct());
        outbound.close(CloseCode::Normal, "bye");
        tokio::time::timeout(Duration::from_millis(1), outbound.room())
            .await
            .expect("a closed queue holds nobody up");
    }

    #[tokio::test]
    async fn past_the_frame_limit_while_backed_up_the_queue_is_closed() {
        let outbound = queue(4);
        for _ in 0..6 {
            outbound.push(direct());
        }
        assert!(
            outbound.is_busy(),
            "not backed up: a writer that has not run yet is not slow"
        );
        outbound.set_backed_up(true);
        assert!(outbound.closing().now_or_never().is_none());
        outbound.push(direct());
        assert!(
            outbound.closing().now_or_never().is_some(),
            "the socket's reader learns at once"
        );
        let closed = outbound.next_batch(10).await.expect_err("closed");
        assert_eq!(closed.0, CloseCode::Policy);
        assert!(!outbound.is_busy());
        outbound.drained().await;
    }
}
