//! Forwarding semantics through a running ringedge, with the `h2` crate (code we did not write)
//! as both the client and the origin. The proxy runs in-process (its own pinned shard); its
//! client side is cleartext here so the h2 client can speak to it directly — TLS is covered by
//! the tonic end-to-end tests in `tests/e2e`.
//!
//! Every wait is bounded; no assertion depends on timing.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use h2::{Reason, RecvStream};
use http::{HeaderMap, Request, Response};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

mod common;
use common::{free_port, rt, send_all, serial, start_on_ephemeral_port, Pki};

/// The echo origin these tests use: echoes `x-meta-bin`, and a `-bin` trailer.
async fn echo(req: Request<RecvStream>, respond: h2::server::SendResponse<Bytes>) {
    common::h2_echo(req, respond, &[("x-trailer-bin", "AQID")]).await;
}

fn grpc_frame(payload: &[u8]) -> Bytes {
    Bytes::from(common::grpc_msg(payload))
}

/// Starts ringedge (one shard, h2c towards the client) in front of `origin`.
fn start_proxy(
    pki: &Pki,
    origin: SocketAddr,
    extra: &str,
    host: &str,
) -> (ringedge::ServerHandle, SocketAddr) {
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
{extra}
[[origins]]
name = "o"
url = "h2c://{origin}"
connect_timeout_ms = 1000
[[hosts]]
names = ["*"]
{host}
[[hosts.routes]]
prefix = "/"
origin = "o"
"#,
        cert = pki.dir.join("cert.pem").display(),
        key = pki.dir.join("key.pem").display(),
    );
    let config = ringedge::config::Config::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
    let mut spec = ringedge::server::build_spec(&config).unwrap();
    spec.tls = None;
    let handle = start_on_ephemeral_port(spec);
    let addr = handle.local_addrs()[0];
    (handle, addr)
}

type Handler = Arc<
    dyn Fn(Request<RecvStream>, h2::server::SendResponse<Bytes>, u64) -> tokio::task::JoinHandle<()>
        + Send
        + Sync,
>;

/// An h2 origin on a loopback port; `handler` gets each request and its index.
async fn start_origin(handler: Handler) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let counter = Arc::new(AtomicU64::new(0));
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let handler = Arc::clone(&handler);
            let counter = Arc::clone(&counter);
            tokio::spawn(async move {
                let Ok(mut conn) = h2::server::handshake(sock).await else {
                    return;
                };
                while let Some(Ok((req, respond))) = conn.accept().await {
                    let n = counter.fetch_add(1, Ordering::SeqCst);
                    handler(req, respond, n);
                }
            });
        }
    });
    addr
}

async fn client(addr: SocketAddr) -> h2::client::SendRequest<Bytes> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    // A roomy connection window: h2 0.4.20 sends GOAWAY(ENHANCE_YOUR_CALM) when more small DATA
    // frames sit unread than half its connection window allows, and 250 concurrent small
    // responses per connection exceed that with the default 64 KiB window.
    let (client, conn) = h2::client::Builder::new()
        .initial_connection_window_size(8 << 20)
        .handshake(tcp)
        .await
        .unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client.ready().await.unwrap()
}

fn grpc_request(path: &str, extra: &[(&str, &str)]) -> Request<()> {
    let mut b = Request::builder()
        .method("POST")
        .uri(format!("http://api.test{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    for (k, v) in extra {
        b = b.header(*k, *v);
    }
    b.body(()).unwrap()
}

/// Reads a whole response: status, headers, body, trailers.
async fn read_all(resp: Response<RecvStream>) -> (u16, HeaderMap, Vec<u8>, Option<HeaderMap>) {
    let (parts, mut body) = resp.into_parts();
    let mut data = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.unwrap();
        let _ = body.flow_control().release_capacity(chunk.len());
        data.extend_from_slice(&chunk);
    }
    let trailers = body.trailers().await.unwrap();
    (parts.status.as_u16(), parts.headers, data, trailers)
}

/// The gRPC status of a response: from trailers, or from the headers of a Trailers-Only one.
fn grpc_status(headers: &HeaderMap, trailers: &Option<HeaderMap>) -> (String, String) {
    let src = trailers.as_ref().unwrap_or(headers);
    let get = |k: &str| {
        src.get(k)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    };
    (get("grpc-status"), get("grpc-message"))
}

async fn wait_for<F: Fn(&ringedge::metrics::Snapshot) -> bool>(
    handle: &ringedge::ServerHandle,
    what: &str,
    f: F,
) -> ringedge::metrics::Snapshot {
    let deadline = std::time::Instant::now() + T;
    loop {
        let m = handle.metrics();
        if f(&m) {
            return m;
        }
        if std::time::Instant::now() >= deadline {
            panic!("metrics never showed {what} within {T:?}: {m:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The bound of every wait (a loaded CI machine may be slow; a pass never waits this long).
const T: Duration = Duration::from_secs(30);

#[test]
fn unary_with_metadata_and_trailers_passes_through() {
    let _g = serial();
    let pki = Pki::new("fwd");
    let rt = rt();
    rt.block_on(async {
        let origin =
            start_origin(Arc::new(|req, respond, _| tokio::spawn(echo(req, respond)))).await;
        let (handle, addr) = start_proxy(&pki, origin, "", "");
        let mut c = client(addr).await;
        let (resp, mut send) = c
            .send_request(
                grpc_request("/pkg.Echo/Unary", &[("x-meta-bin", "AAEC")]),
                false,
            )
            .unwrap();
        send.send_data(grpc_frame(b"hello"), true).unwrap();
        let resp = tokio::time::timeout(T, resp).await.unwrap().unwrap();
        let (status, headers, body, trailers) =
            tokio::time::timeout(T, read_all(resp)).await.unwrap();
        assert_eq!(status, 200);
        assert_eq!(headers.get("x-meta-bin").unwrap(), "AAEC");
        assert_eq!(body, grpc_frame(b"hello").to_vec());
        let trailers = trailers.expect("trailers forwarded");
        assert_eq!(trailers.get("grpc-status").unwrap(), "0");
        assert_eq!(trailers.get("x-trailer-bin").unwrap(), "AQID");
        let m = wait_for(&handle, "one stream", |m| m.streams_total >= 1).await;
        assert_eq!(m.grpc_requests, 1);
        drop(handle);
    });
}

#[test]
fn large_messages_and_many_concurrent_streams() {
    let _g = serial();
    let pki = Pki::new("fwd");
    let rt = rt();
    rt.block_on(async {
        let origin =
            start_origin(Arc::new(|req, respond, _| tokio::spawn(echo(req, respond)))).await;
        let (handle, addr) = start_proxy(&pki, origin, "", "");
        // A 4 MiB message through windows much smaller than it.
        let big: Vec<u8> = (0..4 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
        let mut c = client(addr).await;
        let (resp, mut send) = c
            .send_request(grpc_request("/pkg.Echo/Big", &[]), false)
            .unwrap();
        let sent = send_all(&mut send, grpc_frame(&big)).await;
        assert_eq!(sent, big.len() + 5);
        send.send_data(Bytes::new(), true).unwrap();
        let resp = tokio::time::timeout(T, resp).await.unwrap().unwrap();
        let (_, headers, body, trailers) = tokio::time::timeout(T, read_all(resp)).await.unwrap();
        assert_eq!(grpc_status(&headers, &trailers).0, "0");
        assert!(
            body == grpc_frame(&big).to_vec(),
            "4 MiB body changed in transit"
        );

        // 1000 concurrent calls over 4 client connections.
        let mut tasks = Vec::new();
        for conn in 0..4 {
            let mut c = client(addr).await;
            for i in 0..250 {
                let (resp, mut send) = c
                    .send_request(grpc_request("/pkg.Echo/Unary", &[]), false)
                    .unwrap();
                let payload = format!("c{conn}-{i}");
                send.send_data(grpc_frame(payload.as_bytes()), true)
                    .unwrap();
                tasks.push(tokio::spawn(async move {
                    let resp = resp.await.unwrap();
                    let (_, headers, body, trailers) = read_all(resp).await;
                    (grpc_status(&headers, &trailers).0, body, payload)
                }));
            }
        }
        let mut ok = 0;
        for t in tasks {
            let (status, body, payload) = tokio::time::timeout(T, t).await.unwrap().unwrap();
            assert_eq!(status, "0");
            assert_eq!(body, grpc_frame(payload.as_bytes()).to_vec());
            ok += 1;
        }
        assert_eq!(ok, 1000);
        drop(handle);
    });
}

#[test]
fn early_trailers_then_reset_no_error_keep_the_origin_status() {
    let _g = serial();
    let pki = Pki::new("fwd");
    let rt = rt();
    rt.block_on(async {
        let origin = start_origin(Arc::new(|req, mut respond, _| {
            tokio::spawn(async move {
                // Answer before the request body ended. Dropping every handle of a stream
                // whose response is complete while the request still streams makes h2 queue
                // RST_STREAM(NO_ERROR) after the trailers (RFC 9113 §8.1, PROTOCOL-HTTP2.md).
                // (An explicit send_reset would discard the queued trailers.)
                let resp = Response::builder()
                    .status(200)
                    .header("content-type", "application/grpc")
                    .body(())
                    .unwrap();
                let mut send = respond.send_response(resp, false).unwrap();
                let mut trailers = HeaderMap::new();
                trailers.insert("grpc-status", "7".parse().unwrap());
                trailers.insert("grpc-message", "early%20no".parse().unwrap());
                send.send_trailers(trailers).unwrap();
                drop(send);
                drop(respond);
                drop(req);
            })
        }))
        .await;
        let (handle, addr) = start_proxy(&pki, origin, "", "");
        let mut c = client(addr).await;
        let (resp, mut send) = c
            .send_request(grpc_request("/pkg.Echo/Stream", &[]), false)
            .unwrap();
        send.send_data(grpc_frame(b"first"), false).unwrap();
        let resp = tokio::time::timeout(T, resp).await.unwrap().unwrap();
        let (_, headers, _, trailers) = tokio::time::timeout(T, read_all(resp)).await.unwrap();
        let (status, message) = grpc_status(&headers, &trailers);
        assert_eq!(
            status, "7",
            "the origin's status must reach the client, not CANCELLED ({message})"
        );
        assert_eq!(message, "early%20no");
        drop(handle);
    });
}

#[test]
fn client_cancellation_reaches_the_origin() {
    let _g = serial();
    let pki = Pki::new("fwd");
    let rt = rt();
    rt.block_on(async {
        let (seen_tx, mut seen_rx) = mpsc::unbounded_channel::<&'static str>();
        let (reset_tx, mut reset_rx) = mpsc::unbounded_channel::<Reason>();
        let origin = start_origin(Arc::new(move |_req, mut respond, _| {
            let seen = seen_tx.clone();
            let reset = reset_tx.clone();
            tokio::spawn(async move {
                let _ = seen.send("request");
                if let Ok(reason) = std::future::poll_fn(|cx| respond.poll_reset(cx)).await {
                    let _ = reset.send(reason);
                }
            })
        }))
        .await;
        let (handle, addr) = start_proxy(&pki, origin, "", "");
        let mut c = client(addr).await;
        let (_resp, mut send) = c
            .send_request(grpc_request("/pkg.Echo/Hang", &[]), false)
            .unwrap();
        send.send_data(grpc_frame(b"x"), false).unwrap();
        tokio::time::timeout(T, seen_rx.recv())
            .await
            .unwrap()
            .unwrap();
        send.send_reset(Reason::CANCEL);
        let reason = tokio::time::timeout(T, reset_rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(reason, Reason::CANCEL);
        wait_for(&handle, "the client reset counted", |m| {
            m.client_resets >= 1
        })
        .await;
        drop(handle);
    });
}

#[test]
fn deadline_gives_deadline_exceeded_and_cancels_the_origin() {
    let _g = serial();
    let pki = Pki::new("fwd");
    let rt = rt();
    rt.block_on(async {
        let (hdr_tx, mut hdr_rx) = mpsc::unbounded_channel::<String>();
        let (reset_tx, mut reset_rx) = mpsc::unbounded_channel::<Reason>();
        let origin = start_origin(Arc::new(move |req, mut respond, _| {
            let hdr = hdr_tx.clone();
            let reset = reset_tx.clone();
            tokio::spawn(async move {
                let t = req
                    .headers()
                    .get("grpc-timeout")
                    .map(|v| v.to_str().unwrap().to_string())
                    .unwrap_or_default();
                let _ = hdr.send(t);
                if let Ok(reason) = std::future::poll_fn(|cx| respond.poll_reset(cx)).await {
                    let _ = reset.send(reason);
                }
            })
        }))
        .await;
        let (handle, addr) = start_proxy(&pki, origin, "", "");
        let mut c = client(addr).await;
        // A budget long enough for the proxy to open its origin connection and forward the
        // call before it expires, however slow the machine (the origin must see the request).
        let (resp, mut send) = c
            .send_request(
                grpc_request("/pkg.Echo/Slow", &[("grpc-timeout", "2S")]),
                false,
            )
            .unwrap();
        send.send_data(grpc_frame(b"x"), true).unwrap();
        // The origin sees the remaining budget, never more than the client gave.
        let t = tokio::time::timeout(T, hdr_rx.recv())
            .await
            .unwrap()
            .unwrap();
        let parsed = ringedge_codec::grpc::parse_timeout(t.as_bytes()).unwrap();
        assert!(
            parsed <= Duration::from_secs(2) && !parsed.is_zero(),
            "origin saw {t}"
        );
        let resp = tokio::time::timeout(T, resp).await.unwrap().unwrap();
        let (_, headers, _, trailers) = tokio::time::timeout(T, read_all(resp)).await.unwrap();
        assert_eq!(grpc_status(&headers, &trailers).0, "4");
        assert_eq!(
            tokio::time::timeout(T, reset_rx.recv())
                .await
                .unwrap()
                .unwrap(),
            Reason::CANCEL
        );
        wait_for(&handle, "a deadline counted", |m| m.deadlines_exceeded >= 1).await;
        drop(handle);
    });
}

#[test]
fn origin_down_gives_unavailable_naming_the_cause() {
    let _g = serial();
    let pki = Pki::new("fwd");
    let rt = rt();
    rt.block_on(async {
        let dead: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let (handle, addr) = start_proxy(&pki, dead, "", "");
        let mut c = client(addr).await;
        let (resp, mut send) = c
            .send_request(grpc_request("/pkg.Echo/Unary", &[]), false)
            .unwrap();
        send.send_data(grpc_frame(b"x"), true).unwrap();
        let resp = tokio::time::timeout(T, resp).await.unwrap().unwrap();
        let (status, headers, body, trailers) =
            tokio::time::timeout(T, read_all(resp)).await.unwrap();
        assert_eq!(status, 200);
        assert!(trailers.is_none(), "edge errors are Trailers-Only");
        assert!(body.is_empty());
        assert_eq!(headers.get("content-type").unwrap(), "application/grpc");
        let (code, message) = grpc_status(&headers, &trailers);
        assert_eq!(code, "14");
        let message = ringedge_codec::grpc::percent_decode_message(message.as_bytes());
        assert!(message.contains("connect to"), "message: {message}");
        assert!(message.contains(&dead.to_string()), "message: {message}");
        drop(handle);
    });
}

#[test]
fn grpc_switched_off_and_non_grpc_policy() {
    let _g = serial();
    let pki = Pki::new("fwd");
    let rt = rt();
    rt.block_on(async {
        let origin =
            start_origin(Arc::new(|req, respond, _| tokio::spawn(echo(req, respond)))).await;
        let (handle, addr) = start_proxy(&pki, origin, "", "grpc = false");
        let mut c = client(addr).await;
        let (resp, mut send) = c
            .send_request(grpc_request("/pkg.Echo/Unary", &[]), false)
            .unwrap();
        send.send_data(grpc_frame(b"x"), true).unwrap();
        let resp = tokio::time::timeout(T, resp).await.unwrap().unwrap();
        let (status, headers, _, trailers) = tokio::time::timeout(T, read_all(resp)).await.unwrap();
        assert_eq!(status, 200);
        let (code, message) = grpc_status(&headers, &trailers);
        assert_eq!(code, "12");
        let message = ringedge_codec::grpc::percent_decode_message(message.as_bytes());
        assert_eq!(message, "gRPC is switched off for host *");
        // A non-gRPC request on a host that rejects them: 415, never forwarded.
        let req = Request::builder()
            .method("GET")
            .uri("http://api.test/index.html")
            .body(())
            .unwrap();
        let (resp, _) = c.send_request(req, true).unwrap();
        let resp = tokio::time::timeout(T, resp).await.unwrap().unwrap();
        assert_eq!(resp.status().as_u16(), 415);
        let m = wait_for(&handle, "two requests", |m| m.streams_total >= 2).await;
        assert_eq!(m.edge_status[12], 1);
        drop(handle);
    });
}

/// The retried request carries the same path, metadata (a never-indexed one and a `-bin` one
/// too) and body as the first try.
#[test]
fn refused_stream_is_retried_once_with_its_body() {
    let _g = serial();
    let pki = Pki::new("fwd");
    let rt = rt();
    rt.block_on(async {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen_origin = Arc::clone(&seen);
        let origin = start_origin(Arc::new(move |req, mut respond, n| {
            let h = req.headers();
            let meta = |k: &str| h.get(k).map(|v| v.to_str().unwrap_or("?").to_owned());
            seen_origin.lock().unwrap().push((
                req.uri().path().to_owned(),
                meta("x-retry-meta"),
                meta("authorization"),
                meta("x-trace-bin"),
            ));
            tokio::spawn(async move {
                if n == 0 {
                    respond.send_reset(Reason::REFUSED_STREAM);
                } else {
                    echo(req, respond).await;
                }
            })
        }))
        .await;
        let (handle, addr) = start_proxy(&pki, origin, "", "");
        let mut c = client(addr).await;
        let mut req = grpc_request(
            "/pkg.Echo/Unary",
            &[("x-retry-meta", "kept"), ("x-trace-bin", "AAEC")],
        );
        let mut secret = http::HeaderValue::from_static("Bearer s3cret");
        secret.set_sensitive(true);
        req.headers_mut().insert("authorization", secret);
        let (resp, mut send) = c.send_request(req, false).unwrap();
        send.send_data(grpc_frame(b"retry me"), true).unwrap();
        let resp = tokio::time::timeout(T, resp).await.unwrap().unwrap();
        let (_, headers, body, trailers) = tokio::time::timeout(T, read_all(resp)).await.unwrap();
        assert_eq!(grpc_status(&headers, &trailers).0, "0");
        assert_eq!(body, grpc_frame(b"retry me").to_vec());
        wait_for(&handle, "one retry", |m| m.retries == 1).await;
        let want = (
            "/pkg.Echo/Unary".to_owned(),
            Some("kept".to_owned()),
            Some("Bearer s3cret".to_owned()),
            Some("AAEC".to_owned()),
        );
        assert_eq!(*seen.lock().unwrap(), vec![want.clone(), want]);
        drop(handle);
    });
}

#[test]
fn a_client_that_stops_reading_does_not_grow_edge_buffers_past_the_window() {
    let _g = serial();
    let pki = Pki::new("fwd");
    let rt = rt();
    rt.block_on(async {
        let sent = Arc::new(AtomicU64::new(0));
        let sent_origin = Arc::clone(&sent);
        let origin = start_origin(Arc::new(move |_req, mut respond, _| {
            let sent = Arc::clone(&sent_origin);
            tokio::spawn(async move {
                let resp = Response::builder()
                    .status(200)
                    .header("content-type", "application/grpc")
                    .body(())
                    .unwrap();
                let mut send = respond.send_response(resp, false).unwrap();
                // A server stream as fast as flow control allows, up to 64 MiB.
                for _ in 0..4096 {
                    let n = send_all(&mut send, Bytes::from(vec![7u8; 16384])).await;
                    sent.fetch_add(n as u64, Ordering::SeqCst);
                    if n < 16384 {
                        return;
                    }
                }
            })
        }))
        .await;
        let window = 65535u64;
        let limits = format!(
            "[limits.h2]\ninitial_stream_window = {window}\nconnection_window = {window}\n"
        );
        let (handle, addr) = start_proxy(&pki, origin, &limits, "");
        let mut c = client(addr).await;
        let (resp, mut send) = c
            .send_request(grpc_request("/pkg.Stream/Out", &[]), false)
            .unwrap();
        send.send_data(grpc_frame(b"go"), true).unwrap();
        let _resp = tokio::time::timeout(T, resp).await.unwrap().unwrap();
        // Never read the body. Wait until the origin has filled at least the edge's window,
        // then until it is held back: its count unchanged over several consecutive looks (one
        // unchanged look could be a moment the origin's task was not scheduled).
        let deadline = std::time::Instant::now() + T;
        let mut last = u64::MAX;
        let mut unchanged = 0;
        while unchanged < 5 {
            assert!(
                std::time::Instant::now() < deadline,
                "the origin's count never settled: {}",
                sent.load(Ordering::SeqCst)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
            let now = sent.load(Ordering::SeqCst);
            if now == last && now >= window {
                unchanged += 1;
            } else {
                unchanged = 0;
            }
            last = now;
        }
        let origin_sent = sent.load(Ordering::SeqCst);
        // The edge holds at most its own receive window from the origin; the client holds
        // its default window (65535) of what passed. Nothing else can have been sent.
        assert!(
            origin_sent >= window,
            "the stream never started: {origin_sent}"
        );
        assert!(
            origin_sent <= 2 * window,
            "origin sent {origin_sent} bytes to a client that reads nothing"
        );
        let m = wait_for(&handle, "published counters", |m| m.streams_total >= 1).await;
        assert!(
            m.buffered_bytes_peak <= window,
            "edge buffered {} bytes, window {window}",
            m.buffered_bytes_peak
        );
        drop(handle);
    });
}
