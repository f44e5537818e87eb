//! The resumable event stream (this server's extension, docs/protocol.md §2.2): a conversation's
//! runtime events numbered with `conversation_seq`, and the most recent of them kept, so that a
//! client that subscribed with `resume_after` gets, once back, exactly the events it missed, even
//! after the server restarted.
//!
//! A scope has a [`Journal`] from its first subscription with `resume_after` on, whenever its
//! conversation is in memory: it is kept in the store too, and [restored](Journal::restored)
//! when the conversation is loaded again. Every event of the scope then goes through
//! [`Journal::publish`], which numbers it, keeps it in a ring bounded by
//! [`ResumeLimits`](crate::config::ResumeLimits) (plus what is not written yet), and queues it at once for the subscribers that
//! do not resume, under one lock. A task writes what was published to the store, a burst at a
//! time; only then do the resuming subscribers get it, so that after a crash no client holds a
//! number the restarted server does not know. A resuming subscriber ([`Journal::join`], then
//! [`Journal::answer`]) is either caught up, and gets each event once it is written, or
//! catching up, when a task of its own queues the retained events after its cursor as its queue
//! makes room (so a long catch-up never overflows it). Either way each event reaches it once, in
//! order; a subscriber that falls behind what is retained is disconnected, and told why,
//! instead of skipping events.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use letta_app_server_protocol::{Resume, RuntimeScope};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::clock::now_millis;
use crate::config::ResumeLimits;
use crate::engine::SessionId;
use crate::outbound::{EventFrame, Outbound, Outgoing};
use crate::store::{Store, StoredEvent, StoredJournal};
use crate::sync::lock;

/// The id of the next journal made.
static JOURNAL_IDS: AtomicU64 = AtomicU64::new(0);

/// Retained events a catching-up subscriber is given per turn of its task.
const CATCH_UP_BATCH: usize = 64;

/// The numbered, retained events of one scope and its resuming subscribers.
pub struct Journal {
    /// Which journal this is, to the queues of its subscribers ([`Outbound::expect`]).
    id: u64,
    limits: ResumeLimits,
    /// Where the events are written, and for which scope; `None`: kept in memory only.
    store: Option<(Store, RuntimeScope)>,
    inner: Mutex<Inner>,
}

struct Inner {
    /// The `conversation_seq` of the newest event (the origin before the first).
    last_seq: u64,
    /// The newest event written to the store (with no store: `last_seq`): the resuming
    /// subscribers get the events up to it.
    written: u64,
    /// Whether a task is writing to the store.
    writing: bool,
    /// The retained events, oldest first, numbered `last_seq - len + 1 ..= last_seq`.
    ring: VecDeque<Arc<EventFrame>>,
    /// Their bytes.
    bytes: usize,
    readers: Vec<Reader>,
    /// When the last resuming subscriber left, while none is back.
    left_at: Option<Instant>,
}

/// A session subscribed with `resume_after`.
struct Reader {
    session: SessionId,
    outbound: Arc<Outbound>,
    /// The newest written event when it joined: a subscription that does not resume gets the
    /// events after it.
    joined: u64,
    /// Where it is, once its subscription is answered: the last seq queued to it.
    position: Option<u64>,
    /// Whether a task of its own is queuing the retained events it has not had.
    catching_up: bool,
}

impl Journal {
    /// A journal that starts numbering now, kept in `store` if given. Its origin is the time in
    /// milliseconds times 1,000, so that numbers are never given twice for one conversation,
    /// even when its stored journal is gone (a conversation would have to publish more than a
    /// thousand events a millisecond to catch up with the clock), and stay below 2^53,
    /// JavaScript's exact integers, until the year 2255.
    pub fn new(limits: ResumeLimits, store: Option<(Store, RuntimeScope)>) -> Arc<Self> {
        Self::with(limits, store, now_millis().saturating_mul(1000), VecDeque::new())
    }

    /// The journal of `scope` as `stored` kept it (events of types this version does not know
    /// are left out).
    pub fn restored(limits: ResumeLimits, store: Store, scope: RuntimeScope, stored: StoredJournal) -> Arc<Self> {
        let ring = (stored.events.into_iter())
            .filter(|event| event.seq > 0 && event.seq <= stored.last_seq)
            .filter_map(|event| {
                EventFrame::restored(&scope, &event.frame_type, event.coalesces, event.prefix, event.seq)
            })
            .map(Arc::new)
            .collect();
        Self::with(limits, Some((store, scope)), stored.last_seq, ring)
    }

    fn with(
        limits: ResumeLimits,
        store: Option<(Store, RuntimeScope)>,
        last_seq: u64,
        ring: VecDeque<Arc<EventFrame>>,
    ) -> Arc<Self> {
        let mut inner = Inner {
            last_seq,
            written: last_seq,
            writing: false,
            bytes: ring.iter().map(|frame| frame.len()).sum(),
            ring,
            readers: Vec::new(),
            left_at: None,
        };
        // Numbers must follow one another in the ring: keep the newest run of them.
        let mut expected = last_seq;
        let keep = inner
            .ring
            .iter()
            .rev()
            .take_while(|frame| {
                let follows = frame.conversation_seq == Some(expected);
                expected = expected.saturating_sub(1);
                follows
            })
            .count();
        while inner.ring.len() > keep {
            inner.pop_oldest();
        }
        inner.trim(&limits);
        Arc::new(Self {
            id: JOURNAL_IDS.fetch_add(1, Ordering::Relaxed),
            limits,
            store,
            inner: Mutex::new(inner),
        })
    }

    /// Numbers `frame`, retains it, queues it for every subscriber that does not resume
    /// (`plain`, less the resuming ones) and, once written, for the resuming ones.
    pub fn publish<'a>(
        self: &Arc<Self>,
        mut frame: EventFrame,
        plain: impl IntoIterator<Item = (SessionId, &'a Outbound)>,
    ) {
        let mut inner = lock(&self.inner);
        let seq = inner.last_seq + 1;
        frame.conversation_seq = Some(seq);
        let frame = Arc::new(frame);
        inner.last_seq = seq;
        inner.bytes += frame.len();
        inner.ring.push_back(frame.clone());
        inner.trim(&self.limits);
        for (session, outbound) in plain {
            if !inner.readers.iter().any(|reader| reader.session == session) {
                outbound.push(Outgoing::Event(frame.clone()));
            }
        }
        // The answered resuming subscribers are owed it from now on: what follows waits for it.
        for reader in inner.readers.iter().filter(|reader| reader.position.is_some()) {
            reader.outbound.expect(self.id, 1);
        }
        match &self.store {
            None => {
                inner.written = seq;
                let behind = inner.deliver(self.id);
                inner.trim(&self.limits);
                drop(inner);
                self.catch_up_all(behind);
            }
            Some(_) if !inner.writing => {
                inner.writing = true;
                tokio::spawn(self.clone().write());
            }
            Some(_) => {}
        }
    }

    /// Writes what was published to the store, a burst at a time, and hands each burst to the
    /// resuming subscribers once written. A write that fails is logged (by the store) and its
    /// events are handed on all the same: the stream goes on, though a restart may not resume.
    async fn write(self: Arc<Self>) {
        let Some((store, scope)) = &self.store else { return };
        loop {
            let (events, last_seq, oldest) = {
                let mut inner = lock(&self.inner);
                if inner.written == inner.last_seq {
                    inner.writing = false;
                    return;
                }
                let oldest = inner.oldest();
                let skip = ring_index(inner.written + 1, inner.last_seq, inner.ring.len());
                let events: Vec<StoredEvent> = (inner.ring.iter().skip(skip))
                    .map(|frame| StoredEvent {
                        seq: frame.conversation_seq.unwrap_or_default(),
                        frame_type: frame.frame_type().to_owned(),
                        coalesces: frame.delivery.coalesces,
                        prefix: frame.prefix().to_owned(),
                    })
                    .collect();
                (events, inner.last_seq, oldest)
            };
            let _ = store.write_journal(scope, events, last_seq, oldest).await;
            let mut inner = lock(&self.inner);
            inner.written = last_seq;
            let behind = inner.deliver(self.id);
            inner.trim(&self.limits);
            drop(inner);
            self.catch_up_all(behind);
        }
    }

    /// Registers `session` as a resuming subscriber that gets nothing until its subscription
    /// is [answered](Self::answer); the events published meanwhile follow the answer.
    pub fn join(&self, session: SessionId, outbound: &Arc<Outbound>) {
        let mut inner = lock(&self.inner);
        inner.left_at = None;
        let joined = inner.written;
        if !inner.readers.iter().any(|reader| reader.session == session) {
            inner.readers.push(Reader {
                session,
                outbound: outbound.clone(),
                joined,
                position: None,
                catching_up: false,
            });
        }
    }

    /// Answers the subscription of `session` (which [joined](Self::join)) made with `cursor`:
    /// `send` queues the answer carrying the [`Resume`], then the events after `last_seq`
    /// follow: after the cursor if it resumed, else after where the session joined (the caller
    /// replays the state next). A session answered before keeps its place: it is getting the
    /// events already. Only written events count: a cursor past them is one the server never
    /// gave (or lost). Returns the `Resume`.
    pub fn answer(self: &Arc<Self>, session: SessionId, cursor: u64, send: impl FnOnce(Resume)) -> Resume {
        let mut inner = lock(&self.inner);
        let (written, oldest_retained) = (inner.written, inner.oldest());
        // 0 is a first subscription, which has no state to resume from.
        let resumed = cursor > 0 && cursor <= written && cursor + 1 >= oldest_retained;
        let reader = inner.readers.iter_mut().find(|reader| reader.session == session);
        let position = match &reader {
            Some(Reader {
                position: Some(position),
                ..
            }) => *position,
            Some(_) if resumed => cursor,
            Some(reader) => reader.joined,
            // It left meanwhile.
            None => written,
        };
        let resume = Resume {
            resumed,
            last_seq: position,
            oldest_retained,
        };
        send(resume);
        let last_seq = inner.last_seq;
        let reader = inner.readers.iter_mut().find(|reader| reader.session == session);
        if let Some(reader) = reader {
            if reader.position.is_none() {
                // Owed from the answer on: the events after its position, written or not.
                reader.outbound.expect(self.id, last_seq - position);
            }
            reader.position = Some(position);
            if position < written && !reader.catching_up {
                reader.catching_up = true;
                tokio::spawn(self.clone().catch_up(session, reader.outbound.clone()));
            }
        }
        resume
    }

    /// Starts the catch-up task of each of these subscribers.
    fn catch_up_all(self: &Arc<Self>, behind: Vec<(SessionId, Arc<Outbound>)>) {
        for (session, outbound) in behind {
            tokio::spawn(self.clone().catch_up(session, outbound));
        }
    }

    /// Queues the retained, written events `session` has not had, as its queue makes room,
    /// until it is caught up (then [`Inner::deliver`] takes over) or gone. One that fell behind
    /// what is retained is disconnected: it comes back, and is told it cannot resume.
    async fn catch_up(self: Arc<Self>, session: SessionId, outbound: Arc<Outbound>) {
        loop {
            outbound.room().await;
            if outbound.closed_with().is_some() {
                return;
            }
            let mut inner = lock(&self.inner);
            let Some(index) = inner.readers.iter().position(|reader| reader.session == session) else {
                return;
            };
            let (written, oldest) = (inner.written, inner.oldest());
            let position = inner.readers[index].position.unwrap_or(written);
            if position + 1 < oldest {
                inner.readers.remove(index);
                if inner.readers.is_empty() {
                    inner.left_at = Some(Instant::now());
                }
                drop(inner);
                outbound.close(CloseCode::Again, FELL_BEHIND);
                return;
            }
            // No more than a quarter of the queue's limits at a time, as `room` waits for.
            let (max_frames, max_bytes) = ((outbound.max_frames() / 4).max(1), outbound.max_bytes() / 4);
            let mut batch = inner.events_after(position, written, CATCH_UP_BATCH.min(max_frames));
            let mut bytes = 0;
            batch.retain(|frame| {
                bytes += frame.len();
                bytes <= max_bytes || bytes == frame.len()
            });
            let reader = &mut inner.readers[index];
            for frame in batch {
                reader.position = frame.conversation_seq;
                outbound.fill(self.id, frame);
            }
            if reader.position >= Some(written) {
                reader.catching_up = false;
                return;
            }
        }
    }

    /// Forgets a resuming subscriber (its session closed); `true` if it was one. When it was
    /// the last and it may come back (`linger`: it did not close on purpose), the scope stays
    /// [lingering](Self::lingers) for the grace.
    pub fn leave(&self, session: SessionId, linger: bool) -> bool {
        let mut inner = lock(&self.inner);
        let before = inner.readers.len();
        inner.readers.retain(|reader| {
            let stays = reader.session != session;
            if !stays {
                reader.outbound.forget(self.id);
            }
            stays
        });
        let left = inner.readers.len() < before;
        if left && linger && inner.readers.is_empty() {
            inner.left_at = Some(Instant::now());
        }
        left
    }

    /// Whether its last resuming subscriber left less than the grace ago, with none back: the
    /// scope counts as watched meanwhile, so that its turn goes on (and its queue keeps
    /// running) for the client to come back to.
    pub fn lingers(&self) -> bool {
        lock(&self.inner)
            .left_at
            .is_some_and(|left| left.elapsed() < self.limits.grace)
    }
}

/// Where event `seq` is in a ring of `len` events ending at `last_seq` (0 for one older than
/// the ring).
fn ring_index(seq: u64, last_seq: u64, len: usize) -> usize {
    let oldest = (last_seq + 1).saturating_sub(len as u64);
    usize::try_from(seq.saturating_sub(oldest)).unwrap_or(usize::MAX)
}

/// Why a resuming subscriber that fell behind what is retained is disconnected.
const FELL_BEHIND: &str = "fell behind the retained events of a resumed runtime: subscribe again";

impl Inner {
    /// The number of the oldest retained event (`last_seq + 1` when none is).
    fn oldest(&self) -> u64 {
        (self.last_seq + 1).saturating_sub(self.ring.len() as u64)
    }

    /// Drops the oldest retained events past the limits. The newest is always kept, and so is
    /// every event not yet written (and so not yet handed to the caught-up resuming
    /// subscribers): the ring may hold one write's burst more than the limits.
    fn trim(&mut self, limits: &ResumeLimits) {
        while (self.ring.len() > limits.events.max(1) || (self.bytes > limits.bytes && self.ring.len() > 1))
            && self.oldest() <= self.written
        {
            self.pop_oldest();
        }
    }

    fn pop_oldest(&mut self) {
        if let Some(oldest) = self.ring.pop_front() {
            self.bytes -= oldest.len();
        }
    }

    /// Up to `limit` retained events after `position`, up to `until`.
    fn events_after(&self, position: u64, until: u64, limit: usize) -> Vec<Arc<EventFrame>> {
        let skip = ring_index(position + 1, self.last_seq, self.ring.len());
        let count = usize::try_from(until.saturating_sub(position)).unwrap_or(usize::MAX);
        self.ring.iter().skip(skip).take(count.min(limit)).cloned().collect()
    }

    /// Queues the written events each caught-up resuming subscriber has not had (events are
    /// not trimmed before they are written, so it has them all). A burst larger than a
    /// catch-up batch (after a slow store write) is left to a catch-up task, returned, which
    /// paces it by the subscriber's queue.
    #[must_use = "the subscribers to catch up need a task"]
    fn deliver(&mut self, journal: u64) -> Vec<(SessionId, Arc<Outbound>)> {
        let written = self.written;
        let mut behind = Vec::new();
        for reader in &mut self.readers {
            let Some(position) = reader
                .position
                .filter(|position| !reader.catching_up && *position < written)
            else {
                continue;
            };
            let count = usize::try_from(written - position).unwrap_or(usize::MAX);
            if count > CATCH_UP_BATCH {
                reader.catching_up = true;
                behind.push((reader.session, reader.outbound.clone()));
                continue;
            }
            let skip = ring_index(position + 1, self.last_seq, self.ring.len());
            for frame in self.ring.iter().skip(skip).take(count) {
                reader.outbound.fill(journal, frame.clone());
            }
            reader.position = Some(written);
        }
        behind
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;
    use letta_app_server_protocol::{RuntimeScope, UpdateQueue};

    use super::*;
    use crate::outbound::Limits;

    fn outbound() -> Arc<Outbound> {
        let limits = Limits {
            coalesce_after: 1000,
            max_frames: 64,
            max_bytes: 1 << 20,
            patience: Duration::from_secs(1),
        };
        Outbound::new(limits, Arc::default())
    }

    fn frame() -> EventFrame {
        let event = UpdateQueue {
            queue: Vec::new(),
            removed: Vec::new(),
        };
        EventFrame::new(&event.into(), &RuntimeScope::new("agent-1", "conv-1"))
    }

    fn journal(events: usize, bytes: usize) -> Arc<Journal> {
        let limits = ResumeLimits {
            events,
            bytes,
            grace: Duration::from_secs(1),
        };
        Journal::new(limits, None)
    }

    /// What `outbound` holds: `Some(seq)` per numbered event, `None` per other frame.
    fn taken(outbound: &Outbound) -> Vec<Option<u64>> {
        (outbound.take(1000).iter())
            .map(|frame| match frame {
                Outgoing::Resumable(event) => event.conversation_seq,
                _ => None,
            })
            .collect()
    }

    /// The answer to a subscription with `cursor`, which `session` joined.
    fn answer(journal: &Arc<Journal>, session: SessionId, out: &Arc<Outbound>, cursor: u64) -> Resume {
        journal.answer(session, cursor, |_| {
            out.push(Outgoing::Direct(Bytes::from_static(b"{}")))
        })
    }

    #[tokio::test]
    async fn frames_made_after_a_resumed_answer_come_after_the_events_it_resumes() {
        let journal = journal(100, usize::MAX);
        let first = outbound();
        journal.join(1, &first);
        let origin = answer(&journal, 1, &first, 0).last_seq;
        for _ in 0..4 {
            journal.publish(frame(), []);
        }
        // Back as session 2 after the first event: three to catch up on, by a task of its own.
        let back = outbound();
        journal.join(2, &back);
        answer(&journal, 2, &back, origin + 1);
        back.push(Outgoing::Direct(Bytes::from_static(b"{}")));
        journal.publish(frame(), []);
        tokio::time::sleep(Duration::from_millis(50)).await;
        let (e2, e3, e4, e5) = (origin + 2, origin + 3, origin + 4, origin + 5);
        assert_eq!(
            taken(&back),
            [None, Some(e2), Some(e3), Some(e4), None, Some(e5)],
            "the answer, the missed events, then what was made after the answer, in order"
        );
    }

    #[tokio::test]
    async fn retention_is_bounded_by_count_and_by_bytes() {
        let journal = journal(3, usize::MAX);
        let origin = answer(&journal, 0, &outbound(), 0).last_seq;
        for _ in 0..5 {
            journal.publish(frame(), []);
        }
        let resume = answer(&journal, 0, &outbound(), 0);
        assert_eq!((resume.last_seq, resume.oldest_retained), (origin + 5, origin + 3));

        let size = frame().len();
        let journal = self::journal(100, size * 2);
        for _ in 0..5 {
            journal.publish(frame(), []);
        }
        let resume = answer(&journal, 0, &outbound(), 0);
        assert_eq!(resume.last_seq - resume.oldest_retained + 1, 2);
    }

    #[tokio::test]
    async fn a_reader_gets_each_event_after_its_cursor_once_in_order_after_its_answer() {
        let journal = journal(100, usize::MAX);
        let (reader, plain) = (outbound(), outbound());
        journal.join(1, &reader);
        let origin = answer(&journal, 1, &reader, 0).last_seq;
        journal.publish(frame(), [(1, &*reader), (2, &*plain)]);
        assert_eq!(taken(&reader), [None, Some(origin + 1)], "the answer, then the event");
        assert_eq!(taken(&plain), [None], "an event without its number");

        // Back after two more events, as session 3, with the cursor `origin + 1`.
        assert!(journal.leave(1, true));
        assert!(journal.lingers());
        journal.publish(frame(), [(2, &*plain)]);
        journal.publish(frame(), [(2, &*plain)]);
        let back = outbound();
        journal.join(3, &back);
        assert!(!journal.lingers());
        journal.publish(frame(), [(2, &*plain), (3, &*back)]);
        assert!(taken(&back).is_empty(), "nothing before its answer");
        let resume = answer(&journal, 3, &back, origin + 1);
        assert!(resume.resumed);
        // The catch-up runs on its own task; a publish meanwhile waits for it.
        tokio::task::yield_now().await;
        journal.publish(frame(), [(2, &*plain), (3, &*back)]);
        let seqs: Vec<u64> = (origin + 2..=origin + 5).collect();
        let expected: Vec<Option<u64>> = std::iter::once(None).chain(seqs.into_iter().map(Some)).collect();
        assert_eq!(taken(&back), expected);
        assert_eq!(taken(&plain).len(), 4);

        // Subscribing again (a first subscription's cursor) keeps its place: nothing is skipped.
        journal.publish(frame(), [(3, &*back)]);
        let again = answer(&journal, 3, &back, 0);
        assert!(!again.resumed);
        assert_eq!(again.last_seq, origin + 6, "where it is");
        journal.publish(frame(), [(3, &*back)]);
        assert_eq!(taken(&back), [Some(origin + 6), None, Some(origin + 7)]);
    }

    #[tokio::test]
    async fn a_subscription_that_does_not_resume_gets_what_was_published_since_it_joined() {
        let journal = journal(100, usize::MAX);
        let reader = outbound();
        let origin = answer(&journal, 9, &outbound(), 0).last_seq;
        journal.join(1, &reader);
        journal.publish(frame(), [(1, &*reader)]);
        let resume = answer(&journal, 1, &reader, 0);
        assert_eq!((resume.resumed, resume.last_seq), (false, origin));
        tokio::task::yield_now().await;
        assert_eq!(taken(&reader), [None, Some(origin + 1)]);
    }
}
