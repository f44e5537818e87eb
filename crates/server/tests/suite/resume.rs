//! The resumable event stream (this server's extension, docs/protocol.md §2.2): `resume_after`
//! on `runtime_start` and `sync`, `conversation_seq` on the events, the retained events after a
//! cursor instead of the state replay, the grace a dropped client's turn gets.

use std::time::Duration;

use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::support::TestServer;
use crate::support::binary::{ServerProcess, spawn_server};
use crate::support::wire::{Client, create_runtime, user_input};

/// A long reply of the scripted model: `n` deltas, `delay` ms apart.
fn long_reply(n: usize, delay: u64) -> String {
    format!("go [[deltas: {n}]] [[delay: {delay}]]")
}

/// Creates a runtime with `resume_after: 0`; returns its scope and the answer's `resume`.
async fn start_resumable(client: &mut Client) -> (Value, Value) {
    let mut start = create_runtime("rs-1");
    start["resume_after"] = json!(0);
    client.send(start).await;
    let frames = client.recv_until_type("update_subagent_state").await;
    // The answer comes first, then the state replay (without numbers: it is this socket's own).
    assert_eq!(frames[0]["type"], "runtime_start_response", "{frames:?}");
    assert!(
        frames[1..].iter().all(|f| f.get("conversation_seq").is_none()),
        "{frames:?}"
    );
    let answer = &frames[0];
    assert_eq!(answer["resume"]["resumed"], false, "{answer}");
    (answer["runtime"].clone(), answer["resume"].clone())
}

/// The `conversation_seq` of a frame.
fn seq(frame: &Value) -> u64 {
    frame["conversation_seq"]
        .as_u64()
        .unwrap_or_else(|| panic!("no conversation_seq: {frame}"))
}

/// The text of the assistant deltas among `frames`.
fn assistant_text(frames: &[Value]) -> String {
    (frames.iter())
        .filter(|f| f["delta"]["message_type"] == "assistant_message")
        .filter_map(|f| f["delta"]["content"][0]["text"].as_str())
        .collect()
}

/// `sync` with `resume_after: cursor`; returns its answer, which comes before anything else.
async fn resync(client: &mut Client, runtime: &Value, cursor: u64) -> Value {
    client
        .send(json!({"type": "sync", "request_id": "resync", "runtime": runtime, "resume_after": cursor}))
        .await;
    let answer = client.recv().await;
    assert_eq!(answer["type"], "sync_response", "{answer}");
    assert_eq!(answer["success"], true, "{answer}");
    answer
}

#[tokio::test]
async fn a_dropped_client_gets_exactly_the_events_it_missed_and_its_turn_goes_on() {
    let server = TestServer::start().await;
    let mut first = server.client().await;
    let (runtime, resume) = start_resumable(&mut first).await;
    let origin = resume["last_seq"].as_u64().expect("last_seq");
    assert_eq!(resume["oldest_retained"], origin + 1);
    // A client that did not ask sees no numbers.
    let mut plain = server.client().await;
    plain
        .send(json!({"type": "sync", "request_id": "s-plain", "runtime": runtime}))
        .await;
    let answer = plain.recv_until_type("sync_response").await;
    assert!(answer.last().expect("answer").get("resume").is_none());

    first
        .send(user_input("in-1", &runtime, &long_reply(120, 5), "cm-1"))
        .await;
    let before = first
        .recv_until(|f| f["delta"]["message_type"] == "assistant_message" && f["delta"]["content"][0]["text"] == "t30 ")
        .await;
    let numbered: Vec<&Value> = before.iter().filter(|f| f.get("conversation_seq").is_some()).collect();
    // Every event of the scope is numbered, one after the other, from the origin on.
    for (i, frame) in numbered.iter().enumerate() {
        assert_eq!(seq(frame), origin + 1 + i as u64, "{frame}");
    }
    let cursor = seq(before.last().expect("a frame"));
    first.drop_connection();

    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut second = server.client().await;
    let answer = resync(&mut second, &runtime, cursor).await;
    assert_eq!(answer["resume"]["resumed"], true, "{answer}");
    assert_eq!(answer["resume"]["oldest_retained"], origin + 1, "{answer}");
    let after = second.recv_until_type("turn_finished").await;
    // No state replay: the events after the cursor, each once, in order, then the live ones.
    for (i, frame) in after.iter().enumerate() {
        assert_eq!(seq(frame), cursor + 1 + i as u64, "{frame}");
    }
    let finished = after.last().expect("turn_finished");
    assert_eq!(finished["stop_reason"], "end_turn", "the turn went on: {finished}");
    // What the two sockets got is the whole reply, as the client that stayed saw it.
    let seen = plain.recv_until_type("turn_finished").await;
    assert!(seen.iter().all(|f| f.get("conversation_seq").is_none()));
    assert_eq!(assistant_text(&before) + &assistant_text(&after), assistant_text(&seen));
}

#[tokio::test]
async fn a_cursor_older_than_what_is_retained_gets_the_state_replay() {
    let server = TestServer::start_with(|config| config.resume.events = 8).await;
    let mut first = server.client().await;
    let (runtime, resume) = start_resumable(&mut first).await;
    let origin = resume["last_seq"].as_u64().expect("last_seq");
    first
        .send(user_input("in-1", &runtime, &long_reply(20, 0), "cm-1"))
        .await;
    let frames = first.recv_until_type("turn_finished").await;
    let last = seq(frames.last().expect("turn_finished"));
    first.close().await;

    let mut second = server.client().await;
    let answer = resync(&mut second, &runtime, origin + 1).await;
    assert_eq!(answer["resume"]["resumed"], false, "{answer}");
    assert_eq!(answer["resume"]["last_seq"], last, "{answer}");
    assert_eq!(answer["resume"]["oldest_retained"], last - 7, "{answer}");
    let replay = second.recv_until_type("update_subagent_state").await;
    let types: Vec<&str> = replay.iter().filter_map(|f| f["type"].as_str()).collect();
    assert_eq!(
        types,
        [
            "update_device_status",
            "update_loop_status",
            "update_queue",
            "update_subagent_state"
        ]
    );
    // A cursor the server never gave (ahead of it) is not resumed either.
    let answer = resync(&mut second, &runtime, last + 5).await;
    assert_eq!(answer["resume"]["resumed"], false, "{answer}");
    second.recv_until_type("update_subagent_state").await;
    // Nor is a first subscription (0), which has no state.
    let answer = resync(&mut second, &runtime, 0).await;
    assert_eq!(answer["resume"]["resumed"], false, "{answer}");
    second.recv_until_type("update_subagent_state").await;
    // From the answer on, the live events are numbered after `last_seq`.
    second.send(user_input("in-2", &runtime, "again", "cm-2")).await;
    let live = second.recv_until_type("turn_finished").await;
    let numbered: Vec<u64> = live.iter().filter_map(|f| f["conversation_seq"].as_u64()).collect();
    assert_eq!(numbered.first(), Some(&(last + 1)), "{live:?}");
}

#[tokio::test]
async fn a_long_catch_up_is_paced_by_the_reader_and_never_overflows_it() {
    let server = TestServer::start_with(|config| config.max_queued_frames = 32).await;
    let mut first = server.client().await;
    let (runtime, resume) = start_resumable(&mut first).await;
    let origin = resume["last_seq"].as_u64().expect("last_seq");
    first.close().await;
    // Nobody watches: a queued input waits. Another client runs it without numbers.
    let mut plain = server.client().await;
    plain
        .send(json!({"type": "sync", "request_id": "s-plain", "runtime": runtime}))
        .await;
    plain.recv_until_type("sync_response").await;
    plain
        .send(user_input("in-1", &runtime, &long_reply(1500, 0), "cm-1"))
        .await;
    let seen = plain.recv_until_type("turn_finished").await;

    let mut second = server.client().await;
    let answer = resync(&mut second, &runtime, origin).await;
    assert_eq!(answer["resume"]["resumed"], true, "{answer}");
    let after = second.recv_until_type("turn_finished").await;
    assert!(after.len() > 1500, "{}", after.len());
    for (i, frame) in after.iter().enumerate() {
        assert_eq!(seq(frame), origin + 1 + i as u64, "{frame}");
    }
    assert_eq!(assistant_text(&after), assistant_text(&seen));
    // Still connected, and live.
    second.send(user_input("in-2", &runtime, "more", "cm-2")).await;
    second.recv_until_type("turn_finished").await;
}

/// How a client leaves.
enum Leaving {
    /// Its connection drops, without a close frame.
    Dropped,
    /// It closes the socket: a close frame without a code, as the SDKs' `close()` sends.
    Closed,
    /// A close frame with 1001, "going away" (which proxies send too).
    GoingAway,
}

/// A resuming client's long reply on a server with this resume `grace`, left as `leaving` says
/// after the first delta; returns the answer and the frames up to `turn_finished` that a client
/// coming back `away` later gets.
async fn left_mid_reply(grace: Duration, leaving: Leaving, away: Duration) -> (Value, Vec<Value>) {
    let server = TestServer::start_with(|config| config.resume.grace = grace).await;
    let mut first = server.client().await;
    let (runtime, _) = start_resumable(&mut first).await;
    first
        .send(user_input("in-1", &runtime, &long_reply(400, 10), "cm-1"))
        .await;
    let before = first
        .recv_until(|f| f["delta"]["message_type"] == "assistant_message")
        .await;
    let cursor = seq(before.last().expect("a frame"));
    match leaving {
        Leaving::Dropped => first.drop_connection(),
        Leaving::Closed => first.close().await,
        Leaving::GoingAway => {
            let away = CloseFrame {
                code: CloseCode::Away,
                reason: "".into(),
            };
            first.close_with(away).await;
        }
    }
    tokio::time::sleep(away).await;
    let mut second = server.client().await;
    let answer = resync(&mut second, &runtime, cursor).await;
    (answer, second.recv_until_type("turn_finished").await)
}

/// How many assistant deltas are among `frames`.
fn deltas(frames: &[Value]) -> usize {
    (frames.iter())
        .filter(|f| f["delta"]["message_type"] == "assistant_message")
        .count()
}

#[tokio::test]
async fn a_turn_nobody_came_back_to_ends_after_the_grace() {
    let (answer, after) =
        left_mid_reply(Duration::from_millis(300), Leaving::Dropped, Duration::from_millis(900)).await;
    assert_eq!(answer["resume"]["resumed"], true, "{answer}");
    // The turn ran on for the grace, then ended as one nobody watches does.
    assert_eq!(after.last().expect("turn_finished")["stop_reason"], "cancelled");
    let deltas = deltas(&after);
    assert!((5..390).contains(&deltas), "{deltas} deltas during the grace");
}

#[tokio::test]
async fn without_a_grace_a_dropped_resuming_client_ends_its_turn_at_once() {
    let (_, after) = left_mid_reply(Duration::ZERO, Leaving::Dropped, Duration::from_millis(300)).await;
    assert_eq!(after.last().expect("turn_finished")["stop_reason"], "cancelled");
    let deltas = deltas(&after);
    assert!(deltas < 20, "{deltas} deltas after the drop");
}

/// A client that closes its socket on purpose is not waited for: the turn only it watched ends
/// at once, grace or not. "Going away" (1001) is not on purpose: the turn goes on.
#[tokio::test]
async fn a_resuming_client_that_closes_on_purpose_ends_its_turn_at_once() {
    let grace = Duration::from_secs(30);
    let (_, after) = left_mid_reply(grace, Leaving::Closed, Duration::from_millis(300)).await;
    assert_eq!(after.last().expect("turn_finished")["stop_reason"], "cancelled");
    let deltas = deltas(&after);
    assert!(deltas < 20, "{deltas} deltas after the close");

    let (answer, after) = left_mid_reply(grace, Leaving::GoingAway, Duration::from_millis(300)).await;
    assert_eq!(answer["resume"]["resumed"], true, "{answer}");
    assert_eq!(after.last().expect("turn_finished")["stop_reason"], "end_turn");
}

/// A resuming client's long reply, cut by `kill -9` once the client got the delta `t<n> `;
/// returns the server started again on the same data (which `data` keeps), the runtime, and
/// the frames the client got.
async fn killed_mid_reply(data: &std::path::Path, n: usize) -> (ServerProcess, String, Value, Vec<Value>) {
    let (mut server, url) = spawn_server(data, &[]);
    let mut first = Client::connect(&url).await;
    let (runtime, _) = start_resumable(&mut first).await;
    first
        .send(user_input("in-1", &runtime, &long_reply(2000, 2), "cm-1"))
        .await;
    let delta = format!("t{n} ");
    let before = first
        .recv_until(|f| {
            f["delta"]["message_type"] == "assistant_message" && f["delta"]["content"][0]["text"] == delta.as_str()
        })
        .await;
    server.kill_9().expect("kill -9");
    let (server, url) = spawn_server(data, &[]);
    (server, url, runtime, before)
}

/// `runtime_start` of `runtime` with `resume_after: cursor`; returns its answer, which comes
/// first.
async fn rejoin(client: &mut Client, runtime: &Value, cursor: u64) -> Value {
    client
        .send(
            json!({"type": "runtime_start", "request_id": "rs-2", "agent_id": runtime["agent_id"],
            "conversation_id": runtime["conversation_id"], "resume_after": cursor}),
        )
        .await;
    let answer = client.recv().await;
    assert_eq!(answer["type"], "runtime_start_response", "{answer}");
    answer
}

#[tokio::test]
async fn after_kill_9_a_client_resumes_where_it_was_and_learns_how_its_turn_ended() {
    let data = tempfile::tempdir().expect("temp dir");
    let (mut server, url, runtime, before) = killed_mid_reply(data.path(), 40).await;
    let cursor = seq(before.last().expect("a frame"));
    let mut second = Client::connect(&url).await;
    let answer = rejoin(&mut second, &runtime, cursor).await;
    assert_eq!(answer["resume"]["resumed"], true, "{answer}");
    let after = second.recv_until_type("turn_finished").await;
    // Every event after the cursor that the store kept, the state now, and the cut turn's end,
    // numbered on from before the kill.
    for (i, frame) in after.iter().enumerate() {
        assert_eq!(seq(frame), cursor + 1 + i as u64, "{frame}");
    }
    let finished = after.last().expect("turn_finished");
    assert_eq!(finished["stop_reason"], "error", "{finished}");
    let waiting = after
        .iter()
        .any(|f| f["type"] == "update_loop_status" && f["loop_status"]["status"] == "WAITING_ON_INPUT");
    assert!(waiting, "{after:?}");
    let text = assistant_text(&before) + &assistant_text(&after);
    let expected: String = (0..2000).map(|i| format!("t{i} ")).collect();
    assert!(expected.starts_with(&text) && text.len() > 40, "{text}");
    server.kill_9().expect("kill -9");
}

#[tokio::test]
async fn a_first_subscription_after_kill_9_gets_the_end_of_the_cut_turn_after_its_answer() {
    let data = tempfile::tempdir().expect("temp dir");
    let (mut server, url, runtime, _) = killed_mid_reply(data.path(), 0).await;
    let mut second = Client::connect(&url).await;
    let answer = rejoin(&mut second, &runtime, 0).await;
    assert_eq!(answer["resume"]["resumed"], false, "{answer}");
    let start = answer["resume"]["last_seq"].as_u64().expect("last_seq");
    // The cut turn's end was published while the subscription was being made: it follows the
    // answer with the state replay, numbered after `last_seq` (with the state published when the
    // conversation was loaded).
    let frames = second.recv_until_type("turn_finished").await;
    let finished = frames.last().expect("turn_finished");
    assert_eq!(finished["stop_reason"], "error", "{finished}");
    let numbered: Vec<u64> = frames.iter().filter_map(|f| f["conversation_seq"].as_u64()).collect();
    assert_eq!(numbered, (start + 1..=seq(finished)).collect::<Vec<_>>(), "{frames:?}");
    server.kill_9().expect("kill -9");
}
