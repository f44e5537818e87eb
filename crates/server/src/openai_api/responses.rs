//! `POST /v1/responses`: one turn as a Responses API response — a `message` item with the
//! reply, a `reasoning` item with the model's reasoning, and, for each tool the agent ran, a
//! `function_call` and a `function_call_output` item (informational: the agent ran them) — or
//! streamed as the Responses API's events.
//!
//! A stored response (`store`, true unless `false`, as in OpenAI's API) keeps its conversation:
//! its id, `resp_letta_<base64url of {"version":1,"nonce","agent_id","conversation_id"}>`,
//! names it, and `previous_response_id` continues from it in a fork of it, so that two
//! responses continuing the same one do not see each other. A response with `store: false` runs
//! in a conversation deleted afterwards, and its id (`resp_<uuid>`) continues nothing; so does a
//! stored response whose turn failed (the conversation made for it is deleted).

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use data_encoding::BASE64URL_NOPAD;
use futures_util::{StreamExt, stream};
use hyper::header::HeaderMap;
use hyper::{Response, StatusCode};
use letta_app_server_protocol::{ContentPart, JsonObject, RuntimeScope};
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

use super::content::{Message, content, prompt};
use super::turn::{self, Forget, Outcome, Piece, Turn};
use super::{Api, ApiError, Body, chat_key, event_stream, json_response, model_of, unix_now};
use crate::clock::{new_id, now_iso};
use crate::engine::catalog::{Fork, fork_conversation};

/// The prefix of a stored response's id.
const STORED_PREFIX: &str = "resp_letta_";

/// The conversation a stored response id names.
#[derive(Debug, PartialEq, Eq)]
struct Stored {
    agent_id: String,
    conversation_id: String,
}

/// The id of a response stored in `scope`'s conversation.
fn stored_id(scope: &RuntimeScope) -> String {
    let cursor = json!({
        "version": 1,
        "nonce": uuid::Uuid::new_v4().to_string(),
        "agent_id": scope.agent_id,
        "conversation_id": scope.conversation_id,
    });
    format!(
        "{STORED_PREFIX}{}",
        BASE64URL_NOPAD.encode(cursor.to_string().as_bytes())
    )
}

/// What a stored response id names; `None` when it is not one.
fn parse_stored(id: &str) -> Option<Stored> {
    let encoded = id.strip_prefix(STORED_PREFIX)?;
    let decoded = BASE64URL_NOPAD.decode(encoded.as_bytes()).ok()?;
    let cursor: Value = serde_json::from_slice(&decoded).ok()?;
    if cursor["version"] != 1 {
        return None;
    }
    Some(Stored {
        agent_id: cursor["agent_id"].as_str()?.to_owned(),
        conversation_id: cursor["conversation_id"].as_str()?.to_owned(),
    })
}

/// What a response's snapshots share.
struct Header {
    id: String,
    created_at: i64,
    model: String,
    instructions: Value,
    previous_response_id: Value,
    store: bool,
}

impl Header {
    /// The response object with `output`, in `status`, with `outcome`'s usage and error.
    fn response(&self, status: &str, output: &[Value], outcome: Option<&Outcome>) -> Value {
        let error = outcome
            .and_then(|outcome| outcome.failure.as_ref())
            .map(|failure| json!({"code": "server_error", "message": failure.message}));
        let usage = outcome.map(|outcome| {
            let usage = outcome.usage;
            json!({
                "input_tokens": usage.prompt, "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": usage.completion,
                "output_tokens_details": {"reasoning_tokens": usage.reasoning.unwrap_or(0)},
                "total_tokens": usage.total,
            })
        });
        json!({
            "id": self.id, "object": "response", "created_at": self.created_at, "status": status,
            "model": self.model, "output": output, "error": error, "incomplete_details": null,
            "instructions": self.instructions, "previous_response_id": self.previous_response_id,
            "store": self.store, "tools": [], "tool_choice": "auto", "parallel_tool_calls": false,
            "metadata": {}, "usage": usage,
        })
    }
}

/// The output items of a response as its pieces arrive, and the streaming events that tell
/// each change (when streaming).
struct Output {
    items: Vec<Value>,
    /// The open message item, by index.
    message: Option<usize>,
    /// The open reasoning item, by index.
    reasoning: Option<usize>,
    /// Each tool call's item, by call id.
    calls: HashMap<String, usize>,
    /// Events not yet sent (streaming only).
    events: Vec<Value>,
    streaming: bool,
}

impl Output {
    fn new(streaming: bool) -> Self {
        Self {
            items: Vec::new(),
            message: None,
            reasoning: None,
            calls: HashMap::new(),
            events: Vec::new(),
            streaming,
        }
    }

    fn emit(&mut self, event: Value) {
        if self.streaming {
            self.events.push(event);
        }
    }

    fn add(&mut self, piece: Piece) {
        match piece {
            Piece::Text(delta) => {
                self.close_reasoning();
                let index = self.open_message();
                let id = self.items[index]["id"].clone();
                append(&mut self.items[index]["content"][0]["text"], &delta);
                self.emit(
                    json!({"type": "response.output_text.delta", "item_id": id, "output_index": index,
                                 "content_index": 0, "delta": delta, "logprobs": []}),
                );
            }
            Piece::Reasoning(delta) => {
                self.close_message();
                let index = self.open_reasoning();
                let id = self.items[index]["id"].clone();
                append(&mut self.items[index]["summary"][0]["text"], &delta);
                self.emit(json!({"type": "response.reasoning_summary_text.delta", "item_id": id,
                                 "output_index": index, "summary_index": 0, "delta": delta}));
            }
            Piece::Call { id, name, arguments } => {
                self.close_message();
                self.close_reasoning();
                let index = match self.calls.get(&id) {
                    Some(index) => *index,
                    None => {
                        let item = json!({"type": "function_call", "id": new_id("fc"), "call_id": id,
                                          "name": name.clone().unwrap_or_default(), "arguments": "",
                                          "status": "in_progress"});
                        let index = self.push(item);
                        self.calls.insert(id, index);
                        index
                    }
                };
                if let Some(name) = name.filter(|_| self.items[index]["name"] == "") {
                    self.items[index]["name"] = json!(name);
                }
                if !arguments.is_empty() {
                    append(&mut self.items[index]["arguments"], &arguments);
                    let item_id = self.items[index]["id"].clone();
                    self.emit(
                        json!({"type": "response.function_call_arguments.delta", "item_id": item_id,
                                     "output_index": index, "delta": arguments}),
                    );
                }
            }
            Piece::Result { id, output, success } => {
                self.close_message();
                self.close_reasoning();
                let status = if success { "completed" } else { "incomplete" };
                if let Some(index) = self.calls.get(&id).copied() {
                    self.close_call(index, status);
                }
                let item = json!({"type": "function_call_output", "id": new_id("fco"), "call_id": id,
                                  "output": output, "status": status});
                let index = self.push(item.clone());
                self.emit(json!({"type": "response.output_item.done", "output_index": index, "item": item}));
            }
        }
    }

    /// Appends an item, telling it (with its content still empty when it is a message).
    fn push(&mut self, item: Value) -> usize {
        let index = self.items.len();
        let mut announced = item.clone();
        for empty in ["content", "summary"] {
            if announced.get(empty).is_some() {
                announced[empty] = json!([]);
            }
        }
        self.items.push(item);
        self.emit(json!({"type": "response.output_item.added", "output_index": index, "item": announced}));
        index
    }

    fn open_message(&mut self) -> usize {
        if let Some(index) = self.message {
            return index;
        }
        let part = json!({"type": "output_text", "text": "", "annotations": []});
        let item = json!({"type": "message", "id": new_id("msg"), "status": "in_progress", "role": "assistant",
                          "content": [part.clone()]});
        let index = self.push(item);
        let id = self.items[index]["id"].clone();
        self.emit(
            json!({"type": "response.content_part.added", "item_id": id, "output_index": index,
                         "content_index": 0, "part": part}),
        );
        self.message = Some(index);
        index
    }

    fn open_reasoning(&mut self) -> usize {
        if let Some(index) = self.reasoning {
            return index;
        }
        let part = json!({"type": "summary_text", "text": ""});
        let item = json!({"type": "reasoning", "id": new_id("rs"), "status": "in_progress",
                          "summary": [part.clone()]});
        let index = self.push(item);
        let id = self.items[index]["id"].clone();
        self.emit(
            json!({"type": "response.reasoning_summary_part.added", "item_id": id, "output_index": index,
                         "summary_index": 0, "part": part}),
        );
        self.reasoning = Some(index);
        index
    }

    fn close_message(&mut self) {
        let Some(index) = self.message.take() else { return };
        self.items[index]["status"] = json!("completed");
        let item = self.items[index].clone();
        let part = item["content"][0].clone();
        self.emit(
            json!({"type": "response.output_text.done", "item_id": item["id"], "output_index": index,
                         "content_index": 0, "text": part["text"], "logprobs": []}),
        );
        self.emit(
            json!({"type": "response.content_part.done", "item_id": item["id"], "output_index": index,
                         "content_index": 0, "part": part}),
        );
        self.emit(json!({"type": "response.output_item.done", "output_index": index, "item": item}));
    }

    fn close_reasoning(&mut self) {
        let Some(index) = self.reasoning.take() else { return };
        self.items[index]["status"] = json!("completed");
        let item = self.items[index].clone();
        let part = item["summary"][0].clone();
        self.emit(
            json!({"type": "response.reasoning_summary_text.done", "item_id": item["id"],
                         "output_index": index, "summary_index": 0, "text": part["text"]}),
        );
        self.emit(
            json!({"type": "response.reasoning_summary_part.done", "item_id": item["id"],
                         "output_index": index, "summary_index": 0, "part": part}),
        );
        self.emit(json!({"type": "response.output_item.done", "output_index": index, "item": item}));
    }

    /// Ends the function call item at `index` in `status`, unless it ended already.
    fn close_call(&mut self, index: usize, status: &str) {
        if self.items[index]["status"] != "in_progress" {
            return;
        }
        self.items[index]["status"] = json!(status);
        let call = self.items[index].clone();
        self.emit(
            json!({"type": "response.function_call_arguments.done", "item_id": call["id"],
                         "output_index": index, "name": call["name"], "arguments": call["arguments"]}),
        );
        self.emit(json!({"type": "response.output_item.done", "output_index": index, "item": call}));
    }

    /// Ends the items still open; a tool call without its result (the turn failed or was
    /// stopped) is `incomplete`.
    fn finish(&mut self) {
        self.close_message();
        self.close_reasoning();
        let mut open: Vec<usize> = self.calls.values().copied().collect();
        open.sort_unstable();
        for index in open {
            self.close_call(index, "incomplete");
        }
    }
}

fn append(text: &mut Value, delta: &str) {
    let mut joined = text.as_str().unwrap_or_default().to_owned();
    joined.push_str(delta);
    *text = Value::String(joined);
}

/// Frames `events` as server-sent events with their `sequence_number`s, from `next` on.
fn frame(events: Vec<Value>, next: &mut u64) -> Vec<Bytes> {
    events
        .into_iter()
        .map(|mut event| {
            event["sequence_number"] = json!(*next);
            *next += 1;
            let name = event["type"].as_str().unwrap_or_default().to_owned();
            Bytes::from(format!("event: {name}\ndata: {event}\n\n"))
        })
        .collect()
}

impl Api {
    /// `POST /v1/responses` `{model, input, instructions?, previous_response_id?, store?, stream?}`.
    pub(super) async fn responses(
        self: &Arc<Self>,
        headers: &HeaderMap,
        body: JsonObject,
    ) -> Result<Response<Body>, ApiError> {
        let model = model_of(&body)?;
        let (messages, mut instructions) = read_input(body.get("input"))?;
        match body.get("instructions") {
            Some(Value::String(text)) => instructions.insert(0, text.clone()),
            None | Some(Value::Null) => {}
            Some(_) => return Err(ApiError::invalid("instructions must be a string").param("instructions")),
        }
        let store = body.get("store") != Some(&Value::Bool(false));
        let streaming = body.get("stream") == Some(&Value::Bool(true));
        let previous = match body.get("previous_response_id") {
            Some(Value::String(id)) => Some(id.clone()),
            None | Some(Value::Null) => None,
            Some(_) => {
                return Err(ApiError::invalid("previous_response_id must be a string").param("previous_response_id"));
            }
        };
        let agent_id = self.agent_of(&model).await?;
        let continued = match &previous {
            Some(id) => Some(self.stored_response(id, &agent_id, &model).await?),
            None => None,
        };
        let chat_key = chat_key(headers, streaming)?;
        let prompt = prompt(&messages, "input")?;
        let mut input = prompt.input;
        let instructions: Vec<&str> = instructions
            .iter()
            .map(|text| text.trim())
            .filter(|t| !t.is_empty())
            .collect();
        if !instructions.is_empty() {
            let reminder = format!(
                "<system-reminder>\n{}\n</system-reminder>\n\n",
                instructions.join("\n\n")
            );
            input.insert(0, ContentPart::text(reminder));
        }
        let engine = self.sessions.engine();
        let scope = match (&continued, &chat_key) {
            (Some(stored), _) => {
                let fork = Fork {
                    agent_id: Some(&agent_id),
                    through: None,
                    hidden: Some(true),
                };
                let forked = fork_conversation(engine, &stored.conversation_id, fork).await;
                let scope = RuntimeScope::new(agent_id.as_str(), forked.map_err(ApiError::internal)?);
                if let Some(key) = &chat_key {
                    let pinned = engine.store.save_chat_conversation(
                        agent_id.clone(),
                        key.clone(),
                        scope.conversation_id.clone(),
                        now_iso(),
                    );
                    pinned.await.map_err(ApiError::internal)?;
                }
                scope
            }
            (None, Some(key)) => self.chat_conversation(&agent_id, key).await?,
            (None, None) => self.new_conversation(&agent_id, true, prompt.history).await?,
        };
        let header = Arc::new(Header {
            id: if store {
                stored_id(&scope)
            } else {
                format!("resp_{}", uuid::Uuid::new_v4().simple())
            },
            created_at: unix_now(),
            model,
            instructions: body.get("instructions").cloned().unwrap_or(Value::Null),
            previous_response_id: previous.map_or(Value::Null, Value::String),
            store,
        });
        // A conversation made for this request (not a keyed chat's) is kept only as a stored
        // response's, which needs a turn that succeeded: a failed one's id names nothing.
        let forget = match (&chat_key, store) {
            (Some(_), _) => Forget::Never,
            (None, false) => Forget::Always,
            (None, true) => Forget::IfFailed,
        };
        let turn = Turn {
            scope,
            input: content(input),
            forget,
        };
        let (outcome, settled) = watch::channel(None);
        let pieces = turn::start(self, turn, outcome);
        if streaming {
            return Ok(stream_response(header, pieces, settled));
        }
        let mut output = Output::new(false);
        let mut pieces = pieces;
        while let Some(piece) = pieces.recv().await {
            output.add(piece);
        }
        output.finish();
        let outcome = turn::settled(settled).await;
        if let Some(failure) = &outcome.failure {
            return Err(ApiError::failed(failure));
        }
        Ok(json_response(
            StatusCode::OK,
            &header.response("completed", &output.items, Some(&outcome)),
        ))
    }

    /// The conversation a `previous_response_id` names, which must be a stored response of
    /// `agent_id` whose conversation still exists: 400 for an id that is not a stored
    /// response's, 404 `response_not_found` for another agent's or a deleted one.
    async fn stored_response(&self, id: &str, agent_id: &str, model: &str) -> Result<Stored, ApiError> {
        let stored = parse_stored(id).ok_or_else(|| {
            ApiError::invalid(format!(
                "'{id}' is not the id of a response this server stored (ids of stored responses start with {STORED_PREFIX})"
            ))
            .param("previous_response_id")
            .code("invalid_previous_response_id")
        })?;
        let not_found = |message: String| {
            ApiError::new(StatusCode::NOT_FOUND, message)
                .param("previous_response_id")
                .code("response_not_found")
        };
        if stored.agent_id != agent_id {
            return Err(not_found(format!(
                "The response '{id}' does not exist for model '{model}'."
            )));
        }
        let conversation = self
            .sessions
            .engine()
            .store
            .conversation(stored.conversation_id.clone())
            .await;
        let owner = conversation
            .map_err(ApiError::internal)?
            .and_then(|conversation| conversation.get("agent_id")?.as_str().map(str::to_owned));
        if owner.as_deref() != Some(agent_id) {
            return Err(not_found(format!(
                "The response '{id}' does not exist or is no longer stored."
            )));
        }
        Ok(stored)
    }
}

/// The messages of a request's `input` (a string, or message items — `{"type": "message"}`, or
/// just a `role` and `content` — other items are left out), and the texts of its `system` and
/// `developer` messages, which count as instructions.
fn read_input(input: Option<&Value>) -> Result<(Vec<Message<'_>>, Vec<String>), ApiError> {
    let missing = || ApiError::invalid("you must provide an input").param("input");
    let items = match input {
        Some(text @ Value::String(_)) => {
            return Ok((
                vec![Message {
                    role: "user",
                    content: text,
                }],
                Vec::new(),
            ));
        }
        Some(Value::Array(items)) => items,
        _ => return Err(missing()),
    };
    let mut messages = Vec::new();
    let mut instructions = Vec::new();
    for item in items {
        if !matches!(item["type"].as_str(), None | Some("message")) {
            continue;
        }
        match item["role"].as_str() {
            Some("system" | "developer") => instructions.push(super::content::text(&item["content"])),
            Some(role) => messages.push(Message {
                role,
                content: &item["content"],
            }),
            None => return Err(ApiError::invalid("every input message needs a role").param("input")),
        }
    }
    Ok((messages, instructions))
}

/// The streamed answer: `response.created`, `response.in_progress`, the output's events as the
/// pieces arrive, then `response.completed` (or `response.failed`).
fn stream_response(
    header: Arc<Header>,
    pieces: mpsc::UnboundedReceiver<Piece>,
    settled: watch::Receiver<Option<Arc<Outcome>>>,
) -> Response<Body> {
    struct State {
        pieces: Option<mpsc::UnboundedReceiver<Piece>>,
        output: Output,
        next: u64,
    }
    let opening = vec![
        json!({"type": "response.created", "response": header.response("in_progress", &[], None)}),
        json!({"type": "response.in_progress", "response": header.response("in_progress", &[], None)}),
    ];
    let mut state = State {
        pieces: Some(pieces),
        output: Output::new(true),
        next: 0,
    };
    let first = frame(opening, &mut state.next);
    let events = stream::unfold(state, move |mut state| {
        let (header, settled) = (header.clone(), settled.clone());
        async move {
            let pieces = state.pieces.as_mut()?;
            let events = match pieces.recv().await {
                Some(piece) => {
                    state.output.add(piece);
                    std::mem::take(&mut state.output.events)
                }
                None => {
                    state.pieces = None;
                    state.output.finish();
                    let outcome = turn::settled(settled).await;
                    let mut events = std::mem::take(&mut state.output.events);
                    let (kind, status) = match outcome.failure {
                        Some(_) => ("response.failed", "failed"),
                        None => ("response.completed", "completed"),
                    };
                    let response = header.response(status, &state.output.items, Some(&outcome));
                    events.push(json!({"type": kind, "response": response}));
                    events
                }
            };
            let framed = frame(events, &mut state.next);
            Some((stream::iter(framed), state))
        }
    })
    .flatten();
    event_stream(stream::iter(first).chain(events))
}

#[cfg(test)]
mod tests {
    use letta_app_server_protocol::RuntimeScope;

    use super::{Stored, parse_stored, stored_id};

    #[test]
    fn stored_response_ids_name_their_conversation() {
        let id = stored_id(&RuntimeScope::new("agent-1", "conv-1"));
        assert!(id.starts_with("resp_letta_"), "{id}");
        assert_eq!(
            parse_stored(&id),
            Some(Stored {
                agent_id: "agent-1".into(),
                conversation_id: "conv-1".into()
            })
        );
        for malformed in ["resp_123", "resp_letta_", "resp_letta_!!", "resp_letta_e30"] {
            assert_eq!(parse_stored(malformed), None, "{malformed}");
        }
    }
}
