//! The inspector (`--inspect`): its page at `GET /inspect`, the policy it is served with, the
//! origins its websocket may come from, and the address the binary prints. The page itself runs
//! in headless Chromium in bindings/node/test/inspector.test.mjs.

use std::time::Duration;

use letta_app_server::{Auth, Config, Server};

use crate::support::TestServer;
use crate::support::binary::{refused, spawn_server};
use crate::support::drive::{http, status_line};

const TOKEN: &str = "inspect-s3cret";

async fn started(inspect: bool) -> TestServer {
    TestServer::start_with(|config| {
        config.auth = Some(Auth::capability_token(TOKEN).expect("a token"));
        config.inspect = inspect;
    })
    .await
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
}

/// An upgrade as a page of `origin` opens it, with the token as the bearer subprotocol.
fn from_page(origin: &str) -> String {
    format!(
        "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Origin: {origin}\r\nSec-WebSocket-Protocol: letta-app-server.bearer.{TOKEN}\r\n\r\n"
    )
}

#[tokio::test]
async fn the_page_is_served_whole_with_a_policy_that_allows_only_itself() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = started(true).await;
    let address = server.server.as_ref().expect("running").local_addr();
    let mut stream = tokio::net::TcpStream::connect(address).await.expect("connect");
    stream.write_all(get("/inspect").as_bytes()).await.expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    let (head, body) = response.split_once("\r\n\r\n").expect("a head and a body");
    let head = head.to_ascii_lowercase();
    // The page holds no secret: it is served without a token.
    assert!(head.starts_with("http/1.1 200 ok"), "{head}");
    assert!(head.contains("content-type: text/html; charset=utf-8"), "{head}");
    let policy = (head.lines())
        .find_map(|line| line.strip_prefix("content-security-policy: "))
        .expect("a policy");
    assert!(
        policy.starts_with("default-src 'none'; script-src 'sha256-"),
        "{policy}"
    );
    assert!(
        policy.contains("connect-src ws: wss:") && policy.contains("frame-ancestors 'none'"),
        "{policy}"
    );
    assert!(
        head.contains("x-frame-options: deny") && head.contains("referrer-policy: no-referrer"),
        "{head}"
    );
    assert!(body.contains(r#"<meta name="ws-path" content="/ws">"#));
    assert!(body.contains(r#"<script id="data" type="application/json">{"#));
    assert!(!body.contains("{{"), "every place is filled in");

    let without = started(false).await;
    assert_eq!(http(&without, &get("/inspect")).await.0, "HTTP/1.1 404 Not Found");
}

#[tokio::test]
async fn the_pages_own_origins_connect_and_others_do_not() {
    let server = started(true).await;
    let port = server.server.as_ref().expect("running").local_addr().port();
    for origin in [format!("http://127.0.0.1:{port}"), format!("http://localhost:{port}")] {
        assert_eq!(
            status_line(&server, &from_page(&origin)).await,
            "HTTP/1.1 101 Switching Protocols",
            "{origin}"
        );
    }
    for origin in [
        format!("http://127.0.0.1:{}", port.wrapping_add(1)),
        "https://evil.example".into(),
    ] {
        assert_eq!(
            http(&server, &from_page(&origin)).await.0,
            "HTTP/1.1 403 Forbidden",
            "{origin}"
        );
    }
    let without = started(false).await;
    let port = without.server.as_ref().expect("running").local_addr().port();
    let own = format!("http://127.0.0.1:{port}");
    assert_eq!(
        http(&without, &from_page(&own)).await.0,
        "HTTP/1.1 403 Forbidden",
        "no inspector, no origin of its own"
    );
}

#[tokio::test]
async fn the_library_refuses_an_inspector_without_authentication() {
    let data = tempfile::tempdir().expect("temp dir");
    let mut config = Config::new(data.path().to_path_buf());
    config.inspect = true;
    let error = Server::start(config).await.err().expect("refused");
    assert_eq!(error.kind(), std::io::ErrorKind::PermissionDenied);
    assert!(
        error.to_string().contains("inspector without authentication"),
        "{error}"
    );
}

/// `--inspect` needs `--ws-auth`. The printed address carries no token where stdout is not a
/// terminal (a log, a pipe), even when the server has it.
#[test]
fn the_binary_prints_the_inspectors_address() {
    refused(&["--inspect"], "--inspect requires --ws-auth");
    let data = tempfile::tempdir().expect("temp dir");
    let (server, url) = spawn_server(data.path(), &["--ws-auth", "capability-token", "--inspect"]);
    let line = || server.next_line(Duration::from_secs(10)).expect("a line");
    assert!(line().starts_with("Token file"));
    let base = url.replace("ws://", "http://").replace("/ws", "");
    assert_eq!(line(), format!("Inspector: {base}/inspect"));
}

/// On a terminal the address carries the token (percent-encoded) in its fragment, when the
/// server has it; the page reads it from there.
#[tokio::test]
async fn on_a_terminal_the_address_carries_the_token() {
    use tokio::io::AsyncReadExt;
    let data = tempfile::tempdir().expect("temp dir");
    let token = data.path().join("token");
    std::fs::write(&token, "tok.en~1+x\n").expect("a token file");
    let run = |extra: &[&str]| {
        let (pty, pts) = pty_process::open().expect("a terminal");
        let data = data.path().to_str().expect("a path");
        let args = [
            &["--listen", "ws://127.0.0.1:0", "--data-dir", data, "--inspect"],
            extra,
        ]
        .concat();
        let child = pty_process::Command::new(env!("CARGO_BIN_EXE_letta-app-server"))
            .args(args)
            .kill_on_drop(true)
            .spawn(pts)
            .expect("started");
        (pty, child)
    };
    let inspector_line = |mut pty: pty_process::Pty| async move {
        let mut output = String::new();
        let mut buffer = [0u8; 4096];
        loop {
            if let Some(start) = output.find("Inspector: ")
                && let Some(end) = output[start..].find('\n')
            {
                return output[start..start + end].trim_end().to_owned();
            }
            let read = pty.read(&mut buffer).await.expect("output");
            assert!(read > 0, "the server stopped: {output}");
            output.push_str(&String::from_utf8_lossy(&buffer[..read]));
        }
    };
    let wait = Duration::from_secs(10);
    let token = token.to_str().expect("a path");
    let (pty, _server) = run(&["--ws-auth", "capability-token", "--ws-token-file", token]);
    let line = tokio::time::timeout(wait, inspector_line(pty))
        .await
        .expect("the line in time");
    assert!(line.starts_with("Inspector: http://127.0.0.1:"), "{line}");
    assert!(line.ends_with("/inspect#token=tok.en~1%2Bx"), "{line}");

    // A server with only the token's digest cannot print it.
    let digest = "0".repeat(64);
    let (pty, _server) = run(&["--ws-auth", "capability-token", "--ws-token-sha256", &digest]);
    let line = tokio::time::timeout(wait, inspector_line(pty))
        .await
        .expect("the line in time");
    assert!(line.ends_with("/inspect"), "{line}");
}
