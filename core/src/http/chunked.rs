//! Incremental decoding of `Transfer-Encoding: chunked` request bodies.
//!
//! The decoder never copies: it looks at the connection's unread input and
//! says how many bytes are framing (to skip) or data (to hand out). Its state
//! is `Copy`, so the connection can dry-run it to learn whether a whole body
//! is already buffered. Trailer fields are checked and then dropped: they are
//! never merged into the request's header fields.

use super::error::ProtocolErrorKind as Kind;
use super::head::is_tchar;
use super::limits::Limits;

/// One step of decoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// The next `n` input bytes are framing: skip them.
    Framing(usize),
    /// The next `n` input bytes are body data; report what was taken with
    /// [`ChunkedDecoder::consume_data`].
    Data(usize),
    /// Not enough input to go on.
    NeedMore,
    /// The body and its trailer section are complete.
    Done,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    SizeLine,
    Data { remaining: u64 },
    DataEnd,
    Trailers,
    Done,
}

/// Chunked-body decoder state.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ChunkedDecoder {
    state: State,
    /// Bytes of the current line already searched for its LF.
    scanned: usize,
    /// Data bytes so far, for the body-size limit.
    total: u64,
    /// Trailer-section bytes so far.
    trailer_bytes: usize,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        ChunkedDecoder {
            state: State::SizeLine,
            scanned: 0,
            total: 0,
            trailer_bytes: 0,
        }
    }
}

impl ChunkedDecoder {
    /// Whether the whole body, trailers included, has been decoded.
    pub(crate) fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Decodes as far as `input` (the unread bytes) allows, one step.
    pub(crate) fn step(&mut self, input: &[u8], limits: &Limits) -> Result<Step, Kind> {
        match self.state {
            State::Done => Ok(Step::Done),
            State::Data { remaining } => Ok(match input.len() as u64 {
                0 => Step::NeedMore,
                n => Step::Data(n.min(remaining) as usize),
            }),
            State::DataEnd => match input {
                [b'\r', b'\n', ..] => {
                    self.state = State::SizeLine;
                    Ok(Step::Framing(2))
                }
                [] | [b'\r'] => Ok(Step::NeedMore),
                _ => Err(Kind::BadChunk),
            },
            State::SizeLine => {
                let Some(line_len) =
                    self.find_line(input, limits.max_chunk_line, Kind::BadChunk)?
                else {
                    return Ok(Step::NeedMore);
                };
                let size = parse_size_line(&input[..line_len - 2])?;
                if size == 0 {
                    self.state = State::Trailers;
                } else {
                    self.total = self
                        .total
                        .checked_add(size)
                        .filter(|&t| t <= limits.max_body)
                        .ok_or(Kind::BodyTooLarge)?;
                    self.state = State::Data { remaining: size };
                }
                Ok(Step::Framing(line_len))
            }
            State::Trailers => {
                let room = limits.max_trailer_bytes.saturating_sub(self.trailer_bytes);
                let Some(line_len) = self.find_line(input, room, Kind::BadTrailer)? else {
                    return Ok(Step::NeedMore);
                };
                self.trailer_bytes += line_len;
                if line_len == 2 {
                    self.state = State::Done;
                } else if !is_field_line(&input[..line_len - 2]) {
                    return Err(Kind::BadTrailer);
                }
                Ok(Step::Framing(line_len))
            }
        }
    }

    /// Records that `n` data bytes (at most the last `Step::Data`) were taken.
    pub(crate) fn consume_data(&mut self, n: usize) {
        if let State::Data { remaining } = self.state {
            let remaining = remaining - n as u64;
            self.state = if remaining == 0 {
                State::DataEnd
            } else {
                State::Data { remaining }
            };
        }
    }

    /// Length of the CRLF-terminated line at the start of `input`, searching
    /// only bytes not searched before. A bare LF, or no LF within `max` bytes
    /// of line content, is `error`.
    fn find_line(&mut self, input: &[u8], max: usize, error: Kind) -> Result<Option<usize>, Kind> {
        let limit = input.len().min(max + 2);
        match memchr::memchr(b'\n', &input[self.scanned.min(limit)..limit]) {
            Some(i) => {
                let lf = self.scanned.min(limit) + i;
                self.scanned = 0;
                if lf == 0 || input[lf - 1] != b'\r' {
                    return Err(error);
                }
                Ok(Some(lf + 1))
            }
            None if input.len() >= max + 2 => Err(error),
            None => {
                self.scanned = limit;
                Ok(None)
            }
        }
    }
}

/// `1*HEXDIG [BWS ";" extensions]`, without the CRLF. Extensions are ignored
/// but must hold no control characters (so no bare CR).
fn parse_size_line(line: &[u8]) -> Result<u64, Kind> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 {
        return Err(Kind::BadChunk);
    }
    let mut size: u64 = 0;
    for &b in &line[..digits] {
        let digit = u64::from((b as char).to_digit(16).unwrap_or(0));
        size = size
            .checked_mul(16)
            .and_then(|s| s.checked_add(digit))
            .ok_or(Kind::BadChunk)?;
    }
    let rest = &line[digits..];
    // BWS before ";" is SP or HTAB only; trim_ascii would also eat a bare CR.
    let ext = &rest[rest
        .iter()
        .take_while(|&&b| b == b' ' || b == b'\t')
        .count()..];
    if !rest.is_empty() && !ext.starts_with(b";") {
        return Err(Kind::BadChunk);
    }
    if !ext.iter().all(|&b| b == b'\t' || b >= b' ' && b != 0x7f) {
        return Err(Kind::BadChunk);
    }
    Ok(size)
}

/// `field-name ":" OWS field-value OWS` with a token name and a value free of
/// control characters other than HTAB.
fn is_field_line(line: &[u8]) -> bool {
    let Some(colon) = line.iter().position(|&b| b == b':') else {
        return false;
    };
    colon > 0
        && line[..colon].iter().all(|&b| is_tchar(b))
        && line[colon + 1..]
            .iter()
            .all(|&b| b == b'\t' || b >= b' ' && b != 0x7f)
}
