//! Response encoding: the exact bytes of a status line and fields, the
//! framing the connection chooses (Content-Length, chunked, close-delimited,
//! none), the `Date` header from the caller's wall clock, HEAD, the checks on
//! what the application gives, and backpressure on the application.

mod support;

use portcullis_core::{ApiError, Limits, ResponseBody, ResponseHead};
use support::{get, secs, Peer, DATE};

/// A peer with one HTTP/1.1 GET waiting for its answer.
fn answering(request: &str) -> Peer {
    let mut peer = Peer::new();
    peer.send(request);
    peer.request();
    peer
}

#[test]
fn a_response_with_a_content_length() {
    let mut peer = answering(&get("/"));
    let head = ResponseHead::new(200)
        .header("Content-Type", "text/plain")
        .header("Set-Cookie", "a=1; Secure")
        .header("Set-Cookie", "b=2")
        .body(ResponseBody::Length(11));
    peer.start(head).unwrap();
    assert_eq!(peer.conn.send_body(peer.now, b"hello "), Ok(6));
    assert_eq!(peer.conn.send_body(peer.now, b"world"), Ok(5));
    peer.conn.finish_response(peer.now).unwrap();
    assert_eq!(
        peer.output(),
        format!(
            "HTTP/1.1 200 OK\r\n\
             Date: {DATE}\r\n\
             Content-Type: text/plain\r\n\
             Set-Cookie: a=1; Secure\r\n\
             Set-Cookie: b=2\r\n\
             Content-Length: 11\r\n\
             \r\n\
             hello world"
        )
    );
    assert!(!peer.conn.is_closing());
}

#[test]
fn an_empty_response_declares_a_zero_length() {
    let mut peer = answering(&get("/"));
    peer.start(ResponseHead::new(404)).unwrap();
    peer.conn.finish_response(peer.now).unwrap();
    assert_eq!(
        peer.output(),
        format!("HTTP/1.1 404 Not Found\r\nDate: {DATE}\r\nContent-Length: 0\r\n\r\n")
    );
}

#[test]
fn a_streamed_response_is_chunked_for_http11() {
    let mut peer = answering(&get("/"));
    peer.start(ResponseHead::new(200).body(ResponseBody::Streamed))
        .unwrap();
    peer.conn.send_body(peer.now, b"hello").unwrap();
    // An empty piece must not end the body early.
    assert_eq!(peer.conn.send_body(peer.now, b""), Ok(0));
    peer.conn.send_body(peer.now, b" wonderful world").unwrap();
    peer.conn.finish_response(peer.now).unwrap();
    assert_eq!(
        peer.output(),
        format!(
            "HTTP/1.1 200 OK\r\n\
             Date: {DATE}\r\n\
             Transfer-Encoding: chunked\r\n\
             \r\n\
             5\r\nhello\r\n\
             10\r\n wonderful world\r\n\
             0\r\n\r\n"
        )
    );
    assert!(!peer.conn.is_closing());
}

#[test]
fn a_streamed_response_to_http10_is_delimited_by_closing() {
    let mut peer = answering("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    peer.start(ResponseHead::new(200).body(ResponseBody::Streamed))
        .unwrap();
    peer.conn.send_body(peer.now, b"until ").unwrap();
    peer.conn.send_body(peer.now, b"the end").unwrap();
    peer.conn.finish_response(peer.now).unwrap();
    // HTTP/1.0 has no chunked coding: the close marks the end.
    assert_eq!(
        peer.output(),
        format!("HTTP/1.1 200 OK\r\nDate: {DATE}\r\nConnection: close\r\n\r\nuntil the end")
    );
    assert!(peer.conn.is_closed());
}

#[test]
fn no_content_and_not_modified_carry_no_length() {
    for (status, reason) in [(204, "No Content"), (304, "Not Modified")] {
        let mut peer = answering(&get("/"));
        peer.start(ResponseHead::new(status).header("ETag", "\"v1\""))
            .unwrap();
        assert_eq!(
            peer.conn.send_body(peer.now, b"x"),
            Err(ApiError::BodyNotAllowed)
        );
        peer.conn.finish_response(peer.now).unwrap();
        assert_eq!(
            peer.output(),
            format!("HTTP/1.1 {status} {reason}\r\nDate: {DATE}\r\nETag: \"v1\"\r\n\r\n")
        );
        assert!(!peer.conn.is_closing());
    }
}

#[test]
fn no_content_cannot_declare_a_body() {
    for body in [ResponseBody::Length(1), ResponseBody::Streamed] {
        let mut peer = answering(&get("/"));
        assert_eq!(
            peer.start(ResponseHead::new(204).body(body)),
            Err(ApiError::BodyNotAllowed)
        );
    }
}

#[test]
fn the_date_comes_from_the_wall_clock_given() {
    let mut peer = answering(&get("/"));
    peer.respond(200, "");
    assert!(peer
        .output()
        .contains("\r\nDate: Tue, 14 Nov 2023 22:13:20 GMT\r\n"));
    // A second and a half later, the next response shows the next second.
    peer.send(get("/"));
    peer.request();
    peer.wait(secs(1) + secs(1) / 2);
    peer.respond(200, "");
    assert!(peer
        .output()
        .contains("\r\nDate: Tue, 14 Nov 2023 22:13:21 GMT\r\n"));
}

#[test]
fn a_head_response_is_the_head_only_with_the_length_kept() {
    let mut peer = answering("HEAD /page HTTP/1.1\r\nHost: example.com\r\n\r\n");
    peer.start(ResponseHead::new(200).body(ResponseBody::Length(11)))
        .unwrap();
    // The application may produce the body as for GET: it is dropped.
    assert_eq!(peer.conn.send_body(peer.now, b"hello world"), Ok(11));
    peer.conn.finish_response(peer.now).unwrap();
    assert_eq!(
        peer.output(),
        format!("HTTP/1.1 200 OK\r\nDate: {DATE}\r\nContent-Length: 11\r\n\r\n")
    );
    // The connection goes on with the next request.
    peer.send(get("/next"));
    assert_eq!(peer.request().path(), "/next");
}

#[test]
fn a_streamed_head_response_sends_no_chunks() {
    let mut peer = answering("HEAD / HTTP/1.1\r\nHost: example.com\r\n\r\n");
    peer.start(ResponseHead::new(200).body(ResponseBody::Streamed))
        .unwrap();
    peer.conn.send_body(peer.now, b"dropped").unwrap();
    peer.conn.finish_response(peer.now).unwrap();
    assert_eq!(
        peer.output(),
        format!("HTTP/1.1 200 OK\r\nDate: {DATE}\r\nTransfer-Encoding: chunked\r\n\r\n")
    );
    assert!(!peer.conn.is_closing());
}

#[test]
fn header_injection_is_refused_and_nothing_is_sent() {
    let bad = [
        ("X-A", "a\r\nSet-Cookie: admin=1"),
        ("X-A", "a\nb"),
        ("X-A", "a\rb"),
        ("X-A", "a\0b"),
        ("X-A", " leading"),
        ("X-A", "trailing "),
        ("X-A\r\nSet-Cookie", "x"),
        ("X A", "x"),
        ("X-A:", "x"),
        ("", "x"),
    ];
    for (name, value) in bad {
        let mut peer = answering(&get("/"));
        let before = format!("{:?}", peer.conn);
        let result = peer.start(ResponseHead::new(200).header(name, value));
        assert_eq!(
            result,
            Err(ApiError::InvalidHeader(name.to_string())),
            "{name:?}: {value:?}"
        );
        assert_eq!(format!("{:?}", peer.conn), before);
        // The request can still be answered properly.
        peer.respond(200, "ok");
        assert!(peer.output().starts_with("HTTP/1.1 200 OK\r\n"));
    }
}

#[test]
fn the_connection_keeps_its_own_fields() {
    for name in [
        "Content-Length",
        "transfer-encoding",
        "CONNECTION",
        "Date",
        "Keep-Alive",
        "Upgrade",
        "Trailer",
    ] {
        let mut peer = answering(&get("/"));
        let before = format!("{:?}", peer.conn);
        let result = peer.start(ResponseHead::new(200).header(name, "1"));
        assert_eq!(result, Err(ApiError::ReservedHeader(name.to_string())));
        assert_eq!(format!("{:?}", peer.conn), before);
    }
}

#[test]
fn a_status_outside_200_to_599_is_refused() {
    for status in [0, 100, 101, 199, 600, 999] {
        let mut peer = answering(&get("/"));
        assert_eq!(
            peer.start(ResponseHead::new(status)),
            Err(ApiError::InvalidStatus(status))
        );
        assert_eq!(peer.output(), "");
    }
}

#[test]
fn a_body_longer_than_declared_is_refused() {
    let mut peer = answering(&get("/"));
    peer.start(ResponseHead::new(200).body(ResponseBody::Length(4)))
        .unwrap();
    assert_eq!(peer.conn.send_body(peer.now, b"abc"), Ok(3));
    let before = format!("{:?}", peer.conn);
    assert_eq!(
        peer.conn.send_body(peer.now, b"de"),
        Err(ApiError::BodyLengthMismatch {
            declared: 4,
            given: 5
        })
    );
    assert_eq!(format!("{:?}", peer.conn), before);
    // The right amount still goes through.
    assert_eq!(peer.conn.send_body(peer.now, b"d"), Ok(1));
    peer.conn.finish_response(peer.now).unwrap();
    assert!(peer.output().ends_with("\r\n\r\nabcd"));
}

#[test]
fn a_body_shorter_than_declared_cannot_be_finished() {
    let mut peer = answering(&get("/"));
    peer.start(ResponseHead::new(200).body(ResponseBody::Length(4)))
        .unwrap();
    peer.conn.send_body(peer.now, b"abc").unwrap();
    let before = format!("{:?}", peer.conn);
    assert_eq!(
        peer.conn.finish_response(peer.now),
        Err(ApiError::BodyLengthMismatch {
            declared: 4,
            given: 3
        })
    );
    assert_eq!(format!("{:?}", peer.conn), before);
    peer.conn.send_body(peer.now, b"d").unwrap();
    peer.conn.finish_response(peer.now).unwrap();
}

#[test]
fn send_body_takes_less_above_the_high_water_mark() {
    let limits = Limits {
        output_high_water: 1024,
        ..Limits::default()
    };
    let mut peer = Peer::with_limits(limits);
    peer.send(get("/big"));
    peer.request();
    let body: Vec<u8> = (0..10_000u32).map(|i| (i % 256) as u8).collect();
    peer.start(ResponseHead::new(200).body(ResponseBody::Length(10_000)))
        .unwrap();
    let head_len = peer.conn.pending_output().len();

    // Only up to the mark is taken; then nothing until output drains.
    let taken = peer.conn.send_body(peer.now, &body).unwrap();
    assert_eq!(taken, 1024 - head_len);
    assert_eq!(peer.conn.send_capacity(), 0);
    assert_eq!(peer.conn.send_body(peer.now, &body[taken..]), Ok(0));

    // The adapter writes part of it: that much room opens.
    let mut wire = peer.conn.pending_output()[..100].to_vec();
    peer.conn.advance_output(peer.now, 100);
    assert_eq!(peer.conn.send_capacity(), 100);
    let mut sent = taken + peer.conn.send_body(peer.now, &body[taken..]).unwrap();
    assert_eq!(sent, taken + 100);
    assert_eq!(peer.conn.pending_output().len(), 1024);

    wire.extend(peer.output_bytes());
    while sent < body.len() {
        let n = peer.conn.send_body(peer.now, &body[sent..]).unwrap();
        assert!(n > 0 && n <= 1024);
        sent += n;
        wire.extend(peer.output_bytes());
    }
    peer.conn.finish_response(peer.now).unwrap();
    wire.extend(peer.output_bytes());
    // Nothing was lost or repeated on the way.
    assert!(wire[head_len..] == body[..], "the body on the wire differs");
}

#[test]
fn chunked_output_respects_the_high_water_mark_too() {
    let limits = Limits {
        output_high_water: 512,
        ..Limits::default()
    };
    let mut peer = Peer::with_limits(limits);
    peer.send(get("/stream"));
    peer.request();
    peer.start(ResponseHead::new(200).body(ResponseBody::Streamed))
        .unwrap();
    let body = vec![b'q'; 4000];
    let mut sent = 0;
    let mut wire = Vec::new();
    while sent < body.len() {
        let n = peer.conn.send_body(peer.now, &body[sent..]).unwrap();
        assert!(n > 0 && n <= 512);
        sent += n;
        wire.extend(peer.output_bytes());
    }
    peer.conn.finish_response(peer.now).unwrap();
    wire.extend(peer.output_bytes());
    let text = String::from_utf8(wire).unwrap();
    let (_, chunks) = text.split_once("\r\n\r\n").unwrap();
    // Decode to check the pieces add up.
    let mut rest = chunks;
    let mut decoded = 0;
    loop {
        let (size, after) = rest.split_once("\r\n").unwrap();
        let size = usize::from_str_radix(size, 16).unwrap();
        if size == 0 {
            assert_eq!(after, "\r\n");
            break;
        }
        assert_eq!(&after[size..size + 2], "\r\n");
        decoded += size;
        rest = &after[size + 2..];
    }
    assert_eq!(decoded, 4000);
}
