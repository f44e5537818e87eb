//! Background work of a conversation besides subagents (docs/protocol.md §4.16): `Bash` with
//! `run_in_background`, `Monitor` and `monitor_stop`, `TaskOutput` and `TaskStop`; each listed
//! in `device_status.background_processes` while it runs, its end reported as a task
//! notification.

use serde_json::{Value, json};

use crate::support::TestServer;
use crate::support::drive::{ask, directive, last_of, text, tool_returns, turns};
use crate::support::wire::start_runtime;

#[tokio::test]
async fn a_background_command_is_listed_while_it_runs_and_reports_its_end() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let runtime = start_runtime(&mut client).await;
    let bash = directive(
        "Bash",
        json!({"command": "echo one; sleep 0.3; echo two >&2; exit 3", "description": "count",
            "run_in_background": true}),
    );
    let frames = turns(&mut client, &runtime, &bash, 1, 2).await;
    let receipt = tool_returns(&frames)[0];
    assert!(
        receipt.starts_with("Command running in background with ID: bash_1\nOutput file: "),
        "{receipt}"
    );
    let listed = frames
        .iter()
        .filter_map(|f| f["device_status"]["background_processes"].as_array())
        .find_map(|processes| processes.first())
        .expect("a bash process");
    assert_eq!(
        (
            &listed["kind"],
            &listed["process_id"],
            &listed["status"],
            &listed["exit_code"]
        ),
        (&json!("bash"), &json!("bash_1"), &json!("running"), &json!(null))
    );
    let queued = frames
        .iter()
        .filter(|f| f["type"] == "update_queue")
        .find_map(|f| f["queue"].as_array().and_then(|q| q.first()).cloned())
        .expect("the notification item");
    assert_eq!(queued["kind"], "task_notification");
    let notification = text(&queued["content"]);
    assert!(
        notification.starts_with(
            "<task-notification>\n<task-id>bash_1</task-id>\n<status>failed</status>\n\
             <summary>Background command \"count\" failed</summary>\n<result>$ echo one; sleep 0.3; echo two &gt;&amp;2; exit 3\n\none\ntwo\nExit code 3</result>\n<usage>duration_ms: "
        ),
        "{notification}"
    );
    let output = receipt.rsplit_once("Output file: ").expect("a path").1;
    assert_eq!(
        std::fs::read_to_string(output).unwrap(),
        "one\n[stderr] two\n[failed] Exit code 3\n"
    );
    let last_device = last_of(&frames, "update_device_status");
    assert_eq!(last_device["device_status"]["background_processes"], json!([]));

    // Ended, it is still readable for a while.
    let output = directive("TaskOutput", json!({"task_id": "bash_1", "block": false, "timeout": 0}));
    let frames = turns(&mut client, &runtime, &output, 2, 1).await;
    let read: Value = serde_json::from_str(tool_returns(&frames)[0]).unwrap();
    assert_eq!(
        (&read["status"], &read["message"]),
        (&json!("failed"), &json!("one\ntwo\nExit code 3"))
    );
}

#[tokio::test]
async fn task_output_and_task_stop_reach_a_background_command() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let runtime = start_runtime(&mut client).await;
    let bash = directive(
        "Bash",
        json!({"command": "echo started; sleep 30", "description": "wait", "run_in_background": true}),
    );
    let output = directive(
        "TaskOutput",
        // Long enough for the command to have printed, however loaded the machine.
        json!({"task_id": "bash_1", "block": true, "timeout": 1500}),
    );
    let stop = directive("TaskStop", json!({"task_id": "bash_1"}));
    let again = directive("TaskStop", json!({"task_id": "bash_1"}));
    let frames = turns(&mut client, &runtime, &format!("{bash} {output} {stop} {again}"), 1, 1).await;
    let results = tool_returns(&frames);
    let read: Value = serde_json::from_str(results[1]).unwrap();
    assert_eq!(
        (&read["status"], &read["message"]),
        (&json!("running"), &json!("started\n"))
    );
    assert_eq!(&results[2..], [r#"{"killed":true}"#, r#"{"killed":false}"#]);
    // Stopped: it is no longer listed (its end may come before or after the turn's), and no
    // notification follows.
    let mut frames = frames;
    while let Ok(frame) = tokio::time::timeout(std::time::Duration::from_millis(500), client.recv()).await {
        frames.push(frame);
    }
    let last_device = last_of(&frames, "update_device_status");
    assert_eq!(last_device["device_status"]["background_processes"], json!([]));
    assert_eq!(notifications(&frames), Vec::<String>::new());
}

/// The contents of the `task_notification` items queued among `frames`, each once, in order.
fn notifications(frames: &[Value]) -> Vec<String> {
    let mut seen: Vec<(String, String)> = Vec::new();
    for item in frames
        .iter()
        .filter(|f| f["type"] == "update_queue")
        .flat_map(|f| f["queue"].as_array().cloned().unwrap_or_default())
    {
        let id = text(&item["id"]).to_owned();
        if item["kind"] == "task_notification" && !seen.iter().any(|(known, _)| *known == id) {
            seen.push((id, text(&item["content"]).to_owned()));
        }
    }
    seen.into_iter().map(|(_, content)| content).collect()
}

#[tokio::test]
async fn a_monitor_sends_each_burst_of_lines_as_an_event_then_its_end() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let runtime = start_runtime(&mut client).await;
    let monitor = directive(
        "Monitor",
        json!({"description": "letters", "command": "printf 'a\\nb\\n'; sleep 0.6; echo '<c>'"}),
    );
    client
        .send(crate::support::wire::user_input("in-1", &runtime, &monitor, "cm-1"))
        .await;
    let frames = client
        .recv_until(|f| {
            f["type"] == "update_queue"
                && (f["queue"].as_array().into_iter().flatten())
                    .any(|item| item["content"].as_str().is_some_and(|c| c.contains("stream ended")))
        })
        .await;
    let receipt = tool_returns(&frames)[0];
    assert!(
        receipt.starts_with("Monitor started (task monitor_1, timeout 300000ms). "),
        "{receipt}"
    );
    let listed = frames
        .iter()
        .filter_map(|f| f["device_status"]["background_processes"].as_array())
        .find_map(|processes| processes.first())
        .expect("the monitor listed");
    assert_eq!(
        (
            &listed["kind"],
            &listed["process_id"],
            &listed["source"],
            &listed["persistent"]
        ),
        (&json!("monitor"), &json!("monitor_1"), &json!("command"), &json!(false))
    );
    let sent = notifications(&frames);
    let event = |lines: &str| {
        format!(
            "<task-notification>\n<task-id>monitor_1</task-id>\n<summary>Monitor event: \"letters\"</summary>\n\
             <result>\n<event>{lines}</event>\n</result>\n</task-notification>"
        )
    };
    assert_eq!(sent[..2], [event("a\nb"), event("&lt;c&gt;")]);
    assert!(
        sent[2].starts_with(
            "<task-notification>\n<task-id>monitor_1</task-id>\n<status>completed</status>\n\
             <summary>Monitor \"letters\" stream ended</summary>\n<result>Exit code: 0</result>\n"
        ),
        "{}",
        sent[2]
    );
}

#[tokio::test]
async fn monitor_stop_stops_a_monitor_of_its_conversation_only() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let runtime = start_runtime(&mut client).await;
    let monitor = directive(
        "Monitor",
        json!({"description": "quiet", "command": "sleep 30", "persistent": true}),
    );
    let frames = turns(&mut client, &runtime, &monitor, 1, 1).await;
    let receipt = tool_returns(&frames)[0];
    assert!(
        receipt.starts_with("Monitor started (task monitor_1, persistent: runs until TaskStop or the server stops)."),
        "{receipt}"
    );
    let stop = |request_id: &str, runtime: &Value, process_id: &str| json!({"type": "monitor_stop", "request_id": request_id, "runtime": runtime, "process_id": process_id});
    let unknown = ask(&mut client, stop("ms-1", &runtime, "monitor_9")).await;
    assert_eq!(
        (&unknown["success"], &unknown["error"]),
        (&json!(false), &json!("Monitor not found"))
    );
    let other = json!({"agent_id": runtime["agent_id"], "conversation_id": "default"});
    let elsewhere = ask(&mut client, stop("ms-2", &other, "monitor_1")).await;
    assert_eq!(elsewhere["error"], "Monitor does not belong to this conversation");
    let stopped = ask(&mut client, stop("ms-3", &runtime, "monitor_1")).await;
    assert_eq!(
        stopped,
        json!({"type": "monitor_stop_response", "request_id": "ms-3", "runtime": runtime,
            "process_id": "monitor_1", "success": true, "stopped": true})
    );
    // The model hears of it (a turn starts), and no other notification follows.
    let mut after = client.recv_until_type("turn_finished").await;
    while let Ok(frame) = tokio::time::timeout(std::time::Duration::from_millis(300), client.recv()).await {
        after.push(frame);
    }
    let sent = notifications(&after);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(
        sent[0].contains("<event>The user cancelled this Monitor. Do not restart it unless the user asks.</event>"),
        "{}",
        sent[0]
    );
    let last_device = last_of(&after, "update_device_status");
    assert_eq!(last_device["device_status"]["background_processes"], json!([]));
}
