//! Test certificates made at test time with rcgen: one CA and leaf
//! certificates signed by it, written as PEM files into a private temporary
//! directory that is removed when the [`TestPki`] is dropped.
//!
//! Must not: touch any path outside its own temporary directory, or be used
//! for anything but tests (keys are generated quickly, not stored safely).
//! Invariant: every [`LeafCert`] made by a [`TestPki`] chains to its CA.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

static NEXT_DIR: AtomicU64 = AtomicU64::new(0);

/// The rustls crypto provider every harness TLS config uses (aws-lc-rs, as the
/// workspace's rustls is built with it).
pub fn crypto_provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// A test certificate authority and its temporary directory.
pub struct TestPki {
    dir: PathBuf,
    ca_key: KeyPair,
    ca_cert: rcgen::Certificate,
    ca_pem: String,
    ca_path: PathBuf,
}

impl std::fmt::Debug for TestPki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestPki").field("dir", &self.dir).finish()
    }
}

/// A leaf certificate and key signed by a [`TestPki`] CA, as PEM text, DER and files.
#[derive(Clone, Debug)]
pub struct LeafCert {
    /// The names (DNS names or IP addresses) in the subjectAltName.
    pub names: Vec<String>,
    /// Certificate chain in PEM: the leaf only (the CA is the trust anchor).
    pub cert_pem: String,
    /// PKCS#8 private key in PEM.
    pub key_pem: String,
    /// File holding `cert_pem`.
    pub cert_path: PathBuf,
    /// File holding `key_pem`.
    pub key_path: PathBuf,
    cert_der: CertificateDer<'static>,
    key_der: Vec<u8>,
}

impl TestPki {
    /// Makes a fresh CA and a unique temporary directory holding `ca.pem`.
    ///
    /// Panics if key generation or the file system fails (a broken test
    /// environment, not a test outcome).
    pub fn new() -> TestPki {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!(
            "ringedge-e2e-{}-{}-{}",
            std::process::id(),
            NEXT_DIR.fetch_add(1, Ordering::Relaxed),
            nanos
        ));
        std::fs::create_dir_all(&dir).expect("create test PKI directory");

        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "ringedge e2e test CA");
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_key = KeyPair::generate().expect("CA key");
        let ca_cert = params.self_signed(&ca_key).expect("self-sign CA");
        let ca_pem = ca_cert.pem();
        let ca_path = dir.join("ca.pem");
        std::fs::write(&ca_path, &ca_pem).expect("write ca.pem");
        TestPki {
            dir,
            ca_key,
            ca_cert,
            ca_pem,
            ca_path,
        }
    }

    /// The temporary directory (removed on drop).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The CA certificate in PEM.
    pub fn ca_pem(&self) -> &[u8] {
        self.ca_pem.as_bytes()
    }

    /// Path of the CA certificate PEM file.
    pub fn ca_path(&self) -> &Path {
        &self.ca_path
    }

    /// The CA certificate in DER.
    pub fn ca_der(&self) -> CertificateDer<'static> {
        self.ca_cert.der().clone()
    }

    /// Issues a server+client leaf for `names` (DNS names or IP literals, the
    /// first one also the CN) and writes `<first-name>-<n>.{crt,key}.pem`.
    pub fn leaf(&self, names: &[&str]) -> LeafCert {
        assert!(
            !names.is_empty(),
            "a leaf certificate needs at least one name"
        );
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names.clone()).expect("leaf params");
        params
            .distinguished_name
            .push(DnType::CommonName, &names[0]);
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = KeyPair::generate().expect("leaf key");
        let cert = params
            .signed_by(&key, &self.ca_cert, &self.ca_key)
            .expect("sign leaf");
        let stem = format!(
            "{}-{}",
            names[0].replace(|c: char| !c.is_ascii_alphanumeric(), "_"),
            NEXT_DIR.fetch_add(1, Ordering::Relaxed)
        );
        let cert_path = self.dir.join(format!("{stem}.crt.pem"));
        let key_path = self.dir.join(format!("{stem}.key.pem"));
        let cert_pem = cert.pem();
        let key_pem = key.serialize_pem();
        std::fs::write(&cert_path, &cert_pem).expect("write leaf cert");
        std::fs::write(&key_path, &key_pem).expect("write leaf key");
        LeafCert {
            names,
            cert_pem,
            key_pem,
            cert_path,
            key_path,
            cert_der: cert.der().clone(),
            key_der: key.serialize_der(),
        }
    }

    /// A rustls client config trusting only this CA, offering `alpn`.
    pub fn client_config(&self, alpn: &[&[u8]]) -> rustls::ClientConfig {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca_der()).expect("add test CA to roots");
        let mut cfg = rustls::ClientConfig::builder_with_provider(crypto_provider())
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        cfg
    }
}

impl Default for TestPki {
    fn default() -> Self {
        TestPki::new()
    }
}

impl Drop for TestPki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl LeafCert {
    /// The leaf certificate in DER.
    pub fn cert_der(&self) -> CertificateDer<'static> {
        self.cert_der.clone()
    }

    /// The private key in DER (PKCS#8).
    pub fn key_der(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()))
    }

    /// A rustls server config presenting this leaf and offering `alpn`
    /// (e.g. `&[b"h2"]`, or `&[b"http/1.1"]` for the no-h2 origin).
    pub fn server_config(&self, alpn: &[&[u8]]) -> rustls::ServerConfig {
        let mut cfg = rustls::ServerConfig::builder_with_provider(crypto_provider())
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(vec![self.cert_der()], self.key_der())
            .expect("leaf certificate and key match");
        cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        cfg
    }
}
