//! The HTTP side of the port: the checks every request passes, the plain routes
//! (docs/protocol.md §1.4) and the websocket opening handshake (RFC 6455 §4.2).
//!
//! Every refusal carries `Connection: close` and hyper closes the connection after it, so a
//! request pipelined behind a refused one is never read.

use std::net::{Ipv4Addr, Ipv6Addr};

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode, Version};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use letta_app_server_protocol::BEARER_SUBPROTOCOL_PREFIX;

use crate::auth::{Refused, normalize_origin};
use crate::commands::info;
use crate::config::Config;
use crate::metrics::CONTENT_TYPE as METRICS_CONTENT_TYPE;
use crate::sessions::Sessions;

/// The body of every response.
pub(super) type Body = Full<Bytes>;

/// A `text/plain` response.
fn plain(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

/// Why a request is refused: its status, a `text/plain` explanation, and a header the status
/// calls for.
#[derive(Debug)]
pub(super) struct Refusal {
    status: StatusCode,
    reason: &'static str,
    header: Option<(HeaderName, &'static str)>,
}

impl Refusal {
    pub(super) fn new(status: StatusCode, reason: &'static str) -> Self {
        Self {
            status,
            reason,
            header: None,
        }
    }

    /// Its status.
    pub(super) fn status(&self) -> StatusCode {
        self.status
    }

    /// Its explanation.
    pub(super) fn reason(&self) -> &'static str {
        self.reason
    }

    fn with(mut self, name: HeaderName, value: &'static str) -> Self {
        self.header = Some((name, value));
        self
    }

    /// The response; the connection is closed after it.
    pub(super) fn response(self) -> Response<Body> {
        let mut response = plain(self.status, self.reason);
        self.add_headers(response.headers_mut());
        response
    }

    /// Adds the headers of every refusal to `headers`: `Connection: close`, and the one its
    /// status calls for (shared with the OpenAI-compatible API's refusals, whose body differs).
    pub(super) fn add_headers(&self, headers: &mut HeaderMap) {
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        if let Some((name, value)) = &self.header {
            headers.insert(name.clone(), HeaderValue::from_static(value));
        }
    }
}

/// The checks every request passes before it is routed: `Err` says why it is refused; `Ok` holds
/// the subprotocol an accepted websocket upgrade selects (the bearer subprotocol it
/// authenticated with), if any.
///
/// Without authentication, only loopback hosts are served and nothing a browser sends. With it,
/// every websocket upgrade, `GET /app-server-info` and the OpenAI-compatible API's requests
/// (`/v1/…`) must authenticate (401 with real Letta's
/// reason otherwise), from any host: with `Authorization: Bearer <token>`, `Origin` or not
/// (native clients send one too; pages cannot set the header), or, on an upgrade, with the token
/// as one `Sec-WebSocket-Protocol` value behind [`BEARER_SUBPROTOCOL_PREFIX`] — the way of web
/// pages, so their `Origin`, if sent, must be one of `allowed_origins` (403 otherwise). Plain
/// routes refuse any `Origin` (403), as real Letta's.
pub(super) fn admit<B>(request: &Request<B>, config: &Config) -> Result<Option<HeaderValue>, Refusal> {
    let origin = request.headers().get(header::ORIGIN);
    let Some(auth) = config.auth.as_ref() else {
        check_host(request)?;
        // docs/protocol.md §1.4, §1.5: without authentication, nothing a browser sends is served.
        if origin.is_some() {
            return Err(Refusal::new(StatusCode::FORBIDDEN, ""));
        }
        return Ok(None);
    };
    let unauthorized = |refused: Refused| {
        Refusal::new(StatusCode::UNAUTHORIZED, refused.reason()).with(header::WWW_AUTHENTICATE, "Bearer")
    };
    let authorization = request.headers().get_all(header::AUTHORIZATION).iter();
    if !wants_websocket(request) {
        if origin.is_some() {
            return Err(Refusal::new(StatusCode::FORBIDDEN, ""));
        }
        let path = request.uri().path();
        // Without --openai-api, `/v1/…` is a 404 like any unknown path, token or not.
        let api = config.openai_api && crate::openai_api::serves(path);
        if path != "/app-server-info" && path != "/metrics" && !api {
            return Ok(None);
        }
        return auth
            .check(authorization.map(HeaderValue::as_bytes))
            .map(|()| None)
            .map_err(unauthorized);
    }
    let mut offered = request
        .headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|value| value.starts_with(BEARER_SUBPROTOCOL_PREFIX));
    let Some(subprotocol) = offered.next() else {
        return auth
            .check(authorization.map(HeaderValue::as_bytes))
            .map(|()| None)
            .map_err(unauthorized);
    };
    // Two tokens, or a token both ways: ambiguous credentials.
    if offered.next().is_some() || request.headers().contains_key(header::AUTHORIZATION) {
        return Err(unauthorized(Refused::Malformed));
    }
    let allowed = |origin: &HeaderValue| {
        let origin = origin.to_str().ok().and_then(|origin| normalize_origin(origin).ok());
        origin.is_some_and(|origin| config.allowed_origins.contains(&origin))
    };
    if origin.is_some_and(|origin| !allowed(origin)) {
        return Err(Refusal::new(
            StatusCode::FORBIDDEN,
            "this page's origin is not allowed: start the server with --allow-origin <origin>\n",
        ));
    }
    let token = &subprotocol[BEARER_SUBPROTOCOL_PREFIX.len()..];
    if token.is_empty() {
        return Err(unauthorized(Refused::Malformed));
    }
    auth.check_token(token).map_err(unauthorized)?;
    HeaderValue::from_str(subprotocol)
        .map(Some)
        .map_err(|_| unauthorized(Refused::Malformed))
}

/// The guard against DNS rebinding, while no authentication is configured (with it, a rebound
/// page could not authenticate, so remote clients may name any host).
///
/// A web page that points its own domain name at 127.0.0.1 still names that domain in `Host`,
/// so only requests naming a loopback host are served: `localhost`, an IPv4 address in
/// 127.0.0.0/8 or the IPv6 loopback address (`[::1]`), each with or without a port. Other
/// names — `*.localhost` included, which some resolvers send to DNS — get 403. A missing Host
/// on HTTP/1.1, more than one, or one that is not `host[:port]` gets 400 (RFC 9112 §3.2). An
/// absolute request target must name a loopback host too.
fn check_host<B>(request: &Request<B>) -> Result<(), Refusal> {
    let mut hosts = request.headers().get_all(header::HOST).iter();
    let host = hosts.next();
    if hosts.next().is_some() {
        return Err(Refusal::new(StatusCode::BAD_REQUEST, "more than one Host header\n"));
    }
    if host.is_none() && request.version() == Version::HTTP_11 {
        return Err(Refusal::new(StatusCode::BAD_REQUEST, "missing Host header\n"));
    }
    let named = host
        .map(|host| host.to_str().unwrap_or_default())
        .into_iter()
        .chain(request.uri().authority().map(|authority| authority.as_str()));
    for authority in named {
        match names_loopback(authority) {
            None => return Err(Refusal::new(StatusCode::BAD_REQUEST, "invalid Host header\n")),
            Some(false) => {
                return Err(Refusal::new(
                    StatusCode::FORBIDDEN,
                    "Host must name a loopback address (localhost, 127.0.0.1 or [::1]) while no authentication is configured\n",
                ));
            }
            Some(true) => {}
        }
    }
    Ok(())
}

/// Whether `authority` (`host[:port]`) names a loopback host; `None` when it is not of that form.
fn names_loopback(authority: &str) -> Option<bool> {
    let (host, port) = match authority.strip_prefix('[') {
        Some(bracketed) => {
            let (address, rest) = bracketed.split_once(']')?;
            let port = match rest {
                "" => None,
                _ => Some(rest.strip_prefix(':')?),
            };
            (address, port)
        }
        None => match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    let valid_port = |port: &str| port.bytes().all(|b| b.is_ascii_digit()) && port.parse::<u16>().is_ok();
    if host.is_empty() || port.is_some_and(|port| !valid_port(port)) {
        return None;
    }
    Some(match authority.starts_with('[') {
        true => host.parse::<Ipv6Addr>().ok()?.to_canonical().is_loopback(),
        false => host.eq_ignore_ascii_case("localhost") || host.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback()),
    })
}

/// Whether the request opens a websocket (`Upgrade: websocket`, or a `Sec-WebSocket-Key`): it is
/// then held to the handshake's rules instead of being served as a plain request.
pub(super) fn wants_websocket<B>(request: &Request<B>) -> bool {
    has_token(request.headers(), &header::UPGRADE, "websocket")
        || request.headers().contains_key(header::SEC_WEBSOCKET_KEY)
}

/// A plain request (docs/protocol.md §1.4); `GET /metrics` scrapes `sessions`' metrics.
pub(super) fn plain_route(path: &str, sessions: &Sessions) -> Response<Body> {
    match path {
        "/healthz" | "/readyz" => plain(StatusCode::OK, "ok\n"),
        "/metrics" => {
            let mut response = Response::new(Full::new(Bytes::from(sessions.metrics())));
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(METRICS_CONTENT_TYPE));
            response
        }
        "/app-server-info" => {
            let info = letta_app_server_protocol::ServerFrame::from(info::app_server_info("http-info".into()));
            let mut response = Response::new(Full::new(Bytes::from(serde_json::to_vec(&info).unwrap_or_default())));
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            response
        }
        _ => Refusal::new(StatusCode::NOT_FOUND, "").response(),
    }
}

/// Checks a websocket opening handshake (RFC 6455 §4.2.1, §4.4); returns the
/// `Sec-WebSocket-Accept` value of the 101 response.
pub(super) fn check_handshake<B>(request: &Request<B>) -> Result<String, Refusal> {
    if request.method() != Method::GET {
        return Err(
            Refusal::new(StatusCode::METHOD_NOT_ALLOWED, "a websocket opens with GET\n").with(header::ALLOW, "GET"),
        );
    }
    if request.version() != Version::HTTP_11 {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "a websocket opens with an HTTP/1.1 request\n",
        ));
    }
    let headers = request.headers();
    if !has_token(headers, &header::UPGRADE, "websocket") {
        return Err(Refusal::new(StatusCode::BAD_REQUEST, "missing `Upgrade: websocket`\n"));
    }
    if !has_token(headers, &header::CONNECTION, "upgrade") {
        return Err(Refusal::new(StatusCode::BAD_REQUEST, "missing `Connection: Upgrade`\n"));
    }
    let Some(key) = single(headers, &header::SEC_WEBSOCKET_KEY).filter(|key| {
        data_encoding::BASE64
            .decode(key.as_bytes())
            .is_ok_and(|nonce| nonce.len() == 16)
    }) else {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "Sec-WebSocket-Key must be one base64-encoded 16-byte value\n",
        ));
    };
    match single(headers, &header::SEC_WEBSOCKET_VERSION) {
        Some(version) if version.as_bytes() == b"13" => Ok(derive_accept_key(key.as_bytes())),
        Some(_) => Err(
            Refusal::new(StatusCode::UPGRADE_REQUIRED, "unsupported websocket version: use 13\n")
                .with(header::SEC_WEBSOCKET_VERSION, "13"),
        ),
        None => Err(Refusal::new(StatusCode::BAD_REQUEST, "missing Sec-WebSocket-Version\n")),
    }
}

/// The 101 response accepting a websocket handshake, selecting `subprotocol` if any.
pub(super) fn switching_protocols(accept: &str, subprotocol: Option<HeaderValue>) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(accept) = HeaderValue::from_str(accept) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    if let Some(subprotocol) = subprotocol {
        headers.insert(header::SEC_WEBSOCKET_PROTOCOL, subprotocol);
    }
    response
}

/// Whether a comma-separated header lists `token` (ASCII case-insensitive).
fn has_token(headers: &HeaderMap, name: &HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|item| item.trim().eq_ignore_ascii_case(token))
}

/// The value of a header that must appear exactly once.
fn single<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a HeaderValue> {
    let mut values = headers.get_all(name).iter();
    values.next().filter(|_| values.next().is_none())
}

#[cfg(test)]
mod tests {
    use super::names_loopback;

    #[test]
    fn loopback_names() {
        for host in [
            "localhost",
            "LOCALHOST:80",
            "127.0.0.1",
            "127.255.0.9:65535",
            "[::1]",
            "[::1]:1",
            "[::ffff:127.0.0.1]",
        ] {
            assert_eq!(names_loopback(host), Some(true), "{host}");
        }
        for host in [
            "example.com",
            "app.localhost",
            "localhost.",
            "0.0.0.0",
            "10.0.0.1",
            "[::]",
            "[::2]:1",
            "2130706433",
            "0x7f.0.0.1",
            "a@localhost",
        ] {
            assert_eq!(names_loopback(host), Some(false), "{host}");
        }
        for host in [
            "",
            ":80",
            "localhost:",
            "localhost:65536",
            "localhost:+1",
            "localhost:1:2",
            "[::1",
            "[::1]x",
            "[nope]",
            "[]:80",
        ] {
            assert_eq!(names_loopback(host), None, "{host}");
        }
    }
}
