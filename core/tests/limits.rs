//! Size limits at their defaults: the request line (414), the head's bytes
//! and field count (431) and the body (413). Each is refused as soon as it is
//! passed, without waiting for the end of an endless input, and a request
//! exactly at the limit still passes.

mod support;

use portcullis_core::{BodyRead, Limits, ProtocolErrorKind as Kind};
use support::{accept, post_with, reject, Peer};

/// A GET whose request line (without CRLF) is exactly `len` bytes long.
fn request_line_of(len: usize) -> String {
    let fixed = "GET / HTTP/1.1".len();
    format!("GET /{} HTTP/1.1", "a".repeat(len - fixed))
}

/// A GET head of exactly `len` bytes, padded with one long field.
fn head_of(len: usize) -> String {
    let bare = "GET / HTTP/1.1\r\nHost: example.com\r\nX-Pad: \r\n\r\n".len();
    format!(
        "GET / HTTP/1.1\r\nHost: example.com\r\nX-Pad: {}\r\n\r\n",
        "p".repeat(len - bare)
    )
}

#[test]
fn the_defaults_are_no_looser_than_nginx() {
    let limits = Limits::default();
    assert_eq!(limits.max_request_line, 8 * 1024);
    assert_eq!(limits.max_head_bytes, 16 * 1024);
    assert_eq!(limits.max_headers, 100);
    assert_eq!(limits.max_body, 1024 * 1024);
    assert!(limits.input_buffer >= limits.max_head_bytes);
}

#[test]
fn a_request_line_of_8_kib_passes_and_one_byte_more_gets_414() {
    let line = request_line_of(8 * 1024);
    let request = accept(format!("{line}\r\nHost: example.com\r\n\r\n"));
    assert_eq!(request.target().len(), 8 * 1024 - "GET  HTTP/1.1".len());

    let line = request_line_of(8 * 1024 + 1);
    let rejection = reject(format!("{line}\r\nHost: example.com\r\n\r\n"));
    assert_eq!(rejection.error.kind(), Kind::TargetTooLong);
    assert!(rejection
        .output
        .starts_with("HTTP/1.1 414 URI Too Long\r\n"));
}

#[test]
fn an_endless_request_line_gets_414_before_it_ends() {
    let mut peer = Peer::new();
    peer.send("GET /");
    let mut sent = 5;
    while peer.conn.wants_read() {
        peer.send("aaaaaaaa");
        sent += 8;
        assert!(
            sent <= 8 * 1024 + 16,
            "the line was buffered past its limit"
        );
    }
    assert_eq!(peer.error().kind(), Kind::TargetTooLong);
    assert!(peer.output().starts_with("HTTP/1.1 414 "));
    assert!(peer.conn.is_closed());
}

#[test]
fn a_head_of_16_kib_passes_and_one_byte_more_gets_431() {
    let request = accept(head_of(16 * 1024));
    assert_eq!(request.raw_head().len(), 16 * 1024);

    let rejection = reject(head_of(16 * 1024 + 1));
    assert_eq!(rejection.error.kind(), Kind::HeadTooLarge);
    assert!(rejection
        .output
        .starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
}

#[test]
fn an_endless_head_gets_431_before_it_ends() {
    let mut peer = Peer::new();
    peer.send("GET / HTTP/1.1\r\nHost: example.com\r\n");
    let mut sent = 0;
    while peer.conn.wants_read() {
        peer.send("X-Many: more and more\r\n");
        sent += 23;
        assert!(
            sent <= 16 * 1024 + 23,
            "the head was buffered past its limit"
        );
    }
    assert_eq!(peer.error().kind(), Kind::HeadTooLarge);
    assert!(peer.output().starts_with("HTTP/1.1 431 "));
}

#[test]
fn one_hundred_fields_pass_and_one_more_gets_431() {
    // Host is one of the hundred.
    let head_with = |fields: usize| {
        let mut head = String::from("GET / HTTP/1.1\r\nHost: example.com\r\n");
        for i in 1..fields {
            head.push_str(&format!("X-Field-{i}: {i}\r\n"));
        }
        head + "\r\n"
    };
    let request = accept(head_with(100));
    assert_eq!(request.headers().count(), 100);

    let rejection = reject(head_with(101));
    assert_eq!(rejection.error.kind(), Kind::HeadTooLarge);
    assert_eq!(rejection.error.status(), 431);
}

#[test]
fn a_content_length_over_the_body_limit_gets_413_before_any_body() {
    let limit = Limits::default().max_body;
    let request = accept(post_with(&format!("Content-Length: {limit}\r\n")));
    assert_eq!(request.body(), portcullis_core::RequestBody::Length(limit));

    let rejection = reject(post_with(&format!("Content-Length: {}\r\n", limit + 1)));
    assert_eq!(rejection.error.kind(), Kind::BodyTooLarge);
    assert!(rejection
        .output
        .starts_with("HTTP/1.1 413 Content Too Large\r\n"));
}

#[test]
fn a_chunked_body_over_the_body_limit_gets_413_when_it_passes_it() {
    let limit = Limits::default().max_body;
    let mut peer = Peer::new();
    peer.send(post_with("Transfer-Encoding: chunked\r\n"));
    peer.request();
    // Exactly the limit, in chunks of 64 KiB, is fine...
    let chunk = vec![b'x'; 64 * 1024];
    let mut read = 0;
    let mut buf = vec![0; 64 * 1024];
    for _ in 0..limit / chunk.len() as u64 {
        peer.send(format!("{:x}\r\n", chunk.len()));
        let mut offset = 0;
        while offset < chunk.len() {
            offset += peer.offer(&chunk[offset..]);
            while let BodyRead::Data(n) = peer.conn.read_body(peer.now, &mut buf).unwrap() {
                read += n;
            }
        }
        peer.send("\r\n");
    }
    assert_eq!(read as u64, limit);
    // ...and one byte more is not.
    peer.send("1\r\nx\r\n");
    let BodyRead::Failed(error) = peer.conn.read_body(peer.now, &mut buf).unwrap() else {
        panic!("the oversized chunk was accepted");
    };
    assert_eq!(error.kind(), Kind::BodyTooLarge);
    assert_eq!(peer.error(), error);
    assert!(peer
        .output()
        .starts_with("HTTP/1.1 413 Content Too Large\r\n"));
    assert!(peer.conn.is_closed());
}

#[test]
fn smaller_limits_are_enforced_too() {
    let limits = Limits {
        max_request_line: 64,
        max_head_bytes: 128,
        max_headers: 3,
        ..Limits::default()
    };
    let refuse = |input: &str| {
        let mut peer = Peer::with_limits(limits.clone());
        peer.send(input);
        peer.error().kind()
    };
    let long_line = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(60));
    assert_eq!(refuse(&long_line), Kind::TargetTooLong);
    let big_head = format!(
        "GET / HTTP/1.1\r\nHost: h\r\nX: {}\r\n\r\n",
        "a".repeat(120)
    );
    assert_eq!(refuse(&big_head), Kind::HeadTooLarge);
    let many = "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
    assert_eq!(refuse(many), Kind::HeadTooLarge);
}

#[test]
fn an_input_buffer_set_below_the_head_limit_is_raised_so_oversized_heads_are_seen() {
    // With a buffer no larger than the head limit, a head one byte over it
    // would fill the buffer, stop reading and wait for the head timeout
    // instead of getting its 431.
    let limits = Limits {
        input_buffer: 100,
        max_head_bytes: 120,
        max_request_line: 60,
        ..Limits::default()
    };
    let mut peer = Peer::with_limits(limits);
    assert_eq!(peer.conn.limits().input_buffer, 121);
    // So a head one byte over the limit is refused at once.
    peer.offer(format!("GET / HTTP/1.1\r\nX: {}", "a".repeat(120)));
    assert_eq!(peer.error().kind(), Kind::HeadTooLarge);
}
