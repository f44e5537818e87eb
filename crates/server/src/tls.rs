//! TLS on the listening port (`wss://`, `https://`; docs/protocol.md §1.2): a certificate chain
//! and its private key, read from PEM, as a rustls server configuration with the `ring`
//! provider. Real Letta has no TLS (it expects a proxy in front); this is this server's own.

use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// The certificate and key a server presents: a rustls configuration, checked when made.
#[derive(Clone)]
pub struct Tls {
    config: Arc<ServerConfig>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tls(<certificate and key>)")
    }
}

impl Tls {
    /// Reads the PEM files `cert` (the server's certificate first, then any intermediate CA
    /// certificates) and `key` (its private key: PKCS#8, PKCS#1 or SEC1). The error names the
    /// file and what is wrong: unreadable, no certificate or key in it, or a key that is not
    /// the certificate's.
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Self, String> {
        let read = |path: &Path, what: &str| {
            std::fs::read(path).map_err(|e| format!("cannot read the TLS {what} {}: {e}", path.display()))
        };
        let chain = certificates(&read(cert, "certificate")?)
            .map_err(|reason| format!("the TLS certificate {}: {reason}", cert.display()))?;
        let key_der =
            private_key(&read(key, "key")?).map_err(|reason| format!("the TLS key {}: {reason}", key.display()))?;
        Self::new(chain, key_der).map_err(|reason| {
            format!(
                "the TLS key {} does not fit the certificate {}: {reason}",
                key.display(),
                cert.display()
            )
        })
    }

    /// As [`Tls::from_pem_files`], from the PEM text itself.
    pub fn from_pem(cert: &[u8], key: &[u8]) -> Result<Self, String> {
        let chain = certificates(cert).map_err(|reason| format!("the TLS certificate: {reason}"))?;
        let key_der = private_key(key).map_err(|reason| format!("the TLS key: {reason}"))?;
        Self::new(chain, key_der).map_err(|reason| format!("the TLS key does not fit the certificate: {reason}"))
    }

    fn new(chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> Result<Self, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .and_then(|builder| builder.with_no_client_auth().with_single_cert(chain, key))
            .map_err(|e| e.to_string())?;
        // HTTP/1.1 only, as on plain connections: the websocket upgrade is an HTTP/1.1 request.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            config: Arc::new(config),
        })
    }

    /// The rustls configuration the transport accepts connections with.
    pub(crate) fn server_config(&self) -> Arc<ServerConfig> {
        self.config.clone()
    }
}

/// Every `CERTIFICATE` block of a PEM text; at least one.
fn certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let chain = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not PEM ({e})"))?;
    if chain.is_empty() {
        return Err("no PEM certificate (`-----BEGIN CERTIFICATE-----`) in it".into());
    }
    Ok(chain)
}

/// The first private key block of a PEM text.
fn private_key(pem: &[u8]) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| match e {
        rustls_pki_types::pem::Error::NoItemsFound => {
            "no PEM private key (`-----BEGIN PRIVATE KEY-----`, or an RSA or EC one) in it".into()
        }
        other => format!("not PEM ({other})"),
    })
}
