//! An independent peer checks our codec: the `h2` crate's client talks to a server built from
//! our `Connection` (server role), and our client role talks to an `h2` server, over in-memory
//! pipes (`tokio::io::duplex`). Headers, data (large enough to need WINDOW_UPDATEs both ways),
//! trailers, resets and pings cross in both directions.

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, Request, Response};
use ringedge_codec::conn::{ConnConfig, Connection, Event, HeadersKind, Role};
use ringedge_codec::frame::{ErrorCode, StreamId};
use ringedge_codec::hpack::FieldRef;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

/// Bound of each wait (a pass takes milliseconds; a loaded CI machine may need seconds).
const WAIT: Duration = Duration::from_secs(30);

fn fr<'a>(n: &'a str, v: &'a str) -> FieldRef<'a> {
    FieldRef {
        name: n.as_bytes(),
        value: v.as_bytes(),
        sensitive: false,
    }
}

/// Writes all pending output of `conn`.
async fn flush(conn: &mut Connection, io: &mut DuplexStream) {
    while let Some(c) = conn.pop_output() {
        io.write_all(&c).await.expect("write");
    }
}

/// Reads once into `buf` and feeds the connection. Returns false at EOF.
async fn read_some(conn: &mut Connection, io: &mut DuplexStream, buf: &mut BytesMut) -> bool {
    buf.reserve(32 * 1024);
    let n = io.read_buf(buf).await.expect("read");
    if n == 0 {
        conn.recv_eof();
        return false;
    }
    conn.recv(buf, Instant::now())
        .expect("our connection rejected the h2 peer's bytes");
    conn.check_invariants().unwrap();
    true
}

/// Per-stream state of the echo server.
#[derive(Default)]
struct EchoStream {
    pending: Vec<Bytes>,
    request_ended: bool,
    echoed: usize,
    trailer_count: usize,
}

/// Our server: `/echo` echoes the body (releasing receive credit only once the echo was
/// accepted by the send window: backpressure), then trailers; `/reset` resets the stream.
/// Returns the observed peer resets and whether a graceful close happened.
async fn run_our_server(
    mut io: DuplexStream,
    mut shutdown: tokio::sync::oneshot::Receiver<()>,
) -> Vec<(StreamId, ErrorCode)> {
    let mut conn = Connection::new(Role::Server, ConnConfig::default(), Instant::now());
    let mut buf = BytesMut::new();
    let mut streams: HashMap<StreamId, EchoStream> = HashMap::new();
    let mut peer_resets = Vec::new();
    loop {
        flush(&mut conn, &mut io).await;
        if conn.is_closed() {
            break;
        }
        buf.reserve(32 * 1024);
        tokio::select! {
            r = io.read_buf(&mut buf) => {
                if r.expect("read") == 0 {
                    conn.recv_eof();
                    break;
                }
                conn.recv(&mut buf, Instant::now()).expect("our connection rejected h2's bytes");
                conn.check_invariants().unwrap();
            }
            _ = &mut shutdown, if !conn.is_going_away() => {
                // Graceful shutdown: GOAWAY(NO_ERROR); with no stream left we are done.
                conn.send_goaway(ErrorCode::NoError, b"test over").unwrap();
            }
        }
        while let Some(ev) = conn.poll_event() {
            match ev {
                Event::Headers {
                    stream,
                    kind: HeadersKind::Initial,
                    fields,
                    end_stream,
                } => {
                    let path = fields
                        .iter()
                        .find(|f| &f.name[..] == b":path")
                        .unwrap()
                        .value
                        .clone();
                    if &path[..] == b"/reset" {
                        conn.send_reset(stream, ErrorCode::Cancel).unwrap();
                        continue;
                    }
                    conn.send_headers(stream, &[fr(":status", "200"), fr("x-path", "echo")], false)
                        .unwrap();
                    let st = streams.entry(stream).or_default();
                    st.request_ended = end_stream;
                }
                Event::Headers {
                    stream,
                    kind: HeadersKind::Trailers,
                    fields,
                    ..
                } => {
                    if let Some(st) = streams.get_mut(&stream) {
                        st.trailer_count = fields.len();
                        st.request_ended = true;
                    }
                }
                Event::Data {
                    stream,
                    data,
                    end_stream,
                    ..
                } => {
                    if let Some(st) = streams.get_mut(&stream) {
                        st.pending.push(data);
                        st.request_ended |= end_stream;
                    }
                }
                Event::PeerReset { stream, code } => {
                    streams.remove(&stream);
                    peer_resets.push((stream, code));
                }
                _ => {}
            }
        }
        // Push pending echoes as far as the windows allow.
        let ids: Vec<StreamId> = streams.keys().copied().collect();
        for id in ids {
            let st = streams.get_mut(&id).unwrap();
            while let Some(b) = st.pending.first().cloned() {
                let n = conn.send_data(id, b.clone(), false).unwrap();
                conn.release_capacity(id, n);
                st.echoed += n;
                if n == b.len() {
                    st.pending.remove(0);
                } else {
                    st.pending[0] = b.slice(n..);
                    break;
                }
            }
            if st.pending.is_empty() && st.request_ended {
                let count = st.echoed.to_string();
                let tc = st.trailer_count.to_string();
                conn.send_trailers(
                    id,
                    &[
                        fr("grpc-status", "0"),
                        fr("x-echoed", &count),
                        fr("x-trailers-seen", &tc),
                    ],
                )
                .unwrap();
                streams.remove(&id);
            }
        }
    }
    peer_resets
}

#[tokio::test]
async fn h2_client_against_our_server() {
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    let (stop, stop_rx) = tokio::sync::oneshot::channel();
    let server = tokio::spawn(run_our_server(server_io, stop_rx));

    let (client, mut connection) = h2::client::handshake(client_io).await.expect("handshake");
    let mut ping_pong = connection.ping_pong().expect("ping_pong");
    let conn_task = tokio::spawn(connection);

    // 1. A 1 MiB body with trailers: needs our WINDOW_UPDATEs (body ≫ 65535 default window)
    //    and the h2 client's WINDOW_UPDATEs for the echo.
    let mut client = client.ready().await.unwrap();
    let req = Request::post("http://example.com/echo").body(()).unwrap();
    let (resp, mut send) = client.send_request(req, false).unwrap();
    let body: Vec<u8> = (0..1_048_576u32).map(|i| (i % 251) as u8).collect();
    let sender = {
        let body = body.clone();
        tokio::spawn(async move {
            for chunk in body.chunks(10_000) {
                send.reserve_capacity(chunk.len());
                let _ = std::future::poll_fn(|cx| send.poll_capacity(cx)).await;
                send.send_data(Bytes::copy_from_slice(chunk), false)
                    .unwrap();
            }
            let mut t = HeaderMap::new();
            t.insert("x-client-trailer", "1".parse().unwrap());
            send.send_trailers(t).unwrap();
        })
    };
    let resp = resp.await.expect("response");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-path"], "echo");
    let mut rbody = resp.into_body();
    let mut got = Vec::new();
    while let Some(chunk) = rbody.data().await {
        let chunk = chunk.unwrap();
        rbody.flow_control().release_capacity(chunk.len()).unwrap();
        got.extend_from_slice(&chunk);
    }
    let trailers = rbody.trailers().await.unwrap().expect("trailers");
    assert_eq!(trailers["grpc-status"], "0");
    assert_eq!(trailers["x-echoed"], "1048576");
    assert_eq!(trailers["x-trailers-seen"], "1");
    assert!(got == body, "echo differs");
    sender.await.unwrap();

    // 2. PING: our server answers.
    let pong = tokio::time::timeout(WAIT, ping_pong.ping(h2::Ping::opaque()))
        .await
        .expect("ping timeout");
    pong.expect("pong");

    // 3. Our server resets a stream.
    let mut client = client.ready().await.unwrap();
    let req = Request::get("http://example.com/reset").body(()).unwrap();
    let (resp, send3) = client.send_request(req, true).unwrap();
    let err = resp.await.expect_err("stream should be reset");
    assert_eq!(err.reason(), Some(h2::Reason::CANCEL));

    // 4. The client resets a stream: our server sees it.
    let mut client = client.ready().await.unwrap();
    let req = Request::post("http://example.com/echo").body(()).unwrap();
    let (resp, mut send) = client.send_request(req, false).unwrap();
    send.send_data(Bytes::from_static(b"partial"), false)
        .unwrap();
    let resp = resp.await.unwrap();
    assert_eq!(resp.status(), 200);
    send.send_reset(h2::Reason::CANCEL);
    drop(resp);
    drop(send);
    drop(send3);

    // 5. Several concurrent small requests (gRPC-like unary calls).
    let mut handles = Vec::new();
    for i in 0..20u32 {
        let mut c = client.clone().ready().await.unwrap();
        handles.push(tokio::spawn(async move {
            let req = Request::post("http://example.com/echo").body(()).unwrap();
            let (resp, mut send) = c.send_request(req, false).unwrap();
            let msg = format!("message {i}");
            send.send_data(Bytes::from(msg.clone()), true).unwrap();
            let mut b = resp.await.unwrap().into_body();
            let mut got = Vec::new();
            while let Some(ch) = b.data().await {
                got.extend_from_slice(&ch.unwrap());
            }
            assert_eq!(got, msg.as_bytes());
            assert_eq!(b.trailers().await.unwrap().unwrap()["grpc-status"], "0");
        }));
    }
    for h in handles {
        h.await.unwrap();
    }

    drop(client);
    drop(ping_pong);
    stop.send(()).unwrap();
    tokio::time::timeout(WAIT, conn_task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let resets = tokio::time::timeout(WAIT, server).await.unwrap().unwrap();
    assert_eq!(resets, vec![(StreamId::new(5), ErrorCode::Cancel)]);
}

/// An h2 server: `/echo` echoes the body with trailers; `/reset` resets with REFUSED_STREAM.
async fn run_h2_server(io: DuplexStream) {
    let mut conn = h2::server::handshake(io).await.expect("server handshake");
    while let Some(r) = conn.accept().await {
        let (req, mut respond) = r.expect("accept");
        tokio::spawn(async move {
            if req.uri().path() == "/reset" {
                respond.send_reset(h2::Reason::REFUSED_STREAM);
                return;
            }
            let mut body = req.into_body();
            let mut send = respond
                .send_response(Response::builder().status(200).body(()).unwrap(), false)
                .unwrap();
            let mut n = 0usize;
            while let Some(chunk) = body.data().await {
                let chunk = chunk.unwrap();
                n += chunk.len();
                body.flow_control().release_capacity(chunk.len()).unwrap();
                send.reserve_capacity(chunk.len());
                send.send_data(chunk, false).unwrap();
            }
            let req_trailers = body.trailers().await.unwrap();
            let mut t = HeaderMap::new();
            t.insert("grpc-status", "0".parse().unwrap());
            t.insert("x-echoed", n.to_string().parse().unwrap());
            t.insert(
                "x-trailer-seen",
                req_trailers
                    .map_or(0, |t| t.len())
                    .to_string()
                    .parse()
                    .unwrap(),
            );
            send.send_trailers(t).unwrap();
        });
    }
}

#[tokio::test]
async fn our_client_against_h2_server() {
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    let server = tokio::spawn(run_h2_server(server_io));
    let mut io = client_io;
    let mut conn = Connection::new(Role::Client, ConnConfig::default(), Instant::now());
    let mut buf = BytesMut::new();

    let req = [
        fr(":method", "POST"),
        fr(":scheme", "http"),
        fr(":path", "/echo"),
        fr(":authority", "origin.test"),
        fr("content-type", "application/grpc"),
    ];
    // Stream A: 300 KB body + trailers (beyond the h2 server's 65535 default window).
    let a = conn.open_stream(&req, false).unwrap();
    let body: Bytes = (0..300_000u32)
        .map(|i| (i % 253) as u8)
        .collect::<Vec<u8>>()
        .into();
    let mut to_send = body.clone();
    // Stream B: reset by the server.
    let reset_req = [
        fr(":method", "GET"),
        fr(":scheme", "http"),
        fr(":path", "/reset"),
        fr(":authority", "o"),
    ];
    let b = conn.open_stream(&reset_req, true).unwrap();
    // Stream C: we reset it ourselves after sending a little.
    let c = conn.open_stream(&req, false).unwrap();
    conn.send_data(c, Bytes::from_static(b"abc"), false)
        .unwrap();
    conn.send_reset(c, ErrorCode::Cancel).unwrap();
    conn.send_ping(*b"ringedge", Instant::now()).unwrap();

    let mut echoed = Vec::new();
    let mut a_headers = None;
    let mut a_trailers = None;
    let mut b_reset = None;
    let mut rtt = None;
    let mut trailers_sent = false;
    let deadline = Instant::now() + WAIT;
    while a_trailers.is_none() || b_reset.is_none() || rtt.is_none() {
        assert!(Instant::now() < deadline, "timed out");
        if !to_send.is_empty() {
            let n = conn.send_data(a, to_send.clone(), false).unwrap();
            let _ = to_send.split_to(n);
        }
        if to_send.is_empty() && !trailers_sent {
            conn.send_trailers(a, &[fr("x-req-trailer", "1")]).unwrap();
            trailers_sent = true;
        }
        flush(&mut conn, &mut io).await;
        assert!(
            read_some(&mut conn, &mut io, &mut buf).await,
            "server closed early"
        );
        while let Some(ev) = conn.poll_event() {
            match ev {
                Event::Headers {
                    stream,
                    kind: HeadersKind::Initial,
                    fields,
                    ..
                } if stream == a => a_headers = Some(fields),
                Event::Headers {
                    stream,
                    kind: HeadersKind::Trailers,
                    fields,
                    end_stream,
                    ..
                } if stream == a => {
                    assert!(end_stream);
                    a_trailers = Some(fields)
                }
                Event::Data { stream, data, .. } if stream == a => {
                    echoed.extend_from_slice(&data);
                    conn.release_capacity(stream, data.len());
                }
                Event::PeerReset { stream, code } if stream == b => b_reset = Some(code),
                Event::PingRtt { rtt: r, data } => {
                    assert_eq!(&data, b"ringedge");
                    rtt = Some(r)
                }
                Event::Closed { error } => panic!("closed: {error:?}"),
                _ => {}
            }
        }
    }
    let h = a_headers.expect("response headers");
    assert_eq!(&h[0].name[..], b":status");
    assert_eq!(&h[0].value[..], b"200");
    assert!(echoed == body[..], "echo differs ({} bytes)", echoed.len());
    let t = a_trailers.unwrap();
    let get = |n: &str| {
        t.iter()
            .find(|f| &f.name[..] == n.as_bytes())
            .map(|f| f.value.clone())
    };
    assert_eq!(get("grpc-status").as_deref(), Some(&b"0"[..]));
    assert_eq!(get("x-echoed").as_deref(), Some(&b"300000"[..]));
    assert_eq!(get("x-trailer-seen").as_deref(), Some(&b"1"[..]));
    assert_eq!(b_reset, Some(ErrorCode::RefusedStream));

    // Graceful close: GOAWAY(NO_ERROR) and no stream left.
    conn.send_goaway(ErrorCode::NoError, b"done").unwrap();
    assert!(conn.is_closed());
    flush(&mut conn, &mut io).await;
    drop(io);
    let _ = tokio::time::timeout(WAIT, server).await;
}
