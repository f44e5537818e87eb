//! What the server does with each client frame (docs/protocol.md §3), and with frames it cannot
//! accept (§1.8, plus this project's `error` frame).
//!
//! A frame is parsed and checked against [`crate::limits`] here, then handed to the handler of
//! its command group, one module per group:
//!
//! * [`info`] — `app_server_info`.
//! * `runtime` — `runtime_start`, `sync`, `change_device_state`.
//! * `input` — `input`, `remove_queue_item`, `abort_message`, `resume_queue`.
//! * `external_tools` — `runtime_external_tools_update`, `external_tool_call_response`.
//! * `slash` — `execute_command`.
//! * `conversations` — `conversation_list`, `_retrieve`, `_create`, `_update`,
//!   `_messages_list`, `_fork`, `_compact`, `_recompile` (Letta parameter objects read by
//!   `params`).
//! * `agents` — `agent_list`, `agent_retrieve`, `agent_create`, `agent_update`,
//!   `agent_delete`, `create_agent`.
//! * `models` — `list_models`, `update_model`, `update_toolset`.
//! * `providers` — `list_connect_providers`, `connect_provider`, `disconnect_provider`.
//! * `cwd` — `set_boot_working_directory`, `get_cwd_map`.
//! * `files` — `list_in_directory`, `get_tree`, `read_file`, `write_file`, `edit_file`,
//!   `file_ops`.
//! * `search` — `search_files`, `grep_in_files`.
//! * [`watch`] — `watch_file`, `unwatch_file`.
//! * `memory` — `enable_memfs`, `list_memory`, `read_memory_file`, `write_memory_file`,
//!   `delete_memory_file`, `memory_history`, `memory_file_at_ref`, `memory_commit_diff`.
//! * `git` — `search_branches`, `checkout_branch`.
//! * [`terminal`] — `terminal_spawn`, `terminal_input`, `terminal_resize`, `terminal_kill`.
//! * `settings` — `get_reflection_settings`, `set_reflection_settings`, `get_experiments`,
//!   `set_experiment`.
//! * `secrets` — `secret_list`, `secret_apply`.
//! * `skills` — `skill_enable`, `skill_disable`.
//! * `subagents` — `launch_subagent`, `monitor_stop`.
//! * `cron` — `cron_list`, `cron_add`, `cron_get`, `cron_runs`, `cron_trigger`, `cron_pause`,
//!   `cron_resume`, `cron_update`, `cron_delete`, `cron_delete_all`.
//!
//! Every other command of the protocol table is answered at once as unsupported
//! ([`IMPLEMENTED`] lists the ones above): with its own response saying so when the table marks
//! it `refuses` and it carried a `request_id`, otherwise with an `error` frame of code
//! `unsupported`. A command added to the table is thus never met with silence.
//!
//! Handlers see their client as a [`Caller`]: the [`Peer`] they answer, plus a way to
//! subscribe it to a scope. The sessions layer implements it.

mod agents;
mod conversations;
mod cron;
mod cwd;
mod external_tools;
mod files;
mod git;
pub(crate) mod info;
mod input;
mod memory;
mod models;
mod params;
mod providers;
mod runtime;
mod search;
mod secrets;
mod settings;
mod skills;
mod slash;
mod subagents;
pub mod terminal;
pub mod watch;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use letta_app_server_protocol::{
    AbortMessage, AgentCreate, AgentDelete, AgentList, AgentRetrieve, AgentUpdate, AppServerInfo, ChangeDeviceState,
    CheckoutBranch, ClientFrame, ConnectProvider, ConversationCompact, ConversationCreate, ConversationFork,
    ConversationList, ConversationMessagesList, ConversationRecompile, ConversationRetrieve, ConversationUpdate,
    CreateAgentCommand, CronAdd, CronDelete, CronDeleteAll, CronGet, CronList, CronPause, CronResume, CronRuns,
    CronTrigger, CronUpdate, DeleteMemoryFile, DisconnectProvider, ECHOED_ID_BYTES, EditFile, EnableMemfs, ErrorCode,
    ErrorFrame, ExecuteCommand, ExternalToolCallResponse, FileOps, FrameError, FrameErrorKind, FrameType, GetCwdMap,
    GetExperiments, GetReflectionSettings, GetTree, GrepInFiles, Input, InputAccepted, LaunchSubagent,
    ListConnectProviders, ListInDirectory, ListMemory, ListModels, MemoryCommitDiff, MemoryFileAtRef, MemoryHistory,
    MonitorStop, ReadFile, ReadMemoryFile, RemoveQueueItem, Resume, ResumeQueue, RuntimeExternalToolsUpdate,
    RuntimeScope, RuntimeStart, SearchBranches, SearchFiles, SecretApply, SecretList, ServerFrame,
    SetBootWorkingDirectory, SetExperiment, SetReflectionSettings, SkillDisable, SkillEnable, Sync, TerminalInput,
    TerminalKill, TerminalResize, TerminalSpawn, TurnFinishedAck, UnwatchFile, UpdateModel, UpdateToolset, WatchFile,
    WriteFile, WriteMemoryFile,
};
use serde_json::Value;

use crate::engine::conversation::{CLIENT_PREFERENCES_VIOLATION, Conversation};
use crate::engine::{Engine, Peer, ScopeError};

/// The client a command came from, as its handler sees it.
pub trait Caller: Peer {
    /// The engine the client drives.
    fn engine(&self) -> &Arc<Engine>;
    /// Subscribes the client to `scope`'s events; returns the scope's conversation (loaded on
    /// first use). `resuming`: a subscription with `resume_after` (docs/protocol.md §2.2),
    /// which gets no event of the scope until [answered](Self::answer_resuming).
    fn subscribe<'a>(
        &'a self,
        scope: &'a RuntimeScope,
        resuming: bool,
    ) -> Pin<Box<dyn Future<Output = Result<Arc<Conversation>, ScopeError>> + Send + 'a>>;
    /// Answers the client's subscription to `scope` with `resume_after: cursor`: `send` queues
    /// the answer with the [`Resume`], before any numbered event of the scope; the events after
    /// the cursor follow it when it resumed. Returns the `Resume`.
    fn answer_resuming(&self, scope: &RuntimeScope, cursor: u64, send: AnswerResume<'_>) -> Resume;
    /// Itself as the [`Peer`] that conversations answer.
    fn as_peer(&self) -> &dyn Peer;
    /// The client's terminals.
    fn terminals(&self) -> &terminal::Terminals;
    /// The client's file watches.
    fn watches(&self) -> &watch::Watches;
    /// Resolves once the client's outbound queue has room, however long its reader takes (or
    /// the connection closed): for output only this client reads.
    fn room(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
    /// The places for the client's detached commands ([`crate::limits::MAX_DETACHED_COMMANDS`]).
    fn detached(&self) -> &Arc<tokio::sync::Semaphore>;
}

impl dyn Caller + '_ {
    /// Queues a direct frame (a response) for the client.
    fn send(&self, frame: impl Into<ServerFrame>) {
        self.send_frame(frame.into());
    }
}

/// Queues the answer to a subscription with `resume_after`, given where it resumes.
pub type AnswerResume<'a> = Box<dyn FnOnce(Resume) + 'a>;

/// Handles one text frame from a client.
pub async fn handle_text(caller: &Arc<dyn Caller>, text: &str) {
    match ClientFrame::from_json(text) {
        Ok(frame) => match crate::limits::check(&frame, text.len()) {
            Ok(()) => handle(caller, frame).await,
            Err(violation) => caller.send(
                ErrorFrame {
                    request_id: crate::limits::request_id(&frame).map(str::to_owned),
                    code: ErrorCode::LimitExceeded,
                    message: format!("invalid `{}` frame: {violation}", frame.frame_type()),
                    frame_type: Some(frame.frame_type().to_owned()),
                }
                .bounded(),
            ),
        },
        Err(error) => reject(caller, text, error).await,
    }
}

/// Answers a frame that could not be parsed: our `error` frame, plus what real Letta sends for a
/// bad `input` payload or an unknown permission mode (a non-terminal `loop_error` for the scope).
/// Any other malformed `change_device_state` payload is one real Letta drops silently, and so is
/// the `payload` of any other command (`update_model`'s).
async fn reject(caller: &Arc<dyn Caller>, text: &str, error: FrameError) {
    caller.send(error.to_error_frame());
    let scoped_payload = matches!(error.frame_type.as_deref(), Some(Input::TYPE | ChangeDeviceState::TYPE))
        && error.path.as_deref().is_some_and(|p| p.starts_with("payload"));
    if error.kind != FrameErrorKind::InvalidFrame || !scoped_payload {
        return;
    }
    let Ok(raw) = serde_json::from_str::<Value>(text) else {
        return;
    };
    // Only an object is a scope (serde alone reads one from an array too).
    let Some(scope) = raw["runtime"]
        .is_object()
        .then(|| serde_json::from_value::<RuntimeScope>(raw["runtime"].clone()).ok())
        .flatten()
    else {
        return;
    };
    let Ok(conversation) = caller.subscribe(&scope, false).await else {
        return;
    };
    let message = match (error.frame_type.as_deref(), error.path.as_deref()) {
        (Some("change_device_state"), Some("payload.mode")) => {
            format!("Unsupported permission mode: {}", display(&raw["payload"]["mode"]))
        }
        (Some("change_device_state"), _) => return,
        (_, Some(path)) if path.starts_with("payload.client_preferences") => CLIENT_PREFERENCES_VIOLATION.to_owned(),
        (_, Some("payload.kind")) => format!("Unsupported input payload kind: {}", display(&raw["payload"]["kind"])),
        (_, Some(path)) if path.starts_with("payload.messages") && path.ends_with(".type") => {
            if let Some(request_id) = raw["request_id"].as_str() {
                caller.send(InputAccepted {
                    request_id: letta_app_server_protocol::cut(request_id.to_owned(), ECHOED_ID_BYTES),
                    runtime: scope,
                    accepted: false,
                    disposition: None,
                    error: Some("Approval payloads require approval_response".into()),
                });
            }
            "Protocol violation: approval payloads are not allowed in input.kind=create_message. \
             Use input.kind=approval_response."
                .to_owned()
        }
        _ => format!("Protocol violation: {error}"),
    };
    conversation.protocol_violation(caller.engine(), message);
}

/// Runs `work` for the client as its own task, so that later frames do not wait for it. Once
/// [`crate::limits::MAX_DETACHED_COMMANDS`] of them run, the client's next frame waits for one to
/// end, up to [`DETACHED_WAIT`]; then it is refused with an `error` frame (`limit_exceeded`), so
/// that a client that stopped reading cannot hold its reader for ever.
async fn detach<F: Future<Output = ()> + Send + 'static>(
    caller: &Arc<dyn Caller>,
    (frame_type, request_id): &(&'static str, Option<String>),
    work: impl FnOnce(Arc<dyn Caller>) -> F,
) -> Option<Arc<Conversation>> {
    let places = caller.detached().clone();
    let Ok(Ok(place)) = tokio::time::timeout(DETACHED_WAIT, places.acquire_owned()).await else {
        caller.send(ErrorFrame {
            request_id: request_id.clone(),
            code: ErrorCode::LimitExceeded,
            message: format!(
                "too many commands in progress on this connection ({}); read their answers before sending more",
                crate::limits::MAX_DETACHED_COMMANDS
            ),
            frame_type: Some((*frame_type).to_owned()),
        });
        return None;
    };
    let work = work(caller.clone());
    tokio::spawn(async move {
        work.await;
        drop(place);
    });
    None
}

/// How long a client's frame waits for a place among its detached commands.
const DETACHED_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

fn display(value: &Value) -> String {
    value.as_str().map_or_else(|| value.to_string(), str::to_owned)
}

/// Handles one parsed client frame. A command that subscribed the client to a conversation
/// then starts the conversation's waiting queue items, if it is idle.
async fn handle(caller: &Arc<dyn Caller>, frame: ClientFrame) {
    if let Some(conversation) = command(caller, frame).await {
        conversation.resume_queue(caller.engine()).await;
    }
}

/// The commands this server implements, in the protocol table's order; every other command of
/// the protocol table is answered at once as unsupported (a test checks that exactly these are
/// not).
pub const IMPLEMENTED: &[&str] = &[
    AppServerInfo::TYPE,
    RuntimeStart::TYPE,
    Input::TYPE,
    Sync::TYPE,
    AbortMessage::TYPE,
    ChangeDeviceState::TYPE,
    RemoveQueueItem::TYPE,
    RuntimeExternalToolsUpdate::TYPE,
    ExternalToolCallResponse::TYPE,
    TurnFinishedAck::TYPE,
    ConversationList::TYPE,
    ConversationRetrieve::TYPE,
    ConversationCreate::TYPE,
    ConversationUpdate::TYPE,
    ConversationRecompile::TYPE,
    ConversationFork::TYPE,
    ConversationMessagesList::TYPE,
    ConversationCompact::TYPE,
    CronList::TYPE,
    CronAdd::TYPE,
    CronGet::TYPE,
    CronRuns::TYPE,
    CronTrigger::TYPE,
    CronPause::TYPE,
    CronResume::TYPE,
    CronUpdate::TYPE,
    CronDelete::TYPE,
    CronDeleteAll::TYPE,
    ExecuteCommand::TYPE,
    MonitorStop::TYPE,
    LaunchSubagent::TYPE,
    AgentList::TYPE,
    AgentRetrieve::TYPE,
    AgentCreate::TYPE,
    AgentUpdate::TYPE,
    AgentDelete::TYPE,
    CreateAgentCommand::TYPE,
    ListModels::TYPE,
    ListConnectProviders::TYPE,
    ConnectProvider::TYPE,
    DisconnectProvider::TYPE,
    UpdateModel::TYPE,
    UpdateToolset::TYPE,
    ResumeQueue::TYPE,
    ListInDirectory::TYPE,
    GetTree::TYPE,
    ReadFile::TYPE,
    WriteFile::TYPE,
    FileOps::TYPE,
    EditFile::TYPE,
    WatchFile::TYPE,
    UnwatchFile::TYPE,
    SetBootWorkingDirectory::TYPE,
    GetCwdMap::TYPE,
    ListMemory::TYPE,
    MemoryHistory::TYPE,
    MemoryFileAtRef::TYPE,
    MemoryCommitDiff::TYPE,
    ReadMemoryFile::TYPE,
    WriteMemoryFile::TYPE,
    DeleteMemoryFile::TYPE,
    EnableMemfs::TYPE,
    SecretList::TYPE,
    SecretApply::TYPE,
    SkillEnable::TYPE,
    SkillDisable::TYPE,
    GetReflectionSettings::TYPE,
    SetReflectionSettings::TYPE,
    GetExperiments::TYPE,
    SetExperiment::TYPE,
    TerminalSpawn::TYPE,
    TerminalInput::TYPE,
    TerminalResize::TYPE,
    TerminalKill::TYPE,
    SearchBranches::TYPE,
    CheckoutBranch::TYPE,
    SearchFiles::TYPE,
    GrepInFiles::TYPE,
];

/// Routes one parsed client frame to its command group; returns the conversation it addressed,
/// if any. A command without an arm here is answered as unsupported.
async fn command(caller: &Arc<dyn Caller>, frame: ClientFrame) -> Option<Arc<Conversation>> {
    let label = (frame.frame_type(), frame.request_id().map(str::to_owned));
    match frame {
        ClientFrame::AppServerInfo(info) => {
            caller.send(info::app_server_info(info.request_id));
            None
        }
        // A detached task, as on real Letta: later frames are not blocked behind it.
        ClientFrame::RuntimeStart(start) => {
            detach(caller, &label, |caller| async move {
                if let Some(conversation) = runtime::runtime_start(&caller, start).await {
                    conversation.resume_queue(caller.engine()).await;
                }
            })
            .await
        }
        ClientFrame::Input(frame) => input::input(caller, frame).await,
        ClientFrame::LegacyMessage(message) => input::input(caller, message.into_input()).await,
        ClientFrame::Sync(sync) => runtime::sync(caller, sync).await,
        ClientFrame::AbortMessage(abort) => input::abort_message(caller, abort).await,
        ClientFrame::ChangeDeviceState(change) => runtime::change_device_state(caller, change).await,
        ClientFrame::RemoveQueueItem(remove) => input::remove_queue_item(caller, remove).await,
        ClientFrame::ResumeQueue(resume) => input::resume_queue(caller, resume).await,
        ClientFrame::RuntimeExternalToolsUpdate(update) => {
            external_tools::update(caller.as_ref(), update);
            None
        }
        ClientFrame::ExternalToolCallResponse(response) => {
            external_tools::answer(caller.as_ref(), response);
            None
        }
        frame @ (ClientFrame::ConversationList(_)
        | ClientFrame::ConversationRetrieve(_)
        | ClientFrame::ConversationCreate(_)
        | ClientFrame::ConversationUpdate(_)
        | ClientFrame::ConversationRecompile(_)
        | ClientFrame::ConversationFork(_)
        | ClientFrame::ConversationMessagesList(_)
        | ClientFrame::ConversationCompact(_)) => {
            // Detached, as on real Letta: a compaction waits on the model.
            detach(caller, &label, |caller| async move {
                if let Some(answer) = conversations::handle(caller.engine(), frame).await {
                    caller.send_frame(answer);
                }
            })
            .await
        }
        ClientFrame::ExecuteCommand(command) => {
            // Detached: `/compact` waits on the model.
            detach(caller, &label, |caller| async move {
                if let Some(conversation) = slash::execute_command(&caller, command).await {
                    conversation.resume_queue(caller.engine()).await;
                }
            })
            .await
        }
        ClientFrame::AgentList(list) => {
            agents::agent_list(caller.as_ref(), list).await;
            None
        }
        ClientFrame::AgentRetrieve(retrieve) => {
            agents::agent_retrieve(caller.as_ref(), retrieve).await;
            None
        }
        ClientFrame::AgentCreate(create) => {
            agents::agent_create(caller.as_ref(), create).await;
            None
        }
        ClientFrame::AgentUpdate(update) => {
            agents::agent_update(caller.as_ref(), update).await;
            None
        }
        ClientFrame::AgentDelete(delete) => {
            // Detached: it waits for the agent's turns to end, and later frames must not.
            detach(caller, &label, |caller| async move {
                agents::agent_delete(&caller, delete).await
            })
            .await
        }
        ClientFrame::CreateAgent(create) => {
            agents::create_agent(caller.as_ref(), create).await;
            None
        }
        ClientFrame::ListModels(list) => {
            // Detached, as on real Letta: the providers may take up to their timeout to answer.
            detach(caller, &label, |caller| async move {
                let response = models::list_models(caller.engine(), list).await;
                caller.send(response);
            })
            .await
        }
        ClientFrame::UpdateModel(update) => models::update_model(caller, update).await,
        ClientFrame::UpdateToolset(update) => models::update_toolset(caller, update).await,
        ClientFrame::ListConnectProviders(list) => {
            caller.send(providers::list_connect_providers(caller.engine(), list));
            None
        }
        ClientFrame::ConnectProvider(connect) => {
            caller.send(providers::connect_provider(caller.engine(), connect).await);
            None
        }
        ClientFrame::DisconnectProvider(disconnect) => {
            caller.send(providers::disconnect_provider(caller.engine(), disconnect).await);
            None
        }
        ClientFrame::CronList(list) => {
            detach(caller, &label, |caller| async move {
                caller.send(cron::list(caller.engine(), list).await);
            })
            .await
        }
        ClientFrame::CronGet(get) => {
            detach(caller, &label, |caller| async move {
                caller.send(cron::get(caller.engine(), get).await);
            })
            .await
        }
        ClientFrame::CronRuns(runs) => {
            detach(caller, &label, |caller| async move {
                caller.send(cron::runs(caller.engine(), runs).await);
            })
            .await
        }
        ClientFrame::CronTrigger(trigger) => {
            detach(caller, &label, |caller| async move {
                caller.send(cron::trigger(caller.engine(), trigger).await);
            })
            .await
        }
        ClientFrame::CronAdd(add) => {
            detach(caller, &label, |caller| async move {
                cron::reply(caller.as_ref(), cron::add(caller.engine(), add).await);
            })
            .await
        }
        ClientFrame::CronPause(pause) => {
            detach(caller, &label, |caller| async move {
                cron::reply(caller.as_ref(), cron::pause(caller.engine(), pause).await);
            })
            .await
        }
        ClientFrame::CronResume(resume) => {
            detach(caller, &label, |caller| async move {
                cron::reply(caller.as_ref(), cron::resume(caller.engine(), resume).await);
            })
            .await
        }
        ClientFrame::CronUpdate(update) => {
            detach(caller, &label, |caller| async move {
                cron::reply(caller.as_ref(), cron::update(caller.engine(), update).await);
            })
            .await
        }
        ClientFrame::CronDelete(delete) => {
            detach(caller, &label, |caller| async move {
                cron::reply(caller.as_ref(), cron::delete(caller.engine(), delete).await);
            })
            .await
        }
        ClientFrame::CronDeleteAll(delete) => {
            detach(caller, &label, |caller| async move {
                cron::reply(caller.as_ref(), cron::delete_all(caller.engine(), delete).await);
            })
            .await
        }
        ClientFrame::MonitorStop(stop) => {
            subagents::monitor_stop(caller, stop).await;
            None
        }
        ClientFrame::LaunchSubagent(launch) => {
            detach(caller, &label, |caller| async move {
                // Detached, as on real Letta: answers may come out of order.
                subagents::launch(&caller, launch).await;
            })
            .await
        }
        ClientFrame::SkillEnable(enable) => {
            detach(caller, &label, |caller| async move {
                skills::enable(caller.as_ref(), enable).await;
            })
            .await
        }
        ClientFrame::SkillDisable(disable) => {
            detach(caller, &label, |caller| async move {
                skills::disable(caller.as_ref(), disable).await;
            })
            .await
        }
        ClientFrame::SecretList(list) => {
            caller.send(secrets::secret_list(caller.engine(), list).await);
            None
        }
        ClientFrame::SecretApply(apply) => {
            caller.send(secrets::secret_apply(caller.engine(), apply).await);
            None
        }
        ClientFrame::GetCwdMap(get) => {
            cwd::get_cwd_map(caller, get).await;
            None
        }
        ClientFrame::SetBootWorkingDirectory(set) => {
            cwd::set_boot_working_directory(caller, set).await;
            None
        }
        // Detached, as on real Letta: file system and git work does not hold up later frames.
        ClientFrame::EnableMemfs(enable) => {
            detach(caller, &label, |caller| async move {
                memory::enable_memfs(&caller, enable).await
            })
            .await
        }
        ClientFrame::ListMemory(list) => {
            detach(caller, &label, |caller| async move {
                memory::list_memory(&caller, list).await
            })
            .await
        }
        ClientFrame::WriteMemoryFile(write) => {
            detach(caller, &label, |caller| async move {
                memory::write_memory_file(&caller, write).await
            })
            .await
        }
        ClientFrame::DeleteMemoryFile(delete) => {
            detach(caller, &label, |caller| async move {
                memory::delete_memory_file(&caller, delete).await
            })
            .await
        }
        ClientFrame::ReadMemoryFile(read) => {
            detach(caller, &label, |caller| async move {
                caller.send(memory::read_memory_file(caller.engine(), read).await);
            })
            .await
        }
        ClientFrame::MemoryHistory(history) => {
            detach(caller, &label, |caller| async move {
                caller.send(memory::memory_history(caller.engine(), history).await);
            })
            .await
        }
        ClientFrame::MemoryFileAtRef(at) => {
            detach(caller, &label, |caller| async move {
                caller.send(memory::memory_file_at_ref(caller.engine(), at).await);
            })
            .await
        }
        ClientFrame::MemoryCommitDiff(diff) => {
            detach(caller, &label, |caller| async move {
                caller.send(memory::memory_commit_diff(caller.engine(), diff).await);
            })
            .await
        }
        ClientFrame::GetReflectionSettings(get) => {
            settings::get_reflection_settings(caller, get).await;
            None
        }
        ClientFrame::SetReflectionSettings(set) => {
            settings::set_reflection_settings(caller, set).await;
            None
        }
        ClientFrame::GetExperiments(get) => {
            settings::get_experiments(caller.as_ref(), get);
            None
        }
        ClientFrame::SetExperiment(set) => {
            settings::set_experiment(caller, set).await;
            None
        }
        ClientFrame::TerminalSpawn(spawn) => {
            terminal::spawn(caller, spawn);
            None
        }
        ClientFrame::TerminalInput(input) => {
            terminal::input(caller, input).await;
            None
        }
        ClientFrame::TerminalResize(resize) => {
            terminal::resize(caller, resize).await;
            None
        }
        ClientFrame::TerminalKill(kill) => {
            terminal::kill(caller, kill);
            None
        }
        ClientFrame::SearchBranches(search) => {
            // Detached: git may take a while, and later frames must not wait for it.
            detach(caller, &label, |caller| async move {
                git::search_branches(&caller, search).await
            })
            .await
        }
        ClientFrame::CheckoutBranch(checkout) => {
            detach(caller, &label, |caller| async move {
                git::checkout_branch(&caller, checkout).await
            })
            .await
        }
        ClientFrame::ListInDirectory(list) => {
            files::list_in_directory(caller.as_ref(), list).await;
            None
        }
        ClientFrame::GetTree(get) => {
            files::get_tree(caller.as_ref(), get).await;
            None
        }
        ClientFrame::ReadFile(read) => {
            files::read_file(caller.as_ref(), read).await;
            None
        }
        ClientFrame::WriteFile(write) => {
            files::write_file(caller.as_ref(), write).await;
            None
        }
        ClientFrame::FileOps(ops) => {
            files::file_ops(caller.as_ref(), ops).await;
            None
        }
        ClientFrame::SearchFiles(search) => {
            // Detached, as on real Letta: the first search of a directory walks it.
            detach(caller, &label, |caller| async move {
                search::search_files(caller.as_ref(), search).await
            })
            .await
        }
        ClientFrame::GrepInFiles(grep) => {
            detach(caller, &label, |caller| async move {
                search::grep_in_files(caller.as_ref(), grep).await
            })
            .await
        }
        ClientFrame::EditFile(edit) => {
            files::edit_file(caller.as_ref(), edit).await;
            None
        }
        ClientFrame::WatchFile(watch) => {
            watch::watch(caller, watch);
            None
        }
        ClientFrame::UnwatchFile(unwatch) => {
            watch::unwatch(caller, unwatch);
            None
        }
        // Letta 0.34 does not replay `turn_finished`, so a receipt changes nothing.
        ClientFrame::TurnFinishedAck(_) | ClientFrame::Pong(_) => None,
        unsupported => {
            refuse(caller.as_ref(), &unsupported);
            None
        }
    }
}

/// Answers at once a command of the protocol this server does not implement (docs/protocol.md
/// §2.3): its response with `success: false` where the protocol shapes one, else an `error`
/// frame of code `unsupported`.
fn refuse(caller: &dyn Caller, frame: &ClientFrame) {
    let frame_type = frame.frame_type();
    let message = format!("this server does not support `{frame_type}` yet");
    let answer = frame.refusal(message.clone()).unwrap_or_else(|| {
        ErrorFrame {
            request_id: crate::limits::request_id(frame).map(str::to_owned),
            code: ErrorCode::Unsupported,
            message,
            frame_type: Some(frame_type.to_owned()),
        }
        .into()
    });
    caller.send_frame(answer);
}

/// Resolves a command's scope and subscribes the session to it; answers an `error` frame (with
/// the command's type and `request_id`) when the scope does not exist.
async fn scoped(
    caller: &Arc<dyn Caller>,
    scope: &RuntimeScope,
    command: (&str, Option<&String>),
) -> Option<Arc<Conversation>> {
    subscribed(caller, scope, command, false).await
}

/// [`scoped`], with `resuming` as [`Caller::subscribe`] takes it.
async fn subscribed(
    caller: &Arc<dyn Caller>,
    scope: &RuntimeScope,
    command: (&str, Option<&String>),
    resuming: bool,
) -> Option<Arc<Conversation>> {
    match caller.subscribe(scope, resuming).await {
        Ok(conversation) => Some(conversation),
        Err(error) => {
            let code = if matches!(error, ScopeError::Store(_)) {
                ErrorCode::Internal
            } else {
                ErrorCode::UnknownRuntime
            };
            caller.send(ErrorFrame {
                request_id: command.1.cloned(),
                code,
                message: format!("{error}; send runtime_start first"),
                frame_type: Some(command.0.to_owned()),
            });
            None
        }
    }
}

fn unknown_runtime(scope: &RuntimeScope) -> String {
    format!("Unknown runtime {scope}")
}
