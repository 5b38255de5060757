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
            prefixes
                .sort_by(|a: &(Box<[u8]>, usize), b| b.0.len().cmp(&a.0.len()).then(a.1.cmp(&b.1)));
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
        wildcards
            .sort_by(|a: &(Box<[u8]>, usize), b| b.0.len().cmp(&a.0.len()).then(a.1.cmp(&b.1)));
        RouteTable {
            hosts: hosts.into(),
            exact: exact.into(),
            wildcards: wildcards.into(),
            any,
        }
    }

    /// The host index a name (port already stripped or not) selects.
    pub fn host_for(&self, name: &[u8]) -> Option<usize> {
        let name = strip_port(name);
        let name = name.strip_suffix(b".").unwrap_or(name); // absolute form `example.com.`
        if let Ok(i) = self
            .exact
            .binary_search_by(|(n, _)| cmp_ci(name, n).reverse())
        {
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
        let name = if authority.is_empty() {
            sni.map(str::as_bytes).unwrap_or(b"")
        } else {
            authority
        };
        let Some(hi) = self.host_for(name) else {
            return RouteDecision::NoHost;
        };
        let host = &self.hosts[hi];
        if host.policy.require_sni_match {
            if let Some(sni) = sni {
                if self.host_for(sni.as_bytes()) != Some(hi) {
                    return RouteDecision::SniMismatch { host: &host.policy };
                }
            }
        }
        match host.route_for(path) {
            Some(r) => RouteDecision::Matched {
                host: &host.policy,
                route: r,
            },
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
        self.prefixes
            .iter()
            .find(|(p, _)| path.starts_with(p))
            .map(|(_, r)| &self.routes[*r])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A validated config with the given `[[hosts]]` text (two origins `a` and `b`).
    fn table(hosts: &str) -> RouteTable {
        let me = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
        let text = format!(
            "[[tls.certificates]]\ncert = {me:?}\nkey = {me:?}\n\
             [[origins]]\nname = \"a\"\nurl = \"h2c://127.0.0.1:1\"\n\
             [[origins]]\nname = \"b\"\nurl = \"h2c://127.0.0.1:2\"\n{hosts}"
        );
        let config = Config::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
        RouteTable::new(&config)
    }

    fn host_of(d: RouteDecision<'_>) -> Option<usize> {
        match d {
            RouteDecision::Matched { host, .. } => Some(host.index),
            _ => None,
        }
    }

    const HOSTS: &str = r#"
[[hosts]]
names = ["api.example.com"]
[[hosts.routes]]
prefix = "/"
origin = "a"

[[hosts]]
names = ["*.example.com"]
[[hosts.routes]]
prefix = "/"
origin = "a"

[[hosts]]
names = ["*.eu.example.com"]
require_sni_match = false
[[hosts.routes]]
prefix = "/"
origin = "a"

[[hosts]]
names = ["*"]
grpc = false
grpc_off_status = 7
non_grpc = "forward"
[[hosts.routes]]
prefix = "/"
origin = "b"
"#;

    #[test]
    fn host_precedence_exact_then_longest_wildcard_then_any() {
        let t = table(HOSTS);
        let h = |a: &str| host_of(t.lookup(a.as_bytes(), None, b"/p.S/M"));
        assert_eq!(h("api.example.com"), Some(0));
        assert_eq!(h("API.Example.COM:8443"), Some(0));
        assert_eq!(h("api.example.com."), Some(0));
        assert_eq!(h("x.example.com"), Some(1));
        assert_eq!(h("a.b.example.com"), Some(1));
        assert_eq!(h("x.eu.example.com"), Some(2));
        assert_eq!(h("X.EU.example.com:443"), Some(2));
        // A wildcard needs at least one label before its suffix.
        assert_eq!(h("example.com"), Some(3));
        assert_eq!(h("eu.example.com"), Some(1));
        assert_eq!(h("other.org"), Some(3));
        assert_eq!(h("[::1]:443"), Some(3));
        assert_eq!(h(""), Some(3));
    }

    #[test]
    fn policy_of_the_host_is_returned() {
        let t = table(HOSTS);
        match t.lookup(b"other.org", None, b"/x") {
            RouteDecision::Matched { host, route } => {
                assert!(!host.grpc);
                assert_eq!(host.grpc_off_status, 7);
                assert_eq!(host.non_grpc, NonGrpcPolicy::Forward);
                assert_eq!(route.origin, 1);
            }
            d => panic!("{d:?}"),
        }
    }

    #[test]
    fn no_host() {
        let t = table(
            "[[hosts]]\nnames = [\"a.test\", \"*.b.test\"]\n[[hosts.routes]]\nprefix = \"/\"\norigin = \"a\"\n",
        );
        assert_eq!(t.lookup(b"c.test", None, b"/"), RouteDecision::NoHost);
        assert_eq!(t.lookup(b"b.test", None, b"/"), RouteDecision::NoHost);
        assert_eq!(t.lookup(b"", None, b"/"), RouteDecision::NoHost);
        assert_eq!(host_of(t.lookup(b"x.B.test", None, b"/")), Some(0));
        // Without :authority the SNI selects the host.
        assert_eq!(host_of(t.lookup(b"", Some("a.test"), b"/")), Some(0));
    }

    #[test]
    fn sni_authority_mismatch() {
        let t = table(HOSTS);
        let d = t.lookup(b"api.example.com", Some("x.example.com"), b"/");
        assert!(
            matches!(d, RouteDecision::SniMismatch { host } if host.index == 0),
            "{d:?}"
        );
        // SNI naming no host at all (falls to `*`, another host) is a mismatch too.
        let d = t.lookup(b"x.example.com", Some("unknown.org"), b"/");
        assert!(
            matches!(d, RouteDecision::SniMismatch { host } if host.index == 1),
            "{d:?}"
        );
        // Same host through different names, case, or port: fine.
        assert_eq!(
            host_of(t.lookup(b"y.example.com:443", Some("Z.example.com"), b"/")),
            Some(1)
        );
        assert_eq!(
            host_of(t.lookup(b"api.example.com", Some("API.EXAMPLE.COM"), b"/")),
            Some(0)
        );
        // No SNI sent: nothing to compare.
        assert_eq!(host_of(t.lookup(b"api.example.com", None, b"/")), Some(0));
        // Host with require_sni_match = false accepts any SNI.
        assert_eq!(
            host_of(t.lookup(b"x.eu.example.com", Some("api.example.com"), b"/")),
            Some(2)
        );
    }

    const ROUTES: &str = r#"
[[hosts]]
names = ["*"]
[[hosts.routes]]
prefix = "/"
origin = "a"
[[hosts.routes]]
prefix = "/pkg."
origin = "a"
[[hosts.routes]]
service = "pkg.Svc"
origin = "b"
authority = "svc.internal:8080"
forwarded = "forwarded"
[[hosts.routes]]
method = "/pkg.Svc/M"
origin = "b"
forwarded = "x-forwarded-for"
default_deadline_ms = 1500
max_deadline_ms = 9000
"#;

    fn route_of(t: &RouteTable, path: &str) -> Option<usize> {
        match t.lookup(b"h", None, path.as_bytes()) {
            RouteDecision::Matched { route, .. } => Some(route.index),
            _ => None,
        }
    }

    #[test]
    fn route_precedence_method_then_service_then_longest_prefix() {
        let t = table(ROUTES);
        assert_eq!(route_of(&t, "/pkg.Svc/M"), Some(3));
        assert_eq!(route_of(&t, "/pkg.Svc/N"), Some(2));
        assert_eq!(route_of(&t, "/pkg.Svc/M2"), Some(2));
        assert_eq!(route_of(&t, "/pkg.Other/M"), Some(1));
        assert_eq!(route_of(&t, "/pkg.Svc"), Some(1));
        assert_eq!(route_of(&t, "/other"), Some(0));
        // Paths are case-sensitive.
        assert_eq!(route_of(&t, "/PKG.Svc/M"), Some(0));
    }

    #[test]
    fn route_fields_are_carried() {
        let t = table(ROUTES);
        let RouteDecision::Matched { route, .. } = t.lookup(b"h", None, b"/pkg.Svc/M") else {
            panic!()
        };
        assert_eq!(route.origin, 1);
        assert_eq!(route.forwarded, ForwardedMode::XForwardedFor);
        assert_eq!(route.default_deadline, Some(Duration::from_millis(1500)));
        assert_eq!(route.max_deadline, Some(Duration::from_secs(9)));
        assert_eq!(route.authority, None);
        let RouteDecision::Matched { route, .. } = t.lookup(b"h", None, b"/pkg.Svc/X") else {
            panic!()
        };
        assert_eq!(route.authority.as_deref(), Some("svc.internal:8080"));
        assert_eq!(route.forwarded, ForwardedMode::Forwarded);
        assert_eq!(route.default_deadline, None);
    }

    #[test]
    fn no_route() {
        let t = table(
            "[[hosts]]\nnames = [\"*\"]\n[[hosts.routes]]\nmethod = \"/a.B/C\"\norigin = \"a\"\n\
             [[hosts.routes]]\nservice = \"x.Y\"\norigin = \"a\"\n",
        );
        assert_eq!(route_of(&t, "/a.B/C"), Some(0));
        assert_eq!(route_of(&t, "/x.Y/Z"), Some(1));
        for p in ["/a.B/D", "/a.B/C/", "/x.Y", "", "/", "x.Y/Z", "//"] {
            let d = t.lookup(b"h", None, p.as_bytes());
            assert!(
                matches!(d, RouteDecision::NoRoute { host } if host.index == 0),
                "{p:?}: {d:?}"
            );
        }
    }

    #[test]
    fn strip_port_forms() {
        assert_eq!(strip_port(b"a.example:443"), b"a.example");
        assert_eq!(strip_port(b"a.example"), b"a.example");
        assert_eq!(strip_port(b"[::1]:443"), b"::1");
        assert_eq!(strip_port(b"[::1]"), b"::1");
        assert_eq!(strip_port(b"::1"), b"::1");
        assert_eq!(strip_port(b"[::1"), b"[::1");
        assert_eq!(strip_port(b""), b"");
        assert_eq!(strip_port(b":"), b"");
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let t = table(HOSTS);
        let samples: [&[u8]; 8] = [
            b"\xff\xfe",
            b"[",
            b"]:",
            b"*",
            b"..",
            b".",
            b"\0:\0",
            b"[]:1",
        ];
        for a in samples {
            for p in samples {
                // None of these names a configured host: the `*` host answers, and only a
                // path under its `/` prefix has a route.
                match t.lookup(a, None, p) {
                    RouteDecision::Matched { host, .. } => {
                        assert!(host.index == 3 && p.starts_with(b"/"))
                    }
                    RouteDecision::NoRoute { host } => {
                        assert!(host.index == 3 && !p.starts_with(b"/"))
                    }
                    d => panic!("{a:?} {p:?}: {d:?}"),
                }
                // An SNI that also falls to `*` selects the same host: no mismatch.
                let d = t.lookup(a, Some("\u{fffd}"), p);
                assert!(
                    matches!(
                        d,
                        RouteDecision::NoRoute { .. } | RouteDecision::Matched { .. }
                    ),
                    "{d:?}"
                );
            }
        }
    }
}
