//! ringedge-rt: the thread-per-core runtime of ringedge.
//!
//! What it does: starts one pinned glommio executor ("shard") per allowed CPU
//! ([`ShardSet::start`]), builds one `SO_REUSEPORT` listener per shard ([`Listener`]) with an
//! accept loop that enforces a per-shard connection limit ([`serve`]), connects to origins with a
//! timeout ([`connect`]), reads sockets into `BytesMut` spare capacity without zeroing it
//! ([`poll_read_buf`]), offers timers ([`sleep`], [`timeout`], [`now`]) and cross-shard
//! control channels ([`control`]).
//!
//! What it must not do: carry requests between shards (control messages only), or leak glommio
//! types other than those re-exported here — this is the only crate that names glommio, so the
//! runtime can be swapped in one place.
//!
//! Invariants:
//! - every shard is pinned to exactly one CPU taken from the process affinity mask;
//! - shard-local state never crosses threads (`Rc`/`RefCell` are fine inside a shard);
//! - every `unsafe` block carries a `SAFETY:` comment.
//!
//! Notes for callers:
//! - glommio signals its threads; a *blocking* syscall on another thread of the process (e.g.
//!   a std socket read in `main` or a test) can fail with `EINTR`: retry it.
//! - Accepted and connected streams are blocking sockets, but glommio always calls
//!   `send`/`recv` with `MSG_DONTWAIT`, so a shard never blocks on them.

#![deny(missing_docs)]

mod error;
mod net;
mod shard;
mod time;

pub mod control;
pub mod preflight;

pub use error::RtError;
pub use net::{
    bind_reuseport_socket, connect, poll_read_buf, serve, set_quickack, ConnectionLimit, Listener,
    DEFAULT_BACKLOG,
};
pub use shard::{allowed_cpus, CpuSelection, ShardCtx, ShardSet, ShardsConfig};
pub use time::{now, sleep, timeout};

/// A TCP stream owned by the current shard (glommio's, readiness-based: `recv`/`send` go
/// straight into the caller's buffer). Implements `futures_lite::{AsyncRead, AsyncWrite}`.
pub use glommio::net::TcpStream;
/// A handle to a task spawned on the current shard; dropping it cancels the task, `detach()`
/// lets it run on.
pub use glommio::Task;

/// Re-exported so callers can use the I/O traits without naming another crate version.
pub use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Spawn `fut` on the current shard. Must be called from inside a shard (panics otherwise,
/// like glommio's `spawn_local`). Dropping the returned [`Task`] cancels the future.
pub fn spawn<T: 'static>(fut: impl std::future::Future<Output = T> + 'static) -> Task<T> {
    glommio::spawn_local(fut)
}

/// Spawn `fut` on the current shard and let it run to completion on its own.
pub fn spawn_detached<T: 'static>(fut: impl std::future::Future<Output = T> + 'static) {
    glommio::spawn_local(fut).detach();
}

/// Yield to other tasks of this shard if the current task has used up its time slice.
pub async fn yield_if_needed() {
    glommio::yield_if_needed().await
}
