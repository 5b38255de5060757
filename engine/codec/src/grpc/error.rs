//! The one error type of the gRPC helpers.

use super::status::Code;
use std::fmt;

/// Everything that can go wrong in the gRPC wire helpers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrpcError {
    /// A `grpc-timeout` value is malformed: it must be 1 to 8 ASCII digits followed by exactly
    /// one unit letter out of `H M S m u n` (gRPC PROTOCOL-HTTP2.md, "Timeout"). `reason` names
    /// the rule that was broken.
    InvalidTimeout {
        /// Which rule the value broke.
        reason: &'static str,
    },
    /// A `grpc-status` value is not a run of 1 to 10 ASCII digits fitting in a `u32`.
    InvalidStatus,
    /// A length-prefixed message declares a length above the configured
    /// [`WalkerLimits::max_message_size`](super::WalkerLimits::max_message_size). gRPC answers
    /// this with RESOURCE_EXHAUSTED.
    MessageTooLarge {
        /// The length the message prefix declared.
        len: u32,
        /// The configured maximum.
        max: u32,
    },
    /// A message prefix carries a Compressed-Flag other than 0 or 1 (PROTOCOL-HTTP2.md,
    /// "Length-Prefixed-Message").
    InvalidCompressedFlag(u8),
    /// The stream ended inside a message: either inside the 5-byte prefix or before the declared
    /// number of payload bytes arrived.
    TruncatedMessage {
        /// Bytes of the current message (prefix plus payload) that did arrive.
        received: u64,
        /// Bytes the message needed (5 when the prefix itself was cut short, else 5 + length).
        expected: u64,
    },
}

impl GrpcError {
    /// The gRPC status an edge should answer with when this error ends a call.
    pub fn code(&self) -> Code {
        match self {
            GrpcError::MessageTooLarge { .. } => Code::ResourceExhausted,
            GrpcError::InvalidTimeout { .. }
            | GrpcError::InvalidStatus
            | GrpcError::InvalidCompressedFlag(_)
            | GrpcError::TruncatedMessage { .. } => Code::Internal,
        }
    }
}

impl fmt::Display for GrpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GrpcError::InvalidTimeout { reason } => write!(f, "invalid grpc-timeout: {reason}"),
            GrpcError::InvalidStatus => f.write_str("invalid grpc-status: not a decimal u32"),
            GrpcError::MessageTooLarge { len, max } => write!(
                f,
                "RESOURCE_EXHAUSTED: gRPC message of {len} bytes exceeds the max message size of {max} bytes"
            ),
            GrpcError::InvalidCompressedFlag(v) => {
                write!(f, "invalid gRPC message compressed flag {v} (must be 0 or 1)")
            }
            GrpcError::TruncatedMessage { received, expected } => write!(
                f,
                "truncated gRPC message: stream ended after {received} of {expected} bytes"
            ),
        }
    }
}

impl std::error::Error for GrpcError {}
