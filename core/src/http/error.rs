//! Typed errors: what the peer did wrong (a [`ProtocolError`], which maps to a
//! status and always ends the connection) and what the caller did wrong (an
//! [`ApiError`], which changes nothing on the wire).

use std::fmt;

/// The ways a peer can break HTTP/1.1. Each maps to one response status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProtocolErrorKind {
    /// The request line or a header field is not valid HTTP/1.1 syntax
    /// (including obs-fold, whitespace before a colon, bare CR, NUL or CTLs).
    MalformedHead,
    /// A line in the head ends with a bare LF instead of CRLF.
    BareLineFeed,
    /// The request target is not origin-, absolute- or asterisk-form (for
    /// OPTIONS), or names a scheme other than http or https.
    BadTarget,
    /// HTTP/1.1 request without a Host field, with more than one, with an
    /// invalid one, or with one that names another site than an
    /// absolute-form target.
    BadHost,
    /// A field name that spells a framing field once punctuation and case
    /// are ignored (`Content_Length`, `Transfer---Encoding`, `Ho.st`), which
    /// another hop could take for the real one.
    DisguisedFramingField,
    /// Content (a non-zero Content-Length or any Transfer-Encoding) on a
    /// GET, HEAD or TRACE request, which another hop could ignore and read as
    /// the next request.
    ContentNotAllowed,
    /// Content-Length is not a plain decimal number, overflows, or repeats.
    BadContentLength,
    /// Content-Length and Transfer-Encoding in one request.
    ContentLengthWithTransferEncoding,
    /// Transfer-Encoding is malformed, or does not end with `chunked`.
    BadTransferEncoding,
    /// Transfer-Encoding names a coding other than `chunked` (501).
    UnsupportedTransferCoding,
    /// Transfer-Encoding in an HTTP/1.0 request.
    TransferEncodingOnHttp10,
    /// An `Expect` value other than `100-continue` (417).
    UnsupportedExpectation,
    /// A well-formed HTTP version that is not 1.0 or 1.1 (505).
    UnsupportedVersion,
    /// The request line is longer than the target limit (414).
    TargetTooLong,
    /// The head is larger than the header-bytes limit, or has more fields
    /// than the header-count limit (431).
    HeadTooLarge,
    /// The body is larger than the body limit (413).
    BodyTooLarge,
    /// A chunk-size line is malformed: bad hex, overflow, bare LF, a bad or
    /// too long extension, or a missing CRLF after the chunk data.
    BadChunk,
    /// A trailer field is malformed or the trailer section is too large.
    BadTrailer,
    /// The peer took too long to send the head or the body (408).
    Timeout,
    /// The peer closed its side in the middle of a request.
    Truncated,
}

impl ProtocolErrorKind {
    /// The response status this error is answered with.
    pub fn status(self) -> u16 {
        use ProtocolErrorKind::*;
        match self {
            MalformedHead
            | BareLineFeed
            | BadTarget
            | BadHost
            | DisguisedFramingField
            | ContentNotAllowed
            | BadContentLength
            | ContentLengthWithTransferEncoding
            | BadTransferEncoding
            | TransferEncodingOnHttp10
            | BadChunk
            | BadTrailer
            | Truncated => 400,
            Timeout => 408,
            BodyTooLarge => 413,
            TargetTooLong => 414,
            UnsupportedExpectation => 417,
            HeadTooLarge => 431,
            UnsupportedTransferCoding => 501,
            UnsupportedVersion => 505,
        }
    }

    /// A short description, fit for a log line (it never echoes peer bytes).
    pub fn describe(self) -> &'static str {
        use ProtocolErrorKind::*;
        match self {
            MalformedHead => "malformed request head",
            BareLineFeed => "bare LF line ending in request head",
            BadTarget => "bad request target",
            BadHost => "missing, repeated, invalid or mismatched Host field",
            DisguisedFramingField => "field name imitating a framing field",
            ContentNotAllowed => "content on GET, HEAD or TRACE",
            BadContentLength => "invalid, repeated or overflowing Content-Length",
            ContentLengthWithTransferEncoding => "Content-Length together with Transfer-Encoding",
            BadTransferEncoding => "Transfer-Encoding is not exactly a final chunked",
            UnsupportedTransferCoding => "unsupported transfer coding",
            TransferEncodingOnHttp10 => "Transfer-Encoding on HTTP/1.0",
            UnsupportedExpectation => "unsupported Expect value",
            UnsupportedVersion => "unsupported HTTP version",
            TargetTooLong => "request target too long",
            HeadTooLarge => "request head too large",
            BodyTooLarge => "request body too large",
            BadChunk => "malformed chunked framing",
            BadTrailer => "malformed or oversized trailer section",
            Timeout => "timed out reading the request",
            Truncated => "connection closed in the middle of a request",
        }
    }
}

/// The peer broke HTTP/1.1. The connection answers with [`status`](Self::status)
/// (when no response has started yet) and closes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ProtocolError {
    kind: ProtocolErrorKind,
}

impl ProtocolError {
    /// An error of this kind.
    pub fn new(kind: ProtocolErrorKind) -> Self {
        ProtocolError { kind }
    }

    /// What went wrong.
    pub fn kind(&self) -> ProtocolErrorKind {
        self.kind
    }

    /// The response status this error maps to (400, 408, 413, 414, 417, 431,
    /// 501 or 505).
    pub fn status(&self) -> u16 {
        self.kind.status()
    }
}

impl From<ProtocolErrorKind> for ProtocolError {
    fn from(kind: ProtocolErrorKind) -> Self {
        ProtocolError::new(kind)
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.kind.describe(), self.status())
    }
}

impl std::error::Error for ProtocolError {}

/// The caller used the connection API out of order or with bad values. Nothing
/// is sent and the connection's state is unchanged.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ApiError {
    /// There is no request waiting for a response.
    NoRequest,
    /// A response head was already sent for this request.
    ResponseAlreadyStarted,
    /// No response head has been sent yet.
    ResponseNotStarted,
    /// More body bytes than the Content-Length the response declared, or
    /// fewer at [`finish_response`](crate::Connection::finish_response).
    BodyLengthMismatch {
        /// Bytes declared in the response head.
        declared: u64,
        /// Bytes given so far (or the total that was attempted).
        given: u64,
    },
    /// A body was given for a response that cannot have one (1xx, 204, 304).
    BodyNotAllowed,
    /// The status code is outside 200..=599 (interim responses are sent by
    /// the connection itself).
    InvalidStatus(u16),
    /// A header name that is not a token, or a value with CR, LF, NUL or
    /// another control character.
    InvalidHeader(String),
    /// A header the connection manages itself (Content-Length,
    /// Transfer-Encoding, Connection, Date, Keep-Alive, Upgrade, Trailer).
    ReservedHeader(String),
    /// The connection is closing or closed.
    Closed,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::NoRequest => f.write_str("no request is waiting for a response"),
            ApiError::ResponseAlreadyStarted => {
                f.write_str("a response head was already sent for this request")
            }
            ApiError::ResponseNotStarted => f.write_str("no response head has been sent"),
            ApiError::BodyLengthMismatch { declared, given } => write!(
                f,
                "response body length mismatch: declared {declared}, given {given}"
            ),
            ApiError::BodyNotAllowed => f.write_str("this response status cannot have a body"),
            ApiError::InvalidStatus(s) => write!(f, "invalid response status {s}"),
            ApiError::InvalidHeader(name) => write!(f, "invalid response header {name:?}"),
            ApiError::ReservedHeader(name) => {
                write!(f, "header {name:?} is managed by the connection")
            }
            ApiError::Closed => f.write_str("the connection is closed"),
        }
    }
}

impl std::error::Error for ApiError {}
