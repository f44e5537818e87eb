//! State shared by a client's handles and its connection tasks: the link to the socket writer,
//! requests waiting for answers, event subscribers, the runtimes to restore after a reconnect
//! and the approvals already surfaced.

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
    /// `control_request` ids already delivered, per scope, until the scope's device status no
    /// longer lists them as pending.
    approvals: HashMap<RuntimeScope, HashSet<String>>,
}

/// A request waiting for its answer.
struct Pending {
    /// Frame types that answer it (besides `error`); empty: any frame with its id.
    answers: &'static [&'static str],
    reply: oneshot::Sender<Result<RawFrame, Error>>,
}

/// One event stream.
struct Subscriber {
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

    /// The connection dropped: pending requests fail, streams get a [`Gap::Disconnected`].
    pub fn disconnected(&self, reason: &str) {
        let mut state = self.state();
        state.link = None;
        state.tracked.clear();
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
        let mut state = self.state();
        if state.ended.is_none() {
            state.subscribers.push(Subscriber {
                filter,
                tx,
                missed: Arc::clone(&missed),
                paced,
                patience,
            });
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

    /// Routes one received frame: approvals are de-duplicated, then the frame goes to every
    /// stream, then it answers a pending request.
    pub fn dispatch(&self, frame: &RawFrame) {
        let mut state = self.state();
        match frame.frame_type() {
            "control_request" if !state.first_sight_of_approval(frame) => return,
            "update_device_status" => state.forget_settled_approvals(frame),
            _ => {}
        }
        state.deliver(&Ok(frame.clone()));
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
        self.subscribers.retain_mut(|subscriber| {
            if let (Some(filter), Ok(frame)) = (&subscriber.filter, item)
                && !frame.is_for(filter)
            {
                return true;
            }
            let missed = subscriber.missed.swap(0, Ordering::AcqRel);
            if missed > 0 {
                match subscriber.tx.try_send(Err(Gap::Lagged { missed })) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        subscriber.missed.fetch_add(missed + 1, Ordering::AcqRel);
                        return true;
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => return false,
                }
            }
            match subscriber.tx.try_send(item.clone()) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    subscriber.missed.fetch_add(1, Ordering::AcqRel);
                    true
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            }
        });
    }

    /// Whether this `control_request` is new (replays on reconnect, `sync` and `runtime_start`
    /// repeat it with the same `request_id`).
    fn first_sight_of_approval(&mut self, frame: &RawFrame) -> bool {
        let (Some(scope), Some(id)) = (frame.runtime(), frame.request_id()) else {
            return true;
        };
        self.approvals.entry(scope.clone()).or_default().insert(id.to_owned())
    }

    /// Forgets the approvals a scope's device status no longer lists as pending.
    fn forget_settled_approvals(&mut self, frame: &RawFrame) {
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
        let Some(seen) = self.approvals.get_mut(scope) else {
            return;
        };
        if let Ok(status) = serde_json::from_str::<Status>(frame.text()) {
            let pending = status.device_status.pending_control_requests;
            seen.retain(|id| pending.iter().any(|p| &p.request_id == id));
        }
        // A scope with nothing pending costs its later statuses no parse.
        if seen.is_empty() {
            self.approvals.remove(scope);
        }
    }
}
