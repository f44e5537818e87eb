//! Letta 0.34.12's behaviours on the Tier-A frames (docs/protocol.md §8), with the frames its
//! probes recorded, while 0.32.18 clients keep working.

use std::time::Duration;

use letta_app_server_mock_llm::{MockResponse, MockServer, Script, finish_chunk, text_chunk, tool_chunk};
use serde_json::{Value, json};

use crate::support::TestServer;
use crate::support::wire::{Client, start_runtime, user_input};

/// An `input` of one message carrying `terminal_consumer_id: consumer`.
fn consumed_input(request_id: &str, runtime: &Value, text: &str, client_id: &str, consumer: &str) -> Value {
    let mut input = user_input(request_id, runtime, text, client_id);
    input["terminal_consumer_id"] = json!(consumer);
    input
}

/// The frames up to the next `turn_finished`, and that frame.
async fn next_turn(client: &mut Client) -> (Vec<Value>, Value) {
    let frames = client.recv_until_type("turn_finished").await;
    let finished = frames.last().cloned().expect("a turn_finished");
    (frames, finished)
}

/// As probe p5: `turn_finished.terminal_consumer_ids` echoes the consumer of every input the turn
/// ran (queued inputs coalesce into one turn, first seen first, without repeats), and is absent
/// when none carried one; an invalid consumer id runs nothing.
#[tokio::test]
async fn turn_finished_names_the_terminal_consumers_of_its_inputs() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let runtime = start_runtime(&mut client).await;

    client
        .send(consumed_input(
            "in-1",
            &runtime,
            "first [[delay: 300]]",
            "cm-1",
            "consumer-a",
        ))
        .await;
    client.recv_until_type("input_accepted").await;
    for (n, consumer) in [(2, "consumer-b"), (3, "consumer-c"), (4, "consumer-b")] {
        let text = format!("queued {n}");
        let (request_id, client_id) = (format!("in-{n}"), format!("cm-{n}"));
        client
            .send(consumed_input(&request_id, &runtime, &text, &client_id, consumer))
            .await;
    }
    let (mut frames, first) = next_turn(&mut client).await;
    assert_eq!(first["terminal_consumer_ids"], json!(["consumer-a"]), "{first}");
    assert!(first["turn_id"].as_str().unwrap().starts_with("turn-"));
    let (second, batch) = next_turn(&mut client).await;
    frames.extend(second);
    let queued: Vec<&Value> = frames.iter().filter(|f| f["type"] == "input_accepted").collect();
    assert_eq!(queued.len(), 3, "{frames:?}");
    assert!(queued.iter().all(|f| f["disposition"] == "queued"));
    assert_eq!(
        batch["terminal_consumer_ids"],
        json!(["consumer-b", "consumer-c"]),
        "one coalesced turn for the three queued inputs: {batch}"
    );

    client.send(user_input("in-5", &runtime, "no consumer", "cm-5")).await;
    let (_, plain) = next_turn(&mut client).await;
    assert!(plain.get("terminal_consumer_ids").is_none(), "{plain}");

    client
        .send(consumed_input("in-6", &runtime, "bad consumer", "cm-6", "bad id"))
        .await;
    let error = client.recv().await;
    assert_eq!(
        (&error["type"], &error["code"], &error["request_id"]),
        (&json!("error"), &json!("invalid_frame"), &json!("in-6")),
        "{error}"
    );
    assert!(
        error["message"].as_str().unwrap().contains("terminal_consumer_id"),
        "{error}"
    );
    client.expect_silence(Duration::from_millis(500)).await;
}

/// As probe p5: `turn_finished_ack` is accepted without any answer; a malformed one gets an
/// `error` frame.
#[tokio::test]
async fn turn_finished_ack_is_accepted_silently() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let runtime = start_runtime(&mut client).await;
    client
        .send(consumed_input("in-1", &runtime, "hello", "cm-1", "consumer-a"))
        .await;
    let (_, finished) = next_turn(&mut client).await;

    client
        .send(json!({"type": "turn_finished_ack", "runtime": runtime,
            "idempotency_key": finished["idempotency_key"], "consumer_id": "consumer-a"}))
        .await;
    client
        .send(json!({"type": "turn_finished_ack",
            "runtime": {"agent_id": null, "conversation_id": runtime["conversation_id"]},
            "idempotency_key": "turn_finished:1:x", "consumer_id": "consumer-a"}))
        .await;
    client.expect_silence(Duration::from_millis(500)).await;

    client
        .send(json!({"type": "turn_finished_ack", "runtime": runtime,
            "idempotency_key": "", "consumer_id": "consumer-a"}))
        .await;
    let error = client.recv().await;
    assert_eq!(
        (&error["type"], &error["frame_type"]),
        (&json!("error"), &json!("turn_finished_ack")),
        "{error}"
    );
    client.expect_silence(Duration::from_millis(300)).await;
}

/// As probe p6: a turn that fails before a run was created for its inputs names them in the
/// terminal `loop_error`'s `client_message_ids`.
#[tokio::test]
async fn a_turn_failing_before_its_run_names_its_inputs_in_loop_error() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let runtime = start_runtime(&mut client).await;
    let mut input = user_input("in-1", &runtime, "hello", "cm-fail");
    input["payload"]["client_toolset"] = json!({"include": ["NoSuchTool"]});
    client.send(input).await;
    let frames = client
        .recv_until(|f| f["type"] == "stream_delta" && f["delta"]["message_type"] == "loop_error")
        .await;
    let loop_error = &frames.last().unwrap()["delta"];
    assert_eq!(
        (&loop_error["is_terminal"], &loop_error["client_message_ids"]),
        (&json!(true), &json!(["cm-fail"])),
        "{loop_error}"
    );
    assert!(
        frames
            .iter()
            .any(|f| f["type"] == "turn_finished" && f["stop_reason"] == "error")
    );

    // A failure after the run began names no inputs.
    client
        .send(user_input(
            "in-2",
            &runtime,
            "hello [[fail: 400 bad request]]",
            "cm-run",
        ))
        .await;
    let frames = client.recv_until_type("turn_finished").await;
    let loop_errors: Vec<&Value> = frames
        .iter()
        .filter(|f| f["type"] == "stream_delta" && f["delta"]["message_type"] == "loop_error")
        .collect();
    assert!(!loop_errors.is_empty(), "{frames:?}");
    assert!(
        loop_errors
            .iter()
            .all(|f| f["delta"].get("client_message_ids").is_none())
    );
}

/// The tools the turn of `input` offered (`current_loaded_tools` of its last device status).
async fn loaded_tools(client: &mut Client, input: Value) -> Vec<String> {
    client.send(input).await;
    let (frames, _) = next_turn(client).await;
    let device = frames
        .iter()
        .rev()
        .find(|f| f["type"] == "update_device_status")
        .expect("a device status");
    serde_json::from_value(device["device_status"]["current_loaded_tools"].clone()).expect("a list of names")
}

/// As probe p12: `client_preferences` are remembered per conversation (omitted keeps them,
/// supplied replaces them, `{}` clears them), across a restart; an unknown tool name or key is
/// Letta 0.34's protocol-violation `loop_error` and runs nothing.
#[tokio::test]
async fn client_preferences_are_sticky_per_conversation_and_validated() {
    let mut server = TestServer::start().await;
    let mut client = server.client().await;
    let runtime = start_runtime(&mut client).await;
    let with = |n: u32, preferences: Option<Value>| {
        let mut input = user_input(&format!("in-{n}"), &runtime, "hello", &format!("cm-{n}"));
        if let Some(preferences) = preferences {
            input["payload"]["client_preferences"] = preferences;
        }
        input
    };

    assert!(
        !loaded_tools(&mut client, with(1, None))
            .await
            .contains(&"Grep".to_owned())
    );
    let grep = json!({"toolset": {"include": ["Grep"]}});
    assert!(
        loaded_tools(&mut client, with(2, Some(grep)))
            .await
            .contains(&"Grep".to_owned())
    );
    assert!(
        loaded_tools(&mut client, with(3, None))
            .await
            .contains(&"Grep".to_owned()),
        "omitted preferences are inherited"
    );

    for (n, preferences) in [
        (4, json!({"toolset": {"include": ["NoSuchTool"]}})),
        (5, json!({"toolset": {"include": ["Grep"]}, "theme": "dark"})),
    ] {
        client.send(with(n, Some(preferences))).await;
        let frames = client
            .recv_until(|f| f["type"] == "stream_delta" && f["delta"]["message_type"] == "loop_error")
            .await;
        let loop_error = &frames.last().unwrap()["delta"];
        assert_eq!(
            (&loop_error["message"], &loop_error["is_terminal"]),
            (
                &json!(
                    "Protocol violation: client_preferences must contain only an optional toolset with include: \
                     known bundled tool names[]"
                ),
                &json!(false)
            )
        );
        assert!(frames.iter().all(|f| f["type"] != "input_accepted"), "{frames:?}");
    }
    client.expect_silence(Duration::from_millis(300)).await;

    server.restart().await;
    let mut client = server.client().await;
    client
        .send(
            json!({"type": "runtime_start", "request_id": "rs-2", "agent_id": runtime["agent_id"],
            "conversation_id": runtime["conversation_id"]}),
        )
        .await;
    client.recv_until_type("update_subagent_state").await;
    assert!(
        loaded_tools(&mut client, with(6, None))
            .await
            .contains(&"Grep".to_owned()),
        "the preferences survive a restart"
    );
    assert!(
        !loaded_tools(&mut client, with(7, Some(json!({}))))
            .await
            .contains(&"Grep".to_owned()),
        "`{{}}` clears them"
    );
    assert!(
        !loaded_tools(&mut client, with(8, None))
            .await
            .contains(&"Grep".to_owned())
    );
}

/// Letta 0.34's two new capability flags tell what is implemented: agent-free conversations and
/// `launch_subagent` with `notify: "caller"` both are.
#[tokio::test]
async fn the_new_capability_flags_tell_what_is_implemented() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    client
        .send(json!({"type": "app_server_info", "request_id": "info-1"}))
        .await;
    let info = client.recv().await;
    let capabilities = &info["capabilities"];
    assert_eq!(
        (
            &capabilities["agent_free_conversations"],
            &capabilities["launch_subagent_notify_caller"]
        ),
        (&json!(true), &json!(true)),
        "{info}"
    );
    assert_eq!(capabilities["launch_subagent"], true, "{info}");
}

/// The `tool_return` of the `tool_return_message` deltas among `frames`.
fn tool_returns(frames: &[Value]) -> Vec<String> {
    frames
        .iter()
        .filter(|f| f["type"] == "stream_delta" && f["delta"]["message_type"] == "tool_return_message")
        .filter_map(|f| f["delta"]["tool_return"].as_str().map(str::to_owned))
        .collect()
}

/// As probe p8: an external tool still running after the auto-background delay (10 s by
/// default; 300 ms here) gets a synthetic success result and the turn ends; the controller's
/// later answer is queued as a `task_notification` item and runs as a turn of its own. With
/// `auto_background: false` the turn waits; each tool's `timeout_ms` replaces the server's.
#[tokio::test]
async fn slow_external_tools_are_backgrounded_and_report_in_a_task_notification() {
    let server = TestServer::start_with(|config| {
        config.external_tool_background_after = Duration::from_millis(300);
        config.external_tool_timeout = Duration::from_millis(600);
    })
    .await;
    let mut client = server.client().await;
    let parameters = json!({"type": "object", "properties": {"city": {"type": "string"}}});
    let start = json!({"type": "runtime_start", "request_id": "rs-1", "create_agent": {"body": {"name": "Tools"}},
        "mode": "unrestricted", "external_tools": [{"tools": [
            {"name": "ext_slow", "description": "slow tool", "parameters": parameters, "timeout_ms": 60000},
            {"name": "ext_inline", "description": "slow tool, inline", "parameters": parameters,
                "auto_background": false, "timeout_ms": 60000}]}]});
    client.send(start).await;
    let frames = client.recv_until_type("update_subagent_state").await;
    let runtime = frames[0]["runtime"].clone();

    client
        .send(user_input(
            "in-1",
            &runtime,
            r#"[[tool: ext_slow {"city":"Paris"}]]"#,
            "cm-slow",
        ))
        .await;
    let request = client
        .recv_until_type("external_tool_call_request")
        .await
        .pop()
        .unwrap();
    let (frames, finished) = next_turn(&mut client).await;
    assert_eq!(finished["stop_reason"], "end_turn", "{finished}");
    let receipt = tool_returns(&frames).pop().expect("a tool return");
    assert!(
        receipt.starts_with("External tool ext_slow is still running. Task ID: external_"),
        "{receipt}"
    );

    // Later than the server's 600 ms call timeout: the tool's own `timeout_ms` applies.
    tokio::time::sleep(Duration::from_millis(700)).await;
    client
        .send(
            json!({"type": "external_tool_call_response", "request_id": request["request_id"],
            "result": {"content": [{"type": "text", "text": "slow result for ext_slow"}]}}),
        )
        .await;
    let (frames, finished) = next_turn(&mut client).await;
    let queued = frames
        .iter()
        .find(|f| f["type"] == "update_queue" && !f["queue"].as_array().unwrap().is_empty())
        .expect("the notification is queued");
    let item = &queued["queue"][0];
    assert_eq!(
        (&item["kind"], &item["source"]),
        (&json!("task_notification"), &json!("task_notification")),
        "{item}"
    );
    assert!(
        item["client_message_id"].as_str().unwrap().starts_with("cm-q-"),
        "{item}"
    );
    let content = item["content"].as_str().unwrap();
    let task_id = receipt.split("Task ID: ").nth(1).unwrap().split('.').next().unwrap();
    assert!(
        content.starts_with(&format!(
            "<task-notification>\n<task-id>{task_id}</task-id>\n<status>completed</status>\n\
             <summary>External tool ext_slow completed</summary>\n<result>slow result for ext_slow</result>\n"
        )),
        "{content}"
    );
    let echo = frames
        .iter()
        .find(|f| f["type"] == "stream_delta" && f["delta"]["message_type"] == "user_message")
        .expect("the notification runs as a turn");
    assert_eq!(echo["delta"]["content"], item["content"]);
    assert_eq!(finished["stop_reason"], "end_turn");

    client
        .send(user_input(
            "in-2",
            &runtime,
            r#"[[tool: ext_inline {"city":"Paris"}]]"#,
            "cm-inline",
        ))
        .await;
    let request = client
        .recv_until_type("external_tool_call_request")
        .await
        .pop()
        .unwrap();
    client.expect_silence(Duration::from_millis(900)).await;
    client
        .send(
            json!({"type": "external_tool_call_response", "request_id": request["request_id"],
            "result": {"content": [{"type": "text", "text": "slow result for ext_inline"}]}}),
        )
        .await;
    let (frames, finished) = next_turn(&mut client).await;
    assert_eq!(tool_returns(&frames), ["slow result for ext_inline"]);
    assert_eq!(finished["stop_reason"], "end_turn");
}

/// A server whose `llama.cpp/…` models are served by `mock`.
async fn server_with_model(mock: &MockServer<Script>) -> TestServer {
    let base_url = mock.base_url.clone();
    TestServer::start_with(|config| config.providers.llama_cpp = base_url).await
}

/// The messages the model got in its `n`th request.
fn sent_messages(mock: &MockServer<Script>, n: usize) -> Vec<Value> {
    mock.requests()[n].body["messages"]
        .as_array()
        .expect("messages")
        .clone()
}

/// As probe p11: `runtime_start` without an agent but with `create_conversation.body.model` and
/// `system` creates an agent-free conversation (`agent_id: null` in every scope); its turns use
/// that model and system prompt, external tools, `sync` and `abort_message` work on it, and it
/// survives a restart. Without `model` or `system` the answer is Letta's refusal.
#[tokio::test]
async fn agent_free_conversations_run_turns_and_survive_a_restart() {
    let mock = MockServer::scripted(vec![
        MockResponse::sse([text_chunk("Hello from the mock"), finish_chunk("stop")]),
        MockResponse::sse([
            tool_chunk(0, Some("call_ext"), Some("ext_echo"), Some(r#"{"city":"Paris"}"#)),
            finish_chunk("tool_calls"),
        ]),
        MockResponse::sse([text_chunk("Sunny."), finish_chunk("stop")]),
        MockResponse::sse([text_chunk("Still here."), finish_chunk("stop")]),
    ]);
    let mut server = server_with_model(&mock).await;
    let mut client = server.client().await;

    for (n, body) in [(1, None), (2, Some(json!({"model": "llama.cpp/mock-model"})))] {
        let create = body.map_or_else(|| json!({}), |body| json!({"body": body}));
        let request_id = format!("rs-{n}");
        client
            .send(json!({"type": "runtime_start", "request_id": request_id, "create_conversation": create}))
            .await;
        assert_eq!(
            client.recv().await,
            json!({"type": "runtime_start_response", "request_id": request_id, "success": false,
                "runtime": null, "agent": null, "conversation": null,
                "created": {"agent": false, "conversation": false},
                "error": "Agent-free conversation creation requires body.model and body.system"})
        );
    }

    let parameters = json!({"type": "object", "properties": {"city": {"type": "string"}}});
    client
        .send(json!({"type": "runtime_start", "request_id": "rs-3",
            "create_conversation": {"body": {"model": "llama.cpp/mock-model", "system": "You are a test assistant."}},
            "external_tools": [{"tools": [{"name": "ext_echo", "description": "echo", "parameters": parameters}]}]}))
        .await;
    let frames = client.recv_until_type("update_subagent_state").await;
    let response = &frames[0];
    let runtime = response["runtime"].clone();
    let conversation_id = runtime["conversation_id"].as_str().unwrap().to_owned();
    assert!(conversation_id.starts_with("local-conv-"), "{response}");
    assert_eq!(runtime, json!({"agent_id": null, "conversation_id": conversation_id}));
    assert_eq!(
        (&response["success"], &response["agent"], &response["created"]),
        (
            &json!(true),
            &json!(null),
            &json!({"agent": false, "conversation": true})
        ),
        "{response}"
    );
    let conversation = &response["conversation"];
    assert_eq!(
        (
            &conversation["id"],
            &conversation["agent_id"],
            &conversation["model"],
            &conversation["system"],
            &conversation["agent_free"]
        ),
        (
            &json!(conversation_id),
            &json!(null),
            &json!("llama.cpp/mock-model"),
            &json!("You are a test assistant."),
            &json!(true)
        ),
        "{conversation}"
    );
    assert!(
        frames[1..].iter().all(|f| f["runtime"] == runtime),
        "the replay is scoped to the agent-free runtime: {frames:?}"
    );

    client
        .send(user_input("in-1", &runtime, "hello agent-free", "cm-1"))
        .await;
    let (frames, finished) = next_turn(&mut client).await;
    assert_eq!(
        (&finished["stop_reason"], &finished["runtime"]),
        (&json!("end_turn"), &runtime)
    );
    assert!(frames.iter().any(|f| f["delta"]["message_type"] == "assistant_message"));
    assert_eq!(mock.requests()[0].body["model"], "mock-model");
    assert_eq!(
        sent_messages(&mock, 0),
        [
            json!({"role": "system", "content": "You are a test assistant."}),
            json!({"role": "user", "content": "hello agent-free"})
        ]
    );

    client.send(user_input("in-2", &runtime, "weather?", "cm-2")).await;
    let request = client
        .recv_until_type("external_tool_call_request")
        .await
        .pop()
        .unwrap();
    assert_eq!(request["runtime"], runtime, "{request}");
    client
        .send(
            json!({"type": "external_tool_call_response", "request_id": request["request_id"],
            "result": {"content": [{"type": "text", "text": "sunny in Paris"}]}}),
        )
        .await;
    let (_, finished) = next_turn(&mut client).await;
    assert_eq!(finished["stop_reason"], "end_turn", "{finished}");
    assert_eq!(
        sent_messages(&mock, 2).last().unwrap(),
        &json!({"role": "tool", "tool_call_id": "call_ext", "content": "sunny in Paris"})
    );

    server.restart().await;
    let mut client = server.client().await;
    client
        .send(json!({"type": "sync", "request_id": "sync-1", "runtime": runtime}))
        .await;
    let synced = client.recv_until_type("sync_response").await.pop().unwrap();
    assert_eq!(
        (&synced["success"], &synced["runtime"]),
        (&json!(true), &runtime),
        "{synced}"
    );
    client
        .send(json!({"type": "abort_message", "request_id": "abort-1", "runtime": runtime}))
        .await;
    let aborted = client.recv_until_type("abort_message_response").await.pop().unwrap();
    assert_eq!(
        (&aborted["runtime"], &aborted["aborted"]),
        (&runtime, &json!(false)),
        "{aborted}"
    );
    client
        .send(json!({"type": "runtime_start", "request_id": "rs-4", "conversation_id": conversation_id}))
        .await;
    let joined = client.recv_until_type("runtime_start_response").await.pop().unwrap();
    assert_eq!(
        (&joined["success"], &joined["runtime"], &joined["created"]),
        (&json!(true), &runtime, &json!({"agent": false, "conversation": false})),
        "{joined}"
    );
    client.recv_until_type("update_subagent_state").await;
    client.send(user_input("in-3", &runtime, "still there?", "cm-3")).await;
    let (_, finished) = next_turn(&mut client).await;
    assert_eq!(finished["stop_reason"], "end_turn", "{finished}");
    let messages = sent_messages(&mock, 3);
    assert_eq!(
        (&messages[0]["content"], &messages[1]["content"], messages.len()),
        (&json!("You are a test assistant."), &json!("hello agent-free"), 8),
        "the history and system prompt survive the restart: {messages:?}"
    );

    client
        .send(
            json!({"type": "runtime_start", "request_id": "rs-5", "create_agent": {"body": {"name": "Other"}},
            "conversation_id": conversation_id}),
        )
        .await;
    let refused = client.recv_until_type("runtime_start_response").await.pop().unwrap();
    let error = refused["error"].as_str().unwrap();
    assert!(
        error.starts_with(&format!("Conversation {conversation_id} belongs to null, not agent-")),
        "an agent cannot take over an agent-free conversation: {refused}"
    );
}

/// As probe p12 and Letta 0.34's `AskUserQuestion` v2: with `client_preferences.toolset.include:
/// ["AskUserQuestion"]` the model gets the asynchronous tool, which is allowed without a
/// `control_request` (even in `strict` mode) and returns at once a receipt; the user's answer
/// arrives as an ordinary message with a `<task-notification>`. Bad arguments are a tool error.
/// Without the preference, the 0.32.18 tool asks through a `control_request` as before.
#[tokio::test]
async fn ask_user_question_v2_posts_a_receipt_and_the_answer_comes_as_a_message() {
    let questions = json!([{"question": "Which color?", "header": "Color", "multiSelect": false,
        "options": [{"label": "red", "description": "warm"}, {"label": "blue", "description": "cool"}]}]);
    let mock = MockServer::scripted(vec![
        MockResponse::sse([
            tool_chunk(
                0,
                Some("call_ask"),
                Some("AskUserQuestion"),
                Some(&json!({"questions": questions}).to_string()),
            ),
            finish_chunk("tool_calls"),
        ]),
        MockResponse::sse([text_chunk("Waiting for your answer."), finish_chunk("stop")]),
        MockResponse::sse([text_chunk("Blue it is."), finish_chunk("stop")]),
        MockResponse::sse([
            tool_chunk(
                0,
                Some("call_bad"),
                Some("AskUserQuestion"),
                Some(r#"{"city":"Paris"}"#),
            ),
            finish_chunk("tool_calls"),
        ]),
        MockResponse::sse([text_chunk("Sorry."), finish_chunk("stop")]),
        MockResponse::sse([
            tool_chunk(
                0,
                Some("call_v1"),
                Some("AskUserQuestion"),
                Some(&json!({"questions": questions}).to_string()),
            ),
            finish_chunk("tool_calls"),
        ]),
        MockResponse::sse([text_chunk("Noted."), finish_chunk("stop")]),
    ]);
    let server = server_with_model(&mock).await;
    let mut client = server.client().await;
    client
        .send(json!({"type": "runtime_start", "request_id": "rs-1", "mode": "strict",
            "create_agent": {"body": {"name": "Asker", "model": "llama.cpp/mock-model", "system": "Ask."}}}))
        .await;
    let runtime = client.recv_until_type("update_subagent_state").await[0]["runtime"].clone();

    let mut input = user_input("in-1", &runtime, "pick a color", "cm-1");
    input["payload"]["client_preferences"] = json!({"toolset": {"include": ["AskUserQuestion"]}});
    client.send(input).await;
    let (frames, finished) = next_turn(&mut client).await;
    assert_eq!(finished["stop_reason"], "end_turn", "{finished}");
    assert!(frames.iter().all(|f| f["type"] != "control_request"), "{frames:?}");
    let classified = frames
        .iter()
        .find(|f| f["delta"]["message_type"] == "approval_classification_end")
        .expect("a classification");
    assert_eq!(classified["delta"]["auto_allowed_tool_call_ids"], json!(["call_ask"]));
    let offered = mock.requests()[0].body["tools"].clone();
    let ask = offered
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["function"]["name"] == "AskUserQuestion")
        .expect("AskUserQuestion is offered");
    assert_eq!(
        ask["function"]["parameters"]["properties"]["questions"]["items"]["required"],
        json!(["question", "header", "options"]),
        "the v2 argument shape: {ask}"
    );
    assert!(ask["function"]["parameters"]["properties"].get("answers").is_none());
    let returned = frames
        .iter()
        .find(|f| f["delta"]["message_type"] == "tool_return_message")
        .expect("a tool return");
    assert_eq!(returned["delta"]["status"], "success", "{returned}");
    let receipt: Value = serde_json::from_str(returned["delta"]["tool_return"].as_str().unwrap()).unwrap();
    let message = receipt["message"].as_str().unwrap().to_owned();
    assert!(
        message.starts_with("Questions posted. Answers or dismissal will arrive later in a task notification"),
        "{receipt}"
    );
    assert_eq!(
        receipt,
        json!({"type": "ask_user_question", "version": 2, "toolCallId": "call_ask", "questions": questions,
            "message": message})
    );
    assert_eq!(
        sent_messages(&mock, 1).last().unwrap(),
        &json!({"role": "tool", "tool_call_id": "call_ask", "content": receipt.to_string()})
    );

    let answer = json!({"type": "ask_user_question_response", "version": 2, "toolCallId": "call_ask",
        "questions": questions, "status": "answered", "answers": {"Which color?": "blue"}});
    let notification = format!(
        "<task-notification><task-id>call_ask</task-id><summary>User answered your questions.</summary>\
         <ask-user-question-response>{answer}</ask-user-question-response></task-notification>"
    );
    client.send(user_input("in-2", &runtime, &notification, "cm-2")).await;
    let (_, finished) = next_turn(&mut client).await;
    assert_eq!(finished["stop_reason"], "end_turn", "{finished}");
    assert_eq!(
        sent_messages(&mock, 2).last().unwrap(),
        &json!({"role": "user", "content": notification})
    );

    client.send(user_input("in-3", &runtime, "ask badly", "cm-3")).await;
    let (frames, finished) = next_turn(&mut client).await;
    assert_eq!(finished["stop_reason"], "end_turn", "{finished}");
    let returned = frames
        .iter()
        .find(|f| f["delta"]["message_type"] == "tool_return_message")
        .expect("a tool return");
    assert_eq!(returned["delta"]["status"], "error", "{returned}");
    assert!(
        returned["delta"]["tool_return"]
            .as_str()
            .unwrap()
            .contains("`questions`"),
        "{returned}"
    );

    let mut input = user_input("in-4", &runtime, "ask the old way", "cm-4");
    input["payload"]["client_preferences"] = json!({});
    client.send(input).await;
    let asked = client.recv_until_type("control_request").await.pop().unwrap();
    assert_eq!(
        (&asked["request_id"], &asked["request"]["tool_name"]),
        (&json!("perm-call_v1"), &json!("AskUserQuestion"))
    );
    client
        .send(
            json!({"type": "input", "request_id": "ans", "runtime": runtime, "payload": {"kind": "approval_response",
            "request_id": "perm-call_v1", "decision": {"behavior": "allow",
            "updated_input": {"questions": questions, "answers": {"Which color?": "red"}}}}}),
        )
        .await;
    let (_, finished) = next_turn(&mut client).await;
    assert_eq!(finished["stop_reason"], "end_turn", "{finished}");
}

/// A `teleport_continue` input: this server never prepares a teleport's destination, so it is
/// refused as real Letta refuses a continuation that matches no handoff, and nothing runs; without
/// a `request_id` the refusal is an `error` frame.
#[tokio::test]
async fn a_teleport_continuation_matching_no_handoff_is_refused_and_never_run() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let runtime = start_runtime(&mut client).await;
    let continuation = |request_id: Option<&str>| {
        let mut input = json!({"type": "input", "runtime": runtime, "payload": {
            "kind": "teleport_continue", "teleport_id": "tp-1",
            "source": {"device_id": "device-a", "connection_name": "laptop"},
            "continuation": {"approvals": [{"type": "tool", "tool_call_id": "call-1",
                "tool_return": "done", "status": "success"}]}}});
        if let Some(id) = request_id {
            input["request_id"] = json!(id);
        }
        input
    };

    client.send(continuation(Some("in-tp"))).await;
    let answer = client
        .recv_until_type("input_accepted")
        .await
        .pop()
        .expect("input_accepted");
    assert_eq!(
        (&answer["request_id"], &answer["accepted"], &answer["error"]),
        (
            &json!("in-tp"),
            &json!(false),
            &json!("Teleport continuation does not match the expected handoff")
        ),
        "{answer}"
    );
    client.send(continuation(None)).await;
    let error = client.recv_until_type("error").await.pop().expect("error");
    assert_eq!(
        (&error["code"], &error["frame_type"]),
        (&json!("unsupported"), &json!("input")),
        "{error}"
    );
    client.expect_silence(Duration::from_millis(500)).await;
}
