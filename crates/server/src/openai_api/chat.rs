//! `POST /v1/chat/completions`: one turn of the agent the `model` names, answered as a
//! `chat.completion` or streamed as `chat.completion.chunk`s.
//!
//! An `Idempotency-Key` (or `X-Idempotency-Key`) makes a retry replay the first request's
//! outcome instead of running the message again: while it runs, a retry waits for it; once it
//! succeeded, its outcome is stored (see [`crate::store`]: the newest 1024, for 24 hours); a
//! failed one is forgotten, so that a retry runs again. A replay streams its reply as one chunk.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::{StreamExt, stream};
use hyper::header::HeaderMap;
use hyper::{Response, StatusCode};
use letta_app_server_protocol::JsonObject;
use serde_json::{Value, json};
use tokio::sync::watch;

use super::content::{Message, content, prompt};
use super::turn::{self, Forget, Outcome, Piece, Turn};
use super::{
    Api, ApiError, Body, Claim, chat_key, data_event, event_stream, header_key, json_response, model_of, unix_now,
};

/// The `[DONE]` event that ends a stream.
const DONE: &[u8] = b"data: [DONE]\n\n";

/// What a completion's chunks share.
struct Completion {
    id: String,
    created: i64,
    model: String,
}

impl Completion {
    fn chunk(&self, delta: Value, finish_reason: Option<&str>) -> Bytes {
        data_event(&json!({
            "id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        }))
    }

    /// The events that end a stream with `outcome`: the final chunk (and the usage chunk), or
    /// the error; then `[DONE]`.
    fn ending(&self, outcome: &Outcome, include_usage: bool) -> Vec<Bytes> {
        let mut events = Vec::new();
        match &outcome.failure {
            Some(failure) => events.push(data_event(&json!({
                "error": {"message": failure.message, "type": "server_error", "param": null, "code": null},
            }))),
            None => {
                events.push(self.chunk(json!({}), Some(finish_reason(outcome))));
                if include_usage {
                    events.push(data_event(&json!({
                        "id": self.id, "object": "chat.completion.chunk", "created": self.created,
                        "model": self.model, "choices": [], "usage": usage(outcome),
                    })));
                }
            }
        }
        events.push(Bytes::from_static(DONE));
        events
    }

    /// The non-streamed answer.
    fn response(&self, outcome: &Outcome) -> Response<Body> {
        if let Some(failure) = &outcome.failure {
            return ApiError::failed(failure).response();
        }
        json_response(
            StatusCode::OK,
            &json!({
                "id": self.id, "object": "chat.completion", "created": self.created, "model": self.model,
                "choices": [{
                    "index": 0,
                    "message": {"role": "assistant", "content": outcome.text},
                    "finish_reason": finish_reason(outcome),
                }],
                "usage": usage(outcome),
            }),
        )
    }
}

fn finish_reason(outcome: &Outcome) -> &'static str {
    if outcome.truncated { "length" } else { "stop" }
}

/// The `usage` of a completion.
fn usage(outcome: &Outcome) -> Value {
    let usage = outcome.usage;
    let mut value = json!({
        "prompt_tokens": usage.prompt, "completion_tokens": usage.completion, "total_tokens": usage.total,
    });
    if let Some(reasoning) = usage.reasoning {
        value["completion_tokens_details"] = json!({"reasoning_tokens": reasoning});
    }
    value
}

impl Api {
    /// `POST /v1/chat/completions` `{model, messages, stream?, stream_options?}`.
    pub(super) async fn chat_completions(
        self: &Arc<Self>,
        headers: &HeaderMap,
        body: JsonObject,
    ) -> Result<Response<Body>, ApiError> {
        let model = model_of(&body)?;
        let messages = match body.get("messages") {
            Some(Value::Array(messages)) if !messages.is_empty() => messages,
            _ => return Err(ApiError::invalid("you must provide a non-empty messages array").param("messages")),
        };
        let messages = messages
            .iter()
            .map(|message| match message["role"].as_str() {
                Some(role) => Ok(Message {
                    role,
                    content: &message["content"],
                }),
                None => Err(ApiError::invalid("every message needs a role").param("messages")),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let prompt = prompt(&messages, "messages")?;
        let streaming = body.get("stream") == Some(&Value::Bool(true));
        let include_usage = body
            .get("stream_options")
            .is_some_and(|options| options["include_usage"] == true);
        let agent_id = self.agent_of(&model).await?;
        let chat_key = chat_key(headers, streaming)?;
        let idempotency = match header_key(headers, "idempotency-key")? {
            Some(key) => Some(key),
            None => header_key(headers, "x-idempotency-key")?,
        };
        let completion = Completion {
            id: format!("chatcmpl-{}", uuid::Uuid::new_v4()),
            created: unix_now(),
            model,
        };
        let claim = match &idempotency {
            Some(key) => {
                // A JSON array: no chat key and idempotency key can make another pair's.
                let key = json!([agent_id, chat_key.as_deref().unwrap_or_default(), key]).to_string();
                self.claim(&key, &agent_id).await?
            }
            None => Claim::Run(watch::channel(None).0),
        };
        let outcome = match claim {
            Claim::Replay(earlier) => {
                let outcome = turn::settled(earlier).await;
                if !streaming {
                    return Ok(completion.response(&outcome));
                }
                let mut events = vec![completion.chunk(json!({"role": "assistant", "content": ""}), None)];
                if outcome.failure.is_none() && !outcome.text.is_empty() {
                    events.push(completion.chunk(json!({"content": outcome.text}), None));
                }
                events.extend(completion.ending(&outcome, include_usage));
                return Ok(event_stream(stream::iter(events)));
            }
            Claim::Run(outcome) => outcome,
        };
        let (scope, forget) = match &chat_key {
            Some(key) => (self.chat_conversation(&agent_id, key).await?, Forget::Never),
            None => (
                self.new_conversation(&agent_id, true, prompt.history).await?,
                Forget::Always,
            ),
        };
        let turn = Turn {
            scope,
            input: content(prompt.input),
            forget,
        };
        let settled = outcome.subscribe();
        let pieces = turn::start(self, turn, outcome);
        if !streaming {
            drop(pieces);
            let outcome = turn::settled(settled).await;
            return Ok(completion.response(&outcome));
        }
        let first = completion.chunk(json!({"role": "assistant", "content": ""}), None);
        let completion = Arc::new(completion);
        let texts = {
            let completion = completion.clone();
            stream::unfold(pieces, |mut pieces| async move {
                pieces.recv().await.map(|piece| (piece, pieces))
            })
            .filter_map(move |piece| {
                let chunk = match piece {
                    Piece::Text(text) => Some(completion.chunk(json!({"content": text}), None)),
                    _ => None,
                };
                std::future::ready(chunk)
            })
        };
        let ending = stream::once(async move {
            let outcome = turn::settled(settled).await;
            stream::iter(completion.ending(&outcome, include_usage))
        })
        .flatten();
        Ok(event_stream(
            stream::once(std::future::ready(first)).chain(texts).chain(ending),
        ))
    }
}
