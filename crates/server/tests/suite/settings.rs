//! Reflection settings and experiment flags (docs/protocol.md §4.9): answers, bad inputs, the
//! device status showing them, and persistence across a restart.

use serde_json::{Value, json};

use crate::support::TestServer;
use crate::support::wire::{Client, start_runtime};

/// Sends `frame` and returns the first frame of type `answer`, with what came before it.
async fn ask(client: &mut Client, frame: Value, answer: &str) -> (Value, Vec<Value>) {
    client.send(frame).await;
    let mut frames = client.recv_until_type(answer).await;
    let answer = frames.pop().expect("the answer");
    (answer, frames)
}

fn reflection(agent: &Value, trigger: &str, step_count: u64, merge: &str, instructions: &str) -> Value {
    json!({"agent_id": agent, "trigger": trigger, "step_count": step_count, "merge": merge,
        "merge_instructions": instructions})
}

fn get_reflection(request_id: &str, runtime: &Value) -> Value {
    json!({"type": "get_reflection_settings", "request_id": request_id, "runtime": runtime})
}

fn set_reflection(request_id: &str, runtime: &Value, settings: Value) -> Value {
    json!({"type": "set_reflection_settings", "request_id": request_id, "runtime": runtime, "settings": settings})
}

#[tokio::test]
async fn reflection_settings_default_change_in_layers_and_survive_a_restart() {
    let mut server = TestServer::start().await;
    let mut client = server.client().await;
    client
        .send(json!({"type": "runtime_start", "request_id": "rs-1", "create_agent": {"body": {}}}))
        .await;
    let started = client.recv_until_type("update_subagent_state").await;
    let runtime = started[0]["runtime"].clone();
    let agent = runtime["agent_id"].clone();
    let device = started.iter().find(|f| f["type"] == "update_device_status").unwrap();
    let defaults = reflection(&agent, "step-count", 25, "auto", "");
    assert_eq!(
        device["device_status"]["reflection_settings"], defaults,
        "Letta's defaults"
    );

    let (got, _) = ask(
        &mut client,
        get_reflection("g-1", &runtime),
        "get_reflection_settings_response",
    )
    .await;
    assert_eq!(got["reflection_settings"], defaults);

    // No scope: stored in the project and globally (real Letta's `both`); instructions trimmed.
    let settings = json!({"trigger": "compaction-event", "step_count": 10, "merge": "explicit",
        "merge_instructions": "  keep it short  "});
    let (set, _) = ask(
        &mut client,
        set_reflection("s-1", &runtime, settings),
        "set_reflection_settings_response",
    )
    .await;
    let explicit = reflection(&agent, "compaction-event", 10, "explicit", "keep it short");
    assert_eq!(
        (&set["success"], &set["scope"], &set["reflection_settings"]),
        (&json!(true), &json!("both"), &explicit)
    );
    let status = client.recv().await;
    assert_eq!(status["type"], "update_device_status");
    assert_eq!(status["device_status"]["reflection_settings"], explicit);

    // Without `merge` and `merge_instructions`, the ones in effect stay.
    let settings = json!({"trigger": "off", "step_count": 3});
    let mut frame = set_reflection("s-2", &runtime, settings);
    frame["scope"] = json!("local_project");
    let (set, _) = ask(&mut client, frame, "set_reflection_settings_response").await;
    let local = reflection(&agent, "off", 3, "explicit", "keep it short");
    assert_eq!(
        (&set["scope"], &set["reflection_settings"]),
        (&json!("local_project"), &local)
    );

    // Another agent in the same project inherits the project's defaults.
    client
        .send(json!({"type": "runtime_start", "request_id": "rs-2", "create_agent": {"body": {}}}))
        .await;
    let started = client.recv_until_type("update_subagent_state").await;
    let other = started.iter().find(|f| f["type"] == "runtime_start_response").unwrap()["runtime"].clone();
    let (got, _) = ask(
        &mut client,
        get_reflection("g-2", &other),
        "get_reflection_settings_response",
    )
    .await;
    assert_eq!(
        got["reflection_settings"],
        reflection(&other["agent_id"], "off", 3, "explicit", "keep it short")
    );

    client.close().await;
    server.restart().await;
    let mut client = server.client().await;
    let (got, _) = ask(
        &mut client,
        get_reflection("g-3", &runtime),
        "get_reflection_settings_response",
    )
    .await;
    assert_eq!(got["reflection_settings"], local, "kept across a restart");
    client
        .send(json!({"type": "runtime_start", "request_id": "rs-3", "agent_id": agent,
            "conversation_id": runtime["conversation_id"]}))
        .await;
    let replay = client.recv_until_type("update_subagent_state").await;
    let device = replay.iter().find(|f| f["type"] == "update_device_status").unwrap();
    assert_eq!(device["device_status"]["reflection_settings"], local);
}

#[tokio::test]
async fn bad_reflection_settings_get_clear_answers() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let runtime = start_runtime(&mut client).await;
    let refused = |trigger: &str, step_count: i64, merge: Option<&str>| {
        let mut settings = json!({"trigger": trigger, "step_count": step_count});
        if let Some(merge) = merge {
            settings["merge"] = json!(merge);
        }
        settings
    };
    for (settings, error) in [
        (
            refused("off", 0, None),
            "Reflection step_count must be a positive integer",
        ),
        (
            refused("sometimes", 5, None),
            "Unsupported reflection trigger: sometimes (expected one of off, step-count, compaction-event)",
        ),
        (
            refused("off", 5, Some("never")),
            "Unsupported reflection merge mode: never (expected one of auto, explicit)",
        ),
    ] {
        let mut frame = set_reflection("bad", &runtime, settings);
        frame["scope"] = json!("global");
        let (answer, _) = ask(&mut client, frame, "set_reflection_settings_response").await;
        assert_eq!(
            answer,
            json!({"type": "set_reflection_settings_response", "request_id": "bad", "success": false,
                "reflection_settings": null, "scope": "global", "error": error})
        );
    }

    // An agent that does not exist keeps no settings; reading gives the defaults, as real Letta.
    let nobody = json!({"agent_id": "agent-nobody", "conversation_id": "default"});
    let (answer, _) = ask(
        &mut client,
        set_reflection("s-nobody", &nobody, json!({"trigger": "off", "step_count": 1})),
        "set_reflection_settings_response",
    )
    .await;
    assert_eq!(
        (&answer["success"], &answer["error"]),
        (&json!(false), &json!("Agent agent-nobody not found"))
    );
    let (answer, _) = ask(
        &mut client,
        get_reflection("g-nobody", &nobody),
        "get_reflection_settings_response",
    )
    .await;
    assert_eq!(
        answer["reflection_settings"],
        reflection(&json!("agent-nobody"), "step-count", 25, "auto", "")
    );

    // Shapes the types reject, and sizes past the limits: an `error` frame.
    for (frame, code) in [
        (
            set_reflection("neg", &runtime, json!({"trigger": "off", "step_count": -1})),
            "invalid_frame",
        ),
        (
            json!({"type": "set_reflection_settings", "request_id": "scope", "runtime": runtime,
                "settings": {"trigger": "off", "step_count": 1}, "scope": "elsewhere"}),
            "invalid_frame",
        ),
        (
            set_reflection(
                "long",
                &runtime,
                json!({"trigger": "off", "step_count": 1, "merge_instructions": "x".repeat(64 * 1024 + 1)}),
            ),
            "limit_exceeded",
        ),
    ] {
        client.send(frame).await;
        let answer = client.recv().await;
        assert_eq!(
            (&answer["type"], &answer["code"]),
            (&json!("error"), &json!(code)),
            "{answer}"
        );
    }
    let (got, _) = ask(
        &mut client,
        get_reflection("g-1", &runtime),
        "get_reflection_settings_response",
    )
    .await;
    assert_eq!(
        got["reflection_settings"],
        reflection(&runtime["agent_id"], "step-count", 25, "auto", ""),
        "nothing was changed"
    );
}

fn experiment<'a>(experiments: &'a Value, id: &str) -> &'a Value {
    experiments
        .as_array()
        .expect("a list")
        .iter()
        .find(|e| e["id"] == id)
        .expect("listed")
}

#[tokio::test]
async fn experiments_are_listed_set_and_kept_across_a_restart() {
    let mut server = TestServer::start().await;
    let mut client = server.client().await;
    let runtime = start_runtime(&mut client).await;
    let (listed, _) = ask(
        &mut client,
        json!({"type": "get_experiments", "request_id": "ge-1"}),
        "get_experiments_response",
    )
    .await;
    let ids: Vec<&str> = listed["experiments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "artifacts",
            "conversation_titles",
            "desktop_conversation_bootstrap",
            "diffs",
            "memory_palace",
            "reflection_arena",
            "tui_cron"
        ]
    );
    assert_eq!(
        experiment(&listed["experiments"], "artifacts"),
        &json!({"id": "artifacts", "label": "artifacts", "description":
            "Expose Letta Code Desktop artifact creation tools and artifact UI surfaces.",
            "envVar": "LETTA_ARTIFACTS", "enabled": false, "source": "default", "override": null})
    );

    let set = |request_id: &str, id: &str, enabled: bool| json!({"type": "set_experiment", "request_id": request_id, "experiment_id": id, "enabled": enabled});
    let (answer, _) = ask(&mut client, set("se-1", "tui_cron", true), "set_experiment_response").await;
    assert_eq!(answer["success"], true);
    let tui_cron = experiment(&answer["experiments"], "tui_cron");
    assert_eq!(
        (&tui_cron["enabled"], &tui_cron["source"], &tui_cron["override"]),
        (&json!(true), &json!("override"), &json!(true))
    );
    let status = client.recv().await;
    assert_eq!(status["runtime"], runtime, "the loaded conversation shows it");
    assert_eq!(
        experiment(&status["device_status"]["experiments"], "tui_cron")["enabled"],
        true
    );

    // Real Letta keeps `conversation_titles` as a plain setting: on, but never an override.
    let (answer, _) = ask(
        &mut client,
        set("se-2", "conversation_titles", true),
        "set_experiment_response",
    )
    .await;
    let titles = experiment(&answer["experiments"], "conversation_titles");
    assert_eq!(
        (&titles["enabled"], &titles["source"], &titles["override"]),
        (&json!(true), &json!("default"), &json!(null))
    );
    client.recv_until_type("update_device_status").await;

    for (id, error) in [
        (
            "artifacts",
            "Experiment artifacts cannot be set over the App Server; it accepts conversation_titles, \
             desktop_conversation_bootstrap, memory_palace, tui_cron",
        ),
        ("bogus", "Unknown experiment: bogus"),
    ] {
        let (answer, _) = ask(&mut client, set("bad", id, true), "set_experiment_response").await;
        assert_eq!((&answer["success"], &answer["error"]), (&json!(false), &json!(error)));
        assert_eq!(
            answer["experiments"].as_array().unwrap().len(),
            7,
            "listed on failure too"
        );
    }
    client
        .send(
            json!({"type": "set_experiment", "request_id": "long", "experiment_id": "x".repeat(300), "enabled": true}),
        )
        .await;
    assert_eq!(client.recv().await["code"], "limit_exceeded");

    client.close().await;
    server.restart().await;
    let mut client = server.client().await;
    let (listed, _) = ask(
        &mut client,
        json!({"type": "get_experiments", "request_id": "ge-2"}),
        "get_experiments_response",
    )
    .await;
    assert_eq!(experiment(&listed["experiments"], "tui_cron")["override"], true);
    assert_eq!(
        experiment(&listed["experiments"], "conversation_titles")["enabled"],
        true
    );
    assert_eq!(experiment(&listed["experiments"], "artifacts")["enabled"], false);
}
