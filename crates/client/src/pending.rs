//! Requests waiting for their answers: correlating received frames with them by `request_id`,
//! and waiting for an answer up to a timeout.

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::oneshot;

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
    reply: oneshot::Sender<Result<RawFrame, Error>>,
}

/// The receiving end of one pending request.
pub(crate) struct Answer(oneshot::Receiver<Result<RawFrame, Error>>);

impl Pending {
    /// Waits for the first frame with `request_id` whose type is one of `answers` (any type if
    /// `answers` is empty), or an `error` frame.
    pub fn insert(&mut self, request_id: &str, answers: &'static [&'static str]) -> Answer {
        let (reply, answer) = oneshot::channel();
        self.waiting.insert(request_id.to_owned(), Waiting { answers, reply });
        Answer(answer)
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
        if answers && let Some(waiting) = self.waiting.remove(id) {
            let _ = waiting.reply.send(Ok(frame.clone()));
        }
    }

    /// Fails every request waiting with `error`.
    pub fn fail_all(&mut self, error: &Error) {
        for (_, waiting) in self.waiting.drain() {
            let _ = waiting.reply.send(Err(error.clone()));
        }
    }
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
