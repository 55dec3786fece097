//! Request-head framing: finding the end of the head incrementally, parsing it
//! with httparse once, and applying the strict RFC 9112 framing rules.

use std::mem::MaybeUninit;

use super::error::ProtocolErrorKind as Kind;
use super::limits::Limits;
use super::request::{FieldSpan, Request, RequestBody, Version};

/// The header-count limit can not exceed this (the parse array lives on the
/// stack).
pub const MAX_HEADERS_CAP: usize = 256;

/// Finds where a request head ends, looking at each byte once however the
/// input is split. Also rejects bare-LF line endings (httparse would accept
/// them) and enforces the request-line and head-size limits before the head
/// is complete, so an endless head never grows the buffer.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct HeadScanner {
    /// Bytes already looked at.
    scanned: usize,
    /// Whether the request line's LF was seen.
    line_done: bool,
}

impl HeadScanner {
    /// Looks at the bytes added to `buf` since the last call (`buf` always
    /// starts at the head's first byte). Returns the head's length once its
    /// final CRLF CRLF is in.
    pub(crate) fn scan(&mut self, buf: &[u8], limits: &Limits) -> Result<Option<usize>, Kind> {
        let from = self.scanned;
        self.scanned = buf.len();
        for i in memchr::memchr_iter(b'\n', &buf[from..]).map(|i| i + from) {
            if i == 0 || buf[i - 1] != b'\r' {
                return Err(Kind::BareLineFeed);
            }
            if !self.line_done {
                self.line_done = true;
                if i - 1 > limits.max_request_line {
                    return Err(Kind::TargetTooLong);
                }
            } else if i >= 3 && buf[i - 3..i] == *b"\r\n\r" {
                let len = i + 1;
                if len > limits.max_head_bytes {
                    return Err(Kind::HeadTooLarge);
                }
                return Ok(Some(len));
            }
        }
        if !self.line_done && buf.len() > limits.max_request_line + 2 {
            return Err(Kind::TargetTooLong);
        }
        if buf.len() > limits.max_head_bytes {
            return Err(Kind::HeadTooLarge);
        }
        Ok(None)
    }
}

/// Offsets of a sub-slice inside the head (httparse hands out sub-slices).
fn span(head: &[u8], part: &[u8]) -> (u32, u32) {
    let start = part.as_ptr() as usize - head.as_ptr() as usize;
    (start as u32, (start + part.len()) as u32)
}

/// Parses a complete head (as found by [`HeadScanner`]) into a [`Request`],
/// applying every framing rule. The head is copied once, into the request.
pub(crate) fn parse_head(head: &[u8], limits: &Limits) -> Result<Request, Kind> {
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS_CAP];
    let slots = &mut slots[..limits.max_headers.min(MAX_HEADERS_CAP)];
    let mut parsed = httparse::Request::new(&mut []);
    match parsed.parse_with_uninit_headers(head, slots) {
        Ok(httparse::Status::Complete(n)) if n == head.len() => {}
        Ok(_) => return Err(Kind::MalformedHead),
        Err(httparse::Error::TooManyHeaders) => return Err(Kind::HeadTooLarge),
        Err(httparse::Error::Version) => return Err(version_error(head)),
        Err(_) => return Err(Kind::MalformedHead),
    }
    let (Some(method), Some(target), Some(minor)) = (parsed.method, parsed.path, parsed.version)
    else {
        return Err(Kind::MalformedHead);
    };
    let version = if minor == 0 {
        Version::Http10
    } else {
        Version::Http11
    };
    check_target(method, target)?;

    let mut framing = Framing::default();
    let mut fields = Vec::with_capacity(parsed.headers.len());
    for field in parsed.headers.iter() {
        framing.observe(field.name, field.value)?;
        fields.push(FieldSpan {
            name: span(head, field.name.as_bytes()),
            value: span(head, field.value),
        });
    }
    let (body, keep_alive, expect_continue) = framing.finish(version, limits)?;
    let method = span(head, method.as_bytes());
    let target = span(head, target.as_bytes());
    Ok(Request {
        head: head.to_vec(),
        method,
        target,
        version,
        fields,
        body,
        keep_alive,
        expect_continue,
    })
}

/// httparse reports every version problem alike; a well-formed `HTTP/x.y`
/// that is not 1.0 or 1.1 is 505, anything else 400.
fn version_error(head: &[u8]) -> Kind {
    let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    let version = line.rsplit(|&b| b == b' ').next().unwrap_or_default();
    match version {
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            Kind::UnsupportedVersion
        }
        _ => Kind::MalformedHead,
    }
}

/// Origin-form (`/…`), absolute-form with an http or https scheme, or `*` for
/// OPTIONS; ASCII only. Authority-form (CONNECT) is not served.
fn check_target(method: &str, target: &str) -> Result<(), Kind> {
    if !target.is_ascii() {
        return Err(Kind::BadTarget);
    }
    if target.starts_with('/') || (target == "*" && method == "OPTIONS") {
        return Ok(());
    }
    let lower = target.get(..8).unwrap_or(target).to_ascii_lowercase();
    let authority = if lower.starts_with("http://") {
        &target[7..]
    } else if lower.starts_with("https://") {
        &target[8..]
    } else {
        return Err(Kind::BadTarget);
    };
    let host_end = authority.find(['/', '?']).unwrap_or(authority.len());
    if host_end == 0 || !is_authority(&authority.as_bytes()[..host_end]) {
        return Err(Kind::BadTarget);
    }
    Ok(())
}

/// Characters of `host [":" port]`: unreserved, sub-delims, `%`, `:` and the
/// brackets of an IP literal. No userinfo (`@`), no whitespace, no slashes.
fn is_authority(value: &[u8]) -> bool {
    value.iter().all(|&b| {
        b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
                    | b'%'
                    | b':'
                    | b'['
                    | b']'
            )
    })
}

/// What the framing-relevant fields said, gathered field by field.
#[derive(Default)]
struct Framing {
    content_length: Option<u64>,
    transfer_encoding: bool,
    chunked: bool,
    hosts: u32,
    close: bool,
    keep_alive: bool,
    expect_continue: bool,
}

impl Framing {
    fn observe(&mut self, name: &str, value: &[u8]) -> Result<(), Kind> {
        // Fast exit on the first byte: most fields are none of these.
        match name.as_bytes().first().map(u8::to_ascii_lowercase) {
            Some(b'c' | b't' | b'h' | b'e') => {}
            _ => return Ok(()),
        }
        if name.eq_ignore_ascii_case("content-length") {
            if self.content_length.is_some() {
                // Repeated, even with the same value: a strict front refuses
                // rather than guesses which one the next hop will use.
                return Err(Kind::BadContentLength);
            }
            self.content_length = Some(parse_content_length(value)?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            self.transfer_encoding = true;
            for coding in value.split(|&b| b == b',') {
                let coding = coding.trim_ascii();
                if coding.is_empty() || !coding.iter().all(|&b| is_tchar(b)) {
                    return Err(Kind::BadTransferEncoding);
                }
                if self.chunked {
                    // chunked must be the final coding, and only once.
                    return Err(Kind::BadTransferEncoding);
                }
                if coding.eq_ignore_ascii_case(b"chunked") {
                    self.chunked = true;
                } else {
                    // A coding we do not decode before (or instead of) chunked.
                    self.chunked = false;
                    return Err(Kind::UnsupportedTransferCoding);
                }
            }
        } else if name.eq_ignore_ascii_case("host") {
            self.hosts += 1;
            if !is_authority(value) {
                return Err(Kind::BadHost);
            }
        } else if name.eq_ignore_ascii_case("connection") {
            for option in value.split(|&b| b == b',') {
                let option = option.trim_ascii();
                if option.eq_ignore_ascii_case(b"close") {
                    self.close = true;
                } else if option.eq_ignore_ascii_case(b"keep-alive") {
                    self.keep_alive = true;
                }
            }
        } else if name.eq_ignore_ascii_case("expect") {
            if value.eq_ignore_ascii_case(b"100-continue") {
                self.expect_continue = true;
            } else {
                return Err(Kind::UnsupportedExpectation);
            }
        }
        Ok(())
    }

    fn finish(self, version: Version, limits: &Limits) -> Result<(RequestBody, bool, bool), Kind> {
        if version == Version::Http11 && self.hosts != 1 || self.hosts > 1 {
            return Err(Kind::BadHost);
        }
        let body = match (self.transfer_encoding, self.content_length) {
            (true, Some(_)) => return Err(Kind::ContentLengthWithTransferEncoding),
            (true, None) if version == Version::Http10 => {
                return Err(Kind::TransferEncodingOnHttp10)
            }
            (true, None) if !self.chunked => return Err(Kind::BadTransferEncoding),
            (true, None) => RequestBody::Chunked,
            (false, Some(n)) if n > limits.max_body => return Err(Kind::BodyTooLarge),
            (false, Some(0)) | (false, None) => RequestBody::None,
            (false, Some(n)) => RequestBody::Length(n),
        };
        let keep_alive = !self.close
            && match version {
                Version::Http11 => true,
                Version::Http10 => self.keep_alive,
            };
        // RFC 9110 §10.1.1: a server ignores 100-continue from HTTP/1.0.
        let expect_continue = self.expect_continue && version == Version::Http11;
        Ok((body, keep_alive, expect_continue))
    }
}

/// `1*DIGIT`, nothing else: no sign, no spaces, no list, no hex, no overflow.
fn parse_content_length(value: &[u8]) -> Result<u64, Kind> {
    if value.is_empty() {
        return Err(Kind::BadContentLength);
    }
    value.iter().try_fold(0u64, |n, &b| {
        if !b.is_ascii_digit() {
            return Err(Kind::BadContentLength);
        }
        n.checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(b - b'0')))
            .ok_or(Kind::BadContentLength)
    })
}

/// RFC 9110 token characters.
pub(crate) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}
