//! Frame-parsing throughput over a recorded-style stream of small gRPC unary requests.
//!
//! The stream: per request a HEADERS frame (100–200 byte block) and a DATA frame (50–200 bytes,
//! END_STREAM), on increasing odd stream ids, with a connection WINDOW_UPDATE every 16 requests
//! and a PING every 64 — what a busy gRPC client sends. Each round copies the stream into a fresh
//! receive buffer (untimed), then times `parse_frame` over all of it. Prints GB/s and frames/s
//! (median of the rounds). A second figure runs the same kind of traffic (with real HPACK
//! header blocks) through a server-role `Connection`: preface, HEADERS decode, DATA events,
//! capacity release and a Trailers-Only style response per request, in ns per request.
//! Run: `cargo bench -p ringedge-bench --bench frames`.

use bytes::BytesMut;
use ringedge_codec::conn::{ConnConfig, Connection, Event, Role, PREFACE};
use ringedge_codec::frame::*;
use ringedge_codec::hpack::{Encoder, FieldRef};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Small deterministic generator (xorshift) so the stream is the same on every run.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next() as usize) % (hi - lo + 1)
    }
}

fn build_stream(requests: u32) -> (Vec<u8>, usize) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut b = BytesMut::new();
    let mut frames = 0;
    let mut block = vec![0u8; 256];
    let mut data = vec![0u8; 256];
    for i in 0..requests {
        let s = StreamId::new(1 + 2 * i);
        let hl = rng.range(100, 200);
        for x in block.iter_mut().take(hl) {
            *x = rng.next() as u8;
        }
        encode_headers(&mut b, s, &block[..hl], false, DEFAULT_MAX_FRAME_SIZE);
        let dl = rng.range(50, 200);
        data[0] = 0; // gRPC compressed flag
        data[1..5].copy_from_slice(&((dl - 5) as u32).to_be_bytes());
        encode_data(&mut b, s, &data[..dl], true);
        frames += 2;
        if i % 16 == 15 {
            encode_window_update(&mut b, StreamId::ZERO, 16 * 400);
            frames += 1;
        }
        if i % 64 == 63 {
            encode_ping(&mut b, false, [i as u8; 8]);
            frames += 1;
        }
    }
    (b.to_vec(), frames)
}

/// On-CPU time of this thread in ns (Linux `/proc/thread-self/schedstat`, first field), so the
/// figures are not inflated when other processes share the cores. `None` if unavailable.
fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

fn parse_all(mut buf: BytesMut) -> (usize, u64) {
    let mut n = 0;
    let mut acc = 0u64;
    while let Ok(Some(f)) = parse_frame(&mut buf, DEFAULT_MAX_FRAME_SIZE) {
        n += 1;
        acc = acc.wrapping_add(match &f {
            Frame::Data { payload, .. } => payload.len() as u64,
            Frame::Headers { block, .. } => block.len() as u64,
            _ => 1,
        });
        black_box(&f);
    }
    assert!(buf.is_empty(), "stream did not parse completely");
    (n, acc)
}

/// A client's byte stream: preface, SETTINGS, then `requests` unary gRPC calls with HPACK
/// blocks from a real encoder (so the dynamic table is exercised as in production).
fn build_conn_stream(requests: u32) -> Vec<u8> {
    let mut b = BytesMut::from(&PREFACE[..]);
    encode_settings(&mut b, &[]);
    encode_settings_ack(&mut b);
    let mut enc = Encoder::new();
    let mut block = BytesMut::new();
    let f = |n: &'static str, v: &'static str| FieldRef {
        name: n.as_bytes(),
        value: v.as_bytes(),
        sensitive: false,
    };
    for i in 0..requests {
        let s = StreamId::new(1 + 2 * i);
        block.clear();
        let path = if i % 2 == 0 {
            "/helloworld.Greeter/SayHello"
        } else {
            "/echo.Echo/Unary"
        };
        enc.encode(
            [
                f(":method", "POST"),
                f(":scheme", "https"),
                f(":path", path),
                f(":authority", "api.example.com:443"),
                f("content-type", "application/grpc"),
                f("te", "trailers"),
                f("grpc-timeout", "1S"),
                f("user-agent", "grpc-go/1.62.0"),
            ],
            &mut block,
        );
        encode_headers(&mut b, s, &block, false, DEFAULT_MAX_FRAME_SIZE);
        let mut msg = vec![0u8; 5 + 100];
        msg[1..5].copy_from_slice(&100u32.to_be_bytes());
        encode_data(&mut b, s, &msg, true);
    }
    b.to_vec()
}

fn bench_conn(requests: u32) {
    let stream = build_conn_stream(requests);
    let rounds = 9;
    let mut times = Vec::new();
    let resp = [
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
        FieldRef {
            name: b"grpc-status",
            value: b"0",
            sensitive: false,
        },
    ];
    let mut cpu = Vec::new();
    for _ in 0..rounds {
        let c0 = thread_cpu_ns();
        let t = Instant::now();
        let cfg = ConnConfig {
            max_concurrent_streams: 1 << 20,
            ..ConnConfig::default()
        };
        let mut conn = Connection::new(Role::Server, cfg, t);
        let mut done = 0u32;
        let mut written = 0usize;
        // Feed in 16 KiB reads, like a socket.
        let mut buf = BytesMut::with_capacity(64 * 1024);
        for chunk in stream.chunks(16 * 1024) {
            buf.extend_from_slice(chunk);
            conn.recv(&mut buf, t).expect("bench stream is valid");
            while let Some(ev) = conn.poll_event() {
                match ev {
                    Event::Data {
                        stream,
                        data,
                        end_stream,
                        ..
                    } => {
                        conn.release_capacity(stream, data.len());
                        if end_stream {
                            conn.send_headers(stream, &resp, true).unwrap();
                            done += 1;
                        }
                    }
                    other => {
                        black_box(other);
                    }
                }
            }
            while let Some(c) = conn.pop_output() {
                written += c.len();
            }
        }
        times.push(t.elapsed());
        if let (Some(a), Some(b)) = (c0, thread_cpu_ns()) {
            cpu.push(b - a);
        }
        assert_eq!(done, requests);
        black_box(written);
    }
    times.sort();
    let med = times[rounds / 2].as_secs_f64();
    println!(
        "conn: server role, {requests} unary requests ({} bytes in): median {:.0} ns/request \
         ({:.2} M requests/s, {:.2} GB/s in) incl. HPACK decode of 8 fields + encode of the response",
        stream.len(),
        med * 1e9 / requests as f64,
        requests as f64 / med / 1e6,
        stream.len() as f64 / med / 1e9
    );
    if cpu.len() == rounds {
        cpu.sort();
        println!(
            "conn: on-CPU median {:.0} ns/request",
            cpu[rounds / 2] as f64 / requests as f64
        );
    }
}

fn main() {
    let (stream, frames) = build_stream(100_000);
    let rounds = 30;
    let mut times: Vec<Duration> = Vec::with_capacity(rounds);
    let mut cpu: Vec<u64> = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let buf = BytesMut::from(&stream[..]);
        let c0 = thread_cpu_ns();
        let t = Instant::now();
        let (n, acc) = parse_all(black_box(buf));
        times.push(t.elapsed());
        if let (Some(a), Some(b)) = (c0, thread_cpu_ns()) {
            cpu.push(b - a);
        }
        assert_eq!(n, frames);
        black_box(acc);
    }
    times.sort();
    let med = times[rounds / 2].as_secs_f64();
    let best = times[0].as_secs_f64();
    let bytes = stream.len() as f64;
    println!(
        "frames: stream {} bytes, {} frames ({} requests, mean frame {:.0} bytes)",
        stream.len(),
        frames,
        100_000,
        bytes / frames as f64
    );
    println!(
        "frames: parse median {:.2} GB/s ({:.1} M frames/s, {:.1} ns/frame); best {:.2} GB/s",
        bytes / med / 1e9,
        frames as f64 / med / 1e6,
        med * 1e9 / frames as f64,
        bytes / best / 1e9
    );
    if cpu.len() == rounds {
        cpu.sort();
        let c = cpu[rounds / 2] as f64 / 1e9;
        println!(
            "frames: parse on-CPU median {:.2} GB/s ({:.1} ns/frame)",
            bytes / c / 1e9,
            c * 1e9 / frames as f64
        );
    }
    bench_conn(100_000);
}
