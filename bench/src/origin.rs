//! `ringedge-bench origin`: a fast gRPC test origin on the engine's own shards, TLS and codec.
//!
//! What it serves, for any method path:
//! - **unary** (default): answers once the request ended. `/helloworld.Greeter/SayHello` (or any
//!   method) whose request decodes as a `HelloRequest` gets `HelloReply { message: "Hello " +
//!   name }`; anything else is echoed as is. `--response-size N` answers N bytes instead.
//! - **server-streaming** (`x-call: server-stream`, or an `x-responses: N` header, or a method
//!   name containing `ServerStream`): after the request ended, N responses (`x-responses`,
//!   default 1), each the unary answer.
//! - **client-streaming** (`x-call: client-stream` or a method containing `ClientStream`): one
//!   answer after END_STREAM, a `HelloReply` whose message reports the count and bytes received.
//! - **bidi** (`x-call: bidi` or a method containing `Bidi`): echoes each complete
//!   Length-Prefixed-Message as soon as it arrived (found with the codec's [`MessageWalker`]),
//!   trailers after the request ended.
//! - **status injection**: `--status`/`--message`, or per request `x-status`/`x-message`: a
//!   non-zero status is answered as Trailers-Only when the request ended.
//! - **early trailers** (`--early-trailers-reset`, or per request `x-early-trailers: 1`): as soon
//!   as the request HEADERS arrive, response HEADERS then trailers (the configured status), then
//!   RST_STREAM(NO_ERROR) while the request body may still be coming (gRPC PROTOCOL-HTTP2.md:
//!   a server may end the call before the client finished; clients must keep the status).
//! - **delay** (`--delay D`): unary, server- and client-streaming answers wait D (shard timer);
//!   bidi echoes are not delayed.
//!
//! What it must not do: be the bottleneck. One task per connection ([`crate::net::driver`]),
//! receive credit released as soon as a DATA payload was taken (copied only when a message spans
//! several frames), a fixed response body shared by reference, static response headers.
//!
//! Invariants: per-stream state is dropped when both sides ended or the stream was reset; a
//! stream's response DATA that flow control did not accept is queued on the stream and resumed
//! on [`Event::SendCapacity`]; trailers follow only after all queued DATA.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::Context;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use ringedge::io::Transport;
use ringedge_codec::conn::{ConnConfig, Connection, Event, HeadersKind, Role};
use ringedge_codec::frame::{ErrorCode, StreamId};
use ringedge_codec::grpc::{self, Code, MessageWalker, WalkEvent};
use ringedge_codec::hpack::{FieldRef, HeaderField};
use ringedge_rt::{ConnectionLimit, CpuSelection, Listener, ShardSet, ShardsConfig, TcpStream};
use ringedge_tls::{ServerTlsConfig, TlsSession};

use crate::args::{CallKind, OriginOptions};
use crate::net::driver::{self, End, Session, Work};
use crate::net::msg;
use crate::net::streams::{stream_map, StreamMap};

/// TLS handshake limit per accepted connection.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections per shard.
pub const MAX_CONNECTIONS_PER_SHARD: usize = 10_000;
/// Listen backlog per shard socket.
pub const BACKLOG: i32 = 4096;
/// Most responses one server-streaming call may ask for with `x-responses`.
pub const MAX_RESPONSES: u32 = 1_000_000;
/// Largest request message the origin accepts (the walker's limit; larger → RESOURCE_EXHAUSTED).
pub const MAX_REQUEST_MESSAGE: u32 = 64 << 20;

/// HTTP/2 settings of the origin: generous windows so flow control never limits a benchmark,
/// and reset/ping limits loose enough for a load generator that cancels calls.
pub fn origin_h2_config() -> ConnConfig {
    ConnConfig {
        max_concurrent_streams: 1024,
        initial_stream_window: 1 << 20,
        connection_window: 16 << 20,
        max_resets_per_window: 100_000,
        max_refused_streams: 10_000,
        max_pending_output: 64 << 20,
        max_closed_streams: 512,
        ..ConnConfig::default()
    }
    .normalized()
}

/// Why the origin could not start.
#[derive(Debug)]
pub enum OriginError {
    /// The certificate or key could not be loaded.
    Tls(ringedge_tls::TlsError),
    /// The listen address could not be bound (or its port resolved).
    Bind(SocketAddr, std::io::Error),
    /// Shards could not start.
    Runtime(ringedge_rt::RtError),
}

impl std::fmt::Display for OriginError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OriginError::Tls(e) => write!(f, "origin TLS: {e}"),
            OriginError::Bind(a, e) => write!(f, "origin cannot listen on {a}: {e}"),
            OriginError::Runtime(e) => write!(f, "origin shards: {e}"),
        }
    }
}

impl std::error::Error for OriginError {}

/// A running origin.
#[derive(Debug)]
pub struct OriginHandle {
    shards: Option<ShardSet<()>>,
    stop: Arc<AtomicBool>,
    addr: SocketAddr,
}

impl OriginHandle {
    /// The bound address (the real port when 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, drops every connection and waits for the shards to end.
    pub fn stop(mut self) {
        self.stop_inner();
    }

    /// Waits until the shards end (never, unless stopped from elsewhere).
    pub fn join(mut self) {
        if let Some(s) = self.shards.take() {
            let _ = s.join();
        }
    }

    fn stop_inner(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(s) = self.shards.take() {
            let _ = s.join();
        }
    }
}

impl Drop for OriginHandle {
    fn drop(&mut self) {
        self.stop_inner();
    }
}

/// What every connection of the origin shares (per shard, `!Send`).
#[derive(Debug)]
struct Shared {
    /// The framed `--response-size` body, if any (shared by reference by every response).
    fixed_body: Option<Bytes>,
    delay: Duration,
    status: u32,
    /// Percent-encoded `--message`.
    message: Option<Bytes>,
    early: bool,
    h2: ConnConfig,
}

/// Resolves port 0 to one port every shard binds: a SO_REUSEPORT socket bound but not
/// listening (so it never takes connections) is held until every shard has bound.
fn resolve_port(addr: SocketAddr) -> Result<(SocketAddr, Option<socket2::Socket>), OriginError> {
    if addr.port() != 0 {
        return Ok((addr, None));
    }
    let probe = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )
    .and_then(|s| {
        s.set_reuse_address(true)?;
        s.set_reuse_port(true)?;
        s.bind(&addr.into())?;
        Ok(s)
    })
    .map_err(|e| OriginError::Bind(addr, e))?;
    let bound = probe
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .ok_or_else(|| OriginError::Bind(addr, std::io::Error::other("no local address")))?;
    Ok((bound, Some(probe)))
}

/// Starts the origin on `opts.shards` shards and returns once every shard listens.
pub fn start(opts: &OriginOptions) -> Result<OriginHandle, OriginError> {
    let tls = match &opts.tls {
        None => None,
        Some((cert, key)) => Some(
            ServerTlsConfig::builder()
                .add_cert_files(&["localhost"], cert, key)
                .and_then(|b| b.build())
                .map_err(OriginError::Tls)?,
        ),
    };
    let (addr, probe) = resolve_port(opts.listen)?;
    let stop = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), ringedge_rt::RtError>>();
    let opts = Arc::new(opts.clone());
    let shard_stop = Arc::clone(&stop);
    let shards = ShardSet::start(
        ShardsConfig {
            cpus: CpuSelection::Count(opts.shards as usize),
            name: "origin".to_owned(),
            ..ShardsConfig::default()
        },
        move |_ctx| {
            let opts = Arc::clone(&opts);
            let stop = Arc::clone(&shard_stop);
            let tls = tls.clone();
            let ready = ready_tx.clone();
            async move { run_shard(addr, &opts, tls, stop, ready).await }
        },
    )
    .map_err(OriginError::Runtime)?;
    let mut handle = OriginHandle {
        shards: Some(shards),
        stop,
        addr,
    };
    let n = handle.shards.as_ref().map_or(0, |s| s.cpus().len());
    for _ in 0..n {
        match ready_rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                handle.stop_inner();
                return Err(OriginError::Runtime(e));
            }
            Err(_) => {
                handle.stop_inner();
                return Err(OriginError::Runtime(ringedge_rt::RtError::InvalidConfig(
                    "origin shard did not report ready in 10 s".to_owned(),
                )));
            }
        }
    }
    drop(probe);
    Ok(handle)
}

/// Runs the origin until the process is killed (the `origin` subcommand).
pub fn run(opts: &OriginOptions) -> Result<(), OriginError> {
    let h = start(opts)?;
    let scheme = if opts.tls.is_some() { "https" } else { "h2c" };
    println!(
        "ringedge-bench origin listening on {scheme}://{} ({} shard(s))",
        h.local_addr(),
        opts.shards
    );
    h.join();
    Ok(())
}

async fn run_shard(
    addr: SocketAddr,
    opts: &OriginOptions,
    tls: Option<ServerTlsConfig>,
    stop: Arc<AtomicBool>,
    ready: std::sync::mpsc::Sender<Result<(), ringedge_rt::RtError>>,
) {
    let listener = match Listener::bind(addr, BACKLOG) {
        Ok(l) => l,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let _ = ready.send(Ok(()));
    drop(ready);
    let shared = Rc::new(Shared {
        fixed_body: opts
            .response_size
            .map(|n| msg::framed(&msg::hello_request_of_size(n))),
        delay: opts.delay,
        status: opts.status,
        message: opts.message.as_deref().map(grpc::percent_encode_message),
        early: opts.early_trailers_reset,
        h2: origin_h2_config(),
    });
    let tls = tls.map(Rc::new);
    let accept = ringedge_rt::spawn(ringedge_rt::serve(
        listener,
        ConnectionLimit::new(MAX_CONNECTIONS_PER_SHARD),
        move |tcp, _peer| serve_connection(tcp, tls.clone(), Rc::clone(&shared)),
    ));
    while !stop.load(Ordering::Relaxed) {
        ringedge_rt::sleep(Duration::from_millis(50)).await;
    }
    drop(accept);
}

async fn serve_connection(tcp: TcpStream, tls: Option<Rc<ServerTlsConfig>>, shared: Rc<Shared>) {
    let t = match tls {
        None => Transport::plain(tcp),
        Some(cfg) => {
            let hs = Transport::handshake(tcp, TlsSession::server(&cfg));
            match ringedge_rt::timeout(HANDSHAKE_TIMEOUT, hs).await {
                Ok(Ok(t)) => t,
                _ => return,
            }
        }
    };
    let h2 = Connection::new(Role::Server, shared.h2.clone(), ringedge_rt::now());
    let mut session = OriginSession {
        shared,
        streams: stream_map(),
        replies: ReplyCache::default(),
        timers: VecDeque::new(),
    };
    driver::drive(t, h2, &mut session).await;
}

/// One request stream on the origin.
#[derive(Debug)]
struct OStream {
    kind: CallKind,
    responses: u32,
    status: u32,
    message: Option<Bytes>,
    path_is_hello: bool,
    walker: MessageWalker,
    /// The message being assembled: a view while it fits one DATA frame, else a copy.
    cur_view: Option<Bytes>,
    cur_copy: BytesMut,
    /// The last complete request message.
    last: Bytes,
    count: u64,
    bytes: u64,
    headers_sent: bool,
    /// Response DATA not yet accepted by flow control.
    out: VecDeque<Bytes>,
    /// Trailers to send once `out` is empty.
    trailers_due: bool,
    local_done: bool,
    remote_done: bool,
    /// A response is waiting for its delay.
    delayed: bool,
}

struct OriginSession {
    shared: Rc<Shared>,
    streams: StreamMap<OStream>,
    /// The last answer built, reused while requests repeat (a load generator sends the same
    /// message again and again): saves two allocations and the encoding per call.
    replies: ReplyCache,
    /// (when, stream) of delayed answers; FIFO because the delay is constant.
    timers: VecDeque<(Instant, StreamId)>,
}

const RESPONSE_HEADERS: [FieldRef<'static>; 2] = [
    FieldRef {
        name: b":status",
        value: b"200",
        sensitive: false,
    },
    FieldRef {
        name: b"content-type",
        value: b"application/grpc",
        sensitive: false,
    },
];

const TRAILERS_OK: [FieldRef<'static>; 1] = [FieldRef {
    name: b"grpc-status",
    value: b"0",
    sensitive: false,
}];

/// The request fields the origin acts on, found in one pass over the header list (the first
/// occurrence of each wins).
#[derive(Default)]
struct Controls<'a> {
    path: Option<&'a [u8]>,
    call: Option<&'a [u8]>,
    responses: Option<&'a [u8]>,
    status: Option<&'a [u8]>,
    message: Option<&'a [u8]>,
    early_trailers: Option<&'a [u8]>,
}

impl<'a> Controls<'a> {
    fn of(fields: &'a [HeaderField]) -> Controls<'a> {
        let mut c = Controls::default();
        for f in fields {
            let slot = match &f.name[..] {
                b":path" => &mut c.path,
                b"x-call" => &mut c.call,
                b"x-responses" => &mut c.responses,
                b"x-status" => &mut c.status,
                b"x-message" => &mut c.message,
                b"x-early-trailers" => &mut c.early_trailers,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(&f.value[..]);
            }
        }
        c
    }
}

fn parse_u32(v: &[u8]) -> Option<u32> {
    std::str::from_utf8(v).ok()?.trim().parse().ok()
}

#[cfg(test)]
fn call_kind(fields: &[HeaderField], path: &[u8]) -> CallKind {
    call_kind_of(&Controls::of(fields), path)
}

fn call_kind_of(c: &Controls<'_>, path: &[u8]) -> CallKind {
    match c.call {
        Some(b"unary") => return CallKind::Unary,
        Some(b"server-stream") => return CallKind::ServerStream,
        Some(b"client-stream") => return CallKind::ClientStream,
        Some(b"bidi") => return CallKind::Bidi,
        _ => {}
    }
    if c.responses.is_some() {
        return CallKind::ServerStream;
    }
    let method = path.rsplit(|&b| b == b'/').next().unwrap_or(b"");
    let has = |s: &[u8]| method.windows(s.len()).any(|w| w == s);
    if has(b"ServerStream") {
        CallKind::ServerStream
    } else if has(b"ClientStream") {
        CallKind::ClientStream
    } else if has(b"Bidi") {
        CallKind::Bidi
    } else {
        CallKind::Unary
    }
}

impl OriginSession {
    fn on_headers(
        &mut self,
        h2: &mut Connection,
        id: StreamId,
        fields: Vec<HeaderField>,
        end: bool,
        now: Instant,
    ) {
        let c = Controls::of(&fields);
        let path = c.path.unwrap_or(b"");
        let kind = call_kind_of(&c, path);
        let responses = c
            .responses
            .and_then(parse_u32)
            .unwrap_or(1)
            .min(MAX_RESPONSES);
        let status = c
            .status
            .and_then(parse_u32)
            .filter(|s| *s <= 16)
            .unwrap_or(self.shared.status);
        let message = c
            .message
            .map(|m| grpc::percent_encode_message(&String::from_utf8_lossy(m)))
            .or_else(|| self.shared.message.clone());
        let early = self.shared.early || c.early_trailers == Some(b"1");
        let st = OStream {
            kind,
            responses,
            status,
            message,
            path_is_hello: path.ends_with(b"/SayHello"),
            walker: MessageWalker::new(grpc::WalkerLimits {
                max_message_size: MAX_REQUEST_MESSAGE,
            }),
            cur_view: None,
            cur_copy: BytesMut::new(),
            last: Bytes::new(),
            count: 0,
            bytes: 0,
            headers_sent: false,
            out: VecDeque::new(),
            trailers_due: false,
            local_done: false,
            remote_done: end,
            delayed: false,
        };
        self.streams.insert(id.get(), st);
        if early {
            // Early trailers: HEADERS, trailers, then RST_STREAM(NO_ERROR) if the request is
            // still open (RFC 9113 §8.1: a server may respond before the request ended).
            let st = self.streams.get_mut(&id.get()).expect("inserted");
            let _ = h2.send_headers(id, &RESPONSE_HEADERS, false);
            st.headers_sent = true;
            st.trailers_due = true;
            finish_stream(h2, id, st);
            if !st.remote_done {
                let _ = h2.send_reset(id, ErrorCode::NoError);
            }
            self.streams.remove(&id.get());
            return;
        }
        if end {
            self.request_ended(h2, id, now);
        }
    }

    fn on_data(&mut self, h2: &mut Connection, id: StreamId, data: Bytes, end: bool, now: Instant) {
        // Credit goes back at once: the payload is taken (a view, or copied below).
        h2.release_capacity(id, data.len());
        let Some(st) = self.streams.get_mut(&id.get()) else {
            return;
        };
        st.bytes += data.len() as u64;
        let mut completed: Vec<Bytes> = Vec::new();
        let bidi = st.kind == CallKind::Bidi;
        let res = {
            let OStream {
                walker,
                cur_view,
                cur_copy,
                last,
                ..
            } = st;
            walker.feed(data, |ev| match ev {
                WalkEvent::MessageStart { .. } => {}
                WalkEvent::Payload(p) => {
                    if cur_copy.is_empty() && cur_view.is_none() {
                        *cur_view = Some(p);
                    } else {
                        if let Some(v) = cur_view.take() {
                            cur_copy.extend_from_slice(&v);
                        }
                        cur_copy.extend_from_slice(&p);
                    }
                }
                WalkEvent::MessageEnd => {
                    let m = match cur_view.take() {
                        Some(v) => v,
                        None => cur_copy.split().freeze(),
                    };
                    if bidi {
                        completed.push(m.clone());
                    }
                    *last = m;
                }
            })
        };
        st.count = st.walker.messages_completed();
        if res.is_err() {
            // Malformed or oversized message: answer RESOURCE_EXHAUSTED / INTERNAL now.
            let code = match res {
                Err(grpc::GrpcError::MessageTooLarge { .. }) => Code::ResourceExhausted,
                _ => Code::Internal,
            };
            st.status = code.as_u32();
            st.remote_done = true;
            respond_status(h2, id, st);
            let _ = h2.send_reset(id, ErrorCode::NoError);
            self.streams.remove(&id.get());
            return;
        }
        for m in completed {
            let body = self.replies.get(&self.shared, st.path_is_hello, &m);
            if !st.headers_sent {
                let _ = h2.send_headers(id, &RESPONSE_HEADERS, false);
                st.headers_sent = true;
            }
            st.out.push_back(body);
        }
        pump(h2, id, st);
        if end {
            st.remote_done = true;
            self.request_ended(h2, id, now);
        }
    }

    fn request_ended(&mut self, h2: &mut Connection, id: StreamId, now: Instant) {
        let delay = self.shared.delay;
        let Some(st) = self.streams.get_mut(&id.get()) else {
            return;
        };
        st.remote_done = true;
        if !delay.is_zero() && st.kind != CallKind::Bidi {
            st.delayed = true;
            self.timers.push_back((now + delay, id));
            return;
        }
        self.respond(h2, id);
    }

    fn respond(&mut self, h2: &mut Connection, id: StreamId) {
        let shared = Rc::clone(&self.shared);
        let Some(st) = self.streams.get_mut(&id.get()) else {
            return;
        };
        st.delayed = false;
        if st.status != 0 {
            respond_status(h2, id, st);
        } else {
            match st.kind {
                CallKind::Unary | CallKind::ServerStream => {
                    let n = if st.kind == CallKind::Unary {
                        1
                    } else {
                        st.responses
                    };
                    let body = self.replies.get(&shared, st.path_is_hello, &st.last);
                    if !st.headers_sent {
                        let _ = h2.send_headers(id, &RESPONSE_HEADERS, false);
                        st.headers_sent = true;
                    }
                    for _ in 0..n {
                        st.out.push_back(body.clone());
                    }
                }
                CallKind::ClientStream => {
                    let body = match &shared.fixed_body {
                        Some(b) => b.clone(),
                        None => {
                            let text = format!(
                                "received {} messages, {} bytes",
                                st.count,
                                st.bytes.saturating_sub(5 * st.count)
                            );
                            let mut b = BytesMut::new();
                            let mut m = BytesMut::new();
                            msg::put_string_field1(&mut m, b"", text.as_bytes());
                            msg::put_framed(&mut b, &m);
                            b.freeze()
                        }
                    };
                    if !st.headers_sent {
                        let _ = h2.send_headers(id, &RESPONSE_HEADERS, false);
                        st.headers_sent = true;
                    }
                    st.out.push_back(body);
                }
                CallKind::Bidi => {
                    if !st.headers_sent {
                        let _ = h2.send_headers(id, &RESPONSE_HEADERS, false);
                        st.headers_sent = true;
                    }
                }
            }
            st.trailers_due = true;
            pump(h2, id, st);
        }
        if st.local_done && st.remote_done {
            self.streams.remove(&id.get());
        }
    }
}

/// The last (request message, method is `SayHello`) → framed answer, so a repeated request is
/// answered with a shared view of the same answer.
#[derive(Debug, Default)]
struct ReplyCache {
    last: Option<(Bytes, bool, Bytes)>,
}

impl ReplyCache {
    /// [`reply_body`] for `req`, from the cache when `req` and `hello_path` match the last one.
    fn get(&mut self, shared: &Shared, hello_path: bool, req: &Bytes) -> Bytes {
        if let Some((r, h, reply)) = &self.last {
            if *h == hello_path && r == req {
                return reply.clone();
            }
        }
        let reply = reply_body(shared, hello_path, req);
        // A copy: a view would keep the connection's whole receive buffer alive.
        self.last = Some((Bytes::copy_from_slice(req), hello_path, reply.clone()));
        reply
    }
}

/// The framed answer to request message `req`.
fn reply_body(shared: &Shared, hello_path: bool, req: &Bytes) -> Bytes {
    if let Some(b) = &shared.fixed_body {
        return b.clone();
    }
    let mut out = BytesMut::with_capacity(req.len() + 16);
    match msg::decode_string_field1(req) {
        // A HelloRequest (on SayHello, or any method when it decodes) gets a greeting.
        Some(name) if hello_path || !name.is_empty() => {
            let mut m = BytesMut::with_capacity(name.len() + 8);
            msg::put_string_field1(&mut m, b"Hello ", name);
            msg::put_framed(&mut out, &m);
        }
        _ => msg::put_framed(&mut out, req),
    }
    out.freeze()
}

/// Sends the status: Trailers-Only if no HEADERS went out yet, else trailers after the data.
fn respond_status(h2: &mut Connection, id: StreamId, st: &mut OStream) {
    let code = Code::from_u32(st.status).unwrap_or(Code::Unknown);
    let mut fields: Vec<FieldRef<'_>> = Vec::with_capacity(4);
    if !st.headers_sent {
        fields.extend_from_slice(&RESPONSE_HEADERS);
    }
    fields.push(FieldRef::new(
        b"grpc-status",
        code.as_status_str().as_bytes(),
    ));
    if let Some(m) = &st.message {
        fields.push(FieldRef::new(b"grpc-message", m));
    }
    if st.headers_sent {
        st.out.clear();
        let _ = h2.send_trailers(id, &fields);
    } else {
        let _ = h2.send_headers(id, &fields, true);
        st.headers_sent = true;
    }
    st.local_done = true;
}

/// Sends queued DATA as flow control allows, then the trailers when due.
fn pump(h2: &mut Connection, id: StreamId, st: &mut OStream) {
    while let Some(front) = st.out.front_mut() {
        match h2.send_data(id, front.clone(), false) {
            Ok(n) if n == front.len() => {
                st.out.pop_front();
            }
            Ok(n) => {
                front.advance(n);
                return;
            }
            Err(_) => {
                st.out.clear();
                st.local_done = true;
                return;
            }
        }
    }
    if st.trailers_due && !st.local_done {
        finish_stream(h2, id, st);
    }
}

fn finish_stream(h2: &mut Connection, id: StreamId, st: &mut OStream) {
    if st.status == 0 && st.message.is_none() {
        let _ = h2.send_trailers(id, &TRAILERS_OK);
        st.local_done = true;
    } else {
        respond_status(h2, id, st);
    }
}

impl Session for OriginSession {
    fn on_event(&mut self, h2: &mut Connection, ev: Event, now: Instant) {
        match ev {
            Event::Headers {
                stream,
                kind: HeadersKind::Initial,
                fields,
                end_stream,
            } => self.on_headers(h2, stream, fields, end_stream, now),
            Event::Headers {
                stream,
                kind: HeadersKind::Trailers,
                ..
            } => self.request_ended(h2, stream, now),
            Event::Headers { .. } => {}
            Event::Data {
                stream,
                data,
                end_stream,
                ..
            } => self.on_data(h2, stream, data, end_stream, now),
            Event::SendCapacity { stream, .. } => {
                if let Some(st) = self.streams.get_mut(&stream.get()) {
                    pump(h2, stream, st);
                    if st.local_done && st.remote_done {
                        self.streams.remove(&stream.get());
                    }
                }
            }
            Event::PeerReset { stream, .. } | Event::StreamReset { stream, .. } => {
                self.streams.remove(&stream.get());
            }
            _ => {}
        }
    }

    fn work(&mut self, h2: &mut Connection, now: Instant, _cx: &mut Context<'_>) -> Work {
        while let Some(&(at, id)) = self.timers.front() {
            if at > now {
                break;
            }
            self.timers.pop_front();
            if self.streams.get(&id.get()).is_some_and(|s| s.delayed) {
                self.respond(h2, id);
            }
        }
        Work::Continue(self.timers.front().map(|t| t.0))
    }

    fn closed(&mut self, _end: &End, _now: Instant) {
        self.streams.clear();
        self.timers.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(fixed: Option<usize>) -> Shared {
        Shared {
            fixed_body: fixed.map(|n| msg::framed(&msg::hello_request_of_size(n))),
            delay: Duration::ZERO,
            status: 0,
            message: None,
            early: false,
            h2: origin_h2_config(),
        }
    }

    fn hf(name: &'static str, value: &'static str) -> HeaderField {
        HeaderField {
            name: Bytes::from_static(name.as_bytes()),
            value: Bytes::from_static(value.as_bytes()),
            never_index: false,
            checked: false,
        }
    }

    #[test]
    fn say_hello_answers_a_hello_reply() {
        let mut req = BytesMut::new();
        msg::put_string_field1(&mut req, b"", b"world");
        let out = reply_body(&shared(None), true, &req.freeze());
        let mut want = BytesMut::new();
        msg::put_string_field1(&mut want, b"Hello ", b"world");
        assert_eq!(out, msg::framed(&want));
        assert_eq!(
            msg::decode_string_field1(&out[5..]),
            Some(&b"Hello world"[..])
        );
    }

    #[test]
    fn other_bodies_are_echoed_and_fixed_size_wins() {
        let raw = Bytes::from_static(b"\xff\x00not protobuf");
        assert_eq!(reply_body(&shared(None), true, &raw), msg::framed(&raw));
        let out = reply_body(&shared(Some(1000)), true, &raw);
        assert_eq!(out.len(), 5 + 1000);
        assert_eq!(&out[1..5], &1000u32.to_be_bytes());
    }

    #[test]
    fn the_reply_cache_answers_like_reply_body() {
        let sh = shared(None);
        let mut c = ReplyCache::default();
        let a = msg::hello_request_of_size(64);
        let b = msg::hello_request_of_size(65);
        let raw = Bytes::from_static(b"\xff\x00not protobuf");
        for (req, hello) in [
            (&a, true),
            (&a, true),
            (&b, true),
            (&a, true),
            (&raw, false),
            (&raw, true),
            (&raw, true),
        ] {
            assert_eq!(c.get(&sh, hello, req), reply_body(&sh, hello, req));
        }
        // A repeat is the same shared answer, not a new one.
        let first = c.get(&sh, true, &a);
        let again = c.get(&sh, true, &a);
        assert_eq!(first.as_ptr(), again.as_ptr());
    }

    #[test]
    fn call_kinds_from_headers_and_method_names() {
        let p = b"/pkg.Svc/Do";
        assert_eq!(call_kind(&[], p), CallKind::Unary);
        assert_eq!(call_kind(&[hf("x-call", "bidi")], p), CallKind::Bidi);
        assert_eq!(
            call_kind(&[hf("x-responses", "3")], p),
            CallKind::ServerStream
        );
        assert_eq!(
            call_kind(&[], b"/pkg.Svc/ClientStreamSum"),
            CallKind::ClientStream
        );
        assert_eq!(
            call_kind(&[], b"/pkg.Svc/ServerStreamX"),
            CallKind::ServerStream
        );
        assert_eq!(call_kind(&[], b"/pkg.Svc/BidiEcho"), CallKind::Bidi);
        // An unknown x-call value falls back to the method name.
        assert_eq!(
            call_kind(&[hf("x-call", "nonsense")], b"/a.B/BidiX"),
            CallKind::Bidi
        );
        assert_eq!(parse_u32(b" 12 "), Some(12));
        assert_eq!(parse_u32(b"-1"), None);
        assert_eq!(parse_u32(b"\xff"), None);
    }
}
