//! Websocket authentication (docs/protocol.md §1.6), as real Letta's `--ws-auth`: every upgrade
//! and `GET /app-server-info` must carry `Authorization: Bearer <token>`, either a capability
//! token, whose SHA-256 digest is compared in constant time with the configured one (the token
//! itself is never kept), or a JWT signed with HS256 by a shared secret, whose claims are checked
//! against the clock and the configured issuer and audience.
//!
//! The JWT is read here rather than by a JWT library: its compact form is three base64url
//! segments and two JSON objects, and real Letta's rules (`alg` exactly `HS256`, `exp` a required
//! integer, each failure its own 401 reason) are what clients rely on; the cryptography — HMAC-
//! SHA-256 and its constant-time comparison — is the `hmac` and `sha2` crates'.

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// How a client proves it may connect.
#[derive(Clone)]
pub enum Auth {
    /// A capability token, kept as its SHA-256 digest.
    CapabilityToken {
        /// SHA-256 of the token.
        digest: [u8; 32],
    },
    /// A JWT signed with HS256.
    SignedBearer(SignedBearer),
}

/// What a signed bearer token is checked against.
#[derive(Clone)]
pub struct SignedBearer {
    /// The shared secret (at least [`MIN_SECRET_BYTES`]).
    pub secret: Vec<u8>,
    /// The `iss` a token must name, if any.
    pub issuer: Option<String>,
    /// The `aud` a token must name (or list), if any.
    pub audience: Option<String>,
    /// Seconds of clock difference tolerated on `exp` and `nbf`.
    pub max_clock_skew: u64,
}

/// The shortest shared secret real Letta accepts.
pub const MIN_SECRET_BYTES: usize = 32;

/// The clock skew tolerated when none is configured (real Letta's).
pub const DEFAULT_MAX_CLOCK_SKEW: u64 = 30;

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::CapabilityToken { .. } => f.write_str("CapabilityToken(<digest>)"),
            Self::SignedBearer(bearer) => f
                .debug_struct("SignedBearer")
                .field("issuer", &bearer.issuer)
                .field("audience", &bearer.audience)
                .field("max_clock_skew", &bearer.max_clock_skew)
                .finish_non_exhaustive(),
        }
    }
}

/// Why a request was not authenticated: the 401 reasons of real Letta.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// No `Authorization` header.
    Missing,
    /// More than one, not `Bearer`, or no token after the scheme.
    Malformed,
    /// A token that is not the configured one.
    WrongToken,
    /// A JWT that does not parse, is not HS256 or whose signature does not match.
    InvalidJwt,
    /// A JWT past its `exp`.
    Expired,
    /// A JWT before its `nbf`.
    NotYetValid,
    /// A JWT of another issuer.
    IssuerMismatch,
    /// A JWT for another audience.
    AudienceMismatch,
}

impl Refused {
    /// The 401 body, as real Letta words it.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Missing => "missing websocket bearer token",
            Self::Malformed => "invalid authorization header",
            Self::WrongToken => "invalid websocket bearer token",
            Self::InvalidJwt => "invalid websocket jwt",
            Self::Expired => "expired websocket jwt",
            Self::NotYetValid => "websocket jwt is not valid yet",
            Self::IssuerMismatch => "websocket jwt issuer mismatch",
            Self::AudienceMismatch => "websocket jwt audience mismatch",
        }
    }
}

impl Auth {
    /// A capability token given as itself (a token file's content, trimmed).
    pub fn capability_token(token: &str) -> Result<Self, String> {
        let token = token.trim();
        if token.is_empty() {
            return Err("the websocket capability token is empty".into());
        }
        Ok(Self::CapabilityToken {
            digest: Sha256::digest(token.as_bytes()).into(),
        })
    }

    /// A capability token given as the hex of its SHA-256 digest (`--ws-token-sha256`).
    pub fn capability_token_sha256(hex: &str) -> Result<Self, String> {
        let digest = data_encoding::HEXLOWER_PERMISSIVE
            .decode(hex.trim().as_bytes())
            .ok()
            .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
            .ok_or("--ws-token-sha256 must be a 64-character hex SHA-256 digest")?;
        Ok(Self::CapabilityToken { digest })
    }

    /// Checks the `Authorization` headers of a request: exactly one, scheme `Bearer` (any case),
    /// the token after it (trimmed, not empty), and that token the configured one.
    pub fn check<'a>(&self, mut headers: impl Iterator<Item = &'a [u8]>) -> Result<(), Refused> {
        let header = headers.next().ok_or(Refused::Missing)?;
        if headers.next().is_some() {
            return Err(Refused::Malformed);
        }
        let header = std::str::from_utf8(header).map_err(|_| Refused::Malformed)?;
        let (scheme, token) = header.trim().split_once(' ').ok_or(Refused::Malformed)?;
        let token = token.trim();
        if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
            return Err(Refused::Malformed);
        }
        self.check_token(token)
    }

    /// Checks a presented token (from the header, or from the bearer subprotocol).
    pub fn check_token(&self, token: &str) -> Result<(), Refused> {
        match self {
            Self::CapabilityToken { digest } => {
                let presented: [u8; 32] = Sha256::digest(token.as_bytes()).into();
                match bool::from(presented.ct_eq(digest)) {
                    true => Ok(()),
                    false => Err(Refused::WrongToken),
                }
            }
            Self::SignedBearer(bearer) => bearer.verify(token, unix_now()),
        }
    }
}

impl SignedBearer {
    /// Checks a compact JWT at time `now` (Unix seconds), as real Letta does.
    pub fn verify(&self, token: &str, now: i64) -> Result<(), Refused> {
        let mut parts = token.split('.');
        let (Some(header), Some(claims), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Refused::InvalidJwt);
        };
        if [header, claims, signature].iter().any(|part| part.is_empty()) {
            return Err(Refused::InvalidJwt);
        }
        let json = |part: &str| -> Result<Value, Refused> {
            serde_json::from_slice(&base64url(part)?).map_err(|_| Refused::InvalidJwt)
        };
        let (header_json, claims_json, signature) = (json(header)?, json(claims)?, base64url(signature)?);
        if header_json.get("alg").and_then(Value::as_str) != Some("HS256") {
            return Err(Refused::InvalidJwt);
        }
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret).map_err(|_| Refused::InvalidJwt)?;
        mac.update(format!("{header}.{claims}").as_bytes());
        mac.verify_slice(&signature).map_err(|_| Refused::InvalidJwt)?;
        let claims = Claims::read(&claims_json).ok_or(Refused::InvalidJwt)?;
        let skew = i64::try_from(self.max_clock_skew).unwrap_or(i64::MAX);
        if now > claims.exp.saturating_add(skew) {
            return Err(Refused::Expired);
        }
        if claims.nbf.is_some_and(|nbf| now < nbf.saturating_sub(skew)) {
            return Err(Refused::NotYetValid);
        }
        if self
            .issuer
            .as_ref()
            .is_some_and(|issuer| claims.iss != Some(issuer.as_str()))
        {
            return Err(Refused::IssuerMismatch);
        }
        if let Some(audience) = &self.audience
            && !claims.aud.iter().any(|aud| aud == audience)
        {
            return Err(Refused::AudienceMismatch);
        }
        Ok(())
    }
}

/// The claims real Letta reads: `exp` (required) and `nbf` integers, `iss` a string, `aud` a
/// string or a list of strings; `None` when one has another type.
struct Claims<'a> {
    exp: i64,
    nbf: Option<i64>,
    iss: Option<&'a str>,
    aud: Vec<&'a str>,
}

impl<'a> Claims<'a> {
    fn read(claims: &'a Value) -> Option<Self> {
        let claims = claims.as_object()?;
        let present = |key: &str| claims.get(key);
        let nbf = match present("nbf") {
            None => None,
            Some(nbf) => Some(safe_integer(nbf)?),
        };
        let iss = match present("iss") {
            None => None,
            Some(iss) => Some(iss.as_str()?),
        };
        let aud = match present("aud") {
            None => Vec::new(),
            Some(Value::String(aud)) => vec![aud.as_str()],
            Some(Value::Array(list)) => list.iter().map(Value::as_str).collect::<Option<_>>()?,
            Some(_) => return None,
        };
        Some(Self {
            exp: safe_integer(present("exp")?)?,
            nbf,
            iss,
            aud,
        })
    }
}

/// A JSON number that is an integer JavaScript represents exactly (`Number.isSafeInteger`).
fn safe_integer(value: &Value) -> Option<i64> {
    const MAX_SAFE: i64 = (1 << 53) - 1;
    let integer = match value {
        Value::Number(number) => number.as_i64().or_else(|| {
            let float = number.as_f64()?;
            (float.fract() == 0.0 && float.abs() <= MAX_SAFE as f64).then_some(float as i64)
        })?,
        _ => return None,
    };
    (integer.abs() <= MAX_SAFE).then_some(integer)
}

/// Base64url without padding, any other character refused (trailing bits tolerated, as Node's
/// decoder tolerates them).
fn base64url(segment: &str) -> Result<Vec<u8>, Refused> {
    static ENCODING: std::sync::OnceLock<Option<data_encoding::Encoding>> = std::sync::OnceLock::new();
    let encoding = ENCODING.get_or_init(|| {
        let mut specification = data_encoding::BASE64URL_NOPAD.specification();
        specification.check_trailing_bits = false;
        specification.encoding().ok()
    });
    (encoding.as_ref())
        .and_then(|encoding| encoding.decode(segment.as_bytes()).ok())
        .ok_or(Refused::InvalidJwt)
}

/// An origin given to `--allow-origin` (or a request's `Origin`) in the form browsers send it:
/// `scheme://host[:port]` in lower case, without the scheme's default port or a trailing `/`.
/// `null` (sandboxed and `file:` pages: any of them) and anything with a path are refused.
pub fn normalize_origin(origin: &str) -> Result<String, String> {
    let invalid = || format!("invalid origin {origin:?}: expected scheme://host[:port], as a browser sends it");
    let trimmed = origin.trim();
    if trimmed.eq_ignore_ascii_case("null") {
        return Err("origin \"null\" cannot be allowed: it is the origin of every sandboxed or file: page".into());
    }
    let lower = trimmed.strip_suffix('/').unwrap_or(trimmed).to_ascii_lowercase();
    let (scheme, authority) = lower.split_once("://").ok_or_else(invalid)?;
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    let authority_ok = !authority.is_empty()
        && authority
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._:[]".contains(c));
    if !scheme_ok || !authority_ok || authority.starts_with(':') {
        return Err(invalid());
    }
    let authority = match (scheme, authority.rsplit_once(':')) {
        ("http", Some((host, "80"))) | ("https", Some((host, "443"))) if !host.ends_with(':') => host,
        _ => authority,
    };
    Ok(format!("{scheme}://{authority}"))
}

/// Seconds since the Unix epoch.
fn unix_now() -> i64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    now.map_or(0, |since| i64::try_from(since.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::{Auth, Refused};

    fn check(auth: &Auth, headers: &[&str]) -> Result<(), Refused> {
        auth.check(headers.iter().map(|h| h.as_bytes()))
    }

    #[test]
    fn origins_are_compared_in_the_form_browsers_send() {
        use super::normalize_origin;
        for (given, normal) in [
            ("http://localhost:5173", "http://localhost:5173"),
            ("HTTPS://App.Example/", "https://app.example"),
            ("https://app.example:443", "https://app.example"),
            ("http://127.0.0.1:80", "http://127.0.0.1"),
            ("http://[::1]:8080", "http://[::1]:8080"),
            ("chrome-extension://abcdef", "chrome-extension://abcdef"),
        ] {
            assert_eq!(normalize_origin(given).as_deref(), Ok(normal), "{given}");
        }
        for refused in [
            "null",
            "*",
            "localhost:5173",
            "http://",
            "http://a.example/path",
            "http://a b",
            "http://:80",
        ] {
            assert!(normalize_origin(refused).is_err(), "{refused}");
        }
    }

    #[test]
    fn the_token_is_checked_as_real_letta_checks_it() {
        let auth = Auth::capability_token("  s3cret \n").expect("a token");
        assert_eq!(check(&auth, &["Bearer s3cret"]), Ok(()));
        assert_eq!(
            check(&auth, &["bearer   s3cret  "]),
            Ok(()),
            "scheme in any case, token trimmed"
        );
        assert_eq!(check(&auth, &[]), Err(Refused::Missing));
        assert_eq!(
            check(&auth, &["Bearer s3cret", "Bearer s3cret"]),
            Err(Refused::Malformed)
        );
        assert_eq!(check(&auth, &["Basic s3cret"]), Err(Refused::Malformed));
        assert_eq!(check(&auth, &["Bearer"]), Err(Refused::Malformed));
        assert_eq!(check(&auth, &["Bearer  "]), Err(Refused::Malformed));
        assert_eq!(check(&auth, &["Bearer other"]), Err(Refused::WrongToken));
        // SHA-256 of "s3cret", in either case.
        let by_digest =
            Auth::capability_token_sha256("1EC1C26B50D5D3C58D9583181AF8076655FE00756BF7285940BA3670F99FCBA0")
                .expect("a digest");
        assert_eq!(check(&by_digest, &["Bearer s3cret"]), Ok(()));
        assert_eq!(check(&by_digest, &["Bearer s3cret2"]), Err(Refused::WrongToken));
        assert!(Auth::capability_token_sha256("abc").is_err());
        assert!(Auth::capability_token(" \n").is_err());
    }

    /// A JWT of `header` and `claims`, signed with `secret`.
    fn jwt(header: &serde_json::Value, claims: &serde_json::Value, secret: &[u8]) -> String {
        use hmac::Mac;
        let encode = |value: &serde_json::Value| data_encoding::BASE64URL_NOPAD.encode(value.to_string().as_bytes());
        let signed = format!("{}.{}", encode(header), encode(claims));
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).expect("any key length");
        mac.update(signed.as_bytes());
        format!(
            "{signed}.{}",
            data_encoding::BASE64URL_NOPAD.encode(&mac.finalize().into_bytes())
        )
    }

    #[test]
    fn signed_bearer_tokens_are_checked_as_real_letta_checks_them() {
        use serde_json::json;

        use super::SignedBearer;
        let secret = b"0123456789abcdef0123456789abcdef".to_vec();
        let bearer = SignedBearer {
            secret: secret.clone(),
            issuer: Some("desktop".into()),
            audience: Some("app-server".into()),
            max_clock_skew: 30,
        };
        let now = 1_800_000_000;
        let hs256 = json!({"alg": "HS256", "typ": "JWT", "kid": "ignored"});
        let good = json!({"exp": now + 60, "iss": "desktop", "aud": ["other", "app-server"]});
        let verify = |token: &str| bearer.verify(token, now);
        assert_eq!(verify(&jwt(&hs256, &good, &secret)), Ok(()));
        let with = |claims: serde_json::Value| jwt(&hs256, &claims, &secret);
        for (token, refused) in [
            (
                jwt(&hs256, &good, b"another secret of thirty-two bytes"),
                Refused::InvalidJwt,
            ),
            (jwt(&json!({"alg": "HS512"}), &good, &secret), Refused::InvalidJwt),
            (jwt(&json!({"alg": "none"}), &good, &secret), Refused::InvalidJwt),
            (
                with(json!({"iss": "desktop", "aud": "app-server"})),
                Refused::InvalidJwt,
            ),
            (
                with(json!({"exp": "soon", "iss": "desktop", "aud": "app-server"})),
                Refused::InvalidJwt,
            ),
            (
                with(json!({"exp": now + 60, "iss": 7, "aud": "app-server"})),
                Refused::InvalidJwt,
            ),
            (
                with(json!({"exp": now - 31, "iss": "desktop", "aud": "app-server"})),
                Refused::Expired,
            ),
            (
                with(json!({"exp": now + 60, "nbf": now + 31, "iss": "desktop", "aud": "app-server"})),
                Refused::NotYetValid,
            ),
            (
                with(json!({"exp": now + 60, "iss": "cli", "aud": "app-server"})),
                Refused::IssuerMismatch,
            ),
            (
                with(json!({"exp": now + 60, "aud": "app-server"})),
                Refused::IssuerMismatch,
            ),
            (
                with(json!({"exp": now + 60, "iss": "desktop", "aud": ["other"]})),
                Refused::AudienceMismatch,
            ),
            (
                with(json!({"exp": now + 60, "iss": "desktop"})),
                Refused::AudienceMismatch,
            ),
            ("a.b".to_owned(), Refused::InvalidJwt),
            ("a.b.c.d".to_owned(), Refused::InvalidJwt),
            ("..".to_owned(), Refused::InvalidJwt),
            (format!("{}=", with(good.clone())), Refused::InvalidJwt),
        ] {
            assert_eq!(verify(&token), Err(refused), "{token}");
        }
        // Within the skew, and a whole float `exp`, are accepted as real Letta accepts them.
        assert_eq!(
            verify(&with(json!({"exp": now - 30, "iss": "desktop", "aud": "app-server"}))),
            Ok(())
        );
        assert_eq!(
            verify(&with(
                json!({"exp": 1.8e9 + 60.0, "iss": "desktop", "aud": "app-server"})
            )),
            Ok(())
        );
    }
}
