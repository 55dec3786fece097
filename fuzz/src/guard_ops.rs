//! The `guard_ops` target: random sequences of what browsers and an admin do
//! (log in with a good or a bad password, log out, ask for protected and
//! public pages, let time pass, remove the user), run against the guard with
//! a model of which sessions are alive. Invariants:
//!
//! - no request reaches the site without a live session or a public path;
//! - a live session always gets its page (with its own user);
//! - a session cookie never works again after logout, expiry or removal;
//! - session ids never repeat.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant, SystemTime};

use portcullis_core::cred::{
    AvatarId, HashParams, InMemoryCheckerDontUse, LogoutHook, Portal, Realm,
};
use portcullis_core::guard::{Decision, Guard, GuardConfig, Reply};
use portcullis_core::random::TestRng;
use portcullis_core::session::SessionConfig;
use portcullis_core::{Connection, Event, Limits, Now, Request};

const USER: &str = "fred";
const PASSWORD: &str = "correct horse battery";
const IDLE: Duration = Duration::from_secs(30 * 60);
const ABSOLUTE: Duration = Duration::from_secs(12 * 60 * 60);
/// Operations per input: enough for interesting histories, cheap enough
/// for the fuzzer (argon2 runs with tiny parameters here).
const MAX_OPS: usize = 64;

struct Site;

impl Realm for Site {
    type Avatar = String;

    fn request_avatar(&mut self, id: &AvatarId) -> Option<(String, LogoutHook)> {
        match id {
            AvatarId::User(name) => Some((name.clone(), LogoutHook::noop())),
            AvatarId::Anonymous => None,
        }
    }
}

/// What the model knows of one session cookie.
#[derive(Clone, Copy, Debug)]
struct Session {
    created: Duration,
    last_use: Duration,
    ended: bool,
}

impl Session {
    fn alive(&self, now: Duration) -> bool {
        !self.ended && now < self.last_use + IDLE && now < self.created + ABSOLUTE
    }
}

/// One browser: its cookie jar.
#[derive(Default)]
struct Browser {
    jar: BTreeMap<String, String>,
}

struct World {
    guard: Guard<Site>,
    base: Instant,
    elapsed: Duration,
    browsers: [Browser; 2],
    /// Every session cookie value ever issued, and what the model says of it.
    sessions: BTreeMap<String, Session>,
    seen: BTreeSet<String>,
}

/// Runs the operations the input spells.
pub fn guard_ops(data: &[u8]) {
    let mut world = World::new();
    for &op in data.iter().take(MAX_OPS) {
        world.step(op);
    }
}

impl World {
    fn new() -> World {
        let mut rng = TestRng::seeded(99);
        let cheap = HashParams::new(8, 1, 1).expect("valid parameters");
        let mut users = InMemoryCheckerDontUse::new(cheap, &mut rng);
        users
            .add_user(USER, PASSWORD, &mut rng)
            .expect("valid user");
        let mut portal = Portal::new(Site);
        portal.register_checker(users);
        let config = GuardConfig {
            public_paths: vec!["/public/".to_string()],
            sessions: SessionConfig {
                idle_timeout: IDLE,
                absolute_timeout: ABSOLUTE,
                ..SessionConfig::default()
            },
            ..GuardConfig::default()
        };
        World {
            guard: Guard::new(config, portal, Box::new(rng)).expect("valid config"),
            // The one clock read: only differences from it matter.
            #[allow(clippy::disallowed_methods)]
            base: Instant::now(),
            elapsed: Duration::ZERO,
            browsers: [Browser::default(), Browser::default()],
            sessions: BTreeMap::new(),
            seen: BTreeSet::new(),
        }
    }

    fn now(&self) -> Now {
        Now::new(
            self.base + self.elapsed,
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000) + self.elapsed,
        )
    }

    fn step(&mut self, op: u8) {
        let b = usize::from(op & 1);
        match op >> 1 {
            0..=19 => self.login(b, true),
            20..=29 => self.login(b, false),
            30..=39 => self.logout(b),
            40..=79 => self.fetch(b, "/secret"),
            80..=89 => self.fetch(b, "/public/logo.png"),
            90..=109 => self.wait(Duration::from_secs(u64::from(op) * 37)),
            110..=113 => self.wait(IDLE),
            114..=115 => self.wait(ABSOLUTE),
            116..=119 => self.remove_user(),
            _ => self.replay_dead(b),
        }
    }

    fn wait(&mut self, d: Duration) {
        self.elapsed += d;
    }

    /// The session cookie the browser holds, if any.
    fn session_of(&self, b: usize) -> Option<String> {
        self.browsers[b].jar.get("__Host-portcullis").cloned()
    }

    /// The model's view of a request carrying the browser's cookie: a use.
    fn touch(&mut self, cookie: Option<&str>) -> bool {
        let now = self.elapsed;
        let Some(session) = cookie.and_then(|c| self.sessions.get_mut(c)) else {
            return false;
        };
        if session.alive(now) {
            session.last_use = now;
            true
        } else {
            session.ended = true;
            false
        }
    }

    fn fetch(&mut self, b: usize, path: &str) {
        let cookie = self.session_of(b);
        let alive = self.touch(cookie.as_deref());
        let outcome = self.send(b, "GET", path, None);
        match outcome {
            Decision::Forward(access) => {
                if access.user.is_some() {
                    assert!(alive, "a dead or missing session reached {path}");
                    assert_eq!(access.user.as_deref(), Some(USER));
                } else {
                    assert!(path.starts_with("/public/"), "anonymous reached {path}");
                    assert!(!alive, "a live session was forwarded as anonymous");
                }
            }
            other => {
                assert!(!alive, "a live session was refused {path}: {other:?}");
                assert!(!path.starts_with("/public/"), "a public path was refused");
            }
        }
    }

    fn login(&mut self, b: usize, good: bool) {
        let Decision::Respond(form) = self.send(b, "GET", "/__login__", None) else {
            panic!("the login form is a page");
        };
        let csrf = hidden(&form, "csrf");
        let password = if good { PASSWORD } else { "wrong password" };
        let body = format!(
            "username={USER}&password={}&csrf={csrf}",
            password.replace(' ', "+")
        );
        let previous = self.session_of(b);
        match self.send(b, "POST", "/__login__", Some(body.as_bytes())) {
            Decision::Respond(reply) if reply.head.status() == 303 => {
                assert!(good, "a wrong password logged in");
                let new = self.session_of(b).expect("a session cookie after login");
                assert!(
                    self.seen.insert(new.clone()),
                    "a session id was issued twice"
                );
                if let Some(old) = previous.filter(|old| *old != new) {
                    // Login rotates: the old id is ended.
                    if let Some(session) = self.sessions.get_mut(&old) {
                        session.ended = true;
                    }
                }
                let now = self.elapsed;
                self.sessions.insert(
                    new,
                    Session {
                        created: now,
                        last_use: now,
                        ended: false,
                    },
                );
            }
            Decision::Respond(reply) => {
                // Refused (bad password, or throttled after many): no new id.
                assert!(
                    !good || reply.head.status() == 429,
                    "a good password was refused: {}",
                    reply.head.status()
                );
                assert_eq!(
                    self.session_of(b),
                    previous,
                    "a refused login set a session"
                );
            }
            other => panic!("a login post decides to answer, not {other:?}"),
        }
    }

    fn logout(&mut self, b: usize) {
        let cookie = self.session_of(b);
        let alive = self.touch(cookie.as_deref());
        let Decision::Respond(page) = self.send(b, "GET", "/__logout__", None) else {
            panic!("the logout page is a page");
        };
        if !alive {
            assert_eq!(
                page.head.status(),
                303,
                "logout without a session goes to login"
            );
            return;
        }
        let csrf = hidden(&page, "csrf");
        let Decision::Respond(reply) = self.send(
            b,
            "POST",
            "/__logout__",
            Some(format!("csrf={csrf}").as_bytes()),
        ) else {
            panic!("logout answers");
        };
        assert_eq!(reply.head.status(), 303);
        if let Some(session) = cookie.and_then(|c| self.sessions.get_mut(&c)) {
            session.ended = true;
        }
    }

    fn remove_user(&mut self) {
        self.guard.end_user_sessions(USER);
        for session in self.sessions.values_mut() {
            session.ended = true;
        }
    }

    /// Puts an ended session's cookie back in the jar: it must not work.
    fn replay_dead(&mut self, b: usize) {
        let now = self.elapsed;
        let dead = self
            .sessions
            .iter()
            .find(|(_, s)| !s.alive(now))
            .map(|(cookie, _)| cookie.clone());
        if let Some(dead) = dead {
            self.browsers[b]
                .jar
                .insert("__Host-portcullis".to_string(), dead);
            self.fetch(b, "/secret");
        }
    }

    /// Sends one request from browser `b` through the guard, running any
    /// verification inline and reading bodies as asked, and keeps its cookies.
    fn send(
        &mut self,
        b: usize,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> Decision<String> {
        let request = parse(self.now(), &self.browsers[b], method, path, body);
        let client = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1 + b as u8));
        let now = self.now();
        let mut decision = self.guard.handle(now, &request, client, None);
        for round in 0.. {
            assert!(round < 4, "the guard keeps asking for more");
            decision = match decision {
                Decision::ReadBody { .. } => {
                    self.guard
                        .handle(now, &request, client, Some(body.unwrap_or_default()))
                }
                Decision::Verify(verification) => {
                    let verdict = verification.job.run();
                    self.guard.complete(now, verification.ticket, verdict)
                }
                done => done,
            };
            if !matches!(decision, Decision::ReadBody { .. } | Decision::Verify(_)) {
                break;
            }
        }
        if let Decision::Respond(reply) = &decision {
            self.keep_cookies(b, reply);
        }
        while self.guard.poll_event().is_some() {}
        decision
    }

    fn keep_cookies(&mut self, b: usize, reply: &Reply) {
        let cookies = reply
            .head
            .headers()
            .filter(|(name, _)| name.eq_ignore_ascii_case("set-cookie"))
            .map(|(_, value)| value.to_string())
            .collect::<Vec<_>>();
        for cookie in cookies {
            let pair = cookie.split(';').next().unwrap_or_default();
            let Some((name, value)) = pair.split_once('=') else {
                continue;
            };
            if value.is_empty() || cookie.contains("Max-Age=0") {
                self.browsers[b].jar.remove(name);
            } else {
                self.browsers[b]
                    .jar
                    .insert(name.to_string(), value.to_string());
            }
        }
    }
}

/// The value of the hidden input `name` on a guard page.
fn hidden(reply: &Reply, name: &str) -> String {
    let page = String::from_utf8_lossy(&reply.body);
    let marker = format!("name=\"{name}\"");
    let at = page
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} field"));
    let rest = &page[at..];
    let value = &rest[rest.find("value=\"").expect("a value") + 7..];
    value[..value.find('"').expect("a closing quote")].to_string()
}

/// Parses a request the way the server would: through a connection.
fn parse(now: Now, browser: &Browser, method: &str, path: &str, body: Option<&[u8]>) -> Request {
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: example.com\r\nAccept: text/html\r\nOrigin: https://example.com\r\n"
    );
    if !browser.jar.is_empty() {
        let cookies: Vec<String> = browser
            .jar
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect();
        head.push_str(&format!("Cookie: {}\r\n", cookies.join("; ")));
    }
    if let Some(body) = body {
        head.push_str(&format!(
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    head.push_str("\r\n");
    let mut conn = Connection::new(now, Limits::default());
    conn.receive(now, head.as_bytes());
    match conn.poll_event() {
        Some(Event::Request(request)) => request,
        other => panic!("the harness's request did not parse: {other:?}"),
    }
}
