//! Setup shared by the proxy's integration tests (forwarding, hostile peers, nghttp2 peers):
//! the one-proxy-at-a-time lock, a tokio runtime, free ports, starting an in-process proxy on
//! an ephemeral port, temporary directories with a self-signed certificate, and gRPC message
//! framing. Each test binary uses a part of it.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

/// One proxy at a time within a test binary: each starts pinned shards, and the tests share
/// two CPUs.
static SERIAL: Mutex<()> = Mutex::new(());

/// Takes the lock (a test that panicked while holding it does not poison the others).
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// A two-worker tokio runtime for the `h2` peers.
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts the proxy of `spec` listening on an ephemeral loopback port, whatever the config's
/// `listen` said (the config refuses port 0; `serve::start` resolves it to one port every shard
/// binds). No port is probed, released and rebound, so nothing else on the machine can take it
/// in between. The address is `handle.local_addrs()[0]`.
pub fn start_on_ephemeral_port(mut spec: ringedge::serve::ServerSpec) -> ringedge::ServerHandle {
    spec.listen = vec!["127.0.0.1:0".parse().unwrap()];
    ringedge::serve::start(spec).unwrap_or_else(|e| panic!("the proxy did not start: {e}"))
}

/// A temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A new empty directory named after `tag`, this process and a per-process sequence number
    /// (unique while tests of one binary run in parallel threads).
    pub fn new(tag: &str) -> TempDir {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "ringedge-{tag}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        // A directory left by an earlier process with the same id must not leak its files in.
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A temporary directory holding `cert.pem` and `key.pem`, self-signed for `localhost` (the
/// config requires a certificate even when a test runs the client side in cleartext).
pub struct Pki {
    pub dir: PathBuf,
    _tmp: TempDir,
}

impl Pki {
    /// Makes the directory and the certificate.
    pub fn new(tag: &str) -> Pki {
        let tmp = TempDir::new(tag);
        let (cert, key) = ringedge_tls::generate_self_signed(&["localhost"]).unwrap();
        std::fs::write(tmp.0.join("cert.pem"), cert).unwrap();
        std::fs::write(tmp.0.join("key.pem"), key).unwrap();
        Pki {
            dir: tmp.0.clone(),
            _tmp: tmp,
        }
    }
}

/// One gRPC length-prefixed message (uncompressed).
pub fn grpc_msg(payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0u8];
    v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    v.extend_from_slice(payload);
    v
}

/// An `h2` origin handler that echoes the request body as the response body: HEADERS
/// (`:status 200`, `content-type: application/grpc`, and the request's `x-meta-bin` if it has
/// one), the body sent within the peer's flow-control windows, then trailers `grpc-status: 0`
/// plus `extra_trailers`. Request credit is returned as the body is read.
pub async fn h2_echo(
    req: http::Request<h2::RecvStream>,
    mut respond: h2::server::SendResponse<bytes::Bytes>,
    extra_trailers: &[(&'static str, &'static str)],
) {
    let (parts, mut body) = req.into_parts();
    let mut data = Vec::new();
    while let Some(chunk) = body.data().await {
        let Ok(chunk) = chunk else { return };
        let _ = body.flow_control().release_capacity(chunk.len());
        data.extend_from_slice(&chunk);
    }
    let mut resp = http::Response::builder()
        .status(200)
        .header("content-type", "application/grpc");
    if let Some(v) = parts.headers.get("x-meta-bin") {
        resp = resp.header("x-meta-bin", v.clone());
    }
    let Ok(mut send) = respond.send_response(resp.body(()).unwrap(), false) else {
        return;
    };
    send_all(&mut send, bytes::Bytes::from(data)).await;
    let mut trailers = http::HeaderMap::new();
    trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
    for (name, value) in extra_trailers {
        trailers.insert(*name, http::HeaderValue::from_static(value));
    }
    let _ = send.send_trailers(trailers);
}

/// Sends `data` within the peer's flow-control windows; returns how much was sent before the
/// stream failed (all of it normally).
pub async fn send_all(send: &mut h2::SendStream<bytes::Bytes>, mut data: bytes::Bytes) -> usize {
    let mut sent = 0;
    while !data.is_empty() {
        send.reserve_capacity(data.len());
        let cap = match std::future::poll_fn(|cx| send.poll_capacity(cx)).await {
            Some(Ok(c)) => c,
            _ => return sent,
        };
        let chunk = data.split_to(cap.min(data.len()));
        sent += chunk.len();
        if send.send_data(chunk, false).is_err() {
            return sent;
        }
    }
    sent
}
