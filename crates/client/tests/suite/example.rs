//! The `external_tool` example runs a turn against the reference server.

use std::path::PathBuf;

use crate::support::TestServer;

/// `target/<profile>/examples/external_tool`, built with the tests.
fn example_binary() -> PathBuf {
    let test_binary = std::env::current_exe().expect("the test binary's path");
    let profile_dir = test_binary
        .parent()
        .and_then(|deps| deps.parent())
        .expect("tests live in target/<profile>/deps");
    profile_dir.join("examples").join("external_tool")
}

#[tokio::test]
async fn the_external_tool_example_runs_a_turn() {
    let server = TestServer::start().await;
    let binary = example_binary();
    let output = tokio::process::Command::new(&binary)
        .arg(server.url(""))
        .output()
        .await
        .unwrap_or_else(|e| panic!("running {}: {e}", binary.display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains(r#"tool call: lookup_weather {"city":"Paris"}"#),
        "{stdout}"
    );
    assert!(stdout.contains("Sunny and 21°C in Paris"), "{stdout}");
    assert!(stdout.contains("turn finished: EndTurn"), "{stdout}");
}
