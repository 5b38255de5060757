//! Open-loop send schedules.
//!
//! A [`Schedule`] answers one question, deterministically and without a clock: at what offset
//! from the start of the run should request `i` (0-based) be sent? Latency is later measured from
//! that *intended* time (wrk2's correction for coordinated omission), so a stalled server cannot
//! hide by slowing the sender down.
//!
//! The shapes mirror ghz's `--load-schedule`:
//! - `const`: a constant `rate` requests/s; request `i` is due at `i / rate`.
//! - `step`: `start` requests/s, changing by `step` every `step_duration`, until the rate reaches
//!   `end` (if given) or `max_duration` has elapsed (if given); then the rate holds.
//! - `line`: `start` requests/s, changing linearly by `slope` requests/s every second, until `end`
//!   or `max_duration`; then the rate holds.
//!
//! Request `i` is due at the time `t` where the integral of the rate from 0 to `t` equals `i`, so
//! the first request goes at 0 and the number of sends in any interval equals the integral of the
//! rate over it (±1).
//!
//! Sharding: shard `k` of `n` takes requests `k, k + n, k + 2n, …` ([`ShardSchedule`]), so the
//! shards together send exactly the global sequence, each request exactly once, and each shard
//! carries `1/n` of the rate at any moment.
//!
//! This module must not read clocks or sleep; the runner compares these offsets with its own
//! monotonic clock. Invariants: offsets are non-decreasing in `i`; validated schedules always have
//! a strictly positive rate, so every request has a finite due time.
use std::fmt;
use std::time::Duration;

/// Upper bound on any rate, requests/s (one request per nanosecond). Larger values are rejected.
pub const MAX_RATE: f64 = 1e9;

/// An open-loop load shape. Construct through [`Schedule::constant`], [`Schedule::step`] or
/// [`Schedule::line`], which validate.
#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    /// A constant rate, requests/s.
    Constant {
        /// Requests per second, in `(0, MAX_RATE]`.
        rate: f64,
    },
    /// A stepped rate (ghz `--load-schedule=step`).
    Step {
        /// Initial rate, requests/s.
        start: f64,
        /// Change of rate at each step, requests/s (may be negative).
        step: f64,
        /// How long each step lasts.
        step_duration: Duration,
        /// Rate at which the steps stop (the rate never passes it).
        end: Option<f64>,
        /// Time after which the rate stops changing.
        max_duration: Option<Duration>,
    },
    /// A linear ramp (ghz `--load-schedule=line`).
    Line {
        /// Initial rate, requests/s.
        start: f64,
        /// Change of rate per second, requests/s² (may be negative).
        slope: f64,
        /// Rate at which the ramp stops.
        end: Option<f64>,
        /// Time after which the rate stops changing.
        max_duration: Option<Duration>,
    },
}

/// Why a schedule was rejected. Each variant names the offending setting.
#[derive(Debug, Clone, PartialEq)]
pub enum ScheduleError {
    /// A rate (`rate`, `start` or `end`) is not a finite number in `(0, MAX_RATE]`.
    BadRate {
        /// Which setting.
        field: &'static str,
        /// The value given.
        value: f64,
    },
    /// `step` or `slope` is not finite.
    BadStep(f64),
    /// `step_duration` is zero.
    ZeroStepDuration,
    /// The rate would fall to zero or below before it stops changing (a decreasing schedule
    /// needs an `end` above zero or a `max_duration` that stops it in time).
    RateReachesZero,
}

impl fmt::Display for ScheduleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScheduleError::BadRate { field, value } => {
                write!(f, "{field} must be in (0, {MAX_RATE}] requests/s, got {value}")
            }
            ScheduleError::BadStep(v) => write!(f, "step must be a finite number, got {v}"),
            ScheduleError::ZeroStepDuration => write!(f, "step duration must be greater than 0"),
            ScheduleError::RateReachesZero => write!(
                f,
                "a decreasing schedule must stop (end > 0 or max duration) before the rate reaches 0"
            ),
        }
    }
}

impl std::error::Error for ScheduleError {}

fn check_rate(field: &'static str, value: f64) -> Result<f64, ScheduleError> {
    if value.is_finite() && value > 0.0 && value <= MAX_RATE {
        Ok(value)
    } else {
        Err(ScheduleError::BadRate { field, value })
    }
}

/// Converts seconds to a `Duration`, saturating (never panics on huge or NaN values).
fn secs(s: f64) -> Duration {
    if s.is_nan() || s <= 0.0 {
        Duration::ZERO
    } else {
        Duration::try_from_secs_f64(s).unwrap_or(Duration::MAX)
    }
}

impl Schedule {
    /// A constant `rate` requests/s.
    pub fn constant(rate: f64) -> Result<Schedule, ScheduleError> {
        Ok(Schedule::Constant {
            rate: check_rate("rate", rate)?,
        })
    }

    /// A stepped schedule; see the module docs.
    pub fn step(
        start: f64,
        step: f64,
        step_duration: Duration,
        end: Option<f64>,
        max_duration: Option<Duration>,
    ) -> Result<Schedule, ScheduleError> {
        check_rate("start", start)?;
        if !step.is_finite() {
            return Err(ScheduleError::BadStep(step));
        }
        if step_duration.is_zero() {
            return Err(ScheduleError::ZeroStepDuration);
        }
        if let Some(e) = end {
            check_rate("end", e)?;
        }
        let s = Schedule::Step {
            start,
            step,
            step_duration,
            end,
            max_duration,
        };
        s.check_floor()?;
        Ok(s)
    }

    /// A linear ramp; see the module docs.
    pub fn line(
        start: f64,
        slope: f64,
        end: Option<f64>,
        max_duration: Option<Duration>,
    ) -> Result<Schedule, ScheduleError> {
        check_rate("start", start)?;
        if !slope.is_finite() {
            return Err(ScheduleError::BadStep(slope));
        }
        if let Some(e) = end {
            check_rate("end", e)?;
        }
        let s = Schedule::Line {
            start,
            slope,
            end,
            max_duration,
        };
        s.check_floor()?;
        Ok(s)
    }

    /// Rejects decreasing schedules whose rate would reach zero.
    fn check_floor(&self) -> Result<(), ScheduleError> {
        let (start, delta, end, max) = match *self {
            Schedule::Constant { .. } => return Ok(()),
            Schedule::Step {
                start,
                step,
                end,
                max_duration,
                ..
            } => (start, step, end, max_duration),
            Schedule::Line {
                start,
                slope,
                end,
                max_duration,
            } => (start, slope, end, max_duration),
        };
        if delta >= 0.0 || end.is_some_and(|e| e < start) {
            return Ok(());
        }
        match max {
            Some(m) if self.rate_at(m) > 0.0 => Ok(()),
            _ => Err(ScheduleError::RateReachesZero),
        }
    }

    /// The instantaneous rate (requests/s) at offset `t`.
    pub fn rate_at(&self, t: Duration) -> f64 {
        match *self {
            Schedule::Constant { rate } => rate,
            Schedule::Step {
                start,
                step,
                step_duration,
                end,
                max_duration,
            } => {
                let t = max_duration.map_or(t, |m| t.min(m));
                let k = (t.as_secs_f64() / step_duration.as_secs_f64()).floor();
                clamp_to_end(start, start + k * step, end)
            }
            Schedule::Line {
                start,
                slope,
                end,
                max_duration,
            } => {
                let t = max_duration.map_or(t, |m| t.min(m));
                clamp_to_end(start, start + slope * t.as_secs_f64(), end)
            }
        }
    }

    /// The intended send offset of request `i` (0-based) from the start of the run.
    pub fn intended(&self, i: u64) -> Duration {
        let n = i as f64;
        match *self {
            Schedule::Constant { rate } => secs(n / rate),
            Schedule::Step {
                start,
                step,
                step_duration,
                end,
                max_duration,
            } => {
                // Segment k covers [k*d, (k+1)*d) at rate r_k = clamp(start + k*step). The rate
                // freezes at the first segment that reaches `end` or contains `max_duration`
                // (segment `kf`). Before it no clamp applies, so C(k) = d*(k*start +
                // step*k*(k-1)/2) requests are due before segment k, and the segment of request
                // n is found by solving C(k) = n: constant cost. (Walking the segments cost
                // due time / step duration steps: with --load-step-duration 1ns and a tiny
                // --load-start, intended(1) never returned.)
                if i == 0 {
                    return Duration::ZERO;
                }
                let d = step_duration.as_secs_f64();
                let rate = |k: f64| clamp_to_end(start, start + k * step, end);
                let due_before = |k: f64| d * (k * start + step * k * (k - 1.0) / 2.0);
                let kf = step_freeze(start, step, d, end, max_duration);
                let (k, rate_k) = if kf.is_finite() && n >= due_before(kf) {
                    (kf, rate(kf))
                } else {
                    // The root k ≥ 0 of (d*step/2) k² + d*(start - step/2) k = n (C(k) as a
                    // polynomial), in a form without cancellation: for b > 0 the one stable
                    // for step → 0 (as for Line below); b ≤ 0 implies step ≥ 2*start > 0.
                    let b = d * (start - step / 2.0);
                    let disc = (b * b + 2.0 * d * step * n).max(0.0);
                    let root = if b > 0.0 {
                        2.0 * n / (b + disc.sqrt())
                    } else {
                        (disc.sqrt() - b) / (d * step)
                    };
                    if !root.is_finite() {
                        // Request n is due beyond any representable time.
                        return Duration::MAX;
                    }
                    // `kf` ≥ 1 here: C(0) = 0 ≤ n would have taken the frozen branch.
                    let mut k = root.floor().clamp(0.0, kf - 1.0);
                    // Rounding may leave the root one segment off.
                    for _ in 0..4 {
                        if k > 0.0 && due_before(k) > n {
                            k -= 1.0;
                        } else if k + 1.0 < kf && due_before(k + 1.0) <= n {
                            k += 1.0;
                        } else {
                            break;
                        }
                    }
                    (k, rate(k))
                };
                let t = k * d + (n - due_before(k)) / rate_k;
                if t.is_nan() {
                    return Duration::MAX;
                }
                secs(t)
            }
            Schedule::Line {
                start,
                slope,
                end,
                max_duration,
            } => {
                // The ramp lasts until the rate hits `end` or `max_duration`, whichever is first.
                // An `end` on the wrong side of `start` is never reached (as in `rate_at`).
                let mut ramp = match end {
                    _ if slope == 0.0 => 0.0,
                    Some(e) if (e - start) * slope > 0.0 => (e - start) / slope,
                    Some(e) if e == start => 0.0,
                    _ => f64::INFINITY,
                };
                if let Some(m) = max_duration {
                    ramp = ramp.min(m.as_secs_f64());
                }
                let during = if ramp.is_finite() {
                    start * ramp + slope * ramp * ramp / 2.0
                } else {
                    f64::INFINITY
                };
                if n < during {
                    // Solve start*t + slope*t²/2 = n; this form is stable for slope → 0.
                    let disc = (start * start + 2.0 * slope * n).max(0.0);
                    secs(2.0 * n / (start + disc.sqrt()))
                } else {
                    let rate = start + slope * ramp;
                    secs(ramp + (n - during) / rate)
                }
            }
        }
    }

    /// An iterator over this schedule's requests for shard `shard` of `shards`.
    pub fn for_shard(&self, shard: u32, shards: u32) -> ShardSchedule {
        ShardSchedule::new(self.clone(), shard, shards)
    }
}

/// The first segment of a step schedule whose rate no longer changes: the rate is 0-based
/// segment `k`'s `clamp(start + k*step)`, frozen once it equals `end` or once the segment
/// reaches past `max_duration`. `INFINITY` when it changes forever.
fn step_freeze(
    start: f64,
    step: f64,
    d: f64,
    end: Option<f64>,
    max_duration: Option<Duration>,
) -> f64 {
    if step == 0.0 {
        return 0.0;
    }
    let reaches_end = |k: f64| end.is_some_and(|e| clamp_to_end(start, start + k * step, end) == e);
    let mut kf = f64::INFINITY;
    if let Some(e) = end {
        let q = (e - start) / step;
        if e == start {
            kf = 0.0;
        } else if q > 0.0 {
            // The end is ahead in the direction of the steps: reached at ceil(q), give or
            // take rounding.
            let mut k = q.ceil();
            for _ in 0..2 {
                if k > 0.0 && reaches_end(k - 1.0) {
                    k -= 1.0;
                } else if !reaches_end(k) {
                    k += 1.0;
                }
            }
            kf = k;
        }
    }
    if let Some(m) = max_duration {
        // The first segment with k*d + d > m.
        let l = m.as_secs_f64();
        let mut k = (l / d).floor();
        for _ in 0..2 {
            if k > 0.0 && (k - 1.0) * d + d > l {
                k -= 1.0;
            } else if k * d + d <= l {
                k += 1.0;
            }
        }
        kf = kf.min(k);
    }
    kf
}

fn clamp_to_end(start: f64, rate: f64, end: Option<f64>) -> f64 {
    match end {
        Some(e) if e >= start => rate.min(e),
        Some(e) => rate.max(e),
        None => rate,
    }
}

/// One shard's share of a schedule: requests `shard, shard + shards, …`, each yielded as
/// `(global index, intended offset)`. Infinite: the runner stops at its duration or count.
#[derive(Debug, Clone)]
pub struct ShardSchedule {
    schedule: Schedule,
    next: u64,
    stride: u64,
}

impl ShardSchedule {
    /// Shard `shard` of `shards` (`shards` of 0 is treated as 1, `shard` is taken modulo
    /// `shards`).
    pub fn new(schedule: Schedule, shard: u32, shards: u32) -> ShardSchedule {
        let stride = u64::from(shards.max(1));
        ShardSchedule {
            schedule,
            next: u64::from(shard) % stride,
            stride,
        }
    }
}

impl Iterator for ShardSchedule {
    type Item = (u64, Duration);
    fn next(&mut self) -> Option<(u64, Duration)> {
        let i = self.next;
        self.next = self.next.checked_add(self.stride)?;
        Some((i, self.schedule.intended(i)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts intended sends per `bucket` over `[0, total)`, simulated (no clock).
    fn counts(s: &Schedule, total: Duration, bucket: Duration) -> Vec<u64> {
        let n = (total.as_nanos() / bucket.as_nanos()) as usize;
        let mut c = vec![0u64; n];
        for i in 0.. {
            let t = s.intended(i);
            if t >= total {
                break;
            }
            c[(t.as_nanos() / bucket.as_nanos()) as usize] += 1;
        }
        c
    }

    /// Expected sends in bucket `b` = integral of the rate over the bucket (midpoint rule is
    /// exact for piecewise-linear rates within one piece).
    fn expect(s: &Schedule, b: usize, bucket: Duration) -> f64 {
        let steps = 100;
        let w = bucket.as_secs_f64() / steps as f64;
        (0..steps)
            .map(|k| s.rate_at(secs(bucket.as_secs_f64() * b as f64 + w * (k as f64 + 0.5))) * w)
            .sum()
    }

    fn holds_rate(s: &Schedule) {
        let bucket = Duration::from_millis(100);
        let c = counts(s, Duration::from_secs(10), bucket);
        let mut total_expected = 0.0;
        for (b, got) in c.iter().enumerate() {
            let want = expect(s, b, bucket);
            total_expected += want;
            assert!(
                (*got as f64 - want).abs() <= 1.0 + want * 0.01,
                "bucket {b}: got {got}, want {want:.1}"
            );
        }
        let total: u64 = c.iter().sum();
        assert!(
            (total as f64 - total_expected).abs() <= 1.0,
            "total {total} vs {total_expected}"
        );
    }

    #[test]
    fn constant_rate_holds() {
        let s = Schedule::constant(1000.0).unwrap();
        holds_rate(&s);
        let c = counts(&s, Duration::from_secs(10), Duration::from_millis(100));
        assert!(c.iter().all(|n| *n == 100), "{c:?}");
        assert_eq!(s.intended(0), Duration::ZERO);
        assert_eq!(s.intended(1500), Duration::from_millis(1500));
    }

    #[test]
    fn step_rate_holds() {
        let s = Schedule::step(100.0, 100.0, Duration::from_secs(2), Some(400.0), None).unwrap();
        holds_rate(&s);
        let c = counts(&s, Duration::from_secs(10), Duration::from_secs(1));
        assert_eq!(c, vec![100, 100, 200, 200, 300, 300, 400, 400, 400, 400]);
        let s = Schedule::step(500.0, -100.0, Duration::from_secs(1), Some(200.0), None).unwrap();
        let c = counts(&s, Duration::from_secs(6), Duration::from_secs(1));
        assert_eq!(c, vec![500, 400, 300, 200, 200, 200]);
        let s = Schedule::step(
            100.0,
            50.0,
            Duration::from_secs(1),
            None,
            Some(Duration::from_secs(3)),
        )
        .unwrap();
        holds_rate(&s);
        let c = counts(&s, Duration::from_secs(6), Duration::from_secs(1));
        assert_eq!(c, vec![100, 150, 200, 250, 250, 250]);
    }

    #[test]
    fn line_rate_holds() {
        let s = Schedule::line(100.0, 100.0, Some(600.0), None).unwrap();
        holds_rate(&s);
        let c = counts(&s, Duration::from_secs(10), Duration::from_secs(1));
        // Rate 100 + 100 t up to t = 5 s, then 600: per second 150, 250, ..., 550, 600...
        let want = [150, 250, 350, 450, 550, 600, 600, 600, 600, 600];
        for (g, w) in c.iter().zip(want.iter()) {
            assert!(g.abs_diff(*w) <= 1, "{c:?}");
        }
        let s = Schedule::line(1000.0, -50.0, None, Some(Duration::from_secs(4))).unwrap();
        holds_rate(&s);
    }

    #[test]
    fn offsets_are_monotonic() {
        for s in [
            Schedule::constant(7.0).unwrap(),
            Schedule::step(3.0, 2.0, Duration::from_millis(300), Some(20.0), None).unwrap(),
            Schedule::line(5.0, -1.0, Some(1.0), None).unwrap(),
        ] {
            let mut last = Duration::ZERO;
            for i in 0..5000 {
                let t = s.intended(i);
                assert!(t >= last, "{s:?} at {i}");
                last = t;
            }
        }
    }

    /// The segment-by-segment definition of a step schedule's due times (the walk `intended`
    /// used to do), for comparison.
    fn step_walk(s: &Schedule, i: u64) -> Duration {
        let Schedule::Step {
            start,
            step,
            step_duration,
            end,
            max_duration,
        } = *s
        else {
            panic!("not a step schedule")
        };
        let (n, d) = (i as f64, step_duration.as_secs_f64());
        let limit = max_duration.map(|m| m.as_secs_f64());
        let (mut before, mut k) = (0.0_f64, 0.0_f64);
        loop {
            let t0 = k * d;
            let rate = clamp_to_end(start, start + k * step, end);
            let frozen =
                step == 0.0 || end.is_some_and(|e| rate == e) || limit.is_some_and(|l| t0 + d > l);
            if frozen || n < before + d * rate {
                return secs(t0 + (n - before) / rate);
            }
            before += d * rate;
            k += 1.0;
        }
    }

    /// Regression (found by the `load_args` fuzz target): `intended` walked the schedule one
    /// step duration at a time, so `--load-step-duration 1ns` with a small `--load-start` never
    /// returned for request 1, and far-out requests of fine steps cost millions of steps each.
    #[test]
    fn step_due_times_are_computed_not_walked() {
        let s = Schedule::step(1e-3, 1e-300, Duration::from_nanos(1), None, None).unwrap();
        assert_eq!(s.intended(0), Duration::ZERO);
        let t1 = s.intended(1);
        assert!(
            t1.as_secs_f64() > 999.0 && t1.as_secs_f64() < 1001.0,
            "{t1:?}"
        );
        let s = Schedule::step(1e-300, 1e-300, Duration::from_nanos(1), None, None).unwrap();
        let mut last = Duration::ZERO;
        for i in 0..8 {
            let t = s.intended(i);
            assert!(t >= last, "{i}: {t:?}");
            last = t;
        }
        // Far-out requests agree with the walk, for rising (also with step > 2 × start),
        // falling, ended and time-limited schedules.
        for s in [
            Schedule::step(10.0, 3.0, Duration::from_millis(1), Some(5000.0), None).unwrap(),
            Schedule::step(1.0, 10.0, Duration::from_millis(10), None, None).unwrap(),
            Schedule::step(5000.0, -7.0, Duration::from_millis(1), Some(20.0), None).unwrap(),
            Schedule::step(
                300.0,
                -2.5,
                Duration::from_millis(3),
                None,
                Some(Duration::from_millis(250)),
            )
            .unwrap(),
            Schedule::step(100.0, 0.0, Duration::from_millis(1), None, None).unwrap(),
        ] {
            let mut last = Duration::ZERO;
            for i in (0..200_000).step_by(997).chain([1, 2, 3, 199_999]) {
                let (got, want) = (s.intended(i), step_walk(&s, i));
                let diff = got.abs_diff(want);
                assert!(
                    diff <= Duration::from_micros(1),
                    "{s:?} at {i}: {got:?} vs {want:?}"
                );
                if i % 997 == 0 {
                    assert!(got >= last, "{s:?} at {i}");
                    last = got;
                }
            }
        }
    }

    #[test]
    fn shards_cover_every_request_once() {
        let s = Schedule::step(200.0, 100.0, Duration::from_secs(1), Some(500.0), None).unwrap();
        let shards = 3;
        let horizon = Duration::from_secs(5);
        let mut seen: Vec<(u64, Duration)> = (0..shards)
            .flat_map(|k| s.for_shard(k, shards).take_while(|(_, t)| *t < horizon))
            .collect();
        seen.sort();
        let global: Vec<(u64, Duration)> = (0..)
            .map(|i| (i, s.intended(i)))
            .take_while(|(_, t)| *t < horizon)
            .collect();
        assert_eq!(seen, global);
        // Each shard carries a third of the rate.
        let one: Vec<_> = s
            .for_shard(1, shards)
            .take_while(|(_, t)| *t < horizon)
            .collect();
        assert!(one.len().abs_diff(global.len() / 3) <= 1);
    }

    #[test]
    fn invalid_schedules_are_rejected() {
        assert!(matches!(
            Schedule::constant(0.0),
            Err(ScheduleError::BadRate { .. })
        ));
        assert!(Schedule::constant(f64::NAN).is_err());
        assert!(Schedule::constant(-1.0).is_err());
        assert_eq!(
            Schedule::step(10.0, 1.0, Duration::ZERO, None, None),
            Err(ScheduleError::ZeroStepDuration)
        );
        assert_eq!(
            Schedule::step(10.0, -1.0, Duration::from_secs(1), None, None),
            Err(ScheduleError::RateReachesZero)
        );
        assert_eq!(
            Schedule::line(10.0, -1.0, None, Some(Duration::from_secs(20))),
            Err(ScheduleError::RateReachesZero)
        );
        assert!(Schedule::line(10.0, -1.0, None, Some(Duration::from_secs(5))).is_ok());
        assert!(Schedule::line(10.0, f64::INFINITY, None, None).is_err());
        // Huge indices saturate instead of panicking.
        let s = Schedule::constant(1e-300_f64.max(1e-9)).unwrap();
        let _ = s.intended(u64::MAX);
    }
}
