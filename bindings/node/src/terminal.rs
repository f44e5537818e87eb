//! Terminals for JavaScript: a [`NativeTerminal`] writes, resizes and kills; its output is a
//! [`FrameStream`] of the terminal's `terminal_output` frames, then its `terminal_exited`.

use std::time::Duration;

use letta_app_server_client::{Client, TerminalControl, TerminalOptions};
use napi::bindgen_prelude::{Error, Result};
use napi_derive::napi;

use crate::error::to_js;
use crate::stream::FrameStream;

/// How to start a terminal, as the JavaScript layer passes them.
#[napi(object)]
pub struct NativeTerminalOptions {
    /// The terminal's id; absent: `"terminal-<n>"`.
    pub terminal_id: Option<String>,
    /// The shell's working directory (relative to the server's boot working directory).
    pub cwd: Option<String>,
    /// Columns (80).
    pub cols: Option<u32>,
    /// Rows (24).
    pub rows: Option<u32>,
    /// Output frames buffered before reading the socket waits.
    pub capacity: Option<u32>,
    /// How long a full output stream may hold up reading at a time; absent: as long as it takes.
    pub patience_ms: Option<u32>,
}

/// A terminal on the server. Its output is taken once, with [`NativeTerminal::output`].
#[napi]
pub struct NativeTerminal {
    control: TerminalControl,
    output: Option<FrameStream>,
}

/// `terminal_spawn` with `options`; the terminal once `terminal_spawned` came.
pub(crate) async fn spawn(client: &Client, options: NativeTerminalOptions) -> Result<NativeTerminal> {
    let defaults = TerminalOptions::default();
    let terminal = client
        .terminal_spawn(TerminalOptions {
            terminal_id: options.terminal_id,
            cwd: options.cwd,
            cols: options.cols.unwrap_or(defaults.cols),
            rows: options.rows.unwrap_or(defaults.rows),
            capacity: options.capacity.map_or(defaults.capacity, |capacity| capacity as usize),
            patience: options.patience_ms.map(|ms| Duration::from_millis(ms.into())),
        })
        .await
        .map_err(to_terminal_error)?;
    Ok(NativeTerminal {
        control: terminal.control(),
        output: Some(FrameStream::terminal(terminal)),
    })
}

#[napi]
impl NativeTerminal {
    /// The terminal's id.
    #[napi(getter)]
    pub fn id(&self) -> String {
        self.control.id().to_owned()
    }

    /// The shell's process id.
    #[napi(getter)]
    pub fn pid(&self) -> u32 {
        self.control.pid()
    }

    /// The stream of its output frames, then its `terminal_exited`; closing (or dropping) it
    /// kills the shell. `null` after the first call.
    #[napi]
    pub fn output(&mut self) -> Option<FrameStream> {
        self.output.take()
    }

    /// `terminal_input`.
    #[napi]
    pub async fn write(&self, data: String) -> Result<()> {
        self.control.write(data).await.map_err(to_terminal_error)
    }

    /// `terminal_resize`.
    #[napi]
    pub async fn resize(&self, cols: u32, rows: u32) -> Result<()> {
        self.control.resize(cols, rows).await.map_err(to_terminal_error)
    }

    /// `terminal_kill`.
    #[napi]
    pub async fn kill(&self) -> Result<()> {
        self.control.kill().await.map_err(to_terminal_error)
    }
}

/// A terminal's error for JavaScript: the server's own text when it refused (`spawn /bin/zsh
/// ENOENT`, `Terminal not found: <id>`), else as for any command.
fn to_terminal_error(error: letta_app_server_client::Error) -> Error {
    match error {
        letta_app_server_client::Error::Server { message, .. }
        | letta_app_server_client::Error::Rejected { message, .. } => Error::from_reason(message),
        other => to_js(other),
    }
}
