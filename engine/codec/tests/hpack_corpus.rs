//! HPACK against the hpack-test-case corpus (engine/codec/testdata/hpack-test-case).
//!
//! - Every `wire` of every story of five independent encoders is decoded with one decoder per
//!   story (cases share the context; `header_table_size` is applied before its case, as an
//!   acknowledged SETTINGS change) and compared with `headers`.
//! - Every story of `raw-data` is encoded with our encoder and decoded back.
//!
//! The corpus is part of the repository: a missing folder or an unexpected number of stories or
//! cases fails the test (it never skips).

use bytes::{Bytes, BytesMut};
use ringedge_codec::hpack::{Decoder, Encoder, FieldRef, HeaderField};
use std::path::{Path, PathBuf};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/hpack-test-case")
}

struct Case {
    header_table_size: Option<usize>,
    wire: Option<Vec<u8>>,
    headers: Vec<(Vec<u8>, Vec<u8>)>,
}

fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// Loads every story of `folder`, sorted by file name. Panics if the folder is missing or empty.
fn load(folder: &str) -> Vec<(String, Vec<Case>)> {
    let dir = corpus_dir().join(folder);
    let rd = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("hpack corpus folder {} is missing: {e}", dir.display()));
    let mut files: Vec<PathBuf> = rd
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no stories in {}", dir.display());
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("read story");
            let v: serde_json::Value = serde_json::from_str(&text).expect("story json");
            let cases = v["cases"]
                .as_array()
                .expect("cases array")
                .iter()
                .map(|c| Case {
                    header_table_size: c
                        .get("header_table_size")
                        .filter(|x| !x.is_null())
                        .map(|x| x.as_u64().expect("header_table_size") as usize),
                    wire: c.get("wire").map(|w| unhex(w.as_str().expect("wire"))),
                    headers: c["headers"]
                        .as_array()
                        .expect("headers")
                        .iter()
                        .map(|h| {
                            let o = h.as_object().expect("header object");
                            assert_eq!(o.len(), 1);
                            let (k, v) = o.iter().next().expect("one field");
                            (
                                k.as_bytes().to_vec(),
                                v.as_str().expect("value").as_bytes().to_vec(),
                            )
                        })
                        .collect(),
                })
                .collect();
            (p.file_name().unwrap().to_string_lossy().into_owned(), cases)
        })
        .collect()
}

/// Decodes all stories of an encoder folder; returns (stories, cases, fields) decoded.
fn decode_folder(folder: &str) -> (usize, usize, usize) {
    let stories = load(folder);
    let (mut ncases, mut nfields) = (0, 0);
    for (name, cases) in &stories {
        let mut dec = Decoder::new(4096);
        for (i, case) in cases.iter().enumerate() {
            if let Some(n) = case.header_table_size {
                dec.set_max_table_size(n);
            }
            let wire = Bytes::from(case.wire.clone().expect("wire in encoder folder"));
            let mut got: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
            dec.decode(&wire, &mut |f: HeaderField| {
                got.push((f.name.to_vec(), f.value.to_vec()))
            })
            .unwrap_or_else(|e| panic!("{folder}/{name} case {i}: {e}"));
            assert_eq!(got, case.headers, "{folder}/{name} case {i}");
            assert!(dec.table_size() <= dec.table_capacity());
            ncases += 1;
            nfields += got.len();
        }
    }
    (stories.len(), ncases, nfields)
}

#[test]
fn decode_nghttp2() {
    assert_eq!(decode_folder("nghttp2"), (32, 3384, 39359));
}

#[test]
fn decode_nghttp2_change_table_size() {
    assert_eq!(
        decode_folder("nghttp2-change-table-size"),
        (31, 3267, 38037)
    );
}

#[test]
fn decode_go_hpack() {
    assert_eq!(decode_folder("go-hpack"), (32, 3384, 39359));
}

#[test]
fn decode_python_hpack() {
    assert_eq!(decode_folder("python-hpack"), (32, 3384, 39359));
}

#[test]
fn decode_swift_nio_hpack_huffman() {
    assert_eq!(decode_folder("swift-nio-hpack-huffman"), (32, 3384, 39359));
}

/// Encodes every raw-data story with our encoder (one context per story) and decodes it back;
/// also runs the stories with a table size that shrinks and grows between blocks.
#[test]
fn raw_data_round_trip() {
    let stories = load("raw-data");
    let (mut ncases, mut nfields, mut wire_bytes, mut raw_bytes) = (0usize, 0usize, 0usize, 0usize);
    for (name, cases) in &stories {
        for sizes in [
            &[4096usize][..],
            &[4096, 0, 256, 1024, 100, 4096, 64, 2048][..],
        ] {
            let mut enc = Encoder::new();
            let mut dec = Decoder::new(4096);
            for (i, case) in cases.iter().enumerate() {
                let size = sizes[i % sizes.len()];
                if sizes.len() > 1 {
                    enc.set_max_table_size(size / 2);
                    enc.set_max_table_size(size);
                }
                let mut buf = BytesMut::new();
                enc.encode(
                    case.headers.iter().map(|(n, v)| FieldRef::new(n, v)),
                    &mut buf,
                );
                let wire = buf.freeze();
                let mut got: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
                dec.decode(&wire, &mut |f: HeaderField| {
                    got.push((f.name.to_vec(), f.value.to_vec()))
                })
                .unwrap_or_else(|e| panic!("raw-data/{name} case {i}: {e}"));
                assert_eq!(got, case.headers, "raw-data/{name} case {i}");
                assert_eq!(dec.table_size(), enc.table_size(), "tables out of sync");
                assert_eq!(dec.table_capacity(), enc.table_capacity());
                if sizes.len() == 1 {
                    ncases += 1;
                    nfields += got.len();
                    wire_bytes += wire.len();
                    raw_bytes += case
                        .headers
                        .iter()
                        .map(|(n, v)| n.len() + v.len())
                        .sum::<usize>();
                }
            }
        }
    }
    assert_eq!((stories.len(), ncases, nfields), (32, 3384, 39359));
    // The encoder must actually compress: the corpus compresses to well under half.
    assert!(
        wire_bytes * 2 < raw_bytes,
        "wire {wire_bytes} raw {raw_bytes}"
    );
}
