//! Fuzz the HTTP/2 frame parser: arbitrary bytes, parsed until error or "need more".
//! Invariants: no panic; consumed bytes never exceed the input; `Ok(None)` and
//! `FrameTooLarge` consume nothing; every other outcome consumes at least one frame header; a
//! parsed frame re-encodes and parses back to itself.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use ringedge_codec::frame::{parse_frame, Frame, FrameError};

fuzz_target!(|data: &[u8]| {
    // First byte picks the advertised max frame size (16 KiB .. 16 MiB).
    let (max, data) = match data.split_first() {
        Some((b, rest)) => (16_384u32 << (b % 11).min(10), rest),
        None => return,
    };
    let max = max.min(16_777_215);
    let mut buf = BytesMut::from(data);
    let mut consumed = 0usize;
    loop {
        let before = buf.len();
        let r = parse_frame(&mut buf, max);
        assert!(buf.len() <= before);
        consumed += before - buf.len();
        assert!(consumed <= data.len());
        match r {
            Ok(Some(f)) => {
                assert!(before - buf.len() >= 9);
                let mut again = BytesMut::new();
                f.encode(&mut again);
                if !matches!(f, Frame::Unknown { .. }) {
                    let back = parse_frame(&mut again, 16_777_215).expect("re-encoded frame parses");
                    assert_eq!(back.as_ref(), Some(&f));
                }
            }
            Ok(None) => {
                assert_eq!(before, buf.len());
                break;
            }
            Err(FrameError::FrameTooLarge { .. }) => {
                assert_eq!(before, buf.len());
                break;
            }
            Err(e) => {
                assert!(before - buf.len() >= 9);
                let _ = (e.code(), e.stream_id(), e.to_string());
                if e.is_connection_error() {
                    break;
                }
            }
        }
    }
});
