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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CaSource, ClientTlsConfig, ClientTlsOptions, ServerTlsConfig, TlsSession};
    use bytes::Buf;

    #[test]
    fn self_signed_cert_serves_and_verifies_as_its_own_ca() {
        let (cert, key) = generate_self_signed(&["localhost", "127.0.0.1"]).unwrap();
        assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"));
        let scfg = ServerTlsConfig::builder()
            .add_cert_pem(&["localhost"], cert.as_bytes(), key.as_bytes())
            .unwrap()
            .build()
            .unwrap();
        let ccfg = ClientTlsConfig::new(&ClientTlsOptions {
            ca: CaSource::Pem(cert.into_bytes()),
            insecure_skip_verify: false,
        })
        .unwrap();
        let mut s = TlsSession::server(&scfg);
        let mut c = TlsSession::client(&ccfg, "localhost").unwrap();
        for _ in 0..5 {
            let mut b = c.pending_output().split();
            s.process(&mut b).unwrap();
            let mut b = s.pending_output().split();
            c.process(&mut b).unwrap();
            assert!(!b.has_remaining());
        }
        assert!(!c.is_handshaking() && !s.is_handshaking());
        assert_eq!(c.alpn_protocol(), Some(&b"h2"[..]));
    }
}
