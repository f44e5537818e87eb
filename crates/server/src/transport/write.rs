//! Writing a session's outbound queue: `event_seq` and `emitted_at` are given here, each frame
//! goes to the control or the stream socket, a burst is flushed once, and every socket is
//! pinged.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::SinkExt;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::Sink;
use super::close::{close, control_lost};
use crate::clock;
use crate::metrics::Metrics;
use crate::outbound::{Channel, Outgoing};
use crate::sessions::Session;

/// What a split session's stream socket (by id) asks of the session's writer, which holds its
/// sink.
pub(super) enum StreamSocket {
    /// Write stream frames here from now on.
    Attach(u64, Sink),
    /// Let the sink go, after sending this close frame if there is one; answer when done.
    /// Stream frames go to control again.
    Detach(u64, Option<(CloseCode, String)>, oneshot::Sender<()>),
}

/// Frames written per flush at most.
const FRAMES_PER_FLUSH: usize = 256;

/// Writes a session's queued frames, assigning `event_seq`; routes to the stream socket of a
/// split session while one is attached. A burst of queued frames is written with one flush.
/// Pings every socket it writes to every `ping_interval`. Once the queue is closed, or the control
/// socket cannot be written, sends the close frame to each socket and returns.
pub(super) async fn write(
    session: Arc<Session>,
    mut control: Sink,
    mut stream_sockets: mpsc::Receiver<StreamSocket>,
    ping_interval: Duration,
) {
    let mut stream: Option<(u64, Sink)> = None;
    let mut event_seq = 0;
    let ping_interval = ping_interval.max(Duration::from_millis(1)); // an interval cannot be zero
    let mut pings = tokio::time::interval_at(Instant::now() + ping_interval, ping_interval);
    pings.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let (code, reason) = 'writing: loop {
        let next = tokio::select! {
            biased;
            Some(request) = stream_sockets.recv() => {
                match request {
                    StreamSocket::Attach(id, sink) => stream = Some((id, sink)),
                    StreamSocket::Detach(id, close_frame, done) => {
                        if stream.as_ref().is_some_and(|(attached, _)| *attached == id)
                            && let (Some((_, mut sink)), Some((code, reason))) = (stream.take(), close_frame)
                        {
                            let _ = sink.send(close(code, &reason)).await;
                        }
                        let _ = done.send(());
                    }
                }
                continue;
            }
            _ = pings.tick() => {
                if let Some((_, sink)) = stream.as_mut()
                    && sink.send(Message::Ping(Bytes::new())).await.is_err()
                {
                    stream = None;
                }
                if control.send(Message::Ping(Bytes::new())).await.is_err() {
                    break 'writing control_lost(&session.outbound);
                }
                continue;
            }
            next = session.outbound.next_batch(FRAMES_PER_FLUSH) => next,
        };
        let mut frames = match next {
            Ok(frames) => frames,
            Err(closed) => break closed,
        };
        if frames.len() < FRAMES_PER_FLUSH / 8 {
            // Let the producers that woke us add to the batch: fewer, larger socket writes.
            tokio::task::yield_now().await;
            frames.extend(session.outbound.take(FRAMES_PER_FLUSH - frames.len()));
        }
        // Frames written together were serialised at the same moment.
        let emitted_at = clock::now_iso();
        // Counted once their socket took them (a flush that failed sent nothing countable).
        let (mut to_stream, mut to_control) = (Sent::default(), Sent::default());
        let metrics = session.outbound.metrics();
        for frame in frames {
            let route = frame.route();
            let (text, is_delta) = match frame {
                Outgoing::Event(event) => {
                    event_seq += 1;
                    (event.render(event_seq, &emitted_at, false), event.is_delta)
                }
                Outgoing::Resumable(event) => {
                    event_seq += 1;
                    (event.render(event_seq, &emitted_at, true), event.is_delta)
                }
                Outgoing::Direct(bytes) => (String::from_utf8(bytes.to_vec()).unwrap_or_default(), false),
            };
            if route == Channel::Stream
                && let Some((_, sink)) = stream.as_mut()
            {
                if sink.feed(Message::text(text.clone())).await.is_ok() {
                    to_stream.add(is_delta);
                    continue;
                }
                // The stream socket went away: from now on everything goes to control.
                stream = None;
            }
            if control.feed(Message::text(text)).await.is_err() {
                break 'writing control_lost(&session.outbound);
            }
            to_control.add(is_delta);
        }
        session.outbound.set_backed_up(true);
        if to_stream.frames > 0
            && let Some((_, sink)) = stream.as_mut()
        {
            if sink.flush().await.is_ok() {
                to_stream.record(metrics);
            } else {
                stream = None;
            }
        }
        let flushed = to_control.frames == 0 || control.flush().await.is_ok();
        session.outbound.set_backed_up(false);
        if !flushed {
            break control_lost(&session.outbound);
        }
        to_control.record(metrics);
    };
    if let Some((_, mut sink)) = stream {
        let _ = sink.send(close(code, &reason)).await;
    }
    let _ = control.send(close(code, &reason)).await;
}

/// The frames and deltas of a batch one socket took.
#[derive(Default)]
struct Sent {
    frames: u64,
    deltas: u64,
}

impl Sent {
    fn add(&mut self, is_delta: bool) {
        self.frames += 1;
        self.deltas += u64::from(is_delta);
    }

    /// Adds them to `letta_frames_sent_total` and `letta_deltas_sent_total`.
    fn record(self, metrics: &Metrics) {
        metrics.frames_sent.inc_by(self.frames);
        metrics.deltas_sent.inc_by(self.deltas);
    }
}
