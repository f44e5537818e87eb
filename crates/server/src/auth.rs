//! Websocket authentication (docs/protocol.md §1.6), as real Letta's `--ws-auth`: with a
//! capability token, every upgrade and `GET /app-server-info` must carry
//! `Authorization: Bearer <token>`, whose SHA-256 digest is compared in constant time with the
//! configured one. The token itself is never kept.

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
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::CapabilityToken { .. } => f.write_str("CapabilityToken(<digest>)"),
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
}

impl Refused {
    /// The 401 body, as real Letta words it.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Missing => "missing websocket bearer token",
            Self::Malformed => "invalid authorization header",
            Self::WrongToken => "invalid websocket bearer token",
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
        match self {
            Self::CapabilityToken { digest } => {
                let presented: [u8; 32] = Sha256::digest(token.as_bytes()).into();
                match bool::from(presented.ct_eq(digest)) {
                    true => Ok(()),
                    false => Err(Refused::WrongToken),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Auth, Refused};

    fn check(auth: &Auth, headers: &[&str]) -> Result<(), Refused> {
        auth.check(headers.iter().map(|h| h.as_bytes()))
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
}
