//! The load runner against the test origin, in-process, loopback only. Every run is bounded by
//! a request count or a short duration (plus the runner's drain timeout). No assertion depends
//! on timing: counts, status codes, the schedule's intended sends, and the outputs' structure.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use ringedge_bench::args::{Cli, Command, OriginOptions};
use ringedge_bench::load::{self, LoadResult};
use ringedge_bench::origin::{self, OriginHandle};
use ringedge_bench::recorder::TransportErrorKind;
use ringedge_bench::{cert, merge, report};

fn origin_with(f: impl FnOnce(&mut OriginOptions)) -> OriginHandle {
    let mut o = OriginOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        tls: None,
        response_size: None,
        delay: Duration::ZERO,
        status: 0,
        message: None,
        early_trailers_reset: false,
        shards: 1,
    };
    f(&mut o);
    origin::start(&o).expect("origin starts")
}

fn load(line: &str) -> LoadResult {
    let args = std::iter::once("ringedge-bench").chain(line.split_whitespace());
    let cli = Cli::try_parse_from(args).expect("valid command line");
    let Command::Load(l) = cli.command else {
        panic!("not a load command")
    };
    let opts = l.validate().expect("valid options");
    load::run(&opts).expect("run completes")
}

fn h2c(addr: SocketAddr) -> String {
    format!("h2c://{addr}")
}

#[test]
fn unary_calls_all_complete_ok() {
    let o = origin_with(|_| {});
    let r = load(&format!(
        "load {}/helloworld.Greeter/SayHello -n 600 -c 3 -m 8 --size 64 --no-progress",
        h2c(o.local_addr())
    ));
    let rec = &r.recorder;
    assert_eq!(rec.sent, 600);
    assert_eq!(rec.completed(), 600);
    assert_eq!(rec.status.codes[0], 600);
    assert_eq!(rec.error_count(), 0);
    assert_eq!(r.messages.calls, 600);
    assert_eq!(r.messages.received, 600);
}

#[test]
fn injected_status_is_counted_by_code() {
    let o = origin_with(|o| {
        o.status = 7;
        o.message = Some("blocked by test".into());
    });
    let r = load(&format!(
        "load {} -n 300 -c 2 -m 4 --no-progress",
        h2c(o.local_addr())
    ));
    assert_eq!(r.recorder.status.codes[7], 300, "PERMISSION_DENIED");
    assert_eq!(r.recorder.status.total(), 300);
    assert_eq!(r.recorder.error_count(), 0);
    drop(o);

    // Per-request injection through metadata, on a normal origin.
    let o = origin_with(|_| {});
    let r = load(&format!(
        "load {} -n 200 --metadata x-status:14 --metadata x-message:down --no-progress",
        h2c(o.local_addr())
    ));
    assert_eq!(r.recorder.status.codes[14], 200, "UNAVAILABLE");
}

#[test]
fn streaming_shapes_move_the_asked_message_counts() {
    let o = origin_with(|_| {});
    let url = h2c(o.local_addr());

    let r = load(&format!(
        "load {url} -n 100 -c 2 -m 4 --call server-stream --messages 5 --no-progress"
    ));
    assert_eq!(r.recorder.status.codes[0], 100);
    assert_eq!((r.messages.sent, r.messages.received), (100, 500));

    let r = load(&format!(
        "load {url} -n 100 -c 2 -m 4 --call client-stream --messages 5 --size 3000 --no-progress"
    ));
    assert_eq!(r.recorder.status.codes[0], 100);
    assert_eq!((r.messages.sent, r.messages.received), (500, 100));

    let r = load(&format!(
        "load {url} -n 50 -c 1 -m 4 --call bidi --messages 6 --size 20000 --no-progress"
    ));
    assert_eq!(r.recorder.status.codes[0], 50);
    assert_eq!((r.messages.sent, r.messages.received), (300, 300));
}

#[test]
fn early_trailers_then_reset_gives_the_origin_status() {
    let o = origin_with(|o| {
        o.early_trailers_reset = true;
        o.status = 9;
    });
    // Client-streaming calls with a large body: the origin answers and resets long before the
    // request ended; the status must be the origin's, not CANCELLED or a reset error.
    let r = load(&format!(
        "load {} -n 100 -c 2 -m 4 --call client-stream --messages 20 --size 30000 --no-progress",
        h2c(o.local_addr())
    ));
    assert_eq!(r.recorder.status.codes[9], 100, "FAILED_PRECONDITION");
    assert_eq!(r.recorder.error_count(), 0, "{:?}", r.recorder.errors);
}

#[test]
fn open_loop_sends_exactly_the_scheduled_calls() {
    let o = origin_with(|_| {});
    // 2000/s for 1 s after a 0.5 s warm-up: intended times i/2000 for i < 3000. Warm-up holds
    // i < 1000; the measured period holds exactly 2000, however late the machine runs.
    let r = load(&format!(
        "load {} --rate 2000 -z 1s --warmup 500ms -c 2 -m 16 --no-progress",
        h2c(o.local_addr())
    ));
    let rec = &r.recorder;
    assert_eq!(rec.sent, 2000);
    assert_eq!(rec.warmup_excluded, 1000);
    assert_eq!(rec.completed() + rec.error_count(), 2000);
    assert_eq!(r.messages.calls, 3000);
    // Corrected latency (from intended) is never below the uncorrected one (from the send).
    assert!(rec.corrected.max() >= rec.uncorrected.max());
    assert!(rec.corrected.value_at_quantile(0.5) >= rec.uncorrected.value_at_quantile(0.5));
}

#[test]
fn two_shards_merge_to_the_total() {
    let o = origin_with(|_| {});
    let r = load(&format!(
        "load {} -n 999 -c 4 -m 8 --shards 2 --no-progress",
        h2c(o.local_addr())
    ));
    assert_eq!(r.recorder.sent, 999);
    assert_eq!(r.recorder.status.codes[0], 999);
    assert_eq!(r.recorder.corrected.len(), 999);
}

#[test]
fn tls_with_ca_file_and_insecure() {
    let dir = std::env::temp_dir().join(format!("ringedge-harness-tls-{}", std::process::id()));
    let (c, k) = cert::write_self_signed(&dir, &["localhost", "127.0.0.1"]).unwrap();
    let o = origin_with(|o| o.tls = Some((c.clone(), k.clone())));
    let port = o.local_addr().port();
    let r = load(&format!(
        "load https://localhost:{port} --ca {} -n 200 -c 2 --no-progress",
        c.display()
    ));
    assert_eq!(r.recorder.status.codes[0], 200);
    let r = load(&format!(
        "load https://127.0.0.1:{port} --insecure -n 100 --no-progress"
    ));
    assert_eq!(r.recorder.status.codes[0], 100);
    // h2c against a TLS origin fails below gRPC, counted, and the run still ends by itself.
    let r = load(&format!(
        "load h2c://127.0.0.1:{port} -z 300ms --no-progress"
    ));
    assert_eq!(r.recorder.status.total(), 0);
    assert!(r.recorder.error_count() > 0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn connect_failures_are_counted_and_the_run_ends() {
    // Bind then drop a listener: its port is (almost certainly) closed now.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let r = load(&format!(
        "load h2c://127.0.0.1:{port} -z 300ms -c 2 --no-progress"
    ));
    assert_eq!(r.recorder.completed(), 0);
    assert!(
        r.recorder
            .errors
            .get(&TransportErrorKind::ConnectFailed)
            .copied()
            .unwrap_or(0)
            >= 2
    );
}

#[test]
fn outputs_parse_back() {
    let o = origin_with(|_| {});
    let r = load(&format!(
        "load {} --rate 1000 -z 1500ms -c 2 -m 8 --no-progress",
        h2c(o.local_addr())
    ));
    let (rec, meta) = (&r.recorder, &r.meta);
    let json: serde_json::Value = serde_json::from_str(&report::json_string(rec, meta)).unwrap();
    assert_eq!(json["schema"], report::JSON_SCHEMA);
    assert_eq!(json["requests"]["sent"], 1500);
    assert_eq!(json["requests"]["completed"], rec.completed());
    assert_eq!(json["status"]["OK"], rec.status.codes[0]);
    assert!(json["latency_us"]["corrected"]["p99"].is_u64());
    assert!(json["meta"]["settings"]["mode"]
        .as_str()
        .unwrap()
        .starts_with("open"));
    // The interval log reads back with the same number of samples.
    let log = report::interval_log(rec, meta, Some("test")).unwrap();
    let intervals = merge::parse_log("run", &log).unwrap();
    let total: u64 = intervals.iter().map(|i| i.histogram.len()).sum();
    assert_eq!(total, rec.completed());
    assert!(intervals.iter().all(|i| i.tag.as_deref() == Some("test")));
    assert!(report::hgrm(&rec.corrected).contains("Percentile"));
    assert!(report::svg(rec, "t").starts_with("<svg"));
}

#[test]
fn delayed_origin_answers_after_the_delay() {
    let o = origin_with(|o| o.delay = Duration::from_millis(20));
    let r = load(&format!(
        "load {} -n 40 -c 1 -m 8 --no-progress",
        h2c(o.local_addr())
    ));
    assert_eq!(r.recorder.status.codes[0], 40);
    // A lower bound is not a timing assertion on the machine's speed: the origin waits at least
    // its delay before answering.
    assert!(r.recorder.uncorrected.min() >= 20_000);
}

#[test]
fn open_loop_sends_the_whole_schedule_or_counts_what_it_could_not() {
    // A schedule the target can serve: every request due before the end is sent, even the
    // ones whose slot came late (the count does not depend on when the ticker runs).
    let o = origin_with(|_| {});
    let r = load(&format!(
        "load {} --rate 400 -z 500ms -c 2 -m 4 --shards 2 --no-progress",
        h2c(o.local_addr())
    ));
    assert_eq!(r.recorder.sent, 200);
    assert_eq!(r.recorder.completed(), 200);
    assert_eq!(r.recorder.error_count(), 0);

    // A target that cannot keep up: 2 slots, each call held at least 100 ms, so at most
    // 2 * (0.2 s + 3 s drain) / 0.1 s = 64 of the 200 due requests can ever be sent. The rest
    // are counted as `not_sent`, never silently dropped.
    let slow = origin_with(|o| o.delay = Duration::from_millis(100));
    let r = load(&format!(
        "load {} --rate 1000 -z 200ms -c 1 -m 2 --shards 1 --no-progress",
        h2c(slow.local_addr())
    ));
    let rec = &r.recorder;
    let not_sent = rec
        .errors
        .get(&TransportErrorKind::NotSent)
        .copied()
        .unwrap_or(0);
    assert!(rec.sent <= 64, "sent {}", rec.sent);
    assert!(not_sent >= 136, "not_sent {not_sent}");
    assert_eq!(rec.sent + not_sent, 200);
    assert_eq!(rec.completed(), rec.sent);
}
