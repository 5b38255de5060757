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
//! Networking (the load runner and the origin) is built on top of these by the engine crates.
#![forbid(unsafe_code)]

pub mod args;
pub mod merge;
pub mod recorder;
pub mod report;
pub mod schedule;
