//! HTTP Basic for API clients (after Twisted's test_httpauth.py): off by
//! default; when on, good credentials are forwarded (and cached briefly),
//! anything else gets 401 with the Basic challenge.

mod guard_support;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use guard_support::*;
use portcullis_core::guard::{AuthEvent, GuardConfig};

fn basic_site() -> World {
    World::with_config(GuardConfig {
        basic_realm: Some("Bedrock API".to_string()),
        ..config()
    })
}

fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{user}:{password}")))
}

#[track_caller]
fn assert_challenge(outcome: Outcome) {
    let answer = outcome.reply();
    assert_eq!(answer.status, 401, "{answer:?}");
    let challenge = answer.header("WWW-Authenticate").expect("a challenge");
    assert!(
        challenge.starts_with("Basic realm=\"Bedrock API\""),
        "{challenge}"
    );
    assert!(
        answer.all("Set-Cookie").is_empty(),
        "no cookie for a script"
    );
}

#[test]
fn good_credentials_are_forwarded_then_cached() {
    let mut site = basic_site();
    let mut script = Browser::script(7);
    let auth = basic(FRED, FRED_PASSWORD);
    let access = script
        .get_with(&mut site, "/api/items", &[("Authorization", &auth)])
        .forwarded();
    assert_eq!(access.user.as_deref(), Some(FRED));
    assert_eq!(access.avatar.as_deref(), Some(FRED));
    assert_eq!(access.path, "/api/items");
    assert_eq!(site.verifications, 1);
    assert!(site.events().contains(&AuthEvent::BasicVerified {
        user: FRED.to_string(),
        client: script.client,
    }));

    // The second request pays no argon2.
    site.advance(secs(5));
    let again = script
        .get_with(&mut site, "/api/items/2", &[("Authorization", &auth)])
        .forwarded();
    assert_eq!(again.user.as_deref(), Some(FRED));
    assert_eq!(site.verifications, 1, "served from the cache");
    // No session was made for a script: each request is its own "session",
    // so the realm's logout hook ran once for each (twisted.web.guard logs
    // a Basic avatar out when its request is done).
    assert_eq!(site.guard.session_count(), 0);
    assert_eq!(site.logout_hooks(), 2);
}

#[test]
fn the_cache_does_not_outlive_the_user() {
    let mut site = basic_site();
    let mut script = Browser::script(7);
    let auth = basic(FRED, FRED_PASSWORD);
    assert!(script
        .get_with(&mut site, "/api", &[("Authorization", &auth)])
        .is_forward());
    site.guard.end_user_sessions(FRED);
    assert!(script
        .get_with(&mut site, "/api", &[("Authorization", &auth)])
        .is_forward());
    assert_eq!(
        site.verifications, 2,
        "checked again after the user changed"
    );
}

#[test]
fn unknown_user_wrong_password_bad_base64_and_unknown_scheme_get_401() {
    let mut site = basic_site();
    let mut script = Browser::script(7);
    let unknown = basic("wilma", FRED_PASSWORD);
    let wrong = basic(FRED, "not it");
    for header in [
        unknown.as_str(),
        wrong.as_str(),
        "Basic !!!not-base64!!!",
        "Basic",
        "Bearer abc.def.ghi",
        "Digest username=\"fred\"",
    ] {
        assert_challenge(script.get_with(&mut site, "/api", &[("Authorization", header)]));
    }
    // A wrong password is never cached as good.
    assert_challenge(script.get_with(&mut site, "/api", &[("Authorization", &wrong)]));
    assert_eq!(site.guard.session_count(), 0);
}

#[test]
fn no_credentials_get_the_challenge() {
    let mut site = basic_site();
    let mut script = Browser::script(7);
    assert_challenge(script.get(&mut site, "/api"));
}

#[test]
fn basic_is_off_by_default() {
    let mut site = World::new();
    let mut script = Browser::script(7);
    let auth = basic(FRED, FRED_PASSWORD);
    let answer = script
        .get_with(&mut site, "/api", &[("Authorization", &auth)])
        .reply();
    assert_eq!(answer.status, 401);
    assert!(!answer
        .header("WWW-Authenticate")
        .unwrap_or_default()
        .starts_with("Basic"));
    assert_eq!(site.verifications, 0);
}

#[test]
fn a_browser_still_gets_the_form_when_basic_is_on() {
    let mut site = basic_site();
    let mut fred = Browser::new(1);
    assert_eq!(fred.get(&mut site, "/").reply().status, 303);
    assert_eq!(fred.log_in(&mut site, FRED, FRED_PASSWORD).status, 303);
    assert!(fred.get(&mut site, "/").is_forward());
}

#[test]
fn basic_failures_are_throttled() {
    let mut site = basic_site();
    let mut script = Browser::script(7);
    let wrong = basic(FRED, "not it");
    let mut throttled = None;
    for _ in 0..30 {
        let answer = script
            .get_with(&mut site, "/api", &[("Authorization", &wrong)])
            .reply();
        if answer.status == 429 {
            throttled = Some(answer);
            break;
        }
        assert_eq!(answer.status, 401);
    }
    let throttled = throttled.expect("throttled in the end");
    assert!(throttled.header("Retry-After").is_some());
    // The right password during the throttle does not get through.
    let before = site.verifications;
    let right = basic(FRED, FRED_PASSWORD);
    let answer = script
        .get_with(&mut site, "/api", &[("Authorization", &right)])
        .reply();
    assert_eq!(answer.status, 429);
    assert_eq!(
        site.verifications, before,
        "no password check while throttled"
    );
}
