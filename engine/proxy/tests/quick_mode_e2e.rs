//! The `ringedge` binary itself, end to end: `ringedge proxy --listen --cert --key --origin`
//! (the one-line mode) run as a child process in front of a tonic origin, called through TLS
//! by a tonic client, then stopped with SIGTERM (sent to its PID), after which it must exit 0.
//!
//! This lives in the proxy package because only here does Cargo build the binary for the test
//! (`CARGO_BIN_EXE_ringedge`); the peers and certificates come from the e2e harness.
//! Every wait is bounded; the child is killed (by its PID) if a test fails half-way.

use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use ringedge_e2e::{self as e2e, pattern, pb, ClientTls, OriginOpts, TestOrigin, TestPki};

/// How long the proxy may take to start listening, and to exit after SIGTERM (a pass takes a
/// fraction of a second; a loaded CI machine may need seconds).
const PROCESS_BOUND: Duration = Duration::from_secs(30);

/// How many free ports to try when the probed one was taken before the child bound it.
const PORT_ATTEMPTS: usize = 5;

/// The child proxy; killed on drop if it is still running.
struct Proxy {
    child: Child,
    log: std::path::PathBuf,
}

impl Proxy {
    fn spawn(args: &[String], log: &Path) -> Proxy {
        let log_file = std::fs::File::create(log).expect("create the proxy's log file");
        let child = Command::new(env!("CARGO_BIN_EXE_ringedge"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("clone log file"))
            .stderr(log_file)
            .spawn()
            .expect("start the ringedge binary");
        Proxy {
            child,
            log: log.to_path_buf(),
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the proxy accepts TCP connections on `port`: `Err` with its exit status if
    /// it exited first (e.g. the port was taken); panics with its log past [`PROCESS_BOUND`].
    fn wait_listening(&mut self, port: u16) -> Result<(), ExitStatus> {
        let until = Instant::now() + PROCESS_BOUND;
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(status);
            }
            if Instant::now() >= until {
                panic!(
                    "ringedge did not listen on {port} within {PROCESS_BOUND:?}:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGTERM to the child's PID and waits (bounded) for it to exit.
    fn terminate(&mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM {pid} failed");
        let until = Instant::now() + PROCESS_BOUND;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for ringedge") {
                return status;
            }
            if Instant::now() >= until {
                panic!(
                    "ringedge did not exit within {PROCESS_BOUND:?} of SIGTERM:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs `ringedge proxy` in front of `origin_url` (extra args appended), calls it with tonic
/// (unary and a server stream), stops it with SIGTERM and checks it exits 0.
fn quick_mode_round_trip(pki: &TestPki, origin: &TestOrigin, origin_args: &[String]) {
    let leaf = pki.leaf(&["api.test"]);
    // The binary needs a concrete port: one that was free a moment ago. Should something else
    // take it before the child binds it, the child exits; try another port.
    let mut attempt = 0;
    let (port, mut proxy) = loop {
        attempt += 1;
        let port = e2e::free_port();
        let mut args: Vec<String> = vec![
            "proxy".into(),
            "--listen".into(),
            format!("127.0.0.1:{port}"),
            "--cert".into(),
            leaf.cert_path.display().to_string(),
            "--key".into(),
            leaf.key_path.display().to_string(),
            "--shards".into(),
            "1".into(),
        ];
        args.extend_from_slice(origin_args);
        let mut proxy = Proxy::spawn(&args, &pki.dir().join("ringedge.log"));
        match proxy.wait_listening(port) {
            Ok(()) => break (port, proxy),
            Err(status) if attempt >= PORT_ATTEMPTS => {
                panic!("ringedge exited early ({status}):\n{}", proxy.log())
            }
            Err(_) => continue,
        }
    };
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    e2e::run(async {
        let tls = ClientTls::new(pki, "api.test");
        let ch = e2e::bounded("connect", e2e::connect(addr, Some(&tls)))
            .await
            .expect("TLS connect to the ringedge binary");
        let mut c = e2e::echo_client(ch);
        let r = e2e::bounded(
            "unary",
            c.unary(pb::EchoRequest {
                payload: pattern(5000),
                behavior: None,
            }),
        )
        .await
        .unwrap_or_else(|s| panic!("unary through the binary: {s:?}\n{}", proxy.log()));
        assert_eq!(r.into_inner().payload, pattern(5000));
        let b = pb::Behavior {
            stream_count: 3,
            response_size: 100,
            ..Default::default()
        };
        let mut s = e2e::bounded(
            "server stream",
            c.server_stream(pb::EchoRequest {
                payload: vec![],
                behavior: Some(b),
            }),
        )
        .await
        .expect("server stream through the binary")
        .into_inner();
        let mut n = 0;
        while let Some(m) = e2e::bounded("message", s.message()).await.unwrap() {
            assert_eq!(m.seq, n);
            n += 1;
        }
        assert_eq!(n, 3);
    });
    assert_eq!(origin.requests().len(), 2);
    let status = proxy.terminate();
    assert!(
        status.success(),
        "ringedge exited with {status} after SIGTERM:\n{}",
        proxy.log()
    );
}

#[test]
fn quick_mode_binary_forwards_to_an_h2c_origin_and_exits_0_on_sigterm() {
    let _g = e2e::serial();
    let pki = TestPki::new();
    let origin = TestOrigin::start(OriginOpts::h2c());
    let args = ["--origin".to_string(), format!("h2c://{}", origin.addr())];
    quick_mode_round_trip(&pki, &origin, &args);
}

#[test]
fn quick_mode_binary_forwards_to_a_tls_origin_with_origin_ca() {
    let _g = e2e::serial();
    let pki = TestPki::new();
    // The URL host (an IP) is the SNI / verified name: the origin's certificate names it.
    let origin = TestOrigin::start(OriginOpts::tls(&pki.leaf(&["127.0.0.1"])));
    let args = [
        "--origin".to_string(),
        format!("https://{}", origin.addr()),
        "--origin-ca".to_string(),
        pki.ca_path().display().to_string(),
    ];
    quick_mode_round_trip(&pki, &origin, &args);
}
