//! Event streams: every frame the server sends, in order, through a bounded buffer per stream.
//!
//! Each stream buffers up to the client's `event_capacity` frames (default
//! [`DEFAULT_EVENT_CAPACITY`]). A stream that falls further behind skips frames and then yields
//! [`Gap::Lagged`] with their count, so a consumer that stops reading never holds up requests,
//! external tool handlers or other streams, and never loses frames silently.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use futures_util::Stream;
use tokio::sync::mpsc;

use crate::Gap;
use crate::frame::{Frame, RawFrame};

/// Frames a stream buffers before it starts skipping.
pub const DEFAULT_EVENT_CAPACITY: usize = 4096;

/// One item of a stream: a frame, or a gap before the next one.
pub type Item = Result<RawFrame, Gap>;

/// A stream of frames as received, without the typed view (for forwarding, logging and
/// language bindings). Ends when the client closes, or when the connection is lost for good.
pub struct RawEvents {
    rx: mpsc::Receiver<Item>,
    /// Frames skipped while the buffer was full and not yet reported.
    missed: Arc<AtomicU64>,
}

impl RawEvents {
    pub(crate) fn new(rx: mpsc::Receiver<Item>, missed: Arc<AtomicU64>) -> Self {
        Self { rx, missed }
    }

    /// The next item; `None` once the stream has ended.
    pub async fn next(&mut self) -> Option<Item> {
        std::future::poll_fn(|cx| self.poll_next_item(cx)).await
    }

    /// Waits for at least one item, then moves up to `limit` buffered items into `items`.
    /// Returns how many it added; 0 once the stream has ended.
    pub async fn next_batch(&mut self, items: &mut Vec<Item>, limit: usize) -> usize {
        let Some(first) = self.next().await else {
            return 0;
        };
        let before = items.len();
        items.push(first);
        while items.len() - before < limit
            && let Ok(item) = self.rx.try_recv()
        {
            items.push(item);
        }
        items.len() - before
    }

    /// Polls for the next item. Once the buffer is drained, frames skipped while it was full
    /// are reported as [`Gap::Lagged`].
    pub fn poll_next_item(&mut self, cx: &mut Context<'_>) -> Poll<Option<Item>> {
        match self.rx.poll_recv(cx) {
            // Tokio's cooperative budget ran out; the frames before the gap come first.
            Poll::Pending if !self.rx.is_empty() => Poll::Pending,
            Poll::Pending => match self.missed.swap(0, Ordering::AcqRel) {
                0 => Poll::Pending,
                missed => Poll::Ready(Some(Err(Gap::Lagged { missed }))),
            },
            ready => ready,
        }
    }
}

impl Stream for RawEvents {
    type Item = Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Item>> {
        self.poll_next_item(cx)
    }
}

/// A stream of frames with their typed view; see [`Frame`].
pub struct Events {
    raw: RawEvents,
}

impl Events {
    pub(crate) fn new(raw: RawEvents) -> Self {
        Self { raw }
    }
}

impl Stream for Events {
    type Item = Result<Frame, Gap>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.raw
            .poll_next_item(cx)
            .map(|item| item.map(|item| item.map(RawFrame::into_frame)))
    }
}
