//! Terminals (docs/protocol.md §4.14): [`Client::terminal_spawn`] and the [`Terminal`] it
//! returns, a shell on a pseudo-terminal of the server whose output is a [`Stream`].

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::{Stream, StreamExt};

use crate::events::RawEvents;
use crate::fanout::ExitSlot;
use crate::frame::RawFrame;
use crate::types::{TerminalExited, TerminalInput, TerminalKill, TerminalOutput, TerminalResize, TerminalSpawn};
use crate::{Client, Error, Gap};

/// Output frames a terminal's stream buffers by default (at most 16 KiB of output each, as this
/// project's server sends them).
pub const DEFAULT_TERMINAL_CAPACITY: usize = 256;

/// How to start a terminal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TerminalOptions {
    /// The terminal's id on this connection; `None`: a fresh `"terminal-<n>"`.
    pub terminal_id: Option<String>,
    /// The shell's working directory (relative to the server's boot working directory); `None`:
    /// that directory.
    pub cwd: Option<String>,
    /// Columns (80 by default).
    pub cols: u32,
    /// Rows (24 by default).
    pub rows: u32,
    /// Output frames the stream buffers before it holds up reading
    /// ([`DEFAULT_TERMINAL_CAPACITY`] by default).
    pub capacity: usize,
    /// How long a full stream may hold up reading the socket at a time; `None` (the default):
    /// as long as it takes, so no output is ever skipped.
    pub patience: Option<Duration>,
}

impl Default for TerminalOptions {
    fn default() -> Self {
        Self {
            terminal_id: None,
            cwd: None,
            cols: 80,
            rows: 24,
            capacity: DEFAULT_TERMINAL_CAPACITY,
            patience: None,
        }
    }
}

impl TerminalOptions {
    /// The default options with the shell in `cwd`.
    pub fn in_dir(cwd: impl Into<String>) -> Self {
        Self {
            cwd: Some(cwd.into()),
            ..Self::default()
        }
    }
}

/// What a terminal's stream yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TerminalEvent {
    /// Output of the shell, as text (escape sequences included), in the order it was written.
    Output(String),
    /// The shell exited (or was killed); the last item of the stream.
    Exited(TerminalExit),
}

/// How a terminal's shell ended (`terminal_exited`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TerminalExit {
    /// The exit status, or 128 + the signal that ended it (129 after [`TerminalControl::kill`]); -1
    /// when it failed.
    pub exit_code: i32,
    /// Why the terminal failed, when it did.
    pub error: Option<String>,
}

impl From<TerminalExited> for TerminalExit {
    fn from(exited: TerminalExited) -> Self {
        Self {
            exit_code: exited.exit_code,
            error: exited.error,
        }
    }
}

/// A terminal on the server, from [`Client::terminal_spawn`]: a [`Stream`] of the shell's
/// output as [`TerminalEvent::Output`], in order, then one [`TerminalEvent::Exited`]. It
/// derefs to its [`TerminalControl`], which sends `terminal_input`
/// ([`write`](TerminalControl::write)), `terminal_resize` and `terminal_kill`; a clone of it
/// ([`Terminal::control`]) does the same from another task. Dropping the `Terminal` before its
/// shell exited kills it.
///
/// Nothing is lost: the stream is paced, like [`Client::raw_events_paced`]. While it holds
/// [`TerminalOptions::capacity`] unread frames the client stops reading the socket, the server
/// stops reading the pseudo-terminal and the shell's writes block, as in a real terminal whose
/// reader falls behind (command answers and other streams wait too). A caller that may leave
/// the stream unread while it needs the connection for other work sets
/// [`TerminalOptions::patience`]: reading is then held back for at most that long at a time,
/// after which the stream skips output and reports [`Gap::Lagged`] (the exit is never skipped).
///
/// The stream ends after [`TerminalEvent::Exited`], or after [`Gap::Disconnected`]: the
/// server kills a connection's terminals when it drops.
pub struct Terminal {
    control: TerminalControl,
    events: RawEvents,
    /// The `terminal_exited` the stream skipped, if it did (with patience, when full): yielded
    /// once the stream is drained.
    skipped_exit: ExitSlot,
    /// The stream has yielded its last item.
    ended: bool,
    /// The runtime it was spawned on, which sends the kill when it is dropped.
    runtime: tokio::runtime::Handle,
}

/// Writes to, resizes and kills a terminal; cheap to clone, for use from other tasks than the
/// one reading its [`Terminal`].
#[derive(Clone)]
pub struct TerminalControl {
    client: Client,
    terminal_id: Arc<str>,
    pid: u32,
    /// Set once the terminal was killed, exited, or lost with its connection: later commands
    /// fail at once.
    gone: Arc<AtomicBool>,
}

impl Client {
    /// `terminal_spawn`: starts the server's shell on a pseudo-terminal of this connection and
    /// returns it once `terminal_spawned` came (within the request timeout).
    ///
    /// A shell that cannot start (the server answers `terminal_exited` with an `error`, such as
    /// `spawn /bin/zsh ENOENT`, or too many terminals) is [`Error::Rejected`] with the
    /// terminal's id as `request_id`. An id that names a terminal alive on this connection
    /// gets that terminal (the server answers `terminal_spawned` again).
    ///
    /// ```no_run
    /// use futures_util::StreamExt;
    /// use letta_app_server_client::{Client, TerminalEvent, TerminalOptions};
    ///
    /// # async fn run(client: Client) -> Result<(), letta_app_server_client::Error> {
    /// let mut terminal = client.terminal_spawn(TerminalOptions::default()).await?;
    /// terminal.write("echo hello; exit 3\n").await?;
    /// while let Some(event) = terminal.next().await {
    ///     match event? {
    ///         TerminalEvent::Output(text) => print!("{text}"),
    ///         TerminalEvent::Exited(exit) => println!("[exit {}]", exit.exit_code),
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn terminal_spawn(&self, options: TerminalOptions) -> Result<Terminal, Error> {
        let terminal_id = options.terminal_id.unwrap_or_else(|| self.next_request_id("terminal"));
        let skipped_exit = ExitSlot::default();
        let mut events = self.shared().subscribe_terminal(
            &terminal_id,
            options.capacity,
            options.patience,
            Arc::clone(&skipped_exit),
        );
        self.send(&TerminalSpawn {
            type_: "terminal_spawn".into(),
            terminal_id: terminal_id.clone(),
            cwd: options.cwd,
            cols: options.cols,
            rows: options.rows,
        })
        .await?;
        let answer = async {
            loop {
                match events.next().await {
                    Some(Ok(frame)) => match frame.frame_type() {
                        "terminal_spawned" => return Ok(frame),
                        // A shell that could not start; an exit without an error is an
                        // earlier terminal's of this id.
                        "terminal_exited" => {
                            if let Some(error) = frame.parse::<TerminalExited>()?.error {
                                return Err(Error::Rejected {
                                    request_id: terminal_id.clone(),
                                    frame_type: "terminal_exited".into(),
                                    message: error,
                                });
                            }
                        }
                        // Output of an earlier terminal of this id.
                        _ => {}
                    },
                    Some(Err(Gap::Disconnected { reason })) => return Err(Error::Disconnected { reason }),
                    Some(Err(_)) => {}
                    None => return Err(self.shared().gone()),
                }
            }
        };
        let spawned = tokio::time::timeout(self.timeout(), answer)
            .await
            .map_err(|_| Error::Timeout {
                request_id: terminal_id.clone(),
                after: self.timeout(),
            })??;
        let spawned: crate::types::TerminalSpawned = spawned.parse()?;
        Ok(Terminal {
            control: TerminalControl {
                client: self.clone(),
                terminal_id: terminal_id.into(),
                pid: spawned.pid,
                gone: Arc::new(AtomicBool::new(false)),
            },
            events,
            skipped_exit,
            ended: false,
            runtime: tokio::runtime::Handle::current(),
        })
    }
}

impl TerminalControl {
    /// The terminal's id on this connection.
    pub fn id(&self) -> &str {
        &self.terminal_id
    }

    /// The shell's process id on the server's machine.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// `terminal_input`: types `data` into the terminal (`"\n"` is Enter, `"\u{3}"` Ctrl-C).
    pub async fn write(&self, data: impl Into<String>) -> Result<(), Error> {
        self.alive()?;
        self.client
            .send(&TerminalInput {
                type_: "terminal_input".into(),
                terminal_id: self.id().to_owned(),
                data: data.into(),
            })
            .await
    }

    /// `terminal_resize`: the shell sees the new size (`SIGWINCH`, `stty size`).
    pub async fn resize(&self, cols: u32, rows: u32) -> Result<(), Error> {
        self.alive()?;
        self.client
            .send(&TerminalResize {
                type_: "terminal_resize".into(),
                terminal_id: self.id().to_owned(),
                cols,
                rows,
            })
            .await
    }

    /// `terminal_kill`: hangs up the shell; the stream yields the rest of its output, then
    /// [`TerminalEvent::Exited`] (exit code 129). Commands after it fail at once.
    pub async fn kill(&self) -> Result<(), Error> {
        self.alive()?;
        self.gone.store(true, Ordering::Release);
        self.client.send(&kill_frame(self.id())).await
    }

    /// Whether the terminal was killed, exited or was lost with its connection, as far as this
    /// client knows.
    pub fn is_gone(&self) -> bool {
        self.gone.load(Ordering::Acquire)
    }

    /// `Ok` while the terminal may be alive; else the error the server answers a command for a
    /// terminal it does not know, without asking it.
    fn alive(&self) -> Result<(), Error> {
        if self.is_gone() {
            return Err(Error::Server {
                request_id: None,
                code: "invalid_frame".into(),
                message: format!("Terminal not found: {}", self.terminal_id),
            });
        }
        Ok(())
    }
}

fn kill_frame(terminal_id: &str) -> TerminalKill {
    TerminalKill {
        type_: "terminal_kill".into(),
        terminal_id: terminal_id.to_owned(),
    }
}

impl Terminal {
    /// A handle that writes to, resizes and kills this terminal from another task.
    pub fn control(&self) -> TerminalControl {
        self.control.clone()
    }

    /// Reads (and drops) the rest of the output, and returns how the shell ended.
    pub async fn wait(mut self) -> Result<TerminalExit, Error> {
        while let Some(event) = self.next().await {
            match event {
                Ok(TerminalEvent::Exited(exit)) => return Ok(exit),
                Err(Gap::Disconnected { reason }) => return Err(Error::Disconnected { reason }),
                Ok(TerminalEvent::Output(_)) | Err(_) => {}
            }
        }
        Err(self.control.client.shared().gone())
    }

    /// Polls for the next item, as received: the stream's raw frames (`terminal_output`, then
    /// `terminal_exited`) and gaps, for language bindings that hand frames on as text.
    pub fn poll_next_raw(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<RawFrame, Gap>>> {
        if self.ended {
            return Poll::Ready(None);
        }
        loop {
            let item = match self.events.poll_next_item(cx) {
                Poll::Pending => {
                    let skipped = lock(&self.skipped_exit).take();
                    match skipped {
                        Some(exited) => {
                            self.finish();
                            Some(Ok(exited))
                        }
                        None => return Poll::Pending,
                    }
                }
                Poll::Ready(None) => None,
                Poll::Ready(Some(Ok(frame))) => match frame.frame_type() {
                    "terminal_output" => Some(Ok(frame)),
                    "terminal_exited" => {
                        self.finish();
                        Some(Ok(frame))
                    }
                    // A repeated `terminal_spawned`.
                    _ => continue,
                },
                Poll::Ready(Some(Err(gap))) => {
                    if matches!(gap, Gap::Disconnected { .. }) {
                        self.finish();
                    }
                    Some(Err(gap))
                }
            };
            if item.is_none() {
                self.finish();
            }
            return Poll::Ready(item);
        }
    }

    fn finish(&mut self) {
        self.ended = true;
        self.control.gone.store(true, Ordering::Release);
    }
}

impl std::ops::Deref for Terminal {
    type Target = TerminalControl;

    fn deref(&self) -> &TerminalControl {
        &self.control
    }
}

impl Stream for Terminal {
    type Item = Result<TerminalEvent, Gap>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.poll_next_raw(cx).map(|item| {
            item.map(|item| {
                item.map(|frame| match frame.frame_type() {
                    "terminal_exited" => TerminalEvent::Exited(match frame.parse::<TerminalExited>() {
                        Ok(exited) => exited.into(),
                        Err(error) => TerminalExit {
                            exit_code: -1,
                            error: Some(error.to_string()),
                        },
                    }),
                    // `poll_next_raw` yields only output besides.
                    _ => TerminalEvent::Output(
                        frame
                            .parse::<TerminalOutput>()
                            .map(|output| output.data)
                            .unwrap_or_default(),
                    ),
                })
            })
        })
    }
}

impl Drop for Terminal {
    /// Kills the shell unless it is gone already: the kill is sent from a task of the runtime
    /// the terminal was spawned on, so a terminal dropped outside any (by a language binding's
    /// thread) is killed too.
    fn drop(&mut self) {
        if self.control.gone.swap(true, Ordering::AcqRel) {
            return;
        }
        let client = self.control.client.clone();
        let kill = kill_frame(self.control.id());
        self.runtime.spawn(async move {
            // Fails only when the connection is gone, and the terminal with it.
            let _ = client.send(&kill).await;
        });
    }
}

fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
