//! Networking shared by the origin and the load generator: the per-connection driver
//! ([`driver`]), the gRPC message bodies they exchange ([`msg`]) and their stream-id maps
//! ([`streams`]).
pub mod driver;
pub mod msg;
pub mod streams;
