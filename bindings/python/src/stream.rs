//! Frame streams for Python: an event stream or one turn's frames, read in batches.
//!
//! Python drains what is buffered with [`FrameStream::take`] (synchronous, on its own thread,
//! converting frame texts into dicts there) and awaits [`FrameStream::wait`] only when nothing
//! is. `wait` parks the item it received in the stream, so an awaitable cancelled after it
//! completed loses nothing. The buffering is the Rust stream's own (bounded; a patient stream,
//! see `client::PATIENCE`) plus at most one batch held by Python.

use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::task::noop_waker_ref;
use letta_app_server_client::{Error, FileWatch, Gap as RustGap, Item, RawEvents, RawResponses, Terminal, Turn};
use pyo3::prelude::*;
use pyo3::types::PyList;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use crate::convert::{text_to_py, with_strings};
use crate::errors;

/// Where a stream's items come from.
pub enum Source {
    /// Every frame, or one runtime's.
    Events(RawEvents),
    /// One turn's frames, up to its `turn_finished`.
    Turn(Box<Turn>),
    /// The answers of a command answered by a stream, up to the one with `done: true`; the
    /// error that ends it (an `error` frame, a refusal, a timeout, a disconnect) is raised.
    Answers(Box<RawResponses>),
    /// The changes of a watched file; the server's refusal of the watch is raised.
    Watch(Box<FileWatch>),
    /// A terminal's output frames, then its `terminal_exited`; dropping it kills the shell.
    Terminal(Box<Terminal>),
}

/// An item, or the error that ends an answer stream.
type Next = Result<Item, Error>;

struct State {
    /// `None` once closed.
    source: Option<Source>,
    /// An item received by [`FrameStream::wait`] (or an error met by `take` after other items),
    /// handed out first by the next `take`.
    parked: Option<Next>,
}

impl State {
    fn poll_item(&mut self, cx: &mut Context<'_>) -> Poll<Option<Next>> {
        if let Some(item) = self.parked.take() {
            return Poll::Ready(Some(item));
        }
        match &mut self.source {
            None => Poll::Ready(None),
            Some(Source::Events(events)) => events.poll_next_item(cx).map(|item| item.map(Ok)),
            Some(Source::Turn(turn)) => turn.poll_next_raw(cx).map(|item| item.map(Ok)),
            Some(Source::Terminal(terminal)) => terminal.poll_next_raw(cx).map(|item| item.map(Ok)),
            Some(Source::Answers(answers)) => answers
                .poll_next_checked(cx)
                .map(|item| item.map(|answer| answer.map(Ok))),
            Some(Source::Watch(watch)) => watch.poll_next_frame(cx).map(|item| {
                item.map(|change| match change {
                    Ok(frame) => Ok(Ok(frame)),
                    Err(Error::Gap(gap)) => Ok(Err(gap)),
                    Err(error) => Err(error),
                })
            }),
        }
    }
}

/// A stream of server frames (dicts) and gaps ([`Gap`]).
#[pyclass(module = "letta_app_server._native", frozen)]
pub struct FrameStream {
    state: Arc<Mutex<State>>,
    /// Cancelled by [`FrameStream::close`].
    closed: CancellationToken,
}

impl FrameStream {
    pub fn new(source: Source) -> Self {
        Self {
            state: Arc::new(Mutex::new(State {
                source: Some(source),
                parked: None,
            })),
            closed: CancellationToken::new(),
        }
    }
}

#[pymethods]
impl FrameStream {
    /// Up to `limit` items that are ready now, without waiting; `[]` when none is. The error
    /// that ends an answer stream is raised once the items before it were taken.
    fn take<'py>(&self, py: Python<'py>, limit: usize) -> PyResult<Bound<'py, PyList>> {
        let mut objects = Vec::new();
        // Only a `wait` in progress holds the lock; its item will be ready for the next call.
        if let Ok(mut state) = self.state.try_lock() {
            let mut cx = Context::from_waker(noop_waker_ref());
            with_strings(|mut strings| -> PyResult<()> {
                while objects.len() < limit {
                    let object = match state.poll_item(&mut cx) {
                        Poll::Ready(Some(Ok(Ok(frame)))) => text_to_py(py, frame.text(), strings.as_deref_mut()),
                        Poll::Ready(Some(Ok(Err(gap)))) => Bound::new(py, Gap::from(&gap))?.into_any(),
                        Poll::Ready(Some(Err(error))) if objects.is_empty() => return Err(errors::to_py(error)),
                        Poll::Ready(Some(Err(error))) => {
                            state.parked = Some(Err(error));
                            break;
                        }
                        Poll::Ready(None) | Poll::Pending => break,
                    };
                    objects.push(object);
                }
                Ok(())
            })?;
        }
        PyList::new(py, objects)
    }

    /// Waits until an item is ready: `True`, or `False` once the stream has ended.
    fn wait<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let (state, closed) = (Arc::clone(&self.state), self.closed.clone());
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            let ready = async {
                let mut state = state.lock().await;
                std::future::poll_fn(|cx| match state.poll_item(cx) {
                    Poll::Ready(Some(item)) => {
                        state.parked = Some(item);
                        Poll::Ready(true)
                    }
                    Poll::Ready(None) => Poll::Ready(false),
                    Poll::Pending => Poll::Pending,
                })
                .await
            };
            Ok(tokio::select! {
                ready = ready => ready,
                () = closed.cancelled() => false,
            })
        })
    }

    /// Ends the stream: a pending `wait` returns `False`, items not taken are dropped, and a
    /// watched file is unwatched. Awaitable.
    fn close<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.closed.cancel();
        let state = Arc::clone(&self.state);
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            let mut state = state.lock().await;
            state.source = None;
            state.parked = None;
            Ok(())
        })
    }
}

/// A place in a stream where frames may be missing, or where the connection changed without any
/// going missing; the stream goes on after it.
///
/// `kind` is `"lagged"` (this stream fell behind and skipped `missed` frames),
/// `"disconnected"` (the connection dropped, `reason` says why; without reconnect the stream
/// ends after it), `"reconnected"` (the replays of the restored runtimes follow),
/// `"interrupted"` (the connection dropped, `reason` says why, and the client reconnects to
/// resume every runtime's events where they left off) or `"resumed"` (after `"interrupted"`:
/// every runtime resumed, nothing is missing).
#[pyclass(module = "letta_app_server._native", frozen, eq)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap {
    #[pyo3(get)]
    kind: &'static str,
    #[pyo3(get)]
    missed: Option<u64>,
    #[pyo3(get)]
    reason: Option<String>,
    /// The Rust gap's message.
    message: String,
}

impl From<&RustGap> for Gap {
    fn from(gap: &RustGap) -> Self {
        let (kind, missed, reason) = match gap {
            RustGap::Lagged { missed } => ("lagged", Some(*missed), None),
            RustGap::Disconnected { reason } => ("disconnected", None, Some(reason.clone())),
            RustGap::Interrupted { reason } => ("interrupted", None, Some(reason.clone())),
            RustGap::Resumed => ("resumed", None, None),
            _ => ("reconnected", None, None),
        };
        Self {
            kind,
            missed,
            reason,
            message: gap.to_string(),
        }
    }
}

#[pymethods]
impl Gap {
    fn __repr__(&self) -> String {
        match (self.missed, &self.reason) {
            (Some(missed), _) => format!("Gap(kind='lagged', missed={missed})"),
            (_, Some(reason)) => format!("Gap(kind='{}', reason={reason:?})", self.kind),
            _ => format!("Gap(kind='{}')", self.kind),
        }
    }

    fn __str__(&self) -> &str {
        &self.message
    }
}
