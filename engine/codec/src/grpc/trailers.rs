//! Builders for the header blocks an edge sends to end a gRPC call (PROTOCOL-HTTP2.md,
//! "Responses"):
//! - [`trailers_only`]: a Trailers-Only response, one HEADERS frame with END_STREAM carrying
//!   `:status 200`, `content-type: application/grpc`, `grpc-status`, `grpc-message`;
//! - [`trailers`]: the trailers at the end of a normal response.
//!
//! Output is an ordered list of [`HeaderField`]s for the HPACK encoder; pseudo-headers come
//! first (RFC 9113 §8.3). Static names and values are `Bytes::from_static` (no allocation).

use super::message::percent_encode_message;
use super::status::Code;
use bytes::Bytes;

/// One header field, independent of the HPACK module. Names are lower-case (RFC 9113 §8.2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderField {
    /// Field name, lower-case.
    pub name: Bytes,
    /// Field value.
    pub value: Bytes,
}

impl HeaderField {
    /// A field from static name and value.
    pub const fn from_static(name: &'static str, value: &'static str) -> Self {
        HeaderField {
            name: Bytes::from_static(name.as_bytes()),
            value: Bytes::from_static(value.as_bytes()),
        }
    }
}

/// Names the builders own; extra metadata with these names (or any pseudo-header) is dropped so
/// the builders never emit a duplicate or conflicting status.
fn is_reserved(name: &[u8]) -> bool {
    name.first() == Some(&b':')
        || name.eq_ignore_ascii_case(b"content-type")
        || name.eq_ignore_ascii_case(b"grpc-status")
        || name.eq_ignore_ascii_case(b"grpc-message")
}

fn push_status(out: &mut Vec<HeaderField>, code: Code, message: &str, extra: &[HeaderField]) {
    out.push(HeaderField {
        name: Bytes::from_static(b"grpc-status"),
        value: Bytes::from_static(code.as_status_str().as_bytes()),
    });
    if !message.is_empty() {
        out.push(HeaderField {
            name: Bytes::from_static(b"grpc-message"),
            value: percent_encode_message(message),
        });
    }
    out.extend(extra.iter().filter(|f| !is_reserved(&f.name)).cloned());
}

/// A Trailers-Only response: `:status 200`, `content-type: application/grpc`, `grpc-status`,
/// `grpc-message` (percent-encoded; omitted when `message` is empty), then `extra` metadata in
/// order. Extra fields named `:*`, `content-type`, `grpc-status` or `grpc-message` are dropped.
/// Send it as one HEADERS frame with END_STREAM.
pub fn trailers_only(code: Code, message: &str, extra: &[HeaderField]) -> Vec<HeaderField> {
    let mut out = Vec::with_capacity(4 + extra.len());
    out.push(HeaderField::from_static(":status", "200"));
    out.push(HeaderField::from_static("content-type", "application/grpc"));
    push_status(&mut out, code, message, extra);
    out
}

/// Trailers for the end of a normal response: `grpc-status`, `grpc-message` (percent-encoded;
/// omitted when empty), then `extra` (same filtering as [`trailers_only`]).
pub fn trailers(code: Code, message: &str, extra: &[HeaderField]) -> Vec<HeaderField> {
    let mut out = Vec::with_capacity(2 + extra.len());
    push_status(&mut out, code, message, extra);
    out
}
