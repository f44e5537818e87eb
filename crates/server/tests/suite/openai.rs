//! The OpenAI-compatible API (`--openai-api`, docs/protocol.md §9) over real sockets: models,
//! chat completions (streamed and not), chat keys, the stateless transcript, idempotency keys,
//! responses with `previous_response_id`, the approval rule, the turn timeout, and the refusals.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use letta_app_server::Auth;
use serde_json::{Value, json};

use crate::support::TestServer;
use crate::support::drive::{call, items, text};
use crate::support::wire::Client;

const TOKEN: &str = "openai-s3cret";
const NOTE: &str =
    "The agent attempted a tool call that requires interactive approval, which this API does not support.";

async fn server() -> TestServer {
    TestServer::start_with(|config| config.openai_api = true).await
}

/// Sends one request on a connection of its own; returns the response, its body unread.
async fn open(
    server: &TestServer,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Response<Incoming> {
    let address = server.server.as_ref().expect("running").local_addr();
    let stream = tokio::net::TcpStream::connect(address).await.expect("connect");
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(connection);
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("host", address.to_string())
        .header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request
        .body(Full::new(Bytes::from(body.to_owned())))
        .expect("a request");
    sender.send_request(request).await.expect("a response")
}

/// Sends one request; returns its status and JSON body.
async fn send(
    server: &TestServer,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Value,
) -> (StatusCode, Value) {
    let body = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    let response = open(server, method, path, headers, &body).await;
    let status = response.status();
    let bytes = response.into_body().collect().await.expect("a body").to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

async fn chat(server: &TestServer, headers: &[(&str, &str)], body: Value) -> (StatusCode, Value) {
    send(server, "POST", "/v1/chat/completions", headers, body).await
}

/// The `data:` payloads of a streamed answer, read to its end.
async fn events(response: Response<Incoming>) -> Vec<String> {
    let bytes = response.into_body().collect().await.expect("a body").to_bytes();
    let text = String::from_utf8(bytes.to_vec()).expect("UTF-8");
    text.split("\n\n")
        .filter_map(|event| event.lines().find_map(|line| line.strip_prefix("data: ")))
        .map(str::to_owned)
        .collect()
}

/// The reply of a non-streamed completion.
fn reply(completion: &Value) -> &str {
    text(&completion["choices"][0]["message"]["content"])
}

/// A user message.
fn user(content: &str) -> Value {
    json!([{"role": "user", "content": content}])
}

/// Creates an agent named `name`; returns its id.
async fn agent(client: &mut Client, name: &str) -> String {
    let created = call(client, json!({"type": "agent_create", "body": {"name": name}})).await;
    assert_eq!(created["success"], true, "{created}");
    text(&created["agent"]["id"]).to_owned()
}

/// Creates an agent named `name`, lets one chat of `keyed` (a chat key header) make its
/// conversation, and starts that conversation's runtime on `client`; returns the runtime.
async fn keyed_runtime(server: &TestServer, client: &mut Client, name: &str, keyed: &[(&str, &str)]) -> Value {
    let agent_id = agent(client, name).await;
    chat(server, keyed, json!({"model": name, "messages": user("hi")})).await;
    let conversation_id = text(&conversations(client, &agent_id).await[0]["id"]).to_owned();
    let started = call(
        client,
        json!({"type": "runtime_start", "agent_id": agent_id, "conversation_id": conversation_id}),
    )
    .await;
    assert_eq!(started["success"], true, "{started}");
    started["runtime"].clone()
}

/// The agent's conversations (hidden ones too).
async fn conversations(client: &mut Client, agent_id: &str) -> Vec<Value> {
    let listed = call(
        client,
        json!({"type": "conversation_list", "query": {"agent_id": agent_id, "include_hidden": true}}),
    )
    .await;
    items(&listed["conversations"]).clone()
}

/// The texts of a conversation's user and assistant messages, oldest first.
async fn transcript(client: &mut Client, conversation_id: &str) -> Vec<String> {
    let page = call(
        client,
        json!({"type": "conversation_messages_list", "conversation_id": conversation_id, "query": {"order": "asc"}}),
    )
    .await;
    items(&page["messages"])
        .iter()
        .filter(|m| matches!(m["message_type"].as_str(), Some("user_message" | "assistant_message")))
        .map(|m| match &m["content"] {
            Value::String(text) => text.clone(),
            parts => items(parts).iter().filter_map(|part| part["text"].as_str()).collect(),
        })
        .collect()
}

#[tokio::test]
async fn the_api_is_off_unless_configured() {
    let server = TestServer::start().await;
    let (status, _) = send(&server, "GET", "/v1/models", &[], Value::Null).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn each_agent_is_a_model_named_by_its_unique_name_or_its_id() {
    let server = server().await;
    let mut client = server.client().await;
    let helper = agent(&mut client, "Helper").await;
    let twins = [agent(&mut client, "Twin").await, agent(&mut client, "Twin").await];
    let (status, list) = send(&server, "GET", "/v1/models", &[], Value::Null).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["object"], "list");
    let ids: Vec<&str> = items(&list["data"]).iter().map(|model| text(&model["id"])).collect();
    // Oldest first (agents created in the same millisecond are in id order): the helper, then
    // both twins, by id as their name is not unique.
    assert_eq!(ids.len(), 3);
    assert_eq!(ids[0], "Helper");
    let mut listed = ids[1..].to_vec();
    listed.sort_unstable();
    let mut expected = [twins[0].as_str(), twins[1].as_str()];
    expected.sort_unstable();
    assert_eq!(listed, expected);
    let model = &list["data"][0];
    assert_eq!(
        (&model["object"], &model["owned_by"]),
        (&json!("model"), &json!("letta"))
    );
    assert!(model["created"].as_u64().expect("created") > 1_700_000_000);

    for model in ["Helper", helper.as_str()] {
        let (status, completion) = chat(
            &server,
            &[],
            json!({"model": model, "messages": user("hi [[reply: Hello!]]")}),
        )
        .await;
        assert_eq!((status, reply(&completion)), (StatusCode::OK, "Hello!"), "{model}");
    }
    let (status, error) = chat(&server, &[], json!({"model": "Twin", "messages": user("hi")})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error["error"]["code"], "model_not_found");
    assert_eq!(error["error"]["param"], "model");
    assert_eq!(error["error"]["type"], "invalid_request_error");
    assert_eq!(
        error["error"]["message"],
        "The model 'Twin' does not exist. Use GET /v1/models to list available agents."
    );
}

#[tokio::test]
async fn a_completion_runs_a_turn_in_a_conversation_deleted_afterwards() {
    let server = server().await;
    let mut client = server.client().await;
    let agent_id = agent(&mut client, "Solo").await;
    let (status, completion) = chat(
        &server,
        &[],
        json!({"model": "Solo", "messages": user("hello [[reply: Hi there, friend]]")}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{completion}");
    assert_eq!(completion["object"], "chat.completion");
    assert!(text(&completion["id"]).starts_with("chatcmpl-"));
    assert_eq!(completion["model"], "Solo");
    assert_eq!(completion["choices"][0]["message"]["role"], "assistant");
    assert_eq!(reply(&completion), "Hi there, friend");
    assert_eq!(completion["choices"][0]["finish_reason"], "stop");
    let usage = &completion["usage"];
    let (prompt, done) = (usage["prompt_tokens"].as_u64(), usage["completion_tokens"].as_u64());
    assert!(
        prompt.expect("prompt tokens") > 0 && done.expect("completion tokens") > 0,
        "{usage}"
    );
    assert_eq!(
        usage["total_tokens"].as_u64(),
        Some(prompt.unwrap_or(0) + done.unwrap_or(0))
    );
    assert!(
        conversations(&mut client, &agent_id).await.is_empty(),
        "the stateless conversation is gone"
    );
}

#[tokio::test]
async fn a_streamed_completion_sends_chunks_then_stop_usage_and_done() {
    let server = server().await;
    let mut client = server.client().await;
    agent(&mut client, "Streamer").await;
    let body = json!({"model": "Streamer", "stream": true, "stream_options": {"include_usage": true},
                      "messages": user("[[reply: one two three four]] [[chunks: 4]]")});
    let response = open(&server, "POST", "/v1/chat/completions", &[], &body.to_string()).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let events = events(response).await;
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|event| serde_json::from_str(event).expect("a JSON chunk"))
        .collect();
    assert!(chunks.iter().all(|chunk| chunk["object"] == "chat.completion.chunk"));
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    let contents: Vec<&str> = chunks
        .iter()
        .filter_map(|chunk| chunk["choices"][0]["delta"]["content"].as_str())
        .filter(|content| !content.is_empty())
        .collect();
    assert!(contents.len() > 1, "{chunks:?}");
    assert_eq!(contents.concat(), "one two three four");
    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    let usage = &chunks[chunks.len() - 1];
    assert_eq!(usage["choices"], json!([]));
    assert!(usage["usage"]["total_tokens"].as_u64().expect("usage") > 0);
}

#[tokio::test]
async fn a_chat_key_continues_one_conversation_with_only_the_newest_message() {
    let server = server().await;
    let mut client = server.client().await;
    let agent_id = agent(&mut client, "Keeper").await;
    let keyed = [("X-Letta-Chat-Key", "chat-1")];
    let (_, first) = chat(
        &server,
        &keyed,
        json!({"model": "Keeper", "messages": user("my number is 42")}),
    )
    .await;
    assert_eq!(reply(&first), "I received: my number is 42");
    let second = json!({"model": "Keeper", "messages": [
        {"role": "user", "content": "my number is 42"},
        {"role": "assistant", "content": "I received: my number is 42"},
        {"role": "user", "content": "what was it?"},
    ]});
    let (_, second) = chat(&server, &keyed, second).await;
    assert_eq!(reply(&second), "I received: what was it?");
    assert!(
        second["usage"]["prompt_tokens"].as_u64() > first["usage"]["prompt_tokens"].as_u64(),
        "the second turn saw the first"
    );
    let listed = conversations(&mut client, &agent_id).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["hidden"], Value::Null, "a chat's conversation is listed");
    assert_eq!(
        transcript(&mut client, text(&listed[0]["id"])).await,
        [
            "my number is 42",
            "I received: my number is 42",
            "what was it?",
            "I received: what was it?"
        ]
    );

    // Open WebUI's header pins streaming requests only; its background tasks do not stream.
    let webui = [("X-OpenWebUI-Chat-Id", "webui-1")];
    let (_, task) = chat(
        &server,
        &webui,
        json!({"model": "Keeper", "messages": user("make a title")}),
    )
    .await;
    assert_eq!(reply(&task), "I received: make a title");
    assert_eq!(conversations(&mut client, &agent_id).await.len(), 1);
    let streamed = json!({"model": "Keeper", "stream": true, "messages": user("hello")});
    events(open(&server, "POST", "/v1/chat/completions", &webui, &streamed.to_string()).await).await;
    assert_eq!(conversations(&mut client, &agent_id).await.len(), 2);
}

#[tokio::test]
async fn without_a_chat_key_the_transcript_is_replayed() {
    let server = server().await;
    let mut client = server.client().await;
    agent(&mut client, "Replayer").await;
    let prompt_tokens = |completion: &Value| completion["usage"]["prompt_tokens"].as_u64().expect("tokens");
    let (_, alone) = chat(&server, &[], json!({"model": "Replayer", "messages": user("three")})).await;
    let transcript = json!({"model": "Replayer", "messages": [
        {"role": "system", "content": "ignored"},
        {"role": "user", "content": "one"},
        {"role": "assistant", "content": [{"type": "text", "text": "two"}]},
        {"role": "user", "content": "three"},
    ]});
    let (_, replayed) = chat(&server, &[], transcript).await;
    assert_eq!(reply(&replayed), "I received: three");
    // The scripted model counts the words it was sent: the transcript's two more.
    assert_eq!(prompt_tokens(&replayed), prompt_tokens(&alone) + 2);
}

#[tokio::test]
async fn an_idempotency_key_replays_the_first_outcome() {
    let server = server().await;
    let mut client = server.client().await;
    let agent_id = agent(&mut client, "Once").await;
    let headers = [("X-Letta-Chat-Key", "chat-i"), ("Idempotency-Key", "retry-1")];
    let body = json!({"model": "Once", "messages": user("count me")});
    let (_, first) = chat(&server, &headers, body.clone()).await;
    let (status, again) = chat(&server, &headers, body.clone()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(reply(&again), reply(&first));
    assert_eq!(again["usage"], first["usage"]);
    let streamed = json!({"model": "Once", "stream": true, "messages": user("count me")});
    let events = events(open(&server, "POST", "/v1/chat/completions", &headers, &streamed.to_string()).await).await;
    assert!(
        events.iter().any(|event| event.contains("I received: count me")),
        "{events:?}"
    );
    let listed = conversations(&mut client, &agent_id).await;
    assert_eq!(
        transcript(&mut client, text(&listed[0]["id"])).await.len(),
        2,
        "the message ran once"
    );
    let other = [("X-Letta-Chat-Key", "chat-i"), ("X-Idempotency-Key", "retry-2")];
    chat(&server, &other, body).await;
    assert_eq!(transcript(&mut client, text(&listed[0]["id"])).await.len(), 4);
}

#[tokio::test]
async fn responses_continue_from_a_previous_response() {
    let server = server().await;
    let mut client = server.client().await;
    let agent_id = agent(&mut client, "Responder").await;
    agent(&mut client, "Other").await;
    let respond = |body: Value| send(&server, "POST", "/v1/responses", &[], body);
    let (status, first) = respond(json!({"model": "Responder", "input": "remember 42 [[think: noted]]",
                                         "instructions": "be brief"}))
    .await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["object"], "response");
    assert_eq!(first["status"], "completed");
    let id = text(&first["id"]).to_owned();
    assert!(id.starts_with("resp_letta_"), "{id}");
    let kinds: Vec<&str> = items(&first["output"]).iter().map(|item| text(&item["type"])).collect();
    assert_eq!(kinds, ["reasoning", "message"]);
    assert_eq!(first["output"][0]["summary"][0]["text"], "noted");
    let said = text(&first["output"][1]["content"][0]["text"]);
    assert!(
        said.starts_with("I received: <system-reminder> be brief </system-reminder> remember 42"),
        "{said}"
    );
    assert!(first["usage"]["input_tokens"].as_u64() > Some(0));

    let (status, second) = respond(
        json!({"model": "Responder", "input": [{"role": "user", "content": "and?"}],
                                          "previous_response_id": id}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_eq!(second["output"][0]["content"][0]["text"], "I received: and?");
    assert!(second["usage"]["input_tokens"].as_u64() > first["usage"]["input_tokens"].as_u64());
    assert_eq!(second["previous_response_id"], id.as_str());
    // Each continuation is a fork: the first response's conversation stays as it was.
    let hidden = conversations(&mut client, &agent_id).await;
    assert_eq!(hidden.len(), 2);
    assert!(hidden.iter().all(|conversation| conversation["hidden"] == true));

    let (status, error) = respond(json!({"model": "Other", "input": "hi", "previous_response_id": id})).await;
    assert_eq!(
        (status, &error["error"]["code"]),
        (StatusCode::NOT_FOUND, &json!("response_not_found"))
    );
    let (status, error) = respond(json!({"model": "Responder", "input": "hi", "previous_response_id": "resp_x"})).await;
    assert_eq!(
        (status, &error["error"]["param"]),
        (StatusCode::BAD_REQUEST, &json!("previous_response_id"))
    );

    let (_, unstored) = respond(json!({"model": "Responder", "input": "forget me", "store": false})).await;
    assert!(text(&unstored["id"]).starts_with("resp_") && !text(&unstored["id"]).starts_with("resp_letta_"));
    assert_eq!(
        conversations(&mut client, &agent_id).await.len(),
        2,
        "an unstored response keeps nothing"
    );
}

#[tokio::test]
async fn a_streamed_response_sends_the_responses_events() {
    let server = server().await;
    let mut client = server.client().await;
    agent(&mut client, "Eventful").await;
    let body = json!({"model": "Eventful", "stream": true, "input": "[[reply: a b]] [[chunks: 2]]"});
    let response = open(&server, "POST", "/v1/responses", &[], &body.to_string()).await;
    let events: Vec<Value> = events(response)
        .await
        .iter()
        .map(|event| serde_json::from_str(event).expect("JSON"))
        .collect();
    let kinds: Vec<&str> = events.iter().map(|event| text(&event["type"])).collect();
    assert_eq!(
        kinds,
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    let numbers: Vec<u64> = events
        .iter()
        .map(|event| event["sequence_number"].as_u64().expect("n"))
        .collect();
    assert_eq!(numbers, (0..10).collect::<Vec<_>>());
    let completed = &events[9]["response"];
    assert_eq!(completed["status"], "completed");
    assert_eq!(completed["output"][0]["content"][0]["text"], "a b");
}

#[tokio::test]
async fn tools_the_agent_ran_are_listed_as_function_call_items() {
    let server = server().await;
    let mut client = server.client().await;
    agent(&mut client, "Tooled").await;
    let input = r#"[[tool: Bash {"command": "echo tool-ran"}]]"#;
    let (status, response) = send(
        &server,
        "POST",
        "/v1/responses",
        &[],
        json!({"model": "Tooled", "input": input}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{response}");
    let output = items(&response["output"]);
    let kinds: Vec<&str> = output.iter().map(|item| text(&item["type"])).collect();
    assert_eq!(kinds, ["function_call", "function_call_output", "message"]);
    assert_eq!(
        (&output[0]["name"], &output[0]["status"]),
        (&json!("Bash"), &json!("completed"))
    );
    assert_eq!(output[0]["arguments"], r#"{"command": "echo tool-ran"}"#);
    assert_eq!(output[1]["call_id"], output[0]["call_id"]);
    assert!(text(&output[1]["output"]).contains("tool-ran"), "{}", output[1]);
}

#[tokio::test]
async fn a_tool_that_still_asks_for_approval_ends_the_turn_with_a_note() {
    let server = server().await;
    let mut client = server.client().await;
    let keyed = [("X-Letta-Chat-Key", "careful")];
    // A controller holds the conversation's turn on an approval, in standard mode.
    let runtime = keyed_runtime(&server, &mut client, "Careful", &keyed).await;
    let standard = json!({"type": "change_device_state", "runtime": runtime, "payload": {"mode": "standard"}});
    client.send(standard.clone()).await;
    client
        .send(
            json!({"type": "input", "request_id": "ws-1", "runtime": runtime, "payload": {"kind": "create_message",
            "messages": [{"role": "user", "content": r#"[[tool: Bash {"command": "touch ws-ran"}]]"#}]}}),
        )
        .await;
    let asked = client.recv_until_type("control_request").await;
    let question = text(&asked.last().expect("a question")["request_id"]).to_owned();
    // The API's request waits behind it; the API made the conversation unrestricted, and the
    // controller makes it standard again before its turn ends.
    let waiting = {
        let server_addr = server.server.as_ref().expect("running").local_addr();
        let body = json!({"model": "Careful", "messages": user(r#"[[tool: Bash {"command": "touch api-ran"}]]"#)});
        tokio::spawn(async move {
            let stream = tokio::net::TcpStream::connect(server_addr).await.expect("connect");
            let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .expect("handshake");
            tokio::spawn(connection);
            let request = Request::post("/v1/chat/completions")
                .header("host", server_addr.to_string())
                .header("X-Letta-Chat-Key", "careful")
                .body(Full::new(Bytes::from(body.to_string())))
                .expect("a request");
            let response = sender.send_request(request).await.expect("a response");
            let status = response.status();
            let bytes = response.into_body().collect().await.expect("a body").to_bytes();
            (status, serde_json::from_slice::<Value>(&bytes).expect("JSON"))
        })
    };
    client
        .recv_until(|frame| frame["type"] == "update_queue" && !items(&frame["queue"]).is_empty())
        .await;
    client.send(standard).await;
    client
        .send(
            json!({"type": "input", "request_id": "ws-2", "runtime": runtime, "payload": {"kind": "approval_response",
            "request_id": question, "decision": {"behavior": "allow"}}}),
        )
        .await;
    let (status, completion) = waiting.await.expect("the request");
    assert_eq!(status, StatusCode::OK, "{completion}");
    assert_eq!(reply(&completion), NOTE);
    assert!(server.data.path().join("ws-ran").exists());
    assert!(
        !server.data.path().join("api-ran").exists(),
        "the asked call did not run"
    );
}

#[tokio::test]
async fn a_turn_past_the_timeout_is_stopped() {
    let server = TestServer::start_with(|config| {
        config.openai_api = true;
        config.openai_turn_timeout = Duration::from_millis(300);
    })
    .await;
    let mut client = server.client().await;
    let agent_id = agent(&mut client, "Slow").await;
    let started = std::time::Instant::now();
    let body = json!({"model": "Slow", "messages": user("[[delay: 20000]] hi")});
    let response = open(&server, "POST", "/v1/chat/completions", &[], &body.to_string()).await;
    let status = response.status();
    // The message ran: OpenAI's client must not send it again.
    assert_eq!(response.headers()["x-should-retry"], "false");
    let bytes = response.into_body().collect().await.expect("a body").to_bytes();
    let error: Value = serde_json::from_slice(&bytes).expect("JSON");
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{error}");
    assert_eq!(error["error"]["message"], "agent turn timed out");
    assert_eq!(error["error"]["type"], "server_error");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(conversations(&mut client, &agent_id).await.is_empty());
}

#[tokio::test]
async fn a_failed_stored_response_keeps_no_conversation_and_ends_its_open_items() {
    let server = TestServer::start_with(|config| {
        config.openai_api = true;
        config.openai_turn_timeout = Duration::from_millis(1000);
    })
    .await;
    let mut client = server.client().await;
    let agent_id = agent(&mut client, "Stalled").await;
    let (_, first) = send(
        &server,
        "POST",
        "/v1/responses",
        &[],
        json!({"model": "Stalled", "input": "hi"}),
    )
    .await;
    assert_eq!(conversations(&mut client, &agent_id).await.len(), 1);
    // A new conversation, and a fork for previous_response_id: neither can be named once the
    // turn failed, so neither is kept.
    for previous in [Value::Null, first["id"].clone()] {
        let body = json!({"model": "Stalled", "input": "[[delay: 20000]] hi", "previous_response_id": previous});
        let response = open(&server, "POST", "/v1/responses", &[], &body.to_string()).await;
        assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(response.headers()["x-should-retry"], "false");
    }
    assert_eq!(conversations(&mut client, &agent_id).await.len(), 1);
    // Streamed: the tool call still running when the turn is stopped is ended, incomplete.
    let body = json!({"model": "Stalled", "stream": true, "input": r#"[[tool: Bash {"command": "sleep 5"}]]"#});
    let response = open(&server, "POST", "/v1/responses", &[], &body.to_string()).await;
    let events: Vec<Value> = events(response)
        .await
        .iter()
        .map(|event| serde_json::from_str(event).expect("JSON"))
        .collect();
    let kinds: Vec<&str> = events.iter().map(|event| text(&event["type"])).collect();
    assert_eq!(
        kinds[kinds.len() - 3..],
        [
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.failed"
        ],
        "{kinds:?}"
    );
    let failed = &events[events.len() - 1]["response"];
    assert_eq!(failed["output"][0]["type"], "function_call");
    assert_eq!(failed["output"][0]["status"], "incomplete");
    assert_eq!(events[events.len() - 2]["item"]["status"], "incomplete");
    assert_eq!(conversations(&mut client, &agent_id).await.len(), 1);
}

#[tokio::test]
async fn a_retry_while_the_first_request_runs_waits_for_its_outcome() {
    let server = server().await;
    let mut client = server.client().await;
    let agent_id = agent(&mut client, "Waiter").await;
    let headers = [("X-Letta-Chat-Key", "chat-w"), ("Idempotency-Key", "retry-w")];
    let first = json!({"model": "Waiter", "stream": true,
                       "messages": user("[[reply: first answer]] [[chunks: 2]] [[delay: 300]]")});
    // The answer's head arrives once the first request claimed its key and started its turn.
    let running = open(&server, "POST", "/v1/chat/completions", &headers, &first.to_string()).await;
    let (status, retried) = chat(
        &server,
        &headers,
        json!({"model": "Waiter", "messages": user("second")}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{retried}");
    assert_eq!(reply(&retried), "first answer");
    let streamed = events(running).await;
    assert!(streamed.iter().any(|event| event.contains("answer")), "{streamed:?}");
    let listed = conversations(&mut client, &agent_id).await;
    assert_eq!(
        transcript(&mut client, text(&listed[0]["id"])).await.len(),
        2,
        "the message ran once"
    );
}

#[tokio::test]
async fn idempotency_keys_of_different_chats_do_not_collide() {
    let server = server().await;
    let mut client = server.client().await;
    agent(&mut client, "Keyed").await;
    let (_, first) = chat(
        &server,
        &[("X-Letta-Chat-Key", "a:b"), ("Idempotency-Key", "c")],
        json!({"model": "Keyed", "messages": user("first")}),
    )
    .await;
    assert_eq!(reply(&first), "I received: first");
    let (_, second) = chat(
        &server,
        &[("X-Letta-Chat-Key", "a"), ("Idempotency-Key", "b:c")],
        json!({"model": "Keyed", "messages": user("second")}),
    )
    .await;
    assert_eq!(reply(&second), "I received: second");
}

#[tokio::test]
async fn a_client_that_leaves_mid_stream_does_not_stop_the_turn() {
    let server = server().await;
    let mut client = server.client().await;
    let keyed = [("X-Letta-Chat-Key", "patient")];
    let runtime = keyed_runtime(&server, &mut client, "Patient", &keyed).await;
    let conversation_id = text(&runtime["conversation_id"]).to_owned();
    let body = json!({"model": "Patient", "stream": true,
                      "messages": user("[[reply: a b c d]] [[chunks: 4]] [[delay: 100]]")});
    let response = open(&server, "POST", "/v1/chat/completions", &keyed, &body.to_string()).await;
    let mut body = response.into_body();
    body.frame().await.expect("the first chunk").expect("data");
    drop(body);
    let finished = client.recv_until_type("turn_finished").await;
    assert_eq!(finished.last().expect("the end")["stop_reason"], "end_turn");
    assert_eq!(transcript(&mut client, &conversation_id).await[3], "a b c d");
}

/// Posts `body` as it is to `/v1/chat/completions`.
async fn raw(server: &TestServer, body: &str) -> (StatusCode, Value) {
    let response = open(server, "POST", "/v1/chat/completions", &[], body).await;
    let status = response.status();
    let bytes = response.into_body().collect().await.expect("a body").to_bytes();
    (status, serde_json::from_slice(&bytes).expect("JSON"))
}

#[tokio::test]
async fn stopping_the_server_ends_the_running_requests() {
    let mut server = server().await;
    let mut client = server.client().await;
    let agent_id = agent(&mut client, "Busy").await;
    let before = conversations(&mut client, &agent_id).await.len();
    client.close().await;
    let body = json!({"model": "Busy", "stream": true, "messages": user("[[delay: 20000]] hi")});
    let response = open(&server, "POST", "/v1/chat/completions", &[], &body.to_string()).await;
    let mut body = response.into_body();
    body.frame().await.expect("the first chunk").expect("data");
    let reading = tokio::spawn(async move { body.collect().await.expect("the rest").to_bytes() });
    let started = std::time::Instant::now();
    server.stop().await;
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    let rest = reading.await.expect("read");
    let rest = String::from_utf8_lossy(&rest);
    assert!(rest.contains(r#""type":"server_error""#), "{rest}");
    assert!(rest.ends_with("data: [DONE]\n\n"), "{rest}");
    // The stopped turn's throwaway conversation was deleted before the server stopped.
    server.restart().await;
    let mut client = server.client().await;
    assert_eq!(conversations(&mut client, &agent_id).await.len(), before);
}

/// The binary, stopped by SIGTERM while a turn whose HTTP client left still runs: the turn is
/// wound up (its throwaway conversation deleted) before the process exits.
#[tokio::test]
async fn a_shutdown_winds_up_turns_whose_client_left() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let data = tempfile::tempdir().expect("temp dir");
    let (mut process, url) = crate::support::binary::spawn_server(data.path(), &["--openai-api"]);
    let mut client = Client::connect(&url).await;
    let agent_id = agent(&mut client, "Deserted").await;
    let before = conversations(&mut client, &agent_id).await.len();
    client.close().await;
    let address = url.trim_start_matches("ws://").trim_end_matches("/ws").to_owned();
    let body = json!({"model": "Deserted", "stream": true, "messages": user("[[delay: 20000]] hi")}).to_string();
    let mut stream = tokio::net::TcpStream::connect(&address).await.expect("connect");
    let request = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut head = Vec::new();
    while !String::from_utf8_lossy(&head).contains("data: ") {
        head.push(stream.read_u8().await.expect("the first chunk"));
    }
    // The client leaves; its turn goes on until the server stops it.
    drop(stream);
    process.terminate(Duration::from_secs(20)).expect("stops on SIGTERM");
    let (_process, url) = crate::support::binary::spawn_server(data.path(), &["--openai-api"]);
    let mut client = Client::connect(&url).await;
    assert_eq!(conversations(&mut client, &agent_id).await.len(), before);
}

#[tokio::test]
async fn bad_requests_get_clear_errors() {
    let server = TestServer::start_with(|config| {
        config.openai_api = true;
        config.max_frame_bytes = 64 * 1024;
    })
    .await;
    let mut client = server.client().await;
    agent(&mut client, "Strict").await;
    let (status, error) = raw(&server, "{not json").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        text(&error["error"]["message"]).starts_with("invalid JSON body"),
        "{error}"
    );
    assert_eq!(raw(&server, "[1]").await.0, StatusCode::BAD_REQUEST);
    for (body, param) in [
        (json!({"messages": user("hi")}), "model"),
        (json!({"model": "Strict"}), "messages"),
        (
            json!({"model": "Strict", "messages": [{"role": "assistant", "content": "hi"}]}),
            "messages",
        ),
        (json!({"model": "Strict", "messages": [{"content": "hi"}]}), "messages"),
        (
            json!({"model": "Strict", "messages": vec![json!({"role": "user", "content": "x"}); 1001]}),
            "messages",
        ),
    ] {
        let (status, error) = chat(&server, &[], body.clone()).await;
        assert_eq!(
            (status, &error["error"]["param"]),
            (StatusCode::BAD_REQUEST, &json!(param)),
            "{body}"
        );
        assert_eq!(error["error"]["type"], "invalid_request_error");
    }
    let (status, error) = chat(
        &server,
        &[],
        json!({"model": "Strict", "messages": user(&"x".repeat(70_000))}),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{error}");
    let (status, _) = send(&server, "GET", "/v1/chat/completions", &[], Value::Null).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    let (status, _) = send(&server, "POST", "/v1/models", &[], Value::Null).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    let (status, error) = send(&server, "GET", "/v1/embeddings", &[], Value::Null).await;
    assert_eq!(
        (status, &error["error"]["type"]),
        (StatusCode::NOT_FOUND, &json!("invalid_request_error"))
    );
    let (status, error) = send(
        &server,
        "GET",
        "/v1/models",
        &[("Origin", "https://page.example")],
        Value::Null,
    )
    .await;
    assert_eq!(
        (status, &error["error"]["type"]),
        (StatusCode::FORBIDDEN, &json!("permission_error"))
    );
}

#[tokio::test]
async fn with_authentication_every_request_needs_the_token() {
    let server = TestServer::start_with(|config| {
        config.openai_api = true;
        config.auth = Some(Auth::capability_token(TOKEN).expect("a token"));
    })
    .await;
    for (headers, reason) in [
        (vec![], "missing websocket bearer token"),
        (
            vec![("Authorization", "Bearer wrong")],
            "invalid websocket bearer token",
        ),
    ] {
        let response = open(&server, "GET", "/v1/models", &headers, "").await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        let bytes = response.into_body().collect().await.expect("a body").to_bytes();
        let error: Value = serde_json::from_slice(&bytes).expect("JSON");
        assert_eq!(error["error"]["message"], reason);
        assert_eq!(error["error"]["type"], "authentication_error");
    }
    let bearer = format!("Bearer {TOKEN}");
    let (status, _) = send(&server, "GET", "/v1/models", &[("Authorization", &bearer)], Value::Null).await;
    assert_eq!(status, StatusCode::OK);
    let from_page = [("Authorization", bearer.as_str()), ("Origin", "https://page.example")];
    let (status, _) = send(&server, "GET", "/v1/models", &from_page, Value::Null).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "web pages never reach the API");
}
