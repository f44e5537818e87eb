//! The agents group (docs/protocol.md §4.6): `agent_list`, `agent_retrieve`, `agent_create`,
//! `agent_update`, `agent_delete`, and `create_agent` from a personality preset.
//!
//! * `list` — reading `AgentListParams` into a store query.
//! * `presets` — the bodies of the personality presets.
//!
//! Every failure is the command's own response with `success: false` and an `error`; an agent id
//! that names no agent gets real Letta's `Agent <id> not found`.

mod list;
mod presets;

use std::sync::Arc;

use letta_app_server_protocol::{
    AgentCreate, AgentCreateResponse, AgentDelete, AgentDeleteResponse, AgentList, AgentListResponse, AgentRetrieve,
    AgentRetrieveResponse, AgentUpdate, AgentUpdateResponse, CreateAgentCommand, CreateAgentResponse, Refuse,
    ServerFrame,
};

use super::Caller;
use crate::engine::agents::not_found;
use crate::store::UnknownCursor;

/// Answers `command` with its response saying it failed with `error`.
fn refuse<C: Refuse>(caller: &dyn Caller, command: &C, error: String)
where
    C::Response: Into<ServerFrame>,
{
    if let Some(answer) = command.refuse(error) {
        caller.send(answer);
    }
}

/// `agent_list`: one page of the agents the query selects, oldest or newest first.
pub(super) async fn agent_list(caller: &dyn Caller, command: AgentList) {
    let query = match list::read_query(command.query.as_ref()) {
        Ok(query) => query,
        Err(error) => return refuse(caller, &command, error),
    };
    let engine = caller.engine();
    match engine.store.list_agents(query).await {
        Ok(Ok(records)) => caller.send(AgentListResponse {
            request_id: command.request_id,
            success: true,
            agents: records.iter().map(|record| engine.agent_state(record)).collect(),
            error: None,
        }),
        Ok(Err(UnknownCursor(id))) => refuse(caller, &command, list::unknown_cursor(&id)),
        Err(error) => refuse(caller, &command, error.to_string()),
    }
}

/// `agent_retrieve`: one agent.
pub(super) async fn agent_retrieve(caller: &dyn Caller, command: AgentRetrieve) {
    match caller.engine().agent(&command.agent_id).await {
        Ok(agent) => caller.send(AgentRetrieveResponse {
            request_id: command.request_id,
            success: true,
            agent: Some(agent),
            error: None,
        }),
        Err(error) => refuse(caller, &command, error),
    }
}

/// `agent_create`: a new agent from an `AgentCreateParams` body.
pub(super) async fn agent_create(caller: &dyn Caller, command: AgentCreate) {
    let engine = caller.engine();
    match engine.create_agent(&command.body).await {
        Ok(record) => caller.send(AgentCreateResponse {
            request_id: command.request_id,
            success: true,
            agent: Some(engine.agent_state(&record)),
            error: None,
        }),
        Err(error) => refuse(caller, &command, error),
    }
}

/// `agent_update`: changes an agent with an `AgentUpdateParams` body.
pub(super) async fn agent_update(caller: &dyn Caller, command: AgentUpdate) {
    let engine = caller.engine();
    match engine.update_agent(&command.agent_id, &command.body).await {
        Ok(record) => caller.send(AgentUpdateResponse {
            request_id: command.request_id,
            success: true,
            agent: Some(engine.agent_state(&record)),
            error: None,
        }),
        Err(error) => refuse(caller, &command, error),
    }
}

/// `agent_delete`: deletes an agent with its conversations, and drops their runtimes (see
/// [`crate::engine::Engine::forget_agent`]). Answered once the agent's turns ended, so the
/// answer comes after their `turn_finished`.
pub(super) async fn agent_delete(caller: &Arc<dyn Caller>, command: AgentDelete) {
    let error = match caller.engine().forget_agent(&command.agent_id).await {
        Ok(true) => None,
        Ok(false) => Some(not_found(&command.agent_id)),
        Err(error) => Some(error.to_string()),
    };
    caller.send(AgentDeleteResponse {
        request_id: command.request_id,
        success: error.is_none(),
        agent_id: command.agent_id,
        error,
    });
}

/// `create_agent`: a new agent from a personality preset, with the request's model and extra
/// tags.
pub(super) async fn create_agent(caller: &dyn Caller, command: CreateAgentCommand) {
    let body = presets::body(command.personality, command.model.as_deref(), command.tags.as_deref());
    match caller.engine().create_agent(&body).await {
        Ok(record) => {
            let text = |key: &str| record.get(key).and_then(|v| v.as_str()).map(str::to_owned);
            caller.send(CreateAgentResponse {
                request_id: command.request_id,
                success: true,
                agent_id: text("id"),
                name: text("name"),
                model: text("model"),
                error: None,
            });
        }
        Err(error) => refuse(caller, &command, error),
    }
}
