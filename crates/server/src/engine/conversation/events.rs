//! The status snapshots and lifecycle deltas a conversation emits (docs/protocol.md §3.6–§3.8).

use letta_app_server_protocol::{
    Delta, DeltaMeta, DeviceStatus, LoopError, LoopStatus, PendingControlRequest, QueueRemoval, RuntimeEvent, Status,
    StatusLevel, StopReason, StreamDelta, ToolsetPreference, UpdateDeviceStatus, UpdateLoopStatus, UpdateQueue,
};

use super::Conversation;
use super::state::State;
use crate::clock::{new_id, now_iso};
use crate::engine::toolbox::toolset_for;

impl Conversation {
    pub(super) fn loop_event(state: &State) -> RuntimeEvent {
        UpdateLoopStatus {
            loop_status: state.loop_state.clone(),
        }
        .into()
    }

    pub(super) fn device_event(&self, state: &State) -> RuntimeEvent {
        UpdateDeviceStatus {
            device_status: self.device_status(state),
        }
        .into()
    }

    /// The scope's device status; the server-wide parts (experiments, the agent's reflection
    /// settings and memory repository, `cwd_revision`) come from [`State::settings`].
    fn device_status(&self, state: &State) -> DeviceStatus {
        let settings = &state.settings;
        let cwd = state.cwd();
        let agent_id = self.scope.agent_id.as_deref();
        DeviceStatus {
            current_connection_id: Some("app-server".into()),
            connection_name: Some(hostname()),
            is_online: true,
            is_processing: state.turn.is_some() && state.loop_state.status != LoopStatus::WaitingOnInput,
            current_permission_mode: state.mode,
            current_working_directory: Some(cwd.clone()),
            cwd_revision: Some(settings.cwd_revision()),
            git_context: None,
            letta_code_version: Some(env!("CARGO_PKG_VERSION").into()),
            // Before any tools are loaded, a preference other than `auto` names the toolset (as on
            // real Letta).
            current_toolset: state.toolset.clone().or_else(|| {
                (state.toolset_preference != ToolsetPreference::Auto)
                    .then(|| toolset_for(&state.toolset_preference).ok())
                    .flatten()
            }),
            current_toolset_preference: state.toolset_preference.clone(),
            current_loaded_tools: state.loaded_tools.clone().unwrap_or_default(),
            current_available_skills: Vec::new(),
            // As in Letta: background commands, then subagent tasks.
            background_processes: [
                state.shells.processes_of(&self.scope),
                state.subagents.processes_of(&self.scope),
            ]
            .concat(),
            pending_control_requests: state
                .pending
                .iter()
                .map(|p| PendingControlRequest {
                    request_id: p.request_id.clone(),
                    request: p.request.clone(),
                })
                .collect(),
            experiments: settings.experiments(),
            memory_directory: agent_id
                .and_then(|agent| settings.memory_repository(agent))
                .map(|directory| directory.display().to_string()),
            cwd_map: None,
            boot_working_directory: None,
            should_doctor: None,
            reflection_settings: agent_id.map(|agent| settings.reflection(agent, &cwd)),
            supported_commands: super::SUPPORTED_COMMANDS.iter().map(|c| (*c).to_owned()).collect(),
            mod_commands: None,
        }
    }

    pub(super) fn queue_event(state: &State, removed: Vec<QueueRemoval>) -> RuntimeEvent {
        UpdateQueue {
            queue: state.queue.iter().map(|q| q.item.clone()).collect(),
            removed,
        }
        .into()
    }

    /// The shared fields of a lifecycle delta (`status`, `loop_error`, slash commands): a fresh
    /// `lifecycle-<uuid>` id, the time, and the run it belongs to, if any.
    pub(super) fn lifecycle_meta(run_id: Option<String>) -> DeltaMeta {
        DeltaMeta {
            id: Some(new_id("lifecycle")),
            date: Some(now_iso()),
            run_id,
            ..DeltaMeta::default()
        }
    }

    /// A `status` notice delta (`Interrupted`, `Model updated to …`).
    pub(super) fn status_event(message: String, level: StatusLevel, run_id: Option<String>) -> RuntimeEvent {
        StreamDelta {
            delta: Delta::Status(Status {
                meta: Self::lifecycle_meta(run_id),
                message,
                level,
            }),
            subagent_id: None,
        }
        .into()
    }

    /// Lists `client_ids` in a `loop_error` event's `client_message_ids` (none: unchanged).
    pub(super) fn name_inputs(event: &mut RuntimeEvent, client_ids: Vec<String>) {
        if let RuntimeEvent::StreamDelta(StreamDelta {
            delta: Delta::LoopError(loop_error),
            ..
        }) = event
            && !client_ids.is_empty()
        {
            loop_error.client_message_ids = Some(client_ids);
        }
    }

    /// A `loop_error` delta (non-terminal unless `terminal`).
    pub(super) fn loop_error(
        message: String,
        stop_reason: StopReason,
        terminal: bool,
        run_id: Option<String>,
    ) -> RuntimeEvent {
        StreamDelta {
            delta: Delta::LoopError(LoopError {
                meta: Self::lifecycle_meta(run_id),
                message,
                stop_reason,
                is_terminal: terminal,
                client_message_ids: None,
                api_error: None,
            }),
            subagent_id: None,
        }
        .into()
    }
}

/// The host name, read once.
fn hostname() -> String {
    static HOSTNAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HOSTNAME
        .get_or_init(|| {
            std::fs::read_to_string("/etc/hostname")
                .map(|h| h.trim().to_owned())
                .unwrap_or_else(|_| "localhost".into())
        })
        .clone()
}
