//! Agents' memory repositories (docs/protocol.md §4.2): where each agent's lives, whether it has
//! one, and who its commits are by. The repositories themselves are [`crate::memory`]'s.

use std::path::PathBuf;

use crate::clock::now_iso;
use crate::engine::catalog::stored_agent;
use crate::engine::context::Context;
use crate::memory::{Author, Memory, prompt, repo};

/// Creates the memory repository of `agent_id` if it does not exist yet (idempotent: an
/// existing one keeps its history); returns its directory, or why it cannot be made.
pub async fn enable(context: &Context, agent_id: &str) -> Result<PathBuf, String> {
    if agent_id.is_empty() || matches!(agent_id, "." | "..") || agent_id.contains(['/', '\\', '\0']) {
        return Err(format!("Agent id {agent_id:?} cannot name a memory directory"));
    }
    stored_agent(context, agent_id).await?;
    let settings = &context.settings;
    let _one_at_a_time = settings.memfs_creation.lock().await;
    let directory = settings.memory_directory(agent_id);
    let (path, agent) = (directory.clone(), agent_id.to_owned());
    tokio::task::spawn_blocking(move || repo::initialize(&path, &agent))
        .await
        .map_err(|error| error.to_string())??;
    context
        .store
        .save_memory_repository(agent_id.to_owned(), now_iso())
        .await
        .map_err(|error| error.to_string())?;
    settings.memory_repository_created(agent_id);
    Ok(directory)
}

/// The memory of a stored agent, or none when it has no memory repository; an unknown agent is
/// an error.
pub async fn of(context: &Context, agent_id: &str) -> Result<Option<Memory>, String> {
    let agent = stored_agent(context, agent_id).await?;
    let name = agent.get("name").and_then(|name| name.as_str()).unwrap_or_default();
    Ok(context.settings.memory_repository(agent_id).map(|root| Memory {
        root,
        author: Author::agent(agent_id, name),
    }))
}

/// `system` as a turn of `agent_id` sends it: with the agent's memory as committed at its
/// `HEAD` (docs/protocol.md §4.2) in place of `{CORE_MEMORY}` or after it, then the
/// `<available_skills>` block (§4.5). Either part is left out when empty (no repository, no
/// markdown file, no skill) or unreadable (the turn runs without).
pub async fn system_prompt(context: &Context, agent_id: Option<&str>, system: String) -> String {
    let root = agent_id.and_then(|agent_id| context.settings.memory_repository(agent_id));
    let skills = context.skills.clone();
    let fallback = system.clone();
    let compiled = tokio::task::spawn_blocking(move || {
        let memory = root.as_deref().and_then(|root| prompt::core_memory(root).ok());
        let with_memory = match memory.filter(|memory| !memory.is_empty()) {
            Some(memory) => prompt::inject(&system, &memory),
            None => system,
        };
        match skills.available_block(root.as_deref()) {
            Some(block) => format!("{}\n\n{block}", with_memory.trim_end()),
            None => with_memory,
        }
    })
    .await;
    compiled.unwrap_or(fallback)
}
