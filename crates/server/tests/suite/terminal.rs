//! Terminals (docs/protocol.md §4.14): a real shell on a pseudo-terminal per connection, its
//! output streamed to that connection only, at its reader's pace; killed with its connection.

use std::path::Path;
use std::time::Duration;

use letta_app_server_protocol::DevicePermissionMode;
use serde_json::{Value, json};

use crate::support::TestServer;
use crate::support::wire::{Client, start_runtime};

/// A server whose terminals run `shell`.
async fn server_with(shell: &str) -> TestServer {
    let shell = shell.to_owned();
    TestServer::start_with(move |config| config.shell = shell).await
}

async fn spawn(client: &mut Client, terminal_id: &str, cwd: Option<&str>) -> Value {
    let mut frame = json!({"type": "terminal_spawn", "terminal_id": terminal_id, "cols": 80, "rows": 24});
    if let Some(cwd) = cwd {
        frame["cwd"] = cwd.into();
    }
    client.send(frame).await;
    client
        .recv_until(|f| f["terminal_id"] == terminal_id && f["type"] != "terminal_output")
        .await
        .pop()
        .expect("an answer")
}

async fn input(client: &mut Client, terminal_id: &str, data: &str) {
    client
        .send(json!({"type": "terminal_input", "terminal_id": terminal_id, "data": data}))
        .await;
}

/// The output of `terminal_id` until it contains `needle`; fails on any other frame.
async fn output_until(client: &mut Client, terminal_id: &str, needle: &str) -> String {
    let mut output = String::new();
    while !output.contains(needle) {
        let frame = client.recv().await;
        assert_eq!(
            (&frame["type"], &frame["terminal_id"]),
            (&json!("terminal_output"), &json!(terminal_id)),
            "{frame}"
        );
        output.push_str(frame["data"].as_str().expect("text"));
    }
    output
}

/// The frames after `terminal_id`'s remaining output: its `terminal_exited`.
async fn exited(client: &mut Client, terminal_id: &str) -> Value {
    let frame = client
        .recv_until(|f| f["type"] != "terminal_output")
        .await
        .pop()
        .expect("a frame");
    assert_eq!(frame["terminal_id"], terminal_id, "{frame}");
    frame
}

fn canonical(path: &Path) -> String {
    path.canonicalize().expect("a path").display().to_string()
}

/// Whether process `pid` is gone (reaped), waiting up to five seconds for it.
async fn gone(pid: u64) -> bool {
    for _ in 0..100 {
        if !Path::new(&format!("/proc/{pid}")).exists() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn a_terminal_runs_the_shell_in_its_cwd_types_resizes_and_is_killed() {
    let server = server_with("/bin/sh").await;
    std::fs::create_dir(server.data.path().join("project")).expect("a directory");
    let project = canonical(&server.data.path().join("project"));
    let mut client = server.client().await;

    // A relative cwd is taken from the boot working directory.
    let spawned = spawn(&mut client, "t1", Some("project")).await;
    assert_eq!(spawned["type"], "terminal_spawned", "{spawned}");
    let pid = spawned["pid"].as_u64().expect("a pid");
    assert!(pid > 1, "{spawned}");
    assert_eq!(
        spawn(&mut client, "t1", None).await,
        json!({"type": "terminal_spawned", "terminal_id": "t1", "pid": pid}),
        "an alive id is answered again, with the same process"
    );

    input(&mut client, "t1", "echo hi-$((40+2)); pwd\n").await;
    let output = output_until(&mut client, "t1", &format!("hi-42\r\n{project}\r\n")).await;
    assert!(output.contains("echo hi-$((40+2))"), "the terminal echoes: {output:?}");

    client
        .send(json!({"type": "terminal_resize", "terminal_id": "t1", "cols": 120, "rows": 40}))
        .await;
    input(&mut client, "t1", "stty size\n").await;
    output_until(&mut client, "t1", "40 120\r\n").await;

    // A character split between reads arrives whole.
    input(&mut client, "t1", "printf 'caf\\303\\251 \\342\\234\\223\\n'\n").await;
    output_until(&mut client, "t1", "café ✓\r\n").await;

    client.send(json!({"type": "terminal_kill", "terminal_id": "t1"})).await;
    assert_eq!(
        exited(&mut client, "t1").await,
        json!({"type": "terminal_exited", "terminal_id": "t1", "exitCode": 129}),
        "hung up, as a closed terminal window hangs up its shell"
    );
    assert!(gone(pid).await, "the shell is reaped");

    // A killed terminal, and one never spawned, are unknown to every command.
    for (frame, terminal_id) in [
        (
            json!({"type": "terminal_input", "terminal_id": "t1", "data": "ls\n"}),
            "t1",
        ),
        (
            json!({"type": "terminal_resize", "terminal_id": "t1", "cols": 1, "rows": 1}),
            "t1",
        ),
        (json!({"type": "terminal_kill", "terminal_id": "t1"}), "t1"),
        (
            json!({"type": "terminal_input", "terminal_id": "nope", "data": "ls\n"}),
            "nope",
        ),
    ] {
        let frame_type = frame["type"].clone();
        client.send(frame).await;
        assert_eq!(
            client.recv().await,
            json!({"type": "error", "code": "invalid_frame", "frame_type": frame_type,
                "message": format!("Terminal not found: {terminal_id}")})
        );
    }

    // The id can be used again; the new shell exits with its own status.
    let again = spawn(&mut client, "t1", None).await;
    assert_eq!(again["type"], "terminal_spawned", "{again}");
    input(&mut client, "t1", "pwd; exit 3\n").await;
    output_until(&mut client, "t1", &canonical(server.data.path())).await;
    assert_eq!(
        exited(&mut client, "t1").await,
        json!({"type": "terminal_exited", "terminal_id": "t1", "exitCode": 3})
    );

    // A new boot working directory is where the next terminal without a cwd starts.
    client
        .send(json!({"type": "set_boot_working_directory", "request_id": "boot", "cwd": "project"}))
        .await;
    let moved = client.recv_until_type("set_boot_working_directory_response").await;
    assert_eq!(moved.last().expect("an answer")["success"], true, "{moved:?}");
    spawn(&mut client, "t5", None).await;
    input(&mut client, "t5", "pwd\n").await;
    // (The prompt may come between the echoed command and its output, when the input arrives
    // before the shell printed its first prompt.)
    output_until(&mut client, "t5", &format!("{project}\r\n")).await;
}

#[tokio::test]
async fn a_shell_that_cannot_start_or_exits_at_once_is_reported() {
    // Real Letta's shape for a shell that does not start (Node's spawn error).
    let server = server_with("/no/such/zsh").await;
    let mut client = server.client().await;
    assert_eq!(
        spawn(&mut client, "t2", None).await,
        json!({"type": "terminal_exited", "terminal_id": "t2", "exitCode": -1,
            "error": "spawn /no/such/zsh ENOENT"})
    );

    let server = server_with("/bin/false").await;
    let mut client = server.client().await;
    let spawned = spawn(&mut client, "t3", None).await;
    assert_eq!(spawned["type"], "terminal_spawned", "{spawned}");
    assert_eq!(
        exited(&mut client, "t3").await,
        json!({"type": "terminal_exited", "terminal_id": "t3", "exitCode": 1})
    );
    assert_eq!(
        spawn(&mut client, "t4", Some("/no/such/directory")).await,
        json!({"type": "terminal_exited", "terminal_id": "t4", "exitCode": -1,
            "error": "spawn /bin/false ENOENT"}),
        "a missing cwd fails as in Node"
    );
}

#[tokio::test]
async fn terminals_are_bounded_per_connection_and_die_with_it() {
    let server = server_with("/bin/sh").await;
    let mut client = server.client().await;
    let mut pids = Vec::new();
    for n in 0..16 {
        let spawned = spawn(&mut client, &format!("t{n}"), None).await;
        pids.push(spawned["pid"].as_u64().expect("a pid"));
    }
    assert_eq!(
        spawn(&mut client, "t16", None).await,
        json!({"type": "terminal_exited", "terminal_id": "t16", "exitCode": -1,
            "error": "too many terminals: a connection may have 16 at once"})
    );
    // Another connection's terminals are its own.
    let mut other = server.client().await;
    let theirs = spawn(&mut other, "t0", None).await;
    assert_eq!(theirs["type"], "terminal_spawned", "{theirs}");
    assert_ne!(theirs["pid"], pids[0]);

    client.close().await;
    for pid in pids {
        assert!(gone(pid).await, "shell {pid} dies with its connection");
    }
    input(&mut other, "t0", "echo still-here\n").await;
    output_until(&mut other, "t0", "still-here\r\n").await;
}

#[tokio::test]
async fn a_slow_reader_holds_the_shell_up_instead_of_filling_memory() {
    // A small queue, and little patience: output that did not wait for its reader would
    // overflow the queue and close the connection.
    let server = TestServer::start_with(|config| {
        config.shell = "/bin/sh".into();
        config.max_queued_frames = 16;
        config.max_queued_bytes = 256 * 1024;
        config.slow_reader_patience = Duration::from_millis(50);
    })
    .await;
    let mut client = server.client().await;
    spawn(&mut client, "t1", None).await;
    const LINES: usize = 300_000;
    input(&mut client, "t1", &format!("yes abcdefgh | head -n {LINES}; exit 4\n")).await;
    // Not reading, for long enough for `yes` to write far more than the queue and the socket
    // buffers hold.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut output = String::new();
    let last = loop {
        let frame = client.recv().await;
        if frame["type"] != "terminal_output" {
            break frame;
        }
        output.push_str(frame["data"].as_str().expect("text"));
    };
    assert_eq!(
        last,
        json!({"type": "terminal_exited", "terminal_id": "t1", "exitCode": 4})
    );
    assert_eq!(
        output.matches("abcdefgh\r\n").count(),
        LINES,
        "every line, before the exit"
    );
}

#[tokio::test]
async fn permission_modes_do_not_apply_to_the_controllers_terminal() {
    let server = TestServer::start_with(|config| {
        config.shell = "/bin/sh".into();
        config.default_mode = DevicePermissionMode::Strict;
    })
    .await;
    let mut client = server.client().await;
    let runtime = start_runtime(&mut client).await;
    client
        .send(json!({"type": "change_device_state", "runtime": runtime,
            "payload": {"mode": "strict"}}))
        .await;
    let spawned = spawn(&mut client, "t1", None).await;
    assert_eq!(spawned["type"], "terminal_spawned", "{spawned}");
    input(&mut client, "t1", "echo typed-by-a-person > typed.txt; cat typed.txt\n").await;
    // Other frames (the mode change's device status) may come first.
    let mut output = String::new();
    while !output.contains("typed-by-a-person\r\n") {
        let frame = client.recv().await;
        if frame["type"] == "terminal_output" {
            output.push_str(frame["data"].as_str().expect("text"));
        }
    }
    assert!(server.data.path().join("typed.txt").exists());
}
