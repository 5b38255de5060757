//! ringedge: a thread-per-core gRPC edge proxy.
//!
//! Modules: [`config`] (parse, validate, freeze the TOML configuration), [`route`] (the frozen
//! host/path routing table), [`forward`] (the per-shard forwarder: calls, origin pools, flow
//! control, deadlines, cancellation, edge statuses), [`headers`] (what the origin sees),
//! [`io`] (socket drivers and TLS handshakes), [`serve`] (shards, listeners, control task),
//! [`server`] (from a config to a running proxy), [`metrics`] (per-shard counters).
#![forbid(unsafe_code)]

pub mod config;
pub mod forward;
pub mod headers;
pub mod io;
pub mod metrics;
pub mod route;
pub mod serve;
pub mod server;
mod slab;

pub use serve::ServerHandle;
pub use server::{run, start, RunError};
