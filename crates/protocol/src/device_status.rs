//! `update_device_status`: the per-scope "bottom bar" snapshot (docs/protocol.md §3.8).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::serde_util::nullable;
use crate::{
    CanUseToolRequest, DevicePermissionMode, ExperimentId, ExperimentSource, ReflectionMergeMode,
    ReflectionTriggerMode, ToolsetName, ToolsetPreference,
};

/// Runtime event: a device status snapshot. Frequently repeated with no visible change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct UpdateDeviceStatus {
    /// The snapshot.
    pub device_status: DeviceStatus,
}

/// Per-scope runtime status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DeviceStatus {
    /// Runtime-level connection id (`"app-server"` for every client on real Letta).
    #[schemars(required, schema_with = "nullable::<String>")]
    pub current_connection_id: Option<String>,
    /// Host name.
    #[schemars(required, schema_with = "nullable::<String>")]
    pub connection_name: Option<String>,
    /// Whether the runtime is online.
    pub is_online: bool,
    /// Whether a turn is active in this scope.
    pub is_processing: bool,
    /// The scope's permission mode.
    pub current_permission_mode: DevicePermissionMode,
    /// The scope's working directory.
    #[schemars(required, schema_with = "nullable::<String>")]
    pub current_working_directory: Option<String>,
    /// Bumped on every cwd change and on a rejected one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd_revision: Option<u64>,
    /// Git branch information of the cwd.
    #[schemars(required, schema_with = "nullable::<GitContext>")]
    pub git_context: Option<GitContext>,
    /// Server version.
    #[schemars(required, schema_with = "nullable::<String>")]
    pub letta_code_version: Option<String>,
    /// Toolset in use; `null` until the first turn loads tools.
    #[schemars(required, schema_with = "nullable::<ToolsetName>")]
    pub current_toolset: Option<ToolsetName>,
    /// Toolset preference.
    pub current_toolset_preference: ToolsetPreference,
    /// Model-facing names of the loaded tools.
    pub current_loaded_tools: Vec<String>,
    /// Skills the agent can use.
    pub current_available_skills: Vec<SkillSummary>,
    /// Background shells, tasks and monitors.
    pub background_processes: Vec<BackgroundProcess>,
    /// The scope's live approvals.
    pub pending_control_requests: Vec<PendingControlRequest>,
    /// Experiment flags.
    pub experiments: Vec<Experiment>,
    /// The agent's memory repository.
    #[schemars(required, schema_with = "nullable::<String>")]
    pub memory_directory: Option<String>,
    /// Working directory per scope key (only in unscoped statuses).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd_map: Option<BTreeMap<String, String>>,
    /// The server's boot directory (only in unscoped statuses).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_working_directory: Option<String>,
    /// Whether the UI should suggest `/doctor`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub should_doctor: Option<bool>,
    /// Reflection settings of the agent.
    #[schemars(required, schema_with = "nullable::<ReflectionSettings>")]
    pub reflection_settings: Option<ReflectionSettings>,
    /// Slash commands `execute_command` accepts.
    pub supported_commands: Vec<String>,
    /// Commands contributed by mods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mod_commands: Option<Vec<ModCommand>>,
}

/// Git information of a working directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct GitContext {
    /// Current branch.
    #[schemars(required, schema_with = "nullable::<String>")]
    pub branch: Option<String>,
    /// Recently used branches.
    pub recent_branches: Vec<String>,
}

/// A skill the agent can load.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SkillSummary {
    /// Skill id.
    pub id: String,
    /// Skill name.
    pub name: String,
    /// What it does.
    pub description: String,
    /// Path of its `SKILL.md`.
    pub path: String,
    /// Where it was found (`bundled`, `global`, `agent`, `project`).
    pub source: String,
}

/// A live approval of the scope, as listed in the device status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PendingControlRequest {
    /// The `control_request`'s id.
    pub request_id: String,
    /// Its question.
    pub request: CanUseToolRequest,
}

tagged_union! {
    /// A background process of the scope, discriminated by `kind` (docs/protocol.md §4.16).
    pub enum BackgroundProcess: open tag kind = "kind" {
        /// A background shell command.
        Bash(BashProcess) = "bash",
        /// A subagent task.
        AgentTask(AgentTaskProcess) = "agent_task",
        /// A monitor watching a command, a websocket or a pull request.
        Monitor(MonitorProcess) = "monitor",
        /// Letta 0.34: a workflow of several agents.
        Workflow(WorkflowProcess) = "workflow",
    }
}

/// A background shell command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BashProcess {
    /// Process id.
    pub process_id: String,
    /// The command line.
    pub command: String,
    /// Start time, ms since the epoch; `null` when unknown.
    #[schemars(required, schema_with = "nullable::<u64>")]
    pub started_at_ms: Option<u64>,
    /// Current status.
    pub status: String,
    /// Exit code once finished.
    #[schemars(required, schema_with = "nullable::<i64>")]
    pub exit_code: Option<i64>,
}

/// A subagent task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AgentTaskProcess {
    /// Process id.
    pub process_id: String,
    /// Task type.
    pub task_type: String,
    /// What it does.
    pub description: String,
    /// Start time, ms since the epoch.
    pub started_at_ms: u64,
    /// Current status.
    pub status: String,
    /// The subagent running it; `null` before it has one.
    #[schemars(required, schema_with = "nullable::<String>")]
    pub subagent_id: Option<String>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A monitor watching a command, a websocket or a pull request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct MonitorProcess {
    /// Process id (for `monitor_stop`).
    pub process_id: String,
    /// What it watches.
    pub description: String,
    /// What kind of thing it watches.
    pub source: MonitorSource,
    /// Start time, ms since the epoch.
    pub started_at_ms: u64,
    /// Always `running`.
    pub status: String,
    /// Whether it survives the turn.
    pub persistent: bool,
}

open_enum! {
    /// What a monitor watches.
    pub enum MonitorSource {
        /// A command's output.
        Command = "command",
        /// A websocket.
        Websocket = "websocket",
        /// Letta 0.34: a GitHub pull request.
        GithubPullRequest = "github_pull_request",
    }
}

/// Letta 0.34: a workflow of several agents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct WorkflowProcess {
    /// Process id.
    pub process_id: String,
    /// What it does.
    pub description: String,
    /// Start time, ms since the epoch.
    pub started_at_ms: u64,
    /// Always `running`.
    pub status: String,
    /// How far it got.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<WorkflowProgress>,
}

/// Worker counts of a workflow or of one of its phases.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct WorkflowCounts {
    /// Workers scheduled so far (not a planned total).
    pub agents_total: u64,
    /// Workers done.
    pub agents_done: u64,
    /// Workers failed.
    pub agents_failed: u64,
    /// Workers running.
    pub agents_running: u64,
    /// Tokens used.
    pub total_tokens: u64,
}

/// The progress of a workflow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct WorkflowProgress {
    /// The whole workflow's counts.
    #[serde(flatten)]
    pub counts: WorkflowCounts,
    /// Its phases, which may run at the same time.
    pub phases: Vec<WorkflowPhase>,
}

/// One phase of a workflow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct WorkflowPhase {
    /// The phase's counts.
    #[serde(flatten)]
    pub counts: WorkflowCounts,
    /// Its title.
    pub title: String,
}

/// An experiment flag (`ExperimentSnapshot`; also the answer of `get_experiments`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Experiment {
    /// Flag id.
    pub id: ExperimentId,
    /// Short label.
    pub label: String,
    /// What it enables.
    pub description: String,
    /// Environment variable that sets it.
    #[serde(default, rename = "envVar", skip_serializing_if = "Option::is_none")]
    pub env_var: Option<String>,
    /// Whether it is on.
    pub enabled: bool,
    /// What decided `enabled`.
    pub source: ExperimentSource,
    /// The user's override, if any.
    #[serde(rename = "override")]
    #[schemars(required, schema_with = "nullable::<bool>")]
    pub override_value: Option<bool>,
}

/// Reflection settings of an agent (`ReflectionSettingsSnapshot`; also the answer of
/// `get_reflection_settings`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ReflectionSettings {
    /// The agent.
    pub agent_id: String,
    /// When to reflect.
    pub trigger: ReflectionTriggerMode,
    /// Steps between reflections.
    pub step_count: u64,
    /// How to merge.
    pub merge: ReflectionMergeMode,
    /// Extra merge instructions.
    pub merge_instructions: String,
}

/// A command contributed by a mod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ModCommand {
    /// Command id.
    pub id: String,
    /// What it does.
    pub description: String,
    /// Argument hint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<String>,
}
