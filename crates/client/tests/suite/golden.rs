//! Every golden server frame goes through the client's receive path unchanged.

use letta_app_server_client::RawFrame;
use letta_app_server_tests::golden_frames;
use letta_app_server_tests::schema::Direction;

#[test]
fn every_golden_server_frame_is_read_typed_and_unchanged() {
    let mut failures = Vec::new();
    for golden in golden_frames().into_iter().filter(|f| f.sent_by(Direction::Server)) {
        let frame = RawFrame::from(golden.json.to_string()).into_frame();
        let runtime = golden.json.get("runtime").filter(|r| !r.is_null()).map(|r| {
            (
                r["agent_id"].as_str().map(str::to_owned),
                r["conversation_id"].as_str().unwrap_or_default().to_owned(),
            )
        });
        let read_runtime = frame.runtime().map(|r| (r.agent_id.clone(), r.conversation_id.clone()));
        let checks = [
            (frame.frame_type() == golden.frame_type, "type"),
            (
                frame.raw.request_id() == golden.json["request_id"].as_str(),
                "request_id",
            ),
            (read_runtime == runtime, "runtime"),
            (frame.raw.event_seq() == golden.json["event_seq"].as_u64(), "event_seq"),
            (frame.raw.json() == golden.json, "text"),
            (
                frame.typed.as_ref().map(|typed| serde_json::to_value(typed).ok()) == Some(Some(golden.json.clone())),
                "typed round trip",
            ),
        ];
        for (ok, what) in checks {
            if !ok {
                failures.push(format!("{}: {what}", golden.name()));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
