//! ringedge's gRPC semantics under failure, end to end with peers we did not write (tonic and
//! the `h2` crate as clients, tonic and `h2`-based raw origins), through TLS: cancellation and
//! deadlines reaching the origin, edge-produced statuses (UNAVAILABLE for origin connect, ALPN
//! and certificate failures; UNIMPLEMENTED for the gRPC switch and missing routes;
//! PERMISSION_DENIED for an SNI/`:authority` mismatch), early trailers followed by
//! RST_STREAM(NO_ERROR), retries of what never started (REFUSED_STREAM, GOAWAY), ALPN refusal
//! of clients, and flow control as the backpressure. Issue 3 §6, DESIGN §3.
//!
//! Every wait is bounded; no assertion depends on timing. One proxy at a time (`e2e::serial`).

use std::time::Duration;

use bytes::Bytes;
use ringedge_codec::grpc::percent_decode_message;
use ringedge_e2e::{
    self as e2e, pattern, pb, ClientTls, Edge, OriginOpts, RawMode, RawOrigin, TestOrigin, TestPki,
    WAIT,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;

const EDGE_NAMES: &[&str] = &["api.test", "other.test", "localhost"];
const DOMAIN: &str = "api.test";
/// RST_STREAM error code CANCEL (RFC 9113 §7).
const CANCEL: u32 = 0x8;

fn req(payload: Vec<u8>, behavior: Option<pb::Behavior>) -> pb::EchoRequest {
    pb::EchoRequest { payload, behavior }
}

fn hang() -> Option<pb::Behavior> {
    Some(pb::Behavior {
        hang: true,
        ..Default::default()
    })
}

/// An edge with a catch-all host routing everything to the origin at `url`.
fn edge_to(pki: &TestPki, url: &str, tls: Option<(&std::path::Path, &str)>) -> Edge {
    edge_with(pki, url, tls, "", "")
}

fn edge_with(
    pki: &TestPki,
    url: &str,
    tls: Option<(&std::path::Path, &str)>,
    host_extra: &str,
    more: &str,
) -> Edge {
    let leaf = pki.leaf(EDGE_NAMES);
    Edge::start(
        &leaf,
        &format!(
            "{more}\n{}{}",
            e2e::origin_toml("o", url, tls),
            e2e::catch_all_toml("o", host_extra)
        ),
    )
}

async fn client(
    edge: &Edge,
    pki: &TestPki,
) -> pb::echo_client::EchoClient<tonic::transport::Channel> {
    let tls = ClientTls::new(pki, DOMAIN);
    let ch = e2e::bounded("connect to the edge", e2e::connect(edge.addr(), Some(&tls)))
        .await
        .expect("TLS connect to the edge");
    e2e::echo_client(ch)
}

/// A unary call that must fail; returns its status.
async fn failing_unary(
    c: &mut pb::echo_client::EchoClient<tonic::transport::Channel>,
) -> tonic::Status {
    e2e::bounded("unary", c.unary(req(b"x".to_vec(), None)))
        .await
        .expect_err("the call must fail")
}

// ----- cancellation and deadlines ------------------------------------------------------------

#[test]
fn tonic_client_cancellation_reaches_the_origin() {
    let _g = e2e::serial();
    let pki = TestPki::new();
    let origin = TestOrigin::start(OriginOpts::h2c());
    let edge = edge_to(&pki, &format!("h2c://{}", origin.addr()), None);
    e2e::run(async {
        let c = client(&edge, &pki).await;
        // A unary call the origin never answers; the client gives up (drops the call).
        let mut c1 = c.clone();
        let call = tokio::spawn(async move { c1.unary(req(vec![1], hang())).await });
        assert!(
            origin.wait_requests(1, WAIT).await,
            "the call reached the origin"
        );
        assert!(
            origin
                .recorder()
                .wait_counts(WAIT, |c| c.started >= 1)
                .await,
            "the origin handler started: {:?}",
            origin.counts()
        );
        call.abort();
        assert!(
            origin.wait_cancelled(1, WAIT).await,
            "the origin observed the cancellation: {:?}",
            origin.counts()
        );

        // A server stream abandoned after its first message.
        let b = pb::Behavior {
            stream_count: 1000,
            response_size: 100,
            delay_ms: 20,
            ..Default::default()
        };
        let mut c2 = c.clone();
        let mut s = e2e::bounded("server stream", c2.server_stream(req(vec![], Some(b))))
            .await
            .expect("stream starts")
            .into_inner();
        let first = e2e::bounded("first message", s.message()).await.unwrap();
        assert_eq!(first.expect("one message").seq, 0);
        drop(s);
        assert!(
            origin.wait_cancelled(2, WAIT).await,
            "the origin observed the second cancellation: {:?}",
            origin.counts()
        );
        // Both streams gone too (a leaked one never goes; a published snapshot may lag).
        edge.wait_metrics("two client resets and no stream left", |m| {
            m.client_resets >= 2 && m.streams_active == 0
        })
        .await;
        assert_eq!(origin.counts().finished, 0);
    });
}

#[test]
fn raw_h2_client_rst_stream_cancel_reaches_the_origin_as_cancel() {
    let _g = e2e::serial();
    let pki = TestPki::new();
    let origin = RawOrigin::start(RawMode::Hang, None);
    let edge = edge_to(&pki, &format!("h2c://{}", origin.addr()), None);
    e2e::run(async {
        let mut cl = e2e::raw_h2_tls(edge.addr(), &pki, DOMAIN)
            .await
            .expect("raw h2 over TLS to the edge");
        let head = e2e::grpc_request(DOMAIN, "/ringedge.test.Echo/Bidi", &[]);
        let (_resp, mut body) = cl.send.send_request(head, false).unwrap();
        body.send_data(e2e::encode_grpc(&req(vec![7; 100], None)), false)
            .unwrap();
        assert!(
            origin.wait_for(WAIT, |r| r.requests.len() == 1).await,
            "the request reached the origin"
        );
        body.send_reset(h2::Reason::CANCEL);
        assert!(
            origin
                .wait_for(WAIT, |r| !r.resets_received.is_empty())
                .await,
            "the origin got a reset"
        );
        assert_eq!(origin.record().resets_received, [CANCEL]);
        edge.wait_metrics("a client reset", |m| m.client_resets == 1)
            .await;
    });
}

#[test]
fn deadline_expiry_gives_deadline_exceeded_and_cancels_the_origin() {
    let _g = e2e::serial();
    let pki = TestPki::new();
    // The raw origin never answers (tonic's server would enforce grpc-timeout itself).
    let origin = RawOrigin::start(RawMode::Hang, None);
    // tonic's client enforces its own grpc-timeout too (CANCELLED "Timeout expired"), so for
    // tonic the edge's deadline must be the earlier one: the route caps the client's budget.
    // The cap leaves time to open the origin connection and forward the call before it
    // expires however slow the machine (the origin must see the request to be cancelled).
    let cap = Duration::from_secs(2);
    let edge = edge_with(&pki, &format!("h2c://{}", origin.addr()), None, "", "");
    let capped = {
        let leaf = pki.leaf(EDGE_NAMES);
        Edge::start(
            &leaf,
            &format!(
                "{}{}max_deadline_ms = {}\n",
                e2e::origin_toml("o", &format!("h2c://{}", origin.addr()), None),
                e2e::catch_all_toml("o", ""),
                cap.as_millis()
            ),
        )
    };
    e2e::run(async {
        // tonic, deadline 30 s, shortened by the route to 2 s.
        let client_budget = Duration::from_secs(30);
        let mut c = client(&capped, &pki).await;
        let mut r = tonic::Request::new(req(b"late".to_vec(), None));
        r.set_timeout(client_budget);
        let st = e2e::bounded("deadline", c.unary(r)).await.unwrap_err();
        assert_eq!(st.code(), Code::DeadlineExceeded, "{st:?}");
        assert_eq!(st.message(), "deadline exceeded");
        assert!(
            origin
                .wait_for(WAIT, |r| r.resets_received.len() == 1)
                .await,
            "the origin got RST_STREAM"
        );
        let rec = origin.record();
        assert_eq!(rec.resets_received, [CANCEL]);
        // The origin saw the remaining budget, never more than the client's (nor the cap).
        let seen = rec.requests[0]
            .2
            .get("grpc-timeout")
            .expect("grpc-timeout forwarded");
        let seen = e2e::parse_grpc_timeout(seen.to_str().unwrap()).expect("valid grpc-timeout");
        assert!(seen <= cap && !seen.is_zero(), "origin saw {seen:?}");
        let m = capped
            .wait_metrics("a deadline", |m| m.deadlines_exceeded == 1)
            .await;
        assert_eq!(m.edge_status[Code::DeadlineExceeded as usize], 1);

        // A raw h2 client (which enforces nothing itself) with grpc-timeout 2S, no cap:
        // a Trailers-Only DEADLINE_EXCEEDED on the wire.
        let mut cl = e2e::raw_h2_tls(edge.addr(), &pki, DOMAIN).await.unwrap();
        let head = e2e::grpc_request(
            DOMAIN,
            "/ringedge.test.Echo/Unary",
            &[("grpc-timeout", "2S")],
        );
        let (resp, mut body) = cl.send.send_request(head, false).unwrap();
        body.send_data(e2e::encode_grpc(&req(vec![1], None)), true)
            .unwrap();
        let resp = e2e::bounded("deadline answer", resp).await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers().get("grpc-status").unwrap(), "4");
        assert_eq!(
            resp.headers().get("content-type").unwrap(),
            "application/grpc"
        );
        assert!(
            resp.body().is_end_stream(),
            "Trailers-Only: END_STREAM on the HEADERS"
        );
        assert!(
            origin
                .wait_for(WAIT, |r| r.resets_received.len() == 2)
                .await,
            "the origin got a second RST_STREAM"
        );
        let rec = origin.record();
        assert_eq!(rec.resets_received, [CANCEL, CANCEL]);
        let seen = rec.requests[1]
            .2
            .get("grpc-timeout")
            .expect("grpc-timeout forwarded");
        let seen = e2e::parse_grpc_timeout(seen.to_str().unwrap()).expect("valid grpc-timeout");
        assert!(
            seen <= Duration::from_secs(2) && !seen.is_zero(),
            "origin saw {seen:?}"
        );
        edge.wait_metrics("a deadline", |m| m.deadlines_exceeded == 1)
            .await;
    });
}

#[test]
fn origin_sees_a_grpc_timeout_within_the_clients_and_the_routes_caps() {
    let _g = e2e::serial();
    let pki = TestPki::new();
    let origin = TestOrigin::start(OriginOpts::h2c());
    let leaf = pki.leaf(EDGE_NAMES);
    let url = format!("h2c://{}", origin.addr());
    // Echo calls: no cap; Greeter: a 5 s cap and a 5 s default for calls without a deadline.
    // The client asks for 30 s. Every call must finish within its budget however slow the
    // machine, and the budget the origin sees (what is left of it) must still tell the caps
    // apart: the client's 30 s minus the time in transit stays above the 5 s cap.
    let cap = Duration::from_secs(5);
    let client_budget = Duration::from_secs(30);
    let sections = format!(
        "{}[[hosts]]\nnames = [\"*\"]\n\n[[hosts.routes]]\nservice = \"ringedge.test.Echo\"\norigin = \"o\"\n\n\
         [[hosts.routes]]\nservice = \"helloworld.Greeter\"\norigin = \"o\"\nmax_deadline_ms = {ms}\ndefault_deadline_ms = {ms}\n",
        e2e::origin_toml("o", &url, None),
        ms = cap.as_millis()
    );
    let edge = Edge::start(&leaf, &sections);
    e2e::run(async {
        let tls = ClientTls::new(&pki, DOMAIN);
        let ch = e2e::connect(edge.addr(), Some(&tls)).await.unwrap();
        let mut echo = e2e::echo_client(ch.clone());
        let mut greeter = e2e::greeter_client(ch);

        let mut r = tonic::Request::new(req(vec![], None));
        r.set_timeout(client_budget);
        e2e::bounded("unary", echo.unary(r)).await.unwrap();
        let t = origin
            .last_request()
            .unwrap()
            .grpc_timeout()
            .expect("grpc-timeout");
        assert!(t <= client_budget && t > cap, "{t:?}");

        // No deadline from the client, none configured: none invented.
        e2e::bounded("unary", echo.unary(req(vec![], None)))
            .await
            .unwrap();
        assert_eq!(origin.last_request().unwrap().header("grpc-timeout"), None);

        // The route's cap shortens the client's 30 s.
        let mut r = tonic::Request::new(pb::HelloRequest { name: "a".into() });
        r.set_timeout(client_budget);
        e2e::bounded("hello", greeter.say_hello(r)).await.unwrap();
        let t = origin
            .last_request()
            .unwrap()
            .grpc_timeout()
            .expect("grpc-timeout");
        assert!(t <= cap && !t.is_zero(), "{t:?}");

        // The route's default applies to a call without a deadline.
        e2e::bounded(
            "hello",
            greeter.say_hello(pb::HelloRequest { name: "b".into() }),
        )
        .await
        .unwrap();
        let t = origin
            .last_request()
            .unwrap()
            .grpc_timeout()
            .expect("grpc-timeout");
        assert!(t <= cap && !t.is_zero(), "{t:?}");
    });
}

// ----- origin failures -----------------------------------------------------------------------

#[test]
fn origin_down_gives_unavailable_naming_the_connect_failure() {
    let _g = e2e::serial();
    let pki = TestPki::new();
    let dead = e2e::closed_port();
    let edge = edge_to(&pki, &format!("h2c://{dead}"), None);
    e2e::run(async {
        let mut c = client(&edge, &pki).await;
        let st = failing_unary(&mut c).await;
        assert_eq!(st.code(), Code::Unavailable, "{st:?}");
        assert!(st.message().contains("origin o unavailable"), "{st:?}");
        assert!(
            st.message().contains(&format!("connect to {dead} failed")),
            "{st:?}"
        );
        let m = edge
            .wait_metrics("a failed connect", |m| m.origin_connect_failed >= 1)
            .await;
        assert_eq!(m.edge_status[Code::Unavailable as usize], 1);
    });
}

#[test]
fn origin_connection_lost_mid_call_gives_unavailable() {
    let _g = e2e::serial();
    let pki = TestPki::new();
    let origin = TestOrigin::start(OriginOpts::h2c());
    let edge = edge_to(&pki, &format!("h2c://{}", origin.addr()), None);
    e2e::run(async {
        let mut c = client(&edge, &pki).await;
        let call = tokio::spawn(async move { c.unary(req(vec![1], hang())).await });
        assert!(
            origin
                .recorder()
                .wait_counts(WAIT, |c| c.started >= 1)
                .await,
            "the call reached the origin's handler"
        );
        // The origin goes away abruptly (its runtime is dropped with the connection open).
        drop(origin);
        let st = e2e::bounded("the call's end", call)
            .await
            .expect("call task")
            .unwrap_err();
        assert_eq!(st.code(), Code::Unavailable, "{st:?}");
        assert!(
            st.message().contains("origin o connection closed"),
            "{st:?}"
        );
    });
}

#[test]
fn origin_closing_before_its_settings_gives_unavailable() {
    // An origin that accepts TCP and closes at once: calls wait for its SETTINGS, then fail as
    // a failed connect, naming it (no call is left waiting, no reconnect loop).
    let _g = e2e::serial();
    let pki = TestPki::new();
    e2e::run(async {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let accepted = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counter = accepted.clone();
        tokio::spawn(async move {
            while let Ok((sock, _)) = l.accept().await {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                drop(sock);
            }
        });
        let edge = edge_to(&pki, &format!("h2c://{addr}"), None);
        let mut c = client(&edge, &pki).await;
        let st = failing_unary(&mut c).await;
        assert_eq!(st.code(), Code::Unavailable, "{st:?}");
        assert!(st.message().contains("origin o"), "{st:?}");
        assert!(st.message().contains("closed"), "{st:?}");
        let m = edge
            .wait_metrics("the failed connect and no stream left", |m| {
                m.origin_connect_failed >= 1 && m.streams_active == 0
            })
            .await;
        assert_eq!(m.edge_status[Code::Unavailable as usize], 1, "{m:?}");
        assert!(accepted.load(std::sync::atomic::Ordering::SeqCst) >= 1);
        drop(edge);
    });
}

#[test]
fn origin_offering_only_http11_alpn_gives_unavailable_naming_alpn_h2() {
    let _g = e2e::serial();
    let pki = TestPki::new();
    let origin = RawOrigin::http11_only_tls(&pki.leaf(&["origin.test"]));
    let edge = edge_to(
        &pki,
        &format!("https://{}", origin.addr()),
        Some((pki.ca_path(), "origin.test")),
    );
    e2e::run(async {
        let mut c = client(&edge, &pki).await;
        let st = failing_unary(&mut c).await;
        assert_eq!(st.code(), Code::Unavailable, "{st:?}");
        assert!(st.message().contains("ALPN"), "{st:?}");
        assert!(st.message().contains("h2"), "{st:?}");
        assert!(
            origin.wait_for(WAIT, |r| !r.tls_failures.is_empty()).await,
            "the origin refused the handshake"
        );
        edge.wait_metrics("a failed connect", |m| m.origin_connect_failed >= 1)
            .await;
    });
}

#[test]
fn origin_certificate_problems_give_unavailable_naming_them() {
    let _g = e2e::serial();
    let pki = TestPki::new();
    // Signed by another CA than the one the edge trusts.
    let other_ca = TestPki::new();
    let stranger = TestOrigin::start(OriginOpts::tls(&other_ca.leaf(&["origin.test"])));
    // Signed by the trusted CA, but for another name than the configured SNI.
    let misnamed = TestOrigin::start(OriginOpts::tls(&pki.leaf(&["elsewhere.test"])));
    let leaf = pki.leaf(EDGE_NAMES);
    let sections = format!(
        "{}{}[[hosts]]\nnames = [\"*\"]\n\n\
         [[hosts.routes]]\nservice = \"ringedge.test.Echo\"\norigin = \"stranger\"\n\n\
         [[hosts.routes]]\nservice = \"helloworld.Greeter\"\norigin = \"misnamed\"\n",
        e2e::origin_toml(
            "stranger",
            &format!("https://{}", stranger.addr()),
            Some((pki.ca_path(), "origin.test"))
        ),
        e2e::origin_toml(
            "misnamed",
            &format!("https://{}", misnamed.addr()),
            Some((pki.ca_path(), "origin.test"))
        ),
    );
    let edge = Edge::start(&leaf, &sections);
    e2e::run(async {
        let tls = ClientTls::new(&pki, DOMAIN);
        let ch = e2e::connect(edge.addr(), Some(&tls)).await.unwrap();
        let st = failing_unary(&mut e2e::echo_client(ch.clone())).await;
        assert_eq!(st.code(), Code::Unavailable, "{st:?}");
        assert!(
            st.message().contains("origin stranger unavailable"),
            "{st:?}"
        );
        assert!(st.message().contains("certificate"), "{st:?}");

        let st = e2e::bounded(
            "hello",
            e2e::greeter_client(ch).say_hello(pb::HelloRequest { name: "x".into() }),
        )
        .await
        .unwrap_err();
        assert_eq!(st.code(), Code::Unavailable, "{st:?}");
        assert!(
            st.message().contains("origin misnamed unavailable"),
            "{st:?}"
        );
        assert!(st.message().contains("certificate"), "{st:?}");
        assert!(stranger.requests().is_empty() && misnamed.requests().is_empty());
        edge.wait_metrics("two failed connects", |m| m.origin_connect_failed >= 2)
            .await;
    });
}

// ----- edge policy: gRPC switch, routes, SNI --------------------------------------------------

#[test]
fn grpc_switched_off_gives_unimplemented_or_the_configured_status() {
    let _g = e2e::serial();
    let pki = TestPki::new();
    let origin = TestOrigin::start(OriginOpts::h2c());
    let leaf = pki.leaf(EDGE_NAMES);
    let sections = format!(
        "{}[[hosts]]\nnames = [\"api.test\"]\ngrpc = false\n\n[[hosts.routes]]\nprefix = \"/\"\norigin = \"o\"\n\n\
         [[hosts]]\nnames = [\"other.test\"]\ngrpc = false\ngrpc_off_status = \"permission_denied\"\n\n\
         [[hosts.routes]]\nprefix = \"/\"\norigin = \"o\"\n",
        e2e::origin_toml("o", &format!("h2c://{}", origin.addr()), None)
    );
    let edge = Edge::start(&leaf, &sections);
    e2e::run(async {
        let st = failing_unary(&mut client(&edge, &pki).await).await;
        assert_eq!(st.code(), Code::Unimplemented, "{st:?}");
        assert_eq!(st.message(), "gRPC is switched off for host api.test");

        let tls = ClientTls::new(&pki, "other.test");
        let ch = e2e::connect(edge.addr(), Some(&tls)).await.unwrap();
        let st = failing_unary(&mut e2e::echo_client(ch)).await;
        assert_eq!(st.code(), Code::PermissionDenied, "{st:?}");
        assert_eq!(st.message(), "gRPC is switched off for host other.test");

        assert!(origin.requests().is_empty(), "nothing was forwarded");
        let m = edge
            .wait_metrics("two edge statuses", |m| m.grpc_requests == 2)
            .await;
        assert_eq!(m.edge_status[Code::Unimplemented as usize], 1);
        assert_eq!(m.edge_status[Code::PermissionDenied as usize], 1);
    });
}

#[test]
fn no_route_gives_unimplemented() {
    let _g = e2e::serial();
    let pki = TestPki::new();
    let origin = TestOrigin::start(OriginOpts::h2c());
    let leaf = pki.leaf(EDGE_NAMES);
    let sections = format!(
        "{}[[hosts]]\nnames = [\"api.test\"]\n\n[[hosts.routes]]\nmethod = \"/helloworld.Greeter/SayHello\"\norigin = \"o\"\n",
        e2e::origin_toml("o", &format!("h2c://{}", origin.addr()), None)
    );
    let edge = Edge::start(&leaf, &sections);
    e2e::run(async {
        let tls = ClientTls::new(&pki, DOMAIN);
        let ch = e2e::connect(edge.addr(), Some(&tls)).await.unwrap();
        let st = failing_unary(&mut e2e::echo_client(ch.clone())).await;
        assert_eq!(st.code(), Code::Unimplemented, "{st:?}");
        assert_eq!(
            st.message(),
            "no route for /ringedge.test.Echo/Unary on host api.test"
        );
        // The routed method on the same connection works.
        let r = e2e::bounded(
            "hello",
            e2e::greeter_client(ch).say_hello(pb::HelloRequest { name: "r".into() }),
        )
        .await
        .unwrap();
        assert_eq!(r.into_inner().message, "Hello r");
        assert_eq!(origin.requests().len(), 1);
    });
}

#[test]
fn sni_and_authority_for_different_hosts_give_permission_denied() {
    let _g = e2e::serial();
    let pki = TestPki::new();
    let origin = TestOrigin::start(OriginOpts::h2c());
    let leaf = pki.leaf(EDGE_NAMES);
    let o = e2e::origin_toml("o", &format!("h2c://{}", origin.addr()), None);
    let sections = format!(
        "{o}[[hosts]]\nnames = [\"api.test\"]\n\n[[hosts.routes]]\nprefix = \"/\"\norigin = \"o\"\n\n\
         [[hosts]]\nnames = [\"other.test\"]\n\n[[hosts.routes]]\nprefix = \"/\"\norigin = \"o\"\n"
    );
    let edge = Edge::start(&leaf, &sections);
    e2e::run(async {
        // TLS SNI api.test, :authority other.test.
        let tls = ClientTls::new(&pki, DOMAIN);
        let ep = e2e::endpoint(edge.addr(), Some(&tls)).origin(
            format!("https://other.test:{}", edge.addr().port())
                .parse()
                .unwrap(),
        );
        let ch = e2e::bounded("connect", ep.connect()).await.unwrap();
        let st = failing_unary(&mut e2e::echo_client(ch)).await;
        assert_eq!(st.code(), Code::PermissionDenied, "{st:?}");
        assert!(st.message().contains("api.test"), "{st:?}");
        assert!(st.message().contains("other.test"), "{st:?}");
        assert!(origin.requests().is_empty());
        // Matching names pass.
        let mut c = client(&edge, &pki).await;
        e2e::bounded("unary", c.unary(req(vec![], None)))
            .await
            .unwrap();
        assert_eq!(origin.requests().len(), 1);
    });
}

// ----- early trailers, retries ---------------------------------------------------------------

/// How an [`H2Origin`] answers every stream.
#[derive(Clone, Debug)]
enum Answer {
    /// At once, while the request body is still open: HEADERS, then trailers (`grpc-status`,
    /// `grpc-message`), then every handle of the stream is dropped, so h2 queues
    /// RST_STREAM(NO_ERROR) right behind the trailers, in the same write (RFC 9113 §8.1, gRPC
    /// PROTOCOL-HTTP2.md). The harness's `RawMode::EarlyTrailersThenReset` cannot do this with
    /// a zero pause: h2's `send_reset` discards the HEADERS and trailers still queued, and only
    /// the RST_STREAM(NO_ERROR) goes out (seen on the wire; see
    /// `origin_reset_no_error_without_a_response_gives_internal`).
    EarlyTrailersSameWrite { status: u32, message: String },
    /// HEADERS and one gRPC message, then (after a pause that lets h2 flush them: its
    /// `send_reset` discards frames still queued) RST_STREAM with this code.
    ResetAfterFirstMessage(h2::Reason),
}

/// An origin built on the `h2` crate's server, on its own thread and runtime.
struct H2Origin {
    addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

async fn answer(
    req: http::Request<h2::RecvStream>,
    mut respond: h2::server::SendResponse<Bytes>,
    how: Answer,
) {
    let head = http::Response::builder()
        .status(200)
        .header("content-type", "application/grpc")
        .body(())
        .unwrap();
    let Ok(mut send) = respond.send_response(head, false) else {
        return;
    };
    match how {
        Answer::EarlyTrailersSameWrite { status, message } => {
            let mut t = http::HeaderMap::new();
            t.insert("grpc-status", status.into());
            t.insert(
                "grpc-message",
                e2e::percent_encode(&message).parse().unwrap(),
            );
            let _ = send.send_trailers(t);
            drop((send, respond, req));
        }
        Answer::ResetAfterFirstMessage(reason) => {
            let first = pb::EchoResponse {
                payload: b"first".to_vec(),
                seq: 0,
            };
            let _ = send.send_data(e2e::encode_grpc(&first), false);
            tokio::time::sleep(Duration::from_millis(100)).await;
            send.send_reset(reason);
            drop(req);
        }
    }
}

impl H2Origin {
    fn start(how: Answer) -> Self {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let addr = l.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let l = tokio::net::TcpListener::from_std(l).unwrap();
                let serve = async {
                    while let Ok((sock, _)) = l.accept().await {
                        let how = how.clone();
                        tokio::spawn(async move {
                            let Ok(mut conn) = h2::server::handshake(sock).await else {
                                return;
                            };
                            while let Some(Ok((req, respond))) = conn.accept().await {
                                tokio::spawn(answer(req, respond, how.clone()));
                            }
                        });
                    }
                };
                tokio::select! {
                    _ = serve => {}
                    _ = stopped => {}
                }
            });
        });
        H2Origin {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for H2Origin {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn origin_rst_stream_mid_response_reaches_the_client() {
    // Cancellation the other way: the origin resets a started response; the edge mirrors it.
    let _g = e2e::serial();
    let pki = TestPki::new();
    let origin = H2Origin::start(Answer::ResetAfterFirstMessage(h2::Reason::CANCEL));
    let edge = edge_to(&pki, &format!("h2c://{}", origin.addr), None);
    e2e::run(async {
        let mut c = client(&edge, &pki).await;
        let mut s = e2e::bounded("server stream", c.server_stream(req(vec![], None)))
            .await
            .expect("the response starts")
            .into_inner();
        let first = e2e::bounded("first message", s.message())
            .await
            .expect("the first message")
            .expect("one message");
        assert_eq!(first.payload, b"first");
        let st = e2e::bounded("the reset", s.message()).await.unwrap_err();
        assert_eq!(st.code(), Code::Cancelled, "{st:?}");
        let m = edge
            .wait_metrics("an origin reset", |m| m.origin_resets == 1)
            .await;
        assert_eq!(m.edge_status, [0; 17], "mirrored, not made up: {m:?}");
    });
}

/// tonic (client stream with its body still open; unary) and the raw h2 client through the
/// edge in front of an origin that answers early and resets with NO_ERROR: all see the
/// origin's status and message, and the edge makes up no status.
async fn early_trailers_reach_the_client(edge: &Edge, pki: &TestPki, message: &str) {
    let mut c = client(edge, pki).await;
    let (tx, rx) = mpsc::channel::<pb::EchoRequest>(1);
    tx.send(req(vec![1; 10], None)).await.unwrap();
    let st = e2e::bounded("early trailers", c.client_stream(ReceiverStream::new(rx)))
        .await
        .unwrap_err();
    assert_eq!(st.code(), Code::PermissionDenied, "{st:?}");
    assert_eq!(st.message(), message);
    drop(tx);
    let st = failing_unary(&mut c).await;
    assert_eq!(st.code(), Code::PermissionDenied, "{st:?}");
    assert_eq!(st.message(), message);

    // The raw h2 client reads the origin's trailers on the wire.
    let mut cl = e2e::raw_h2_tls(edge.addr(), pki, DOMAIN).await.unwrap();
    let head = e2e::grpc_request(DOMAIN, "/ringedge.test.Echo/ClientStream", &[]);
    let (resp, mut body) = cl.send.send_request(head, false).unwrap();
    body.send_data(e2e::encode_grpc(&req(vec![2; 10], None)), false)
        .unwrap();
    let resp = e2e::bounded("response", resp)
        .await
        .expect("a response, not a reset");
    assert_eq!(resp.status(), 200);
    let mut rb = resp.into_body();
    let data = e2e::read_body(&mut rb, WAIT).await.expect("body");
    assert!(data.is_empty());
    let trailers = e2e::bounded("trailers", rb.trailers())
        .await
        .expect("trailers, not a reset")
        .expect("trailers present");
    assert_eq!(trailers.get("grpc-status").unwrap(), "7");
    let msg = trailers.get("grpc-message").unwrap().as_bytes();
    assert_eq!(percent_decode_message(msg), message);

    let m = edge
        .wait_metrics("three calls", |m| m.grpc_requests == 3)
        .await;
    assert_eq!(
        m.edge_status, [0; 17],
        "no status made up by the edge: {m:?}"
    );
}

#[test]
fn early_trailers_then_reset_no_error_in_the_same_write_keep_the_origin_status() {
    let _g = e2e::serial();
    let pki = TestPki::new();
    let message = "blocked early ü 100%";
    let origin = H2Origin::start(Answer::EarlyTrailersSameWrite {
        status: 7,
        message: message.into(),
    });
    let edge = edge_to(&pki, &format!("h2c://{}", origin.addr), None);
    e2e::run(early_trailers_reach_the_client(&edge, &pki, message));
}

#[test]
fn early_trailers_then_a_later_reset_no_error_keep_the_origin_status() {
    let _g = e2e::serial();
    let pki = TestPki::new();
    let message = "später ✗";
    let origin = RawOrigin::start(
        RawMode::EarlyTrailersThenReset {
            status: 7,
            message: message.into(),
            reset_after: Duration::from_millis(20),
        },
        None,
    );
    let edge = edge_to(&pki, &format!("h2c://{}", origin.addr()), None);
    e2e::run(async {
        early_trailers_reach_the_client(&edge, &pki, message).await;
        assert!(origin.record().early_trailers_before_body_end >= 2);
    });
}

#[test]
fn origin_reset_no_error_without_a_response_gives_internal() {
    // `RawMode::EarlyTrailersThenReset` with no pause puts only RST_STREAM(NO_ERROR) on the
    // wire (h2 drops the queued HEADERS and trailers). With no response at all, gRPC
    // PROTOCOL-HTTP2.md maps NO_ERROR to INTERNAL, and the edge says so.
    let _g = e2e::serial();
    let pki = TestPki::new();
    let origin = RawOrigin::start(
        RawMode::EarlyTrailersThenReset {
            status: 7,
            message: "never sent".into(),
            reset_after: Duration::ZERO,
        },
        None,
    );
    let edge = edge_to(&pki, &format!("h2c://{}", origin.addr()), None);
    e2e::run(async {
        let st = failing_unary(&mut client(&edge, &pki).await).await;
        assert_eq!(st.code(), Code::Internal, "{st:?}");
        assert_eq!(st.message(), "origin reset the stream (NO_ERROR)");
        let m = edge
            .wait_metrics("an origin reset", |m| m.origin_resets == 1)
            .await;
        assert_eq!(m.edge_status[Code::Internal as usize], 1);
    });
}

#[test]
fn refused_stream_is_retried_once_and_the_call_succeeds() {
    let _g = e2e::serial();
    let pki = TestPki::new();
    let origin = RawOrigin::start(RawMode::RefuseStreams { streams: 1 }, None);
    let edge = edge_to(&pki, &format!("h2c://{}", origin.addr()), None);
    e2e::run(async {
        let mut c = client(&edge, &pki).await;
        let r = e2e::bounded("unary", c.unary(req(pattern(3000), None)))
            .await
            .expect("the retried call succeeds");
        assert_eq!(r.into_inner().payload, pattern(3000));
        let rec = origin.record();
        assert_eq!(rec.refused, 1);
        assert_eq!(rec.echoed, 1);
        assert_eq!(rec.requests.len(), 2);
        let m = edge.wait_metrics("one retry", |m| m.retries >= 1).await;
        assert_eq!(m.retries, 1);
        assert_eq!(m.edge_status, [0; 17]);
    });
}

#[test]
fn origin_goaway_before_processing_is_retried_and_the_call_succeeds() {
    let _g = e2e::serial();
    let pki = TestPki::new();
    let origin = RawOrigin::start(
        RawMode::GoAway {
            last_stream_id: 0,
            connections: 1,
        },
        None,
    );
    let edge = edge_to(&pki, &format!("h2c://{}", origin.addr()), None);
    e2e::run(async {
        let mut c = client(&edge, &pki).await;
        let r = e2e::bounded("unary", c.unary(req(pattern(2000), None)))
            .await
            .expect("the retried call succeeds");
        assert_eq!(r.into_inner().payload, pattern(2000));
        let rec = origin.record();
        assert_eq!(rec.goaways_sent, 1);
        assert_eq!(rec.echoed, 1);
        assert_eq!(rec.connections, 2);
        let m = edge.wait_metrics("one retry", |m| m.retries >= 1).await;
        assert_eq!(m.retries, 1);
        assert_eq!(m.origin_goaways, 1);
        assert_eq!(m.edge_status, [0; 17]);
    });
}

// ----- client TLS, flow control ---------------------------------------------------------------

#[test]
fn a_client_without_alpn_h2_fails_the_handshake_and_is_counted() {
    let _g = e2e::serial();
    let pki = TestPki::new();
    let origin = TestOrigin::start(OriginOpts::h2c());
    let edge = edge_to(&pki, &format!("h2c://{}", origin.addr()), None);
    e2e::run(async {
        for alpn in [&[b"http/1.1".as_slice()][..], &[]] {
            let cfg = std::sync::Arc::new(pki.client_config(alpn));
            let err = e2e::tls_connect(edge.addr(), cfg, DOMAIN)
                .await
                .expect_err("the handshake must fail");
            // rustls names the alert it received: no_application_protocol (RFC 7301 §3.2).
            assert!(
                format!("{err}").contains("NoApplicationProtocol"),
                "offering {alpn:?}: {err}"
            );
        }
        let m = edge
            .wait_metrics("two ALPN refusals", |m| m.tls_no_alpn_h2 >= 2)
            .await;
        assert_eq!(m.tls_no_alpn_h2, 2);
        // A client offering h2 is served.
        let mut c = client(&edge, &pki).await;
        e2e::bounded("unary", c.unary(req(vec![], None)))
            .await
            .unwrap();
    });
}

#[test]
fn a_client_that_stops_reading_does_not_grow_edge_buffers_past_the_window() {
    // The edge's receive windows (towards client and origin alike): the smallest allowed.
    const EDGE_STREAM_WINDOW: u64 = 65_535;
    const EDGE_CONN_WINDOW: u64 = 131_072;
    // The client's windows (its SETTINGS and connection window).
    const CLIENT_WINDOW: u32 = 65_535;
    let _g = e2e::serial();
    let pki = TestPki::new();
    let origin = TestOrigin::start(OriginOpts::h2c());
    let limits = format!(
        "[limits.h2]\ninitial_stream_window = {EDGE_STREAM_WINDOW}\nconnection_window = {EDGE_CONN_WINDOW}\n"
    );
    let edge = edge_with(&pki, &format!("h2c://{}", origin.addr()), None, "", &limits);
    e2e::run(async {
        let tls = ClientTls::new(&pki, DOMAIN);
        let ep = e2e::endpoint(edge.addr(), Some(&tls))
            .initial_stream_window_size(CLIENT_WINDOW)
            .initial_connection_window_size(CLIENT_WINDOW);
        let ch = e2e::bounded("connect", ep.connect()).await.unwrap();
        let mut c = e2e::echo_client(ch);
        // 16 MiB offered by the origin as fast as flow control lets it.
        let b = pb::Behavior {
            stream_count: 1024,
            response_size: 16 * 1024,
            ..Default::default()
        };
        let resp = e2e::bounded("server stream", c.server_stream(req(vec![], Some(b))))
            .await
            .expect("the stream starts");
        // Never read the body. The client's window fills, then the edge's; then nothing moves.
        let m = edge
            .wait_metrics(
                "the client's window filled and the edge holding bytes",
                |m| m.bytes_to_client >= u64::from(CLIENT_WINDOW) - 5 && m.buffered_bytes > 0,
            )
            .await;
        assert!(
            m.bytes_to_client <= u64::from(CLIENT_WINDOW),
            "the edge sent past the client's window: {m:?}"
        );
        // Look a few more times (the counters are republished every 100 ms): the figures
        // stay within the windows however long the client does not read.
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let m = edge.metrics();
            assert!(
                m.buffered_bytes_peak <= EDGE_STREAM_WINDOW,
                "edge buffered {} bytes for one stream, window {EDGE_STREAM_WINDOW}: {m:?}",
                m.buffered_bytes_peak
            );
            assert!(
                m.bytes_to_client <= u64::from(CLIENT_WINDOW),
                "the edge sent past the client's window: {m:?}"
            );
        }
        assert_eq!(origin.counts().finished, 0, "the origin is held back");
        drop(resp);
        assert!(
            origin.wait_cancelled(1, WAIT).await,
            "dropping the stream cancels the origin: {:?}",
            origin.counts()
        );
        let m = edge
            .wait_metrics("the buffers released", |m| {
                m.buffered_bytes == 0 && m.streams_active == 0
            })
            .await;
        assert!(m.buffered_bytes_peak <= EDGE_STREAM_WINDOW, "{m:?}");
    });
}

#[test]
fn raw_client_data_reaches_a_hanging_origin_only_within_windows() {
    // The request direction: a client streaming faster than a non-reading origin accepts is
    // held back by the edge's windows too; here capped by `[limits.grpc]`'s
    // max_stream_buffer_bytes below the (default, 256 KiB) h2 window.
    const EDGE_STREAM_WINDOW: u64 = 65_535;
    let _g = e2e::serial();
    let pki = TestPki::new();
    let origin = RawOrigin::start(RawMode::Hang, None);
    let limits = format!("[limits.grpc]\nmax_stream_buffer_bytes = {EDGE_STREAM_WINDOW}\n");
    let edge = edge_with(&pki, &format!("h2c://{}", origin.addr()), None, "", &limits);
    e2e::run(async {
        let mut cl = e2e::raw_h2_tls(edge.addr(), &pki, DOMAIN).await.unwrap();
        let head = e2e::grpc_request(DOMAIN, "/ringedge.test.Echo/ClientStream", &[]);
        let (_resp, mut body) = cl.send.send_request(head, false).unwrap();
        // Offer one 1 MiB gRPC message; h2 sends only what the edge's windows allow.
        let mut msg = vec![0u8; 5 + (1 << 20)];
        msg[1..5].copy_from_slice(&(1u32 << 20).to_be_bytes());
        body.reserve_capacity(msg.len());
        body.send_data(Bytes::from(msg), false).unwrap();
        let m = edge
            .wait_metrics("request bytes at the edge", |m| m.buffered_bytes > 0)
            .await;
        assert!(m.buffered_bytes_peak <= EDGE_STREAM_WINDOW, "{m:?}");
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let m = edge.metrics();
            assert!(
                m.buffered_bytes_peak <= EDGE_STREAM_WINDOW,
                "edge buffered {} request bytes, window {EDGE_STREAM_WINDOW}: {m:?}",
                m.buffered_bytes_peak
            );
        }
        body.send_reset(h2::Reason::CANCEL);
        assert!(
            origin
                .wait_for(WAIT, |r| !r.resets_received.is_empty())
                .await
        );
        edge.wait_metrics("the buffers released", |m| m.buffered_bytes == 0)
            .await;
    });
}
