//! The protocol table: names, pairings and conversions derived from the one declaration.

use letta_app_server_protocol::*;
use serde_json::json;

#[test]
fn commands_pair_with_their_responses() {
    assert_eq!(RuntimeStart::TYPE, "runtime_start");
    assert_eq!(<RuntimeStart as Request>::Response::TYPE, "runtime_start_response");
    assert_eq!(<Input as Request>::Response::TYPE, "input_accepted");
    assert_eq!(
        <RuntimeExternalToolsUpdate as Request>::Response::TYPE,
        "runtime_external_tools_update_response"
    );
    // Properties of the whole table rather than a copy of it, so adding a command needs no edit
    // here.
    let unique = |names: Vec<&str>| {
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        sorted.len() == names.len()
    };
    assert!(
        unique(COMMANDS.iter().map(|c| c.name).collect()),
        "a command is declared twice"
    );
    assert!(
        unique(COMMANDS.iter().filter_map(|c| c.response).collect()),
        "two commands share a response"
    );
    assert!(
        unique(COMMANDS.iter().filter_map(|c| c.request_id_prefix).collect()),
        "two commands share a request-id prefix"
    );
    for command in COMMANDS {
        assert_eq!(
            command.response.is_some(),
            command.request_id_prefix.is_some(),
            "{}: a command with a response has a request-id prefix, and only then",
            command.name
        );
        assert_eq!(
            command.response.is_some(),
            command.answers != Answers::None,
            "{}: answered exactly when it has a response",
            command.name
        );
        if let Some(response) = command.response {
            let expected = if command.name == "input" {
                "input_accepted".to_owned()
            } else {
                format!("{}_response", command.name)
            };
            assert_eq!(
                response, expected,
                "{}: the response is named after the command",
                command.name
            );
            assert!(
                SERVER_FRAMES
                    .iter()
                    .any(|f| f.name == response && f.kind == ServerFrameKind::Response),
                "{response} is not listed as a response"
            );
        }
    }
    let answers = |name: &str| COMMANDS.iter().find(|c| c.name == name).map(|c| (c.answers, c.refuses));
    assert_eq!(answers("change_device_state"), Some((Answers::None, false)));
    assert_eq!(answers("sync"), Some((Answers::One, false)));
    assert_eq!(answers("conversation_list"), Some((Answers::One, true)));
    assert_eq!(answers("list_memory"), Some((Answers::Stream, true)));
}

#[test]
fn every_listed_frame_type_is_a_variant() {
    let kinds = |kind| SERVER_FRAMES.iter().filter(|f| f.kind == kind).count();
    assert_eq!(
        kinds(ServerFrameKind::Response),
        COMMANDS.iter().filter(|c| c.response.is_some()).count()
    );
    assert_eq!(kinds(ServerFrameKind::Event), EVENTS.len());
    for name in [
        "external_tool_call_request",
        "error",
        "crons_updated",
        "channels_updated",
        "file_changed",
        "terminal_output",
        "memory_updated",
        "skills_updated",
    ] {
        assert!(
            SERVER_FRAMES
                .iter()
                .any(|f| f.name == name && f.kind == ServerFrameKind::Notification),
            "{name} is a direct notification"
        );
    }
    for name in CLIENT_FRAMES {
        let error = ClientFrame::from_value(json!({"type": name})).err();
        assert!(
            error.as_ref().is_none_or(|e| e.kind == FrameErrorKind::InvalidFrame),
            "{name} is not dispatched: {error:?}"
        );
    }
    for frame in SERVER_FRAMES {
        let parsed = ServerFrame::from_value(json!({"type": frame.name}));
        assert!(
            parsed.is_err(),
            "{} with no fields should be invalid, not unknown",
            frame.name
        );
    }
}

#[test]
fn responses_convert_to_and_from_server_frames() {
    let response = SyncResponse {
        request_id: "s-1".into(),
        runtime: RuntimeScope::new("a", "c"),
        success: true,
        error: None,
        resume: None,
    };
    let frame = ServerFrame::from(response.clone());
    assert_eq!(frame.frame_type(), "sync_response");
    assert_eq!(SyncResponse::try_from(frame.clone()), Ok(response));
    assert!(InputAccepted::try_from(frame).is_err());
    let frame: ClientFrame = AppServerInfo { request_id: "i".into() }.into();
    assert_eq!(
        serde_json::to_value(frame).unwrap(),
        json!({"type": "app_server_info", "request_id": "i"})
    );
}

#[test]
fn a_runtime_event_plus_its_envelope_is_the_server_frame() {
    let event = RuntimeEvent::from(TurnFinished {
        turn_id: "batch-1".into(),
        stop_reason: StopReason::EndTurn,
        terminal_consumer_ids: None,
        run_id: None,
        error: None,
        usage: None,
    });
    assert_eq!(event.frame_type(), "turn_finished");
    let envelope = Envelope {
        runtime: RuntimeScope::new("a", "c"),
        event_seq: 7,
        emitted_at: "2026-11-25T00:00:00.000Z".into(),
        idempotency_key: "turn_finished:7:u".into(),
        conversation_seq: None,
    };
    let payload = serde_json::to_value(&event).unwrap();
    let frame = event.with_envelope(envelope.clone());
    assert_eq!(frame.envelope(), Some(&envelope));
    // On the wire: the payload's fields, then the envelope's.
    let wire = serde_json::to_string(&frame).unwrap();
    assert_eq!(
        wire,
        r#"{"type":"turn_finished","turn_id":"batch-1","stop_reason":"end_turn","runtime":{"agent_id":"a","conversation_id":"c"},"event_seq":7,"emitted_at":"2026-11-25T00:00:00.000Z","idempotency_key":"turn_finished:7:u"}"#
    );
    let mut expected = payload;
    expected
        .as_object_mut()
        .unwrap()
        .extend(serde_json::to_value(&envelope).unwrap().as_object().unwrap().clone());
    assert_eq!(
        serde_json::to_value(ServerFrame::from_json(&wire).unwrap()).unwrap(),
        expected
    );
}

#[test]
fn a_command_marked_refuses_is_declined_with_its_own_response() {
    let refusal = |frame: serde_json::Value| {
        ClientFrame::from_value(frame)
            .expect("a valid frame")
            .refusal("not here".into())
            .map(|answer| serde_json::to_value(answer).expect("serialises"))
    };
    assert_eq!(
        refusal(json!({"type": "agent_delete", "request_id": "ad-1", "agent_id": "agent-1"})),
        Some(json!({
            "type": "agent_delete_response", "request_id": "ad-1", "success": false,
            "agent_id": "agent-1", "error": "not here",
        }))
    );
    assert_eq!(
        refusal(json!({"type": "conversation_retrieve", "request_id": "cr-1", "conversation_id": "c"})),
        Some(json!({
            "type": "conversation_retrieve_response", "request_id": "cr-1", "success": false,
            "conversation": null, "error": "not here",
        }))
    );
    let scope = json!({"agent_id": "agent-1", "conversation_id": "conv-1"});
    assert_eq!(
        refusal(json!({"type": "resume_queue", "request_id": "rq-1", "runtime": scope})),
        Some(json!({
            "type": "resume_queue_response", "request_id": "rq-1", "runtime": scope,
            "resumed": 0, "success": false, "error": "not here",
        }))
    );
    // Nothing to correlate a response with, or no response that can say so: an `error` frame.
    assert_eq!(refusal(json!({"type": "resume_queue", "runtime": scope})), None);
    assert_eq!(
        refusal(json!({"type": "sync", "request_id": "s-1", "runtime": scope})),
        None
    );
}

/// `ClientFrame::request_id` finds the id of every golden command frame that has one, except
/// `external_tool_call_response`'s, which names the server's request it answers rather than one
/// an answer echoes (docs/protocol.md §3.11); frames of other types have none.
#[test]
fn request_ids_come_from_the_table() {
    let frames = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/frames");
    let mut checked = 0;
    for command in COMMANDS {
        let Ok(cases) = std::fs::read_dir(frames.join(command.name)) else {
            continue;
        };
        for case in cases.filter_map(Result::ok) {
            let text = std::fs::read_to_string(case.path()).expect("golden frame");
            let json: serde_json::Value = serde_json::from_str(&text).expect("JSON");
            let frame = ClientFrame::from_json(&text).expect("golden frames parse");
            let expected = json["request_id"]
                .as_str()
                .filter(|_| command.name != ExternalToolCallResponse::TYPE);
            assert_eq!(frame.request_id(), expected, "{}", case.path().display());
            checked += 1;
        }
    }
    assert!(checked > COMMANDS.len(), "only {checked} golden command frames found");
}
