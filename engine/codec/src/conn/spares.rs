//! Spare field lists: the `Vec<HeaderField>` of a decoded header block, handed back by the
//! caller once it is done with the fields ([`recycle_fields`]), is reused for a later block,
//! so a warm thread allocates no field list per header block.
//!
//! What it does: keeps emptied lists in a per-thread stack; `Connection` pops one for each
//! header block it decodes.
//!
//! What it must not do: hold a field (lists are emptied before they are kept, so no receive
//! buffer is kept alive by a spare), or grow without bound.
//!
//! Invariants: every kept list is empty and of capacity at most [`SPARE_FIELD_LIST_MAX`], and
//! their capacities add up to at most [`SPARE_FIELDS`]: 16,384 × 72 bytes (about 1.2 MB) per
//! thread in the worst case, whatever the number of connections (per thread, not per
//! connection, because a shard may hold many idle connections).
//!
//! Why a bound in fields and not a few hundred lists: a call holds its request list until it
//! ends, so a shard's stack of spares swings by about the number of calls that end, or start,
//! in one burst. With 512 calls in flight (h2load 16 × 32) and a bound of 256 lists, nearly
//! every list was freed on return and allocated anew for the next block (measured: 1.65 misses
//! per call). 2,048 lists of 8 fields absorb such swings.

use std::cell::RefCell;

use crate::hpack::HeaderField;

/// Most fields (sum of the kept lists' capacities) the spare lists of one thread hold (a shard
/// is one thread): about 1.2 MB at 72 bytes per field.
pub const SPARE_FIELDS: usize = 16 * 1024;
/// A returned list with a larger capacity than this is freed, not kept.
pub const SPARE_FIELD_LIST_MAX: usize = 32;

/// A stack of emptied vectors kept for reuse, bounded in elements: at most `max_elements` of
/// capacity in all, in vectors of capacity 1 to `max_capacity` (others are freed). The codec's
/// per-thread spare field lists are one; callers with vectors of their own to reuse (the
/// forwarder's retry buffers) keep theirs in another.
#[derive(Debug)]
pub struct SpareVecs<T> {
    vecs: Vec<Vec<T>>,
    /// Sum of the capacities in `vecs` (at most `max_elements`).
    elements: usize,
    max_elements: usize,
    max_capacity: usize,
}

impl<T> SpareVecs<T> {
    /// An empty stack with these bounds (no allocation).
    pub const fn new(max_elements: usize, max_capacity: usize) -> Self {
        SpareVecs {
            vecs: Vec::new(),
            elements: 0,
            max_elements,
            max_capacity,
        }
    }

    /// The most recently kept vector (empty), if any.
    pub fn take(&mut self) -> Option<Vec<T>> {
        let v = self.vecs.pop()?;
        self.elements -= v.capacity();
        Some(v)
    }

    /// Empties `v` and keeps it, unless its capacity is 0 or over `max_capacity`, or keeping it
    /// would pass `max_elements`: then it is freed.
    pub fn keep(&mut self, mut v: Vec<T>) {
        let cap = v.capacity();
        if cap > 0 && cap <= self.max_capacity && self.elements + cap <= self.max_elements {
            v.clear();
            self.elements += cap;
            self.vecs.push(v);
        }
    }

    /// Vectors kept.
    pub fn len(&self) -> usize {
        self.vecs.len()
    }

    /// Whether none is kept.
    pub fn is_empty(&self) -> bool {
        self.vecs.is_empty()
    }

    /// Sum of the kept vectors' capacities.
    pub fn elements(&self) -> usize {
        self.elements
    }
}

thread_local! {
    static SPARES: RefCell<SpareVecs<HeaderField>> =
        const { RefCell::new(SpareVecs::new(SPARE_FIELDS, SPARE_FIELD_LIST_MAX)) };
}

/// Hands back a field list from an [`Event::Headers`](super::Event::Headers) the caller is done
/// with: it is emptied and reused for a later header block decoded on this thread. Lists over
/// [`SPARE_FIELD_LIST_MAX`] capacity, and lists past [`SPARE_FIELDS`] in all, are freed.
pub fn recycle_fields(fields: Vec<HeaderField>) {
    // `try_with`: during the thread's exit the list is simply freed (never a panic).
    let _ = SPARES.try_with(|s| {
        if let Ok(mut s) = s.try_borrow_mut() {
            s.keep(fields);
        }
    });
}

/// An empty field list: a spare if this thread has one, else a new one of `capacity`.
pub(crate) fn take_fields(capacity: usize) -> Vec<HeaderField> {
    SPARES
        .try_with(|s| s.try_borrow_mut().ok()?.take())
        .ok()
        .flatten()
        .unwrap_or_else(|| Vec::with_capacity(capacity))
}
