//! Per-stream state (RFC 9113 §5.1) and flow-control windows.
//!
//! ```text
//!                          +--------+
//!                  send PP |        | recv PP           (PUSH_PROMISE: never used —
//!                 ,--------+  idle  +--------.           we disable push, so the
//!                /         |        |         \          reserved states do not exist)
//!               v          +--------+          v
//!        +----------+          |           +----------+
//!        | reserved |          | send H /  | reserved |
//!        | (local)  |          | recv H    | (remote) |
//!        +---+------+          v           +------+---+
//!                          +--------+
//!                  recv ES |        | send ES
//!                 ,--------+  open  +--------.
//!                /         |        |         \
//!               v          +---+----+          v
//!        +----------+          |           +----------+
//!        |   half-  |          |           |   half-  |
//!        |  closed  |          | send R /  |  closed  |
//!        | (remote) |          | recv R    | (local)  |
//!        +----+-----+          |           +-----+----+
//!             |                |                 |
//!             | send ES /      |       recv ES / |
//!             | send R /       v        send R / |
//!             | recv R     +--------+   recv R   |
//!             `----------->|        |<-----------'
//!                          | closed |
//!                          |        |
//!                          +--------+
//! ```
//! Idle streams are not stored; closed streams are removed and remembered for a while in the
//! connection's closed-stream list (with how they closed), so in-flight frames can be judged.

use crate::frame::StreamId;
use std::hash::{BuildHasher, Hasher};

/// Hasher for stream-id keys: a multiply-xorshift of the id mixed with a per-connection secret
/// seed (from std's randomly keyed `RandomState`). Much cheaper than SipHash for one `u32`; the
/// secret seed and the bounded number of live keys (open + remembered closed streams) keep a
/// peer from building long collision chains. Public so callers can key their own per-stream
/// maps (by `u32` or [`crate::frame::StreamId`]) the same way.
#[derive(Clone, Copy, Debug)]
pub struct IdHashBuilder(u64);

impl IdHashBuilder {
    /// A builder with a fresh secret seed.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        IdHashBuilder(std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64) | 1)
    }
}

impl BuildHasher for IdHashBuilder {
    type Hasher = IdHasher;
    fn build_hasher(&self) -> IdHasher {
        IdHasher(self.0)
    }
}

/// See [`IdHashBuilder`].
#[derive(Debug)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        let mut x = self.0;
        x ^= x >> 32;
        x = x.wrapping_mul(0xd6e8_feb8_6659_fd93);
        x ^= x >> 32;
        x
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ *b as u64).wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn write_u32(&mut self, v: u32) {
        self.0 = (self.0 ^ v as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// §5.1 states of a stored (non-idle, non-closed) stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum State {
    /// Both sides may send.
    Open,
    /// We sent END_STREAM; the peer may still send.
    HalfClosedLocal,
    /// The peer sent END_STREAM; we may still send.
    HalfClosedRemote,
}

/// How a remembered closed stream ended (decides how late frames are treated, §5.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Closed {
    /// We sent RST_STREAM: ignore whatever the peer still sends.
    LocalReset,
    /// The peer sent RST_STREAM: further frames (but PRIORITY, WINDOW_UPDATE) are a stream
    /// error STREAM_CLOSED.
    PeerReset,
    /// Both sides sent END_STREAM. WINDOW_UPDATE/RST_STREAM are tolerated; DATA/HEADERS are
    /// a connection error STREAM_CLOSED.
    EndStream,
    /// Our stream was above a GOAWAY's last-stream-id (never processed by the peer).
    GoneAway,
}

/// Where the peer's header sections of this stream are (§8.1 message framing).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RemoteHeaders {
    /// None yet (client role, before the response).
    None,
    /// Only 1xx so far (client role).
    Informational,
    /// Initial header section received.
    Initial,
}

#[derive(Debug)]
pub(crate) struct Stream {
    pub(crate) id: StreamId,
    pub(crate) state: State,
    /// True when the peer initiated the stream.
    pub(crate) remote_initiated: bool,
    pub(crate) remote_headers: RemoteHeaders,
    /// We have sent our initial HEADERS.
    pub(crate) local_headers_sent: bool,
    /// Our send window (may go negative after a SETTINGS decrease, §6.9.2).
    pub(crate) send_window: i64,
    /// Credit the peer has left to send to us.
    pub(crate) recv_window: u32,
    /// Bytes delivered to the caller and not yet released.
    pub(crate) recv_held: u32,
    /// Bytes released by the caller, not yet credited back with WINDOW_UPDATE.
    pub(crate) recv_released: u32,
    /// `send_data` accepted less than offered: report room with `Event::SendCapacity`.
    pub(crate) send_blocked: bool,
}

impl Stream {
    pub(crate) fn new(id: StreamId, remote: bool, send_window: u32, recv_window: u32) -> Self {
        Stream {
            id,
            state: State::Open,
            remote_initiated: remote,
            remote_headers: RemoteHeaders::None,
            local_headers_sent: false,
            send_window: send_window as i64,
            recv_window,
            recv_held: 0,
            recv_released: 0,
            send_blocked: false,
        }
    }

    pub(crate) fn remote_open(&self) -> bool {
        matches!(self.state, State::Open | State::HalfClosedLocal)
    }

    pub(crate) fn local_open(&self) -> bool {
        matches!(self.state, State::Open | State::HalfClosedRemote)
    }
}
