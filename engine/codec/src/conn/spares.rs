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
//! Invariants: at most [`SPARE_FIELD_LISTS`] lists per thread, each empty and of capacity at
//! most [`SPARE_FIELD_LIST_MAX`]: at most 256 × 32 × 72 bytes (about 590 KB) per thread in the
//! worst case, whatever the number of connections (per thread, not per connection, because a
//! shard may hold many idle connections).

use std::cell::RefCell;

use crate::hpack::HeaderField;

/// Emptied field lists kept per thread (a shard is one thread).
pub const SPARE_FIELD_LISTS: usize = 256;
/// A returned list with a larger capacity than this is freed, not kept.
pub const SPARE_FIELD_LIST_MAX: usize = 32;

thread_local! {
    static SPARES: RefCell<Vec<Vec<HeaderField>>> = const { RefCell::new(Vec::new()) };
}

/// Hands back a field list from an [`Event::Headers`](super::Event::Headers) the caller is done
/// with: it is emptied and reused for a later header block decoded on this thread. Lists over
/// [`SPARE_FIELD_LIST_MAX`] capacity, and lists past [`SPARE_FIELD_LISTS`], are freed.
pub fn recycle_fields(mut fields: Vec<HeaderField>) {
    let cap = fields.capacity();
    if cap == 0 || cap > SPARE_FIELD_LIST_MAX {
        return;
    }
    fields.clear();
    // `try_with`: during the thread's exit the list is simply freed (never a panic).
    let _ = SPARES.try_with(|s| {
        if let Ok(mut s) = s.try_borrow_mut() {
            if s.len() < SPARE_FIELD_LISTS {
                s.push(fields);
            }
        }
    });
}

/// An empty field list: a spare if this thread has one, else a new one of `capacity`.
pub(crate) fn take_fields(capacity: usize) -> Vec<HeaderField> {
    SPARES
        .try_with(|s| s.try_borrow_mut().ok().and_then(|mut s| s.pop()))
        .ok()
        .flatten()
        .unwrap_or_else(|| Vec::with_capacity(capacity))
}
