//! Starting ringedge in-process for the proxy tests: a config written as TOML text (the same
//! path a file takes: `Config::from_str`, validation, `ringedge::start`), TLS towards clients
//! with a [`LeafCert`] from the test PKI, one shard, a concrete free loopback port, and a
//! bounded wait on the proxy's published counters.
//!
//! Must not: choose anything the test did not ask for beyond the fixed `[server]` basics (one
//! shard, no drain wait), or wait on the counters without a bound.
//!
//! Invariants: an [`Edge`] stops its proxy when dropped (shards told to stop and joined); a
//! test holds [`serial`] while it runs one, so pinned shards of parallel tests never pile up on
//! the machine's few CPUs.

use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ringedge::config::Config;
use ringedge::metrics::Snapshot;
use ringedge::ServerHandle;

use crate::pki::LeafCert;

static SERIAL: Mutex<()> = Mutex::new(());

/// Serialises the tests of one test binary that start a proxy (a panicking test does not
/// poison the others).
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// A loopback port that was free a moment ago (ringedge refuses port 0 in its config).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("probe a free port")
        .port()
}

/// How often [`Edge::wait_metrics`] looks at the counters (the proxy publishes them every
/// 100 ms).
const METRICS_POLL: Duration = Duration::from_millis(20);

/// A running ringedge with TLS towards clients. Dropping it stops the proxy.
#[derive(Debug)]
pub struct Edge {
    handle: ServerHandle,
    addr: SocketAddr,
    config_text: String,
}

impl Edge {
    /// Starts ringedge serving `leaf` (ALPN h2) on a free loopback port, one shard, with
    /// `sections` appended to the config (`[limits.*]`, `[[origins]]`, `[[hosts]]`, ...).
    /// Panics with the config text if it does not validate or the proxy cannot start.
    pub fn start(leaf: &LeafCert, sections: &str) -> Edge {
        Self::start_with(leaf, "", sections)
    }

    /// Like [`Edge::start`], with `server_extra` lines added to the `[server]` table.
    pub fn start_with(leaf: &LeafCert, server_extra: &str, sections: &str) -> Edge {
        let mut last_err = String::new();
        // The free port may be taken between the probe and the bind: try a few.
        for _ in 0..5 {
            let port = free_port();
            let text = format!(
                "[server]\nlisten = [\"127.0.0.1:{port}\"]\nshards = 1\ndrain_timeout_ms = 0\n\
                 {server_extra}\n\
                 [[tls.certificates]]\ncert = '{cert}'\nkey = '{key}'\n\n{sections}\n",
                cert = leaf.cert_path.display(),
                key = leaf.key_path.display(),
            );
            let config = Config::from_str(&text)
                .unwrap_or_else(|e| panic!("test config does not validate: {e}\n---\n{text}"));
            match ringedge::start(&config) {
                Ok(handle) => {
                    let addr = handle.local_addrs()[0];
                    return Edge {
                        handle,
                        addr,
                        config_text: text,
                    };
                }
                Err(e) => last_err = format!("{e}\n---\n{text}"),
            }
        }
        panic!("ringedge did not start: {last_err}");
    }

    /// The TLS listen address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The config text the proxy runs with.
    pub fn config_text(&self) -> &str {
        &self.config_text
    }

    /// The counters as last published (at most ~100 ms old).
    pub fn metrics(&self) -> Snapshot {
        self.handle.metrics()
    }

    /// Waits (at most [`crate::WAIT`]) until the published counters satisfy `pred`, and
    /// returns them; panics naming `what` with the last counters otherwise.
    pub async fn wait_metrics(&self, what: &str, pred: impl Fn(&Snapshot) -> bool) -> Snapshot {
        let until = Instant::now() + crate::WAIT;
        loop {
            let m = self.handle.metrics();
            if pred(&m) {
                return m;
            }
            if Instant::now() >= until {
                panic!(
                    "proxy counters never showed {what} within {:?}: {m:?}",
                    crate::WAIT
                );
            }
            tokio::time::sleep(METRICS_POLL).await;
        }
    }
}

/// An `[[origins]]` table: `url` is `h2c://ADDR` or `https://ADDR`; `tls` adds `ca` and `sni`
/// for an https origin.
pub fn origin_toml(name: &str, url: &str, tls: Option<(&std::path::Path, &str)>) -> String {
    let mut s =
        format!("[[origins]]\nname = \"{name}\"\nurl = \"{url}\"\nconnect_timeout_ms = 2000\n");
    if let Some((ca, sni)) = tls {
        s.push_str(&format!("ca = '{}'\nsni = \"{sni}\"\n", ca.display()));
    }
    s.push('\n');
    s
}

/// A catch-all host (`names = ["*"]`) routing every path to `origin`, with `host_extra`
/// lines in the `[[hosts]]` table.
pub fn catch_all_toml(origin: &str, host_extra: &str) -> String {
    format!(
        "[[hosts]]\nnames = [\"*\"]\n{host_extra}\n\n[[hosts.routes]]\nprefix = \"/\"\norigin = \"{origin}\"\n\n"
    )
}
