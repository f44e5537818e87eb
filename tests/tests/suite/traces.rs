//! Every frame of every recorded session against real Letta Code (`tests/traces/`) parses:
//! server frames into [`ServerFrame`] (Tier-B types into `Unknown`, kept verbatim), client
//! frames into [`ClientFrame`] — except the frames the recordings sent on purpose to show how
//! bad input is treated, which must fail with the expected error.

use letta_app_server_client::types;
use letta_app_server_protocol::{ClientFrame, FrameErrorKind, SERVER_FRAMES, ServerFrame};
use letta_app_server_tests::{TraceLine, trace_lines};
use serde_json::Value;

use crate::support::{Direction, Schemas, assert_no_failures};

/// The recordings replaced long lists in device statuses with `"<trimmed N entries>"`, and cut
/// the list of `list_connect_providers_response` short with a last `"<trimmed>"` item; put an
/// empty list back and drop the marker item, so the frame has its wire shape.
fn untrimmed(mut frame: Value) -> Value {
    fn visit(value: &mut Value) {
        match value {
            Value::String(s) if s.starts_with("<trimmed ") && s.ends_with(" entries>") => {
                *value = Value::Array(Vec::new())
            }
            Value::Object(map) => map.values_mut().for_each(visit),
            Value::Array(items) => {
                items.retain(|item| item != "<trimmed>");
                items.iter_mut().for_each(visit)
            }
            _ => {}
        }
    }
    visit(&mut frame);
    frame
}

fn frames(dir: &str) -> impl Iterator<Item = (TraceLine, Value)> {
    let dir = dir.to_owned();
    trace_lines().into_iter().filter(move |l| l.dir == dir).map(|l| {
        let frame = untrimmed(l.frame.clone());
        (l, frame)
    })
}

fn at(line: &TraceLine) -> String {
    format!("{}:{} ({})", line.file, line.line, line.conn)
}

#[test]
fn every_recorded_server_frame_parses() {
    let schemas = Schemas::load();
    let mut failures = Vec::new();
    let mut known = 0;
    for (line, frame) in frames("in") {
        let frame_type = frame["type"].as_str().unwrap_or_default().to_owned();
        let is_known = SERVER_FRAMES.iter().any(|f| f.name == frame_type);
        let parsed = match ServerFrame::from_value(frame.clone()) {
            Ok(parsed) => parsed,
            Err(error) => {
                failures.push(format!("{}: {error}", at(&line)));
                continue;
            }
        };
        if is_known == matches!(parsed, ServerFrame::Unknown(_)) {
            failures.push(format!("{}: `{frame_type}` parsed as {parsed:?}", at(&line)));
        }
        if serde_json::to_value(&parsed).ok().as_ref() != Some(&frame) {
            failures.push(format!("{}: `{frame_type}` did not re-serialise unchanged", at(&line)));
        }
        if is_known {
            known += 1;
            failures.extend(
                schemas
                    .errors(Direction::Server, &frame)
                    .into_iter()
                    .map(|e| format!("{}: {e}", at(&line))),
            );
            match serde_json::from_value::<types::ServerFrame>(frame.clone()) {
                Ok(generated) if serde_json::to_value(&generated).ok().as_ref() == Some(&frame) => {}
                Ok(_) => failures.push(format!(
                    "{}: generated types did not re-serialise `{frame_type}` unchanged",
                    at(&line)
                )),
                Err(error) => failures.push(format!("{}: generated types: {error}", at(&line))),
            }
        }
    }
    assert!(known > 500, "expected the recorded Tier-A frames, found {known}");
    assert_no_failures("recorded server frames that do not parse", &failures);
}

/// The outcome the protocol crate must give a frame a recording sent on purpose.
fn expected_failure(frame: &Value) -> Option<(FrameErrorKind, Option<&'static str>)> {
    let Some(frame_type) = frame["type"].as_str() else {
        return Some((FrameErrorKind::MalformedJson, None)); // recorded as the raw non-JSON text
    };
    match (
        frame_type,
        frame["request_id"].as_str(),
        frame["payload"]["mode"].as_str(),
    ) {
        // A command no version of the protocol declares.
        ("no_such_command", _, _) => Some((FrameErrorKind::UnknownType, None)),
        // `create_message` without `messages`, an unknown payload kind, an approval message
        // inside `create_message`.
        ("input", Some("bad-1"), _) => Some((FrameErrorKind::InvalidFrame, Some("payload"))),
        ("input", Some("bad-2"), _) => Some((FrameErrorKind::InvalidFrame, Some("payload.kind"))),
        ("input", Some("bad-3"), _) => Some((FrameErrorKind::InvalidFrame, Some("payload.messages[0].type"))),
        ("change_device_state", _, Some("bogusMode")) => Some((FrameErrorKind::InvalidFrame, Some("payload.mode"))),
        _ => None,
    }
}

#[test]
fn every_recorded_client_frame_parses_or_fails_as_expected() {
    let schemas = Schemas::load();
    let mut failures = Vec::new();
    let mut rejected = 0;
    for (line, frame) in frames("out") {
        let text = match &frame {
            Value::String(raw) => raw.clone(),
            other => other.to_string(),
        };
        match (ClientFrame::from_json(&text), expected_failure(&frame)) {
            (Ok(parsed), None) => {
                if serde_json::to_value(&parsed).ok().as_ref() != Some(&frame) {
                    failures.push(format!("{}: did not re-serialise unchanged", at(&line)));
                }
                failures.extend(
                    schemas
                        .errors(Direction::Client, &frame)
                        .into_iter()
                        .map(|e| format!("{}: {e}", at(&line))),
                );
            }
            (Err(error), Some((kind, path))) if error.kind == kind && error.path.as_deref() == path => rejected += 1,
            (Err(error), expected) => failures.push(format!(
                "{}: expected {expected:?}, got {:?} ({error})",
                at(&line),
                error.kind
            )),
            (Ok(parsed), Some(expected)) => {
                failures.push(format!("{}: expected {expected:?}, parsed {parsed:?}", at(&line)))
            }
        }
    }
    assert_eq!(
        rejected, 6,
        "the recordings' deliberately bad frames and a made-up command"
    );
    assert_no_failures("recorded client frames with an unexpected outcome", &failures);
}
