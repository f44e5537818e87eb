//! The working directories group: `set_boot_working_directory`, `get_cwd_map` and their
//! responses (docs/protocol.md §4.8). The boot working directory is the one a conversation works
//! in when it has no directory of its own (`change_device_state`'s `cwd`).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::serde_util::nullable;

/// Sets the boot working directory.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct SetBootWorkingDirectory {
    /// Correlates the response.
    pub request_id: String,
    /// The directory.
    pub cwd: String,
}

/// Result of `set_boot_working_directory`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct SetBootWorkingDirectoryResponse {
    /// Echo of the request's id.
    pub request_id: String,
    /// Whether the directory was set.
    pub success: bool,
    /// The boot working directory now (`""` when this server declines the command).
    pub boot_working_directory: String,
    /// The working-directory revision after the change (as `update_device_status.cwd_revision`).
    pub cwd_revision: u64,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Reads every conversation's own working directory and the boot working directory.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct GetCwdMap {
    /// Correlates the response.
    pub request_id: String,
}

/// Result of `get_cwd_map`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct GetCwdMapResponse {
    /// Echo of the request's id.
    pub request_id: String,
    /// Whether the map was read.
    pub success: bool,
    /// Each conversation's own working directory, keyed by its scope key
    /// (`conversation:<id>`, or `agent:<id>::conversation:default`; docs/protocol.md §2.4).
    pub cwd_map: BTreeMap<String, String>,
    /// The directory of conversations without an entry; `null` when there is none.
    #[schemars(required, schema_with = "nullable::<String>")]
    pub boot_working_directory: Option<String>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

refused_with_empty_fields! {
    SetBootWorkingDirectory => SetBootWorkingDirectoryResponse,
    GetCwdMap => GetCwdMapResponse,
}
