//! Request-head framing: finding the end of the head incrementally, parsing it
//! with httparse once, and applying the strict RFC 9112 framing rules.

use std::mem::MaybeUninit;

use super::error::ProtocolErrorKind as Kind;
use super::limits::Limits;
use super::request::{Request, RequestBody, Version, FIELD_RECORD};

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
    /// Whether no byte of this head has been looked at yet.
    pub(crate) fn is_fresh(&self) -> bool {
        self.scanned == 0
    }

    /// Looks at the bytes added to `buf` since the last call (`buf` always
    /// starts at the head's first byte). Returns the head's length once its
    /// final CRLF CRLF is in.
    pub(crate) fn scan(&mut self, buf: &[u8], limits: &Limits) -> Result<Option<usize>, Kind> {
        let from = self.scanned;
        self.scanned = buf.len();
        for i in memchr::memchr_iter(b'\n', &buf[from..]).map(|i| i + from) {
            // The limits first: fed a byte at a time, the bytes before this
            // LF would already have broken them (same error for any split).
            if !self.line_done && i > limits.max_request_line + 2 {
                return Err(Kind::TargetTooLong);
            }
            if i > limits.max_head_bytes {
                return Err(Kind::HeadTooLarge);
            }
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

/// Offsets of a sub-slice inside the head (httparse hands out sub-slices);
/// `None` if it is not one, so a surprise from the parser is an error, never
/// an out-of-bounds slice later.
fn span(head: &[u8], part: &[u8]) -> Option<(u32, u32)> {
    let start = (part.as_ptr() as usize).wrapping_sub(head.as_ptr() as usize);
    let end = start.wrapping_add(part.len());
    let fits = start <= end && end <= head.len() && end <= u32::MAX as usize;
    fits.then_some((start as u32, end as u32))
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
    build_request(head, &parsed, limits)
}

/// The fast path for a head that arrived in one piece: parses the unread
/// bytes directly, with no [`HeadScanner`] pass over them. Returns the head's
/// length and the request only when the head is well-formed and valid and
/// the scanner would have found the same head and raised nothing itself
/// (CRLF line ends only, request line and head within their limits).
/// Otherwise `None`: the scanner and [`parse_head`] then decide, so every
/// error and every split of the input still gives the same result.
#[inline(always)]
pub(crate) fn parse_whole_head(buf: &[u8], limits: &Limits) -> Option<(usize, Request)> {
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS_CAP];
    let slots = &mut slots[..limits.max_headers.min(MAX_HEADERS_CAP)];
    let mut parsed = httparse::Request::new(&mut []);
    let Ok(httparse::Status::Complete(len)) = parsed.parse_with_uninit_headers(buf, slots) else {
        return None;
    };
    let head = &buf[..len];
    // httparse also ends lines with a bare LF and skips empty lines before
    // the request line; the scanner refuses the first and the connection
    // strips only CRLF pairs. httparse allows no CR or LF inside a line, so
    // checking each line end is enough: after the version (the target, one
    // space, `HTTP/1.x`) and the final empty line here, after each field in
    // `build_request`.
    let cr_at = |at: usize| head.get(at) == Some(&b'\r');
    let method = span(head, parsed.method?.as_bytes())?;
    let line_end = span(head, parsed.path?.as_bytes())?.1 as usize + " HTTP/1.1".len();
    if method.0 != 0 || !cr_at(line_end) || !cr_at(len - 2) {
        return None;
    }
    if len > limits.max_head_bytes || line_end > limits.max_request_line {
        return None;
    }
    Some((len, build_request(head, &parsed, limits).ok()?))
}

/// The framing rules over a parsed head, and the owned copy: one
/// allocation holding the head and, after it, where each field's name and
/// value are. Each field's line end is checked on the way (see
/// [`parse_whole_head`]).
fn build_request(
    head: &[u8],
    parsed: &httparse::Request<'_, '_>,
    limits: &Limits,
) -> Result<Request, Kind> {
    let (Some(method), Some(target), Some(minor)) = (parsed.method, parsed.path, parsed.version)
    else {
        return Err(Kind::MalformedHead);
    };
    let head_len = u32::try_from(head.len()).map_err(|_| Kind::HeadTooLarge)?;
    let version = if minor == 0 {
        Version::Http10
    } else {
        Version::Http11
    };
    let authority = check_target(method, target)?;
    let method = span(head, method.as_bytes()).ok_or(Kind::MalformedHead)?;
    let target = span(head, target.as_bytes()).ok_or(Kind::MalformedHead)?;

    // One allocation: the head, then a record per field.
    let size = head.len() + parsed.headers.len() * FIELD_RECORD;
    let mut bytes = Vec::with_capacity(size);
    bytes.extend_from_slice(head);
    record_fields(head, parsed.headers, &mut bytes)?;
    // The framing rules in a second pass: few names pass the quick filter,
    // and a call in the loop above would slow it for every field.
    let mut framing = Framing::default();
    for field in parsed.headers.iter() {
        if !may_be_framing(field.name.as_bytes()) {
            continue;
        }
        // Host is in every request: handled here, without a call.
        if is_spelled(field.name.as_bytes(), b"host") {
            framing.host(field.value)?;
        } else {
            framing.observe(field.name, field.value)?;
        }
    }
    let method_text = &head[method.0 as usize..method.1 as usize];
    let (body, keep_alive, expect_continue) = framing.finish(method_text, version, limits)?;
    if let Some(authority) = authority {
        // With an absolute-form target the target's authority names the
        // site and Host is ignored (RFC 9112 §3.2.2), while whatever reads
        // `Request::host` goes by Host: refuse a request whose two disagree
        // rather than let two readers pick different sites.
        let host = parsed
            .headers
            .iter()
            .find(|field| field.name.eq_ignore_ascii_case("host"));
        if host.is_some_and(|field| !field.value.eq_ignore_ascii_case(authority.as_bytes())) {
            return Err(Kind::BadHost);
        }
    }
    Ok(Request {
        bytes,
        head_len,
        method,
        target,
        version,
        body,
        keep_alive,
        expect_continue,
    })
}

/// Writes the record of each field (see [`FIELD_RECORD`]) and checks its
/// line end. Out of line, and with no call inside: the loop then keeps its
/// values in registers.
#[inline(never)]
fn record_fields(
    head: &[u8],
    fields: &[httparse::Header<'_>],
    records: &mut Vec<u8>,
) -> Result<(), Kind> {
    let (base, len) = (head.as_ptr() as usize, head.len());
    let offsets = |part: &[u8]| {
        let start = (part.as_ptr() as usize).wrapping_sub(base);
        (start, start.wrapping_add(part.len()))
    };
    for field in fields {
        let ((name_start, name_end), (value_start, value_end)) =
            (offsets(field.name.as_bytes()), offsets(field.value));
        // Both inside the head (as `span` checks), with a byte after the
        // value: a surprise from the parser is an error, never an
        // out-of-bounds slice later.
        if !(name_start <= name_end
            && name_end <= len
            && value_start <= value_end
            && value_end < len)
        {
            return Err(Kind::MalformedHead);
        }
        // The line ends with CRLF after the value and its trailing
        // whitespace (which httparse leaves out of the value). A head the
        // scanner found always passes; the fast path relies on this check.
        if head[value_end] != b'\r' && !ends_after_whitespace(head, value_end) {
            return Err(Kind::BareLineFeed);
        }
        // The head is at most u32::MAX bytes long: the offsets fit.
        let mut record = [0; FIELD_RECORD];
        let words = [name_start, name_end, value_start, value_end];
        for (slot, word) in record.chunks_exact_mut(4).zip(words) {
            slot.copy_from_slice(&(word as u32).to_le_bytes());
        }
        records.extend_from_slice(&record);
    }
    Ok(())
}

/// Whether the line ends with CR after whitespace from `at` on (the slow
/// case of the line-end check: a value with trailing whitespace).
#[cold]
fn ends_after_whitespace(head: &[u8], at: usize) -> bool {
    let rest = head.get(at..).unwrap_or_default();
    let text = rest.iter().position(|&b| b != b' ' && b != b'\t');
    text.is_some_and(|i| rest[i] == b'\r')
}

/// httparse reports every version problem alike; a well-formed request line
/// (`method SP target SP HTTP/x.y`) whose version is not 1.0 or 1.1 is 505,
/// anything else 400. The line must have exactly three parts: with a space
/// in the target (`GET /a?b=c d HTTP/1.1`) httparse takes `d` for the
/// version, and that is a malformed line, not an unsupported version.
fn version_error(head: &[u8]) -> Kind {
    let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Kind::MalformedHead;
    };
    match version {
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if !method.is_empty()
                && !target.is_empty()
                && major.is_ascii_digit()
                && minor.is_ascii_digit() =>
        {
            Kind::UnsupportedVersion
        }
        _ => Kind::MalformedHead,
    }
}

/// Origin-form (`/…`), absolute-form with an http or https scheme, or `*` for
/// OPTIONS. Authority-form (CONNECT) is not served. Raw UTF-8 in the path or
/// query (as curl sends it) is accepted: httparse has checked it is valid
/// UTF-8 with no spaces or control bytes, so no hop can read it differently.
/// Returns the authority of an absolute-form target.
fn check_target<'t>(method: &str, target: &'t str) -> Result<Option<&'t str>, Kind> {
    if target.starts_with('/') || (target == "*" && method == "OPTIONS") {
        return Ok(None);
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
    Ok(Some(&authority[..host_end]))
}

/// Characters of `host [":" port]`: unreserved, sub-delims, `%`, `:` and the
/// brackets of an IP literal. No userinfo (`@`), no whitespace, no slashes.
fn is_authority(value: &[u8]) -> bool {
    // No early exit: the loop then has no branch per byte.
    value
        .iter()
        .fold(true, |ok, &b| ok & AUTHORITY[usize::from(b)])
}

/// [`is_authority`]'s characters as a table (one load per byte: Host is in
/// every request).
const AUTHORITY: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = matches!(
            b as u8,
            b'a'..=b'z'
                | b'A'..=b'Z'
                | b'0'..=b'9'
                | b'-'
                | b'.'
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
        );
        b += 1;
    }
    table
};

/// Whether [`Framing::observe`] may act on a field of this name: a quick
/// filter on the length and the first two bytes that passes every framing
/// name and every name [`is_disguised_framing_field`] refuses. Most names
/// (`Cookie`, `Accept`, `User-Agent`) fail it at once.
#[inline(always)]
fn may_be_framing(name: &[u8]) -> bool {
    let first = name.first().copied().unwrap_or_default();
    name.len() >= usize::from(FRAMING_MIN_LEN[usize::from(first)])
        && continues_framing_name(first, name.get(1).copied())
}

/// Whether a name starting with `first` and then `second` may still spell a
/// framing name: when both are letters or digits, the second must be the
/// second letter of the one name the first picks (`Cache-Control` stops
/// here; `connection` and `content-length` both go on with `o`).
/// Punctuation in either place leaves it open.
#[inline(always)]
fn continues_framing_name(first: u8, second: Option<u8>) -> bool {
    let Some(second) = second.filter(u8::is_ascii_alphanumeric) else {
        return true;
    };
    let want = match first | 0x20 {
        b'c' | b'h' => b'o',
        b't' => b'r',
        b'e' => b'x',
        _ => return !first.is_ascii_alphanumeric(),
    };
    second | 0x20 == want
}

/// [`may_be_framing`]'s table: for each first byte, the shortest name
/// starting with it that may be a framing field or a disguise of one (at
/// least as long as the letters it spells).
const FRAMING_MIN_LEN: [u8; 256] = {
    let mut table = [u8::MAX; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = match b as u8 | 0x20 {
            // connection (content-length and its disguises are longer)
            b'c' => 10,
            // transfer-encoding and its disguises
            b't' => 16,
            // host and its disguises
            b'h' => 4,
            // expect
            b'e' => 6,
            // A disguise may start with punctuation (ORing 0x20 maps no
            // other byte to a letter or digit).
            lower if !lower.is_ascii_alphanumeric() => 0,
            // No framing name starts with this letter or digit; names this
            // long pass anyway (observe decides, as for any name).
            _ => u8::MAX,
        };
        b += 1;
    }
    table
};

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
    /// Applies one field, which [`may_be_framing`]. Host and Connection,
    /// in nearly every request, are handled here; the rest out of line, so
    /// this stays small and cheap to call.
    #[inline(never)]
    fn observe(&mut self, name: &str, value: &[u8]) -> Result<(), Kind> {
        // Dispatch on the length and the first letter: most fields are none
        // of these, and two compares are cheaper than a case-insensitive one.
        let first = name.as_bytes().first().map_or(0, |&b| b | 0x20);
        match (name.len(), first) {
            (4, b'h') if is_spelled(name.as_bytes(), b"host") => self.host(value)?,
            // The usual single values first, then any list.
            (10, b'c') if is_spelled(name.as_bytes(), b"connection") => {
                if is_spelled(value, b"keep-alive") {
                    self.keep_alive = true;
                } else if is_spelled(value, b"close") {
                    self.close = true;
                } else {
                    self.connection_options(value);
                }
            }
            _ => return self.observe_rare(name, value),
        }
        Ok(())
    }

    /// A Host field.
    #[inline(always)]
    fn host(&mut self, value: &[u8]) -> Result<(), Kind> {
        self.hosts += 1;
        if !is_authority(value) {
            return Err(Kind::BadHost);
        }
        Ok(())
    }

    /// A Connection field with other than one `keep-alive` or `close`.
    #[inline(never)]
    fn connection_options(&mut self, value: &[u8]) {
        for option in value.split(|&b| b == b',') {
            let option = option.trim_ascii();
            if option.eq_ignore_ascii_case(b"close") {
                self.close = true;
            } else if option.eq_ignore_ascii_case(b"keep-alive") {
                self.keep_alive = true;
            }
        }
    }

    /// The framing fields other than Host and Connection, and disguises.
    #[inline(never)]
    fn observe_rare(&mut self, name: &str, value: &[u8]) -> Result<(), Kind> {
        let is = |framing: &[u8]| is_spelled(name.as_bytes(), framing);
        let first = name.as_bytes().first().map_or(0, |&b| b | 0x20);
        match (name.len(), first) {
            (14, b'c') if is(b"content-length") => {
                if self.content_length.is_some() {
                    // Repeated, even with the same value: a strict front
                    // refuses rather than guesses which one the next hop uses.
                    return Err(Kind::BadContentLength);
                }
                self.content_length = Some(parse_content_length(value)?);
            }
            (17, b't') if is(b"transfer-encoding") => {
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
                    if !coding.eq_ignore_ascii_case(b"chunked") {
                        // A coding we do not decode, before or instead of chunked.
                        return Err(Kind::UnsupportedTransferCoding);
                    }
                    self.chunked = true;
                }
            }
            (6, b'e') if is(b"expect") => {
                if !value.eq_ignore_ascii_case(b"100-continue") {
                    return Err(Kind::UnsupportedExpectation);
                }
                self.expect_continue = true;
            }
            (len, first) if could_disguise(len, first) && is_disguised_framing_field(name) => {
                return Err(Kind::DisguisedFramingField)
            }
            _ => {}
        }
        Ok(())
    }

    #[inline(always)]
    fn finish(
        self,
        method: &[u8],
        version: Version,
        limits: &Limits,
    ) -> Result<(RequestBody, bool, bool), Kind> {
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
        // Content on GET or HEAD "has no generally defined semantics" and
        // may be rejected for its potential as a request smuggling attack
        // (RFC 9110 §9.3.1, §9.3.2); a TRACE must not have any (§9.3.8). A
        // hop that ignores such a body reads it as the next request, so a
        // guard refuses it. `Content-Length: 0` is no content: it passes.
        if body != RequestBody::None && matches!(method, b"GET" | b"HEAD" | b"TRACE") {
            return Err(Kind::ContentNotAllowed);
        }
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

/// Whether `text` spells `lower` (lowercase letters and other bytes) in
/// any letter case. Eight bytes at a time and without a branch per byte,
/// unlike `eq_ignore_ascii_case` (`lower` is a literal: its words fold into
/// constants): ORing 0x20 into a byte accepts exactly the two cases of a
/// letter where `lower` has a letter, and nothing is ORed elsewhere.
#[inline(always)]
fn is_spelled(text: &[u8], lower: &[u8]) -> bool {
    let fold = |want: u8| if want.is_ascii_lowercase() { 0x20 } else { 0 };
    let word = |bytes: &[u8]| bytes.iter().rev().fold(0, |w, &b| w << 8 | u64::from(b));
    let folds = |bytes: &[u8]| {
        bytes
            .iter()
            .rev()
            .fold(0, |w, &b| w << 8 | u64::from(fold(b)))
    };
    if text.len() != lower.len() {
        return false;
    }
    let (mut text_words, mut lower_words) = (text.chunks_exact(8), lower.chunks_exact(8));
    let mut diff = 0;
    for (t, l) in (&mut text_words).zip(&mut lower_words) {
        diff |= (word(t) | folds(l)) ^ word(l);
    }
    let rest = text_words.remainder().iter().zip(lower_words.remainder());
    rest.fold(diff, |diff, (&b, &want)| {
        diff | u64::from((b | fold(want)) ^ want)
    }) == 0
}

/// Whether a name of this length, whose first byte ORed with 0x20 is
/// `first`, could be one [`is_disguised_framing_field`] refuses: it starts
/// with c, t or h (any case) or with punctuation, and is at least as long as
/// the letters it would have to spell. Most names fail here at once
/// (`Cookie`, `Content-Type`, `User-Agent`).
fn could_disguise(len: usize, first: u8) -> bool {
    match first {
        b'c' => len >= "contentlength".len(),
        b't' => len >= "transferencoding".len(),
        b'h' => len >= "host".len(),
        // Digits are letters of no framing name; ORing 0x20 maps other
        // punctuation to punctuation.
        _ => !first.is_ascii_alphanumeric(),
    }
}

/// A field name that is not a framing field but spells one once case and
/// every character other than letters and digits are ignored:
/// `Content_Length`, `Transfer---Encoding`, `Ho.st`. CGI-style backends map
/// `_` to `-` (`HTTP_CONTENT_LENGTH` for both spellings) and lenient parsers
/// match names loosely, so another hop may frame or route the request by a
/// field this engine ignores.
fn is_disguised_framing_field(name: &str) -> bool {
    // Cheap exit for most names: a disguise starts with c, t or h, or with
    // punctuation.
    let first = name.as_bytes().first().copied().unwrap_or_default();
    if !matches!(first | 0x20, b'c' | b't' | b'h') && first.is_ascii_alphanumeric() {
        return false;
    }
    let mut letters = name
        .bytes()
        .filter(u8::is_ascii_alphanumeric)
        .map(|b| b.to_ascii_lowercase());
    // The first letter picks the one name it could spell; most names then
    // differ within a letter or two (`cookie`, `cache-control`).
    let rest: &[u8] = match letters.next() {
        Some(b'c') => b"ontentlength",
        Some(b't') => b"ransferencoding",
        Some(b'h') => b"ost",
        _ => return false,
    };
    rest.iter().all(|&want| letters.next() == Some(want)) && letters.next().is_none()
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
    TCHAR[usize::from(b)]
}

/// [`is_tchar`]'s characters as a table: every response field name is
/// checked with it, byte by byte.
const TCHAR: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = (b as u8).is_ascii_alphanumeric()
            || matches!(
                b as u8,
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
            );
        b += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses `request line + fields` (each field a line) with default limits.
    fn parse(request_line: &str, fields: &[&str]) -> Result<Request, Kind> {
        let mut head = format!("{request_line}\r\n");
        for field in fields {
            head.push_str(field);
            head.push_str("\r\n");
        }
        head.push_str("\r\n");
        parse_head(head.as_bytes(), &Limits::default())
    }

    #[test]
    fn a_space_in_the_target_is_a_malformed_line_not_an_unknown_version() {
        // httparse stops the target at the first space and takes `spaces`
        // for the version; the line has four parts, so it is malformed (400).
        let spaced = parse("GET /a?q=not escaped spaces HTTP/1.1", &["Host: h"]);
        assert_eq!(spaced.unwrap_err(), Kind::MalformedHead);
        let doubled = parse("GET /a HTTP/1.1 HTTP/1.1", &["Host: h"]);
        assert_eq!(doubled.unwrap_err(), Kind::MalformedHead);
        // A well-formed line with a version we do not speak is still 505.
        let future = parse("GET /a HTTP/2.0", &["Host: h"]);
        assert_eq!(future.unwrap_err(), Kind::UnsupportedVersion);
    }

    #[test]
    fn names_that_spell_a_framing_field_are_refused() {
        // A CGI backend reads `Content_Length` as CONTENT_LENGTH and frames
        // a body this engine would never read.
        for name in [
            "Content_Length: 5",
            "content.length: 5",
            "Transfer_Encoding: chunked",
            "Transfer---Encoding: chunked",
            "_Transfer-Encoding: chunked",
            "Ho_st: evil.example",
        ] {
            let fields = ["Host: h", name];
            assert_eq!(
                parse("POST / HTTP/1.1", &fields).unwrap_err(),
                Kind::DisguisedFramingField,
                "{name}"
            );
        }
    }

    #[test]
    fn the_quick_filter_passes_every_name_framing_could_act_on() {
        // `may_be_framing` skips `Framing::observe` for most fields; it must
        // never skip a framing field or a disguise of one. Disguises: the
        // letters in any case, with punctuation before, between or after
        // them (and the dashes dropped or kept).
        let framing = [
            "content-length",
            "transfer-encoding",
            "host",
            "connection",
            "expect",
        ];
        let mut names = Vec::new();
        for name in framing {
            for letters in [name.to_string(), name.replace('-', "")] {
                for at in 0..=letters.len() {
                    for mark in ["_", ".", "-", "~", "!", "__"] {
                        let mut disguised = letters.clone();
                        disguised.insert_str(at, mark);
                        names.push(disguised.to_uppercase());
                        names.push(disguised);
                    }
                }
                names.push(letters.to_uppercase());
                names.push(letters);
            }
        }
        let mut refused = 0;
        for name in &names {
            let exact = framing.iter().any(|f| name.eq_ignore_ascii_case(f));
            if exact || is_disguised_framing_field(name) {
                refused += 1;
                assert!(may_be_framing(name.as_bytes()), "{name}");
            }
        }
        assert!(refused > 500, "the generated names are disguises");
        // And it does skip the common ones.
        for name in [
            "Cookie",
            "Accept",
            "User-Agent",
            "Cache-Control",
            "Sec-Fetch-Mode",
            "Referer",
        ] {
            assert!(!may_be_framing(name.as_bytes()), "{name}");
        }
    }

    #[test]
    fn the_parts_of_a_request_are_where_the_parser_saw_them() {
        // One allocation holds the head and the field positions; every
        // accessor reads through them.
        let request = parse(
            "GET /a/b?c=d HTTP/1.1",
            &[
                "Host: h.example",
                "X-Empty:",
                "Cookie: id=s3cret  ",
                "cookie: two",
            ],
        )
        .expect("valid");
        assert_eq!(request.method(), "GET");
        assert_eq!((request.path(), request.query()), ("/a/b", Some("c=d")));
        let fields: Vec<_> = request.headers().collect();
        assert_eq!(
            fields,
            [
                ("Host", &b"h.example"[..]),
                ("X-Empty", b""),
                ("Cookie", b"id=s3cret"),
                ("cookie", b"two"),
            ]
        );
        assert_eq!(request.headers_named("COOKIE").count(), 2);
        assert!(request.raw_head().ends_with(b"cookie: two\r\n\r\n"));
        // Its debug form names the fields but shows no value: a request
        // that ends up in a log does not leak a session.
        let debug = format!("{request:?}");
        assert!(
            debug.contains("Cookie") && !debug.contains("s3cret"),
            "{debug}"
        );
    }

    #[test]
    fn the_fast_path_takes_only_what_the_scanner_would_accept() {
        let limits = Limits::default();
        let head = b"POST /f HTTP/1.1\r\nHost: h\r\nX-Pad: a \t\r\nContent-Length: 3\r\n\r\n";
        let with_body = [&head[..], b"abc"].concat();
        let (len, request) = parse_whole_head(&with_body, &limits).expect("a whole head");
        assert_eq!(len, head.len());
        assert_eq!(request.header("x-pad"), Some(&b"a"[..]));
        assert_eq!(request.body(), RequestBody::Length(3));
        // httparse accepts these; the scanner and the connection decide
        // them instead (a bare LF, empty lines first, a framing error).
        for refused in [
            &b"GET / HTTP/1.1\nHost: h\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nHost: h\n\r\n",
            b"GET / HTTP/1.1\r\nHost: h\r\n\n",
            b"\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: h\r\nHost: h\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: h\r\n",
        ] {
            assert!(
                parse_whole_head(refused, &limits).is_none(),
                "{}",
                String::from_utf8_lossy(refused)
            );
        }
    }

    #[test]
    fn names_that_merely_resemble_a_framing_field_pass() {
        // Underscores, dots and digits are ordinary token characters; only
        // an exact spelling of a framing field is suspicious.
        let request = parse(
            "POST / HTTP/1.1",
            &[
                "Host: h",
                "My_Custom_Header: 1",
                "X-Content-Length: 9",
                "Content-Length2: 9",
                "Content-Type: text/plain",
                "Hosts: many",
                "Content-Length: 3",
            ],
        )
        .expect("ordinary fields");
        assert_eq!(request.body(), RequestBody::Length(3));
    }

    #[test]
    fn an_absolute_target_and_its_host_field_must_name_the_same_site() {
        // RFC 9112 §3.2.2 makes the target's authority win over Host; a
        // guard reading Host would check one site and pass another.
        let split = parse(
            "GET http://victim.example/admin HTTP/1.1",
            &["Host: guard.example"],
        );
        assert_eq!(split.unwrap_err(), Kind::BadHost);
        // The same site, in any case, is the ordinary absolute form.
        let same = parse(
            "GET http://Site.example:8080/a HTTP/1.1",
            &["Host: site.EXAMPLE:8080"],
        );
        assert_eq!(same.expect("same site").host(), Some("site.EXAMPLE:8080"));
        // HTTP/1.0 may omit Host: the target alone names the site.
        let old = parse("GET http://site.example/a HTTP/1.0", &[]);
        assert_eq!(old.expect("no Host on 1.0").host(), None);
    }

    #[test]
    fn get_head_and_trace_may_not_carry_content() {
        // A hop that ignores a GET body would read it as the next request.
        for method in ["GET", "HEAD", "TRACE"] {
            let line = format!("{method} / HTTP/1.1");
            let sized = parse(&line, &["Host: h", "Content-Length: 22"]);
            assert_eq!(sized.unwrap_err(), Kind::ContentNotAllowed, "{method}");
            let chunked = parse(&line, &["Host: h", "Transfer-Encoding: chunked"]);
            assert_eq!(chunked.unwrap_err(), Kind::ContentNotAllowed, "{method}");
            // An explicit zero length is no content at all.
            let empty = parse(&line, &["Host: h", "Content-Length: 0"]);
            assert_eq!(empty.expect("no content").body(), RequestBody::None);
        }
        // Methods whose content has a meaning keep it; DELETE and OPTIONS
        // too, as APIs send bodies with them.
        for method in ["POST", "PUT", "PATCH", "DELETE", "OPTIONS"] {
            let line = format!("{method} / HTTP/1.1");
            let request = parse(&line, &["Host: h", "Content-Length: 22"]).expect(method);
            assert_eq!(request.body(), RequestBody::Length(22));
        }
    }
}
