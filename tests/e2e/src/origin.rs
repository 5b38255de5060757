//! `TestOrigin`: a tonic gRPC origin (the `ringedge.test.Echo` and
//! `helloworld.Greeter` services) on its own thread and tokio runtime, h2c or
//! TLS, that records what it observes so tests can assert on it: every
//! request's headers (including `:authority`, `grpc-timeout`,
//! `x-forwarded-for` and `-bin` metadata) and how each call ended (finished
//! or cancelled).
//!
//! Must not: share a runtime with the test's client side (a blocked client
//! must not stall the origin), or outlive its [`TestOrigin`] handle (Drop stops
//! the runtime and joins the thread, abruptly ending open connections).
//!
//! Invariants: `started == finished + cancelled + in-flight`; a call counts as
//! *cancelled* when tonic drops its handler future or response stream before
//! the handler produced its final outcome (client RST_STREAM, connection
//! loss, or tonic's own `grpc-timeout` enforcement).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_lite::Stream;
use tokio::sync::{oneshot, Notify};
use tonic::metadata::{AsciiMetadataKey, BinaryMetadataKey, MetadataMap, MetadataValue};
use tonic::server::NamedService;
use tonic::transport::{Identity, Server, ServerTlsConfig};
use tonic::{Code, Request, Response, Status, Streaming};

use crate::pb::echo_server::{Echo, EchoServer};
use crate::pb::greeter_server::{Greeter, GreeterServer};
use crate::pb::{Behavior, EchoRequest, EchoResponse, HelloReply, HelloRequest, Metadata};
use crate::pki::LeafCert;

/// Largest gRPC message the origin encodes or decodes by default (tonic's own
/// default is 4 MiB, too small for a 4 MiB payload plus framing).
pub const DEFAULT_MAX_MESSAGE: usize = 64 * 1024 * 1024;

/// How to start a [`TestOrigin`].
#[derive(Clone, Debug)]
pub struct OriginOpts {
    /// Serve TLS (ALPN h2, set by tonic) with this certificate; `None` = h2c.
    pub tls: Option<LeafCert>,
    /// Address to bind; port 0 picks a free port.
    pub bind: SocketAddr,
    /// SETTINGS_MAX_CONCURRENT_STREAMS the origin advertises; `None` = tonic's
    /// default, which advertises no limit (tonic passes `None` to hyper).
    pub max_concurrent_streams: Option<u32>,
    /// Largest message the services encode or decode.
    pub max_message_size: usize,
}

impl Default for OriginOpts {
    fn default() -> Self {
        OriginOpts {
            tls: None,
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            max_concurrent_streams: None,
            max_message_size: DEFAULT_MAX_MESSAGE,
        }
    }
}

impl OriginOpts {
    /// Cleartext HTTP/2 with prior knowledge on 127.0.0.1, free port.
    pub fn h2c() -> Self {
        Self::default()
    }

    /// TLS with `leaf` on 127.0.0.1, free port.
    pub fn tls(leaf: &LeafCert) -> Self {
        OriginOpts {
            tls: Some(leaf.clone()),
            ..Self::default()
        }
    }
}

/// One request as the origin saw it, before the handler ran.
#[derive(Clone, Debug)]
pub struct SeenRequest {
    /// `:path`, e.g. `/ringedge.test.Echo/Unary`.
    pub path: String,
    /// `:authority` (hyper puts it in the request URI).
    pub authority: Option<String>,
    /// All regular headers as received (metadata, `grpc-timeout`, `te`, …).
    pub headers: http::HeaderMap,
}

impl SeenRequest {
    /// A header value as text (`None` if absent or not visible ASCII).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// A `-bin` header decoded from base64 (either padded or unpadded).
    pub fn header_bin(&self, name: &str) -> Option<Vec<u8>> {
        if !name.ends_with("-bin") {
            return None;
        }
        let md = MetadataMap::from_headers(self.headers.clone());
        md.get_bin(name)?.to_bytes().ok().map(|b| b.to_vec())
    }

    /// The `grpc-timeout` header parsed (gRPC PROTOCOL-HTTP2.md: 1–8 digits
    /// and a unit H, M, S, m, u or n).
    pub fn grpc_timeout(&self) -> Option<Duration> {
        parse_grpc_timeout(self.header("grpc-timeout")?)
    }
}

/// Parses a `grpc-timeout` value; `None` if malformed.
pub fn parse_grpc_timeout(v: &str) -> Option<Duration> {
    if v.len() < 2 || v.len() > 9 {
        return None;
    }
    let (digits, unit) = v.split_at(v.len() - 1);
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.checked_mul(3600)?),
        "M" => Duration::from_secs(n.checked_mul(60)?),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// How calls ended so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CallCounts {
    /// Handlers entered.
    pub started: u64,
    /// Handlers that produced their final outcome (OK or an injected status).
    pub finished: u64,
    /// Handlers dropped before their outcome (client cancel, RST, deadline).
    pub cancelled: u64,
}

#[derive(Debug, Default)]
struct RecState {
    requests: Vec<SeenRequest>,
    counts: CallCounts,
    connections: u64,
}

/// Shared record of what an origin observed, with change notification.
#[derive(Debug, Default)]
pub struct Recorder {
    state: Mutex<RecState>,
    changed: Notify,
}

impl Recorder {
    fn update(&self, f: impl FnOnce(&mut RecState)) {
        {
            let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut s);
        }
        self.changed.notify_waiters();
    }

    fn read<T>(&self, f: impl FnOnce(&RecState) -> T) -> T {
        let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        f(&s)
    }

    /// Every request seen so far, in arrival order.
    pub fn requests(&self) -> Vec<SeenRequest> {
        self.read(|s| s.requests.clone())
    }

    /// Call outcome counts so far.
    pub fn counts(&self) -> CallCounts {
        self.read(|s| s.counts)
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.read(|s| s.connections)
    }

    /// Waits until `pred(counts)` holds, at most `limit`; returns whether it did.
    pub async fn wait_counts(&self, limit: Duration, pred: impl Fn(&CallCounts) -> bool) -> bool {
        let fut = async {
            loop {
                let notified = self.changed.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if self.read(|s| pred(&s.counts)) {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(limit, fut).await.is_ok()
    }

    /// Waits until at least `n` requests were seen, at most `limit`.
    pub async fn wait_requests(&self, n: usize, limit: Duration) -> bool {
        let fut = async {
            loop {
                let notified = self.changed.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if self.read(|s| s.requests.len() >= n) {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(limit, fut).await.is_ok()
    }
}

/// A running tonic origin. Stops (abruptly) when dropped.
#[derive(Debug)]
pub struct TestOrigin {
    addr: SocketAddr,
    tls: bool,
    rec: Arc<Recorder>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestOrigin {
    /// Binds, starts the server thread and returns once the port accepts.
    /// Panics on bind or TLS setup failure.
    pub fn start(opts: OriginOpts) -> TestOrigin {
        let listener = std::net::TcpListener::bind(opts.bind).expect("bind test origin");
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let addr = listener.local_addr().expect("origin address");
        let rec = Arc::new(Recorder::default());
        let (tx, rx) = oneshot::channel::<()>();
        let tls = opts.tls.is_some();
        let rec2 = rec.clone();
        let thread = std::thread::Builder::new()
            .name("e2e-tonic-origin".into())
            .spawn(move || serve(opts, listener, rec2, rx))
            .expect("spawn origin thread");
        TestOrigin {
            addr,
            tls,
            rec,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR` or `https://ADDR`.
    pub fn uri(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// The recorder (shareable with other tasks).
    pub fn recorder(&self) -> Arc<Recorder> {
        self.rec.clone()
    }

    /// Every request seen so far.
    pub fn requests(&self) -> Vec<SeenRequest> {
        self.rec.requests()
    }

    /// The most recent request seen.
    pub fn last_request(&self) -> Option<SeenRequest> {
        self.rec.read(|s| s.requests.last().cloned())
    }

    /// Call outcome counts so far.
    pub fn counts(&self) -> CallCounts {
        self.rec.counts()
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.rec.connections()
    }

    /// Waits (at most `limit`) until at least `n` calls were cancelled.
    pub async fn wait_cancelled(&self, n: u64, limit: Duration) -> bool {
        self.rec.wait_counts(limit, |c| c.cancelled >= n).await
    }

    /// Waits (at most `limit`) until at least `n` calls finished.
    pub async fn wait_finished(&self, n: u64, limit: Duration) -> bool {
        self.rec.wait_counts(limit, |c| c.finished >= n).await
    }

    /// Waits (at most `limit`) until at least `n` requests were seen.
    pub async fn wait_requests(&self, n: usize, limit: Duration) -> bool {
        self.rec.wait_requests(n, limit).await
    }
}

impl Drop for TestOrigin {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(
    opts: OriginOpts,
    listener: std::net::TcpListener,
    rec: Arc<Recorder>,
    shutdown: oneshot::Receiver<()>,
) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("origin runtime");
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener).expect("adopt listener");
        let rec_conn = rec.clone();
        let incoming = tokio_stream::StreamExt::map(
            tokio_stream::wrappers::TcpListenerStream::new(listener),
            move |c| {
                if c.is_ok() {
                    rec_conn.update(|s| s.connections += 1);
                }
                c
            },
        );
        let mut builder = Server::builder();
        if let Some(leaf) = &opts.tls {
            builder = builder
                .tls_config(
                    ServerTlsConfig::new()
                        .identity(Identity::from_pem(&leaf.cert_pem, &leaf.key_pem)),
                )
                .expect("origin TLS config");
        }
        if let Some(n) = opts.max_concurrent_streams {
            builder = builder.max_concurrent_streams(n);
        }
        let echo = EchoServer::new(EchoSvc { rec: rec.clone() })
            .max_decoding_message_size(opts.max_message_size)
            .max_encoding_message_size(opts.max_message_size);
        let greeter = GreeterServer::new(GreeterSvc { rec: rec.clone() });
        let router = builder
            .add_service(Recording {
                inner: echo,
                rec: rec.clone(),
            })
            .add_service(Recording {
                inner: greeter,
                rec: rec.clone(),
            });
        tokio::select! {
            r = router.serve_with_incoming(incoming) => {
                if let Err(e) = r {
                    eprintln!("e2e test origin stopped: {e}");
                }
            }
            _ = shutdown => {}
        }
    });
    // Dropping `rt` here cancels every connection task.
}

/// Records each request's head, then hands it to the inner tonic service.
#[derive(Clone, Debug)]
struct Recording<S> {
    inner: S,
    rec: Arc<Recorder>,
}

impl<S: NamedService> NamedService for Recording<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> tower_service::Service<http::Request<B>> for Recording<S>
where
    S: tower_service::Service<http::Request<B>, Error = Infallible>,
{
    type Response = S::Response;
    type Error = Infallible;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let seen = SeenRequest {
            path: req.uri().path().to_string(),
            authority: req.uri().authority().map(|a| a.to_string()),
            headers: req.headers().clone(),
        };
        self.rec.update(|s| s.requests.push(seen));
        self.inner.call(req)
    }
}

/// Counts a call as started on creation; as finished by [`CallGuard::finish`],
/// or as cancelled when dropped unfinished.
#[derive(Debug)]
struct CallGuard {
    rec: Arc<Recorder>,
    done: bool,
}

impl CallGuard {
    fn new(rec: &Arc<Recorder>) -> Self {
        rec.update(|s| s.counts.started += 1);
        CallGuard {
            rec: rec.clone(),
            done: false,
        }
    }

    fn finish(mut self) {
        self.done = true;
        self.rec.update(|s| s.counts.finished += 1);
    }
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        if !self.done {
            self.rec.update(|s| s.counts.cancelled += 1);
        }
    }
}

/// A deterministic payload of `n` bytes (byte i = i mod 251).
pub fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

fn response_payload(b: &Behavior, request: &[u8]) -> Vec<u8> {
    if b.response_size > 0 {
        pattern(b.response_size as usize)
    } else {
        request.to_vec()
    }
}

/// Adds `list` to `md`; keys ending in `-bin` take `value_bin`.
fn apply_metadata(md: &mut MetadataMap, list: &[Metadata]) -> Result<(), Status> {
    for m in list {
        if m.key.ends_with("-bin") {
            let k = BinaryMetadataKey::from_bytes(m.key.as_bytes())
                .map_err(|_| Status::invalid_argument(format!("bad metadata key {}", m.key)))?;
            md.append_bin(k, MetadataValue::from_bytes(&m.value_bin));
        } else {
            let k = AsciiMetadataKey::from_bytes(m.key.as_bytes())
                .map_err(|_| Status::invalid_argument(format!("bad metadata key {}", m.key)))?;
            let v = m.value.parse().map_err(|_| {
                Status::invalid_argument(format!("bad metadata value for {}", m.key))
            })?;
            md.append(k, v);
        }
    }
    Ok(())
}

fn trailers_of(b: &Behavior) -> Result<MetadataMap, Status> {
    let mut md = MetadataMap::new();
    apply_metadata(&mut md, &b.response_trailers)?;
    Ok(md)
}

/// The injected failure, with `response_trailers` as its metadata.
fn injected_status(b: &Behavior) -> Option<Status> {
    if b.status_code == 0 {
        return None;
    }
    Some(match trailers_of(b) {
        Ok(md) => Status::with_metadata(Code::from(b.status_code), b.status_message.clone(), md),
        Err(e) => e,
    })
}

/// For streaming responses that end OK with custom trailers: tonic sends a
/// stream-ending `Err(status)` with code OK as `grpc-status: 0` plus metadata.
fn ok_trailers(b: &Behavior) -> Option<Status> {
    if b.response_trailers.is_empty() {
        return None;
    }
    Some(match trailers_of(b) {
        Ok(md) => Status::with_metadata(Code::Ok, "", md),
        Err(e) => e,
    })
}

async fn delay(b: &Behavior) {
    if b.delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(u64::from(b.delay_ms))).await;
    }
}

async fn hang_if(b: &Behavior) {
    if b.hang {
        std::future::pending::<()>().await;
    }
}

type RespStream = Pin<Box<dyn Stream<Item = Result<EchoResponse, Status>> + Send + 'static>>;

#[derive(Debug)]
struct EchoSvc {
    rec: Arc<Recorder>,
}

#[tonic::async_trait]
impl Echo for EchoSvc {
    async fn unary(&self, req: Request<EchoRequest>) -> Result<Response<EchoResponse>, Status> {
        let guard = CallGuard::new(&self.rec);
        let msg = req.into_inner();
        let b = msg.behavior.clone().unwrap_or_default();
        hang_if(&b).await;
        delay(&b).await;
        let out = match injected_status(&b) {
            Some(st) => Err(st),
            None => {
                let mut resp = Response::new(EchoResponse {
                    payload: response_payload(&b, &msg.payload),
                    seq: 0,
                });
                apply_metadata(resp.metadata_mut(), &b.response_headers).map(|()| resp)
            }
        };
        guard.finish();
        out
    }

    type ServerStreamStream = RespStream;

    async fn server_stream(
        &self,
        req: Request<EchoRequest>,
    ) -> Result<Response<Self::ServerStreamStream>, Status> {
        let guard = CallGuard::new(&self.rec);
        let msg = req.into_inner();
        let b = msg.behavior.clone().unwrap_or_default();
        hang_if(&b).await;
        let payload = response_payload(&b, &msg.payload);
        let mut resp_md = MetadataMap::new();
        apply_metadata(&mut resp_md, &b.response_headers)?;
        struct St {
            guard: Option<CallGuard>,
            b: Behavior,
            payload: Vec<u8>,
            i: u32,
        }
        let st = St {
            guard: Some(guard),
            b,
            payload,
            i: 0,
        };
        let stream = futures_lite::stream::unfold(st, |mut st| async move {
            let guard = st.guard.take()?;
            if st.i < st.b.stream_count {
                delay(&st.b).await;
                let item = EchoResponse {
                    payload: st.payload.clone(),
                    seq: st.i,
                };
                st.i += 1;
                st.guard = Some(guard);
                return Some((Ok(item), st));
            }
            guard.finish();
            let end = injected_status(&st.b).or_else(|| ok_trailers(&st.b))?;
            Some((Err(end), st))
        });
        let mut resp = Response::new(Box::pin(stream) as RespStream);
        *resp.metadata_mut() = resp_md;
        Ok(resp)
    }

    async fn client_stream(
        &self,
        req: Request<Streaming<EchoRequest>>,
    ) -> Result<Response<EchoResponse>, Status> {
        let guard = CallGuard::new(&self.rec);
        let mut input = req.into_inner();
        let mut behavior: Option<Behavior> = None;
        let mut all = Vec::new();
        while let Some(m) = input.message().await? {
            if behavior.is_none() {
                let b = m.behavior.clone().unwrap_or_default();
                hang_if(&b).await;
                behavior = Some(b);
            }
            all.extend_from_slice(&m.payload);
        }
        let b = behavior.unwrap_or_default();
        delay(&b).await;
        let out = match injected_status(&b) {
            Some(st) => Err(st),
            None => {
                let mut resp = Response::new(EchoResponse {
                    payload: response_payload(&b, &all),
                    seq: 0,
                });
                apply_metadata(resp.metadata_mut(), &b.response_headers).map(|()| resp)
            }
        };
        guard.finish();
        out
    }

    type BidiStream = RespStream;

    async fn bidi(
        &self,
        req: Request<Streaming<EchoRequest>>,
    ) -> Result<Response<Self::BidiStream>, Status> {
        let guard = CallGuard::new(&self.rec);
        let input = req.into_inner();
        struct St {
            input: Streaming<EchoRequest>,
            guard: Option<CallGuard>,
            b: Option<Behavior>,
            seq: u32,
        }
        let st = St {
            input,
            guard: Some(guard),
            b: None,
            seq: 0,
        };
        let stream = futures_lite::stream::unfold(st, |mut st| async move {
            let guard = st.guard.take()?;
            match st.input.message().await {
                Ok(Some(m)) => {
                    if st.b.is_none() {
                        let b = m.behavior.clone().unwrap_or_default();
                        hang_if(&b).await;
                        if let Some(status) = injected_status(&b) {
                            guard.finish();
                            return Some((Err(status), st));
                        }
                        st.b = Some(b);
                    }
                    let b = st.b.clone().unwrap_or_default();
                    delay(&b).await;
                    let item = EchoResponse {
                        payload: response_payload(&b, &m.payload),
                        seq: st.seq,
                    };
                    st.seq += 1;
                    st.guard = Some(guard);
                    Some((Ok(item), st))
                }
                Ok(None) => {
                    guard.finish();
                    let end = ok_trailers(&st.b.clone().unwrap_or_default())?;
                    Some((Err(end), st))
                }
                Err(e) => {
                    // The request stream broke (reset, connection loss): the
                    // guard drops unfinished and counts a cancellation.
                    drop(guard);
                    Some((Err(e), st))
                }
            }
        });
        Ok(Response::new(Box::pin(stream) as RespStream))
    }
}

#[derive(Debug)]
struct GreeterSvc {
    rec: Arc<Recorder>,
}

#[tonic::async_trait]
impl Greeter for GreeterSvc {
    async fn say_hello(&self, req: Request<HelloRequest>) -> Result<Response<HelloReply>, Status> {
        let guard = CallGuard::new(&self.rec);
        let name = req.into_inner().name;
        guard.finish();
        Ok(Response::new(HelloReply {
            message: format!("Hello {name}"),
        }))
    }
}
