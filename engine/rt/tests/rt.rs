//! Runtime tests on real io_uring, loopback only, bounded in count and time.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream as StdStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use ringedge_rt::control::control_mesh;
use ringedge_rt::{
    connect, serve, sleep, spawn, timeout, AsyncReadExt, AsyncWriteExt, ConnectionLimit,
    CpuSelection, Listener, RtError, ShardSet, ShardsConfig,
};

/// Bound of every wait for the shards or a peer (a pass takes milliseconds; a loaded CI
/// machine may need seconds).
const WAIT: Duration = Duration::from_secs(30);

/// A loopback address (on `ip`, port 0 resolved) whose port stays reserved while the returned
/// socket lives: bound with SO_REUSEPORT but not listening, so it never takes a connection
/// (connecting to it alone is refused), shards bind the same port with SO_REUSEPORT, and
/// nothing else on the machine can take the port in between (as it could a port probed free,
/// closed and bound again).
fn reserved_port(ip: &str) -> std::io::Result<(SocketAddr, socket2::Socket)> {
    let any: SocketAddr = format!("{ip}:0").parse().unwrap();
    let s = socket2::Socket::new(
        socket2::Domain::for_address(any),
        socket2::Type::STREAM,
        None,
    )?;
    s.set_reuse_address(true)?;
    s.set_reuse_port(true)?;
    s.bind(&any.into())?;
    let addr = s.local_addr()?.as_socket().unwrap();
    Ok((addr, s))
}

fn one_shard() -> ShardsConfig {
    ShardsConfig {
        cpus: CpuSelection::Count(1),
        ..ShardsConfig::default()
    }
}

#[test]
fn reuseport_listeners_spread_connections_across_shards() {
    let (addr, _reserved) = reserved_port("127.0.0.1").unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = mpsc::channel::<usize>();
    let ready_tx = Arc::new(Mutex::new(ready_tx));
    let set = {
        let stop = stop.clone();
        ShardSet::start(ShardsConfig::default(), move |ctx| {
            let stop = stop.clone();
            let ready = ready_tx.lock().unwrap().clone();
            async move {
                let listener = Listener::bind(addr, 1024).unwrap();
                assert_eq!(listener.local_addr(), addr);
                let limit = ConnectionLimit::new(1000);
                let accept = spawn(serve(listener, limit, move |mut s, _peer| async move {
                    let mut b = [0u8; 1];
                    if s.read_exact(&mut b).await.is_ok() {
                        let _ = s.write_all(&[ctx.index as u8]).await;
                    }
                }));
                ready.send(ctx.index).unwrap();
                while !stop.load(Ordering::Relaxed) {
                    sleep(Duration::from_millis(5)).await;
                }
                drop(accept);
            }
        })
        .unwrap()
    };
    let shards = set.cpus().len();
    for _ in 0..shards {
        ready_rx.recv_timeout(WAIT).unwrap();
    }
    let mut per_shard = vec![0usize; shards];
    for _ in 0..200 {
        let mut s = StdStream::connect(addr).unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        s.write_all(b"?").unwrap();
        let mut b = [0u8; 1];
        s.read_exact(&mut b).unwrap();
        per_shard[b[0] as usize] += 1;
    }
    stop.store(true, Ordering::Relaxed);
    set.join().unwrap();
    assert_eq!(per_shard.iter().sum::<usize>(), 200);
    for (i, n) in per_shard.iter().enumerate() {
        assert!(*n > 0, "shard {i} accepted nothing: {per_shard:?}");
    }
}

#[test]
fn connection_limit_holds_extra_connections_in_backlog() {
    let (addr, _reserved) = reserved_port("127.0.0.1").unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let max_seen = Arc::new(AtomicUsize::new(0));
    let (ready_tx, ready_rx) = mpsc::channel::<()>();
    let ready_tx = Arc::new(Mutex::new(ready_tx));
    let set = {
        let stop = stop.clone();
        let max_seen = max_seen.clone();
        ShardSet::start(one_shard(), move |_ctx| {
            let stop = stop.clone();
            let max_seen = max_seen.clone();
            let ready = ready_tx.lock().unwrap().clone();
            async move {
                let listener = Listener::bind(addr, 64).unwrap();
                let limit = ConnectionLimit::new(3);
                let probe = limit.clone();
                let accept = spawn(serve(listener, limit, move |mut s, _| {
                    let probe = probe.clone();
                    let max_seen = max_seen.clone();
                    async move {
                        max_seen.fetch_max(probe.active(), Ordering::SeqCst);
                        // Greet, then hold the connection until the client closes it.
                        let _ = s.write_all(b"!").await;
                        let mut b = [0u8; 16];
                        while let Ok(n) = s.read(&mut b).await {
                            if n == 0 {
                                break;
                            }
                        }
                    }
                }));
                ready.send(()).unwrap();
                while !stop.load(Ordering::Relaxed) {
                    sleep(Duration::from_millis(5)).await;
                }
                drop(accept);
            }
        })
        .unwrap()
    };
    ready_rx.recv_timeout(WAIT).unwrap();
    let greeted = |s: &mut StdStream, wait: Duration| -> bool {
        s.set_read_timeout(Some(wait)).unwrap();
        let mut b = [0u8; 1];
        // glommio signals its threads; blocking calls on other threads may see EINTR: retry.
        loop {
            match s.read(&mut b) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                r => return matches!(r, Ok(1)),
            }
        }
    };
    let mut conns: Vec<StdStream> = (0..5).map(|_| StdStream::connect(addr).unwrap()).collect();
    for (i, c) in conns.iter_mut().take(3).enumerate() {
        assert!(greeted(c, WAIT), "connection {i} not served");
    }
    // Nothing may happen here: a slow machine can only hide a bug, never fail a correct run.
    for (i, c) in conns.iter_mut().skip(3).enumerate() {
        assert!(
            !greeted(c, Duration::from_millis(300)),
            "connection {} served beyond the limit",
            i + 3
        );
    }
    // Closing one frees a slot: exactly one waiting connection is served next. Wait (bounded,
    // generously) for either waiting connection to be greeted, then make sure the other is not.
    drop(conns.remove(0));
    let deadline = Instant::now() + WAIT;
    let served = loop {
        if let Some(i) = (2..4).find(|&i| greeted(&mut conns[i], Duration::from_millis(50))) {
            break i;
        }
        assert!(
            Instant::now() < deadline,
            "no waiting connection was served after a slot was freed"
        );
    };
    let other = if served == 2 { 3 } else { 2 };
    assert!(
        !greeted(&mut conns[other], Duration::from_millis(300)),
        "both waiting connections were served for one freed slot"
    );
    drop(conns);
    stop.store(true, Ordering::Relaxed);
    set.join().unwrap();
    assert_eq!(max_seen.load(Ordering::SeqCst), 3);
}

#[test]
fn connect_refused_and_timeout_are_distinct() {
    // A port with nothing listening (reserved, so nothing else takes it meanwhile): refused.
    let (closed, _reserved) = reserved_port("127.0.0.1").unwrap();
    // A listener that never accepts, with its accept queue filled: SYNs are dropped.
    let full = ringedge_rt::bind_reuseport_socket("127.0.0.1:0".parse().unwrap(), 0).unwrap();
    let full_addr = full.local_addr().unwrap().as_socket().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..4 {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        s.set_nonblocking(true).unwrap();
        let _ = s.connect(&full_addr.into());
        fillers.push(s);
    }
    std::thread::sleep(Duration::from_millis(100));
    let set = ShardSet::start(one_shard(), move |_ctx| async move {
        // A budget a refusal never needs: a slow machine must not turn it into a timeout.
        let refused = connect(closed, WAIT).await;
        let t0 = Instant::now();
        let timed_out = connect(full_addr, Duration::from_millis(300)).await;
        (refused.map(|_| ()), timed_out.map(|_| ()), t0.elapsed())
    })
    .unwrap();
    let (refused, timed_out, took) = set.join().unwrap().pop().unwrap();
    match refused {
        Err(RtError::Connect { addr, source }) => {
            assert_eq!(addr, closed);
            assert_eq!(source.kind(), std::io::ErrorKind::ConnectionRefused);
        }
        other => panic!("expected refusal, got {other:?}"),
    }
    match timed_out {
        Err(RtError::ConnectTimeout { addr, after }) => {
            assert_eq!(addr, full_addr);
            assert_eq!(after, Duration::from_millis(300));
        }
        other => panic!("expected timeout, got {other:?}"),
    }
    // Our timer ended the attempt, not the kernel giving up on its SYN retries (over a
    // minute): the upper bound is far from both, so a slow machine does not fail it.
    assert!(
        took >= Duration::from_millis(290) && took < Duration::from_secs(20),
        "{took:?}"
    );
    drop(full);
}

#[test]
fn connect_succeeds_with_nodelay() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let set = ShardSet::start(one_shard(), move |_| async move {
        let s = connect(addr, WAIT).await.unwrap();
        s.nodelay().unwrap()
    })
    .unwrap();
    assert!(set.join().unwrap()[0]);
    drop(l);
}

#[test]
fn quickack_is_set_on_the_socket() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let set = ShardSet::start(one_shard(), move |_| async move {
        let s = connect(addr, WAIT).await.unwrap();
        // A fresh connection already acks quickly: put it in delayed-ACK mode first.
        set_quickack_raw(&s, 0);
        let before = quickack_of(&s);
        ringedge_rt::set_quickack(&s).unwrap();
        (before, quickack_of(&s))
    })
    .unwrap();
    let (before, after) = set.join().unwrap()[0];
    assert_eq!(before, 0, "delayed ACKs after TCP_QUICKACK=0");
    assert_eq!(after, 1, "quick ACKs after set_quickack");
    drop(l);
}

#[test]
fn poll_read_buf_appends_what_arrives_within_the_window() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    // The peer writes 10,000 patterned bytes, then closes.
    let peer = std::thread::spawn(move || {
        let (mut c, _) = l.accept().unwrap();
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        c.write_all(&data).unwrap();
    });
    let set = ShardSet::start(one_shard(), move |_| async move {
        let mut s = connect(addr, WAIT).await.unwrap();
        // What was in the buffer stays in front; no read appends more than its window; the
        // spare capacity left over by a read (non-zero garbage here) never shows.
        let mut buf = bytes::BytesMut::with_capacity(64);
        buf.extend_from_slice(b"head");
        buf.reserve(8192);
        buf.extend_from_slice(&[0xAA; 4096]);
        buf.truncate(4);
        let reads = read_to_eof(&mut s, &mut buf, 3000, true).await;
        (buf, reads)
    })
    .unwrap();
    let (buf, reads) = set.join().unwrap().pop().unwrap();
    peer.join().unwrap();
    assert!(reads.iter().all(|&n| n > 0 && n <= 3000), "{reads:?}");
    assert_eq!(reads.iter().sum::<usize>(), 10_000);
    assert_eq!(&buf[..4], b"head");
    let want: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(&buf[4..], &want[..]);
}

/// A shard whose short timers keep being cut short by socket reads (so timers armed for a
/// sleep are left running, fire while tasks run, and preempt them) never parks while a task is
/// runnable. glommio once did: a preemption pending before the first task queue ran made it
/// report no work and sleep with the woken ticker queued, until an unrelated event (see
/// engine/vendor/README.md, the fifth change). Liveness only: every wait is bounded by `WAIT`.
#[test]
fn short_timers_cut_short_by_reads_never_stall_the_shard() {
    const BYTES: usize = 3000;
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let peer = std::thread::spawn(move || {
        let (mut c, _) = l.accept().unwrap();
        for _ in 0..BYTES {
            c.write_all(b"x").unwrap();
            std::thread::sleep(Duration::from_micros(150));
        }
    });
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let set = ShardSet::start(one_shard(), move |_| async move {
            let mut s = connect(addr, WAIT).await.unwrap();
            let done = std::rc::Rc::new(std::cell::Cell::new(false));
            let ticks = std::rc::Rc::new(std::cell::Cell::new(0u64));
            let ticker = {
                let (done, ticks) = (done.clone(), ticks.clone());
                spawn(async move {
                    while !done.get() {
                        sleep(Duration::from_micros(300)).await;
                        ticks.set(ticks.get() + 1);
                    }
                })
            };
            let mut buf = bytes::BytesMut::new();
            let got: usize = read_to_eof(&mut s, &mut buf, 64, false).await.iter().sum();
            done.set(true);
            ticker.await;
            (got, ticks.get())
        })
        .unwrap();
        let _ = tx.send(set.join().unwrap().pop().unwrap());
    });
    let (got, ticks) = rx
        .recv_timeout(WAIT)
        .expect("the shard stalled: a runnable task was left queued while the shard slept");
    peer.join().unwrap();
    assert_eq!(got, BYTES);
    assert!(ticks > 0);
}

/// Reads `s` with `poll_read_buf` (at most `max` bytes a read) until end of stream; returns
/// each read's size. `keep`: leave what was read in `buf`, else empty it after every read.
async fn read_to_eof(
    s: &mut ringedge_rt::TcpStream,
    buf: &mut bytes::BytesMut,
    max: usize,
    keep: bool,
) -> Vec<usize> {
    let mut reads = Vec::new();
    loop {
        let n = std::future::poll_fn(|cx| ringedge_rt::poll_read_buf(s, cx, buf, max))
            .await
            .unwrap();
        if n == 0 {
            return reads;
        }
        reads.push(n);
        if !keep {
            buf.clear();
        }
    }
}

/// Runs `f` on `s` seen as a socket2 socket (the test reads the kernel's value back).
fn with_sock<T>(s: &ringedge_rt::TcpStream, f: impl FnOnce(socket2::SockRef<'_>) -> T) -> T {
    // SAFETY: the fd belongs to `s`, borrowed for the whole call, so it stays open.
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(std::os::fd::AsRawFd::as_raw_fd(s)) };
    f(socket2::SockRef::from(&fd))
}

fn set_quickack_raw(s: &ringedge_rt::TcpStream, v: libc::c_int) {
    with_sock(s, |k| k.set_quickack(v != 0)).expect("setsockopt(TCP_QUICKACK)");
}

/// `TCP_QUICKACK` as the kernel reports it for `s`.
fn quickack_of(s: &ringedge_rt::TcpStream) -> libc::c_int {
    libc::c_int::from(with_sock(s, |k| k.quickack()).expect("getsockopt(TCP_QUICKACK)"))
}

#[test]
fn timers_sleep_and_timeout() {
    let set = ShardSet::start(one_shard(), |_| async {
        let t0 = ringedge_rt::now();
        sleep(Duration::from_millis(20)).await;
        let slept = t0.elapsed();
        let late = timeout(Duration::from_millis(10), sleep(Duration::from_secs(60))).await;
        let quick = timeout(Duration::from_secs(5), async { 7 }).await;
        (
            slept,
            late.is_err(),
            matches!(late, Err(RtError::Timeout(_))),
            quick.unwrap(),
        )
    })
    .unwrap();
    let (slept, late_err, is_timeout, quick) = set.join().unwrap().pop().unwrap();
    assert!(slept >= Duration::from_millis(20), "{slept:?}");
    assert!(late_err && is_timeout);
    assert_eq!(quick, 7);
}

#[test]
fn control_broadcast_reaches_every_shard() {
    let shards = ringedge_rt::allowed_cpus().unwrap().len();
    let (hub, endpoints) = control_mesh::<u32, (usize, u32)>(shards);
    let hub = Arc::new(Mutex::new(Some(hub)));
    let set = ShardSet::start(ShardsConfig::default(), move |ctx| {
        let endpoints = endpoints.clone();
        let hub = hub.clone();
        async move {
            let ctl = endpoints.take(ctx.index).expect("endpoint taken once");
            assert!(endpoints.take(ctx.index).is_none());
            let served = spawn(ctl.serve(move |m: u32| async move { (ctx.index, m * 2) }));
            let mut replies = Vec::new();
            if ctx.index == 0 {
                let hub = hub.lock().unwrap().take().unwrap();
                let mut hub = hub.connect().await;
                replies.push(hub.broadcast(21).await.unwrap());
                replies.push(hub.broadcast(50).await.unwrap());
                // Dropping the hub ends every shard's control task.
            }
            served.await;
            replies
        }
    })
    .unwrap();
    let results = set.join().unwrap();
    let expect1: Vec<(usize, u32)> = (0..shards).map(|i| (i, 42)).collect();
    let expect2: Vec<(usize, u32)> = (0..shards).map(|i| (i, 100)).collect();
    assert_eq!(results[0], vec![expect1, expect2]);
}

#[test]
fn ipv6_loopback_listener_accepts() {
    let (addr, _reserved) = match reserved_port("[::1]") {
        Ok(r) => r,
        Err(_) => {
            eprintln!("no IPv6 loopback here; skipping");
            return;
        }
    };
    let (ready_tx, ready_rx) = mpsc::channel::<()>();
    let ready_tx = Arc::new(Mutex::new(ready_tx));
    let set = ShardSet::start(one_shard(), move |_| {
        let ready = ready_tx.lock().unwrap().clone();
        async move {
            let l = Listener::bind(addr, 16).unwrap();
            ready.send(()).unwrap();
            let (mut s, peer) = timeout(WAIT, l.accept()).await.unwrap().unwrap();
            s.write_all(b"6").await.unwrap();
            (peer.is_ipv6(), s.nodelay().unwrap())
        }
    })
    .unwrap();
    ready_rx.recv_timeout(WAIT).unwrap();
    let mut c = StdStream::connect(addr).unwrap();
    let mut b = [0u8; 1];
    c.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"6");
    assert_eq!(set.join().unwrap(), vec![(true, true)]);
}

/// Runs in a child process (it lowers RLIMIT_MEMLOCK, which would disturb the other tests).
#[test]
#[ignore = "run by low_memlock_fails_start_with_named_fix in a child process"]
fn child_low_memlock() {
    if std::env::var_os("RINGEDGE_RT_CHILD").is_none() {
        return;
    }
    let lim = libc::rlimit {
        rlim_cur: 256 * 1024,
        rlim_max: libc::RLIM_INFINITY,
    };
    // Keep the hard limit: lowering only the soft one is always permitted.
    let mut cur = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read/write the structs we pass by valid pointers.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut cur), 0);
        let lim = libc::rlimit {
            rlim_max: cur.rlim_max,
            ..lim
        };
        assert_eq!(libc::setrlimit(libc::RLIMIT_MEMLOCK, &lim), 0);
    }
    // The preflight names the fix.
    let e = ShardSet::start(one_shard(), |_| async {}).unwrap_err();
    assert!(
        matches!(e, RtError::MemlockTooLow { current, .. } if current == 256 * 1024),
        "{e}"
    );
    println!("PREFLIGHT: {e}");
    // Without the preflight glommio itself refuses, and start reports it (no half start).
    let cfg = ShardsConfig {
        check_host: false,
        ..ShardsConfig::default()
    };
    let e = ShardSet::start(cfg, |_| async {}).unwrap_err();
    assert!(matches!(e, RtError::ShardStart { .. }), "{e}");
    assert!(e.to_string().contains("ulimit -l"), "{e}");
    println!("GLOMMIO: {e}");
    println!("CHILD-OK");
}

#[test]
fn low_memlock_fails_start_with_named_fix() {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_low_memlock", "--ignored", "--nocapture"])
        .env("RINGEDGE_RT_CHILD", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("CHILD-OK"), "{stdout}");
    assert!(stdout.contains("ulimit -l"), "{stdout}");
}
