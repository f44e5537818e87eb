//! A turn: the model runs for one input batch, streamed as `stream_delta`s, with the loop and
//! device statuses around them (docs/protocol.md §3.5–§3.7, §5 (b), (f), (i)).
//!
//! Each run asks the provider once. A run that ends with tool calls is followed by another run
//! with their results; tools this server does not offer get an error result.
//!
//! A turn knows its conversation only through [`TurnHost`]: it emits its output, asks for
//! approvals, appends to the history and waits for the readers through it, so it runs the same
//! against the real conversation and against a test double.
//!
//! * [`output`] — one run's provider events turned into deltas.
//! * [`calls`] — the tool calls of a run: classification, approval questions, execution.

mod calls;
mod output;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use letta_app_server_protocol::{CanUseToolRequest, DevicePermissionMode, JsonObject, RuntimeEvent, StopReason};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::external::Registration;
use super::toolbox::TurnTools;
use crate::clock::new_short_id;
use crate::history::{HistoryMessage, ToolCall};
use crate::permissions::{Rules, Subject};
use crate::provider::{
    EventSink, FinishReason, ModelRequest, ProviderError, ProviderErrorKind, ProviderEvent, SharedProvider,
};
use crate::tools::ToolResult;
use output::RunOutput;

/// What a turn is started with (its user message, if any, is already in the history).
pub(crate) struct Turn {
    /// The model.
    pub(crate) provider: SharedProvider,
    /// The model's name at the provider.
    pub(crate) model: String,
    /// The agent's system prompt.
    pub(crate) system: String,
    /// The reasoning effort of the model's settings, if any.
    pub(crate) reasoning_effort: Option<String>,
    /// The tools it offers.
    pub(crate) tools: TurnTools,
    /// Tool calls to ask about and run before the first model run (a recovery turn).
    pub(crate) resume: Vec<ToolCall>,
    /// The `client_message_id`s it consumes.
    pub(crate) client_ids: Vec<String>,
    /// Cancelled by `abort_message` or when its only watcher leaves.
    pub(crate) cancel: CancellationToken,
    /// Model runs it may take (at most [`MAX_RUNS_PER_TURN`]).
    pub(crate) max_runs: usize,
}

/// How a turn ended.
#[derive(Debug, PartialEq)]
pub(crate) enum Outcome {
    /// The model finished.
    Completed(StopReason),
    /// The turn failed; the text is reported in `turn_finished.error` and a terminal
    /// `loop_error`.
    Failed(StopReason, String),
    /// `abort_message`, or its only watcher left.
    Cancelled,
}

/// The controller's answer to a `control_request`.
#[derive(Debug)]
pub(crate) enum ApprovalAnswer {
    /// Run the tool, with replacement arguments if given; `save` selects the "don't ask again"
    /// suggestion.
    Allow {
        updated_input: Option<JsonObject>,
        save: bool,
    },
    /// Don't run it; the text is the tool result.
    Deny(String),
}

/// What became of an approval question.
pub(crate) enum Asked {
    /// The call is allowed after all (an earlier answer saved a rule, or the mode changed).
    Allowed,
    /// The turn was cancelled before the question went out.
    Cancelled,
    /// The question went out; the answer comes here. It counts as pending while the second
    /// part is held.
    Waiting(oneshot::Receiver<ApprovalAnswer>, crate::metrics::Held),
}

/// The conversation a turn runs in, as the turn sees it. Every method that changes the
/// conversation's state does so atomically with the events it emits.
pub(crate) trait TurnHost: Sync {
    /// Sends output of the current run to the scope, unless the run was cancelled.
    fn emit(&self, events: Vec<RuntimeEvent>);
    /// Resolves once the scope's readers have taken what was sent: the model is read no faster.
    fn readers_ready(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
    /// Starts model run `run_id`, which consumes `client_ids`: the loop statuses up to
    /// `PROCESSING_API_RESPONSE`. Returns the history to send, or `None` if `cancel` fired.
    fn begin_run(
        &self,
        run_id: &str,
        client_ids: Vec<String>,
        cancel: &CancellationToken,
    ) -> impl Future<Output = Option<Arc<Vec<HistoryMessage>>>> + Send;
    /// Starts run `run_id` of a recovery turn, which asks about calls before any model run.
    fn resume_run(&self, run_id: &str) -> impl Future<Output = ()> + Send;
    /// Appends messages to the in-memory history.
    fn append_history(&self, messages: Vec<HistoryMessage>) -> impl Future<Output = ()> + Send;
    /// Stores messages of run `run_id` (a failure is reported to the scope).
    fn save(&self, run_id: &str, messages: Vec<HistoryMessage>) -> impl Future<Output = ()> + Send;
    /// Stores the reply so far of run `run_id`, in the background.
    fn checkpoint(&self, run_id: &str, partial: &HistoryMessage);
    /// The permission mode and saved rules, to classify tool calls with.
    fn permissions(&self) -> impl Future<Output = (DevicePermissionMode, Rules)> + Send;
    /// The working directory.
    fn cwd(&self) -> impl Future<Output = String> + Send;
    /// The agent's secrets, by name, for the shell tool (none for an agent-free conversation or
    /// while they cannot be read).
    fn secrets(&self) -> BTreeMap<String, String>;
    /// The agent's memory, for the `memory` tool (none without a memory repository).
    fn memory(&self) -> impl Future<Output = Option<crate::memory::Memory>> + Send;
    /// The server's skills (`Skill`).
    fn skills(&self) -> &crate::skills::Skills;
    /// The conversation's subagent tasks (`Agent`, `TaskOutput`, `TaskStop`).
    fn tasks(&self) -> &dyn crate::tools::Tasks;
    /// Tells the scope's clients that a tool committed these memory files (`memory_updated`).
    fn memory_updated(&self, paths: Vec<String>);
    /// Moves the working directory (`SetWorkingDirectory`).
    fn set_cwd(&self, cwd: String) -> impl Future<Output = ()> + Send;
    /// Asks the controller about `request` as `request_id`, unless the call is allowed by
    /// now or `cancel` fired.
    fn ask(
        &self,
        request_id: String,
        request: CanUseToolRequest,
        subject: Subject,
        cancel: &CancellationToken,
    ) -> impl Future<Output = Asked> + Send;
    /// Saves the "don't ask again" rule for a call.
    fn save_rule(&self, tool: &str, subject: Subject, args: &JsonObject) -> impl Future<Output = ()> + Send;
    /// The calls `running` start executing: `EXECUTING_CLIENT_SIDE_TOOL`.
    fn start_tools(&self, running: Vec<String>) -> impl Future<Output = ()> + Send;
    /// The calls stopped executing; their results join the history.
    fn end_tools(&self, results: Vec<HistoryMessage>) -> impl Future<Output = ()> + Send;
    /// Runs a controller-owned tool through the connection that registered it.
    fn call_external(
        &self,
        registration: &Registration,
        tool_call_id: &str,
        args: JsonObject,
        cancel: &CancellationToken,
    ) -> impl Future<Output = ToolResult> + Send;
}

/// How often a streaming reply is checkpointed to the store at most.
const CHECKPOINT_INTERVAL: std::time::Duration = std::time::Duration::from_millis(250);

/// Model runs one turn may take (each tool round trip is a run) before it stops with
/// `max_steps`.
pub(crate) const MAX_RUNS_PER_TURN: usize = 50;

/// Where a run's model output goes: converted to `stream_delta`s and emitted; the model is read
/// no faster than the scope's readers take its output. The reply text so far is checkpointed,
/// so that a process that dies mid-reply keeps it.
struct RunSink<'a, H> {
    host: &'a H,
    output: &'a mut RunOutput,
    /// When the reply was last checkpointed, and how long it was then.
    checkpoint: (std::time::Instant, usize),
}

impl<'a, H: TurnHost> RunSink<'a, H> {
    fn new(host: &'a H, output: &'a mut RunOutput) -> Self {
        Self {
            host,
            output,
            checkpoint: (std::time::Instant::now(), 0),
        }
    }
}

impl<H: TurnHost> EventSink for RunSink<'_, H> {
    fn event(&mut self, event: ProviderEvent) {
        let events = self.output.on_event(event);
        self.host.emit(events);
        let (at, length) = self.checkpoint;
        if self.output.text.len() != length && at.elapsed() >= CHECKPOINT_INTERVAL {
            self.checkpoint = (std::time::Instant::now(), self.output.text.len());
            let partial = self.output.reply(Vec::new());
            self.host.checkpoint(&self.output.run_id, &partial);
        }
    }

    fn ready(&mut self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        self.host.readers_ready()
    }
}

/// Runs one turn to its outcome.
pub(crate) async fn run(host: &impl TurnHost, turn: Turn) -> Outcome {
    let Turn {
        provider,
        model,
        system,
        reasoning_effort,
        tools,
        resume,
        client_ids,
        cancel,
        max_runs,
    } = turn;
    let cancel = &cancel;
    if !resume.is_empty() {
        let run_id = new_short_id("run");
        host.resume_run(&run_id).await;
        let mut output = RunOutput::new(&run_id);
        output.tool_calls = resume;
        let results = calls::run_tools(host, &tools, &output, cancel).await;
        host.save(&run_id, results).await;
        if cancel.is_cancelled() {
            return Outcome::Cancelled;
        }
    }
    let mut consumed = client_ids;
    let mut runs = 0;
    loop {
        let run_id = new_short_id("run");
        let Some(history) = host.begin_run(&run_id, std::mem::take(&mut consumed), cancel).await else {
            return Outcome::Cancelled;
        };
        let request = ModelRequest {
            model: model.clone(),
            system: system.clone(),
            messages: history,
            tools: tools.specs(),
            reasoning_effort: reasoning_effort.clone(),
        };
        let mut output = RunOutput::new(&run_id);
        let result = {
            let mut sink = RunSink::new(host, &mut output);
            tokio::select! {
                result = provider.stream(&request, &mut sink) => Some(result),
                () = cancel.cancelled() => None,
            }
        };
        // Released before the history grows, so that it grows in place.
        drop(request);
        let assistant = output.assistant_message();
        if let Some(message) = &assistant {
            host.append_history(vec![message.clone()]).await;
        }
        let result = match result {
            Some(result) if !cancel.is_cancelled() => result,
            _ => {
                let mut messages: Vec<HistoryMessage> = assistant.into_iter().collect();
                messages.extend(interrupted_results(host, &output.tool_calls, &[]).await);
                host.save(&run_id, messages).await;
                return Outcome::Cancelled;
            }
        };
        let finish = match result {
            Ok(finish) => finish,
            Err(error) => {
                let failure = HistoryMessage::Error {
                    message: error.message.clone(),
                };
                host.save(&run_id, assistant.into_iter().chain([failure]).collect())
                    .await;
                let stop_reason = stop_reason_of(&error);
                host.emit(output.failure(&error, stop_reason.clone()));
                return Outcome::Failed(stop_reason, error.message);
            }
        };
        let stop_reason = match finish {
            _ if !output.tool_calls.is_empty() => StopReason::RequiresApproval,
            FinishReason::MaxTokens => StopReason::MaxTokensExceeded,
            FinishReason::EndTurn | FinishReason::ToolCalls => StopReason::EndTurn,
        };
        host.emit(output.end(stop_reason.clone()));
        let messages: Vec<HistoryMessage> = assistant.into_iter().collect();
        if output.tool_calls.is_empty() {
            host.save(&run_id, messages).await;
            return Outcome::Completed(stop_reason);
        }
        // The calls are stored before they run, so a restart can recover them.
        host.save(&run_id, messages).await;
        let results = calls::run_tools(host, &tools, &output, cancel).await;
        let cancelled = cancel.is_cancelled();
        host.save(&run_id, results).await;
        if cancelled {
            return Outcome::Cancelled;
        }
        runs += 1;
        if runs >= max_runs {
            return Outcome::Completed(StopReason::MaxSteps);
        }
    }
}

/// Results for the calls of `calls` not in `done`: `Interrupted by user` (added to the history).
async fn interrupted_results(host: &impl TurnHost, calls: &[ToolCall], done: &[String]) -> Vec<HistoryMessage> {
    let results: Vec<HistoryMessage> = calls
        .iter()
        .filter(|call| !done.contains(&call.id))
        .map(|call| HistoryMessage::ToolResult {
            tool_call_id: call.id.clone(),
            content: "Interrupted by user".into(),
            is_error: true,
        })
        .collect();
    host.append_history(results.clone()).await;
    results
}

fn stop_reason_of(error: &ProviderError) -> StopReason {
    match error.kind {
        ProviderErrorKind::Api => StopReason::LlmApiError,
        ProviderErrorKind::InvalidResponse => StopReason::InvalidLlmResponse,
        ProviderErrorKind::Request => StopReason::Error,
    }
}

#[cfg(test)]
mod tests;
