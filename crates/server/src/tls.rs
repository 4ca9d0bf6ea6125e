//! SIP over TLS: the server certificate and key from PEM files, as a rustls server
//! configuration (ring provider; TLS 1.2 and 1.3; no client certificates).

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;

/// Reads `cert` (the certificate chain, leaf first) and `key` (PKCS#8, PKCS#1 or SEC1
/// private key). The error says which file is wrong and why.
pub(crate) fn server_config(
    cert: &Path,
    key: &Path,
) -> Result<Arc<ServerConfig>, (&'static str, String)> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| {
            (
                "sip.tls_cert",
                format!("cannot read {}: {e}", cert.display()),
            )
        })?
        .collect::<Result<_, _>>()
        .map_err(|e| {
            (
                "sip.tls_cert",
                format!("{}: not a PEM certificate chain: {e}", cert.display()),
            )
        })?;
    if certs.is_empty() {
        return Err((
            "sip.tls_cert",
            format!("{}: no CERTIFICATE block found", cert.display()),
        ));
    }
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        (
            "sip.tls_key",
            format!("{}: no usable PEM private key: {e}", key.display()),
        )
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ("sip.tls_cert", e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, private)
        .map_err(|e| {
            (
                "sip.tls_key",
                format!("the key does not fit the certificate: {e}"),
            )
        })?;
    Ok(Arc::new(config))
}
