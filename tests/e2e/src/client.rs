//! Clients for tests: tonic channels (h2c, or TLS trusting the harness CA
//! with a chosen SNI / `:authority` domain) and a raw `h2` client (h2c or
//! TLS) for cases needing HTTP/2 control: custom headers, RST_STREAM, not
//! reading a response.
//!
//! Must not: trust anything but the CA it is given, or connect without a
//! timeout (connects are bounded by [`crate::WAIT`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::net::TcpStream;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

use crate::origin::DEFAULT_MAX_MESSAGE;
use crate::pb::echo_client::EchoClient;
use crate::pb::greeter_client::GreeterClient;
use crate::pki::TestPki;

/// TLS settings for a tonic client.
#[derive(Clone, Debug)]
pub struct ClientTls {
    /// CA certificate (PEM) to trust.
    pub ca_pem: Vec<u8>,
    /// Name to send as SNI and verify in the certificate (also used as `:authority`).
    pub domain: String,
}

impl ClientTls {
    /// Trusts `pki`'s CA and expects `domain`.
    pub fn new(pki: &TestPki, domain: &str) -> Self {
        ClientTls {
            ca_pem: pki.ca_pem().to_vec(),
            domain: domain.to_string(),
        }
    }
}

/// A tonic endpoint for `addr`: `http://addr` (h2c prior knowledge) when
/// `tls` is `None`, else `https://addr` (tonic
/// connects to the URI's host, so the URI keeps the IP and the TLS config's
/// `domain_name` sets SNI and the verified name; `origin` sets `:authority`).
pub fn endpoint(addr: SocketAddr, tls: Option<&ClientTls>) -> Endpoint {
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mut ep = Endpoint::from_shared(format!("{scheme}://{addr}"))
        .expect("valid endpoint URI")
        .connect_timeout(crate::WAIT)
        .tcp_nodelay(true);
    if let Some(t) = tls {
        ep = ep
            .tls_config(
                ClientTlsConfig::new()
                    .ca_certificate(Certificate::from_pem(&t.ca_pem))
                    .domain_name(t.domain.clone()),
            )
            .expect("client TLS config");
        let authority: http::Uri = format!("https://{}:{}", t.domain, addr.port())
            .parse()
            .expect("authority URI");
        ep = ep.origin(authority);
    }
    ep
}

/// Connects a tonic channel (bounded by [`crate::WAIT`]).
pub async fn connect(
    addr: SocketAddr,
    tls: Option<&ClientTls>,
) -> Result<Channel, tonic::transport::Error> {
    endpoint(addr, tls).connect().await
}

/// An Echo client on `ch` with message limits raised to 64 MiB.
pub fn echo_client(ch: Channel) -> EchoClient<Channel> {
    EchoClient::new(ch)
        .max_decoding_message_size(DEFAULT_MAX_MESSAGE)
        .max_encoding_message_size(DEFAULT_MAX_MESSAGE)
}

/// A Greeter client on `ch`.
pub fn greeter_client(ch: Channel) -> GreeterClient<Channel> {
    GreeterClient::new(ch)
}

/// A raw h2 client handle; the connection task runs on the current runtime.
#[derive(Debug)]
pub struct RawClient {
    /// Sends requests (clone it for concurrent streams).
    pub send: h2::client::SendRequest<Bytes>,
    /// The connection driver; ends with the connection's result.
    pub conn: tokio::task::JoinHandle<Result<(), h2::Error>>,
}

/// Raw h2 over cleartext (prior knowledge).
pub async fn raw_h2c(addr: SocketAddr) -> std::io::Result<RawClient> {
    let tcp = tokio::time::timeout(crate::WAIT, TcpStream::connect(addr))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))??;
    tcp.set_nodelay(true)?;
    handshake(tcp).await
}

/// Raw h2 over TLS (ALPN `h2`, trusting `pki`'s CA, SNI `domain`).
pub async fn raw_h2_tls(
    addr: SocketAddr,
    pki: &TestPki,
    domain: &str,
) -> std::io::Result<RawClient> {
    let cfg = Arc::new(pki.client_config(&[b"h2"]));
    let tls = tls_connect(addr, cfg, domain).await?;
    handshake(tls).await
}

/// A TLS connection with `cfg` (e.g. for ALPN experiments), bounded by [`crate::WAIT`].
pub async fn tls_connect(
    addr: SocketAddr,
    cfg: Arc<rustls::ClientConfig>,
    domain: &str,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let name = rustls::pki_types::ServerName::try_from(domain.to_string())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let fut = async {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        tokio_rustls::TlsConnector::from(cfg)
            .connect(name, tcp)
            .await
    };
    tokio::time::timeout(crate::WAIT, fut)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "TLS connect timed out"))?
}

async fn handshake<IO>(io: IO) -> std::io::Result<RawClient>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (send, conn) = tokio::time::timeout(crate::WAIT, h2::client::handshake(io))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "h2 handshake timed out"))?
        .map_err(std::io::Error::other)?;
    let conn = tokio::spawn(conn);
    Ok(RawClient { send, conn })
}

/// A gRPC request head for the raw client: POST `https://authority/path`,
/// `content-type: application/grpc`, `te: trailers`, plus `extra` headers.
pub fn grpc_request(authority: &str, path: &str, extra: &[(&str, &str)]) -> http::Request<()> {
    let mut b = http::Request::builder()
        .method("POST")
        .uri(format!("https://{authority}{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    for (k, v) in extra {
        b = b.header(*k, *v);
    }
    b.body(()).expect("valid request head")
}

/// Reads a whole h2 response body (releasing flow-control credit), bounded by `limit`.
pub async fn read_body(body: &mut h2::RecvStream, limit: Duration) -> Result<Bytes, String> {
    let fut = async {
        let mut out = bytes::BytesMut::new();
        while let Some(chunk) = body.data().await {
            let chunk = chunk.map_err(|e| e.to_string())?;
            let _ = body.flow_control().release_capacity(chunk.len());
            out.extend_from_slice(&chunk);
        }
        Ok(out.freeze())
    };
    tokio::time::timeout(limit, fut)
        .await
        .map_err(|_| "timed out reading body".to_string())?
}
