//! Controller-owned external tools (docs/protocol.md §3.11): registrations per connection, runtime and
//! `scope_id`, and calls routed to the owning connection.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use letta_app_server_protocol::{
    ExternalToolCallRequest, ExternalToolCallResponse, ExternalToolDefinition, ExternalToolGroup, JsonObject,
    RuntimeScope,
};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::clients::SessionId;
use crate::clock::new_id;
use crate::sync::lock;
use crate::tools::ToolResult;

/// One registered tool.
#[derive(Debug, Clone)]
pub struct Registration {
    /// The connection that registered it, and that executes it.
    pub session: SessionId,
    /// Its `scope_id`, if any.
    pub scope_id: Option<String>,
    /// The definition (one allocation shared by every runtime it was registered for).
    pub tool: Arc<ExternalToolDefinition>,
}

/// Runtimes one connection may have tools registered for at once.
pub const MAX_RUNTIMES_PER_CONNECTION: usize = 1024;
/// Tools one runtime may have registered at once, by all connections together: every turn offers
/// them and every device status lists their names.
pub const MAX_TOOLS_PER_RUNTIME: usize = 1024;

/// Where a call goes.
struct PendingCall {
    session: SessionId,
    reply: oneshot::Sender<Result<ExternalToolCallResponse, String>>,
}

/// Registrations by runtime, and the connections that may register.
#[derive(Default)]
struct Registrations {
    by_scope: HashMap<RuntimeScope, Vec<Registration>>,
    /// Open connections: a connection that closed (even while one of its commands was still
    /// being handled) registers nothing.
    open: HashSet<SessionId>,
}

/// All external tool registrations and calls in flight.
#[derive(Default)]
pub struct ExternalTools {
    registrations: Mutex<Registrations>,
    calls: Mutex<HashMap<String, PendingCall>>,
}

impl ExternalTools {
    /// A connection opened: it may register tools.
    pub fn session_opened(&self, session: SessionId) {
        lock(&self.registrations).open.insert(session);
    }

    /// Replaces `session`'s registrations for each of `scopes` with `groups` (empty removes
    /// them), all or none: refused past [`MAX_RUNTIMES_PER_CONNECTION`] or
    /// [`MAX_TOOLS_PER_RUNTIME`], and ignored once the connection has closed.
    pub fn replace(
        &self,
        session: SessionId,
        scopes: &[RuntimeScope],
        groups: &[ExternalToolGroup],
    ) -> Result<(), String> {
        let tools: Vec<Registration> = groups
            .iter()
            .flat_map(|group| {
                group.tools.iter().map(|tool| Registration {
                    session,
                    scope_id: group.scope_id.clone(),
                    tool: Arc::new(tool.clone()),
                })
            })
            .collect();
        let mut registrations = lock(&self.registrations);
        if !registrations.open.contains(&session) {
            return Ok(());
        }
        let theirs = |entries: &Vec<Registration>| entries.iter().filter(|r| r.session == session).count();
        if !tools.is_empty() {
            let registered = registrations
                .by_scope
                .values()
                .filter(|entries| theirs(entries) > 0)
                .count();
            let new = scopes
                .iter()
                .filter(|scope| {
                    registrations
                        .by_scope
                        .get(*scope)
                        .is_none_or(|entries| theirs(entries) == 0)
                })
                .count();
            if registered + new > MAX_RUNTIMES_PER_CONNECTION {
                return Err(format!(
                    "a connection may register tools for {MAX_RUNTIMES_PER_CONNECTION} runtimes at most"
                ));
            }
        }
        for scope in scopes {
            let entries = registrations.by_scope.get(scope);
            let others = entries.map_or(0, |entries| entries.len() - theirs(entries));
            if others + tools.len() > MAX_TOOLS_PER_RUNTIME {
                return Err(format!(
                    "runtime {scope} would have {} external tools, over the limit of {MAX_TOOLS_PER_RUNTIME}",
                    others + tools.len()
                ));
            }
        }
        for scope in scopes {
            let entries = registrations.by_scope.entry(scope.clone()).or_default();
            entries.retain(|r| r.session != session);
            entries.extend(tools.iter().cloned());
            if entries.is_empty() {
                registrations.by_scope.remove(scope);
            }
        }
        Ok(())
    }

    /// The tools a turn of `scope` started by `origin` may call: unscoped tools of any
    /// connection, and `origin`'s tools whose `scope_id` the turn listed (none when no connected
    /// session started it). Later registrations win for a duplicate name.
    pub fn visible(&self, scope: &RuntimeScope, origin: Option<SessionId>, scope_ids: &[String]) -> Vec<Registration> {
        let registrations = lock(&self.registrations);
        let offered =
            registrations
                .by_scope
                .get(scope)
                .into_iter()
                .flatten()
                .filter(|registration| match &registration.scope_id {
                    None => true,
                    Some(id) => origin == Some(registration.session) && scope_ids.contains(id),
                });
        // The latest registration of each name, in the order of the latest ones.
        let mut names = HashSet::new();
        let mut visible: Vec<Registration> = offered
            .rev()
            .filter(|registration| names.insert(registration.tool.name.as_str()))
            .cloned()
            .collect();
        visible.reverse();
        visible
    }

    /// A connection closed: its tools are gone and its calls in flight fail.
    pub fn session_closed(&self, session: SessionId) {
        let mut registrations = lock(&self.registrations);
        registrations.open.remove(&session);
        registrations.by_scope.retain(|_, entries| {
            entries.retain(|r| r.session != session);
            !entries.is_empty()
        });
        drop(registrations);
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
            runtime: Some(scope.without_acting_user()),
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

/// Maps a controller's answer to the tool result the model sees (docs/protocol.md §3.11): text parts
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
