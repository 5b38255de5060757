//! The HPACK encoder (RFC 7541 §3, §6).
//!
//! What it does: writes header blocks into a caller's buffer, keeping a dynamic table that
//! mirrors the peer decoder's.
//!
//! Policy:
//! - a field matching a static or dynamic entry exactly is sent as an indexed field (§6.1);
//! - sensitive fields (marked by the caller, or named `authorization`, `proxy-authorization`,
//!   `cookie`, `set-cookie`) are never-indexed literals (§6.2.3, §7.1.3), never inserted;
//! - fields whose values change on every message (`content-length`, `date`, `etag`,
//!   `grpc-timeout`, tracing ids, ...) and entries larger than [`MAX_INDEXED_ENTRY_SIZE`] or
//!   three quarters of the table are literals without indexing (§6.2.2): they would only evict
//!   useful entries;
//! - everything else (`:authority`, `:path`, `content-type`, `user-agent`, `te`, `grpc-*`, ...) is
//!   a literal with incremental indexing (§6.2.1), so it is a one-octet index next time;
//! - each string is Huffman-coded when that is strictly shorter (§5.2).
//!
//! Table size: the encoder uses `min(peer SETTINGS_HEADER_TABLE_SIZE, ENCODER_TABLE_SIZE_CAP)`.
//! A change is signalled at the start of the next block; if the size shrank and grew again
//! between two blocks, the minimum is signalled first, then the final size (§4.2).
//!
//! Replay: [`Encoder::encode_block`] remembers up to [`REPLAY_ENTRIES`] recent blocks that
//! changed nothing in the dynamic table (every field indexed or a literal without indexing),
//! with the table state they were encoded against (insertion count and capacity). The same
//! field list against the same table state encodes to the same octets (the encoding is a pure
//! function of both), so a repeat — the usual case for gRPC calls on one connection — copies
//! the stored octets instead of searching the tables field by field. Fields are compared byte
//! for byte, never by hash.
//!
//! What it must not do: emit an index the peer does not have, or exceed the peer's table size.

use super::table::{field_hash, name_hash, static_find, DynamicTable, Found, ENTRY_OVERHEAD};
use super::{huffman, integer, FieldRef};
use bytes::{BufMut, Bytes, BytesMut};

/// Largest dynamic table the encoder uses, whatever the peer allows: 4096 octets (the RFC
/// default) keeps per-connection memory bounded and covers gRPC's repeated fields.
pub const ENCODER_TABLE_SIZE_CAP: usize = 4096;

/// Largest entry (name + value + 32) the encoder inserts into the dynamic table.
pub const MAX_INDEXED_ENTRY_SIZE: usize = 1024;

/// Number of recent header blocks [`Encoder::encode_block`] can replay (two: a response's
/// headers and its trailers, or two request shapes).
pub const REPLAY_ENTRIES: usize = 2;

/// Largest field list (sum of name and value lengths) a replay entry stores: bounds the
/// encoder's extra memory to about `REPLAY_ENTRIES * (REPLAY_MAX_FIELD_BYTES + encoded size)`.
pub const REPLAY_MAX_FIELD_BYTES: usize = 512;

/// One replayable block: its fields, the table state it was encoded against, and its octets.
#[derive(Debug, Default)]
struct Replay {
    /// `DynamicTable::insertions` when encoded.
    insertions: u64,
    /// `DynamicTable::capacity` when encoded.
    capacity: usize,
    /// Per field: name length, value length, sensitive flag.
    lens: Vec<(u32, u32, bool)>,
    /// Names and values, concatenated in order.
    bytes: Vec<u8>,
    /// The encoded block.
    out: Vec<u8>,
}

impl Replay {
    /// Whether `fields` are exactly the stored fields (names, values, flags), in order.
    #[inline]
    fn matches(&self, fields: &[FieldRef<'_>]) -> bool {
        if self.lens.len() != fields.len() {
            return false;
        }
        let mut at = 0usize;
        for (f, &(nl, vl, sensitive)) in fields.iter().zip(&self.lens) {
            let (nl, vl) = (nl as usize, vl as usize);
            if f.name.len() != nl || f.value.len() != vl || f.sensitive != sensitive {
                return false;
            }
            let Some(name) = self.bytes.get(at..at + nl) else {
                return false;
            };
            let Some(value) = self.bytes.get(at + nl..at + nl + vl) else {
                return false;
            };
            if !same_bytes(name, f.name) || !same_bytes(value, f.value) {
                return false;
            }
            at += nl + vl;
        }
        true
    }

    fn store(&mut self, fields: &[FieldRef<'_>], insertions: u64, capacity: usize, out: &[u8]) {
        self.insertions = insertions;
        self.capacity = capacity;
        self.lens.clear();
        self.bytes.clear();
        for f in fields {
            // Lengths fit: the caller checked the total against REPLAY_MAX_FIELD_BYTES.
            self.lens
                .push((f.name.len() as u32, f.value.len() as u32, f.sensitive));
            self.bytes.extend_from_slice(f.name);
            self.bytes.extend_from_slice(f.value);
        }
        self.out.clear();
        self.out.extend_from_slice(out);
    }
}

/// `a == b` for two slices, inline for the short strings of header fields (up to 16 octets:
/// two overlapping loads per side) instead of a `memcmp` call per name and value; longer
/// slices use the slice comparison.
#[inline]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let w4 = |s: &[u8], at: usize| u32::from_ne_bytes([s[at], s[at + 1], s[at + 2], s[at + 3]]);
    let w8 = |s: &[u8], at: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&s[at..at + 8]);
        u64::from_ne_bytes(w)
    };
    match n {
        0 => true,
        // Positions 0, n/2 and n-1 cover every octet of 1 to 3.
        1..=3 => a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1],
        4..=7 => w4(a, 0) == w4(b, 0) && w4(a, n - 4) == w4(b, n - 4),
        8..=16 => w8(a, 0) == w8(b, 0) && w8(a, n - 8) == w8(b, n - 8),
        _ => a == b,
    }
}

/// HPACK encoder: one per connection direction.
#[derive(Debug)]
pub struct Encoder {
    table: DynamicTable,
    /// Pending size change to signal: (smallest size since the last block, final size).
    pending: Option<(usize, usize)>,
    /// Huffman-code strings when shorter (default) or never.
    huffman: bool,
    /// Reused buffer for Huffman output.
    scratch: Vec<u8>,
    /// Recent replayable blocks (see the module docs); `replay_next` is the one to overwrite.
    replay: [Replay; REPLAY_ENTRIES],
    replay_next: usize,
}

impl Default for Encoder {
    fn default() -> Self {
        Self::new()
    }
}

/// Names sent as never-indexed literals regardless of the caller's flag.
#[inline]
fn always_sensitive(name: &[u8]) -> bool {
    matches!(
        name,
        b"authorization" | b"proxy-authorization" | b"cookie" | b"set-cookie"
    )
}

/// Names whose values are (nearly) unique per message: not worth a table entry.
#[inline]
fn never_worth_indexing(name: &[u8]) -> bool {
    matches!(
        name,
        b"content-length"
            | b"date"
            | b"etag"
            | b"last-modified"
            | b"expires"
            | b"age"
            | b"if-modified-since"
            | b"if-unmodified-since"
            | b"if-none-match"
            | b"if-match"
            | b"if-range"
            | b"range"
            | b"content-range"
            | b"location"
            | b"grpc-timeout"
            | b"grpc-message"
            | b"x-request-id"
            | b"x-correlation-id"
            | b"traceparent"
            | b"tracestate"
            | b"x-b3-traceid"
            | b"x-b3-spanid"
            | b"x-b3-parentspanid"
            | b"x-amzn-trace-id"
            | b"x-cloud-trace-context"
    )
}

impl Encoder {
    /// An encoder for a peer with the RFC default table size of 4096.
    pub fn new() -> Self {
        Encoder {
            table: DynamicTable::new(4096),
            pending: None,
            huffman: true,
            scratch: Vec::new(),
            replay: Default::default(),
            replay_next: 0,
        }
    }

    /// Peer's SETTINGS_HEADER_TABLE_SIZE: a size update is emitted at the start of the next block.
    pub fn set_max_table_size(&mut self, n: usize) {
        let eff = n.min(ENCODER_TABLE_SIZE_CAP);
        self.pending = Some(match self.pending {
            None => (eff, eff),
            Some((min, _)) => (min.min(eff), eff),
        });
    }

    /// Whether strings are Huffman-coded when that is shorter (the default, `true`) or always
    /// sent as plain octets (`false`; for tests and for peers that decode Huffman slowly).
    pub fn set_use_huffman(&mut self, on: bool) {
        if self.huffman != on {
            // Stored blocks were encoded with the other setting.
            for r in &mut self.replay {
                r.lens.clear();
                r.out.clear();
            }
        }
        self.huffman = on;
    }

    /// Current dynamic table size in bytes (§4.1 accounting).
    pub fn table_size(&self) -> usize {
        self.table.size()
    }

    /// Current dynamic table maximum size.
    pub fn table_capacity(&self) -> usize {
        self.table.capacity()
    }

    /// Number of entries in the dynamic table.
    pub fn table_len(&self) -> usize {
        self.table.len()
    }

    /// Dynamic table entries, newest (HPACK index 62) first.
    pub fn table_entries(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.table.iter().map(|e| (&e.name[..], &e.value[..]))
    }

    /// Encodes one header block into `dst`.
    pub fn encode<'a, I: IntoIterator<Item = FieldRef<'a>>>(
        &mut self,
        fields: I,
        dst: &mut BytesMut,
    ) {
        if let Some((min, fin)) = self.pending.take() {
            // A size change can evict entries without any insertion (shrink, then grow back to
            // the same capacity): the (insertions, capacity) key of a stored block would no
            // longer describe the table, so every stored block is forgotten.
            for r in &mut self.replay {
                r.lens.clear();
                r.out.clear();
            }
            // §4.2: signal the smallest size reached, then the final one.
            let cur = self.table.capacity();
            if min < fin && min < cur {
                integer::encode(min, 5, 0x20, dst);
                self.table.set_capacity(min);
            }
            if fin != self.table.capacity() {
                integer::encode(fin, 5, 0x20, dst);
                self.table.set_capacity(fin);
            }
        }
        for f in fields {
            self.encode_field(f, dst);
        }
    }

    /// [`Encoder::encode`] for a field slice, replaying a recent identical block when the table
    /// is in the state that block was encoded against (see the module docs). The octets are
    /// the same as `encode` would write.
    pub fn encode_block(&mut self, fields: &[FieldRef<'_>], dst: &mut BytesMut) {
        if fields.is_empty() || self.pending.is_some() {
            return self.encode(fields.iter().copied(), dst);
        }
        let insertions = self.table.insertions();
        let capacity = self.table.capacity();
        for r in &self.replay {
            if r.insertions == insertions
                && r.capacity == capacity
                && !r.out.is_empty()
                && r.matches(fields)
            {
                dst.extend_from_slice(&r.out);
                return;
            }
        }
        let start = dst.len();
        self.encode(fields.iter().copied(), dst);
        let field_bytes: usize = fields.iter().map(|f| f.name.len() + f.value.len()).sum();
        if self.table.insertions() == insertions
            && self.table.capacity() == capacity
            && field_bytes <= REPLAY_MAX_FIELD_BYTES
        {
            let slot = self.replay_next;
            self.replay_next = (slot + 1) % REPLAY_ENTRIES;
            let out = dst.get(start..).unwrap_or_default();
            self.replay[slot].store(fields, insertions, capacity, out);
        }
    }

    fn encode_field(&mut self, f: FieldRef<'_>, dst: &mut BytesMut) {
        let sensitive = f.sensitive || always_sensitive(f.name);
        let st = static_find(f.name, f.value);
        let nh = name_hash(f.name);
        if sensitive {
            let name_idx = st
                .name
                .or_else(|| self.table.find_hashed(f.name, b"", nh, !0).name);
            self.literal(0x10, 4, name_idx, f, dst);
            return;
        }
        if let Some(i) = st.full {
            integer::encode(i, 7, 0x80, dst);
            return;
        }
        let fh = field_hash(nh, f.value);
        let dy = if self.table.is_empty() {
            Found::default()
        } else {
            self.table.find_hashed(f.name, f.value, nh, fh)
        };
        if let Some(i) = dy.full {
            integer::encode(i, 7, 0x80, dst);
            return;
        }
        let name_idx = st.name.or(dy.name);
        let size = f.name.len() + f.value.len() + ENTRY_OVERHEAD;
        let index = size <= MAX_INDEXED_ENTRY_SIZE
            && size * 4 <= self.table.capacity() * 3
            && !never_worth_indexing(f.name);
        if index {
            self.literal(0x40, 6, name_idx, f, dst);
            self.table.insert_hashed(
                Bytes::copy_from_slice(f.name),
                Bytes::copy_from_slice(f.value),
                nh,
                fh,
            );
        } else {
            self.literal(0x00, 4, name_idx, f, dst);
        }
    }

    /// A literal representation (§6.2) with the given first-octet flags and name-index prefix.
    #[inline]
    fn literal(
        &mut self,
        flags: u8,
        prefix: u8,
        name_idx: Option<usize>,
        f: FieldRef<'_>,
        dst: &mut BytesMut,
    ) {
        match name_idx {
            Some(i) => integer::encode(i, prefix, flags, dst),
            None => {
                dst.put_u8(flags);
                self.string(f.name, dst);
            }
        }
        self.string(f.value, dst);
    }

    /// A string literal (§5.2), Huffman-coded when strictly shorter.
    #[inline]
    fn string(&mut self, s: &[u8], dst: &mut BytesMut) {
        let hlen = if self.huffman {
            huffman::encoded_len(s)
        } else {
            usize::MAX
        };
        if hlen < s.len() {
            integer::encode(hlen, 7, 0x80, dst);
            self.scratch.clear();
            huffman::encode(s, &mut self.scratch);
            dst.extend_from_slice(&self.scratch);
        } else {
            integer::encode(s.len(), 7, 0x00, dst);
            dst.extend_from_slice(s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::same_bytes;

    /// Every length up to 40, every single-octet difference: same_bytes agrees with `==`.
    #[test]
    fn same_bytes_agrees_with_slice_equality() {
        for n in 0..=40usize {
            let a: Vec<u8> = (0..n).map(|i| (i * 7 + 3) as u8).collect();
            assert!(same_bytes(&a, &a.clone()), "len {n}");
            for at in 0..n {
                let mut b = a.clone();
                b[at] ^= 0x20;
                assert!(!same_bytes(&a, &b), "len {n}, octet {at}");
            }
            assert!(!same_bytes(&a, &a[..n.saturating_sub(1)]) || n == 0);
        }
    }
}
