//! External tools written in Python: the Rust client's handler for each registered tool hands
//! the call to Python through a bounded queue and waits for Python's answer.

use std::sync::{Arc, Mutex};

use letta_app_server_client::types::{ExternalToolCallRequest, ExternalToolResult};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::convert::{Json, from_py};

/// Calls waiting for Python to pick them up; past this, the Rust handlers wait (and the
/// server times a call out after five minutes).
pub const QUEUED_CALLS: usize = 64;

/// What a handler answers: a result, or an error message the model sees.
type Answer = Result<ExternalToolResult, String>;

/// One call on its way to Python.
pub struct Call {
    request: ExternalToolCallRequest,
    answer: oneshot::Sender<Answer>,
}

/// The Rust side of the queue: what each registered tool's handler sends calls through.
#[derive(Clone)]
pub struct Calls(mpsc::Sender<Call>);

/// The Python side of the queue.
pub type Inbox = Arc<Receiver>;

/// Where Python takes calls from, until the client closes.
pub struct Receiver {
    calls: tokio::sync::Mutex<mpsc::Receiver<Call>>,
    closed: CancellationToken,
}

impl Receiver {
    /// No call is taken any more: a waiting [`next`] returns `None`.
    pub fn close(&self) {
        self.closed.cancel();
    }
}

/// A new queue.
pub fn queue() -> (Calls, Inbox) {
    let (tx, rx) = mpsc::channel(QUEUED_CALLS);
    let receiver = Receiver {
        calls: tokio::sync::Mutex::new(rx),
        closed: CancellationToken::new(),
    };
    (Calls(tx), Arc::new(receiver))
}

impl Calls {
    /// Hands `request` to Python and waits for the answer. A call Python drops unanswered
    /// (its task cancelled, the client closed) is answered with an error.
    pub async fn handle(&self, request: ExternalToolCallRequest) -> Answer {
        let tool = request.tool_name.clone();
        let (answer, answered) = oneshot::channel();
        self.0
            .send(Call { request, answer })
            .await
            .map_err(|_| format!("the Python client serving {tool} is closed"))?;
        answered
            .await
            .unwrap_or_else(|_| Err(format!("the handler of {tool} was cancelled")))
    }
}

/// Waits for the next call; `None` once the client has closed.
pub async fn next(inbox: Inbox) -> Option<ToolCall> {
    let call = tokio::select! {
        () = inbox.closed.cancelled() => None,
        call = async { inbox.calls.lock().await.recv().await } => call,
    }?;
    Some(ToolCall {
        request: call.request,
        answer: Mutex::new(Some(call.answer)),
    })
}

/// An `external_tool_call_request` for a tool this client serves, to answer once with
/// [`ToolCall::respond`] or [`ToolCall::fail`].
#[pyclass(module = "letta_app_server._native", frozen)]
pub struct ToolCall {
    request: ExternalToolCallRequest,
    answer: Mutex<Option<oneshot::Sender<Answer>>>,
}

impl ToolCall {
    fn send(&self, answer: Answer) -> PyResult<()> {
        let sender = self
            .answer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()
            .ok_or_else(|| PyRuntimeError::new_err(format!("{} was answered already", self.request.request_id)))?;
        // The handler is gone only when the client closed; the answer has nowhere to go.
        let _ = sender.send(answer);
        Ok(())
    }
}

#[pymethods]
impl ToolCall {
    /// The tool's name.
    #[getter]
    fn tool_name(&self) -> &str {
        &self.request.tool_name
    }

    /// The arguments the model passed (a dict).
    #[getter]
    fn input(&self) -> PyResult<Json> {
        Json::of(&self.request.input)
    }

    /// Answers with a result (`{"content": [...], "is_error": ...}`).
    fn respond(&self, result: &Bound<'_, PyAny>) -> PyResult<()> {
        let result = from_py::<ExternalToolResult>(result, "external tool result")?;
        self.send(Ok(result))
    }

    /// Answers with an error; the model sees `External tool execution error: <message>`.
    fn fail(&self, message: String) -> PyResult<()> {
        self.send(Err(message))
    }
}
