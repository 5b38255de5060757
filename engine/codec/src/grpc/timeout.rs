//! `grpc-timeout` (gRPC PROTOCOL-HTTP2.md, "Requests"):
//! `Timeout → "grpc-timeout" TimeoutValue TimeoutUnit`, `TimeoutValue` = at most 8 ASCII
//! digits, `TimeoutUnit` = `H` hours, `M` minutes, `S` seconds, `m` ms, `u` µs, `n` ns.
//!
//! Rounding rule of [`format_timeout`]: the finest unit whose value fits in 8 digits is chosen,
//! and the value is rounded **up** to a whole number of that unit. A remaining budget is thus
//! never under-stated (in particular a non-zero budget never becomes `0`), and it is over-stated
//! by less than one unit, where the unit is the finest one that can express it. The only
//! exception is a duration above `99999999H` (about 11,400 years), which saturates to
//! `99999999H`.

use super::error::GrpcError;
use std::time::Duration;

/// Most digits a `grpc-timeout` value may have (PROTOCOL-HTTP2.md).
pub const MAX_TIMEOUT_DIGITS: usize = 8;

const MAX_VALUE: u64 = 99_999_999;

/// Units from finest to coarsest with their length in nanoseconds.
const UNITS: [(u8, u64); 6] = [
    (b'n', 1),
    (b'u', 1_000),
    (b'm', 1_000_000),
    (b'S', 1_000_000_000),
    (b'M', 60_000_000_000),
    (b'H', 3_600_000_000_000),
];

fn unit_nanos(unit: u8) -> Option<u64> {
    UNITS.iter().find(|(u, _)| *u == unit).map(|(_, n)| *n)
}

/// Parses a `grpc-timeout` value. Strict: 1 to 8 ASCII digits then exactly one unit letter,
/// nothing else (no whitespace, no sign). The spec says "positive integer"; `0` is accepted
/// anyway (a budget already spent, as other implementations treat it) and yields
/// `Duration::ZERO`, which a caller turns into DEADLINE_EXCEEDED at once. The result saturates at `Duration::MAX` (it cannot
/// actually overflow: the largest value is 99999999 hours).
pub fn parse_timeout(value: &[u8]) -> Result<Duration, GrpcError> {
    let Some((&unit, digits)) = value.split_last() else {
        return Err(GrpcError::InvalidTimeout {
            reason: "empty value",
        });
    };
    let Some(per_unit) = unit_nanos(unit) else {
        return Err(GrpcError::InvalidTimeout {
            reason: "unit must be one of H M S m u n",
        });
    };
    if digits.is_empty() {
        return Err(GrpcError::InvalidTimeout {
            reason: "no digits",
        });
    }
    if digits.len() > MAX_TIMEOUT_DIGITS {
        return Err(GrpcError::InvalidTimeout {
            reason: "more than 8 digits",
        });
    }
    let mut v: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return Err(GrpcError::InvalidTimeout {
                reason: "value is not ASCII digits",
            });
        }
        v = v * 10 + u64::from(d - b'0');
    }
    // v < 1e8 and per_unit <= 3.6e12: the product fits in u128 trivially; convert saturating.
    let nanos = u128::from(v) * u128::from(per_unit);
    Ok(duration_from_nanos_saturating(nanos))
}

fn duration_from_nanos_saturating(nanos: u128) -> Duration {
    let secs = nanos / 1_000_000_000;
    let sub = (nanos % 1_000_000_000) as u32; // < 1e9, fits
    match u64::try_from(secs) {
        Ok(s) => Duration::new(s, sub),
        Err(_) => Duration::MAX,
    }
}

/// Formats a duration as a `grpc-timeout` value (see the module docs for the rounding rule:
/// finest unit that fits in 8 digits, rounded up, saturating at `99999999H`).
pub fn format_timeout(d: Duration) -> String {
    let nanos = d.as_nanos();
    for &(unit, per) in &UNITS {
        let per = u128::from(per);
        let v = nanos.div_ceil(per);
        if v <= u128::from(MAX_VALUE) {
            let mut s = v.to_string();
            s.push(char::from(unit));
            return s;
        }
    }
    format!("{MAX_VALUE}H")
}
