//! HPACK indexing tables (RFC 7541 §2.3): the static table (Appendix A) and the dynamic table.
//!
//! What it does: index lookups for the decoder, and name/value searches for the encoder.
//!
//! Invariants of [`DynamicTable`]: `size` is the sum of entry sizes (name + value + 32, §4.1) and
//! never exceeds `capacity`; entries are kept newest first, so dynamic index 1 is `entries[0]`.
//! Eviction drops the oldest entries (§4.4); an entry larger than the capacity empties the table
//! and is not inserted (§4.4). Changing the capacity evicts until the size fits (§4.3).

use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

/// Per-entry overhead in the size accounting (RFC 7541 §4.1).
pub const ENTRY_OVERHEAD: usize = 32;

/// Number of entries in the static table.
pub const STATIC_LEN: usize = 61;

/// The static table, RFC 7541 Appendix A. `STATIC[i - 1]` is index `i`.
pub static STATIC: [(&[u8], &[u8]); STATIC_LEN] = [
    (b":authority", b""),
    (b":method", b"GET"),
    (b":method", b"POST"),
    (b":path", b"/"),
    (b":path", b"/index.html"),
    (b":scheme", b"http"),
    (b":scheme", b"https"),
    (b":status", b"200"),
    (b":status", b"204"),
    (b":status", b"206"),
    (b":status", b"304"),
    (b":status", b"400"),
    (b":status", b"404"),
    (b":status", b"500"),
    (b"accept-charset", b""),
    (b"accept-encoding", b"gzip, deflate"),
    (b"accept-language", b""),
    (b"accept-ranges", b""),
    (b"accept", b""),
    (b"access-control-allow-origin", b""),
    (b"age", b""),
    (b"allow", b""),
    (b"authorization", b""),
    (b"cache-control", b""),
    (b"content-disposition", b""),
    (b"content-encoding", b""),
    (b"content-language", b""),
    (b"content-length", b""),
    (b"content-location", b""),
    (b"content-range", b""),
    (b"content-type", b""),
    (b"cookie", b""),
    (b"date", b""),
    (b"etag", b""),
    (b"expect", b""),
    (b"expires", b""),
    (b"from", b""),
    (b"host", b""),
    (b"if-match", b""),
    (b"if-modified-since", b""),
    (b"if-none-match", b""),
    (b"if-range", b""),
    (b"if-unmodified-since", b""),
    (b"last-modified", b""),
    (b"link", b""),
    (b"location", b""),
    (b"max-forwards", b""),
    (b"proxy-authenticate", b""),
    (b"proxy-authorization", b""),
    (b"range", b""),
    (b"referer", b""),
    (b"refresh", b""),
    (b"retry-after", b""),
    (b"server", b""),
    (b"set-cookie", b""),
    (b"strict-transport-security", b""),
    (b"transfer-encoding", b""),
    (b"user-agent", b""),
    (b"vary", b""),
    (b"via", b""),
    (b"www-authenticate", b""),
];

/// The static-table indices (first, last) whose name is `name`, if any.
#[inline]
fn static_name_range(name: &[u8]) -> Option<(usize, usize)> {
    let r = match name {
        b":authority" => (1, 1),
        b":method" => (2, 3),
        b":path" => (4, 5),
        b":scheme" => (6, 7),
        b":status" => (8, 14),
        b"accept-charset" => (15, 15),
        b"accept-encoding" => (16, 16),
        b"accept-language" => (17, 17),
        b"accept-ranges" => (18, 18),
        b"accept" => (19, 19),
        b"access-control-allow-origin" => (20, 20),
        b"age" => (21, 21),
        b"allow" => (22, 22),
        b"authorization" => (23, 23),
        b"cache-control" => (24, 24),
        b"content-disposition" => (25, 25),
        b"content-encoding" => (26, 26),
        b"content-language" => (27, 27),
        b"content-length" => (28, 28),
        b"content-location" => (29, 29),
        b"content-range" => (30, 30),
        b"content-type" => (31, 31),
        b"cookie" => (32, 32),
        b"date" => (33, 33),
        b"etag" => (34, 34),
        b"expect" => (35, 35),
        b"expires" => (36, 36),
        b"from" => (37, 37),
        b"host" => (38, 38),
        b"if-match" => (39, 39),
        b"if-modified-since" => (40, 40),
        b"if-none-match" => (41, 41),
        b"if-range" => (42, 42),
        b"if-unmodified-since" => (43, 43),
        b"last-modified" => (44, 44),
        b"link" => (45, 45),
        b"location" => (46, 46),
        b"max-forwards" => (47, 47),
        b"proxy-authenticate" => (48, 48),
        b"proxy-authorization" => (49, 49),
        b"range" => (50, 50),
        b"referer" => (51, 51),
        b"refresh" => (52, 52),
        b"retry-after" => (53, 53),
        b"server" => (54, 54),
        b"set-cookie" => (55, 55),
        b"strict-transport-security" => (56, 56),
        b"transfer-encoding" => (57, 57),
        b"user-agent" => (58, 58),
        b"vary" => (59, 59),
        b"via" => (60, 60),
        b"www-authenticate" => (61, 61),
        _ => return None,
    };
    Some(r)
}

/// Result of a table search for the encoder.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Found {
    /// HPACK index of an entry matching name and value.
    pub full: Option<usize>,
    /// HPACK index of an entry matching the name.
    pub name: Option<usize>,
}

/// Searches the static table (RFC 7541 Appendix A).
#[inline]
pub fn static_find(name: &[u8], value: &[u8]) -> Found {
    match static_name_range(name) {
        None => Found::default(),
        Some((first, last)) => {
            let full = (first..=last).find(|&i| STATIC[i - 1].1 == value);
            Found {
                full,
                name: Some(first),
            }
        }
    }
}

/// One dynamic-table entry.
#[derive(Clone, Debug)]
pub struct Entry {
    /// Field name.
    pub name: Bytes,
    /// Field value.
    pub value: Bytes,
    /// Encoder only: [`name_hash`] of the name (0 in the decoder).
    name_hash: u64,
    /// Encoder only: [`field_hash`] of name and value (0 in the decoder).
    hash: u64,
    /// Decoder only: the field passes [`crate::message::field_ok`] (see
    /// [`super::HeaderField::checked`]).
    checked: bool,
    /// Decoder only: the static slices behind `name` and `value`, when they are static.
    statics: (Option<&'static [u8]>, Option<&'static [u8]>),
}

const K: u64 = 0x517c_c1b7_2722_0a95;

/// A fast non-cryptographic hash of a field name, used by the encoder to skip byte comparisons
/// while searching the dynamic table (equality is always verified on the bytes).
#[inline]
pub fn name_hash(name: &[u8]) -> u64 {
    hash_bytes((name.len() as u64).wrapping_mul(K), name)
}

/// Hash of a (name, value) pair, from the name's [`name_hash`].
#[inline]
pub fn field_hash(name_hash: u64, value: &[u8]) -> u64 {
    hash_bytes(name_hash ^ (value.len() as u64).rotate_left(32), value)
}

#[inline]
fn hash_bytes(mut h: u64, b: &[u8]) -> u64 {
    let mut chunks = b.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        h = (h.rotate_left(5) ^ w).wrapping_mul(K);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut buf = [0u8; 8];
        buf[..rest.len()].copy_from_slice(rest);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(buf)).wrapping_mul(K);
    }
    h ^ (h >> 29)
}

impl Entry {
    /// Decoder only: the entry's field passes [`crate::message::field_ok`] (false in the
    /// encoder, and when inserted with [`DynamicTable::insert`]).
    #[inline]
    pub fn checked(&self) -> bool {
        self.checked
    }

    /// Decoder only: the static slices behind the name and the value, when they are static
    /// (a reference can then build `Bytes::from_static` instead of cloning through the vtable).
    #[inline]
    pub fn statics(&self) -> (Option<&'static [u8]>, Option<&'static [u8]>) {
        self.statics
    }

    /// Entry size per RFC 7541 §4.1.
    #[inline]
    pub fn size(&self) -> usize {
        self.name.len() + self.value.len() + ENTRY_OVERHEAD
    }
}

/// The dynamic table (RFC 7541 §2.3.2, §4).
#[derive(Debug)]
pub struct DynamicTable {
    entries: VecDeque<Entry>,
    size: usize,
    capacity: usize,
    /// Sequence number the next inserted entry gets; the entry at position `i` (0 = newest)
    /// has sequence `inserted - 1 - i`.
    inserted: u64,
    /// Encoder only: field hash -> sequence of the newest entry with that hash.
    by_field: HashMap<u64, u64, BuildHasherDefault<PassThrough>>,
    /// Encoder only: name hash -> sequence of the newest entry with that name hash.
    by_name: HashMap<u64, u64, BuildHasherDefault<PassThrough>>,
}

/// Hasher for keys that already are hashes.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ b as u64).wrapping_mul(K);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

impl DynamicTable {
    /// An empty table with the given maximum size.
    pub fn new(capacity: usize) -> Self {
        DynamicTable {
            entries: VecDeque::new(),
            size: 0,
            capacity,
            inserted: 0,
            by_field: HashMap::default(),
            by_name: HashMap::default(),
        }
    }

    /// Current size (sum of entry sizes, §4.1).
    pub fn size(&self) -> usize {
        self.size
    }

    /// Current maximum size.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Number of insertions since the table was created. Together with [`Self::capacity`] it
    /// names the table's state: entries change (insertion, eviction) only when it grows or the
    /// capacity changes.
    pub fn insertions(&self) -> u64 {
        self.inserted
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the table holds no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entry at dynamic index `i` (1 = newest), i.e. HPACK index `i + 61`.
    #[inline]
    pub fn get(&self, i: usize) -> Option<&Entry> {
        self.entries.get(i.wrapping_sub(1))
    }

    /// Sets the maximum size, evicting the oldest entries until the size fits (§4.3).
    pub fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity;
        self.evict_to(capacity);
    }

    fn evict_to(&mut self, target: usize) {
        while self.size > target {
            let seq = self.inserted - self.entries.len() as u64;
            match self.entries.pop_back() {
                Some(e) => {
                    self.size -= e.size();
                    if e.hash != 0 || e.name_hash != 0 {
                        if self.by_field.get(&e.hash) == Some(&seq) {
                            self.by_field.remove(&e.hash);
                        }
                        if self.by_name.get(&e.name_hash) == Some(&seq) {
                            self.by_name.remove(&e.name_hash);
                        }
                    }
                }
                None => {
                    self.size = 0;
                    break;
                }
            }
        }
    }

    /// Inserts a new entry (§4.4): evicts until it fits; an entry larger than the capacity
    /// empties the table and is not stored.
    pub fn insert(&mut self, name: Bytes, value: Bytes) {
        self.insert_decoded(name, value, false, (None, None));
    }

    /// [`DynamicTable::insert`] for the decoder, noting whether the field passes
    /// [`crate::message::field_ok`] ([`Entry::checked`]) and the static slices behind name and
    /// value ([`Entry::statics`]: each must hold the same bytes as the `Bytes` beside it).
    #[allow(clippy::type_complexity)]
    pub fn insert_decoded(
        &mut self,
        name: Bytes,
        value: Bytes,
        checked: bool,
        statics: (Option<&'static [u8]>, Option<&'static [u8]>),
    ) {
        debug_assert!(statics.0.is_none_or(|s| s == name));
        debug_assert!(statics.1.is_none_or(|s| s == value));
        self.push(Entry {
            name,
            value,
            name_hash: 0,
            hash: 0,
            checked,
            statics,
        });
    }

    /// [`DynamicTable::insert`] recording the encoder's hashes for [`DynamicTable::find_hashed`].
    pub fn insert_hashed(&mut self, name: Bytes, value: Bytes, name_hash: u64, hash: u64) {
        self.push(Entry {
            name,
            value,
            name_hash,
            hash,
            checked: false,
            statics: (None, None),
        });
    }

    fn push(&mut self, e: Entry) {
        let (name_hash, hash) = (e.name_hash, e.hash);
        let sz = e.size();
        if sz > self.capacity {
            self.entries.clear();
            self.by_field.clear();
            self.by_name.clear();
            self.size = 0;
            // Counted all the same: the table's state changed (see `insertions`).
            self.inserted += 1;
            return;
        }
        self.evict_to(self.capacity - sz);
        self.size += sz;
        if hash != 0 || name_hash != 0 {
            self.by_field.insert(hash, self.inserted);
            self.by_name.insert(name_hash, self.inserted);
        }
        self.inserted += 1;
        self.entries.push_front(e);
    }

    /// Searches the table; indices returned are HPACK indices (62 and up). Prefers the newest
    /// entry, which is the one least likely to be evicted soon.
    #[inline]
    pub fn find(&self, name: &[u8], value: &[u8]) -> Found {
        let mut found = Found::default();
        for (i, e) in self.entries.iter().enumerate() {
            if e.name.len() == name.len() && e.name[..] == *name {
                if found.name.is_none() {
                    found.name = Some(i + 1 + STATIC_LEN);
                }
                if e.value[..] == *value {
                    found.full = Some(i + 1 + STATIC_LEN);
                    break;
                }
            }
        }
        found
    }

    /// [`DynamicTable::find`] for a table filled by [`DynamicTable::insert_hashed`]: compares
    /// hashes first, bytes only on a hash match.
    #[inline]
    pub fn find_hashed(&self, name: &[u8], value: &[u8], nh: u64, fh: u64) -> Found {
        let mut found = Found::default();
        let at = |seq: u64| -> Option<(usize, &Entry)> {
            let pos = self.inserted.checked_sub(seq + 1)? as usize;
            self.entries.get(pos).map(|e| (pos + 1 + STATIC_LEN, e))
        };
        if let Some((idx, e)) = self.by_field.get(&fh).and_then(|&s| at(s)) {
            if e.name[..] == *name && e.value[..] == *value {
                found.full = Some(idx);
                found.name = Some(idx);
                return found;
            }
        }
        if let Some((idx, e)) = self.by_name.get(&nh).and_then(|&s| at(s)) {
            if e.name[..] == *name {
                found.name = Some(idx);
            }
        }
        found
    }

    /// Entries newest first (for tests and diagnostics).
    pub fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_ranges_match_the_table() {
        for (i, (name, value)) in STATIC.iter().enumerate() {
            let f = static_find(name, value);
            assert_eq!(f.full, Some(i + 1), "{:?}", String::from_utf8_lossy(name));
            let (first, last) = static_name_range(name).unwrap();
            assert!((first..=last).contains(&(i + 1)));
            assert_eq!(STATIC[first - 1].0, *name);
        }
        assert_eq!(static_find(b"x-unknown", b""), Found::default());
    }

    #[test]
    fn eviction_and_size_accounting() {
        let mut t = DynamicTable::new(100);
        t.insert(Bytes::from_static(b"aaaa"), Bytes::from_static(b"1111")); // 40
        t.insert(Bytes::from_static(b"bbbb"), Bytes::from_static(b"2222")); // 80
        assert_eq!((t.len(), t.size()), (2, 80));
        t.insert(Bytes::from_static(b"cccc"), Bytes::from_static(b"3333")); // evicts aaaa
        assert_eq!((t.len(), t.size()), (2, 80));
        assert_eq!(&t.get(1).unwrap().name[..], b"cccc");
        assert_eq!(&t.get(2).unwrap().name[..], b"bbbb");
        assert!(t.get(3).is_none());
        assert!(t.get(0).is_none());
        assert_eq!(t.find(b"bbbb", b"2222").full, Some(63));
        let mut h = DynamicTable::new(4096);
        for (n, v) in [(&b"a"[..], &b"1"[..]), (b"b", b"2"), (b"a", b"3")] {
            let nh = name_hash(n);
            h.insert_hashed(
                Bytes::copy_from_slice(n),
                Bytes::copy_from_slice(v),
                nh,
                field_hash(nh, v),
            );
        }
        let f = |n: &[u8], v: &[u8]| h.find_hashed(n, v, name_hash(n), field_hash(name_hash(n), v));
        assert_eq!(
            f(b"a", b"1"),
            Found {
                full: Some(64),
                name: Some(64)
            }
        );
        assert_eq!(
            f(b"a", b"3"),
            Found {
                full: Some(62),
                name: Some(62)
            }
        );
        assert_eq!(
            f(b"b", b"9"),
            Found {
                full: None,
                name: Some(63)
            }
        );
        assert_eq!(f(b"c", b"1"), Found::default());
        // Too large: empties the table.
        t.insert(Bytes::from(vec![b'x'; 69]), Bytes::new());
        assert_eq!((t.len(), t.size()), (0, 0));
        t.insert(Bytes::from(vec![b'x'; 68]), Bytes::new()); // exactly 100
        assert_eq!((t.len(), t.size()), (1, 100));
        t.set_capacity(99);
        assert_eq!((t.len(), t.size()), (0, 0));
    }
}
