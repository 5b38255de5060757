//! `grpc-message` percent-encoding (gRPC PROTOCOL-HTTP2.md, "Responses": `Status-Message` is
//! the UTF-8 text percent-encoded: bytes outside 0x20..=0x7E, and `%` itself, become `%XX`).
//!
//! Encoding uses upper-case hex. Decoding is tolerant, as the spec asks of receivers: a `%` not
//! followed by two hex digits passes through literally, and the result is converted to UTF-8
//! lossily (invalid sequences become U+FFFD) rather than failing.

use bytes::Bytes;

const HEX: &[u8; 16] = b"0123456789ABCDEF";

fn needs_escape(b: u8) -> bool {
    !(0x20..=0x7e).contains(&b) || b == b'%'
}

/// Percent-encodes a status message for the `grpc-message` header.
pub fn percent_encode_message(msg: &str) -> Bytes {
    let raw = msg.as_bytes();
    let escapes = raw.iter().filter(|&&b| needs_escape(b)).count();
    if escapes == 0 {
        return Bytes::copy_from_slice(raw);
    }
    let mut out = Vec::with_capacity(raw.len() + 2 * escapes);
    for &b in raw {
        if needs_escape(b) {
            out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]]);
        } else {
            out.push(b);
        }
    }
    Bytes::from(out)
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes a `grpc-message` header value, tolerantly (see the module docs). Never fails.
pub fn percent_decode_message(value: &[u8]) -> String {
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    while let Some(&b) = value.get(i) {
        if b == b'%' {
            let hi = value.get(i + 1).copied().and_then(hex_val);
            let lo = value.get(i + 2).copied().and_then(hex_val);
            if let (Some(hi), Some(lo)) = (hi, lo) {
                out.push(hi << 4 | lo);
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    match String::from_utf8(out) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}
