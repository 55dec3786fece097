//! Response heads and their encoding on the wire.

use std::borrow::Cow;
use std::time::{SystemTime, UNIX_EPOCH};

use super::error::ApiError;
use super::head::is_tchar;

/// How the response body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseBody {
    /// No body. `Content-Length: 0` is sent, except for 204 and 304.
    Empty,
    /// Exactly this many bytes, sent as `Content-Length`.
    Length(u64),
    /// A body of unknown length: chunked to an HTTP/1.1 client, delimited by
    /// closing the connection for an HTTP/1.0 one.
    Streamed,
}

/// A response status line and header fields, as the application gives them.
/// The connection adds `Date`, the framing fields (`Content-Length` or
/// `Transfer-Encoding`) and `Connection` itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseHead {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(Cow<'static, str>, Cow<'static, str>)>,
    pub(crate) body: ResponseBody,
    pub(crate) close: bool,
}

impl ResponseHead {
    /// A response with this status (200..=599), no fields and no body.
    pub fn new(status: u16) -> Self {
        ResponseHead {
            status,
            // Room for a typical response's fields in one allocation.
            headers: Vec::with_capacity(8),
            body: ResponseBody::Empty,
            close: false,
        }
    }

    /// Adds a header field (checked when the head is sent).
    #[must_use]
    pub fn header(
        mut self,
        name: impl Into<Cow<'static, str>>,
        value: impl Into<Cow<'static, str>>,
    ) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Declares how the body will be delimited.
    #[must_use]
    pub fn body(mut self, body: ResponseBody) -> Self {
        self.body = body;
        self
    }

    /// Asks the connection to close after this response.
    #[must_use]
    pub fn close(mut self) -> Self {
        self.close = true;
        self
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The header fields the application gave, in order.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.headers.iter().map(|(n, v)| (n.as_ref(), v.as_ref()))
    }

    /// The declared body framing.
    pub fn body_framing(&self) -> ResponseBody {
        self.body
    }

    /// Whether this status forbids a body (RFC 9110 §6.4.1).
    pub(crate) fn forbids_body(&self) -> bool {
        matches!(self.status, 100..=199 | 204 | 304)
    }

    /// Checks what the application supplied.
    pub(crate) fn validate(&self) -> Result<(), ApiError> {
        if !(200..=599).contains(&self.status) {
            return Err(ApiError::InvalidStatus(self.status));
        }
        if self.forbids_body() && self.body != ResponseBody::Empty {
            return Err(ApiError::BodyNotAllowed);
        }
        for (name, value) in &self.headers {
            if name.is_empty() || !name.bytes().all(is_tchar) || !is_field_value(value.as_bytes()) {
                return Err(ApiError::InvalidHeader(name.to_string()));
            }
            if is_reserved_header(name) {
                return Err(ApiError::ReservedHeader(name.to_string()));
            }
        }
        Ok(())
    }
}

/// Whether `name` is a field the connection writes itself (framing,
/// `Connection`, `Date`, ...): [`ResponseHead`]s that set one are refused
/// with [`ApiError::ReservedHeader`], since the application could
/// contradict the framing.
pub fn is_reserved_header(name: &str) -> bool {
    [
        "content-length",
        "transfer-encoding",
        "connection",
        "date",
        "keep-alive",
        "upgrade",
        "trailer",
        "proxy-connection",
    ]
    .iter()
    .any(|r| name.eq_ignore_ascii_case(r))
}

/// VCHAR, obs-text, SP and HTAB; no leading or trailing whitespace. This is
/// what keeps CR and LF (and so header injection) out of every response.
pub(crate) fn is_field_value(value: &[u8]) -> bool {
    value.iter().all(|&b| b == b'\t' || b >= b' ' && b != 0x7f)
        && value.first().is_none_or(|b| !b.is_ascii_whitespace())
        && value.last().is_none_or(|b| !b.is_ascii_whitespace())
}

/// The standard reason phrase, or "" for codes without a common one.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

/// The `Date` value for the current second, formatted once per second.
#[derive(Debug, Default)]
pub(crate) struct DateCache {
    second: u64,
    text: String,
}

impl DateCache {
    pub(crate) fn get(&mut self, wall: SystemTime) -> &str {
        let second = wall
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        if self.text.is_empty() || second != self.second {
            self.second = second;
            self.text =
                httpdate::fmt_http_date(UNIX_EPOCH + std::time::Duration::from_secs(second));
        }
        &self.text
    }
}

/// The framing fields the connection adds to a head.
pub(crate) enum FramingField {
    None,
    ContentLength(u64),
    Chunked,
}

/// Appends the status line and fields of `head` to `out`.
pub(crate) fn encode_head(
    out: &mut Vec<u8>,
    head: &ResponseHead,
    date: &str,
    framing: FramingField,
    connection: Option<&str>,
) {
    // One allocation for the whole head (the output buffer is released
    // while the connection is idle), not a doubling per field. 128: the
    // status line, framing and connection fields with their punctuation.
    let fields: usize = head
        .headers
        .iter()
        .map(|(n, v)| n.len() + v.len() + 4)
        .sum();
    out.reserve(128 + date.len() + fields);
    out.extend_from_slice(b"HTTP/1.1 ");
    put_decimal(out, u64::from(head.status));
    out.push(b' ');
    out.extend_from_slice(reason_phrase(head.status).as_bytes());
    out.extend_from_slice(b"\r\n");
    put_field(out, "Date", date);
    for (name, value) in &head.headers {
        put_field(out, name, value);
    }
    match framing {
        FramingField::None => {}
        FramingField::ContentLength(n) => {
            out.extend_from_slice(b"Content-Length: ");
            put_decimal(out, n);
            out.extend_from_slice(b"\r\n");
        }
        FramingField::Chunked => put_field(out, "Transfer-Encoding", "chunked"),
    }
    if let Some(option) = connection {
        put_field(out, "Connection", option);
    }
    out.extend_from_slice(b"\r\n");
}

fn put_field(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Appends `n` in decimal: what `write!` would do, without the formatting
/// machinery, which costs more than the rest of a small response head.
pub(crate) fn put_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}
