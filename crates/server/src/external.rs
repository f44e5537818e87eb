//! Controller-owned external tools (REFERENCE §3.11): registrations per connection, runtime and
//! `scope_id`, and calls routed to the owning connection.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use letta_app_server_protocol::{
    ExternalToolCallRequest, ExternalToolCallResponse, ExternalToolDefinition, ExternalToolGroup, JsonObject,
    RuntimeScope,
};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::clock::new_id;
use crate::runtime::{SessionId, lock};
use crate::tools::ToolResult;

/// One registered tool.
#[derive(Debug, Clone)]
pub struct Registration {
    /// The connection that registered it, and that executes it.
    pub session: SessionId,
    /// Its `scope_id`, if any.
    pub scope_id: Option<String>,
    /// The definition.
    pub tool: ExternalToolDefinition,
}

/// Where a call goes.
struct PendingCall {
    session: SessionId,
    reply: oneshot::Sender<Result<ExternalToolCallResponse, String>>,
}

/// All external tool registrations and calls in flight.
#[derive(Default)]
pub struct ExternalTools {
    registrations: Mutex<HashMap<RuntimeScope, Vec<Registration>>>,
    calls: Mutex<HashMap<String, PendingCall>>,
}

impl ExternalTools {
    /// Replaces `session`'s registrations for `scope` with `groups` (empty removes them).
    pub fn replace(&self, session: SessionId, scope: &RuntimeScope, groups: &[ExternalToolGroup]) {
        let mut registrations = lock(&self.registrations);
        let entries = registrations.entry(scope.clone()).or_default();
        entries.retain(|r| r.session != session);
        for group in groups {
            for tool in &group.tools {
                entries.push(Registration {
                    session,
                    scope_id: group.scope_id.clone(),
                    tool: tool.clone(),
                });
            }
        }
    }

    /// The tools a turn of `scope` started by `origin` may call: unscoped tools of any
    /// connection, and `origin`'s tools whose `scope_id` the turn listed (none when no connected
    /// session started it). Later registrations win for a duplicate name.
    pub fn visible(&self, scope: &RuntimeScope, origin: Option<SessionId>, scope_ids: &[String]) -> Vec<Registration> {
        let registrations = lock(&self.registrations);
        let mut visible: Vec<Registration> = Vec::new();
        for registration in registrations.get(scope).into_iter().flatten() {
            let offered = match &registration.scope_id {
                None => true,
                Some(id) => origin == Some(registration.session) && scope_ids.contains(id),
            };
            if offered {
                visible.retain(|r| r.tool.name != registration.tool.name);
                visible.push(registration.clone());
            }
        }
        visible
    }

    /// A connection closed: its tools are gone and its calls in flight fail.
    pub fn session_closed(&self, session: SessionId) {
        for entries in lock(&self.registrations).values_mut() {
            entries.retain(|r| r.session != session);
        }
        let mut calls = lock(&self.calls);
        let closed: Vec<String> = calls
            .iter()
            .filter(|(_, c)| c.session == session)
            .map(|(id, _)| id.clone())
            .collect();
        for id in closed {
            if let Some(call) = calls.remove(&id) {
                let _ = call.reply.send(Err("External tool controller is not connected".into()));
            }
        }
    }

    /// Routes a controller's answer; answers to unknown or finished calls are ignored.
    pub fn answer(&self, response: ExternalToolCallResponse) {
        if let Some(call) = lock(&self.calls).remove(&response.request_id) {
            let _ = call.reply.send(Ok(response));
        }
    }

    /// Calls `registration`'s tool through its connection: `send` delivers the request frame;
    /// the result comes from the controller's answer, a timeout, or cancellation.
    #[allow(clippy::too_many_arguments)]
    pub async fn call(
        &self,
        registration: &Registration,
        scope: &RuntimeScope,
        tool_call_id: &str,
        input: JsonObject,
        timeout: Duration,
        cancel: &CancellationToken,
        send: impl FnOnce(ExternalToolCallRequest) -> bool,
    ) -> ToolResult {
        let request_id = new_id("external-tool");
        let (reply, answer) = oneshot::channel();
        lock(&self.calls).insert(
            request_id.clone(),
            PendingCall {
                session: registration.session,
                reply,
            },
        );
        let request = ExternalToolCallRequest {
            request_id: request_id.clone(),
            runtime: Some(RuntimeScope::new(scope.agent_id.clone(), scope.conversation_id.clone())),
            scope_id: registration.scope_id.clone(),
            tool_call_id: tool_call_id.to_owned(),
            tool_name: registration.tool.name.clone(),
            input,
        };
        if !send(request) {
            lock(&self.calls).remove(&request_id);
            return ToolResult::error("External tool controller is not connected");
        }
        let outcome = tokio::select! {
            answer = answer => answer.unwrap_or_else(|_| Err("External tool controller is not connected".into())),
            () = tokio::time::sleep(timeout) => Err(format!("External tool call timed out: {}", registration.tool.name)),
            () = cancel.cancelled() => Err("Interrupted by user".into()),
        };
        lock(&self.calls).remove(&request_id);
        match outcome {
            Ok(response) => result_of(response),
            Err(error) => ToolResult::error(error),
        }
    }
}

/// Maps a controller's answer to the tool result the model sees (REFERENCE §3.11): text parts
/// joined with newlines; images noted; an `error` becomes `External tool execution error: …`.
fn result_of(response: ExternalToolCallResponse) -> ToolResult {
    if let Some(error) = response.error {
        return ToolResult::error(format!("External tool execution error: {error}"));
    }
    let Some(result) = response.result else {
        return ToolResult::error("External tool returned no result");
    };
    let parts: Vec<String> = result
        .content
        .iter()
        .filter_map(|part| match (part.kind.as_str(), &part.text, &part.mime_type) {
            ("text", Some(text), _) => Some(text.clone()),
            ("image", _, mime) => Some(format!("[image: {}]", mime.as_deref().unwrap_or("unknown type"))),
            _ => None,
        })
        .collect();
    let text = if parts.is_empty() {
        serde_json::to_string(&result.content).unwrap_or_default()
    } else {
        parts.join("\n")
    };
    if result.is_error == Some(true) {
        ToolResult::error(text)
    } else {
        ToolResult::ok(text)
    }
}
