//! Per-shard latency recorder.
//!
//! A [`Recorder`] lives on one shard (it is `!Sync` by design: no locks, no atomics) and takes
//! completed calls and transport errors as plain values. All times are [`Duration`] offsets from
//! the start of the run on the shard's monotonic clock, supplied by the caller: this module never
//! reads a clock, so it is tested with simulated times.
//!
//! Units: latencies are recorded in **microseconds** (1 µs resolution) into
//! `hdrhistogram::Histogram<u64>` with 3 significant digits, a lowest discernible value of 1 µs and
//! auto-resize from an initial highest trackable value of [`INITIAL_HIGHEST_US`] (60 s), so a
//! longer stall is still recorded, never dropped. A latency of 0 µs is recorded as 1 µs.
//!
//! Two histograms: **corrected** measures from each request's *intended* send time (the schedule's
//! offset, wrk2's correction for coordinated omission); **uncorrected** from the actual send time,
//! for comparison. In closed-loop mode pass the actual send time as the intended one.
//!
//! Warm-up: calls whose intended send time is before `warmup` are counted in
//! [`Recorder::warmup_excluded`] and nothing else.
//!
//! Per-second series: second `s` holds the calls that *completed* in `[warmup + s, warmup + s + 1)`.
//! Each second's corrected histogram is kept V2-deflate-compressed once the second closes (a few
//! hundred bytes, not a full histogram per second). Completion times on one shard are expected to
//! be non-decreasing (they are "now"); a completion earlier than the open second is counted in the
//! open second (documented clamp, no panic).
//!
//! Merging ([`Recorder::merge`]) adds histograms (`Histogram::add`), sums counts and aligns series
//! by second index, so merged percentiles equal those of the union of all samples.
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;

/// Initial highest trackable latency, µs (60 s); histograms auto-resize beyond it.
pub const INITIAL_HIGHEST_US: u64 = 60_000_000;
/// Significant decimal digits kept by every histogram.
pub const SIGNIFICANT_DIGITS: u8 = 3;

/// A new, empty latency histogram with this module's settings (µs, 3 digits, auto-resize).
pub fn new_histogram() -> Histogram<u64> {
    // The bounds are constants that `new_with_bounds` accepts (1 ≤ low, high ≥ 2·low, sigfig ≤ 5).
    let mut h = Histogram::new_with_bounds(1, INITIAL_HIGHEST_US, SIGNIFICANT_DIGITS)
        .unwrap_or_else(|_| Histogram::new(SIGNIFICANT_DIGITS).expect("3 digits is valid"));
    h.auto(true);
    h
}

/// Records `us` into `h`, resizing as needed; a value beyond any resize is clamped to the
/// histogram's highest trackable value instead of being dropped.
pub fn record_us(h: &mut Histogram<u64>, us: u64) {
    if h.record(us).is_err() {
        h.saturating_record(us);
    }
}

/// Microseconds in `d`, saturating, at least 1.
pub fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

/// gRPC status code names, indexed by code (grpc/doc/statuscodes.md).
pub use ringedge_codec::grpc::STATUS_NAMES;

/// Counts of `grpc-status` values: codes 0..=16 and everything else as `unknown`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusCounts {
    /// `codes[c]` counts responses with `grpc-status: c`.
    pub codes: [u64; 17],
    /// Responses whose status was missing, unparsable or above 16.
    pub unknown: u64,
}

impl StatusCounts {
    /// Counts one status; `None` (missing or unparsable) counts as unknown.
    pub fn add(&mut self, status: Option<u32>) {
        match status.and_then(|s| self.codes.get_mut(s as usize)) {
            Some(c) => *c = c.saturating_add(1),
            None => self.unknown = self.unknown.saturating_add(1),
        }
    }
    /// Total of all counts.
    pub fn total(&self) -> u64 {
        self.codes
            .iter()
            .fold(self.unknown, |a, c| a.saturating_add(*c))
    }
    /// Non-zero counts as (name, count), code order, `unknown` last.
    pub fn named(&self) -> Vec<(&'static str, u64)> {
        let mut v: Vec<_> = STATUS_NAMES
            .iter()
            .zip(self.codes.iter())
            .filter(|(_, c)| **c > 0)
            .map(|(n, c)| (*n, *c))
            .collect();
        if self.unknown > 0 {
            v.push(("unknown", self.unknown));
        }
        v
    }
    fn merge(&mut self, o: &StatusCounts) {
        for (a, b) in self.codes.iter_mut().zip(o.codes.iter()) {
            *a = a.saturating_add(*b);
        }
        self.unknown = self.unknown.saturating_add(o.unknown);
    }
}

/// A transport-level failure of one call (no `grpc-status` was received).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TransportErrorKind {
    /// TCP connect failed.
    ConnectFailed,
    /// The TLS handshake failed (or ALPN did not select h2).
    TlsFailed,
    /// The stream was reset by the peer with this HTTP/2 error code (RFC 9113 §7).
    Reset(u32),
    /// The connection was closed by GOAWAY with this error code before the call completed.
    GoAway(u32),
    /// The call did not complete within its timeout.
    Timeout,
    /// The peer violated HTTP/2 or gRPC framing.
    Protocol,
    /// The connection ended (TCP FIN/RST, socket error) with the call in flight and no GOAWAY.
    ConnectionLost,
    /// Open loop: the request was due before the end of the run but no stream slot freed up
    /// for it before the drain timeout (target or generator saturated); never sent.
    NotSent,
}

impl fmt::Display for TransportErrorKind {
    /// The stable key used in reports: `connect_failed`, `tls_failed`, `reset:0x8`,
    /// `goaway:0x0`, `timeout`, `protocol_error`, `connection_lost`, `not_sent`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransportErrorKind::ConnectFailed => f.write_str("connect_failed"),
            TransportErrorKind::TlsFailed => f.write_str("tls_failed"),
            TransportErrorKind::Reset(c) => write!(f, "reset:{c:#x}"),
            TransportErrorKind::GoAway(c) => write!(f, "goaway:{c:#x}"),
            TransportErrorKind::Timeout => f.write_str("timeout"),
            TransportErrorKind::Protocol => f.write_str("protocol_error"),
            TransportErrorKind::ConnectionLost => f.write_str("connection_lost"),
            TransportErrorKind::NotSent => f.write_str("not_sent"),
        }
    }
}

/// One finished call, as offsets from the run start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Completion {
    /// When the schedule wanted the call sent (closed loop: the actual send time).
    pub intended: Duration,
    /// When the first byte of the call was actually handed to the connection.
    pub sent: Duration,
    /// When the call finished (trailers received).
    pub done: Duration,
    /// The `grpc-status` received (`None` when missing or unparsable).
    pub status: Option<u32>,
}

/// One closed second of the series.
#[derive(Debug, Clone, PartialEq)]
pub struct Second {
    /// Index from the end of warm-up.
    pub second: u64,
    /// Calls completed with a status in this second.
    pub completed: u64,
    /// Transport errors in this second.
    pub errors: u64,
    /// The corrected latency histogram of the second, V2 deflate encoding.
    pub histogram_v2: Vec<u8>,
}

impl Second {
    /// Decodes this second's histogram (an empty one if the encoding is damaged).
    pub fn histogram(&self) -> Histogram<u64> {
        decode_v2(&self.histogram_v2).unwrap_or_else(new_histogram)
    }
}

/// Decodes a V2 (plain or deflate) histogram into an auto-resizing one.
pub fn decode_v2(bytes: &[u8]) -> Option<Histogram<u64>> {
    let h: Histogram<u64> = Deserializer::new().deserialize(&mut &bytes[..]).ok()?;
    let mut out = new_histogram();
    out.add(&h).ok()?;
    Some(out)
}

/// Encodes a histogram with V2 deflate.
pub fn encode_v2(h: &Histogram<u64>) -> Vec<u8> {
    let mut buf = Vec::new();
    // Serializing into a Vec only fails on internal invariants; an empty buffer decodes as none.
    if V2DeflateSerializer::new().serialize(h, &mut buf).is_err() {
        buf.clear();
    }
    buf
}

/// Per-shard (and, merged, per-run) results.
#[derive(Debug, Clone)]
pub struct Recorder {
    warmup: Duration,
    /// Latency from intended send to completion, µs.
    pub corrected: Histogram<u64>,
    /// Latency from actual send to completion, µs.
    pub uncorrected: Histogram<u64>,
    /// `grpc-status` counts.
    pub status: StatusCounts,
    /// Transport errors by kind.
    pub errors: BTreeMap<TransportErrorKind, u64>,
    /// Calls sent (after warm-up).
    pub sent: u64,
    /// Calls whose intended send time fell in the warm-up (not recorded anywhere else).
    pub warmup_excluded: u64,
    closed: Vec<Second>,
    open: Option<(u64, u64, u64, Histogram<u64>)>,
}

impl Recorder {
    /// A recorder that ignores calls intended before `warmup`.
    pub fn new(warmup: Duration) -> Recorder {
        Recorder {
            warmup,
            corrected: new_histogram(),
            uncorrected: new_histogram(),
            status: StatusCounts::default(),
            errors: BTreeMap::new(),
            sent: 0,
            warmup_excluded: 0,
            closed: Vec::new(),
            open: None,
        }
    }

    /// The warm-up this recorder excludes.
    pub fn warmup(&self) -> Duration {
        self.warmup
    }

    /// Counts one call sent at intended offset `intended` (ignored during warm-up).
    pub fn record_sent(&mut self, intended: Duration) {
        if intended >= self.warmup {
            self.sent = self.sent.saturating_add(1);
        }
    }

    /// Records a finished call.
    pub fn record(&mut self, c: Completion) {
        if c.intended < self.warmup {
            self.warmup_excluded = self.warmup_excluded.saturating_add(1);
            return;
        }
        let corrected = micros(c.done.saturating_sub(c.intended));
        let uncorrected = micros(c.done.saturating_sub(c.sent));
        record_us(&mut self.corrected, corrected);
        record_us(&mut self.uncorrected, uncorrected);
        self.status.add(c.status);
        let slot = self.slot(c.done);
        slot.1 = slot.1.saturating_add(1);
        record_us(&mut slot.3, corrected);
    }

    /// Records a call that failed below gRPC.
    pub fn record_error(&mut self, intended: Duration, done: Duration, kind: TransportErrorKind) {
        if intended < self.warmup {
            self.warmup_excluded = self.warmup_excluded.saturating_add(1);
            return;
        }
        let e = self.errors.entry(kind).or_insert(0);
        *e = e.saturating_add(1);
        let slot = self.slot(done);
        slot.2 = slot.2.saturating_add(1);
    }

    /// Total transport errors.
    pub fn error_count(&self) -> u64 {
        self.errors.values().fold(0, |a, b| a.saturating_add(*b))
    }

    /// Calls completed with a `grpc-status` (any code): the number of corrected samples, which
    /// equals `status.total()` for a live run and is the only count an interval log carries.
    pub fn completed(&self) -> u64 {
        self.corrected.len()
    }

    /// The open second for a completion at `done`, closing the previous one if needed.
    fn slot(&mut self, done: Duration) -> &mut (u64, u64, u64, Histogram<u64>) {
        let s = done.saturating_sub(self.warmup).as_secs();
        if self.open.as_ref().is_some_and(|o| s > o.0) {
            self.close_open();
        }
        self.open.get_or_insert_with(|| (s, 0, 0, new_histogram()))
    }

    fn close_open(&mut self) {
        if let Some((second, completed, errors, h)) = self.open.take() {
            self.closed.push(Second {
                second,
                completed,
                errors,
                histogram_v2: encode_v2(&h),
            });
        }
    }

    /// Closes the open second (call at the end of the run). Idempotent.
    pub fn finish(&mut self) {
        self.close_open();
    }

    /// The closed seconds, in increasing order, with gaps for seconds with nothing recorded.
    /// Call [`Recorder::finish`] first to include the last second.
    pub fn series(&self) -> &[Second] {
        &self.closed
    }

    /// Replaces the series (used when rebuilding a result from interval logs).
    pub fn set_series(&mut self, series: Vec<Second>) {
        self.open = None;
        self.closed = series;
    }

    /// Merges `other` into `self` (both are finished first; warm-ups are expected to agree).
    pub fn merge(&mut self, other: &Recorder) {
        self.finish();
        let mut other = other.clone();
        other.finish();
        // Both histograms auto-resize, so `add` cannot fail on range.
        let _ = self.corrected.add(&other.corrected);
        let _ = self.uncorrected.add(&other.uncorrected);
        self.status.merge(&other.status);
        for (k, v) in &other.errors {
            let e = self.errors.entry(*k).or_insert(0);
            *e = e.saturating_add(*v);
        }
        self.sent = self.sent.saturating_add(other.sent);
        self.warmup_excluded = self.warmup_excluded.saturating_add(other.warmup_excluded);
        self.closed = merge_series(&self.closed, &other.closed);
    }
}

/// Merges two series ordered by second, adding entries of the same second.
pub fn merge_series(a: &[Second], b: &[Second]) -> Vec<Second> {
    let mut map: BTreeMap<u64, (u64, u64, Histogram<u64>)> = BTreeMap::new();
    for s in a.iter().chain(b.iter()) {
        let e = map
            .entry(s.second)
            .or_insert_with(|| (0, 0, new_histogram()));
        e.0 = e.0.saturating_add(s.completed);
        e.1 = e.1.saturating_add(s.errors);
        let _ = e.2.add(s.histogram());
    }
    map.into_iter()
        .map(|(second, (completed, errors, h))| Second {
            second,
            completed,
            errors,
            histogram_v2: encode_v2(&h),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Simulates a closed-loop-style sender stuck behind a 1 s server stall on a 1000 req/s
    /// schedule: requests due during the stall are only sent when it ends.
    #[test]
    fn stall_shows_in_corrected_not_uncorrected() {
        let mut r = Recorder::new(Duration::ZERO);
        let mut now = Duration::ZERO;
        for i in 0..3000u64 {
            let intended = ms(i); // 1 per ms
            if intended > now {
                now = intended;
            }
            let sent = now;
            // Request 1000 stalls for 1 s; the rest take 1 ms.
            let took = if i == 1000 { ms(1000) } else { ms(1) };
            now = sent + took;
            r.record_sent(intended);
            r.record(Completion {
                intended,
                sent,
                done: now,
                status: Some(0),
            });
        }
        r.finish();
        let c99 = r.corrected.value_at_quantile(0.99);
        let u99 = r.uncorrected.value_at_quantile(0.99);
        assert!(u99 <= 1_001, "uncorrected p99 {u99}");
        assert!(c99 >= 900_000, "corrected p99 {c99}");
        // The corrected median covers the third of requests delayed by the stall.
        assert!(r.corrected.value_at_quantile(0.5) > 1_001);
        assert_eq!(
            r.uncorrected.max(),
            r.uncorrected.highest_equivalent(1_000_000)
        );
        assert_eq!(r.completed(), 3000);
        assert_eq!(r.sent, 3000);
    }

    #[test]
    fn warmup_is_excluded() {
        let mut r = Recorder::new(Duration::from_secs(1));
        for i in 0..2000u64 {
            r.record_sent(ms(i));
            r.record(Completion {
                intended: ms(i),
                sent: ms(i),
                done: ms(i + 2),
                status: Some(0),
            });
        }
        r.record_error(ms(10), ms(20), TransportErrorKind::Timeout);
        r.finish();
        assert_eq!(r.warmup_excluded, 1001);
        assert_eq!(r.completed(), 1000);
        assert_eq!(r.sent, 1000);
        assert!(r.errors.is_empty());
        // Series seconds count from the end of warm-up.
        assert_eq!(r.series()[0].second, 0);
        assert_eq!(r.series().iter().map(|s| s.completed).sum::<u64>(), 1000);
    }

    #[test]
    fn statuses_errors_and_series() {
        let mut r = Recorder::new(Duration::ZERO);
        let codes = [
            Some(0),
            Some(0),
            Some(14),
            Some(16),
            Some(17),
            None,
            Some(3),
        ];
        for (i, c) in codes.iter().enumerate() {
            let t = ms(400 * i as u64);
            r.record(Completion {
                intended: t,
                sent: t,
                done: t + ms(5),
                status: *c,
            });
        }
        r.record_error(ms(2500), ms(2600), TransportErrorKind::Reset(8));
        r.record_error(ms(2500), ms(2700), TransportErrorKind::Reset(8));
        r.record_error(ms(2500), ms(2700), TransportErrorKind::GoAway(0));
        r.finish();
        assert_eq!(r.status.codes[0], 2);
        assert_eq!(r.status.codes[14], 1);
        assert_eq!(r.status.codes[16], 1);
        assert_eq!(r.status.codes[3], 1);
        assert_eq!(r.status.unknown, 2);
        assert_eq!(r.status.total(), 7);
        assert_eq!(r.errors[&TransportErrorKind::Reset(8)], 2);
        assert_eq!(TransportErrorKind::Reset(8).to_string(), "reset:0x8");
        assert_eq!(r.error_count(), 3);
        let s: Vec<(u64, u64, u64)> = r
            .series()
            .iter()
            .map(|s| (s.second, s.completed, s.errors))
            .collect();
        // done times: 5, 405, 805 | 1205, 1605 | 2005, 2405 + errors at 2.6 s, 2.7 s
        assert_eq!(s, vec![(0, 3, 0), (1, 2, 0), (2, 2, 3)]);
        assert_eq!(r.series()[1].histogram().len(), 2);
    }

    #[test]
    fn merge_equals_union() {
        // Deterministic pseudo-random latencies spread over 1 µs .. ~10 s.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut shards: Vec<Recorder> = (0..4).map(|_| Recorder::new(Duration::ZERO)).collect();
        let mut union = new_histogram();
        let mut union_uncorrected = new_histogram();
        for i in 0..20_000u64 {
            let intended = Duration::from_micros(i * 500);
            let delay = Duration::from_micros(next() % 1_000);
            let lat = Duration::from_micros(1 + next() % 10_000_000 / (1 + next() % 1000));
            let c = Completion {
                intended,
                sent: intended + delay,
                done: intended + delay + lat,
                status: Some(0),
            };
            union.record(micros(c.done - c.intended)).unwrap();
            union_uncorrected.record(micros(c.done - c.sent)).unwrap();
            shards[(next() % 4) as usize].record(c);
        }
        let mut merged = Recorder::new(Duration::ZERO);
        for s in &shards {
            merged.merge(s);
        }
        assert_eq!(merged.corrected.len(), union.len());
        let a: Vec<(u64, u64)> = merged
            .corrected
            .iter_recorded()
            .map(|v| (v.value_iterated_to(), v.count_at_value()))
            .collect();
        let b: Vec<(u64, u64)> = union
            .iter_recorded()
            .map(|v| (v.value_iterated_to(), v.count_at_value()))
            .collect();
        assert_eq!(a, b);
        assert_eq!(merged.corrected, union);
        assert_eq!(merged.uncorrected, union_uncorrected);
        assert_eq!(merged.status.codes[0], 20_000);
        // Series aligned by second: per-second counts add up, one entry per second.
        let secs: Vec<u64> = merged.series().iter().map(|s| s.second).collect();
        let mut sorted = secs.clone();
        sorted.dedup();
        assert_eq!(secs, sorted);
        assert_eq!(
            merged.series().iter().map(|s| s.completed).sum::<u64>(),
            20_000
        );
        let per_second_total: u64 = merged.series().iter().map(|s| s.histogram().len()).sum();
        assert_eq!(per_second_total, 20_000);
    }

    #[test]
    fn huge_latency_is_kept() {
        let mut r = Recorder::new(Duration::ZERO);
        let done = Duration::from_secs(3600);
        r.record(Completion {
            intended: Duration::ZERO,
            sent: Duration::ZERO,
            done,
            status: Some(0),
        });
        assert!(r.corrected.max() >= 3_599_000_000);
        // Out-of-order completion is clamped into the open second, not lost.
        r.record(Completion {
            intended: ms(1),
            sent: ms(1),
            done: ms(2),
            status: Some(0),
        });
        r.finish();
        assert_eq!(r.series().iter().map(|s| s.completed).sum::<u64>(), 2);
        assert!(decode_v2(b"garbage").is_none());
    }
}
