//! HPACK header compression (RFC 7541): [`Decoder`], [`Encoder`], the Huffman code and the
//! indexing tables.
//!
//! What it does:
//! - [`Decoder::decode`] turns one complete header block into [`HeaderField`]s handed one by one,
//!   in order, to a caller's [`HeaderSink`] (no map is built). Names and values are `Bytes`:
//!   static-table strings are `Bytes::from_static`, dynamic-table strings are reference-counted
//!   clones or, for the names and values gRPC calls repeat, static strings (the decoder's
//!   interned list and the thread's bounded [`pool`]), plain literals are slices of the block
//!   (no copy), Huffman literals are decoded once.
//! - [`Encoder::encode`] writes a header block into a caller's `BytesMut`, indexing repeated
//!   fields in the dynamic table, Huffman-coding strings when that is shorter, and sending
//!   sensitive fields as never-indexed literals.
//!
//! What it must not do: panic on any input, read out of bounds, allocate in proportion to
//! anything but the decoded output, or let a peer grow the dynamic table beyond our advertised
//! SETTINGS_HEADER_TABLE_SIZE.
//!
//! Invariants: the decoder's dynamic table mirrors the peer encoder's as long as every block is
//! decoded in order (even one whose header list is too large: see
//! [`HpackError::HeaderListTooLarge`]); every other error leaves the context unusable and is a
//! connection error of type COMPRESSION_ERROR (RFC 9113 §4.3).
//!
//! Limits (all with safe defaults): the dynamic table size our peer may use
//! ([`Decoder::new`], [`Decoder::set_max_table_size`], default to pass: 4096), the header list
//! size ([`Decoder::set_max_header_list_size`], default [`DEFAULT_MAX_HEADER_LIST_SIZE`]), and
//! integers ([`MAX_INTEGER`]): a string can never be longer than the block that carries it, and the
//! block size itself is bounded by the connection (`max_header_block_bytes`).

mod decoder;
mod encoder;
pub mod huffman;
pub mod integer;
pub mod pool;
pub mod table;

pub use decoder::{Decoder, ARENA_CHUNK, DEFAULT_MAX_HEADER_LIST_SIZE};
pub use encoder::{
    Encoder, ENCODER_TABLE_SIZE_CAP, MAX_INDEXED_ENTRY_SIZE, REPLAY_ENTRIES, REPLAY_MAX_FIELD_BYTES,
};
pub use integer::MAX_INTEGER;

use bytes::Bytes;
use std::fmt;

/// One decoded header field.
///
/// `name`/`value` are `Bytes`: static-table entries are `Bytes::from_static`, dynamic-table
/// entries are cheap clones, non-Huffman literals are slices of the block (no copy), Huffman
/// literals are freshly decoded. `never_index` is set for never-indexed literals (RFC 7541
/// §6.2.3): an intermediary re-encoding the field must keep it out of any table.
///
/// Equality compares name, value and `never_index`, not `checked` (a note about work done).
#[derive(Clone, Debug)]
pub struct HeaderField {
    /// Field name, as sent (HPACK does not check case or characters; the HTTP/2 layer does).
    pub name: Bytes,
    /// Field value.
    pub value: Bytes,
    /// The field was sent as a never-indexed literal (RFC 7541 §6.2.3).
    pub never_index: bool,
    /// The field is known to pass RFC 9113 §8.2's per-field rules
    /// ([`crate::message::field_ok`]), so the message layer skips them. The decoder sets it for
    /// static-table fields and for fields from dynamic-table entries, checked once when they
    /// entered the table. `false` means "not known": always correct, it only costs the check.
    /// Whoever changes `name` or `value` must clear it.
    pub checked: bool,
}

impl PartialEq for HeaderField {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
            && self.value == other.value
            && self.never_index == other.never_index
    }
}

impl Eq for HeaderField {}

/// A borrowed field for encoding. `sensitive` => never-indexed literal (RFC 7541 §6.2.3).
#[derive(Clone, Copy, Debug)]
pub struct FieldRef<'a> {
    /// Field name; HTTP/2 requires lowercase (RFC 9113 §8.2.1), the encoder does not change it.
    pub name: &'a [u8],
    /// Field value.
    pub value: &'a [u8],
    /// Send as a never-indexed literal and never insert into the dynamic table.
    pub sensitive: bool,
}

impl<'a> FieldRef<'a> {
    /// A non-sensitive field.
    pub fn new(name: &'a [u8], value: &'a [u8]) -> Self {
        FieldRef {
            name,
            value,
            sensitive: false,
        }
    }
}

/// Receives decoded fields in order.
pub trait HeaderSink {
    /// One decoded field.
    fn field(&mut self, field: HeaderField);
}

impl<F: FnMut(HeaderField)> HeaderSink for F {
    #[inline]
    fn field(&mut self, field: HeaderField) {
        self(field)
    }
}

/// HPACK decoding errors.
///
/// All variants but [`HpackError::HeaderListTooLarge`] are connection errors of type
/// COMPRESSION_ERROR (RFC 9113 §4.3): the decoding context can no longer be trusted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HpackError {
    /// The block ended inside a representation (an integer, a string length or a string).
    Truncated,
    /// An integer does not fit [`MAX_INTEGER`] or uses more continuation octets than needed for
    /// that bound (RFC 7541 §5.1 leaves the limit to implementations).
    IntegerOverflow,
    /// Indexed representation with index 0 (RFC 7541 §6.1).
    ZeroIndex,
    /// Index beyond the static plus dynamic table (RFC 7541 §2.3.3).
    IndexOutOfRange {
        /// The index received.
        index: usize,
    },
    /// Dynamic table size update after the first field representation of a block
    /// (RFC 7541 §4.2).
    SizeUpdateNotAtStart,
    /// Dynamic table size update above our SETTINGS_HEADER_TABLE_SIZE (RFC 7541 §6.3).
    SizeUpdateTooLarge {
        /// Size requested by the peer.
        requested: usize,
        /// Our limit.
        max: usize,
    },
    /// We lowered SETTINGS_HEADER_TABLE_SIZE below the table's current maximum size and the next
    /// header block did not start with a size update (RFC 7541 §4.2).
    SizeUpdateMissing,
    /// The EOS symbol appeared inside a Huffman string (RFC 7541 §5.2).
    HuffmanEos,
    /// Huffman padding longer than 7 bits or not all ones (RFC 7541 §5.2).
    HuffmanPadding,
    /// The decoded header list is larger than the max header list size (RFC 9113 §6.5.2 sizes,
    /// RFC 7541 §4.1 accounting). The whole block was still decoded and the dynamic table is in
    /// sync, so this is a stream error: the stream is refused, the connection lives on.
    HeaderListTooLarge {
        /// Total size of the list as decoded (name + value + 32 per field).
        size: usize,
        /// The configured maximum.
        max: usize,
    },
}

impl HpackError {
    /// Whether the error must end the connection with COMPRESSION_ERROR (everything but
    /// [`HpackError::HeaderListTooLarge`]).
    pub fn is_connection_error(&self) -> bool {
        !matches!(self, HpackError::HeaderListTooLarge { .. })
    }
}

impl fmt::Display for HpackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HpackError::Truncated => f.write_str("hpack: header block truncated inside a field"),
            HpackError::IntegerOverflow => f.write_str("hpack: integer overflow"),
            HpackError::ZeroIndex => f.write_str("hpack: indexed field with index 0"),
            HpackError::IndexOutOfRange { index } => {
                write!(f, "hpack: index {index} beyond static and dynamic tables")
            }
            HpackError::SizeUpdateNotAtStart => {
                f.write_str("hpack: dynamic table size update not at the start of the block")
            }
            HpackError::SizeUpdateTooLarge { requested, max } => write!(
                f,
                "hpack: dynamic table size update to {requested} exceeds the limit {max}"
            ),
            HpackError::SizeUpdateMissing => {
                f.write_str("hpack: required dynamic table size update missing")
            }
            HpackError::HuffmanEos => f.write_str("hpack: EOS symbol inside a Huffman string"),
            HpackError::HuffmanPadding => f.write_str("hpack: invalid Huffman padding"),
            HpackError::HeaderListTooLarge { size, max } => {
                write!(f, "hpack: header list size {size} exceeds the limit {max}")
            }
        }
    }
}

impl std::error::Error for HpackError {}
