//! The site over real sockets: the plain-HTTP listener (a redirect to
//! HTTPS, or the guard itself when there is no HTTPS), static files behind
//! the login (types, index.html, 404, no way out of the root, HEAD, ETag,
//! a large file to a slow reader), keep-alive, pipelining and public paths.

mod server_support;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use portcullis_mio::config::Settings;
use server_support::{Browser, Response, TestServer, PASSWORD, USER};

/// The session cookie's name.
const COOKIE: &str = "__Host-portcullis";

/// Text in the files outside the root; no response may ever contain it.
const OUTSIDE: &str = "OUTSIDE-THE-ROOT-7f3a9c";

// ---------------------------------------------------------------------------
// Helpers.

/// The files of the test site, under `site/` in the test's directory, and
/// a secret next to it (outside the root, like the users file).
fn write_site(dir: &Path) {
    let root = dir.join("site");
    std::fs::create_dir_all(root.join("docs")).unwrap();
    std::fs::create_dir_all(root.join("public")).unwrap();
    std::fs::write(root.join("index.html"), "<h1>The index page</h1>\n").unwrap();
    std::fs::write(root.join("style.css"), "body { color: teal }\n").unwrap();
    std::fs::write(root.join("data.json"), "{\"answer\": 42}\n").unwrap();
    std::fs::write(root.join("a.txt"), "file a\n").unwrap();
    std::fs::write(root.join("b.txt"), "file b, a bit longer\n").unwrap();
    std::fs::write(root.join("c.txt"), "file c\n").unwrap();
    std::fs::write(root.join("docs/index.html"), "<p>docs index</p>\n").unwrap();
    std::fs::write(root.join("public/info.txt"), "public information\n").unwrap();
    std::fs::write(dir.join("secret.txt"), format!("{OUTSIDE}\n")).unwrap();
}

/// A server for the files of [`write_site`], with `configure` applied too.
fn site_server(configure: impl FnOnce(&mut Settings)) -> TestServer {
    TestServer::start(|settings, dir| {
        write_site(dir.path());
        settings.root = Some(dir.path().join("site"));
        configure(settings);
    })
}

/// Logs fred in and returns his session cookie, as a `Cookie` field value.
fn log_in(server: &TestServer) -> String {
    let mut browser = Browser::new(server);
    let login = browser.log_in(USER, PASSWORD);
    assert_eq!(login.status, 303, "{}", login.text());
    let value = browser.jar.get(COOKIE).expect("a session cookie");
    format!("{COOKIE}={value}")
}

/// GET `target` with `cookie` on a fresh TLS connection (a refused target
/// may close the connection, so each gets its own).
fn get_with(server: &TestServer, cookie: &str, target: &str) -> Response {
    let mut client = server.https_client();
    client
        .get(target, &[("Cookie", cookie)])
        .unwrap_or_else(|e| panic!("GET {target}: {e}"))
}

/// The fields of a response that must be the same for HEAD and GET.
fn entity_fields(response: &Response) -> HashMap<&str, Option<&str>> {
    [
        "content-type",
        "content-length",
        "etag",
        "last-modified",
        "cache-control",
    ]
    .into_iter()
    .map(|name| (name, response.header(name)))
    .collect()
}

// ---------------------------------------------------------------------------
// The plain-HTTP listener next to HTTPS: a redirect.

#[test]
fn plain_http_is_redirected_to_the_same_path_and_query_on_https() {
    let server = TestServer::start(|_, _| {});
    let https_port = server.https.unwrap().port();
    let expected = format!("https://localhost:{https_port}/some/page?x=1&y=two");
    let mut client = server.http_client();

    let get = client.get("/some/page?x=1&y=two", &[]).unwrap();
    assert_eq!(get.status, 308, "{get:?}");
    assert_eq!(get.header("location"), Some(expected.as_str()));
    assert!(get.text().contains(&expected), "{}", get.text());

    // HEAD: the same answer without a body; the GET after it on the same
    // connection parses, so no body bytes were sent.
    let head = client
        .request("HEAD", "/some/page?x=1&y=two", &[], b"")
        .unwrap();
    assert_eq!(head.status, 308);
    assert_eq!(head.header("location"), Some(expected.as_str()));
    assert_eq!(head.header("content-length"), get.header("content-length"));
    let after = client.get("/other", &[]).unwrap();
    assert_eq!(after.status, 308);
    assert_eq!(
        after.header("location"),
        Some(format!("https://localhost:{https_port}/other").as_str())
    );
}

#[test]
fn the_redirect_drops_the_plain_port_from_host_and_the_authority_of_an_absolute_target() {
    let server = TestServer::start(|_, _| {});
    let http_port = server.http.unwrap().port();
    let https_port = server.https.unwrap().port();
    let mut client = server.http_client();

    // Host with the plain listener's port, as browsers send it.
    let host = format!("localhost:{http_port}");
    client
        .send(format!("GET /a?b=c HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes())
        .unwrap();
    let response = client.read_response(false).unwrap();
    assert_eq!(response.status, 308);
    assert_eq!(
        response.header("location"),
        Some(format!("https://localhost:{https_port}/a?b=c").as_str())
    );

    // An absolute-form target: only its path and query are kept.
    client
        .send(
            format!("GET http://{host}/deep/path?q=1 HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes(),
        )
        .unwrap();
    let response = client.read_response(false).unwrap();
    assert_eq!(response.status, 308);
    assert_eq!(
        response.header("location"),
        Some(format!("https://localhost:{https_port}/deep/path?q=1").as_str())
    );
}

// ---------------------------------------------------------------------------
// Plain HTTP without HTTPS: the guard itself (behind a TLS-terminating proxy).

#[test]
fn without_https_the_plain_listener_serves_the_guard() {
    let server = TestServer::start(|settings, _| {
        settings.https = None;
        settings.tls = None;
    });
    assert!(server.https.is_none());
    let mut client = server.http_client();
    let page = client.get("/", &[("Accept", "text/html")]).unwrap();
    assert_eq!(page.status, 303, "{page:?}");
    assert_eq!(page.header("location"), Some("/__login__?return_to=%2F"));

    // The whole login works over it, as it would through the proxy.
    let mut browser = Browser {
        client: server.http_client(),
        jar: HashMap::new(),
        origin: "https://localhost".to_string(),
    };
    assert_eq!(browser.log_in(USER, PASSWORD).status, 303);
    let hello = browser.get("/");
    assert_eq!(hello.status, 200);
    assert!(hello.text().contains("Hello, fred!"), "{}", hello.text());
}

// ---------------------------------------------------------------------------
// Static files.

#[test]
fn a_logged_in_visitor_gets_the_files_with_their_types_and_404_for_missing_ones() {
    let server = site_server(|_| {});
    // Nothing without a login: a browser is sent to the form, a program
    // told 401.
    let browser = server
        .https_client()
        .get("/style.css", &[("Accept", "text/html")])
        .unwrap();
    assert_eq!(browser.status, 303);
    assert!(!browser.text().contains("teal"));
    let program = server.https_client().get("/style.css", &[]).unwrap();
    assert_eq!(program.status, 401);
    assert!(!program.text().contains("teal"));

    let cookie = log_in(&server);
    let index = get_with(&server, &cookie, "/");
    assert_eq!(index.status, 200);
    assert_eq!(index.text(), "<h1>The index page</h1>\n");
    assert_eq!(
        index.header("content-type"),
        Some("text/html; charset=utf-8")
    );

    let css = get_with(&server, &cookie, "/style.css");
    assert_eq!(css.status, 200);
    assert_eq!(css.text(), "body { color: teal }\n");
    assert_eq!(css.header("content-type"), Some("text/css; charset=utf-8"));
    assert_eq!(css.header("x-content-type-options"), Some("nosniff"));

    let json = get_with(&server, &cookie, "/data.json");
    assert_eq!(json.header("content-type"), Some("application/json"));

    // A directory: with its '/', its index.html; without, a redirect there.
    let docs = get_with(&server, &cookie, "/docs/");
    assert_eq!(docs.status, 200);
    assert_eq!(docs.text(), "<p>docs index</p>\n");
    let docs = get_with(&server, &cookie, "/docs");
    assert_eq!(docs.status, 301);
    assert_eq!(docs.header("location"), Some("/docs/"));

    let missing = get_with(&server, &cookie, "/missing.txt");
    assert_eq!(missing.status, 404);
}

#[test]
fn no_target_reaches_outside_the_root() {
    let server = site_server(|_| {});
    let dir = server.dir.path();
    let root = dir.join("site");
    // Symlinks: one inside (followed), one to a file outside, one to the
    // directory outside (which holds the secret and the users file).
    std::os::unix::fs::symlink(root.join("a.txt"), root.join("alias.txt")).unwrap();
    std::os::unix::fs::symlink(dir.join("secret.txt"), root.join("escape.txt")).unwrap();
    std::os::unix::fs::symlink(dir, root.join("up")).unwrap();
    let cookie = log_in(&server);

    // The control: the logged-in visitor does get files, through a
    // symlink that stays inside too.
    assert_eq!(get_with(&server, &cookie, "/alias.txt").text(), "file a\n");

    for target in [
        "/../secret.txt",
        "/../users.passwd",
        "/%2e%2e/secret.txt",
        "/%2E%2E/users.passwd",
        "/a/..%2f..%2fsecret.txt",
        "/a/..%2f..%2fusers.passwd",
        "/%2F../secret.txt",
        "/%2f%2e%2e%2fsecret.txt",
        "/..%5csecret.txt",
        "/docs/../../secret.txt",
        "/./../secret.txt",
        "//../secret.txt",
        "/%252e%252e/secret.txt",
        "/escape.txt",
        "/up/secret.txt",
        "/up/users.passwd",
        "/up/site/../secret.txt",
    ] {
        let response = get_with(&server, &cookie, target);
        assert!(
            (400..500).contains(&response.status),
            "{target}: {} {}",
            response.status,
            response.text()
        );
        let text = response.text();
        assert!(!text.contains(OUTSIDE), "{target}: {text}");
        assert!(!text.contains(USER), "{target}: {text}");
        assert!(!text.contains("argon2"), "{target}: {text}");
    }
}

#[test]
fn head_has_the_get_fields_and_no_body() {
    let server = site_server(|_| {});
    let cookie = log_in(&server);
    let mut client = server.https_client();
    let fields = [("Cookie", cookie.as_str())];

    let head = client.request("HEAD", "/b.txt", &fields, b"").unwrap();
    // If the HEAD answer had a body, it would be read as the next
    // response's start and this GET would not parse as b.txt.
    let get = client.get("/b.txt", &fields).unwrap();
    assert_eq!(head.status, 200);
    assert_eq!(get.status, 200);
    assert_eq!(get.text(), "file b, a bit longer\n");
    assert_eq!(head.header("content-length"), Some("21"));
    assert_eq!(entity_fields(&head), entity_fields(&get));
    assert!(head.header("etag").is_some());
    // And the connection is still in step afterwards.
    assert_eq!(client.get("/c.txt", &fields).unwrap().text(), "file c\n");
}

#[test]
fn a_matching_etag_gets_304_without_a_body() {
    let server = site_server(|_| {});
    let cookie = log_in(&server);
    let mut client = server.https_client();
    let fields = [("Cookie", cookie.as_str())];

    let first = client.get("/style.css", &fields).unwrap();
    let etag = first.header("etag").expect("an ETag").to_string();
    assert!(first.header("last-modified").is_some());

    let again = client
        .get("/style.css", &[fields[0], ("If-None-Match", etag.as_str())])
        .unwrap();
    assert_eq!(again.status, 304, "{again:?}");
    assert_eq!(again.header("etag"), Some(etag.as_str()));
    assert!(again.body.is_empty());

    // Another tag is no match; the connection is in step after the 304.
    let other = client
        .get("/style.css", &[fields[0], ("If-None-Match", "\"not-it\"")])
        .unwrap();
    assert_eq!(other.status, 200);
    assert_eq!(other.text(), "body { color: teal }\n");
}

#[test]
fn a_large_file_reaches_a_slow_reader_whole_while_others_are_served() {
    // More than the kernel buffers of a stalled loopback connection hold
    // (a 4 MiB send buffer at most by Linux's default tcp_wmem, and a
    // receive window that does not grow while nobody reads), so the server
    // has to stop and wait for room.
    const SIZE: usize = 8 * 1024 * 1024;
    let server = site_server(|_| {});
    // A pattern that does not repeat on any power-of-two boundary, so a
    // chunk sent twice or skipped shows.
    let pattern: Vec<u8> = (0..SIZE)
        .map(|i| (i % 251) as u8 ^ (i >> 16) as u8)
        .collect();
    std::fs::write(server.path("site/big.bin"), &pattern).unwrap();
    let cookie = log_in(&server);

    let mut slow = server.https_client();
    slow.send(&server_support::request_bytes(
        "GET",
        "/big.bin",
        &[("Cookie", cookie.as_str())],
        b"",
    ))
    .unwrap();

    // The slow client reads a little, then nothing while the socket buffers
    // fill up and the server must wait for room.
    let mut received = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    for _ in 0..5 {
        let n = slow.stream.read(&mut buf).unwrap();
        assert!(n > 0);
        received.extend_from_slice(&buf[..n]);
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));

    // Meanwhile another client is served promptly.
    let started = Instant::now();
    let other = get_with(&server, &cookie, "/a.txt");
    assert_eq!(other.text(), "file a\n");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the other client waited {:?}",
        started.elapsed()
    );

    // Then the slow client reads the rest.
    let head_end = loop {
        if let Some(at) = received.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = slow.stream.read(&mut buf).unwrap();
        assert!(n > 0, "closed before the head ended");
        received.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&received[..head_end]).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(
        head.contains(&format!("content-length: {SIZE}\r\n")),
        "{head}"
    );
    while received.len() < head_end + SIZE {
        let n = slow.stream.read(&mut buf).unwrap();
        assert!(
            n > 0,
            "closed after {} body bytes",
            received.len() - head_end
        );
        received.extend_from_slice(&buf[..n]);
    }
    assert_eq!(received.len(), head_end + SIZE, "nothing after the body");
    assert!(
        received[head_end..] == pattern[..],
        "the body differs from the file"
    );

    // The connection is still usable afterwards.
    let after = slow.get("/c.txt", &[("Cookie", cookie.as_str())]).unwrap();
    assert_eq!(after.text(), "file c\n");
}

// ---------------------------------------------------------------------------
// Connections.

#[test]
fn one_connection_serves_many_requests() {
    let server = site_server(|_| {});
    let cookie = log_in(&server);
    // The login's connection is gone once the browser is.
    server.wait_for_open_connections(0);
    let mut client = server.https_client();
    let fields = [("Cookie", cookie.as_str())];
    for (target, body) in [
        ("/a.txt", "file a\n"),
        ("/b.txt", "file b, a bit longer\n"),
        ("/missing", ""),
        ("/c.txt", "file c\n"),
        ("/a.txt", "file a\n"),
    ] {
        let response = client.get(target, &fields).unwrap();
        if body.is_empty() {
            assert_eq!(response.status, 404, "{target}");
        } else {
            assert_eq!(response.text(), body, "{target}");
        }
        assert_eq!(server.handle.open_connections(), 1);
    }
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let server = site_server(|_| {});
    let cookie = log_in(&server);
    let mut client = server.https_client();
    let fields = [("Cookie", cookie.as_str())];
    let mut burst = server_support::request_bytes("GET", "/a.txt", &fields, b"");
    burst.extend(server_support::request_bytes(
        "HEAD", "/b.txt", &fields, b"",
    ));
    burst.extend(server_support::request_bytes("GET", "/c.txt", &fields, b""));
    burst.extend(server_support::request_bytes("GET", "/b.txt", &fields, b""));
    // One write: the four requests arrive together.
    client.stream.write_all(&burst).unwrap();
    client.stream.flush().unwrap();

    assert_eq!(client.read_response(false).unwrap().text(), "file a\n");
    let head = client.read_response(true).unwrap();
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("21"));
    assert_eq!(client.read_response(false).unwrap().text(), "file c\n");
    assert_eq!(
        client.read_response(false).unwrap().text(),
        "file b, a bit longer\n"
    );
}

#[test]
fn public_paths_are_served_to_anonymous_visitors_and_nothing_else_is() {
    let server = site_server(|settings| settings.public = vec!["/public/".to_string()]);
    let mut client = server.https_client();

    let info = client.get("/public/info.txt", &[]).unwrap();
    assert_eq!(info.status, 200);
    assert_eq!(info.text(), "public information\n");

    for target in ["/a.txt", "/public/../a.txt", "/public/%2e%2e/a.txt"] {
        let mut client = server.https_client();
        let response = client.get(target, &[]).unwrap();
        assert_ne!(response.status, 200, "{target}");
        assert!(!response.text().contains("file a"), "{target}");
    }
}
