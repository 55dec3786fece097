//! Request heads: incremental parsing under any split of the input, the
//! request the application sees, and the syntax rules a head must follow
//! (RFC 9112 §2–§5), each refused with its status and a close.

mod support;

use portcullis_core::{ProtocolErrorKind as Kind, RequestBody, Version};
use support::{accept, get, reject, Peer};

/// A head with a bit of everything: absolute path with a query, several
/// fields, odd but legal whitespace around values, and a Content-Length body
/// behind it.
const HEAD: &str = "POST /login?next=%2Fhome HTTP/1.1\r\n\
                    Host: example.com:8443\r\n\
                    User-Agent: story/1.0\r\n\
                    Cookie: a=1; b=2\r\n\
                    X-Tab:\tvalue with spaces\t\r\n\
                    Content-Length: 5\r\n\
                    \r\n";

/// Feeds `pieces` one after the other and returns what came out: the
/// request, its body and the answer.
fn feed_pieces(pieces: &[&[u8]]) -> (portcullis_core::Request, Vec<u8>, String) {
    let mut peer = Peer::new();
    for piece in pieces {
        peer.send(piece);
    }
    let request = peer.request();
    let body = peer.read_body();
    peer.respond(200, "ok");
    (request, body, peer.output())
}

#[test]
fn a_head_split_at_any_single_point_parses_the_same() {
    let input = format!("{HEAD}hello");
    let input = input.as_bytes();
    let whole = feed_pieces(&[input]);
    assert_eq!(whole.1, b"hello");
    for cut in 0..=input.len() {
        let (a, b) = input.split_at(cut);
        assert_eq!(feed_pieces(&[a, b]), whole, "cut at {cut}");
    }
}

#[test]
fn a_head_split_at_any_two_points_parses_the_same() {
    let input = get("/a?b=c");
    let input = input.as_bytes();
    let whole = feed_pieces(&[input]);
    for first in 0..=input.len() {
        for second in first..=input.len() {
            let pieces = [&input[..first], &input[first..second], &input[second..]];
            assert_eq!(feed_pieces(&pieces), whole, "cuts at {first} and {second}");
        }
    }
}

#[test]
fn a_head_fed_one_byte_at_a_time_parses_the_same() {
    let input = format!("{HEAD}hello");
    let whole = feed_pieces(&[input.as_bytes()]);
    let bytes: Vec<&[u8]> = input.as_bytes().chunks(1).collect();
    assert_eq!(feed_pieces(&bytes), whole);
}

#[test]
fn the_request_shows_what_the_client_sent() {
    let request = accept(HEAD);
    assert_eq!(request.method(), "POST");
    assert_eq!(request.target(), "/login?next=%2Fhome");
    assert_eq!(request.path(), "/login");
    assert_eq!(request.query(), Some("next=%2Fhome"));
    assert_eq!(request.version(), Version::Http11);
    assert_eq!(request.host(), Some("example.com:8443"));
    assert_eq!(request.body(), RequestBody::Length(5));
    // Names keep their case, values lose the whitespace around them.
    let fields: Vec<(&str, &[u8])> = request.headers().collect();
    assert_eq!(
        fields,
        [
            ("Host", &b"example.com:8443"[..]),
            ("User-Agent", b"story/1.0"),
            ("Cookie", b"a=1; b=2"),
            ("X-Tab", b"value with spaces"),
            ("Content-Length", b"5"),
        ]
    );
    assert_eq!(request.header("cookie"), Some(&b"a=1; b=2"[..]));
    assert_eq!(request.raw_head(), HEAD.as_bytes());
    assert!(request.wants_keep_alive());
    assert!(!request.expects_continue());
}

#[test]
fn absolute_and_asterisk_form_targets_are_accepted() {
    let request = accept("GET http://example.com/a/b?c HTTP/1.1\r\nHost: example.com\r\n\r\n");
    assert_eq!(request.path(), "/a/b");
    assert_eq!(request.query(), Some("c"));
    let request = accept("OPTIONS * HTTP/1.1\r\nHost: example.com\r\n\r\n");
    assert_eq!(request.target(), "*");
}

#[test]
fn a_target_in_no_known_form_is_refused() {
    for target in [
        "login",
        "example.com:443",
        "ftp://example.com/",
        "*",
        "http://a@b/",
    ] {
        let rejection = reject(get(target));
        assert_eq!(rejection.error.kind(), Kind::BadTarget, "{target}");
        assert_eq!(rejection.error.status(), 400);
    }
}

#[test]
fn empty_lines_before_the_request_line_are_ignored() {
    // RFC 9112 §2.2: robustness for clients that add a CRLF after a body.
    let request = accept(format!("\r\n\r\n{}", get("/after-blank-lines")));
    assert_eq!(request.path(), "/after-blank-lines");
}

#[test]
fn obs_fold_is_refused() {
    let rejection = reject("GET / HTTP/1.1\r\nHost: example.com\r\nX-Long: a\r\n  b\r\n\r\n");
    assert_eq!(rejection.error.status(), 400);
    assert!(rejection.output.starts_with("HTTP/1.1 400 Bad Request\r\n"));
}

#[test]
fn whitespace_before_the_colon_is_refused() {
    for field in ["Host : example.com", "Host\t: example.com"] {
        let rejection = reject(format!("GET / HTTP/1.1\r\n{field}\r\n\r\n"));
        assert_eq!(rejection.error.status(), 400, "{field:?}");
    }
}

#[test]
fn a_bare_cr_is_refused_in_values_and_in_the_request_line() {
    let rejection = reject("GET / HTTP/1.1\r\nHost: example.com\r\nX-A: a\rb\r\n\r\n");
    assert_eq!(rejection.error.status(), 400);
    let rejection = reject("GET /\r HTTP/1.1\r\nHost: example.com\r\n\r\n");
    assert_eq!(rejection.error.status(), 400);
}

#[test]
fn a_bare_lf_line_ending_is_refused() {
    let rejection = reject("GET / HTTP/1.1\nHost: example.com\r\n\r\n");
    assert_eq!(rejection.error.kind(), Kind::BareLineFeed);
    let rejection = reject("GET / HTTP/1.1\r\nHost: example.com\n\r\n");
    assert_eq!(rejection.error.kind(), Kind::BareLineFeed);
    assert_eq!(rejection.error.status(), 400);
}

#[test]
fn nul_and_other_controls_in_a_value_are_refused() {
    for control in [0x00u8, 0x01, 0x0b, 0x1b, 0x7f] {
        let mut input = b"GET / HTTP/1.1\r\nHost: example.com\r\nX-A: a".to_vec();
        input.push(control);
        input.extend_from_slice(b"b\r\n\r\n");
        let rejection = reject(&input);
        assert_eq!(rejection.error.status(), 400, "control {control:#04x}");
    }
}

#[test]
fn an_http11_request_without_host_is_refused() {
    let rejection = reject("GET / HTTP/1.1\r\nAccept: */*\r\n\r\n");
    assert_eq!(rejection.error.kind(), Kind::BadHost);
    assert_eq!(rejection.error.status(), 400);
}

#[test]
fn two_host_fields_are_refused_on_either_version() {
    for version in ["HTTP/1.1", "HTTP/1.0"] {
        let rejection = reject(format!(
            "GET / {version}\r\nHost: a.example\r\nHost: b.example\r\n\r\n"
        ));
        assert_eq!(rejection.error.kind(), Kind::BadHost, "{version}");
    }
}

#[test]
fn a_host_that_is_not_an_authority_is_refused() {
    for host in ["a b", "user@evil.example", "a/b"] {
        let rejection = reject(format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n"));
        assert_eq!(rejection.error.kind(), Kind::BadHost, "{host:?}");
    }
}

#[test]
fn http10_may_omit_host() {
    let request = accept("GET / HTTP/1.0\r\n\r\n");
    assert_eq!(request.version(), Version::Http10);
    assert_eq!(request.host(), None);
}

#[test]
fn a_well_formed_unknown_version_gets_505() {
    for version in ["HTTP/1.2", "HTTP/2.0", "HTTP/0.9", "HTTP/3.0"] {
        let rejection = reject(format!("GET / {version}\r\nHost: example.com\r\n\r\n"));
        assert_eq!(
            rejection.error.kind(),
            Kind::UnsupportedVersion,
            "{version}"
        );
        assert!(rejection
            .output
            .starts_with("HTTP/1.1 505 HTTP Version Not Supported\r\n"));
    }
}

#[test]
fn a_garbage_version_gets_400() {
    for version in [
        "HTTX/1.1",
        "http/1.1",
        "HTTP/1.10",
        "HTTP/11",
        "HTTP/1.x",
        "1.1",
    ] {
        let rejection = reject(format!("GET / {version}\r\nHost: example.com\r\n\r\n"));
        assert_eq!(rejection.error.status(), 400, "{version}");
    }
}

#[test]
fn a_request_line_with_extra_spaces_is_refused() {
    for line in [
        "GET  / HTTP/1.1",
        "GET / HTTP/1.1 ",
        " GET / HTTP/1.1",
        "GET /",
    ] {
        let rejection = reject(format!("{line}\r\nHost: example.com\r\n\r\n"));
        assert_eq!(rejection.error.status(), 400, "{line:?}");
    }
}
