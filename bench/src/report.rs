//! Reports from a finished (merged) [`Recorder`]: human summary, JSON, HdrHistogram interval log,
//! `.hgrm` percentile distribution, SVG plot, and the live progress line.
//!
//! Everything here is a pure function from data to text/bytes; callers decide where it goes. The
//! only I/O helpers are [`Machine::detect`] (reads `/proc`) and nothing else. Latencies are µs
//! inside; the summary shows adaptive units, JSON is in µs, `.hgrm` is in milliseconds (the unit
//! wrk2 and HdrHistogram's plotter use) and the SVG axis is in milliseconds.
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::recorder::{Recorder, Second};

/// Percentiles shown in the summary and JSON, as (label, quantile).
pub const PERCENTILES: [(&str, f64); 7] = [
    ("p50", 0.50),
    ("p75", 0.75),
    ("p90", 0.90),
    ("p95", 0.95),
    ("p99", 0.99),
    ("p99.9", 0.999),
    ("p99.99", 0.9999),
];

/// The machine a run happened on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    /// Kernel release (`uname -r`), from `/proc/sys/kernel/osrelease`.
    pub kernel: String,
    /// CPU model, from the first `model name` line of `/proc/cpuinfo`.
    pub cpu_model: String,
    /// Logical CPUs available to the process.
    pub cpus: u32,
}

impl Machine {
    /// Reads kernel and CPU model from `/proc` (fields are empty when unavailable).
    pub fn detect() -> Machine {
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_owned())
            .unwrap_or_default();
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpus = std::thread::available_parallelism().map_or(0, |n| n.get() as u32);
        Machine {
            kernel,
            cpu_model: cpu_model(&cpuinfo),
            cpus,
        }
    }
}

/// The `model name` of the first CPU in a `/proc/cpuinfo` text (empty if absent).
pub fn cpu_model(cpuinfo: &str) -> String {
    cpuinfo
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == "model name").then(|| v.trim().to_owned())
        })
        .unwrap_or_default()
}

/// What was run, where and when; written beside the figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunMeta {
    /// The target URL (or, for `merge`, the input files).
    pub target: String,
    /// Settings as key → value (e.g. `rate` → `1000`), free-form but stable per key.
    pub settings: BTreeMap<String, String>,
    /// Start of the measured period, seconds since the Unix epoch.
    pub start_unix_s: f64,
    /// Length of the measured period (after warm-up), seconds.
    pub duration_s: f64,
    /// The machine.
    pub machine: Machine,
    /// The ringedge commit, when known.
    pub commit: Option<String>,
}

/// Latency statistics of one histogram, µs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencyStats {
    /// Number of samples.
    pub count: u64,
    /// Smallest sample.
    pub min: u64,
    /// Arithmetic mean.
    pub mean: f64,
    /// Standard deviation.
    pub stdev: f64,
    /// 50th percentile.
    pub p50: u64,
    /// 75th percentile.
    pub p75: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 95th percentile.
    pub p95: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p99_9: u64,
    /// 99.99th percentile.
    pub p99_99: u64,
    /// Largest sample.
    pub max: u64,
}

impl LatencyStats {
    /// Statistics of `h` (all zero when empty).
    pub fn of(h: &Histogram<u64>) -> LatencyStats {
        if h.is_empty() {
            return LatencyStats::default();
        }
        let q = |x| h.value_at_quantile(x);
        LatencyStats {
            count: h.len(),
            min: h.min(),
            mean: h.mean(),
            stdev: h.stdev(),
            p50: q(0.50),
            p75: q(0.75),
            p90: q(0.90),
            p95: q(0.95),
            p99: q(0.99),
            p99_9: q(0.999),
            p99_99: q(0.9999),
            max: h.max(),
        }
    }
    fn values(&self) -> [u64; 7] {
        [
            self.p50,
            self.p75,
            self.p90,
            self.p95,
            self.p99,
            self.p99_9,
            self.p99_99,
        ]
    }
}

/// One second of the series in the JSON report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecondReport {
    /// Seconds since the end of warm-up.
    pub second: u64,
    /// Calls completed with a status.
    pub completed: u64,
    /// Transport errors.
    pub errors: u64,
    /// Median corrected latency, µs (0 when nothing completed).
    pub p50_us: u64,
    /// 99th percentile corrected latency, µs.
    pub p99_us: u64,
}

/// Call counts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Requests {
    /// Calls sent after warm-up.
    pub sent: u64,
    /// Calls that completed with a `grpc-status`.
    pub completed: u64,
    /// Calls with `grpc-status: 0`.
    pub ok: u64,
    /// Calls that failed below gRPC.
    pub errors: u64,
    /// Calls intended during warm-up (not counted elsewhere).
    pub warmup_excluded: u64,
}

/// Both latency views, µs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// From the intended send time (coordinated-omission corrected).
    pub corrected: LatencyStats,
    /// From the actual send time.
    pub uncorrected: LatencyStats,
}

/// The JSON report. Schema (field names are stable; `schema` changes if they ever change):
///
/// ```text
/// {
///   "schema": "ringedge-bench/1",
///   "meta": { "target": str, "settings": {str: str}, "start_unix_s": f64, "duration_s": f64,
///             "machine": {"kernel": str, "cpu_model": str, "cpus": u32}, "commit": str|null },
///   "throughput_rps": f64,                      // completed / duration_s
///   "requests": { "sent", "completed", "ok", "errors", "warmup_excluded": u64 },
///   "latency_us": { "corrected": Stats, "uncorrected": Stats },
///   //   Stats = { "count", "min", "p50", "p75", "p90", "p95", "p99", "p99_9", "p99_99",
///   //             "max": u64, "mean", "stdev": f64 }
///   "status": { "<CODE_NAME>": u64, ..., "unknown": u64 },   // non-zero entries only
///   "errors": { "<kind>": u64 },   // kinds: connect_failed, tls_failed, reset:0x8, goaway:0x0,
///                                  //        timeout, protocol_error, connection_lost, not_sent
///   "series": [ { "second", "completed", "errors", "p50_us", "p99_us": u64 } ]
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JsonReport {
    /// `"ringedge-bench/1"`.
    pub schema: String,
    /// Run metadata.
    pub meta: RunMeta,
    /// Completed calls per second of measured time.
    pub throughput_rps: f64,
    /// Call counts.
    pub requests: Requests,
    /// Latency statistics.
    pub latency_us: Latency,
    /// Status counts by code name.
    pub status: BTreeMap<String, u64>,
    /// Transport errors by kind.
    pub errors: BTreeMap<String, u64>,
    /// Per-second series.
    pub series: Vec<SecondReport>,
}

/// The JSON schema tag.
pub const JSON_SCHEMA: &str = "ringedge-bench/1";

/// Completed calls per second of measured time (0 for a zero duration).
pub fn throughput(rec: &Recorder, meta: &RunMeta) -> f64 {
    if meta.duration_s > 0.0 {
        rec.completed() as f64 / meta.duration_s
    } else {
        0.0
    }
}

fn series_reports(series: &[Second]) -> Vec<SecondReport> {
    series
        .iter()
        .map(|s| {
            let h = s.histogram();
            let (p50_us, p99_us) = if h.is_empty() {
                (0, 0)
            } else {
                (h.value_at_quantile(0.5), h.value_at_quantile(0.99))
            };
            SecondReport {
                second: s.second,
                completed: s.completed,
                errors: s.errors,
                p50_us,
                p99_us,
            }
        })
        .collect()
}

/// Builds the JSON report value (call `rec.finish()` first to include the last second).
pub fn json_report(rec: &Recorder, meta: &RunMeta) -> JsonReport {
    JsonReport {
        schema: JSON_SCHEMA.to_owned(),
        meta: meta.clone(),
        throughput_rps: throughput(rec, meta),
        requests: Requests {
            sent: rec.sent,
            completed: rec.completed(),
            ok: rec.status.codes[0],
            errors: rec.error_count(),
            warmup_excluded: rec.warmup_excluded,
        },
        latency_us: Latency {
            corrected: LatencyStats::of(&rec.corrected),
            uncorrected: LatencyStats::of(&rec.uncorrected),
        },
        status: rec
            .status
            .named()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
        errors: rec
            .errors
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect(),
        series: series_reports(rec.series()),
    }
}

/// The JSON report as pretty-printed text.
pub fn json_string(rec: &Recorder, meta: &RunMeta) -> String {
    // Serializing plain structs with string keys cannot fail.
    serde_json::to_string_pretty(&json_report(rec, meta)).unwrap_or_default()
}

/// Formats µs with an adaptive unit: `850us`, `12.35ms`, `1.20s`.
pub fn fmt_us(us: u64) -> String {
    if us < 1_000 {
        format!("{us}us")
    } else if us < 1_000_000 {
        format!("{:.2}ms", us as f64 / 1e3)
    } else {
        format!("{:.2}s", us as f64 / 1e6)
    }
}

/// The human summary table.
pub fn summary(rec: &Recorder, meta: &RunMeta) -> String {
    let mut o = String::new();
    let c = LatencyStats::of(&rec.corrected);
    let u = LatencyStats::of(&rec.uncorrected);
    let _ = writeln!(o, "Target:      {}", meta.target);
    for (k, v) in &meta.settings {
        let _ = writeln!(o, "  {k:<12} {v}");
    }
    let _ = writeln!(o, "Duration:    {:.2}s (after warm-up)", meta.duration_s);
    let _ = writeln!(
        o,
        "Requests:    sent {}  completed {}  errors {}  (warm-up excluded {})",
        rec.sent,
        rec.completed(),
        rec.error_count(),
        rec.warmup_excluded
    );
    let _ = writeln!(o, "Throughput:  {:.1} req/s", throughput(rec, meta));
    let _ = writeln!(o);
    // An empty histogram (e.g. uncorrected after `merge`: logs do not carry it) shows "-".
    let cell = |count: u64, us: u64| {
        if count == 0 {
            "-".to_owned()
        } else {
            fmt_us(us)
        }
    };
    let _ = writeln!(o, "Latency      corrected   uncorrected");
    let rows = PERCENTILES
        .iter()
        .map(|(l, _)| *l)
        .zip(c.values().into_iter().zip(u.values()));
    let rows = rows
        .chain([("max", (c.max, u.max))])
        .chain([("mean", (c.mean.round() as u64, u.mean.round() as u64))]);
    for (label, (cv, uv)) in rows {
        let _ = writeln!(
            o,
            "  {label:<9} {:>11} {:>13}",
            cell(c.count, cv),
            cell(u.count, uv)
        );
    }
    let _ = writeln!(o);
    let _ = writeln!(o, "Status codes:");
    let named = rec.status.named();
    if named.is_empty() {
        let _ = writeln!(o, "  (none recorded)");
    }
    for (name, n) in named {
        let _ = writeln!(o, "  {name:<20} {n}");
    }
    let _ = writeln!(o, "Errors:");
    if rec.errors.is_empty() {
        let _ = writeln!(o, "  (none)");
    }
    for (k, n) in &rec.errors {
        let _ = writeln!(o, "  {:<20} {n}", k.to_string());
    }
    if !meta.machine.kernel.is_empty() || !meta.machine.cpu_model.is_empty() {
        let _ = writeln!(
            o,
            "Machine:     {} ({} CPUs), kernel {}",
            meta.machine.cpu_model, meta.machine.cpus, meta.machine.kernel
        );
    }
    if let Some(commit) = &meta.commit {
        let _ = writeln!(o, "Commit:      {commit}");
    }
    o
}

/// Errors writing the interval log.
#[derive(Debug)]
pub enum ReportError {
    /// Writing or serializing a histogram failed.
    IntervalLog(String),
}

impl std::fmt::Display for ReportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReportError::IntervalLog(e) => write!(f, "writing the HdrHistogram interval log: {e}"),
        }
    }
}

impl std::error::Error for ReportError {}

/// Writes the per-second corrected histograms as a standard HdrHistogram interval log (V2
/// deflate, `#[StartTime]` and `#[BaseTime]` = `meta.start_unix_s`, interval timestamps in
/// seconds since that base, values in µs), each interval tagged with `tag` when given (e.g. a
/// host name, so logs from many machines stay distinguishable).
pub fn interval_log(
    rec: &Recorder,
    meta: &RunMeta,
    tag: Option<&str>,
) -> Result<Vec<u8>, ReportError> {
    let mut out = Vec::new();
    let mut ser = V2DeflateSerializer::new();
    let start = SystemTime::UNIX_EPOCH
        + Duration::try_from_secs_f64(meta.start_unix_s.max(0.0)).unwrap_or(Duration::ZERO);
    let tag = tag.and_then(Tag::new);
    {
        let mut w = IntervalLogWriterBuilder::new()
            .add_comment(&format!(
                "ringedge-bench interval log, values in microseconds, target {}",
                meta.target
            ))
            .with_start_time(start)
            .with_base_time(start)
            .begin_log_with(&mut out, &mut ser)
            .map_err(|e| ReportError::IntervalLog(e.to_string()))?;
        w.write_comment("\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"")
            .map_err(|e| ReportError::IntervalLog(e.to_string()))?;
        for s in rec.series() {
            let h = s.histogram();
            w.write_histogram(
                &h,
                Duration::from_secs(s.second),
                Duration::from_secs(1),
                tag,
            )
            .map_err(|e| ReportError::IntervalLog(e.to_string()))?;
        }
    }
    Ok(out)
}

/// HdrHistogram's percentile distribution (`.hgrm`, as `outputPercentileDistribution` writes it)
/// with values in milliseconds (µs / 1000) and 5 ticks per half-distance.
pub fn hgrm(h: &Histogram<u64>) -> String {
    let scale = 1000.0;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{:>12} {:>14} {:>10} {:>14}\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    if !h.is_empty() {
        let mut total = 0u64;
        for v in h.iter_quantiles(5) {
            total = total.saturating_add(v.count_since_last_iteration());
            let q = v.quantile_iterated_to();
            let value = v.value_iterated_to() as f64 / scale;
            if q < 1.0 {
                let _ = writeln!(
                    o,
                    "{value:12.3} {q:2.12} {total:10} {:14.2}",
                    1.0 / (1.0 - q)
                );
            } else {
                let _ = writeln!(o, "{value:12.3} {q:2.12} {total:10}");
            }
        }
    }
    let _ = writeln!(
        o,
        "#[Mean    = {:12.3}, StdDeviation   = {:12.3}]",
        if h.is_empty() { 0.0 } else { h.mean() / scale },
        if h.is_empty() { 0.0 } else { h.stdev() / scale }
    );
    let _ = writeln!(
        o,
        "#[Max     = {:12.3}, Total count    = {:12}]",
        h.max() as f64 / scale,
        h.len()
    );
    let _ = writeln!(
        o,
        "#[Buckets = {:12}, SubBuckets     = {:12}]",
        h.buckets(),
        // HdrHistogram's sub-bucket count: the power of two covering 2·10^sigfig values.
        (2 * 10u64.pow(u32::from(h.sigfig()))).next_power_of_two()
    );
    o
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// An SVG plot: the latency percentile spectrum (corrected and uncorrected, x axis
/// `log10(1/(1-p))` from 0% to 99.999%, y axis in ms) and, below it, completed requests per
/// second. Hand-written SVG 1.1, self-contained.
pub fn svg(rec: &Recorder, title: &str) -> String {
    const W: f64 = 800.0;
    const L: f64 = 70.0; // left margin
    const R: f64 = 20.0;
    const TOP: f64 = 40.0;
    const PH: f64 = 300.0; // percentile panel height
    const GAP: f64 = 70.0;
    const TH: f64 = 140.0; // throughput panel height
    const DECADES: f64 = 5.0; // up to 99.999%
    let pw = W - L - R;
    let height = TOP + PH + GAP + TH + 50.0;
    let mut o = String::new();
    let _ = writeln!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{height}" viewBox="0 0 {W} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        o,
        r#"<rect x="0" y="0" width="{W}" height="{height}" fill="white"/>"#
    );
    let _ = writeln!(
        o,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="15">{}</text>"#,
        W / 2.0,
        esc(title)
    );
    let max_ms = (rec.corrected.max().max(rec.uncorrected.max()) as f64 / 1000.0).max(0.001) * 1.1;
    let x_of = |q: f64| L + pw * ((1.0 / (1.0 - q)).log10() / DECADES).clamp(0.0, 1.0);
    let y_of = |ms: f64| TOP + PH - PH * (ms / max_ms).clamp(0.0, 1.0);
    // Axes and grid.
    let _ = writeln!(o, r##"<g id="percentile-axes" stroke="#888" fill="none">"##);
    let _ = writeln!(o, r#"<rect x="{L}" y="{TOP}" width="{pw}" height="{PH}"/>"#);
    let _ = writeln!(o, "</g>");
    for (i, label) in ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%"]
        .iter()
        .enumerate()
    {
        let x = L + pw * i as f64 / DECADES;
        let _ = writeln!(
            o,
            r##"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{}" stroke="#ddd"/>"##,
            TOP + PH
        );
        let _ = writeln!(
            o,
            r#"<text x="{x:.1}" y="{}" text-anchor="middle">{label}</text>"#,
            TOP + PH + 16.0
        );
    }
    for i in 0..=5 {
        let ms = max_ms * i as f64 / 5.0;
        let y = y_of(ms);
        let _ = writeln!(
            o,
            r##"<line x1="{L}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#ddd"/>"##,
            L + pw
        );
        let _ = writeln!(
            o,
            r#"<text x="{}" y="{:.1}" text-anchor="end">{ms:.2}</text>"#,
            L - 6.0,
            y + 4.0
        );
    }
    let _ = writeln!(
        o,
        r#"<text x="{}" y="{}" text-anchor="middle">Percentile</text>"#,
        L + pw / 2.0,
        TOP + PH + 34.0
    );
    let _ = writeln!(
        o,
        r#"<text x="18" y="{}" text-anchor="middle" transform="rotate(-90 18 {})">Latency (ms)</text>"#,
        TOP + PH / 2.0,
        TOP + PH / 2.0
    );
    // Series.
    for (name, h, color) in [
        ("corrected", &rec.corrected, "#d62728"),
        ("uncorrected", &rec.uncorrected, "#1f77b4"),
    ] {
        if h.is_empty() {
            continue;
        }
        let mut pts = String::new();
        for v in h.iter_quantiles(5) {
            let q = v.quantile_iterated_to();
            if q >= 1.0 - 1e-5 {
                break;
            }
            let _ = write!(
                pts,
                "{:.1},{:.1} ",
                x_of(q),
                y_of(v.value_iterated_to() as f64 / 1000.0)
            );
        }
        let _ = write!(pts, "{:.1},{:.1}", L + pw, y_of(h.max() as f64 / 1000.0));
        let _ = writeln!(
            o,
            r#"<polyline id="series-{name}" fill="none" stroke="{color}" stroke-width="2" points="{pts}"/>"#
        );
    }
    // Legend.
    let _ = writeln!(o, r#"<g id="legend">"#);
    for (i, (name, color)) in [
        ("corrected (from intended send)", "#d62728"),
        ("uncorrected (from actual send)", "#1f77b4"),
    ]
    .iter()
    .enumerate()
    {
        let y = TOP + 16.0 + 18.0 * i as f64;
        let _ = writeln!(
            o,
            r#"<line x1="{}" y1="{y}" x2="{}" y2="{y}" stroke="{color}" stroke-width="3"/>"#,
            L + 12.0,
            L + 36.0
        );
        let _ = writeln!(o, r#"<text x="{}" y="{}">{name}</text>"#, L + 42.0, y + 4.0);
    }
    let _ = writeln!(o, "</g>");
    // Throughput panel.
    let ty = TOP + PH + GAP;
    let series = rec.series();
    let secs = series.last().map_or(1, |s| s.second + 1).max(1) as f64;
    let max_rps = series.iter().map(|s| s.completed).max().unwrap_or(0).max(1) as f64 * 1.1;
    let _ = writeln!(
        o,
        r##"<rect x="{L}" y="{ty}" width="{pw}" height="{TH}" fill="none" stroke="#888"/>"##
    );
    let _ = writeln!(
        o,
        r#"<text x="{}" y="{}" text-anchor="end">{max_rps:.0}</text>"#,
        L - 6.0,
        ty + 4.0
    );
    let _ = writeln!(
        o,
        r#"<text x="{}" y="{}" text-anchor="end">0</text>"#,
        L - 6.0,
        ty + TH + 4.0
    );
    let _ = writeln!(
        o,
        r#"<text x="{}" y="{}" text-anchor="middle">Seconds after warm-up (completed req/s)</text>"#,
        L + pw / 2.0,
        ty + TH + 34.0
    );
    let _ = writeln!(
        o,
        r#"<text x="{}" y="{}" text-anchor="middle">0</text>"#,
        L,
        ty + TH + 16.0
    );
    let _ = writeln!(
        o,
        r#"<text x="{}" y="{}" text-anchor="middle">{secs:.0}</text>"#,
        L + pw,
        ty + TH + 16.0
    );
    let mut pts = String::new();
    for s in series {
        let x0 = L + pw * s.second as f64 / secs;
        let x1 = L + pw * (s.second + 1) as f64 / secs;
        let y = ty + TH - TH * s.completed as f64 / max_rps;
        let _ = write!(pts, "{x0:.1},{y:.1} {x1:.1},{y:.1} ");
    }
    let _ = writeln!(
        o,
        r##"<polyline id="series-throughput" fill="none" stroke="#2ca02c" stroke-width="2" points="{}"/>"##,
        pts.trim_end()
    );
    o.push_str("</svg>\n");
    o
}

/// Whether the runner should print the progress line: not disabled by `--no-progress` and
/// stdout is a terminal (never in pipes, files or CI logs).
pub fn show_progress(enabled: bool) -> bool {
    use std::io::IsTerminal;
    enabled && std::io::stdout().is_terminal()
}

/// A snapshot for the live progress line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Progress {
    /// Time since the run started.
    pub elapsed: Duration,
    /// Calls sent so far.
    pub sent: u64,
    /// Calls completed so far.
    pub completed: u64,
    /// Transport errors so far.
    pub errors: u64,
    /// Corrected p99 so far, µs (None before the first completion).
    pub p99_us: Option<u64>,
}

/// One progress line (no newline; the runner prefixes `\r` and prints it only when stdout is a
/// terminal, see [`std::io::IsTerminal`]).
pub fn progress_line(p: &Progress) -> String {
    let secs = p.elapsed.as_secs_f64();
    let rps = if secs > 0.0 {
        p.completed as f64 / secs
    } else {
        0.0
    };
    let p99 = p.p99_us.map_or_else(|| "-".to_owned(), fmt_us);
    format!(
        "[{secs:6.1}s] sent {} | done {} | {rps:.0} req/s | p99 {p99} | errors {}",
        p.sent, p.completed, p.errors
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recorder::{Completion, TransportErrorKind};
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};

    fn sample() -> (Recorder, RunMeta) {
        let mut r = Recorder::new(Duration::from_millis(500));
        for i in 0..5000u64 {
            let intended = Duration::from_micros(i * 700);
            let lat = Duration::from_micros(200 + (i * 7919) % 30_000);
            r.record_sent(intended);
            r.record(Completion {
                intended,
                sent: intended + Duration::from_micros(10),
                done: intended + lat,
                status: Some(if i % 100 == 0 { 14 } else { 0 }),
            });
        }
        r.record_error(
            Duration::from_secs(2),
            Duration::from_secs(2),
            TransportErrorKind::Timeout,
        );
        r.finish();
        let mut settings = BTreeMap::new();
        settings.insert("rate".to_owned(), "1428".to_owned());
        let meta = RunMeta {
            target: "h2c://127.0.0.1:50051/helloworld.Greeter/SayHello".to_owned(),
            settings,
            start_unix_s: 1_700_000_000.25,
            duration_s: 3.0,
            machine: Machine {
                kernel: "6.1.0".into(),
                cpu_model: "Test CPU".into(),
                cpus: 2,
            },
            commit: Some("abc123".into()),
        };
        (r, meta)
    }

    #[test]
    fn json_round_trips_with_documented_keys() {
        let (r, meta) = sample();
        let text = json_string(&r, &meta);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        for k in [
            "schema",
            "meta",
            "throughput_rps",
            "requests",
            "latency_us",
            "status",
            "errors",
            "series",
        ] {
            assert!(v.get(k).is_some(), "missing {k}");
        }
        assert_eq!(v["schema"], JSON_SCHEMA);
        for k in [
            "count", "min", "mean", "stdev", "p50", "p75", "p90", "p95", "p99", "p99_9", "p99_99",
            "max",
        ] {
            assert!(
                v["latency_us"]["corrected"].get(k).is_some(),
                "missing latency key {k}"
            );
        }
        for k in [
            "target",
            "settings",
            "start_unix_s",
            "duration_s",
            "machine",
            "commit",
        ] {
            assert!(v["meta"].get(k).is_some(), "missing meta key {k}");
        }
        let back: JsonReport = serde_json::from_str(&text).unwrap();
        assert_eq!(back, json_report(&r, &meta));
        assert_eq!(back.requests.completed, r.completed());
        assert_eq!(back.status["UNAVAILABLE"], r.status.codes[14]);
        assert_eq!(back.status["OK"], r.status.codes[0]);
        assert_eq!(back.errors["timeout"], 1);
        assert_eq!(
            back.latency_us.corrected.p99,
            r.corrected.value_at_quantile(0.99)
        );
        assert_eq!(
            back.series.iter().map(|s| s.completed).sum::<u64>(),
            r.completed()
        );
        assert!((back.throughput_rps - r.completed() as f64 / 3.0).abs() < 1e-9);
    }

    #[test]
    fn interval_log_reads_back() {
        let (r, meta) = sample();
        let log = interval_log(&r, &meta, Some("host-a")).unwrap();
        let mut merged = crate::recorder::new_histogram();
        let mut base = None;
        let mut n = 0;
        for e in IntervalLogIterator::new(&log) {
            match e.unwrap() {
                LogEntry::BaseTime(t) => base = Some(t),
                LogEntry::StartTime(_) => {}
                LogEntry::Interval(i) => {
                    assert_eq!(i.tag().map(|t| t.as_str()), Some("host-a"));
                    assert_eq!(
                        i.start_timestamp(),
                        Duration::from_secs(r.series()[n].second)
                    );
                    let bytes = crate::merge::base64_decode(i.encoded_histogram()).unwrap();
                    let h: Histogram<u64> = hdrhistogram::serialization::Deserializer::new()
                        .deserialize(&mut &bytes[..])
                        .unwrap();
                    assert_eq!(h, r.series()[n].histogram());
                    merged.add(&h).unwrap();
                    n += 1;
                }
            }
        }
        assert_eq!(n, r.series().len());
        assert!((base.unwrap().as_secs_f64() - meta.start_unix_s).abs() < 0.001);
        assert_eq!(merged, r.corrected);
    }

    #[test]
    fn hgrm_lines_parse() {
        let (r, _) = sample();
        let text = hgrm(&r.corrected);
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
        assert_eq!(
            header,
            ["Value", "Percentile", "TotalCount", "1/(1-Percentile)"]
        );
        assert_eq!(lines.next(), Some(""));
        let mut last_count = 0u64;
        let mut last_q = 0.0;
        let mut rows = 0;
        let mut footer = Vec::new();
        for l in lines {
            if l.starts_with("#[") {
                footer.push(l);
                continue;
            }
            let f: Vec<&str> = l.split_whitespace().collect();
            assert!(f.len() == 4 || f.len() == 3, "{l}");
            let value: f64 = f[0].parse().unwrap();
            let q: f64 = f[1].parse().unwrap();
            let count: u64 = f[2].parse().unwrap();
            if f.len() == 4 {
                let inv: f64 = f[3].parse().unwrap();
                assert!((inv - 1.0 / (1.0 - q)).abs() / inv < 0.01, "{l}");
            }
            assert!(value > 0.0 && q >= last_q && count >= last_count, "{l}");
            last_q = q;
            last_count = count;
            rows += 1;
        }
        assert!(rows > 20);
        assert_eq!(last_count, r.corrected.len());
        assert_eq!(last_q, 1.0);
        assert_eq!(footer.len(), 3);
        assert!(
            footer[2].ends_with("SubBuckets     =         2048]"),
            "{}",
            footer[2]
        );
        assert!(footer[0].starts_with("#[Mean    = "));
        assert!(footer[1].contains(&format!("Total count    = {:12}", r.corrected.len())));
        let max: f64 = footer[1]["#[Max     = ".len()..]
            .split(',')
            .next()
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!((max - r.corrected.max() as f64 / 1000.0).abs() < 0.001);
    }

    /// Minimal XML well-formedness check: tags balance and the root is `<svg>`.
    fn balanced(svg: &str) -> bool {
        let mut stack: Vec<String> = Vec::new();
        let mut rest = svg;
        while let Some(i) = rest.find('<') {
            let Some(j) = rest[i..].find('>') else {
                return false;
            };
            let tag = &rest[i + 1..i + j];
            rest = &rest[i + j + 1..];
            if let Some(name) = tag.strip_prefix('/') {
                if stack.pop().as_deref() != Some(name.trim()) {
                    return false;
                }
            } else if !tag.ends_with('/') {
                stack.push(tag.split_whitespace().next().unwrap_or("").to_owned());
            }
        }
        stack.is_empty()
    }

    #[test]
    fn svg_is_well_formed() {
        let (r, _) = sample();
        let s = svg(&r, "test <run> & more");
        assert!(s.starts_with("<svg "));
        assert!(s.trim_end().ends_with("</svg>"));
        assert!(balanced(&s), "{s}");
        for id in [
            "series-corrected",
            "series-uncorrected",
            "series-throughput",
            "legend",
        ] {
            assert!(s.contains(&format!("id=\"{id}\"")), "missing {id}");
        }
        assert!(s.contains("test &lt;run&gt; &amp; more"));
        assert!(s.contains("Latency (ms)") && s.contains("99.9%"));
        // An empty recorder still gives a valid picture.
        let e = svg(&Recorder::new(Duration::ZERO), "empty");
        assert!(balanced(&e));
    }

    #[test]
    fn summary_and_progress() {
        let (r, meta) = sample();
        let s = summary(&r, &meta);
        for want in [
            "Throughput:",
            "p50",
            "p99.99",
            "max",
            "mean",
            "UNAVAILABLE",
            "timeout",
            "Test CPU",
            "abc123",
        ] {
            assert!(s.contains(want), "missing {want} in\n{s}");
        }
        let p = progress_line(&Progress {
            elapsed: Duration::from_secs(2),
            sent: 2100,
            completed: 2000,
            errors: 3,
            p99_us: Some(12_345),
        });
        assert_eq!(
            p,
            "[   2.0s] sent 2100 | done 2000 | 1000 req/s | p99 12.35ms | errors 3"
        );
        assert_eq!(fmt_us(850), "850us");
        assert_eq!(fmt_us(2_500_000), "2.50s");
        assert_eq!(
            cpu_model("processor\t: 0\nmodel name\t: AMD EPYC 7B13\n"),
            "AMD EPYC 7B13"
        );
        assert_eq!(cpu_model("garbage"), "");
    }
}
