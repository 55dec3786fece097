//! The guard over a password file: a bcrypt entry from `htpasswd -B` is
//! upgraded at login, and a reload that removes or changes a user ends that
//! user's sessions.

mod guard_support;

use guard_support::*;
use portcullis_core::cred::{HashParams, PasswordFile, PasswordFileChecker};
use portcullis_core::guard::{AuthEvent, SessionEndReason};
use portcullis_core::random::TestRng;

/// Made by Apache's `htpasswd -niB -C 4`, password "correct horse".
const BOB_BCRYPT: &str = "$2y$04$7LIBjLcpqAxDINMp5RbZsOYCLFf5H/bmKLOYwazgMYydfq89YdDkO";

fn site_with_bob() -> World {
    let mut rng = TestRng::seeded(5);
    let file = PasswordFile::parse("users", format!("bob:{BOB_BCRYPT}\n").as_bytes())
        .expect("a valid file");
    let cheap = HashParams::new(8, 1, 1).expect("valid parameters");
    World::with_checker(config(), 1, PasswordFileChecker::new(file, cheap, &mut rng))
}

fn checker(site: &mut World) -> &mut PasswordFileChecker {
    site.guard
        .portal_mut()
        .checker_mut::<PasswordFileChecker>()
        .expect("the checker")
}

#[test]
fn a_bcrypt_entry_is_upgraded_at_login() {
    let mut site = site_with_bob();
    let mut bob = Browser::new(1);
    assert_eq!(bob.log_in(&mut site, "bob", "correct horse").status, 303);
    let upgrade = site.guard.poll_upgrade().expect("an upgrade to write");
    assert_eq!(upgrade.username, "bob");
    assert_eq!(upgrade.old.as_str(), BOB_BCRYPT);
    assert!(upgrade.new.as_str().starts_with("$argon2id$"));
    assert!(site.guard.poll_upgrade().is_none());
    // The server writes it back; the next login checks the new hash.
    let mut on_disk = PasswordFile::parse("users", format!("bob:{BOB_BCRYPT}\n").as_bytes())
        .expect("a valid file");
    assert!(upgrade.apply(&mut on_disk));
    let diff = checker(&mut site).replace_file(on_disk);
    assert!(diff.is_empty(), "{diff:?}");
    let mut laptop = Browser::new(2);
    assert_eq!(laptop.log_in(&mut site, "bob", "correct horse").status, 303);
    assert!(
        site.guard.poll_upgrade().is_none(),
        "nothing left to upgrade"
    );
}

#[test]
fn a_reload_that_changes_or_removes_a_user_ends_their_sessions() {
    let mut site = site_with_bob();
    let mut bob = Browser::new(1);
    assert_eq!(bob.log_in(&mut site, "bob", "correct horse").status, 303);
    site.events();
    // The administrator removes bob from the file; the server reloads it
    // and ends the sessions the diff names.
    let diff = checker(&mut site).replace_file(PasswordFile::new());
    let users: Vec<String> = diff.sessions_to_end().map(str::to_string).collect();
    assert_eq!(users, ["bob"]);
    for user in &users {
        site.guard.end_user_sessions(user);
    }
    assert_eq!(
        site.events(),
        vec![AuthEvent::SessionEnded {
            user: "bob".to_string(),
            reason: SessionEndReason::UserEnded,
        }]
    );
    assert_eq!(site.logout_hooks(), 1);
    assert!(!bob.get(&mut site, "/").is_forward());
    // And the password no longer works.
    let answer = bob.log_in(&mut site, "bob", "correct horse");
    assert_eq!(answer.status, 200);
    assert!(answer.set_cookie("__Host-portcullis").is_none());
    assert_eq!(site.guard.session_count(), 0);
}

#[test]
fn a_user_removed_while_the_password_is_checked_does_not_log_in() {
    let mut site = site_with_bob();
    let mut bob = Browser::new(1);
    let form = bob.login_page(&mut site, None);
    let body = urlencode(&[
        ("username", "bob"),
        ("password", "correct horse"),
        ("csrf", &form.hidden("csrf")),
    ]);
    let raw = bob.build(
        "POST",
        "/__login__",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        Some(body.as_bytes()),
    );
    let check = site.until_verification(bob.client, &raw);
    let _ = checker(&mut site).replace_file(PasswordFile::new());
    let verdict = check.job.run();
    assert!(verdict.is_match(), "the hash matched");
    let now = site.now;
    let _ = site.guard.complete(now, check.ticket, verdict);
    assert_eq!(site.guard.session_count(), 0);
    assert!(site.guard.poll_upgrade().is_none());
}
