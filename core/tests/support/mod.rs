//! The shared harness of the engine's story tests: a virtual clock and a
//! scripted peer that feeds bytes, drains events and collects what the
//! connection wrote as text.

// Every test crate uses its own part of the harness.
#![allow(dead_code)]

use std::time::{Duration, Instant, SystemTime};

use portcullis_core::{
    ApiError, BodyRead, Connection, Event, Limits, ProtocolError, Request, ResponseBody,
    ResponseHead,
};

pub use portcullis_core::Now;

/// The wall clock every story starts at: 1 700 000 000 s after the epoch.
pub const WALL_SECS: u64 = 1_700_000_000;
/// That moment as an HTTP date, exactly as the `Date` header must show it.
pub const DATE: &str = "Tue, 14 Nov 2023 22:13:20 GMT";

/// The start of virtual time. The monotonic base is the one real clock read
/// of a test (an `Instant` has no other constructor); everything after it is
/// `Now::advanced`, so no test depends on how fast it runs.
pub fn epoch() -> Now {
    #[allow(clippy::disallowed_methods)]
    let mono = Instant::now();
    Now::new(
        mono,
        SystemTime::UNIX_EPOCH + Duration::from_secs(WALL_SECS),
    )
}

/// Shorthands for durations in stories.
pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// One nanosecond: the smallest step of virtual time.
pub const NS: Duration = Duration::from_nanos(1);

/// A scripted peer (and a minimal application) around one [`Connection`].
pub struct Peer {
    /// The connection under test.
    pub conn: Connection,
    /// When the connection was opened.
    pub opened: Now,
    /// The current virtual time; every call passes it.
    pub now: Now,
}

impl Default for Peer {
    fn default() -> Self {
        Self::new()
    }
}

impl Peer {
    /// A connection with the default limits, opened at [`epoch`].
    pub fn new() -> Self {
        Self::with_limits(Limits::default())
    }

    /// A connection with these limits, opened at [`epoch`].
    pub fn with_limits(limits: Limits) -> Self {
        let opened = epoch();
        Peer {
            conn: Connection::new(opened, limits),
            opened,
            now: opened,
        }
    }

    // ----- time ----------------------------------------------------------

    /// The moment `d` after the connection was opened.
    pub fn at(&self, d: Duration) -> Instant {
        self.opened.mono + d
    }

    /// Moves virtual time to `d` after the connection was opened.
    pub fn set_time(&mut self, d: Duration) {
        self.now = self.opened.advanced(d);
    }

    /// Lets `d` of virtual time pass.
    pub fn wait(&mut self, d: Duration) {
        self.now = self.now.advanced(d);
    }

    /// The adapter's timer fired: apply the deadlines at the current time.
    pub fn tick(&mut self) {
        self.conn.handle_timeout(self.now);
    }

    // ----- input ---------------------------------------------------------

    /// Offers bytes once; returns how many the connection took.
    pub fn offer(&mut self, bytes: impl AsRef<[u8]>) -> usize {
        self.conn.receive(self.now, bytes.as_ref())
    }

    /// Sends bytes in one piece; they must all be taken.
    pub fn send(&mut self, bytes: impl AsRef<[u8]>) {
        let bytes = bytes.as_ref();
        let taken = self.offer(bytes);
        assert_eq!(taken, bytes.len(), "the connection refused input");
    }

    /// Sends bytes one at a time.
    pub fn send_bytewise(&mut self, bytes: impl AsRef<[u8]>) {
        for byte in bytes.as_ref() {
            self.send([*byte]);
        }
    }

    /// The peer half-closes.
    pub fn eof(&mut self) {
        self.conn.receive_eof(self.now);
    }

    // ----- events --------------------------------------------------------

    /// Every queued event.
    pub fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.conn.poll_event()).collect()
    }

    /// The next event, which must be a request.
    #[track_caller]
    pub fn request(&mut self) -> Request {
        match self.conn.poll_event() {
            Some(Event::Request(request)) => request,
            other => panic!("expected a request, got {other:?}"),
        }
    }

    /// The next event, skipping body notifications, which must be an error.
    #[track_caller]
    pub fn error(&mut self) -> ProtocolError {
        loop {
            match self.conn.poll_event() {
                Some(Event::BodyReadable) => {}
                Some(Event::Error(error)) => return error,
                other => panic!("expected an error, got {other:?}"),
            }
        }
    }

    /// There is no request or error waiting (body notifications aside).
    #[track_caller]
    pub fn no_event(&mut self) {
        let events: Vec<Event> = self
            .events()
            .into_iter()
            .filter(|e| *e != Event::BodyReadable)
            .collect();
        assert!(events.is_empty(), "unexpected events: {events:?}");
    }

    // ----- application ---------------------------------------------------

    /// Reads the current body with a buffer of `piece` bytes until it ends
    /// or nothing more is buffered; returns the bytes and whether it ended.
    pub fn read_body_in(&mut self, piece: usize) -> (Vec<u8>, BodyRead) {
        let mut body = Vec::new();
        let mut buf = vec![0; piece];
        loop {
            match self.conn.read_body(self.now, &mut buf).expect("read_body") {
                BodyRead::Data(n) => body.extend_from_slice(&buf[..n]),
                last => return (body, last),
            }
        }
    }

    /// Reads the whole current body, which must be fully buffered.
    #[track_caller]
    pub fn read_body(&mut self) -> Vec<u8> {
        let (body, last) = self.read_body_in(4096);
        assert_eq!(last, BodyRead::End, "the body did not end");
        body
    }

    /// Starts a response.
    pub fn start(&mut self, head: ResponseHead) -> Result<(), ApiError> {
        self.conn.send_response(self.now, head)
    }

    /// Answers the current request with `status` and a text body.
    #[track_caller]
    pub fn respond(&mut self, status: u16, body: &str) {
        let head = ResponseHead::new(status).body(ResponseBody::Length(body.len() as u64));
        self.conn
            .send_response(self.now, head)
            .expect("send_response");
        let taken = self
            .conn
            .send_body(self.now, body.as_bytes())
            .expect("send_body");
        assert_eq!(taken, body.len());
        self.conn
            .finish_response(self.now)
            .expect("finish_response");
    }

    // ----- output --------------------------------------------------------

    /// Takes everything the connection wants to send, as text.
    pub fn output(&mut self) -> String {
        let bytes = self.output_bytes();
        String::from_utf8(bytes).expect("output is UTF-8")
    }

    /// Takes everything the connection wants to send.
    pub fn output_bytes(&mut self) -> Vec<u8> {
        let bytes = self.conn.pending_output().to_vec();
        self.conn.advance_output(self.now, bytes.len());
        bytes
    }
}

/// What a rejected input led to.
#[derive(Debug, PartialEq, Eq)]
pub struct Rejection {
    /// The error reported to the application.
    pub error: ProtocolError,
    /// Everything written to the peer.
    pub output: String,
}

/// Feeds a request head the connection must refuse, whole and then one byte
/// at a time, and checks the rejection protocol: no request is handed out,
/// one error is reported, its status is answered with `Connection: close`,
/// and the connection closes once that answer is sent. Both feedings must
/// agree.
#[track_caller]
pub fn reject(input: impl AsRef<[u8]>) -> Rejection {
    let input = input.as_ref();
    let whole = reject_fed(input, |peer, bytes| peer.send(bytes));
    let bytewise = reject_fed(input, |peer, bytes| peer.send_bytewise(bytes));
    assert_eq!(whole, bytewise, "whole and byte-at-a-time feeding disagree");
    whole
}

#[track_caller]
fn reject_fed(input: &[u8], feed: impl Fn(&mut Peer, &[u8])) -> Rejection {
    let mut peer = Peer::new();
    feed(&mut peer, input);
    let events = peer.events();
    let [Event::Error(error)] = events[..] else {
        panic!("expected exactly one error, got {events:?}");
    };
    let output = peer.output();
    let status = error.status();
    assert!(
        output.starts_with(&format!("HTTP/1.1 {status} ")),
        "the answer is not {status}: {output:?}"
    );
    assert!(output.contains("\r\nConnection: close\r\n"), "{output:?}");
    assert!(peer.conn.is_closed(), "still open after the error answer");
    assert!(!peer.conn.wants_read());
    Rejection { error, output }
}

/// Feeds a request the connection must accept whole and one byte at a time,
/// and returns it (both feedings must give the same request).
#[track_caller]
pub fn accept(input: impl AsRef<[u8]>) -> Request {
    let input = input.as_ref();
    let mut whole = Peer::new();
    whole.send(input);
    let mut bytewise = Peer::new();
    bytewise.send_bytewise(input);
    let request = whole.request();
    assert_eq!(request, bytewise.request());
    whole.no_event();
    bytewise.no_event();
    assert!(whole.conn.pending_output().is_empty());
    request
}

/// A minimal valid HTTP/1.1 GET head for `target`.
pub fn get(target: &str) -> String {
    format!("GET {target} HTTP/1.1\r\nHost: example.com\r\n\r\n")
}

/// A POST head with these extra header lines (each ending in CRLF).
pub fn post_with(fields: &str) -> String {
    format!("POST /submit HTTP/1.1\r\nHost: example.com\r\n{fields}\r\n")
}
