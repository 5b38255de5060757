//! Self-tests of the raw h2 origin, the ALPN-http/1.1 origin, the closed
//! port helper and the raw h2 client, against independent peers (tonic
//! client, h2 client) directly — no proxy.

use std::time::Duration;

use bytes::Bytes;
use ringedge_e2e::{self as e2e, pb, ClientTls, RawMode, RawOrigin, TestPki, WAIT};
use tonic::Code;

fn hang_req() -> pb::EchoRequest {
    pb::EchoRequest {
        payload: b"x".to_vec(),
        behavior: None,
    }
}

/// Pause between the origin's trailers and its RST_STREAM(NO_ERROR). The `h2`
/// client inside tonic fails the call with the reset if it arrives before the
/// application polled the response (see `RawMode::EarlyTrailersThenReset`): the
/// pause must cover the client task's scheduling delay on a loaded machine.
const RESET_AFTER_MS: u64 = 1000;

#[test]
fn early_trailers_then_reset_gives_the_origin_status_to_tonic() {
    let origin = RawOrigin::start(
        RawMode::EarlyTrailersThenReset {
            status: 7,
            message: "blocked early ü".into(),
            reset_after: Duration::from_millis(RESET_AFTER_MS),
        },
        None,
    );
    e2e::run(async {
        let ch = e2e::bounded("connect", e2e::connect(origin.addr(), None))
            .await
            .unwrap();
        let mut c = e2e::echo_client(ch);
        // A client stream whose body never ends: the answer certainly comes
        // before the request body ended.
        let (tx, rx) = tokio::sync::mpsc::channel::<pb::EchoRequest>(1);
        tx.send(hang_req()).await.unwrap();
        let st = e2e::bounded(
            "early trailers",
            c.client_stream(tokio_stream::wrappers::ReceiverStream::new(rx)),
        )
        .await
        .unwrap_err();
        assert_eq!(st.code(), Code::PermissionDenied, "{st:?}");
        assert_eq!(st.message(), "blocked early ü");
        let rec = origin.record();
        assert_eq!(rec.early_trailers_before_body_end, 1);
        drop(tx);

        // Unary too (the body may or may not have ended; the status must win).
        let st = e2e::bounded("unary early", c.unary(hang_req()))
            .await
            .unwrap_err();
        assert_eq!(st.code(), Code::PermissionDenied, "{st:?}");
    });
}

#[test]
fn early_trailers_then_reset_on_the_wire() {
    let origin = RawOrigin::start(
        RawMode::EarlyTrailersThenReset {
            status: 7,
            message: "no".into(),
            reset_after: Duration::from_millis(RESET_AFTER_MS),
        },
        None,
    );
    e2e::run(async {
        let mut cl = e2e::raw_h2c(origin.addr()).await.unwrap();
        let head = e2e::grpc_request("origin.test", "/ringedge.test.Echo/ClientStream", &[]);
        let (resp, mut body) = cl.send.send_request(head, false).unwrap();
        body.send_data(e2e::encode_grpc(&hang_req()), false)
            .unwrap();
        let resp = e2e::bounded("response", resp).await.unwrap();
        assert_eq!(resp.status(), 200);
        let mut rb = resp.into_body();
        let data = e2e::read_body(&mut rb, WAIT).await.unwrap();
        assert!(data.is_empty());
        let trailers = e2e::bounded("trailers", rb.trailers())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(trailers.get("grpc-status").unwrap(), "7");
        assert_eq!(trailers.get("grpc-message").unwrap(), "no");
        // The origin then reset our still-open request side with NO_ERROR.
        let reason = e2e::bounded("reset", std::future::poll_fn(|cx| body.poll_reset(cx)))
            .await
            .unwrap();
        assert_eq!(reason, h2::Reason::NO_ERROR);
    });
}

#[test]
fn trailers_only_answer() {
    let origin = RawOrigin::start(
        RawMode::TrailersOnly {
            status: 14,
            message: "down 50%".into(),
        },
        None,
    );
    e2e::run(async {
        let ch = e2e::connect(origin.addr(), None).await.unwrap();
        let st = e2e::bounded("trailers-only", e2e::echo_client(ch).unary(hang_req()))
            .await
            .unwrap_err();
        assert_eq!(st.code(), Code::Unavailable);
        assert_eq!(st.message(), "down 50%");
    });
}

#[test]
fn raw_echo_over_tls_and_hello() {
    let pki = TestPki::new();
    let leaf = pki.leaf(&["raw.test"]);
    let origin = RawOrigin::start(RawMode::Echo, Some(&leaf));
    e2e::run(async {
        let tls = ClientTls::new(&pki, "raw.test");
        let ch = e2e::connect(origin.addr(), Some(&tls)).await.unwrap();
        let r = e2e::echo_client(ch.clone())
            .unary(hang_req())
            .await
            .unwrap();
        assert_eq!(r.into_inner().payload, b"x");
        let r = e2e::greeter_client(ch)
            .say_hello(pb::HelloRequest { name: "raw".into() })
            .await
            .unwrap();
        assert_eq!(r.into_inner().message, "Hello raw");
        let rec = origin.record();
        assert_eq!(rec.echoed, 2);
        assert_eq!(rec.requests[1].0, "/helloworld.Greeter/SayHello");
    });
}

#[test]
fn refused_streams_then_served() {
    let origin = RawOrigin::start(RawMode::RefuseStreams { streams: 1 }, None);
    e2e::run(async {
        let mut cl = e2e::raw_h2c(origin.addr()).await.unwrap();
        let head = e2e::grpc_request("o", "/ringedge.test.Echo/Unary", &[]);
        let (resp, mut body) = cl.send.send_request(head.clone(), false).unwrap();
        // The origin may refuse the stream (and the client see it) before this DATA is
        // queued, which fails it with InactiveStreamId: both orders are fine here.
        let _ = body.send_data(e2e::encode_grpc(&hang_req()), true);
        let err = e2e::bounded("refused", resp).await.unwrap_err();
        assert_eq!(err.reason(), Some(h2::Reason::REFUSED_STREAM), "{err:?}");
        // The second stream is served.
        let mut send = e2e::bounded("ready", cl.send.clone().ready())
            .await
            .unwrap();
        let (resp, mut body) = send.send_request(head, false).unwrap();
        body.send_data(e2e::encode_grpc(&hang_req()), true).unwrap();
        let resp = e2e::bounded("served", resp).await.unwrap();
        let mut rb = resp.into_body();
        let data = e2e::read_body(&mut rb, WAIT).await.unwrap();
        let msgs = e2e::grpc_messages(data);
        assert_eq!(msgs.len(), 1);
        let trailers = rb.trailers().await.unwrap().unwrap();
        assert_eq!(trailers.get("grpc-status").unwrap(), "0");
        assert_eq!(origin.record().refused, 1);
    });
}

#[test]
fn goaway_with_last_stream_id_then_next_connection_served() {
    let origin = RawOrigin::start(
        RawMode::GoAway {
            last_stream_id: 0,
            connections: 1,
        },
        None,
    );
    e2e::run(async {
        let mut cl = e2e::raw_h2c(origin.addr()).await.unwrap();
        let head = e2e::grpc_request("o", "/ringedge.test.Echo/Unary", &[]);
        let (resp, mut body) = cl.send.send_request(head.clone(), false).unwrap();
        let _ = body.send_data(e2e::encode_grpc(&hang_req()), true);
        let err = e2e::bounded("goaway", resp).await.unwrap_err();
        // Stream 1 is above last-stream-id 0: h2 reports it as not processed.
        assert!(err.is_go_away() || err.is_remote(), "{err:?}");
        assert_eq!(err.reason(), Some(h2::Reason::NO_ERROR), "{err:?}");
        assert!(origin.wait_for(WAIT, |r| r.goaways_sent == 1).await);
        // A fresh connection is served normally.
        let mut cl2 = e2e::raw_h2c(origin.addr()).await.unwrap();
        let (resp, mut body) = cl2.send.send_request(head, false).unwrap();
        body.send_data(e2e::encode_grpc(&hang_req()), true).unwrap();
        let resp = e2e::bounded("served", resp).await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(origin.record().connections, 2);
    });
}

#[test]
fn hang_records_the_clients_reset() {
    let origin = RawOrigin::start(RawMode::Hang, None);
    e2e::run(async {
        let mut cl = e2e::raw_h2c(origin.addr()).await.unwrap();
        let head = e2e::grpc_request("o", "/ringedge.test.Echo/Unary", &[("grpc-timeout", "5S")]);
        let (_resp, mut body) = cl.send.send_request(head, false).unwrap();
        body.send_data(Bytes::from_static(b""), false).unwrap();
        assert!(origin.wait_for(WAIT, |r| r.requests.len() == 1).await);
        body.send_reset(h2::Reason::CANCEL);
        assert!(
            origin
                .wait_for(WAIT, |r| !r.resets_received.is_empty())
                .await
        );
        assert_eq!(
            origin.record().resets_received,
            vec![u32::from(h2::Reason::CANCEL)]
        );
        assert_eq!(
            origin.record().requests[0].2.get("grpc-timeout").unwrap(),
            "5S"
        );
    });
}

#[test]
fn alpn_http11_only_origin_fails_a_tonic_tls_client() {
    let pki = TestPki::new();
    let leaf = pki.leaf(&["old.test"]);
    let origin = RawOrigin::http11_only_tls(&leaf);
    e2e::run(async {
        let tls = ClientTls::new(&pki, "old.test");
        let outcome = match e2e::bounded("connect", e2e::connect(origin.addr(), Some(&tls))).await {
            Err(e) => format!("{e:?}"),
            Ok(ch) => match e2e::bounded("call", e2e::echo_client(ch).unary(hang_req())).await {
                Ok(_) => panic!("a call to an http/1.1-only origin succeeded"),
                Err(st) => format!("{st:?}"),
            },
        };
        assert!(!outcome.is_empty());
        assert!(origin.wait_for(WAIT, |r| !r.tls_failures.is_empty()).await);
        let why = &origin.record().tls_failures[0];
        // rustls: Error::NoApplicationProtocol, "peer doesn't support any known protocol".
        assert!(why.contains("known protocol"), "{why}");
        // The tonic client saw the no_application_protocol alert.
        assert!(outcome.contains("NoApplicationProtocol"), "{outcome}");

        // A raw rustls client offering only h2 fails the handshake the same way.
        let cfg = std::sync::Arc::new(pki.client_config(&[b"h2"]));
        let r = e2e::tls_connect(origin.addr(), cfg, "old.test").await;
        let err = r.expect_err("handshake must fail without a common ALPN");
        assert!(
            format!("{err:?}").contains("NoApplicationProtocol"),
            "{err:?}"
        );
    });
}

#[test]
fn closed_port_refuses_connections() {
    let addr = e2e::closed_port();
    e2e::run(async move {
        let r = e2e::bounded("connect", e2e::connect(addr, None)).await;
        assert!(r.is_err());
        let r = tokio::net::TcpStream::connect(addr).await;
        assert_eq!(r.unwrap_err().kind(), std::io::ErrorKind::ConnectionRefused);
    });
}

#[test]
fn percent_encoding_and_frame_walk() {
    assert_eq!(e2e::percent_encode("a b%ü\n"), "a b%25%C3%BC%0A");
    let one = e2e::encode_grpc(&hang_req());
    let mut two = bytes::BytesMut::from(&one[..]);
    two.extend_from_slice(&one);
    let msgs = e2e::grpc_messages(two.freeze());
    assert_eq!(msgs.len(), 2);
    assert!(msgs.iter().all(|m| m.is_some()));
    // Truncated frame.
    assert_eq!(e2e::grpc_messages(one.slice(..one.len() - 1)), vec![None]);
}
