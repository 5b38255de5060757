//! The static Huffman code of RFC 7541 §5.2 / Appendix B.
//!
//! What it does: encodes octet strings with the HPACK Huffman code and decodes them back,
//! rejecting the two malformations the RFC names (§5.2): an EOS symbol inside the string, and
//! padding that is longer than 7 bits or not made of the most significant bits of EOS (all ones).
//!
//! How: only the code *lengths* of Appendix B are written down here. The HPACK code is canonical
//! (within one length, codes are consecutive in symbol order, and shorter codes come first), so
//! the codes themselves and every decoding table are derived from the lengths at compile time by
//! `const fn`s; unit tests check the derived codes against values printed in Appendix B and that
//! the code is complete (Kraft sum exactly 1).
//!
//! Decoding reads the input through a 64-bit bit accumulator. An 11-bit lookup table resolves
//! every code of at most 11 bits (all the frequent symbols) in one step; longer codes go through
//! the canonical "first code per length" comparison. When the input runs out, missing bits are
//! treated as ones (the padding pattern), so a symbol is emitted only if all its bits are present.
//!
//! What it must not do: panic, allocate beyond the output it is asked to produce, or accept EOS.

use super::HpackError;

/// Code length in bits of every symbol (0..=255 octets, 256 = EOS), RFC 7541 Appendix B.
#[rustfmt::skip]
const LENGTHS: [u8; 257] = [
    // 0..=31: control characters
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28,
    28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,
    // ' ' ! " # $ % & ' ( ) * + , - . /
    6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6,
    // 0 1 2 3 4 5 6 7 8 9 : ; < = > ?
    5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
    // @ A B C D E F G H I J K L M N O
    13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
    // P Q R S T U V W X Y Z [ \ ] ^ _
    7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,
    // ` a b c d e f g h i j k l m n o
    15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5,
    // p q r s t u v w x y z { | } ~ DEL
    6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,
    // 128..=255
    20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23,
    24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,
    22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23,
    21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
    26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25,
    19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,
    20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23,
    26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
    // EOS
    30,
];

/// The EOS symbol (RFC 7541 §5.2).
const EOS: usize = 256;
/// Longest code length in bits.
const MAX_LEN: usize = 30;
/// Width of the first-level decoding table.
const PRIMARY_BITS: u32 = 11;

/// Number of codes of each length.
const COUNTS: [u32; MAX_LEN + 1] = {
    let mut c = [0u32; MAX_LEN + 1];
    let mut i = 0;
    while i < LENGTHS.len() {
        c[LENGTHS[i] as usize] += 1;
        i += 1;
    }
    c
};

/// First canonical code of each length (right-aligned).
const FIRST: [u32; MAX_LEN + 1] = {
    let mut first = [0u32; MAX_LEN + 1];
    let mut code = 0u32;
    let mut len = 1;
    while len <= MAX_LEN {
        code = (code + COUNTS[len - 1]) << 1;
        first[len] = code;
        len += 1;
    }
    first
};

/// Canonical code of every symbol, right-aligned in `LENGTHS[sym]` bits.
pub(crate) const CODES: [u32; 257] = {
    let mut next = FIRST;
    let mut codes = [0u32; 257];
    let mut sym = 0;
    while sym < 257 {
        let len = LENGTHS[sym] as usize;
        codes[sym] = next[len];
        next[len] += 1;
        sym += 1;
    }
    codes
};

/// Index into [`SORTED`] of the first symbol of each length.
const OFFSETS: [u32; MAX_LEN + 1] = {
    let mut off = [0u32; MAX_LEN + 1];
    let mut acc = 0;
    let mut len = 1;
    while len <= MAX_LEN {
        off[len] = acc;
        acc += COUNTS[len];
        len += 1;
    }
    off
};

/// Symbols sorted by (code length, symbol): the canonical order.
const SORTED: [u16; 257] = {
    let mut out = [0u16; 257];
    let mut next = OFFSETS;
    let mut sym = 0;
    while sym < 257 {
        let len = LENGTHS[sym] as usize;
        out[next[len] as usize] = sym as u16;
        next[len] += 1;
        sym += 1;
    }
    out
};

/// First-level table indexed by the next 11 bits: `len << 8 | sym` for codes of at most 11 bits,
/// 0 when the code is longer.
const PRIMARY: [u16; 1 << PRIMARY_BITS] = {
    let mut t = [0u16; 1 << PRIMARY_BITS];
    let mut sym = 0;
    while sym < 256 {
        let len = LENGTHS[sym] as u32;
        if len <= PRIMARY_BITS {
            let start = (CODES[sym] << (PRIMARY_BITS - len)) as usize;
            let n = 1usize << (PRIMARY_BITS - len);
            let mut k = 0;
            while k < n {
                t[start + k] = ((len as u16) << 8) | sym as u16;
                k += 1;
            }
        }
        sym += 1;
    }
    t
};

/// Width of the two-symbol decoding table.
const DOUBLE_BITS: u32 = 12;

/// Two-symbol table indexed by the next 12 bits: `sym1 | sym2 << 8 | count << 16 | bits << 24`,
/// where `count` (1 or 2) symbols of `bits` total length are fully contained in the 12 bits;
/// 0 when the first code is longer than 11 bits.
const DOUBLE: [u32; 1 << DOUBLE_BITS] = {
    let mut t = [0u32; 1 << DOUBLE_BITS];
    let mut idx = 0usize;
    while idx < (1 << DOUBLE_BITS) {
        let e1 = PRIMARY[idx >> (DOUBLE_BITS - PRIMARY_BITS)] as u32;
        if e1 != 0 {
            let (sym1, len1) = (e1 & 0xff, e1 >> 8);
            let rem = DOUBLE_BITS - len1;
            let r = idx & ((1 << rem) - 1);
            let e2 = if rem > 0 {
                PRIMARY[r << (PRIMARY_BITS - rem)] as u32
            } else {
                0
            };
            t[idx] = if e2 != 0 && (e2 >> 8) <= rem {
                sym1 | (e2 & 0xff) << 8 | 2 << 16 | (len1 + (e2 >> 8)) << 24
            } else {
                sym1 | 1 << 16 | len1 << 24
            };
        }
        idx += 1;
    }
    t
};

/// Length in bytes of the Huffman encoding of `src` (RFC 7541 §5.2: padded to an octet).
#[inline]
pub fn encoded_len(src: &[u8]) -> usize {
    let bits: usize = src.iter().map(|&b| LENGTHS[b as usize] as usize).sum();
    bits.div_ceil(8)
}

/// Appends the Huffman encoding of `src` to `dst`, padded with the high bits of EOS (ones).
pub fn encode(src: &[u8], dst: &mut Vec<u8>) {
    dst.reserve(encoded_len(src));
    let mut acc: u64 = 0;
    let mut n: u32 = 0;
    for &b in src {
        let len = LENGTHS[b as usize] as u32;
        acc = (acc << len) | CODES[b as usize] as u64;
        n += len;
        if n >= 32 {
            n -= 32;
            dst.extend_from_slice(&((acc >> n) as u32).to_be_bytes());
        }
    }
    while n >= 8 {
        n -= 8;
        dst.push((acc >> n) as u8);
    }
    if n > 0 {
        dst.push(((acc << (8 - n)) as u8) | (0xffu8 >> n));
    }
}

/// Takes the next `k` bits of the accumulator (holding `nbits` valid low bits), filling bits
/// beyond the end of the input with ones, as padding would.
#[inline(always)]
fn peek(acc: u64, nbits: u32, k: u32) -> u32 {
    let mask = (1u64 << k) - 1;
    if nbits >= k {
        ((acc >> (nbits - k)) & mask) as u32
    } else {
        let missing = k - nbits;
        (((acc << missing) | ((1u64 << missing) - 1)) & mask) as u32
    }
}

/// Resolves a code longer than [`PRIMARY_BITS`] from the next 30 bits.
#[inline(never)]
fn decode_long(p30: u32) -> (usize, u32) {
    let mut len = PRIMARY_BITS as usize + 1;
    while len <= MAX_LEN {
        let c = p30 >> (MAX_LEN - len);
        let d = c.wrapping_sub(FIRST[len]);
        if d < COUNTS[len] {
            return (SORTED[(OFFSETS[len] + d) as usize] as usize, len as u32);
        }
        len += 1;
    }
    // The code is complete (every 30-bit pattern starts with some code), so this is unreachable;
    // answer EOS, which the caller rejects, rather than panicking.
    (EOS, MAX_LEN as u32)
}

/// Largest number of octets `src.len()` Huffman-coded octets can decode to (the shortest code
/// has 5 bits).
#[inline]
pub fn max_decoded_len(encoded_len: usize) -> usize {
    encoded_len.saturating_mul(8) / 5
}

/// Decodes the Huffman string `src`, appending the octets to `dst`.
///
/// Errors: [`HpackError::HuffmanEos`] if the EOS symbol is decoded (RFC 7541 §5.2),
/// [`HpackError::HuffmanPadding`] if the padding is longer than 7 bits or not all ones.
/// On error `dst` is left as it was.
pub fn decode(src: &[u8], dst: &mut Vec<u8>) -> Result<(), HpackError> {
    let start = dst.len();
    dst.resize(start + max_decoded_len(src.len()), 0);
    match decode_into(src, &mut dst[start..]) {
        Ok(n) => {
            dst.truncate(start + n);
            Ok(())
        }
        Err(e) => {
            dst.truncate(start);
            Err(e)
        }
    }
}

/// Decodes the Huffman string `src` into `out`, returning the number of octets written.
/// `out` must hold [`max_decoded_len`] octets; a shorter `out` fails with
/// [`HpackError::HuffmanPadding`] rather than overflowing. Errors as for [`decode`].
pub fn decode_into(src: &[u8], out: &mut [u8]) -> Result<usize, HpackError> {
    let mut o = 0usize;
    macro_rules! emit {
        ($b:expr) => {
            match out.get_mut(o) {
                Some(slot) => {
                    *slot = $b;
                    o += 1;
                }
                None => return Err(HpackError::HuffmanPadding),
            }
        };
    }
    let mut acc: u64 = 0;
    let mut nbits: u32 = 0;
    let mut pos = 0;
    loop {
        if nbits <= 32 {
            if let Some(chunk) = src.get(pos..pos + 4) {
                let w = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
                acc = (acc << 32) | w as u64;
                nbits += 32;
                pos += 4;
            } else {
                while nbits <= 56 {
                    match src.get(pos) {
                        Some(&b) => {
                            acc = (acc << 8) | b as u64;
                            nbits += 8;
                            pos += 1;
                        }
                        None => break,
                    }
                }
            }
        }
        if nbits >= DOUBLE_BITS {
            // Fast path: one lookup yields one or two complete symbols.
            let e = DOUBLE[((acc >> (nbits - DOUBLE_BITS)) & ((1 << DOUBLE_BITS) - 1)) as usize];
            if e != 0 {
                emit!(e as u8);
                if (e >> 16) & 3 == 2 {
                    emit!((e >> 8) as u8);
                }
                nbits -= e >> 24;
                continue;
            }
        }
        if nbits == 0 {
            break;
        }
        let e = PRIMARY[peek(acc, nbits, PRIMARY_BITS) as usize];
        let (sym, len) = if e != 0 {
            ((e & 0xff) as usize, (e >> 8) as u32)
        } else {
            decode_long(peek(acc, nbits, MAX_LEN as u32))
        };
        if len > nbits {
            // The last code is incomplete: what is left is padding.
            break;
        }
        if sym == EOS {
            return Err(HpackError::HuffmanEos);
        }
        emit!(sym as u8);
        nbits -= len;
    }
    // RFC 7541 §5.2: padding strictly longer than 7 bits, or not the EOS prefix, is an error.
    if nbits > 7 {
        return Err(HpackError::HuffmanPadding);
    }
    let mask = (1u64 << nbits) - 1;
    if acc & mask != mask {
        return Err(HpackError::HuffmanPadding);
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_is_complete() {
        // Kraft sum of a complete prefix code is exactly 1: sum 2^(30-len) == 2^30.
        let sum: u64 = LENGTHS.iter().map(|&l| 1u64 << (30 - l)).sum();
        assert_eq!(sum, 1 << 30);
    }

    #[test]
    fn derived_codes_match_appendix_b() {
        // A sample of (symbol, code, length) rows printed in RFC 7541 Appendix B.
        let rows: &[(usize, u32, u8)] = &[
            (0, 0x1ff8, 13),
            (1, 0x7fffd8, 23),
            (2, 0xfffffe2, 28),
            (9, 0xffffea, 24),
            (10, 0x3ffffffc, 30),
            (13, 0x3ffffffd, 30),
            (22, 0x3ffffffe, 30),
            (b' ' as usize, 0x14, 6),
            (b'!' as usize, 0x3f8, 10),
            (b'&' as usize, 0xf8, 8),
            (b'0' as usize, 0x0, 5),
            (b':' as usize, 0x5c, 7),
            (b'<' as usize, 0x7ffc, 15),
            (b'X' as usize, 0xfc, 8),
            (b'\\' as usize, 0x7fff0, 19),
            (b'a' as usize, 0x3, 5),
            (b't' as usize, 0x9, 5),
            (b'z' as usize, 0x7b, 7),
            (b'~' as usize, 0x1ffd, 13),
            (127, 0xffffffc, 28),
            (128, 0xfffe6, 20),
            (153, 0x1fffdc, 21),
            (192, 0x3ffffe0, 26),
            (199, 0x1ffffec, 25),
            (203, 0x7ffffde, 27),
            (220, 0xffffffd, 28),
            (249, 0xffffffe, 28),
            (254, 0x7fffff0, 27),
            (255, 0x3ffffee, 26),
            (256, 0x3fffffff, 30),
        ];
        for &(sym, code, len) in rows {
            assert_eq!(LENGTHS[sym], len, "length of symbol {sym}");
            assert_eq!(CODES[sym], code, "code of symbol {sym}");
        }
    }

    #[test]
    fn every_single_symbol_round_trips() {
        for b in 0..=255u8 {
            let mut enc = Vec::new();
            encode(&[b], &mut enc);
            assert_eq!(enc.len(), encoded_len(&[b]));
            let mut dec = Vec::new();
            decode(&enc, &mut dec).unwrap();
            assert_eq!(dec, [b]);
        }
    }

    #[test]
    fn rejects_eos_and_bad_padding() {
        // EOS (30 ones) followed by padding.
        assert_eq!(
            decode(&[0xff, 0xff, 0xff, 0xff], &mut Vec::new()),
            Err(HpackError::HuffmanEos)
        );
        // 'a' = 00011 then padding 000 (not ones).
        assert_eq!(
            decode(&[0b0001_1000], &mut Vec::new()),
            Err(HpackError::HuffmanPadding)
        );
        // 'a' then 3 one bits of padding: fine.
        let mut out = Vec::new();
        decode(&[0b0001_1111], &mut out).unwrap();
        assert_eq!(out, b"a");
        // A full byte of ones as padding is longer than 7 bits.
        assert_eq!(
            decode(&[0b0001_1111, 0xff], &mut Vec::new()),
            Err(HpackError::HuffmanPadding)
        );
        // A lone 0xff byte is 8 bits of padding.
        assert_eq!(
            decode(&[0xff], &mut Vec::new()),
            Err(HpackError::HuffmanPadding)
        );
        // Empty string is valid.
        decode(&[], &mut out).unwrap();
    }
}
