//! Fuzz the gRPC message walker: arbitrary bytes, split into chunks at points chosen by the
//! input itself. Asserts no panic, payload bytes never exceed the input, pieces are never empty,
//! every completed message's pieces sum to its declared length, and `check` (borrowed chunks, no
//! events) reaches the same verdict as `feed` after every chunk.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use ringedge_codec::grpc::{MessageWalker, WalkEvent, WalkerLimits};

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, rest)) = data.split_first() else {
        return;
    };
    // Small limit sometimes, to exercise MessageTooLarge.
    let max = if ctl & 1 == 0 { 64 } else { 1 << 20 };
    let limits = WalkerLimits {
        max_message_size: max,
    };
    let mut w = MessageWalker::new(limits);
    let mut checker = MessageWalker::new(limits);
    let input = Bytes::copy_from_slice(rest);
    let step = usize::from(ctl >> 1) + 1;
    let mut emitted: usize = 0;
    let mut current: Option<(u32, u64)> = None;
    let mut completed = 0u64;
    let mut pos = 0;
    let mut failed = false;
    while pos < input.len() {
        // Vary chunk sizes: step, then derived from the byte at pos.
        let n = (step + usize::from(input[pos] % 7)).min(input.len() - pos);
        let chunk = input.slice(pos..pos + n);
        pos += n;
        let r = w.feed(chunk, |ev| match ev {
            WalkEvent::MessageStart { len, .. } => {
                assert!(current.is_none());
                assert!(len <= max);
                current = Some((len, 0));
            }
            WalkEvent::Payload(b) => {
                assert!(!b.is_empty());
                emitted += b.len();
                let c = current.as_mut().expect("payload outside message");
                c.1 += b.len() as u64;
                assert!(c.1 <= u64::from(c.0));
            }
            WalkEvent::MessageEnd => {
                let (len, got) = current.take().expect("end outside message");
                assert_eq!(u64::from(len), got);
                completed += 1;
            }
        });
        assert_eq!(checker.check(&input[pos - n..pos]), r);
        assert_eq!(checker.messages_completed(), w.messages_completed());
        assert_eq!(checker.at_boundary(), w.at_boundary());
        if r.is_err() {
            failed = true;
            break;
        }
    }
    assert!(emitted <= input.len());
    assert_eq!(completed, w.messages_completed());
    assert_eq!(checker.finish(), w.finish());
    if !failed {
        assert_eq!(w.finish().is_ok(), current.is_none() && w.at_boundary());
    }
});
