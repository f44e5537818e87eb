//! The connection: options, commands sent as text, the streams of frames, closing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use letta_app_server_client::types::{InputPayload, RuntimeScope};
use letta_app_server_client::{Client, ClientBuilder, Reconnect};
use napi::bindgen_prelude::{Error, Result};
use napi_derive::napi;
use tokio_util::sync::CancellationToken;

use crate::error::to_js;
use crate::stream::FrameStream;
use crate::terminal::{self, NativeTerminal, NativeTerminalOptions};

/// How long a full turn stream holds back reading the socket before it falls behind instead: a
/// turn iterator that keeps being read gets every frame however fast the server streams, and
/// one nobody reads holds up the connection this long at most (under the server's half second,
/// after which it would count this client as a slow reader).
const TURN_PATIENCE: Duration = Duration::from_millis(250);

/// Connection options, as the JavaScript layer passes them.
#[napi(object)]
pub struct NativeOptions {
    /// The server: `ws://`, `wss://`, `http://` or `https://`.
    pub url: String,
    /// Sent as `Authorization: Bearer <token>` on every upgrade.
    pub auth_token: Option<String>,
    /// CA certificates (PEM) trusted for `wss://` besides the Mozilla roots: the `tls.ca`
    /// option, joined.
    pub ca_pem: Option<String>,
    /// How long the client's own requests wait: the turn helper's `input`, and the commands
    /// that restore runtimes after a reconnect.
    pub request_timeout_ms: Option<u32>,
    /// Frames a turn's stream buffers before it skips.
    pub event_capacity: Option<u32>,
    /// Reconnect automatically after the connection drops; absent: never.
    pub reconnect: Option<NativeReconnect>,
}

/// The reconnect policy: wait `initial_delay_ms`, doubling up to `max_delay_ms`, for at most
/// `max_attempts` attempts (absent: until closed).
#[napi(object)]
pub struct NativeReconnect {
    /// Wait before the first attempt.
    pub initial_delay_ms: u32,
    /// The longest wait between attempts.
    pub max_delay_ms: u32,
    /// Give up after this many failed attempts.
    pub max_attempts: Option<u32>,
    /// Resume the runtimes' event streams where they left off, on a server that offers it
    /// (default true).
    pub resume: Option<bool>,
}

/// A client of one App Server. Made at once (options are checked then), connected by
/// [`NativeClient::connect`].
#[napi]
pub struct NativeClient {
    /// Until [`NativeClient::connect`] takes it.
    builder: Mutex<Option<ClientBuilder>>,
    /// Request numbers, shared with the Rust client's own requests.
    next_request_number: Arc<AtomicU64>,
    client: OnceLock<Client>,
    closed: CancellationToken,
}

#[napi]
impl NativeClient {
    /// Checks the options (a bad URL scheme, a blank token or CA certificates that are not PEM
    /// throw) without connecting.
    #[napi(constructor)]
    pub fn new(options: NativeOptions) -> Result<Self> {
        let next_request_number = Arc::new(AtomicU64::new(1));
        let mut builder = Client::builder(&options.url).request_numbers(Arc::clone(&next_request_number));
        if let Some(token) = options.auth_token {
            builder = builder.token(token);
        }
        if let Some(pem) = options.ca_pem {
            builder = builder.ca_pem(pem);
        }
        if let Some(ms) = options.request_timeout_ms {
            builder = builder.request_timeout(millis(ms));
        }
        if let Some(capacity) = options.event_capacity {
            builder = builder.event_capacity(capacity as usize);
        }
        if let Some(policy) = options.reconnect {
            builder = builder.reconnect(Reconnect {
                initial_delay: millis(policy.initial_delay_ms),
                max_delay: millis(policy.max_delay_ms),
                max_attempts: policy.max_attempts,
                resume: policy.resume.unwrap_or(true),
            });
        }
        builder.validate().map_err(to_js)?;
        Ok(Self {
            builder: Mutex::new(Some(builder)),
            next_request_number,
            client: OnceLock::new(),
            closed: CancellationToken::new(),
        })
    }

    /// `"<prefix>-<n>"`: `n` counts from 1 per client, shared with the client's own requests.
    #[napi]
    pub fn next_request_id(&self, prefix: String) -> String {
        format!("{prefix}-{}", self.next_request_number.fetch_add(1, Ordering::Relaxed))
    }

    /// Connects and returns the stream of every frame the server sends. It never skips: while
    /// it holds `capacity` unread frames the client stops reading the socket.
    #[napi]
    pub async fn connect(&self, capacity: u32) -> Result<FrameStream> {
        let builder = self
            .builder
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()
            .ok_or_else(|| Error::from_reason("connect() was already called"))?;
        let (client, events) = tokio::select! {
            connected = builder.connect_paced(capacity as usize) => connected.map_err(to_js)?,
            () = self.closed.cancelled() => return Err(Error::from_reason("closed while connecting")),
        };
        let stream = FrameStream::events(events);
        // `close()` may have run while the handshake finished.
        if self.closed.is_cancelled() {
            client.close().await;
        }
        let _ = self.client.set(client);
        Ok(stream)
    }

    /// Sends a frame given as JSON text.
    #[napi]
    pub async fn send(&self, text: String) -> Result<()> {
        self.client()?.send_text(text).await.map_err(to_js)
    }

    /// The `control_request`s pending, of every runtime or of `runtime` (a JSON scope), as the
    /// text of a JSON array of the frames as received; `[]` before the connection is up.
    #[napi]
    pub fn pending_approvals(&self, runtime: Option<String>) -> Result<String> {
        let scope = runtime
            .map(|runtime| parse::<RuntimeScope>(&runtime, "runtime"))
            .transpose()?;
        let Some(client) = self.client.get() else {
            return Ok("[]".into());
        };
        let pending = client.pending_approvals(scope.as_ref());
        let texts: Vec<&str> = pending.iter().map(|frame| frame.raw.text()).collect();
        Ok(format!("[{}]", texts.join(",")))
    }

    /// Sends an `input` with `payload` (JSON) to `runtime` (a JSON scope) and returns the
    /// stream of the turn it starts or joins, up to its `turn_finished` (a patient stream, which
    /// holds reading back for at most a quarter of a second at a time).
    #[napi]
    pub async fn turn(&self, runtime: String, payload: String, timeout_ms: Option<u32>) -> Result<FrameStream> {
        let scope: RuntimeScope = parse(&runtime, "runtime")?;
        let payload: InputPayload = parse(&payload, "payload")?;
        let client = self.client()?;
        let client = match timeout_ms {
            Some(ms) => client.with_timeout(millis(ms)),
            None => client.clone(),
        };
        let turn = client
            .turn_patient(&scope, payload, TURN_PATIENCE)
            .await
            .map_err(to_js)?;
        Ok(FrameStream::turn(turn))
    }

    /// Sends a command answered by a stream (JSON text; an absent or empty `request_id` is
    /// numbered) and returns the stream of its answers up to the one with `done: true`, each
    /// waited for up to `timeout_ms` (or the request timeout). A command that cannot be sent
    /// gives a stream of that one error.
    #[napi]
    pub async fn request_stream(&self, command: String, timeout_ms: Option<u32>) -> Result<FrameStream> {
        let command: letta_app_server_client::JsonObject = parse(&command, "command")?;
        let client = self.client()?;
        let client = match timeout_ms {
            Some(ms) => client.with_timeout(millis(ms)),
            None => client.clone(),
        };
        Ok(FrameStream::answers(client.command_stream(command).await))
    }

    /// Watches a file (`watch_file`) and returns the stream of its `file_changed` frames (gaps
    /// included; the server's refusal ends it as `["failed", message]`), which sends
    /// `unwatch_file` when it is closed or collected.
    #[napi]
    pub async fn watch_file(&self, path: String) -> Result<FrameStream> {
        let watch = self.client()?.watch_file(path).await.map_err(to_js)?;
        Ok(FrameStream::watch(watch))
    }

    /// `terminal_spawn`: a terminal once `terminal_spawned` came (within `timeout_ms`, or the
    /// request timeout).
    #[napi]
    pub async fn terminal(&self, options: NativeTerminalOptions, timeout_ms: Option<u32>) -> Result<NativeTerminal> {
        let client = self.client()?;
        let client = match timeout_ms {
            Some(ms) => client.with_timeout(millis(ms)),
            None => client.clone(),
        };
        terminal::spawn(&client, options).await
    }

    /// Closes the connection: streams end, the client's own pending requests fail.
    #[napi]
    pub async fn close(&self) {
        self.closed.cancel();
        if let Some(client) = self.client.get() {
            client.close().await;
        }
    }

    fn client(&self) -> Result<&Client> {
        self.client.get().ok_or_else(|| Error::from_reason("not connected"))
    }
}

fn millis(ms: u32) -> Duration {
    Duration::from_millis(ms.into())
}

/// Reads `text` as a `T`; the error names `what` and the offending field.
fn parse<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| Error::from_reason(format!("invalid {what}: {e}")))
}

/// Resolves a server URL as the official helper does: `http(s)` becomes `ws(s)`, an empty path
/// or `/` becomes `/ws`, a `channel` parameter is dropped; another scheme throws
/// `Unsupported app-server URL protocol: <scheme>:`.
#[napi]
pub fn resolve_app_server_url(url: String) -> Result<String> {
    letta_app_server_client::resolve_url(&url).map_err(to_js)
}
