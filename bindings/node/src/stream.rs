//! Streams of frames for JavaScript, read in batches.

use futures_util::{FutureExt, StreamExt};
use letta_app_server_client::{Error, FileWatch, Gap, Item, RawEvents, RawFrame, RawResponses, Terminal, Turn};
use napi_derive::napi;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

/// Where a stream's items come from.
enum Source {
    Events(RawEvents),
    Turn(Box<Turn>),
    /// A terminal's output frames, then its `terminal_exited`.
    Terminal(Box<Terminal>),
    /// The answers of a command answered by a stream, or why it could not be sent.
    Answers(Result<Box<RawResponses>, Option<Error>>),
    /// The changes of a watched file.
    Watch(Box<FileWatch>),
}

impl Source {
    /// Waits for one item, then takes up to `limit` in all, as the text of one JSON array;
    /// `None` once the source has ended.
    async fn next_batch(&mut self, limit: usize) -> Option<String> {
        let mut items = Vec::with_capacity(limit);
        let taken = match self {
            Source::Events(events) => events.next_batch(&mut items, limit).await,
            Source::Turn(turn) => turn.next_batch(&mut items, limit).await,
            Source::Terminal(terminal) => {
                items.push(std::future::poll_fn(|cx| terminal.poll_next_raw(cx)).await?);
                while items.len() < limit
                    && let Some(Some(item)) = std::future::poll_fn(|cx| terminal.poll_next_raw(cx)).now_or_never()
                {
                    items.push(item);
                }
                items.len()
            }
            Source::Answers(answers) => return next_answers(answers, limit).await,
            Source::Watch(watch) => return next_changes(watch, limit).await,
        };
        (taken > 0).then(|| encode(&items))
    }
}

/// Up to `limit` answers (at least one) as the text of one JSON array: each frame as received
/// and the error that ends the stream as an array, `["timeout", request_id]`,
/// `["disconnected", reason]`, `["closed"]` or `["failed", message]`; `None` at the end.
async fn next_answers(answers: &mut Result<Box<RawResponses>, Option<Error>>, limit: usize) -> Option<String> {
    let responses = match answers {
        Ok(responses) => responses,
        Err(failed) => return failed.take().map(|error| format!("[{}]", encode_error(&error))),
    };
    let mut items = vec![responses.next().await?];
    while items.len() < limit
        && let Some(Some(item)) = responses.next().now_or_never()
    {
        items.push(item);
    }
    Some(encode_results(&items))
}

/// Up to `limit` changes of a watched file (at least one) as the text of one JSON array: each
/// `file_changed` as received, gaps as [`encode`] writes them, and the server's refusal, which
/// ends the stream, as `["failed", message]`; `None` at the end.
async fn next_changes(watch: &mut FileWatch, limit: usize) -> Option<String> {
    let mut items = vec![watch.next_frame().await?];
    while items.len() < limit
        && let Some(Some(item)) = watch.next_frame().now_or_never()
    {
        items.push(item);
    }
    Some(encode_results(&items))
}

/// Frames and errors as the text of one JSON array.
fn encode_results(items: &[Result<RawFrame, Error>]) -> String {
    let mut out = String::from("[");
    for item in items {
        if out.len() > 1 {
            out.push(',');
        }
        match item {
            Ok(frame) => out.push_str(frame.text()),
            Err(Error::Gap(gap)) => out.push_str(&encode_gap(gap)),
            Err(error) => out.push_str(&encode_error(error)),
        }
    }
    out.push(']');
    out
}

fn encode_error(error: &Error) -> String {
    let text = |text: &str| serde_json::Value::from(text).to_string();
    match error {
        Error::Timeout { request_id, .. } => format!("[\"timeout\",{}]", text(request_id)),
        Error::Disconnected { reason } => format!("[\"disconnected\",{}]", text(reason)),
        Error::Closed => "[\"closed\"]".into(),
        other => format!("[\"failed\",{}]", text(&other.to_string())),
    }
}

/// Frames (and gaps) for JavaScript: every frame of the client, the frames of one turn, or the
/// answers of one command answered by a stream. Ends when its source ends or when it is
/// closed; dropping it unsubscribes.
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

    pub(crate) fn answers(answers: Result<RawResponses, Error>) -> Self {
        Self::new(Source::Answers(answers.map(Box::new).map_err(Some)), None)
    }

    pub(crate) fn watch(watch: FileWatch) -> Self {
        Self::new(Source::Watch(Box::new(watch)), None)
    }

    pub(crate) fn turn(turn: Turn) -> Self {
        let accepted = turn.accepted_frame().text().to_owned();
        Self::new(Source::Turn(Box::new(turn)), Some(accepted))
    }

    pub(crate) fn terminal(terminal: Terminal) -> Self {
        Self::new(Source::Terminal(Box::new(terminal)), None)
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
    /// array (frames are objects, gaps and errors arrays); `null` once the stream has ended or
    /// is closed.
    #[napi]
    pub async fn next(&self, limit: u32) -> Option<String> {
        let mut source = self.source.lock().await;
        let batch = tokio::select! {
            batch = async {
                match source.as_mut() {
                    Some(source) => source.next_batch(limit.max(1) as usize).await,
                    None => None,
                }
            } => batch,
            () = self.closed.cancelled() => None,
        };
        if batch.is_none() {
            // Ended or closed: unsubscribe now rather than when JavaScript collects the stream.
            *source = None;
        }
        batch
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
            Err(gap) => out.push_str(&encode_gap(gap)),
        }
    }
    out.push(']');
    out
}

/// A gap as an array: `["lagged", missed]`, `["disconnected", reason]`, `["reconnected"]`,
/// `["interrupted", reason]`, `["resumed"]`, or `["gap", description]` for a kind of gap this
/// binding does not know yet.
fn encode_gap(gap: &Gap) -> String {
    match gap {
        Gap::Lagged { missed } => format!("[\"lagged\",{missed}]"),
        Gap::Disconnected { reason } => {
            let reason = serde_json::Value::from(reason.as_str());
            format!("[\"disconnected\",{reason}]")
        }
        Gap::Reconnected => "[\"reconnected\"]".into(),
        Gap::Interrupted { reason } => {
            let reason = serde_json::Value::from(reason.as_str());
            format!("[\"interrupted\",{reason}]")
        }
        Gap::Resumed => "[\"resumed\"]".into(),
        other => {
            let reason = serde_json::Value::from(other.to_string());
            format!("[\"gap\",{reason}]")
        }
    }
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

    #[test]
    fn what_ends_an_answer_stream_is_an_array_javascript_tells_apart() {
        let timeout = Error::Timeout {
            request_id: "list-\"1".into(),
            after: std::time::Duration::from_secs(1),
        };
        assert_eq!(encode_error(&timeout), r#"["timeout","list-\"1"]"#);
        let dropped = Error::Disconnected { reason: "gone".into() };
        assert_eq!(encode_error(&dropped), r#"["disconnected","gone"]"#);
        assert_eq!(encode_error(&Error::Closed), r#"["closed"]"#);
        let other = Error::Protocol { message: "odd".into() };
        assert_eq!(encode_error(&other), r#"["failed","protocol mismatch: odd"]"#);
    }
}
