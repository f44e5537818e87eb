//! Putting the runtime events of a split pair of sockets back in `event_seq` order.

use std::collections::BTreeMap;

use crate::frame::RawFrame;

/// Events held waiting for a missing one before the sequencer gives up on it.
pub(crate) const MAX_EARLY: usize = 4096;

/// Puts the runtime events of a split pair back in `event_seq` order: the pair shares one
/// sequence over two sockets, and reading both at once can see `turn_finished` (control)
/// before the last deltas (stream). Events that arrive
/// early wait for the ones before them; frames without `event_seq` pass straight through.
#[derive(Debug)]
pub(crate) struct Sequencer {
    next: u64,
    early: BTreeMap<u64, RawFrame>,
}

impl Default for Sequencer {
    fn default() -> Self {
        Self {
            next: 1,
            early: BTreeMap::new(),
        }
    }
}

impl Sequencer {
    /// Hands `frame`, and every held event it unblocks, to `deliver` in order.
    pub fn order(&mut self, frame: RawFrame, mut deliver: impl FnMut(RawFrame)) {
        match frame.event_seq() {
            Some(seq) if seq > self.next => {
                self.early.insert(seq, frame);
                if self.early.len() > MAX_EARLY {
                    // The server skipped a number: go on from the oldest held event.
                    self.next = self.early.keys().next().copied().unwrap_or(seq);
                }
            }
            Some(seq) => {
                self.next = self.next.max(seq + 1);
                deliver(frame);
            }
            None => return deliver(frame),
        }
        while let Some(frame) = self.early.remove(&self.next) {
            self.next += 1;
            deliver(frame);
        }
    }
}
