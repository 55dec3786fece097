//! The guard's own pages and posts: the login form and its post, the
//! logout confirmation and its post, HTTP Basic, and the answer to an
//! anonymous visitor on a protected page.

use core::net::IpAddr;

use percent_encoding::{percent_decode_str, utf8_percent_encode, NON_ALPHANUMERIC};

use crate::cred::{Credentials, Login, LoginFailure, LoginOutcome, Realm, VerifyJob};
use crate::http::{Request, RequestBody};
use crate::time::Now;

use super::basic::{parse_authorization, www_authenticate};
use super::cookies::{set_cookie, single_cookie, Lifetime};
use super::csrf::{is_pre_login_value, new_pre_login_value, CsrfPurpose};
use super::form::{is_urlencoded, FormError, LoginForm, LogoutForm};
use super::pages::{login_page, logout_page, LoginPageParams, LogoutPageParams};
use super::paths::safe_return_path;
use super::throttle::TrustedDevice;
use super::{
    Access, AuthEvent, Decision, Guard, LoginFailureReason, Parked, Pending, Reply, Ticket,
    Verification, LOGIN_PATH, LOGOUT_PATH, MAX_PENDING,
};

/// The one message for a refused login: never which of user or password.
const BAD_CREDENTIALS: &str = "Wrong username or password.";
/// Shown when the form's CSRF token or pre-login cookie did not match.
const FORM_EXPIRED: &str = "This form expired. Please sign in again.";

impl<R: Realm> Guard<R>
where
    R::Avatar: Clone,
{
    /// `/__login__`: the form (GET, HEAD) and its post.
    pub(super) fn login(
        &mut self,
        now: Now,
        request: &Request,
        client: IpAddr,
        body: Option<&[u8]>,
    ) -> Decision<R::Avatar> {
        let tls = self.config.tls;
        match request.method() {
            "GET" | "HEAD" => {
                let return_to = query_param(request, "return_to")
                    .map(|raw| self.return_path(&raw))
                    .unwrap_or_else(|| "/".to_string());
                Decision::Respond(self.login_form(request, &return_to, "", None, 200))
            }
            "POST" => self.login_post(now, request, client, body),
            _ => Decision::Respond(Reply::plain(405, tls).with("Allow", "GET, HEAD, POST")),
        }
    }

    fn login_post(
        &mut self,
        now: Now,
        request: &Request,
        client: IpAddr,
        body: Option<&[u8]>,
    ) -> Decision<R::Avatar> {
        let tls = self.config.tls;
        // Credentials are never taken from a query string (they would sit
        // in logs and histories): a post that carries them there is refused.
        if query_param(request, "password").is_some() || query_param(request, "username").is_some()
        {
            self.login_failed(None, client, LoginFailureReason::BadForm);
            return Decision::Respond(Reply::plain(400, tls));
        }
        if !self.same_origin(request) {
            self.login_failed(None, client, LoginFailureReason::CrossSite);
            return Decision::Respond(Reply::plain(403, tls));
        }
        let body = match self.form_body(request, body) {
            Ok(body) => body,
            Err(not_yet) => return self.not_yet(not_yet),
        };
        let form = match LoginForm::parse(body) {
            Ok(form) => form,
            // No token at all is a CSRF failure like a wrong one (a forged
            // cross-site form has the credentials but cannot have it).
            Err(FormError::Missing("csrf")) => {
                self.login_failed(None, client, LoginFailureReason::Csrf);
                let reply = self.login_form(request, "/", "", Some(FORM_EXPIRED), 403);
                return Decision::Respond(reply);
            }
            Err(_) => {
                self.login_failed(None, client, LoginFailureReason::BadForm);
                let reply = self.login_form(
                    request,
                    "/",
                    "",
                    Some("Enter a username and a password."),
                    400,
                );
                return Decision::Respond(reply);
            }
        };
        let return_to = self.return_path(form.return_to.as_deref().unwrap_or("/"));
        let pre_name = self.config.pre_login_cookie();
        let pre = single_cookie(request, &pre_name)
            .filter(|v| is_pre_login_value(v))
            .filter(|pre| {
                self.csrf
                    .verify(&form.csrf, pre.as_bytes(), CsrfPurpose::Login)
            });
        let Some(pre) = pre.map(str::to_string) else {
            self.login_failed(Some(&form.username), client, LoginFailureReason::Csrf);
            let reply =
                self.login_form(request, &return_to, &form.username, Some(FORM_EXPIRED), 403);
            return Decision::Respond(reply);
        };
        if self.pending.len() >= MAX_PENDING {
            return Decision::Respond(Reply::plain(503, tls).with("Retry-After", "1"));
        }
        let device = self.trusted_device(now, request, &form.username);
        let attempt = match self
            .throttle
            .check(now.mono, &form.username, client, device.as_ref())
        {
            Ok(attempt) => attempt,
            Err(throttled) => {
                let wait = throttled.retry_after_secs();
                self.events.push_back(AuthEvent::Throttled {
                    user: form.username.clone(),
                    client,
                    retry_after: throttled.retry_after(),
                });
                let message = format!("Too many attempts. Try again in {wait} seconds.");
                let reply = self
                    .login_form(request, &return_to, &form.username, Some(&message), 429)
                    .with("Retry-After", wait.to_string());
                return Decision::Respond(reply);
            }
        };
        let previous = self.session_id(request);
        let username = form.username.clone();
        let credentials = Credentials::username_password(form.username, form.password);
        match self.portal.login(credentials, &mut *self.rng) {
            Login::Verify(job) => {
                let pending = Pending::Form {
                    username,
                    return_to,
                    pre,
                    client,
                    attempt,
                    previous,
                };
                self.park(now, job, pending)
            }
            // Refused before any hashing (an over-long password): answered
            // like any other failure.
            Login::Done(outcome) => {
                let failure = match outcome {
                    LoginOutcome::Failed(failure) => failure,
                    LoginOutcome::LoggedIn(_) => LoginFailure::Unauthorized,
                };
                let _ = self.throttle.record_failure(now.mono, attempt);
                let reason = match failure {
                    LoginFailure::PasswordTooLong => LoginFailureReason::PasswordTooLong,
                    _ => LoginFailureReason::BadCredentials,
                };
                self.login_failed(Some(&username), client, reason);
                Decision::Respond(self.failed_login_page(&username, &return_to, &pre))
            }
        }
    }

    /// `/__logout__`: the confirmation (GET, HEAD) and its post.
    pub(super) fn logout(
        &mut self,
        now: Now,
        request: &Request,
        client: IpAddr,
        body: Option<&[u8]>,
    ) -> Decision<R::Avatar> {
        let tls = self.config.tls;
        let session_cookie = self.config.session_cookie();
        let cookie = single_cookie(request, &session_cookie).map(str::to_string);
        let user = self.live_session(now, request).map(|(user, _)| user);
        match request.method() {
            "GET" | "HEAD" => {
                let (Some(cookie), Some(user)) = (cookie, user) else {
                    return Decision::Respond(Reply::see_other(LOGIN_PATH, tls));
                };
                let csrf = self.csrf.token(cookie.as_bytes(), CsrfPurpose::Logout);
                let html = logout_page(&LogoutPageParams {
                    site_name: &self.config.site_name,
                    action: LOGOUT_PATH,
                    csrf: &csrf,
                    username: Some(&user),
                    cancel: "/",
                });
                Decision::Respond(Reply::page(200, html, tls))
            }
            "POST" => {
                if !self.same_origin(request) {
                    self.login_failed(None, client, LoginFailureReason::CrossSite);
                    return Decision::Respond(Reply::plain(403, tls));
                }
                let body = match self.form_body(request, body) {
                    Ok(body) => body,
                    Err(not_yet) => return self.not_yet(not_yet),
                };
                let csrf_ok = match (LogoutForm::parse(body), &cookie) {
                    (Ok(form), Some(cookie)) => {
                        self.csrf
                            .verify(&form.csrf, cookie.as_bytes(), CsrfPurpose::Logout)
                    }
                    _ => false,
                };
                if !csrf_ok {
                    return Decision::Respond(Reply::plain(403, tls));
                }
                if let Some(id) = self.session_id(request) {
                    if let Some(ended) = self.sessions.end(&id) {
                        self.finish_sessions(vec![ended]);
                    }
                }
                let reply = Reply::see_other(LOGIN_PATH, tls)
                    .with(
                        "Set-Cookie",
                        set_cookie(&session_cookie, "", Lifetime::Delete, "Lax", tls),
                    )
                    .with("Clear-Site-Data", "\"cookies\"");
                Decision::Respond(reply)
            }
            _ => Decision::Respond(Reply::plain(405, tls).with("Allow", "GET, HEAD, POST")),
        }
    }

    /// HTTP Basic for API clients (twisted.web.guard's
    /// HTTPAuthSessionWrapper): a cached verification forwards at once, a
    /// new one goes through the throttle and a verification job.
    pub(super) fn basic(
        &mut self,
        now: Now,
        request: &Request,
        client: IpAddr,
        path: String,
    ) -> Decision<R::Avatar> {
        let Some(Ok((username, password))) =
            request.header("authorization").map(parse_authorization)
        else {
            return Decision::Respond(self.basic_challenge());
        };
        if self
            .basic_cache
            .get(now.mono, &username, &password)
            .is_some()
        {
            if let Some(avatar) = self.basic_avatar(&username) {
                return Decision::Forward(Access {
                    user: Some(username),
                    avatar: Some(avatar),
                    path,
                });
            }
        }
        if self.pending.len() >= MAX_PENDING {
            return Decision::Respond(Reply::plain(503, self.config.tls).with("Retry-After", "1"));
        }
        let attempt = match self.throttle.check(now.mono, &username, client, None) {
            Ok(attempt) => attempt,
            Err(throttled) => {
                self.events.push_back(AuthEvent::Throttled {
                    user: username,
                    client,
                    retry_after: throttled.retry_after(),
                });
                let reply = Reply::plain(429, self.config.tls)
                    .with("Retry-After", throttled.retry_after_secs().to_string());
                return Decision::Respond(reply);
            }
        };
        let kept = crate::cred::Password::new(password.as_bytes().to_vec());
        match self.portal.login(
            Credentials::username_password(username.clone(), password),
            &mut *self.rng,
        ) {
            Login::Verify(job) => {
                let pending = Pending::Basic {
                    username,
                    password: kept,
                    client,
                    attempt,
                    path,
                };
                self.park(now, job, pending)
            }
            Login::Done(_) => {
                let _ = self.throttle.record_failure(now.mono, attempt);
                self.login_failed(Some(&username), client, LoginFailureReason::BadCredentials);
                Decision::Respond(self.basic_challenge())
            }
        }
    }

    /// An anonymous visitor on a protected page: browsers go to the login
    /// form and come back after; other clients get 401.
    pub(super) fn ask_to_log_in(&self, request: &Request, path: &str) -> Decision<R::Avatar> {
        let tls = self.config.tls;
        let wants_html = request
            .headers_named("accept")
            .any(|accept| contains_ignore_case(accept, b"text/html"));
        if !wants_html {
            return Decision::Respond(match &self.config.basic_realm {
                Some(_) => self.basic_challenge(),
                None => Reply::plain(401, tls)
                    .with("WWW-Authenticate", format!("Form action=\"{LOGIN_PATH}\"")),
            });
        }
        let mut back = super::paths::encode_path(path);
        if let Some(query) = request.query() {
            back.push('?');
            back.push_str(query);
        }
        let back = self.return_path(&back);
        let location = format!(
            "{LOGIN_PATH}?return_to={}",
            utf8_percent_encode(&back, NON_ALPHANUMERIC)
        );
        Decision::Respond(Reply::see_other(&location, tls))
    }

    // ----- helpers ------------------------------------------------------------

    /// The login page, with a pre-login cookie (set now if the browser has
    /// none) and a CSRF token bound to it.
    fn login_form(
        &mut self,
        request: &Request,
        return_to: &str,
        username: &str,
        error: Option<&str>,
        status: u16,
    ) -> Reply {
        let tls = self.config.tls;
        let name = self.config.pre_login_cookie();
        let existing = single_cookie(request, &name).filter(|v| is_pre_login_value(v));
        let (pre, fresh) = match existing {
            Some(pre) => (pre.to_string(), false),
            None => (new_pre_login_value(&mut *self.rng), true),
        };
        let csrf = self.csrf.token(pre.as_bytes(), CsrfPurpose::Login);
        let html = login_page(&LoginPageParams {
            site_name: &self.config.site_name,
            action: LOGIN_PATH,
            csrf: &csrf,
            return_to,
            username,
            error,
        });
        let reply = Reply::page(status, html, tls);
        if fresh {
            reply.with(
                "Set-Cookie",
                set_cookie(&name, &pre, Lifetime::Browser, "Lax", tls),
            )
        } else {
            reply
        }
    }

    /// The page after a refused login: the same for an unknown user and a
    /// wrong password (status, body and fields), with the username kept.
    pub(super) fn failed_login_page(
        &mut self,
        username: &str,
        return_to: &str,
        pre: &str,
    ) -> Reply {
        // The pre-login cookie stays the browser's: the form re-renders with
        // the same token, so nothing differs between the two cases.
        let tls = self.config.tls;
        let csrf = self.csrf.token(pre.as_bytes(), CsrfPurpose::Login);
        let html = login_page(&LoginPageParams {
            site_name: &self.config.site_name,
            action: LOGIN_PATH,
            csrf: &csrf,
            return_to,
            username,
            error: Some(BAD_CREDENTIALS),
        });
        Reply::page(200, html, tls)
    }

    /// 401 with the Basic challenge.
    pub(super) fn basic_challenge(&self) -> Reply {
        let realm = self.config.basic_realm.as_deref().unwrap_or("Portcullis");
        Reply::plain(401, self.config.tls).with("WWW-Authenticate", www_authenticate(realm))
    }

    /// The avatar for a user verified by Basic (the realm is asked each time:
    /// Basic requests have no session to keep one in, so the realm's logout
    /// hook runs at once, as for a verified Basic request).
    fn basic_avatar(&mut self, user: &str) -> Option<R::Avatar> {
        let id = crate::cred::AvatarId::User(user.to_string());
        self.portal
            .realm_mut()
            .request_avatar(&id)
            .map(|(avatar, hook)| {
                hook.logout();
                avatar
            })
    }

    /// A `Set-Cookie` value that deletes the trusted-device cookie.
    pub(super) fn clear_device_cookie(&self) -> String {
        set_cookie(
            &self.config.device_cookie(),
            "",
            Lifetime::Delete,
            "Strict",
            self.config.tls,
        )
    }

    /// The trusted device the request's device cookie proves for `account`.
    fn trusted_device(&self, now: Now, request: &Request, account: &str) -> Option<TrustedDevice> {
        let token = single_cookie(request, &self.config.device_cookie())?;
        self.throttle.verify_device_token(now.wall, account, token)
    }

    /// A checked return path that is not one of the guard's own pages.
    fn return_path(&self, raw: &str) -> String {
        let path = safe_return_path(raw);
        let own = [LOGIN_PATH, LOGOUT_PATH]
            .iter()
            .any(|own| path == *own || path.starts_with(&format!("{own}?")));
        if own {
            "/".to_string()
        } else {
            path
        }
    }

    /// Whether a post comes from this site: `Sec-Fetch-Site` (when the
    /// browser sends it) is `same-origin` or `none`, and `Origin` (when sent)
    /// is this site's own origin: `https://<host>`, or without TLS also
    /// `http://<host>` (a browser behind a TLS-terminating proxy still sends
    /// `https://`).
    fn same_origin(&self, request: &Request) -> bool {
        if let Some(site) = request.header("sec-fetch-site") {
            if !(site.eq_ignore_ascii_case(b"same-origin") || site.eq_ignore_ascii_case(b"none")) {
                return false;
            }
        }
        let Some(origin) = request.header("origin") else {
            return true;
        };
        let Some(host) = request.host() else {
            return false;
        };
        let same =
            |scheme: &str| origin.eq_ignore_ascii_case(format!("{scheme}://{host}").as_bytes());
        same("https") || (!self.config.tls && same("http"))
    }

    /// The form body, once read; otherwise what to do first.
    fn form_body<'b>(&self, request: &Request, body: Option<&'b [u8]>) -> Result<&'b [u8], NotYet> {
        let limit = self.config.max_form_bytes;
        let content_type = request.header("content-type").unwrap_or_default();
        if !is_urlencoded(std::str::from_utf8(content_type).unwrap_or_default()) {
            return Err(NotYet::Refuse(415));
        }
        if let RequestBody::Length(n) = request.body() {
            if n > limit as u64 {
                return Err(NotYet::Refuse(413));
            }
        }
        match body {
            None if request.body() == RequestBody::None => Ok(&[]),
            None => Err(NotYet::Read(limit)),
            Some(body) if body.len() > limit => Err(NotYet::Refuse(413)),
            Some(body) => Ok(body),
        }
    }

    /// The decision for a form body that is not there yet, or refused.
    fn not_yet(&self, not_yet: NotYet) -> Decision<R::Avatar> {
        match not_yet {
            NotYet::Read(limit) => Decision::ReadBody { limit },
            NotYet::Refuse(status) => Decision::Respond(Reply::plain(status, self.config.tls)),
        }
    }

    fn login_failed(&mut self, user: Option<&str>, client: IpAddr, reason: LoginFailureReason) {
        self.events.push_back(AuthEvent::LoginFailed {
            user: user.map(str::to_string),
            client,
            reason,
        });
    }

    /// Keeps what a check in flight is for, under a new ticket, and hands
    /// the job out.
    fn park(&mut self, now: Now, job: VerifyJob, pending: Pending) -> Decision<R::Avatar> {
        self.next_ticket += 1;
        let ticket = Ticket(self.next_ticket);
        let parked = Parked {
            job: job.id(),
            since: now.mono,
            pending,
        };
        self.pending.insert(ticket, parked);
        Decision::Verify(Verification { ticket, job })
    }
}

/// The first value of query parameter `name`, percent-decoded.
fn query_param(request: &Request, name: &str) -> Option<String> {
    request.query()?.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = percent_decode_str(&key.replace('+', " "))
            .decode_utf8()
            .ok()?
            .into_owned();
        (key == name).then(|| {
            percent_decode_str(&value.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        })
    })
}

fn contains_ignore_case(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window.eq_ignore_ascii_case(needle))
}

/// Why a form body cannot be used yet.
enum NotYet {
    /// It must be read first (at most this many bytes).
    Read(usize),
    /// It is refused with this status (415 wrong type, 413 too large).
    Refuse(u16),
}
