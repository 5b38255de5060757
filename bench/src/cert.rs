//! `ringedge-bench cert`: writes a self-signed certificate (`cert.pem`) and its private key
//! (`key.pem`, mode 0600) for demos and tests, so nothing beyond Rust is needed (no openssl).
//!
//! What it must not do: produce anything meant for production (the certificate is its own CA;
//! clients trust it only by loading `cert.pem` as their CA bundle, or with `--insecure`).

use std::fmt;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Names used when none are given.
pub const DEFAULT_NAMES: &str = "localhost,127.0.0.1,::1";

/// Why the certificate could not be written.
#[derive(Debug)]
pub enum CertError {
    /// No usable name was given.
    NoNames,
    /// Generation failed.
    Generate(ringedge_tls::TlsError),
    /// Writing a file failed.
    Write(PathBuf, std::io::Error),
}

impl fmt::Display for CertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CertError::NoNames => f.write_str("--names: at least one DNS name or IP is needed"),
            CertError::Generate(e) => write!(f, "generating the certificate: {e}"),
            CertError::Write(p, e) => write!(f, "writing {}: {e}", p.display()),
        }
    }
}

impl std::error::Error for CertError {}

/// Splits a comma-separated name list, dropping empty entries and surrounding spaces.
pub fn split_names(names: &str) -> Vec<&str> {
    names
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .collect()
}

fn write_file(path: &Path, data: &[u8], mode: u32) -> Result<(), CertError> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(|e| CertError::Write(path.to_path_buf(), e))?;
    f.write_all(data)
        .map_err(|e| CertError::Write(path.to_path_buf(), e))
}

/// Generates a self-signed certificate for `names` and writes `dir/cert.pem` and `dir/key.pem`
/// (creating `dir`). Returns both paths.
pub fn write_self_signed(dir: &Path, names: &[&str]) -> Result<(PathBuf, PathBuf), CertError> {
    if names.is_empty() {
        return Err(CertError::NoNames);
    }
    let (cert, key) = ringedge_tls::generate_self_signed(names).map_err(CertError::Generate)?;
    std::fs::create_dir_all(dir).map_err(|e| CertError::Write(dir.to_path_buf(), e))?;
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    write_file(&cert_path, cert.as_bytes(), 0o644)?;
    write_file(&key_path, key.as_bytes(), 0o600)?;
    Ok((cert_path, key_path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_split() {
        assert_eq!(split_names(" a, b ,,c"), vec!["a", "b", "c"]);
        assert!(split_names(" , ").is_empty());
    }

    #[test]
    fn writes_a_loadable_pair() {
        let dir = std::env::temp_dir().join(format!("ringedge-cert-test-{}", std::process::id()));
        let (c, k) = write_self_signed(&dir, &split_names(DEFAULT_NAMES)).unwrap();
        let cfg = ringedge_tls::ServerTlsConfig::builder()
            .add_cert_files(&["localhost"], &c, &k)
            .and_then(|b| b.build());
        assert!(cfg.is_ok());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&k).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(matches!(
            write_self_signed(&dir, &[]),
            Err(CertError::NoNames)
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
