//! The skills group: `skill_enable`, `skill_disable` and the `skills_updated` notification
//! (docs/protocol.md §4.5).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Enables a skill from a directory on the server's machine.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct SkillEnable {
    /// Correlates the response.
    pub request_id: String,
    /// Absolute path of the skill's directory.
    pub skill_path: String,
}

/// Disables a skill.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct SkillDisable {
    /// Correlates the response.
    pub request_id: String,
    /// The skill's name (its link name in `~/.letta/skills/`).
    pub name: String,
}

// The results of `skill_enable` and `skill_disable`, which have the same fields.
macro_rules! skill_response {
    ($( $(#[$meta:meta])* $name:ident )+) => {$(
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
        pub struct $name {
            /// Echo of the request's id.
            pub request_id: String,
            /// Whether the command succeeded.
            pub success: bool,
            /// The skill's name (as Letta's declarations name the field).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub skill_name: Option<String>,
            /// The skill's name (as Letta's implementation sends it).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub name: Option<String>,
            /// `skill_enable`: the skill's directory.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub skill_path: Option<String>,
            /// `skill_enable`: the link to it in the server's skills directory.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub link_path: Option<String>,
            /// Why it failed.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub error: Option<String>,
        }
    )+};
}

skill_response! {
    /// Result of `skill_enable`.
    SkillEnableResponse
    /// Result of `skill_disable`.
    SkillDisableResponse
}

/// Direct notification (no envelope): the available skills changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SkillsUpdated {
    /// When, in milliseconds since the epoch.
    pub timestamp: u64,
}

refused_with_empty_fields! {
    SkillEnable => SkillEnableResponse,
    SkillDisable => SkillDisableResponse,
}
