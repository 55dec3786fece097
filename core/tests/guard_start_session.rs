//! An embedder that verified a user itself (single sign-on, a benchmark's
//! synthetic users) starts the session with `Guard::start_session`: the
//! cookie it gets works like a login's, and the session lives under the
//! same rules: per-user cap, capacity, timeouts, logout.

mod guard_support;

use std::time::Duration;

use guard_support::*;
use portcullis_core::cred::{AvatarId, LogoutHook, Portal, Realm};
use portcullis_core::guard::{AuthEvent, Guard, GuardConfig, SessionEndReason};
use portcullis_core::random::TestRng;
use portcullis_core::session::SESSION_COOKIE_CHARS;

fn ended(user: &str, reason: SessionEndReason) -> AuthEvent {
    AuthEvent::SessionEnded {
        user: user.to_string(),
        reason,
    }
}

/// A browser carrying the session cookie the embedder set for it.
fn browser_with(site: &World, n: u8, cookie: &str) -> Browser {
    let mut browser = Browser::new(n);
    browser
        .jar
        .insert(site.session_cookie(), cookie.to_string());
    browser
}

#[test]
fn a_started_session_gets_the_site_without_a_password() {
    let mut site = World::new();
    // Carol is in no password file: the embedder vouches for her.
    let cookie = site
        .guard
        .start_session(site.now, "carol")
        .expect("the realm has an avatar for carol");
    assert_eq!(cookie.len(), SESSION_COOKIE_CHARS);
    assert_eq!(site.guard.session_count(), 1);
    // Nothing was verified, and the embedder logs the start itself.
    assert_eq!(site.verifications, 0);
    assert_eq!(site.events(), vec![]);

    let mut carol = browser_with(&site, 1, &cookie);
    let access = carol.get(&mut site, "/reports?q=1").forwarded();
    assert_eq!(access.user.as_deref(), Some("carol"));
    assert_eq!(access.avatar.as_deref(), Some("carol"));
    assert_eq!(access.path, "/reports");

    // A browser without the cookie is still asked to log in.
    let stranger = Browser::new(2).get(&mut site, "/reports").reply();
    assert_eq!(stranger.status, 303);

    // Logging out through the guard's form ends it, hook and all.
    assert_eq!(carol.log_out(&mut site).status, 303);
    assert_eq!(
        site.events(),
        vec![ended("carol", SessionEndReason::Logout)]
    );
    assert_eq!(site.logout_hooks(), 1);
    assert!(!browser_with(&site, 3, &cookie)
        .get(&mut site, "/")
        .is_forward());
}

#[test]
fn every_start_is_a_new_session() {
    let mut site = World::new();
    let first = site.guard.start_session(site.now, FRED).unwrap();
    let second = site.guard.start_session(site.now, FRED).unwrap();
    assert_ne!(first, second);
    assert_eq!(site.guard.session_count(), 2);
    // Both work, each on its own.
    for (n, cookie) in [(1, &first), (2, &second)] {
        let access = browser_with(&site, n, cookie)
            .get(&mut site, "/")
            .forwarded();
        assert_eq!(access.user.as_deref(), Some(FRED));
    }
}

#[test]
fn started_sessions_count_against_the_per_user_cap_with_logins() {
    let mut config = config();
    config.sessions.per_user_cap = 2;
    let mut site = World::with_config(config);

    // Fred logs in with his password, then two sessions are started for
    // him: the login's, the oldest, makes room.
    let mut laptop = Browser::new(1);
    assert_eq!(laptop.log_in(&mut site, FRED, FRED_PASSWORD).status, 303);
    site.events();
    site.advance(secs(1));
    let phone = site.guard.start_session(site.now, FRED).unwrap();
    assert_eq!(site.events(), vec![]);
    site.advance(secs(1));
    let tablet = site.guard.start_session(site.now, FRED).unwrap();
    assert_eq!(site.events(), vec![ended(FRED, SessionEndReason::Evicted)]);
    assert_eq!(site.logout_hooks(), 1);
    assert_eq!(site.guard.session_count(), 2);
    assert!(!laptop.get(&mut site, "/").is_forward());

    // A third start ends the phone's, now the oldest; barney is untouched.
    let barney = site.guard.start_session(site.now, BARNEY).unwrap();
    let desk = site.guard.start_session(site.now, FRED).unwrap();
    assert_eq!(site.events(), vec![ended(FRED, SessionEndReason::Evicted)]);
    for (n, cookie, works) in [(2, &phone, false), (3, &tablet, true), (4, &desk, true)] {
        let outcome = browser_with(&site, n, cookie).get(&mut site, "/");
        assert_eq!(outcome.is_forward(), works, "session {n}");
    }
    assert!(browser_with(&site, 5, &barney)
        .get(&mut site, "/")
        .is_forward());
}

#[test]
fn a_full_store_makes_room_for_a_start_as_for_a_login() {
    let mut config = config();
    config.sessions.capacity = 2;
    let mut site = World::with_config(config);
    let fred = site.guard.start_session(site.now, FRED).unwrap();
    site.advance(secs(1));
    let barney = site.guard.start_session(site.now, BARNEY).unwrap();
    site.advance(secs(1));
    // Fred's session is used, so barney's is now the least recently used.
    assert!(browser_with(&site, 1, &fred)
        .get(&mut site, "/")
        .is_forward());
    let _carol = site.guard.start_session(site.now, "carol").unwrap();
    assert_eq!(
        site.events(),
        vec![ended(BARNEY, SessionEndReason::Evicted)]
    );
    assert_eq!(site.guard.session_count(), 2);
    assert!(!browser_with(&site, 2, &barney)
        .get(&mut site, "/")
        .is_forward());
}

#[test]
fn a_started_session_idles_out_after_thirty_minutes() {
    let mut site = World::new();
    let cookie = site.guard.start_session(site.now, FRED).unwrap();
    let mut fred = browser_with(&site, 1, &cookie);

    // A nanosecond before the deadline it works, and that use restarts
    // the idle clock; thirty minutes unused, to the nanosecond, end it.
    site.advance(mins(30) - Duration::from_nanos(1));
    assert!(fred.get(&mut site, "/").is_forward());
    site.advance(mins(30));
    assert_eq!(fred.get(&mut site, "/").reply().status, 303);
    assert_eq!(site.events(), vec![ended(FRED, SessionEndReason::Idle)]);
    assert_eq!(site.logout_hooks(), 1);
    assert_eq!(site.guard.session_count(), 0);
}

#[test]
fn a_started_session_ends_twelve_hours_after_it_started_however_busy() {
    let mut site = World::new();
    let cookie = site.guard.start_session(site.now, FRED).unwrap();
    let mut fred = browser_with(&site, 1, &cookie);
    // A request every 20 minutes keeps it from idling, up to 11 h 40 min;
    // a nanosecond before 12 h it still works, at 12 h it does not.
    for _ in 0..35 {
        site.advance(mins(20));
        assert!(fred.get(&mut site, "/").is_forward());
    }
    site.advance(mins(20) - Duration::from_nanos(1));
    assert!(fred.get(&mut site, "/").is_forward());
    site.advance(Duration::from_nanos(1));
    assert!(!fred.get(&mut site, "/").is_forward());
    assert_eq!(site.events(), vec![ended(FRED, SessionEndReason::Absolute)]);
    assert_eq!(site.logout_hooks(), 1);
}

/// A realm that knows fred only.
struct FredOnly;

impl Realm for FredOnly {
    type Avatar = String;

    fn request_avatar(&mut self, id: &AvatarId) -> Option<(String, LogoutHook)> {
        match id {
            AvatarId::User(name) if name == FRED => Some((name.clone(), LogoutHook::noop())),
            _ => None,
        }
    }
}

#[test]
fn no_session_starts_for_a_user_the_realm_does_not_know() {
    let mut guard = Guard::new(
        GuardConfig::default(),
        Portal::new(FredOnly),
        Box::new(TestRng::seeded(3)),
    )
    .expect("no public paths");
    let now = epoch();
    assert_eq!(guard.start_session(now, "mallory"), None);
    assert_eq!(guard.session_count(), 0);
    assert!(guard.start_session(now, FRED).is_some());
    assert_eq!(guard.session_count(), 1);
}
