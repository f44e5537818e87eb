//! The working directories group (docs/protocol.md §4.8): `get_cwd_map` and
//! `set_boot_working_directory`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use letta_app_server_protocol::{
    GetCwdMap, GetCwdMapResponse, RuntimeScope, SetBootWorkingDirectory, SetBootWorkingDirectoryResponse,
};

use super::Caller;

/// `get_cwd_map`: every scope's own working directory (the ones that chose none work in the boot
/// working directory), and the boot working directory. A directory that no longer exists is left
/// out, as real Letta prunes it.
pub(super) async fn get_cwd_map(caller: &Arc<dyn Caller>, get: GetCwdMap) {
    let engine = caller.engine();
    let boot = engine.settings.boot_cwd();
    let existing = match engine.store.scope_cwds().await {
        Ok(cwds) => tokio::task::spawn_blocking(move || {
            cwds.into_iter()
                .filter(|entry| Path::new(&entry.cwd).is_dir())
                .collect::<Vec<_>>()
        })
        .await
        .map_err(|error| error.to_string()),
        Err(error) => Err(error.to_string()),
    };
    let answer = match existing {
        Ok(cwds) => GetCwdMapResponse {
            request_id: get.request_id,
            success: true,
            cwd_map: cwds
                .into_iter()
                .map(|entry| (scope_key(&entry.scope), entry.cwd))
                .collect(),
            boot_working_directory: Some(boot),
            error: None,
        },
        Err(error) => GetCwdMapResponse {
            request_id: get.request_id,
            success: false,
            cwd_map: BTreeMap::new(),
            boot_working_directory: Some(boot),
            error: Some(error),
        },
    };
    caller.send(answer);
}

/// A scope's key in the cwd map, as real Letta writes it: `conversation:<id>`, or
/// `agent:<id>::conversation:default` for an agent's default conversation.
fn scope_key(scope: &RuntimeScope) -> String {
    match (&scope.agent_id, scope.conversation_id.as_str()) {
        (Some(agent), "default") => format!("agent:{agent}::conversation:default"),
        (None, "default") => "agent:__unknown__::conversation:default".into(),
        (_, conversation) => format!("conversation:{conversation}"),
    }
}

/// `set_boot_working_directory`: `cwd` (relative to the current boot working directory) must be
/// an existing directory; it becomes the boot working directory, stored, and the loaded scopes
/// without a directory of their own move with it (a device status each).
pub(super) async fn set_boot_working_directory(caller: &Arc<dyn Caller>, set: SetBootWorkingDirectory) {
    let engine = caller.engine();
    let settings = &engine.settings;
    let result = match resolve_directory(&set.cwd, &settings.boot_cwd()).await {
        Ok(directory) => settings
            .set_boot_cwd(&engine.store, directory.display().to_string())
            .await
            .map_err(|error| error.to_string()),
        Err(error) => Err(error),
    };
    caller.send(SetBootWorkingDirectoryResponse {
        request_id: set.request_id,
        success: result.is_ok(),
        boot_working_directory: settings.boot_cwd(),
        cwd_revision: settings.cwd_revision(),
        error: result.as_ref().err().cloned(),
    });
    if result == Ok(true) {
        for conversation in engine.loaded() {
            conversation.boot_cwd_changed(engine).await;
        }
    }
}

/// `requested` resolved against `base` and made canonical, if it is a directory; else real
/// Letta's error text (Node's, for a path that cannot be resolved).
async fn resolve_directory(requested: &str, base: &str) -> Result<PathBuf, String> {
    let requested = requested.trim();
    if requested.is_empty() {
        return Err("Working directory cannot be empty".into());
    }
    let path = Path::new(base).join(requested);
    let resolved = tokio::fs::canonicalize(&path)
        .await
        .map_err(|error| super::files::node_error(&error, "realpath", &path))?;
    match tokio::fs::metadata(&resolved).await {
        Ok(metadata) if metadata.is_dir() => Ok(resolved),
        _ => Err(format!("Not a directory: {}", resolved.display())),
    }
}
