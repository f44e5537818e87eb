//! The settings group (docs/protocol.md §4.9): `get_reflection_settings`,
//! `set_reflection_settings`, `get_experiments` and `set_experiment`.

use std::sync::Arc;

use letta_app_server_protocol::{
    GetExperiments, GetExperimentsResponse, GetReflectionSettings, GetReflectionSettingsResponse, ReflectionSettings,
    ReflectionSettingsScope, RuntimeScope, SetExperiment, SetExperimentResponse, SetReflectionSettings,
    SetReflectionSettingsResponse,
};

use super::Caller;
use crate::engine::Engine;

/// `get_reflection_settings`: the settings in effect for the agent, in the conversation's
/// working directory (its project).
pub(super) async fn get_reflection_settings(caller: &Arc<dyn Caller>, get: GetReflectionSettings) {
    let engine = caller.engine();
    let agent_id = get.runtime.agent_id.clone();
    let answer = match engine.scope_cwd(&RuntimeScope::from(get.runtime)).await {
        Ok(cwd) => GetReflectionSettingsResponse {
            request_id: get.request_id,
            success: true,
            reflection_settings: Some(engine.settings.reflection(&agent_id, &cwd)),
            error: None,
        },
        Err(error) => GetReflectionSettingsResponse {
            request_id: get.request_id,
            success: false,
            reflection_settings: None,
            error: Some(error.to_string()),
        },
    };
    caller.send(answer);
}

/// `set_reflection_settings`: stores the settings for the agent where `scope` says (both the
/// project and the global settings when it names none, as real Letta), answers with the settings
/// now in effect, then sends the scope's subscribers a device status.
pub(super) async fn set_reflection_settings(caller: &Arc<dyn Caller>, set: SetReflectionSettings) {
    let engine = caller.engine();
    let scope = set.scope.unwrap_or(ReflectionSettingsScope::Both);
    let runtime = RuntimeScope::from(set.runtime.clone());
    let applied = apply_reflection(engine, &runtime, &set, scope).await;
    let (reflection_settings, error) = match applied {
        Ok(settings) => (Some(settings), None),
        Err(error) => (None, Some(error)),
    };
    let success = error.is_none();
    caller.send(SetReflectionSettingsResponse {
        request_id: set.request_id,
        success,
        reflection_settings,
        scope,
        error,
    });
    if let Some(conversation) = engine.loaded_conversation(&runtime).filter(|_| success) {
        conversation.settings_changed(engine).await;
    }
}

async fn apply_reflection(
    engine: &Engine,
    runtime: &RuntimeScope,
    set: &SetReflectionSettings,
    scope: ReflectionSettingsScope,
) -> Result<ReflectionSettings, String> {
    let agent_id = &set.runtime.agent_id;
    // Settings are kept only for agents that exist (real Letta keeps them for any id).
    crate::engine::catalog::stored_agent(engine, agent_id).await?;
    let cwd = engine.scope_cwd(runtime).await.map_err(|error| error.to_string())?;
    engine
        .settings
        .set_reflection(&engine.store, agent_id, &cwd, &set.settings, scope)
        .await
}

/// `get_experiments`: every experiment flag.
pub(super) fn get_experiments(caller: &dyn Caller, get: GetExperiments) {
    caller.send_frame(
        GetExperimentsResponse {
            request_id: get.request_id,
            success: true,
            experiments: caller.engine().settings.experiments(),
            error: None,
        }
        .into(),
    );
}

/// `set_experiment`: turns a flag on or off (stored), answers with every flag (also on
/// failure, as real Letta), then sends every loaded conversation's subscribers a device status.
pub(super) async fn set_experiment(caller: &Arc<dyn Caller>, set: SetExperiment) {
    let engine = caller.engine();
    let result = engine
        .settings
        .set_experiment(&engine.store, &set.experiment_id, set.enabled)
        .await;
    caller.send(SetExperimentResponse {
        request_id: set.request_id,
        success: result.is_ok(),
        experiments: engine.settings.experiments(),
        error: result.as_ref().err().cloned(),
    });
    if result.is_ok() {
        for conversation in engine.loaded() {
            conversation.settings_changed(engine).await;
        }
    }
}
