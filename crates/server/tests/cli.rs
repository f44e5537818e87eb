//! The `letta-app-server` command line: what it refuses, and the runtime it runs on.

#[path = "support/binary.rs"]
mod binary;
#[path = "support/wire.rs"]
mod wire;

use std::process::Command;

use binary::{refused, spawn_server};
use wire::{Client, start_runtime, user_input};

#[test]
fn bad_arguments_are_refused_with_a_clear_error() {
    refused(&["--listen", "http://127.0.0.1:0"], "listen URL must start with ws://");
    refused(&["--listen", "ws://127.0.0.1"], "listen URL needs a port");
    refused(&["--listen", "ws://127.0.0.1:99999"], "invalid port `99999`");
    refused(
        &["--listen", "ws://0.0.0.0:0"],
        "refusing to start non-loopback websocket listener",
    );
    refused(&["--listen", "ws://127.0.0.1:0/ws?x=1"], "must not have a query");
    refused(&["--threads", "0"], "invalid value '0' for '--threads <N>'");
    refused(&["--threads", "many"], "invalid value 'many' for '--threads <N>'");
    refused(
        &["--default-mode", "yolo"],
        "invalid value 'yolo' for '--default-mode <MODE>'",
    );
}

/// More than one thread: a multi-threaded runtime streams a turn and stops on SIGTERM.
#[tokio::test]
async fn a_multi_threaded_server_runs_turns_and_stops_cleanly() {
    let data = tempfile::tempdir().unwrap();
    let (mut server, url) = spawn_server(data.path(), &["--threads", "3"]);
    let mut client = Client::connect(&url).await;
    let runtime = start_runtime(&mut client).await;
    client
        .send(user_input(
            "in-1",
            &runtime,
            "[[reply: three threads]] [[chunks: 3]]",
            "cm-1",
        ))
        .await;
    let frames = client.recv_until_type("turn_finished").await;
    let text: String = frames
        .iter()
        .filter(|frame| frame["delta"]["message_type"] == "assistant_message")
        .filter_map(|frame| frame["delta"]["content"][0]["text"].as_str())
        .collect();
    assert_eq!(text, "three threads");
    let status = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    assert!(server.wait().expect("exits").success());
}
