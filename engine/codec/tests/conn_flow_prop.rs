//! Property test: receive-side flow control against a model peer (RFC 9113 §6.9). A peer that
//! only spends the credit we grant is never punished; credit comes back only for bytes the
//! caller released; after everything is released the peer's credit is the full window minus
//! less than the WINDOW_UPDATE threshold.

use bytes::BytesMut;
use proptest::prelude::*;
use ringedge_codec::conn::*;
use ringedge_codec::frame::*;
use ringedge_codec::hpack::{Encoder, FieldRef};
use std::collections::HashMap;
use std::time::Instant;

#[derive(Clone, Debug)]
enum Op {
    Send { stream: usize, len: usize },
    Release { stream: usize, permille: u16 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0usize..3, 0usize..40_000).prop_map(|(stream, len)| Op::Send { stream, len }),
        (0usize..3, 0u16..=1000).prop_map(|(stream, permille)| Op::Release { stream, permille }),
    ]
}

proptest! {
    #[test]
    fn flow_control_model(ops in proptest::collection::vec(op(), 1..80),
                          stream_window in 1_000u32..300_000,
                          conn_window in 65_535u32..400_000) {
        let cfg = ConnConfig {
            initial_stream_window: stream_window,
            connection_window: conn_window,
            ..Default::default()
        };
        let now = Instant::now();
        let mut conn = Connection::new(Role::Server, cfg, now);
        let stream_window = conn.config().initial_stream_window;
        let mut input = BytesMut::from(&PREFACE[..]);
        encode_settings(&mut input, &[]);
        let mut enc = Encoder::new();
        let ids = [1u32, 3, 5];
        for id in ids {
            let mut block = BytesMut::new();
            enc.encode([FieldRef { name: b":path", value: b"/", sensitive: false }], &mut block);
            encode_headers(&mut input, StreamId::new(id), &block, false, DEFAULT_MAX_FRAME_SIZE);
        }
        conn.recv(&mut input, now).unwrap();
        // The model peer's credit.
        let mut peer_conn: i64 = 65_535;
        let mut peer_stream: HashMap<u32, i64> = ids.iter().map(|i| (*i, 65_535i64)).collect();
        let mut held: HashMap<u32, usize> = HashMap::new();
        let apply_output = |conn: &mut Connection, pc: &mut i64, ps: &mut HashMap<u32, i64>| {
            let mut out = BytesMut::new();
            while let Some(c) = conn.pop_output() { out.extend_from_slice(&c); }
            while let Some(f) = parse_frame(&mut out, MAX_MAX_FRAME_SIZE).unwrap() {
                match f {
                    Frame::WindowUpdate { stream_id, increment } if stream_id.is_zero() => *pc += increment as i64,
                    Frame::WindowUpdate { stream_id, increment } => *ps.get_mut(&stream_id.get()).unwrap() += increment as i64,
                    Frame::Settings { ack: false, settings } => {
                        // Our advertised stream window replaces the default (§6.9.2).
                        if let Some(w) = settings.initial_window_size {
                            for v in ps.values_mut() { *v += w as i64 - 65_535; }
                        }
                    }
                    Frame::RstStream { .. } | Frame::GoAway { .. } => panic!("peer punished: {f:?}"),
                    _ => {}
                }
            }
        };
        apply_output(&mut conn, &mut peer_conn, &mut peer_stream);
        for o in ops {
            match o {
                Op::Send { stream, len } => {
                    let id = ids[stream];
                    let credit = peer_conn.min(peer_stream[&id]).max(0) as usize;
                    let n = len.min(credit).min(16_384);
                    if n == 0 { continue; }
                    let mut b = BytesMut::new();
                    encode_data(&mut b, StreamId::new(id), &vec![0u8; n], false);
                    conn.recv(&mut b, now).unwrap();
                    peer_conn -= n as i64;
                    *peer_stream.get_mut(&id).unwrap() -= n as i64;
                    while let Some(ev) = conn.poll_event() {
                        if let Event::Data { stream, data, .. } = ev {
                            *held.entry(stream.get()).or_default() += data.len();
                        }
                    }
                }
                Op::Release { stream, permille } => {
                    let id = ids[stream];
                    let h = held.entry(id).or_default();
                    let k = *h * permille as usize / 1000;
                    *h -= k;
                    conn.release_capacity(StreamId::new(id), k);
                }
            }
            conn.check_invariants().unwrap();
            apply_output(&mut conn, &mut peer_conn, &mut peer_stream);
            prop_assert!(peer_conn >= 0);
            prop_assert!(peer_stream.values().all(|v| *v >= 0));
        }
        // Release everything: the peer gets back all but less than a threshold per window.
        for id in ids {
            let h = held.remove(&id).unwrap_or(0);
            conn.release_capacity(StreamId::new(id), h);
        }
        apply_output(&mut conn, &mut peer_conn, &mut peer_stream);
        prop_assert!(peer_conn > conn_window as i64 - (conn_window as i64 / 2).max(1));
        prop_assert!(peer_conn <= conn_window as i64);
        for id in ids {
            let v = peer_stream[&id];
            prop_assert!(v > stream_window as i64 - (stream_window as i64 / 2).max(1), "stream {id}: {v}");
            prop_assert!(v <= stream_window as i64);
        }
    }
}
