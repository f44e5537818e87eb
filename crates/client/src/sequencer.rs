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

#[cfg(test)]
mod tests {
    use super::*;

    fn event(seq: u64) -> RawFrame {
        RawFrame::from(format!(r#"{{"type":"stream_delta","event_seq":{seq}}}"#))
    }

    fn seqs(sequencer: &mut Sequencer, frame: RawFrame) -> Vec<Option<u64>> {
        let mut out = Vec::new();
        sequencer.order(frame, |frame| out.push(frame.event_seq()));
        out
    }

    #[test]
    fn early_events_wait_for_the_ones_before_them() {
        let mut sequencer = Sequencer::default();
        assert_eq!(seqs(&mut sequencer, event(2)), []);
        assert_eq!(seqs(&mut sequencer, event(3)), []);
        // A frame without event_seq passes straight through.
        assert_eq!(
            seqs(&mut sequencer, RawFrame::from(r#"{"type":"pong"}"#.to_owned())),
            [None]
        );
        assert_eq!(seqs(&mut sequencer, event(1)), [Some(1), Some(2), Some(3)]);
        assert_eq!(seqs(&mut sequencer, event(4)), [Some(4)]);
    }

    #[test]
    fn a_skipped_number_is_given_up_on_past_the_limit() {
        let mut sequencer = Sequencer::default();
        let mut delivered = Vec::new();
        for seq in 2..=(MAX_EARLY as u64 + 2) {
            delivered.extend(seqs(&mut sequencer, event(seq)));
        }
        assert_eq!(delivered.len(), MAX_EARLY + 1);
        assert_eq!(delivered.first(), Some(&Some(2)));
    }
}
