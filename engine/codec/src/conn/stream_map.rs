//! [`StreamMap`]: a map keyed by stream id for the per-stream state of one connection, built for
//! how HTTP/2 uses ids: each side opens streams with increasing ids (RFC 9113 §5.1.1), so the
//! streams open at one time are mostly a run of recent, consecutive ids.
//!
//! What it does: keeps entries in a direct-mapped table indexed by `id >> 1` (odd and even ids
//! share a slot index, one initiator's ids are consecutive there), so a lookup is one index and
//! one compare, and the streams of a burst sit in adjacent slots (adjacent cache lines) instead
//! of scattered over a hash table. An id whose slot is taken (a long-lived stream still open
//! when an id `table size` later arrives) goes to an overflow `HashMap` keyed with the
//! connection's secret-seeded [`IdHashBuilder`], so a peer that picks ids to collide only moves
//! its streams to an ordinary hash map.
//!
//! What it must not do: grow without live entries to show for it: the table doubles only when
//! half of its slots are taken, so it has at most four slots per entry the map ever held at
//! once (at least 16). It never shrinks (like a `HashMap`).
//!
//! Invariants: an entry is in exactly one place, the slot `(id >> 1) & (slots.len() - 1)` or the
//! overflow map; `in_slots` counts the occupied slots; `slots.len()` is 0 or a power of two.
//! Iteration order is unspecified (as with a `HashMap`).

use std::collections::HashMap;

use super::stream::IdHashBuilder;

/// First table size, in slots.
const FIRST_SLOTS: usize = 16;

/// See the module docs.
#[derive(Debug)]
pub struct StreamMap<V> {
    slots: Vec<Option<(u32, V)>>,
    in_slots: usize,
    overflow: HashMap<u32, V, IdHashBuilder>,
}

impl<V> Default for StreamMap<V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V> StreamMap<V> {
    /// An empty map (no allocation until the first insert).
    pub fn new() -> Self {
        StreamMap {
            slots: Vec::new(),
            in_slots: 0,
            overflow: HashMap::with_hasher(IdHashBuilder::new()),
        }
    }

    #[inline]
    fn index(&self, id: u32) -> usize {
        (id >> 1) as usize & (self.slots.len().wrapping_sub(1))
    }

    /// Number of entries.
    #[inline]
    pub fn len(&self) -> usize {
        self.in_slots + self.overflow.len()
    }

    /// Whether the map is empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value for `id`.
    #[inline]
    pub fn get(&self, id: u32) -> Option<&V> {
        if let Some(Some((k, v))) = self.slots.get(self.index(id)) {
            if *k == id {
                return Some(v);
            }
        }
        if self.overflow.is_empty() {
            return None;
        }
        self.overflow.get(&id)
    }

    /// The value for `id`, mutably.
    #[inline]
    pub fn get_mut(&mut self, id: u32) -> Option<&mut V> {
        let i = self.index(id);
        if let Some(Some((k, _))) = self.slots.get(i) {
            if *k == id {
                return self.slots[i].as_mut().map(|(_, v)| v);
            }
        }
        if self.overflow.is_empty() {
            return None;
        }
        self.overflow.get_mut(&id)
    }

    /// Whether `id` has an entry.
    #[inline]
    pub fn contains_key(&self, id: u32) -> bool {
        self.get(id).is_some()
    }

    /// Inserts `value` for `id`, returning the value it replaces.
    pub fn insert(&mut self, id: u32, value: V) -> Option<V> {
        if let Some(old) = self.get_mut(id) {
            return Some(std::mem::replace(old, value));
        }
        if self.in_slots >= self.slots.len() / 2 {
            self.grow();
        }
        let i = self.index(id);
        match &mut self.slots[i] {
            slot @ None => {
                *slot = Some((id, value));
                self.in_slots += 1;
                None
            }
            Some(_) => self.overflow.insert(id, value),
        }
    }

    /// Removes the entry for `id`.
    #[inline]
    pub fn remove(&mut self, id: u32) -> Option<V> {
        let i = self.index(id);
        if let Some(Some((k, _))) = self.slots.get(i) {
            if *k == id {
                self.in_slots -= 1;
                return self.slots[i].take().map(|(_, v)| v);
            }
        }
        if self.overflow.is_empty() {
            return None;
        }
        self.overflow.remove(&id)
    }

    /// Removes every entry (the table keeps its size).
    pub fn clear(&mut self) {
        if self.in_slots > 0 {
            self.slots.iter_mut().for_each(|s| *s = None);
            self.in_slots = 0;
        }
        self.overflow.clear();
    }

    /// The values, in no particular order.
    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.slots
            .iter()
            .filter_map(|s| s.as_ref().map(|(_, v)| v))
            .chain(self.overflow.values())
    }

    /// The values, mutably, in no particular order.
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut V> {
        self.slots
            .iter_mut()
            .filter_map(|s| s.as_mut().map(|(_, v)| v))
            .chain(self.overflow.values_mut())
    }

    /// Doubles the table and places every entry again (overflow entries too, where their new
    /// slot is free).
    fn grow(&mut self) {
        let size = (self.slots.len() * 2).max(FIRST_SLOTS);
        let old = std::mem::replace(&mut self.slots, (0..size).map(|_| None).collect());
        self.in_slots = 0;
        let hasher = *self.overflow.hasher();
        let overflow = std::mem::replace(&mut self.overflow, HashMap::with_hasher(hasher));
        let entries = old.into_iter().flatten().chain(overflow);
        for (id, v) in entries {
            let i = self.index(id);
            match &mut self.slots[i] {
                slot @ None => {
                    *slot = Some((id, v));
                    self.in_slots += 1;
                }
                Some(_) => {
                    self.overflow.insert(id, v);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Random operations against a `HashMap`: the same answers, and the invariants of the
    /// module docs, whatever the ids (sequential runs, colliding strides, reuse, removal).
    #[test]
    fn agrees_with_a_hash_map() {
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut rand = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..200 {
            let mut m: StreamMap<u64> = StreamMap::new();
            let mut h: HashMap<u32, u64> = HashMap::new();
            let mut next = 1u32;
            let mut peak = 0;
            for step in 0..2_000u64 {
                let r = rand();
                let id = match r % 4 {
                    // New ids, consecutive per initiator, sometimes far ahead.
                    0 | 1 => {
                        next += if r % 97 == 0 { 2 * 1024 } else { 2 };
                        next
                    }
                    // A recent or an old id, or one at a colliding stride.
                    2 => next.saturating_sub(2 * (rand() % 64) as u32).max(1),
                    _ => (((rand() % 8) as u32) << (round % 12 + 1)) | 1,
                };
                match rand() % 5 {
                    0 | 1 => assert_eq!(m.insert(id, step), h.insert(id, step)),
                    2 => assert_eq!(m.remove(id), h.remove(&id)),
                    3 => {
                        if let Some(v) = m.get_mut(id) {
                            *v += 1;
                        }
                        if let Some(v) = h.get_mut(&id) {
                            *v += 1;
                        }
                    }
                    _ => assert_eq!(m.get(id), h.get(&id)),
                }
                assert_eq!(m.len(), h.len());
                assert_eq!(m.contains_key(id), h.contains_key(&id));
                peak = peak.max(m.len());
            }
            let mut a: Vec<u64> = m.values().copied().collect();
            let mut b: Vec<u64> = h.values().copied().collect();
            a.sort_unstable();
            b.sort_unstable();
            assert_eq!(a, b);
            for v in m.values_mut() {
                *v = 0;
            }
            assert!(m.values().all(|&v| v == 0));
            // Every entry in its slot or in the overflow, counted right, table bounded.
            let size = m.slots.len();
            assert!(size == 0 || size.is_power_of_two());
            for (i, s) in m.slots.iter().enumerate() {
                if let Some((id, _)) = s {
                    assert_eq!(m.index(*id), i);
                    assert!(!m.overflow.contains_key(id));
                }
            }
            assert_eq!(m.in_slots, m.slots.iter().flatten().count());
            assert!(
                size <= FIRST_SLOTS.max(4 * peak),
                "{size} slots for at most {peak}"
            );
            m.clear();
            assert!(m.is_empty() && m.values().next().is_none());
        }
    }

    /// A burst of consecutive ids takes adjacent slots and no overflow; a stream still open when
    /// an id a table size later arrives goes to the overflow and is still found.
    #[test]
    fn consecutive_ids_are_direct_and_collisions_overflow() {
        let mut m: StreamMap<u32> = StreamMap::new();
        for id in (1..64).step_by(2) {
            m.insert(id, id);
        }
        assert!(m.overflow.is_empty());
        assert_eq!(m.len(), 32);
        for id in (3..64).step_by(2) {
            m.remove(id);
        }
        // Stream 1 stays open; ids advance a whole table size.
        let size = m.slots.len() as u32;
        let far = 1 + 2 * size;
        m.insert(far, far);
        assert_eq!(m.index(far), m.index(1));
        assert_eq!((m.get(1), m.get(far)), (Some(&1), Some(&far)));
        assert_eq!(m.overflow.len(), 1);
        assert_eq!(m.remove(1), Some(1));
        assert_eq!(m.remove(far), Some(far));
        assert!(m.is_empty());
    }
}
