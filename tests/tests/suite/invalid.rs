//! Every case of `tests/invalid_frames/` is rejected with the expected `error` frame, which
//! itself is a valid server frame.

use letta_app_server_protocol::{ClientFrame, ServerFrame};
use letta_app_server_tests::invalid_frames;
use serde_json::Value;

use crate::support::{Direction, Schemas, assert_no_failures};

#[test]
fn every_invalid_frame_is_rejected_with_the_expected_error() {
    let schemas = Schemas::load();
    let cases = invalid_frames();
    assert!(
        cases.len() >= 20,
        "expected the invalid-frame corpus, found {}",
        cases.len()
    );
    let mut failures = Vec::new();
    for case in cases {
        let error = match ClientFrame::from_json(&case.text) {
            Ok(frame) => {
                failures.push(format!("{}: accepted as {frame:?}", case.case));
                continue;
            }
            Err(error) => error,
        };
        let frame = serde_json::to_value(ServerFrame::Error(error.to_error_frame())).expect("error frame serialises");
        let field = |name: &str| frame.get(name).cloned().unwrap_or(Value::Null);
        for name in ["code", "request_id", "frame_type"] {
            let expected = case.expect.get(name).cloned().unwrap_or(Value::Null);
            if field(name) != expected {
                failures.push(format!(
                    "{}: `{name}` is {} instead of {expected} ({error})",
                    case.case,
                    field(name)
                ));
            }
        }
        if let Some(path) = case.expect.get("path").and_then(Value::as_str) {
            let message = field("message");
            if error.path.as_deref() != Some(path) || !message.as_str().is_some_and(|m| m.contains(path)) {
                failures.push(format!(
                    "{}: expected field `{path}`, got {:?}: {message}",
                    case.case, error.path
                ));
            }
        }
        failures.extend(
            schemas
                .errors(Direction::Server, &frame)
                .into_iter()
                .map(|e| format!("{}: error frame: {e}", case.case)),
        );
    }
    assert_no_failures("invalid frames handled wrongly", &failures);
}
