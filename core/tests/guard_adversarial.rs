//! An attacker's stories: fixation, forged cookies, open redirects, CSRF,
//! credentials in the URL, oversized input and brute force.

mod guard_support;

use std::net::{IpAddr, Ipv4Addr};

use guard_support::*;
use portcullis_core::guard::{AuthEvent, Decision, LoginFailureReason};

const SESSION: &str = "__Host-portcullis";

fn logged_in(site: &mut World, n: u8, user: &str, password: &str) -> Browser {
    let mut browser = Browser::new(n);
    let answer = browser.log_in(site, user, password);
    assert_eq!(answer.status, 303, "{answer:?}");
    browser
}

/// Whether a `Location` can only lead to a path on this same origin.
fn same_origin_path(location: &str) -> bool {
    let bytes = location.as_bytes();
    bytes.first() == Some(&b'/')
        && !matches!(bytes.get(1), Some(b'/' | b'\\'))
        && bytes.iter().all(|&b| b > b' ' && b < 0x7f && b != b'\\')
}

// ----- session fixation -----------------------------------------------------

#[test]
fn a_session_id_planted_before_login_is_never_adopted() {
    let mut site = World::new();
    let planted = "A".repeat(43);
    let mut victim = Browser::new(1);
    victim.jar.insert(SESSION.to_string(), planted.clone());
    assert_eq!(victim.log_in(&mut site, FRED, FRED_PASSWORD).status, 303);
    let id = victim.session(&site).expect("a session");
    assert_ne!(id, planted);
    // The attacker, holding the planted value, is nobody.
    let mut attacker = Browser::new(66);
    attacker.jar.insert(SESSION.to_string(), planted);
    assert!(!attacker.get(&mut site, "/").is_forward());
}

#[test]
fn the_attackers_own_live_session_planted_in_the_victim_is_replaced() {
    let mut site = World::new();
    // The attacker logs in as barney and plants that session in fred's
    // browser, hoping fred's login will adopt it.
    let mut attacker = logged_in(&mut site, 66, BARNEY, BARNEY_PASSWORD);
    let planted = attacker.session(&site).expect("a session");
    let mut victim = Browser::new(1);
    victim.jar.insert(SESSION.to_string(), planted.clone());
    assert_eq!(victim.log_in(&mut site, FRED, FRED_PASSWORD).status, 303);
    let id = victim.session(&site).expect("a session");
    assert_ne!(id, planted, "the id changes at login");
    let access = victim.get(&mut site, "/").forwarded();
    assert_eq!(access.user.as_deref(), Some(FRED));
    // The planted id was the browser's session when it logged in: the
    // login ended it, so it carries nothing to the attacker any more.
    assert!(!attacker.get(&mut site, "/").is_forward());
    assert_eq!(site.logout_hooks(), 1);
}

// ----- forged cookies -------------------------------------------------------

#[test]
fn forged_truncated_oversized_and_duplicated_cookies_are_anonymous() {
    let mut site = World::new();
    let mut fred = logged_in(&mut site, 1, FRED, FRED_PASSWORD);
    let good = fred.session(&site).expect("a session");
    assert!(fred.get(&mut site, "/").is_forward());

    let mut flipped = good.clone().into_bytes();
    flipped[10] = if flipped[10] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    let cookie_lines: Vec<String> = vec![
        format!("{SESSION}={}", "A".repeat(43)),
        format!("{SESSION}={flipped}"),
        format!("{SESSION}={}", &good[..42]),
        format!("{SESSION}={}", &good[..20]),
        format!("{SESSION}={good}A"),
        format!("{SESSION}={good}="),
        format!("{SESSION}={}", "Q".repeat(4000)),
        format!("{SESSION}={}", good.to_lowercase()),
        format!("{SESSION}={good}; {SESSION}={good}"),
        format!("{SESSION}={good}; {SESSION}={}", "A".repeat(43)),
        format!("portcullis={good}"),
        format!("__host-portcullis={good}"),
        format!("{SESSION}="),
        format!("{SESSION}"),
    ];
    for line in &cookie_lines {
        let mut stranger = Browser::new(2);
        let raw = stranger.build("GET", "/", &[("Cookie", line)], None);
        let answer = stranger.send(&mut site, &raw);
        assert!(!answer.is_forward(), "forwarded with Cookie: {line}");
    }
    // Two Cookie fields, each with the good value.
    let mut stranger = Browser::new(2);
    let line = format!("{SESSION}={good}");
    let raw = stranger.build("GET", "/", &[("Cookie", &line), ("Cookie", &line)], None);
    assert!(!stranger.send(&mut site, &raw).is_forward());

    // None of that hurt fred's own session.
    assert!(fred.get(&mut site, "/").is_forward());
    assert_eq!(site.logout_hooks(), 0);
}

// ----- open redirects -------------------------------------------------------

const EVIL_RETURNS: &[&str] = &[
    "//evil.example",
    "//evil.example/path",
    "///evil.example",
    "////evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "\\/evil.example",
    "https://evil.example",
    "https:evil.example",
    "https:/evil.example",
    "HTTPS://evil.example",
    "//evil.example@example.com",
    "javascript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "evil.example",
    "/%2F%2Fevil.example",
    "/%2f/evil.example",
    "%2F%2Fevil.example",
    "/%5Cevil.example",
    "/%5cevil.example",
    "/%09/evil.example",
    "/\t/evil.example",
    " //evil.example",
    "/%0d%0aSet-Cookie:%20x=1",
    "/x?%0d%0aSet-Cookie:%20x=1",
    "/\r\nSet-Cookie: x=1",
    "/..//evil.example",
    "/%2e%2e//evil.example",
    "/.//evil.example",
    "/./\\evil.example",
    "/%00//evil.example",
    "/\u{3002}evil.example",
    "\u{ff0f}\u{ff0f}evil.example",
];

#[test]
fn return_to_from_the_login_page_url_never_leads_off_site() {
    let mut site = World::new();
    for evil in EVIL_RETURNS {
        let mut browser = Browser::new(1);
        let target = format!("/__login__?return_to={}", percent(evil));
        let form = browser.get(&mut site, &target).reply();
        assert_eq!(form.status, 200, "{evil:?}");
        let kept = form.hidden("return_to");
        assert!(same_origin_path(&kept), "{evil:?} kept as {kept:?}");
        let posted = browser
            .submit_login(&mut site, &form, FRED, FRED_PASSWORD)
            .reply();
        assert_eq!(posted.status, 303, "{evil:?}");
        let location = posted.location();
        assert!(same_origin_path(location), "{evil:?} -> {location:?}");
    }
}

#[test]
fn return_to_posted_directly_never_leads_off_site() {
    let mut site = World::new();
    for evil in EVIL_RETURNS {
        let mut browser = Browser::new(1);
        let form = browser.login_page(&mut site, None);
        let csrf = form.hidden("csrf");
        let posted = browser
            .post_form(
                &mut site,
                "/__login__",
                &[
                    ("username", FRED),
                    ("password", FRED_PASSWORD),
                    ("csrf", &csrf),
                    ("return_to", evil),
                ],
            )
            .reply();
        assert_eq!(posted.status, 303, "{evil:?}");
        let location = posted.location();
        assert!(same_origin_path(location), "{evil:?} -> {location:?}");
    }
}

#[test]
fn return_to_never_sends_the_browser_back_to_the_guard_pages() {
    let mut site = World::new();
    for own in [
        "/__login__",
        "/__logout__",
        "/__login__?return_to=//evil.example",
    ] {
        let mut browser = Browser::new(1);
        let form = browser.login_page(&mut site, Some(own));
        assert_eq!(form.hidden("return_to"), "/", "{own}");
    }
}

// ----- CSRF and cross-site posts ---------------------------------------------

#[track_caller]
fn assert_refused_without_session(
    site: &World,
    browser: &Browser,
    answer: &Response,
    status: &[u16],
) {
    assert!(status.contains(&answer.status), "{answer:?}");
    assert!(answer.set_cookie(SESSION).is_none(), "{answer:?}");
    assert_eq!(browser.session(site), None);
    assert_eq!(site.guard.session_count(), 0);
}

#[test]
fn a_login_post_with_a_wrong_or_foreign_csrf_token_is_refused() {
    let mut site = World::new();
    let mut fred = Browser::new(1);
    let form = fred.login_page(&mut site, None);
    let mut other = Browser::new(2);
    let other_form = other.login_page(&mut site, None);
    let token = form.hidden("csrf");
    let mut tampered = token.clone().into_bytes();
    tampered[5] = if tampered[5] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    for csrf in [
        other_form.hidden("csrf"),
        tampered,
        String::new(),
        "x".repeat(43),
        token[..20].to_string(),
    ] {
        let answer = fred
            .post_form(
                &mut site,
                "/__login__",
                &[
                    ("username", FRED),
                    ("password", FRED_PASSWORD),
                    ("csrf", &csrf),
                ],
            )
            .reply();
        assert_refused_without_session(&site, &fred, &answer, &[403]);
    }
    assert_eq!(site.verifications, 0, "no password checked");
    assert!(site.events().contains(&AuthEvent::LoginFailed {
        user: Some(FRED.to_string()),
        client: fred.client,
        reason: LoginFailureReason::Csrf,
    }));
}

#[test]
fn a_login_post_without_the_pre_login_cookie_is_refused() {
    let mut site = World::new();
    let mut fred = Browser::new(1);
    let form = fred.login_page(&mut site, None);
    fred.jar.clear();
    let answer = fred
        .submit_login(&mut site, &form, FRED, FRED_PASSWORD)
        .reply();
    assert_refused_without_session(&site, &fred, &answer, &[403]);
}

#[test]
fn a_login_post_without_a_csrf_field_is_refused() {
    let mut site = World::new();
    let mut fred = Browser::new(1);
    fred.login_page(&mut site, None);
    let answer = fred
        .post_form(
            &mut site,
            "/__login__",
            &[("username", FRED), ("password", FRED_PASSWORD)],
        )
        .reply();
    assert_refused_without_session(&site, &fred, &answer, &[403]);
    assert_eq!(site.verifications, 0);
    assert!(site.events().contains(&AuthEvent::LoginFailed {
        user: None,
        client: fred.client,
        reason: LoginFailureReason::Csrf,
    }));
}

#[test]
fn a_cross_site_login_post_is_refused_even_with_a_good_token() {
    let mut site = World::new();
    let attempts: &[&[(&str, &str)]] = &[
        &[("Origin", "https://evil.example")],
        &[
            ("Origin", "https://evil.example"),
            ("Sec-Fetch-Site", "cross-site"),
        ],
        &[("Sec-Fetch-Site", "cross-site")],
        &[("Sec-Fetch-Site", "same-site")],
        &[("Origin", "null")],
        &[("Origin", "http://example.com")],
        &[("Origin", "https://example.com.evil.example")],
        &[("Origin", "https://example.com:8443")],
        &[
            ("Origin", "https://example.com"),
            ("Sec-Fetch-Site", "cross-site"),
        ],
    ];
    for headers in attempts {
        let mut fred = Browser::new(1);
        let form = fred.login_page(&mut site, None);
        let body = urlencode(&[
            ("username", FRED),
            ("password", FRED_PASSWORD),
            ("csrf", &form.hidden("csrf")),
        ]);
        let answer = fred
            .post_raw(&mut site, "/__login__", headers, body.as_bytes())
            .reply();
        assert_refused_without_session(&site, &fred, &answer, &[403]);
    }
    assert_eq!(site.verifications, 0);
    // The same post from the site itself works (no fetch metadata at all,
    // as an older browser sends it, is allowed).
    let mut fred = Browser::new(1);
    let form = fred.login_page(&mut site, None);
    let body = urlencode(&[
        ("username", FRED),
        ("password", FRED_PASSWORD),
        ("csrf", &form.hidden("csrf")),
    ]);
    let answer = fred
        .post_raw(&mut site, "/__login__", &[], body.as_bytes())
        .reply();
    assert_eq!(answer.status, 303);
}

#[test]
fn logout_needs_its_csrf_token_and_a_same_origin_post() {
    let mut site = World::new();
    let mut fred = logged_in(&mut site, 1, FRED, FRED_PASSWORD);
    let confirm = fred.get(&mut site, "/__logout__").reply();
    let csrf = confirm.hidden("csrf");

    // A wrong token, no token, or the login form's token.
    let login_csrf = fred.login_page(&mut site, None).hidden("csrf");
    for fields in [
        vec![("csrf", "A".repeat(43))],
        vec![],
        vec![("csrf", login_csrf)],
    ] {
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let answer = fred.post_form(&mut site, "/__logout__", &fields).reply();
        assert_eq!(answer.status, 403, "{fields:?}");
    }
    // A cross-site post with the right token.
    let body = urlencode(&[("csrf", &csrf)]);
    let answer = fred
        .post_raw(
            &mut site,
            "/__logout__",
            &[
                ("Origin", "https://evil.example"),
                ("Sec-Fetch-Site", "cross-site"),
            ],
            body.as_bytes(),
        )
        .reply();
    assert_eq!(answer.status, 403);
    // Another browser's session cannot be ended with fred's token.
    let mut barney = logged_in(&mut site, 2, BARNEY, BARNEY_PASSWORD);
    let answer = barney
        .post_form(&mut site, "/__logout__", &[("csrf", &csrf)])
        .reply();
    assert_eq!(answer.status, 403);
    assert!(barney.get(&mut site, "/").is_forward());

    assert!(fred.get(&mut site, "/").is_forward(), "still logged in");
    assert_eq!(site.logout_hooks(), 0);
}

// ----- credentials in the URL, oversized and missing fields ----------------------

#[test]
fn credentials_in_the_query_string_are_refused() {
    let mut site = World::new();
    let mut fred = Browser::new(1);
    let form = fred.login_page(&mut site, None);
    let csrf = form.hidden("csrf");
    let query = format!(
        "/__login__?username=fred&password={}",
        percent(FRED_PASSWORD)
    );
    // Posted with the credentials in the URL (and a good form body).
    let body = urlencode(&[
        ("username", FRED),
        ("password", FRED_PASSWORD),
        ("csrf", &csrf),
    ]);
    let origin = fred.origin();
    let answer = fred
        .post_raw(&mut site, &query, &[("Origin", &origin)], body.as_bytes())
        .reply();
    assert_refused_without_session(&site, &fred, &answer, &[400]);
    // A GET with them only shows the form.
    let answer = fred.get(&mut site, &query).reply();
    assert_eq!(answer.status, 200);
    assert_eq!(answer.set_cookie(SESSION), None);
    // A body-less post with them in the URL.
    let query = format!("{query}&csrf={csrf}");
    let answer = fred
        .post_raw(&mut site, &query, &[("Origin", &origin)], b"")
        .reply();
    assert_refused_without_session(&site, &fred, &answer, &[400]);
    assert_eq!(site.verifications, 0);
}

#[test]
fn an_over_long_password_is_refused_without_hashing() {
    let mut site = World::new();
    let mut fred = Browser::new(1);
    let form = fred.login_page(&mut site, None);
    let long = "x".repeat(2048);
    let answer = fred.submit_login(&mut site, &form, FRED, &long).reply();
    assert_refused_without_session(&site, &fred, &answer, &[200, 400]);
    assert_eq!(site.verifications, 0, "no argon2 for 2 KiB");
    assert!(site.events().contains(&AuthEvent::LoginFailed {
        user: Some(FRED.to_string()),
        client: fred.client,
        reason: LoginFailureReason::PasswordTooLong,
    }));
}

#[test]
fn missing_or_repeated_fields_are_refused() {
    let mut site = World::new();
    let mut fred = Browser::new(1);
    let form = fred.login_page(&mut site, None);
    let csrf = form.hidden("csrf");
    let cases: Vec<Vec<(&str, &str)>> = vec![
        vec![("password", FRED_PASSWORD), ("csrf", &csrf)],
        vec![("username", FRED), ("csrf", &csrf)],
        vec![],
        vec![
            ("username", FRED),
            ("username", BARNEY),
            ("password", FRED_PASSWORD),
            ("csrf", &csrf),
        ],
        vec![
            ("username", FRED),
            ("password", "x"),
            ("password", FRED_PASSWORD),
            ("csrf", &csrf),
        ],
    ];
    for fields in cases {
        let answer = fred.post_form(&mut site, "/__login__", &fields).reply();
        assert_refused_without_session(&site, &fred, &answer, &[400]);
    }
    assert_eq!(site.verifications, 0);
}

#[test]
fn a_body_over_8_kib_is_refused_with_413() {
    let mut site = World::new();
    let mut fred = Browser::new(1);
    let form = fred.login_page(&mut site, None);
    let padding = "p".repeat(9000);
    let body = urlencode(&[
        ("username", FRED),
        ("password", FRED_PASSWORD),
        ("csrf", &form.hidden("csrf")),
        ("pad", &padding),
    ]);
    let origin = fred.origin();
    let answer = fred
        .post_raw(
            &mut site,
            "/__login__",
            &[("Origin", &origin)],
            body.as_bytes(),
        )
        .reply();
    assert_refused_without_session(&site, &fred, &answer, &[413]);
}

#[test]
fn a_login_post_that_is_not_urlencoded_is_refused() {
    let mut site = World::new();
    let mut fred = Browser::new(1);
    let form = fred.login_page(&mut site, None);
    let body = urlencode(&[
        ("username", FRED),
        ("password", FRED_PASSWORD),
        ("csrf", &form.hidden("csrf")),
    ]);
    let raw = fred.build(
        "POST",
        "/__login__",
        &[("Content-Type", "text/plain")],
        Some(body.as_bytes()),
    );
    let answer = fred.send(&mut site, &raw).reply();
    assert_refused_without_session(&site, &fred, &answer, &[415]);
}

// ----- brute force ----------------------------------------------------------------

#[test]
fn repeated_failures_are_throttled_and_the_right_password_waits_too() {
    let mut site = World::new();
    let mut mallory = Browser::new(66);
    let form = mallory.login_page(&mut site, None);
    let mut throttled = None;
    for attempt in 0..20 {
        let answer = mallory
            .submit_login(&mut site, &form, FRED, &format!("guess {attempt}"))
            .reply();
        if answer.status == 429 {
            throttled = Some(answer);
            break;
        }
        assert_eq!(answer.status, 200);
    }
    let throttled = throttled.expect("throttled in the end");
    let wait: u64 = throttled
        .header("Retry-After")
        .expect("Retry-After")
        .parse()
        .expect("whole seconds");
    assert!(wait >= 1);
    assert!(site
        .events()
        .iter()
        .any(|e| matches!(e, AuthEvent::Throttled { user, .. } if user == FRED)));

    // The right password now does not get through, and is not even
    // checked.
    let checked = site.verifications;
    let answer = mallory
        .submit_login(&mut site, &form, FRED, FRED_PASSWORD)
        .reply();
    assert_eq!(answer.status, 429);
    assert!(answer.header("Retry-After").is_some());
    assert_eq!(site.verifications, checked);
    assert_eq!(site.guard.session_count(), 0);
    assert_eq!(mallory.session(&site), None);

    // Once the wait is over, it does.
    site.advance(secs(wait));
    let answer = mallory
        .submit_login(&mut site, &form, FRED, FRED_PASSWORD)
        .reply();
    assert_eq!(answer.status, 303, "{answer:?}");
}

#[test]
fn a_browser_that_logged_in_before_keeps_its_way_in_while_a_stranger_locks_the_account() {
    let mut site = World::new();
    // Fred logged in from his laptop last week; the session has long
    // expired, the device cookie (90 days) has not.
    let mut laptop = logged_in(&mut site, 1, FRED, FRED_PASSWORD);
    let device = laptop
        .jar
        .get("__Host-portcullis-device")
        .cloned()
        .expect("a device cookie");
    let set = site_device_cookie_attributes(&mut site);
    assert!(set.contains("Max-Age=7776000"), "{set}");
    site.advance(secs(7 * 24 * 3600));
    assert!(!laptop.get(&mut site, "/").is_forward());

    // A stranger hammers fred's account from many addresses until the
    // account itself is locked.
    let mut locked = false;
    'hammer: for host in 10..250u8 {
        let mut stranger = Browser::new(host);
        stranger.client = IpAddr::V4(Ipv4Addr::new(198, 51, 100, host));
        let form = stranger.login_page(&mut site, None);
        for guess in 0..3 {
            let answer = stranger
                .submit_login(&mut site, &form, FRED, &format!("guess {host} {guess}"))
                .reply();
            if answer.status == 429 && guess == 0 {
                locked = true;
                break 'hammer;
            }
        }
    }
    assert!(locked, "the account is locked");

    // Even the right password from a new browser is refused now.
    let mut newcomer = Browser::new(200);
    newcomer.client = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 1));
    let form = newcomer.login_page(&mut site, None);
    let answer = newcomer
        .submit_login(&mut site, &form, FRED, FRED_PASSWORD)
        .reply();
    assert_eq!(answer.status, 429);

    // Fred's laptop, with its device cookie, still gets in.
    assert_eq!(laptop.jar.get("__Host-portcullis-device"), Some(&device));
    let answer = laptop.log_in(&mut site, FRED, FRED_PASSWORD);
    assert_eq!(answer.status, 303, "{answer:?}");
    assert!(laptop.get(&mut site, "/").is_forward());
}

/// The `Set-Cookie` of the device cookie at a fresh login.
fn site_device_cookie_attributes(site: &mut World) -> String {
    let mut browser = Browser::new(99);
    let answer = browser.log_in(site, BARNEY, BARNEY_PASSWORD);
    answer
        .set_cookie("__Host-portcullis-device")
        .expect("a device cookie")
        .to_string()
}

// ----- password checks in flight --------------------------------------------

/// A login post ready to send: the form fetched, the body filled in.
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
        ],
        Some(body.as_bytes()),
    )
}

#[test]
fn verdicts_given_back_to_the_wrong_ticket_log_nobody_in() {
    // Two checks in flight at once; a server that mixes up its worker
    // results must not turn fred's good password into barney's session.
    let mut site = World::new();
    let mut fred = Browser::new(1);
    let mut mallory = Browser::new(66);
    let fred_post = login_post(&mut site, &mut fred, FRED, FRED_PASSWORD);
    let mallory_post = login_post(&mut site, &mut mallory, BARNEY, "a guess");
    let fred_check = site.until_verification(fred.client, &fred_post);
    let mallory_check = site.until_verification(mallory.client, &mallory_post);
    assert_ne!(fred_check.ticket, mallory_check.ticket);
    let fred_verdict = fred_check.job.run();
    let mallory_verdict = mallory_check.job.run();

    let now = site.now;
    let decision = site.guard.complete(now, mallory_check.ticket, fred_verdict);
    match decision {
        Decision::Respond(reply) => assert_ne!(reply.head.status(), 303),
        other => panic!("{other:?}"),
    }
    assert_eq!(site.guard.session_count(), 0, "nobody logged in");
    let decision = site.guard.complete(now, fred_check.ticket, mallory_verdict);
    assert!(matches!(decision, Decision::Respond(_)));
    assert_eq!(site.guard.session_count(), 0);
    assert!(!site
        .events()
        .iter()
        .any(|e| matches!(e, AuthEvent::LoginSucceeded { .. })));
}

#[test]
fn a_ticket_completes_once() {
    let mut site = World::new();
    let mut fred = Browser::new(1);
    let post = login_post(&mut site, &mut fred, FRED, FRED_PASSWORD);
    let check = site.until_verification(fred.client, &post);
    let ticket = check.ticket;
    let now = site.now;
    let first = site.guard.complete(now, ticket, check.job.run());
    assert!(matches!(first, Decision::Respond(ref r) if r.head.status() == 303));
    assert_eq!(site.guard.session_count(), 1);
    // A second verdict for the same ticket (a correct one, even) does
    // nothing.
    let post = login_post(&mut site, &mut fred, FRED, FRED_PASSWORD);
    let again = site.until_verification(fred.client, &post);
    let decision = site.guard.complete(now, ticket, again.job.run());
    assert!(matches!(decision, Decision::Respond(ref r) if r.head.status() == 500));
    assert_eq!(site.guard.session_count(), 1);
}

#[test]
fn a_stolen_device_cookie_is_revoked_after_ten_failures() {
    let mut site = World::new();
    let laptop = logged_in(&mut site, 1, FRED, FRED_PASSWORD);
    let device = laptop
        .jar
        .get("__Host-portcullis-device")
        .cloned()
        .expect("a device cookie");
    // A thief copies the device cookie and guesses, slowly enough for the
    // device's own backoff.
    let mut thief = Browser::new(66);
    thief
        .jar
        .insert("__Host-portcullis-device".to_string(), device.clone());
    let mut cleared_at = None;
    for attempt in 1..=12 {
        site.advance(mins(20));
        let form = thief.login_page(&mut site, None);
        let answer = thief
            .submit_login(&mut site, &form, FRED, &format!("guess {attempt}"))
            .reply();
        assert_eq!(answer.status, 200, "attempt {attempt}: {answer:?}");
        if let Some(set) = answer.set_cookie("__Host-portcullis-device") {
            assert!(set.contains("Max-Age=0"), "{set}");
            cleared_at = Some(attempt);
            break;
        }
    }
    assert_eq!(cleared_at, Some(10));
    // The token is dead for everyone, fred's laptop included: a throttled
    // account no longer lets it through.
    let mut again = Browser::new(67);
    again
        .jar
        .insert("__Host-portcullis-device".to_string(), device);
    for attempt in 0..5 {
        let form = again.login_page(&mut site, None);
        let answer = again
            .submit_login(&mut site, &form, FRED, &format!("more {attempt}"))
            .reply();
        assert_eq!(answer.status, 200, "{answer:?}");
    }
    let form = again.login_page(&mut site, None);
    let answer = again
        .submit_login(&mut site, &form, FRED, "one more")
        .reply();
    assert_eq!(answer.status, 429, "the pair limit applies: untrusted now");
}

#[test]
fn password_checks_in_flight_are_bounded() {
    let mut site = World::new();
    let mut held = Vec::new();
    let mut next = 0u32;
    let mut stranger = |site: &mut World| {
        next += 1;
        let mut browser = Browser::new(1);
        let [_, _, a, b] = next.to_be_bytes();
        browser.client = IpAddr::V4(Ipv4Addr::new(10, 1, a, b));
        let post = login_post(site, &mut browser, &format!("user{next}"), "guess");
        (browser.client, post)
    };
    for _ in 0..1024 {
        let (client, post) = stranger(&mut site);
        held.push(site.until_verification(client, &post));
    }
    // One more is answered at once, without a check.
    let (client, post) = stranger(&mut site);
    let answer = site.exchange(client, &post).reply();
    assert_eq!(answer.status, 503);
    assert_eq!(answer.header("Retry-After"), Some("1"));
    // Once one check completes there is room again.
    let done = held.pop().expect("held");
    let now = site.now;
    let _ = site.guard.complete(now, done.ticket, done.job.run());
    let (client, post) = stranger(&mut site);
    let _ = site.until_verification(client, &post);
}

#[test]
fn an_attacker_rotating_addresses_inside_one_ipv6_64_is_one_client() {
    let mut site = World::new();
    let mut throttled = None;
    for n in 1..=40u16 {
        let mut browser = Browser::new(1);
        browser.client = IpAddr::V6(std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 7, n));
        let form = browser.login_page(&mut site, None);
        // A different account each time: only the address counter grows.
        let answer = browser
            .submit_login(&mut site, &form, &format!("user{n}"), "guess")
            .reply();
        if answer.status == 429 {
            throttled = Some(n);
            break;
        }
        assert_eq!(answer.status, 200);
    }
    let n = throttled.expect("the /64 is throttled");
    assert!(n > 20, "20 free failures first (stopped at {n})");
    // Another /64 is not affected.
    let mut elsewhere = Browser::new(1);
    elsewhere.client = IpAddr::V6(std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, 1));
    assert_eq!(elsewhere.log_in(&mut site, FRED, FRED_PASSWORD).status, 303);
}

#[test]
fn verdicts_swapped_between_two_logins_of_the_same_user_log_nobody_in() {
    // Mallory guesses fred's password while fred logs in. Both checks are
    // for "fred", so only the job's own id can tell their verdicts apart:
    // fred's good verdict under mallory's ticket must not give mallory
    // fred's session.
    let mut site = World::new();
    let mut fred = Browser::new(1);
    let mut mallory = Browser::new(66);
    let fred_post = login_post(&mut site, &mut fred, FRED, FRED_PASSWORD);
    let mallory_post = login_post(&mut site, &mut mallory, FRED, "a guess");
    let fred_check = site.until_verification(fred.client, &fred_post);
    let mallory_check = site.until_verification(mallory.client, &mallory_post);
    assert_ne!(fred_check.job.id(), mallory_check.job.id());
    let fred_verdict = fred_check.job.run();
    let mallory_verdict = mallory_check.job.run();
    assert!(fred_verdict.is_match());

    let now = site.now;
    let decision = site.guard.complete(now, mallory_check.ticket, fred_verdict);
    assert!(matches!(decision, Decision::Respond(ref r) if r.head.status() == 200));
    let decision = site.guard.complete(now, fred_check.ticket, mallory_verdict);
    assert!(matches!(decision, Decision::Respond(ref r) if r.head.status() == 200));
    assert_eq!(site.guard.session_count(), 0, "nobody logged in");
}

#[test]
fn a_check_whose_verdict_never_comes_back_frees_its_slot_after_a_minute() {
    // A worker that loses a job must not hold one of the bounded slots for
    // ever: after 60 s the check is dropped (and counts as a failure).
    let mut site = World::new();
    let mut lost = Vec::new();
    for n in 0..1024u32 {
        let mut browser = Browser::new(1);
        let [_, _, a, b] = n.to_be_bytes();
        browser.client = IpAddr::V4(Ipv4Addr::new(10, 2, a, b));
        let post = login_post(&mut site, &mut browser, &format!("user{n}"), "guess");
        lost.push(site.until_verification(browser.client, &post));
    }
    let mut late = Browser::new(2);
    let post = login_post(&mut site, &mut late, FRED, FRED_PASSWORD);
    assert_eq!(site.exchange(late.client, &post).reply().status, 503);

    site.advance(secs(60));
    let post = login_post(&mut site, &mut late, FRED, FRED_PASSWORD);
    let check = site.until_verification(late.client, &post);
    // A verdict for a dropped ticket is refused.
    let old = lost.pop().expect("a lost check");
    let now = site.now;
    let stale = site.guard.complete(now, old.ticket, old.job.run());
    assert!(matches!(stale, Decision::Respond(ref r) if r.head.status() == 500));
    let fresh = site.guard.complete(now, check.ticket, check.job.run());
    assert!(matches!(fresh, Decision::Respond(ref r) if r.head.status() == 303));
}
