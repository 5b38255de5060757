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

use super::table::{DynamicTable, ENTRY_OVERHEAD, STATIC, STATIC_LEN};
use super::{huffman, integer, pool, HeaderField, HeaderSink, HpackError};
use bytes::{Bytes, BytesMut};

/// Size of the arena chunks Huffman-decoded strings are carved from (one allocation per chunk
/// instead of one per string). Strings longer than a quarter chunk get their own allocation.
pub const ARENA_CHUNK: usize = 2048;

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
                let (name, value) = self.lookup(idx)?;
                HeaderField {
                    name,
                    value,
                    never_index: false,
                }
            } else if b & 0x40 != 0 {
                // Literal with incremental indexing (§6.2.1).
                self.check_update(at_start)?;
                let (name, value, literal_name) = self.literal(block, &mut pos, 6)?;
                // The table gets its own copy (see the module docs); the field shares it.
                let (name, value) = own(name, value, literal_name);
                self.table.insert(name.clone(), value.clone());
                HeaderField {
                    name,
                    value,
                    never_index: false,
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
                let (name, value, _) = self.literal(block, &mut pos, 4)?;
                HeaderField {
                    name,
                    value,
                    never_index,
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

    /// Name and value at HPACK index `idx` (§2.3.3).
    #[inline]
    fn lookup(&self, idx: usize) -> Result<(Bytes, Bytes), HpackError> {
        if idx == 0 {
            return Err(HpackError::ZeroIndex);
        }
        if idx <= STATIC_LEN {
            let (n, v) = STATIC[idx - 1];
            return Ok((Bytes::from_static(n), Bytes::from_static(v)));
        }
        match self.table.get(idx - STATIC_LEN) {
            Some(e) => Ok((e.name.clone(), e.value.clone())),
            None => Err(HpackError::IndexOutOfRange { index: idx }),
        }
    }

    /// A literal representation (§6.2) whose name index has a `prefix`-bit prefix.
    #[inline]
    fn literal(
        &mut self,
        block: &Bytes,
        pos: &mut usize,
        prefix: u8,
    ) -> Result<(Bytes, Bytes, bool), HpackError> {
        let idx = integer::decode(block, pos, prefix)?;
        let name = if idx == 0 {
            self.string(block, pos)?
        } else {
            self.lookup_name(idx)?
        };
        let value = self.string(block, pos)?;
        Ok((name, value, idx == 0))
    }

    #[inline]
    fn lookup_name(&self, idx: usize) -> Result<Bytes, HpackError> {
        if idx <= STATIC_LEN {
            // idx >= 1 here: 0 means a literal name.
            return match STATIC.get(idx.wrapping_sub(1)) {
                Some((n, _)) => Ok(Bytes::from_static(n)),
                None => Err(HpackError::ZeroIndex),
            };
        }
        match self.table.get(idx - STATIC_LEN) {
            Some(e) => Ok(e.name.clone()),
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
fn interned(s: &[u8]) -> Option<Bytes> {
    INTERNED
        .iter()
        .find(|i| **i == s)
        .map(|i| Bytes::from_static(i))
}

/// Copies a new table entry into one exact-size allocation shared by name and value (the name
/// only if it was a literal; an indexed name is already a static or table string), or uses
/// the static copy of an [`INTERNED`] name or value, or the thread's pooled copy
/// ([`super::pool`]) of a literal name or of the value of a field the pool lists.
#[inline]
fn own(name: Bytes, value: Bytes, literal_name: bool) -> (Bytes, Bytes) {
    let value_static = interned(&value).or_else(|| {
        if pool::pools_value_of(&name) {
            pool::pooled(&value)
        } else {
            None
        }
    });
    let name_static = if literal_name {
        interned(&name).or_else(|| pool::pooled(&name))
    } else {
        None
    };
    match (literal_name, name_static, value_static) {
        (false, _, Some(v)) => return (name, v),
        (true, Some(n), Some(v)) => return (n, v),
        (true, Some(n), None) => return (n, Bytes::copy_from_slice(&value)),
        (true, None, Some(v)) => return (Bytes::copy_from_slice(&name), v),
        _ => {}
    }
    if literal_name {
        let mut m = BytesMut::with_capacity(name.len() + value.len());
        m.extend_from_slice(&name);
        m.extend_from_slice(&value);
        let n = m.split_to(name.len()).freeze();
        (n, m.freeze())
    } else {
        (name, Bytes::copy_from_slice(&value))
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
