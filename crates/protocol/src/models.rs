//! The models and providers group: `list_models`, `update_model`, `update_toolset`,
//! `list_connect_providers`, `connect_provider`, `disconnect_provider` and
//! `chatgpt_usage_read` (docs/protocol.md §4.3).
//!
//! Values a client sends to choose what a command does (a provider store, a reasoning effort)
//! are closed enums: an unknown one is an invalid frame. Values only the server reports are
//! open, so that a newer server's answers still parse.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Number, Value};

use crate::parse::{json_kind, path_tracked};
use crate::serde_util::{double_option, nullable};
use crate::{JsonObject, RuntimeScope, ToolsetName, ToolsetPreference};

/// Lists the models the user can pick.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct ListModels {
    /// Correlates the response.
    pub request_id: String,
    /// Bypass the server's availability cache and refetch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force: Option<bool>,
}

/// Result of `list_models`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct ListModelsResponse {
    /// Echo of the request's id.
    pub request_id: String,
    /// Whether the models were listed.
    pub success: bool,
    /// The model catalog (empty on failure).
    pub entries: Vec<ListModelsResponseModelEntry>,
    /// Handles available to this user: `null` when the lookup failed, absent from an older
    /// server.
    #[serde(
        default,
        deserialize_with = "double_option::deserialize",
        skip_serializing_if = "Option::is_none"
    )]
    pub available_handles: Option<Option<Vec<String>>>,
    /// Bring-your-own-key provider name → its base provider (`lc-anthropic` → `anthropic`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub byok_provider_aliases: Option<BTreeMap<String, String>>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A model of the catalog.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListModelsResponseModelEntry {
    /// Catalog id (`sonnet`).
    pub id: String,
    /// Model handle (`anthropic/claude-sonnet-4-6`).
    pub handle: String,
    /// Display name.
    pub label: String,
    /// What it is.
    pub description: String,
    /// Whether it is the default model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_default: Option<bool>,
    /// Whether it is featured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_featured: Option<bool>,
    /// Whether it is free to use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub free: Option<bool>,
    /// Whether it supports structured outputs (Letta 0.34.12).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supports_structured_outputs: Option<bool>,
    /// The model settings `update_model` applies for it (`context_window`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_args: Option<JsonObject>,
}

/// Changes the model of a conversation, or of the agent for its default conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UpdateModel {
    /// Correlates the response.
    pub request_id: String,
    /// The conversation.
    pub runtime: RuntimeScope,
    /// The model to use.
    pub payload: UpdateModelPayload,
}

/// The model `update_model` selects.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct UpdateModelPayload {
    /// Catalog model id (`sonnet`); preferred.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_id: Option<String>,
    /// A model handle instead (`anthropic/claude-sonnet-4-6`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_handle: Option<String>,
    /// Reasoning effort for an OpenAI-compatible proxy; `null` restores the provider's default.
    #[serde(
        default,
        deserialize_with = "double_option::deserialize",
        skip_serializing_if = "Option::is_none"
    )]
    pub reasoning_effort: Option<Option<ReasoningEffort>>,
}

/// A reasoning effort. Closed: an unknown effort is an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReasoningEffort {
    /// No reasoning.
    None,
    /// Minimal.
    Minimal,
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
    /// Extra high.
    Xhigh,
    /// The most.
    Max,
}

/// Result of `update_model`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct UpdateModelResponse {
    /// Echo of the request's id.
    pub request_id: String,
    /// Whether the model was changed.
    pub success: bool,
    /// Echo of the scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<RuntimeScope>,
    /// Whether the agent (default conversation) or the conversation got the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_to: Option<ModelAppliedTo>,
    /// The catalog id now in use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_id: Option<String>,
    /// The handle now in use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_handle: Option<String>,
    /// The model settings now in use (absent, `null` or an object).
    #[serde(
        default,
        deserialize_with = "double_option::deserialize",
        skip_serializing_if = "Option::is_none"
    )]
    pub model_settings: Option<Option<JsonObject>>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

open_enum! {
    /// What `update_model` changed.
    pub enum ModelAppliedTo {
        /// The agent (for its default conversation).
        Agent = "agent",
        /// The conversation.
        Conversation = "conversation",
    }
}

/// Sets a conversation's toolset preference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UpdateToolset {
    /// Correlates the response.
    pub request_id: String,
    /// The conversation.
    pub runtime: RuntimeScope,
    /// The preference (`auto`, `default`, `codex`, …).
    pub toolset_preference: ToolsetPreference,
}

/// Result of `update_toolset`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct UpdateToolsetResponse {
    /// Echo of the request's id.
    pub request_id: String,
    /// Whether the preference was set.
    pub success: bool,
    /// Echo of the scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<RuntimeScope>,
    /// The toolset now in use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_toolset: Option<ToolsetName>,
    /// The preference now set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_toolset_preference: Option<ToolsetPreference>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The provider store a provider command works on. Closed: Letta knows only the local one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ConnectProviderStorageTarget {
    /// The providers stored on this machine.
    #[default]
    Local,
}

/// Lists the model providers the user can connect.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct ListConnectProviders {
    /// Correlates the response.
    pub request_id: String,
    /// The provider store.
    pub target: ConnectProviderStorageTarget,
}

/// Stores a provider's credentials.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct ConnectProvider {
    /// Correlates the response.
    pub request_id: String,
    /// The provider store.
    pub target: ConnectProviderStorageTarget,
    /// The provider, as `list_connect_providers` names it.
    pub provider_id: String,
    /// The auth method, for providers with several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_method_id: Option<String>,
    /// The auth method's fields (`apiKey`, `region`, …).
    pub fields: BTreeMap<String, String>,
    /// The name to store the provider under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_name: Option<String>,
    /// OAuth credentials, for an OAuth provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth_config: Option<ProviderOAuthConfig>,
}

/// Removes a provider's credentials.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct DisconnectProvider {
    /// Correlates the response.
    pub request_id: String,
    /// The provider store.
    pub target: ConnectProviderStorageTarget,
    /// The provider, as `list_connect_providers` names it.
    pub provider_id: String,
    /// Which of its connected names to remove, when it has several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_name: Option<String>,
}

/// The OAuth credentials `connect_provider` accepts: ChatGPT's, or a provider's own tokens
/// (`type: "oauth"`).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum ProviderOAuthConfig {
    /// A provider's own tokens.
    Tokens(ProviderOAuthTokens),
    /// ChatGPT sign-in credentials.
    ChatGpt(ChatGptOAuthConfig),
}

impl<'de> Deserialize<'de> for ProviderOAuthConfig {
    // Dispatch on `type` instead of trying each variant, so that an error names the field.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let value = Value::deserialize(deserializer)?;
        if !value.is_object() {
            return Err(D::Error::custom(format!(
                "expected an object of OAuth credentials, got {}",
                json_kind(&value)
            )));
        }
        let result = if value.get("type").is_some() {
            path_tracked(value).map(Self::Tokens)
        } else {
            path_tracked(value).map(Self::ChatGpt)
        };
        result.map_err(D::Error::custom)
    }
}

/// A provider's OAuth tokens, as its own device-code login produced them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ProviderOAuthTokens {
    /// Always `oauth`.
    #[serde(rename = "type")]
    pub kind: OAuthTokensKind,
    /// The access token.
    pub access: String,
    /// The refresh token.
    pub refresh: String,
    /// When the access token expires, in milliseconds since the epoch.
    pub expires: u64,
    /// Provider-specific refresh data (`enterpriseUrl`, …), as sent.
    #[serde(flatten)]
    pub rest: JsonObject,
}

/// The `type` of [`ProviderOAuthTokens`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OAuthTokensKind {
    /// OAuth tokens.
    Oauth,
}

/// ChatGPT sign-in credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ChatGptOAuthConfig {
    /// The access token.
    pub access_token: String,
    /// The ID token.
    pub id_token: String,
    /// The refresh token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// The ChatGPT account.
    pub account_id: String,
    /// When the access token expires.
    pub expires_at: u64,
}

/// A field of a provider's connect form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ConnectProviderField {
    /// The key in `connect_provider.fields`.
    pub key: String,
    /// Its label.
    pub label: String,
    /// Placeholder text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placeholder: Option<String>,
    /// Whether the value is a secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<bool>,
    /// Whether it must be filled in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required: Option<bool>,
}

/// One way to authenticate with a provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ConnectProviderAuthMethod {
    /// Its id, for `connect_provider.auth_method_id`.
    pub id: String,
    /// Its label.
    pub label: String,
    /// What it is.
    pub description: String,
    /// Its form.
    pub fields: Vec<ConnectProviderField>,
}

/// A connected provider (or the absence of one).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct ConnectProviderConnectionState {
    /// Whether it is connected.
    pub is_connected: bool,
    /// Its id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The name it is stored under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_name: Option<String>,
    /// Its provider type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_type: Option<String>,
    /// How it authenticates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_type: Option<ProviderAuthType>,
    /// Its API base URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// Its request timeout, or `false` for none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<ProviderTimeout>,
    /// Its region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

open_enum! {
    /// How a connected provider authenticates.
    pub enum ProviderAuthType {
        /// An API key.
        Api = "api",
        /// OAuth.
        Oauth = "oauth",
    }
}

/// A provider's request timeout: a whole number, or `false` for none. Hand-written because the
/// `false`-only alternative has no serde derive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderTimeout {
    /// The timeout.
    Limit(u64),
    /// `false`: no timeout.
    Disabled,
}

impl Serialize for ProviderTimeout {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Limit(limit) => limit.serialize(serializer),
            Self::Disabled => serializer.serialize_bool(false),
        }
    }
}

impl<'de> Deserialize<'de> for ProviderTimeout {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        match Value::deserialize(deserializer)? {
            Value::Bool(false) => Ok(Self::Disabled),
            other => other.as_u64().map(Self::Limit).ok_or_else(|| {
                D::Error::custom(format!("expected a whole number or false, got {}", json_kind(&other)))
            }),
        }
    }
}

impl JsonSchema for ProviderTimeout {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ProviderTimeout".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A provider's request timeout: a whole number, or `false` for none.",
            "anyOf": [{"type": "integer", "format": "uint64", "minimum": 0}, {"type": "boolean", "enum": [false]}],
        })
    }
}

/// A provider the user can connect, with its connections.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct ConnectProviderEntry {
    /// Its id, for `connect_provider.provider_id`.
    pub id: String,
    /// Display name.
    pub display_name: String,
    /// What it is.
    pub description: String,
    /// Its provider type.
    pub provider_type: String,
    /// Its default stored name.
    pub provider_name: String,
    /// Every name it may be stored under.
    pub provider_names: Vec<String>,
    /// Whether it connects through OAuth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_oauth: Option<bool>,
    /// The OAuth provider it signs in with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth_provider_id: Option<String>,
    /// Whether it needs an API key.
    pub requires_api_key: bool,
    /// Its connect form (one auth method).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<Vec<ConnectProviderField>>,
    /// Its auth methods (several).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_methods: Option<Vec<ConnectProviderAuthMethod>>,
    /// The first connection (kept for older clients).
    pub connected: ConnectProviderConnectionState,
    /// Every connection under one of its names.
    pub connected_providers: Vec<ConnectProviderConnectionState>,
}

/// Declares the results of the provider store commands, which share their fields.
macro_rules! provider_store_response {
    ($( $(#[$meta:meta])* $name:ident $({ $(#[$fmeta:meta])* $field:ident: $fty:ty })? )+) => {$(
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
        pub struct $name {
            /// Echo of the request's id.
            pub request_id: String,
            /// Whether the command succeeded.
            pub success: bool,
            /// Echo of the provider store.
            pub target: ConnectProviderStorageTarget,
            /// The providers after the command (empty on failure).
            pub providers: Vec<ConnectProviderEntry>,
            $( $(#[$fmeta])* pub $field: $fty, )?
            /// Why it failed.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub error: Option<String>,
        }
    )+};
}

provider_store_response! {
    /// Result of `list_connect_providers`.
    ListConnectProvidersResponse
    /// Result of `connect_provider`.
    ConnectProviderResponse {
        /// Whether `list_models` may now answer differently.
        models_may_have_changed: bool
    }
    /// Result of `disconnect_provider`.
    DisconnectProviderResponse {
        /// Whether `list_models` may now answer differently.
        models_may_have_changed: bool
    }
}

/// Which store `chatgpt_usage_read` reads. Closed: an unknown store is an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChatGptUsageReadTarget {
    /// The provider stored on this machine.
    #[default]
    Local,
    /// The one stored with the Letta API.
    Api,
}

/// Reads the usage of a connected ChatGPT plan.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct ChatgptUsageRead {
    /// Correlates the response.
    pub request_id: String,
    /// The provider store.
    pub target: ChatGptUsageReadTarget,
    /// The connected ChatGPT provider's name (the built-in one when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_name: Option<String>,
    /// Skip the server's short cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_refresh: Option<bool>,
}

/// Result of `chatgpt_usage_read`. Its `error` is an object, unlike other responses'.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct ChatgptUsageReadResponse {
    /// Echo of the request's id.
    pub request_id: String,
    /// Whether the usage was read.
    pub success: bool,
    /// Echo of the provider store.
    pub target: ChatGptUsageReadTarget,
    /// The usage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<ChatGptUsageSnapshot>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ChatGptUsageReadError>,
}

/// A ChatGPT plan's usage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChatGptUsageSnapshot {
    /// The provider's name.
    pub provider_name: String,
    /// When it was read (ISO-8601).
    pub fetched_at: String,
    /// One-line summary.
    pub summary: String,
    /// The plan.
    #[serde(
        default,
        deserialize_with = "double_option::deserialize",
        skip_serializing_if = "Option::is_none"
    )]
    pub plan_type: Option<Option<String>>,
    /// Whether a limit is reached.
    #[serde(
        default,
        deserialize_with = "double_option::deserialize",
        skip_serializing_if = "Option::is_none"
    )]
    pub limit_reached: Option<Option<bool>>,
    /// Which limit is reached.
    #[serde(
        default,
        deserialize_with = "double_option::deserialize",
        skip_serializing_if = "Option::is_none"
    )]
    pub rate_limit_reached_type: Option<Option<String>>,
    /// The primary usage window.
    #[schemars(required, schema_with = "nullable::<ChatGptUsageWindow>")]
    pub primary: Option<ChatGptUsageWindow>,
    /// The secondary usage window.
    #[schemars(required, schema_with = "nullable::<ChatGptUsageWindow>")]
    pub secondary: Option<ChatGptUsageWindow>,
    /// More usage windows.
    pub additional: Vec<ChatGptUsageWindow>,
    /// Credits.
    #[serde(
        default,
        deserialize_with = "double_option::deserialize",
        skip_serializing_if = "Option::is_none"
    )]
    pub credits: Option<Option<ChatGptUsageCredits>>,
    /// The user's own limit.
    #[serde(
        default,
        deserialize_with = "double_option::deserialize",
        skip_serializing_if = "Option::is_none"
    )]
    pub individual_limit: Option<Option<ChatGptUsageIndividualLimit>>,
}

/// A usage window of a ChatGPT plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChatGptUsageWindow {
    /// Its label.
    pub label: String,
    /// How much of it is used, in percent.
    #[schemars(required, schema_with = "nullable::<Number>")]
    pub used_percent: Option<Number>,
    /// Its length in minutes.
    #[schemars(required, schema_with = "nullable::<u64>")]
    pub window_duration_mins: Option<u64>,
    /// When it resets (seconds since the epoch).
    #[schemars(required, schema_with = "nullable::<u64>")]
    pub resets_at: Option<u64>,
}

/// Credits of a ChatGPT plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChatGptUsageCredits {
    /// The balance.
    #[serde(
        default,
        deserialize_with = "double_option::deserialize",
        skip_serializing_if = "Option::is_none"
    )]
    pub balance: Option<Option<String>>,
    /// How many are available.
    #[serde(
        default,
        deserialize_with = "double_option::deserialize",
        skip_serializing_if = "Option::is_none"
    )]
    pub available_count: Option<Option<u64>>,
    /// Whether there are any.
    #[serde(
        default,
        deserialize_with = "double_option::deserialize",
        skip_serializing_if = "Option::is_none"
    )]
    pub has_credits: Option<Option<bool>>,
    /// Whether they are unlimited.
    #[serde(
        default,
        deserialize_with = "double_option::deserialize",
        skip_serializing_if = "Option::is_none"
    )]
    pub unlimited: Option<Option<bool>>,
}

/// A user's own limit within a ChatGPT plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChatGptUsageIndividualLimit {
    /// The limit.
    pub limit: String,
    /// How much is used.
    pub used: String,
    /// How much is left, in percent.
    pub remaining_percent: Number,
    /// When it resets (seconds since the epoch).
    pub resets_at: u64,
}

/// Why `chatgpt_usage_read` failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChatGptUsageReadError {
    /// What went wrong.
    pub code: ChatGptUsageErrorCode,
    /// Said for people.
    pub message: String,
    /// When to retry, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

open_enum! {
    /// What went wrong reading ChatGPT usage.
    pub enum ChatGptUsageErrorCode {
        /// The command was malformed.
        BadRequest = "bad_request",
        /// No ChatGPT provider is connected.
        NotConnected = "not_connected",
        /// The store is not supported (also this server's answer while it implements none).
        UnsupportedTarget = "unsupported_target",
        /// Refreshing the credentials failed.
        RefreshFailed = "refresh_failed",
        /// The credentials were refused.
        Unauthorized = "unauthorized",
        /// The account may not read usage.
        Forbidden = "forbidden",
        /// Rate limited; see `retryAfterMs`.
        RateLimited = "rate_limited",
        /// The usage service could not be reached.
        NetworkError = "network_error",
        /// The usage service answered something unreadable.
        BadResponse = "bad_response",
    }
}

refused_with_empty_fields! {
    ListModels => ListModelsResponse,
    UpdateModel => UpdateModelResponse,
    UpdateToolset => UpdateToolsetResponse,
}

/// Implements [`crate::Refuse`] for commands whose response echoes their `target`.
macro_rules! refused_with_target {
    ($( $command:ty => $response:ident ),+ $(,)?) => {$(
        impl crate::Refuse for $command {
            fn refuse(&self, error: String) -> Option<$response> {
                Some($response {
                    request_id: self.request_id.clone(),
                    target: self.target,
                    error: Some(error),
                    ..Default::default()
                })
            }
        }
    )+};
}

refused_with_target! {
    ListConnectProviders => ListConnectProvidersResponse,
    ConnectProvider => ConnectProviderResponse,
    DisconnectProvider => DisconnectProviderResponse,
}

impl crate::Refuse for ChatgptUsageRead {
    /// `error` is an object here: code `unsupported_target`, the text as its message.
    fn refuse(&self, error: String) -> Option<ChatgptUsageReadResponse> {
        Some(ChatgptUsageReadResponse {
            request_id: self.request_id.clone(),
            target: self.target,
            error: Some(ChatGptUsageReadError {
                code: ChatGptUsageErrorCode::UnsupportedTarget,
                message: error,
                retry_after_ms: None,
            }),
            ..Default::default()
        })
    }
}
