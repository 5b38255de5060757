//! `content-type` classification (gRPC PROTOCOL-HTTP2.md, "Requests": `Content-Type →
//! "content-type" "application/grpc" [("+proto" / "+json" / {custom})]`; gRPC-Web per
//! PROTOCOL-WEB.md).
//!
//! Media types are case-insensitive (RFC 9110 §8.3.1), so `Application/GRPC` is gRPC. Parameters
//! after `;` and optional whitespace around the value are tolerated and ignored. The subtype is
//! returned as it appeared on the wire (compare it case-insensitively).

/// What kind of request a `content-type` value announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentKind<'a> {
    /// `application/grpc` (`subtype: None`) or `application/grpc+<subtype>`.
    Grpc {
        /// The part after `+`, e.g. `proto` or `json`, as sent.
        subtype: Option<&'a str>,
    },
    /// `application/grpc-web[+subtype]` or, with `text: true`, `application/grpc-web-text[+subtype]`
    /// (base64 body).
    GrpcWeb {
        /// `true` for `grpc-web-text` (base64-encoded body).
        text: bool,
        /// The part after `+`, as sent.
        subtype: Option<&'a str>,
    },
    /// Anything else, including `application/grpcfoo`, `application/grpc+` (empty subtype) and
    /// non-UTF-8 values.
    NotGrpc,
}

impl ContentKind<'_> {
    /// `true` for [`ContentKind::Grpc`] (gRPC over HTTP/2 proper).
    pub fn is_grpc(&self) -> bool {
        matches!(self, ContentKind::Grpc { .. })
    }
}

const OWS: &[char] = &[' ', '\t'];

/// Classifies a `content-type` header value. Never fails; unknown or malformed values are
/// [`ContentKind::NotGrpc`].
pub fn classify_content_type(value: &[u8]) -> ContentKind<'_> {
    let Ok(s) = std::str::from_utf8(value) else {
        return ContentKind::NotGrpc;
    };
    let media = s.split(';').next().unwrap_or("").trim_matches(OWS);
    const BASE: &str = "application/grpc";
    let Some(head) = media.get(..BASE.len()) else {
        return ContentKind::NotGrpc;
    };
    if !head.eq_ignore_ascii_case(BASE) {
        return ContentKind::NotGrpc;
    }
    let rest = &media[BASE.len()..];
    // Order matters: "-web-text" before "-web".
    let (web, text, rest) = if let Some(r) = strip_prefix_ci(rest, "-web-text") {
        (true, true, r)
    } else if let Some(r) = strip_prefix_ci(rest, "-web") {
        (true, false, r)
    } else {
        (false, false, rest)
    };
    let subtype = if rest.is_empty() {
        None
    } else if let Some(sub) = rest.strip_prefix('+') {
        if sub.is_empty() || !sub.bytes().all(is_tchar) {
            return ContentKind::NotGrpc;
        }
        Some(sub)
    } else {
        // e.g. "application/grpcfoo", "application/grpc-webx"
        return ContentKind::NotGrpc;
    };
    if web {
        ContentKind::GrpcWeb { text, subtype }
    } else {
        ContentKind::Grpc { subtype }
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) {
        Some(&s[prefix.len()..])
    } else {
        None
    }
}

/// RFC 9110 §5.6.2 token characters.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}
