//! Subagents (docs/protocol.md §3.14, §4.16): an agent hands a task to another agent, which works
//! on a conversation of its own while its parent goes on, and reports back once.
//!
//! A subagent is an ordinary conversation runtime of this server (a new hidden agent of the
//! subagent type, or a deployed agent or conversation) whose turn starts from a queue item of
//! source `subagent`. What makes it a subagent is its [`Run`], registered here before that turn
//! starts:
//!
//! * the turn runs `unrestricted` (no approval reaches anyone, as in Letta) with the type's tools;
//! * each message it streams reaches the **parent's** subscribers as a `stream_delta` with
//!   `subagent_id` (see [`Subagents::forward`]), and is appended to its output file;
//! * the parent's subscribers get the parent's whole subagent list in `update_subagent_state`
//!   at every change, and `device_status.background_processes` lists the running background
//!   ones as `agent_task`;
//! * its end is reported to the parent: a foreground `Agent` call returns the report; a
//!   background one queues a `task_notification` item on the parent conversation, which starts a
//!   turn there when it is idle (none for `launch_subagent`'s `notify: "caller"`, whose report is
//!   the snapshot's `result`, nor for a subagent stopped by `TaskStop`).
//!
//! Bounds: [`MAX_DEPTH`] levels of subagents, [`MAX_RUNNING_PER_CONVERSATION`] running (or being
//! launched) per parent conversation and [`MAX_RUNNING`] in the server; finished subagents stay
//! listed for [`KEPT_FOR`] (at most [`KEPT_PER_CONVERSATION`] per parent); the newest
//! [`MAX_OUTPUT_FILES`] output files are kept. Runs live in memory: a subagent running when the
//! server stops is stopped with it (its conversation keeps what it did).
//!
//! * `run` — one [`Run`]: its progress, snapshot, end and output file;
//! * `lifecycle` — started, messages forwarded, finished, stopped, forgotten;
//! * [`kinds`] — the subagent types; `texts` — the results and notifications the model reads;
//! * `tasks` — [`ConversationTasks`], what the tools reach.
//!
//! Launching is the engine's ([`Engine::launch_subagent`], in `engine::delegate`): it makes
//! conversations.

pub(crate) mod kinds;
mod lifecycle;
mod run;
mod tasks;
mod texts;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use letta_app_server_protocol::{
    AgentTaskProcess, BackgroundProcess, RuntimeEvent, RuntimeScope, SubagentStatus, UpdateSubagentState,
};
use tokio::sync::watch;

use super::Engine;
use super::clients::Audience;
use crate::sync::lock;
use run::Progress;
pub(crate) use run::{Finished, Run};
pub(crate) use tasks::ConversationTasks;

/// How many levels of subagents there may be: a conversation's subagents are at depth 1, theirs
/// at depth 2, which get no `Agent` tool (Letta's `MAX_SUBAGENT_DEPTH`).
pub const MAX_DEPTH: u32 = 2;
/// Subagents running at once for one parent conversation, foreground and background.
pub const MAX_RUNNING_PER_CONVERSATION: usize = 8;
/// Subagents running at once in the server (Letta's limit of background tasks per process).
pub const MAX_RUNNING: usize = 32;
/// How long a finished subagent stays in its parent's `update_subagent_state` (Letta: 30 s; longer
/// here, so that a client reconnecting soon after still sees how it ended).
pub const KEPT_FOR: Duration = Duration::from_secs(300);
/// Finished subagents listed per parent at most (the oldest go first).
pub const KEPT_PER_CONVERSATION: usize = 16;
/// Output files kept in `<data dir>/tasks` (the oldest go first).
pub const MAX_OUTPUT_FILES: usize = 256;

/// What to launch, from an `Agent` call or a `launch_subagent` command.
#[derive(Debug, Clone)]
pub(crate) struct Launch {
    /// The launching conversation (without an acting user).
    pub(crate) parent: RuntimeScope,
    /// The type; `general-purpose` when not given.
    pub(crate) subagent_type: Option<String>,
    pub(crate) prompt: String,
    pub(crate) description: String,
    /// A model handle for a new subagent (else the parent's model).
    pub(crate) model: Option<String>,
    /// Deploy this agent, on a new conversation.
    pub(crate) agent_id: Option<String>,
    /// Deploy this conversation.
    pub(crate) conversation_id: Option<String>,
    pub(crate) background: bool,
    pub(crate) tool_call_id: Option<String>,
    /// `launch_subagent`'s `notify: "caller"`.
    pub(crate) notify_caller: bool,
    /// The `client_message_id` of its input (else `cm-subagent-<uuid>`).
    pub(crate) input_id: Option<String>,
    /// Model runs its turn may take at most.
    pub(crate) max_turns: Option<u64>,
}

/// The runs, and the launches under way (which count against the bounds).
#[derive(Default)]
struct Registry {
    runs: Vec<Arc<Run>>,
    /// The parent of each launch between [`Subagents::reserve`] and [`Subagents::register`].
    launching: Vec<RuntimeScope>,
}

/// The server's subagents.
pub struct Subagents {
    /// The registry of conversation runtimes, to load the subagents' and parents' conversations.
    engine: OnceLock<Weak<Engine>>,
    audience: Arc<dyn Audience>,
    /// Where output files go (`<data dir>/tasks`).
    directory: PathBuf,
    registry: Mutex<Registry>,
    /// Numbers `task_N` and the subagent ids.
    next: AtomicU64,
}

impl std::fmt::Debug for Subagents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subagents")
            .field("runs", &lock(&self.registry).runs.len())
            .finish_non_exhaustive()
    }
}

/// A launch's place within the bounds, held from its checks until its run is registered (or it
/// failed, when dropped).
pub(crate) struct Reservation<'a> {
    subagents: &'a Subagents,
    parent: Option<RuntimeScope>,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if let Some(parent) = self.parent.take() {
            let mut registry = lock(&self.subagents.registry);
            if let Some(at) = registry.launching.iter().position(|p| *p == parent) {
                registry.launching.remove(at);
            }
        }
    }
}

impl Subagents {
    /// No subagents yet; their output files go to `<data_dir>/tasks`.
    pub(crate) fn new(data_dir: &std::path::Path, audience: Arc<dyn Audience>) -> Self {
        Self {
            engine: OnceLock::new(),
            audience,
            directory: data_dir.join("tasks"),
            registry: Mutex::default(),
            next: AtomicU64::new(1),
        }
    }

    /// Gives it the registry of conversation runtimes (once, when the engine is made).
    pub(crate) fn bind(&self, engine: &Arc<Engine>) {
        let _ = self.engine.set(Arc::downgrade(engine));
    }

    fn engine(&self) -> Result<Arc<Engine>, String> {
        (self.engine.get().and_then(Weak::upgrade)).ok_or_else(|| "The server is stopping".to_owned())
    }

    /// The `update_subagent_state` of `scope`: its subagents, oldest first.
    pub(crate) fn state_of(&self, scope: &RuntimeScope) -> RuntimeEvent {
        state_in(&lock(&self.registry).runs, scope)
    }

    /// Sends `parent`'s subagent list to its subscribers. Under the registry's lock, so that the
    /// lists reach them in the order of the changes.
    fn publish(&self, parent: &RuntimeScope) {
        let registry = lock(&self.registry);
        self.broadcast_state(&registry.runs, parent);
    }

    fn broadcast_state(&self, runs: &[Arc<Run>], parent: &RuntimeScope) {
        self.audience.broadcast(parent, &state_in(runs, parent));
    }

    /// The running background subagents of `scope`, for `device_status.background_processes`
    /// (newest first, as in Letta).
    pub(crate) fn processes_of(&self, scope: &RuntimeScope) -> Vec<BackgroundProcess> {
        let registry = lock(&self.registry);
        (registry.runs.iter().rev())
            .filter(|run| run.parent == *scope && run.background && !run.is_finished())
            .map(|run| {
                BackgroundProcess::AgentTask(AgentTaskProcess {
                    process_id: run.task_id.clone(),
                    task_type: run.kind.clone(),
                    description: run.description.clone(),
                    started_at_ms: run.start_time,
                    status: "running".into(),
                    subagent_id: Some(run.subagent_id.clone()),
                    error: None,
                })
            })
            .collect()
    }

    /// The depth of `scope`: that of the running subagent it is the conversation of, else 0.
    pub(crate) fn depth_of(&self, scope: &RuntimeScope) -> u32 {
        let registry = lock(&self.registry);
        (registry.runs.iter())
            .find(|run| run.child == *scope && !run.is_finished())
            .map_or(0, |run| run.depth)
    }

    /// The unfinished subagent whose input is among `client_ids` of a turn of `scope`.
    pub(crate) fn run_of_turn(&self, scope: &RuntimeScope, client_ids: &[String]) -> Option<Arc<Run>> {
        let registry = lock(&self.registry);
        (registry.runs.iter())
            .find(|run| run.child == *scope && client_ids.contains(&run.input_id) && !run.is_finished())
            .cloned()
    }

    /// The task `task_id` that `parent` launched.
    pub(crate) fn task(&self, parent: &RuntimeScope, task_id: &str) -> Option<Arc<Run>> {
        let registry = lock(&self.registry);
        (registry.runs.iter())
            .find(|run| run.parent == *parent && run.task_id == task_id)
            .cloned()
    }

    /// A place for a launch from `parent`, or why there is none: past
    /// [`MAX_RUNNING_PER_CONVERSATION`] or [`MAX_RUNNING`] (in Letta's words).
    pub(crate) fn reserve(&self, parent: &RuntimeScope) -> Result<Reservation<'_>, String> {
        let mut registry = lock(&self.registry);
        let running: Vec<&RuntimeScope> = (registry.runs.iter())
            .filter(|run| !run.is_finished())
            .map(|run| &run.parent)
            .chain(&registry.launching)
            .collect();
        let here = running.iter().filter(|p| **p == parent).count();
        if here >= MAX_RUNNING_PER_CONVERSATION {
            return Err(format!(
                "Too many subagents already running in this conversation ({here}/{MAX_RUNNING_PER_CONVERSATION}). \
                 Wait for one to finish before starting another."
            ));
        }
        if running.len() >= MAX_RUNNING {
            return Err(format!(
                "Too many background tasks already running ({}/{MAX_RUNNING}). Wait for one to finish before \
                 starting another.",
                running.len()
            ));
        }
        registry.launching.push(parent.clone());
        Ok(Reservation {
            subagents: self,
            parent: Some(parent.clone()),
        })
    }

    /// Registers the run of `launch` in its `reservation` (a subagent of type `kind` working in
    /// `child`): `pending`, with an output file, in the parent's snapshot; or why not (no file).
    pub(crate) fn register(
        &self,
        mut reservation: Reservation<'_>,
        launch: &Launch,
        kind: &str,
        child: RuntimeScope,
        depth: u32,
        model: Option<String>,
    ) -> Result<Arc<Run>, String> {
        let (task_id, subagent_id) = self.ids();
        let output_file = self.directory.join(format!("{subagent_id}.log"));
        let listed: Vec<PathBuf> = (lock(&self.registry).runs.iter())
            .map(|run| run.output_file.clone())
            .collect();
        crate::private_file::prune(&self.directory, MAX_OUTPUT_FILES - 1, &listed);
        let output = crate::private_file::create(&output_file)
            .map_err(|error| format!("Could not create the output file {}: {error}", output_file.display()))?;
        let (done, _) = watch::channel(false);
        let run = Arc::new(Run {
            task_id,
            subagent_id,
            kind: kind.to_owned(),
            description: launch.description.clone(),
            prompt: launch.prompt.clone(),
            parent: launch.parent.clone(),
            child,
            input_id: (launch.input_id.clone()).unwrap_or_else(|| crate::clock::new_id("cm-subagent")),
            depth,
            background: launch.background,
            notify_caller: launch.notify_caller,
            tool_call_id: launch.tool_call_id.clone(),
            model,
            output_file,
            start_time: crate::clock::now_millis(),
            started: Instant::now(),
            progress: Mutex::new(Progress {
                status: SubagentStatus::Pending,
                tool_calls: Vec::new(),
                total_tokens: 0,
                stopped: false,
                finished: None,
                announced: false,
                output: Some((std::io::BufWriter::new(output), 0)),
            }),
            done,
        });
        let mut registry = lock(&self.registry);
        // The reservation becomes the run, in one step.
        if let Some(parent) = reservation.parent.take()
            && let Some(at) = registry.launching.iter().position(|p| *p == parent)
        {
            registry.launching.remove(at);
        }
        registry.runs.push(run.clone());
        self.broadcast_state(&registry.runs, &launch.parent);
        Ok(run)
    }

    /// Drops a run whose turn could not start, with its output file.
    pub(crate) fn unregister(&self, run: &Arc<Run>) {
        lock(&run.progress).output = None;
        let _ = std::fs::remove_file(&run.output_file);
        self.remove(run);
    }

    /// Drops `run` from its parent's list.
    fn remove(&self, run: &Arc<Run>) {
        let mut registry = lock(&self.registry);
        let before = registry.runs.len();
        registry.runs.retain(|r| !Arc::ptr_eq(r, run));
        if registry.runs.len() != before {
            self.broadcast_state(&registry.runs, &run.parent);
        }
    }

    /// How many runs have not reported their end yet (the server waits for them when it stops).
    pub(crate) fn unannounced(&self) -> usize {
        let registry = lock(&self.registry);
        (registry.runs.iter())
            .filter(|run| !lock(&run.progress).announced)
            .count()
    }

    /// The tasks of the conversation `scope`, for its turn's tools.
    pub(crate) fn tasks_of(&self, scope: &RuntimeScope) -> ConversationTasks {
        ConversationTasks {
            engine: self.engine.get().cloned().unwrap_or_default(),
            scope: scope.clone(),
        }
    }

    /// Tells `parent`'s subscribers that its background processes changed.
    pub(crate) async fn processes_changed(&self, parent: &RuntimeScope) {
        if let Ok(engine) = self.engine()
            && let Some(conversation) = engine.loaded_conversation(parent)
        {
            conversation.settings_changed(&engine).await;
        }
    }

    /// A new `task_N` and `subagent-<ms>-<n>`.
    fn ids(&self) -> (String, String) {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        (
            format!("task_{n}"),
            format!("subagent-{}-{n}", crate::clock::now_millis()),
        )
    }
}

/// The `update_subagent_state` of `scope` among `runs`.
fn state_in(runs: &[Arc<Run>], scope: &RuntimeScope) -> RuntimeEvent {
    let subagents = (runs.iter())
        .filter(|run| run.parent == *scope)
        .map(|run| run.snapshot())
        .collect();
    UpdateSubagentState { subagents }.into()
}
