//! Stream state: what one response produced so far, turned into [`ProviderEvent`]s.

use super::chunk::{WireChunk, WireToolCallDelta};
use super::failure::{api_error, invalid_response, stream_error_message, truncate};
use crate::history::ToolCall;
use crate::provider::{EventSink, FinishReason, ProviderError, ProviderEvent, Usage};

/// What one response produced so far.
#[derive(Default)]
pub(super) struct StreamState {
    /// Tool calls being assembled, in order of appearance.
    tool_calls: Vec<PartialToolCall>,
    /// The latest usage seen.
    usage: Option<Usage>,
    /// The finish reason, once seen.
    pub(super) finish: Option<FinishReason>,
    /// `data: [DONE]` was seen.
    pub(super) done: bool,
    /// Text or reasoning went to the sink: the request can no longer be retried.
    pub(super) delivered: bool,
}

/// A tool call being assembled from fragments.
struct PartialToolCall {
    index: u64,
    id: String,
    name: String,
    arguments: String,
}

impl StreamState {
    /// Handles the data of one SSE event (or a whole JSON completion).
    pub(super) fn on_data(&mut self, data: &[u8], sink: &mut dyn EventSink) -> Result<(), ProviderError> {
        let data = data.trim_ascii();
        if self.done || data.is_empty() {
            return Ok(());
        }
        if data == b"[DONE]" {
            self.done = true;
            return Ok(());
        }
        let chunk: WireChunk<'_> = serde_json::from_slice(data).map_err(|error| {
            let quoted = String::from_utf8_lossy(data);
            invalid_response(format!(
                "invalid JSON in the response: {error}: {}",
                truncate(&quoted, 200)
            ))
        })?;
        if let Some(error) = chunk.error {
            return Err(api_error(stream_error_message(&error)));
        }
        if let Some(usage) = chunk.usage {
            self.usage = Some(usage.into());
        }
        for choice in chunk.choices.into_iter().flatten().filter(|choice| choice.index == 0) {
            if let Some(delta) = choice.delta {
                let reasoning = delta.reasoning_content.0.filter(|text| !text.is_empty());
                if let Some(reasoning) = reasoning.or(delta.reasoning.0).filter(|text| !text.is_empty()) {
                    self.delivered = true;
                    sink.event(ProviderEvent::Reasoning(reasoning.into_owned()));
                }
                if let Some(text) = delta.content.0.filter(|text| !text.is_empty()) {
                    self.delivered = true;
                    sink.event(ProviderEvent::Text(text.into_owned()));
                }
                for fragment in delta.tool_calls.into_iter().flatten() {
                    self.add_tool_fragment(fragment);
                }
            }
            if let Some(reason) = choice.finish_reason.0 {
                self.finish = Some(match &*reason {
                    "tool_calls" | "function_call" => FinishReason::ToolCalls,
                    "length" | "max_tokens" => FinishReason::MaxTokens,
                    _ => FinishReason::EndTurn,
                });
            }
        }
        Ok(())
    }

    fn add_tool_fragment(&mut self, fragment: WireToolCallDelta<'_>) {
        let id = fragment.id.0.filter(|id| !id.is_empty());
        let existing = match (fragment.index, id.as_deref()) {
            // The same index with a different id is a new call (servers that send whole calls).
            (Some(index), id) => self
                .tool_calls
                .iter()
                .rposition(|call| call.index == index)
                .filter(|&at| id.is_none_or(|id| self.tool_calls[at].id.is_empty() || self.tool_calls[at].id == id)),
            (None, Some(id)) => self.tool_calls.iter().rposition(|call| call.id == id),
            (None, None) => self.tool_calls.len().checked_sub(1),
        };
        let at = match existing {
            Some(at) => at,
            None => {
                let index = fragment
                    .index
                    .unwrap_or_else(|| self.tool_calls.iter().map(|call| call.index + 1).max().unwrap_or(0));
                self.tool_calls.push(PartialToolCall {
                    index,
                    id: String::new(),
                    name: String::new(),
                    arguments: String::new(),
                });
                self.tool_calls.len() - 1
            }
        };
        let call = &mut self.tool_calls[at];
        if let Some(id) = id
            && call.id.is_empty()
        {
            call.id = id.into_owned();
        }
        if let Some(function) = fragment.function {
            if let Some(name) = function.name.0
                && call.name != name
            {
                call.name.push_str(&name);
            }
            if let Some(arguments) = function.arguments.0 {
                call.arguments.push_str(&arguments);
            }
        }
    }

    /// Completes a response: emits the tool calls and the usage and returns why it stopped.
    pub(super) fn finish(self, sink: &mut dyn EventSink) -> Result<FinishReason, ProviderError> {
        if !self.done && self.finish.is_none() {
            return Err(invalid_response("stream ended unexpectedly"));
        }
        let mut calls = self.tool_calls;
        calls.sort_by_key(|call| call.index);
        let has_calls = !calls.is_empty();
        for (n, call) in calls.into_iter().enumerate() {
            let id = if call.id.is_empty() {
                format!("call_{n}")
            } else {
                call.id
            };
            let arguments = if call.arguments.trim().is_empty() {
                "{}".to_owned()
            } else {
                call.arguments
            };
            sink.event(ProviderEvent::ToolCall(ToolCall {
                id,
                name: call.name,
                arguments,
            }));
        }
        if let Some(usage) = self.usage {
            sink.event(ProviderEvent::Usage(usage));
        }
        Ok(match self.finish {
            _ if has_calls => FinishReason::ToolCalls,
            // `tool_calls` without any call: nothing to wait for.
            Some(FinishReason::ToolCalls) | None => FinishReason::EndTurn,
            Some(finish) => finish,
        })
    }
}
