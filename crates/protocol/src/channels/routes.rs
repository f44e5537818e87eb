//! Chats routed to agent conversations: pairings (`channel_pairings_list`,
//! `channel_pairing_bind`), routes (`channel_routes_list`, `channel_route_remove`,
//! `channel_route_update`) and discovered targets (`channel_targets_list`,
//! `channel_target_bind`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ChannelPendingPairing, ChannelRouteSnapshot, ChannelTargetSnapshot};
use crate::AgentRuntimeScope;
use crate::serde_util::double_option;

maybe_account_commands! {
    /// Lists the pairing codes waiting to be bound.
    ChannelPairingsList;
    /// Lists the chats an account has seen and a controller can bind.
    ChannelTargetsList;
}

/// Result of `channel_pairings_list`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct ChannelPairingsListResponse {
    /// Echo of the request's id.
    pub request_id: String,
    /// Whether the pairings were listed.
    pub success: bool,
    /// Echo of the channel.
    pub channel_id: String,
    /// The codes waiting to be bound (empty on failure).
    pub pending: Vec<ChannelPendingPairing>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Binds the chat a pairing code was sent in to an agent conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ChannelPairingBind {
    /// Correlates the response.
    pub request_id: String,
    /// The channel.
    pub channel_id: String,
    /// The account (the channel's default account when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// The agent conversation.
    pub runtime: AgentRuntimeScope,
    /// The pairing code.
    pub code: String,
}

/// Declares the responses that may carry the route a command made or changed.
macro_rules! route_responses {
    ($( $(#[$meta:meta])* $name:ident { $( $(#[$fmeta:meta])* $field:ident: $ty:ty, )* } )+) => {$(
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
        pub struct $name {
            /// Echo of the request's id.
            pub request_id: String,
            /// Whether the command succeeded.
            pub success: bool,
            /// Echo of the channel.
            pub channel_id: String,
            $( $(#[$fmeta])* pub $field: $ty, )*
            /// The route: absent or `null` when there is none.
            #[serde(
                default,
                deserialize_with = "double_option::deserialize",
                skip_serializing_if = "Option::is_none"
            )]
            pub route: Option<Option<ChannelRouteSnapshot>>,
            /// Why it failed.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub error: Option<String>,
        }
    )+};
}

route_responses! {
    /// Result of `channel_pairing_bind`.
    ChannelPairingBindResponse {
        /// The chat that was bound.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        chat_id: Option<String>,
    }
    /// Result of `channel_route_update`.
    ChannelRouteUpdateResponse {
        /// Echo of the chat.
        chat_id: String,
    }
    /// Result of `channel_target_bind`.
    ChannelTargetBindResponse {
        /// Echo of the target.
        target_id: String,
        /// The chat that was bound.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        chat_id: Option<String>,
    }
}

/// Lists routes, filtered by any of channel, account, agent and conversation.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct ChannelRoutesList {
    /// Correlates the response.
    pub request_id: String,
    /// Only this channel's routes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_id: Option<String>,
    /// Only this account's routes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// Only routes to this agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// Only routes to this conversation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
}

/// Result of `channel_routes_list`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct ChannelRoutesListResponse {
    /// Echo of the request's id.
    pub request_id: String,
    /// Whether the routes were listed.
    pub success: bool,
    /// Echo of the channel filter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_id: Option<String>,
    /// The routes (empty on failure).
    pub routes: Vec<ChannelRouteSnapshot>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Result of `channel_targets_list`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct ChannelTargetsListResponse {
    /// Echo of the request's id.
    pub request_id: String,
    /// Whether the targets were listed.
    pub success: bool,
    /// Echo of the channel.
    pub channel_id: String,
    /// The targets (empty on failure).
    pub targets: Vec<ChannelTargetSnapshot>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Routes a discovered target to an agent conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ChannelTargetBind {
    /// Correlates the response.
    pub request_id: String,
    /// The channel.
    pub channel_id: String,
    /// The account (the channel's default account when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// The agent conversation.
    pub runtime: AgentRuntimeScope,
    /// The target.
    pub target_id: String,
}

/// Removes a chat's route.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct ChannelRouteRemove {
    /// Correlates the response.
    pub request_id: String,
    /// The channel.
    pub channel_id: String,
    /// The account (the channel's default account when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// The chat.
    pub chat_id: String,
}

/// Result of `channel_route_remove`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct ChannelRouteRemoveResponse {
    /// Echo of the request's id.
    pub request_id: String,
    /// Whether the command succeeded.
    pub success: bool,
    /// Echo of the channel.
    pub channel_id: String,
    /// Echo of the chat.
    pub chat_id: String,
    /// Whether a route was found (and removed).
    pub found: bool,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Points a chat's route at another agent conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ChannelRouteUpdate {
    /// Correlates the response.
    pub request_id: String,
    /// The channel.
    pub channel_id: String,
    /// The account (the channel's default account when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// The chat.
    pub chat_id: String,
    /// The agent conversation.
    pub runtime: AgentRuntimeScope,
}
