//! The schema diff on this repository's history: the bundle before the whole-protocol issue
//! (#14, commit a86ae30, the last before its first schema change) against this version's.

use letta_app_server_protocol::compat::{Bundle, Change, ChangeKind, Class, diff};
use serde_json::json;

fn changes() -> Vec<Change> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/schema-history/before-issue-14.schema.json"
    );
    let text = std::fs::read_to_string(path).expect("the fixture is checked in");
    diff(&Bundle::from_json(&text).expect("a bundle"), &Bundle::current())
}

/// The kind and class of the change at `path`, which must be the only one there.
#[track_caller]
fn at<'a>(changes: &'a [Change], path: &str) -> (&'a ChangeKind, Class) {
    let found: Vec<&Change> = changes.iter().filter(|change| change.path == path).collect();
    assert_eq!(found.len(), 1, "one change at {path}: {found:?}");
    (&found[0].kind, found[0].class)
}

#[test]
fn frame_types_added_by_the_whole_protocol_issue() {
    let changes = changes();
    // Tier-B commands: an old server refuses them.
    for command in [
        "agent_list",
        "conversation_fork",
        "cron_add",
        "read_file",
        "terminal_spawn",
        "resume_queue",
    ] {
        assert_eq!(
            at(&changes, &format!("ClientFrame[{command}]")),
            (&ChangeKind::FrameAdded, Class::BreaksServers)
        );
    }
    // Their responses and notifications: old clients keep frame types they do not know.
    for frame in [
        "agent_list_response",
        "crons_updated",
        "terminal_output",
        "memory_updated",
    ] {
        assert_eq!(
            at(&changes, &format!("ServerFrame[{frame}]")),
            (&ChangeKind::FrameAdded, Class::Compatible)
        );
    }
    // Nothing was removed.
    assert!(
        !changes
            .iter()
            .any(|change| matches!(change.kind, ChangeKind::FrameRemoved | ChangeKind::BranchRemoved))
    );
}

#[test]
fn compatible_additions() {
    let changes = changes();
    let optional = ChangeKind::FieldAdded { required: false };
    assert_eq!(
        at(&changes, "ServerFrame[turn_finished].usage"),
        (&optional, Class::Compatible)
    );
    assert_eq!(
        at(&changes, "ClientFrame[input].terminal_consumer_id"),
        (&optional, Class::Compatible)
    );
    // `ErrorCode` is an open enum of server frames.
    let unsupported = ChangeKind::ValueAdded {
        value: json!("unsupported"),
    };
    assert_eq!(
        at(&changes, "ServerFrame[error].code"),
        (&unsupported, Class::Compatible)
    );
    assert_eq!(
        at(&changes, "ServerFrame[stream_delta].delta[ping]"),
        (&ChangeKind::BranchAdded, Class::Compatible)
    );
    // A new `input` kind is refused by an old server.
    let teleport = "ClientFrame[input].payload[teleport_continue]";
    assert_eq!(at(&changes, teleport), (&ChangeKind::BranchAdded, Class::BreaksServers));
}

/// The real breaking changes for clients, all taken to follow real Letta: an agent-free
/// conversation (Letta 0.34.12, docs/protocol.md §8.2) has `runtime.agent_id: null`; Letta
/// declares every token count of `usage_statistics` optional (commit cde7e2c; this server still
/// sends all three); a background process's `started_at_ms` and an agent task's `subagent_id`
/// may be `null` (commit 1ac01ec); `file_ops` comes without the runtime envelope after an
/// `edit_file` (Letta Code's file-commands). A client written against the old schema may refuse
/// such frames.
#[test]
fn breaking_changes_for_clients_are_the_known_ones() {
    let changes = changes();
    assert_eq!(
        at(&changes, "ServerFrame[turn_finished].runtime.agent_id"),
        (&ChangeKind::MadeNullable, Class::BreaksClients)
    );
    let tokens = "ServerFrame[stream_delta].delta[usage_statistics].total_tokens";
    let kinds: Vec<(&ChangeKind, Class)> = changes
        .iter()
        .filter(|change| change.path == tokens)
        .map(|change| (&change.kind, change.class))
        .collect();
    assert_eq!(
        kinds,
        [
            (&ChangeKind::MadeOptional, Class::BreaksClients),
            (&ChangeKind::MadeNullable, Class::BreaksClients)
        ]
    );
    let explained = |change: &&Change| {
        change.path.ends_with(".agent_id")
            || change
                .path
                .starts_with("ServerFrame[stream_delta].delta[usage_statistics].")
            || change
                .path
                .starts_with("ServerFrame[update_device_status].device_status.background_processes[]")
            || ["runtime", "event_seq", "emitted_at", "idempotency_key"]
                .iter()
                .any(|field| change.path == format!("ServerFrame[file_ops].{field}"))
    };
    let unexplained: Vec<&Change> = changes
        .iter()
        .filter(|change| change.class.breaks_clients())
        .filter(|change| !explained(change))
        .collect();
    assert_eq!(unexplained, Vec::<&Change>::new());
    assert!(!changes.iter().any(|change| change.class == Class::BreaksBoth));
}
