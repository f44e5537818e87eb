//! One turn's frames: from the `input` that starts (or queues) it to its `turn_finished`.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::{FutureExt, Stream};
use indexmap::IndexMap;
use serde::Deserialize;

use crate::events::{Item, RawEvents};
use crate::frame::{Frame, RawFrame};
use crate::types::{Disposition, InputAccepted};
use crate::{Error, Gap};

/// The frames of one turn, ending with its `turn_finished`.
///
/// Made by [`Client::turn`](crate::Client::turn) and
/// [`Client::send_message`](crate::Client::send_message). When the input started a turn, the
/// stream holds every frame of the runtime after the `input_accepted`. When it was queued
/// behind another turn, the stream skips that turn and begins with the frames of the turn
/// whose run consumes one of the input's `client_message_id`s (`update_loop_status`
/// `client_message_ids_by_run_id`); inputs queued together share that turn. A
/// [`Gap::Disconnected`] ends the stream: the server cancels a turn whose only watcher left.
/// A client that reconnects on its own and resumes its event streams (the default, on a server
/// that offers it) sees no gap across a dropped connection: its turn goes on.
pub struct Turn {
    events: RawEvents,
    accepted: InputAccepted,
    /// The same, as received.
    accepted_frame: RawFrame,
    client_message_ids: Vec<String>,
    phase: Phase,
    /// Frames of a turn that may be ours, held until a loop status says whether it is.
    held: VecDeque<RawFrame>,
    ready: VecDeque<RawFrame>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for our `input_accepted` to come through the stream.
    Accepting,
    /// Queued: waiting for the turn that consumes our input.
    Queued,
    /// In our turn.
    Ours,
    /// Our `turn_finished` was yielded (or the connection dropped).
    Done,
}

impl Turn {
    /// The turn of an input the server answered with `accepted_frame` (an `input_accepted`).
    pub(crate) fn new(
        events: RawEvents,
        accepted_frame: RawFrame,
        client_message_ids: Vec<String>,
    ) -> Result<Self, Error> {
        Ok(Self {
            events,
            accepted: accepted_frame.parse()?,
            accepted_frame,
            client_message_ids,
            phase: Phase::Accepting,
            held: VecDeque::new(),
            ready: VecDeque::new(),
        })
    }

    /// The server's `input_accepted` for the input.
    pub fn accepted(&self) -> &InputAccepted {
        &self.accepted
    }

    /// The same `input_accepted` exactly as received, fields this version does not know included.
    pub fn accepted_frame(&self) -> &RawFrame {
        &self.accepted_frame
    }

    /// The `client_message_id`s of the input's messages.
    pub fn client_message_ids(&self) -> &[String] {
        &self.client_message_ids
    }

    /// Leaves [`Phase::Accepting`]: the frames from now on follow the `input_accepted`.
    fn accept(&mut self) {
        self.phase = match self.accepted.disposition {
            Some(Disposition::Queued) => Phase::Queued,
            _ => Phase::Ours,
        };
    }

    fn take(&mut self, frame: RawFrame) {
        match self.phase {
            Phase::Accepting => {
                if frame.frame_type() == "input_accepted" && frame.request_id() == Some(&self.accepted.request_id) {
                    self.accept();
                }
            }
            Phase::Queued => {
                if frame.frame_type() == "turn_finished" {
                    // The end of a turn before ours.
                    self.held.clear();
                    return;
                }
                let claims = self.claims(&frame);
                self.held.push_back(frame);
                if claims {
                    self.ready.append(&mut self.held);
                    self.phase = Phase::Ours;
                }
            }
            Phase::Ours => self.ready.push_back(frame),
            Phase::Done => {}
        }
    }

    /// Whether `frame` is a loop status showing a running run that consumed our input.
    fn claims(&self, frame: &RawFrame) -> bool {
        #[derive(Deserialize)]
        struct Status {
            loop_status: Loop,
        }
        #[derive(Deserialize)]
        struct Loop {
            #[serde(default)]
            active_run_ids: Vec<String>,
            #[serde(default)]
            client_message_ids_by_run_id: Option<IndexMap<String, Vec<String>>>,
        }
        if frame.frame_type() != "update_loop_status" {
            return false;
        }
        let Ok(Status { loop_status }) = serde_json::from_str::<Status>(frame.text()) else {
            return false;
        };
        let consumed = loop_status.client_message_ids_by_run_id.unwrap_or_default();
        loop_status.active_run_ids.iter().any(|run| {
            consumed
                .get(run)
                .is_some_and(|ids| ids.iter().any(|id| self.client_message_ids.contains(id)))
        })
    }
}

impl Turn {
    /// Waits for at least one item, then moves up to `limit` items that are ready into
    /// `items`. Returns how many it added; 0 once the turn has ended.
    pub async fn next_batch(&mut self, items: &mut Vec<Item>, limit: usize) -> usize {
        let Some(first) = std::future::poll_fn(|cx| self.poll_next_raw(cx)).await else {
            return 0;
        };
        let before = items.len();
        items.push(first);
        while items.len() - before < limit
            && let Some(Some(item)) = std::future::poll_fn(|cx| self.poll_next_raw(cx)).now_or_never()
        {
            items.push(item);
        }
        items.len() - before
    }

    /// Polls for the turn's next frame as received, without the typed view (what the
    /// [`Stream`] implementation yields, before parsing; for language bindings).
    pub fn poll_next_raw(&mut self, cx: &mut Context<'_>) -> Poll<Option<Item>> {
        loop {
            if let Some(frame) = self.ready.pop_front() {
                if frame.frame_type() == "turn_finished" {
                    self.phase = Phase::Done;
                    self.ready.clear();
                }
                return Poll::Ready(Some(Ok(frame)));
            }
            if self.phase == Phase::Done {
                return Poll::Ready(None);
            }
            match self.events.poll_next_item(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    self.phase = Phase::Done;
                    return Poll::Ready(None);
                }
                Poll::Ready(Some(Err(gap))) => {
                    match gap {
                        // Ends the turn unless the stream resumes (`Interrupted`, then `Resumed`).
                        Gap::Disconnected { .. } | Gap::Reconnected => self.phase = Phase::Done,
                        // The skipped frames may have held the `input_accepted`.
                        Gap::Lagged { .. } if self.phase == Phase::Accepting => self.accept(),
                        _ => {}
                    }
                    return Poll::Ready(Some(Err(gap)));
                }
                Poll::Ready(Some(Ok(frame))) => self.take(frame),
            }
        }
    }
}

impl Stream for Turn {
    type Item = Result<Frame, Gap>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.poll_next_raw(cx)
            .map(|item| item.map(|item| item.map(RawFrame::into_frame)))
    }
}
