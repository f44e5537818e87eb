//! The conformance kit against this project's server, as the README's recipe runs it: the kit's
//! model server (`conformance --serve-model`), the server binary started with its base URL as
//! `LLAMA_CPP_BASE_URL`, then the kit.
//!
//! The server binary is found by `letta_app_server_tests::process::server_binary`: `cargo xtask
//! test` builds it; alone, run `cargo build -p letta-app-server` first.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};

use letta_app_server_tests::process::{self, ServerProcess};
use serde_json::Value;

/// The kit's binary.
const KIT: &str = env!("CARGO_BIN_EXE_letta-app-server-tools");

/// A child process killed (and reaped) when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `conformance --serve-model` and the base URL it printed.
fn serve_model() -> (Running, String) {
    let mut child = Command::new(KIT)
        .args(["conformance", "--serve-model"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the model server");
    let stdout = child.stdout.take().expect("its stdout");
    let running = Running(child);
    // It prints the line once it listens, and serves until killed.
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read its first line");
    let base = line
        .trim()
        .strip_prefix("LLAMA_CPP_BASE_URL=")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    (running, base)
}

/// The kit run against `url` with `args`.
fn kit(url: &str, args: &[&str]) -> Output {
    Command::new(KIT)
        .arg("conformance")
        .args(args)
        .arg(url)
        .output()
        .expect("run the kit")
}

#[test]
fn every_check_passes_against_this_server() {
    let (_model, base) = serve_model();
    let data = tempfile::tempdir().expect("a data directory");
    let binary = process::server_binary().unwrap_or_else(|e| panic!("{e}"));
    let mut command = process::command(&binary, data.path(), &[]);
    command.env("LLAMA_CPP_BASE_URL", &base);
    let server = ServerProcess::spawn(command).expect("start the server");

    let output = kit(&server.url, &["--json"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "the report is not JSON ({e}): {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    let checks = report["checks"].as_array().expect("a list of checks");
    let names: Vec<&str> = checks.iter().filter_map(|check| check["name"].as_str()).collect();
    let expected: Vec<&str> = letta_app_server_tools::conformance::CHECKS
        .iter()
        .map(|(name, _)| *name)
        .collect();
    assert_eq!(names, expected, "every check runs, in order");
    // The server claims every capability the kit checks: nothing is skipped.
    let unexpected: Vec<&Value> = checks.iter().filter(|check| check["result"] != "pass").collect();
    assert!(unexpected.is_empty(), "{unexpected:#?}");
    assert!(output.status.success(), "{:?}", output.status);
    assert_eq!(report["server"]["protocol_version"], 1);
    assert_eq!(report["summary"]["passed"], Value::from(expected.len()));

    // The text report: a line per check, a summary; the same exit status.
    let output = kit(&server.url, &["--only", "runtime_start,malformed.not_json"]);
    let text = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[..5],
        [
            "PASS runtime_start.create",
            "PASS runtime_start.join",
            "PASS runtime_start.unknown_agent",
            "PASS runtime_start.agent_free",
            "PASS malformed.not_json: answered with an `error` frame `malformed_json`",
        ],
        "{text}"
    );
    assert!(lines[5].starts_with("5 checks against "), "{text}");
    assert!(lines[5].ends_with(": 5 passed, 0 failed, 0 skipped"), "{text}");
    assert!(output.status.success(), "{:?}", output.status);

    // Agents on a model the server cannot resolve are not made: a failure, exit 1.
    let output = kit(&server.url, &["--only", "turn.streamed", "--model", "acme/none"]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.starts_with("FAIL turn.streamed: A: runtime_start failed: "),
        "{text}"
    );
    assert_eq!(output.status.code(), Some(1), "{text}");
}

#[test]
fn a_server_that_cannot_be_checked_exits_2() {
    // The model server speaks HTTP but no websocket: the upgrade fails.
    let (_model, base) = serve_model();
    let url = base.replace("http://", "ws://");
    let output = kit(&url, &[]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot check the server"), "{stderr}");

    let output = kit(&url, &["--only", "no_such_check"]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
}

#[test]
fn the_token_is_sent_with_every_upgrade() {
    let (_model, base) = serve_model();
    let data = tempfile::tempdir().expect("a data directory");
    let token = data.path().join("token");
    std::fs::write(&token, "conformance-token\n").expect("a token file");
    let token = token.to_str().expect("a path");
    let binary = process::server_binary().unwrap_or_else(|e| panic!("{e}"));
    let auth = ["--ws-auth", "capability-token", "--ws-token-file", token];
    let mut command = process::command(&binary, &data.path().join("data"), &auth);
    command.env("LLAMA_CPP_BASE_URL", &base);
    let server = ServerProcess::spawn(command).expect("start the server");

    let output = kit(&server.url, &["--only", "runtime_start.create"]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("HTTP 401"), "{stderr}");

    let output = kit(&server.url, &["--only", "runtime_start.create", "--token-file", token]);
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).lines().next(),
        Some("PASS runtime_start.create"),
        "{output:?}"
    );
}

#[test]
fn the_readme_lists_every_check() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).expect("README.md");
    for (name, what) in letta_app_server_tools::conformance::CHECKS {
        let row = format!("| `{name}` | {what} |");
        assert!(readme.contains(&row), "README.md lacks the row {row}");
    }
}

/// A server that answers `app_server_info` as the protocol says, and `runtime_start` with a
/// `runtime_start_response` that lacks its fields: a server the kit must fail. Listens on a free
/// port; its threads end with the test process.
fn broken_server() -> String {
    use tokio_tungstenite::tungstenite::{Message, accept};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let url = format!("ws://{}/ws", listener.local_addr().expect("an address"));
    let info = std::fs::read_to_string(
        letta_app_server_tests::corpus_dir().join("frames/app_server_info_response/example.json"),
    )
    .expect("the golden app_server_info_response");
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let info = info.clone();
            std::thread::spawn(move || {
                let Ok(mut socket) = accept(stream) else { return };
                while let Ok(message) = socket.read() {
                    let Ok(frame) = serde_json::from_str::<Value>(message.to_text().unwrap_or_default()) else {
                        continue;
                    };
                    let answer = match frame["type"].as_str() {
                        Some("app_server_info") => {
                            let mut answer: Value = serde_json::from_str(&info).expect("JSON");
                            answer["request_id"] = frame["request_id"].clone();
                            answer
                        }
                        Some("runtime_start") => serde_json::json!({
                            "type": "runtime_start_response", "request_id": frame["request_id"], "success": true,
                        }),
                        _ => continue,
                    };
                    if socket.send(Message::text(answer.to_string())).is_err() {
                        return;
                    }
                }
            });
        }
    });
    url
}

#[test]
fn a_server_that_breaks_the_protocol_fails_the_check() {
    let url = broken_server();
    let output = kit(&url, &["--only", "runtime_start.create", "--timeout", "2"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let line = stdout
        .lines()
        .find(|line| line.starts_with("FAIL runtime_start.create: "))
        .unwrap_or_else(|| panic!("no FAIL line: {stdout}"));
    assert!(line.contains("runtime_start_response"), "{line}");
}
