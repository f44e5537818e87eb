//! One run's output: the provider's events turned into `stream_delta`s, the closing chunks, and
//! what the model said, for the history (docs/protocol.md §3.5, §3.7, §5 (i)).

use letta_app_server_protocol::{
    ApiError, ApprovalRequestMessage, AssistantMessage, ContentPart, Delta, DeltaMarker, DeltaMeta, ErrorMessage,
    LoopError, MessageContent, ReasoningMessage, Retry, RuntimeEvent, StopReason, StopReasonMessage, StreamDelta,
    ToolCallDelta, ToolReturn, ToolReturnMessage, ToolStatus, UsageStatistics,
};

use crate::clock::{new_id, now_iso};
use crate::history::{HistoryMessage, ToolCall};
use crate::provider::{ProviderError, ProviderEvent};
use crate::tools::ToolResult;
use crate::transcript::{reasoning_id, tool_call_message_id};

/// Turns one run's provider events into deltas and remembers what the model said.
pub(super) struct RunOutput {
    pub(super) run_id: String,
    seq: u64,
    /// The id the history lists this run's reply under; its reasoning and tool calls have ids
    /// derived from it ([`reasoning_id`], [`tool_call_message_id`]).
    message_id: String,
    reasoning: String,
    pub(super) text: String,
    pub(super) tool_calls: Vec<ToolCall>,
    /// The `approval_request_message` id of each tool call, reused by its lifecycle deltas.
    approval_ids: Vec<(String, String)>,
    usage_sent: bool,
}

impl RunOutput {
    pub(super) fn new(run_id: &str) -> Self {
        Self {
            run_id: run_id.to_owned(),
            seq: 0,
            message_id: new_id("message"),
            reasoning: String::new(),
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

    pub(super) fn lifecycle_meta(&self) -> DeltaMeta {
        DeltaMeta {
            id: Some(new_id("lifecycle")),
            date: Some(now_iso()),
            run_id: Some(self.run_id.clone()),
            ..DeltaMeta::default()
        }
    }

    pub(super) fn lifecycle(&self, delta: Delta) -> RuntimeEvent {
        StreamDelta {
            delta,
            subagent_id: None,
        }
        .into()
    }

    pub(super) fn on_event(&mut self, event: ProviderEvent) -> Vec<RuntimeEvent> {
        let delta = match event {
            ProviderEvent::Reasoning(reasoning) => {
                let id = reasoning_id(&self.message_id);
                self.reasoning.push_str(&reasoning);
                Delta::ReasoningMessage(ReasoningMessage {
                    meta: self.message_meta(Some(&id)),
                    reasoning,
                    source: None,
                    signature: None,
                })
            }
            ProviderEvent::Text(text) => {
                let id = self.message_id.clone();
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
                let meta = self.message_meta(Some(&tool_call_message_id(&self.message_id, &call.id)));
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
                    prompt_tokens: Some(usage.prompt_tokens),
                    completion_tokens: Some(usage.completion_tokens),
                    total_tokens: Some(usage.prompt_tokens + usage.completion_tokens),
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
    pub(super) fn end(&mut self, stop_reason: StopReason) -> Vec<RuntimeEvent> {
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
    pub(super) fn failure(&mut self, error: &ProviderError, stop_reason: StopReason) -> Vec<RuntimeEvent> {
        let error_type = "llm_error".to_owned();
        let api_error = ApiError {
            message_type: "error_message".into(),
            message: error.message.clone(),
            error_type: error_type.clone(),
            run_id: Some(self.run_id.clone()),
            detail: Some(error.message.clone()),
        };
        let loop_error = Delta::LoopError(LoopError {
            client_message_ids: None,
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
    pub(super) fn approval_meta(&self, tool_call_id: &str) -> DeltaMeta {
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
    pub(super) fn tool_return(&self, tool_call_id: &str, result: &ToolResult, snapshot: bool) -> RuntimeEvent {
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
    pub(super) fn assistant_message(&self) -> Option<HistoryMessage> {
        (!self.text.is_empty() || !self.tool_calls.is_empty() || !self.reasoning.is_empty())
            .then(|| self.reply(self.tool_calls.clone()))
    }

    /// The reply so far with these tool calls.
    pub(super) fn reply(&self, tool_calls: Vec<ToolCall>) -> HistoryMessage {
        HistoryMessage::Assistant {
            id: Some(self.message_id.clone()),
            reasoning: (!self.reasoning.is_empty()).then(|| self.reasoning.clone()),
            text: self.text.clone(),
            tool_calls,
        }
    }
}

pub(super) fn status_of(result: &ToolResult) -> ToolStatus {
    if result.is_error {
        ToolStatus::Error
    } else {
        ToolStatus::Success
    }
}
