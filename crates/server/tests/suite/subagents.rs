//! Subagents (docs/protocol.md §3.14, §4.16): the `Agent` tool and `launch_subagent` start a
//! subagent on a conversation of its own; its messages reach the parent's subscribers as
//! `stream_delta`s with `subagent_id`, its state as `update_subagent_state`, and a background
//! one ends with a `task_notification` turn on the parent.

use serde_json::{Value, json};

use crate::support::TestServer;
use crate::support::drive::{ask, directive, items, last_of, text, tool_returns, turns};
use crate::support::wire::start_runtime;

/// The subagent deltas among `frames`, as `message_type` lines.
fn subagent_deltas(frames: &[Value]) -> Vec<String> {
    frames
        .iter()
        .filter(|f| f["type"] == "stream_delta" && f.get("subagent_id").is_some())
        .map(|f| text(&f["delta"]["message_type"]).to_owned())
        .collect()
}

/// The statuses the parent's snapshots show for its first subagent, without repeats.
fn statuses(frames: &[Value]) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    for frame in frames.iter().filter(|f| f["type"] == "update_subagent_state") {
        if let Some(status) = frame["subagents"][0]["status"].as_str()
            && seen.last().map(String::as_str) != Some(status)
        {
            seen.push(status.to_owned());
        }
    }
    seen
}

#[tokio::test]
async fn a_background_subagent_streams_to_the_parent_and_reports_back_in_a_new_turn() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let runtime = start_runtime(&mut client).await;
    // The subagent works where its parent works.
    let project = server.data.path().join("project");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::write(project.join("NOTES.md"), "notes").unwrap();
    client
        .send(json!({"type": "change_device_state", "runtime": runtime, "payload": {"cwd": project}}))
        .await;
    client.recv_until_type("update_device_status").await;
    let agent = directive(
        "Agent",
        json!({"description": "find notes", "subagent_type": "explore",
            "prompt": format!("Find the notes. {}", directive("Glob", json!({"pattern": "*.md"})))}),
    );
    // The parent's turn, then the turn of the notification that ends its subagent.
    let frames = turns(&mut client, &runtime, &format!("Delegate. {agent}"), 1, 2).await;

    let receipt = tool_returns(&frames)[0];
    assert!(
        receipt.starts_with("Task running in background with task ID: task_1\nAgent ID: agent-"),
        "{receipt}"
    );

    // The subagent's work, in the parent's scope: its Glob call, the result, its report.
    let deltas = subagent_deltas(&frames);
    assert_eq!(
        deltas.iter().filter(|t| *t == "tool_call_message").count(),
        1,
        "{deltas:?}"
    );
    assert!(deltas.contains(&"tool_return_message".to_owned()), "{deltas:?}");
    assert!(deltas.contains(&"assistant_message".to_owned()), "{deltas:?}");
    assert!(
        !deltas.iter().any(|t| t.starts_with("approval")),
        "nobody is asked: {deltas:?}"
    );
    let forwarded: Vec<&Value> = frames.iter().filter(|f| f.get("subagent_id").is_some()).collect();
    for frame in &forwarded {
        assert_eq!(frame["runtime"], runtime, "under the parent's scope");
        assert_eq!(frame["delta"]["type"], "message");
    }
    let call = forwarded
        .iter()
        .find(|f| f["delta"]["message_type"] == "tool_call_message")
        .expect("the call");
    assert_eq!(call["delta"]["tool_call"]["name"], "Glob");

    assert_eq!(statuses(&frames), ["pending", "running", "completed"]);
    let last = last_of(&frames, "update_subagent_state");
    let entry = &last["subagents"][0];
    assert_eq!(entry["subagent_type"], "explore");
    assert_eq!(entry["description"], "find notes");
    assert_eq!(entry["is_background"], true);
    assert_eq!(entry["parent_agent_id"], runtime["agent_id"]);
    assert_eq!(entry["parent_conversation_id"], runtime["conversation_id"]);
    assert_eq!(entry["agent_url"], call["delta"]["agent_id"]);
    assert_eq!(entry["conversation_id"], call["delta"]["conversation_id"]);
    assert_eq!(entry["tool_calls"][0]["name"], "Glob");
    assert!(entry["total_tokens"].as_u64().unwrap() > 0, "{entry}");
    assert!(entry["subagent_id"].as_str().unwrap().starts_with("subagent-"));

    // While it ran, the parent's device status listed it.
    let process = frames
        .iter()
        .filter_map(|f| f["device_status"]["background_processes"].as_array())
        .find_map(|processes| processes.first())
        .expect("an agent_task");
    assert_eq!(process["kind"], "agent_task");
    assert_eq!(process["process_id"], "task_1");
    assert_eq!(process["task_type"], "explore");
    assert_eq!(process["subagent_id"], entry["subagent_id"]);

    // Its report came back as a task notification, which started a turn of the parent.
    let queued = frames
        .iter()
        .filter(|f| f["type"] == "update_queue")
        .find_map(|f| f["queue"].as_array().and_then(|q| q.first()).cloned())
        .expect("the notification item");
    assert_eq!(queued["kind"], "task_notification");
    assert_eq!(queued["source"], "task_notification");
    let notification = text(&queued["content"]);
    assert!(notification.starts_with("<task-notification>\n<task-id>task_1</task-id>\n<status>completed</status>\n<summary>Agent \"find notes\" completed</summary>\n<result>subagent_type=explore subagent_id=subagent-"), "{notification}");
    assert!(
        notification.contains("NOTES.md"),
        "the report lists what it found: {notification}"
    );
    assert!(notification.contains("\ntool_uses: 1\n"), "{notification}");
    assert!(
        notification.contains("\nFull transcript available at: "),
        "{notification}"
    );
    let echo = frames
        .iter()
        .find(|f| f["delta"]["message_type"] == "user_message")
        .expect("the notification's turn");
    assert_eq!(echo["delta"]["content"], queued["content"]);

    // The subagent's agent is hidden from agent lists, as Letta's are.
    let agents = ask(&mut client, json!({"type": "agent_list", "request_id": "al"})).await;
    assert_eq!(items(&agents["agents"]).len(), 1, "{agents}");
}

#[tokio::test]
async fn a_foreground_subagent_returns_its_report_and_depth_is_bounded() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let runtime = start_runtime(&mut client).await;
    // Three levels: the conversation's subagent launches one, which cannot launch another.
    let third = directive(
        "Agent",
        json!({"description": "third", "prompt": "too deep", "subagent_type": "explore"}),
    );
    // A subagent's own subagent runs in the foreground even when asked for the background.
    let second = directive(
        "Agent",
        json!({"description": "second", "prompt": format!("Go on. {third}"),
            "subagent_type": "general-purpose", "run_in_background": true}),
    );
    let first = directive(
        "Agent",
        json!({"description": "first", "prompt": format!("Delegate. {second}"),
            "subagent_type": "general-purpose", "run_in_background": false}),
    );
    let frames = turns(&mut client, &runtime, &format!("Start. {first}"), 1, 1).await;
    let report = tool_returns(&frames)[0];
    assert!(
        report.starts_with("subagent_type=general-purpose subagent_id=subagent-"),
        "{report}"
    );
    assert!(report.contains(" subagent_status=success agent_id=agent-"), "{report}");
    assert!(
        report.contains("Unknown tool: Agent"),
        "the deepest has no Agent tool: {report}"
    );
    let output = report.rsplit_once("\nOutput file: ").expect("the output file").1;
    let transcript = std::fs::read_to_string(output).unwrap();
    let last: Value = serde_json::from_str(transcript.lines().last().unwrap()).unwrap();
    assert_eq!(last["type"], "result");
    assert_eq!(last["subtype"], "success");

    // The first subagent's deltas reach the conversation; its own subagent's reach it.
    let first_ids: Vec<&str> = frames
        .iter()
        .filter_map(|f| f["subagent_id"].as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(
        first_ids.len(),
        1,
        "only the direct subagent streams here: {first_ids:?}"
    );
    let snapshot = last_of(&frames, "update_subagent_state");
    assert_eq!(items(&snapshot["subagents"]).len(), 1);
    assert_eq!(snapshot["subagents"][0]["is_background"], false);
    assert_eq!(snapshot["subagents"][0]["status"], "completed");
    assert!(
        !frames
            .iter()
            .any(|f| f["type"] == "update_queue" && !items(&f["queue"]).is_empty()),
        "a foreground subagent sends no notification"
    );
}

#[tokio::test]
async fn task_stop_stops_a_background_subagent_without_a_notification() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let runtime = start_runtime(&mut client).await;
    let agent = directive(
        "Agent",
        json!({"description": "slow", "prompt": "[[deltas: 200]] [[delay: 50]]", "subagent_type": "explore"}),
    );
    let stop = directive("TaskStop", json!({"task_id": "task_1"}));
    let output = directive(
        "TaskOutput",
        json!({"task_id": "task_1", "block": true, "timeout": 5000}),
    );
    let frames = turns(&mut client, &runtime, &format!("{agent} {stop} {output}"), 1, 1).await;
    let results = tool_returns(&frames);
    assert_eq!(results[1], r#"{"killed":true}"#);
    let output: Value = serde_json::from_str(results[2]).unwrap();
    assert_eq!(output["status"], "failed");
    assert!(
        text(&output["message"]).ends_with("\n\nError: Aborted by user"),
        "{output}"
    );

    let snapshot = last_of(&frames, "update_subagent_state");
    let entry = &snapshot["subagents"][0];
    assert_eq!(entry["status"], "error");
    assert_eq!(entry["error"], "Aborted by user");
    client.expect_silence(std::time::Duration::from_millis(300)).await;
}

#[tokio::test]
async fn launch_subagent_answers_with_the_task_and_notify_caller_puts_the_report_in_the_snapshot() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let runtime = start_runtime(&mut client).await;

    let refused = ask(
        &mut client,
        json!({"type": "launch_subagent", "request_id": "ls-0", "runtime": runtime,
            "args": {"prompt": "p", "description": "d", "subagent_type": "nope"}}),
    )
    .await;
    assert_eq!(refused["success"], false);
    assert_eq!(
        refused["error"],
        "Invalid subagent type \"nope\". Available types: general-purpose, explore"
    );

    client
        .send(
            json!({"type": "launch_subagent", "request_id": "ls-b", "runtime": runtime,
            "args": {"prompt": " ", "description": "d"}}),
        )
        .await;
    let blank = client.recv().await;
    assert_eq!(
        (&blank["type"], &blank["code"]),
        (&json!("error"), &json!("invalid_frame"))
    );
    assert!(text(&blank["message"]).contains("args.prompt"), "{blank}");

    client
        .send(json!({"type": "launch_subagent", "request_id": "ls-1", "runtime": runtime,
            "tool_call_id": "call-ext-1", "notify": "caller",
            "args": {"prompt": "Report [[reply: all clear]]", "description": "check", "client_message_id": "cm-sub-1"}}))
        .await;
    let frames = client
        .recv_until(|f| f["type"] == "update_subagent_state" && f["subagents"][0]["status"] == "completed")
        .await;
    let answer = frames
        .iter()
        .find(|f| f["type"] == "launch_subagent_response")
        .expect("the answer");
    assert_eq!(answer["success"], true, "{answer}");
    assert_eq!(answer["task_id"], "task_1");
    assert_eq!(answer["runtime"], runtime);
    assert!(text(&answer["agent_id"]).starts_with("agent-"));
    assert!(text(&answer["conversation_id"]).starts_with("conv-"));
    assert!(std::path::Path::new(text(&answer["output_file"])).exists());

    let entry = &frames.last().unwrap()["subagents"][0];
    assert_eq!(entry["tool_call_id"], "call-ext-1");
    assert_eq!(entry["subagent_type"], "general-purpose");
    assert_eq!(entry["conversation_id"], answer["conversation_id"]);
    assert!(text(&entry["result"]).ends_with("\n\nall clear"), "{entry}");
    let deltas = subagent_deltas(&frames);
    assert!(deltas.contains(&"assistant_message".to_owned()), "{deltas:?}");
    assert!(
        !frames.iter().any(|f| f["type"] == "turn_finished"),
        "no turn of the parent starts"
    );
    // The parent's background processes were shown with it, and are shown without it now.
    let running = frames
        .iter()
        .find(|f| f["type"] == "update_device_status")
        .expect("a device status while it ran");
    assert_eq!(
        running["device_status"]["background_processes"][0]["process_id"],
        "task_1"
    );
    let after = client.recv_until_type("update_device_status").await;
    assert_eq!(
        after.last().unwrap()["device_status"]["background_processes"],
        json!([])
    );
    client.expect_silence(std::time::Duration::from_millis(300)).await;

    // The subagent's conversation holds its work.
    let messages = ask(
        &mut client,
        json!({"type": "conversation_messages_list", "request_id": "ml", "conversation_id": answer["conversation_id"]}),
    )
    .await;
    let listed = serde_json::to_string(&messages).unwrap();
    assert!(listed.contains("all clear"), "{listed}");
}

#[tokio::test]
async fn a_subagent_goes_on_when_a_watcher_of_its_conversation_leaves() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let runtime = start_runtime(&mut client).await;
    let launched = ask(
        &mut client,
        json!({"type": "launch_subagent", "request_id": "ls-1", "runtime": runtime,
            "args": {"prompt": "[[deltas: 20]] [[delay: 20]]", "description": "slow"}}),
    )
    .await;
    assert_eq!(launched["success"], true, "{launched}");
    // Another client opens the subagent's conversation, then leaves.
    let mut watcher = server.client().await;
    watcher
        .send(
            json!({"type": "runtime_start", "request_id": "rs-w", "agent_id": launched["agent_id"],
            "conversation_id": launched["conversation_id"]}),
        )
        .await;
    let joined = watcher.recv_until_type("runtime_start_response").await;
    assert_eq!(joined.last().unwrap()["success"], true, "{joined:?}");
    watcher.close().await;
    let frames = client
        .recv_until(|f| f["type"] == "update_subagent_state" && f["subagents"][0]["status"] != "running")
        .await;
    let entry = &frames.last().unwrap()["subagents"][0];
    assert_eq!(entry["status"], "completed", "{entry}");
}
