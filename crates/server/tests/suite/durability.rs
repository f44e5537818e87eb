//! The store survives `kill -9`: agents, conversations, history and accepted inputs.

use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::support::TestServer;
use crate::support::binary::spawn_server;
use crate::support::drive::prompt_tokens;
use crate::support::wire::{Client, start_runtime, user_input};

#[tokio::test]
async fn agents_conversations_and_history_survive_kill_9() {
    let data = tempfile::tempdir().unwrap();
    let (mut server, url) = spawn_server(data.path(), &[]);
    let mut client = Client::connect(&url).await;
    let runtime = start_runtime(&mut client).await;
    client
        .send(user_input("in-1", &runtime, "alpha beta gamma delta epsilon", "cm-1"))
        .await;
    let first = client.recv_until_type("turn_finished").await;
    assert_eq!(prompt_tokens(&first), 5);
    client
        .send(json!({"type": "change_device_state", "runtime": runtime, "payload": {"mode": "strict"}}))
        .await;
    client.recv_until(|f| f["type"] == "update_device_status").await;
    server.kill().expect("kill -9");
    server.wait().expect("reaped");

    // Restarted with a multi-threaded runtime: the store does not depend on how it is run.
    let (mut server, url) = spawn_server(data.path(), &["--threads", "2"]);
    let mut client = Client::connect(&url).await;
    client.send(json!({"type": "runtime_start", "request_id": "rs-2", "agent_id": runtime["agent_id"], "conversation_id": runtime["conversation_id"]})).await;
    let resumed = client.recv_until_type("update_subagent_state").await;
    assert_eq!(
        (&resumed[0]["success"], &resumed[0]["created"]),
        (&json!(true), &json!({"agent": false, "conversation": false}))
    );
    assert_eq!(
        resumed[1]["device_status"]["current_permission_mode"], "strict",
        "the mode was persisted"
    );

    // A retried input is recognised after the restart and not run again.
    client
        .send(user_input(
            "in-1-retry",
            &runtime,
            "alpha beta gamma delta epsilon",
            "cm-1",
        ))
        .await;
    let ack = client.recv().await;
    assert_eq!(
        (&ack["accepted"], &ack["disposition"]),
        (&json!(true), &json!("started"))
    );
    client.expect_silence(Duration::from_millis(200)).await;

    // The model sees the history from before the kill.
    client.send(user_input("in-2", &runtime, "one", "cm-2")).await;
    let second = client.recv_until_type("turn_finished").await;
    assert!(
        prompt_tokens(&second) > 5 + 1,
        "history was reloaded: {}",
        prompt_tokens(&second)
    );
    server.kill().expect("kill");
    server.wait().expect("reaped");
}

#[tokio::test]
async fn sigterm_stops_the_server_cleanly() {
    let data = tempfile::tempdir().unwrap();
    let (mut server, url) = spawn_server(data.path(), &[]);
    let mut client = Client::connect(&url).await;
    start_runtime(&mut client).await;
    let status = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let exit = server.wait().expect("exits");
    assert!(exit.success(), "{exit:?}");
}

/// Approvals pending at a crash: interactive questions are asked again; other calls are never
/// re-run, the model gets a stale result (docs/protocol.md §3.10).
#[tokio::test]
async fn pending_approvals_survive_kill_9_as_recover_approvals_describes() {
    let data = tempfile::tempdir().unwrap();
    let work = data.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let (mut server, url) = spawn_server(data.path(), &[]);
    let mut client = Client::connect(&url).await;
    client
        .send(
            json!({"type": "runtime_start", "request_id": "rs", "mode": "standard", "cwd": work,
            "create_agent": {"body": {"name": "Recover"}}}),
        )
        .await;
    let runtime = client.recv_until_type("update_subagent_state").await[0]["runtime"].clone();
    let bash = r#"[[tool: Bash {"command":"echo ran >> runs.txt","description":"append"}]]"#;
    client.send(user_input("in-1", &runtime, bash, "cm-1")).await;
    client.recv_until_type("control_request").await;
    server.kill().expect("kill -9");
    server.wait().expect("reaped");

    let (mut server, url) = spawn_server(data.path(), &[]);
    let mut client = Client::connect(&url).await;
    client
        .send(json!({"type": "sync", "request_id": "s-1", "runtime": runtime}))
        .await;
    let replay = client.recv_until_type("sync_response").await;
    assert!(
        !replay.iter().any(|f| f["type"] == "control_request"),
        "a shell command is not asked again"
    );
    assert!(!work.join("runs.txt").exists(), "nor run");
    let question = r#"[[tool: AskUserQuestion {"questions":[{"question":"Proceed?"}]}]]"#;
    client.send(user_input("in-2", &runtime, question, "cm-2")).await;
    client.recv_until_type("control_request").await;
    server.kill().expect("kill -9");
    server.wait().expect("reaped");

    let (mut server, url) = spawn_server(data.path(), &[]);
    let mut client = Client::connect(&url).await;
    client
        .send(json!({"type": "sync", "request_id": "s-2", "runtime": runtime}))
        .await;
    let asked = client.recv_until_type("control_request").await.pop().unwrap();
    assert_eq!(
        asked["request"]["tool_name"], "AskUserQuestion",
        "an interactive question is asked again"
    );
    let answer = json!({"questions": [{"question": "Proceed?"}], "answers": {"Proceed?": "yes"}});
    client
        .send(
            json!({"type": "input", "request_id": "ans", "runtime": runtime, "payload": {"kind": "approval_response",
        "request_id": asked["request_id"], "decision": {"behavior": "allow", "updated_input": answer}}}),
        )
        .await;
    let frames = client.recv_until_type("turn_finished").await;
    let finished = frames.last().unwrap();
    assert_eq!(finished["stop_reason"], "end_turn", "the recovery turn: {finished}");
    let result = frames
        .iter()
        .rev()
        .find(|f| f["delta"]["message_type"] == "tool_return_message")
        .unwrap();
    assert!(
        result["delta"]["tool_return"].as_str().unwrap().contains("yes"),
        "{result}"
    );
    server.kill().expect("kill");
    server.wait().expect("reaped");
}

#[tokio::test]
async fn idle_unwatched_conversations_leave_memory_and_come_back_from_the_store() {
    let server = TestServer::start_with(|config| config.idle_eviction = Duration::from_millis(100)).await;
    let running = || server.server.as_ref().expect("running");
    let mut client = server.client().await;
    let runtime = start_runtime(&mut client).await;
    client.send(user_input("in-1", &runtime, "one two three", "cm-1")).await;
    let first = prompt_tokens(&client.recv_until_type("turn_finished").await);

    // Watched: kept, however long it is idle.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(running().loaded_conversations(), 1);

    drop(client);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while running().loaded_conversations() > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the conversation was not evicted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let mut client = server.client().await;
    client
        .send(json!({"type": "runtime_start", "request_id": "rs-2",
            "agent_id": runtime["agent_id"], "conversation_id": runtime["conversation_id"]}))
        .await;
    let replay = client.recv_until_type("update_subagent_state").await;
    assert_eq!(replay[0]["created"], json!({"agent": false, "conversation": false}));
    assert_eq!(running().loaded_conversations(), 1);
    client.send(user_input("in-2", &runtime, "four", "cm-2")).await;
    let second = prompt_tokens(&client.recv_until_type("turn_finished").await);
    // Without the first turn's messages the prompt would be smaller than the first one plus "four".
    assert!(second > first + 1, "history reloaded: {first} then {second}");
}

/// The bodies of a conversation's stored messages, oldest first, read from the SQLite file.
fn stored_messages(data: &std::path::Path, runtime: &serde_json::Value) -> Vec<serde_json::Value> {
    let db = rusqlite::Connection::open(data.join("letta-app-server.sqlite3")).expect("open the store");
    let mut query = db
        .prepare("SELECT body FROM messages WHERE agent_id = ?1 AND conversation_id = ?2 ORDER BY seq")
        .expect("query");
    let agent = runtime["agent_id"].as_str().expect("agent id");
    let conversation = runtime["conversation_id"].as_str().expect("conversation id");
    query
        .query_map([agent, conversation], |row| row.get::<_, String>(0))
        .expect("rows")
        .map(|body| serde_json::from_str(&body.expect("row")).expect("JSON"))
        .collect()
}

/// Joins the runtime of a previous process: `runtime_start` with its ids; returns the frames up
/// to the replay's `update_subagent_state`.
async fn rejoin(client: &mut Client, runtime: &serde_json::Value) -> Vec<serde_json::Value> {
    client
        .send(
            json!({"type": "runtime_start", "request_id": "rejoin", "agent_id": runtime["agent_id"],
            "conversation_id": runtime["conversation_id"]}),
        )
        .await;
    client.recv_until_type("update_subagent_state").await
}

fn queued_ids(frame: &serde_json::Value) -> Vec<&str> {
    frame["queue"]
        .as_array()
        .expect("queue")
        .iter()
        .map(|item| item["client_message_id"].as_str().expect("id"))
        .collect()
}

/// Reads until `n` reply chunks arrived.
async fn recv_replies(client: &mut Client, n: usize) {
    for _ in 0..n {
        client
            .recv_until(|f| f["delta"]["message_type"] == "assistant_message")
            .await;
    }
}

/// A slow reply: `n` chunks, 20 ms apart.
fn slow(text: &str, n: usize) -> String {
    format!("{text} [[deltas: {n}]] [[delay: 20]]")
}

/// Queued inputs are durable work to do: killed mid-turn with two inputs waiting, the server
/// comes back with the cut turn ended in an error (its partial reply kept), the queue restored and
/// shown on `runtime_start`, and then runs it; killed again in the middle of that batch, it ends
/// that one the same way. Retried ids get their inputs' real states and never run twice.
#[tokio::test]
async fn acknowledged_queued_inputs_survive_kill_9_at_any_point_of_a_turn() {
    let data = tempfile::tempdir().unwrap();
    let (mut server, url) = spawn_server(data.path(), &[]);
    let mut client = Client::connect(&url).await;
    let runtime = start_runtime(&mut client).await;
    client
        .send(user_input("in-1", &runtime, &slow("first", 200), "cm-1"))
        .await;
    client.recv_until(|f| f["type"] == "input_accepted").await;
    client
        .send(user_input("in-2", &runtime, &slow("second", 200), "cm-2"))
        .await;
    client.send(user_input("in-3", &runtime, "third", "cm-3")).await;
    for request in ["in-2", "in-3"] {
        let ack = client.recv_until(|f| f["request_id"] == request).await.pop().unwrap();
        assert_eq!(
            (&ack["accepted"], &ack["disposition"]),
            (&json!(true), &json!("queued"))
        );
    }
    // Half a second of reply (and at least one checkpoint) before the kill.
    recv_replies(&mut client, 25).await;
    server.kill_9().expect("kill -9");

    let (mut server, url) = spawn_server(data.path(), &[]);
    let mut client = Client::connect(&url).await;
    let replay = rejoin(&mut client, &runtime).await;
    let queue = replay
        .iter()
        .find(|f| f["type"] == "update_queue")
        .expect("queue snapshot");
    assert_eq!(queued_ids(queue), ["cm-2", "cm-3"], "the queue is restored");
    // The cut turn's end comes first, before the answer and the replay.
    let [notice, terminal, answer] = &replay[..3] else {
        panic!("{replay:?}")
    };
    assert_eq!(answer["type"], "runtime_start_response");
    assert_eq!(notice["stop_reason"], "error");
    let cut = notice["turn_id"].clone();
    assert!(cut.as_str().unwrap().starts_with("turn-"), "{notice}");
    assert_eq!(
        notice["error"],
        "The server stopped while this turn was running; its output so far was kept"
    );
    assert_eq!(
        (&terminal["delta"]["message_type"], &terminal["delta"]["is_terminal"]),
        (&json!("loop_error"), &json!(true))
    );
    // The restored items run as one batch, echoed as the user message.
    let echo = client
        .recv_until(|f| f["delta"]["message_type"] == "user_message")
        .await
        .pop()
        .unwrap();
    assert_eq!(echo["delta"]["otid"], "cm-2");
    client
        .recv_until(|f| f["type"] == "update_queue" && f["removed"].as_array().is_some_and(|r| r.len() == 2))
        .await;
    recv_replies(&mut client, 25).await;
    server.kill_9().expect("kill -9");

    let history = stored_messages(data.path(), &runtime);
    let partial = |prefix: &str| {
        history.iter().any(|m| {
            m["role"] == "assistant"
                && m["text"]
                    .as_str()
                    .is_some_and(|t| t.starts_with(prefix) && !t.contains("t199"))
        })
    };
    assert!(
        partial("t0 t1 t2"),
        "the cut reply's text so far is in the history: {history:?}"
    );

    let (mut server, url) = spawn_server(data.path(), &[]);
    let mut client = Client::connect(&url).await;
    let replay = rejoin(&mut client, &runtime).await;
    let queue = replay
        .iter()
        .find(|f| f["type"] == "update_queue")
        .expect("queue snapshot");
    assert!(queued_ids(queue).is_empty(), "the batch left the queue when it started");
    let notice = &replay[0];
    assert_eq!(
        (&notice["type"], &notice["stop_reason"]),
        (&json!("turn_finished"), &json!("error"))
    );
    assert_ne!(notice["turn_id"], cut, "the batch's turn, not the first one again");

    // Every id answers with its input's real state, and nothing runs again.
    for (request, id) in [("re-1", "cm-1"), ("re-2", "cm-2"), ("re-3", "cm-3")] {
        client.send(user_input(request, &runtime, "again", id)).await;
        let ack = client.recv().await;
        assert_eq!(
            (&ack["request_id"], &ack["accepted"], &ack["disposition"]),
            (&json!(request), &json!(true), &json!("started")),
            "{ack}"
        );
    }
    client.expect_silence(Duration::from_millis(300)).await;
    let users = stored_messages(data.path(), &runtime)
        .into_iter()
        .filter(|m| m["role"] == "user")
        .count();
    assert_eq!(
        users, 2,
        "one user message per turn: the first input, then the batch of two"
    );
    server.kill_9().expect("kill -9");
}

/// As on Letta 0.34.12: the inputs a client queued stay queued when it disconnects (its running
/// turn is cancelled, nobody watching it), and run once another client joins the runtime.
#[tokio::test]
async fn queued_inputs_survive_the_disconnect_of_the_client_that_sent_them() {
    let server = TestServer::start().await;
    let mut first = server.client().await;
    let runtime = start_runtime(&mut first).await;
    first
        .send(user_input("in-1", &runtime, &slow("first", 100), "cm-1"))
        .await;
    first
        .send(user_input("in-2", &runtime, "second [[reply: done]]", "cm-2"))
        .await;
    first.recv_until(|f| f["request_id"] == "in-2").await;
    first
        .recv_until(|f| f["delta"]["message_type"] == "assistant_message")
        .await;
    first.drop_connection();
    // Its turn is cancelled once the server has seen it go (recorded in the store).
    let db = server.data.path().join("store/letta-app-server.sqlite3");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !rusqlite::Connection::open(&db)
        .and_then(|db| {
            db.query_row("SELECT count(*) FROM turns WHERE state = 'cancelled'", [], |row| {
                row.get::<_, i64>(0)
            })
        })
        .is_ok_and(|cancelled| cancelled == 1)
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the first turn was not cancelled"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let mut second = server.client().await;
    let replay = rejoin(&mut second, &runtime).await;
    let queue = replay
        .iter()
        .find(|f| f["type"] == "update_queue")
        .expect("queue snapshot");
    assert_eq!(queued_ids(queue), ["cm-2"], "still queued after its sender left");
    let frames = second.recv_until_type("turn_finished").await;
    let finished = frames.last().unwrap();
    assert_eq!(finished["stop_reason"], "end_turn");
    let reply: String = frames
        .iter()
        .filter(|f| f["delta"]["message_type"] == "assistant_message")
        .filter_map(|f| f["delta"]["content"][0]["text"].as_str())
        .collect();
    assert_eq!(reply, "done");
}

/// A retried id of an input removed from the queue is refused with what became of it.
#[tokio::test]
async fn a_retried_id_of_a_removed_input_is_refused() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let runtime = start_runtime(&mut client).await;
    client
        .send(user_input("in-1", &runtime, &slow("first", 50), "cm-1"))
        .await;
    client.send(user_input("in-2", &runtime, "second", "cm-2")).await;
    let queued = client
        .recv_until(|f| f["type"] == "update_queue" && !f["queue"].as_array().unwrap().is_empty())
        .await;
    let item = queued.last().unwrap()["queue"][0]["id"].clone();
    client
        .send(json!({"type": "remove_queue_item", "request_id": "rq", "runtime": runtime, "item_id": item}))
        .await;
    client.recv_until(|f| f["type"] == "remove_queue_item_response").await;
    client.send(user_input("in-2-retry", &runtime, "second", "cm-2")).await;
    let ack = client
        .recv_until(|f| f["request_id"] == "in-2-retry")
        .await
        .pop()
        .unwrap();
    assert_eq!(
        (&ack["accepted"], &ack["error"]),
        (&json!(false), &json!("Input was removed from the queue before it ran"))
    );
}

/// Every `update_queue` carries the content of every waiting input to every subscriber, so the
/// waiting content is bounded.
#[tokio::test]
async fn the_waiting_content_is_bounded() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let runtime = start_runtime(&mut client).await;
    client
        .send(user_input("in-0", &runtime, &slow("busy", 100), "cm-0"))
        .await;
    let big = "x".repeat(1024 * 1024);
    let mut answers = Vec::new();
    for n in 1..=5 {
        let request = format!("in-{n}");
        client
            .send(user_input(&request, &runtime, &big, &format!("cm-{n}")))
            .await;
        answers.push(
            client
                .recv_until(|f| f["request_id"] == request.as_str())
                .await
                .pop()
                .unwrap(),
        );
    }
    let accepted: Vec<bool> = answers.iter().map(|a| a["accepted"] == true).collect();
    assert_eq!(
        accepted,
        [true, true, true, false, false],
        "4 MiB of waiting content at most"
    );
    assert_eq!(
        answers[3]["error"],
        format!(
            "Input was rejected by the queue: the waiting inputs would hold {} bytes of content, over the limit of 4194304",
            4 * (big.len() + 2)
        )
    );
}

/// Killed while a tool runs: on the next `sync` the turn is reported ended with an error, and
/// the call, which may or may not have finished, gets a result saying so instead of running again.
#[tokio::test]
async fn a_turn_killed_during_a_tool_call_ends_with_an_error_and_the_call_is_not_rerun() {
    let data = tempfile::tempdir().unwrap();
    let work = data.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let (mut server, url) = spawn_server(data.path(), &[]);
    let mut client = Client::connect(&url).await;
    client
        .send(json!({"type": "runtime_start", "request_id": "rs", "cwd": work, "create_agent": {"body": {"name": "Tools"}}}))
        .await;
    let runtime = client.recv_until_type("update_subagent_state").await[0]["runtime"].clone();
    let bash = r#"[[tool: Bash {"command":"sleep 3; echo ran >> runs.txt","description":"slow"}]]"#;
    client.send(user_input("in-1", &runtime, bash, "cm-1")).await;
    client
        .recv_until(|f| f["delta"]["message_type"] == "client_tool_start")
        .await;
    server.kill_9().expect("kill -9");

    let (mut server, url) = spawn_server(data.path(), &[]);
    let mut client = Client::connect(&url).await;
    client
        .send(json!({"type": "sync", "request_id": "s-1", "runtime": runtime}))
        .await;
    let replay = client.recv_until_type("sync_response").await;
    let notice = replay
        .iter()
        .find(|f| f["type"] == "turn_finished")
        .expect("the cut turn's end");
    assert_eq!(notice["stop_reason"], "error");
    let stale = stored_messages(data.path(), &runtime)
        .into_iter()
        .find(|m| m["role"] == "tool_result")
        .expect("a result for the call");
    assert!(
        stale["content"]
            .as_str()
            .unwrap()
            .contains("still pending when the server stopped"),
        "{stale}"
    );
    // The next turn runs normally.
    client.send(user_input("in-2", &runtime, "next", "cm-2")).await;
    let finished = client.recv_until_type("turn_finished").await.pop().unwrap();
    assert_eq!(finished["stop_reason"], "end_turn");
    server.kill_9().expect("kill -9");
}

/// Every conversation's queued batches run (their turns once collided in the store when queued
/// turns were numbered per conversation).
#[tokio::test]
async fn the_queued_batches_of_every_conversation_run() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    for n in 0..3 {
        let runtime = start_runtime(&mut client).await;
        client
            .send(user_input(
                &format!("in-{n}"),
                &runtime,
                &slow("busy", 5),
                &format!("cm-{n}"),
            ))
            .await;
        let queued = format!("queued-{n}");
        client
            .send(user_input(&queued, &runtime, "next [[reply: ran]]", &queued))
            .await;
        let mut finished = 0;
        let mut frames = Vec::new();
        while finished < 2 {
            let frame = client.recv().await;
            finished += usize::from(frame["type"] == "turn_finished" && frame["runtime"] == runtime);
            frames.push(frame);
        }
        let ends: Vec<&serde_json::Value> = frames
            .iter()
            .filter(|f| f["type"] == "turn_finished")
            .map(|f| &f["stop_reason"])
            .collect();
        assert_eq!(ends, [&json!("end_turn"), &json!("end_turn")]);
        let errors: Vec<&serde_json::Value> = frames
            .iter()
            .filter(|f| f["delta"]["message_type"] == "loop_error")
            .collect();
        assert!(errors.is_empty(), "{errors:?}");
    }
}

/// A turn outlives the client that started it while another watches, and ends when the last
/// watcher leaves too (as a turn whose starter leaves alone does).
#[tokio::test]
async fn a_turn_ends_when_its_last_watcher_leaves() {
    let server = TestServer::start().await;
    let mut starter = server.client().await;
    let runtime = start_runtime(&mut starter).await;
    let mut watcher = server.client().await;
    rejoin(&mut watcher, &runtime).await;
    starter
        .send(user_input("in-1", &runtime, &slow("long", 500), "cm-1"))
        .await;
    watcher
        .recv_until(|f| f["delta"]["message_type"] == "assistant_message")
        .await;
    starter.drop_connection();
    tokio::time::sleep(Duration::from_millis(200)).await;
    watcher
        .recv_until(|f| f["delta"]["message_type"] == "assistant_message")
        .await;
    watcher.drop_connection();

    let mut late = server.client().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let replay = rejoin(&mut late, &runtime).await;
        let status = replay.iter().rev().find(|f| f["type"] == "update_loop_status").unwrap();
        if status["loop_status"]["status"] == "WAITING_ON_INPUT" {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the turn still runs: {status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every `client_message_id` of an input is in the ledger: retrying one message of a
/// multi-message input on its own runs nothing.
#[tokio::test]
async fn every_id_of_an_input_is_recognised_on_a_retry() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let runtime = start_runtime(&mut client).await;
    client
        .send(
            json!({"type": "input", "request_id": "in-1", "runtime": runtime, "payload": {"kind": "create_message",
            "messages": [{"role": "user", "content": "a", "client_message_id": "cm-a"},
                         {"role": "user", "content": "b", "client_message_id": "cm-b"}]}}),
        )
        .await;
    client.recv_until_type("turn_finished").await;
    client.send(user_input("in-2", &runtime, "b", "cm-b")).await;
    let ack = client.recv().await;
    assert_eq!(
        (&ack["accepted"], &ack["disposition"]),
        (&json!(true), &json!("started"))
    );
    client.expect_silence(Duration::from_millis(300)).await;
}

/// A client that sends `runtime_start` and is gone before it is handled leaves no subscription
/// behind: the conversation, unwatched, still leaves memory.
#[tokio::test]
async fn a_client_gone_before_its_runtime_start_is_handled_watches_nothing() {
    let server = TestServer::start_with(|config| config.idle_eviction = Duration::from_millis(100)).await;
    let mut client = server.client().await;
    let runtime = start_runtime(&mut client).await;
    drop(client);
    for n in 0..20 {
        let mut ghost = server.client().await;
        ghost
            .send(json!({"type": "runtime_start", "request_id": format!("rs-{n}"),
                "agent_id": runtime["agent_id"], "conversation_id": runtime["conversation_id"]}))
            .await;
        ghost.drop_connection();
    }
    let running = server.server.as_ref().expect("running");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while running.loaded_conversations() > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "a closed connection still watches the conversation"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The `terminal_consumer_id`s of queued inputs are stored with them: after `kill -9`, the
/// restored batch's `turn_finished` still names them (Letta 0.34.12, docs/protocol.md §8.2).
#[tokio::test]
async fn the_terminal_consumers_of_queued_inputs_survive_kill_9() {
    let data = tempfile::tempdir().unwrap();
    let (mut server, url) = spawn_server(data.path(), &[]);
    let mut client = Client::connect(&url).await;
    let runtime = start_runtime(&mut client).await;
    client
        .send(user_input("in-1", &runtime, &slow("first", 200), "cm-1"))
        .await;
    client.recv_until(|f| f["type"] == "input_accepted").await;
    for (n, consumer) in [(2, "consumer-b"), (3, "consumer-c")] {
        let mut input = user_input(&format!("in-{n}"), &runtime, "queued", &format!("cm-{n}"));
        input["terminal_consumer_id"] = json!(consumer);
        client.send(input).await;
        let request = format!("in-{n}");
        let ack = client.recv_until(|f| f["request_id"] == request).await.pop().unwrap();
        assert_eq!(ack["disposition"], "queued", "{ack}");
    }
    server.kill_9().expect("kill -9");

    let (_server, url) = spawn_server(data.path(), &[]);
    let mut client = Client::connect(&url).await;
    rejoin(&mut client, &runtime).await;
    let finished = client.recv_until_type("turn_finished").await.pop().unwrap();
    assert_eq!(
        finished["terminal_consumer_ids"],
        json!(["consumer-b", "consumer-c"]),
        "{finished}"
    );
}
