//! The built `ringedge` binary: `check` on good and bad files (output and exit codes),
//! `run` refusing honestly, `proxy --print-config` printing a file that `check` accepts.

use std::path::PathBuf;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_ringedge");

fn dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ringedge-cli-test-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(d.join("certs")).unwrap();
    for f in [
        "example.com.pem",
        "example.com.key",
        "billing.example.net.pem",
        "billing.example.net.key",
        "internal-ca.pem",
    ] {
        std::fs::write(d.join("certs").join(f), "x").unwrap();
    }
    d
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("RINGEDGE_LOG")
        .output()
        .expect("spawn ringedge")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn check_accepts_the_example_file() {
    let d = dir("good");
    let file = d.join("ringedge.toml");
    std::fs::write(&file, include_str!("../ringedge.example.toml")).unwrap();
    let out = run(&["check", "--config", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).trim(),
        "config OK: 3 hosts, 4 routes, 2 origins"
    );
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn check_lists_every_error_and_exits_2() {
    let d = dir("bad");
    let file = d.join("bad.toml");
    std::fs::write(
        &file,
        r#"
[[tls.certificates]]
cert = "certs/none.pem"
key = "certs/example.com.key"
[limits.h2]
max_frame_size = 1
[[origins]]
name = "greeter"
url = "h2c://127.0.0.1:50051"
[[origins]]
name = "billing"
url = "h2c://127.0.0.1:50052"
[[hosts]]
names = ["*"]
[[hosts.routes]]
prefix = "/"
origin = "greter"
"#,
    )
    .unwrap();
    let out = run(&["check", "--config", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    let err = text(&out.stderr);
    assert!(err.contains("3 configuration errors:"), "{err}");
    assert!(
        err.contains("tls.certificates[0].cert: cannot read"),
        "{err}"
    );
    assert!(
        err.contains("limits.h2.max_frame_size: 1 is out of range 16384..=16777215"),
        "{err}"
    );
    assert!(
        err.contains(
            r#"hosts[0].routes[0].origin: unknown origin "greter" (known: greeter, billing)"#
        ),
        "{err}"
    );

    std::fs::write(
        &file,
        "[server]\nlisten = [\"0.0.0.0:443\"]\nbogus = true\n",
    )
    .unwrap();
    let out = run(&["check", "--config", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("server.bogus: unknown field `bogus`"),
        "{}",
        text(&out.stderr)
    );

    let out = run(&[
        "check",
        "--config",
        d.join("missing.toml").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("cannot read"),
        "{}",
        text(&out.stderr)
    );
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn run_refuses_unusable_certificates_before_starting_anything() {
    let d = dir("run");
    let file = d.join("ringedge.toml");
    std::fs::write(&file, include_str!("../ringedge.example.toml")).unwrap();
    let out = run(&[
        "run",
        "--config",
        file.to_str().unwrap(),
        "--log-level",
        "warn",
    ]);
    // The example's certificate files exist but hold no PEM: the proxy must name the file and
    // the problem and start nothing (no listener is bound).
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("tls.certificates[0]"), "{err}");
    assert!(err.contains("example.com.pem"), "{err}");
    assert!(err.contains("no CERTIFICATE block found"), "{err}");
    let out = run(&["run", "--config", d.join("missing.toml").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let out = run(&[
        "run",
        "--config",
        file.to_str().unwrap(),
        "--log-level",
        "inf",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--log-level \"inf\""),
        "{}",
        text(&out.stderr)
    );
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn proxy_print_config_is_a_valid_equivalent_file() {
    let d = dir("quick");
    let cert = d.join("certs/example.com.pem");
    let key = d.join("certs/example.com.key");
    let args = [
        "proxy",
        "--listen",
        "127.0.0.1:8443",
        "--cert",
        cert.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
        "--origin",
        "h2c://127.0.0.1:50051",
        "--shards",
        "1",
    ];
    let mut printing = args.to_vec();
    printing.push("--print-config");
    let out = run(&printing);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let printed = text(&out.stdout);
    assert!(
        printed.contains("url = \"h2c://127.0.0.1:50051\""),
        "{printed}"
    );
    let file = d.join("printed.toml");
    std::fs::write(&file, &printed).unwrap();
    let out = run(&["check", "--config", file.to_str().unwrap()]);
    assert_eq!(
        text(&out.stdout).trim(),
        "config OK: 1 hosts, 1 routes, 1 origins",
        "{}",
        text(&out.stderr)
    );

    // Without --print-config it validates and then refuses like `run`.
    let out = run(&args);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let out = run(&[
        "proxy",
        "--cert",
        "/nope.pem",
        "--key",
        "/nope.key",
        "--origin",
        "ftp://x",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("origins[0].url") && err.contains("tls.certificates[0].key"),
        "{err}"
    );
    std::fs::remove_dir_all(d).unwrap();
}
