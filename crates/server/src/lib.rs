//! The reference Letta Code App Server: the v2 websocket protocol over a durable local runtime.
//!
//! [`Server::start`] runs on the caller's tokio runtime, of either flavour. A current-thread
//! runtime (what the `letta-app-server` binary uses unless given `--threads N`) costs the least
//! CPU per frame: no frame wakes another thread between the model and the socket. Either way
//! SQLite runs on a thread of its own, and blocking work (Grep, Glob, LS, approval previews, the
//! search group's walks and matching) on the runtime's blocking pool.
//!
//! It logs through `tracing` (spans per connection and per turn; what each level holds is in
//! [`logging`]) and installs no subscriber: a program that embeds it chooses where the events
//! go, as the binary does with [`logging::install`]. `GET /metrics` serves its counters in the
//! Prometheus text format.
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! let config = letta_app_server::Config::new("/tmp/letta-data".into());
//! let server = letta_app_server::Server::start(config).await?;
//! println!("listening on ws://{}/ws", server.local_addr());
//! server.shutdown().await;
//! # Ok(()) }
//! ```

mod auth;
mod clock;
mod commands;
mod config;
mod engine;
mod history;
mod journal;
mod limits;
pub mod logging;
mod memory;
mod metrics;
mod openai_api;
mod outbound;
mod permissions;
mod private_file;
mod provider;
mod schedule;
mod search;
mod secrets;
mod sessions;
mod skills;
mod store;
mod sync;
mod tls;
mod tools;
mod transcript;
mod transport;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use auth::{Auth, DEFAULT_MAX_CLOCK_SKEW, MIN_SECRET_BYTES, SignedBearer, normalize_origin};
pub use commands::IMPLEMENTED as IMPLEMENTED_COMMANDS;
pub use config::{Config, ResumeLimits};
pub use provider::ProviderSettings;
pub use schedule::{Clock as CronClock, ManualClock};
pub use tls::Tls;

/// A running server.
pub struct Server {
    local_addr: SocketAddr,
    sessions: Arc<sessions::Sessions>,
    transport: Arc<transport::Transport>,
    shutdown: CancellationToken,
    serving: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Opens the store in `config.data_dir`, binds `config.listen` and starts serving; a
    /// non-loopback address, allowed origins and the inspector need `config.auth`; the origins
    /// are taken in any form [`normalize_origin`] accepts.
    pub async fn start(mut config: Config) -> std::io::Result<Self> {
        if !config.listen.ip().is_loopback() && config.auth.is_none() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                format!(
                    "refusing to listen on non-loopback address {} without authentication",
                    config.listen
                ),
            ));
        }
        if config.inspect && config.auth.is_none() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                "refusing to serve the inspector without authentication: its page connects with a token",
            ));
        }
        if !config.allowed_origins.is_empty() && config.auth.is_none() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                "refusing to allow origins without authentication: any page of theirs could drive the agents",
            ));
        }
        config.allowed_origins = config
            .allowed_origins
            .iter()
            .map(|origin| normalize_origin(origin))
            .collect::<Result<_, _>>()
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        std::fs::create_dir_all(&config.data_dir)?;
        let metrics = Arc::new(metrics::Metrics::new());
        let store = store::Store::open(&config.data_dir.join("letta-app-server.sqlite3"), metrics)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let listener = TcpListener::bind(config.listen).await?;
        let local_addr = listener.local_addr()?;
        if config.inspect {
            let own = transport::own_origins(local_addr, config.tls.is_some());
            config.allowed_origins.extend(own);
        }
        let sessions = sessions::Sessions::new(config, store);
        let engine = sessions.engine();
        engine
            .settings
            .load(&engine.store)
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let shutdown = CancellationToken::new();
        let transport = transport::Transport::new(sessions.clone(), shutdown.clone());
        let serving = tokio::spawn(transport::serve(listener, transport.clone()));
        tokio::spawn(evict_idle_conversations(sessions.clone(), shutdown.clone()));
        tokio::spawn(engine.clone().run_scheduler(shutdown.clone()));
        Ok(Self {
            local_addr,
            sessions,
            transport,
            shutdown,
            serving,
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// How many conversation runtimes are in memory (see [`Config::idle_eviction`]).
    pub fn loaded_conversations(&self) -> usize {
        self.sessions.engine().loaded_conversations()
    }

    /// Stops taking inputs and connections, closes the open ones (waiting up to the close
    /// deadline for their close frames), stops every turn (saving what it produced) and waits
    /// for the store to finish writing. Queued inputs stay queued, in the store.
    pub async fn shutdown(self) {
        // First, so that no turn ending while the sockets close starts one from the queue.
        self.sessions.engine().stop();
        self.shutdown.cancel();
        let _ = self.serving.await;
        let deadline = self.sessions.config().close_timeout + std::time::Duration::from_secs(1);
        self.transport.connections_closed(deadline).await;
        self.sessions.engine().shutdown(std::time::Duration::from_secs(2)).await;
    }
}

/// Sweeps for idle conversations until shutdown: one that stays idle and unwatched for
/// [`Config::idle_eviction`] (give or take a fifth) is dropped from memory.
async fn evict_idle_conversations(sessions: Arc<sessions::Sessions>, shutdown: CancellationToken) {
    const SWEEPS: u32 = 5;
    let period = (sessions.config().idle_eviction / SWEEPS).max(std::time::Duration::from_millis(10));
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = shutdown.cancelled() => return,
        }
        sessions.evict_idle(SWEEPS);
    }
}
