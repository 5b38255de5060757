//! The TOML shape of the configuration, exactly as written in a file.
//!
//! These types only describe syntax: every struct denies unknown fields and carries the
//! documented defaults, but nothing here checks ranges, names or files. The validator
//! (`super::validate`) turns a [`RawConfig`] into the frozen [`super::Config`].
//! They are also serialized back to TOML by `ringedge proxy --print-config`. The meaning,
//! default and accepted range of each field are documented on its typed counterpart in
//! [`super`] and in `ringedge.example.toml`; defaults here must match both.

use serde::{Deserialize, Serialize};

/// The whole file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawConfig {
    pub server: RawServer,
    pub tls: RawTls,
    pub limits: RawLimits,
    pub log: RawLog,
    pub admin: RawAdmin,
    pub origins: Vec<RawOrigin>,
    pub hosts: Vec<RawHost>,
}

/// `[server]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawServer {
    pub listen: Vec<String>,
    pub shards: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpus: Option<Vec<u32>>,
    pub backlog: u32,
    pub max_connections_per_shard: u32,
    pub handshake_timeout_ms: u64,
    pub idle_timeout_ms: u64,
    pub header_timeout_ms: u64,
    pub drain_timeout_ms: u64,
    pub spin_before_park_us: u64,
}

impl Default for RawServer {
    fn default() -> Self {
        RawServer {
            listen: vec!["0.0.0.0:443".to_owned()],
            shards: 0,
            cpus: None,
            backlog: 4096,
            max_connections_per_shard: 4096,
            handshake_timeout_ms: 10_000,
            idle_timeout_ms: 300_000,
            header_timeout_ms: 10_000,
            drain_timeout_ms: 30_000,
            spin_before_park_us: 0,
        }
    }
}

/// `[tls]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawTls {
    pub session_tickets: bool,
    pub min_version: String,
    pub certificates: Vec<RawCertificate>,
}

impl Default for RawTls {
    fn default() -> Self {
        RawTls {
            session_tickets: true,
            min_version: "1.2".to_owned(),
            certificates: Vec::new(),
        }
    }
}

/// `[[tls.certificates]]`
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawCertificate {
    pub cert: String,
    pub key: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
}

/// `[limits]`
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawLimits {
    pub h2: super::H2Limits,
    pub grpc: RawGrpcLimits,
}

/// `[limits.grpc]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawGrpcLimits {
    pub max_message_bytes: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_stream_buffer_bytes: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_connection_buffer_bytes: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_deadline_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_deadline_ms: Option<u64>,
}

impl Default for RawGrpcLimits {
    fn default() -> Self {
        RawGrpcLimits {
            max_message_bytes: 16 * 1024 * 1024,
            max_stream_buffer_bytes: None,
            max_connection_buffer_bytes: None,
            default_deadline_ms: None,
            max_deadline_ms: None,
        }
    }
}

/// `[log]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawLog {
    pub level: String,
    pub format: String,
}

impl Default for RawLog {
    fn default() -> Self {
        RawLog {
            level: "info".to_owned(),
            format: "text".to_owned(),
        }
    }
}

/// `[admin]`
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawAdmin {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
}

/// `[[origins]]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawOrigin {
    pub name: String,
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sni: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca: Option<String>,
    pub insecure_skip_verify: bool,
    pub connect_timeout_ms: u64,
    pub max_connections: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_streams_per_connection: Option<u32>,
    pub idle_timeout_ms: u64,
}

impl Default for RawOrigin {
    fn default() -> Self {
        RawOrigin {
            name: String::new(),
            url: String::new(),
            sni: None,
            ca: None,
            insecure_skip_verify: false,
            connect_timeout_ms: 3_000,
            max_connections: 8,
            max_streams_per_connection: None,
            idle_timeout_ms: 90_000,
        }
    }
}

/// A gRPC status code written as a number (`12`) or a canonical name (`"unimplemented"`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RawStatus {
    /// Numeric code.
    Code(i64),
    /// Canonical name, case-insensitive, `_` optional (`"PERMISSION_DENIED"`, `"permission_denied"`).
    Name(String),
}

/// `[[hosts]]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawHost {
    pub names: Vec<String>,
    pub grpc: bool,
    pub grpc_off_status: RawStatus,
    pub non_grpc: String,
    pub require_sni_match: bool,
    pub routes: Vec<RawRoute>,
}

impl Default for RawHost {
    fn default() -> Self {
        RawHost {
            names: Vec::new(),
            grpc: true,
            grpc_off_status: RawStatus::Code(12),
            non_grpc: "reject".to_owned(),
            require_sni_match: true,
            routes: Vec::new(),
        }
    }
}

/// `[[hosts.routes]]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawRoute {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    pub origin: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authority: Option<String>,
    pub forwarded: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_deadline_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_deadline_ms: Option<u64>,
}

impl Default for RawRoute {
    fn default() -> Self {
        RawRoute {
            method: None,
            service: None,
            prefix: None,
            origin: String::new(),
            authority: None,
            forwarded: "none".to_owned(),
            default_deadline_ms: None,
            max_deadline_ms: None,
        }
    }
}
