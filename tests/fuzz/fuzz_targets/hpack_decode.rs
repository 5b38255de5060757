//! Fuzz the HPACK decoder: arbitrary bytes, split into several header blocks that share one
//! decoding context. Invariants: no panic; the dynamic table never exceeds its maximum size nor
//! our advertised limit; after an error other than HeaderListTooLarge the context is abandoned
//! (as the connection would be). Every decoded list also goes through the HTTP/2 message
//! validation (`ringedge_codec::message`), which must never panic, and a list it accepts as a
//! request must have a non-empty `:method` and `:path`.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use ringedge_codec::hpack::{Decoder, HeaderField};
use ringedge_codec::message;

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, rest)) = data.split_first() else { return };
    // Low bits of the first byte choose our limits; 0xff separates blocks.
    let limit = [0usize, 64, 256, 4096][(ctl & 3) as usize];
    let mut dec = Decoder::new(limit);
    dec.set_max_header_list_size([64usize, 1024, 65536, usize::MAX][((ctl >> 2) & 3) as usize]);
    for (i, chunk) in rest.split(|&b| b == 0xfe).enumerate() {
        if ctl & 0x10 != 0 && i == 1 {
            // Lower our limit between blocks: the next block must start with a size update.
            dec.set_max_table_size(limit / 2);
        }
        let block = Bytes::copy_from_slice(chunk);
        let mut fields: Vec<HeaderField> = Vec::new();
        let r = dec.decode(&block, &mut |f: HeaderField| fields.push(f));
        if let Ok(head) = message::parse_request(&fields) {
            assert!(!head.method.is_empty());
            assert!(head.method.as_ref() == b"CONNECT" || !head.path.is_empty());
        }
        let _ = message::parse_response(&fields);
        let _ = message::check_trailers(&fields);
        assert!(dec.table_size() <= dec.table_capacity());
        assert!(dec.table_capacity() <= limit);
        if let Err(e) = r {
            if e.is_connection_error() {
                return;
            }
        }
    }
});
