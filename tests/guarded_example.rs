//! The guarded example (examples/guarded_server.rs) over real sockets: the
//! whole flow — protected page, login form, login, back to the page, logout,
//! old cookie dead — through the core driven by blocking std::net.

#[path = "../examples/guarded_server.rs"]
mod example;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

/// Starts the example on an ephemeral loopback port.
fn start() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let guard = example::guard(7);
    thread::spawn(move || example::serve(listener, guard));
    address
}

/// A response: status, fields, body.
struct Response {
    status: u16,
    fields: Vec<(String, String)>,
    body: String,
}

impl Response {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The `name=value` part of every Set-Cookie field.
    fn cookies(&self) -> Vec<String> {
        self.fields
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("set-cookie"))
            .map(|(_, v)| v.split(';').next().unwrap_or_default().to_string())
            .collect()
    }

    /// The value of the hidden input `name` in the page.
    fn hidden(&self, name: &str) -> String {
        let marker = format!("name=\"{name}\"");
        let at = self.body.find(&marker).expect("the field is on the page");
        let rest = &self.body[at..];
        let value = &rest[rest.find("value=\"").expect("a value") + 7..];
        value[..value.find('"').unwrap()].to_string()
    }
}

/// One request on a fresh connection (`Connection: close`), with `cookies`.
fn exchange(
    address: SocketAddr,
    method: &str,
    target: &str,
    cookies: &[String],
    form: Option<&str>,
) -> Response {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut request = format!(
        "{method} {target} HTTP/1.1\r\nHost: {address}\r\nAccept: text/html\r\nConnection: close\r\n"
    );
    if !cookies.is_empty() {
        request.push_str(&format!("Cookie: {}\r\n", cookies.join("; ")));
    }
    if let Some(form) = form {
        request.push_str(&format!(
            "Origin: http://{address}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
            form.len()
        ));
    } else {
        request.push_str("\r\n");
    }
    stream.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap()[9..12].parse().unwrap();
    let fields = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    Response {
        status,
        fields,
        body: body.to_string(),
    }
}

fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn a_visitor_logs_in_sees_the_page_logs_out_and_the_old_cookie_is_dead() {
    let site = start();

    // A protected page sends the browser to the login form, remembering it.
    let first = exchange(site, "GET", "/?tab=1", &[], None);
    assert_eq!(first.status, 303);
    let login_url = first.field("Location").unwrap().to_string();
    assert_eq!(login_url, "/__login__?return_to=%2F%3Ftab%3D1");

    // The form comes with a pre-login cookie its CSRF token is bound to.
    let form = exchange(site, "GET", &login_url, &[], None);
    assert_eq!(form.status, 200);
    let pre = form.cookies();
    assert_eq!(pre.len(), 1);
    let csrf = form.hidden("csrf");
    assert_eq!(form.hidden("return_to"), "/?tab=1");

    // A wrong password shows the form again and sets no session.
    let wrong = format!("username=fred&password=nope&csrf={csrf}&return_to=%2F%3Ftab%3D1");
    let refused = exchange(site, "POST", "/__login__", &pre, Some(&wrong));
    assert_eq!(refused.status, 200);
    assert!(refused.body.contains("Wrong username or password."));
    assert!(refused.cookies().is_empty());

    // The right one: a session cookie and back to the page first asked for.
    let good = format!(
        "username=fred&password={}&csrf={csrf}&return_to=%2F%3Ftab%3D1",
        encode(example::PASSWORD)
    );
    let in_ = exchange(site, "POST", "/__login__", &pre, Some(&good));
    assert_eq!(in_.status, 303);
    assert_eq!(in_.field("Location"), Some("/?tab=1"));
    let session: Vec<String> = in_
        .cookies()
        .into_iter()
        .filter(|c| c.starts_with("portcullis=") && c.len() > "portcullis=".len())
        .collect();
    assert_eq!(session.len(), 1);

    let page = exchange(site, "GET", "/", &session, None);
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Hello, fred!"));

    // Logout: a confirmation form, then the post ends the session.
    let confirm = exchange(site, "GET", "/__logout__", &session, None);
    assert_eq!(confirm.status, 200);
    let logout_csrf = confirm.hidden("csrf");
    let out = exchange(
        site,
        "POST",
        "/__logout__",
        &session,
        Some(&format!("csrf={logout_csrf}")),
    );
    assert_eq!(out.status, 303);
    assert_eq!(out.field("Location"), Some("/__login__"));
    assert_eq!(out.field("Clear-Site-Data"), Some("\"cookies\""));
    assert!(out.cookies().contains(&"portcullis=".to_string()));

    // The old cookie, replayed, no longer opens the site.
    let replay = exchange(site, "GET", "/", &session, None);
    assert_eq!(replay.status, 303);
    assert!(replay.field("Location").unwrap().starts_with("/__login__"));
}
