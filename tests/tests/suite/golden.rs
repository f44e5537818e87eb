//! Every golden frame validates against the schema and round-trips unchanged through the
//! protocol crate's types and through the typify-generated client types.

use letta_app_server_client::types;
use letta_app_server_protocol::{CLIENT_FRAMES, ClientFrame, Delta, SERVER_FRAMES, ServerFrame};
use letta_app_server_tests::{GoldenFrame, golden_frames};
use serde_json::Value;

use crate::support::{Direction, Schemas, assert_no_failures};

fn protocol_round_trip(frame: &GoldenFrame, direction: Direction) -> Result<Value, String> {
    let text = frame.json.to_string();
    let reserialized = match direction {
        Direction::Client => serde_json::to_value(ClientFrame::from_json(&text).map_err(|e| e.to_string())?),
        Direction::Server => {
            let parsed = ServerFrame::from_json(&text).map_err(|e| e.to_string())?;
            if let ServerFrame::Unknown(_) = parsed {
                return Err("parsed as an unknown frame type".into());
            }
            serde_json::to_value(parsed)
        }
    };
    reserialized.map_err(|e| e.to_string())
}

fn generated_round_trip(frame: &GoldenFrame, direction: Direction) -> Result<Value, String> {
    let value = frame.json.clone();
    let reserialized = match direction {
        Direction::Client => {
            serde_json::to_value(serde_json::from_value::<types::ClientFrame>(value).map_err(|e| e.to_string())?)
        }
        Direction::Server => {
            serde_json::to_value(serde_json::from_value::<types::ServerFrame>(value).map_err(|e| e.to_string())?)
        }
    };
    reserialized.map_err(|e| e.to_string())
}

#[test]
fn golden_frames_are_filed_under_their_type() {
    let failures: Vec<String> = golden_frames()
        .iter()
        .filter(|f| f.json["type"].as_str() != Some(f.frame_type.as_str()))
        .map(|f| format!("{}: `type` is {}", f.name(), f.json["type"]))
        .collect();
    assert_no_failures("golden frames in the wrong directory", &failures);
}

#[test]
fn every_golden_frame_validates_against_the_schema() {
    let schemas = Schemas::load();
    let failures: Vec<String> = golden_frames()
        .iter()
        .flat_map(|f| {
            f.directions()
                .flat_map(|direction| schemas.errors(direction, &f.json))
                .map(|e| format!("{}: {e}", f.name()))
                .collect::<Vec<_>>()
        })
        .collect();
    assert_no_failures("schema violations", &failures);
}

#[test]
fn every_golden_frame_round_trips_through_the_protocol_types() {
    let mut failures = Vec::new();
    for frame in golden_frames() {
        for direction in frame.directions() {
            match protocol_round_trip(&frame, direction) {
                Ok(value) if value == frame.json => {}
                Ok(value) => failures.push(format!("{}: re-serialised as {value}", frame.name())),
                Err(error) => failures.push(format!("{}: {error}", frame.name())),
            }
        }
    }
    assert_no_failures("protocol round-trip failures", &failures);
}

#[test]
fn every_golden_frame_round_trips_through_the_generated_client_types() {
    let mut failures = Vec::new();
    for frame in golden_frames() {
        for direction in frame.directions() {
            match (
                generated_round_trip(&frame, direction),
                protocol_round_trip(&frame, direction),
            ) {
                (Ok(generated), Ok(protocol)) if generated == frame.json && generated == protocol => {}
                (Ok(generated), _) if generated != frame.json => {
                    failures.push(format!("{}: re-serialised as {generated}", frame.name()))
                }
                (Ok(_), protocol) => {
                    failures.push(format!("{}: the protocol types disagree: {protocol:?}", frame.name()))
                }
                (Err(error), _) => failures.push(format!("{}: {error}", frame.name())),
            }
        }
    }
    assert_no_failures("generated-type round-trip failures", &failures);
}

#[test]
fn every_frame_type_has_a_golden_frame() {
    let frames = golden_frames();
    let server = SERVER_FRAMES.iter().map(|f| f.name);
    let missing: Vec<String> = CLIENT_FRAMES
        .iter()
        .copied()
        .chain(server)
        .filter(|name| !frames.iter().any(|f| f.frame_type == *name))
        .map(str::to_owned)
        .collect();
    assert_no_failures("frame types without a golden frame", &missing);
}

#[test]
fn every_delta_message_type_has_a_golden_frame() {
    let frames = golden_frames();
    let missing: Vec<String> = Delta::TAGS
        .iter()
        .filter(|t| {
            !frames
                .iter()
                .any(|f| f.frame_type == "stream_delta" && f.json["delta"]["message_type"] == **t)
        })
        .map(|t| (*t).to_owned())
        .collect();
    assert_no_failures("delta message types without a golden frame", &missing);
}

/// Optional cross-check: with `LETTA_REFERENCE_FRAMES` set to a folder of the real server's
/// published examples (`*.json` plus `variants/*.json`), each must be in the corpus unchanged. The
/// corpus itself is the source of truth, so without the variable the test says so and passes.
#[test]
fn every_reference_example_is_in_the_corpus() {
    let Some(shared) = std::env::var_os("LETTA_REFERENCE_FRAMES").map(std::path::PathBuf::from) else {
        eprintln!("skipped: set LETTA_REFERENCE_FRAMES to a folder of reference examples to compare them");
        return;
    };
    let top = std::fs::read_dir(&shared).unwrap_or_else(|e| panic!("{}: {e}", shared.display()));
    let variants = std::fs::read_dir(shared.join("variants")).expect("variants directory");
    let corpus: Vec<Value> = golden_frames().into_iter().map(|f| f.json).collect();
    let mut checked = 0;
    let mut missing = Vec::new();
    for path in top
        .chain(variants)
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
    {
        let example: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("example")).expect("example is JSON");
        checked += 1;
        if !corpus.contains(&example) {
            missing.push(path.display().to_string());
        }
    }
    assert!(checked > 60, "expected the reference examples, found {checked}");
    assert_no_failures("reference examples missing from tests/frames", &missing);
}

/// typify turns a `oneOf` into an untagged enum with anonymous variants when a branch is not a
/// plain object; these matches only compile while the generated unions keep their tags and names.
#[test]
fn generated_unions_stay_tagged() {
    let frame: types::ClientFrame =
        serde_json::from_str(r#"{"type":"runtime_start","request_id":"rs-1","agent_id":"agent-1"}"#)
            .expect("runtime_start");
    assert!(
        matches!(frame, types::ClientFrame::RuntimeStart { ref agent_id, .. } if agent_id.as_deref() == Some("agent-1"))
    );

    let frame: types::ServerFrame =
        serde_json::from_value(golden("stream_delta", "assistant_message")).expect("stream_delta");
    let types::ServerFrame::StreamDelta { delta, event_seq, .. } = frame else {
        panic!("not a stream_delta: {frame:?}")
    };
    assert_eq!(event_seq, 13);
    assert!(matches!(delta, types::Delta::AssistantMessage { .. }));

    let frame: types::ClientFrame = serde_json::from_value(golden("input", "approval_response.deny")).expect("input");
    let types::ClientFrame::Input { payload, .. } = frame else {
        panic!("not an input")
    };
    let types::InputPayload::ApprovalResponse {
        decision: Some(types::ApprovalDecision::Deny { message }),
        ..
    } = payload
    else {
        panic!("not a denial: {payload:?}")
    };
    assert_eq!(message, "Not now");

    let unknown = serde_json::from_str::<types::ClientFrame>(r#"{"type":"no_such_command"}"#);
    assert!(unknown.is_err(), "the generated client union must check the tag");
}

fn golden(frame_type: &str, case: &str) -> Value {
    golden_frames()
        .into_iter()
        .find(|f| f.frame_type == frame_type && f.case == case)
        .unwrap_or_else(|| panic!("no golden frame {frame_type}/{case}"))
        .json
}

/// Parses `value` into the generated struct named after `frame_type` as `direction` sends it and
/// serialises it back.
fn named_round_trip(direction: Direction, frame_type: &str, value: Value) -> Option<Result<Value, String>> {
    fn through<T: serde::de::DeserializeOwned + serde::Serialize>(value: Value) -> Result<Value, String> {
        let typed: T = serde_json::from_value(value).map_err(|e| e.to_string())?;
        serde_json::to_value(typed).map_err(|e| e.to_string())
    }
    macro_rules! named {
        ($($side:ident $wire:literal => $name:ident),* $(,)?) => {
            match (direction, frame_type) {
                $((Direction::$side, $wire) => Some(through::<types::$name>(value)),)*
                _ => None,
            }
        };
    }
    letta_app_server_tests::with_named_frames!(named)
}

/// The client sends commands and reads answers through the struct generated for each frame
/// type (the schema's named definitions), so those must round-trip as the unions do.
#[test]
fn every_golden_frame_round_trips_through_its_named_client_type() {
    let mut failures = Vec::new();
    for frame in golden_frames() {
        for direction in frame.directions() {
            match named_round_trip(direction, &frame.frame_type, frame.json.clone()) {
                Some(Ok(value)) if value == frame.json => {}
                Some(Ok(value)) => failures.push(format!("{}: re-serialised as {value}", frame.name())),
                Some(Err(error)) => failures.push(format!("{}: {error}", frame.name())),
                None => failures.push(format!("{}: no named type for `{}`", frame.name(), frame.frame_type)),
            }
        }
    }
    assert_no_failures("named-type round-trip failures", &failures);
}

/// A `composed.unsupported` response is exactly what the protocol crate's refusal of a golden
/// frame of its command (the one with the same `request_id`) gives, with the server's text.
#[test]
fn every_unsupported_response_is_the_refusal_of_a_golden_command() {
    let golden = golden_frames();
    let mut failures = Vec::new();
    let mut checked = 0;
    for response in golden.iter().filter(|frame| frame.case == "composed.unsupported") {
        let Some(command) = letta_app_server_protocol::COMMANDS
            .iter()
            .find(|command| command.response == Some(response.frame_type.as_str()))
        else {
            failures.push(format!("{}: not the response of a command", response.name()));
            continue;
        };
        let refusal = golden
            .iter()
            .filter(|frame| frame.frame_type == command.name && frame.json["request_id"] == response.json["request_id"])
            .find_map(|frame| {
                let parsed = ClientFrame::from_value(frame.json.clone()).ok()?;
                parsed.refusal(format!("this server does not support `{}` yet", command.name))
            });
        match refusal.map(|answer| serde_json::to_value(answer).map_err(|e| e.to_string())) {
            Some(Ok(answer)) if answer == response.json => checked += 1,
            Some(Ok(answer)) => failures.push(format!("{}: the refusal is {answer}", response.name())),
            Some(Err(error)) => failures.push(format!("{}: {error}", response.name())),
            None => failures.push(format!(
                "{}: no golden `{}` with its request_id is refused with a response",
                response.name(),
                command.name
            )),
        }
    }
    assert!(checked > 0, "no composed.unsupported responses found");
    assert_no_failures("unsupported responses unlike the refusal", &failures);
}
