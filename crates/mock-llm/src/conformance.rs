//! The conformance kit's model: steered by the newest user message, the same behind any server.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream;
use hyper::StatusCode;
use serde_json::{Value, json};

use crate::chunks::{DONE, finish_chunk, sse_event, text_chunk, tool_chunk, usage_chunk};
use crate::directives::{Ask, newest_user_text};
use crate::server::{ReceivedRequest, Reply, Responder};

/// The most chunks a reply's words are streamed in.
const MAX_WORD_CHUNKS: usize = 8;

/// The model behind `letta-app-server-tools conformance`. It is stateless: every request is
/// answered from its own messages, so it behaves the same behind any server.
///
/// * A request in which tool results follow the newest user message (a turn going on after its
///   tools ran) gets the text `Tool result: <content>` (several results joined by `; `).
/// * Any other request follows the directives of the newest user message:
///   * `[[fail: STATUS MESSAGE]]`: that HTTP error status, with `{"error": {"message": MESSAGE}}`;
///   * `[[tool: NAME {json args}]]` (repeatable): calls to those tools, then `finish_reason:
///     "tool_calls"`;
///   * `[[deltas: N]]`: the text `t0 t1 … t<N-1> `, one chunk per word;
///   * otherwise `[[reply: TEXT]]` (default `OK`), one chunk per word (at most 8 chunks);
///   * `[[delay: MS]]`: a wait of `MS` milliseconds before each chunk.
///
/// A streamed answer (`stream: true`) ends with a `finish_reason` chunk, a usage chunk when
/// `stream_options.include_usage` asks for one, and `data: [DONE]`; any other request gets one
/// `chat.completion` object.
#[derive(Debug)]
pub struct Conformance {
    /// Tool call ids are `call_<prefix>_<n>`: unique across the model servers a run may use.
    prefix: u64,
    calls: AtomicU64,
}

impl Default for Conformance {
    fn default() -> Self {
        Self {
            prefix: RandomState::new().hash_one(std::process::id()),
            calls: AtomicU64::new(0),
        }
    }
}

/// What one request is answered with.
#[derive(Debug, PartialEq)]
enum Answer {
    Fail(StatusCode, String),
    Text(Vec<String>),
    /// `(id, name, arguments)` of each call.
    Tools(Vec<(String, String, String)>),
}

impl Conformance {
    fn answer(&self, request: &Value) -> (Answer, Option<Duration>) {
        if let Some(results) = tool_results(request) {
            return (
                Answer::Text(words(&format!("Tool result: {}", results.join("; ")))),
                None,
            );
        }
        let ask = Ask::parse(&newest_user_text(request));
        let answer = if let Some((status, message)) = ask.fail {
            Answer::Fail(
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                message,
            )
        } else if !ask.tools.is_empty() {
            let calls = ask.tools.into_iter().map(|(name, arguments)| {
                let n = self.calls.fetch_add(1, Ordering::Relaxed) + 1;
                (format!("call_{:016x}_{n}", self.prefix), name, arguments)
            });
            Answer::Tools(calls.collect())
        } else if let Some(count) = ask.deltas {
            Answer::Text((0..count.min(MAX_DELTAS)).map(|i| format!("t{i} ")).collect())
        } else {
            Answer::Text(words(ask.reply.as_deref().unwrap_or("OK")))
        };
        (answer, ask.delay)
    }
}

/// The most chunks `[[deltas: N]]` gets: the kit's model runs as a long-lived process that any
/// local client (or a user typing through the server under test) can reach.
const MAX_DELTAS: usize = 10_000;

impl Responder for Conformance {
    /// A reply may go out in few writes.
    const WRITE_EACH_CHUNK: bool = false;

    fn respond(&self, request: ReceivedRequest) -> Reply {
        let body = &request.body;
        if !body.is_object() {
            return Reply::error(StatusCode::BAD_REQUEST, "body is not a JSON object");
        }
        let (answer, delay) = self.answer(body);
        let model = body["model"].as_str().unwrap_or("conformance").to_owned();
        let prompt_tokens = body["messages"].as_array().map_or(0, Vec::len) as u64;
        let (chunks, finish) = match answer {
            Answer::Fail(status, message) => return Reply::error(status, &message),
            Answer::Text(pieces) => (pieces.iter().map(|piece| text_chunk(piece)).collect::<Vec<_>>(), "stop"),
            Answer::Tools(calls) => {
                let chunks = calls.iter().enumerate().map(|(index, (id, name, arguments))| {
                    tool_chunk(index as u64, Some(id), Some(name), Some(arguments))
                });
                (chunks.collect(), "tool_calls")
            }
        };
        let usage = usage_chunk(prompt_tokens, chunks.len() as u64, 0, 0);
        if body["stream"] != true {
            return Reply::json(&completion(&model, &chunks, finish, &usage));
        }
        let id = format!(
            "chatcmpl-{:016x}-{}",
            self.prefix,
            self.calls.fetch_add(1, Ordering::Relaxed)
        );
        let stamp = move |mut chunk: Value| {
            chunk["id"] = json!(id);
            chunk["created"] = json!(0);
            chunk["model"] = json!(model);
            sse_event(&chunk)
        };
        let mut end = vec![stamp(finish_chunk(finish))];
        if body["stream_options"]["include_usage"] == true {
            end.push(stamp(usage));
        }
        end.push(Bytes::from_static(DONE));
        let body = stream::iter(chunks.into_iter().map(stamp).collect::<Vec<_>>()).then(move |event| async move {
            if let Some(delay) = delay {
                tokio::time::sleep(delay).await;
            }
            event
        });
        Reply::event_stream(body.chain(stream::iter(end)).boxed())
    }
}

/// The contents of the tool results that follow the newest user message; `None` when there are
/// none.
fn tool_results(request: &Value) -> Option<Vec<String>> {
    let messages = request["messages"].as_array()?;
    let after_user = messages
        .iter()
        .rposition(|message| message["role"] == "user")
        .map_or(0, |user| user + 1);
    let results: Vec<String> = messages[after_user..]
        .iter()
        .filter(|message| message["role"] == "tool")
        .map(|message| match &message["content"] {
            Value::String(text) => text.clone(),
            Value::Array(parts) => parts.iter().filter_map(|part| part["text"].as_str()).collect(),
            other => other.to_string(),
        })
        .collect();
    (!results.is_empty()).then_some(results)
}

/// `text` cut after its spaces into at most [`MAX_WORD_CHUNKS`] pieces (the last holds the rest).
fn words(text: &str) -> Vec<String> {
    let mut pieces: Vec<String> = text.split_inclusive(' ').map(str::to_owned).collect();
    if pieces.len() > MAX_WORD_CHUNKS {
        let rest = pieces.split_off(MAX_WORD_CHUNKS - 1).concat();
        pieces.push(rest);
    }
    if pieces.is_empty() {
        pieces.push(String::new());
    }
    pieces
}

/// A `chat.completion` object holding what `chunks` stream.
fn completion(model: &str, chunks: &[Value], finish: &str, usage: &Value) -> Value {
    let deltas = chunks.iter().map(|chunk| &chunk["choices"][0]["delta"]);
    let content: String = deltas.clone().filter_map(|delta| delta["content"].as_str()).collect();
    let tool_calls: Vec<Value> = deltas
        .filter_map(|delta| delta["tool_calls"][0].as_object())
        .map(|call| json!({"id": call["id"], "type": "function", "function": call["function"]}))
        .collect();
    let mut message = json!({"role": "assistant", "content": (!content.is_empty()).then_some(content)});
    if !tool_calls.is_empty() {
        message["tool_calls"] = json!(tool_calls);
    }
    json!({
        "id": "chatcmpl-conformance",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": usage["usage"],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MockServer;

    /// The `data:` events of the raw HTTP/1.1 response to `POST /v1/chat/completions` with `body`.
    async fn post(server: &MockServer<Conformance>, body: &Value) -> (String, Vec<Value>) {
        let response = crate::server::post_chat(&server.base_url, &body.to_string()).await;
        let events = response
            .lines()
            .filter_map(|line| line.strip_prefix("data: "))
            .map(|event| serde_json::from_str(event).unwrap_or_else(|_| json!(event)))
            .collect();
        (response, events)
    }

    fn text_of(events: &[Value]) -> String {
        let texts = events
            .iter()
            .filter_map(|event| event["choices"][0]["delta"]["content"].as_str());
        texts.collect()
    }

    #[tokio::test]
    async fn follows_the_directives_and_names_tool_results() {
        let server = MockServer::start(Conformance::default()).expect("start");
        let user = |text: &str| json!({"stream": true, "messages": [{"role": "user", "content": text}]});

        let (_, events) = post(&server, &user("hi [[reply: one two three]] [[delay: 1]]")).await;
        assert_eq!(text_of(&events), "one two three");
        assert_eq!(events.len(), 3 + 2, "{events:?}");
        assert_eq!(events[3]["choices"][0]["finish_reason"], "stop");
        assert_eq!(events[4], "[DONE]");

        let mut with_usage = user("[[deltas: 3]]");
        with_usage["stream_options"] = json!({"include_usage": true});
        let (_, events) = post(&server, &with_usage).await;
        assert_eq!(text_of(&events), "t0 t1 t2 ");
        assert_eq!(events[4]["usage"]["completion_tokens"], 3);

        let (_, events) = post(&server, &user(r#"[[tool: Bash {"command": "sleep 0"}]]"#)).await;
        let call = &events[0]["choices"][0]["delta"]["tool_calls"][0];
        assert_eq!(call["function"]["name"], "Bash");
        assert_eq!(call["function"]["arguments"], r#"{"command": "sleep 0"}"#);
        assert_eq!(events[1]["choices"][0]["finish_reason"], "tool_calls");

        let continued = json!({"stream": true, "messages": [
            {"role": "user", "content": "[[tool: lookup {}]]"},
            {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": [{"type": "text", "text": "Sunny"}]},
        ]});
        let (_, events) = post(&server, &continued).await;
        assert_eq!(text_of(&events), "Tool result: Sunny");

        let (response, _) = post(&server, &user("[[fail: 400 no such model]]")).await;
        assert!(response.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{response}");
        assert!(
            response.contains(r#"{"error":{"message":"no such model"}}"#),
            "{response}"
        );

        let (response, _) = post(
            &server,
            &json!({"messages": [{"role": "user", "content": "[[tool: a {}]]"}]}),
        )
        .await;
        let json = &response[response.find('{').expect("a body")..=response.rfind('}').expect("a body")];
        let body: Value = serde_json::from_str(json).expect("JSON");
        assert_eq!(body["choices"][0]["message"]["tool_calls"][0]["function"]["name"], "a");
        assert_eq!(body["choices"][0]["finish_reason"], "tool_calls");
    }

    #[test]
    fn long_replies_are_cut_into_at_most_eight_chunks() {
        let pieces = words("a b c d e f g h i j");
        assert_eq!(pieces.len(), 8);
        assert_eq!(pieces.concat(), "a b c d e f g h i j");
        assert_eq!(words(""), [""]);
    }
}
