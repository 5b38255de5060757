//! Length-prefixed message walker (PROTOCOL-HTTP2.md, "Length-Prefixed-Message":
//! `Compressed-Flag` (1 byte, 0 or 1), `Message-Length` (4 bytes, big-endian), `Message`).
//!
//! The walker is fed the DATA payloads of one direction of one stream, in order, as `Bytes`
//! chunks. It emits [`WalkEvent`]s: a start (flag and length), payload pieces that are
//! zero-copy views (`Bytes::slice`) of the chunks, and an end; or it checks borrowed chunks
//! ([`MessageWalker::check`]: same verdicts, no events, no reference counts). A 5-byte prefix
//! may be split across chunks (it is held in a 5-byte array, the only bytes ever copied).
//!
//! Invariants: payload pieces are never empty; the pieces of a message sum to its declared
//! length; after an error the walker is poisoned and repeats that error.

use super::error::GrpcError;
use bytes::Bytes;

/// Size of the message prefix: 1 flag byte + 4 length bytes.
pub const MESSAGE_PREFIX_LEN: usize = 5;

/// Default [`WalkerLimits::max_message_size`]: 4 MiB, gRPC's default receive limit.
pub const DEFAULT_MAX_MESSAGE_SIZE: u32 = 4 * 1024 * 1024;

/// Limits of a [`MessageWalker`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalkerLimits {
    /// Largest accepted `Message-Length` in bytes (the prefix not counted). A larger declared
    /// length is rejected with [`GrpcError::MessageTooLarge`] as soon as the prefix is read,
    /// before any payload is emitted. Default [`DEFAULT_MAX_MESSAGE_SIZE`].
    pub max_message_size: u32,
}

impl Default for WalkerLimits {
    fn default() -> Self {
        WalkerLimits {
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
        }
    }
}

/// What the walker found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WalkEvent {
    /// A message prefix was read.
    MessageStart {
        /// Compressed-Flag was 1.
        compressed: bool,
        /// Declared Message-Length.
        len: u32,
    },
    /// Some payload bytes of the current message: a non-empty view of a fed chunk.
    Payload(Bytes),
    /// The current message is complete.
    MessageEnd,
}

/// A [`WalkEvent`] with the payload as a range of the chunk being walked.
enum Step {
    Start { compressed: bool, len: u32 },
    Payload(std::ops::Range<usize>),
    End,
}

#[derive(Debug, Clone)]
enum State {
    /// Collecting the prefix; `usize` bytes of it are in `prefix`.
    Prefix(usize),
    /// Inside a payload with this many bytes still to come.
    Payload { remaining: u32, len: u32 },
    /// Poisoned by an error.
    Failed(GrpcError),
}

/// Finds message boundaries in a stream of DATA payloads without copying payload bytes.
#[derive(Debug, Clone)]
pub struct MessageWalker {
    limits: WalkerLimits,
    prefix: [u8; MESSAGE_PREFIX_LEN],
    state: State,
    completed: u64,
}

impl Default for MessageWalker {
    fn default() -> Self {
        Self::new(WalkerLimits::default())
    }
}

impl MessageWalker {
    /// A walker at a message boundary.
    pub fn new(limits: WalkerLimits) -> Self {
        MessageWalker {
            limits,
            prefix: [0; MESSAGE_PREFIX_LEN],
            state: State::Prefix(0),
            completed: 0,
        }
    }

    /// Messages completed so far.
    pub fn messages_completed(&self) -> u64 {
        self.completed
    }

    /// `true` when the walker sits exactly between messages (a stream may end here).
    pub fn at_boundary(&self) -> bool {
        matches!(self.state, State::Prefix(0))
    }

    /// Feeds the next chunk; calls `sink` for every event, in order. On error the events before
    /// the failing prefix have been delivered, and the walker stays failed.
    pub fn feed<F: FnMut(WalkEvent)>(
        &mut self,
        chunk: Bytes,
        mut sink: F,
    ) -> Result<(), GrpcError> {
        self.walk(&chunk, |ev| {
            sink(match ev {
                Step::Start { compressed, len } => WalkEvent::MessageStart { compressed, len },
                Step::Payload(r) => WalkEvent::Payload(chunk.slice(r)),
                Step::End => WalkEvent::MessageEnd,
            })
        })
    }

    /// Checks the next chunk (message prefixes, limits) without producing events: the same
    /// state machine as [`Self::feed`], for callers that only need the verdict, at the cost of
    /// no reference count on the chunk.
    pub fn check(&mut self, chunk: &[u8]) -> Result<(), GrpcError> {
        self.walk(chunk, |_| {})
    }

    /// The walk itself; payload pieces are ranges of `chunk`.
    fn walk<F: FnMut(Step)>(&mut self, chunk: &[u8], mut sink: F) -> Result<(), GrpcError> {
        let mut pos = 0usize;
        loop {
            match &mut self.state {
                State::Failed(e) => return Err(e.clone()),
                State::Prefix(have) => {
                    let have_n = *have;
                    if pos >= chunk.len() {
                        return Ok(());
                    }
                    let take = (MESSAGE_PREFIX_LEN - have_n).min(chunk.len() - pos);
                    self.prefix[have_n..have_n + take].copy_from_slice(&chunk[pos..pos + take]);
                    pos += take;
                    let now = have_n + take;
                    if now < MESSAGE_PREFIX_LEN {
                        self.state = State::Prefix(now);
                        return Ok(());
                    }
                    let flag = self.prefix[0];
                    let len = u32::from_be_bytes([
                        self.prefix[1],
                        self.prefix[2],
                        self.prefix[3],
                        self.prefix[4],
                    ]);
                    if flag > 1 {
                        return self.fail(GrpcError::InvalidCompressedFlag(flag));
                    }
                    if len > self.limits.max_message_size {
                        return self.fail(GrpcError::MessageTooLarge {
                            len,
                            max: self.limits.max_message_size,
                        });
                    }
                    sink(Step::Start {
                        compressed: flag == 1,
                        len,
                    });
                    if len == 0 {
                        sink(Step::End);
                        self.completed += 1;
                        self.state = State::Prefix(0);
                    } else {
                        self.state = State::Payload {
                            remaining: len,
                            len,
                        };
                    }
                }
                State::Payload { remaining, .. } => {
                    if pos >= chunk.len() {
                        return Ok(());
                    }
                    let avail = chunk.len() - pos;
                    // remaining fits in u32 <= usize on all supported targets (>= 32-bit).
                    let take = avail.min(*remaining as usize);
                    sink(Step::Payload(pos..pos + take));
                    pos += take;
                    // take <= remaining, so this cannot underflow.
                    *remaining -= take as u32;
                    if *remaining == 0 {
                        sink(Step::End);
                        self.completed += 1;
                        self.state = State::Prefix(0);
                    }
                }
            }
        }
    }

    fn fail(&mut self, e: GrpcError) -> Result<(), GrpcError> {
        self.state = State::Failed(e.clone());
        Err(e)
    }

    /// Call at END_STREAM: `Ok` when the stream ended between messages, else
    /// [`GrpcError::TruncatedMessage`] (or the earlier error if the walker failed).
    pub fn finish(&self) -> Result<(), GrpcError> {
        match &self.state {
            State::Prefix(0) => Ok(()),
            State::Prefix(n) => Err(GrpcError::TruncatedMessage {
                received: *n as u64,
                expected: MESSAGE_PREFIX_LEN as u64,
            }),
            State::Payload { remaining, len } => Err(GrpcError::TruncatedMessage {
                received: MESSAGE_PREFIX_LEN as u64 + u64::from(len - remaining),
                expected: MESSAGE_PREFIX_LEN as u64 + u64::from(*len),
            }),
            State::Failed(e) => Err(e.clone()),
        }
    }
}

/// Counts the complete messages in a whole stream body given as chunks; fails on any walker
/// error, including a truncated last message.
pub fn count_messages<I>(chunks: I, limits: WalkerLimits) -> Result<u64, GrpcError>
where
    I: IntoIterator<Item = Bytes>,
{
    let mut w = MessageWalker::new(limits);
    for c in chunks {
        w.feed(c, |_| {})?;
    }
    w.finish()?;
    Ok(w.messages_completed())
}
