//! Following a file: [`Client::watch_file`] and the [`FileWatch`] stream of its changes.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures_util::Stream;
use serde::Deserialize;

use crate::answers::refuse_error_frame;
use crate::events::RawEvents;
use crate::frame::RawFrame;
use crate::types::{FileChanged, UnwatchFile, WatchFile};
use crate::{Client, Error, Gap};

impl Client {
    /// Watches the file at `path` (absolute, or relative to the server's boot working
    /// directory): sends `watch_file` and returns the stream of the server's `file_changed`
    /// pushes for it (debounced by the server), which sends `unwatch_file` when it is dropped or
    /// [closed](FileWatch::close).
    ///
    /// The stream's errors are [`Error::Gap`]s, after which it goes on: after
    /// [`Gap::Lagged`] a change may have been missed, and after [`Gap::Reconnected`] (the
    /// server forgets a connection's watches; the stream watches the file again on the new
    /// connection) changes made while disconnected were: either way, read the file again. A
    /// server that refuses the watch (this project's server answers a missing file, or one
    /// watch too many, with an `error` frame) ends the stream with [`Error::Server`]; real Letta
    /// Code refuses silently, and the stream then yields nothing. The stream ends when the
    /// client closes or its connection is lost for good.
    ///
    /// Watching one path twice, even from one client, counts twice on the server: each stream
    /// unwatches its own.
    pub async fn watch_file(&self, path: impl Into<String>) -> Result<FileWatch, Error> {
        let path = path.into();
        // Subscribed before the watch starts: no change is missed.
        let events = self.raw_events(None);
        let mut watch = FileWatch {
            client: self.clone(),
            runtime: tokio::runtime::Handle::try_current().ok(),
            path,
            request_id: self.next_request_id("watch-file"),
            events,
            ended: false,
            watching: false,
        };
        self.send(&watch.watch_command()).await?;
        watch.watching = true;
        Ok(watch)
    }
}

/// The changes of one watched file, from [`Client::watch_file`]: a
/// [`Stream`] of [`FileChanged`] (or of its frames as received, with
/// [`FileWatch::next_frame`]). Holds a clone of its client, so the connection stays open while
/// it lives.
pub struct FileWatch {
    client: Client,
    /// Where `unwatch_file` is sent from when the stream is dropped (perhaps outside the
    /// runtime, by a language binding).
    runtime: Option<tokio::runtime::Handle>,
    path: String,
    request_id: String,
    events: RawEvents,
    /// The server refused the watch: nothing more comes.
    ended: bool,
    /// `unwatch_file` is still to be sent.
    watching: bool,
}

impl FileWatch {
    /// The path watched, as given.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The next `file_changed` of the file as received (or the error or gap); `None` once the
    /// stream has ended.
    pub async fn next_frame(&mut self) -> Option<Result<RawFrame, Error>> {
        std::future::poll_fn(|cx| self.poll_next_frame(cx)).await
    }

    /// Polls for the next `file_changed` of the file as received; see [`FileWatch::next_frame`].
    pub fn poll_next_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<RawFrame, Error>>> {
        #[derive(Deserialize)]
        struct Named {
            path: Option<String>,
        }
        loop {
            if self.ended {
                return Poll::Ready(None);
            }
            let frame = match ready!(self.events.poll_next_item(cx)) {
                None => return Poll::Ready(None),
                Some(Ok(frame)) => frame,
                Some(Err(Gap::Reconnected)) => {
                    self.rewatch();
                    return Poll::Ready(Some(Err(Gap::Reconnected.into())));
                }
                Some(Err(gap)) => return Poll::Ready(Some(Err(gap.into()))),
            };
            match frame.frame_type() {
                "file_changed"
                    if frame
                        .parse::<Named>()
                        .is_ok_and(|named| named.path.as_deref() == Some(&self.path)) =>
                {
                    return Poll::Ready(Some(Ok(frame)));
                }
                "error" if frame.request_id() == Some(self.request_id.as_str()) => {
                    self.ended = true;
                    self.watching = false;
                    return Poll::Ready(refuse_error_frame(&frame).err().map(Err));
                }
                _ => {}
            }
        }
    }

    /// Stops watching: sends `unwatch_file` and ends the stream.
    pub async fn close(mut self) -> Result<(), Error> {
        self.ended = true;
        if !std::mem::take(&mut self.watching) {
            return Ok(());
        }
        self.client.send(&self.unwatch_command()).await
    }

    /// Runs `task` on the runtime the watch started on. Without one (it was not started on
    /// tokio), on the current one, if any; with neither, the client's connection is gone, and
    /// its watches with it.
    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        let runtime = self
            .runtime
            .clone()
            .or_else(|| tokio::runtime::Handle::try_current().ok());
        if let Some(runtime) = runtime {
            runtime.spawn(task);
        }
    }

    fn watch_command(&self) -> WatchFile {
        WatchFile {
            path: self.path.clone(),
            request_id: self.request_id.clone(),
            type_: "watch_file".into(),
        }
    }

    fn unwatch_command(&self) -> UnwatchFile {
        UnwatchFile {
            path: self.path.clone(),
            request_id: self.request_id.clone(),
            type_: "unwatch_file".into(),
        }
    }

    /// Watches the file again on a new connection (the server forgot the watch with the old
    /// one), in a task: polling cannot wait for the send.
    fn rewatch(&self) {
        let (client, frame) = (self.client.clone(), self.watch_command());
        self.spawn(async move {
            // A failure means the connection dropped again; the next reconnect retries.
            let _ = client.send(&frame).await;
        });
    }
}

impl Stream for FileWatch {
    type Item = Result<FileChanged, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.poll_next_frame(cx)
            .map(|item| item.map(|item| item.and_then(|frame| frame.parse())))
    }
}

impl Drop for FileWatch {
    fn drop(&mut self) {
        if !self.watching {
            return;
        }
        let (client, frame) = (self.client.clone(), self.unwatch_command());
        self.spawn(async move {
            let _ = client.send(&frame).await;
        });
    }
}
