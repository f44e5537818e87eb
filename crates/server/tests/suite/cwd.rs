//! Working directories (docs/protocol.md §4.8): `get_cwd_map`, `set_boot_working_directory`
//! (validated, persisted, the default of scopes that chose none), across a restart.

use serde_json::{Value, json};

use crate::support::TestServer;
use crate::support::wire::{Client, start_runtime};

async fn cwd_map(client: &mut Client, request_id: &str) -> Value {
    client
        .send(json!({"type": "get_cwd_map", "request_id": request_id}))
        .await;
    let answer = client
        .recv_until_type("get_cwd_map_response")
        .await
        .pop()
        .expect("the answer");
    assert_eq!(answer["success"], true, "{answer}");
    answer
}

async fn set_boot(client: &mut Client, cwd: &str) -> Value {
    client
        .send(json!({"type": "set_boot_working_directory", "request_id": "boot", "cwd": cwd}))
        .await;
    client
        .recv_until_type("set_boot_working_directory_response")
        .await
        .pop()
        .expect("the answer")
}

fn canonical(path: &std::path::Path) -> String {
    path.canonicalize().expect("a path").display().to_string()
}

#[tokio::test]
async fn the_boot_working_directory_is_checked_kept_and_followed() {
    let mut server = TestServer::start().await;
    let data = canonical(server.data.path());
    let mut client = server.client().await;
    let runtime = start_runtime(&mut client).await;
    let conversation_key = format!("conversation:{}", runtime["conversation_id"].as_str().unwrap());
    let map = cwd_map(&mut client, "m-1").await;
    assert_eq!(
        map,
        json!({"type": "get_cwd_map_response", "request_id": "m-1", "success": true, "cwd_map": {},
            "boot_working_directory": server.data.path().display().to_string()})
    );

    // Refusals, with real Letta's texts; nothing changes.
    let file = server.data.path().join("a file");
    std::fs::write(&file, "not a directory").unwrap();
    let boot = server.data.path().display().to_string();
    for (cwd, error) in [
        ("  ", "Working directory cannot be empty".to_owned()),
        (
            "/does/not/exist",
            "ENOENT: no such file or directory, realpath '/does/not/exist'".to_owned(),
        ),
        ("a file", format!("Not a directory: {data}/a file")),
    ] {
        let answer = set_boot(&mut client, cwd).await;
        assert_eq!(
            answer,
            json!({"type": "set_boot_working_directory_response", "request_id": "boot", "success": false,
                "boot_working_directory": boot, "cwd_revision": 0, "error": error})
        );
    }

    // A relative path is taken from the boot directory; the scope that chose none moves with it.
    std::fs::create_dir_all(server.data.path().join("projects/one")).unwrap();
    std::fs::create_dir_all(server.data.path().join("projects/two")).unwrap();
    let one = format!("{data}/projects/one");
    let answer = set_boot(&mut client, "projects/one/").await;
    assert_eq!(
        (
            &answer["success"],
            &answer["boot_working_directory"],
            &answer["cwd_revision"]
        ),
        (&json!(true), &json!(one), &json!(1))
    );
    let status = client.recv().await;
    assert_eq!(
        (
            &status["runtime"],
            &status["device_status"]["current_working_directory"],
            &status["device_status"]["cwd_revision"]
        ),
        (&runtime, &json!(one), &json!(1))
    );
    let again = set_boot(&mut client, &one).await;
    assert_eq!(
        (&again["success"], &again["cwd_revision"]),
        (&json!(true), &json!(1)),
        "the same directory again changes nothing"
    );
    client.expect_silence(std::time::Duration::from_millis(100)).await;

    // A scope's own directory is in the map; an agent's default conversation has its own key.
    let two = format!("{data}/projects/two");
    client
        .send(json!({"type": "change_device_state", "runtime": runtime, "payload": {"cwd": two}}))
        .await;
    client
        .recv_until(|f| f["device_status"]["current_working_directory"] == json!(two))
        .await;
    client
        .send(
            json!({"type": "runtime_start", "request_id": "rs-default", "agent_id": runtime["agent_id"],
            "conversation_id": "default", "cwd": data}),
        )
        .await;
    client.recv_until_type("update_subagent_state").await;
    let default_key = format!("agent:{}::conversation:default", runtime["agent_id"].as_str().unwrap());
    let expected = json!({conversation_key.clone(): two, default_key.clone(): data});
    assert_eq!(cwd_map(&mut client, "m-2").await["cwd_map"], expected);

    // Moving back to the boot directory leaves the map, as on real Letta.
    client
        .send(json!({"type": "change_device_state", "runtime": runtime, "payload": {"cwd": one}}))
        .await;
    client
        .recv_until(|f| f["device_status"]["current_working_directory"] == json!(one))
        .await;
    assert_eq!(
        cwd_map(&mut client, "m-3").await["cwd_map"],
        json!({default_key.clone(): data})
    );

    // A directory that no longer exists is left out, as real Letta prunes it.
    let gone = server.data.path().join("gone");
    std::fs::create_dir(&gone).unwrap();
    client
        .send(json!({"type": "change_device_state", "runtime": runtime, "payload": {"cwd": gone}}))
        .await;
    client
        .recv_until(|f| f["device_status"]["current_working_directory"] == json!(canonical(&gone)))
        .await;
    assert_eq!(
        cwd_map(&mut client, "m-gone").await["cwd_map"]
            .as_object()
            .unwrap()
            .len(),
        2
    );
    std::fs::remove_dir(&gone).unwrap();
    assert_eq!(
        cwd_map(&mut client, "m-pruned").await["cwd_map"],
        json!({default_key.clone(): data})
    );

    client.close().await;
    server.restart().await;
    let mut client = server.client().await;
    let map = cwd_map(&mut client, "m-4").await;
    assert_eq!(
        (&map["boot_working_directory"], &map["cwd_map"]),
        (&json!(one), &json!({default_key: data})),
        "kept across a restart"
    );
    // A new scope starts in the boot directory.
    let fresh = start_runtime(&mut client).await;
    client
        .send(json!({"type": "sync", "request_id": "sy", "runtime": fresh, "force_device_status": true}))
        .await;
    let replay = client.recv_until_type("sync_response").await;
    let device = replay.iter().find(|f| f["type"] == "update_device_status").unwrap();
    assert_eq!(device["device_status"]["current_working_directory"], json!(one));

    // A boot directory that was removed is dropped at the next start for the configured one.
    std::fs::remove_dir_all(server.data.path().join("projects")).unwrap();
    client.close().await;
    server.restart().await;
    let mut client = server.client().await;
    let map = cwd_map(&mut client, "m-5").await;
    assert_eq!(map["boot_working_directory"], json!(boot));

    client
        .send(json!({"type": "set_boot_working_directory", "request_id": "long", "cwd": "/x".repeat(2049)}))
        .await;
    let refused = client.recv().await;
    assert_eq!(
        (&refused["type"], &refused["code"]),
        (&json!("error"), &json!("limit_exceeded"))
    );
}
