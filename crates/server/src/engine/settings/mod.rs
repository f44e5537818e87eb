//! Server-wide settings, shown in every conversation's device status and kept in the store
//! (docs/protocol.md §4.8, §4.9): the boot working directory and the working-directory
//! revision, the experiment flags, reflection settings, and the agents whose memory repository
//! exists. Loaded once at startup ([`Settings::load`]); every change is stored before it shows.
//!
//! * [`experiments`] — Letta's experiment catalogue and how a flag's state is decided.
//! * [`reflection`] — reflection settings in Letta's layers.

mod experiments;
mod reflection;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use letta_app_server_protocol::{
    Experiment, ExperimentId, ReflectionSettings, ReflectionSettingsChange, ReflectionSettingsScope,
};

use crate::config::Config;
use crate::store::{Store, StoreError};
use crate::sync::lock;
use experiments::Experiments;
use reflection::Reflection;

/// The `server_settings` key of the boot working directory.
const BOOT_CWD_KEY: &str = "boot_working_directory";
/// The `server_settings` key prefix of an experiment override.
const EXPERIMENT_KEY: &str = "experiment.";

/// The server-wide settings.
#[derive(Debug)]
pub struct Settings {
    boot_cwd: Mutex<String>,
    /// Bumped on every change of any working directory, as real Letta's listener-wide revision.
    cwd_revision: AtomicU64,
    experiments: Mutex<Experiments>,
    reflection: Mutex<Reflection>,
    memory_repositories: Mutex<HashSet<String>>,
    /// Where memory repositories live: `<data dir>/memfs`.
    memfs_root: PathBuf,
    /// Held while a memory repository is created.
    pub(crate) memfs_creation: tokio::sync::Mutex<()>,
}

impl Settings {
    /// The settings of a server that stored none: `config`'s boot directory, experiments from the
    /// environment, Letta's reflection defaults.
    pub fn new(config: &Config) -> Self {
        Self {
            boot_cwd: Mutex::new(config.boot_cwd.clone()),
            cwd_revision: AtomicU64::new(0),
            experiments: Mutex::new(Experiments::from_env()),
            reflection: Mutex::default(),
            memory_repositories: Mutex::default(),
            memfs_root: config.data_dir.join("memfs"),
            memfs_creation: tokio::sync::Mutex::new(()),
        }
    }

    /// Applies what the store kept. A stored boot directory that is no longer a directory is
    /// dropped for the configured one.
    pub async fn load(&self, store: &Store) -> Result<(), StoreError> {
        let saved = store.saved_settings().await?;
        for (key, value) in saved.values {
            if key == BOOT_CWD_KEY {
                if Path::new(&value).is_dir() {
                    *lock(&self.boot_cwd) = value;
                }
            } else if let Some(id) = key.strip_prefix(EXPERIMENT_KEY) {
                lock(&self.experiments).restore(id, value == "true");
            }
        }
        let mut reflection = lock(&self.reflection);
        for row in saved.reflection {
            reflection.restore(row);
        }
        lock(&self.memory_repositories).extend(saved.memory_repositories);
        Ok(())
    }

    // ----- working directories -----------------------------------------------------------------

    /// The working directory of conversations that chose none.
    pub fn boot_cwd(&self) -> String {
        lock(&self.boot_cwd).clone()
    }

    /// The working-directory revision (`cwd_revision`).
    pub fn cwd_revision(&self) -> u64 {
        self.cwd_revision.load(Ordering::SeqCst)
    }

    /// Counts a working-directory change (or a rejected one); returns the new revision.
    pub fn bump_cwd_revision(&self) -> u64 {
        self.cwd_revision.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Makes `cwd` (an existing directory, resolved) the boot working directory, stored;
    /// `false` when it already was.
    pub async fn set_boot_cwd(&self, store: &Store, cwd: String) -> Result<bool, StoreError> {
        if self.boot_cwd() == cwd {
            return Ok(false);
        }
        store.save_setting(BOOT_CWD_KEY.into(), cwd.clone()).await?;
        *lock(&self.boot_cwd) = cwd;
        self.bump_cwd_revision();
        Ok(true)
    }

    // ----- experiments -------------------------------------------------------------------------

    /// Every experiment flag, in Letta's order.
    pub fn experiments(&self) -> Vec<Experiment> {
        lock(&self.experiments).list()
    }

    /// Turns a flag on or off, stored; or says why it cannot be set.
    pub async fn set_experiment(&self, store: &Store, id: &ExperimentId, enabled: bool) -> Result<(), String> {
        Experiments::check_settable(id)?;
        store
            .save_setting(format!("{EXPERIMENT_KEY}{id}"), enabled.to_string())
            .await
            .map_err(|error| error.to_string())?;
        lock(&self.experiments).set(id, enabled);
        Ok(())
    }

    // ----- reflection --------------------------------------------------------------------------

    /// The reflection settings in effect for `agent_id` working in `cwd`.
    pub fn reflection(&self, agent_id: &str, cwd: &str) -> ReflectionSettings {
        lock(&self.reflection).resolve(agent_id, cwd)
    }

    /// Applies `change` for `agent_id` working in `cwd`, stored where `scope` says; the settings
    /// now in effect, or why the change is invalid or could not be stored.
    pub async fn set_reflection(
        &self,
        store: &Store,
        agent_id: &str,
        cwd: &str,
        change: &ReflectionSettingsChange,
        scope: ReflectionSettingsScope,
    ) -> Result<ReflectionSettings, String> {
        let rows = lock(&self.reflection).rows(agent_id, cwd, change, scope)?;
        store
            .save_reflection(rows.clone())
            .await
            .map_err(|error| error.to_string())?;
        let mut reflection = lock(&self.reflection);
        for row in rows {
            reflection.restore(row);
        }
        Ok(reflection.resolve(agent_id, cwd))
    }

    // ----- memory repositories -----------------------------------------------------------------

    /// Where the memory repository of `agent_id` lives (`<data dir>/memfs/<agent_id>/memory`, as
    /// real Letta's local backend lays it out).
    pub fn memory_directory(&self, agent_id: &str) -> PathBuf {
        self.memfs_root.join(agent_id).join("memory")
    }

    /// The memory repository of `agent_id`, once it was created.
    pub fn memory_repository(&self, agent_id: &str) -> Option<PathBuf> {
        lock(&self.memory_repositories)
            .contains(agent_id)
            .then(|| self.memory_directory(agent_id))
    }

    /// Records that the memory repository of `agent_id` exists (already stored).
    pub fn memory_repository_created(&self, agent_id: &str) {
        lock(&self.memory_repositories).insert(agent_id.to_owned());
    }

    /// Forgets a deleted agent (its stored rows go with the agent's): its reflection settings,
    /// and its memory repository, whose directory is removed.
    pub fn forget_agent(&self, agent_id: &str) -> std::io::Result<()> {
        lock(&self.reflection).forget(agent_id);
        let had_repository = lock(&self.memory_repositories).remove(agent_id);
        match had_repository {
            true => std::fs::remove_dir_all(self.memfs_root.join(agent_id)),
            false => Ok(()),
        }
    }
}
