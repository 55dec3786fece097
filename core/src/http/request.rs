//! An owned, validated request head.

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

/// Byte ranges of one header field inside the head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FieldSpan {
    pub(crate) name: (u32, u32),
    pub(crate) value: (u32, u32),
}

/// A request head that passed every framing rule: one copy of the head bytes
/// plus the positions of its parts. Header fields are in arrival order; names
/// compare case-insensitively.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub(crate) head: Vec<u8>,
    pub(crate) method: (u32, u32),
    pub(crate) target: (u32, u32),
    pub(crate) version: Version,
    pub(crate) fields: Vec<FieldSpan>,
    pub(crate) body: RequestBody,
    pub(crate) keep_alive: bool,
    pub(crate) expect_continue: bool,
}

fn range((start, end): (u32, u32)) -> Range<usize> {
    start as usize..end as usize
}

impl Request {
    fn text(&self, span: (u32, u32)) -> &str {
        // httparse checked method and field names (ASCII tokens) and the
        // target (valid UTF-8) when the head was parsed.
        std::str::from_utf8(&self.head[range(span)]).unwrap_or_default()
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
        self.fields
            .iter()
            .map(|f| (self.text(f.name), &self.head[range(f.value)]))
    }

    /// The first value of the named field (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// Every value of the named field (case-insensitive), in order.
    pub fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
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
        &self.head
    }
}
