//! The `ringedge-bench` binary as child processes: `cert`, `origin` and `load` with outputs.
//! Loopback only; every child is killed by its PID (also when the test fails).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_ringedge-bench");

/// Kills the child on drop.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `origin` on an ephemeral port and waits (bounded) for its "listening" line, which
/// names the port it bound (no port is probed free, closed and bound again: nothing else can
/// take it in between).
fn start_origin(extra: &[&str]) -> (Guard, u16) {
    let mut child = Command::new(BIN)
        .args(["origin", "--listen", "127.0.0.1:0"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let guard = Guard(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(out).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("origin printed its address");
    assert!(line.contains("listening"), "{line}");
    // "ringedge-bench origin listening on SCHEME://127.0.0.1:PORT (N shard(s))"
    let port = line
        .split_whitespace()
        .find_map(|w| w.rsplit_once("127.0.0.1:"))
        .and_then(|(_, p)| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"));
    (guard, port)
}

fn run_load(args: &[&str]) -> std::process::Output {
    let start = Instant::now();
    let child = Command::new(BIN)
        .arg("load")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(start.elapsed() < Duration::from_secs(60));
    out
}

#[test]
fn cert_origin_load_and_outputs() {
    let dir = std::env::temp_dir().join(format!("ringedge-cli-test-{}", std::process::id()));
    let st = Command::new(BIN)
        .args([
            "cert",
            "--out",
            dir.to_str().unwrap(),
            "--names",
            "localhost,127.0.0.1",
        ])
        .status()
        .unwrap();
    assert!(st.success());
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let (_origin, port) = start_origin(&[
        "--cert",
        cert.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
        "--status",
        "7",
    ]);
    let json = dir.join("out.json");
    let hlog = dir.join("out.hlog");
    let hgrm = dir.join("out.hgrm");
    let svg = dir.join("out.svg");
    let out = run_load(&[
        &format!("https://localhost:{port}/helloworld.Greeter/SayHello"),
        "--ca",
        cert.to_str().unwrap(),
        "--rate",
        "500",
        "--duration",
        "1s",
        "-c",
        "2",
        "--json",
        json.to_str().unwrap(),
        "--hdr-log",
        hlog.to_str().unwrap(),
        "--hgrm",
        hgrm.to_str().unwrap(),
        "--svg",
        svg.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("PERMISSION_DENIED"), "{stdout}");
    // Not a terminal: no progress line.
    assert!(!stdout.contains("| done "), "{stdout}");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(v["requests"]["sent"], 500);
    assert_eq!(v["status"]["PERMISSION_DENIED"], v["requests"]["completed"]);
    // `merge` reads the interval log back.
    let merged = Command::new(BIN)
        .args(["merge", hlog.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(merged.status.success());
    assert!(std::fs::read_to_string(&hgrm)
        .unwrap()
        .contains("Percentile"));
    assert!(std::fs::read_to_string(&svg).unwrap().contains("<svg"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_flags_fail_with_the_flag_named() {
    let out = run_load(&["h2c://127.0.0.1:1", "--rate", "0"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--rate"));
    let out = Command::new(BIN)
        .args(["cert", "--out", "/tmp", "--names", " , "])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--names"));
}
