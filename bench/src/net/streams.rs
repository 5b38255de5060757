//! Per-connection maps keyed by HTTP/2 stream id, with a cheap hash.
//!
//! What it does: [`StreamMap`] is a `HashMap<u32, V>` whose hasher is one multiplication
//! (Fibonacci hashing) instead of SipHash. Stream ids are chosen by the peers of one connection
//! and are unique while in the map; a map holds at most the connection's concurrent streams, so
//! hash flooding cannot make it large (the codec refuses streams over
//! `SETTINGS_MAX_CONCURRENT_STREAMS`, RFC 9113 §5.1.2).
//!
//! What it must not do: be used for keys an attacker can choose in unbounded numbers.
//!
//! Invariants: the hash of a `u32` spreads it over all 64 bits (the multiplier is odd, so it is
//! a bijection), so hashbrown's top-7-bit tags differ between nearby ids.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// `HashMap` keyed by stream id (see the module docs for why a weak hash is enough here).
pub type StreamMap<V> = HashMap<u32, V, BuildHasherDefault<StreamIdHasher>>;

/// 2^64 / φ, odd: multiplying by it is a bijection on `u64` that mixes low bits upwards.
const FIBONACCI: u64 = 0x9E37_79B9_7F4A_7C15;

/// Hasher for [`StreamMap`]: `key * 2^64/φ` (wrapping).
#[derive(Debug, Default, Clone, Copy)]
pub struct StreamIdHasher(u64);

impl Hasher for StreamIdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not used by `u32` keys; a correct (if slow) fallback for any other key.
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(FIBONACCI);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.0 = (self.0 ^ u64::from(n)).wrapping_mul(FIBONACCI);
    }
}

/// A new, empty [`StreamMap`].
pub fn stream_map<V>() -> StreamMap<V> {
    StreamMap::default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn nearby_ids_get_distinct_top_bits_and_the_map_works() {
        let b = BuildHasherDefault::<StreamIdHasher>::default();
        let tags: std::collections::HashSet<u64> =
            (0..64u32).map(|i| b.hash_one(2 * i + 1) >> 57).collect();
        // 64 consecutive client stream ids spread over many of the 128 possible tags.
        assert!(tags.len() > 32, "only {} distinct tags", tags.len());
        let mut m = stream_map();
        for id in (1..2000u32).step_by(2) {
            m.insert(id, id * 10);
        }
        for id in (1..2000u32).step_by(2) {
            assert_eq!(m.remove(&id), Some(id * 10));
        }
        assert!(m.is_empty());
    }
}
