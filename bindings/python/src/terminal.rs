//! Terminals for Python: [`TerminalControl`] writes, resizes and kills; the output is a
//! [`FrameStream`] of the terminal's `terminal_output` frames, then its `terminal_exited`.

use letta_app_server_client::{Client as RustClient, TerminalOptions};
use pyo3::prelude::*;

use crate::errors;
use crate::stream::{FrameStream, Source};

/// Writes to, resizes and kills one terminal.
#[pyclass(module = "letta_app_server._native", frozen)]
pub struct TerminalControl {
    control: letta_app_server_client::TerminalControl,
}

/// `terminal_spawn` with `options`: the terminal's control and its output, once
/// `terminal_spawned` came.
pub async fn spawn(client: RustClient, options: TerminalOptions) -> PyResult<(TerminalControl, FrameStream)> {
    let terminal = client.terminal_spawn(options).await.map_err(errors::to_py)?;
    let control = TerminalControl {
        control: terminal.control(),
    };
    Ok((control, FrameStream::new(Source::Terminal(Box::new(terminal)))))
}

#[pymethods]
impl TerminalControl {
    /// The terminal's id.
    #[getter]
    fn id(&self) -> &str {
        self.control.id()
    }

    /// The shell's process id.
    #[getter]
    fn pid(&self) -> u32 {
        self.control.pid()
    }

    /// `terminal_input`.
    fn write<'py>(&self, py: Python<'py>, data: String) -> PyResult<Bound<'py, PyAny>> {
        let control = self.control.clone();
        pyo3_async_runtimes::tokio::future_into_py(py, async move { control.write(data).await.map_err(errors::to_py) })
    }

    /// `terminal_resize`.
    fn resize<'py>(&self, py: Python<'py>, cols: u32, rows: u32) -> PyResult<Bound<'py, PyAny>> {
        let control = self.control.clone();
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            control.resize(cols, rows).await.map_err(errors::to_py)
        })
    }

    /// `terminal_kill`.
    fn kill<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let control = self.control.clone();
        pyo3_async_runtimes::tokio::future_into_py(py, async move { control.kill().await.map_err(errors::to_py) })
    }
}
