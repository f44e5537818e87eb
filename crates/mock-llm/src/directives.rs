//! The directives of the newest user message, and the benchmarks' replies steered by them.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream;
use hyper::StatusCode;
use serde_json::Value;

use crate::chunks::{DONE, finish_chunk, sse_event, text_chunk, usage_chunk};
use crate::server::{ReceivedRequest, Reply, Responder};

/// Streams what the newest user message asks for with the scripted model's directives:
///
/// * `[[deltas: N]]`: `N` chunks (default 1), each text the time its connection took the chunk to write it,
///   in microseconds since the epoch, and a space (see [`Directives::stamp_of`]);
/// * `[[delay: MS]]`: wait `MS` milliseconds before each chunk;
/// * `[[reply: TEXT]]`: the text of the single chunk (default `Hello!`).
///
/// The chunks are followed by a `finish_reason: "stop"` chunk, a usage chunk and `data: [DONE]`.
#[derive(Debug)]
pub struct Directives {
    epoch: Instant,
}

impl Directives {
    /// Time stamps count from `epoch`.
    pub fn new(epoch: Instant) -> Self {
        Self { epoch }
    }

    /// When the connection took a time-stamped chunk to write it.
    pub fn stamp_of(&self, text: &str) -> Option<Instant> {
        let micros: u64 = text.trim().parse().ok()?;
        Some(self.epoch + Duration::from_micros(micros))
    }
}

impl Responder for Directives {
    /// A burst of chunks may go out in few writes.
    const WRITE_EACH_CHUNK: bool = false;

    fn respond(&self, request: ReceivedRequest) -> Reply {
        if !request.body.is_object() {
            return Reply::error(StatusCode::BAD_REQUEST, "body is not a JSON object");
        }
        let ask = Ask::parse(&newest_user_text(&request.body));
        let prompt_tokens = request.body["messages"].as_array().map_or(0, Vec::len) as u64;
        let count = ask.deltas.unwrap_or(1);
        // Without `[[deltas]]` the single chunk has a fixed text; with it, each gets a time stamp.
        let fixed = match ask.deltas {
            None => Some(ask.reply.unwrap_or_else(|| "Hello!".to_owned())),
            Some(_) => None,
        };
        let (epoch, delay) = (self.epoch, ask.delay);
        let chunks = stream::iter(0..count).then(move |_| {
            let fixed = fixed.clone();
            async move {
                if let Some(delay) = delay {
                    tokio::time::sleep(delay).await;
                }
                let text = fixed.unwrap_or_else(|| format!("{} ", epoch.elapsed().as_micros()));
                sse_event(&text_chunk(&text))
            }
        });
        let end = [
            sse_event(&finish_chunk("stop")),
            sse_event(&usage_chunk(prompt_tokens, count as u64, 0, 0)),
            Bytes::from_static(DONE),
        ];
        Reply::event_stream(chunks.chain(stream::iter(end)).boxed())
    }
}

/// What the newest user message asks for: the directives `[[deltas: N]]`, `[[delay: MS]]`,
/// `[[reply: TEXT]]`, `[[tool: NAME {json args}]]` (repeatable) and `[[fail: STATUS MESSAGE]]`,
/// written anywhere in its text. [`Directives`] reads the first three;
/// [`Conformance`](crate::Conformance) all of them.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Ask {
    pub(crate) deltas: Option<usize>,
    pub(crate) delay: Option<Duration>,
    pub(crate) reply: Option<String>,
    /// Tool calls: the tool's name and its arguments as JSON text (`{}` when none are given).
    pub(crate) tools: Vec<(String, String)>,
    /// An HTTP error status and its message.
    pub(crate) fail: Option<(u16, String)>,
}

impl Ask {
    pub(crate) fn parse(text: &str) -> Self {
        let mut ask = Self::default();
        let mut rest = text;
        while let Some(start) = rest.find("[[") {
            let Some(length) = rest[start..].find("]]") else { break };
            let directive = &rest[start + 2..start + length];
            rest = &rest[start + length + 2..];
            let (name, argument) = directive.split_once(':').unwrap_or((directive, ""));
            let argument = argument.trim();
            match name.trim() {
                "deltas" => ask.deltas = argument.parse().ok(),
                "delay" => ask.delay = argument.parse().ok().map(Duration::from_millis),
                "reply" => ask.reply = Some(argument.to_owned()),
                "tool" => {
                    let (name, arguments) = argument.split_once(char::is_whitespace).unwrap_or((argument, ""));
                    let arguments = arguments.trim();
                    let arguments = if arguments.is_empty() { "{}" } else { arguments };
                    ask.tools.push((name.to_owned(), arguments.to_owned()));
                }
                "fail" => {
                    let (status, message) = argument.split_once(char::is_whitespace).unwrap_or((argument, ""));
                    if let Ok(status) = status.parse() {
                        ask.fail = Some((status, message.trim().to_owned()));
                    }
                }
                _ => {}
            }
        }
        ask
    }
}

/// The text of the newest user message of a Chat Completions request.
pub(crate) fn newest_user_text(request: &Value) -> String {
    let Some(messages) = request["messages"].as_array() else {
        return String::new();
    };
    let Some(user) = messages.iter().rev().find(|message| message["role"] == "user") else {
        return String::new();
    };
    match &user["content"] {
        Value::String(text) => text.clone(),
        Value::Array(parts) => parts.iter().filter_map(|part| part["text"].as_str()).collect(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MockServer;
    use serde_json::json;

    /// The raw HTTP/1.1 response to `POST /v1/chat/completions` with `body`.
    async fn post(server: &MockServer<Directives>, body: &str) -> String {
        crate::server::post_chat(&server.base_url, body).await
    }

    #[tokio::test]
    async fn streams_time_stamped_chunks_then_the_end_of_the_reply() {
        let directives = Directives::new(Instant::now());
        let server = MockServer::start(directives).expect("start");
        let body = json!({"messages": [{"role": "user", "content": "go [[deltas: 3]] [[delay: 1]]"}]});
        let response = post(&server, &body.to_string()).await;
        assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
        assert!(response.contains("content-type: text/event-stream\r\n"), "{response}");
        let events: Vec<&str> = response
            .lines()
            .filter_map(|line| line.strip_prefix("data: "))
            .collect();
        assert_eq!(events.len(), 6, "{response}");
        let mut stamps = events[..3].iter().map(|event| {
            let chunk: Value = serde_json::from_str(event).expect("a JSON chunk");
            let text = chunk["choices"][0]["delta"]["content"].as_str().expect("a text chunk");
            server.responder().stamp_of(text).expect("a time stamp")
        });
        let (first, second, third) = (stamps.next(), stamps.next(), stamps.next());
        assert!(first < second && second < third && third <= Some(Instant::now()));
        assert_eq!(
            serde_json::from_str::<Value>(events[3]).expect("JSON"),
            finish_chunk("stop")
        );
        assert_eq!(
            serde_json::from_str::<Value>(events[4]).expect("JSON"),
            usage_chunk(1, 3, 0, 0)
        );
        assert_eq!(events[5], "[DONE]");

        let response = post(&server, "not json").await;
        assert!(response.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{response}");
    }

    #[test]
    fn directives_steer_the_reply() {
        assert_eq!(
            Ask::parse("go [[deltas: 50]] [[delay: 20]] [[think: x]]"),
            Ask {
                deltas: Some(50),
                delay: Some(Duration::from_millis(20)),
                ..Ask::default()
            }
        );
        let ask = Ask::parse(r#"[[tool: Bash {"command": "ls"}]] [[tool: noop]] [[fail: 400 bad request]]"#);
        assert_eq!(
            ask.tools,
            [
                ("Bash".to_owned(), r#"{"command": "ls"}"#.to_owned()),
                ("noop".to_owned(), "{}".to_owned())
            ]
        );
        assert_eq!(ask.fail, Some((400, "bad request".to_owned())));
        assert_eq!(Ask::parse("[[reply: hi there]]").reply.as_deref(), Some("hi there"));
        let request = json!({"messages": [{"role": "user", "content": "old"}, {"role": "assistant", "content": "x"},
            {"role": "user", "content": [{"type": "text", "text": "new"}]}]});
        assert_eq!(newest_user_text(&request), "new");
    }
}
