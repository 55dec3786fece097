//! Logging in (after Nevow's test_guard.py): the protected page sends the
//! browser to the form, the form logs it in, and it comes back to the page
//! it first asked for.

mod guard_support;

use guard_support::*;
use portcullis_core::guard::{AuthEvent, GuardConfig, LoginFailureReason};

#[test]
fn login_then_back_to_the_page_first_asked_for_then_logout() {
    let mut site = World::new();
    let mut fred = Browser::new(1);

    // An anonymous browser on a protected page is sent to the form.
    let asked = fred.get(&mut site, "/reports/2024?sort=desc").reply();
    assert_eq!(asked.status, 303);
    let location = asked.location().to_string();
    assert!(location.starts_with("/__login__?return_to="), "{location}");
    assert_eq!(return_to_of(&location), "/reports/2024?sort=desc");

    // The form carries the return path and a CSRF token bound to a
    // pre-login cookie set now.
    let form = fred.get(&mut site, &location).reply();
    assert_eq!(form.status, 200);
    assert_eq!(form.hidden("return_to"), "/reports/2024?sort=desc");
    assert!(!form.hidden("csrf").is_empty());
    assert!(form.set_cookie("__Host-portcullis-pre").is_some());
    assert!(form.body.contains("autocomplete=\"current-password\""));
    assert_eq!(form.header("Cache-Control"), Some("no-store"));

    // A good password: a new session, and back to the page.
    let posted = fred
        .submit_login(&mut site, &form, FRED, FRED_PASSWORD)
        .reply();
    assert_eq!(posted.status, 303);
    assert_eq!(posted.location(), "/reports/2024?sort=desc");
    let cookie = posted
        .set_cookie("__Host-portcullis")
        .expect("a session cookie")
        .to_string();
    for attribute in ["Secure", "HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
    }
    let session = fred.session(&site).expect("the jar keeps the session");
    assert_eq!(session.len(), 43);

    // The page is forwarded to the site as fred.
    let page = fred.get(&mut site, "/reports/2024?sort=desc").forwarded();
    assert_eq!(page.user.as_deref(), Some(FRED));
    assert_eq!(page.avatar.as_deref(), Some(FRED));
    assert_eq!(page.path, "/reports/2024");
    assert!(site.events().contains(&AuthEvent::LoginSucceeded {
        user: FRED.to_string(),
        client: fred.client,
    }));

    // Logout: GET shows a confirmation form, POST ends the session.
    let confirm = fred.get(&mut site, "/__logout__").reply();
    assert_eq!(confirm.status, 200);
    assert!(confirm.body.contains("<form"));
    assert_eq!(site.logout_hooks(), 0, "a GET does not log out");
    let csrf = confirm.hidden("csrf");
    let done = fred
        .post_form(&mut site, "/__logout__", &[("csrf", &csrf)])
        .reply();
    assert_eq!(done.status, 303);
    assert_eq!(done.location(), "/__login__");
    let cleared = done
        .set_cookie("__Host-portcullis")
        .expect("the session cookie is cleared");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    assert_eq!(done.header("Clear-Site-Data"), Some("\"cookies\""));
    assert_eq!(site.logout_hooks(), 1, "the realm's hook ran once");
    assert_eq!(fred.session(&site), None, "the browser dropped it");

    // The old cookie, replayed by hand, no longer works.
    fred.jar.insert("__Host-portcullis".to_string(), session);
    let replay = fred.get(&mut site, "/reports/2024").reply();
    assert_eq!(replay.status, 303);
    assert!(replay.location().starts_with("/__login__"));
    assert_eq!(site.logout_hooks(), 1, "no hook runs twice");
}

#[test]
fn a_failed_login_shows_the_form_again_with_the_username_kept() {
    let mut site = World::new();
    let mut fred = Browser::new(1);
    let form = fred.login_page(&mut site, Some("/inbox"));
    let failed = fred
        .submit_login(&mut site, &form, FRED, "wrong horse")
        .reply();
    assert_eq!(failed.status, 200);
    assert_eq!(failed.input_value("username").as_deref(), Some(FRED));
    assert_eq!(failed.hidden("return_to"), "/inbox");
    assert!(failed.body.contains("role=\"alert\""));
    assert!(failed.set_cookie("__Host-portcullis").is_none());
    assert_eq!(fred.session(&site), None);
    assert_eq!(site.guard.session_count(), 0);
    assert!(site.events().contains(&AuthEvent::LoginFailed {
        user: Some(FRED.to_string()),
        client: fred.client,
        reason: LoginFailureReason::BadCredentials,
    }));

    // The form shown again works.
    let posted = fred
        .submit_login(&mut site, &failed, FRED, FRED_PASSWORD)
        .reply();
    assert_eq!(posted.status, 303);
    assert_eq!(posted.location(), "/inbox");
    assert!(fred.get(&mut site, "/inbox").is_forward());
}

#[test]
fn unknown_user_and_wrong_password_give_identical_answers() {
    // Two sites alike in every way (same seeds, same clock) but that one
    // knows fred and the other does not: the same post must get the same
    // bytes back, status, headers and body.
    let answer = |users: &[(&str, &str)], password: &str| {
        let mut site = World::with_users(config(), 1, users);
        let mut browser = Browser::new(1);
        let form = browser.login_page(&mut site, Some("/x"));
        let reply = browser
            .submit_login(&mut site, &form, FRED, password)
            .reply();
        (reply, site.guard.session_count())
    };
    let (wrong_password, sessions) = answer(&[(FRED, FRED_PASSWORD)], "not the password");
    assert_eq!(sessions, 0);
    let (unknown_user, sessions) = answer(&[(BARNEY, BARNEY_PASSWORD)], "not the password");
    assert_eq!(sessions, 0);
    assert_eq!(wrong_password.status, 200);
    assert_eq!(
        String::from_utf8_lossy(&wrong_password.raw),
        String::from_utf8_lossy(&unknown_user.raw)
    );

    // On one site too: a known and an unknown name of the same length get
    // the same answer but for the name kept in the form.
    let mut site = World::new();
    let mut browser = Browser::new(1);
    let form = browser.login_page(&mut site, Some("/x"));
    let known = browser
        .submit_login(&mut site, &form, FRED, "not the password")
        .reply();
    let unknown = browser
        .submit_login(&mut site, &form, "fren", "not the password")
        .reply();
    assert_eq!(known.dateless().1, unknown.dateless().1, "same headers");
    assert_eq!(known.status, unknown.status);
    assert_eq!(
        known.body.replace("value=\"fred\"", "value=\"USER\""),
        unknown.body.replace("value=\"fren\"", "value=\"USER\""),
    );
}

#[test]
fn the_login_form_is_a_proper_page() {
    let mut site = World::new();
    let mut fred = Browser::new(1);
    let form = fred.login_page(&mut site, None);
    assert_eq!(
        form.header("Content-Type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(form.header("X-Content-Type-Options"), Some("nosniff"));
    let csp = form.header("Content-Security-Policy").expect("a CSP");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("form-action 'self'"), "{csp}");
    assert!(form.header("Referrer-Policy").is_some());
    assert!(form.header("Strict-Transport-Security").is_some());
    for piece in [
        "<label for=\"username\">",
        "<label for=\"password\">",
        "autocomplete=\"username\"",
        "name=\"password\"",
        "type=\"password\"",
    ] {
        assert!(form.body.contains(piece), "no {piece} in\n{}", form.body);
    }
    assert_eq!(form.hidden("return_to"), "/");
}

#[test]
fn a_non_browser_gets_401_instead_of_the_form() {
    let mut site = World::new();
    let mut script = Browser::script(9);
    let answer = script.get(&mut site, "/api/items").reply();
    assert_eq!(answer.status, 401);
    assert!(answer.header("Location").is_none());
    let mut bare = Browser::script(9);
    bare.accept = None;
    assert_eq!(bare.get(&mut site, "/api/items").reply().status, 401);
}

#[test]
fn a_session_is_rotated_at_every_login() {
    let mut site = World::new();
    let mut fred = Browser::new(1);
    assert_eq!(fred.log_in(&mut site, FRED, FRED_PASSWORD).status, 303);
    let first = fred.session(&site).expect("a session");
    // Logging in again (as barney, say) ends the first session and makes a
    // new id.
    assert_eq!(fred.log_in(&mut site, BARNEY, BARNEY_PASSWORD).status, 303);
    let second = fred.session(&site).expect("a session");
    assert_ne!(first, second);
    assert_eq!(site.logout_hooks(), 1, "the replaced session's hook ran");
    let page = fred.get(&mut site, "/").forwarded();
    assert_eq!(page.user.as_deref(), Some(BARNEY));
    fred.jar.insert(site.session_cookie(), first);
    assert!(!fred.get(&mut site, "/").is_forward());
}

#[test]
fn over_plain_http_the_cookie_has_no_secure_and_no_prefix_and_no_hsts() {
    let mut site = World::with_config(GuardConfig {
        tls: false,
        ..config()
    });
    let mut fred = Browser::new(1);
    fred.tls = false;
    let form = fred.login_page(&mut site, None);
    assert!(form.header("Strict-Transport-Security").is_none());
    let pre = form
        .set_cookie("portcullis-pre")
        .expect("a pre-login cookie");
    assert!(!pre.contains("Secure"), "{pre}");
    let posted = fred
        .submit_login(&mut site, &form, FRED, FRED_PASSWORD)
        .reply();
    assert_eq!(posted.status, 303, "{posted:?}");
    assert!(posted.header("Strict-Transport-Security").is_none());
    for set in posted.all("Set-Cookie") {
        assert!(!set.contains("Secure"), "{set}");
        assert!(!set.starts_with("__Host-"), "{set}");
    }
    let cookie = posted.set_cookie("portcullis").expect("a session cookie");
    assert!(cookie.contains("HttpOnly"));
    assert!(fred.get(&mut site, "/").is_forward());
}

#[test]
fn over_tls_every_cookie_is_secure_and_host_prefixed() {
    let mut site = World::new();
    let mut fred = Browser::new(1);
    let form = fred.login_page(&mut site, None);
    let posted = fred
        .submit_login(&mut site, &form, FRED, FRED_PASSWORD)
        .reply();
    let all = form.all("Set-Cookie");
    let all = all
        .iter()
        .chain(posted.all("Set-Cookie").iter())
        .copied()
        .collect::<Vec<_>>();
    assert!(all.len() >= 3, "{all:?}");
    for set in all {
        assert!(set.starts_with("__Host-"), "{set}");
        assert!(set.contains("; Secure"), "{set}");
        assert!(set.contains("Path=/"), "{set}");
        assert!(!set.contains("Domain"), "{set}");
    }
}

#[test]
fn head_requests_get_the_same_answers_without_bodies() {
    let mut site = World::new();
    let mut fred = Browser::new(1);
    let raw = fred.build("HEAD", "/__login__", &[], None);
    let answer = fred.send(&mut site, &raw).reply();
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, "");
    let raw = fred.build("HEAD", "/private", &[], None);
    let answer = fred.send(&mut site, &raw).reply();
    assert_eq!(answer.status, 303);
    assert!(answer.location().starts_with("/__login__?return_to="));
}

#[test]
fn a_chunked_login_post_is_read_and_capped() {
    let mut site = World::new();
    let mut fred = Browser::new(1);
    let form = fred.login_page(&mut site, Some("/chunky"));
    let body = urlencode(&[
        ("username", FRED),
        ("password", FRED_PASSWORD),
        ("csrf", &form.hidden("csrf")),
        ("return_to", "/chunky"),
    ]);
    let chunked = |body: &str| {
        let (a, b) = body.split_at(body.len() / 2);
        format!("{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n", a.len(), b.len())
    };
    let origin = fred.origin();
    let headers = [
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("Transfer-Encoding", "chunked"),
        ("Origin", origin.as_str()),
    ];
    let mut raw = fred.build("POST", "/__login__", &headers, None);
    raw.extend_from_slice(chunked(&body).as_bytes());
    let answer = fred.send(&mut site, &raw).reply();
    assert_eq!(answer.status, 303, "{answer:?}");
    assert_eq!(answer.location(), "/chunky");

    // Over 8 KiB in chunks: 413, whatever the framing.
    let mut other = Browser::new(2);
    let form = other.login_page(&mut site, None);
    let padding = "p".repeat(9000);
    let body = urlencode(&[
        ("username", FRED),
        ("password", FRED_PASSWORD),
        ("csrf", &form.hidden("csrf")),
        ("pad", &padding),
    ]);
    let mut raw = other.build("POST", "/__login__", &headers, None);
    raw.extend_from_slice(chunked(&body).as_bytes());
    let answer = other.send(&mut site, &raw).reply();
    assert_eq!(answer.status, 413);
    assert_eq!(other.session(&site), None);
}

#[test]
fn events_never_carry_a_password_or_a_session_id() {
    let mut site = World::with_config(GuardConfig {
        basic_realm: Some("api".to_string()),
        ..config()
    });
    let mut fred = Browser::new(1);
    let mut events = Vec::new();
    let form = fred.login_page(&mut site, None);
    fred.submit_login(&mut site, &form, FRED, "hunter2-wrong")
        .reply();
    events.extend(site.events());
    let answer = fred.log_in(&mut site, FRED, FRED_PASSWORD);
    assert_eq!(answer.status, 303);
    let session = fred.session(&site).expect("a session");
    let device = fred
        .jar
        .get("__Host-portcullis-device")
        .cloned()
        .expect("device");
    events.extend(site.events());
    site.advance(mins(31));
    fred.get(&mut site, "/").reply();
    events.extend(site.events());
    let mut script = Browser::script(2);
    use base64::Engine as _;
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{BARNEY}:{BARNEY_PASSWORD}"))
    );
    assert!(script
        .get_with(&mut site, "/api", &[("Authorization", &auth)])
        .is_forward());
    events.extend(site.events());
    assert!(events.len() >= 4, "{events:?}");
    let log = format!("{events:?}");
    for secret in [
        FRED_PASSWORD,
        "hunter2-wrong",
        BARNEY_PASSWORD,
        session.as_str(),
        &session[..16],
        device.as_str(),
    ] {
        assert!(!log.contains(secret), "{secret:?} in {log}");
    }
}

#[test]
fn a_hostile_username_is_kept_escaped() {
    let mut site = World::new();
    let mut fred = Browser::new(1);
    let form = fred.login_page(&mut site, None);
    let hostile = "\"><script>alert(1)</script>";
    let failed = fred.submit_login(&mut site, &form, hostile, "x").reply();
    assert_eq!(failed.status, 200);
    assert!(!failed.body.contains("<script>"), "{}", failed.body);
    assert_eq!(failed.input_value("username").as_deref(), Some(hostile));
}

#[test]
fn without_tls_a_browser_on_https_can_still_log_in() {
    // tls off but the browser's page is https (a proxy in front that the
    // operator did not declare): its Origin is https://, which is still
    // this site. Refusing it would lock every user out.
    let mut site = World::with_config(GuardConfig {
        tls: false,
        ..config()
    });
    let mut fred = Browser::new(1);
    assert!(fred.tls, "the browser sends https:// origins");
    let answer = fred.log_in(&mut site, FRED, FRED_PASSWORD);
    assert_eq!(answer.status, 303, "{answer:?}");
    assert!(fred.get(&mut site, "/").is_forward());
}
