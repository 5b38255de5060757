//! What the connection reports ([`Event`]) and its error types, one per failure class.

use crate::frame::{ErrorCode, FrameError, Settings, StreamId};
use crate::hpack::{HeaderField, HpackError};
use bytes::Bytes;
use std::fmt;
use std::time::Duration;

/// Which HEADERS of a message this is (RFC 9113 §8.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeadersKind {
    /// The request (server role) or final response (client role) header section.
    Initial,
    /// A 1xx informational response (client role only; may repeat, never ends the stream).
    Informational,
    /// Trailers: a later header section, always with END_STREAM.
    Trailers,
}

/// An abuse limit or resource limit of [`super::ConnConfig`] that the peer hit. Every one is
/// reported with [`Event::LimitExceeded`] so the caller can count it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Limit {
    /// `max_continuation_frames` (GOAWAY ENHANCE_YOUR_CALM).
    ContinuationFrames,
    /// `max_header_block_bytes` (GOAWAY ENHANCE_YOUR_CALM).
    HeaderBlockBytes,
    /// `max_header_list_size` (stream error: 431 response as server, RST_STREAM as client).
    HeaderListSize,
    /// `max_resets_per_window`, rapid reset CVE-2023-44487 (GOAWAY ENHANCE_YOUR_CALM).
    ResetFlood,
    /// `max_settings_per_window`, CVE-2019-9515 (GOAWAY ENHANCE_YOUR_CALM).
    SettingsFlood,
    /// `max_pings_per_window`, CVE-2019-9512 (GOAWAY ENHANCE_YOUR_CALM).
    PingFlood,
    /// `max_empty_frames_per_window`, CVE-2019-9518 (GOAWAY ENHANCE_YOUR_CALM).
    EmptyFrameFlood,
    /// `max_concurrent_streams`: one stream refused with RST_STREAM(REFUSED_STREAM).
    ConcurrentStreams,
    /// `max_refused_streams` (GOAWAY ENHANCE_YOUR_CALM).
    RefusedStreams,
    /// Our stream identifiers are exhausted (client role; open a new connection).
    StreamIdsExhausted,
    /// `max_pending_output`: the peer does not read (GOAWAY ENHANCE_YOUR_CALM).
    PendingOutput,
}

impl Limit {
    /// Config field name of the limit (for metrics labels).
    pub fn name(&self) -> &'static str {
        match self {
            Limit::ContinuationFrames => "max_continuation_frames",
            Limit::HeaderBlockBytes => "max_header_block_bytes",
            Limit::HeaderListSize => "max_header_list_size",
            Limit::ResetFlood => "max_resets_per_window",
            Limit::SettingsFlood => "max_settings_per_window",
            Limit::PingFlood => "max_pings_per_window",
            Limit::EmptyFrameFlood => "max_empty_frames_per_window",
            Limit::ConcurrentStreams => "max_concurrent_streams",
            Limit::RefusedStreams => "max_refused_streams",
            Limit::StreamIdsExhausted => "stream_ids_exhausted",
            Limit::PendingOutput => "max_pending_output",
        }
    }
}

/// Why we reset a stream ourselves (carried by [`Event::StreamReset`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResetReason {
    /// Beyond our `max_concurrent_streams` (REFUSED_STREAM, §5.1.2).
    Refused,
    /// Header list over `max_header_list_size` (§10.5.1).
    HeaderListTooLarge,
    /// The peer overran the stream's receive window (FLOW_CONTROL_ERROR, §6.9).
    FlowControl,
    /// A frame arrived in a state that forbids it (STREAM_CLOSED, §5.1).
    StreamClosed,
    /// A stream-level rule of the frame layer (see the [`FrameError`]).
    Frame(FrameError),
    /// HTTP message framing (§8.1): DATA before HEADERS, trailers without END_STREAM, a 1xx
    /// with END_STREAM, HEADERS after trailers.
    Malformed(&'static str),
    /// Send window overflowed 2^31-1 by a stream WINDOW_UPDATE (FLOW_CONTROL_ERROR, §6.9.1).
    WindowOverflow,
}

/// Events drained with [`super::Connection::poll_event`].
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// A decoded header section.
    Headers {
        /// The stream.
        stream: StreamId,
        /// Initial, informational or trailers.
        kind: HeadersKind,
        /// Decoded fields, in order.
        fields: Vec<HeaderField>,
        /// END_STREAM was set.
        end_stream: bool,
    },
    /// DATA payload (a view of the receive buffer). The caller must hand `flow_len - padding`
    /// = `data.len()` bytes back with `release_capacity` once consumed (padding is released
    /// automatically).
    Data {
        /// The stream.
        stream: StreamId,
        /// Payload without padding.
        data: Bytes,
        /// END_STREAM was set.
        end_stream: bool,
        /// Flow-controlled length of the frame (including padding).
        flow_len: u32,
    },
    /// The peer reset the stream (RST_STREAM received).
    PeerReset {
        /// The stream.
        stream: StreamId,
        /// Its code.
        code: ErrorCode,
    },
    /// We reset the stream because of something the peer did (RST_STREAM sent, or a 431
    /// response for an oversized header list in server role).
    StreamReset {
        /// The stream.
        stream: StreamId,
        /// Code we sent.
        code: ErrorCode,
        /// Why.
        reason: ResetReason,
    },
    /// The peer sent GOAWAY.
    GoAway {
        /// Highest of our streams the peer may have processed.
        last_stream_id: StreamId,
        /// Its code.
        code: ErrorCode,
        /// Debug data (view).
        debug: Bytes,
        /// Our streams above `last_stream_id`: never processed, safe to retry elsewhere
        /// (§6.8). They are closed now.
        unprocessed: Vec<StreamId>,
    },
    /// A stream that could not send everything (`send_data` accepted less than offered) has
    /// room again.
    SendCapacity {
        /// The stream.
        stream: StreamId,
        /// Bytes it may send now (min of stream and connection windows).
        available: u32,
    },
    /// The peer's SETTINGS were applied (and ACKed).
    PeerSettings {
        /// What the frame carried.
        settings: Settings,
    },
    /// The peer ACKed our SETTINGS.
    SettingsAcked,
    /// One of our PINGs was answered.
    PingRtt {
        /// Round-trip time, from the `now` values passed in.
        rtt: Duration,
        /// The opaque data.
        data: [u8; 8],
    },
    /// A limit was hit (count it). The protocol's answer was already queued.
    LimitExceeded {
        /// Which limit.
        limit: Limit,
        /// Stream concerned, if any.
        stream: Option<StreamId>,
    },
    /// The connection is finished: flush the output, then close the transport. `error` is
    /// `None` for a graceful end (GOAWAY exchanged and no stream left).
    Closed {
        /// The connection error we sent GOAWAY for, if any.
        error: Option<ConnError>,
    },
}

/// A connection error (RFC 9113 §5.4.1): GOAWAY with [`ConnError::code`] was queued and the
/// connection no longer accepts input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnError {
    /// The client preface (§3.4) was wrong, or the first frame was not SETTINGS. PROTOCOL_ERROR.
    BadPreface,
    /// A frame-layer connection error (see [`FrameError`]).
    Frame(FrameError),
    /// The HPACK decoder failed (COMPRESSION_ERROR, RFC 7541 / RFC 9113 §4.3).
    Compression(HpackError),
    /// A connection-level protocol rule was broken. PROTOCOL_ERROR.
    Protocol(&'static str),
    /// A frame on a stream closed after END_STREAM (§5.1). STREAM_CLOSED.
    StreamClosed(StreamId),
    /// Connection flow control violated (§6.9). FLOW_CONTROL_ERROR.
    FlowControl(&'static str),
    /// Our SETTINGS were not ACKed in time (§6.5.3). SETTINGS_TIMEOUT.
    SettingsTimeout,
    /// An abuse limit. ENHANCE_YOUR_CALM.
    Limit(Limit),
    /// The transport ended while streams were active or before GOAWAY (no GOAWAY sent).
    UnexpectedEof,
}

impl ConnError {
    /// The GOAWAY code.
    pub fn code(&self) -> ErrorCode {
        match self {
            ConnError::BadPreface | ConnError::Protocol(_) => ErrorCode::ProtocolError,
            ConnError::Frame(e) => e.code(),
            ConnError::Compression(_) => ErrorCode::CompressionError,
            ConnError::StreamClosed(_) => ErrorCode::StreamClosed,
            ConnError::FlowControl(_) => ErrorCode::FlowControlError,
            ConnError::SettingsTimeout => ErrorCode::SettingsTimeout,
            ConnError::Limit(_) => ErrorCode::EnhanceYourCalm,
            ConnError::UnexpectedEof => ErrorCode::NoError,
        }
    }
}

impl fmt::Display for ConnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnError::BadPreface => f.write_str("invalid connection preface"),
            ConnError::Frame(e) => write!(f, "frame error: {e}"),
            ConnError::Compression(e) => write!(f, "header compression error: {e}"),
            ConnError::Protocol(s) => write!(f, "protocol error: {s}"),
            ConnError::StreamClosed(s) => write!(f, "frame on closed stream {s}"),
            ConnError::FlowControl(s) => write!(f, "flow control error: {s}"),
            ConnError::SettingsTimeout => f.write_str("SETTINGS not acknowledged in time"),
            ConnError::Limit(l) => write!(f, "limit exceeded: {}", l.name()),
            ConnError::UnexpectedEof => f.write_str("transport closed unexpectedly"),
        }
    }
}

impl std::error::Error for ConnError {}

/// Why an outbound call (`send_*`) was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendError {
    /// The connection is closed (error or GOAWAY finished).
    ConnectionClosed,
    /// No such stream (never opened, or already closed/reset).
    UnknownStream(StreamId),
    /// We already ended our side of the stream (half-closed local).
    StreamEnded(StreamId),
    /// HEADERS are not allowed now (e.g. DATA before headers, headers after trailers).
    InvalidState(StreamId),
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::ConnectionClosed => f.write_str("connection closed"),
            SendError::UnknownStream(s) => write!(f, "unknown or closed stream {s}"),
            SendError::StreamEnded(s) => write!(f, "stream {s} already ended by us"),
            SendError::InvalidState(s) => write!(f, "operation not valid in stream {s}'s state"),
        }
    }
}

impl std::error::Error for SendError {}

/// Why [`super::Connection::open_stream`] failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenError {
    /// Only the client role opens streams.
    NotClient,
    /// The peer's SETTINGS_MAX_CONCURRENT_STREAMS is reached: use another connection.
    ConcurrencyLimit,
    /// Stream identifiers are exhausted (§5.1.1): use a new connection.
    StreamIdsExhausted,
    /// GOAWAY was sent or received: use a new connection.
    GoingAway,
    /// The connection is closed.
    ConnectionClosed,
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OpenError::NotClient => "only the client role opens streams",
            OpenError::ConcurrencyLimit => "peer's max concurrent streams reached",
            OpenError::StreamIdsExhausted => "stream identifiers exhausted",
            OpenError::GoingAway => "connection is going away",
            OpenError::ConnectionClosed => "connection closed",
        })
    }
}

impl std::error::Error for OpenError {}
