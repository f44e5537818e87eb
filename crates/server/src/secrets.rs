//! Agents' secrets (`secret_list`, `secret_apply`; docs/protocol.md §4.13), kept in
//! `<data_dir>/secrets/agent-secrets.json`, readable by its owner only ([`PrivateFile`]):
//! `{"version": 1, "agents": {<agent id>: {<NAME>: <value>}}}`.
//!
//! Names are upper-cased and must be shell variable names (`[A-Z_][A-Z0-9_]*`), as real Letta
//! Code's are. Values are never logged nor put into an error text.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::limits::MAX_LIST_ENTRIES;
use crate::private_file::PrivateFile;

/// The file's contents.
#[derive(Clone, Serialize, Deserialize)]
pub struct SecretsFile {
    version: u32,
    /// Each agent's secrets, by name.
    #[serde(default)]
    agents: BTreeMap<String, BTreeMap<String, String>>,
}

impl Default for SecretsFile {
    fn default() -> Self {
        Self {
            version: 1,
            agents: BTreeMap::new(),
        }
    }
}

/// The stored secrets of every agent.
pub struct Secrets(PrivateFile<SecretsFile>);

impl Secrets {
    /// The secrets stored under `data_dir` (none when there is no file yet).
    pub fn open(data_dir: &Path) -> Self {
        Self(PrivateFile::open(data_dir.join("secrets").join("agent-secrets.json")))
    }

    /// The secrets of `agent_id`, by name, or why the file cannot be read.
    pub fn of(&self, agent_id: &str) -> Result<BTreeMap<String, String>, String> {
        // Copies the one agent's secrets (every tool call asks); the whole file only to read
        // it again after a failure.
        match self.0.with(|file| file.agents.get(agent_id).cloned()) {
            Some(secrets) => Ok(secrets.unwrap_or_default()),
            None => Ok(self.0.current()?.agents.remove(agent_id).unwrap_or_default()),
        }
    }

    /// Sets and removes secrets of `agent_id` in one write (a name in both is removed); the
    /// agent's secret names afterwards, sorted. Nothing changes when a name is invalid or the
    /// agent would have more than [`MAX_LIST_ENTRIES`] secrets.
    pub async fn apply(
        &self,
        agent_id: &str,
        set: BTreeMap<String, String>,
        unset: Vec<String>,
    ) -> Result<Vec<String>, String> {
        // The command's own check of `set`, then the store's of every name, with their texts.
        if let Some(key) = set.keys().find(|key| !is_name(&key.to_uppercase())) {
            return Err(format!(
                "Invalid secret name '{key}'. Use uppercase letters, numbers, and underscores only."
            ));
        }
        if let Some(key) = unset.iter().find(|key| !is_name(&key.to_uppercase())) {
            return Err(format!(
                "Invalid secret name '{key}'. Use uppercase letters, numbers, and underscores only. \
                 Must start with a letter or underscore."
            ));
        }
        let file = self
            .0
            .change(|file| {
                let secrets = file.agents.entry(agent_id.to_owned()).or_default();
                for (key, value) in set {
                    secrets.insert(key.to_uppercase(), value);
                }
                for key in &unset {
                    secrets.remove(&key.to_uppercase());
                }
                if secrets.len() > MAX_LIST_ENTRIES {
                    return Err(format!("An agent has at most {MAX_LIST_ENTRIES} secrets"));
                }
                if secrets.is_empty() {
                    file.agents.remove(agent_id);
                }
                Ok(())
            })
            .await?;
        Ok(file
            .agents
            .get(agent_id)
            .map(|secrets| secrets.keys().cloned().collect())
            .unwrap_or_default())
    }

    /// Removes every secret of `agent_id` (a deleted agent's).
    pub async fn forget(&self, agent_id: &str) -> Result<(), String> {
        if self.of(agent_id)?.is_empty() {
            return Ok(());
        }
        self.0
            .change(|file| {
                file.agents.remove(agent_id);
                Ok(())
            })
            .await
            .map(drop)
    }
}

/// Whether `name` is a secret's name: a shell variable name in capitals.
fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| first == '_' || first.is_ascii_uppercase())
        && chars.all(|c| c == '_' || c.is_ascii_uppercase() || c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::is_name;

    #[test]
    fn names_are_shell_variables_in_capitals() {
        for name in ["API_KEY", "_X", "K2"] {
            assert!(is_name(name), "{name}");
        }
        for name in ["", "2K", "API-KEY", "api_key", "ÄPI"] {
            assert!(!is_name(name), "{name}");
        }
    }
}
