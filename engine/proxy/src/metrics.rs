//! Per-shard metrics: plain `Cell` counters owned by one shard, never shared across threads.
//!
//! What it does: counts what the edge does and refuses (connections, streams, edge-generated gRPC
//! statuses, abuse limits, origin failures) and tracks the bytes the edge holds on behalf of
//! peers (the figure that proves flow control is the backpressure). A [`Snapshot`] is a plain
//! copy that crosses shards over the control channel and merges by addition; it renders as
//! Prometheus text.
//!
//! What it must not do: use atomics or locks (the request path is shared-nothing), or allocate
//! per increment.
//!
//! Invariants: gauges (`*_active`, `buffered_bytes`) go up and down in pairs; `buffered_bytes_peak`
//! is the highest `buffered_bytes` seen on the shard.

use std::cell::Cell;
use std::fmt::Write as _;

macro_rules! counters {
    ($( $(#[$doc:meta])* $name:ident ),* $(,)?) => {
        /// The counters of one shard. Each is a `Cell<u64>`: increments are plain stores.
        #[derive(Debug, Default)]
        pub struct Metrics {
            $( $(#[$doc])* pub $name: Cell<u64>, )*
            /// gRPC statuses the edge itself produced (Trailers-Only), by code 0..=16.
            pub edge_status: [Cell<u64>; 17],
            /// Streams ended by an abuse limit or protocol answer, by kind name.
            limits: std::cell::RefCell<Vec<(&'static str, u64)>>,
        }

        /// A copy of one or more shards' counters.
        #[derive(Clone, Debug, Default, PartialEq, Eq)]
        pub struct Snapshot {
            $( $(#[$doc])* pub $name: u64, )*
            /// gRPC statuses the edge itself produced, by code.
            pub edge_status: [u64; 17],
            /// Abuse-limit and protocol-answer counts, by kind name.
            pub limits: Vec<(&'static str, u64)>,
        }

        impl Metrics {
            /// Copies the counters.
            pub fn snapshot(&self) -> Snapshot {
                Snapshot {
                    $( $name: self.$name.get(), )*
                    edge_status: std::array::from_fn(|i| self.edge_status[i].get()),
                    limits: self.limits.borrow().clone(),
                }
            }
        }

        impl Snapshot {
            /// Adds another shard's figures (gauges add too: the sum is the process's value;
            /// peaks add, which bounds the process's peak from above).
            pub fn merge(&mut self, other: &Snapshot) {
                $( self.$name += other.$name; )*
                for (a, b) in self.edge_status.iter_mut().zip(other.edge_status.iter()) {
                    *a += b;
                }
                for (kind, n) in &other.limits {
                    match self.limits.iter_mut().find(|(k, _)| k == kind) {
                        Some((_, m)) => *m += n,
                        None => self.limits.push((kind, *n)),
                    }
                }
            }

            /// Renders Prometheus text exposition format.
            pub fn to_prometheus(&self) -> String {
                let mut out = String::new();
                $(
                    let _ = writeln!(out, "ringedge_{} {}", stringify!($name), self.$name);
                )*
                for (code, n) in self.edge_status.iter().enumerate() {
                    if *n > 0 {
                        let _ = writeln!(out, "ringedge_edge_grpc_status_total{{code=\"{code}\"}} {n}");
                    }
                }
                for (kind, n) in &self.limits {
                    let _ = writeln!(out, "ringedge_h2_limit_total{{kind=\"{kind}\"}} {n}");
                }
                out
            }
        }
    };
}

counters! {
    /// TCP connections accepted.
    connections_accepted,
    /// Connections open now (gauge).
    connections_active,
    /// Connections closed at once because the shard's connection limit was reached.
    connections_rejected_limit,
    /// TLS handshakes that failed (any cause).
    tls_handshake_failed,
    /// TLS handshakes refused because the client did not offer ALPN `h2`.
    tls_no_alpn_h2,
    /// TLS handshakes that did not finish within `handshake_timeout_ms`.
    tls_handshake_timeout,
    /// Connections closed for idleness.
    connections_idle_closed,
    /// Request streams received from clients.
    streams_total,
    /// Request streams open now (gauge).
    streams_active,
    /// Requests recognised as gRPC.
    grpc_requests,
    /// Requests that were not gRPC.
    non_grpc_requests,
    /// Streams the client reset.
    client_resets,
    /// Streams the origin reset.
    origin_resets,
    /// Calls ended by the edge because their deadline passed.
    deadlines_exceeded,
    /// Calls retried on another origin connection (they never started).
    retries,
    /// Origin connections opened.
    origin_connects,
    /// Origin connection attempts that failed (TCP, TLS or ALPN).
    origin_connect_failed,
    /// Origin connections open now (gauge).
    origin_connections_active,
    /// GOAWAY frames received from origins.
    origin_goaways,
    /// Bytes the edge holds for peers now: queued to send or waiting for window (gauge).
    buffered_bytes,
    /// Highest `buffered_bytes` seen.
    buffered_bytes_peak,
    /// Request body bytes forwarded to origins.
    bytes_to_origin,
    /// Response body bytes forwarded to clients.
    bytes_to_client,
}

impl Metrics {
    /// Adds one to a counter.
    #[inline]
    pub fn inc(c: &Cell<u64>) {
        c.set(c.get() + 1);
    }

    /// Subtracts one from a gauge (saturating: a bug never wraps it).
    #[inline]
    pub fn dec(c: &Cell<u64>) {
        c.set(c.get().saturating_sub(1));
    }

    /// Adds `n` to a counter.
    #[inline]
    pub fn add(c: &Cell<u64>, n: u64) {
        c.set(c.get() + n);
    }

    /// Counts one edge-generated gRPC status.
    pub fn edge_status(&self, code: u32) {
        if let Some(c) = self.edge_status.get(code as usize) {
            Self::inc(c);
        }
    }

    /// Counts one abuse-limit or protocol answer of the given kind.
    pub fn limit(&self, kind: &'static str) {
        let mut limits = self.limits.borrow_mut();
        match limits.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, n)) => *n += 1,
            None => limits.push((kind, 1)),
        }
    }

    /// The edge now holds `n` more bytes for peers.
    #[inline]
    pub fn buffer_grow(&self, n: usize) {
        let now = self.buffered_bytes.get() + n as u64;
        self.buffered_bytes.set(now);
        if now > self.buffered_bytes_peak.get() {
            self.buffered_bytes_peak.set(now);
        }
    }

    /// The edge released `n` bytes it held.
    #[inline]
    pub fn buffer_shrink(&self, n: usize) {
        self.buffered_bytes
            .set(self.buffered_bytes.get().saturating_sub(n as u64));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_merge_adds_every_counter() {
        let a = Metrics::default();
        Metrics::inc(&a.streams_total);
        a.edge_status(14);
        a.limit("rapid_reset");
        a.buffer_grow(100);
        a.buffer_shrink(40);
        let b = Metrics::default();
        Metrics::add(&b.streams_total, 2);
        b.edge_status(14);
        b.edge_status(99); // out of range: ignored, never panics
        b.limit("rapid_reset");
        b.limit("ping_flood");
        let mut s = a.snapshot();
        s.merge(&b.snapshot());
        assert_eq!(s.streams_total, 3);
        assert_eq!(s.edge_status[14], 2);
        assert_eq!(s.buffered_bytes, 60);
        assert_eq!(s.buffered_bytes_peak, 100);
        assert_eq!(s.limits, vec![("rapid_reset", 2), ("ping_flood", 1)]);
        let text = s.to_prometheus();
        assert!(text.contains("ringedge_streams_total 3\n"));
        assert!(text.contains("ringedge_edge_grpc_status_total{code=\"14\"} 2\n"));
        assert!(text.contains("ringedge_h2_limit_total{kind=\"ping_flood\"} 1\n"));
    }

    #[test]
    fn gauges_saturate_instead_of_wrapping() {
        let m = Metrics::default();
        Metrics::dec(&m.streams_active);
        m.buffer_shrink(5);
        assert_eq!(m.streams_active.get(), 0);
        assert_eq!(m.buffered_bytes.get(), 0);
    }
}
