//! ringedge-tls: rustls configuration and a sans-IO TLS session driver.
//!
//! What it does: builds the server config ([`ServerTlsConfig`]: PEM certificates, SNI
//! selection, TLS 1.2/1.3, shared stateless session tickets, ALPN exactly `h2`), the
//! origin-side client config ([`ClientTlsConfig`]: ALPN `h2` required, CA bundle or webpki
//! roots, explicit insecure mode), and drives TLS sessions over caller-owned buffers
//! ([`TlsSession`]).
//!
//! What it must not do: touch sockets, clocks or executors (the caller enforces the handshake
//! timeout with an rt timer), log (it returns flags and errors the caller logs), or let another
//! crate name rustls types on the request path.
//!
//! Invariants: every config offers/accepts only `h2` in ALPN; a session that failed stays
//! failed; configs are immutable after `build`, `Arc`-shared across shards.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod client;
mod error;
mod pem;
#[cfg(feature = "selfsigned")]
mod selfsigned;
mod server;
mod session;

pub use client::{CaSource, ClientTlsConfig, ClientTlsOptions};
pub use error::TlsError;
pub use server::{ServerTlsBuilder, ServerTlsConfig};
pub use session::{Role, TlsSession};

#[cfg(feature = "selfsigned")]
pub use selfsigned::generate_self_signed;

/// The only ALPN protocol ringedge speaks over TLS (RFC 9113 §3.2).
pub const ALPN_H2: &[u8] = b"h2";
