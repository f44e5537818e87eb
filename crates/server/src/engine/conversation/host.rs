//! The conversation as its running turn sees it: [`TurnHost`] over the conversation's state,
//! its scope's audience and the store.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use letta_app_server_protocol::{
    CanUseToolRequest, DevicePermissionMode, JsonObject, LoopStatus, RuntimeEvent, StopReason,
};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::state::{Batch, PendingApproval};
use super::{Agent, Conversation};
use crate::engine::context::Context;
use crate::engine::external::Registration;
use crate::engine::subagents::{ConversationTasks, Run};
use crate::engine::toolbox::TurnTools;
use crate::engine::turn::{self, Asked, MAX_RUNS_PER_TURN, Outcome, Turn, TurnHost};
use crate::history::HistoryMessage;
use crate::metrics::Held;
use crate::permissions::{Rules, Subject, Verdict, classify};
use crate::tools::ToolResult;

/// Runs a started turn (its input stored, its statuses sent) to its end, then finishes it.
pub(super) async fn run_turn(
    engine: Arc<Context>,
    conversation: Arc<Conversation>,
    batch: Batch,
    cancel: CancellationToken,
) {
    // A subagent's turn: its output also goes to its parent (see `crate::engine::subagents`).
    let subagent = engine.subagents.run_of_turn(&conversation.scope, &batch.client_ids);
    if let Some(run) = &subagent {
        engine.subagents.started(run);
    }
    let tasks = engine.subagents.tasks_of(&conversation.scope);
    let host = Host {
        engine,
        conversation,
        subagent,
        tasks,
    };
    let outcome = match host.prepare(batch, cancel.clone()).await {
        Ok(turn) => turn::run(&host, turn).await,
        Err(error) => Outcome::Failed(StopReason::Error, error),
    };
    let Host {
        engine,
        conversation,
        subagent,
        ..
    } = host;
    let mut state = conversation.state.lock().await;
    let outcome = if cancel.is_cancelled() {
        Outcome::Cancelled
    } else {
        outcome
    };
    // A subagent's end is settled before the conversation moves on (its next turn may start
    // now), and before a `TaskStop` can find it idle; it is reported once the state is free.
    let settled = subagent.filter(|run| {
        let report = match &outcome {
            Outcome::Completed(_) => Ok(last_reply(&state.history)),
            Outcome::Failed(_, error) => Err(error.clone()),
            Outcome::Cancelled => Err("Interrupted by user".to_owned()),
        };
        run.settle(report)
    });
    conversation.finish_turn(&engine, &mut state, outcome).await;
    drop(state);
    if let Some(run) = settled {
        engine.subagents.announce(&run).await;
    }
}

/// The text of the last assistant message of the turn that ended `history`.
fn last_reply(history: &[HistoryMessage]) -> String {
    (history.iter().rev())
        .take_while(|message| !matches!(message, HistoryMessage::User { .. }))
        .find_map(|message| match message {
            HistoryMessage::Assistant { text, .. } if !text.trim().is_empty() => Some(text.clone()),
            _ => None,
        })
        .unwrap_or_default()
}

/// Calls `registration`'s tool through the connection that registered it.
async fn call_external(
    engine: &Context,
    scope: &letta_app_server_protocol::RuntimeScope,
    registration: &Registration,
    tool_call_id: &str,
    args: JsonObject,
    timeout: Duration,
    cancel: &CancellationToken,
) -> ToolResult {
    let send = |request: letta_app_server_protocol::ExternalToolCallRequest| {
        engine.audience.send_to(registration.session, request.into())
    };
    (engine.external)
        .call(registration, scope, tool_call_id, args, timeout, cancel, send)
        .await
}

/// The user message that reports a backgrounded external call's outcome (Letta 0.34's format).
fn task_notification(task_id: &str, name: &str, result: &ToolResult, took: Duration) -> String {
    let (status, summary) = if result.is_error {
        ("failed", format!("External tool {name} failed"))
    } else {
        ("completed", format!("External tool {name} completed"))
    };
    format!(
        "<task-notification>\n<task-id>{task_id}</task-id>\n<status>{status}</status>\n<summary>{summary}</summary>\n\
         <result>{}</result>\n<usage>duration_ms: {}</usage>\n</task-notification>",
        result.text,
        took.as_millis()
    )
}

/// A running turn's view of its conversation.
struct Host {
    engine: Arc<Context>,
    conversation: Arc<Conversation>,
    /// Set when the turn is a subagent's.
    subagent: Option<Arc<Run>>,
    /// The conversation's subagent tasks, for the tools.
    tasks: ConversationTasks,
}

impl Host {
    /// Resolves the agent's model and the turn's tools; an unknown model or toolset fails the turn.
    async fn prepare(&self, batch: Batch, cancel: CancellationToken) -> Result<Turn, String> {
        let agent = Agent::resolve(&self.engine, &self.conversation.scope).await?;
        let (provider, model) = self.engine.providers.resolve(agent.model.as_deref())?;
        let preference = self.conversation.state.lock().await.toolset_preference.clone();
        let tools = TurnTools::select(
            &self.engine,
            &self.conversation.scope,
            &batch.options,
            batch.origin,
            &preference,
        )?;
        let mut state = self.conversation.state.lock().await;
        state.loaded_tools = Some(tools.names());
        state.toolset = Some(tools.toolset());
        drop(state);
        Ok(Turn {
            provider,
            model,
            system: agent.system,
            reasoning_effort: agent.reasoning_effort,
            tools,
            resume: batch.resume,
            client_ids: batch.client_ids,
            cancel,
            max_runs: (batch.options.max_runs).map_or(MAX_RUNS_PER_TURN, |n| {
                usize::try_from(n).unwrap_or(usize::MAX).clamp(1, MAX_RUNS_PER_TURN)
            }),
        })
    }
}

impl TurnHost for Host {
    fn emit(&self, events: Vec<RuntimeEvent>) {
        let sent = self.conversation.emit_run_output(&self.engine, &events);
        if let Some(run) = self.subagent.as_ref().filter(|_| sent) {
            for event in &events {
                self.engine.subagents.forward(run, event);
            }
        }
    }

    fn readers_ready(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        let audience = &self.engine.audience;
        let own = audience.readers_ready(&self.conversation.scope);
        match &self.subagent {
            // A subagent's messages also go to its parent's readers: they pace it too.
            Some(run) => {
                let parent = audience.readers_ready(&run.parent);
                Box::pin(async move {
                    own.await;
                    parent.await;
                })
            }
            None => own,
        }
    }

    async fn begin_run(
        &self,
        run_id: &str,
        client_ids: Vec<String>,
        cancel: &CancellationToken,
    ) -> Option<Arc<Vec<HistoryMessage>>> {
        let conversation = &self.conversation;
        let mut state = conversation.state.lock().await;
        if cancel.is_cancelled() {
            return None;
        }
        let mut events = Vec::new();
        if state.loop_state.status != LoopStatus::SendingApiRequest {
            Conversation::set_status(&mut state, LoopStatus::SendingApiRequest);
            events.push(Conversation::loop_event(&state));
            events.push(conversation.device_event(&state));
        }
        Conversation::set_status(&mut state, LoopStatus::WaitingForApiResponse);
        events.push(Conversation::loop_event(&state));
        conversation.start_run(&mut state, run_id, &client_ids);
        tracing::Span::current().record("run_id", run_id);
        Conversation::set_status(&mut state, LoopStatus::ProcessingApiResponse);
        events.push(Conversation::loop_event(&state));
        conversation.emit(&self.engine, events);
        Some(Arc::clone(&state.history))
    }

    async fn resume_run(&self, run_id: &str) {
        let mut state = self.conversation.state.lock().await;
        self.conversation.start_run(&mut state, run_id, &[]);
    }

    async fn append_history(&self, messages: Vec<HistoryMessage>) {
        Arc::make_mut(&mut self.conversation.state.lock().await.history).extend(messages);
    }

    async fn save(&self, run_id: &str, messages: Vec<HistoryMessage>) {
        if messages.is_empty() {
            return;
        }
        let scope = &self.conversation.scope;
        if let Err(error) = self
            .engine
            .store
            .append_messages(scope, Some(run_id.to_owned()), messages)
            .await
        {
            self.conversation
                .protocol_violation(&self.engine, format!("Could not save the turn: {error}"));
        }
    }

    fn checkpoint(&self, run_id: &str, partial: &HistoryMessage) {
        // Written in the background, in order with the run's final messages.
        drop(
            self.engine
                .store
                .save_partial(&self.conversation.scope, run_id.to_owned(), partial),
        );
    }

    async fn permissions(&self) -> (DevicePermissionMode, Rules) {
        let state = self.conversation.state.lock().await;
        // A subagent asks nobody, as in Letta: its tools are those of its type.
        let mode = if self.subagent.is_some() {
            DevicePermissionMode::Unrestricted
        } else {
            state.mode
        };
        (mode, state.rules.clone())
    }

    async fn cwd(&self) -> String {
        self.conversation.state.lock().await.cwd()
    }

    async fn set_cwd(&self, cwd: String) {
        self.conversation.set_cwd(&self.engine, cwd).await;
    }

    fn secrets(&self) -> BTreeMap<String, String> {
        let agent_id = self.conversation.scope.agent_id.as_deref();
        agent_id
            .and_then(|agent_id| self.engine.secrets.of(agent_id).ok())
            .unwrap_or_default()
    }

    async fn memory(&self) -> Option<crate::memory::Memory> {
        let agent_id = self.conversation.scope.agent_id.as_deref()?;
        crate::engine::memfs::of(&self.engine, agent_id).await.ok().flatten()
    }

    fn skills(&self) -> &crate::skills::Skills {
        &self.engine.skills
    }

    fn tasks(&self) -> &dyn crate::tools::Tasks {
        &self.tasks
    }

    fn memory_updated(&self, paths: Vec<String>) {
        let frame = letta_app_server_protocol::MemoryUpdated {
            affected_paths: paths,
            timestamp: crate::clock::now_millis(),
        };
        self.engine.audience.notify(&self.conversation.scope, frame.into());
    }

    async fn ask(
        &self,
        request_id: String,
        request: CanUseToolRequest,
        subject: Subject,
        cancel: &CancellationToken,
    ) -> Asked {
        let conversation = &self.conversation;
        let mut state = conversation.state.lock().await;
        // Meanwhile the turn may have been aborted, or the mode or rules changed.
        if cancel.is_cancelled() {
            return Asked::Cancelled;
        }
        if classify(state.mode, &request.tool_name, subject, &request.input, &state.rules) == Verdict::Allow {
            return Asked::Allowed;
        }
        let (answer, answered) = oneshot::channel();
        let request_tool = request.tool_name.clone();
        let pending = PendingApproval {
            request_id,
            request,
            answer,
        };
        let mut events = Vec::new();
        if state.loop_state.status != LoopStatus::WaitingOnApproval {
            Conversation::set_status(&mut state, LoopStatus::WaitingOnApproval);
            events.push(Conversation::loop_event(&state));
        }
        events.push(pending.event(&conversation.scope));
        state.pending = Some(Box::new(pending));
        events.extend([Conversation::loop_event(&state), conversation.device_event(&state)]);
        conversation.emit(&self.engine, events);
        self.engine.metrics.approvals_asked.inc();
        tracing::info!(tool = request_tool, "approval asked");
        Asked::Waiting(answered, Held::new(&self.engine.metrics.approvals_pending))
    }

    async fn save_rule(&self, tool: &str, subject: Subject, args: &JsonObject) {
        let mut state = self.conversation.state.lock().await;
        if let Some(mode) = state.rules.save(tool, subject, args) {
            state.mode = mode;
        }
    }

    async fn start_tools(&self, running: Vec<String>) {
        let mut state = self.conversation.state.lock().await;
        Conversation::set_status(&mut state, LoopStatus::ExecutingClientSideTool);
        state.loop_state.executing_tool_call_ids = running;
        self.conversation.emit(
            &self.engine,
            [Conversation::loop_event(&state), self.conversation.device_event(&state)],
        );
    }

    async fn end_tools(&self, results: Vec<HistoryMessage>) {
        let mut state = self.conversation.state.lock().await;
        state.loop_state.executing_tool_call_ids.clear();
        Arc::make_mut(&mut state.history).extend(results);
    }

    async fn call_external(
        &self,
        registration: &Registration,
        tool_call_id: &str,
        args: JsonObject,
        cancel: &CancellationToken,
    ) -> ToolResult {
        let engine = &self.engine;
        let timeout = (registration.tool.timeout_ms).map_or(engine.config.external_tool_timeout, Duration::from_millis);
        if registration.tool.auto_background == Some(false) {
            return call_external(
                engine,
                &self.conversation.scope,
                registration,
                tool_call_id,
                args,
                timeout,
                cancel,
            )
            .await;
        }
        // The call runs on its own, so that the turn can go on without it.
        let started = Instant::now();
        let call_cancel = CancellationToken::new();
        let mut call = tokio::spawn({
            let (engine, scope, registration) = (engine.clone(), self.conversation.scope.clone(), registration.clone());
            let (tool_call_id, call_cancel) = (tool_call_id.to_owned(), call_cancel.clone());
            async move {
                call_external(
                    &engine,
                    &scope,
                    &registration,
                    &tool_call_id,
                    args,
                    timeout,
                    &call_cancel,
                )
                .await
            }
        });
        let joined = |joined: Result<ToolResult, tokio::task::JoinError>| {
            joined.unwrap_or_else(|error| ToolResult::error(format!("External tool call failed: {error}")))
        };
        tokio::select! {
            result = &mut call => return joined(result),
            () = cancel.cancelled() => {
                call_cancel.cancel();
                return joined(call.await);
            }
            () = tokio::time::sleep(engine.config.external_tool_background_after) => {}
        }
        let task_id = format!("external_{}", uuid::Uuid::new_v4());
        let name = registration.tool.name.clone();
        let receipt = format!(
            "External tool {name} is still running. Task ID: {task_id}. Its completion will arrive as a task \
             notification; do not call the tool again for this request."
        );
        let (engine, conversation) = (engine.clone(), self.conversation.clone());
        tokio::spawn(async move {
            let result = joined(call.await);
            let notification = task_notification(&task_id, &name, &result, started.elapsed());
            conversation.notify(&engine, notification).await;
        });
        ToolResult::ok(receipt)
    }
}
