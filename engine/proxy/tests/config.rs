//! Config parsing and validation: the example file, every kind of error with its key path,
//! several errors at once, unknown fields, quick mode equal to its TOML.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ringedge::config::{
    self, Config, ConfigError, ForwardedMode, HostPattern, NonGrpcPolicy, OriginScheme,
    QuickOptions, RouteMatch, TlsVersion,
};

/// A fresh directory with the files the example file names (contents are not PEM: only
/// readability is checked by the config layer).
fn fixture_dir() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "ringedge-config-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let certs = dir.join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    for f in [
        "example.com.pem",
        "example.com.key",
        "billing.example.net.pem",
        "billing.example.net.key",
        "internal-ca.pem",
    ] {
        std::fs::write(certs.join(f), "x").unwrap();
    }
    dir
}

const EXAMPLE: &str = include_str!("../ringedge.example.toml");

fn err(text: &str, base: &Path) -> ConfigError {
    Config::from_str_in(text, base).expect_err("config should be rejected")
}

fn has(e: &ConfigError, path: &str, needle: &str) -> bool {
    e.pairs().any(|(p, m)| p == path && m.contains(needle))
}

#[track_caller]
fn assert_issue(e: &ConfigError, path: &str, needle: &str) {
    assert!(
        has(e, path, needle),
        "expected `{path}: ...{needle}...` in:\n{e}"
    );
}

/// A minimal valid file, relative to `fixture_dir()`.
const MINIMAL: &str = r#"
[[tls.certificates]]
cert = "certs/example.com.pem"
key = "certs/example.com.key"

[[origins]]
name = "greeter"
url = "h2c://127.0.0.1:50051"

[[origins]]
name = "billing"
url = "https://billing.internal"

[[hosts]]
names = ["*"]

[[hosts.routes]]
prefix = "/"
origin = "greeter"
"#;

#[test]
fn example_file_parses_and_validates() {
    let dir = fixture_dir();
    let c = Config::from_str_in(EXAMPLE, &dir).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.server.listen, vec!["0.0.0.0:443".parse().unwrap()]);
    assert_eq!(c.tls.certificates.len(), 2);
    assert_eq!(
        c.tls.certificates[0].cert,
        dir.join("certs/example.com.pem")
    );
    assert_eq!(
        c.tls.certificates[0].names,
        vec!["example.com", "*.example.com"]
    );
    assert_eq!(c.origins.len(), 2);
    assert_eq!(c.origins[1].url.scheme, OriginScheme::Https);
    assert_eq!(c.origins[1].url.port, 8443);
    assert_eq!(
        c.origins[1].ca.as_deref(),
        Some(dir.join("certs/internal-ca.pem").as_path())
    );
    assert_eq!(c.hosts.len(), 3);
    assert_eq!(c.route_count(), 4);
    assert_eq!(c.hosts[2].names, vec![HostPattern::Any]);
    assert!(!c.hosts[2].grpc);
    let r = &c.hosts[0].routes[0];
    assert_eq!(
        r.matcher,
        RouteMatch::Method("/helloworld.Greeter/SayHello".into())
    );
    assert_eq!(r.default_deadline, Some(Duration::from_secs(5)));
    assert_eq!(r.max_deadline, Some(Duration::from_secs(30)));
    assert_eq!(c.hosts[0].routes[1].forwarded, ForwardedMode::XForwardedFor);
    assert_eq!(
        c.hosts[0].routes[1].authority.as_deref(),
        Some("greeter.internal")
    );
    assert_eq!(c.hosts[1].routes[0].origin, 1);
    // The example spells out the defaults: it must equal the defaults where it shows them.
    assert_eq!(c.limits.h2, config::H2Limits::default());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn load_resolves_paths_against_the_file_directory() {
    let dir = fixture_dir();
    let file = dir.join("edge.toml");
    std::fs::write(&file, EXAMPLE).unwrap();
    let c = config::load(&file).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        c.tls.certificates[1].key,
        dir.join("certs/billing.example.net.key")
    );
    let missing = config::load(dir.join("nope.toml")).unwrap_err();
    assert!(missing.to_string().contains("cannot read"), "{missing}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn defaults_are_the_documented_ones() {
    let dir = fixture_dir();
    let c = Config::from_str_in(MINIMAL, &dir).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.server.shards, 0);
    assert_eq!(c.server.backlog, 4096);
    assert_eq!(c.server.header_timeout, Duration::from_secs(10));
    assert!(c.tls.session_tickets);
    assert_eq!(c.tls.min_version, TlsVersion::Tls12);
    let h2 = &c.limits.h2;
    assert_eq!(
        (
            h2.max_concurrent_streams,
            h2.initial_stream_window,
            h2.connection_window,
            h2.max_frame_size
        ),
        (256, 262_144, 1_048_576, 16_384)
    );
    assert_eq!(
        (
            h2.max_resets_per_window,
            h2.flood_window_ms,
            h2.max_pending_output,
            h2.hpack_pool_bytes
        ),
        (200, 1000, 4_194_304, 16_384)
    );
    assert_eq!(c.limits.grpc.max_message_bytes, 16 << 20);
    assert_eq!(c.limits.grpc.max_stream_buffer_bytes, 262_144);
    assert_eq!(c.limits.grpc.max_connection_buffer_bytes, 1_048_576);
    assert_eq!(c.limits.grpc.default_deadline, None);
    assert_eq!(c.origins[1].url.port, 443);
    assert_eq!(c.origins[1].sni, "billing.internal");
    assert!(!c.origins[1].insecure_skip_verify);
    let h = &c.hosts[0];
    assert!(h.grpc && h.require_sni_match);
    assert_eq!(h.grpc_off_status, 12);
    assert_eq!(h.non_grpc, NonGrpcPolicy::Reject);
    assert_eq!(h.routes[0].forwarded, ForwardedMode::None);
    assert_eq!(c.admin.listen, None);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn stream_buffer_default_follows_the_window() {
    let dir = fixture_dir();
    let text = format!(
        "{MINIMAL}\n[limits.h2]\ninitial_stream_window = 65535\nconnection_window = 131072\n"
    );
    let c = Config::from_str_in(&text, &dir).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.limits.grpc.max_stream_buffer_bytes, 65_535);
    assert_eq!(c.limits.grpc.max_connection_buffer_bytes, 131_072);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn unknown_fields_are_rejected_with_their_paths_all_at_once() {
    let dir = fixture_dir();
    let text = MINIMAL
        .replace(
            "[[tls.certificates]]",
            "colour = 1\n[server]\nlisten_on = 1\n[[tls.certificates]]\nsni = 2",
        )
        .replace("prefix = \"/\"", "prefix = \"/\"\nretries = 3")
        .replace("names = [\"*\"]", "names = [\"*\"]\ngrpc_web = true")
        + "\n[limits.h2]\nmax_streams = 5\n[limits.grpc]\nmax_message = 1\n[limits.http3]\nx = 1\n";
    let e = err(&text, &dir);
    assert_issue(&e, "colour", "unknown section");
    assert_issue(&e, "server.listen_on", "unknown field `listen_on`");
    assert_issue(&e, "tls.certificates[0].sni", "unknown field `sni`");
    assert_issue(&e, "hosts[0].grpc_web", "unknown field `grpc_web`");
    assert_issue(&e, "hosts[0].routes[0].retries", "unknown field `retries`");
    assert_issue(&e, "limits.h2.max_streams", "unknown field `max_streams`");
    assert_issue(&e, "limits.grpc.max_message", "unknown field `max_message`");
    assert_issue(&e, "limits.http3", "unknown field `http3`");
    assert_eq!(e.issues.len(), 8, "{e}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn wrong_types_name_the_key() {
    let dir = fixture_dir();
    let text = format!("{MINIMAL}\n[log]\nlevel = 3\n[admin]\nlisten = [1]\n").replace(
        "name = \"billing\"",
        "name = \"billing\"\nmax_connections = -1",
    );
    let e = err(&text, &dir);
    assert_issue(&e, "log.level", "invalid type");
    assert_issue(&e, "admin.listen", "invalid type");
    assert_issue(&e, "origins[1].max_connections", "-1");
    let syntax = err("[server\nlisten = 1", &dir);
    assert_eq!(syntax.issues.len(), 1);
    assert!(syntax.issues[0].message.contains("TOML syntax"), "{syntax}");
    let not_array = err("origins = 3", &dir);
    assert_issue(&not_array, "origins", "expected an array of tables");
    let not_table = err("server = 3\norigins = [1]", &dir);
    assert_issue(&not_table, "server", "expected a table, found integer");
    assert_issue(&not_table, "origins[0]", "expected a table, found integer");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn semantic_errors_are_all_reported_with_paths() {
    let dir = fixture_dir();
    let text = r#"
[server]
listen = ["0.0.0.0:443", "localhost", "0.0.0.0:443", "[::1]:0"]
backlog = 0
handshake_timeout_ms = 0
cpus = [1, 1]
shards = 3

[tls]
min_version = "1.1"

[[tls.certificates]]
cert = "certs/missing.pem"
key = "certs"
names = ["a.example.com", "bad name"]

[[tls.certificates]]
cert = "certs/example.com.pem"
key = "certs/example.com.key"
names = ["A.example.com"]

[limits.h2]
max_frame_size = 16383
initial_stream_window = 2147483648
connection_window = 1000
max_concurrent_streams = 0
flood_window_ms = 0
hpack_pool_bytes = 2000000

[limits.grpc]
max_message_bytes = 0
max_stream_buffer_bytes = 2048
max_connection_buffer_bytes = 1024
default_deadline_ms = 20000
max_deadline_ms = 10000

[log]
level = "loud"
format = "xml"

[admin]
listen = "0.0.0.0:443"

[[origins]]
name = "greeter"
url = "http://127.0.0.1:50051"

[[origins]]
name = "greeter"
url = "h2c://bad host:99999"
ca = "certs/example.com.pem"

[[origins]]
name = "lab"
url = "h2c://127.0.0.1:1"
sni = "lab.internal"

[[origins]]
name = ""
url = "https://[::1]:8443"
ca = "certs/nope.pem"
insecure_skip_verify = true
max_connections = 0
connect_timeout_ms = 0

[[hosts]]
names = ["api.example.com", "*.*.com", "foo:443"]
grpc_off_status = "nope"
non_grpc = "maybe"

[[hosts.routes]]
method = "/helloworld.Greeter/SayHello"
origin = "greter"

[[hosts.routes]]
method = "/helloworld.Greeter/SayHello"
origin = "greeter"
forwarded = "x-real-ip"

[[hosts.routes]]
service = "a.B"
prefix = "/"
origin = "greeter"

[[hosts.routes]]
method = "helloworld.Greeter/SayHello"
origin = "greeter"
authority = "a b"

[[hosts.routes]]
prefix = "x"
origin = "greeter"
default_deadline_ms = 0

[[hosts]]
names = ["API.example.com", "*"]
grpc_off_status = 0

[[hosts]]
names = []
"#;
    let e = err(text, &dir);
    let expected: &[(&str, &str)] = &[
        ("server.listen[1]", "not a socket address"),
        ("server.listen[2]", "duplicate address"),
        ("server.listen[3]", "port 0 cannot be shared"),
        ("server.backlog", "out of range 1..=65535"),
        ("server.handshake_timeout_ms", "0 is out of range"),
        ("server.cpus[1]", "listed twice"),
        ("server.shards", "3 shards but only 2 CPUs"),
        ("tls.min_version", "expected \"1.2\" or \"1.3\""),
        ("tls.certificates[0].cert", "cannot read"),
        ("tls.certificates[0].key", "not a regular file"),
        ("tls.certificates[0].names[1]", "not a valid SNI name"),
        (
            "tls.certificates[1].names[0]",
            "already names tls.certificates[0]",
        ),
        (
            "limits.h2.max_frame_size",
            "16383 is out of range 16384..=16777215",
        ),
        (
            "limits.h2.initial_stream_window",
            "out of range 65535..=2147483647",
        ),
        (
            "limits.h2.connection_window",
            "1000 is out of range 65535..=2147483647",
        ),
        ("limits.h2.max_concurrent_streams", "0 is out of range"),
        ("limits.h2.flood_window_ms", "0 is out of range"),
        (
            "limits.h2.hpack_pool_bytes",
            "2000000 is out of range 0..=1048576",
        ),
        ("limits.grpc.max_message_bytes", "0 is out of range"),
        (
            "limits.grpc.max_stream_buffer_bytes",
            "2048 is out of range 65535..=2147483647",
        ),
        (
            "limits.grpc.max_connection_buffer_bytes",
            "1024 is out of range 65535..=2147483647",
        ),
        (
            "limits.grpc.max_connection_buffer_bytes",
            "below max_stream_buffer_bytes",
        ),
        (
            "limits.grpc.default_deadline_ms",
            "longer than limits.grpc.max_deadline_ms",
        ),
        ("log.level", "\"loud\""),
        ("log.format", "expected \"text\" or \"json\""),
        ("admin.listen", "also a server.listen address"),
        ("origins[0].url", "scheme must be h2c:// or https://"),
        (
            "origins[1].name",
            "duplicate origin name \"greeter\" (also origins[0])",
        ),
        ("origins[1].url", "not a valid host name"),
        ("origins[2].sni", "only meaningful for an https:// origin"),
        ("origins[3].name", "expected a non-empty name"),
        ("origins[3].insecure_skip_verify", "conflicts with ca"),
        ("origins[3].ca", "cannot read"),
        ("origins[3].max_connections", "0 is out of range 1..=65535"),
        ("origins[3].connect_timeout_ms", "0 is out of range"),
        ("hosts[0].names[1]", "not a valid wildcard"),
        ("hosts[0].names[2]", "names carry no port"),
        (
            "hosts[0].grpc_off_status",
            "unknown gRPC status name \"nope\"",
        ),
        ("hosts[0].non_grpc", "expected \"forward\" or \"reject\""),
        (
            "hosts[0].routes[0].origin",
            "unknown origin \"greter\" (known: greeter, lab)",
        ),
        (
            "hosts[0].routes[1]",
            "method \"/helloworld.Greeter/SayHello\" is already routed by hosts[0].routes[0]",
        ),
        ("hosts[0].routes[1].forwarded", "\"x-real-ip\""),
        (
            "hosts[0].routes[2]",
            "exactly one of method, service or prefix",
        ),
        (
            "hosts[0].routes[3].method",
            "expected /package.Service/Method",
        ),
        ("hosts[0].routes[3].authority", "expected host or host:port"),
        ("hosts[0].routes[4].prefix", "starts with '/'"),
        (
            "hosts[0].routes[4].default_deadline_ms",
            "0 is out of range",
        ),
        (
            "hosts[1].names[0]",
            "\"API.example.com\" is already a name of hosts[0]",
        ),
        ("hosts[1].grpc_off_status", "not in 1..=16"),
        ("hosts[1].routes", "at least one"),
        ("hosts[2].names", "at least one name"),
        ("hosts[2].routes", "at least one"),
    ];
    for (p, m) in expected {
        assert_issue(&e, p, m);
    }
    assert_eq!(
        e.issues.len(),
        expected.len(),
        "unexpected extra issues:\n{e}"
    );
    // Display lists every one of them with its path.
    let shown = e.to_string();
    assert!(
        shown.starts_with(&format!("{} configuration errors:", expected.len())),
        "{shown}"
    );
    for (p, _) in expected {
        assert!(
            shown.contains(&format!("\n  {p}: ")),
            "{p} missing from:\n{shown}"
        );
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn empty_file_lists_what_is_required() {
    let e = Config::from_str("").unwrap_err();
    assert_issue(&e, "tls.certificates", "at least one");
    assert_issue(&e, "origins", "at least one");
    assert_issue(&e, "hosts", "at least one");
}

#[test]
fn status_names_and_codes() {
    let dir = fixture_dir();
    for (spelled, code) in [
        ("\"unimplemented\"", 12),
        ("\"PERMISSION_DENIED\"", 7),
        ("\"permissiondenied\"", 7),
        ("\"Unavailable\"", 14),
        ("16", 16),
        ("1", 1),
    ] {
        let text = MINIMAL.replace(
            "names = [\"*\"]",
            &format!("names = [\"*\"]\ngrpc_off_status = {spelled}"),
        );
        let c = Config::from_str_in(&text, &dir).unwrap_or_else(|e| panic!("{spelled}: {e}"));
        assert_eq!(c.hosts[0].grpc_off_status, code, "{spelled}");
    }
    for bad in ["\"OK\"", "0", "17", "-3", "\"teapot\""] {
        let text = MINIMAL.replace(
            "names = [\"*\"]",
            &format!("names = [\"*\"]\ngrpc_off_status = {bad}"),
        );
        let e = err(&text, &dir);
        assert!(
            e.pairs().any(|(p, _)| p == "hosts[0].grpc_off_status"),
            "{bad}: {e}"
        );
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn origin_urls() {
    let dir = fixture_dir();
    let ok = [
        (
            "h2c://127.0.0.1:50051",
            OriginScheme::H2c,
            "127.0.0.1",
            50051,
        ),
        ("h2c://Origin.Local", OriginScheme::H2c, "origin.local", 80),
        ("https://[::1]:8443/", OriginScheme::Https, "::1", 8443),
        (
            "https://api.internal",
            OriginScheme::Https,
            "api.internal",
            443,
        ),
    ];
    for (url, scheme, host, port) in ok {
        let text = MINIMAL.replace("h2c://127.0.0.1:50051", url);
        let c = Config::from_str_in(&text, &dir).unwrap_or_else(|e| panic!("{url}: {e}"));
        let u = &c.origins[0].url;
        assert_eq!(
            (u.scheme, u.host.as_str(), u.port),
            (scheme, host, port),
            "{url}"
        );
    }
    for bad in [
        "h2c://",
        "h2c://host:0",
        "h2c://host:65536",
        "h2c://host:port",
        "https://user@host",
        "https://host/path",
        "https://[::1",
        "https://[zz]:1",
        "grpc://host:1",
        "h2c://ho st:1",
    ] {
        let text = MINIMAL.replace("h2c://127.0.0.1:50051", bad);
        let e = err(&text, &dir);
        assert!(e.pairs().any(|(p, _)| p == "origins[0].url"), "{bad}: {e}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn quick_mode_equals_the_equivalent_toml() {
    let dir = fixture_dir();
    let cert = dir.join("certs/example.com.pem").display().to_string();
    let key = dir.join("certs/example.com.key").display().to_string();
    let ca = dir.join("certs/internal-ca.pem").display().to_string();
    let opts = QuickOptions {
        listen: vec!["127.0.0.1:8443".into(), "[::1]:8443".into()],
        cert: cert.clone(),
        key: key.clone(),
        origin: "https://origin.internal:9000".into(),
        origin_ca: Some(ca.clone()),
        origin_insecure: false,
        shards: Some(2),
    };
    let quick = Config::quick(&opts).unwrap_or_else(|e| panic!("{e}"));
    let from_printed =
        Config::from_str(&opts.to_toml()).unwrap_or_else(|e| panic!("{e}\n{}", opts.to_toml()));
    assert_eq!(quick, from_printed);
    let hand_written = format!(
        r#"
[server]
listen = ["127.0.0.1:8443", "[::1]:8443"]
shards = 2
[[tls.certificates]]
cert = "{cert}"
key = "{key}"
[[origins]]
name = "origin"
url = "https://origin.internal:9000"
ca = "{ca}"
[[hosts]]
names = ["*"]
[[hosts.routes]]
prefix = "/"
origin = "origin"
"#
    );
    assert_eq!(
        quick,
        Config::from_str(&hand_written).unwrap_or_else(|e| panic!("{e}"))
    );
    assert_eq!(quick.server.shards, 2);
    assert_eq!(
        quick.hosts[0].routes[0].matcher,
        RouteMatch::Prefix("/".into())
    );
    // Relative paths become absolute, so the printed file means the same anywhere.
    let rel = QuickOptions {
        cert: "certs/a.pem".into(),
        ..opts.clone()
    };
    let raw = rel.to_raw();
    assert!(Path::new(&raw.tls.certificates[0].cert).is_absolute());
    assert!(raw.tls.certificates[0].cert.ends_with("certs/a.pem"));
    // Quick mode goes through the same validation.
    let bad = QuickOptions {
        origin: "http://x".into(),
        cert: "/nonexistent.pem".into(),
        key: String::new(),
        ..opts
    };
    let e = Config::quick(&bad).unwrap_err();
    assert_issue(&e, "origins[0].url", "scheme");
    assert_issue(&e, "tls.certificates[0].cert", "cannot read");
    assert_issue(&e, "tls.certificates[0].key", "missing");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn truncated_and_corrupted_files_never_panic() {
    let dir = fixture_dir();
    assert!(Config::from_str_in(EXAMPLE, &dir).is_ok());
    let mut rejected = 0;
    let cuts = (0..EXAMPLE.len())
        .step_by(13)
        .filter(|&i| EXAMPLE.is_char_boundary(i));
    for cut in cuts {
        // Every prefix either validates or is rejected with at least one located issue.
        match Config::from_str_in(&EXAMPLE[..cut], &dir) {
            Ok(_) => {}
            Err(e) => {
                assert!(!e.issues.is_empty());
                rejected += 1;
            }
        }
    }
    assert!(rejected > 0);
    // Swap pairs of bytes (ASCII only) to corrupt keys, values and brackets.
    let bytes = EXAMPLE.as_bytes();
    for i in (1..bytes.len()).step_by(29) {
        if bytes[i].is_ascii() && bytes[i - 1].is_ascii() {
            let mut b = bytes.to_vec();
            b.swap(i, i - 1);
            let text = String::from_utf8(b).unwrap();
            if let Err(e) = Config::from_str_in(&text, &dir) {
                assert!(e.issues.iter().all(|i| !i.message.is_empty()));
            }
        }
    }
    std::fs::remove_dir_all(dir).unwrap();
}
