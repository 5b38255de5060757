//! `RtError`: every failure of the runtime layer, each naming the cause and, for start-up
//! failures, the fix an operator applies.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

/// An error from the runtime layer (shards, sockets, timers, control channels).
#[derive(Debug)]
pub enum RtError {
    /// io_uring cannot be used by this process: the kernel lacks it, the sysctl
    /// `kernel.io_uring_disabled` forbids it, or a seccomp profile (Docker's default) blocks
    /// `io_uring_setup`. `detail` says which was seen.
    IoUringUnavailable {
        /// What the probe observed.
        detail: String,
    },
    /// `RLIMIT_MEMLOCK` is lower than the shards need.
    MemlockTooLow {
        /// The current soft limit in bytes.
        current: u64,
        /// The estimated requirement in bytes for the configured shards.
        required: u64,
    },
    /// The configuration asks for something impossible (no CPUs, a CPU outside the affinity
    /// mask, zero shards, ...).
    InvalidConfig(String),
    /// A shard's executor could not be built or its thread could not be spawned.
    ShardStart {
        /// Index of the shard that failed.
        shard: usize,
        /// The executor's message.
        detail: String,
    },
    /// A shard thread panicked or its executor failed while running.
    ShardFailed {
        /// Index of the shard.
        shard: usize,
        /// The panic message or executor error.
        detail: String,
    },
    /// Creating, binding or listening on a listener socket failed.
    Listen {
        /// The address being bound.
        addr: SocketAddr,
        /// The OS error.
        source: io::Error,
    },
    /// `accept` failed on a listener.
    Accept(io::Error),
    /// Connecting to a peer failed (refused, unreachable, ...).
    Connect {
        /// The peer address.
        addr: SocketAddr,
        /// The OS error.
        source: io::Error,
    },
    /// Connecting to a peer did not complete within the timeout.
    ConnectTimeout {
        /// The peer address.
        addr: SocketAddr,
        /// The timeout that elapsed.
        after: Duration,
    },
    /// A future wrapped by [`crate::timeout`] did not finish in time.
    Timeout(Duration),
    /// A cross-shard control channel is closed (its peer shard stopped).
    ControlClosed,
    /// Another I/O error.
    Io(io::Error),
}

impl fmt::Display for RtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RtError::IoUringUnavailable { detail } => write!(
                f,
                "io_uring is unavailable ({detail}); ringedge needs it: set the sysctl \
                 kernel.io_uring_disabled=0, use a kernel >= 5.8, and in Docker run with a \
                 seccomp profile that allows io_uring_setup/io_uring_enter/io_uring_register \
                 (the default profile blocks them)"
            ),
            RtError::MemlockTooLow { current, required } => write!(
                f,
                "RLIMIT_MEMLOCK is {current} bytes but the shards need about {required} bytes \
                 of locked memory for their io_uring rings; raise it with `ulimit -l` \
                 (e.g. `ulimit -l {}`) or LimitMEMLOCK= in the systemd unit, or run fewer shards",
                required.div_ceil(1024)
            ),
            RtError::InvalidConfig(m) => write!(f, "invalid shard configuration: {m}"),
            RtError::ShardStart { shard, detail } => {
                write!(f, "shard {shard} failed to start: {detail}")?;
                if detail.contains("MemLock") {
                    write!(
                        f,
                        " (raise RLIMIT_MEMLOCK with `ulimit -l` or LimitMEMLOCK= in the \
                         systemd unit)"
                    )?;
                }
                Ok(())
            }
            RtError::ShardFailed { shard, detail } => write!(f, "shard {shard} failed: {detail}"),
            RtError::Listen { addr, source } => write!(
                f,
                "cannot listen on {addr}: {source} (is the address in use by a process without \
                 SO_REUSEPORT, or is the port privileged?)"
            ),
            RtError::Accept(e) => write!(f, "accept failed: {e}"),
            RtError::Connect { addr, source } => write!(f, "connect to {addr} failed: {source}"),
            RtError::ConnectTimeout { addr, after } => {
                write!(f, "connect to {addr} timed out after {after:?}")
            }
            RtError::Timeout(d) => write!(f, "operation timed out after {d:?}"),
            RtError::ControlClosed => write!(f, "cross-shard control channel closed"),
            RtError::Io(e) => write!(f, "I/O error: {e}"),
        }
    }
}

impl std::error::Error for RtError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RtError::Listen { source, .. } | RtError::Connect { source, .. } => Some(source),
            RtError::Accept(e) | RtError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for RtError {
    fn from(e: io::Error) -> Self {
        RtError::Io(e)
    }
}
