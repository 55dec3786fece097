//! Body framing in the head (RFC 9112 §6): the rules that keep a front server
//! and the server behind it from ever disagreeing on where a request ends.
//! Every ambiguous or unsupported framing gets its status and a close, never
//! a silent repair.

mod support;

use portcullis_core::{ProtocolErrorKind as Kind, RequestBody};
use support::{accept, post_with, reject};

#[test]
fn content_length_together_with_transfer_encoding_is_refused() {
    // The classic smuggling pair, in both orders.
    for fields in [
        "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
        "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
    ] {
        let rejection = reject(format!("{}0\r\n\r\n", post_with(fields)));
        assert_eq!(
            rejection.error.kind(),
            Kind::ContentLengthWithTransferEncoding
        );
        assert!(rejection.output.starts_with("HTTP/1.1 400 Bad Request\r\n"));
    }
}

#[test]
fn a_content_length_that_is_not_plain_digits_is_refused() {
    for value in [
        "+5",
        "-1",
        "0x10",
        "1 1",
        "5, 5",
        "5,",
        "",
        "1e3",
        "18446744073709551616",
        "99999999999999999999999",
    ] {
        let rejection = reject(post_with(&format!("Content-Length: {value}\r\n")));
        assert_eq!(rejection.error.kind(), Kind::BadContentLength, "{value:?}");
        assert_eq!(rejection.error.status(), 400);
    }
}

#[test]
fn a_repeated_content_length_is_refused_even_when_equal() {
    for (first, second) in [("5", "6"), ("5", "5")] {
        let rejection = reject(post_with(&format!(
            "Content-Length: {first}\r\nContent-Length: {second}\r\n"
        )));
        assert_eq!(rejection.error.kind(), Kind::BadContentLength);
    }
}

#[test]
fn a_plain_content_length_frames_the_body() {
    let request = accept(post_with("Content-Length: 0012\r\n"));
    assert_eq!(request.body(), RequestBody::Length(12));
    let request = accept(post_with("Content-Length: 0\r\n"));
    assert_eq!(request.body(), RequestBody::None);
    let request = accept(post_with(""));
    assert_eq!(request.body(), RequestBody::None);
}

#[test]
fn a_final_chunked_coding_frames_the_body_whatever_its_case() {
    for value in ["chunked", "Chunked", "CHUNKED"] {
        let request = accept(post_with(&format!("Transfer-Encoding: {value}\r\n")));
        assert_eq!(request.body(), RequestBody::Chunked, "{value}");
    }
}

#[test]
fn a_coding_we_do_not_decode_gets_501() {
    for value in ["gzip", "identity", "gzip, chunked", "deflate,chunked"] {
        let rejection = reject(post_with(&format!("Transfer-Encoding: {value}\r\n")));
        assert_eq!(
            rejection.error.kind(),
            Kind::UnsupportedTransferCoding,
            "{value:?}"
        );
        assert!(rejection
            .output
            .starts_with("HTTP/1.1 501 Not Implemented\r\n"));
    }
}

#[test]
fn a_transfer_encoding_that_is_not_exactly_a_final_chunked_gets_400() {
    for value in [
        "chunked, gzip",
        "chunked;q=1",
        "chunked, chunked",
        "",
        ",",
        "chunked,",
        "\"chunked\"",
    ] {
        let rejection = reject(post_with(&format!("Transfer-Encoding: {value}\r\n")));
        assert_eq!(
            rejection.error.kind(),
            Kind::BadTransferEncoding,
            "{value:?}"
        );
        assert_eq!(rejection.error.status(), 400);
    }
}

#[test]
fn chunked_named_in_two_fields_is_refused() {
    let rejection = reject(post_with(
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
    ));
    assert_eq!(rejection.error.kind(), Kind::BadTransferEncoding);
}

#[test]
fn transfer_encoding_on_http10_is_refused() {
    // An HTTP/1.0 hop would not understand chunked: refuse it outright.
    let rejection = reject("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
    assert_eq!(rejection.error.kind(), Kind::TransferEncodingOnHttp10);
    assert_eq!(rejection.error.status(), 400);
}
