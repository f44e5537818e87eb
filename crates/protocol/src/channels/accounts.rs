//! Channel accounts and their settings: `channel_accounts_list`, `channel_account_*`,
//! `channel_get_config`, `channel_set_config`, `channel_start` and `channel_stop`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ChannelAccountSnapshot, ChannelConfigSnapshot, ChannelSummary, DmPolicy};
use crate::serde_util::nullable;
use crate::{AgentRuntimeScope, JsonObject};

/// Declares commands that address one channel by `channel_id` alone.
macro_rules! channel_commands {
    ($( $(#[$meta:meta])* $name:ident; )+) => {$(
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
        pub struct $name {
            /// Correlates the response.
            pub request_id: String,
            /// The channel.
            pub channel_id: String,
        }
    )+};
}

/// Declares commands that address one account of a channel.
macro_rules! account_commands {
    ($( $(#[$meta:meta])* $name:ident; )+) => {$(
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
        pub struct $name {
            /// Correlates the response.
            pub request_id: String,
            /// The channel.
            pub channel_id: String,
            /// The account.
            pub account_id: String,
        }
    )+};
}

/// Declares the responses that carry one account (or `null` on failure).
macro_rules! account_responses {
    ($( $(#[$meta:meta])* $name:ident; )+) => {$(
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
        pub struct $name {
            /// Echo of the request's id.
            pub request_id: String,
            /// Whether the command succeeded.
            pub success: bool,
            /// Echo of the channel.
            pub channel_id: String,
            /// The account as it is now; `null` on failure.
            #[schemars(required, schema_with = "nullable::<ChannelAccountSnapshot>")]
            pub account: Option<ChannelAccountSnapshot>,
            /// Why it failed.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub error: Option<String>,
        }
    )+};
}

channel_commands! {
    /// Lists a channel's accounts.
    ChannelAccountsList;
}

/// Result of `channel_accounts_list`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct ChannelAccountsListResponse {
    /// Echo of the request's id.
    pub request_id: String,
    /// Whether the accounts were listed.
    pub success: bool,
    /// Echo of the channel.
    pub channel_id: String,
    /// The accounts (empty on failure).
    pub accounts: Vec<ChannelAccountSnapshot>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Creates an account on a channel.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct ChannelAccountCreate {
    /// Correlates the response.
    pub request_id: String,
    /// The channel.
    pub channel_id: String,
    /// The new account.
    pub account: ChannelAccountCreatePayload,
}

/// The new account of `channel_account_create`. Closed: Letta rejects unknown keys.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelAccountCreatePayload {
    /// Its id (the server picks one when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// Its human name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Whether it is enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Its direct-message policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dm_policy: Option<DmPolicy>,
    /// Platform user ids allowed to message it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_users: Option<Vec<String>>,
    /// The channel plugin's own settings (open: each plugin defines them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<JsonObject>,
}

/// Changes an account's settings.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct ChannelAccountUpdate {
    /// Correlates the response.
    pub request_id: String,
    /// The channel.
    pub channel_id: String,
    /// The account.
    pub account_id: String,
    /// The settings to change.
    pub patch: ChannelAccountPatch,
}

/// The changes of `channel_account_update`: a [`ChannelAccountCreatePayload`] without
/// `account_id`. Closed: Letta rejects unknown keys.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelAccountPatch {
    /// Its human name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Whether it is enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Its direct-message policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dm_policy: Option<DmPolicy>,
    /// Platform user ids allowed to message it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_users: Option<Vec<String>>,
    /// The channel plugin's own settings (open: each plugin defines them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<JsonObject>,
}

/// Binds an account to an agent conversation: its chats go there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ChannelAccountBind {
    /// Correlates the response.
    pub request_id: String,
    /// The channel.
    pub channel_id: String,
    /// The account.
    pub account_id: String,
    /// The agent conversation.
    pub runtime: AgentRuntimeScope,
}

account_commands! {
    /// Undoes `channel_account_bind`.
    ChannelAccountUnbind;
    /// Deletes an account.
    ChannelAccountDelete;
    /// Starts an account's bot.
    ChannelAccountStart;
    /// Stops an account's bot.
    ChannelAccountStop;
}

account_responses! {
    /// Result of `channel_account_create`.
    ChannelAccountCreateResponse;
    /// Result of `channel_account_update`.
    ChannelAccountUpdateResponse;
    /// Result of `channel_account_bind`.
    ChannelAccountBindResponse;
    /// Result of `channel_account_unbind`.
    ChannelAccountUnbindResponse;
    /// Result of `channel_account_start`.
    ChannelAccountStartResponse;
    /// Result of `channel_account_stop`.
    ChannelAccountStopResponse;
}

/// Result of `channel_account_delete`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct ChannelAccountDeleteResponse {
    /// Echo of the request's id.
    pub request_id: String,
    /// Whether the command succeeded.
    pub success: bool,
    /// Echo of the channel.
    pub channel_id: String,
    /// Echo of the account.
    pub account_id: String,
    /// Whether an account was deleted.
    pub deleted: bool,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

maybe_account_commands! {
    /// Reads an account's settings.
    ChannelGetConfig;
    /// Starts a channel (or one of its accounts).
    ChannelStart;
    /// Stops a channel (or one of its accounts).
    ChannelStop;
}

/// Changes an account's settings.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct ChannelSetConfig {
    /// Correlates the response.
    pub request_id: String,
    /// The channel.
    pub channel_id: String,
    /// The account (the channel's default account when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// The settings to change.
    pub config: ChannelConfigPatch,
}

/// The changes of `channel_set_config`. Closed: Letta rejects unknown keys.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelConfigPatch {
    /// The direct-message policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dm_policy: Option<DmPolicy>,
    /// Platform user ids allowed to message the account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_users: Option<Vec<String>>,
    /// The channel plugin's own settings (open: each plugin defines them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin_config: Option<JsonObject>,
}

object_response! {
    /// Result of `channel_get_config`.
    ChannelGetConfigResponse { config: ChannelConfigSnapshot, schema "nullable::<ChannelConfigSnapshot>" }
    /// Result of `channel_set_config`: the settings as they are now.
    ChannelSetConfigResponse { config: ChannelConfigSnapshot, schema "nullable::<ChannelConfigSnapshot>" }
    /// Result of `channel_start`.
    ChannelStartResponse { channel: ChannelSummary, schema "nullable::<ChannelSummary>" }
    /// Result of `channel_stop`.
    ChannelStopResponse { channel: ChannelSummary, schema "nullable::<ChannelSummary>" }
}
