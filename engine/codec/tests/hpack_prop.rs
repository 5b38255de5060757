//! HPACK property tests: encoder→decoder round trips (with table size changes), Huffman and
//! integer round trips, and a decoder that never panics on arbitrary input.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use ringedge_codec::hpack::{
    huffman, integer, Decoder, Encoder, FieldRef, HeaderField, HpackError,
};

/// Names drawn from a small pool (so the dynamic table gets hits) or arbitrary bytes.
fn name() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::sample::select(vec![
            &b":path"[..],
            b":authority",
            b":method",
            b"content-type",
            b"user-agent",
            b"te",
            b"grpc-timeout",
            b"authorization",
            b"cookie",
            b"x-custom",
            b"accept-encoding",
        ])
        .prop_map(|s| s.to_vec()),
        prop::collection::vec(any::<u8>(), 0..20),
    ]
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::sample::select(vec![
            &b""[..],
            b"GET",
            b"/",
            b"application/grpc",
            b"trailers",
            b"gzip, deflate"
        ])
        .prop_map(|s| s.to_vec()),
        prop::collection::vec(any::<u8>(), 0..40),
        "[a-z0-9/._-]{0,60}".prop_map(|s| s.into_bytes()),
        prop::collection::vec(any::<u8>(), 200..1500),
    ]
}

type Block = Vec<(Vec<u8>, Vec<u8>, bool)>;

fn blocks() -> impl Strategy<Value = Vec<(Option<Vec<usize>>, Block)>> {
    let block = prop::collection::vec((name(), value(), any::<bool>()), 0..12);
    let sizes = prop::option::weighted(0.2, prop::collection::vec(0usize..5000, 1..3));
    prop::collection::vec((sizes, block), 1..8)
}

fn is_sensitive(name: &[u8], flag: bool) -> bool {
    flag || matches!(
        name,
        b"authorization" | b"proxy-authorization" | b"cookie" | b"set-cookie"
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn encode_decode_round_trip(seq in blocks(), huff in any::<bool>()) {
        let mut enc = Encoder::new();
        enc.set_use_huffman(huff);
        let mut dec = Decoder::new(4096);
        dec.set_max_header_list_size(usize::MAX);
        for (sizes, block) in &seq {
            if let Some(sizes) = sizes {
                for &s in sizes {
                    enc.set_max_table_size(s);
                }
            }
            let mut buf = BytesMut::new();
            enc.encode(block.iter().map(|(n, v, s)| FieldRef { name: n, value: v, sensitive: *s }), &mut buf);
            let mut got = Vec::new();
            dec.decode(&buf.freeze(), &mut |f: HeaderField| got.push(f)).unwrap();
            prop_assert_eq!(got.len(), block.len());
            for (g, (n, v, s)) in got.iter().zip(block) {
                prop_assert_eq!(&g.name[..], &n[..]);
                prop_assert_eq!(&g.value[..], &v[..]);
                prop_assert_eq!(g.never_index, is_sensitive(n, *s));
            }
            prop_assert_eq!(dec.table_size(), enc.table_size());
            prop_assert_eq!(dec.table_capacity(), enc.table_capacity());
            prop_assert!(enc.table_entries().all(|(n, _)| !is_sensitive(n, false)));
            prop_assert!(enc.table_entries().eq(dec.table_entries()));
        }
    }

    /// `encode_block` (which replays recent blocks) writes exactly what `encode` writes, for
    /// sequences that repeat blocks (the replay case) mixed with new blocks and table size
    /// changes; the result still decodes to the fields sent.
    #[test]
    fn encode_block_matches_encode(
        seq in blocks(),
        picks in prop::collection::vec((0usize..8, any::<bool>()), 1..24),
        huff in any::<bool>(),
    ) {
        let mut reference = Encoder::new();
        let mut replaying = Encoder::new();
        reference.set_use_huffman(huff);
        replaying.set_use_huffman(huff);
        let mut dec = Decoder::new(4096);
        dec.set_max_header_list_size(usize::MAX);
        for (pick, resize) in picks {
            let (sizes, block) = &seq[pick % seq.len()];
            if resize {
                if let Some(sizes) = sizes {
                    for &s in sizes {
                        reference.set_max_table_size(s);
                        replaying.set_max_table_size(s);
                    }
                }
            }
            let refs: Vec<FieldRef<'_>> = block
                .iter()
                .map(|(n, v, s)| FieldRef { name: n, value: v, sensitive: *s })
                .collect();
            let mut want = BytesMut::new();
            reference.encode(refs.iter().copied(), &mut want);
            let mut got = BytesMut::from(&b"prefix"[..]);
            replaying.encode_block(&refs, &mut got);
            prop_assert_eq!(&got[..6], &b"prefix"[..]);
            prop_assert_eq!(&got[6..], &want[..]);
            let mut fields = Vec::new();
            dec.decode(&got.split_off(6).freeze(), &mut |f: HeaderField| fields.push(f)).unwrap();
            prop_assert_eq!(fields.len(), block.len());
            for (g, (n, v, _)) in fields.iter().zip(block) {
                prop_assert_eq!(&g.name[..], &n[..]);
                prop_assert_eq!(&g.value[..], &v[..]);
            }
            prop_assert!(replaying.table_entries().eq(dec.table_entries()));
        }
    }

    #[test]
    fn huffman_round_trip(s in prop::collection::vec(any::<u8>(), 0..300)) {
        let mut enc = Vec::new();
        huffman::encode(&s, &mut enc);
        prop_assert_eq!(enc.len(), huffman::encoded_len(&s));
        let mut dec = Vec::new();
        huffman::decode(&enc, &mut dec).unwrap();
        prop_assert_eq!(dec, s);
    }

    #[test]
    fn huffman_decode_never_panics(s in prop::collection::vec(any::<u8>(), 0..64)) {
        let mut out = Vec::new();
        match huffman::decode(&s, &mut out) {
            Ok(()) => {
                // Whatever decodes re-encodes to the same octets (the code is a bijection on
                // valid inputs with canonical padding).
                let mut re = Vec::new();
                huffman::encode(&out, &mut re);
                prop_assert_eq!(re, s);
            }
            Err(e) => prop_assert!(matches!(e, HpackError::HuffmanEos | HpackError::HuffmanPadding)),
        }
    }

    #[test]
    fn integer_round_trip(v in 0usize..=integer::MAX_INTEGER, prefix in 1u8..=8, flags in any::<u8>()) {
        let flags = if prefix == 8 { 0 } else { flags & !(0xffu8 >> (8 - prefix)) };
        let mut buf = Vec::new();
        integer::encode(v, prefix, flags, &mut buf);
        prop_assert_eq!(buf[0] & !(0xffu16 >> (8 - prefix) as u16) as u8, flags);
        let mut pos = 0;
        prop_assert_eq!(integer::decode(&buf, &mut pos, prefix), Ok(v));
        prop_assert_eq!(pos, buf.len());
    }

    #[test]
    fn decoder_never_panics(blocks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 1..4)) {
        let mut dec = Decoder::new(4096);
        dec.set_max_header_list_size(256);
        for b in blocks {
            let _ = dec.decode(&Bytes::from(b), &mut |_f: HeaderField| {});
            prop_assert!(dec.table_size() <= dec.table_capacity());
            prop_assert!(dec.table_capacity() <= 4096);
        }
    }
}

/// A peer that shrinks SETTINGS_HEADER_TABLE_SIZE to 0 and restores it empties our table without
/// any insertion: a block stored for replay before that must not be replayed after it (its
/// indices would name entries the peer no longer has).
#[test]
fn replay_is_forgotten_when_the_table_is_resized() {
    let block = [
        FieldRef {
            name: b"x-tenant",
            value: b"blue",
            sensitive: false,
        },
        FieldRef {
            name: b"content-type",
            value: b"application/grpc",
            sensitive: false,
        },
    ];
    let status_only = [FieldRef {
        name: b":status",
        value: b"200",
        sensitive: false,
    }];
    let mut enc = Encoder::new();
    let mut dec = Decoder::new(4096);
    let mut roundtrip = |enc: &mut Encoder, fields: &[FieldRef<'_>]| {
        let mut out = BytesMut::new();
        enc.encode_block(fields, &mut out);
        let mut got = Vec::new();
        dec.decode(&out.freeze(), &mut |f: HeaderField| got.push(f))
            .expect("the peer decodes every block we send");
        assert_eq!(got.len(), fields.len());
        for (g, f) in got.iter().zip(fields) {
            assert_eq!(&g.name[..], f.name);
            assert_eq!(&g.value[..], f.value);
        }
    };
    roundtrip(&mut enc, &block); // inserts the entries
    roundtrip(&mut enc, &block); // fully indexed: stored for replay
    enc.set_max_table_size(0);
    enc.set_max_table_size(4096);
    roundtrip(&mut enc, &status_only); // size updates 0 then 4096: the table is emptied
    roundtrip(&mut enc, &block); // must not replay indices of evicted entries
    roundtrip(&mut enc, &block);
}
