//! The scripted model: the embedded offline default. Deterministic, no network, and steerable
//! from the user's text with `[[directive: argument]]` markers, so controller authors can test
//! their own code without a model:
//!
//! | directive | effect |
//! |---|---|
//! | `[[reply: TEXT]]` | reply with exactly `TEXT` (default: `I received: <your text without directives>`) |
//! | `[[chunks: N]]` | stream the reply in `N` chunks (default: one chunk per word, at most 8) |
//! | `[[deltas: N]]` | reply with `N` chunks `t0 t1 t2 …` (for load tests) |
//! | `[[think: TEXT]]` | stream `TEXT` as reasoning before the reply |
//! | `[[tool: NAME {"json":"args"}]]` | call tool `NAME` with these arguments (repeat for parallel calls); once the results come back, the reply lists them |
//! | `[[delay: MS]]` | wait `MS` milliseconds before each chunk |
//! | `[[fail: STATUS MESSAGE]]` | fail the model request like an HTTP error `STATUS` (5xx and 429 count as provider outages) |
//!
//! Directives are read from the newest user message. A compaction's request
//! ([`SUMMARY_REQUEST`](super::SUMMARY_REQUEST)) gets a deterministic summary.

use std::time::Duration;

use letta_app_server_protocol::{ContentPart, MessageContent};

use super::{
    EventSink, FinishReason, ModelProvider, ModelRequest, ProviderError, ProviderErrorKind, ProviderEvent,
    ProviderFuture, SUMMARY_REQUEST, Usage,
};
use crate::history::{HistoryMessage, ToolCall};

/// The scripted provider.
#[derive(Debug, Clone, Copy, Default)]
pub struct Scripted;

/// What the newest user message asks the scripted model to do.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Script {
    /// The user text without directives.
    pub text: String,
    /// `[[reply: …]]`.
    pub reply: Option<String>,
    /// `[[chunks: …]]`.
    pub chunks: Option<usize>,
    /// `[[deltas: …]]`.
    pub deltas: Option<usize>,
    /// `[[think: …]]`.
    pub think: Option<String>,
    /// `[[tool: …]]`, in order: name and JSON arguments.
    pub tools: Vec<(String, String)>,
    /// `[[delay: …]]`.
    pub delay: Option<Duration>,
    /// `[[fail: …]]`: status and message.
    pub fail: Option<(u16, String)>,
}

impl Script {
    /// Reads the directives out of `text`.
    pub fn parse(text: &str) -> Self {
        let mut script = Self::default();
        let mut plain = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("[[") {
            let Some(length) = rest[start..].find("]]") else { break };
            plain.push_str(&rest[..start]);
            let directive = &rest[start + 2..start + length];
            rest = &rest[start + length + 2..];
            let (name, argument) = directive.split_once(':').unwrap_or((directive, ""));
            let argument = argument.trim();
            match name.trim() {
                "reply" => script.reply = Some(argument.to_owned()),
                "chunks" => script.chunks = argument.parse().ok(),
                "deltas" => script.deltas = argument.parse().ok(),
                "think" => script.think = Some(argument.to_owned()),
                "delay" => script.delay = argument.parse().ok().map(Duration::from_millis),
                "tool" => {
                    let (name, arguments) = argument.split_once(char::is_whitespace).unwrap_or((argument, "{}"));
                    script.tools.push((name.to_owned(), arguments.trim().to_owned()));
                }
                "fail" => {
                    let (status, message) = argument
                        .split_once(char::is_whitespace)
                        .unwrap_or((argument, "scripted failure"));
                    script.fail = Some((status.parse().unwrap_or(500), message.trim().to_owned()));
                }
                _ => {
                    plain.push_str("[[");
                    plain.push_str(directive);
                    plain.push_str("]]");
                }
            }
        }
        plain.push_str(rest);
        script.text = plain.split_whitespace().collect::<Vec<_>>().join(" ");
        script
    }

    fn reply_chunks(&self) -> Vec<String> {
        if let Some(count) = self.deltas {
            return (0..count).map(|i| format!("t{i} ")).collect();
        }
        let reply = self
            .reply
            .clone()
            .unwrap_or_else(|| format!("I received: {}", self.text));
        split(
            &reply,
            self.chunks
                .unwrap_or_else(|| reply.split_whitespace().count().clamp(1, 8)),
        )
    }
}

/// Splits `text` into `count` pieces at word boundaries where possible; the pieces concatenate
/// back to `text`.
fn split(text: &str, count: usize) -> Vec<String> {
    let count = count.max(1);
    let chars: Vec<char> = text.chars().collect();
    let mut pieces = Vec::with_capacity(count);
    let mut start = 0;
    for index in 1..=count {
        let mut end = chars.len() * index / count;
        if index < count {
            while end < chars.len() && end > start && !chars[end - 1].is_whitespace() {
                end += 1;
            }
        } else {
            end = chars.len();
        }
        pieces.push(chars[start..end.max(start)].iter().collect::<String>());
        start = end.max(start);
    }
    pieces.retain(|piece| !piece.is_empty());
    if pieces.is_empty() {
        pieces.push(String::new());
    }
    pieces
}

fn text_of(content: &MessageContent) -> String {
    match content {
        MessageContent::Text(text) => text.clone(),
        MessageContent::Parts(parts) => parts
            .iter()
            .filter_map(|part| match part {
                ContentPart::Text(part) => Some(part.text.as_str()),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join(""),
    }
}

fn words(request: &ModelRequest) -> u64 {
    let message_words: usize = request
        .messages
        .iter()
        .map(|message| match message {
            HistoryMessage::User { content } => text_of(content).split_whitespace().count(),
            HistoryMessage::Assistant { text, .. } => text.split_whitespace().count(),
            HistoryMessage::ToolResult { content, .. } => content.split_whitespace().count(),
            HistoryMessage::Error { .. } => 0,
        })
        .sum();
    (message_words + request.system.split_whitespace().count()) as u64
}

/// Paces the chunks: the scripted delay before each, or, like a real model, a pause for the
/// consumers (and the rest of the server) every 16 chunks.
struct Pacer {
    delay: Option<Duration>,
    chunks: u32,
}

impl Pacer {
    async fn pause(&mut self, sink: &mut dyn EventSink) {
        self.chunks += 1;
        match self.delay {
            Some(delay) => tokio::time::sleep(delay).await,
            None if self.chunks.is_multiple_of(16) => {
                sink.ready().await;
                tokio::task::yield_now().await;
            }
            None => {}
        }
    }
}

impl ModelProvider for Scripted {
    fn stream<'a>(&'a self, request: &'a ModelRequest, sink: &'a mut dyn EventSink) -> ProviderFuture<'a> {
        Box::pin(async move {
            let newest_user = request.messages.iter().rev().find_map(|message| match message {
                HistoryMessage::User { content } => Some(text_of(content)),
                _ => None,
            });
            if newest_user.as_deref() == Some(SUMMARY_REQUEST) {
                return summarise(request, sink).await;
            }
            let script = Script::parse(newest_user.as_deref().unwrap_or_default());
            if let Some((status, message)) = &script.fail {
                let kind = if *status >= 500 || *status == 429 {
                    ProviderErrorKind::Api
                } else {
                    ProviderErrorKind::Request
                };
                return Err(ProviderError {
                    message: format!("{status}: {message}"),
                    kind,
                });
            }
            let pending_results: Vec<&HistoryMessage> = request
                .messages
                .iter()
                .rev()
                .take_while(|message| matches!(message, HistoryMessage::ToolResult { .. }))
                .collect();
            let mut pacer = Pacer {
                delay: script.delay,
                chunks: 0,
            };
            if let Some(think) = script.think.as_deref().filter(|_| pending_results.is_empty()) {
                for piece in split(think, think.split_whitespace().count().clamp(1, 4)) {
                    pacer.pause(sink).await;
                    sink.event(ProviderEvent::Reasoning(piece));
                }
            }
            let mut completion = 0;
            let finish = if !script.tools.is_empty() && pending_results.is_empty() {
                for (index, (name, arguments)) in script.tools.iter().enumerate() {
                    pacer.pause(sink).await;
                    completion += 1;
                    let id = format!("call_{}", index + 1);
                    sink.event(ProviderEvent::ToolCall(ToolCall {
                        id,
                        name: name.clone(),
                        arguments: arguments.clone(),
                    }));
                }
                FinishReason::ToolCalls
            } else {
                let chunks = if pending_results.is_empty() {
                    script.reply_chunks()
                } else {
                    let results: Vec<String> = pending_results
                        .iter()
                        .rev()
                        .filter_map(|message| match message {
                            HistoryMessage::ToolResult {
                                tool_call_id,
                                content,
                                is_error,
                            } => Some(format!(
                                "{tool_call_id} {}: {content}",
                                if *is_error { "failed" } else { "returned" }
                            )),
                            _ => None,
                        })
                        .collect();
                    split(
                        &format!("Tool results: {}", results.join("; ")),
                        script.chunks.unwrap_or(4),
                    )
                };
                for chunk in chunks {
                    pacer.pause(sink).await;
                    completion += 1;
                    sink.event(ProviderEvent::Text(chunk));
                }
                FinishReason::EndTurn
            };
            sink.event(ProviderEvent::Usage(Usage {
                prompt_tokens: words(request),
                completion_tokens: completion,
                ..Usage::default()
            }));
            Ok(finish)
        })
    }
}

/// The scripted model's summary of a compaction request: deterministic, naming how much it
/// covers and the first and last things the user said.
async fn summarise(request: &ModelRequest, sink: &mut dyn EventSink) -> Result<FinishReason, ProviderError> {
    let compacted = &request.messages[..request.messages.len() - 1];
    let said: Vec<String> = compacted
        .iter()
        .filter_map(|message| match message {
            HistoryMessage::User { content } => Some(Script::parse(&text_of(content)).text),
            _ => None,
        })
        .collect();
    let quote = |text: Option<&String>| {
        let text = text.map_or("", String::as_str);
        text.chars().take(80).collect::<String>()
    };
    let summary = format!(
        "Summary of {} earlier messages ({} from the user). The user first said \"{}\" and last said \"{}\".",
        compacted.len(),
        said.len(),
        quote(said.first()),
        quote(said.last()),
    );
    sink.event(ProviderEvent::Text(summary));
    sink.event(ProviderEvent::Usage(Usage {
        prompt_tokens: words(request),
        completion_tokens: 1,
        ..Usage::default()
    }));
    Ok(FinishReason::EndTurn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directives_are_read_and_removed_from_the_text() {
        let script = Script::parse(
            r#"hello [[reply: Hi there]] [[chunks: 3]] world [[tool: Bash {"command":"ls"}]] [[fail: 503 down]]"#,
        );
        assert_eq!(script.text, "hello world");
        assert_eq!(script.reply.as_deref(), Some("Hi there"));
        assert_eq!(script.chunks, Some(3));
        assert_eq!(
            script.tools,
            vec![("Bash".to_owned(), r#"{"command":"ls"}"#.to_owned())]
        );
        assert_eq!(script.fail, Some((503, "down".to_owned())));
        assert_eq!(
            Script::parse("no directives [[ unclosed").text,
            "no directives [[ unclosed"
        );
    }

    #[test]
    fn chunks_concatenate_back_to_the_reply() {
        for (text, count) in [("one two three four five", 3), ("short", 5), ("", 2), ("añ ñb ç", 2)] {
            let pieces = split(text, count);
            assert_eq!(pieces.concat(), text);
            assert!(pieces.len() <= count.max(1));
        }
        assert_eq!(Script::parse("[[deltas: 3]]").reply_chunks(), ["t0 ", "t1 ", "t2 "]);
    }
}
