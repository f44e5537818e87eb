//! The background tasks of one conversation as its turn's tools see them ([`Tasks`]): `Agent`
//! launches a subagent, `Bash` with `run_in_background` a command, `TaskOutput` reads and
//! `TaskStop` stops either — only the conversation's own.

use std::sync::{Arc, Weak};
use std::time::Duration;

use letta_app_server_protocol::RuntimeScope;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::{Launch, Run, texts};
use crate::engine::Engine;
use crate::engine::shells::{Monitor, Shell};
use crate::tools::{AgentRequest, MonitorRequest, ShellRequest, Tasks, ToolFuture, ToolResult};

/// The tasks of the conversation `scope` (see [`super::Subagents::tasks_of`]).
pub(crate) struct ConversationTasks {
    pub(super) engine: Weak<Engine>,
    pub(super) scope: RuntimeScope,
}

impl ConversationTasks {
    /// The running background command `id` of this conversation.
    fn shell_of(&self, id: &str) -> Option<Arc<Shell>> {
        self.engine.upgrade()?.shells.find(&self.scope, id)
    }

    /// The engine and the task `task_id` of this conversation.
    fn task(&self, task_id: &str) -> Option<(Arc<Engine>, Arc<Run>)> {
        let engine = self.engine.upgrade()?;
        let run = engine.subagents.task(&self.scope, task_id)?;
        Some((engine, run))
    }
}

impl Tasks for ConversationTasks {
    fn launch<'a>(&'a self, request: AgentRequest, call_id: &'a str, cancel: &'a CancellationToken) -> ToolFuture<'a> {
        Box::pin(async move {
            let Some(engine) = self.engine.upgrade() else {
                return ToolResult::error("Error: the server is stopping");
            };
            let subagents = &engine.subagents;
            // A subagent's own subagents run in the foreground: a notification queued on its
            // conversation would reach nobody once its turn ended.
            let nested = subagents.depth_of(&self.scope) > 0;
            let launch = Launch {
                parent: self.scope.clone(),
                subagent_type: request.subagent_type,
                prompt: request.prompt,
                description: request.description,
                model: request.model,
                agent_id: request.agent_id,
                conversation_id: request.conversation_id,
                background: request.run_in_background.unwrap_or(true) && !nested,
                tool_call_id: Some(call_id.to_owned()),
                notify_caller: false,
                input_id: None,
                max_turns: None,
            };
            let run = match engine.launch_subagent(launch).await {
                Ok(run) => run,
                Err(error) => return ToolResult::error(format!("Error: {error}")),
            };
            if run.background {
                return ToolResult::ok(texts::receipt(&run));
            }
            let finished = tokio::select! {
                finished = run.wait(Duration::MAX) => finished,
                () = cancel.cancelled() => {
                    subagents.stop(&run).await;
                    run.wait(Duration::MAX).await
                }
            };
            match finished {
                Some(finished) => {
                    let text = texts::foreground(&run, &finished);
                    if finished.report.is_ok() {
                        ToolResult::ok(text)
                    } else {
                        ToolResult::error(text)
                    }
                }
                None => ToolResult::error("Error: the subagent did not finish"),
            }
        })
    }

    fn output<'a>(&'a self, task_id: &'a str, wait: Duration, cancel: &'a CancellationToken) -> ToolFuture<'a> {
        Box::pin(async move {
            let (status, message) = if let Some(shell) = self.shell_of(task_id) {
                tokio::select! {
                    output = shell.output(wait) => output,
                    () = cancel.cancelled() => shell.output(Duration::ZERO).await,
                }
            } else if let Some((_, run)) = self.task(task_id) {
                let finished = tokio::select! {
                    finished = run.wait(wait) => finished,
                    () = cancel.cancelled() => run.finished(),
                };
                match &finished {
                    None => ("running", "(no output yet)".to_owned()),
                    Some(finished) => (
                        if finished.report.is_ok() { "completed" } else { "failed" },
                        texts::outcome(&run, finished),
                    ),
                }
            } else {
                return ToolResult::error(format!("No background task found with ID: {task_id}"));
            };
            ToolResult::ok(json!({"message": message, "status": status}).to_string())
        })
    }

    fn stop<'a>(&'a self, task_id: &'a str) -> ToolFuture<'a> {
        Box::pin(async move {
            let killed = if let Some(shell) = self.shell_of(task_id) {
                self.engine.upgrade().is_some_and(|engine| engine.shells.stop(&shell))
            } else if let Some((engine, run)) = self.task(task_id) {
                engine.subagents.stop(&run).await
            } else {
                false
            };
            ToolResult::ok(json!({"killed": killed}).to_string())
        })
    }

    fn shell<'a>(&'a self, request: ShellRequest) -> ToolFuture<'a> {
        Box::pin(async move {
            let Some(engine) = self.engine.upgrade() else {
                return ToolResult::error("The server is stopping");
            };
            match engine.shells.start(&self.scope, request, None) {
                Ok(shell) => ToolResult::ok(format!(
                    "Command running in background with ID: {}\nOutput file: {}",
                    shell.id,
                    shell.output_file.display()
                )),
                Err(error) => ToolResult::error(error),
            }
        })
    }

    fn monitor<'a>(&'a self, request: MonitorRequest) -> ToolFuture<'a> {
        Box::pin(async move {
            let Some(engine) = self.engine.upgrade() else {
                return ToolResult::error("The server is stopping");
            };
            let timeout = request.timeout;
            let watching = Monitor::new(request.description, timeout.is_none());
            let command = ShellRequest {
                command: request.command,
                description: None,
                timeout,
                cwd: request.cwd,
                secrets: request.secrets,
            };
            match engine.shells.start(&self.scope, command, Some(watching)) {
                Ok(shell) => {
                    let lasting = match timeout {
                        Some(timeout) => format!("timeout {}ms", timeout.as_millis()),
                        None => "persistent: runs until TaskStop or the server stops".to_owned(),
                    };
                    ToolResult::ok(format!(
                        "Monitor started (task {}, {lasting}). Each event will arrive as a <task-notification> \
                         message: keep working, without polling or sleeping. An event that arrives while you wait \
                         for the user is not the user's reply.",
                        shell.id
                    ))
                }
                Err(error) => ToolResult::error(error),
            }
        })
    }
}
