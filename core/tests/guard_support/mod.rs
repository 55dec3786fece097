//! The guard's story harness: a virtual clock, a seeded generator, a site
//! whose realm counts logouts, and scripted browsers that speak real
//! HTTP/1.1 through a [`Connection`] to a [`Guard`], so every request is
//! parsed and every answer framed exactly as in production.

// Every test crate uses its own part of the harness.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use portcullis_core::cred::{
    AvatarId, Checker, HashParams, InMemoryCheckerDontUse, LogoutHook, Portal, Realm,
};
use portcullis_core::guard::{
    Access, AuthEvent, Decision, Guard, GuardConfig, Reply, Verification,
};
use portcullis_core::random::TestRng;
use portcullis_core::{BodyRead, Connection, Event, Limits, Now, Request};

/// The user every story knows, and his password.
pub const FRED: &str = "fred";
/// Fred's password.
pub const FRED_PASSWORD: &str = "correct horse battery";
/// A second user, for stories with two accounts.
pub const BARNEY: &str = "barney";
/// Barney's password.
pub const BARNEY_PASSWORD: &str = "rubble rubble rubble";

/// The host every browser asks for.
pub const HOST: &str = "example.com";

/// The wall clock every story starts at.
pub const WALL_SECS: u64 = 1_700_000_000;

/// The start of virtual time: the one real clock read of a story (an
/// `Instant` has no other constructor); everything after is `Now::advanced`.
pub fn epoch() -> Now {
    #[allow(clippy::disallowed_methods)]
    let mono = Instant::now();
    Now::new(
        mono,
        SystemTime::UNIX_EPOCH + Duration::from_secs(WALL_SECS),
    )
}

/// Shorthand for whole seconds.
pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Shorthand for whole minutes.
pub fn mins(m: u64) -> Duration {
    Duration::from_secs(60 * m)
}

/// The realm: an avatar is the user's name; every logout hook that runs
/// bumps a shared counter.
pub struct Site {
    /// How many logout hooks have run.
    pub logouts: Arc<AtomicUsize>,
}

impl Realm for Site {
    type Avatar = String;

    fn request_avatar(&mut self, id: &AvatarId) -> Option<(String, LogoutHook)> {
        match id {
            AvatarId::Anonymous => None,
            AvatarId::User(name) => {
                let logouts = Arc::clone(&self.logouts);
                let hook = LogoutHook::new(move || {
                    logouts.fetch_add(1, Ordering::SeqCst);
                });
                Some((name.clone(), hook))
            }
        }
    }
}

/// The configuration of most stories: TLS on, `/favicon.ico` and
/// `/static/` public, Basic off.
pub fn config() -> GuardConfig {
    GuardConfig {
        public_paths: vec!["/favicon.ico".to_string(), "/static/".to_string()],
        ..GuardConfig::default()
    }
}

/// A guarded site on virtual time.
pub struct World {
    /// The guard under test.
    pub guard: Guard<Site>,
    /// The current virtual time.
    pub now: Now,
    /// When the story started.
    pub start: Now,
    /// How many logout hooks have run.
    pub logouts: Arc<AtomicUsize>,
    /// How many password checks (verification jobs) have run.
    pub verifications: usize,
}

impl World {
    /// A site with the default story configuration ([`config`]).
    pub fn new() -> World {
        World::with_config(config())
    }

    /// A site with `config`, fred and barney as users, seed 1.
    pub fn with_config(config: GuardConfig) -> World {
        World::seeded(config, 1)
    }

    /// A site with `config`, fred and barney as users, whose randomness
    /// comes from `seed`.
    pub fn seeded(config: GuardConfig, seed: u64) -> World {
        World::with_users(
            config,
            seed,
            &[(FRED, FRED_PASSWORD), (BARNEY, BARNEY_PASSWORD)],
        )
    }

    /// A site with `config` and these users, whose randomness comes from
    /// `seed` (the guard's generator does not depend on the users).
    pub fn with_users(config: GuardConfig, seed: u64, accounts: &[(&str, &str)]) -> World {
        let mut rng = TestRng::seeded(seed);
        // Cheap argon2 parameters: tests only.
        let cheap = HashParams::new(8, 1, 1).expect("valid parameters");
        let mut users = InMemoryCheckerDontUse::new(cheap, &mut rng);
        for (user, password) in accounts {
            users
                .add_user(user, *password, &mut rng)
                .expect("add a user");
        }
        World::with_checker(config, seed, users)
    }

    /// A site with `config` whose users are `checker`'s.
    pub fn with_checker<C: Checker + Send + 'static>(
        config: GuardConfig,
        seed: u64,
        checker: C,
    ) -> World {
        let logouts = Arc::new(AtomicUsize::new(0));
        let mut portal = Portal::new(Site {
            logouts: Arc::clone(&logouts),
        });
        portal.register_checker(checker);
        let guard = Guard::new(
            config,
            portal,
            Box::new(TestRng::seeded(seed.wrapping_add(1000))),
        )
        .expect("valid public paths");
        let start = epoch();
        World {
            guard,
            now: start,
            start,
            logouts,
            verifications: 0,
        }
    }

    /// Lets `d` of virtual time pass.
    pub fn advance(&mut self, d: Duration) {
        self.now = self.now.advanced(d);
    }

    /// How many logout hooks have run so far.
    pub fn logout_hooks(&self) -> usize {
        self.logouts.load(Ordering::SeqCst)
    }

    /// Every event the guard queued since the last call.
    pub fn events(&mut self) -> Vec<AuthEvent> {
        std::iter::from_fn(|| self.guard.poll_event()).collect()
    }

    /// The session-cookie name in force.
    pub fn session_cookie(&self) -> String {
        self.guard.config().session_cookie()
    }

    /// Sends raw request bytes from `client` through a fresh connection
    /// and drives the guard to a final outcome: the body is read when the
    /// guard asks, verification jobs run inline.
    pub fn exchange(&mut self, client: IpAddr, raw: &[u8]) -> Outcome {
        match self.run(client, raw, false) {
            Ok(outcome) => outcome,
            Err(_) => unreachable!("verifications run inline"),
        }
    }

    /// Like [`World::exchange`], but stops at the password check and hands
    /// it out, as a server would to its worker pool.
    #[track_caller]
    pub fn until_verification(&mut self, client: IpAddr, raw: &[u8]) -> Verification {
        match self.run(client, raw, true) {
            Err(verification) => *verification,
            Ok(outcome) => panic!("expected a password check, got {outcome:?}"),
        }
    }

    fn run(
        &mut self,
        client: IpAddr,
        raw: &[u8],
        hold: bool,
    ) -> Result<Outcome, Box<Verification>> {
        let now = self.now;
        let mut conn = Connection::new(now, Limits::default());
        let mut fed = conn.receive(now, raw);
        let request = loop {
            match conn.poll_event() {
                Some(Event::Request(request)) => break request,
                Some(Event::BodyReadable) => {}
                other => panic!("the connection did not hand out a request: {other:?}"),
            }
        };
        let mut decision = self.guard.handle(now, &request, client, None);
        loop {
            decision = match decision {
                Decision::Forward(access) => return Ok(Outcome::Forward(access)),
                Decision::Respond(reply) => {
                    return Ok(Outcome::Reply(send_reply(now, &mut conn, reply)));
                }
                Decision::ReadBody { limit } => {
                    let mut body = Vec::new();
                    let mut buf = vec![0; 4096];
                    loop {
                        match conn.read_body(now, &mut buf).expect("read_body") {
                            BodyRead::Data(n) => {
                                body.extend_from_slice(&buf[..n]);
                                if body.len() > limit {
                                    break;
                                }
                            }
                            BodyRead::End => break,
                            BodyRead::Pending if fed < raw.len() => {
                                fed += conn.receive(now, &raw[fed..]);
                            }
                            other => panic!("the body could not be read: {other:?}"),
                        }
                    }
                    body.truncate(limit + 1);
                    self.guard.handle(now, &request, client, Some(&body))
                }
                Decision::Verify(verification) if hold => return Err(Box::new(verification)),
                Decision::Verify(verification) => {
                    self.verifications += 1;
                    let verdict = verification.job.run();
                    self.guard.complete(now, verification.ticket, verdict)
                }
            }
        }
    }
}

impl World {
    /// `reply` as a connection sends it (in answer to a plain GET): for the
    /// answers a server gets from the guard outside [`World::exchange`],
    /// such as [`Guard::cancel`]'s.
    pub fn on_the_wire(&self, reply: Reply) -> Response {
        let mut conn = Connection::new(self.now, Limits::default());
        let raw = format!("GET / HTTP/1.1\r\nHost: {HOST}\r\n\r\n");
        conn.receive(self.now, raw.as_bytes());
        match conn.poll_event() {
            Some(Event::Request(_)) => send_reply(self.now, &mut conn, reply),
            other => panic!("the connection did not hand out a request: {other:?}"),
        }
    }
}

/// Sends `reply` on `conn`, which has a request waiting for it, and reads
/// back every byte written.
fn send_reply(now: Now, conn: &mut Connection, reply: Reply) -> Response {
    conn.send_response(now, reply.head)
        .expect("the guard's reply head is valid HTTP");
    let taken = conn.send_body(now, &reply.body).expect("send_body");
    assert_eq!(taken, reply.body.len(), "the reply body fits");
    conn.finish_response(now).expect("finish_response");
    let bytes = conn.pending_output().to_vec();
    conn.advance_output(now, bytes.len());
    Response::parse(&bytes)
}

/// The request a connection makes of `raw`, as the site gets it with a
/// forward (to ask the guard about it, e.g. [`Guard::logout_form_token`]).
#[track_caller]
pub fn parsed(raw: &[u8]) -> Request {
    let now = epoch();
    let mut conn = Connection::new(now, Limits::default());
    conn.receive(now, raw);
    match conn.poll_event() {
        Some(Event::Request(request)) => request,
        other => panic!("the connection did not hand out a request: {other:?}"),
    }
}

impl Default for World {
    fn default() -> Self {
        World::new()
    }
}

/// What a request came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The guard let it through to the site.
    Forward(Access<String>),
    /// The guard answered itself.
    Reply(Response),
}

impl Outcome {
    /// The access, which must be a forward.
    #[track_caller]
    pub fn forwarded(self) -> Access<String> {
        match self {
            Outcome::Forward(access) => access,
            Outcome::Reply(response) => panic!(
                "expected a forward, got {} {:?}\n{}",
                response.status, response.headers, response.body
            ),
        }
    }

    /// The reply, which must be one.
    #[track_caller]
    pub fn reply(self) -> Response {
        match self {
            Outcome::Reply(response) => response,
            Outcome::Forward(access) => panic!("expected a reply, got a forward: {access:?}"),
        }
    }

    /// Whether the guard let the request through.
    pub fn is_forward(&self) -> bool {
        matches!(self, Outcome::Forward(_))
    }
}

/// A response as it went over the wire.
#[derive(Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The header fields in order (names as sent).
    pub headers: Vec<(String, String)>,
    /// The body as text.
    pub body: String,
    /// Every byte written.
    pub raw: Vec<u8>,
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The wire text, readable in a failure message.
        f.write_str(&String::from_utf8_lossy(&self.raw))
    }
}

impl Response {
    fn parse(bytes: &[u8]) -> Response {
        let text = String::from_utf8(bytes.to_vec()).expect("the response is UTF-8");
        let (head, body) = text.split_once("\r\n\r\n").expect("a complete head");
        let mut lines = head.split("\r\n");
        let status_line = lines.next().expect("a status line");
        let status = status_line
            .strip_prefix("HTTP/1.1 ")
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let headers = lines
            .map(|line| {
                let (name, value) = line.split_once(':').expect("a header line");
                (name.to_string(), value.trim().to_string())
            })
            .collect();
        Response {
            status,
            headers,
            body: body.to_string(),
            raw: bytes.to_vec(),
        }
    }

    /// Every value of header `name` (case-insensitive).
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The one value of header `name`, if sent.
    #[track_caller]
    pub fn header(&self, name: &str) -> Option<&str> {
        let all = self.all(name);
        assert!(all.len() <= 1, "{name} sent {} times", all.len());
        all.first().copied()
    }

    /// The `Location` header, which must be there.
    #[track_caller]
    pub fn location(&self) -> &str {
        self.header("Location")
            .unwrap_or_else(|| panic!("no Location in {:?}", self.headers))
    }

    /// The `Set-Cookie` value for cookie `name`, if one was sent.
    pub fn set_cookie(&self, name: &str) -> Option<&str> {
        self.all("Set-Cookie")
            .into_iter()
            .find(|c| c.split_once('=').is_some_and(|(n, _)| n == name))
    }

    /// The value of the hidden form field `name` in the page.
    #[track_caller]
    pub fn hidden(&self, name: &str) -> String {
        hidden_field(&self.body, name)
            .unwrap_or_else(|| panic!("no hidden field {name} in\n{}", self.body))
    }

    /// The `value` of the input called `name`, if the page has one.
    pub fn input_value(&self, name: &str) -> Option<String> {
        hidden_field(&self.body, name)
    }

    /// The response without its `Date` header, to compare two answers.
    pub fn dateless(&self) -> (u16, Vec<(String, String)>, String) {
        let headers = self
            .headers
            .iter()
            .filter(|(n, _)| !n.eq_ignore_ascii_case("date"))
            .cloned()
            .collect();
        (self.status, headers, self.body.clone())
    }
}

/// The `value` attribute of the `<input>` whose `name` is `name`, with the
/// HTML escapes undone.
pub fn hidden_field(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\"");
    let at = html.find(&marker)?;
    let tag_start = html[..at].rfind('<')?;
    let tag_end = at + html[at..].find('>')?;
    let tag = &html[tag_start..tag_end];
    let value_at = tag.find(" value=\"")? + " value=\"".len();
    let value_end = value_at + tag[value_at..].find('"')?;
    Some(unescape_html(&tag[value_at..value_end]))
}

fn unescape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp..];
        let Some(semi) = after.find(';') else {
            out.push_str(after);
            return out;
        };
        let entity = &after[1..semi];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ if entity.starts_with("#x") || entity.starts_with("#X") => {
                u32::from_str_radix(&entity[2..], 16)
                    .ok()
                    .and_then(char::from_u32)
            }
            _ if entity.starts_with('#') => entity[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &after[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &after[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// `application/x-www-form-urlencoded` for `fields`.
pub fn urlencode(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", percent(k), percent(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub fn percent(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Undoes [`percent`] (and `+` as space) for a query value.
pub fn unpercent(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).expect("ascii");
                out.push(u8::from_str_radix(hex, 16).expect("hex escape"));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).expect("UTF-8")
}

/// A scripted browser: a cookie jar, an address, and the habits of a
/// browser (Accept: text/html, same-origin fetch metadata on posts).
#[derive(Clone, Debug)]
pub struct Browser {
    /// Cookies by name.
    pub jar: BTreeMap<String, String>,
    /// Where it connects from.
    pub client: IpAddr,
    /// The Accept header it sends (`None`: none at all).
    pub accept: Option<String>,
    /// Header lines added to every request (name, value).
    pub extra: Vec<(String, String)>,
    /// Whether it talks to the site over TLS (for the Origin it sends).
    pub tls: bool,
}

impl Browser {
    /// A browser at 192.0.2.`n`.
    pub fn new(n: u8) -> Browser {
        Browser {
            jar: BTreeMap::new(),
            client: IpAddr::V4(Ipv4Addr::new(192, 0, 2, n)),
            accept: Some("text/html,application/xhtml+xml,*/*;q=0.8".to_string()),
            extra: Vec::new(),
            tls: true,
        }
    }

    /// A script (API client): no text/html in Accept.
    pub fn script(n: u8) -> Browser {
        Browser {
            accept: Some("application/json".to_string()),
            ..Browser::new(n)
        }
    }

    /// This browser's own origin, as it would send it.
    pub fn origin(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{HOST}")
    }

    /// The `Cookie` header value from the jar, if any.
    pub fn cookie_header(&self) -> Option<String> {
        (!self.jar.is_empty()).then(|| {
            self.jar
                .iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }

    /// The raw bytes of a request.
    pub fn build(
        &self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Vec<u8> {
        let mut head = format!("{method} {target} HTTP/1.1\r\nHost: {HOST}\r\n");
        if let Some(accept) = &self.accept {
            head.push_str(&format!("Accept: {accept}\r\n"));
        }
        if let Some(cookies) = self.cookie_header() {
            head.push_str(&format!("Cookie: {cookies}\r\n"));
        }
        for (name, value) in &self.extra {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if let Some(body) = body {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        let mut raw = head.into_bytes();
        raw.extend_from_slice(body.unwrap_or_default());
        raw
    }

    /// Sends a request built by hand and keeps the cookies it sets.
    pub fn send(&mut self, world: &mut World, raw: &[u8]) -> Outcome {
        let outcome = world.exchange(self.client, raw);
        if let Outcome::Reply(response) = &outcome {
            self.store_cookies(response);
        }
        outcome
    }

    /// `GET target`.
    pub fn get(&mut self, world: &mut World, target: &str) -> Outcome {
        let raw = self.build("GET", target, &[], None);
        self.send(world, &raw)
    }

    /// `GET target` with extra header lines.
    pub fn get_with(
        &mut self,
        world: &mut World,
        target: &str,
        headers: &[(&str, &str)],
    ) -> Outcome {
        let raw = self.build("GET", target, headers, None);
        self.send(world, &raw)
    }

    /// A same-origin form post, as a browser sends it from the site's own
    /// page.
    pub fn post_form(
        &mut self,
        world: &mut World,
        target: &str,
        fields: &[(&str, &str)],
    ) -> Outcome {
        let origin = self.origin();
        self.post_raw(
            world,
            target,
            &[("Origin", &origin), ("Sec-Fetch-Site", "same-origin")],
            urlencode(fields).as_bytes(),
        )
    }

    /// A urlencoded post with exactly these extra headers and body.
    pub fn post_raw(
        &mut self,
        world: &mut World,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Outcome {
        let mut all = vec![("Content-Type", "application/x-www-form-urlencoded")];
        all.extend_from_slice(headers);
        let raw = self.build("POST", target, &all, Some(body));
        self.send(world, &raw)
    }

    /// Keeps the cookies a response sets; `Max-Age=0` deletes, and
    /// `Clear-Site-Data: "cookies"` empties the jar first (as browsers do
    /// before they apply the response's own `Set-Cookie` fields).
    pub fn store_cookies(&mut self, response: &Response) {
        if response
            .all("Clear-Site-Data")
            .iter()
            .any(|v| v.contains("\"cookies\"") || v.contains("\"*\""))
        {
            self.jar.clear();
        }
        for set in response.all("Set-Cookie") {
            let mut parts = set.split(';');
            let (name, value) = parts
                .next()
                .and_then(|pair| pair.split_once('='))
                .expect("name=value");
            let delete = parts.any(|attr| attr.trim().eq_ignore_ascii_case("Max-Age=0"));
            if delete {
                self.jar.remove(name.trim());
            } else {
                self.jar
                    .insert(name.trim().to_string(), value.trim().to_string());
            }
        }
    }

    /// The login form: `GET /__login__` (with `return_to` if given).
    #[track_caller]
    pub fn login_page(&mut self, world: &mut World, return_to: Option<&str>) -> Response {
        let target = match return_to {
            Some(path) => format!("/__login__?return_to={}", percent(path)),
            None => "/__login__".to_string(),
        };
        let page = self.get(world, &target).reply();
        assert_eq!(page.status, 200, "the login form: {page:?}");
        page
    }

    /// Fills in and posts the login form `page`.
    pub fn submit_login(
        &mut self,
        world: &mut World,
        page: &Response,
        user: &str,
        password: &str,
    ) -> Outcome {
        let csrf = page.hidden("csrf");
        let return_to = page.hidden("return_to");
        self.post_form(
            world,
            "/__login__",
            &[
                ("username", user),
                ("password", password),
                ("csrf", &csrf),
                ("return_to", &return_to),
            ],
        )
    }

    /// Fetches the login form and logs in; returns the answer to the post.
    pub fn log_in(&mut self, world: &mut World, user: &str, password: &str) -> Response {
        let page = self.login_page(world, None);
        self.submit_login(world, &page, user, password).reply()
    }

    /// Fetches the logout confirmation and confirms it.
    #[track_caller]
    pub fn log_out(&mut self, world: &mut World) -> Response {
        let page = self.get(world, "/__logout__").reply();
        assert_eq!(page.status, 200, "the logout form: {page:?}");
        let csrf = page.hidden("csrf");
        self.post_form(world, "/__logout__", &[("csrf", &csrf)])
            .reply()
    }

    /// The session cookie's value in the jar.
    pub fn session(&self, world: &World) -> Option<String> {
        self.jar.get(&world.session_cookie()).cloned()
    }
}

/// The `return_to` a redirect to the login page carries, decoded.
#[track_caller]
pub fn return_to_of(location: &str) -> String {
    let query = location
        .strip_prefix("/__login__?")
        .unwrap_or_else(|| panic!("not a login redirect: {location}"));
    let value = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("return_to="))
        .expect("a return_to parameter");
    unpercent(value)
}
