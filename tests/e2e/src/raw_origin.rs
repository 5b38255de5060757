//! `RawOrigin`: an origin built on the `h2` crate's server (and, for GOAWAY,
//! on hand-written frames) for behaviours tonic cannot produce: early
//! trailers followed by RST_STREAM(NO_ERROR), Trailers-Only answers, GOAWAY
//! with a chosen last-stream-id, REFUSED_STREAM, never answering, and a TLS
//! endpoint whose ALPN offers only `http/1.1`.
//!
//! Must not: share its runtime with the test's client side, or outlive its
//! handle (Drop stops its runtime and joins its thread).
//!
//! Invariant: every mode that "fails" a number of connections or streams
//! serves the later ones with the plain [`RawMode::Echo`] behaviour, so a
//! proxy's retry lands on a working origin.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use prost::Message;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{oneshot, Notify};

use crate::pb::{EchoRequest, EchoResponse, HelloReply, HelloRequest};
use crate::pki::LeafCert;

/// What the raw origin does with each connection / stream.
#[derive(Clone, Debug)]
pub enum RawMode {
    /// Reads the whole request, answers `:status 200`, one gRPC response per
    /// request message (`EchoRequest` → `EchoResponse` with the same payload;
    /// `SayHello` → `Hello NAME`) and `grpc-status: 0`.
    Echo,
    /// Right after the request HEADERS (before the request body ends):
    /// HEADERS(`:status 200`), then trailers (`grpc-status`, `grpc-message`),
    /// then RST_STREAM(NO_ERROR) — gRPC PROTOCOL-HTTP2.md allows a server to
    /// finish early this way, and the status must reach the client.
    EarlyTrailersThenReset {
        /// gRPC status code in the trailers.
        status: i32,
        /// `grpc-message` (percent-encoded on the wire).
        message: String,
        /// Pause between the trailers and the RST_STREAM. Zero is what gRPC
        /// servers do, but note: the `h2` 0.4 client (so tonic/hyper) fails
        /// the response with `Reset(NO_ERROR)` when the RST_STREAM arrives
        /// before the application polled the response; a short pause lets
        /// such a client read the status first.
        reset_after: Duration,
    },
    /// One HEADERS frame with END_STREAM carrying `:status 200`,
    /// `content-type`, `grpc-status` and `grpc-message`.
    TrailersOnly {
        /// gRPC status code.
        status: i32,
        /// `grpc-message` (percent-encoded on the wire).
        message: String,
    },
    /// On each of the first `connections` connections: answer the preface,
    /// and when the first HEADERS arrives send GOAWAY(`last_stream_id`,
    /// NO_ERROR) (RFC 9113 §6.8), then close after a short linger. Later
    /// connections are served as [`RawMode::Echo`].
    GoAway {
        /// Last-Stream-ID to announce (0 = no stream was processed).
        last_stream_id: u32,
        /// How many connections get the GOAWAY.
        connections: u64,
    },
    /// RST_STREAM(REFUSED_STREAM) for the first `streams` streams (RFC 9113
    /// §8.7: not processed, safe to retry), then [`RawMode::Echo`].
    RefuseStreams {
        /// How many streams are refused.
        streams: u64,
    },
    /// Never answers; records the RST_STREAM reason the peer sends.
    Hang,
}

/// What a [`RawOrigin`] observed.
#[derive(Clone, Debug, Default)]
pub struct RawRecord {
    /// TCP connections accepted.
    pub connections: u64,
    /// Failed TLS handshakes, with their error text.
    pub tls_failures: Vec<String>,
    /// Request heads seen: (`:path`, `:authority`, headers).
    pub requests: Vec<(String, Option<String>, http::HeaderMap)>,
    /// RST_STREAM reasons received from the peer (as u32 error codes).
    pub resets_received: Vec<u32>,
    /// GOAWAY frames sent.
    pub goaways_sent: u64,
    /// Streams refused with REFUSED_STREAM.
    pub refused: u64,
    /// Early-trailers answers sent while the request body was still open.
    pub early_trailers_before_body_end: u64,
    /// Streams answered with an OK echo.
    pub echoed: u64,
}

#[derive(Debug, Default)]
struct Shared {
    rec: Mutex<RawRecord>,
    changed: Notify,
}

impl Shared {
    fn update(&self, f: impl FnOnce(&mut RawRecord)) {
        {
            let mut r = self.rec.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut r);
        }
        self.changed.notify_waiters();
    }

    fn snapshot(&self) -> RawRecord {
        self.rec.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// A running raw origin; stops when dropped.
#[derive(Debug)]
pub struct RawOrigin {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[derive(Clone, Debug)]
enum Kind {
    H2 {
        mode: RawMode,
        tls: Option<Arc<rustls::ServerConfig>>,
    },
    Http11Only(Arc<rustls::ServerConfig>),
}

impl RawOrigin {
    /// Starts an h2 origin in `mode`, cleartext (h2c prior knowledge) or TLS
    /// with ALPN `h2` when `tls` is given.
    pub fn start(mode: RawMode, tls: Option<&LeafCert>) -> RawOrigin {
        let tls = tls.map(|l| Arc::new(l.server_config(&[b"h2"])));
        Self::spawn(Kind::H2 { mode, tls })
    }

    /// Starts a TLS endpoint whose ALPN offers only `http/1.1`: a client
    /// requiring `h2` fails the handshake (rustls sends
    /// `no_application_protocol`); one that negotiates http/1.1 gets a 505.
    pub fn http11_only_tls(leaf: &LeafCert) -> RawOrigin {
        Self::spawn(Kind::Http11Only(Arc::new(
            leaf.server_config(&[b"http/1.1"]),
        )))
    }

    fn spawn(kind: Kind) -> RawOrigin {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind raw origin");
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let addr = listener.local_addr().expect("raw origin address");
        let shared = Arc::new(Shared::default());
        let (tx, rx) = oneshot::channel::<()>();
        let sh = shared.clone();
        let thread = std::thread::Builder::new()
            .name("e2e-raw-origin".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("raw origin runtime");
                rt.block_on(async move {
                    let l = tokio::net::TcpListener::from_std(listener).expect("adopt listener");
                    tokio::select! {
                        _ = accept_loop(l, kind, sh) => {}
                        _ = rx => {}
                    }
                });
            })
            .expect("spawn raw origin thread");
        RawOrigin {
            addr,
            shared,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A copy of what was observed so far.
    pub fn record(&self) -> RawRecord {
        self.shared.snapshot()
    }

    /// Waits (at most `limit`) until `pred` holds on the record; returns whether it did.
    pub async fn wait_for(&self, limit: Duration, pred: impl Fn(&RawRecord) -> bool) -> bool {
        let fut = async {
            loop {
                let notified = self.shared.changed.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if pred(&self.shared.snapshot()) {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(limit, fut).await.is_ok()
    }
}

impl Drop for RawOrigin {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn accept_loop(l: tokio::net::TcpListener, kind: Kind, shared: Arc<Shared>) {
    let streams = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut conn_index: u64 = 0;
    loop {
        let Ok((sock, _)) = l.accept().await else {
            // E.g. EMFILE: back off instead of spinning.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = sock.set_nodelay(true);
        shared.update(|r| r.connections += 1);
        let idx = conn_index;
        conn_index += 1;
        let kind = kind.clone();
        let shared = shared.clone();
        let streams = streams.clone();
        tokio::spawn(async move {
            match kind {
                Kind::Http11Only(cfg) => http11_only(sock, cfg, &shared).await,
                Kind::H2 { mode, tls: None } => serve_h2(sock, mode, idx, streams, shared).await,
                Kind::H2 {
                    mode,
                    tls: Some(cfg),
                } => match tokio_rustls::TlsAcceptor::from(cfg).accept(sock).await {
                    Ok(tls) => serve_h2(tls, mode, idx, streams, shared).await,
                    Err(e) => shared.update(|r| r.tls_failures.push(e.to_string())),
                },
            }
        });
    }
}

async fn http11_only(sock: tokio::net::TcpStream, cfg: Arc<rustls::ServerConfig>, shared: &Shared) {
    match tokio_rustls::TlsAcceptor::from(cfg).accept(sock).await {
        Ok(mut tls) => {
            let _ = tls
                .write_all(b"HTTP/1.1 505 HTTP Version Not Supported\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                .await;
            let _ = tls.shutdown().await;
        }
        Err(e) => shared.update(|r| r.tls_failures.push(e.to_string())),
    }
}

async fn serve_h2<IO>(
    io: IO,
    mode: RawMode,
    conn_index: u64,
    streams: Arc<std::sync::atomic::AtomicU64>,
    shared: Arc<Shared>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    if let RawMode::GoAway {
        last_stream_id,
        connections,
    } = mode
    {
        if conn_index < connections {
            let _ = raw_goaway(io, last_stream_id, &shared).await;
            return;
        }
    }
    let Ok(mut conn) = h2::server::handshake(io).await else {
        return;
    };
    while let Some(accepted) = conn.accept().await {
        let Ok((req, respond)) = accepted else {
            break;
        };
        let index = streams.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        shared.update(|r| {
            r.requests.push((
                req.uri().path().to_string(),
                req.uri().authority().map(|a| a.to_string()),
                req.headers().clone(),
            ))
        });
        let shared = shared.clone();
        let mode = mode.clone();
        tokio::spawn(async move {
            let _ = handle_stream(req, respond, mode, index, &shared).await;
        });
    }
}

/// A gRPC response head; with `Some((code, message))` it is a Trailers-Only
/// head (the caller sends it with END_STREAM).
fn grpc_head(status_and_message: Option<(i32, &str)>) -> http::Response<()> {
    let mut b = http::Response::builder()
        .status(200)
        .header("content-type", "application/grpc");
    if let Some((code, msg)) = status_and_message {
        b = b
            .header("grpc-status", code.to_string())
            .header("grpc-message", percent_encode(msg));
    }
    b.body(()).expect("valid response head")
}

fn grpc_trailers(code: i32, msg: &str) -> http::HeaderMap {
    let mut t = http::HeaderMap::new();
    t.insert("grpc-status", code.to_string().parse().expect("digits"));
    if !msg.is_empty() {
        t.insert(
            "grpc-message",
            percent_encode(msg).parse().expect("encoded ascii"),
        );
    }
    t
}

async fn handle_stream(
    req: http::Request<h2::RecvStream>,
    mut respond: h2::server::SendResponse<Bytes>,
    mode: RawMode,
    index: u64,
    shared: &Shared,
) -> Result<(), h2::Error> {
    match mode {
        RawMode::EarlyTrailersThenReset {
            status,
            message,
            reset_after,
        } => {
            let body_open = !req.body().is_end_stream();
            let mut send = respond.send_response(grpc_head(None), false)?;
            send.send_trailers(grpc_trailers(status, &message))?;
            if body_open {
                shared.update(|r| r.early_trailers_before_body_end += 1);
            }
            if !reset_after.is_zero() {
                tokio::time::sleep(reset_after).await;
            }
            send.send_reset(h2::Reason::NO_ERROR);
            // Keep the request body alive until the reset is queued.
            drop(req);
            Ok(())
        }
        RawMode::TrailersOnly { status, message } => {
            respond.send_response(grpc_head(Some((status, &message))), true)?;
            Ok(())
        }
        RawMode::RefuseStreams { streams } if index < streams => {
            respond.send_reset(h2::Reason::REFUSED_STREAM);
            shared.update(|r| r.refused += 1);
            Ok(())
        }
        RawMode::Hang => {
            let reason = std::future::poll_fn(|cx| respond.poll_reset(cx)).await?;
            shared.update(|r| r.resets_received.push(u32::from(reason)));
            drop(req);
            Ok(())
        }
        RawMode::Echo | RawMode::RefuseStreams { .. } | RawMode::GoAway { .. } => {
            echo(req, respond, shared).await
        }
    }
}

async fn echo(
    req: http::Request<h2::RecvStream>,
    mut respond: h2::server::SendResponse<Bytes>,
    shared: &Shared,
) -> Result<(), h2::Error> {
    let is_hello = req.uri().path().ends_with("/SayHello");
    let mut body = req.into_body();
    let mut buf = BytesMut::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk?;
        let _ = body.flow_control().release_capacity(chunk.len());
        buf.extend_from_slice(&chunk);
    }
    let mut out = BytesMut::new();
    let mut seq = 0u32;
    let mut bad = false;
    for msg in grpc_messages(buf.freeze()) {
        match msg {
            Some(m) if is_hello => match HelloRequest::decode(m) {
                Ok(h) => encode_grpc_into(
                    &HelloReply {
                        message: format!("Hello {}", h.name),
                    },
                    &mut out,
                ),
                Err(_) => bad = true,
            },
            Some(m) => match EchoRequest::decode(m) {
                Ok(e) => {
                    encode_grpc_into(
                        &EchoResponse {
                            payload: e.payload,
                            seq,
                        },
                        &mut out,
                    );
                    seq += 1;
                }
                Err(_) => bad = true,
            },
            None => bad = true,
        }
    }
    if bad {
        respond.send_response(
            grpc_head(Some((13, "raw origin: undecodable request"))),
            true,
        )?;
        return Ok(());
    }
    let mut send = respond.send_response(grpc_head(None), false)?;
    if !out.is_empty() {
        send.send_data(out.freeze(), false)?;
    }
    send.send_trailers(grpc_trailers(0, ""))?;
    shared.update(|r| r.echoed += 1);
    Ok(())
}

/// Splits a gRPC body into its length-prefixed messages (gRPC
/// PROTOCOL-HTTP2.md: 1-byte compressed flag, 4-byte big-endian length).
/// A compressed or truncated message yields `None`.
pub fn grpc_messages(mut body: Bytes) -> Vec<Option<Bytes>> {
    let mut out = Vec::new();
    while !body.is_empty() {
        if body.len() < 5 {
            out.push(None);
            break;
        }
        let compressed = body[0];
        let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
        if compressed != 0 || body.len() - 5 < len {
            out.push(None);
            break;
        }
        body.advance(5);
        out.push(Some(body.split_to(len)));
    }
    out
}

/// Appends `msg` as one uncompressed length-prefixed gRPC message.
pub fn encode_grpc_into(msg: &impl Message, out: &mut BytesMut) {
    let len = msg.encoded_len();
    out.reserve(5 + len);
    out.put_u8(0);
    out.put_u32(len as u32);
    msg.encode(out).expect("reserved capacity");
}

/// One length-prefixed gRPC message.
pub fn encode_grpc(msg: &impl Message) -> Bytes {
    let mut b = BytesMut::new();
    encode_grpc_into(msg, &mut b);
    b.freeze()
}

/// Percent-encodes a `grpc-message` (gRPC PROTOCOL-HTTP2.md: bytes outside
/// 0x20–0x7E and `%` itself become `%XX`).
pub fn percent_encode(msg: &str) -> String {
    let mut s = String::with_capacity(msg.len());
    for b in msg.bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

const FRAME_SETTINGS: u8 = 0x4;
const FRAME_HEADERS: u8 = 0x1;
const FRAME_GOAWAY: u8 = 0x7;

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(9 + payload.len());
    let len = payload.len() as u32;
    f.extend_from_slice(&len.to_be_bytes()[1..]);
    f.push(kind);
    f.push(flags);
    f.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// Minimal hand-written HTTP/2 server side: sends an empty SETTINGS, ACKs the
/// client's SETTINGS, and on the first HEADERS sends GOAWAY(last_stream_id,
/// NO_ERROR), lingers briefly, and closes (RFC 9113 §3.4, §6.5, §6.8).
async fn raw_goaway<IO>(mut io: IO, last_stream_id: u32, shared: &Shared) -> std::io::Result<()>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    io.write_all(&frame(FRAME_SETTINGS, 0, 0, &[])).await?;
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let mut preface_seen = false;
    loop {
        if !preface_seen {
            if buf.len() >= PREFACE.len() {
                if &buf[..PREFACE.len()] != PREFACE {
                    return Ok(());
                }
                buf.advance(PREFACE.len());
                preface_seen = true;
                continue;
            }
        } else if buf.len() >= 9 {
            let len =
                (usize::from(buf[0]) << 16) | (usize::from(buf[1]) << 8) | usize::from(buf[2]);
            if buf.len() >= 9 + len {
                let kind = buf[3];
                let flags = buf[4];
                buf.advance(9 + len);
                if kind == FRAME_SETTINGS && flags & 0x1 == 0 {
                    io.write_all(&frame(FRAME_SETTINGS, 0x1, 0, &[])).await?;
                } else if kind == FRAME_HEADERS {
                    let mut p = Vec::with_capacity(8);
                    p.extend_from_slice(&(last_stream_id & 0x7fff_ffff).to_be_bytes());
                    p.extend_from_slice(&0u32.to_be_bytes());
                    io.write_all(&frame(FRAME_GOAWAY, 0, 0, &p)).await?;
                    io.flush().await?;
                    shared.update(|r| r.goaways_sent += 1);
                    // Let the peer read the GOAWAY before the close.
                    let _ = tokio::time::timeout(Duration::from_millis(200), async {
                        let mut sink = [0u8; 4096];
                        while let Ok(n) = io.read(&mut sink).await {
                            if n == 0 {
                                break;
                            }
                        }
                    })
                    .await;
                    let _ = io.shutdown().await;
                    return Ok(());
                }
                continue;
            }
        }
        let n = io.read_buf(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
    }
}
