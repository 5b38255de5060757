//! HPACK: RFC 7541 Appendix C examples (C.2 to C.6, decoder and encoder) and the decoder's and
//! encoder's error and policy rules.

use bytes::{Bytes, BytesMut};
use ringedge_codec::hpack::{Decoder, Encoder, FieldRef, HeaderField, HpackError};

fn hex(s: &str) -> Bytes {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    Bytes::from(
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect::<Vec<u8>>(),
    )
}

type List = Vec<(String, String)>;

fn list(pairs: &[(&str, &str)]) -> List {
    pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

fn decode(dec: &mut Decoder, block: &Bytes) -> Result<Vec<HeaderField>, HpackError> {
    let mut out = Vec::new();
    dec.decode(block, &mut |f: HeaderField| out.push(f))?;
    Ok(out)
}

fn decode_list(dec: &mut Decoder, block: &Bytes) -> List {
    decode(dec, block)
        .unwrap()
        .into_iter()
        .map(|f| {
            (
                String::from_utf8(f.name.to_vec()).unwrap(),
                String::from_utf8(f.value.to_vec()).unwrap(),
            )
        })
        .collect()
}

fn table(dec: &Decoder) -> List {
    dec.table_entries()
        .map(|(n, v)| {
            (
                String::from_utf8(n.to_vec()).unwrap(),
                String::from_utf8(v.to_vec()).unwrap(),
            )
        })
        .collect()
}

fn encode(enc: &mut Encoder, l: &List) -> Bytes {
    let mut buf = BytesMut::new();
    enc.encode(
        l.iter()
            .map(|(n, v)| FieldRef::new(n.as_bytes(), v.as_bytes())),
        &mut buf,
    );
    buf.freeze()
}

#[test]
fn c2_1_literal_with_indexing() {
    let mut d = Decoder::new(4096);
    let b = hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572");
    assert_eq!(
        decode_list(&mut d, &b),
        list(&[("custom-key", "custom-header")])
    );
    assert_eq!(table(&d), list(&[("custom-key", "custom-header")]));
    assert_eq!(d.table_size(), 55);
}

#[test]
fn c2_2_literal_without_indexing() {
    let mut d = Decoder::new(4096);
    let b = hex("040c 2f73 616d 706c 652f 7061 7468");
    let f = decode(&mut d, &b).unwrap();
    assert_eq!(
        (&f[0].name[..], &f[0].value[..], f[0].never_index),
        (&b":path"[..], &b"/sample/path"[..], false)
    );
    assert_eq!(d.table_len(), 0);
}

#[test]
fn c2_3_literal_never_indexed() {
    let mut d = Decoder::new(4096);
    let b = hex("1008 7061 7373 776f 7264 0673 6563 7265 74");
    let f = decode(&mut d, &b).unwrap();
    assert_eq!(
        (&f[0].name[..], &f[0].value[..], f[0].never_index),
        (&b"password"[..], &b"secret"[..], true)
    );
    assert_eq!(d.table_len(), 0);
    // Our encoder produces exactly this for a sensitive field with a new name.
    let mut e = Encoder::new();
    let mut buf = BytesMut::new();
    e.set_use_huffman(false);
    e.encode(
        [FieldRef {
            name: b"password",
            value: b"secret",
            sensitive: true,
        }],
        &mut buf,
    );
    assert_eq!(buf.freeze(), b);
    assert_eq!(e.table_len(), 0);
}

#[test]
fn c2_4_indexed() {
    let mut d = Decoder::new(4096);
    assert_eq!(decode_list(&mut d, &hex("82")), list(&[(":method", "GET")]));
    assert_eq!(d.table_len(), 0);
}

fn requests() -> [List; 3] {
    [
        list(&[
            (":method", "GET"),
            (":scheme", "http"),
            (":path", "/"),
            (":authority", "www.example.com"),
        ]),
        list(&[
            (":method", "GET"),
            (":scheme", "http"),
            (":path", "/"),
            (":authority", "www.example.com"),
            ("cache-control", "no-cache"),
        ]),
        list(&[
            (":method", "GET"),
            (":scheme", "https"),
            (":path", "/index.html"),
            (":authority", "www.example.com"),
            ("custom-key", "custom-value"),
        ]),
    ]
}

fn request_tables() -> [(List, usize); 3] {
    [
        (list(&[(":authority", "www.example.com")]), 57),
        (
            list(&[
                ("cache-control", "no-cache"),
                (":authority", "www.example.com"),
            ]),
            110,
        ),
        (
            list(&[
                ("custom-key", "custom-value"),
                ("cache-control", "no-cache"),
                (":authority", "www.example.com"),
            ]),
            164,
        ),
    ]
}

fn check_requests(wires: [&str; 3], huffman: bool) {
    let mut d = Decoder::new(4096);
    let mut e = Encoder::new();
    e.set_use_huffman(huffman);
    for ((wire, want), (tab, size)) in wires.iter().zip(requests()).zip(request_tables()) {
        let b = hex(wire);
        assert_eq!(decode_list(&mut d, &b), want);
        assert_eq!(table(&d), tab);
        assert_eq!(d.table_size(), size);
        // Our encoder's policy indexes exactly what the RFC example indexes.
        assert_eq!(encode(&mut e, &want), b, "encoder output for {want:?}");
    }
}

#[test]
fn c3_requests_without_huffman() {
    check_requests(
        [
            "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
            "8286 84be 5808 6e6f 2d63 6163 6865",
            "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
        ],
        false,
    );
}

#[test]
fn c4_requests_with_huffman() {
    check_requests(
        [
            "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
            "8286 84be 5886 a8eb 1064 9cbf",
            "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
        ],
        true,
    );
}

fn responses() -> [List; 3] {
    [
        list(&[
            (":status", "302"),
            ("cache-control", "private"),
            ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
            ("location", "https://www.example.com"),
        ]),
        list(&[
            (":status", "307"),
            ("cache-control", "private"),
            ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
            ("location", "https://www.example.com"),
        ]),
        list(&[
            (":status", "200"),
            ("cache-control", "private"),
            ("date", "Mon, 21 Oct 2013 20:13:22 GMT"),
            ("location", "https://www.example.com"),
            ("content-encoding", "gzip"),
            (
                "set-cookie",
                "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
            ),
        ]),
    ]
}

fn response_tables() -> [(List, usize); 3] {
    [
        (
            list(&[
                ("location", "https://www.example.com"),
                ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
                ("cache-control", "private"),
                (":status", "302"),
            ]),
            222,
        ),
        (
            list(&[
                (":status", "307"),
                ("location", "https://www.example.com"),
                ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
                ("cache-control", "private"),
            ]),
            222,
        ),
        (
            list(&[
                (
                    "set-cookie",
                    "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
                ),
                ("content-encoding", "gzip"),
                ("date", "Mon, 21 Oct 2013 20:13:22 GMT"),
            ]),
            215,
        ),
    ]
}

fn check_responses(wires: [&str; 3], huffman: bool) {
    // SETTINGS_HEADER_TABLE_SIZE = 256 in these examples.
    let mut d = Decoder::new(256);
    for ((wire, want), (tab, size)) in wires.iter().zip(responses()).zip(response_tables()) {
        let b = hex(wire);
        assert_eq!(decode_list(&mut d, &b), want);
        assert_eq!(table(&d), tab);
        assert_eq!(d.table_size(), size);
    }
    // Our encoder does not index `date`/`location` and never indexes `set-cookie`, so its bytes
    // differ from the example's; it must still round-trip with a 256-octet table.
    let mut e = Encoder::new();
    e.set_use_huffman(huffman);
    e.set_max_table_size(256);
    let mut d = Decoder::new(256);
    for want in responses() {
        let b = encode(&mut e, &want);
        assert_eq!(decode_list(&mut d, &b), want);
        assert_eq!(table(&d).len(), e.table_len());
        assert!(e.table_size() <= 256);
        assert!(table(&d)
            .iter()
            .all(|(n, _)| n != "set-cookie" && n != "date"));
    }
}

#[test]
fn c5_responses_without_huffman() {
    check_responses(
        [
            "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133
             2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70
             6c65 2e63 6f6d",
            "4803 3330 37c1 c0bf",
            "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d
             54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049
             5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e
             3d31",
        ],
        false,
    );
}

#[test]
fn c6_responses_with_huffman() {
    check_responses(
        [
            "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
             2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
            "4883 640e ffc1 c0bf",
            "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
             77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
             9587 3160 65c0 03ed 4ee5 b106 3d50 07",
        ],
        true,
    );
}

#[test]
fn plain_literals_are_slices_of_the_block() {
    let mut d = Decoder::new(4096);
    let b = hex("040c 2f73 616d 706c 652f 7061 7468");
    let f = decode(&mut d, &b).unwrap();
    let start = b.as_ptr() as usize;
    let v = f[0].value.as_ptr() as usize;
    assert!(
        v >= start && v + f[0].value.len() <= start + b.len(),
        "value was copied"
    );
}

#[test]
fn table_entries_do_not_pin_the_block() {
    let mut d = Decoder::new(4096);
    let b = hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572");
    let f = decode(&mut d, &b).unwrap();
    let range = b.as_ptr() as usize..b.as_ptr() as usize + b.len();
    let (n, v) = d.table_entries().next().unwrap();
    assert!(!range.contains(&(n.as_ptr() as usize)));
    assert!(!range.contains(&(v.as_ptr() as usize)));
    // The emitted field shares the table's copy.
    assert_eq!(f[0].value.as_ptr(), v.as_ptr());
}

#[test]
fn index_errors() {
    let mut d = Decoder::new(4096);
    assert_eq!(decode(&mut d, &hex("80")), Err(HpackError::ZeroIndex));
    let mut d = Decoder::new(4096);
    assert_eq!(
        decode(&mut d, &hex("be")),
        Err(HpackError::IndexOutOfRange { index: 62 })
    );
    // Literal with an out-of-range indexed name.
    let mut d = Decoder::new(4096);
    assert_eq!(
        decode(&mut d, &hex("7f00 0161")),
        Err(HpackError::IndexOutOfRange { index: 63 })
    );
    assert!(HpackError::ZeroIndex.is_connection_error());
}

#[test]
fn truncation_never_panics_and_is_an_error() {
    let full = hex(
        "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
         77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
         9587 3160 65c0 03ed 4ee5 b106 3d50 07",
    );
    let mut truncated = 0;
    for n in 0..full.len() {
        // Fresh decoder primed like C.6.2 left it: the prefix references entries 62..65.
        let mut d = Decoder::new(256);
        for w in [
            "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
             2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
            "4883 640e ffc1 c0bf",
        ] {
            decode(&mut d, &hex(w)).unwrap();
        }
        match decode(&mut d, &full.slice(..n)) {
            Ok(_) => {}
            Err(HpackError::Truncated) => truncated += 1,
            // Cutting a Huffman string short can leave invalid padding.
            Err(HpackError::HuffmanPadding) => truncated += 1,
            Err(e) => panic!("prefix {n}: unexpected {e}"),
        }
    }
    assert!(truncated > full.len() / 2, "{truncated}");
}

#[test]
fn size_update_rules() {
    // At the start: fine, and evicts.
    let mut d = Decoder::new(4096);
    decode(
        &mut d,
        &hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572"),
    )
    .unwrap();
    assert_eq!(d.table_len(), 1);
    assert_eq!(
        decode_list(&mut d, &hex("20 3f e1 1f 82")),
        list(&[(":method", "GET")])
    );
    assert_eq!((d.table_len(), d.table_capacity()), (0, 4096));
    // After a field: COMPRESSION_ERROR.
    assert_eq!(
        decode(&mut d, &hex("82 20")),
        Err(HpackError::SizeUpdateNotAtStart)
    );
    // Above our SETTINGS value.
    let mut d = Decoder::new(4096);
    assert_eq!(
        decode(&mut d, &hex("3fe2 1f")),
        Err(HpackError::SizeUpdateTooLarge {
            requested: 4097,
            max: 4096
        })
    );
    // Our limit lowered: the next block must begin with an update within it.
    let mut d = Decoder::new(4096);
    d.set_max_table_size(100);
    assert_eq!(
        decode(&mut d, &hex("82")),
        Err(HpackError::SizeUpdateMissing)
    );
    let mut d = Decoder::new(4096);
    d.set_max_table_size(100);
    assert_eq!(
        decode(&mut d, &hex("3f46 82")),
        Err(HpackError::SizeUpdateTooLarge {
            requested: 101,
            max: 100
        })
    );
    let mut d = Decoder::new(4096);
    d.set_max_table_size(100);
    assert_eq!(
        decode_list(&mut d, &hex("3f45 82")),
        list(&[(":method", "GET")])
    );
    assert_eq!(d.table_capacity(), 100);
    // Raising the limit does not require an update.
    d.set_max_table_size(4096);
    assert_eq!(decode_list(&mut d, &hex("82")), list(&[(":method", "GET")]));
}

#[test]
fn huffman_errors_in_a_block() {
    let mut d = Decoder::new(4096);
    // Literal value, Huffman, 4 octets of ones = EOS.
    assert_eq!(
        decode(&mut d, &hex("0084 ffff ffff")),
        Err(HpackError::HuffmanEos)
    );
    let mut d = Decoder::new(4096);
    assert_eq!(
        decode(&mut d, &hex("0181 ff")),
        Err(HpackError::HuffmanPadding)
    );
    let mut d = Decoder::new(4096);
    assert_eq!(
        decode(&mut d, &hex("0184 ffff ffff")),
        Err(HpackError::HuffmanEos)
    );
}

#[test]
fn header_list_too_large_keeps_the_table_in_sync() {
    let mut d = Decoder::new(4096);
    d.set_max_header_list_size(100);
    // C.3.3-like block: 5 fields, one inserted, well over 100 octets in total.
    let b = hex("8287 85 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65");
    let mut seen = 0;
    let r = d.decode(&b, &mut |_f: HeaderField| seen += 1);
    assert_eq!(
        r,
        Err(HpackError::HeaderListTooLarge {
            size: 42 + 44 + 48 + 54,
            max: 100
        })
    );
    assert!(!r.unwrap_err().is_connection_error());
    assert_eq!(seen, 2, "fields beyond the limit are not delivered");
    // The literal was still inserted: the next block can reference it.
    assert_eq!(
        decode_list(&mut d, &hex("be")),
        list(&[("custom-key", "custom-value")])
    );
}

#[test]
fn encoder_sensitive_and_policy() {
    let mut e = Encoder::new();
    let mut d = Decoder::new(4096);
    let fields = [
        FieldRef::new(b":method", b"POST"),
        FieldRef::new(b":path", b"/pkg.Service/Method"),
        FieldRef::new(b":authority", b"api.example.com"),
        FieldRef::new(b"content-type", b"application/grpc"),
        FieldRef::new(b"te", b"trailers"),
        FieldRef::new(b"authorization", b"Bearer abc"),
        FieldRef::new(b"cookie", b"a=b"),
        FieldRef {
            name: b"x-api-key",
            value: b"k",
            sensitive: true,
        },
        FieldRef::new(b"grpc-timeout", b"1S"),
        FieldRef::new(b"content-length", b"12"),
    ];
    let mut first = BytesMut::new();
    e.encode(fields, &mut first);
    let first = first.freeze();
    let got = decode(&mut d, &first).unwrap();
    assert_eq!(got.len(), fields.len());
    for (g, f) in got.iter().zip(fields) {
        assert_eq!((&g.name[..], &g.value[..]), (f.name, f.value));
        let sensitive = f.sensitive || f.name == b"authorization" || f.name == b"cookie";
        assert_eq!(g.never_index, sensitive, "{:?}", g.name);
    }
    let names: Vec<&[u8]> = e.table_entries().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [&b"te"[..], b"content-type", b":authority", b":path"]
    );
    // Second time: the indexed fields are one octet each.
    let mut second = BytesMut::new();
    e.encode(fields, &mut second);
    // ... and the literals that are never indexed are encoded exactly as the first time.
    assert!(first.ends_with(&second[5..]));
    assert!(second.len() < first.len());
    assert_eq!(&second[..5], &[0x83, 0xc1, 0xc0, 0xbf, 0xbe][..]);
    decode(&mut d, &second.freeze()).unwrap();
    assert_eq!(d.table_size(), e.table_size());
}

#[test]
fn encoder_table_size_updates() {
    let mut e = Encoder::new();
    let mut d = Decoder::new(4096);
    let l = list(&[(":authority", "example.com")]);
    decode(&mut d, &encode(&mut e, &l)).unwrap();
    // Shrink to 0 then grow to 1000 between two blocks: min first, then final (§4.2).
    e.set_max_table_size(0);
    e.set_max_table_size(1000);
    let b = encode(&mut e, &l);
    assert_eq!(&b[..4], &hex("20 3fc9 07")[..]);
    decode(&mut d, &b).unwrap();
    assert_eq!((d.table_capacity(), e.table_capacity()), (1000, 1000));
    assert_eq!(d.table_size(), e.table_size());
    // A larger peer table is capped.
    e.set_max_table_size(1 << 20);
    let b = encode(&mut e, &l);
    assert_eq!(&b[..3], &hex("3fe1 1f")[..]);
    decode(&mut d, &b).unwrap();
    // No change, no update.
    e.set_max_table_size(4096);
    let b = encode(&mut e, &l);
    assert_eq!(b, hex("be"));
}
