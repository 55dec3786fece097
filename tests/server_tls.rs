//! The server's TLS over real sockets: which versions and ALPN offers it
//! takes, what it says to a client it refuses, how long it waits for a
//! handshake, and that a returning client resumes its session.
//!
//! The in-memory tests of the TLS policy are in io-mio/tests/tls_handshake.rs;
//! these check that the event loop carries that policy onto the wire: the
//! alerts get out before the socket closes, and a refused or stalled client
//! never holds up the others.

mod server_support;

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::{
    AlertDescription, ClientConfig, ClientConnection, HandshakeKind, ProtocolVersion,
    SupportedProtocolVersion,
};
use server_support::{tls_client_config, tls_client_config_versions, Client, TestServer, PATIENCE};

const TLS13: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];
const TLS12: &[&SupportedProtocolVersion] = &[&rustls::version::TLS12];

/// An anonymous GET / is answered with the guard's redirect to the login
/// form: proof that a connection got all the way to HTTP.
fn assert_served(client: &mut Client) {
    let response = client
        .get("/", &[("Accept", "text/html")])
        .expect("a response to GET /");
    assert_eq!(response.status, 303, "{response:?}");
    assert_eq!(
        response.header("location"),
        Some("/__login__?return_to=%2F")
    );
}

/// The rustls error behind a failed handshake.
fn tls_error(error: &io::Error) -> Option<&rustls::Error> {
    error.get_ref()?.downcast_ref::<rustls::Error>()
}

/// Reads until the server closes or [`PATIENCE`] runs out: what arrived
/// and whether the server closed.
fn read_until_closed(tcp: &mut TcpStream) -> (Vec<u8>, bool) {
    tcp.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tcp.read(&mut buf) {
            Ok(0) => return (got, true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::TimedOut =>
            {
                return (got, false)
            }
            // A reset is a close too.
            Err(_) => return (got, true),
        }
    }
}

// ---------------------------------------------------------------------------
// Versions and ALPN.

#[test]
fn a_tls13_client_negotiates_tls13_and_http11_and_is_served() {
    let server = TestServer::start(|_, _| {});
    let config = tls_client_config_versions(
        server.leaf.as_ref().unwrap(),
        &[b"http/1.1"],
        rustls::DEFAULT_VERSIONS,
    );
    let mut client = Client::tls(server.https.unwrap(), config).expect("handshake");
    let tls = client.tls_conn().unwrap();
    assert_eq!(tls.protocol_version(), Some(ProtocolVersion::TLSv1_3));
    assert_eq!(tls.alpn_protocol(), Some(&b"http/1.1"[..]));
    assert_eq!(tls.handshake_kind(), Some(HandshakeKind::Full));
    assert_served(&mut client);
}

#[test]
fn a_tls12_only_client_negotiates_tls12_and_http11_and_is_served() {
    let server = TestServer::start(|_, _| {});
    let config = tls_client_config_versions(server.leaf.as_ref().unwrap(), &[b"http/1.1"], TLS12);
    let mut client = Client::tls(server.https.unwrap(), config).expect("handshake");
    let tls = client.tls_conn().unwrap();
    assert_eq!(tls.protocol_version(), Some(ProtocolVersion::TLSv1_2));
    assert_eq!(tls.alpn_protocol(), Some(&b"http/1.1"[..]));
    assert_served(&mut client);
}

#[test]
fn an_h2_only_client_is_refused_while_a_client_without_alpn_is_served() {
    let server = TestServer::start(|_, _| {});
    let leaf = server.leaf.as_ref().unwrap();
    for versions in [TLS13, TLS12] {
        let h2_only = tls_client_config_versions(leaf, &[b"h2"], versions);
        let error = match Client::tls(server.https.unwrap(), h2_only) {
            Ok(_) => panic!("an h2-only client completed a handshake ({versions:?})"),
            Err(e) => e,
        };
        // The server said why, in an alert that got out before it closed.
        assert_eq!(
            tls_error(&error),
            Some(&rustls::Error::AlertReceived(
                AlertDescription::NoApplicationProtocol
            )),
            "{error:?}"
        );
    }

    // Offering nothing is fine: HTTP/1.1 is what a TLS client without ALPN
    // speaks.
    let no_alpn = tls_client_config(leaf, &[]);
    let mut client = Client::tls(server.https.unwrap(), no_alpn).expect("handshake");
    assert_eq!(client.tls_conn().unwrap().alpn_protocol(), None);
    assert_served(&mut client);
    // The refused connections are gone; only the served one is left.
    server.wait_for_open_connections(1);
}

// ---------------------------------------------------------------------------
// TLS 1.1: rustls cannot speak it, so a rustls TLS 1.2 ClientHello is
// rewritten to say 1.1.

/// The first flight of a rustls client offering TLS 1.2 only: one
/// handshake record holding its ClientHello.
fn tls12_client_hello(server: &TestServer) -> Vec<u8> {
    let config = tls_client_config_versions(server.leaf.as_ref().unwrap(), &[b"http/1.1"], TLS12);
    let mut client =
        ClientConnection::new(config, ServerName::try_from("localhost").unwrap()).unwrap();
    let mut hello = Vec::new();
    while client.wants_write() {
        client.write_tls(&mut hello).unwrap();
    }
    hello
}

/// Reads a big-endian length of `width` bytes at `*at` and moves past it.
fn length(bytes: &[u8], at: &mut usize, width: usize) -> usize {
    let value = bytes[*at..*at + width]
        .iter()
        .fold(0usize, |n, &b| n << 8 | usize::from(b));
    *at += width;
    value
}

/// `record` (one ClientHello record) changed to offer TLS 1.1 and nothing
/// newer: `client_version` 03 02, and 03 03 replaced by 03 02 in the
/// `supported_versions` extension (which a server reads instead of
/// `client_version` when it is there). The layout walked:
///
/// ```text
/// record     16 | 03 0x | len(2)
/// handshake  01 | len(3)
/// hello      client_version(2) random(32) session_id(len 1)
///            cipher_suites(len 2) compression(len 1) extensions(len 2)
/// extension  type(2) len(2) ...; supported_versions is type 00 2b:
///            list(len 1) of versions(2)
/// ```
fn rewritten_to_tls11(record: &[u8]) -> Vec<u8> {
    let mut out = record.to_vec();
    assert_eq!(out[0], 0x16, "a handshake record");
    assert_eq!(out[5], 0x01, "a ClientHello");
    let version_at = 5 + 4;
    assert_eq!(out[version_at..version_at + 2], [0x03, 0x03]);
    out[version_at + 1] = 0x02;
    let mut at = version_at + 2 + 32;
    at += length(&out, &mut at, 1); // session id
    at += length(&out, &mut at, 2); // cipher suites
    at += length(&out, &mut at, 1); // compression methods
    let end = length(&out, &mut at, 2) + at;
    let mut rewrote = false;
    while at < end {
        let kind = length(&out, &mut at, 2);
        let len = length(&out, &mut at, 2);
        if kind == 0x002b {
            let list_end = at + 1 + usize::from(out[at]);
            for version in (at + 1..list_end).step_by(2) {
                if out[version..version + 2] == [0x03, 0x03] {
                    out[version + 1] = 0x02;
                    rewrote = true;
                }
            }
        }
        at += len;
    }
    assert!(rewrote, "the hello offered TLS 1.2 in supported_versions");
    out
}

#[test]
fn a_tls11_client_hello_gets_a_protocol_version_alert_and_the_socket_closes() {
    let server = TestServer::start(|_, _| {});
    let hello = rewritten_to_tls11(&tls12_client_hello(&server));

    let mut tcp = TcpStream::connect(server.https.unwrap()).unwrap();
    tcp.write_all(&hello).unwrap();
    let (reply, closed) = read_until_closed(&mut tcp);
    // One plaintext alert record: type 21, version 03 xx, length 2, level
    // fatal (2), description protocol_version (70). Then the end.
    assert_eq!(reply.len(), 7, "{reply:02x?}");
    assert_eq!(reply[0], 21, "an alert record: {reply:02x?}");
    assert_eq!(reply[1], 0x03, "{reply:02x?}");
    assert_eq!(&reply[3..], [0x00, 0x02, 0x02, 70], "{reply:02x?}");
    assert!(closed, "the server closes after the alert");
    server.wait_for_open_connections(0);
}

#[test]
fn the_same_hello_unchanged_is_answered_with_a_server_hello() {
    // The control for the test above: the refusal is about the version
    // alone, not about something else in the hello or in how it was sent.
    let server = TestServer::start(|_, _| {});
    let mut tcp = TcpStream::connect(server.https.unwrap()).unwrap();
    tcp.write_all(&tls12_client_hello(&server)).unwrap();
    tcp.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut head = [0u8; 6];
    tcp.read_exact(&mut head).unwrap();
    // A handshake record (22) whose first message is ServerHello (2).
    assert_eq!(head[0], 22, "{head:02x?}");
    assert_eq!(head[5], 2, "{head:02x?}");
}

// ---------------------------------------------------------------------------
// The handshake deadline.

#[test]
fn stalled_handshakes_are_closed_at_the_deadline_while_other_clients_are_served() {
    const DEADLINE: Duration = Duration::from_millis(300);
    let server = TestServer::start(|settings, _| settings.handshake_timeout = DEADLINE);
    let addr = server.https.unwrap();
    let started = Instant::now();

    // One says nothing at all; one sends half a ClientHello and stops.
    let mut silent = TcpStream::connect(addr).unwrap();
    let mut halfway = TcpStream::connect(addr).unwrap();
    let hello = tls12_client_hello(&server);
    halfway.write_all(&hello[..hello.len() / 2]).unwrap();

    // Meanwhile a real client gets through, and stays connected past the
    // deadline: the deadline is for handshakes only.
    let mut client = server.https_client();
    assert_served(&mut client);

    let (said, closed) = read_until_closed(&mut silent);
    let silent_closed_after = started.elapsed();
    assert!(closed, "the silent client was not closed");
    assert!(said.is_empty(), "nothing to say to it: {said:02x?}");
    let (said, closed) = read_until_closed(&mut halfway);
    assert!(closed, "the half-hello client was not closed");
    assert!(said.is_empty(), "{said:02x?}");
    // Closed at the deadline, not before it and not much after.
    assert!(
        silent_closed_after >= DEADLINE - Duration::from_millis(20),
        "closed after {silent_closed_after:?}"
    );
    assert!(
        silent_closed_after < DEADLINE + Duration::from_secs(3),
        "closed after {silent_closed_after:?}"
    );

    assert!(started.elapsed() > DEADLINE);
    assert_served(&mut client);
    server.wait_for_open_connections(1);
}

/// Whether a new client gets a TLS handshake and an answer within `wait`
/// (on its own thread, so that a stuck server fails the test instead of
/// hanging it).
fn served_within(server: &TestServer, wait: Duration) -> bool {
    let addr = server.https.unwrap();
    let config = tls_client_config(server.leaf.as_ref().unwrap(), &[b"http/1.1"]);
    let (done, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let served = Client::tls(addr, config)
            .and_then(|mut client| client.get("/", &[("Accept", "text/html")]))
            .is_ok_and(|response| response.status == 303);
        let _ = done.send(served);
    });
    result.recv_timeout(wait).unwrap_or(false)
}

#[test]
fn a_client_that_hangs_up_during_the_handshake_does_not_stall_the_server() {
    // Port scanners and load-balancer health checks connect and hang up
    // without a word; impatient clients hang up halfway through a hello.
    for (when, half_hello) in [("before a word", false), ("halfway through a hello", true)] {
        let server = TestServer::start(|_, _| {});
        let mut tcp = TcpStream::connect(server.https.unwrap()).unwrap();
        if half_hello {
            let hello = tls12_client_hello(&server);
            tcp.write_all(&hello[..hello.len() / 2]).unwrap();
        }
        drop(tcp);
        if !served_within(&server, Duration::from_secs(3)) {
            // A server stuck in its loop would never join: leave it be.
            std::mem::forget(server);
            panic!("after a client hung up {when}, nobody else is served");
        }
        server.wait_for_open_connections(0);
    }
}

// ---------------------------------------------------------------------------
// Resumption.

/// Two connections with the same client configuration (and so the same
/// session cache): the kinds of their handshakes.
fn two_handshakes(server: &TestServer, config: &Arc<ClientConfig>) -> [HandshakeKind; 2] {
    let mut first = Client::tls(server.https.unwrap(), Arc::clone(config)).expect("first");
    // TLS 1.3 tickets come after the handshake: a response brings them in.
    assert_served(&mut first);
    let first_kind = first.tls_conn().unwrap().handshake_kind().unwrap();
    drop(first);
    let mut second = Client::tls(server.https.unwrap(), Arc::clone(config)).expect("second");
    let second_kind = second.tls_conn().unwrap().handshake_kind().unwrap();
    assert_eq!(
        second.tls_conn().unwrap().alpn_protocol(),
        Some(&b"http/1.1"[..])
    );
    assert_served(&mut second);
    [first_kind, second_kind]
}

#[test]
fn a_returning_client_resumes_its_session_with_tls13_and_tls12() {
    let server = TestServer::start(|_, _| {});
    for versions in [TLS13, TLS12] {
        let config =
            tls_client_config_versions(server.leaf.as_ref().unwrap(), &[b"http/1.1"], versions);
        assert_eq!(
            two_handshakes(&server, &config),
            [HandshakeKind::Full, HandshakeKind::Resumed],
            "{versions:?}"
        );
    }
}

#[test]
fn a_client_with_a_fresh_session_cache_does_a_full_handshake() {
    // The control for the test above: resumption comes from the shared
    // cache, not from anything that makes every second handshake look
    // resumed.
    let server = TestServer::start(|_, _| {});
    let leaf = server.leaf.as_ref().unwrap();
    let first = tls_client_config(leaf, &[b"http/1.1"]);
    let other = tls_client_config(leaf, &[b"http/1.1"]);
    let mut client = Client::tls(server.https.unwrap(), first).unwrap();
    assert_served(&mut client);
    let again = Client::tls(server.https.unwrap(), other).unwrap();
    assert_eq!(
        again.tls_conn().unwrap().handshake_kind(),
        Some(HandshakeKind::Full)
    );
}
