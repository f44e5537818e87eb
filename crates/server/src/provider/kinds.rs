//! The model providers this server drives, named as Letta Code's local backend names them: the
//! handle prefix that selects each one, where it lives by default, and the form `connect_provider`
//! fills in for it (docs/protocol.md §4.3, §6.1).

/// A provider this server can drive (all speak OpenAI-compatible Chat Completions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A llama.cpp server.
    LlamaCpp,
    /// LM Studio.
    LmStudio,
    /// Ollama.
    Ollama,
    /// The OpenAI API.
    OpenAi,
    /// Any other OpenAI-compatible endpoint, at the base URL it was connected with.
    OpenAiCompatible,
}

/// A field of a provider's connect form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    /// Its key in `connect_provider.fields`.
    pub key: &'static str,
    /// Its label (also in the "Missing …" error).
    pub label: &'static str,
    /// Placeholder text.
    pub placeholder: Option<&'static str>,
    /// Whether the value is a secret.
    pub secret: bool,
    /// Whether it must be filled in.
    pub required: bool,
}

/// The field holding an API key.
pub const API_KEY: &str = "apiKey";
/// The field holding a base URL.
pub const BASE_URL: &str = "baseUrl";

/// What this server knows about a provider [`Kind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    /// The kind.
    pub kind: Kind,
    /// Its id for the provider commands (`connect_provider.provider_id`).
    pub id: &'static str,
    /// The handle prefix (without the slash) of its models: `ollama` for `ollama/llama3`.
    pub prefix: &'static str,
    /// Display name.
    pub display_name: &'static str,
    /// What it is.
    pub description: &'static str,
    /// Its Letta provider type.
    pub provider_type: &'static str,
    /// The names it is stored under; the first is the one `connect_provider` writes.
    pub provider_names: &'static [&'static str],
    /// Whether connecting it needs an API key.
    pub requires_api_key: bool,
    /// Its connect form.
    pub fields: &'static [Field],
    /// Whether `list_models` asks it for its models unconnected, at its default address (the
    /// local servers, as Letta Code probes them).
    pub probed: bool,
}

impl Spec {
    /// The name a connection of this provider is stored under.
    pub fn provider_name(&self) -> &'static str {
        self.provider_names[0]
    }
}

const fn base_url_field(placeholder: Option<&'static str>, required: bool) -> Field {
    Field {
        key: BASE_URL,
        label: "Base URL",
        placeholder,
        secret: false,
        required,
    }
}

const fn api_key_field(required: bool) -> Field {
    Field {
        key: API_KEY,
        label: "API Key",
        placeholder: None,
        secret: true,
        required,
    }
}

/// Every provider, in the order Letta Code lists them (by display name). Texts, types and names
/// are Letta Code's.
pub const SPECS: &[Spec] = &[
    Spec {
        kind: Kind::LlamaCpp,
        id: "llama-cpp",
        prefix: "llama.cpp",
        display_name: "llama.cpp (local)",
        description: "Connect llama.cpp at http://localhost:8080/v1 or a remote URL",
        provider_type: "llama_cpp",
        provider_names: &["llama-cpp", "lc-llama-cpp"],
        requires_api_key: false,
        fields: &[
            base_url_field(Some("http://localhost:8080/v1"), false),
            api_key_field(false),
        ],
        probed: true,
    },
    Spec {
        kind: Kind::LmStudio,
        id: "lmstudio",
        prefix: "lmstudio",
        display_name: "LM Studio (local)",
        description: "Connect LM Studio at http://127.0.0.1:1234/v1 or a remote URL",
        provider_type: "lmstudio_openai",
        provider_names: &["lmstudio", "lc-lmstudio"],
        requires_api_key: false,
        fields: &[
            base_url_field(Some("http://127.0.0.1:1234/v1"), false),
            api_key_field(false),
        ],
        probed: true,
    },
    Spec {
        kind: Kind::Ollama,
        id: "ollama",
        prefix: "ollama",
        display_name: "Ollama (local)",
        description: "Connect Ollama at http://localhost:11434/v1 or a remote URL",
        provider_type: "ollama",
        provider_names: &["ollama", "lc-ollama"],
        requires_api_key: false,
        fields: &[
            base_url_field(Some("http://localhost:11434/v1"), false),
            api_key_field(false),
        ],
        probed: true,
    },
    Spec {
        kind: Kind::OpenAi,
        id: "openai",
        prefix: "openai",
        display_name: "OpenAI",
        description: "Connect a OpenAI API key",
        provider_type: "openai",
        provider_names: &["openai", "lc-openai"],
        requires_api_key: true,
        fields: &[api_key_field(true)],
        probed: false,
    },
    Spec {
        kind: Kind::OpenAiCompatible,
        id: "openai-compatible",
        prefix: "openai-compatible",
        display_name: "OpenAI-compatible API",
        description: "Connect an OpenAI-compatible Chat Completions endpoint",
        provider_type: "openai-compatible",
        provider_names: &["openai-compatible", "lc-openai-compatible"],
        requires_api_key: false,
        fields: &[api_key_field(false), base_url_field(None, true)],
        probed: false,
    },
];

impl Kind {
    /// Its spec.
    pub fn spec(self) -> &'static Spec {
        SPECS
            .iter()
            .find(|spec| spec.kind == self)
            .expect("every kind has a spec")
    }

    /// The kind whose handles start with `prefix/`.
    pub fn from_prefix(prefix: &str) -> Option<Self> {
        SPECS.iter().find(|spec| spec.prefix == prefix).map(|spec| spec.kind)
    }

    /// The kind with this provider id.
    pub fn from_id(id: &str) -> Option<Self> {
        SPECS.iter().find(|spec| spec.id == id).map(|spec| spec.kind)
    }
}
