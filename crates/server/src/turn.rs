//! A turn: the model runs for one input batch, streamed as `stream_delta`s, with the loop and
//! device statuses around them (docs/protocol.md §3.5–§3.7, §5 (b), (f), (i)).
//!
//! Each run asks the provider once. A run that ends with tool calls is followed by another run
//! with their results; tools this server does not offer get an error result.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;

use letta_app_server_protocol::{
    ApiError, ApprovalClassificationEnd, ApprovalRequestMessage, AssistantMessage, CanUseToolRequest, ClientToolEnd,
    ClientToolStart, ContentPart, ControlSubtype, Delta, DeltaMarker, DeltaMeta, DiffPreview, ErrorMessage, FileOps,
    JsonObject, LoopError, LoopStatus, MessageContent, ReasoningMessage, Retry, RuntimeEvent, StopReason,
    StopReasonMessage, StreamDelta, ToolCallDelta, ToolReturn, ToolReturnMessage, ToolStatus, UsageStatistics,
};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::clock::{new_id, new_short_id, now_iso};
use crate::conversation::{ApprovalAnswer, Conversation, Outcome, PendingApproval};
use crate::history::{HistoryMessage, ToolCall};
use crate::permissions::{Verdict, classify, suggestion};
use crate::provider::{EventSink, FinishReason, ModelRequest, ProviderError, ProviderErrorKind, ProviderEvent};
use crate::runtime::Runtime;
use crate::runtime::SessionId;
use crate::toolbox::{ToolRef, TurnOptions, TurnTools};
use crate::tools::{OutputLine, ToolContext, ToolResult};

/// What a turn is started with (its user message, if any, is already in the history).
pub(crate) struct Turn {
    /// Tool calls to ask about and run before the first model run (a recovery turn).
    pub(crate) resume: Vec<ToolCall>,
    /// The `client_message_id`s it consumes.
    pub(crate) client_ids: Vec<String>,
    /// Its tool options.
    pub(crate) options: TurnOptions,
    /// The session that started it, if a connected one did.
    pub(crate) origin: Option<SessionId>,
    /// Cancelled by `abort_message` or when its only watcher leaves.
    pub(crate) cancel: CancellationToken,
}

/// Runs one turn to its end.
pub(crate) async fn run(runtime: Arc<Runtime>, conversation: Arc<Conversation>, turn: Turn) {
    let cancel = turn.cancel.clone();
    let outcome = run_to_outcome(&runtime, &conversation, turn).await;
    let mut state = conversation.state.lock().await;
    let outcome = if cancel.is_cancelled() {
        Outcome::Cancelled
    } else {
        outcome
    };
    conversation.finish_turn(&runtime, &mut state, outcome).await;
}

/// How often a streaming reply is checkpointed to the store at most.
const CHECKPOINT_INTERVAL: std::time::Duration = std::time::Duration::from_millis(250);

/// Where a run's model output goes: converted to `stream_delta`s and broadcast; the model is read
/// no faster than the scope's subscribers take its output. The reply text so far is
/// checkpointed to the store, so that a process that dies mid-reply keeps it.
struct RunSink<'a> {
    runtime: &'a Runtime,
    conversation: &'a Conversation,
    output: &'a mut RunOutput,
    /// When the reply was last checkpointed, and how long it was then.
    checkpoint: (std::time::Instant, usize),
}

impl<'a> RunSink<'a> {
    fn new(runtime: &'a Runtime, conversation: &'a Conversation, output: &'a mut RunOutput) -> Self {
        Self {
            runtime,
            conversation,
            output,
            checkpoint: (std::time::Instant::now(), 0),
        }
    }
}

impl EventSink for RunSink<'_> {
    fn event(&mut self, event: ProviderEvent) {
        let events = self.output.on_event(event);
        self.conversation.emit_run_output(self.runtime, events);
        let (at, length) = self.checkpoint;
        if self.output.text.len() != length && at.elapsed() >= CHECKPOINT_INTERVAL {
            self.checkpoint = (std::time::Instant::now(), self.output.text.len());
            let partial = HistoryMessage::Assistant {
                text: self.output.text.clone(),
                tool_calls: Vec::new(),
            };
            // Written in the background, in order with the run's final messages.
            drop(
                self.runtime
                    .store
                    .save_partial(&self.conversation.scope, self.output.run_id.clone(), &partial),
            );
        }
    }

    fn ready(&mut self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(self.runtime.subscribers_ready(&self.conversation.scope))
    }
}

async fn run_to_outcome(runtime: &Arc<Runtime>, conversation: &Arc<Conversation>, turn: Turn) -> Outcome {
    let cancel = &turn.cancel;
    let (provider, model) = match runtime.providers.resolve(conversation.agent.model.as_deref()) {
        Ok(resolved) => resolved,
        Err(error) => return Outcome::Failed(StopReason::Error, error),
    };
    let tools = match TurnTools::select(runtime, &conversation.scope, &turn.options, turn.origin) {
        Ok(tools) => tools,
        Err(error) => return Outcome::Failed(StopReason::Error, error),
    };
    conversation.state.lock().await.loaded_tools = Some(tools.names());
    if !turn.resume.is_empty() {
        let run_id = new_short_id("run");
        conversation.start_run(&mut *conversation.state.lock().await, &run_id, &[]);
        let mut output = RunOutput::new(&run_id);
        output.tool_calls = turn.resume;
        let results = run_tools(runtime, conversation, &tools, &output, cancel).await;
        save(runtime, conversation, &run_id, results).await;
        if cancel.is_cancelled() {
            return Outcome::Cancelled;
        }
    }
    let mut consumed = turn.client_ids;
    let mut runs = 0;
    loop {
        let run_id = new_short_id("run");
        let request = {
            let mut state = conversation.state.lock().await;
            if cancel.is_cancelled() {
                return Outcome::Cancelled;
            }
            let mut events = Vec::new();
            if state.loop_state.status != LoopStatus::SendingApiRequest {
                Conversation::set_status(&mut state, LoopStatus::SendingApiRequest);
                events.push(Conversation::loop_event(&state));
                events.push(Conversation::device_event(&state));
            }
            Conversation::set_status(&mut state, LoopStatus::WaitingForApiResponse);
            events.push(Conversation::loop_event(&state));
            conversation.start_run(&mut state, &run_id, &std::mem::take(&mut consumed));
            Conversation::set_status(&mut state, LoopStatus::ProcessingApiResponse);
            events.push(Conversation::loop_event(&state));
            conversation.emit(runtime, events);
            ModelRequest {
                model: model.clone(),
                system: conversation.agent.system.clone(),
                messages: Arc::clone(&state.history),
                tools: tools.specs(),
            }
        };
        let mut output = RunOutput::new(&run_id);
        let result = {
            let mut sink = RunSink::new(runtime, conversation, &mut output);
            tokio::select! {
                result = provider.stream(&request, &mut sink) => Some(result),
                () = cancel.cancelled() => None,
            }
        };
        // Released before the history grows, so that it grows in place.
        drop(request);
        let assistant = output.assistant_message();
        if let Some(message) = &assistant {
            Arc::make_mut(&mut conversation.state.lock().await.history).push(message.clone());
        }
        let result = match result {
            Some(result) if !cancel.is_cancelled() => result,
            _ => {
                let mut messages: Vec<HistoryMessage> = assistant.into_iter().collect();
                messages.extend(interrupted_results(conversation, &output.tool_calls, &[]).await);
                save(runtime, conversation, &run_id, messages).await;
                return Outcome::Cancelled;
            }
        };
        let finish = match result {
            Ok(finish) => finish,
            Err(error) => {
                save(runtime, conversation, &run_id, assistant.into_iter().collect()).await;
                let stop_reason = stop_reason_of(&error);
                conversation.emit_run_output(runtime, output.failure(&error, stop_reason.clone()));
                return Outcome::Failed(stop_reason, error.message);
            }
        };
        let stop_reason = match finish {
            _ if !output.tool_calls.is_empty() => StopReason::RequiresApproval,
            FinishReason::MaxTokens => StopReason::MaxTokensExceeded,
            FinishReason::EndTurn | FinishReason::ToolCalls => StopReason::EndTurn,
        };
        conversation.emit_run_output(runtime, output.end(stop_reason.clone()));
        let messages: Vec<HistoryMessage> = assistant.into_iter().collect();
        if output.tool_calls.is_empty() {
            save(runtime, conversation, &run_id, messages).await;
            return Outcome::Completed(stop_reason);
        }
        // The calls are stored before they run, so a restart can recover them.
        save(runtime, conversation, &run_id, messages).await;
        let results = run_tools(runtime, conversation, &tools, &output, cancel).await;
        let cancelled = cancel.is_cancelled();
        save(runtime, conversation, &run_id, results).await;
        if cancelled {
            return Outcome::Cancelled;
        }
        runs += 1;
        if runs >= MAX_RUNS_PER_TURN {
            return Outcome::Completed(StopReason::MaxSteps);
        }
    }
}

/// Model runs one turn may take (each tool round trip is a run) before it stops with
/// `max_steps`.
const MAX_RUNS_PER_TURN: usize = 50;

/// What the permission rules or the controller decided for one tool call.
enum Decision {
    Run(JsonObject),
    Deny(String),
}

/// A tool call as classified before anything runs: decided by the rules, or to be asked about.
enum Classified<'t> {
    Decided(Decision),
    Ask(&'t ToolRef, JsonObject),
}

/// Asks about and runs the tool calls of a run (docs/protocol.md §3.5, §3.9, §5 (c), (d)). As in real
/// Letta, every call is classified first — auto-allowed, auto-denied (a tool this turn does not
/// offer) or asked — and the classification announced in `approval_classification_end`; then the
/// asked calls get one question at a time (`WAITING_ON_APPROVAL` only then), and the allowed calls
/// run in order. Returns one result per call; calls left when the turn is cancelled get
/// `Interrupted by user`.
async fn run_tools(
    runtime: &Arc<Runtime>,
    conversation: &Arc<Conversation>,
    tools: &TurnTools,
    output: &RunOutput,
    cancel: &CancellationToken,
) -> Vec<HistoryMessage> {
    let calls = &output.tool_calls;
    let classified: Vec<Classified> = {
        let state = conversation.state.lock().await;
        calls
            .iter()
            .map(|call| {
                let args: JsonObject = serde_json::from_str(&call.arguments).unwrap_or_default();
                match tools.find(&call.name) {
                    None => Classified::Decided(Decision::Deny(format!("Unknown tool: {}", call.name))),
                    Some(tool) => match classify(state.mode, &call.name, tool.subject(), &args, &state.rules) {
                        Verdict::Allow => Classified::Decided(Decision::Run(args)),
                        Verdict::Ask => Classified::Ask(tool, args),
                    },
                }
            })
            .collect()
    };
    let classification = ApprovalClassificationEnd {
        meta: output.lifecycle_meta(),
        auto_allowed_tool_call_ids: ids_where(calls, &classified, |c| {
            matches!(c, Classified::Decided(Decision::Run(_)))
        }),
        auto_denied_tool_call_ids: ids_where(calls, &classified, |c| {
            matches!(c, Classified::Decided(Decision::Deny(_)))
        }),
        user_input_tool_call_ids: ids_where(calls, &classified, |c| matches!(c, Classified::Ask(..))),
    };
    conversation.emit_run_output(
        runtime,
        [output.lifecycle(Delta::ApprovalClassificationEnd(classification))],
    );
    let mut decisions = Vec::new();
    for (call, classified) in calls.iter().zip(classified) {
        decisions.push(match classified {
            Classified::Decided(decision) => decision,
            Classified::Ask(tool, args) => match ask(runtime, conversation, tool, call, args, cancel).await {
                Some(decision) => decision,
                None => return interrupted_results(conversation, calls, &[]).await,
            },
        });
    }
    {
        let mut state = conversation.state.lock().await;
        Conversation::set_status(&mut state, LoopStatus::ExecutingClientSideTool);
        state.loop_state.executing_tool_call_ids = ids_where(calls, &decisions, |d| matches!(d, Decision::Run(_)));
        conversation.emit(
            runtime,
            [Conversation::loop_event(&state), Conversation::device_event(&state)],
        );
    }
    let mut results = Vec::new();
    for (call, decision) in calls.iter().zip(decisions) {
        if cancel.is_cancelled() {
            break;
        }
        let result = match decision {
            Decision::Run(args) => execute(runtime, conversation, tools, output, call, args, cancel).await,
            Decision::Deny(message) => ToolResult::error(message),
        };
        conversation.emit_run_output(
            runtime,
            [
                output.lifecycle(Delta::ClientToolEnd(ClientToolEnd {
                    meta: output.approval_meta(&call.id),
                    tool_call_id: call.id.clone(),
                    status: status_of(&result),
                })),
                output.tool_return(&call.id, &result, false),
            ],
        );
        results.push(HistoryMessage::ToolResult {
            tool_call_id: call.id.clone(),
            content: result.text,
            is_error: result.is_error,
        });
    }
    let mut state = conversation.state.lock().await;
    state.loop_state.executing_tool_call_ids.clear();
    Arc::make_mut(&mut state.history).extend(results.iter().cloned());
    drop(state);
    let done: Vec<String> = results
        .iter()
        .filter_map(|r| match r {
            HistoryMessage::ToolResult { tool_call_id, .. } => Some(tool_call_id.clone()),
            _ => None,
        })
        .collect();
    results.extend(interrupted_results(conversation, calls, &done).await);
    results
}

/// The ids of the calls whose item (same position) matches `keep`.
fn ids_where<T>(calls: &[ToolCall], items: &[T], keep: impl Fn(&T) -> bool) -> Vec<String> {
    calls
        .iter()
        .zip(items)
        .filter(|(_, item)| keep(item))
        .map(|(call, _)| call.id.clone())
        .collect()
}

/// Asks about one call the classification left to the user: sends the `control_request` (after
/// `WAITING_ON_APPROVAL`, the first time) and waits for the answer. The call is classified again
/// just before, as an earlier answer may have saved a rule or the mode may have changed; `None`
/// when the turn is cancelled meanwhile.
async fn ask(
    runtime: &Arc<Runtime>,
    conversation: &Arc<Conversation>,
    tool: &ToolRef,
    call: &ToolCall,
    args: JsonObject,
    cancel: &CancellationToken,
) -> Option<Decision> {
    let subject = tool.subject();
    let cwd = conversation.state.lock().await.cwd.clone();
    let diffs = preview(tool, &args, cwd).await;
    let answer = {
        let mut state = conversation.state.lock().await;
        // Meanwhile the turn may have been aborted, or the mode or rules changed.
        if cancel.is_cancelled() {
            return None;
        }
        if classify(state.mode, &call.name, subject, &args, &state.rules) == Verdict::Allow {
            return Some(Decision::Run(args));
        }
        let (answer, answered) = oneshot::channel();
        let pending = PendingApproval {
            request_id: format!("perm-{}", call.id),
            request: CanUseToolRequest {
                subtype: ControlSubtype::CanUseTool,
                tool_name: call.name.clone(),
                input: args.clone(),
                tool_call_id: call.id.clone(),
                permission_suggestions: suggestion(&call.name, subject, &args).into_iter().collect(),
                blocked_path: None,
                diffs,
            },
            answer,
        };
        let mut events = Vec::new();
        if state.loop_state.status != LoopStatus::WaitingOnApproval {
            Conversation::set_status(&mut state, LoopStatus::WaitingOnApproval);
            events.push(Conversation::loop_event(&state));
        }
        events.push(pending.event(&conversation.scope));
        state.pending = Some(pending);
        events.extend([Conversation::loop_event(&state), Conversation::device_event(&state)]);
        conversation.emit(runtime, events);
        answered
    };
    let answer = tokio::select! {
        answer = answer => answer.ok()?,
        () = cancel.cancelled() => return None,
    };
    Some(match answer {
        ApprovalAnswer::Allow { updated_input, save } => {
            if save {
                let mut state = conversation.state.lock().await;
                if let Some(mode) = state.rules.save(&call.name, subject, &args) {
                    state.mode = mode;
                }
            }
            Decision::Run(updated_input.unwrap_or(args))
        }
        ApprovalAnswer::Deny(message) => Decision::Deny(message),
    })
}

/// The preview of a call's file changes for its approval question, made on the blocking pool:
/// it reads and diffs files, which must not hold up the event loop.
async fn preview(tool: &ToolRef, args: &JsonObject, cwd: String) -> Option<Vec<DiffPreview>> {
    let (tool, args) = (tool.clone(), args.clone());
    tokio::task::spawn_blocking(move || tool.preview(&args, Path::new(&cwd)))
        .await
        .ok()
        .flatten()
}

/// Runs one approved call: `client_tool_start`, the tool (with streamed output snapshots),
/// and its side effects on the runtime (new working directory, `file_ops`).
async fn execute(
    runtime: &Arc<Runtime>,
    conversation: &Arc<Conversation>,
    tools: &TurnTools,
    output: &RunOutput,
    call: &ToolCall,
    args: JsonObject,
    cancel: &CancellationToken,
) -> ToolResult {
    conversation.emit_run_output(
        runtime,
        [output.lifecycle(Delta::ClientToolStart(ClientToolStart {
            meta: output.approval_meta(&call.id),
            tool_call_id: call.id.clone(),
            tool_name: Some(call.name.clone()),
            tool_args: Some(serde_json::to_string(&args).unwrap_or_default()),
        }))],
    );
    let cwd = std::path::PathBuf::from(conversation.state.lock().await.cwd.clone());
    let result = match tools.find(&call.name) {
        Some(ToolRef::Local(tool)) => {
            let mut snapshot = Snapshot::new(call.id.clone());
            let mut on_output = |line: OutputLine| {
                if let Some(partial) = snapshot.push(line) {
                    conversation.emit_run_output(runtime, [output.tool_return(&call.id, &partial, true)]);
                }
            };
            let context = ToolContext {
                cwd: &cwd,
                cancel,
                output: &mut on_output,
            };
            let result = tool.run(args, context).await;
            if let Some(partial) = snapshot.finish() {
                conversation.emit_run_output(runtime, [output.tool_return(&call.id, &partial, true)]);
            }
            result
        }
        Some(ToolRef::External(registration)) => {
            let session = runtime.session(registration.session);
            let send = |request| {
                session.is_some_and(|session| {
                    session.send(request);
                    true
                })
            };
            let timeout = runtime.config.external_tool_timeout;
            runtime
                .external
                .call(registration, &conversation.scope, &call.id, args, timeout, cancel, send)
                .await
        }
        None => ToolResult::error(format!("Unknown tool: {}", call.name)),
    };
    if let Some(new_cwd) = &result.new_cwd {
        conversation.set_cwd(runtime, new_cwd.display().to_string()).await;
    }
    if let Some((path, content)) = &result.changed_file {
        conversation.emit_run_output(
            runtime,
            [FileOps {
                path: path.display().to_string(),
                cg_entries: Vec::new(),
                ops: Vec::new(),
                source: "agent".into(),
                document_content: Some(content.clone()),
            }
            .into()],
        );
    }
    result
}

/// Results for the calls of `calls` not in `done`: `Interrupted by user`.
async fn interrupted_results(conversation: &Conversation, calls: &[ToolCall], done: &[String]) -> Vec<HistoryMessage> {
    let results: Vec<HistoryMessage> = calls
        .iter()
        .filter(|call| !done.contains(&call.id))
        .map(|call| HistoryMessage::ToolResult {
            tool_call_id: call.id.clone(),
            content: "Interrupted by user".into(),
            is_error: true,
        })
        .collect();
    Arc::make_mut(&mut conversation.state.lock().await.history).extend(results.iter().cloned());
    results
}

fn status_of(result: &ToolResult) -> ToolStatus {
    if result.is_error {
        ToolStatus::Error
    } else {
        ToolStatus::Success
    }
}

/// Cumulative output of a running tool, released at most every 100 ms (docs/protocol.md §3.5).
struct Snapshot {
    stdout: Vec<String>,
    stderr: Vec<String>,
    last: Option<std::time::Instant>,
    unsent: bool,
    tool_call_id: String,
}

/// Lines a snapshot keeps at most.
const SNAPSHOT_LINES: usize = 200;

impl Snapshot {
    fn new(tool_call_id: String) -> Self {
        Self {
            stdout: Vec::new(),
            stderr: Vec::new(),
            last: None,
            unsent: false,
            tool_call_id,
        }
    }

    fn push(&mut self, line: OutputLine) -> Option<ToolResult> {
        let lines = match line {
            OutputLine::Stdout(text) => (&mut self.stdout, text),
            OutputLine::Stderr(text) => (&mut self.stderr, text),
        };
        if lines.0.len() < SNAPSHOT_LINES {
            lines.0.push(lines.1);
        }
        self.unsent = true;
        let due = self
            .last
            .is_none_or(|last| last.elapsed() >= std::time::Duration::from_millis(100));
        due.then(|| self.release())
    }

    fn finish(&mut self) -> Option<ToolResult> {
        self.unsent.then(|| self.release())
    }

    fn release(&mut self) -> ToolResult {
        self.last = Some(std::time::Instant::now());
        self.unsent = false;
        let _ = &self.tool_call_id;
        ToolResult {
            text: self.stdout.join("\n"),
            stdout: self.stdout.clone(),
            stderr: self.stderr.clone(),
            ..ToolResult::default()
        }
    }
}

async fn save(runtime: &Runtime, conversation: &Conversation, run_id: &str, messages: Vec<HistoryMessage>) {
    if messages.is_empty() {
        return;
    }
    if let Err(error) = runtime
        .store
        .append_messages(&conversation.scope, Some(run_id.to_owned()), messages)
        .await
    {
        conversation.protocol_violation(runtime, format!("Could not save the turn: {error}"));
    }
}

fn stop_reason_of(error: &ProviderError) -> StopReason {
    match error.kind {
        ProviderErrorKind::Api => StopReason::LlmApiError,
        ProviderErrorKind::InvalidResponse => StopReason::InvalidLlmResponse,
        ProviderErrorKind::Request => StopReason::Error,
    }
}

/// Turns one run's provider events into deltas and remembers what the model said.
struct RunOutput {
    run_id: String,
    seq: u64,
    reasoning_id: Option<String>,
    text_id: Option<String>,
    text: String,
    tool_calls: Vec<ToolCall>,
    /// The `approval_request_message` id of each tool call, reused by its lifecycle deltas.
    approval_ids: Vec<(String, String)>,
    usage_sent: bool,
}

impl RunOutput {
    fn new(run_id: &str) -> Self {
        Self {
            run_id: run_id.to_owned(),
            seq: 0,
            reasoning_id: None,
            text_id: None,
            text: String::new(),
            tool_calls: Vec::new(),
            approval_ids: Vec::new(),
            usage_sent: false,
        }
    }

    /// Shared fields of a Letta message chunk. Chunks of one message share their `id` (as on
    /// Letta Cloud); the scope is in the envelope, so the local backend's duplicate `agent_id`
    /// and `conversation_id` are left out.
    fn message_meta(&mut self, message_id: Option<&str>) -> DeltaMeta {
        self.seq += 1;
        DeltaMeta {
            kind: Some(DeltaMarker::Message),
            id: Some(message_id.map_or_else(|| new_id("message"), str::to_owned)),
            date: Some(now_iso()),
            run_id: Some(self.run_id.clone()),
            seq_id: Some(self.seq),
            ..DeltaMeta::default()
        }
    }

    fn lifecycle_meta(&self) -> DeltaMeta {
        DeltaMeta {
            id: Some(new_id("lifecycle")),
            date: Some(now_iso()),
            run_id: Some(self.run_id.clone()),
            ..DeltaMeta::default()
        }
    }

    fn lifecycle(&self, delta: Delta) -> RuntimeEvent {
        StreamDelta {
            delta,
            subagent_id: None,
        }
        .into()
    }

    fn on_event(&mut self, event: ProviderEvent) -> Vec<RuntimeEvent> {
        let delta = match event {
            ProviderEvent::Reasoning(reasoning) => {
                let id = self.reasoning_id.get_or_insert_with(|| new_id("message")).clone();
                Delta::ReasoningMessage(ReasoningMessage {
                    meta: self.message_meta(Some(&id)),
                    reasoning,
                    source: None,
                    signature: None,
                })
            }
            ProviderEvent::Text(text) => {
                let id = self.text_id.get_or_insert_with(|| new_id("message")).clone();
                self.text.push_str(&text);
                Delta::AssistantMessage(AssistantMessage {
                    meta: self.message_meta(Some(&id)),
                    content: MessageContent::Parts(vec![ContentPart::text(text)]),
                })
            }
            ProviderEvent::ToolCall(call) => {
                let tool_call = ToolCallDelta {
                    tool_call_id: Some(call.id.clone()),
                    name: Some(call.name.clone()),
                    arguments: Some(call.arguments.clone()),
                };
                let meta = self.message_meta(None);
                self.approval_ids
                    .push((call.id.clone(), meta.id.clone().unwrap_or_default()));
                self.tool_calls.push(call);
                Delta::ApprovalRequestMessage(ApprovalRequestMessage {
                    meta,
                    tool_call,
                    tool_calls: None,
                })
            }
            ProviderEvent::Usage(usage) => {
                self.usage_sent = true;
                Delta::UsageStatistics(UsageStatistics {
                    meta: self.message_meta(None),
                    prompt_tokens: usage.prompt_tokens,
                    completion_tokens: usage.completion_tokens,
                    total_tokens: usage.prompt_tokens + usage.completion_tokens,
                    cached_input_tokens: Some(usage.cached_input_tokens),
                    cache_write_tokens: None,
                    reasoning_tokens: Some(usage.reasoning_tokens),
                    context_tokens: Some(usage.prompt_tokens + usage.completion_tokens),
                    step_count: None,
                    run_ids: None,
                })
            }
            ProviderEvent::Retry(notice) => Delta::Retry(Retry {
                meta: self.lifecycle_meta(),
                message: format!("Unexpected downstream LLM API error, retrying... ({})", notice.reason),
                reason: StopReason::LlmApiError,
                attempt: notice.attempt,
                max_attempts: notice.max_attempts,
                delay_ms: notice.delay_ms,
                retry_kind: None,
                provider: None,
                from_transport: None,
                to_transport: None,
                error_code: None,
            }),
        };
        vec![self.lifecycle(delta)]
    }

    /// The run's closing chunks: usage (if the provider sent none) and the stop reason.
    fn end(&mut self, stop_reason: StopReason) -> Vec<RuntimeEvent> {
        let mut events = Vec::new();
        if !self.usage_sent {
            events.extend(self.on_event(ProviderEvent::Usage(crate::provider::Usage::default())));
        }
        events.push(self.stop_reason(stop_reason));
        events
    }

    fn stop_reason(&mut self, stop_reason: StopReason) -> RuntimeEvent {
        self.seq += 1;
        let meta = DeltaMeta {
            kind: Some(DeltaMarker::Message),
            run_id: Some(self.run_id.clone()),
            seq_id: Some(self.seq),
            ..DeltaMeta::default()
        };
        self.lifecycle(Delta::StopReason(StopReasonMessage { meta, stop_reason }))
    }

    /// The chunks of a failed run: a non-terminal `loop_error`, the `error_message`, the stop
    /// reason (docs/protocol.md §5 (i)).
    fn failure(&mut self, error: &ProviderError, stop_reason: StopReason) -> Vec<RuntimeEvent> {
        let error_type = "llm_error".to_owned();
        let api_error = ApiError {
            message_type: "error_message".into(),
            message: error.message.clone(),
            error_type: error_type.clone(),
            run_id: Some(self.run_id.clone()),
            detail: Some(error.message.clone()),
        };
        let loop_error = Delta::LoopError(LoopError {
            meta: self.lifecycle_meta(),
            message: error.message.clone(),
            stop_reason: stop_reason.clone(),
            is_terminal: false,
            api_error: Some(api_error),
        });
        let error_message = Delta::ErrorMessage(ErrorMessage {
            meta: self.message_meta(None),
            message: error.message.clone(),
            error_type,
            detail: Some(error.message.clone()),
            retryable: Some(false),
        });
        vec![
            self.lifecycle(loop_error),
            self.lifecycle(error_message),
            self.stop_reason(stop_reason),
        ]
    }

    /// Meta of a tool call's lifecycle deltas: the approval request message's id.
    fn approval_meta(&self, tool_call_id: &str) -> DeltaMeta {
        let id = self
            .approval_ids
            .iter()
            .find(|(call, _)| call == tool_call_id)
            .map(|(_, id)| id.clone());
        DeltaMeta {
            id: id.or_else(|| Some(new_id("lifecycle"))),
            ..self.lifecycle_meta()
        }
    }

    /// A server-made tool result, in both the single-result and the list form: the streaming
    /// snapshot (stable id per call) or the final result.
    fn tool_return(&self, tool_call_id: &str, result: &ToolResult, snapshot: bool) -> RuntimeEvent {
        let id = if snapshot {
            format!("synthetic-tool-return-stream-{tool_call_id}")
        } else {
            new_id("synthetic-tool-return")
        };
        let lines = |lines: &Vec<String>| (!lines.is_empty()).then(|| lines.clone());
        let status = status_of(result);
        self.lifecycle(Delta::ToolReturnMessage(ToolReturnMessage {
            meta: DeltaMeta {
                kind: Some(DeltaMarker::Message),
                id: Some(id),
                ..self.lifecycle_meta()
            },
            tool_returns: vec![ToolReturn {
                tool_call_id: tool_call_id.to_owned(),
                status: status.clone(),
                tool_return: result.text.clone(),
                stdout: lines(&result.stdout),
                stderr: lines(&result.stderr),
            }],
            tool_call_id: Some(tool_call_id.to_owned()),
            status: Some(status),
            tool_return: Some(result.text.clone()),
            stdout: None,
            stderr: None,
        }))
    }

    /// What the model said in this run, for the history.
    fn assistant_message(&self) -> Option<HistoryMessage> {
        (!self.text.is_empty() || !self.tool_calls.is_empty()).then(|| HistoryMessage::Assistant {
            text: self.text.clone(),
            tool_calls: self.tool_calls.clone(),
        })
    }
}
