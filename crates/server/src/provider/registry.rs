//! Choosing a provider from a model handle (`provider/model-id`), as Letta Code's local backend
//! does, at the address and with the key it is configured with: a connection stored by
//! `connect_provider` first, else the environment, else the provider's default address.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::SharedProvider;
use super::catalog::{Catalog, Endpoint};
use super::connections::{AuthFile, Connection, Connections};
use super::kinds::{Kind, SPECS};
use super::openai::{OpenAiCompatible, OpenAiSettings};
use super::scripted::Scripted;
use crate::metrics::Metrics;
use crate::sync::lock;

/// The catalog id of the built-in scripted model.
pub const SCRIPTED_ID: &str = "scripted";
/// The handle of the built-in scripted model (any `scripted/…` handle selects it, and so does
/// none).
pub const SCRIPTED_HANDLE: &str = "scripted/default";

/// Where each OpenAI-compatible provider lives (read from the environment), how failed requests
/// are retried, and how `list_models` asks providers for their models.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderSettings {
    /// `LLAMA_CPP_BASE_URL` (or `LLAMACPP_BASE_URL`), default `http://localhost:8080/v1`.
    pub llama_cpp: String,
    /// `OLLAMA_BASE_URL`, default `http://localhost:11434/v1`.
    pub ollama: String,
    /// `LMSTUDIO_BASE_URL`, default `http://127.0.0.1:1234/v1`.
    pub lmstudio: String,
    /// `OPENAI_BASE_URL`, default `https://api.openai.com/v1`.
    pub openai: String,
    /// `OPENAI_API_KEY`.
    pub openai_api_key: Option<String>,
    /// Delay before the first retry of a failed request; doubled for each further one.
    pub retry_base_delay: Duration,
    /// How long `list_models` waits for a provider's model list (default 2 s); a provider that
    /// has not answered by then is left out.
    pub model_list_timeout: Duration,
    /// How long a provider's model list (or its failure) is reused (default 60 s).
    pub model_list_ttl: Duration,
}

impl ProviderSettings {
    /// Reads the endpoints from environment variables, with Letta Code's defaults.
    pub fn from_env() -> Self {
        let var = |names: &[&str], default: &str| {
            names
                .iter()
                .find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
                .unwrap_or_else(|| default.into())
        };
        Self {
            llama_cpp: var(&["LLAMA_CPP_BASE_URL", "LLAMACPP_BASE_URL"], "http://localhost:8080/v1"),
            ollama: var(&["OLLAMA_BASE_URL"], "http://localhost:11434/v1"),
            lmstudio: var(&["LMSTUDIO_BASE_URL"], "http://127.0.0.1:1234/v1"),
            openai: var(&["OPENAI_BASE_URL"], "https://api.openai.com/v1"),
            openai_api_key: std::env::var("OPENAI_API_KEY").ok().filter(|v| !v.is_empty()),
            retry_base_delay: Duration::from_secs(1),
            model_list_timeout: Duration::from_secs(2),
            model_list_ttl: Duration::from_secs(60),
        }
    }
}

/// The model ids each provider offers, as `list_models` reports them.
pub struct Offered {
    /// The provider.
    pub kind: Kind,
    /// The ids of its models, in its order (a handle is `<prefix>/<id>`).
    pub models: Vec<String>,
}

/// The providers of one server, with a client each that is reused (and its connections with it)
/// while the provider's address and key stay the same.
pub struct Providers {
    scripted: SharedProvider,
    settings: ProviderSettings,
    connections: Connections,
    clients: Mutex<HashMap<Kind, (Endpoint, Arc<OpenAiCompatible>)>>,
    catalog: Catalog,
    /// Where the clients count their requests.
    metrics: Arc<Metrics>,
}

impl Providers {
    /// Providers at the `settings` endpoints, or where the connections stored in
    /// `connections_dir` (`<data_dir>/providers`) say; their requests are counted in `metrics`.
    pub fn new(settings: ProviderSettings, connections_dir: PathBuf, metrics: Arc<Metrics>) -> Self {
        Self {
            metrics,
            scripted: Arc::new(Scripted),
            catalog: Catalog::new(settings.model_list_timeout, settings.model_list_ttl),
            settings,
            connections: Connections::open(connections_dir),
            clients: Mutex::default(),
        }
    }

    /// The provider and model id for a model handle. Agents without a model, and the `scripted/…`
    /// handles, use the scripted model.
    pub fn resolve(&self, handle: Option<&str>) -> Result<(SharedProvider, String), String> {
        let Some(handle) = handle.filter(|h| !h.is_empty()) else {
            return Ok((self.scripted.clone(), SCRIPTED_ID.into()));
        };
        let (prefix, model) = handle.split_once('/').unwrap_or((handle, ""));
        if prefix == "scripted" {
            return Ok((self.scripted.clone(), model.to_owned()));
        }
        let Some(kind) = Kind::from_prefix(prefix) else {
            let prefixes: Vec<String> = SPECS.iter().map(|spec| format!("{}/", spec.prefix)).collect();
            return Err(format!(
                "unsupported model provider `{prefix}` in model handle `{handle}`; use scripted/, {}",
                prefixes.join(", ")
            ));
        };
        let (_, client) = self.client(kind)?;
        Ok((client, model.to_owned()))
    }

    /// The stored connections.
    pub fn connections(&self) -> &Connections {
        &self.connections
    }

    /// The stored connection of `kind`, if any (an unreadable file has none).
    fn connection(&self, kind: Kind) -> Option<Connection> {
        self.connections.find(kind.spec().provider_names)
    }

    /// Where `kind` is reached: its stored connection's base URL and key, else the environment's,
    /// else its default address; `None` for an OpenAI-compatible endpoint never connected.
    fn endpoint(&self, kind: Kind) -> Option<Endpoint> {
        let connection = self.connection(kind);
        let (connected_url, connected_key) = connection.map_or((None, None), |c| (c.base_url, c.api_key));
        let settings = &self.settings;
        let (default_url, default_key) = match kind {
            Kind::LlamaCpp => (Some(&settings.llama_cpp), None),
            Kind::LmStudio => (Some(&settings.lmstudio), None),
            Kind::Ollama => (Some(&settings.ollama), None),
            Kind::OpenAi => (Some(&settings.openai), settings.openai_api_key.as_ref()),
            Kind::OpenAiCompatible => (None, None),
        };
        // The environment's key goes only to the environment's address, never to a connected one.
        let api_key = match &connected_url {
            Some(_) => connected_key,
            None => connected_key.or_else(|| default_key.cloned()),
        };
        Some(Endpoint {
            base_url: connected_url.or_else(|| default_url.cloned())?,
            api_key,
        })
    }

    /// The current endpoint of `kind`, and its client there.
    fn client(&self, kind: Kind) -> Result<(Endpoint, Arc<OpenAiCompatible>), String> {
        let endpoint = self.endpoint(kind).ok_or_else(|| {
            let spec = kind.spec();
            format!(
                "the model provider `{}` is not connected; connect it first (connect_provider with \
                 provider_id `{}` and its `baseUrl`)",
                spec.prefix, spec.id
            )
        })?;
        let mut clients = lock(&self.clients);
        if let Some((current, client)) = clients.get(&kind)
            && *current == endpoint
        {
            return Ok((endpoint, client.clone()));
        }
        let client = Arc::new(
            OpenAiCompatible::new(OpenAiSettings {
                base_url: endpoint.base_url.clone(),
                api_key: endpoint.api_key.clone(),
                retry_base_delay: self.settings.retry_base_delay,
                ..OpenAiSettings::default()
            })
            .observed(kind.spec().prefix, self.metrics.clone()),
        );
        clients.insert(kind, (endpoint.clone(), client.clone()));
        Ok((endpoint, client))
    }

    /// Whether `list_models` asks `kind` for its models: a local server always (at its default
    /// address when it is not connected), OpenAI once it has a key, any provider once connected.
    fn listed(&self, kind: Kind) -> bool {
        kind.spec().probed
            || self.connection(kind).is_some()
            || (kind == Kind::OpenAi && self.settings.openai_api_key.is_some())
    }

    /// The models each listed provider offers (providers that fail or do not answer within the
    /// model list timeout are left out), from the cache unless `force`; fails only when the
    /// stored connections cannot be read.
    pub async fn offered(&self, force: bool) -> Result<Vec<Offered>, String> {
        self.connections.current()?;
        let targets = SPECS
            .iter()
            .filter(|spec| self.listed(spec.kind))
            .filter_map(|spec| {
                let (endpoint, client) = self.client(spec.kind).ok()?;
                Some((spec.kind, endpoint, client))
            })
            .collect();
        let lists = self.catalog.list(targets, force).await;
        Ok(lists
            .into_iter()
            .filter_map(|(kind, models)| models.ok().map(|models| Offered { kind, models }))
            .collect())
    }

    /// Applies `change` to the stored connections (see [`Connections::change`]); the model lists
    /// are asked for again afterwards.
    pub async fn change_connections(&self, change: impl FnOnce(&mut AuthFile)) -> Result<AuthFile, String> {
        let changed = self.connections.change(change).await;
        self.catalog.clear();
        changed
    }
}
