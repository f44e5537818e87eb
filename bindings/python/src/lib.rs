//! `letta_app_server._native`: the native core of the `letta_app_server` Python package, over
//! the Rust client (`letta-app-server-client`).
//!
//! The Python package (`bindings/python/python/letta_app_server`) is the public API; this
//! module is private to it. Awaitables run on a tokio runtime of the module's own and take the
//! GIL only to convert values; event streams hand frames over in batches, converted from their
//! text into dicts on Python's own thread (see `stream`).

mod client;
mod convert;
mod errors;
mod stream;
mod terminal;
mod tools;
mod validate;

use std::time::Duration;

use pyo3::prelude::*;

/// Parses a frame's text the way event streams do: a JSON object becomes a dict.
#[pyfunction]
fn parse_frame<'py>(py: Python<'py>, text: &str) -> Bound<'py, PyAny> {
    convert::with_strings(|strings| convert::text_to_py(py, text, strings))
}

/// Serialises a frame the way commands are sent.
#[pyfunction]
fn encode_frame(frame: &Bound<'_, PyAny>) -> PyResult<String> {
    Ok(convert::py_to_value(frame)?.to_string())
}

/// Waits (without the GIL, for at most a second) until every awaitable that has completed has
/// handed its result to Python. Registered with `atexit`: otherwise the interpreter could be
/// finalised while a runtime thread still holds a Python thread state, which CPython aborts on.
#[pyfunction]
fn settle(py: Python<'_>) {
    py.detach(|| {
        pyo3_async_runtimes::tokio::get_runtime().block_on(async {
            // The one blocking thread runs the hand-overs in order: once this no-op has run,
            // every earlier one has finished.
            let _ = tokio::time::timeout(Duration::from_secs(1), tokio::task::spawn_blocking(|| ())).await;
        });
    });
}

/// Threads of the module's tokio runtime. One reads the socket and runs the client's tasks;
/// the work per frame is small, and a second would mostly cost wake-ups.
const WORKER_THREADS: usize = 1;

/// Threads that hand the awaitables' results to Python (each takes the GIL, so more would only
/// queue for it). One, so that they run in order; [`settle`] relies on that.
const BLOCKING_THREADS: usize = 1;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime
        .worker_threads(WORKER_THREADS)
        .max_blocking_threads(BLOCKING_THREADS)
        .thread_name("letta-app-server-client")
        .enable_all();
    pyo3_async_runtimes::tokio::init(runtime);
    m.add_class::<client::Client>()?;
    m.add_class::<stream::FrameStream>()?;
    m.add_class::<stream::Gap>()?;
    m.add_class::<terminal::TerminalControl>()?;
    m.add_class::<tools::ToolCall>()?;
    m.add_function(wrap_pyfunction!(parse_frame, m)?)?;
    m.add_function(wrap_pyfunction!(encode_frame, m)?)?;
    m.add_function(wrap_pyfunction!(settle, m)?)?;
    m.add_function(wrap_pyfunction!(validate::validate_frame, m)?)?;
    Ok(())
}
