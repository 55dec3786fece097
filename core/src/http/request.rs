//! An owned, validated request head.

use std::fmt;
use std::ops::Range;

/// The HTTP version of a request. Only 1.0 and 1.1 are accepted; anything else
/// well-formed gets 505.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Version {
    /// HTTP/1.0: closes after each response unless the client asks for
    /// keep-alive.
    Http10,
    /// HTTP/1.1: persistent by default.
    Http11,
}

impl Version {
    /// The version as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        }
    }
}

/// How the request body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RequestBody {
    /// No body (neither Content-Length nor Transfer-Encoding).
    None,
    /// Exactly this many bytes (Content-Length).
    Length(u64),
    /// `Transfer-Encoding: chunked`; the length is known only at the end.
    Chunked,
}

/// Bytes per header field in [`Request::bytes`] after the head: the start
/// and end of its name and of its value, each a little-endian `u32`.
pub(crate) const FIELD_RECORD: usize = 16;

/// A request head that passed every framing rule: one copy of the head bytes
/// plus the positions of its parts. Header fields are in arrival order; names
/// compare case-insensitively.
#[derive(Clone, PartialEq, Eq)]
pub struct Request {
    /// The head, then one [`FIELD_RECORD`] per header field: one allocation
    /// per request.
    pub(crate) bytes: Vec<u8>,
    /// Where the head ends in `bytes` (and the field records start).
    pub(crate) head_len: u32,
    pub(crate) method: (u32, u32),
    pub(crate) target: (u32, u32),
    pub(crate) version: Version,
    pub(crate) body: RequestBody,
    pub(crate) keep_alive: bool,
    pub(crate) expect_continue: bool,
}

fn range((start, end): (u32, u32)) -> Range<usize> {
    start as usize..end as usize
}

/// The name and value spans of one field record.
fn field_spans(record: &[u8]) -> ((u32, u32), (u32, u32)) {
    let word = |at: usize| {
        let mut le = [0; 4];
        le.copy_from_slice(&record[at..at + 4]);
        u32::from_le_bytes(le)
    };
    ((word(0), word(4)), (word(8), word(12)))
}

impl Request {
    fn text(&self, span: (u32, u32)) -> &str {
        // httparse checked method and field names (ASCII tokens) and the
        // target (valid UTF-8) when the head was parsed.
        std::str::from_utf8(&self.bytes[range(span)]).unwrap_or_default()
    }

    /// Whether the method is `HEAD` (the connection's hot path asks; no
    /// UTF-8 check needed for that).
    pub(crate) fn is_head(&self) -> bool {
        self.bytes[range(self.method)] == *b"HEAD"
    }

    /// The method, e.g. `GET` (case-sensitive, as sent).
    pub fn method(&self) -> &str {
        self.text(self.method)
    }

    /// The request target exactly as sent (origin-, absolute- or
    /// asterisk-form): visible ASCII, or raw UTF-8 in the path and query.
    pub fn target(&self) -> &str {
        self.text(self.target)
    }

    /// The path of the target without the query: `/a/b` for `/a/b?c`, and
    /// for absolute-form `http://h/a?b` also `/a` (`/` when it has none).
    /// The asterisk-form target is `*`. Not percent-decoded or normalised.
    pub fn path(&self) -> &str {
        let target = self.target();
        let path = match target.find("://") {
            Some(i) if !target.starts_with('/') => {
                let rest = &target[i + 3..];
                match rest.find(['/', '?']) {
                    Some(j) if rest.as_bytes()[j] == b'/' => &rest[j..],
                    _ => "/",
                }
            }
            _ => target,
        };
        match path.find('?') {
            Some(q) => &path[..q],
            None => path,
        }
    }

    /// The query string after the first `?`, if there is one.
    pub fn query(&self) -> Option<&str> {
        let target = self.target();
        target.find('?').map(|q| &target[q + 1..])
    }

    /// The request's HTTP version.
    pub fn version(&self) -> Version {
        self.version
    }

    /// Every header field as (name, value) in arrival order. Values have no
    /// leading or trailing whitespace and may hold obs-text bytes.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> + '_ {
        self.raw_fields()
            .map(|(name, value)| (std::str::from_utf8(name).unwrap_or_default(), value))
    }

    /// The fields as bytes: lookups by name need no UTF-8 check.
    fn raw_fields(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        let records = self.bytes.get(self.head_len as usize..).unwrap_or_default();
        records.chunks_exact(FIELD_RECORD).map(|record| {
            let (name, value) = field_spans(record);
            (&self.bytes[range(name)], &self.bytes[range(value)])
        })
    }

    /// The first value of the named field (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.raw_fields()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v)
    }

    /// Every value of the named field (case-insensitive), in order.
    pub fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.raw_fields()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v)
    }

    /// The Host field as text (exactly one on HTTP/1.1; checked to hold only
    /// characters allowed in an authority).
    pub fn host(&self) -> Option<&str> {
        self.header("host")
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    /// How the body is framed.
    pub fn body(&self) -> RequestBody {
        self.body
    }

    /// Whether the client sent `Expect: 100-continue`. The connection sends
    /// `100 Continue` when the body is first read, unless a final response was
    /// sent before.
    pub fn expects_continue(&self) -> bool {
        self.expect_continue
    }

    /// Whether the client asked for the connection to stay open after this
    /// request (HTTP/1.1 without `Connection: close`, or HTTP/1.0 with
    /// `Connection: keep-alive`).
    pub fn wants_keep_alive(&self) -> bool {
        self.keep_alive
    }

    /// The raw head bytes, request line to the final empty line included.
    pub fn raw_head(&self) -> &[u8] {
        &self.bytes[..self.head_len as usize]
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The parts rather than the packed bytes, and the field names
        // without their values: those carry cookies and credentials, and a
        // request may end up in a log.
        struct Names<'a>(&'a Request);
        impl fmt::Debug for Names<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_list()
                    .entries(self.0.headers().map(|(name, _)| name))
                    .finish()
            }
        }
        f.debug_struct("Request")
            .field("method", &self.method())
            .field("target", &self.target())
            .field("version", &self.version)
            .field("header_names", &Names(self))
            .field("body", &self.body)
            .field("keep_alive", &self.keep_alive)
            .field("expect_continue", &self.expect_continue)
            .finish()
    }
}
