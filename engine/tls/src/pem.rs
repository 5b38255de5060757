//! PEM reading helpers. Errors are plain strings; callers wrap them with the file they read.

use std::path::Path;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Read a whole file, naming the OS error.
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read: {e}"))
}

/// Every `CERTIFICATE` block in `pem`, in order; error if there is none or one is malformed.
pub(crate) fn parse_certs(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let mut rd = pem;
    let certs = rustls_pemfile::certs(&mut rd)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("malformed PEM: {e}"))?;
    if certs.is_empty() {
        return Err(
            "no CERTIFICATE block found (expected PEM `-----BEGIN CERTIFICATE-----`)".to_string(),
        );
    }
    Ok(certs)
}

/// The first private key (PKCS#8, PKCS#1 or SEC1) in `pem`.
pub(crate) fn parse_key(pem: &[u8]) -> Result<PrivateKeyDer<'static>, String> {
    let mut rd = pem;
    match rustls_pemfile::private_key(&mut rd) {
        Ok(Some(k)) => Ok(k),
        Ok(None) => Err(
            "no private key found (expected `-----BEGIN PRIVATE KEY-----`, `RSA PRIVATE KEY` or `EC PRIVATE KEY`)"
                .to_string(),
        ),
        Err(e) => Err(format!("malformed PEM: {e}")),
    }
}
