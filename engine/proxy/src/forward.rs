//! The forwarder: one per shard, it owns every HTTP/2 connection of the shard (client-facing
//! "downstream" endpoints and origin-facing "upstream" endpoints), every call in flight, and the
//! shard's origin pools, and moves headers, data, trailers, resets and window credit between them.
//!
//! What it does:
//! - classifies requests (gRPC or not), applies the host's policy (gRPC switch, non-gRPC policy)
//!   and the route, starts the call's deadline, picks an origin connection (opening one when every
//!   connection is full), and re-encodes headers for the origin;
//! - forwards DATA as `Bytes` views; returns window credit to a sender only when the other side's
//!   codec has accepted the bytes (flow control is the backpressure: a call never holds more than
//!   the windows allow);
//! - carries cancellation both ways, ends calls whose deadline passed (DEADLINE_EXCEEDED to the
//!   client, RST_STREAM(CANCEL) to the origin), retries once what provably never started
//!   (REFUSED_STREAM, streams above an origin GOAWAY's last-stream-id), and answers every failure
//!   it produces with a Trailers-Only gRPC status naming the cause.
//!
//! What it must not do: perform I/O, read a clock, or block. Socket drivers feed it bytes and
//! take its output; `now` is passed in; connects happen in tasks it asks for
//! ([`Forwarder::take_connect_requests`]).
//!
//! Invariants:
//! - every call is in its downstream endpoint's stream map, and in its upstream endpoint's map
//!   once started there; `finish_call` removes it from both, releases every byte of window credit
//!   it still held, and un-counts its queued bytes;
//! - bytes in a call's queues are counted in `Metrics::buffered_bytes`;
//! - an origin's outcome stands once it may have processed a call: only REFUSED_STREAM and GOAWAY
//!   "never processed" streams are retried, once, and only while the request bytes sent are
//!   still retained.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::net::SocketAddr;
use std::rc::Rc;
use std::task::Waker;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use ringedge_codec::conn::{self, Connection, Event, HeadersKind, SpareVecs, StreamMap};
use ringedge_codec::frame::{ErrorCode, StreamId};
use ringedge_codec::grpc::{self, MessageWalker, WalkerLimits};
use ringedge_codec::hpack::{FieldRef, HeaderField};
use ringedge_codec::message;

use crate::config::{ForwardedMode, NonGrpcPolicy};
use crate::headers::{self, UpstreamRequest};
use crate::metrics::Metrics;
use crate::route::{RouteDecision, RouteTable};
use crate::slab::{Key, Slab};

/// Rounds of event handling per [`Forwarder::dispatch`] (events caused by handling events).
const DISPATCH_ROUNDS: usize = 4;
/// Most elements (sum of capacities) the spare retry buffers hold (see [`Spares`]): 8,192
/// `Bytes` of 32 bytes, 256 KB per shard.
const SPARE_ELEMENTS: usize = 8 * 1024;
/// A container that grew past this many elements is freed instead of kept.
const SPARE_CAPACITY_MAX: usize = 16;

/// The allocations every call needs, kept from finished calls for the next ones so that a warm
/// shard does no malloc/free per call for them: retry buffers, and the borrowed field list
/// built to encode HEADERS. (Chunk queues need none: a call's first chunk per direction is held
/// inline, so only a call with several chunks waiting allocates its deque.) Bounded by
/// [`SPARE_ELEMENTS`] elements, in buffers of at most [`SPARE_CAPACITY_MAX`]. The bound is in
/// elements, not a few hundred buffers, because the stock swings by the number of calls that
/// end (or start) in one burst: 512 with h2load's 16 × 32 (with a bound of 256, the codec's
/// spare field lists were freed and reallocated 1.65 times per call: `conn::SPARE_FIELDS`).
struct Spares {
    vecs: SpareVecs<Bytes>,
    refs: Vec<FieldRef<'static>>,
}

impl Default for Spares {
    fn default() -> Self {
        Spares {
            vecs: SpareVecs::new(SPARE_ELEMENTS, SPARE_CAPACITY_MAX),
            refs: Vec::new(),
        }
    }
}

impl Spares {
    fn vec(&mut self) -> Vec<Bytes> {
        self.vecs.take().unwrap_or_default()
    }
    fn keep_vec(&mut self, v: Vec<Bytes>) {
        self.vecs.keep(v);
    }
}

/// The allocation of a finished borrowed field list, without the borrow: an empty vector
/// collected in place (same element size and alignment, so the allocation is kept).
// `filter_map` (not `filter`) because the element type changes: the borrow goes away.
#[allow(clippy::unnecessary_filter_map)]
fn recycle_refs(mut v: Vec<FieldRef<'_>>) -> Vec<FieldRef<'static>> {
    v.clear();
    v.into_iter().filter_map(|_| None).collect()
}

/// Key of an endpoint (one HTTP/2 connection) in the forwarder.
pub type EpKey = Key;
type CallKey = Key;

/// What the forwarder needs to know about one origin.
#[derive(Clone, Debug)]
pub struct OriginPlan {
    /// The origin's configured name (for messages).
    pub name: String,
    /// `https` or `http` (h2c), sent as `:scheme`.
    pub scheme: &'static [u8],
    /// Most connections to this origin per shard.
    pub max_connections: usize,
    /// Cap on streams per connection below the origin's own SETTINGS (0 = none).
    pub max_streams_per_connection: u32,
    /// Close origin connections idle (no stream) this long.
    pub idle_timeout: Option<Duration>,
}

/// Everything a shard's forwarder is configured with.
#[derive(Debug)]
pub struct Plan {
    /// Origins, indexed by `Route::origin`.
    pub origins: Vec<OriginPlan>,
    /// Host names by host index (for messages).
    pub host_names: Vec<String>,
    /// The routing table.
    pub routes: RouteTable,
    /// Request bytes retained per call so a REFUSED_STREAM/GOAWAY retry can resend them.
    pub retry_buffer_bytes: usize,
    /// Close client connections idle this long (no open stream).
    pub idle_timeout: Option<Duration>,
    /// A client must send its first request this soon after the handshake.
    pub header_timeout: Option<Duration>,
    /// Largest gRPC message (5-byte prefix length) accepted in either direction.
    pub max_message_bytes: u32,
}

/// Chunks in order, the first one held inline: a unary call's one DATA chunk per direction
/// passes through without the deque (no allocation, no ring-buffer bookkeeping).
///
/// Invariant: when `first` is `None`, `rest` is empty (the inline slot is always the front).
#[derive(Debug, Default)]
struct Chunks {
    first: Option<Bytes>,
    rest: VecDeque<Bytes>,
}

impl Chunks {
    fn is_empty(&self) -> bool {
        self.first.is_none()
    }
    fn push_back(&mut self, b: Bytes) {
        if self.first.is_none() {
            self.first = Some(b);
        } else {
            self.rest.push_back(b);
        }
    }
    fn push_front(&mut self, b: Bytes) {
        if let Some(old) = self.first.replace(b) {
            self.rest.push_front(old);
        }
    }
    fn pop_front(&mut self) -> Option<Bytes> {
        let b = self.first.take()?;
        self.first = self.rest.pop_front();
        Some(b)
    }
    fn clear(&mut self) {
        self.first = None;
        self.rest.clear();
    }
}

/// Bytes waiting for window in one direction of a call, then the end of that direction.
#[derive(Debug, Default)]
struct Queue {
    chunks: Chunks,
    bytes: usize,
    /// The sender finished this direction (END_STREAM seen).
    end: bool,
    /// Trailers to send after the data.
    trailers: Option<Vec<HeaderField>>,
    /// END_STREAM has been sent onward.
    end_sent: bool,
}

#[derive(Debug)]
struct Call {
    down: EpKey,
    down_sid: StreamId,
    up: Option<(EpKey, StreamId)>,
    origin: usize,
    /// The client's request fields, kept to (re)send them to an origin.
    request: Vec<HeaderField>,
    grpc: bool,
    forwarded: ForwardedMode,
    authority: Option<Bytes>,
    deadline: Option<Instant>,
    to_up: Queue,
    to_down: Queue,
    /// Request bytes already sent to the origin, kept while a retry is still possible.
    sent: Vec<Bytes>,
    sent_bytes: usize,
    retry_ok: bool,
    /// Response headers were sent to the client.
    resp_started: bool,
    /// The origin finished its response (END_STREAM received).
    up_done: bool,
    /// The client finished its request (END_STREAM received).
    client_done: bool,
    /// Request content bytes still due by the client's `content-length`, if it sent one
    /// (RFC 9113 §8.1.1: a different DATA total makes the request malformed).
    req_remaining: Option<u64>,
    /// Message boundaries of a gRPC call, request and response (enforce `max_message_bytes`).
    walk_req: Option<MessageWalker>,
    walk_resp: Option<MessageWalker>,
    /// The origin connection that refused this call: a retry goes elsewhere when it can.
    avoid: Option<EpKey>,
}

enum Side {
    Down {
        peer: SocketAddr,
        /// Shared with each request's routing (an `Rc` clone, not a string copy per request).
        sni: Option<Rc<str>>,
    },
    Up {
        origin: usize,
    },
}

struct Endpoint {
    h2: Connection,
    side: Side,
    /// The endpoint's calls by stream id (the codec's direct-mapped [`StreamMap`]: the calls
    /// of a burst sit in adjacent slots).
    streams: StreamMap<CallKey>,
    /// The socket task's waker, kept across wake-ups (waking by reference: no reference count
    /// traffic per wake-up; [`Forwarder::set_waker`] clones only when the task changed).
    waker: Option<Waker>,
    /// Woken since the task last polled: later wakes are no-ops until it polls again.
    woken: bool,
    /// No new streams: GOAWAY received or sent.
    draining: bool,
    /// When the endpoint last had an open stream (or was added): the idle clock. Bytes
    /// received do not move it (slowloris: a dribbled partial frame is not activity).
    last_active: Instant,
    /// Client connections: the first request must arrive before this (`header_timeout`).
    first_request_by: Option<Instant>,
    /// Origin connections: the origin's first SETTINGS arrived, so its
    /// SETTINGS_MAX_CONCURRENT_STREAMS is known and calls may start here. Until then the
    /// connection is not in its pool and still counts as `connecting` (RFC 9113 §6.5.2: the
    /// limit is unbounded until SETTINGS say otherwise, and an origin refuses the excess).
    /// Always true for client connections.
    ready: bool,
}

#[derive(Default)]
struct Pool {
    conns: Vec<EpKey>,
    connecting: usize,
    waiting: VecDeque<CallKey>,
}

/// The shard's forwarder. See the module docs.
pub struct Forwarder {
    plan: Rc<Plan>,
    metrics: Rc<Metrics>,
    eps: Slab<Endpoint>,
    calls: Slab<Call>,
    pools: Vec<Pool>,
    deadlines: BinaryHeap<Reverse<(Instant, CallKey)>>,
    connect_requests: Vec<usize>,
    /// Wakes the shard task that opens origin connections and runs timers.
    control_waker: Option<Waker>,
    /// Set when the control task has work (a connect request, an earlier deadline).
    control_wakeup: bool,
    events: Vec<Event>,
    /// The time passed in by the latest entry point (the forwarder reads no clock).
    now: Instant,
    /// The endpoint whose socket task is inside [`Forwarder::recv`]: it takes its output right
    /// after, so waking it would only cost a spurious poll (and a `recv` that finds nothing).
    driving: Option<EpKey>,
    scratch: headers::Scratch,
    timeout_text: String,
    spares: Spares,
}

impl std::fmt::Debug for Forwarder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forwarder")
            .field("endpoints", &self.eps.len())
            .field("calls", &self.calls.len())
            .finish_non_exhaustive()
    }
}

/// Sends what `q` holds on `sid` as far as the peer's windows allow, then the end of that
/// direction (trailers, or an empty DATA with END_STREAM) once everything went. Returns the
/// bytes the codec accepted; `accepted` sees each accepted piece (a view of the chunk: clone it
/// to keep it). A chunk that fits the window moves into the codec whole, so the common case
/// costs no reference count here. The list of trailers that were sent is handed back for the
/// next header block to reuse ([`conn::recycle_fields`]).
fn send_queued(
    h2: &mut Connection,
    sid: StreamId,
    q: &mut Queue,
    refs_buf: &mut Vec<FieldRef<'static>>,
    mut accepted: impl FnMut(&Bytes),
) -> usize {
    let mut released = 0usize;
    while let Some(chunk) = q.chunks.pop_front() {
        let end = q.chunks.is_empty() && q.end && q.trailers.is_none();
        let len = chunk.len();
        // A chunk that fits (send_capacity is what send_data accepts) moves into the codec
        // whole. Otherwise it is offered whole all the same, so the codec notes the stream as
        // blocked and reports SendCapacity when the window opens, and a handle on it is kept
        // for the part that did not go.
        let fits = h2.send_capacity(sid).is_some_and(|room| room >= len);
        let whole = if fits {
            accepted(&chunk);
            None
        } else {
            Some(chunk.clone())
        };
        let n = h2.send_data(sid, chunk, end).unwrap_or(0);
        debug_assert!(whole.is_some() || n == len, "a chunk that fits goes whole");
        released += n;
        if let Some(whole) = whole {
            if n > 0 {
                accepted(&whole.slice(..n));
            }
            if n < len {
                q.chunks.push_front(whole.slice(n..));
                break;
            }
        }
        if end {
            q.end_sent = true;
        }
    }
    q.bytes -= released;
    if q.chunks.is_empty() && q.end && !q.end_sent {
        match q.trailers.take() {
            Some(trailers) => {
                let mut refs: Vec<FieldRef<'_>> = std::mem::take(refs_buf);
                headers::pass_through(&trailers, &mut refs);
                let _ = h2.send_trailers(sid, &refs);
                *refs_buf = recycle_refs(refs);
                conn::recycle_fields(trailers);
                q.end_sent = true;
            }
            None => {
                if h2.send_data(sid, Bytes::new(), true).is_ok() {
                    q.end_sent = true;
                }
            }
        }
    }
    released
}

fn queue_push(q: &mut Queue, data: Bytes, metrics: &Metrics) {
    if !data.is_empty() {
        metrics.buffer_grow(data.len());
        q.bytes += data.len();
        q.chunks.push_back(data);
    }
}

impl Forwarder {
    /// A forwarder for one shard.
    pub fn new(plan: Rc<Plan>, metrics: Rc<Metrics>, now: Instant) -> Self {
        let pools = plan.origins.iter().map(|_| Pool::default()).collect();
        Forwarder {
            plan,
            metrics,
            eps: Slab::default(),
            calls: Slab::default(),
            pools,
            deadlines: BinaryHeap::new(),
            connect_requests: Vec::new(),
            control_waker: None,
            control_wakeup: false,
            events: Vec::new(),
            now,
            driving: None,
            scratch: headers::Scratch::default(),
            timeout_text: String::new(),
            spares: Spares::default(),
        }
    }

    /// The shard's counters.
    pub fn metrics(&self) -> &Rc<Metrics> {
        &self.metrics
    }

    /// Adds a client connection whose TLS handshake (if any) finished.
    pub fn add_downstream(
        &mut self,
        h2: Connection,
        peer: SocketAddr,
        sni: Option<String>,
        now: Instant,
    ) -> EpKey {
        self.now = now;
        self.eps.insert(Endpoint {
            h2,
            side: Side::Down {
                peer,
                sni: sni.map(Rc::from),
            },
            streams: StreamMap::new(),
            waker: None,
            woken: false,
            draining: false,
            last_active: now,
            first_request_by: self.plan.header_timeout.map(|t| now + t),
            ready: true,
        })
    }

    /// Adds a connected origin connection. The calls waiting for it start once the origin's
    /// first SETTINGS arrive (see `Endpoint::ready`); until then it counts as connecting.
    pub fn add_upstream(&mut self, origin: usize, h2: Connection, now: Instant) -> EpKey {
        self.now = now;
        let ep = self.eps.insert(Endpoint {
            h2,
            side: Side::Up { origin },
            streams: StreamMap::new(),
            waker: None,
            woken: false,
            draining: false,
            last_active: now,
            first_request_by: None,
            ready: false,
        });
        Metrics::inc(&self.metrics.origin_connects);
        Metrics::inc(&self.metrics.origin_connections_active);
        ep
    }

    /// The origin's first SETTINGS arrived on `ep`: the connection joins its pool and the
    /// waiting calls start, within the origin's stream limit.
    fn upstream_ready(&mut self, ep: EpKey) {
        let Some(e) = self.eps.get_mut(ep) else {
            return;
        };
        if e.ready {
            return;
        }
        e.ready = true;
        let draining = e.draining;
        let Side::Up { origin } = e.side else {
            return;
        };
        let pool = &mut self.pools[origin];
        pool.connecting = pool.connecting.saturating_sub(1);
        if !draining {
            pool.conns.push(ep);
        }
        self.drain_waiting(origin);
    }

    /// An origin connection attempt failed: calls waiting for it get UNAVAILABLE naming the
    /// cause, unless another connection to the origin is still being opened or has room.
    pub fn upstream_connect_failed(&mut self, origin: usize, cause: &str) {
        Metrics::inc(&self.metrics.origin_connect_failed);
        let pool = &mut self.pools[origin];
        pool.connecting = pool.connecting.saturating_sub(1);
        if pool.connecting > 0 {
            return;
        }
        let waiting: Vec<CallKey> = pool.waiting.drain(..).collect();
        let msg = format!(
            "origin {} unavailable: {cause}",
            self.plan.origins[origin].name
        );
        for call in waiting {
            self.reply_error(call, grpc::Code::Unavailable, &msg);
        }
    }

    /// Origins the shard should open a connection to now (one entry per connection).
    pub fn take_connect_requests(&mut self) -> Vec<usize> {
        std::mem::take(&mut self.connect_requests)
    }

    /// Registers the waker of the shard's control task (connects and timers).
    pub fn set_control_waker(&mut self, waker: &Waker) {
        match &self.control_waker {
            Some(w) if w.will_wake(waker) => {}
            _ => self.control_waker = Some(waker.clone()),
        }
    }

    /// Registers the waker of the task driving `ep`'s socket.
    pub fn set_waker(&mut self, ep: EpKey, waker: &Waker) {
        if let Some(e) = self.eps.get_mut(ep) {
            e.woken = false;
            match &e.waker {
                Some(w) if w.will_wake(waker) => {}
                _ => e.waker = Some(waker.clone()),
            }
        }
    }

    fn wake(&mut self, ep: EpKey) {
        if self.driving == Some(ep) {
            return;
        }
        if let Some(e) = self.eps.get_mut(ep) {
            if let (false, Some(w)) = (e.woken, &e.waker) {
                w.wake_by_ref();
                e.woken = true;
            }
        }
    }

    fn wake_control(&mut self) {
        self.control_wakeup = true;
        if let Some(w) = self.control_waker.take() {
            w.wake();
        }
    }

    /// Whether the control task was asked to run since it last looked (clears the flag).
    pub fn take_control_wakeup(&mut self) -> bool {
        std::mem::take(&mut self.control_wakeup)
    }

    /// Graceful shutdown: every client connection gets GOAWAY(NO_ERROR) with the last stream
    /// it may finish; calls in flight continue.
    pub fn drain(&mut self) {
        let keys: Vec<EpKey> = self.eps.keys().collect();
        for ep in keys {
            if let Some(e) = self.eps.get_mut(ep) {
                if matches!(e.side, Side::Down { .. }) && !e.draining {
                    e.draining = true;
                    let _ = e.h2.send_goaway(ErrorCode::NoError, b"");
                }
            }
            self.wake(ep);
        }
    }

    /// Whether `ep` still exists.
    pub fn contains(&self, ep: EpKey) -> bool {
        self.eps.get(ep).is_some()
    }

    /// Feeds bytes received on `ep` (plaintext HTTP/2) and handles everything they cause.
    pub fn recv(&mut self, ep: EpKey, buf: &mut BytesMut, now: Instant) {
        let Some(e) = self.eps.get_mut(ep) else {
            buf.clear();
            return;
        };
        // Received bytes are not activity: `last_active` follows open streams (see on_timer),
        // so a peer dribbling a partial frame or sending only PINGs is still idle.
        self.now = now;
        let _ = e.h2.recv(buf, now);
        self.driving = Some(ep);
        self.dispatch(ep, now);
        self.driving = None;
    }

    /// Lends `ep`'s pending output to the socket driver.
    pub fn output(&mut self, ep: EpKey) -> Option<&mut Connection> {
        self.eps.get_mut(ep).map(|e| &mut e.h2)
    }

    /// Whether `ep`'s connection is finished (closed by protocol, or drained and idle) and its
    /// output flushed: the driver may close the socket.
    pub fn is_done(&self, ep: EpKey) -> bool {
        match self.eps.get(ep) {
            None => true,
            Some(e) => {
                e.h2.is_closed()
                    || (e.draining && e.streams.is_empty() && e.h2.active_streams() == 0)
            }
        }
    }

    /// The socket of `ep` closed or failed: end every call on it.
    pub fn endpoint_closed(&mut self, ep: EpKey, cause: &str) {
        let Some(e) = self.eps.get_mut(ep) else {
            return;
        };
        let calls: Vec<CallKey> = e.streams.values().copied().collect();
        let up_origin = match e.side {
            Side::Up { origin } => Some(origin),
            Side::Down { .. } => None,
        };
        if let (Some(origin), false) = (up_origin, e.ready) {
            // Closed before the origin's SETTINGS: no call started here; for the calls waiting
            // it is a failed connect.
            self.eps.remove(ep);
            Metrics::dec(&self.metrics.origin_connections_active);
            let cause = format!("connection closed before the origin's SETTINGS: {cause}");
            self.upstream_connect_failed(origin, &cause);
            return;
        }
        match up_origin {
            None => {
                for call in calls {
                    // The client is gone: cancel the origin side and forget the call.
                    self.finish_call(call, Some(ErrorCode::Cancel));
                }
            }
            Some(origin) => {
                let msg = format!(
                    "origin {} connection closed: {cause}",
                    self.plan.origins[origin].name
                );
                for call in calls {
                    if let Some(c) = self.calls.get_mut(call) {
                        c.up = None; // the origin stream is gone with the connection
                    }
                    self.reply_error(call, grpc::Code::Unavailable, &msg);
                }
                let pool = &mut self.pools[origin];
                pool.conns.retain(|&k| k != ep);
                Metrics::dec(&self.metrics.origin_connections_active);
            }
        }
        self.eps.remove(ep);
        if let Some(origin) = up_origin {
            self.drain_waiting(origin);
        }
    }

    // ----- event dispatch -------------------------------------------------------------------

    fn dispatch(&mut self, ep: EpKey, now: Instant) {
        let mut events = std::mem::take(&mut self.events);
        let is_down = matches!(self.eps.get(ep).map(|e| &e.side), Some(Side::Down { .. }));
        // Handling an event can make the connection emit more (a reset for a malformed request
        // that trips max_resets_per_window adds LimitExceeded and Closed): drain those too, in
        // a bounded number of rounds (what is left waits for the next dispatch).
        for _ in 0..DISPATCH_ROUNDS {
            if let Some(e) = self.eps.get_mut(ep) {
                while let Some(ev) = e.h2.poll_event() {
                    events.push(ev);
                }
            }
            if events.is_empty() {
                break;
            }
            for ev in events.drain(..) {
                if is_down {
                    self.on_down_event(ep, ev, now);
                } else {
                    self.on_up_event(ep, ev, now);
                }
            }
        }
        self.events = events;
    }

    fn on_down_event(&mut self, ep: EpKey, ev: Event, now: Instant) {
        match ev {
            Event::Headers {
                stream,
                fields,
                end_stream,
                kind: HeadersKind::Initial,
            } => self.on_request(ep, stream, fields, end_stream, now),
            Event::Headers {
                stream,
                fields,
                kind: HeadersKind::Trailers,
                ..
            } => self.on_request_trailers(ep, stream, fields),
            Event::Headers { stream, .. } => {
                // A client sent 1xx-style headers: malformed for a request.
                self.reset_down(ep, stream, ErrorCode::ProtocolError);
            }
            Event::Data {
                stream,
                data,
                end_stream,
                ..
            } => self.on_request_data(ep, stream, data, end_stream),
            Event::PeerReset { stream, .. } => {
                Metrics::inc(&self.metrics.client_resets);
                if let Some(call) = self.call_on(ep, stream) {
                    self.finish_call(call, Some(ErrorCode::Cancel));
                }
            }
            Event::StreamReset { stream, .. } => {
                if let Some(call) = self.call_on(ep, stream) {
                    self.finish_call(call, Some(ErrorCode::Cancel));
                }
            }
            Event::SendCapacity { stream, .. } => self.on_capacity(ep, stream, true),
            Event::GoAway { .. } => {
                if let Some(e) = self.eps.get_mut(ep) {
                    e.draining = true;
                }
            }
            Event::LimitExceeded { limit, .. } => self.metrics.limit(limit.name()),
            Event::PeerSettings { .. }
            | Event::SettingsAcked
            | Event::PingRtt { .. }
            | Event::Closed { .. } => {}
        }
    }

    fn on_up_event(&mut self, ep: EpKey, ev: Event, now: Instant) {
        match ev {
            Event::Headers {
                stream,
                fields,
                end_stream,
                kind: HeadersKind::Initial,
            } => self.on_response(ep, stream, fields, end_stream),
            Event::Headers {
                stream,
                fields,
                kind: HeadersKind::Trailers,
                ..
            } => self.on_response_trailers(ep, stream, fields),
            Event::Headers { .. } => {} // 1xx: gRPC has no use for it; dropped
            Event::Data {
                stream,
                data,
                end_stream,
                ..
            } => self.on_response_data(ep, stream, data, end_stream),
            Event::PeerReset { stream, code } => self.on_origin_reset(ep, stream, code, now),
            Event::StreamReset { stream, code, .. } => {
                if let Some(call) = self.call_on(ep, stream) {
                    let msg = format!("origin sent a malformed stream ({code})");
                    self.detach_up(call);
                    self.reply_error(call, grpc::Code::Internal, &msg);
                }
            }
            Event::SendCapacity { stream, .. } => self.on_capacity(ep, stream, false),
            Event::GoAway {
                unprocessed, code, ..
            } => self.on_origin_goaway(ep, unprocessed, code, now),
            Event::LimitExceeded { limit, .. } => self.metrics.limit(limit.name()),
            Event::PeerSettings { .. } => self.upstream_ready(ep),
            Event::SettingsAcked | Event::PingRtt { .. } | Event::Closed { .. } => {}
        }
    }

    fn walker_limits(&self) -> WalkerLimits {
        WalkerLimits {
            max_message_size: self.plan.max_message_bytes,
        }
    }

    /// Walks gRPC message prefixes in `data` (no copy); on a violation (message over
    /// `max_message_bytes`, bad compressed flag) ends the call with the status it names.
    fn check_messages(&mut self, call: CallKey, data: &Bytes, request: bool) -> bool {
        let Some(c) = self.calls.get_mut(call) else {
            return false;
        };
        let walker = if request {
            c.walk_req.as_mut()
        } else {
            c.walk_resp.as_mut()
        };
        let Some(walker) = walker else {
            return true;
        };
        match walker.check(data) {
            Ok(()) => true,
            Err(err) => {
                let side = if request { "request" } else { "response" };
                let msg = format!("{side} {err} (limit max_message_bytes)");
                self.metrics.limit("max_message_bytes");
                self.reset_up(call, ErrorCode::Cancel);
                self.reply_error(call, err.code(), &msg);
                false
            }
        }
    }

    fn call_on(&self, ep: EpKey, sid: StreamId) -> Option<CallKey> {
        self.eps.get(ep)?.streams.get(sid.get()).copied()
    }

    /// Resets a client stream for a peer error the forwarder found (malformed request or
    /// trailers). It counts toward the client's `max_resets_per_window`, so a stream of
    /// malformed requests ends in GOAWAY(ENHANCE_YOUR_CALM) like a reset flood.
    fn reset_down(&mut self, ep: EpKey, sid: StreamId, code: ErrorCode) {
        let now = self.now;
        if let Some(e) = self.eps.get_mut(ep) {
            let _ = e.h2.reset_for_peer_error(sid, code, now);
        }
        self.wake(ep);
    }

    // ----- requests (client → origin) -------------------------------------------------------

    fn on_request(
        &mut self,
        ep: EpKey,
        sid: StreamId,
        fields: Vec<HeaderField>,
        end_stream: bool,
        now: Instant,
    ) {
        if self.eps.get(ep).is_none_or(|e| e.h2.is_closed()) {
            // The connection failed after this request was parsed (e.g. a later frame of the
            // same read tripped a limit): its streams are gone and nothing can answer.
            return;
        }
        Metrics::inc(&self.metrics.streams_total);
        if let Some(e) = self.eps.get_mut(ep) {
            e.first_request_by = None;
        }
        let head = match message::parse_request(&fields) {
            // §8.1.1: END_STREAM on the HEADERS means no content; a non-zero content-length
            // then contradicts it.
            Ok(head) if end_stream && head.content_length.is_some_and(|n| n > 0) => {
                self.metrics.limit("malformed_request");
                self.reset_down(ep, sid, ErrorCode::ProtocolError);
                return;
            }
            Ok(head) => head,
            Err(_) => {
                // RFC 9113 §8.1.1: a malformed request is a stream error of type PROTOCOL_ERROR.
                self.metrics.limit("malformed_request");
                self.reset_down(ep, sid, ErrorCode::ProtocolError);
                return;
            }
        };
        let is_grpc = head
            .content_type
            .map(|ct| grpc::classify_content_type(ct).is_grpc())
            .unwrap_or(false);
        if is_grpc {
            Metrics::inc(&self.metrics.grpc_requests);
        } else {
            Metrics::inc(&self.metrics.non_grpc_requests);
        }
        let sni = match self.eps.get(ep).map(|e| &e.side) {
            Some(Side::Down { sni, .. }) => sni.clone(),
            _ => None,
        };
        let plan = Rc::clone(&self.plan);
        let authority = head.authority.unwrap_or_default();
        let host_name = |i: usize| plan.host_names.get(i).map(String::as_str).unwrap_or("?");
        let (host, route) = match plan.routes.lookup(authority, sni.as_deref(), head.path) {
            RouteDecision::Matched { host, route } => (host, route),
            RouteDecision::NoRoute { host } => {
                let msg = format!(
                    "no route for {} on host {}",
                    String::from_utf8_lossy(head.path),
                    host_name(host.index)
                );
                return self.answer_unrouted(
                    ep,
                    sid,
                    is_grpc,
                    grpc::Code::Unimplemented,
                    404,
                    &msg,
                );
            }
            RouteDecision::NoHost => {
                let msg = format!(
                    "no host configured for {}",
                    String::from_utf8_lossy(authority)
                );
                return self.answer_unrouted(
                    ep,
                    sid,
                    is_grpc,
                    grpc::Code::Unimplemented,
                    404,
                    &msg,
                );
            }
            RouteDecision::SniMismatch { .. } => {
                let msg = format!(
                    "TLS server name {} does not match :authority {}",
                    sni.as_deref().unwrap_or("(none)"),
                    String::from_utf8_lossy(authority)
                );
                return self.answer_unrouted(
                    ep,
                    sid,
                    is_grpc,
                    grpc::Code::PermissionDenied,
                    421,
                    &msg,
                );
            }
        };
        if is_grpc && !host.grpc {
            let msg = format!("gRPC is switched off for host {}", host_name(host.index));
            let code = grpc::Code::from_u32(u32::from(host.grpc_off_status))
                .unwrap_or(grpc::Code::Unimplemented);
            return self.answer_unrouted(ep, sid, true, code, 0, &msg);
        }
        if !is_grpc && host.non_grpc == NonGrpcPolicy::Reject {
            self.metrics.limit("non_grpc_rejected");
            return self.answer_status(ep, sid, 415);
        }
        // Deadline: starts when the HEADERS arrive (now).
        let mut deadline = None;
        if is_grpc {
            let budget = match head.grpc_timeout.map(grpc::parse_timeout) {
                Some(Ok(d)) => Some(match route.max_deadline {
                    Some(cap) => d.min(cap),
                    None => d,
                }),
                Some(Err(e)) => {
                    let msg = format!("malformed grpc-timeout: {e}");
                    return self.answer_unrouted(ep, sid, true, grpc::Code::Internal, 0, &msg);
                }
                None => route.default_deadline,
            };
            if let Some(budget) = budget {
                if budget.is_zero() {
                    Metrics::inc(&self.metrics.deadlines_exceeded);
                    return self.answer_unrouted(
                        ep,
                        sid,
                        true,
                        grpc::Code::DeadlineExceeded,
                        0,
                        "deadline exceeded before the call was forwarded",
                    );
                }
                deadline = Some(now + budget);
            }
        }
        let origin = route.origin;
        // The head borrows `fields`, which the call takes over.
        let req_remaining = head.content_length;
        let call = self.calls.insert(Call {
            down: ep,
            down_sid: sid,
            up: None,
            origin,
            request: fields,
            grpc: is_grpc,
            forwarded: route.forwarded,
            authority: route
                .authority
                .as_deref()
                .map(|a| Bytes::copy_from_slice(a.as_bytes())),
            deadline,
            to_up: Queue {
                chunks: Chunks::default(),
                end: end_stream,
                ..Queue::default()
            },
            to_down: Queue {
                chunks: Chunks::default(),
                ..Queue::default()
            },
            sent: self.spares.vec(),
            sent_bytes: 0,
            retry_ok: true,
            resp_started: false,
            up_done: false,
            client_done: end_stream,
            req_remaining,
            walk_req: is_grpc.then(|| MessageWalker::new(self.walker_limits())),
            walk_resp: is_grpc.then(|| MessageWalker::new(self.walker_limits())),
            avoid: None,
        });
        Metrics::inc(&self.metrics.streams_active);
        if let Some(e) = self.eps.get_mut(ep) {
            e.streams.insert(sid.get(), call);
        }
        if let Some(d) = deadline {
            let earlier = self
                .deadlines
                .peek()
                .map(|Reverse((t, _))| d < *t)
                .unwrap_or(true);
            self.deadlines.push(Reverse((d, call)));
            if earlier {
                self.wake_control();
            }
        }
        self.assign(call);
    }

    /// Answers a request the edge will not forward: Trailers-Only for gRPC, a bare status for
    /// other HTTP/2 requests (`http_status` 0 means "gRPC only").
    fn answer_unrouted(
        &mut self,
        ep: EpKey,
        sid: StreamId,
        is_grpc: bool,
        code: grpc::Code,
        http_status: u16,
        msg: &str,
    ) {
        if is_grpc || http_status == 0 {
            self.metrics.edge_status(code.as_u32());
            let fields = grpc::trailers_only(code, msg, &[]);
            if let Some(e) = self.eps.get_mut(ep) {
                let refs: Vec<FieldRef<'_>> = fields.iter().map(grpc_field_ref).collect();
                let _ = e.h2.send_headers(sid, &refs, true);
            }
            self.wake(ep);
        } else {
            self.answer_status(ep, sid, http_status);
        }
    }

    fn answer_status(&mut self, ep: EpKey, sid: StreamId, status: u16) {
        let text = status.to_string();
        if let Some(e) = self.eps.get_mut(ep) {
            let fields = [FieldRef {
                name: b":status",
                value: text.as_bytes(),
                sensitive: false,
            }];
            let _ = e.h2.send_headers(sid, &fields, true);
        }
        self.wake(ep);
    }

    /// Puts a call on an origin connection with room, or queues it and asks for a connection.
    /// A retried call avoids the connection that refused it, unless the pool cannot grow.
    fn assign(&mut self, call: CallKey) {
        let Some((origin, avoid)) = self.calls.get(call).map(|c| (c.origin, c.avoid)) else {
            return;
        };
        let cap = self.plan.origins[origin].max_streams_per_connection;
        let has_room = |e: &Endpoint| {
            !e.draining && e.h2.can_open_stream() && (cap == 0 || (e.streams.len() as u32) < cap)
        };
        let pool = &self.pools[origin];
        let found = pool
            .conns
            .iter()
            .copied()
            .find(|&k| Some(k) != avoid && self.eps.get(k).is_some_and(has_room));
        let can_grow =
            pool.conns.len() + pool.connecting < self.plan.origins[origin].max_connections;
        let fallback = avoid.filter(|&k| {
            !can_grow && pool.conns.contains(&k) && self.eps.get(k).is_some_and(has_room)
        });
        match found.or(fallback) {
            Some(up) => self.start_on(call, up),
            None => {
                self.pools[origin].waiting.push_back(call);
                self.request_connection(origin);
            }
        }
    }

    /// Asks for one more origin connection when calls wait, every live connection is full and
    /// the pool is below `max_connections`.
    fn request_connection(&mut self, origin: usize) {
        let max = self.plan.origins[origin].max_connections;
        let pool = &mut self.pools[origin];
        let live = pool.conns.len() + pool.connecting;
        // One connection at a time, more only for a burst that one connection cannot carry.
        if live < max && (pool.connecting == 0 || pool.connecting * 100 < pool.waiting.len()) {
            pool.connecting += 1;
            self.connect_requests.push(origin);
            self.wake_control();
        }
    }

    fn drain_waiting(&mut self, origin: usize) {
        let n = self.pools[origin].waiting.len();
        for _ in 0..n {
            let Some(call) = self.pools[origin].waiting.pop_front() else {
                break;
            };
            if self.calls.get(call).is_some() {
                self.assign(call);
            }
        }
    }

    /// Opens the origin stream for a call and sends its headers and what is queued.
    fn start_on(&mut self, call: CallKey, up: EpKey) {
        let Some(c) = self.calls.get(call) else {
            return;
        };
        let origin = c.origin;
        let client_ip = match self.eps.get(c.down).map(|e| &e.side) {
            Some(Side::Down { peer, .. }) => peer.ip(),
            _ => std::net::Ipv4Addr::UNSPECIFIED.into(),
        };
        let now_budget = c.deadline.map(|d| d.saturating_duration_since(self.now));
        if let Some(left) = now_budget {
            self.timeout_text = grpc::format_timeout(left);
        }
        let c = self.calls.get(call).expect("checked above");
        let cfg = UpstreamRequest {
            scheme: self.plan.origins[origin].scheme,
            authority_rewrite: c.authority.as_deref(),
            grpc_timeout: now_budget.map(|_| self.timeout_text.as_bytes()),
            forwarded: c.forwarded,
            client_ip,
        };
        let end_now = c.to_up.end && c.to_up.bytes == 0 && c.to_up.trailers.is_none();
        let mut out: Vec<FieldRef<'_>> = std::mem::take(&mut self.spares.refs);
        headers::upstream_request(&c.request, &cfg, &mut self.scratch, &mut out);
        let Some(e) = self.eps.get_mut(up) else {
            return;
        };
        let sid = match e.h2.open_stream(&out, end_now) {
            Ok(sid) => sid,
            Err(_) => {
                // Full, going away or out of stream ids: never use it for new calls again
                // unless it has room (ConcurrencyLimit), and place the call elsewhere.
                self.spares.refs = recycle_refs(out);
                if !e.h2.can_open_stream() && e.h2.is_going_away() {
                    e.draining = true;
                }
                self.pools[origin].waiting.push_front(call);
                self.request_connection(origin);
                return;
            }
        };
        self.spares.refs = recycle_refs(out);
        e.streams.insert(sid.get(), call);
        let c = self.calls.get_mut(call).expect("checked above");
        c.up = Some((up, sid));
        if end_now {
            c.to_up.end_sent = true;
        }
        self.flush_to_up(call);
        self.wake(up);
    }

    /// DATA that will not be forwarded: its flow-control credit goes back to the sender at once
    /// (the bytes are dropped).
    fn drop_data(&mut self, ep: EpKey, sid: StreamId, len: usize) {
        if let Some(e) = self.eps.get_mut(ep) {
            e.h2.release_capacity(sid, len);
        }
    }

    fn on_request_data(&mut self, ep: EpKey, sid: StreamId, data: Bytes, end_stream: bool) {
        let Some(call) = self.call_on(ep, sid) else {
            // No call (already answered): give the credit back at once, drop the bytes. The
            // codec returns padding credit itself.
            self.drop_data(ep, sid, data.len());
            self.wake(ep);
            return;
        };
        if !self.check_content_length(call, data.len(), end_stream) {
            self.drop_data(ep, sid, data.len());
            return;
        }
        if !self.check_messages(call, &data, true) {
            // The call was answered; the bytes were never queued: return their credit.
            self.drop_data(ep, sid, data.len());
            return;
        }
        let c = self.calls.get_mut(call).expect("mapped call exists");
        queue_push(&mut c.to_up, data, &self.metrics);
        if end_stream {
            c.to_up.end = true;
            c.client_done = true;
        }
        self.flush_to_up(call);
    }

    /// RFC 9113 §8.1.1: a request whose DATA total differs from its `content-length` is
    /// malformed and must not be forwarded. Checked before each chunk is queued, so the origin
    /// never receives the offending bytes nor the end of the request: on a violation the
    /// client gets RST_STREAM(PROTOCOL_ERROR), the origin RST_STREAM(CANCEL). Returns `false`
    /// when the call was ended.
    fn check_content_length(&mut self, call: CallKey, len: usize, end_stream: bool) -> bool {
        let Some(c) = self.calls.get_mut(call) else {
            return false;
        };
        let Some(remaining) = c.req_remaining else {
            return true;
        };
        let len = len as u64;
        if len <= remaining && (!end_stream || len == remaining) {
            c.req_remaining = Some(remaining - len);
            return true;
        }
        let (down, sid) = (c.down, c.down_sid);
        self.metrics.limit("malformed_request");
        self.reset_down(down, sid, ErrorCode::ProtocolError);
        self.finish_call(call, Some(ErrorCode::Cancel));
        false
    }

    fn on_request_trailers(&mut self, ep: EpKey, sid: StreamId, fields: Vec<HeaderField>) {
        let Some(call) = self.call_on(ep, sid) else {
            return;
        };
        if message::check_trailers(&fields).is_err() {
            self.metrics.limit("malformed_trailers");
            self.reset_down(ep, sid, ErrorCode::ProtocolError);
            self.finish_call(call, Some(ErrorCode::Cancel));
            return;
        }
        if !self.check_content_length(call, 0, true) {
            return;
        }
        let c = self.calls.get_mut(call).expect("mapped call exists");
        c.to_up.trailers = Some(fields);
        c.to_up.end = true;
        c.client_done = true;
        self.flush_to_up(call);
    }

    /// Sends queued request bytes to the origin as far as its windows allow, returning window
    /// credit to the client for exactly what the origin's codec accepted.
    fn flush_to_up(&mut self, call: CallKey) {
        let Some(c) = self.calls.get_mut(call) else {
            return;
        };
        let Some((up, usid)) = c.up else {
            return;
        };
        let Some(e) = self.eps.get_mut(up) else {
            return;
        };
        // Bytes sent to the origin are retained (views, no copy) while a retry is still possible.
        let limit = self.plan.retry_buffer_bytes;
        let (retry_ok, sent, sent_bytes) = (&mut c.retry_ok, &mut c.sent, &mut c.sent_bytes);
        let released = send_queued(
            &mut e.h2,
            usid,
            &mut c.to_up,
            &mut self.spares.refs,
            |piece| {
                if *retry_ok {
                    if *sent_bytes + piece.len() <= limit {
                        *sent_bytes += piece.len();
                        sent.push(piece.clone());
                    } else {
                        *retry_ok = false;
                        sent.clear();
                    }
                }
            },
        );
        let (down, dsid) = (c.down, c.down_sid);
        self.metrics.buffer_shrink(released);
        Metrics::add(&self.metrics.bytes_to_origin, released as u64);
        self.wake(up);
        if released > 0 {
            if let Some(d) = self.eps.get_mut(down) {
                d.h2.release_capacity(dsid, released);
            }
            self.wake(down);
        }
    }

    // ----- responses (origin → client) ------------------------------------------------------

    fn on_response(&mut self, ep: EpKey, sid: StreamId, fields: Vec<HeaderField>, end: bool) {
        let Some(call) = self.call_on(ep, sid) else {
            return;
        };
        let head = match message::parse_response(&fields) {
            Ok(h) => h,
            Err(err) => {
                let msg = format!("origin sent a malformed response: {err}");
                self.reset_up(call, ErrorCode::ProtocolError);
                return self.reply_error(call, grpc::Code::Internal, &msg);
            }
        };
        if head.is_informational() {
            return;
        }
        let c = self.calls.get_mut(call).expect("mapped call exists");
        c.retry_ok = false;
        c.sent.clear();
        if c.grpc && head.status != 200 {
            // gRPC's HTTP-to-status mapping, done at the edge so the client sees a gRPC status
            // naming the cause instead of an HTTP error page.
            let code = grpc::Code::from_http_status(head.status);
            let msg = format!("origin answered HTTP {} instead of gRPC", head.status);
            self.reset_up(call, ErrorCode::Cancel);
            return self.reply_error(call, code, &msg);
        }
        c.resp_started = true;
        if end {
            c.up_done = true;
            c.to_down.end = true;
            c.to_down.end_sent = true;
        }
        let (down, dsid) = (c.down, c.down_sid);
        if let Some(d) = self.eps.get_mut(down) {
            let mut refs: Vec<FieldRef<'_>> = std::mem::take(&mut self.spares.refs);
            headers::pass_through(&fields, &mut refs);
            let _ = d.h2.send_headers(dsid, &refs, end);
            self.spares.refs = recycle_refs(refs);
        }
        conn::recycle_fields(fields);
        self.wake(down);
        if end {
            self.complete_if_done(call);
        }
    }

    fn on_response_data(&mut self, ep: EpKey, sid: StreamId, data: Bytes, end: bool) {
        let Some(call) = self.call_on(ep, sid) else {
            self.drop_data(ep, sid, data.len());
            self.wake(ep);
            return;
        };
        if !self.calls.get(call).is_some_and(|c| c.resp_started) {
            // DATA before HEADERS is a protocol error the codec reports; be safe anyway.
            self.drop_data(ep, sid, data.len());
            return;
        }
        if !self.check_messages(call, &data, false) {
            self.drop_data(ep, sid, data.len());
            return;
        }
        let c = self.calls.get_mut(call).expect("mapped call exists");
        queue_push(&mut c.to_down, data, &self.metrics);
        if end {
            c.to_down.end = true;
            c.up_done = true;
        }
        self.flush_to_down(call);
    }

    fn on_response_trailers(&mut self, ep: EpKey, sid: StreamId, fields: Vec<HeaderField>) {
        let Some(call) = self.call_on(ep, sid) else {
            return;
        };
        if let Err(err) = message::check_trailers(&fields) {
            let msg = format!("origin sent malformed trailers: {err}");
            self.reset_up(call, ErrorCode::ProtocolError);
            return self.reply_error(call, grpc::Code::Internal, &msg);
        }
        let c = self.calls.get_mut(call).expect("mapped call exists");
        c.to_down.trailers = Some(fields);
        c.to_down.end = true;
        c.up_done = true;
        self.flush_to_down(call);
    }

    /// Sends queued response bytes to the client as far as its windows allow, returning window
    /// credit to the origin for exactly what the client's codec accepted.
    fn flush_to_down(&mut self, call: CallKey) {
        let Some(c) = self.calls.get_mut(call) else {
            return;
        };
        let (down, dsid) = (c.down, c.down_sid);
        let Some(d) = self.eps.get_mut(down) else {
            return;
        };
        let released = send_queued(
            &mut d.h2,
            dsid,
            &mut c.to_down,
            &mut self.spares.refs,
            |_| {},
        );
        let up = c.up;
        let done = c.to_down.end_sent;
        self.metrics.buffer_shrink(released);
        Metrics::add(&self.metrics.bytes_to_client, released as u64);
        self.wake(down);
        if released > 0 {
            if let Some((up, usid)) = up {
                if let Some(u) = self.eps.get_mut(up) {
                    u.h2.release_capacity(usid, released);
                }
                self.wake(up);
            }
        }
        if done {
            self.complete_if_done(call);
        }
    }

    /// The response reached the client in full: end the call, cancelling the origin stream if
    /// its request side is still open.
    ///
    /// The edge does not follow a complete response with RST_STREAM(NO_ERROR) to a client still
    /// sending (RFC 9113 §8.1 allows it, does not require it): the `h2` crate's client — inside
    /// tonic and hyper — fails the whole response when that reset arrives before it has read
    /// the response. Whatever the client still sends on the stream is dropped with its credit
    /// returned, and the stream closes when the client ends it.
    fn complete_if_done(&mut self, call: CallKey) {
        let Some(c) = self.calls.get(call) else {
            return;
        };
        if !c.to_down.end_sent {
            return;
        }
        let up_open = c.up.is_some() && !(c.to_up.end_sent && c.up_done);
        self.finish_call(call, up_open.then_some(ErrorCode::Cancel));
    }

    fn on_capacity(&mut self, ep: EpKey, sid: StreamId, is_down: bool) {
        let calls: Vec<CallKey> = match self.eps.get(ep) {
            None => return,
            Some(e) if sid.is_zero() => e.streams.values().copied().collect(),
            Some(e) => e.streams.get(sid.get()).copied().into_iter().collect(),
        };
        for call in calls {
            if is_down {
                self.flush_to_down(call);
            } else {
                self.flush_to_up(call);
            }
        }
    }

    fn on_origin_reset(&mut self, ep: EpKey, sid: StreamId, code: ErrorCode, _now: Instant) {
        let Some(call) = self.call_on(ep, sid) else {
            return;
        };
        if let Some(e) = self.eps.get_mut(ep) {
            e.streams.remove(sid.get());
        }
        let c = self.calls.get_mut(call).expect("mapped call exists");
        c.up = None;
        if c.up_done {
            // The origin finished its response (e.g. early trailers) and then reset with
            // NO_ERROR to stop the request body: its status stands. Drop what the client still
            // sends; the response keeps flowing to the client.
            c.to_up.end = true;
            c.to_up.end_sent = true;
            self.drop_request_queue(call);
            self.flush_to_down(call);
            return;
        }
        if code == ErrorCode::RefusedStream && c.retry_ok {
            // REFUSED_STREAM: the origin did not process the stream (RFC 9113 §8.7); try
            // another connection.
            c.avoid = Some(ep);
            return self.retry(call);
        }
        Metrics::inc(&self.metrics.origin_resets);
        let status = grpc::Code::from_rst_stream(code.to_u32());
        let msg = format!("origin reset the stream ({code})");
        if c.resp_started {
            // Mid-response: mirror the reset, as the origin meant it.
            let (down, dsid) = (c.down, c.down_sid);
            if let Some(d) = self.eps.get_mut(down) {
                let _ = d.h2.send_reset(dsid, code);
            }
            self.wake(down);
            self.finish_call(call, None);
        } else {
            self.reply_error(call, status, &msg);
        }
    }

    fn on_origin_goaway(
        &mut self,
        ep: EpKey,
        unprocessed: Vec<StreamId>,
        code: ErrorCode,
        _now: Instant,
    ) {
        Metrics::inc(&self.metrics.origin_goaways);
        let origin = match self.eps.get_mut(ep) {
            Some(e) => {
                e.draining = true;
                match e.side {
                    Side::Up { origin } => origin,
                    Side::Down { .. } => return,
                }
            }
            None => return,
        };
        self.pools[origin].conns.retain(|&k| k != ep);
        for sid in unprocessed {
            let Some(call) = self.call_on(ep, sid) else {
                continue;
            };
            if let Some(e) = self.eps.get_mut(ep) {
                e.streams.remove(sid.get());
            }
            let retry_ok = self.calls.get(call).is_some_and(|c| c.retry_ok);
            if let Some(c) = self.calls.get_mut(call) {
                c.up = None;
            }
            if retry_ok {
                self.retry(call);
            } else {
                let msg = format!(
                    "origin {} went away ({code}) before processing the call",
                    self.plan.origins[origin].name
                );
                self.reply_error(call, grpc::Code::Unavailable, &msg);
            }
        }
        // Calls below last-stream-id finish on this connection; new ones go elsewhere.
        self.drain_waiting(origin);
    }

    /// Starts a call again on another origin connection: it provably never started.
    fn retry(&mut self, call: CallKey) {
        let Some(c) = self.calls.get_mut(call) else {
            return;
        };
        c.retry_ok = false; // once
        Metrics::inc(&self.metrics.retries);
        // Put the bytes already sent back in front of what is still queued. Their window
        // credit was already returned to the client, so they are re-counted as buffered.
        let sent = std::mem::take(&mut c.sent);
        let sent_bytes = std::mem::take(&mut c.sent_bytes);
        for chunk in sent.into_iter().rev() {
            c.to_up.chunks.push_front(chunk);
        }
        c.to_up.bytes += sent_bytes;
        c.to_up.end_sent = false;
        self.metrics.buffer_grow(sent_bytes);
        self.assign(call);
    }

    // ----- ending calls -----------------------------------------------------------------------

    fn reset_up(&mut self, call: CallKey, code: ErrorCode) {
        let Some(c) = self.calls.get_mut(call) else {
            return;
        };
        if let Some((up, usid)) = c.up.take() {
            if let Some(u) = self.eps.get_mut(up) {
                let _ = u.h2.send_reset(usid, code);
                u.streams.remove(usid.get());
            }
            self.wake(up);
        }
    }

    fn detach_up(&mut self, call: CallKey) {
        if let Some(c) = self.calls.get_mut(call) {
            if let Some((up, usid)) = c.up.take() {
                if let Some(u) = self.eps.get_mut(up) {
                    u.streams.remove(usid.get());
                }
            }
        }
    }

    fn drop_request_queue(&mut self, call: CallKey) {
        let Some(c) = self.calls.get_mut(call) else {
            return;
        };
        let bytes = std::mem::take(&mut c.to_up.bytes);
        c.to_up.chunks.clear();
        c.to_up.trailers = None;
        let (down, dsid) = (c.down, c.down_sid);
        if bytes > 0 {
            self.metrics.buffer_shrink(bytes);
            if let Some(d) = self.eps.get_mut(down) {
                d.h2.release_capacity(dsid, bytes);
            }
            self.wake(down);
        }
    }

    /// Ends a call with a gRPC status produced by the edge: Trailers-Only when the response has
    /// not started, trailers after what was sent otherwise. The origin stream is cancelled.
    fn reply_error(&mut self, call: CallKey, code: grpc::Code, msg: &str) {
        let Some(c) = self.calls.get(call) else {
            return;
        };
        let (down, dsid, started) = (c.down, c.down_sid, c.resp_started);
        self.metrics.edge_status(code.as_u32());
        if let Some(d) = self.eps.get_mut(down) {
            if started {
                let fields = grpc::trailers(code, msg, &[]);
                let refs: Vec<FieldRef<'_>> = fields.iter().map(grpc_field_ref).collect();
                let _ = d.h2.send_trailers(dsid, &refs);
            } else {
                let fields = grpc::trailers_only(code, msg, &[]);
                let refs: Vec<FieldRef<'_>> = fields.iter().map(grpc_field_ref).collect();
                let _ = d.h2.send_headers(dsid, &refs, true);
            }
        }
        self.wake(down);
        self.finish_call(call, Some(ErrorCode::Cancel));
    }

    /// Forgets a call: unmaps it from both endpoints (resetting the origin stream with
    /// `up_reset` if it is still open), returns every byte of window credit it held, and
    /// un-counts its queued bytes.
    fn finish_call(&mut self, call: CallKey, up_reset: Option<ErrorCode>) {
        let Some(c) = self.calls.remove(call) else {
            return;
        };
        Metrics::dec(&self.metrics.streams_active);
        let now = self.now;
        if let Some(d) = self.eps.get_mut(c.down) {
            d.streams.remove(c.down_sid.get());
            d.last_active = now;
            if c.to_up.bytes > 0 {
                d.h2.release_capacity(c.down_sid, c.to_up.bytes);
            }
        }
        // The request's field list is reused by a later header block.
        conn::recycle_fields(c.request);
        self.wake(c.down);
        if let Some((up, usid)) = c.up {
            if let Some(u) = self.eps.get_mut(up) {
                u.streams.remove(usid.get());
                u.last_active = now;
                if let Some(code) = up_reset {
                    let _ = u.h2.send_reset(usid, code);
                }
                if c.to_down.bytes > 0 {
                    u.h2.release_capacity(usid, c.to_down.bytes);
                }
            }
            self.wake(up);
        }
        self.metrics.buffer_shrink(c.to_up.bytes + c.to_down.bytes);
        let pool = &mut self.pools[c.origin];
        pool.waiting.retain(|&k| k != call);
        let (origin, started) = (c.origin, c.up.is_some());
        self.spares.keep_vec(c.sent);
        if started && !pool.waiting.is_empty() {
            // A stream slot freed on an origin connection: start a waiting call there.
            self.drain_waiting(origin);
        }
    }

    // ----- time -------------------------------------------------------------------------------

    /// The earliest instant at which [`Forwarder::on_timer`] has work.
    pub fn next_timer(&self) -> Option<Instant> {
        let calls = self.deadlines.peek().map(|Reverse((t, _))| *t);
        let conns = self.eps.keys().filter_map(|k| {
            let e = self.eps.get(k)?;
            let idle = match &e.side {
                _ if !e.streams.is_empty() || e.draining => None,
                Side::Down { .. } => self.plan.idle_timeout.map(|t| e.last_active + t),
                Side::Up { origin } => self.plan.origins[*origin]
                    .idle_timeout
                    .map(|t| e.last_active + t),
            };
            [e.h2.next_deadline(), idle, e.first_request_by]
                .into_iter()
                .flatten()
                .min()
        });
        calls.into_iter().chain(conns).min()
    }

    /// Runs what is due at `now`: call deadlines, codec timeouts, idle connections.
    pub fn on_timer(&mut self, now: Instant) {
        self.now = now;
        while let Some(Reverse((t, call))) = self.deadlines.peek().copied() {
            if t > now {
                break;
            }
            self.deadlines.pop();
            let live = self.calls.get(call).is_some_and(|c| c.deadline == Some(t));
            if live {
                Metrics::inc(&self.metrics.deadlines_exceeded);
                self.reply_error(call, grpc::Code::DeadlineExceeded, "deadline exceeded");
            }
        }
        let keys: Vec<EpKey> = self.eps.keys().collect();
        for ep in keys {
            let Some(e) = self.eps.get_mut(ep) else {
                continue;
            };
            if e.h2.next_deadline().is_some_and(|t| t <= now) {
                e.h2.poll_timeout(now);
                self.dispatch(ep, now);
                self.wake(ep);
                continue;
            }
            if e.first_request_by.is_some_and(|t| t <= now) {
                // header_timeout: a client that completes TLS but never asks for anything.
                e.first_request_by = None;
                e.draining = true;
                let _ = e.h2.send_goaway(ErrorCode::NoError, b"header timeout");
                self.metrics.limit("header_timeout");
                self.wake(ep);
                continue;
            }
            if !e.streams.is_empty() || e.draining {
                // Open streams are activity: the idle clock starts when the last one ends
                // (finish_call also sets it; this tick covers every other way a stream goes).
                e.last_active = now;
                continue;
            }
            let (idle, origin) = match &e.side {
                Side::Down { .. } => (self.plan.idle_timeout, None),
                Side::Up { origin } => (self.plan.origins[*origin].idle_timeout, Some(*origin)),
            };
            if idle.is_some_and(|idle| e.last_active + idle <= now) {
                e.draining = true;
                let _ = e.h2.send_goaway(ErrorCode::NoError, b"idle");
                if let Some(origin) = origin {
                    self.pools[origin].conns.retain(|&k| k != ep);
                }
                Metrics::inc(&self.metrics.connections_idle_closed);
                self.wake(ep);
            }
        }
    }

    /// Number of calls in flight (for drain and tests).
    pub fn calls_in_flight(&self) -> usize {
        self.calls.len()
    }
}

fn grpc_field_ref(f: &grpc::HeaderField) -> FieldRef<'_> {
    FieldRef {
        name: &f.name,
        value: &f.value,
        sensitive: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The recycled field-list buffer keeps its allocation (what `Spares` is for), empty.
    #[test]
    fn recycled_refs_keep_their_allocation() {
        let name = b"content-type".to_vec();
        let mut v: Vec<FieldRef<'_>> = Vec::with_capacity(8);
        v.push(FieldRef {
            name: &name,
            value: b"application/grpc",
            sensitive: false,
        });
        let (ptr, cap) = (v.as_ptr() as usize, v.capacity());
        let r = recycle_refs(v);
        assert!(r.is_empty());
        assert_eq!((r.as_ptr() as usize, r.capacity()), (ptr, cap));
    }

    /// The chunk queue keeps order across its inline slot and its deque, whatever mix of
    /// pushes and pops, and only touches the deque past one chunk.
    #[test]
    fn chunks_keep_order() {
        let b = |s: &'static str| Bytes::from_static(s.as_bytes());
        let mut q = Chunks::default();
        assert!(q.is_empty() && q.pop_front().is_none());
        q.push_back(b("a"));
        assert_eq!(q.rest.capacity(), 0, "one chunk stays inline");
        q.push_back(b("b"));
        q.push_back(b("c"));
        assert_eq!(q.pop_front(), Some(b("a")));
        q.push_front(b("x"));
        q.push_back(b("d"));
        let mut got = Vec::new();
        while let Some(c) = q.pop_front() {
            got.push(c);
        }
        assert_eq!(got, [b("x"), b("b"), b("c"), b("d")]);
        assert!(q.is_empty());
        q.push_front(b("y"));
        q.push_back(b("z"));
        q.clear();
        assert!(q.is_empty() && q.pop_front().is_none());
        q.push_back(b("w"));
        assert_eq!(q.pop_front(), Some(b("w")));
    }

    /// Spare buffers come back empty, and oversized ones are not kept; the stock is bounded
    /// in elements.
    #[test]
    fn spares_are_empty_and_bounded() {
        let mut s = Spares::default();
        let mut v = s.vec();
        v.push(Bytes::from_static(b"x"));
        s.keep_vec(v);
        let v = s.vec();
        assert!(v.is_empty() && v.capacity() > 0, "reused, cleared");
        let big: Vec<Bytes> = Vec::with_capacity(SPARE_CAPACITY_MAX + 1);
        s.keep_vec(big);
        assert_eq!(s.vec().capacity(), 0, "oversized vector was freed");
        assert_eq!((s.vecs.len(), s.vecs.elements()), (0, 0));
        for _ in 0..SPARE_ELEMENTS / 4 + 10 {
            s.keep_vec(Vec::with_capacity(4));
        }
        assert_eq!(s.vecs.len(), SPARE_ELEMENTS / 4, "bounded in elements");
        assert_eq!(s.vecs.elements(), SPARE_ELEMENTS);
    }
}
