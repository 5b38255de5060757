//! Parsing section by section (so unknown keys get a path) and validation of a [`RawConfig`]
//! into a [`Config`]. Every check pushes onto one list; nothing stops at the first problem.
//! Must not panic on any input, open sockets, or parse PEM.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;

use super::raw::*;
use super::*;

/// Collected problems.
#[derive(Default)]
struct Issues(Vec<ConfigIssue>);

impl Issues {
    fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(ConfigIssue {
            path: path.into(),
            message: message.into(),
        });
    }
}

const TOP_KEYS: [&str; 7] = [
    "server", "tls", "limits", "log", "admin", "origins", "hosts",
];

/// Deserialize one section value; on error record it under `path`. When a table fails, each
/// key is retried alone (every field has a default) so that every bad key is reported with its
/// own path (`server.backlog: invalid type ...`, `hosts[0].extra: unknown field ...`).
fn piece<T: DeserializeOwned + Default>(v: toml::Value, path: &str, issues: &mut Issues) -> T {
    if !v.is_table() {
        issues.push(path, format!("expected a table, found {}", v.type_str()));
        return T::default();
    }
    let err = match v.clone().try_into::<T>() {
        Ok(t) => return t,
        Err(e) => e.message().trim().to_owned(),
    };
    let before = issues.0.len();
    if let toml::Value::Table(t) = v {
        for (k, one) in t {
            let mut single = toml::Table::new();
            single.insert(k.clone(), one);
            if let Err(e) = toml::Value::Table(single).try_into::<T>() {
                issues.push(format!("{path}.{k}"), e.message().trim().to_owned());
            }
        }
    }
    if issues.0.len() == before {
        issues.push(path, err);
    }
    T::default()
}

/// Take `key` out of a table value, if the value is a table.
fn take(v: &mut toml::Value, key: &str) -> Option<toml::Value> {
    v.as_table_mut().and_then(|t| t.remove(key))
}

/// An array of tables, element by element.
fn array(v: toml::Value, path: &str, issues: &mut Issues) -> Vec<(String, toml::Value)> {
    match v {
        toml::Value::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, v)| (format!("{path}[{i}]"), v))
            .collect(),
        other => {
            issues.push(
                path,
                format!("expected an array of tables, found {}", other.type_str()),
            );
            Vec::new()
        }
    }
}

/// TOML text → [`RawConfig`], reporting every unknown key or wrong type with its path.
pub(super) fn parse(text: &str) -> Result<RawConfig, ConfigError> {
    let mut table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| ConfigError::single("", format!("TOML syntax: {e}")))?;
    let mut issues = Issues::default();
    let mut raw = RawConfig::default();

    let mut unknown: Vec<&String> = table
        .keys()
        .filter(|k| !TOP_KEYS.contains(&k.as_str()))
        .collect();
    unknown.sort();
    for k in unknown {
        issues.push(
            k.clone(),
            format!("unknown section (expected one of: {})", TOP_KEYS.join(", ")),
        );
    }

    if let Some(v) = table.remove("server") {
        raw.server = piece(v, "server", &mut issues);
    }
    if let Some(mut v) = table.remove("tls") {
        let certs = take(&mut v, "certificates");
        raw.tls = piece(v, "tls", &mut issues);
        if let Some(certs) = certs {
            for (p, c) in array(certs, "tls.certificates", &mut issues) {
                raw.tls.certificates.push(piece(c, &p, &mut issues));
            }
        }
    }
    if let Some(mut v) = table.remove("limits") {
        let h2 = take(&mut v, "h2");
        let grpc = take(&mut v, "grpc");
        raw.limits = piece(v, "limits", &mut issues);
        if let Some(h2) = h2 {
            raw.limits.h2 = piece(h2, "limits.h2", &mut issues);
        }
        if let Some(grpc) = grpc {
            raw.limits.grpc = piece(grpc, "limits.grpc", &mut issues);
        }
    }
    if let Some(v) = table.remove("log") {
        raw.log = piece(v, "log", &mut issues);
    }
    if let Some(v) = table.remove("admin") {
        raw.admin = piece(v, "admin", &mut issues);
    }
    if let Some(v) = table.remove("origins") {
        for (p, o) in array(v, "origins", &mut issues) {
            raw.origins.push(piece(o, &p, &mut issues));
        }
    }
    if let Some(v) = table.remove("hosts") {
        for (p, mut h) in array(v, "hosts", &mut issues) {
            let routes = take(&mut h, "routes");
            let mut host: RawHost = piece(h, &p, &mut issues);
            if let Some(routes) = routes {
                for (rp, r) in array(routes, &format!("{p}.routes"), &mut issues) {
                    host.routes.push(piece(r, &rp, &mut issues));
                }
            }
            raw.hosts.push(host);
        }
    }
    if issues.0.is_empty() {
        Ok(raw)
    } else {
        Err(ConfigError { issues: issues.0 })
    }
}

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// `v` must lie in `lo..=hi`.
fn range(issues: &mut Issues, path: String, v: u64, lo: u64, hi: u64) {
    if v < lo || v > hi {
        issues.push(path, format!("{v} is out of range {lo}..={hi}"));
    }
}

/// Longest timeout we accept anywhere: one day (catches unit mistakes like seconds × 1000²).
const MAX_TIMEOUT_MS: u64 = 86_400_000;
/// Longest busy-poll before an idle shard parks (10 s: beyond that it is just a spin loop).
const MAX_SPIN_US: u64 = 10_000_000;
const MAX_WINDOW: u64 = (1 << 31) - 1;
/// The initial flow-control window of RFC 9113 §6.9.2: the smallest window the edge can keep.
const MIN_WINDOW: u64 = 65_535;

fn timeout(issues: &mut Issues, path: String, v: u64) {
    range(issues, path, v, 1, MAX_TIMEOUT_MS);
}

fn opt_timeout(issues: &mut Issues, path: String, v: Option<u64>) -> Option<Duration> {
    v.map(|v| {
        timeout(issues, path, v);
        ms(v)
    })
}

/// Resolve a configured file path and check that it is a readable regular file.
fn readable_file(issues: &mut Issues, path: String, file: &str, base: &Path) -> PathBuf {
    if file.is_empty() {
        issues.push(path, "missing (a PEM file path is required)");
        return PathBuf::new();
    }
    let p = base.join(file);
    match std::fs::metadata(&p) {
        Ok(m) if !m.is_file() => {
            issues.push(path, format!("{} is not a regular file", p.display()))
        }
        Ok(_) => {
            if let Err(e) = std::fs::File::open(&p) {
                issues.push(path, format!("cannot read {}: {e}", p.display()));
            }
        }
        Err(e) => issues.push(path, format!("cannot read {}: {e}", p.display())),
    }
    p
}

/// A DNS name or IP literal: ASCII letters, digits, `-`, `.`, `_`; labels 1..=63; total ≤ 253.
fn valid_dns_name(s: &str) -> bool {
    if s.parse::<IpAddr>().is_ok() {
        return true;
    }
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// Valid `name` of an origin: non-empty, `[A-Za-z0-9_.-]`.
fn valid_ident(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// Parse `h2c://host[:port]` / `https://host[:port]`.
pub(super) fn parse_origin_url(url: &str) -> Result<OriginUrl, String> {
    let (scheme, rest) = if let Some(r) = url.strip_prefix("h2c://") {
        (OriginScheme::H2c, r)
    } else if let Some(r) = url.strip_prefix("https://") {
        (OriginScheme::Https, r)
    } else {
        return Err(format!("{url:?}: scheme must be h2c:// or https://"));
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains(['/', '?', '#', '@']) {
        return Err(format!(
            "{url:?}: only scheme://host:port is allowed (no path, query or user)"
        ));
    }
    let default_port = match scheme {
        OriginScheme::H2c => 80,
        OriginScheme::Https => 443,
    };
    let (host, port) = if let Some(r) = rest.strip_prefix('[') {
        let (h, after) = r
            .split_once(']')
            .ok_or_else(|| format!("{url:?}: unclosed '['"))?;
        if h.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("{url:?}: {h:?} is not an IPv6 address"));
        }
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| format!("{url:?}: junk after ']'"))?,
            ),
        };
        (h.to_owned(), port)
    } else {
        match rest.rsplit_once(':') {
            Some((h, p)) => (h.to_ascii_lowercase(), Some(p)),
            None => (rest.to_ascii_lowercase(), None),
        }
    };
    if !host.contains(':') && !valid_dns_name(&host) {
        return Err(format!("{url:?}: {host:?} is not a valid host name"));
    }
    let port = match port {
        None => default_port,
        Some(p) => match p.parse::<u16>() {
            Ok(0) | Err(_) => return Err(format!("{url:?}: port {p:?} is not in 1..=65535")),
            Ok(n) => n,
        },
    };
    Ok(OriginUrl { scheme, host, port })
}

/// A gRPC status name or code → code 1..=16 (0 = OK would make no sense as a refusal).
fn parse_status(s: &RawStatus) -> Result<u8, String> {
    let code = match s {
        RawStatus::Code(c) => *c,
        RawStatus::Name(n) => {
            let norm: String = n
                .chars()
                .filter(|c| *c != '_')
                .collect::<String>()
                .to_ascii_uppercase();
            match GRPC_STATUS_NAMES
                .iter()
                .position(|k| k.replace('_', "") == norm)
            {
                Some(i) => i as i64,
                None => return Err(format!("unknown gRPC status name {n:?}")),
            }
        }
    };
    if (1..=16).contains(&code) {
        Ok(code as u8)
    } else {
        Err(format!(
            "gRPC status {code} is not in 1..=16 (OK cannot refuse a call)"
        ))
    }
}

fn host_pattern(name: &str) -> Result<HostPattern, String> {
    let lower = name.to_ascii_lowercase();
    if lower == "*" {
        return Ok(HostPattern::Any);
    }
    if let Some(suffix) = lower.strip_prefix("*.") {
        if valid_dns_name(suffix) && suffix.parse::<IpAddr>().is_err() {
            return Ok(HostPattern::Wildcard(format!(".{suffix}")));
        }
        return Err(format!(
            "{name:?} is not a valid wildcard (expected *.example.com)"
        ));
    }
    if lower.contains(':') && lower.parse::<IpAddr>().is_err() {
        return Err(format!(
            "{name:?}: names carry no port (the port is ignored when matching)"
        ));
    }
    if valid_dns_name(&lower) {
        Ok(HostPattern::Exact(lower))
    } else {
        Err(format!(
            "{name:?} is not a valid host name, *.suffix wildcard or *"
        ))
    }
}

fn valid_method(m: &str) -> bool {
    let Some(rest) = m.strip_prefix('/') else {
        return false;
    };
    let Some((svc, method)) = rest.split_once('/') else {
        return false;
    };
    valid_service(svc)
        && !method.is_empty()
        && method.bytes().all(|b| b.is_ascii_graphic() && b != b'/')
}

fn valid_service(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic() && b != b'/')
}

/// A tracing filter directive, stricter than `EnvFilter` (which takes any bare word as a
/// target name, so a typo like `"inf"` silently logs everything of a target `inf`): each
/// comma-separated part is a level, or `target=level`, or a span filter (`[...]`).
pub fn check_log_filter(s: &str) -> Result<(), String> {
    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    if s.trim().is_empty() {
        return Err("empty filter (use e.g. \"info\")".into());
    }
    for part in s.split(',') {
        let part = part.trim();
        if !part.contains(['=', '[']) && !LEVELS.contains(&part.to_ascii_lowercase().as_str()) {
            return Err(format!(
                "{part:?} is not a level ({}) nor target=level",
                LEVELS.join(", ")
            ));
        }
    }
    tracing_subscriber::EnvFilter::builder()
        .parse(s)
        .map(drop)
        .map_err(|e| e.to_string())
}

/// [`RawConfig`] → [`Config`], or every problem found.
pub(super) fn validate(raw: &RawConfig, base: &Path) -> Result<Config, ConfigError> {
    let mut is = Issues::default();
    let issues = &mut is;

    // [server]
    let s = &raw.server;
    if s.listen.is_empty() {
        issues.push("server.listen", "at least one address is required");
    }
    let mut listen = Vec::new();
    let mut seen = HashSet::new();
    for (i, a) in s.listen.iter().enumerate() {
        match a.parse::<SocketAddr>() {
            Ok(sa) => {
                if !seen.insert(sa) {
                    issues.push(
                        format!("server.listen[{i}]"),
                        format!("duplicate address {a}"),
                    );
                }
                if sa.port() == 0 {
                    // Each shard binds its own SO_REUSEPORT socket: an ephemeral port would
                    // differ per shard.
                    issues.push(
                        format!("server.listen[{i}]"),
                        "port 0 cannot be shared by the shards' sockets",
                    );
                }
                listen.push(sa);
            }
            Err(_) => issues.push(
                format!("server.listen[{i}]"),
                format!("{a:?} is not a socket address (ip:port, [v6]:port)"),
            ),
        }
    }
    range(issues, "server.shards".into(), s.shards.into(), 0, 1024);
    if let Some(cpus) = &s.cpus {
        if cpus.is_empty() {
            issues.push(
                "server.cpus",
                "empty list (omit the key to use the allowed CPUs)",
            );
        }
        let mut seen = HashSet::new();
        for (i, c) in cpus.iter().enumerate() {
            if !seen.insert(c) {
                issues.push(format!("server.cpus[{i}]"), format!("CPU {c} listed twice"));
            }
        }
        if s.shards as usize > cpus.len() {
            issues.push(
                "server.shards",
                format!(
                    "{} shards but only {} CPUs in server.cpus",
                    s.shards,
                    cpus.len()
                ),
            );
        }
    }
    range(issues, "server.backlog".into(), s.backlog.into(), 1, 65_535);
    range(
        issues,
        "server.max_connections_per_shard".into(),
        s.max_connections_per_shard.into(),
        1,
        10_000_000,
    );
    timeout(
        issues,
        "server.handshake_timeout_ms".into(),
        s.handshake_timeout_ms,
    );
    timeout(issues, "server.idle_timeout_ms".into(), s.idle_timeout_ms);
    timeout(
        issues,
        "server.header_timeout_ms".into(),
        s.header_timeout_ms,
    );
    range(
        issues,
        "server.drain_timeout_ms".into(),
        s.drain_timeout_ms,
        0,
        MAX_TIMEOUT_MS,
    );
    range(
        issues,
        "server.spin_before_park_us".into(),
        s.spin_before_park_us,
        0,
        MAX_SPIN_US,
    );
    let server = ServerConfig {
        listen,
        shards: s.shards as usize,
        cpus: s
            .cpus
            .as_ref()
            .map(|c| c.iter().map(|&c| c as usize).collect()),
        backlog: s.backlog,
        max_connections_per_shard: s.max_connections_per_shard,
        handshake_timeout: ms(s.handshake_timeout_ms),
        idle_timeout: ms(s.idle_timeout_ms),
        header_timeout: ms(s.header_timeout_ms),
        drain_timeout: ms(s.drain_timeout_ms),
        spin_before_park: Duration::from_micros(s.spin_before_park_us),
    };

    // [tls]
    let t = &raw.tls;
    let min_version = match t.min_version.as_str() {
        "1.2" => TlsVersion::Tls12,
        "1.3" => TlsVersion::Tls13,
        other => {
            issues.push(
                "tls.min_version",
                format!("{other:?}: expected \"1.2\" or \"1.3\""),
            );
            TlsVersion::Tls12
        }
    };
    if t.certificates.is_empty() {
        issues.push(
            "tls.certificates",
            "at least one [[tls.certificates]] is required",
        );
    }
    let mut cert_names: HashMap<String, usize> = HashMap::new();
    let mut certificates = Vec::new();
    for (i, c) in t.certificates.iter().enumerate() {
        let p = format!("tls.certificates[{i}]");
        let cert = readable_file(issues, format!("{p}.cert"), &c.cert, base);
        let key = readable_file(issues, format!("{p}.key"), &c.key, base);
        let mut names = Vec::new();
        for (j, n) in c.names.iter().enumerate() {
            let np = format!("{p}.names[{j}]");
            let lower = n.to_ascii_lowercase();
            let ok = match lower.strip_prefix("*.") {
                Some(sfx) => valid_dns_name(sfx),
                None => valid_dns_name(&lower),
            };
            if !ok {
                issues.push(np, format!("{n:?} is not a valid SNI name"));
                continue;
            }
            if let Some(prev) = cert_names.insert(lower.clone(), i) {
                issues.push(np, format!("{n:?} already names tls.certificates[{prev}]"));
            }
            names.push(lower);
        }
        certificates.push(CertificateConfig { cert, key, names });
    }
    let tls = TlsConfig {
        certificates,
        session_tickets: t.session_tickets,
        min_version,
    };

    // [limits.h2]
    let h = &raw.limits.h2;
    let p = |k: &str| format!("limits.h2.{k}");
    range(
        issues,
        p("max_concurrent_streams"),
        h.max_concurrent_streams.into(),
        1,
        MAX_WINDOW,
    );
    // Not below 65535: the codec never advertises a smaller window (a client may spend the
    // default 65535 before it has seen our SETTINGS, RFC 9113 §6.9.2), so a smaller value
    // would be silently ignored and the edge would buffer more than configured.
    range(
        issues,
        p("initial_stream_window"),
        h.initial_stream_window.into(),
        MIN_WINDOW,
        MAX_WINDOW,
    );
    range(
        issues,
        p("connection_window"),
        h.connection_window.into(),
        65_535,
        MAX_WINDOW,
    );
    range(
        issues,
        p("max_frame_size"),
        h.max_frame_size.into(),
        16_384,
        16_777_215,
    );
    range(
        issues,
        p("max_header_list_size"),
        h.max_header_list_size.into(),
        1024,
        u32::MAX.into(),
    );
    range(
        issues,
        p("max_header_block_bytes"),
        h.max_header_block_bytes.into(),
        1024,
        u32::MAX.into(),
    );
    for (k, v) in [
        ("max_resets_per_window", h.max_resets_per_window),
        ("max_settings_per_window", h.max_settings_per_window),
        ("max_pings_per_window", h.max_pings_per_window),
        ("max_empty_frames_per_window", h.max_empty_frames_per_window),
        ("flood_window_ms", h.flood_window_ms),
        ("max_refused_streams", h.max_refused_streams),
        ("settings_ack_timeout_ms", h.settings_ack_timeout_ms),
    ] {
        range(issues, p(k), v.into(), 1, u32::MAX.into());
    }
    range(
        issues,
        p("max_pending_output"),
        h.max_pending_output.into(),
        65_536,
        u32::MAX.into(),
    );
    range(
        issues,
        p("hpack_pool_bytes"),
        h.hpack_pool_bytes.into(),
        0,
        1_048_576,
    );

    // [limits.grpc]
    let g = &raw.limits.grpc;
    range(
        issues,
        "limits.grpc.max_message_bytes".into(),
        g.max_message_bytes.into(),
        1,
        u32::MAX.into(),
    );
    let stream_buf = g.max_stream_buffer_bytes.unwrap_or(h.initial_stream_window);
    let conn_buf = g.max_connection_buffer_bytes.unwrap_or(h.connection_window);
    // The buffers are enforced through the windows we advertise, which are never below 65535
    // (see initial_stream_window): a smaller cap could not be kept.
    if let Some(v) = g.max_stream_buffer_bytes {
        range(
            issues,
            "limits.grpc.max_stream_buffer_bytes".into(),
            v.into(),
            MIN_WINDOW,
            MAX_WINDOW,
        );
    }
    if let Some(v) = g.max_connection_buffer_bytes {
        range(
            issues,
            "limits.grpc.max_connection_buffer_bytes".into(),
            v.into(),
            MIN_WINDOW,
            MAX_WINDOW,
        );
    }
    if conn_buf < stream_buf {
        issues.push(
            "limits.grpc.max_connection_buffer_bytes",
            format!("{conn_buf} is below max_stream_buffer_bytes ({stream_buf})"),
        );
    }
    let default_deadline = opt_timeout(
        issues,
        "limits.grpc.default_deadline_ms".into(),
        g.default_deadline_ms,
    );
    let max_deadline = opt_timeout(
        issues,
        "limits.grpc.max_deadline_ms".into(),
        g.max_deadline_ms,
    );
    if let (Some(d), Some(m)) = (default_deadline, max_deadline) {
        if d > m {
            issues.push(
                "limits.grpc.default_deadline_ms",
                "is longer than limits.grpc.max_deadline_ms",
            );
        }
    }
    let limits = Limits {
        h2: h.clone(),
        grpc: GrpcLimits {
            max_message_bytes: g.max_message_bytes,
            max_stream_buffer_bytes: stream_buf,
            max_connection_buffer_bytes: conn_buf,
            default_deadline,
            max_deadline,
        },
    };

    // [[origins]]
    let mut origin_index: HashMap<&str, usize> = HashMap::new();
    let mut origins = Vec::new();
    if raw.origins.is_empty() {
        issues.push("origins", "at least one [[origins]] is required");
    }
    for (i, o) in raw.origins.iter().enumerate() {
        let p = format!("origins[{i}]");
        if !valid_ident(&o.name) {
            issues.push(
                format!("{p}.name"),
                format!("{:?}: expected a non-empty name of [A-Za-z0-9_.-]", o.name),
            );
        } else if let Some(prev) = origin_index.insert(&o.name, i) {
            issues.push(
                format!("{p}.name"),
                format!("duplicate origin name {:?} (also origins[{prev}])", o.name),
            );
        }
        let url = match parse_origin_url(&o.url) {
            Ok(u) => u,
            Err(e) => {
                issues.push(format!("{p}.url"), e);
                OriginUrl {
                    scheme: OriginScheme::H2c,
                    host: String::new(),
                    port: 0,
                }
            }
        };
        let tls = url.scheme == OriginScheme::Https;
        if !tls && !url.host.is_empty() {
            for (k, set) in [
                ("sni", o.sni.is_some()),
                ("ca", o.ca.is_some()),
                ("insecure_skip_verify", o.insecure_skip_verify),
            ] {
                if set {
                    issues.push(
                        format!("{p}.{k}"),
                        "only meaningful for an https:// origin (this one is h2c)",
                    );
                }
            }
        }
        if o.ca.is_some() && o.insecure_skip_verify {
            issues.push(
                format!("{p}.insecure_skip_verify"),
                "conflicts with ca (verification is either on or off)",
            );
        }
        let sni = match &o.sni {
            Some(s) => {
                let lower = s.to_ascii_lowercase();
                if !valid_dns_name(&lower) {
                    issues.push(
                        format!("{p}.sni"),
                        format!("{s:?} is not a valid server name"),
                    );
                }
                lower
            }
            None => url.host.clone(),
        };
        let ca =
            o.ca.as_ref()
                .map(|c| readable_file(issues, format!("{p}.ca"), c, base));
        timeout(
            issues,
            format!("{p}.connect_timeout_ms"),
            o.connect_timeout_ms,
        );
        timeout(issues, format!("{p}.idle_timeout_ms"), o.idle_timeout_ms);
        range(
            issues,
            format!("{p}.max_connections"),
            o.max_connections.into(),
            1,
            65_535,
        );
        if let Some(n) = o.max_streams_per_connection {
            range(
                issues,
                format!("{p}.max_streams_per_connection"),
                n.into(),
                1,
                MAX_WINDOW,
            );
        }
        origins.push(OriginConfig {
            name: o.name.clone(),
            url,
            sni,
            ca,
            insecure_skip_verify: o.insecure_skip_verify,
            connect_timeout: ms(o.connect_timeout_ms),
            max_connections: o.max_connections,
            max_streams_per_connection: o.max_streams_per_connection,
            idle_timeout: ms(o.idle_timeout_ms),
        });
    }
    let mut known: Vec<&str> = Vec::new();
    for o in &raw.origins {
        if !o.name.is_empty() && !known.contains(&o.name.as_str()) {
            known.push(&o.name);
        }
    }
    let known = known.join(", ");

    // [[hosts]]
    if raw.hosts.is_empty() {
        issues.push("hosts", "at least one [[hosts]] is required");
    }
    let mut host_names: HashMap<HostPattern, usize> = HashMap::new();
    let mut hosts = Vec::new();
    for (i, hr) in raw.hosts.iter().enumerate() {
        let p = format!("hosts[{i}]");
        if hr.names.is_empty() {
            issues.push(
                format!("{p}.names"),
                "at least one name (or \"*\") is required",
            );
        }
        let mut names = Vec::new();
        for (j, n) in hr.names.iter().enumerate() {
            match host_pattern(n) {
                Ok(pat) => {
                    if let Some(prev) = host_names.insert(pat.clone(), i) {
                        issues.push(
                            format!("{p}.names[{j}]"),
                            format!("{n:?} is already a name of hosts[{prev}]"),
                        );
                    } else {
                        names.push(pat);
                    }
                }
                Err(e) => issues.push(format!("{p}.names[{j}]"), e),
            }
        }
        let grpc_off_status = parse_status(&hr.grpc_off_status).unwrap_or_else(|e| {
            issues.push(format!("{p}.grpc_off_status"), e);
            12
        });
        let non_grpc = match hr.non_grpc.as_str() {
            "forward" => NonGrpcPolicy::Forward,
            "reject" => NonGrpcPolicy::Reject,
            o => {
                issues.push(
                    format!("{p}.non_grpc"),
                    format!("{o:?}: expected \"forward\" or \"reject\""),
                );
                NonGrpcPolicy::Reject
            }
        };
        if hr.routes.is_empty() {
            issues.push(
                format!("{p}.routes"),
                "a host needs at least one [[hosts.routes]]",
            );
        }
        let mut matchers: HashMap<RouteMatch, usize> = HashMap::new();
        let mut routes = Vec::new();
        for (j, r) in hr.routes.iter().enumerate() {
            let rp = format!("{p}.routes[{j}]");
            let set = [r.method.is_some(), r.service.is_some(), r.prefix.is_some()]
                .iter()
                .filter(|b| **b)
                .count();
            let matcher = if set != 1 {
                issues.push(
                    rp.clone(),
                    "exactly one of method, service or prefix is required",
                );
                None
            } else if let Some(m) = &r.method {
                if valid_method(m) {
                    Some(RouteMatch::Method(m.clone()))
                } else {
                    issues.push(
                        format!("{rp}.method"),
                        format!("{m:?}: expected /package.Service/Method"),
                    );
                    None
                }
            } else if let Some(s) = &r.service {
                if valid_service(s) {
                    Some(RouteMatch::Service(s.clone()))
                } else {
                    issues.push(
                        format!("{rp}.service"),
                        format!("{s:?}: expected package.Service (no slashes)"),
                    );
                    None
                }
            } else {
                let pre = r.prefix.clone().unwrap_or_default();
                if pre.starts_with('/') && pre.bytes().all(|b| b.is_ascii_graphic()) {
                    Some(RouteMatch::Prefix(pre))
                } else {
                    issues.push(
                        format!("{rp}.prefix"),
                        format!("{pre:?}: a path prefix starts with '/'"),
                    );
                    None
                }
            };
            if let Some(m) = &matcher {
                if let Some(prev) = matchers.insert(m.clone(), j) {
                    issues.push(
                        rp.clone(),
                        format!("{m} is already routed by {p}.routes[{prev}]"),
                    );
                }
            }
            let origin = match origin_index.get(r.origin.as_str()) {
                Some(&o) => o,
                None => {
                    issues.push(
                        format!("{rp}.origin"),
                        format!("unknown origin {:?} (known: {known})", r.origin),
                    );
                    0
                }
            };
            if let Some(a) = &r.authority {
                let host = a.rsplit_once(':').map_or(a.as_str(), |(h, port)| {
                    if port.parse::<u16>().is_ok() {
                        h
                    } else {
                        a.as_str()
                    }
                });
                let host = host.trim_start_matches('[').trim_end_matches(']');
                if !valid_dns_name(host) {
                    issues.push(
                        format!("{rp}.authority"),
                        format!("{a:?}: expected host or host:port"),
                    );
                }
            }
            let forwarded = match r.forwarded.as_str() {
                "none" => ForwardedMode::None,
                "x-forwarded-for" => ForwardedMode::XForwardedFor,
                "forwarded" => ForwardedMode::Forwarded,
                o => {
                    issues.push(
                        format!("{rp}.forwarded"),
                        format!("{o:?}: expected \"none\", \"x-forwarded-for\" or \"forwarded\""),
                    );
                    ForwardedMode::None
                }
            };
            let dd = opt_timeout(
                issues,
                format!("{rp}.default_deadline_ms"),
                r.default_deadline_ms,
            )
            .or(default_deadline);
            let md = opt_timeout(issues, format!("{rp}.max_deadline_ms"), r.max_deadline_ms)
                .or(max_deadline);
            if let (Some(d), Some(m)) = (dd, md) {
                if d > m && (r.default_deadline_ms.is_some() || r.max_deadline_ms.is_some()) {
                    issues.push(
                        format!("{rp}.default_deadline_ms"),
                        "is longer than the route's max deadline",
                    );
                }
            }
            if let Some(matcher) = matcher {
                routes.push(RouteConfig {
                    matcher,
                    origin,
                    authority: r.authority.clone(),
                    forwarded,
                    default_deadline: dd,
                    max_deadline: md,
                });
            }
        }
        hosts.push(HostConfig {
            names,
            grpc: hr.grpc,
            grpc_off_status,
            non_grpc,
            require_sni_match: hr.require_sni_match,
            routes,
        });
    }

    // [log]
    let format = match raw.log.format.as_str() {
        "text" => LogFormat::Text,
        "json" => LogFormat::Json,
        o => {
            issues.push(
                "log.format",
                format!("{o:?}: expected \"text\" or \"json\""),
            );
            LogFormat::Text
        }
    };
    if let Err(e) = check_log_filter(&raw.log.level) {
        issues.push("log.level", format!("{:?}: {e}", raw.log.level));
    }
    let log = LogConfig {
        level: raw.log.level.clone(),
        format,
    };

    // [admin]
    let admin = AdminConfig {
        listen: raw
            .admin
            .listen
            .as_ref()
            .and_then(|a| match a.parse::<SocketAddr>() {
                Ok(sa) => {
                    if server.listen.contains(&sa) {
                        issues.push(
                            "admin.listen",
                            format!("{a} is also a server.listen address"),
                        );
                    }
                    Some(sa)
                }
                Err(_) => {
                    issues.push("admin.listen", format!("{a:?} is not a socket address"));
                    None
                }
            }),
    };

    if is.0.is_empty() {
        Ok(Config {
            server,
            tls,
            limits,
            origins,
            hosts,
            log,
            admin,
        })
    } else {
        Err(ConfigError { issues: is.0 })
    }
}
