//! `TlsError`: one error enum for the TLS layer. Each variant names the failure so the proxy can
//! count it and put it in a `grpc-message` (e.g. "origin did not negotiate h2 via ALPN").

use std::fmt;
use std::path::PathBuf;

use rustls::{AlertDescription, CertificateError};

/// An error from TLS configuration or a TLS session.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsError {
    /// Reading or parsing a certificate PEM file failed.
    CertFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// Reading or parsing a private key PEM file failed, or the key does not match the
    /// certificate.
    KeyFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// Reading or parsing a CA bundle PEM file failed.
    CaFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// A configuration is unusable (no certificate, bad SNI name, ...).
    Config(String),
    /// The server name given for an origin is not a valid DNS name or IP address.
    InvalidServerName(String),
    /// Server side: the client did not offer `h2` in ALPN (or offered no ALPN at all); the
    /// handshake was refused with the `no_application_protocol` alert (RFC 7301 §3.2).
    NoApplicationProtocol,
    /// Client side: the origin completed the handshake without selecting `h2` via ALPN.
    OriginNoH2 {
        /// The protocol the origin selected, if any.
        selected: Option<Vec<u8>>,
    },
    /// The peer's certificate chain does not lead to a trusted CA.
    UnknownIssuer,
    /// The peer's certificate is unacceptable (expired, wrong name, malformed, revoked, ...).
    BadCertificate(String),
    /// The peer sent a fatal alert (e.g. `handshake_failure` or `protocol_version` when it
    /// refuses our TLS parameters, `bad_certificate`, `unknown_ca`).
    PeerAlert(String),
    /// The handshake failed for another reason (no common version or cipher suite, peer
    /// misbehaved).
    HandshakeFailed(String),
    /// The peer sent bytes that are not valid TLS records (not TLS at all, corrupt, or failed
    /// decryption). A plaintext server answering a TLS client lands here.
    CorruptRecord(String),
    /// The peer closed the TCP stream without a `close_notify` alert (truncation).
    UnexpectedEof,
    /// Plaintext was queued after `close_notify` was sent.
    Closed,
    /// Any other rustls error.
    Other(String),
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::CertFile { path, problem } => {
                write!(f, "certificate file {}: {problem}", path.display())
            }
            TlsError::KeyFile { path, problem } => {
                write!(f, "private key file {}: {problem}", path.display())
            }
            TlsError::CaFile { path, problem } => {
                write!(f, "CA bundle file {}: {problem}", path.display())
            }
            TlsError::Config(m) => write!(f, "TLS configuration: {m}"),
            TlsError::InvalidServerName(n) => write!(f, "invalid TLS server name {n:?}"),
            TlsError::NoApplicationProtocol => write!(
                f,
                "client did not offer h2 via ALPN (sent no_application_protocol)"
            ),
            TlsError::OriginNoH2 { selected: None } => {
                write!(f, "origin did not negotiate h2 via ALPN (it selected none)")
            }
            TlsError::OriginNoH2 { selected: Some(p) } => write!(
                f,
                "origin did not negotiate h2 via ALPN (it selected {:?})",
                String::from_utf8_lossy(p)
            ),
            TlsError::UnknownIssuer => {
                write!(
                    f,
                    "peer certificate is not signed by a trusted CA (unknown issuer)"
                )
            }
            TlsError::BadCertificate(m) => write!(f, "bad peer certificate: {m}"),
            TlsError::PeerAlert(a) => write!(f, "peer refused TLS: it sent the alert {a}"),
            TlsError::HandshakeFailed(m) => write!(f, "TLS handshake failed: {m}"),
            TlsError::CorruptRecord(m) => write!(f, "corrupt or non-TLS data from peer: {m}"),
            TlsError::UnexpectedEof => {
                write!(f, "peer closed the connection without close_notify")
            }
            TlsError::Closed => write!(f, "TLS session already closed (close_notify sent)"),
            TlsError::Other(m) => write!(f, "TLS error: {m}"),
        }
    }
}

impl std::error::Error for TlsError {}

fn alert_name(a: &AlertDescription) -> String {
    // AlertDescription's Debug is the RFC name in CamelCase (e.g. `NoApplicationProtocol`).
    format!("{a:?}")
}

impl From<rustls::Error> for TlsError {
    fn from(e: rustls::Error) -> Self {
        use rustls::Error as E;
        match e {
            E::NoApplicationProtocol => TlsError::NoApplicationProtocol,
            E::InvalidCertificate(CertificateError::UnknownIssuer) => TlsError::UnknownIssuer,
            E::InvalidCertificate(c) => TlsError::BadCertificate(format!("{c:?}")),
            E::AlertReceived(a) => TlsError::PeerAlert(alert_name(&a)),
            E::InvalidMessage(m) => TlsError::CorruptRecord(format!("{m:?}")),
            E::DecryptError => TlsError::CorruptRecord("record failed decryption".to_string()),
            E::PeerSentOversizedRecord => TlsError::CorruptRecord("oversized record".to_string()),
            E::PeerIncompatible(p) => {
                TlsError::HandshakeFailed(format!("peer incompatible: {p:?}"))
            }
            E::PeerMisbehaved(p) => TlsError::HandshakeFailed(format!("peer misbehaved: {p:?}")),
            E::InappropriateMessage { .. } | E::InappropriateHandshakeMessage { .. } => {
                TlsError::HandshakeFailed(e.to_string())
            }
            E::HandshakeNotComplete => TlsError::HandshakeFailed(e.to_string()),
            other => TlsError::Other(other.to_string()),
        }
    }
}
