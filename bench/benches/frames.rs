//! Frame-parsing throughput over a recorded-style stream of small gRPC unary requests.
//!
//! The stream: per request a HEADERS frame (100–200 byte block) and a DATA frame (50–200 bytes,
//! END_STREAM), on increasing odd stream ids, with a connection WINDOW_UPDATE every 16 requests
//! and a PING every 64 — what a busy gRPC client sends. Each round copies the stream into a fresh
//! receive buffer (untimed), then times `parse_frame` over all of it. Prints GB/s and frames/s
//! (median of the rounds). Run: `cargo bench -p ringedge-bench --bench frames`.

use bytes::BytesMut;
use ringedge_codec::frame::*;
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

fn main() {
    let (stream, frames) = build_stream(100_000);
    let rounds = 30;
    let mut times: Vec<Duration> = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let buf = BytesMut::from(&stream[..]);
        let t = Instant::now();
        let (n, acc) = parse_all(black_box(buf));
        times.push(t.elapsed());
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
}
