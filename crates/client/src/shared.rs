//! The state a client's handles share with its connection task, under one lock: the link to
//! the socket writer, the [pending requests](crate::pending), the [event streams](crate::fanout)
//! with the [approvals pending](crate::approvals), and the [ledger](crate::tracked) of what a
//! reconnect restores. It is the [`Requests`] the commands, restores and tool handlers use.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use crate::approvals::Approvals;
use crate::events::RawEvents;
use crate::fanout::{ExitSlot, Streams, Subscriber};
use crate::frame::RawFrame;
use crate::pending::{AnswerFrames, Pending};
use crate::requests::Requests;
use crate::tracked::{InUse, Ledger, Tracked};
use crate::types::RuntimeScope;
use crate::{Error, Gap};

/// Frames queued for the socket writer; senders wait when it is full.
pub(crate) const OUTBOUND_CAPACITY: usize = 256;

/// The client's shared core.
pub(crate) struct Shared {
    /// Cancelled when the client closes.
    pub shutdown: CancellationToken,
    next_id: Arc<AtomicU64>,
    /// Whether its subscriptions ask for a resumable stream (`resume_after`): when it
    /// reconnects on its own.
    resuming: bool,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The current connection's writer; `None` while disconnected.
    link: Option<mpsc::Sender<Message>>,
    /// Why the client ended (closed, or the connection lost for good).
    ended: Option<Error>,
    pending: Pending,
    streams: Streams,
    approvals: Approvals,
    ledger: Ledger,
    /// Set from a [`Gap::Interrupted`] until the streams are told whether every runtime
    /// resumed.
    interrupted: bool,
    /// After a reconnect that is to resume: how many runtimes have yet to answer that they
    /// resumed.
    resuming: usize,
}

impl Shared {
    /// A client's core; request ids are numbered from `next_id`. A `resuming` client
    /// subscribes with `resume_after` (see [`Shared::disconnected`]).
    pub fn new(next_id: Arc<AtomicU64>, resuming: bool) -> Self {
        Self {
            shutdown: CancellationToken::new(),
            next_id,
            resuming,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    // ----- connection ----------------------------------------------------------------------

    /// A new connection is up: commands go to `link` from now on.
    pub fn connected(&self, link: mpsc::Sender<Message>) {
        self.state().link = Some(link);
    }

    /// The connection dropped: pending requests fail, streams get a [`Gap::Disconnected`], and
    /// the approvals pending are forgotten (a new connection gets those still pending again).
    /// When every runtime subscribed to may resume where it left off, streams get a
    /// [`Gap::Interrupted`] instead, and keep the approvals: they are told on the new
    /// connection whether all resumed (see [`Shared::dispatch`] and [`Shared::restored`]).
    pub fn disconnected(&self, reason: &str) {
        let mut guard = self.state();
        let state = &mut *guard;
        state.link = None;
        let resumes = self.resuming && (state.interrupted || state.ledger.resumes_all());
        state.ledger.forget_sent();
        state.pending.fail_all(&Error::Disconnected {
            reason: reason.to_owned(),
        });
        if resumes {
            if !state.interrupted {
                state.interrupted = true;
                let gap = Err(Gap::Interrupted {
                    reason: reason.to_owned(),
                });
                state.approvals.deliver(&gap, &mut state.streams);
            }
            return;
        }
        state.approvals.clear();
        let gap = Err(Gap::Disconnected {
            reason: reason.to_owned(),
        });
        state.approvals.deliver(&gap, &mut state.streams);
    }

    /// Tells every stream that a new connection is up, unless it is to resume them: then they
    /// are told once the runtimes are restored.
    pub fn reconnected(&self) {
        let mut guard = self.state();
        let state = &mut *guard;
        if state.interrupted {
            state.resuming = state.ledger.subscribed();
        } else {
            state.approvals.deliver(&Err(Gap::Reconnected), &mut state.streams);
        }
    }

    /// The runtimes were restored on a new connection: `all_answered` is false when a restore
    /// got no answer. After a [`Gap::Interrupted`], streams get [`Gap::Resumed`], or
    /// [`Gap::Reconnected`] if a restore failed.
    pub fn restored(&self, all_answered: bool) {
        let mut guard = self.state();
        let state = &mut *guard;
        if all_answered {
            state.resumed();
        } else {
            state.not_resumed();
        }
    }

    /// The client is done (closed, or the connection is gone for good): pending requests fail
    /// with `error`, streams end (after a [`Gap::Disconnected`] if they were told of an
    /// interruption only).
    pub fn finish(&self, error: Error) {
        let mut guard = self.state();
        let state = &mut *guard;
        if std::mem::take(&mut state.interrupted)
            && let Error::Disconnected { reason } = &error
        {
            let gap = Err(Gap::Disconnected { reason: reason.clone() });
            state.approvals.deliver(&gap, &mut state.streams);
        }
        state.link = None;
        state.ledger.forget_sent();
        state.pending.fail_all(&error);
        state.streams.clear();
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

    /// Starts tracking `text` if it is a command whose answer changes what a reconnect
    /// restores; returns the text to send, and its `request_id` then. A resuming client's
    /// subscriptions ask for a resumable stream: `resume_after: 0` is added to those without.
    fn track(&self, text: String) -> (String, Option<String>) {
        let Some((request_id, mut tracked)) = Tracked::of(&text) else {
            return (text, None);
        };
        let text = if tracked.ask_to_resume(self.resuming) {
            with_resume_after(text)
        } else {
            text
        };
        let request_id = self.state().ledger.track(request_id, tracked);
        (text, request_id)
    }

    /// The error of a command whose connection went away under it.
    pub fn gone(&self) -> Error {
        self.state().ended.clone().unwrap_or_else(|| Error::Disconnected {
            reason: "the connection closed while sending".into(),
        })
    }

    // ----- receiving -----------------------------------------------------------------------

    /// A new event stream of `capacity` frames, of every frame or only of `filter`'s.
    pub fn subscribe(&self, filter: Option<RuntimeScope>, capacity: usize) -> RawEvents {
        self.add(|streams| streams.plain(filter, capacity))
    }

    /// A new stream of every frame that never falls behind: while it holds `capacity` items,
    /// [`Shared::make_room`] holds up reading.
    pub fn subscribe_paced(&self, capacity: usize) -> RawEvents {
        self.add(|streams| streams.paced(capacity))
    }

    /// A new paced stream, of every frame or only of `filter`'s, that holds up reading for at
    /// most `patience` at a time (see [`Shared::make_room`]).
    pub fn subscribe_patient(&self, filter: Option<RuntimeScope>, capacity: usize, patience: Duration) -> RawEvents {
        self.add(|streams| streams.patient(filter, capacity, patience))
    }

    /// A new paced stream of terminal `terminal_id`'s frames (see [`Streams::terminal`]).
    pub fn subscribe_terminal(
        &self,
        terminal_id: &str,
        capacity: usize,
        patience: Option<Duration>,
        exit: ExitSlot,
    ) -> RawEvents {
        self.add(|streams| streams.terminal(terminal_id, capacity, patience, exit))
    }

    /// Opens a stream that starts with the approvals pending; one opened after the client
    /// ended ends at once.
    fn add(&self, open: impl FnOnce(&mut Streams) -> (Subscriber, RawEvents)) -> RawEvents {
        let mut guard = self.state();
        let state = &mut *guard;
        let (subscriber, events) = open(&mut state.streams);
        if state.ended.is_none() {
            state.approvals.greet(&subscriber);
            state.streams.add(subscriber);
        }
        events
    }

    /// Waits until every paced stream has room for what the next socket read can deliver
    /// (see [`Streams::waits`](crate::fanout::Streams::waits)).
    pub async fn make_room(&self) {
        let waits = self.state().streams.waits();
        for wait in waits {
            wait.for_room().await;
        }
    }

    /// Routes one received frame: it goes to every stream (an approval only to the streams that
    /// have not had it) and settles the approvals it says are no longer pending, then it answers
    /// a tracked command and a pending request.
    pub fn dispatch(&self, frame: &RawFrame) {
        let mut guard = self.state();
        let state = &mut *guard;
        // A subscription that did not resume is followed by its state replay, and one that did
        // by the events missed: the streams are told first, once all are known to resume.
        match state.ledger.answer(frame) {
            Some(false) => state.not_resumed(),
            Some(true) if state.interrupted => {
                state.resuming = state.resuming.saturating_sub(1);
                if state.resuming == 0 {
                    state.resumed();
                }
            }
            _ => {}
        }
        state.ledger.advance(frame);
        state.approvals.receive(frame, &mut state.streams);
        state.pending.answer(frame);
    }

    /// The `control_request`s pending, of every runtime or of `scope`'s, oldest first.
    pub fn pending_approvals(&self, scope: Option<&RuntimeScope>) -> Vec<RawFrame> {
        self.state().approvals.pending(scope)
    }

    /// Sends `text` (a command with `request_id`) and returns the receiver of the frames with
    /// that `request_id` whose type is one of `answers`, until one carries `done: true`, or an
    /// `error` frame. The request stays pending until the receiver's owner withdraws it.
    pub async fn request_stream(
        &self,
        text: String,
        request_id: &str,
        answers: &'static [&'static str],
    ) -> Result<AnswerFrames, Error> {
        let (link, frames) = {
            let mut state = self.state();
            let link = state.link()?;
            (link, state.pending.insert_stream(request_id, answers))
        };
        // Withdrawn if sending fails or this future is dropped.
        let withdraw = Withdraw {
            shared: self,
            request_id,
        };
        let (text, tracked) = self.track(text);
        if link.send(Message::text(text)).await.is_err() {
            self.state().ledger.untrack(tracked);
            return Err(self.gone());
        }
        std::mem::forget(withdraw);
        Ok(frames)
    }

    /// Stops waiting for the answers to `request_id`.
    pub fn withdraw(&self, request_id: &str) {
        self.state().pending.withdraw(request_id);
    }

    /// Every runtime to restore on a new connection.
    pub fn runtimes(&self) -> Vec<(RuntimeScope, InUse)> {
        self.state().ledger.runtimes()
    }
}

/// `text`, a command's JSON object, with `resume_after: 0` added.
fn with_resume_after(text: String) -> String {
    match serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&text) {
        Ok(mut fields) => {
            fields.insert("resume_after".into(), 0.into());
            serde_json::to_string(&fields).unwrap_or(text)
        }
        Err(_) => text,
    }
}

impl State {
    /// After a [`Gap::Interrupted`]: tells the streams that every runtime resumed.
    fn resumed(&mut self) {
        if std::mem::take(&mut self.interrupted) {
            self.approvals.deliver(&Err(Gap::Resumed), &mut self.streams);
        }
    }

    /// After a [`Gap::Interrupted`]: tells the streams that a runtime did not resume, so frames
    /// may be missing (its replay follows, with the approvals still pending, which the streams
    /// get again as after any reconnect).
    fn not_resumed(&mut self) {
        if std::mem::take(&mut self.interrupted) {
            self.approvals.clear();
            self.approvals.deliver(&Err(Gap::Reconnected), &mut self.streams);
        }
    }

    /// The current connection's writer, or why there is none.
    fn link(&self) -> Result<mpsc::Sender<Message>, Error> {
        if let Some(ended) = &self.ended {
            return Err(ended.clone());
        }
        self.link.clone().ok_or_else(|| Error::Disconnected {
            reason: "not connected (reconnecting)".into(),
        })
    }
}

impl Requests for Shared {
    fn next_request_id(&self, prefix: &str) -> String {
        format!("{prefix}-{}", self.next_id.fetch_add(1, Ordering::Relaxed))
    }

    async fn send(&self, text: String) -> Result<(), Error> {
        let link = self.state().link()?;
        let (text, tracked) = self.track(text);
        let sent = link.send(Message::text(text)).await.map_err(|_| self.gone());
        if sent.is_err() {
            self.state().ledger.untrack(tracked);
        }
        sent
    }

    async fn request(
        &self,
        text: String,
        request_id: &str,
        answers: &'static [&'static str],
        timeout: Duration,
    ) -> Result<RawFrame, Error> {
        let (link, answer) = {
            let mut state = self.state();
            let link = state.link()?;
            (link, state.pending.insert(request_id, answers))
        };
        let _withdraw = Withdraw {
            shared: self,
            request_id,
        };
        let (text, tracked) = self.track(text);
        if link.send(Message::text(text)).await.is_err() {
            self.state().ledger.untrack(tracked);
            return Err(self.gone());
        }
        answer.wait(request_id, timeout, || self.gone()).await
    }
}

/// Removes a request from the pending table when its future ends, however it ends.
struct Withdraw<'a> {
    shared: &'a Shared,
    request_id: &'a str,
}

impl Drop for Withdraw<'_> {
    fn drop(&mut self) {
        self.shared.withdraw(self.request_id);
    }
}

#[cfg(test)]
mod tests;
