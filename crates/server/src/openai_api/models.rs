//! `GET /v1/models`: each agent as a model; and finding the agent a request's `model` names.

use std::collections::{HashMap, HashSet};
use std::time::UNIX_EPOCH;

use hyper::StatusCode;
use serde_json::{Value, json};

use super::{Api, ApiError};
use crate::store::AgentQuery;

/// Agents listed at most (real Letta's bound).
const MAX_LISTED_AGENTS: usize = 1000;

/// An agent as the API lists it.
struct Listed {
    id: String,
    name: Option<String>,
    /// Unix seconds.
    created: u64,
}

impl Api {
    /// The agents, oldest first (at most [`MAX_LISTED_AGENTS`]; hidden ones are not listed).
    async fn agents(&self) -> Result<Vec<Listed>, ApiError> {
        let query = AgentQuery {
            ascending: true,
            limit: MAX_LISTED_AGENTS,
            max_bytes: usize::MAX,
            ..AgentQuery::default()
        };
        let listed = self.sessions.engine().store.list_agents(query).await;
        let agents = listed.map_err(ApiError::internal)?.unwrap_or_default();
        Ok(agents
            .into_iter()
            .map(|agent| {
                let text = |key: &str| agent.get(key).and_then(Value::as_str).map(str::to_owned);
                Listed {
                    id: text("id").unwrap_or_default(),
                    name: text("name").filter(|name| !name.is_empty()),
                    created: text("created_at").map_or(0, |at| unix_seconds(&at)),
                }
            })
            .collect())
    }

    /// `GET /v1/models`.
    pub(super) async fn list_models(&self) -> Result<Value, ApiError> {
        let agents = self.agents().await?;
        let data: Vec<Value> = advertised(&agents)
            .into_iter()
            .map(|(id, agent)| json!({"id": id, "object": "model", "created": agent.created, "owned_by": "letta"}))
            .collect();
        Ok(json!({"object": "list", "data": data}))
    }

    /// The id of the agent `model` names: a model id `GET /v1/models` lists, or any agent's id;
    /// 404 `model_not_found` otherwise.
    pub(super) async fn agent_of(&self, model: &str) -> Result<String, ApiError> {
        let agents = self.agents().await?;
        if let Some((_, agent)) = advertised(&agents).into_iter().find(|(id, _)| id == model) {
            return Ok(agent.id.clone());
        }
        let stored = self.sessions.engine().store.agent(model.to_owned()).await;
        if stored.map_err(ApiError::internal)?.is_some() {
            return Ok(model.to_owned());
        }
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("The model '{model}' does not exist. Use GET /v1/models to list available agents."),
        )
        .param("model")
        .code("model_not_found"))
    }
}

/// The model id of each agent: its name when no other agent has that name and no agent has it
/// as its id, else its id. So every listed id names one agent, and no name hides an agent id.
fn advertised(agents: &[Listed]) -> Vec<(String, &Listed)> {
    let mut named: HashMap<&str, usize> = HashMap::new();
    for name in agents.iter().filter_map(|agent| agent.name.as_deref()) {
        *named.entry(name).or_default() += 1;
    }
    let ids: HashSet<&str> = agents.iter().map(|agent| agent.id.as_str()).collect();
    agents
        .iter()
        .map(|agent| match agent.name.as_deref() {
            Some(name) if named[name] == 1 && !ids.contains(name) => (name.to_owned(), agent),
            _ => (agent.id.clone(), agent),
        })
        .collect()
}

/// Unix seconds of an RFC 3339 time; 0 when it is not one.
fn unix_seconds(time: &str) -> u64 {
    humantime::parse_rfc3339(time)
        .ok()
        .and_then(|at| at.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |since| since.as_secs())
}

#[cfg(test)]
mod tests {
    use super::{Listed, advertised, unix_seconds};

    #[test]
    fn names_are_advertised_only_when_they_name_one_agent_and_no_id() {
        let agent = |id: &str, name: Option<&str>| Listed {
            id: id.into(),
            name: name.map(str::to_owned),
            created: 0,
        };
        let agents = [
            agent("agent-1", Some("Helper")),
            agent("agent-2", Some("Twin")),
            agent("agent-3", Some("Twin")),
            agent("agent-4", Some("agent-1")),
            agent("agent-5", None),
        ];
        let ids: Vec<String> = advertised(&agents).into_iter().map(|(id, _)| id).collect();
        assert_eq!(ids, ["Helper", "agent-2", "agent-3", "agent-4", "agent-5"]);
        assert_eq!(unix_seconds("2026-11-25T03:00:46.534Z"), 1_795_575_646);
        assert_eq!(unix_seconds("yesterday"), 0);
    }
}
