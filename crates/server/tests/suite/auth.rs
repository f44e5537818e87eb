//! `--ws-auth capability-token` (docs/protocol.md §1.6): every upgrade, `/app-server-info` and
//! `/metrics` must carry the bearer token; each refusal is a 401 with real Letta's reason; with
//! authentication, `Origin` headers and any `Host` are served on upgrades. Web pages of the
//! `--allow-origin` origins authenticate with the bearer subprotocol.

use futures_util::{SinkExt, StreamExt};
use letta_app_server::Auth;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::support::TestServer;
use crate::support::drive::{http, response_head, status_line};
use crate::support::metrics::{parse, value};

const TOKEN: &str = "s3cret-token";

async fn server() -> TestServer {
    TestServer::start_with(|config| config.auth = Some(Auth::capability_token(TOKEN).expect("a token"))).await
}

fn upgrade(extra: &str) -> String {
    format!(
        "GET /ws HTTP/1.1\r\nHost: phone.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{extra}\r\n"
    )
}

#[tokio::test]
async fn every_upgrade_needs_the_token_and_each_refusal_says_why() {
    let server = server().await;
    for (headers, reason) in [
        ("", "missing websocket bearer token"),
        ("Authorization: Basic czNjcmV0\r\n", "invalid authorization header"),
        ("Authorization: Bearer\r\n", "invalid authorization header"),
        (
            "Authorization: Bearer s3cret-token\r\nAuthorization: Bearer s3cret-token\r\n",
            "invalid authorization header",
        ),
        ("Authorization: Bearer wrong\r\n", "invalid websocket bearer token"),
    ] {
        let (status, body) = http(&server, &upgrade(headers)).await;
        assert_eq!(
            (status.as_str(), body.as_str()),
            ("HTTP/1.1 401 Unauthorized", reason),
            "{headers:?}"
        );
    }
    let accepted = upgrade("Authorization: bearer  s3cret-token \r\nOrigin: https://app.example\r\n");
    assert_eq!(
        status_line(&server, &accepted).await,
        "HTTP/1.1 101 Switching Protocols",
        "any Host, an Origin, the scheme in any case"
    );

    let info = |extra: &str| {
        format!("GET /app-server-info HTTP/1.1\r\nHost: phone.example\r\nConnection: close\r\n{extra}\r\n")
    };
    assert_eq!(
        http(&server, &info("")).await,
        (
            "HTTP/1.1 401 Unauthorized".into(),
            "missing websocket bearer token".into()
        )
    );
    let (status, body) = http(&server, &info(&format!("Authorization: Bearer {TOKEN}\r\n"))).await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(
        serde_json::from_str::<Value>(&body).expect("JSON")["type"],
        "app_server_info_response"
    );
    let scrape =
        |extra: &str| format!("GET /metrics HTTP/1.1\r\nHost: phone.example\r\nConnection: close\r\n{extra}\r\n");
    assert_eq!(
        http(&server, &scrape("")).await,
        (
            "HTTP/1.1 401 Unauthorized".into(),
            "missing websocket bearer token".into()
        )
    );
    let (status, body) = http(&server, &scrape(&format!("Authorization: Bearer {TOKEN}\r\n"))).await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(
        value(&parse(&body), "letta_connections_opened_total", &[]),
        1.0,
        "the upgrade above"
    );
    let health = "GET /healthz HTTP/1.1\r\nHost: phone.example\r\nConnection: close\r\n\r\n";
    assert_eq!(
        http(&server, health).await.0,
        "HTTP/1.1 200 OK",
        "health checks stay open"
    );
}

#[tokio::test]
async fn a_client_with_the_token_runs_a_turn() {
    let server = server().await;
    let mut request = server.url("/ws").into_client_request().expect("a request");
    let bearer = format!("Bearer {TOKEN}").parse().expect("a header value");
    request.headers_mut().insert("authorization", bearer);
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.expect("connected");
    assert_eq!(a_turn(&mut socket).await, "end_turn");
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The first frame of `kind` the socket receives (`null` if it closes first).
async fn first_of(socket: &mut Socket, kind: &str) -> Value {
    while let Some(Ok(message)) = socket.next().await {
        let frame: Value = serde_json::from_str(message.to_text().unwrap_or("null")).unwrap_or_default();
        if frame["type"] == kind {
            return frame;
        }
    }
    Value::Null
}

/// Starts a runtime for a new agent, sends one message and returns the turn's stop reason.
async fn a_turn(socket: &mut Socket) -> Value {
    let start = json!({"type": "runtime_start", "request_id": "rs", "create_agent": {"body": {"name": "Remote"}}});
    socket.send(Message::text(start.to_string())).await.expect("sent");
    let runtime = first_of(socket, "runtime_start_response").await["runtime"].clone();
    assert!(runtime["agent_id"].is_string(), "{runtime}");
    let input = json!({
        "type": "input",
        "runtime": runtime,
        "payload": {"kind": "create_message", "messages": [{"role": "user", "content": "Hi"}]},
    });
    socket.send(Message::text(input.to_string())).await.expect("sent");
    first_of(socket, "turn_finished").await["stop_reason"].clone()
}

/// A JWT of `claims` signed with HS256 by `secret`.
fn jwt(claims: &Value, secret: &[u8]) -> String {
    use hmac::Mac;
    let encode = |value: &Value| data_encoding::BASE64URL_NOPAD.encode(value.to_string().as_bytes());
    let signed = format!("{}.{}", encode(&json!({"alg": "HS256", "typ": "JWT"})), encode(claims));
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).expect("any key length");
    mac.update(signed.as_bytes());
    format!(
        "{signed}.{}",
        data_encoding::BASE64URL_NOPAD.encode(&mac.finalize().into_bytes())
    )
}

#[tokio::test]
async fn signed_bearer_tokens_open_the_socket_until_they_expire() {
    use letta_app_server::SignedBearer;
    let secret = b"a shared secret of at least 32 bytes".to_vec();
    let bearer = SignedBearer {
        secret: secret.clone(),
        issuer: Some("desktop".into()),
        audience: None,
        max_clock_skew: 0,
    };
    let server = TestServer::start_with(|config| config.auth = Some(Auth::SignedBearer(bearer))).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let valid = jwt(&json!({"exp": now + 300, "iss": "desktop"}), &secret);
    assert_eq!(
        status_line(&server, &upgrade(&format!("Authorization: Bearer {valid}\r\n"))).await,
        "HTTP/1.1 101 Switching Protocols"
    );
    for (token, reason) in [
        (
            jwt(&json!({"exp": now - 60, "iss": "desktop"}), &secret),
            "expired websocket jwt",
        ),
        (
            jwt(&json!({"exp": now + 300, "iss": "cli"}), &secret),
            "websocket jwt issuer mismatch",
        ),
        (
            jwt(&json!({"exp": now + 300, "iss": "desktop"}), b"wrong"),
            "invalid websocket jwt",
        ),
    ] {
        let (status, body) = http(&server, &upgrade(&format!("Authorization: Bearer {token}\r\n"))).await;
        assert_eq!((status.as_str(), body.as_str()), ("HTTP/1.1 401 Unauthorized", reason));
    }
}

const PAGE: &str = "http://page.example:5173";

async fn browser_server() -> TestServer {
    TestServer::start_with(|config| {
        config.auth = Some(Auth::capability_token(TOKEN).expect("a token"));
        // Normalised by the server: browsers send `http://page.example:5173`.
        config.allowed_origins = vec!["HTTP://Page.Example:5173/".into()];
    })
    .await
}

/// What a browser sends: its page's `Origin` and the token as a subprotocol.
fn from_page(origin: &str, protocols: &str) -> String {
    upgrade(&format!("Origin: {origin}\r\nSec-WebSocket-Protocol: {protocols}\r\n"))
}

#[tokio::test]
async fn pages_of_allowed_origins_connect_with_the_bearer_subprotocol() {
    let server = browser_server().await;
    let bearer = format!("letta-app-server.bearer.{TOKEN}");
    let head = response_head(&server, &from_page(PAGE, &format!("chat, {bearer}"))).await;
    assert!(head.starts_with("HTTP/1.1 101 Switching Protocols"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains(&format!("sec-websocket-protocol: {bearer}\r\n")),
        "the token's value is the selected subprotocol: {head}"
    );
    let head = response_head(&server, &from_page("HTTP://PAGE.EXAMPLE:5173", &bearer)).await;
    assert!(
        head.starts_with("HTTP/1.1 101"),
        "origins compare as browsers write them: {head}"
    );
    let head = response_head(&server, &upgrade(&format!("Sec-WebSocket-Protocol: {bearer}\r\n"))).await;
    assert!(
        head.starts_with("HTTP/1.1 101"),
        "a native client without Origin: {head}"
    );

    let (status, body) = http(&server, &from_page("https://evil.example", &bearer)).await;
    assert_eq!(status, "HTTP/1.1 403 Forbidden");
    assert_eq!(
        body,
        "this page's origin is not allowed: start the server with --allow-origin <origin>\n"
    );
    for (protocols, reason) in [
        ("letta-app-server.bearer.wrong", "invalid websocket bearer token"),
        ("letta-app-server.bearer.", "invalid authorization header"),
        (&*format!("{bearer}, {bearer}"), "invalid authorization header"),
        ("chat", "missing websocket bearer token"),
    ] {
        let (status, body) = http(&server, &from_page(PAGE, protocols)).await;
        assert_eq!(
            (status.as_str(), body.as_str()),
            ("HTTP/1.1 401 Unauthorized", reason),
            "{protocols}"
        );
    }
    let both = upgrade(&format!(
        "Authorization: Bearer {TOKEN}\r\nSec-WebSocket-Protocol: {bearer}\r\n"
    ));
    assert_eq!(
        http(&server, &both).await,
        (
            "HTTP/1.1 401 Unauthorized".into(),
            "invalid authorization header".into()
        ),
        "a token both ways is ambiguous"
    );
    for path in ["/healthz", "/app-server-info"] {
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: x\r\nOrigin: {PAGE}\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n"
        );
        assert_eq!(
            http(&server, &request).await.0,
            "HTTP/1.1 403 Forbidden",
            "plain routes refuse an Origin, as real Letta's: {path}"
        );
    }
}

#[tokio::test]
async fn a_client_authenticated_by_subprotocol_runs_a_turn() {
    let server = browser_server().await;
    let mut request = server.url("/ws").into_client_request().expect("a request");
    let headers = request.headers_mut();
    let bearer = format!("letta-app-server.bearer.{TOKEN}");
    headers.insert("sec-websocket-protocol", bearer.parse().expect("a header value"));
    headers.insert("origin", PAGE.parse().expect("a header value"));
    // tungstenite checks that the server selected the offered subprotocol.
    let (mut socket, response) = tokio_tungstenite::connect_async(request).await.expect("connected");
    assert_eq!(response.headers()["sec-websocket-protocol"], bearer.as_str());
    assert_eq!(a_turn(&mut socket).await, "end_turn");
}

#[tokio::test]
async fn without_the_openai_api_its_paths_are_unknown_token_or_not() {
    let server = server().await;
    let get = "GET /v1/models HTTP/1.1\r\nHost: phone.example\r\n\r\n";
    assert_eq!(status_line(&server, get).await, "HTTP/1.1 404 Not Found");
    let with_token = format!("GET /v1/models HTTP/1.1\r\nHost: phone.example\r\nAuthorization: Bearer {TOKEN}\r\n\r\n");
    assert_eq!(status_line(&server, &with_token).await, "HTTP/1.1 404 Not Found");
}

#[tokio::test]
async fn the_library_refuses_open_setups_without_authentication() {
    use letta_app_server::{Config, Server};
    let data = tempfile::tempdir().expect("temp dir");
    let refused = |config: Config| async move {
        match Server::start(config).await {
            Ok(_) => panic!("the server started"),
            Err(error) => (error.kind(), error.to_string()),
        }
    };

    let mut origins = Config::new(data.path().to_path_buf());
    origins.allowed_origins = vec![PAGE.into()];
    let (kind, message) = refused(origins).await;
    assert_eq!(kind, std::io::ErrorKind::PermissionDenied);
    assert!(
        message.starts_with("refusing to allow origins without authentication"),
        "{message}"
    );

    let mut remote = Config::new(data.path().to_path_buf());
    remote.listen = "0.0.0.0:0".parse().expect("an address");
    let (kind, message) = refused(remote).await;
    assert_eq!(kind, std::io::ErrorKind::PermissionDenied);
    assert!(
        message.contains("non-loopback address 0.0.0.0:0 without authentication"),
        "{message}"
    );
}
