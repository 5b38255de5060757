//! ringedge end to end with peers we did not write: tonic clients → ringedge (TLS, ALPN h2,
//! certificates made at test time) → tonic origins (h2c, or TLS verified against the test CA
//! with an SNI name). The four call kinds, 4 MiB messages, 1,000 concurrent streams, metadata
//! (ASCII and `-bin`) in headers and trailers, origin statuses and messages (non-ASCII too),
//! `:authority` and forwarding headers. Issue 3 §6.
//!
//! Every wait is bounded (`e2e::run`, `e2e::bounded`, `Edge::wait_metrics`); no assertion depends
//! on timing. One proxy at a time (`e2e::serial`).

use std::sync::Arc;

use ringedge_e2e::{
    self as e2e, md, md_bin, pattern, pb, ClientTls, Edge, OriginOpts, TestOrigin, TestPki, WAIT,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic::Code;

/// The names the edge's certificate carries; clients use `api.test` as SNI and `:authority`.
const EDGE_NAMES: &[&str] = &["api.test", "localhost"];
const DOMAIN: &str = "api.test";

/// An edge in front of a tonic h2c origin, every path routed to it.
fn edge_to_h2c(pki: &TestPki, origin: &TestOrigin, host_extra: &str) -> Edge {
    let leaf = pki.leaf(EDGE_NAMES);
    let url = format!("h2c://{}", origin.addr());
    Edge::start(
        &leaf,
        &format!(
            "{}{}",
            e2e::origin_toml("o", &url, None),
            e2e::catch_all_toml("o", host_extra)
        ),
    )
}

async fn echo_through(edge: &Edge, pki: &TestPki) -> pb::echo_client::EchoClient<Channel> {
    let tls = ClientTls::new(pki, DOMAIN);
    let ch = e2e::bounded("connect to the edge", e2e::connect(edge.addr(), Some(&tls)))
        .await
        .expect("TLS connect to the edge");
    e2e::echo_client(ch)
}

fn req(payload: Vec<u8>, behavior: Option<pb::Behavior>) -> pb::EchoRequest {
    pb::EchoRequest { payload, behavior }
}

/// Unary, client streaming, server streaming and bidi (ping-pong: each answer is read before
/// the next message is sent, so both directions stream at once) through the edge.
async fn four_call_kinds(client: &mut pb::echo_client::EchoClient<Channel>, origin: &TestOrigin) {
    // Unary.
    let r = e2e::bounded("unary", client.unary(req(pattern(1000), None)))
        .await
        .expect("unary through the edge");
    assert_eq!(r.into_inner().payload, pattern(1000));

    // Client streaming: five distinct messages, answered with their concatenation.
    let parts: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; 10_000]).collect();
    let msgs: Vec<pb::EchoRequest> = parts.iter().map(|p| req(p.clone(), None)).collect();
    let r = e2e::bounded(
        "client stream",
        client.client_stream(tokio_stream::iter(msgs)),
    )
    .await
    .expect("client stream through the edge");
    assert_eq!(r.into_inner().payload, parts.concat());

    // Server streaming: five responses of 3000 bytes.
    let b = pb::Behavior {
        stream_count: 5,
        response_size: 3000,
        ..Default::default()
    };
    let mut stream = e2e::bounded("server stream", client.server_stream(req(vec![], Some(b))))
        .await
        .expect("server stream through the edge")
        .into_inner();
    for i in 0..5 {
        let m = e2e::bounded("server stream message", stream.message())
            .await
            .expect("server stream message")
            .expect("five messages");
        assert_eq!(m.seq, i);
        assert_eq!(m.payload, pattern(3000));
    }
    assert!(e2e::bounded("server stream end", stream.message())
        .await
        .expect("clean end")
        .is_none());

    // Bidi ping-pong.
    let (tx, rx) = mpsc::channel::<pb::EchoRequest>(1);
    tx.send(req(b"ping 0".to_vec(), None)).await.unwrap();
    let mut answers = e2e::bounded("bidi", client.bidi(ReceiverStream::new(rx)))
        .await
        .expect("bidi through the edge")
        .into_inner();
    for i in 0..5u32 {
        let m = e2e::bounded("bidi answer", answers.message())
            .await
            .expect("bidi answer")
            .expect("an answer per message");
        assert_eq!(m.seq, i);
        assert_eq!(m.payload, format!("ping {i}").into_bytes());
        if i < 4 {
            tx.send(req(format!("ping {}", i + 1).into_bytes(), None))
                .await
                .unwrap();
        }
    }
    drop(tx); // half-close: the origin ends the call OK
    assert!(e2e::bounded("bidi end", answers.message())
        .await
        .expect("clean bidi end")
        .is_none());

    assert!(
        origin.wait_finished(4, WAIT).await,
        "origin counts: {:?}",
        origin.counts()
    );
    assert_eq!(origin.counts().cancelled, 0);
}

#[test]
fn four_call_kinds_through_the_edge_to_an_h2c_origin() {
    let _g = e2e::serial();
    let pki = TestPki::new();
    let origin = TestOrigin::start(OriginOpts::h2c());
    let edge = edge_to_h2c(&pki, &origin, "");
    e2e::run(async {
        let mut client = echo_through(&edge, &pki).await;
        four_call_kinds(&mut client, &origin).await;
        let m = edge
            .wait_metrics("four gRPC streams", |m| m.grpc_requests >= 4)
            .await;
        assert_eq!(m.tls_handshake_failed, 0);
        assert_eq!(m.edge_status, [0; 17], "the edge produced no status");
        assert_eq!(origin.requests()[0].path, "/ringedge.test.Echo/Unary");
    });
}

#[test]
fn four_call_kinds_through_the_edge_to_a_tls_origin() {
    let _g = e2e::serial();
    let pki = TestPki::new();
    let origin = TestOrigin::start(OriginOpts::tls(&pki.leaf(&["origin.test"])));
    let leaf = pki.leaf(EDGE_NAMES);
    // The origin listens on 127.0.0.1; the edge verifies it as origin.test (SNI) against the
    // test CA.
    let url = format!("https://{}", origin.addr());
    let edge = Edge::start(
        &leaf,
        &format!(
            "{}{}",
            e2e::origin_toml("o", &url, Some((pki.ca_path(), "origin.test"))),
            e2e::catch_all_toml("o", "")
        ),
    );
    e2e::run(async {
        let mut client = echo_through(&edge, &pki).await;
        four_call_kinds(&mut client, &origin).await;
        let m = edge
            .wait_metrics("an origin connection", |m| m.origin_connects >= 1)
            .await;
        assert_eq!(m.origin_connect_failed, 0);
        assert!(origin.connections() >= 1);
    });
}

#[test]
fn four_mib_messages_in_every_call_kind() {
    const MIB4: usize = 4 * 1024 * 1024;
    let _g = e2e::serial();
    let pki = TestPki::new();
    let origin = TestOrigin::start(OriginOpts::h2c());
    let edge = edge_to_h2c(&pki, &origin, "");
    e2e::run(async {
        let mut client = echo_through(&edge, &pki).await;
        let big = pattern(MIB4);

        let r = e2e::bounded("4 MiB unary", client.unary(req(big.clone(), None)))
            .await
            .expect("4 MiB unary");
        assert!(
            r.into_inner().payload == big,
            "4 MiB unary changed in transit"
        );

        // Two 4 MiB requests up, a small answer down.
        let b = pb::Behavior {
            response_size: 16,
            ..Default::default()
        };
        let msgs = vec![req(big.clone(), Some(b)), req(big.clone(), None)];
        let r = e2e::bounded(
            "4 MiB client stream",
            client.client_stream(tokio_stream::iter(msgs)),
        )
        .await
        .expect("4 MiB client stream");
        assert_eq!(r.into_inner().payload, pattern(16));

        // Two 4 MiB responses down.
        let b = pb::Behavior {
            response_size: MIB4 as u32,
            stream_count: 2,
            ..Default::default()
        };
        let mut s = e2e::bounded(
            "4 MiB server stream",
            client.server_stream(req(vec![], Some(b))),
        )
        .await
        .expect("4 MiB server stream")
        .into_inner();
        for i in 0..2 {
            let m = e2e::bounded("4 MiB response", s.message())
                .await
                .expect("4 MiB response")
                .expect("two responses");
            assert_eq!(m.seq, i);
            assert!(m.payload == big, "4 MiB response {i} changed in transit");
        }
        assert!(e2e::bounded("end", s.message()).await.unwrap().is_none());

        // Bidi: 4 MiB each way, twice.
        let (tx, rx) = mpsc::channel::<pb::EchoRequest>(1);
        tx.send(req(big.clone(), None)).await.unwrap();
        let mut answers = e2e::bounded("4 MiB bidi", client.bidi(ReceiverStream::new(rx)))
            .await
            .expect("4 MiB bidi")
            .into_inner();
        for i in 0..2 {
            let m = e2e::bounded("4 MiB bidi answer", answers.message())
                .await
                .expect("4 MiB bidi answer")
                .expect("an answer");
            assert!(m.payload == big, "4 MiB bidi answer {i} changed in transit");
            if i == 0 {
                tx.send(req(big.clone(), None)).await.unwrap();
            }
        }
        drop(tx);
        assert!(e2e::bounded("end", answers.message())
            .await
            .unwrap()
            .is_none());

        // 5 × 4 MiB each way went through the edge's counters (published every 100 ms).
        let m = edge
            .wait_metrics("20 MiB each way", |m| {
                m.bytes_to_origin >= 5 * MIB4 as u64 && m.bytes_to_client >= 5 * MIB4 as u64
            })
            .await;
        assert_eq!(m.edge_status, [0; 17]);
        assert_eq!(m.grpc_requests, 4);
    });
}

#[test]
fn a_thousand_concurrent_streams_over_four_connections() {
    const CONNS: usize = 4;
    const PER_CONN: usize = 250;
    const TOTAL: usize = CONNS * PER_CONN;
    let _g = e2e::serial();
    let pki = TestPki::new();
    let origin = TestOrigin::start(OriginOpts::h2c());
    let edge = edge_to_h2c(&pki, &origin, "");
    e2e::run(async {
        let mut clients = Vec::new();
        for _ in 0..CONNS {
            clients.push(echo_through(&edge, &pki).await);
        }
        // Each call is a bidi stream that sends one message, reads its echo, then waits on the
        // barrier until every other stream has done the same: so all 1,000 streams are open
        // at once, whatever the scheduling. Then each sends a second message, half-closes and
        // reads to the clean end.
        let barrier = Arc::new(tokio::sync::Barrier::new(TOTAL));
        let mut tasks = Vec::with_capacity(TOTAL);
        for (c, client) in clients.iter().enumerate() {
            for i in 0..PER_CONN {
                let mut client = client.clone();
                let barrier = barrier.clone();
                tasks.push(tokio::spawn(async move {
                    let id = format!("conn {c} call {i}");
                    let (tx, rx) = mpsc::channel::<pb::EchoRequest>(2);
                    tx.send(req(id.clone().into_bytes(), None)).await.unwrap();
                    let mut answers = client
                        .bidi(ReceiverStream::new(rx))
                        .await
                        .map_err(|s| format!("{id}: {s:?}"))?
                        .into_inner();
                    let first = answers
                        .message()
                        .await
                        .map_err(|s| format!("{id}: {s:?}"))?
                        .ok_or(format!("{id}: no first answer"))?;
                    if first.payload != id.as_bytes() {
                        return Err(format!("{id}: got another call's payload"));
                    }
                    barrier.wait().await;
                    tx.send(req(b"second".to_vec(), None)).await.unwrap();
                    drop(tx);
                    let second = answers
                        .message()
                        .await
                        .map_err(|s| format!("{id}: {s:?}"))?
                        .ok_or(format!("{id}: no second answer"))?;
                    if second.payload != b"second" || second.seq != 1 {
                        return Err(format!("{id}: wrong second answer"));
                    }
                    match answers.message().await {
                        Ok(None) => Ok(()),
                        other => Err(format!("{id}: no clean end: {other:?}")),
                    }
                }));
            }
        }
        let mut ok = 0;
        for t in tasks {
            e2e::bounded_for("1,000 concurrent calls", e2e::TEST_BUDGET / 2, t)
                .await
                .expect("call task")
                .unwrap_or_else(|e| panic!("{e}"));
            ok += 1;
        }
        assert_eq!(ok, TOTAL);
        assert!(
            origin.wait_finished(TOTAL as u64, WAIT).await,
            "{:?}",
            origin.counts()
        );
        let m = edge
            .wait_metrics("1,000 streams", |m| m.streams_total >= TOTAL as u64)
            .await;
        assert_eq!(m.connections_accepted, CONNS as u64, "{m:?}");
        assert_eq!(m.edge_status, [0; 17], "{m:?}");
        assert!(m.origin_connects >= 1, "{m:?}");
    });
}

#[test]
fn metadata_response_headers_and_trailers_pass_intact() {
    let _g = e2e::serial();
    let pki = TestPki::new();
    let origin = TestOrigin::start(OriginOpts::h2c());
    let edge = edge_to_h2c(&pki, &origin, "");
    let bin_req: &[u8] = &[0, 1, 2, 0xfe, 0xff, b'\n'];
    let bin_resp: &[u8] = &[0xff, 0, 0x80, b'%', b':'];
    e2e::run(async {
        let mut client = echo_through(&edge, &pki).await;

        // Request metadata reaches the origin: ASCII, repeated keys, binary.
        let b = pb::Behavior {
            response_headers: vec![md("x-resp", "head value"), md_bin("x-resp-bin", bin_resp)],
            ..Default::default()
        };
        let mut r = tonic::Request::new(req(b"m".to_vec(), Some(b)));
        let m = r.metadata_mut();
        m.insert("x-req", "a value; with=punctuation".parse().unwrap());
        m.append("x-multi", "one".parse().unwrap());
        m.append("x-multi", "two".parse().unwrap());
        m.insert_bin("x-req-bin", MetadataValue::from_bytes(bin_req));
        let resp = e2e::bounded("unary with metadata", client.unary(r))
            .await
            .expect("unary with metadata");
        let seen = origin.last_request().expect("origin saw the call");
        assert_eq!(seen.header("x-req"), Some("a value; with=punctuation"));
        let multi: Vec<&str> = seen
            .headers
            .get_all("x-multi")
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(multi, ["one", "two"]);
        assert_eq!(seen.header_bin("x-req-bin").as_deref(), Some(bin_req));
        assert_eq!(seen.header("te"), Some("trailers"));
        assert_eq!(seen.header("content-type"), Some("application/grpc"));
        // Response headers reach the client.
        assert_eq!(resp.metadata().get("x-resp").unwrap(), "head value");
        assert_eq!(
            resp.metadata()
                .get_bin("x-resp-bin")
                .unwrap()
                .to_bytes()
                .unwrap()
                .as_ref(),
            bin_resp
        );

        // Trailers of an OK server stream reach the client, binary ones too.
        let b = pb::Behavior {
            stream_count: 2,
            response_size: 10,
            response_headers: vec![md("x-stream-head", "h")],
            response_trailers: vec![md("x-trail", "tail value"), md_bin("x-trail-bin", bin_resp)],
            ..Default::default()
        };
        let resp = e2e::bounded("server stream", client.server_stream(req(vec![], Some(b))))
            .await
            .expect("server stream");
        assert_eq!(resp.metadata().get("x-stream-head").unwrap(), "h");
        let mut s = resp.into_inner();
        let mut n = 0;
        while let Some(msg) = e2e::bounded("message", s.message()).await.expect("stream") {
            assert_eq!(msg.payload, pattern(10));
            n += 1;
        }
        assert_eq!(n, 2);
        let trailers = e2e::bounded("trailers", s.trailers())
            .await
            .expect("trailers")
            .expect("trailers present");
        assert_eq!(trailers.get("x-trail").unwrap(), "tail value");
        assert_eq!(
            trailers
                .get_bin("x-trail-bin")
                .unwrap()
                .to_bytes()
                .unwrap()
                .as_ref(),
            bin_resp
        );

        // Trailers with an error status reach the client as the status's metadata.
        let b = pb::Behavior {
            status_code: Code::FailedPrecondition as i32,
            status_message: "not yet".into(),
            response_trailers: vec![md("x-why", "because"), md_bin("x-why-bin", bin_req)],
            ..Default::default()
        };
        let st = e2e::bounded("unary error", client.unary(req(vec![], Some(b))))
            .await
            .unwrap_err();
        assert_eq!(st.code(), Code::FailedPrecondition);
        assert_eq!(st.message(), "not yet");
        assert_eq!(st.metadata().get("x-why").unwrap(), "because");
        assert_eq!(
            st.metadata()
                .get_bin("x-why-bin")
                .unwrap()
                .to_bytes()
                .unwrap()
                .as_ref(),
            bin_req
        );
        let m = edge
            .wait_metrics("three calls", |m| m.grpc_requests >= 3)
            .await;
        assert_eq!(m.edge_status, [0; 17]);
    });
}

#[test]
fn origin_statuses_and_messages_pass_intact() {
    let _g = e2e::serial();
    let pki = TestPki::new();
    let origin = TestOrigin::start(OriginOpts::h2c());
    let edge = edge_to_h2c(&pki, &origin, "");
    e2e::run(async {
        let mut client = echo_through(&edge, &pki).await;
        // Every non-OK code, with a message that needs percent-encoding (non-ASCII, `%`).
        for code in 1..=16 {
            let msg = format!("code {code}: grüße ✓ 100% {}", '\u{1F600}');
            let b = pb::Behavior {
                status_code: code,
                status_message: msg.clone(),
                ..Default::default()
            };
            let st = e2e::bounded("unary status", client.unary(req(vec![], Some(b))))
                .await
                .unwrap_err();
            assert_eq!(st.code(), Code::from(code), "{st:?}");
            assert_eq!(st.message(), msg);
        }
        // An error after two messages of a server stream.
        let b = pb::Behavior {
            stream_count: 2,
            response_size: 5,
            status_code: Code::Aborted as i32,
            status_message: "abgebrochen — later".into(),
            ..Default::default()
        };
        let mut s = e2e::bounded("server stream", client.server_stream(req(vec![], Some(b))))
            .await
            .expect("stream starts OK")
            .into_inner();
        for _ in 0..2 {
            assert!(e2e::bounded("message", s.message())
                .await
                .unwrap()
                .is_some());
        }
        let st = e2e::bounded("stream status", s.message())
            .await
            .unwrap_err();
        assert_eq!(st.code(), Code::Aborted);
        assert_eq!(st.message(), "abgebrochen — later");
        // A bidi call failed at its first message.
        let b = pb::Behavior {
            status_code: Code::ResourceExhausted as i32,
            status_message: "quota ∅".into(),
            ..Default::default()
        };
        let (tx, rx) = mpsc::channel::<pb::EchoRequest>(1);
        tx.send(req(vec![1], Some(b))).await.unwrap();
        let st = match e2e::bounded("bidi", client.bidi(ReceiverStream::new(rx))).await {
            Err(st) => st,
            Ok(resp) => e2e::bounded("bidi status", resp.into_inner().message())
                .await
                .unwrap_err(),
        };
        assert_eq!(st.code(), Code::ResourceExhausted);
        assert_eq!(st.message(), "quota ∅");
        drop(tx);
        let m = edge
            .wait_metrics("18 calls", |m| m.grpc_requests >= 18)
            .await;
        assert_eq!(m.edge_status, [0; 17], "every status came from the origin");
    });
}

#[test]
fn authority_as_sent_or_rewritten_and_forwarding_headers() {
    let _g = e2e::serial();
    let pki = TestPki::new();
    let origin = TestOrigin::start(OriginOpts::h2c());
    let leaf = pki.leaf(EDGE_NAMES);
    let url = format!("h2c://{}", origin.addr());
    let sections = format!(
        r#"{origin}
[[hosts]]
names = ["*"]

[[hosts.routes]]
service = "ringedge.test.Echo"
origin = "o"

[[hosts.routes]]
method = "/ringedge.test.Echo/ServerStream"
origin = "o"
forwarded = "forwarded"

[[hosts.routes]]
method = "/helloworld.Greeter/SayHello"
origin = "o"
authority = "backend.internal"
forwarded = "x-forwarded-for"
"#,
        origin = e2e::origin_toml("o", &url, None)
    );
    let edge = Edge::start(&leaf, &sections);
    e2e::run(async {
        let tls = ClientTls::new(&pki, DOMAIN);
        let ch = e2e::bounded("connect", e2e::connect(edge.addr(), Some(&tls)))
            .await
            .unwrap();
        let sent_authority = format!("{DOMAIN}:{}", edge.addr().port());

        // No rewrite, no forwarding header: the origin sees the client's :authority, and a
        // client-sent x-forwarded-for untouched.
        let mut r = tonic::Request::new(req(vec![], None));
        r.metadata_mut()
            .insert("x-forwarded-for", "203.0.113.7".parse().unwrap());
        e2e::bounded("unary", e2e::echo_client(ch.clone()).unary(r))
            .await
            .unwrap();
        let seen = origin.last_request().unwrap();
        assert_eq!(seen.authority.as_deref(), Some(sent_authority.as_str()));
        assert_eq!(seen.header("x-forwarded-for"), Some("203.0.113.7"));
        assert_eq!(seen.header("forwarded"), None);

        // RFC 7239 `forwarded` added.
        let b = pb::Behavior {
            stream_count: 1,
            ..Default::default()
        };
        let mut s = e2e::bounded(
            "server stream",
            e2e::echo_client(ch.clone()).server_stream(req(vec![], Some(b))),
        )
        .await
        .unwrap()
        .into_inner();
        while e2e::bounded("drain", s.message()).await.unwrap().is_some() {}
        let seen = origin.last_request().unwrap();
        assert_eq!(seen.path, "/ringedge.test.Echo/ServerStream");
        assert_eq!(seen.authority.as_deref(), Some(sent_authority.as_str()));
        assert_eq!(seen.header("forwarded"), Some("for=127.0.0.1"));

        // :authority rewritten, x-forwarded-for extended with the client's address.
        let mut r = tonic::Request::new(pb::HelloRequest {
            name: "edge".into(),
        });
        r.metadata_mut()
            .insert("x-forwarded-for", "203.0.113.7".parse().unwrap());
        let reply = e2e::bounded("hello", e2e::greeter_client(ch).say_hello(r))
            .await
            .unwrap();
        assert_eq!(reply.into_inner().message, "Hello edge");
        let seen = origin.last_request().unwrap();
        assert_eq!(seen.path, "/helloworld.Greeter/SayHello");
        assert_eq!(seen.authority.as_deref(), Some("backend.internal"));
        assert_eq!(
            seen.header("x-forwarded-for"),
            Some("203.0.113.7, 127.0.0.1")
        );
    });
}

/// Regression test: the edge used to start calls on a new origin connection before that
/// origin's SETTINGS arrived, not yet knowing SETTINGS_MAX_CONCURRENT_STREAMS (RFC 9113
/// §6.5.2: unbounded until then); the origin refused the excess with REFUSED_STREAM, the
/// retry landed on the next fresh connection the same way, and 33–40 of these 60 calls ended
/// UNAVAILABLE "origin reset the stream (REFUSED_STREAM)".
#[test]
fn origin_stream_limit_spreads_calls_over_more_origin_connections() {
    // The origin allows 10 concurrent streams per connection; 60 calls are held open at once,
    // so the edge must open at least 6 origin connections (max_connections defaults to 8).
    const CALLS: usize = 60;
    let _g = e2e::serial();
    let pki = TestPki::new();
    let origin = TestOrigin::start(OriginOpts {
        max_concurrent_streams: Some(10),
        ..OriginOpts::h2c()
    });
    let edge = edge_to_h2c(&pki, &origin, "");
    e2e::run(async {
        let client = echo_through(&edge, &pki).await;
        let barrier = Arc::new(tokio::sync::Barrier::new(CALLS));
        let mut tasks = Vec::new();
        for i in 0..CALLS {
            let mut client = client.clone();
            let barrier = barrier.clone();
            tasks.push(tokio::spawn(async move {
                let (tx, rx) = mpsc::channel::<pb::EchoRequest>(2);
                tx.send(req(vec![i as u8; 10], None)).await.unwrap();
                let opened = async {
                    let mut answers = client
                        .bidi(ReceiverStream::new(rx))
                        .await
                        .map_err(|s| format!("call {i}: {s:?}"))?
                        .into_inner();
                    let first = answers
                        .message()
                        .await
                        .map_err(|s| format!("call {i}: {s:?}"))?;
                    if first.map(|m| m.payload) != Some(vec![i as u8; 10]) {
                        return Err(format!("call {i}: wrong first answer"));
                    }
                    Ok(answers)
                }
                .await;
                // Every call is open at the origin once all got here; a failed call still
                // arrives, so the others never wait for it in vain.
                barrier.wait().await;
                let mut answers = opened?;
                drop(tx);
                match answers.message().await {
                    Ok(None) => Ok(()),
                    other => Err(format!("call {i}: no clean end: {other:?}")),
                }
            }));
        }
        let mut failed = Vec::new();
        for t in tasks {
            if let Err(e) = e2e::bounded("60 calls", t).await.expect("task") {
                failed.push(e);
            }
        }
        let m = edge
            .wait_metrics("60 calls", |m| m.streams_total >= CALLS as u64)
            .await;
        assert!(
            failed.is_empty(),
            "{} of {CALLS} calls failed (origin connections {}; edge {m:?}); first: {}",
            failed.len(),
            origin.connections(),
            failed[0]
        );
        assert!(
            origin.connections() >= (CALLS / 10) as u64,
            "origin connections: {}",
            origin.connections()
        );
        assert!(m.origin_connects >= (CALLS / 10) as u64, "{m:?}");
        assert_eq!(m.edge_status, [0; 17], "{m:?}");
    });
}

#[test]
fn messages_over_max_message_bytes_give_resource_exhausted() {
    const LIMIT: usize = 1024 * 1024;
    let _g = e2e::serial();
    let pki = TestPki::new();
    let origin = TestOrigin::start(OriginOpts::h2c());
    let leaf = pki.leaf(EDGE_NAMES);
    let edge = Edge::start(
        &leaf,
        &format!(
            "[limits.grpc]\nmax_message_bytes = {LIMIT}\n\n{}{}",
            e2e::origin_toml("o", &format!("h2c://{}", origin.addr()), None),
            e2e::catch_all_toml("o", "")
        ),
    );
    e2e::run(async {
        let mut client = echo_through(&edge, &pki).await;
        // Within the limit: forwarded.
        let r = e2e::bounded("unary", client.unary(req(pattern(LIMIT / 2), None)))
            .await
            .expect("a message within the limit passes");
        assert_eq!(r.into_inner().payload, pattern(LIMIT / 2));
        // A request message over it.
        let st = e2e::bounded("big request", client.unary(req(pattern(2 * LIMIT), None)))
            .await
            .unwrap_err();
        assert_eq!(st.code(), Code::ResourceExhausted, "{st:?}");
        assert!(st.message().contains("request"), "{st:?}");
        assert!(st.message().contains("max_message_bytes"), "{st:?}");
        // A response message over it (after the response headers went out).
        let b = pb::Behavior {
            response_size: 2 * LIMIT as u32,
            ..Default::default()
        };
        let st = e2e::bounded("big response", client.unary(req(vec![], Some(b))))
            .await
            .unwrap_err();
        assert_eq!(st.code(), Code::ResourceExhausted, "{st:?}");
        assert!(st.message().contains("response"), "{st:?}");
        assert!(st.message().contains("max_message_bytes"), "{st:?}");
        let m = edge
            .wait_metrics("two refusals", |m| {
                m.edge_status[Code::ResourceExhausted as usize] == 2
            })
            .await;
        assert!(m.limits.contains(&("max_message_bytes", 2)), "{m:?}");
    });
}
