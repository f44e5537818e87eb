//! The resumable event stream (this server's extension, docs/protocol.md §2.2): a conversation's
//! runtime events numbered with `conversation_seq`, and the most recent of them kept, so that a
//! client that subscribed with `resume_after` gets, once back, exactly the events it missed.
//!
//! A scope has a [`Journal`] from its first subscription with `resume_after` until its
//! conversation leaves memory. Every event of the scope then goes through
//! [`Journal::publish`], which numbers it, keeps it in a ring bounded by
//! [`ResumeLimits`](crate::config::ResumeLimits), and queues it for the scope's subscribers,
//! under one lock. A resuming subscriber ([`Journal::join`], then [`Journal::answer`]) is
//! either caught up, and gets each event as it is published, or catching up, when a task of
//! its own queues the retained events after its cursor as its queue makes room (so a long
//! catch-up never overflows it), then hands it over to [`publish`](Journal::publish). Either
//! way each event reaches it once, in order; a subscriber that falls behind what is retained is
//! disconnected, and told why, instead of skipping events.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use letta_app_server_protocol::Resume;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::clock::now_millis;
use crate::config::ResumeLimits;
use crate::engine::SessionId;
use crate::outbound::{EventFrame, Outbound, Outgoing};
use crate::sync::lock;

/// Retained events a catching-up subscriber is given per turn of its task.
const CATCH_UP_BATCH: usize = 64;

/// The numbered, retained events of one scope and its resuming subscribers.
pub struct Journal {
    limits: ResumeLimits,
    inner: Mutex<Inner>,
}

struct Inner {
    /// The `conversation_seq` of the newest event (the origin before the first).
    last_seq: u64,
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
    /// Where it is, once its subscription is answered: the last seq queued to it.
    position: Option<u64>,
    /// Whether a task of its own is queuing the retained events it has not had.
    catching_up: bool,
}

impl Journal {
    /// A journal that starts numbering now. Its origin is the time in microseconds, so that
    /// numbers are never given twice for one conversation, even across a restart or an eviction
    /// (a conversation would have to publish more than a million events a second to catch up
    /// with the clock), and stay below 2^53, JavaScript's exact integers, until the year 2255.
    pub fn new(limits: ResumeLimits) -> Arc<Self> {
        Arc::new(Self {
            limits,
            inner: Mutex::new(Inner {
                last_seq: now_millis().saturating_mul(1000),
                ring: VecDeque::new(),
                bytes: 0,
                readers: Vec::new(),
                left_at: None,
            }),
        })
    }

    /// Numbers `frame`, retains it, and queues it for every subscriber: the resuming ones that
    /// are caught up with its number, the others (`plain`, those of them that do not resume) as
    /// it always is.
    pub fn publish<'a>(&self, mut frame: EventFrame, plain: impl IntoIterator<Item = (SessionId, &'a Outbound)>) {
        let mut inner = lock(&self.inner);
        let seq = inner.last_seq + 1;
        frame.conversation_seq = Some(seq);
        let frame = Arc::new(frame);
        inner.last_seq = seq;
        inner.bytes += frame.len();
        inner.ring.push_back(frame.clone());
        while inner.ring.len() > self.limits.events.max(1) || (inner.bytes > self.limits.bytes && inner.ring.len() > 1)
        {
            if let Some(oldest) = inner.ring.pop_front() {
                inner.bytes -= oldest.len();
            }
        }
        for (session, outbound) in plain {
            if !inner.readers.iter().any(|reader| reader.session == session) {
                outbound.push(Outgoing::Event(frame.clone()));
            }
        }
        for reader in &mut inner.readers {
            if !reader.catching_up && reader.position == Some(seq - 1) {
                reader.outbound.push(Outgoing::Resumable(frame.clone()));
                reader.position = Some(seq);
            }
        }
    }

    /// Registers `session` as a resuming subscriber that gets nothing until its subscription
    /// is [answered](Self::answer) (the events published meanwhile are retained for it).
    pub fn join(&self, session: SessionId, outbound: &Arc<Outbound>) {
        let mut inner = lock(&self.inner);
        inner.left_at = None;
        if !inner.readers.iter().any(|reader| reader.session == session) {
            inner.readers.push(Reader {
                session,
                outbound: outbound.clone(),
                position: None,
                catching_up: false,
            });
        }
    }

    /// Answers the subscription of `session` (which [joined](Self::join)) made with `cursor`:
    /// `send` queues the answer carrying the [`Resume`], then, if it resumed, the events after
    /// the cursor follow; otherwise the session gets the events after the current one (the
    /// caller replays the state next). Returns the `Resume`.
    pub fn answer(self: &Arc<Self>, session: SessionId, cursor: u64, send: impl FnOnce(Resume)) -> Resume {
        let mut inner = lock(&self.inner);
        let last_seq = inner.last_seq;
        let oldest_retained = inner.oldest();
        // 0 is a first subscription, which has no state to resume from.
        let resumed = cursor > 0 && cursor <= last_seq && cursor + 1 >= oldest_retained;
        let resume = Resume {
            resumed,
            last_seq,
            oldest_retained,
        };
        send(resume);
        let position = if resumed { cursor } else { last_seq };
        let Some(reader) = inner.readers.iter_mut().find(|reader| reader.session == session) else {
            return resume;
        };
        reader.position = Some(position);
        if position < last_seq && !reader.catching_up {
            reader.catching_up = true;
            tokio::spawn(self.clone().catch_up(session, reader.outbound.clone()));
        }
        resume
    }

    /// Queues the retained events `session` has not had, as its queue makes room, until it is
    /// caught up (then [`publish`](Self::publish) takes over) or gone. One that fell behind
    /// what is retained is disconnected: it comes back, and is told it cannot resume.
    async fn catch_up(self: Arc<Self>, session: SessionId, outbound: Arc<Outbound>) {
        loop {
            outbound.room().await;
            if outbound.closed_with().is_some() {
                return;
            }
            let mut inner = lock(&self.inner);
            let oldest = inner.oldest();
            let last_seq = inner.last_seq;
            let Some(index) = inner.readers.iter().position(|reader| reader.session == session) else {
                return;
            };
            let from = inner.readers[index].position.unwrap_or(last_seq) + 1;
            if from < oldest {
                inner.readers.remove(index);
                drop(inner);
                outbound.close(
                    CloseCode::Again,
                    "fell behind the retained events of a resumed runtime: subscribe again",
                );
                return;
            }
            let skip = usize::try_from(from - oldest).unwrap_or(usize::MAX);
            let batch: Vec<Arc<EventFrame>> = inner.ring.iter().skip(skip).take(CATCH_UP_BATCH).cloned().collect();
            let reader = &mut inner.readers[index];
            for frame in batch {
                reader.position = frame.conversation_seq;
                outbound.push(Outgoing::Resumable(frame));
            }
            if reader.position >= Some(last_seq) {
                reader.catching_up = false;
                return;
            }
        }
    }

    /// Forgets a resuming subscriber (its session closed); `true` if it was one. When it was
    /// the last, the scope stays [lingering](Self::lingers) for the grace.
    pub fn leave(&self, session: SessionId) -> bool {
        let mut inner = lock(&self.inner);
        let before = inner.readers.len();
        inner.readers.retain(|reader| reader.session != session);
        let left = inner.readers.len() < before;
        if left && inner.readers.is_empty() {
            inner.left_at = Some(Instant::now());
        }
        left
    }

    /// Whether its last resuming subscriber left less than the grace ago, with none back: the
    /// scope counts as watched meanwhile, so that its turn waits for the client to come back.
    pub fn lingers(&self) -> bool {
        lock(&self.inner)
            .left_at
            .is_some_and(|left| left.elapsed() < self.limits.grace)
    }
}

impl Inner {
    /// The number of the oldest retained event (`last_seq + 1` when none is).
    fn oldest(&self) -> u64 {
        self.last_seq + 1 - self.ring.len() as u64
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
        Journal::new(ResumeLimits {
            events,
            bytes,
            grace: Duration::from_secs(1),
        })
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
        assert!(journal.leave(1));
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
    }
}
