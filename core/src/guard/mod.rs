//! The guard: Portcullis's session wrapper (twisted.web.guard's
//! SessionWrapper, Nevow's guard). For every request it decides one of
//! three things: serve a guard page, answer itself (redirect, 401, 403,
//! 413, 429), or pass the request to the site with the user's avatar.
//!
//! ## Driving it
//!
//! For each request the connection hands out, call [`Guard::handle`]:
//!
//! - [`Decision::Forward`]: serve the site for [`Access::path`] (the
//!   normalised path the decision was made on), as [`Access::user`].
//! - [`Decision::Respond`]: send the [`Reply`].
//! - [`Decision::ReadBody`]: read the request body (at most `limit + 1`
//!   bytes) and call `handle` again with it.
//! - [`Decision::Verify`]: run the [`VerifyJob`] off the event loop (a
//!   worker pool, or inline in tests) and give its verdict to
//!   [`Guard::complete`], which decides again.
//!
//! Then drain [`Guard::poll_event`] (log lines) and
//! [`Guard::poll_upgrade`] (bcrypt entries re-hashed at login, to write back
//! to the password file).
//!
//! Time comes in as [`Now`], randomness from the generator given to
//! [`Guard::new`]; the guard does no I/O.
//!
//! ## Plain HTTP
//!
//! [`GuardConfig::tls`] says whether *browsers* reach the site over
//! HTTPS, whoever terminates TLS: behind a TLS-terminating proxy, leave it
//! on. Off (browsers really speak plain HTTP), cookies lose the `__Host-`
//! prefix and `Secure` (browsers refuse both without TLS), guard pages send
//! no HSTS, and the same-origin check accepts `http://` origins as well as
//! `https://` ones. The session cookie then travels in clear: a password
//! and a session can be read by anyone on the path.

pub mod basic;
mod config;
mod cookies;
pub mod csrf;
mod events;
mod flows;
pub mod form;
pub mod pages;
pub mod paths;
mod reply;
pub mod throttle;

use core::net::IpAddr;
use std::collections::{BTreeMap, VecDeque};

use crate::cred::{
    AvatarId, LoginFailure, LoginOutcome, LogoutHook, PasswordUpgrade, Portal, Realm, Verdict,
    VerifyJob,
};
use crate::http::Request;
use crate::random::CryptoRng;
use crate::session::{EndReason, Ended, Lookup, SessionId, SessionStore};
use crate::time::Now;

use basic::{BasicCache, BasicCacheConfig};
use cookies::{set_cookie, single_cookie, Lifetime};
use csrf::CsrfKey;
use paths::{normalize_path, PublicPathError, PublicPaths};
use throttle::{Attempt, Recorded, Throttle};

pub use config::GuardConfig;
pub use events::{AuthEvent, LoginFailureReason, SessionEndReason};
pub use reply::Reply;

/// Where the login form lives.
pub const LOGIN_PATH: &str = "/__login__";
/// Where the logout form lives.
pub const LOGOUT_PATH: &str = "/__logout__";

/// What to do with a request.
#[derive(Debug)]
pub enum Decision<A> {
    /// Serve the site.
    Forward(Access<A>),
    /// Send this answer.
    Respond(Reply),
    /// Read the request body, at most `limit + 1` bytes (more than `limit`
    /// is refused with 413), and call [`Guard::handle`] again with it.
    ReadBody {
        /// The largest body the guard accepts.
        limit: usize,
    },
    /// Run the job off the event loop, then call [`Guard::complete`].
    Verify(Verification),
}

/// A request the site may serve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Access<A> {
    /// The logged-in user, or `None` on a public path.
    pub user: Option<String>,
    /// The realm's avatar for the user.
    pub avatar: Option<A>,
    /// The normalised path the decision was made on (decoded text; see
    /// [`paths::normalize_path`]). Serve this, not the raw target.
    pub path: String,
}

/// A password check in flight.
#[derive(Debug)]
pub struct Verification {
    /// Give it back to [`Guard::complete`] with the job's verdict.
    pub ticket: Ticket,
    /// The slow part: `job.run()` gives the verdict.
    pub job: VerifyJob,
}

/// Identifies a [`Verification`] in flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ticket(u64);

/// What a session holds: the realm's avatar and the logout hook.
struct SessionData<A> {
    avatar: A,
    logout: Option<LogoutHook>,
}

/// What a password check in flight was for.
enum Pending {
    /// A login form post.
    Form {
        username: String,
        return_to: String,
        /// The pre-login cookie, to render the form again after a failure.
        pre: String,
        client: IpAddr,
        attempt: Attempt,
        /// The session the browser had, ended once the new one exists
        /// (a login always rotates the id).
        previous: Option<SessionId>,
    },
    /// An HTTP Basic request, forwarded once verified.
    Basic {
        username: String,
        password: crate::cred::Password,
        client: IpAddr,
        attempt: Attempt,
        path: String,
    },
}

/// A check in flight: the job's id (its verdict must carry the same) and
/// when it started (checks never answered are dropped after
/// [`PENDING_TIMEOUT`]).
struct Parked {
    job: Option<crate::cred::JobId>,
    since: std::time::Instant,
    pending: Pending,
}

/// How long a password check may stay in flight. A verdict that never comes
/// back (a worker lost it) must not hold a slot for ever.
const PENDING_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

impl Pending {
    /// The username the check is for.
    fn username(&self) -> &str {
        match self {
            Pending::Form { username, .. } | Pending::Basic { username, .. } => username,
        }
    }
}

/// Most password checks in flight at once; more are answered 503 at once.
const MAX_PENDING: usize = 1024;

/// The session wrapper. See the module docs for how to drive it.
pub struct Guard<R: Realm> {
    config: GuardConfig,
    /// `config.session_cookie()`, looked up on every request.
    session_cookie: String,
    portal: Portal<R>,
    sessions: SessionStore<SessionData<R::Avatar>>,
    throttle: Throttle,
    csrf: CsrfKey,
    public: PublicPaths,
    basic_cache: BasicCache<()>,
    pending: BTreeMap<Ticket, Parked>,
    next_ticket: u64,
    events: VecDeque<AuthEvent>,
    upgrades: VecDeque<PasswordUpgrade>,
    rng: Box<dyn CryptoRng + Send>,
}

impl<R: Realm> Guard<R>
where
    R::Avatar: Clone,
{
    /// A guard in front of `portal`, with randomness from `rng` (the OS
    /// generator in a server; a seeded one in tests).
    pub fn new(
        config: GuardConfig,
        portal: Portal<R>,
        mut rng: Box<dyn CryptoRng + Send>,
    ) -> Result<Self, PublicPathError> {
        let public = PublicPaths::new(&config.public_paths)?;
        Ok(Guard {
            sessions: SessionStore::new(config.sessions.clone(), &mut *rng),
            throttle: Throttle::new(config.throttle.clone(), &mut *rng),
            csrf: CsrfKey::new(&mut *rng),
            basic_cache: BasicCache::new(BasicCacheConfig::default(), &mut *rng),
            public,
            session_cookie: config.session_cookie(),
            config,
            portal,
            pending: BTreeMap::new(),
            next_ticket: 0,
            events: VecDeque::new(),
            upgrades: VecDeque::new(),
            rng,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &GuardConfig {
        &self.config
    }

    /// The portal (to reach its checkers, e.g. to replace the password
    /// file after a reload; then call [`Guard::end_user_sessions`] for the
    /// users that were removed or changed).
    pub fn portal_mut(&mut self) -> &mut Portal<R> {
        &mut self.portal
    }

    /// How many sessions are live (or not yet swept).
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// The next log event, if any.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<AuthEvent> {
        self.events.pop_front()
    }

    /// The next password-file line to write back (a bcrypt entry re-hashed
    /// as argon2id at a successful login), if any.
    #[must_use]
    pub fn poll_upgrade(&mut self) -> Option<PasswordUpgrade> {
        self.upgrades.pop_front()
    }

    /// Ends every session of `user` and forgets their cached Basic
    /// credentials: "log out everywhere", or the user was removed or changed
    /// in the password file.
    pub fn end_user_sessions(&mut self, user: &str) {
        let ended = self.sessions.end_user(user, EndReason::UserEnded);
        self.finish_sessions(ended);
        self.basic_cache.invalidate_user(user);
    }

    /// Expires what is due (bounded work); called by `handle` too, and worth
    /// calling on a timer so idle sessions end (and their hooks run) even
    /// when no request comes.
    pub fn sweep(&mut self, now: Now) {
        let ended = self.sessions.sweep(now.mono);
        self.finish_sessions(ended);
        // Checks whose verdict never came back: their attempts count as
        // failures (the throttle charged them when they started). Tickets
        // rise with time, so the oldest are first: this runs on every
        // request and looks only at what it removes, plus one.
        while let Some(entry) = self.pending.first_entry() {
            if now.mono.saturating_duration_since(entry.get().since) < PENDING_TIMEOUT {
                break;
            }
            entry.remove();
        }
    }

    /// Decides what to do with `request` from `client`. `body` is `None`
    /// until the guard asked for it with [`Decision::ReadBody`].
    pub fn handle(
        &mut self,
        now: Now,
        request: &Request,
        client: IpAddr,
        body: Option<&[u8]>,
    ) -> Decision<R::Avatar> {
        self.sweep(now);
        let tls = self.config.tls;
        let Ok(path) = normalize_path(request.path()) else {
            // A path the site could read differently: never guessed at.
            return Decision::Respond(Reply::plain(400, tls));
        };
        match path.as_str() {
            LOGIN_PATH => return self.login(now, request, client, body),
            LOGOUT_PATH => return self.logout(now, request, client, body),
            _ => {}
        }
        if let Some((user, avatar)) = self.live_session(now, request) {
            return Decision::Forward(Access {
                user: Some(user),
                avatar: Some(avatar),
                path,
            });
        }
        if self.public.is_public(&path) {
            return Decision::Forward(Access {
                user: None,
                avatar: None,
                path,
            });
        }
        if self.config.basic_realm.is_some() && request.header("authorization").is_some() {
            return self.basic(now, request, client, path);
        }
        self.ask_to_log_in(request, &path)
    }

    /// The check behind `ticket` will not run (the server had no room to
    /// queue it): the attempt is taken back from the brute-force counters,
    /// since no password was tried, and the client is told to retry: 503
    /// with `Retry-After`.
    pub fn cancel(&mut self, now: Now, ticket: Ticket) -> Reply {
        if let Some(parked) = self.pending.remove(&ticket) {
            let attempt = match parked.pending {
                Pending::Form { attempt, .. } | Pending::Basic { attempt, .. } => attempt,
            };
            self.throttle.cancel(now.mono, attempt);
        }
        Reply::plain(503, self.config.tls).with("Retry-After", "1")
    }

    /// The CSRF token for a one-click logout form on the site's own pages
    /// (a hidden field named `csrf`, posted to [`LOGOUT_PATH`]), bound to
    /// the request's session cookie; `None` without one. Computed on
    /// demand so that serving pages that need none costs nothing.
    pub fn logout_form_token(&self, request: &Request) -> Option<String> {
        let cookie = single_cookie(request, &self.session_cookie)?;
        Some(
            self.csrf
                .token(cookie.as_bytes(), csrf::CsrfPurpose::Logout),
        )
    }

    /// Takes the verdict of the job behind `ticket` and decides the request
    /// that asked for it.
    pub fn complete(&mut self, now: Now, ticket: Ticket, verdict: Verdict) -> Decision<R::Avatar> {
        let tls = self.config.tls;
        let Some(Parked { job, pending, .. }) = self.pending.remove(&ticket) else {
            return Decision::Respond(Reply::plain(500, tls));
        };

        let outcome = if verdict.job_id() != job {
            // Results of two checks mixed up on the way back: this login
            // fails rather than take another visitor's verdict.
            LoginOutcome::Failed(LoginFailure::Unauthorized)
        } else {
            match self.portal.complete(verdict) {
                // A verdict about someone else than the ticket's login:
                // nobody logs in.
                LoginOutcome::LoggedIn(login)
                    if login.avatar_id != AvatarId::User(pending.username().to_string()) =>
                {
                    self.upgrades.extend(login.upgrade);
                    LoginOutcome::Failed(LoginFailure::Unauthorized)
                }
                outcome => outcome,
            }
        };
        match (pending, outcome) {
            (
                Pending::Form {
                    username,
                    return_to,
                    client,
                    attempt,
                    previous,
                    ..
                },
                LoginOutcome::LoggedIn(login),
            ) => {
                self.throttle.record_success(now.mono, attempt);
                if let Some(previous) = previous {
                    if let Some(ended) = self.sessions.end(&previous) {
                        self.finish_sessions(vec![ended]);
                    }
                }
                self.upgrades.extend(login.upgrade);
                let data = SessionData {
                    avatar: login.avatar,
                    logout: Some(login.logout),
                };
                let id = self.open_session(now, &username, data);
                self.events.push_back(AuthEvent::LoginSucceeded {
                    user: username.clone(),
                    client,
                });
                let device = self
                    .throttle
                    .issue_device_token(now.wall, &username, &mut *self.rng);
                let device_life = self.throttle.config().device_token_lifetime.as_secs();
                let config = &self.config;
                let reply = Reply::see_other(&return_to, tls)
                    .with(
                        "Set-Cookie",
                        set_cookie(
                            &config.session_cookie(),
                            &id.to_cookie(),
                            Lifetime::Browser,
                            "Lax",
                            tls,
                        ),
                    )
                    .with(
                        "Set-Cookie",
                        set_cookie(
                            &config.device_cookie(),
                            &device,
                            Lifetime::Seconds(device_life),
                            "Strict",
                            tls,
                        ),
                    )
                    .with(
                        "Set-Cookie",
                        set_cookie(&config.pre_login_cookie(), "", Lifetime::Delete, "Lax", tls),
                    );
                Decision::Respond(reply)
            }
            (
                Pending::Form {
                    username,
                    return_to,
                    pre,
                    client,
                    attempt,
                    ..
                },
                LoginOutcome::Failed(failure),
            ) => {
                let revoked =
                    self.throttle.record_failure(now.mono, attempt) == Recorded::DeviceRevoked;
                let reason = match failure {
                    LoginFailure::PasswordTooLong => LoginFailureReason::PasswordTooLong,
                    _ => LoginFailureReason::BadCredentials,
                };
                self.events.push_back(AuthEvent::LoginFailed {
                    user: Some(username.clone()),
                    client,
                    reason,
                });
                let mut reply = self.failed_login_page(&username, &return_to, &pre);
                if revoked {
                    reply = reply.with("Set-Cookie", self.clear_device_cookie());
                }
                Decision::Respond(reply)
            }
            (
                Pending::Basic {
                    username,
                    password,
                    client,
                    attempt,
                    path,
                },
                LoginOutcome::LoggedIn(login),
            ) => {
                self.throttle.record_success(now.mono, attempt);
                self.upgrades.extend(login.upgrade);
                // A Basic request has no session: its "session" is this one
                // request, so the realm's logout hook runs as it is handed on
                // (twisted.web.guard logs out when the request finishes).
                login.logout.logout();
                self.basic_cache.insert(now.mono, &username, &password, ());
                self.events.push_back(AuthEvent::BasicVerified {
                    user: username.clone(),
                    client,
                });
                Decision::Forward(Access {
                    user: Some(username),
                    avatar: Some(login.avatar),
                    path,
                })
            }
            (
                Pending::Basic {
                    username,
                    client,
                    attempt,
                    ..
                },
                LoginOutcome::Failed(_),
            ) => {
                let _ = self.throttle.record_failure(now.mono, attempt);
                self.events.push_back(AuthEvent::LoginFailed {
                    user: Some(username),
                    client,
                    reason: LoginFailureReason::BadCredentials,
                });
                Decision::Respond(self.basic_challenge())
            }
        }
    }

    /// Starts a session for `user`, whose identity the embedder verified
    /// itself (its single sign-on, a client certificate, a benchmark's
    /// synthetic users): no password is checked and the throttle is not
    /// consulted. The realm gives the avatar and logout hook, and the
    /// session is stored as a login's is, under the same timeouts,
    /// per-user cap and capacity policy (sessions removed to make room end
    /// as usual: their hooks run and [`AuthEvent::SessionEnded`] reports
    /// them). No [`AuthEvent::LoginSucceeded`] is queued: the embedder
    /// knows who and from where, and logs it.
    ///
    /// Returns the value for the session cookie, to be set by the embedder
    /// under the name [`GuardConfig::session_cookie`] with the attributes
    /// the guard uses (`Path=/; HttpOnly; SameSite=Lax`, and `Secure` when
    /// [`GuardConfig::tls`] is on), or `None` when the realm has no avatar
    /// for `user` (no session is made).
    #[must_use]
    pub fn start_session(&mut self, now: Now, user: &str) -> Option<String> {
        let id = AvatarId::User(user.to_string());
        let (avatar, logout) = self.portal.realm_mut().request_avatar(&id)?;
        let data = SessionData {
            avatar,
            logout: Some(logout),
        };
        Some(self.open_session(now, user, data).to_cookie())
    }

    // ----- sessions ---------------------------------------------------------

    /// Stores a new session for `user` (a login, or
    /// [`Guard::start_session`]) and ends what the store removed to make
    /// room for it; returns the new id.
    fn open_session(&mut self, now: Now, user: &str, data: SessionData<R::Avatar>) -> SessionId {
        let (id, evicted) = self.sessions.create(now.mono, user, data, &mut *self.rng);
        self.finish_sessions(evicted);
        id
    }

    /// The user and avatar of the request's session cookie, if it names a
    /// live session (a use: its idle deadline moves).
    fn live_session(&mut self, now: Now, request: &Request) -> Option<(String, R::Avatar)> {
        let id = self.session_id(request)?;
        match self.sessions.lookup(now.mono, &id) {
            Lookup::Live { user, payload } => Some((user.to_string(), payload.avatar.clone())),
            Lookup::Ended(ended) => {
                self.finish_sessions(vec![ended]);
                None
            }
            Lookup::Unknown => None,
        }
    }

    /// The session id the request's cookie carries, if well formed and sent
    /// exactly once.
    fn session_id(&self, request: &Request) -> Option<SessionId> {
        single_cookie(request, &self.session_cookie).and_then(SessionId::from_cookie)
    }

    /// Runs the logout hooks of ended sessions and reports them.
    fn finish_sessions(&mut self, ended: Vec<Ended<SessionData<R::Avatar>>>) {
        for Ended {
            user,
            mut payload,
            reason,
        } in ended
        {
            if let Some(hook) = payload.logout.take() {
                hook.logout();
            }
            let reason = match reason {
                EndReason::Logout => SessionEndReason::Logout,
                EndReason::Idle => SessionEndReason::Idle,
                EndReason::Absolute => SessionEndReason::Absolute,
                EndReason::Evicted => SessionEndReason::Evicted,
                EndReason::UserEnded => SessionEndReason::UserEnded,
            };
            self.events
                .push_back(AuthEvent::SessionEnded { user, reason });
        }
    }
}
