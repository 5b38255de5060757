//! Running the client side of a test: a small tokio runtime per test and
//! bounded waits, so that no test can hang.
//!
//! Must not: wait on anything without a deadline. Every helper here either
//! returns within its timeout or panics naming what it was waiting for.

use std::future::Future;
use std::time::Duration;

/// Default bound for one wait inside a test (connect, one call, one event). A pass takes
/// milliseconds; the bound is generous because CI runs on a small shared machine.
pub const WAIT: Duration = Duration::from_secs(30);

/// Bound for a whole test body run by [`run`].
pub const TEST_BUDGET: Duration = Duration::from_secs(120);

/// A multi-thread tokio runtime with two workers, for a test's client side.
pub fn test_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("e2e-client")
        .build()
        .expect("build test runtime")
}

/// Runs `fut` on a fresh [`test_runtime`], panicking if it takes longer than
/// [`TEST_BUDGET`].
pub fn run<F: Future>(fut: F) -> F::Output {
    let rt = test_runtime();
    rt.block_on(async {
        match tokio::time::timeout(TEST_BUDGET, fut).await {
            Ok(v) => v,
            Err(_) => panic!("test body exceeded its budget of {TEST_BUDGET:?}"),
        }
    })
}

/// Awaits `fut` for at most [`WAIT`]; panics naming `what` on timeout.
pub async fn bounded<F: Future>(what: &str, fut: F) -> F::Output {
    bounded_for(what, WAIT, fut).await
}

/// Awaits `fut` for at most `limit`; panics naming `what` on timeout.
pub async fn bounded_for<F: Future>(what: &str, limit: Duration, fut: F) -> F::Output {
    match tokio::time::timeout(limit, fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {limit:?} waiting for {what}"),
    }
}

/// Returns a loopback address on which nothing listens (bind port 0, note the
/// port, close it): connecting to it is refused. Another process could take
/// the port in the meantime; in practice the kernel does not hand a just-freed
/// ephemeral port out again at once.
pub fn closed_port() -> std::net::SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind probe port");
    let addr = l.local_addr().expect("probe port address");
    drop(l);
    addr
}
