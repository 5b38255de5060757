//! `TlsSession`: a sans-IO TLS session driver (server or client role) for a readiness-based
//! socket. No sockets, clocks or executors here.
//!
//! The caller:
//! 1. appends received ciphertext to its own `BytesMut` and calls [`TlsSession::process`],
//!    which consumes what it used (whole or partial records) and appends decrypted plaintext
//!    to [`TlsSession::plaintext`] (the HTTP/2 codec parses frames in place there and splits
//!    them off);
//! 2. queues plaintext with [`TlsSession::write_plaintext`] /
//!    [`TlsSession::write_plaintext_vectored`] (a frame header and a payload view, no join);
//! 3. sends the bytes of [`TlsSession::pending_output`] and `advance`s it by what the socket
//!    took.
//!
//! The handshake timeout is the caller's (an rt timer around the loop until
//! [`TlsSession::is_handshaking`] is false).
//!
//! Copies (rustls 0.23 buffered API): inbound, ciphertext is copied into rustls's record buffer
//! and each record's plaintext is copied once into `plaintext`; outbound, plaintext is copied
//! into the encrypted record and the record is copied into `pending_output`. The unbuffered
//! API (`UnbufferedServerConnection`) would save the inbound ciphertext copy; correctness came
//! first here, and the public API does not change if the driver is switched.
//!
//! Server role, ALPN: the ClientHello is inspected before a connection is made (rustls
//! `Acceptor`). A client that does not offer `h2` — including one that offers no ALPN at all,
//! which rustls alone would accept — gets a fatal `no_application_protocol` alert
//! (RFC 7301 §3.2) and [`TlsError::NoApplicationProtocol`].
//!
//! Bounds: `process` decrypts everything it is given, so plaintext grows by at most the
//! ciphertext passed in; the caller bounds it by its socket read size and by not reading more
//! while `plaintext` holds more than its limit (HTTP/2 flow control bounds an honest peer).
//! Outgoing ciphertext grows by what the caller queues (rustls's own send limit is switched off
//! so a write is never half-accepted); the caller bounds that through flow control.
//!
//! Invariants: once `process` fails, the session is dead and every later call returns the same
//! error; bytes are never dropped from `incoming` without being consumed by rustls; plaintext
//! is never written after `close_notify`.

use std::fmt;
use std::io::{BufRead, IoSlice, Write};
use std::sync::Arc;

use bytes::{Buf, BufMut, BytesMut};
use rustls::server::{Accepted, Acceptor};
use rustls::{ClientConnection, HandshakeKind, ServerConnection};

use crate::client::server_name;
use crate::{ClientTlsConfig, ServerTlsConfig, TlsError, ALPN_H2};

/// A plaintext TLS alert record: fatal (2) `no_application_protocol` (120), sent before any
/// keys exist (RFC 8446 §6, RFC 5246 §7.2; legacy record version 0x0303).
const NO_APP_PROTOCOL_ALERT: [u8; 7] = [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 120];

/// Which side of the handshake a session plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Terminates client TLS.
    Server,
    /// Connects to an origin.
    Client,
}

enum Conn {
    /// Server role, waiting for the complete ClientHello.
    Accepting {
        acceptor: Box<Acceptor>,
        config: Arc<rustls::ServerConfig>,
        /// Plaintext queued before the connection exists.
        early: Vec<u8>,
    },
    Server(Box<ServerConnection>),
    Client(Box<ClientConnection>),
    Failed,
}

/// A TLS session driver; see the module docs.
pub struct TlsSession {
    conn: Conn,
    role: Role,
    plaintext: BytesMut,
    outgoing: BytesMut,
    error: Option<TlsError>,
    peer_closed: bool,
    close_sent: bool,
    alpn_checked: bool,
}

impl fmt::Debug for TlsSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsSession")
            .field("role", &self.role)
            .field("handshaking", &self.is_handshaking())
            .field("plaintext", &self.plaintext.len())
            .field("outgoing", &self.outgoing.len())
            .field("error", &self.error)
            .field("peer_closed", &self.peer_closed)
            .field("close_sent", &self.close_sent)
            .finish()
    }
}

macro_rules! with_conn {
    ($self:expr, $c:ident => $e:expr, $otherwise:expr) => {
        match &mut $self.conn {
            Conn::Server($c) => $e,
            Conn::Client($c) => $e,
            _ => $otherwise,
        }
    };
}

impl TlsSession {
    /// A server session for one accepted connection.
    pub fn server(config: &ServerTlsConfig) -> TlsSession {
        TlsSession::new(
            Role::Server,
            Conn::Accepting {
                acceptor: Box::default(),
                config: config.inner.clone(),
                early: Vec::new(),
            },
        )
    }

    /// A client session to an origin, sending `sni_name` (DNS name or IP address) as SNI and
    /// verifying the certificate against it.
    pub fn client(config: &ClientTlsConfig, sni_name: &str) -> Result<TlsSession, TlsError> {
        let name = server_name(sni_name)?;
        let mut conn = ClientConnection::new(config.inner.clone(), name).map_err(TlsError::from)?;
        // Flow control upstream bounds what is queued; rustls must not refuse writes.
        conn.set_buffer_limit(None);
        let mut s = TlsSession::new(Role::Client, Conn::Client(Box::new(conn)));
        s.pull_output();
        Ok(s)
    }

    fn new(role: Role, conn: Conn) -> TlsSession {
        TlsSession {
            conn,
            role,
            plaintext: BytesMut::new(),
            outgoing: BytesMut::new(),
            error: None,
            peer_closed: false,
            close_sent: false,
            alpn_checked: false,
        }
    }

    /// This session's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Feed received ciphertext. Consumes from the front of `incoming` everything rustls
    /// accepted (a trailing partial record is consumed too and kept inside rustls), appends
    /// decrypted plaintext to [`TlsSession::plaintext`], and queues any handshake bytes or
    /// alerts in [`TlsSession::pending_output`]. Send that output even when this returns an
    /// error: it may carry the alert that tells the peer why.
    pub fn process(&mut self, incoming: &mut BytesMut) -> Result<(), TlsError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        let mut r = self.process_inner(incoming);
        if self.role == Role::Client {
            if let Err(TlsError::PeerAlert(a)) = &r {
                if a == "NoApplicationProtocol" {
                    // The origin refused our h2-only ALPN offer (RFC 7301 §3.2).
                    r = Err(TlsError::OriginNoH2 { selected: None });
                }
            }
        }
        self.pull_output();
        if let Err(e) = &r {
            self.error = Some(e.clone());
            self.conn = Conn::Failed;
        }
        r
    }

    fn process_inner(&mut self, incoming: &mut BytesMut) -> Result<(), TlsError> {
        loop {
            let consumed = match &mut self.conn {
                Conn::Failed => return Err(TlsError::Other("session failed".to_string())),
                Conn::Accepting { acceptor, .. } => {
                    if incoming.is_empty() {
                        return Ok(());
                    }
                    let n = acceptor
                        .read_tls(&mut &incoming[..])
                        .map_err(|e| TlsError::CorruptRecord(e.to_string()))?;
                    incoming.advance(n);
                    match acceptor.accept() {
                        Ok(None) => {}
                        Ok(Some(accepted)) => self.on_client_hello(accepted)?,
                        Err((e, mut alert)) => {
                            let _ = alert.write_all(&mut (&mut self.outgoing).writer());
                            return Err(e.into());
                        }
                    }
                    n
                }
                Conn::Server(c) => {
                    let (n, closed) = drive::<rustls::server::ServerConnectionData>(
                        c,
                        incoming,
                        &mut self.plaintext,
                    )?;
                    self.peer_closed |= closed;
                    n
                }
                Conn::Client(c) => {
                    let (n, closed) = drive::<rustls::client::ClientConnectionData>(
                        c,
                        incoming,
                        &mut self.plaintext,
                    )?;
                    self.peer_closed |= closed;
                    n
                }
            };
            self.check_alpn()?;
            if consumed == 0 || incoming.is_empty() {
                return Ok(());
            }
        }
    }

    fn on_client_hello(&mut self, accepted: Accepted) -> Result<(), TlsError> {
        let offers_h2 = accepted
            .client_hello()
            .alpn()
            .is_some_and(|mut protos| protos.any(|p| p == ALPN_H2));
        if !offers_h2 {
            self.outgoing.extend_from_slice(&NO_APP_PROTOCOL_ALERT);
            return Err(TlsError::NoApplicationProtocol);
        }
        let (config, early) = match &mut self.conn {
            Conn::Accepting { config, early, .. } => (config.clone(), std::mem::take(early)),
            _ => return Err(TlsError::Other("not accepting".to_string())),
        };
        match accepted.into_connection(config) {
            Ok(mut conn) => {
                conn.set_buffer_limit(None);
                if !early.is_empty() {
                    conn.writer()
                        .write_all(&early)
                        .map_err(|e| TlsError::Other(e.to_string()))?;
                }
                self.conn = Conn::Server(Box::new(conn));
                Ok(())
            }
            Err((e, mut alert)) => {
                let _ = alert.write_all(&mut (&mut self.outgoing).writer());
                Err(e.into())
            }
        }
    }

    fn check_alpn(&mut self) -> Result<(), TlsError> {
        if self.alpn_checked || self.is_handshaking() {
            return Ok(());
        }
        self.alpn_checked = true;
        let selected = self.alpn_protocol().map(<[u8]>::to_vec);
        if selected.as_deref() == Some(ALPN_H2) {
            return Ok(());
        }
        match self.role {
            Role::Client => Err(TlsError::OriginNoH2 { selected }),
            // Unreachable in practice: the ClientHello check refused such clients already.
            Role::Server => Err(TlsError::NoApplicationProtocol),
        }
    }

    /// Move rustls's pending ciphertext into `outgoing`.
    fn pull_output(&mut self) {
        let out = &mut self.outgoing;
        with_conn!(self, c => {
            while c.wants_write() {
                match c.write_tls(&mut out.writer()) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        }, ())
    }

    /// Decrypted plaintext received so far. Parse in place and split off (or `advance`) what
    /// was used; what remains stays for the next call.
    pub fn plaintext(&mut self) -> &mut BytesMut {
        &mut self.plaintext
    }

    /// Queue plaintext to send; it is encrypted into [`TlsSession::pending_output`] (after the
    /// handshake if it is still running).
    pub fn write_plaintext(&mut self, data: &[u8]) -> Result<(), TlsError> {
        self.write_plaintext_vectored(&[data])
    }

    /// Queue several plaintext pieces (e.g. a 9-byte frame header and a payload view) as one
    /// logical write, without joining them first.
    pub fn write_plaintext_vectored(&mut self, parts: &[&[u8]]) -> Result<(), TlsError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        if self.close_sent {
            return Err(TlsError::Closed);
        }
        match &mut self.conn {
            Conn::Accepting { early, .. } => {
                for p in parts {
                    early.extend_from_slice(p);
                }
                return Ok(());
            }
            Conn::Failed => return Err(TlsError::Other("session failed".to_string())),
            _ => {}
        }
        let r = with_conn!(self, c => write_parts(&mut c.writer(), parts), Ok(()));
        r.map_err(|e| TlsError::Other(e.to_string()))?;
        self.pull_output();
        Ok(())
    }

    /// Ciphertext waiting to be sent. Send from the front and `advance` by what the socket
    /// accepted.
    pub fn pending_output(&mut self) -> &mut BytesMut {
        self.pull_output();
        &mut self.outgoing
    }

    /// True if there is ciphertext to send.
    pub fn wants_write(&self) -> bool {
        !self.outgoing.is_empty() || with_conn_ref(&self.conn, |c| c.wants_write(), false)
    }

    /// True until the handshake has completed (also true while waiting for the ClientHello).
    pub fn is_handshaking(&self) -> bool {
        match &self.conn {
            Conn::Server(c) => c.is_handshaking(),
            Conn::Client(c) => c.is_handshaking(),
            _ => true,
        }
    }

    /// The negotiated ALPN protocol (`Some(b"h2")` after a successful handshake).
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        match &self.conn {
            Conn::Server(c) => c.alpn_protocol(),
            Conn::Client(c) => c.alpn_protocol(),
            _ => None,
        }
    }

    /// Server role: the SNI name the client sent, if any.
    pub fn sni(&self) -> Option<&str> {
        match &self.conn {
            Conn::Server(c) => c.server_name(),
            _ => None,
        }
    }

    /// True when the completed handshake resumed an earlier session (ticket).
    pub fn is_resumed(&self) -> bool {
        let kind = match &self.conn {
            Conn::Server(c) => c.handshake_kind(),
            Conn::Client(c) => c.handshake_kind(),
            _ => None,
        };
        kind == Some(HandshakeKind::Resumed)
    }

    /// The negotiated protocol version (`"TLSv1.3"` or `"TLSv1.2"`), once known. A string so
    /// callers need not name rustls types.
    pub fn protocol_version(&self) -> Option<&'static str> {
        let v = match &self.conn {
            Conn::Server(c) => c.protocol_version(),
            Conn::Client(c) => c.protocol_version(),
            _ => None,
        }?;
        Some(match v {
            rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3",
            rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2",
            _ => "other",
        })
    }

    /// True once the peer sent `close_notify`: no more plaintext will arrive.
    pub fn peer_closed(&self) -> bool {
        self.peer_closed
    }

    /// Queue a `close_notify` alert; later writes fail with [`TlsError::Closed`].
    pub fn send_close_notify(&mut self) {
        if self.close_sent {
            return;
        }
        self.close_sent = true;
        with_conn!(self, c => c.send_close_notify(), ());
        self.pull_output();
    }

    /// The error that ended this session, if any.
    pub fn error(&self) -> Option<&TlsError> {
        self.error.as_ref()
    }
}

/// Write all `parts` through a rustls writer as one vectored write.
fn write_parts(w: &mut rustls::Writer<'_>, parts: &[&[u8]]) -> std::io::Result<()> {
    let total: usize = parts.iter().map(|p| p.len()).sum();
    let slices: Vec<IoSlice<'_>> = parts.iter().map(|p| IoSlice::new(p)).collect();
    let n = w.write_vectored(&slices)?;
    if n < total {
        // Not expected with no buffer limit; finish piecewise to keep the stream whole.
        let mut skip = n;
        for p in parts {
            if skip >= p.len() {
                skip -= p.len();
                continue;
            }
            w.write_all(&p[skip..])?;
            skip = 0;
        }
    }
    Ok(())
}

fn with_conn_ref<T>(conn: &Conn, f: impl Fn(&rustls::CommonState) -> T, otherwise: T) -> T {
    match conn {
        Conn::Server(c) => f(c),
        Conn::Client(c) => f(c),
        _ => otherwise,
    }
}

/// Feed `incoming` to a connection once, process it, and drain plaintext. Returns the number of
/// ciphertext bytes consumed and whether the peer has sent `close_notify`.
fn drive<D>(
    conn: &mut rustls::ConnectionCommon<D>,
    incoming: &mut BytesMut,
    plaintext: &mut BytesMut,
) -> Result<(usize, bool), TlsError> {
    let mut consumed = 0;
    if !incoming.is_empty() {
        consumed = conn
            .read_tls(&mut &incoming[..])
            .map_err(|e| TlsError::CorruptRecord(e.to_string()))?;
        incoming.advance(consumed);
    }
    let closed = conn
        .process_new_packets()
        .map_err(TlsError::from)?
        .peer_has_closed();
    let mut reader = conn.reader();
    loop {
        match reader.fill_buf() {
            Ok([]) => break,
            Ok(buf) => {
                let n = buf.len();
                plaintext.extend_from_slice(buf);
                reader.consume(n);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return Err(TlsError::UnexpectedEof)
            }
            Err(e) => return Err(TlsError::Other(e.to_string())),
        }
    }
    Ok((consumed, closed))
}
