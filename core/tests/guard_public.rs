//! Public paths: anonymous visitors may fetch `/favicon.ico` and
//! `/static/`, decided on the normalised path the site will see, so no path
//! trick crosses from a public path into a protected one.

mod guard_support;

use guard_support::*;

#[test]
fn anonymous_visitors_get_the_public_paths() {
    let mut site = World::new();
    let mut visitor = Browser::new(1);
    for (target, path) in [
        ("/favicon.ico", "/favicon.ico"),
        ("/static/app.css", "/static/app.css"),
        ("/static/img/logo.png?v=3", "/static/img/logo.png"),
        ("/st%61tic/app.js", "/static/app.js"),
        ("/static/a/../b.js", "/static/b.js"),
    ] {
        let access = visitor.get(&mut site, target).forwarded();
        assert_eq!(access.user, None, "{target}");
        assert_eq!(access.avatar, None, "{target}");
        assert_eq!(access.path, path, "{target}");
    }
    assert_eq!(site.guard.session_count(), 0);
    assert!(visitor.jar.is_empty(), "no cookie for a public file");
}

#[test]
fn near_misses_are_protected() {
    let mut site = World::new();
    let mut visitor = Browser::new(1);
    for target in [
        "/favicon.ico/x",
        "/favicon.icox",
        "/static",
        "/staticx/app.js",
        "/Static/app.js",
        "/",
    ] {
        let answer = visitor.get(&mut site, target).reply();
        assert_eq!(answer.status, 303, "{target}");
    }
}

#[test]
fn path_tricks_never_reach_a_protected_path_anonymously() {
    let mut site = World::new();
    let mut visitor = Browser::new(1);
    for target in [
        "/static/../admin",
        "/static/%2e%2e/admin",
        "/static/%2E%2E/admin",
        "/static/.%2e/admin",
        "/static/..%2fadmin",
        "/static/..%2Fadmin",
        "/static//../admin",
        "/static;/../admin",
        "/static/..;/admin",
        "/static/..\\admin",
        "/static/%5c../admin",
        "/static/%00/../../admin",
        "/static/../../admin",
        "/static/%252e%252e/admin",
        "/static/.../admin",
        "/favicon.ico/../admin",
        "http://example.com/static/../admin",
    ] {
        let outcome = visitor.get(&mut site, target);
        match outcome {
            Outcome::Forward(access) => panic!("{target} forwarded anonymously: {access:?}"),
            Outcome::Reply(answer) => {
                assert!(
                    answer.status == 303 || answer.status == 400,
                    "{target}: {}",
                    answer.status
                );
                if answer.status == 303 {
                    let back = return_to_of(answer.location());
                    assert!(!back.starts_with("/static/"), "{target} -> {back}");
                }
            }
        }
    }
    assert_eq!(site.guard.session_count(), 0);
}

#[test]
fn a_logged_in_user_is_named_on_public_paths_too() {
    let mut site = World::new();
    let mut fred = Browser::new(1);
    assert_eq!(fred.log_in(&mut site, FRED, FRED_PASSWORD).status, 303);
    let access = fred.get(&mut site, "/static/app.css").forwarded();
    assert_eq!(access.user.as_deref(), Some(FRED));
}
