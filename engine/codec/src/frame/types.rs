//! Frame vocabulary: error codes, stream identifiers, frame headers, settings and the [`Frame`]
//! enum (RFC 9113 §4.1, §6, §7).

use bytes::Bytes;
use std::fmt;

/// Frame type codes (RFC 9113 §6).
pub mod kind {
    /// DATA (§6.1).
    pub const DATA: u8 = 0x0;
    /// HEADERS (§6.2).
    pub const HEADERS: u8 = 0x1;
    /// PRIORITY (§6.3, deprecated but still parsed).
    pub const PRIORITY: u8 = 0x2;
    /// RST_STREAM (§6.4).
    pub const RST_STREAM: u8 = 0x3;
    /// SETTINGS (§6.5).
    pub const SETTINGS: u8 = 0x4;
    /// PUSH_PROMISE (§6.6).
    pub const PUSH_PROMISE: u8 = 0x5;
    /// PING (§6.7).
    pub const PING: u8 = 0x6;
    /// GOAWAY (§6.8).
    pub const GOAWAY: u8 = 0x7;
    /// WINDOW_UPDATE (§6.9).
    pub const WINDOW_UPDATE: u8 = 0x8;
    /// CONTINUATION (§6.10).
    pub const CONTINUATION: u8 = 0x9;
}

/// Frame flag bits (RFC 9113 §6).
pub mod flags {
    /// END_STREAM on DATA and HEADERS.
    pub const END_STREAM: u8 = 0x1;
    /// ACK on SETTINGS and PING.
    pub const ACK: u8 = 0x1;
    /// END_HEADERS on HEADERS, PUSH_PROMISE and CONTINUATION.
    pub const END_HEADERS: u8 = 0x4;
    /// PADDED on DATA, HEADERS and PUSH_PROMISE.
    pub const PADDED: u8 = 0x8;
    /// PRIORITY on HEADERS.
    pub const PRIORITY: u8 = 0x20;
}

/// Largest legal stream identifier and window size: 2^31-1 (RFC 9113 §5.1.1, §6.9.1).
pub const MAX_WINDOW: u32 = (1 << 31) - 1;
/// Default SETTINGS_MAX_FRAME_SIZE and its lower bound (RFC 9113 §6.5.2).
pub const DEFAULT_MAX_FRAME_SIZE: u32 = 16_384;
/// Upper bound of SETTINGS_MAX_FRAME_SIZE (RFC 9113 §6.5.2).
pub const MAX_MAX_FRAME_SIZE: u32 = 16_777_215;
/// Default SETTINGS_INITIAL_WINDOW_SIZE and connection window (RFC 9113 §6.9.2).
pub const DEFAULT_WINDOW: u32 = 65_535;

/// HTTP/2 error codes (RFC 9113 §7). Unknown codes are carried through unchanged
/// (§7: "Unknown or unsupported error codes MUST NOT trigger any special behavior").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// 0x0: graceful shutdown / no error.
    NoError,
    /// 0x1: generic protocol violation.
    ProtocolError,
    /// 0x2: unexpected internal error.
    InternalError,
    /// 0x3: flow-control protocol violated.
    FlowControlError,
    /// 0x4: SETTINGS not acknowledged in time.
    SettingsTimeout,
    /// 0x5: frame received on a half-closed stream.
    StreamClosed,
    /// 0x6: frame with an invalid size.
    FrameSizeError,
    /// 0x7: stream refused before any application processing.
    RefusedStream,
    /// 0x8: stream no longer needed.
    Cancel,
    /// 0x9: header compression context cannot be maintained.
    CompressionError,
    /// 0xa: CONNECT tunnel reset.
    ConnectError,
    /// 0xb: peer behaviour may be generating excessive load.
    EnhanceYourCalm,
    /// 0xc: transport security requirements not met.
    InadequateSecurity,
    /// 0xd: HTTP/1.1 required.
    Http11Required,
    /// Any other code, passed through.
    Unknown(u32),
}

impl ErrorCode {
    /// The wire value.
    pub fn to_u32(self) -> u32 {
        match self {
            ErrorCode::NoError => 0x0,
            ErrorCode::ProtocolError => 0x1,
            ErrorCode::InternalError => 0x2,
            ErrorCode::FlowControlError => 0x3,
            ErrorCode::SettingsTimeout => 0x4,
            ErrorCode::StreamClosed => 0x5,
            ErrorCode::FrameSizeError => 0x6,
            ErrorCode::RefusedStream => 0x7,
            ErrorCode::Cancel => 0x8,
            ErrorCode::CompressionError => 0x9,
            ErrorCode::ConnectError => 0xa,
            ErrorCode::EnhanceYourCalm => 0xb,
            ErrorCode::InadequateSecurity => 0xc,
            ErrorCode::Http11Required => 0xd,
            ErrorCode::Unknown(v) => v,
        }
    }
}

impl From<u32> for ErrorCode {
    fn from(v: u32) -> Self {
        match v {
            0x0 => ErrorCode::NoError,
            0x1 => ErrorCode::ProtocolError,
            0x2 => ErrorCode::InternalError,
            0x3 => ErrorCode::FlowControlError,
            0x4 => ErrorCode::SettingsTimeout,
            0x5 => ErrorCode::StreamClosed,
            0x6 => ErrorCode::FrameSizeError,
            0x7 => ErrorCode::RefusedStream,
            0x8 => ErrorCode::Cancel,
            0x9 => ErrorCode::CompressionError,
            0xa => ErrorCode::ConnectError,
            0xb => ErrorCode::EnhanceYourCalm,
            0xc => ErrorCode::InadequateSecurity,
            0xd => ErrorCode::Http11Required,
            v => ErrorCode::Unknown(v),
        }
    }
}

impl From<ErrorCode> for u32 {
    fn from(c: ErrorCode) -> u32 {
        c.to_u32()
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            ErrorCode::NoError => "NO_ERROR",
            ErrorCode::ProtocolError => "PROTOCOL_ERROR",
            ErrorCode::InternalError => "INTERNAL_ERROR",
            ErrorCode::FlowControlError => "FLOW_CONTROL_ERROR",
            ErrorCode::SettingsTimeout => "SETTINGS_TIMEOUT",
            ErrorCode::StreamClosed => "STREAM_CLOSED",
            ErrorCode::FrameSizeError => "FRAME_SIZE_ERROR",
            ErrorCode::RefusedStream => "REFUSED_STREAM",
            ErrorCode::Cancel => "CANCEL",
            ErrorCode::CompressionError => "COMPRESSION_ERROR",
            ErrorCode::ConnectError => "CONNECT_ERROR",
            ErrorCode::EnhanceYourCalm => "ENHANCE_YOUR_CALM",
            ErrorCode::InadequateSecurity => "INADEQUATE_SECURITY",
            ErrorCode::Http11Required => "HTTP_1_1_REQUIRED",
            ErrorCode::Unknown(v) => return write!(f, "UNKNOWN(0x{v:x})"),
        };
        f.write_str(name)
    }
}

/// A 31-bit stream identifier (RFC 9113 §5.1.1). The reserved high bit is always cleared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct StreamId(u32);

impl StreamId {
    /// Stream 0: the connection itself.
    pub const ZERO: StreamId = StreamId(0);
    /// The largest stream identifier, 2^31-1.
    pub const MAX: StreamId = StreamId(MAX_WINDOW);

    /// Builds an id, clearing the reserved bit (RFC 9113 §4.1: "MUST be ignored when receiving").
    pub const fn new(v: u32) -> Self {
        StreamId(v & MAX_WINDOW)
    }
    /// The numeric value.
    pub const fn get(self) -> u32 {
        self.0
    }
    /// True for stream 0.
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }
    /// Client-initiated streams are odd (RFC 9113 §5.1.1).
    pub const fn is_client_initiated(self) -> bool {
        self.0 & 1 == 1
    }
}

impl From<u32> for StreamId {
    fn from(v: u32) -> Self {
        StreamId::new(v)
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The fixed 9-byte frame header (RFC 9113 §4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// Payload length (24 bits).
    pub length: u32,
    /// Frame type (see [`kind`]).
    pub kind: u8,
    /// Flag bits (see [`flags`]).
    pub flags: u8,
    /// Stream identifier, reserved bit cleared.
    pub stream_id: StreamId,
}

impl FrameHeader {
    /// Reads a header from the first 9 bytes of `b`; `None` if fewer are present.
    #[inline]
    pub fn parse(b: &[u8]) -> Option<FrameHeader> {
        let h: &[u8; 9] = b.get(..9)?.try_into().ok()?;
        Some(FrameHeader {
            length: u32::from_be_bytes([0, h[0], h[1], h[2]]),
            kind: h[3],
            flags: h[4],
            stream_id: StreamId::new(u32::from_be_bytes([h[5], h[6], h[7], h[8]])),
        })
    }
}

/// Stream dependency information carried by PRIORITY and HEADERS (RFC 9113 §5.3.2, deprecated;
/// parsed only to be validated and ignored).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Priority {
    /// The stream this one depends on.
    pub dependency: StreamId,
    /// The exclusive flag.
    pub exclusive: bool,
    /// Weight minus one, as on the wire.
    pub weight: u8,
}

/// One SETTINGS parameter as on the wire (RFC 9113 §6.5.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Setting {
    /// Identifier (see the `Setting::*` constants).
    pub id: u16,
    /// Value.
    pub value: u32,
}

impl Setting {
    /// SETTINGS_HEADER_TABLE_SIZE.
    pub const HEADER_TABLE_SIZE: u16 = 0x1;
    /// SETTINGS_ENABLE_PUSH.
    pub const ENABLE_PUSH: u16 = 0x2;
    /// SETTINGS_MAX_CONCURRENT_STREAMS.
    pub const MAX_CONCURRENT_STREAMS: u16 = 0x3;
    /// SETTINGS_INITIAL_WINDOW_SIZE.
    pub const INITIAL_WINDOW_SIZE: u16 = 0x4;
    /// SETTINGS_MAX_FRAME_SIZE.
    pub const MAX_FRAME_SIZE: u16 = 0x5;
    /// SETTINGS_MAX_HEADER_LIST_SIZE.
    pub const MAX_HEADER_LIST_SIZE: u16 = 0x6;
    /// SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441 §3).
    pub const ENABLE_CONNECT_PROTOCOL: u16 = 0x8;
    /// SETTINGS_NO_RFC7540_PRIORITIES (RFC 9218 §2.1).
    pub const NO_RFC7540_PRIORITIES: u16 = 0x9;

    /// Checks the value range of a known setting (RFC 9113 §6.5.2, RFC 8441 §3, RFC 9218 §2.1).
    pub fn validate(self) -> Result<(), crate::frame::FrameError> {
        let ok = match self.id {
            Setting::ENABLE_PUSH
            | Setting::ENABLE_CONNECT_PROTOCOL
            | Setting::NO_RFC7540_PRIORITIES => self.value <= 1,
            Setting::INITIAL_WINDOW_SIZE => self.value <= MAX_WINDOW,
            Setting::MAX_FRAME_SIZE => {
                (DEFAULT_MAX_FRAME_SIZE..=MAX_MAX_FRAME_SIZE).contains(&self.value)
            }
            _ => true,
        };
        if ok {
            Ok(())
        } else {
            Err(crate::frame::FrameError::InvalidSetting {
                id: self.id,
                value: self.value,
            })
        }
    }
}

/// The known settings of one SETTINGS frame (last occurrence wins, RFC 9113 §6.5.3: "processed
/// in the order they appear"). `None` = not present. Unknown identifiers are ignored (§6.5.2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    /// SETTINGS_HEADER_TABLE_SIZE.
    pub header_table_size: Option<u32>,
    /// SETTINGS_ENABLE_PUSH (0 or 1).
    pub enable_push: Option<u32>,
    /// SETTINGS_MAX_CONCURRENT_STREAMS.
    pub max_concurrent_streams: Option<u32>,
    /// SETTINGS_INITIAL_WINDOW_SIZE (≤ 2^31-1).
    pub initial_window_size: Option<u32>,
    /// SETTINGS_MAX_FRAME_SIZE (16384..=16777215).
    pub max_frame_size: Option<u32>,
    /// SETTINGS_MAX_HEADER_LIST_SIZE.
    pub max_header_list_size: Option<u32>,
    /// SETTINGS_ENABLE_CONNECT_PROTOCOL (0 or 1).
    pub enable_connect_protocol: Option<u32>,
}

impl Settings {
    /// Records one (already validated) setting; unknown ids are ignored.
    pub fn set(&mut self, s: Setting) {
        let slot = match s.id {
            Setting::HEADER_TABLE_SIZE => &mut self.header_table_size,
            Setting::ENABLE_PUSH => &mut self.enable_push,
            Setting::MAX_CONCURRENT_STREAMS => &mut self.max_concurrent_streams,
            Setting::INITIAL_WINDOW_SIZE => &mut self.initial_window_size,
            Setting::MAX_FRAME_SIZE => &mut self.max_frame_size,
            Setting::MAX_HEADER_LIST_SIZE => &mut self.max_header_list_size,
            Setting::ENABLE_CONNECT_PROTOCOL => &mut self.enable_connect_protocol,
            _ => return,
        };
        *slot = Some(s.value);
    }

    /// The present settings, in identifier order.
    pub fn iter(&self) -> impl Iterator<Item = Setting> + '_ {
        [
            (Setting::HEADER_TABLE_SIZE, self.header_table_size),
            (Setting::ENABLE_PUSH, self.enable_push),
            (Setting::MAX_CONCURRENT_STREAMS, self.max_concurrent_streams),
            (Setting::INITIAL_WINDOW_SIZE, self.initial_window_size),
            (Setting::MAX_FRAME_SIZE, self.max_frame_size),
            (Setting::MAX_HEADER_LIST_SIZE, self.max_header_list_size),
            (
                Setting::ENABLE_CONNECT_PROTOCOL,
                self.enable_connect_protocol,
            ),
        ]
        .into_iter()
        .filter_map(|(id, v)| v.map(|value| Setting { id, value }))
    }
}

/// One parsed frame. Payload fields are views of the receive buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// DATA (§6.1), padding stripped.
    Data {
        /// Stream (never 0).
        stream_id: StreamId,
        /// The data, without padding.
        payload: Bytes,
        /// END_STREAM flag.
        end_stream: bool,
        /// Flow-controlled length: the whole frame payload including pad length and padding
        /// (§6.9.1: "the entire DATA frame payload is included in flow control").
        flow_len: u32,
    },
    /// HEADERS (§6.2), padding stripped, priority fields parsed.
    Headers {
        /// Stream (never 0).
        stream_id: StreamId,
        /// Header block fragment.
        block: Bytes,
        /// END_STREAM flag.
        end_stream: bool,
        /// END_HEADERS flag.
        end_headers: bool,
        /// Priority fields when the PRIORITY flag is set. A self-dependency is a stream error
        /// (§5.3.1) that the caller reports *after* decoding the block, to keep HPACK in sync.
        priority: Option<Priority>,
    },
    /// PRIORITY (§6.3), validated and otherwise ignorable.
    Priority {
        /// Stream (never 0).
        stream_id: StreamId,
        /// The priority fields.
        priority: Priority,
    },
    /// RST_STREAM (§6.4).
    RstStream {
        /// Stream (never 0).
        stream_id: StreamId,
        /// Error code.
        code: ErrorCode,
    },
    /// SETTINGS (§6.5), values validated.
    Settings {
        /// ACK flag (then `settings` is empty).
        ack: bool,
        /// The known settings carried.
        settings: Settings,
    },
    /// PUSH_PROMISE (§6.6), padding stripped.
    PushPromise {
        /// Associated stream (never 0).
        stream_id: StreamId,
        /// The reserved stream.
        promised_id: StreamId,
        /// Header block fragment.
        block: Bytes,
        /// END_HEADERS flag.
        end_headers: bool,
    },
    /// PING (§6.7).
    Ping {
        /// ACK flag.
        ack: bool,
        /// Opaque data.
        data: [u8; 8],
    },
    /// GOAWAY (§6.8).
    GoAway {
        /// Last stream the sender may have processed.
        last_stream_id: StreamId,
        /// Error code.
        code: ErrorCode,
        /// Opaque debug data (view).
        debug: Bytes,
    },
    /// WINDOW_UPDATE (§6.9), increment non-zero.
    WindowUpdate {
        /// Stream, or 0 for the connection.
        stream_id: StreamId,
        /// Increment, 1..=2^31-1.
        increment: u32,
    },
    /// CONTINUATION (§6.10).
    Continuation {
        /// Stream (never 0).
        stream_id: StreamId,
        /// Header block fragment.
        block: Bytes,
        /// END_HEADERS flag.
        end_headers: bool,
    },
    /// A frame of an unknown type, skipped (§4.1, §5.5: "MUST ignore and discard"). Reported so
    /// the caller can enforce CONTINUATION sequencing (§6.10).
    Unknown {
        /// The frame header.
        header: FrameHeader,
    },
}

impl Frame {
    /// The stream the frame is on (0 for connection-level frames).
    pub fn stream_id(&self) -> StreamId {
        match self {
            Frame::Data { stream_id, .. }
            | Frame::Headers { stream_id, .. }
            | Frame::Priority { stream_id, .. }
            | Frame::RstStream { stream_id, .. }
            | Frame::PushPromise { stream_id, .. }
            | Frame::WindowUpdate { stream_id, .. }
            | Frame::Continuation { stream_id, .. } => *stream_id,
            Frame::Unknown { header } => header.stream_id,
            Frame::Settings { .. } | Frame::Ping { .. } | Frame::GoAway { .. } => StreamId::ZERO,
        }
    }
}
