//! Slash commands over a real socket (docs/protocol.md §4.11): `execute_command` runs between
//! `slash_command_start` and `slash_command_end` deltas, then answers its requester.

use serde_json::{Value, json};

use crate::support::TestServer;
use crate::support::drive::{items, prompt_tokens, text, turn};
use crate::support::wire::{Client, start_runtime};

/// Runs `/command_id args` and returns the frames up to its response.
async fn slash(client: &mut Client, runtime: &Value, command_id: &str, args: Option<&str>) -> Vec<Value> {
    let request_id = format!("cmd-{command_id}-{}", args.unwrap_or_default().len());
    let mut command = json!({"type": "execute_command", "request_id": request_id, "runtime": runtime,
        "command_id": command_id});
    if let Some(args) = args {
        command["args"] = json!(args);
    }
    client.send(command).await;
    client.recv_until_type("execute_command_response").await
}

/// The slash-command deltas and the response among `frames`: (start input, end output, end
/// success) and (response success, response output).
fn outcome(frames: &[Value]) -> ((String, String, bool), (bool, String)) {
    let delta = |kind: &str| {
        frames
            .iter()
            .find(|f| f["type"] == "stream_delta" && f["delta"]["message_type"] == kind)
            .unwrap_or_else(|| panic!("a {kind} delta in {frames:?}"))["delta"]
            .clone()
    };
    let (start, end) = (delta("slash_command_start"), delta("slash_command_end"));
    assert_eq!(start["command_id"], end["command_id"]);
    assert!(text(&start["id"]).starts_with("lifecycle-"));
    let response = frames.last().expect("a frame");
    assert_eq!(response["success"], end["success"]);
    assert_eq!(response["output"], end["output"]);
    (
        (
            text(&end["input"]).to_owned(),
            text(&end["output"]).to_owned(),
            end["success"].as_bool().expect("a flag"),
        ),
        (
            response["success"].as_bool().expect("a flag"),
            text(&response["output"]).to_owned(),
        ),
    )
}

#[tokio::test]
async fn compact_clear_and_unknown_commands_answer_as_real_letta() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let runtime = start_runtime(&mut client).await;
    let words = "alpha beta gamma delta ".repeat(25);
    for n in 0..4 {
        turn(&mut client, &runtime, &format!("turn {n} {words}"), n).await;
    }

    let ((input, output, success), _) = outcome(&slash(&mut client, &runtime, "compact", None).await);
    assert_eq!((input.as_str(), success), ("/compact", true));
    assert!(
        output.starts_with("Compaction completed. Message buffer length reduced from 8 to 3.\n\nSummary: Summary of 6"),
        "{output}"
    );
    let (_, (ok, help)) = outcome(&slash(&mut client, &runtime, "compact", Some("help")).await);
    assert!(ok && help.contains("sliding_window"), "{help}");
    let ((input, output, success), _) = outcome(&slash(&mut client, &runtime, "compact", Some(" bogus ")).await);
    assert_eq!(
        (input.as_str(), output.as_str(), success),
        (
            "/compact bogus",
            "Failed: Invalid mode \"bogus\". Run /compact help for usage.",
            false
        )
    );

    let full = prompt_tokens(&turn(&mut client, &runtime, "measure", 10).await);
    let (_, (ok, cleared)) = outcome(&slash(&mut client, &runtime, "clear", None).await);
    assert_eq!(
        (ok, cleared.as_str()),
        (
            true,
            "Agent's in-context messages cleared & moved to conversation history"
        )
    );
    let after = prompt_tokens(&turn(&mut client, &runtime, "measure", 11).await);
    assert!(
        after < full && after <= 2,
        "only the new message is sent: {full} → {after}"
    );
    client
        .send(json!({"type": "conversation_messages_list", "request_id": "ml",
            "conversation_id": runtime["conversation_id"], "query": {"limit": 1000}}))
        .await;
    let listed = client.recv_until_type("conversation_messages_list_response").await;
    assert!(
        items(&listed.last().expect("the page")["messages"]).len() > 10,
        "cleared messages stay listed"
    );

    let ((_, output, success), (ok, _)) = outcome(&slash(&mut client, &runtime, "nope", Some("x")).await);
    assert_eq!((output.as_str(), success, ok), ("Unknown command: nope", false, false));

    let ghost = json!({"agent_id": "agent-ghost", "conversation_id": "default"});
    client
        .send(json!({"type": "execute_command", "request_id": "ghost", "runtime": ghost, "command_id": "clear"}))
        .await;
    let error = client.recv().await;
    assert_eq!(
        (&error["type"], &error["code"], &error["request_id"]),
        (&json!("error"), &json!("unknown_runtime"), &json!("ghost")),
        "{error}"
    );
}

#[tokio::test]
async fn context_limit_doctor_and_reload() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let runtime = start_runtime(&mut client).await;

    let (_, (ok, shown)) = outcome(&slash(&mut client, &runtime, "context-limit", None).await);
    assert_eq!(
        (ok, shown.as_str()),
        (true, "Current conversation max context is the model's default.")
    );
    let (_, (ok, set)) = outcome(&slash(&mut client, &runtime, "context-limit", Some("50000")).await);
    assert_eq!(
        (ok, set.as_str()),
        (true, "Current conversation max context set to 50000 tokens.")
    );
    client
        .send(
            json!({"type": "conversation_retrieve", "request_id": "cr", "conversation_id": runtime["conversation_id"]}),
        )
        .await;
    let retrieved = client.recv_until_type("conversation_retrieve_response").await;
    assert_eq!(
        retrieved.last().expect("a frame")["conversation"]["context_window_limit"],
        50000
    );
    let (_, (ok, small)) = outcome(&slash(&mut client, &runtime, "set-max-context", Some("100")).await);
    assert_eq!(
        (ok, small.as_str()),
        (false, "Failed: The context limit must be from 30000 to 10000000 tokens")
    );
    let default = json!({"agent_id": runtime["agent_id"], "conversation_id": "default"});
    let (_, (ok, set)) = outcome(&slash(&mut client, &default, "context-limit", Some("60000")).await);
    assert_eq!((ok, set.as_str()), (true, "Agent max context set to 60000 tokens."));
    client
        .send(json!({"type": "agent_retrieve", "request_id": "ar", "agent_id": runtime["agent_id"]}))
        .await;
    let agent = client.recv_until_type("agent_retrieve_response").await;
    let agent = &agent.last().expect("the answer")["agent"];
    assert_eq!(
        agent["model_settings"]["context_window_limit"], 60000,
        "where agent_update keeps it: {agent}"
    );
    let (_, (ok, agent)) = outcome(&slash(&mut client, &default, "context-limit", Some("reset")).await);
    assert_eq!(
        (ok, agent.as_str()),
        (true, "Agent max context reset to the model's default.")
    );

    let reload = slash(&mut client, &runtime, "reload", None).await;
    let device = reload
        .iter()
        .find(|f| f["type"] == "update_device_status")
        .expect("the device status again");
    assert_eq!(
        device["device_status"]["supported_commands"],
        json!(["clear", "compact", "context-limit", "doctor", "reload"])
    );
    assert_eq!(outcome(&reload).1, (true, "Reloaded settings".to_owned()));

    let doctor = slash(&mut client, &runtime, "doctor", Some("slow replies")).await;
    assert_eq!(outcome(&doctor).1, (true, String::new()));
    let turn = client.recv_until_type("turn_finished").await;
    assert!(
        turn.iter().any(|f| f["delta"]["message_type"] == "assistant_message"),
        "the agent answers the diagnostic prompt: {turn:?}"
    );
}

/// A command name or arguments too large to repeat to every subscriber are refused whole.
#[tokio::test]
async fn oversized_commands_are_refused_before_anything_runs() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let runtime = start_runtime(&mut client).await;
    for (field, value) in [("command_id", "x".repeat(300)), ("args", "y".repeat(70_000))] {
        let mut command = json!({"type": "execute_command", "request_id": "big", "runtime": runtime,
            "command_id": "doctor"});
        command[field] = json!(value);
        client.send(command).await;
        let error = client.recv().await;
        assert_eq!(
            (&error["type"], &error["code"], &error["request_id"]),
            (&json!("error"), &json!("limit_exceeded"), &json!("big")),
            "{error}"
        );
        assert!(text(&error["message"]).contains(field), "{error}");
    }
    client
        .send(json!({"type": "conversation_create", "request_id": "huge",
            "body": {"agent_id": runtime["agent_id"], "summary": "z".repeat(70_000)}}))
        .await;
    let error = client.recv().await;
    assert_eq!(
        (&error["code"], &error["request_id"]),
        (&json!("limit_exceeded"), &json!("huge")),
        "{error}"
    );
}
