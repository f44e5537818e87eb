//! `letta-app-server`: the reference Letta Code App Server. See `--help`.

use std::io::IsTerminal;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use letta_app_server::logging::LogFormat;
use letta_app_server::{
    Auth, Config, DEFAULT_MAX_CLOCK_SKEW, MIN_SECRET_BYTES, ResumeLimits, Server, SignedBearer, Tls,
};
use letta_app_server_protocol::DevicePermissionMode;

/// The reference Letta Code App Server: the v2 websocket protocol on a loopback port, agents
/// stored in SQLite, models from OpenAI-compatible providers or the built-in scripted model.
#[derive(Debug, Parser)]
#[command(name = "letta-app-server", version)]
struct Cli {
    /// Websocket listen URL, `ws://` or, with `--tls-cert` and `--tls-key`, `wss://`; none, or
    /// `--listen` alone, means port 0 (a free one) on 127.0.0.1. Only loopback addresses are
    /// accepted unless `--ws-auth` is given.
    #[arg(long, value_name = "URL", num_args = 0..=1)]
    listen: Option<Option<String>>,
    /// Where the SQLite store lives.
    #[arg(long, value_name = "DIR", env = "LETTA_APP_SERVER_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Permission mode of runtimes that never set one.
    #[arg(long, value_name = "MODE", default_value = "unrestricted", value_parser = DevicePermissionMode::ALL.map(DevicePermissionMode::as_str))]
    default_mode: String,
    /// Largest accepted inbound frame, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 16 * 1024 * 1024)]
    max_frame_bytes: usize,
    /// Threads running sockets, turns and model streams. 1 (the default) is one event loop, the
    /// least CPU per frame; more spread heavy loads over cores at the cost of wake-ups between
    /// threads. SQLite and blocking tool work have threads of their own either way.
    #[arg(long, value_name = "N", env = "LETTA_APP_SERVER_THREADS", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    threads: u16,
    /// Websocket authentication: `capability-token` or `signed-bearer-token` (every upgrade and
    /// /app-server-info must carry `Authorization: Bearer <token>`). With it, non-loopback listen
    /// addresses are allowed.
    #[arg(long, value_name = "MODE")]
    ws_auth: Option<String>,
    /// Absolute path of a file holding the capability token.
    #[arg(long, value_name = "PATH")]
    ws_token_file: Option<PathBuf>,
    /// Hex-encoded SHA-256 digest of the capability token.
    #[arg(long, value_name = "HEX")]
    ws_token_sha256: Option<String>,
    /// Absolute path of the shared secret of `signed-bearer-token` (HS256 JWTs; 32 bytes at least).
    #[arg(long, value_name = "PATH")]
    ws_shared_secret_file: Option<PathBuf>,
    /// The `iss` a signed bearer token must carry.
    #[arg(long, value_name = "ISSUER")]
    ws_issuer: Option<String>,
    /// The `aud` a signed bearer token must carry (or list).
    #[arg(long, value_name = "AUDIENCE")]
    ws_audience: Option<String>,
    /// Seconds of clock difference tolerated on `exp` and `nbf` (default 30).
    #[arg(long, value_name = "SECONDS")]
    ws_max_clock_skew_seconds: Option<String>,
    /// An origin (`scheme://host[:port]`) whose web pages may connect, sending the token as the
    /// `Sec-WebSocket-Protocol` value `letta-app-server.bearer.<token>`; repeatable; needs
    /// `--ws-auth`.
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    allow_origins: Vec<String>,
    /// PEM file of the TLS certificate (then any intermediate CA certificates): the port speaks
    /// TLS, `wss://` and `https://`. Needs `--tls-key`.
    #[arg(long, value_name = "PATH", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM file of the TLS certificate's private key. Needs `--tls-cert`.
    #[arg(long, value_name = "PATH", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Also serve the OpenAI-compatible API on the same port: GET /v1/models (one model per
    /// agent), POST /v1/chat/completions and POST /v1/responses, with the same authentication.
    #[arg(long)]
    openai_api: bool,
    /// Also serve the inspector at GET /inspect: a web page that connects to this or any App
    /// Server with a token and shows its agents, conversations, runtimes and live frames. Needs
    /// `--ws-auth`; the printed address carries the token when the server has it and stdout is
    /// a terminal.
    #[arg(long)]
    inspect: bool,
    /// What to log to stderr: a level (`error`, `warn`, `info`, `debug`, `trace`, `off`) and/or
    /// `target=level` directives as in `RUST_LOG` (`info,letta_app_server::transport=debug`).
    /// Default: the `RUST_LOG` variable, else `info`.
    #[arg(long, value_name = "FILTER")]
    log_level: Option<String>,
    /// How logs are written: `text` (a line per event) or `json` (an object per line).
    #[arg(long, value_name = "FORMAT", default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
    /// Events of a conversation kept for clients that subscribed with `resume_after`, to send
    /// them the ones they missed when they come back.
    #[arg(long, value_name = "N", default_value_t = ResumeLimits::default().events as u32, value_parser = clap::value_parser!(u32).range(1..))]
    resume_events: u32,
    /// Bytes of a conversation's events kept for clients that subscribed with `resume_after`.
    #[arg(long, value_name = "BYTES", default_value_t = ResumeLimits::default().bytes)]
    resume_bytes: usize,
    /// Seconds a turn goes on after its last client that subscribed with `resume_after` dropped
    /// with nobody else watching, waiting for it to come back (0: it ends at once, as for other
    /// clients).
    #[arg(long, value_name = "SECONDS", default_value_t = ResumeLimits::default().grace.as_secs())]
    resume_grace: u64,
    /// Also export the log spans (connections, turns) with their events to this OpenTelemetry
    /// collector, over OTLP/HTTP with protobuf: `http://HOST:4318` (spans go to its
    /// `/v1/traces`) or the full URL of its traces endpoint.
    #[arg(long, value_name = "URL")]
    otlp_endpoint: Option<String>,
}

/// The trimmed content of an auth secret file, with real Letta's messages.
fn read_secret(flag: &str, path: &std::path::Path) -> Result<String, String> {
    if !path.is_absolute() {
        return Err(format!("{flag} must be an absolute path"));
    }
    let secret = std::fs::read_to_string(path)
        .map_err(|e| format!("failed to read websocket auth secret {}: {e}", path.display()))?;
    let secret = secret.trim();
    if secret.is_empty() {
        return Err(format!("websocket auth secret {} must not be empty", path.display()));
    }
    Ok(secret.to_owned())
}

/// The token of `--ws-auth capability-token` given no token flag: `<data dir>/ws-token`, made on
/// the first such start (256 bits from the operating system's CSPRNG, as hex) and readable by
/// its owner only; later starts reuse it, so clients keep working. A token file others can read
/// is refused.
fn generated_token(data_dir: &Path) -> Result<(String, PathBuf), String> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let path = data_dir.join("ws-token");
    let failed = |error: std::io::Error| format!("cannot write the websocket token {}: {error}", path.display());
    if !path.exists() {
        std::fs::create_dir_all(data_dir).map_err(failed)?;
        let mut bits = [0u8; 32];
        getrandom::fill(&mut bits).map_err(|e| failed(std::io::Error::other(e.to_string())))?;
        let mut token: String = bits.iter().map(|byte| format!("{byte:02x}")).collect();
        token.push('\n');
        let temporary = data_dir.join(format!("ws-token.{}.tmp", uuid::Uuid::new_v4().simple()));
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temporary)
            .map_err(failed)?;
        file.write_all(token.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(failed)?;
        std::fs::rename(&temporary, &path).map_err(failed)?;
    }
    let mode = std::fs::metadata(&path).map_err(failed)?.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(format!(
            "refusing to use the websocket token {}: others than its owner can read it (chmod 600 it)",
            path.display()
        ));
    }
    Ok((read_secret("--ws-token-file", &path)?, path))
}

/// What the authentication flags set up.
#[derive(Default)]
struct AuthSetup {
    /// How clients authenticate; `None`: they do not.
    auth: Option<Auth>,
    /// The token file this server made, if it made one.
    made_file: Option<PathBuf>,
    /// The capability token, when the server has it (not only its digest).
    token: Option<String>,
}

/// The authentication the flags configure, checked as real Letta checks them (same messages),
/// with the token file this server made, if it made one (`capability-token` without a token
/// flag, which real Letta refuses: here it is the easy secure setup).
fn parse_auth(cli: &Cli, data_dir: &Path) -> Result<AuthSetup, String> {
    let token_flags = cli.ws_token_file.is_some() || cli.ws_token_sha256.is_some();
    let bearer_flags = cli.ws_shared_secret_file.is_some()
        || cli.ws_issuer.is_some()
        || cli.ws_audience.is_some()
        || cli.ws_max_clock_skew_seconds.is_some();
    match cli.ws_auth.as_deref() {
        None if token_flags || bearer_flags => {
            Err("websocket auth flags require `--ws-auth capability-token` or `--ws-auth signed-bearer-token`".into())
        }
        None => Ok(AuthSetup::default()),
        Some("capability-token") if bearer_flags => {
            Err("`--ws-shared-secret-file`, `--ws-issuer`, `--ws-audience`, and \
             `--ws-max-clock-skew-seconds` require `--ws-auth signed-bearer-token`"
                .into())
        }
        Some("capability-token") => match (&cli.ws_token_file, &cli.ws_token_sha256) {
            (Some(_), Some(_)) => Err("`--ws-token-file` and `--ws-token-sha256` are mutually exclusive".into()),
            (None, None) => {
                let (token, path) = generated_token(data_dir)?;
                Ok(AuthSetup {
                    auth: Some(Auth::capability_token(&token)?),
                    made_file: Some(path),
                    token: Some(token),
                })
            }
            (Some(path), None) => {
                let token = read_secret("--ws-token-file", path)?;
                if (!cli.allow_origins.is_empty() || cli.inspect) && !subprotocol_safe(&token) {
                    eprintln!(
                        "Warning: the token in {} has characters a web page cannot send as a websocket \
                         subprotocol (only letters, digits and !#$%&'*+-.^_`|~), so web pages (--allow-origin, \
                         --inspect) cannot use it",
                        path.display()
                    );
                }
                Ok(AuthSetup {
                    auth: Some(Auth::capability_token(&token)?),
                    made_file: None,
                    token: Some(token),
                })
            }
            (None, Some(digest)) => Ok(AuthSetup {
                auth: Some(Auth::capability_token_sha256(digest)?),
                ..AuthSetup::default()
            }),
        },
        Some("signed-bearer-token") if token_flags => Err(
            "`--ws-token-file` and `--ws-token-sha256` require `--ws-auth capability-token`, not `signed-bearer-token`"
                .into(),
        ),
        Some("signed-bearer-token") => {
            let path = (cli.ws_shared_secret_file.as_ref())
                .ok_or("`--ws-shared-secret-file` is required when `--ws-auth signed-bearer-token` is set")?;
            if !path.is_absolute() {
                return Err("--ws-shared-secret-file must be an absolute path".into());
            }
            let max_clock_skew = match &cli.ws_max_clock_skew_seconds {
                None => DEFAULT_MAX_CLOCK_SKEW,
                Some(skew) => (skew.trim().parse::<u64>())
                    .ok()
                    .filter(|skew| *skew < (1 << 53))
                    .ok_or("--ws-max-clock-skew-seconds must be a non-negative integer")?,
            };
            let secret = read_secret("--ws-shared-secret-file", path)?;
            if secret.len() < MIN_SECRET_BYTES {
                return Err(format!(
                    "signed websocket bearer secret {} must be at least {MIN_SECRET_BYTES} bytes",
                    path.display()
                ));
            }
            let text = |value: &Option<String>| {
                value
                    .as_deref()
                    .map(str::trim)
                    .filter(|v| !v.is_empty())
                    .map(str::to_owned)
            };
            let bearer = SignedBearer {
                secret: secret.into_bytes(),
                issuer: text(&cli.ws_issuer),
                audience: text(&cli.ws_audience),
                max_clock_skew,
            };
            Ok(AuthSetup {
                auth: Some(Auth::SignedBearer(bearer)),
                ..AuthSetup::default()
            })
        }
        Some(mode) => Err(format!(
            "unsupported --ws-auth mode \"{mode}\"; expected \"capability-token\" or \"signed-bearer-token\""
        )),
    }
}

/// Whether a browser can send `token` in a `Sec-WebSocket-Protocol` value: only RFC 9110
/// token characters (`new WebSocket` throws for others).
fn subprotocol_safe(token: &str) -> bool {
    !token.is_empty()
        && token
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte))
}

/// The origins of `--allow-origin` (which `Server::start` checks and normalizes); refused
/// without authentication, since any page of theirs could then drive the agents. The
/// inspector's page is one too.
fn parse_origins(cli: &Cli, authenticated: bool) -> Result<Vec<String>, String> {
    let needs = "pages connect with a token (e.g. --ws-auth capability-token, which makes one)";
    if !cli.allow_origins.is_empty() && !authenticated {
        return Err(format!("--allow-origin requires --ws-auth: {needs}"));
    }
    if cli.inspect && !authenticated {
        return Err(format!(
            "--inspect requires --ws-auth: its page is a web page, and {needs}"
        ));
    }
    Ok(cli.allow_origins.clone())
}

/// The address of the inspector's page on a server listening on `addr` (a loopback one for an
/// unspecified address), with `token` in the fragment, which browsers never send: the page
/// reads it and connects. A token a page cannot send is left out.
fn inspector_url(addr: SocketAddr, tls: bool, token: Option<&str>) -> String {
    let host = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::from(([127, 0, 0, 1], addr.port())),
        IpAddr::V6(ip) if ip.is_unspecified() => SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, addr.port())),
        _ => addr,
    };
    let http = if tls { "https" } else { "http" };
    let fragment = match token.filter(|token| subprotocol_safe(token)) {
        // Percent-encoded as a form value: the page reads the fragment with URLSearchParams.
        Some(token) => format!("#token={}", percent_encode(token)),
        None => String::new(),
    };
    format!("{http}://{host}/inspect{fragment}")
}

/// `text` with every byte but ASCII letters, digits and `-._~` written as `%XX`.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => char::from(byte).to_string(),
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

/// The listen address and websocket path of a `ws://host:port[/path]` URL, or a `wss://` one
/// when the port speaks TLS: the URL says what clients dial, so the other scheme is refused.
fn parse_listen(url: &str, authenticated: bool, tls: bool) -> Result<(SocketAddr, String), String> {
    let rest = match (url.split_once("://"), tls) {
        (Some(("ws", rest)), false) | (Some(("wss", rest)), true) => rest,
        (Some(("ws", rest)), true) => {
            return Err(format!(
                "with --tls-cert and --tls-key the port speaks TLS: listen on wss://{rest}, not {url}"
            ));
        }
        (Some(("wss", _)), false) => {
            return Err(format!(
                "a wss:// listen URL needs --tls-cert and --tls-key (PEM files) (got {url})"
            ));
        }
        _ => return Err(format!("listen URL must start with ws:// or wss:// (got {url})")),
    };
    let (authority, path) = rest
        .split_once('/')
        .map_or((rest, "/ws".to_owned()), |(a, p)| (a, format!("/{p}")));
    let path = if path == "/" { "/ws".to_owned() } else { path };
    if path.contains(['?', '#']) || authority.contains('@') {
        return Err(format!(
            "listen URL must not have a query, fragment or user info (got {url})"
        ));
    }
    let (host, port) = authority
        .rsplit_once(':')
        .ok_or_else(|| format!("listen URL needs a port (got {url})"))?;
    let port: u16 = port.parse().map_err(|_| format!("invalid port `{port}`"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
    let ip: IpAddr = if host == "localhost" {
        IpAddr::from([127, 0, 0, 1])
    } else {
        host.parse().map_err(|_| format!("invalid host `{host}`"))?
    };
    if !ip.is_loopback() && !authenticated {
        return Err(format!(
            "refusing to start non-loopback websocket listener {host}:{port} without auth; \
             configure it with --ws-auth capability-token --ws-token-file <absolute path>"
        ));
    }
    Ok((SocketAddr::new(ip, port), path))
}

/// The TLS certificate and key of `--tls-cert` and `--tls-key` (clap makes sure they come
/// together), read and checked now: a file that cannot be read or holds no PEM certificate or
/// key, or a key that is not the certificate's, stops the start.
fn parse_tls(cli: &Cli) -> Result<Option<Tls>, String> {
    match (&cli.tls_cert, &cli.tls_key) {
        (Some(cert), Some(key)) => Tls::from_pem_files(cert, key).map(Some),
        _ => Ok(None),
    }
}

/// The scheme of the listen URL and the address lines: `wss` on a TLS port, else `ws`.
fn scheme(tls: bool) -> &'static str {
    if tls { "wss" } else { "ws" }
}

/// The name of the runtime's threads besides the main one: its workers, and its blocking pool.
const WORKER_THREAD_NAME: &str = "letta-worker";

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut builder = match cli.threads {
        1 => tokio::runtime::Builder::new_current_thread(),
        threads => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(usize::from(threads));
            builder
        }
    };
    match builder.thread_name(WORKER_THREAD_NAME).enable_all().build() {
        Ok(runtime) => runtime.block_on(serve(cli)),
        Err(error) => {
            eprintln!("Error: cannot start the async runtime: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Installs the logs, then runs the server until SIGINT or SIGTERM.
async fn serve(cli: Cli) -> ExitCode {
    let filter = (cli.log_level.clone())
        .or_else(|| std::env::var("RUST_LOG").ok().filter(|filter| !filter.is_empty()))
        .unwrap_or_else(|| "info".into());
    let format = LogFormat::from_name(&cli.log_format).unwrap_or(LogFormat::Text);
    let logging = match letta_app_server::logging::install(&filter, format, cli.otlp_endpoint.as_deref()) {
        Ok(logging) => logging,
        Err(error) => {
            eprintln!("Error: {error}");
            return ExitCode::FAILURE;
        }
    };
    let exit = run(cli).await;
    logging.shutdown().await;
    exit
}

/// Runs the server until SIGINT or SIGTERM.
async fn run(cli: Cli) -> ExitCode {
    let data_dir = cli.data_dir.clone().unwrap_or_else(|| {
        dirs::data_dir()
            .unwrap_or_else(std::env::temp_dir)
            .join("letta-app-server")
    });
    let parsed = parse_auth(&cli, &data_dir).and_then(|setup| {
        let tls = parse_tls(&cli)?;
        let default = || format!("{}://127.0.0.1:0", scheme(tls.is_some()));
        let url = cli.listen.clone().flatten().unwrap_or_else(default);
        let authenticated = setup.auth.is_some();
        let listen = parse_listen(&url, authenticated, tls.is_some())?;
        Ok((listen, parse_origins(&cli, authenticated)?, setup, tls))
    });
    let ((listen, ws_path), allowed_origins, setup, tls) = match parsed {
        Ok(parsed) => parsed,
        Err(error) => {
            eprintln!("Error: {error}");
            return ExitCode::FAILURE;
        }
    };
    let mut config = Config::new(data_dir);
    config.listen = listen;
    config.ws_path = ws_path.clone();
    config.max_frame_bytes = cli.max_frame_bytes;
    config.auth = setup.auth;
    config.allowed_origins = allowed_origins;
    config.inspect = cli.inspect;
    let tls_on = tls.is_some();
    let scheme = scheme(tls_on);
    config.tls = tls;
    config.openai_api = cli.openai_api;
    config.resume = ResumeLimits {
        events: cli.resume_events as usize,
        bytes: cli.resume_bytes,
        grace: std::time::Duration::from_secs(cli.resume_grace),
    };
    config.default_mode =
        DevicePermissionMode::from_wire(&cli.default_mode).unwrap_or(DevicePermissionMode::Unrestricted);
    let server = match Server::start(config).await {
        Ok(server) => server,
        Err(error) => {
            eprintln!("Error: {error}");
            return ExitCode::FAILURE;
        }
    };
    let base = format!("{scheme}://{}", server.local_addr());
    tracing::info!(
        address = %server.local_addr(),
        version = env!("CARGO_PKG_VERSION"),
        threads = cli.threads,
        "listening"
    );
    say(&format!("Listening on {base}"));
    say(&format!("WebSocket: {base}{ws_path}"));
    say(&format!("Control channel: {base}{ws_path}?channel=control"));
    say(&format!("Stream channel: {base}{ws_path}?channel=stream"));
    if let Some(path) = setup.made_file {
        say(&format!(
            "Token file (owner-only; send it as `Authorization: Bearer <token>`): {}",
            path.display()
        ));
    }
    if cli.openai_api {
        let http = if tls_on { "https" } else { "http" };
        say(&format!("OpenAI-compatible API: {http}://{}/v1", server.local_addr()));
    }
    if cli.inspect {
        // The token goes only to a person's terminal, never into a log that captures stdout.
        let token = setup.token.as_deref().filter(|_| std::io::stdout().is_terminal());
        say(&format!(
            "Inspector: {}",
            inspector_url(server.local_addr(), tls_on, token)
        ));
    }
    let signal = wait_for_signal().await;
    tracing::info!(signal, "stopping");
    server.shutdown().await;
    tracing::info!("stopped");
    say(&format!("\nStopped App Server ({signal})."));
    ExitCode::SUCCESS
}

/// Prints a line to stdout; a closed stdout (the reader went away) is not an error.
fn say(line: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}").and_then(|()| stdout.flush());
}

async fn wait_for_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut interrupt), Ok(mut terminate)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate()))
    else {
        let _ = tokio::signal::ctrl_c().await;
        return "SIGINT";
    };
    tokio::select! {
        _ = interrupt.recv() => "SIGINT",
        _ = terminate.recv() => "SIGTERM",
    }
}
