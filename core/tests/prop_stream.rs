//! Property: the connection's view of a valid request stream does not depend
//! on how the stream is cut into reads. Any stream of pipelined requests
//! (random methods, origin-form targets, extra fields, Content-Length and
//! chunked bodies with random chunk sizes, extensions and trailers, an
//! optional `Connection: close` on the last) fed in any split, byte at a
//! time included, gives the same requests, the same body bytes and the same
//! output bytes as fed whole, and the requests are the ones generated.

mod support;

use portcullis_core::{
    BodyRead, Connection, Event, Limits, Request, RequestBody, ResponseBody, ResponseHead, Version,
};
use proptest::prelude::*;
use proptest::sample::Index;
use support::{epoch, Now};

/// How a generated request frames its body.
#[derive(Clone, Debug)]
enum Body {
    /// No framing field at all.
    None,
    /// `Content-Length` (possibly 0).
    Length(Vec<u8>),
    /// `Transfer-Encoding: chunked`: the chunks, each with an optional
    /// extension, the size's hex case, and the trailer fields.
    Chunked {
        chunks: Vec<(Vec<u8>, Option<String>)>,
        upper_hex: bool,
        trailers: Vec<(String, String)>,
    },
}

impl Body {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Body::None => Vec::new(),
            Body::Length(bytes) => bytes.clone(),
            Body::Chunked { chunks, .. } => chunks.iter().flat_map(|(c, _)| c.clone()).collect(),
        }
    }
}

/// One generated request.
#[derive(Clone, Debug)]
struct Generated {
    method: String,
    target: String,
    version: Version,
    /// Every field in wire order (Host, extras, framing, Connection).
    fields: Vec<(String, String)>,
    body: Body,
}

impl Generated {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend(
            format!(
                "{} {} {}\r\n",
                self.method,
                self.target,
                self.version.as_str()
            )
            .bytes(),
        );
        for (name, value) in &self.fields {
            out.extend(format!("{name}: {value}\r\n").bytes());
        }
        out.extend(b"\r\n");
        match &self.body {
            Body::None => {}
            Body::Length(bytes) => out.extend(bytes),
            Body::Chunked {
                chunks,
                upper_hex,
                trailers,
            } => {
                for (chunk, ext) in chunks {
                    let size = if *upper_hex {
                        format!("{:X}", chunk.len())
                    } else {
                        format!("{:x}", chunk.len())
                    };
                    out.extend(size.bytes());
                    if let Some(ext) = ext {
                        out.extend(ext.bytes());
                    }
                    out.extend(b"\r\n");
                    out.extend(chunk);
                    out.extend(b"\r\n");
                }
                out.extend(b"0\r\n");
                for (name, value) in trailers {
                    out.extend(format!("{name}: {value}\r\n").bytes());
                }
                out.extend(b"\r\n");
            }
        }
    }
}

/// A header name that is none of the fields with a framing meaning.
fn extra_name() -> impl Strategy<Value = String> {
    "X-[A-Za-z0-9!#$%&'*+.^_`|~-]{1,12}"
}

/// A field value: visible ASCII with inner spaces and tabs, never leading or
/// trailing whitespace (that is not part of the value), possibly empty.
fn field_value() -> impl Strategy<Value = String> {
    prop_oneof![Just(String::new()), "[!-~]", "[!-~][ \t!-~]{0,30}[!-~]",]
}

fn method() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("GET".to_string()),
        Just("POST".to_string()),
        Just("PUT".to_string()),
        Just("DELETE".to_string()),
        Just("HEAD".to_string()),
        Just("OPTIONS".to_string()),
        "[A-Z]{1,10}",
    ]
}

fn origin_target() -> impl Strategy<Value = String> {
    (
        "(/[A-Za-z0-9._~%!$&'()*+,;=:@-]{0,12}){1,4}",
        proptest::option::of("[A-Za-z0-9=&/?%._-]{0,20}"),
    )
        .prop_map(|(path, query)| match query {
            Some(query) => format!("{path}?{query}"),
            None => path,
        })
}

fn body(version: Version) -> BoxedStrategy<Body> {
    let length = proptest::collection::vec(any::<u8>(), 0..300).prop_map(Body::Length);
    let extension = proptest::option::of(prop_oneof![
        "; ?[a-z]{1,8}",
        ";[a-z]{1,8}=[a-z0-9]{1,8}",
        ";[a-z]{1,8}=\"[a-z ]{0,8}\"",
    ]);
    let chunked = (
        proptest::collection::vec(
            (proptest::collection::vec(any::<u8>(), 1..80), extension),
            0..5,
        ),
        any::<bool>(),
        proptest::collection::vec((extra_name(), field_value()), 0..3),
    )
        .prop_map(|(chunks, upper_hex, trailers)| Body::Chunked {
            chunks,
            upper_hex,
            trailers,
        });
    match version {
        // Transfer-Encoding on HTTP/1.0 is refused; that is another test.
        Version::Http10 => prop_oneof![Just(Body::None), length].boxed(),
        Version::Http11 => prop_oneof![Just(Body::None), length, chunked].boxed(),
    }
}

fn is_bodyless(method: &str) -> bool {
    matches!(method, "GET" | "HEAD" | "TRACE")
}

/// One request; `last_closes` says whether it asks to close (only the last
/// one of a stream may).
fn request(last_closes: bool) -> impl Strategy<Value = Generated> {
    prop_oneof![3 => Just(Version::Http11), 1 => Just(Version::Http10)].prop_flat_map(
        move |version| {
            (
                method(),
                origin_target(),
                proptest::collection::vec((extra_name(), field_value()), 0..6),
                body(version),
                0..3usize,
            )
                .prop_map(move |(method, target, extras, body, host_at)| {
                    // Content on GET, HEAD or TRACE is refused (a hop that
                    // ignores it would read it as the next request);
                    // `Content-Length: 0` is no content.
                    let body = match body {
                        Body::Length(b) if !b.is_empty() && is_bodyless(&method) => Body::None,
                        Body::Chunked { .. } if is_bodyless(&method) => Body::None,
                        body => body,
                    };
                    let mut fields = extras;
                    fields.insert(
                        host_at.min(fields.len()),
                        ("Host".into(), "example.com".into()),
                    );
                    match &body {
                        Body::None => {}
                        Body::Length(bytes) => {
                            fields.push(("Content-Length".into(), bytes.len().to_string()))
                        }
                        Body::Chunked { .. } => {
                            fields.push(("Transfer-Encoding".into(), "chunked".into()))
                        }
                    }
                    match (version, last_closes) {
                        (Version::Http11, true) => {
                            fields.push(("Connection".into(), "close".into()))
                        }
                        (Version::Http10, false) => {
                            fields.push(("Connection".into(), "keep-alive".into()))
                        }
                        _ => {}
                    }
                    Generated {
                        method,
                        target,
                        version,
                        fields,
                        body,
                    }
                })
        },
    )
}

/// A stream of one to five pipelined requests, the last maybe closing.
fn stream() -> impl Strategy<Value = Vec<Generated>> {
    (
        proptest::collection::vec(request(false), 0..4),
        prop_oneof![request(false), request(true)],
    )
        .prop_map(|(mut requests, last)| {
            requests.push(last);
            requests
        })
}

/// What the connection made of a stream: the requests, their bodies, the
/// bytes it wrote, and whether it closed.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    requests: Vec<Request>,
    bodies: Vec<Vec<u8>>,
    output: Vec<u8>,
    closed: bool,
}

/// A deterministic application: reads each body as it arrives, then answers
/// with a summary of the request, alternating Content-Length and chunked
/// framing.
struct App {
    conn: Connection,
    now: Now,
    outcome: Outcome,
    reading: bool,
}

impl App {
    fn new() -> Self {
        let now = epoch();
        App {
            conn: Connection::new(now, Limits::default()),
            now,
            outcome: Outcome {
                requests: Vec::new(),
                bodies: Vec::new(),
                output: Vec::new(),
                closed: false,
            },
            reading: false,
        }
    }

    /// Feeds one read's worth of bytes, doing whatever the application can
    /// after each `receive`, until all are taken.
    fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let taken = self.conn.receive(self.now, bytes);
            bytes = &bytes[taken..];
            let progressed = self.run();
            assert!(taken > 0 || progressed, "the connection is stuck");
        }
    }

    /// Drains events, reads bodies, answers, and takes the output. Returns
    /// whether anything happened.
    fn run(&mut self) -> bool {
        let mut progressed = false;
        loop {
            let mut step = false;
            while let Some(event) = self.conn.poll_event() {
                match event {
                    Event::Request(request) => {
                        self.outcome.requests.push(request);
                        self.outcome.bodies.push(Vec::new());
                        self.reading = true;
                        step = true;
                    }
                    Event::BodyReadable => {}
                    Event::Error(error) => panic!("valid stream refused: {error}"),
                }
            }
            if self.reading {
                let mut buf = [0; 37];
                loop {
                    match self.conn.read_body(self.now, &mut buf).unwrap() {
                        BodyRead::Data(n) => {
                            self.outcome.bodies.last_mut().unwrap().extend(&buf[..n]);
                            step = true;
                        }
                        BodyRead::Pending => break,
                        BodyRead::End => {
                            self.answer();
                            step = true;
                            break;
                        }
                        BodyRead::Failed(error) => panic!("valid body refused: {error}"),
                    }
                }
            }
            let out = self.conn.pending_output().to_vec();
            self.conn.advance_output(self.now, out.len());
            self.outcome.output.extend(out);
            if !step {
                return progressed;
            }
            progressed = true;
        }
    }

    fn answer(&mut self) {
        self.reading = false;
        let index = self.outcome.requests.len();
        let request = self.outcome.requests.last().unwrap();
        let body = self.outcome.bodies.last().unwrap();
        let sum = body
            .iter()
            .fold(0u32, |s, &b| s.wrapping_mul(31).wrapping_add(b.into()));
        let text = format!(
            "{} {} {} {sum:08x}\n",
            request.method(),
            request.target(),
            body.len()
        );
        // (A streamed answer to HTTP/1.0 is delimited by closing, which
        // would end the stream early: those always get a length.)
        let framing = if index.is_multiple_of(2) || request.version() == Version::Http10 {
            ResponseBody::Length(text.len() as u64)
        } else {
            ResponseBody::Streamed
        };
        let head = ResponseHead::new(200)
            .header("X-Index", index.to_string())
            .body(framing);
        self.conn.send_response(self.now, head).unwrap();
        // In two pieces, to exercise the body path.
        let (a, b) = text.as_bytes().split_at(text.len() / 2);
        assert_eq!(self.conn.send_body(self.now, a).unwrap(), a.len());
        assert_eq!(self.conn.send_body(self.now, b).unwrap(), b.len());
        self.conn.finish_response(self.now).unwrap();
    }

    fn finish(mut self) -> Outcome {
        self.conn.receive_eof(self.now);
        self.run();
        self.outcome.closed = self.conn.is_closed();
        self.outcome
    }
}

fn run_pieces<'a>(pieces: impl IntoIterator<Item = &'a [u8]>) -> Outcome {
    let mut app = App::new();
    for piece in pieces {
        app.feed(piece);
    }
    app.finish()
}

/// Cuts `bytes` at the given points.
fn cut<'a>(bytes: &'a [u8], cuts: &[Index]) -> Vec<&'a [u8]> {
    let mut points: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
    points.sort_unstable();
    let mut pieces = Vec::new();
    let mut from = 0;
    for point in points.into_iter().chain([bytes.len()]) {
        pieces.push(&bytes[from..point]);
        from = point;
    }
    pieces
}

/// The request the connection handed out is the one that was generated.
fn assert_matches(request: &Request, body: &[u8], generated: &Generated) {
    assert_eq!(request.method(), generated.method);
    assert_eq!(request.target(), generated.target);
    assert_eq!(request.version(), generated.version);
    let fields: Vec<(String, String)> = request
        .headers()
        .map(|(n, v)| (n.to_string(), String::from_utf8(v.to_vec()).unwrap()))
        .collect();
    // Values are exactly as generated (they have no outer whitespace), and
    // trailers never show up among the fields.
    assert_eq!(fields, generated.fields);
    let expected_framing = match &generated.body {
        Body::None => RequestBody::None,
        Body::Length(bytes) if bytes.is_empty() => RequestBody::None,
        Body::Length(bytes) => RequestBody::Length(bytes.len() as u64),
        Body::Chunked { .. } => RequestBody::Chunked,
    };
    assert_eq!(request.body(), expected_framing);
    assert_eq!(body, generated.body.bytes());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn any_split_of_a_valid_stream_gives_the_same_outcome(
        requests in stream(),
        cuts in proptest::collection::vec(any::<Index>(), 0..12),
    ) {
        let mut bytes = Vec::new();
        for request in &requests {
            request.encode(&mut bytes);
        }

        let whole = run_pieces([bytes.as_slice()]);
        // Every generated request came out, as generated, and was answered.
        prop_assert_eq!(whole.requests.len(), requests.len());
        for ((request, body), generated) in whole.requests.iter().zip(&whole.bodies).zip(&requests) {
            assert_matches(request, body, generated);
        }
        let answers = whole.output.windows(17).filter(|w| w == b"HTTP/1.1 200 OK\r\n").count();
        prop_assert_eq!(answers, requests.len());
        prop_assert!(whole.closed);

        let split = run_pieces(cut(&bytes, &cuts));
        prop_assert_eq!(&split, &whole);
        let bytewise = run_pieces(bytes.chunks(1));
        prop_assert_eq!(&bytewise, &whole);
    }
}
