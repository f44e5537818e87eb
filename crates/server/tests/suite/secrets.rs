//! `secret_list` and `secret_apply` (docs/protocol.md §4.13): an agent's secrets, upper-cased,
//! unset winning, in an owner-only file, across a restart.

use std::os::unix::fs::PermissionsExt;

use serde_json::{Value, json};

use crate::support::TestServer;
use crate::support::drive::{self, ask};
use crate::support::wire::{Client, start_runtime};

async fn new_agent(client: &mut Client) -> Value {
    let created = ask(
        client,
        json!({"type": "agent_create", "request_id": "ac", "body": {"name": "Keeper"}}),
    )
    .await;
    created["agent"]["id"].clone()
}

#[tokio::test]
async fn secrets_are_set_listed_and_unset_and_survive_a_restart() {
    let mut server = TestServer::start().await;
    let mut client = server.client().await;
    let agent = new_agent(&mut client).await;

    let applied = ask(
        &mut client,
        json!({"type": "secret_apply", "request_id": "sa-1", "agent_id": agent,
            "set": {"api_key": "sk-one", "TOKEN": "t-2", "GONE": "x"}, "unset": ["gone"]}),
    )
    .await;
    assert_eq!(
        applied,
        json!({"type": "secret_apply_response", "request_id": "sa-1", "success": true,
            "names": ["API_KEY", "TOKEN"]}),
        "keys upper-cased, unset wins"
    );
    let listed = ask(
        &mut client,
        json!({"type": "secret_list", "request_id": "sl-1", "agent_id": agent}),
    )
    .await;
    assert_eq!(
        listed,
        json!({"type": "secret_list_response", "request_id": "sl-1", "success": true,
            "secrets": [{"key": "API_KEY", "value": "sk-one"}, {"key": "TOKEN", "value": "t-2"}]})
    );

    // Owner-only, in a directory only the owner can enter.
    let file = server.data.path().join("store/secrets/agent-secrets.json");
    let mode = |path: &std::path::Path| std::fs::metadata(path).expect("it exists").permissions().mode() & 0o777;
    assert_eq!((mode(&file), mode(file.parent().unwrap())), (0o600, 0o700));

    drop(client);
    server.restart().await;
    let mut client = server.client().await;
    let removed = ask(
        &mut client,
        json!({"type": "secret_apply", "request_id": "sa-2", "agent_id": agent, "set": {}, "unset": ["token"]}),
    )
    .await;
    assert_eq!(removed["names"], json!(["API_KEY"]));
    let listed = ask(
        &mut client,
        json!({"type": "secret_list", "request_id": "sl-2", "agent_id": agent}),
    )
    .await;
    assert_eq!(listed["secrets"], json!([{"key": "API_KEY", "value": "sk-one"}]));
}

#[tokio::test]
async fn bad_names_and_unknown_agents_change_nothing_and_say_why() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let agent = new_agent(&mut client).await;
    let apply = |id: &str, agent: &Value, set: Value, unset: Value| json!({"type": "secret_apply", "request_id": id, "agent_id": agent, "set": set, "unset": unset});

    let cases = [
        (
            apply("sa-1", &agent, json!({"OK": "1", "my-key": "v"}), json!([])),
            "Invalid secret name 'my-key'. Use uppercase letters, numbers, and underscores only.",
        ),
        (
            apply("sa-2", &agent, json!({"OK": "1"}), json!(["9LIVES"])),
            "Invalid secret name '9LIVES'. Use uppercase letters, numbers, and underscores only. Must start \
             with a letter or underscore.",
        ),
        (
            apply("sa-3", &json!("agent-nope"), json!({"OK": "1"}), json!([])),
            "Agent agent-nope not found",
        ),
        (
            apply("sa-4", &json!(""), json!({"OK": "1"}), json!([])),
            "No agent context set. Agent ID is required.",
        ),
    ];
    for (frame, error) in cases {
        let request_id = frame["request_id"].clone();
        let answer = ask(&mut client, frame).await;
        assert_eq!(
            answer,
            json!({"type": "secret_apply_response", "request_id": request_id, "success": false,
                "names": [], "error": error})
        );
    }
    let listed = ask(
        &mut client,
        json!({"type": "secret_list", "request_id": "sl", "agent_id": agent}),
    )
    .await;
    assert_eq!(listed["secrets"], json!([]), "nothing was stored");
    let unknown = ask(
        &mut client,
        json!({"type": "secret_list", "request_id": "sl-x", "agent_id": "agent-nope"}),
    )
    .await;
    assert_eq!(
        unknown,
        json!({"type": "secret_list_response", "request_id": "sl-x", "success": false, "secrets": [],
            "error": "Agent agent-nope not found"})
    );
}

#[tokio::test]
async fn an_oversized_secret_is_refused_without_repeating_it() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let agent = new_agent(&mut client).await;
    let value = "v".repeat(64 * 1024 + 1);
    client
        .send(
            json!({"type": "secret_apply", "request_id": "sa-big", "agent_id": agent,
            "set": {"BIG": value}, "unset": []}),
        )
        .await;
    let error = client.recv_until_type("error").await.pop().expect("the error");
    assert_eq!(
        error,
        json!({"type": "error", "request_id": "sa-big", "code": "limit_exceeded", "frame_type": "secret_apply",
            "message": "invalid `secret_apply` frame: field `set.BIG` is 65537 bytes, over the limit of 65536 bytes"})
    );
}

/// Every file under `dir`, but the secrets' own.
fn stored_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("readable").flatten() {
        let path = entry.path();
        if path.is_dir() && !path.ends_with("secrets") {
            files.extend(stored_files(&path));
        } else if path.is_file() {
            files.push(path);
        }
    }
    files
}

#[tokio::test]
async fn bash_gets_the_secrets_a_command_names_and_their_values_are_never_shown_nor_stored() {
    let mut server = TestServer::start().await;
    let mut client = server.client().await;
    let runtime = start_runtime(&mut client).await;
    let value = "s3cr3t-value-42";
    let applied = ask(
        &mut client,
        json!({"type": "secret_apply", "request_id": "sa", "agent_id": runtime["agent_id"],
            "set": {"TOKEN": value, "OTHER": "other-value-7"}, "unset": []}),
    )
    .await;
    assert_eq!(applied["success"], true);

    // `OTHER` is not named, so the command does not get it.
    let command = json!({"command": "echo \"[$TOKEN] [${TOKEN:-none}] [${#TOKEN}]\"; printenv OTHER || echo no-other"});
    let frames = drive::turn(&mut client, &runtime, &format!("[[tool: Bash {command}]]"), 1).await;
    let seen = serde_json::to_string(&frames).expect("JSON");
    assert!(
        seen.contains("[TOKEN=<REDACTED>] [TOKEN=<REDACTED>] [15]\\nno-other"),
        "the command saw the value, the model sees its name: {seen}"
    );
    assert!(!seen.contains(value) && !seen.contains("other-value-7"));

    let history = drive::call(
        &mut client,
        json!({"type": "conversation_messages_list", "conversation_id": runtime["conversation_id"]}),
    )
    .await;
    assert!(!history.to_string().contains(value), "{history}");
    drop(client);
    server.stop().await;
    let mut checked = 0;
    for file in stored_files(server.data.path()) {
        // SQLite's `-wal` and `-shm` files may go as the store closes.
        let Ok(bytes) = std::fs::read(&file) else { continue };
        checked += 1;
        assert!(
            !bytes.windows(value.len()).any(|window| window == value.as_bytes()),
            "{} holds the value",
            file.display()
        );
    }
    assert!(checked > 0, "the store's files were read");
}

#[tokio::test]
async fn deleting_an_agent_deletes_its_secrets() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let (agent, other) = (new_agent(&mut client).await, new_agent(&mut client).await);
    for id in [&agent, &other] {
        let applied = ask(
            &mut client,
            json!({"type": "secret_apply", "request_id": "sa", "agent_id": id, "set": {"TOKEN": "t"}, "unset": []}),
        )
        .await;
        assert_eq!(applied["success"], true);
    }
    let deleted = ask(
        &mut client,
        json!({"type": "agent_delete", "request_id": "ad", "agent_id": agent}),
    )
    .await;
    assert_eq!(deleted["success"], true, "{deleted}");
    let file = std::fs::read_to_string(server.data.path().join("store/secrets/agent-secrets.json")).unwrap();
    assert!(!file.contains(agent.as_str().unwrap()), "{file}");
    assert!(file.contains(other.as_str().unwrap()), "{file}");
}

/// The text of a turn's reply (the scripted model answers `I received: <the user's words>`).
fn reply(frames: &[Value]) -> String {
    frames
        .iter()
        .filter(|f| f["delta"]["message_type"] == "assistant_message")
        .map(|f| f["delta"]["content"][0]["text"].as_str().expect("text").to_owned())
        .collect()
}

#[tokio::test]
async fn the_model_is_told_the_secret_names_on_its_first_turn_and_when_they_change() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let runtime = start_runtime(&mut client).await;
    let apply = |n: usize, set: Value, unset: Value| {
        json!({"type": "secret_apply", "request_id": format!("sa-{n}"), "agent_id": runtime["agent_id"],
            "set": set, "unset": unset})
    };
    assert_eq!(
        ask(&mut client, apply(1, json!({"TOKEN": "t-1"}), json!([]))).await["success"],
        true
    );

    let first = reply(&drive::turn(&mut client, &runtime, "hello", 1).await);
    assert!(
        first.contains("<system-reminder> These secrets are set for you: - `$TOKEN` A shell command"),
        "{first}"
    );
    assert!(!first.contains("t-1"), "names only: {first}");
    let second = reply(&drive::turn(&mut client, &runtime, "again", 2).await);
    assert!(!second.contains("system-reminder"), "told once: {second}");

    ask(&mut client, apply(2, json!({"KEY": "k"}), json!(["TOKEN"]))).await;
    let third = reply(&drive::turn(&mut client, &runtime, "and now", 3).await);
    assert!(
        third.contains("Your secrets changed. These are set now: - `$KEY` A shell"),
        "{third}"
    );
    ask(&mut client, apply(3, json!({}), json!(["KEY"]))).await;
    let fourth = reply(&drive::turn(&mut client, &runtime, "last", 4).await);
    assert!(fourth.contains("Your secrets changed: none is set now."), "{fourth}");

    // The reminder is part of the stored message, as the model saw it.
    let history = drive::call(
        &mut client,
        json!({"type": "conversation_messages_list", "conversation_id": runtime["conversation_id"]}),
    )
    .await;
    assert!(
        history.to_string().contains("These secrets are set for you"),
        "{history}"
    );
}
