//! The `letta-app-server` command line: what it refuses, and the runtime it runs on.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::binary;
use crate::support::binary::{refused, spawn_server};
use crate::support::wire::{Client, start_runtime, user_input};

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

/// `--allow-origin` needs authentication and an origin as browsers send it.
#[test]
fn allowed_origins_need_auth_and_a_valid_origin() {
    refused(
        &["--allow-origin", "http://localhost:5173"],
        "--allow-origin requires --ws-auth",
    );
    let data = tempfile::tempdir().expect("temp dir");
    let token = data.path().join("token");
    std::fs::write(&token, "s3cret\n").expect("a token file");
    let token = token.to_str().expect("a path");
    let auth = ["--ws-auth", "capability-token", "--ws-token-file", token];
    for (origin, message) in [
        (
            "localhost:5173",
            "invalid origin \"localhost:5173\": expected scheme://host[:port]",
        ),
        ("http://a.example/app", "invalid origin \"http://a.example/app\""),
        ("null", "origin \"null\" cannot be allowed"),
    ] {
        refused(&[&auth[..], &["--allow-origin", origin]].concat(), message);
    }
    // A token a page cannot send as a subprotocol is worth a warning (shown here before the
    // refusal of a bad listen URL ends the process).
    let slashed = data.path().join("slashed");
    std::fs::write(&slashed, "a/b+c=\n").expect("a token file");
    let slashed = [
        "--ws-auth",
        "capability-token",
        "--ws-token-file",
        slashed.to_str().expect("a path"),
    ];
    refused(
        &[
            &slashed[..],
            &["--allow-origin", "http://localhost:5173", "--listen", "nonsense"],
        ]
        .concat(),
        "Warning: the token in",
    );
}

/// The websocket auth flags are checked as real Letta checks them, with its messages; with a
/// capability token the server listens on any address.
#[test]
fn auth_flags_are_checked_and_allow_remote_listening() {
    let data = tempfile::tempdir().expect("temp dir");
    let token = data.path().join("token");
    std::fs::write(&token, "s3cret\n").expect("a token file");
    let empty = data.path().join("empty");
    std::fs::write(&empty, " \n").expect("an empty file");
    let token = token.to_str().expect("a path");
    let digest = "1ec1c26b50d5d3c58d9583181af8076655fe00756bf7285940ba3670f99fcba0";
    refused(
        &["--ws-token-file", token],
        "websocket auth flags require `--ws-auth capability-token` or `--ws-auth signed-bearer-token`",
    );
    refused(
        &[
            "--ws-auth",
            "capability-token",
            "--ws-token-file",
            token,
            "--ws-token-sha256",
            digest,
        ],
        "`--ws-token-file` and `--ws-token-sha256` are mutually exclusive",
    );
    refused(
        &["--ws-auth", "capability-token", "--ws-token-file", "relative/token"],
        "--ws-token-file must be an absolute path",
    );
    refused(
        &[
            "--ws-auth",
            "capability-token",
            "--ws-token-file",
            empty.to_str().expect("a path"),
        ],
        "must not be empty",
    );
    refused(
        &["--ws-auth", "capability-token", "--ws-token-sha256", "abc"],
        "--ws-token-sha256 must be a 64-character hex SHA-256 digest",
    );
    let secret = data.path().join("secret");
    std::fs::write(&secret, "too short").expect("a secret file");
    let secret = secret.to_str().expect("a path");
    refused(
        &["--ws-auth", "signed-bearer-token"],
        "`--ws-shared-secret-file` is required when `--ws-auth signed-bearer-token` is set",
    );
    refused(
        &["--ws-auth", "signed-bearer-token", "--ws-token-sha256", digest],
        "`--ws-token-file` and `--ws-token-sha256` require `--ws-auth capability-token`, not `signed-bearer-token`",
    );
    refused(
        &[
            "--ws-auth",
            "capability-token",
            "--ws-token-sha256",
            digest,
            "--ws-issuer",
            "x",
        ],
        "require `--ws-auth signed-bearer-token`",
    );
    refused(
        &["--ws-auth", "signed-bearer-token", "--ws-shared-secret-file", secret],
        "must be at least 32 bytes",
    );
    refused(
        &[
            "--ws-auth",
            "signed-bearer-token",
            "--ws-shared-secret-file",
            secret,
            "--ws-max-clock-skew-seconds=-1",
        ],
        "--ws-max-clock-skew-seconds must be a non-negative integer",
    );
    refused(
        &["--ws-auth", "password"],
        "unsupported --ws-auth mode \"password\"; expected \"capability-token\" or \"signed-bearer-token\"",
    );
    refused(
        &["--listen", "ws://0.0.0.0:0"],
        "configure it with --ws-auth capability-token --ws-token-file <absolute path>",
    );
    let data_dir = data.path().to_str().expect("a path");
    let (server, url) = binary::spawn(binary::bare_command(&[
        "--listen",
        "ws://0.0.0.0:0",
        "--data-dir",
        data_dir,
        "--ws-auth",
        "capability-token",
        "--ws-token-sha256",
        digest,
    ]));
    assert!(url.starts_with("ws://0.0.0.0:"), "{url}");
    drop(server);
}

/// Threads named `letta-worker` (the runtime's workers; its blocking pool starts empty), counted
/// once every thread has named itself: a new thread carries the main thread's name until then.
fn workers(server: &binary::ServerProcess) -> usize {
    let names = || -> Vec<String> {
        std::fs::read_dir(format!("/proc/{}/task", server.id()))
            .expect("the server's threads")
            .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
            .map(|name| name.trim_end().to_owned())
            .collect()
    };
    let main = std::fs::read_to_string(format!("/proc/{}/comm", server.id())).expect("the main thread's name");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let names = names();
        if names.iter().filter(|name| **name == main.trim_end()).count() == 1 {
            return names.iter().filter(|name| *name == "letta-worker").count();
        }
        assert!(
            Instant::now() < deadline,
            "threads that never named themselves: {names:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn one_event_loop_by_default_and_workers_on_request() {
    let data = tempfile::tempdir().unwrap();
    for (args, env, expected) in [
        (&[][..], None, 0),
        (&["--threads", "3"][..], None, 3),
        (&[][..], Some("2"), 2),
    ] {
        let mut command = binary::command(data.path(), args);
        match env {
            Some(threads) => command.env("LETTA_APP_SERVER_THREADS", threads),
            None => command.env_remove("LETTA_APP_SERVER_THREADS"),
        };
        let (mut server, _) = binary::spawn(command);
        assert_eq!(workers(&server), expected, "{args:?}, LETTA_APP_SERVER_THREADS={env:?}");
        server.kill().expect("kill");
        server.wait().expect("reaped");
    }
}

/// More than one thread: a multi-threaded runtime streams a turn and stops on SIGTERM.
#[tokio::test]
async fn a_multi_threaded_server_runs_turns_and_stops_cleanly() {
    let data = tempfile::tempdir().unwrap();
    let (mut server, url) = spawn_server(data.path(), &["--threads", "3"]);
    assert_eq!(workers(&server), 3);
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

/// `--ws-auth capability-token` alone makes a token file in the data directory, owner-only,
/// prints its path, and reuses it on the next start; a token file others can read is refused.
#[test]
fn capability_token_alone_makes_an_owner_only_token_file() {
    use std::io::{Read, Write};
    use std::os::unix::fs::PermissionsExt;

    let data = tempfile::tempdir().expect("temp dir");
    let start = || {
        let (server, url) = spawn_server(data.path(), &["--ws-auth", "capability-token"]);
        let line = server.next_line(Duration::from_secs(10)).expect("the token file line");
        let path = line.rsplit_once(": ").expect("a path").1.to_owned();
        (server, url, path)
    };
    let (server, url, path) = start();
    assert_eq!(path, data.path().join("ws-token").display().to_string());
    let mode = std::fs::metadata(&path).expect("the token file").permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "owner-only");
    let token = std::fs::read_to_string(&path).expect("the token");
    let token = token.trim();
    assert!(
        token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit()),
        "{token}"
    );
    let status = |authorization: &str| {
        let address = url.trim_start_matches("ws://").trim_end_matches("/ws");
        let mut stream = std::net::TcpStream::connect(address).expect("connect");
        let request =
            format!("GET /app-server-info HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{authorization}\r\n");
        stream.write_all(request.as_bytes()).expect("write");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("read");
        response.lines().next().unwrap_or_default().to_owned()
    };
    assert_eq!(status(""), "HTTP/1.1 401 Unauthorized");
    assert_eq!(status(&format!("Authorization: Bearer {token}\r\n")), "HTTP/1.1 200 OK");
    drop(server);

    let (server, _, again) = start();
    assert_eq!(
        std::fs::read_to_string(&again).expect("the token").trim(),
        token,
        "reused"
    );
    drop(server);

    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let data_dir = data.path().to_str().expect("a path");
    let output = binary::bare_command(&["--data-dir", data_dir, "--ws-auth", "capability-token"])
        .output()
        .expect("ran");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success() && stderr.contains("others than its owner can read it"),
        "{stderr}"
    );
}
