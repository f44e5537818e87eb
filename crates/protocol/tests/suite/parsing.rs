//! Parsing behaviour of the frame unions: typed errors for bad input, forward compatibility for
//! informational unions, strictness for control unions.

use letta_app_server_protocol::*;
use serde_json::{Value, json};

fn client_error(frame: Value) -> FrameError {
    ClientFrame::from_value(frame).expect_err("frame should be rejected")
}

fn scope() -> Value {
    json!({"agent_id": "agent-1", "conversation_id": "conv-1"})
}

#[test]
fn malformed_json_is_a_typed_error() {
    let error = ClientFrame::from_json(r#"{"type":"sync","#).unwrap_err();
    assert_eq!(error.kind, FrameErrorKind::MalformedJson);
    assert_eq!(error.to_error_frame().code, ErrorCode::MalformedJson);
    assert!(error.to_string().starts_with("frame is not valid JSON: "), "{error}");
    assert_eq!(
        ServerFrame::from_json("nope").unwrap_err().kind,
        FrameErrorKind::MalformedJson
    );
}

#[test]
fn missing_or_non_string_type_is_a_typed_error_that_keeps_the_request_id() {
    let error = client_error(json!({"request_id": "r-1"}));
    assert_eq!(
        (error.kind, error.request_id.as_deref()),
        (FrameErrorKind::MissingType, Some("r-1"))
    );
    assert_eq!(error.to_string(), "missing field `type`");
    let error = client_error(json!({"type": null}));
    assert_eq!(error.kind, FrameErrorKind::MissingType);
    assert_eq!(error.to_string(), "field `type` must be a string, got null");
    // A server frame without a type is an error too, not an unknown frame.
    assert_eq!(
        ServerFrame::from_value(json!({"x": 1})).unwrap_err().kind,
        FrameErrorKind::MissingType
    );
    assert_eq!(
        ServerFrame::from_value(json!([1])).unwrap_err().kind,
        FrameErrorKind::NotAnObject
    );
}

#[test]
fn unknown_client_type_is_an_error_naming_the_accepted_types() {
    let error = client_error(json!({"type": "cancel_run", "request_id": "c-1"}));
    assert_eq!(error.kind, FrameErrorKind::UnknownType);
    assert_eq!(error.frame_type.as_deref(), Some("cancel_run"));
    let frame = error.to_error_frame();
    assert_eq!(
        (frame.code, frame.request_id.as_deref()),
        (ErrorCode::UnknownType, Some("c-1"))
    );
    assert!(
        frame.message.contains("runtime_start") && frame.message.contains("external_tool_call_response"),
        "{}",
        frame.message
    );
}

#[test]
fn wrong_field_types_name_the_frame_and_the_field() {
    let error =
        client_error(json!({"type": "remove_queue_item", "request_id": "rq", "runtime": scope(), "item_id": 3}));
    assert_eq!(error.kind, FrameErrorKind::InvalidFrame);
    assert_eq!(error.path.as_deref(), Some("item_id"));
    assert_eq!(
        error.to_string(),
        "invalid `remove_queue_item` frame: field `item_id`: invalid type: integer `3`, expected a string"
    );

    let error = client_error(
        json!({"type": "input", "runtime": scope(), "payload": {"kind": "create_message",
        "messages": [{"role": "user", "content": "hi"}, {"role": "user", "content": [{"type": "text", "text": 5}]}]}}),
    );
    assert_eq!(error.path.as_deref(), Some("payload.messages[1].content[0].text"));
    let error = client_error(
        json!({"type": "input", "runtime": scope(), "payload": {"kind": "create_message",
        "messages": [{"role": "user", "content": 7}]}}),
    );
    assert_eq!(error.path.as_deref(), Some("payload.messages[0].content"));
    assert_eq!(
        error.reason,
        "expected a string or an array of content parts, got a number"
    );
}

#[test]
fn errors_inside_server_frames_keep_the_full_path() {
    let mut frame: Value = serde_json::from_str(include_str!(
        "../../../../tests/frames/stream_delta/approval_request_message.json"
    ))
    .unwrap();
    frame["delta"]["tool_call"]["arguments"] = json!({"not": "a string"});
    let error = ServerFrame::from_value(frame).unwrap_err();
    assert_eq!(
        error.kind,
        FrameErrorKind::InvalidFrame,
        "a known type with a bad field is an error, not an unknown frame"
    );
    assert_eq!(error.frame_type.as_deref(), Some("stream_delta"));
    assert_eq!(error.path.as_deref(), Some("delta.tool_call.arguments"));

    let mut frame: Value =
        serde_json::from_str(include_str!("../../../../tests/frames/turn_finished/example.json")).unwrap();
    frame["event_seq"] = json!("seven");
    assert_eq!(
        ServerFrame::from_value(frame).unwrap_err().path.as_deref(),
        Some("event_seq")
    );
}

#[test]
fn unknown_approval_decisions_are_errors_never_approvals() {
    for behavior in ["maybe", "allow_always", "ALLOW", ""] {
        let error = client_error(json!({"type": "input", "request_id": "in-1", "runtime": scope(),
            "payload": {"kind": "approval_response", "request_id": "perm-call_1", "decision": {"behavior": behavior}}}));
        assert_eq!(
            error.path.as_deref(),
            Some("payload.decision.behavior"),
            "{behavior}: {error}"
        );
    }
    let error = client_error(json!({"type": "input", "runtime": scope(),
        "payload": {"kind": "approval_response", "request_id": "perm-call_1", "decision": {"message": "ok"}}}));
    assert_eq!(
        error.path.as_deref(),
        Some("payload.decision"),
        "a decision without behavior: {error}"
    );
}

#[test]
fn unknown_input_payload_kind_is_an_error() {
    let error = client_error(
        json!({"type": "input", "request_id": "in-1", "runtime": scope(), "payload": {"kind": "frobnicate"}}),
    );
    assert_eq!(error.path.as_deref(), Some("payload.kind"));
    assert!(
        error
            .reason
            .contains("`create_message`, `approval_response`, `teleport_continue`"),
        "{error}"
    );
    let error = client_error(json!({"type": "input", "runtime": scope(), "payload": {"messages": []}}));
    assert_eq!(error.path.as_deref(), Some("payload"));
    assert_eq!(error.reason, "missing field `kind`");
}

#[test]
fn extra_fields_are_ignored_in_both_directions() {
    let frame = ClientFrame::from_value(json!({"type": "sync", "runtime": scope(), "future_option": true})).unwrap();
    assert_eq!(
        serde_json::to_value(frame).unwrap(),
        json!({"type": "sync", "runtime": scope()})
    );
    let frame = ServerFrame::from_value(
        json!({"type": "sync_response", "request_id": "s", "runtime": scope(), "success": true, "x": [1]}),
    )
    .unwrap();
    assert!(matches!(
        frame,
        ServerFrame::SyncResponse(SyncResponse { success: true, .. })
    ));
}

#[test]
fn unknown_server_frames_and_deltas_are_kept_verbatim() {
    let future = json!({"type": "hologram_ready", "z": 9, "a": {"nested": [1, 2]}, "request_id": "h-1"});
    let frame = ServerFrame::from_value(future.clone()).unwrap();
    assert_eq!(frame.frame_type(), "hologram_ready");
    assert!(frame.envelope().is_none());
    assert_eq!(
        serde_json::to_string(&frame).unwrap(),
        future.to_string(),
        "kept byte for byte, in order"
    );

    let delta = json!({"message_type": "telepathy_message", "thought": "hi", "run_id": "r"});
    let frame = ServerFrame::from_value(
        json!({"type": "stream_delta", "delta": delta, "runtime": scope(), "event_seq": 4,
        "emitted_at": "2026-11-25T00:00:00.000Z", "idempotency_key": "stream_delta:4:x"}),
    )
    .unwrap();
    let ServerFrame::StreamDelta(event) = &frame else {
        panic!("{frame:?}")
    };
    assert_eq!(event.envelope.event_seq, 4);
    assert_eq!(event.body.delta.message_type(), "telepathy_message");
    assert!(event.body.delta.meta().is_none());
    assert_eq!(serde_json::to_value(&event.body.delta).unwrap(), delta);
}

#[test]
fn unknown_informational_values_are_kept() {
    let frame = ServerFrame::from_value(
        json!({"type": "turn_finished", "turn_id": "t", "stop_reason": "solar_flare", "runtime": scope(),
        "event_seq": 1, "emitted_at": "e", "idempotency_key": "k"}),
    )
    .unwrap();
    let ServerFrame::TurnFinished(event) = &frame else {
        panic!("{frame:?}")
    };
    assert_eq!(event.body.stop_reason, StopReason::Other("solar_flare".into()));
    assert_eq!(serde_json::to_value(&frame).unwrap()["stop_reason"], "solar_flare");
    assert_eq!(StopReason::from("end_turn"), StopReason::EndTurn);
    assert_eq!(
        LoopStatus::from("WAITING_ON_APPROVAL").to_string(),
        "WAITING_ON_APPROVAL"
    );
}

#[test]
fn permission_modes_are_closed_and_aliases_resolve() {
    let change = |mode: &str| {
        ClientFrame::from_value(json!({"type": "change_device_state", "runtime": scope(), "payload": {"mode": mode}}))
    };
    let resolved = |mode: &str| match change(mode).unwrap() {
        ClientFrame::ChangeDeviceState(c) => c.payload.mode.map(RequestedPermissionMode::resolve),
        other => panic!("{other:?}"),
    };
    assert_eq!(resolved("default"), Some(DevicePermissionMode::Standard));
    assert_eq!(resolved("bypassPermissions"), Some(DevicePermissionMode::Unrestricted));
    assert_eq!(resolved("fullAccess"), Some(DevicePermissionMode::Unrestricted));
    assert_eq!(resolved("acceptEdits"), Some(DevicePermissionMode::AcceptEdits));
    assert_eq!(
        change("Unrestricted").unwrap_err().path.as_deref(),
        Some("payload.mode")
    );
}

#[test]
fn runtime_start_cwd_distinguishes_absent_null_and_a_path() {
    let parse = |extra: Value| {
        let mut frame = json!({"type": "runtime_start", "request_id": "rs", "agent_id": "a"});
        frame
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let parsed = ClientFrame::from_value(frame.clone()).unwrap();
        assert_eq!(serde_json::to_value(&parsed).unwrap(), frame, "round trip");
        match parsed {
            ClientFrame::RuntimeStart(start) => start.cwd,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(parse(json!({})), None);
    assert_eq!(parse(json!({"cwd": null})), Some(None));
    assert_eq!(parse(json!({"cwd": "/tmp"})), Some(Some("/tmp".into())));
}

#[test]
fn legacy_message_converts_to_input() {
    for conversation_key in ["conversationId", "conversation_id"] {
        let frame = ClientFrame::from_value(
            json!({"type": "message", "agentId": "agent-1", conversation_key: "conv-9",
            "messages": [{"role": "user", "content": "hi"}], "clientToolAllowlist": []}),
        )
        .unwrap();
        let ClientFrame::LegacyMessage(legacy) = frame else {
            panic!()
        };
        let input = legacy.into_input();
        assert_eq!(input.runtime, RuntimeScope::new("agent-1", "conv-9"));
        assert_eq!(input.request_id, None);
        let InputPayload::CreateMessage(create) = input.payload else {
            panic!()
        };
        assert_eq!(create.client_tool_allowlist, Some(vec![]));
    }
    let frame = ClientFrame::from_value(json!({"type": "message", "agentId": "a", "messages": []})).unwrap();
    let ClientFrame::LegacyMessage(legacy) = frame else {
        panic!()
    };
    assert_eq!(legacy.into_input().runtime.conversation_id, "default");
}

#[test]
fn serde_deserialize_uses_the_same_dispatch() {
    let frame: ClientFrame = serde_json::from_str(r#"{"type":"pong"}"#).unwrap();
    assert_eq!(frame, ClientFrame::Pong(Pong {}));
    let error = serde_json::from_str::<ClientFrame>(r#"{"type":"app_server_info","request_id":1}"#).unwrap_err();
    assert!(error.to_string().contains("field `request_id`"), "{error}");
    let frame: ServerFrame = serde_json::from_str(r#"{"type":"later","x":1}"#).unwrap();
    assert!(matches!(frame, ServerFrame::Unknown(_)));
}

/// Any JSON value in any field, and any truncation of a frame's text, gives `Ok` or a typed
/// error — never a panic.
#[test]
fn no_input_panics() {
    let corpus = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/frames")).unwrap();
    let replacements = [
        json!(null),
        json!(-1),
        json!(1.5),
        json!(u64::MAX),
        json!("x"),
        json!([]),
        json!([{}]),
        json!({}),
        json!(true),
    ];
    let mut parsed = 0;
    for dir in corpus {
        for file in std::fs::read_dir(dir.unwrap().path()).unwrap() {
            let text = std::fs::read_to_string(file.unwrap().path()).unwrap();
            let frame: Value = serde_json::from_str(&text).unwrap();
            let mut variants = Vec::new();
            mutate(&frame, &replacements, &mut |mutated| variants.push(mutated));
            for variant in variants {
                let _ = ClientFrame::from_value(variant.clone());
                let _ = ServerFrame::from_value(variant);
                parsed += 2;
            }
            for end in (0..text.len()).filter(|end| text.is_char_boundary(*end)) {
                let _ = ClientFrame::from_json(&text[..end]);
                let _ = ServerFrame::from_json(&text[..end]);
            }
        }
    }
    assert!(parsed > 10_000, "{parsed}");
}

/// Calls `emit` with copies of `value` in which one node is replaced by each replacement.
fn mutate(value: &Value, replacements: &[Value], emit: &mut dyn FnMut(Value)) {
    for replacement in replacements {
        emit(replacement.clone());
    }
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                mutate(child, replacements, &mut |mutated| {
                    let mut copy = map.clone();
                    copy.insert(key.clone(), mutated);
                    emit(Value::Object(copy));
                });
            }
        }
        Value::Array(items) => {
            for (index, child) in items.iter().enumerate() {
                mutate(child, replacements, &mut |mutated| {
                    let mut copy = items.clone();
                    copy[index] = mutated;
                    emit(Value::Array(copy));
                });
            }
        }
        _ => {}
    }
}

/// Informational values nested inside known server frames are open too: a newer server's
/// value is kept, and the frame still parses as its known type.
#[test]
fn unknown_nested_values_in_server_frames_are_kept() {
    let cases = [
        (
            "stream_delta/tool_return_message.final",
            "/delta/tool_returns/0/status",
            json!("partial"),
        ),
        (
            "stream_delta/hidden_reasoning_message",
            "/delta/state",
            json!("encrypted"),
        ),
        ("stream_delta/assistant_message", "/delta/type", json!("chunk")),
        (
            "stream_delta/assistant_message",
            "/delta/content/0",
            json!({"type": "audio", "data": "UklGRg=="}),
        ),
        (
            "control_request/edit_with_diffs",
            "/request/diffs/0",
            json!({"mode": "semantic", "fileName": "x"}),
        ),
        (
            "control_request/edit_with_diffs",
            "/request/diffs/0/hunks/0/lines/0/type",
            json!("moved"),
        ),
        ("control_request/example", "/request/subtype", json!("can_use_network")),
        (
            "file_ops/agent_write_broadcast",
            "/ops",
            json!([{"type": "move", "pos": 1}]),
        ),
        ("update_queue/example", "/queue/0/kind", json!("reminder")),
        ("update_queue/removed", "/removed/0/disposition", json!("expired")),
        ("update_loop_status/example", "/loop_status/status", json!("DREAMING")),
        ("turn_finished/example", "/stop_reason", json!("solar_flare")),
        (
            "update_subagent_state/populated",
            "/subagents/0/status",
            json!("paused"),
        ),
        (
            "update_device_status/example",
            "/device_status/background_processes",
            json!([{"kind": "gpu_job", "x": 1}]),
        ),
        (
            "update_device_status/example",
            "/device_status/current_toolset",
            json!("claude"),
        ),
        ("app_server_info_response/example", "/backend", json!("cloud")),
    ];
    for (golden, pointer, value) in cases {
        let path = format!("{}/../../tests/frames/{golden}.json", env!("CARGO_MANIFEST_DIR"));
        let mut frame: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        *frame
            .pointer_mut(pointer)
            .unwrap_or_else(|| panic!("{golden}: no {pointer}")) = value;
        let parsed = ServerFrame::from_value(frame.clone()).unwrap_or_else(|e| panic!("{golden} {pointer}: {e}"));
        assert!(!matches!(parsed, ServerFrame::Unknown(_)), "{golden} {pointer}");
        assert_eq!(serde_json::to_value(&parsed).unwrap(), frame, "{golden} {pointer}");
    }
}

#[test]
fn shape_checks_reject_what_real_letta_drops() {
    let cases = [
        (
            json!({"type": "sync", "runtime": {"agent_id": "", "conversation_id": "c"}}),
            "runtime.agent_id",
        ),
        (
            json!({"type": "sync", "runtime": {"agent_id": "a", "conversation_id": ""}}),
            "runtime.conversation_id",
        ),
        (
            json!({"type": "input", "request_id": "", "runtime": scope(), "payload": {"kind": "create_message", "messages": []}}),
            "request_id",
        ),
        (json!({"type": "app_server_info", "request_id": ""}), "request_id"),
        (
            json!({"type": "input", "runtime": scope(), "payload": {"kind": "approval_response", "request_id": "perm-1"}}),
            "payload",
        ),
        (
            json!({"type": "input", "runtime": scope(), "payload": {"kind": "approval_response", "request_id": "perm-1",
                "decision": {"behavior": "allow"}, "error": "both"}}),
            "payload",
        ),
        (
            json!({"type": "runtime_external_tools_update", "request_id": "u", "updates": [{"runtimes": [], "external_tools": []}]}),
            "updates[0].runtimes",
        ),
        (
            json!({"type": "runtime_external_tools_update", "request_id": "u", "updates": [
                {"runtimes": [scope()], "external_tools": []}, {"runtimes": [scope()], "external_tools": []}]}),
            "updates[1].runtimes[0]",
        ),
    ];
    for (frame, path) in cases {
        let error = client_error(frame.clone());
        assert_eq!(
            (error.kind, error.path.as_deref()),
            (FrameErrorKind::InvalidFrame, Some(path)),
            "{frame}: {error}"
        );
    }
    let error = client_error(json!({"type": "external_tool_call_response", "request_id": "external-tool-1"}));
    assert_eq!(
        (error.path, error.reason.as_str()),
        (None, "exactly one of `result` and `error` is required")
    );
}
