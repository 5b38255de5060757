//! `ringedge-bench merge`: reads HdrHistogram interval logs (ours or any tool's that writes the
//! standard V2 format), merges every interval into one histogram and a per-second series.
//!
//! Interval timestamps are taken as `BaseTime + timestamp` (BaseTime 0 when absent, as the format
//! defines), so logs from several machines align on wall-clock seconds; the series starts at the
//! earliest interval. All intervals are merged unless a tag is selected ([`select_tag`]); note
//! that HdrHistogram's Java `HistogramLogProcessor` takes only untagged intervals by default.
//! Values are taken as microseconds; logs in other units are converted with [`to_micros`].
//!
//! Must not panic on any input: damaged lines and histograms are reported as [`MergeError`]s.
//! Limits: [`MAX_INTERVALS`] intervals per merge and [`MAX_SERIES_SECONDS`] seconds of series.
use std::fmt;
use std::time::Duration;

use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use hdrhistogram::Histogram;

use crate::recorder::{decode_v2, encode_v2, new_histogram, Recorder, Second};
use crate::report::RunMeta;

/// Most intervals accepted across all inputs.
pub const MAX_INTERVALS: usize = 10_000_000;
/// Longest series kept, seconds (intervals beyond it still count in the totals).
pub const MAX_SERIES_SECONDS: u64 = 7 * 24 * 3600;

/// Why merging failed.
#[derive(Debug, Clone, PartialEq)]
pub enum MergeError {
    /// The log text could not be parsed at this byte offset.
    Parse {
        /// Input name.
        file: String,
        /// Byte offset of the bad line.
        offset: usize,
    },
    /// An interval's histogram is not valid base64 + V2.
    BadHistogram {
        /// Input name.
        file: String,
        /// 0-based index of the interval in that file.
        interval: usize,
    },
    /// More than [`MAX_INTERVALS`] intervals.
    TooManyIntervals,
}

impl fmt::Display for MergeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MergeError::Parse { file, offset } => {
                write!(
                    f,
                    "{file}: not an HdrHistogram interval log (parse error at byte {offset})"
                )
            }
            MergeError::BadHistogram { file, interval } => {
                write!(
                    f,
                    "{file}: interval {interval} holds an undecodable histogram"
                )
            }
            MergeError::TooManyIntervals => write!(f, "more than {MAX_INTERVALS} intervals"),
        }
    }
}

impl std::error::Error for MergeError {}

/// Decodes standard base64 (RFC 4648 §4, padding optional). `None` on any invalid character.
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    fn val(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let bytes = s.trim().trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut acc = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            acc |= val(*c)? << (18 - 6 * i as u32);
        }
        let [_, a, b, c] = acc.to_be_bytes();
        match chunk.len() {
            4 => out.extend_from_slice(&[a, b, c]),
            3 => out.extend_from_slice(&[a, b]),
            2 => out.push(a),
            _ => return None,
        }
    }
    Some(out)
}

/// The unit of the values in a log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ValueUnit {
    /// Nanoseconds (jHiccup, many Java tools).
    Ns,
    /// Microseconds (ringedge-bench, wrk2).
    Us,
    /// Milliseconds.
    Ms,
}

/// Converts a histogram recorded in `unit` to microseconds. Converting from ns rounds each value
/// down to the microsecond (at least 1); converting from ms multiplies (saturating).
pub fn to_micros(h: &Histogram<u64>, unit: ValueUnit) -> Histogram<u64> {
    let mut out = new_histogram();
    for v in h.iter_recorded() {
        let value = v.value_iterated_to();
        let us = match unit {
            ValueUnit::Ns => value / 1000,
            ValueUnit::Us => value,
            ValueUnit::Ms => value.saturating_mul(1000),
        }
        .max(1);
        if out.record_n(us, v.count_at_value()).is_err() {
            out.saturating_record_n(us, v.count_at_value());
        }
    }
    out
}

/// Keeps only the intervals tagged `tag` (all of them when `tag` is `None`).
pub fn select_tag(intervals: Vec<Interval>, tag: Option<&str>) -> Vec<Interval> {
    match tag {
        None => intervals,
        Some(t) => intervals
            .into_iter()
            .filter(|i| i.tag.as_deref() == Some(t))
            .collect(),
    }
}

/// One decoded interval.
#[derive(Debug, Clone)]
pub struct Interval {
    /// Absolute start, seconds (BaseTime + timestamp).
    pub start_s: f64,
    /// Interval length, seconds.
    pub length_s: f64,
    /// Tag, if any.
    pub tag: Option<String>,
    /// The histogram.
    pub histogram: Histogram<u64>,
}

/// Parses one interval log. `name` is used in errors.
pub fn parse_log(name: &str, text: &[u8]) -> Result<Vec<Interval>, MergeError> {
    let mut base = 0.0_f64;
    let mut out = Vec::new();
    for entry in IntervalLogIterator::new(text) {
        let entry = entry.map_err(|e| match e {
            hdrhistogram::serialization::interval_log::LogIteratorError::ParseError { offset } => {
                MergeError::Parse {
                    file: name.to_owned(),
                    offset,
                }
            }
        })?;
        match entry {
            LogEntry::BaseTime(t) => base = t.as_secs_f64(),
            LogEntry::StartTime(_) => {}
            LogEntry::Interval(i) => {
                let bad = || MergeError::BadHistogram {
                    file: name.to_owned(),
                    interval: out.len(),
                };
                let bytes = base64_decode(i.encoded_histogram()).ok_or_else(bad)?;
                let histogram = decode_v2(&bytes).ok_or_else(bad)?;
                out.push(Interval {
                    start_s: base + i.start_timestamp().as_secs_f64(),
                    length_s: i.duration().as_secs_f64(),
                    tag: i.tag().map(|t| t.as_str().to_owned()),
                    histogram,
                });
                if out.len() > MAX_INTERVALS {
                    return Err(MergeError::TooManyIntervals);
                }
            }
        }
    }
    Ok(out)
}

/// Merges intervals into a [`Recorder`] (corrected histogram = the union of all intervals;
/// uncorrected stays empty since logs carry one histogram per interval; status and error counts
/// stay empty since logs do not carry them; `completed` per second
/// is the interval's count, attributed to the second it starts in) and a [`RunMeta`] whose
/// start and duration span the intervals.
pub fn merge_intervals(intervals: &[Interval], target: &str) -> (Recorder, RunMeta) {
    let mut rec = Recorder::new(Duration::ZERO);
    let start = intervals
        .iter()
        .map(|i| i.start_s)
        .fold(f64::INFINITY, f64::min);
    let end = intervals
        .iter()
        .map(|i| i.start_s + i.length_s)
        .fold(f64::NEG_INFINITY, f64::max);
    let mut per_second: std::collections::BTreeMap<u64, Histogram<u64>> = Default::default();
    for i in intervals {
        let _ = rec.corrected.add(&i.histogram);
        let s = (i.start_s - start).max(0.0).floor() as u64;
        if s <= MAX_SERIES_SECONDS {
            let _ = per_second
                .entry(s)
                .or_insert_with(new_histogram)
                .add(&i.histogram);
        }
    }
    // Logs carry latencies only: every logged call was sent and completed; statuses unknown.
    rec.sent = rec.corrected.len();
    let series: Vec<Second> = per_second
        .into_iter()
        .map(|(second, h)| Second {
            second,
            completed: h.len(),
            errors: 0,
            histogram_v2: encode_v2(&h),
        })
        .collect();
    rec.set_series(series);
    let meta = RunMeta {
        target: target.to_owned(),
        start_unix_s: if start.is_finite() { start } else { 0.0 },
        duration_s: if end.is_finite() && start.is_finite() {
            (end - start).max(0.0)
        } else {
            0.0
        },
        ..RunMeta::default()
    };
    (rec, meta)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recorder::Completion;
    use crate::report::{interval_log, RunMeta};

    #[test]
    fn base64_matches_rfc4648_vectors() {
        // RFC 4648 §10.
        for (plain, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64_decode(enc).unwrap(), plain.as_bytes(), "{enc}");
        }
        assert!(base64_decode("Zm9v!").is_none());
        assert!(base64_decode("Z").is_none());
    }

    fn machine_log(offset_s: f64, lat_us: u64, tag: &str) -> (Vec<u8>, Recorder) {
        let mut r = Recorder::new(Duration::ZERO);
        for i in 0..3000u64 {
            let t = Duration::from_millis(i);
            r.record(Completion {
                intended: t,
                sent: t,
                done: t + Duration::from_micros(lat_us + i % 50),
                status: Some(0),
            });
        }
        r.finish();
        let meta = RunMeta {
            start_unix_s: 1_700_000_000.0 + offset_s,
            ..RunMeta::default()
        };
        (interval_log(&r, &meta, Some(tag)).unwrap(), r)
    }

    #[test]
    fn merging_logs_from_two_machines() {
        let (a, ra) = machine_log(0.0, 100, "a");
        let (b, rb) = machine_log(1.0, 5000, "b");
        let mut all = parse_log("a", &a).unwrap();
        all.extend(parse_log("b", &b).unwrap());
        let (rec, meta) = merge_intervals(&all, "a b");
        let mut union = ra.corrected.clone();
        union.add(&rb.corrected).unwrap();
        assert_eq!(rec.corrected, union);
        assert_eq!(rec.completed(), 6000);
        // Machine b started a second later and its 5 ms calls spill 5 completions into each next
        // second: seconds align on wall-clock time, the middle ones hold both machines.
        let counts: Vec<(u64, u64)> = rec
            .series()
            .iter()
            .map(|s| (s.second, s.completed))
            .collect();
        assert_eq!(
            counts,
            vec![(0, 1000), (1, 1995), (2, 2000), (3, 1000), (4, 5)]
        );
        assert!((meta.duration_s - 5.0).abs() < 1e-6);
        assert_eq!(
            all.iter().filter(|i| i.tag.as_deref() == Some("b")).count(),
            4
        );
    }

    #[test]
    fn damaged_logs_are_errors_not_panics() {
        let (a, _) = machine_log(0.0, 100, "a");
        let text = String::from_utf8(a).unwrap();
        let broken = text.replace(",HIST", ",!!!!");
        let bad_hist = broken.replacen("Tag=a,0.000,1.000,", "Tag=a,0.000,1.000,QUJD", 1);
        assert!(matches!(
            parse_log("x", bad_hist.as_bytes()),
            Err(MergeError::BadHistogram { .. }) | Err(MergeError::Parse { .. })
        ));
        assert!(matches!(
            parse_log("x", b"this is not a log\n"),
            Err(MergeError::Parse { .. })
        ));
        // Every truncation of a valid log parses or fails cleanly.
        for cut in (0..text.len()).step_by(7) {
            let _ = parse_log("x", &text.as_bytes()[..cut]);
        }
        assert!(parse_log("x", b"").unwrap().is_empty());
    }

    #[test]
    fn tag_selection_and_units() {
        let (a, ra) = machine_log(0.0, 100, "a");
        let (b, _) = machine_log(0.0, 100, "b");
        let mut all = parse_log("a", &a).unwrap();
        all.extend(parse_log("b", &b).unwrap());
        let only_a = select_tag(all.clone(), Some("a"));
        assert_eq!(only_a.len(), 3);
        let (rec, _) = merge_intervals(&only_a, "a");
        assert_eq!(rec.corrected, ra.corrected);
        assert!(select_tag(all.clone(), Some("zzz")).is_empty());
        assert_eq!(select_tag(all, None).len(), 6);

        let mut ns = new_histogram();
        ns.record_n(1_500_000, 3).unwrap(); // 1.5 ms in ns
        ns.record(999).unwrap(); // below 1 us
        let us = to_micros(&ns, ValueUnit::Ns);
        assert_eq!(us.len(), 4);
        assert_eq!(us.count_at(1_500), 3);
        assert_eq!(us.count_at(1), 1);
        let ms = to_micros(&us, ValueUnit::Ms);
        assert_eq!(ms.count_at(1_500_000), 3);
        assert_eq!(to_micros(&us, ValueUnit::Us), us);
    }
}
