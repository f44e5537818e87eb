//! The messaging-channels group (docs/protocol.md §4.10): bot accounts on Telegram, Slack,
//! Discord, WhatsApp, Signal or a custom channel, the pairing of platform users, and the routes
//! from platform chats to agent conversations. Twenty commands, each answered by its
//! `<type>_response`, and five direct notifications (`channels_updated`,
//! `channel_accounts_updated`, `channel_pairings_updated`, `channel_routes_updated`,
//! `channel_targets_updated`) that real Letta broadcasts without an envelope to every socket.
//!
//! Every command names its channel with `channel_id` (only `channel_routes_list` may leave it
//! out), which must match `^[a-z0-9][a-z0-9_-]*$`; the bodies that create or change settings
//! (`account`, `patch`, `config`) are closed, as Letta rejects unknown keys in them.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::serde_util::double_option;
use crate::{AgentRuntimeScope, ClientFrame};

/// Declares commands that address a channel and, optionally, one of its accounts.
macro_rules! maybe_account_commands {
    ($( $(#[$meta:meta])* $name:ident; )+) => {$(
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
        pub struct $name {
            /// Correlates the response.
            pub request_id: String,
            /// The channel.
            pub channel_id: String,
            /// The account (the channel's default account when absent).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub account_id: Option<String>,
        }
    )+};
}

mod accounts;
mod routes;
mod shapes;

pub use accounts::*;
pub use routes::*;
pub use shapes::*;

/// Lists the channels.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct ChannelsList {
    /// Correlates the response.
    pub request_id: String,
}

/// Result of `channels_list`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct ChannelsListResponse {
    /// Echo of the request's id.
    pub request_id: String,
    /// Whether the channels were listed.
    pub success: bool,
    /// The channels (empty on failure).
    pub channels: Vec<ChannelSummary>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Notification: the channel list changed (one channel, or all when `channel_id` is absent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ChannelsUpdated {
    /// When, in milliseconds since the Unix epoch.
    pub timestamp: u64,
    /// The channel that changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_id: Option<String>,
}

/// Notification: a channel's accounts changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ChannelAccountsUpdated {
    /// When, in milliseconds since the Unix epoch.
    pub timestamp: u64,
    /// The channel.
    pub channel_id: String,
    /// The account that changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
}

/// Notification: a channel's pending pairings changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ChannelPairingsUpdated {
    /// When, in milliseconds since the Unix epoch.
    pub timestamp: u64,
    /// The channel.
    pub channel_id: String,
}

/// Notification: a channel's routes changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ChannelRoutesUpdated {
    /// When, in milliseconds since the Unix epoch.
    pub timestamp: u64,
    /// The channel.
    pub channel_id: String,
    /// The agent whose routes changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// The conversation whose routes changed: absent, `null` or an id.
    #[serde(
        default,
        deserialize_with = "double_option::deserialize",
        skip_serializing_if = "Option::is_none"
    )]
    pub conversation_id: Option<Option<String>>,
}

/// Notification: the targets a channel's accounts have seen changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ChannelTargetsUpdated {
    /// When, in milliseconds since the Unix epoch.
    pub timestamp: u64,
    /// The channel.
    pub channel_id: String,
}

refused_with_empty_fields! {
    ChannelsList => ChannelsListResponse,
    ChannelAccountsList => ChannelAccountsListResponse { channel_id },
    ChannelAccountCreate => ChannelAccountCreateResponse { channel_id },
    ChannelAccountUpdate => ChannelAccountUpdateResponse { channel_id },
    ChannelAccountBind => ChannelAccountBindResponse { channel_id },
    ChannelAccountUnbind => ChannelAccountUnbindResponse { channel_id },
    ChannelAccountDelete => ChannelAccountDeleteResponse { channel_id, account_id },
    ChannelAccountStart => ChannelAccountStartResponse { channel_id },
    ChannelAccountStop => ChannelAccountStopResponse { channel_id },
    ChannelGetConfig => ChannelGetConfigResponse,
    ChannelSetConfig => ChannelSetConfigResponse,
    ChannelStart => ChannelStartResponse,
    ChannelStop => ChannelStopResponse,
    ChannelPairingsList => ChannelPairingsListResponse { channel_id },
    ChannelPairingBind => ChannelPairingBindResponse { channel_id },
    ChannelRoutesList => ChannelRoutesListResponse { channel_id },
    ChannelTargetsList => ChannelTargetsListResponse { channel_id },
    ChannelTargetBind => ChannelTargetBindResponse { channel_id, target_id },
    ChannelRouteRemove => ChannelRouteRemoveResponse { channel_id, chat_id },
    ChannelRouteUpdate => ChannelRouteUpdateResponse { channel_id, chat_id },
}

impl ClientFrame {
    /// For a messaging-channels command, its `channel_id` (when it has one) and its `runtime`
    /// (when it binds a chat to one), for the shape checks; `None` for every other frame.
    pub(crate) fn channel_addressing(&self) -> Option<(Option<&str>, Option<&AgentRuntimeScope>)> {
        Some(match self {
            Self::ChannelsList(_) => (None, None),
            Self::ChannelRoutesList(list) => (list.channel_id.as_deref(), None),
            Self::ChannelAccountsList(c) => (Some(c.channel_id.as_str()), None),
            Self::ChannelAccountCreate(c) => (Some(c.channel_id.as_str()), None),
            Self::ChannelAccountUpdate(c) => (Some(c.channel_id.as_str()), None),
            Self::ChannelAccountBind(c) => (Some(c.channel_id.as_str()), Some(&c.runtime)),
            Self::ChannelAccountUnbind(c) => (Some(c.channel_id.as_str()), None),
            Self::ChannelAccountDelete(c) => (Some(c.channel_id.as_str()), None),
            Self::ChannelAccountStart(c) => (Some(c.channel_id.as_str()), None),
            Self::ChannelAccountStop(c) => (Some(c.channel_id.as_str()), None),
            Self::ChannelGetConfig(c) => (Some(c.channel_id.as_str()), None),
            Self::ChannelSetConfig(c) => (Some(c.channel_id.as_str()), None),
            Self::ChannelStart(c) => (Some(c.channel_id.as_str()), None),
            Self::ChannelStop(c) => (Some(c.channel_id.as_str()), None),
            Self::ChannelPairingsList(c) => (Some(c.channel_id.as_str()), None),
            Self::ChannelPairingBind(c) => (Some(c.channel_id.as_str()), Some(&c.runtime)),
            Self::ChannelTargetsList(c) => (Some(c.channel_id.as_str()), None),
            Self::ChannelTargetBind(c) => (Some(c.channel_id.as_str()), Some(&c.runtime)),
            Self::ChannelRouteRemove(c) => (Some(c.channel_id.as_str()), None),
            Self::ChannelRouteUpdate(c) => (Some(c.channel_id.as_str()), Some(&c.runtime)),
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::{ClientFrame, ServerFrame};

    #[test]
    fn an_explicit_null_stays_apart_from_an_absent_field() {
        // The generated clients read these `?: T | null` fields as absent either way, so the
        // golden frames leave the nulls out; the protocol crate keeps them.
        for frame in [
            json!({"type": "channel_routes_updated", "timestamp": 1, "channel_id": "telegram", "conversation_id": null}),
            json!({"type": "channel_pairing_bind_response", "request_id": "p-1", "success": false,
                   "channel_id": "telegram", "route": null, "error": "Unknown code"}),
        ] {
            let parsed = ServerFrame::from_value(frame.clone()).expect("parses");
            assert_eq!(serde_json::to_value(&parsed).unwrap(), frame);
        }
    }

    #[test]
    fn a_refusal_echoes_the_fields_that_name_what_was_asked_for() {
        let command = ClientFrame::from_value(json!({"type": "channel_route_remove", "request_id": "r-1",
            "channel_id": "slack", "chat_id": "C1"}))
        .unwrap();
        let refusal = command.refusal("no".into()).expect("refusable");
        assert_eq!(
            serde_json::to_value(refusal).unwrap(),
            json!({"type": "channel_route_remove_response", "request_id": "r-1", "success": false,
                   "channel_id": "slack", "chat_id": "C1", "found": false, "error": "no"})
        );
    }
}
