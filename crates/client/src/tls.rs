//! TLS for `wss://` URLs: rustls with the `ring` provider, trusting the Mozilla root
//! certificates that webpki-roots compiles in and the CA certificates the caller adds
//! ([`ClientBuilder::ca_pem`](crate::ClientBuilder::ca_pem)).
//!
//! webpki-roots rather than the platform's store (rustls-native-certs): the same roots on every
//! platform the bindings run on, and none missing in a container or on a host without a CA
//! bundle. A server with a certificate of its own (`letta-app-server --tls-cert`, signed by a
//! private CA or self-signed) is reached by adding that CA, which the platform would not trust
//! either.

use std::sync::Arc;

use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::Error;

/// A client configuration trusting the Mozilla roots and every certificate of `ca_pem` (PEM
/// text, possibly empty).
pub(crate) fn client_config(ca_pem: &[u8]) -> Result<Arc<ClientConfig>, Error> {
    let invalid = |reason: String| Error::InvalidTls { reason };
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let added = CertificateDer::pem_slice_iter(ca_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(format!("the CA certificates are not PEM ({e})")))?;
    if added.is_empty() && !ca_pem.trim_ascii().is_empty() {
        return Err(invalid(
            "no PEM certificate (`-----BEGIN CERTIFICATE-----`) among the CA certificates".into(),
        ));
    }
    for certificate in added {
        roots
            .add(certificate)
            .map_err(|e| invalid(format!("a CA certificate cannot be used: {e}")))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}
