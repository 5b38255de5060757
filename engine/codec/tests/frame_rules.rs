//! Table tests: each single-frame MUST of RFC 9113 §4–§6 and the outcome it maps to.

use bytes::{BufMut, Bytes, BytesMut};
use ringedge_codec::frame::*;

fn raw(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> BytesMut {
    let mut b = BytesMut::new();
    let l = (payload.len() as u32).to_be_bytes();
    b.put_slice(&[l[1], l[2], l[3], kind, flags]);
    b.put_u32(stream);
    b.put_slice(payload);
    b
}

fn parse_one(mut b: BytesMut) -> Result<Option<Frame>, FrameError> {
    parse_frame(&mut b, DEFAULT_MAX_FRAME_SIZE)
}

fn setting(id: u16, v: u32) -> Vec<u8> {
    let mut p = id.to_be_bytes().to_vec();
    p.extend_from_slice(&v.to_be_bytes());
    p
}

/// (name, frame bytes, expected code, expected stream for stream errors or None for connection)
#[test]
fn rule_table() {
    use ErrorCode::*;
    let conn = None;
    let cases: Vec<(&str, BytesMut, ErrorCode, Option<u32>)> = vec![
        // §6.1–§6.4, §6.6, §6.10: stream 0 forbidden
        (
            "DATA on 0",
            raw(kind::DATA, 0, 0, b"x"),
            ProtocolError,
            conn,
        ),
        (
            "HEADERS on 0",
            raw(kind::HEADERS, 4, 0, b""),
            ProtocolError,
            conn,
        ),
        (
            "PRIORITY on 0",
            raw(kind::PRIORITY, 0, 0, &[0, 0, 0, 1, 5]),
            ProtocolError,
            conn,
        ),
        (
            "RST on 0",
            raw(kind::RST_STREAM, 0, 0, &[0, 0, 0, 8]),
            ProtocolError,
            conn,
        ),
        (
            "CONTINUATION on 0",
            raw(kind::CONTINUATION, 4, 0, b""),
            ProtocolError,
            conn,
        ),
        (
            "PUSH_PROMISE on 0",
            raw(kind::PUSH_PROMISE, 4, 0, &[0, 0, 0, 2]),
            ProtocolError,
            conn,
        ),
        // §6.5, §6.7, §6.8: stream 0 required
        (
            "SETTINGS on 1",
            raw(kind::SETTINGS, 0, 1, b""),
            ProtocolError,
            conn,
        ),
        (
            "PING on 1",
            raw(kind::PING, 0, 1, &[0; 8]),
            ProtocolError,
            conn,
        ),
        (
            "GOAWAY on 1",
            raw(kind::GOAWAY, 0, 1, &[0; 8]),
            ProtocolError,
            conn,
        ),
        // fixed sizes
        (
            "PING 7",
            raw(kind::PING, 0, 0, &[0; 7]),
            FrameSizeError,
            conn,
        ),
        (
            "PING 9",
            raw(kind::PING, 0, 0, &[0; 9]),
            FrameSizeError,
            conn,
        ),
        (
            "PRIORITY 4",
            raw(kind::PRIORITY, 0, 3, &[0; 4]),
            FrameSizeError,
            Some(3),
        ),
        (
            "PRIORITY 6",
            raw(kind::PRIORITY, 0, 3, &[0; 6]),
            FrameSizeError,
            Some(3),
        ),
        (
            "RST 3",
            raw(kind::RST_STREAM, 0, 1, &[0; 3]),
            FrameSizeError,
            conn,
        ),
        (
            "RST 5",
            raw(kind::RST_STREAM, 0, 1, &[0; 5]),
            FrameSizeError,
            conn,
        ),
        (
            "WINDOW_UPDATE 3",
            raw(kind::WINDOW_UPDATE, 0, 1, &[0, 0, 1]),
            FrameSizeError,
            conn,
        ),
        (
            "WINDOW_UPDATE 5",
            raw(kind::WINDOW_UPDATE, 0, 0, &[0, 0, 0, 1, 0]),
            FrameSizeError,
            conn,
        ),
        (
            "SETTINGS 5",
            raw(kind::SETTINGS, 0, 0, &[0; 5]),
            FrameSizeError,
            conn,
        ),
        (
            "SETTINGS ACK 6",
            raw(kind::SETTINGS, 1, 0, &setting(1, 0)),
            FrameSizeError,
            conn,
        ),
        (
            "GOAWAY 7",
            raw(kind::GOAWAY, 0, 0, &[0; 7]),
            FrameSizeError,
            conn,
        ),
        (
            "PUSH_PROMISE 3",
            raw(kind::PUSH_PROMISE, 4, 1, &[0; 3]),
            FrameSizeError,
            conn,
        ),
        (
            "HEADERS PRIORITY 4",
            raw(kind::HEADERS, 0x24, 1, &[0; 4]),
            FrameSizeError,
            conn,
        ),
        (
            "DATA PADDED 0",
            raw(kind::DATA, flags::PADDED, 1, b""),
            FrameSizeError,
            conn,
        ),
        // padding (§6.1, §6.2, §6.6)
        (
            "DATA pad = len",
            raw(kind::DATA, flags::PADDED, 1, &[3, 1, 2]),
            ProtocolError,
            conn,
        ),
        (
            "DATA pad > len",
            raw(kind::DATA, flags::PADDED, 1, &[200, 1]),
            ProtocolError,
            conn,
        ),
        (
            "HEADERS pad = len",
            raw(kind::HEADERS, 0x0c, 1, &[2, 0]),
            ProtocolError,
            conn,
        ),
        (
            "HEADERS prio pad too long",
            raw(kind::HEADERS, 0x2c, 1, &[1, 0, 0, 0, 0, 16]),
            ProtocolError,
            conn,
        ),
        (
            "PUSH_PROMISE pad too long",
            raw(kind::PUSH_PROMISE, 0x0c, 1, &[1, 0, 0, 0, 2]),
            ProtocolError,
            conn,
        ),
        // SETTINGS ranges (§6.5.2)
        (
            "ENABLE_PUSH 2",
            raw(kind::SETTINGS, 0, 0, &setting(2, 2)),
            ProtocolError,
            conn,
        ),
        (
            "INITIAL_WINDOW_SIZE 2^31",
            raw(kind::SETTINGS, 0, 0, &setting(4, 1 << 31)),
            FlowControlError,
            conn,
        ),
        (
            "MAX_FRAME_SIZE 16383",
            raw(kind::SETTINGS, 0, 0, &setting(5, 16383)),
            ProtocolError,
            conn,
        ),
        (
            "MAX_FRAME_SIZE 2^24",
            raw(kind::SETTINGS, 0, 0, &setting(5, 1 << 24)),
            ProtocolError,
            conn,
        ),
        (
            "CONNECT_PROTOCOL 2",
            raw(kind::SETTINGS, 0, 0, &setting(8, 2)),
            ProtocolError,
            conn,
        ),
        // WINDOW_UPDATE 0 (§6.9)
        (
            "WINDOW_UPDATE 0 on stream",
            raw(kind::WINDOW_UPDATE, 0, 5, &[0; 4]),
            ProtocolError,
            Some(5),
        ),
        (
            "WINDOW_UPDATE 0 on conn",
            raw(kind::WINDOW_UPDATE, 0, 0, &[0; 4]),
            ProtocolError,
            conn,
        ),
        (
            "WINDOW_UPDATE reserved bit only",
            raw(kind::WINDOW_UPDATE, 0, 0, &[0x80, 0, 0, 0]),
            ProtocolError,
            conn,
        ),
        // PRIORITY self-dependency (§5.3.1)
        (
            "PRIORITY self",
            raw(kind::PRIORITY, 0, 7, &[0x80, 0, 0, 7, 9]),
            ProtocolError,
            Some(7),
        ),
    ];
    for (name, bytes, code, stream) in cases {
        let len = bytes.len();
        let mut b = bytes;
        let err = parse_frame(&mut b, DEFAULT_MAX_FRAME_SIZE).expect_err(name);
        assert_eq!(err.code(), code, "{name}: {err}");
        assert_eq!(err.stream_id().map(|s| s.get()), stream, "{name}: {err}");
        assert_eq!(err.is_connection_error(), stream.is_none(), "{name}");
        assert!(b.is_empty(), "{name}: frame of {len} bytes not consumed");
        assert!(!err.to_string().is_empty());
    }
}

#[test]
fn frame_size_against_max_frame_size() {
    // §4.2: a frame larger than SETTINGS_MAX_FRAME_SIZE is a FRAME_SIZE_ERROR, detected from
    // the header alone (before the payload arrives).
    let b = raw(kind::DATA, 0, 1, &[0; 16_385]);
    let mut head = BytesMut::from(&b[..9]);
    let err = parse_frame(&mut head, DEFAULT_MAX_FRAME_SIZE).unwrap_err();
    assert_eq!(
        err,
        FrameError::FrameTooLarge {
            length: 16_385,
            max: 16_384
        }
    );
    assert_eq!(err.code(), ErrorCode::FrameSizeError);
    assert!(err.is_connection_error());
    // Unknown frame types obey it too.
    let err = parse_one(raw(0xfa, 0, 0, &[0; 16_385])).unwrap_err();
    assert_eq!(err.code(), ErrorCode::FrameSizeError);
    // With a larger advertised limit the same frame is fine.
    let mut b2 = b.clone();
    assert!(matches!(
        parse_frame(&mut b2, 20_000),
        Ok(Some(Frame::Data { .. }))
    ));
    // Exactly the limit is fine.
    assert!(parse_one(raw(kind::DATA, 0, 1, &[0; 16_384]))
        .unwrap()
        .is_some());
}

#[test]
fn incomplete_needs_more_and_consumes_nothing() {
    let full = raw(kind::PING, 0, 0, &[1, 2, 3, 4, 5, 6, 7, 8]);
    for cut in 0..full.len() {
        let mut b = BytesMut::from(&full[..cut]);
        assert_eq!(parse_frame(&mut b, DEFAULT_MAX_FRAME_SIZE), Ok(None));
        assert_eq!(b.len(), cut);
    }
    let mut b = full.clone();
    b.put_slice(&[0, 0]); // start of the next frame
    let f = parse_frame(&mut b, DEFAULT_MAX_FRAME_SIZE)
        .unwrap()
        .unwrap();
    assert_eq!(
        f,
        Frame::Ping {
            ack: false,
            data: [1, 2, 3, 4, 5, 6, 7, 8]
        }
    );
    assert_eq!(&b[..], &[0, 0]);
}

#[test]
fn data_padding_stripped_flow_len_kept() {
    let f = parse_one(raw(
        kind::DATA,
        flags::PADDED | flags::END_STREAM,
        3,
        &[2, b'h', b'i', 0, 0],
    ))
    .unwrap()
    .unwrap();
    assert_eq!(
        f,
        Frame::Data {
            stream_id: StreamId::new(3),
            payload: Bytes::from_static(b"hi"),
            end_stream: true,
            flow_len: 5
        }
    );
    // pad = len - 1 is legal: empty data.
    let f = parse_one(raw(kind::DATA, flags::PADDED, 3, &[2, 0, 0]))
        .unwrap()
        .unwrap();
    assert!(matches!(f, Frame::Data { ref payload, flow_len: 3, .. } if payload.is_empty()));
}

#[test]
fn headers_padding_and_priority() {
    let payload = [1u8, 0x80, 0, 0, 3, 15, b'a', b'b', 0];
    let f = parse_one(raw(kind::HEADERS, 0x2d, 5, &payload))
        .unwrap()
        .unwrap();
    assert_eq!(
        f,
        Frame::Headers {
            stream_id: StreamId::new(5),
            block: Bytes::from_static(b"ab"),
            end_stream: true,
            end_headers: true,
            priority: Some(Priority {
                dependency: StreamId::new(3),
                exclusive: true,
                weight: 15
            }),
        }
    );
}

#[test]
fn payload_is_a_view_of_the_receive_buffer() {
    let mut b = raw(kind::DATA, 0, 1, b"hello world");
    let base = b.as_ptr() as usize;
    let Some(Frame::Data { payload, .. }) = parse_frame(&mut b, DEFAULT_MAX_FRAME_SIZE).unwrap()
    else {
        panic!("not data")
    };
    assert_eq!(payload.as_ptr() as usize, base + 9, "payload was copied");
}

#[test]
fn unknown_types_and_flags_ignored_reserved_bit_masked() {
    let f = parse_one(raw(0x42, 0xff, 0x8000_0003, b"whatever"))
        .unwrap()
        .unwrap();
    assert_eq!(
        f,
        Frame::Unknown {
            header: FrameHeader {
                length: 8,
                kind: 0x42,
                flags: 0xff,
                stream_id: StreamId::new(3)
            }
        }
    );
    // Reserved bit on a PING's stream id is ignored (§4.1): it is stream 0.
    let f = parse_one(raw(kind::PING, 0, 0x8000_0000, &[0; 8]))
        .unwrap()
        .unwrap();
    assert!(matches!(f, Frame::Ping { .. }));
    // Unknown SETTINGS identifiers are ignored (§6.5.2).
    let mut p = setting(0x99, 12345);
    p.extend(setting(4, 100));
    p.extend(setting(4, 200));
    let f = parse_one(raw(kind::SETTINGS, 0, 0, &p)).unwrap().unwrap();
    let Frame::Settings {
        ack: false,
        settings,
    } = f
    else {
        panic!()
    };
    assert_eq!(settings.initial_window_size, Some(200), "last value wins");
    assert_eq!(settings.iter().count(), 1);
}

#[test]
fn window_update_reserved_bit_ignored() {
    let f = parse_one(raw(kind::WINDOW_UPDATE, 0, 1, &[0x80, 0, 0, 9]))
        .unwrap()
        .unwrap();
    assert_eq!(
        f,
        Frame::WindowUpdate {
            stream_id: StreamId::new(1),
            increment: 9
        }
    );
}

#[test]
fn goaway_and_rst_codes_pass_unknown_through() {
    let mut p = vec![0, 0, 0, 7, 0, 0, 0x12, 0x34];
    p.extend_from_slice(b"debug");
    let f = parse_one(raw(kind::GOAWAY, 0, 0, &p)).unwrap().unwrap();
    assert_eq!(
        f,
        Frame::GoAway {
            last_stream_id: StreamId::new(7),
            code: ErrorCode::Unknown(0x1234),
            debug: Bytes::from_static(b"debug")
        }
    );
    for v in 0..=0xeu32 {
        assert_eq!(ErrorCode::from(v).to_u32(), v);
    }
    assert_eq!(ErrorCode::from(0xb), ErrorCode::EnhanceYourCalm);
    assert_eq!(ErrorCode::EnhanceYourCalm.to_string(), "ENHANCE_YOUR_CALM");
}

#[test]
fn headers_split_into_continuations() {
    let block: Vec<u8> = (0..40_000u32).map(|i| i as u8).collect();
    let mut b = BytesMut::new();
    encode_headers(
        &mut b,
        StreamId::new(1),
        &block,
        true,
        DEFAULT_MAX_FRAME_SIZE,
    );
    let mut got = Vec::new();
    let mut kinds = Vec::new();
    while let Some(f) = parse_frame(&mut b, DEFAULT_MAX_FRAME_SIZE).unwrap() {
        match f {
            Frame::Headers {
                block,
                end_stream,
                end_headers,
                ..
            } => {
                assert!(end_stream);
                assert!(!end_headers);
                got.extend_from_slice(&block);
                kinds.push((kind::HEADERS, block.len(), end_headers));
            }
            Frame::Continuation {
                block, end_headers, ..
            } => {
                got.extend_from_slice(&block);
                kinds.push((kind::CONTINUATION, block.len(), end_headers));
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(got, block);
    assert_eq!(
        kinds,
        vec![
            (kind::HEADERS, 16_384, false),
            (kind::CONTINUATION, 16_384, false),
            (kind::CONTINUATION, 40_000 - 32_768, true)
        ]
    );
    // A small block is one HEADERS with END_HEADERS.
    encode_headers(
        &mut b,
        StreamId::new(3),
        b"abc",
        false,
        DEFAULT_MAX_FRAME_SIZE,
    );
    assert_eq!(&b[..9], &[0, 0, 3, 1, 4, 0, 0, 0, 3]);
}

#[test]
fn data_header_alone() {
    let mut b = BytesMut::new();
    encode_data_header(&mut b, StreamId::new(0x0102_0304), 0x0a0b0c, true);
    assert_eq!(&b[..], &[0x0a, 0x0b, 0x0c, 0, 1, 1, 2, 3, 4]);
}
