//! The blocking example with the guard in front: a site that asks for a
//! login, over plain `std::net`. The same core that the mio server drives,
//! driven by threads: the guard's run loop needs no particular runtime.
//!
//! ```text
//! cargo run --example guarded_server -- 127.0.0.1:8080
//! # then open http://127.0.0.1:8080/ and log in as fred / correct horse battery
//! ```
//!
//! Plain HTTP on loopback, so the cookies are not `Secure` (see
//! `GuardConfig::tls`); the user lives in an in-memory checker, which is
//! for examples and tests only. Password checks run inline on the
//! connection's thread, outside the guard's lock.

#[path = "blocking_server.rs"]
#[allow(dead_code)]
mod blocking;

use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};

use portcullis_core::cred::{
    AvatarId, HashParams, InMemoryCheckerDontUse, LogoutHook, Portal, Realm,
};
use portcullis_core::guard::{Decision, Guard, GuardConfig, Reply};
use portcullis_core::random::TestRng;
use portcullis_core::{BodyRead, Connection, Request, ResponseBody, ResponseHead};

use blocking::{now, serve_with, App};

/// The demo user.
pub const USER: &str = "fred";
/// The demo user's password.
pub const PASSWORD: &str = "correct horse battery";

/// The realm: a user's avatar is their name (the site greets them).
pub struct Site;

impl Realm for Site {
    type Avatar = String;

    fn request_avatar(&mut self, id: &AvatarId) -> Option<(String, LogoutHook)> {
        match id {
            AvatarId::User(name) => Some((name.clone(), LogoutHook::noop())),
            AvatarId::Anonymous => None,
        }
    }
}

pub type SharedGuard = Arc<Mutex<Guard<Site>>>;

/// Builds the guard: one in-memory user, plain HTTP, `/favicon.ico` public.
pub fn guard(seed: u64) -> SharedGuard {
    // An example seeds its generator for repeatable runs; a real server
    // hands the guard the operating system's generator.
    let mut rng = TestRng::seeded(seed);
    let mut users = InMemoryCheckerDontUse::new(HashParams::default(), &mut rng);
    users
        .add_user(USER, PASSWORD, &mut rng)
        .expect("the demo user is valid");
    let mut portal = Portal::new(Site);
    portal.register_checker(users);
    let config = GuardConfig {
        tls: false,
        site_name: "Guarded example".to_string(),
        public_paths: vec!["/favicon.ico".to_string()],
        ..GuardConfig::default()
    };
    let guard = Guard::new(config, portal, Box::new(rng)).expect("valid public paths");
    Arc::new(Mutex::new(guard))
}

#[allow(dead_code)] // tests/guarded_example.rs includes this file
fn main() -> io::Result<()> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".to_string());
    let listener = TcpListener::bind(&address)?;
    eprintln!(
        "serving http://{}/ (log in as {USER} / {PASSWORD})",
        listener.local_addr()?
    );
    serve(listener, guard(1))
}

/// Serves the guarded site on `listener` forever.
pub fn serve(listener: TcpListener, guard: SharedGuard) -> io::Result<()> {
    serve_with(listener, move |peer: SocketAddr| Guarded {
        guard: Arc::clone(&guard),
        client: peer.ip(),
        reading: None,
    })
}

/// One connection's side of the guard.
struct Guarded {
    guard: SharedGuard,
    client: IpAddr,
    /// The request whose body the guard asked for, and the body so far.
    reading: Option<(Request, Vec<u8>, usize)>,
}

impl App for Guarded {
    fn request(&mut self, conn: &mut Connection, request: Request) -> io::Result<()> {
        let decision = self.lock().handle(now(), &request, self.client, None);
        self.act(conn, request, decision)
    }

    fn body_readable(&mut self, conn: &mut Connection) -> io::Result<()> {
        let Some((request, mut body, limit)) = self.reading.take() else {
            return Ok(());
        };
        let mut buf = [0; 4096];
        loop {
            match conn.read_body(now(), &mut buf).map_err(io::Error::other)? {
                BodyRead::Data(n) => {
                    body.extend_from_slice(&buf[..n]);
                    if body.len() > limit {
                        break; // the guard answers 413
                    }
                }
                BodyRead::Pending => {
                    self.reading = Some((request, body, limit));
                    return Ok(());
                }
                BodyRead::End => break,
                BodyRead::Failed(_) => return Ok(()), // the engine answered
            }
        }
        let decision = self
            .lock()
            .handle(now(), &request, self.client, Some(&body));
        self.act(conn, request, decision)
    }
}

impl Guarded {
    fn lock(&self) -> std::sync::MutexGuard<'_, Guard<Site>> {
        self.guard.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Carries out a decision: answer, serve the site, read the body, or
    /// check a password (inline here; a worker pool in the real server).
    fn act(
        &mut self,
        conn: &mut Connection,
        request: Request,
        mut decision: Decision<String>,
    ) -> io::Result<()> {
        loop {
            match decision {
                Decision::Respond(reply) => return send(conn, reply),
                Decision::Forward(access) => {
                    let user = access.user.as_deref().unwrap_or("visitor");
                    return send(conn, site_page(&access.path, user));
                }
                Decision::ReadBody { limit } => {
                    self.reading = Some((request, Vec::new(), limit));
                    // The body may be buffered already.
                    return self.body_readable(conn);
                }
                Decision::Verify(verification) => {
                    // Slow (argon2id): not under the guard's lock.
                    let verdict = verification.job.run();
                    decision = self.lock().complete(now(), verification.ticket, verdict);
                }
            }
        }
    }
}

/// The site behind the guard: a greeting naming the user, with a logout
/// link, at `/`; 404 elsewhere.
fn site_page(path: &str, user: &str) -> Reply {
    let (status, html) = match path {
        "/" => (
            200,
            format!(
                "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
                 <title>Hello</title></head><body><h1>Hello, {}!</h1>\
                 <p><a href=\"/__logout__\">Log out</a></p></body></html>\n",
                html_escape::encode_text(user)
            ),
        ),
        _ => (
            404,
            "<!doctype html><title>Not found</title><h1>Not found</h1>\n".to_string(),
        ),
    };
    let body = html.into_bytes();
    Reply {
        head: ResponseHead::new(status)
            .header("Content-Type", "text/html; charset=utf-8")
            .header("Cache-Control", "no-store")
            .body(ResponseBody::Length(body.len() as u64)),
        body,
    }
}

/// Sends a whole reply.
fn send(conn: &mut Connection, reply: Reply) -> io::Result<()> {
    let now = now();
    conn.send_response(now, reply.head)
        .map_err(io::Error::other)?;
    // Guard pages are small: far below the engine's output high-water mark.
    conn.send_body(now, &reply.body).map_err(io::Error::other)?;
    conn.finish_response(now).map_err(io::Error::other)
}
