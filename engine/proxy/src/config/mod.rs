//! Configuration: parse, validate, freeze.
//!
//! A TOML file (see `engine/proxy/ringedge.example.toml`, which documents every field and its
//! default) is read in three steps:
//!
//! 1. **parse** ([`raw`]): TOML syntax, then every section is deserialized on its own with
//!    `deny_unknown_fields`, so an unknown or mistyped key is reported with its key path
//!    (`hosts[1].routes[0]: unknown field ...`) and problems in different sections are all
//!    reported together. Validation (step 2) runs only once the file parses, so a file with
//!    a misspelt key reports that first, then its semantic problems on the next check;
//! 2. **validate** (`validate`): ranges, names, addresses, URLs, cross references (route →
//!    origin), duplicates and conflicts, and that the certificate/key/CA files exist and are
//!    readable. All problems are collected into one [`ConfigError`];
//! 3. **freeze**: the result is a [`Config`] of plain typed data (socket addresses, parsed
//!    URLs, durations, origin indices), cheap to clone into each shard, from which
//!    [`crate::route::RouteTable`] is built.
//!
//! What this module must not do: open sockets, parse PEM (the tls crate does that when it
//! builds its configs; here only existence and readability are checked), or start anything.
//! Invariant: a `Config` value can only be obtained through validation ([`load`],
//! [`Config::from_str`], [`Config::from_str_in`], [`Config::quick`]), so every `Config`
//! satisfies every documented range and cross-reference rule.

pub mod raw;
mod validate;

pub use validate::check_log_filter;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use raw::RawConfig;

/// One problem found in a configuration: where (`path`, a TOML key path such as
/// `hosts[1].routes[0].origin`, empty for the whole file) and what (`message`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigIssue {
    /// TOML key path of the offending value.
    pub path: String,
    /// What is wrong, and where useful what is accepted.
    pub message: String,
}

/// Every problem found in a configuration, in file order within each section.
///
/// Display lists them all, one per line, as `path: message`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The problems; never empty.
    pub issues: Vec<ConfigIssue>,
}

impl ConfigError {
    pub(crate) fn single(path: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            issues: vec![ConfigIssue {
                path: path.into(),
                message: message.into(),
            }],
        }
    }

    /// The issues as `(path, message)` pairs.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.issues
            .iter()
            .map(|i| (i.path.as_str(), i.message.as_str()))
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.issues.len();
        write!(
            f,
            "{n} configuration error{}:",
            if n == 1 { "" } else { "s" }
        )?;
        for i in &self.issues {
            if i.path.is_empty() {
                write!(f, "\n  {}", i.message)?;
            } else {
                write!(f, "\n  {}: {}", i.path, i.message)?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Read, parse and validate a configuration file. Relative certificate, key and CA paths are
/// resolved against the file's directory.
pub fn load(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::single("", format!("cannot read {}: {e}", path.display())))?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    Config::from_str_in(&text, &base)
}

/// The validated, frozen configuration. Plain data: clone it into each shard.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// `[server]`
    pub server: ServerConfig,
    /// `[tls]`
    pub tls: TlsConfig,
    /// `[limits]`
    pub limits: Limits,
    /// `[[origins]]`, in file order; routes refer to them by index.
    pub origins: Vec<OriginConfig>,
    /// `[[hosts]]`, in file order.
    pub hosts: Vec<HostConfig>,
    /// `[log]`
    pub log: LogConfig,
    /// `[admin]`
    pub admin: AdminConfig,
}

impl Config {
    /// Parse and validate TOML text; relative paths are resolved against the current directory.
    #[allow(clippy::should_implement_trait)]
    pub fn from_str(text: &str) -> Result<Config, ConfigError> {
        Config::from_str_in(text, Path::new(""))
    }

    /// Parse and validate TOML text; relative paths are resolved against `base`.
    pub fn from_str_in(text: &str, base: &Path) -> Result<Config, ConfigError> {
        let raw = validate::parse(text)?;
        validate::validate(&raw, base)
    }

    /// Validate an already-parsed [`RawConfig`] (relative paths against `base`).
    pub fn from_raw(raw: &RawConfig, base: &Path) -> Result<Config, ConfigError> {
        validate::validate(raw, base)
    }

    /// The one-line mode (`ringedge proxy ...`): one `*` host with one `/` prefix route to one
    /// origin named `origin`. Built through the same validation as a file.
    pub fn quick(opts: &QuickOptions) -> Result<Config, ConfigError> {
        validate::validate(&opts.to_raw(), Path::new(""))
    }

    /// Number of routes over all hosts.
    pub fn route_count(&self) -> usize {
        self.hosts.iter().map(|h| h.routes.len()).sum()
    }
}

impl std::str::FromStr for Config {
    type Err = ConfigError;

    /// Same as [`Config::from_str`].
    fn from_str(text: &str) -> Result<Config, ConfigError> {
        Config::from_str_in(text, Path::new(""))
    }
}

/// Options of the one-line mode; see [`Config::quick`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QuickOptions {
    /// Listen addresses (`--listen`, repeatable). Empty = the `[server]` default.
    pub listen: Vec<String>,
    /// Certificate chain PEM (`--cert`).
    pub cert: String,
    /// Private key PEM (`--key`).
    pub key: String,
    /// Origin URL, `h2c://host:port` or `https://host:port` (`--origin`).
    pub origin: String,
    /// CA bundle for an https origin (`--origin-ca`).
    pub origin_ca: Option<String>,
    /// Skip origin certificate verification (`--origin-insecure`, lab use only).
    pub origin_insecure: bool,
    /// Shard count (`--shards`); `None` = one per allowed CPU.
    pub shards: Option<u32>,
}

impl QuickOptions {
    /// The equivalent file, as parsed TOML. Relative file paths are made absolute (against the
    /// current directory) so the printed file means the same wherever it is saved.
    pub fn to_raw(&self) -> RawConfig {
        fn abs(p: &str) -> String {
            if p.is_empty() {
                return String::new();
            }
            std::path::absolute(p).map_or_else(|_| p.to_owned(), |a| a.display().to_string())
        }
        let mut raw = RawConfig::default();
        if !self.listen.is_empty() {
            raw.server.listen = self.listen.clone();
        }
        if let Some(n) = self.shards {
            raw.server.shards = n;
        }
        raw.tls.certificates.push(raw::RawCertificate {
            cert: abs(&self.cert),
            key: abs(&self.key),
            names: Vec::new(),
        });
        raw.origins.push(raw::RawOrigin {
            name: "origin".to_owned(),
            url: self.origin.clone(),
            ca: self.origin_ca.as_deref().map(abs),
            insecure_skip_verify: self.origin_insecure,
            ..Default::default()
        });
        raw.hosts.push(raw::RawHost {
            names: vec!["*".to_owned()],
            routes: vec![raw::RawRoute {
                prefix: Some("/".to_owned()),
                origin: "origin".to_owned(),
                ..Default::default()
            }],
            ..Default::default()
        });
        raw
    }

    /// The equivalent file as TOML text (`ringedge proxy --print-config`).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(&self.to_raw()).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
    }
}

/// `[server]`: listeners, shards, connection admission and connection-level timeouts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerConfig {
    /// Addresses to listen on (TLS, ALPN h2). Default `["0.0.0.0:443"]`.
    pub listen: Vec<SocketAddr>,
    /// Number of shards; 0 (default) = one per CPU the process may run on.
    pub shards: usize,
    /// CPUs to pin shards to (in order); `None` (default) = the process's allowed CPUs. With
    /// `shards = 0` there is one shard per listed CPU; otherwise `shards` ≤ its length.
    pub cpus: Option<Vec<usize>>,
    /// Listen backlog per shard socket. Default 4096 (the kernel caps it at somaxconn).
    pub backlog: u32,
    /// Client connections accepted per shard; further ones are closed at accept. Default 4096.
    pub max_connections_per_shard: u32,
    /// Time for the TCP+TLS handshake and HTTP/2 preface. Default 10 s.
    pub handshake_timeout: Duration,
    /// A client connection with no open stream for this long is closed (GOAWAY). Default 300 s.
    pub idle_timeout: Duration,
    /// Time from the end of the handshake to the first complete request HEADERS. Default 10 s.
    pub header_timeout: Duration,
    /// On shutdown, time given to open streams to finish after GOAWAY. Default 30 s.
    pub drain_timeout: Duration,
    /// An idle shard busy-polls this long before parking: trades CPU for the 100–200 µs a
    /// parked shard takes to wake (single-stream latency). Default 0 (park at once).
    pub spin_before_park: Duration,
}

/// Lowest TLS version accepted from clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsVersion {
    /// TLS 1.2 and 1.3 (default).
    Tls12,
    /// TLS 1.3 only.
    Tls13,
}

/// `[tls]`: server-side TLS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsConfig {
    /// Certificates; at least one. The first is served when SNI matches no `names`.
    pub certificates: Vec<CertificateConfig>,
    /// Issue and accept session tickets (shared by all shards). Default true.
    pub session_tickets: bool,
    /// Lowest accepted version. Default TLS 1.2.
    pub min_version: TlsVersion,
}

/// `[[tls.certificates]]`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateConfig {
    /// Certificate chain, PEM (checked readable; parsed by the tls crate).
    pub cert: PathBuf,
    /// Private key, PEM (checked readable).
    pub key: PathBuf,
    /// SNI names (lower-case) selecting this certificate; empty = default only.
    pub names: Vec<String>,
}

/// `[limits]`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// `[limits.h2]`: HTTP/2 abuse limits, the names of the shared contract.
    pub h2: H2Limits,
    /// `[limits.grpc]`: gRPC message, buffering and deadline limits.
    pub grpc: GrpcLimits,
}

/// `[limits.h2]`: the HTTP/2 limits, with exactly the names and defaults of the shared
/// contract (CONTRACTS.md "Limit names"); the conn `ConnConfig` uses the same names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct H2Limits {
    /// SETTINGS_MAX_CONCURRENT_STREAMS we advertise and enforce. Default 256; ≥ 1.
    pub max_concurrent_streams: u32,
    /// Our SETTINGS_INITIAL_WINDOW_SIZE (receive window per stream). Default 262144;
    /// 65535..=2^31-1 (a peer may spend the initial 65535 before it sees our SETTINGS, RFC 9113
    /// §6.9.2, so the codec never advertises less).
    pub initial_stream_window: u32,
    /// Our connection receive window. Default 1048576; 65535..=2^31-1 (RFC 9113 §6.9.2: it
    /// starts at 65535 and can only be raised).
    pub connection_window: u32,
    /// SETTINGS_MAX_FRAME_SIZE we advertise. Default 16384; 16384..=16777215 (RFC 9113 §6.5.2).
    pub max_frame_size: u32,
    /// SETTINGS_MAX_HEADER_LIST_SIZE we advertise and enforce. Default 65536; ≥ 1024.
    pub max_header_list_size: u32,
    /// SETTINGS_HEADER_TABLE_SIZE we advertise. Default 4096 (0 allowed: no dynamic table).
    pub header_table_size: u32,
    /// CONTINUATION frames per header block. Default 32 (0 = none allowed).
    pub max_continuation_frames: u32,
    /// Encoded bytes per header block (HEADERS + CONTINUATIONs). Default 131072; ≥ 1024.
    pub max_header_block_bytes: u32,
    /// Peer RST_STREAMs (and streams we reset for peer errors) per flood window. Default 200; ≥ 1.
    pub max_resets_per_window: u32,
    /// SETTINGS frames per flood window. Default 100; ≥ 1.
    pub max_settings_per_window: u32,
    /// PING frames per flood window. Default 100; ≥ 1.
    pub max_pings_per_window: u32,
    /// Empty DATA/HEADERS/CONTINUATION without END_STREAM per flood window. Default 100; ≥ 1.
    pub max_empty_frames_per_window: u32,
    /// The flood window, ms. Default 1000; ≥ 1.
    pub flood_window_ms: u32,
    /// Streams refused over max_concurrent_streams before GOAWAY(ENHANCE_YOUR_CALM). Default 100; ≥ 1.
    pub max_refused_streams: u32,
    /// Our SETTINGS must be ACKed within this, ms. Default 5000; ≥ 1.
    pub settings_ack_timeout_ms: u32,
    /// Queued output bytes before we stop reading a peer that does not read. Default 4194304;
    /// ≥ 65536.
    pub max_pending_output: u32,
    /// Bytes per shard of immortal strings for HPACK table entries every request repeats
    /// (literal names, `:authority`, `user-agent`, ...: `ringedge_codec::hpack::pool`); once
    /// full nothing more is added. Default 16384; 0..=1048576 (0 = off).
    pub hpack_pool_bytes: u32,
}

impl Default for H2Limits {
    fn default() -> Self {
        H2Limits {
            max_concurrent_streams: 256,
            initial_stream_window: 262_144,
            connection_window: 1_048_576,
            max_frame_size: 16_384,
            max_header_list_size: 65_536,
            header_table_size: 4_096,
            max_continuation_frames: 32,
            max_header_block_bytes: 131_072,
            max_resets_per_window: 200,
            max_settings_per_window: 100,
            max_pings_per_window: 100,
            max_empty_frames_per_window: 100,
            flood_window_ms: 1_000,
            max_refused_streams: 100,
            settings_ack_timeout_ms: 5_000,
            max_pending_output: 4_194_304,
            hpack_pool_bytes: 16_384,
        }
    }
}

/// `[limits.grpc]`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrpcLimits {
    /// Largest gRPC message (5-byte prefix length) forwarded either way; a larger one ends the
    /// call with RESOURCE_EXHAUSTED. Default 16 MiB (gRPC's usual 4 MiB plus headroom, so the
    /// edge is never the tighter limit by accident); ≥ 1.
    pub max_message_bytes: u32,
    /// Bytes buffered in the edge per stream and direction. Default = `initial_stream_window`;
    /// 65535..=2^31-1 (it is kept by advertising windows no larger, and no window is smaller).
    pub max_stream_buffer_bytes: u32,
    /// Bytes buffered in the edge per connection. Default = `connection_window`;
    /// 65535..=2^31-1 and ≥ `max_stream_buffer_bytes`.
    pub max_connection_buffer_bytes: u32,
    /// Deadline applied to calls that carry no `grpc-timeout`. Default none.
    pub default_deadline: Option<Duration>,
    /// Cap on client-supplied deadlines (a longer `grpc-timeout` is shortened). Default none.
    pub max_deadline: Option<Duration>,
}

/// How an origin is reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OriginScheme {
    /// Cleartext HTTP/2 with prior knowledge (`h2c://`).
    H2c,
    /// HTTP/2 over TLS with ALPN h2 (`https://`).
    Https,
}

/// A parsed origin URL: scheme, host (name or IP, without brackets) and port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OriginUrl {
    /// `h2c` or `https`.
    pub scheme: OriginScheme,
    /// Host name (lower-case) or IP literal.
    pub host: String,
    /// Port (default 80 for h2c, 443 for https).
    pub port: u16,
}

impl fmt::Display for OriginUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.scheme {
            OriginScheme::H2c => "h2c",
            OriginScheme::Https => "https",
        };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

/// `[[origins]]`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OriginConfig {
    /// Unique name, referenced by routes.
    pub name: String,
    /// Where it is.
    pub url: OriginUrl,
    /// TLS server name sent to (and verified for) an https origin. Default: the URL host.
    pub sni: String,
    /// CA bundle (PEM) to verify an https origin; `None` = the webpki roots.
    pub ca: Option<PathBuf>,
    /// Skip certificate verification (lab use only; logged loudly at start). Default false.
    pub insecure_skip_verify: bool,
    /// TCP (+TLS) connect timeout. Default 3 s.
    pub connect_timeout: Duration,
    /// Connections per shard to this origin. Default 8; ≥ 1.
    pub max_connections: u32,
    /// Cap on streams per origin connection below the origin's own SETTINGS. Default none.
    pub max_streams_per_connection: Option<u32>,
    /// An origin connection with no stream for this long is closed. Default 90 s.
    pub idle_timeout: Duration,
}

/// What to do with HTTP/2 requests that are not gRPC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NonGrpcPolicy {
    /// Forward them as plain HTTP/2 to the route's origin.
    Forward,
    /// Answer 415 Unsupported Media Type (default).
    Reject,
}

/// A host name pattern of `[[hosts]].names`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum HostPattern {
    /// An exact name, lower-case.
    Exact(String),
    /// `*.example.com`: stored as the suffix `.example.com`, lower-case; matches names with
    /// one or more labels before it.
    Wildcard(String),
    /// `*`: every name.
    Any,
}

/// `[[hosts]]`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostConfig {
    /// Name patterns (matched against SNI and `:authority` without port, case-insensitively).
    pub names: Vec<HostPattern>,
    /// The gRPC switch. Default true. When off, gRPC calls get `grpc_off_status`.
    pub grpc: bool,
    /// gRPC status answered (Trailers-Only) when `grpc` is off. Default 12 (UNIMPLEMENTED).
    pub grpc_off_status: u8,
    /// Non-gRPC HTTP/2 requests. Default reject (415).
    pub non_grpc: NonGrpcPolicy,
    /// Refuse a request whose `:authority` selects another host than the TLS SNI did.
    /// Default true. The request is refused with Trailers-Only PERMISSION_DENIED (7) for gRPC,
    /// 421 Misdirected Request (RFC 9110 §15.5.20) otherwise.
    pub require_sni_match: bool,
    /// Routes, in file order.
    pub routes: Vec<RouteConfig>,
}

/// What a route matches.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RouteMatch {
    /// Exactly this `:path` (`/pkg.Service/Method`).
    Method(String),
    /// Every method of this service (`pkg.Service`, i.e. paths starting `/pkg.Service/`).
    Service(String),
    /// Every `:path` starting with this prefix (`/` = everything).
    Prefix(String),
}

impl fmt::Display for RouteMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteMatch::Method(m) => write!(f, "method {m:?}"),
            RouteMatch::Service(s) => write!(f, "service {s:?}"),
            RouteMatch::Prefix(p) => write!(f, "prefix {p:?}"),
        }
    }
}

/// How the client address is passed to the origin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ForwardedMode {
    /// Nothing added (default).
    None,
    /// Append the client IP to `x-forwarded-for`.
    XForwardedFor,
    /// Append `for=...` to `forwarded` (RFC 7239).
    Forwarded,
}

/// `[[hosts.routes]]`, with the deadlines already resolved against `[limits.grpc]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteConfig {
    /// What it matches.
    pub matcher: RouteMatch,
    /// Index into [`Config::origins`].
    pub origin: usize,
    /// Rewrite `:authority` to this before forwarding. Default: keep.
    pub authority: Option<String>,
    /// Client-address header. Default none.
    pub forwarded: ForwardedMode,
    /// Deadline for calls without `grpc-timeout`: the route's, else `[limits.grpc]`'s.
    pub default_deadline: Option<Duration>,
    /// Cap on client deadlines: the route's, else `[limits.grpc]`'s.
    pub max_deadline: Option<Duration>,
}

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines (default).
    Text,
    /// One JSON object per line.
    Json,
}

/// `[log]`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogConfig {
    /// A tracing filter directive (`info`, `ringedge=debug,warn`). Default `info`. Precedence:
    /// the `--log-level` flag, else the `RINGEDGE_LOG` environment variable, else this.
    pub level: String,
    /// Output format. Default text.
    pub format: LogFormat,
}

/// `[admin]`
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AdminConfig {
    /// Plain HTTP/1.1 metrics endpoint address; `None` (default) = no endpoint.
    pub listen: Option<SocketAddr>,
}

/// Canonical gRPC status names, indexed by code (grpc/doc/statuscodes.md).
pub use ringedge_codec::grpc::STATUS_NAMES as GRPC_STATUS_NAMES;
