//! HTTP/2 frames (RFC 9113 §4, §6): views over the receive buffer, and encoders.
//!
//! What it does: [`parse_frame`] splits one complete frame off the front of a receive buffer
//! (`BytesMut`) and returns a [`Frame`] whose payloads (DATA data, header block fragments, GOAWAY
//! debug data) are `Bytes` views of that buffer — never copies. Padding of DATA, HEADERS and
//! PUSH_PROMISE is stripped; DATA keeps its full flow-controlled length (RFC 9113 §6.1). The
//! `encode_*` functions append frames to a caller's `BytesMut`; [`encode_data_header`] writes the
//! 9-byte header alone so a payload can be sent as its own view.
//!
//! Every rule of RFC 9113 §4–§6 that can be checked by looking at one frame is checked here and
//! mapped to its outcome ([`FrameError::is_connection_error`], [`FrameError::code`]): frame size
//! against SETTINGS_MAX_FRAME_SIZE and per-type fixed sizes, stream-identifier rules, padding
//! length, SETTINGS value ranges, WINDOW_UPDATE increment 0, PRIORITY self-dependency.
//!
//! What it must not do: keep any state between frames (CONTINUATION sequencing, stream states and
//! flow control belong to [`crate::conn`]), allocate or copy payloads, or panic on any input.
//!
//! Invariants: a parse never consumes more bytes than the buffer holds; `Ok(None)` consumes
//! nothing; a returned error consumed the frame unless it is [`FrameError::FrameTooLarge`] (which
//! is always a connection error, so the buffer is abandoned anyway).

mod encode;
mod error;
mod parse;
mod types;

pub use encode::*;
pub use error::FrameError;
pub use parse::{parse_frame, FRAME_HEADER_LEN};
pub use types::*;
