//! Server-wide settings that survive restarts (the boot working directory, experiment
//! overrides, reflection settings, the agents whose memory repository exists), and the working
//! directories scopes chose for themselves (`get_cwd_map`).

use letta_app_server_protocol::RuntimeScope;
use rusqlite::{OptionalExtension, params};

use super::{Reply, Store, key};

/// One stored layer of reflection settings: `project` is a project directory (`""`: the global
/// layer), `agent_id` an agent (`""`: the layer's defaults for every agent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReflectionRow {
    /// The project directory, or `""` for the global layer.
    pub project: String,
    /// The agent, or `""` for the layer's defaults.
    pub agent_id: String,
    /// The settings, as JSON.
    pub settings: String,
}

/// Everything [`Store::saved_settings`] loads at startup.
#[derive(Debug, Clone, Default)]
pub struct SavedSettings {
    /// `server_settings` rows: key and value.
    pub values: Vec<(String, String)>,
    /// Every stored reflection layer.
    pub reflection: Vec<ReflectionRow>,
    /// The agents whose memory repository was created.
    pub memory_repositories: Vec<String>,
}

/// A scope's own working directory, as `get_cwd_map` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeCwd {
    /// The scope (`agent_id: None` for an agent-free conversation).
    pub scope: RuntimeScope,
    /// Its working directory.
    pub cwd: String,
}

impl Store {
    /// Loads every server-wide setting.
    pub fn saved_settings(&self) -> Reply<SavedSettings> {
        self.call(|c| {
            let mut saved = SavedSettings::default();
            let mut query = c.prepare("SELECT key, value FROM server_settings")?;
            for row in query.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))? {
                saved.values.push(row?);
            }
            let mut query = c.prepare("SELECT project, agent_id, settings FROM reflection_settings")?;
            let rows = query.query_map([], |row| {
                Ok(ReflectionRow {
                    project: row.get(0)?,
                    agent_id: row.get(1)?,
                    settings: row.get(2)?,
                })
            })?;
            for row in rows {
                saved.reflection.push(row?);
            }
            let mut query = c.prepare("SELECT agent_id FROM memory_repositories")?;
            for row in query.query_map([], |row| row.get(0))? {
                saved.memory_repositories.push(row?);
            }
            Ok(saved)
        })
    }

    /// Saves one server-wide setting.
    pub fn save_setting(&self, key: String, value: String) -> Reply<()> {
        self.call(move |c| {
            c.execute(
                "INSERT INTO server_settings (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )?;
            Ok(())
        })
    }

    /// Saves reflection layers, together.
    pub fn save_reflection(&self, rows: Vec<ReflectionRow>) -> Reply<()> {
        self.transaction(move |t| {
            for row in rows {
                t.execute(
                    "INSERT INTO reflection_settings (project, agent_id, settings) VALUES (?1, ?2, ?3)
                     ON CONFLICT (project, agent_id) DO UPDATE SET settings = excluded.settings",
                    params![row.project, row.agent_id, row.settings],
                )?;
            }
            Ok(())
        })
    }

    /// Records that an agent's memory repository was created.
    pub fn save_memory_repository(&self, agent_id: String, created_at: String) -> Reply<()> {
        self.call(move |c| {
            c.execute(
                "INSERT INTO memory_repositories (agent_id, enabled_at) VALUES (?1, ?2)
                 ON CONFLICT (agent_id) DO NOTHING",
                params![agent_id, created_at],
            )?;
            Ok(())
        })
    }

    /// The working directory a scope chose for itself, if any.
    pub fn scope_cwd(&self, scope: &RuntimeScope) -> Reply<Option<String>> {
        let (agent, conversation) = key(scope);
        self.call(move |c| {
            let cwd: Option<Option<String>> = c
                .query_row(
                    "SELECT cwd FROM scope_settings WHERE agent_id = ?1 AND conversation_id = ?2",
                    [agent, conversation],
                    |row| row.get(0),
                )
                .optional()?;
            Ok(cwd.flatten())
        })
    }

    /// Every scope that chose its own working directory.
    pub fn scope_cwds(&self) -> Reply<Vec<ScopeCwd>> {
        self.call(|c| {
            let mut query = c.prepare(
                "SELECT agent_id, conversation_id, cwd FROM scope_settings WHERE cwd IS NOT NULL
                 ORDER BY agent_id, conversation_id",
            )?;
            let rows = query.query_map([], |row| {
                let agent: String = row.get(0)?;
                let conversation: String = row.get(1)?;
                Ok(ScopeCwd {
                    scope: RuntimeScope {
                        agent_id: (!agent.is_empty()).then_some(agent),
                        ..RuntimeScope::agent_free(conversation)
                    },
                    cwd: row.get(2)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }
}
