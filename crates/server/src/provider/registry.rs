//! Choosing a provider from an agent's model handle (`provider/model-id`), as Letta Code's local
//! backend does.

use std::sync::Arc;
use std::time::Duration;

use super::SharedProvider;
use super::openai::{OpenAiCompatible, OpenAiSettings};
use super::scripted::Scripted;

/// Where each OpenAI-compatible provider lives (read from the environment) and how failed
/// requests are retried.
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
        }
    }
}

/// The providers of one server, created once so that connections are reused.
pub struct Providers {
    scripted: SharedProvider,
    llama_cpp: SharedProvider,
    ollama: SharedProvider,
    lmstudio: SharedProvider,
    openai: SharedProvider,
}

impl Providers {
    /// Providers for these endpoints.
    pub fn new(endpoints: ProviderSettings) -> Self {
        let retry_base_delay = endpoints.retry_base_delay;
        let openai = |base_url: String, api_key: Option<String>| -> SharedProvider {
            Arc::new(OpenAiCompatible::new(OpenAiSettings {
                base_url,
                api_key,
                retry_base_delay,
                ..OpenAiSettings::default()
            }))
        };
        Self {
            scripted: Arc::new(Scripted),
            llama_cpp: openai(endpoints.llama_cpp, None),
            ollama: openai(endpoints.ollama, None),
            lmstudio: openai(endpoints.lmstudio, None),
            openai: openai(endpoints.openai, endpoints.openai_api_key),
        }
    }

    /// The provider and model id for a model handle. Agents without a model, and the `scripted/…`
    /// handles, use the scripted model.
    pub fn resolve(&self, handle: Option<&str>) -> Result<(SharedProvider, String), String> {
        let Some(handle) = handle.filter(|h| !h.is_empty()) else {
            return Ok((self.scripted.clone(), "scripted".into()));
        };
        let (prefix, model) = handle.split_once('/').unwrap_or((handle, ""));
        let provider = match prefix {
            "scripted" => &self.scripted,
            "llama.cpp" => &self.llama_cpp,
            "ollama" => &self.ollama,
            "lmstudio" => &self.lmstudio,
            "openai" => &self.openai,
            other => {
                return Err(format!(
                    "unsupported model provider `{other}` in model handle `{handle}`; \
                     use scripted/, llama.cpp/, ollama/, lmstudio/ or openai/"
                ));
            }
        };
        Ok((provider.clone(), model.to_owned()))
    }
}
