//! `ringedge-bench load`: the load runner, on the engine's shards, TLS and HTTP/2 codec.
//!
//! Shape: `--shards` pinned shards; each owns its share of `--connections` (one task per
//! connection, [`crate::net::driver`]), each connection keeps up to `--streams` calls in flight.
//! Nothing is shared between shards on the request path: each shard has its own [`Recorder`],
//! its own share of the schedule ([`Schedule::for_shard`]) and its own counters; shards publish
//! progress figures to the main thread a few times a second, and return their recorders, merged
//! at the end (histograms added, so merged percentiles are those of the union).
//!
//! Closed loop: every free stream slot starts a call at once; the intended send time is the
//! actual one. Open loop: a shard ticker sleeps until just before the next intended send time
//! ([`EARLY_WAKE`]; it yields until the time itself) and wakes the connections that have a free
//! slot; a connection takes every request whose time has come while
//! it has slots (a late request is sent as soon as any slot of the shard frees up). Latency is
//! recorded from the **intended** time (corrected, wrk2) and from the actual send (uncorrected).
//!
//! Every call's `grpc-status` (trailers, or Trailers-Only HEADERS, or mapped from a non-200
//! `:status`) is counted by code; calls that end below gRPC are counted by
//! [`TransportErrorKind`]: connect/TLS failures, RST_STREAM by code, GOAWAY by code, drain
//! timeout, protocol errors, lost connections.
//!
//! Stop: at `warmup + duration` of intended time (or after the shard's share of `--requests`
//! measured calls) no new call starts; calls in flight get [`DRAIN_TIMEOUT`] to finish, then
//! are reset and counted as timeouts. Open loop sends every request whose intended time is
//! before the end, however late; a backlog still unsent [`DRAIN_TIMEOUT`] after the end is
//! counted as `not_sent` errors, so `sent + not_sent` is exactly what the schedule asked for.
//!
//! What it must not do: share state across shards on the request path, hold a `RefCell` borrow
//! across an await, or busy-loop on a timer.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::Write as _;
use std::net::{SocketAddr, ToSocketAddrs};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Waker};
use std::time::{Duration, Instant, SystemTime};

use bytes::{Buf, Bytes};
use ringedge::io::Transport;
use ringedge_codec::conn::{ConnConfig, Connection, Event, HeadersKind, Role};
use ringedge_codec::frame::{ErrorCode, StreamId};
use ringedge_codec::grpc::{self, Code, MessageWalker, WalkerLimits};
use ringedge_codec::hpack::{FieldRef, HeaderField};
use ringedge_rt::{CpuSelection, ShardSet, ShardsConfig};
use ringedge_tls::{CaSource, ClientTlsConfig, ClientTlsOptions, TlsSession};

use crate::args::{CallKind, LoadOptions, Mode, Payload, Scheme, Stop, Tls};
use crate::net::driver::{self, End, Session, Work};
use crate::net::msg;
use crate::net::streams::{stream_map, StreamMap};
use crate::recorder::{Completion, Recorder, TransportErrorKind};
use crate::report::{self, Progress, RunMeta};
use crate::schedule::ShardSchedule;

/// How long calls in flight may take to finish after the run stopped issuing new ones.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(3);
/// TCP connect plus TLS handshake limit.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause before reconnecting after a failed or lost connection.
pub const RECONNECT_PAUSE: Duration = Duration::from_millis(100);
/// How often shards publish progress figures.
pub const PUBLISH_EVERY: Duration = Duration::from_millis(250);
/// Largest response message the runner accepts (the walker's limit).
pub const MAX_RESPONSE_MESSAGE: u32 = 64 << 20;
/// Ticker sleep while every slot is busy and requests are overdue (connections take them as
/// their calls complete; the ticker only needs to notice the end of the run).
const BUSY_TICK: Duration = Duration::from_millis(1);
/// The ticker's timer fires this much before the next deadline and the ticker then yields
/// (runs again after the shard's other tasks) until the deadline: a parked shard takes tens of
/// microseconds to wake from a timer, which would delay every open-loop send by as much (it is
/// counted in the corrected latency). Costs at most this much CPU per deadline.
pub const EARLY_WAKE: Duration = Duration::from_micros(100);

/// Why a run could not start.
#[derive(Debug)]
pub enum LoadError {
    /// The target host did not resolve.
    Resolve(String),
    /// The TLS client config could not be built (CA file).
    Tls(ringedge_tls::TlsError),
    /// The payload file could not be read.
    Payload(std::path::PathBuf, std::io::Error),
    /// Shards could not start or failed.
    Runtime(ringedge_rt::RtError),
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::Resolve(m) => write!(f, "resolving the target: {m}"),
            LoadError::Tls(e) => write!(f, "TLS client: {e}"),
            LoadError::Payload(p, e) => write!(f, "reading payload {}: {e}", p.display()),
            LoadError::Runtime(e) => write!(f, "load shards: {e}"),
        }
    }
}

impl std::error::Error for LoadError {}

/// gRPC messages moved by a run (all calls, warm-up included): lets tests and users check
/// that streaming calls carried what was asked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MessageCounts {
    /// Request messages handed to the codec.
    pub sent: u64,
    /// Complete response messages received.
    pub received: u64,
    /// Calls started (warm-up included).
    pub calls: u64,
}

impl MessageCounts {
    fn add(&mut self, o: &MessageCounts) {
        self.sent += o.sent;
        self.received += o.received;
        self.calls += o.calls;
    }
}

/// A finished run: merged results and what was run.
#[derive(Debug)]
pub struct LoadResult {
    /// All shards' results, merged and finished.
    pub recorder: Recorder,
    /// Messages moved, all shards.
    pub messages: MessageCounts,
    /// Target, settings, times, machine.
    pub meta: RunMeta,
}

/// HTTP/2 settings of the load generator's connections: large windows (flow control must not
/// be what is measured) and loose reset limits (origins that end calls with RST_STREAM, e.g.
/// early trailers, are normal here).
pub fn client_h2_config(streams: u32) -> ConnConfig {
    ConnConfig {
        max_concurrent_streams: streams.max(1),
        initial_stream_window: 1 << 20,
        connection_window: 16 << 20,
        max_resets_per_window: 1_000_000,
        max_pending_output: 64 << 20,
        // Closed streams are remembered only to tolerate frames in flight after a reset; a
        // small table stays in cache.
        max_closed_streams: 256,
        ..ConnConfig::default()
    }
    .normalized()
}

/// Everything a shard needs, built once (`Send + Sync`).
#[derive(Debug)]
struct Plan {
    addr: SocketAddr,
    tls: Option<(ClientTlsConfig, String)>,
    /// Request headers; the strings are leaked once per run so fields are `'static` views.
    fields: Vec<FieldRef<'static>>,
    /// One framed request message.
    body: Bytes,
    call: CallKind,
    messages: u32,
    connections: u32,
    streams: u32,
    shards: u32,
    spin: Duration,
    mode: Mode,
    stop: Stop,
    warmup: Duration,
    h2: ConnConfig,
}

fn leak(s: String) -> &'static [u8] {
    Box::leak(s.into_boxed_str()).as_bytes()
}

/// Splits `total` over `parts`: part `i` gets `total / parts` plus one for the first
/// `total % parts` parts.
pub fn share(total: u64, parts: u32, i: u32) -> u64 {
    let parts = u64::from(parts.max(1));
    let i = u64::from(i);
    total / parts + u64::from(i < total % parts)
}

fn build_plan(opts: &LoadOptions) -> Result<Plan, LoadError> {
    let t = &opts.target;
    let addr = (t.host.as_str(), t.port)
        .to_socket_addrs()
        .map_err(|e| LoadError::Resolve(format!("{}: {e}", t.host)))?
        .next()
        .ok_or_else(|| LoadError::Resolve(format!("{}: no address", t.host)))?;
    let tls = match &opts.tls {
        Tls::None => None,
        tls => {
            let o = ClientTlsOptions {
                ca: match tls {
                    Tls::Verify(Some(p)) => CaSource::PemFile(p.clone()),
                    _ => CaSource::WebPkiRoots,
                },
                insecure_skip_verify: matches!(tls, Tls::Insecure),
            };
            Some((
                ClientTlsConfig::new(&o).map_err(LoadError::Tls)?,
                t.host.clone(),
            ))
        }
    };
    let scheme: &'static [u8] = match t.scheme {
        Scheme::Https => b"https",
        Scheme::H2c => b"http",
    };
    let mut fields = vec![
        FieldRef::new(b":method", b"POST"),
        FieldRef::new(b":scheme", scheme),
        FieldRef::new(b":path", leak(t.path.clone())),
        FieldRef::new(b":authority", leak(opts.authority.clone())),
        FieldRef::new(b"content-type", b"application/grpc"),
        FieldRef::new(b"te", b"trailers"),
        FieldRef::new(b"user-agent", b"ringedge-bench"),
    ];
    let call: &'static [u8] = match opts.call {
        CallKind::Unary => b"unary",
        CallKind::ServerStream => b"server-stream",
        CallKind::ClientStream => b"client-stream",
        CallKind::Bidi => b"bidi",
    };
    fields.push(FieldRef::new(b"x-call", call));
    if opts.call == CallKind::ServerStream {
        fields.push(FieldRef::new(
            b"x-responses",
            leak(opts.messages.to_string()),
        ));
    }
    for (k, v) in &opts.metadata {
        fields.push(FieldRef::new(leak(k.clone()), leak(v.clone())));
    }
    let message = match &opts.payload {
        Payload::Generated(n) => msg::hello_request_of_size(*n),
        Payload::File(p) => {
            Bytes::from(std::fs::read(p).map_err(|e| LoadError::Payload(p.clone(), e))?)
        }
    };
    Ok(Plan {
        addr,
        tls,
        fields,
        body: msg::framed(&message),
        call: opts.call,
        messages: opts.messages,
        connections: opts.connections,
        streams: opts.streams,
        shards: opts.shards,
        spin: opts.spin,
        mode: opts.mode.clone(),
        stop: opts.stop,
        warmup: opts.warmup,
        h2: client_h2_config(opts.streams),
    })
}

/// Figures a shard publishes for the progress line (control plane only, a few times a second).
#[derive(Debug, Default)]
struct Published {
    sent: AtomicU64,
    completed: AtomicU64,
    errors: AtomicU64,
    p99_us: AtomicU64,
}

/// One shard's run state, shared by its connection tasks and its ticker (`!Send`).
struct ShardState {
    start: Instant,
    warmup: Duration,
    rec: Recorder,
    /// Open loop: the schedule and its next (peeked) intended offset.
    sched: Option<(ShardSchedule, Duration)>,
    /// Stop issuing at this intended offset (duration mode).
    end_at: Option<Duration>,
    /// Measured calls this shard may still start (requests mode).
    quota: Option<u64>,
    stopping: bool,
    drain_deadline: Option<Instant>,
    /// Last waker of each connection task; `idle[i]` when connection `i` has free slots.
    wakers: Vec<Option<Waker>>,
    idle: Vec<bool>,
    last_done: Duration,
    counts: MessageCounts,
    /// The first connect/TLS failure was reported on stderr.
    connect_error_shown: bool,
}

impl ShardState {
    fn offset(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.start)
    }

    fn begin_stop(&mut self, now: Instant) {
        if self.stopping {
            return;
        }
        self.stopping = true;
        self.drain_deadline = Some(now + DRAIN_TIMEOUT);
        for w in self.wakers.iter().flatten() {
            w.wake_by_ref();
        }
    }

    /// Open loop, duration mode: counts every request due before `end` that no connection took
    /// as [`TransportErrorKind::NotSent`].
    fn abandon_backlog(&mut self, now: Instant, end: Duration) {
        let off = self.offset(now);
        let ShardState { sched, rec, .. } = self;
        let Some((it, due)) = sched else {
            return;
        };
        // One pass, no buffer: a dead target at a high rate leaves the whole schedule here.
        while *due < end {
            rec.record_error(*due, off, TransportErrorKind::NotSent);
            *due = it.next().map_or(Duration::MAX, |x| x.1);
        }
    }

    /// The intended offset of the next call to start now, if one is due.
    fn take_request(&mut self, now: Instant) -> Option<Duration> {
        if self.stopping {
            return None;
        }
        let off = self.offset(now);
        let intended = match &mut self.sched {
            Some((_, due)) if *due > off => return None,
            Some((it, due)) => {
                let d = *due;
                *due = it.next().map_or(Duration::MAX, |x| x.1);
                d
            }
            None => off,
        };
        if self.end_at.is_some_and(|e| intended >= e) {
            self.begin_stop(now);
            return None;
        }
        if intended >= self.warmup {
            if let Some(q) = &mut self.quota {
                if *q == 0 {
                    self.begin_stop(now);
                    return None;
                }
                *q -= 1;
                if *q == 0 {
                    // This is the last one: stop issuing after it.
                    self.begin_stop(now);
                }
            }
        }
        Some(intended)
    }
}

/// Runs the load described by `opts` and returns the merged results.
pub fn run(opts: &LoadOptions) -> Result<LoadResult, LoadError> {
    let plan = Arc::new(build_plan(opts)?);
    let published: Arc<Vec<Published>> =
        Arc::new((0..plan.shards).map(|_| Published::default()).collect());
    let done = Arc::new(AtomicUsize::new(0));
    let start_cell: Arc<OnceLock<(Instant, SystemTime)>> = Arc::new(OnceLock::new());
    let shards = {
        let plan = Arc::clone(&plan);
        let published = Arc::clone(&published);
        let done = Arc::clone(&done);
        let start_cell = Arc::clone(&start_cell);
        ShardSet::start(
            ShardsConfig {
                cpus: CpuSelection::Count(plan.shards as usize),
                name: "load".to_owned(),
                spin_before_park: (!plan.spin.is_zero()).then_some(plan.spin),
                ..ShardsConfig::default()
            },
            move |ctx| {
                let plan = Arc::clone(&plan);
                let published = Arc::clone(&published);
                let done = Arc::clone(&done);
                let start_cell = Arc::clone(&start_cell);
                async move {
                    let start = start_cell
                        .get_or_init(|| (Instant::now(), SystemTime::now()))
                        .0;
                    let r = run_shard(ctx.index as u32, plan, start, published).await;
                    done.fetch_add(1, Ordering::Release);
                    r
                }
            },
        )
        .map_err(LoadError::Runtime)?
    };
    let show = report::show_progress(opts.progress);
    let mut last_print = Instant::now();
    let n = shards.cpus().len();
    while done.load(Ordering::Acquire) < n {
        std::thread::sleep(Duration::from_millis(50));
        if show && last_print.elapsed() >= Duration::from_millis(500) {
            last_print = Instant::now();
            let mut p = Progress::default();
            if let Some((s, _)) = start_cell.get() {
                p.elapsed = s.elapsed();
            }
            for sh in published.iter() {
                p.sent += sh.sent.load(Ordering::Relaxed);
                p.completed += sh.completed.load(Ordering::Relaxed);
                p.errors += sh.errors.load(Ordering::Relaxed);
                let p99 = sh.p99_us.load(Ordering::Relaxed);
                if p99 > 0 {
                    p.p99_us = Some(p.p99_us.map_or(p99, |x| x.max(p99)));
                }
            }
            print!("\r{}\x1b[K", report::progress_line(&p));
            let _ = std::io::stdout().flush();
        }
    }
    if show {
        println!();
    }
    let results = shards.join().map_err(LoadError::Runtime)?;
    let mut merged = Recorder::new(plan.warmup);
    let mut last_done = Duration::ZERO;
    let mut messages = MessageCounts::default();
    for (r, d, m) in &results {
        merged.merge(r);
        last_done = last_done.max(*d);
        messages.add(m);
    }
    merged.finish();
    let (_, start_sys) = start_cell
        .get()
        .copied()
        .unwrap_or((Instant::now(), SystemTime::now()));
    let measured = match plan.stop {
        Stop::Duration(d) => d,
        Stop::Requests(_) => last_done.saturating_sub(plan.warmup),
    };
    let meta = RunMeta {
        target: opts_target(opts),
        settings: settings(opts),
        start_unix_s: (start_sys + plan.warmup)
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64()),
        duration_s: measured.as_secs_f64(),
        machine: report::Machine::detect(),
        commit: option_env!("RINGEDGE_COMMIT").map(str::to_owned),
    };
    Ok(LoadResult {
        recorder: merged,
        messages,
        meta,
    })
}

fn opts_target(o: &LoadOptions) -> String {
    let scheme = match o.target.scheme {
        Scheme::Https => "https",
        Scheme::H2c => "h2c",
    };
    format!("{scheme}://{}{}", o.target.authority(), o.target.path)
}

fn settings(o: &LoadOptions) -> std::collections::BTreeMap<String, String> {
    let mut s = std::collections::BTreeMap::new();
    let mode = match &o.mode {
        Mode::ClosedLoop => "closed".to_owned(),
        Mode::OpenLoop(sch) => format!("open {sch:?}"),
    };
    s.insert("mode".into(), mode);
    s.insert("connections".into(), o.connections.to_string());
    s.insert("streams".into(), o.streams.to_string());
    s.insert("shards".into(), o.shards.to_string());
    if !o.spin.is_zero() {
        s.insert("spin_us".into(), o.spin.as_micros().to_string());
    }
    s.insert("call".into(), format!("{:?}", o.call));
    s.insert("messages".into(), o.messages.to_string());
    s.insert("warmup".into(), format!("{:?}", o.warmup));
    s.insert(
        "stop".into(),
        match o.stop {
            Stop::Duration(d) => format!("{d:?}"),
            Stop::Requests(n) => format!("{n} requests"),
        },
    );
    s.insert(
        "payload".into(),
        match &o.payload {
            Payload::Generated(n) => format!("{n} bytes generated"),
            Payload::File(p) => p.display().to_string(),
        },
    );
    s
}

async fn run_shard(
    index: u32,
    plan: Arc<Plan>,
    start: Instant,
    all_published: Arc<Vec<Published>>,
) -> (Recorder, Duration, MessageCounts) {
    let conns = share(u64::from(plan.connections), plan.shards, index) as usize;
    let sched = match &plan.mode {
        Mode::OpenLoop(s) => {
            let mut it = s.for_shard(index, plan.shards);
            let first = it.next().map_or(Duration::MAX, |x| x.1);
            Some((it, first))
        }
        Mode::ClosedLoop => None,
    };
    let state = Rc::new(RefCell::new(ShardState {
        start,
        warmup: plan.warmup,
        rec: Recorder::new(plan.warmup),
        sched,
        end_at: match plan.stop {
            Stop::Duration(d) => Some(plan.warmup + d),
            Stop::Requests(_) => None,
        },
        quota: match plan.stop {
            Stop::Requests(n) => Some(share(n, plan.shards, index)),
            Stop::Duration(_) => None,
        },
        stopping: false,
        drain_deadline: None,
        wakers: vec![None; conns],
        idle: vec![false; conns],
        last_done: Duration::ZERO,
        counts: MessageCounts::default(),
        connect_error_shown: false,
    }));
    if conns == 0 || state.borrow().quota == Some(0) {
        state.borrow_mut().begin_stop(start);
    }
    let tasks: Vec<_> = (0..conns)
        .map(|i| ringedge_rt::spawn(connection_task(i, Arc::clone(&plan), Rc::clone(&state))))
        .collect();
    // Ticker: wakes idle connections when requests come due, notices the end of the run,
    // publishes progress.
    let mut next_publish = Instant::now();
    let all_done = Rc::new(std::cell::Cell::new(false));
    let ticker = {
        let state = Rc::clone(&state);
        let all_done = Rc::clone(&all_done);
        let all_published = Arc::clone(&all_published);
        async move {
            let published = &all_published[index as usize];
            loop {
                let now = ringedge_rt::now();
                let sleep_until = {
                    let mut s = state.borrow_mut();
                    if now >= next_publish {
                        publish(&s.rec, published);
                        next_publish = now + PUBLISH_EVERY;
                    }
                    if all_done.get() {
                        break;
                    }
                    let off = s.offset(now);
                    if !s.stopping {
                        if let Some(e) = s.end_at {
                            match s.sched.as_ref().map(|x| x.1) {
                                // Closed loop: intended time is wall time.
                                None if off >= e => s.begin_stop(now),
                                None => {}
                                // Open loop: every request due before the end is sent, late
                                // if need be (its corrected latency shows how late); the run
                                // stops when the schedule reaches the end, or gives up on the
                                // backlog after the drain timeout.
                                Some(due) if due >= e => s.begin_stop(now),
                                Some(_) if off >= e + DRAIN_TIMEOUT => {
                                    s.abandon_backlog(now, e);
                                    s.begin_stop(now);
                                }
                                Some(_) => {}
                            }
                        }
                    }
                    let mut at = next_publish;
                    if !s.stopping {
                        if let Some(e) = s.end_at {
                            // The end, or once past it (open loop with a backlog) the moment
                            // the backlog is given up: never a deadline in the past (that
                            // would spin).
                            let stop_at = if off < e { e } else { e + DRAIN_TIMEOUT };
                            at = at.min(s.start + stop_at);
                        }
                        if let Some((_, due)) = &s.sched {
                            if *due <= off {
                                // Due now: wake connections with free slots.
                                let ShardState { wakers, idle, .. } = &mut *s;
                                let mut woke = false;
                                for (w, i) in wakers.iter().zip(idle.iter_mut()) {
                                    if *i {
                                        *i = false;
                                        woke = true;
                                        if let Some(w) = w {
                                            w.wake_by_ref();
                                        }
                                    }
                                }
                                // Woken connections take what is due; look again right after
                                // them. With every slot busy, completions take the backlog.
                                at = if woke { now } else { at.min(now + BUSY_TICK) };
                            } else if let Some(t) = s.start.checked_add(*due) {
                                at = at.min(t);
                            }
                        }
                    }
                    at
                };
                let d = sleep_until.saturating_duration_since(ringedge_rt::now());
                if d <= EARLY_WAKE {
                    futures_lite::future::yield_now().await;
                } else {
                    ringedge_rt::sleep(d - EARLY_WAKE).await;
                }
            }
        }
    };
    let ticker = ringedge_rt::spawn(ticker);
    for t in tasks {
        t.await;
    }
    all_done.set(true);
    ticker.await;
    let mut s = state.borrow_mut();
    s.rec.finish();
    publish(&s.rec, &all_published[index as usize]);
    (s.rec.clone(), s.last_done, s.counts)
}

fn publish(rec: &Recorder, p: &Published) {
    p.sent.store(rec.sent, Ordering::Relaxed);
    p.completed.store(rec.completed(), Ordering::Relaxed);
    p.errors.store(rec.error_count(), Ordering::Relaxed);
    if !rec.corrected.is_empty() {
        p.p99_us
            .store(rec.corrected.value_at_quantile(0.99), Ordering::Relaxed);
    }
}

async fn connection_task(i: usize, plan: Arc<Plan>, state: Rc<RefCell<ShardState>>) {
    loop {
        if state.borrow().stopping {
            break;
        }
        let t = match connect(&plan).await {
            Ok(t) => t,
            Err((kind, why)) => {
                {
                    let mut s = state.borrow_mut();
                    let now = ringedge_rt::now();
                    let off = s.offset(now);
                    s.rec.record_error(off, off, kind);
                    if !s.connect_error_shown {
                        s.connect_error_shown = true;
                        eprintln!("ringedge-bench: {why} (counted as {kind}; retrying)");
                    }
                }
                ringedge_rt::sleep(RECONNECT_PAUSE).await;
                continue;
            }
        };
        let now = ringedge_rt::now();
        let h2 = Connection::new(Role::Client, plan.h2.clone(), now);
        let mut session = ClientSession {
            index: i,
            plan: Arc::clone(&plan),
            state: Rc::clone(&state),
            calls: stream_map(),
            ready: false,
            goaway: None,
        };
        let end = driver::drive(t, h2, &mut session).await;
        if state.borrow().stopping {
            break;
        }
        if end != End::Graceful {
            ringedge_rt::sleep(RECONNECT_PAUSE).await;
        }
    }
    state.borrow_mut().wakers[i] = None;
}

async fn connect(plan: &Plan) -> Result<Transport, (TransportErrorKind, String)> {
    let tcp = ringedge_rt::connect(plan.addr, CONNECT_TIMEOUT)
        .await
        .map_err(|e| (TransportErrorKind::ConnectFailed, e.to_string()))?;
    match &plan.tls {
        None => Ok(Transport::plain(tcp)),
        Some((cfg, name)) => {
            let session = TlsSession::client(cfg, name)
                .map_err(|e| (TransportErrorKind::TlsFailed, e.to_string()))?;
            match ringedge_rt::timeout(CONNECT_TIMEOUT, Transport::handshake(tcp, session)).await {
                Ok(Ok(t)) => Ok(t),
                Ok(Err(e)) => Err((TransportErrorKind::TlsFailed, e.to_string())),
                Err(_) => Err((
                    TransportErrorKind::TlsFailed,
                    format!("TLS handshake timed out after {CONNECT_TIMEOUT:?}"),
                )),
            }
        }
    }
}

/// One call in flight.
#[derive(Debug)]
struct Call {
    intended: Duration,
    sent: Duration,
    walker: MessageWalker,
    /// Request messages sent so far (bidi and client-stream).
    sent_msgs: u32,
    /// Status from a non-200 `:status`, used when no `grpc-status` comes.
    http_status: Option<u32>,
    /// Request DATA that flow control did not take yet, with its END_STREAM flag.
    out: VecDeque<(Bytes, bool)>,
}

struct ClientSession {
    index: usize,
    plan: Arc<Plan>,
    state: Rc<RefCell<ShardState>>,
    calls: StreamMap<Call>,
    ready: bool,
    goaway: Option<u32>,
}

fn status_of(fields: &[HeaderField]) -> Option<u32> {
    fields
        .iter()
        .find(|f| &f.name[..] == b"grpc-status")
        .and_then(|f| grpc::parse_grpc_status(&f.value).ok())
        .map(Code::as_u32)
}

fn pump(h2: &mut Connection, id: StreamId, call: &mut Call) {
    while let Some((front, end)) = call.out.front_mut() {
        let len = front.len();
        match h2.send_data(id, front.clone(), *end) {
            Ok(n) if n == len => {
                call.out.pop_front();
            }
            Ok(n) => {
                front.advance(n);
                return;
            }
            Err(_) => {
                call.out.clear();
                return;
            }
        }
    }
}

impl ClientSession {
    fn start_call(&mut self, h2: &mut Connection, intended: Duration, now: Instant) -> bool {
        let id = match h2.open_stream(&self.plan.fields, false) {
            Ok(id) => id,
            Err(_) => return false,
        };
        let mut s = self.state.borrow_mut();
        let off = s.offset(now);
        s.rec.record_sent(intended);
        drop(s);
        let mut call = Call {
            intended,
            sent: off,
            walker: MessageWalker::new(WalkerLimits {
                max_message_size: MAX_RESPONSE_MESSAGE,
            }),
            sent_msgs: 0,
            http_status: None,
            out: VecDeque::new(),
        };
        // The first message goes straight to the codec; only what flow control refuses is
        // queued (no queue allocation on the common path).
        let body = &self.plan.body;
        let (first_end, queued) = match self.plan.call {
            CallKind::Unary | CallKind::ServerStream => (true, 0),
            CallKind::ClientStream => (self.plan.messages == 1, self.plan.messages - 1),
            CallKind::Bidi => (self.plan.messages == 1, 0),
        };
        call.sent_msgs = 1 + queued;
        match h2.send_data(id, body.clone(), first_end) {
            Ok(n) if n == body.len() => {}
            Ok(n) => call.out.push_back((body.slice(n..), first_end)),
            Err(_) => {}
        }
        for k in 0..queued {
            call.out.push_back((body.clone(), k + 1 == queued));
        }
        pump(h2, id, &mut call);
        {
            let mut s = self.state.borrow_mut();
            s.counts.calls += 1;
            s.counts.sent += u64::from(call.sent_msgs);
        }
        self.calls.insert(id.get(), call);
        true
    }

    fn complete(&mut self, id: StreamId, status: Option<u32>, now: Instant) {
        if let Some(call) = self.calls.remove(&id.get()) {
            let mut s = self.state.borrow_mut();
            let done = s.offset(now);
            s.last_done = s.last_done.max(done);
            s.rec.record(Completion {
                intended: call.intended,
                sent: call.sent,
                done,
                status: status.or(call.http_status),
            });
        }
    }

    fn fail(&mut self, id: StreamId, kind: TransportErrorKind, now: Instant) {
        if let Some(call) = self.calls.remove(&id.get()) {
            let mut s = self.state.borrow_mut();
            let done = s.offset(now);
            s.last_done = s.last_done.max(done);
            s.rec.record_error(call.intended, done, kind);
        }
    }

    fn on_data(&mut self, h2: &mut Connection, id: StreamId, data: Bytes) {
        h2.release_capacity(id, data.len());
        let Some(call) = self.calls.get_mut(&id.get()) else {
            return;
        };
        let before = call.walker.messages_completed();
        if call.walker.feed(data, |_| {}).is_err() {
            let _ = h2.send_reset(id, ErrorCode::Cancel);
            self.fail(id, TransportErrorKind::Protocol, ringedge_rt::now());
            return;
        }
        let got = call.walker.messages_completed() - before;
        let mut bidi_sent = 0;
        if self.plan.call == CallKind::Bidi && got > 0 {
            // Ping-pong: one new message per echo received, the last with END_STREAM.
            for _ in 0..got {
                if call.sent_msgs >= self.plan.messages {
                    break;
                }
                call.sent_msgs += 1;
                bidi_sent += 1;
                let last = call.sent_msgs == self.plan.messages;
                call.out.push_back((self.plan.body.clone(), last));
            }
            pump(h2, id, call);
        }
        if got > 0 {
            let mut s = self.state.borrow_mut();
            s.counts.received += got;
            s.counts.sent += bidi_sent;
        }
    }
}

impl Session for ClientSession {
    fn on_event(&mut self, h2: &mut Connection, ev: Event, now: Instant) {
        match ev {
            Event::PeerSettings { .. } => self.ready = true,
            Event::Headers {
                stream,
                kind: HeadersKind::Initial,
                fields,
                end_stream,
            } => {
                let http = fields
                    .iter()
                    .find(|f| &f.name[..] == b":status")
                    .and_then(|f| std::str::from_utf8(&f.value).ok()?.parse::<u16>().ok());
                if let Some(call) = self.calls.get_mut(&stream.get()) {
                    if let Some(h) = http.filter(|h| *h != 200) {
                        call.http_status = Some(Code::from_http_status(h).as_u32());
                    }
                }
                if end_stream {
                    // Trailers-Only.
                    let st = status_of(&fields);
                    self.complete(stream, st, now);
                }
            }
            Event::Headers {
                stream,
                kind: HeadersKind::Trailers,
                fields,
                ..
            } => {
                let st = status_of(&fields);
                // The response is complete; if our request is still open (early trailers), end
                // our side too (RFC 9113 §8.1: the client may reset with NO_ERROR).
                if self
                    .calls
                    .get(&stream.get())
                    .is_some_and(|c| !c.out.is_empty() || c.sent_msgs < self.plan.messages)
                {
                    let _ = h2.send_reset(stream, ErrorCode::NoError);
                }
                self.complete(stream, st, now);
            }
            Event::Headers { .. } => {}
            Event::Data { stream, data, .. } => self.on_data(h2, stream, data),
            Event::SendCapacity { stream, .. } => {
                if let Some(call) = self.calls.get_mut(&stream.get()) {
                    pump(h2, stream, call);
                }
            }
            Event::PeerReset { stream, code } => {
                self.fail(stream, TransportErrorKind::Reset(code.to_u32()), now)
            }
            Event::StreamReset { stream, .. } => {
                self.fail(stream, TransportErrorKind::Protocol, now)
            }
            Event::GoAway {
                code, unprocessed, ..
            } => {
                self.goaway = Some(code.to_u32());
                for id in unprocessed {
                    self.fail(id, TransportErrorKind::GoAway(code.to_u32()), now);
                }
            }
            _ => {}
        }
    }

    fn work(&mut self, h2: &mut Connection, now: Instant, cx: &mut Context<'_>) -> Work {
        {
            let mut s = self.state.borrow_mut();
            let w = &mut s.wakers[self.index];
            if !w.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *w = Some(cx.waker().clone());
            }
            if s.stopping {
                let deadline = s.drain_deadline.unwrap_or(now);
                drop(s);
                if self.calls.is_empty() {
                    return Work::Finish;
                }
                if now >= deadline {
                    let ids: Vec<u32> = self.calls.keys().copied().collect();
                    for id in ids {
                        let id = StreamId::new(id);
                        let _ = h2.send_reset(id, ErrorCode::Cancel);
                        self.fail(id, TransportErrorKind::Timeout, now);
                    }
                    return Work::Finish;
                }
                return Work::Continue(Some(deadline));
            }
        }
        if h2.is_going_away() || h2.is_closed() {
            return if self.calls.is_empty() {
                Work::Finish
            } else {
                Work::Continue(None)
            };
        }
        if !self.ready {
            return Work::Continue(None);
        }
        let slots = (self.plan.streams as usize).min(h2.peer_max_concurrent_streams() as usize);
        while self.calls.len() < slots && h2.can_open_stream() {
            let intended = self.state.borrow_mut().take_request(now);
            match intended {
                Some(t) => {
                    if !self.start_call(h2, t, now) {
                        break;
                    }
                }
                None => break,
            }
        }
        if self.calls.len() < slots {
            self.state.borrow_mut().idle[self.index] = true;
        }
        Work::Continue(None)
    }

    fn closed(&mut self, end: &End, now: Instant) {
        let kind = match (self.goaway, end) {
            (Some(code), _) => TransportErrorKind::GoAway(code),
            (None, End::Codec(_)) => TransportErrorKind::Protocol,
            _ => TransportErrorKind::ConnectionLost,
        };
        let ids: Vec<u32> = self.calls.keys().copied().collect();
        for id in ids {
            self.fail(StreamId::new(id), kind, now);
        }
        let mut s = self.state.borrow_mut();
        s.idle[self.index] = false;
        if !self.ready && !s.stopping {
            // The peer never completed the HTTP/2 handshake (no SETTINGS): not an h2 server
            // (e.g. h2c against TLS), or it closed at once. One error per failed connection.
            let off = s.offset(now);
            s.rec.record_error(off, off, kind);
            if !s.connect_error_shown {
                s.connect_error_shown = true;
                eprintln!(
                    "ringedge-bench: the connection closed before the HTTP/2 handshake ({end:?}; counted as {kind}; retrying)"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up() {
        for total in [0u64, 1, 7, 100, 1001] {
            for parts in 1..6u32 {
                let sum: u64 = (0..parts).map(|i| share(total, parts, i)).sum();
                assert_eq!(sum, total, "{total}/{parts}");
                let max = (0..parts).map(|i| share(total, parts, i)).max().unwrap();
                let min = (0..parts).map(|i| share(total, parts, i)).min().unwrap();
                assert!(max - min <= 1);
            }
        }
    }
}
