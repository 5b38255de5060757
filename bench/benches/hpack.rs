//! HPACK micro-benchmark: ns per header field for our decoder and encoder against `loona-hpack`,
//! in the same run, over every story of the hpack-test-case `raw-data` corpus.
//!
//! Run: `cargo bench -p ringedge-bench --bench hpack`.
//!
//! - encode: every raw-data story with a fresh encoder per story (cases share the context);
//! - decode: the wires our encoder produced (Huffman strings), the wires loona's encoder
//!   produced (plain strings), and the nghttp2 corpus wires, each decoded by both decoders.
//!   loona is timed with `decode_with_cb` (borrowed fields, its fastest API) and with `decode`
//!   (owned fields, the closest to ours: we hand out owned `Bytes`).
//!
//! Each figure is the best of several timed rounds (after a warm-up round). A final section
//! checks which decoder panics on malformed one- and two-byte blocks.

use bytes::{Bytes, BytesMut};
use ringedge_codec::hpack::{Decoder, Encoder, FieldRef, HeaderField};
use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

type Fields = Vec<(Vec<u8>, Vec<u8>)>;

/// One story: its cases (header lists), plus wires if the folder has them.
struct Story {
    cases: Vec<Fields>,
    wires: Vec<Vec<u8>>,
}

fn corpus(folder: &str) -> Vec<Story> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../engine/codec/testdata/hpack-test-case")
        .join(folder);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {} missing: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "empty corpus {}", dir.display());
    files
        .iter()
        .map(|p| {
            let v: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
            let mut story = Story {
                cases: Vec::new(),
                wires: Vec::new(),
            };
            for c in v["cases"].as_array().unwrap() {
                let fields = c["headers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|h| {
                        let (k, v) = h.as_object().unwrap().iter().next().unwrap();
                        (
                            k.as_bytes().to_vec(),
                            v.as_str().unwrap().as_bytes().to_vec(),
                        )
                    })
                    .collect();
                story.cases.push(fields);
                if let Some(w) = c.get("wire").and_then(|w| w.as_str()) {
                    story.wires.push(
                        (0..w.len())
                            .step_by(2)
                            .map(|i| u8::from_str_radix(&w[i..i + 2], 16).unwrap())
                            .collect(),
                    );
                }
            }
            story
        })
        .collect()
}

/// Best time of `rounds` runs of `f` (after one warm-up run), each run repeated until it lasts
/// at least `min` in total; returns ns per unit where `f` processes `units` units.
fn best_ns(units: usize, mut f: impl FnMut()) -> f64 {
    f();
    let min = Duration::from_millis(150);
    let mut best = f64::MAX;
    for _ in 0..7 {
        let start = Instant::now();
        let mut reps = 0u32;
        while start.elapsed() < min || reps == 0 {
            f();
            reps += 1;
        }
        let ns = start.elapsed().as_nanos() as f64 / (reps as f64 * units as f64);
        best = best.min(ns);
    }
    best
}

fn our_encode(stories: &[Story]) -> Vec<Vec<Bytes>> {
    stories
        .iter()
        .map(|s| {
            let mut enc = Encoder::new();
            s.cases
                .iter()
                .map(|c| {
                    let mut buf = BytesMut::new();
                    enc.encode(c.iter().map(|(n, v)| FieldRef::new(n, v)), &mut buf);
                    buf.freeze()
                })
                .collect()
        })
        .collect()
}

fn loona_encode(stories: &[Story]) -> Vec<Vec<Bytes>> {
    stories
        .iter()
        .map(|s| {
            let mut enc = loona_hpack::Encoder::new();
            s.cases
                .iter()
                .map(|c| Bytes::from(enc.encode(c.iter().map(|(n, v)| (&n[..], &v[..])))))
                .collect()
        })
        .collect()
}

/// Decodes all wires with our decoder; returns the number of fields (and checks them).
fn our_decode(wires: &[Vec<Bytes>]) -> usize {
    let mut n = 0;
    for story in wires {
        let mut dec = Decoder::new(4096);
        for w in story {
            dec.decode(w, &mut |f: HeaderField| {
                black_box(&f);
                n += 1;
            })
            .expect("our decoder");
        }
    }
    n
}

fn loona_decode_cb(wires: &[Vec<Bytes>]) -> usize {
    let mut n = 0;
    for story in wires {
        let mut dec = loona_hpack::Decoder::new();
        for w in story {
            dec.decode_with_cb(w, |name, value| {
                black_box((&name, &value));
                n += 1;
            })
            .expect("loona decoder");
        }
    }
    n
}

fn loona_decode_owned(wires: &[Vec<Bytes>]) -> usize {
    let mut n = 0;
    for story in wires {
        let mut dec = loona_hpack::Decoder::new();
        for w in story {
            let list = dec.decode(w).expect("loona decoder");
            n += list.len();
            black_box(list);
        }
    }
    n
}

fn count_fields(stories: &[Story]) -> usize {
    stories
        .iter()
        .map(|s| s.cases.iter().map(Vec::len).sum::<usize>())
        .sum()
}

fn wire_bytes(wires: &[Vec<Bytes>]) -> usize {
    wires.iter().flatten().map(Bytes::len).sum()
}

fn decode_row(label: &str, wires: &[Vec<Bytes>], fields: usize) {
    assert_eq!(
        our_decode(wires),
        fields,
        "{label}: our decoder field count"
    );
    assert_eq!(loona_decode_cb(wires), fields, "{label}: loona field count");
    let ours = best_ns(fields, || {
        black_box(our_decode(black_box(wires)));
    });
    let cb = best_ns(fields, || {
        black_box(loona_decode_cb(black_box(wires)));
    });
    let owned = best_ns(fields, || {
        black_box(loona_decode_owned(black_box(wires)));
    });
    println!(
        "decode {label:<26} {:>7} B  ours {ours:6.1} ns/field | loona cb {cb:6.1} ({:.2}x) | loona owned {owned:6.1} ({:.2}x)",
        wire_bytes(wires),
        cb / ours,
        owned / ours
    );
}

/// Counts panics of a decoder over all one-byte blocks and a sample of two-byte blocks.
fn panics(decode: impl Fn(&[u8]) + std::panic::RefUnwindSafe) -> (usize, usize) {
    let mut inputs: Vec<Vec<u8>> = (0..=255u8).map(|b| vec![b]).collect();
    for a in (0..=255u8).step_by(3) {
        for b in [0x00u8, 0x01, 0x7f, 0x80, 0xff] {
            inputs.push(vec![a, b]);
        }
    }
    let n = inputs
        .iter()
        .filter(|i| std::panic::catch_unwind(|| decode(i)).is_err())
        .count();
    (n, inputs.len())
}

fn main() {
    let raw = corpus("raw-data");
    let nghttp2 = corpus("nghttp2");
    let fields = count_fields(&raw);
    let raw_bytes: usize = raw
        .iter()
        .flat_map(|s| &s.cases)
        .flatten()
        .map(|(n, v)| n.len() + v.len())
        .sum();
    println!(
        "hpack bench: raw-data {} stories, {} blocks, {fields} fields, {raw_bytes} B of names+values",
        raw.len(),
        raw.iter().map(|s| s.cases.len()).sum::<usize>()
    );

    // Encoding.
    let ours_wires = our_encode(&raw);
    let loona_wires = loona_encode(&raw);

    // Profiling aid: HPACK_BENCH_PROFILE=encode|decode-ours|decode-loona|decode-nghttp2 loops
    // over one of our operations for a few seconds and exits.
    if let Ok(what) = std::env::var("HPACK_BENCH_PROFILE") {
        let ng: Vec<Vec<Bytes>> = nghttp2
            .iter()
            .map(|s| s.wires.iter().map(|w| Bytes::copy_from_slice(w)).collect())
            .collect();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            match what.as_str() {
                "encode" => drop(black_box(our_encode(&raw))),
                "decode-ours" => drop(black_box(our_decode(&ours_wires))),
                "decode-loona" => drop(black_box(our_decode(&loona_wires))),
                _ => drop(black_box(our_decode(&ng))),
            }
        }
        return;
    }
    let enc_ours = best_ns(fields, || {
        black_box(our_encode(black_box(&raw)));
    });
    let enc_loona = best_ns(fields, || {
        black_box(loona_encode(black_box(&raw)));
    });
    println!(
        "encode raw-data                      ours {enc_ours:6.1} ns/field -> {} B | loona {enc_loona:6.1} ns/field -> {} B (no Huffman) | ratio {:.2}x",
        wire_bytes(&ours_wires),
        wire_bytes(&loona_wires),
        enc_loona / enc_ours
    );

    // Decoding.
    decode_row("raw-data (our wires)", &ours_wires, fields);
    decode_row("raw-data (loona wires)", &loona_wires, fields);
    let ng: Vec<Vec<Bytes>> = nghttp2
        .iter()
        .map(|s| s.wires.iter().map(|w| Bytes::copy_from_slice(w)).collect())
        .collect();
    decode_row("nghttp2 corpus wires", &ng, count_fields(&nghttp2));

    // Robustness: panics on malformed tiny blocks (fresh decoder per input).
    std::panic::set_hook(Box::new(|_| {}));
    let (p_ours, n) = panics(|b| {
        let _ = Decoder::new(4096).decode(&Bytes::copy_from_slice(b), &mut |_f: HeaderField| {});
    });
    let (p_loona, _) = panics(|b| {
        let _ = loona_hpack::Decoder::new().decode(b);
    });
    let _ = std::panic::take_hook();
    println!("malformed 1-2 byte blocks ({n}): panics ours {p_ours}, loona-hpack {p_loona}");
}
