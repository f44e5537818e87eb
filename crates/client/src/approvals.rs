//! The approvals pending on the current connection, and delivering each to each stream once.
//! See the crate docs, [Approvals](crate#approvals).

use std::collections::HashSet;

use serde::Deserialize;

use crate::events::Item;
use crate::fanout::{Offer, Streams, Subscriber};
use crate::frame::RawFrame;
use crate::types::RuntimeScope;

/// Pending approvals a client records at most; past it the oldest is forgotten (a stream made
/// later does not get it, and a stream that had it gets its next replay again).
pub(crate) const MAX_APPROVALS: usize = 1024;

/// The approvals pending, oldest first.
#[derive(Default)]
pub(crate) struct Approvals {
    pending: Vec<Approval>,
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

impl Approvals {
    /// Delivers one received frame to `streams` (an approval only to the streams that have not
    /// had it) and settles the approvals it says are no longer pending.
    pub fn receive(&mut self, frame: &RawFrame, streams: &mut Streams) {
        let delivered = match frame.frame_type() {
            "control_request" => self.asked(frame, streams),
            "update_device_status" => {
                self.settle_unlisted(frame);
                false
            }
            "turn_finished" => {
                if let Some(scope) = frame.runtime() {
                    self.pending.retain(|approval| !approval.is_for(scope));
                }
                false
            }
            _ => false,
        };
        if !delivered {
            self.deliver(&Ok(frame.clone()), streams);
        }
    }

    /// Offers `item` to every stream it is for (see [`Streams::offer`]), forgetting the
    /// streams that were dropped.
    pub fn deliver(&mut self, item: &Item, streams: &mut Streams) {
        self.offer(item, streams, |_| false, |_| {});
    }

    fn offer(&mut self, item: &Item, streams: &mut Streams, skip: impl Fn(u64) -> bool, sent: impl FnMut(u64)) {
        if streams.offer(item, skip, sent) {
            let live = streams.ids();
            for approval in &mut self.pending {
                approval.delivered.retain(|id| live.contains(id));
            }
        }
    }

    /// Offers a new stream the approvals pending, before it gets anything else: otherwise it
    /// would get them only at the next replay.
    pub fn greet(&mut self, subscriber: &Subscriber) {
        for approval in &mut self.pending {
            let item = Ok(approval.frame.clone());
            if subscriber.wants(&item) && subscriber.offer(&item) == Offer::Sent {
                approval.delivered.insert(subscriber.id());
            }
        }
    }

    /// The `control_request`s pending, of every runtime or of `scope`'s, oldest first.
    pub fn pending(&self, scope: Option<&RuntimeScope>) -> Vec<RawFrame> {
        self.pending
            .iter()
            .filter(|approval| scope.is_none_or(|scope| approval.is_for(scope)))
            .map(|approval| approval.frame.clone())
            .collect()
    }

    /// Forgets every approval (the connection they were asked on is gone).
    pub fn clear(&mut self) {
        self.pending.clear();
    }

    /// Records a `control_request` as pending and delivers it to the streams that have not had
    /// it (the replays on `sync` and `runtime_start` repeat it with the same `request_id`).
    /// `false` for one without a scope or a `request_id`, which is delivered as any frame.
    fn asked(&mut self, frame: &RawFrame, streams: &mut Streams) -> bool {
        let (Some(scope), Some(id)) = (frame.runtime(), frame.request_id()) else {
            return false;
        };
        let known = self
            .pending
            .iter()
            .position(|approval| approval.is_for(scope) && approval.frame.request_id() == Some(id));
        let index = known.unwrap_or_else(|| {
            if self.pending.len() >= MAX_APPROVALS {
                self.pending.remove(0);
            }
            self.pending.push(Approval {
                frame: frame.clone(),
                delivered: HashSet::new(),
            });
            self.pending.len() - 1
        });
        let mut delivered = std::mem::take(&mut self.pending[index].delivered);
        let mut took = Vec::new();
        self.offer(
            &Ok(frame.clone()),
            streams,
            |id| delivered.contains(&id),
            |id| took.push(id),
        );
        delivered.extend(took);
        let approval = &mut self.pending[index];
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
        if !self.pending.iter().any(|approval| approval.is_for(scope)) {
            return;
        }
        let Ok(status) = serde_json::from_str::<Status>(frame.text()) else {
            return;
        };
        let listed = status.device_status.pending_control_requests;
        self.pending.retain(|approval| {
            !approval.is_for(scope)
                || listed
                    .iter()
                    .any(|p| approval.frame.request_id() == Some(p.request_id.as_str()))
        });
    }
}
