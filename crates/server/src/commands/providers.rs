//! The provider commands (docs/protocol.md §4.3): `list_connect_providers`, `connect_provider`
//! and `disconnect_provider`, for the OpenAI-compatible providers this server drives. Keys are
//! stored in `<data_dir>/providers/auth.json` (owner-only) and never sent back.

use letta_app_server_protocol::{
    ConnectProvider, ConnectProviderConnectionState, ConnectProviderEntry, ConnectProviderField,
    ConnectProviderResponse, DisconnectProvider, DisconnectProviderResponse, ListConnectProviders,
    ListConnectProvidersResponse, ProviderAuthType, ProviderOAuthConfig,
};

use crate::engine::Engine;
use crate::provider::AuthFile;
use crate::provider::kinds::{API_KEY, BASE_URL, Kind, SPECS, Spec};

/// `list_connect_providers`: every provider this server drives, with its stored connections.
pub(super) fn list_connect_providers(engine: &Engine, command: ListConnectProviders) -> ListConnectProvidersResponse {
    let (providers, error) = match engine.providers.connections().current() {
        Ok(file) => (entries(&file), None),
        Err(error) => (Vec::new(), Some(error)),
    };
    ListConnectProvidersResponse {
        request_id: command.request_id,
        success: error.is_none(),
        target: command.target,
        providers,
        error,
    }
}

/// `connect_provider`: checks the form and stores the connection (replacing one stored before);
/// the next turn and `list_models` use it.
pub(super) async fn connect_provider(engine: &Engine, command: ConnectProvider) -> ConnectProviderResponse {
    let (providers, error) = answer(connect(engine, &command).await);
    ConnectProviderResponse {
        request_id: command.request_id,
        success: error.is_none(),
        target: command.target,
        providers,
        models_may_have_changed: error.is_none(),
        error,
    }
}

async fn connect(engine: &Engine, command: &ConnectProvider) -> Result<AuthFile, String> {
    let (spec, api_key, base_url) = connection(command)?;
    (engine.providers)
        .change_connections(|file| file.connect(spec.provider_name(), spec.provider_type, api_key, base_url))
        .await
}

/// `disconnect_provider`: removes the provider's first stored connection (the one named, if
/// `provider_name` names one of its names); nothing stored is not an error.
pub(super) async fn disconnect_provider(engine: &Engine, command: DisconnectProvider) -> DisconnectProviderResponse {
    let (providers, error) = answer(disconnect(engine, &command).await);
    DisconnectProviderResponse {
        request_id: command.request_id,
        success: error.is_none(),
        target: command.target,
        providers,
        models_may_have_changed: error.is_none(),
        error,
    }
}

async fn disconnect(engine: &Engine, command: &DisconnectProvider) -> Result<AuthFile, String> {
    let spec = spec(&command.provider_id)?;
    let names: Vec<&str> = match command.provider_name.as_deref() {
        Some(name) if !spec.provider_names.contains(&name) => {
            return Err(format!(
                "{} does not support the provider name \"{name}\".",
                spec.display_name
            ));
        }
        Some(name) => vec![name],
        None => spec.provider_names.to_vec(),
    };
    let file = engine.providers.connections().current()?;
    match names.into_iter().find(|name| file.connection(name).is_some()) {
        Some(name) => {
            (engine.providers)
                .change_connections(|file| file.disconnect(name))
                .await
        }
        None => Ok(file),
    }
}

/// The providers after a change, or no providers and the error.
fn answer(changed: Result<AuthFile, String>) -> (Vec<ConnectProviderEntry>, Option<String>) {
    match changed {
        Ok(file) => (entries(&file), None),
        Err(error) => (Vec::new(), Some(error)),
    }
}

fn spec(provider_id: &str) -> Result<&'static Spec, String> {
    Kind::from_id(provider_id)
        .map(Kind::spec)
        .ok_or_else(|| format!("Unknown provider: {provider_id}"))
}

/// The provider and the API key and base URL a `connect_provider` form gives, checked as real
/// Letta checks it (in its order, with its texts), plus: only the fields of the provider's form
/// are known, a base URL must be an `http` or `https` URL, and a key must be printable ASCII.
fn connection(command: &ConnectProvider) -> Result<(&'static Spec, Option<&str>, Option<&str>), String> {
    let spec = spec(&command.provider_id)?;
    let name = spec.display_name;
    match &command.oauth_config {
        Some(ProviderOAuthConfig::Tokens(_)) => {
            return Err(format!("{name} does not accept subscription OAuth tokens."));
        }
        Some(ProviderOAuthConfig::ChatGpt(_)) => return Err(format!("{name} does not accept ChatGPT OAuth.")),
        None => {}
    }
    if command.provider_name.is_some() {
        return Err("providerName requires OAuth credentials.".into());
    }
    if command.auth_method_id.is_some() {
        return Err(format!("{name} does not use auth methods."));
    }
    // Only the fields of the provider's own form: a base URL given to a provider whose form has
    // none (OpenAI) would otherwise send the operator's key there.
    if let Some(key) = command
        .fields
        .keys()
        .find(|key| !spec.fields.iter().any(|field| field.key == key.as_str()))
    {
        let known: Vec<&str> = spec.fields.iter().map(|field| field.key).collect();
        return Err(format!(
            "Unknown field \"{key}\" for {name}; its fields are {}.",
            known.join(" and ")
        ));
    }
    let value = |key: &str| command.fields.get(key).map(|v| v.trim()).filter(|v| !v.is_empty());
    if let Some(field) = spec.fields.iter().find(|f| f.required && value(f.key).is_none()) {
        return Err(format!("Missing {}.", field.label));
    }
    let api_key = value(API_KEY);
    if api_key.is_some_and(|key| !key.bytes().all(|b| b.is_ascii_graphic())) {
        return Err("Invalid API Key: it must be printable ASCII without spaces.".into());
    }
    let base_url = value(BASE_URL);
    if let Some(url) = base_url {
        let valid = url
            .parse::<hyper::Uri>()
            .is_ok_and(|uri| matches!(uri.scheme_str(), Some("http" | "https")) && uri.authority().is_some());
        if !valid {
            return Err(format!(
                "Invalid Base URL \"{url}\": expected an http:// or https:// URL."
            ));
        }
    }
    Ok((spec, api_key, base_url))
}

/// The providers, as `list_connect_providers` lists them.
fn entries(file: &AuthFile) -> Vec<ConnectProviderEntry> {
    SPECS
        .iter()
        .map(|spec| {
            let connected: Vec<ConnectProviderConnectionState> = spec
                .provider_names
                .iter()
                .filter_map(|name| file.connection(name))
                .map(|connection| ConnectProviderConnectionState {
                    is_connected: true,
                    id: Some(connection.id),
                    provider_name: Some(connection.name),
                    provider_type: Some(connection.provider_type),
                    auth_type: Some(ProviderAuthType::Api),
                    base_url: connection.base_url,
                    ..Default::default()
                })
                .collect();
            ConnectProviderEntry {
                id: spec.id.into(),
                display_name: spec.display_name.into(),
                description: spec.description.into(),
                provider_type: spec.provider_type.into(),
                provider_name: spec.provider_name().into(),
                provider_names: spec.provider_names.iter().map(|name| (*name).to_owned()).collect(),
                is_oauth: None,
                oauth_provider_id: None,
                requires_api_key: spec.requires_api_key,
                fields: Some(
                    spec.fields
                        .iter()
                        .map(|field| ConnectProviderField {
                            key: field.key.into(),
                            label: field.label.into(),
                            placeholder: field.placeholder.map(str::to_owned),
                            secret: field.secret.then_some(true),
                            required: Some(field.required),
                        })
                        .collect(),
                ),
                auth_methods: None,
                connected: connected.first().cloned().unwrap_or_default(),
                connected_providers: connected,
            }
        })
        .collect()
}
