//! Networking shared by the origin and the load generator: the per-connection driver
//! ([`driver`]) and the gRPC message bodies they exchange ([`msg`]).
pub mod driver;
pub mod msg;
