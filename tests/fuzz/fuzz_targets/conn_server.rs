//! Fuzz the server-role connection state machine with arbitrary bytes.
//!
//! The first input byte picks the mode: even = a valid client preface and SETTINGS are fed
//! first, odd = raw bytes only; with bit 1 set the rest of the input is read as a script of
//! well-formed frames (type, stream, flags, length chosen by the input) so the fuzzer reaches
//! deep stream states instead of stopping at the first malformed header. The rest is fed in chunks whose sizes come from the input, with
//! the clock advancing, occasional output draining, capacity releases and responses so the send
//! paths run too. Invariants after every step: no panic, consumed ≤ input, flow-control windows
//! in range and credit conserved (`Connection::check_invariants`).
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use ringedge_codec::conn::{ConnConfig, Connection, Event, Role, PREFACE};
use ringedge_codec::frame::{encode_header, encode_settings};
use ringedge_codec::hpack::FieldRef;
use std::time::{Duration, Instant};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let mut now = Instant::now();
    let cfg = ConnConfig {
        max_concurrent_streams: 8,
        initial_stream_window: 1 << (10 + (mode >> 4) % 8),
        max_pending_output: 1 << 16,
        ..ConnConfig::default()
    };
    let mut conn = Connection::new(Role::Server, cfg, now);
    let mut buf = BytesMut::new();
    if mode % 2 == 0 {
        buf.extend_from_slice(PREFACE);
        encode_settings(&mut buf, &[]);
    }
    let scripted;
    let mut input = rest;
    if mode & 2 != 0 {
        scripted = script(rest);
        input = &scripted;
    }
    let mut step = 0u32;
    loop {
        // Chunk size from the data itself (1..=256 bytes), so frames straddle feeds.
        let take = match input.first() {
            Some(&b) => (b as usize + 1).min(input.len()),
            None => 0,
        };
        buf.extend_from_slice(&input[..take]);
        input = &input[take..];
        let before = buf.len();
        let r = conn.recv(&mut buf, now);
        assert!(buf.len() <= before);
        if let Ok(n) = r {
            assert_eq!(n, before - buf.len());
        }
        conn.check_invariants().expect("invariant");
        while let Some(ev) = conn.poll_event() {
            match ev {
                Event::Data { stream, data, .. } => {
                    conn.release_capacity(stream, data.len());
                }
                Event::Headers { stream, end_stream: true, .. } => {
                    let _ = conn.send_headers(
                        stream,
                        &[FieldRef { name: b":status", value: b"200", sensitive: false }],
                        false,
                    );
                    let _ = conn.send_data(stream, Bytes::from_static(&[0u8; 2000]), true);
                }
                Event::SendCapacity { stream, .. } => {
                    let _ = conn.send_data(stream, Bytes::from_static(&[1u8; 100]), false);
                }
                _ => {}
            }
            conn.check_invariants().expect("invariant");
        }
        step += 1;
        if step % 3 == 0 {
            let n = conn.output_len();
            assert_eq!(conn.advance_output(n), n);
        }
        now += Duration::from_millis(37);
        conn.poll_timeout(now);
        if take == 0 || conn.is_closed() {
            break;
        }
    }
});

/// Turns input bytes into a stream of frames with valid headers: each op is
/// `[type, stream, flags, len, payload...]`; HEADERS payloads are small valid HPACK blocks.
fn script(mut d: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    while d.len() >= 4 {
        let (kind, sid, flags, len) = (d[0] % 11, (d[1] % 16) as u32, d[2], d[3] as usize);
        d = &d[4..];
        let take = len.min(d.len());
        let payload = &d[..take];
        d = &d[take..];
        match kind {
            1 => {
                // HEADERS with a literal :path (valid block) or the raw bytes.
                let mut p = vec![0x44, 0x01, b'/'];
                if flags & 0x40 != 0 {
                    p = payload.to_vec();
                }
                encode_header(&mut out, p.len() as u32, 1, flags & 0x2d, sid.into());
                out.extend_from_slice(&p);
            }
            10 => {
                encode_header(&mut out, 8, 6, flags & 1, 0.into());
                out.extend_from_slice(&[flags; 8]);
            }
            k => {
                encode_header(&mut out, take as u32, k, flags, sid.into());
                out.extend_from_slice(payload);
            }
        }
    }
    out.to_vec()
}
