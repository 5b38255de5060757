//! [`FrameError`]: every single-frame rule violation of RFC 9113 §4–§6 and its outcome.

use super::types::{ErrorCode, StreamId};
use std::fmt;

/// A frame that breaks a rule of RFC 9113. Each variant documents its outcome: a *connection
/// error* (send GOAWAY with [`FrameError::code`] and close, §5.4.1) or a *stream error* (send
/// RST_STREAM with that code on [`FrameError::stream_id`], §5.4.2, and keep the connection).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// Length exceeds our SETTINGS_MAX_FRAME_SIZE (§4.2). Connection FRAME_SIZE_ERROR.
    /// The frame is not consumed.
    FrameTooLarge {
        /// Declared payload length.
        length: u32,
        /// Our limit.
        max: u32,
    },
    /// A fixed-size frame (PING 8, RST_STREAM 4, WINDOW_UPDATE 4, SETTINGS multiple of 6,
    /// SETTINGS ACK 0) or a frame too short for its mandatory fields (§4.2, §6). Connection
    /// FRAME_SIZE_ERROR.
    BadFrameSize {
        /// Frame type.
        kind: u8,
        /// Payload length.
        length: u32,
    },
    /// PRIORITY with a length other than 5 (§6.3). Stream FRAME_SIZE_ERROR.
    BadPrioritySize {
        /// The stream.
        stream_id: StreamId,
        /// Payload length.
        length: u32,
    },
    /// DATA, HEADERS, PRIORITY, RST_STREAM, PUSH_PROMISE or CONTINUATION on stream 0
    /// (§6.1–§6.4, §6.6, §6.10). Connection PROTOCOL_ERROR.
    StreamIdZero {
        /// Frame type.
        kind: u8,
    },
    /// SETTINGS, PING or GOAWAY on a non-zero stream (§6.5, §6.7, §6.8). Connection
    /// PROTOCOL_ERROR.
    StreamIdNotZero {
        /// Frame type.
        kind: u8,
        /// The stream it named.
        stream_id: StreamId,
    },
    /// Padding length not smaller than the payload that remains (§6.1, §6.2, §6.6). Connection
    /// PROTOCOL_ERROR.
    PaddingTooLong {
        /// Frame type.
        kind: u8,
    },
    /// A SETTINGS value out of range (§6.5.2): INITIAL_WINDOW_SIZE above 2^31-1 is a connection
    /// FLOW_CONTROL_ERROR; ENABLE_PUSH not 0/1 or MAX_FRAME_SIZE outside 16384..=16777215 (and
    /// the boolean settings of RFC 8441/9218) are connection PROTOCOL_ERROR.
    InvalidSetting {
        /// Setting identifier.
        id: u16,
        /// Offending value.
        value: u32,
    },
    /// WINDOW_UPDATE with increment 0 (§6.9): stream PROTOCOL_ERROR on a stream, connection
    /// PROTOCOL_ERROR on stream 0.
    ZeroWindowIncrement {
        /// The stream (0 = connection).
        stream_id: StreamId,
    },
    /// A stream depending on itself (§5.3.1). Stream PROTOCOL_ERROR.
    SelfDependency {
        /// The stream.
        stream_id: StreamId,
    },
}

impl FrameError {
    /// The HTTP/2 error code to send.
    pub fn code(&self) -> ErrorCode {
        match self {
            FrameError::FrameTooLarge { .. }
            | FrameError::BadFrameSize { .. }
            | FrameError::BadPrioritySize { .. } => ErrorCode::FrameSizeError,
            FrameError::InvalidSetting { id, .. }
                if *id == super::types::Setting::INITIAL_WINDOW_SIZE =>
            {
                ErrorCode::FlowControlError
            }
            _ => ErrorCode::ProtocolError,
        }
    }

    /// `Some(stream)` when this is a stream error (answer with RST_STREAM on that stream);
    /// `None` for a connection error (answer with GOAWAY).
    pub fn stream_id(&self) -> Option<StreamId> {
        match *self {
            FrameError::BadPrioritySize { stream_id, .. }
            | FrameError::SelfDependency { stream_id } => Some(stream_id),
            FrameError::ZeroWindowIncrement { stream_id } if !stream_id.is_zero() => {
                Some(stream_id)
            }
            _ => None,
        }
    }

    /// True when the whole connection must be closed with GOAWAY.
    pub fn is_connection_error(&self) -> bool {
        self.stream_id().is_none()
    }
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::FrameTooLarge { length, max } => {
                write!(f, "frame too large: {length} bytes, max frame size {max}")
            }
            FrameError::BadFrameSize { kind, length } => {
                write!(f, "invalid size {length} for frame type 0x{kind:x}")
            }
            FrameError::BadPrioritySize { stream_id, length } => {
                write!(f, "PRIORITY frame of size {length} on stream {stream_id}")
            }
            FrameError::StreamIdZero { kind } => {
                write!(f, "frame type 0x{kind:x} on stream 0")
            }
            FrameError::StreamIdNotZero { kind, stream_id } => {
                write!(f, "connection frame type 0x{kind:x} on stream {stream_id}")
            }
            FrameError::PaddingTooLong { kind } => {
                write!(f, "padding too long in frame type 0x{kind:x}")
            }
            FrameError::InvalidSetting { id, value } => {
                write!(f, "invalid value {value} for setting 0x{id:x}")
            }
            FrameError::ZeroWindowIncrement { stream_id } => {
                write!(f, "WINDOW_UPDATE increment 0 on stream {stream_id}")
            }
            FrameError::SelfDependency { stream_id } => {
                write!(f, "stream {stream_id} depends on itself")
            }
        }
    }
}

impl std::error::Error for FrameError {}
