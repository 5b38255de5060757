//! Property tests: every encoder/parser pair round-trips (RFC 9113 §6 wire formats).

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use ringedge_codec::frame::*;

fn sid() -> impl Strategy<Value = StreamId> {
    (1u32..=MAX_WINDOW).prop_map(StreamId::new)
}

fn bytes_up_to(n: usize) -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), 0..n).prop_map(Bytes::from)
}

fn code() -> impl Strategy<Value = ErrorCode> {
    any::<u32>().prop_map(ErrorCode::from)
}

fn priority_for(s: StreamId) -> impl Strategy<Value = Priority> {
    (0u32..=MAX_WINDOW, any::<bool>(), any::<u8>())
        .prop_filter("no self-dependency", move |(d, _, _)| *d != s.get())
        .prop_map(|(d, e, w)| Priority {
            dependency: StreamId::new(d),
            exclusive: e,
            weight: w,
        })
}

fn settings() -> impl Strategy<Value = Settings> {
    (
        proptest::option::of(any::<u32>()),
        proptest::option::of(0u32..=1),
        proptest::option::of(any::<u32>()),
        proptest::option::of(0u32..=MAX_WINDOW),
        proptest::option::of(DEFAULT_MAX_FRAME_SIZE..=MAX_MAX_FRAME_SIZE),
        proptest::option::of(any::<u32>()),
        proptest::option::of(0u32..=1),
    )
        .prop_map(|(a, b, c, d, e, f, g)| Settings {
            header_table_size: a,
            enable_push: b,
            max_concurrent_streams: c,
            initial_window_size: d,
            max_frame_size: e,
            max_header_list_size: f,
            enable_connect_protocol: g,
        })
}

fn frame() -> impl Strategy<Value = Frame> {
    prop_oneof![
        (
            sid(),
            bytes_up_to(300),
            any::<bool>(),
            proptest::option::of(any::<u8>())
        )
            .prop_map(|(s, p, e, pad)| {
                let flow_len = p.len() as u32 + pad.map_or(0, |x| x as u32 + 1);
                Frame::Data {
                    stream_id: s,
                    payload: p,
                    end_stream: e,
                    flow_len,
                }
            }),
        sid()
            .prop_flat_map(|s| (
                Just(s),
                bytes_up_to(300),
                any::<bool>(),
                any::<bool>(),
                proptest::option::of(priority_for(s))
            ))
            .prop_map(|(s, b, es, eh, p)| Frame::Headers {
                stream_id: s,
                block: b,
                end_stream: es,
                end_headers: eh,
                priority: p
            }),
        sid()
            .prop_flat_map(|s| (Just(s), priority_for(s)))
            .prop_map(|(s, p)| Frame::Priority {
                stream_id: s,
                priority: p
            }),
        (sid(), code()).prop_map(|(s, c)| Frame::RstStream {
            stream_id: s,
            code: c
        }),
        settings().prop_map(|s| Frame::Settings {
            ack: false,
            settings: s
        }),
        Just(Frame::Settings {
            ack: true,
            settings: Settings::default()
        }),
        (
            sid(),
            (0u32..=MAX_WINDOW).prop_map(StreamId::new),
            bytes_up_to(200),
            any::<bool>()
        )
            .prop_map(|(s, p, b, e)| Frame::PushPromise {
                stream_id: s,
                promised_id: p,
                block: b,
                end_headers: e
            }),
        (any::<bool>(), any::<[u8; 8]>()).prop_map(|(a, d)| Frame::Ping { ack: a, data: d }),
        (
            (0u32..=MAX_WINDOW).prop_map(StreamId::new),
            code(),
            bytes_up_to(100)
        )
            .prop_map(|(l, c, d)| Frame::GoAway {
                last_stream_id: l,
                code: c,
                debug: d
            }),
        (
            (0u32..=MAX_WINDOW).prop_map(StreamId::new),
            1u32..=MAX_WINDOW
        )
            .prop_map(|(s, i)| Frame::WindowUpdate {
                stream_id: s,
                increment: i
            }),
        (sid(), bytes_up_to(300), any::<bool>()).prop_map(|(s, b, e)| Frame::Continuation {
            stream_id: s,
            block: b,
            end_headers: e
        }),
        (
            10u8..=255,
            any::<u8>(),
            (0u32..=MAX_WINDOW).prop_map(StreamId::new)
        )
            .prop_map(|(k, f, s)| Frame::Unknown {
                header: FrameHeader {
                    length: 0,
                    kind: k,
                    flags: f,
                    stream_id: s
                }
            }),
    ]
}

proptest! {
    #[test]
    fn every_frame_round_trips(frames in proptest::collection::vec(frame(), 1..8)) {
        let mut buf = BytesMut::new();
        for f in &frames {
            f.encode(&mut buf);
        }
        let total = buf.len();
        for f in &frames {
            let got = parse_frame(&mut buf, DEFAULT_MAX_FRAME_SIZE).unwrap().unwrap();
            prop_assert_eq!(&got, f);
        }
        prop_assert!(buf.is_empty(), "{} of {} bytes left", buf.len(), total);
    }

    #[test]
    fn headers_blocks_round_trip_through_continuations(
        s in sid(),
        block in proptest::collection::vec(any::<u8>(), 0..70_000),
        end_stream in any::<bool>(),
        max in prop_oneof![Just(DEFAULT_MAX_FRAME_SIZE), 16_384u32..40_000],
    ) {
        let mut buf = BytesMut::new();
        encode_headers(&mut buf, s, &block, end_stream, max);
        let mut got = Vec::new();
        let mut first = true;
        loop {
            let f = parse_frame(&mut buf, max).unwrap().unwrap();
            let (b, eh) = match f {
                Frame::Headers { stream_id, block, end_stream: es, end_headers, priority: None }
                    if first => {
                    prop_assert_eq!(stream_id, s);
                    prop_assert_eq!(es, end_stream);
                    (block, end_headers)
                }
                Frame::Continuation { stream_id, block, end_headers } if !first => {
                    prop_assert_eq!(stream_id, s);
                    (block, end_headers)
                }
                other => panic!("unexpected {other:?}"),
            };
            prop_assert!(b.len() <= max as usize);
            first = false;
            got.extend_from_slice(&b);
            if eh { break; }
        }
        prop_assert!(buf.is_empty());
        prop_assert_eq!(got, block);
    }

    #[test]
    fn push_promise_blocks_round_trip(
        s in sid(), p in sid(), block in proptest::collection::vec(any::<u8>(), 0..40_000)
    ) {
        let mut buf = BytesMut::new();
        encode_push_promise(&mut buf, s, p, &block, DEFAULT_MAX_FRAME_SIZE);
        let mut got = Vec::new();
        let Some(Frame::PushPromise { promised_id, block: b, mut end_headers, .. }) =
            parse_frame(&mut buf, DEFAULT_MAX_FRAME_SIZE).unwrap() else { panic!() };
        prop_assert_eq!(promised_id, p);
        got.extend_from_slice(&b);
        while !end_headers {
            let Some(Frame::Continuation { block: b, end_headers: e, .. }) =
                parse_frame(&mut buf, DEFAULT_MAX_FRAME_SIZE).unwrap() else { panic!() };
            got.extend_from_slice(&b);
            end_headers = e;
        }
        prop_assert_eq!(got, block);
    }

    #[test]
    fn data_header_plus_view_equals_data_frame(
        s in sid(), p in proptest::collection::vec(any::<u8>(), 0..1000), e in any::<bool>()
    ) {
        let mut a = BytesMut::new();
        encode_data_header(&mut a, s, p.len() as u32, e);
        a.extend_from_slice(&p);
        let mut b = BytesMut::new();
        encode_data(&mut b, s, &p, e);
        prop_assert_eq!(&a, &b);
        let f = parse_frame(&mut a, DEFAULT_MAX_FRAME_SIZE).unwrap().unwrap();
        prop_assert_eq!(f, Frame::Data {
            stream_id: s, payload: Bytes::from(p.clone()), end_stream: e, flow_len: p.len() as u32
        });
    }

    #[test]
    fn settings_list_round_trips(list in proptest::collection::vec(
        prop_oneof![
            (Just(Setting::HEADER_TABLE_SIZE), any::<u32>()),
            (Just(Setting::ENABLE_PUSH), 0u32..=1),
            (Just(Setting::INITIAL_WINDOW_SIZE), 0u32..=MAX_WINDOW),
            (Just(Setting::MAX_FRAME_SIZE), DEFAULT_MAX_FRAME_SIZE..=MAX_MAX_FRAME_SIZE),
            (any::<u16>().prop_filter("unknown", |i| *i > 9), any::<u32>()),
        ].prop_map(|(id, value)| Setting { id, value }), 0..10)
    ) {
        let mut buf = BytesMut::new();
        encode_settings(&mut buf, &list);
        let mut want = Settings::default();
        for s in &list { want.set(*s); }
        let f = parse_frame(&mut buf, DEFAULT_MAX_FRAME_SIZE).unwrap().unwrap();
        prop_assert_eq!(f, Frame::Settings { ack: false, settings: want });
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2000)) {
        let mut buf = BytesMut::from(&data[..]);
        loop {
            let before = buf.len();
            match parse_frame(&mut buf, DEFAULT_MAX_FRAME_SIZE) {
                Ok(Some(_)) => prop_assert!(buf.len() < before),
                Ok(None) => { prop_assert_eq!(buf.len(), before); break; }
                Err(FrameError::FrameTooLarge { .. }) => { prop_assert_eq!(buf.len(), before); break; }
                Err(_) => prop_assert!(buf.len() < before),
            }
        }
    }
}
