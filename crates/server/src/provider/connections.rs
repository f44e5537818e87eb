//! The providers `connect_provider` connected, kept in `<data_dir>/providers/auth.json` in Letta
//! Code's local format (`{"version": 1, "providers": {<name>: <record>}}`, a record holding
//! `auth: {"type": "api", "key": …}` and an optional `base_url`).
//!
//! The file is read once when the server starts (and again by a command while it could not be
//! read), kept in memory, and rewritten whole on each change: written to a new file created with
//! owner-only permissions (0600, in a 0700 directory), synced, then renamed over the old one, so
//! it is never readable by others, not even while it is written, and never half written. Records
//! this server does not drive (another provider type, OAuth) are kept as they are.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::clock::now_iso;
use crate::sync::lock;

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

/// The stored connections: the file and its copy in memory.
pub struct Connections {
    dir: PathBuf,
    /// The file as last read or written, or why it could not be read.
    file: Mutex<Result<AuthFile, String>>,
    /// Held while the file is rewritten, so that changes apply one after another.
    writing: tokio::sync::Mutex<()>,
}

impl Connections {
    /// The connections stored in `dir/auth.json` (none when there is no such file).
    pub fn open(dir: PathBuf) -> Self {
        let file = read(&dir);
        Self {
            dir,
            file: Mutex::new(file),
            writing: tokio::sync::Mutex::new(()),
        }
    }

    /// The stored connections as last read, or why the file could not be read (then read again).
    pub fn current(&self) -> Result<AuthFile, String> {
        let mut file = lock(&self.file);
        if file.is_err() {
            *file = read(&self.dir);
        }
        file.clone()
    }

    /// The connection stored under the first of `names` that has one, as last read (an
    /// unreadable file has none).
    pub fn find(&self, names: &[&str]) -> Option<Connection> {
        let file = lock(&self.file);
        let file = file.as_ref().ok()?;
        names.iter().find_map(|name| file.connection(name))
    }

    /// Applies `change` to the stored connections and rewrites the file (on a blocking thread);
    /// the new contents, or why they could not be read or written (nothing changed then).
    pub async fn change(&self, change: impl FnOnce(&mut AuthFile)) -> Result<AuthFile, String> {
        let _writing = self.writing.lock().await;
        let mut file = self.current()?;
        change(&mut file);
        let dir = self.dir.clone();
        let written = file.clone();
        tokio::task::spawn_blocking(move || write(&dir, &written))
            .await
            .map_err(|error| format!("cannot write the provider connections: {error}"))??;
        *lock(&self.file) = Ok(file.clone());
        Ok(file)
    }
}

fn read(dir: &Path) -> Result<AuthFile, String> {
    let path = dir.join("auth.json");
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|error| format!("cannot read {}: {error}", path.display())),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(AuthFile::default()),
        Err(error) => Err(format!("cannot read {}: {error}", path.display())),
    }
}

/// Writes `file` to `dir/auth.json` atomically, readable by its owner only.
fn write(dir: &Path, file: &AuthFile) -> Result<(), String> {
    let failed = |error: std::io::Error| format!("cannot write {}: {error}", dir.join("auth.json").display());
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(failed)?;
    // A directory that existed already is made owner-only too.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(failed)?;
    let json = serde_json::to_vec_pretty(file).map_err(|error| format!("cannot encode the connections: {error}"))?;
    let temporary = dir.join(format!("auth.json.{}.tmp", uuid::Uuid::new_v4().simple()));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temporary)
        .and_then(|mut out| {
            out.write_all(&json)?;
            out.write_all(b"\n")?;
            out.sync_all()
        })
        .and_then(|()| std::fs::rename(&temporary, dir.join("auth.json")));
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written.map_err(failed)?;
    // The rename is durable once the directory is synced.
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(failed)
}
