//! Memory of recently closed streams (RFC 9113 §5.1 "closed"): how each ended, so frames the
//! peer sent before it saw the close can be judged (ignored, a stream error, or a connection
//! error).
//!
//! What it does: remembers at least the last `max` closed streams (`ConnConfig::
//! max_closed_streams`), in O(1) per close and per lookup, without hashing: stream ids grow
//! monotonically per initiator (§5.1.1), so recent ids sit in a direct-mapped table indexed by
//! `id >> 1` (one initiator's ids per connection in practice: push is disabled, so only the
//! client opens streams). A slot keeps the newest id mapped to it; a close that cannot take its
//! slot (a long-lived stream closing after a much newer one mapped to the same slot), or an
//! entry displaced while still among the last `max` closes, goes to a FIFO overflow map of at
//! most `2 * max` entries instead. Why `2 * max` suffices: an entry is pushed there at most once,
//! and an entry pushed after X that closed before X was then among the last `max` closes, so at
//! most `max - 1` of them exist; the other pushes after X are later closes, and after `2 * max`
//! pushes at least `max + 1` streams closed after X.
//!
//! What it must not do: grow beyond `2 * max.next_power_of_two()` slots plus `2 * max` overflow
//! entries, or forget a stream before `max` later closes.
//!
//! Invariants: an empty slot has id 0 (stream 0 is never a stream); a stored id sits in slot
//! `(id >> 1) & (slots.len() - 1)`; while `slots.len()` is below its maximum, every stored id's
//! `id >> 1` is below `slots.len()` (the table grows before the first id that would wrap), so
//! growing never moves an entry.

use std::collections::{HashMap, VecDeque};

use super::stream::{Closed, IdHashBuilder};

/// First size of the direct-mapped table (slots), grown by doubling.
const FIRST_SLOTS: usize = 16;

#[derive(Clone, Copy, Debug)]
struct Slot {
    id: u32,
    /// Close sequence number (wrapping), to tell whether a displaced entry is still recent.
    seq: u32,
    how: Closed,
}

const EMPTY: Slot = Slot {
    id: 0,
    seq: 0,
    how: Closed::EndStream,
};

/// Recently closed streams of one connection. See the module docs.
#[derive(Debug)]
pub(crate) struct ClosedStreams {
    /// Remember at least this many of the latest closes (0: remember none).
    max: u32,
    /// Largest `slots.len()`: `2 * max.next_power_of_two()`.
    max_slots: usize,
    slots: Vec<Slot>,
    /// Closes so far (wrapping).
    seq: u32,
    /// Overflow: closes that could not stay in their slot, oldest first in `overflow_order`.
    overflow: HashMap<u32, Closed, IdHashBuilder>,
    overflow_order: VecDeque<u32>,
}

impl ClosedStreams {
    /// Remembers at least the last `max` closed streams.
    pub(crate) fn new(max: u32) -> Self {
        ClosedStreams {
            max,
            max_slots: if max == 0 {
                0
            } else {
                (max as usize).next_power_of_two().saturating_mul(2)
            },
            slots: Vec::new(),
            seq: 0,
            overflow: HashMap::with_hasher(IdHashBuilder::new()),
            overflow_order: VecDeque::new(),
        }
    }

    #[inline]
    fn slot_of(&self, id: u32) -> Option<usize> {
        if self.slots.is_empty() {
            return None;
        }
        Some((id >> 1) as usize & (self.slots.len() - 1))
    }

    /// How stream `id` closed, if it is remembered.
    #[inline]
    pub(crate) fn get(&self, id: u32) -> Option<Closed> {
        if id == 0 {
            return None;
        }
        if let Some(s) = self.slot_of(id).and_then(|i| self.slots.get(i)) {
            if s.id == id {
                return Some(s.how);
            }
        }
        if self.overflow.is_empty() {
            return None;
        }
        self.overflow.get(&id).copied()
    }

    /// Whether stream `id` is remembered as closed.
    #[inline]
    pub(crate) fn contains(&self, id: u32) -> bool {
        self.get(id).is_some()
    }

    /// Records that stream `id` closed `how` (a stream already remembered gets the new `how`).
    pub(crate) fn remember(&mut self, id: u32, how: Closed) {
        if self.max == 0 || id == 0 {
            return;
        }
        let half = (id >> 1) as usize;
        if half >= self.slots.len() && self.slots.len() < self.max_slots {
            // Grow before the first id that would wrap: no stored entry moves (module docs).
            let want = (half + 1)
                .next_power_of_two()
                .max(FIRST_SLOTS)
                .min(self.max_slots);
            self.slots.resize(want, EMPTY);
        }
        let Some(i) = self.slot_of(id) else {
            return;
        };
        let Some(&cur) = self.slots.get(i) else {
            return;
        };
        if cur.id == id {
            if let Some(s) = self.slots.get_mut(i) {
                s.how = how;
            }
            return;
        }
        if let Some(h) = self.overflow.get_mut(&id) {
            *h = how;
            return;
        }
        let seq = self.seq;
        self.seq = self.seq.wrapping_add(1);
        if cur.id > id {
            // A newer stream holds the slot: keep it, this one overflows.
            self.push_overflow(id, how);
            return;
        }
        if cur.id != 0 && seq.wrapping_sub(cur.seq) < self.max {
            // The displaced entry is still among the last `max` closes: keep it.
            self.push_overflow(cur.id, cur.how);
        }
        if let Some(s) = self.slots.get_mut(i) {
            *s = Slot { id, seq, how };
        }
    }

    fn push_overflow(&mut self, id: u32, how: Closed) {
        if self.overflow.insert(id, how).is_none() {
            self.overflow_order.push_back(id);
        }
        while self.overflow_order.len() > 2 * self.max as usize {
            if let Some(old) = self.overflow_order.pop_front() {
                self.overflow.remove(&old);
            }
        }
    }

    /// Number of streams remembered (for tests and invariant checks).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.slots.iter().filter(|s| s.id != 0).count() + self.overflow.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference model: the last `max` closes, oldest forgotten first.
    struct Model {
        max: usize,
        order: VecDeque<(u32, Closed)>,
    }

    impl Model {
        fn remember(&mut self, id: u32, how: Closed) {
            if let Some(e) = self.order.iter_mut().find(|e| e.0 == id) {
                e.1 = how;
                return;
            }
            self.order.push_back((id, how));
            while self.order.len() > self.max {
                self.order.pop_front();
            }
        }
    }

    fn check(closes: &[u32], max: u32) {
        let mut c = ClosedStreams::new(max);
        let mut m = Model {
            max: max as usize,
            order: VecDeque::new(),
        };
        for (n, &id) in closes.iter().enumerate() {
            let how = if n % 3 == 0 {
                Closed::LocalReset
            } else {
                Closed::EndStream
            };
            c.remember(id, how);
            m.remember(id, how);
            // Everything the model remembers is remembered, with the same `how`.
            for &(id, how) in &m.order {
                assert_eq!(c.get(id), Some(how), "stream {id} after {n} closes");
            }
            assert!(c.slots.len() <= c.max_slots);
            assert!(c.overflow.len() <= 2 * max as usize);
            assert!(c.len() <= c.max_slots + 2 * max as usize);
        }
        assert_eq!(c.get(0), None);
    }

    #[test]
    fn in_order_closes_are_remembered_for_at_least_max_closes() {
        let ids: Vec<u32> = (0..5000).map(|i| 2 * i + 1).collect();
        check(&ids, 8);
        check(&ids, 1024);
    }

    #[test]
    fn long_lived_streams_closing_late_are_remembered() {
        // Stream 1 stays open while 3000 newer streams come and go, then closes.
        let mut ids: Vec<u32> = (1..3000).map(|i| 2 * i + 1).collect();
        ids.push(1);
        ids.extend((3000..3100).map(|i| 2 * i + 1));
        check(&ids, 16);
        check(&ids, 1024);
    }

    #[test]
    fn shuffled_closes_match_the_model() {
        // A deterministic shuffle: closes out of id order within a sliding window.
        let mut ids: Vec<u32> = (0..4000).map(|i| 2 * i + 1).collect();
        let mut x: u64 = 0x9e37_79b9;
        for i in 0..ids.len() {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let j = (i + (x >> 33) as usize % 200).min(ids.len() - 1);
            ids.swap(i, j);
        }
        check(&ids, 4);
        check(&ids, 64);
        check(&ids, 1024);
    }

    #[test]
    fn re_remembering_updates_how_and_zero_remembers_nothing() {
        let mut c = ClosedStreams::new(4);
        c.remember(5, Closed::EndStream);
        c.remember(5, Closed::LocalReset);
        assert_eq!(c.get(5), Some(Closed::LocalReset));
        assert_eq!(c.len(), 1);
        let mut z = ClosedStreams::new(0);
        z.remember(1, Closed::EndStream);
        assert_eq!(z.get(1), None);
        assert!(!z.contains(1));
    }
}
