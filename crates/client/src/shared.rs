//! State shared by a client's handles and its connection tasks: the link to the socket writer,
//! requests waiting for answers, event subscribers, the runtimes to restore after a reconnect
//! and the approvals pending.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use crate::events::{Item, RawEvents};
use crate::frame::RawFrame;
use crate::options::Options;
use crate::tools::ExternalTools;
use crate::tracked::{MAX_TRACKED, Tracked};
use crate::types::{ExternalToolGroup, RuntimeScope};
use crate::{Error, Gap};

/// Frames queued for the socket writer; senders wait when it is full.
pub(crate) const OUTBOUND_CAPACITY: usize = 256;

/// Pending approvals a client records at most; past it the oldest is forgotten (a stream made
/// later does not get it, and a stream that had it gets its next replay again).
const MAX_APPROVALS: usize = 1024;

/// Room a paced stream keeps beyond its capacity: the most items one socket read can deliver
/// (a split pair's held events, released at once) and a few gaps.
const PACED_HEADROOM: usize = crate::connection::MAX_EARLY + 16;

/// The client's shared core.
pub(crate) struct Shared {
    pub options: Options,
    pub tools: ExternalTools,
    /// Cancelled when the client closes.
    pub shutdown: CancellationToken,
    next_id: Arc<AtomicU64>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The current connection's writer; `None` while disconnected.
    link: Option<mpsc::Sender<Message>>,
    /// Why the client ended (closed, or the connection lost for good).
    ended: Option<Error>,
    pending: HashMap<String, Pending>,
    subscribers: Vec<Subscriber>,
    runtimes: HashMap<RuntimeScope, InUse>,
    /// Commands sent awaiting the answer that changes `runtimes`, by `request_id`.
    tracked: HashMap<String, Tracked>,
    /// The id of the next stream.
    next_subscriber: u64,
    /// The approvals pending, oldest first.
    approvals: Vec<Approval>,
}

/// An approval the server asked for on the current connection (a `control_request` with a
/// scope and a `request_id`) and, as far as this client knows, has not settled: its runtime's
/// device status still lists it in `pending_control_requests`, and its turn has not finished.
struct Approval {
    /// The `control_request`, as last received.
    frame: RawFrame,
    /// The streams it was delivered to: the server sends it again on every `sync` and
    /// `runtime_start` of its runtime, and a stream delivers it once.
    delivered: HashSet<u64>,
}

impl Approval {
    fn is_for(&self, scope: &RuntimeScope) -> bool {
        self.frame.is_for(scope)
    }
}

/// A request waiting for its answer.
struct Pending {
    /// Frame types that answer it (besides `error`); empty: any frame with its id.
    answers: &'static [&'static str],
    reply: oneshot::Sender<Result<RawFrame, Error>>,
}

/// One event stream.
struct Subscriber {
    id: u64,
    filter: Option<RuntimeScope>,
    tx: mpsc::Sender<Item>,
    /// Frames skipped because the stream was full, not yet reported (shared with the stream,
    /// which reports them once it has drained what came before them).
    missed: Arc<AtomicU64>,
    /// Reading waits while the stream is full (see [`Shared::make_room`]).
    paced: bool,
    /// How long reading waits for a paced stream at a time; `None`: as long as it takes.
    patience: Option<Arc<Patience>>,
}

/// What became of an item offered to a stream.
#[derive(PartialEq, Eq)]
enum Offer {
    Sent,
    /// The stream was full; the item is counted as missed.
    Skipped,
    /// The stream was dropped.
    Closed,
}

impl Subscriber {
    /// Whether `item` is for this stream: gaps are for every stream, frames for those without
    /// a filter or of the filter's runtime.
    fn wants(&self, item: &Item) -> bool {
        match (&self.filter, item) {
            (Some(filter), Ok(frame)) => frame.is_for(filter),
            _ => true,
        }
    }

    /// Offers `item`, reporting first the items skipped since the last one that fitted.
    fn offer(&self, item: &Item) -> Offer {
        let missed = self.missed.swap(0, Ordering::AcqRel);
        if missed > 0 {
            match self.tx.try_send(Err(Gap::Lagged { missed })) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    self.missed.fetch_add(missed + 1, Ordering::AcqRel);
                    return Offer::Skipped;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => return Offer::Closed,
            }
        }
        match self.tx.try_send(item.clone()) {
            Ok(()) => Offer::Sent,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.missed.fetch_add(1, Ordering::AcqRel);
                Offer::Skipped
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Offer::Closed,
        }
    }
}

/// A paced stream's limit on holding up reading.
struct Patience {
    /// The longest wait for room.
    wait: Duration,
    /// Set when a wait ran out; reading no longer waits for the stream until it has drained
    /// half its buffer.
    waited_out: AtomicBool,
}

/// How this client uses a runtime, to restore it on a new connection.
#[derive(Debug, Clone, Default)]
pub(crate) struct InUse {
    pub subscribed: Option<Subscribed>,
    /// The external tools this client registered for it (registrations die with a socket).
    pub tools: Option<Vec<ExternalToolGroup>>,
}

impl InUse {
    /// Subscribed by `runtime_start`, which registered `tools` (or none).
    pub fn started(&mut self, tools: Option<Vec<ExternalToolGroup>>) {
        self.subscribed = Some(Subscribed::RuntimeStart);
        self.tools = tools;
    }

    /// Subscribed by `sync`, unless `runtime_start` subscribed it already.
    pub fn synced(&mut self) {
        self.subscribed.get_or_insert(Subscribed::Sync);
    }

    /// Its tools replaced by `runtime_external_tools_update`.
    pub fn registered(&mut self, tools: Vec<ExternalToolGroup>) {
        self.tools = Some(tools);
    }
}

/// How a runtime was subscribed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Subscribed {
    RuntimeStart,
    Sync,
}

impl Shared {
    /// A client's core; request ids are numbered from `next_id`.
    pub fn new(options: Options, next_id: Arc<AtomicU64>) -> Self {
        Self {
            options,
            tools: ExternalTools::default(),
            shutdown: CancellationToken::new(),
            next_id,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// `"<prefix>-<n>"`, `n` counting from 1 per client, as Letta Code's helper numbers them.
    pub fn next_request_id(&self, prefix: &str) -> String {
        format!("{prefix}-{}", self.next_id.fetch_add(1, Ordering::Relaxed))
    }

    // ----- connection ----------------------------------------------------------------------

    /// A new connection is up: commands go to `link` from now on.
    pub fn connected(&self, link: mpsc::Sender<Message>) {
        self.state().link = Some(link);
    }

    /// The connection dropped: pending requests fail, streams get a [`Gap::Disconnected`], and
    /// the approvals pending are forgotten (a new connection gets those still pending again).
    pub fn disconnected(&self, reason: &str) {
        let mut state = self.state();
        state.link = None;
        state.tracked.clear();
        state.approvals.clear();
        for (_, pending) in state.pending.drain() {
            let _ = pending.reply.send(Err(Error::Disconnected {
                reason: reason.to_owned(),
            }));
        }
        state.deliver(&Err(Gap::Disconnected {
            reason: reason.to_owned(),
        }));
    }

    /// Tells every stream that a new connection is up.
    pub fn reconnected(&self) {
        self.state().deliver(&Err(Gap::Reconnected));
    }

    /// The client is done (closed, or the connection is gone for good): pending requests fail
    /// with `error`, streams end.
    pub fn finish(&self, error: Error) {
        let mut state = self.state();
        state.link = None;
        state.tracked.clear();
        for (_, pending) in state.pending.drain() {
            let _ = pending.reply.send(Err(error.clone()));
        }
        state.subscribers.clear();
        state.approvals.clear();
        state.ended = Some(error);
    }

    /// Closes the client: no more commands, and the connection task stops.
    pub fn close(&self) {
        self.finish(Error::Closed);
        self.shutdown.cancel();
    }

    pub fn is_closed(&self) -> bool {
        self.state().ended.is_some()
    }

    // ----- sending -------------------------------------------------------------------------

    /// Queues a frame for the socket. A `runtime_start`, `sync` or `runtime_external_tools_update`
    /// is tracked until its answer, so that a reconnect restores what it did.
    pub async fn send(&self, text: String) -> Result<(), Error> {
        let link = self.state().link()?;
        let tracked = self.track(&text);
        let sent = link.send(Message::text(text)).await.map_err(|_| self.gone());
        if sent.is_err() {
            self.untrack(tracked);
        }
        sent
    }

    /// Starts tracking `text` if it is a command whose answer changes what a reconnect
    /// restores; returns its `request_id` then.
    fn track(&self, text: &str) -> Option<String> {
        let (request_id, tracked) = Tracked::of(text)?;
        let mut state = self.state();
        (state.tracked.len() < MAX_TRACKED).then(|| {
            state.tracked.insert(request_id.clone(), tracked);
            request_id
        })
    }

    fn untrack(&self, request_id: Option<String>) {
        if let Some(request_id) = request_id {
            self.state().tracked.remove(&request_id);
        }
    }

    /// The error of a command whose connection went away under it.
    fn gone(&self) -> Error {
        self.state().ended.clone().unwrap_or_else(|| Error::Disconnected {
            reason: "the connection closed while sending".into(),
        })
    }

    /// Sends `text` (a command with `request_id`, tracked as [`Shared::send`] tracks) and waits
    /// up to `timeout` for the first frame with that `request_id` whose type is one of `answers`
    /// (any type if `answers` is empty), or an `error` frame. Dropping the future withdraws the
    /// request.
    pub async fn request(
        &self,
        text: String,
        request_id: &str,
        answers: &'static [&'static str],
        timeout: Duration,
    ) -> Result<RawFrame, Error> {
        let (reply, answer) = oneshot::channel();
        let link = {
            let mut state = self.state();
            let link = state.link()?;
            state.pending.insert(request_id.to_owned(), Pending { answers, reply });
            link
        };
        let _withdraw = Withdraw {
            shared: self,
            request_id,
        };
        let tracked = self.track(&text);
        if link.send(Message::text(text)).await.is_err() {
            self.untrack(tracked);
            return Err(self.gone());
        }
        match tokio::time::timeout(timeout, answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(self.gone()),
            Err(_) => Err(Error::Timeout {
                request_id: request_id.to_owned(),
                after: timeout,
            }),
        }
    }

    // ----- receiving -----------------------------------------------------------------------

    /// A new event stream of `capacity` frames, of every frame or only of `filter`'s.
    pub fn subscribe(&self, filter: Option<RuntimeScope>, capacity: usize) -> RawEvents {
        self.add(filter, capacity.max(1), false, None)
    }

    /// A new stream of every frame that never falls behind: while it holds `capacity` items,
    /// [`Shared::make_room`] holds up reading.
    pub fn subscribe_paced(&self, capacity: usize) -> RawEvents {
        self.add(None, capacity.max(1) + PACED_HEADROOM, true, None)
    }

    /// A new paced stream, of every frame or only of `filter`'s, that holds up reading for at
    /// most `patience` at a time (see [`Shared::make_room`]).
    pub fn subscribe_patient(&self, filter: Option<RuntimeScope>, capacity: usize, patience: Duration) -> RawEvents {
        let patience = Arc::new(Patience {
            wait: patience,
            waited_out: AtomicBool::new(false),
        });
        self.add(filter, capacity.max(1) + PACED_HEADROOM, true, Some(patience))
    }

    fn add(
        &self,
        filter: Option<RuntimeScope>,
        buffer: usize,
        paced: bool,
        patience: Option<Arc<Patience>>,
    ) -> RawEvents {
        let (tx, rx) = mpsc::channel(buffer);
        let missed = Arc::new(AtomicU64::new(0));
        let mut guard = self.state();
        let state = &mut *guard;
        if state.ended.is_none() {
            let subscriber = Subscriber {
                id: state.next_subscriber,
                filter,
                tx,
                missed: Arc::clone(&missed),
                paced,
                patience,
            };
            state.next_subscriber += 1;
            // It starts with the approvals pending: it would get them only at the next replay.
            for approval in &mut state.approvals {
                let item = Ok(approval.frame.clone());
                if subscriber.wants(&item) && subscriber.offer(&item) == Offer::Sent {
                    approval.delivered.insert(subscriber.id);
                }
            }
            state.subscribers.push(subscriber);
        }
        RawEvents::new(rx, missed)
    }

    /// Waits until every paced stream has room for what the next socket read can deliver. A
    /// stream with patience, once full, is waited for until half of it is free, for at most its
    /// patience; once a wait ran out, not again until it has drained half its buffer (meanwhile
    /// it skips, as a plain stream does).
    pub async fn make_room(&self) {
        let mut full = Vec::new();
        for subscriber in self.state().subscribers.iter().filter(|subscriber| subscriber.paced) {
            let room = subscriber.tx.capacity();
            if let Some(patience) = &subscriber.patience
                && patience.waited_out.load(Ordering::Acquire)
            {
                let buffer = subscriber.tx.max_capacity();
                if buffer - room <= (buffer - PACED_HEADROOM) / 2 {
                    patience.waited_out.store(false, Ordering::Release);
                }
                continue;
            }
            if room < PACED_HEADROOM {
                full.push((subscriber.tx.clone(), subscriber.patience.clone()));
            }
        }
        for (tx, patience) in full {
            // Err: the stream was dropped, and is forgotten at the next delivery.
            match patience {
                None => {
                    let _ = tx.reserve_many(PACED_HEADROOM).await;
                }
                Some(patience) => {
                    // Until half the stream is free: reading then goes on in bursts, not a
                    // frame at a time as the reader takes them.
                    let room = PACED_HEADROOM + (tx.max_capacity() - PACED_HEADROOM) / 2;
                    if tokio::time::timeout(patience.wait, tx.reserve_many(room))
                        .await
                        .is_err()
                    {
                        patience.waited_out.store(true, Ordering::Release);
                    }
                }
            }
        }
    }

    /// Routes one received frame: it goes to every stream (an approval only to the streams that
    /// have not had it) and settles the approvals it says are no longer pending, then it answers
    /// a pending request.
    pub fn dispatch(&self, frame: &RawFrame) {
        let mut state = self.state();
        let delivered = match frame.frame_type() {
            "control_request" => state.asked(frame),
            "update_device_status" => {
                state.settle_unlisted(frame);
                false
            }
            "turn_finished" => {
                if let Some(scope) = frame.runtime() {
                    state.approvals.retain(|approval| !approval.is_for(scope));
                }
                false
            }
            _ => false,
        };
        if !delivered {
            state.deliver(&Ok(frame.clone()));
        }
        if let Some(id) = frame.request_id() {
            if state
                .tracked
                .get(id)
                .is_some_and(|tracked| tracked.is_answered_by(frame))
                && let Some(tracked) = state.tracked.remove(id)
            {
                tracked.apply(frame, &mut state.runtimes);
            }
            let answers = state.pending.get(id).is_some_and(|pending| {
                pending.answers.is_empty()
                    || frame.frame_type() == "error"
                    || pending.answers.contains(&frame.frame_type())
            });
            if answers && let Some(pending) = state.pending.remove(id) {
                let _ = pending.reply.send(Ok(frame.clone()));
            }
        }
    }

    // ----- runtimes in use -----------------------------------------------------------------

    /// The `control_request`s pending, of every runtime or of `scope`'s, oldest first.
    pub fn pending_approvals(&self, scope: Option<&RuntimeScope>) -> Vec<RawFrame> {
        let state = self.state();
        state
            .approvals
            .iter()
            .filter(|approval| scope.is_none_or(|scope| approval.is_for(scope)))
            .map(|approval| approval.frame.clone())
            .collect()
    }

    /// Every runtime to restore on a new connection.
    pub fn runtimes(&self) -> Vec<(RuntimeScope, InUse)> {
        let state = self.state();
        state.runtimes.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

/// Removes a request from the pending table when its future ends, however it ends.
struct Withdraw<'a> {
    shared: &'a Shared,
    request_id: &'a str,
}

impl Drop for Withdraw<'_> {
    fn drop(&mut self) {
        self.shared.state().pending.remove(self.request_id);
    }
}

impl State {
    /// The current connection's writer, or why there is none.
    fn link(&self) -> Result<mpsc::Sender<Message>, Error> {
        if let Some(ended) = &self.ended {
            return Err(ended.clone());
        }
        self.link.clone().ok_or_else(|| Error::Disconnected {
            reason: "not connected (reconnecting)".into(),
        })
    }

    /// Offers `item` to every stream it is for. A full stream skips it and counts it, to
    /// report before its next frame (or when it has drained); a dropped stream is forgotten.
    fn deliver(&mut self, item: &Item) {
        self.offer(item, |_| false, |_| {});
    }

    /// [`State::deliver`] to the streams `skip` does not name; `sent` learns which streams
    /// took the item.
    fn offer(&mut self, item: &Item, skip: impl Fn(u64) -> bool, mut sent: impl FnMut(u64)) {
        let mut closed = false;
        self.subscribers.retain(|subscriber| {
            if skip(subscriber.id) || !subscriber.wants(item) {
                return true;
            }
            match subscriber.offer(item) {
                Offer::Sent => {
                    sent(subscriber.id);
                    true
                }
                Offer::Skipped => true,
                Offer::Closed => {
                    closed = true;
                    false
                }
            }
        });
        if closed {
            let live: HashSet<u64> = self.subscribers.iter().map(|subscriber| subscriber.id).collect();
            for approval in &mut self.approvals {
                approval.delivered.retain(|id| live.contains(id));
            }
        }
    }

    /// Records a `control_request` as pending and delivers it to the streams that have not had
    /// it (the replays on `sync` and `runtime_start` repeat it with the same `request_id`). `false` for one without a scope or a `request_id`, which is delivered as
    /// any frame.
    fn asked(&mut self, frame: &RawFrame) -> bool {
        let (Some(scope), Some(id)) = (frame.runtime(), frame.request_id()) else {
            return false;
        };
        let known = self
            .approvals
            .iter()
            .position(|approval| approval.is_for(scope) && approval.frame.request_id() == Some(id));
        let index = known.unwrap_or_else(|| {
            if self.approvals.len() >= MAX_APPROVALS {
                self.approvals.remove(0);
            }
            self.approvals.push(Approval {
                frame: frame.clone(),
                delivered: HashSet::new(),
            });
            self.approvals.len() - 1
        });
        let mut delivered = std::mem::take(&mut self.approvals[index].delivered);
        let mut took = Vec::new();
        self.offer(&Ok(frame.clone()), |id| delivered.contains(&id), |id| took.push(id));
        delivered.extend(took);
        let approval = &mut self.approvals[index];
        approval.delivered = delivered;
        approval.frame = frame.clone();
        true
    }

    /// Settles the approvals of a device status's runtime that it no longer lists as pending.
    fn settle_unlisted(&mut self, frame: &RawFrame) {
        #[derive(Deserialize)]
        struct Status {
            device_status: Pending,
        }
        #[derive(Deserialize)]
        struct Pending {
            #[serde(default)]
            pending_control_requests: Vec<Id>,
        }
        #[derive(Deserialize)]
        struct Id {
            request_id: String,
        }
        let Some(scope) = frame.runtime() else { return };
        // A runtime with nothing pending costs its statuses no parse.
        if !self.approvals.iter().any(|approval| approval.is_for(scope)) {
            return;
        }
        let Ok(status) = serde_json::from_str::<Status>(frame.text()) else {
            return;
        };
        let pending = status.device_status.pending_control_requests;
        self.approvals.retain(|approval| {
            !approval.is_for(scope)
                || pending
                    .iter()
                    .any(|p| approval.frame.request_id() == Some(p.request_id.as_str()))
        });
    }
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt;

    use super::*;
    use crate::options::Transport;

    fn shared() -> Shared {
        let options = Options {
            url: "ws://127.0.0.1:1/ws".into(),
            transport: Transport::Single,
            token: None,
            request_timeout: Duration::from_secs(1),
            event_capacity: 16,
            reconnect: None,
        };
        Shared::new(options, Arc::new(AtomicU64::new(1)))
    }

    fn scope(conversation: &str) -> RuntimeScope {
        RuntimeScope::new("agent-1", conversation)
    }

    fn runtime_event(conversation: &str, body: &str) -> RawFrame {
        RawFrame::from(format!(
            r#"{{{body},"runtime":{{"agent_id":"agent-1","conversation_id":"{conversation}"}}}}"#
        ))
    }

    fn asked(conversation: &str, request_id: &str) -> RawFrame {
        runtime_event(
            conversation,
            &format!(r#""type":"control_request","request_id":"{request_id}","request":{{"subtype":"can_use_tool"}}"#),
        )
    }

    fn device(conversation: &str, pending: &[&str]) -> RawFrame {
        let pending: Vec<String> = pending
            .iter()
            .map(|id| format!(r#"{{"request_id":"{id}","request":{{}}}}"#))
            .collect();
        runtime_event(
            conversation,
            &format!(
                r#""type":"update_device_status","device_status":{{"pending_control_requests":[{}]}}"#,
                pending.join(",")
            ),
        )
    }

    /// What a stream holds now: the `request_id` of each frame that has one, else its type.
    fn ready(events: &mut RawEvents) -> Vec<String> {
        let mut items = Vec::new();
        while let Some(Some(item)) = events.next().now_or_never() {
            items.push(match item {
                Ok(frame) => frame.request_id().unwrap_or(frame.frame_type()).to_owned(),
                Err(_) => "gap".to_owned(),
            });
        }
        items
    }

    fn pending(shared: &Shared, scope: Option<&RuntimeScope>) -> Vec<String> {
        shared
            .pending_approvals(scope)
            .iter()
            .filter_map(|frame| frame.request_id().map(str::to_owned))
            .collect()
    }

    #[test]
    fn each_stream_gets_an_approval_once_and_a_later_stream_starts_with_it() {
        let shared = shared();
        // Asked before any stream exists, as on connect.
        shared.dispatch(&asked("c1", "perm-1"));
        let mut early = shared.subscribe(None, 16);
        let mut other = shared.subscribe(Some(scope("c2")), 16);
        assert_eq!(ready(&mut early), ["perm-1"]);
        assert!(ready(&mut other).is_empty());

        shared.dispatch(&asked("c1", "perm-1"));
        shared.dispatch(&asked("c2", "perm-2"));
        let mut late = shared.subscribe(Some(scope("c1")), 16);
        shared.dispatch(&asked("c1", "perm-1"));
        assert_eq!(ready(&mut early), ["perm-2"]);
        assert_eq!(ready(&mut other), ["perm-2"]);
        assert_eq!(ready(&mut late), ["perm-1"]);
        assert_eq!(pending(&shared, None), ["perm-1", "perm-2"]);
        assert_eq!(pending(&shared, Some(&scope("c2"))), ["perm-2"]);
    }

    #[test]
    fn a_device_status_or_the_turns_end_settles_approvals() {
        let shared = shared();
        let mut events = shared.subscribe(None, 16);
        shared.dispatch(&asked("c1", "perm-1"));
        shared.dispatch(&asked("c1", "perm-2"));
        shared.dispatch(&asked("c2", "perm-3"));
        // Another runtime's status settles nothing; this one's settles what it does not list.
        shared.dispatch(&device("c2", &["perm-3"]));
        shared.dispatch(&device("c1", &["perm-2"]));
        assert_eq!(pending(&shared, None), ["perm-2", "perm-3"]);
        shared.dispatch(&runtime_event(
            "c1",
            r#""type":"turn_finished","stop_reason":"end_turn""#,
        ));
        assert_eq!(pending(&shared, None), ["perm-3"]);
        assert_eq!(
            ready(&mut events),
            [
                "perm-1",
                "perm-2",
                "perm-3",
                "update_device_status",
                "update_device_status",
                "turn_finished"
            ]
        );
        // A stream made now starts with what is still pending.
        let mut later = shared.subscribe(None, 16);
        assert_eq!(ready(&mut later), ["perm-3"]);
    }

    #[test]
    fn a_disconnect_forgets_approvals_and_the_next_connection_delivers_them_again() {
        let shared = shared();
        let mut events = shared.subscribe(None, 16);
        shared.dispatch(&asked("c1", "perm-1"));
        shared.dispatch(&asked("c2", "perm-2"));
        assert_eq!(ready(&mut events), ["perm-1", "perm-2"]);

        shared.disconnected("gone");
        assert_eq!(ready(&mut events), ["gap"]);
        assert!(pending(&shared, None).is_empty());
        let mut while_away = shared.subscribe(None, 16);
        assert!(ready(&mut while_away).is_empty());
        // The new connection replays what is still pending, on connect and on runtime_start:
        // every stream gets it, once.
        shared.dispatch(&asked("c1", "perm-1"));
        shared.dispatch(&asked("c1", "perm-1"));
        assert_eq!(pending(&shared, None), ["perm-1"]);
        assert_eq!(ready(&mut events), ["perm-1"]);
        assert_eq!(ready(&mut while_away), ["perm-1"]);
    }

    #[test]
    fn the_record_keeps_the_newest_approvals() {
        let shared = shared();
        for n in 0..=MAX_APPROVALS {
            shared.dispatch(&asked("c1", &format!("perm-{n}")));
        }
        let pending = pending(&shared, None);
        assert_eq!(pending.len(), MAX_APPROVALS);
        assert_eq!(pending[0], "perm-1");
    }
}
