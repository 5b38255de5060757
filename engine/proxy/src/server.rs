//! Running the proxy from a validated [`Config`]: build every runtime piece (TLS configs, origin
//! specs, HTTP/2 limits, per-shard forwarding plans), start the shards, wait for a stop signal,
//! drain.
//!
//! What it must not do: start half a proxy. Everything that can fail (certificates, CA files,
//! origin names, listen addresses, io_uring, memlock) is checked before the first connection is
//! accepted; a failure returns a [`RunError`] naming it.

use std::fmt;
use std::net::ToSocketAddrs;
use std::sync::Arc;

use ringedge_codec::conn::ConnConfig;
use ringedge_rt::{CpuSelection, ShardsConfig};
use ringedge_tls::{CaSource, ClientTlsConfig, ClientTlsOptions, ServerTlsConfig, TlsError};

use crate::config::{Config, GrpcLimits, H2Limits, HostPattern, OriginScheme, TlsVersion};
use crate::forward::{OriginPlan, Plan};
use crate::route::RouteTable;
use crate::serve::{self, OriginSpec, ServerHandle, ServerSpec, StartError};

/// Request bytes kept per call so that a call refused by an origin (REFUSED_STREAM, GOAWAY
/// above last-stream-id) can be sent again; a call with more bytes in flight is not retried.
pub const RETRY_BUFFER_BYTES: usize = 64 * 1024;

/// Why the proxy could not run.
#[derive(Debug)]
#[non_exhaustive]
pub enum RunError {
    /// A certificate, key or CA file could not be used.
    Tls {
        /// What was being built (e.g. `tls.certificates`, `origins[0] (billing)`).
        what: String,
        /// The TLS layer's error.
        source: TlsError,
    },
    /// An origin's host name does not resolve.
    Resolve {
        /// The origin's name.
        origin: String,
        /// What the resolver said.
        detail: String,
    },
    /// Shards or listeners could not start.
    Start(StartError),
    /// Installing the signal handler failed.
    Signals(std::io::Error),
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Tls { what, source } => write!(f, "{what}: {source}"),
            RunError::Resolve { origin, detail } => {
                write!(f, "origin {origin}: cannot resolve its address: {detail}")
            }
            RunError::Start(e) => write!(f, "{e}"),
            RunError::Signals(e) => write!(f, "cannot install signal handlers: {e}"),
        }
    }
}

impl std::error::Error for RunError {}

/// The codec's connection settings from the `[limits.h2]` section (same names, same meaning).
///
/// The edge holds at most one receive window of bytes per stream and per connection (credit
/// returns only when the other side accepted the bytes), so `[limits.grpc]`'s
/// `max_stream_buffer_bytes` and `max_connection_buffer_bytes` are enforced by advertising
/// windows no larger than them.
pub fn conn_config(h2: &H2Limits, grpc: &GrpcLimits) -> ConnConfig {
    ConnConfig {
        max_concurrent_streams: h2.max_concurrent_streams,
        initial_stream_window: h2.initial_stream_window.min(grpc.max_stream_buffer_bytes),
        connection_window: h2.connection_window.min(grpc.max_connection_buffer_bytes),
        max_frame_size: h2.max_frame_size,
        max_header_list_size: h2.max_header_list_size,
        header_table_size: h2.header_table_size,
        max_continuation_frames: h2.max_continuation_frames,
        max_header_block_bytes: h2.max_header_block_bytes,
        max_resets_per_window: h2.max_resets_per_window,
        max_settings_per_window: h2.max_settings_per_window,
        max_pings_per_window: h2.max_pings_per_window,
        max_empty_frames_per_window: h2.max_empty_frames_per_window,
        flood_window_ms: h2.flood_window_ms,
        max_refused_streams: h2.max_refused_streams,
        settings_ack_timeout_ms: h2.settings_ack_timeout_ms,
        max_pending_output: h2.max_pending_output,
        ..ConnConfig::default()
    }
}

/// Builds everything the runtime needs from a validated config.
pub fn build_spec(config: &Config) -> Result<ServerSpec, RunError> {
    let mut tls = ServerTlsConfig::builder();
    for (i, c) in config.tls.certificates.iter().enumerate() {
        let names: Vec<&str> = c.names.iter().map(String::as_str).collect();
        tls = tls
            .add_cert_files(&names, &c.cert, &c.key)
            .map_err(|source| RunError::Tls {
                what: format!("tls.certificates[{i}]"),
                source,
            })?;
    }
    let tls = tls
        .tls12(config.tls.min_version == TlsVersion::Tls12)
        .session_tickets(config.tls.session_tickets)
        .build()
        .map_err(|source| RunError::Tls {
            what: "tls".into(),
            source,
        })?;

    let mut origins = Vec::with_capacity(config.origins.len());
    for (i, o) in config.origins.iter().enumerate() {
        let addrs: Vec<_> = (o.url.host.as_str(), o.url.port)
            .to_socket_addrs()
            .map_err(|e| RunError::Resolve {
                origin: o.name.clone(),
                detail: e.to_string(),
            })?
            .collect();
        let tls = match o.url.scheme {
            OriginScheme::H2c => None,
            OriginScheme::Https => {
                let ca = match &o.ca {
                    Some(path) => CaSource::PemFile(path.clone()),
                    None => CaSource::WebPkiRoots,
                };
                let cfg = ClientTlsConfig::new(&ClientTlsOptions {
                    ca,
                    insecure_skip_verify: o.insecure_skip_verify,
                })
                .map_err(|source| RunError::Tls {
                    what: format!("origins[{i}] ({})", o.name),
                    source,
                })?;
                if cfg.is_insecure() {
                    tracing::warn!(
                        origin = %o.name,
                        "TLS certificate verification is OFF for this origin \
                         (insecure_skip_verify): lab use only"
                    );
                }
                Some((cfg, o.sni.clone()))
            }
        };
        origins.push(OriginSpec {
            addrs,
            tls,
            connect_timeout: o.connect_timeout,
        });
    }

    let shards = ShardsConfig {
        cpus: match (&config.server.cpus, config.server.shards) {
            (Some(list), _) => CpuSelection::List(list.clone()),
            (None, 0) => CpuSelection::AllAllowed,
            (None, n) => CpuSelection::Count(n),
        },
        spin_before_park: (!config.server.spin_before_park.is_zero())
            .then_some(config.server.spin_before_park),
        ..ShardsConfig::default()
    };
    let plan_config = config.clone();
    let make_plan = Arc::new(move || make_plan(&plan_config));
    let h2 = conn_config(&config.limits.h2, &config.limits.grpc);
    Ok(ServerSpec {
        listen: config.server.listen.clone(),
        shards,
        backlog: i32::try_from(config.server.backlog).unwrap_or(i32::MAX),
        max_connections_per_shard: config.server.max_connections_per_shard as usize,
        handshake_timeout: config.server.handshake_timeout,
        tls: Some(tls),
        client_h2: h2.clone(),
        origin_h2: h2,
        origins,
        drain_timeout: config.server.drain_timeout,
        make_plan,
        admin: config.admin.listen,
        hpack_pool_bytes: config.limits.h2.hpack_pool_bytes as usize,
    })
}

/// A shard's forwarding plan (routes are rebuilt per shard: nothing is shared).
fn make_plan(config: &Config) -> Plan {
    Plan {
        origins: config
            .origins
            .iter()
            .map(|o| OriginPlan {
                name: o.name.clone(),
                scheme: match o.url.scheme {
                    OriginScheme::Https => b"https",
                    OriginScheme::H2c => b"http",
                },
                max_connections: o.max_connections as usize,
                max_streams_per_connection: o.max_streams_per_connection.unwrap_or(0),
                idle_timeout: (!o.idle_timeout.is_zero()).then_some(o.idle_timeout),
            })
            .collect(),
        host_names: config
            .hosts
            .iter()
            .map(|h| match h.names.first() {
                Some(HostPattern::Exact(n)) => n.clone(),
                Some(HostPattern::Wildcard(suffix)) => format!("*{suffix}"),
                Some(HostPattern::Any) | None => "*".to_string(),
            })
            .collect(),
        routes: RouteTable::new(config),
        retry_buffer_bytes: RETRY_BUFFER_BYTES,
        idle_timeout: (!config.server.idle_timeout.is_zero()).then_some(config.server.idle_timeout),
        header_timeout: (!config.server.header_timeout.is_zero())
            .then_some(config.server.header_timeout),
        max_message_bytes: config.limits.grpc.max_message_bytes,
    }
}

/// Starts the proxy in the background and returns its handle (tests and embedding).
pub fn start(config: &Config) -> Result<ServerHandle, RunError> {
    let spec = build_spec(config)?;
    serve::start(spec).map_err(RunError::Start)
}

/// Runs the proxy with `config` until SIGINT or SIGTERM, then drains and returns.
pub fn run(config: Config) -> Result<(), RunError> {
    let handle = start(&config)?;
    for addr in handle.local_addrs() {
        tracing::info!(%addr, "listening");
    }
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ])
    .map_err(RunError::Signals)?;
    if let Some(sig) = signals.forever().next() {
        tracing::info!(signal = sig, drain_ms = ?config.server.drain_timeout.as_millis(), "stopping: draining connections");
    }
    handle.stop();
    handle.join();
    Ok(())
}
