//! Sockets: per-shard `SO_REUSEPORT` listeners, the accept loop with a connection limit, and
//! connect with timeout.
//!
//! glommio's `TcpListener::bind` hard-codes a backlog of 1024, so listeners are built with
//! socket2 (reuseaddr, reuseport, nonblocking, cloexec, bind, listen with our backlog) and
//! adopted with `TcpListener::from_raw_fd` inside the shard's executor (DESIGN §7).
//! Every stream handed out has TCP_NODELAY set and is close-on-exec.
//!
//! Must not: block a shard (all sockets are non-blocking), or hand a stream to another shard.

use std::cell::Cell;
use std::future::Future;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd};
use std::rc::Rc;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

use crate::{RtError, TcpStream};

/// Default listen backlog (bounded by the host's `net.core.somaxconn`).
pub const DEFAULT_BACKLOG: i32 = 4096;

/// Build a listening `SO_REUSEPORT` socket on `addr` with `backlog`. IPv6 sockets are
/// IPv6-only so `[::]:port` and `0.0.0.0:port` can be bound side by side.
/// Can be called from any thread; [`Listener::bind`] adopts it into a shard.
pub fn bind_reuseport_socket(addr: SocketAddr, backlog: i32) -> Result<Socket, RtError> {
    let wrap = |source| RtError::Listen { addr, source };
    let domain = if addr.is_ipv6() {
        Domain::IPV6
    } else {
        Domain::IPV4
    };
    // socket2 sets SOCK_CLOEXEC on Linux.
    let socket = Socket::new(domain, Type::STREAM, Some(Protocol::TCP)).map_err(wrap)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true).map_err(wrap)?;
    }
    socket.set_reuse_address(true).map_err(wrap)?;
    socket.set_reuse_port(true).map_err(wrap)?;
    socket.set_nonblocking(true).map_err(wrap)?;
    socket.bind(&addr.into()).map_err(wrap)?;
    socket.listen(backlog).map_err(wrap)?;
    Ok(socket)
}

/// A listener owned by one shard.
#[derive(Debug)]
pub struct Listener {
    inner: glommio::net::TcpListener,
    addr: SocketAddr,
}

impl Listener {
    /// Bind a `SO_REUSEPORT` listener on `addr` for the current shard. Call it on every shard
    /// with the same address and the kernel spreads connections across them. Port 0 picks a
    /// port; bind the other shards to [`Listener::local_addr`] of the first one.
    ///
    /// Must be called inside a shard.
    pub fn bind(addr: SocketAddr, backlog: i32) -> Result<Listener, RtError> {
        let socket = bind_reuseport_socket(addr, backlog)?;
        let local = socket
            .local_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .unwrap_or(addr);
        let fd = socket.into_raw_fd();
        // SAFETY: `fd` is a listening TCP socket we just created and own exclusively
        // (`into_raw_fd` gave up socket2's ownership); glommio's listener takes ownership and
        // closes it on drop. We are inside a glommio executor (documented precondition), which
        // the listener needs for its reactor.
        let inner = unsafe { glommio::net::TcpListener::from_raw_fd(fd) };
        Ok(Listener { inner, addr: local })
    }

    /// The bound address (with the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Accept one connection: TCP_NODELAY set, close-on-exec set, bound to this shard.
    pub async fn accept(&self) -> Result<(TcpStream, SocketAddr), RtError> {
        let stream = self
            .inner
            .accept()
            .await
            .map_err(|e| RtError::Accept(e.into()))?;
        prepare_stream(&stream)?;
        let peer = stream.peer_addr().map_err(|e| RtError::Io(e.into()))?;
        Ok((stream, peer))
    }
}

fn prepare_stream(stream: &TcpStream) -> Result<(), RtError> {
    stream
        .set_nodelay(true)
        .map_err(|e| RtError::Io(e.into()))?;
    let fd = stream.as_raw_fd();
    // SAFETY: `fd` is a valid open socket owned by `stream` for the duration of the call;
    // F_GETFD/F_SETFD only touch its descriptor flags.
    let rc = unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFD);
        if flags < 0 {
            flags
        } else {
            libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC)
        }
    };
    if rc < 0 {
        return Err(RtError::Io(std::io::Error::last_os_error()));
    }
    Ok(())
}

/// A per-shard connection limit: the accept loop waits for a free slot before accepting, so
/// excess connections wait in the kernel backlog instead of consuming shard memory.
/// Clone it to observe [`ConnectionLimit::active`] from elsewhere on the shard.
#[derive(Debug, Clone)]
pub struct ConnectionLimit {
    max: usize,
    active: Rc<Cell<usize>>,
    freed: Rc<glommio::sync::Semaphore>,
}

impl ConnectionLimit {
    /// A limit of `max` concurrent connections (at least 1).
    pub fn new(max: usize) -> ConnectionLimit {
        let max = max.max(1);
        ConnectionLimit {
            max,
            active: Rc::new(Cell::new(0)),
            freed: Rc::new(glommio::sync::Semaphore::new(max as u64)),
        }
    }

    /// Connections currently being served.
    pub fn active(&self) -> usize {
        self.active.get()
    }

    /// The configured maximum.
    pub fn max(&self) -> usize {
        self.max
    }

    async fn acquire(&self) -> Result<Permit, RtError> {
        let permit = glommio::sync::Semaphore::acquire_static_permit(&self.freed, 1)
            .await
            .map_err(|e| RtError::Io(std::io::Error::other(e.to_string())))?;
        self.active.set(self.active.get() + 1);
        Ok(Permit {
            _permit: permit,
            active: self.active.clone(),
        })
    }
}

struct Permit {
    _permit: glommio::sync::StaticPermit,
    active: Rc<Cell<usize>>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.active.set(self.active.get().saturating_sub(1));
    }
}

/// Accept connections forever on `listener`, running `handler(stream, peer)` as a task on this
/// shard for each, with at most `limit.max()` running at once (the slot is released when the
/// handler's future ends or is dropped).
///
/// Transient accept errors (`ECONNABORTED`, `EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`) are retried
/// after a short pause; any other error ends the loop and is returned. Drop the task running
/// `serve` to stop accepting (drain); running connections continue.
pub async fn serve<H, F>(listener: Listener, limit: ConnectionLimit, handler: H) -> RtError
where
    H: Fn(TcpStream, SocketAddr) -> F + 'static,
    F: Future<Output = ()> + 'static,
{
    loop {
        let permit = match limit.acquire().await {
            Ok(p) => p,
            Err(e) => return e,
        };
        match listener.accept().await {
            Ok((stream, peer)) => {
                let fut = handler(stream, peer);
                glommio::spawn_local(async move {
                    fut.await;
                    drop(permit);
                })
                .detach();
            }
            Err(RtError::Accept(e)) if is_transient_accept_error(&e) => {
                drop(permit);
                glommio::timer::sleep(Duration::from_millis(10)).await;
            }
            Err(RtError::Io(_)) => {
                // Setting options on an accepted socket failed (peer already gone): skip it.
                drop(permit);
            }
            Err(e) => return e,
        }
    }
}

fn is_transient_accept_error(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ECONNABORTED)
            | Some(libc::EMFILE)
            | Some(libc::ENFILE)
            | Some(libc::ENOBUFS)
            | Some(libc::ENOMEM)
            | Some(libc::EINTR)
            | Some(libc::EPROTO)
    )
}

/// Connect to `addr` within `limit`: [`RtError::ConnectTimeout`] when it elapses,
/// [`RtError::Connect`] on refusal or other failure. The stream has TCP_NODELAY set.
/// A zero `limit` is treated as 1 ms. Must be called inside a shard.
pub async fn connect(addr: SocketAddr, limit: Duration) -> Result<TcpStream, RtError> {
    let limit = limit.max(Duration::from_millis(1));
    let attempt = async {
        glommio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| RtError::Connect {
                addr,
                source: e.into(),
            })
    };
    let timer = async {
        glommio::timer::sleep(limit).await;
        Err(RtError::ConnectTimeout { addr, after: limit })
    };
    let stream = futures_lite::future::or(attempt, timer).await?;
    stream.set_nodelay(true).map_err(|e| RtError::Connect {
        addr,
        source: e.into(),
    })?;
    Ok(stream)
}

/// Asks the kernel to acknowledge what arrives on `stream` at once (`TCP_QUICKACK`) instead
/// of delaying the ACK. Linux drops back to delayed ACKs on its own once the connection looks
/// interactive, so a caller that wants prompt ACKs sets it again after its reads.
///
/// Why: a peer that leaves Nagle's algorithm on (no `TCP_NODELAY`) holds each small write until
/// its previous segment is acknowledged; with our ACKs delayed (up to tens of milliseconds) its
/// responses trickle out one ACK at a time.
pub fn set_quickack(stream: &TcpStream) -> std::io::Result<()> {
    // SAFETY: the fd belongs to `stream`, which is borrowed for the whole call, so it stays open.
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(stream.as_raw_fd()) };
    socket2::SockRef::from(&fd).set_quickack(true)
}

/// Reads what `stream` has into the spare capacity of `buf` (at most `max` bytes, reserving
/// that much first) and appends it: `Ready(Ok(n))` with `n` bytes appended, `Ready(Ok(0))` at
/// end of stream (for `max > 0`), `Pending` when nothing is there (the waker is registered).
///
/// Unlike `AsyncRead::poll_read`, the bytes are not zeroed before the read: the kernel
/// writes into the spare capacity directly, so a read costs no `memset` of its window (a
/// 64 KiB window swept the whole L1 data cache on every read).
pub fn poll_read_buf(
    stream: &mut TcpStream,
    cx: &mut std::task::Context<'_>,
    buf: &mut bytes::BytesMut,
    max: usize,
) -> std::task::Poll<std::io::Result<usize>> {
    buf.reserve(max);
    let spare = buf.spare_capacity_mut();
    let window = spare.len().min(max);
    let res = stream.poll_read_uninit(cx, &mut spare[..window]);
    if let std::task::Poll::Ready(Ok(n)) = res {
        // recv(2) never returns more than it was given; anything else would be a kernel or
        // glommio bug, and appending past the window would expose uninitialised memory.
        assert!(
            n <= window,
            "recv returned {n} bytes for a {window}-byte window"
        );
        // SAFETY: the kernel initialised the first `n` bytes of the spare capacity (the
        // contract of `poll_read_uninit`), and `n <= window <= spare capacity`.
        unsafe { buf.set_len(buf.len() + n) };
    }
    res
}
