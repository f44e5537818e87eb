//! Streams of frames for JavaScript, read in batches.

use letta_app_server_client::{Gap, Item, RawEvents, Turn};
use napi_derive::napi;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

/// Where a stream's items come from.
enum Source {
    Events(RawEvents),
    Turn(Box<Turn>),
}

impl Source {
    /// Waits for one item, then takes up to `limit` in all; 0 once the source has ended.
    async fn next_batch(&mut self, items: &mut Vec<Item>, limit: usize) -> usize {
        match self {
            Source::Events(events) => events.next_batch(items, limit).await,
            Source::Turn(turn) => turn.next_batch(items, limit).await,
        }
    }
}

/// Frames (and gaps) for JavaScript: every frame of the client, or the frames of one turn.
/// Ends when its source ends or when it is closed; dropping it unsubscribes.
#[napi]
pub struct FrameStream {
    source: Mutex<Option<Source>>,
    closed: CancellationToken,
    /// The `input_accepted` of a turn's input, as received.
    accepted: Option<String>,
}

impl FrameStream {
    pub(crate) fn events(events: RawEvents) -> Self {
        Self::new(Source::Events(events), None)
    }

    pub(crate) fn turn(turn: Turn) -> Self {
        let accepted = turn.accepted_frame().text().to_owned();
        Self::new(Source::Turn(Box::new(turn)), Some(accepted))
    }

    fn new(source: Source, accepted: Option<String>) -> Self {
        Self {
            source: Mutex::new(Some(source)),
            closed: CancellationToken::new(),
            accepted,
        }
    }
}

#[napi]
impl FrameStream {
    /// Waits for at least one item and returns up to `limit` of them as the text of a JSON
    /// array (frames are objects, gaps arrays); `null` once the stream has ended or is closed.
    #[napi]
    pub async fn next(&self, limit: u32) -> Option<String> {
        let mut source = self.source.lock().await;
        let mut items = Vec::with_capacity(limit as usize);
        let taken = tokio::select! {
            taken = async {
                match source.as_mut() {
                    Some(source) => source.next_batch(&mut items, limit.max(1) as usize).await,
                    None => 0,
                }
            } => taken,
            () = self.closed.cancelled() => 0,
        };
        if taken == 0 {
            // Ended or closed: unsubscribe now rather than when JavaScript collects the stream.
            *source = None;
            return None;
        }
        Some(encode(&items))
    }

    /// Ends the stream: a pending [`FrameStream::next`] returns `null`, and so does every
    /// later one.
    #[napi]
    pub fn close(&self) {
        self.closed.cancel();
        if let Ok(mut source) = self.source.try_lock() {
            *source = None;
        }
    }

    /// A turn's `input_accepted`, as JSON text.
    #[napi(getter)]
    pub fn accepted(&self) -> Option<String> {
        self.accepted.clone()
    }
}

/// The items as one JSON array: each frame as received, each gap as an array. Text that is not
/// a JSON object cannot be a frame and is left out.
fn encode(items: &[Item]) -> String {
    let length = items
        .iter()
        .map(|item| item.as_ref().map_or(64, |frame| frame.text().len() + 1))
        .sum::<usize>();
    let mut out = String::with_capacity(length + 2);
    out.push('[');
    for item in items {
        let start = out.len();
        if start > 1 {
            out.push(',');
        }
        match item {
            Ok(frame) if is_object(frame.frame_type(), frame.text()) => out.push_str(frame.text()),
            Ok(_) => out.truncate(start),
            Err(Gap::Lagged { missed }) => out.push_str(&format!("[\"lagged\",{missed}]")),
            Err(Gap::Disconnected { reason }) => {
                let reason = serde_json::Value::from(reason.as_str());
                out.push_str(&format!("[\"disconnected\",{reason}]"));
            }
            Err(Gap::Reconnected) => out.push_str("[\"reconnected\"]"),
            // A kind of gap this binding does not know yet.
            Err(other) => {
                let reason = serde_json::Value::from(other.to_string());
                out.push_str(&format!("[\"gap\",{reason}]"));
            }
        }
    }
    out.push(']');
    out
}

/// Whether a frame's text is a JSON object. A frame with a `type` was read as one already.
fn is_object(frame_type: &str, text: &str) -> bool {
    !frame_type.is_empty()
        || (text.trim_start().starts_with('{') && serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok())
}

#[cfg(test)]
mod tests {
    use letta_app_server_client::RawFrame;

    use super::*;

    fn frame(text: &str) -> Item {
        Ok(RawFrame::from(text.to_owned()))
    }

    #[test]
    fn frames_and_gaps_make_one_json_array() {
        let items = [
            frame(r#"{"type":"pong"}"#),
            Err(Gap::Lagged { missed: 3 }),
            frame("not json"),
            frame("[1,2]"),
            frame(r#"{"no_type":true}"#),
            Err(Gap::Disconnected {
                reason: "closed \"here\"".into(),
            }),
            Err(Gap::Reconnected),
        ];
        let text = encode(&items);
        assert_eq!(
            text,
            r#"[{"type":"pong"},["lagged",3],{"no_type":true},["disconnected","closed \"here\""],["reconnected"]]"#
        );
        assert!(serde_json::from_str::<serde_json::Value>(&text).is_ok());
        assert_eq!(encode(&[frame("not json")]), "[]");
    }
}
