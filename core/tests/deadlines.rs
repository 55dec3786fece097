//! Deadlines as outputs, on virtual time: the connection names its next
//! deadline, and acting on it one nanosecond early does nothing while acting
//! exactly on it does. Header-read (slowloris) and body-idle timeouts answer
//! 408; an idle keep-alive connection closes silently; a peer that stops
//! reading is dropped.

mod support;

use portcullis_core::{
    ApiError, BodyRead, Event, Limits, ProtocolErrorKind as Kind, ResponseBody, ResponseHead,
};
use support::{get, post_with, secs, Peer, NS};

/// Checks that the connection's next deadline is `d` after it opened, that
/// handling time 1 ns before it changes nothing, and then handles it.
#[track_caller]
fn reach_deadline(peer: &mut Peer, d: std::time::Duration) {
    assert_eq!(peer.conn.poll_timeout(), Some(peer.at(d)), "the deadline");
    peer.set_time(d - NS);
    let before = format!("{:?}", peer.conn);
    peer.tick();
    assert_eq!(format!("{:?}", peer.conn), before, "acted 1 ns early");
    peer.set_time(d);
    peer.tick();
}

/// The connection answered 408 and closed once that was sent.
#[track_caller]
fn assert_timed_out_with_408(peer: &mut Peer) {
    assert_eq!(peer.error().kind(), Kind::Timeout);
    let output = peer.output();
    assert!(
        output.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
        "{output:?}"
    );
    assert!(output.contains("\r\nConnection: close\r\n"));
    assert!(peer.conn.is_closed());
    assert_eq!(peer.conn.poll_timeout(), None);
}

#[test]
fn a_fresh_connection_must_send_its_head_within_the_header_timeout() {
    let mut peer = Peer::new();
    assert_eq!(Limits::default().head_timeout, secs(10));
    // Nothing at all arrived: there is no one to answer, so close quietly.
    reach_deadline(&mut peer, secs(10));
    assert!(peer.conn.is_closed());
    assert_eq!(peer.events(), []);
    assert_eq!(peer.output(), "");
}

#[test]
fn a_slowloris_head_gets_408_counted_from_its_first_byte() {
    let mut peer = Peer::new();
    peer.set_time(secs(3));
    peer.send("G");
    assert_eq!(peer.conn.poll_timeout(), Some(peer.at(secs(13))));
    // Trickling more bytes does not buy more time.
    for (second, byte) in (4..13).zip("ET / HTTP/".bytes()) {
        peer.set_time(secs(second));
        peer.send([byte]);
        peer.tick();
        assert_eq!(peer.conn.poll_timeout(), Some(peer.at(secs(13))));
    }
    reach_deadline(&mut peer, secs(13));
    assert_timed_out_with_408(&mut peer);
}

#[test]
fn the_next_head_on_a_kept_alive_connection_has_the_header_timeout_too() {
    let mut peer = Peer::new();
    peer.send(get("/"));
    peer.request();
    peer.respond(200, "ok");
    peer.output();
    peer.set_time(secs(30));
    peer.send("GET /slow HTTP/1.1\r\n");
    reach_deadline(&mut peer, secs(40));
    assert_timed_out_with_408(&mut peer);
}

#[test]
fn an_idle_body_gets_408() {
    let mut peer = Peer::new();
    peer.send(post_with("Content-Length: 10\r\n"));
    peer.request();
    // The body clock starts with the head...
    assert_eq!(peer.conn.poll_timeout(), Some(peer.at(secs(15))));
    // ...and restarts with every body byte.
    peer.set_time(secs(5));
    peer.send("abc");
    assert_eq!(
        peer.conn.read_body(peer.now, &mut [0; 16]).unwrap(),
        BodyRead::Data(3)
    );
    reach_deadline(&mut peer, secs(20));
    assert_timed_out_with_408(&mut peer);
}

#[test]
fn an_idle_chunked_body_gets_408() {
    let mut peer = Peer::new();
    peer.send(post_with("Transfer-Encoding: chunked\r\n") + "5\r\nab");
    peer.request();
    reach_deadline(&mut peer, secs(15));
    assert_timed_out_with_408(&mut peer);
}

#[test]
fn a_body_stalled_by_the_application_is_not_the_peers_fault() {
    let limits = Limits {
        input_buffer: 1024,
        max_head_bytes: 512,
        max_request_line: 256,
        ..Limits::default()
    };
    let mut peer = Peer::with_limits(limits);
    peer.send(post_with("Content-Length: 4096\r\n"));
    peer.request();
    let body = vec![b'b'; 4096];
    let taken = peer.offer(&body);
    assert!(!peer.conn.wants_read());
    // The buffer is full and the application is busy: no body deadline runs
    // while the peer cannot send.
    assert_eq!(peer.conn.poll_timeout(), None);
    peer.set_time(secs(20));
    peer.tick();
    // The application reads at last: the peer gets a whole idle period from
    // now to send more, not a deadline that passed while it was blocked.
    let mut buf = [0; 512];
    peer.conn.read_body(peer.now, &mut buf).unwrap();
    assert!(peer.conn.wants_read());
    assert_eq!(peer.conn.poll_timeout(), Some(peer.at(secs(35))));
    peer.tick();
    peer.no_event();
    peer.send(&body[taken..taken + 512]);
    assert!(!peer.conn.is_closing());
}

#[test]
fn no_deadline_runs_while_the_application_works_on_a_complete_request() {
    let mut peer = Peer::new();
    peer.send(post_with("Content-Length: 2\r\n") + "ok");
    peer.request();
    assert_eq!(peer.conn.poll_timeout(), None);
    peer.set_time(secs(3600));
    peer.tick();
    peer.respond(200, "slow but fine");
    assert!(peer.output().starts_with("HTTP/1.1 200 OK\r\n"));
}

#[test]
fn an_idle_keep_alive_connection_closes_silently() {
    let mut peer = Peer::new();
    peer.set_time(secs(2));
    peer.send(get("/"));
    peer.request();
    peer.respond(200, "ok");
    peer.output();
    assert_eq!(Limits::default().keep_alive_timeout, secs(60));
    reach_deadline(&mut peer, secs(62));
    // RFC 9112 §9.5: no 408 to a client that may be about to reuse the
    // connection; just close.
    assert!(peer.conn.is_closed());
    assert_eq!(peer.events(), []);
    assert_eq!(peer.output(), "");
}

#[test]
fn empty_lines_do_not_keep_an_idle_connection_alive() {
    let mut peer = Peer::new();
    for second in 1..10 {
        peer.set_time(secs(second));
        peer.send("\r\n");
    }
    reach_deadline(&mut peer, secs(10));
    assert!(peer.conn.is_closed());
}

#[test]
fn a_peer_that_stops_reading_is_dropped() {
    let mut peer = Peer::new();
    peer.send(get("/"));
    peer.request();
    peer.set_time(secs(1));
    peer.respond(200, "a response the peer never reads");
    assert_eq!(Limits::default().send_timeout, secs(30));
    assert_eq!(peer.conn.poll_timeout(), Some(peer.at(secs(31))));
    // Any progress restarts the clock.
    peer.set_time(secs(10));
    peer.conn.advance_output(peer.now, 5);
    reach_deadline(&mut peer, secs(40));
    // Nothing more can reach it: drop what is pending and close now.
    assert!(peer.conn.is_closed());
    assert_eq!(peer.conn.pending_output(), b"");
    assert_eq!(peer.conn.poll_timeout(), None);
}

#[test]
fn a_peer_that_stops_reading_a_streamed_response_is_dropped() {
    let mut peer = Peer::new();
    peer.send(get("/stream"));
    peer.request();
    peer.start(ResponseHead::new(200).body(ResponseBody::Streamed))
        .unwrap();
    peer.conn.send_body(peer.now, b"tick").unwrap();
    reach_deadline(&mut peer, secs(30));
    assert!(peer.conn.is_closed());
    // The application learns it through the API, instead of queueing bytes
    // that could never be sent.
    assert_eq!(
        peer.conn.send_body(peer.now, b"tock"),
        Err(ApiError::Closed)
    );
    assert_eq!(peer.conn.finish_response(peer.now), Err(ApiError::Closed));
}

#[test]
fn an_error_answer_the_peer_never_reads_is_dropped_too() {
    let mut peer = Peer::new();
    peer.send("GET / HTTP/9.9\r\n\r\n");
    assert_eq!(peer.error().status(), 505);
    reach_deadline(&mut peer, secs(30));
    assert!(peer.conn.is_closed());
}

#[test]
fn events_are_queued_by_timeouts_only_when_due() {
    let mut peer = Peer::new();
    peer.send("GET / HTTP/1.1\r\n");
    peer.set_time(secs(10) - NS);
    peer.tick();
    assert_eq!(peer.events(), []);
    peer.set_time(secs(10));
    peer.tick();
    assert!(matches!(peer.events()[..], [Event::Error(_)]));
}

#[test]
fn keep_alive_idleness_starts_when_the_response_is_sent() {
    let mut peer = Peer::new();
    peer.send(get("/download"));
    peer.request();
    peer.respond(200, &"x".repeat(1000));
    // A slow client takes 50 s to take the response, in steady progress...
    for second in [20, 40, 50] {
        peer.set_time(secs(second));
        peer.conn.advance_output(peer.now, 400);
    }
    assert!(!peer.conn.wants_write());
    // ...and then has the whole keep-alive period to send its next request.
    peer.set_time(secs(60));
    peer.tick();
    assert!(
        !peer.conn.is_closing(),
        "closed while it was still receiving"
    );
    reach_deadline(&mut peer, secs(110));
    assert!(peer.conn.is_closed());
}
