//! Differential HPACK fuzzing: derive header lists (and table size changes) from the input,
//! encode them with our encoder, decode with our decoder, and require the decoded list to equal
//! the input exactly (names, values, never-index flags) with both tables in sync.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use ringedge_codec::hpack::{Decoder, Encoder, FieldRef, HeaderField};

/// Names from a pool (so the dynamic table gets hits) or taken from the input.
const NAMES: [&[u8]; 8] = [
    b":path",
    b":authority",
    b"content-type",
    b"user-agent",
    b"grpc-timeout",
    b"cookie",
    b"x-trace",
    b":status",
];

struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
    fn bytes(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.0.len());
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        a
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let mut enc = Encoder::new();
    let mut dec = Decoder::new(4096);
    dec.set_max_header_list_size(usize::MAX);
    enc.set_use_huffman(data.first().is_some_and(|b| b & 1 == 0));
    let mut blocks = 0;
    let mut prev: Vec<(Vec<u8>, Vec<u8>, bool)> = Vec::new();
    while !input.0.is_empty() && blocks < 32 {
        blocks += 1;
        // Optional table size changes before the block (0..=4096, possibly two).
        let ctl = input.byte().unwrap_or(0);
        if ctl & 0x80 != 0 {
            enc.set_max_table_size((input.byte().unwrap_or(0) as usize) * 17);
            if ctl & 0x40 != 0 {
                enc.set_max_table_size((input.byte().unwrap_or(0) as usize) * 17);
            }
        }
        // Bit 0x20 repeats the previous block (the encoder's replay path); otherwise the low
        // bits give the number of new fields.
        let repeat = ctl & 0x20 != 0 && !prev.is_empty();
        let nfields = if repeat { 0 } else { (ctl & 0x0f) as usize };
        let mut fields: Vec<(Vec<u8>, Vec<u8>, bool)> =
            if repeat { prev.clone() } else { Vec::with_capacity(nfields) };
        for _ in 0..nfields {
            let Some(t) = input.byte() else { break };
            let name = if t & 0x08 != 0 {
                NAMES[(t & 7) as usize].to_vec()
            } else {
                let n = input.byte().unwrap_or(0) as usize % 24;
                input.bytes(n).to_vec()
            };
            let vlen = input.byte().unwrap_or(0) as usize;
            let vlen = if t & 0x20 != 0 { vlen * 8 } else { vlen % 48 };
            let value = input.bytes(vlen).to_vec();
            fields.push((name, value, t & 0x10 != 0));
        }
        let mut buf = BytesMut::new();
        let refs: Vec<FieldRef<'_>> =
            fields.iter().map(|(n, v, s)| FieldRef { name: n, value: v, sensitive: *s }).collect();
        enc.encode_block(&refs, &mut buf);
        let mut got = Vec::with_capacity(fields.len());
        dec.decode(&buf.freeze(), &mut |f: HeaderField| got.push(f)).expect("our own block decodes");
        assert_eq!(got.len(), fields.len());
        for (g, (n, v, s)) in got.iter().zip(&fields) {
            assert_eq!(&g.name[..], &n[..]);
            assert_eq!(&g.value[..], &v[..]);
            let always = matches!(&n[..], b"authorization" | b"proxy-authorization" | b"cookie" | b"set-cookie");
            assert_eq!(g.never_index, *s || always);
        }
        assert_eq!(dec.table_size(), enc.table_size());
        assert_eq!(dec.table_capacity(), enc.table_capacity());
        assert!(enc.table_entries().eq(dec.table_entries()));
        prev = fields;
    }
});
