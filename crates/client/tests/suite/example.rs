//! The examples run against the reference server: `external_tool` (a turn calling a tool the
//! program serves) and `transcript` (a transcript rebuilt after a reconnect, a model picker).

use std::path::PathBuf;

use crate::support::TestServer;

/// `target/<profile>/examples/<name>`, built with the tests.
fn example_binary(name: &str) -> PathBuf {
    let test_binary = std::env::current_exe().expect("the test binary's path");
    let profile_dir = test_binary
        .parent()
        .and_then(|deps| deps.parent())
        .expect("tests live in target/<profile>/deps");
    profile_dir.join("examples").join(name)
}

/// Runs example `name` against a fresh server; its standard output, once it succeeded.
async fn run_example(name: &str) -> String {
    let server = TestServer::start().await;
    let binary = example_binary(name);
    let output = tokio::process::Command::new(&binary)
        .arg(server.url(""))
        .output()
        .await
        .unwrap_or_else(|e| panic!("running {}: {e}", binary.display()));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[tokio::test]
async fn the_external_tool_example_runs_a_turn() {
    let stdout = run_example("external_tool").await;
    assert!(
        stdout.contains(r#"tool call: lookup_weather {"city":"Paris"}"#),
        "{stdout}"
    );
    assert!(stdout.contains("Sunny and 21°C in Paris"), "{stdout}");
    assert!(stdout.contains("turn finished: EndTurn"), "{stdout}");
}

#[tokio::test]
async fn the_transcript_example_rebuilds_the_transcript_and_picks_a_model() {
    let stdout = run_example("transcript").await;
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines[..2],
        [
            "user_message: Remember the word 'teal'. [[reply: Noted: teal.]]",
            "assistant_message: Noted: teal."
        ],
        "{stdout}"
    );
    assert!(lines.contains(&"model: scripted/default (default)"), "{stdout}");
    assert_eq!(lines.last(), Some(&"now using scripted/default for the conversation"));
}
