//! Letta 0.34.12's behaviours on the Tier-A frames (docs/protocol.md §8), with the frames its
//! probes recorded, while 0.32.18 clients keep working.

use std::time::Duration;

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

/// Letta 0.34's two new capability flags are advertised, as `false`: neither agent-free
/// conversations nor `launch_subagent` with `notify: "caller"` is implemented here.
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
        (&json!(false), &json!(false)),
        "{info}"
    );
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
