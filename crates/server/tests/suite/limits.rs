//! No client can hurt another through the size of what it sends: the strings it chooses are
//! bounded, error frames do not echo unbounded input, and no answer can overflow the socket.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::TestServer;
use crate::support::metrics::{scrape, value};
use crate::support::wire::{Client, start_runtime, user_input};

/// `frame` with `value` at the JSON pointer `at` (set or added).
fn with(mut frame: Value, at: &str, value: Value) -> Value {
    let (parent, key) = at.rsplit_once('/').expect("a pointer");
    let parent = frame
        .pointer_mut(parent)
        .and_then(Value::as_object_mut)
        .expect("an object");
    parent.insert(key.to_owned(), value);
    frame
}

/// Largest frame a subscriber got while a turn ran.
async fn largest_frame_of_a_turn(client: &mut Client) -> usize {
    client
        .recv_until_type("turn_finished")
        .await
        .iter()
        .map(|frame| frame.to_string().len())
        .max()
        .unwrap_or_default()
}

/// A huge `client_message_id` used to be repeated in every `update_loop_status` of the next 32
/// runs, to every subscriber. It is refused; the conversation's frames stay small.
#[tokio::test]
async fn an_oversized_id_is_refused_and_cannot_poison_a_conversation() {
    let server = TestServer::start().await;
    let mut sender = server.client().await;
    let runtime = start_runtime(&mut sender).await;
    let mut watcher = server.client().await;
    watcher
        .send(
            json!({"type": "runtime_start", "request_id": "rs-w", "agent_id": runtime["agent_id"],
            "conversation_id": runtime["conversation_id"]}),
        )
        .await;
    watcher.recv_until_type("update_subagent_state").await;

    let huge = "c".repeat(5 * 1024 * 1024);
    sender.send(user_input("in-huge", &runtime, "hi", &huge)).await;
    let error = sender.recv().await;
    assert_eq!(
        (
            &error["type"],
            &error["code"],
            &error["request_id"],
            &error["frame_type"]
        ),
        (
            &json!("error"),
            &json!("limit_exceeded"),
            &json!("in-huge"),
            &json!("input")
        )
    );
    assert_eq!(
        error["message"],
        "invalid `input` frame: field `payload.messages[0].client_message_id` is 5242880 bytes, over the limit of 256 bytes"
    );
    watcher.expect_silence(Duration::from_millis(200)).await;

    sender.send(user_input("in-1", &runtime, "hello", "cm-1")).await;
    assert!(largest_frame_of_a_turn(&mut watcher).await < 8 * 1024);
    sender.send(user_input("in-2", &runtime, "hello again", "cm-2")).await;
    assert!(largest_frame_of_a_turn(&mut sender).await < 8 * 1024);
}

/// Every kind of client-chosen string has its limit, named in the error.
#[tokio::test]
async fn each_bounded_field_names_its_limit() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let runtime = start_runtime(&mut client).await;
    let id = json!("i".repeat(257));
    let input = user_input("in", &runtime, "hi", "cm");
    let tool = json!({"name": "t", "description": "d", "parameters": {"type": "object"}});
    let cases = [
        (
            with(input.clone(), "/runtime/agent_id", id.clone()),
            "runtime.agent_id` is 257 bytes, over the limit of 256 bytes",
        ),
        (
            with(
                input.clone(),
                "/payload/client_tool_allowlist",
                json!(vec!["Bash"; 257]),
            ),
            "payload.client_tool_allowlist` is 257 entries, over the limit of 256 entries",
        ),
        (
            with(input.clone(), "/payload/external_tool_scope_ids", json!([id.clone()])),
            "payload.external_tool_scope_ids[0]` is 257 bytes",
        ),
        (
            json!({"type": "change_device_state", "runtime": runtime, "payload": {"cwd": "/".repeat(4097)}}),
            "payload.cwd` is 4097 bytes, over the limit of 4096 bytes",
        ),
        (
            json!({"type": "runtime_start", "request_id": "rs", "create_agent": {"body": {}},
                "external_tools": [{"tools": [with(tool.clone(), "/name", id.clone())]}]}),
            "external_tools[0].tools[0].name` is 257 bytes",
        ),
        (
            json!({"type": "runtime_start", "request_id": "rs", "create_agent": {"body": {}},
                "external_tools": [{"tools": [with(tool.clone(), "/description", json!("d".repeat(65537)))]}]}),
            "external_tools[0].tools[0].description` is 65537 bytes, over the limit of 65536 bytes",
        ),
        (
            json!({"type": "runtime_start", "request_id": "rs",
                "create_agent": {"body": {"system": "s".repeat(4 * 1024 * 1024)}}}),
            "create_agent.body` is 4194317 bytes as JSON, over the limit of 4194304 bytes",
        ),
        (
            json!({"type": "input", "runtime": runtime, "payload": {"kind": "approval_response",
                "request_id": "perm-x", "decision": {"behavior": "deny", "message": "m".repeat(65537)}}}),
            "payload.decision.message` is 65537 bytes",
        ),
        (
            json!({"type": "remove_queue_item", "request_id": "rq", "runtime": runtime, "item_id": id.clone()}),
            "item_id` is 257 bytes",
        ),
    ];
    for (frame, expected) in cases {
        client.send(frame.clone()).await;
        let error = client.recv().await;
        assert_eq!(error["code"], "limit_exceeded", "{error}");
        let message = error["message"].as_str().expect("message");
        assert!(message.contains(expected), "{message:?} should contain {expected:?}");
    }
    // The socket is still open and the runtime usable.
    client.send(user_input("in-ok", &runtime, "still here", "cm-ok")).await;
    assert_eq!(
        client.recv_until_type("turn_finished").await.pop().unwrap()["stop_reason"],
        "end_turn"
    );
}

/// A 5.5 MiB `agent_id` in `sync` used to come back twice (in an `error` and a `sync_response`),
/// overflowing the outbound limit before the client saw an answer. The answer is small now, and
/// error frames cut what they echo of bad input, with a marker.
#[tokio::test]
async fn answers_to_huge_frames_are_small() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let huge = "a".repeat(5_767_168);
    client
        .send(json!({"type": "sync", "request_id": "s-1", "runtime": {"agent_id": huge, "conversation_id": "default"}}))
        .await;
    let error = client.recv().await;
    assert_eq!(
        (&error["code"], &error["request_id"]),
        (&json!("limit_exceeded"), &json!("s-1"))
    );
    assert!(error.to_string().len() < 1024, "{error}");

    // A bad frame's huge `request_id`, `type` and offending value are cut.
    client
        .send_text(&json!({"type": "input", "request_id": huge, "runtime": 7}).to_string())
        .await;
    let error = client.recv().await;
    let echoed = error["request_id"].as_str().expect("request_id");
    assert!(echoed.ends_with("…[5766912 bytes cut]"), "{}", &echoed[250..]);
    client.send_text(&json!({"type": huge}).to_string()).await;
    let error = client.recv().await;
    assert!(error["frame_type"].as_str().unwrap().ends_with("…[5766912 bytes cut]"));
    client
        .send_text(
            &json!({"type": "change_device_state", "runtime": {"agent_id": "a", "conversation_id": "c"},
            "payload": {"mode": huge}})
            .to_string(),
        )
        .await;
    let error = client.recv().await;
    assert!(error.to_string().len() < 4096, "the bad value is cut from the message");
    client
        .send(json!({"type": "app_server_info", "request_id": "info"}))
        .await;
    assert_eq!(client.recv().await["request_id"], "info", "the socket stays open");
}

/// An answer larger than half the connection's outbound byte limit would risk closing the very
/// socket it answers: it is replaced by an `error` frame with the request's id, counted as one.
#[tokio::test]
async fn no_answer_can_overflow_the_socket_it_answers() {
    let server = TestServer::start_with(|config| config.max_queued_bytes = 512 * 1024).await;
    let mut client = server.client().await;
    // Each field within its own limit (docs/protocol.md §4.6), together over 256 KiB.
    let body = json!({"name": "Big", "system": "s".repeat(200 * 1024), "description": "d".repeat(60 * 1024)});
    client
        .send(json!({"type": "runtime_start", "request_id": "rs-big", "create_agent": {"body": body}}))
        .await;
    let answer = client.recv_until(|f| f["request_id"] == "rs-big").await.pop().unwrap();
    assert_eq!(
        (&answer["type"], &answer["code"]),
        (&json!("error"), &json!("internal"))
    );
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .starts_with("the `runtime_start_response` answer would be "),
        "{answer}"
    );
    let metrics = scrape(&server).await;
    assert_eq!(
        value(&metrics, "letta_error_frames_total", &[("code", "internal")]),
        1.0,
        "the replacement is counted as the error frame it is"
    );
    client
        .send(json!({"type": "app_server_info", "request_id": "info"}))
        .await;
    assert_eq!(
        client.recv_until(|f| f["request_id"] == "info").await.pop().unwrap()["success"],
        true
    );
}

/// A bad payload's `loop_error` goes to every subscriber of the runtime: what it quotes of the
/// bad input is cut.
#[tokio::test]
async fn loop_errors_quoting_bad_input_are_cut() {
    let server = TestServer::start().await;
    let mut sender = server.client().await;
    let runtime = start_runtime(&mut sender).await;
    let mut watcher = server.client().await;
    watcher
        .send(json!({"type": "sync", "request_id": "s", "runtime": runtime}))
        .await;
    watcher.recv_until_type("sync_response").await;
    let huge = "k".repeat(8 * 1024 * 1024);
    sender
        .send(json!({"type": "input", "runtime": runtime, "payload": {"kind": huge, "messages": []}}))
        .await;
    sender
        .send(json!({"type": "change_device_state", "runtime": runtime, "payload": {"mode": huge}}))
        .await;
    for _ in 0..2 {
        let error = watcher
            .recv_until(|f| f["delta"]["message_type"] == "loop_error")
            .await
            .pop()
            .unwrap();
        let message = error["delta"]["message"].as_str().unwrap();
        assert!(
            message.len() < 2100 && message.ends_with("bytes cut]"),
            "{}",
            &message[..80]
        );
    }
}

/// The number of messages in one input is bounded, and so is what they add to the queue and to
/// every `update_loop_status`.
#[tokio::test]
async fn the_messages_of_an_input_are_bounded() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let runtime = start_runtime(&mut client).await;
    let input = |request: &str, count: usize, busy: bool| {
        let messages: Vec<Value> = (0..count)
            .map(|n| {
                let text = if busy && n == 0 {
                    "[[deltas: 100]] [[delay: 20]]"
                } else {
                    "m"
                };
                json!({"role": "user", "content": text, "client_message_id": format!("{request}-{n:0>250}")})
            })
            .collect();
        json!({"type": "input", "request_id": request, "runtime": runtime,
            "payload": {"kind": "create_message", "messages": messages}})
    };
    client.send(input("too-many", 257, false)).await;
    let error = client.recv().await;
    assert_eq!(error["code"], "limit_exceeded");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("`payload.messages` is 257 entries")
    );

    // Direct starts: every id of the input is listed for its run, but the map keeps 512 at most.
    for n in 0..3 {
        client.send(input(&format!("d{n}"), 256, false)).await;
        client.recv_until_type("turn_finished").await;
    }
    client.send(input("last", 1, false)).await;
    let statuses = client.recv_until_type("turn_finished").await;
    let loop_status = statuses
        .iter()
        .rev()
        .find(|f| f["type"] == "update_loop_status")
        .unwrap();
    let listed: usize = loop_status["loop_status"]["client_message_ids_by_run_id"]
        .as_object()
        .unwrap()
        .values()
        .map(|ids| ids.as_array().unwrap().len())
        .sum();
    assert!(listed <= 512, "{listed} ids listed");

    // Queued: an input whose items would take the queue past 300 is refused.
    client.send(input("busy", 1, true)).await;
    client.send(input("q1", 256, false)).await;
    let first = client.recv_until(|f| f["request_id"] == "q1").await.pop().unwrap();
    assert_eq!(first["disposition"], "queued", "{first}");
    client.send(input("q2", 100, false)).await;
    let second = client.recv_until(|f| f["request_id"] == "q2").await.pop().unwrap();
    assert_eq!(
        second["error"],
        "Input was rejected by the queue: 356 items would be waiting, over the limit of 300"
    );
}

/// External tools: a registration is bounded, shared between the runtimes it names, and a
/// runtime holds a bounded number of tools from all connections together.
#[tokio::test]
async fn external_tool_registrations_are_bounded() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let tool = |name: String| json!({"name": name, "description": "d", "parameters": {"type": "object"}});
    let tools =
        |prefix: &str, count: usize| -> Vec<Value> { (0..count).map(|n| tool(format!("{prefix}{n}"))).collect() };
    let runtime = json!({"agent_id": "agent-x", "conversation_id": "default"});
    let update = |request: &str, runtimes: Vec<Value>, tools: Vec<Value>| {
        json!({"type": "runtime_external_tools_update", "request_id": request,
            "updates": [{"runtimes": runtimes, "external_tools": [{"tools": tools}]}]})
    };
    client
        .send(json!({"type": "runtime_external_tools_update", "request_id": "groups",
            "updates": [{"runtimes": [runtime], "external_tools": [{"tools": tools("a", 200)}, {"tools": tools("b", 57)}]}]}))
        .await;
    let error = client.recv().await;
    assert_eq!(error["code"], "limit_exceeded");
    assert!(error["message"].as_str().unwrap().contains("is 257 entries"), "{error}");

    // Four connections of 256 tools each fill a runtime; a fifth is refused.
    let mut others = Vec::new();
    for n in 0..4 {
        let mut other = server.client().await;
        other
            .send(update(&format!("u{n}"), vec![runtime.clone()], tools("t", 256)))
            .await;
        assert_eq!(other.recv().await["success"], true);
        others.push(other);
    }
    client.send(update("u5", vec![runtime.clone()], tools("t", 1))).await;
    let refused = client.recv().await;
    assert_eq!(
        (&refused["success"], &refused["error"]),
        (
            &json!(false),
            &json!("runtime agent-x/default would have 1025 external tools, over the limit of 1024")
        )
    );

    // A connection registers for 1024 runtimes at most.
    for batch in 0..4 {
        let runtimes: Vec<Value> = (0..256)
            .map(|n| json!({"agent_id": format!("agent-{batch}-{n}"), "conversation_id": "default"}))
            .collect();
        client.send(update(&format!("r{batch}"), runtimes, tools("x", 1))).await;
        assert_eq!(client.recv().await["success"], true);
    }
    client
        .send(update(
            "r4",
            vec![json!({"agent_id": "one-more", "conversation_id": "default"})],
            tools("x", 1),
        ))
        .await;
    assert_eq!(
        client.recv().await["error"],
        "a connection may register tools for 1024 runtimes at most"
    );
}

/// A client's detached commands are bounded (`MAX_DETACHED_COMMANDS`): past the bound its next
/// frame waits for a place, so many at once that end quickly are all answered.
#[tokio::test]
async fn many_detached_commands_at_once_are_all_answered() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let runtime = start_runtime(&mut client).await;
    // Twice the bound of 64, and one more.
    let count = 129;
    for n in 0..count {
        client
            .send(json!({"type": "cron_list", "request_id": format!("cl-{n}"), "agent_id": runtime["agent_id"]}))
            .await;
    }
    let mut answered = std::collections::BTreeSet::new();
    while answered.len() < count {
        let frame = client.recv().await;
        if frame["type"] == "cron_list_response" {
            answered.insert(frame["request_id"].as_str().expect("an id").to_owned());
        }
    }
}
