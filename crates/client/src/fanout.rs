//! Fan-out: every received frame goes to each event stream it is for, through the stream's
//! bounded buffer. A plain stream that is full skips and reports the count; a paced one holds up
//! reading the socket instead (see [`Wait`]).

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::Gap;
use crate::events::{Item, RawEvents};
use crate::frame::RawFrame;
use crate::sequencer::MAX_EARLY;
use crate::types::RuntimeScope;

/// Room a paced stream keeps beyond its capacity: the most items one socket read can deliver
/// (a split pair's held events, released at once) and a few gaps.
const PACED_HEADROOM: usize = MAX_EARLY + 16;

/// Room a terminal's stream keeps beyond its capacity: a socket read delivers it one frame at
/// most (its frames are not sequenced), and a few gaps.
const TERMINAL_HEADROOM: usize = 16;

/// The event streams of a client.
#[derive(Default)]
pub(crate) struct Streams {
    subscribers: Vec<Subscriber>,
    /// The id of the next stream.
    next_id: u64,
}

/// One event stream.
pub(crate) struct Subscriber {
    id: u64,
    filter: Filter,
    tx: mpsc::Sender<Item>,
    /// Frames skipped because the stream was full, not yet reported (shared with the stream,
    /// which reports them once it has drained what came before them).
    missed: Arc<AtomicU64>,
    /// Room kept beyond the stream's capacity for what one socket read delivers; 0 for a
    /// plain stream. Reading waits while a paced stream has less (see [`Streams::waits`]).
    headroom: usize,
    /// How long reading waits for a paced stream at a time; `None`: as long as it takes.
    patience: Option<Arc<Patience>>,
}

/// Which frames a stream is for (gaps are for every stream).
enum Filter {
    All,
    Runtime(RuntimeScope),
    /// The `terminal_*` frames of one terminal, and where its `terminal_exited` goes when the
    /// stream is too full to take it (a stream with patience skips; the exit must not be lost).
    Terminal(Box<str>, ExitSlot),
}

/// A terminal's `terminal_exited`, kept for its stream.
pub(crate) type ExitSlot = Arc<std::sync::Mutex<Option<RawFrame>>>;

impl From<Option<RuntimeScope>> for Filter {
    fn from(scope: Option<RuntimeScope>) -> Self {
        scope.map_or(Filter::All, Filter::Runtime)
    }
}

/// What became of an item offered to a stream.
#[derive(PartialEq, Eq)]
pub(crate) enum Offer {
    Sent,
    /// The stream was full; the item is counted as missed.
    Skipped,
    /// The stream was dropped.
    Closed,
}

/// A paced stream's limit on holding up reading.
struct Patience {
    /// The longest wait for room.
    wait: Duration,
    /// Set when a wait ran out; reading no longer waits for the stream until it has drained
    /// half its buffer.
    waited_out: AtomicBool,
}

impl Patience {
    fn new(wait: Duration) -> Arc<Self> {
        Arc::new(Self {
            wait,
            waited_out: AtomicBool::new(false),
        })
    }
}

impl Subscriber {
    /// The stream's id, unique within the client.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Whether `item` is for this stream: gaps are for every stream, frames for those without
    /// a filter, of the filter's runtime or of the filter's terminal.
    pub fn wants(&self, item: &Item) -> bool {
        match (&self.filter, item) {
            (Filter::Runtime(scope), Ok(frame)) => frame.is_for(scope),
            (Filter::Terminal(terminal_id, _), Ok(frame)) => is_of_terminal(frame, terminal_id),
            _ => true,
        }
    }

    /// Offers `item`, reporting first the items skipped since the last one that fitted.
    pub fn offer(&self, item: &Item) -> Offer {
        let missed = self.missed.swap(0, Ordering::AcqRel);
        if missed > 0 {
            match self.tx.try_send(Err(Gap::Lagged { missed })) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    self.missed.fetch_add(missed, Ordering::AcqRel);
                    return self.skip(item);
                }
                Err(mpsc::error::TrySendError::Closed(_)) => return Offer::Closed,
            }
        }
        match self.tx.try_send(item.clone()) {
            Ok(()) => Offer::Sent,
            Err(mpsc::error::TrySendError::Full(_)) => self.skip(item),
            Err(mpsc::error::TrySendError::Closed(_)) => Offer::Closed,
        }
    }

    /// Counts `item` as missed; a terminal's `terminal_exited` is kept in its slot, so that
    /// its stream still ends.
    fn skip(&self, item: &Item) -> Offer {
        if let (Filter::Terminal(_, slot), Ok(frame)) = (&self.filter, item)
            && frame.frame_type() == "terminal_exited"
        {
            *slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(frame.clone());
        }
        self.missed.fetch_add(1, Ordering::AcqRel);
        Offer::Skipped
    }
}

impl Streams {
    /// A new stream of `capacity` frames, of every frame or only of `filter`'s. It gets
    /// nothing until [`Streams::add`]ed.
    pub fn plain(&mut self, filter: Option<RuntimeScope>, capacity: usize) -> (Subscriber, RawEvents) {
        self.open(filter.into(), capacity.max(1), 0, None)
    }

    /// A new stream of every frame that never falls behind: while it holds `capacity` items,
    /// reading waits (see [`Streams::waits`]).
    pub fn paced(&mut self, capacity: usize) -> (Subscriber, RawEvents) {
        self.open(Filter::All, capacity.max(1), PACED_HEADROOM, None)
    }

    /// A new paced stream of the frames of terminal `terminal_id`: while it holds `capacity`
    /// items reading waits, for at most `patience` at a time when there is one. A
    /// `terminal_exited` it skips goes to `exit`.
    pub fn terminal(
        &mut self,
        terminal_id: &str,
        capacity: usize,
        patience: Option<Duration>,
        exit: ExitSlot,
    ) -> (Subscriber, RawEvents) {
        let filter = Filter::Terminal(terminal_id.into(), exit);
        let patience = patience.map(Patience::new);
        self.open(filter, capacity.max(1), TERMINAL_HEADROOM, patience)
    }

    /// A new paced stream, of every frame or only of `filter`'s, that holds up reading for at
    /// most `patience` at a time.
    pub fn patient(
        &mut self,
        filter: Option<RuntimeScope>,
        capacity: usize,
        patience: Duration,
    ) -> (Subscriber, RawEvents) {
        let patience = Patience::new(patience);
        self.open(filter.into(), capacity.max(1), PACED_HEADROOM, Some(patience))
    }

    /// A stream of `capacity` items; with `headroom`, a paced one.
    fn open(
        &mut self,
        filter: Filter,
        capacity: usize,
        headroom: usize,
        patience: Option<Arc<Patience>>,
    ) -> (Subscriber, RawEvents) {
        let (tx, rx) = mpsc::channel(capacity + headroom);
        let missed = Arc::new(AtomicU64::new(0));
        let subscriber = Subscriber {
            id: self.next_id,
            filter,
            tx,
            missed: Arc::clone(&missed),
            headroom,
            patience,
        };
        self.next_id += 1;
        (subscriber, RawEvents::new(rx, missed))
    }

    /// Starts delivering to `subscriber`.
    pub fn add(&mut self, subscriber: Subscriber) {
        self.subscribers.push(subscriber);
    }

    /// Ends every stream.
    pub fn clear(&mut self) {
        self.subscribers.clear();
    }

    /// The ids of the streams delivered to.
    pub fn ids(&self) -> HashSet<u64> {
        self.subscribers.iter().map(Subscriber::id).collect()
    }

    /// Offers `item` to every stream it is for that `skip` does not name; `sent` learns which
    /// streams took it. A full stream skips it and counts it, to report before its next frame
    /// (or when it has drained); a dropped stream is forgotten. Returns whether one was.
    pub fn offer(&mut self, item: &Item, skip: impl Fn(u64) -> bool, mut sent: impl FnMut(u64)) -> bool {
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
        closed
    }

    /// What reading must wait for before the next socket read: the paced streams without room
    /// for what it can deliver. A stream with patience, once a wait for it ran out, is not
    /// waited for again until it has drained half its buffer (meanwhile it skips, as a plain
    /// stream does).
    pub fn waits(&self) -> Vec<Wait> {
        let mut full = Vec::new();
        for subscriber in self.subscribers.iter().filter(|subscriber| subscriber.headroom > 0) {
            let room = subscriber.tx.capacity();
            let headroom = subscriber.headroom;
            if let Some(patience) = &subscriber.patience
                && patience.waited_out.load(Ordering::Acquire)
            {
                let buffer = subscriber.tx.max_capacity();
                if buffer - room <= (buffer - headroom) / 2 {
                    patience.waited_out.store(false, Ordering::Release);
                }
                continue;
            }
            if room < headroom {
                full.push(Wait {
                    tx: subscriber.tx.clone(),
                    headroom,
                    patience: subscriber.patience.clone(),
                });
            }
        }
        full
    }
}

/// A full paced stream that reading waits for.
pub(crate) struct Wait {
    tx: mpsc::Sender<Item>,
    headroom: usize,
    patience: Option<Arc<Patience>>,
}

impl Wait {
    /// Waits until the stream has room for what the next socket read can deliver; with
    /// patience, until half of it is free, for at most its patience.
    pub async fn for_room(self) {
        // Err: the stream was dropped, and is forgotten at the next delivery.
        match self.patience {
            None => {
                let _ = self.tx.reserve_many(self.headroom).await;
            }
            Some(patience) => {
                // Until half the stream is free: reading then goes on in bursts, not a
                // frame at a time as the reader takes them.
                let room = self.headroom + (self.tx.max_capacity() - self.headroom) / 2;
                if tokio::time::timeout(patience.wait, self.tx.reserve_many(room))
                    .await
                    .is_err()
                {
                    patience.waited_out.store(true, Ordering::Release);
                }
            }
        }
    }
}

/// Whether `frame` is a `terminal_*` frame of terminal `terminal_id`.
fn is_of_terminal(frame: &RawFrame, terminal_id: &str) -> bool {
    #[derive(serde::Deserialize)]
    struct Named<'a> {
        #[serde(borrow)]
        terminal_id: std::borrow::Cow<'a, str>,
    }
    frame.frame_type().starts_with("terminal_")
        && serde_json::from_str::<Named<'_>>(frame.text()).is_ok_and(|named| named.terminal_id == terminal_id)
}
