//! A per-thread pool of immortal strings for the decoder's dynamic-table entries that repeat on
//! every request of every connection: field names, and the values of the few fields in
//! [`POOLED_VALUE_NAMES`] (`:authority`, `user-agent`, ...). A table entry whose string is in
//! the pool is a static `Bytes`, so the fields decoded from it on every later request cost no
//! reference count (an atomic read-modify-write per clone and per drop otherwise).
//!
//! What it does: [`pooled`] returns the pooled copy of a string, adding it first while the
//! thread's pool has room. A shard is one thread, so a shard's connections share its pool and
//! nothing is shared between shards (no lock, no atomic).
//!
//! What it must not do: hold more than the thread's limit ([`POOL_BYTES`] unless
//! [`set_pool_limit`] changed it; pooled strings are never freed: they live until the process
//! exits), admit a string longer than [`POOL_MAX_STRING`], or admit values of other fields (a
//! per-request value such as a request id would fill the pool with strings seen once).
//!
//! Invariants: a string's pooled copy never changes once made (same address for every caller
//! on the thread); the bytes accounted ([`pool_used`]) are each string's length plus
//! [`POOL_ENTRY_OVERHEAD`], and never exceed the limit in force when each was added. Once
//! full the pool stops growing: later strings are copied per table entry as before, so a peer
//! that fills the pool with junk costs the thread the optimisation, not memory.

use std::cell::RefCell;
use std::collections::HashSet;
use std::mem::ManuallyDrop;

use bytes::Bytes;

/// Default limit: most bytes of pooled strings (plus [`POOL_ENTRY_OVERHEAD`] each) one thread
/// keeps. The proxy sets its shards' limit from `[limits.h2] hpack_pool_bytes`.
pub const POOL_BYTES: usize = 16 * 1024;
/// Longest string the pool admits.
pub const POOL_MAX_STRING: usize = 128;
/// Bytes accounted per pooled string besides its length (allocation and set slot).
pub const POOL_ENTRY_OVERHEAD: usize = 32;

/// Fields whose values are pooled: values that stay the same across the requests of a client
/// and across clients of one API.
pub const POOLED_VALUE_NAMES: [&[u8]; 8] = [
    b":authority",
    b":path",
    b"user-agent",
    b"content-type",
    b"accept-encoding",
    b"grpc-accept-encoding",
    b"grpc-encoding",
    b"server",
];

struct Pool {
    limit: usize,
    used: usize,
    strings: HashSet<&'static [u8]>,
}

thread_local! {
    // Never dropped, not even when the thread exits: the strings stay reachable from the set,
    // so leak checkers (the fuzz targets run under LeakSanitizer) see live memory, not leaks.
    static POOL: ManuallyDrop<RefCell<Pool>> = ManuallyDrop::new(RefCell::new(Pool {
        limit: POOL_BYTES,
        used: 0,
        strings: HashSet::new(),
    }));
}

/// Sets this thread's limit (0: pool nothing more). Strings already pooled stay.
pub fn set_pool_limit(bytes: usize) {
    POOL.with(|p| p.borrow_mut().limit = bytes);
}

/// The pooled copy of `s` (added now if the pool has room), or `None` when `s` is empty, too
/// long, or the pool is full.
pub fn pooled(s: &[u8]) -> Option<Bytes> {
    pooled_static(s).map(Bytes::from_static)
}

/// [`pooled`] as the immortal slice itself (a caller can then make `Bytes::from_static` of it
/// each time, with no call through the `Bytes` vtable).
pub fn pooled_static(s: &[u8]) -> Option<&'static [u8]> {
    if s.is_empty() || s.len() > POOL_MAX_STRING {
        return None;
    }
    POOL.with(|p| {
        let mut p = p.borrow_mut();
        if let Some(&hit) = p.strings.get(s) {
            return Some(hit);
        }
        let cost = s.len() + POOL_ENTRY_OVERHEAD;
        if p.used + cost > p.limit {
            return None;
        }
        // Immortal by design (see the module docs): bounded by the thread's limit.
        let immortal: &'static [u8] = Box::leak(s.to_vec().into_boxed_slice());
        p.used += cost;
        p.strings.insert(immortal);
        Some(immortal)
    })
}

/// Whether values of the field `name` are pooled.
pub fn pools_value_of(name: &[u8]) -> bool {
    POOLED_VALUE_NAMES.contains(&name)
}

/// Bytes this thread's pool accounts for (see the module invariants).
pub fn pool_used() -> usize {
    POOL.with(|p| p.borrow().used)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `f` on a new thread: a fresh pool, whatever else ran on the test's thread.
    fn on_fresh_thread(f: impl FnOnce() + Send + 'static) {
        std::thread::spawn(f).join().expect("test thread");
    }

    #[test]
    fn same_string_same_static_copy_and_bounded() {
        on_fresh_thread(same_string_same_static_copy_and_bounded_body);
    }

    fn same_string_same_static_copy_and_bounded_body() {
        assert_eq!(pool_used(), 0);
        let a = pooled(b"api.example.com").expect("room");
        let b = pooled(b"api.example.com").expect("pooled");
        assert_eq!(a, &b"api.example.com"[..]);
        assert_eq!(a.as_ptr(), b.as_ptr(), "one immortal copy");
        assert_eq!(pool_used(), 15 + POOL_ENTRY_OVERHEAD);
        assert!(pooled(b"").is_none());
        assert!(pooled(&[b'x'; POOL_MAX_STRING + 1]).is_none());
        // Fill it: it stops at POOL_BYTES and then admits nothing new, but still hands out
        // what it has.
        let mut admitted = 1;
        for i in 0..10_000u32 {
            if pooled(format!("host-{i:08}.example").as_bytes()).is_some() {
                admitted += 1;
            }
        }
        assert!(pool_used() <= POOL_BYTES);
        assert!(
            pool_used() + 21 + POOL_ENTRY_OVERHEAD > POOL_BYTES,
            "filled up"
        );
        assert_eq!(admitted, 1 + (POOL_BYTES - 47) / (21 + POOL_ENTRY_OVERHEAD));
        assert!(pooled(b"a-new-string").is_none());
        assert_eq!(pooled(b"api.example.com").unwrap().as_ptr(), a.as_ptr());
    }

    #[test]
    fn limit_is_per_thread_and_zero_pools_nothing() {
        on_fresh_thread(limit_is_per_thread_and_zero_pools_nothing_body);
    }

    fn limit_is_per_thread_and_zero_pools_nothing_body() {
        set_pool_limit(0);
        assert!(pooled(b"api.example.com").is_none());
        assert_eq!(pool_used(), 0);
        set_pool_limit(100);
        assert!(pooled(b"a.example").is_some());
        assert!(pooled(&[b'y'; 60]).is_none(), "9 + 60 + 2 * 32 > 100");
        assert_eq!(pool_used(), 9 + POOL_ENTRY_OVERHEAD);
        // Another thread has its own pool with the default limit.
        let other = std::thread::spawn(|| (pooled(&[b'y'; 60]).is_some(), pool_used()))
            .join()
            .unwrap();
        assert_eq!(other, (true, 60 + POOL_ENTRY_OVERHEAD));
    }

    #[test]
    fn only_listed_values_are_pooled() {
        assert!(pools_value_of(b":authority"));
        assert!(pools_value_of(b"user-agent"));
        assert!(!pools_value_of(b"x-request-id"));
        assert!(!pools_value_of(b"date"));
    }
}
