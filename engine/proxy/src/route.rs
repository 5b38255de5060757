//! The routing table: request host and path → host policy and route.
//!
//! Built once from a validated [`Config`] and frozen; [`RouteTable::lookup`] never allocates
//! (sorted arrays, binary search on exact names, linear scans over pre-sorted wildcard and
//! prefix lists; all comparisons are ASCII case-insensitive for names, byte-exact for paths).
//!
//! Precedence:
//! - hosts: exact name > longest `*.suffix` wildcard > `*`. Names are matched against the
//!   `:authority` with its port stripped (RFC 9113 §8.3.1, RFC 3986 §3.2.2), case-insensitively;
//!   an empty `:authority` falls back to the SNI.
//! - routes within a host: exact method > service > longest prefix.
//! - when the selected host has `require_sni_match` and the client sent SNI, the SNI must
//!   select the same host, else [`RouteDecision::SniMismatch`].
//!
//! Must not: decide protocol answers (the forwarder maps each decision to a status), allocate
//! on lookup, or hold anything `!Clone`. Invariant: every index stored refers to an existing
//! host/route/origin of the config it was built from (validation guarantees the origins).

use std::cmp::Ordering;
use std::time::Duration;

use crate::config::{Config, ForwardedMode, HostPattern, NonGrpcPolicy, RouteMatch};

/// A host's policy, as the forwarder needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPolicy {
    /// Index into [`Config::hosts`].
    pub index: usize,
    /// The gRPC switch.
    pub grpc: bool,
    /// Status (1..=16) answered to gRPC calls when `grpc` is off.
    pub grpc_off_status: u8,
    /// Non-gRPC HTTP/2 requests: forward or 415.
    pub non_grpc: NonGrpcPolicy,
    /// Whether SNI and `:authority` must select the same host.
    pub require_sni_match: bool,
}

/// A matched route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// Index into the host's routes in [`Config::hosts`].
    pub index: usize,
    /// Index into [`Config::origins`].
    pub origin: usize,
    /// Rewrite `:authority` to this, if set.
    pub authority: Option<Box<str>>,
    /// Client-address header to add.
    pub forwarded: ForwardedMode,
    /// Deadline for calls without `grpc-timeout`.
    pub default_deadline: Option<Duration>,
    /// Cap on client deadlines.
    pub max_deadline: Option<Duration>,
}

/// The outcome of a lookup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteDecision<'a> {
    /// A host and one of its routes matched.
    Matched {
        /// The host's policy (check `grpc` before forwarding a gRPC call).
        host: &'a HostPolicy,
        /// The route.
        route: &'a Route,
    },
    /// No host matches the `:authority` (or SNI when there is no authority).
    NoHost,
    /// The host requires SNI and `:authority` to agree, and they select different hosts (or the
    /// SNI selects none). Answer PERMISSION_DENIED for gRPC, 421 otherwise.
    SniMismatch {
        /// The host the `:authority` selected.
        host: &'a HostPolicy,
    },
    /// The host matched, but none of its routes matches the path.
    NoRoute {
        /// The host that matched.
        host: &'a HostPolicy,
    },
}

#[derive(Clone, Debug)]
struct HostEntry {
    policy: HostPolicy,
    /// Exact methods, sorted by path bytes.
    methods: Box<[(Box<[u8]>, usize)]>,
    /// Services (`pkg.Service`), sorted by bytes.
    services: Box<[(Box<[u8]>, usize)]>,
    /// Prefixes, longest first.
    prefixes: Box<[(Box<[u8]>, usize)]>,
    routes: Box<[Route]>,
}

/// The frozen routing table.
#[derive(Clone, Debug)]
pub struct RouteTable {
    hosts: Box<[HostEntry]>,
    /// Exact names, lower-case, sorted.
    exact: Box<[(Box<[u8]>, usize)]>,
    /// Wildcard suffixes (`.example.com`), lower-case, longest first.
    wildcards: Box<[(Box<[u8]>, usize)]>,
    /// The `*` host.
    any: Option<usize>,
}

/// ASCII case-insensitive ordering of `a` against the lower-case `b`.
fn cmp_ci(a: &[u8], b: &[u8]) -> Ordering {
    let n = a.len().min(b.len());
    for i in 0..n {
        match a[i].to_ascii_lowercase().cmp(&b[i]) {
            Ordering::Equal => {}
            o => return o,
        }
    }
    a.len().cmp(&b.len())
}

/// `:authority` (or SNI) without the port: `host:port` → `host`, `[v6]:port` → `v6`.
pub fn strip_port(authority: &[u8]) -> &[u8] {
    if let Some(rest) = authority.strip_prefix(b"[") {
        return match rest.iter().position(|&b| b == b']') {
            Some(end) => &rest[..end],
            None => authority,
        };
    }
    match authority.iter().rposition(|&b| b == b':') {
        // A bare IPv6 address (several colons, no brackets) has no port to strip.
        Some(i) if !authority[..i].contains(&b':') => &authority[..i],
        _ => authority,
    }
}

impl RouteTable {
    /// Build the table from a validated config.
    pub fn new(config: &Config) -> RouteTable {
        let mut exact = Vec::new();
        let mut wildcards = Vec::new();
        let mut any = None;
        let mut hosts = Vec::with_capacity(config.hosts.len());
        for (hi, h) in config.hosts.iter().enumerate() {
            for n in &h.names {
                match n {
                    HostPattern::Exact(s) => exact.push((s.as_bytes().into(), hi)),
                    HostPattern::Wildcard(s) => wildcards.push((s.as_bytes().into(), hi)),
                    HostPattern::Any => any = any.or(Some(hi)),
                }
            }
            let mut methods = Vec::new();
            let mut services = Vec::new();
            let mut prefixes = Vec::new();
            let mut routes = Vec::with_capacity(h.routes.len());
            for (ri, r) in h.routes.iter().enumerate() {
                match &r.matcher {
                    RouteMatch::Method(m) => methods.push((m.as_bytes().into(), ri)),
                    RouteMatch::Service(s) => services.push((s.as_bytes().into(), ri)),
                    RouteMatch::Prefix(p) => prefixes.push((p.as_bytes().into(), ri)),
                }
                routes.push(Route {
                    index: ri,
                    origin: r.origin,
                    authority: r.authority.as_deref().map(Into::into),
                    forwarded: r.forwarded,
                    default_deadline: r.default_deadline,
                    max_deadline: r.max_deadline,
                });
            }
            methods.sort();
            services.sort();
            prefixes.sort_by(|a: &(Box<[u8]>, usize), b| b.0.len().cmp(&a.0.len()).then(a.1.cmp(&b.1)));
            hosts.push(HostEntry {
                policy: HostPolicy {
                    index: hi,
                    grpc: h.grpc,
                    grpc_off_status: h.grpc_off_status,
                    non_grpc: h.non_grpc,
                    require_sni_match: h.require_sni_match,
                },
                methods: methods.into(),
                services: services.into(),
                prefixes: prefixes.into(),
                routes: routes.into(),
            });
        }
        exact.sort();
        wildcards.sort_by(|a: &(Box<[u8]>, usize), b| b.0.len().cmp(&a.0.len()).then(a.1.cmp(&b.1)));
        RouteTable { hosts: hosts.into(), exact: exact.into(), wildcards: wildcards.into(), any }
    }

    /// The host index a name (port already stripped or not) selects.
    pub fn host_for(&self, name: &[u8]) -> Option<usize> {
        let name = strip_port(name);
        let name = name.strip_suffix(b".").unwrap_or(name); // absolute form `example.com.`
        if let Ok(i) = self.exact.binary_search_by(|(n, _)| cmp_ci(name, n).reverse()) {
            return Some(self.exact[i].1);
        }
        for (suffix, h) in self.wildcards.iter() {
            if name.len() > suffix.len() {
                let tail = &name[name.len() - suffix.len()..];
                if cmp_ci(tail, suffix) == Ordering::Equal {
                    return Some(*h);
                }
            }
        }
        self.any
    }

    /// Route a request. `authority` is the `:authority` (may carry a port; empty = absent),
    /// `sni` the TLS server name if the client sent one, `path` the `:path`.
    pub fn lookup(&self, authority: &[u8], sni: Option<&str>, path: &[u8]) -> RouteDecision<'_> {
        let name = if authority.is_empty() { sni.map(str::as_bytes).unwrap_or(b"") } else { authority };
        let Some(hi) = self.host_for(name) else { return RouteDecision::NoHost };
        let host = &self.hosts[hi];
        if host.policy.require_sni_match {
            if let Some(sni) = sni {
                if self.host_for(sni.as_bytes()) != Some(hi) {
                    return RouteDecision::SniMismatch { host: &host.policy };
                }
            }
        }
        match host.route_for(path) {
            Some(r) => RouteDecision::Matched { host: &host.policy, route: r },
            None => RouteDecision::NoRoute { host: &host.policy },
        }
    }

    /// Number of hosts.
    pub fn host_count(&self) -> usize {
        self.hosts.len()
    }
}

impl HostEntry {
    fn route_for(&self, path: &[u8]) -> Option<&Route> {
        if let Ok(i) = self.methods.binary_search_by(|(m, _)| m.as_ref().cmp(path)) {
            return Some(&self.routes[self.methods[i].1]);
        }
        // `/pkg.Service/Method` → `pkg.Service`
        if let Some(rest) = path.strip_prefix(b"/") {
            if let Some(end) = rest.iter().position(|&b| b == b'/') {
                let svc = &rest[..end];
                if let Ok(i) = self.services.binary_search_by(|(s, _)| s.as_ref().cmp(svc)) {
                    return Some(&self.routes[self.services[i].1]);
                }
            }
        }
        self.prefixes.iter().find(|(p, _)| path.starts_with(p)).map(|(_, r)| &self.routes[*r])
    }
}
