//! The providers `connect_provider` connected, kept in `<data_dir>/providers/auth.json` in Letta
//! Code's local format (`{"version": 1, "providers": {<name>: <record>}}`, a record holding
//! `auth: {"type": "api", "key": …}` and an optional `base_url`).
//!
//! The file is private to its owner and kept in memory ([`PrivateFile`]). Records this server
//! does not drive (another provider type, OAuth) are kept as they are.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::clock::now_iso;
use crate::private_file::PrivateFile;

/// The key Letta Code stores for a provider connected without one.
const NO_API_KEY: &str = "not-needed";

/// The file's contents.
#[derive(Clone, Serialize, Deserialize)]
pub struct AuthFile {
    #[serde(default = "version")]
    version: u32,
    /// Records by provider name, as stored.
    #[serde(default)]
    providers: BTreeMap<String, Value>,
}

fn version() -> u32 {
    1
}

impl Default for AuthFile {
    fn default() -> Self {
        Self {
            version: version(),
            providers: BTreeMap::new(),
        }
    }
}

/// What a stored connection says, for the providers this server drives.
#[derive(Clone, PartialEq, Eq)]
pub struct Connection {
    /// The name it is stored under.
    pub name: String,
    /// Its record id (`local-provider-<name>`).
    pub id: String,
    /// Its provider type.
    pub provider_type: String,
    /// Its base URL.
    pub base_url: Option<String>,
    /// Its API key (`None` for none, or Letta's "not needed").
    pub api_key: Option<String>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("name", &self.name)
            .field("provider_type", &self.provider_type)
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

impl AuthFile {
    /// The API-key connection stored under `name`, if any.
    pub fn connection(&self, name: &str) -> Option<Connection> {
        let record = self.providers.get(name)?.as_object()?;
        let text = |key: &str| record.get(key).and_then(Value::as_str).map(str::to_owned);
        let auth = record.get("auth").and_then(Value::as_object)?;
        if auth.get("type").and_then(Value::as_str) != Some("api") {
            return None;
        }
        let api_key = auth
            .get("key")
            .and_then(Value::as_str)
            .filter(|key| !key.is_empty() && *key != NO_API_KEY)
            .map(str::to_owned);
        Some(Connection {
            name: name.to_owned(),
            id: text("id").unwrap_or_else(|| record_id(name)),
            provider_type: text("provider_type").unwrap_or_default(),
            base_url: text("base_url").filter(|url| !url.trim().is_empty()),
            api_key,
        })
    }

    /// Stores an API-key connection under `name` (replacing one stored there; its creation time
    /// and fields this server does not set, such as a `timeout`, stay).
    pub fn connect(&mut self, name: &str, provider_type: &str, api_key: Option<&str>, base_url: Option<&str>) {
        let now = now_iso();
        let previous = self.providers.get(name).and_then(Value::as_object);
        let mut record: Map<String, Value> = previous.cloned().unwrap_or_default();
        let created_at = previous
            .and_then(|p| p.get("created_at"))
            .cloned()
            .unwrap_or_else(|| json!(now));
        record.extend([
            ("id".to_owned(), json!(record_id(name))),
            ("name".to_owned(), json!(name)),
            ("provider_type".to_owned(), json!(provider_type)),
            ("provider_category".to_owned(), json!("byok")),
            (
                "auth".to_owned(),
                json!({"type": "api", "key": api_key.unwrap_or(NO_API_KEY)}),
            ),
            ("created_at".to_owned(), created_at),
            ("updated_at".to_owned(), json!(now)),
        ]);
        match base_url {
            Some(url) => record.insert("base_url".to_owned(), json!(url)),
            None => record.remove("base_url"),
        };
        self.providers.insert(name.to_owned(), Value::Object(record));
    }

    /// Removes what is stored under `name`.
    pub fn disconnect(&mut self, name: &str) {
        self.providers.remove(name);
    }
}

/// Letta Code's record id for a provider stored under `name`.
fn record_id(name: &str) -> String {
    format!("local-provider-{name}")
}

/// The stored connections: `auth.json` and its copy in memory.
pub struct Connections(PrivateFile<AuthFile>);

impl Connections {
    /// The connections stored in `dir/auth.json` (none when there is no such file).
    pub fn open(dir: PathBuf) -> Self {
        Self(PrivateFile::open(dir.join("auth.json")))
    }

    /// The stored connections as last read, or why the file could not be read (then read again).
    pub fn current(&self) -> Result<AuthFile, String> {
        self.0.current()
    }

    /// The connection stored under the first of `names` that has one, as last read (an
    /// unreadable file has none).
    pub fn find(&self, names: &[&str]) -> Option<Connection> {
        self.0
            .with(|file| names.iter().find_map(|name| file.connection(name)))
            .flatten()
    }

    /// Applies `change` to the stored connections and rewrites the file (on a blocking thread);
    /// the new contents, or why they could not be read or written (nothing changed then).
    pub async fn change(&self, change: impl FnOnce(&mut AuthFile)) -> Result<AuthFile, String> {
        self.0
            .change(|file| {
                change(file);
                Ok(())
            })
            .await
    }
}
