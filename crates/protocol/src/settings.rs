//! The settings and experiments group: `get_reflection_settings`, `set_reflection_settings`,
//! `get_experiments` and `set_experiment` (docs/protocol.md §4.9).
//!
//! Experiment ids and reflection modes also appear in every `update_device_status`
//! ([`crate::Experiment`], [`crate::ReflectionSettings`]), so they are open: a newer server's
//! snapshot still parses (Letta 0.34.12 added the `memory_palace` experiment). The scope a
//! client chooses for its settings is closed.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::serde_util::nullable;
use crate::{AgentRuntimeScope, Experiment, ReflectionSettings};

open_enum! {
    /// An experiment flag.
    pub enum ExperimentId {
        /// Artifact creation tools and artifact UI surfaces.
        Artifacts = "artifacts",
        /// AI-generated conversation titles.
        ConversationTitles = "conversation_titles",
        /// Prior-conversation context in the first turn of a new conversation.
        DesktopConversationBootstrap = "desktop_conversation_bootstrap",
        /// Browser-based worktree diff previews.
        Diffs = "diffs",
        /// The memory palace (Letta 0.34.12).
        MemoryPalace = "memory_palace",
        /// Blind comparisons between reflection models.
        ReflectionArena = "reflection_arena",
        /// Scheduled tasks fired from the terminal UI.
        TuiCron = "tui_cron",
    }
}

open_enum! {
    /// What decided whether an experiment is on.
    pub enum ExperimentSource {
        /// The user's override.
        Override = "override",
        /// Its environment variable.
        Env = "env",
        /// Its default.
        Default = "default",
    }
}

open_enum! {
    /// When an agent reflects on its memory.
    pub enum ReflectionTriggerMode {
        /// Never.
        Off = "off",
        /// Every `step_count` steps.
        StepCount = "step-count",
        /// After each compaction.
        CompactionEvent = "compaction-event",
    }
}

open_enum! {
    /// How reflection results are merged into memory.
    pub enum ReflectionMergeMode {
        /// Automatically.
        Auto = "auto",
        /// Following `merge_instructions`.
        Explicit = "explicit",
    }
}

/// Where reflection settings are stored. Closed: an unknown scope is an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReflectionSettingsScope {
    /// This project's settings.
    #[default]
    LocalProject,
    /// The user's global settings.
    Global,
    /// Both.
    Both,
}

/// Reads an agent's reflection settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct GetReflectionSettings {
    /// Correlates the response.
    pub request_id: String,
    /// The agent's scope.
    pub runtime: AgentRuntimeScope,
}

/// Changes an agent's reflection settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SetReflectionSettings {
    /// Correlates the response.
    pub request_id: String,
    /// The agent's scope.
    pub runtime: AgentRuntimeScope,
    /// The new settings.
    pub settings: ReflectionSettingsChange,
    /// Where to store them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<ReflectionSettingsScope>,
}

/// The settings `set_reflection_settings` applies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ReflectionSettingsChange {
    /// When to reflect.
    pub trigger: ReflectionTriggerMode,
    /// Steps between reflections.
    pub step_count: u64,
    /// How to merge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge: Option<ReflectionMergeMode>,
    /// Instructions for an explicit merge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge_instructions: Option<String>,
}

object_response! {
    /// Result of `get_reflection_settings`.
    GetReflectionSettingsResponse { reflection_settings: ReflectionSettings, schema "nullable::<ReflectionSettings>" }
}

/// Result of `set_reflection_settings`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct SetReflectionSettingsResponse {
    /// Echo of the request's id.
    pub request_id: String,
    /// Whether the settings were changed.
    pub success: bool,
    /// The settings now in effect; `null` on failure.
    #[schemars(required, schema_with = "nullable::<ReflectionSettings>")]
    pub reflection_settings: Option<ReflectionSettings>,
    /// Where they were stored.
    pub scope: ReflectionSettingsScope,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Lists the experiment flags.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct GetExperiments {
    /// Correlates the response.
    pub request_id: String,
}

/// Turns an experiment flag on or off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SetExperiment {
    /// Correlates the response.
    pub request_id: String,
    /// The flag.
    pub experiment_id: ExperimentId,
    /// On or off.
    pub enabled: bool,
}

// The results of `get_experiments` and `set_experiment`, which have the same fields.
macro_rules! experiments_response {
    ($( $(#[$meta:meta])* $name:ident )+) => {$(
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
        pub struct $name {
            /// Echo of the request's id.
            pub request_id: String,
            /// Whether the command succeeded.
            pub success: bool,
            /// Every experiment flag (empty on failure).
            pub experiments: Vec<Experiment>,
            /// Why it failed.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub error: Option<String>,
        }
    )+};
}

experiments_response! {
    /// Result of `get_experiments`.
    GetExperimentsResponse
    /// Result of `set_experiment`: every flag after the change.
    SetExperimentResponse
}

refused_with_empty_fields! {
    GetReflectionSettings => GetReflectionSettingsResponse,
    GetExperiments => GetExperimentsResponse,
    SetExperiment => SetExperimentResponse,
}

impl crate::Refuse for SetReflectionSettings {
    /// `scope` echoes the command's, or is `local_project` when it named none.
    fn refuse(&self, error: String) -> Option<SetReflectionSettingsResponse> {
        Some(SetReflectionSettingsResponse {
            request_id: self.request_id.clone(),
            scope: self.scope.unwrap_or_default(),
            error: Some(error),
            ..Default::default()
        })
    }
}
