//! Hostile HTTP/2 peers against a running ringedge.
//!
//! The attacker writes RAW bytes on a TCP socket: frames are built by hand below (9-byte header +
//! payload, RFC 9113 §4.1) and header blocks are hand-written HPACK literals (RFC 7541 §6.2.2),
//! so nothing smooths over an attack. What the proxy answers is read back with a small frame
//! parser; response header blocks are decoded with the codec's HPACK decoder (reading only).
//!
//! Every case asserts the protocol's answer (GOAWAY / RST_STREAM with the right code, or a 431),
//! that the abuse counter moved (`ServerHandle::metrics().limits`), and that the proxy still
//! serves a well-behaved client (the `h2` crate) on a new connection afterwards.
//!
//! Floods: rapid reset (CVE-2023-44487), SETTINGS / PING / empty-frame floods
//! (CVE-2019-9515 / 9512 / 9518), CONTINUATION floods (CVE-2024-27316 family), streams beyond
//! SETTINGS_MAX_CONCURRENT_STREAMS, slowloris. Malformed: RFC 9113 §3.4, §4.2, §5.1, §6.x, §8.
//!
//! Every connection, loop and wait is bounded in count and time; loopback only. The proxy runs
//! with `flood_window_ms = 10000` so a slow machine cannot slide a flood out of its window.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use h2::RecvStream;
use http::Request;
use ringedge_codec::hpack::Decoder;

mod common;
use common::{free_port, grpc_msg, rt, serial, start_on_ephemeral_port, Pki};

// ----- harness: proxy and origin ---------------------------------------------------------------

/// Small limits so every flood trips quickly (each is a named `[limits.h2]` field).
const LIMITS: &str = r#"
[limits.h2]
max_concurrent_streams = 4
initial_stream_window = 65535
max_header_list_size = 1024
max_continuation_frames = 8
max_header_block_bytes = 8192
max_resets_per_window = 20
max_settings_per_window = 20
max_pings_per_window = 20
max_empty_frames_per_window = 20
max_refused_streams = 3
flood_window_ms = 60000
"#;

/// Server keys for most cases: timeouts long enough never to interfere with a flood, nor with
/// connections a test holds open without a request, however slow the machine runs.
const SERVER: &str = "header_timeout_ms = 60000\nidle_timeout_ms = 120000";

/// A running proxy in front of an `h2` origin, with the origin's request count.
struct Rig {
    handle: ringedge::ServerHandle,
    addr: SocketAddr,
    origin_requests: Arc<AtomicU64>,
    /// Held (`Hang`) origin streams that the proxy reset.
    origin_resets: Arc<AtomicU64>,
    rt: tokio::runtime::Runtime,
    _pki: Pki,
}

fn rig(server: &str) -> Rig {
    rig_with(server, "")
}

/// `server` lines go in `[server]`; `h2` lines are added to `[limits.h2]` after [`LIMITS`].
fn rig_with(server: &str, h2: &str) -> Rig {
    let pki = Pki::new("hostile");
    let rt = rt();
    let origin_requests = Arc::new(AtomicU64::new(0));
    let origin_resets = Arc::new(AtomicU64::new(0));
    let origin = rt.block_on(start_origin(
        Arc::clone(&origin_requests),
        Arc::clone(&origin_resets),
    ));
    // The config needs a concrete port; the proxy then listens on an ephemeral one.
    let port = free_port();
    let text = format!(
        r#"
[server]
listen = ["127.0.0.1:{port}"]
shards = 1
drain_timeout_ms = 0
{server}
[[tls.certificates]]
cert = "{cert}"
key = "{key}"
{LIMITS}{h2}
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
        cert = pki.dir.join("cert.pem").display(),
        key = pki.dir.join("key.pem").display(),
    );
    let config = ringedge::config::Config::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
    let mut spec = ringedge::server::build_spec(&config).unwrap();
    spec.tls = None;
    let handle = start_on_ephemeral_port(spec);
    let addr = handle.local_addrs()[0];
    Rig {
        handle,
        addr,
        origin_requests,
        origin_resets,
        rt,
        _pki: pki,
    }
}

/// The origin: echoes the request body with `grpc-status: 0` trailers; a `:path` containing
/// `Hang` is held open (never answered) until the proxy resets it.
async fn start_origin(count: Arc<AtomicU64>, resets: Arc<AtomicU64>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let count = Arc::clone(&count);
            let resets = Arc::clone(&resets);
            tokio::spawn(async move {
                let Ok(mut conn) = h2::server::handshake(sock).await else {
                    return;
                };
                while let Some(Ok((req, respond))) = conn.accept().await {
                    count.fetch_add(1, Ordering::SeqCst);
                    tokio::spawn(origin_call(req, respond, Arc::clone(&resets)));
                }
            });
        }
    });
    addr
}

async fn origin_call(
    req: Request<RecvStream>,
    mut respond: h2::server::SendResponse<Bytes>,
    resets: Arc<AtomicU64>,
) {
    if req.uri().path().contains("Hang") {
        if std::future::poll_fn(|cx| respond.poll_reset(cx))
            .await
            .is_ok()
        {
            resets.fetch_add(1, Ordering::SeqCst);
        }
        return;
    }
    common::h2_echo(req, respond, &[]).await;
}

/// A well-behaved client (the `h2` crate, on a NEW connection) gets a correct echo.
fn assert_healthy(rig: &Rig) {
    let addr = rig.addr;
    rig.rt.block_on(async move {
        let run = async {
            let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
            let (client, conn) = h2::client::handshake(tcp).await.unwrap();
            tokio::spawn(async move {
                let _ = conn.await;
            });
            let mut client = client.ready().await.unwrap();
            let req = Request::builder()
                .method("POST")
                .uri("http://api.test/pkg.Echo/Unary")
                .header("content-type", "application/grpc")
                .header("te", "trailers")
                .body(())
                .unwrap();
            let (resp, mut send) = client.send_request(req, false).unwrap();
            send.send_data(Bytes::from(grpc_msg(b"still alive")), true)
                .unwrap();
            let resp = resp.await.unwrap();
            assert_eq!(resp.status().as_u16(), 200);
            let mut body = resp.into_body();
            let mut data = Vec::new();
            while let Some(chunk) = body.data().await {
                let chunk = chunk.unwrap();
                let _ = body.flow_control().release_capacity(chunk.len());
                data.extend_from_slice(&chunk);
            }
            let trailers = body.trailers().await.unwrap().expect("trailers");
            assert_eq!(trailers.get("grpc-status").unwrap(), "0");
            assert_eq!(data, grpc_msg(b"still alive"));
        };
        tokio::time::timeout(Duration::from_secs(10), run)
            .await
            .expect("a well-behaved client timed out: the proxy stopped serving");
    });
}

/// Waits (bounded) until the proxy's published counters show `kind` at least `n` times.
fn wait_limit(rig: &Rig, kind: &str, n: u64) -> u64 {
    let deadline = Instant::now() + WAIT;
    loop {
        let m = rig.handle.metrics();
        let got = m
            .limits
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, v)| *v)
            .unwrap_or(0);
        if got >= n {
            return got;
        }
        if Instant::now() >= deadline {
            panic!(
                "counter {kind} never reached {n} (now {got}): {:?}",
                m.limits
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ----- frame vocabulary (RFC 9113 §4.1, §6) ----------------------------------------------------

const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const PRIORITY: u8 = 0x2;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const PUSH_PROMISE: u8 = 0x5;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
const WINDOW_UPDATE: u8 = 0x8;
const CONTINUATION: u8 = 0x9;

const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PRIORITY_FLAG: u8 = 0x20;

const NO_ERROR: u32 = 0x0;
const PROTOCOL_ERROR: u32 = 0x1;
const FLOW_CONTROL_ERROR: u32 = 0x3;
const SETTINGS_TIMEOUT: u32 = 0x4;
const STREAM_CLOSED: u32 = 0x5;
const FRAME_SIZE_ERROR: u32 = 0x6;
const REFUSED_STREAM: u32 = 0x7;
const CANCEL: u32 = 0x8;
const COMPRESSION_ERROR: u32 = 0x9;
const ENHANCE_YOUR_CALM: u32 = 0xb;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// One frame: 9-byte header (24-bit length, type, flags, 31-bit stream id) + payload.
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut v = Vec::with_capacity(9 + payload.len());
    v.extend_from_slice(&len.to_be_bytes()[1..]);
    v.push(kind);
    v.push(flags);
    v.extend_from_slice(&stream.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

fn settings(pairs: &[(u16, u32)]) -> Vec<u8> {
    let mut p = Vec::new();
    for (id, value) in pairs {
        p.extend_from_slice(&id.to_be_bytes());
        p.extend_from_slice(&value.to_be_bytes());
    }
    frame(SETTINGS, 0, 0, &p)
}

fn ping(data: u64) -> Vec<u8> {
    frame(PING, 0, 0, &data.to_be_bytes())
}

fn headers(stream: u32, block: &[u8], end_stream: bool) -> Vec<u8> {
    let flags = END_HEADERS | if end_stream { END_STREAM } else { 0 };
    frame(HEADERS, flags, stream, block)
}

fn data(stream: u32, payload: &[u8], end_stream: bool) -> Vec<u8> {
    frame(
        DATA,
        if end_stream { END_STREAM } else { 0 },
        stream,
        payload,
    )
}

fn rst(stream: u32, code: u32) -> Vec<u8> {
    frame(RST_STREAM, 0, stream, &code.to_be_bytes())
}

fn window_update(stream: u32, increment: u32) -> Vec<u8> {
    frame(WINDOW_UPDATE, 0, stream, &increment.to_be_bytes())
}

fn priority(stream: u32, depends_on: u32) -> Vec<u8> {
    let mut p = depends_on.to_be_bytes().to_vec();
    p.push(15);
    frame(PRIORITY, 0, stream, &p)
}

/// HPACK integer with an `n`-bit prefix (RFC 7541 §5.1); `first` holds the pattern bits.
fn hpack_int(out: &mut Vec<u8>, n: u32, first: u8, mut value: usize) {
    let max = (1usize << n) - 1;
    if value < max {
        out.push(first | value as u8);
        return;
    }
    out.push(first | max as u8);
    value -= max;
    while value >= 128 {
        out.push((value % 128) as u8 | 0x80);
        value /= 128;
    }
    out.push(value as u8);
}

/// A header block of literals without indexing, new names, no Huffman (RFC 7541 §6.2.2).
fn block(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in fields {
        out.push(0x00);
        hpack_int(&mut out, 7, 0, name.len());
        out.extend_from_slice(name.as_bytes());
        hpack_int(&mut out, 7, 0, value.len());
        out.extend_from_slice(value.as_bytes());
    }
    out
}

/// A gRPC request's fields for `path`.
fn grpc_fields(path: &str) -> Vec<(&str, &str)> {
    vec![
        (":method", "POST"),
        (":scheme", "http"),
        (":path", path),
        (":authority", "api.test"),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
    ]
}

fn request(path: &str) -> Vec<u8> {
    block(&grpc_fields(path))
}

// ----- the raw peer ----------------------------------------------------------------------------

/// A frame the proxy sent; HEADERS blocks are decoded (in order, keeping the HPACK context).
#[derive(Debug)]
struct Frame {
    kind: u8,
    flags: u8,
    stream: u32,
    payload: Vec<u8>,
    fields: Vec<(String, String)>,
}

impl Frame {
    fn code(&self) -> u32 {
        let at = if self.kind == GOAWAY { 4 } else { 0 };
        u32::from_be_bytes(self.payload[at..at + 4].try_into().unwrap())
    }
    fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// How long any single expectation may wait (a pass never waits this long; a loaded CI machine
/// may need seconds).
const WAIT: Duration = Duration::from_secs(30);

struct Raw {
    sock: TcpStream,
    rx: Vec<u8>,
    dec: Decoder,
    eof: bool,
}

impl Raw {
    /// A TCP connection; nothing sent yet.
    fn tcp(addr: SocketAddr) -> Raw {
        let sock = TcpStream::connect_timeout(&addr, WAIT).unwrap();
        sock.set_nodelay(true).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        sock.set_write_timeout(Some(WAIT)).unwrap();
        Raw {
            sock,
            rx: Vec::new(),
            dec: Decoder::new(4096),
            eof: false,
        }
    }

    /// Connection preface, empty SETTINGS, and the ACK of the proxy's SETTINGS (§3.4).
    fn open(addr: SocketAddr) -> Raw {
        let mut r = Raw::tcp(addr);
        let mut hello = PREFACE.to_vec();
        hello.extend(settings(&[]));
        r.send(&hello);
        r.until("the proxy's SETTINGS", |f| {
            f.kind == SETTINGS && f.flags & ACK == 0
        });
        r.send(&frame(SETTINGS, ACK, 0, &[]));
        r
    }

    /// Writes bytes; `false` if the proxy already closed (an attack may outlive the connection).
    fn send(&mut self, bytes: &[u8]) -> bool {
        self.sock.write_all(bytes).is_ok()
    }

    /// The next frame, or `None` at end of stream or when `deadline` passes.
    fn next(&mut self, deadline: Instant) -> Option<Frame> {
        loop {
            if let Some(f) = self.parse() {
                return Some(f);
            }
            if self.eof || Instant::now() >= deadline {
                return None;
            }
            let mut tmp = [0u8; 16384];
            match self.sock.read(&mut tmp) {
                Ok(0) => self.eof = true,
                Ok(n) => self.rx.extend_from_slice(&tmp[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                    ) => {}
                // A reset after the proxy closed: what was read before still counts.
                Err(_) => self.eof = true,
            }
        }
    }

    fn parse(&mut self) -> Option<Frame> {
        if self.rx.len() < 9 {
            return None;
        }
        let len = u32::from_be_bytes([0, self.rx[0], self.rx[1], self.rx[2]]) as usize;
        if self.rx.len() < 9 + len {
            return None;
        }
        let head: Vec<u8> = self.rx.drain(..9 + len).collect();
        let mut f = Frame {
            kind: head[3],
            flags: head[4],
            stream: u32::from_be_bytes(head[5..9].try_into().unwrap()) & 0x7fff_ffff,
            payload: head[9..].to_vec(),
            fields: Vec::new(),
        };
        if f.kind == HEADERS {
            assert!(
                f.flags & END_HEADERS != 0,
                "the proxy split a small header block"
            );
            let mut b = &f.payload[..];
            if f.flags & 0x8 != 0 {
                let pad = b[0] as usize;
                b = &b[1..b.len() - pad];
            }
            if f.flags & PRIORITY_FLAG != 0 {
                b = &b[5..];
            }
            let block = Bytes::copy_from_slice(b);
            let mut fields = Vec::new();
            self.dec
                .decode(&block, &mut |h: ringedge_codec::hpack::HeaderField| {
                    fields.push((
                        String::from_utf8_lossy(&h.name).into_owned(),
                        String::from_utf8_lossy(&h.value).into_owned(),
                    ))
                })
                .expect("the proxy sent an undecodable header block");
            f.fields = fields;
        }
        Some(f)
    }

    /// Reads until a frame matches; panics (listing what came) on EOF or timeout.
    fn until(&mut self, what: &str, mut pred: impl FnMut(&Frame) -> bool) -> (Frame, Vec<Frame>) {
        let deadline = Instant::now() + WAIT;
        let mut seen = Vec::new();
        while let Some(f) = self.next(deadline) {
            if pred(&f) {
                return (f, seen);
            }
            seen.push(f);
        }
        let why = if self.eof {
            "connection closed"
        } else {
            "timed out"
        };
        panic!("expected {what}; {why} after {:?}", summary(&seen));
    }

    /// Expects GOAWAY with `code`, then the proxy closing the socket. Returns the GOAWAY and
    /// the frames that came before it.
    fn expect_goaway(&mut self, code: &[u32]) -> (Frame, Vec<Frame>) {
        let (g, seen) = self.until("GOAWAY", |f| f.kind == GOAWAY);
        assert!(
            code.contains(&g.code()),
            "GOAWAY code {:#x} ({}), expected one of {code:x?}",
            g.code(),
            String::from_utf8_lossy(&g.payload[8..])
        );
        self.expect_closed();
        (g, seen)
    }

    /// The proxy closes the connection (bounded wait).
    fn expect_closed(&mut self) {
        let deadline = Instant::now() + WAIT;
        let mut after = Vec::new();
        while let Some(f) = self.next(deadline) {
            after.push(f);
        }
        assert!(
            self.eof,
            "connection still open; frames: {:?}",
            summary(&after)
        );
    }

    /// Expects RST_STREAM on `stream` with `code` (other frames, e.g. WINDOW_UPDATE, skipped;
    /// a GOAWAY fails the expectation).
    fn expect_rst(&mut self, stream: u32, code: u32) {
        let (f, _) = self.until("RST_STREAM", |f| {
            assert!(f.kind != GOAWAY, "GOAWAY instead of a stream error: {f:?}");
            f.kind == RST_STREAM && f.stream == stream
        });
        assert_eq!(f.code(), code, "RST_STREAM code on stream {stream}");
    }

    /// The connection still answers a PING (§6.7).
    fn expect_alive(&mut self) {
        let token = 0x5eed_0000_0000_0001u64;
        assert!(self.send(&ping(token)), "proxy closed the connection");
        let (f, _) = self.until("PING ACK", |f| {
            assert!(f.kind != GOAWAY, "GOAWAY instead of a PING ACK: {f:?}");
            f.kind == PING && f.flags & ACK != 0
        });
        assert_eq!(f.payload, token.to_be_bytes());
    }

    /// A full gRPC call on this connection: response headers 200, the echoed body, trailers
    /// with grpc-status 0.
    fn roundtrip(&mut self, stream: u32) {
        let mut out = headers(stream, &request("/pkg.Echo/Unary"), false);
        out.extend(data(stream, &grpc_msg(b"raw"), true));
        assert!(self.send(&out));
        let mut body = Vec::new();
        let mut status = None;
        let (trailers, _) = self.until("trailers", |f| {
            assert!(f.kind != GOAWAY, "GOAWAY during a valid call: {f:?}");
            assert!(
                !(f.kind == RST_STREAM && f.stream == stream),
                "valid call reset: {f:?}"
            );
            if f.stream == stream && f.kind == DATA {
                body.extend_from_slice(&f.payload);
            }
            if f.stream == stream && f.kind == HEADERS && status.is_none() {
                status = f.field(":status").map(str::to_owned);
                return false;
            }
            f.stream == stream && f.kind == HEADERS
        });
        assert_eq!(status.as_deref(), Some("200"));
        assert_eq!(trailers.field("grpc-status"), Some("0"));
        assert!(trailers.flags & END_STREAM != 0);
        assert_eq!(body, grpc_msg(b"raw"));
    }
}

fn summary(frames: &[Frame]) -> Vec<String> {
    frames
        .iter()
        .map(|f| {
            format!(
                "type={} flags={:#x} stream={} len={}",
                f.kind,
                f.flags,
                f.stream,
                f.payload.len()
            )
        })
        .collect()
}

// ----- floods ----------------------------------------------------------------------------------

/// Rapid reset (CVE-2023-44487): HEADERS + RST_STREAM(CANCEL) for 100 streams in one write,
/// after one real call so the origin connection is warm and every request could be forwarded
/// at once (the costly case: work started upstream for each reset stream).
fn attack_rapid_reset(rig: &Rig) {
    let mut c = Raw::open(rig.addr);
    c.roundtrip(1);
    let before = rig.origin_requests.load(Ordering::SeqCst);
    let resets_before = rig.origin_resets.load(Ordering::SeqCst);
    // In batches of 4 pairs with short pauses, so the proxy handles them in separate reads and
    // forwards the early ones before the limit trips (one write would be refused as a whole).
    for batch in 0..25u32 {
        let mut out = Vec::new();
        for i in 1..=4u32 {
            let sid = 1 + 2 * (4 * batch + i);
            out.extend(headers(sid, &request("/pkg.Echo/Hang"), false));
            out.extend(rst(sid, CANCEL));
        }
        if !c.send(&out) {
            break;
        }
        std::thread::sleep(Duration::from_millis(3));
    }
    let (g, _) = c.expect_goaway(&[ENHANCE_YOUR_CALM]);
    let last = u32::from_be_bytes(g.payload[..4].try_into().unwrap());
    assert!(
        last <= 1 + 2 * 21,
        "GOAWAY last-stream-id {last}: the flood went on too long"
    );
    wait_limit(rig, "max_resets_per_window", 1);
    // Give any forwarded request time to reach the origin, then bound what it saw.
    std::thread::sleep(Duration::from_millis(200));
    let seen = rig.origin_requests.load(Ordering::SeqCst) - before;
    assert!(
        seen <= 21,
        "the origin saw {seen} requests of a reset flood"
    );
    // And every one it saw was cancelled: no work is left running upstream.
    let deadline = Instant::now() + WAIT;
    while rig.origin_resets.load(Ordering::SeqCst) - resets_before < seen {
        assert!(
            Instant::now() < deadline,
            "origin streams of the flood were never reset"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// SETTINGS flood (CVE-2019-9515): each one costs an ACK.
fn attack_settings_flood(rig: &Rig) {
    let mut c = Raw::open(rig.addr);
    let out: Vec<u8> = (0..40).flat_map(|_| settings(&[])).collect();
    c.send(&out);
    let (_, seen) = c.expect_goaway(&[ENHANCE_YOUR_CALM]);
    let acks = seen
        .iter()
        .filter(|f| f.kind == SETTINGS && f.flags & ACK != 0)
        .count();
    // Our handshake SETTINGS counts too (its ACK may be among these): at most 20 in all.
    assert!(
        acks <= 20,
        "{acks} SETTINGS acknowledged beyond max_settings_per_window"
    );
    assert!(
        acks >= 19,
        "only {acks} SETTINGS acknowledged below the limit"
    );
    wait_limit(rig, "max_settings_per_window", 1);
}

/// PING flood (CVE-2019-9512): exactly `max_pings_per_window` ACKs, echoing each payload in
/// order, then GOAWAY(ENHANCE_YOUR_CALM).
fn attack_ping_flood(rig: &Rig) {
    let mut c = Raw::open(rig.addr);
    let out: Vec<u8> = (0..40u64).flat_map(ping).collect();
    c.send(&out);
    let (_, seen) = c.expect_goaway(&[ENHANCE_YOUR_CALM]);
    let acks: Vec<u64> = seen
        .iter()
        .filter(|f| f.kind == PING && f.flags & ACK != 0)
        .map(|f| u64::from_be_bytes(f.payload[..].try_into().unwrap()))
        .collect();
    assert_eq!(
        acks,
        (0..20u64).collect::<Vec<_>>(),
        "PING ACKs before the GOAWAY"
    );
    wait_limit(rig, "max_pings_per_window", 1);
}

/// Empty DATA frames without END_STREAM (CVE-2019-9518) on an open stream.
fn attack_empty_data_flood(rig: &Rig) {
    let mut c = Raw::open(rig.addr);
    let mut out = headers(1, &request("/pkg.Echo/Hang"), false);
    for _ in 0..40 {
        out.extend(data(1, &[], false));
    }
    c.send(&out);
    c.expect_goaway(&[ENHANCE_YOUR_CALM]);
    wait_limit(rig, "max_empty_frames_per_window", 1);
}

/// Empty HEADERS frames (no END_STREAM), the other half of CVE-2019-9518: after a real request
/// on stream 1, empty header sections on the same stream (the first one resets the stream as
/// malformed trailers; the rest land on a reset stream and must still be counted).
fn attack_empty_headers_flood(rig: &Rig) {
    let mut c = Raw::open(rig.addr);
    let mut out = headers(1, &request("/pkg.Echo/Hang"), false);
    for _ in 0..40 {
        out.extend(headers(1, &[], false));
    }
    c.send(&out);
    c.expect_goaway(&[ENHANCE_YOUR_CALM]);
    wait_limit(rig, "max_empty_frames_per_window", 1);
}

/// CONTINUATION flood: a header block that never ends, in many small frames.
fn attack_continuation_flood(rig: &Rig) {
    let mut c = Raw::open(rig.addr);
    let req = request("/pkg.Echo/Unary");
    let mut out = frame(HEADERS, 0, 1, &req[..4]);
    for _ in 0..40 {
        out.extend(frame(CONTINUATION, 0, 1, &[0x40]));
    }
    c.send(&out);
    c.expect_goaway(&[ENHANCE_YOUR_CALM]);
    wait_limit(rig, "max_continuation_frames", 1);
}

/// A huge header block in few frames (bytes limit, not frame count).
fn attack_huge_header_block(rig: &Rig) {
    let mut c = Raw::open(rig.addr);
    let junk = vec![0x40u8; 4000];
    let mut out = frame(HEADERS, 0, 1, &junk);
    out.extend(frame(CONTINUATION, 0, 1, &junk));
    out.extend(frame(CONTINUATION, 0, 1, &junk));
    c.send(&out);
    c.expect_goaway(&[ENHANCE_YOUR_CALM]);
    wait_limit(rig, "max_header_block_bytes", 1);
}

/// A header list over max_header_list_size is a stream-level refusal (431 or RST_STREAM,
/// RFC 9113 §10.5.1); the connection stays usable.
fn attack_oversized_header_list(rig: &Rig) {
    let mut c = Raw::open(rig.addr);
    let big = "x".repeat(2000);
    let mut fields = grpc_fields("/pkg.Echo/Unary");
    fields.push(("x-big", &big));
    c.send(&headers(1, &block(&fields), true));
    let (f, _) = c.until("a 431 or RST_STREAM on stream 1", |f| {
        assert!(
            f.kind != GOAWAY,
            "GOAWAY for an oversized header list: {f:?}"
        );
        f.stream == 1 && (f.kind == HEADERS || f.kind == RST_STREAM)
    });
    if f.kind == HEADERS {
        assert_eq!(f.field(":status"), Some("431"));
    }
    c.expect_alive();
    c.roundtrip(3);
    // Many tiny fields: a small block whose list size is over the limit only because each
    // field counts 32 bytes of overhead (RFC 7541 §4.1): 60 × (3 + 0 + 32) = 2100 > 1024.
    let mut fields = grpc_fields("/pkg.Echo/Unary");
    fields.extend(std::iter::repeat_n(("x-a", ""), 60));
    let tiny = block(&fields);
    assert!(
        tiny.len() < 1024,
        "the block itself is small ({} bytes)",
        tiny.len()
    );
    c.send(&headers(5, &tiny, true));
    let (f, _) = c.until("a 431 or RST_STREAM on stream 5", |f| {
        assert!(
            f.kind != GOAWAY,
            "GOAWAY for an oversized header list: {f:?}"
        );
        f.stream == 5 && (f.kind == HEADERS || f.kind == RST_STREAM)
    });
    if f.kind == HEADERS {
        assert_eq!(f.field(":status"), Some("431"));
    }
    c.roundtrip(7);
    wait_limit(rig, "max_header_list_size", 2);
}

/// HPACK bomb (cf. CVE-2016-6581): one 3000-byte entry in the dynamic table, then a small
/// block that references it 500 times (1.5 MB of header list). The header list limit must
/// refuse it on its stream (431 / RST_STREAM), and the HPACK context must stay in step for
/// the next request.
fn attack_hpack_bomb(rig: &Rig) {
    let mut c = Raw::open(rig.addr);
    let value = "b".repeat(3000);
    let mut b1 = request("/pkg.Echo/Unary");
    b1.push(0x40); // literal with incremental indexing, new name (RFC 7541 §6.2.1)
    hpack_int(&mut b1, 7, 0, 6);
    b1.extend_from_slice(b"x-bomb");
    hpack_int(&mut b1, 7, 0, value.len());
    b1.extend_from_slice(value.as_bytes());
    let mut b2 = request("/pkg.Echo/Unary");
    b2.extend(std::iter::repeat_n(0x80 | 62, 500)); // indexed: the first dynamic entry
    for (sid, blk) in [(1, b1), (3, b2)] {
        c.send(&headers(sid, &blk, true));
        let (f, _) = c.until("a 431 or RST_STREAM", |f| {
            assert!(f.kind != GOAWAY, "GOAWAY for an HPACK bomb: {f:?}");
            f.stream == sid && (f.kind == HEADERS || f.kind == RST_STREAM)
        });
        if f.kind == HEADERS {
            assert_eq!(f.field(":status"), Some("431"), "stream {sid}");
        }
    }
    c.roundtrip(5);
    wait_limit(rig, "max_header_list_size", 2);
}

/// PRIORITY frames for thousands of idle streams (the priority-tree "resource loop",
/// CVE-2019-9513): deprecated priorities are ignored, so they cost nothing, open nothing
/// (§5.1: PRIORITY does not change an idle stream) and a lower stream id still opens.
fn attack_priority_churn(rig: &Rig) {
    let mut c = Raw::open(rig.addr);
    let out: Vec<u8> = (0..3000u32)
        .flat_map(|i| priority(3 + 2 * i, 1 + 2 * i))
        .collect();
    c.send(&out);
    c.expect_alive();
    c.roundtrip(1);
}

/// Streams beyond SETTINGS_MAX_CONCURRENT_STREAMS are refused (§5.1.2); after
/// `max_refused_streams` refusals the client is told to go away.
fn attack_refused_streams(rig: &Rig) {
    let mut c = Raw::open(rig.addr);
    let mut out = Vec::new();
    for sid in [1, 3, 5, 7] {
        out.extend(headers(sid, &request("/pkg.Echo/Hang"), false));
    }
    out.extend(headers(9, &request("/pkg.Echo/Hang"), false));
    c.send(&out);
    c.expect_rst(9, REFUSED_STREAM);
    c.expect_alive();
    let mut out = Vec::new();
    for sid in [11, 13, 15] {
        out.extend(headers(sid, &request("/pkg.Echo/Hang"), false));
    }
    c.send(&out);
    let (_, seen) = c.expect_goaway(&[ENHANCE_YOUR_CALM]);
    for sid in [11, 13] {
        assert!(
            seen.iter()
                .any(|f| f.kind == RST_STREAM && f.stream == sid && f.code() == REFUSED_STREAM),
            "stream {sid} not refused: {:?}",
            summary(&seen)
        );
    }
    wait_limit(rig, "max_concurrent_streams", 3);
    wait_limit(rig, "max_refused_streams", 1);
}

/// Requests the proxy refuses as malformed cost it a stream each: a flood of them must end
/// like a reset flood (the codec documents `max_resets_per_window` as counting "streams we
/// reset because of peer errors"; cf. CVE-2025-8671 "MadeYouReset").
fn attack_malformed_request_flood(rig: &Rig) {
    let mut c = Raw::open(rig.addr);
    let fields = vec![
        (":method", "POST"),
        (":scheme", "http"),
        (":authority", "a"),
    ];
    // One at a time (each answered before the next), so the concurrency limit never applies.
    let mut goaway = None;
    for i in 0..40u32 {
        let sid = 1 + 2 * i;
        if !c.send(&headers(sid, &block(&fields), true)) {
            break;
        }
        let (f, _) = c.until("RST_STREAM or GOAWAY", |f| {
            f.kind == GOAWAY || (f.kind == RST_STREAM && f.stream == sid)
        });
        if f.kind == GOAWAY {
            goaway = Some((sid, f.code()));
            break;
        }
        assert_eq!(f.code(), PROTOCOL_ERROR, "stream {sid}");
    }
    let Some((sid, code)) = goaway else {
        panic!("40 malformed requests in a row, each reset by the proxy, and no GOAWAY (max_resets_per_window = 20)");
    };
    assert_eq!(code, ENHANCE_YOUR_CALM);
    assert!(sid <= 1 + 2 * 21, "GOAWAY only at stream {sid}");
    c.expect_closed();
    wait_limit(rig, "max_resets_per_window", 1);
}

// ----- malformed frames: connection errors -----------------------------------------------------

/// Bytes sent after the handshake (with stream 1 open when `open1`), and the GOAWAY code(s)
/// RFC 9113 requires.
struct ConnCase {
    name: &'static str,
    open1: bool,
    bytes: Vec<u8>,
    codes: &'static [u32],
}

fn conn_cases() -> Vec<ConnCase> {
    let oversized = {
        let mut v = frame(DATA, 0, 1, &vec![0u8; 16385]);
        v.truncate(9 + 16385);
        v
    };
    let mut interleaved = frame(HEADERS, 0, 3, &request("/pkg.Echo/Unary")[..4]);
    interleaved.extend(ping(1));
    let mut reuse = headers(3, &request("/pkg.Echo/Hang"), false);
    reuse.extend(headers(1, &request("/pkg.Echo/Hang"), false));
    vec![
        ConnCase {
            name: "frame over SETTINGS_MAX_FRAME_SIZE (§4.2)",
            open1: true,
            bytes: oversized,
            codes: &[FRAME_SIZE_ERROR],
        },
        ConnCase {
            name: "DATA on stream 0 (§6.1)",
            open1: false,
            bytes: data(0, b"x", false),
            codes: &[PROTOCOL_ERROR],
        },
        ConnCase {
            name: "HEADERS on an even stream id (§5.1.1)",
            open1: false,
            bytes: headers(2, &request("/x"), true),
            codes: &[PROTOCOL_ERROR],
        },
        ConnCase {
            name: "HEADERS on a lower stream id (§5.1.1)",
            open1: false,
            bytes: reuse,
            codes: &[PROTOCOL_ERROR, STREAM_CLOSED],
        },
        ConnCase {
            name: "WINDOW_UPDATE 0 on the connection (§6.9)",
            open1: false,
            bytes: window_update(0, 0),
            codes: &[PROTOCOL_ERROR],
        },
        ConnCase {
            name: "connection window overflow (§6.9.1)",
            open1: false,
            bytes: window_update(0, 0x7fff_ffff),
            codes: &[FLOW_CONTROL_ERROR],
        },
        ConnCase {
            name: "invalid HPACK index 0 (§4.3)",
            open1: false,
            bytes: headers(1, &[0x80], true),
            codes: &[COMPRESSION_ERROR],
        },
        ConnCase {
            name: "HPACK index past the tables (§4.3)",
            open1: false,
            bytes: headers(1, &[0xff, 0x40], true),
            codes: &[COMPRESSION_ERROR],
        },
        ConnCase {
            name: "HPACK table size update above SETTINGS (§4.3)",
            open1: false,
            bytes: headers(1, &[0x3f, 0xe1, 0xff, 0x03], true),
            codes: &[COMPRESSION_ERROR],
        },
        ConnCase {
            name: "HPACK truncated string (§4.3)",
            open1: false,
            bytes: headers(1, &[0x00, 0x05, b'a'], true),
            codes: &[COMPRESSION_ERROR],
        },
        ConnCase {
            name: "HPACK table size update after a field (RFC 7541 §4.2)",
            open1: false,
            bytes: headers(1, &[0x00, 0x01, b'a', 0x01, b'b', 0x20], true),
            codes: &[COMPRESSION_ERROR],
        },
        ConnCase {
            name: "HPACK Huffman padding not all ones (RFC 7541 §5.2)",
            open1: false,
            bytes: headers(1, &[0x00, 0x81, 0x00, 0x01, b'b'], true),
            codes: &[COMPRESSION_ERROR],
        },
        ConnCase {
            name: "HPACK Huffman EOS in a string (RFC 7541 §5.2)",
            open1: false,
            bytes: headers(1, &[0x00, 0x84, 0xff, 0xff, 0xff, 0xff, 0x01, b'b'], true),
            codes: &[COMPRESSION_ERROR],
        },
        ConnCase {
            name: "SETTINGS_ENABLE_PUSH=2 (§6.5.2)",
            open1: false,
            bytes: settings(&[(2, 2)]),
            codes: &[PROTOCOL_ERROR],
        },
        ConnCase {
            name: "SETTINGS_INITIAL_WINDOW_SIZE=2^31 (§6.5.2)",
            open1: false,
            bytes: settings(&[(4, 0x8000_0000)]),
            codes: &[FLOW_CONTROL_ERROR],
        },
        ConnCase {
            name: "SETTINGS_MAX_FRAME_SIZE=100 (§6.5.2)",
            open1: false,
            bytes: settings(&[(5, 100)]),
            codes: &[PROTOCOL_ERROR],
        },
        ConnCase {
            name: "SETTINGS length 5 (§6.5)",
            open1: false,
            bytes: frame(SETTINGS, 0, 0, &[0; 5]),
            codes: &[FRAME_SIZE_ERROR],
        },
        ConnCase {
            name: "SETTINGS ACK with payload (§6.5)",
            open1: false,
            bytes: frame(SETTINGS, ACK, 0, &[0; 6]),
            codes: &[FRAME_SIZE_ERROR],
        },
        ConnCase {
            name: "SETTINGS on stream 1 (§6.5)",
            open1: false,
            bytes: frame(SETTINGS, 0, 1, &[]),
            codes: &[PROTOCOL_ERROR],
        },
        ConnCase {
            name: "PING length 7 (§6.7)",
            open1: false,
            bytes: frame(PING, 0, 0, &[0; 7]),
            codes: &[FRAME_SIZE_ERROR],
        },
        ConnCase {
            name: "PING on stream 1 (§6.7)",
            open1: false,
            bytes: frame(PING, 0, 1, &[0; 8]),
            codes: &[PROTOCOL_ERROR],
        },
        ConnCase {
            name: "GOAWAY on stream 1 (§6.8)",
            open1: false,
            bytes: frame(GOAWAY, 0, 1, &[0; 8]),
            codes: &[PROTOCOL_ERROR],
        },
        ConnCase {
            name: "PUSH_PROMISE from a client (§8.4)",
            open1: true,
            bytes: frame(PUSH_PROMISE, END_HEADERS, 1, &[0, 0, 0, 2]),
            codes: &[PROTOCOL_ERROR],
        },
        ConnCase {
            name: "CONTINUATION without HEADERS (§6.10)",
            open1: false,
            bytes: frame(CONTINUATION, END_HEADERS, 1, &[]),
            codes: &[PROTOCOL_ERROR],
        },
        ConnCase {
            name: "frame interleaved in a header block (§6.10)",
            open1: false,
            bytes: interleaved,
            codes: &[PROTOCOL_ERROR],
        },
        ConnCase {
            name: "DATA on an idle stream (§5.1)",
            open1: false,
            bytes: data(1, b"x", false),
            codes: &[PROTOCOL_ERROR],
        },
        ConnCase {
            name: "RST_STREAM on an idle stream (§6.4)",
            open1: false,
            bytes: rst(5, CANCEL),
            codes: &[PROTOCOL_ERROR],
        },
        ConnCase {
            name: "WINDOW_UPDATE on an idle stream (§5.1)",
            open1: false,
            bytes: window_update(5, 1),
            codes: &[PROTOCOL_ERROR],
        },
        ConnCase {
            name: "RST_STREAM on stream 0 (§6.4)",
            open1: false,
            bytes: rst(0, CANCEL),
            codes: &[PROTOCOL_ERROR],
        },
        ConnCase {
            name: "WINDOW_UPDATE length 3 (§6.9)",
            open1: false,
            bytes: frame(WINDOW_UPDATE, 0, 0, &[0, 0, 1]),
            codes: &[FRAME_SIZE_ERROR],
        },
        ConnCase {
            name: "PRIORITY on stream 0 (§6.3)",
            open1: false,
            bytes: frame(PRIORITY, 0, 0, &[0, 0, 0, 1, 15]),
            codes: &[PROTOCOL_ERROR],
        },
        ConnCase {
            name: "DATA padding longer than the payload (§6.1)",
            open1: true,
            bytes: frame(DATA, 0x8, 1, &[9, 1, 2]),
            codes: &[PROTOCOL_ERROR],
        },
        ConnCase {
            name: "HEADERS padding longer than the payload (§6.2)",
            open1: false,
            bytes: frame(HEADERS, END_HEADERS | 0x8, 1, &[200, 0x82]),
            codes: &[PROTOCOL_ERROR],
        },
        ConnCase {
            name: "RST_STREAM length 3 (§6.4)",
            open1: true,
            bytes: frame(RST_STREAM, 0, 1, &[0; 3]),
            codes: &[FRAME_SIZE_ERROR],
        },
    ]
}

fn attack_connection_errors(rig: &Rig) {
    for case in conn_cases() {
        let mut c = Raw::open(rig.addr);
        if case.open1 {
            c.send(&headers(1, &request("/pkg.Echo/Hang"), false));
        }
        c.send(&case.bytes);
        let (g, _) = c.until(case.name, |f| f.kind == GOAWAY);
        assert!(
            case.codes.contains(&g.code()),
            "{}: GOAWAY code {:#x} ({}), expected {:x?}",
            case.name,
            g.code(),
            String::from_utf8_lossy(&g.payload[8..]),
            case.codes
        );
        c.expect_closed();
    }
}

/// A peer that does not speak HTTP/2 at all (§3.4).
fn attack_bad_preface(rig: &Rig) {
    let mut c = Raw::tcp(rig.addr);
    c.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    c.expect_goaway(&[PROTOCOL_ERROR]);
    // A right preface followed by something other than SETTINGS (§3.4).
    let mut c = Raw::tcp(rig.addr);
    let mut out = PREFACE.to_vec();
    out.extend(ping(7));
    c.send(&out);
    c.expect_goaway(&[PROTOCOL_ERROR]);
}

// ----- malformed frames and requests: stream errors --------------------------------------------

/// Stream errors: RST_STREAM with the right code on the offending stream only; the connection
/// keeps answering and serves a valid call afterwards.
fn attack_stream_errors(rig: &Rig) {
    let mut c = Raw::open(rig.addr);
    let hang = request("/pkg.Echo/Hang");

    // §6.9: WINDOW_UPDATE of 0 on a stream is a stream error.
    c.send(&headers(1, &hang, false));
    c.send(&window_update(1, 0));
    c.expect_rst(1, PROTOCOL_ERROR);

    // §6.9.1: a stream send window above 2^31-1.
    c.send(&headers(3, &hang, false));
    c.send(&window_update(3, 0x7fff_ffff));
    c.expect_rst(3, FLOW_CONTROL_ERROR);

    // §5.3.1: a stream cannot depend on itself (PRIORITY frame, then HEADERS' priority).
    c.send(&headers(5, &hang, false));
    c.send(&priority(5, 5));
    c.expect_rst(5, PROTOCOL_ERROR);
    let mut p = 7u32.to_be_bytes().to_vec();
    p.push(15);
    p.extend(&hang);
    c.send(&frame(HEADERS, END_HEADERS | PRIORITY_FLAG, 7, &p));
    c.expect_rst(7, PROTOCOL_ERROR);

    // §6.9.1: DATA beyond the stream window we advertised (initial_stream_window = 65535).
    // The edge returns credit as the origin's window accepts bytes, so the most a client may
    // send is our window plus the origin's (65535, h2's default; the hanging origin reads
    // nothing): 9 frames of 16000 bytes exceed both whatever the timing.
    c.send(&headers(9, &hang, false));
    let mut burst = Vec::new();
    for _ in 0..9 {
        burst.extend(data(9, &[0u8; 16000], false));
    }
    c.send(&burst);
    c.expect_rst(9, FLOW_CONTROL_ERROR);

    // §5.1: DATA on a half-closed (remote) stream.
    c.send(&headers(11, &hang, true));
    c.send(&data(11, b"late", false));
    c.expect_rst(11, STREAM_CLOSED);

    // §8.1: a second header section without END_STREAM (trailers must end the stream).
    c.send(&headers(13, &hang, false));
    c.send(&headers(13, &block(&[("x-t", "1")]), false));
    c.expect_rst(13, PROTOCOL_ERROR);

    // §8.1.1: content-length must equal the DATA payload sum; an intermediary must not
    // forward such a request and treats it as a stream error PROTOCOL_ERROR.
    let mut fields = grpc_fields("/pkg.Echo/Unary");
    fields.push(("content-length", "3"));
    c.send(&headers(15, &block(&fields), false));
    c.send(&data(15, &grpc_msg(b"more than three"), true));
    c.expect_rst(15, PROTOCOL_ERROR);
    // And a content-length on HEADERS that carry END_STREAM (no content at all).
    let mut fields = grpc_fields("/pkg.Echo/Unary");
    fields.push(("content-length", "5"));
    c.send(&headers(19, &block(&fields), true));
    c.expect_rst(19, PROTOCOL_ERROR);

    // §6.3: a PRIORITY frame of another length than 5 is a stream error FRAME_SIZE_ERROR.
    c.send(&headers(21, &hang, false));
    c.send(&frame(PRIORITY, 0, 21, &[0, 0, 0, 1]));
    c.expect_rst(21, FRAME_SIZE_ERROR);

    c.expect_alive();
    c.roundtrip(23);
}

/// Malformed requests (RFC 9113 §8.1.1, §8.2, §8.3): stream error PROTOCOL_ERROR, connection
/// survives, nothing reaches the origin.
fn attack_malformed_requests(rig: &Rig) {
    let before = rig.origin_requests.load(Ordering::SeqCst);
    let mut c = Raw::open(rig.addr);
    let base = grpc_fields("/pkg.Echo/Unary");
    let with = |extra: (&'static str, &'static str)| {
        let mut f = base.clone();
        f.push(extra);
        f
    };
    let without = |name: &str| {
        base.iter()
            .copied()
            .filter(|(n, _)| *n != name)
            .collect::<Vec<_>>()
    };
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("uppercase header name", with(("X-Upper", "1"))),
        ("connection header", with(("connection", "keep-alive"))),
        ("keep-alive header", with(("keep-alive", "5"))),
        (
            "transfer-encoding header",
            with(("transfer-encoding", "chunked")),
        ),
        ("upgrade header", with(("upgrade", "h2c"))),
        ("te other than trailers", with(("te", "gzip"))),
        ("missing :path", without(":path")),
        ("missing :method", without(":method")),
        ("missing :scheme", without(":scheme")),
        ("empty :path", {
            let mut f = without(":path");
            f.insert(0, (":path", ""));
            f
        }),
        ("unknown pseudo-header", with((":protocol-x", "1"))),
        ("response pseudo-header", {
            let mut f = base.clone();
            f.insert(0, (":status", "200"));
            f
        }),
        ("duplicate :path", {
            let mut f = base.clone();
            f.insert(0, (":path", "/a"));
            f
        }),
        ("pseudo-header after a regular one", {
            let mut f = base.clone();
            f.push((":authority", "b"));
            f
        }),
        ("newline in a value", with(("x-v", "a\r\nb"))),
        ("NUL in a value", with(("x-v", "a\0b"))),
        (
            "host differing from :authority",
            with(("host", "other.test")),
        ),
        ("space in a name", with(("x y", "1"))),
    ];
    let mut sid = 1;
    for (name, fields) in &cases {
        c.send(&headers(sid, &block(fields), true));
        let (f, _) = c.until(name, |f| {
            assert!(
                f.kind != GOAWAY,
                "{name}: GOAWAY instead of a stream error: {f:?}"
            );
            f.stream == sid && (f.kind == RST_STREAM || f.kind == HEADERS)
        });
        assert!(
            f.kind == RST_STREAM && f.code() == PROTOCOL_ERROR,
            "{name}: expected RST_STREAM(PROTOCOL_ERROR), got {f:?}"
        );
        sid += 2;
    }
    c.expect_alive();
    c.roundtrip(sid);
    let forwarded = rig.origin_requests.load(Ordering::SeqCst) - before;
    assert_eq!(forwarded, 1, "malformed requests reached the origin");
    wait_limit(rig, "malformed_request", cases.len() as u64);
}

// ----- the tests -------------------------------------------------------------------------------

#[test]
fn rapid_reset_gets_enhance_your_calm_and_spares_the_origin() {
    let _g = serial();
    let rig = rig(SERVER);
    attack_rapid_reset(&rig);
    assert_healthy(&rig);
}

#[test]
fn settings_ping_and_empty_frame_floods_get_enhance_your_calm() {
    let _g = serial();
    let rig = rig(SERVER);
    attack_settings_flood(&rig);
    attack_ping_flood(&rig);
    attack_empty_data_flood(&rig);
    attack_empty_headers_flood(&rig);
    assert_healthy(&rig);
}

#[test]
fn continuation_floods_and_huge_header_blocks_get_enhance_your_calm() {
    let _g = serial();
    let rig = rig(SERVER);
    attack_continuation_flood(&rig);
    attack_huge_header_block(&rig);
    assert_healthy(&rig);
}

#[test]
fn oversized_header_list_is_refused_on_its_stream_only() {
    let _g = serial();
    let rig = rig(SERVER);
    attack_oversized_header_list(&rig);
    attack_hpack_bomb(&rig);
    attack_priority_churn(&rig);
    assert_healthy(&rig);
}

#[test]
fn streams_beyond_the_limit_are_refused_then_the_client_is_sent_away() {
    let _g = serial();
    let rig = rig(SERVER);
    attack_refused_streams(&rig);
    assert_healthy(&rig);
}

#[test]
fn malformed_frames_are_connection_errors_with_the_rfc_code() {
    let _g = serial();
    let rig = rig(SERVER);
    attack_bad_preface(&rig);
    attack_connection_errors(&rig);
    assert_healthy(&rig);
}

#[test]
fn stream_level_violations_reset_one_stream_and_the_connection_survives() {
    let _g = serial();
    let rig = rig(SERVER);
    attack_stream_errors(&rig);
    attack_malformed_requests(&rig);
    assert_healthy(&rig);
}

#[test]
fn a_flood_of_malformed_requests_ends_like_a_reset_flood() {
    let _g = serial();
    let rig = rig(SERVER);
    attack_malformed_request_flood(&rig);
    assert_healthy(&rig);
}

/// `[server]` keys for the idle-rule cases: the idle timeout is what the test waits for, and
/// long enough not to fire between accepting a connection and its first request however slow
/// the machine (that gap counts as idle too); the header timeout never interferes.
const IDLE_RULE: &str = "header_timeout_ms = 60000\nidle_timeout_ms = 3000";

#[test]
fn slowloris_clients_are_closed() {
    let _g = serial();
    // The header timeout fires first here; the idle timeout never interferes.
    let rig = rig("header_timeout_ms = 300\nidle_timeout_ms = 60000");

    // Connects and never sends a byte: GOAWAY after header_timeout_ms, then closed.
    let t0 = Instant::now();
    let mut c = Raw::tcp(rig.addr);
    c.expect_goaway(&[NO_ERROR]);
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(250),
        "closed after {took:?}, before the timeout"
    );
    wait_limit(&rig, "header_timeout", 1);

    // Handshake, then half a HEADERS frame, then nothing.
    let t0 = Instant::now();
    let mut c = Raw::open(rig.addr);
    c.send(&headers(1, &request("/pkg.Echo/Unary"), true)[..12]);
    c.expect_goaway(&[NO_ERROR]);
    assert!(t0.elapsed() >= Duration::from_millis(250));
    wait_limit(&rig, "header_timeout", 2);
    // (No well-behaved call here: a 300 ms header timeout could fire before its request.)
    drop(rig);

    // A served connection, then half a frame header and silence: the idle rule closes it. (A
    // 300 ms header timeout could fire before this call's request on a slow machine.)
    let rig = crate::rig(IDLE_RULE);
    let mut c = Raw::open(rig.addr);
    c.roundtrip(1);
    c.send(&[0, 0, 9]);
    c.expect_goaway(&[NO_ERROR]);

    assert_healthy(&rig);
}

/// A served connection that then dribbles one byte of a never-ending frame every 100 ms: the
/// bytes are not a frame, so they must not count as activity.
#[test]
fn a_client_trickling_a_partial_frame_is_closed_by_the_idle_rule() {
    let _g = serial();
    let rig = rig(IDLE_RULE);
    let mut c = Raw::open(rig.addr);
    c.roundtrip(1);
    // A DATA frame header announcing 16384 bytes on a closed stream, then its payload dribbled:
    // at least 100 ms a byte, so the dribble would last 30 s, ten times the idle timeout.
    let mut dribble = frame(DATA, 0, 1, &[0u8; 16384]);
    dribble.truncate(9 + 300);
    let t0 = Instant::now();
    let mut closed = false;
    for b in dribble.chunks(1) {
        if !c.send(b) {
            closed = true;
            break;
        }
        if let Some(f) = c.next(Instant::now() + Duration::from_millis(100)) {
            assert_eq!(f.kind, GOAWAY, "unexpected frame {f:?}");
            c.expect_closed();
            closed = true;
            break;
        }
        if c.eof {
            closed = true;
            break;
        }
    }
    assert!(
        closed,
        "a client dribbling a partial frame held the connection for {:?} (idle_timeout_ms = 3000)",
        t0.elapsed()
    );
    assert_healthy(&rig);
}

/// A client that never acknowledges our SETTINGS (§6.5.3) is sent away with SETTINGS_TIMEOUT.
#[test]
fn unacknowledged_settings_get_settings_timeout() {
    let _g = serial();
    // Long enough that the well-behaved client below (which acknowledges at once) is never
    // sent away on a slow machine.
    let ack_timeout = Duration::from_millis(3000);
    let rig = rig_with(
        SERVER,
        &format!("settings_ack_timeout_ms = {}\n", ack_timeout.as_millis()),
    );
    let t0 = Instant::now();
    let mut c = Raw::tcp(rig.addr);
    let mut hello = PREFACE.to_vec();
    hello.extend(settings(&[]));
    c.send(&hello);
    c.expect_goaway(&[SETTINGS_TIMEOUT]);
    assert!(
        t0.elapsed() >= ack_timeout - Duration::from_millis(50),
        "GOAWAY after {:?}, before the timeout",
        t0.elapsed()
    );
    assert_healthy(&rig);
}

/// Connections beyond `max_connections_per_shard` are closed right after accept and counted
/// (`connections_rejected_limit`); a freed slot serves again.
#[test]
fn connections_beyond_the_shard_limit_are_closed_at_accept() {
    let _g = serial();
    let rig = rig(&format!("{SERVER}\nmax_connections_per_shard = 4"));
    let mut held: Vec<Raw> = (0..4).map(|_| Raw::open(rig.addr)).collect();
    for c in &mut held {
        c.expect_alive();
    }
    let mut extra = Raw::tcp(rig.addr);
    extra.send(PREFACE);
    extra.expect_closed();
    let deadline = Instant::now() + WAIT;
    while rig.handle.metrics().connections_rejected_limit == 0 {
        assert!(
            Instant::now() < deadline,
            "connections_rejected_limit never moved"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Free a slot, and wait until the proxy has seen that connection end (counters are
    // published every 100 ms): until then a new connection is still over the limit.
    held.pop();
    let deadline = Instant::now() + WAIT;
    while rig.handle.metrics().connections_active >= 4 {
        assert!(
            Instant::now() < deadline,
            "the freed slot was never released"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_healthy(&rig);
}

#[test]
fn one_proxy_survives_every_attack_in_a_row() {
    let _g = serial();
    let rig = rig(SERVER);
    attack_rapid_reset(&rig);
    attack_settings_flood(&rig);
    attack_ping_flood(&rig);
    attack_empty_data_flood(&rig);
    attack_empty_headers_flood(&rig);
    attack_continuation_flood(&rig);
    attack_huge_header_block(&rig);
    attack_oversized_header_list(&rig);
    attack_hpack_bomb(&rig);
    attack_priority_churn(&rig);
    attack_refused_streams(&rig);
    attack_bad_preface(&rig);
    attack_connection_errors(&rig);
    attack_stream_errors(&rig);
    attack_malformed_requests(&rig);
    assert_healthy(&rig);
    // The counters are published every 100 ms: the last call's stream may still show for one
    // publication. A leaked stream never goes away.
    let deadline = Instant::now() + WAIT;
    loop {
        let m = rig.handle.metrics();
        if m.streams_active == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "streams leaked after the attacks: {m:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
