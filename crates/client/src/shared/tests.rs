use futures_util::FutureExt;

use super::*;
use crate::approvals::MAX_APPROVALS;

fn shared() -> Shared {
    Shared::new(Arc::new(AtomicU64::new(1)), false)
}

fn scope(conversation: &str) -> RuntimeScope {
    RuntimeScope::new("agent-1", conversation)
}

fn runtime_event(conversation: &str, body: &str) -> RawFrame {
    RawFrame::from(format!(
        r#"{{{body},"runtime":{{"agent_id":"agent-1","conversation_id":"{conversation}"}}}}"#
    ))
}

fn asked(conversation: &str, request_id: &str) -> RawFrame {
    runtime_event(
        conversation,
        &format!(r#""type":"control_request","request_id":"{request_id}","request":{{"subtype":"can_use_tool"}}"#),
    )
}

fn device(conversation: &str, pending: &[&str]) -> RawFrame {
    let pending: Vec<String> = pending
        .iter()
        .map(|id| format!(r#"{{"request_id":"{id}","request":{{}}}}"#))
        .collect();
    runtime_event(
        conversation,
        &format!(
            r#""type":"update_device_status","device_status":{{"pending_control_requests":[{}]}}"#,
            pending.join(",")
        ),
    )
}

/// What a stream holds now: the `request_id` of each frame that has one, else its type.
fn ready(events: &mut RawEvents) -> Vec<String> {
    let mut items = Vec::new();
    while let Some(Some(item)) = events.next().now_or_never() {
        items.push(match item {
            Ok(frame) => frame.request_id().unwrap_or(frame.frame_type()).to_owned(),
            Err(Gap::Interrupted { .. }) => "interrupted".to_owned(),
            Err(Gap::Resumed) => "resumed".to_owned(),
            Err(Gap::Reconnected) => "reconnected".to_owned(),
            Err(_) => "gap".to_owned(),
        });
    }
    items
}

fn pending(shared: &Shared, scope: Option<&RuntimeScope>) -> Vec<String> {
    shared
        .pending_approvals(scope)
        .iter()
        .filter_map(|frame| frame.request_id().map(str::to_owned))
        .collect()
}

#[test]
fn each_stream_gets_an_approval_once_and_a_later_stream_starts_with_it() {
    let shared = shared();
    // Asked before any stream exists, as on connect.
    shared.dispatch(&asked("c1", "perm-1"));
    let mut early = shared.subscribe(None, 16);
    let mut other = shared.subscribe(Some(scope("c2")), 16);
    assert_eq!(ready(&mut early), ["perm-1"]);
    assert!(ready(&mut other).is_empty());

    shared.dispatch(&asked("c1", "perm-1"));
    shared.dispatch(&asked("c2", "perm-2"));
    let mut late = shared.subscribe(Some(scope("c1")), 16);
    shared.dispatch(&asked("c1", "perm-1"));
    assert_eq!(ready(&mut early), ["perm-2"]);
    assert_eq!(ready(&mut other), ["perm-2"]);
    assert_eq!(ready(&mut late), ["perm-1"]);
    assert_eq!(pending(&shared, None), ["perm-1", "perm-2"]);
    assert_eq!(pending(&shared, Some(&scope("c2"))), ["perm-2"]);
}

#[test]
fn a_device_status_or_the_turns_end_settles_approvals() {
    let shared = shared();
    let mut events = shared.subscribe(None, 16);
    shared.dispatch(&asked("c1", "perm-1"));
    shared.dispatch(&asked("c1", "perm-2"));
    shared.dispatch(&asked("c2", "perm-3"));
    // Another runtime's status settles nothing; this one's settles what it does not list.
    shared.dispatch(&device("c2", &["perm-3"]));
    shared.dispatch(&device("c1", &["perm-2"]));
    assert_eq!(pending(&shared, None), ["perm-2", "perm-3"]);
    shared.dispatch(&runtime_event(
        "c1",
        r#""type":"turn_finished","stop_reason":"end_turn""#,
    ));
    assert_eq!(pending(&shared, None), ["perm-3"]);
    assert_eq!(
        ready(&mut events),
        [
            "perm-1",
            "perm-2",
            "perm-3",
            "update_device_status",
            "update_device_status",
            "turn_finished"
        ]
    );
    // A stream made now starts with what is still pending.
    let mut later = shared.subscribe(None, 16);
    assert_eq!(ready(&mut later), ["perm-3"]);
}

#[test]
fn a_disconnect_forgets_approvals_and_the_next_connection_delivers_them_again() {
    let shared = shared();
    let mut events = shared.subscribe(None, 16);
    shared.dispatch(&asked("c1", "perm-1"));
    shared.dispatch(&asked("c2", "perm-2"));
    assert_eq!(ready(&mut events), ["perm-1", "perm-2"]);

    shared.disconnected("gone");
    assert_eq!(ready(&mut events), ["gap"]);
    assert!(pending(&shared, None).is_empty());
    let mut while_away = shared.subscribe(None, 16);
    assert!(ready(&mut while_away).is_empty());
    // The new connection replays what is still pending, on connect and on runtime_start:
    // every stream gets it, once.
    shared.dispatch(&asked("c1", "perm-1"));
    shared.dispatch(&asked("c1", "perm-1"));
    assert_eq!(pending(&shared, None), ["perm-1"]);
    assert_eq!(ready(&mut events), ["perm-1"]);
    assert_eq!(ready(&mut while_away), ["perm-1"]);
}

#[test]
fn the_record_keeps_the_newest_approvals() {
    let shared = shared();
    for n in 0..=MAX_APPROVALS {
        shared.dispatch(&asked("c1", &format!("perm-{n}")));
    }
    let pending = pending(&shared, None);
    assert_eq!(pending.len(), MAX_APPROVALS);
    assert_eq!(pending[0], "perm-1");
}

/// A resuming client whose runtime `conv-1` was subscribed with `resume_after` and has seen
/// event 41.
fn resuming_with_a_runtime() -> (Shared, RawEvents) {
    let shared = Shared::new(Arc::new(AtomicU64::new(1)), true);
    let (text, tracked) = shared.track(
        r#"{"type":"sync","request_id":"s-1","runtime":{"agent_id":"agent-1","conversation_id":"conv-1"}}"#.to_owned(),
    );
    assert!(text.contains(r#""resume_after":0"#), "{text}");
    assert_eq!(tracked.as_deref(), Some("s-1"));
    shared.dispatch(&RawFrame::from(
        r#"{"type":"sync_response","request_id":"s-1","runtime":{"agent_id":"agent-1","conversation_id":"conv-1"},"success":true,"resume":{"resumed":false,"last_seq":40,"oldest_retained":41}}"#.to_owned(),
    ));
    shared.dispatch(&runtime_event(
        "conv-1",
        r#""type":"update_queue","conversation_seq":41"#,
    ));
    let events = shared.subscribe(None, 16);
    (shared, events)
}

#[test]
fn a_drop_every_runtime_resumes_from_is_an_interruption_and_the_cursor_is_the_last_event() {
    let (shared, mut events) = resuming_with_a_runtime();
    shared.disconnected("cut");
    shared.reconnected();
    let runtimes = shared.runtimes();
    assert_eq!(runtimes[0].1.cursor, Some(41));
    // The restore asks for the events after 41: it resumes, and nobody is told of the drop.
    let (text, _) = shared.track(r#"{"type":"sync","request_id":"s-2","runtime":{"agent_id":"agent-1","conversation_id":"conv-1"},"resume_after":41}"#.to_owned());
    assert!(text.contains(r#""resume_after":41"#), "{text}");
    shared.dispatch(&RawFrame::from(
        r#"{"type":"sync_response","request_id":"s-2","runtime":{"agent_id":"agent-1","conversation_id":"conv-1"},"success":true,"resume":{"resumed":true,"last_seq":45,"oldest_retained":1}}"#.to_owned(),
    ));
    shared.restored(true);
    assert_eq!(ready(&mut events), ["interrupted", "resumed", "s-2"]);
    assert_eq!(shared.runtimes()[0].1.cursor, Some(41));
}

#[test]
fn a_runtime_that_does_not_resume_is_a_reconnection_before_its_replay() {
    let (shared, mut events) = resuming_with_a_runtime();
    shared.disconnected("cut");
    shared.reconnected();
    shared.track(r#"{"type":"sync","request_id":"s-2","runtime":{"agent_id":"agent-1","conversation_id":"conv-1"},"resume_after":41}"#.to_owned());
    shared.dispatch(&RawFrame::from(
        r#"{"type":"sync_response","request_id":"s-2","runtime":{"agent_id":"agent-1","conversation_id":"conv-1"},"success":true,"resume":{"resumed":false,"last_seq":900,"oldest_retained":800}}"#.to_owned(),
    ));
    shared.restored(true);
    assert_eq!(ready(&mut events), ["interrupted", "reconnected", "s-2"]);
    // From now on, it resumes from the answer's last event.
    assert_eq!(shared.runtimes()[0].1.cursor, Some(900));

    // A restore that got no answer tells of the drop too.
    let (shared, mut events) = resuming_with_a_runtime();
    shared.disconnected("cut");
    shared.reconnected();
    shared.restored(false);
    assert_eq!(ready(&mut events), ["interrupted", "reconnected"]);

    // One that gives up reconnecting says the connection is gone before the streams end.
    let (shared, mut events) = resuming_with_a_runtime();
    shared.disconnected("cut");
    shared.finish(Error::Disconnected {
        reason: "gave up".into(),
    });
    assert_eq!(ready(&mut events), ["interrupted", "gap"]);
}

#[test]
fn events_ahead_of_the_answer_and_an_acting_user_keep_the_cursor_moving() {
    let shared = Shared::new(Arc::new(AtomicU64::new(1)), true);
    let sync = r#"{"type":"sync","request_id":"s-1","runtime":{"agent_id":"agent-1","conversation_id":"conv-1","acting_user_id":"u-1"}}"#;
    shared.track(sync.to_owned());
    // Over a split pair, an event can come before the answer on the other socket.
    shared.dispatch(&RawFrame::from(
        r#"{"type":"sync_response","request_id":"s-1","runtime":{"agent_id":"agent-1","conversation_id":"conv-1","acting_user_id":"u-1"},"success":true,"resume":{"resumed":false,"last_seq":40,"oldest_retained":41}}"#.to_owned(),
    ));
    shared.dispatch(&runtime_event(
        "conv-1",
        r#""type":"update_queue","conversation_seq":43"#,
    ));
    assert_eq!(
        shared.runtimes()[0].1.cursor,
        Some(43),
        "events leave the acting user out"
    );
    let (text, _) = shared.track(sync.replace("\"s-1\"", "\"s-2\""));
    assert!(text.contains(r#""resume_after":0"#));
    shared.dispatch(&RawFrame::from(
        r#"{"type":"sync_response","request_id":"s-2","runtime":{"agent_id":"agent-1","conversation_id":"conv-1"},"success":true,"resume":{"resumed":false,"last_seq":42,"oldest_retained":41}}"#.to_owned(),
    ));
    assert_eq!(shared.runtimes()[0].1.cursor, Some(43), "never backwards");
}

#[test]
fn a_turn_on_a_runtime_that_does_not_resume_makes_a_drop_a_disconnect() {
    let (shared, mut events) = resuming_with_a_runtime();
    // `input` subscribed this connection to another runtime, whose turn streams unnumbered.
    shared.dispatch(&runtime_event(
        "conv-2",
        r#""type":"stream_delta","delta":{},"event_seq":9"#,
    ));
    shared.disconnected("cut");
    shared.reconnected();
    assert_eq!(ready(&mut events), ["stream_delta", "gap", "reconnected"]);
}
