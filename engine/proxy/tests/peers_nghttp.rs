//! Independent peers we did not write: nghttp2's `h2load` (load generator) and `nghttp` (client)
//! from Debian's `nghttp2-client`, through a running ringedge to an `h2`-crate gRPC echo origin:
//! in-process with cleartext h2c (prior knowledge) on the client side, and over TLS (ALPN h2)
//! through the quick-mode binary `ringedge proxy`.
//!
//! When the tools are missing the tests skip with a note, except under CI (the `CI` environment
//! variable is set), where they fail: `scripts/test.sh` installs `nghttp2-client`.
//!
//! Every child process runs under a time limit and is killed (by its own handle) past it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use h2::RecvStream;
use http::Request;

mod common;
use common::{free_port, grpc_msg, serial, start_on_ephemeral_port, TempDir};

/// The tool's path, or `None` (skip) when it is missing outside CI. Under CI a missing tool is
/// a failure: the suite promises an independent peer.
fn tool(name: &str) -> Option<PathBuf> {
    let path = Path::new("/usr/bin").join(name);
    if path.exists() {
        return Some(path);
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "{} is missing and CI is set: install Debian's nghttp2-client (scripts/test.sh does)",
            path.display()
        );
    }
    eprintln!(
        "skipping: {} not installed (apt-get install nghttp2-client)",
        path.display()
    );
    None
}

/// gRPC echo origin: the request body back, then `grpc-status: 0` in trailers.
async fn start_origin(count: Arc<AtomicU64>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let count = Arc::clone(&count);
            tokio::spawn(async move {
                let Ok(mut conn) = h2::server::handshake(sock).await else {
                    return;
                };
                while let Some(Ok((req, respond))) = conn.accept().await {
                    count.fetch_add(1, Ordering::SeqCst);
                    tokio::spawn(echo(req, respond));
                }
            });
        }
    });
    addr
}

async fn echo(req: Request<RecvStream>, respond: h2::server::SendResponse<Bytes>) {
    common::h2_echo(req, respond, &[("grpc-message", "ok")]).await;
}

/// ringedge (one shard, h2c towards clients, default limits) in front of `origin`.
fn start_proxy(dir: &Path, origin: SocketAddr) -> (ringedge::ServerHandle, SocketAddr) {
    let (cert, key) = ringedge_tls::generate_self_signed(&["localhost"]).unwrap();
    std::fs::write(dir.join("cert.pem"), cert).unwrap();
    std::fs::write(dir.join("key.pem"), key).unwrap();
    // The config needs a concrete port; the proxy then listens on an ephemeral one.
    let port = free_port();
    let text = format!(
        r#"
[server]
listen = ["127.0.0.1:{port}"]
shards = 1
drain_timeout_ms = 0
[[tls.certificates]]
cert = "{cert}"
key = "{key}"
[[origins]]
name = "o"
url = "h2c://{origin}"
connect_timeout_ms = 1000
[[hosts]]
names = ["*"]
[[hosts.routes]]
prefix = "/"
origin = "o"
"#,
        cert = dir.join("cert.pem").display(),
        key = dir.join("key.pem").display(),
    );
    let config = ringedge::config::Config::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
    let mut spec = ringedge::server::build_spec(&config).unwrap();
    spec.tls = None;
    let handle = start_on_ephemeral_port(spec);
    let addr = handle.local_addrs()[0];
    (handle, addr)
}

/// Runs a child to completion within `limit`; kills it (by its own handle) past that.
fn run_bounded(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    // Drain the pipes on threads so a chatty child never blocks on a full pipe.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut out, &mut v);
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut err, &mut v);
        v
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: t_out.join().unwrap(),
        stderr: t_err.join().unwrap(),
    }
}

/// The numbers of h2load's `requests:` line, by name ("total", "succeeded", "failed", ...).
fn h2load_requests(stdout: &str) -> Vec<(String, u64)> {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("requests:"))
        .unwrap_or_else(|| panic!("no 'requests:' line in h2load output:\n{stdout}"));
    line["requests:".len()..]
        .split(',')
        .filter_map(|part| {
            let mut it = part.split_whitespace();
            let n = it.next()?.parse().ok()?;
            Some((it.next()?.to_string(), n))
        })
        .collect()
}

#[test]
fn h2load_grpc_load_through_ringedge_all_succeed() {
    let _g = serial();
    let Some(h2load) = tool("h2load") else { return };
    let dir = TempDir::new("nghttp");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let count = Arc::new(AtomicU64::new(0));
    let origin = rt.block_on(start_origin(Arc::clone(&count)));
    let (handle, addr) = start_proxy(&dir.0, origin);
    let body = dir.0.join("req.grpc");
    std::fs::write(&body, grpc_msg(b"hello from h2load")).unwrap();
    let out = run_bounded(
        Command::new(h2load)
            .args(["-n", "2000", "-c", "4", "-m", "16", "-d"])
            .arg(&body)
            .args(["-H", "content-type: application/grpc", "-H", "te: trailers"])
            .arg(format!("http://{addr}/pkg.Echo/Unary")),
        Duration::from_secs(60),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "h2load failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let req = h2load_requests(&stdout);
    let get = |k: &str| req.iter().find(|(n, _)| n == k).map(|(_, v)| *v);
    assert_eq!(get("total"), Some(2000), "{stdout}");
    assert_eq!(
        get("succeeded"),
        Some(2000),
        "not every request succeeded:\n{stdout}"
    );
    assert_eq!(get("failed"), Some(0), "{stdout}");
    assert_eq!(get("errored"), Some(0), "{stdout}");
    assert!(stdout.contains("status codes: 2000 2xx"), "{stdout}");
    assert_eq!(count.load(Ordering::SeqCst), 2000, "origin request count");
    // The proxy's own view (counters are published every 100 ms; a loaded machine may lag).
    let deadline = Instant::now() + Duration::from_secs(30);
    let m = loop {
        let m = handle.metrics();
        if m.grpc_requests >= 2000 || Instant::now() >= deadline {
            break m;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(m.grpc_requests, 2000);
    assert!(
        m.limits.is_empty(),
        "limits tripped by a well-behaved peer: {:?}",
        m.limits
    );
    drop(handle);
}

#[test]
fn nghttp_sees_grpc_trailers_after_the_body() {
    let _g = serial();
    let Some(nghttp) = tool("nghttp") else { return };
    let dir = TempDir::new("nghttp");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let count = Arc::new(AtomicU64::new(0));
    let origin = rt.block_on(start_origin(Arc::clone(&count)));
    let (handle, addr) = start_proxy(&dir.0, origin);
    let body = dir.0.join("req.grpc");
    std::fs::write(&body, grpc_msg(b"hello from nghttp")).unwrap();
    let out = run_bounded(
        Command::new(nghttp)
            .args(["-v", "-n", "-d"])
            .arg(&body)
            .args(["-H", "content-type: application/grpc", "-H", "te: trailers"])
            .arg(format!("http://{addr}/pkg.Echo/Unary")),
        Duration::from_secs(20),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "nghttp failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    // nghttp -v prints each received field as "recv (stream_id=N) name: value", before the
    // line of the HEADERS frame that carried it. Trailers are the header fields after DATA.
    let lines: Vec<&str> = stdout.lines().collect();
    let first_data = lines
        .iter()
        .position(|l| l.contains("recv DATA frame"))
        .unwrap_or_else(|| panic!("no DATA received:\n{stdout}"));
    assert!(
        lines[..first_data]
            .iter()
            .any(|l| l.contains("recv (stream_id=") && l.ends_with(":status: 200")),
        "no :status 200 before the body:\n{stdout}"
    );
    let trailers: Vec<&str> = lines[first_data..]
        .iter()
        .copied()
        .filter(|l| l.contains("recv (stream_id="))
        .collect();
    assert!(
        trailers.iter().any(|l| l.ends_with("grpc-status: 0")),
        "no grpc-status in the trailers:\n{stdout}"
    );
    assert!(
        trailers.iter().any(|l| l.ends_with("grpc-message: ok")),
        "{stdout}"
    );
    // The trailers' HEADERS frame ends the stream.
    let last_headers = lines[first_data..]
        .iter()
        .position(|l| l.contains("recv HEADERS frame"))
        .map(|i| i + first_data)
        .unwrap_or_else(|| panic!("no trailing HEADERS frame:\n{stdout}"));
    assert!(
        lines[last_headers..]
            .iter()
            .take(3)
            .any(|l| l.contains("END_STREAM")),
        "trailers without END_STREAM:\n{stdout}"
    );
    assert_eq!(count.load(Ordering::SeqCst), 1);
    drop(handle);
}

/// Kills the child (by its own handle) when dropped, so a failed assertion never leaks it.
struct ChildGuard(std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The same load over TLS (ALPN h2) through the quick-mode binary, `ringedge proxy`.
#[test]
fn h2load_over_tls_through_the_quick_mode_binary() {
    let _g = serial();
    let Some(h2load) = tool("h2load") else { return };
    let dir = TempDir::new("nghttp");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let count = Arc::new(AtomicU64::new(0));
    let origin = rt.block_on(start_origin(Arc::clone(&count)));
    let (cert, key) = ringedge_tls::generate_self_signed(&["localhost"]).unwrap();
    std::fs::write(dir.0.join("cert.pem"), cert).unwrap();
    std::fs::write(dir.0.join("key.pem"), key).unwrap();
    // The binary needs a concrete port: one that was free a moment ago. Should something else
    // take it before the child binds it, the child exits; try another port.
    let mut attempt = 0;
    let (port, mut proxy) = loop {
        attempt += 1;
        let port = free_port();
        let log = std::fs::File::create(dir.0.join("ringedge.log")).unwrap();
        let mut proxy = ChildGuard(
            Command::new(env!("CARGO_BIN_EXE_ringedge"))
                .args(["proxy", "--listen", &format!("127.0.0.1:{port}"), "--cert"])
                .arg(dir.0.join("cert.pem"))
                .arg("--key")
                .arg(dir.0.join("key.pem"))
                .args(["--origin", &format!("h2c://{origin}"), "--shards", "1"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("start ringedge proxy"),
        );
        // Wait (bounded) until it listens.
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut exited = None;
        while std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if let Some(status) = proxy.0.try_wait().unwrap() {
                exited = Some(status);
                break;
            }
            assert!(
                Instant::now() < deadline,
                "ringedge never listened on {addr}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        match exited {
            None => break (port, proxy),
            Some(status) if attempt >= 5 => panic!(
                "ringedge exited ({status}): {}",
                std::fs::read_to_string(dir.0.join("ringedge.log")).unwrap_or_default()
            ),
            Some(_) => continue,
        }
    };
    let body = dir.0.join("req.grpc");
    std::fs::write(&body, grpc_msg(b"hello over TLS")).unwrap();
    let out = run_bounded(
        Command::new(h2load)
            .args(["-n", "1000", "-c", "4", "-m", "16", "-d"])
            .arg(&body)
            .args(["-H", "content-type: application/grpc", "-H", "te: trailers"])
            .arg(format!("https://127.0.0.1:{port}/pkg.Echo/Unary")),
        Duration::from_secs(60),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "h2load failed: {}\n{stdout}",
        out.status
    );
    assert!(
        stdout.contains("Application protocol: h2"),
        "not h2 over TLS:\n{stdout}"
    );
    let req = h2load_requests(&stdout);
    let get = |k: &str| req.iter().find(|(n, _)| n == k).map(|(_, v)| *v);
    assert_eq!(
        get("succeeded"),
        Some(1000),
        "not every request succeeded:\n{stdout}"
    );
    assert_eq!(get("errored"), Some(0), "{stdout}");
    assert!(stdout.contains("status codes: 1000 2xx"), "{stdout}");
    assert_eq!(count.load(Ordering::SeqCst), 1000, "origin request count");
    assert!(
        proxy.0.try_wait().unwrap().is_none(),
        "ringedge exited during the load"
    );
}
