//! Local tools through permission modes and approvals, and controller-owned external tools
//! (docs/protocol.md §3.9, §3.11, §5 (c), (d), (g)).

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::TestServer;
use crate::support::wire::{Client, summary, user_input};

/// Starts a runtime in `mode` with the server's data directory as cwd; returns its scope.
async fn start(client: &mut Client, mode: &str, extra: Value) -> Value {
    let mut frame = json!({"type": "runtime_start", "request_id": "rs-1", "mode": mode, "create_agent": {"body": {"name": "Tools"}}});
    frame
        .as_object_mut()
        .expect("object")
        .extend(extra.as_object().expect("object").clone());
    client.send(frame).await;
    let frames = client.recv_until_type("update_subagent_state").await;
    assert_eq!(frames[0]["success"], true, "{}", frames[0]);
    frames[0]["runtime"].clone()
}

fn tool(name: &str, args: Value) -> String {
    format!("[[tool: {name} {args}]]")
}

fn approve(request_id: &str, runtime: &Value, decision: Value) -> Value {
    json!({"type": "input", "request_id": format!("ans-{request_id}"), "runtime": runtime,
        "payload": {"kind": "approval_response", "request_id": request_id, "decision": decision}})
}

/// Summary lines without the model's own streaming chunks.
fn lines(frames: &[Value]) -> Vec<String> {
    summary(frames)
        .into_iter()
        .filter(|l| !l.starts_with("delta assistant") && !l.starts_with("delta usage"))
        .collect()
}

#[tokio::test]
async fn standard_mode_asks_before_a_shell_command_and_runs_it_once_allowed() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let runtime = start(&mut client, "standard", json!({"cwd": server.data.path()})).await;
    let command = tool(
        "Bash",
        json!({"command": "mkdir -p made && echo made-dir", "description": "Create a directory"}),
    );
    client
        .send(user_input("in-c1", &runtime, &format!("please {command}"), "cm-c1"))
        .await;
    let asked = client.recv_until_type("control_request").await;
    let request = asked.last().unwrap().clone();
    assert_eq!(request["request_id"], "perm-call_1");
    assert_eq!(request["request"]["tool_name"], "Bash");
    assert_eq!(
        request["request"]["permission_suggestions"][0]["text"],
        "Yes, and don't ask again for 'mkdir -p made' in this project"
    );
    let pending = client.recv_until(|f| f["type"] == "update_device_status").await;
    assert_eq!(
        pending.last().unwrap()["device_status"]["pending_control_requests"][0]["request_id"],
        "perm-call_1"
    );

    client
        .send(approve("perm-call_1", &runtime, json!({"behavior": "allow"})))
        .await;
    let rest = client.recv_until_type("turn_finished").await;
    insta::assert_snapshot!(
        "c_approve",
        lines(&[asked.clone(), pending, rest.clone()].concat()).join("\n")
    );
    assert!(server.data.path().join("made").is_dir(), "the command ran");
    let final_return = rest
        .iter()
        .rev()
        .find(|f| f["delta"]["message_type"] == "tool_return_message")
        .unwrap();
    assert_eq!(final_return["delta"]["tool_return"], "made-dir\n");
    let start = rest
        .iter()
        .find(|f| f["delta"]["message_type"] == "client_tool_start")
        .unwrap();
    let request_message = asked
        .iter()
        .find(|f| f["delta"]["message_type"] == "approval_request_message")
        .unwrap();
    assert_eq!(
        start["delta"]["id"], request_message["delta"]["id"],
        "lifecycle ids reuse the approval request's id"
    );
}

#[tokio::test]
async fn a_denied_call_gets_the_message_as_its_result_without_client_tool_start() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let runtime = start(&mut client, "standard", json!({"cwd": server.data.path()})).await;
    let command = tool("Bash", json!({"command": "touch denied", "description": "touch"}));
    client.send(user_input("in-c3", &runtime, &command, "cm-c3")).await;
    client.recv_until_type("control_request").await;
    client
        .send(approve(
            "perm-call_1",
            &runtime,
            json!({"behavior": "deny", "message": "Not now"}),
        ))
        .await;
    let rest = client.recv_until_type("turn_finished").await;
    insta::assert_snapshot!("c_deny", lines(&rest).join("\n"));
    assert!(!rest.iter().any(|f| f["delta"]["message_type"] == "client_tool_start"));
    assert!(!server.data.path().join("denied").exists());
    // A late answer to the same question is refused.
    client
        .send(approve("perm-call_1", &runtime, json!({"behavior": "allow"})))
        .await;
    let late = client.recv_until_type("input_accepted").await.pop().unwrap();
    assert_eq!(
        (&late["accepted"], &late["error"]),
        (&json!(false), &json!("Approval request is no longer pending"))
    );
}

/// A call the permission mode allows never looks like it waits for a person: real Letta goes from
/// `stop_reason requires_approval` through `approval_classification_end` straight to
/// `EXECUTING_CLIENT_SIDE_TOOL` (captures `0.32.18/d-external-tool`, `p8-external-tool-slow`).
/// An Agent SDK without an approval callback ends the turn on `WAITING_ON_APPROVAL`.
#[tokio::test]
async fn an_auto_allowed_call_goes_straight_to_execution() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let runtime = start(&mut client, "unrestricted", json!({"cwd": server.data.path()})).await;
    let command = tool("Bash", json!({"command": "echo ran", "description": "echo"}));
    client.send(user_input("in-u1", &runtime, &command, "cm-u1")).await;
    let frames = client.recv_until_type("turn_finished").await;
    insta::assert_snapshot!("auto_allowed", lines(&frames).join("\n"));
    assert!(
        !frames
            .iter()
            .any(|f| f["loop_status"]["status"] == "WAITING_ON_APPROVAL"),
        "{:?}",
        summary(&frames)
    );
    let executing = frames
        .iter()
        .find(|f| f["loop_status"]["status"] == "EXECUTING_CLIENT_SIDE_TOOL")
        .unwrap();
    assert_eq!(executing["loop_status"]["executing_tool_call_ids"], json!(["call_1"]));
}

/// A call refused without asking (here: a tool the turn does not offer) is reported as
/// auto-denied and gets its error result with no `client_tool_start` and no wait, as real Letta's
/// auto-denied calls (capture `0.34.12/p12-client-preferences-toolset`). The permission rules
/// themselves never deny automatically: they allow or ask.
#[tokio::test]
async fn an_auto_denied_call_gets_its_error_without_waiting() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let runtime = start(&mut client, "unrestricted", json!({})).await;
    let call = tool("NoSuchTool", json!({"x": 1}));
    client.send(user_input("in-n1", &runtime, &call, "cm-n1")).await;
    let frames = client.recv_until_type("turn_finished").await;
    insta::assert_snapshot!("auto_denied", lines(&frames).join("\n"));
    let executing = frames
        .iter()
        .find(|f| f["loop_status"]["status"] == "EXECUTING_CLIENT_SIDE_TOOL")
        .unwrap();
    assert_eq!(executing["loop_status"]["executing_tool_call_ids"], json!([]));
}

/// One run with an auto-allowed, an auto-denied and an asked call: one classification for all
/// three, `WAITING_ON_APPROVAL` only around the question, then the allowed calls run in order.
#[tokio::test]
async fn a_run_is_classified_once_and_only_the_asked_call_waits() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let runtime = start(&mut client, "standard", json!({"cwd": server.data.path()})).await;
    std::fs::write(server.data.path().join("notes.txt"), "alpha\n").unwrap();
    let calls = [
        tool("Read", json!({"file_path": "notes.txt"})),
        tool("NoSuchTool", json!({})),
        tool("Bash", json!({"command": "mkdir -p mixed", "description": "mkdir"})),
    ]
    .concat();
    client.send(user_input("in-m1", &runtime, &calls, "cm-m1")).await;
    let asked = client.recv_until_type("control_request").await;
    assert_eq!(asked.last().unwrap()["request_id"], "perm-call_3");
    client
        .send(approve("perm-call_3", &runtime, json!({"behavior": "allow"})))
        .await;
    let rest = client.recv_until_type("turn_finished").await;
    insta::assert_snapshot!("mixed", lines(&[asked, rest.clone()].concat()).join("\n"));
    let executing = rest
        .iter()
        .find(|f| f["loop_status"]["status"] == "EXECUTING_CLIENT_SIDE_TOOL")
        .unwrap();
    assert_eq!(
        executing["loop_status"]["executing_tool_call_ids"],
        json!(["call_1", "call_3"])
    );
    assert!(server.data.path().join("mixed").is_dir());
}

#[tokio::test]
async fn an_approval_can_edit_the_input_and_save_a_rule() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let runtime = start(&mut client, "standard", json!({"cwd": server.data.path()})).await;
    let command = tool(
        "Bash",
        json!({"command": "echo original > out.txt", "description": "write"}),
    );
    client.send(user_input("in-1", &runtime, &command, "cm-1")).await;
    client.recv_until_type("control_request").await;
    let edited = json!({"behavior": "allow", "updated_input": {"command": "echo edited-by-client > out.txt", "description": "edited"},
        "selected_permission_suggestion_ids": ["save-default"]});
    client.send(approve("perm-call_1", &runtime, edited)).await;
    client.recv_until_type("turn_finished").await;
    assert_eq!(
        std::fs::read_to_string(server.data.path().join("out.txt")).unwrap(),
        "edited-by-client\n"
    );
    // The saved rule covers the same command next time: no question.
    client.send(user_input("in-2", &runtime, &command, "cm-2")).await;
    let second = client.recv_until_type("turn_finished").await;
    assert!(
        !second.iter().any(|f| f["type"] == "control_request"),
        "{:?}",
        summary(&second)
    );
}

#[tokio::test]
async fn modes_decide_which_tools_ask() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    std::fs::write(server.data.path().join("notes.txt"), "alpha\nbeta\ngamma\n").unwrap();
    let read = tool("Read", json!({"file_path": "notes.txt"}));
    let edit = tool(
        "Edit",
        json!({"file_path": "notes.txt", "old_string": "beta", "new_string": "BETA"}),
    );
    let mut asked = Vec::new();
    for (mode, call) in [
        ("unrestricted", &edit),
        ("standard", &read),
        ("strict", &read),
        ("acceptEdits", &edit),
        ("standard", &edit),
    ] {
        let runtime = start(&mut client, mode, json!({"cwd": server.data.path()})).await;
        client
            .send(user_input("in", &runtime, call, &format!("cm-{mode}-{}", call.len())))
            .await;
        let frames = client
            .recv_until(|f| f["type"] == "control_request" || f["type"] == "turn_finished")
            .await;
        let question = frames.last().unwrap().clone();
        asked.push(json!([
            mode,
            if call == &read { "Read" } else { "Edit" },
            question["type"] == "control_request"
        ]));
        if question["type"] == "control_request" {
            if question["request"]["tool_name"] == "Edit" {
                let diff = &question["request"]["diffs"][0];
                assert_eq!(
                    (&diff["mode"], &diff["fileName"]),
                    (&json!("advanced"), &json!("notes.txt")),
                    "{question}"
                );
                assert_eq!(
                    question["request"]["permission_suggestions"][0]["text"],
                    "Yes, switch to accept edits mode for this session"
                );
            }
            client
                .send(approve(
                    question["request_id"].as_str().unwrap(),
                    &runtime,
                    json!({"behavior": "allow"}),
                ))
                .await;
            let rest = client.recv_until_type("turn_finished").await;
            if question["request"]["tool_name"] == "Edit" {
                let ops = rest
                    .iter()
                    .find(|f| f["type"] == "file_ops")
                    .expect("file_ops broadcast");
                assert_eq!(
                    (&ops["source"], &ops["document_content"]),
                    (&json!("agent"), &json!("alpha\nBETA\ngamma\n"))
                );
            }
        }
        std::fs::write(server.data.path().join("notes.txt"), "alpha\nbeta\ngamma\n").unwrap();
    }
    assert_eq!(
        asked,
        [
            json!(["unrestricted", "Edit", false]),
            json!(["standard", "Read", false]),
            json!(["strict", "Read", true]),
            json!(["acceptEdits", "Edit", false]),
            json!(["standard", "Edit", true]),
        ]
    );
}

#[tokio::test]
async fn two_subscribers_race_and_the_first_answer_wins() {
    let server = TestServer::start().await;
    let mut a = server.client().await;
    let runtime = start(&mut a, "standard", json!({"cwd": server.data.path()})).await;
    let mut b = server.client().await;
    b.send(json!({"type": "runtime_start", "request_id": "rs-b", "agent_id": runtime["agent_id"], "conversation_id": runtime["conversation_id"]})).await;
    b.recv_until_type("update_subagent_state").await;
    a.send(user_input(
        "in-1",
        &runtime,
        &tool("Bash", json!({"command": "touch raced", "description": "t"})),
        "cm-1",
    ))
    .await;
    a.recv_until_type("control_request").await;
    b.recv_until_type("control_request").await;
    b.send(approve("perm-call_1", &runtime, json!({"behavior": "allow"})))
        .await;
    a.send(approve(
        "perm-call_1",
        &runtime,
        json!({"behavior": "deny", "message": "too late"}),
    ))
    .await;
    let b_answer = b.recv_until_type("input_accepted").await.pop().unwrap();
    let a_answer = a.recv_until_type("input_accepted").await.pop().unwrap();
    assert_eq!(
        (&b_answer["accepted"], &a_answer["accepted"]),
        (&json!(true), &json!(false))
    );
    a.recv_until_type("turn_finished").await;
    assert!(server.data.path().join("raced").exists());
}

#[tokio::test]
async fn a_pending_approval_is_replayed_to_new_sockets_and_can_be_answered_there() {
    let server = TestServer::start().await;
    let mut first = server.client().await;
    let runtime = start(&mut first, "standard", json!({"cwd": server.data.path()})).await;
    let command = tool(
        "Bash",
        json!({"command": "touch marker && echo original", "description": "e"}),
    );
    first.send(user_input("in-g", &runtime, &command, "cm-g")).await;
    first.recv_until_type("control_request").await;

    let mut second = server.client().await;
    let on_connect = second.recv().await;
    assert_eq!(
        (&on_connect["type"], &on_connect["request_id"]),
        (&json!("control_request"), &json!("perm-call_1"))
    );
    second
        .send(json!({"type": "sync", "request_id": "sync-b", "runtime": runtime}))
        .await;
    let replay = second.recv_until_type("sync_response").await;
    assert_eq!(summary(&replay)[0], "control_request");
    first.drop_connection();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let edited =
        json!({"behavior": "allow", "updated_input": {"command": "echo edited-by-client", "description": "edited"}});
    second.send(approve("perm-call_1", &runtime, edited)).await;
    let rest = second.recv_until_type("turn_finished").await;
    let result = rest
        .iter()
        .rev()
        .find(|f| f["delta"]["message_type"] == "tool_return_message")
        .unwrap();
    assert_eq!(result["delta"]["tool_return"], "edited-by-client\n");
    assert_eq!(rest.last().unwrap()["stop_reason"], "end_turn");
}

#[tokio::test]
async fn abort_kills_a_running_shell_command_and_rejects_pending_approvals() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let runtime = start(&mut client, "unrestricted", json!({"cwd": server.data.path()})).await;
    let slow = tool(
        "Bash",
        json!({"command": "echo $$ > shell.pid; sleep 30", "description": "slow"}),
    );
    client.send(user_input("in-1", &runtime, &slow, "cm-1")).await;
    client
        .recv_until(|f| f["delta"]["message_type"] == "client_tool_start")
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    client
        .send(json!({"type": "abort_message", "request_id": "ab-1", "runtime": runtime}))
        .await;
    let frames = client.recv_until_type("turn_finished").await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(frames.last().unwrap()["stop_reason"], "cancelled");
    let pid = std::fs::read_to_string(server.data.path().join("shell.pid")).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !std::path::Path::new(&format!("/proc/{}", pid.trim())).exists(),
        "the shell was killed"
    );

    client
        .send(json!({"type": "change_device_state", "runtime": runtime, "payload": {"mode": "strict"}}))
        .await;
    client
        .send(user_input(
            "in-2",
            &runtime,
            &tool("Read", json!({"file_path": "shell.pid"})),
            "cm-2",
        ))
        .await;
    client.recv_until_type("control_request").await;
    client
        .send(json!({"type": "abort_message", "request_id": "ab-2", "runtime": runtime}))
        .await;
    let frames = client.recv_until_type("turn_finished").await;
    assert_eq!(frames.last().unwrap()["stop_reason"], "cancelled");
    client
        .send(approve("perm-call_1", &runtime, json!({"behavior": "allow"})))
        .await;
    assert_eq!(
        client.recv_until_type("input_accepted").await.pop().unwrap()["accepted"],
        false
    );
}

fn weather_tool() -> Value {
    json!({"name": "lookup_weather", "label": "Weather", "description": "Look up the weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}})
}

#[tokio::test]
async fn external_tools_are_called_through_their_controller() {
    let server = TestServer::start_with(|config| config.external_tool_timeout = Duration::from_millis(300)).await;
    let mut client = server.client().await;
    let runtime = start(
        &mut client,
        "unrestricted",
        json!({"external_tools": [{"tools": [weather_tool()]}]}),
    )
    .await;
    let call = tool("lookup_weather", json!({"city": "Paris"}));
    client
        .send(user_input("in-d1", &runtime, &format!("RUN_EXT {call}"), "cm-d1"))
        .await;
    let frames = client.recv_until_type("external_tool_call_request").await;
    let request = frames.last().unwrap().clone();
    assert_eq!(
        (&request["tool_name"], &request["input"]),
        (&json!("lookup_weather"), &json!({"city": "Paris"}))
    );
    assert!(request.get("event_seq").is_none(), "no envelope");
    client
        .send(
            json!({"type": "external_tool_call_response", "request_id": request["request_id"],
        "result": {"content": [{"type": "text", "text": "Sunny, 21C"}]}}),
        )
        .await;
    let rest = client.recv_until_type("turn_finished").await;
    insta::assert_snapshot!("d_external", lines(&[frames, rest.clone()].concat()).join("\n"));

    // An error answer, then no answer at all (timeout).
    client.send(user_input("in-d2", &runtime, &call, "cm-d2")).await;
    let request = client
        .recv_until_type("external_tool_call_request")
        .await
        .pop()
        .unwrap();
    client.send(json!({"type": "external_tool_call_response", "request_id": request["request_id"], "error": "weather service unavailable"})).await;
    let rest = client.recv_until_type("turn_finished").await;
    let result = rest
        .iter()
        .rev()
        .find(|f| f["delta"]["message_type"] == "tool_return_message")
        .unwrap();
    assert_eq!(
        result["delta"]["tool_return"],
        "External tool execution error: weather service unavailable"
    );
    client.send(user_input("in-d3", &runtime, &call, "cm-d3")).await;
    let rest = client.recv_until_type("turn_finished").await;
    let result = rest
        .iter()
        .rev()
        .find(|f| f["delta"]["message_type"] == "tool_return_message")
        .unwrap();
    assert_eq!(
        result["delta"]["tool_return"],
        "External tool call timed out: lookup_weather"
    );
}

#[tokio::test]
async fn standard_mode_asks_before_an_external_tool_and_scoped_tools_need_their_scope() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let runtime = start(
        &mut client,
        "standard",
        json!({"external_tools": [{"tools": [weather_tool()]}]}),
    )
    .await;
    client
        .send(user_input(
            "in-1",
            &runtime,
            &tool("lookup_weather", json!({"city": "Oslo"})),
            "cm-1",
        ))
        .await;
    let question = client.recv_until_type("control_request").await.pop().unwrap();
    assert_eq!(
        question["request"]["permission_suggestions"][0]["text"],
        "Yes, allow lookup_weather operations during this session"
    );
    client
        .send(approve("perm-call_1", &runtime, json!({"behavior": "allow"})))
        .await;
    let request = client
        .recv_until_type("external_tool_call_request")
        .await
        .pop()
        .unwrap();
    client.send(json!({"type": "external_tool_call_response", "request_id": request["request_id"], "result": {"content": [{"type": "text", "text": "Cold"}]}})).await;
    client.recv_until_type("turn_finished").await;

    // Replace the tools with a scoped set: invisible without the scope id, visible with it.
    let mut scoped = weather_tool();
    scoped["name"] = json!("scoped_weather");
    client
        .send(json!({"type": "runtime_external_tools_update", "request_id": "rtu-1",
        "updates": [{"runtimes": [runtime], "external_tools": [{"scope_id": "scope-a", "tools": [scoped]}]}]}))
        .await;
    assert_eq!(
        client
            .recv_until_type("runtime_external_tools_update_response")
            .await
            .pop()
            .unwrap()["success"],
        true
    );
    client
        .send(json!({"type": "change_device_state", "runtime": runtime, "payload": {"mode": "unrestricted"}}))
        .await;
    let call = tool("scoped_weather", json!({"city": "Rome"}));
    client.send(user_input("in-2", &runtime, &call, "cm-2")).await;
    let unscoped = client.recv_until_type("turn_finished").await;
    let result = unscoped
        .iter()
        .rev()
        .find(|f| f["delta"]["message_type"] == "tool_return_message")
        .unwrap();
    assert_eq!(result["delta"]["tool_return"], "Unknown tool: scoped_weather");
    let mut input = user_input("in-3", &runtime, &call, "cm-3");
    input["payload"]["external_tool_scope_ids"] = json!(["scope-a"]);
    client.send(input).await;
    let request = client
        .recv_until_type("external_tool_call_request")
        .await
        .pop()
        .unwrap();
    assert_eq!(request["scope_id"], "scope-a");
}

#[tokio::test]
async fn a_call_to_a_controller_that_disconnects_fails_with_a_clear_error() {
    let server = TestServer::start().await;
    let mut controller = server.client().await;
    let runtime = start(
        &mut controller,
        "unrestricted",
        json!({"external_tools": [{"tools": [weather_tool()]}]}),
    )
    .await;
    let mut watcher = server.client().await;
    watcher.send(json!({"type": "runtime_start", "request_id": "rs-w", "agent_id": runtime["agent_id"], "conversation_id": runtime["conversation_id"]})).await;
    watcher.recv_until_type("update_subagent_state").await;
    controller
        .send(user_input(
            "in-1",
            &runtime,
            &tool("lookup_weather", json!({"city": "Lima"})),
            "cm-1",
        ))
        .await;
    controller.recv_until_type("external_tool_call_request").await;
    controller.drop_connection();
    let rest = watcher.recv_until_type("turn_finished").await;
    let result = rest
        .iter()
        .rev()
        .find(|f| f["delta"]["message_type"] == "tool_return_message")
        .unwrap();
    assert_eq!(
        result["delta"]["tool_return"],
        "External tool controller is not connected"
    );
}

/// Every local tool through the turn engine, with the model's results checked.
#[tokio::test]
async fn the_scripted_model_can_call_every_local_tool() {
    let server = TestServer::start().await;
    let dir = server.data.path().join("work space");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    let mut client = server.client().await;
    let runtime = start(&mut client, "unrestricted", json!({"cwd": dir})).await;
    let include = json!({"base": "default", "include": ["MultiEdit", "Grep", "Glob", "LS", "TodoWrite"]});
    let calls = [
        (
            "Write",
            json!({"file_path": "notes.md", "content": "alpha\nbeta\n"}),
            "notes.md",
        ),
        ("Read", json!({"file_path": "notes.md"}), "alpha"),
        (
            "Edit",
            json!({"file_path": "notes.md", "old_string": "beta", "new_string": "gamma"}),
            "notes.md",
        ),
        (
            "MultiEdit",
            json!({"file_path": "notes.md", "edits": [{"old_string": "alpha", "new_string": "ALPHA"}]}),
            "notes.md",
        ),
        ("Grep", json!({"pattern": "gamma", "output_mode": "content"}), "gamma"),
        ("Glob", json!({"pattern": "*.md"}), "notes.md"),
        ("LS", json!({"path": "."}), "sub/"),
        (
            "TodoWrite",
            json!({"todos": [{"content": "ship it", "status": "pending"}]}),
            "ship it",
        ),
        ("SetWorkingDirectory", json!({"path": "sub"}), "sub"),
        ("Bash", json!({"command": "pwd", "description": "where"}), "/sub"),
    ];
    for (index, (name, args, expected)) in calls.iter().enumerate() {
        let mut input = user_input(
            &format!("in-{index}"),
            &runtime,
            &tool(name, args.clone()),
            &format!("cm-{index}"),
        );
        input["payload"]["client_toolset"] = include.clone();
        client.send(input).await;
        let frames = client.recv_until_type("turn_finished").await;
        let result = frames
            .iter()
            .rev()
            .find(|f| f["delta"]["message_type"] == "tool_return_message")
            .expect("a result");
        let text = result["delta"]["tool_return"].as_str().unwrap();
        assert_eq!(result["delta"]["status"], "success", "{name}: {text}");
        assert!(text.contains(expected), "{name}: {text}");
    }
    assert_eq!(std::fs::read_to_string(dir.join("notes.md")).unwrap(), "ALPHA\ngamma\n");
    let device = client
        .received
        .iter()
        .rev()
        .find(|f| f["type"] == "update_device_status")
        .unwrap();
    assert!(
        device["device_status"]["current_working_directory"]
            .as_str()
            .unwrap()
            .ends_with("/sub")
    );

    // AskUserQuestion always asks; the controller answers through updated_input.
    let question =
        json!({"questions": [{"question": "Which color?", "options": [{"label": "red"}, {"label": "blue"}]}]});
    client
        .send(user_input(
            "in-ask",
            &runtime,
            &tool("AskUserQuestion", question.clone()),
            "cm-ask",
        ))
        .await;
    let asked = client.recv_until_type("control_request").await.pop().unwrap();
    assert_eq!(asked["request"]["permission_suggestions"], json!([]));
    let mut answered = question;
    answered["answers"] = json!({"Which color?": "blue"});
    client
        .send(approve(
            asked["request_id"].as_str().unwrap(),
            &runtime,
            json!({"behavior": "allow", "updated_input": answered}),
        ))
        .await;
    let frames = client.recv_until_type("turn_finished").await;
    let result = frames
        .iter()
        .rev()
        .find(|f| f["delta"]["message_type"] == "tool_return_message")
        .unwrap();
    assert!(
        result["delta"]["tool_return"].as_str().unwrap().contains("blue"),
        "{result}"
    );
}
