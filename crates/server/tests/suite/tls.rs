//! `wss://` (docs/protocol.md §1.2): TLS on the listening port with a CA and a certificate the
//! tests make (rcgen). A client trusting the CA runs turns and reads the plain routes over
//! https; one that does not, or that speaks plain text, gets a clear error; garbage, a silent
//! client and a stalled handshake are dropped without holding up anyone else. The flags are
//! checked at start, and the certificate files the Node and Python tests use still work.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use letta_app_server::Tls;
use letta_app_server_client::types::{Delta, RuntimeStart, ServerFrame};
use letta_app_server_client::{Client, Error, Transport};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::TestServer;
use crate::support::binary::{self, refused};
use crate::support::drive::split_response;

/// A CA, and a certificate for `127.0.0.1` and `localhost` it signed, as PEM; rcgen's default
/// validity (1975 to 4096) never runs out.
struct Pki {
    ca: String,
    cert: String,
    key: String,
}

impl Pki {
    fn generate() -> Self {
        Self::with_ca_name("letta-app-server test CA")
    }

    fn with_ca_name(ca_name: &str) -> Self {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
        let ca_key = KeyPair::generate().expect("a CA key");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name.push(DnType::CommonName, ca_name);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca.self_signed(&ca_key).expect("the CA certificate");
        let key = KeyPair::generate().expect("a server key");
        let mut server = CertificateParams::new(["127.0.0.1".to_owned(), "localhost".to_owned()]).expect("names");
        server
            .distinguished_name
            .push(DnType::CommonName, "letta-app-server test server");
        let cert = server
            .signed_by(&key, &Issuer::from_params(&ca, &ca_key))
            .expect("the server certificate");
        Self {
            ca: ca_cert.pem(),
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }

    /// Writes the certificate and the key to `dir` (`server.pem`, `server.key`) and the CA
    /// (`ca.pem`); returns the certificate's and the key's paths.
    fn write(&self, dir: &Path) -> (PathBuf, PathBuf) {
        let (cert, key) = (dir.join("server.pem"), dir.join("server.key"));
        std::fs::write(dir.join("ca.pem"), &self.ca).expect("ca.pem");
        std::fs::write(&cert, &self.cert).expect("server.pem");
        std::fs::write(&key, &self.key).expect("server.key");
        (cert, key)
    }
}

/// A server presenting `pki`'s certificate, read from PEM files as `--tls-cert` reads them.
async fn tls_server(pki: &Pki, configure: impl FnOnce(&mut letta_app_server::Config)) -> TestServer {
    let files = tempfile::tempdir().expect("temp dir");
    let (cert, key) = pki.write(files.path());
    let tls = Tls::from_pem_files(&cert, &key).expect("a usable certificate and key");
    TestServer::start_with(|config| {
        config.tls = Some(tls);
        configure(config);
    })
    .await
}

fn address(server: &TestServer) -> std::net::SocketAddr {
    server.server.as_ref().expect("running").local_addr()
}

/// Runs a turn of the scripted model on a new runtime; returns the assistant's text.
async fn a_turn(client: &Client) -> String {
    let started = client
        .runtime_start(RuntimeStart::new_agent("Remote"))
        .await
        .expect("runtime_start");
    let runtime = started.runtime.expect("a started runtime has a scope");
    let mut turn = client
        .send_message(&runtime, "[[reply: sent over TLS]] [[chunks: 3]]")
        .await
        .expect("the input is accepted");
    let mut text = String::new();
    while let Some(frame) = turn.next().await {
        if let Some(ServerFrame::StreamDelta {
            delta: Delta::AssistantMessage { content, .. },
            ..
        }) = frame.expect("no gap").typed
        {
            text.push_str(&content.text());
        }
    }
    text
}

/// Sends `request` over TLS, trusting `ca` for the name `localhost`, and reads until the server
/// closes; returns the status line and the body.
async fn https(address: std::net::SocketAddr, ca: &str, request: &str) -> (String, String) {
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_slice_iter(ca.as_bytes()) {
        roots.add(certificate.expect("PEM")).expect("a CA certificate");
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = TcpStream::connect(address).await.expect("connect");
    let name = ServerName::try_from("localhost").expect("a name");
    let mut stream = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .expect("the TLS handshake");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .expect("read to close_notify");
    split_response(&response)
}

fn get(path: &str, extra: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{extra}\r\n")
}

#[tokio::test]
async fn a_client_trusting_the_ca_runs_turns_and_reads_the_routes_over_tls() {
    let pki = Pki::generate();
    let token = "tls-s3cret";
    let server = tls_server(&pki, |config| {
        config.auth = Some(letta_app_server::Auth::capability_token(token).expect("a token"));
    })
    .await;
    assert!(server.url("/ws").starts_with("wss://127.0.0.1:"));
    for transport in [Transport::Single, Transport::Split] {
        let client = Client::builder(&server.url(""))
            .ca_pem(&pki.ca)
            .token(token)
            .transport(transport)
            .connect()
            .await
            .expect("connects over wss://");
        assert_eq!(a_turn(&client).await, "sent over TLS", "{transport:?}");
        client.close().await;
    }
    let address = address(&server);
    assert_eq!(
        https(address, &pki.ca, &get("/healthz", "")).await,
        ("HTTP/1.1 200 OK".into(), "ok\n".into())
    );
    let (status, body) = https(address, &pki.ca, &get("/app-server-info", "")).await;
    assert_eq!(
        (status.as_str(), body.as_str()),
        ("HTTP/1.1 401 Unauthorized", "missing websocket bearer token"),
        "TLS does not replace the token"
    );
    let authorized = get("/app-server-info", &format!("Authorization: Bearer {token}\r\n"));
    let (status, body) = https(address, &pki.ca, &authorized).await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    let info: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(info["type"], "app_server_info_response");
}

#[tokio::test]
async fn a_client_not_trusting_the_ca_or_speaking_plain_text_gets_a_clear_error() {
    let pki = Pki::generate();
    let server = tls_server(&pki, |_| {}).await;
    let other = Pki::with_ca_name("another CA");
    for builder in [
        Client::builder(&server.url("")),
        Client::builder(&server.url("")).ca_pem(&other.ca),
    ] {
        match builder.connect().await {
            Err(Error::Connect { message, .. }) => assert_eq!(
                message, "TLS handshake failed: invalid peer certificate: UnknownIssuer",
                "the Mozilla roots, or another CA, do not vouch for the test CA"
            ),
            other => panic!("expected a refused connection, got {:?}", other.map(|_| ())),
        }
    }
    let plain_url = server.url("").replacen("wss://", "ws://", 1);
    match Client::builder(&plain_url).connect().await {
        Err(Error::Connect { message, .. }) => assert_eq!(
            message,
            "HTTP 400 Bad Request: this port speaks TLS: connect with wss:// or https://"
        ),
        other => panic!("expected a refused connection, got {:?}", other.map(|_| ())),
    }
    let error = Client::builder(&server.url(""))
        .ca_pem("not a certificate")
        .validate()
        .expect_err("not PEM");
    assert_eq!(
        error.to_string(),
        "invalid TLS settings: no PEM certificate (`-----BEGIN CERTIFICATE-----`) among the CA certificates"
    );
}

/// Sends `bytes` on a new connection and reads until the server closes it (a reset counts as
/// closed); returns what came back.
async fn send_raw(address: std::net::SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(address).await.expect("connect");
    stream.write_all(bytes).await.expect("write");
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the server did not close the connection");
    answer
}

#[tokio::test]
async fn garbage_on_the_tls_port_is_dropped_and_the_server_serves_on() {
    let pki = Pki::generate();
    let server = tls_server(&pki, |_| {}).await;
    let address = address(&server);
    let answer = send_raw(address, get("/healthz", "").as_bytes()).await;
    assert_eq!(
        split_response(&String::from_utf8_lossy(&answer)),
        (
            "HTTP/1.1 400 Bad Request".into(),
            "this port speaks TLS: connect with wss:// or https://\n".into()
        ),
        "plain HTTP is told what to use"
    );
    for garbage in [
        &[0u8; 64][..],
        b"\xff\xfe\xfd random bytes",
        // A TLS handshake record whose message is nonsense.
        b"\x16\x03\x01\x00\x08nonsense and more after it",
    ] {
        let answer = send_raw(address, garbage).await;
        assert!(
            answer.is_empty() || answer[0] == 0x15,
            "nothing but a TLS alert: {answer:?}"
        );
    }
    let client = Client::builder(&server.url(""))
        .ca_pem(&pki.ca)
        .connect()
        .await
        .expect("connects after the garbage");
    assert_eq!(a_turn(&client).await, "sent over TLS");
    client.close().await;
}

#[tokio::test]
async fn a_silent_client_is_dropped_after_the_handshake_timeout_and_holds_up_no_one() {
    let pki = Pki::generate();
    let timeout = Duration::from_secs(2);
    let server = tls_server(&pki, |config| config.tls_handshake_timeout = timeout).await;
    let address = address(&server);
    let silent = TcpStream::connect(address).await.expect("connect");
    let mut stalled = TcpStream::connect(address).await.expect("connect");
    // The first bytes of a TLS record, and no more.
    stalled.write_all(&[0x16, 0x03, 0x01]).await.expect("write");
    let started = tokio::time::Instant::now();

    let client = Client::builder(&server.url(""))
        .ca_pem(&pki.ca)
        .connect()
        .await
        .expect("connects while the others wait");
    client.app_server_info().await.expect("served");
    client.close().await;
    let mut buffer = [0; 16];
    for (name, socket) in [("silent", &silent), ("stalled", &stalled)] {
        assert!(
            matches!(socket.try_read(&mut buffer), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
            "the {name} client is still waiting for its handshake"
        );
    }
    for (name, mut socket) in [("silent", silent), ("stalled", stalled)] {
        let read = tokio::time::timeout(timeout * 5, socket.read(&mut buffer))
            .await
            .unwrap_or_else(|_| panic!("the {name} client was not dropped"));
        assert!(matches!(read, Ok(0) | Err(_)), "{name}: {read:?}");
    }
    assert!(started.elapsed() >= timeout - Duration::from_millis(100));
}

#[test]
fn unusable_pem_files_are_refused_with_the_reason() {
    let (pki, other) = (Pki::generate(), Pki::generate());
    let dir = tempfile::tempdir().expect("temp dir");
    let (cert, key) = pki.write(dir.path());
    let other_key = dir.path().join("other.key");
    std::fs::write(&other_key, &other.key).expect("a key");
    let broken = dir.path().join("broken.pem");
    std::fs::write(&broken, "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n").expect("a file");
    let missing = dir.path().join("missing.pem");
    let show = |path: &Path| path.display().to_string();
    for (cert, key, expected) in [
        (&cert, &missing, format!("cannot read the TLS key {}: ", show(&missing))),
        (
            &missing,
            &key,
            format!("cannot read the TLS certificate {}: ", show(&missing)),
        ),
        (
            &key,
            &key,
            format!("the TLS certificate {}: no PEM certificate", show(&key)),
        ),
        (&cert, &cert, format!("the TLS key {}: no PEM private key", show(&cert))),
        (&broken, &key, format!("the TLS certificate {}: not PEM", show(&broken))),
        (
            &cert,
            &other_key,
            format!(
                "the TLS key {} does not fit the certificate {}",
                show(&other_key),
                show(&cert)
            ),
        ),
    ] {
        let error = Tls::from_pem_files(cert, key).expect_err("refused");
        assert!(error.starts_with(&expected), "{error:?} should start with {expected:?}");
    }
    assert!(Tls::from_pem(pki.cert.as_bytes(), pki.key.as_bytes()).is_ok());
}

/// The command line: `--tls-cert` and `--tls-key` together, `wss://` with them and only with
/// them, non-loopback still only with `--ws-auth`; then the binary serves `wss://`.
#[tokio::test]
async fn the_tls_flags_are_checked_and_the_binary_serves_wss() {
    let (pki, other) = (Pki::generate(), Pki::generate());
    let dir = tempfile::tempdir().expect("temp dir");
    let (cert, key) = pki.write(dir.path());
    let other_key = dir.path().join("other.key");
    std::fs::write(&other_key, &other.key).expect("a key");
    let (cert, key, other_key) = (show(&cert), show(&key), show(&other_key));
    let tls = ["--tls-cert", &cert, "--tls-key", &key];
    refused(
        &["--tls-cert", &cert],
        "the following required arguments were not provided",
    );
    refused(&["--tls-key", &key], "--tls-cert <PATH>");
    refused(
        &["--listen", "wss://127.0.0.1:0"],
        "a wss:// listen URL needs --tls-cert and --tls-key",
    );
    refused(
        &[&["--listen", "ws://127.0.0.1:0"], &tls[..]].concat(),
        "with --tls-cert and --tls-key the port speaks TLS: listen on wss://127.0.0.1:0, not ws://127.0.0.1:0",
    );
    refused(
        &[&["--listen", "wss://0.0.0.0:0"], &tls[..]].concat(),
        "refusing to start non-loopback websocket listener",
    );
    refused(
        &["--tls-cert", &cert, "--tls-key", &other_key],
        "does not fit the certificate",
    );
    refused(
        &["--tls-cert", "/nonexistent/cert.pem", "--tls-key", &key],
        "cannot read the TLS certificate /nonexistent/cert.pem",
    );

    let data = dir.path().join("data");
    let (server, url) = binary::spawn(binary::bare_command(
        &[&["--data-dir", &show(&data), "--openai-api"], &tls[..]].concat(),
    ));
    assert!(url.starts_with("wss://127.0.0.1:"), "{url}");
    let https = url.replace("wss://", "https://").replace("/ws", "/v1");
    let api_line = server.next_line(std::time::Duration::from_secs(10));
    assert_eq!(api_line, Some(format!("OpenAI-compatible API: {https}")));
    let client = Client::builder(&url)
        .ca_pem(&pki.ca)
        .connect()
        .await
        .expect("connects to the binary over wss://");
    assert_eq!(a_turn(&client).await, "sent over TLS");
    client.close().await;
    drop(server);
}

fn show(path: &Path) -> String {
    path.display().to_string()
}

/// The CA and certificate under `tests/tls/` that the Node and Python tests trust and serve:
/// they still make a server that clients reach as `127.0.0.1` and as `localhost`.
/// `UPDATE_TLS_FIXTURES=1 cargo nextest run -p letta-app-server -E 'test(tls_fixtures)'` makes
/// new ones. They are checked in rather than made by each test run because Node and Python have
/// no certificate generator of their own (and `openssl` is not everywhere); their private key
/// protects nothing but these tests.
#[tokio::test]
async fn the_tls_fixtures_serve_127_0_0_1_and_localhost() {
    let dir = letta_app_server_tests::corpus_dir().join("tls");
    if std::env::var_os("UPDATE_TLS_FIXTURES").is_some() {
        std::fs::create_dir_all(&dir).expect("tests/tls");
        Pki::generate().write(&dir);
    }
    let tls = Tls::from_pem_files(&dir.join("server.pem"), &dir.join("server.key")).expect("usable fixtures");
    let ca = std::fs::read_to_string(dir.join("ca.pem")).expect("tests/tls/ca.pem");
    let server = TestServer::start_with(|config| config.tls = Some(tls)).await;
    let port = address(&server).port();
    for host in ["127.0.0.1", "localhost"] {
        let client = Client::builder(&format!("wss://{host}:{port}"))
            .ca_pem(&ca)
            .connect()
            .await
            .unwrap_or_else(|e| panic!("{host}: {e}"));
        client.app_server_info().await.expect("served");
        client.close().await;
    }
}
