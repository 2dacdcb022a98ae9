//! The certificates a receiver's must chain to, for every output that
//! speaks TLS (syslog, HTTP, SMTP): those in the PEM file `ca_file` names,
//! and only those, or the system's.

use std::path::Path;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

/// Largest CA file read: a bundle of every public CA is about 250 KiB.
const MAX_PEM: u64 = 4 << 20;

pub(crate) fn ca_roots(ca_file: Option<&Path>) -> Result<Vec<CertificateDer<'static>>, String> {
    match ca_file {
        Some(path) => {
            let pem = crate::config::read_regular(path, MAX_PEM)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            // Sections other than certificates (a key kept beside them) are passed over.
            let certs = CertificateDer::pem_slice_iter(&pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("{}: {e}", path.display()))?;
            if certs.is_empty() {
                return Err(format!("{}: no PEM certificate in it", path.display()));
            }
            Ok(certs)
        }
        None => {
            let certs = rustls_native_certs::load_native_certs().certs;
            if certs.is_empty() {
                return Err("no CA certificates on this system (install ca-certificates, or set ca_file)".into());
            }
            Ok(certs)
        }
    }
}
