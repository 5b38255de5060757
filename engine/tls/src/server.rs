//! Server-side configuration: certificates from PEM files, SNI selection, TLS 1.2 and 1.3,
//! stateless session tickets shared by all shards, ALPN offering exactly `h2`.
//!
//! A [`ServerTlsConfig`] is built once and `Arc`-shared by every shard; it is only touched at
//! handshake time. Session state lives in tickets (one stateless ticketer for the whole
//! process, so a resuming client may land on any `SO_REUSEPORT` shard); the server-side session
//! cache is disabled so no lock is shared across shards.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rustls::crypto::aws_lc_rs;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, NoServerSessionStorage, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::pem::{parse_certs, parse_key, read_file};
use crate::{TlsError, ALPN_H2};

/// A certificate chain and key with the SNI names it serves.
#[derive(Debug)]
struct NamedCert {
    names: Vec<String>,
    key: Arc<CertifiedKey>,
}

/// Builder for [`ServerTlsConfig`]. The first certificate added is the default, served to
/// clients that send no SNI or an SNI name no certificate lists.
#[derive(Debug, Default)]
pub struct ServerTlsBuilder {
    certs: Vec<NamedCert>,
    tls12: bool,
    tickets: bool,
}

impl ServerTlsBuilder {
    /// Add a certificate chain and key read from PEM files, serving the SNI `names`
    /// (exact host names, or `*.example.com` wildcards matching one label).
    pub fn add_cert_files(
        self,
        names: &[&str],
        cert_chain_pem: &Path,
        key_pem: &Path,
    ) -> Result<Self, TlsError> {
        let cert_bytes = read_file(cert_chain_pem).map_err(|problem| TlsError::CertFile {
            path: cert_chain_pem.to_path_buf(),
            problem,
        })?;
        let key_bytes = read_file(key_pem).map_err(|problem| TlsError::KeyFile {
            path: key_pem.to_path_buf(),
            problem,
        })?;
        let chain = parse_certs(&cert_bytes).map_err(|problem| TlsError::CertFile {
            path: cert_chain_pem.to_path_buf(),
            problem,
        })?;
        let key = parse_key(&key_bytes).map_err(|problem| TlsError::KeyFile {
            path: key_pem.to_path_buf(),
            problem,
        })?;
        self.add_der(names, chain, key)
            .map_err(|problem| TlsError::KeyFile {
                path: key_pem.to_path_buf(),
                problem,
            })
    }

    /// Add a certificate chain and key given as PEM text (e.g. generated at run time).
    pub fn add_cert_pem(
        self,
        names: &[&str],
        cert_chain_pem: &[u8],
        key_pem: &[u8],
    ) -> Result<Self, TlsError> {
        let chain = parse_certs(cert_chain_pem)
            .map_err(|p| TlsError::Config(format!("certificate PEM: {p}")))?;
        let key = parse_key(key_pem).map_err(|p| TlsError::Config(format!("key PEM: {p}")))?;
        self.add_der(names, chain, key)
            .map_err(|p| TlsError::Config(format!("key PEM: {p}")))
    }

    fn add_der(
        mut self,
        names: &[&str],
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<Self, String> {
        let provider = aws_lc_rs::default_provider();
        let signing = provider
            .key_provider
            .load_private_key(key)
            .map_err(|e| format!("unsupported private key: {e}"))?;
        let ck = CertifiedKey::new(chain, signing);
        ck.keys_match()
            .map_err(|e| format!("the key does not match the certificate: {e}"))?;
        let mut lower = Vec::with_capacity(names.len());
        for n in names {
            let n = n.trim().trim_end_matches('.').to_ascii_lowercase();
            if n.is_empty() {
                return Err("empty SNI name".to_string());
            }
            lower.push(n);
        }
        self.certs.push(NamedCert {
            names: lower,
            key: Arc::new(ck),
        });
        Ok(self)
    }

    /// Allow TLS 1.2 as well as 1.3 (default: both allowed).
    pub fn tls12(mut self, enabled: bool) -> Self {
        self.tls12 = enabled;
        self
    }

    /// Issue session tickets (default: on). One stateless ticketer (aws-lc-rs, rotating keys)
    /// is created per built config; share the config across shards to share tickets.
    pub fn session_tickets(mut self, enabled: bool) -> Self {
        self.tickets = enabled;
        self
    }

    /// Build the config. Fails if no certificate was added.
    pub fn build(self) -> Result<ServerTlsConfig, TlsError> {
        if self.certs.is_empty() {
            return Err(TlsError::Config(
                "a TLS listener needs at least one certificate".to_string(),
            ));
        }
        let mut by_name = HashMap::new();
        for (i, c) in self.certs.iter().enumerate() {
            for n in &c.names {
                // First certificate listing a name wins.
                by_name.entry(n.clone()).or_insert(i);
            }
        }
        let resolver = SniResolver {
            certs: self.certs.into_iter().map(|c| c.key).collect(),
            by_name,
        };
        let versions: &[&rustls::SupportedProtocolVersion] = if self.tls12 {
            &[&rustls::version::TLS13, &rustls::version::TLS12]
        } else {
            &[&rustls::version::TLS13]
        };
        let mut cfg =
            rustls::ServerConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
                .with_protocol_versions(versions)
                .map_err(|e| TlsError::Config(e.to_string()))?
                .with_no_client_auth()
                .with_cert_resolver(Arc::new(resolver));
        cfg.alpn_protocols = vec![ALPN_H2.to_vec()];
        // No shared stateful cache across shards: resumption is by stateless tickets only.
        cfg.session_storage = Arc::new(NoServerSessionStorage {});
        if self.tickets {
            cfg.ticketer =
                aws_lc_rs::Ticketer::new().map_err(|e| TlsError::Config(e.to_string()))?;
            cfg.send_tls13_tickets = 2;
        } else {
            cfg.send_tls13_tickets = 0;
        }
        Ok(ServerTlsConfig {
            inner: Arc::new(cfg),
        })
    }
}

/// Server TLS configuration, built once and shared (cheap `Clone`, an `Arc`) by all shards.
#[derive(Clone)]
pub struct ServerTlsConfig {
    pub(crate) inner: Arc<rustls::ServerConfig>,
}

impl fmt::Debug for ServerTlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTlsConfig")
            .field("alpn", &"h2")
            .finish_non_exhaustive()
    }
}

impl ServerTlsConfig {
    /// Start building: TLS 1.2 and 1.3, session tickets on.
    pub fn builder() -> ServerTlsBuilder {
        ServerTlsBuilder {
            certs: Vec::new(),
            tls12: true,
            tickets: true,
        }
    }
}

/// Picks the certificate by SNI: exact name, then one-label wildcard, then the default (first).
#[derive(Debug)]
struct SniResolver {
    certs: Vec<Arc<CertifiedKey>>,
    by_name: HashMap<String, usize>,
}

impl SniResolver {
    fn lookup(&self, sni: Option<&str>) -> Arc<CertifiedKey> {
        if let Some(name) = sni {
            let name = name.to_ascii_lowercase();
            if let Some(&i) = self.by_name.get(&name) {
                return self.certs[i].clone();
            }
            if let Some((_, parent)) = name.split_once('.') {
                if let Some(&i) = self.by_name.get(&format!("*.{parent}")) {
                    return self.certs[i].clone();
                }
            }
        }
        // `build` guarantees at least one certificate.
        self.certs[0].clone()
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.lookup(hello.server_name()))
    }
}
