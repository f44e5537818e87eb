//! Server configuration.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use letta_app_server_protocol::DevicePermissionMode;

use crate::provider::ProviderSettings;

/// Everything a server needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on (loopback only, unless `auth` is set).
    pub listen: SocketAddr,
    /// How clients authenticate (docs/protocol.md §1.6); `None`: they do not, and only
    /// loopback clients without an `Origin` are served.
    pub auth: Option<crate::auth::Auth>,
    /// Origins whose web pages may open a websocket, sending the token as the bearer
    /// subprotocol, as `scheme://host[:port]` (see [`normalize_origin`](crate::normalize_origin));
    /// needs `auth`.
    pub allowed_origins: Vec<String>,
    /// TLS on the listening port (`wss://` and `https://`; docs/protocol.md §1.2); `None`:
    /// plain `ws://` and `http://`. It does not replace `auth`: it hides the token on the way.
    pub tls: Option<crate::tls::Tls>,
    /// How long a client of a TLS port has, from connecting, to complete the TLS handshake;
    /// past it the connection is closed. The handshake runs in the connection's own task, so a
    /// slow or silent client holds up no other.
    pub tls_handshake_timeout: Duration,
    /// Websocket path (upgrades are also accepted on `/`).
    pub ws_path: String,
    /// Directory of the SQLite store.
    pub data_dir: PathBuf,
    /// Permission mode of scopes that never set one.
    pub default_mode: DevicePermissionMode,
    /// Largest inbound frame, in bytes.
    pub max_frame_bytes: usize,
    /// Frames a session may have queued before it is closed.
    pub max_queued_frames: usize,
    /// Bytes a session may have queued before it is closed.
    pub max_queued_bytes: usize,
    /// How long a model stream waits for a backed-up reader that takes nothing before it stops
    /// waiting for that reader (which then meets the queue limits).
    pub slow_reader_patience: Duration,
    /// How often each websocket is pinged (docs/protocol.md §1.7).
    pub ping_interval: Duration,
    /// A websocket peer that sends nothing at all (no frame, not even a pong) for this long is
    /// cut off without a close frame (docs/protocol.md §1.7).
    pub silent_peer_timeout: Duration,
    /// How long closing a websocket may take: sending what is queued and the close frame, then
    /// the peer's close frame in answer. Past it the TCP connection is reset.
    pub close_timeout: Duration,
    /// How long a client has to send a complete HTTP request head, from the moment the
    /// connection opens or the previous response was sent; past it the connection is closed.
    pub http_header_timeout: Duration,
    /// Model provider endpoints.
    pub providers: ProviderSettings,
    /// Working directory of scopes that never set one, until `set_boot_working_directory`
    /// stores another (which then applies across restarts while it is a directory).
    pub boot_cwd: String,
    /// The shell a terminal runs (`terminal_spawn`, docs/protocol.md §4.14): `$SHELL`, else
    /// `/bin/sh`.
    pub shell: String,
    /// How long a controller has to answer an `external_tool_call_request`.
    pub external_tool_timeout: Duration,
    /// How long a turn waits for an external tool registered without `auto_background: false`
    /// before it goes on without it (Letta 0.34: 10 s); the result arrives later as a
    /// `task_notification` queue item.
    pub external_tool_background_after: Duration,
    /// How long a conversation stays in memory once it is idle with no subscriber (its state is
    /// in the store and is loaded again on the next use).
    pub idle_eviction: Duration,
    /// Whether the port also serves the OpenAI-compatible API (`--openai-api`: `/v1/models`,
    /// `/v1/chat/completions`, `/v1/responses`); off, `/v1/…` gets 404.
    pub openai_api: bool,
    /// Serve the inspector, a web page that connects to this or any App Server, at `GET /inspect`
    /// (`--inspect`); its own origins are then allowed as if given to `allowed_origins`, so it
    /// needs `auth`.
    pub inspect: bool,
    /// How long one turn of the OpenAI-compatible API may take, waiting in the queue included;
    /// past it the turn is stopped and the request fails (15 minutes, as real Letta's).
    pub openai_turn_timeout: Duration,
    /// The clock scheduled prompts go by (the system's; tests set one of their own).
    pub cron_clock: crate::schedule::Clock,
    /// What the resumable event stream keeps (docs/protocol.md §2.2).
    pub resume: ResumeLimits,
}

/// What the resumable event stream keeps per conversation, and how long it waits for a client
/// that subscribed with `resume_after` to come back (docs/protocol.md §2.2).
#[derive(Debug, Clone, Copy)]
pub struct ResumeLimits {
    /// Events retained per conversation at most (`--resume-events`).
    pub events: usize,
    /// Bytes of retained events per conversation at most (`--resume-bytes`).
    pub bytes: usize,
    /// How long a turn goes on after its last resuming subscriber dropped with nobody else
    /// watching, waiting for it to come back (`--resume-grace`).
    pub grace: Duration,
}

impl Default for ResumeLimits {
    fn default() -> Self {
        Self {
            events: 10_000,
            bytes: 8 * 1024 * 1024,
            grace: Duration::from_secs(30),
        }
    }
}

impl Config {
    /// Defaults for a server storing its data in `data_dir`, listening on `127.0.0.1:0`.
    pub fn new(data_dir: PathBuf) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            ws_path: "/ws".into(),
            data_dir,
            default_mode: DevicePermissionMode::Unrestricted,
            max_frame_bytes: 16 * 1024 * 1024,
            max_queued_frames: 512,
            max_queued_bytes: 16 * 1024 * 1024,
            slow_reader_patience: Duration::from_millis(500),
            ping_interval: Duration::from_secs(30),
            silent_peer_timeout: Duration::from_secs(90),
            close_timeout: Duration::from_secs(5),
            http_header_timeout: Duration::from_secs(10),
            tls: None,
            tls_handshake_timeout: Duration::from_secs(10),
            providers: ProviderSettings::from_env(),
            external_tool_timeout: Duration::from_secs(5 * 60),
            external_tool_background_after: Duration::from_secs(10),
            idle_eviction: Duration::from_secs(10 * 60),
            openai_api: false,
            inspect: false,
            openai_turn_timeout: Duration::from_secs(15 * 60),
            cron_clock: crate::schedule::Clock::System,
            resume: ResumeLimits::default(),
            auth: None,
            allowed_origins: Vec::new(),
            shell: std::env::var("SHELL")
                .ok()
                .filter(|shell| !shell.is_empty())
                .unwrap_or_else(|| "/bin/sh".into()),
            boot_cwd: std::env::current_dir()
                .map(|d| d.display().to_string())
                .unwrap_or_else(|_| "/".into()),
        }
    }
}
