//! One HTTP/1.1 server connection's state machine (RFC 9112): request heads
//! and bodies in, responses out, keep-alive, pipelining and deadlines. No I/O.

use std::collections::VecDeque;
use std::io::Write as _;
use std::time::Instant;

use crate::http::chunked::{ChunkedDecoder, Step};
use crate::http::head::{parse_head, parse_whole_head, HeadScanner};
use crate::http::response::{encode_head, reason_phrase, DateCache, FramingField};
use crate::http::{
    ApiError, Limits, ProtocolError, ProtocolErrorKind as Kind, Request, RequestBody, ResponseBody,
    ResponseHead, Version,
};
use crate::time::Now;

/// Something the application must act on (or log). Drain with
/// [`Connection::poll_event`] after every call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A complete, valid request head. Read its body (if any) with
    /// [`Connection::read_body`] and answer it with
    /// [`Connection::send_response`]. The next pipelined request is not
    /// handed out before this one's response is finished.
    Request(Request),
    /// More body bytes (or the body's end) of the current request arrived.
    BodyReadable,
    /// The peer broke HTTP/1.1 or timed out. The connection has queued the
    /// error response (if no response had started, and unless the peer's EOF
    /// cut a request short: then nobody is left to read one) and is closing;
    /// this event is for logging.
    Error(ProtocolError),
}

/// What [`Connection::read_body`] produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyRead {
    /// This many bytes were copied into the buffer.
    Data(usize),
    /// No body bytes are buffered yet: wait for more input.
    Pending,
    /// The body is complete (or there is none).
    End,
    /// The body's framing was broken; an [`Event::Error`] was queued and the
    /// connection is closing.
    Failed(ProtocolError),
}

/// Where reading stands.
#[derive(Clone, Copy, Debug)]
enum ReadState {
    /// Waiting for (or inside) a request head.
    Head(HeadScanner),
    /// Inside a Content-Length body: bytes still to be read.
    Length(u64),
    /// Inside a chunked body.
    Chunked(ChunkedDecoder),
    /// The current request's body is completely read; later bytes belong to
    /// the next (pipelined) request.
    BodyDone,
    /// Nothing more is read on this connection.
    Closed,
}

/// How the current response's body goes on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OutFraming {
    /// No body may follow (204, 304, or an empty body).
    NoBody,
    /// Content-Length: exactly the declared count.
    Length,
    /// Chunked transfer coding.
    Chunked,
    /// Delimited by closing the connection (HTTP/1.0, unknown length).
    UntilClose,
    /// A response to HEAD: body bytes are accepted and dropped.
    Discard,
}

#[derive(Clone, Copy, Debug)]
enum ResponseState {
    Awaiting,
    Sending {
        framing: OutFraming,
        declared: Option<u64>,
        sent: u64,
    },
}

/// The request being answered.
#[derive(Debug)]
struct Exchange {
    is_head: bool,
    version: Version,
    keep_alive: bool,
    /// `100 Continue` is still owed on the first body read.
    continue_pending: bool,
    /// Close once this response is done.
    close_after: bool,
    response: ResponseState,
}

/// One server-side HTTP/1.1 connection, without I/O.
///
/// See the crate documentation for the run-loop contract.
#[derive(Debug)]
pub struct Connection {
    limits: Limits,
    input: Vec<u8>,
    input_start: usize,
    output: Vec<u8>,
    output_start: usize,
    events: VecDeque<Event>,
    read: ReadState,
    exchange: Option<Exchange>,
    /// Whether no request has been handed out yet (the first request must
    /// arrive within the head timeout, later ones may idle longer).
    fresh: bool,
    /// When the connection last became idle (opened, or a response ended).
    idle_since: Instant,
    /// When the first byte of the head being read arrived.
    head_started: Option<Instant>,
    /// When body bytes last arrived.
    body_progress: Instant,
    /// When pending output last drained (or became pending).
    output_progress: Instant,
    peer_closed: bool,
    /// No more requests: flush output, then close.
    closing: bool,
    /// Close now, dropping pending output (the peer stopped reading).
    aborted: bool,
    date: DateCache,
}

impl Connection {
    /// A new connection, opened at `now`, with these limits.
    pub fn new(now: Now, mut limits: Limits) -> Self {
        // The buffer must hold one byte more than the longest head (and
        // request line) so that a head over the limit is seen as one.
        let floor = limits.max_head_bytes.max(limits.max_request_line + 2) + 1;
        limits.input_buffer = limits.input_buffer.max(floor);
        Connection {
            // Allocated as bytes come (and freed while idle, see
            // `release_idle_buffers`).
            input: Vec::new(),
            limits,
            input_start: 0,
            output: Vec::new(),
            output_start: 0,
            events: VecDeque::new(),
            read: ReadState::Head(HeadScanner::default()),
            exchange: None,
            fresh: true,
            idle_since: now.mono,
            head_started: None,
            body_progress: now.mono,
            output_progress: now.mono,
            peer_closed: false,
            closing: false,
            aborted: false,
            date: DateCache::default(),
        }
    }

    /// The limits this connection enforces.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    // ----- input -------------------------------------------------------------

    /// Whether the adapter should read from the peer: the connection is open
    /// for reading and its input buffer has room. When false, stop reading
    /// (backpressure) until a later call makes it true again.
    pub fn wants_read(&self) -> bool {
        !self.closing
            && !self.peer_closed
            && !matches!(self.read, ReadState::Closed)
            && self.unread().len() < self.limits.input_buffer
    }

    /// Feeds bytes received from the peer. Returns how many were taken: at
    /// most the free room of the input buffer, so a caller that offers more
    /// than [`wants_read`](Self::wants_read) allowed keeps the rest. Bytes
    /// offered after the connection stopped reading are dropped (and
    /// counted as taken).
    pub fn receive(&mut self, now: Now, data: &[u8]) -> usize {
        if self.closing || matches!(self.read, ReadState::Closed) {
            return data.len();
        }
        if self.input_start == self.input.len() {
            self.input.clear();
            self.input_start = 0;
        } else if self.input_start > 0 {
            // Keep the unread bytes at the front so the buffer never grows
            // past the limit.
            self.input.drain(..self.input_start);
            self.input_start = 0;
        }
        let room = self.limits.input_buffer.saturating_sub(self.input.len());
        let taken = data.len().min(room);
        if taken == 0 {
            return 0;
        }
        let data = &data[..taken];
        let tried_whole = self.input.is_empty() && self.awaits_fresh_head();
        if tried_whole {
            // Most heads arrive whole in one read: parse them straight from
            // the caller's bytes and buffer only what follows (body bytes, a
            // pipelined request). Anything else (a partial head, an error,
            // leading empty lines) takes the buffered path below, which
            // decides exactly as if this shortcut did not exist.
            if let Some((len, request)) = parse_whole_head(data, &self.limits) {
                if len < data.len() {
                    self.input.extend_from_slice(&data[len..]);
                }
                self.accept_request(now, request);
                return taken;
            }
        }
        self.input.extend_from_slice(data);
        match self.read {
            ReadState::Head(_) => self.advance_head(now, tried_whole),
            ReadState::Length(_) | ReadState::Chunked(_) => {
                self.body_progress = now.mono;
                if self.events.back() != Some(&Event::BodyReadable) {
                    self.events.push_back(Event::BodyReadable);
                }
            }
            ReadState::BodyDone | ReadState::Closed => {}
        }
        taken
    }

    /// The peer closed its sending side (read returned 0).
    pub fn receive_eof(&mut self, now: Now) {
        if self.peer_closed {
            return;
        }
        self.peer_closed = true;
        match (&self.exchange, self.read) {
            (None, ReadState::Head(_)) => {
                if !self.unread().is_empty() {
                    self.events.push_back(Event::Error(Kind::Truncated.into()));
                }
                self.stop_reading();
                self.closing = true;
            }
            (Some(_), ReadState::Length(_) | ReadState::Chunked(_))
                if !self.body_fully_buffered() =>
            {
                self.fail(now, Kind::Truncated);
            }
            // The request is complete (or buffered): it is answered, and so
            // are complete requests pipelined behind it; the connection
            // closes once none is left (see `finish_response`).
            _ => {}
        }
    }

    /// Reads body bytes of the current request into `buf`. The first read of
    /// a request that sent `Expect: 100-continue` sends `100 Continue` (unless
    /// a final response was already sent).
    pub fn read_body(&mut self, now: Now, buf: &mut [u8]) -> Result<BodyRead, ApiError> {
        let Some(exchange) = &mut self.exchange else {
            return Err(self.no_request_error());
        };
        if exchange.continue_pending {
            exchange.continue_pending = false;
            if matches!(exchange.response, ResponseState::Awaiting)
                && matches!(self.read, ReadState::Length(_) | ReadState::Chunked(_))
            {
                self.queue_output(now, b"HTTP/1.1 100 Continue\r\n\r\n");
            }
        }
        // A full buffer stops the peer; the idle clock restarts once reading
        // makes room, or a peer the application held back would time out.
        if self.unread().len() >= self.limits.input_buffer {
            self.body_progress = now.mono;
        }
        let mut filled = 0;
        match &mut self.read {
            ReadState::Length(remaining) => {
                let unread = &self.input[self.input_start..];
                let n = (*remaining).min(unread.len() as u64).min(buf.len() as u64) as usize;
                buf[..n].copy_from_slice(&unread[..n]);
                self.input_start += n;
                *remaining -= n as u64;
                filled = n;
                if *remaining == 0 {
                    self.read = ReadState::BodyDone;
                }
            }
            ReadState::Chunked(decoder) => loop {
                let unread = &self.input[self.input_start..];
                match decoder.step(unread, &self.limits) {
                    Ok(Step::Framing(n)) => self.input_start += n,
                    Ok(Step::Data(n)) => {
                        let n = n.min(buf.len() - filled);
                        buf[filled..filled + n].copy_from_slice(&unread[..n]);
                        decoder.consume_data(n);
                        self.input_start += n;
                        filled += n;
                        if filled == buf.len() {
                            break;
                        }
                    }
                    Ok(Step::NeedMore) => break,
                    Ok(Step::Done) => {
                        self.read = ReadState::BodyDone;
                        break;
                    }
                    Err(kind) => {
                        self.fail(now, kind);
                        return Ok(BodyRead::Failed(kind.into()));
                    }
                }
            },
            ReadState::Closed => return Err(ApiError::Closed),
            ReadState::BodyDone | ReadState::Head(_) => {}
        }
        Ok(if filled > 0 {
            BodyRead::Data(filled)
        } else if matches!(self.read, ReadState::BodyDone) {
            BodyRead::End
        } else {
            BodyRead::Pending
        })
    }

    // ----- output ------------------------------------------------------------

    /// Starts the response to the current request. The connection adds
    /// `Date` (from `now.wall`), the framing fields and `Connection`.
    pub fn send_response(&mut self, now: Now, head: ResponseHead) -> Result<(), ApiError> {
        let body_complete = matches!(self.read, ReadState::BodyDone) || self.body_fully_buffered();
        // After the peer's EOF, the last buffered request gets the close.
        let last_before_eof = self.peer_closed && !self.next_request_buffered();
        let exchange = self.exchange_awaiting_response()?;
        head.validate()?;
        let mut close = head.close || !exchange.keep_alive || exchange.close_after;
        // A body we have not received yet would be read as the next request.
        close |= !body_complete || last_before_eof;
        let (framing, field, declared) = if head.forbids_body() {
            (OutFraming::NoBody, FramingField::None, None)
        } else {
            match head.body {
                ResponseBody::Empty => (OutFraming::NoBody, FramingField::ContentLength(0), None),
                ResponseBody::Length(n) => {
                    (OutFraming::Length, FramingField::ContentLength(n), Some(n))
                }
                ResponseBody::Streamed if exchange.version == Version::Http11 => {
                    (OutFraming::Chunked, FramingField::Chunked, None)
                }
                ResponseBody::Streamed => {
                    close = true;
                    (OutFraming::UntilClose, FramingField::None, None)
                }
            }
        };
        let discard = exchange.is_head;
        let framing = if discard {
            OutFraming::Discard
        } else {
            framing
        };
        let connection = if close {
            Some("close")
        } else if exchange.version == Version::Http10 {
            Some("keep-alive")
        } else {
            None
        };
        exchange.close_after = close;
        exchange.continue_pending = false;
        exchange.response = ResponseState::Sending {
            framing,
            declared,
            sent: 0,
        };
        self.mark_output(now);
        if let (Some(length), false) = (declared, discard) {
            // A small body then joins its head in the same allocation (and
            // the same write), as much of it as may wait in the buffer.
            let room = self.limits.output_high_water;
            self.output
                .reserve(usize::try_from(length).map_or(room, |n| n.min(room)));
        }
        let date = self.date.get(now.wall);
        encode_head(&mut self.output, &head, date, field, connection);
        Ok(())
    }

    /// How many body bytes [`send_body`](Self::send_body) would take now.
    pub fn send_capacity(&self) -> usize {
        self.limits
            .output_high_water
            .saturating_sub(self.pending_output().len())
    }

    /// Queues body bytes of the current response. Returns how many were
    /// taken: fewer than offered when pending output is above the high-water
    /// mark; offer the rest after the adapter drained some output.
    pub fn send_body(&mut self, now: Now, data: &[u8]) -> Result<usize, ApiError> {
        let room = self.send_capacity();
        let exchange = self.exchange_sending()?;
        let ResponseState::Sending {
            framing,
            declared,
            sent,
        } = &mut exchange.response
        else {
            return Err(ApiError::ResponseNotStarted);
        };
        if let Some(declared) = *declared {
            let given = *sent + data.len() as u64;
            if given > declared {
                return Err(ApiError::BodyLengthMismatch { declared, given });
            }
        }
        let framing = *framing;
        let taken = match framing {
            OutFraming::NoBody if !data.is_empty() => return Err(ApiError::BodyNotAllowed),
            OutFraming::NoBody => 0,
            OutFraming::Discard => data.len(),
            _ => data.len().min(room),
        };
        *sent += taken as u64;
        if taken == 0 || framing == OutFraming::Discard {
            return Ok(taken);
        }
        self.mark_output(now);
        if framing == OutFraming::Chunked {
            let _ = write!(self.output, "{taken:x}\r\n");
            self.output.extend_from_slice(&data[..taken]);
            self.output.extend_from_slice(b"\r\n");
        } else {
            self.output.extend_from_slice(&data[..taken]);
        }
        Ok(taken)
    }

    /// Ends the current response. With keep-alive, the connection then reads
    /// the next request (which may already be buffered: drain events).
    pub fn finish_response(&mut self, now: Now) -> Result<(), ApiError> {
        let exchange = self.exchange_sending()?;
        let ResponseState::Sending {
            framing,
            declared,
            sent,
        } = exchange.response
        else {
            return Err(ApiError::ResponseNotStarted);
        };
        if framing == OutFraming::Length && Some(sent) != declared {
            return Err(ApiError::BodyLengthMismatch {
                declared: declared.unwrap_or(0),
                given: sent,
            });
        }
        let close = exchange.close_after;
        self.exchange = None;
        if framing == OutFraming::Chunked {
            self.mark_output(now);
            self.output.extend_from_slice(b"0\r\n\r\n");
        }
        let body_skipped = self.discard_rest_of_body();
        if close || !body_skipped {
            if self.peer_closed && body_skipped && !self.unread().is_empty() {
                // After EOF, what follows the last complete request is the
                // start of one that can never complete.
                self.events.push_back(Event::Error(Kind::Truncated.into()));
            }
            self.stop_reading();
            self.closing = true;
            return Ok(());
        }
        self.read = ReadState::Head(HeadScanner::default());
        self.fresh = false;
        self.idle_since = now.mono;
        self.head_started = None;
        self.advance_head(now, false);
        if self.peer_closed && self.exchange.is_none() && !self.closing {
            // EOF came earlier and no request is left (the response to the
            // last one already said close, so nothing partial is buffered).
            self.stop_reading();
            self.closing = true;
        }
        Ok(())
    }

    /// Bytes waiting to be sent to the peer.
    pub fn pending_output(&self) -> &[u8] {
        if self.aborted {
            return &[];
        }
        &self.output[self.output_start..]
    }

    /// Records that the first `n` bytes of [`pending_output`] were sent.
    ///
    /// [`pending_output`]: Self::pending_output
    pub fn advance_output(&mut self, now: Now, n: usize) {
        let n = n.min(self.output.len() - self.output_start);
        if n > 0 {
            self.output_progress = now.mono;
        }
        self.output_start += n;
        if self.output_start == self.output.len() {
            self.output.clear();
            self.output_start = 0;
            // Between requests, the connection is idle only once the last
            // response is sent: a slow download is not keep-alive idleness.
            if n > 0 && self.exchange.is_none() {
                self.idle_since = now.mono;
            }
        }
    }

    /// Whether there are bytes to send.
    pub fn wants_write(&self) -> bool {
        !self.pending_output().is_empty()
    }

    /// The next event, if any.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Whether the connection is finished: all output is sent (or dropped)
    /// and nothing more will be read. The adapter closes the socket.
    pub fn is_closed(&self) -> bool {
        self.aborted || (self.closing && self.pending_output().is_empty())
    }

    /// Whether the connection will close once its output is sent.
    pub fn is_closing(&self) -> bool {
        self.closing || self.aborted
    }

    /// Whether no request is in progress and nothing is buffered: a graceful
    /// shutdown may close the connection now.
    pub fn is_idle(&self) -> bool {
        self.exchange.is_none() && self.unread().is_empty() && self.pending_output().is_empty()
    }

    /// Frees the input and output buffers while the connection waits for
    /// its next request (they are allocated again when bytes come): an idle
    /// keep-alive connection then costs little more than this struct. Does
    /// nothing unless [`is_idle`](Self::is_idle).
    pub fn release_idle_buffers(&mut self) {
        if !self.is_idle() {
            return;
        }
        self.input = Vec::new();
        self.input_start = 0;
        self.output = Vec::new();
        self.output_start = 0;
        if self.events.is_empty() {
            self.events = VecDeque::new();
        }
    }

    /// Graceful shutdown: no further request will be read. An idle
    /// connection starts closing at once; one in the middle of a request
    /// finishes it (its response says `Connection: close` if it has not
    /// started yet) and then closes.
    pub fn close_when_done(&mut self) {
        match &mut self.exchange {
            Some(exchange) => exchange.close_after = true,
            None => {
                self.stop_reading();
                self.closing = true;
            }
        }
    }

    // ----- time --------------------------------------------------------------

    /// The next moment [`handle_timeout`](Self::handle_timeout) must be
    /// called, if any.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.is_closed() {
            return None;
        }
        let send = self
            .wants_write()
            .then(|| self.output_progress + self.limits.send_timeout);
        if self.closing {
            return send;
        }
        let read = match (&self.exchange, self.read) {
            (None, ReadState::Head(_)) => Some(match self.head_started {
                Some(started) => started + self.limits.head_timeout,
                None if self.fresh => self.idle_since + self.limits.head_timeout,
                None => self.idle_since + self.limits.keep_alive_timeout,
            }),
            (Some(_), ReadState::Length(_) | ReadState::Chunked(_))
                if !self.body_fully_buffered() && self.wants_read() =>
            {
                Some(self.body_progress + self.limits.body_idle_timeout)
            }
            _ => None,
        };
        match (send, read) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Applies every deadline that has passed at `now`.
    pub fn handle_timeout(&mut self, now: Now) {
        let Some(deadline) = self.poll_timeout() else {
            return;
        };
        if now.mono < deadline {
            return;
        }
        if self.wants_write() && now.mono >= self.output_progress + self.limits.send_timeout {
            // The peer stopped reading: nothing more can reach it. Drop the
            // exchange too, so the application gets `Closed` instead of
            // queueing body bytes that would pile up unsent.
            self.aborted = true;
            self.closing = true;
            self.exchange = None;
            self.output.clear();
            self.output_start = 0;
            self.stop_reading();
            return;
        }
        match (&self.exchange, self.read) {
            (None, ReadState::Head(_)) if self.head_started.is_some() => {
                self.fail(now, Kind::Timeout)
            }
            // Idle between requests: close quietly (RFC 9112 §9.5).
            (None, ReadState::Head(_)) => {
                self.stop_reading();
                self.closing = true;
            }
            (Some(_), ReadState::Length(_) | ReadState::Chunked(_)) => {
                self.fail(now, Kind::Timeout)
            }
            _ => {}
        }
    }

    // ----- internals ---------------------------------------------------------

    fn unread(&self) -> &[u8] {
        &self.input[self.input_start..]
    }

    /// Parses the next head if no request is in progress and one is buffered.
    /// `tried_whole`: [`receive`](Self::receive) already tried to parse the
    /// unread bytes as a whole head, in vain.
    fn advance_head(&mut self, now: Now, tried_whole: bool) {
        if self.exchange.is_some() || self.closing {
            return;
        }
        let ReadState::Head(mut scanner) = self.read else {
            return;
        };
        let unread_from = self.input_start;
        // RFC 9112 §2.2: ignore empty lines before a request line.
        if self.head_started.is_none() {
            while self.unread().starts_with(b"\r\n") {
                self.input_start += 2;
            }
            if self.unread().is_empty() || self.unread() == b"\r" {
                return;
            }
            self.head_started = Some(now.mono);
        }
        let start = self.input_start;
        // Most heads arrive in one read: parse them directly, without a
        // scan for their end first. Tried once per head (again here only if
        // empty lines were stripped since), so a head that trickles in is
        // still looked at byte by byte only once.
        let whole = if scanner.is_fresh() && !(tried_whole && start == unread_from) {
            parse_whole_head(&self.input[start..], &self.limits)
        } else {
            None
        };
        let (len, parsed) = match whole {
            Some((len, request)) => (len, Ok(request)),
            None => {
                let found = scanner.scan(&self.input[start..], &self.limits);
                self.read = ReadState::Head(scanner);
                match found {
                    Ok(Some(len)) => (
                        len,
                        parse_head(&self.input[start..start + len], &self.limits),
                    ),
                    Ok(None) => return,
                    Err(kind) => return self.fail(now, kind),
                }
            }
        };
        let request = match parsed {
            Ok(request) => request,
            Err(kind) => return self.fail(now, kind),
        };
        self.input_start += len;
        self.accept_request(now, request);
    }

    /// Whether the next byte received starts a new head: no request in
    /// progress, nothing of the next head seen yet.
    fn awaits_fresh_head(&self) -> bool {
        self.exchange.is_none()
            && !self.closing
            && self.head_started.is_none()
            && matches!(self.read, ReadState::Head(scanner) if scanner.is_fresh())
    }

    /// A valid head was read (and taken out of the input): hand the request
    /// out and read its body.
    #[inline(always)]
    fn accept_request(&mut self, now: Now, request: Request) {
        self.head_started = None;
        self.body_progress = now.mono;
        self.read = match request.body() {
            RequestBody::None => ReadState::BodyDone,
            RequestBody::Length(n) => ReadState::Length(n),
            RequestBody::Chunked => ReadState::Chunked(ChunkedDecoder::default()),
        };
        if self.peer_closed && !self.body_fully_buffered() {
            // A request pipelined before the peer's EOF, whose body never
            // came whole: it can never be read.
            return self.fail(now, Kind::Truncated);
        }
        self.exchange = Some(Exchange {
            is_head: request.is_head(),
            version: request.version(),
            keep_alive: request.wants_keep_alive(),
            continue_pending: request.expects_continue(),
            close_after: false,
            response: ResponseState::Awaiting,
        });
        self.events.push_back(Event::Request(request));
    }

    /// The peer broke the protocol: report it, answer it if no response has
    /// started, and close.
    fn fail(&mut self, now: Now, kind: Kind) {
        let error = ProtocolError::from(kind);
        self.events.push_back(Event::Error(error));
        let answer = match &self.exchange {
            None => Some(false),
            Some(ex) if matches!(ex.response, ResponseState::Awaiting) => Some(ex.is_head),
            Some(_) => None,
        };
        if let Some(is_head) = answer {
            let status = error.status();
            let body = format!("{status} {}\n", reason_phrase(status));
            let head = ResponseHead::new(status)
                .header("Content-Type", "text/plain; charset=utf-8")
                .header("Cache-Control", "no-store")
                .header("X-Content-Type-Options", "nosniff");
            self.mark_output(now);
            let date = self.date.get(now.wall);
            encode_head(
                &mut self.output,
                &head,
                date,
                FramingField::ContentLength(body.len() as u64),
                Some("close"),
            );
            if !is_head {
                self.output.extend_from_slice(body.as_bytes());
            }
        }
        self.exchange = None;
        self.stop_reading();
        self.closing = true;
    }

    fn stop_reading(&mut self) {
        self.read = ReadState::Closed;
        self.input.clear();
        self.input_start = 0;
    }

    /// Whether the rest of the current request body is already buffered.
    fn body_fully_buffered(&self) -> bool {
        match self.read {
            ReadState::Length(remaining) => remaining <= self.unread().len() as u64,
            ReadState::Chunked(mut decoder) => {
                let mut at = 0;
                loop {
                    match decoder.step(&self.unread()[at..], &self.limits) {
                        Ok(Step::Framing(n)) => at += n,
                        Ok(Step::Data(n)) => {
                            decoder.consume_data(n);
                            at += n;
                        }
                        Ok(Step::Done) => return true,
                        Ok(Step::NeedMore) | Err(_) => return false,
                    }
                }
            }
            ReadState::BodyDone => true,
            ReadState::Head(_) | ReadState::Closed => false,
        }
    }

    /// Whether a complete request head follows the current request's
    /// (completely read) body in the buffer.
    fn next_request_buffered(&self) -> bool {
        if !matches!(self.read, ReadState::BodyDone) {
            return false;
        }
        let mut rest = self.unread();
        while let Some(after) = rest.strip_prefix(b"\r\n") {
            rest = after;
        }
        matches!(HeadScanner::default().scan(rest, &self.limits), Ok(Some(_)))
    }

    /// Skips the unread rest of the finished request's body. False if it
    /// is not all buffered or is malformed.
    fn discard_rest_of_body(&mut self) -> bool {
        loop {
            let unread = &self.input[self.input_start..];
            match self.read {
                ReadState::BodyDone => return true,
                ReadState::Length(remaining) => {
                    if remaining > unread.len() as u64 {
                        return false;
                    }
                    self.input_start += remaining as usize;
                    self.read = ReadState::BodyDone;
                }
                ReadState::Chunked(mut decoder) => {
                    match decoder.step(unread, &self.limits) {
                        Ok(Step::Framing(n)) => self.input_start += n,
                        Ok(Step::Data(n)) => {
                            decoder.consume_data(n);
                            self.input_start += n;
                        }
                        Ok(Step::Done) => {}
                        Ok(Step::NeedMore) | Err(_) => return false,
                    }
                    self.read = if decoder.is_done() {
                        ReadState::BodyDone
                    } else {
                        ReadState::Chunked(decoder)
                    };
                }
                ReadState::Head(_) | ReadState::Closed => return false,
            }
        }
    }

    fn exchange_awaiting_response(&mut self) -> Result<&mut Exchange, ApiError> {
        let error = self.no_request_error();
        match &mut self.exchange {
            None => Err(error),
            Some(ex) if matches!(ex.response, ResponseState::Sending { .. }) => {
                Err(ApiError::ResponseAlreadyStarted)
            }
            Some(ex) => Ok(ex),
        }
    }

    fn exchange_sending(&mut self) -> Result<&mut Exchange, ApiError> {
        let error = self.no_request_error();
        match &mut self.exchange {
            None => Err(error),
            Some(ex) if matches!(ex.response, ResponseState::Awaiting) => {
                Err(ApiError::ResponseNotStarted)
            }
            Some(ex) => Ok(ex),
        }
    }

    fn no_request_error(&self) -> ApiError {
        if self.closing || self.aborted {
            ApiError::Closed
        } else {
            ApiError::NoRequest
        }
    }

    /// Starts the send-stall clock when output goes from empty to pending.
    fn mark_output(&mut self, now: Now) {
        if self.pending_output().is_empty() {
            self.output_progress = now.mono;
        }
    }

    fn queue_output(&mut self, now: Now, bytes: &[u8]) {
        self.mark_output(now);
        self.output.extend_from_slice(bytes);
    }
}
