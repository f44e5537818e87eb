//! `enable_memfs` (docs/protocol.md §4.2): the agent's memory repository, created once, shown in
//! the device status, across a restart.

use std::path::Path;

use serde_json::{Value, json};

use crate::support::TestServer;
use crate::support::wire::Client;

async fn enable(client: &mut Client, request_id: &str, agent_id: &Value) -> Value {
    client
        .send(json!({"type": "enable_memfs", "request_id": request_id, "agent_id": agent_id}))
        .await;
    client
        .recv_until_type("enable_memfs_response")
        .await
        .pop()
        .expect("the answer")
}

/// The subjects of the commits on `main`, newest first, and the first commit's author.
fn history(directory: &Path) -> (Vec<String>, String) {
    let repository = gix::open(directory).expect("a git repository");
    let head = repository.head_ref().expect("HEAD").expect("HEAD names a branch");
    assert_eq!(head.name().as_bstr(), "refs/heads/main");
    let mut subjects = Vec::new();
    let mut commit = repository.head_commit().expect("a first commit");
    loop {
        subjects.push(commit.message().expect("a message").summary().to_string());
        let Some(parent) = commit.parent_ids().next() else {
            let author = commit.author().expect("an author");
            return (subjects, format!("{} <{}>", author.name, author.email));
        };
        commit = parent.object().expect("the parent").into_commit();
    }
}

#[tokio::test]
async fn enable_memfs_creates_the_memory_repository_once() {
    let mut server = TestServer::start().await;
    let mut client = server.client().await;
    client
        .send(json!({"type": "runtime_start", "request_id": "rs", "create_agent": {"body": {}}}))
        .await;
    let started = client.recv_until_type("update_subagent_state").await;
    let runtime = started[0]["runtime"].clone();
    let device = started.iter().find(|f| f["type"] == "update_device_status").unwrap();
    assert_eq!(device["device_status"]["memory_directory"], json!(null), "none yet");
    let agent = runtime["agent_id"].clone();
    let directory = server
        .data
        .path()
        .join("store/memfs")
        .join(agent.as_str().unwrap())
        .join("memory");

    let answer = enable(&mut client, "em-1", &agent).await;
    assert_eq!(
        answer,
        json!({"type": "enable_memfs_response", "request_id": "em-1", "success": true,
            "memory_directory": directory.display().to_string()})
    );
    let updated = client.recv().await;
    assert_eq!(
        (&updated["type"], &updated["affected_paths"]),
        (&json!("memory_updated"), &json!(["*"]))
    );
    let status = client.recv().await;
    assert_eq!(
        status["device_status"]["memory_directory"],
        json!(directory.display().to_string())
    );
    let (subjects, author) = history(&directory);
    assert_eq!(subjects, ["chore: initialize empty local memory"]);
    assert_eq!(author, format!("Letta Agent <{}@letta.com>", agent.as_str().unwrap()));
    let config = std::fs::read_to_string(directory.join(".git/config")).unwrap();
    assert!(
        config.contains(&format!("agentId = {}", agent.as_str().unwrap())),
        "{config}"
    );

    // Enabled again: the same directory, the history kept.
    let again = enable(&mut client, "em-2", &agent).await;
    assert_eq!(again["memory_directory"], answer["memory_directory"]);
    assert_eq!(history(&directory).0.len(), 1);
    client.recv_until_type("update_device_status").await;

    for (agent_id, error) in [
        ("agent-nobody", "Agent agent-nobody not found"),
        ("../escape", "Agent id \"../escape\" cannot name a memory directory"),
    ] {
        let refused = enable(&mut client, "em-bad", &json!(agent_id)).await;
        assert_eq!(
            refused,
            json!({"type": "enable_memfs_response", "request_id": "em-bad", "success": false, "error": error})
        );
    }
    assert!(!server.data.path().join("store/escape").exists());

    client.close().await;
    server.restart().await;
    let mut client = server.client().await;
    client
        .send(json!({"type": "sync", "request_id": "sy", "runtime": runtime, "force_device_status": true}))
        .await;
    let replay = client.recv_until_type("sync_response").await;
    let device = replay.iter().find(|f| f["type"] == "update_device_status").unwrap();
    assert_eq!(
        device["device_status"]["memory_directory"],
        json!(directory.display().to_string()),
        "known across a restart"
    );
}

/// Deleting an agent removes its memory repository.
#[tokio::test]
async fn deleting_an_agent_removes_its_memory_repository() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    client
        .send(json!({"type": "runtime_start", "request_id": "rs", "create_agent": {"body": {}}}))
        .await;
    let started = client.recv_until_type("update_subagent_state").await;
    let agent = started[0]["runtime"]["agent_id"].clone();
    let repository = server
        .data
        .path()
        .join("store/memfs")
        .join(agent.as_str().expect("an agent id"));
    assert_eq!(enable(&mut client, "em", &agent).await["success"], true);
    assert!(repository.join("memory").is_dir());
    client
        .send(json!({"type": "agent_delete", "request_id": "del", "agent_id": agent}))
        .await;
    let deleted = client.recv_until_type("agent_delete_response").await;
    assert_eq!(deleted.last().expect("the answer")["success"], true);
    assert!(!repository.exists(), "the repository went with the agent");
    let again = enable(&mut client, "em-2", &agent).await;
    assert_eq!(again["success"], false, "{again}");
}
