//! Frame encoders: append frames to a caller's `BytesMut` (RFC 9113 §4.1, §6).
//!
//! Callers pass values that are legal on the wire (stream ids ≤ 2^31-1, increments 1..=2^31-1,
//! payloads ≤ the peer's max frame size); out-of-range values are masked, never panicked on.

use super::types::*;
use bytes::{BufMut, Bytes, BytesMut};

/// Writes a 9-byte frame header (RFC 9113 §4.1). `length` is masked to 24 bits.
#[inline]
pub fn encode_header(dst: &mut BytesMut, length: u32, kind: u8, flags: u8, stream: StreamId) {
    let l = (length & 0x00ff_ffff).to_be_bytes();
    let s = stream.get().to_be_bytes();
    dst.put_slice(&[l[1], l[2], l[3], kind, flags, s[0], s[1], s[2], s[3]]);
}

/// Writes only the 9-byte header of a DATA frame carrying `len` bytes (§6.1); the payload is then
/// sent as its own `Bytes` view.
#[inline]
pub fn encode_data_header(dst: &mut BytesMut, stream: StreamId, len: u32, end_stream: bool) {
    let f = if end_stream { flags::END_STREAM } else { 0 };
    encode_header(dst, len, kind::DATA, f, stream);
}

/// Writes a whole DATA frame, copying `payload` (tests and small frames).
pub fn encode_data(dst: &mut BytesMut, stream: StreamId, payload: &[u8], end_stream: bool) {
    encode_data_header(dst, stream, payload.len() as u32, end_stream);
    dst.put_slice(payload);
}

/// Writes a DATA frame with `pad` bytes of zero padding (§6.1); the frame's flow-controlled
/// length is `payload.len() + pad + 1`.
pub fn encode_data_padded(
    dst: &mut BytesMut,
    stream: StreamId,
    payload: &[u8],
    pad: u8,
    end_stream: bool,
) {
    let mut f = flags::PADDED;
    if end_stream {
        f |= flags::END_STREAM;
    }
    encode_header(
        dst,
        payload.len() as u32 + pad as u32 + 1,
        kind::DATA,
        f,
        stream,
    );
    dst.put_u8(pad);
    dst.put_slice(payload);
    dst.put_bytes(0, pad as usize);
}

/// Writes a header block as one HEADERS frame followed by as many CONTINUATION frames as needed
/// so that no frame exceeds `max_frame_size` (§4.3, §6.2, §6.10). END_HEADERS goes on the last
/// frame; END_STREAM on the HEADERS frame.
pub fn encode_headers(
    dst: &mut BytesMut,
    stream: StreamId,
    block: &[u8],
    end_stream: bool,
    max_frame_size: u32,
) {
    let f = if end_stream { flags::END_STREAM } else { 0 };
    encode_block(dst, kind::HEADERS, f, stream, &[], block, max_frame_size);
}

/// Writes a PUSH_PROMISE (§6.6) with its CONTINUATIONs. We never send pushes in the proxy; this
/// exists for tests that play a misbehaving peer.
pub fn encode_push_promise(
    dst: &mut BytesMut,
    stream: StreamId,
    promised: StreamId,
    block: &[u8],
    max_frame_size: u32,
) {
    let p = promised.get().to_be_bytes();
    encode_block(
        dst,
        kind::PUSH_PROMISE,
        0,
        stream,
        &p,
        block,
        max_frame_size,
    );
}

fn encode_block(
    dst: &mut BytesMut,
    first_kind: u8,
    first_flags: u8,
    stream: StreamId,
    prefix: &[u8],
    block: &[u8],
    max_frame_size: u32,
) {
    let max = (max_frame_size.clamp(DEFAULT_MAX_FRAME_SIZE, MAX_MAX_FRAME_SIZE)) as usize;
    let first_room = max - prefix.len();
    let (first, mut rest) = block.split_at(block.len().min(first_room));
    let mut f = first_flags;
    if rest.is_empty() {
        f |= flags::END_HEADERS;
    }
    dst.reserve(block.len() + prefix.len() + 9 * (1 + block.len() / max));
    encode_header(
        dst,
        (prefix.len() + first.len()) as u32,
        first_kind,
        f,
        stream,
    );
    dst.put_slice(prefix);
    dst.put_slice(first);
    while !rest.is_empty() {
        let (chunk, r) = rest.split_at(rest.len().min(max));
        rest = r;
        encode_continuation(dst, stream, chunk, rest.is_empty());
    }
}

/// Writes one CONTINUATION frame (§6.10).
pub fn encode_continuation(dst: &mut BytesMut, stream: StreamId, block: &[u8], end_headers: bool) {
    let f = if end_headers { flags::END_HEADERS } else { 0 };
    encode_header(dst, block.len() as u32, kind::CONTINUATION, f, stream);
    dst.put_slice(block);
}

/// Writes a PRIORITY frame (§6.3).
pub fn encode_priority(dst: &mut BytesMut, stream: StreamId, p: Priority) {
    encode_header(dst, 5, kind::PRIORITY, 0, stream);
    let mut d = p.dependency.get();
    if p.exclusive {
        d |= 0x8000_0000;
    }
    dst.put_u32(d);
    dst.put_u8(p.weight);
}

/// Writes a RST_STREAM frame (§6.4).
pub fn encode_rst_stream(dst: &mut BytesMut, stream: StreamId, code: ErrorCode) {
    encode_header(dst, 4, kind::RST_STREAM, 0, stream);
    dst.put_u32(code.to_u32());
}

/// Writes a SETTINGS frame with the given parameters, in order (§6.5).
pub fn encode_settings(dst: &mut BytesMut, settings: &[Setting]) {
    encode_header(
        dst,
        6 * settings.len() as u32,
        kind::SETTINGS,
        0,
        StreamId::ZERO,
    );
    for s in settings {
        dst.put_u16(s.id);
        dst.put_u32(s.value);
    }
}

/// Writes a SETTINGS frame carrying the present fields of `settings` (§6.5).
pub fn encode_settings_struct(dst: &mut BytesMut, settings: &Settings) {
    let n = settings.iter().count() as u32;
    encode_header(dst, 6 * n, kind::SETTINGS, 0, StreamId::ZERO);
    for s in settings.iter() {
        dst.put_u16(s.id);
        dst.put_u32(s.value);
    }
}

/// Writes an empty SETTINGS frame with ACK (§6.5).
pub fn encode_settings_ack(dst: &mut BytesMut) {
    encode_header(dst, 0, kind::SETTINGS, flags::ACK, StreamId::ZERO);
}

/// Writes a PING (§6.7).
pub fn encode_ping(dst: &mut BytesMut, ack: bool, data: [u8; 8]) {
    let f = if ack { flags::ACK } else { 0 };
    encode_header(dst, 8, kind::PING, f, StreamId::ZERO);
    dst.put_slice(&data);
}

/// Writes a GOAWAY (§6.8).
pub fn encode_goaway(dst: &mut BytesMut, last_stream_id: StreamId, code: ErrorCode, debug: &[u8]) {
    encode_header(dst, 8 + debug.len() as u32, kind::GOAWAY, 0, StreamId::ZERO);
    dst.put_u32(last_stream_id.get());
    dst.put_u32(code.to_u32());
    dst.put_slice(debug);
}

/// Writes a WINDOW_UPDATE (§6.9). `increment` is masked to 31 bits.
pub fn encode_window_update(dst: &mut BytesMut, stream: StreamId, increment: u32) {
    encode_header(dst, 4, kind::WINDOW_UPDATE, 0, stream);
    dst.put_u32(increment & MAX_WINDOW);
}

impl Frame {
    /// Encodes this frame (the inverse of [`super::parse_frame`]). DATA with `flow_len` larger than
    /// the payload is re-padded; unknown frames are written with an empty payload. Header blocks
    /// are written as one frame (use [`encode_headers`] to split them).
    pub fn encode(&self, dst: &mut BytesMut) {
        match self {
            Frame::Data {
                stream_id,
                payload,
                end_stream,
                flow_len,
            } => {
                let extra = (*flow_len as usize).saturating_sub(payload.len());
                if extra == 0 {
                    encode_data(dst, *stream_id, payload, *end_stream);
                } else {
                    let pad = (extra - 1).min(255) as u8;
                    encode_data_padded(dst, *stream_id, payload, pad, *end_stream);
                }
            }
            Frame::Headers {
                stream_id,
                block,
                end_stream,
                end_headers,
                priority,
            } => {
                let mut f = 0;
                if *end_stream {
                    f |= flags::END_STREAM;
                }
                if *end_headers {
                    f |= flags::END_HEADERS;
                }
                match priority {
                    Some(p) => {
                        f |= flags::PRIORITY;
                        encode_header(dst, block.len() as u32 + 5, kind::HEADERS, f, *stream_id);
                        let mut d = p.dependency.get();
                        if p.exclusive {
                            d |= 0x8000_0000;
                        }
                        dst.put_u32(d);
                        dst.put_u8(p.weight);
                    }
                    None => encode_header(dst, block.len() as u32, kind::HEADERS, f, *stream_id),
                }
                dst.put_slice(block);
            }
            Frame::Priority {
                stream_id,
                priority,
            } => encode_priority(dst, *stream_id, *priority),
            Frame::RstStream { stream_id, code } => encode_rst_stream(dst, *stream_id, *code),
            Frame::Settings { ack: true, .. } => encode_settings_ack(dst),
            Frame::Settings { settings, .. } => encode_settings_struct(dst, settings),
            Frame::PushPromise {
                stream_id,
                promised_id,
                block,
                end_headers,
            } => {
                let f = if *end_headers { flags::END_HEADERS } else { 0 };
                encode_header(
                    dst,
                    block.len() as u32 + 4,
                    kind::PUSH_PROMISE,
                    f,
                    *stream_id,
                );
                dst.put_u32(promised_id.get());
                dst.put_slice(block);
            }
            Frame::Ping { ack, data } => encode_ping(dst, *ack, *data),
            Frame::GoAway {
                last_stream_id,
                code,
                debug,
            } => encode_goaway(dst, *last_stream_id, *code, debug),
            Frame::WindowUpdate {
                stream_id,
                increment,
            } => encode_window_update(dst, *stream_id, *increment),
            Frame::Continuation {
                stream_id,
                block,
                end_headers,
            } => encode_continuation(dst, *stream_id, block, *end_headers),
            Frame::Unknown { header } => {
                encode_header(dst, 0, header.kind, header.flags, header.stream_id)
            }
        }
    }
}

/// Convenience: a frozen copy of an encoded frame (tests).
pub fn to_owned_bytes(f: &Frame) -> Bytes {
    let mut b = BytesMut::new();
    f.encode(&mut b);
    b.freeze()
}
