//! Fuzz the proxy's configuration parser and validator (`ringedge::config`).
//!
//! The first input byte picks the mode; the rest is the payload:
//! - 0: the payload as the file text (`Config::from_str_in`); non-UTF-8 payloads also go
//!   through `config::load` from a file, which must refuse them with one file-level issue;
//! - 1: the payload is parsed as TOML and deep-merged over a valid base configuration, so
//!   most inputs get past the required sections and exercise validation;
//! - 2: the payload is a script of field edits (boundary values, pooled or input strings) on
//!   a valid base `RawConfig`, validated both directly and through its TOML rendering;
//! - 3: the payload picks quick-mode options; `Config::quick` must equal validating the text
//!   `QuickOptions::to_toml` prints (`ringedge proxy --print-config` promises that).
//!
//! Properties checked, beyond "never panics":
//! - an error lists at least one issue and its Display counts them;
//! - a validated `Config` satisfies every documented range and cross reference (see `check`);
//! - a file that validates deserializes as a whole `RawConfig` too, validates to the same
//!   `Config` from it, and its `RawConfig` rendered back to TOML validates to the same `Config`.
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use ringedge::config::raw::{RawConfig, RawStatus};
use ringedge::config::{
    check_log_filter, load, Config, ConfigError, HostPattern, OriginScheme, QuickOptions,
    RouteMatch,
};

/// A directory with the files configurations may name: `cert.pem`, `key.pem`, `ca.pem` (only
/// readability is checked, so they are empty) and a subdirectory `dir` (not a regular file).
fn base() -> &'static Path {
    static BASE: OnceLock<PathBuf> = OnceLock::new();
    BASE.get_or_init(|| {
        // One shared directory (its contents are fixed), so runs leave no litter behind.
        let d = std::env::temp_dir().join("ringedge-fuzz-config");
        std::fs::create_dir_all(d.join("dir")).expect("temp dir");
        for f in ["cert.pem", "key.pem", "ca.pem"] {
            std::fs::write(d.join(f), b"").expect("temp file");
        }
        d
    })
}

/// A small valid configuration: mode 1 merges input over it, mode 2 edits it.
const BASE_TOML: &str = r#"
[server]
listen = ["127.0.0.1:8443", "[::1]:8443"]
cpus = [0, 1]
shards = 2

[tls]
[[tls.certificates]]
cert = "cert.pem"
key = "key.pem"
names = ["example.com", "*.example.com"]

[limits.grpc]
default_deadline_ms = 1000
max_deadline_ms = 5000

[[origins]]
name = "a"
url = "h2c://127.0.0.1:50051"

[[origins]]
name = "b"
url = "https://[::1]:443"
ca = "ca.pem"
sni = "origin.test"

[[hosts]]
names = ["example.com", "*.example.org"]
non_grpc = "forward"
grpc_off_status = "unavailable"
[[hosts.routes]]
method = "/pkg.Svc/Do"
origin = "b"
forwarded = "x-forwarded-for"
max_deadline_ms = 2000
[[hosts.routes]]
prefix = "/"
origin = "a"
authority = "backend:8080"

[[hosts]]
names = ["*"]
[[hosts.routes]]
service = "pkg.Other"
origin = "a"

[log]
level = "ringedge=debug,warn"

[admin]
listen = "127.0.0.1:9090"
"#;

const MAX_WINDOW: u32 = (1 << 31) - 1;
const MAX_TIMEOUT: Duration = Duration::from_millis(86_400_000);

/// Every documented invariant of a validated configuration (the field docs in
/// `engine/proxy/src/config/mod.rs` and `ringedge.example.toml`).
fn check(c: &Config) {
    let s = &c.server;
    assert!(!s.listen.is_empty());
    for (i, a) in s.listen.iter().enumerate() {
        assert_ne!(a.port(), 0);
        assert!(!s.listen[..i].contains(a), "duplicate listen address");
    }
    assert!(s.shards <= 1024);
    if let Some(cpus) = &s.cpus {
        assert!(!cpus.is_empty() && s.shards <= cpus.len());
        for (i, c) in cpus.iter().enumerate() {
            assert!(!cpus[..i].contains(c), "duplicate cpu");
        }
    }
    assert!((1..=65_535).contains(&s.backlog));
    assert!((1..=10_000_000).contains(&s.max_connections_per_shard));
    for t in [s.handshake_timeout, s.idle_timeout, s.header_timeout] {
        assert!(!t.is_zero() && t <= MAX_TIMEOUT);
    }
    assert!(s.drain_timeout <= MAX_TIMEOUT);
    assert!(s.spin_before_park <= Duration::from_secs(10));

    assert!(!c.tls.certificates.is_empty());
    let mut sni: Vec<&str> = Vec::new();
    for cert in &c.tls.certificates {
        assert!(!cert.cert.as_os_str().is_empty() && !cert.key.as_os_str().is_empty());
        assert!(cert.cert.is_file() && cert.key.is_file());
        for n in &cert.names {
            assert_eq!(n, &n.to_ascii_lowercase());
            assert!(!sni.contains(&n.as_str()), "SNI name on two certificates");
            sni.push(n);
        }
    }

    let h = &c.limits.h2;
    assert!((1..=MAX_WINDOW).contains(&h.max_concurrent_streams));
    assert!((65_535..=MAX_WINDOW).contains(&h.initial_stream_window));
    assert!((65_535..=MAX_WINDOW).contains(&h.connection_window));
    assert!((16_384..=16_777_215).contains(&h.max_frame_size));
    assert!(h.max_header_list_size >= 1024 && h.max_header_block_bytes >= 1024);
    for v in [
        h.max_resets_per_window,
        h.max_settings_per_window,
        h.max_pings_per_window,
        h.max_empty_frames_per_window,
        h.flood_window_ms,
        h.max_refused_streams,
        h.settings_ack_timeout_ms,
    ] {
        assert!(v >= 1);
    }
    assert!(h.max_pending_output >= 65_536);
    let g = &c.limits.grpc;
    assert!(g.max_message_bytes >= 1);
    assert!((65_535..=MAX_WINDOW).contains(&g.max_stream_buffer_bytes));
    assert!((65_535..=MAX_WINDOW).contains(&g.max_connection_buffer_bytes));
    assert!(g.max_connection_buffer_bytes >= g.max_stream_buffer_bytes);
    for d in [g.default_deadline, g.max_deadline].into_iter().flatten() {
        assert!(!d.is_zero() && d <= MAX_TIMEOUT);
    }
    if let (Some(d), Some(m)) = (g.default_deadline, g.max_deadline) {
        assert!(d <= m);
    }

    assert!(!c.origins.is_empty());
    for (i, o) in c.origins.iter().enumerate() {
        assert!(!o.name.is_empty());
        assert!(
            c.origins[..i].iter().all(|p| p.name != o.name),
            "duplicate origin"
        );
        assert!(o.url.port != 0 && !o.url.host.is_empty());
        assert!(!o.sni.is_empty());
        if o.url.scheme == OriginScheme::H2c {
            assert!(o.ca.is_none() && !o.insecure_skip_verify);
        }
        assert!(!(o.ca.is_some() && o.insecure_skip_verify));
        if let Some(ca) = &o.ca {
            assert!(ca.is_file());
        }
        for t in [o.connect_timeout, o.idle_timeout] {
            assert!(!t.is_zero() && t <= MAX_TIMEOUT);
        }
        assert!((1..=65_535).contains(&o.max_connections));
        if let Some(n) = o.max_streams_per_connection {
            assert!((1..=MAX_WINDOW).contains(&n));
        }
        // The Display form is a URL the validator accepts with the same meaning.
        let shown = o.url.to_string();
        assert!(shown.starts_with(match o.url.scheme {
            OriginScheme::H2c => "h2c://",
            OriginScheme::Https => "https://",
        }));
    }

    assert!(!c.hosts.is_empty());
    let mut patterns: Vec<&HostPattern> = Vec::new();
    for host in &c.hosts {
        assert!(!host.names.is_empty());
        for n in &host.names {
            match n {
                HostPattern::Exact(e) => assert!(!e.is_empty() && *e == e.to_ascii_lowercase()),
                HostPattern::Wildcard(w) => {
                    assert!(w.starts_with('.') && w.len() > 1 && *w == w.to_ascii_lowercase())
                }
                HostPattern::Any => {}
            }
            assert!(!patterns.contains(&n), "host pattern on two hosts");
            patterns.push(n);
        }
        assert!((1..=16).contains(&host.grpc_off_status));
        assert!(!host.routes.is_empty());
        for (j, r) in host.routes.iter().enumerate() {
            assert!(r.origin < c.origins.len());
            assert!(
                host.routes[..j].iter().all(|p| p.matcher != r.matcher),
                "duplicate route"
            );
            match &r.matcher {
                RouteMatch::Method(m) => assert!(m.starts_with('/') && m[1..].contains('/')),
                RouteMatch::Service(s) => assert!(!s.is_empty() && !s.contains('/')),
                RouteMatch::Prefix(p) => assert!(p.starts_with('/')),
            }
            for d in [r.default_deadline, r.max_deadline].into_iter().flatten() {
                assert!(!d.is_zero() && d <= MAX_TIMEOUT);
            }
        }
    }

    assert!(check_log_filter(&c.log.level).is_ok());
    if let Some(a) = c.admin.listen {
        assert!(!s.listen.contains(&a));
    }
}

fn check_error(e: &ConfigError) {
    assert!(!e.issues.is_empty(), "an error without issues");
    let shown = e.to_string();
    let n = e.issues.len();
    assert!(
        shown.starts_with(&format!("{n} configuration error")),
        "{shown}"
    );
    assert!(e.pairs().count() == n);
}

/// Validate `text`; on success check the invariants and the whole-file and print-back round
/// trips.
fn run_text(text: &str) {
    match Config::from_str_in(text, base()) {
        Ok(cfg) => {
            check(&cfg);
            // The section-by-section parser and a whole-struct deserialization agree.
            let raw: RawConfig = toml::from_str(text).expect("a valid file deserializes whole");
            assert_eq!(Config::from_raw(&raw, base()).as_ref(), Ok(&cfg));
            // What `--print-config` would print for it means the same.
            let printed = toml::to_string_pretty(&raw).expect("a valid RawConfig renders");
            assert_eq!(
                Config::from_str_in(&printed, base()).as_ref(),
                Ok(&cfg),
                "{printed}"
            );
        }
        Err(e) => check_error(&e),
    }
}

/// Merge `over` into `into`: tables key by key, arrays element by element, else replace.
fn merge(into: &mut toml::Value, over: toml::Value) {
    match (into, over) {
        (toml::Value::Table(a), toml::Value::Table(b)) => {
            for (k, v) in b {
                match a.get_mut(&k) {
                    Some(old) => merge(old, v),
                    None => {
                        a.insert(k, v);
                    }
                }
            }
        }
        (toml::Value::Array(a), toml::Value::Array(b)) => {
            for (i, v) in b.into_iter().enumerate() {
                match a.get_mut(i) {
                    Some(old) => merge(old, v),
                    None => a.push(v),
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

/// Reads the edit script of mode 2.
struct Script<'a>(&'a [u8]);

impl<'a> Script<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
    fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (a, b) = self.0.split_at(n.min(self.0.len()));
        self.0 = b;
        a
    }
    /// A number: a boundary value of some documented range, or raw input bytes.
    fn num(&mut self) -> u64 {
        const EDGES: [u64; 24] = [
            0,
            1,
            2,
            1023,
            1024,
            16_383,
            16_384,
            65_534,
            65_535,
            65_536,
            16_777_215,
            16_777_216,
            10_000_000,
            10_000_001,
            86_400_000,
            86_400_001,
            (1 << 31) - 2,
            (1 << 31) - 1,
            1 << 31,
            u32::MAX as u64,
            u32::MAX as u64 + 1,
            i64::MAX as u64,
            i64::MAX as u64 + 1,
            u64::MAX,
        ];
        let b = self.byte().unwrap_or(0);
        if b & 0x80 == 0 {
            EDGES[usize::from(b) % EDGES.len()]
        } else {
            let raw = self.bytes(usize::from(b & 7) + 1);
            raw.iter().fold(0u64, |a, &x| (a << 8) | u64::from(x))
        }
    }
    fn num32(&mut self) -> u32 {
        self.num() as u32
    }
    /// A string: from a pool of meaningful values, or raw input bytes.
    fn string(&mut self) -> String {
        const POOL: [&str; 32] = [
            "",
            "*",
            "*.",
            "a",
            "b",
            "c",
            "/",
            "/pkg.Svc/Do",
            "pkg.Svc",
            "example.com",
            "EXAMPLE.com",
            "*.example.com",
            "127.0.0.1:8443",
            "[::1]:8443",
            "0.0.0.0:0",
            "h2c://127.0.0.1:1",
            "https://[::1]",
            "https://host:65536",
            "h2c://host/path",
            "cert.pem",
            "key.pem",
            "ca.pem",
            "dir",
            "missing.pem",
            "1.2",
            "1.3",
            "forward",
            "json",
            "info",
            "inf",
            "x-forwarded-for",
            "ringedge=trace,[span]=debug",
        ];
        let b = self.byte().unwrap_or(0);
        if b & 0x80 == 0 {
            POOL[usize::from(b) % POOL.len()].to_owned()
        } else {
            String::from_utf8_lossy(self.bytes(usize::from(b & 0x3f))).into_owned()
        }
    }
    fn opt_num(&mut self) -> Option<u64> {
        let v = self.num();
        (v % 5 != 3).then_some(v)
    }
    fn opt_string(&mut self) -> Option<String> {
        let s = self.string();
        (s != "a").then_some(s)
    }
}

/// Applies one edit chosen by `op` to `raw`.
fn edit(raw: &mut RawConfig, op: u8, s: &mut Script<'_>) {
    let oi = usize::from(s.byte().unwrap_or(0)) % (raw.origins.len() + 1);
    let hi = usize::from(s.byte().unwrap_or(0)) % (raw.hosts.len() + 1);
    match op % 48 {
        0 => raw.server.listen = (0..s.byte().unwrap_or(0) % 4).map(|_| s.string()).collect(),
        1 => raw.server.shards = s.num32(),
        2 => {
            raw.server.cpus = s
                .opt_num()
                .map(|n| (0..n % 5).map(|_| s.num32() % 4).collect())
        }
        3 => raw.server.backlog = s.num32(),
        4 => raw.server.max_connections_per_shard = s.num32(),
        5 => raw.server.handshake_timeout_ms = s.num(),
        6 => raw.server.idle_timeout_ms = s.num(),
        7 => raw.server.header_timeout_ms = s.num(),
        8 => raw.server.drain_timeout_ms = s.num(),
        9 => raw.server.spin_before_park_us = s.num(),
        10 => raw.tls.min_version = s.string(),
        11 => raw.tls.session_tickets = s.byte().unwrap_or(0) & 1 == 0,
        12 => {
            let c = ringedge::config::raw::RawCertificate {
                cert: s.string(),
                key: s.string(),
                names: (0..s.byte().unwrap_or(0) % 3).map(|_| s.string()).collect(),
            };
            raw.tls.certificates.push(c);
        }
        13 => raw
            .tls
            .certificates
            .truncate(usize::from(s.byte().unwrap_or(0) % 2)),
        14 => raw.limits.h2.max_concurrent_streams = s.num32(),
        15 => raw.limits.h2.initial_stream_window = s.num32(),
        16 => raw.limits.h2.connection_window = s.num32(),
        17 => raw.limits.h2.max_frame_size = s.num32(),
        18 => raw.limits.h2.max_header_list_size = s.num32(),
        19 => raw.limits.h2.max_header_block_bytes = s.num32(),
        20 => raw.limits.h2.max_resets_per_window = s.num32(),
        21 => raw.limits.h2.flood_window_ms = s.num32(),
        22 => raw.limits.h2.max_pending_output = s.num32(),
        23 => raw.limits.h2.settings_ack_timeout_ms = s.num32(),
        24 => raw.limits.grpc.max_message_bytes = s.num32(),
        25 => raw.limits.grpc.max_stream_buffer_bytes = s.opt_num().map(|v| v as u32),
        26 => raw.limits.grpc.max_connection_buffer_bytes = s.opt_num().map(|v| v as u32),
        27 => raw.limits.grpc.default_deadline_ms = s.opt_num(),
        28 => raw.limits.grpc.max_deadline_ms = s.opt_num(),
        29 => raw.log.level = s.string(),
        30 => raw.log.format = s.string(),
        31 => raw.admin.listen = s.opt_string(),
        32 => {
            let mut o = raw.origins.get(oi).cloned().unwrap_or_default();
            o.name = s.string();
            o.url = s.string();
            raw.origins.push(o);
        }
        33 | 34 | 35 | 36 | 37 | 38 => {
            let Some(o) = raw.origins.get_mut(oi) else {
                return;
            };
            match op % 48 {
                33 => o.url = s.string(),
                34 => o.sni = s.opt_string(),
                35 => o.ca = s.opt_string(),
                36 => o.insecure_skip_verify = s.byte().unwrap_or(0) & 1 == 0,
                37 => o.max_connections = s.num32(),
                _ => {
                    o.connect_timeout_ms = s.num();
                    o.max_streams_per_connection = s.opt_num().map(|v| v as u32);
                }
            }
        }
        39 => {
            let h = raw.hosts.get(hi).cloned().unwrap_or_default();
            raw.hosts.push(h);
        }
        40..=47 => {
            let Some(h) = raw.hosts.get_mut(hi) else {
                return;
            };
            let ri = usize::from(s.byte().unwrap_or(0)) % (h.routes.len() + 1);
            match op % 48 {
                40 => h.names = (0..s.byte().unwrap_or(0) % 3).map(|_| s.string()).collect(),
                41 => {
                    h.grpc_off_status = if s.byte().unwrap_or(0) & 1 == 0 {
                        RawStatus::Code(s.num() as i64)
                    } else {
                        RawStatus::Name(s.string())
                    }
                }
                42 => h.non_grpc = s.string(),
                43 => {
                    let r = h.routes.get(ri).cloned().unwrap_or_default();
                    h.routes.push(r);
                }
                _ => {
                    let Some(r) = h.routes.get_mut(ri) else {
                        return;
                    };
                    match op % 48 {
                        44 => {
                            r.method = s.opt_string();
                            r.service = s.opt_string();
                            r.prefix = s.opt_string();
                        }
                        45 => {
                            r.origin = s.string();
                            r.authority = s.opt_string();
                        }
                        46 => r.forwarded = s.string(),
                        _ => {
                            r.default_deadline_ms = s.opt_num();
                            r.max_deadline_ms = s.opt_num();
                        }
                    }
                }
            }
        }
        _ => unreachable!(),
    }
}

fn base_table() -> &'static toml::Table {
    static TABLE: OnceLock<toml::Table> = OnceLock::new();
    TABLE.get_or_init(|| BASE_TOML.parse().expect("base parses"))
}

fn base_raw() -> &'static RawConfig {
    static RAW: OnceLock<RawConfig> = OnceLock::new();
    RAW.get_or_init(|| {
        let raw: RawConfig = toml::from_str(BASE_TOML).expect("base parses");
        let cfg = Config::from_raw(&raw, base()).expect("base validates");
        check(&cfg);
        raw
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, payload)) = data.split_first() else {
        return;
    };
    match mode % 4 {
        0 => match std::str::from_utf8(payload) {
            Ok(text) => run_text(text),
            Err(_) => {
                // The file reader refuses non-UTF-8 with one file-level issue.
                let f = base().join(format!("input-{}.toml", std::process::id()));
                std::fs::write(&f, payload).expect("write input");
                let e = load(&f).expect_err("non-UTF-8 file accepted");
                let _ = std::fs::remove_file(&f);
                assert_eq!(e.issues.len(), 1);
                assert!(e.issues[0].path.is_empty());
                run_text(&String::from_utf8_lossy(payload));
            }
        },
        1 => {
            let Ok(over) = String::from_utf8_lossy(payload).parse::<toml::Table>() else {
                return;
            };
            let mut v = toml::Value::Table(base_table().clone());
            merge(&mut v, toml::Value::Table(over));
            let Ok(text) = toml::to_string(&v) else {
                return;
            };
            run_text(&text);
        }
        2 => {
            let mut raw = base_raw().clone();
            let mut s = Script(payload);
            let mut edits = 0;
            while let Some(op) = s.byte() {
                edit(&mut raw, op, &mut s);
                edits += 1;
                if edits == 64 {
                    break;
                }
            }
            let direct = Config::from_raw(&raw, base());
            match &direct {
                Ok(cfg) => check(cfg),
                Err(e) => check_error(e),
            }
            // The TOML rendering of any RawConfig (what --print-config prints) validates the
            // same way, unless a value has no TOML form (integers above i64::MAX).
            if let Ok(text) = toml::to_string_pretty(&raw) {
                let via_text = Config::from_str_in(&text, base());
                match (&direct, &via_text) {
                    (Ok(a), Ok(b)) => assert_eq!(a, b, "{text}"),
                    (Err(a), Err(b)) => assert_eq!(a, b, "{text}"),
                    _ => panic!("direct {direct:?} vs text {via_text:?} for\n{text}"),
                }
            }
        }
        _ => {
            let mut s = Script(payload);
            let file = |s: &mut Script<'_>| match s.byte().unwrap_or(0) % 4 {
                0 => base().join("cert.pem").display().to_string(),
                1 => base().join("key.pem").display().to_string(),
                2 => String::new(),
                _ => s.string(),
            };
            let opts = QuickOptions {
                listen: (0..s.byte().unwrap_or(0) % 3).map(|_| s.string()).collect(),
                cert: file(&mut s),
                key: file(&mut s),
                origin: s.string(),
                origin_ca: (s.byte().unwrap_or(0) & 1 == 0).then(|| file(&mut s)),
                origin_insecure: s.byte().unwrap_or(0) & 1 == 0,
                shards: (s.byte().unwrap_or(0) & 1 == 0).then(|| s.num32()),
            };
            let quick = Config::quick(&opts);
            match &quick {
                Ok(cfg) => check(cfg),
                Err(e) => check_error(e),
            }
            let printed = opts.to_toml();
            let from_text = Config::from_str(&printed);
            assert_eq!(
                quick, from_text,
                "quick mode vs its printed file:\n{printed}"
            );
        }
    }
});
