//! Persistence and pipelining (RFC 9112 §9): which connections stay open
//! after a response, how pipelined requests wait their turn, and how the end
//! of the peer's stream is handled.

mod support;

use portcullis_core::{BodyRead, Event, ProtocolErrorKind as Kind, ResponseBody, ResponseHead};
use support::{get, post_with, Peer};

#[test]
fn http11_stays_open_by_default() {
    let mut peer = Peer::new();
    peer.send(get("/one"));
    assert!(peer.request().wants_keep_alive());
    peer.respond(200, "one");
    let output = peer.output();
    assert!(!output.contains("Connection:"), "{output:?}");
    assert!(!peer.conn.is_closing());
    assert!(peer.conn.wants_read());
    peer.send(get("/two"));
    assert_eq!(peer.request().path(), "/two");
}

#[test]
fn http10_closes_after_the_response_by_default() {
    let mut peer = Peer::new();
    peer.send("GET / HTTP/1.0\r\n\r\n");
    assert!(!peer.request().wants_keep_alive());
    peer.respond(200, "bye");
    let output = peer.output();
    assert!(output.contains("\r\nConnection: close\r\n"), "{output:?}");
    assert!(output.ends_with("\r\n\r\nbye"));
    assert!(peer.conn.is_closed());
    // Whatever the peer still sends is ignored.
    assert!(!peer.conn.wants_read());
    peer.send("GET /late HTTP/1.0\r\n\r\n");
    assert_eq!(peer.events(), []);
}

#[test]
fn http10_with_keep_alive_stays_open_and_says_so() {
    let mut peer = Peer::new();
    peer.send("GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert!(peer.request().wants_keep_alive());
    peer.respond(200, "a");
    let output = peer.output();
    assert!(
        output.contains("\r\nConnection: keep-alive\r\n"),
        "{output:?}"
    );
    assert!(!peer.conn.is_closing());
    peer.send("GET /b HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
    assert_eq!(peer.request().path(), "/b");
}

#[test]
fn connection_close_on_http11_is_honoured() {
    let mut peer = Peer::new();
    // A pipelined request after the close is never handed out.
    peer.send(
        "GET / HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n".to_string()
            + &get("/ignored"),
    );
    assert!(!peer.request().wants_keep_alive());
    peer.respond(200, "bye");
    assert!(peer.output().contains("\r\nConnection: close\r\n"));
    assert!(peer.conn.is_closed());
    assert_eq!(peer.events(), []);
}

#[test]
fn close_among_other_connection_options_is_honoured() {
    let mut peer = Peer::new();
    peer.send("GET / HTTP/1.1\r\nHost: example.com\r\nConnection: keep-alive, Close\r\n\r\n");
    assert!(!peer.request().wants_keep_alive());
}

#[test]
fn the_application_may_close_after_a_response() {
    let mut peer = Peer::new();
    peer.send(get("/logout"));
    peer.request();
    peer.start(ResponseHead::new(200).close()).unwrap();
    peer.conn.finish_response(peer.now).unwrap();
    assert!(peer.output().contains("\r\nConnection: close\r\n"));
    assert!(peer.conn.is_closed());
}

#[test]
fn a_pipelined_request_waits_until_the_response_before_it_is_finished() {
    let mut peer = Peer::new();
    peer.send(get("/first") + &get("/second") + &get("/third"));
    assert_eq!(peer.request().path(), "/first");
    // The others are buffered, not handed out.
    assert_eq!(peer.events(), []);

    // Not even once the response has started.
    peer.start(ResponseHead::new(200).body(ResponseBody::Length(5)))
        .unwrap();
    peer.conn.send_body(peer.now, b"first").unwrap();
    assert_eq!(peer.events(), []);
    peer.conn.finish_response(peer.now).unwrap();
    assert_eq!(peer.request().path(), "/second");
    assert_eq!(peer.events(), []);
    peer.respond(200, "second");
    assert_eq!(peer.request().path(), "/third");
    peer.respond(200, "third");

    // The answers are in order.
    let output = peer.output();
    let bodies: Vec<&str> = output
        .split("HTTP/1.1 200 OK\r\n")
        .skip(1)
        .map(|r| r.rsplit("\r\n\r\n").next().unwrap())
        .collect();
    assert_eq!(bodies, ["first", "second", "third"]);
}

#[test]
fn the_bytes_after_a_body_belong_to_the_next_request() {
    let stream = post_with("Content-Length: 5\r\n")
        + "hello"
        + &post_with("Transfer-Encoding: chunked\r\n")
        + "3\r\nabc\r\n0\r\n\r\n"
        + &get("/last");
    // However the stream is cut, the three requests and their bodies come out.
    for cut in 0..=stream.len() {
        let (a, b) = stream.split_at(cut);
        let mut peer = Peer::new();
        peer.send(a);
        let mut seen = Vec::new();
        let mut fed_rest = false;
        while seen.len() < 3 {
            match peer.conn.poll_event() {
                Some(Event::Request(request)) => {
                    if !fed_rest {
                        peer.send(b);
                        fed_rest = true;
                    }
                    let body = peer.read_body();
                    seen.push((request.path().to_string(), body));
                    peer.respond(200, "ok");
                }
                Some(Event::BodyReadable) => {}
                None if !fed_rest => {
                    peer.send(b);
                    fed_rest = true;
                }
                other => panic!("cut {cut}: {other:?}"),
            }
        }
        assert_eq!(
            seen,
            [
                ("/submit".to_string(), b"hello".to_vec()),
                ("/submit".to_string(), b"abc".to_vec()),
                ("/last".to_string(), Vec::new()),
            ],
            "cut {cut}"
        );
    }
}

#[test]
fn a_broken_pipelined_request_is_refused_after_the_answer_before_it() {
    let mut peer = Peer::new();
    peer.send(get("/good") + "GET /bad HTTP/1.1\r\n\r\n");
    assert_eq!(peer.request().path(), "/good");
    peer.respond(200, "good");
    assert_eq!(peer.error().kind(), Kind::BadHost);
    let output = peer.output();
    let bad = output.find("HTTP/1.1 400 Bad Request\r\n").expect("a 400");
    assert!(output[..bad].starts_with("HTTP/1.1 200 OK\r\n"));
    assert!(output[..bad].ends_with("\r\n\r\ngood"));
    assert!(peer.conn.is_closed());
}

#[test]
fn empty_lines_between_pipelined_requests_are_ignored() {
    let mut peer = Peer::new();
    peer.send(get("/a") + "\r\n\r\n" + &get("/b"));
    assert_eq!(peer.request().path(), "/a");
    peer.respond(200, "a");
    assert_eq!(peer.request().path(), "/b");
}

#[test]
fn eof_after_a_complete_request_still_lets_the_application_answer() {
    let mut peer = Peer::new();
    peer.send(get("/last-words"));
    peer.eof();
    assert_eq!(peer.request().path(), "/last-words");
    assert!(!peer.conn.is_closed());
    peer.respond(200, "heard you");
    let output = peer.output();
    assert!(output.starts_with("HTTP/1.1 200 OK\r\n"));
    assert!(output.contains("\r\nConnection: close\r\n"));
    assert!(output.ends_with("heard you"));
    assert!(peer.conn.is_closed());
}

#[test]
fn eof_after_a_request_with_its_whole_body_still_lets_the_application_answer() {
    let mut peer = Peer::new();
    peer.send(post_with("Content-Length: 3\r\n") + "abc");
    peer.eof();
    peer.request();
    assert_eq!(peer.read_body(), b"abc");
    peer.respond(200, "ok");
    assert!(peer.output().contains("\r\nConnection: close\r\n"));
    assert!(peer.conn.is_closed());
}

#[test]
fn eof_in_the_middle_of_a_head_is_a_truncated_request() {
    let mut peer = Peer::new();
    peer.send("GET /half HTTP/1.1\r\nHost: exa");
    peer.eof();
    assert_eq!(peer.error().kind(), Kind::Truncated);
    assert!(peer.conn.is_closed());
    assert_eq!(peer.events(), []);
}

#[test]
fn eof_on_an_idle_connection_closes_it_quietly() {
    let mut peer = Peer::new();
    peer.send(get("/"));
    peer.request();
    peer.respond(200, "ok");
    peer.output();
    peer.eof();
    assert_eq!(peer.events(), []);
    assert!(peer.conn.is_closed());
}

#[test]
fn eof_while_a_response_is_still_being_sent_lets_it_finish() {
    let mut peer = Peer::new();
    peer.send(get("/"));
    peer.request();
    peer.respond(200, "ok");
    // The adapter has not written the answer yet.
    peer.eof();
    assert!(!peer.conn.is_closed());
    assert!(peer.output().ends_with("\r\n\r\nok"));
    assert!(peer.conn.is_closed());
}

#[test]
fn eof_after_pipelined_requests_answers_every_complete_one_then_closes() {
    // A client may send its requests and half-close at once: each complete
    // request is still answered in order, only the last says close.
    let mut peer = Peer::new();
    peer.send(get("/one") + &get("/two") + "GET /thr");
    peer.eof();
    assert_eq!(peer.request().path(), "/one");
    peer.respond(200, "one");
    let first = peer.output();
    assert!(!first.contains("Connection: close"), "{first:?}");
    assert_eq!(peer.request().path(), "/two");
    peer.respond(200, "two");
    let second = peer.output();
    assert!(second.contains("\r\nConnection: close\r\n"), "{second:?}");
    // The unfinished third request can never complete.
    assert_eq!(peer.error().kind(), Kind::Truncated);
    assert!(peer.conn.is_closed());
}

// ----- graceful shutdown (close_when_done) -----------------------------------

#[test]
fn an_idle_keep_alive_connection_closes_at_once_on_shutdown() {
    let mut peer = Peer::new();
    peer.send(get("/"));
    peer.request();
    peer.respond(200, "ok");
    peer.output();
    assert!(!peer.conn.is_closing(), "kept alive for the next request");

    peer.conn.close_when_done();
    assert!(peer.conn.is_closed());
    assert_eq!(peer.output(), "", "nothing more is said");
    assert!(!peer.conn.wants_read());
    assert_eq!(peer.conn.poll_timeout(), None, "no timer left to wait for");
    // A request that arrives anyway is not read.
    peer.send(get("/late"));
    assert_eq!(peer.events(), []);
}

#[test]
fn a_response_still_being_written_is_delivered_before_the_shutdown_close() {
    let mut peer = Peer::new();
    peer.send(get("/"));
    peer.request();
    peer.respond(200, "ok");
    // The adapter has not written the answer yet when shutdown begins.
    peer.conn.close_when_done();
    assert!(peer.conn.is_closing());
    assert!(!peer.conn.is_closed());
    assert!(peer.output().ends_with("\r\n\r\nok"));
    assert!(peer.conn.is_closed());
}

#[test]
fn a_request_not_yet_answered_is_answered_with_close_on_shutdown() {
    let mut peer = Peer::new();
    peer.send(get("/slow"));
    assert!(peer.request().wants_keep_alive());
    // Shutdown begins while the application works on the answer.
    peer.conn.close_when_done();
    assert!(!peer.conn.is_closed(), "the request in progress finishes");
    assert!(!peer.conn.is_closing());
    peer.respond(200, "done");
    let output = peer.output();
    assert!(output.starts_with("HTTP/1.1 200 OK\r\n"), "{output:?}");
    assert!(output.contains("\r\nConnection: close\r\n"), "{output:?}");
    assert!(output.ends_with("\r\n\r\ndone"));
    assert!(peer.conn.is_closed());
}

#[test]
fn shutdown_during_the_first_of_two_pipelined_requests_answers_only_the_first() {
    let mut peer = Peer::new();
    peer.send(get("/first") + &get("/second"));
    assert_eq!(peer.request().path(), "/first");
    peer.conn.close_when_done();
    peer.respond(200, "first");
    // The second request was received but is never handed out.
    assert_eq!(peer.events(), []);
    let output = peer.output();
    assert_eq!(output.matches("HTTP/1.1 ").count(), 1, "{output:?}");
    assert!(output.contains("\r\nConnection: close\r\n"), "{output:?}");
    assert!(output.ends_with("\r\n\r\nfirst"));
    assert!(peer.conn.is_closed());
}

#[test]
fn shutdown_while_a_body_streams_lets_it_finish_then_closes() {
    let mut peer = Peer::new();
    peer.send(get("/download") + &get("/next"));
    peer.request();
    peer.start(ResponseHead::new(200).body(ResponseBody::Streamed))
        .unwrap();
    peer.conn.send_body(peer.now, b"part one, ").unwrap();
    let head_and_first = peer.output();
    // The head went out saying nothing of a close: too late to say it.
    assert!(
        !head_and_first.contains("Connection: close"),
        "{head_and_first:?}"
    );

    peer.conn.close_when_done();
    assert!(!peer.conn.is_closing(), "the download goes on");
    peer.conn.send_body(peer.now, b"part two").unwrap();
    peer.conn.finish_response(peer.now).unwrap();
    let rest = peer.output();
    // The chunked body ends properly, so the client sees it whole.
    assert_eq!(rest, "8\r\npart two\r\n0\r\n\r\n");
    assert!(peer.conn.is_closed());
    assert_eq!(peer.events(), [], "the pipelined /next is not answered");
}

#[test]
fn shutdown_before_the_whole_body_arrived_still_reads_and_answers_it() {
    // The request is in progress: shutdown lets it finish, and finishing it
    // takes its body. Reading goes on until the body is complete (the
    // body-idle deadline still bounds a peer that stops sending).
    let mut peer = Peer::new();
    peer.send(post_with("Content-Length: 10\r\n") + "0123");
    peer.request();
    peer.conn.close_when_done();
    assert!(peer.conn.wants_read(), "the rest of the body is awaited");
    assert!(peer.conn.poll_timeout().is_some(), "but not for ever");
    let (early, last) = peer.read_body_in(64);
    assert_eq!((early.as_slice(), last), (&b"0123"[..], BodyRead::Pending));

    peer.send("456789");
    assert_eq!(peer.read_body(), b"456789");
    peer.respond(201, "stored");
    let output = peer.output();
    assert!(output.starts_with("HTTP/1.1 201 Created\r\n"), "{output:?}");
    assert!(output.contains("\r\nConnection: close\r\n"), "{output:?}");
    assert!(output.ends_with("stored"));
    assert!(peer.conn.is_closed());
}

// ----- idle buffers (release_idle_buffers) ------------------------------------

#[test]
fn releasing_buffers_between_requests_changes_nothing_the_peer_sees() {
    let mut peer = Peer::new();
    for n in 0..3 {
        peer.send(get(&format!("/{n}")));
        assert_eq!(peer.request().target(), format!("/{n}"));
        // Mid-exchange a release is refused: the response is not out yet.
        peer.conn.release_idle_buffers();
        peer.respond(200, "ok");
        assert!(peer.output().ends_with("ok"));
        peer.conn.release_idle_buffers();
    }
    assert!(!peer.conn.is_closing());
}

#[test]
fn a_half_received_head_survives_a_release() {
    let mut peer = Peer::new();
    peer.send("GET /half HT");
    assert!(!peer.conn.is_idle(), "bytes of the next head are buffered");
    peer.conn.release_idle_buffers();
    peer.send("TP/1.1\r\nHost: example.com\r\n\r\n");
    assert_eq!(peer.request().target(), "/half");
}

#[test]
fn unsent_output_survives_a_release() {
    let mut peer = Peer::new();
    peer.send(get("/"));
    peer.request();
    peer.respond(200, "still here");
    // The response sits in the output buffer until the adapter takes it.
    peer.conn.release_idle_buffers();
    assert!(peer.output().ends_with("still here"));
}
