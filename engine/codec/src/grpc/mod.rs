//! gRPC wire helpers (gRPC PROTOCOL-HTTP2.md). (in progress)
