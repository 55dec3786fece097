//! # portcullis-core
//!
//! The sans-IO heart of Portcullis, a login guard for web sites. This crate
//! parses and frames HTTP/1.1, checks credentials and decides sessions and
//! logins; it never touches a socket, a file, a thread, a clock or a global
//! random generator. Whatever drives it (the mio server in `portcullis-mio`,
//! a blocking `std::net` loop, a test harness on virtual time, a fuzzer)
//! lends it the I/O, the time and the randomness.
//!
//! | module | concern |
//! | --- | --- |
//! | [`Connection`] (`conn`), [`http`] | one HTTP/1.1 connection: strict request framing, responses, keep-alive, deadlines |
//! | [`cred`] | twisted.cred's Portal, Realm and Checkers; the argon2id password file; verification jobs |
//! | [`guard`] | the session wrapper: login and logout pages, CSRF, throttling, public paths, Basic |
//! | [`session`] | the server-side session store |
//! | [`random`] | the injected randomness and a seeded generator for tests |
//!
//! A server drives a [`Connection`] per socket and hands each request to one
//! [`guard::Guard`]; see `examples/guarded_server.rs` in the repository for
//! the whole loop over blocking `std::net`.
//!
//! ## The run-loop contract
//!
//! A [`Connection`] is one HTTP/1.1 connection after TLS. Its driver owns the
//! socket and does this, over and over:
//!
//! 1. **Input.** Read from the socket while [`Connection::wants_read`] is
//!    true and feed the bytes with [`Connection::receive`] (it says how many
//!    it took); on end-of-stream call [`Connection::receive_eof`]; when the
//!    deadline from step 4 passes, call [`Connection::handle_timeout`].
//!    Every call takes [`Now`]: the caller's monotonic and wall clocks.
//! 2. **Events.** Drain [`Connection::poll_event`] until it returns `None`.
//!    An [`Event::Request`] is answered with [`Connection::send_response`],
//!    [`Connection::send_body`] and [`Connection::finish_response`], now or
//!    later (after a password check on a worker, say); its body is pulled with
//!    [`Connection::read_body`]. Those calls may queue more events, so drain
//!    again after them.
//! 3. **Output.** Write [`Connection::pending_output`] to the socket and
//!    report what was written with [`Connection::advance_output`]. When
//!    [`Connection::is_closed`] is true, close the socket (ideally after a
//!    short lingering read, so an unread request body does not turn into a
//!    reset that destroys the error response just sent).
//! 4. **Deadline.** Ask [`Connection::poll_timeout`] for the next deadline and
//!    sleep (poll) no longer than that.
//!
//! Do all four after *every* input; the connection never acts on its own.
//!
//! ## Theory of operation
//!
//! Bytes accumulate in a bounded input buffer. While no request is in
//! progress the buffer is scanned for the end of a head, each byte once
//! however the input is split; the complete head is parsed once with
//! httparse, checked against strict framing rules (RFC 9112, no smuggling:
//! see [`ProtocolErrorKind`]) and copied into an owned [`Request`]. A head
//! that arrives whole in one `receive` while the buffer is empty (the usual
//! case) is parsed straight from the caller's bytes, with the same result;
//! only what follows it is buffered. The body
//! stays in the input buffer until the application pulls it, so a slow
//! application slows the peer (backpressure) instead of growing memory. A
//! pipelined request is not parsed before the response to the previous one
//! is finished. A peer that breaks the protocol gets the status its error
//! maps to and the connection closes; misuse of the API gets an
//! [`ApiError`] and changes nothing.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod conn;
pub mod cred;
pub mod guard;
pub mod http;
pub mod random;
pub mod session;
mod time;

pub use conn::{BodyRead, Connection, Event};
pub use http::{
    ApiError, Limits, ProtocolError, ProtocolErrorKind, Request, RequestBody, ResponseBody,
    ResponseHead, Version,
};
pub use time::Now;
