//! The git group: `search_branches`, `checkout_branch` and their responses (docs/protocol.md
//! §4.12). Git runs in `cwd`, or the conversation's working directory when it is absent.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Lists the branches whose names contain a text.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct SearchBranches {
    /// Correlates the response.
    pub request_id: String,
    /// Substring of the branch names; `""` lists all branches.
    pub query: String,
    /// How many branches at most (Letta Code: 20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_results: Option<u64>,
    /// The repository's directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
}

/// Result of `search_branches`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct SearchBranchesResponse {
    /// Echo of the request's id.
    pub request_id: String,
    /// Whether the branches were listed.
    pub success: bool,
    /// The branches found (empty on failure).
    pub branches: Vec<GitBranchInfo>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A branch `search_branches` found.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct GitBranchInfo {
    /// Its name.
    pub name: String,
    /// Whether it is checked out.
    pub is_current: bool,
    /// Whether it is a remote-tracking branch.
    pub is_remote: bool,
}

/// Checks out a branch, creating it when asked.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct CheckoutBranch {
    /// Correlates the response.
    pub request_id: String,
    /// The branch.
    pub branch: String,
    /// Create the branch if it does not exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create: Option<bool>,
    /// The repository's directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
}

/// Result of `checkout_branch`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct CheckoutBranchResponse {
    /// Echo of the request's id.
    pub request_id: String,
    /// Whether the branch was checked out.
    pub success: bool,
    /// The branch now checked out (on failure, the one asked for).
    pub branch: String,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

refused_with_empty_fields! {
    SearchBranches => SearchBranchesResponse,
}

refused_with_empty_fields! {
    CheckoutBranch => CheckoutBranchResponse { branch },
}
