//! HTTP/2 message validation (RFC 9113 §8.1–§8.3): turns a decoded header list into a request
//! head, a response head or trailers, or says why the message is malformed.
//!
//! What it does: checks field names and values (§8.2.1), refuses connection-specific fields
//! (§8.2.2), enforces the pseudo-header rules (§8.3: only defined ones, each at most once, before
//! every regular field, the mandatory ones present), and pulls out the values a gRPC edge looks at
//! (`:path`, `:authority`, `content-type`, `grpc-timeout`, `te`, `content-length`) as `Bytes`
//! views, so the caller never searches the list twice.
//!
//! What it must not do: decide policy (routing, gRPC on/off), or copy field values.
//!
//! Invariants: every failure is a *stream* error (`RST_STREAM(PROTOCOL_ERROR)`, or a 4xx/gRPC
//! status chosen by the caller): a malformed message is one request's problem. Connection errors
//! come earlier, from HPACK. Functions never panic on any input.

use std::fmt;

use bytes::Bytes;

use crate::hpack::HeaderField;

/// Why a header list is a malformed HTTP/2 message (RFC 9113 §8.1.1). Each is a stream error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MessageError {
    /// A field name with an uppercase letter, a control or non-ASCII byte, or empty (§8.2.1).
    InvalidFieldName,
    /// A field value with NUL, CR or LF, or leading/trailing whitespace (§8.2.1).
    InvalidFieldValue {
        /// The field's name.
        name: Bytes,
    },
    /// A connection-specific field such as `connection` or `transfer-encoding` (§8.2.2).
    ConnectionSpecificField {
        /// The field's name.
        name: Bytes,
    },
    /// `te` with a value other than `trailers` (§8.2.2).
    InvalidTe,
    /// A pseudo-header not defined for this kind of message, e.g. `:status` in a request (§8.3).
    UnknownPseudoHeader {
        /// The pseudo-header's name.
        name: Bytes,
    },
    /// The same pseudo-header twice (§8.3.1, §8.3.2).
    DuplicatePseudoHeader {
        /// The pseudo-header's name.
        name: Bytes,
    },
    /// A pseudo-header after a regular field (§8.3).
    PseudoHeaderAfterRegular,
    /// A pseudo-header in trailers (§8.1).
    PseudoHeaderInTrailers,
    /// A mandatory pseudo-header is missing or empty (§8.3.1: `:method`, `:scheme`, `:path`;
    /// §8.3.2: `:status`).
    MissingPseudoHeader {
        /// The missing pseudo-header's name.
        name: &'static str,
    },
    /// `:status` is not three digits, or is 101 (§8.3.2, §8.6).
    InvalidStatus,
    /// `content-length` is not a decimal number, or repeats with different values (§8.1.1).
    InvalidContentLength,
    /// `:authority` and `host` disagree (§8.3.1).
    AuthorityHostMismatch,
}

impl fmt::Display for MessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MessageError::InvalidFieldName => f.write_str("malformed message: invalid field name"),
            MessageError::InvalidFieldValue { name } => {
                write!(
                    f,
                    "malformed message: invalid value for field {}",
                    Lossy(name)
                )
            }
            MessageError::ConnectionSpecificField { name } => write!(
                f,
                "malformed message: connection-specific field {} is not allowed in HTTP/2",
                Lossy(name)
            ),
            MessageError::InvalidTe => {
                f.write_str("malformed message: te may only be \"trailers\" in HTTP/2")
            }
            MessageError::UnknownPseudoHeader { name } => {
                write!(
                    f,
                    "malformed message: unexpected pseudo-header {}",
                    Lossy(name)
                )
            }
            MessageError::DuplicatePseudoHeader { name } => {
                write!(
                    f,
                    "malformed message: duplicate pseudo-header {}",
                    Lossy(name)
                )
            }
            MessageError::PseudoHeaderAfterRegular => {
                f.write_str("malformed message: pseudo-header after a regular field")
            }
            MessageError::PseudoHeaderInTrailers => {
                f.write_str("malformed message: pseudo-header in trailers")
            }
            MessageError::MissingPseudoHeader { name } => {
                write!(f, "malformed message: missing or empty {name}")
            }
            MessageError::InvalidStatus => f.write_str("malformed message: invalid :status"),
            MessageError::InvalidContentLength => {
                f.write_str("malformed message: invalid content-length")
            }
            MessageError::AuthorityHostMismatch => {
                f.write_str("malformed message: :authority and host differ")
            }
        }
    }
}

impl std::error::Error for MessageError {}

struct Lossy<'a>(&'a [u8]);

impl fmt::Display for Lossy<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(self.0))
    }
}

/// The parts of a request an edge looks at, borrowed from the decoded field list (no
/// reference count is taken: the forwarder keeps the list itself).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestHead<'a> {
    /// `:method`.
    pub method: &'a [u8],
    /// `:scheme`.
    pub scheme: &'a [u8],
    /// `:authority`, or `host` when `:authority` is absent.
    pub authority: Option<&'a [u8]>,
    /// `:path`.
    pub path: &'a [u8],
    /// `content-type`, when present (the first one).
    pub content_type: Option<&'a [u8]>,
    /// `grpc-timeout`, when present (the first one).
    pub grpc_timeout: Option<&'a [u8]>,
    /// Whether `te: trailers` was sent.
    pub te_trailers: bool,
    /// `content-length`, when present.
    pub content_length: Option<u64>,
}

/// The parts of a response an edge looks at, borrowed from the decoded field list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResponseHead<'a> {
    /// `:status`.
    pub status: u16,
    /// `content-type`, when present.
    pub content_type: Option<&'a [u8]>,
    /// `grpc-status`, when present (a Trailers-Only response carries it here).
    pub grpc_status: Option<&'a [u8]>,
    /// `content-length`, when present.
    pub content_length: Option<u64>,
}

impl ResponseHead<'_> {
    /// A 1xx response: a final response follows (§8.1).
    pub fn is_informational(&self) -> bool {
        (100..200).contains(&self.status)
    }
}

/// The connection-specific fields of RFC 9113 §8.2.2 (`te` is handled apart).
pub fn is_connection_specific(name: &[u8]) -> bool {
    matches!(
        name,
        b"connection" | b"proxy-connection" | b"keep-alive" | b"transfer-encoding" | b"upgrade"
    )
}

/// §8.2.1: a name is valid when it is non-empty and has no byte in 0x00–0x20, 0x41–0x5A
/// (uppercase) or 0x7F–0xFF. A leading `:` is accepted here; pseudo-headers are checked apart.
fn valid_name(name: &[u8]) -> bool {
    let body = name.strip_prefix(b":").unwrap_or(name);
    // No early exit: names are short and every byte is checked anyway when the name is valid,
    // so a branch-free table fold is cheaper (it is on every field of every request).
    !body.is_empty()
        && body
            .iter()
            .fold(true, |ok, &c| ok & NAME_BYTE[usize::from(c)])
}

/// The bytes §8.2.1 allows in a field name after an optional leading `:`.
static NAME_BYTE: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0x21;
    while c < 0x7f {
        t[c] = !(c >= b'A' as usize && c <= b'Z' as usize) && c != b':' as usize;
        c += 1;
    }
    t
};

/// §8.2.1: a value must not contain NUL, CR or LF, nor start or end with SP or HTAB.
fn valid_value(value: &[u8]) -> bool {
    let ws = |c: u8| c == b' ' || c == b'\t';
    if let (Some(&first), Some(&last)) = (value.first(), value.last()) {
        if ws(first) || ws(last) {
            return false;
        }
    }
    !has_nul_cr_lf(value)
}

/// Whether `v` holds NUL, CR or LF: eight bytes at a time (a byte of `x` is zero exactly when
/// `(x - 0x01..) & !x & 0x80..` has its high bit set), the tail byte by byte. Values (paths,
/// authorities, user agents, metadata) are the long strings of every request.
#[inline]
fn has_nul_cr_lf(v: &[u8]) -> bool {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let zero_byte = |x: u64| x.wrapping_sub(LO) & !x & HI;
    let mut chunks = v.chunks_exact(8);
    let mut found = 0;
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        let x = u64::from_le_bytes(w);
        found |= zero_byte(x)
            | zero_byte(x ^ (LO * u64::from(b'\r')))
            | zero_byte(x ^ (LO * u64::from(b'\n')));
    }
    found != 0
        || chunks
            .remainder()
            .iter()
            .any(|&c| c == 0 || c == b'\r' || c == b'\n')
}

fn parse_content_length(value: &[u8], seen: &mut Option<u64>) -> Result<(), MessageError> {
    // RFC 9110 §8.6: a list of identical values is tolerated; anything else is malformed.
    for part in value.split(|&c| c == b',') {
        let part = trim_ows(part);
        if part.is_empty() || part.len() > 19 || !part.iter().all(u8::is_ascii_digit) {
            return Err(MessageError::InvalidContentLength);
        }
        let n = part
            .iter()
            .fold(0u64, |acc, &d| acc * 10 + u64::from(d - b'0'));
        match seen {
            Some(prev) if *prev != n => return Err(MessageError::InvalidContentLength),
            _ => *seen = Some(n),
        }
    }
    Ok(())
}

fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// Whether a field passes the per-field rules of §8.2 whatever its position: a valid name
/// (a leading `:` accepted) and value (§8.2.1), not a connection-specific field (§8.2.2), and
/// `te` only as `trailers`. [`parse_request`], [`parse_response`] and [`check_trailers`] skip
/// these checks for a field whose [`HeaderField::checked`] is set; the HPACK decoder sets it
/// from this function, called once per dynamic-table entry.
pub fn field_ok(name: &[u8], value: &[u8]) -> bool {
    valid_name(name)
        && valid_value(value)
        && !is_connection_specific(name)
        && (name != b"te" || value.eq_ignore_ascii_case(b"trailers"))
}

/// Checks one regular field (§8.2).
fn check_regular(field: &HeaderField) -> Result<(), MessageError> {
    if field.checked {
        debug_assert!(field_ok(&field.name, &field.value), "stale checked flag");
        return Ok(());
    }
    if !valid_name(&field.name) {
        return Err(MessageError::InvalidFieldName);
    }
    if !valid_value(&field.value) {
        return Err(MessageError::InvalidFieldValue {
            name: field.name.clone(),
        });
    }
    if is_connection_specific(&field.name) {
        return Err(MessageError::ConnectionSpecificField {
            name: field.name.clone(),
        });
    }
    if field.name.as_ref() == b"te" && !field.value.eq_ignore_ascii_case(b"trailers") {
        return Err(MessageError::InvalidTe);
    }
    Ok(())
}

fn set_once<'a>(slot: &mut Option<&'a [u8]>, field: &'a HeaderField) -> Result<(), MessageError> {
    if slot.is_some() {
        return Err(MessageError::DuplicatePseudoHeader {
            name: field.name.clone(),
        });
    }
    *slot = Some(&field.value);
    Ok(())
}

/// Validates a request header list (RFC 9113 §8.2, §8.3.1) and extracts its [`RequestHead`].
///
/// CONNECT (§8.5) is refused as malformed unless it has `:authority` and neither `:scheme` nor
/// `:path`; an edge for gRPC forwards no CONNECT, but the shape is still validated here.
pub fn parse_request(fields: &[HeaderField]) -> Result<RequestHead<'_>, MessageError> {
    let (mut method, mut scheme, mut authority, mut path) = (None, None, None, None);
    let mut head = RequestHead::default();
    let mut host: Option<&[u8]> = None;
    let mut regular_seen = false;
    for field in fields {
        if field.name.first() == Some(&b':') {
            if regular_seen {
                return Err(MessageError::PseudoHeaderAfterRegular);
            }
            if !field.checked && !valid_value(&field.value) {
                return Err(MessageError::InvalidFieldValue {
                    name: field.name.clone(),
                });
            }
            match field.name.as_ref() {
                b":method" => set_once(&mut method, field)?,
                b":scheme" => set_once(&mut scheme, field)?,
                b":authority" => set_once(&mut authority, field)?,
                b":path" => set_once(&mut path, field)?,
                _ => {
                    return Err(MessageError::UnknownPseudoHeader {
                        name: field.name.clone(),
                    })
                }
            }
            continue;
        }
        regular_seen = true;
        check_regular(field)?;
        match field.name.as_ref() {
            b"content-type" if head.content_type.is_none() => {
                head.content_type = Some(&field.value)
            }
            b"grpc-timeout" if head.grpc_timeout.is_none() => {
                head.grpc_timeout = Some(&field.value)
            }
            b"te" => head.te_trailers = true,
            b"content-length" => parse_content_length(&field.value, &mut head.content_length)?,
            b"host" if host.is_none() => host = Some(&field.value),
            _ => {}
        }
    }
    let method = method
        .filter(|m| !m.is_empty())
        .ok_or(MessageError::MissingPseudoHeader { name: ":method" })?;
    if method == b"CONNECT" {
        if scheme.is_some() || path.is_some() {
            return Err(MessageError::UnknownPseudoHeader {
                name: Bytes::from_static(if scheme.is_some() {
                    b":scheme"
                } else {
                    b":path"
                }),
            });
        }
        head.authority =
            Some(authority.ok_or(MessageError::MissingPseudoHeader { name: ":authority" })?);
        head.method = method;
        return Ok(head);
    }
    head.scheme = scheme
        .filter(|s| !s.is_empty())
        .ok_or(MessageError::MissingPseudoHeader { name: ":scheme" })?;
    head.path = path
        .filter(|p| !p.is_empty())
        .ok_or(MessageError::MissingPseudoHeader { name: ":path" })?;
    head.method = method;
    // §8.3.1: a request with both `:authority` and `host` must not let them differ.
    head.authority = match (authority, host) {
        (Some(a), Some(h)) if !a.eq_ignore_ascii_case(h) => {
            return Err(MessageError::AuthorityHostMismatch)
        }
        (Some(a), _) => Some(a),
        (None, h) => h,
    };
    Ok(head)
}

/// Validates a response header list (RFC 9113 §8.2, §8.3.2) and extracts its [`ResponseHead`].
pub fn parse_response(fields: &[HeaderField]) -> Result<ResponseHead<'_>, MessageError> {
    let mut status: Option<&[u8]> = None;
    let mut head = ResponseHead::default();
    let mut regular_seen = false;
    for field in fields {
        if field.name.first() == Some(&b':') {
            if regular_seen {
                return Err(MessageError::PseudoHeaderAfterRegular);
            }
            if field.name.as_ref() != b":status" {
                return Err(MessageError::UnknownPseudoHeader {
                    name: field.name.clone(),
                });
            }
            set_once(&mut status, field)?;
            continue;
        }
        regular_seen = true;
        check_regular(field)?;
        match field.name.as_ref() {
            b"content-type" if head.content_type.is_none() => {
                head.content_type = Some(&field.value)
            }
            b"grpc-status" if head.grpc_status.is_none() => head.grpc_status = Some(&field.value),
            b"content-length" => parse_content_length(&field.value, &mut head.content_length)?,
            _ => {}
        }
    }
    let status = status.ok_or(MessageError::MissingPseudoHeader { name: ":status" })?;
    match status {
        [a @ b'1'..=b'9', b @ b'0'..=b'9', c @ b'0'..=b'9'] => {
            head.status =
                u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0');
        }
        _ => return Err(MessageError::InvalidStatus),
    }
    if head.status == 101 {
        // §8.6: HTTP/2 removes support for 101 (Switching Protocols).
        return Err(MessageError::InvalidStatus);
    }
    Ok(head)
}

/// Validates a trailer list (RFC 9113 §8.1: no pseudo-headers; §8.2 field rules).
pub fn check_trailers(fields: &[HeaderField]) -> Result<(), MessageError> {
    for field in fields {
        if field.name.first() == Some(&b':') {
            return Err(MessageError::PseudoHeaderInTrailers);
        }
        check_regular(field)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table-driven checks accept exactly what §8.2.1's rules (written out plainly here)
    /// accept, for every byte alone, after a `:` and inside longer names and values.
    #[test]
    fn name_and_value_checks_match_the_rfc_rules() {
        let name_rule = |n: &[u8]| {
            let body = n.strip_prefix(b":").unwrap_or(n);
            !body.is_empty()
                && body
                    .iter()
                    .all(|&c| c > 0x20 && c < 0x7f && !c.is_ascii_uppercase() && c != b':')
        };
        let value_rule = |v: &[u8]| {
            let ws = |c: u8| c == b' ' || c == b'\t';
            let bad_ends = v.first().is_some_and(|&c| ws(c)) || v.last().is_some_and(|&c| ws(c));
            let bad_byte = v.iter().any(|&c| c == 0 || c == b'\r' || c == b'\n');
            !bad_ends && !bad_byte
        };
        for b in 0..=255u8 {
            for n in [
                vec![b],
                vec![b':', b],
                b"grpc-status".iter().copied().chain([b]).collect(),
                [b].iter()
                    .copied()
                    .chain(*b"x-custom-metadata-bin")
                    .collect(),
            ] {
                assert_eq!(valid_name(&n), name_rule(&n), "name {n:?}");
            }
            for v in [
                vec![b],
                b"application/grpc"
                    .iter()
                    .copied()
                    .chain([b, b'x'])
                    .collect(),
                vec![b'x'; 40]
                    .into_iter()
                    .chain([b])
                    .chain([b'y'; 23])
                    .collect::<Vec<u8>>(),
            ] {
                assert_eq!(valid_value(&v), value_rule(&v), "value {v:?}");
            }
        }
        for len in 1..24 {
            for pos in 0..len {
                for b in [0u8, b'\r', b'\n', b'\t', 0x80, 0xff, 0x0b, 0x8a] {
                    let mut v = vec![b'v'; len];
                    v[pos] = b;
                    assert_eq!(valid_value(&v), value_rule(&v), "value {v:?}");
                }
            }
        }
        assert!(!valid_name(b""));
        assert!(!valid_name(b":"));
        assert!(valid_value(b""));
    }

    fn f(name: &'static str, value: &'static str) -> HeaderField {
        HeaderField {
            name: Bytes::from_static(name.as_bytes()),
            value: Bytes::from_static(value.as_bytes()),
            never_index: false,
            checked: false,
        }
    }

    fn grpc_request() -> Vec<HeaderField> {
        vec![
            f(":method", "POST"),
            f(":scheme", "https"),
            f(":path", "/helloworld.Greeter/SayHello"),
            f(":authority", "api.example.com:443"),
            f("content-type", "application/grpc"),
            f("te", "trailers"),
            f("grpc-timeout", "1S"),
        ]
    }

    /// Requests decoded by HPACK: fields from table entries skip the per-field checks only when
    /// they passed them on insertion, so a connection-specific field the peer indexed is
    /// refused on first use and on every later reference, and a clean request parses both times.
    #[test]
    fn table_fields_are_checked_once_and_still_refused_when_bad() {
        use crate::hpack::Decoder;
        let mut d = Decoder::new(4096);
        let mut decode = |block: &[u8]| {
            let mut out = Vec::new();
            d.decode(&Bytes::copy_from_slice(block), &mut |f: HeaderField| {
                out.push(f)
            })
            .expect("valid block");
            out
        };
        // :method POST, :scheme https, :path / (static), then with incremental indexing
        // content-type: application/grpc (static name 31) and connection: close.
        let first = decode(b"\x83\x87\x84\x5f\x10application/grpc\x40\x0aconnection\x05close");
        let again = decode(b"\x83\x87\x84\xbf\xbe");
        for fields in [&first, &again] {
            assert!(fields[3].checked && !fields[4].checked);
            assert_eq!(
                parse_request(fields).unwrap_err(),
                MessageError::ConnectionSpecificField {
                    name: Bytes::from_static(b"connection")
                }
            );
            let clean = &fields[..4];
            assert!(clean.iter().all(|f| f.checked));
            assert_eq!(parse_request(clean).expect("clean").path, b"/");
        }
    }

    #[test]
    fn grpc_request_is_parsed_into_views() {
        let fields = grpc_request();
        let head = parse_request(&fields).unwrap();
        assert_eq!(head.method, b"POST");
        assert_eq!(head.scheme, b"https");
        assert_eq!(head.path, b"/helloworld.Greeter/SayHello");
        assert_eq!(head.authority, Some(&b"api.example.com:443"[..]));
        assert_eq!(head.content_type, Some(&b"application/grpc"[..]));
        assert_eq!(head.grpc_timeout, Some(&b"1S"[..]));
        assert!(head.te_trailers);
        assert_eq!(head.content_length, None);
    }

    #[test]
    fn host_stands_in_for_missing_authority_and_must_agree() {
        let mut fields = grpc_request();
        fields.retain(|x| x.name != ":authority");
        fields.push(f("host", "h.example"));
        assert_eq!(
            parse_request(&fields).unwrap().authority,
            Some(&b"h.example"[..])
        );
        let mut fields = grpc_request();
        fields.push(f("host", "other.example"));
        assert_eq!(
            parse_request(&fields),
            Err(MessageError::AuthorityHostMismatch)
        );
    }

    /// RFC 9113 §8.2 and §8.3.1 MUSTs as a table: each mutation makes the request malformed.
    #[test]
    fn malformed_requests_table() {
        type Mutate = fn(&mut Vec<HeaderField>);
        let cases: Vec<(&str, Mutate, MessageError)> = vec![
            (
                "uppercase name",
                |v| v.push(f("X-Upper", "1")),
                MessageError::InvalidFieldName,
            ),
            (
                "space in name",
                |v| v.push(f("x y", "1")),
                MessageError::InvalidFieldName,
            ),
            (
                "empty name",
                |v| v.push(f("", "1")),
                MessageError::InvalidFieldName,
            ),
            (
                "colon inside name",
                |v| v.push(f("x:y", "1")),
                MessageError::InvalidFieldName,
            ),
            (
                "CR in value",
                |v| v.push(f("x", "a\rb")),
                MessageError::InvalidFieldValue {
                    name: Bytes::from_static(b"x"),
                },
            ),
            (
                "NUL in value",
                |v| v.push(f("x", "a\0b")),
                MessageError::InvalidFieldValue {
                    name: Bytes::from_static(b"x"),
                },
            ),
            (
                "leading space in value",
                |v| v.push(f("x", " a")),
                MessageError::InvalidFieldValue {
                    name: Bytes::from_static(b"x"),
                },
            ),
            (
                "connection header",
                |v| v.push(f("connection", "keep-alive")),
                MessageError::ConnectionSpecificField {
                    name: Bytes::from_static(b"connection"),
                },
            ),
            (
                "transfer-encoding",
                |v| v.push(f("transfer-encoding", "chunked")),
                MessageError::ConnectionSpecificField {
                    name: Bytes::from_static(b"transfer-encoding"),
                },
            ),
            (
                "upgrade",
                |v| v.push(f("upgrade", "h2c")),
                MessageError::ConnectionSpecificField {
                    name: Bytes::from_static(b"upgrade"),
                },
            ),
            (
                "te gzip",
                |v| v.push(f("te", "gzip")),
                MessageError::InvalidTe,
            ),
            (
                "status in request",
                |v| v.insert(0, f(":status", "200")),
                MessageError::UnknownPseudoHeader {
                    name: Bytes::from_static(b":status"),
                },
            ),
            (
                "made-up pseudo",
                |v| v.insert(0, f(":foo", "1")),
                MessageError::UnknownPseudoHeader {
                    name: Bytes::from_static(b":foo"),
                },
            ),
            (
                "duplicate path",
                |v| v.insert(0, f(":path", "/a")),
                MessageError::DuplicatePseudoHeader {
                    name: Bytes::from_static(b":path"),
                },
            ),
            (
                "pseudo after regular",
                |v| v.push(f(":authority", "x")),
                MessageError::PseudoHeaderAfterRegular,
            ),
            (
                "missing method",
                |v| v.retain(|x| x.name != ":method"),
                MessageError::MissingPseudoHeader { name: ":method" },
            ),
            (
                "missing scheme",
                |v| v.retain(|x| x.name != ":scheme"),
                MessageError::MissingPseudoHeader { name: ":scheme" },
            ),
            (
                "missing path",
                |v| v.retain(|x| x.name != ":path"),
                MessageError::MissingPseudoHeader { name: ":path" },
            ),
            (
                "empty path",
                |v| {
                    for x in v.iter_mut() {
                        if x.name == ":path" {
                            x.value = Bytes::new();
                        }
                    }
                },
                MessageError::MissingPseudoHeader { name: ":path" },
            ),
            (
                "bad content-length",
                |v| v.push(f("content-length", "12a")),
                MessageError::InvalidContentLength,
            ),
            (
                "conflicting content-length",
                |v| v.push(f("content-length", "1, 2")),
                MessageError::InvalidContentLength,
            ),
        ];
        for (what, mutate, want) in cases {
            let mut fields = grpc_request();
            mutate(&mut fields);
            assert_eq!(parse_request(&fields), Err(want), "{what}");
        }
    }

    #[test]
    fn repeated_identical_content_length_is_accepted() {
        let mut fields = grpc_request();
        fields.push(f("content-length", "5, 5"));
        fields.push(f("content-length", "5"));
        assert_eq!(parse_request(&fields).unwrap().content_length, Some(5));
    }

    #[test]
    fn connect_shape() {
        let ok = vec![f(":method", "CONNECT"), f(":authority", "h:443")];
        assert_eq!(parse_request(&ok).unwrap().authority, Some(&b"h:443"[..]));
        let bad = vec![
            f(":method", "CONNECT"),
            f(":authority", "h:443"),
            f(":path", "/"),
        ];
        assert!(parse_request(&bad).is_err());
    }

    #[test]
    fn responses() {
        let fields = [
            f(":status", "200"),
            f("content-type", "application/grpc"),
            f("grpc-status", "7"),
        ];
        let head = parse_response(&fields).unwrap();
        assert_eq!(head.status, 200);
        assert_eq!(head.grpc_status, Some(&b"7"[..]));
        assert!(parse_response(&[f(":status", "103")])
            .unwrap()
            .is_informational());
        for bad in ["20", "2000", "abc", "101", "099"] {
            let fields = [HeaderField {
                name: Bytes::from_static(b":status"),
                value: Bytes::copy_from_slice(bad.as_bytes()),
                never_index: false,
                checked: false,
            }];
            assert_eq!(
                parse_response(&fields),
                Err(MessageError::InvalidStatus),
                "{bad}"
            );
        }
        assert_eq!(
            parse_response(&[f("content-type", "x")]),
            Err(MessageError::MissingPseudoHeader { name: ":status" })
        );
        assert_eq!(
            parse_response(&[f(":status", "200"), f(":path", "/")]),
            Err(MessageError::UnknownPseudoHeader {
                name: Bytes::from_static(b":path")
            })
        );
    }

    #[test]
    fn trailers() {
        assert!(check_trailers(&[f("grpc-status", "0"), f("grpc-message", "")]).is_ok());
        assert_eq!(
            check_trailers(&[f(":status", "200")]),
            Err(MessageError::PseudoHeaderInTrailers)
        );
        assert!(check_trailers(&[f("keep-alive", "1")]).is_err());
    }

    #[test]
    fn never_panics_on_odd_bytes() {
        for a in 0u8..=255 {
            let field = HeaderField {
                name: Bytes::copy_from_slice(&[a, b':', a]),
                value: Bytes::copy_from_slice(&[a]),
                never_index: false,
                checked: false,
            };
            let one = std::slice::from_ref(&field);
            let _ = parse_request(one);
            let _ = parse_response(one);
            let _ = check_trailers(one);
        }
    }
}
