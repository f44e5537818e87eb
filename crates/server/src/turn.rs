//! A turn: the model runs for one input batch, streamed as `stream_delta`s, with the loop and
//! device statuses around them (REFERENCE §3.5–§3.7, §5 (b), (f), (i)).
//!
//! Each run asks the provider once. A run that ends with tool calls is followed by another run
//! with their results; tools this server does not offer get an error result.

use std::sync::Arc;

use letta_app_server_protocol::{
    ApiError, ApprovalRequestMessage, AssistantMessage, ClientToolEnd, ContentPart, Delta, DeltaMarker, DeltaMeta,
    ErrorMessage, LoopError, LoopStatus, MessageContent, ReasoningMessage, Retry, RuntimeEvent, StopReason,
    StopReasonMessage, StreamDelta, ToolCallDelta, ToolReturn, ToolReturnMessage, ToolStatus, UsageStatistics,
};
use tokio_util::sync::CancellationToken;

use crate::clock::{new_id, now_iso};
use crate::conversation::{Conversation, Outcome};
use crate::provider::{
    FinishReason, HistoryMessage, ModelRequest, ProviderError, ProviderErrorKind, ProviderEvent, ToolCall,
};
use crate::runtime::Runtime;

/// Runs one turn to its end.
pub(crate) async fn run(
    runtime: Arc<Runtime>,
    conversation: Arc<Conversation>,
    content: MessageContent,
    client_ids: Vec<String>,
    cancel: CancellationToken,
) {
    let outcome = run_to_outcome(&runtime, &conversation, content, client_ids, &cancel).await;
    let mut state = conversation.state.lock().await;
    let outcome = if cancel.is_cancelled() {
        Outcome::Cancelled
    } else {
        outcome
    };
    conversation.finish_turn(&runtime, &mut state, outcome);
}

async fn run_to_outcome(
    runtime: &Arc<Runtime>,
    conversation: &Arc<Conversation>,
    content: MessageContent,
    client_ids: Vec<String>,
    cancel: &CancellationToken,
) -> Outcome {
    let user = HistoryMessage::User { content };
    conversation.state.lock().await.history.push(user.clone());
    if let Err(error) = runtime
        .store
        .append_messages(&conversation.scope, None, vec![user])
        .await
    {
        return Outcome::Failed(StopReason::Error, error.to_string());
    }
    let (provider, model) = match runtime.providers.resolve(conversation.agent.model.as_deref()) {
        Ok(resolved) => resolved,
        Err(error) => return Outcome::Failed(StopReason::Error, error),
    };
    let mut consumed = client_ids;
    loop {
        let run_id = new_id("run");
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
                messages: state.history.clone(),
                tools: Vec::new(),
            }
        };
        let mut output = RunOutput::new(conversation, &run_id);
        let result = {
            let mut sink = |event: ProviderEvent| {
                let events = output.on_event(event);
                conversation.emit_run_output(runtime, events);
            };
            tokio::select! {
                result = provider.stream(&request, &mut sink) => Some(result),
                () = cancel.cancelled() => None,
            }
        };
        let assistant = output.assistant_message();
        if let Some(message) = &assistant {
            conversation.state.lock().await.history.push(message.clone());
        }
        let result = match result {
            Some(result) if !cancel.is_cancelled() => result,
            _ => {
                save(runtime, conversation, &run_id, assistant.into_iter().collect()).await;
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
        let mut messages: Vec<HistoryMessage> = assistant.into_iter().collect();
        if output.tool_calls.is_empty() {
            save(runtime, conversation, &run_id, messages).await;
            return Outcome::Completed(stop_reason);
        }
        let results = unavailable_tools(runtime, conversation, &output).await;
        messages.extend(results);
        save(runtime, conversation, &run_id, messages).await;
    }
}

/// Answers tool calls for tools this server does not offer with error results.
async fn unavailable_tools(runtime: &Runtime, conversation: &Conversation, output: &RunOutput) -> Vec<HistoryMessage> {
    let mut state = conversation.state.lock().await;
    Conversation::set_status(&mut state, LoopStatus::ExecutingClientSideTool);
    let mut events = vec![Conversation::loop_event(&state), Conversation::device_event(&state)];
    let mut results = Vec::new();
    for call in &output.tool_calls {
        let text = format!("Unknown tool: {}", call.name);
        events.push(output.lifecycle(Delta::ClientToolEnd(ClientToolEnd {
            meta: output.lifecycle_meta(),
            tool_call_id: call.id.clone(),
            status: ToolStatus::Error,
        })));
        events.push(output.tool_return(&call.id, &text, ToolStatus::Error));
        results.push(HistoryMessage::ToolResult {
            tool_call_id: call.id.clone(),
            content: text,
            is_error: true,
        });
    }
    state.history.extend(results.iter().cloned());
    conversation.emit_run_output(runtime, events);
    results
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
    agent_id: String,
    conversation_id: String,
    run_id: String,
    seq: u64,
    reasoning_id: Option<String>,
    text_id: Option<String>,
    text: String,
    tool_calls: Vec<ToolCall>,
    usage_sent: bool,
}

impl RunOutput {
    fn new(conversation: &Conversation, run_id: &str) -> Self {
        Self {
            agent_id: conversation.scope.agent_id.clone(),
            conversation_id: conversation.scope.conversation_id.clone(),
            run_id: run_id.to_owned(),
            seq: 0,
            reasoning_id: None,
            text_id: None,
            text: String::new(),
            tool_calls: Vec::new(),
            usage_sent: false,
        }
    }

    /// Shared fields of a Letta message chunk; chunks of one message share `id` and `otid`.
    fn message_meta(&mut self, message_id: Option<&str>) -> DeltaMeta {
        self.seq += 1;
        let id = message_id.map_or_else(|| new_id("message"), str::to_owned);
        DeltaMeta {
            kind: Some(DeltaMarker::Message),
            otid: Some(id.trim_start_matches("message-").to_owned()),
            id: Some(id),
            date: Some(now_iso()),
            run_id: Some(self.run_id.clone()),
            seq_id: Some(self.seq),
            agent_id: Some(self.agent_id.clone()),
            conversation_id: Some(self.conversation_id.clone()),
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
                self.tool_calls.push(call);
                Delta::ApprovalRequestMessage(ApprovalRequestMessage {
                    meta: self.message_meta(None),
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
    /// reason (REFERENCE §5 (i)).
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

    /// A server-made tool result, in both the single-result and the list form.
    fn tool_return(&self, tool_call_id: &str, text: &str, status: ToolStatus) -> RuntimeEvent {
        self.lifecycle(Delta::ToolReturnMessage(ToolReturnMessage {
            meta: DeltaMeta {
                kind: Some(DeltaMarker::Message),
                id: Some(new_id("synthetic-tool-return")),
                ..self.lifecycle_meta()
            },
            tool_returns: vec![ToolReturn {
                tool_call_id: tool_call_id.to_owned(),
                status: status.clone(),
                tool_return: text.to_owned(),
                stdout: None,
                stderr: None,
            }],
            tool_call_id: Some(tool_call_id.to_owned()),
            status: Some(status),
            tool_return: Some(text.to_owned()),
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
