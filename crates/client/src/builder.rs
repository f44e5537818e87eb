//! Connecting: the options of a client, and [`Client::connect`] and [`Client::builder`].

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use crate::Error;
use crate::client::Client;
use crate::events::{DEFAULT_EVENT_CAPACITY, RawEvents};
use crate::options::{Options, Reconnect, Transport, resolve_url};
use crate::shared::Shared;
use crate::tls;

/// The default time a command waits for its answer, as in Letta Code's client helper.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Options for [`Client::builder`].
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    /// The options as given (the URL not yet resolved).
    options: Options,
    next_request_number: Option<Arc<AtomicU64>>,
}

impl ClientBuilder {
    /// Sends `Authorization: Bearer <token>` on every upgrade.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.options.token = Some(token.into());
        self
    }

    /// Trusts the CA certificates of `pem` (PEM text: one or more `-----BEGIN CERTIFICATE-----`
    /// blocks) for `wss://`, besides the Mozilla roots that are always trusted: the CA that
    /// signed a server's own certificate (`letta-app-server --tls-cert`), or that certificate
    /// itself when it is self-signed. Each call adds to the last; text that is not PEM
    /// certificates makes [`ClientBuilder::connect`] fail with [`Error::InvalidTls`].
    pub fn ca_pem(mut self, pem: impl AsRef<[u8]>) -> Self {
        self.options.ca_pem.extend_from_slice(pem.as_ref());
        self.options.ca_pem.push(b'\n');
        self
    }

    /// Chooses the transport (default: one socket).
    pub fn transport(mut self, transport: Transport) -> Self {
        self.options.transport = transport;
        self
    }

    /// How long commands wait for their answer (default 30 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.options.request_timeout = timeout;
        self
    }

    /// How many frames each event stream buffers before it skips (default 4096).
    pub fn event_capacity(mut self, capacity: usize) -> Self {
        self.options.event_capacity = capacity;
        self
    }

    /// Reconnects automatically after the connection drops; see the crate docs for what a
    /// caller may miss.
    pub fn reconnect(mut self, policy: Reconnect) -> Self {
        self.options.reconnect = Some(policy);
        self
    }

    /// Numbers request ids (`"<prefix>-<n>"`) from `counter`, the next number to use, which
    /// the caller may share (a language binding numbering ids before the client exists).
    pub fn request_numbers(mut self, counter: Arc<AtomicU64>) -> Self {
        self.next_request_number = Some(counter);
        self
    }

    /// Checks the URL, the token and the CA certificates as [`ClientBuilder::connect`] does,
    /// without connecting.
    pub fn validate(&self) -> Result<(), Error> {
        self.options().map(drop)
    }

    /// The options, checked, with the URL resolved.
    fn options(&self) -> Result<Options, Error> {
        if self.options.token.as_ref().is_some_and(|token| token.trim().is_empty()) {
            return Err(Error::InvalidUrl {
                url: self.options.url.clone(),
                reason: "app-server auth token must not be empty".into(),
            });
        }
        let url = resolve_url(&self.options.url)?;
        let tls = tls::client_config(&self.options.ca_pem)?;
        Ok(Options {
            tls: url.starts_with("wss://").then_some(tls),
            url,
            ..self.options.clone()
        })
    }

    /// Connects.
    pub async fn connect(self) -> Result<Client, Error> {
        self.connect_then(|_| ()).await.map(|(client, ())| client)
    }

    /// Connects, and returns with the client a stream of every frame like
    /// [`Client::raw_events_paced`]'s, subscribed before the first frame is read: it misses
    /// none, not even a frame the server sends as soon as the socket opens.
    pub async fn connect_paced(self, capacity: usize) -> Result<(Client, RawEvents), Error> {
        self.connect_then(|shared| shared.subscribe_paced(capacity)).await
    }

    /// Connects, running `before_reading` on the client's core before the first frame is read.
    async fn connect_then<T>(self, before_reading: impl FnOnce(&Shared) -> T) -> Result<(Client, T), Error> {
        let options = self.options()?;
        let next_id = self.next_request_number.unwrap_or_else(|| Arc::new(AtomicU64::new(1)));
        Client::start(options, next_id, before_reading).await
    }
}

impl Client {
    /// Connects to `url` (`ws://host:port`, `/ws` assumed) over one socket.
    pub async fn connect(url: &str) -> Result<Client, Error> {
        Self::builder(url).connect().await
    }

    /// Options for a connection to `url`.
    pub fn builder(url: &str) -> ClientBuilder {
        ClientBuilder {
            options: Options {
                url: url.to_owned(),
                transport: Transport::Single,
                token: None,
                ca_pem: Vec::new(),
                tls: None,
                request_timeout: DEFAULT_REQUEST_TIMEOUT,
                event_capacity: DEFAULT_EVENT_CAPACITY,
                reconnect: None,
            },
            next_request_number: None,
        }
    }
}
