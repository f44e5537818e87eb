//! The inspector (`--inspect`): its page at `GET /inspect`, the policy it is served with, the
//! origins its websocket may come from, and the address the binary prints. The page itself runs
//! in headless Chromium in bindings/node/test/inspector.test.mjs.

use std::time::Duration;

use letta_app_server::{Auth, Config, Server};

use crate::support::TestServer;
use crate::support::binary::{refused, spawn_server};
use crate::support::drive::http;

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

/// The status line of the answer to `request`, read up to the end of its head (an accepted
/// upgrade stays open).
async fn status(server: &TestServer, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = server.server.as_ref().expect("running").local_addr();
    let mut stream = tokio::net::TcpStream::connect(address).await.expect("connect");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(stream.read_u8().await.expect("a byte"));
    }
    String::from_utf8_lossy(&head)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
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
            status(&server, &from_page(&origin)).await,
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

/// `--inspect` needs `--ws-auth`; the printed address carries the token when the server has
/// it (in the fragment), and not when it has only its digest.
#[test]
fn the_binary_prints_the_inspectors_address() {
    refused(&["--inspect"], "--inspect requires --ws-auth");
    let data = tempfile::tempdir().expect("temp dir");
    let (server, url) = spawn_server(data.path(), &["--ws-auth", "capability-token", "--inspect"]);
    let line = || server.next_line(Duration::from_secs(10)).expect("a line");
    assert!(line().starts_with("Token file"));
    let token = std::fs::read_to_string(data.path().join("ws-token")).expect("the token");
    let base = url.replace("ws://", "http://").replace("/ws", "");
    assert_eq!(line(), format!("Inspector: {base}/inspect#token={}", token.trim()));
    drop(server);

    let digest = "0".repeat(64);
    let (server, url) = spawn_server(
        data.path(),
        &[
            "--ws-auth",
            "capability-token",
            "--ws-token-sha256",
            &digest,
            "--inspect",
        ],
    );
    let base = url.replace("ws://", "http://").replace("/ws", "");
    let line = server.next_line(Duration::from_secs(10)).expect("a line");
    assert_eq!(line, format!("Inspector: {base}/inspect"));
}
