//! [`parse_frame`]: one frame off the front of the receive buffer.

use super::error::FrameError;
use super::types::*;
use bytes::{Buf, Bytes, BytesMut};

/// Size of the fixed frame header (RFC 9113 §4.1).
pub const FRAME_HEADER_LEN: usize = 9;

/// Parses one frame from the front of `buf`.
///
/// * `Ok(None)`: the frame is incomplete; nothing was consumed.
/// * `Ok(Some(frame))`: the frame's bytes were removed from `buf`; payload fields are views.
/// * `Err(e)`: the frame breaks a rule (see [`FrameError`] for the outcome of each). The frame was
///   consumed, except for [`FrameError::FrameTooLarge`] (a connection error).
///
/// `max_frame_size` is the SETTINGS_MAX_FRAME_SIZE we advertised (RFC 9113 §4.2).
#[inline]
pub fn parse_frame(buf: &mut BytesMut, max_frame_size: u32) -> Result<Option<Frame>, FrameError> {
    let Some(head) = FrameHeader::parse(buf) else {
        return Ok(None);
    };
    if head.length > max_frame_size {
        return Err(FrameError::FrameTooLarge {
            length: head.length,
            max: max_frame_size,
        });
    }
    let total = FRAME_HEADER_LEN + head.length as usize;
    if buf.len() < total {
        return Ok(None);
    }
    match head.kind {
        kind::DATA | kind::HEADERS | kind::PUSH_PROMISE | kind::CONTINUATION | kind::GOAWAY => {
            let mut payload = buf.split_to(total).freeze();
            payload.advance(FRAME_HEADER_LEN);
            parse_view_frame(head, payload)
        }
        _ => {
            let r = parse_control_frame(head, &buf[FRAME_HEADER_LEN..total]);
            buf.advance(total);
            r
        }
    }
}

#[inline]
fn require_stream(head: &FrameHeader) -> Result<(), FrameError> {
    if head.stream_id.is_zero() {
        Err(FrameError::StreamIdZero { kind: head.kind })
    } else {
        Ok(())
    }
}

#[inline]
fn require_zero(head: &FrameHeader) -> Result<(), FrameError> {
    if head.stream_id.is_zero() {
        Ok(())
    } else {
        Err(FrameError::StreamIdNotZero {
            kind: head.kind,
            stream_id: head.stream_id,
        })
    }
}

/// Strips padding (RFC 9113 §6.1, §6.2, §6.6): `fixed` is the number of mandatory bytes that
/// follow the pad length field (5 for HEADERS with PRIORITY, 4 for PUSH_PROMISE).
#[inline]
fn strip_padding(head: &FrameHeader, payload: &mut Bytes, fixed: usize) -> Result<(), FrameError> {
    if head.flags & flags::PADDED == 0 {
        if payload.len() < fixed {
            return Err(FrameError::BadFrameSize {
                kind: head.kind,
                length: head.length,
            });
        }
        return Ok(());
    }
    let Some(&pad) = payload.first() else {
        // Too small to hold the pad length field (§4.2: "too small to contain mandatory data").
        return Err(FrameError::BadFrameSize {
            kind: head.kind,
            length: head.length,
        });
    };
    let pad = pad as usize;
    let body = payload.len() - 1;
    if body < fixed {
        return Err(FrameError::BadFrameSize {
            kind: head.kind,
            length: head.length,
        });
    }
    // §6.1: "If the length of the padding is the length of the frame payload or greater, the
    // recipient MUST treat this as a connection error of type PROTOCOL_ERROR." The padding must
    // fit in what follows the pad length field and the fixed fields.
    if pad > body - fixed {
        return Err(FrameError::PaddingTooLong { kind: head.kind });
    }
    payload.truncate(payload.len() - pad);
    payload.advance(1);
    Ok(())
}

#[inline]
fn read_priority(b: &[u8]) -> Priority {
    let v = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    Priority {
        dependency: StreamId::new(v),
        exclusive: v & 0x8000_0000 != 0,
        weight: b[4],
    }
}

fn parse_view_frame(head: FrameHeader, mut payload: Bytes) -> Result<Option<Frame>, FrameError> {
    match head.kind {
        kind::DATA => {
            require_stream(&head)?;
            strip_padding(&head, &mut payload, 0)?;
            Ok(Some(Frame::Data {
                stream_id: head.stream_id,
                payload,
                end_stream: head.flags & flags::END_STREAM != 0,
                flow_len: head.length,
            }))
        }
        kind::HEADERS => {
            require_stream(&head)?;
            let has_prio = head.flags & flags::PRIORITY != 0;
            strip_padding(&head, &mut payload, if has_prio { 5 } else { 0 })?;
            let priority = if has_prio {
                let p = read_priority(&payload[..5]);
                payload.advance(5);
                Some(p)
            } else {
                None
            };
            Ok(Some(Frame::Headers {
                stream_id: head.stream_id,
                block: payload,
                end_stream: head.flags & flags::END_STREAM != 0,
                end_headers: head.flags & flags::END_HEADERS != 0,
                priority,
            }))
        }
        kind::PUSH_PROMISE => {
            require_stream(&head)?;
            strip_padding(&head, &mut payload, 4)?;
            let promised_id = StreamId::new(u32::from_be_bytes([
                payload[0], payload[1], payload[2], payload[3],
            ]));
            payload.advance(4);
            Ok(Some(Frame::PushPromise {
                stream_id: head.stream_id,
                promised_id,
                block: payload,
                end_headers: head.flags & flags::END_HEADERS != 0,
            }))
        }
        kind::CONTINUATION => {
            require_stream(&head)?;
            Ok(Some(Frame::Continuation {
                stream_id: head.stream_id,
                block: payload,
                end_headers: head.flags & flags::END_HEADERS != 0,
            }))
        }
        _ => {
            // GOAWAY (§6.8)
            require_zero(&head)?;
            if payload.len() < 8 {
                return Err(FrameError::BadFrameSize {
                    kind: head.kind,
                    length: head.length,
                });
            }
            let last = u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]);
            let code = u32::from_be_bytes([payload[4], payload[5], payload[6], payload[7]]);
            payload.advance(8);
            Ok(Some(Frame::GoAway {
                last_stream_id: StreamId::new(last),
                code: ErrorCode::from(code),
                debug: payload,
            }))
        }
    }
}

fn parse_control_frame(head: FrameHeader, p: &[u8]) -> Result<Option<Frame>, FrameError> {
    let bad_size = || FrameError::BadFrameSize {
        kind: head.kind,
        length: head.length,
    };
    match head.kind {
        kind::PRIORITY => {
            require_stream(&head)?;
            if p.len() != 5 {
                return Err(FrameError::BadPrioritySize {
                    stream_id: head.stream_id,
                    length: head.length,
                });
            }
            let priority = read_priority(p);
            if priority.dependency == head.stream_id {
                return Err(FrameError::SelfDependency {
                    stream_id: head.stream_id,
                });
            }
            Ok(Some(Frame::Priority {
                stream_id: head.stream_id,
                priority,
            }))
        }
        kind::RST_STREAM => {
            require_stream(&head)?;
            let b: [u8; 4] = p.try_into().map_err(|_| bad_size())?;
            Ok(Some(Frame::RstStream {
                stream_id: head.stream_id,
                code: ErrorCode::from(u32::from_be_bytes(b)),
            }))
        }
        kind::SETTINGS => {
            require_zero(&head)?;
            let ack = head.flags & flags::ACK != 0;
            if (ack && !p.is_empty()) || !p.len().is_multiple_of(6) {
                return Err(bad_size());
            }
            let mut settings = Settings::default();
            for c in p.chunks_exact(6) {
                let s = Setting {
                    id: u16::from_be_bytes([c[0], c[1]]),
                    value: u32::from_be_bytes([c[2], c[3], c[4], c[5]]),
                };
                s.validate()?;
                settings.set(s);
            }
            Ok(Some(Frame::Settings { ack, settings }))
        }
        kind::PING => {
            require_zero(&head)?;
            let data: [u8; 8] = p.try_into().map_err(|_| bad_size())?;
            Ok(Some(Frame::Ping {
                ack: head.flags & flags::ACK != 0,
                data,
            }))
        }
        kind::WINDOW_UPDATE => {
            let b: [u8; 4] = p.try_into().map_err(|_| bad_size())?;
            // §6.9: the reserved bit is ignored.
            let increment = u32::from_be_bytes(b) & MAX_WINDOW;
            if increment == 0 {
                return Err(FrameError::ZeroWindowIncrement {
                    stream_id: head.stream_id,
                });
            }
            Ok(Some(Frame::WindowUpdate {
                stream_id: head.stream_id,
                increment,
            }))
        }
        _ => Ok(Some(Frame::Unknown { header: head })),
    }
}
