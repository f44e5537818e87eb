//! The inspector ([`Config::inspect`], `--inspect`): one web page at `GET /inspect` that
//! connects to this or any App Server with a token, shows its agents, conversations and
//! runtimes and the live frames, checks every frame against the protocol's schema, and sends
//! any command from a form generated from that schema.
//!
//! Everything the page needs is in the one response: its style, its script, and the schema
//! bundle and command table of [`letta_app_server_protocol::schema`] as a JSON data block, so it
//! works offline and loads nothing from anywhere. A Content-Security-Policy allows exactly that
//! style and script (by their SHA-256) and websocket connections; the page cannot be framed.
//! The page holds no secret: the token comes in the URL's fragment (`#token=…`), which browsers
//! never send, or is typed in.
//!
//! [`Config::inspect`]: crate::Config::inspect

use std::net::{IpAddr, SocketAddr};
use std::sync::OnceLock;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;
use hyper::header::{self, HeaderValue};
use sha2::{Digest, Sha256};

use letta_app_server_protocol::schema;

use super::http::Body;
use crate::auth::normalize_origin;

/// Where the page is served.
pub(super) const PATH: &str = "/inspect";

/// The page's HTML, with the places of the rest marked `{{name}}`.
const TEMPLATE: &str = include_str!("inspector/index.html");
/// The page's style sheet.
const STYLE: &str = include_str!("inspector/inspector.css");
/// The page's script (a module).
const SCRIPT: &str = include_str!("inspector/inspector.js");
/// Where each response puts the server's websocket path, which the connect form starts from.
const WS_PATH_MARK: &str = "{{ws_path}}";

/// The page as every response serves it, before and after the websocket path, and its policy.
struct Page {
    head: String,
    tail: String,
    policy: HeaderValue,
}

/// The page, built on first use: the schema bundle is generated from the protocol crate's
/// types, once per process.
fn page() -> &'static Page {
    static PAGE: OnceLock<Page> = OnceLock::new();
    PAGE.get_or_init(|| {
        let data = serde_json::json!({"schema": schema::bundle(), "meta": schema::meta()});
        // `<` occurs only inside JSON strings, where `\u003c` reads the same: the data block
        // can then never hold a `</script>`.
        let data = data.to_string().replace('<', "\\u003c");
        let parts = [("style", STYLE), ("script", SCRIPT), ("data", data.as_str())];
        let (head, tail) = TEMPLATE
            .split_once(WS_PATH_MARK)
            .expect("the template has a websocket path");
        let policy = format!(
            "default-src 'none'; script-src '{}'; style-src '{}'; connect-src ws: wss:; \
             base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            sha256_source(SCRIPT),
            sha256_source(STYLE)
        );
        Page {
            head: fill(head, &parts),
            tail: fill(tail, &parts),
            policy: HeaderValue::from_str(&policy).expect("hashes are base64"),
        }
    })
}

/// `template` with each `{{name}}` of `parts` replaced by its text, in one pass: what is put in
/// is never searched for marks.
fn fill(template: &str, parts: &[(&str, &str)]) -> String {
    let mut filled = String::with_capacity(template.len() + parts.iter().map(|(_, text)| text.len()).sum::<usize>());
    let mut rest = template;
    while let Some((before, after)) = rest.split_once("{{") {
        filled.push_str(before);
        let part = (after.split_once("}}")).and_then(|(name, after)| {
            parts
                .iter()
                .find(|(mark, _)| *mark == name)
                .map(|(_, text)| (*text, after))
        });
        match part {
            Some((text, after)) => {
                filled.push_str(text);
                rest = after;
            }
            None => {
                filled.push_str("{{");
                rest = after;
            }
        }
    }
    filled.push_str(rest);
    filled
}

/// The CSP source expression allowing an inline element whose content is `text`.
fn sha256_source(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    format!("sha256-{}", base64::engine::general_purpose::STANDARD.encode(digest))
}

/// The response to `GET /inspect` of a server whose websocket path is `ws_path`.
pub(super) fn response(ws_path: &str) -> Response<Body> {
    let page = page();
    let html = [page.head.as_str(), &escape_attribute(ws_path), &page.tail].concat();
    let mut response = Response::new(Full::new(Bytes::from(html)));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CONTENT_SECURITY_POLICY, page.policy.clone());
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `text` as an HTML attribute value.
fn escape_attribute(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// The origins of the inspector's page as browsers reach a server on `addr`: the address
/// itself, and `localhost` and the other loopback literal when it is a loopback or unspecified
/// one (`0.0.0.0`, `::`). Pages reaching it by another name need `--allow-origin`.
pub(crate) fn own_origins(addr: SocketAddr, tls: bool) -> Vec<String> {
    let scheme = if tls { "https" } else { "http" };
    let port = addr.port();
    let ip = addr.ip();
    let mut hosts = Vec::new();
    if ip.is_loopback() || ip.is_unspecified() {
        hosts.extend(["127.0.0.1".to_owned(), "[::1]".to_owned(), "localhost".to_owned()]);
    }
    if !ip.is_unspecified() {
        hosts.push(match ip {
            IpAddr::V4(ip) => ip.to_string(),
            IpAddr::V6(ip) => format!("[{ip}]"),
        });
    }
    let mut origins: Vec<String> = (hosts.iter())
        .filter_map(|host| normalize_origin(&format!("{scheme}://{host}:{port}")).ok())
        .collect();
    origins.sort();
    origins.dedup();
    origins
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_holds_its_parts_and_a_data_block_that_parses() {
        let html = [page().head.as_str(), &page().tail].concat();
        for mark in ["{{style}}", "{{script}}", "{{data}}", WS_PATH_MARK] {
            assert!(!html.contains(mark), "{mark} left in the page");
        }
        assert!(html.contains(STYLE) && html.contains(SCRIPT));
        let start = html
            .find(r#"<script id="data" type="application/json">"#)
            .expect("the data block");
        let rest = &html[start..];
        let body = &rest[rest.find('>').unwrap() + 1..rest.find("</script>").unwrap()];
        let data: serde_json::Value = serde_json::from_str(body).expect("the data block is JSON");
        assert_eq!(data["schema"], schema::bundle());
        assert_eq!(data["meta"], schema::meta());
    }

    #[test]
    fn marks_are_filled_in_once_and_what_is_put_in_is_left_alone() {
        let parts = [("a", "{{b}}"), ("b", "B")];
        assert_eq!(fill("x{{a}}y{{b}}z{{c}}{{", &parts), "x{{b}}yBz{{c}}{{");
    }

    #[test]
    fn the_websocket_path_is_escaped() {
        let response = response("/a\"<b>");
        let body = response.body().clone();
        let html = futures_util::FutureExt::now_or_never(http_body_util::BodyExt::collect(body))
            .expect("a full body is ready")
            .unwrap()
            .to_bytes();
        let html = String::from_utf8(html.to_vec()).unwrap();
        assert!(html.contains(r#"content="/a&quot;&lt;b&gt;""#));
        let policy = response.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(policy.contains(&sha256_source(SCRIPT)) && policy.contains("frame-ancestors 'none'"));
        assert_eq!(escape_attribute("/a\"<b>&'"), "/a&quot;&lt;b&gt;&amp;&#39;");
    }

    #[test]
    fn own_origins_name_the_address_and_loopback_names() {
        let loopback = own_origins("127.0.0.1:4500".parse().unwrap(), false);
        assert_eq!(
            loopback,
            ["http://127.0.0.1:4500", "http://[::1]:4500", "http://localhost:4500"]
        );
        let any = own_origins("0.0.0.0:443".parse().unwrap(), true);
        assert_eq!(any, ["https://127.0.0.1", "https://[::1]", "https://localhost"]);
        let lan = own_origins("[fd00::7]:4500".parse().unwrap(), false);
        assert_eq!(lan, ["http://[fd00::7]:4500"]);
    }
}
