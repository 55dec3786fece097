//! Property: what the application puts in a response is what a client reads
//! back. Any status, any valid fields and any body, given in any pieces,
//! encodes to bytes that httparse parses to the same status, the same fields
//! (plus `Date` and the framing fields the connection chose) and, once the
//! framing is undone, the same body.

mod support;

use portcullis_core::http::{is_reserved_header, reason_phrase};
use portcullis_core::{ResponseBody, ResponseHead};
use proptest::prelude::*;
use support::{Peer, DATE};

/// The request being answered decides framing and persistence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Client {
    Http11,
    Http11Head,
    Http10,
    Http10KeepAlive,
}

impl Client {
    fn request(self) -> &'static str {
        match self {
            Client::Http11 => "GET /r HTTP/1.1\r\nHost: example.com\r\n\r\n",
            Client::Http11Head => "HEAD /r HTTP/1.1\r\nHost: example.com\r\n\r\n",
            Client::Http10 => "GET /r HTTP/1.0\r\n\r\n",
            Client::Http10KeepAlive => "GET /r HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        }
    }

    fn is_http10(self) -> bool {
        matches!(self, Client::Http10 | Client::Http10KeepAlive)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    Empty,
    Length,
    Streamed,
}

#[derive(Clone, Debug)]
struct Case {
    client: Client,
    status: u16,
    fields: Vec<(String, String)>,
    framing: Framing,
    /// The body, in the pieces the application gives it.
    pieces: Vec<Vec<u8>>,
    close: bool,
}

fn field() -> impl Strategy<Value = (String, String)> {
    let name =
        "[A-Za-z0-9!#$%&'*+.^_`|~-]{1,16}".prop_filter("reserved", |n| !is_reserved_header(n));
    // Visible ASCII, inner spaces and tabs, and non-ASCII text (obs-text on
    // the wire); no outer whitespace; possibly empty.
    let value = prop_oneof![
        Just(String::new()),
        "[!-~é€]",
        "[!-~é€][ \t!-~é€]{0,40}[!-~é€]",
    ];
    (name, value)
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop_oneof![
            Just(Client::Http11),
            Just(Client::Http11Head),
            Just(Client::Http10),
            Just(Client::Http10KeepAlive),
        ],
        prop_oneof![
            (200u16..=599),
            Just(204u16),
            Just(304u16),
            Just(200u16),
            Just(299u16)
        ],
        proptest::collection::vec(field(), 0..8),
        prop_oneof![
            Just(Framing::Empty),
            Just(Framing::Length),
            Just(Framing::Streamed)
        ],
        proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 0..6),
        any::<bool>(),
    )
        .prop_map(|(client, status, fields, framing, pieces, close)| {
            // 204 and 304 cannot have a body; an empty body has no pieces.
            let framing = if matches!(status, 204 | 304) {
                Framing::Empty
            } else {
                framing
            };
            let pieces = if framing == Framing::Empty {
                Vec::new()
            } else {
                pieces
            };
            Case {
                client,
                status,
                fields,
                framing,
                pieces,
                close,
            }
        })
}

/// Sends the case's response and returns the bytes on the wire and whether
/// the connection then closed.
fn encode(case: &Case) -> (Vec<u8>, bool) {
    let mut peer = Peer::new();
    peer.send(case.client.request());
    peer.request();
    let body_len: usize = case.pieces.iter().map(Vec::len).sum();
    let mut head = ResponseHead::new(case.status).body(match case.framing {
        Framing::Empty => ResponseBody::Empty,
        Framing::Length => ResponseBody::Length(body_len as u64),
        Framing::Streamed => ResponseBody::Streamed,
    });
    for (name, value) in &case.fields {
        head = head.header(name.clone(), value.clone());
    }
    if case.close {
        head = head.close();
    }
    peer.start(head).unwrap();
    for piece in &case.pieces {
        assert_eq!(peer.conn.send_body(peer.now, piece).unwrap(), piece.len());
    }
    peer.conn.finish_response(peer.now).unwrap();
    let wire = peer.output_bytes();
    (wire, peer.conn.is_closed())
}

/// Undoes chunked framing; returns the body and what follows it.
fn dechunk(mut wire: &[u8]) -> (Vec<u8>, &[u8]) {
    let mut body = Vec::new();
    loop {
        let line_end = wire
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk line");
        let size = usize::from_str_radix(std::str::from_utf8(&wire[..line_end]).unwrap(), 16)
            .expect("chunk size");
        wire = &wire[line_end + 2..];
        if size == 0 {
            assert!(wire.starts_with(b"\r\n"), "no trailers are sent");
            return (body, &wire[2..]);
        }
        assert!(size > 0, "no empty chunk before the last");
        body.extend_from_slice(&wire[..size]);
        assert_eq!(&wire[size..size + 2], b"\r\n");
        wire = &wire[size + 2..];
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn encoded_responses_parse_back_to_what_was_given(case in case()) {
        let (wire, closed) = encode(&case);
        let mut slots = [httparse::EMPTY_HEADER; 32];
        let mut parsed = httparse::Response::new(&mut slots);
        let httparse::Status::Complete(head_len) = parsed.parse(&wire).expect("valid response")
        else {
            panic!("incomplete head");
        };
        prop_assert_eq!(parsed.version, Some(1));
        prop_assert_eq!(parsed.code, Some(case.status));
        prop_assert_eq!(parsed.reason, Some(reason_phrase(case.status)));

        // What the connection must add, after the application's fields.
        let body: Vec<u8> = case.pieces.concat();
        let declares = |framing| case.framing == framing && !matches!(case.status, 204 | 304);
        let close_delimited = declares(Framing::Streamed) && case.client.is_http10();
        let mut expected = vec![("Date".to_string(), DATE.to_string())];
        expected.extend(case.fields.iter().cloned());
        if declares(Framing::Empty) {
            expected.push(("Content-Length".into(), "0".into()));
        }
        if declares(Framing::Length) {
            expected.push(("Content-Length".into(), body.len().to_string()));
        }
        if declares(Framing::Streamed) && !close_delimited {
            expected.push(("Transfer-Encoding".into(), "chunked".into()));
        }
        let closes = case.close || close_delimited || case.client == Client::Http10;
        if closes {
            expected.push(("Connection".into(), "close".into()));
        } else if case.client == Client::Http10KeepAlive {
            expected.push(("Connection".into(), "keep-alive".into()));
        }
        let fields: Vec<(String, String)> = parsed
            .headers
            .iter()
            .map(|h| (h.name.to_string(), String::from_utf8(h.value.to_vec()).unwrap()))
            .collect();
        prop_assert_eq!(fields, expected);
        prop_assert_eq!(closed, closes);

        // The body, with its framing undone, is the one given; nothing
        // follows it.
        let rest = &wire[head_len..];
        let (sent, after): (Vec<u8>, &[u8]) = if case.client == Client::Http11Head {
            (Vec::new(), rest)
        } else if declares(Framing::Streamed) && !close_delimited {
            dechunk(rest)
        } else {
            (rest.to_vec(), &[])
        };
        prop_assert!(after.is_empty(), "bytes after the body");
        if case.client == Client::Http11Head {
            prop_assert!(sent.is_empty());
        } else {
            prop_assert!(sent == body, "the body differs");
        }
    }
}
