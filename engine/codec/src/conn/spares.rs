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

struct Spares {
    lists: Vec<Vec<HeaderField>>,
    /// Sum of the capacities in `lists` (at most [`SPARE_FIELDS`]).
    fields: usize,
}

thread_local! {
    static SPARES: RefCell<Spares> = const {
        RefCell::new(Spares {
            lists: Vec::new(),
            fields: 0,
        })
    };
}

/// Hands back a field list from an [`Event::Headers`](super::Event::Headers) the caller is done
/// with: it is emptied and reused for a later header block decoded on this thread. Lists over
/// [`SPARE_FIELD_LIST_MAX`] capacity, and lists past [`SPARE_FIELDS`] in all, are freed.
pub fn recycle_fields(mut fields: Vec<HeaderField>) {
    let cap = fields.capacity();
    if cap == 0 || cap > SPARE_FIELD_LIST_MAX {
        return;
    }
    fields.clear();
    // `try_with`: during the thread's exit the list is simply freed (never a panic).
    let _ = SPARES.try_with(|s| {
        if let Ok(mut s) = s.try_borrow_mut() {
            if s.fields + cap <= SPARE_FIELDS {
                s.fields += cap;
                s.lists.push(fields);
            }
        }
    });
}

/// An empty field list: a spare if this thread has one, else a new one of `capacity`.
pub(crate) fn take_fields(capacity: usize) -> Vec<HeaderField> {
    SPARES
        .try_with(|s| {
            let mut s = s.try_borrow_mut().ok()?;
            let list = s.lists.pop()?;
            s.fields -= list.capacity();
            Some(list)
        })
        .ok()
        .flatten()
        .unwrap_or_else(|| Vec::with_capacity(capacity))
}
