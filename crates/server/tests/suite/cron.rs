//! Scheduled prompts (docs/protocol.md §4.4) on a clock the tests move: tasks added, changed,
//! paused and deleted; a one-off prompt that fires once into its conversation, then is cleaned
//! up a day later; the misses of a server that was down, recorded after its restart.

use std::sync::Arc;
use std::time::Duration;

use letta_app_server::{CronClock, ManualClock};
use serde_json::{Value, json};

use crate::support::TestServer;
use crate::support::drive::{self, ask};
use crate::support::wire::{Client, start_runtime};

/// A server whose scheduler goes by a clock set to `at`.
async fn server_at(at: &str) -> (TestServer, Arc<ManualClock>) {
    let (clock, manual) = CronClock::manual(at.parse().expect("a time"));
    let server = TestServer::start_with(|config| config.cron_clock = clock).await;
    (server, manual)
}

fn add(agent: &Value, fields: Value) -> Value {
    let mut frame = json!({"type": "cron_add", "request_id": "ca", "agent_id": agent, "name": "Ping",
        "description": "", "cron": "* * * * *", "timezone": "UTC", "recurring": false,
        "prompt": "Say pong [[reply: pong]]"});
    let fields = fields.as_object().expect("fields").clone();
    frame.as_object_mut().expect("an object").extend(fields);
    frame
}

async fn get(client: &mut Client, id: &Value) -> Value {
    let answer = ask(client, json!({"type": "cron_get", "request_id": "cg", "task_id": id})).await;
    answer["task"].clone()
}

#[tokio::test]
async fn a_prompt_scheduled_a_minute_ahead_fires_once_into_its_conversation() {
    let (server, clock) = server_at("2026-12-04T10:00:30Z").await;
    let mut client = server.client().await;
    let runtime = start_runtime(&mut client).await;
    let agent = runtime["agent_id"].clone();
    client
        .send(add(
            &agent,
            json!({"conversation_id": runtime["conversation_id"],
            "scheduled_for": "2026-12-04T10:01:00Z"}),
        ))
        .await;
    let frames = client.recv_until_type("crons_updated").await;
    let [.., added, updated] = frames.as_slice() else {
        panic!("{frames:?}")
    };
    let task = added["task"].clone();
    assert_eq!(added["success"], true, "{added}");
    assert_eq!(
        (
            &task["status"],
            &task["scheduled_for"],
            &task["created_at"],
            &task["fire_count"],
            &task["jitter_offset_ms"]
        ),
        (
            &json!("active"),
            &json!("2026-12-04T10:01:00.000Z"),
            &json!("2026-12-04T10:00:30.000Z"),
            &json!(0),
            &json!(0)
        )
    );
    assert_eq!(task["id"].as_str().unwrap().len(), 8);
    assert_eq!(
        (&updated["agent_id"], &updated["conversation_id"]),
        (&agent, &runtime["conversation_id"])
    );
    client.expect_silence(Duration::from_millis(100)).await;

    clock.set("2026-12-04T10:01:00Z".parse().unwrap());
    let turn = client.recv_until_type("turn_finished").await;
    let queued = turn
        .iter()
        .find(|f| f["type"] == "update_queue" && !f["queue"].as_array().unwrap().is_empty())
        .expect("the prompt queued");
    let item = &queued["queue"][0];
    assert_eq!(
        (&item["kind"], &item["source"]),
        (&json!("cron_prompt"), &json!("cron"))
    );
    let text = item["content"].as_str().expect("the prompt text");
    assert!(
        text.starts_with(
            "Scheduled task \"Ping\" is firing.\nTimezone: UTC\nScheduled for: 2026-12-04T10:01:00.000+00:00[UTC]\n"
        ),
        "{text}"
    );
    assert!(text.ends_with("This is a one-off scheduled task.\n\nYou are running autonomously: no user is watching this turn and questions will not be answered. Deliver results through your available channels or record them in memory, and work until the task is done or genuinely blocked.\n\nPrompt: Say pong [[reply: pong]]"), "{text}");
    assert!(
        turn.iter()
            .any(|f| f["delta"]["message_type"] == "assistant_message"
                && f["delta"]["content"].to_string().contains("pong")),
        "the agent answered the prompt"
    );
    let fired = get(&mut client, &task["id"]).await;
    assert_eq!(
        (
            &fired["status"],
            &fired["fire_count"],
            &fired["fired_at"],
            &fired["last_run_outcome"],
            &fired["last_run_reason"]
        ),
        (
            &json!("fired"),
            &json!(1),
            &json!("2026-12-04T10:01:00.000Z"),
            &json!("queued"),
            &json!("one_off_due")
        )
    );

    // It fired once: later minutes bring nothing.
    for minute in ["2026-12-04T10:02:00Z", "2026-12-04T10:03:00Z"] {
        clock.set(minute.parse().unwrap());
    }
    client.expect_silence(Duration::from_millis(200)).await;
    let runs = ask(
        &mut client,
        json!({"type": "cron_runs", "request_id": "cr", "task_id": task["id"]}),
    )
    .await;
    let page = &runs["page"];
    assert_eq!(
        (&page["total"], &page["hasMore"], &page["nextOffset"]),
        (&json!(1), &json!(false), &json!(null))
    );
    assert_eq!(
        (
            &page["entries"][0]["status"],
            &page["entries"][0]["outcome"],
            &page["entries"][0]["conversationId"]
        ),
        (&json!("ok"), &json!("queued"), &runtime["conversation_id"])
    );

    // A day after it ended, the scheduler's hourly clean-up deletes it, as real Letta's does.
    clock.set("2026-12-05T10:02:00Z".parse().unwrap());
    let cleaned = client.recv_until_type("crons_updated").await;
    assert_eq!(cleaned.last().unwrap()["agent_id"], agent);
    let gone = ask(
        &mut client,
        json!({"type": "cron_get", "request_id": "cg", "task_id": task["id"]}),
    )
    .await;
    assert_eq!((&gone["found"], &gone["task"]), (&json!(false), &json!(null)));
}

#[tokio::test]
async fn fires_missed_while_the_server_was_down_are_recorded_after_its_restart() {
    let (mut server, clock) = server_at("2026-12-04T10:00:30Z").await;
    let mut client = server.client().await;
    let runtime = start_runtime(&mut client).await;
    let agent = runtime["agent_id"].clone();
    let one_off = ask(
        &mut client,
        add(&agent, json!({"scheduled_for": "2026-12-04T10:05:00Z"})),
    )
    .await["task"]
        .clone();
    let every_ten = ask(
        &mut client,
        add(
            &agent,
            json!({"name": "Tick", "cron": "*/10 * * * *", "recurring": true}),
        ),
    )
    .await["task"]
        .clone();
    assert_eq!(every_ten["conversation_id"], "new");
    client.close().await;

    // Two hours pass while the server is down.
    server.stop().await;
    clock.set("2026-12-04T12:00:30Z".parse().unwrap());
    server.restart().await;
    let mut client = server.client().await;
    let mut missed = Value::Null;
    for _ in 0..50 {
        missed = get(&mut client, &one_off["id"]).await;
        if missed["status"] == "missed" && get(&mut client, &every_ten["id"]).await["fire_count"] == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        (
            &missed["status"],
            &missed["missed_count"],
            &missed["last_run_outcome"],
            &missed["last_run_reason"]
        ),
        (
            &json!("missed"),
            &json!(1),
            &json!("missed"),
            &json!("scheduler_inactive")
        )
    );
    assert_eq!(missed["last_missed_at"], "2026-12-04T10:05:00.000Z");
    // 10:10 to 11:50 were missed; 12:00 is thirty seconds old, and runs.
    let ticked = get(&mut client, &every_ten["id"]).await;
    assert_eq!(
        (
            &ticked["status"],
            &ticked["missed_count"],
            &ticked["fire_count"],
            &ticked["last_run_outcome"]
        ),
        (&json!("active"), &json!(11), &json!(1), &json!("queued"))
    );
    let runs = ask(
        &mut client,
        json!({"type": "cron_runs", "request_id": "cr", "task_id": every_ten["id"]}),
    )
    .await;
    let entries = runs["page"]["entries"].as_array().unwrap();
    let summary: Vec<(&Value, &Value)> = entries.iter().map(|e| (&e["outcome"], &e["missedCount"])).collect();
    assert_eq!(
        summary,
        [(&json!("queued"), &Value::Null), (&json!("missed"), &json!(11))]
    );
    // Its prompt ran in a new conversation of the agent, watched by nobody.
    let conversation = entries[0]["conversationId"].as_str().unwrap().to_owned();
    assert!(conversation.starts_with("conv-"), "{conversation}");
    let mut messages = Value::Null;
    for _ in 0..100 {
        messages = drive::call(
            &mut client,
            json!({"type": "conversation_messages_list", "conversation_id": conversation}),
        )
        .await;
        if messages["messages"].as_array().is_some_and(|m| m.len() >= 2) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(messages.to_string().contains("pong"), "{messages}");
}

#[tokio::test]
async fn tasks_are_listed_changed_paused_and_deleted() {
    let (server, clock) = server_at("2026-12-04T10:00:30Z").await;
    let mut client = server.client().await;
    let runtime = start_runtime(&mut client).await;
    let agent = runtime["agent_id"].clone();
    let refusals = [
        (
            add(&agent, json!({"cron": "0 9 * * MON"})),
            "Invalid cron expression \"0 9 * * MON\". Schedule was not saved.",
        ),
        (
            add(&agent, json!({"scheduled_for": "tomorrow"})),
            "Invalid scheduled_for timestamp",
        ),
        (add(&json!("agent-nobody"), json!({})), "Agent agent-nobody not found"),
    ];
    for (frame, error) in refusals {
        let answer = ask(&mut client, frame).await;
        assert_eq!(
            answer,
            json!({"type": "cron_add_response", "request_id": "ca", "success": false, "error": error})
        );
    }
    let task = ask(
        &mut client,
        add(&agent, json!({"recurring": true, "cron": "0 9 * * 1-5"})),
    )
    .await["task"]
        .clone();
    let id = task["id"].clone();
    let listed = ask(
        &mut client,
        json!({"type": "cron_list", "request_id": "cl", "agent_id": agent}),
    )
    .await;
    assert_eq!(listed["tasks"], json!([task]));
    let none = ask(
        &mut client,
        json!({"type": "cron_list", "request_id": "cl", "conversation_id": "default"}),
    )
    .await;
    assert_eq!(none["tasks"], json!([]));

    let updated = ask(
        &mut client,
        json!({"type": "cron_update", "request_id": "cu", "task_id": id, "name": "Standup", "cron": "*/15 * * * *"}),
    )
    .await;
    assert_eq!(
        (&updated["task"]["name"], &updated["task"]["cron"]),
        (&json!("Standup"), &json!("*/15 * * * *"))
    );
    let bad = ask(
        &mut client,
        json!({"type": "cron_update", "request_id": "cu", "task_id": id, "cron": "nope"}),
    )
    .await;
    assert_eq!(
        bad["error"],
        "Invalid cron expression \"nope\". Schedule was not saved."
    );
    let missing = ask(
        &mut client,
        json!({"type": "cron_update", "request_id": "cu", "task_id": "ffffffff"}),
    )
    .await;
    assert_eq!(
        missing,
        json!({"type": "cron_update_response", "request_id": "cu", "success": false, "error": "Cron task not found"})
    );

    // Paused, it does not fire; resumed, it does.
    let paused = ask(
        &mut client,
        json!({"type": "cron_pause", "request_id": "cp", "task_id": id}),
    )
    .await;
    assert_eq!(
        (&paused["found"], &paused["task"]["status"]),
        (&json!(true), &json!("paused"))
    );
    let announced = client.recv().await;
    assert_eq!(
        (&announced["type"], &announced["agent_id"]),
        (&json!("crons_updated"), &agent),
        "after the answer"
    );
    clock.set("2026-12-04T10:15:00Z".parse().unwrap());
    client.expect_silence(Duration::from_millis(150)).await;
    let resumed = ask(
        &mut client,
        json!({"type": "cron_resume", "request_id": "cr", "task_id": id}),
    )
    .await;
    assert_eq!(resumed["task"]["status"], "active");
    assert_eq!(get(&mut client, &id).await["fire_count"], 0);

    // A manual run fires at once and leaves a one-off task active.
    let one_off = ask(
        &mut client,
        add(&agent, json!({"scheduled_for": "2026-12-05T10:00:00Z"})),
    )
    .await["task"]
        .clone();
    let triggered = ask(
        &mut client,
        json!({"type": "cron_trigger", "request_id": "ct", "task_id": one_off["id"]}),
    )
    .await;
    assert_eq!(
        (
            &triggered["success"],
            &triggered["task"]["status"],
            &triggered["task"]["fire_count"]
        ),
        (&json!(true), &json!("active"), &json!(1))
    );
    let unknown = ask(
        &mut client,
        json!({"type": "cron_trigger", "request_id": "ct", "task_id": "ffffffff"}),
    )
    .await;
    assert_eq!(
        unknown,
        json!({"type": "cron_trigger_response", "request_id": "ct", "success": false, "found": false, "error": "Schedule not found"})
    );

    let deleted = ask(
        &mut client,
        json!({"type": "cron_delete", "request_id": "cd", "task_id": id}),
    )
    .await;
    assert_eq!(
        deleted,
        json!({"type": "cron_delete_response", "request_id": "cd", "success": true, "found": true})
    );
    let again = ask(
        &mut client,
        json!({"type": "cron_delete", "request_id": "cd", "task_id": id}),
    )
    .await;
    assert_eq!(again["found"], false);
    let all = ask(
        &mut client,
        json!({"type": "cron_delete_all", "request_id": "cda", "agent_id": agent}),
    )
    .await;
    assert_eq!(
        all,
        json!({"type": "cron_delete_all_response", "request_id": "cda", "success": true, "agent_id": agent, "deleted": 1})
    );
    let gone = ask(
        &mut client,
        json!({"type": "cron_get", "request_id": "cg", "task_id": id}),
    )
    .await;
    assert_eq!((&gone["found"], &gone["success"]), (&json!(false), &json!(true)));
}
