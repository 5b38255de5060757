//! Fuzz the `ringedge-bench` command line (`bench/src/args.rs`): clap's `Cli::try_parse_from`,
//! then `LoadArgs::validate` / `OriginArgs::validate`.
//!
//! The input is split on NUL bytes into arguments (any bytes, not only UTF-8). An argument of
//! one byte 0x01..=0x40 stands for that entry of `POOL` (1-based: flags and meaningful
//! values), so the fuzzer reaches valid command lines and the validators behind clap quickly;
//! the subcommand is then usually one byte (1 = load, 2 = origin).
//!
//! Properties, beyond "never panics": validated options satisfy every documented range and
//! cross-flag rule (see `check_load` / `check_origin`), an `ArgsError` names a flag and its
//! Display starts with it, and a validated open-loop schedule has a positive rate and
//! non-decreasing intended send times.
#![no_main]

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::time::Duration;

use clap::Parser;
use libfuzzer_sys::fuzz_target;
use ringedge_bench::args::{
    ArgsError, CallKind, Cli, Command, LoadOptions, Mode, OriginOptions, Payload, Scheme, Stop,
    Tls, MAX_CONNECTIONS, MAX_MESSAGES, MAX_MESSAGE_SIZE, MAX_SHARDS, MAX_SPIN_US, MAX_STREAMS,
};
use ringedge_bench::schedule::{Schedule, MAX_RATE};

const POOL: [&str; 64] = [
    "load",
    "origin",
    "merge",
    "cert",
    "h2c://127.0.0.1:50051",
    "https://[::1]:443/a.B/C",
    "https://h/pkg.Svc/Do",
    "--connections",
    "--streams",
    "--rate",
    "--load-schedule",
    "--load-start",
    "--load-step",
    "--load-end",
    "--load-step-duration",
    "--load-max-duration",
    "--duration",
    "--requests",
    "--warmup",
    "--shards",
    "--spin-us",
    "--call",
    "--messages",
    "--size",
    "--payload",
    "--metadata",
    "--authority",
    "--ca",
    "--insecure",
    "--no-progress",
    "--json",
    "--listen",
    "--cert",
    "--key",
    "--response-size",
    "--delay",
    "--status",
    "--message",
    "--early-trailers-reset",
    "const",
    "step",
    "line",
    "bidi",
    "server-stream",
    "0",
    "1",
    "2",
    "16",
    "17",
    "1024",
    "65536",
    "100000",
    "1e9",
    "-1",
    "0.001",
    "NaN",
    "inf",
    "1ns",
    "0s",
    "10s",
    "x-user: bob",
    "grpc-timeout: 1S",
    "127.0.0.1:50051",
    "c.pem",
];

fn arg(piece: &[u8]) -> OsString {
    match piece {
        [b @ 1..=0x40] => OsString::from(POOL[usize::from(*b - 1)]),
        _ => OsString::from_vec(piece.to_vec()),
    }
}

fn check_error(e: &ArgsError) {
    assert!(e.flag == "URL" || e.flag.starts_with("--"), "{e:?}");
    assert!(!e.reason.is_empty());
    assert!(e.to_string().starts_with(e.flag));
}

fn check_schedule(s: &Schedule) {
    let samples = [
        Duration::ZERO,
        Duration::from_millis(1),
        Duration::from_secs(1),
        Duration::from_secs(3600),
        Duration::from_secs(1 << 40),
    ];
    for t in samples {
        let r = s.rate_at(t);
        // Positive (so every request has a due time), never NaN; an increasing schedule
        // without an end may grow past MAX_RATE (or to +inf) far out in time.
        assert!(r > 0.0, "rate {r} at {t:?}: {s:?}");
    }
    if let Schedule::Constant { rate } = s {
        assert!(*rate > 0.0 && *rate <= MAX_RATE);
    }
    // Due times cost no more far out (a step schedule's used to be walked one step duration
    // at a time: 1 ns steps with a tiny start rate never returned).
    let mut prev = Duration::ZERO;
    for i in [0, 1, 2, 3, 1 << 20, u64::MAX / 2] {
        let t = s.intended(i);
        assert!(t >= prev, "intended({i}) = {t:?} < {prev:?}: {s:?}");
        prev = t;
    }
    assert_eq!(s.intended(0), Duration::ZERO);
}

fn check_load(o: &LoadOptions) {
    assert!((1..=MAX_CONNECTIONS).contains(&o.connections));
    assert!((1..=MAX_STREAMS).contains(&o.streams));
    assert!((1..=MAX_SHARDS).contains(&o.shards) && o.shards <= o.connections);
    assert!(o.spin <= std::time::Duration::from_micros(MAX_SPIN_US));
    assert!((1..=MAX_MESSAGES).contains(&o.messages));
    if o.messages > 1 {
        assert_ne!(o.call, CallKind::Unary);
    }
    if let Payload::Generated(n) = o.payload {
        assert!(n <= MAX_MESSAGE_SIZE);
    }
    match o.stop {
        Stop::Duration(d) => assert!(!d.is_zero()),
        Stop::Requests(n) => assert!(n > 0),
    }
    match o.target.scheme {
        Scheme::H2c => assert_eq!(o.tls, Tls::None),
        Scheme::Https => assert_ne!(o.tls, Tls::None),
    }
    assert_ne!(o.target.port, 0);
    let mut parts = o.target.path.split('/');
    assert_eq!(parts.next(), Some(""));
    let (svc, method) = (parts.next().unwrap(), parts.next().unwrap());
    assert!(!svc.is_empty() && !method.is_empty() && parts.next().is_none());
    assert!(!o.authority.is_empty() && o.authority.bytes().all(|b| (b'!'..=b'~').contains(&b)));
    for (k, v) in &o.metadata {
        assert!(!k.is_empty() && *k == k.to_ascii_lowercase() && !k.starts_with("grpc-"));
        assert!(![
            "connection",
            "te",
            "transfer-encoding",
            "upgrade",
            "keep-alive",
            "content-type"
        ]
        .contains(&k.as_str()));
        assert!(v.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b)));
        assert_eq!(v.trim(), v);
    }
    if let Mode::OpenLoop(s) = &o.mode {
        check_schedule(s);
    }
}

fn check_origin(o: &OriginOptions) {
    assert!(o.status <= 16);
    assert!((1..=MAX_SHARDS).contains(&o.shards));
    if let Some(n) = o.response_size {
        assert!(n <= MAX_MESSAGE_SIZE);
    }
    if let Some(m) = &o.message {
        assert!(!m.chars().any(char::is_control));
    }
}

fuzz_target!(|data: &[u8]| {
    let mut argv = vec![OsString::from("ringedge-bench")];
    argv.extend(data.split(|&b| b == 0).take(64).map(arg));
    let Ok(cli) = Cli::try_parse_from(argv) else {
        return;
    };
    match cli.command {
        Command::Load(l) => match l.validate() {
            Ok(o) => check_load(&o),
            Err(e) => check_error(&e),
        },
        Command::Origin(a) => match a.validate() {
            Ok(o) => check_origin(&o),
            Err(e) => check_error(&e),
        },
        Command::Merge(m) => assert!(!m.files.is_empty()),
        Command::Cert(_) => {}
    }
});
