//! Agents (docs/protocol.md §4.6): the one constructor of every new agent (`runtime_start`'s
//! `create_agent`, `agent_create`, `create_agent`), updates, the Letta `AgentState` every answer
//! shows, and deleting an agent with everything it owns.
//!
//! An agent is stored as a record of the fields this server keeps ([`fields`]). Every answer
//! shows a record through [`agent_state`], which fills in whatever a record lacks, so records
//! written by earlier versions (an `AgentCreateParams` body as it came, plus a few defaults)
//! read the same way.
//!
//! * [`fields`] — reading and bounding the fields of an agent body.
//! * [`state`] — a record as a Letta `AgentState`.
//! * `forget` — [`Engine::forget_agent`](crate::engine::Engine::forget_agent).

mod fields;
mod forget;
mod state;

use letta_app_server_protocol::{AgentState, JsonObject};

use crate::clock::{new_id, now_iso};
use crate::engine::ScopeError;
use crate::engine::context::Context;
pub use fields::{AgentFields, Purpose};
pub use state::agent_state;

/// The name of an agent whose body names none (Letta Code's local default).
pub const DEFAULT_NAME: &str = "Letta Code";
/// The `agent_type` of an agent whose body names none (Letta Code's agents').
pub const DEFAULT_AGENT_TYPE: &str = "letta_v1_agent";
/// Letta's agent types (`AgentType`).
pub const AGENT_TYPES: [&str; 9] = [
    "memgpt_agent",
    "memgpt_v2_agent",
    "letta_v1_agent",
    "react_agent",
    "workflow_agent",
    "split_thread_agent",
    "sleeptime_agent",
    "voice_convo_agent",
    "voice_sleeptime_agent",
];

/// The answer for an agent id that names no agent (real Letta's `LocalBackendNotFoundError`).
pub fn not_found(agent_id: &str) -> String {
    ScopeError::UnknownAgent(agent_id.to_owned()).to_string()
}

impl Context {
    /// Creates and stores an agent from an `AgentCreateParams` body; its record.
    pub async fn create_agent(&self, body: &JsonObject) -> Result<JsonObject, String> {
        let fields = AgentFields::read(body, Purpose::Create, &self.providers)?;
        let (id, now) = (new_id("agent"), now_iso());
        let record = fields.new_record(&id, &now);
        (self.store.insert_agent(id, &record, now).await).map_err(|error| error.to_string())?;
        Ok(record)
    }

    /// Applies an `AgentUpdateParams` body to an agent, in one store transaction; its new
    /// record. A turn reads its agent's model and system prompt when it starts, so a change
    /// applies from the next turn of every conversation of the agent.
    pub async fn update_agent(&self, agent_id: &str, body: &JsonObject) -> Result<JsonObject, String> {
        let fields = AgentFields::read(body, Purpose::Update, &self.providers)?;
        let now = now_iso();
        let updated = self
            .store
            .update_agent(agent_id.to_owned(), move |record| fields.apply(record, &now))
            .await;
        updated
            .map_err(|error| error.to_string())?
            .ok_or_else(|| not_found(agent_id))
    }

    /// A stored agent as a Letta `AgentState`, or why there is none.
    pub async fn agent(&self, agent_id: &str) -> Result<AgentState, String> {
        let record = (self.store.agent(agent_id.to_owned()).await).map_err(|error| error.to_string())?;
        record
            .map(|record| self.agent_state(&record))
            .ok_or_else(|| not_found(agent_id))
    }

    /// A stored agent record as a Letta `AgentState`.
    pub fn agent_state(&self, record: &JsonObject) -> AgentState {
        agent_state(record, &self.config.providers)
    }
}
