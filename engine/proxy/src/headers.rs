//! Header transformations at the edge: the request as the origin sees it, and what passes back.
//!
//! What it does: builds the origin-bound request field list from a validated client request:
//! pseudo-headers first (`:scheme` set for the origin's transport, `:authority` rewritten when the
//! route says so), `host` dropped (`:authority` carries it), `grpc-timeout` replaced by the
//! remaining budget, `x-forwarded-for` / `forwarded` extended with the client's address when the
//! route asks, every other field (including `te: trailers`, custom and `-bin` metadata) passed as
//! is, sensitive fields kept never-indexed. Responses and trailers pass through untouched: the
//! message layer (`ringedge_codec::message`) has already refused connection-specific fields.
//!
//! What it must not do: copy field values (it lends `&[u8]` views to the HPACK encoder), or
//! decide policy (the route is decided before this is called).
//!
//! Invariants: the output lists pseudo-headers before regular fields; each pseudo-header once.

use std::fmt::Write as _;
use std::net::IpAddr;

use ringedge_codec::hpack::{FieldRef, HeaderField};

pub use crate::config::ForwardedMode;

/// What the origin-bound request needs beyond the client's fields.
#[derive(Clone, Copy, Debug)]
pub struct UpstreamRequest<'a> {
    /// `:scheme` for the origin's transport (`https` or `http`).
    pub scheme: &'a [u8],
    /// `:authority` to send instead of the client's, if the route rewrites it.
    pub authority_rewrite: Option<&'a [u8]>,
    /// `grpc-timeout` value with the remaining budget, if the call has a deadline.
    pub grpc_timeout: Option<&'a [u8]>,
    /// How to pass the client's address.
    pub forwarded: ForwardedMode,
    /// The client's address.
    pub client_ip: IpAddr,
}

/// Scratch space that owns the few values the edge makes up (forwarding headers), so the field
/// list can lend them as `&[u8]`. Reused across requests on a connection.
#[derive(Debug, Default)]
pub struct Scratch {
    forwarded_value: String,
}

/// Fields the client sent that the edge replaces or drops on the way to the origin.
fn replaced_by_edge(name: &[u8], cfg: &UpstreamRequest<'_>) -> bool {
    match name {
        b"host" | b"grpc-timeout" => true,
        b":scheme" => true,
        b":authority" => cfg.authority_rewrite.is_some(),
        b"x-forwarded-for" => cfg.forwarded == ForwardedMode::XForwardedFor,
        b"forwarded" => cfg.forwarded == ForwardedMode::Forwarded,
        _ => false,
    }
}

/// Builds the origin-bound field list into `out` (cleared first).
///
/// `fields` must have passed `ringedge_codec::message::parse_request`.
pub fn upstream_request<'a>(
    fields: &'a [HeaderField],
    cfg: &UpstreamRequest<'a>,
    scratch: &'a mut Scratch,
    out: &mut Vec<FieldRef<'a>>,
) {
    out.clear();
    let field = |name: &'a [u8], value: &'a [u8], sensitive: bool| FieldRef {
        name,
        value,
        sensitive,
    };
    // Build the forwarding value first: it borrows `scratch` for 'a.
    scratch.forwarded_value.clear();
    let forwarded_name: Option<&'static [u8]> = match cfg.forwarded {
        ForwardedMode::None => None,
        ForwardedMode::XForwardedFor => {
            let prior = fields
                .iter()
                .filter(|f| f.name.as_ref() == b"x-forwarded-for");
            for f in prior {
                scratch
                    .forwarded_value
                    .push_str(&String::from_utf8_lossy(&f.value));
                scratch.forwarded_value.push_str(", ");
            }
            let _ = write!(scratch.forwarded_value, "{}", cfg.client_ip);
            Some(b"x-forwarded-for")
        }
        ForwardedMode::Forwarded => {
            let prior = fields.iter().filter(|f| f.name.as_ref() == b"forwarded");
            for f in prior {
                scratch
                    .forwarded_value
                    .push_str(&String::from_utf8_lossy(&f.value));
                scratch.forwarded_value.push_str(", ");
            }
            // RFC 7239 §6: an IPv6 address is quoted and bracketed.
            match cfg.client_ip {
                IpAddr::V4(ip) => {
                    let _ = write!(scratch.forwarded_value, "for={ip}");
                }
                IpAddr::V6(ip) => {
                    let _ = write!(scratch.forwarded_value, "for=\"[{ip}]\"");
                }
            }
            Some(b"forwarded")
        }
    };
    let scratch: &'a Scratch = scratch;

    // Pseudo-headers first (RFC 9113 §8.3), in the client's order, with the edge's changes.
    let mut authority_done = false;
    for f in fields.iter().take_while(|f| f.name.first() == Some(&b':')) {
        match f.name.as_ref() {
            b":scheme" => out.push(field(b":scheme", cfg.scheme, false)),
            b":authority" => {
                authority_done = true;
                let value = cfg.authority_rewrite.unwrap_or(&f.value);
                out.push(field(b":authority", value, false));
            }
            _ => out.push(field(&f.name, &f.value, f.never_index)),
        }
    }
    if !authority_done {
        // No :authority from the client: carry `host` (RFC 9113 §8.3.1) or the rewrite.
        let host = fields
            .iter()
            .find(|f| f.name.as_ref() == b"host")
            .map(|f| f.value.as_ref());
        if let Some(value) = cfg.authority_rewrite.or(host) {
            out.push(field(b":authority", value, false));
        }
    }
    for f in fields.iter().filter(|f| f.name.first() != Some(&b':')) {
        if !replaced_by_edge(&f.name, cfg) {
            out.push(field(&f.name, &f.value, f.never_index));
        }
    }
    if let Some(timeout) = cfg.grpc_timeout {
        out.push(field(b"grpc-timeout", timeout, false));
    }
    if let Some(name) = forwarded_name {
        out.push(field(name, scratch.forwarded_value.as_bytes(), false));
    }
}

/// Lends a decoded field list to the encoder unchanged (responses and trailers).
pub fn pass_through<'a>(fields: &'a [HeaderField], out: &mut Vec<FieldRef<'a>>) {
    out.clear();
    out.extend(fields.iter().map(|f| FieldRef {
        name: &f.name,
        value: &f.value,
        sensitive: f.never_index,
    }));
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn f(name: &'static str, value: &'static str) -> HeaderField {
        HeaderField {
            name: Bytes::from_static(name.as_bytes()),
            value: Bytes::from_static(value.as_bytes()),
            never_index: false,
            checked: false,
        }
    }

    fn render(out: &[FieldRef<'_>]) -> Vec<(String, String)> {
        out.iter()
            .map(|f| {
                (
                    String::from_utf8_lossy(f.name).into_owned(),
                    String::from_utf8_lossy(f.value).into_owned(),
                )
            })
            .collect()
    }

    fn request() -> Vec<HeaderField> {
        vec![
            f(":method", "POST"),
            f(":scheme", "https"),
            f(":path", "/pkg.Svc/M"),
            f(":authority", "api.example.com"),
            f("content-type", "application/grpc"),
            f("te", "trailers"),
            f("grpc-timeout", "5S"),
            f("x-custom-bin", "AAEC"),
            f("x-forwarded-for", "10.0.0.1"),
        ]
    }

    #[test]
    fn request_to_h2c_origin_with_rewrites() {
        let fields = request();
        let cfg = UpstreamRequest {
            scheme: b"http",
            authority_rewrite: Some(b"origin.internal"),
            grpc_timeout: Some(b"4999m"),
            forwarded: ForwardedMode::XForwardedFor,
            client_ip: "192.0.2.7".parse().unwrap(),
        };
        let mut scratch = Scratch::default();
        let mut out = Vec::new();
        upstream_request(&fields, &cfg, &mut scratch, &mut out);
        let got = render(&out);
        let want: Vec<(String, String)> = [
            (":method", "POST"),
            (":scheme", "http"),
            (":path", "/pkg.Svc/M"),
            (":authority", "origin.internal"),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
            ("x-custom-bin", "AAEC"),
            ("grpc-timeout", "4999m"),
            ("x-forwarded-for", "10.0.0.1, 192.0.2.7"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn host_becomes_authority_and_timeout_is_dropped_without_deadline() {
        let fields = vec![
            f(":method", "POST"),
            f(":scheme", "https"),
            f(":path", "/a/b"),
            f("host", "h.example"),
            f("grpc-timeout", "1S"),
        ];
        let cfg = UpstreamRequest {
            scheme: b"https",
            authority_rewrite: None,
            grpc_timeout: None,
            forwarded: ForwardedMode::Forwarded,
            client_ip: "2001:db8::1".parse().unwrap(),
        };
        let mut scratch = Scratch::default();
        let mut out = Vec::new();
        upstream_request(&fields, &cfg, &mut scratch, &mut out);
        let got = render(&out);
        assert_eq!(got[3], (":authority".into(), "h.example".into()));
        assert!(!got.iter().any(|(n, _)| n == "host" || n == "grpc-timeout"));
        assert_eq!(
            got.last().unwrap(),
            &("forwarded".to_string(), "for=\"[2001:db8::1]\"".to_string())
        );
    }

    #[test]
    fn sensitive_fields_stay_never_indexed() {
        let mut fields = request();
        fields.push(HeaderField {
            name: Bytes::from_static(b"authorization"),
            value: Bytes::from_static(b"Bearer x"),
            never_index: true,
            checked: false,
        });
        let cfg = UpstreamRequest {
            scheme: b"https",
            authority_rewrite: None,
            grpc_timeout: None,
            forwarded: ForwardedMode::None,
            client_ip: "127.0.0.1".parse().unwrap(),
        };
        let mut scratch = Scratch::default();
        let mut out = Vec::new();
        upstream_request(&fields, &cfg, &mut scratch, &mut out);
        let auth = out.iter().find(|f| f.name == b"authorization").unwrap();
        assert!(auth.sensitive);
        // the client's x-forwarded-for passes untouched when the route adds nothing
        assert!(out
            .iter()
            .any(|f| f.name == b"x-forwarded-for" && f.value == b"10.0.0.1"));
    }
}
