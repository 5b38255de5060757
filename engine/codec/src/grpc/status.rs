//! gRPC status codes (gRPC `doc/statuscodes.md`), `grpc-status` parsing, and the two mappings
//! an edge needs when an HTTP/2 peer gives no `grpc-status`:
//! - HTTP status → gRPC status (gRPC `doc/http-grpc-status-mapping.md`),
//! - RST_STREAM error code (RFC 9113 §7) → gRPC status (gRPC `doc/PROTOCOL-HTTP2.md`, "Errors").

use super::error::GrpcError;
use std::fmt;

/// The 17 gRPC status codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u32)]
pub enum Code {
    /// 0: not an error.
    Ok = 0,
    /// 1: the operation was cancelled, typically by the caller.
    Cancelled = 1,
    /// 2: unknown error.
    Unknown = 2,
    /// 3: the client specified an invalid argument.
    InvalidArgument = 3,
    /// 4: the deadline expired before the operation could complete.
    DeadlineExceeded = 4,
    /// 5: some requested entity was not found.
    NotFound = 5,
    /// 6: the entity a client attempted to create already exists.
    AlreadyExists = 6,
    /// 7: the caller lacks permission.
    PermissionDenied = 7,
    /// 8: some resource (quota, message size, ...) has been exhausted.
    ResourceExhausted = 8,
    /// 9: the system is not in a state required for the operation.
    FailedPrecondition = 9,
    /// 10: the operation was aborted.
    Aborted = 10,
    /// 11: the operation was attempted past the valid range.
    OutOfRange = 11,
    /// 12: the operation is not implemented or not supported.
    Unimplemented = 12,
    /// 13: internal error.
    Internal = 13,
    /// 14: the service is currently unavailable (retryable).
    Unavailable = 14,
    /// 15: unrecoverable data loss or corruption.
    DataLoss = 15,
    /// 16: the request lacks valid authentication credentials.
    Unauthenticated = 16,
}

const ALL: [Code; 17] = [
    Code::Ok,
    Code::Cancelled,
    Code::Unknown,
    Code::InvalidArgument,
    Code::DeadlineExceeded,
    Code::NotFound,
    Code::AlreadyExists,
    Code::PermissionDenied,
    Code::ResourceExhausted,
    Code::FailedPrecondition,
    Code::Aborted,
    Code::OutOfRange,
    Code::Unimplemented,
    Code::Internal,
    Code::Unavailable,
    Code::DataLoss,
    Code::Unauthenticated,
];

const STATUS_STRS: [&str; 17] = [
    "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16",
];

/// Canonical gRPC status names, indexed by code (grpc/doc/statuscodes.md).
pub const STATUS_NAMES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

impl Code {
    /// All codes in numeric order.
    pub const ALL: [Code; 17] = ALL;

    /// The code with this number, or `None` outside 0..=16.
    pub fn from_u32(v: u32) -> Option<Code> {
        ALL.get(usize::try_from(v).ok()?).copied()
    }

    /// The numeric value.
    pub fn as_u32(self) -> u32 {
        self as u32
    }

    /// The canonical upper-case name, e.g. `DEADLINE_EXCEEDED`.
    pub fn name(self) -> &'static str {
        STATUS_NAMES[self as usize]
    }

    /// The decimal `grpc-status` header value, e.g. `"14"` (static, no allocation).
    pub fn as_status_str(self) -> &'static str {
        STATUS_STRS[self as usize]
    }

    /// gRPC status for an HTTP response that carried no `grpc-status`
    /// (http-grpc-status-mapping.md): 400 → INTERNAL, 401 → UNAUTHENTICATED,
    /// 403 → PERMISSION_DENIED, 404 → UNIMPLEMENTED, 429/502/503/504 → UNAVAILABLE,
    /// anything else → UNKNOWN.
    pub fn from_http_status(status: u16) -> Code {
        match status {
            400 => Code::Internal,
            401 => Code::Unauthenticated,
            403 => Code::PermissionDenied,
            404 => Code::Unimplemented,
            429 | 502 | 503 | 504 => Code::Unavailable,
            _ => Code::Unknown,
        }
    }

    /// gRPC status for a stream reset with this raw HTTP/2 error code (RFC 9113 §7) before any
    /// `grpc-status` arrived (PROTOCOL-HTTP2.md, "Errors"): REFUSED_STREAM (0x7) → UNAVAILABLE,
    /// CANCEL (0x8) → CANCELLED, ENHANCE_YOUR_CALM (0xb) → RESOURCE_EXHAUSTED,
    /// INADEQUATE_SECURITY (0xc) → PERMISSION_DENIED; NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR,
    /// FLOW_CONTROL_ERROR, SETTINGS_TIMEOUT, FRAME_SIZE_ERROR, COMPRESSION_ERROR, CONNECT_ERROR
    /// → INTERNAL. Codes the spec table does not list (STREAM_CLOSED, HTTP_1_1_REQUIRED and
    /// unknown codes, which RFC 9113 §7 lets us treat as INTERNAL_ERROR) → INTERNAL.
    pub fn from_rst_stream(error_code: u32) -> Code {
        match error_code {
            0x7 => Code::Unavailable,
            0x8 => Code::Cancelled,
            0xb => Code::ResourceExhausted,
            0xc => Code::PermissionDenied,
            _ => Code::Internal,
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Parses a `grpc-status` header value. Strict: 1 to 10 ASCII digits forming a `u32`, no sign,
/// no whitespace. A well-formed number outside 0..=16 yields [`Code::Unknown`], as gRPC
/// clients treat unknown codes (statuscodes.md); a malformed value is
/// [`GrpcError::InvalidStatus`].
pub fn parse_grpc_status(value: &[u8]) -> Result<Code, GrpcError> {
    if value.is_empty() || value.len() > 10 {
        return Err(GrpcError::InvalidStatus);
    }
    let mut v: u64 = 0;
    for &d in value {
        if !d.is_ascii_digit() {
            return Err(GrpcError::InvalidStatus);
        }
        v = v * 10 + u64::from(d - b'0');
    }
    let v = u32::try_from(v).map_err(|_| GrpcError::InvalidStatus)?;
    Ok(Code::from_u32(v).unwrap_or(Code::Unknown))
}
