//! The tools one turn offers the model: local tools of the toolset, narrowed or extended by the
//! `input`'s options, plus the controller-owned tools visible to the turn (docs/protocol.md §3.3,
//! §3.11, §6.2).

use std::path::Path;
use std::sync::Arc;

use letta_app_server_protocol::{
    ClientPreferences, ClientToolset, CreateMessage, DiffPreview, ImageFailureMode, Input, JsonObject, ToolsetName,
    ToolsetPreference,
};
use serde::{Deserialize, Serialize};

use super::clients::SessionId;
use super::context::{Context, LoadedTool};
use super::external::Registration;
use crate::permissions::Subject;
use crate::provider::ToolSpec;
use crate::tools::{DEFAULT_TOOLSET, ToolKind, opted_in};

/// The per-turn options of a `create_message` input (stored with its queue items).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct TurnOptions {
    allowlist: Option<Vec<String>>,
    toolset: Option<ClientToolset>,
    scope_ids: Vec<String>,
    exclude_interactive: bool,
    /// Only inputs with the same mode are merged into one turn.
    pub(crate) image_failure_mode: Option<ImageFailureMode>,
    /// The input's `terminal_consumer_id`, echoed by its turn's `turn_finished`.
    #[serde(default)]
    pub(crate) terminal_consumer: Option<String>,
    /// Bundled tools the conversation's `client_preferences` add (known names, checked when
    /// the input was taken in).
    #[serde(default)]
    preferred: Vec<String>,
    /// Model runs the turn may take at most (a subagent's `max_turns`).
    #[serde(default)]
    pub(crate) max_runs: Option<u64>,
    /// Only local tools, none of the controllers' (a subagent's turn).
    #[serde(default)]
    local_only: bool,
}

impl TurnOptions {
    /// The options of `input`, whose payload is `payload`, with the conversation's preferred
    /// tools.
    pub(crate) fn new(input: &Input, payload: &CreateMessage, preferred: Vec<String>) -> Self {
        Self {
            allowlist: payload.client_tool_allowlist.clone(),
            toolset: payload.client_toolset.clone(),
            scope_ids: payload.external_tool_scope_ids.clone().unwrap_or_default(),
            exclude_interactive: payload.exclude_interactive_tools.unwrap_or(false),
            image_failure_mode: payload.image_failure_mode,
            terminal_consumer: input.terminal_consumer_id.clone(),
            preferred,
            max_runs: None,
            local_only: false,
        }
    }

    /// The options of a subagent's turn: exactly `tools` (no interactive ones, no controller's
    /// tools), at most `max_runs` model runs.
    pub(crate) fn subagent(tools: Vec<String>, max_runs: Option<u64>) -> Self {
        Self {
            allowlist: Some(tools),
            // Whatever the conversation's toolset preference (the allowlist names the tools).
            toolset: Some(ClientToolset {
                base: Some(ToolsetPreference::Default),
                include: None,
            }),
            exclude_interactive: true,
            max_runs,
            local_only: true,
            ..Self::default()
        }
    }

    /// The options of a turn without an input of its own: the conversation's preferred tools.
    pub(crate) fn preferring(preferences: &ClientPreferences) -> Self {
        Self {
            preferred: preferences.toolset.iter().flat_map(|t| t.include.clone()).collect(),
            ..Self::default()
        }
    }
}

/// The toolset a preference selects on this server: `auto` and `default` select the default
/// toolset, `none` none; the others are not available here.
pub(crate) fn toolset_for(preference: &ToolsetPreference) -> Result<ToolsetName, String> {
    match preference {
        ToolsetPreference::Auto | ToolsetPreference::Default => Ok(ToolsetName::Default),
        ToolsetPreference::None => Ok(ToolsetName::None),
        other => Err(format!(
            "toolset `{other}` is not available on this server; use `auto`, `default` or `none`"
        )),
    }
}

/// A tool a turn offers.
#[derive(Clone)]
pub(crate) enum ToolRef {
    /// Run by this server.
    Local(LoadedTool),
    /// Run by the controller that registered it.
    External(Registration),
}

impl ToolRef {
    fn name(&self) -> &str {
        match self {
            Self::Local(loaded) => loaded.tool.name(),
            Self::External(registration) => &registration.tool.name,
        }
    }

    /// How permission modes treat it.
    pub(crate) fn subject(&self) -> Subject {
        match self {
            Self::Local(loaded) => Subject::Local(loaded.tool.kind()),
            Self::External(_) => Subject::External,
        }
    }

    /// A preview of its file changes, for the approval question.
    pub(crate) fn preview(&self, args: &JsonObject, cwd: &Path) -> Option<Vec<DiffPreview>> {
        match self {
            Self::Local(loaded) => loaded.tool.preview(args, cwd),
            Self::External(_) => None,
        }
    }

    fn spec(&self) -> Arc<ToolSpec> {
        match self {
            Self::Local(loaded) => loaded.spec.clone(),
            Self::External(registration) => Arc::new(ToolSpec::new(
                registration.tool.name.clone(),
                registration.tool.description.clone(),
                &registration.tool.parameters,
            )),
        }
    }
}

/// The tools of one turn.
#[derive(Clone)]
pub(crate) struct TurnTools {
    toolset: ToolsetName,
    tools: Vec<ToolRef>,
    specs: Arc<[Arc<ToolSpec>]>,
}

impl Default for TurnTools {
    /// No tools: the `none` toolset.
    fn default() -> Self {
        Self {
            toolset: ToolsetName::None,
            tools: Vec::new(),
            specs: Arc::new([]),
        }
    }
}

impl TurnTools {
    /// Chooses the tools for a turn of `scope` started by `origin` (if a connected session
    /// started it), from the toolset its `client_toolset.base` names, else the conversation's
    /// `preference`; an unavailable toolset or an unknown tool in `client_toolset.include` fails
    /// the turn.
    pub(crate) fn select(
        engine: &Context,
        scope: &letta_app_server_protocol::RuntimeScope,
        options: &TurnOptions,
        origin: Option<SessionId>,
        preference: &ToolsetPreference,
    ) -> Result<Self, String> {
        let local = |id: &str| engine.tools.iter().find(|loaded| loaded.tool.id() == id).cloned();
        let base = options.toolset.as_ref().and_then(|toolset| toolset.base.as_ref());
        let toolset = toolset_for(base.unwrap_or(preference))?;
        let mut names: Vec<String> = match toolset {
            ToolsetName::Default => DEFAULT_TOOLSET.iter().map(|n| (*n).to_owned()).collect(),
            _ => Vec::new(),
        };
        for name in options.toolset.iter().flat_map(|t| t.include.iter().flatten()) {
            if local(name).is_none() {
                return Err(format!("unknown tool `{name}` in client_toolset.include"));
            }
            names.push(name.clone());
        }
        names.extend(options.preferred.iter().cloned());
        if let Some(allowlist) = &options.allowlist {
            // Naming a tool in the allowlist also loads it.
            names = allowlist.iter().filter(|name| local(name).is_some()).cloned().collect();
        }
        let mut tools: Vec<ToolRef> = Vec::new();
        for name in names {
            // A tool the conversation's `client_preferences` name is its opted-in version (0.34's
            // asynchronous `AskUserQuestion`), whichever list named it.
            let id = if options.preferred.contains(&name) {
                opted_in(&name)
            } else {
                &name
            };
            if let Some(loaded) = local(id)
                && !(options.exclude_interactive
                    && matches!(loaded.tool.kind(), ToolKind::Interactive | ToolKind::Posting))
                && !tools.iter().any(|t| t.name() == loaded.tool.name())
            {
                tools.push(ToolRef::Local(loaded));
            }
        }
        // A controller's tool replaces a local one of the same name (visible ones have unique names).
        let external: Vec<Registration> = engine
            .external
            .visible(scope, origin, &options.scope_ids)
            .into_iter()
            .filter(|registration| {
                !options.local_only
                    && (options.allowlist.as_ref()).is_none_or(|allowed| allowed.contains(&registration.tool.name))
            })
            .collect();
        let replaced: std::collections::HashSet<&str> = external.iter().map(|r| r.tool.name.as_str()).collect();
        tools.retain(|tool| !replaced.contains(tool.name()));
        tools.extend(external.into_iter().map(ToolRef::External));
        let specs = tools.iter().map(ToolRef::spec).collect();
        Ok(Self { toolset, tools, specs })
    }

    /// The toolset they come from.
    pub(crate) fn toolset(&self) -> ToolsetName {
        self.toolset.clone()
    }

    /// What the model is told about the tools.
    pub(crate) fn specs(&self) -> Arc<[Arc<ToolSpec>]> {
        self.specs.clone()
    }

    /// Their model-facing names.
    pub(crate) fn names(&self) -> Vec<String> {
        self.tools.iter().map(|t| t.name().to_owned()).collect()
    }

    /// The tool with this model-facing name.
    pub(crate) fn find(&self, name: &str) -> Option<&ToolRef> {
        self.tools.iter().find(|t| t.name() == name)
    }
}
