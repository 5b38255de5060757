//! ringedge-codec: the sans-IO protocol core of ringedge.
//!
//! What it does: HTTP/2 frame views and encoders (RFC 9113, [`frame`]), HPACK (RFC 7541,
//! [`hpack`]), the HTTP/2 connection state machine in server and client roles ([`conn`]), and
//! gRPC wire helpers ([`grpc`]).
//!
//! What it must not do: touch sockets, clocks, executors or TLS. Bytes go in, events and bytes
//! come out; time is passed in by the caller. The only dependency is `bytes`.
//!
//! Invariants: parsing never panics on any input; payloads are `Bytes` views of the receive
//! buffer (a copy is visible in the name, `to_owned_*`).
#![forbid(unsafe_code)]

pub mod conn;
pub mod frame;
pub mod grpc;
pub mod hpack;
pub mod message;
