//! The guard's hooks for the server around it: a password check the server
//! has no room to queue is cancelled (the browser is told to retry, and the
//! attempt is taken back from the brute-force counters, since no password
//! was tried), and the site's own pages can carry a one-click logout form.

mod guard_support;

use guard_support::*;
use portcullis_core::guard::{AuthEvent, Decision, GuardConfig};

/// The raw post of `browser`'s login form (fetched now) for `user`.
fn login_post(site: &mut World, browser: &mut Browser, user: &str, password: &str) -> Vec<u8> {
    let form = browser.login_page(site, None);
    let body = urlencode(&[
        ("username", user),
        ("password", password),
        ("csrf", &form.hidden("csrf")),
    ]);
    let origin = browser.origin();
    browser.build(
        "POST",
        "/__login__",
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Origin", &origin),
            ("Sec-Fetch-Site", "same-origin"),
        ],
        Some(body.as_bytes()),
    )
}

/// A login the server could not queue: the guard asks for the password
/// check, the server cancels it and sends the guard's answer.
#[track_caller]
fn cancelled_login(
    site: &mut World,
    browser: &mut Browser,
    user: &str,
    password: &str,
) -> Response {
    let post = login_post(site, browser, user, password);
    let check = site.until_verification(browser.client, &post);
    let now = site.now;
    let reply = site.guard.cancel(now, check.ticket);
    let answer = site.on_the_wire(reply);
    browser.store_cookies(&answer);
    answer
}

#[track_caller]
fn status_of<A: std::fmt::Debug>(decision: Decision<A>) -> u16 {
    match decision {
        Decision::Respond(reply) => reply.head.status(),
        other => panic!("expected an answer, got {other:?}"),
    }
}

// ----- cancelled password checks -----------------------------------------------

#[test]
fn a_login_the_server_cannot_queue_is_told_to_retry_and_gets_no_session() {
    let mut site = World::new();
    let mut fred = Browser::new(1);
    let post = login_post(&mut site, &mut fred, FRED, FRED_PASSWORD);
    let check = site.until_verification(fred.client, &post);
    site.events();

    let now = site.now;
    let reply = site.guard.cancel(now, check.ticket);
    let answer = site.on_the_wire(reply);
    fred.store_cookies(&answer);
    assert_eq!(answer.status, 503, "{answer:?}");
    assert_eq!(answer.header("Retry-After"), Some("1"));
    assert_eq!(answer.header("Cache-Control"), Some("no-store"));
    assert!(answer.set_cookie("__Host-portcullis").is_none());
    assert_eq!(fred.session(&site), None);
    assert_eq!(site.guard.session_count(), 0);
    // Nobody tried a password, so nothing is logged as a login.
    let logins: Vec<AuthEvent> = site
        .events()
        .into_iter()
        .filter(|e| {
            matches!(
                e,
                AuthEvent::LoginFailed { .. } | AuthEvent::LoginSucceeded { .. }
            )
        })
        .collect();
    assert_eq!(logins, []);

    // The ticket is gone: a verdict for it later (the right password, even)
    // logs nobody in.
    let late = site.guard.complete(now, check.ticket, check.job.run());
    assert_eq!(status_of(late), 500);
    assert_eq!(site.guard.session_count(), 0);

    // Retried as told, the login goes through.
    site.advance(secs(1));
    let retried = fred.log_in(&mut site, FRED, FRED_PASSWORD);
    assert_eq!(retried.status, 303, "{retried:?}");
    assert!(fred.get(&mut site, "/inbox").is_forward());
}

#[test]
fn cancelled_logins_do_not_throttle_the_next_real_one_where_failed_ones_would() {
    // The same ten mistyped logins from fred's browser, then his real one:
    // on an overloaded site, where all ten were cancelled, and on a calm
    // site, where all ten were checked and failed.
    let story = |overloaded: bool| {
        let mut site = World::new();
        let mut fred = Browser::new(1);
        let mut answers = Vec::new();
        for _ in 0..10 {
            let answer = if overloaded {
                cancelled_login(&mut site, &mut fred, FRED, "correct horse battery?")
            } else {
                let post = login_post(&mut site, &mut fred, FRED, "correct horse battery?");
                fred.send(&mut site, &post).reply()
            };
            answers.push(answer.status);
        }
        let real = fred.log_in(&mut site, FRED, FRED_PASSWORD);
        (answers, real.status, site.verifications)
    };

    let (answers, real, checked) = story(true);
    assert_eq!(answers, [503; 10]);
    assert_eq!(checked, 1, "only the real login was checked");
    assert_eq!(real, 303, "fred logs in");

    let (answers, real, checked) = story(false);
    assert_eq!(answers, [200, 200, 200, 200, 200, 429, 429, 429, 429, 429]);
    assert_eq!(checked, 5);
    assert_eq!(real, 429, "five failures lock the pair");
}

#[test]
fn a_cancelled_login_forgives_none_of_the_failures_before_it() {
    let mut site = World::new();
    let mut mallory = Browser::new(66);
    for _ in 0..4 {
        let post = login_post(&mut site, &mut mallory, FRED, "a guess");
        assert_eq!(mallory.send(&mut site, &post).reply().status, 200);
    }
    // The server is overloaded for a moment: this one is turned away...
    let answer = cancelled_login(&mut site, &mut mallory, FRED, "a guess");
    assert_eq!(answer.status, 503);
    // ...and the four before it still count: one more failure locks the
    // pair, as five failures always do.
    let post = login_post(&mut site, &mut mallory, FRED, "a guess");
    assert_eq!(mallory.send(&mut site, &post).reply().status, 200);
    let post = login_post(&mut site, &mut mallory, FRED, "a guess");
    let answer = mallory.send(&mut site, &post).reply();
    assert_eq!(answer.status, 429, "{answer:?}");
}

#[test]
fn cancelling_a_settled_check_takes_nothing_back() {
    // A server that cancels a ticket whose verdict it already gave back
    // (a bug, or a race with its queue) refunds nothing: the failure stands.
    let mut site = World::new();
    let mut mallory = Browser::new(66);
    for _ in 0..5 {
        let post = login_post(&mut site, &mut mallory, FRED, "a guess");
        let check = site.until_verification(mallory.client, &post);
        let now = site.now;
        let failed = site.guard.complete(now, check.ticket, check.job.run());
        assert_eq!(status_of(failed), 200, "the form again, with the error");
        let reply = site.guard.cancel(now, check.ticket);
        let answer = site.on_the_wire(reply);
        assert_eq!(answer.status, 503);
    }
    let post = login_post(&mut site, &mut mallory, FRED, "a guess");
    let answer = mallory.send(&mut site, &post).reply();
    assert_eq!(answer.status, 429, "{answer:?}");
}

#[test]
fn a_cancelled_basic_check_is_not_counted_either() {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;

    let mut site = World::with_config(GuardConfig {
        basic_realm: Some("Bedrock API".to_string()),
        ..config()
    });
    let script = Browser::script(7);
    let wrong = format!("Basic {}", STANDARD.encode(format!("{FRED}:a guess")));
    let raw = script.build("GET", "/api/items", &[("Authorization", &wrong)], None);
    for _ in 0..10 {
        let check = site.until_verification(script.client, &raw);
        let now = site.now;
        let reply = site.guard.cancel(now, check.ticket);
        let answer = site.on_the_wire(reply);
        assert_eq!(answer.status, 503);
        assert_eq!(answer.header("Retry-After"), Some("1"));
    }
    // Ten cancelled guesses cost nothing: the right password gets through.
    let right = format!(
        "Basic {}",
        STANDARD.encode(format!("{FRED}:{FRED_PASSWORD}"))
    );
    let raw = script.build("GET", "/api/items", &[("Authorization", &right)], None);
    let access = site.exchange(script.client, &raw).forwarded();
    assert_eq!(access.user.as_deref(), Some(FRED));
}

// ----- the one-click logout form ---------------------------------------------

/// Fred's browser after a login.
fn logged_in(site: &mut World, n: u8, user: &str, password: &str) -> Browser {
    let mut browser = Browser::new(n);
    let answer = browser.log_in(site, user, password);
    assert_eq!(answer.status, 303, "{answer:?}");
    browser
}

/// The logout token the site puts in a page it serves `browser`.
#[track_caller]
fn token_on_a_page(site: &mut World, browser: &mut Browser) -> String {
    let raw = browser.build("GET", "/inbox", &[], None);
    assert!(browser.send(site, &raw).is_forward(), "the page is served");
    site.guard
        .logout_form_token(&parsed(&raw))
        .expect("a logged-in browser has a token")
}

#[test]
fn the_sites_own_logout_button_logs_the_browser_out() {
    let mut site = World::new();
    let mut fred = logged_in(&mut site, 1, FRED, FRED_PASSWORD);
    let session = fred.session(&site).expect("a session");
    let token = token_on_a_page(&mut site, &mut fred);

    // One click: the page's form posts straight to the logout path, with
    // no confirmation page in between.
    let done = fred
        .post_form(&mut site, "/__logout__", &[("csrf", &token)])
        .reply();
    assert_eq!(done.status, 303, "{done:?}");
    assert_eq!(done.location(), "/__login__");
    assert_eq!(site.logout_hooks(), 1);
    assert_eq!(fred.session(&site), None, "the cookie is cleared");

    // The old cookie is dead.
    fred.jar.insert(site.session_cookie(), session);
    let replay = fred.get(&mut site, "/inbox").reply();
    assert_eq!(replay.status, 303);
    assert!(replay.location().starts_with("/__login__"));
}

#[test]
fn a_logout_token_is_good_only_for_the_session_it_was_made_for() {
    let mut site = World::new();
    let mut fred = logged_in(&mut site, 1, FRED, FRED_PASSWORD);
    let mut barney = logged_in(&mut site, 2, BARNEY, BARNEY_PASSWORD);
    let barneys = token_on_a_page(&mut site, &mut barney);

    // Barney's token (say, read off a shared page) does not log fred out.
    let refused = fred
        .post_form(&mut site, "/__logout__", &[("csrf", &barneys)])
        .reply();
    assert_eq!(refused.status, 403, "{refused:?}");
    assert_eq!(site.logout_hooks(), 0);
    assert!(fred.get(&mut site, "/inbox").is_forward());
    assert!(barney.get(&mut site, "/inbox").is_forward());

    // Nor does fred's own token from a session he has since left: a new
    // login rotates the session, and the token with it.
    let old = token_on_a_page(&mut site, &mut fred);
    let again = fred.log_in(&mut site, FRED, FRED_PASSWORD);
    assert_eq!(again.status, 303);
    let refused = fred
        .post_form(&mut site, "/__logout__", &[("csrf", &old)])
        .reply();
    assert_eq!(refused.status, 403, "{refused:?}");
    assert!(fred.get(&mut site, "/inbox").is_forward());
    let fresh = token_on_a_page(&mut site, &mut fred);
    assert_ne!(fresh, old);
}

#[test]
fn no_session_cookie_no_logout_token() {
    let mut site = World::new();
    let mut stranger = Browser::new(9);
    let raw = stranger.build("GET", "/static/site.css", &[], None);
    assert!(stranger.send(&mut site, &raw).is_forward(), "a public page");
    assert_eq!(site.guard.logout_form_token(&parsed(&raw)), None);

    // A session cookie sent twice is trusted for nothing, this included.
    let fred = logged_in(&mut site, 1, FRED, FRED_PASSWORD);
    let cookie = format!("{}={}", site.session_cookie(), fred.session(&site).unwrap());
    let doubled = format!("{cookie}; {cookie}");
    let raw = Browser::new(1).build("GET", "/inbox", &[("Cookie", &doubled)], None);
    assert_eq!(site.guard.logout_form_token(&parsed(&raw)), None);
}
