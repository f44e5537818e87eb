//! Controller-owned ("external") tools: handlers that answer `external_tool_call_request`s.

use std::collections::HashMap;
use std::fmt::Display;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::frame::RawFrame;
use crate::requests::Requests;
use crate::types::{
    ExternalToolCallRequest, ExternalToolCallResponse, ExternalToolContent, ExternalToolDefinition, ExternalToolResult,
};

/// What a handler returns: the result, or an error message the model sees as
/// `External tool execution error: <message>`.
type ToolOutcome = Result<ExternalToolResult, String>;

type Handler = Arc<dyn Fn(ExternalToolCallRequest) -> Pin<Box<dyn Future<Output = ToolOutcome> + Send>> + Send + Sync>;

/// The tools a client serves.
#[derive(Default)]
pub(crate) struct ExternalTools {
    registry: Mutex<Registry>,
}

#[derive(Default)]
struct Registry {
    /// Definitions, in registration order, offered in `runtime_start`.
    definitions: Vec<ExternalToolDefinition>,
    handlers: HashMap<String, Handler>,
    /// Answers calls of tools without their own handler.
    fallback: Option<Handler>,
}

impl ExternalTools {
    fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Adds (or replaces) a tool and its handler.
    pub fn register(&self, definition: ExternalToolDefinition, handler: Handler) {
        let mut registry = self.registry();
        registry.definitions.retain(|known| known.name != definition.name);
        registry.handlers.insert(definition.name.clone(), handler);
        registry.definitions.push(definition);
    }

    /// Sets the handler of calls to tools without their own.
    pub fn set_fallback(&self, handler: Handler) {
        self.registry().fallback = Some(handler);
    }

    /// The registered definitions.
    pub fn definitions(&self) -> Vec<ExternalToolDefinition> {
        self.registry().definitions.clone()
    }

    fn handler(&self, tool: &str) -> Option<Handler> {
        let registry = self.registry();
        registry.handlers.get(tool).or(registry.fallback.as_ref()).cloned()
    }

    /// Answers an `external_tool_call_request` in a task of its own, if a handler serves the
    /// tool; otherwise leaves it to whoever reads the events. A handler's error, or its panic,
    /// becomes an error answer. The answer goes out through `requests`.
    pub fn handle(&self, requests: &Arc<impl Requests + 'static>, frame: &RawFrame) {
        let Ok(call) = frame.parse::<ExternalToolCallRequest>() else {
            return;
        };
        let Some(handler) = self.handler(&call.tool_name) else {
            return;
        };
        let requests = Arc::clone(requests);
        tokio::spawn(async move {
            let request_id = call.request_id.clone();
            let tool = call.tool_name.clone();
            // A task of its own, so that a panic, even before the handler's future exists, is
            // caught here.
            let outcome = tokio::spawn(async move { handler(call).await })
                .await
                .unwrap_or_else(|failure| Err(panic_message(&tool, failure)));
            let (result, error) = match outcome {
                Ok(result) => (Some(result), None),
                Err(error) => (None, Some(error)),
            };
            let response = ExternalToolCallResponse {
                type_: "external_tool_call_response".into(),
                request_id,
                result,
                error,
            };
            if let Ok(text) = serde_json::to_string(&response) {
                // If the connection is gone the server has already failed the call.
                let _ = requests.send(text).await;
            }
        });
    }
}

/// Wraps a typed async handler.
pub(crate) fn handler<F, Fut, R, E>(handler: F) -> Handler
where
    F: Fn(ExternalToolCallRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<R, E>> + Send + 'static,
    R: Into<ExternalToolResult>,
    E: Display,
{
    Arc::new(move |call| {
        let future = handler(call);
        Box::pin(async move { future.await.map(Into::into).map_err(|e| e.to_string()) })
    })
}

fn panic_message(tool: &str, failure: tokio::task::JoinError) -> String {
    let detail = match failure.try_into_panic() {
        Ok(payload) => payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".into()),
        Err(_) => "cancelled".into(),
    };
    format!("the handler of {tool} panicked: {detail}")
}

impl ExternalToolResult {
    /// A result of one text part.
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            content: vec![ExternalToolContent {
                type_: "text".into(),
                text: Some(text.into()),
                data: None,
                mime_type: None,
            }],
            is_error: None,
        }
    }

    /// A text result the model sees as the tool failing.
    pub fn error(text: impl Into<String>) -> Self {
        Self {
            is_error: Some(true),
            ..Self::text(text)
        }
    }
}

impl From<String> for ExternalToolResult {
    fn from(text: String) -> Self {
        Self::text(text)
    }
}

impl From<&str> for ExternalToolResult {
    fn from(text: &str) -> Self {
        Self::text(text)
    }
}

impl ExternalToolDefinition {
    /// A tool named `name`, described to the model by `description`, taking arguments that match
    /// the JSON Schema `parameters`. A `parameters` that is not a JSON object stands for any
    /// arguments (`{"type": "object"}`).
    pub fn new(name: impl Into<String>, description: impl Into<String>, parameters: serde_json::Value) -> Self {
        let parameters = match parameters {
            serde_json::Value::Object(schema) => schema,
            _ => serde_json::Map::from_iter([("type".to_owned(), "object".into())]),
        };
        Self {
            name: name.into(),
            description: description.into(),
            label: None,
            parameters,
            timeout_ms: None,
            auto_background: None,
        }
    }
}
