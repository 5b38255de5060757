//! The forwarder's CPU cost per unary gRPC call, without sockets, TLS or an executor.
//!
//! Whole-system runs (`scripts/bench-peers.sh`) are what the product is judged by, but on a
//! shared 2-core VM their per-call CPU moves by ±15% between runs, because it depends on how
//! many calls each wake-up finds (batching), which depends on the other CPU. This bench takes
//! that out: it drives one shard's [`Forwarder`] directly, sans-IO, the way `io.rs` does
//! (bytes in with `recv`, bytes out with `output`), with codec peers on both sides:
//!
//! - 16 client connections (our codec, client role), each keeping 32 unary calls in flight,
//!   sending what h2load sends (`:method POST`, `:scheme https`, `:path`, `:authority`,
//!   `content-type: application/grpc`, `te: trailers`, `user-agent`) and a 12-byte message;
//! - origin connections as the forwarder asks for them (our codec, server role), answering
//!   like a tonic origin: `:status 200`, `content-type`, a `date` that changes every 1,000
//!   calls, one DATA frame, trailers `grpc-status: 0`.
//!
//! It prints the time spent inside the forwarder (everything the proxy does per call except
//! TLS and socket I/O) and the whole loop's time, in ns per call: the best round and the
//! median. On a shared VM other tenants only ever add time, so the best of many short rounds
//! is the steadier figure. Use it to compare two builds of the forwarder or codec (run each a
//! few times, interleaved); the figures are not comparable across machines.
//!
//! Run: `cargo bench -p ringedge --bench forward` (`-- --calls N --rounds R` to change the size).

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use ringedge::forward::{EpKey, Forwarder};
use ringedge::metrics::Metrics;
use ringedge_codec::conn::{recycle_fields, ConnConfig, Connection, Event, HeadersKind, Role};
use ringedge_codec::frame::StreamId;
use ringedge_codec::hpack::FieldRef;

// As in the ringedge binary (src/main.rs).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const CLIENTS: usize = 16;
const STREAMS: usize = 32;

fn field<'a>(name: &'a [u8], value: &'a [u8]) -> FieldRef<'a> {
    FieldRef {
        name,
        value,
        sensitive: false,
    }
}

struct Client {
    ep: EpKey,
    h2: Connection,
    in_flight: usize,
    rx: BytesMut,
}

struct Origin {
    ep: EpKey,
    h2: Connection,
    rx: BytesMut,
}

struct Bench {
    fw: Rc<RefCell<Forwarder>>,
    clients: Vec<Client>,
    origins: Vec<Origin>,
    origin_cfg: ConnConfig,
    body: Bytes,
    /// Time spent inside the forwarder.
    in_fw: Duration,
    completed: u64,
    date: String,
    date_epoch: u64,
}

/// The codec peers' settings: roomy windows (like h2load and a tonic origin, flow control never
/// stalls) and no stream limit to speak of (a tonic origin sets none).
fn peer_config() -> ConnConfig {
    ConnConfig {
        max_concurrent_streams: 10_000,
        initial_stream_window: 1 << 20,
        connection_window: 16 << 20,
        ..ConnConfig::default()
    }
}

/// Moves everything `from` has queued into `to`'s receive buffer.
fn drain_output(from: &mut Connection, to: &mut BytesMut) -> bool {
    let mut moved = false;
    while let Some(chunk) = from.pop_output() {
        to.extend_from_slice(&chunk);
        moved = true;
    }
    moved
}

impl Bench {
    fn new() -> Bench {
        let dir =
            std::env::temp_dir().join(format!("ringedge-bench-forward-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let (cert, key) = ringedge_tls::generate_self_signed(&["localhost"]).expect("certificate");
        std::fs::write(dir.join("cert.pem"), cert).expect("write cert");
        std::fs::write(dir.join("key.pem"), key).expect("write key");
        // The one-line mode's config (`ringedge proxy --shards 1 ...`): one `*` host, one `/`
        // route, one h2c origin.
        let config = ringedge::config::Config::quick(&ringedge::config::QuickOptions {
            listen: vec!["127.0.0.1:8443".into()],
            cert: dir.join("cert.pem").display().to_string(),
            key: dir.join("key.pem").display().to_string(),
            origin: "h2c://127.0.0.1:20051".into(),
            shards: Some(1),
            ..Default::default()
        })
        .expect("bench config");
        let spec = ringedge::server::build_spec(&config).expect("bench spec");
        let _ = std::fs::remove_dir_all(&dir);
        ringedge_codec::hpack::pool::set_pool_limit(spec.hpack_pool_bytes);
        let now = Instant::now();
        let fw = Forwarder::new(
            Rc::new((spec.make_plan)()),
            Rc::new(Metrics::default()),
            now,
        );
        let fw = Rc::new(RefCell::new(fw));
        let mut clients = Vec::new();
        for i in 0..CLIENTS {
            let peer: SocketAddr = format!("127.0.0.1:{}", 40000 + i).parse().expect("addr");
            let server_side = Connection::new(Role::Server, spec.client_h2.clone(), now);
            let ep =
                fw.borrow_mut()
                    .add_downstream(server_side, peer, Some("localhost".into()), now);
            clients.push(Client {
                ep,
                h2: Connection::new(Role::Client, peer_config(), now),
                in_flight: 0,
                rx: BytesMut::new(),
            });
        }
        // A 12-byte gRPC message (prefix + protobuf `name = "world"`), as h2load's -d file.
        let mut body = vec![0u8, 0, 0, 0, 7];
        body.extend_from_slice(b"\x0a\x05world");
        Bench {
            fw,
            clients,
            origins: Vec::new(),
            origin_cfg: spec.origin_h2.clone(),
            body: Bytes::from(body),
            in_fw: Duration::ZERO,
            completed: 0,
            date: String::new(),
            date_epoch: 0,
        }
    }

    // Not inlined: profilers can attribute the forwarder's share by these two frames
    // (e.g. `valgrind --tool=callgrind --toggle-collect='*Bench::fw_*'`). They take the
    // forwarder and the timer apart from `self`, so a peer's buffer can be passed in place.
    #[inline(never)]
    fn fw_recv(fw: &RefCell<Forwarder>, in_fw: &mut Duration, ep: EpKey, buf: &mut BytesMut) {
        let t = Instant::now();
        fw.borrow_mut().recv(ep, buf, t);
        *in_fw += t.elapsed();
    }

    #[inline(never)]
    fn fw_output(
        fw: &RefCell<Forwarder>,
        in_fw: &mut Duration,
        ep: EpKey,
        to: &mut BytesMut,
    ) -> bool {
        let t = Instant::now();
        let moved = fw
            .borrow_mut()
            .output(ep)
            .is_some_and(|h2| drain_output(h2, to));
        *in_fw += t.elapsed();
        moved
    }

    /// Each client tops up to STREAMS calls in flight, as long as `budget` allows.
    fn send_requests(&mut self, budget: &mut u64) {
        let req = [
            field(b":method", b"POST"),
            field(b":scheme", b"https"),
            field(b":path", b"/helloworld.Greeter/SayHello"),
            field(b":authority", b"127.0.0.1:8443"),
            field(b"content-type", b"application/grpc"),
            field(b"te", b"trailers"),
            field(b"user-agent", b"h2load nghttp2/1.64.0"),
        ];
        for c in &mut self.clients {
            while c.in_flight < STREAMS && *budget > 0 {
                let Ok(sid) = c.h2.open_stream(&req, false) else {
                    break;
                };
                c.h2.send_data(sid, self.body.clone(), true)
                    .expect("request DATA");
                c.in_flight += 1;
                *budget -= 1;
            }
        }
    }

    /// The origin side: answer every complete request like a tonic Greeter.
    fn serve_origin(&mut self, i: usize) {
        let epoch = self.completed / 1000;
        if self.date.is_empty() || epoch != self.date_epoch {
            // A `date` value that changes now and then, as hyper's does every second.
            self.date_epoch = epoch;
            self.date = format!(
                "Mon, 07 Dec 2026 19:{:02}:{:02} GMT",
                (epoch / 60) % 60,
                epoch % 60
            );
        }
        let o = &mut self.origins[i];
        let now = Instant::now();
        let _ = o.h2.recv(&mut o.rx, now);
        let mut done: Vec<StreamId> = Vec::new();
        while let Some(ev) = o.h2.poll_event() {
            match ev {
                Event::Data {
                    stream,
                    end_stream,
                    flow_len,
                    ..
                } => {
                    o.h2.release_capacity(stream, flow_len as usize);
                    if end_stream {
                        done.push(stream);
                    }
                }
                Event::Headers {
                    stream,
                    end_stream,
                    fields,
                    ..
                } => {
                    if end_stream {
                        done.push(stream);
                    }
                    // Hand the list back, as the forwarder does, so the peers do not drain
                    // the thread's spare lists (they share the shard's thread here).
                    recycle_fields(fields);
                }
                _ => {}
            }
        }
        for sid in done {
            let resp = [
                field(b":status", b"200"),
                field(b"content-type", b"application/grpc"),
                field(b"date", self.date.as_bytes()),
            ];
            let _ = o.h2.send_headers(sid, &resp, false);
            let _ = o.h2.send_data(sid, self.body.clone(), false);
            let _ = o.h2.send_trailers(sid, &[field(b"grpc-status", b"0")]);
        }
    }

    /// A client reads what arrived: a call is complete at its trailers (or a Trailers-Only).
    fn read_client(&mut self, i: usize) {
        let c = &mut self.clients[i];
        let now = Instant::now();
        let _ = c.h2.recv(&mut c.rx, now);
        while let Some(ev) = c.h2.poll_event() {
            match ev {
                Event::Data {
                    stream, flow_len, ..
                } => c.h2.release_capacity(stream, flow_len as usize),
                Event::Headers {
                    kind,
                    end_stream,
                    fields,
                    ..
                } => {
                    if kind == HeadersKind::Trailers || end_stream {
                        c.in_flight -= 1;
                        self.completed += 1;
                    }
                    recycle_fields(fields);
                }
                Event::PeerReset { .. } | Event::StreamReset { .. } => {
                    panic!("a call was reset: {ev:?}")
                }
                _ => {}
            }
        }
    }

    /// Runs `calls` calls to completion.
    fn run(&mut self, calls: u64) {
        let target = self.completed + calls;
        let mut budget = calls;
        let mut idle_turns = 0;
        while self.completed < target {
            self.send_requests(&mut budget);
            let mut moved = false;
            for i in 0..self.clients.len() {
                let mut buf = BytesMut::new();
                if drain_output(&mut self.clients[i].h2, &mut buf) {
                    moved = true;
                    let ep = self.clients[i].ep;
                    Self::fw_recv(&self.fw, &mut self.in_fw, ep, &mut buf);
                }
            }
            let requests = self.fw.borrow_mut().take_connect_requests();
            for _ in requests {
                let now = Instant::now();
                let h2 = Connection::new(Role::Client, self.origin_cfg.clone(), now);
                let ep = self.fw.borrow_mut().add_upstream(0, h2, now);
                self.origins.push(Origin {
                    ep,
                    h2: Connection::new(Role::Server, peer_config(), now),
                    rx: BytesMut::new(),
                });
                moved = true;
            }
            for i in 0..self.origins.len() {
                let o = &mut self.origins[i];
                moved |= Self::fw_output(&self.fw, &mut self.in_fw, o.ep, &mut o.rx);
                self.serve_origin(i);
                let o = &mut self.origins[i];
                let mut buf = BytesMut::new();
                if drain_output(&mut o.h2, &mut buf) {
                    moved = true;
                    Self::fw_recv(&self.fw, &mut self.in_fw, o.ep, &mut buf);
                }
            }
            for i in 0..self.clients.len() {
                let c = &mut self.clients[i];
                moved |= Self::fw_output(&self.fw, &mut self.in_fw, c.ep, &mut c.rx);
                self.read_client(i);
            }
            idle_turns = if moved { 0 } else { idle_turns + 1 };
            assert!(
                idle_turns < 100,
                "no progress: {} of {} calls completed",
                self.completed,
                target
            );
        }
    }
}

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let calls = arg("--calls", 30_000);
    let rounds = arg("--rounds", 15) as usize;
    let mut b = Bench::new();
    // Warm-up: connections, HPACK tables, string pool, spare containers.
    b.run(20_000);
    let (mut fw_ns, mut all_ns) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        b.in_fw = Duration::ZERO;
        let t = Instant::now();
        b.run(calls);
        let all = t.elapsed();
        fw_ns.push(b.in_fw.as_nanos() as f64 / calls as f64);
        all_ns.push(all.as_nanos() as f64 / calls as f64);
    }
    println!(
        "forward: {CLIENTS} client connections x {STREAMS} streams, {} origin connection(s), {calls} unary calls x {rounds} rounds",
        b.origins.len()
    );
    let best = |v: &[f64]| v.iter().cloned().fold(f64::MAX, f64::min);
    println!(
        "  inside the forwarder: best {:.0} ns/call, median {:.0}",
        best(&fw_ns),
        median(fw_ns.clone())
    );
    println!(
        "  whole loop (with the codec peers): best {:.0} ns/call, median {:.0}",
        best(&all_ns),
        median(all_ns.clone())
    );
    let calls_live = b.fw.borrow().calls_in_flight();
    assert_eq!(calls_live, 0, "every call finished");
}
