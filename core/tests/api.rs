//! API misuse: calls out of order get an [`ApiError`], send nothing and leave
//! the connection exactly as it was (its whole state, compared through its
//! `Debug` form), so the application can recover.

mod support;

use portcullis_core::{ApiError, ResponseBody, ResponseHead};
use support::{get, Peer};

/// Runs `misuse` and checks it failed with `expected` without changing the
/// connection.
#[track_caller]
fn refused_without_effect<T: std::fmt::Debug>(
    peer: &mut Peer,
    expected: ApiError,
    misuse: impl FnOnce(&mut Peer) -> Result<T, ApiError>,
) {
    let before = format!("{:?}", peer.conn);
    let result = misuse(peer);
    assert_eq!(result.unwrap_err(), expected);
    assert_eq!(format!("{:?}", peer.conn), before, "the state changed");
}

fn with_request() -> Peer {
    let mut peer = Peer::new();
    peer.send(get("/"));
    peer.request();
    peer
}

#[test]
fn nothing_can_be_answered_or_read_before_a_request() {
    let mut peer = Peer::new();
    refused_without_effect(&mut peer, ApiError::NoRequest, |p| {
        p.start(ResponseHead::new(200))
    });
    refused_without_effect(&mut peer, ApiError::NoRequest, |p| {
        p.conn.send_body(p.now, b"x")
    });
    refused_without_effect(&mut peer, ApiError::NoRequest, |p| {
        p.conn.finish_response(p.now)
    });
    refused_without_effect(&mut peer, ApiError::NoRequest, |p| {
        p.conn.read_body(p.now, &mut [0; 4])
    });
    // A half-received head is no request either.
    peer.send("GET / HTTP/1.1\r\n");
    refused_without_effect(&mut peer, ApiError::NoRequest, |p| {
        p.conn.read_body(p.now, &mut [0; 4])
    });
    assert_eq!(peer.output(), "");
}

#[test]
fn body_bytes_need_a_response_head_first() {
    let mut peer = with_request();
    refused_without_effect(&mut peer, ApiError::ResponseNotStarted, |p| {
        p.conn.send_body(p.now, b"early")
    });
    refused_without_effect(&mut peer, ApiError::ResponseNotStarted, |p| {
        p.conn.finish_response(p.now)
    });
    // The request is still there to be answered.
    peer.respond(200, "fine");
    assert!(peer.output().ends_with("fine"));
}

#[test]
fn a_request_gets_one_response_head() {
    let mut peer = with_request();
    peer.start(ResponseHead::new(200).body(ResponseBody::Length(2)))
        .unwrap();
    refused_without_effect(&mut peer, ApiError::ResponseAlreadyStarted, |p| {
        p.start(ResponseHead::new(500))
    });
    peer.conn.send_body(peer.now, b"ok").unwrap();
    peer.conn.finish_response(peer.now).unwrap();
    let output = peer.output();
    assert_eq!(output.matches("HTTP/1.1 ").count(), 1, "{output:?}");
}

#[test]
fn a_response_is_finished_once() {
    let mut peer = with_request();
    peer.respond(200, "ok");
    refused_without_effect(&mut peer, ApiError::NoRequest, |p| {
        p.conn.finish_response(p.now)
    });
    refused_without_effect(&mut peer, ApiError::NoRequest, |p| {
        p.conn.send_body(p.now, b"more")
    });
    assert!(!peer.conn.is_closing());
}

#[test]
fn a_closed_connection_says_so() {
    let mut peer = Peer::new();
    peer.send("GET / HTTP/1.1\r\n\r\n");
    assert_eq!(peer.error().status(), 400);
    refused_without_effect(&mut peer, ApiError::Closed, |p| {
        p.start(ResponseHead::new(200))
    });
    refused_without_effect(&mut peer, ApiError::Closed, |p| {
        p.conn.read_body(p.now, &mut [0; 4])
    });
    refused_without_effect(&mut peer, ApiError::Closed, |p| {
        p.conn.finish_response(p.now)
    });
}

#[test]
fn a_refused_head_leaves_the_request_waiting_for_a_good_one() {
    let mut peer = with_request();
    refused_without_effect(&mut peer, ApiError::InvalidHeader("X-Bad".into()), |p| {
        p.start(ResponseHead::new(200).header("X-Bad", "a\r\nb"))
    });
    refused_without_effect(&mut peer, ApiError::InvalidStatus(1000), |p| {
        p.start(ResponseHead::new(1000))
    });
    peer.respond(200, "recovered");
    assert!(peer.output().ends_with("recovered"));
}

#[test]
fn errors_describe_themselves() {
    let error = ApiError::BodyLengthMismatch {
        declared: 4,
        given: 5,
    };
    assert_eq!(
        error.to_string(),
        "response body length mismatch: declared 4, given 5"
    );
}
