//! Requests waiting for their answers: correlating received frames with them by `request_id`,
//! and waiting for an answer up to a timeout. A request answered by a stream gets every answer
//! frame until one carries `done: true`.

use std::collections::HashMap;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::{mpsc, oneshot};

use crate::Error;
use crate::frame::RawFrame;

/// The requests waiting for an answer, by `request_id`.
#[derive(Default)]
pub(crate) struct Pending {
    waiting: HashMap<String, Waiting>,
}

/// A request waiting for its answer.
struct Waiting {
    /// Frame types that answer it (besides `error`); empty: any frame with its id.
    answers: &'static [&'static str],
    reply: Reply,
}

/// Where a request's answer goes.
enum Reply {
    /// The first answer frame.
    One(oneshot::Sender<Result<RawFrame, Error>>),
    /// Every answer frame up to the one with `done: true` (or an `error` frame). Unbounded: the
    /// server's answer to one request is finite (a listing in chunks), and the frames wait here
    /// until the caller reads them.
    Stream(mpsc::UnboundedSender<Result<RawFrame, Error>>),
}

/// The receiving end of one pending request.
pub(crate) struct Answer(oneshot::Receiver<Result<RawFrame, Error>>);

/// The receiving end of one pending request answered by a stream: its answer frames, then its
/// `error` frame or the error that ended it, then the end.
pub(crate) type AnswerFrames = mpsc::UnboundedReceiver<Result<RawFrame, Error>>;

impl Pending {
    /// Waits for the first frame with `request_id` whose type is one of `answers` (any type if
    /// `answers` is empty), or an `error` frame.
    pub fn insert(&mut self, request_id: &str, answers: &'static [&'static str]) -> Answer {
        let (reply, answer) = oneshot::channel();
        let reply = Reply::One(reply);
        self.waiting.insert(request_id.to_owned(), Waiting { answers, reply });
        Answer(answer)
    }

    /// Takes every frame with `request_id` whose type is one of `answers` until one carries
    /// `done: true`, or an `error` frame.
    pub fn insert_stream(&mut self, request_id: &str, answers: &'static [&'static str]) -> AnswerFrames {
        let (reply, frames) = mpsc::unbounded_channel();
        let reply = Reply::Stream(reply);
        self.waiting.insert(request_id.to_owned(), Waiting { answers, reply });
        frames
    }

    /// Stops waiting for `request_id`'s answer.
    pub fn withdraw(&mut self, request_id: &str) {
        self.waiting.remove(request_id);
    }

    /// Hands `frame` to the request it answers, if any.
    pub fn answer(&mut self, frame: &RawFrame) {
        let Some(id) = frame.request_id() else { return };
        let answers = self.waiting.get(id).is_some_and(|waiting| {
            waiting.answers.is_empty() || frame.frame_type() == "error" || waiting.answers.contains(&frame.frame_type())
        });
        if !answers {
            return;
        }
        if let Some(Waiting {
            reply: Reply::Stream(frames),
            ..
        }) = self.waiting.get(id)
        {
            let _ = frames.send(Ok(frame.clone()));
            if frame.frame_type() != "error" && !is_done(frame) {
                return;
            }
        }
        if let Some(waiting) = self.waiting.remove(id) {
            waiting.reply.end(Ok(frame.clone()));
        }
    }

    /// Fails every request waiting with `error`.
    pub fn fail_all(&mut self, error: &Error) {
        for (_, waiting) in self.waiting.drain() {
            waiting.reply.end(Err(error.clone()));
        }
    }
}

impl Reply {
    /// Ends the request: a single answer gets `last`; a stream, which has had its frames
    /// already, gets only an error.
    fn end(self, last: Result<RawFrame, Error>) {
        match self {
            Reply::One(reply) => {
                let _ = reply.send(last);
            }
            Reply::Stream(frames) => {
                if last.is_err() {
                    let _ = frames.send(last);
                }
            }
        }
    }
}

/// Whether an answer frame is the last of its stream (`done: true`).
fn is_done(frame: &RawFrame) -> bool {
    #[derive(Deserialize)]
    struct Done {
        done: Option<bool>,
    }
    serde_json::from_str::<Done>(frame.text()).is_ok_and(|answer| answer.done == Some(true))
}

impl Answer {
    /// The answer to `request_id`, or [`Error::Timeout`] after `timeout`; `gone` when the
    /// request was dropped unanswered.
    pub async fn wait(
        self,
        request_id: &str,
        timeout: Duration,
        gone: impl FnOnce() -> Error,
    ) -> Result<RawFrame, Error> {
        match tokio::time::timeout(timeout, self.0).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(gone()),
            Err(_) => Err(Error::Timeout {
                request_id: request_id.to_owned(),
                after: timeout,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(text: &str) -> RawFrame {
        RawFrame::from(text.to_owned())
    }

    /// The frame `answer` already holds.
    async fn answered(answer: Answer) -> RawFrame {
        answer
            .wait("r-1", Duration::ZERO, || Error::Closed)
            .await
            .expect("an answer")
    }

    #[tokio::test]
    async fn a_request_is_answered_by_its_answer_type_or_an_error_frame_with_its_id() {
        let mut pending = Pending::default();
        let answer = pending.insert("r-1", &["sync_response"]);
        // Another id, or another type with this id (a replayed status), does not answer it.
        pending.answer(&frame(r#"{"type":"sync_response","request_id":"r-2"}"#));
        pending.answer(&frame(r#"{"type":"update_device_status","request_id":"r-1"}"#));
        pending.answer(&frame(r#"{"type":"sync_response","request_id":"r-1","success":true}"#));
        assert_eq!(answered(answer).await.frame_type(), "sync_response");

        let refused = pending.insert("r-1", &["sync_response"]);
        pending.answer(&frame(r#"{"type":"error","request_id":"r-1","code":"invalid_frame"}"#));
        assert_eq!(answered(refused).await.frame_type(), "error");

        let any = pending.insert("r-1", &[]);
        pending.answer(&frame(r#"{"type":"pong","request_id":"r-1"}"#));
        assert_eq!(answered(any).await.frame_type(), "pong");
    }

    #[test]
    fn a_stream_request_takes_its_frames_until_done_or_an_error_frame() {
        let mut pending = Pending::default();
        let mut frames = pending.insert_stream("r-1", &["list_memory_response"]);
        pending.answer(&frame(
            r#"{"type":"list_memory_response","request_id":"r-1","done":false}"#,
        ));
        pending.answer(&frame(r#"{"type":"update_queue","request_id":"r-1"}"#));
        pending.answer(&frame(
            r#"{"type":"list_memory_response","request_id":"r-1","done":"yes"}"#,
        ));
        pending.answer(&frame(
            r#"{"type":"list_memory_response","request_id":"r-1","done":true}"#,
        ));
        pending.answer(&frame(
            r#"{"type":"list_memory_response","request_id":"r-1","done":true}"#,
        ));
        let mut received = Vec::new();
        while let Ok(item) = frames.try_recv() {
            received.push(item.map(|frame| frame.text().to_owned()));
        }
        assert_eq!(received.len(), 3, "{received:?}");
        assert!(pending.waiting.is_empty());

        let mut refused = pending.insert_stream("r-2", &["list_memory_response"]);
        pending.answer(&frame(r#"{"type":"error","request_id":"r-2","code":"unsupported"}"#));
        assert_eq!(
            refused.try_recv().map(|item| item.map(|f| f.frame_type().to_owned())),
            Ok(Ok("error".into()))
        );
        assert!(refused.try_recv().is_err());

        let mut dropped = pending.insert_stream("r-3", &["list_memory_response"]);
        pending.fail_all(&Error::Closed);
        assert_eq!(dropped.try_recv().map(|item| item.err()), Ok(Some(Error::Closed)));
    }

    #[tokio::test]
    async fn a_withdrawn_request_ends_with_gone_and_an_unanswered_one_times_out() {
        let mut pending = Pending::default();
        let withdrawn = pending.insert("r-1", &["sync_response"]);
        pending.withdraw("r-1");
        let gone = withdrawn.wait("r-1", Duration::from_secs(5), || Error::Closed).await;
        assert_eq!(gone.err(), Some(Error::Closed));

        let _waiting = pending.insert("r-2", &["sync_response"]);
        let silent = pending.insert("r-3", &["sync_response"]);
        let after = Duration::from_millis(10);
        let timed_out = silent.wait("r-3", after, || Error::Closed).await;
        assert_eq!(
            timed_out.err(),
            Some(Error::Timeout {
                request_id: "r-3".into(),
                after
            })
        );
        pending.fail_all(&Error::Closed);
        assert!(pending.waiting.is_empty());
    }
}
