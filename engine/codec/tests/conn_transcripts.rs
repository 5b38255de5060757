//! Transcript tests of the connection state machine: a scripted peer writes frames with a small
//! builder vocabulary, the test reads back the frames and events our `Connection` produced.
//! Each test names the RFC 9113 rule or CONTRACTS.md limit it checks.

use bytes::{Bytes, BytesMut};
use ringedge_codec::conn::*;
use ringedge_codec::frame::*;
use ringedge_codec::hpack::{Decoder, Encoder, FieldRef, HeaderField};
use std::time::{Duration, Instant};

/// The scripted peer and the connection under test.
struct Peer {
    conn: Connection,
    now: Instant,
    enc: Encoder,
    dec: Decoder,
    /// Bytes written by the connection, not yet parsed.
    rx: BytesMut,
}

fn req(path: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    vec![
        (b":method".to_vec(), b"POST".to_vec()),
        (b":scheme".to_vec(), b"https".to_vec()),
        (b":path".to_vec(), path.as_bytes().to_vec()),
        (b":authority".to_vec(), b"example.com".to_vec()),
        (b"content-type".to_vec(), b"application/grpc".to_vec()),
    ]
}

fn f<'a>(n: &'a str, v: &'a str) -> FieldRef<'a> {
    FieldRef {
        name: n.as_bytes(),
        value: v.as_bytes(),
        sensitive: false,
    }
}

fn s(n: u32) -> StreamId {
    StreamId::new(n)
}

impl Peer {
    fn new(role: Role, cfg: ConnConfig) -> Peer {
        let now = Instant::now();
        let mut p = Peer {
            conn: Connection::new(role, cfg, now),
            now,
            enc: Encoder::new(),
            dec: Decoder::new(4096),
            rx: BytesMut::new(),
        };
        p.dec.set_max_header_list_size(1 << 20);
        p
    }

    /// A server-role connection after a client preface and an empty SETTINGS; our output so far
    /// (SETTINGS, WINDOW_UPDATE, SETTINGS ACK) is drained.
    fn server(cfg: ConnConfig) -> Peer {
        let mut p = Peer::new(Role::Server, cfg);
        let mut b = BytesMut::from(&PREFACE[..]);
        encode_settings(&mut b, &[]);
        p.feed(b).unwrap();
        let fr = p.frames();
        assert!(matches!(fr[0], Frame::Settings { ack: false, .. }));
        assert!(fr.contains(&Frame::Settings {
            ack: true,
            settings: Settings::default()
        }));
        p.events();
        p
    }

    /// A client-role connection after the server's empty SETTINGS.
    fn client(cfg: ConnConfig) -> Peer {
        let mut p = Peer::new(Role::Client, cfg);
        let mut pre = [0u8; 24];
        for (i, b) in pre.iter_mut().enumerate() {
            *b = p.take_raw(1)[0];
            assert_eq!(*b, PREFACE[i]);
        }
        let mut b = BytesMut::new();
        encode_settings(&mut b, &[]);
        p.feed(b).unwrap();
        p.frames();
        p.events();
        p
    }

    fn take_raw(&mut self, n: usize) -> Vec<u8> {
        self.pull();
        self.rx.split_to(n).to_vec()
    }

    fn pull(&mut self) {
        while let Some(c) = self.conn.pop_output() {
            self.rx.extend_from_slice(&c);
        }
    }

    fn feed(&mut self, mut b: BytesMut) -> Result<usize, ConnError> {
        let len = b.len();
        let r = self.conn.recv(&mut b, self.now);
        if let Ok(n) = r {
            assert!(n <= len);
            assert_eq!(n + b.len(), len);
        }
        self.conn.check_invariants().unwrap();
        r
    }

    fn send(&mut self, fr: &[Frame]) -> Result<usize, ConnError> {
        let mut b = BytesMut::new();
        for x in fr {
            x.encode(&mut b);
        }
        self.feed(b)
    }

    fn block(&mut self, fields: &[(Vec<u8>, Vec<u8>)]) -> Bytes {
        let mut b = BytesMut::new();
        self.enc.encode(
            fields.iter().map(|(n, v)| FieldRef {
                name: n,
                value: v,
                sensitive: false,
            }),
            &mut b,
        );
        b.freeze()
    }

    fn headers(&mut self, id: u32, fields: &[(Vec<u8>, Vec<u8>)], end_stream: bool) -> Frame {
        Frame::Headers {
            stream_id: s(id),
            block: self.block(fields),
            end_stream,
            end_headers: true,
            priority: None,
        }
    }

    fn open(&mut self, id: u32, end_stream: bool) {
        let h = self.headers(id, &req("/svc/M"), end_stream);
        self.send(&[h]).unwrap();
    }

    /// Frames the connection wrote since last call (header blocks decoded into `decoded`).
    fn frames(&mut self) -> Vec<Frame> {
        self.pull();
        let mut out = Vec::new();
        while let Some(fr) = parse_frame(&mut self.rx, MAX_MAX_FRAME_SIZE).unwrap() {
            out.push(fr);
        }
        out
    }

    fn decode(&mut self, block: &Bytes) -> Vec<HeaderField> {
        let mut v = Vec::new();
        self.dec.decode(block, &mut |x| v.push(x)).unwrap();
        v
    }

    fn events(&mut self) -> Vec<Event> {
        self.conn.drain_events().collect()
    }

    fn goaway_code(&mut self) -> Option<ErrorCode> {
        self.frames().into_iter().find_map(|x| match x {
            Frame::GoAway { code, .. } => Some(code),
            _ => None,
        })
    }

    fn rst(&mut self) -> Vec<(u32, ErrorCode)> {
        self.frames()
            .into_iter()
            .filter_map(|x| match x {
                Frame::RstStream { stream_id, code } => Some((stream_id.get(), code)),
                _ => None,
            })
            .collect()
    }
}

fn data(id: u32, len: usize, end: bool) -> Frame {
    Frame::Data {
        stream_id: s(id),
        payload: Bytes::from(vec![7u8; len]),
        end_stream: end,
        flow_len: len as u32,
    }
}

fn expect_conn_error(p: &mut Peer, r: Result<usize, ConnError>, code: ErrorCode) {
    let e = r.expect_err("expected a connection error");
    assert_eq!(e.code(), code, "{e}");
    assert_eq!(p.goaway_code(), Some(code), "GOAWAY code for {e}");
    assert!(p.conn.is_closed());
    assert!(p
        .events()
        .iter()
        .any(|e| matches!(e, Event::Closed { error: Some(_) })));
}

// ----- preface and SETTINGS (§3.4, §6.5) -----------------------------------------------------

#[test]
fn server_preface_settings_and_ack() {
    let cfg = ConnConfig::default();
    let mut p = Peer::new(Role::Server, cfg.clone());
    let fr = p.frames();
    let Frame::Settings {
        ack: false,
        settings,
    } = &fr[0]
    else {
        panic!("{fr:?}")
    };
    assert_eq!(settings.max_concurrent_streams, Some(256));
    assert_eq!(settings.initial_window_size, Some(262_144));
    assert_eq!(settings.max_frame_size, Some(16_384));
    assert_eq!(settings.max_header_list_size, Some(65_536));
    assert_eq!(
        settings.enable_push, None,
        "ENABLE_PUSH is only sent by clients"
    );
    assert_eq!(
        fr[1],
        Frame::WindowUpdate {
            stream_id: s(0),
            increment: 1_048_576 - 65_535
        }
    );
    // The preface may arrive byte by byte.
    let mut all = BytesMut::from(&PREFACE[..]);
    encode_settings(
        &mut all,
        &[Setting {
            id: Setting::MAX_FRAME_SIZE,
            value: 20_000,
        }],
    );
    for b in all.iter() {
        p.feed(BytesMut::from(&[*b][..])).ok();
    }
    // A 1-byte feed never completes a frame: feed it whole instead.
    let mut p = Peer::new(Role::Server, cfg);
    p.frames();
    let mut buf = all.clone();
    let n = p.conn.recv(&mut buf, p.now).unwrap();
    assert_eq!(n, all.len());
    assert_eq!(
        p.frames(),
        vec![Frame::Settings {
            ack: true,
            settings: Settings::default()
        }]
    );
    assert!(
        matches!(&p.events()[..], [Event::PeerSettings { settings }] if settings.max_frame_size == Some(20_000))
    );
    assert_eq!(p.conn.peer_max_frame_size(), 20_000);
    p.send(&[Frame::Settings {
        ack: true,
        settings: Settings::default(),
    }])
    .unwrap();
    assert_eq!(p.events(), vec![Event::SettingsAcked]);
    assert_eq!(p.conn.next_deadline(), None);
}

#[test]
fn bad_preface_is_protocol_error() {
    let mut p = Peer::new(Role::Server, ConnConfig::default());
    p.frames();
    let r = p.feed(BytesMut::from(&b"GET / HTTP/1.1\r\n"[..]));
    expect_conn_error(&mut p, r, ErrorCode::ProtocolError);
}

#[test]
fn first_frame_must_be_settings() {
    let mut p = Peer::new(Role::Server, ConnConfig::default());
    p.frames();
    let mut b = BytesMut::from(&PREFACE[..]);
    encode_ping(&mut b, false, [0; 8]);
    let r = p.feed(b);
    expect_conn_error(&mut p, r, ErrorCode::ProtocolError);
}

#[test]
fn settings_ack_timeout() {
    let mut p = Peer::server(ConnConfig {
        settings_ack_timeout_ms: 5000,
        ..Default::default()
    });
    let d = p.conn.next_deadline().unwrap();
    assert_eq!(d, p.now + Duration::from_millis(5000));
    p.conn.poll_timeout(p.now + Duration::from_millis(4999));
    assert!(!p.conn.is_closed());
    p.conn.poll_timeout(d);
    assert_eq!(p.goaway_code(), Some(ErrorCode::SettingsTimeout));
    assert!(matches!(
        p.events()[..],
        [Event::Closed {
            error: Some(ConnError::SettingsTimeout)
        }]
    ));
}

#[test]
fn client_preface_enable_push_zero() {
    let mut p = Peer::new(Role::Client, ConnConfig::default());
    assert_eq!(p.take_raw(24), PREFACE.to_vec());
    let fr = p.frames();
    let Frame::Settings {
        ack: false,
        settings,
    } = &fr[0]
    else {
        panic!()
    };
    assert_eq!(settings.enable_push, Some(0));
}

#[test]
fn client_rejects_enable_push_one_and_push_promise() {
    let mut p = Peer::client(ConnConfig::default());
    let st = Settings {
        enable_push: Some(1),
        ..Default::default()
    };
    let r = p.send(&[Frame::Settings {
        ack: false,
        settings: st,
    }]);
    expect_conn_error(&mut p, r, ErrorCode::ProtocolError);

    let mut p = Peer::client(ConnConfig::default());
    let id = p
        .conn
        .open_stream(&[f(":method", "GET"), f(":path", "/")], true)
        .unwrap();
    let r = p.send(&[Frame::PushPromise {
        stream_id: id,
        promised_id: s(2),
        block: Bytes::new(),
        end_headers: true,
    }]);
    expect_conn_error(&mut p, r, ErrorCode::ProtocolError);
}

#[test]
fn server_rejects_push_promise() {
    let mut p = Peer::server(ConnConfig::default());
    p.open(1, false);
    let r = p.send(&[Frame::PushPromise {
        stream_id: s(1),
        promised_id: s(2),
        block: Bytes::new(),
        end_headers: true,
    }]);
    expect_conn_error(&mut p, r, ErrorCode::ProtocolError);
}

// ----- a whole exchange ----------------------------------------------------------------------

#[test]
fn request_response_with_trailers() {
    let mut p = Peer::server(ConnConfig::default());
    p.open(1, false);
    let ev = p.events();
    let [Event::Headers {
        stream,
        kind: HeadersKind::Initial,
        fields,
        end_stream: false,
    }] = &ev[..]
    else {
        panic!("{ev:?}")
    };
    assert_eq!(*stream, s(1));
    assert_eq!(&fields[2].value[..], b"/svc/M");
    p.send(&[data(1, 10, false)]).unwrap();
    let t = p.headers(1, &[(b"grpc-trace".to_vec(), b"x".to_vec())], true);
    p.send(&[t]).unwrap();
    let ev = p.events();
    assert!(
        matches!(&ev[0], Event::Data { data, end_stream: false, flow_len: 10, .. } if data.len() == 10)
    );
    assert!(matches!(
        &ev[1],
        Event::Headers {
            kind: HeadersKind::Trailers,
            end_stream: true,
            ..
        }
    ));

    p.conn
        .send_headers(
            s(1),
            &[f(":status", "200"), f("content-type", "application/grpc")],
            false,
        )
        .unwrap();
    assert_eq!(
        p.conn
            .send_data(s(1), Bytes::from_static(b"\0\0\0\0\x01a"), false),
        Ok(6)
    );
    p.conn
        .send_trailers(s(1), &[f("grpc-status", "0")])
        .unwrap();
    let fr = p.frames();
    assert_eq!(fr.len(), 3);
    let Frame::Headers {
        block,
        end_stream: false,
        end_headers: true,
        ..
    } = &fr[0]
    else {
        panic!()
    };
    let h = p.decode(block);
    assert_eq!(&h[0].value[..], b"200");
    assert!(
        matches!(&fr[1], Frame::Data { payload, end_stream: false, .. } if &payload[..] == b"\0\0\0\0\x01a")
    );
    let Frame::Headers {
        block,
        end_stream: true,
        ..
    } = &fr[2]
    else {
        panic!()
    };
    assert_eq!(&p.decode(block)[0].name[..], b"grpc-status");
    assert_eq!(p.conn.active_streams(), 0, "both sides ended: closed");
    assert_eq!(
        p.conn.send_data(s(1), Bytes::new(), true),
        Err(SendError::UnknownStream(s(1)))
    );
}

#[test]
fn trailers_without_end_stream_is_stream_error() {
    let mut p = Peer::server(ConnConfig::default());
    p.open(1, false);
    let t = p.headers(1, &[(b"x".to_vec(), b"y".to_vec())], false);
    p.send(&[t]).unwrap();
    assert_eq!(p.rst(), vec![(1, ErrorCode::ProtocolError)]);
    assert!(!p.conn.is_closed());
}

// ----- stream identifiers and states (§5.1, §5.1.1) ------------------------------------------

#[test]
fn stream_id_rules() {
    // Even id from a client.
    let mut p = Peer::server(ConnConfig::default());
    let h = p.headers(2, &req("/"), true);
    let r = p.send(&[h]);
    expect_conn_error(&mut p, r, ErrorCode::ProtocolError);
    // Decreasing id: the lower stream is closed (implicitly).
    let mut p = Peer::server(ConnConfig::default());
    p.open(5, false);
    let h = p.headers(3, &req("/"), true);
    let r = p.send(&[h]);
    expect_conn_error(&mut p, r, ErrorCode::StreamClosed);
    // DATA, WINDOW_UPDATE, RST_STREAM on idle streams.
    for fr in [
        data(1, 1, false),
        Frame::WindowUpdate {
            stream_id: s(1),
            increment: 1,
        },
        Frame::RstStream {
            stream_id: s(1),
            code: ErrorCode::Cancel,
        },
    ] {
        let mut p = Peer::server(ConnConfig::default());
        let r = p.send(&[fr]);
        expect_conn_error(&mut p, r, ErrorCode::ProtocolError);
    }
    // PRIORITY on an idle stream is fine (§5.1).
    let mut p = Peer::server(ConnConfig::default());
    p.send(&[Frame::Priority {
        stream_id: s(9),
        priority: Priority {
            dependency: s(0),
            exclusive: false,
            weight: 1,
        },
    }])
    .unwrap();
    assert!(p.frames().is_empty());
}

#[test]
fn half_closed_remote_rejects_data() {
    let mut p = Peer::server(ConnConfig::default());
    p.open(1, true);
    p.send(&[data(1, 3, false)]).unwrap();
    assert_eq!(p.rst(), vec![(1, ErrorCode::StreamClosed)]);
    // WINDOW_UPDATE in half-closed (remote) is fine.
    p.open(3, true);
    p.send(&[Frame::WindowUpdate {
        stream_id: s(3),
        increment: 5,
    }])
    .unwrap();
    assert!(p.rst().is_empty());
}

#[test]
fn closed_after_end_stream_tolerates_window_update_and_rst_but_not_data() {
    let mut p = Peer::server(ConnConfig::default());
    p.open(1, true);
    p.conn
        .send_headers(s(1), &[f(":status", "200")], true)
        .unwrap();
    p.frames();
    p.send(&[
        Frame::WindowUpdate {
            stream_id: s(1),
            increment: 100,
        },
        Frame::RstStream {
            stream_id: s(1),
            code: ErrorCode::NoError,
        },
    ])
    .unwrap();
    assert!(p.frames().is_empty());
    let r = p.send(&[data(1, 1, false)]);
    expect_conn_error(&mut p, r, ErrorCode::StreamClosed);
}

#[test]
fn frames_after_our_reset_are_ignored_and_hpack_stays_in_sync() {
    let mut p = Peer::server(ConnConfig::default());
    p.open(1, false);
    p.conn.send_reset(s(1), ErrorCode::Cancel).unwrap();
    assert_eq!(p.rst(), vec![(1, ErrorCode::Cancel)]);
    p.events();
    // In flight: DATA, HEADERS (adding a dynamic-table entry), WINDOW_UPDATE.
    let t = p.headers(1, &[(b"x-custom".to_vec(), b"value-1".to_vec())], true);
    p.send(&[
        data(1, 100, false),
        t,
        Frame::WindowUpdate {
            stream_id: s(1),
            increment: 1,
        },
    ])
    .unwrap();
    assert!(p.frames().is_empty());
    assert!(p.events().is_empty());
    // The next request refers to the dynamic-table entry added by the ignored block.
    let mut fields = req("/next");
    fields.push((b"x-custom".to_vec(), b"value-1".to_vec()));
    let h = p.headers(3, &fields, true);
    p.send(&[h]).unwrap();
    let ev = p.events();
    let [Event::Headers { fields, .. }] = &ev[..] else {
        panic!("{ev:?}")
    };
    assert_eq!(&fields[5].value[..], b"value-1");
    // The ignored DATA was still counted and released at the connection level.
    p.conn.check_invariants().unwrap();
}

#[test]
fn frames_after_peer_reset_are_stream_closed() {
    let mut p = Peer::server(ConnConfig::default());
    p.open(1, false);
    p.events();
    p.send(&[Frame::RstStream {
        stream_id: s(1),
        code: ErrorCode::Cancel,
    }])
    .unwrap();
    assert_eq!(
        p.events(),
        vec![Event::PeerReset {
            stream: s(1),
            code: ErrorCode::Cancel
        }]
    );
    p.send(&[data(1, 1, false)]).unwrap();
    assert_eq!(p.rst(), vec![(1, ErrorCode::StreamClosed)]);
}

#[test]
fn priority_self_dependency_in_headers() {
    let mut p = Peer::server(ConnConfig::default());
    let block = p.block(&req("/a"));
    p.send(&[Frame::Headers {
        stream_id: s(1),
        block,
        end_stream: true,
        end_headers: true,
        priority: Some(Priority {
            dependency: s(1),
            exclusive: false,
            weight: 0,
        }),
    }])
    .unwrap();
    assert_eq!(p.rst(), vec![(1, ErrorCode::ProtocolError)]);
    // HPACK still in sync: the next request decodes.
    p.open(3, true);
    assert!(p
        .events()
        .iter()
        .any(|e| matches!(e, Event::Headers { stream, .. } if *stream == s(3))));
}

// ----- CONTINUATION (§6.10) ------------------------------------------------------------------

#[test]
fn continuation_assembly() {
    let mut p = Peer::server(ConnConfig::default());
    let mut fields = req("/big");
    fields.push((b"x-big".to_vec(), vec![b'a'; 40_000]));
    let block = p.block(&fields);
    let mut b = BytesMut::new();
    encode_headers(&mut b, s(1), &block, true, DEFAULT_MAX_FRAME_SIZE);
    p.feed(b).unwrap();
    let ev = p.events();
    let [Event::Headers {
        fields,
        end_stream: true,
        ..
    }] = &ev[..]
    else {
        panic!("{ev:?}")
    };
    assert_eq!(fields[5].value.len(), 40_000);
}

#[test]
fn continuation_interleaving_is_protocol_error() {
    for (name, second) in [
        (
            "ping",
            Frame::Ping {
                ack: false,
                data: [0; 8],
            },
        ),
        (
            "other stream",
            Frame::Continuation {
                stream_id: s(3),
                block: Bytes::new(),
                end_headers: true,
            },
        ),
        ("data", data(1, 1, false)),
        (
            "unknown",
            Frame::Unknown {
                header: FrameHeader {
                    length: 0,
                    kind: 0x77,
                    flags: 0,
                    stream_id: s(0),
                },
            },
        ),
    ] {
        let mut p = Peer::server(ConnConfig::default());
        let block = p.block(&req("/"));
        let r = p.send(&[
            Frame::Headers {
                stream_id: s(1),
                block,
                end_stream: true,
                end_headers: false,
                priority: None,
            },
            second,
        ]);
        let e = r.expect_err(name);
        assert_eq!(e.code(), ErrorCode::ProtocolError, "{name}");
    }
    let mut p = Peer::server(ConnConfig::default());
    let r = p.send(&[Frame::Continuation {
        stream_id: s(1),
        block: Bytes::new(),
        end_headers: true,
    }]);
    expect_conn_error(&mut p, r, ErrorCode::ProtocolError);
}

// ----- abuse limits (CONTRACTS.md) -----------------------------------------------------------

fn expect_limit(p: &mut Peer, r: Result<usize, ConnError>, limit: Limit, code: ErrorCode) {
    let e = r.expect_err("expected the limit to trip");
    assert_eq!(e, ConnError::Limit(limit));
    assert_eq!(p.goaway_code(), Some(code));
    let ev = p.events();
    assert!(
        ev.contains(&Event::LimitExceeded {
            limit,
            stream: None
        }),
        "{ev:?}"
    );
}

#[test]
fn limit_continuation_frames() {
    let mut p = Peer::server(ConnConfig {
        max_continuation_frames: 3,
        ..Default::default()
    });
    let block = p.block(&req("/"));
    let mut fr = vec![Frame::Headers {
        stream_id: s(1),
        block,
        end_stream: true,
        end_headers: false,
        priority: None,
    }];
    for _ in 0..3 {
        fr.push(Frame::Continuation {
            stream_id: s(1),
            block: Bytes::from_static(b""),
            end_headers: false,
        });
    }
    // 3 continuation frames are allowed (but empty-frame flood is 100): no error yet.
    p.send(&fr).unwrap();
    let r = p.send(&[Frame::Continuation {
        stream_id: s(1),
        block: Bytes::new(),
        end_headers: true,
    }]);
    expect_limit(
        &mut p,
        r,
        Limit::ContinuationFrames,
        ErrorCode::EnhanceYourCalm,
    );
}

#[test]
fn limit_header_block_bytes() {
    let mut p = Peer::server(ConnConfig {
        max_header_block_bytes: 1000,
        ..Default::default()
    });
    let r = p.send(&[
        Frame::Headers {
            stream_id: s(1),
            block: Bytes::from(vec![0x40; 600]),
            end_stream: true,
            end_headers: false,
            priority: None,
        },
        Frame::Continuation {
            stream_id: s(1),
            block: Bytes::from(vec![0x40; 600]),
            end_headers: true,
        },
    ]);
    expect_limit(
        &mut p,
        r,
        Limit::HeaderBlockBytes,
        ErrorCode::EnhanceYourCalm,
    );
}

#[test]
fn limit_header_list_size_is_a_431_stream_error() {
    let mut p = Peer::server(ConnConfig {
        max_header_list_size: 1000,
        ..Default::default()
    });
    let mut fields = req("/");
    fields.push((b"x-big".to_vec(), vec![b'a'; 2000]));
    let h = p.headers(1, &fields, false);
    p.send(&[h]).unwrap();
    let fr = p.frames();
    let Frame::Headers {
        block,
        end_stream: true,
        ..
    } = &fr[0]
    else {
        panic!("{fr:?}")
    };
    assert_eq!(&p.decode(block)[0].value[..], b"431");
    assert_eq!(
        fr[1],
        Frame::RstStream {
            stream_id: s(1),
            code: ErrorCode::NoError
        }
    );
    let ev = p.events();
    assert!(ev.contains(&Event::LimitExceeded {
        limit: Limit::HeaderListSize,
        stream: Some(s(1))
    }));
    assert!(!p.conn.is_closed());
    // The big field went into the dynamic table: the next request (indexed ref) still decodes.
    let mut f2 = req("/ok");
    f2.push((b"x-big".to_vec(), vec![b'a'; 10]));
    let h = p.headers(3, &f2, true);
    p.send(&[h]).unwrap();
    assert!(p
        .events()
        .iter()
        .any(|e| matches!(e, Event::Headers { stream, .. } if *stream == s(3))));
}

#[test]
fn limit_rapid_reset() {
    let mut p = Peer::server(ConnConfig {
        max_resets_per_window: 10,
        ..Default::default()
    });
    let mut r = Ok(0);
    for i in 0..11u32 {
        let id = 1 + 2 * i;
        let h = p.headers(id, &req("/"), false);
        r = p.send(&[
            h,
            Frame::RstStream {
                stream_id: s(id),
                code: ErrorCode::Cancel,
            },
        ]);
        if i < 10 {
            assert!(r.is_ok(), "reset {i}");
        }
    }
    expect_limit(&mut p, r, Limit::ResetFlood, ErrorCode::EnhanceYourCalm);
}

#[test]
fn flood_window_resets_counters() {
    let mut p = Peer::server(ConnConfig {
        max_pings_per_window: 5,
        flood_window_ms: 1000,
        ..Default::default()
    });
    for round in 0..4 {
        for _ in 0..5 {
            p.send(&[Frame::Ping {
                ack: false,
                data: [round; 8],
            }])
            .unwrap();
        }
        p.now += Duration::from_millis(1000);
    }
    assert_eq!(
        p.frames()
            .iter()
            .filter(|f| matches!(f, Frame::Ping { ack: true, .. }))
            .count(),
        20
    );
}

#[test]
fn limit_settings_ping_empty_floods() {
    let mut p = Peer::server(ConnConfig {
        max_settings_per_window: 5,
        ..Default::default()
    });
    let mut r = Ok(0);
    // The handshake's SETTINGS counts as the first in this window.
    for _ in 0..4 {
        r = p.send(&[Frame::Settings {
            ack: false,
            settings: Settings::default(),
        }]);
    }
    assert!(r.is_ok());
    let r = p.send(&[Frame::Settings {
        ack: false,
        settings: Settings::default(),
    }]);
    expect_limit(&mut p, r, Limit::SettingsFlood, ErrorCode::EnhanceYourCalm);

    let mut p = Peer::server(ConnConfig {
        max_pings_per_window: 5,
        ..Default::default()
    });
    let pings: Vec<Frame> = (0..6)
        .map(|i| Frame::Ping {
            ack: false,
            data: [i; 8],
        })
        .collect();
    let r = p.send(&pings);
    expect_limit(&mut p, r, Limit::PingFlood, ErrorCode::EnhanceYourCalm);

    let mut p = Peer::server(ConnConfig {
        max_empty_frames_per_window: 5,
        ..Default::default()
    });
    p.open(1, false);
    let empties: Vec<Frame> = (0..6).map(|_| data(1, 0, false)).collect();
    let r = p.send(&empties);
    expect_limit(
        &mut p,
        r,
        Limit::EmptyFrameFlood,
        ErrorCode::EnhanceYourCalm,
    );
}

#[test]
fn limit_concurrent_and_refused_streams() {
    let mut p = Peer::server(ConnConfig {
        max_concurrent_streams: 2,
        max_refused_streams: 3,
        ..Default::default()
    });
    p.open(1, false);
    p.open(3, false);
    p.events();
    for (i, id) in [5u32, 7, 9].iter().enumerate() {
        p.open(*id, false);
        assert_eq!(
            p.rst(),
            vec![(*id, ErrorCode::RefusedStream)],
            "refusal {i}"
        );
        let ev = p.events();
        assert!(ev.contains(&Event::LimitExceeded {
            limit: Limit::ConcurrentStreams,
            stream: Some(s(*id))
        }));
    }
    // A stream that finishes frees a slot.
    p.send(&[Frame::RstStream {
        stream_id: s(1),
        code: ErrorCode::Cancel,
    }])
    .unwrap();
    p.open(11, false);
    assert!(p.rst().is_empty());
    // The fourth refusal trips max_refused_streams.
    let h = p.headers(13, &req("/"), false);
    let r = p.send(&[h]);
    expect_limit(&mut p, r, Limit::RefusedStreams, ErrorCode::EnhanceYourCalm);
}

#[test]
fn limit_pending_output() {
    let mut p = Peer::server(ConnConfig {
        max_pending_output: 200,
        ..Default::default()
    });
    // The peer never reads our output: PING ACKs pile up.
    let mut r = Ok(0);
    for i in 0..30 {
        r = p.feed({
            let mut b = BytesMut::new();
            encode_ping(&mut b, false, [i; 8]);
            b
        });
        if r.is_err() {
            break;
        }
    }
    let e = r.unwrap_err();
    assert_eq!(e, ConnError::Limit(Limit::PendingOutput));
    assert_eq!(p.goaway_code(), Some(ErrorCode::EnhanceYourCalm));
}

// ----- flow control (§6.9) -------------------------------------------------------------------

#[test]
fn receive_window_needs_explicit_release() {
    let cfg = ConnConfig {
        initial_stream_window: 65_535,
        connection_window: 1_000_000,
        ..Default::default()
    };
    let mut p = Peer::server(cfg);
    p.open(1, false);
    let five: Vec<Frame> = (0..5).map(|_| data(1, 8000, false)).collect();
    p.send(&five).unwrap();
    assert!(p.frames().is_empty(), "no automatic refill");
    p.conn.release_capacity(s(1), 30_000);
    assert!(p.frames().is_empty(), "below half a window owed");
    p.conn.release_capacity(s(1), 10_000);
    assert_eq!(
        p.frames(),
        vec![Frame::WindowUpdate {
            stream_id: s(1),
            increment: 40_000
        }]
    );
    // Over-release is clamped.
    p.conn.release_capacity(s(1), 100_000);
    p.conn.check_invariants().unwrap();
    // Exactly the window is fine; one byte more is a stream error FLOW_CONTROL_ERROR.
    p.send(&[
        data(1, 16_384, false),
        data(1, 16_384, false),
        data(1, 16_384, false),
        data(1, 16_383, false),
    ])
    .unwrap();
    assert!(p.rst().is_empty());
    p.send(&[data(1, 1, false)]).unwrap();
    assert_eq!(p.rst(), vec![(1, ErrorCode::FlowControlError)]);
}

#[test]
fn small_initial_window_is_raised_to_the_default() {
    let p = Peer::server(ConnConfig {
        initial_stream_window: 1000,
        ..Default::default()
    });
    assert_eq!(p.conn.config().initial_stream_window, 65_535);
}

#[test]
fn connection_window_exceeded_is_connection_error() {
    let cfg = ConnConfig {
        initial_stream_window: 100_000,
        connection_window: 65_535,
        ..Default::default()
    };
    let mut p = Peer::server(cfg);
    p.open(1, false);
    p.open(3, false);
    p.send(&[
        data(1, 16_000, false),
        data(1, 16_000, false),
        data(3, 16_000, false),
        data(3, 16_000, false),
    ])
    .unwrap();
    let r = p.send(&[data(3, 2000, false)]);
    expect_conn_error(&mut p, r, ErrorCode::FlowControlError);
}

#[test]
fn padding_is_released_automatically() {
    let cfg = ConnConfig {
        initial_stream_window: 65_535,
        connection_window: 65_535,
        ..Default::default()
    };
    let mut p = Peer::server(cfg);
    p.open(1, false);
    let mut b = BytesMut::new();
    for _ in 0..3 {
        encode_data_padded(&mut b, s(1), &[1; 10], 200, false);
    }
    p.feed(b).unwrap();
    assert!(
        p.frames().is_empty(),
        "603 padding bytes owed: below the threshold"
    );
    let mut b = BytesMut::new();
    for _ in 0..160 {
        encode_data_padded(&mut b, s(1), &[1; 10], 200, false);
    }
    p.feed(b).unwrap();
    // 163 × 201 = 32763 padding bytes < 32767 owed: still nothing; one more frame crosses it.
    assert!(p.frames().is_empty());
    let mut b = BytesMut::new();
    encode_data_padded(&mut b, s(1), &[1; 10], 200, false);
    p.feed(b).unwrap();
    // Only padding is credited back (the 1640 data bytes are still held by the caller).
    assert_eq!(
        p.frames(),
        vec![
            Frame::WindowUpdate {
                stream_id: s(0),
                increment: 164 * 201
            },
            Frame::WindowUpdate {
                stream_id: s(1),
                increment: 164 * 201
            }
        ]
    );
    let ev = p.events();
    let datas: Vec<&Event> = ev
        .iter()
        .filter(|e| matches!(e, Event::Data { .. }))
        .collect();
    assert_eq!(datas.len(), 164);
    assert!(datas
        .iter()
        .all(|e| matches!(e, Event::Data { data, flow_len: 211, .. } if data.len() == 10)));
}

#[test]
fn send_data_respects_windows_and_reports_capacity() {
    let mut p = Peer::server(ConnConfig::default());
    p.open(1, true);
    // Before our HEADERS send_data refuses DATA, and send_capacity says so.
    assert_eq!(p.conn.send_capacity(s(1)), None);
    assert!(p
        .conn
        .send_data(s(1), Bytes::from_static(b"x"), false)
        .is_err());
    p.conn
        .send_headers(s(1), &[f(":status", "200")], false)
        .unwrap();
    p.frames();
    p.events();
    assert_eq!(p.conn.send_capacity(s(1)), Some(65_535));
    assert_eq!(p.conn.send_capacity(s(3)), None, "unknown stream");
    let big = Bytes::from(vec![1u8; 100_000]);
    let n = p.conn.send_data(s(1), big.clone(), true).unwrap();
    assert_eq!(n, 65_535, "peer's default windows");
    let fr = p.frames();
    let sizes: Vec<usize> = fr
        .iter()
        .map(|x| match x {
            Frame::Data {
                payload,
                end_stream: false,
                ..
            } => payload.len(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(sizes, vec![16_384, 16_384, 16_384, 16_383]);
    assert_eq!(p.conn.send_data(s(1), big.slice(n..), true), Ok(0));
    assert!(p.events().is_empty());
    // Stream credit alone is not enough; connection credit too.
    p.send(&[Frame::WindowUpdate {
        stream_id: s(1),
        increment: 50_000,
    }])
    .unwrap();
    assert!(p.events().is_empty());
    p.send(&[Frame::WindowUpdate {
        stream_id: s(0),
        increment: 40_000,
    }])
    .unwrap();
    assert_eq!(
        p.events(),
        vec![Event::SendCapacity {
            stream: s(1),
            available: 40_000
        }]
    );
    assert_eq!(p.conn.send_capacity(s(1)), Some(40_000));
    let rest = big.slice(n..);
    assert_eq!(p.conn.send_data(s(1), rest.clone(), true), Ok(34_465));
    let fr = p.frames();
    assert!(matches!(
        fr.last(),
        Some(Frame::Data {
            end_stream: true,
            ..
        })
    ));
    assert_eq!(p.conn.active_streams(), 0);
}

#[test]
fn large_payloads_are_views_small_are_coalesced() {
    let mut p = Peer::server(ConnConfig::default());
    p.open(1, true);
    p.conn
        .send_headers(s(1), &[f(":status", "200")], false)
        .unwrap();
    let big = Bytes::from(vec![9u8; 5000]);
    p.conn.send_data(s(1), big.clone(), false).unwrap();
    p.conn
        .send_data(s(1), Bytes::from_static(b"tiny"), false)
        .unwrap();
    let chunks: Vec<Bytes> = p.conn.output_chunks().cloned().collect();
    assert!(
        chunks
            .iter()
            .any(|c| c.as_ptr() == big.as_ptr() && c.len() == 5000),
        "payload copied"
    );
    assert_eq!(
        chunks.len(),
        3,
        "headers+frame header | payload view | frame header+tiny"
    );
    let total = p.conn.output_len();
    assert_eq!(total, chunks.iter().map(|c| c.len()).sum::<usize>());
    assert_eq!(p.conn.advance_output(7), 7);
    assert_eq!(p.conn.output_len(), total - 7);
}

#[test]
fn initial_window_size_changes_apply_to_open_streams() {
    let mut p = Peer::server(ConnConfig::default());
    p.open(1, true);
    p.conn
        .send_headers(s(1), &[f(":status", "200")], false)
        .unwrap();
    p.send(&[Frame::WindowUpdate {
        stream_id: s(0),
        increment: 1_000_000,
    }])
    .unwrap();
    assert_eq!(
        p.conn
            .send_data(s(1), Bytes::from(vec![0u8; 60_000]), false),
        Ok(60_000)
    );
    // Shrink: window goes negative (§6.9.2), nothing may be sent.
    let mut st = Settings {
        initial_window_size: Some(10_000),
        ..Default::default()
    };
    p.send(&[Frame::Settings {
        ack: false,
        settings: st,
    }])
    .unwrap();
    assert_eq!(p.conn.send_capacity(s(1)), Some(0));
    assert_eq!(
        p.conn.send_data(s(1), Bytes::from_static(b"x"), false),
        Ok(0)
    );
    // Grow: 65_535 - 60_000 = 5_535 available, reported as capacity.
    st.initial_window_size = Some(65_535);
    p.send(&[Frame::Settings {
        ack: false,
        settings: st,
    }])
    .unwrap();
    assert!(p.events().contains(&Event::SendCapacity {
        stream: s(1),
        available: 5_535
    }));
    // Overflow of a stream window through SETTINGS is a connection FLOW_CONTROL_ERROR.
    p.send(&[Frame::WindowUpdate {
        stream_id: s(1),
        increment: MAX_WINDOW - 5_535,
    }])
    .unwrap();
    st.initial_window_size = Some(70_000);
    let r = p.send(&[Frame::Settings {
        ack: false,
        settings: st,
    }]);
    expect_conn_error(&mut p, r, ErrorCode::FlowControlError);
}

#[test]
fn window_update_overflow() {
    let mut p = Peer::server(ConnConfig::default());
    p.open(1, true);
    p.send(&[Frame::WindowUpdate {
        stream_id: s(1),
        increment: MAX_WINDOW,
    }])
    .unwrap();
    assert_eq!(p.rst(), vec![(1, ErrorCode::FlowControlError)]);
    let r = p.send(&[Frame::WindowUpdate {
        stream_id: s(0),
        increment: MAX_WINDOW,
    }]);
    expect_conn_error(&mut p, r, ErrorCode::FlowControlError);
}

#[test]
fn window_update_zero() {
    let mut p = Peer::server(ConnConfig::default());
    p.open(1, false);
    let mut b = BytesMut::new();
    encode_header(&mut b, 4, kind::WINDOW_UPDATE, 0, s(1));
    b.extend_from_slice(&[0, 0, 0, 0]);
    p.feed(b).unwrap();
    assert_eq!(p.rst(), vec![(1, ErrorCode::ProtocolError)]);
    let mut b = BytesMut::new();
    encode_header(&mut b, 4, kind::WINDOW_UPDATE, 0, s(0));
    b.extend_from_slice(&[0, 0, 0, 0]);
    let r = p.feed(b);
    expect_conn_error(&mut p, r, ErrorCode::ProtocolError);
}

#[test]
fn peer_max_frame_size_and_header_table_size_apply() {
    let mut p = Peer::server(ConnConfig::default());
    let st = Settings {
        max_frame_size: Some(40_000),
        header_table_size: Some(0),
        ..Default::default()
    };
    p.send(&[
        Frame::Settings {
            ack: false,
            settings: st,
        },
        Frame::WindowUpdate {
            stream_id: s(0),
            increment: 100_000,
        },
    ])
    .unwrap();
    p.dec.set_max_table_size(0);
    p.open(1, true);
    p.send(&[Frame::WindowUpdate {
        stream_id: s(1),
        increment: 100_000,
    }])
    .unwrap();
    p.frames();
    p.conn
        .send_headers(s(1), &[f(":status", "200"), f("x-a", "b")], false)
        .unwrap();
    p.conn
        .send_data(s(1), Bytes::from(vec![0u8; 70_000]), true)
        .unwrap();
    let fr = p.frames();
    let Frame::Headers { block, .. } = &fr[0] else {
        panic!()
    };
    // Our encoder signalled the size update and the zero-size table decodes it.
    assert_eq!(block[0], 0x20);
    assert_eq!(p.decode(block).len(), 2);
    let sizes: Vec<usize> = fr[1..]
        .iter()
        .map(|x| match x {
            Frame::Data { payload, .. } => payload.len(),
            _ => 0,
        })
        .collect();
    assert_eq!(sizes, vec![40_000, 30_000]);
}

// ----- PING, GOAWAY (§6.7, §6.8) -------------------------------------------------------------

#[test]
fn ping_answered_and_rtt_measured() {
    let mut p = Peer::server(ConnConfig::default());
    p.send(&[Frame::Ping {
        ack: false,
        data: *b"12345678",
    }])
    .unwrap();
    assert_eq!(
        p.frames(),
        vec![Frame::Ping {
            ack: true,
            data: *b"12345678"
        }]
    );
    p.conn.send_ping(*b"abcdefgh", p.now).unwrap();
    assert_eq!(
        p.frames(),
        vec![Frame::Ping {
            ack: false,
            data: *b"abcdefgh"
        }]
    );
    p.now += Duration::from_millis(42);
    p.send(&[Frame::Ping {
        ack: true,
        data: *b"zzzzzzzz",
    }])
    .unwrap();
    assert!(p.events().is_empty(), "unknown ACK ignored");
    p.send(&[Frame::Ping {
        ack: true,
        data: *b"abcdefgh",
    }])
    .unwrap();
    assert_eq!(
        p.events(),
        vec![Event::PingRtt {
            rtt: Duration::from_millis(42),
            data: *b"abcdefgh"
        }]
    );
}

#[test]
fn graceful_goaway_from_server() {
    let mut p = Peer::server(ConnConfig::default());
    p.open(1, false);
    p.conn.send_goaway(ErrorCode::NoError, b"bye").unwrap();
    let fr = p.frames();
    assert_eq!(
        fr,
        vec![Frame::GoAway {
            last_stream_id: s(1),
            code: ErrorCode::NoError,
            debug: Bytes::from_static(b"bye")
        }]
    );
    // A new stream after our GOAWAY is ignored (but its block is decoded).
    p.open(3, true);
    assert!(p
        .events()
        .iter()
        .all(|e| !matches!(e, Event::Headers { stream, .. } if *stream == s(3))));
    // Stream 1 completes: the connection finishes gracefully.
    p.send(&[data(1, 1, true)]).unwrap();
    p.conn
        .send_headers(s(1), &[f(":status", "200")], true)
        .unwrap();
    assert!(p.events().contains(&Event::Closed { error: None }));
    assert!(p.conn.is_closed());
}

#[test]
fn client_goaway_reports_unprocessed_streams() {
    let mut p = Peer::client(ConnConfig::default());
    let a = p
        .conn
        .open_stream(&[f(":method", "GET"), f(":path", "/a")], true)
        .unwrap();
    let b = p
        .conn
        .open_stream(&[f(":method", "GET"), f(":path", "/b")], true)
        .unwrap();
    let c = p
        .conn
        .open_stream(&[f(":method", "GET"), f(":path", "/c")], true)
        .unwrap();
    assert_eq!((a.get(), b.get(), c.get()), (1, 3, 5));
    p.send(&[Frame::GoAway {
        last_stream_id: a,
        code: ErrorCode::NoError,
        debug: Bytes::new(),
    }])
    .unwrap();
    let ev = p.events();
    assert_eq!(
        ev,
        vec![Event::GoAway {
            last_stream_id: a,
            code: ErrorCode::NoError,
            debug: Bytes::new(),
            unprocessed: vec![b, c]
        }]
    );
    assert_eq!(
        p.conn.open_stream(&[f(":method", "GET")], true),
        Err(OpenError::GoingAway)
    );
    // Late frames for the unprocessed streams are ignored; stream 1 completes.
    let h = p.headers(1, &[(b":status".to_vec(), b"200".to_vec())], true);
    p.send(&[h]).unwrap();
    let ev = p.events();
    assert!(matches!(
        ev[0],
        Event::Headers {
            kind: HeadersKind::Initial,
            end_stream: true,
            ..
        }
    ));
    assert_eq!(ev[1], Event::Closed { error: None });
}

// ----- client role ---------------------------------------------------------------------------

#[test]
fn client_informational_response_trailers() {
    let mut p = Peer::client(ConnConfig::default());
    let id = p
        .conn
        .open_stream(&[f(":method", "POST"), f(":path", "/svc/M")], false)
        .unwrap();
    p.conn
        .send_data(id, Bytes::from_static(b"hello"), true)
        .unwrap();
    let fr = p.frames();
    let Frame::Headers {
        block,
        end_stream: false,
        ..
    } = &fr[0]
    else {
        panic!("{fr:?}")
    };
    assert_eq!(&p.decode(block)[1].value[..], b"/svc/M");
    assert!(matches!(
        &fr[1],
        Frame::Data {
            end_stream: true,
            ..
        }
    ));
    // DATA before the response HEADERS is malformed.
    let h100 = p.headers(1, &[(b":status".to_vec(), b"100".to_vec())], false);
    let h200 = p.headers(1, &[(b":status".to_vec(), b"200".to_vec())], false);
    let tr = p.headers(1, &[(b"grpc-status".to_vec(), b"0".to_vec())], true);
    p.send(&[h100, h200, data(1, 3, false), tr]).unwrap();
    let kinds: Vec<HeadersKind> = p
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Headers { kind, .. } => Some(kind),
            _ => None,
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            HeadersKind::Informational,
            HeadersKind::Initial,
            HeadersKind::Trailers
        ]
    );
    assert_eq!(p.conn.active_streams(), 0);

    let id = p.conn.open_stream(&[f(":method", "GET")], true).unwrap();
    p.send(&[data(id.get(), 3, false)]).unwrap();
    assert_eq!(p.rst(), vec![(3, ErrorCode::ProtocolError)]);
}

#[test]
fn client_open_stream_limits() {
    let mut p = Peer::client(ConnConfig::default());
    let st = Settings {
        max_concurrent_streams: Some(2),
        ..Default::default()
    };
    p.send(&[Frame::Settings {
        ack: false,
        settings: st,
    }])
    .unwrap();
    assert_eq!(p.conn.peer_max_concurrent_streams(), 2);
    p.conn.open_stream(&[f(":method", "GET")], true).unwrap();
    p.conn.open_stream(&[f(":method", "GET")], true).unwrap();
    assert!(!p.conn.can_open_stream());
    assert_eq!(
        p.conn.open_stream(&[f(":method", "GET")], true),
        Err(OpenError::ConcurrencyLimit)
    );
    // Server-initiated HEADERS (push is off) and HEADERS on our idle stream are errors.
    let h = p.headers(2, &[(b":status".to_vec(), b"200".to_vec())], true);
    let r = p.send(&[h]);
    expect_conn_error(&mut p, r, ErrorCode::ProtocolError);
    let mut p = Peer::client(ConnConfig::default());
    let h = p.headers(7, &[(b":status".to_vec(), b"200".to_vec())], true);
    let r = p.send(&[h]);
    expect_conn_error(&mut p, r, ErrorCode::ProtocolError);
    let mut sp = Peer::server(ConnConfig::default());
    assert_eq!(sp.conn.open_stream(&[], true), Err(OpenError::NotClient));
}

#[test]
fn compression_error_is_connection_error() {
    let mut p = Peer::server(ConnConfig::default());
    let r = p.send(&[Frame::Headers {
        stream_id: s(1),
        block: Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
        end_stream: true,
        end_headers: true,
        priority: None,
    }]);
    expect_conn_error(&mut p, r, ErrorCode::CompressionError);
}

#[test]
fn eof_with_active_streams() {
    let mut p = Peer::server(ConnConfig::default());
    p.open(1, false);
    p.events();
    p.conn.recv_eof();
    assert_eq!(
        p.events(),
        vec![Event::Closed {
            error: Some(ConnError::UnexpectedEof)
        }]
    );
}

/// `recycle_fields`: a field list handed back is reused (same allocation, emptied) for the next
/// decoded header block; lists beyond SPARE_FIELD_LIST_MAX capacity are not kept. On a thread
/// of its own: the spares are per thread, and another test's lists must not be found here.
#[test]
fn recycled_field_lists_are_reused_empty_and_bounded() {
    std::thread::spawn(recycled_field_lists_on_a_fresh_thread)
        .join()
        .unwrap();
}

fn recycled_field_lists_on_a_fresh_thread() {
    // Streams stay open (nothing answers them): room for all of them.
    let mut p = Peer::server(ConnConfig {
        max_concurrent_streams: 5000,
        ..ConnConfig::default()
    });
    let open = |p: &mut Peer, id: u32| {
        let h = p.headers(id, &req(&format!("/svc/{id}")), true);
        p.send(&[h]).unwrap();
    };
    let headers = |p: &mut Peer| match p.events().into_iter().next() {
        Some(Event::Headers { fields, .. }) => fields,
        other => panic!("expected HEADERS, got {other:?}"),
    };
    open(&mut p, 1);
    let first = headers(&mut p);
    assert_eq!(first.len(), 5);
    let (ptr, cap) = (first.as_ptr() as usize, first.capacity());
    recycle_fields(first);
    open(&mut p, 3);
    let second = headers(&mut p);
    assert_eq!((second.as_ptr() as usize, second.capacity()), (ptr, cap));
    assert_eq!(
        second.len(),
        5,
        "the reused list holds only the new block's fields"
    );
    assert_eq!(&second[2].value[..], b"/svc/3".as_slice());

    // Too large to keep: the next block gets a fresh list.
    let big: Vec<HeaderField> = Vec::with_capacity(SPARE_FIELD_LIST_MAX + 1);
    let big_ptr = big.as_ptr() as usize;
    recycle_fields(big);
    open(&mut p, 5);
    let third = headers(&mut p);
    assert_ne!(third.as_ptr() as usize, big_ptr);
    assert!(third.capacity() <= SPARE_FIELD_LIST_MAX);

    // Bounded: past SPARE_FIELDS fields of capacity in all, lists are freed; the stack then
    // drains to empty and a new list is allocated.
    for _ in 0..SPARE_FIELDS / 8 + 10 {
        recycle_fields(Vec::with_capacity(8));
    }
    let mut id = 7;
    for _ in 0..SPARE_FIELDS / 8 {
        open(&mut p, id);
        id += 2;
        assert_eq!(headers(&mut p).capacity(), 8, "a spare");
    }
    open(&mut p, id);
    assert_ne!(
        headers(&mut p).capacity(),
        8,
        "spares exhausted: a new list"
    );
}
