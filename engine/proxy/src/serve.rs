//! The running proxy: shards, listeners, TLS handshakes, origin connects, timers, drain.
//!
//! What it does: starts one pinned shard per CPU (ringedge-rt); on each, binds the shard's own
//! `SO_REUSEPORT` listeners, accepts with the per-shard connection limit, runs the TLS handshake
//! (ALPN `h2` only) under the handshake timeout, and hands each connection to the shard's
//! [`Forwarder`]. A control task per shard opens the origin connections the forwarder asks for,
//! runs its timers (call deadlines, codec timeouts, idle connections), publishes the shard's
//! counters, and drains the shard on stop.
//!
//! What it must not do: share anything on the request path across shards. The only cross-thread
//! state is the [`ShardBlock`] (stop flag, published counters), touched by the control task
//! every [`CONTROL_TICK`], never by a request.
//!
//! Invariants: a connection and every origin stream its calls use live on one shard; a shard's
//! future ends only after its connections were told to go away (GOAWAY) and drained, or the
//! drain timeout passed.

use std::cell::RefCell;
use std::future::poll_fn;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};

use ringedge_codec::conn::{ConnConfig, Connection, Role};
use ringedge_rt::{ConnectionLimit, Listener, ShardSet, ShardsConfig};
use ringedge_tls::{ClientTlsConfig, ServerTlsConfig, TlsError, TlsSession};

use crate::forward::{Forwarder, Plan};
use crate::io::{self, HandshakeError, Transport};
use crate::metrics::{Metrics, Snapshot};

/// Connections a shard accepts beyond `max_connections_per_shard` only to close them at once.
const REJECT_GRACE: usize = 64;

/// How often each shard's control task wakes without other cause (stop flag, counters).
pub const CONTROL_TICK: Duration = Duration::from_millis(100);

/// One origin as the runtime needs it.
#[derive(Clone, Debug)]
pub struct OriginSpec {
    /// Addresses to connect to (resolved at start-up), tried in order.
    pub addrs: Vec<SocketAddr>,
    /// TLS to the origin: client config and the SNI / verification name. `None` = h2c.
    pub tls: Option<(ClientTlsConfig, String)>,
    /// TCP connect + TLS handshake limit.
    pub connect_timeout: Duration,
}

/// Everything needed to run the proxy, built from a validated config.
#[derive(Clone)]
pub struct ServerSpec {
    /// Listen addresses (each shard binds each).
    pub listen: Vec<SocketAddr>,
    /// Shard placement.
    pub shards: ShardsConfig,
    /// Listen backlog per shard socket.
    pub backlog: i32,
    /// Connections per shard.
    pub max_connections_per_shard: usize,
    /// TLS handshake limit for clients.
    pub handshake_timeout: Duration,
    /// Client-facing TLS; `None` serves cleartext h2c (lab and benchmark use).
    pub tls: Option<ServerTlsConfig>,
    /// HTTP/2 settings and limits towards clients.
    pub client_h2: ConnConfig,
    /// HTTP/2 settings and limits towards origins.
    pub origin_h2: ConnConfig,
    /// Origins by index.
    pub origins: Vec<OriginSpec>,
    /// How long a stopping shard waits for calls in flight.
    pub drain_timeout: Duration,
    /// Builds each shard's forwarding plan (routes are `!Send` per shard).
    pub make_plan: Arc<dyn Fn() -> Plan + Send + Sync>,
    /// Plain-HTTP/1.1 metrics endpoint (`GET /metrics`, `GET /healthz`), served by shard 0.
    pub admin: Option<SocketAddr>,
    /// Each shard's HPACK string pool limit (`[limits.h2] hpack_pool_bytes`).
    pub hpack_pool_bytes: usize,
}

impl std::fmt::Debug for ServerSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerSpec")
            .field("listen", &self.listen)
            .field("origins", &self.origins)
            .finish_non_exhaustive()
    }
}

/// What the outside world shares with one shard: control plane only.
#[derive(Debug, Default)]
pub struct ShardBlock {
    stop: AtomicBool,
    counters: Mutex<Snapshot>,
}

/// Why the server could not start.
#[derive(Debug)]
pub enum StartError {
    /// Shards could not start (io_uring, memlock, CPU placement).
    Runtime(ringedge_rt::RtError),
    /// A listen address could not be bound.
    Bind(SocketAddr, ringedge_rt::RtError),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Runtime(e) => write!(f, "{e}"),
            StartError::Bind(a, e) => write!(f, "cannot listen on {a}: {e}"),
        }
    }
}

impl std::error::Error for StartError {}

/// A running proxy.
#[derive(Debug)]
pub struct ServerHandle {
    shards: Option<ShardSet<()>>,
    blocks: Vec<Arc<ShardBlock>>,
    local_addrs: Vec<SocketAddr>,
}

impl ServerHandle {
    /// The addresses actually bound (ports resolved when 0 was asked).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
    }

    /// The sum of every shard's counters, as last published (at most [`CONTROL_TICK`] old).
    pub fn metrics(&self) -> Snapshot {
        let mut total = Snapshot::default();
        for b in &self.blocks {
            let s = b.counters.lock().unwrap_or_else(|p| p.into_inner());
            total.merge(&s);
        }
        total
    }

    /// Asks every shard to drain and stop.
    pub fn stop(&self) {
        for b in &self.blocks {
            b.stop.store(true, Ordering::Relaxed);
        }
    }

    /// Waits until every shard has stopped.
    pub fn join(mut self) {
        if let Some(s) = self.shards.take() {
            let _ = s.join();
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        if let Some(s) = self.shards.take() {
            self.stop();
            let _ = s.join();
        }
    }
}

/// Resolves port 0 in listen addresses to one real port shared by every shard: a probe socket
/// with SO_REUSEPORT is bound (not listening, so it never takes connections) and kept until every
/// shard has bound the same port.
fn resolve_ports(
    listen: &[SocketAddr],
) -> Result<(Vec<SocketAddr>, Vec<socket2::Socket>), StartError> {
    let mut out = Vec::with_capacity(listen.len());
    let mut probes = Vec::new();
    for &addr in listen {
        if addr.port() != 0 {
            out.push(addr);
            continue;
        }
        let domain = socket2::Domain::for_address(addr);
        let probe = socket2::Socket::new(domain, socket2::Type::STREAM, None)
            .and_then(|s| {
                s.set_reuse_address(true)?;
                s.set_reuse_port(true)?;
                s.bind(&addr.into())?;
                Ok(s)
            })
            .map_err(|e| StartError::Bind(addr, ringedge_rt::RtError::Io(e)))?;
        let bound = probe
            .local_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .ok_or_else(|| {
                StartError::Bind(
                    addr,
                    ringedge_rt::RtError::Io(std::io::Error::other("no local address")),
                )
            })?;
        out.push(bound);
        probes.push(probe);
    }
    Ok((out, probes))
}

/// Starts the proxy and returns once every shard is listening.
pub fn start(spec: ServerSpec) -> Result<ServerHandle, StartError> {
    let (listen, probes) = resolve_ports(&spec.listen)?;
    let n = {
        // Count shards the same way ShardSet will, for the control blocks.
        let allowed = ringedge_rt::allowed_cpus().map_err(StartError::Runtime)?;
        match &spec.shards.cpus {
            ringedge_rt::CpuSelection::AllAllowed => allowed.len(),
            ringedge_rt::CpuSelection::Count(n) => *n,
            ringedge_rt::CpuSelection::List(l) => l.len(),
        }
    };
    let blocks: Vec<Arc<ShardBlock>> = (0..n).map(|_| Arc::default()).collect();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), StartError>>();
    let spec = Arc::new(ServerSpec {
        listen: listen.clone(),
        ..spec
    });
    let shard_blocks = blocks.clone();
    let shard_spec = Arc::clone(&spec);
    let shards = ShardSet::start(spec.shards.clone(), move |ctx| {
        let spec = Arc::clone(&shard_spec);
        let all = shard_blocks.clone();
        let block = Arc::clone(&shard_blocks[ctx.index.min(shard_blocks.len() - 1)]);
        let ready = ready_tx.clone();
        let admin_blocks = (ctx.index == 0).then_some(all);
        async move { run_shard(spec, block, admin_blocks, ready).await }
    })
    .map_err(StartError::Runtime)?;
    for _ in 0..shards.cpus().len() {
        match ready_rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                for b in &blocks {
                    b.stop.store(true, Ordering::Relaxed);
                }
                let _ = shards.join();
                return Err(e);
            }
            Err(_) => break,
        }
    }
    drop(probes);
    Ok(ServerHandle {
        shards: Some(shards),
        blocks,
        local_addrs: listen,
    })
}

async fn run_shard(
    spec: Arc<ServerSpec>,
    block: Arc<ShardBlock>,
    admin_blocks: Option<Vec<Arc<ShardBlock>>>,
    ready: std::sync::mpsc::Sender<Result<(), StartError>>,
) {
    ringedge_codec::hpack::pool::set_pool_limit(spec.hpack_pool_bytes);
    let metrics = Rc::new(Metrics::default());
    let plan = Rc::new((spec.make_plan)());
    let fw = Rc::new(RefCell::new(Forwarder::new(
        plan,
        Rc::clone(&metrics),
        ringedge_rt::now(),
    )));
    // Connections over max_connections_per_shard are accepted and closed at once (counted in
    // `connections_rejected_limit`); the accept loop itself stops only at a small grace above
    // the limit, so a flood of connects waits in the kernel backlog instead of in memory.
    let limit = ConnectionLimit::new(spec.max_connections_per_shard + REJECT_GRACE);
    let mut accept_tasks = Vec::new();
    for &addr in &spec.listen {
        let listener = match Listener::bind(addr, spec.backlog) {
            Ok(l) => l,
            Err(e) => {
                let _ = ready.send(Err(StartError::Bind(addr, e)));
                return;
            }
        };
        let fw = Rc::clone(&fw);
        let spec = Arc::clone(&spec);
        let metrics = Rc::clone(&metrics);
        let limit = limit.clone();
        accept_tasks.push(ringedge_rt::spawn(async move {
            ringedge_rt::serve(listener, limit, move |tcp, peer| {
                serve_client(
                    Rc::clone(&fw),
                    Arc::clone(&spec),
                    Rc::clone(&metrics),
                    tcp,
                    peer,
                )
            })
            .await
        }));
    }
    if let (Some(addr), Some(blocks)) = (spec.admin, admin_blocks) {
        match Listener::bind(addr, 64) {
            Ok(listener) => {
                let blocks = Rc::new(blocks);
                accept_tasks.push(ringedge_rt::spawn(async move {
                    ringedge_rt::serve(listener, ConnectionLimit::new(16), move |tcp, _| {
                        admin::serve_one(tcp, Rc::clone(&blocks))
                    })
                    .await
                }));
            }
            Err(e) => {
                let _ = ready.send(Err(StartError::Bind(addr, e)));
                return;
            }
        }
    }
    let _ = ready.send(Ok(()));
    drop(ready);
    control_loop(&fw, &spec, &block, &metrics, accept_tasks).await;
}

async fn serve_client(
    fw: Rc<RefCell<Forwarder>>,
    spec: Arc<ServerSpec>,
    metrics: Rc<Metrics>,
    tcp: ringedge_rt::TcpStream,
    peer: SocketAddr,
) {
    Metrics::inc(&metrics.connections_accepted);
    if metrics.connections_active.get() >= spec.max_connections_per_shard as u64 {
        // Over the shard's limit: close at once (dropping the socket), counted.
        Metrics::inc(&metrics.connections_rejected_limit);
        return;
    }
    Metrics::inc(&metrics.connections_active);
    let _active = Guard(Rc::clone(&metrics));
    let (transport, sni) = match &spec.tls {
        None => (Transport::plain(tcp), None),
        Some(cfg) => {
            let session = TlsSession::server(cfg);
            match ringedge_rt::timeout(spec.handshake_timeout, Transport::handshake(tcp, session))
                .await
            {
                Err(_) => {
                    Metrics::inc(&metrics.tls_handshake_timeout);
                    return;
                }
                Ok(Err(e)) => {
                    Metrics::inc(&metrics.tls_handshake_failed);
                    if let HandshakeError::Tls(TlsError::NoApplicationProtocol) = e {
                        Metrics::inc(&metrics.tls_no_alpn_h2);
                    }
                    tracing::debug!(%peer, error = %e, "client handshake failed");
                    return;
                }
                Ok(Ok(t)) => {
                    let sni = t.tls().and_then(|s| s.sni()).map(str::to_owned);
                    (t, sni)
                }
            }
        }
    };
    let now = ringedge_rt::now();
    let h2 = Connection::new(Role::Server, spec.client_h2.clone(), now);
    let ep = fw.borrow_mut().add_downstream(h2, peer, sni, now);
    io::drive(fw, ep, transport).await;
}

struct Guard(Rc<Metrics>);

impl Drop for Guard {
    fn drop(&mut self) {
        Metrics::dec(&self.0.connections_active);
    }
}

async fn connect_one(fw: Rc<RefCell<Forwarder>>, spec: Arc<ServerSpec>, origin: usize) {
    let o = &spec.origins[origin];
    let mut last_err = String::from("no address to connect to");
    for &addr in &o.addrs {
        let tls = match &o.tls {
            None => None,
            Some((cfg, name)) => match TlsSession::client(cfg, name) {
                Ok(s) => Some(s),
                Err(e) => {
                    last_err = format!("TLS setup for {name} failed: {e}");
                    continue;
                }
            },
        };
        match io::connect_origin(addr, o.connect_timeout, tls).await {
            Ok(transport) => {
                let now = ringedge_rt::now();
                let h2 = Connection::new(Role::Client, spec.origin_h2.clone(), now);
                let ep = fw.borrow_mut().add_upstream(origin, h2, now);
                io::drive(fw, ep, transport).await;
                return;
            }
            Err(e) => last_err = e,
        }
    }
    tracing::warn!(origin, error = %last_err, "origin connect failed");
    fw.borrow_mut().upstream_connect_failed(origin, &last_err);
}

async fn control_loop(
    fw: &Rc<RefCell<Forwarder>>,
    spec: &Arc<ServerSpec>,
    block: &Arc<ShardBlock>,
    metrics: &Rc<Metrics>,
    mut accept_tasks: Vec<ringedge_rt::Task<ringedge_rt::RtError>>,
) {
    let mut drain_until: Option<Instant> = None;
    let mut next_publish = Instant::now();
    loop {
        let now = ringedge_rt::now();
        for origin in fw.borrow_mut().take_connect_requests() {
            ringedge_rt::spawn_detached(connect_one(Rc::clone(fw), Arc::clone(spec), origin));
        }
        fw.borrow_mut().on_timer(now);
        if now >= next_publish {
            *block.counters.lock().unwrap_or_else(|p| p.into_inner()) = metrics.snapshot();
            next_publish = now + CONTROL_TICK;
        }
        if drain_until.is_none() && block.stop.load(Ordering::Relaxed) {
            // Stop accepting, tell clients to go away, let calls in flight finish.
            accept_tasks.clear();
            fw.borrow_mut().drain();
            drain_until = Some(now + spec.drain_timeout);
        }
        if let Some(until) = drain_until {
            if fw.borrow().calls_in_flight() == 0 || now >= until {
                *block.counters.lock().unwrap_or_else(|p| p.into_inner()) = metrics.snapshot();
                return;
            }
        }
        let wait = fw
            .borrow()
            .next_timer()
            .map(|t| t.saturating_duration_since(now))
            .unwrap_or(CONTROL_TICK)
            .min(CONTROL_TICK);
        let woken = poll_fn(|cx| {
            let mut f = fw.borrow_mut();
            if f.take_control_wakeup() {
                Poll::Ready(())
            } else {
                f.set_control_waker(cx.waker());
                Poll::Pending
            }
        });
        futures_lite::future::or(woken, ringedge_rt::sleep(wait)).await;
    }
}

/// The admin endpoint: one request per connection, plain HTTP/1.1, no keep-alive.
mod admin {
    use std::rc::Rc;
    use std::sync::Arc;
    use std::time::Duration;

    use ringedge_rt::{AsyncReadExt, AsyncWriteExt, TcpStream};

    use super::ShardBlock;
    use crate::metrics::Snapshot;

    /// Requests larger than this are refused (431).
    const MAX_REQUEST: usize = 8 * 1024;

    pub(super) async fn serve_one(mut tcp: TcpStream, blocks: Rc<Vec<Arc<ShardBlock>>>) {
        let mut buf = vec![0u8; MAX_REQUEST];
        let mut len = 0;
        let read = async {
            while len < buf.len() {
                match tcp.read(&mut buf[len..]).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => len += n,
                }
                if buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
        };
        if ringedge_rt::timeout(Duration::from_secs(5), read)
            .await
            .is_err()
        {
            return;
        }
        let head = &buf[..len];
        let (status, body) = if head.len() == MAX_REQUEST {
            ("431 Request Header Fields Too Large", String::new())
        } else if head.starts_with(b"GET /metrics ") {
            let mut total = Snapshot::default();
            for b in blocks.iter() {
                let s = b.counters.lock().unwrap_or_else(|p| p.into_inner());
                total.merge(&s);
            }
            ("200 OK", total.to_prometheus())
        } else if head.starts_with(b"GET /healthz ") {
            ("200 OK", "ok\n".to_string())
        } else {
            ("404 Not Found", "try /metrics or /healthz\n".to_string())
        };
        let response = format!(
            "HTTP/1.1 {status}\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = tcp.write_all(response.as_bytes()).await;
        let _ = tcp.close().await;
    }
}
