//! ringedge-bench: micro-benchmarks, load generator and test origin.
//!
//! This crate's sans-IO core (no sockets, no HTTP/2, no clocks):
//! - [`schedule`]: open-loop send schedules (intended send time of request `i`, shard split);
//! - [`recorder`]: per-shard latency recording (coordinated-omission corrected), counts, series,
//!   merge;
//! - [`report`]: summary table, JSON, HdrHistogram interval log, `.hgrm`, SVG, progress line;
//! - [`merge`]: reading and merging HdrHistogram interval logs;
//! - [`args`]: the command line and its validation.
//!
//! Networking, on the engine's shards (ringedge-rt), TLS (ringedge-tls) and codec:
//! - [`origin`]: the fast gRPC test origin (`ringedge-bench origin`);
//! - [`load`]: the load runner (`ringedge-bench load`);
//! - [`net`]: the per-connection driver and gRPC message bodies both use;
//! - [`cert`]: self-signed certificates for demos (`ringedge-bench cert`).
#![forbid(unsafe_code)]

pub mod args;
pub mod cert;
pub mod load;
pub mod merge;
pub mod net;
pub mod origin;
pub mod recorder;
pub mod report;
pub mod schedule;
