//! Portal and checker stories, after Twisted's `test_cred.py`: a realm of
//! web pages, a password file, anonymous visitors, and jobs run inline
//! where the server would use a worker.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::*;
use crate::random::TestRng;

/// Cheap argon2id parameters: the stories are about the portal's logic,
/// which is the same whatever the cost.
fn cheap() -> HashParams {
    HashParams::new(8, 1, 1).unwrap()
}

/// The realm of the seed recipe: the login page for anonymous visitors,
/// the site for users; counts logouts.
#[derive(Default)]
struct Site {
    logouts: Arc<AtomicUsize>,
    /// Users the realm knows nothing about (to refuse an avatar).
    banned: Vec<String>,
}

impl Realm for Site {
    type Avatar = String;

    fn request_avatar(&mut self, avatar_id: &AvatarId) -> Option<(String, LogoutHook)> {
        let logouts = Arc::clone(&self.logouts);
        let hook = LogoutHook::new(move || {
            logouts.fetch_add(1, Ordering::SeqCst);
        });
        match avatar_id {
            AvatarId::Anonymous => Some(("login page".into(), hook)),
            AvatarId::User(name) if self.banned.contains(name) => None,
            AvatarId::User(name) => Some((format!("site for {name}"), hook)),
        }
    }
}

const BOB_BCRYPT: &str = "$2y$04$7LIBjLcpqAxDINMp5RbZsOYCLFf5H/bmKLOYwazgMYydfq89YdDkO";

/// A password file with alice (argon2id, "wonderland"), bob (bcrypt from
/// htpasswd, "correct horse") and a comment.
fn users_file(rng: &mut TestRng) -> PasswordFile {
    let alice = hash_password(b"wonderland", cheap(), rng).unwrap();
    let text = format!("# staff\nalice:{}\nbob:{BOB_BCRYPT}\n", alice.as_str());
    PasswordFile::parse("users.passwd", text.as_bytes()).unwrap()
}

fn portal_with_file(rng: &mut TestRng) -> Portal<Site> {
    let mut portal = Portal::new(Site::default());
    let file = users_file(rng);
    portal.register_checker(PasswordFileChecker::new(file, cheap(), rng));
    portal
}

/// Logs in with a password, running the job inline.
fn log_in(
    portal: &mut Portal<Site>,
    user: &str,
    password: &str,
    rng: &mut TestRng,
) -> LoginOutcome<String> {
    match portal.login(Credentials::username_password(user, password), rng) {
        Login::Done(outcome) => outcome,
        Login::Verify(job) => portal.complete(job.run()),
    }
}

fn failure(outcome: LoginOutcome<String>) -> LoginFailure {
    match outcome {
        LoginOutcome::Failed(failure) => failure,
        LoginOutcome::LoggedIn(login) => panic!("expected a refusal, got {login:?}"),
    }
}

fn logged_in(outcome: LoginOutcome<String>) -> LoggedIn<String> {
    match outcome {
        LoginOutcome::LoggedIn(login) => login,
        LoginOutcome::Failed(failure) => panic!("expected a login, got {failure}"),
    }
}

#[test]
fn the_portal_lists_the_kinds_its_checkers_handle() {
    let mut rng = TestRng::seeded(1);
    let mut portal = Portal::new(Site::default());
    assert!(portal.credential_kinds().is_empty());
    portal.register_checker(AllowAnonymous);
    assert_eq!(portal.credential_kinds(), [CredentialKind::Anonymous]);
    portal.register_checker(PasswordFileChecker::new(
        PasswordFile::new(),
        cheap(),
        &mut rng,
    ));
    assert_eq!(
        portal.credential_kinds(),
        [CredentialKind::UsernamePassword, CredentialKind::Anonymous]
    );
}

#[test]
fn a_good_password_gives_the_users_avatar_and_a_logout_hook_called_once() {
    let mut rng = TestRng::seeded(2);
    let mut portal = portal_with_file(&mut rng);
    let logouts = Arc::clone(&portal.realm().logouts);

    // A password is never checked inside login: it comes back as a job.
    let job = match portal.login(
        Credentials::username_password("alice", "wonderland"),
        &mut rng,
    ) {
        Login::Verify(job) => job,
        Login::Done(outcome) => panic!("the portal decided without hashing: {outcome:?}"),
    };
    let login = logged_in(portal.complete(job.run()));
    assert_eq!(login.avatar_id, AvatarId::User("alice".into()));
    assert_eq!(login.avatar, "site for alice");
    assert!(login.upgrade.is_none(), "argon2id needs no upgrade");

    assert_eq!(
        logouts.load(Ordering::SeqCst),
        0,
        "logging in does not log out"
    );
    login.logout.logout(); // consumed: a second call does not compile
    assert_eq!(logouts.load(Ordering::SeqCst), 1);
}

#[test]
fn a_wrong_password_is_unauthorized() {
    let mut rng = TestRng::seeded(3);
    let mut portal = portal_with_file(&mut rng);
    for wrong in ["Wonderland", "wonderland ", " wonderland", "", "wonder"] {
        assert_eq!(
            failure(log_in(&mut portal, "alice", wrong, &mut rng)),
            LoginFailure::Unauthorized
        );
    }
}

#[test]
fn an_unknown_user_is_unauthorized_after_the_same_work_as_a_known_one() {
    let mut rng = TestRng::seeded(4);
    let mut portal = portal_with_file(&mut rng);
    let job_for = |portal: &mut Portal<Site>, user: &str, rng: &mut TestRng| match portal
        .login(Credentials::username_password(user, "wonderland"), rng)
    {
        Login::Verify(job) => job,
        Login::Done(outcome) => panic!("{user}: decided without a job: {outcome:?}"),
    };
    // Both jobs check against an argon2id hash with the same parameters, so
    // they cost the same; the answer is the same too.
    let known = job_for(&mut portal, "alice", &mut rng);
    let unknown = job_for(&mut portal, "mallory", &mut rng);
    let scheme = |job: &VerifyJob| {
        let shown = format!("{job:?}");
        shown[shown.find("against").unwrap()..].to_owned()
    };
    assert_eq!(scheme(&unknown), scheme(&known));
    assert_eq!(
        failure(portal.complete(unknown.run())),
        LoginFailure::Unauthorized
    );
    // Even the password of another user does not open an unknown name.
    assert_eq!(
        failure(log_in(&mut portal, "Alice", "wonderland", &mut rng)),
        LoginFailure::Unauthorized
    );
}

#[test]
fn anonymous_visitors_get_the_login_page_when_allowed() {
    let mut rng = TestRng::seeded(5);
    let mut portal = portal_with_file(&mut rng);
    portal.register_checker(AllowAnonymous);
    let Login::Done(outcome) = portal.login(Credentials::Anonymous, &mut rng) else {
        panic!("anonymous access needs no job");
    };
    let login = logged_in(outcome);
    assert_eq!(login.avatar_id, AvatarId::Anonymous);
    assert_eq!(login.avatar, "login page");
}

#[test]
fn anonymous_credentials_are_unhandled_when_not_allowed() {
    let mut rng = TestRng::seeded(6);
    let mut portal = portal_with_file(&mut rng);
    let Login::Done(outcome) = portal.login(Credentials::Anonymous, &mut rng) else {
        panic!("an unhandled kind needs no job");
    };
    assert_eq!(
        failure(outcome),
        LoginFailure::UnhandledCredentials(CredentialKind::Anonymous)
    );
    assert_eq!(
        LoginFailure::UnhandledCredentials(CredentialKind::Anonymous).to_string(),
        "unhandled credentials: no checker for anonymous credentials"
    );
}

#[test]
fn passwords_are_unhandled_by_a_portal_without_a_password_checker() {
    let mut rng = TestRng::seeded(7);
    let mut portal = Portal::new(Site::default());
    portal.register_checker(AllowAnonymous);
    assert_eq!(
        failure(log_in(&mut portal, "alice", "wonderland", &mut rng)),
        LoginFailure::UnhandledCredentials(CredentialKind::UsernamePassword)
    );
}

#[test]
fn a_password_over_1_kib_is_refused_without_a_job() {
    let mut rng = TestRng::seeded(8);
    let mut portal = portal_with_file(&mut rng);
    let long = "a".repeat(MAX_PASSWORD_BYTES + 1);
    match portal.login(Credentials::username_password("alice", long), &mut rng) {
        Login::Done(LoginOutcome::Failed(LoginFailure::PasswordTooLong)) => {}
        other => panic!("expected an immediate refusal, got {other:?}"),
    }
    // The limit itself is allowed (and merely wrong here).
    let at_limit = "a".repeat(MAX_PASSWORD_BYTES);
    assert_eq!(
        failure(log_in(&mut portal, "alice", &at_limit, &mut rng)),
        LoginFailure::Unauthorized
    );
}

#[test]
fn a_realm_without_an_avatar_for_the_user_refuses_the_login() {
    let mut rng = TestRng::seeded(9);
    let mut portal = portal_with_file(&mut rng);
    portal.realm_mut().banned.push("alice".into());
    assert_eq!(
        failure(log_in(&mut portal, "alice", "wonderland", &mut rng)),
        LoginFailure::NoAvatar
    );
}

#[test]
fn a_user_removed_while_the_job_ran_is_not_let_in() {
    let mut rng = TestRng::seeded(10);
    let mut portal = portal_with_file(&mut rng);
    let Login::Verify(job) = portal.login(
        Credentials::username_password("alice", "wonderland"),
        &mut rng,
    ) else {
        panic!("expected a job");
    };
    // The file is reloaded without alice while her job is on a worker.
    let checker = portal.checker_mut::<PasswordFileChecker>().unwrap();
    let mut without_alice = checker.file().clone();
    without_alice.remove("alice").unwrap();
    let diff = checker.replace_file(without_alice);
    assert_eq!(diff.sessions_to_end().collect::<Vec<_>>(), ["alice"]);

    let verdict = job.run();
    assert!(
        verdict.is_match(),
        "the password was right when it was checked"
    );
    assert_eq!(
        failure(portal.complete(verdict)),
        LoginFailure::Unauthorized
    );
}

#[test]
fn a_password_changed_while_the_job_ran_is_not_let_in() {
    let mut rng = TestRng::seeded(11);
    let mut portal = portal_with_file(&mut rng);
    let Login::Verify(job) = portal.login(
        Credentials::username_password("alice", "wonderland"),
        &mut rng,
    ) else {
        panic!("expected a job");
    };
    let new_hash = hash_password(b"looking-glass", cheap(), &mut rng).unwrap();
    let checker = portal.checker_mut::<PasswordFileChecker>().unwrap();
    let mut changed = checker.file().clone();
    changed.set("alice", new_hash).unwrap();
    let diff = checker.replace_file(changed);
    assert_eq!(diff.changed.iter().collect::<Vec<_>>(), ["alice"]);

    assert_eq!(
        failure(portal.complete(job.run())),
        LoginFailure::Unauthorized
    );
    logged_in(log_in(&mut portal, "alice", "looking-glass", &mut rng));
}

#[test]
fn a_bcrypt_user_is_upgraded_to_argon2id_at_the_first_good_login() {
    let mut rng = TestRng::seeded(12);
    let mut portal = portal_with_file(&mut rng);
    // What the adapter read from disk.
    let mut on_disk = users_file(&mut TestRng::seeded(12));
    let before = on_disk.to_bytes();

    assert_eq!(
        failure(log_in(&mut portal, "bob", "wrong horse", &mut rng)),
        LoginFailure::Unauthorized
    );
    let login = logged_in(log_in(&mut portal, "bob", "correct horse", &mut rng));
    let upgrade = login
        .upgrade
        .expect("a bcrypt login emits the argon2id line");
    assert_eq!(upgrade.username, "bob");
    assert_eq!(upgrade.old.as_str(), BOB_BCRYPT);
    assert!(upgrade
        .new
        .as_str()
        .starts_with("$argon2id$v=19$m=8,t=1,p=1$"));

    // The adapter applies it to the file it read and saves it: only bob's
    // line changes.
    assert!(upgrade.apply(&mut on_disk));
    let after = on_disk.to_bytes();
    let changed: Vec<_> = before
        .split(|&b| b == b'\n')
        .zip(after.split(|&b| b == b'\n'))
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(changed.len(), 1);
    assert!(changed[0].0.starts_with(b"bob:$2y$"));
    assert!(changed[0].1.starts_with(b"bob:$argon2id$"));
    // Applying it twice (or to a file already changed) does nothing.
    assert!(!upgrade.apply(&mut on_disk));

    // The checker already uses the new hash, so re-reading the written file
    // ends nobody's session, and bob's next login needs no upgrade.
    let reloaded = PasswordFile::parse("users.passwd", &after).unwrap();
    let diff = portal
        .checker_mut::<PasswordFileChecker>()
        .unwrap()
        .replace_file(reloaded);
    assert!(diff.is_empty(), "{diff:?}");
    let again = logged_in(log_in(&mut portal, "bob", "correct horse", &mut rng));
    assert!(again.upgrade.is_none());
}

#[test]
fn a_verdict_from_another_portal_is_refused() {
    let mut rng = TestRng::seeded(13);
    let mut theirs = portal_with_file(&mut rng);
    let Login::Verify(job) = theirs.login(
        Credentials::username_password("alice", "wonderland"),
        &mut rng,
    ) else {
        panic!("expected a job");
    };
    let verdict = job.run();
    assert!(verdict.is_match());

    // Ours has a different checker where theirs had the password file.
    let mut ours = Portal::new(Site::default());
    ours.register_checker(AllowAnonymous);
    assert_eq!(failure(ours.complete(verdict)), LoginFailure::Unauthorized);
}

#[test]
fn a_job_that_did_not_come_from_the_portal_cannot_log_anyone_in() {
    let mut rng = TestRng::seeded(16);
    let mut portal = portal_with_file(&mut rng);
    // A caller makes its own job against alice's real hash: it matches,
    // but the portal did not issue it.
    let alice = portal
        .checker::<PasswordFileChecker>()
        .unwrap()
        .file()
        .get("alice")
        .unwrap()
        .clone();
    let verdict = VerifyJob::new("alice", alice, "wonderland".into(), cheap(), &mut rng).run();
    assert!(verdict.is_match());
    assert_eq!(
        failure(portal.complete(verdict)),
        LoginFailure::Unauthorized
    );
}

#[test]
fn the_in_memory_checker_stores_hashes_and_checks_like_the_file() {
    let mut rng = TestRng::seeded(14);
    let mut users = InMemoryCheckerDontUse::new(cheap(), &mut rng);
    users.add_user("fred", "flintstone", &mut rng).unwrap();
    assert_eq!(
        users.add_user("fred", "again", &mut rng),
        Err(AddUserError::Edit(EditError::UserExists("fred".into())))
    );
    assert!(
        !format!("{users:?}").contains("flintstone"),
        "no plain text kept"
    );

    let mut portal = Portal::new(Site::default());
    portal.register_checker(users);
    assert_eq!(
        logged_in(log_in(&mut portal, "fred", "flintstone", &mut rng)).avatar,
        "site for fred"
    );
    assert_eq!(
        failure(log_in(&mut portal, "fred", "Flintstone", &mut rng)),
        LoginFailure::Unauthorized
    );
    assert_eq!(
        failure(log_in(&mut portal, "barney", "flintstone", &mut rng)),
        LoginFailure::Unauthorized
    );
}

#[test]
fn a_later_checker_takes_its_kinds_over() {
    let mut rng = TestRng::seeded(15);
    let mut portal = portal_with_file(&mut rng);
    let mut others = InMemoryCheckerDontUse::new(cheap(), &mut rng);
    others.add_user("carol", "carol-pass", &mut rng).unwrap();
    portal.register_checker(others);
    logged_in(log_in(&mut portal, "carol", "carol-pass", &mut rng));
    assert_eq!(
        failure(log_in(&mut portal, "alice", "wonderland", &mut rng)),
        LoginFailure::Unauthorized
    );
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Any Unicode password hashes and verifies; any other fails.
        #[test]
        fn hash_then_verify_matches_only_the_same_password(
            password in any::<String>(),
            other in any::<String>(),
            seed in any::<u64>(),
        ) {
            prop_assume!(password != other);
            let mut rng = TestRng::seeded(seed);
            let hash = hash_password(password.as_bytes(), cheap(), &mut rng).unwrap();
            let check = |pw: &str, rng: &mut TestRng| {
                VerifyJob::new("u", hash.clone(), pw.into(), cheap(), rng).run().is_match()
            };
            prop_assert!(check(&password, &mut rng));
            prop_assert!(!check(&other, &mut rng));
        }

        /// Through the portal: a user logs in with their password and with
        /// nothing else, whatever the names and passwords.
        #[test]
        fn the_portal_lets_in_exactly_the_right_password(
            user in "[^:\\p{C}\\s][^:\\p{C}]{0,10}[^:\\p{C}\\s]",
            password in any::<String>(),
            guess in any::<String>(),
            seed in any::<u64>(),
        ) {
            let mut rng = TestRng::seeded(seed);
            let mut users = InMemoryCheckerDontUse::new(cheap(), &mut rng);
            prop_assume!(users.add_user(&user, password.as_str(), &mut rng).is_ok());
            let mut portal = Portal::new(Site::default());
            portal.register_checker(users);
            let good = log_in(&mut portal, &user, &password, &mut rng);
            prop_assert!(matches!(good, LoginOutcome::LoggedIn(_)));
            let outcome = log_in(&mut portal, &user, &guess, &mut rng);
            prop_assert_eq!(matches!(outcome, LoginOutcome::LoggedIn(_)), guess == password);
        }
    }
}
