//! HTTP/2 connection state machine (RFC 9113 §3.4, §5, §6): server role (for clients) and client
//! role (for origins) in one [`Connection`].
//!
//! What it does: bytes in ([`Connection::recv`]), events out ([`Connection::poll_event`]) and
//! bytes out ([`Connection::output_chunks`] / [`Connection::advance_output`]). It runs the
//! preface and SETTINGS exchange (with an ACK timeout the caller drives through
//! [`Connection::poll_timeout`] / [`Connection::next_deadline`]), stream states (§5.1), stream
//! and connection flow control in both directions (§6.9), CONTINUATION assembly (§6.10), HPACK
//! decoding and encoding, PING/GOAWAY/RST_STREAM, and the abuse limits of [`ConnConfig`].
//!
//! Flow control is the edge's backpressure: received DATA is only re-credited to the peer when
//! the caller says it has consumed it ([`Connection::release_capacity`]); nothing refills on its
//! own. On the send side [`Connection::send_data`] accepts only what both windows allow and
//! reports new room with [`Event::SendCapacity`].
//!
//! Field lists: each decoded header block's `Vec<HeaderField>` comes from a small per-thread
//! stack of emptied lists that callers refill with [`recycle_fields`] (bounded, see `spares`).
//!
//! What it must not do: read a clock (every method that needs time takes `now`), perform I/O,
//! copy DATA payloads (they travel as `Bytes` views in both directions), or panic on any input.
//!
//! Invariants (checked by tests and the `conn_server` fuzz target, see
//! [`Connection::check_invariants`]): receive windows are never negative and never above 2^31-1;
//! send windows never exceed 2^31-1 (they may go negative only through a SETTINGS decrease, as
//! §6.9.2 allows); `recv` never consumes more bytes than it is given; the HPACK decoder sees
//! every header block the peer sends, including those of refused or reset streams.

mod closed;
mod config;
mod connection;
mod event;
mod output;
mod spares;
mod stream;
mod stream_map;

pub use config::ConnConfig;
pub use connection::{Connection, Role, PREFACE};
pub use event::{ConnError, Event, HeadersKind, Limit, OpenError, ResetReason, SendError};
pub use spares::{recycle_fields, SpareVecs, SPARE_FIELDS, SPARE_FIELD_LIST_MAX};
pub use stream::{IdHashBuilder, IdHasher};
pub use stream_map::StreamMap;
