//! Socket drivers: move bytes between a TCP socket (with or without TLS) and the shard's
//! [`Forwarder`], and run TLS handshakes.
//!
//! What it does: one task per connection polls the socket for reads, feeds what arrives (after
//! TLS decryption) to the forwarder, takes the connection's pending HTTP/2 output, coalesces small
//! chunks into one buffer (glommio has no vectored send, and tiny TLS records waste bytes) while
//! large DATA payloads go as their own views, and writes.
//!
//! What it must not do: interpret HTTP/2 (the codec and the forwarder do), or hold the
//! forwarder borrowed across an await.
//!
//! Invariants: the forwarder's `RefCell` is borrowed only inside one synchronous step; a
//! connection's task ends by telling the forwarder (`endpoint_closed`) exactly once.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use ringedge_rt::{AsyncWrite, AsyncWriteExt, TcpStream};
use ringedge_tls::{TlsError, TlsSession};

use crate::forward::{EpKey, Forwarder};

/// Chunks smaller than this are copied into the coalescing buffer; larger ones are written as
/// their own views.
const COALESCE_BELOW: usize = 4096;
/// Largest read window (and receive buffer growth step).
const READ_CHUNK: usize = 64 * 1024;
/// Smallest read window.
const READ_MIN: usize = 4 * 1024;
/// Reads handled per wake-up before yielding to other connections on the shard.
const READS_PER_WAKE: usize = 16;

/// A TCP connection, with the TLS session if the connection is encrypted.
#[derive(Debug)]
pub struct Transport {
    tcp: TcpStream,
    tls: Option<TlsSession>,
    /// Bytes read from the socket: ciphertext with TLS, HTTP/2 bytes without.
    rx: BytesMut,
    /// Size of the next read window: twice the last read, within [`READ_MIN`, `READ_CHUNK`].
    /// The window is the most one read may append (reads go into spare capacity unzeroed).
    read_window: usize,
    /// Output waiting for the socket: ciphertext with TLS, HTTP/2 bytes without.
    tx: VecDeque<Bytes>,
    coalesce: BytesMut,
    /// Acknowledge received data at once (origin connections, see [`Transport::quick_acks`]).
    quickack: bool,
}

/// Why a handshake failed.
#[derive(Debug)]
pub enum HandshakeError {
    /// The TLS layer refused (alert, certificate, ALPN).
    Tls(TlsError),
    /// The socket failed or closed.
    Io(io::Error),
}

impl std::fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HandshakeError::Tls(e) => write!(f, "TLS handshake failed: {e}"),
            HandshakeError::Io(e) => write!(f, "connection failed during TLS handshake: {e}"),
        }
    }
}

impl Transport {
    /// A cleartext (h2c) transport.
    pub fn plain(tcp: TcpStream) -> Self {
        Transport {
            tcp,
            tls: None,
            rx: BytesMut::with_capacity(READ_CHUNK),
            read_window: READ_MIN,
            quickack: false,
            tx: VecDeque::new(),
            coalesce: BytesMut::new(),
        }
    }

    /// Runs a TLS handshake on `tcp` with `session`; the returned transport may already hold
    /// plaintext that arrived with the handshake's last flight.
    pub async fn handshake(tcp: TcpStream, session: TlsSession) -> Result<Self, HandshakeError> {
        let mut t = Transport {
            tcp,
            tls: Some(session),
            rx: BytesMut::with_capacity(READ_CHUNK),
            read_window: READ_MIN,
            quickack: false,
            tx: VecDeque::new(),
            coalesce: BytesMut::new(),
        };
        loop {
            let tls = t.tls.as_mut().expect("tls transport");
            if tls.wants_write() {
                let out = tls.pending_output().split().freeze();
                t.tcp.write_all(&out).await.map_err(HandshakeError::Io)?;
            }
            let tls = t.tls.as_mut().expect("tls transport");
            if let Some(e) = tls.error() {
                return Err(HandshakeError::Tls(e.clone()));
            }
            if !tls.is_handshaking() {
                return Ok(t);
            }
            let n = poll_fn(|cx| t.poll_read_raw(cx))
                .await
                .map_err(HandshakeError::Io)?;
            if n == 0 {
                return Err(HandshakeError::Io(io::ErrorKind::UnexpectedEof.into()));
            }
            let tls = t.tls.as_mut().expect("tls transport");
            if let Err(e) = tls.process(&mut t.rx) {
                // Flush the alert rustls queued, best effort, then fail.
                if tls.wants_write() {
                    let out = tls.pending_output().split().freeze();
                    let _ = t.tcp.write_all(&out).await;
                }
                return Err(HandshakeError::Tls(e));
            }
        }
    }

    /// Acknowledge every read at once (`TCP_QUICKACK` after each read, one `setsockopt` per
    /// read). For origin connections: an origin that leaves Nagle's algorithm on holds each
    /// small response until its previous segment is acknowledged, and with delayed ACKs on our
    /// side a multiplexed origin connection crawled (tonic without `TCP_NODELAY`, 16x32 calls:
    /// 24k instead of 111k calls/s; HAProxy, which acknowledges promptly, kept 86k).
    pub fn quick_acks(&mut self) {
        self.quickack = true;
        let _ = ringedge_rt::set_quickack(&self.tcp);
    }

    /// The TLS session, if any.
    pub fn tls(&self) -> Option<&TlsSession> {
        self.tls.as_ref()
    }

    fn poll_read_raw(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let res = ringedge_rt::poll_read_buf(&mut self.tcp, cx, &mut self.rx, self.read_window);
        let n = match &res {
            Poll::Ready(Ok(n)) => *n,
            _ => 0,
        };
        if n > 0 {
            self.read_window = (n * 2).clamp(READ_MIN, READ_CHUNK);
            if self.quickack {
                // Best effort: a failure only means delayed ACKs again.
                let _ = ringedge_rt::set_quickack(&self.tcp);
            }
        }
        res
    }

    /// Reads what the socket has and decrypts it: `Ready(Ok(n))` with `n` raw bytes read (the
    /// plaintext is in [`Transport::plaintext`]), `Ready(Ok(0))` at end of stream (TCP FIN or
    /// TLS close_notify), `Pending` when nothing is there (the waker is registered).
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        match self.poll_read_raw(cx) {
            Poll::Ready(Ok(0)) => Poll::Ready(Ok(0)),
            Poll::Ready(Ok(n)) => {
                if let Some(tls) = &mut self.tls {
                    if let Err(e) = tls.process(&mut self.rx) {
                        return Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("TLS error: {e}"),
                        )));
                    }
                    if tls.peer_closed() && tls.plaintext().is_empty() {
                        return Poll::Ready(Ok(0));
                    }
                }
                Poll::Ready(Ok(n))
            }
            other => other,
        }
    }

    /// The HTTP/2 bytes received and not yet consumed.
    pub fn plaintext(&mut self) -> &mut BytesMut {
        match &mut self.tls {
            Some(tls) => tls.plaintext(),
            None => &mut self.rx,
        }
    }

    /// Queues HTTP/2 output: small chunks are coalesced, large ones kept as views.
    pub fn queue(&mut self, chunk: Bytes) {
        if chunk.len() < COALESCE_BELOW {
            self.coalesce.extend_from_slice(&chunk);
        } else {
            self.seal_coalesced();
            self.push_out(chunk);
        }
    }

    fn seal_coalesced(&mut self) {
        if !self.coalesce.is_empty() {
            let small = self.coalesce.split().freeze();
            self.push_out(small);
        }
    }

    fn push_out(&mut self, chunk: Bytes) {
        match &mut self.tls {
            // rustls encrypts (one copy) into its outgoing buffer.
            Some(tls) => {
                let _ = tls.write_plaintext(&chunk);
            }
            None => self.tx.push_back(chunk),
        }
    }

    /// Whether output is still waiting for the socket.
    pub fn has_output(&self) -> bool {
        !self.tx.is_empty() || self.tls.as_ref().is_some_and(|t| t.wants_write())
    }

    /// Writes queued output until the socket would block.
    pub fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.seal_coalesced();
        if let Some(tls) = &mut self.tls {
            if tls.wants_write() {
                let out = tls.pending_output().split().freeze();
                self.tx.push_back(out);
            }
        }
        while let Some(front) = self.tx.front_mut() {
            match Pin::new(&mut self.tcp).poll_write(cx, front) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                Poll::Ready(Ok(n)) => {
                    front.advance(n);
                    if front.is_empty() {
                        self.tx.pop_front();
                    }
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }
}

/// Drives one connection until it ends; tells the forwarder exactly once.
pub async fn drive(fw: Rc<RefCell<Forwarder>>, ep: EpKey, mut t: Transport) {
    // Plaintext that came with the TLS handshake's last flight.
    if !t.plaintext().is_empty() {
        let now = ringedge_rt::now();
        let mut f = fw.borrow_mut();
        f.recv(ep, t.plaintext(), now);
    }
    let cause = poll_fn(|cx| poll_connection(&fw, ep, &mut t, cx)).await;
    // Best effort: tell a TLS peer we are done.
    if let Some(tls) = &mut t.tls {
        tls.send_close_notify();
        let out = tls.pending_output().split().freeze();
        let _ = ringedge_rt::timeout(Duration::from_millis(100), t.tcp.write_all(&out)).await;
    }
    fw.borrow_mut().endpoint_closed(ep, &cause);
}

fn poll_connection(
    fw: &Rc<RefCell<Forwarder>>,
    ep: EpKey,
    t: &mut Transport,
    cx: &mut Context<'_>,
) -> Poll<String> {
    let mut reads = 0;
    let mut eof = false;
    loop {
        if reads == READS_PER_WAKE {
            // Fairness: let other connections on the shard run, and come back.
            cx.waker().wake_by_ref();
            break;
        }
        match t.poll_recv(cx) {
            Poll::Ready(Ok(0)) => {
                eof = true;
                break;
            }
            Poll::Ready(Ok(_)) => {
                reads += 1;
                let now = ringedge_rt::now();
                fw.borrow_mut().recv(ep, t.plaintext(), now);
            }
            Poll::Ready(Err(e)) => return Poll::Ready(format!("read failed: {e}")),
            Poll::Pending => break,
        }
    }
    {
        let mut f = fw.borrow_mut();
        f.set_waker(ep, cx.waker());
        if let Some(h2) = f.output(ep) {
            while let Some(chunk) = h2.pop_output() {
                t.queue(chunk);
            }
        }
    }
    if let Poll::Ready(Err(e)) = t.poll_flush(cx) {
        return Poll::Ready(format!("write failed: {e}"));
    }
    if eof {
        return Poll::Ready("peer closed the connection".into());
    }
    if fw.borrow().is_done(ep) && !t.has_output() {
        return Poll::Ready("connection finished".into());
    }
    Poll::Pending
}

/// Opens a TCP (and TLS) connection to an origin and checks ALPN `h2` when TLS is used.
pub async fn connect_origin(
    addr: SocketAddr,
    connect_timeout: Duration,
    tls: Option<TlsSession>,
) -> Result<Transport, String> {
    let tcp = ringedge_rt::connect(addr, connect_timeout)
        .await
        .map_err(|e| format!("connect to {addr} failed: {e}"))?;
    let mut t = match tls {
        None => Transport::plain(tcp),
        Some(session) => {
            match ringedge_rt::timeout(connect_timeout, Transport::handshake(tcp, session)).await {
                Err(_) => {
                    return Err(format!(
                        "TLS handshake with {addr} timed out after {} ms",
                        connect_timeout.as_millis()
                    ))
                }
                Ok(Err(e)) => return Err(format!("{e} (origin {addr})")),
                Ok(Ok(t)) => t,
            }
        }
    };
    t.quick_acks();
    Ok(t)
}
