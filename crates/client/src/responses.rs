//! Commands answered by a stream: the answer frames correlated by `request_id`, in order, until
//! one carries `done: true`.

use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use futures_util::{Future, Stream};
use serde::de::DeserializeOwned;

use crate::Error;
use crate::answers::{check_answer, refuse_error_frame};
use crate::frame::RawFrame;
use crate::pending::AnswerFrames;
use crate::shared::Shared;

/// The answer frames of a command answered by a stream, as received (for language bindings
/// and proxies): each answer frame in order, ending after the one that carries `done: true`.
/// An `error` frame answering the command is the last item. The stream ends with an error item
/// when no frame comes within the request timeout ([`Error::Timeout`], counted afresh after
/// each frame), when the connection drops ([`Error::Disconnected`]) or when the client closes
/// ([`Error::Closed`]). Dropping it withdraws the request.
pub struct RawResponses {
    frames: AnswerFrames,
    request_id: String,
    timeout: Duration,
    deadline: Pin<Box<tokio::time::Sleep>>,
    /// Withdraws the request when the stream is dropped before it ended.
    shared: Arc<Shared>,
    ended: bool,
}

impl RawResponses {
    pub(crate) fn new(frames: AnswerFrames, request_id: String, timeout: Duration, shared: Arc<Shared>) -> Self {
        Self {
            frames,
            request_id,
            timeout,
            deadline: Box::pin(tokio::time::sleep(timeout)),
            shared,
            ended: false,
        }
    }

    /// The command's `request_id`.
    pub fn request_id(&self) -> &str {
        &self.request_id
    }

    /// Polls for the next item as received.
    pub fn poll_next_raw(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<RawFrame, Error>>> {
        if self.ended {
            return Poll::Ready(None);
        }
        match self.frames.poll_recv(cx) {
            Poll::Ready(Some(item)) => {
                let deadline = tokio::time::Instant::now() + self.timeout;
                self.deadline.as_mut().reset(deadline);
                self.ended = item.is_err();
                Poll::Ready(Some(item))
            }
            Poll::Ready(None) => {
                self.ended = true;
                Poll::Ready(None)
            }
            Poll::Pending => {
                ready!(self.deadline.as_mut().poll(cx));
                self.end();
                Poll::Ready(Some(Err(Error::Timeout {
                    request_id: self.request_id.clone(),
                    after: self.timeout,
                })))
            }
        }
    }

    /// Polls for the next item as the typed methods see it: an `error` frame is
    /// [`Error::Server`], an answer with `success: false` [`Error::Rejected`], and the stream
    /// ends after its first error.
    pub fn poll_next_checked(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<RawFrame, Error>>> {
        let checked = match ready!(self.poll_next_raw(cx)) {
            Some(Ok(frame)) => refuse_error_frame(&frame)
                .and_then(|()| check_answer(&frame))
                .map(|()| frame),
            other => return Poll::Ready(other),
        };
        if checked.is_err() {
            self.end();
        }
        Poll::Ready(Some(checked))
    }

    /// No more items: the request is withdrawn.
    fn end(&mut self) {
        if !self.ended {
            self.ended = true;
            self.shared.withdraw(&self.request_id);
        }
    }
}

impl Drop for RawResponses {
    fn drop(&mut self) {
        self.end();
    }
}

impl Stream for RawResponses {
    type Item = Result<RawFrame, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.poll_next_raw(cx)
    }
}

/// The typed answers of a command answered by a stream ([`Client::call_stream`](crate::Client::call_stream)):
/// each answer parsed into `R`, ending after the one that carries `done: true`. The first
/// error ends it: an `error` frame ([`Error::Server`]), an answer with `success: false`
/// ([`Error::Rejected`]), an answer that does not parse ([`Error::Protocol`]), no frame within
/// the request timeout ([`Error::Timeout`], counted afresh after each frame), a dropped
/// connection or a closed client.
pub struct Responses<R> {
    raw: RawResponses,
    answer: PhantomData<fn() -> R>,
}

impl<R> Responses<R> {
    pub(crate) fn new(raw: RawResponses) -> Self {
        Self {
            raw,
            answer: PhantomData,
        }
    }

    /// The command's `request_id`.
    pub fn request_id(&self) -> &str {
        self.raw.request_id()
    }
}

impl<R: DeserializeOwned> Stream for Responses<R> {
    type Item = Result<R, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let parsed = match ready!(self.raw.poll_next_checked(cx)) {
            Some(Ok(frame)) => frame.parse(),
            Some(Err(error)) => Err(error),
            None => return Poll::Ready(None),
        };
        if parsed.is_err() {
            self.raw.end();
        }
        Poll::Ready(Some(parsed))
    }
}
