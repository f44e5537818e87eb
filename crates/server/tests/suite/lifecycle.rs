//! The Tier-A lifecycles of docs/protocol.md §5 over a real socket, with the frame order of real Letta.

use serde_json::json;

use crate::support::wire::{start_runtime, summary, user_input};
use crate::support::{TestServer, wire};

#[tokio::test]
async fn runtime_start_creates_an_agent_and_a_text_turn_streams() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    client
        .send(json!({"type": "app_server_info", "request_id": "info-1"}))
        .await;
    let info = client.recv().await;
    assert_eq!(
        (
            info["protocol_version"].as_u64(),
            &info["capabilities"]["split_channels"]
        ),
        (Some(1), &json!(true))
    );

    client
        .send(
            json!({"type": "runtime_start", "request_id": "rs-1", "mode": "standard",
            "create_agent": {"body": {"name": "Proto Agent"}, "pin_global": false},
            "create_conversation": {"body": {"summary": "proto conv"}}, "client_info": {"name": "test"}}),
        )
        .await;
    let start = client.recv_until_type("update_subagent_state").await;
    let runtime = start[0]["runtime"].clone();
    client
        .send(user_input(
            "in-1",
            &runtime,
            "say hello [[think: Thinking about the greeting.]] [[reply: Hello there!]]",
            "cm-1",
        ))
        .await;
    let turn = client.recv_until_type("turn_finished").await;

    insta::assert_snapshot!(
        "a_b_start_and_turn",
        summary(&[start.clone(), turn.clone()].concat()).join("\n")
    );
    insta::assert_json_snapshot!("a_b_start_and_turn_frames", wire::normalize(&[start, turn].concat()));
}

#[tokio::test]
async fn wait_for_replay_sends_the_response_after_the_replay() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let mut start = wire::create_runtime("rs-w");
    start["wait_for_replay"] = json!(true);
    client.send(start).await;
    let frames = client.recv_until_type("runtime_start_response").await;
    assert_eq!(
        summary(&frames),
        [
            "device processing=false",
            "loop WAITING_ON_INPUT",
            "queue [] removed []",
            "update_subagent_state",
            "runtime_start_response success=true"
        ]
    );
}

#[tokio::test]
async fn runtime_start_resolves_joins_and_fails_like_real_letta() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let runtime = start_runtime(&mut client).await;
    let agent_id = runtime["agent_id"].as_str().unwrap().to_owned();

    let mut responses = Vec::new();
    for (request_id, extra) in [
        (
            "join",
            json!({"agent_id": agent_id, "conversation_id": runtime["conversation_id"]}),
        ),
        ("default", json!({"agent_id": agent_id, "conversation_id": "default"})),
        ("new-conv", json!({"agent_id": agent_id})),
        ("neither", json!({})),
        ("both", json!({"agent_id": agent_id, "create_agent": {"body": {}}})),
        ("no-agent", json!({"agent_id": "agent-does-not-exist"})),
        (
            "no-conv",
            json!({"agent_id": agent_id, "conversation_id": "conv-missing"}),
        ),
    ] {
        let mut frame = json!({"type": "runtime_start", "request_id": request_id});
        frame
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        client.send(frame).await;
        let response = client
            .recv_until(|f| f["type"] == "runtime_start_response")
            .await
            .pop()
            .unwrap();
        if response["success"] == true {
            client.recv_until_type("update_subagent_state").await;
        }
        responses.push(json!([
            request_id,
            response["success"],
            response["created"],
            response["error"],
            response["runtime"]["conversation_id"]
        ]));
    }
    let other_agent = {
        client.send(wire::create_runtime("other")).await;
        let frames = client.recv_until_type("update_subagent_state").await;
        frames[0]["runtime"]["agent_id"].as_str().unwrap().to_owned()
    };
    client.send(json!({"type": "runtime_start", "request_id": "wrong", "agent_id": other_agent, "conversation_id": runtime["conversation_id"]})).await;
    let wrong = client
        .recv_until(|f| f["type"] == "runtime_start_response")
        .await
        .pop()
        .unwrap();
    assert_eq!(
        wrong["error"],
        format!(
            "Conversation {} belongs to {agent_id}, not {other_agent}",
            runtime["conversation_id"].as_str().unwrap()
        )
    );
    assert_eq!(responses[0][4], runtime["conversation_id"]);
    assert_eq!(
        responses[2][2],
        json!({"agent": false, "conversation": true}),
        "no conversation_id creates a new one"
    );
    let redacted: Vec<_> = responses.iter().map(|r| json!([r[0], r[1], r[2], r[3]])).collect();
    insta::assert_json_snapshot!("runtime_start_outcomes", wire::normalize(&redacted));
}

#[tokio::test]
async fn inputs_queued_while_busy_coalesce_into_one_turn() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let runtime = start_runtime(&mut client).await;
    client
        .send(user_input(
            "in-e1",
            &runtime,
            "SLOW first [[delay: 40]] [[chunks: 5]]",
            "cm-e1",
        ))
        .await;
    client.recv_until(|f| f["type"] == "stream_delta").await;
    client
        .send(user_input("in-e2", &runtime, "second message", "cm-e2"))
        .await;
    client.send(json!({"type": "input", "request_id": "in-e3", "runtime": runtime, "payload": {"kind": "create_message",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "third message"}], "client_message_id": "cm-e3"}]}})).await;
    client.send(json!({"type": "input", "request_id": "in-e3-again", "runtime": runtime, "payload": {"kind": "create_message",
        "messages": [{"role": "user", "content": "third message", "client_message_id": "cm-e3"}]}})).await;
    let mut frames = client.recv_until_type("turn_finished").await;
    frames.extend(client.recv_until_type("turn_finished").await);
    frames.extend(client.recv_until(|f| f["type"] == "update_loop_status").await);
    let lines: Vec<String> = summary(&frames)
        .into_iter()
        .filter(|l| !l.starts_with("delta assistant") && !l.starts_with("delta usage"))
        .collect();
    insta::assert_snapshot!("e_queue", lines.join("\n"));
    let echo = frames
        .iter()
        .find(|f| f["delta"]["message_type"] == "user_message")
        .unwrap();
    assert_eq!(
        echo["delta"]["content"],
        json!([{"type": "text", "text": "second message"}, {"type": "text", "text": "\n"}, {"type": "text", "text": "third message"}])
    );
    assert_eq!(echo["delta"]["otid"], "cm-e2");
    let finished: Vec<_> = frames.iter().filter(|f| f["type"] == "turn_finished").collect();
    // Every turn has an id of its own, as on Letta 0.34.12 (0.32.18 numbered queued ones).
    assert!(finished[1]["turn_id"].as_str().unwrap().starts_with("turn-"));
    assert_ne!(finished[0]["turn_id"], finished[1]["turn_id"]);
}

#[tokio::test]
async fn abort_mid_stream_cancels_the_turn_and_abort_when_idle_reports_nothing() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let runtime = start_runtime(&mut client).await;
    client
        .send(json!({"type": "abort_message", "request_id": "ab-0", "runtime": runtime}))
        .await;
    let idle = client.recv().await;
    assert_eq!((&idle["aborted"], &idle["success"]), (&json!(false), &json!(true)));

    client
        .send(user_input(
            "in-f",
            &runtime,
            "tick [[deltas: 50]] [[delay: 20]]",
            "cm-f",
        ))
        .await;
    client
        .recv_until(|f| f["delta"]["message_type"] == "assistant_message")
        .await;
    client
        .send(json!({"type": "abort_message", "request_id": "ab-1", "runtime": runtime}))
        .await;
    let frames = client
        .recv_until(|f| f["type"] == "update_device_status" && f["device_status"]["is_processing"] == false)
        .await;
    let mut after = client.recv_until_type("turn_finished").await;
    after.push(client.recv().await);
    let tail: Vec<String> = summary(&[frames[frames.len() - 2..].to_vec(), after].concat())
        .into_iter()
        .filter(|l| !l.starts_with("delta assistant"))
        .collect();
    insta::assert_snapshot!("f_abort", tail.join("\n"));
    client.expect_silence(std::time::Duration::from_millis(150)).await;

    client
        .send(user_input("in-f2", &runtime, "hello after abort", "cm-f2"))
        .await;
    let next = client.recv_until_type("turn_finished").await;
    assert_eq!(next.last().unwrap()["stop_reason"], "end_turn");
}

#[tokio::test]
async fn a_failed_model_request_ends_the_turn_with_an_error_and_the_runtime_stays_usable() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let runtime = start_runtime(&mut client).await;
    client
        .send(user_input(
            "in-x1",
            &runtime,
            "FAIL400 [[fail: 400 mock bad request]]",
            "cm-x1",
        ))
        .await;
    let mut frames = client.recv_until_type("turn_finished").await;
    frames.push(client.recv().await);
    insta::assert_snapshot!("i_error_turn", summary(&frames).join("\n"));
    let finished = frames.iter().find(|f| f["type"] == "turn_finished").unwrap();
    assert_eq!(
        (&finished["stop_reason"], &finished["error"]),
        (&json!("error"), &json!("400: mock bad request"))
    );
    assert_eq!(frames.last().unwrap()["delta"]["is_terminal"], true);

    client
        .send(user_input("in-x2", &runtime, "still there?", "cm-x2"))
        .await;
    assert_eq!(
        client.recv_until_type("turn_finished").await.last().unwrap()["stop_reason"],
        "end_turn"
    );
}

#[tokio::test]
async fn sync_replays_state_and_omits_an_unchanged_device_status() {
    let server = TestServer::start().await;
    let mut first = server.client().await;
    let runtime = start_runtime(&mut first).await;
    // The only watcher drops mid-turn: the turn is cancelled.
    first
        .send(user_input(
            "in-g",
            &runtime,
            "slow [[deltas: 100]] [[delay: 20]]",
            "cm-g",
        ))
        .await;
    first
        .recv_until(|f| f["delta"]["message_type"] == "assistant_message")
        .await;
    first.drop_connection();
    // Let the cancelled turn unwind before the next socket subscribes, so that its last frames
    // (turn_finished, device) do not interleave with the replays checked below.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    let mut second = server.client().await;
    second
        .send(json!({"type": "sync", "request_id": "sync-1", "runtime": runtime}))
        .await;
    let replay = second.recv_until_type("sync_response").await;
    assert_eq!(
        summary(&replay),
        [
            "device processing=false",
            "loop WAITING_ON_INPUT",
            "queue [] removed []",
            "update_subagent_state",
            "sync_response success=true"
        ]
    );
    second
        .send(json!({"type": "sync", "runtime": runtime, "recover_approvals": false}))
        .await;
    let again = second.recv_until_type("update_subagent_state").await;
    assert_eq!(
        summary(&again),
        ["loop WAITING_ON_INPUT", "queue [] removed []", "update_subagent_state"]
    );
    second
        .send(json!({"type": "sync", "runtime": runtime, "force_device_status": true}))
        .await;
    assert_eq!(second.recv_until_type("update_subagent_state").await.len(), 4);
}

#[tokio::test]
async fn a_second_client_joins_and_keeps_the_turn_alive_when_the_first_leaves() {
    let server = TestServer::start().await;
    let mut a = server.client().await;
    let runtime = start_runtime(&mut a).await;
    let mut b = server.client().await;
    b.send(json!({"type": "runtime_start", "request_id": "rs-1", "agent_id": runtime["agent_id"], "conversation_id": runtime["conversation_id"]})).await;
    let joined = b.recv_until_type("update_subagent_state").await;
    assert_eq!(joined[0]["created"], json!({"agent": false, "conversation": false}));

    a.send(user_input(
        "in-h",
        &runtime,
        "SLOW multi [[deltas: 30]] [[delay: 10]]",
        "cm-h",
    ))
    .await;
    a.recv_until(|f| f["delta"]["message_type"] == "assistant_message")
        .await;
    a.close().await;
    let seen_by_b = b.recv_until_type("turn_finished").await;
    assert_eq!(seen_by_b.last().unwrap()["stop_reason"], "end_turn");
    assert!(
        !seen_by_b.iter().any(|f| f["type"] == "input_accepted"),
        "responses go only to the sender"
    );
    let deltas = seen_by_b
        .iter()
        .filter(|f| f["delta"]["message_type"] == "assistant_message")
        .count();
    assert_eq!(deltas, 30, "B sees every delta of the turn A started");
}

#[tokio::test]
async fn change_device_state_and_remove_queue_item() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let runtime = start_runtime(&mut client).await;
    let dir = server.data.path().join("work dir");
    std::fs::create_dir_all(&dir).unwrap();
    for payload in [
        json!({"mode": "acceptEdits"}),
        json!({"cwd": dir}),
        json!({"cwd": "/does/not/exist"}),
        json!({"mode": "bogusMode"}),
        // Arrays are not payloads: an error, no change (serde alone would read a mode from it).
        json!(["strict"]),
        json!([]),
        json!({}),
    ] {
        client
            .send(json!({"type": "change_device_state", "runtime": runtime, "payload": payload}))
            .await;
    }
    let frames = client
        .recv_until(|f| f["type"] == "update_device_status" && f["device_status"]["cwd_revision"] == 2)
        .await;
    let mut frames = frames;
    frames.extend(
        client
            .recv_until(|f| f["type"] == "update_loop_status" && f["loop_status"]["status"] == "WAITING_ON_INPUT")
            .await,
    );
    frames.extend(client.recv_until(|f| f["delta"]["message_type"] == "loop_error").await);
    frames.extend(
        client
            .recv_until(|f| f["type"] == "update_loop_status" && f["loop_status"]["status"] == "WAITING_ON_INPUT")
            .await,
    );
    insta::assert_snapshot!("change_device_state", summary(&frames).join("\n"));
    let last_device = frames
        .iter()
        .rev()
        .find(|f| f["type"] == "update_device_status")
        .unwrap();
    assert_eq!(last_device["device_status"]["current_permission_mode"], "acceptEdits");
    assert_eq!(
        last_device["device_status"]["current_working_directory"],
        dir.canonicalize().unwrap().display().to_string()
    );

    client
        .send(user_input("in-q1", &runtime, "busy [[delay: 30]]", "cm-q1"))
        .await;
    client.send(user_input("in-q2", &runtime, "waiting", "cm-q2")).await;
    let queued = client
        .recv_until(|f| f["type"] == "update_queue" && !f["queue"].as_array().unwrap().is_empty())
        .await;
    let item_id = queued.last().unwrap()["queue"][0]["id"].as_str().unwrap().to_owned();
    client
        .send(json!({"type": "remove_queue_item", "request_id": "rq-1", "runtime": runtime, "item_id": item_id}))
        .await;
    client
        .send(json!({"type": "remove_queue_item", "request_id": "rq-2", "runtime": runtime, "item_id": "nope"}))
        .await;
    let removal = client
        .recv_until(|f| f["type"] == "remove_queue_item_response" && f["request_id"] == "rq-2")
        .await;
    let removal: Vec<_> = removal.into_iter().filter(|f| f["type"] != "stream_delta").collect();
    let lines = summary(&removal);
    let tail = &lines[lines
        .iter()
        .position(|l| l.starts_with("remove_queue_item_response"))
        .unwrap()..];
    assert_eq!(tail[0], "remove_queue_item_response success=true");
    assert!(
        tail.contains(&"queue [] removed [\"cm-q2:cancelled\"]".to_owned()),
        "{tail:?}"
    );
    assert_eq!(tail.last().unwrap(), "remove_queue_item_response success=false");
}

#[tokio::test]
async fn loop_status_lists_the_client_ids_of_the_last_32_runs_oldest_first() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let runtime = start_runtime(&mut client).await;
    let mut run_ids = Vec::new();
    let mut last_status = json!(null);
    for turn in 1..=33 {
        client
            .send(user_input(&format!("in-{turn}"), &runtime, "hi", &format!("cm-{turn}")))
            .await;
        for frame in client.recv_until_type("turn_finished").await {
            match frame["type"].as_str() {
                Some("update_loop_status") => last_status = frame["loop_status"].clone(),
                Some("turn_finished") => run_ids.push(frame["run_id"].as_str().unwrap().to_owned()),
                _ => {}
            }
        }
    }
    let expected: serde_json::Map<String, serde_json::Value> = run_ids[1..]
        .iter()
        .zip(2..)
        .map(|(run_id, turn)| (run_id.clone(), json!([format!("cm-{turn}")])))
        .collect();
    let listed = last_status["client_message_ids_by_run_id"].as_object().unwrap();
    // The order matters: the oldest remembered run first, as real Letta's object keeps it.
    assert_eq!(listed.iter().collect::<Vec<_>>(), expected.iter().collect::<Vec<_>>());
}
