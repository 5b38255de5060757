//! `tonic-origin`: a plain tonic `helloworld.Greeter` server for benchmarks — the "tonic origin"
//! the peer benchmarks compare against (`scripts/bench-peers.sh --origin tonic`,
//! `scripts/bench-loadgen.sh`).
//!
//!   tonic-origin [--listen ADDR] [--threads N] [--nagle]
//!
//! h2c only, `SayHello` answers `Hello <name>`; no recording, no metadata handling: what a stock
//! tonic service costs per call. `--threads 1` (the default) runs tokio's current-thread runtime,
//! one core's worth of tonic; more threads use the multi-thread runtime. `--nagle` leaves
//! Nagle's algorithm on (no TCP_NODELAY), like servers that never set it: a test of how the
//! edge copes with an origin whose small writes wait for ACKs. Stops on SIGTERM/SIGINT
//! (the default disposition) or when its parent kills it by PID.

use std::net::SocketAddr;

use ringedge_e2e::pb::greeter_server::{Greeter, GreeterServer};
use ringedge_e2e::pb::{HelloReply, HelloRequest};
use tonic::{Request, Response, Status};

struct Hello;

#[tonic::async_trait]
impl Greeter for Hello {
    async fn say_hello(&self, req: Request<HelloRequest>) -> Result<Response<HelloReply>, Status> {
        Ok(Response::new(HelloReply {
            message: format!("Hello {}", req.into_inner().name),
        }))
    }
}

fn usage(why: &str) -> ! {
    eprintln!("tonic-origin: {why}\nusage: tonic-origin [--listen ADDR] [--threads N] [--nagle]");
    std::process::exit(2)
}

fn main() {
    let mut listen: SocketAddr = "127.0.0.1:50051".parse().expect("literal address");
    let mut threads: usize = 1;
    let mut nodelay = true;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |flag: &str| {
            args.next()
                .unwrap_or_else(|| usage(&format!("{flag} needs a value")))
        };
        match a.as_str() {
            "--listen" => {
                let v = value("--listen");
                listen = v
                    .parse()
                    .unwrap_or_else(|_| usage(&format!("--listen: '{v}' is not an address")));
            }
            "--threads" => {
                let v = value("--threads");
                threads = match v.parse() {
                    Ok(n) if (1..=256).contains(&n) => n,
                    _ => usage(&format!("--threads: '{v}' is not in [1, 256]")),
                };
            }
            "--nagle" => nodelay = false,
            other => usage(&format!("unknown argument '{other}'")),
        }
    }
    let rt = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    };
    let rt = rt.unwrap_or_else(|e| usage(&format!("tokio runtime: {e}")));
    let served = rt.block_on(async {
        // tonic's own listener: it sets TCP_NODELAY on accepted sockets as a stock tonic
        // server does (`serve_with_incoming` on a plain tokio listener would leave Nagle on).
        let incoming =
            tonic::transport::server::TcpIncoming::bind(listen)?.with_nodelay(Some(nodelay));
        eprintln!("tonic-origin: h2c on {}", incoming.local_addr()?);
        tonic::transport::Server::builder()
            .add_service(GreeterServer::new(Hello))
            .serve_with_incoming(incoming)
            .await
            .map_err(std::io::Error::other)
    });
    if let Err(e) = served {
        eprintln!("tonic-origin: serving {listen}: {e}");
        std::process::exit(1);
    }
}
