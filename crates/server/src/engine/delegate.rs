//! Launching a subagent ([`Engine::launch_subagent`]): the request checked against the types and
//! bounds (real Letta's error texts), its conversation found or made, its run registered with
//! [`crate::engine::subagents`], its input queued.

use std::sync::Arc;

use letta_app_server_protocol::{JsonObject, RuntimeScope};
use serde_json::json;

use crate::engine::catalog::{new_conversation, stored_agent};
use crate::engine::conversation::Agent;
use crate::engine::subagents::kinds::{self, GENERAL_PURPOSE, Kind};
use crate::engine::subagents::{Launch, MAX_DEPTH, Run};
use crate::engine::toolbox::TurnOptions;
use crate::engine::{Engine, ScopeError};

impl Engine {
    /// Launches a subagent of `launch.parent`: registered (`pending`, in the parent's snapshot),
    /// its input queued on its conversation, whose turn it starts. The error is what the model or
    /// the `launch_subagent` caller is told; an agent or conversation made for a launch that
    /// failed is deleted again.
    pub(crate) async fn launch_subagent(self: &Arc<Self>, launch: Launch) -> Result<Arc<Run>, String> {
        let subagents = &self.subagents;
        let deploying = launch.agent_id.is_some() || launch.conversation_id.is_some();
        let name = launch.subagent_type.as_deref().map_or(GENERAL_PURPOSE, str::trim);
        let kind = kinds::find(name).ok_or_else(|| kinds::unknown(name))?;
        if deploying && kind.name != GENERAL_PURPOSE {
            return Err(format!(
                "When deploying an existing agent, subagent_type must be \"{GENERAL_PURPOSE}\". Got: \"{name}\""
            ));
        }
        let depth = subagents.depth_of(&launch.parent) + 1;
        if depth > MAX_DEPTH {
            return Err(format!(
                "A subagent at depth {MAX_DEPTH} cannot launch subagents (at most {MAX_DEPTH} levels)"
            ));
        }
        let reservation = subagents.reserve(&launch.parent)?;
        let (child, model, made) = self.child_scope(&launch, kind).await?;
        let launched = async {
            let conversation = self.conversation(&child).await.map_err(|e| e.to_string())?;
            if made != Made::Nothing {
                // A conversation made for it works where its parent works.
                let cwd = self.scope_cwd(&launch.parent).await.map_err(|e| e.to_string())?;
                conversation.set_cwd(self, cwd).await;
            }
            let run = subagents.register(reservation, &launch, kind.name, child.clone(), depth, model)?;
            let mut tools: Vec<String> = kind.tools.iter().map(|name| (*name).to_owned()).collect();
            if depth >= MAX_DEPTH {
                tools.retain(|name| name != "Agent");
            }
            let options = TurnOptions::subagent(tools, launch.max_turns);
            let started = conversation
                .start_subagent(self, run.input_id.clone(), input(&launch, &child), options)
                .await;
            if let Err(error) = started {
                subagents.unregister(&run);
                return Err(error);
            }
            Ok(run)
        }
        .await;
        let run = match launched {
            Ok(run) => run,
            Err(error) => {
                // Nothing of it stays behind (a failure to delete leaves a hidden agent).
                let _ = match made {
                    Made::Agent => self.forget_agent(child.agent_id.as_deref().unwrap_or_default()).await,
                    Made::Conversation => self.forget_conversation(&child).await,
                    Made::Nothing => Ok(false),
                };
                return Err(error);
            }
        };
        if run.background {
            subagents.processes_changed(&launch.parent).await;
        }
        Ok(run)
    }

    /// The subagent's conversation and its model: the deployed conversation, a new one of the
    /// deployed agent, or a new one of a new hidden agent of type `kind` (tagged `role:subagent`,
    /// with the parent's model unless `model` names another).
    async fn child_scope(
        self: &Arc<Self>,
        launch: &Launch,
        kind: &Kind,
    ) -> Result<(RuntimeScope, Option<String>, Made), String> {
        let engine = self;
        let summary = json!({"summary": launch.description})
            .as_object()
            .cloned()
            .unwrap_or_default();
        if let Some(conversation_id) = &launch.conversation_id {
            let scope = if conversation_id == "default" {
                let agent_id =
                    (launch.agent_id.clone()).ok_or("conversation_id \"default\" needs the agent_id it belongs to")?;
                stored_agent(engine, &agent_id).await?;
                RuntimeScope::new(agent_id, "default")
            } else {
                let stored = (engine.store.conversation(conversation_id.clone()).await)
                    .map_err(|e| e.to_string())?
                    .ok_or_else(|| ScopeError::UnknownConversation(conversation_id.clone()).to_string())?;
                let owner = stored.get("agent_id").and_then(|v| v.as_str()).map(str::to_owned);
                if let Some(agent_id) = &launch.agent_id
                    && owner.as_ref() != Some(agent_id)
                {
                    return Err(ScopeError::WrongAgent {
                        conversation: conversation_id.clone(),
                        owner: owner.unwrap_or_else(|| "null".into()),
                        agent: agent_id.clone(),
                    }
                    .to_string());
                }
                RuntimeScope {
                    agent_id: owner,
                    ..RuntimeScope::agent_free(conversation_id.clone())
                }
            };
            if scope == launch.parent {
                return Err("A subagent cannot run in its parent conversation".into());
            }
            return Ok((scope, None, Made::Nothing));
        }
        let agent_id = match &launch.agent_id {
            Some(agent_id) => {
                stored_agent(engine, agent_id).await?;
                agent_id.clone()
            }
            None => {
                let model = match &launch.model {
                    Some(model) => Some(model.clone()),
                    None => Agent::resolve(engine, &launch.parent).await?.model,
                };
                let mut tags = vec!["role:subagent".to_owned(), format!("type:{}", kind.name)];
                tags.extend(launch.parent.agent_id.iter().map(|parent| format!("parent:{parent}")));
                let body: JsonObject = json!({
                    "name": format!("{} subagent", kind.name), "description": launch.description,
                    "system": kind.system, "model": model, "tags": tags,
                })
                .as_object()
                .cloned()
                .unwrap_or_default();
                let record = engine.create_agent(&body).await?;
                let id = record.get("id").and_then(|v| v.as_str()).unwrap_or_default().to_owned();
                let conversation = match new_conversation(engine, "conv", Some(&id), summary).await {
                    Ok(conversation) => conversation,
                    Err(error) => {
                        let _ = self.forget_agent(&id).await;
                        return Err(error);
                    }
                };
                let conversation_id = conversation.get("id").and_then(|v| v.as_str()).unwrap_or_default();
                return Ok((RuntimeScope::new(id.clone(), conversation_id), model, Made::Agent));
            }
        };
        let conversation = new_conversation(engine, "conv", Some(&agent_id), summary).await?;
        let conversation_id = conversation.get("id").and_then(|v| v.as_str()).unwrap_or_default();
        Ok((RuntimeScope::new(agent_id, conversation_id), None, Made::Conversation))
    }
}

/// What a launch made for its subagent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Made {
    /// Nothing: it deploys an existing conversation.
    Nothing,
    /// A conversation of a deployed agent.
    Conversation,
    /// A hidden agent and its conversation.
    Agent,
}

/// The subagent's input: the prompt, after a reminder of whose task it is when an existing agent
/// is deployed by another.
fn input(launch: &Launch, child: &RuntimeScope) -> String {
    match (&launch.parent.agent_id, &child.agent_id) {
        (Some(parent), Some(agent)) if launch.agent_id.is_some() || launch.conversation_id.is_some() => {
            if parent == agent {
                return launch.prompt.clone();
            }
            format!(
                "<system-reminder>This task comes from agent {parent}, which gets your final message as \
                 your report.</system-reminder>\n\n{}",
                launch.prompt
            )
        }
        _ => launch.prompt.clone(),
    }
}
