//! Random stories: logins good and bad, logouts, page requests, time
//! passing and users removed, in any order, against a model of which
//! sessions are live. No request reaches the site without a live session
//! or a public path; a session id never works after logout, expiry or
//! removal; ids never repeat; every ended session's hook runs once.

mod guard_support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use guard_support::*;
use portcullis_core::guard::GuardConfig;
use proptest::prelude::*;

const USERS: [(&str, &str); 2] = [(FRED, FRED_PASSWORD), (BARNEY, BARNEY_PASSWORD)];
const BROWSERS: usize = 3;
const IDLE: Duration = Duration::from_secs(30 * 60);
const ABSOLUTE: Duration = Duration::from_secs(12 * 3600);

#[derive(Clone, Debug)]
enum Op {
    LoginGood {
        browser: usize,
        user: usize,
    },
    LoginBad {
        browser: usize,
        user: usize,
    },
    Logout {
        browser: usize,
    },
    Protected {
        browser: usize,
    },
    Public {
        browser: usize,
    },
    Advance(Duration),
    RemoveUser(usize),
    /// The browser replays an id seen earlier (live or dead).
    Replay {
        browser: usize,
        pick: usize,
    },
    /// A script asks with HTTP Basic credentials, right or wrong.
    Basic {
        user: usize,
        good: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let browser = 0..BROWSERS;
    let user = 0..USERS.len();
    let step = prop::sample::select(vec![
        Duration::from_secs(1),
        Duration::from_secs(60),
        Duration::from_secs(20 * 60),
        IDLE - Duration::from_secs(1),
        IDLE,
        Duration::from_secs(3 * 3600),
    ]);
    prop_oneof![
        3 => (browser.clone(), user.clone()).prop_map(|(browser, user)| Op::LoginGood { browser, user }),
        2 => (browser.clone(), user.clone()).prop_map(|(browser, user)| Op::LoginBad { browser, user }),
        2 => browser.clone().prop_map(|browser| Op::Logout { browser }),
        4 => browser.clone().prop_map(|browser| Op::Protected { browser }),
        2 => browser.clone().prop_map(|browser| Op::Public { browser }),
        3 => step.prop_map(Op::Advance),
        1 => user.prop_map(Op::RemoveUser),
        2 => (browser, any::<usize>()).prop_map(|(browser, pick)| Op::Replay { browser, pick }),
        2 => (0..USERS.len(), any::<bool>()).prop_map(|(user, good)| Op::Basic { user, good }),
    ]
}

/// What the model knows of a session the guard issued.
#[derive(Debug)]
struct Known {
    user: usize,
    created: Instant,
    last_use: Instant,
    /// Ended by logout, a new login in the same browser, or removal.
    ended: bool,
}

impl Known {
    fn live(&self, now: Instant) -> bool {
        !self.ended && now < self.last_use + IDLE && now < self.created + ABSOLUTE
    }
}

struct Story {
    site: World,
    browsers: Vec<Browser>,
    known: BTreeMap<String, Known>,
    order: Vec<String>,
    /// Basic requests forwarded: each runs the realm's logout hook once.
    basic_forwards: usize,
}

impl Story {
    fn new(seed: u64) -> Story {
        let config = GuardConfig {
            public_paths: vec!["/static/".to_string()],
            basic_realm: Some("api".to_string()),
            ..GuardConfig::default()
        };
        Story {
            site: World::seeded(config, seed),
            browsers: (0..BROWSERS).map(|i| Browser::new(i as u8 + 1)).collect(),
            known: BTreeMap::new(),
            order: Vec::new(),
            basic_forwards: 0,
        }
    }

    fn cookie(&self, browser: usize) -> Option<String> {
        self.browsers[browser].session(&self.site)
    }

    /// The user whose live session the browser's cookie names, if any;
    /// the request about to be made uses it (its idle clock restarts).
    fn use_session(&mut self, browser: usize) -> Option<usize> {
        let now = self.site.now.mono;
        let cookie = self.cookie(browser)?;
        let known = self.known.get_mut(&cookie)?;
        if known.live(now) {
            known.last_use = now;
            Some(known.user)
        } else {
            None
        }
    }

    fn run(&mut self, op: &Op) -> Result<(), TestCaseError> {
        let now = self.site.now.mono;
        match *op {
            Op::LoginGood { browser, user } | Op::LoginBad { browser, user } => {
                let good = matches!(op, Op::LoginGood { .. });
                let (name, password) = USERS[user];
                let password = if good { password } else { "not the password" };
                let previous = self.cookie(browser);
                let b = &mut self.browsers[browser];
                let form = b.login_page(&mut self.site, None);
                let answer = b
                    .submit_login(&mut self.site, &form, name, password)
                    .reply();
                let issued = answer
                    .set_cookie(&self.site.session_cookie())
                    .map(|_| self.cookie(browser).expect("kept"));
                match answer.status {
                    303 if good => {
                        let id = issued.expect("a session cookie at login");
                        prop_assert!(!self.known.contains_key(&id), "an id repeated");
                        if let Some(known) = previous.and_then(|p| self.known.get_mut(&p)) {
                            known.ended = true;
                        }
                        self.known.insert(
                            id.clone(),
                            Known {
                                user,
                                created: now,
                                last_use: now,
                                ended: false,
                            },
                        );
                        self.order.push(id);
                    }
                    200 if !good => prop_assert!(issued.is_none()),
                    429 => prop_assert!(issued.is_none()),
                    status => prop_assert!(false, "login ({good}) answered {status}"),
                }
            }
            Op::Logout { browser } => {
                let live = self.use_session(browser);
                let b = &mut self.browsers[browser];
                let confirm = b.get(&mut self.site, "/__logout__").reply();
                match live {
                    Some(_) => {
                        prop_assert_eq!(confirm.status, 200);
                        let csrf = confirm.hidden("csrf");
                        let cookie = b.session(&self.site).expect("a cookie");
                        let done = b
                            .post_form(&mut self.site, "/__logout__", &[("csrf", &csrf)])
                            .reply();
                        prop_assert_eq!(done.status, 303);
                        prop_assert_eq!(b.session(&self.site), None);
                        self.known.get_mut(&cookie).expect("known").ended = true;
                    }
                    None => prop_assert_eq!(confirm.status, 303),
                }
            }
            Op::Protected { browser } => {
                let live = self.use_session(browser);
                let outcome = self.browsers[browser].get(&mut self.site, "/private/page");
                match (outcome, live) {
                    (Outcome::Forward(access), Some(user)) => {
                        prop_assert_eq!(access.user.as_deref(), Some(USERS[user].0));
                        prop_assert_eq!(access.path, "/private/page");
                    }
                    (Outcome::Forward(access), None) => {
                        prop_assert!(false, "forwarded without a live session: {:?}", access);
                    }
                    (Outcome::Reply(answer), Some(user)) => {
                        prop_assert!(
                            false,
                            "{}'s live session refused: {}",
                            USERS[user].0,
                            answer.status
                        );
                    }
                    (Outcome::Reply(answer), None) => prop_assert_eq!(answer.status, 303),
                }
            }
            Op::Public { browser } => {
                let live = self.use_session(browser);
                let access = match self.browsers[browser].get(&mut self.site, "/static/app.css") {
                    Outcome::Forward(access) => access,
                    Outcome::Reply(answer) => {
                        return Err(TestCaseError::fail(format!(
                            "public path refused: {}",
                            answer.status
                        )))
                    }
                };
                prop_assert_eq!(access.user.as_deref(), live.map(|u| USERS[u].0));
            }
            Op::Advance(d) => self.site.advance(d),
            Op::RemoveUser(user) => {
                self.site.guard.end_user_sessions(USERS[user].0);
                for known in self.known.values_mut().filter(|k| k.user == user) {
                    known.ended = true;
                }
            }
            Op::Basic { user, good } => {
                use base64::Engine as _;
                let (name, password) = USERS[user];
                let password = if good { password } else { "not the password" };
                let auth = format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(format!("{name}:{password}"))
                );
                let mut script = Browser::script(50);
                match script.get_with(&mut self.site, "/api", &[("Authorization", &auth)]) {
                    Outcome::Forward(access) => {
                        prop_assert!(good, "a wrong Basic password forwarded");
                        prop_assert_eq!(access.user.as_deref(), Some(name));
                        self.basic_forwards += 1;
                    }
                    Outcome::Reply(answer) if good => prop_assert_eq!(answer.status, 429),
                    Outcome::Reply(answer) => {
                        prop_assert!(answer.status == 401 || answer.status == 429)
                    }
                }
                prop_assert!(script.jar.is_empty(), "no cookie for a script");
            }
            Op::Replay { browser, pick } => {
                if !self.order.is_empty() {
                    let id = self.order[pick % self.order.len()].clone();
                    let name = self.site.session_cookie();
                    self.browsers[browser].jar.insert(name, id);
                }
            }
        }
        Ok(())
    }

    /// After the story: a sweep ends what expired; every session that is
    /// over had its hook run exactly once (and each forwarded Basic request
    /// its own), and the live ones remain.
    fn finish(&mut self) -> Result<(), TestCaseError> {
        // Past every deadline bar one nanosecond: nothing new expires
        // between the model's view and the guard's.
        let now = self.site.now;
        self.site.guard.sweep(now);
        let live = self.known.values().filter(|k| k.live(now.mono)).count();
        prop_assert_eq!(self.site.guard.session_count(), live);
        let ended = self.known.len() - live;
        prop_assert_eq!(self.site.logout_hooks(), ended + self.basic_forwards);
        let distinct: BTreeSet<&String> = self.order.iter().collect();
        prop_assert_eq!(distinct.len(), self.order.len());
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn random_stories_keep_the_guard_honest(
        seed in any::<u64>(),
        ops in prop::collection::vec(op(), 1..40),
    ) {
        let mut story = Story::new(seed);
        for op in &ops {
            story.run(op)?;
        }
        story.finish()?;
    }
}

/// Whether a `Location` can only lead to a path on this same origin.
fn same_origin_path(location: &str) -> bool {
    let bytes = location.as_bytes();
    bytes.first() == Some(&b'/')
        && !matches!(bytes.get(1), Some(b'/' | b'\\'))
        && bytes.iter().all(|&b| b > b' ' && b < 0x7f && b != b'\\')
}

fn tricky_return() -> impl Strategy<Value = String> {
    let piece = prop::sample::select(vec![
        "/",
        "//",
        "\\",
        ".",
        "..",
        "%2e",
        "%2f",
        "%2F",
        "%5c",
        "%0d%0a",
        "%00",
        "%09",
        "\r\n",
        "\t",
        " ",
        "?",
        "#",
        "&",
        "=",
        "@",
        ":",
        "http:",
        "https://",
        "evil.example",
        "javascript:",
        "a",
        "%",
        "%%",
        "\u{3002}",
        "\u{ff0f}",
        "é",
        "return_to=",
    ]);
    prop::collection::vec(piece, 0..8).prop_map(|pieces| pieces.concat())
}

fn tricky_path() -> impl Strategy<Value = String> {
    let piece = prop::sample::select(vec![
        "/",
        "//",
        "static",
        "favicon.ico",
        "admin",
        ".",
        "..",
        "%2e",
        "%2E",
        "%2e%2e",
        "%2f",
        ";",
        "\\",
        "%5c",
        "%00",
        "%25",
        "x",
    ]);
    prop::collection::vec(piece, 0..8).prop_map(|pieces| format!("/{}", pieces.concat()))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn no_return_to_leads_off_site(evil in tricky_return(), through_url in any::<bool>()) {
        let mut site = World::new();
        let mut fred = Browser::new(1);
        let answer = if through_url {
            let form = fred.login_page(&mut site, Some(&evil));
            prop_assert!(same_origin_path(&form.hidden("return_to")));
            fred.submit_login(&mut site, &form, FRED, FRED_PASSWORD).reply()
        } else {
            let form = fred.login_page(&mut site, None);
            let csrf = form.hidden("csrf");
            fred.post_form(
                &mut site,
                "/__login__",
                &[("username", FRED), ("password", FRED_PASSWORD), ("csrf", &csrf), ("return_to", &evil)],
            )
            .reply()
        };
        prop_assert_eq!(answer.status, 303);
        prop_assert!(same_origin_path(answer.location()), "{:?} -> {:?}", evil, answer.location());
    }

    #[test]
    fn anonymous_requests_reach_only_public_paths(path in tricky_path()) {
        let mut site = World::new();
        let mut visitor = Browser::new(1);
        match visitor.get(&mut site, &path) {
            Outcome::Forward(access) => {
                prop_assert_eq!(access.user, None);
                prop_assert!(
                    access.path == "/favicon.ico" || access.path.starts_with("/static/"),
                    "{:?} forwarded as {:?}", path, access.path
                );
                prop_assert!(!access.path.split('/').any(|segment| segment == ".." || segment == "."));
            }
            Outcome::Reply(answer) => prop_assert!(answer.status == 303 || answer.status == 400),
        }
    }
}
