//! The real server in this process on 127.0.0.1 port 0, with a data directory of its own,
//! configurable beyond what the command line offers, and restartable on the same port and store
//! (feature `server`). For `kill -9`, see [`crate::process`].

pub use letta_app_server::Auth;
use letta_app_server::{Config, Server};

use crate::wire::Client;

/// A server with its own data directory, restartable on the same port with the same store.
pub struct TestServer {
    /// The running server; `None` once stopped.
    pub server: Option<Server>,
    /// Its data directory (the store is in `store/`); also its boot working directory.
    pub data: tempfile::TempDir,
    config: Config,
}

impl TestServer {
    /// Starts a server with the default configuration.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts a server after `configure` adjusted its configuration.
    pub async fn start_with(configure: impl FnOnce(&mut Config)) -> Self {
        let data = tempfile::tempdir().expect("temp dir");
        let mut config = Config::new(data.path().join("store"));
        config.boot_cwd = data.path().display().to_string();
        configure(&mut config);
        let server = Server::start(config.clone()).await.expect("server starts");
        // A restart listens on the port this start was given.
        config.listen = server.local_addr();
        Self {
            server: Some(server),
            data,
            config,
        }
    }

    /// `ws://127.0.0.1:<port><path>`, or `wss://` with TLS configured.
    pub fn url(&self, path: &str) -> String {
        let scheme = if self.config.tls.is_some() { "wss" } else { "ws" };
        format!("{scheme}://{}{path}", self.config.listen)
    }

    /// `http://127.0.0.1:<port><path>`, or `https://` with TLS configured.
    pub fn http(&self, path: &str) -> String {
        let scheme = if self.config.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}{path}", self.config.listen)
    }

    /// Connects a schema-checking client to `/ws`.
    pub async fn client(&self) -> Client {
        Client::connect(&self.url("/ws")).await
    }

    /// Stops the server (its sockets close) without starting it again.
    pub async fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
    }

    /// Starts the server again on the same port with the same store.
    pub async fn restart(&mut self) {
        self.stop().await;
        let server = Server::start(self.config.clone()).await.expect("server restarts");
        self.server = Some(server);
    }
}
