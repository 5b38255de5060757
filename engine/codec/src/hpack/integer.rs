//! HPACK integer representation (RFC 7541 §5.1): an N-bit prefix, then 7-bit continuation octets.
//!
//! What it does: encode and decode prefix integers. It must not panic on any input nor accept a
//! value above [`MAX_INTEGER`]; it bounds the number of continuation octets, so a run of
//! `0x80` octets cannot keep the decoder busy.

use super::HpackError;
use bytes::BufMut;

/// Largest integer the decoder accepts (2^32 - 1). Every HPACK integer is an index, a string
/// length or a table size; all are far below this for any block a connection accepts.
pub const MAX_INTEGER: usize = u32::MAX as usize;

/// Most continuation octets accepted: 5 carry 35 bits, enough for [`MAX_INTEGER`].
const MAX_CONTINUATION: u32 = 5;

/// Decodes an integer with a `prefix`-bit prefix (1..=8) starting at `buf[*pos]`; the bits above
/// the prefix in the first octet are ignored (they are the representation's flags). Advances
/// `*pos` past the integer.
#[inline]
pub fn decode(buf: &[u8], pos: &mut usize, prefix: u8) -> Result<usize, HpackError> {
    debug_assert!((1..=8).contains(&prefix));
    let mask: u8 = (0xffu16 >> (8 - prefix.clamp(1, 8) as u16)) as u8;
    let first = *buf.get(*pos).ok_or(HpackError::Truncated)? & mask;
    *pos += 1;
    if first < mask {
        return Ok(first as usize);
    }
    let mut value = mask as u64;
    let mut shift = 0u32;
    loop {
        let b = *buf.get(*pos).ok_or(HpackError::Truncated)?;
        *pos += 1;
        value += ((b & 0x7f) as u64) << shift;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift >= 7 * MAX_CONTINUATION {
            return Err(HpackError::IntegerOverflow);
        }
    }
    if value > MAX_INTEGER as u64 {
        return Err(HpackError::IntegerOverflow);
    }
    Ok(value as usize)
}

/// Encodes `value` with a `prefix`-bit prefix (1..=8); `flags` fills the bits above the prefix
/// in the first octet.
#[inline]
pub fn encode<B: BufMut>(value: usize, prefix: u8, flags: u8, dst: &mut B) {
    let mask: usize = 0xff >> (8 - prefix.clamp(1, 8));
    if value < mask {
        dst.put_u8(flags | value as u8);
        return;
    }
    dst.put_u8(flags | mask as u8);
    let mut rest = value - mask;
    while rest >= 0x80 {
        dst.put_u8((rest as u8 & 0x7f) | 0x80);
        rest >>= 7;
    }
    dst.put_u8(rest as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_c1_examples() {
        // C.1.1: 10 with a 5-bit prefix.
        let mut v = Vec::new();
        encode(10, 5, 0, &mut v);
        assert_eq!(v, [0x0a]);
        // C.1.2: 1337 with a 5-bit prefix.
        v.clear();
        encode(1337, 5, 0, &mut v);
        assert_eq!(v, [0x1f, 0x9a, 0x0a]);
        let mut pos = 0;
        assert_eq!(decode(&v, &mut pos, 5), Ok(1337));
        assert_eq!(pos, 3);
        // C.1.3: 42 on an octet boundary.
        v.clear();
        encode(42, 8, 0, &mut v);
        assert_eq!(v, [0x2a]);
    }

    #[test]
    fn limits() {
        let mut pos = 0;
        assert_eq!(decode(&[0x1f], &mut pos, 5), Err(HpackError::Truncated));
        pos = 0;
        assert_eq!(decode(&[], &mut pos, 5), Err(HpackError::Truncated));
        pos = 0;
        let long = [0x1f, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01];
        assert_eq!(decode(&long, &mut pos, 5), Err(HpackError::IntegerOverflow));
        pos = 0;
        let big = [0x1f, 0xff, 0xff, 0xff, 0xff, 0x7f];
        assert_eq!(decode(&big, &mut pos, 5), Err(HpackError::IntegerOverflow));
        let mut v = Vec::new();
        encode(MAX_INTEGER, 1, 0, &mut v);
        pos = 0;
        assert_eq!(decode(&v, &mut pos, 1), Ok(MAX_INTEGER));
    }
}
