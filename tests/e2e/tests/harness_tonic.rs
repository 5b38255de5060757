//! Self-tests of the harness: a tonic client talks to `TestOrigin` directly
//! (h2c and TLS), proving the origin's behaviours and records before proxy
//! tests rely on them.

use std::time::Duration;

use ringedge_e2e::{self as e2e, pb, ClientTls, OriginOpts, TestOrigin, TestPki, WAIT};
use tonic::Code;

struct Setup {
    _pki: TestPki,
    origin: TestOrigin,
    tls: Option<ClientTls>,
}

fn setup(tls: bool) -> Setup {
    let pki = TestPki::new();
    let (origin, tls) = if tls {
        let leaf = pki.leaf(&["origin.test"]);
        (
            TestOrigin::start(OriginOpts::tls(&leaf)),
            Some(ClientTls::new(&pki, "origin.test")),
        )
    } else {
        (TestOrigin::start(OriginOpts::h2c()), None)
    };
    Setup {
        _pki: pki,
        origin,
        tls,
    }
}

async fn client(s: &Setup) -> pb::echo_client::EchoClient<tonic::transport::Channel> {
    let ch = e2e::bounded("connect", e2e::connect(s.origin.addr(), s.tls.as_ref()))
        .await
        .expect("connect to origin");
    e2e::echo_client(ch)
}

fn req(payload: Vec<u8>, b: pb::Behavior) -> pb::EchoRequest {
    pb::EchoRequest {
        payload,
        behavior: Some(b),
    }
}

fn all_call_kinds(tls: bool) {
    let s = setup(tls);
    e2e::run(async {
        let mut c = client(&s).await;
        // Unary echo.
        let r = e2e::bounded("unary", c.unary(req(b"hello".to_vec(), Default::default())))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.payload, b"hello");

        // Server streaming: 5 responses of 1000 bytes.
        let b = pb::Behavior {
            stream_count: 5,
            response_size: 1000,
            ..Default::default()
        };
        let mut st = e2e::bounded("server stream", c.server_stream(req(vec![], b)))
            .await
            .unwrap()
            .into_inner();
        let mut seqs = Vec::new();
        while let Some(m) = e2e::bounded("stream msg", st.message()).await.unwrap() {
            assert_eq!(m.payload, e2e::pattern(1000));
            seqs.push(m.seq);
        }
        assert_eq!(seqs, vec![0, 1, 2, 3, 4]);

        // Client streaming: payloads concatenated.
        let msgs = vec![
            req(b"ab".to_vec(), Default::default()),
            req(b"cd".to_vec(), Default::default()),
            req(b"ef".to_vec(), Default::default()),
        ];
        let r = e2e::bounded("client stream", c.client_stream(tokio_stream::iter(msgs)))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.payload, b"abcdef");

        // Bidi: interactive ping-pong, each message echoed before the next is sent.
        let (tx, rx) = tokio::sync::mpsc::channel::<pb::EchoRequest>(1);
        let mut out = e2e::bounded(
            "bidi",
            c.bidi(tokio_stream::wrappers::ReceiverStream::new(rx)),
        )
        .await
        .unwrap()
        .into_inner();
        for i in 0..4u8 {
            tx.send(req(vec![i; 10], Default::default())).await.unwrap();
            let m = e2e::bounded("bidi echo", out.message())
                .await
                .unwrap()
                .unwrap();
            assert_eq!(m.payload, vec![i; 10]);
            assert_eq!(m.seq, u32::from(i));
        }
        drop(tx);
        assert!(e2e::bounded("bidi end", out.message())
            .await
            .unwrap()
            .is_none());

        // Greeter.
        let ch = e2e::connect(s.origin.addr(), s.tls.as_ref()).await.unwrap();
        let r = e2e::greeter_client(ch)
            .say_hello(pb::HelloRequest {
                name: "edge".into(),
            })
            .await
            .unwrap();
        assert_eq!(r.into_inner().message, "Hello edge");

        assert!(s.origin.wait_finished(5, WAIT).await);
        let c = s.origin.counts();
        assert_eq!((c.started, c.finished, c.cancelled), (5, 5, 0));
        let paths: Vec<String> = s.origin.requests().into_iter().map(|r| r.path).collect();
        assert_eq!(
            paths,
            [
                "/ringedge.test.Echo/Unary",
                "/ringedge.test.Echo/ServerStream",
                "/ringedge.test.Echo/ClientStream",
                "/ringedge.test.Echo/Bidi",
                "/helloworld.Greeter/SayHello"
            ]
        );
        let first = &s.origin.requests()[0];
        assert_eq!(first.header("content-type"), Some("application/grpc"));
        assert_eq!(first.header("te"), Some("trailers"));
        if tls {
            assert_eq!(
                first.authority.as_deref(),
                Some(&*format!("origin.test:{}", s.origin.addr().port()))
            );
        } else {
            assert_eq!(
                first.authority.as_deref(),
                Some(&*s.origin.addr().to_string())
            );
        }
    });
}

#[test]
fn all_call_kinds_h2c() {
    all_call_kinds(false);
}

#[test]
fn all_call_kinds_tls() {
    all_call_kinds(true);
}

fn large_messages(tls: bool) {
    const SIZE: usize = 4 * 1024 * 1024;
    let s = setup(tls);
    e2e::run(async {
        let mut c = client(&s).await;
        let big = e2e::pattern(SIZE);
        let r = e2e::bounded("4 MiB unary", c.unary(req(big.clone(), Default::default())))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.payload.len(), SIZE);
        assert!(r.payload == big);
        // 4 MiB responses on a server stream, asked for by size.
        let b = pb::Behavior {
            stream_count: 2,
            response_size: SIZE as u32,
            ..Default::default()
        };
        let mut st = c.server_stream(req(vec![], b)).await.unwrap().into_inner();
        let mut n = 0;
        while let Some(m) = e2e::bounded("big msg", st.message()).await.unwrap() {
            assert!(m.payload == big);
            n += 1;
        }
        assert_eq!(n, 2);
        // 4 MiB bidi messages both ways.
        let msgs = vec![
            req(big.clone(), Default::default()),
            req(big.clone(), Default::default()),
        ];
        let mut out = c.bidi(tokio_stream::iter(msgs)).await.unwrap().into_inner();
        let mut n = 0;
        while let Some(m) = e2e::bounded("big bidi", out.message()).await.unwrap() {
            assert!(m.payload == big);
            n += 1;
        }
        assert_eq!(n, 2);
    });
}

#[test]
fn large_messages_h2c() {
    large_messages(false);
}

#[test]
fn large_messages_tls() {
    large_messages(true);
}

fn status_and_metadata(tls: bool) {
    let s = setup(tls);
    e2e::run(async {
        let mut c = client(&s).await;
        let bin = [0u8, 1, 2, 0xfe, 0xff, b'\n'];
        // Injected status, message with non-ASCII (percent-encoded on the wire), trailers.
        let b = pb::Behavior {
            status_code: 7,
            status_message: "denied: ü 100%".into(),
            response_trailers: vec![e2e::md("x-why", "rule-42"), e2e::md_bin("x-blob-bin", &bin)],
            ..Default::default()
        };
        let st = e2e::bounded("failing unary", c.unary(req(vec![], b)))
            .await
            .unwrap_err();
        assert_eq!(st.code(), Code::PermissionDenied);
        assert_eq!(st.message(), "denied: ü 100%");
        assert_eq!(st.metadata().get("x-why").unwrap(), "rule-42");
        assert_eq!(
            st.metadata()
                .get_bin("x-blob-bin")
                .unwrap()
                .to_bytes()
                .unwrap()
                .as_ref(),
            &bin
        );

        // Request metadata (ASCII and -bin) reaches the origin; response
        // headers and OK trailers come back on a server stream.
        let b = pb::Behavior {
            stream_count: 1,
            response_headers: vec![e2e::md("x-head", "h1"), e2e::md_bin("x-head-bin", &bin)],
            response_trailers: vec![e2e::md("x-tail", "t1"), e2e::md_bin("x-tail-bin", &bin)],
            ..Default::default()
        };
        let mut r = tonic::Request::new(req(b"m".to_vec(), b));
        r.metadata_mut().insert("x-client", "c1".parse().unwrap());
        r.metadata_mut().insert_bin(
            "x-client-bin",
            tonic::metadata::MetadataValue::from_bytes(&bin),
        );
        let resp = e2e::bounded("stream with metadata", c.server_stream(r))
            .await
            .unwrap();
        assert_eq!(resp.metadata().get("x-head").unwrap(), "h1");
        assert_eq!(
            resp.metadata()
                .get_bin("x-head-bin")
                .unwrap()
                .to_bytes()
                .unwrap()
                .as_ref(),
            &bin
        );
        let mut st = resp.into_inner();
        assert_eq!(st.message().await.unwrap().unwrap().payload, b"m");
        assert!(st.message().await.unwrap().is_none());
        let tr = st.trailers().await.unwrap().expect("trailers");
        assert_eq!(tr.get("x-tail").unwrap(), "t1");
        assert_eq!(
            tr.get_bin("x-tail-bin")
                .unwrap()
                .to_bytes()
                .unwrap()
                .as_ref(),
            &bin
        );

        let seen = s.origin.last_request().unwrap();
        assert_eq!(seen.header("x-client"), Some("c1"));
        assert_eq!(seen.header_bin("x-client-bin").as_deref(), Some(&bin[..]));

        // Status injected at the end of a server stream, after messages.
        let b = pb::Behavior {
            stream_count: 2,
            status_code: 8,
            status_message: "quota".into(),
            ..Default::default()
        };
        let mut st = c
            .server_stream(req(b"x".to_vec(), b))
            .await
            .unwrap()
            .into_inner();
        assert!(st.message().await.unwrap().is_some());
        assert!(st.message().await.unwrap().is_some());
        let err = st.message().await.unwrap_err();
        assert_eq!(err.code(), Code::ResourceExhausted);
        assert_eq!(err.message(), "quota");
    });
}

#[test]
fn status_and_metadata_h2c() {
    status_and_metadata(false);
}

#[test]
fn status_and_metadata_tls() {
    status_and_metadata(true);
}

fn cancellation_and_deadline(tls: bool) {
    let s = setup(tls);
    e2e::run(async {
        let mut c = client(&s).await;
        let hang = pb::Behavior {
            hang: true,
            ..Default::default()
        };
        // Client gives up on a hanging unary call once the origin has it (a
        // fixed client timeout could expire before the call even left on a slow
        // machine): tonic resets the stream, the origin's handler is dropped and
        // counted as cancelled.
        let mut c1 = c.clone();
        let hang1 = hang.clone();
        let call = tokio::spawn(async move { c1.unary(req(vec![], hang1)).await });
        // Its handler started (a request seen by the origin's recording layer may
        // not have reached the handler yet, and a reset before then counts nothing).
        assert!(
            s.origin
                .recorder()
                .wait_counts(WAIT, |c| c.started >= 1)
                .await,
            "the hanging call reached the origin's handler"
        );
        assert!(!call.is_finished(), "hanging call must not complete");
        call.abort();
        assert!(
            s.origin.wait_cancelled(1, WAIT).await,
            "origin saw no cancellation"
        );

        // A hanging bidi stream dropped by the client.
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        tx.send(req(vec![], hang.clone())).await.unwrap();
        let out = c
            .bidi(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
            .unwrap();
        assert!(s.origin.wait_requests(2, WAIT).await);
        drop(out);
        drop(tx);
        assert!(
            s.origin.wait_cancelled(2, WAIT).await,
            "bidi cancel not seen"
        );
        assert_eq!(s.origin.counts().finished, 0);

        // Deadline propagation: the origin sees grpc-timeout no larger than asked.
        // (Long enough for the call to reach the origin before tonic gives up.)
        let budget = Duration::from_secs(2);
        let mut r = tonic::Request::new(req(vec![], hang));
        r.set_timeout(budget);
        let st = e2e::bounded("deadline call", c.unary(r)).await.unwrap_err();
        // tonic's client enforces the deadline itself; the origin also drops the
        // handler when its own grpc-timeout fires.
        assert!(
            matches!(st.code(), Code::DeadlineExceeded | Code::Cancelled),
            "got {st:?}"
        );
        assert!(
            s.origin.wait_requests(3, WAIT).await,
            "the deadline call reached the origin"
        );
        let seen = s.origin.last_request().unwrap();
        let t = seen.grpc_timeout().expect("origin saw grpc-timeout");
        assert!(t <= budget && t > budget / 4, "{t:?}");
        assert!(s.origin.wait_cancelled(3, WAIT).await);
    });
}

#[test]
fn cancellation_and_deadline_h2c() {
    cancellation_and_deadline(false);
}

#[test]
fn cancellation_and_deadline_tls() {
    cancellation_and_deadline(true);
}

#[test]
fn tls_client_with_wrong_domain_fails() {
    let s = setup(true);
    e2e::run(async {
        let tls = ClientTls::new(&s._pki, "other.test");
        let r = e2e::bounded("connect", e2e::connect(s.origin.addr(), Some(&tls))).await;
        let err = match r {
            Err(e) => format!("{e:?}"),
            Ok(ch) => {
                let st = e2e::echo_client(ch)
                    .unary(req(vec![], Default::default()))
                    .await
                    .unwrap_err();
                format!("{st:?}")
            }
        };
        assert!(
            err.contains("NotValidForName") || err.to_lowercase().contains("certificate"),
            "{err}"
        );
        assert_eq!(s.origin.counts().started, 0);
    });
}

#[test]
fn pki_files_exist_and_are_removed() {
    let pki = TestPki::new();
    let leaf = pki.leaf(&["a.test", "127.0.0.1"]);
    let dir = pki.dir().to_path_buf();
    assert!(std::fs::read_to_string(pki.ca_path())
        .unwrap()
        .contains("BEGIN CERTIFICATE"));
    assert_eq!(
        std::fs::read_to_string(&leaf.cert_path).unwrap(),
        leaf.cert_pem
    );
    assert!(std::fs::read_to_string(&leaf.key_path)
        .unwrap()
        .contains("PRIVATE KEY"));
    drop(pki);
    assert!(!dir.exists());
}

#[test]
fn grpc_timeout_parser() {
    assert_eq!(
        e2e::parse_grpc_timeout("100m"),
        Some(Duration::from_millis(100))
    );
    assert_eq!(e2e::parse_grpc_timeout("2S"), Some(Duration::from_secs(2)));
    assert_eq!(
        e2e::parse_grpc_timeout("1H"),
        Some(Duration::from_secs(3600))
    );
    assert_eq!(e2e::parse_grpc_timeout("5n"), Some(Duration::from_nanos(5)));
    assert_eq!(
        e2e::parse_grpc_timeout("123456789m"),
        None,
        "more than 8 digits"
    );
    assert_eq!(e2e::parse_grpc_timeout("m"), None);
    assert_eq!(e2e::parse_grpc_timeout("10x"), None);
    assert_eq!(e2e::parse_grpc_timeout("-1S"), None);
}

/// 1,000 concurrent delayed unary calls over two connections, and a
/// SETTINGS_MAX_CONCURRENT_STREAMS limit the origin advertises.
#[test]
fn many_concurrent_calls_and_stream_limit() {
    let mut opts = OriginOpts::h2c();
    opts.max_concurrent_streams = Some(100);
    let origin = TestOrigin::start(opts);
    e2e::run(async {
        let chans = [
            e2e::connect(origin.addr(), None).await.unwrap(),
            e2e::connect(origin.addr(), None).await.unwrap(),
        ];
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..1000u32 {
            let mut c = e2e::echo_client(chans[(i % 2) as usize].clone());
            tasks.spawn(async move {
                let b = pb::Behavior {
                    delay_ms: 20,
                    ..Default::default()
                };
                let r = c.unary(req(i.to_be_bytes().to_vec(), b)).await.unwrap();
                assert_eq!(r.into_inner().payload, i.to_be_bytes());
            });
        }
        let mut done = 0;
        while let Some(r) =
            e2e::bounded_for("1000 calls", Duration::from_secs(60), tasks.join_next()).await
        {
            r.unwrap();
            done += 1;
        }
        assert_eq!(done, 1000);
        let c = origin.counts();
        assert_eq!((c.started, c.finished, c.cancelled), (1000, 1000, 0));
        assert_eq!(origin.connections(), 2);

        // The advertised limit is visible to a raw h2 client.
        let cl = e2e::raw_h2c(origin.addr()).await.unwrap();
        let mut send = e2e::bounded("ready", cl.send.ready()).await.unwrap();
        let (resp, _) = send
            .send_request(e2e::grpc_request("o", "/x/y", &[]), true)
            .unwrap();
        // Once the answer is in, the origin's SETTINGS were read.
        let resp = e2e::bounded("unknown method", resp).await.unwrap();
        assert_eq!(resp.headers().get("grpc-status").unwrap(), "12");
        assert_eq!(send.current_max_send_streams(), 100);
    });
}

/// The raw h2 TLS client against the tonic origin: custom headers and
/// `:authority` are recorded, and its RST_STREAM(CANCEL) is observed as a
/// cancellation.
#[test]
fn raw_tls_client_headers_and_reset() {
    let s = setup(true);
    e2e::run(async {
        let mut cl = e2e::raw_h2_tls(s.origin.addr(), &s._pki, "origin.test")
            .await
            .expect("raw TLS h2 client");
        let head = e2e::grpc_request(
            "origin.test:443",
            "/ringedge.test.Echo/Unary",
            &[("x-forwarded-for", "192.0.2.7"), ("grpc-timeout", "30S")],
        );
        let hang = req(
            vec![],
            pb::Behavior {
                hang: true,
                ..Default::default()
            },
        );
        let (_resp, mut body) = cl.send.send_request(head, false).unwrap();
        body.send_data(e2e::encode_grpc(&hang), true).unwrap();
        assert!(s.origin.wait_requests(1, WAIT).await);
        let seen = s.origin.last_request().unwrap();
        assert_eq!(seen.authority.as_deref(), Some("origin.test:443"));
        assert_eq!(seen.header("x-forwarded-for"), Some("192.0.2.7"));
        assert_eq!(seen.grpc_timeout(), Some(Duration::from_secs(30)));
        let rec = s.origin.recorder();
        assert!(rec.wait_counts(WAIT, |c| c.started == 1).await);
        body.send_reset(h2::Reason::CANCEL);
        assert!(
            s.origin.wait_cancelled(1, WAIT).await,
            "RST_STREAM not observed"
        );
        assert_eq!(s.origin.counts().finished, 0);
    });
}
