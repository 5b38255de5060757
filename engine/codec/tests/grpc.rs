//! Table and property tests for the gRPC wire helpers (gRPC PROTOCOL-HTTP2.md,
//! http-grpc-status-mapping.md).

use bytes::Bytes;
use proptest::prelude::*;
use ringedge_codec::grpc::*;
use std::time::Duration;

// ---------- content-type ----------

#[test]
fn content_type_table() {
    use ContentKind::*;
    let cases: &[(&str, ContentKind<'_>)] = &[
        ("application/grpc", Grpc { subtype: None }),
        (
            "application/grpc+proto",
            Grpc {
                subtype: Some("proto"),
            },
        ),
        (
            "application/grpc+json",
            Grpc {
                subtype: Some("json"),
            },
        ),
        (
            "Application/GRPC+Proto",
            Grpc {
                subtype: Some("Proto"),
            },
        ),
        ("APPLICATION/GRPC", Grpc { subtype: None }),
        ("application/grpc; charset=utf-8", Grpc { subtype: None }),
        (
            " application/grpc+proto ;x=y",
            Grpc {
                subtype: Some("proto"),
            },
        ),
        (
            "application/grpc-web",
            GrpcWeb {
                text: false,
                subtype: None,
            },
        ),
        (
            "application/grpc-web+proto",
            GrpcWeb {
                text: false,
                subtype: Some("proto"),
            },
        ),
        (
            "application/grpc-web-text",
            GrpcWeb {
                text: true,
                subtype: None,
            },
        ),
        (
            "application/grpc-web-text+proto",
            GrpcWeb {
                text: true,
                subtype: Some("proto"),
            },
        ),
        (
            "Application/gRPC-Web-Text",
            GrpcWeb {
                text: true,
                subtype: None,
            },
        ),
        ("application/grpcfoo", NotGrpc),
        ("application/grpc+", NotGrpc),
        ("application/grpc+ proto", NotGrpc),
        ("application/grpc-webx", NotGrpc),
        ("application/grpc-web-textx", NotGrpc),
        ("application/grp", NotGrpc),
        ("application/json", NotGrpc),
        ("text/grpc", NotGrpc),
        ("", NotGrpc),
        ("; application/grpc", NotGrpc),
    ];
    for (input, want) in cases {
        assert_eq!(
            classify_content_type(input.as_bytes()),
            *want,
            "input {input:?}"
        );
    }
    assert_eq!(classify_content_type(b"application/grpc\xff"), NotGrpc);
    assert!(classify_content_type(b"application/grpc").is_grpc());
    assert!(!classify_content_type(b"application/grpc-web").is_grpc());
}

proptest! {
    #[test]
    fn content_type_never_panics(v in proptest::collection::vec(any::<u8>(), 0..40)) {
        let _ = classify_content_type(&v);
    }
}

// ---------- grpc-timeout ----------

#[test]
fn timeout_parse_table() {
    let ok: &[(&str, Duration)] = &[
        ("1H", Duration::from_secs(3600)),
        ("2M", Duration::from_secs(120)),
        ("30S", Duration::from_secs(30)),
        ("100m", Duration::from_millis(100)),
        ("7u", Duration::from_micros(7)),
        ("5n", Duration::from_nanos(5)),
        ("0S", Duration::ZERO),
        ("00000001m", Duration::from_millis(1)),
        ("99999999H", Duration::from_secs(99_999_999 * 3600)),
    ];
    for (s, d) in ok {
        assert_eq!(parse_timeout(s.as_bytes()), Ok(*d), "{s}");
    }
    let bad = [
        "",
        "S",
        "1",
        "123456789S",
        "1s",
        "1h",
        "1x",
        "-1S",
        "+1S",
        " 1S",
        "1S ",
        "1.5S",
        "1SS",
        "\u{ff11}S",
        "1 S",
    ];
    for s in bad {
        assert!(
            matches!(
                parse_timeout(s.as_bytes()),
                Err(GrpcError::InvalidTimeout { .. })
            ),
            "{s:?} should be rejected"
        );
    }
}

#[test]
fn timeout_format_table() {
    let cases: &[(Duration, &str)] = &[
        (Duration::ZERO, "0n"),
        (Duration::from_nanos(1), "1n"),
        (Duration::from_nanos(99_999_999), "99999999n"),
        (Duration::from_nanos(100_000_000), "100000u"),
        // 100_000_001 ns rounds up to the next microsecond, never down.
        (Duration::from_nanos(100_000_001), "100001u"),
        (Duration::from_secs(1), "1000000u"),
        (Duration::from_secs(100), "100000m"),
        (Duration::from_secs(100_000), "100000S"),
        // 100_000_000.5 s does not fit 8 digits of S: rounds up to whole minutes.
        (Duration::new(100_000_000, 500_000_000), "1666667M"),
        (Duration::from_secs(99_999_999 * 3600), "99999999H"),
        (Duration::MAX, "99999999H"),
    ];
    for (d, want) in cases {
        assert_eq!(format_timeout(*d), *want, "{d:?}");
    }
}

/// Unit length in ns of a formatted timeout.
fn unit_ns(s: &str) -> u128 {
    match s.as_bytes().last().copied() {
        Some(b'n') => 1,
        Some(b'u') => 1_000,
        Some(b'm') => 1_000_000,
        Some(b'S') => 1_000_000_000,
        Some(b'M') => 60_000_000_000,
        Some(b'H') => 3_600_000_000_000,
        _ => panic!("no unit in {s}"),
    }
}

proptest! {
    #[test]
    fn timeout_format_parse_keeps_at_least_duration(
        secs in 0u64..(99_999_999u64 * 3600),
        nanos in 0u32..1_000_000_000,
    ) {
        let d = Duration::new(secs, nanos);
        let s = format_timeout(d);
        let digits = s.len() - 1;
        prop_assert!((1..=MAX_TIMEOUT_DIGITS).contains(&digits), "{}", s);
        let back = parse_timeout(s.as_bytes()).unwrap();
        prop_assert!(back >= d, "{} parsed to {:?} < {:?}", s, back, d);
        prop_assert!(back.as_nanos() - d.as_nanos() < unit_ns(&s), "{} more than one unit over", s);
        if d > Duration::ZERO {
            prop_assert!(back > Duration::ZERO);
        }
    }

    #[test]
    fn timeout_small_durations_exact(n in 0u64..100_000_000) {
        let d = Duration::from_nanos(n);
        prop_assert_eq!(parse_timeout(format_timeout(d).as_bytes()).unwrap(), d);
    }

    #[test]
    fn timeout_parse_format_exact(
        v in 0u64..100_000_000,
        u in prop::sample::select(vec![b'n', b'u', b'm', b'S', b'M', b'H']),
    ) {
        let mut s = v.to_string().into_bytes();
        s.push(u);
        let d = parse_timeout(&s).unwrap();
        // A parsed value is a whole number of its unit, so re-formatting is exact.
        prop_assert_eq!(parse_timeout(format_timeout(d).as_bytes()).unwrap(), d);
    }

    #[test]
    fn timeout_parse_never_panics(v in proptest::collection::vec(any::<u8>(), 0..12)) {
        let _ = parse_timeout(&v);
    }
}

// ---------- status ----------

#[test]
fn code_numbers_and_names() {
    let names = [
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    ];
    for (i, name) in names.iter().enumerate() {
        let c = Code::from_u32(i as u32).unwrap();
        assert_eq!(c.as_u32(), i as u32);
        assert_eq!(c.name(), *name);
        assert_eq!(c.to_string(), *name);
        assert_eq!(c.as_status_str(), i.to_string());
        assert_eq!(Code::ALL[i], c);
    }
    assert_eq!(Code::from_u32(17), None);
    assert_eq!(Code::from_u32(u32::MAX), None);
    assert_eq!(Code::Unavailable.as_u32(), 14);
    assert_eq!(Code::DeadlineExceeded.as_u32(), 4);
}

#[test]
fn grpc_status_parse() {
    for c in Code::ALL {
        assert_eq!(parse_grpc_status(c.as_status_str().as_bytes()), Ok(c));
    }
    assert_eq!(parse_grpc_status(b"017"), Ok(Code::Unknown));
    assert_eq!(parse_grpc_status(b"007"), Ok(Code::PermissionDenied));
    assert_eq!(parse_grpc_status(b"4294967295"), Ok(Code::Unknown));
    let bad: [&[u8]; 9] = [
        b"",
        b"4294967296",
        b"00000000001",
        b"-1",
        b"+1",
        b" 0",
        b"0 ",
        b"1a",
        b"\xff",
    ];
    for v in bad {
        assert_eq!(parse_grpc_status(v), Err(GrpcError::InvalidStatus), "{v:?}");
    }
}

#[test]
fn http_status_mapping() {
    let table = [
        (400, Code::Internal),
        (401, Code::Unauthenticated),
        (403, Code::PermissionDenied),
        (404, Code::Unimplemented),
        (429, Code::Unavailable),
        (502, Code::Unavailable),
        (503, Code::Unavailable),
        (504, Code::Unavailable),
        (200, Code::Unknown),
        (500, Code::Unknown),
        (405, Code::Unknown),
        (0, Code::Unknown),
        (u16::MAX, Code::Unknown),
    ];
    for (http, code) in table {
        assert_eq!(Code::from_http_status(http), code, "{http}");
    }
}

#[test]
fn rst_stream_mapping() {
    let table = [
        (0x0, Code::Internal),          // NO_ERROR
        (0x1, Code::Internal),          // PROTOCOL_ERROR
        (0x2, Code::Internal),          // INTERNAL_ERROR
        (0x3, Code::Internal),          // FLOW_CONTROL_ERROR
        (0x4, Code::Internal),          // SETTINGS_TIMEOUT
        (0x5, Code::Internal),          // STREAM_CLOSED (not in the spec table)
        (0x6, Code::Internal),          // FRAME_SIZE_ERROR
        (0x7, Code::Unavailable),       // REFUSED_STREAM
        (0x8, Code::Cancelled),         // CANCEL
        (0x9, Code::Internal),          // COMPRESSION_ERROR
        (0xa, Code::Internal),          // CONNECT_ERROR
        (0xb, Code::ResourceExhausted), // ENHANCE_YOUR_CALM
        (0xc, Code::PermissionDenied),  // INADEQUATE_SECURITY
        (0xd, Code::Internal),          // HTTP_1_1_REQUIRED
        (0xdead, Code::Internal),
        (u32::MAX, Code::Internal),
    ];
    for (e, code) in table {
        assert_eq!(Code::from_rst_stream(e), code, "{e:#x}");
    }
}

// ---------- grpc-message ----------

#[test]
fn percent_encode_table() {
    let cases: &[(&str, &str)] = &[
        ("", ""),
        ("hello world", "hello world"),
        ("100%", "100%25"),
        ("a\nb", "a%0Ab"),
        ("\t", "%09"),
        ("~ !", "~ !"),
        ("\u{7f}", "%7F"),
        ("caf\u{e9}", "caf%C3%A9"),
        ("\u{65e5}\u{672c}", "%E6%97%A5%E6%9C%AC"),
    ];
    for (input, want) in cases {
        assert_eq!(
            percent_encode_message(input),
            Bytes::from(want.as_bytes().to_vec()),
            "{input:?}"
        );
    }
}

#[test]
fn percent_decode_tolerant() {
    let cases: &[(&[u8], &str)] = &[
        (b"", ""),
        (b"plain", "plain"),
        (b"100%25", "100%"),
        (b"caf%c3%a9", "caf\u{e9}"),
        (b"caf%C3%A9", "caf\u{e9}"),
        (b"%", "%"),
        (b"%4", "%4"),
        (b"%zz", "%zz"),
        (b"%%41", "%A"),
        (b"a%2", "a%2"),
        (b"%ff", "\u{fffd}"),
        (b"%C3", "\u{fffd}"),
        (b"x%C3%28", "x\u{fffd}("),
        (b"\xff", "\u{fffd}"),
    ];
    for (input, want) in cases {
        assert_eq!(percent_decode_message(input), *want, "{input:?}");
    }
}

proptest! {
    #[test]
    fn percent_round_trip(s in any::<String>()) {
        let enc = percent_encode_message(&s);
        prop_assert!(enc.iter().all(|b| (0x20..=0x7e).contains(b)));
        prop_assert_eq!(percent_decode_message(&enc), s);
    }

    #[test]
    fn percent_decode_never_panics(v in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = percent_decode_message(&v);
    }
}

// ---------- trailers ----------

fn f(n: &str, v: &str) -> HeaderField {
    HeaderField {
        name: Bytes::from(n.as_bytes().to_vec()),
        value: Bytes::from(v.as_bytes().to_vec()),
    }
}

#[test]
fn trailers_only_fields() {
    let got = trailers_only(
        Code::Unavailable,
        "origin unreachable: connection refused",
        &[],
    );
    assert_eq!(
        got,
        vec![
            f(":status", "200"),
            f("content-type", "application/grpc"),
            f("grpc-status", "14"),
            f("grpc-message", "origin unreachable: connection refused"),
        ]
    );
    let got = trailers_only(Code::Ok, "", &[]);
    assert_eq!(
        got,
        vec![
            f(":status", "200"),
            f("content-type", "application/grpc"),
            f("grpc-status", "0")
        ]
    );
    let extra = [
        f("x-edge", "a"),
        f("grpc-status", "0"),
        f(":path", "/x"),
        f("Content-Type", "t"),
        f("x-b-bin", "AAE"),
    ];
    let got = trailers_only(Code::ResourceExhausted, "100% full\n", &extra);
    assert_eq!(
        got,
        vec![
            f(":status", "200"),
            f("content-type", "application/grpc"),
            f("grpc-status", "8"),
            f("grpc-message", "100%25 full%0A"),
            f("x-edge", "a"),
            f("x-b-bin", "AAE"),
        ]
    );
}

#[test]
fn plain_trailers_fields() {
    assert_eq!(trailers(Code::Ok, "", &[]), vec![f("grpc-status", "0")]);
    assert_eq!(
        trailers(
            Code::DeadlineExceeded,
            "deadline exceeded",
            &[f("x-t", "1")]
        ),
        vec![
            f("grpc-status", "4"),
            f("grpc-message", "deadline exceeded"),
            f("x-t", "1")
        ]
    );
}

// ---------- walker ----------

fn frame(flag: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![flag];
    v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    v.extend_from_slice(payload);
    v
}

type Walked = (Vec<(bool, Vec<u8>)>, Result<(), GrpcError>, MessageWalker);

/// Feeds chunks; returns the messages as (compressed, payload), the result, and the walker.
fn walk(chunks: &[Bytes], max: u32) -> Walked {
    let mut w = MessageWalker::new(WalkerLimits {
        max_message_size: max,
    });
    let mut msgs = Vec::new();
    let mut cur: Option<(bool, u32, Vec<u8>)> = None;
    for c in chunks {
        let r = w.feed(c.clone(), |ev| match ev {
            WalkEvent::MessageStart { compressed, len } => {
                assert!(cur.is_none());
                cur = Some((compressed, len, Vec::new()));
            }
            WalkEvent::Payload(b) => {
                assert!(!b.is_empty());
                cur.as_mut().unwrap().2.extend_from_slice(&b);
            }
            WalkEvent::MessageEnd => {
                let (c, len, p) = cur.take().unwrap();
                assert_eq!(p.len(), len as usize);
                msgs.push((c, p));
            }
        });
        if r.is_err() {
            return (msgs, r, w);
        }
    }
    let r = w.finish();
    (msgs, r, w)
}

#[test]
fn walker_basic_and_empty_message() {
    let mut body = frame(0, b"hello");
    body.extend(frame(1, b""));
    body.extend(frame(1, b"zz"));
    let (msgs, r, w) = walk(&[Bytes::from(body)], 100);
    assert_eq!(r, Ok(()));
    assert_eq!(
        msgs,
        vec![
            (false, b"hello".to_vec()),
            (true, vec![]),
            (true, b"zz".to_vec())
        ]
    );
    assert_eq!(w.messages_completed(), 3);
    assert!(w.at_boundary());
}

#[test]
fn walker_payload_is_zero_copy_view() {
    let body = Bytes::from(frame(0, b"abcdef"));
    let base = body.as_ptr() as usize;
    let mut w = MessageWalker::default();
    let mut ptrs = Vec::new();
    w.feed(body.clone(), |ev| {
        if let WalkEvent::Payload(b) = ev {
            ptrs.push((b.as_ptr() as usize, b.len()));
        }
    })
    .unwrap();
    assert_eq!(ptrs, vec![(base + 5, 6)]);
}

#[test]
fn walker_prefix_split_byte_by_byte() {
    let body = frame(0, b"xyz");
    let chunks: Vec<Bytes> = body.iter().map(|b| Bytes::from(vec![*b])).collect();
    let (msgs, r, _) = walk(&chunks, 100);
    assert_eq!(r, Ok(()));
    assert_eq!(msgs, vec![(false, b"xyz".to_vec())]);
}

#[test]
fn walker_rejects_too_large_before_payload() {
    let body = frame(0, &[7u8; 11]);
    let mut w = MessageWalker::new(WalkerLimits {
        max_message_size: 10,
    });
    let mut events = 0;
    let r = w.feed(Bytes::from(body), |_| events += 1);
    let e = r.unwrap_err();
    assert_eq!(e, GrpcError::MessageTooLarge { len: 11, max: 10 });
    assert_eq!(e.code(), Code::ResourceExhausted);
    assert!(e.to_string().contains("RESOURCE_EXHAUSTED"));
    assert_eq!(events, 0);
    // Poisoned: further input is refused with the same error.
    assert_eq!(
        w.feed(Bytes::from_static(b"\0\0\0\0\0"), |_| panic!(
            "event after error"
        )),
        Err(e.clone())
    );
    assert_eq!(w.finish(), Err(e));
    // Exactly the limit is accepted.
    let (msgs, r, _) = walk(&[Bytes::from(frame(0, &[7u8; 10]))], 10);
    assert_eq!(r, Ok(()));
    assert_eq!(msgs.len(), 1);
}

#[test]
fn walker_rejects_bad_flag() {
    for flag in [2u8, 0x80, 0xff] {
        let chunks = [Bytes::from(frame(0, b"ok")), Bytes::from(frame(flag, b"x"))];
        let (msgs, r, _) = walk(&chunks, 100);
        assert_eq!(msgs.len(), 1);
        assert_eq!(r, Err(GrpcError::InvalidCompressedFlag(flag)));
    }
}

#[test]
fn walker_truncation() {
    let (_, r, _) = walk(&[Bytes::from_static(&[0, 0, 0])], 100);
    assert_eq!(
        r,
        Err(GrpcError::TruncatedMessage {
            received: 3,
            expected: 5
        })
    );
    let mut b = frame(0, b"abcd");
    b.truncate(7);
    let (msgs, r, _) = walk(&[Bytes::from(b)], 100);
    assert!(msgs.is_empty());
    assert_eq!(
        r,
        Err(GrpcError::TruncatedMessage {
            received: 7,
            expected: 9
        })
    );
    assert_eq!(r.unwrap_err().code(), Code::Internal);
    let (_, r, _) = walk(&[], 100);
    assert_eq!(r, Ok(()));
}

#[test]
fn count_messages_convenience() {
    let mut body = Vec::new();
    for i in 0..5u8 {
        body.extend(frame(i & 1, &vec![i; usize::from(i) * 3]));
    }
    let b = Bytes::from(body);
    let chunks = vec![b.slice(..4), b.slice(4..13), b.slice(13..)];
    assert_eq!(count_messages(chunks, WalkerLimits::default()), Ok(5));
    assert!(count_messages(vec![b.slice(..b.len() - 1)], WalkerLimits::default()).is_err());
    assert_eq!(WalkerLimits::default().max_message_size, 4 * 1024 * 1024);
}

#[test]
fn error_display_names_failure() {
    assert!(GrpcError::InvalidTimeout {
        reason: "no digits"
    }
    .to_string()
    .contains("grpc-timeout"));
    assert!(GrpcError::InvalidStatus.to_string().contains("grpc-status"));
    assert!(GrpcError::InvalidCompressedFlag(3)
        .to_string()
        .contains("compressed flag 3"));
    let t = GrpcError::TruncatedMessage {
        received: 1,
        expected: 5,
    };
    assert!(t.to_string().contains("truncated"));
}

proptest! {
    #[test]
    fn walker_random_split_reassembles(
        msgs in proptest::collection::vec(
            (any::<bool>(), proptest::collection::vec(any::<u8>(), 0..300)),
            0..8,
        ),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        let mut body = Vec::new();
        for (c, p) in &msgs {
            body.extend(frame(u8::from(*c), p));
        }
        let body = Bytes::from(body);
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (body.len() + 1)).collect();
        points.push(0);
        points.push(body.len());
        points.sort_unstable();
        let chunks: Vec<Bytes> = points.windows(2).map(|w| body.slice(w[0]..w[1])).collect();
        let (got, r, w) = walk(&chunks, 1000);
        prop_assert_eq!(r, Ok(()));
        prop_assert_eq!(&got, &msgs);
        prop_assert_eq!(w.messages_completed(), msgs.len() as u64);
    }
}

proptest! {
    /// `check` (borrowed chunks, no events) reaches the same verdict, chunk by chunk, as `feed`
    /// on any bytes split anywhere: errors (bad flag, too large), completed counts, boundary
    /// state and the final `finish`.
    #[test]
    fn walker_check_agrees_with_feed(
        body in proptest::collection::vec(any::<u8>(), 0..400),
        framed in proptest::collection::vec(
            (0u8..3, proptest::collection::vec(any::<u8>(), 0..120)),
            0..5,
        ),
        use_framed in any::<bool>(),
        cuts in proptest::collection::vec(any::<usize>(), 0..10),
        max in 0u32..200,
    ) {
        // Either arbitrary bytes or well-formed frames (flags 0..3, so some are bad).
        let bytes = if use_framed {
            framed.iter().flat_map(|(f, p)| frame(*f, p)).collect::<Vec<u8>>()
        } else {
            body
        };
        let body = Bytes::from(bytes);
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (body.len() + 1)).collect();
        points.push(0);
        points.push(body.len());
        points.sort_unstable();
        let limits = WalkerLimits { max_message_size: max };
        let (mut fed, mut checked) = (MessageWalker::new(limits), MessageWalker::new(limits));
        for w in points.windows(2) {
            let chunk = body.slice(w[0]..w[1]);
            let a = fed.feed(chunk.clone(), |_| {});
            let b = checked.check(&chunk);
            prop_assert_eq!(&a, &b);
            prop_assert_eq!(fed.messages_completed(), checked.messages_completed());
            prop_assert_eq!(fed.at_boundary(), checked.at_boundary());
            if a.is_err() {
                break;
            }
        }
        prop_assert_eq!(fed.finish(), checked.finish());
    }
}
