//! gRPC wire helpers: the parts of gRPC-over-HTTP/2 (gRPC `doc/PROTOCOL-HTTP2.md`) that an edge
//! proxy must understand without decoding protobuf.
//!
//! What it does:
//! - [`classify_content_type`]: is a request gRPC, gRPC-Web, or neither (`content-type`).
//! - [`parse_timeout`] / [`format_timeout`]: the `grpc-timeout` header.
//! - [`Code`]: the 17 status codes, `grpc-status` parsing, and the HTTP-status and RST_STREAM
//!   error-code mappings (gRPC `doc/http-grpc-status-mapping.md`, `doc/PROTOCOL-HTTP2.md`).
//! - [`percent_encode_message`] / [`percent_decode_message`]: the `grpc-message` encoding.
//! - [`trailers_only`] / [`trailers`]: ordered header-field lists for the HPACK encoder.
//! - [`MessageWalker`]: finds 5-byte length-prefixed message boundaries across DATA frames
//!   without copying payload bytes.
//!
//! What it must not do: decode or re-encode message payloads, decompress, allocate per payload
//! byte, depend on the HPACK module (header fields are plain [`HeaderField`] values), or panic on
//! any input.
//!
//! Invariants: every parser is total (returns [`GrpcError`] on bad input, never panics); the
//! walker's emitted payload views are sub-slices of the chunks it was fed, in order, and for each
//! completed message their lengths sum to exactly the declared length.

mod content_type;
mod error;
mod message;
mod status;
mod timeout;
mod trailers;
mod walker;

pub use content_type::{classify_content_type, ContentKind};
pub use error::GrpcError;
pub use message::{percent_decode_message, percent_encode_message};
pub use status::{parse_grpc_status, Code, STATUS_NAMES};
pub use timeout::{format_timeout, parse_timeout, MAX_TIMEOUT_DIGITS};
pub use trailers::{trailers, trailers_only, HeaderField};
pub use walker::{
    count_messages, MessageWalker, WalkEvent, WalkerLimits, DEFAULT_MAX_MESSAGE_SIZE,
    MESSAGE_PREFIX_LEN,
};
