//! ringedge-e2e: the harness around the proxy for end-to-end tests with
//! independent peers — `tonic` and the `h2` crate, code we did not write.
//!
//! It provides everything *around* the proxy: test origins that record what
//! they observe ([`TestOrigin`], tonic; [`RawOrigin`], the `h2` crate and
//! hand-written frames for behaviours tonic cannot produce), certificates made
//! at test time ([`TestPki`], rcgen), clients (tonic channels with the harness
//! CA and a chosen SNI domain; a raw h2 client), and bounded waits so no test
//! can hang ([`run`], [`bounded`]).
//!
//! Must not: use the proxy crate anywhere but [`proxy`] (the in-process
//! starter for the proxy tests; the origins, clients and PKI stay independent
//! of what they test), or wait on anything without a timeout.
//!
//! # How a proxy test uses the harness
//!
//! ```no_run
//! use std::time::Duration;
//! use ringedge_e2e::{self as e2e, pb, ClientTls, OriginOpts, TestOrigin, TestPki};
//!
//! #[test]
//! fn unary_through_the_edge() {
//!     let pki = TestPki::new();
//!     let edge_leaf = pki.leaf(&["edge.test", "127.0.0.1"]);
//!     // 1. An origin (h2c here; `OriginOpts::tls(&pki.leaf(&["origin.test"]))` for TLS).
//!     let origin = TestOrigin::start(OriginOpts::h2c());
//!     // 2. Start the proxy in-process (the proxy crate's API, not this one's),
//!     //    listening on 127.0.0.1:0 with `edge_leaf.cert_path` / `edge_leaf.key_path`
//!     //    and routing to `origin.uri()`; suppose it returns its address:
//!     let edge_addr: std::net::SocketAddr = todo_start_proxy(&edge_leaf, &origin.uri());
//!     // 3. Drive a tonic client through the edge, every wait bounded.
//!     e2e::run(async {
//!         let tls = ClientTls::new(&pki, "edge.test");
//!         let ch = e2e::bounded("connect", e2e::connect(edge_addr, Some(&tls))).await.unwrap();
//!         let mut client = e2e::echo_client(ch);
//!         let req = pb::EchoRequest {
//!             payload: vec![7; 1024],
//!             behavior: Some(pb::Behavior { status_code: 7, status_message: "no".into(), ..Default::default() }),
//!         };
//!         let status = e2e::bounded("unary", client.unary(req)).await.unwrap_err();
//!         assert_eq!(status.code(), tonic::Code::PermissionDenied);
//!         assert_eq!(status.message(), "no");
//!         // 4. Assert on what the origin saw.
//!         let seen = origin.last_request().unwrap();
//!         assert_eq!(seen.path, "/ringedge.test.Echo/Unary");
//!         assert!(origin.wait_finished(1, Duration::from_secs(5)).await);
//!     });
//! }
//! # fn todo_start_proxy(_: &ringedge_e2e::LeafCert, _: &str) -> std::net::SocketAddr { unimplemented!() }
//! ```
//!
//! Cancellation: start a call with `Behavior { hang: true, .. }`, drop the
//! client's future (or send RST_STREAM from a [`RawClient`]) and
//! `assert!(origin.wait_cancelled(1, WAIT).await)`. Deadlines: call with
//! `tonic::Request::set_timeout` and read `origin.last_request().grpc_timeout()`.
//! Note that tonic's server itself enforces `grpc-timeout` (the handler is
//! dropped and the origin answers CANCELLED "Timeout expired" when it fires),
//! so for a test of the edge's own DEADLINE_EXCEEDED prefer
//! [`RawMode::Hang`], which never answers and records the RST_STREAM it gets.
//!
//! Early trailers: the `h2` 0.4.20 client (inside tonic/hyper) fails a
//! response with `Reset(NO_ERROR)` (tonic: INTERNAL "h2 protocol error") when
//! the RST_STREAM(NO_ERROR) arrives before the application polled the
//! response, although the HEADERS and trailers came first. So a tonic client
//! sees the origin's status only if the RST_STREAM reaches it a little after
//! the trailers; [`RawMode::EarlyTrailersThenReset`]'s `reset_after` sets the
//! origin's pause (zero is the hard case for the edge's own codec; an edge
//! that forwards the reset to a tonic client at once will trip this peer).

pub mod client;
pub mod origin;
pub mod pki;
pub mod proxy;
pub mod raw_origin;
pub mod run;

/// Generated protobuf and tonic code for `proto/echo.proto` and
/// `proto/helloworld.proto`.
#[allow(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    clippy::all
)]
pub mod pb {
    tonic::include_proto!("ringedge.test");

    /// The standard `helloworld.Greeter` example service.
    pub mod helloworld {
        tonic::include_proto!("helloworld");
    }
    pub use helloworld::greeter_client;
    pub use helloworld::greeter_server;
    pub use helloworld::{HelloReply, HelloRequest};
}

pub use client::{
    connect, echo_client, endpoint, greeter_client, grpc_request, raw_h2_tls, raw_h2c, read_body,
    tls_connect, ClientTls, RawClient,
};
pub use origin::{
    parse_grpc_timeout, pattern, CallCounts, OriginOpts, Recorder, SeenRequest, TestOrigin,
    DEFAULT_MAX_MESSAGE,
};
pub use pki::{crypto_provider, LeafCert, TestPki};
pub use proxy::{catch_all_toml, free_port, origin_toml, serial, Edge};
pub use raw_origin::{encode_grpc, grpc_messages, percent_encode, RawMode, RawOrigin, RawRecord};
pub use run::{bounded, bounded_for, closed_port, run, test_runtime, TEST_BUDGET, WAIT};

/// ASCII metadata entry for [`pb::Behavior`]'s header/trailer lists.
pub fn md(key: &str, value: &str) -> pb::Metadata {
    pb::Metadata {
        key: key.to_string(),
        value: value.to_string(),
        value_bin: Vec::new(),
    }
}

/// Binary (`-bin`) metadata entry for [`pb::Behavior`]'s header/trailer lists.
pub fn md_bin(key: &str, value: &[u8]) -> pb::Metadata {
    pb::Metadata {
        key: key.to_string(),
        value: String::new(),
        value_bin: value.to_vec(),
    }
}
