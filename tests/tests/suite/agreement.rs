//! The parser and the schema agree on which frames are valid: `ClientFrame::from_json` /
//! `ServerFrame::from_value` accept a frame exactly when `schema/frames.schema.json` does.
//!
//! * Every case of `tests/invalid_frames/` is rejected by both, except the cases marked
//!   `schema_accepts` (checks the schema does not express), which the schema must accept.
//! * Every golden client frame is accepted by both.
//! * Every golden frame with one of its objects written as an array — the positional form that
//!   serde's derive reads into a struct — or as `[]` is rejected by both, or accepted by both
//!   where the object is opaque to the protocol (an agent state, a tool's parameter schema).

use letta_app_server_protocol::{ClientFrame, ServerFrame};
use letta_app_server_tests::{golden_frames, invalid_frames};
use serde_json::Value;

use crate::support::{Direction, Schemas, assert_no_failures};

/// Whether the parser accepts `frame`, and its error if not.
fn parse(direction: Direction, frame: &Value) -> Result<(), String> {
    match direction {
        Direction::Client => ClientFrame::from_value(frame.clone()).map(drop),
        Direction::Server => ServerFrame::from_value(frame.clone()).map(drop),
    }
    .map_err(|e| e.to_string())
}

#[test]
fn the_parser_and_the_schema_reject_the_same_invalid_frames() {
    let schemas = Schemas::load();
    let mut failures = Vec::new();
    let mut rejected_by_both = 0;
    for case in invalid_frames() {
        if let Ok(frame) = ClientFrame::from_json(&case.text) {
            failures.push(format!("{}: the parser accepts it as {frame:?}", case.case));
        }
        // Text that is not JSON is rejected by any schema validator before validation.
        let schema_errors = serde_json::from_str::<Value>(&case.text)
            .map(|json| schemas.errors(Direction::Client, &json))
            .unwrap_or_else(|e| vec![e.to_string()]);
        match (schema_errors.is_empty(), case.schema_accepts) {
            (false, false) => rejected_by_both += 1,
            (true, true) => {}
            (true, false) => failures.push(format!(
                "{}: the schema accepts it (mark it `schema_accepts` only for checks the schema cannot express)",
                case.case
            )),
            (false, true) => failures.push(format!(
                "{}: marked `schema_accepts`, but the schema rejects it: {schema_errors:?}",
                case.case
            )),
        }
    }
    assert_no_failures("disagreements on invalid frames", &failures);
    assert!(rejected_by_both >= 20, "only {rejected_by_both} cases");
}

#[test]
fn the_parser_and_the_schema_accept_every_golden_client_frame() {
    let schemas = Schemas::load();
    let mut failures = Vec::new();
    let mut checked = 0;
    for golden in golden_frames().into_iter().filter(|f| f.sent_by(Direction::Client)) {
        if let Err(error) = parse(Direction::Client, &golden.json) {
            failures.push(format!("{}: the parser rejects it: {error}", golden.name()));
        }
        for error in schemas.errors(Direction::Client, &golden.json) {
            failures.push(format!("{}: the schema rejects it: {error}", golden.name()));
        }
        checked += 1;
    }
    assert_no_failures("golden client frames rejected", &failures);
    assert!(checked >= 10, "only {checked} client frames");
}

#[test]
fn the_parser_and_the_schema_agree_on_objects_written_as_arrays() {
    let schemas = Schemas::load();
    let mut failures = Vec::new();
    let mut rejected_by_both = 0;
    for golden in golden_frames() {
        for (direction, (path, mutated)) in golden.directions().flat_map(|direction| {
            objects_as_arrays(&golden.json, "")
                .into_iter()
                .map(move |m| (direction, m))
        }) {
            let parsed = parse(direction, &mutated);
            let schema_errors = schemas.errors(direction, &mutated);
            match (parsed, schema_errors.is_empty()) {
                (Err(_), false) => rejected_by_both += 1,
                (Ok(()), true) => {}
                (Ok(()), false) => failures.push(format!(
                    "{} at `{path}`: the parser accepts an array, the schema does not: {schema_errors:?}",
                    golden.name()
                )),
                (Err(error), true) => failures.push(format!(
                    "{} at `{path}`: the schema accepts an array, the parser does not: {error}",
                    golden.name()
                )),
            }
        }
    }
    assert_no_failures("disagreements on objects written as arrays", &failures);
    assert!(rejected_by_both >= 500, "only {rejected_by_both} mutations rejected");
}

/// Copies of `value` in which one object (at any depth) is replaced by the array of its values
/// and by `[]`, each with the path of the replaced object.
fn objects_as_arrays(value: &Value, path: &str) -> Vec<(String, Value)> {
    let mut mutations = Vec::new();
    match value {
        Value::Object(map) => {
            mutations.push((path.to_owned(), Value::Array(map.values().cloned().collect())));
            mutations.push((path.to_owned(), Value::Array(Vec::new())));
            for (key, child) in map {
                let child_path = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                for (inner, mutated) in objects_as_arrays(child, &child_path) {
                    let mut copy = map.clone();
                    copy.insert(key.clone(), mutated);
                    mutations.push((inner, Value::Object(copy)));
                }
            }
        }
        Value::Array(items) => {
            for (index, child) in items.iter().enumerate() {
                for (inner, mutated) in objects_as_arrays(child, &format!("{path}[{index}]")) {
                    let mut copy = items.clone();
                    copy[index] = mutated;
                    mutations.push((inner, Value::Array(copy)));
                }
            }
        }
        _ => {}
    }
    mutations
}
