//! Sessions end on their own: idle for 30 minutes, or 12 hours after the
//! login whatever the activity, exact to the virtual second.

mod guard_support;

use std::time::Duration;

use guard_support::*;
use portcullis_core::guard::{AuthEvent, SessionEndReason};

fn ended(user: &str, reason: SessionEndReason) -> AuthEvent {
    AuthEvent::SessionEnded {
        user: user.to_string(),
        reason,
    }
}

fn logged_in_fred(site: &mut World) -> Browser {
    let mut fred = Browser::new(1);
    assert_eq!(fred.log_in(site, FRED, FRED_PASSWORD).status, 303);
    site.events();
    fred
}

#[test]
fn idle_for_exactly_thirty_minutes_ends_the_session() {
    let mut site = World::new();
    let mut fred = logged_in_fred(&mut site);

    // A nanosecond before the deadline it is alive, and that use restarts
    // the idle clock.
    site.advance(mins(30) - Duration::from_nanos(1));
    assert!(fred.get(&mut site, "/").is_forward());
    site.advance(mins(30) - Duration::from_nanos(1));
    assert!(fred.get(&mut site, "/").is_forward());
    assert_eq!(site.logout_hooks(), 0);

    // Exactly thirty minutes after the last use it is over.
    site.advance(mins(30));
    let answer = fred.get(&mut site, "/").reply();
    assert_eq!(answer.status, 303);
    assert!(answer.location().starts_with("/__login__"));
    assert_eq!(site.events(), vec![ended(FRED, SessionEndReason::Idle)]);
    assert_eq!(site.logout_hooks(), 1);

    // And it stays over.
    assert!(!fred.get(&mut site, "/").is_forward());
    assert_eq!(site.logout_hooks(), 1);
    assert_eq!(site.guard.session_count(), 0);
}

#[test]
fn twelve_hours_end_the_session_despite_activity() {
    let mut site = World::new();
    let mut fred = logged_in_fred(&mut site);
    // A request every 20 minutes keeps it from idling...
    for _ in 0..35 {
        site.advance(mins(20));
        assert!(fred.get(&mut site, "/work").is_forward());
    }
    // ...up to 11 h 40 min; a nanosecond before 12 h it still works.
    site.advance(mins(20) - Duration::from_nanos(1));
    assert!(fred.get(&mut site, "/work").is_forward());
    assert_eq!(site.logout_hooks(), 0);
    // At exactly 12 hours it does not.
    site.advance(Duration::from_nanos(1));
    let answer = fred.get(&mut site, "/work").reply();
    assert_eq!(answer.status, 303);
    assert_eq!(site.events(), vec![ended(FRED, SessionEndReason::Absolute)]);
    assert_eq!(site.logout_hooks(), 1);
}

#[test]
fn a_sweep_ends_idle_sessions_without_any_request() {
    let mut site = World::new();
    let _fred = logged_in_fred(&mut site);
    let mut barney = Browser::new(2);
    assert_eq!(
        barney.log_in(&mut site, BARNEY, BARNEY_PASSWORD).status,
        303
    );
    site.events();
    site.advance(mins(29));
    assert!(barney.get(&mut site, "/").is_forward());
    site.advance(mins(1));
    site.guard.sweep(site.now);
    // fred was idle for 30 minutes, barney for one.
    assert_eq!(site.events(), vec![ended(FRED, SessionEndReason::Idle)]);
    assert_eq!(site.logout_hooks(), 1);
    assert_eq!(site.guard.session_count(), 1);
    assert!(barney.get(&mut site, "/").is_forward());
}

#[test]
fn logging_out_everywhere_ends_every_session_of_the_user() {
    let mut site = World::new();
    let mut laptop = logged_in_fred(&mut site);
    let mut phone = Browser::new(2);
    assert_eq!(phone.log_in(&mut site, FRED, FRED_PASSWORD).status, 303);
    let mut barney = Browser::new(3);
    assert_eq!(
        barney.log_in(&mut site, BARNEY, BARNEY_PASSWORD).status,
        303
    );
    site.events();
    site.guard.end_user_sessions(FRED);
    assert_eq!(
        site.events(),
        vec![
            ended(FRED, SessionEndReason::UserEnded),
            ended(FRED, SessionEndReason::UserEnded)
        ]
    );
    assert_eq!(site.logout_hooks(), 2);
    assert!(!laptop.get(&mut site, "/").is_forward());
    assert!(!phone.get(&mut site, "/").is_forward());
    assert!(barney.get(&mut site, "/").is_forward());
}

#[test]
fn a_logout_reports_one_session_ended() {
    let mut site = World::new();
    let mut fred = logged_in_fred(&mut site);
    assert_eq!(fred.log_out(&mut site).status, 303);
    assert_eq!(site.events(), vec![ended(FRED, SessionEndReason::Logout)]);
    assert_eq!(site.logout_hooks(), 1);
}

#[test]
fn a_users_oldest_session_is_evicted_beyond_the_per_user_cap() {
    let mut config = config();
    config.sessions.per_user_cap = 2;
    let mut site = World::with_config(config);
    let mut browsers: Vec<Browser> = (1..=3).map(Browser::new).collect();
    for browser in &mut browsers {
        site.advance(secs(1));
        assert_eq!(browser.log_in(&mut site, FRED, FRED_PASSWORD).status, 303);
    }
    assert!(site
        .events()
        .contains(&ended(FRED, SessionEndReason::Evicted)));
    assert_eq!(site.logout_hooks(), 1);
    assert!(!browsers[0].get(&mut site, "/").is_forward(), "the oldest");
    assert!(browsers[1].get(&mut site, "/").is_forward());
    assert!(browsers[2].get(&mut site, "/").is_forward());
}

#[test]
fn sweeps_end_many_idle_sessions_a_batch_at_a_time() {
    let mut site = World::new();
    let mut browsers: Vec<Browser> = (0..150u8)
        .map(|i| {
            let mut browser = Browser::new(i);
            browser.client = std::net::IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, i));
            browser
        })
        .collect();
    for (i, browser) in browsers.iter_mut().enumerate() {
        let (user, password) = if i % 2 == 0 {
            (FRED, FRED_PASSWORD)
        } else {
            (BARNEY, BARNEY_PASSWORD)
        };
        assert_eq!(browser.log_in(&mut site, user, password).status, 303);
    }
    // 75 sessions each: beyond the default per-user cap of 64.
    assert_eq!(site.guard.session_count(), 128);
    assert_eq!(site.logout_hooks(), 22, "the evicted ones");
    site.advance(mins(30));
    let mut sweeps = 0;
    while site.guard.session_count() > 0 {
        site.guard.sweep(site.now);
        sweeps += 1;
        assert!(sweeps <= 10, "sweeps make progress");
    }
    assert!(sweeps >= 2, "bounded work per sweep ({sweeps})");
    assert_eq!(site.logout_hooks(), 150, "every hook ran once");
}

#[test]
fn a_full_store_evicts_the_least_recently_used_session() {
    let mut config = config();
    config.sessions.capacity = 2;
    let mut site = World::with_config(config);
    let mut first = Browser::new(1);
    let mut second = Browser::new(2);
    let mut third = Browser::new(3);
    assert_eq!(first.log_in(&mut site, FRED, FRED_PASSWORD).status, 303);
    site.advance(secs(1));
    assert_eq!(
        second.log_in(&mut site, BARNEY, BARNEY_PASSWORD).status,
        303
    );
    site.advance(secs(1));
    // The first is used again: the second is now the least recently used.
    assert!(first.get(&mut site, "/").is_forward());
    site.advance(secs(1));
    assert_eq!(third.log_in(&mut site, FRED, FRED_PASSWORD).status, 303);
    assert!(site
        .events()
        .contains(&ended(BARNEY, SessionEndReason::Evicted)));
    assert!(first.get(&mut site, "/").is_forward());
    assert!(!second.get(&mut site, "/").is_forward());
    assert!(third.get(&mut site, "/").is_forward());
    assert_eq!(site.logout_hooks(), 1);
}
