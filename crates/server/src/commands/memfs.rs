//! `enable_memfs` (docs/protocol.md §4.2): creates the agent's memory repository. The other
//! memory commands are not implemented yet.

use std::sync::Arc;

use letta_app_server_protocol::{EnableMemfs, EnableMemfsResponse, MemoryUpdated};

use super::Caller;
use crate::engine::memfs;

/// `enable_memfs`: creates the agent's memory repository if it has none, answers with its
/// directory, then, as real Letta, sends `memory_updated` for every path (`*`); the subscribers of
/// the agent's loaded conversations get a device status showing the directory.
pub(super) async fn enable_memfs(caller: &Arc<dyn Caller>, enable: EnableMemfs) {
    let engine = caller.engine();
    let created = memfs::enable(engine, &enable.agent_id).await;
    let success = created.is_ok();
    let (memory_directory, error) = match created {
        Ok(directory) => (Some(directory.display().to_string()), None),
        Err(error) => (None, Some(error)),
    };
    caller.send(EnableMemfsResponse {
        request_id: enable.request_id,
        success,
        memory_directory,
        error,
    });
    if !success {
        return;
    }
    caller.send(MemoryUpdated {
        affected_paths: vec!["*".into()],
        timestamp: crate::clock::now_millis(),
    });
    for conversation in engine.loaded() {
        if conversation.scope.agent_id.as_deref() == Some(enable.agent_id.as_str()) {
            conversation.settings_changed(engine).await;
        }
    }
}
