//! The checks behind every fuzz target, in one plain file that depends only on
//! std and `portcullis_core`. The fuzz crate exposes it as its library, and
//! `tests/fuzz_seeds.rs` compiles the same file on stable (with `#[path]`) to
//! run every target's seeds as an ordinary test, so the targets cannot rot.
//!
//! Each check panics on a finding: a panic inside the engine, a broken
//! invariant, a loop that stops making progress, or two ways of feeding the
//! same bytes that disagree. Every input runs under two limit profiles: the
//! defaults, and a tight profile whose limits a short fuzz input can reach, so
//! the edges of each limit get explored too.

use std::time::{Duration, Instant, SystemTime};

#[path = "guard_ops.rs"]
mod guard_ops;
pub use guard_ops::guard_ops;

use portcullis_core::{
    ApiError, BodyRead, Connection, Event, Limits, Now, ProtocolErrorKind, Request, RequestBody,
    ResponseBody, ResponseHead, Version,
};

/// Longer inputs are cut here: enough for every limit of both profiles, and
/// short enough that feeding byte by byte stays fast and within the deadlines.
const MAX_INPUT: usize = 64 * 1024;

/// Virtual time that passes per delivery of input. Even `MAX_INPUT` single
/// bytes stay well inside the shortest deadline (10 s), so no split of the
/// input can trip a deadline that another split does not.
const STEP: Duration = Duration::from_micros(50);

/// Guard for every loop that waits for the engine to make progress.
const ROUNDS: usize = 1_000_000;

/// The head the `chunked` target puts before its input.
pub const CHUNKED_HEAD: &[u8] = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";

// ----- the targets -------------------------------------------------------------

/// `request_head`: the input is the start of a connection. Fed whole and fed
/// byte by byte, the first thing that comes out must be the same: a request
/// whose accessors agree with its raw head, an error answered with its status
/// and then a close, or nothing (and then the input holds no complete head).
pub fn request_head(data: &[u8]) {
    let data = &data[..data.len().min(MAX_INPUT)];
    for limits in profiles() {
        let whole = first_outcome(data, &limits, false);
        let bytes = first_outcome(data, &limits, true);
        if whole != bytes {
            panic!(
                "fed whole and fed byte by byte disagree\ninput: {}\nwhole: {whole:?}\nbytes: {bytes:?}",
                escape(data)
            );
        }
        match &whole.event {
            Some(Event::Request(request)) => {
                let head = skip_empty_lines(data);
                assert!(
                    head.starts_with(request.raw_head()),
                    "raw_head is not the input's head: {}",
                    escape(request.raw_head())
                );
                check_request(request, &limits);
                assert!(whole.output.is_empty() && !whole.closing);
            }
            Some(Event::Error(error)) => {
                let status_line = format!("HTTP/1.1 {} ", error.status());
                assert!(
                    whole.output.starts_with(status_line.as_bytes()),
                    "{error:?} not answered with {status_line:?}: {}",
                    escape(&whole.output)
                );
                assert!(contains(&whole.output, b"\r\nConnection: close\r\n"));
                assert!(whole.closing && whole.closed_after_drain);
            }
            Some(Event::BodyReadable) => panic!("a body event before any request"),
            None => {
                // Nothing came out, so the input must not hold a complete
                // head, a bare LF, or more than the limits allow.
                let head = skip_empty_lines(data);
                assert!(whole.output.is_empty() && !whole.closing);
                assert!(!contains(head, b"\r\n\r\n"), "a complete head was missed");
                assert!(
                    head.iter()
                        .enumerate()
                        .all(|(i, &b)| b != b'\n' || i > 0 && head[i - 1] == b'\r'),
                    "a bare LF was missed"
                );
                assert!(head.len() <= limits.max_head_bytes);
                if !head.contains(&b'\n') {
                    assert!(head.len() <= limits.max_request_line + 2);
                }
            }
        }
    }
}

/// `connection`: the input is everything a peer sends on one connection,
/// answered by a small deterministic application (see `Style`). Fed whole,
/// byte by byte, in two pieces and in ragged pieces, it must give the same
/// events (requests, whole bodies, errors) and the same output bytes; the
/// requests and bodies must tile the input; and after the peer's end of
/// stream (or a long idle time) the connection must be closed.
///
/// The `Early` application answers before reading bodies, so the engine
/// itself must skip each unread body to find the next request (or close).
/// Whether that body is all buffered when the answer starts depends on the
/// split, so only the whole feed is checked, for the same tiling and one
/// answer per request.
pub fn connection(data: &[u8]) {
    let data = &data[..data.len().min(MAX_INPUT)];
    for limits in profiles() {
        for ending in [Ending::Eof, Ending::Timeout] {
            for style in [Style::Prompt, Style::Lazy] {
                let splits = splits(data);
                let runs: Vec<Run> = splits
                    .iter()
                    .map(|&split| run_connection(data, &limits, split, ending, style))
                    .collect();
                for (split, run) in splits.iter().zip(&runs).skip(1) {
                    if *run != runs[0] {
                        panic!(
                            "fed {split:?} and fed whole disagree ({style:?}, {ending:?}, max_head_bytes {})\ninput: {}\nwhole: {}\n{split:?}: {}",
                            limits.max_head_bytes,
                            escape(data),
                            runs[0].show(),
                            run.show()
                        );
                    }
                }
                check_run(data, &limits, &runs[0], style);
            }
            let early = run_connection(data, &limits, Split::Whole, ending, Style::Early);
            check_run(data, &limits, &early, Style::Early);
        }
    }
}

/// `chunked`: the input is a chunked body after a fixed head. The engine (fed
/// whole, byte by byte, in two pieces and in ragged pieces) and the reference
/// decoder below must reach the same verdict and the same body bytes.
pub fn chunked(data: &[u8]) {
    let data = &data[..data.len().min(MAX_INPUT)];
    for limits in profiles() {
        let (expected, _) = reference_chunked(data, &limits);
        for split in splits(data) {
            let got = engine_chunked(data, &limits, split);
            if got != expected {
                panic!(
                    "engine and reference disagree (fed {split:?}, max_chunk_line {})\ninput: {}\nengine:    {}\nreference: {}",
                    limits.max_chunk_line,
                    escape(data),
                    got.show(),
                    expected.show()
                );
            }
        }
    }
}

// ----- shared pieces -------------------------------------------------------------

/// The default limits, and a tight profile that short inputs can exceed.
fn profiles() -> [Limits; 2] {
    let tight = Limits {
        max_request_line: 40,
        max_head_bytes: 120,
        max_headers: 4,
        max_body: 100,
        max_chunk_line: 12,
        max_trailer_bytes: 30,
        input_buffer: 160,
        output_high_water: 64,
        ..Limits::default()
    };
    [Limits::default(), tight]
}

/// Virtual time. The wall clock stays fixed so the `Date` header does not
/// depend on how many deliveries the input took.
struct Clock {
    base: Instant,
    elapsed: Duration,
}

impl Clock {
    fn new() -> Self {
        Clock {
            base: Instant::now(),
            elapsed: Duration::ZERO,
        }
    }

    fn now(&self) -> Now {
        let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        Now::new(self.base + self.elapsed, wall)
    }

    fn tick(&mut self) {
        self.elapsed += STEP;
    }
}

/// How the input is cut into deliveries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Split {
    Whole,
    Bytes,
    /// Two pieces, cut here.
    At(usize),
    /// Pieces of 1 to 13 bytes, sizes taken from the input itself.
    Ragged,
}

/// Every split the targets compare; the first is `Whole`.
fn splits(data: &[u8]) -> [Split; 4] {
    let sum = data
        .iter()
        .fold(0usize, |s, &b| s.wrapping_mul(31) ^ usize::from(b));
    [
        Split::Whole,
        Split::Bytes,
        Split::At(sum % (data.len() + 1)),
        Split::Ragged,
    ]
}

fn pieces(data: &[u8], split: Split) -> Vec<&[u8]> {
    match split {
        Split::Whole => vec![data],
        Split::Bytes => data.chunks(1).collect(),
        Split::At(at) => {
            let (a, b) = data.split_at(at.min(data.len()));
            vec![a, b]
        }
        Split::Ragged => {
            let mut out = Vec::new();
            let mut rest = data;
            while let Some(&first) = rest.first() {
                let (piece, tail) = rest.split_at((1 + usize::from(first) % 13).min(rest.len()));
                out.push(piece);
                rest = tail;
            }
            out
        }
    }
}

/// The input after the empty lines a server ignores before a request line.
fn skip_empty_lines(mut data: &[u8]) -> &[u8] {
    while let Some(rest) = data.strip_prefix(b"\r\n") {
        data = rest;
    }
    data
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn count(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle)
        .count()
}

fn escape(bytes: &[u8]) -> String {
    format!("\"{}\"", bytes.escape_ascii())
}

/// RFC 9110 token characters, written out again rather than borrowed from
/// the engine.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// HTAB, SP, VCHAR or obs-text: what a field value may hold.
fn is_value_byte(b: u8) -> bool {
    b == b'\t' || (b >= b' ' && b != 0x7f)
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

/// `1*DIGIT` as a u64, nothing else (no sign, no spaces, no overflow).
fn decimal(value: &[u8]) -> Option<u64> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

// ----- request accessors ---------------------------------------------------------

/// Everything a request's accessors say must agree with its raw head and
/// with the strict framing rules it passed.
fn check_request(request: &Request, limits: &Limits) {
    let raw = request.raw_head();
    let method = request.method();
    let target = request.target();
    let version = request.version();
    let what = escape(raw);

    let line = format!("{method} {target} {}\r\n", version.as_str());
    assert!(
        raw.starts_with(line.as_bytes()),
        "request line is not {line:?}: {what}"
    );
    assert!(
        raw.ends_with(b"\r\n\r\n"),
        "head does not end the head: {what}"
    );
    assert!(
        line.len() - 2 <= limits.max_request_line,
        "request line over the limit: {what}"
    );
    assert!(
        raw.len() <= limits.max_head_bytes,
        "head over the limit: {what}"
    );
    assert!(
        !method.is_empty() && method.bytes().all(is_tchar),
        "method: {what}"
    );
    // Visible ASCII, or raw UTF-8 (a `&str` is valid UTF-8 by its type).
    assert!(
        !target.is_empty() && target.bytes().all(|b| b > b' ' && b != 0x7f),
        "target: {what}"
    );

    // Target form, path and query.
    let lower = target.to_ascii_lowercase();
    let absolute = lower.starts_with("http://") || lower.starts_with("https://");
    assert!(
        target.starts_with('/') || absolute || (target == "*" && method == "OPTIONS"),
        "target form: {what}"
    );
    let (before_query, query) = match target.split_once('?') {
        Some((before, query)) => (before, Some(query)),
        None => (target, None),
    };
    assert_eq!(request.query(), query, "query: {what}");
    let mut target_authority = None;
    let expected_path = if absolute {
        let after_scheme = &before_query[before_query.find("://").map_or(0, |i| i + 3)..];
        let authority_end = after_scheme.find('/').unwrap_or(after_scheme.len());
        let authority = &after_scheme[..authority_end];
        assert!(
            !authority.is_empty() && authority.is_ascii() && !authority.contains('@'),
            "absolute-form authority: {what}"
        );
        target_authority = Some(authority);
        after_scheme
            .get(authority_end..)
            .filter(|p| !p.is_empty())
            .unwrap_or("/")
    } else {
        before_query
    };
    assert_eq!(request.path(), expected_path, "path: {what}");

    // Header fields, checked against the raw lines they came from.
    let fields: Vec<(&str, &[u8])> = request.headers().collect();
    assert!(fields.len() <= limits.max_headers, "field count: {what}");
    let section = &raw[line.len()..raw.len() - 2];
    let mut lines = Vec::new();
    let mut rest = section;
    while let Some(end) = rest.windows(2).position(|w| w == b"\r\n") {
        lines.push(&rest[..end]);
        rest = &rest[end + 2..];
    }
    assert!(
        rest.is_empty(),
        "field section does not end in CRLF: {what}"
    );
    assert_eq!(lines.len(), fields.len(), "field lines vs fields: {what}");
    for (line, &(name, value)) in lines.iter().zip(&fields) {
        assert!(
            !name.is_empty() && name.bytes().all(is_tchar),
            "field name: {what}"
        );
        assert!(
            value.iter().all(|&b| is_value_byte(b)),
            "field value byte: {what}"
        );
        assert_eq!(trim_ows(value), value, "field value whitespace: {what}");
        assert!(
            line.starts_with(name.as_bytes())
                && line.get(name.len()) == Some(&b':')
                && trim_ows(&line[name.len() + 1..]) == value,
            "field {name:?} does not match its line {}: {what}",
            escape(line)
        );
        let first = fields.iter().find(|(n, _)| n.eq_ignore_ascii_case(name));
        assert_eq!(request.header(name), first.map(|f| f.1), "header(): {what}");
    }
    let named = |wanted: &str| -> Vec<&[u8]> {
        fields
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(wanted))
            .map(|f| f.1)
            .collect()
    };

    // Host: exactly one on HTTP/1.1, at most one on HTTP/1.0.
    let hosts = named("host");
    match version {
        Version::Http11 => assert_eq!(hosts.len(), 1, "Host count: {what}"),
        Version::Http10 => assert!(hosts.len() <= 1, "Host count: {what}"),
    }
    assert_eq!(
        request.host().map(str::as_bytes),
        hosts.first().copied(),
        "host(): {what}"
    );
    // With an absolute-form target, a Host field must name the same site.
    if let (Some(authority), Some(host)) = (target_authority, hosts.first()) {
        assert!(
            host.eq_ignore_ascii_case(authority.as_bytes()),
            "Host differs from the target's authority: {what}"
        );
    }
    // No field name spells a framing field behind punctuation or case
    // (`Content_Length`), which another hop could take for the real one.
    for (name, _) in &fields {
        let letters: String = name
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_lowercase())
            .collect();
        for (skeleton, real) in [
            ("contentlength", "content-length"),
            ("transferencoding", "transfer-encoding"),
            ("host", "host"),
        ] {
            assert!(
                letters != skeleton || name.eq_ignore_ascii_case(real),
                "disguised {real} field {name:?} accepted: {what}"
            );
        }
    }

    // Body framing, by the strict rules the request passed.
    let lengths = named("content-length");
    let codings = named("transfer-encoding");
    match request.body() {
        RequestBody::Chunked => {
            assert_eq!(version, Version::Http11, "chunked on HTTP/1.0: {what}");
            assert!(lengths.is_empty(), "Content-Length with chunked: {what}");
            let all: Vec<&[u8]> = codings
                .iter()
                .flat_map(|v| v.split(|&b| b == b','))
                .map(trim_ows)
                .collect();
            assert!(
                all.len() == 1 && all[0].eq_ignore_ascii_case(b"chunked"),
                "Transfer-Encoding is not exactly chunked: {what}"
            );
        }
        RequestBody::Length(n) => {
            assert!(
                codings.is_empty(),
                "Transfer-Encoding with a length: {what}"
            );
            assert_eq!(lengths.len(), 1, "Content-Length count: {what}");
            assert_eq!(decimal(lengths[0]), Some(n), "Content-Length value: {what}");
            assert!(
                n > 0 && n <= limits.max_body,
                "Content-Length range: {what}"
            );
        }
        RequestBody::None => {
            assert!(
                codings.is_empty(),
                "Transfer-Encoding without a body: {what}"
            );
            assert!(lengths.len() <= 1, "Content-Length count: {what}");
            if let Some(value) = lengths.first() {
                assert_eq!(decimal(value), Some(0), "Content-Length value: {what}");
            }
        }
    }

    // GET, HEAD and TRACE carry no content (a hop that ignores it would read
    // it as the next request).
    if matches!(method, "GET" | "HEAD" | "TRACE") {
        assert_eq!(
            request.body(),
            RequestBody::None,
            "content on {method}: {what}"
        );
    }

    // Expect and Connection.
    let expects = named("expect");
    assert!(
        expects
            .iter()
            .all(|v| v.eq_ignore_ascii_case(b"100-continue")),
        "unsupported Expect accepted: {what}"
    );
    assert_eq!(
        request.expects_continue(),
        version == Version::Http11 && !expects.is_empty(),
        "expects_continue(): {what}"
    );
    let options: Vec<&[u8]> = named("connection")
        .into_iter()
        .flat_map(|v| v.split(|&b| b == b','))
        .map(trim_ows)
        .collect();
    let close = options.iter().any(|o| o.eq_ignore_ascii_case(b"close"));
    let keep_alive = options
        .iter()
        .any(|o| o.eq_ignore_ascii_case(b"keep-alive"));
    assert_eq!(
        request.wants_keep_alive(),
        !close && (version == Version::Http11 || keep_alive),
        "wants_keep_alive(): {what}"
    );
}

// ----- request_head: the first thing out of a connection ------------------------

#[derive(PartialEq, Eq)]
struct FirstOutcome {
    event: Option<Event>,
    output: Vec<u8>,
    closing: bool,
    closed_after_drain: bool,
}

impl std::fmt::Debug for FirstOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let event = match &self.event {
            Some(Event::Request(r)) => format!("request {}", escape(r.raw_head())),
            other => format!("{other:?}"),
        };
        write!(
            f,
            "{event}, output {}, closing {}, closed after drain {}",
            escape(&self.output),
            self.closing,
            self.closed_after_drain
        )
    }
}

/// Feeds `data` (whole, or byte by byte) until the connection says something.
fn first_outcome(data: &[u8], limits: &Limits, bytes: bool) -> FirstOutcome {
    let clock = Clock::new();
    let mut conn = Connection::new(clock.now(), limits.clone());
    let mut event = None;
    let deliveries = if bytes {
        pieces(data, Split::Bytes)
    } else {
        vec![data]
    };
    'feed: for piece in deliveries {
        let mut rest = piece;
        while !rest.is_empty() && conn.wants_read() {
            let taken = conn.receive(clock.now(), rest);
            assert!(taken <= rest.len(), "receive took more than offered");
            rest = &rest[taken..];
            event = conn.poll_event();
            if event.is_some() {
                break 'feed;
            }
            assert!(
                taken > 0,
                "the input buffer filled up without a head or an error"
            );
        }
    }
    if matches!(event, Some(Event::Error(_))) {
        assert_eq!(conn.poll_event(), None, "an event after the error");
    }
    if let Some(Event::Request(_)) = event {
        while let Some(more) = conn.poll_event() {
            assert_eq!(more, Event::BodyReadable, "a second event before an answer");
        }
    }
    let output = conn.pending_output().to_vec();
    let closing = conn.is_closing();
    conn.advance_output(clock.now(), output.len());
    FirstOutcome {
        event,
        output,
        closing,
        closed_after_drain: conn.is_closed(),
    }
}

// ----- connection: a whole conversation --------------------------------------------

/// What happened on the connection, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Seen {
    Request(Request),
    /// The whole body of the request before it, once read to its end. (A body
    /// that fails part-way is not recorded: how much of it came out first
    /// depends on how the input was split.)
    Body(Vec<u8>),
    Error(ProtocolErrorKind),
}

#[derive(Clone, Copy, Debug)]
enum Ending {
    /// The peer closes its side after the input.
    Eof,
    /// The peer goes quiet for an hour.
    Timeout,
}

/// How the application behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Style {
    /// Runs after every delivery; reads each body to its end, then answers.
    Prompt,
    /// Runs only when the input buffer is full, and after the end of the
    /// input: requests pile up, and the EOF or the idle time comes while some
    /// are still unanswered. Reads each body to its end, then answers.
    /// (Output is still drained after every delivery.)
    Lazy,
    /// Runs after every delivery; answers each request as soon as it comes,
    /// never reading its body.
    Early,
}

#[derive(Debug, PartialEq, Eq)]
struct Run {
    seen: Vec<Seen>,
    output: Vec<u8>,
}

impl Run {
    fn show(&self) -> String {
        let mut out = String::new();
        for seen in &self.seen {
            match seen {
                Seen::Request(r) => out += &format!("\n  request {}", escape(r.raw_head())),
                Seen::Body(b) => out += &format!("\n  body {}", escape(b)),
                Seen::Error(k) => out += &format!("\n  error {k:?}"),
            }
        }
        out + &format!("\n  output {}", escape(&self.output))
    }
}

/// The deterministic application: reads every body to its end (or not at
/// all, see `Style`), then answers with one of three fixed responses (in
/// turn), draining output as it goes.
struct App {
    conn: Connection,
    style: Style,
    clock: Clock,
    seen: Vec<Seen>,
    output: Vec<u8>,
    /// The body read so far of the request being answered.
    current: Option<Vec<u8>>,
    answered: usize,
}

impl App {
    fn new(limits: &Limits, style: Style) -> Self {
        let clock = Clock::new();
        App {
            conn: Connection::new(clock.now(), limits.clone()),
            style,
            clock,
            seen: Vec::new(),
            output: Vec::new(),
            current: None,
            answered: 0,
        }
    }

    /// Delivers one piece, as a driver would: only while the connection wants
    /// to read, running the application after every call.
    fn deliver(&mut self, mut piece: &[u8]) {
        for _ in 0..ROUNDS {
            if piece.is_empty() {
                return;
            }
            if !self.conn.wants_read() {
                if self.conn.is_closing() {
                    return; // A driver stops reading; the rest is never read.
                }
                assert!(
                    self.pump(),
                    "the input buffer is full and nothing drains it"
                );
                continue;
            }
            let taken = self.conn.receive(self.clock.now(), piece);
            assert!(taken <= piece.len(), "receive took more than offered");
            piece = &piece[taken..];
            // The socket is written after every delivery; only a lazy
            // application leaves the requests for later.
            let progress = match self.style {
                Style::Lazy => self.drain_output(),
                Style::Prompt | Style::Early => self.pump(),
            };
            assert!(
                taken > 0 || progress,
                "receive took nothing while wanting to read"
            );
            self.clock.tick();
            self.conn.handle_timeout(self.clock.now());
        }
        panic!("delivering one piece never ended");
    }

    /// Runs events, body reads, answers and output until nothing moves.
    /// Returns whether anything did.
    fn pump(&mut self) -> bool {
        let mut any = false;
        for _ in 0..ROUNDS {
            let mut progress = false;
            while let Some(event) = self.conn.poll_event() {
                progress = true;
                match event {
                    Event::Request(request) => {
                        assert!(
                            self.current.is_none(),
                            "a request was handed out before the previous one was answered"
                        );
                        self.seen.push(Seen::Request(request));
                        match self.style {
                            Style::Prompt | Style::Lazy => self.current = Some(Vec::new()),
                            Style::Early => self.answer(),
                        }
                    }
                    Event::BodyReadable => {}
                    Event::Error(error) => self.seen.push(Seen::Error(error.kind())),
                }
            }
            progress |= self.read_and_answer();
            progress |= self.drain_output();
            if !progress {
                return any;
            }
            any = true;
        }
        panic!("the application never ran out of work");
    }

    fn read_and_answer(&mut self) -> bool {
        let Some(body) = &mut self.current else {
            return false;
        };
        let mut buf = [0u8; 61];
        let mut progress = false;
        for _ in 0..64 {
            match self.conn.read_body(self.clock.now(), &mut buf) {
                Ok(BodyRead::Data(n)) => {
                    assert!(n > 0 && n <= buf.len(), "read_body said Data({n})");
                    body.extend_from_slice(&buf[..n]);
                    progress = true;
                }
                Ok(BodyRead::Pending) => return progress,
                Ok(BodyRead::End) => {
                    let body = std::mem::take(body);
                    self.seen.push(Seen::Body(body));
                    self.current = None;
                    self.answer();
                    return true;
                }
                Ok(BodyRead::Failed(_)) | Err(ApiError::Closed) => {
                    // The Error event says what; the connection is closing.
                    assert!(self.conn.is_closing(), "body failed but not closing");
                    self.current = None;
                    return true;
                }
                Err(other) => panic!("read_body: {other}"),
            }
        }
        progress
    }

    fn answer(&mut self) {
        let now = self.clock.now();
        let turn = self.answered % 3;
        self.answered += 1;
        let ok = || ResponseHead::new(200).header("Content-Type", "text/plain");
        let (head, body): (_, &[u8]) = match turn {
            0 => (ok().body(ResponseBody::Length(2)), b"ok"),
            1 => (ok().body(ResponseBody::Streamed), b"ok"),
            _ => (ResponseHead::new(404), b""),
        };
        if let Err(e) = self.conn.send_response(now, head) {
            panic!("send_response after the whole body was read: {e}");
        }
        let mut rest = body;
        for _ in 0..16 {
            if rest.is_empty() {
                break;
            }
            match self.conn.send_body(now, rest) {
                Ok(n) => rest = &rest[n..],
                Err(e) => panic!("send_body: {e}"),
            }
            self.drain_output(); // Backpressure: room comes from draining.
        }
        assert!(rest.is_empty(), "send_body never took the body");
        if let Err(e) = self.conn.finish_response(now) {
            panic!("finish_response: {e}");
        }
    }

    fn drain_output(&mut self) -> bool {
        let pending = self.conn.pending_output();
        if pending.is_empty() {
            return false;
        }
        let n = pending.len();
        self.output.extend_from_slice(pending);
        self.conn.advance_output(self.clock.now(), n);
        true
    }

    fn end(&mut self, ending: Ending) {
        match ending {
            Ending::Eof => {
                self.conn.receive_eof(self.clock.now());
                self.pump();
            }
            // Two quiet hours: a lazy application answers what piled up
            // after the first, and the connection idles through the second.
            Ending::Timeout => {
                for hour in 0..2 {
                    self.clock.elapsed += Duration::from_secs(3600);
                    let now = self.clock.now();
                    if self.style != Style::Lazy || hour > 0 {
                        let deadline = self.conn.poll_timeout();
                        assert!(
                            self.conn.is_closed() || deadline.is_some_and(|d| d <= now.mono),
                            "an open connection with no deadline within the hour"
                        );
                    }
                    self.conn.handle_timeout(now);
                    self.pump();
                }
            }
        }
    }
}

fn run_connection(data: &[u8], limits: &Limits, split: Split, ending: Ending, style: Style) -> Run {
    let mut app = App::new(limits, style);
    for piece in pieces(data, split) {
        app.deliver(piece);
    }
    app.end(ending);
    let closed = app.conn.is_closed();
    let deadline = app.conn.poll_timeout();
    let run = Run {
        seen: app.seen,
        output: app.output,
    };
    // With every request answered and the peer gone (or silent for hours),
    // nothing is left to wait for.
    assert!(
        closed && deadline.is_none(),
        "still open (deadline {deadline:?}) after {ending:?} ({style:?}, fed {split:?}, max_head_bytes {})\ninput: {}{}",
        limits.max_head_bytes,
        escape(data),
        run.show()
    );
    run
}

/// Checks one run on its own: the shape of the event sequence, one answer
/// per request, the error response, and that requests and bodies tile the
/// input exactly (a body the application skipped included).
fn check_run(data: &[u8], limits: &Limits, run: &Run, style: Style) {
    let what = || format!("input {}:{}", escape(data), run.show());
    // Where the body of a request starting at `at` ends, by the request's
    // framing and the reference decoder.
    let body_end = |request: &Request, at: usize| -> usize {
        match request.body() {
            RequestBody::None => at,
            RequestBody::Length(n) => at + n as usize,
            RequestBody::Chunked => match reference_chunked(&data[at..], limits) {
                (Verdict::Body(_), used) => at + used,
                (other, _) => panic!(
                    "engine got past a chunked body the reference calls {}: {}",
                    other.show(),
                    what()
                ),
            },
        }
    };
    let mut requests = 0;
    let mut bodies = 0;
    let mut at = 0;
    let mut open: Option<&Request> = None;
    for (i, seen) in run.seen.iter().enumerate() {
        match seen {
            Seen::Request(request) => {
                if let Some(previous) = open.take() {
                    assert_eq!(
                        style,
                        Style::Early,
                        "request before the last one's body: {}",
                        what()
                    );
                    at = body_end(previous, at);
                }
                requests += 1;
                check_request(request, limits);
                let rest = skip_empty_lines(data.get(at..).unwrap_or_default());
                at = data.len() - rest.len();
                assert!(
                    rest.starts_with(request.raw_head()),
                    "request is not the next bytes of input: {}",
                    what()
                );
                at += request.raw_head().len();
                open = Some(request);
            }
            Seen::Body(body) => {
                let request = open.take().expect("a body without a request");
                bodies += 1;
                let end = body_end(request, at);
                let expected = match request.body() {
                    RequestBody::Chunked => match reference_chunked(&data[at..], limits).0 {
                        Verdict::Body(body) => body,
                        _ => unreachable!("body_end checked the verdict"),
                    },
                    _ => match data.get(at..end) {
                        Some(bytes) => bytes.to_vec(),
                        None => panic!("a body longer than the input: {}", what()),
                    },
                };
                assert_eq!(*body, expected, "body is not the input's: {}", what());
                at = end;
            }
            Seen::Error(kind) => {
                assert_eq!(i + 1, run.seen.len(), "events after an error: {}", what());
                let last = run.output.windows(9).rposition(|w| w == b"HTTP/1.1 ");
                let answered = last.is_some_and(|p| {
                    let tail = &run.output[p..];
                    tail.starts_with(format!("HTTP/1.1 {} ", kind.status()).as_bytes())
                        && contains(tail, b"\r\nConnection: close\r\n")
                });
                // A head cut short by the peer's end of stream is not answered
                // (the engine's choice); every other error is.
                let in_head = open.is_none() || style == Style::Early;
                let unanswered_truncation = *kind == ProtocolErrorKind::Truncated && in_head;
                assert!(
                    answered || unanswered_truncation,
                    "error {kind:?} not answered with its status: {}",
                    what()
                );
            }
        }
    }
    if open.is_some() && style != Style::Early {
        assert!(
            matches!(run.seen.last(), Some(Seen::Error(_))),
            "a request neither read to its end nor failed: {}",
            what()
        );
    }
    let answers = count(&run.output, b"HTTP/1.1 200 OK\r\n")
        + count(&run.output, b"HTTP/1.1 404 Not Found\r\n");
    match style {
        Style::Prompt | Style::Lazy => {
            assert_eq!(answers, bodies, "answers vs bodies read: {}", what())
        }
        Style::Early => {
            assert_eq!(answers, requests, "answers vs requests: {}", what());
            assert!(
                !contains(&run.output, b"100 Continue"),
                "100 Continue after the final answer: {}",
                what()
            );
        }
    }
}

// ----- chunked: engine against reference ---------------------------------------------

/// What became of a chunked body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Decoded to its end (trailers included): these body bytes.
    Body(Vec<u8>),
    /// Rejected, with the error the engine reports for it.
    Invalid(ProtocolErrorKind),
    /// The input ended first.
    Incomplete,
}

impl Verdict {
    fn show(&self) -> String {
        match self {
            Verdict::Body(b) => format!("body {}", escape(b)),
            other => format!("{other:?}"),
        }
    }
}

/// A small, strict, independent chunked decoder (RFC 9112 §7.1), for
/// comparison with the engine. Returns the verdict and, for a body, how many
/// input bytes it spanned.
///
/// ```text
/// chunk-line   = 1*HEXDIG [ *(SP / HTAB) ";" *ext-byte ] CRLF
/// chunk        = chunk-line (size bytes) CRLF        ; size > 0
/// last-chunk   = chunk-line with size 0
/// trailer-line = token ":" *value-byte CRLF
/// body         = *chunk last-chunk *trailer-line CRLF
/// ext-byte     = value-byte = HTAB / SP / VCHAR / obs-text   (no CTL)
/// ```
///
/// Where the reference and the engine may differ, and how that is handled:
/// - Extensions: RFC 9112 wants `name[=value]` pairs after each `;`; both
///   accept any bytes but CTLs there (the engine ignores extensions).
/// - A line is judged only once its LF has arrived (or it overran its
///   limit), so a half line that is already wrong is `Incomplete`, not
///   `Invalid`: this is how the engine reads, and the model follows it.
/// - Limits are modelled, not avoided: a chunk line may hold at most
///   `max_chunk_line` bytes before its CRLF, the trailer lines together at
///   most `max_trailer_bytes` (each line counted with its CRLF; a line may use
///   what is left), the chunk sizes at most `max_body` in total (413, checked
///   when a size line is read). An overlong line is rejected as soon as
///   limit + 2 bytes without its LF are in.
pub fn reference_chunked(input: &[u8], limits: &Limits) -> (Verdict, usize) {
    use ProtocolErrorKind::{BadChunk, BadTrailer, BodyTooLarge};
    let mut at = 0;
    let mut body = Vec::new();
    loop {
        let line = match next_line(&input[at..], limits.max_chunk_line) {
            Line::Complete(line) => line,
            Line::Incomplete => return (Verdict::Incomplete, at),
            Line::Bad => return (Verdict::Invalid(BadChunk), at),
        };
        at += line.len() + 2;
        let Some(size) = chunk_size(line) else {
            return (Verdict::Invalid(BadChunk), at);
        };
        if size == 0 {
            break;
        }
        match (body.len() as u64).checked_add(size) {
            Some(total) if total <= limits.max_body => {}
            _ => return (Verdict::Invalid(BodyTooLarge), at),
        }
        let size = size as usize; // at most max_body
        let Some(data) = input.get(at..at + size) else {
            return (Verdict::Incomplete, at);
        };
        body.extend_from_slice(data);
        at += size;
        match &input[at..] {
            [b'\r', b'\n', ..] => at += 2,
            [] | [b'\r'] => return (Verdict::Incomplete, at),
            _ => return (Verdict::Invalid(BadChunk), at),
        }
    }
    let mut trailer_bytes = 0;
    loop {
        let room = limits.max_trailer_bytes.saturating_sub(trailer_bytes);
        let line = match next_line(&input[at..], room) {
            Line::Complete(line) => line,
            Line::Incomplete => return (Verdict::Incomplete, at),
            Line::Bad => return (Verdict::Invalid(BadTrailer), at),
        };
        at += line.len() + 2;
        trailer_bytes += line.len() + 2;
        if line.is_empty() {
            return (Verdict::Body(body), at);
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return (Verdict::Invalid(BadTrailer), at);
        };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
            return (Verdict::Invalid(BadTrailer), at);
        }
        if !value.iter().all(|&b| is_value_byte(b)) {
            return (Verdict::Invalid(BadTrailer), at);
        }
    }
}

enum Line<'a> {
    /// The line's content, without its CRLF.
    Complete(&'a [u8]),
    Incomplete,
    /// A bare LF, or more than `max` bytes before the CRLF.
    Bad,
}

fn next_line(input: &[u8], max: usize) -> Line<'_> {
    match input.iter().position(|&b| b == b'\n') {
        Some(lf) if lf > max + 1 => Line::Bad,
        Some(lf) if lf == 0 || input[lf - 1] != b'\r' => Line::Bad,
        Some(lf) => Line::Complete(&input[..lf - 1]),
        None if input.len() >= max + 2 => Line::Bad,
        None => Line::Incomplete,
    }
}

/// The size of a chunk line, if the line is well-formed.
fn chunk_size(line: &[u8]) -> Option<u64> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    let size = u64::from_str_radix(std::str::from_utf8(&line[..digits]).ok()?, 16).ok()?;
    let rest = &line[digits..];
    let mut ext = rest;
    while let [b' ' | b'\t', tail @ ..] = ext {
        ext = tail;
    }
    if !rest.is_empty() && !ext.starts_with(b";") {
        return None;
    }
    if !rest.iter().all(|&b| is_value_byte(b)) {
        return None;
    }
    Some(size)
}

/// The engine's verdict on `data` as a chunked body after [`CHUNKED_HEAD`].
fn engine_chunked(data: &[u8], limits: &Limits, split: Split) -> Verdict {
    let mut clock = Clock::new();
    let mut conn = Connection::new(clock.now(), limits.clone());
    assert_eq!(conn.receive(clock.now(), CHUNKED_HEAD), CHUNKED_HEAD.len());
    match conn.poll_event() {
        Some(Event::Request(r)) if r.body() == RequestBody::Chunked => {}
        other => panic!("the fixed chunked head gave {other:?}"),
    }
    let mut body = Vec::new();
    for piece in pieces(data, split) {
        let mut rest = piece;
        for _ in 0..ROUNDS {
            if rest.is_empty() {
                break;
            }
            assert!(conn.wants_read(), "not reading in the middle of a body");
            let taken = conn.receive(clock.now(), rest);
            rest = &rest[taken..];
            if let Some(verdict) = read_chunked(&mut conn, &clock, &mut body) {
                return verdict;
            }
            assert!(taken > 0 || conn.wants_read(), "input buffer full mid-body");
            clock.tick();
        }
        assert!(rest.is_empty(), "delivering one piece never ended");
    }
    conn.receive_eof(clock.now());
    let events: Vec<Event> = std::iter::from_fn(|| conn.poll_event())
        .filter(|e| *e != Event::BodyReadable)
        .collect();
    assert_eq!(
        events,
        [Event::Error(ProtocolErrorKind::Truncated.into())],
        "end of stream mid-body"
    );
    assert_eq!(
        conn.read_body(clock.now(), &mut [0; 8]),
        Err(ApiError::Closed)
    );
    Verdict::Incomplete
}

/// Reads body bytes until the engine needs more input or reaches a verdict.
fn read_chunked(conn: &mut Connection, clock: &Clock, body: &mut Vec<u8>) -> Option<Verdict> {
    let mut buf = [0u8; 29];
    for _ in 0..ROUNDS {
        match conn.read_body(clock.now(), &mut buf) {
            Ok(BodyRead::Data(n)) => {
                assert!(n > 0 && n <= buf.len(), "read_body said Data({n})");
                body.extend_from_slice(&buf[..n]);
            }
            Ok(BodyRead::Pending) => return None,
            Ok(BodyRead::End) => return Some(Verdict::Body(std::mem::take(body))),
            Ok(BodyRead::Failed(error)) => {
                let events: Vec<Event> = std::iter::from_fn(|| conn.poll_event())
                    .filter(|e| *e != Event::BodyReadable)
                    .collect();
                assert_eq!(events, [Event::Error(error)], "events of a failed body");
                let status_line = format!("HTTP/1.1 {} ", error.status());
                assert!(
                    conn.pending_output().starts_with(status_line.as_bytes()),
                    "failed body not answered with {status_line:?}"
                );
                assert!(conn.is_closing(), "failed body but not closing");
                return Some(Verdict::Invalid(error.kind()));
            }
            Err(e) => panic!("read_body: {e}"),
        }
    }
    panic!("read_body never ran dry");
}
