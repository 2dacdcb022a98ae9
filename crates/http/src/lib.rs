//! mamori's outbound HTTP (the alert outputs that POST, the audit's probe
//! of a REST backup server): one blocking agent per use, with a single
//! deadline for the whole exchange, TLS by rustls with ring and the roots
//! the caller gives, and no redirect followed, since following one would
//! hand a body and an `Authorization` header to wherever it points. Every
//! status is an answer for the caller to read, not an error.
//!
//! Proxies come from the environment (`HTTPS_PROXY`, `NO_PROXY`…), as for
//! any daemon.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
pub use ureq;
use ureq::tls::{Certificate, RootCerts, TlsConfig, TlsProvider};

/// An agent trusting `roots` (none needed for plain HTTP) whose every
/// exchange ends within `timeout`.
pub fn agent(roots: Vec<Certificate<'static>>, timeout: Duration) -> ureq::Agent {
    let tls = TlsConfig::builder()
        .provider(TlsProvider::Rustls)
        .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .root_certs(RootCerts::Specific(Arc::new(roots)))
        .build();
    ureq::Agent::config_builder()
        .tls_config(tls)
        .timeout_global(Some(timeout))
        .max_redirects(0)
        .http_status_as_error(false)
        .user_agent(concat!("mamori/", env!("CARGO_PKG_VERSION")))
        .build()
        .new_agent()
}

/// Certificates to trust (a CA file's, the system's), as [`agent`] takes them.
pub fn roots(certs: &[rustls::pki_types::CertificateDer<'_>]) -> Vec<Certificate<'static>> {
    certs.iter().map(|c| Certificate::from_der(c.as_ref()).to_owned()).collect()
}

/// The `Authorization` header's value for HTTP Basic (RFC 7617).
pub fn basic_auth(user: &[u8], password: &[u8]) -> String {
    let pair = [user, b":", password].concat();
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_auth_is_rfc_7617s_example() {
        assert_eq!(basic_auth(b"Aladdin", b"open sesame"), "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
    }
}
