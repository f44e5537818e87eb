//! Bounds on what a client may make the server store or repeat to others.
//!
//! Ids, names and paths a client chooses are echoed in frames every subscriber receives (a
//! `client_message_id` in every `update_loop_status` of the next 32 runs, a tool name in every
//! device status, a scope in every event), and documents it sends (agent bodies, tool results)
//! come back in replies. Unbounded, one client could make every frame of a conversation huge and
//! close its readers. The limits are far above what real clients send; a frame past one is
//! refused whole with an `error` frame naming the field and the limit (code
//! `limit_exceeded`). They are server policy, not protocol shape, so they are not in the schema.

use letta_app_server_protocol::{
    AgentRuntimeScope, ApprovalDecision, ClientFrame, ExternalToolGroup, InputPayload, JsonObject, MessageCreate,
    RuntimeScope,
};

/// Bytes of an id: `request_id`, `agent_id`, `conversation_id`, `client_message_id`, `otid`,
/// queue item and scope ids (Letta's own bound for its ids is 256 characters).
pub const MAX_ID_BYTES: usize = 256;
/// Bytes of a name: tool names, toolset entries, message author names.
pub const MAX_NAME_BYTES: usize = 256;
/// Bytes of a working directory path (Linux's `PATH_MAX`).
pub const MAX_PATH_BYTES: usize = 4096;
/// Bytes of a value of a provider's connect form (an API key, a base URL).
pub const MAX_FIELD_BYTES: usize = 4096;
/// Entries of a list: the messages of an input, the tools of a registration (all its groups
/// together), the runtimes of a `runtime_external_tools_update` (all its updates together),
/// allowlists, scope ids.
pub const MAX_LIST_ENTRIES: usize = 256;
/// Bytes of a free text: a tool description, a denial message, an error text.
pub const MAX_TEXT_BYTES: usize = 64 * 1024;
/// Bytes of a document, as JSON: an agent or conversation body, a tool's parameter schema, edited
/// tool arguments, an external tool's result.
pub const MAX_DOCUMENT_BYTES: usize = 4 * 1024 * 1024;
/// Bytes of an agent's system prompt (Letta Code's own prompts are tens of KiB).
pub const MAX_SYSTEM_BYTES: usize = 256 * 1024;
/// Bytes, as JSON, of an agent's object-valued fields: `metadata`, `model_settings`,
/// `compaction_settings`.
pub const MAX_SETTINGS_BYTES: usize = 64 * 1024;
/// Commands of one client that run on their own at once (`runtime_start`, the conversation,
/// memory, cron, skill, search and git commands, …): the client's next frame waits for a place
/// (then is refused), so a client cannot pile up work (many 4 MiB memory writes) faster than it
/// is done.
pub const MAX_DETACHED_COMMANDS: usize = 64;
/// The largest `limit` of one page of a list command (`agent_list`).
pub const MAX_PAGE_ITEMS: usize = 1000;
/// Bytes of stored objects in one page of a list command. A page of large objects ends before
/// its `limit` (clients page on with `after` until a page comes back empty, as the official
/// client does), so that an answer stays far below a connection's outbound limit.
pub const MAX_PAGE_BYTES: usize = 4 * 1024 * 1024;

/// A field past its limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Dotted path of the field (`payload.messages[0].client_message_id`).
    pub path: String,
    /// What was found, with its unit (`5242880 bytes`, `300 entries`).
    pub found: String,
    /// The limit, with its unit.
    pub limit: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "field `{}` is {}, over the limit of {}",
            self.path, self.found, self.limit
        )
    }
}

type Checked = Result<(), Violation>;

/// Checks every client-chosen string, list and document of a parsed frame of `frame_bytes` bytes.
pub fn check(frame: &ClientFrame, frame_bytes: usize) -> Checked {
    let checker = Checker { frame_bytes };
    match frame {
        ClientFrame::AppServerInfo(info) => checker.id("request_id", &info.request_id),
        ClientFrame::RuntimeStart(start) => {
            checker.id("request_id", &start.request_id)?;
            checker.optional_id("agent_id", start.agent_id.as_ref())?;
            checker.optional_id("conversation_id", start.conversation_id.as_ref())?;
            checker.path("cwd", start.cwd.as_ref().and_then(Option::as_ref))?;
            if let Some(create) = &start.create_agent {
                checker.document("create_agent.body", &create.body)?;
            }
            if let Some(body) = start.create_conversation.as_ref().and_then(|c| c.body.as_ref()) {
                checker.document("create_conversation.body", body)?;
            }
            checker.tools("external_tools", start.external_tools.as_deref().unwrap_or_default())
        }
        ClientFrame::Input(input) => {
            checker.optional_id("request_id", input.request_id.as_ref())?;
            checker.scope("runtime", &input.runtime)?;
            match &input.payload {
                InputPayload::CreateMessage(payload) => {
                    checker.messages("payload.messages", &payload.messages)?;
                    checker.names(
                        "payload.client_tool_allowlist",
                        payload.client_tool_allowlist.as_deref(),
                    )?;
                    let include = payload.client_toolset.as_ref().and_then(|t| t.include.as_deref());
                    checker.names("payload.client_toolset.include", include)?;
                    let preferred = payload.client_preferences.as_ref().and_then(|p| p.toolset.as_ref());
                    checker.names(
                        "payload.client_preferences.toolset.include",
                        preferred.map(|toolset| toolset.include.as_slice()),
                    )?;
                    checker.ids(
                        "payload.external_tool_scope_ids",
                        payload.external_tool_scope_ids.as_deref(),
                    )
                }
                InputPayload::ApprovalResponse(answer) => {
                    checker.id("payload.request_id", &answer.request_id)?;
                    checker.optional_text("payload.error", answer.error.as_ref())?;
                    match &answer.decision {
                        Some(ApprovalDecision::Allow {
                            message,
                            updated_input,
                            selected_permission_suggestion_ids,
                        }) => {
                            checker.optional_text("payload.decision.message", message.as_ref())?;
                            if let Some(updated) = updated_input {
                                checker.document("payload.decision.updated_input", updated)?;
                            }
                            let selected = selected_permission_suggestion_ids.as_deref();
                            checker.ids("payload.decision.selected_permission_suggestion_ids", selected)
                        }
                        Some(ApprovalDecision::Deny { message }) => checker.text("payload.decision.message", message),
                        None => Ok(()),
                    }
                }
                InputPayload::TeleportContinue(teleport) => {
                    checker.id("payload.teleport_id", &teleport.teleport_id)?;
                    checker.id("payload.source.device_id", &teleport.source.device_id)?;
                    checker.id("payload.source.connection_name", &teleport.source.connection_name)?;
                    let approvals = teleport.continuation.iter().flat_map(|c| &c.approvals);
                    approvals.enumerate().try_for_each(|(index, approval)| {
                        checker.document(&format!("payload.continuation.approvals[{index}]"), approval)
                    })
                }
            }
        }
        ClientFrame::LegacyMessage(message) => {
            checker.id("agentId", &message.agent_id)?;
            checker.optional_id("conversationId", message.conversation_id.as_ref())?;
            checker.messages("messages", &message.messages)?;
            checker.names("clientToolAllowlist", message.client_tool_allowlist.as_deref())?;
            let include = message.client_toolset.as_ref().and_then(|t| t.include.as_deref());
            checker.names("clientToolset.include", include)?;
            checker.ids("externalToolScopeIds", message.external_tool_scope_ids.as_deref())
        }
        ClientFrame::Sync(sync) => {
            checker.optional_id("request_id", sync.request_id.as_ref())?;
            checker.scope("runtime", &sync.runtime)
        }
        ClientFrame::AbortMessage(abort) => {
            checker.optional_id("request_id", abort.request_id.as_ref())?;
            checker.scope("runtime", &abort.runtime)?;
            checker.optional_id("run_id", abort.run_id.as_ref())
        }
        ClientFrame::ChangeDeviceState(change) => {
            checker.scope("runtime", &change.runtime)?;
            checker.path("payload.cwd", change.payload.cwd.as_ref())?;
            checker.optional_id("payload.agent_id", change.payload.agent_id.as_ref())?;
            checker.optional_id("payload.conversation_id", change.payload.conversation_id.as_ref())
        }
        ClientFrame::RemoveQueueItem(remove) => {
            checker.id("request_id", &remove.request_id)?;
            checker.scope("runtime", &remove.runtime)?;
            checker.id("item_id", &remove.item_id)
        }
        ClientFrame::RuntimeExternalToolsUpdate(update) => {
            checker.id("request_id", &update.request_id)?;
            checker.list(
                "updates",
                update.updates.iter().map(|entry| entry.runtimes.len().max(1)).sum(),
            )?;
            for (index, entry) in update.updates.iter().enumerate() {
                checker.list(&format!("updates[{index}].runtimes"), entry.runtimes.len())?;
                for (position, scope) in entry.runtimes.iter().enumerate() {
                    checker.scope(&format!("updates[{index}].runtimes[{position}]"), scope)?;
                }
                checker.tools(&format!("updates[{index}].external_tools"), &entry.external_tools)?;
            }
            Ok(())
        }
        ClientFrame::ExternalToolCallResponse(response) => {
            checker.id("request_id", &response.request_id)?;
            checker.optional_text("error", response.error.as_ref())?;
            match &response.result {
                Some(result) => checker.measured("result", result),
                None => Ok(()),
            }
        }
        ClientFrame::TurnFinishedAck(ack) => {
            checker.optional_id("runtime.agent_id", ack.runtime.agent_id.as_ref())?;
            checker.id("runtime.conversation_id", &ack.runtime.conversation_id)
        }
        ClientFrame::Pong(_) => Ok(()),
        // Conversation commands: ids, and Letta's parameter objects, which are small (a query) or
        // stored (a create or update body, shown in every list page that holds it).
        ClientFrame::ConversationList(list) => {
            checker.id("request_id", &list.request_id)?;
            checker.settings("query", list.query.as_ref())
        }
        ClientFrame::ConversationRetrieve(retrieve) => {
            checker.id("request_id", &retrieve.request_id)?;
            checker.id("conversation_id", &retrieve.conversation_id)
        }
        ClientFrame::ConversationCreate(create) => {
            checker.id("request_id", &create.request_id)?;
            checker.optional_id("acting_user_id", create.acting_user_id.as_ref())?;
            checker.settings("body", Some(&create.body))
        }
        ClientFrame::ConversationUpdate(update) => {
            checker.id("request_id", &update.request_id)?;
            checker.id("conversation_id", &update.conversation_id)?;
            checker.settings("body", Some(&update.body))
        }
        ClientFrame::ConversationMessagesList(list) => {
            checker.id("request_id", &list.request_id)?;
            checker.id("conversation_id", &list.conversation_id)?;
            checker.settings("query", list.query.as_ref())
        }
        ClientFrame::ConversationFork(fork) => {
            checker.id("request_id", &fork.request_id)?;
            checker.id("conversation_id", &fork.conversation_id)?;
            checker.optional_id("acting_user_id", fork.acting_user_id.as_ref())?;
            let body = fork.body.as_ref();
            checker.optional_id("body.agent_id", body.and_then(|b| b.agent_id.as_ref()))?;
            checker.optional_id("body.message_id", body.and_then(|b| b.message_id.as_ref()))
        }
        ClientFrame::ConversationCompact(compact) => {
            checker.id("request_id", &compact.request_id)?;
            checker.id("conversation_id", &compact.conversation_id)?;
            checker.settings("body", compact.body.as_ref())
        }
        ClientFrame::ConversationRecompile(recompile) => {
            checker.id("request_id", &recompile.request_id)?;
            checker.id("conversation_id", &recompile.conversation_id)?;
            checker.settings("body", recompile.body.as_ref())
        }
        // Its name and arguments are repeated to every subscriber in the slash-command deltas.
        ClientFrame::ExecuteCommand(command) => {
            checker.id("request_id", &command.request_id)?;
            checker.agent_scope("runtime", &command.runtime)?;
            Checker::bytes("command_id", &command.command_id, MAX_NAME_BYTES)?;
            checker.optional_text("args", command.args.as_ref())
        }
        // The fields of agent bodies and list queries are bounded where they are read
        // (`engine::agents`, `commands::agents`); here the ids they echo and their size.
        ClientFrame::AgentList(list) => {
            checker.id("request_id", &list.request_id)?;
            list.query
                .as_ref()
                .map_or(Ok(()), |query| checker.document("query", query))
        }
        ClientFrame::AgentRetrieve(retrieve) => {
            checker.id("request_id", &retrieve.request_id)?;
            checker.id("agent_id", &retrieve.agent_id)
        }
        ClientFrame::AgentCreate(create) => {
            checker.id("request_id", &create.request_id)?;
            checker.document("body", &create.body)
        }
        ClientFrame::AgentUpdate(update) => {
            checker.id("request_id", &update.request_id)?;
            checker.id("agent_id", &update.agent_id)?;
            checker.document("body", &update.body)
        }
        ClientFrame::UpdateModel(update) => {
            checker.id("request_id", &update.request_id)?;
            checker.scope("runtime", &update.runtime)?;
            checker.optional_id("payload.model_id", update.payload.model_id.as_ref())?;
            checker.optional_id("payload.model_handle", update.payload.model_handle.as_ref())
        }
        ClientFrame::UpdateToolset(update) => {
            checker.id("request_id", &update.request_id)?;
            checker.scope("runtime", &update.runtime)?;
            Checker::bytes("toolset_preference", update.toolset_preference.as_str(), MAX_NAME_BYTES)
        }
        ClientFrame::ConnectProvider(connect) => {
            checker.id("request_id", &connect.request_id)?;
            checker.id("provider_id", &connect.provider_id)?;
            checker.optional_id("auth_method_id", connect.auth_method_id.as_ref())?;
            checker.optional_id("provider_name", connect.provider_name.as_ref())?;
            checker.list("fields", connect.fields.len())?;
            for (key, value) in &connect.fields {
                Checker::bytes("fields", key, MAX_NAME_BYTES)?;
                Checker::bytes(&format!("fields.{key}"), value, MAX_FIELD_BYTES)?;
            }
            match &connect.oauth_config {
                Some(config) => checker.measured("oauth_config", config),
                None => Ok(()),
            }
        }
        ClientFrame::DisconnectProvider(disconnect) => {
            checker.id("request_id", &disconnect.request_id)?;
            checker.id("provider_id", &disconnect.provider_id)?;
            checker.optional_id("provider_name", disconnect.provider_name.as_ref())
        }
        ClientFrame::ResumeQueue(resume) => {
            checker.optional_id("request_id", resume.request_id.as_ref())?;
            checker.scope("runtime", &resume.runtime)
        }
        ClientFrame::SetBootWorkingDirectory(set) => {
            checker.id("request_id", &set.request_id)?;
            checker.path("cwd", Some(&set.cwd))
        }
        ClientFrame::EnableMemfs(enable) => {
            checker.id("request_id", &enable.request_id)?;
            checker.id("agent_id", &enable.agent_id)
        }
        ClientFrame::CronList(list) => {
            checker.id("request_id", &list.request_id)?;
            checker.id("agent_id", list.agent_id.as_deref().unwrap_or_default())?;
            checker.id("conversation_id", list.conversation_id.as_deref().unwrap_or_default())
        }
        // A task's texts are in every listing of its agent's tasks, and its prompt in every fire.
        ClientFrame::CronAdd(add) => {
            checker.id("request_id", &add.request_id)?;
            checker.id("agent_id", &add.agent_id)?;
            checker.id("conversation_id", add.conversation_id.as_deref().unwrap_or_default())?;
            Checker::bytes("name", &add.name, MAX_NAME_BYTES)?;
            checker.text("description", &add.description)?;
            Checker::bytes("cron", &add.cron, MAX_NAME_BYTES)?;
            Checker::bytes("timezone", add.timezone.as_deref().unwrap_or_default(), MAX_NAME_BYTES)?;
            checker.text("prompt", &add.prompt)?;
            Checker::bytes(
                "scheduled_for",
                add.scheduled_for.clone().flatten().as_deref().unwrap_or_default(),
                MAX_NAME_BYTES,
            )
        }
        ClientFrame::CronUpdate(update) => {
            checker.id("request_id", &update.request_id)?;
            checker.id("task_id", &update.task_id)?;
            checker.id("conversation_id", update.conversation_id.as_deref().unwrap_or_default())?;
            Checker::bytes("name", update.name.as_deref().unwrap_or_default(), MAX_NAME_BYTES)?;
            checker.text("description", update.description.as_deref().unwrap_or_default())?;
            Checker::bytes("cron", update.cron.as_deref().unwrap_or_default(), MAX_NAME_BYTES)?;
            Checker::bytes(
                "timezone",
                update.timezone.as_deref().unwrap_or_default(),
                MAX_NAME_BYTES,
            )?;
            checker.text("prompt", update.prompt.as_deref().unwrap_or_default())?;
            Checker::bytes(
                "scheduled_for",
                update.scheduled_for.clone().flatten().as_deref().unwrap_or_default(),
                MAX_NAME_BYTES,
            )
        }
        ClientFrame::CronGet(get) => checker
            .id("request_id", &get.request_id)
            .and(checker.id("task_id", &get.task_id)),
        ClientFrame::CronRuns(runs) => {
            checker.id("request_id", &runs.request_id)?;
            checker.id("task_id", &runs.task_id)?;
            checker.id("run_id", runs.run_id.as_deref().unwrap_or_default())
        }
        ClientFrame::CronTrigger(trigger) => {
            checker.id("request_id", &trigger.request_id)?;
            checker.id("task_id", &trigger.task_id)
        }
        ClientFrame::CronPause(pause) => checker
            .id("request_id", &pause.request_id)
            .and(checker.id("task_id", &pause.task_id)),
        ClientFrame::CronResume(resume) => {
            checker.id("request_id", &resume.request_id)?;
            checker.id("task_id", &resume.task_id)?;
            Checker::bytes(
                "scheduled_for",
                resume.scheduled_for.as_deref().unwrap_or_default(),
                MAX_NAME_BYTES,
            )
        }
        ClientFrame::CronDelete(delete) => checker
            .id("request_id", &delete.request_id)
            .and(checker.id("task_id", &delete.task_id)),
        ClientFrame::CronDeleteAll(delete) => {
            checker.id("request_id", &delete.request_id)?;
            checker.id("agent_id", &delete.agent_id)
        }
        ClientFrame::SkillEnable(enable) => {
            checker.id("request_id", &enable.request_id)?;
            checker.path("skill_path", Some(&enable.skill_path))
        }
        ClientFrame::SkillDisable(disable) => {
            checker.id("request_id", &disable.request_id)?;
            Checker::bytes("name", &disable.name, MAX_NAME_BYTES)
        }
        ClientFrame::ListMemory(list) => {
            checker.id("request_id", &list.request_id)?;
            checker.id("agent_id", &list.agent_id)
        }
        ClientFrame::MemoryHistory(history) => {
            checker.id("request_id", &history.request_id)?;
            checker.id("agent_id", &history.agent_id)?;
            checker.path("file_path", history.file_path.as_ref())
        }
        ClientFrame::MemoryFileAtRef(at) => {
            checker.id("request_id", &at.request_id)?;
            checker.id("agent_id", &at.agent_id)?;
            checker.path("file_path", Some(&at.file_path))?;
            Checker::bytes("ref", &at.git_ref, MAX_NAME_BYTES)
        }
        ClientFrame::MemoryCommitDiff(diff) => {
            checker.id("request_id", &diff.request_id)?;
            checker.id("agent_id", &diff.agent_id)?;
            Checker::bytes("sha", &diff.sha, MAX_NAME_BYTES)
        }
        ClientFrame::ReadMemoryFile(read) => {
            checker.id("request_id", &read.request_id)?;
            checker.id("agent_id", &read.agent_id)?;
            checker.path("path", Some(&read.path))
        }
        // A memory file is read back whole into answers and prompts: no larger than a document.
        ClientFrame::WriteMemoryFile(write) => {
            checker.id("request_id", &write.request_id)?;
            checker.id("agent_id", &write.agent_id)?;
            checker.path("path", Some(&write.path))?;
            Checker::bytes("content", &write.content, MAX_DOCUMENT_BYTES)?;
            checker.text("commit_message", write.commit_message.as_deref().unwrap_or_default())
        }
        ClientFrame::DeleteMemoryFile(delete) => {
            checker.id("request_id", &delete.request_id)?;
            checker.id("agent_id", &delete.agent_id)?;
            checker.path("path", Some(&delete.path))?;
            checker.text("commit_message", delete.commit_message.as_deref().unwrap_or_default())
        }
        ClientFrame::GetReflectionSettings(get) => {
            checker.id("request_id", &get.request_id)?;
            checker.agent_scope("runtime", &get.runtime)
        }
        ClientFrame::SetReflectionSettings(set) => {
            checker.id("request_id", &set.request_id)?;
            checker.agent_scope("runtime", &set.runtime)?;
            // Unknown modes are quoted back in the error.
            Checker::bytes("settings.trigger", set.settings.trigger.as_str(), MAX_NAME_BYTES)?;
            let merge = set.settings.merge.as_ref().map(|merge| merge.as_str());
            Checker::bytes("settings.merge", merge.unwrap_or_default(), MAX_NAME_BYTES)?;
            checker.optional_text("settings.merge_instructions", set.settings.merge_instructions.as_ref())
        }
        ClientFrame::SetExperiment(set) => {
            checker.id("request_id", &set.request_id)?;
            // Quoted back in the error when it is not a settable flag.
            Checker::bytes("experiment_id", set.experiment_id.as_str(), MAX_NAME_BYTES)
        }
        ClientFrame::AgentDelete(delete) => {
            checker.id("request_id", &delete.request_id)?;
            checker.id("agent_id", &delete.agent_id)
        }
        ClientFrame::CreateAgent(create) => {
            checker.id("request_id", &create.request_id)?;
            checker.names("tags", create.tags.as_deref())?;
            create
                .model
                .as_ref()
                .map_or(Ok(()), |model| Checker::bytes("model", model, MAX_NAME_BYTES))
        }
        ClientFrame::SearchFiles(search) => {
            checker.id("request_id", &search.request_id)?;
            // A path pattern: no longer than a path.
            Checker::bytes("query", &search.query, MAX_PATH_BYTES)?;
            checker.path("cwd", search.cwd.as_ref())
        }
        ClientFrame::GrepInFiles(grep) => {
            checker.id("request_id", &grep.request_id)?;
            checker.text("query", &grep.query)?;
            checker.path("glob", grep.glob.as_ref())?;
            checker.path("cwd", grep.cwd.as_ref())
        }
        ClientFrame::SecretList(list) => {
            checker.id("request_id", &list.request_id)?;
            checker.id("agent_id", &list.agent_id)
        }
        ClientFrame::SecretApply(apply) => {
            checker.id("request_id", &apply.request_id)?;
            checker.id("agent_id", &apply.agent_id)?;
            checker.list("set", apply.set.len())?;
            for (key, value) in &apply.set {
                Checker::bytes("set", key, MAX_NAME_BYTES)?;
                Checker::bytes(&format!("set.{key}"), value, MAX_TEXT_BYTES)?;
            }
            checker.names("unset", Some(&apply.unset))
        }
        // Paths repeated in the answer and its `file_ops`, or in every `file_changed` while
        // watched.
        ClientFrame::EditFile(edit) => {
            checker.id("request_id", &edit.request_id)?;
            checker.path("file_path", Some(&edit.file_path))
        }
        ClientFrame::WatchFile(watch) => {
            checker.id("request_id", &watch.request_id)?;
            checker.path("path", Some(&watch.path))
        }
        ClientFrame::UnwatchFile(unwatch) => {
            checker.id("request_id", &unwatch.request_id)?;
            checker.path("path", Some(&unwatch.path))
        }
        _ => request_id(frame).map_or(Ok(()), |id| checker.id("request_id", id)),
    }
}

/// The `request_id` a frame's answers echo, if it has one.
pub fn request_id(frame: &ClientFrame) -> Option<&str> {
    match frame {
        // Not a command with an answer, but its `request_id` names the server request it answers.
        ClientFrame::ExternalToolCallResponse(response) => Some(&response.request_id),
        other => other.request_id(),
    }
}

struct Checker {
    /// The whole frame's size: a document cannot be larger, so small frames skip measuring them.
    frame_bytes: usize,
}

impl Checker {
    fn bytes(path: &str, value: &str, limit: usize) -> Checked {
        if value.len() <= limit {
            return Ok(());
        }
        Err(Violation {
            path: path.to_owned(),
            found: format!("{} bytes", value.len()),
            limit: format!("{limit} bytes"),
        })
    }

    fn id(&self, path: &str, value: &str) -> Checked {
        Self::bytes(path, value, MAX_ID_BYTES)
    }

    fn optional_id(&self, path: &str, value: Option<&String>) -> Checked {
        value.map_or(Ok(()), |value| self.id(path, value))
    }

    fn scope(&self, path: &str, scope: &RuntimeScope) -> Checked {
        self.optional_id(&format!("{path}.agent_id"), scope.agent_id.as_ref())?;
        self.id(&format!("{path}.conversation_id"), &scope.conversation_id)
    }

    fn agent_scope(&self, path: &str, scope: &AgentRuntimeScope) -> Checked {
        self.id(&format!("{path}.agent_id"), &scope.agent_id)?;
        self.id(&format!("{path}.conversation_id"), &scope.conversation_id)
    }

    fn path(&self, path: &str, value: Option<&String>) -> Checked {
        value.map_or(Ok(()), |value| Self::bytes(path, value, MAX_PATH_BYTES))
    }

    fn text(&self, path: &str, value: &str) -> Checked {
        Self::bytes(path, value, MAX_TEXT_BYTES)
    }

    fn optional_text(&self, path: &str, value: Option<&String>) -> Checked {
        value.map_or(Ok(()), |value| self.text(path, value))
    }

    fn list(&self, path: &str, entries: usize) -> Checked {
        if entries <= MAX_LIST_ENTRIES {
            return Ok(());
        }
        Err(Violation {
            path: path.to_owned(),
            found: format!("{entries} entries"),
            limit: format!("{MAX_LIST_ENTRIES} entries"),
        })
    }

    fn entries(&self, path: &str, values: Option<&[String]>, limit: usize) -> Checked {
        let values = values.unwrap_or_default();
        self.list(path, values.len())?;
        for (index, value) in values.iter().enumerate() {
            Self::bytes(&format!("{path}[{index}]"), value, limit)?;
        }
        Ok(())
    }

    fn names(&self, path: &str, values: Option<&[String]>) -> Checked {
        self.entries(path, values, MAX_NAME_BYTES)
    }

    fn ids(&self, path: &str, values: Option<&[String]>) -> Checked {
        self.entries(path, values, MAX_ID_BYTES)
    }

    fn document(&self, path: &str, value: &JsonObject) -> Checked {
        self.measured(path, value)
    }

    /// A parameter object of at most [`MAX_SETTINGS_BYTES`] as JSON.
    fn settings(&self, path: &str, value: Option<&JsonObject>) -> Checked {
        let Some(value) = value.filter(|_| self.frame_bytes > MAX_SETTINGS_BYTES) else {
            return Ok(());
        };
        let size = serde_json::to_vec(value).map_or(usize::MAX, |json| json.len());
        if size <= MAX_SETTINGS_BYTES {
            return Ok(());
        }
        Err(Violation {
            path: path.to_owned(),
            found: format!("{size} bytes as JSON"),
            limit: format!("{MAX_SETTINGS_BYTES} bytes"),
        })
    }

    /// The size of a value as JSON, measured only when the frame is larger than the limit.
    fn measured(&self, path: &str, value: &impl serde::Serialize) -> Checked {
        if self.frame_bytes <= MAX_DOCUMENT_BYTES {
            return Ok(());
        }
        let size = serde_json::to_vec(value).map_or(usize::MAX, |json| json.len());
        if size <= MAX_DOCUMENT_BYTES {
            return Ok(());
        }
        Err(Violation {
            path: path.to_owned(),
            found: format!("{size} bytes as JSON"),
            limit: format!("{MAX_DOCUMENT_BYTES} bytes"),
        })
    }

    fn messages(&self, path: &str, messages: &[MessageCreate]) -> Checked {
        self.list(path, messages.len())?;
        for (index, message) in messages.iter().enumerate() {
            let at = |field: &str| format!("{path}[{index}].{field}");
            self.optional_id(&at("client_message_id"), message.client_message_id.as_ref())?;
            self.optional_id(&at("otid"), message.otid.as_ref())?;
            self.optional_id(&at("sender_id"), message.sender_id.as_ref())?;
            self.optional_id(&at("group_id"), message.group_id.as_ref())?;
            self.optional_id(&at("batch_item_id"), message.batch_item_id.as_ref())?;
            if let Some(name) = &message.name {
                Self::bytes(&at("name"), name, MAX_NAME_BYTES)?;
            }
        }
        Ok(())
    }

    fn tools(&self, path: &str, groups: &[ExternalToolGroup]) -> Checked {
        self.list(path, groups.iter().map(|group| group.tools.len().max(1)).sum())?;
        for (index, group) in groups.iter().enumerate() {
            let at = |field: &str| format!("{path}[{index}].{field}");
            self.optional_id(&at("scope_id"), group.scope_id.as_ref())?;
            self.list(&at("tools"), group.tools.len())?;
            for (position, tool) in group.tools.iter().enumerate() {
                let at = |field: &str| format!("{path}[{index}].tools[{position}].{field}");
                Self::bytes(&at("name"), &tool.name, MAX_NAME_BYTES)?;
                if let Some(label) = &tool.label {
                    Self::bytes(&at("label"), label, MAX_NAME_BYTES)?;
                }
                self.text(&at("description"), &tool.description)?;
                self.document(&at("parameters"), &tool.parameters)?;
            }
        }
        Ok(())
    }
}
