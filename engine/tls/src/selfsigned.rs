//! Run-time self-signed certificates for demos and tests (feature `selfsigned`).
//! Must not be used for production listeners: clients cannot verify these without the PEM.

use crate::TlsError;

/// Generate a self-signed certificate for `names` (DNS names or IP addresses).
/// Returns `(cert_pem, key_pem)`; the certificate is its own CA, so clients trust it by loading
/// `cert_pem` as their CA bundle.
pub fn generate_self_signed(names: &[&str]) -> Result<(String, String), TlsError> {
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let ck = rcgen::generate_simple_self_signed(names)
        .map_err(|e| TlsError::Config(format!("self-signed certificate generation failed: {e}")))?;
    Ok((ck.cert.pem(), ck.key_pair.serialize_pem()))
}
