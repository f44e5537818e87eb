//! The time the scheduler goes by: the system's, or one a test sets.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::Notify;

use crate::sync::lock;

/// The scheduler's clock.
#[derive(Debug, Clone, Default)]
pub enum Clock {
    /// The system's clock: the scheduler wakes at each minute.
    #[default]
    System,
    /// A clock that moves only when told (tests): the scheduler wakes when it does.
    Manual(Arc<ManualClock>),
}

impl Clock {
    /// A manual clock showing `at`.
    pub fn manual(at: Timestamp) -> (Self, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock {
            now: Mutex::new(at),
            moved: Notify::new(),
        });
        (Self::Manual(clock.clone()), clock)
    }

    /// The time now.
    pub fn now(&self) -> Timestamp {
        match self {
            Self::System => Timestamp::now(),
            Self::Manual(clock) => *lock(&clock.now),
        }
    }

    /// Resolves at the start of the next minute (system), or when the clock moves (manual).
    pub async fn next_minute(&self) {
        match self {
            Self::System => {
                let into = self.now().as_millisecond().rem_euclid(60_000);
                let wait = u64::try_from(60_000 - into).unwrap_or(60_000);
                tokio::time::sleep(Duration::from_millis(wait)).await;
            }
            Self::Manual(clock) => clock.moved.notified().await,
        }
    }
}

/// A clock a test sets.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<Timestamp>,
    moved: Notify,
}

impl ManualClock {
    /// Sets the time (forward or back) and wakes the scheduler.
    pub fn set(&self, at: Timestamp) {
        *lock(&self.now) = at;
        self.moved.notify_waiters();
        self.moved.notify_one();
    }
}
