//! ringedge: the edge proxy. Filled in by issue 3.
//!
//! Modules so far: [`config`] (parse, validate, freeze the TOML configuration), [`route`]
//! (the frozen host/path routing table) and [`server`] (the entry point [`run`]).
#![forbid(unsafe_code)]

pub mod config;
pub mod route;
pub mod server;

pub use server::{run, RunError};
