//! The store survives `kill -9`: agents, conversations, history and accepted inputs.

#[path = "support/binary.rs"]
mod binary;
#[path = "support/wire.rs"]
mod wire;

use std::process::Command;
use std::time::Duration;

use binary::spawn_server;

use serde_json::json;
use wire::{Client, TestServer, start_runtime, user_input};

fn prompt_tokens(frames: &[serde_json::Value]) -> u64 {
    frames
        .iter()
        .find(|f| f["delta"]["message_type"] == "usage_statistics")
        .expect("usage")["delta"]["prompt_tokens"]
        .as_u64()
        .expect("tokens")
}

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
/// re-run, the model gets a stale result (REFERENCE §3.10).
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
    assert!(
        finished["turn_id"].as_str().unwrap().starts_with("recovery-"),
        "{finished}"
    );
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
