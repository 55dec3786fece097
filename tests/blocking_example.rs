//! The blocking example server (examples/blocking_server.rs), run in-process
//! on an ephemeral port and spoken to over a raw socket, so the embedding
//! proof cannot rot.

#[path = "../examples/blocking_server.rs"]
mod example;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

/// Starts the example on 127.0.0.1 and connects a client to it.
fn connect() -> TcpStream {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    // Serves until the test process ends.
    thread::spawn(move || example::serve(listener));
    let client = TcpStream::connect(address).unwrap();
    // A broken server fails the test instead of hanging it.
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    client
}

/// One response: status, header fields, and the body its Content-Length
/// announces (none for a response to HEAD).
struct Response {
    status: u16,
    fields: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads exactly one response off the stream (bytes after it stay there).
fn read_response(client: &mut TcpStream, to_head: bool) -> Response {
    let mut bytes = Vec::new();
    let mut byte = [0];
    while !bytes.ends_with(b"\r\n\r\n") {
        let n = client.read(&mut byte).unwrap();
        assert_eq!(n, 1, "connection closed inside a response head: {bytes:?}");
        bytes.push(byte[0]);
    }
    let mut fields = [httparse::EMPTY_HEADER; 32];
    let mut head = httparse::Response::new(&mut fields);
    assert!(head.parse(&bytes).unwrap().is_complete());
    let fields: Vec<(String, String)> = head
        .headers
        .iter()
        .map(|f| {
            let value = String::from_utf8(f.value.to_vec()).unwrap();
            (f.name.to_string(), value)
        })
        .collect();
    let mut response = Response {
        status: head.code.unwrap(),
        fields,
        body: Vec::new(),
    };
    if !to_head {
        let length: usize = response
            .field("Content-Length")
            .expect("every response of the example has a Content-Length")
            .parse()
            .unwrap();
        response.body = vec![0; length];
        client.read_exact(&mut response.body).unwrap();
    }
    response
}

#[test]
fn a_browser_gets_the_page_and_keeps_its_connection_for_more() {
    let mut client = connect();
    client
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nUser-Agent: test\r\n\r\n")
        .unwrap();
    let page = read_response(&mut client, false);
    assert_eq!(page.status, 200);
    assert_eq!(page.body, example::PAGE.as_bytes());
    assert_eq!(page.field("Content-Type"), Some("text/html; charset=utf-8"));
    assert_eq!(page.field("Connection"), None, "keep-alive is the default");
    assert!(page.field("Date").is_some());

    // The same socket carries the next requests: another path, then HEAD.
    client
        .write_all(b"GET /elsewhere HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let missing = read_response(&mut client, false);
    assert_eq!(missing.status, 404);
    assert!(String::from_utf8_lossy(&missing.body).contains("Not found"));

    client
        .write_all(b"HEAD / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let head = read_response(&mut client, true);
    assert_eq!(head.status, 200);
    // HEAD announces the page's length but sends no body: the very next
    // bytes on the wire are the answer to the request after it.
    let length = example::PAGE.len().to_string();
    assert_eq!(head.field("Content-Length"), Some(length.as_str()));
    client
        .write_all(b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n")
        .unwrap();
    let post = read_response(&mut client, false);
    assert_eq!(post.status, 405);
    assert_eq!(post.field("Allow"), Some("GET, HEAD"));
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let mut client = connect();
    client
        .write_all(
            b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n\
              GET / HTTP/1.1\r\nHost: h\r\n\r\n\
              GET /b HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
    let statuses: Vec<u16> = (0..3)
        .map(|_| read_response(&mut client, false).status)
        .collect();
    assert_eq!(statuses, [404, 200, 404]);
    // The client asked to close after the third.
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "nothing after the last response: {rest:?}");
}

#[test]
fn a_malformed_request_gets_400_and_the_connection_closes() {
    let mut client = connect();
    // Whitespace between a field name and its colon: a smuggling vector.
    client
        .write_all(b"GET / HTTP/1.1\r\nHost : localhost\r\n\r\n")
        .unwrap();
    let refusal = read_response(&mut client, false);
    assert_eq!(refusal.status, 400);
    assert_eq!(refusal.field("Connection"), Some("close"));
    // The server closes: end of stream, not a timeout.
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "nothing after the 400: {rest:?}");
}
