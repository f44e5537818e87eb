//! `resume_queue` (Letta 0.34, docs/protocol.md §4.3): an `abort_message` parks the waiting user
//! messages (`paused: true`); `resume_queue` or the next `input` releases them.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::TestServer;
use crate::support::wire::{Client, start_runtime, user_input};

/// Starts a slow turn, queues `waiting` behind it, and aborts the turn; returns the frames up to
/// the `turn_finished` of the aborted turn.
async fn park(client: &mut Client, runtime: &Value, waiting: &[&str]) -> Vec<Value> {
    client
        .send(user_input(
            "in-busy",
            runtime,
            "busy [[deltas: 50]] [[delay: 20]]",
            "cm-busy",
        ))
        .await;
    client
        .recv_until(|f| f["delta"]["message_type"] == "assistant_message")
        .await;
    for id in waiting {
        client.send(user_input(&format!("in-{id}"), runtime, id, id)).await;
        client.recv_until_type("update_queue").await;
    }
    client
        .send(json!({"type": "abort_message", "request_id": "ab", "runtime": runtime}))
        .await;
    client.recv_until_type("turn_finished").await
}

/// Each waiting item's `client_message_id`, and whether it is parked.
fn queue_ids(update: &Value) -> Vec<(Value, bool)> {
    update["queue"]
        .as_array()
        .expect("a queue")
        .iter()
        .map(|item| (item["client_message_id"].clone(), item["paused"] == true))
        .collect()
}

#[tokio::test]
async fn an_abort_parks_waiting_messages_until_resume_queue() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let runtime = start_runtime(&mut client).await;
    let frames = park(&mut client, &runtime, &["cm-w1", "cm-w2"]).await;
    let kinds: Vec<&str> = frames
        .iter()
        .skip_while(|f| f["type"] != "stream_delta" || f["delta"]["message_type"] != "status")
        .map(|f| f["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "stream_delta",
            "update_queue",
            "abort_message_response",
            "turn_finished"
        ],
        "the parked queue is shown before the answer"
    );
    let parked = frames.iter().find(|f| f["type"] == "update_queue").unwrap();
    assert_eq!(queue_ids(parked), [(json!("cm-w1"), true), (json!("cm-w2"), true)]);
    client.recv_until_type("update_device_status").await;
    client.expect_silence(Duration::from_millis(300)).await;

    client
        .send(json!({"type": "resume_queue", "request_id": "rq-1", "runtime": runtime}))
        .await;
    let answer = client.recv().await;
    assert_eq!(
        answer,
        json!({"type": "resume_queue_response", "request_id": "rq-1", "runtime": runtime, "resumed": 2,
            "success": true})
    );
    let released = client.recv().await;
    assert_eq!(queue_ids(&released), [(json!("cm-w1"), false), (json!("cm-w2"), false)]);
    let turn = client.recv_until_type("turn_finished").await;
    let echo = turn
        .iter()
        .find(|f| f["delta"]["message_type"] == "user_message")
        .unwrap();
    assert_eq!(echo["delta"]["otid"], "cm-w1", "both run as one turn");
    assert_eq!(turn.last().unwrap()["stop_reason"], "end_turn");
    client
        .recv_until(|f| f["loop_status"]["status"] == "WAITING_ON_INPUT")
        .await;

    // Nothing parked: nothing released, and no queue snapshot.
    client
        .send(json!({"type": "resume_queue", "request_id": "rq-2", "runtime": runtime}))
        .await;
    assert_eq!(client.recv().await["resumed"], 0);
    client.expect_silence(Duration::from_millis(150)).await;
}

#[tokio::test]
async fn the_next_input_releases_parked_messages() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let runtime = start_runtime(&mut client).await;
    park(&mut client, &runtime, &["cm-w1"]).await;
    client.recv_until_type("update_device_status").await;

    client.send(user_input("in-next", &runtime, "next", "cm-next")).await;
    let frames = client.recv_until_type("turn_finished").await;
    let ack = frames.iter().find(|f| f["type"] == "input_accepted").unwrap();
    assert_eq!(ack["disposition"], "queued");
    let queue = frames.iter().find(|f| f["type"] == "update_queue").unwrap();
    assert_eq!(queue_ids(queue), [(json!("cm-w1"), false), (json!("cm-next"), false)]);
    let removed = frames
        .iter()
        .find(|f| f["type"] == "update_queue" && !f["removed"].as_array().unwrap().is_empty())
        .unwrap();
    assert_eq!(removed["removed"].as_array().unwrap().len(), 2, "one turn for both");
}

#[tokio::test]
async fn resume_queue_for_an_unknown_runtime_fails() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let nowhere = json!({"agent_id": "agent-nobody", "conversation_id": "default"});
    client
        .send(json!({"type": "resume_queue", "request_id": "rq", "runtime": nowhere}))
        .await;
    let answer = client.recv().await;
    assert_eq!(
        answer,
        json!({"type": "resume_queue_response", "request_id": "rq", "runtime": nowhere, "resumed": 0,
            "success": false, "error": "Unknown runtime agent-nobody/default"}),
        "the response alone, so that a client awaiting it gets it"
    );
    client.expect_silence(Duration::from_millis(100)).await;
    // Without a `request_id` there is no response: the `error` frame says it.
    client.send(json!({"type": "resume_queue", "runtime": nowhere})).await;
    let error = client.recv().await;
    assert_eq!(
        (&error["type"], &error["code"], &error["frame_type"]),
        (&json!("error"), &json!("unknown_runtime"), &json!("resume_queue"))
    );
    client.expect_silence(Duration::from_millis(100)).await;
}
