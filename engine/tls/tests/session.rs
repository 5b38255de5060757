//! In-memory handshakes between `TlsSession`s (and raw rustls peers where a misbehaving peer is
//! needed), with certificates generated at test time.

use std::path::PathBuf;
use std::sync::Arc;

use bytes::{Buf, BytesMut};
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use ringedge_tls::{
    CaSource, ClientTlsConfig, ClientTlsOptions, ServerTlsConfig, TlsError, TlsSession,
};

struct Pki {
    ca_pem: String,
    ca: rcgen::Certificate,
    ca_key: KeyPair,
}

impl Pki {
    fn new(cn: &str) -> Pki {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name
            .push(rcgen::DnType::CommonName, cn.to_string());
        let ca_key = KeyPair::generate().unwrap();
        let ca = p.self_signed(&ca_key).unwrap();
        Pki {
            ca_pem: ca.pem(),
            ca,
            ca_key,
        }
    }

    /// A leaf for `names`, returned as (chain PEM, key PEM).
    fn leaf(&self, names: &[&str]) -> (String, String) {
        let p = CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = p.signed_by(&key, &self.ca, &self.ca_key).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

fn tmpfile(name: &str, contents: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ringedge-tls-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, contents).unwrap();
    p
}

fn server_cfg(pki: &Pki, names: &[&str]) -> ServerTlsConfig {
    let (c, k) = pki.leaf(names);
    ServerTlsConfig::builder()
        .add_cert_pem(names, c.as_bytes(), k.as_bytes())
        .unwrap()
        .build()
        .unwrap()
}

fn client_cfg(pki: &Pki) -> ClientTlsConfig {
    ClientTlsConfig::new(&ClientTlsOptions {
        ca: CaSource::Pem(pki.ca_pem.clone().into_bytes()),
        insecure_skip_verify: false,
    })
    .unwrap()
}

/// Move up to `chunk` bytes of pending ciphertext from `from` to `to`, in pieces of `chunk`
/// bytes (so records arrive split). Returns bytes moved and `to`'s result.
fn transfer(from: &mut TlsSession, to: &mut TlsSession, chunk: usize) -> Result<usize, TlsError> {
    let out = from.pending_output();
    let mut moved = 0;
    let mut incoming = BytesMut::new();
    while !out.is_empty() {
        let n = out.len().min(chunk);
        incoming.extend_from_slice(&out[..n]);
        out.advance(n);
        moved += n;
        to.process(&mut incoming)?;
        assert!(incoming.is_empty(), "process must consume all input");
    }
    Ok(moved)
}

/// Run the handshake to completion (or the first error), returning (client result, server
/// result).
fn handshake(
    c: &mut TlsSession,
    s: &mut TlsSession,
) -> (Result<(), TlsError>, Result<(), TlsError>) {
    for _ in 0..20 {
        let a = transfer(c, s, 1 << 20);
        let b = transfer(s, c, 1 << 20);
        match (a, b) {
            (Err(e), _) => {
                // Deliver the server's alert to the client.
                let cr = transfer(s, c, 1 << 20).map(|_| ());
                return (cr, Err(e));
            }
            (_, Err(e)) => {
                let sr = transfer(c, s, 1 << 20).map(|_| ());
                return (Err(e), sr);
            }
            (Ok(x), Ok(y)) => {
                if x == 0 && y == 0 && !c.is_handshaking() && !s.is_handshaking() {
                    return (Ok(()), Ok(()));
                }
            }
        }
    }
    panic!("handshake did not finish");
}

#[test]
fn handshake_negotiates_h2_and_reports_sni() {
    let pki = Pki::new("test ca");
    let scfg = server_cfg(&pki, &["example.test"]);
    let ccfg = client_cfg(&pki);
    let mut s = TlsSession::server(&scfg);
    let mut c = TlsSession::client(&ccfg, "example.test").unwrap();
    let (cr, sr) = handshake(&mut c, &mut s);
    cr.unwrap();
    sr.unwrap();
    assert_eq!(c.alpn_protocol(), Some(&b"h2"[..]));
    assert_eq!(s.alpn_protocol(), Some(&b"h2"[..]));
    assert_eq!(s.sni(), Some("example.test"));
    assert_eq!(c.protocol_version(), Some("TLSv1.3"));

    c.write_plaintext(b"PRI * HTTP/2.0\r\n").unwrap();
    transfer(&mut c, &mut s, 7).unwrap();
    assert_eq!(&s.plaintext()[..], b"PRI * HTTP/2.0\r\n");
}

#[test]
fn server_writes_before_client_hello_are_kept() {
    let pki = Pki::new("ca");
    let scfg = server_cfg(&pki, &["a.test"]);
    let mut s = TlsSession::server(&scfg);
    // The HTTP/2 server preface (SETTINGS) may be queued at accept time.
    s.write_plaintext(b"settings").unwrap();
    let mut c = TlsSession::client(&client_cfg(&pki), "a.test").unwrap();
    let (cr, sr) = handshake(&mut c, &mut s);
    cr.unwrap();
    sr.unwrap();
    assert_eq!(&c.plaintext()[..], b"settings");
}

fn raw_client(pki: &Pki, alpn: Vec<Vec<u8>>) -> rustls::ClientConnection {
    let mut roots = rustls::RootCertStore::empty();
    let mut rd = pki.ca_pem.as_bytes();
    for c in rustls_pemfile::certs(&mut rd) {
        roots.add(c.unwrap()).unwrap();
    }
    let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    cfg.alpn_protocols = alpn;
    rustls::ClientConnection::new(Arc::new(cfg), "a.test".try_into().unwrap()).unwrap()
}

/// Feed a raw rustls client's first flight to a server session; return the server's result
/// and what the raw client makes of the server's answer.
fn raw_client_vs_server(
    mut raw: rustls::ClientConnection,
    s: &mut TlsSession,
) -> (Result<(), TlsError>, Result<(), rustls::Error>) {
    let mut hello = Vec::new();
    raw.write_tls(&mut hello).unwrap();
    let mut incoming = BytesMut::from(&hello[..]);
    let sr = s.process(&mut incoming);
    let answer = s.pending_output().split().freeze();
    let mut rd = &answer[..];
    raw.read_tls(&mut rd).unwrap();
    let cr = raw.process_new_packets().map(|_| ());
    (sr, cr)
}

#[test]
fn client_without_h2_gets_no_application_protocol() {
    let pki = Pki::new("ca");
    let scfg = server_cfg(&pki, &["a.test"]);
    for alpn in [vec![], vec![b"http/1.1".to_vec()]] {
        let mut s = TlsSession::server(&scfg);
        let (sr, cr) = raw_client_vs_server(raw_client(&pki, alpn.clone()), &mut s);
        assert_eq!(sr, Err(TlsError::NoApplicationProtocol), "alpn {alpn:?}");
        assert_eq!(
            cr,
            Err(rustls::Error::AlertReceived(
                rustls::AlertDescription::NoApplicationProtocol
            )),
            "alpn {alpn:?}"
        );
        // The session stays failed.
        assert_eq!(
            s.process(&mut BytesMut::from(&b"x"[..])),
            Err(TlsError::NoApplicationProtocol)
        );
        assert!(s.write_plaintext(b"x").is_err());
    }
    // A client offering h2 among others is accepted with h2.
    let mut s = TlsSession::server(&scfg);
    let (sr, cr) = raw_client_vs_server(
        raw_client(&pki, vec![b"http/1.1".to_vec(), b"h2".to_vec()]),
        &mut s,
    );
    sr.unwrap();
    cr.unwrap();
}

fn raw_origin(pki: &Pki, alpn: Vec<Vec<u8>>) -> Arc<rustls::ServerConfig> {
    let (c, k) = pki.leaf(&["origin.test"]);
    let mut rd = c.as_bytes();
    let chain: Vec<_> = rustls_pemfile::certs(&mut rd).map(Result::unwrap).collect();
    let mut rd = k.as_bytes();
    let key = rustls_pemfile::private_key(&mut rd).unwrap().unwrap();
    let mut cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    cfg.alpn_protocols = alpn;
    Arc::new(cfg)
}

/// Run a client session against a raw rustls server until the client fails or completes.
fn client_vs_raw_origin(
    c: &mut TlsSession,
    origin: Arc<rustls::ServerConfig>,
) -> Result<(), TlsError> {
    let mut srv = rustls::ServerConnection::new(origin).unwrap();
    for _ in 0..10 {
        let out = c.pending_output().split().freeze();
        let mut rd = &out[..];
        while !rd.is_empty() {
            srv.read_tls(&mut rd).unwrap();
        }
        let _ = srv.process_new_packets();
        let mut back = Vec::new();
        while srv.wants_write() {
            srv.write_tls(&mut back).unwrap();
        }
        c.process(&mut BytesMut::from(&back[..]))?;
        if !c.is_handshaking() {
            return Ok(());
        }
    }
    panic!("no outcome")
}

#[test]
fn origin_without_h2_is_named() {
    let pki = Pki::new("ca");
    let ccfg = client_cfg(&pki);
    // Origin with no ALPN at all: handshake completes, then we refuse it.
    let mut c = TlsSession::client(&ccfg, "origin.test").unwrap();
    let e = client_vs_raw_origin(&mut c, raw_origin(&pki, vec![])).unwrap_err();
    assert_eq!(e, TlsError::OriginNoH2 { selected: None });
    assert!(e
        .to_string()
        .contains("origin did not negotiate h2 via ALPN"));
    // Origin that only speaks http/1.1 refuses our h2-only offer with an alert.
    let mut c = TlsSession::client(&ccfg, "origin.test").unwrap();
    let e = client_vs_raw_origin(&mut c, raw_origin(&pki, vec![b"http/1.1".to_vec()])).unwrap_err();
    assert_eq!(e, TlsError::OriginNoH2 { selected: None });
    // A normal h2 origin works.
    let mut c = TlsSession::client(&ccfg, "origin.test").unwrap();
    client_vs_raw_origin(&mut c, raw_origin(&pki, vec![b"h2".to_vec()])).unwrap();
    assert_eq!(c.alpn_protocol(), Some(&b"h2"[..]));
}

#[test]
fn sni_selects_certificate_with_default() {
    let pki = Pki::new("ca");
    let (c1, k1) = pki.leaf(&["one.test"]);
    let (c2, k2) = pki.leaf(&["two.test"]);
    let (c3, k3) = pki.leaf(&["*.wild.test"]);
    let scfg = ServerTlsConfig::builder()
        .add_cert_files(
            &["one.test"],
            &tmpfile("c1.pem", c1.as_bytes()),
            &tmpfile("k1.pem", k1.as_bytes()),
        )
        .unwrap()
        .add_cert_pem(&["two.test"], c2.as_bytes(), k2.as_bytes())
        .unwrap()
        .add_cert_pem(&["*.wild.test"], c3.as_bytes(), k3.as_bytes())
        .unwrap()
        .build()
        .unwrap();
    let ccfg = client_cfg(&pki);
    // The client verifies the certificate against the SNI name, so success proves selection.
    for name in ["one.test", "two.test", "x.wild.test", "TWO.test"] {
        let mut s = TlsSession::server(&scfg);
        let mut c = TlsSession::client(&ccfg, name).unwrap();
        let (cr, sr) = handshake(&mut c, &mut s);
        cr.unwrap_or_else(|e| panic!("{name}: {e}"));
        sr.unwrap();
        assert_eq!(s.sni(), Some(name.to_ascii_lowercase().as_str()));
    }
    // Unknown name gets the default (first) certificate, which the client rejects by name.
    let mut s = TlsSession::server(&scfg);
    let mut c = TlsSession::client(&ccfg, "three.test").unwrap();
    let (cr, _) = handshake(&mut c, &mut s);
    assert!(
        matches!(cr, Err(TlsError::BadCertificate(ref m)) if m.contains("NotValidForName")),
        "{cr:?}"
    );
    // A client sending no SNI (IP address) also gets the default certificate.
    let mut s = TlsSession::server(&scfg);
    let ins = ClientTlsConfig::new(&ClientTlsOptions {
        insecure_skip_verify: true,
        ..Default::default()
    })
    .unwrap();
    let mut c = TlsSession::client(&ins, "127.0.0.1").unwrap();
    let (cr, sr) = handshake(&mut c, &mut s);
    cr.unwrap();
    sr.unwrap();
    assert_eq!(s.sni(), None);
}

#[test]
fn resumption_across_two_server_sessions_sharing_config() {
    let pki = Pki::new("ca");
    let scfg = server_cfg(&pki, &["a.test"]);
    let ccfg = client_cfg(&pki);
    // "Shard 0"
    let mut s1 = TlsSession::server(&scfg);
    let mut c1 = TlsSession::client(&ccfg, "a.test").unwrap();
    let (cr, sr) = handshake(&mut c1, &mut s1);
    cr.unwrap();
    sr.unwrap();
    assert!(!c1.is_resumed());
    // Deliver the tickets.
    transfer(&mut s1, &mut c1, 1 << 20).unwrap();
    // "Shard 1": a different session object sharing the same config (and ticketer).
    let mut s2 = TlsSession::server(&scfg.clone());
    let mut c2 = TlsSession::client(&ccfg, "a.test").unwrap();
    let (cr, sr) = handshake(&mut c2, &mut s2);
    cr.unwrap();
    sr.unwrap();
    assert!(c2.is_resumed(), "client did not resume");
    assert!(s2.is_resumed(), "server did not resume");

    // A separately built config (another ticketer) cannot resume those tickets.
    let other = server_cfg(&pki, &["a.test"]);
    let mut s3 = TlsSession::server(&other);
    let mut c3 = TlsSession::client(&ccfg, "a.test").unwrap();
    let (cr, sr) = handshake(&mut c3, &mut s3);
    cr.unwrap();
    sr.unwrap();
    assert!(!s3.is_resumed());
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[test]
fn large_payload_both_directions_in_pieces() {
    let pki = Pki::new("ca");
    let scfg = server_cfg(&pki, &["a.test"]);
    let mut s = TlsSession::server(&scfg);
    let mut c = TlsSession::client(&client_cfg(&pki), "a.test").unwrap();
    let (cr, sr) = handshake(&mut c, &mut s);
    cr.unwrap();
    sr.unwrap();
    transfer(&mut s, &mut c, 1 << 20).unwrap(); // tickets
    let up = pattern(4 << 20, 1);
    let down = pattern(4 << 20, 7);
    let mut got_up = Vec::new();
    let mut got_down = Vec::new();
    for (i, piece) in up.chunks(100_003).enumerate() {
        // Vectored: a 9-byte "header" and the rest, as the codec will do.
        let (h, p) = piece.split_at(9.min(piece.len()));
        c.write_plaintext_vectored(&[h, p]).unwrap();
        transfer(&mut c, &mut s, 1000 + i * 7).unwrap();
        let pt = s.plaintext().split();
        got_up.extend_from_slice(&pt);
    }
    for piece in down.chunks(65_536) {
        s.write_plaintext(piece).unwrap();
        transfer(&mut s, &mut c, 16_389).unwrap();
        let pt = c.plaintext().split();
        got_down.extend_from_slice(&pt);
    }
    assert_eq!(got_up.len(), up.len());
    assert!(got_up == up, "upstream bytes differ");
    assert!(got_down == down, "downstream bytes differ");
}

#[test]
fn close_notify_is_seen_and_blocks_writes() {
    let pki = Pki::new("ca");
    let scfg = server_cfg(&pki, &["a.test"]);
    let mut s = TlsSession::server(&scfg);
    let mut c = TlsSession::client(&client_cfg(&pki), "a.test").unwrap();
    let (cr, sr) = handshake(&mut c, &mut s);
    cr.unwrap();
    sr.unwrap();
    c.write_plaintext(b"last words").unwrap();
    c.send_close_notify();
    assert_eq!(c.write_plaintext(b"more"), Err(TlsError::Closed));
    assert!(!s.peer_closed());
    transfer(&mut c, &mut s, 1 << 20).unwrap();
    assert!(s.peer_closed());
    assert_eq!(&s.plaintext()[..], b"last words");
    assert!(!c.peer_closed());
}

#[test]
fn client_rejects_unknown_ca_and_accepts_with_ca_file() {
    let pki = Pki::new("real ca");
    let other = Pki::new("other ca");
    let scfg = server_cfg(&pki, &["a.test"]);

    // Trusting another CA: unknown issuer, and the server hears the client's alert.
    let wrong = client_cfg(&other);
    let mut s = TlsSession::server(&scfg);
    let mut c = TlsSession::client(&wrong, "a.test").unwrap();
    let (cr, sr) = handshake(&mut c, &mut s);
    assert_eq!(cr, Err(TlsError::UnknownIssuer));
    assert!(
        matches!(sr, Err(TlsError::PeerAlert(ref a)) if a == "UnknownCA"),
        "{sr:?}"
    );

    // The webpki roots do not know the test CA either.
    let web = ClientTlsConfig::new(&ClientTlsOptions::default()).unwrap();
    let mut s = TlsSession::server(&scfg);
    let mut c = TlsSession::client(&web, "a.test").unwrap();
    assert_eq!(handshake(&mut c, &mut s).0, Err(TlsError::UnknownIssuer));

    // With the CA file it works.
    let ca_path = tmpfile("ca.pem", pki.ca_pem.as_bytes());
    let good = ClientTlsConfig::new(&ClientTlsOptions {
        ca: CaSource::PemFile(ca_path),
        insecure_skip_verify: false,
    })
    .unwrap();
    assert!(!good.is_insecure());
    let mut s = TlsSession::server(&scfg);
    let mut c = TlsSession::client(&good, "a.test").unwrap();
    let (cr, sr) = handshake(&mut c, &mut s);
    cr.unwrap();
    sr.unwrap();
}

#[test]
fn insecure_flag_accepts_unknown_ca_and_is_reported() {
    let pki = Pki::new("ca");
    let scfg = server_cfg(&pki, &["a.test"]);
    let ins = ClientTlsConfig::new(&ClientTlsOptions {
        ca: CaSource::WebPkiRoots,
        insecure_skip_verify: true,
    })
    .unwrap();
    assert!(ins.is_insecure());
    let mut s = TlsSession::server(&scfg);
    let mut c = TlsSession::client(&ins, "wrong-name.test").unwrap();
    let (cr, sr) = handshake(&mut c, &mut s);
    cr.unwrap();
    sr.unwrap();
    assert_eq!(c.alpn_protocol(), Some(&b"h2"[..]));
}

#[test]
fn garbage_from_peer_is_a_corrupt_record() {
    let pki = Pki::new("ca");
    let mut c = TlsSession::client(&client_cfg(&pki), "a.test").unwrap();
    let _ = c.pending_output().split();
    let e = c
        .process(&mut BytesMut::from(
            &b"HTTP/1.1 400 Bad Request\r\n\r\n"[..],
        ))
        .unwrap_err();
    assert!(matches!(e, TlsError::CorruptRecord(_)), "{e:?}");
    let pki2 = Pki::new("ca");
    let mut s = TlsSession::server(&server_cfg(&pki2, &["a.test"]));
    let e = s
        .process(&mut BytesMut::from(
            &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
        ))
        .unwrap_err();
    assert!(matches!(e, TlsError::CorruptRecord(_)), "{e:?}");
}

#[test]
fn config_errors_name_the_file_and_problem() {
    let pki = Pki::new("ca");
    let (c, k) = pki.leaf(&["a.test"]);
    let (_, other_k) = pki.leaf(&["b.test"]);
    let cert = tmpfile("cert.pem", c.as_bytes());
    let key = tmpfile("key.pem", k.as_bytes());
    let missing = PathBuf::from("/nonexistent/cert.pem");

    let e = ServerTlsConfig::builder()
        .add_cert_files(&["a.test"], &missing, &key)
        .unwrap_err();
    assert!(matches!(e, TlsError::CertFile { ref path, .. } if path == &missing));
    assert!(e.to_string().contains("/nonexistent/cert.pem"), "{e}");
    assert!(e.to_string().contains("cannot read"), "{e}");

    // Key file given as certificate file: no CERTIFICATE block.
    let e = ServerTlsConfig::builder()
        .add_cert_files(&["a.test"], &key, &key)
        .unwrap_err();
    assert!(e.to_string().contains("no CERTIFICATE block"), "{e}");

    // Certificate given as key file.
    let e = ServerTlsConfig::builder()
        .add_cert_files(&["a.test"], &cert, &cert)
        .unwrap_err();
    assert!(matches!(e, TlsError::KeyFile { .. }), "{e}");
    assert!(e.to_string().contains("no private key"), "{e}");

    // Mismatched key.
    let wrong_key = tmpfile("wrong-key.pem", other_k.as_bytes());
    let e = ServerTlsConfig::builder()
        .add_cert_files(&["a.test"], &cert, &wrong_key)
        .unwrap_err();
    assert!(e.to_string().contains("does not match"), "{e}");

    let e = ServerTlsConfig::builder().build().unwrap_err();
    assert!(matches!(e, TlsError::Config(_)));

    let e = ClientTlsConfig::new(&ClientTlsOptions {
        ca: CaSource::PemFile(key.clone()),
        insecure_skip_verify: false,
    })
    .unwrap_err();
    assert!(matches!(e, TlsError::CaFile { .. }), "{e}");

    let ccfg = client_cfg(&pki);
    assert!(matches!(
        TlsSession::client(&ccfg, "bad name!"),
        Err(TlsError::InvalidServerName(_))
    ));
}

#[test]
fn tls12_only_client_still_gets_h2() {
    let pki = Pki::new("ca");
    let scfg = server_cfg(&pki, &["a.test"]);
    let mut roots = rustls::RootCertStore::empty();
    let mut rd = pki.ca_pem.as_bytes();
    for c in rustls_pemfile::certs(&mut rd) {
        roots.add(c.unwrap()).unwrap();
    }
    let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS12])
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    let mut raw =
        rustls::ClientConnection::new(Arc::new(cfg), "a.test".try_into().unwrap()).unwrap();
    let mut s = TlsSession::server(&scfg);
    for _ in 0..10 {
        let mut buf = Vec::new();
        while raw.wants_write() {
            raw.write_tls(&mut buf).unwrap();
        }
        s.process(&mut BytesMut::from(&buf[..])).unwrap();
        let out = s.pending_output().split().freeze();
        let mut rd = &out[..];
        while !rd.is_empty() {
            raw.read_tls(&mut rd).unwrap();
        }
        raw.process_new_packets().unwrap();
        if !raw.is_handshaking() && !s.is_handshaking() {
            break;
        }
    }
    assert!(!s.is_handshaking());
    assert_eq!(s.protocol_version(), Some("TLSv1.2"));
    assert_eq!(s.alpn_protocol(), Some(&b"h2"[..]));
}

/// A tiny deterministic generator (xorshift) so the test needs no extra dependency.
fn xorshift(state: &mut u64) -> u64 {
    let mut x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    x
}

#[test]
fn arbitrary_input_never_panics_and_errors_stick() {
    let pki = Pki::new("ca");
    let scfg = server_cfg(&pki, &["a.test"]);
    let ccfg = client_cfg(&pki);
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    // Also a real ClientHello with corrupted bytes, which gets further into the parser.
    let mut hello = TlsSession::client(&ccfg, "a.test").unwrap();
    let hello = hello.pending_output().split().freeze();
    for round in 0..400 {
        let mut input: Vec<u8> = if round % 2 == 0 {
            let len = (xorshift(&mut seed) % 2000) as usize;
            (0..len).map(|_| xorshift(&mut seed) as u8).collect()
        } else {
            let mut h = hello.to_vec();
            for _ in 0..(1 + xorshift(&mut seed) % 4) {
                let i = (xorshift(&mut seed) as usize) % h.len();
                h[i] = xorshift(&mut seed) as u8;
            }
            h
        };
        if round % 3 == 0 {
            // Prefix a valid record header so the body reaches the handshake parser.
            let mut v = vec![
                0x16,
                0x03,
                0x01,
                (input.len() >> 8) as u8,
                input.len() as u8,
            ];
            v.append(&mut input);
            input = v;
        }
        let mut sessions = vec![
            TlsSession::server(&scfg),
            TlsSession::client(&ccfg, "a.test").unwrap(),
        ];
        for s in &mut sessions {
            let mut buf = BytesMut::from(&input[..]);
            let mut first_err = None;
            for piece in input.chunks(97) {
                let mut b = BytesMut::from(piece);
                if let Err(e) = s.process(&mut b) {
                    first_err = Some(e);
                    break;
                }
            }
            if let Some(e) = first_err {
                assert_eq!(s.process(&mut buf).unwrap_err(), e, "errors must stick");
                assert_eq!(s.error(), Some(&e));
            }
        }
    }
}
