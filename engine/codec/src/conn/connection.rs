//! [`Connection`]: the HTTP/2 connection state machine (both roles).

use super::closed::ClosedStreams;
use super::config::ConnConfig;
use super::event::*;
use super::output::OutQueue;
use super::stream::{Closed, RemoteHeaders, State, Stream};
use super::stream_map::StreamMap;
use crate::frame::*;
use crate::hpack::{Decoder, Encoder, FieldRef, HeaderField, HpackError};
use bytes::{Buf, Bytes, BytesMut};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The client connection preface (RFC 9113 §3.4).
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Outstanding PINGs remembered for RTT (older ones are forgotten).
const MAX_OUTSTANDING_PINGS: usize = 16;

/// Which side of the connection we are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// We accepted the connection (talking to a client): peers open odd streams.
    Server,
    /// We opened the connection (talking to an origin): we open odd streams.
    Client,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ConnState {
    /// Server: waiting for the 24-byte client preface.
    AwaitPreface,
    /// Waiting for the peer's first frame, which must be SETTINGS (§3.4).
    AwaitSettings,
    Open,
    Closed,
}

/// A header block being assembled from HEADERS + CONTINUATION (§6.10).
#[derive(Debug)]
struct PendingBlock {
    stream: StreamId,
    end_stream: bool,
    priority: Option<Priority>,
    buf: BytesMut,
    frames: u32,
}

/// Per-window abuse counters (reset together when the flood window elapses).
#[derive(Debug, Default)]
struct Floods {
    /// End of the current counting window (its start plus `flood_window_ms`): a comparison
    /// per frame instead of a subtraction.
    until: Option<Instant>,
    resets: u32,
    settings: u32,
    pings: u32,
    empty: u32,
}

/// One HTTP/2 connection, sans-IO. See the [module docs](super).
#[derive(Debug)]
pub struct Connection {
    role: Role,
    cfg: ConnConfig,
    state: ConnState,
    out: OutQueue,
    events: VecDeque<Event>,
    streams: StreamMap<Stream>,
    closed: ClosedStreams,
    /// Next id we open (client role: odd).
    next_local_id: u32,
    /// Highest peer stream we accepted for processing (GOAWAY's last-stream-id, §6.8).
    last_peer_id: u32,
    /// Highest stream id the peer used at all (streams at or below are not idle, §5.1.1).
    highest_peer_id: u32,
    active_remote: u32,
    active_local: u32,
    goaway_sent: Option<StreamId>,
    goaway_received: Option<StreamId>,
    // Peer settings.
    peer_initial_window: u32,
    peer_max_frame_size: u32,
    peer_max_concurrent: u32,
    peer_max_header_list: Option<u32>,
    // Flow control.
    conn_send_window: i64,
    conn_recv_window: u32,
    conn_recv_held: u32,
    conn_recv_released: u32,
    blocked: Vec<StreamId>,
    // SETTINGS ACK deadlines of our unacknowledged SETTINGS, oldest first.
    settings_pending: VecDeque<Instant>,
    pings: VecDeque<([u8; 8], Instant)>,
    cont: Option<PendingBlock>,
    floods: Floods,
    refused_total: u32,
    decoder: Decoder,
    encoder: Encoder,
    scratch: BytesMut,
}

fn is_informational(fields: &[HeaderField]) -> bool {
    fields
        .iter()
        .find(|f| &f.name[..] == b":status")
        .is_some_and(|f| f.value.len() == 3 && f.value[0] == b'1')
}

impl Connection {
    /// Creates a connection and queues our preface: the client preface (client role) and our
    /// SETTINGS, then a connection WINDOW_UPDATE raising the window to `connection_window`.
    /// The SETTINGS ACK deadline starts at `now`.
    pub fn new(role: Role, config: ConnConfig, now: Instant) -> Self {
        let cfg = config.normalized();
        let mut decoder = Decoder::new(cfg.header_table_size as usize);
        decoder.set_max_header_list_size(cfg.max_header_list_size as usize);
        let mut c = Connection {
            role,
            state: match role {
                Role::Server => ConnState::AwaitPreface,
                Role::Client => ConnState::AwaitSettings,
            },
            out: OutQueue::default(),
            events: VecDeque::new(),
            streams: StreamMap::new(),
            closed: ClosedStreams::new(cfg.max_closed_streams),
            next_local_id: match role {
                Role::Client => 1,
                Role::Server => 2,
            },
            last_peer_id: 0,
            highest_peer_id: 0,
            active_remote: 0,
            active_local: 0,
            goaway_sent: None,
            goaway_received: None,
            peer_initial_window: DEFAULT_WINDOW,
            peer_max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            peer_max_concurrent: u32::MAX,
            peer_max_header_list: None,
            conn_send_window: DEFAULT_WINDOW as i64,
            conn_recv_window: cfg.connection_window,
            conn_recv_held: 0,
            conn_recv_released: 0,
            blocked: Vec::new(),
            settings_pending: VecDeque::new(),
            pings: VecDeque::new(),
            cont: None,
            floods: Floods::default(),
            refused_total: 0,
            decoder,
            encoder: Encoder::new(),
            scratch: BytesMut::new(),
            cfg,
        };
        if role == Role::Client {
            c.out.buf.extend_from_slice(PREFACE);
        }
        let mut s = vec![
            Setting {
                id: Setting::MAX_CONCURRENT_STREAMS,
                value: c.cfg.max_concurrent_streams,
            },
            Setting {
                id: Setting::INITIAL_WINDOW_SIZE,
                value: c.cfg.initial_stream_window,
            },
            Setting {
                id: Setting::MAX_FRAME_SIZE,
                value: c.cfg.max_frame_size,
            },
            Setting {
                id: Setting::MAX_HEADER_LIST_SIZE,
                value: c.cfg.max_header_list_size,
            },
        ];
        if c.cfg.header_table_size != 4096 {
            s.insert(
                0,
                Setting {
                    id: Setting::HEADER_TABLE_SIZE,
                    value: c.cfg.header_table_size,
                },
            );
        }
        if role == Role::Client {
            // §6.5.2: we never accept pushes.
            s.insert(
                0,
                Setting {
                    id: Setting::ENABLE_PUSH,
                    value: 0,
                },
            );
        }
        encode_settings(&mut c.out.buf, &s);
        c.settings_pending
            .push_back(now + Duration::from_millis(c.cfg.settings_ack_timeout_ms as u64));
        let extra = c.cfg.connection_window - DEFAULT_WINDOW;
        if extra > 0 {
            encode_window_update(&mut c.out.buf, StreamId::ZERO, extra);
        }
        c
    }

    // ----- accessors -----------------------------------------------------------------------

    /// Our role.
    pub fn role(&self) -> Role {
        self.role
    }
    /// The (normalized) configuration.
    pub fn config(&self) -> &ConnConfig {
        &self.cfg
    }
    /// True once the connection is finished (error or graceful end); only output remains.
    pub fn is_closed(&self) -> bool {
        self.state == ConnState::Closed
    }
    /// True once GOAWAY was sent or received (no new streams).
    pub fn is_going_away(&self) -> bool {
        self.goaway_sent.is_some() || self.goaway_received.is_some()
    }
    /// Streams currently open or half-closed.
    pub fn active_streams(&self) -> usize {
        self.streams.len()
    }
    /// The peer's SETTINGS_MAX_FRAME_SIZE.
    pub fn peer_max_frame_size(&self) -> u32 {
        self.peer_max_frame_size
    }
    /// The peer's SETTINGS_MAX_HEADER_LIST_SIZE, if it sent one (advisory, §6.5.2).
    pub fn peer_max_header_list_size(&self) -> Option<u32> {
        self.peer_max_header_list
    }
    /// The peer's SETTINGS_MAX_CONCURRENT_STREAMS (`u32::MAX` until it sends one).
    pub fn peer_max_concurrent_streams(&self) -> u32 {
        self.peer_max_concurrent
    }
    /// Bytes `send_data` would accept on `stream` now (min of stream and connection windows);
    /// `None` when `send_data` would refuse any DATA: the connection is closed, the stream is
    /// not open for sending, or our HEADERS have not been sent on it yet.
    pub fn send_capacity(&self, stream: StreamId) -> Option<usize> {
        let s = self.writable(stream).ok()?;
        if !s.local_headers_sent {
            return None;
        }
        Some(s.send_window.min(self.conn_send_window).max(0) as usize)
    }
    /// Whether the caller may open another stream right now (client role).
    pub fn can_open_stream(&self) -> bool {
        self.role == Role::Client
            && self.state != ConnState::Closed
            && !self.is_going_away()
            && self.active_local < self.peer_max_concurrent
            && self.next_local_id <= MAX_WINDOW
    }

    // ----- events and output ---------------------------------------------------------------

    /// Next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }
    /// Drains all pending events.
    pub fn drain_events(&mut self) -> impl Iterator<Item = Event> + '_ {
        self.events.drain(..)
    }
    /// Total bytes waiting to be written.
    pub fn output_len(&self) -> usize {
        self.out.len()
    }
    /// True when there is output to write.
    pub fn has_output(&self) -> bool {
        self.out.len() > 0
    }
    /// The pending output, in order: coalesced control frames/frame headers and DATA payload
    /// views. Write them (e.g. with writev) and report progress with [`Self::advance_output`].
    pub fn output_chunks(&mut self) -> impl Iterator<Item = &Bytes> {
        self.out.chunks()
    }
    /// Marks `n` bytes of output as written (from the front). Returns the bytes dropped.
    pub fn advance_output(&mut self, n: usize) -> usize {
        self.out.advance(n)
    }
    /// Removes and returns the next output chunk whole (for transports that copy anyway).
    pub fn pop_output(&mut self) -> Option<Bytes> {
        self.out.pop()
    }

    // ----- time ----------------------------------------------------------------------------

    /// The next instant at which [`Self::poll_timeout`] has work (the SETTINGS ACK deadline).
    pub fn next_deadline(&self) -> Option<Instant> {
        if self.state == ConnState::Closed {
            return None;
        }
        self.settings_pending.front().copied()
    }

    /// Handles expired timers: an unacknowledged SETTINGS past its deadline is a connection
    /// error SETTINGS_TIMEOUT (§6.5.3).
    pub fn poll_timeout(&mut self, now: Instant) {
        if self.state == ConnState::Closed {
            return;
        }
        if self.settings_pending.front().is_some_and(|d| now >= *d) {
            self.fail(ConnError::SettingsTimeout);
        }
    }

    // ----- input ---------------------------------------------------------------------------

    /// Consumes complete frames from the front of `buf` (the receive buffer; payloads become
    /// views of it), producing events and output. Incomplete trailing bytes stay in `buf`.
    /// Returns the number of bytes consumed. On a connection error GOAWAY is queued,
    /// [`Event::Closed`] is emitted, the error returned, and later input is ignored.
    pub fn recv(&mut self, buf: &mut BytesMut, now: Instant) -> Result<usize, ConnError> {
        if self.state == ConnState::Closed {
            return Ok(0);
        }
        let start = buf.len();
        let r = self.recv_inner(buf, now);
        let consumed = start - buf.len();
        match r {
            Ok(()) => Ok(consumed),
            Err(e) => {
                self.fail(e);
                Err(e)
            }
        }
    }

    /// The transport reached end of file. Emits [`Event::Closed`] (an error if streams were
    /// still active).
    pub fn recv_eof(&mut self) {
        if self.state == ConnState::Closed {
            return;
        }
        self.state = ConnState::Closed;
        let error = if self.streams.is_empty() {
            None
        } else {
            Some(ConnError::UnexpectedEof)
        };
        self.drop_streams();
        self.events.push_back(Event::Closed { error });
    }

    fn recv_inner(&mut self, buf: &mut BytesMut, now: Instant) -> Result<(), ConnError> {
        if self.state == ConnState::AwaitPreface {
            let n = buf.len().min(PREFACE.len());
            if buf[..n] != PREFACE[..n] {
                return Err(ConnError::BadPreface);
            }
            if n < PREFACE.len() {
                return Ok(());
            }
            buf.advance(PREFACE.len());
            self.state = ConnState::AwaitSettings;
        }
        while self.state != ConnState::Closed {
            if self.out.len() > self.cfg.max_pending_output as usize {
                return Err(ConnError::Limit(Limit::PendingOutput));
            }
            let frame = match parse_frame(buf, self.cfg.max_frame_size) {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    if self.state == ConnState::AwaitSettings {
                        return Err(ConnError::BadPreface);
                    }
                    match e.stream_id() {
                        Some(_) if self.cont.is_some() => {
                            return Err(ConnError::Protocol("frame interleaved in a header block"))
                        }
                        Some(id) => {
                            self.frame_stream_error(id, e)?;
                            continue;
                        }
                        None => return Err(ConnError::Frame(e)),
                    }
                }
            };
            if self.state == ConnState::AwaitSettings {
                if !matches!(frame, Frame::Settings { ack: false, .. }) {
                    return Err(ConnError::BadPreface);
                }
                self.state = ConnState::Open;
            }
            self.on_frame(frame, now)?;
        }
        Ok(())
    }

    fn flood_tick(&mut self, now: Instant) {
        match self.floods.until {
            Some(until) if now < until => {}
            _ => {
                let window = Duration::from_millis(self.cfg.flood_window_ms as u64);
                self.floods = Floods {
                    // `flood_window_ms` is a u32 of milliseconds: the end is always
                    // representable on a monotonic clock; were it not, the window would
                    // restart at every frame instead of panicking.
                    until: Some(now.checked_add(window).unwrap_or(now)),
                    ..Floods::default()
                };
            }
        }
    }

    fn on_frame(&mut self, frame: Frame, now: Instant) -> Result<(), ConnError> {
        self.flood_tick(now);
        if let Some(p) = &self.cont {
            // §6.10: only CONTINUATION frames of the same stream may follow.
            match &frame {
                Frame::Continuation { stream_id, .. } if *stream_id == p.stream => {}
                _ => return Err(ConnError::Protocol("frame interleaved in a header block")),
            }
        }
        match frame {
            Frame::Data {
                stream_id,
                payload,
                end_stream,
                flow_len,
            } => self.on_data(stream_id, payload, end_stream, flow_len),
            Frame::Headers {
                stream_id,
                block,
                end_stream,
                end_headers,
                priority,
            } => {
                if block.is_empty() && !end_stream {
                    self.bump_empty()?;
                }
                if block.len() > self.cfg.max_header_block_bytes as usize {
                    return Err(ConnError::Limit(Limit::HeaderBlockBytes));
                }
                if end_headers {
                    self.on_header_block(stream_id, block, end_stream, priority)
                } else {
                    self.cont = Some(PendingBlock {
                        stream: stream_id,
                        end_stream,
                        priority,
                        buf: BytesMut::from(&block[..]),
                        frames: 0,
                    });
                    Ok(())
                }
            }
            Frame::Continuation {
                block, end_headers, ..
            } => self.on_continuation(block, end_headers),
            Frame::Priority { .. } => Ok(()), // §5.3.2: deprecated, ignored once validated.
            Frame::RstStream { stream_id, code } => self.on_rst(stream_id, code),
            Frame::Settings { ack, settings } => self.on_settings(ack, settings),
            Frame::PushPromise { .. } => {
                // §8.4: a server must not receive it; a client that set ENABLE_PUSH=0 neither.
                Err(ConnError::Protocol(
                    "PUSH_PROMISE received with push disabled",
                ))
            }
            Frame::Ping { ack, data } => self.on_ping(ack, data, now),
            Frame::GoAway {
                last_stream_id,
                code,
                debug,
            } => {
                self.on_goaway(last_stream_id, code, debug);
                Ok(())
            }
            Frame::WindowUpdate {
                stream_id,
                increment,
            } => self.on_window_update(stream_id, increment),
            Frame::Unknown { .. } => Ok(()), // §5.5: ignored.
        }
    }

    // ----- flood counters ------------------------------------------------------------------

    fn bump_empty(&mut self) -> Result<(), ConnError> {
        self.floods.empty += 1;
        if self.floods.empty > self.cfg.max_empty_frames_per_window {
            return Err(ConnError::Limit(Limit::EmptyFrameFlood));
        }
        Ok(())
    }

    fn bump_resets(&mut self) -> Result<(), ConnError> {
        self.floods.resets += 1;
        if self.floods.resets > self.cfg.max_resets_per_window {
            return Err(ConnError::Limit(Limit::ResetFlood));
        }
        Ok(())
    }

    // ----- stream bookkeeping --------------------------------------------------------------

    /// Is `id` idle from our point of view (§5.1: never opened by its initiator)?
    fn is_idle(&self, id: StreamId) -> bool {
        let v = id.get();
        let peer_initiates_odd = self.role == Role::Server;
        if v.is_multiple_of(2) != peer_initiates_odd {
            // Parity of the peer's streams.
            v > self.highest_peer_id
        } else {
            v >= self.next_local_id
        }
    }

    #[inline]
    fn remember_closed(&mut self, id: u32, how: Closed) {
        self.closed.remember(id, how);
    }

    fn close_stream(&mut self, id: StreamId, how: Closed) {
        if let Some(s) = self.streams.remove(id.get()) {
            if s.remote_initiated {
                self.active_remote -= 1;
            } else {
                self.active_local -= 1;
            }
            self.remember_closed(id.get(), how);
        }
        self.maybe_finish();
    }

    fn remote_end(&mut self, id: StreamId) {
        if let Some(s) = self.streams.get_mut(id.get()) {
            match s.state {
                State::Open => s.state = State::HalfClosedRemote,
                State::HalfClosedLocal => self.close_stream(id, Closed::EndStream),
                State::HalfClosedRemote => {}
            }
        }
    }

    fn local_end(&mut self, id: StreamId) {
        if let Some(s) = self.streams.get_mut(id.get()) {
            match s.state {
                State::Open => s.state = State::HalfClosedLocal,
                State::HalfClosedRemote => self.close_stream(id, Closed::EndStream),
                State::HalfClosedLocal => {}
            }
        }
    }

    fn drop_streams(&mut self) {
        self.streams.clear();
        self.blocked.clear();
        self.active_local = 0;
        self.active_remote = 0;
    }

    /// Graceful end: GOAWAY exchanged and no stream left.
    fn maybe_finish(&mut self) {
        if self.state != ConnState::Closed && self.is_going_away() && self.streams.is_empty() {
            self.state = ConnState::Closed;
            self.events.push_back(Event::Closed { error: None });
        }
    }

    /// Connection error: GOAWAY, close, report.
    fn fail(&mut self, e: ConnError) {
        if self.state == ConnState::Closed {
            return;
        }
        if let ConnError::Limit(limit) = e {
            self.events.push_back(Event::LimitExceeded {
                limit,
                stream: None,
            });
        }
        let debug = e.to_string();
        encode_goaway(
            &mut self.out.buf,
            StreamId::new(self.last_peer_id),
            e.code(),
            debug.as_bytes(),
        );
        self.goaway_sent = Some(StreamId::new(self.last_peer_id));
        self.state = ConnState::Closed;
        self.drop_streams();
        self.cont = None;
        self.events.push_back(Event::Closed { error: Some(e) });
    }

    /// Stream error (§5.4.2): RST_STREAM, close, report, count toward the reset flood.
    fn stream_error(
        &mut self,
        id: StreamId,
        code: ErrorCode,
        reason: ResetReason,
    ) -> Result<(), ConnError> {
        encode_rst_stream(&mut self.out.buf, id, code);
        self.close_stream(id, Closed::LocalReset);
        self.remember_closed(id.get(), Closed::LocalReset);
        self.events.push_back(Event::StreamReset {
            stream: id,
            code,
            reason,
        });
        self.bump_resets()
    }

    fn frame_stream_error(&mut self, id: StreamId, e: FrameError) -> Result<(), ConnError> {
        if let FrameError::ZeroWindowIncrement { .. } = e {
            if self.is_idle(id) {
                return Err(ConnError::Protocol("WINDOW_UPDATE on an idle stream"));
            }
        }
        // Never answer with RST_STREAM on an idle stream (§6.4); PRIORITY errors there are
        // dropped (the frame has no other effect).
        if self.is_idle(id) || self.closed.get(id.get()) == Some(Closed::LocalReset) {
            return Ok(());
        }
        self.stream_error(id, e.code(), ResetReason::Frame(e))
    }

    /// A frame for a stream we do not hold (closed, forgotten or idle), §5.1.
    fn missing_stream(&mut self, id: StreamId, kind_name: &'static str) -> Result<(), ConnError> {
        match self.closed.get(id.get()) {
            Some(Closed::LocalReset) | Some(Closed::GoneAway) => Ok(()),
            Some(Closed::PeerReset) => {
                self.stream_error(id, ErrorCode::StreamClosed, ResetReason::StreamClosed)
            }
            Some(Closed::EndStream) => Err(ConnError::StreamClosed(id)),
            None if self.is_idle(id) => Err(ConnError::Protocol(kind_name)),
            None => Err(ConnError::StreamClosed(id)),
        }
    }

    // ----- receive-side flow control -------------------------------------------------------

    fn credit_conn(&mut self, n: u32) {
        self.conn_recv_released += n;
        let threshold = (self.cfg.connection_window / 2).max(1);
        if self.conn_recv_released >= threshold && self.state != ConnState::Closed {
            encode_window_update(&mut self.out.buf, StreamId::ZERO, self.conn_recv_released);
            self.conn_recv_window += self.conn_recv_released;
            self.conn_recv_released = 0;
        }
    }

    fn credit_stream(&mut self, id: StreamId, n: u32) {
        let threshold = (self.cfg.initial_stream_window / 2).max(1);
        if let Some(s) = self.streams.get_mut(id.get()) {
            s.recv_released += n;
            if s.remote_open() && s.recv_released >= threshold {
                encode_window_update(&mut self.out.buf, id, s.recv_released);
                s.recv_window += s.recv_released;
                s.recv_released = 0;
            }
        }
    }

    /// Returns `n` bytes of receive credit for `stream` once the caller has consumed (or
    /// forwarded) them. Credit is returned to the connection even if the stream has since
    /// closed; a WINDOW_UPDATE is queued once at least half a window is owed. Releasing more
    /// than was delivered is clamped.
    pub fn release_capacity(&mut self, stream: StreamId, n: usize) {
        let n = n.min(u32::MAX as usize) as u32;
        let c = n.min(self.conn_recv_held);
        self.conn_recv_held -= c;
        self.credit_conn(c);
        if let Some(s) = self.streams.get_mut(stream.get()) {
            let k = n.min(s.recv_held);
            s.recv_held -= k;
            self.credit_stream(stream, k);
        }
    }

    fn on_data(
        &mut self,
        id: StreamId,
        payload: Bytes,
        end_stream: bool,
        flow_len: u32,
    ) -> Result<(), ConnError> {
        // §6.9.1: DATA counts against the connection window whatever the stream state.
        if flow_len > self.conn_recv_window {
            return Err(ConnError::FlowControl("connection receive window exceeded"));
        }
        self.conn_recv_window -= flow_len;
        if flow_len == 0 && !end_stream {
            self.bump_empty()?;
        }
        let len = payload.len() as u32;
        let padding = flow_len - len;
        let Some(s) = self.streams.get_mut(id.get()) else {
            self.credit_conn(flow_len);
            return self.missing_stream(id, "DATA on an idle stream");
        };
        if !s.remote_open() {
            // §5.1 half-closed (remote).
            self.credit_conn(flow_len);
            return self.stream_error(id, ErrorCode::StreamClosed, ResetReason::StreamClosed);
        }
        if s.remote_headers != RemoteHeaders::Initial {
            self.credit_conn(flow_len);
            return self.stream_error(
                id,
                ErrorCode::ProtocolError,
                ResetReason::Malformed("DATA before HEADERS"),
            );
        }
        if flow_len > s.recv_window {
            self.credit_conn(flow_len);
            return self.stream_error(id, ErrorCode::FlowControlError, ResetReason::FlowControl);
        }
        s.recv_window -= flow_len;
        s.recv_held += len;
        self.conn_recv_held += len;
        if padding > 0 {
            self.credit_conn(padding);
            self.credit_stream(id, padding);
        }
        self.events.push_back(Event::Data {
            stream: id,
            data: payload,
            end_stream,
            flow_len,
        });
        if end_stream {
            self.remote_end(id);
        }
        Ok(())
    }

    // ----- header blocks -------------------------------------------------------------------

    fn on_continuation(&mut self, block: Bytes, end_headers: bool) -> Result<(), ConnError> {
        let Some(p) = self.cont.as_mut() else {
            return Err(ConnError::Protocol(
                "CONTINUATION without a preceding HEADERS",
            ));
        };
        p.frames += 1;
        if p.frames > self.cfg.max_continuation_frames {
            return Err(ConnError::Limit(Limit::ContinuationFrames));
        }
        if p.buf.len() + block.len() > self.cfg.max_header_block_bytes as usize {
            return Err(ConnError::Limit(Limit::HeaderBlockBytes));
        }
        p.buf.extend_from_slice(&block);
        if block.is_empty() && !end_headers {
            self.bump_empty()?;
        }
        if end_headers {
            if let Some(p) = self.cont.take() {
                return self.on_header_block(p.stream, p.buf.freeze(), p.end_stream, p.priority);
            }
        }
        Ok(())
    }

    fn on_header_block(
        &mut self,
        id: StreamId,
        block: Bytes,
        end_stream: bool,
        priority: Option<Priority>,
    ) -> Result<(), ConnError> {
        // Always decode first: the HPACK context must follow every block (RFC 9113 §4.3).
        // A list handed back with `recycle_fields`, or a new one: every field takes at least
        // one octet of the block, so no regrowth for small blocks.
        let mut fields = super::spares::take_fields(block.len().min(12));
        let too_large = match self.decoder.decode(&block, &mut |f| fields.push(f)) {
            Ok(()) => false,
            Err(HpackError::HeaderListTooLarge { .. }) => true,
            Err(e) => return Err(ConnError::Compression(e)),
        };
        let self_dep = priority.is_some_and(|p| p.dependency == id);

        if !self.streams.contains_key(id.get()) {
            if self.closed.contains(id.get()) || !self.is_idle(id) {
                return self.missing_stream(id, "HEADERS on an idle stream");
            }
            // A new stream opened by the peer.
            if self.role == Role::Client {
                return Err(ConnError::Protocol(if id.get().is_multiple_of(2) {
                    "HEADERS on a server-initiated stream (push is disabled)"
                } else {
                    "HEADERS on an idle stream"
                }));
            }
            if id.get().is_multiple_of(2) {
                return Err(ConnError::Protocol("client opened an even stream id"));
            }
            self.highest_peer_id = id.get();
            if self.goaway_sent.is_some() {
                // §6.8: streams above our GOAWAY's last-stream-id are ignored, and so are
                // their later frames.
                self.remember_closed(id.get(), Closed::LocalReset);
                return Ok(());
            }
            self.last_peer_id = id.get();
            if self.active_remote >= self.cfg.max_concurrent_streams {
                // §5.1.2: refuse beyond our limit.
                encode_rst_stream(&mut self.out.buf, id, ErrorCode::RefusedStream);
                self.remember_closed(id.get(), Closed::LocalReset);
                self.events.push_back(Event::StreamReset {
                    stream: id,
                    code: ErrorCode::RefusedStream,
                    reason: ResetReason::Refused,
                });
                self.events.push_back(Event::LimitExceeded {
                    limit: Limit::ConcurrentStreams,
                    stream: Some(id),
                });
                self.refused_total += 1;
                if self.refused_total > self.cfg.max_refused_streams {
                    return Err(ConnError::Limit(Limit::RefusedStreams));
                }
                return Ok(());
            }
            let mut s = Stream::new(
                id,
                true,
                self.peer_initial_window,
                self.cfg.initial_stream_window,
            );
            s.remote_headers = RemoteHeaders::Initial;
            self.streams.insert(id.get(), s);
            self.active_remote += 1;
            if self_dep {
                return self.stream_error(
                    id,
                    ErrorCode::ProtocolError,
                    ResetReason::Frame(FrameError::SelfDependency { stream_id: id }),
                );
            }
            if too_large {
                return self.header_list_too_large(id, true, end_stream);
            }
            self.events.push_back(Event::Headers {
                stream: id,
                kind: HeadersKind::Initial,
                fields,
                end_stream,
            });
            if end_stream {
                self.remote_end(id);
            }
            return Ok(());
        }

        let Some(s) = self.streams.get_mut(id.get()) else {
            return Ok(());
        };
        if !s.remote_open() {
            return self.stream_error(id, ErrorCode::StreamClosed, ResetReason::StreamClosed);
        }
        if self_dep {
            return self.stream_error(
                id,
                ErrorCode::ProtocolError,
                ResetReason::Frame(FrameError::SelfDependency { stream_id: id }),
            );
        }
        if too_large {
            return self.header_list_too_large(id, false, end_stream);
        }
        let kind = match s.remote_headers {
            RemoteHeaders::Initial => HeadersKind::Trailers,
            RemoteHeaders::None | RemoteHeaders::Informational => {
                if is_informational(&fields) {
                    HeadersKind::Informational
                } else {
                    HeadersKind::Initial
                }
            }
        };
        // §8.1: trailers end the stream; 1xx responses never do.
        let malformed = match kind {
            HeadersKind::Trailers if !end_stream => Some("trailers without END_STREAM"),
            HeadersKind::Informational if end_stream => Some("1xx response with END_STREAM"),
            _ => None,
        };
        if let Some(m) = malformed {
            return self.stream_error(id, ErrorCode::ProtocolError, ResetReason::Malformed(m));
        }
        s.remote_headers = match kind {
            HeadersKind::Informational => RemoteHeaders::Informational,
            _ => RemoteHeaders::Initial,
        };
        self.events.push_back(Event::Headers {
            stream: id,
            kind,
            fields,
            end_stream,
        });
        if end_stream {
            self.remote_end(id);
        }
        Ok(())
    }

    /// §10.5.1: a header list over our limit is a stream error. As a server answering a request
    /// we send a `431` response (END_STREAM) and reset the rest with NO_ERROR if the request is
    /// still open; otherwise RST_STREAM(CANCEL).
    fn header_list_too_large(
        &mut self,
        id: StreamId,
        request: bool,
        end_stream: bool,
    ) -> Result<(), ConnError> {
        self.events.push_back(Event::LimitExceeded {
            limit: Limit::HeaderListSize,
            stream: Some(id),
        });
        if request && self.role == Role::Server {
            self.scratch.clear();
            self.encoder.encode(
                [FieldRef {
                    name: b":status",
                    value: b"431",
                    sensitive: false,
                }],
                &mut self.scratch,
            );
            encode_headers(
                &mut self.out.buf,
                id,
                &self.scratch,
                true,
                self.peer_max_frame_size,
            );
            let code = if end_stream {
                self.close_stream(id, Closed::EndStream);
                ErrorCode::NoError
            } else {
                encode_rst_stream(&mut self.out.buf, id, ErrorCode::NoError);
                self.close_stream(id, Closed::LocalReset);
                ErrorCode::NoError
            };
            self.events.push_back(Event::StreamReset {
                stream: id,
                code,
                reason: ResetReason::HeaderListTooLarge,
            });
            return self.bump_resets();
        }
        self.stream_error(id, ErrorCode::Cancel, ResetReason::HeaderListTooLarge)
    }

    // ----- control frames ------------------------------------------------------------------

    fn on_rst(&mut self, id: StreamId, code: ErrorCode) -> Result<(), ConnError> {
        if self.streams.contains_key(id.get()) {
            self.close_stream(id, Closed::PeerReset);
            self.events.push_back(Event::PeerReset { stream: id, code });
        } else if self.is_idle(id) && !self.closed.contains(id.get()) {
            return Err(ConnError::Protocol("RST_STREAM on an idle stream"));
        }
        // Otherwise: in-flight RST after close, tolerated (§5.1).
        self.bump_resets()
    }

    fn on_settings(&mut self, ack: bool, settings: Settings) -> Result<(), ConnError> {
        if ack {
            if self.settings_pending.pop_front().is_some() {
                self.events.push_back(Event::SettingsAcked);
            }
            return Ok(());
        }
        self.floods.settings += 1;
        if self.floods.settings > self.cfg.max_settings_per_window {
            return Err(ConnError::Limit(Limit::SettingsFlood));
        }
        if let Some(v) = settings.header_table_size {
            self.encoder.set_max_table_size(v as usize);
        }
        if settings.enable_push == Some(1) && self.role == Role::Client {
            // §6.5.2: a client MUST treat ENABLE_PUSH=1 from a server as PROTOCOL_ERROR.
            return Err(ConnError::Protocol("server sent SETTINGS_ENABLE_PUSH=1"));
        }
        if let Some(v) = settings.max_concurrent_streams {
            self.peer_max_concurrent = v;
        }
        if let Some(v) = settings.max_frame_size {
            self.peer_max_frame_size = v;
        }
        if let Some(v) = settings.max_header_list_size {
            self.peer_max_header_list = Some(v);
        }
        if let Some(v) = settings.initial_window_size {
            // §6.9.2: apply the difference to every stream's send window.
            let delta = v as i64 - self.peer_initial_window as i64;
            for s in self.streams.values_mut() {
                let w = s.send_window + delta;
                if w > MAX_WINDOW as i64 {
                    return Err(ConnError::FlowControl(
                        "SETTINGS_INITIAL_WINDOW_SIZE overflows a stream window",
                    ));
                }
                s.send_window = w;
            }
            self.peer_initial_window = v;
            if delta > 0 {
                self.notify_blocked(None);
            }
        }
        encode_settings_ack(&mut self.out.buf);
        self.events.push_back(Event::PeerSettings { settings });
        Ok(())
    }

    fn on_ping(&mut self, ack: bool, data: [u8; 8], now: Instant) -> Result<(), ConnError> {
        if ack {
            if let Some(i) = self.pings.iter().position(|(d, _)| *d == data) {
                if let Some((_, sent)) = self.pings.remove(i) {
                    self.events.push_back(Event::PingRtt {
                        rtt: now.saturating_duration_since(sent),
                        data,
                    });
                }
            }
            return Ok(());
        }
        self.floods.pings += 1;
        if self.floods.pings > self.cfg.max_pings_per_window {
            return Err(ConnError::Limit(Limit::PingFlood));
        }
        encode_ping(&mut self.out.buf, true, data);
        Ok(())
    }

    fn on_goaway(&mut self, last: StreamId, code: ErrorCode, debug: Bytes) {
        let last = match self.goaway_received {
            Some(prev) if prev < last => prev,
            _ => last,
        };
        self.goaway_received = Some(last);
        let mut unprocessed: Vec<StreamId> = self
            .streams
            .values()
            .filter(|s| !s.remote_initiated && s.id > last)
            .map(|s| s.id)
            .collect();
        unprocessed.sort();
        for id in &unprocessed {
            if let Some(s) = self.streams.remove(id.get()) {
                if !s.remote_initiated {
                    self.active_local -= 1;
                }
            }
            self.remember_closed(id.get(), Closed::GoneAway);
        }
        self.events.push_back(Event::GoAway {
            last_stream_id: last,
            code,
            debug,
            unprocessed,
        });
        self.maybe_finish();
    }

    fn on_window_update(&mut self, id: StreamId, inc: u32) -> Result<(), ConnError> {
        if id.is_zero() {
            let w = self.conn_send_window + inc as i64;
            if w > MAX_WINDOW as i64 {
                return Err(ConnError::FlowControl(
                    "connection send window above 2^31-1",
                ));
            }
            self.conn_send_window = w;
            self.notify_blocked(None);
            return Ok(());
        }
        let Some(s) = self.streams.get_mut(id.get()) else {
            if self.is_idle(id) && !self.closed.contains(id.get()) {
                return Err(ConnError::Protocol("WINDOW_UPDATE on an idle stream"));
            }
            return Ok(()); // §5.1: tolerated after close.
        };
        let w = s.send_window + inc as i64;
        if w > MAX_WINDOW as i64 {
            return self.stream_error(id, ErrorCode::FlowControlError, ResetReason::WindowOverflow);
        }
        s.send_window = w;
        self.notify_blocked(Some(id));
        Ok(())
    }

    fn notify_blocked(&mut self, only: Option<StreamId>) {
        if self.conn_send_window <= 0 || self.blocked.is_empty() {
            return;
        }
        let conn = self.conn_send_window;
        let streams = &mut self.streams;
        let events = &mut self.events;
        self.blocked.retain(|id| {
            if only.is_some_and(|o| o != *id) {
                return true;
            }
            let Some(s) = streams.get_mut(id.get()) else {
                return false;
            };
            if !s.send_blocked || !s.local_open() {
                return false;
            }
            let avail = s.send_window.min(conn);
            if avail <= 0 {
                return true;
            }
            s.send_blocked = false;
            events.push_back(Event::SendCapacity {
                stream: *id,
                available: avail as u32,
            });
            false
        });
    }

    // ----- output API ----------------------------------------------------------------------

    fn writable(&self, id: StreamId) -> Result<&Stream, SendError> {
        if self.state == ConnState::Closed {
            return Err(SendError::ConnectionClosed);
        }
        let s = self
            .streams
            .get(id.get())
            .ok_or(SendError::UnknownStream(id))?;
        if !s.local_open() {
            return Err(SendError::StreamEnded(id));
        }
        Ok(s)
    }

    fn write_headers(&mut self, id: StreamId, fields: &[FieldRef<'_>], end_stream: bool) {
        self.scratch.clear();
        self.encoder.encode_block(fields, &mut self.scratch);
        encode_headers(
            &mut self.out.buf,
            id,
            &self.scratch,
            end_stream,
            self.peer_max_frame_size,
        );
        if let Some(s) = self.streams.get_mut(id.get()) {
            s.local_headers_sent = true;
        }
        if end_stream {
            self.local_end(id);
        }
    }

    /// Sends a header section (response headers in server role, also 1xx; request headers are
    /// sent by [`Self::open_stream`]). Split into CONTINUATIONs at the peer's max frame size.
    pub fn send_headers(
        &mut self,
        stream: StreamId,
        fields: &[FieldRef<'_>],
        end_stream: bool,
    ) -> Result<(), SendError> {
        self.writable(stream)?;
        self.write_headers(stream, fields, end_stream);
        Ok(())
    }

    /// Sends trailers (a header section with END_STREAM) after the initial headers.
    pub fn send_trailers(
        &mut self,
        stream: StreamId,
        fields: &[FieldRef<'_>],
    ) -> Result<(), SendError> {
        if !self.writable(stream)?.local_headers_sent {
            return Err(SendError::InvalidState(stream));
        }
        self.write_headers(stream, fields, true);
        Ok(())
    }

    /// Sends as much of `data` as both send windows allow, chunked at the peer's max frame
    /// size, and returns the number of bytes accepted. Payloads above `output_copy_threshold`
    /// are queued as views (no copy). END_STREAM is set only if all of `data` was accepted.
    /// When less than offered was accepted, [`Event::SendCapacity`] reports new room later.
    pub fn send_data(
        &mut self,
        stream: StreamId,
        mut data: Bytes,
        end_stream: bool,
    ) -> Result<usize, SendError> {
        let s = self.writable(stream)?;
        if !s.local_headers_sent {
            return Err(SendError::InvalidState(stream));
        }
        let cap = s.send_window.min(self.conn_send_window).max(0) as usize;
        let offered = data.len();
        let n = offered.min(cap);
        let fin = end_stream && n == offered;
        if n < offered {
            if let Some(s) = self.streams.get_mut(stream.get()) {
                if !s.send_blocked {
                    s.send_blocked = true;
                    self.blocked.push(stream);
                }
            }
        }
        if n == 0 && !fin {
            return Ok(0);
        }
        data.truncate(n);
        let max = self.peer_max_frame_size as usize;
        let copy_max = self.cfg.output_copy_threshold as usize;
        loop {
            let chunk = data.split_to(data.len().min(max));
            let last = data.is_empty();
            encode_data_header(&mut self.out.buf, stream, chunk.len() as u32, fin && last);
            if chunk.len() <= copy_max {
                self.out.buf.extend_from_slice(&chunk);
            } else {
                self.out.push_view(chunk);
            }
            if last {
                break;
            }
        }
        self.conn_send_window -= n as i64;
        if let Some(s) = self.streams.get_mut(stream.get()) {
            s.send_window -= n as i64;
        }
        if fin {
            self.local_end(stream);
        }
        Ok(n)
    }

    /// Resets a stream (RST_STREAM with `code`) and forgets it; late frames from the peer are
    /// ignored (§5.1). Release any unreleased received bytes of the stream with
    /// [`Self::release_capacity`] as usual.
    pub fn send_reset(&mut self, stream: StreamId, code: ErrorCode) -> Result<(), SendError> {
        if self.state == ConnState::Closed {
            return Err(SendError::ConnectionClosed);
        }
        if !self.streams.contains_key(stream.get()) {
            return Err(SendError::UnknownStream(stream));
        }
        encode_rst_stream(&mut self.out.buf, stream, code);
        self.close_stream(stream, Closed::LocalReset);
        Ok(())
    }

    /// Resets a stream because of a peer error only the caller can see (a malformed request,
    /// RFC 9113 §8.1.1): RST_STREAM like [`Self::send_reset`], and it counts toward
    /// `max_resets_per_window` like the connection's own stream errors, so a peer cannot make us
    /// reset streams without bound (the "MadeYouReset" variant of rapid reset, CVE-2025-8671).
    /// Past the limit the connection fails: GOAWAY(ENHANCE_YOUR_CALM),
    /// [`Event::LimitExceeded`] and [`Event::Closed`].
    pub fn reset_for_peer_error(
        &mut self,
        stream: StreamId,
        code: ErrorCode,
        now: Instant,
    ) -> Result<(), SendError> {
        self.send_reset(stream, code)?;
        self.flood_tick(now);
        if let Err(e) = self.bump_resets() {
            self.fail(e);
        }
        Ok(())
    }

    /// Sends a PING; its ACK produces [`Event::PingRtt`] measured with the `now` values given.
    pub fn send_ping(&mut self, data: [u8; 8], now: Instant) -> Result<(), SendError> {
        if self.state == ConnState::Closed {
            return Err(SendError::ConnectionClosed);
        }
        encode_ping(&mut self.out.buf, false, data);
        if self.pings.len() == MAX_OUTSTANDING_PINGS {
            self.pings.pop_front();
        }
        self.pings.push_back((data, now));
        Ok(())
    }

    /// Sends GOAWAY with the highest peer stream we have accepted as last-stream-id (§6.8).
    /// With `NoError` this is a graceful shutdown: streams already accepted run to completion,
    /// new ones are ignored, and [`Event::Closed`] follows when none is left. Any other code
    /// closes the connection at once.
    pub fn send_goaway(&mut self, code: ErrorCode, debug: &[u8]) -> Result<(), SendError> {
        if self.state == ConnState::Closed {
            return Err(SendError::ConnectionClosed);
        }
        let last = StreamId::new(self.last_peer_id);
        encode_goaway(&mut self.out.buf, last, code, debug);
        self.goaway_sent = Some(last);
        if code != ErrorCode::NoError {
            self.state = ConnState::Closed;
            self.drop_streams();
            self.events.push_back(Event::Closed { error: None });
        } else {
            self.maybe_finish();
        }
        Ok(())
    }

    /// Client role: opens a stream by sending its request HEADERS (the stream id is allocated
    /// and used at once, so ids stay monotonic, §5.1.1).
    pub fn open_stream(
        &mut self,
        fields: &[FieldRef<'_>],
        end_stream: bool,
    ) -> Result<StreamId, OpenError> {
        if self.role != Role::Client {
            return Err(OpenError::NotClient);
        }
        if self.state == ConnState::Closed {
            return Err(OpenError::ConnectionClosed);
        }
        if self.is_going_away() {
            return Err(OpenError::GoingAway);
        }
        if self.next_local_id > MAX_WINDOW {
            self.events.push_back(Event::LimitExceeded {
                limit: Limit::StreamIdsExhausted,
                stream: None,
            });
            return Err(OpenError::StreamIdsExhausted);
        }
        if self.active_local >= self.peer_max_concurrent {
            return Err(OpenError::ConcurrencyLimit);
        }
        let id = StreamId::new(self.next_local_id);
        self.next_local_id += 2;
        let s = Stream::new(
            id,
            false,
            self.peer_initial_window,
            self.cfg.initial_stream_window,
        );
        self.streams.insert(id.get(), s);
        self.active_local += 1;
        self.write_headers(id, fields, end_stream);
        Ok(id)
    }

    /// Checks the flow-control invariants; `Err` names the first one broken. Used by tests and
    /// the fuzz target.
    pub fn check_invariants(&self) -> Result<(), &'static str> {
        let max = MAX_WINDOW as i64;
        if self.conn_send_window > max {
            return Err("connection send window above 2^31-1");
        }
        if self.conn_recv_window > MAX_WINDOW {
            return Err("connection receive window above 2^31-1");
        }
        if self.state != ConnState::Closed
            && self.conn_recv_window as u64
                + self.conn_recv_held as u64
                + self.conn_recv_released as u64
                != self.cfg.connection_window as u64
        {
            return Err("connection receive credit not conserved");
        }
        for s in self.streams.values() {
            if s.send_window > max {
                return Err("stream send window above 2^31-1");
            }
            if s.recv_window > MAX_WINDOW {
                return Err("stream receive window above 2^31-1");
            }
            if s.recv_window as u64 + s.recv_held as u64 + s.recv_released as u64
                != self.cfg.initial_stream_window as u64
            {
                return Err("stream receive credit not conserved");
            }
        }
        if self.active_local as usize + self.active_remote as usize != self.streams.len() {
            return Err("active stream counts out of sync");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request_block() -> Vec<u8> {
        let mut enc = Encoder::new();
        let mut out = BytesMut::new();
        enc.encode(
            [
                FieldRef::new(b":method", b"POST"),
                FieldRef::new(b":scheme", b"http"),
                FieldRef::new(b":path", b"/a"),
            ],
            &mut out,
        );
        out.to_vec()
    }

    /// Caller-detected peer errors count toward `max_resets_per_window` (CVE-2025-8671).
    #[test]
    fn resets_for_peer_errors_count_toward_the_reset_flood_limit() {
        let now = Instant::now();
        let cfg = ConnConfig {
            max_resets_per_window: 3,
            ..ConnConfig::default()
        };
        let mut c = Connection::new(Role::Server, cfg, now);
        let mut input = BytesMut::from(&PREFACE[..]);
        encode_settings(&mut input, &[]);
        c.recv(&mut input, now).unwrap();
        let block = request_block();
        for i in 0..4u32 {
            let id = StreamId::new(1 + 2 * i);
            let mut input = BytesMut::new();
            encode_headers(&mut input, id, &block, true, DEFAULT_MAX_FRAME_SIZE);
            c.recv(&mut input, now).unwrap();
            c.reset_for_peer_error(id, ErrorCode::ProtocolError, now)
                .unwrap();
            assert_eq!(c.is_closed(), i == 3, "after {} resets", i + 1);
        }
        let events: Vec<Event> = c.drain_events().collect();
        assert!(events.contains(&Event::LimitExceeded {
            limit: Limit::ResetFlood,
            stream: None
        }));
        let mut out = BytesMut::new();
        while let Some(b) = c.pop_output() {
            out.extend_from_slice(&b);
        }
        let mut goaway = None;
        while let Ok(Some(f)) = parse_frame(&mut out, MAX_MAX_FRAME_SIZE) {
            if let Frame::GoAway { code, .. } = f {
                goaway = Some(code);
            }
        }
        assert_eq!(goaway, Some(ErrorCode::EnhanceYourCalm));
        // Once closed, nothing more is sent.
        assert_eq!(
            c.reset_for_peer_error(StreamId::new(9), ErrorCode::ProtocolError, now),
            Err(SendError::ConnectionClosed)
        );
    }
}
