//! Fuzz the HdrHistogram interval-log reader of `ringedge-bench merge` (`bench/src/merge.rs`).
//!
//! The first input byte picks the mode; the rest is the payload:
//! - 0: the payload as a log: `parse_log` must fail cleanly or return intervals that
//!   `merge_intervals` merges (checked by `check_merge`);
//! - 1: `base64_decode` on the payload as text, compared with the `base64` crate configured the
//!   same way (standard alphabet, padding optional, trailing bits ignored); and the payload's
//!   bytes encoded by that crate, padded or not, must decode back to themselves;
//! - 2: a run is simulated from the payload (latencies, completion times, start, tag), written
//!   as a log by our own writer (`report::interval_log`) and read back: the merged histogram
//!   must equal the recorded one and the per-second counts must match the run's series. Then
//!   bytes of the log are overwritten at input-chosen places and the damaged log is read
//!   again (no panic, same checks as mode 0), reaching the histogram decoder with input that
//!   is almost valid.
#![no_main]

use std::time::Duration;

use base64::engine::general_purpose::{
    GeneralPurpose, GeneralPurposeConfig, STANDARD, STANDARD_NO_PAD,
};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use ringedge_bench::merge::{
    base64_decode, merge_intervals, parse_log, select_tag, Interval, MergeError,
};
use ringedge_bench::recorder::{Completion, Recorder};
use ringedge_bench::report::{interval_log, RunMeta};

/// The decoder `base64_decode` documents: RFC 4648 §4 alphabet, padding optional, and (as the
/// chunk decoder ignores them) non-zero trailing bits accepted.
const REFERENCE: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Properties of a successful parse and merge.
fn check_merge(intervals: &[Interval]) {
    let (rec, meta) = merge_intervals(intervals, "fuzz");
    let total = intervals
        .iter()
        .fold(0u64, |a, i| a.saturating_add(i.histogram.len()));
    if total < 1 << 62 {
        assert_eq!(
            rec.corrected.len(),
            total,
            "merged count is the sum of the intervals'"
        );
    }
    assert_eq!(rec.sent, rec.corrected.len());
    assert!(rec.uncorrected.is_empty() && rec.error_count() == 0);
    let mut prev = None;
    let mut in_series = 0u64;
    for s in rec.series() {
        assert!(prev.is_none_or(|p| s.second > p), "series seconds increase");
        prev = Some(s.second);
        assert_eq!(
            s.histogram().len(),
            s.completed,
            "a second's histogram survives encoding"
        );
        in_series = in_series.saturating_add(s.completed);
    }
    if total < 1 << 62 {
        assert!(in_series <= total);
    }
    assert!(meta.start_unix_s.is_finite() && meta.duration_s.is_finite());
    assert!(meta.duration_s >= 0.0);
    assert_eq!(meta.target, "fuzz");
    let tagged = intervals.iter().filter(|i| i.tag.is_some()).count();
    if let Some(t) = intervals.iter().find_map(|i| i.tag.clone()) {
        let only = select_tag(intervals.to_vec(), Some(&t));
        assert!(!only.is_empty() && only.len() <= tagged);
        assert!(only.iter().all(|i| i.tag.as_deref() == Some(t.as_str())));
    }
    assert_eq!(select_tag(intervals.to_vec(), None).len(), intervals.len());
}

fn parse_any(bytes: &[u8]) {
    match parse_log("in", bytes) {
        Ok(intervals) => check_merge(&intervals),
        Err(MergeError::Parse { file, offset }) => {
            assert_eq!(file, "in");
            assert!(offset <= bytes.len());
        }
        Err(MergeError::BadHistogram { file, .. }) => assert_eq!(file, "in"),
        Err(MergeError::TooManyIntervals) => {}
    }
}

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }
}

fn roundtrip(payload: &[u8]) {
    let mut input = Input(payload);
    let start = f64::from(input.u32());
    let tag: Option<String> = match input.byte() % 3 {
        0 => None,
        n => Some(
            (0..n * 3)
                .map(|_| {
                    char::from(
                        b"abcdefghijklmnopqrstuvwxyz0123456789"[usize::from(input.byte()) % 36],
                    )
                })
                .collect(),
        ),
    };
    let calls = usize::from(input.byte());
    let mut rec = Recorder::new(Duration::ZERO);
    let mut done = Duration::ZERO;
    for _ in 0..calls {
        // Completion times never decrease on a shard; gaps of up to ~65 s leave empty seconds.
        done += Duration::from_millis(u64::from(input.byte()) << (input.byte() % 9));
        // Latencies up to ~4000 s: below any saturation of the auto-resizing histograms.
        let latency = Duration::from_micros(u64::from(input.u32()));
        let intended = done.saturating_sub(latency);
        rec.record(Completion {
            intended,
            sent: intended,
            done,
            status: Some(0),
        });
    }
    rec.finish();
    let meta = RunMeta {
        start_unix_s: start,
        ..RunMeta::default()
    };
    let mut log = interval_log(&rec, &meta, tag.as_deref()).expect("our log writer");
    let intervals = parse_log("ours", &log).expect("our own log parses");
    assert_eq!(intervals.len(), rec.series().len());
    for i in &intervals {
        assert_eq!(i.tag, tag);
    }
    let (merged, _) = merge_intervals(&intervals, "ours");
    assert_eq!(merged.corrected.len(), rec.corrected.len());
    for v in rec.corrected.iter_recorded() {
        let value = v.value_iterated_to();
        assert_eq!(
            merged.corrected.count_at(value),
            rec.corrected.count_at(value),
            "at {value}"
        );
    }
    let first = rec.series().first().map_or(0, |s| s.second);
    let want: Vec<(u64, u64)> = rec
        .series()
        .iter()
        .filter(|s| s.completed > 0)
        .map(|s| (s.second - first, s.completed))
        .collect();
    let got: Vec<(u64, u64)> = merged
        .series()
        .iter()
        .map(|s| (s.second, s.completed))
        .collect();
    assert_eq!(got, want);
    check_merge(&intervals);

    // Damage the log where the input says and read it again.
    if log.is_empty() {
        return;
    }
    let edits = usize::from(input.byte() % 8);
    for _ in 0..edits {
        let at = (input.u32() as usize) % log.len();
        log[at] = input.byte();
    }
    if edits > 0 {
        parse_any(&log);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, payload)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => parse_any(payload),
        1 => {
            let text = String::from_utf8_lossy(payload);
            let ours = base64_decode(&text);
            let reference = REFERENCE.decode(text.trim().trim_end_matches('=')).ok();
            assert_eq!(ours, reference, "{text:?}");
            for enc in [STANDARD.encode(payload), STANDARD_NO_PAD.encode(payload)] {
                assert_eq!(base64_decode(&enc).as_deref(), Some(payload), "{enc}");
            }
        }
        _ => roundtrip(payload),
    }
});
