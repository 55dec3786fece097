//! Request bodies: Content-Length and chunked bodies come out in pieces as the
//! application pulls them, with backpressure on the peer; chunked framing is
//! strict, trailers are never merged into the head, and `Expect:
//! 100-continue` is answered on the first read.

mod support;

use portcullis_core::{BodyRead, Event, Limits, ProtocolErrorKind as Kind, RequestBody};
use support::{get, post_with, Peer};

fn chunked_post() -> String {
    post_with("Transfer-Encoding: chunked\r\n")
}

/// Sends a chunked POST with this body and returns what reading it did.
fn read_chunked(body: &str) -> (Vec<u8>, BodyRead, String) {
    let mut peer = Peer::new();
    peer.send(chunked_post() + body);
    peer.request();
    let (bytes, last) = peer.read_body_in(64);
    (bytes, last, peer.output())
}

/// A chunked body whose framing is broken: reading it fails with `kind`, the
/// error is reported, answered with 400 and the connection closes.
#[track_caller]
fn assert_bad_chunked(body: &str, kind: Kind) {
    let mut peer = Peer::new();
    peer.send(chunked_post() + body);
    peer.request();
    let (_, last) = peer.read_body_in(64);
    let BodyRead::Failed(error) = last else {
        panic!("{body:?} was accepted: {last:?}");
    };
    assert_eq!(error.kind(), kind, "{body:?}");
    assert_eq!(peer.error(), error);
    let output = peer.output();
    assert!(
        output.starts_with("HTTP/1.1 400 Bad Request\r\n"),
        "{output:?}"
    );
    assert!(output.contains("\r\nConnection: close\r\n"));
    assert!(peer.conn.is_closed());
}

#[test]
fn a_content_length_body_comes_out_in_pieces_as_it_arrives() {
    let mut peer = Peer::new();
    peer.send(post_with("Content-Length: 11\r\n") + "hello");
    let request = peer.request();
    assert_eq!(request.body(), RequestBody::Length(11));

    let mut buf = [0; 3];
    assert_eq!(
        peer.conn.read_body(peer.now, &mut buf),
        Ok(BodyRead::Data(3))
    );
    assert_eq!(&buf, b"hel");
    assert_eq!(
        peer.conn.read_body(peer.now, &mut buf),
        Ok(BodyRead::Data(2))
    );
    assert_eq!(&buf[..2], b"lo");
    assert_eq!(
        peer.conn.read_body(peer.now, &mut buf),
        Ok(BodyRead::Pending)
    );

    // More arrives: the application is told, and reads the rest.
    peer.send(" world");
    assert_eq!(peer.events(), [Event::BodyReadable]);
    let (rest, last) = peer.read_body_in(4);
    assert_eq!(rest, b" world");
    assert_eq!(last, BodyRead::End);
    assert_eq!(peer.conn.read_body(peer.now, &mut buf), Ok(BodyRead::End));
}

#[test]
fn a_request_without_a_body_reads_as_ended() {
    let mut peer = Peer::new();
    peer.send(get("/"));
    peer.request();
    assert_eq!(
        peer.conn.read_body(peer.now, &mut [0; 8]),
        Ok(BodyRead::End)
    );
}

#[test]
fn a_chunked_body_comes_out_without_its_framing() {
    let (body, last, output) =
        read_chunked("5\r\nhello\r\n1;name=value\r\n \r\nA\r\n0123456789\r\n0\r\n\r\n");
    assert_eq!(body, b"hello 0123456789");
    assert_eq!(last, BodyRead::End);
    assert_eq!(output, "");
}

#[test]
fn a_chunked_body_fed_one_byte_at_a_time_reads_the_same() {
    let body = "5\r\nhello\r\n6;x=\"q\"\r\n world\r\n0\r\nX-Sum: 1\r\n\r\n";
    let mut peer = Peer::new();
    peer.send(chunked_post());
    peer.request();
    let mut read = Vec::new();
    let (last_byte, rest) = body.as_bytes().split_last().unwrap();
    for byte in rest {
        peer.send([*byte]);
        let (piece, last) = peer.read_body_in(64);
        read.extend(piece);
        assert_eq!(last, BodyRead::Pending, "after {:?}", read);
    }
    // Only the very last byte ends the body.
    peer.send([*last_byte]);
    let (piece, last) = peer.read_body_in(64);
    assert!(piece.is_empty());
    assert_eq!(last, BodyRead::End);
    assert_eq!(read, b"hello world");
}

#[test]
fn trailers_are_read_but_never_become_header_fields() {
    let mut peer = Peer::new();
    peer.send(
        chunked_post()
            + "3\r\nabc\r\n0\r\nX-Trailer: sneaky\r\nHost: evil.example\r\n\r\n"
            + &get("/next"),
    );
    let request = peer.request();
    assert_eq!(peer.read_body(), b"abc");
    assert_eq!(request.header("x-trailer"), None);
    assert_eq!(request.headers_named("host").count(), 1);
    peer.respond(200, "ok");
    // The trailer section was consumed exactly: the next request follows.
    let next = peer.request();
    assert_eq!(next.path(), "/next");
    assert_eq!(next.header("x-trailer"), None);
}

#[test]
fn a_malformed_trailer_is_refused() {
    assert_bad_chunked("0\r\nno colon here\r\n\r\n", Kind::BadTrailer);
    assert_bad_chunked("0\r\nX-A: a\rb\r\n\r\n", Kind::BadTrailer);
    assert_bad_chunked("0\r\nX-A: b\n\r\n", Kind::BadTrailer);
}

#[test]
fn an_oversized_trailer_section_is_refused() {
    let limit = Limits::default().max_trailer_bytes;
    let field = format!("X-Big: {}\r\n", "t".repeat(100));
    let many = field.repeat(limit / field.len() + 1);
    assert_bad_chunked(&format!("0\r\n{many}\r\n"), Kind::BadTrailer);
    // Nor does an endless one wait for its end.
    assert_bad_chunked(
        &format!("0\r\nX-Big: {}", "t".repeat(2 * limit)),
        Kind::BadTrailer,
    );
}

#[test]
fn a_chunk_size_that_overflows_is_refused() {
    // 2^64: seventeen hex digits.
    assert_bad_chunked("10000000000000000\r\nx\r\n0\r\n\r\n", Kind::BadChunk);
    assert_bad_chunked("ffffffffffffffffff\r\nx\r\n0\r\n\r\n", Kind::BadChunk);
}

#[test]
fn a_bare_lf_in_a_chunk_line_or_its_extension_is_refused() {
    assert_bad_chunked("3\nabc\r\n0\r\n\r\n", Kind::BadChunk);
    assert_bad_chunked("3;ext=1\nabc\r\n0\r\n\r\n", Kind::BadChunk);
    assert_bad_chunked("3\r\nabc\r\n0\n\r\n", Kind::BadChunk);
    // After the data, the CRLF must be exactly that.
    assert_bad_chunked("3\r\nabc\n0\r\n\r\n", Kind::BadChunk);
}

#[test]
fn a_bare_cr_or_control_in_a_chunk_extension_is_refused() {
    assert_bad_chunked("3;a\rb\r\nabc\r\n0\r\n\r\n", Kind::BadChunk);
    assert_bad_chunked("3;a\0b\r\nabc\r\n0\r\n\r\n", Kind::BadChunk);
}

#[test]
fn a_malformed_chunk_size_is_refused() {
    for body in [
        "\r\nabc\r\n0\r\n\r\n",
        "x\r\nabc\r\n0\r\n\r\n",
        "+3\r\nabc\r\n0\r\n\r\n",
        "0x3\r\nabc\r\n0\r\n\r\n",
        "3 4\r\nabc\r\n0\r\n\r\n",
        "3\r\nabcd\r\n0\r\n\r\n",
    ] {
        assert_bad_chunked(body, Kind::BadChunk);
    }
}

#[test]
fn an_overlong_chunk_extension_is_refused_before_its_end() {
    let limit = Limits::default().max_chunk_line;
    // A line of exactly the limit is fine...
    let ext = format!(";e={}", "v".repeat(limit - 4));
    let (body, last, _) = read_chunked(&format!("1{ext}\r\nx\r\n0\r\n\r\n"));
    assert_eq!((body.as_slice(), last), (&b"x"[..], BodyRead::End));
    // ...one byte more is refused...
    let ext = format!(";e={}", "v".repeat(limit - 3));
    assert_bad_chunked(&format!("1{ext}\r\nx\r\n0\r\n\r\n"), Kind::BadChunk);
    // ...and an endless one is refused without waiting for its end.
    assert_bad_chunked(&format!("1;e={}", "v".repeat(4 * limit)), Kind::BadChunk);
}

#[test]
fn the_input_buffer_never_grows_past_its_limit_and_reading_resumes_it() {
    let limits = Limits {
        input_buffer: 20 * 1024,
        ..Limits::default()
    };
    // The buffer is never smaller than a head over the limit needs.
    assert!(limits.input_buffer > limits.max_head_bytes);
    let mut peer = Peer::with_limits(limits.clone());
    let head = post_with("Content-Length: 100000\r\n");
    peer.send(&head);
    peer.request();
    let body: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();

    let mut offset = 0;
    let mut read = Vec::new();
    let mut buf = [0; 1000];
    let mut stalls = 0;
    while offset < body.len() {
        // The peer pushes as much as it is allowed to.
        while peer.conn.wants_read() && offset < body.len() {
            offset += peer.offer(&body[offset..]);
            assert!(
                offset - read.len() <= limits.input_buffer,
                "buffered too much"
            );
        }
        if offset < body.len() {
            stalls += 1;
            assert!(!peer.conn.wants_read());
            // A full buffer takes nothing more.
            assert_eq!(peer.offer(&body[offset..]), 0);
        }
        // The application reads a little, which makes room again.
        let BodyRead::Data(n) = peer.conn.read_body(peer.now, &mut buf).unwrap() else {
            panic!("nothing to read");
        };
        read.extend_from_slice(&buf[..n]);
        assert!(peer.conn.wants_read() || offset == body.len());
    }
    read.extend(peer.read_body());
    assert_eq!(read, body);
    assert!(stalls > 50, "the buffer never filled ({stalls} stalls)");
}

#[test]
fn a_chunked_body_is_held_to_the_input_buffer_too() {
    let limits = Limits {
        input_buffer: 4096,
        max_head_bytes: 2048,
        max_request_line: 1024,
        ..Limits::default()
    };
    let mut peer = Peer::with_limits(limits);
    peer.send(chunked_post());
    peer.request();
    let chunk = format!("1000\r\n{}\r\n", "z".repeat(0x1000));
    let stream = chunk.repeat(8) + "0\r\n\r\n";
    let mut offset = 0;
    let mut read = Vec::new();
    while offset < stream.len() {
        let taken = peer.offer(&stream.as_bytes()[offset..]);
        assert!(taken <= 4096);
        offset += taken;
        let (piece, _) = peer.read_body_in(700);
        read.extend(piece);
    }
    read.extend(peer.read_body());
    assert_eq!(read.len(), 8 * 0x1000);
    assert!(read.iter().all(|&b| b == b'z'));
}

#[test]
fn expect_100_continue_is_answered_on_the_first_read() {
    let mut peer = Peer::new();
    peer.send(post_with("Expect: 100-continue\r\nContent-Length: 4\r\n"));
    let request = peer.request();
    assert!(request.expects_continue());
    // Nothing is sent until the application shows it wants the body.
    assert_eq!(peer.output(), "");
    assert_eq!(
        peer.conn.read_body(peer.now, &mut [0; 8]),
        Ok(BodyRead::Pending)
    );
    assert_eq!(peer.output(), "HTTP/1.1 100 Continue\r\n\r\n");
    // Only once.
    assert_eq!(
        peer.conn.read_body(peer.now, &mut [0; 8]),
        Ok(BodyRead::Pending)
    );
    assert_eq!(peer.output(), "");
    peer.send("data");
    assert_eq!(peer.read_body(), b"data");
    peer.respond(200, "ok");
    assert!(peer.output().starts_with("HTTP/1.1 200 OK\r\n"));
    assert!(!peer.conn.is_closing());
}

#[test]
fn a_final_response_before_reading_skips_100_continue_and_closes() {
    let mut peer = Peer::new();
    peer.send(post_with("Expect: 100-continue\r\nContent-Length: 4\r\n"));
    peer.request();
    // Refused without looking at the body: the client may never send it, so
    // the connection cannot know where the next request starts.
    peer.respond(403, "no");
    let output = peer.output();
    assert!(!output.contains("100 Continue"), "{output:?}");
    assert!(output.starts_with("HTTP/1.1 403 Forbidden\r\n"));
    assert!(output.contains("\r\nConnection: close\r\n"));
    assert!(peer.conn.is_closed());
}

#[test]
fn an_unknown_expectation_gets_417() {
    let rejection = support::reject(post_with("Expect: something-else\r\nContent-Length: 4\r\n"));
    assert_eq!(rejection.error.kind(), Kind::UnsupportedExpectation);
    assert!(rejection
        .output
        .starts_with("HTTP/1.1 417 Expectation Failed\r\n"));
}

#[test]
fn expect_100_continue_from_http10_is_ignored() {
    // RFC 9110 §10.1.1: an HTTP/1.0 client does not understand 1xx.
    let mut peer = Peer::new();
    peer.send("POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n");
    assert!(!peer.request().expects_continue());
    assert_eq!(
        peer.conn.read_body(peer.now, &mut [0; 8]),
        Ok(BodyRead::Pending)
    );
    assert_eq!(peer.output(), "");
}

#[test]
fn an_unread_buffered_body_is_skipped_before_the_next_request() {
    for body in [
        post_with("Content-Length: 5\r\n") + "hello",
        chunked_post() + "5\r\nhello\r\n0\r\n\r\n",
    ] {
        let mut peer = Peer::new();
        peer.send(body + &get("/second"));
        peer.request();
        // The application answers without reading the body.
        peer.respond(200, "ok");
        assert!(!peer.output().contains("Connection: close"));
        assert_eq!(peer.request().path(), "/second");
    }
}

#[test]
fn a_response_sent_before_the_body_arrived_closes_the_connection() {
    let mut peer = Peer::new();
    peer.send(post_with("Content-Length: 5\r\n") + "he");
    peer.request();
    peer.respond(413, "too slow");
    let output = peer.output();
    assert!(output.contains("\r\nConnection: close\r\n"), "{output:?}");
    assert!(peer.conn.is_closed());
}

#[test]
fn eof_in_the_middle_of_a_body_is_a_truncated_request() {
    for (fields, partial) in [
        ("Content-Length: 10\r\n", "hello"),
        ("Transfer-Encoding: chunked\r\n", "a\r\nhello"),
    ] {
        let mut peer = Peer::new();
        peer.send(post_with(fields) + partial);
        peer.request();
        peer.eof();
        assert_eq!(peer.error().kind(), Kind::Truncated);
        // No response had started, so the client is told.
        assert!(peer.output().starts_with("HTTP/1.1 400 Bad Request\r\n"));
        assert!(peer.conn.is_closed());
        assert!(peer.conn.read_body(peer.now, &mut [0; 8]).is_err());
    }
}
