//! The secrets group: `secret_list` and `secret_apply` (docs/protocol.md §4.13).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Lists an agent's secrets, with their values in plain text.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct SecretList {
    /// Correlates the response.
    pub request_id: String,
    /// The agent.
    pub agent_id: String,
}

/// Result of `secret_list`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct SecretListResponse {
    /// Echo of the request's id.
    pub request_id: String,
    /// Whether the secrets were listed.
    pub success: bool,
    /// The secrets, sorted by key (empty on failure).
    pub secrets: Vec<Secret>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Secret {
    /// Its name.
    pub key: String,
    /// Its value, in plain text.
    pub value: String,
}

/// Changes an agent's secrets in one step: `set` adds or replaces, `unset` removes (a key in
/// both is removed; keys are upper-cased).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct SecretApply {
    /// Correlates the response.
    pub request_id: String,
    /// The agent.
    pub agent_id: String,
    /// Keys to add or replace, with their values in plain text.
    pub set: BTreeMap<String, String>,
    /// Keys to remove.
    pub unset: Vec<String>,
}

/// Result of `secret_apply`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct SecretApplyResponse {
    /// Echo of the request's id.
    pub request_id: String,
    /// Whether the secrets were changed.
    pub success: bool,
    /// The secret names after the change, sorted (empty on failure).
    pub names: Vec<String>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

refused_with_empty_fields! {
    SecretList => SecretListResponse,
    SecretApply => SecretApplyResponse,
}
