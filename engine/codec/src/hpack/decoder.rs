//! The HPACK decoder (RFC 7541 §3, §6).
//!
//! What it does: decodes complete header blocks, in the order the peer sent them, into a
//! [`HeaderSink`], maintaining the dynamic table shared with the peer's encoder.
//!
//! What it must not do: panic, build a map, copy plain literals, or let the peer exceed our
//! SETTINGS_HEADER_TABLE_SIZE.
//!
//! Invariants: the dynamic table capacity never exceeds the limit we advertised
//! (`max_table_size`); a size update is accepted only before the first field representation of a
//! block (§4.2); after a block that exceeded the header list size the table is still in sync.
//!
//! Memory: strings handed to the sink may share memory with the block (plain literals) or with
//! a small decoder-owned arena chunk of [`ARENA_CHUNK`] octets (Huffman literals), so a field
//! keeps at most its block or one chunk alive. Strings stored in the dynamic table are always
//! copied into their own exact-size allocation: a long-lived table entry never pins a receive
//! buffer or an arena chunk, so the table's memory stays within its §4.1 size plus overhead.
//! A table string equal to one of the few names and values every gRPC call repeats
//! ([`INTERNED`]) is a static `Bytes` instead, so the fields decoded from that entry on every
//! later request share it without reference counting; so is a literal name, or the value of a
//! field like `:authority` or `user-agent`, while the thread's bounded pool of immortal strings
//! has room ([`super::pool`], at most `POOL_BYTES` per thread).
//!
//! Recent literals: a value sent as a Huffman-coded literal without indexing is decoded anew
//! every time, and some encoders send a value that repeats that way on every request (nghttp2,
//! and so h2load and curl, never index `:path`; many encoders never index `date`). The decoder
//! remembers the octets of the last few such values ([`RECENT_LITERALS`], each at most
//! [`RECENT_LITERAL_MAX`] octets as sent) and, once one is seen a second time, its decoded
//! copy: later repeats cost a comparison instead of a Huffman decode (the copy is the pool's
//! immortal string for the fields the pool lists, else one exact-size allocation). Slots are
//! reused in CLOCK order, so values that never repeat (request ids) take turns in the slots
//! without evicting a value used since the hand last passed. Never-indexed literals (§6.2.3)
//! are never remembered.

use super::table::{DynamicTable, ENTRY_OVERHEAD, STATIC, STATIC_LEN};
use super::{huffman, integer, pool, HeaderField, HeaderSink, HpackError};
use crate::message;
use bytes::{Bytes, BytesMut};

/// Size of the arena chunks Huffman-decoded strings are carved from (one allocation per chunk
/// instead of one per string). Strings longer than a quarter chunk get their own allocation.
pub const ARENA_CHUNK: usize = 2048;

/// Huffman-coded literal values without indexing remembered per decoder (see the module docs).
pub const RECENT_LITERALS: usize = 4;
/// Longest remembered literal value, in octets as sent (Huffman-coded): about 60 characters,
/// enough for most gRPC method paths. About 100 bytes per slot per decoder.
pub const RECENT_LITERAL_MAX: usize = 48;

/// One remembered literal value: the octets as sent and, from its second sighting on, the
/// decoded value.
#[derive(Debug)]
struct Recent {
    /// Octets in `key` (0: empty slot).
    len: u8,
    /// Hit since the CLOCK hand last passed (kept for another round).
    used: bool,
    key: [u8; RECENT_LITERAL_MAX],
    value: Option<Bytes>,
    /// `value`'s static slice when it is the pool's string.
    value_static: Option<&'static [u8]>,
}

impl Recent {
    const EMPTY: Recent = Recent {
        len: 0,
        used: false,
        key: [0; RECENT_LITERAL_MAX],
        value: None,
        value_static: None,
    };
}

/// Default max header list size (RFC 9113 §6.5.2 accounting: name + value + 32 per field).
pub const DEFAULT_MAX_HEADER_LIST_SIZE: usize = 64 * 1024;

/// HPACK decoder: one per connection direction (it holds the peer encoder's table mirror).
#[derive(Debug)]
pub struct Decoder {
    table: DynamicTable,
    /// Our SETTINGS_HEADER_TABLE_SIZE: bound on the peer's size updates.
    max_table_size: usize,
    /// Max header list size; lists above it are decoded but not delivered.
    max_header_list_size: usize,
    /// Set when our limit dropped below the table's current capacity: the next block must
    /// start with a size update (RFC 7541 §4.2).
    update_required: bool,
    /// Reused buffer for Huffman decoding.
    scratch: Vec<u8>,
    /// Current arena chunk for Huffman-decoded strings (see the module docs).
    arena: BytesMut,
    /// Recently seen literal values (see the module docs).
    recent: [Recent; RECENT_LITERALS],
    /// The CLOCK hand over `recent`.
    hand: usize,
}

impl Decoder {
    /// `max_table_size`: our advertised SETTINGS_HEADER_TABLE_SIZE (bound for the peer's size
    /// updates). The table starts at that size. Until the peer has acknowledged our SETTINGS it
    /// may use the protocol default of 4096, so a connection advertising less should start with
    /// `Decoder::new(4096)` and call [`Decoder::set_max_table_size`] on the ACK, which then
    /// requires the peer's next block to begin with a size update (RFC 7541 §4.2).
    pub fn new(max_table_size: usize) -> Self {
        Decoder {
            table: DynamicTable::new(max_table_size),
            max_table_size,
            max_header_list_size: DEFAULT_MAX_HEADER_LIST_SIZE,
            update_required: false,
            scratch: Vec::with_capacity(256),
            arena: BytesMut::new(),
            recent: [Recent::EMPTY; RECENT_LITERALS],
            hand: 0,
        }
    }

    /// Changes our SETTINGS_HEADER_TABLE_SIZE; call it once the peer has acknowledged the
    /// SETTINGS frame carrying the new value. If the new limit is below the table's current
    /// maximum size, the peer's next block must begin with a size update within the limit
    /// (RFC 7541 §4.2), otherwise decoding fails with [`HpackError::SizeUpdateMissing`].
    pub fn set_max_table_size(&mut self, n: usize) {
        self.max_table_size = n;
        if n < self.table.capacity() {
            self.update_required = true;
        }
    }

    /// Max header list size (RFC 7541 §4.1 sizes: name + value + 32 per field). Default 64 KiB.
    pub fn set_max_header_list_size(&mut self, n: usize) {
        self.max_header_list_size = n;
    }

    /// Current dynamic table size in bytes (§4.1 accounting).
    pub fn table_size(&self) -> usize {
        self.table.size()
    }

    /// Current dynamic table maximum size, as last set by the peer.
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

    /// Decode one complete header block, handing fields to `sink` in order.
    ///
    /// If the list exceeds the max header list size, the decoder STILL decodes the whole block
    /// (so the dynamic table stays in sync with the peer), stops handing fields to the sink, and
    /// returns Err(HpackError::HeaderListTooLarge) at the end: that one is a stream-level error;
    /// every other error is a connection-level COMPRESSION_ERROR
    /// (`HpackError::is_connection_error()`), and fields before the error may have been handed
    /// to the sink.
    pub fn decode<S: HeaderSink>(&mut self, block: &Bytes, sink: &mut S) -> Result<(), HpackError> {
        let buf: &[u8] = block;
        let mut pos = 0;
        let mut list_size: usize = 0;
        let mut over = false;
        let mut at_start = true;
        while let Some(&b) = buf.get(pos) {
            let field = if b & 0x80 != 0 {
                // Indexed field (§6.1).
                let idx = integer::decode(buf, &mut pos, 7)?;
                self.check_update(at_start)?;
                let (name, value, checked) = self.lookup(idx)?;
                HeaderField {
                    name,
                    value,
                    never_index: false,
                    checked,
                }
            } else if b & 0x40 != 0 {
                // Literal with incremental indexing (§6.2.1).
                self.check_update(at_start)?;
                let (name, value, name_static, literal_name) =
                    self.literal(block, &mut pos, 6, false)?;
                // The table gets its own copy (see the module docs); the field shares it.
                let o = own(name, value, literal_name, name_static);
                let (name, value) = (o.name.clone(), o.value.clone());
                // Checked once here for every later reference to the entry.
                let checked = message::field_ok(&name, &value);
                self.table.insert_decoded(
                    o.name,
                    o.value,
                    checked,
                    (o.name_static, o.value_static),
                );
                HeaderField {
                    name,
                    value,
                    never_index: false,
                    checked,
                }
            } else if b & 0x20 != 0 {
                // Dynamic table size update (§6.3), only at the start of a block (§4.2).
                if !at_start {
                    return Err(HpackError::SizeUpdateNotAtStart);
                }
                let n = integer::decode(buf, &mut pos, 5)?;
                if n > self.max_table_size {
                    return Err(HpackError::SizeUpdateTooLarge {
                        requested: n,
                        max: self.max_table_size,
                    });
                }
                self.table.set_capacity(n);
                self.update_required = false;
                continue;
            } else {
                // Literal without indexing (0000, §6.2.2) or never indexed (0001, §6.2.3).
                self.check_update(at_start)?;
                let never_index = b & 0x10 != 0;
                let (name, value, _, _) = self.literal(block, &mut pos, 4, !never_index)?;
                HeaderField {
                    name,
                    value,
                    never_index,
                    checked: false,
                }
            };
            at_start = false;
            list_size =
                list_size.saturating_add(field.name.len() + field.value.len() + ENTRY_OVERHEAD);
            if list_size > self.max_header_list_size {
                over = true;
            }
            if !over {
                sink.field(field);
            }
        }
        if self.update_required {
            return Err(HpackError::SizeUpdateMissing);
        }
        if over {
            return Err(HpackError::HeaderListTooLarge {
                size: list_size,
                max: self.max_header_list_size,
            });
        }
        Ok(())
    }

    /// A field representation is starting: a required size update must have come first.
    #[inline]
    fn check_update(&self, at_start: bool) -> Result<(), HpackError> {
        if at_start && self.update_required {
            return Err(HpackError::SizeUpdateMissing);
        }
        Ok(())
    }

    /// Name and value at HPACK index `idx` (§2.3.3), and whether the field is known to pass
    /// [`message::field_ok`].
    #[inline]
    fn lookup(&self, idx: usize) -> Result<(Bytes, Bytes, bool), HpackError> {
        if idx == 0 {
            return Err(HpackError::ZeroIndex);
        }
        if idx <= STATIC_LEN {
            let (n, v) = STATIC[idx - 1];
            return Ok((
                Bytes::from_static(n),
                Bytes::from_static(v),
                static_checked(idx),
            ));
        }
        match self.table.get(idx - STATIC_LEN) {
            Some(e) => {
                let (n, v) = e.statics();
                let name = n.map_or_else(|| e.name.clone(), Bytes::from_static);
                let value = v.map_or_else(|| e.value.clone(), Bytes::from_static);
                Ok((name, value, e.checked()))
            }
            None => Err(HpackError::IndexOutOfRange { index: idx }),
        }
    }

    /// A literal representation (§6.2) whose name index has a `prefix`-bit prefix: name, value,
    /// the name's static slice (an indexed static name) and whether the name was a literal.
    /// `recall`: the value may come from (and goes to) the recent literals (module docs).
    #[inline]
    #[allow(clippy::type_complexity)]
    fn literal(
        &mut self,
        block: &Bytes,
        pos: &mut usize,
        prefix: u8,
        recall: bool,
    ) -> Result<(Bytes, Bytes, Option<&'static [u8]>, bool), HpackError> {
        let idx = integer::decode(block, pos, prefix)?;
        let (name, name_static) = if idx == 0 {
            (self.string(block, pos)?, None)
        } else {
            self.lookup_name(idx)?
        };
        let value = if recall {
            self.recent_value(block, pos, &name)?
        } else {
            self.string(block, pos)?
        };
        Ok((name, value, name_static, idx == 0))
    }

    /// A literal value (§5.2) taken from the recent literals when its octets were seen before,
    /// remembered otherwise. Only Huffman-coded values of 1..=[`RECENT_LITERAL_MAX`] octets
    /// (a one-octet length prefix) are remembered; any other string is decoded as usual.
    fn recent_value(
        &mut self,
        block: &Bytes,
        pos: &mut usize,
        name: &[u8],
    ) -> Result<Bytes, HpackError> {
        let at = *pos;
        let len = match block.get(at) {
            Some(&b) if b & 0x80 != 0 => usize::from(b & 0x7f),
            _ => 0,
        };
        if len == 0 || len > RECENT_LITERAL_MAX || at + 1 + len > block.len() {
            return self.string(block, pos);
        }
        let src = &block[at + 1..at + 1 + len];
        let hit = self
            .recent
            .iter()
            .position(|r| usize::from(r.len) == len && r.key[..len] == *src);
        match hit {
            Some(i) => {
                let r = &mut self.recent[i];
                r.used = true;
                if let Some(s) = r.value_static {
                    *pos = at + 1 + len;
                    return Ok(Bytes::from_static(s));
                }
                if let Some(v) = &r.value {
                    *pos = at + 1 + len;
                    return Ok(v.clone());
                }
                // Second sighting: keep a copy of its own (never a view of the arena chunk,
                // which it would pin).
                let decoded = self.string(block, pos)?;
                let pooled = pool::pools_value_of(name)
                    .then(|| pool::pooled_static(&decoded))
                    .flatten();
                let kept =
                    pooled.map_or_else(|| Bytes::copy_from_slice(&decoded), Bytes::from_static);
                let r = &mut self.recent[i];
                r.value = Some(kept.clone());
                r.value_static = pooled;
                Ok(kept)
            }
            None => {
                let decoded = self.string(block, pos)?;
                let slot = self.clock_victim();
                let r = &mut self.recent[slot];
                r.len = len as u8;
                r.used = false;
                r.key[..len].copy_from_slice(src);
                r.value = None;
                r.value_static = None;
                Ok(decoded)
            }
        }
    }

    /// The recent-literal slot to reuse: the first from the hand not used since the hand last
    /// passed (CLOCK); the hand clears the marks it passes, so this ends within one turn.
    fn clock_victim(&mut self) -> usize {
        loop {
            let i = self.hand;
            self.hand = (self.hand + 1) % RECENT_LITERALS;
            let r = &mut self.recent[i];
            if !r.used {
                return i;
            }
            r.used = false;
        }
    }

    /// The name at HPACK index `idx`, with its static slice when it is static.
    #[inline]
    fn lookup_name(&self, idx: usize) -> Result<(Bytes, Option<&'static [u8]>), HpackError> {
        if idx <= STATIC_LEN {
            // idx >= 1 here: 0 means a literal name.
            return match STATIC.get(idx.wrapping_sub(1)) {
                Some((n, _)) => Ok((Bytes::from_static(n), Some(n))),
                None => Err(HpackError::ZeroIndex),
            };
        }
        match self.table.get(idx - STATIC_LEN) {
            Some(e) => {
                let n = e.statics().0;
                Ok((n.map_or_else(|| e.name.clone(), Bytes::from_static), n))
            }
            None => Err(HpackError::IndexOutOfRange { index: idx }),
        }
    }

    /// A string literal (§5.2): H flag, 7-bit prefix length, octets.
    #[inline]
    fn string(&mut self, block: &Bytes, pos: &mut usize) -> Result<Bytes, HpackError> {
        let huff = *block.get(*pos).ok_or(HpackError::Truncated)? & 0x80 != 0;
        let len = integer::decode(block, pos, 7)?;
        let start = *pos;
        let end = start.checked_add(len).ok_or(HpackError::Truncated)?;
        if end > block.len() {
            return Err(HpackError::Truncated);
        }
        *pos = end;
        if huff {
            let src = &block[start..end];
            if src.is_empty() {
                return Ok(Bytes::new());
            }
            let max = huffman::max_decoded_len(src.len());
            if max > ARENA_CHUNK / 4 {
                self.scratch.clear();
                huffman::decode(src, &mut self.scratch)?;
                return Ok(Bytes::copy_from_slice(&self.scratch));
            }
            if self.arena.capacity() < max {
                self.arena = BytesMut::with_capacity(ARENA_CHUNK);
            }
            // Decode straight into the arena (empty here: every string is split off).
            self.arena.resize(max, 0);
            match huffman::decode_into(src, &mut self.arena) {
                Ok(n) => {
                    self.arena.truncate(n);
                    Ok(self.arena.split().freeze())
                }
                Err(e) => {
                    self.arena.clear();
                    Err(e)
                }
            }
        } else {
            Ok(block.slice(start..end))
        }
    }
}

/// Whether static-table entry `idx` passes [`message::field_ok`]: all but `transfer-encoding`
/// (57), a connection-specific field (RFC 9113 §8.2.2). A test checks every entry.
#[inline]
fn static_checked(idx: usize) -> bool {
    idx != 57
}

/// Names and values (beyond RFC 7541's static table) that gRPC calls repeat on every request
/// and response: table entries equal to one of them are static strings.
pub static INTERNED: [&[u8]; 31] = [
    b"te",
    b"trailers",
    b"grpc-status",
    b"grpc-message",
    b"grpc-timeout",
    b"grpc-encoding",
    b"grpc-accept-encoding",
    b"grpc-status-details-bin",
    b"application/grpc",
    b"application/grpc+proto",
    b"application/grpc+json",
    b"identity",
    b"gzip",
    b"identity,deflate,gzip",
    b"0",
    b"1",
    b"2",
    b"3",
    b"4",
    b"5",
    b"6",
    b"7",
    b"8",
    b"9",
    b"10",
    b"11",
    b"12",
    b"13",
    b"14",
    b"15",
    b"16",
];

/// The static copy of `s` when it is one of [`INTERNED`].
#[inline]
fn interned(s: &[u8]) -> Option<&'static [u8]> {
    INTERNED.iter().find(|i| **i == s).copied()
}

/// A new table entry's strings: the `Bytes` the field carries, and the static slices behind
/// them when they are static (so later references build `Bytes::from_static` inline instead of
/// calling through the `Bytes` vtable).
struct Owned {
    name: Bytes,
    value: Bytes,
    name_static: Option<&'static [u8]>,
    value_static: Option<&'static [u8]>,
}

/// Copies a new table entry into one exact-size allocation shared by name and value (the name
/// only if it was a literal; an indexed name is already a static or table string,
/// `indexed_static` when static), or uses the static copy of an [`INTERNED`] name or value, or
/// the thread's pooled copy ([`super::pool`]) of a literal name or of the value of a field the
/// pool lists.
#[inline]
fn own(
    name: Bytes,
    value: Bytes,
    literal_name: bool,
    indexed_static: Option<&'static [u8]>,
) -> Owned {
    let value_static = interned(&value).or_else(|| {
        if pool::pools_value_of(&name) {
            pool::pooled_static(&value)
        } else {
            None
        }
    });
    let name_static = if literal_name {
        interned(&name).or_else(|| pool::pooled_static(&name))
    } else {
        indexed_static
    };
    let (n, v) = match (literal_name, name_static, value_static) {
        (_, Some(n), Some(v)) => (Bytes::from_static(n), Bytes::from_static(v)),
        (_, Some(n), None) => (Bytes::from_static(n), Bytes::copy_from_slice(&value)),
        (false, None, Some(v)) => (name, Bytes::from_static(v)),
        (false, None, None) => (name, Bytes::copy_from_slice(&value)),
        (true, None, Some(v)) => (Bytes::copy_from_slice(&name), Bytes::from_static(v)),
        (true, None, None) => {
            let mut m = BytesMut::with_capacity(name.len() + value.len());
            m.extend_from_slice(&name);
            m.extend_from_slice(&value);
            let n = m.split_to(name.len()).freeze();
            (n, m.freeze())
        }
    };
    Owned {
        name: n,
        value: v,
        name_static,
        value_static,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(d: &mut Decoder, block: &[u8]) -> Vec<HeaderField> {
        let mut out = Vec::new();
        d.decode(&Bytes::copy_from_slice(block), &mut |f: HeaderField| {
            out.push(f)
        })
        .expect("valid block");
        out
    }

    /// A table entry with an interned name and value hands out the static strings (same
    /// address as `INTERNED`), when inserted and on every later indexed reference; other
    /// entries keep their own copies.
    #[test]
    fn interned_table_entries_are_static() {
        let mut d = Decoder::new(4096);
        // Literal with incremental indexing, new name "te", value "trailers" (plain strings);
        // then literal with indexing, new name "x-a", value "trailers".
        let first = decode_all(&mut d, b"\x40\x02te\x08trailers\x40\x03x-a\x08trailers");
        // Indexed 63 (the older entry, te: trailers) and 62 (x-a: trailers).
        let later = decode_all(&mut d, b"\xbf\xbe");
        let te = INTERNED[0].as_ptr();
        let trailers = INTERNED[1].as_ptr();
        for f in [&first[0], &later[0]] {
            assert_eq!((&f.name[..], &f.value[..]), (&b"te"[..], &b"trailers"[..]));
            assert_eq!((f.name.as_ptr(), f.value.as_ptr()), (te, trailers));
        }
        for f in [&first[1], &later[1]] {
            assert_eq!((&f.name[..], &f.value[..]), (&b"x-a"[..], &b"trailers"[..]));
            assert_eq!(f.value.as_ptr(), trailers);
            assert!(!INTERNED.iter().any(|i| i.as_ptr() == f.name.as_ptr()));
        }
    }

    /// A literal without indexing (§6.2.2) or never indexed (§6.2.3) with a static name
    /// index and a Huffman-coded value.
    fn huffman_literal(never_index: bool, name_index: u8, value: &[u8]) -> Vec<u8> {
        let mut enc = Vec::new();
        huffman::encode(value, &mut enc);
        assert!(enc.len() < 127);
        let flag = if never_index { 0x10 } else { 0 };
        // The name index has a 4-bit prefix (§5.1): 15 and up continue in a second octet.
        let mut b = if name_index < 15 {
            vec![flag | name_index]
        } else {
            vec![flag | 0x0f, name_index - 15]
        };
        b.push(0x80 | enc.len() as u8);
        b.extend_from_slice(&enc);
        b
    }

    /// nghttp2 sends `:path` as a Huffman literal without indexing on every request: from the
    /// second sighting on the value is the thread's pooled copy (same address every time,
    /// no Huffman decode); `date` (not pooled) gets one copy of the decoder's own. Values are
    /// always the decoded ones.
    #[test]
    fn repeated_literals_are_recalled() {
        std::thread::spawn(|| {
            let mut d = Decoder::new(4096);
            let path = huffman_literal(false, 4, b"/helloworld.Greeter/SayHello");
            let date = huffman_literal(false, 33, b"Mon, 07 Dec 2026 21:00:00 GMT");
            let mut block = path.clone();
            block.extend_from_slice(&date);
            let rounds: Vec<Vec<HeaderField>> =
                (0..4).map(|_| decode_all(&mut d, &block)).collect();
            for r in &rounds {
                assert_eq!(&r[0].value[..], b"/helloworld.Greeter/SayHello");
                assert_eq!(&r[1].value[..], b"Mon, 07 Dec 2026 21:00:00 GMT");
                assert!(!r[0].never_index && !r[1].never_index);
            }
            let pooled = pool::pooled(b"/helloworld.Greeter/SayHello").expect("pool has room");
            assert_ne!(
                rounds[0][0].value.as_ptr(),
                pooled.as_ptr(),
                "first sighting decoded"
            );
            for r in &rounds[1..] {
                assert_eq!(
                    r[0].value.as_ptr(),
                    pooled.as_ptr(),
                    "recalled :path is pooled"
                );
            }
            assert_ne!(rounds[0][1].value.as_ptr(), rounds[1][1].value.as_ptr());
            for r in &rounds[2..] {
                assert_eq!(
                    r[1].value.as_ptr(),
                    rounds[1][1].value.as_ptr(),
                    "date recalled"
                );
            }
        })
        .join()
        .expect("test thread");
    }

    /// The decoder's `checked` notes agree with `message::field_ok`: for the static table,
    /// for dynamic-table entries (at insertion and on later references), and literals without
    /// indexing are never marked.
    #[test]
    fn checked_flags_match_field_ok() {
        for idx in 1..=STATIC_LEN {
            let (n, v) = STATIC[idx - 1];
            assert_eq!(
                static_checked(idx),
                message::field_ok(n, v),
                "static index {idx}"
            );
        }
        let mut d = Decoder::new(4096);
        // With incremental indexing: x-ok: fine, connection: close, te: gzip, X-Up: v (bad
        // name), x-sp: " v" (bad value); then a literal without indexing x-lit: fine.
        let first = decode_all(
            &mut d,
            b"\x40\x04x-ok\x04fine\x40\x0aconnection\x05close\x40\x02te\x04gzip\
              \x40\x04X-Up\x01v\x40\x04x-sp\x02 v\x00\x05x-lit\x04fine",
        );
        let later = decode_all(&mut d, b"\xc2\xc1\xc0\xbf\xbe\x82");
        let expect = [true, false, false, false, false];
        for (i, ok) in expect.iter().enumerate() {
            assert_eq!(first[i].checked, *ok, "inserted field {i}");
            assert_eq!(later[i].checked, *ok, "referenced field {i}");
            assert_eq!(later[i], first[i]);
            assert_eq!(message::field_ok(&first[i].name, &first[i].value), *ok);
        }
        assert!(!first[5].checked, "literal without indexing");
        assert_eq!((&later[5].value[..], later[5].checked), (&b"GET"[..], true));
    }

    /// Never-indexed values are not remembered: each is decoded anew.
    #[test]
    fn never_indexed_literals_are_not_recalled() {
        let mut d = Decoder::new(4096);
        let block = huffman_literal(true, 23, b"Bearer secret-token-1234");
        let rounds: Vec<Vec<HeaderField>> = (0..3).map(|_| decode_all(&mut d, &block)).collect();
        for r in &rounds {
            assert_eq!(&r[0].name[..], b"authorization");
            assert_eq!(&r[0].value[..], b"Bearer secret-token-1234");
            assert!(r[0].never_index);
        }
        assert_ne!(rounds[1][0].value.as_ptr(), rounds[2][0].value.as_ptr());
        assert!(d.recent.iter().all(|r| r.len == 0 && r.value.is_none()));
    }

    /// A value used on every request keeps its slot while values seen once (request ids)
    /// take turns in the others; a longer value than RECENT_LITERAL_MAX is never remembered.
    #[test]
    fn recent_literals_survive_unique_values() {
        let mut d = Decoder::new(4096);
        let path = huffman_literal(false, 4, b"/pkg.Service/Method");
        let mut recalled = None;
        for i in 0..40 {
            let mut block = path.clone();
            // x-request-id is not a static name: a literal name, then the value.
            let id = format!("req-{i:08}");
            let mut enc = Vec::new();
            huffman::encode(id.as_bytes(), &mut enc);
            block.extend_from_slice(b"\x00\x0cx-request-id");
            block.push(0x80 | enc.len() as u8);
            block.extend_from_slice(&enc);
            let f = decode_all(&mut d, &block);
            assert_eq!(&f[0].value[..], b"/pkg.Service/Method");
            assert_eq!(f[1].value, id.as_bytes());
            if i >= 1 {
                let p = f[0].value.as_ptr();
                assert_eq!(*recalled.get_or_insert(p), p, "round {i}: :path recalled");
            }
        }
        let long = vec![b'a'; 200];
        let block = huffman_literal(false, 4, &long);
        assert!(block.len() > RECENT_LITERAL_MAX + 2);
        let before: Vec<_> = d.recent.iter().map(|r| (r.len, r.key)).collect();
        decode_all(&mut d, &block);
        decode_all(&mut d, &block);
        let after: Vec<_> = d.recent.iter().map(|r| (r.len, r.key)).collect();
        assert_eq!(before, after, "a long value takes no slot");
    }

    /// Two connections on one thread: `:authority` values and literal names come from the
    /// thread's pool (one immortal copy for both tables and every later reference); values of
    /// unlisted fields are each table's own copy.
    #[test]
    fn pooled_table_entries_are_shared_across_decoders() {
        // On a new thread: a fresh pool with the default limit.
        std::thread::spawn(pooled_table_entries_body)
            .join()
            .expect("test thread");
    }

    fn pooled_table_entries_body() {
        // :authority (static name index 1) = "api.example.com", then literal name
        // "x-request-id" = "abc", both with incremental indexing.
        let block = b"\x41\x0fapi.example.com\x40\x0cx-request-id\x03abc";
        let (mut d1, mut d2) = (Decoder::new(4096), Decoder::new(4096));
        let a = decode_all(&mut d1, block);
        let b = decode_all(&mut d2, block);
        let a_later = decode_all(&mut d1, b"\xbf\xbe");
        assert_eq!(
            (&a[0].name[..], &a[0].value[..]),
            (&b":authority"[..], &b"api.example.com"[..])
        );
        assert_eq!(
            (&a[1].name[..], &a[1].value[..]),
            (&b"x-request-id"[..], &b"abc"[..])
        );
        assert_eq!(a_later, a);
        for f in [&b[0], &a_later[0]] {
            assert_eq!(f.value.as_ptr(), a[0].value.as_ptr(), "pooled :authority");
        }
        for f in [&b[1], &a_later[1]] {
            assert_eq!(f.name.as_ptr(), a[1].name.as_ptr(), "pooled literal name");
        }
        assert_ne!(
            b[1].value.as_ptr(),
            a[1].value.as_ptr(),
            "x-request-id values not pooled"
        );
        assert_eq!(
            a_later[1].value.as_ptr(),
            a[1].value.as_ptr(),
            "same table entry"
        );
    }
}
