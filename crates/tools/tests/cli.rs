//! `letta-app-server-tools` as its users run it: the built binary on real files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::json;

fn tools() -> Command {
    Command::new(env!("CARGO_BIN_EXE_letta-app-server-tools"))
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn run(command: &mut Command) -> Output {
    command.output().expect("the tools binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs `validate` with `input` on standard input and the given arguments.
fn validate_stdin(input: &str, args: &[&str]) -> Output {
    use std::io::Write as _;
    let mut child = tools()
        .arg("validate")
        .args(args)
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the tools binary starts");
    let written = child.stdin.take().expect("a stdin pipe").write_all(input.as_bytes());
    // The binary may stop before it reads its input (a bad schema bundle): a closed pipe is fine.
    if let Err(error) = written {
        assert_eq!(
            error.kind(),
            std::io::ErrorKind::BrokenPipe,
            "writing the transcript: {error}"
        );
    }
    child.wait_with_output().expect("the tools binary ends")
}

#[test]
fn schema_export_writes_the_checked_in_files_byte_for_byte() {
    let out = tempfile::tempdir().expect("a temporary directory");
    let output = run(tools().args(["schema", "export", "--out"]).arg(out.path()));
    assert!(output.status.success(), "{output:?}");
    for (name, checked_in) in [
        ("frames.schema.json", "schema/frames.schema.json"),
        ("meta.json", "schema/meta.json"),
        ("frames.d.ts", "bindings/node/frames.d.ts"),
        ("frames.py", "bindings/python/python/letta_app_server/frames.py"),
    ] {
        let exported = std::fs::read(out.path().join(name)).expect("an exported file");
        let expected = std::fs::read(repo_root().join(checked_in)).expect("a checked-in file");
        assert!(exported == expected, "{name} differs from {checked_in}");
    }
}

#[test]
fn schema_export_writes_only_the_language_asked_for() {
    let out = tempfile::tempdir().expect("a temporary directory");
    let output = run(tools()
        .args(["schema", "export", "--lang", "ts", "--out"])
        .arg(out.path().join("new")));
    assert!(output.status.success(), "{output:?}");
    let mut names: Vec<String> = std::fs::read_dir(out.path().join("new"))
        .expect("the directory was created")
        .map(|entry| entry.expect("an entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["frames.d.ts"]);
}

#[test]
fn validate_reports_each_invalid_frame_with_its_line_type_path_and_reason() {
    let transcript = [
        json!({"dir": "send", "frame": {"type": "app_server_info", "request_id": "i-1"}}).to_string(),
        json!({"dir": "event", "event": "open"}).to_string(),
        json!({"dir": "send", "frame": {"type": "runtime_start", "request_id": "rs-1", "agent_id": 42}}).to_string(),
        json!({"dir": "send", "raw": "{not json"}).to_string(),
        json!({"dir": "recv", "frame": {"type": "pong"}}).to_string(),
    ]
    .join("\n");
    let output = validate_stdin(&transcript, &[]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let text = stdout(&output);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("-:3: client runtime_start: agent_id: 42 is not of types"),
        "{text}"
    );
    assert!(lines[1].starts_with("-:4: client (no type): not JSON:"), "{text}");
    assert_eq!(
        lines[2],
        "-:5: server pong: type: `pong` is not a server frame type of this schema"
    );
    assert!(text.contains("client    app_server_info        1        0"), "{text}");
    assert!(text.ends_with("4 messages checked, 3 invalid\n"), "{text}");
}

#[test]
fn validate_exits_0_on_a_valid_transcript_and_2_on_trouble() {
    let valid = json!([{"type": "app_server_info", "request_id": "i-1"}]).to_string();
    let output = validate_stdin(&valid, &["--quiet"]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(stdout(&output), "");

    let output = run(tools().args(["validate", "/nonexistent/transcript.jsonl"]));
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("reading /nonexistent/transcript.jsonl"));

    let not_a_bundle = tempfile::NamedTempFile::new().expect("a temporary file");
    std::fs::write(not_a_bundle.path(), "{}").expect("writing");
    let output = validate_stdin(&valid, &["--schema", &not_a_bundle.path().display().to_string()]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
}

#[test]
fn validate_takes_the_sender_from_the_flag_when_the_transcript_does_not_say() {
    // `file_ops` is sent both ways: without a sender, a frame without `event_seq` is a client's.
    let file_ops = json!({"type": "file_ops", "operations": []}).to_string();
    let as_client = validate_stdin(&file_ops, &["--quiet"]);
    let as_server = validate_stdin(&file_ops, &["--quiet", "--direction", "server"]);
    assert!(
        stdout(&as_client).lines().all(|line| line.contains(" client ")),
        "{as_client:?}"
    );
    assert!(
        stdout(&as_server).lines().any(|line| line.contains(" server file_ops")),
        "{as_server:?}"
    );
}

#[test]
fn validate_reads_the_websocket_messages_of_a_har_export() {
    let har = json!({"log": {"entries": [
        {"request": {"url": "http://127.0.0.1:4500/"}},
        {"request": {"url": "ws://127.0.0.1:4500/ws"}, "_webSocketMessages": [
            {"type": "send", "time": 1.0, "opcode": 1, "data": r#"{"type":"app_server_info","request_id":"i-1"}"#},
            {"type": "receive", "time": 1.1, "opcode": 2, "data": "AAEC"},
            {"type": "receive", "time": 1.2, "opcode": 1, "data": r#"{"type":"app_server_info_response"}"#}
        ]}
    ]}});
    let output = validate_stdin(&serde_json::to_string_pretty(&har).expect("json"), &[]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let text = stdout(&output);
    assert!(
        text.starts_with("-:message 3: server app_server_info_response: request_id: missing required field\n"),
        "{text}"
    );
    assert!(text.ends_with("2 messages checked, 1 invalid\n"), "{text}");
}

#[test]
fn validate_checks_against_another_bundle_when_given_one() {
    // A bundle in which `app_server_info` has no `request_id` property and allows no other.
    let bundle = json!({"definitions": {
        "ClientFrame": {"oneOf": [{"type": "object", "additionalProperties": false,
            "properties": {"type": {"const": "app_server_info"}}, "required": ["type"]}]},
        "ServerFrame": {"oneOf": []}
    }});
    let file = tempfile::NamedTempFile::new().expect("a temporary file");
    std::fs::write(file.path(), bundle.to_string()).expect("writing");
    let frame = json!({"type": "app_server_info", "request_id": "i-1"}).to_string();
    let output = validate_stdin(&frame, &["--quiet", "--schema", &file.path().display().to_string()]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert_eq!(
        stdout(&output),
        "-:1: client app_server_info: request_id: unknown field\n"
    );
}

#[test]
fn validate_keeps_what_a_receiver_keeps_when_asked() {
    let frames = [
        json!({"dir": "recv", "frame": {"type": "hologram_ready"}}).to_string(),
        json!({"dir": "recv", "frame": {"type": "turn_finished", "turn_id": "turn-1", "stop_reason": "solar_flare",
            "run_id": "run-1", "runtime": {"agent_id": "agent-1", "conversation_id": "conv-1"},
            "event_seq": 1, "emitted_at": "2026-12-03T00:00:00.000Z", "idempotency_key": "turn_finished:1:x"}})
        .to_string(),
        json!({"dir": "send", "frame": {"type": "hologram_start", "request_id": "h-1"}}).to_string(),
    ]
    .join("\n");
    let strict = validate_stdin(&frames, &["--quiet"]);
    assert_eq!(stdout(&strict).lines().count(), 3, "{strict:?}");
    // Unknown server frame types and stop reasons are kept; an unknown command is still refused.
    let keeping = validate_stdin(&frames, &["--quiet", "--keep-unknown"]);
    assert_eq!(
        stdout(&keeping),
        "-:3: client hologram_start: type: `hologram_start` is not a client frame type of this schema\n"
    );
}
