use futures_util::FutureExt;

use super::*;
use crate::approvals::MAX_APPROVALS;

fn shared() -> Shared {
    Shared::new(Arc::new(AtomicU64::new(1)))
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
