//! The experiment flags: Letta 0.34.12's catalogue (ids, labels, descriptions, environment
//! variables) and how a flag's state is decided (docs/protocol.md §4.9).

use std::collections::{BTreeMap, HashSet};

use letta_app_server_protocol::{Experiment, ExperimentId, ExperimentSource};

/// One flag of the catalogue.
struct Definition {
    id: &'static str,
    label: &'static str,
    description: &'static str,
    env_var: Option<&'static str>,
}

/// Letta 0.34.12's experiment catalogue, in its order (every device status lists it).
const CATALOGUE: [Definition; 7] = [
    Definition {
        id: "artifacts",
        label: "artifacts",
        description: "Expose Letta Code Desktop artifact creation tools and artifact UI surfaces.",
        env_var: Some("LETTA_ARTIFACTS"),
    },
    Definition {
        id: "conversation_titles",
        label: "conversation titles",
        description: "Generate AI conversation titles automatically when possible.",
        env_var: None,
    },
    Definition {
        id: "desktop_conversation_bootstrap",
        label: "conversation bootstrap",
        description: "Inject lightweight prior-conversation context into the first turn of brand-new Letta Code \
                      conversations.",
        env_var: None,
    },
    Definition {
        id: "diffs",
        label: "diffs",
        description: "Open browser-based worktree diff previews powered by Diffs from Pierre.",
        env_var: None,
    },
    Definition {
        id: "memory_palace",
        label: "memory palace",
        description: "Opt-in memory palace experiment flag for disposable local listener runs. Disabled by default; \
                      no behavior changes unless consumers gate on it.",
        env_var: Some("LETTA_MEMORY_PALACE"),
    },
    Definition {
        id: "reflection_arena",
        label: "reflection arena",
        description: "Run blind A/B comparisons between reflection models on the same transcript sample.",
        env_var: Some("LETTA_REFLECTION_ARENA"),
    },
    Definition {
        id: "tui_cron",
        label: "TUI cron scheduler",
        description: "Fire scheduled tasks from the CLI when the desktop app isn't running.",
        env_var: None,
    },
];

/// The flags `set_experiment` accepts (Letta 0.34.12's); the others are listed but not set
/// over the protocol.
const SETTABLE: [&str; 4] = [
    "conversation_titles",
    "desktop_conversation_bootstrap",
    "memory_palace",
    "tui_cron",
];

/// The flag whose state real Letta keeps as a plain setting: it always reads as decided by its
/// default, with no override.
const PLAIN_SETTING: &str = "conversation_titles";

/// The experiment flags: the stored overrides, and the flags their environment variable turned
/// on when the server started.
#[derive(Debug, Default)]
pub(super) struct Experiments {
    overrides: BTreeMap<String, bool>,
    from_env: HashSet<&'static str>,
}

impl Experiments {
    /// No overrides; the environment variables read now (`1`, `true` or `yes` turns a flag on).
    pub(super) fn from_env() -> Self {
        let on = |var: &str| {
            std::env::var(var).is_ok_and(|value| matches!(value.trim().to_lowercase().as_str(), "1" | "true" | "yes"))
        };
        let from_env = CATALOGUE
            .iter()
            .filter(|definition| definition.env_var.is_some_and(on))
            .map(|definition| definition.id)
            .collect();
        Self {
            overrides: BTreeMap::new(),
            from_env,
        }
    }

    /// Applies a stored override.
    pub(super) fn restore(&mut self, id: &str, enabled: bool) {
        if CATALOGUE.iter().any(|definition| definition.id == id) {
            self.overrides.insert(id.to_owned(), enabled);
        }
    }

    /// Why `id` cannot be set, if it cannot: Letta's text for an id outside the catalogue, ours
    /// for one it lists but does not let clients set.
    pub(super) fn check_settable(id: &ExperimentId) -> Result<(), String> {
        let id = id.as_str();
        if !CATALOGUE.iter().any(|definition| definition.id == id) {
            return Err(format!("Unknown experiment: {id}"));
        }
        if !SETTABLE.contains(&id) {
            return Err(format!(
                "Experiment {id} cannot be set over the App Server; it accepts {}",
                SETTABLE.join(", ")
            ));
        }
        Ok(())
    }

    /// Records an override (already checked and stored).
    pub(super) fn set(&mut self, id: &ExperimentId, enabled: bool) {
        self.overrides.insert(id.as_str().to_owned(), enabled);
    }

    /// Every flag, in the catalogue's order.
    pub(super) fn list(&self) -> Vec<Experiment> {
        CATALOGUE.iter().map(|definition| self.snapshot(definition)).collect()
    }

    fn snapshot(&self, definition: &Definition) -> Experiment {
        let overridden = self.overrides.get(definition.id).copied();
        let (enabled, source, override_value) = match overridden {
            _ if definition.id == PLAIN_SETTING => (overridden.unwrap_or(false), ExperimentSource::Default, None),
            Some(enabled) => (enabled, ExperimentSource::Override, Some(enabled)),
            None if self.from_env.contains(definition.id) => (true, ExperimentSource::Env, None),
            None => (false, ExperimentSource::Default, None),
        };
        Experiment {
            id: ExperimentId::from(definition.id),
            label: definition.label.into(),
            description: definition.description.into(),
            env_var: definition.env_var.map(str::to_owned),
            enabled,
            source,
            override_value,
        }
    }
}
