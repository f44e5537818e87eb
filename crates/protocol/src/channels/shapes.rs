//! The shapes the messaging-channels frames share: channel, account, pairing, route and target
//! snapshots, and the declarative settings schema a channel publishes (docs/protocol.md §4.10).

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::JsonObject;
use crate::serde_util::{double_option, nullable};

/// Who may message an account's bot directly. Closed: it is a setting the server enforces, and
/// Letta validates it on every command that sets it (an unknown policy is an error).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DmPolicy {
    /// Unknown senders get a pairing code that a controller binds (`channel_pairing_bind`).
    Pairing,
    /// Only `allowed_users` may message.
    Allowlist,
    /// Anyone may message.
    Open,
}

/// One messaging channel (`telegram`, `slack`, `discord`, `custom`, `whatsapp`, `signal`, or a
/// custom channel the server discovered), as `channels_list` and `channel_start` report it.
///
/// `channel_id` is a plain string, not an enum: Letta declares it `string` because custom
/// channels are found at run time (`~/.letta/channels/<id>/channel.json`), so any id that
/// matches `^[a-z0-9][a-z0-9_-]*$` is a real channel today, not a value from a newer version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ChannelSummary {
    /// The channel.
    pub channel_id: String,
    /// Its human name.
    pub display_name: String,
    /// Whether it has the settings it needs to run.
    pub configured: bool,
    /// Whether it is enabled.
    pub enabled: bool,
    /// Whether it is running.
    pub running: bool,
    /// Its direct-message policy; `null` when it has none.
    #[schemars(required, schema_with = "nullable::<DmPolicy>")]
    pub dm_policy: Option<DmPolicy>,
    /// Pairing codes waiting to be bound.
    pub pending_pairings_count: u64,
    /// Users allowed to message it.
    pub approved_users_count: u64,
    /// Chats routed to agents.
    pub routes_count: u64,
    /// The form a settings UI renders for it; `null` when it declares none.
    #[schemars(required, schema_with = "nullable::<ChannelConfigSchema>")]
    pub config_schema: Option<ChannelConfigSchema>,
}

/// A channel account's settings, as `channel_get_config` and `channel_set_config` report them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ChannelConfigSnapshot {
    /// The channel.
    pub channel_id: String,
    /// The account.
    pub account_id: String,
    /// The account's human name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Whether the account is enabled.
    pub enabled: bool,
    /// Its direct-message policy.
    pub dm_policy: DmPolicy,
    /// Platform user ids allowed to message it.
    pub allowed_users: Vec<String>,
    /// The channel plugin's own settings, secrets redacted (open: each plugin defines them).
    pub config: JsonObject,
}

/// One bot account of a channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ChannelAccountSnapshot {
    /// The channel.
    pub channel_id: String,
    /// The account.
    pub account_id: String,
    /// Its human name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Whether it is enabled.
    pub enabled: bool,
    /// Whether it has the settings it needs to run.
    pub configured: bool,
    /// Whether it is running.
    pub running: bool,
    /// Its direct-message policy.
    pub dm_policy: DmPolicy,
    /// Platform user ids allowed to message it.
    pub allowed_users: Vec<String>,
    /// The channel plugin's own settings, secrets redacted (open: each plugin defines them).
    pub config: JsonObject,
    /// ISO-8601 creation time.
    pub created_at: String,
    /// ISO-8601 time of the last change.
    pub updated_at: String,
}

/// A pairing code a platform user received and a controller has not bound yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ChannelPendingPairing {
    /// The account the user messaged.
    pub account_id: String,
    /// The code, for `channel_pairing_bind`.
    pub code: String,
    /// The platform user.
    pub sender_id: String,
    /// The platform user's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_name: Option<String>,
    /// The chat the code was sent in.
    pub chat_id: String,
    /// ISO-8601 time the code was issued.
    pub created_at: String,
    /// ISO-8601 time the code expires.
    pub expires_at: String,
}

open_enum! {
    /// The kind of chat a route serves. Open: it describes a platform chat, and a newer server
    /// may route other kinds.
    pub enum ChannelChatType {
        /// A direct conversation with one user.
        Direct = "direct",
        /// A group channel.
        Channel = "channel",
    }
}

/// A platform chat routed to an agent conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ChannelRouteSnapshot {
    /// The channel.
    pub channel_id: String,
    /// The account.
    pub account_id: String,
    /// The platform chat.
    pub chat_id: String,
    /// The kind of chat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat_type: Option<ChannelChatType>,
    /// The platform thread inside the chat: absent, `null` (the whole chat) or an id.
    #[serde(
        default,
        deserialize_with = "double_option::deserialize",
        skip_serializing_if = "Option::is_none"
    )]
    pub thread_id: Option<Option<String>>,
    /// The agent.
    pub agent_id: String,
    /// The conversation.
    pub conversation_id: String,
    /// Whether the route delivers inbound messages.
    pub enabled: bool,
    /// Whether the agent may post to the chat on its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outbound_enabled: Option<bool>,
    /// ISO-8601 creation time.
    pub created_at: String,
    /// ISO-8601 time of the last change.
    pub updated_at: String,
}

open_enum! {
    /// The kind of a discovered target. Open: it describes a platform object, and a newer
    /// server may discover other kinds.
    pub enum ChannelTargetType {
        /// A group channel.
        Channel = "channel",
    }
}

/// A platform chat the account has seen and that a controller can bind
/// (`channel_target_bind`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ChannelTargetSnapshot {
    /// The channel.
    pub channel_id: String,
    /// The account.
    pub account_id: String,
    /// The target, for `channel_target_bind`.
    pub target_id: String,
    /// Its kind.
    pub target_type: ChannelTargetType,
    /// The platform chat.
    pub chat_id: String,
    /// Its human name.
    pub label: String,
    /// ISO-8601 time it was first seen.
    pub discovered_at: String,
    /// ISO-8601 time it was last seen.
    pub last_seen_at: String,
    /// The last platform message seen in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_message_id: Option<String>,
}

/// The settings form a channel declares, for a UI to render.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ChannelConfigSchema {
    /// The form's format version: `1` in both Letta versions. An integer rather than a closed
    /// value, so that a newer format does not make the whole channel list unreadable; a client
    /// renders only versions it knows.
    pub version: u32,
    /// The fields, in display order.
    pub fields: Vec<ChannelConfigField>,
}

tagged_union! {
    /// One field of a [`ChannelConfigSchema`], discriminated by `type`. Open: the kinds of
    /// field are UI description, and a newer server may add some; an unknown one is kept.
    pub enum ChannelConfigField: open tag field_type = "type" {
        /// A line of text.
        Text(ChannelConfigTextField) = "text",
        /// A secret (shown redacted).
        Secret(ChannelConfigSecretField) = "secret",
        /// One of a list of options.
        Select(ChannelConfigSelectField) = "select",
        /// A switch.
        Boolean(ChannelConfigBooleanField) = "boolean",
        /// A number.
        Number(ChannelConfigNumberField) = "number",
        /// A list of strings.
        StringArray(ChannelConfigStringArrayField) = "string-array",
        /// A map of keys to strings or numbers.
        KeyValueMap(ChannelConfigKeyValueMapField) = "key-value-map",
    }
    common base: ChannelConfigFieldBase;
}

open_enum! {
    /// Where a config field's value is stored. Open: it only tells a UI where to show it.
    pub enum ChannelConfigFieldScope {
        /// Once for the channel.
        App = "app",
        /// Per account.
        Account = "account",
    }
}

/// What every [`ChannelConfigField`] has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ChannelConfigFieldBase {
    /// The setting's key in the plugin config.
    pub key: String,
    /// Its label.
    pub label: String,
    /// Help text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Whether a value is required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required: Option<bool>,
    /// Whether changing it restarts the channel.
    #[serde(rename = "restartRequired", default, skip_serializing_if = "Option::is_none")]
    pub restart_required: Option<bool>,
    /// Where its value is stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<ChannelConfigFieldScope>,
}

/// A `text` config field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ChannelConfigTextField {
    /// Key, label and the other common parts.
    #[serde(flatten)]
    pub base: ChannelConfigFieldBase,
    /// The initial value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    /// Hint shown while empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placeholder: Option<String>,
}

/// A `secret` config field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ChannelConfigSecretField {
    /// Key, label and the other common parts.
    #[serde(flatten)]
    pub base: ChannelConfigFieldBase,
    /// Hint shown while empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placeholder: Option<String>,
}

/// An option of a `select` config field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ChannelConfigSelectOption {
    /// The stored value.
    pub value: String,
    /// Its label.
    pub label: String,
}

/// A `select` config field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ChannelConfigSelectField {
    /// Key, label and the other common parts.
    #[serde(flatten)]
    pub base: ChannelConfigFieldBase,
    /// The choices.
    pub options: Vec<ChannelConfigSelectOption>,
    /// The initial value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
}

/// A `boolean` config field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ChannelConfigBooleanField {
    /// Key, label and the other common parts.
    #[serde(flatten)]
    pub base: ChannelConfigFieldBase,
    /// The initial value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<bool>,
}

/// A `number` config field. Its numbers are kept exactly as sent (integer or not).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ChannelConfigNumberField {
    /// Key, label and the other common parts.
    #[serde(flatten)]
    pub base: ChannelConfigFieldBase,
    /// The initial value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<serde_json::Number>,
    /// The smallest value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<serde_json::Number>,
    /// The largest value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<serde_json::Number>,
    /// The increment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<serde_json::Number>,
    /// Unit shown after the value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suffix: Option<String>,
    /// Hint shown while empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placeholder: Option<String>,
}

/// A `string-array` config field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ChannelConfigStringArrayField {
    /// Key, label and the other common parts.
    #[serde(flatten)]
    pub base: ChannelConfigFieldBase,
    /// The initial value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Vec<String>>,
    /// Hint shown while empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placeholder: Option<String>,
}

open_enum! {
    /// The type of a `key-value-map` field's values. Open: it only tells a UI how to edit them.
    pub enum ChannelConfigMapValueType {
        /// Strings.
        Text = "string",
        /// Numbers.
        Number = "number",
    }
}

/// A value of a `key-value-map` config field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ChannelConfigMapValue {
    /// A string.
    Text(String),
    /// A number, kept exactly as sent.
    Number(serde_json::Number),
}

/// A `key-value-map` config field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ChannelConfigKeyValueMapField {
    /// Key, label and the other common parts.
    #[serde(flatten)]
    pub base: ChannelConfigFieldBase,
    /// The type of the values.
    #[serde(rename = "valueType")]
    pub value_type: ChannelConfigMapValueType,
    /// The initial entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<IndexMap<String, ChannelConfigMapValue>>,
    /// Label of the key column.
    #[serde(rename = "keyLabel", default, skip_serializing_if = "Option::is_none")]
    pub key_label: Option<String>,
    /// Label of the value column.
    #[serde(rename = "valueLabel", default, skip_serializing_if = "Option::is_none")]
    pub value_label: Option<String>,
    /// Hint shown in an empty key.
    #[serde(rename = "keyPlaceholder", default, skip_serializing_if = "Option::is_none")]
    pub key_placeholder: Option<String>,
    /// Hint shown in an empty value.
    #[serde(rename = "valuePlaceholder", default, skip_serializing_if = "Option::is_none")]
    pub value_placeholder: Option<String>,
}
