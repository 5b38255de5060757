//! The `ringedge-bench` command line (clap derive) and its validation into plain option structs.
//!
//! clap parses syntax (numbers, durations via [`parse_duration`]); [`LoadArgs::validate`] and
//! [`OriginArgs::validate`] check meaning and return [`ArgsError`]s that name the bad flag. The
//! resulting [`LoadOptions`] / [`OriginOptions`] are what the runner and origin consume. This
//! module opens no files and no sockets (paths are checked later, by their users).
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

use crate::schedule::{Schedule, ScheduleError};

/// Default method path when the URL has none.
pub const DEFAULT_PATH: &str = "/helloworld.Greeter/SayHello";
/// Largest message size accepted by `--size` / `--response-size` (gRPC's 4-byte length prefix
/// allows 4 GiB; we cap at 64 MiB to keep a typo from exhausting memory).
pub const MAX_MESSAGE_SIZE: usize = 64 << 20;
/// Most connections per run.
pub const MAX_CONNECTIONS: u32 = 100_000;
/// Most concurrent streams per connection (HTTP/2 allows 2^31-1; peers commonly allow 100–1000).
pub const MAX_STREAMS: u32 = 65_536;
/// Longest `--spin-us` (10 ms: beyond that a shard might as well park).
pub const MAX_SPIN_US: u64 = 10_000;
/// Most shards.
pub const MAX_SHARDS: u32 = 1024;
/// Most messages per streaming call.
pub const MAX_MESSAGES: u32 = 1_000_000;

/// `ringedge-bench`: gRPC load generator, test origin and log merger.
#[derive(Debug, Parser)]
#[command(name = "ringedge-bench", version, about)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
// Parsed once per process: the size difference between variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Drive load at a gRPC server or proxy.
    Load(LoadArgs),
    /// Run the fast gRPC test origin.
    Origin(OriginArgs),
    /// Merge HdrHistogram interval logs and print the summary.
    Merge(MergeArgs),
    /// Write a self-signed certificate and key (cert.pem, key.pem) for demos and tests.
    Cert(CertArgs),
}

/// `ringedge-bench cert` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct CertArgs {
    /// Directory to write cert.pem and key.pem into (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Comma-separated DNS names and IP addresses the certificate is valid for.
    #[arg(long, default_value = "localhost,127.0.0.1,::1")]
    pub names: String,
}

/// Parses `10s`, `500ms`, `2m`, `1h`, `250us`, `100ns` or a bare number of seconds (`1.5`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("invalid duration '{s}' (e.g. 10s, 500ms, 2m)"))?;
    let mult = match unit {
        "" | "s" => 1.0,
        "ms" => 1e-3,
        "us" | "µs" => 1e-6,
        "ns" => 1e-9,
        "m" => 60.0,
        "h" => 3600.0,
        _ => {
            return Err(format!(
                "invalid duration unit '{unit}' in '{s}' (use ns, us, ms, s, m, h)"
            ))
        }
    };
    Duration::try_from_secs_f64(n * mult).map_err(|_| format!("duration '{s}' out of range"))
}

/// Call shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CallKind {
    /// One request, one response.
    Unary,
    /// One request, `--messages` responses.
    ServerStream,
    /// `--messages` requests, one response.
    ClientStream,
    /// `--messages` request/response ping-pongs.
    Bidi,
}

/// `--load-schedule` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScheduleKind {
    /// Constant `--rate`.
    Const,
    /// Stepped rate.
    Step,
    /// Linear ramp.
    Line,
}

/// `ringedge-bench load` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct LoadArgs {
    /// `https://host:port/pkg.Service/Method` or `h2c://host:port/pkg.Service/Method`.
    pub url: String,
    /// CA certificates (PEM) to verify the server with.
    #[arg(long, value_name = "FILE", conflicts_with = "insecure")]
    pub ca: Option<PathBuf>,
    /// Do not verify the server certificate.
    #[arg(long)]
    pub insecure: bool,
    /// TCP connections in total.
    #[arg(long, short = 'c', default_value_t = 1)]
    pub connections: u32,
    /// Concurrent streams per connection.
    #[arg(long, short = 'm', default_value_t = 10)]
    pub streams: u32,
    /// Open-loop rate, requests/s (absent: closed loop at connections × streams).
    #[arg(long, short = 'r')]
    pub rate: Option<f64>,
    /// Rate shape (step and line use --load-start/--load-step/...).
    #[arg(long, value_enum)]
    pub load_schedule: Option<ScheduleKind>,
    /// Initial rate for step/line.
    #[arg(long)]
    pub load_start: Option<f64>,
    /// Step size (step) or slope per second (line), may be negative.
    #[arg(long, allow_negative_numbers = true)]
    pub load_step: Option<f64>,
    /// Final rate (the rate stops changing there).
    #[arg(long)]
    pub load_end: Option<f64>,
    /// Duration of each step.
    #[arg(long, value_parser = parse_duration)]
    pub load_step_duration: Option<Duration>,
    /// Time after which the rate stops changing.
    #[arg(long, value_parser = parse_duration)]
    pub load_max_duration: Option<Duration>,
    /// Measured duration (after warm-up).
    #[arg(long, short = 'z', value_parser = parse_duration, conflicts_with = "requests")]
    pub duration: Option<Duration>,
    /// Total calls (after warm-up).
    #[arg(long, short = 'n')]
    pub requests: Option<u64>,
    /// Warm-up excluded from results.
    #[arg(long, value_parser = parse_duration, default_value = "0s")]
    pub warmup: Duration,
    /// Shards (threads pinned to CPUs).
    #[arg(long, default_value_t = 1)]
    pub shards: u32,
    /// Busy-poll this many microseconds before a shard parks (0 = park at once): removes the
    /// generator's own wake-up latency from low-concurrency latency figures, at the price of a
    /// busy CPU. When the generator shares its CPU with the target, run it at `nice -n 19` so
    /// the target preempts it at once.
    #[arg(long, default_value_t = 0)]
    pub spin_us: u64,
    /// Call shape.
    #[arg(long, value_enum, default_value_t = CallKind::Unary)]
    pub call: CallKind,
    /// Messages per streaming call.
    #[arg(long, default_value_t = 1)]
    pub messages: u32,
    /// Generated message size, bytes.
    #[arg(long, default_value_t = 0, conflicts_with = "payload")]
    pub size: usize,
    /// Message payload read from a file (sent as is, without the gRPC prefix).
    #[arg(long, value_name = "FILE")]
    pub payload: Option<PathBuf>,
    /// Extra request metadata, `'key: value'` (repeatable).
    #[arg(long, value_name = "'k: v'")]
    pub metadata: Vec<String>,
    /// `:authority` (default: host:port of the URL).
    #[arg(long)]
    pub authority: Option<String>,
    /// Write the JSON report here.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write the HdrHistogram interval log here.
    #[arg(long, value_name = "FILE")]
    pub hdr_log: Option<PathBuf>,
    /// Write the percentile distribution (.hgrm) here.
    #[arg(long, value_name = "FILE")]
    pub hgrm: Option<PathBuf>,
    /// Write the SVG plot here.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
    /// Never print the live progress line.
    #[arg(long)]
    pub no_progress: bool,
}

/// `ringedge-bench origin` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct OriginArgs {
    /// Address to listen on, e.g. `127.0.0.1:50051`.
    #[arg(long)]
    pub listen: String,
    /// Certificate chain (PEM); with --key enables TLS, otherwise h2c.
    #[arg(long, value_name = "PEM", requires = "key")]
    pub cert: Option<PathBuf>,
    /// Private key (PEM).
    #[arg(long, value_name = "PEM", requires = "cert")]
    pub key: Option<PathBuf>,
    /// Response message size, bytes (default: echo the request).
    #[arg(long)]
    pub response_size: Option<usize>,
    /// Delay before answering.
    #[arg(long, value_parser = parse_duration, default_value = "0s")]
    pub delay: Duration,
    /// `grpc-status` to answer with.
    #[arg(long, default_value_t = 0)]
    pub status: u32,
    /// `grpc-message` to answer with.
    #[arg(long)]
    pub message: Option<String>,
    /// Send trailers, then RST_STREAM(NO_ERROR) before the request ends.
    #[arg(long)]
    pub early_trailers_reset: bool,
    /// Shards.
    #[arg(long, default_value_t = 1)]
    pub shards: u32,
}

/// `ringedge-bench merge` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct MergeArgs {
    /// HdrHistogram interval logs.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Write the JSON report here.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write the percentile distribution (.hgrm) here.
    #[arg(long, value_name = "FILE")]
    pub hgrm: Option<PathBuf>,
    /// Write the SVG plot here.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
    /// Merge only intervals with this tag (default: all intervals, tagged or not).
    #[arg(long)]
    pub tag: Option<String>,
    /// Unit of the values in the logs (ours are us; jHiccup and many Java tools log ns).
    #[arg(long, value_enum, default_value_t = crate::merge::ValueUnit::Us)]
    pub unit: crate::merge::ValueUnit,
}

/// A flag whose value makes no sense.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgsError {
    /// The flag (or `URL`), e.g. `--rate`.
    pub flag: &'static str,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for ArgsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.flag, self.reason)
    }
}

impl std::error::Error for ArgsError {}

fn bad(flag: &'static str, reason: impl Into<String>) -> ArgsError {
    ArgsError {
        flag,
        reason: reason.into(),
    }
}

/// `https` (TLS, ALPN h2) or `h2c` (cleartext prior knowledge).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// TLS.
    Https,
    /// Cleartext HTTP/2.
    H2c,
}

/// A validated target URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Scheme.
    pub scheme: Scheme,
    /// Host name or IP (IPv6 without brackets).
    pub host: String,
    /// Port (default 443 for https, 80 for h2c).
    pub port: u16,
    /// `/pkg.Service/Method`.
    pub path: String,
}

impl Target {
    /// `host:port` as used in `:authority` (IPv6 in brackets).
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// Parses and validates a target URL.
pub fn parse_url(url: &str) -> Result<Target, ArgsError> {
    let (scheme, rest) = if let Some(r) = url.strip_prefix("https://") {
        (Scheme::Https, r)
    } else if let Some(r) = url.strip_prefix("h2c://") {
        (Scheme::H2c, r)
    } else {
        return Err(bad(
            "URL",
            format!("'{url}' must start with https:// or h2c://"),
        ));
    };
    let (hostport, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let (host, port) = if let Some(r) = hostport.strip_prefix('[') {
        let (h, after) = r
            .split_once(']')
            .ok_or_else(|| bad("URL", "unclosed '[' in host"))?;
        if h.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(bad("URL", format!("'{h}' is not an IPv6 address")));
        }
        (h, after.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    if !host.contains(':') && !is_token(host) {
        return Err(bad("URL", format!("invalid host '{host}'")));
    }
    let port = match port {
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| bad("URL", format!("invalid port '{p}'")))?,
        None => match scheme {
            Scheme::Https => 443,
            Scheme::H2c => 80,
        },
    };
    let path = if path.is_empty() || path == "/" {
        DEFAULT_PATH.to_owned()
    } else {
        path.to_owned()
    };
    let mut parts = path[1..].split('/');
    let ok = matches!((parts.next(), parts.next(), parts.next()), (Some(s), Some(m), None)
        if is_token(s) && is_token(m));
    if !ok {
        return Err(bad(
            "URL",
            format!("path '{path}' must be /package.Service/Method"),
        ));
    }
    Ok(Target {
        scheme,
        host: host.to_owned(),
        port,
        path,
    })
}

/// Parses one `--metadata 'key: value'` into a lowercase header name and value.
pub fn parse_metadata(s: &str) -> Result<(String, String), ArgsError> {
    let (k, v) = s
        .split_once(':')
        .ok_or_else(|| bad("--metadata", format!("'{s}' is not 'key: value'")))?;
    let k = k.trim().to_ascii_lowercase();
    let v = v.trim();
    // RFC 9110 §5.1 token characters, lowercase as HTTP/2 requires (RFC 9113 §8.2.1).
    let tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if k.is_empty() || !k.bytes().all(tchar) {
        return Err(bad(
            "--metadata",
            format!("'{k}' is not a valid header name"),
        ));
    }
    // Connection-specific and gRPC-reserved headers would break the call (RFC 9113 §8.2.2).
    if [
        "connection",
        "te",
        "transfer-encoding",
        "upgrade",
        "keep-alive",
        "content-type",
    ]
    .contains(&k.as_str())
        || k.starts_with("grpc-")
    {
        return Err(bad("--metadata", format!("'{k}' is reserved")));
    }
    if !v.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b)) {
        return Err(bad(
            "--metadata",
            format!("value of '{k}' must be printable ASCII"),
        ));
    }
    Ok((k, v.to_owned()))
}

/// TLS or not, and how to verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tls {
    /// h2c.
    None,
    /// TLS verified against a CA file (None: the built-in web roots).
    Verify(Option<PathBuf>),
    /// TLS without verification (`--insecure`).
    Insecure,
}

/// Load mode.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// Fixed concurrency (connections × streams), no schedule.
    ClosedLoop,
    /// Open loop on this schedule.
    OpenLoop(Schedule),
}

/// When the run stops (after warm-up).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// After this measured duration.
    Duration(Duration),
    /// After this many calls.
    Requests(u64),
}

/// Where the message body comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// Generated, this many bytes.
    Generated(usize),
    /// Read from this file.
    File(PathBuf),
}

/// Validated `load` options.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadOptions {
    /// Target.
    pub target: Target,
    /// TLS settings.
    pub tls: Tls,
    /// `:authority`.
    pub authority: String,
    /// Connections.
    pub connections: u32,
    /// Streams per connection.
    pub streams: u32,
    /// Open or closed loop.
    pub mode: Mode,
    /// Stop condition.
    pub stop: Stop,
    /// Warm-up.
    pub warmup: Duration,
    /// Shards.
    pub shards: u32,
    /// Busy-poll before parking (zero: never).
    pub spin: Duration,
    /// Call shape.
    pub call: CallKind,
    /// Messages per streaming call.
    pub messages: u32,
    /// Message body.
    pub payload: Payload,
    /// Extra metadata (lowercase names).
    pub metadata: Vec<(String, String)>,
    /// Output files.
    pub json: Option<PathBuf>,
    /// HdrHistogram interval log output.
    pub hdr_log: Option<PathBuf>,
    /// `.hgrm` output.
    pub hgrm: Option<PathBuf>,
    /// SVG output.
    pub svg: Option<PathBuf>,
    /// Print the progress line (still only on a terminal).
    pub progress: bool,
}

/// Default measured duration when neither --duration nor --requests is given.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(10);

fn range<T: PartialOrd + fmt::Display + Copy>(
    flag: &'static str,
    v: T,
    lo: T,
    hi: T,
) -> Result<T, ArgsError> {
    if v < lo || v > hi {
        Err(bad(flag, format!("{v} is out of range [{lo}, {hi}]")))
    } else {
        Ok(v)
    }
}

fn sched_err(e: ScheduleError) -> ArgsError {
    let flag = match &e {
        ScheduleError::BadRate { field: "end", .. } => "--load-end",
        ScheduleError::BadRate { field: "rate", .. } => "--rate",
        ScheduleError::BadRate { .. } => "--load-start",
        ScheduleError::BadStep(_) => "--load-step",
        ScheduleError::ZeroStepDuration => "--load-step-duration",
        ScheduleError::RateReachesZero => "--load-step",
    };
    bad(flag, e.to_string())
}

impl LoadArgs {
    /// Checks meaning and builds [`LoadOptions`].
    pub fn validate(self) -> Result<LoadOptions, ArgsError> {
        let target = parse_url(&self.url)?;
        let tls = match (target.scheme, self.insecure, self.ca) {
            (Scheme::H2c, true, _) => {
                return Err(bad("--insecure", "only applies to https:// URLs"))
            }
            (Scheme::H2c, _, Some(_)) => return Err(bad("--ca", "only applies to https:// URLs")),
            (Scheme::H2c, false, None) => Tls::None,
            (Scheme::Https, true, _) => Tls::Insecure,
            (Scheme::Https, false, ca) => Tls::Verify(ca),
        };
        let authority = match self.authority {
            Some(a) if a.is_empty() || a.bytes().any(|b| !(b'!'..=b'~').contains(&b)) => {
                return Err(bad(
                    "--authority",
                    format!("'{a}' is not a valid authority"),
                ))
            }
            Some(a) => a,
            None => target.authority(),
        };
        let connections = range("--connections", self.connections, 1, MAX_CONNECTIONS)?;
        let streams = range("--streams", self.streams, 1, MAX_STREAMS)?;
        let shards = range("--shards", self.shards, 1, MAX_SHARDS)?;
        let spin = Duration::from_micros(range("--spin-us", self.spin_us, 0, MAX_SPIN_US)?);
        if connections < shards {
            // Connections are split between shards; a shard without one could not send its
            // share of the schedule.
            return Err(bad(
                "--shards",
                format!("{shards} shards need at least as many --connections (got {connections})"),
            ));
        }
        let messages = range("--messages", self.messages, 1, MAX_MESSAGES)?;
        if self.messages > 1 && self.call == CallKind::Unary {
            return Err(bad(
                "--messages",
                "needs --call server-stream, client-stream or bidi",
            ));
        }
        let size = range("--size", self.size, 0, MAX_MESSAGE_SIZE)?;
        let ramp_flags = self.load_start.is_some()
            || self.load_step.is_some()
            || self.load_end.is_some()
            || self.load_step_duration.is_some()
            || self.load_max_duration.is_some();
        let mode = match self.load_schedule {
            None | Some(ScheduleKind::Const) if ramp_flags => {
                return Err(bad(
                    "--load-schedule",
                    "--load-* flags need --load-schedule step or line",
                ))
            }
            None | Some(ScheduleKind::Const) => match self.rate {
                Some(r) => Mode::OpenLoop(Schedule::constant(r).map_err(sched_err)?),
                None if self.load_schedule.is_some() => {
                    return Err(bad("--rate", "--load-schedule const needs --rate"))
                }
                None => Mode::ClosedLoop,
            },
            Some(kind) => {
                if self.rate.is_some() {
                    return Err(bad(
                        "--rate",
                        "use --load-start with step and line schedules",
                    ));
                }
                let start = self
                    .load_start
                    .ok_or_else(|| bad("--load-start", "required by step and line"))?;
                let step = self
                    .load_step
                    .ok_or_else(|| bad("--load-step", "required by step and line"))?;
                let s = if kind == ScheduleKind::Step {
                    let d = self
                        .load_step_duration
                        .ok_or_else(|| bad("--load-step-duration", "required by step"))?;
                    Schedule::step(start, step, d, self.load_end, self.load_max_duration)
                } else {
                    if self.load_step_duration.is_some() {
                        return Err(bad("--load-step-duration", "only applies to step"));
                    }
                    Schedule::line(start, step, self.load_end, self.load_max_duration)
                };
                Mode::OpenLoop(s.map_err(sched_err)?)
            }
        };
        let stop = match (self.duration, self.requests) {
            (Some(d), _) if d.is_zero() => return Err(bad("--duration", "must be greater than 0")),
            (Some(d), _) => Stop::Duration(d),
            (None, Some(0)) => return Err(bad("--requests", "must be greater than 0")),
            (None, Some(n)) => Stop::Requests(n),
            (None, None) => Stop::Duration(DEFAULT_DURATION),
        };
        let metadata = self
            .metadata
            .iter()
            .map(|m| parse_metadata(m))
            .collect::<Result<Vec<_>, _>>()?;
        let payload = match self.payload {
            Some(p) => Payload::File(p),
            None => Payload::Generated(size),
        };
        Ok(LoadOptions {
            target,
            tls,
            authority,
            connections,
            streams,
            mode,
            stop,
            warmup: self.warmup,
            shards,
            spin,
            call: self.call,
            messages,
            payload,
            metadata,
            json: self.json,
            hdr_log: self.hdr_log,
            hgrm: self.hgrm,
            svg: self.svg,
            progress: !self.no_progress,
        })
    }
}

/// Validated `origin` options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginOptions {
    /// Listen address.
    pub listen: SocketAddr,
    /// (cert, key) PEM files for TLS; None for h2c.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Response size (None: echo).
    pub response_size: Option<usize>,
    /// Delay before answering.
    pub delay: Duration,
    /// `grpc-status` to answer with (0..=16).
    pub status: u32,
    /// `grpc-message`.
    pub message: Option<String>,
    /// Early trailers then RST_STREAM(NO_ERROR).
    pub early_trailers_reset: bool,
    /// Shards.
    pub shards: u32,
}

impl OriginArgs {
    /// Checks meaning and builds [`OriginOptions`].
    pub fn validate(self) -> Result<OriginOptions, ArgsError> {
        let listen: SocketAddr = self.listen.parse().map_err(|_| {
            bad(
                "--listen",
                format!("'{}' is not an address like 127.0.0.1:50051", self.listen),
            )
        })?;
        let tls = match (self.cert, self.key) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            (Some(_), None) => return Err(bad("--key", "required with --cert")),
            (None, Some(_)) => return Err(bad("--cert", "required with --key")),
        };
        if let Some(n) = self.response_size {
            range("--response-size", n, 0, MAX_MESSAGE_SIZE)?;
        }
        let status = range("--status", self.status, 0, 16)?;
        if let Some(m) = &self.message {
            if m.chars().any(char::is_control) {
                return Err(bad("--message", "must not contain control characters"));
            }
        }
        let shards = range("--shards", self.shards, 1, MAX_SHARDS)?;
        Ok(OriginOptions {
            listen,
            tls,
            response_size: self.response_size,
            delay: self.delay,
            status,
            message: self.message,
            early_trailers_reset: self.early_trailers_reset,
            shards,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(line: &str) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("ringedge-bench").chain(line.split_whitespace()))
    }

    fn load(line: &str) -> Result<LoadOptions, ArgsError> {
        match cli(line).expect("clap accepts").command {
            Command::Load(l) => l.validate(),
            other => panic!("not load: {other:?}"),
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        assert!(parse_duration("10 parsecs").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("1e999s").is_err());
    }

    #[test]
    fn urls() {
        let t = parse_url("https://example.com:8443/pkg.Svc/Do").unwrap();
        assert_eq!(
            (t.scheme, t.host.as_str(), t.port, t.path.as_str()),
            (Scheme::Https, "example.com", 8443, "/pkg.Svc/Do")
        );
        let t = parse_url("h2c://127.0.0.1:50051").unwrap();
        assert_eq!(
            (t.scheme, t.port, t.path.as_str()),
            (Scheme::H2c, 50051, DEFAULT_PATH)
        );
        let t = parse_url("h2c://[::1]:9000/a.B/C").unwrap();
        assert_eq!(
            (t.host.as_str(), t.authority()),
            ("::1", "[::1]:9000".to_owned())
        );
        assert_eq!(parse_url("https://host/").unwrap().port, 443);
        for bad in [
            "http://x:1/a.B/C",
            "h2c://:1/a.B/C",
            "h2c://x:0",
            "h2c://x:99999",
            "h2c://x:1/onlyone",
            "h2c://x:1/a/b/c",
            "h2c://[::1/a.B/C",
            "h2c://x y:1",
            "h2c://[zz]:1",
        ] {
            let e = parse_url(bad).unwrap_err();
            assert_eq!(e.flag, "URL", "{bad}");
        }
    }

    #[test]
    fn typical_load_lines() {
        let o = load("load h2c://127.0.0.1:50051 --connections 4 --streams 50 --rate 2000 --duration 30s --warmup 2s --shards 2 --json out.json").unwrap();
        assert_eq!(o.connections, 4);
        assert_eq!(o.streams, 50);
        assert_eq!(o.mode, Mode::OpenLoop(Schedule::constant(2000.0).unwrap()));
        assert_eq!(o.stop, Stop::Duration(Duration::from_secs(30)));
        assert_eq!(o.warmup, Duration::from_secs(2));
        assert_eq!(o.tls, Tls::None);
        assert_eq!(o.authority, "127.0.0.1:50051");
        assert_eq!(o.json.as_deref(), Some(std::path::Path::new("out.json")));
        assert!(o.progress);

        let o = load("load https://h:443/a.B/C --insecure -n 1000 --call bidi --messages 10 --size 1024 --metadata x-user:bob --authority edge.test --no-progress").unwrap();
        assert_eq!(o.tls, Tls::Insecure);
        assert_eq!(o.mode, Mode::ClosedLoop);
        assert_eq!(o.stop, Stop::Requests(1000));
        assert_eq!(
            (o.call, o.messages, o.payload.clone()),
            (CallKind::Bidi, 10, Payload::Generated(1024))
        );
        assert_eq!(o.metadata, vec![("x-user".to_owned(), "bob".to_owned())]);
        assert_eq!(o.authority, "edge.test");
        assert!(!o.progress);

        let o = load("load https://h/a.B/C --ca ca.pem --load-schedule step --load-start 100 --load-step 50 --load-step-duration 1s --load-end 500").unwrap();
        assert_eq!(o.tls, Tls::Verify(Some("ca.pem".into())));
        assert_eq!(o.stop, Stop::Duration(DEFAULT_DURATION));
        assert!(matches!(o.mode, Mode::OpenLoop(Schedule::Step { .. })));

        let o = load("load h2c://h:1 --load-schedule line --load-start 1000 --load-step -10 --load-max-duration 10s").unwrap();
        assert!(matches!(o.mode, Mode::OpenLoop(Schedule::Line { slope, .. }) if slope == -10.0));
    }

    #[test]
    fn load_errors_name_the_flag() {
        let cases = [
            ("load h2c://h:1 --rate 0", "--rate"),
            ("load h2c://h:1 --connections 0", "--connections"),
            ("load h2c://h:1 --connections 1 --shards 2", "--shards"),
            ("load h2c://h:1 --spin-us 20000", "--spin-us"),
            ("load h2c://h:1 --streams 100000", "--streams"),
            ("load h2c://h:1 --insecure", "--insecure"),
            ("load h2c://h:1 --ca x.pem", "--ca"),
            ("load h2c://h:1 --messages 5", "--messages"),
            ("load h2c://h:1 --load-start 5", "--load-schedule"),
            ("load h2c://h:1 --load-schedule const", "--rate"),
            (
                "load h2c://h:1 --load-schedule step --load-start 10 --load-step 1",
                "--load-step-duration",
            ),
            (
                "load h2c://h:1 --load-schedule line --load-step 1",
                "--load-start",
            ),
            (
                "load h2c://h:1 --load-schedule line --load-start 10 --load-step -1",
                "--load-step",
            ),
            (
                "load h2c://h:1 --load-schedule line --load-start 10 --load-step 1 --load-end 0",
                "--load-end",
            ),
            ("load h2c://h:1 --duration 0s", "--duration"),
            ("load h2c://h:1 -n 0", "--requests"),
            ("load h2c://h:1 --metadata nocolon", "--metadata"),
            ("load h2c://h:1 --metadata grpc-timeout:1S", "--metadata"),
            ("load h2c://h:1 --metadata te:trailers", "--metadata"),
            ("load h2c://h:1 --size 999999999", "--size"),
            ("load ftp://h:1", "URL"),
        ];
        for (line, flag) in cases {
            let e = load(line).unwrap_err();
            assert_eq!(e.flag, flag, "{line}: {e}");
            assert!(e.to_string().starts_with(flag));
        }
        // Syntax errors come from clap.
        assert!(cli("load h2c://h:1 --duration 10parsecs").is_err());
        assert!(cli("load h2c://h:1 --duration 1s --requests 5").is_err());
        assert!(cli("load https://h:1 --ca a --insecure").is_err());
        assert!(cli("load").is_err());
        assert!(cli("merge").is_err());
    }

    #[test]
    fn origin_lines() {
        let parse = |line: &str| match cli(line).expect("clap accepts").command {
            Command::Origin(o) => o.validate(),
            other => panic!("not origin: {other:?}"),
        };
        let o = parse("origin --listen 127.0.0.1:50051 --response-size 100 --delay 5ms --status 14 --message down --early-trailers-reset --shards 2").unwrap();
        assert_eq!(o.listen, "127.0.0.1:50051".parse().unwrap());
        assert_eq!(
            (o.response_size, o.delay, o.status, o.shards),
            (Some(100), Duration::from_millis(5), 14, 2)
        );
        assert!(o.early_trailers_reset && o.tls.is_none());
        let o = parse("origin --listen [::1]:443 --cert c.pem --key k.pem").unwrap();
        assert_eq!(o.tls, Some(("c.pem".into(), "k.pem".into())));
        assert_eq!(
            parse("origin --listen localhost").unwrap_err().flag,
            "--listen"
        );
        assert_eq!(
            parse("origin --listen 127.0.0.1:1 --status 17")
                .unwrap_err()
                .flag,
            "--status"
        );
        assert_eq!(
            parse("origin --listen 127.0.0.1:1 --shards 0")
                .unwrap_err()
                .flag,
            "--shards"
        );
        assert!(cli("origin --listen 127.0.0.1:1 --cert c.pem").is_err());
        match cli("merge a.hlog b.hlog --json o.json --svg o.svg")
            .unwrap()
            .command
        {
            Command::Merge(m) => {
                assert_eq!(m.files.len(), 2);
                assert!(m.json.is_some() && m.svg.is_some() && m.hgrm.is_none());
            }
            other => panic!("not merge: {other:?}"),
        }
    }

    /// Deterministic garbage and truncations never panic the hand-written parsers.
    #[test]
    fn parsers_never_panic() {
        let seeds = [
            "https://[::1]:443/a.B/C",
            "h2c://host:50051/pkg.Service/Method",
            "x-trace-id: abc\u{7f}",
            "1.5µs",
            "10ms",
        ];
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let alphabet: Vec<char> = "h2c:/[]0123456789.:µs msAZ-_ \t\u{0}é".chars().collect();
        let mut inputs: Vec<String> = Vec::new();
        for s in seeds {
            for (i, _) in s.char_indices() {
                inputs.push(s[..i].to_owned());
                inputs.push(s[i..].to_owned());
            }
        }
        for _ in 0..5000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 24) as usize;
            let s: String = (0..len)
                .map(|k| alphabet[((x >> (k % 8 * 8)) as usize + k) % alphabet.len()])
                .collect();
            inputs.push(format!("h2c://{s}"));
            inputs.push(s);
        }
        for s in &inputs {
            let _ = parse_url(s);
            let _ = parse_metadata(s);
            let _ = parse_duration(s);
        }
    }
}
