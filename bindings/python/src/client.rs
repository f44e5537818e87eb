//! The native client: the Rust client's commands as awaitables for the Python package.
//!
//! Every method that talks to the server returns an awaitable run on the binding's tokio
//! runtime; the GIL is taken only to convert arguments before and results after. Cancelling
//! the awaitable drops the Rust future, which withdraws the request.

use std::future::Future;
use std::time::Duration;

use letta_app_server_client::types::{
    ApprovalDecision, ExternalToolDefinition, ExternalToolsUpdate, InputPayload, RuntimeScope, RuntimeStart,
};
use letta_app_server_client::{Client as RustClient, Reconnect, TerminalOptions, Transport};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use serde_json::{Value, json};

use crate::convert::{Json, check, checked, from_py, py_to_value};
use crate::errors;
use crate::stream::{FrameStream, Source};
use crate::terminal;
use crate::tools::{self, Calls, Inbox};

/// How long a full stream holds back reading the socket before it falls behind instead:
/// Python keeps up with a reply however fast the server streams it, as a plain websocket reader
/// does, while a stream nobody reads holds up the connection for this long at most. Under the
/// server's half second, after which it would count this client as a slow reader.
pub const PATIENCE: Duration = Duration::from_millis(250);

/// A connection to an App Server.
#[pyclass(module = "letta_app_server._native", frozen)]
pub struct Client {
    client: RustClient,
    calls: Calls,
    inbox: Inbox,
}

/// Runs `future` on the tokio runtime as a Python awaitable, client errors becoming the
/// package's exceptions.
fn awaitable<'py, T, F>(py: Python<'py>, future: F) -> PyResult<Bound<'py, PyAny>>
where
    F: Future<Output = Result<T, letta_app_server_client::Error>> + Send + 'static,
    T: for<'a> IntoPyObject<'a> + Send + 'static,
{
    pyo3_async_runtimes::tokio::future_into_py(py, async move { future.await.map_err(errors::to_py) })
}

/// Sends a command (a JSON object) with [`RustClient::command`]; Python gets the answer frame
/// as received, so fields this version does not know reach it too.
fn command<'py>(py: Python<'py>, client: &RustClient, frame: Value) -> PyResult<Bound<'py, PyAny>> {
    let Value::Object(frame) = frame else {
        return Err(PyValueError::new_err("a command must be a dict"));
    };
    let client = client.clone();
    awaitable(py, async move { Ok(Json::received(&client.command(frame).await?)) })
}

/// The runtime and the payload of an `input`.
fn input(runtime: &Bound<'_, PyAny>, payload: &Bound<'_, PyAny>) -> PyResult<(RuntimeScope, InputPayload)> {
    Ok((from_py(runtime, "runtime")?, from_py(payload, "input payload")?))
}

fn seconds(value: f64, what: &str) -> PyResult<Duration> {
    Duration::try_from_secs_f64(value)
        .map_err(|_| PyValueError::new_err(format!("{what} must be a number of seconds ≥ 0")))
}

#[pymethods]
impl Client {
    /// Connects. `ca_pem` is the PEM text of CA certificates trusted for `wss://` besides the
    /// Mozilla roots; `reconnect` is `(initial_delay, max_delay, max_attempts)` in seconds, or
    /// `None` for no automatic reconnect.
    #[staticmethod]
    #[pyo3(signature = (url, token, ca_pem, request_timeout, event_capacity, reconnect, split))]
    // The options of the Python layer's `connect`, one argument each.
    #[allow(clippy::too_many_arguments)]
    fn connect<'py>(
        py: Python<'py>,
        url: String,
        token: Option<String>,
        ca_pem: Option<Vec<u8>>,
        request_timeout: f64,
        event_capacity: usize,
        reconnect: Option<(f64, f64, Option<u32>, bool)>,
        split: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let mut builder = RustClient::builder(&url)
            .request_timeout(seconds(request_timeout, "request_timeout")?)
            .event_capacity(event_capacity)
            .transport(if split { Transport::Split } else { Transport::Single });
        if let Some(token) = token {
            builder = builder.token(token);
        }
        if let Some(pem) = ca_pem {
            builder = builder.ca_pem(pem);
        }
        if let Some((initial, max, attempts, resume)) = reconnect {
            builder = builder.reconnect(Reconnect {
                initial_delay: seconds(initial, "initial_delay")?,
                max_delay: seconds(max, "max_delay")?,
                max_attempts: attempts,
                resume,
            });
        }
        awaitable(py, async move {
            let client = builder.connect().await?;
            let (calls, inbox) = tools::queue();
            Ok(Client { client, calls, inbox })
        })
    }

    /// A fresh request id, `"<prefix>-<n>"`.
    fn next_request_id(&self, prefix: &str) -> String {
        self.client.next_request_id(prefix)
    }

    /// The approvals pending, then every frame from now on, or one runtime's (a patient stream:
    /// see [`PATIENCE`]).
    #[pyo3(signature = (runtime=None))]
    fn events(&self, runtime: Option<&Bound<'_, PyAny>>) -> PyResult<FrameStream> {
        let scope = runtime.map(|r| from_py::<RuntimeScope>(r, "runtime")).transpose()?;
        let events = self.client.raw_events_patient(scope.as_ref(), PATIENCE);
        Ok(FrameStream::new(Source::Events(events)))
    }

    /// The `control_request`s pending, of every runtime or of `runtime`'s, as received.
    #[pyo3(signature = (runtime=None))]
    fn pending_approvals(&self, runtime: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<Json>> {
        let scope = runtime.map(|r| from_py::<RuntimeScope>(r, "runtime")).transpose()?;
        let pending = self.client.pending_approvals(scope.as_ref());
        Ok(pending.iter().map(|frame| Json::received(&frame.raw)).collect())
    }

    /// Sends any frame without waiting for an answer.
    fn send<'py>(&self, py: Python<'py>, frame: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let frame = py_to_value(frame)?;
        let client = self.client.clone();
        awaitable(py, async move { client.send(&frame).await })
    }

    /// Sends a frame carrying `request_id` and returns the first frame answering it.
    fn request<'py>(&self, py: Python<'py>, frame: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let frame = py_to_value(frame)?;
        let request_id = frame
            .get("request_id")
            .and_then(|id| id.as_str())
            .filter(|id| !id.is_empty())
            .ok_or_else(|| PyValueError::new_err("a request needs a non-empty string `request_id`"))?
            .to_owned();
        let client = self.client.clone();
        awaitable(py, async move {
            let answer = client.request(&frame, &request_id).await?;
            Ok(Json::received(&answer.raw))
        })
    }

    /// Sends any command the server answers with one frame (a dict; a missing `request_id`
    /// is numbered) and returns its answer as received.
    fn command<'py>(&self, py: Python<'py>, frame: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        command(py, &self.client, py_to_value(frame)?)
    }

    /// Sends a command the server answers with a stream of frames (a dict; a missing
    /// `request_id` is numbered) and returns the stream of its answers.
    fn command_stream<'py>(&self, py: Python<'py>, frame: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let Value::Object(frame) = py_to_value(frame)? else {
            return Err(PyValueError::new_err("a command must be a dict"));
        };
        let client = self.client.clone();
        awaitable(py, async move {
            let answers = client.command_stream(frame).await?;
            Ok(FrameStream::new(Source::Answers(Box::new(answers))))
        })
    }

    /// Watches a file (`watch_file`) and returns the stream of its `file_changed` frames, which
    /// sends `unwatch_file` when closed or collected.
    fn watch_file<'py>(&self, py: Python<'py>, path: String) -> PyResult<Bound<'py, PyAny>> {
        let client = self.client.clone();
        awaitable(py, async move {
            let watch = client.watch_file(path).await?;
            Ok(FrameStream::new(Source::Watch(Box::new(watch))))
        })
    }

    /// `app_server_info`.
    fn info<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        command(py, &self.client, json!({"type": "app_server_info"}))
    }

    /// `runtime_start` (a `RuntimeStart` frame; `type` is set, and a missing `request_id` is
    /// numbered by the client).
    fn runtime_start<'py>(&self, py: Python<'py>, frame: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let mut frame = py_to_value(frame)?;
        if let Value::Object(fields) = &mut frame {
            fields.insert("type".into(), "runtime_start".into());
            fields.entry("request_id").or_insert_with(|| "".into());
        }
        command(py, &self.client, check::<RuntimeStart>(frame, "runtime_start")?)
    }

    /// `sync`.
    fn sync<'py>(&self, py: Python<'py>, runtime: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let runtime = checked::<RuntimeScope>(runtime, "runtime")?;
        command(py, &self.client, json!({"type": "sync", "runtime": runtime}))
    }

    /// `abort_message`.
    fn abort<'py>(&self, py: Python<'py>, runtime: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let runtime = checked::<RuntimeScope>(runtime, "runtime")?;
        command(py, &self.client, json!({"type": "abort_message", "runtime": runtime}))
    }

    /// `remove_queue_item`.
    fn remove_queue_item<'py>(
        &self,
        py: Python<'py>,
        runtime: &Bound<'py, PyAny>,
        item_id: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        let runtime = checked::<RuntimeScope>(runtime, "runtime")?;
        let frame = json!({"type": "remove_queue_item", "runtime": runtime, "item_id": item_id});
        command(py, &self.client, frame)
    }

    /// `runtime_external_tools_update`.
    fn runtime_external_tools_update<'py>(
        &self,
        py: Python<'py>,
        updates: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let updates = checked::<Vec<ExternalToolsUpdate>>(updates, "runtime_external_tools_update updates")?;
        command(
            py,
            &self.client,
            json!({"type": "runtime_external_tools_update", "updates": updates}),
        )
    }

    /// `input`, waiting for its `input_accepted`.
    fn submit_input<'py>(
        &self,
        py: Python<'py>,
        runtime: &Bound<'py, PyAny>,
        payload: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let runtime = checked::<RuntimeScope>(runtime, "runtime")?;
        let payload = checked::<InputPayload>(payload, "input payload")?;
        command(
            py,
            &self.client,
            json!({"type": "input", "runtime": runtime, "payload": payload}),
        )
    }

    /// Answers a `control_request`.
    fn answer_approval<'py>(
        &self,
        py: Python<'py>,
        runtime: &Bound<'py, PyAny>,
        request_id: String,
        decision: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let runtime = checked::<RuntimeScope>(runtime, "runtime")?;
        let decision = checked::<ApprovalDecision>(decision, "approval decision")?;
        let payload = json!({"kind": "approval_response", "request_id": request_id, "decision": decision});
        command(
            py,
            &self.client,
            json!({"type": "input", "runtime": runtime, "payload": payload}),
        )
    }

    /// Sends an input and returns `(input_accepted, stream of its turn)`.
    fn turn<'py>(
        &self,
        py: Python<'py>,
        runtime: &Bound<'py, PyAny>,
        payload: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (scope, payload) = input(runtime, payload)?;
        let client = self.client.clone();
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            let turn = client
                .turn_patient(&scope, payload, PATIENCE)
                .await
                .map_err(errors::to_py)?;
            let accepted = Json::received(turn.accepted_frame());
            Ok((accepted, FrameStream::new(Source::Turn(Box::new(turn)))))
        })
    }

    /// `terminal_spawn`: `(control, output stream)` once `terminal_spawned` came. `patience`
    /// (seconds) lets an unread, full output stream hold up reading for at most that long.
    #[pyo3(signature = (terminal_id, cwd, cols, rows, capacity, patience))]
    // The options of the Python layer's `terminal`, one argument each.
    #[allow(clippy::too_many_arguments)]
    fn terminal<'py>(
        &self,
        py: Python<'py>,
        terminal_id: Option<String>,
        cwd: Option<String>,
        cols: u32,
        rows: u32,
        capacity: usize,
        patience: Option<f64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let options = TerminalOptions {
            terminal_id,
            cwd,
            cols,
            rows,
            capacity,
            patience: patience.map(|value| seconds(value, "patience")).transpose()?,
        };
        pyo3_async_runtimes::tokio::future_into_py(py, terminal::spawn(self.client.clone(), options))
    }

    /// Serves an external tool: its calls come out of [`Client::next_tool_call`].
    fn register_tool(&self, definition: &Bound<'_, PyAny>) -> PyResult<()> {
        let definition = from_py::<ExternalToolDefinition>(definition, "external tool definition")?;
        let calls = self.calls.clone();
        self.client.register_external_tool(definition, move |request| {
            let calls = calls.clone();
            async move { calls.handle(request).await }
        });
        Ok(())
    }

    /// Waits for the next call of a registered tool; `None` once the client is closed.
    fn next_tool_call<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let inbox = self.inbox.clone();
        pyo3_async_runtimes::tokio::future_into_py(py, async move { Ok(tools::next(inbox).await) })
    }

    /// Closes the connection: pending commands fail with `ClosedError`, streams end, and a
    /// waiting [`Client::next_tool_call`] returns `None`.
    fn close<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.inbox.close();
        let client = self.client.clone();
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            client.close().await;
            Ok(())
        })
    }
}
