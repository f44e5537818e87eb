//! How a client connects: URL, transport, token, TLS, timeouts, buffers, reconnect policy.

use std::sync::Arc;
use std::time::Duration;

use tokio_tungstenite::tungstenite::http::Uri;

use crate::Error;

/// Which of the protocol's two transports to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Transport {
    /// One bidirectional socket on `/ws` (current Letta Code).
    #[default]
    Single,
    /// The seed design's pair: `?channel=control` for commands and responses and
    /// `?channel=stream` for runtime events. Only one such session is active per server: a new
    /// one replaces it.
    Split,
}

/// Automatic reconnect: after the connection drops, wait `initial_delay`, doubling up to
/// `max_delay` between attempts, for at most `max_attempts` attempts (`None`: until
/// [`Client::close`](crate::Client::close)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reconnect {
    /// Wait before the first attempt.
    pub initial_delay: Duration,
    /// The longest wait between attempts.
    pub max_delay: Duration,
    /// Give up after this many failed attempts.
    pub max_attempts: Option<u32>,
    /// Resume the runtimes' event streams where they left off, on a server that offers it (this
    /// project's, `event_resume`): the client subscribes with `resume_after` (see the crate docs
    /// on reconnecting). Default `true`; `false` gets the state replay of every runtime after
    /// each reconnect, as from a server without it.
    pub resume: bool,
}

impl Default for Reconnect {
    fn default() -> Self {
        Self {
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
            max_attempts: None,
            resume: true,
        }
    }
}

impl Reconnect {
    /// The wait before attempt `attempt` (1-based).
    pub(crate) fn delay(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(16));
        self.initial_delay.saturating_mul(factor).min(self.max_delay)
    }
}

/// Everything a client needs to connect.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    /// The `/ws` URL, without a `channel` parameter.
    pub url: String,
    pub transport: Transport,
    pub token: Option<String>,
    /// CA certificates (PEM) trusted for `wss://` besides the Mozilla roots.
    pub ca_pem: Vec<u8>,
    /// For a `wss://` URL: the TLS configuration, made from `ca_pem` when the options are
    /// checked.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub request_timeout: Duration,
    pub event_capacity: usize,
    pub reconnect: Option<Reconnect>,
}

impl Options {
    /// The URLs to dial: one socket, or control then stream.
    pub fn socket_urls(&self) -> Vec<String> {
        match self.transport {
            Transport::Single => vec![self.url.clone()],
            Transport::Split => ["control", "stream"]
                .iter()
                .map(|channel| {
                    let separator = if self.url.contains('?') { '&' } else { '?' };
                    format!("{}{separator}channel={channel}", self.url)
                })
                .collect(),
        }
    }
}

/// Resolves a server URL the way Letta Code's client helper does: `http(s)://` becomes
/// `ws(s)://`, an empty path or `/` becomes `/ws`, and a `channel` query parameter is dropped.
pub fn resolve_url(url: &str) -> Result<String, Error> {
    let invalid = |reason: String| Error::InvalidUrl {
        url: url.to_owned(),
        reason,
    };
    let uri: Uri = url.trim().parse().map_err(|e| invalid(format!("{e}")))?;
    let scheme = match uri.scheme_str() {
        Some("ws" | "http") => "ws",
        Some("wss" | "https") => "wss",
        Some(other) => return Err(invalid(format!("Unsupported app-server URL protocol: {other}:"))),
        None => return Err(invalid("it has no scheme (expected ws://host:port)".into())),
    };
    let authority = uri.authority().ok_or_else(|| invalid("it has no host".into()))?;
    let path = match uri.path() {
        "" | "/" => "/ws",
        path => path,
    };
    let query: Vec<&str> = uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.is_empty() && *pair != "channel" && !pair.starts_with("channel="))
        .collect();
    let query = if query.is_empty() {
        String::new()
    } else {
        format!("?{}", query.join("&"))
    };
    Ok(format!("{scheme}://{authority}{path}{query}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_resolve_like_the_official_helper() {
        for (given, expected) in [
            ("ws://127.0.0.1:4500", "ws://127.0.0.1:4500/ws"),
            ("http://127.0.0.1:4500/", "ws://127.0.0.1:4500/ws"),
            ("https://example.com/app", "wss://example.com/app"),
            ("ws://h:1/ws?channel=control", "ws://h:1/ws"),
            ("ws://h:1/ws?a=1&channel=stream&b=2", "ws://h:1/ws?a=1&b=2"),
        ] {
            assert_eq!(resolve_url(given).unwrap(), expected, "{given}");
        }
        let error = resolve_url("ftp://h/").unwrap_err();
        assert!(
            error.to_string().contains("Unsupported app-server URL protocol: ftp:"),
            "{error}"
        );
        assert!(matches!(resolve_url("not a url"), Err(Error::InvalidUrl { .. })));
    }

    #[test]
    fn split_transport_dials_control_then_stream() {
        let options = Options {
            url: "ws://h:1/ws".into(),
            transport: Transport::Split,
            token: None,
            ca_pem: Vec::new(),
            tls: None,
            request_timeout: Duration::from_secs(1),
            event_capacity: 1,
            reconnect: None,
        };
        assert_eq!(
            options.socket_urls(),
            ["ws://h:1/ws?channel=control", "ws://h:1/ws?channel=stream"]
        );
    }

    #[test]
    fn reconnect_backs_off_to_the_cap() {
        let policy = Reconnect {
            resume: true,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(500),
            max_attempts: None,
        };
        let delays: Vec<_> = (1..=5).map(|n| policy.delay(n).as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 500, 500]);
    }
}
