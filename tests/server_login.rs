//! The whole login story over real TLS sockets: a visitor is sent to the
//! login form, logs in, sees the page, logs out, and the old cookie is dead.

mod server_support;

use std::io::Write;

use server_support::{hidden_field, wait_until, Browser, TestServer, PASSWORD, USER};

#[test]
fn a_visitor_logs_in_sees_the_site_logs_out_and_the_old_cookie_is_refused() {
    let server = TestServer::start(|_, _| {});
    let mut browser = Browser::new(&server);

    let page = browser.get("/");
    assert_eq!(page.status, 303, "anonymous visitors go to the login form");
    assert_eq!(page.header("location"), Some("/__login__?return_to=%2F"));

    let form = browser.get("/__login__");
    assert_eq!(form.status, 200);
    assert!(form.text().contains("name=\"csrf\""));

    let login = browser.log_in(USER, PASSWORD);
    assert_eq!(login.status, 303, "{}", login.text());
    assert_eq!(login.header("location"), Some("/"));
    let cookie = browser.jar.get("__Host-portcullis").cloned();
    assert!(cookie.is_some(), "a session cookie: {:?}", login.headers);

    let hello = browser.get("/");
    assert_eq!(hello.status, 200);
    assert!(hello.text().contains("Hello, fred!"), "{}", hello.text());

    // The demo site's one-click logout form.
    let csrf = hidden_field(&hello.text(), "csrf").expect("a logout form");
    let logout = browser.post_form("/__logout__", &[("csrf", &csrf)]);
    assert_eq!(logout.status, 303);
    assert_eq!(logout.header("location"), Some("/__login__"));
    // The loop publishes its count after the pass that answered.
    assert!(wait_until(|| server.handle.sessions() == 0).is_ok());

    // Replaying the old cookie gets nowhere: the session ended on the server.
    browser
        .jar
        .insert("__Host-portcullis".to_string(), cookie.unwrap());
    let replay = browser.get("/");
    assert_eq!(replay.status, 303);
}

#[test]
fn a_wrong_password_gets_the_form_again_and_no_session() {
    let server = TestServer::start(|_, _| {});
    let mut browser = Browser::new(&server);
    let login = browser.log_in(USER, "not the password");
    assert_eq!(login.status, 200);
    assert!(login.text().contains("Wrong username or password."));
    assert!(!browser.jar.contains_key("__Host-portcullis"));
    assert_eq!(browser.get("/").status, 303);
}

#[test]
fn a_login_whose_head_and_body_come_in_separate_records_is_answered() {
    // Python's http.client and others send the head and the form as two
    // TLS records; the body then becomes readable only after the guard has
    // already asked for it, and the password check must still be answered.
    let server = TestServer::start(|_, _| {});
    let mut browser = Browser::new(&server);
    let post = browser.login_post_bytes(USER, PASSWORD);
    let split = post
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head")
        + 4;
    let server_support::Stream::Tls(tls) = &mut browser.client.stream else {
        panic!("the test server speaks TLS");
    };
    // Two records, one TCP write.
    tls.conn.writer().write_all(&post[..split]).unwrap();
    tls.conn.writer().write_all(&post[split..]).unwrap();
    while tls.conn.wants_write() {
        tls.conn.write_tls(&mut tls.sock).unwrap();
    }
    let login = browser.client.read_response(false).unwrap();
    assert_eq!(login.status, 303, "{}", login.text());
    assert!(!login.cookies().is_empty(), "a session cookie");
}
