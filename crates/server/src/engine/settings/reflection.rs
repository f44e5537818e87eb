//! Reflection settings, in Letta's layers (docs/protocol.md §4.9): the global layer and one layer
//! per project directory, each with defaults for every agent and settings per agent.

use std::collections::HashMap;

use letta_app_server_protocol::{
    ReflectionMergeMode, ReflectionSettings, ReflectionSettingsChange, ReflectionSettingsScope, ReflectionTriggerMode,
};
use serde::{Deserialize, Serialize};

use crate::store::ReflectionRow;

/// One layer's settings, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Layer {
    trigger: ReflectionTriggerMode,
    step_count: u64,
    merge: ReflectionMergeMode,
    merge_instructions: String,
}

impl Default for Layer {
    /// Letta's defaults: every 25 steps, merged automatically.
    fn default() -> Self {
        Self {
            trigger: ReflectionTriggerMode::StepCount,
            step_count: 25,
            merge: ReflectionMergeMode::Auto,
            merge_instructions: String::new(),
        }
    }
}

/// Every stored layer, by project directory (`""`: global), then by agent (`""`: the defaults).
#[derive(Debug, Default)]
pub(super) struct Reflection {
    layers: HashMap<String, HashMap<String, Layer>>,
}

impl Reflection {
    /// Applies a stored layer (one that does not parse is skipped).
    pub(super) fn restore(&mut self, row: ReflectionRow) {
        if let Ok(layer) = serde_json::from_str(&row.settings) {
            self.layers.entry(row.project).or_default().insert(row.agent_id, layer);
        }
    }

    /// Drops the layers of `agent_id` (it was deleted).
    pub(super) fn forget(&mut self, agent_id: &str) {
        for layers in self.layers.values_mut() {
            layers.remove(agent_id);
        }
    }

    /// The settings in effect for `agent_id` working in `project`: its own settings in the
    /// project, else its global ones, else the project's defaults, else the global defaults,
    /// else Letta's.
    pub(super) fn resolve(&self, agent_id: &str, project: &str) -> ReflectionSettings {
        let keys = [(project, agent_id), ("", agent_id), (project, ""), ("", "")];
        let layer = keys
            .iter()
            .find_map(|&(project, agent)| self.layers.get(project)?.get(agent))
            .cloned()
            .unwrap_or_default();
        ReflectionSettings {
            agent_id: agent_id.to_owned(),
            trigger: layer.trigger,
            step_count: layer.step_count,
            merge: layer.merge,
            merge_instructions: layer.merge_instructions,
        }
    }

    /// The rows `change` writes for `agent_id` working in `project`, where `scope` says (the agent's
    /// settings and the layer's defaults, as Letta writes both), or why it is invalid. An absent
    /// `merge` or `merge_instructions` keeps the one in effect; instructions are trimmed.
    pub(super) fn rows(
        &self,
        agent_id: &str,
        project: &str,
        change: &ReflectionSettingsChange,
        scope: ReflectionSettingsScope,
    ) -> Result<Vec<ReflectionRow>, String> {
        let known = |values: &[&str]| values.join(", ");
        if let ReflectionTriggerMode::Other(trigger) = &change.trigger {
            return Err(format!(
                "Unsupported reflection trigger: {trigger} (expected one of {})",
                known(ReflectionTriggerMode::KNOWN)
            ));
        }
        if let Some(ReflectionMergeMode::Other(merge)) = &change.merge {
            return Err(format!(
                "Unsupported reflection merge mode: {merge} (expected one of {})",
                known(ReflectionMergeMode::KNOWN)
            ));
        }
        if change.step_count == 0 {
            return Err("Reflection step_count must be a positive integer".into());
        }
        let current = self.resolve(agent_id, project);
        let layer = Layer {
            trigger: change.trigger.clone(),
            step_count: change.step_count,
            merge: change.merge.clone().unwrap_or(current.merge),
            merge_instructions: change
                .merge_instructions
                .as_deref()
                .map_or(current.merge_instructions, |text| text.trim().to_owned()),
        };
        let settings = serde_json::to_string(&layer).map_err(|error| error.to_string())?;
        let projects: &[&str] = match scope {
            ReflectionSettingsScope::LocalProject => &[project],
            ReflectionSettingsScope::Global => &[""],
            ReflectionSettingsScope::Both => &[project, ""],
        };
        Ok(projects
            .iter()
            .flat_map(|project| [(*project, ""), (*project, agent_id)])
            .map(|(project, agent)| ReflectionRow {
                project: project.to_owned(),
                agent_id: agent.to_owned(),
                settings: settings.clone(),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use letta_app_server_protocol::{
        ReflectionMergeMode, ReflectionSettingsChange, ReflectionSettingsScope, ReflectionTriggerMode,
    };

    use super::Reflection;

    fn change(step_count: u64) -> ReflectionSettingsChange {
        ReflectionSettingsChange {
            trigger: ReflectionTriggerMode::StepCount,
            step_count,
            merge: None,
            merge_instructions: None,
        }
    }

    fn apply(reflection: &mut Reflection, agent: &str, project: &str, step_count: u64, scope: ReflectionSettingsScope) {
        let rows = reflection
            .rows(agent, project, &change(step_count), scope)
            .expect("valid");
        for row in rows {
            reflection.restore(row);
        }
    }

    /// An agent's own settings in the project beat its global ones, which beat the project's
    /// defaults, which beat the global defaults, which beat Letta's.
    #[test]
    fn layers_resolve_in_letta_order() {
        let mut reflection = Reflection::default();
        let steps = |reflection: &Reflection, agent: &str, project: &str| reflection.resolve(agent, project).step_count;
        assert_eq!(steps(&reflection, "a", "/p"), 25, "Letta's default");
        apply(&mut reflection, "a", "/p", 10, ReflectionSettingsScope::Global);
        assert_eq!(
            steps(&reflection, "b", "/q"),
            10,
            "the global defaults reach every agent"
        );
        apply(&mut reflection, "b", "/p", 20, ReflectionSettingsScope::LocalProject);
        assert_eq!(
            steps(&reflection, "c", "/p"),
            20,
            "the project's defaults beat the global ones"
        );
        assert_eq!(
            steps(&reflection, "a", "/p"),
            10,
            "an agent's global settings beat the project's defaults"
        );
        apply(&mut reflection, "a", "/p", 30, ReflectionSettingsScope::LocalProject);
        assert_eq!(
            steps(&reflection, "a", "/p"),
            30,
            "its own in the project beat them all"
        );
        assert_eq!(steps(&reflection, "a", "/q"), 10, "elsewhere its global ones apply");
        assert_eq!(reflection.resolve("a", "/p").merge, ReflectionMergeMode::Auto);
    }
}
