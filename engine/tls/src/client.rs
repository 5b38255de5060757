//! Origin-side (client) configuration: ALPN `h2` required, trust from a CA bundle file or the
//! webpki roots, and an explicit `insecure_skip_verify` for lab use.
//!
//! Must not: skip verification silently. [`ClientTlsConfig::is_insecure`] tells the caller to
//! log it loudly (this crate has no logger). Built once per origin and shared by the shards;
//! rustls's client session cache (a mutex) is touched only when an origin connection is
//! opened, never per request.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{aws_lc_rs, verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::pem::{parse_certs, read_file};
use crate::{TlsError, ALPN_H2};

/// Where the origin's CA certificates come from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum CaSource {
    /// The Mozilla root set bundled by `webpki-roots` (default).
    #[default]
    WebPkiRoots,
    /// A PEM bundle file with one or more CA certificates.
    PemFile(PathBuf),
    /// PEM text with one or more CA certificates.
    Pem(Vec<u8>),
}

/// Options for an origin's TLS client config.
#[derive(Debug, Clone, Default)]
pub struct ClientTlsOptions {
    /// Trust anchors. Default: webpki roots.
    pub ca: CaSource,
    /// Accept any certificate (signatures are still checked). Lab use only; the caller must log
    /// a loud warning when [`ClientTlsConfig::is_insecure`] is true. Default `false`.
    pub insecure_skip_verify: bool,
}

/// An origin-side TLS config, built once and shared (cheap `Clone`, an `Arc`).
#[derive(Clone)]
pub struct ClientTlsConfig {
    pub(crate) inner: Arc<rustls::ClientConfig>,
    insecure: bool,
}

impl fmt::Debug for ClientTlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientTlsConfig")
            .field("alpn", &"h2")
            .field("insecure_skip_verify", &self.insecure)
            .finish_non_exhaustive()
    }
}

impl ClientTlsConfig {
    /// Build a client config offering ALPN `h2` only (TLS 1.2 and 1.3).
    pub fn new(opts: &ClientTlsOptions) -> Result<ClientTlsConfig, TlsError> {
        let provider = Arc::new(aws_lc_rs::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| TlsError::Config(e.to_string()))?;
        let mut cfg = if opts.insecure_skip_verify {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerify { provider }))
                .with_no_client_auth()
        } else {
            builder
                .with_root_certificates(load_roots(&opts.ca)?)
                .with_no_client_auth()
        };
        cfg.alpn_protocols = vec![ALPN_H2.to_vec()];
        Ok(ClientTlsConfig {
            inner: Arc::new(cfg),
            insecure: opts.insecure_skip_verify,
        })
    }

    /// True when certificate verification is off: log this loudly at start-up.
    pub fn is_insecure(&self) -> bool {
        self.insecure
    }
}

fn load_roots(ca: &CaSource) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    let (pem, path) = match ca {
        CaSource::WebPkiRoots => {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            return Ok(roots);
        }
        CaSource::PemFile(p) => (
            read_file(p).map_err(|problem| TlsError::CaFile {
                path: p.clone(),
                problem,
            })?,
            Some(p),
        ),
        CaSource::Pem(b) => (b.clone(), None),
    };
    let wrap = |problem: String| match path {
        Some(p) => TlsError::CaFile {
            path: p.clone(),
            problem,
        },
        None => TlsError::Config(format!("CA PEM: {problem}")),
    };
    let certs = parse_certs(&pem).map_err(wrap)?;
    for c in certs {
        roots
            .add(c)
            .map_err(|e| wrap(format!("not a usable CA certificate: {e}")))?;
    }
    Ok(roots)
}

/// Parse an origin's SNI name (DNS name or IP address).
pub(crate) fn server_name(name: &str) -> Result<ServerName<'static>, TlsError> {
    ServerName::try_from(name.to_string())
        .map_err(|_| TlsError::InvalidServerName(name.to_string()))
}

/// Accepts any certificate chain but still checks handshake signatures, so the session is at
/// least bound to the key the origin presented.
#[derive(Debug)]
struct NoVerify {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
