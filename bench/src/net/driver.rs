//! One task per HTTP/2 connection: moves bytes between a [`Transport`] (TCP, optionally TLS) and
//! a codec [`Connection`], and hands every codec event to a [`Session`] (the origin's or the load
//! generator's per-connection logic).
//!
//! What it does, per wake-up: read what the socket has (at most [`READS_PER_WAKE`] reads, then
//! yield for fairness), feed it to the codec, drain the codec's events into the session, let the
//! session do time- or queue-driven work ([`Session::work`]), run the codec's own timeouts, queue
//! the codec's output on the transport and flush. A single re-armable timer wakes the task at the
//! earliest of the session's and the codec's deadlines.
//!
//! What it must not do: interpret HTTP/2 or gRPC (the codec and the session do), or block.
//!
//! Invariants: the session sees every event exactly once, in order; the task ends after the
//! codec reported its connection closed (or the socket failed) and the output was flushed (best
//! effort), and [`Session::closed`] is called exactly once at the end.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use ringedge::io::Transport;
use ringedge_codec::conn::{ConnError, Connection, Event};
use ringedge_codec::frame::ErrorCode;

/// Socket reads handled per wake-up before yielding to the shard's other tasks.
pub const READS_PER_WAKE: usize = 16;
/// How long a finished connection may take to flush its last bytes (GOAWAY, close_notify).
pub const CLOSE_FLUSH_LIMIT: Duration = Duration::from_millis(200);

/// What the session wants after [`Session::work`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    /// Keep going; call `work` again at this instant at the latest (or on the next wake).
    Continue(Option<Instant>),
    /// The session is finished with the connection: the driver sends GOAWAY(NO_ERROR), flushes
    /// and ends the task.
    Finish,
}

/// How the connection ended, as the driver saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// The session finished it ([`Work::Finish`]) or the codec closed gracefully.
    Graceful,
    /// The peer closed the transport.
    PeerClosed,
    /// The codec failed the connection (GOAWAY sent with this error).
    Codec(ConnError),
    /// Reading or writing the socket failed.
    Io(String),
}

/// Per-connection application logic driven by [`drive`].
pub trait Session {
    /// One codec event. The session may call any `send_*` / `open_stream` on `h2`.
    fn on_event(&mut self, h2: &mut Connection, ev: Event, now: Instant);
    /// Work not triggered by an event (timers, new calls). Called once per wake-up after events.
    fn work(&mut self, h2: &mut Connection, now: Instant, cx: &mut Context<'_>) -> Work;
    /// The connection is over; streams still open are lost.
    fn closed(&mut self, end: &End, now: Instant);
}

struct Timer {
    at: Instant,
    sleep: Pin<Box<dyn Future<Output = ()>>>,
}

/// Drives `h2` over `t` with `session` until the connection ends.
pub async fn drive<S: Session>(mut t: Transport, mut h2: Connection, session: &mut S) -> End {
    let mut timer: Option<Timer> = None;
    let mut finishing = false;
    let end =
        poll_fn(|cx| poll_once(&mut t, &mut h2, session, &mut timer, &mut finishing, cx)).await;
    // Best effort: flush what is left (GOAWAY) and tell a TLS peer we are done.
    while let Some(chunk) = h2.pop_output() {
        t.queue(chunk);
    }
    let _ = ringedge_rt::timeout(CLOSE_FLUSH_LIMIT, poll_fn(|cx| t.poll_flush(cx))).await;
    session.closed(&end, ringedge_rt::now());
    end
}

fn drain_events<S: Session>(h2: &mut Connection, session: &mut S, now: Instant) -> Option<End> {
    let mut end = None;
    while let Some(ev) = h2.poll_event() {
        if let Event::Closed { error } = &ev {
            end = Some(match error {
                None => End::Graceful,
                Some(ConnError::UnexpectedEof) => End::PeerClosed,
                Some(e) => End::Codec(*e),
            });
        }
        session.on_event(h2, ev, now);
    }
    end
}

fn poll_once<S: Session>(
    t: &mut Transport,
    h2: &mut Connection,
    session: &mut S,
    timer: &mut Option<Timer>,
    finishing: &mut bool,
    cx: &mut Context<'_>,
) -> Poll<End> {
    let mut reads = 0;
    let mut closed: Option<End> = None;
    // Plaintext that arrived with the TLS handshake's last flight is fed on the first pass.
    if !t.plaintext().is_empty() {
        let now = ringedge_rt::now();
        let _ = h2.recv(t.plaintext(), now);
        closed = closed.or(drain_events(h2, session, now));
    }
    while closed.is_none() {
        if reads == READS_PER_WAKE {
            cx.waker().wake_by_ref();
            break;
        }
        match t.poll_recv(cx) {
            Poll::Ready(Ok(0)) => {
                h2.recv_eof();
                let now = ringedge_rt::now();
                closed = Some(drain_events(h2, session, now).unwrap_or(End::PeerClosed));
            }
            Poll::Ready(Ok(_)) => {
                reads += 1;
                let now = ringedge_rt::now();
                let _ = h2.recv(t.plaintext(), now);
                closed = drain_events(h2, session, now);
            }
            Poll::Ready(Err(e)) => {
                closed = Some(End::Io(format!("read failed: {e}")));
            }
            Poll::Pending => break,
        }
    }
    let now = ringedge_rt::now();
    let mut wake_at = None;
    if closed.is_none() && !*finishing {
        match session.work(h2, now, cx) {
            Work::Continue(at) => wake_at = at,
            Work::Finish => {
                *finishing = true;
                let _ = h2.send_goaway(ErrorCode::NoError, b"");
            }
        }
        closed = drain_events(h2, session, now);
    }
    if closed.is_none() {
        h2.poll_timeout(now);
        closed = drain_events(h2, session, now);
    }
    while let Some(chunk) = h2.pop_output() {
        t.queue(chunk);
    }
    if let Poll::Ready(Err(e)) = t.poll_flush(cx) {
        return Poll::Ready(closed.unwrap_or(End::Io(format!("write failed: {e}"))));
    }
    if let Some(end) = closed {
        return Poll::Ready(end);
    }
    if *finishing && (h2.is_closed() || h2.active_streams() == 0) {
        return Poll::Ready(End::Graceful);
    }
    // Arm the timer at the earliest deadline.
    let deadline = match (wake_at, h2.next_deadline()) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    match deadline {
        None => {
            *timer = None;
            Poll::Pending
        }
        Some(at) => {
            if timer.as_ref().is_none_or(|tm| tm.at != at) {
                let d = at.saturating_duration_since(now);
                *timer = Some(Timer {
                    at,
                    sleep: Box::pin(ringedge_rt::sleep(d)),
                });
            }
            let tm = timer.as_mut().expect("armed above");
            match tm.sleep.as_mut().poll(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(()) => {
                    *timer = None;
                    // The deadline passed: run another pass soon, after the shard's other
                    // tasks had their turn (never a busy loop on a past deadline).
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
            }
        }
    }
}
