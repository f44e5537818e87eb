//! What every conversation runtime shares: configuration, the store, the model providers, the
//! local and external tools, the clients watching, the file indexes of `search_files`, the
//! agents' secrets, the scheduled prompts' clock.
//! Conversations, turns and the toolbox take a [`Context`], never the registry that holds them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::config::Config;
use crate::engine::clients::Audience;
use crate::engine::external::ExternalTools;
use crate::engine::settings::Settings;
use crate::metrics::Metrics;
use crate::provider::{Providers, ToolSpec};
use crate::search::index::FileIndexes;
use crate::secrets::Secrets;
use crate::store::Store;
use crate::tools::LocalTool;

/// A local tool and what the model is told about it, built once when the server starts: a
/// tool's schema is a few KB of JSON, and building every schema for every turn was a tenth of a
/// turn start's CPU.
#[derive(Clone)]
pub struct LoadedTool {
    /// The tool.
    pub tool: Arc<dyn LocalTool>,
    /// Its name, description and parameters for the model.
    pub spec: Arc<ToolSpec>,
}

impl LoadedTool {
    /// Loads `tool`, building its spec.
    pub fn new(tool: Box<dyn LocalTool>) -> Self {
        let spec = Arc::new(ToolSpec::new(
            tool.name().to_owned(),
            tool.description().to_owned(),
            &tool.parameters(),
        ));
        Self {
            tool: Arc::from(tool),
            spec,
        }
    }
}

/// What the conversation runtimes share.
pub struct Context {
    /// Configuration.
    pub config: Config,
    /// The durable store.
    pub store: Store,
    /// Model providers.
    pub providers: Providers,
    /// The local tools.
    pub tools: Vec<LoadedTool>,
    /// Controller-owned tools and their calls in flight.
    pub external: ExternalTools,
    /// The clients watching.
    pub audience: Arc<dyn Audience>,
    /// Server-wide settings (shared with every conversation's state, for its device status).
    pub settings: Arc<Settings>,
    /// Agents' secrets.
    pub secrets: Secrets,
    /// The server's skills directory.
    pub skills: crate::skills::Skills,
    /// Scheduled prompts: their clock, and the lock of their changes.
    pub crons: crate::schedule::Crons,
    /// Subagents launched by the conversations.
    pub subagents: Arc<crate::engine::subagents::Subagents>,
    /// Background shell commands of the conversations.
    pub shells: Arc<crate::engine::shells::Shells>,
    /// The file indexes of `search_files`, one per directory searched (bounded; see
    /// [`crate::search::index`]).
    pub file_indexes: FileIndexes,
    /// The server's metrics.
    pub metrics: Arc<Metrics>,
    /// Set once the server is stopping: no new turn starts from the queue.
    stopping: AtomicBool,
}

impl Context {
    /// The shared parts over an open store, whose events go to `audience`.
    pub fn new(config: Config, store: Store, audience: Arc<dyn Audience>) -> Self {
        let metrics = store.metrics().clone();
        let providers = Providers::new(
            config.providers.clone(),
            config.data_dir.join("providers"),
            metrics.clone(),
        );
        let settings = Arc::new(Settings::new(&config));
        let secrets = Secrets::open(&config.data_dir);
        Self {
            crons: crate::schedule::Crons::new(config.cron_clock.clone()),
            skills: crate::skills::Skills::new(&config.data_dir),
            shells: Arc::new(crate::engine::shells::Shells::new(&config.data_dir)),
            subagents: Arc::new(crate::engine::subagents::Subagents::new(
                &config.data_dir,
                audience.clone(),
            )),
            config,
            store,
            providers,
            tools: crate::tools::all().into_iter().map(LoadedTool::new).collect(),
            external: ExternalTools::default(),
            audience,
            settings,
            secrets,
            file_indexes: FileIndexes::default(),
            metrics,
            stopping: AtomicBool::new(false),
        }
    }

    /// Marks the server as stopping: no turn starts any more, and inputs are refused.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    /// Whether the server is stopping (waiting queue items then stay queued, in the store).
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }
}
