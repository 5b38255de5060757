//! gRPC message bodies the origin and the load generator exchange: the 5-byte
//! Length-Prefixed-Message framing (gRPC PROTOCOL-HTTP2.md) and the two protobuf messages of
//! `helloworld.Greeter/SayHello` (`HelloRequest { string name = 1 }`,
//! `HelloReply { string message = 1 }`), hand-encoded (protobuf wire format: tag `0x0A` =
//! field 1, wire type 2 (LEN), varint length, bytes).
//!
//! What it must not do: allocate more than the one output buffer per message, or panic on any
//! input (decoding is bounds-checked and returns `None` on anything unexpected).

use bytes::{BufMut, Bytes, BytesMut};

/// Protobuf tag of field 1 with wire type LEN.
const TAG_FIELD1_LEN: u8 = 0x0A;

/// Appends `payload` to `out` as one uncompressed Length-Prefixed-Message.
pub fn put_framed(out: &mut BytesMut, payload: &[u8]) {
    out.reserve(5 + payload.len());
    out.put_u8(0);
    out.put_u32(u32::try_from(payload.len()).unwrap_or(u32::MAX));
    out.extend_from_slice(payload);
}

/// One framed message.
pub fn framed(payload: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(5 + payload.len());
    put_framed(&mut b, payload);
    b.freeze()
}

fn put_varint(out: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        out.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    out.put_u8(v as u8);
}

fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

/// Reads a varint at the front of `b`: (value, bytes used).
fn get_varint(b: &[u8]) -> Option<(u64, usize)> {
    let mut v: u64 = 0;
    for (i, &byte) in b.iter().enumerate().take(10) {
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

/// Encodes a message whose only field is string field 1 (`HelloRequest.name` or
/// `HelloReply.message`), the string being `prefix` followed by `s`.
pub fn put_string_field1(out: &mut BytesMut, prefix: &[u8], s: &[u8]) {
    let len = prefix.len() + s.len();
    if len == 0 {
        // proto3: an empty string field is not encoded.
        return;
    }
    out.put_u8(TAG_FIELD1_LEN);
    put_varint(out, len as u64);
    out.extend_from_slice(prefix);
    out.extend_from_slice(s);
}

/// If `msg` is exactly a message with string field 1 (a `HelloRequest`) — or empty, the
/// encoding of an empty one — returns the string bytes (valid UTF-8).
pub fn decode_string_field1(msg: &[u8]) -> Option<&[u8]> {
    if msg.is_empty() {
        return Some(&[]);
    }
    if msg[0] != TAG_FIELD1_LEN {
        return None;
    }
    let (len, used) = get_varint(&msg[1..])?;
    let body = &msg[1 + used..];
    if u64::try_from(body.len()).ok()? != len {
        return None;
    }
    std::str::from_utf8(body).ok()?;
    Some(body)
}

/// `v` as a varint of exactly `width` bytes (non-minimal encodings are valid protobuf: decoders
/// read continuation bits, not lengths). `width` must be at least `varint_len(v)`.
fn put_varint_width(out: &mut BytesMut, mut v: u64, width: usize) {
    for i in 0..width {
        let more = i + 1 < width;
        out.put_u8(((v & 0x7f) as u8) | if more { 0x80 } else { 0 });
        v >>= 7;
    }
}

/// A generated `HelloRequest` whose encoding is exactly `size` bytes (`name` = `x` repeated);
/// sizes 0 and 1 give the empty message (no non-empty encoding is that short).
pub fn hello_request_of_size(size: usize) -> Bytes {
    let mut out = BytesMut::with_capacity(size.max(2));
    if size < 2 {
        return out.freeze();
    }
    // size = 1 (tag) + width + n, with the length varint padded to `width` when the minimal
    // encoding would leave a one-byte gap (e.g. size 130).
    for width in 1..=10usize {
        let Some(n) = size.checked_sub(1 + width) else {
            break;
        };
        if varint_len(n as u64) <= width {
            out.put_u8(TAG_FIELD1_LEN);
            put_varint_width(&mut out, n as u64, width);
            out.resize(size, b'x');
            break;
        }
    }
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_round_trip() {
        let mut b = BytesMut::new();
        put_string_field1(&mut b, b"Hello ", b"world");
        assert_eq!(&b[..], b"\x0a\x0bHello world");
        assert_eq!(decode_string_field1(&b), Some(&b"Hello world"[..]));
        assert_eq!(decode_string_field1(b""), Some(&b""[..]));
        assert_eq!(decode_string_field1(b"\x12\x01a"), None);
        assert_eq!(decode_string_field1(b"\x0a\x05abc"), None);
        assert_eq!(decode_string_field1(b"\x0a\xff"), None);
        assert_eq!(decode_string_field1(b"\x0a\x02\xff\xfe"), None);
    }

    #[test]
    fn generated_requests_have_the_asked_size_and_decode() {
        for size in [
            0usize, 1, 2, 3, 100, 129, 130, 131, 1000, 16_385, 16_386, 100_000,
        ] {
            let m = hello_request_of_size(size);
            let name = decode_string_field1(&m).expect("decodes as HelloRequest");
            if size >= 2 {
                assert_eq!(m.len(), size, "size {size}");
                assert!(name.iter().all(|&b| b == b'x'));
                assert_eq!(name.is_empty(), size == 2, "size {size}");
            } else {
                assert!(m.is_empty() && name.is_empty());
            }
        }
        assert_eq!(
            decode_string_field1(&hello_request_of_size(100))
                .unwrap()
                .len(),
            98
        );
    }

    #[test]
    fn framing() {
        let f = framed(b"abc");
        assert_eq!(&f[..], b"\x00\x00\x00\x00\x03abc");
    }
}
