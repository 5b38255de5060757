//! The output queue: control frames and frame headers coalesced in one `BytesMut`, large DATA
//! payloads queued as their own `Bytes` views (for writev or TLS writes), in order.

use bytes::{Buf, Bytes, BytesMut};
use std::collections::VecDeque;

/// Ordered pending output. Invariant: `len` = bytes in `chunks` + bytes in `buf`; `buf` always
/// comes after every chunk.
#[derive(Debug, Default)]
pub(crate) struct OutQueue {
    chunks: VecDeque<Bytes>,
    pub(crate) buf: BytesMut,
    len_chunks: usize,
}

impl OutQueue {
    pub(crate) fn len(&self) -> usize {
        self.len_chunks + self.buf.len()
    }

    fn seal(&mut self) {
        if !self.buf.is_empty() {
            let b = self.buf.split().freeze();
            self.len_chunks += b.len();
            self.chunks.push_back(b);
        }
    }

    /// Appends a payload view after everything queued so far.
    pub(crate) fn push_view(&mut self, b: Bytes) {
        if b.is_empty() {
            return;
        }
        self.seal();
        self.len_chunks += b.len();
        self.chunks.push_back(b);
    }

    /// All pending chunks, in order.
    pub(crate) fn chunks(&mut self) -> impl Iterator<Item = &Bytes> {
        self.seal();
        self.chunks.iter()
    }

    /// Removes and returns the first pending chunk.
    pub(crate) fn pop(&mut self) -> Option<Bytes> {
        self.seal();
        let b = self.chunks.pop_front()?;
        self.len_chunks -= b.len();
        Some(b)
    }

    /// Marks `n` bytes (from the front) as written. Returns how many were actually dropped.
    pub(crate) fn advance(&mut self, mut n: usize) -> usize {
        self.seal();
        let mut done = 0;
        while n > 0 {
            let Some(front) = self.chunks.front_mut() else {
                break;
            };
            let k = n.min(front.len());
            front.advance(k);
            n -= k;
            done += k;
            self.len_chunks -= k;
            if front.is_empty() {
                self.chunks.pop_front();
            }
        }
        done
    }
}
