//! The server: one thread runs a mio event loop over every socket; rustls
//! turns TLS records into plaintext for the core's HTTP/1.1 connections;
//! the guard decides each request; password checks run on a small worker
//! pool that wakes the loop when done.
//!
//! The loop follows mio's rules: sockets are non-blocking and edge-
//! triggered, so each readiness is used until `WouldBlock` (reads retried on
//! `Interrupted`), events for unknown tokens are ignored, and a socket's
//! interest is re-derived after every pass from the core and rustls. The
//! clock is read here and nowhere else: once per wake-up, handed to the
//! core as [`Now`].

pub mod conn;
pub mod log;
pub mod pool;

use std::collections::{BTreeSet, HashMap};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant, SystemTime};

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};
use portcullis_core::cred::{
    AvatarId, HashParams, LogoutHook, PasswordFile, PasswordFileChecker, PasswordUpgrade, Portal,
    Realm,
};
use portcullis_core::guard::{Access, Guard, GuardConfig};
use portcullis_core::session::SessionConfig;
use portcullis_core::{Limits, Now, Request};
use rustls::ServerConfig;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;
use slab::Slab;

use crate::config::Settings;
use crate::os_random::os_rng;
use crate::passwd_store::{EditFailure, PasswdStore};
use crate::static_files::{SiteResponse, StaticSite};
use conn::{Conn, Role};
use pool::VerifyPool;

const HTTPS: Token = Token(usize::MAX - 1);
const HTTP: Token = Token(usize::MAX - 2);
const WAKER: Token = Token(usize::MAX - 3);
const SIGNALS: Token = Token(usize::MAX - 4);

/// How often idle sessions are swept even when no request comes.
const SWEEP_EVERY: Duration = Duration::from_secs(1);
/// After an accept error such as EMFILE, accepting pauses this long (the
/// pending connection would otherwise wake the loop in a tight spin).
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);
/// The loop's scratch buffer: one TLS record's plaintext and then some.
const SCRATCH: usize = 32 * 1024;

/// The realm: a user's avatar is their name (the site greets them).
pub struct Users;

impl Realm for Users {
    type Avatar = String;

    fn request_avatar(&mut self, id: &AvatarId) -> Option<(String, LogoutHook)> {
        match id {
            AvatarId::User(name) => Some((name.clone(), LogoutHook::noop())),
            AvatarId::Anonymous => None,
        }
    }
}

/// What is served behind the guard.
pub enum Site {
    /// Files under a directory.
    Static(StaticSite),
    /// The built-in demo site.
    Demo,
}

/// Everything loaded from the settings, ready to serve.
pub struct Prepared {
    /// The TLS configuration, when there is an HTTPS listener.
    pub tls: Option<crate::tls::TlsSetup>,
    /// The users.
    pub users: PasswordFile,
    /// The password file to reload and write upgrades to (`None` in demo
    /// mode's in-memory users).
    pub users_path: Option<PathBuf>,
    /// The site.
    pub site: Site,
}

/// The state every connection's decisions need.
pub struct Shared {
    /// The session guard.
    pub guard: Guard<Users>,
    site: Site,
    pool: VerifyPool,
    /// Scratch space for reads (sockets, bodies, files); never holds data
    /// between calls.
    scratch: Vec<u8>,
    limits: Limits,
    handshake_timeout: Duration,
    access_log: bool,
    trusted_proxies: Vec<IpAddr>,
    pool_full_noted: Option<Instant>,
}

impl Shared {
    /// The client's address: the peer's, unless the peer is a trusted
    /// proxy, then the last address it put in `X-Forwarded-For` (the one it
    /// saw itself; earlier entries are the client's to forge).
    fn client_address(&self, peer: IpAddr, request: &Request) -> IpAddr {
        if !self.trusted_proxies.contains(&peer) {
            return peer;
        }
        request
            .headers_named("x-forwarded-for")
            .last()
            .and_then(|value| std::str::from_utf8(value).ok())
            .and_then(|list| list.rsplit(',').next())
            .and_then(|last| last.trim().parse().ok())
            .unwrap_or(peer)
    }

    fn site_response(&self, request: &Request, access: &Access<String>) -> SiteResponse {
        match &self.site {
            Site::Static(site) => site.respond(request, &access.path),
            Site::Demo => {
                let token = access
                    .user
                    .as_ref()
                    .and_then(|_| self.guard.logout_form_token(request));
                crate::demo_site::respond(
                    request,
                    &access.path,
                    access.user.as_deref(),
                    token.as_deref(),
                )
            }
        }
    }

    fn note_pool_full(&mut self, now: Now) {
        // Once a second at most: a flood must not become a log flood.
        if once_a_second(&mut self.pool_full_noted, now) {
            log::notice(format_args!(
                "password checks queue full: answering 503 to logins (raise `workers` or `verify-queue` if this is not an attack)"
            ));
        }
    }
}

/// Controls a running server from another thread (tests, embedders); the
/// binary's signal handlers do the same things.
#[derive(Clone)]
pub struct ServerHandle {
    control: Arc<Control>,
    waker: Arc<Waker>,
}

#[derive(Default)]
struct Control {
    shutdown: AtomicBool,
    reload: AtomicBool,
    open: AtomicUsize,
    sessions: AtomicUsize,
}

impl ServerHandle {
    /// Starts a graceful shutdown (as SIGTERM does).
    pub fn shutdown(&self) {
        self.control.shutdown.store(true, Ordering::SeqCst);
        let _ = self.waker.wake();
    }

    /// Reloads the password file (as SIGHUP does).
    pub fn reload(&self) {
        self.control.reload.store(true, Ordering::SeqCst);
        let _ = self.waker.wake();
    }

    /// How many client connections are open.
    pub fn open_connections(&self) -> usize {
        self.control.open.load(Ordering::SeqCst)
    }

    /// How many sessions are live (as of the loop's last pass).
    pub fn sessions(&self) -> usize {
        self.control.sessions.load(Ordering::SeqCst)
    }
}

/// A bound server, ready to run.
pub struct Server {
    poll: Poll,
    https: Option<TcpListener>,
    http: Option<TcpListener>,
    https_addr: Option<SocketAddr>,
    http_addr: Option<SocketAddr>,
    tls: Option<Arc<ServerConfig>>,
    /// Boxed: the slab grows by doubling, and spare slots the size of a
    /// whole connection would cost more than the idle connections
    /// themselves.
    conns: Slab<Box<Conn>>,
    /// Connection deadlines, earliest first (each connection's own entry
    /// is its `timer`).
    timers: BTreeSet<(Instant, usize)>,
    per_client: HashMap<IpAddr, usize>,
    shared: Shared,
    control: Arc<Control>,
    waker: Arc<Waker>,
    signals: Option<Signals>,
    users_path: Option<PathBuf>,
    upgrades: Option<mpsc::Sender<PasswordUpgrade>>,
    max_connections: usize,
    max_per_client: usize,
    shutdown_timeout: Duration,
    shutdown_deadline: Option<Instant>,
    accept_paused_until: Option<Instant>,
    /// At `max-connections`: accept again when one closes.
    accept_blocked: bool,
    accept_error_noted: Option<Instant>,
    refused_noted: Option<Instant>,
    next_sweep: Instant,
}

impl Server {
    /// Binds the listeners the settings name and starts the worker pool.
    pub fn bind(settings: &Settings, prepared: Prepared) -> io::Result<Server> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let mut https = settings.https.map(TcpListener::bind).transpose()?;
        let mut http = settings.http.map(TcpListener::bind).transpose()?;
        if let Some(listener) = &mut https {
            poll.registry()
                .register(listener, HTTPS, Interest::READABLE)?;
        }
        if let Some(listener) = &mut http {
            poll.registry()
                .register(listener, HTTP, Interest::READABLE)?;
        }
        let https_addr = https.as_ref().map(TcpListener::local_addr).transpose()?;
        let http_addr = http.as_ref().map(TcpListener::local_addr).transpose()?;

        let mut rng = os_rng();
        let checker = PasswordFileChecker::new(prepared.users, HashParams::default(), &mut rng);
        let mut portal = Portal::new(Users);
        portal.register_checker(checker);
        let config = GuardConfig {
            tls: settings.secure_cookies,
            site_name: settings.site_name.clone(),
            public_paths: settings.public.clone(),
            basic_realm: settings.basic_realm.clone(),
            sessions: SessionConfig {
                idle_timeout: settings.idle_timeout,
                absolute_timeout: settings.absolute_timeout,
                capacity: settings.session_capacity,
                ..SessionConfig::default()
            },
            ..GuardConfig::default()
        };
        let mut guard = Guard::new(config, portal, Box::new(os_rng()))
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("public: {e}")))?;
        // Benchmarks only (`bench-preload-sessions`): sessions of synthetic
        // users, as many per user as the per-user cap allows, so that the
        // session table's size can be measured. The realm gives any user an
        // avatar; nobody holds the cookies.
        let per_user = guard.config().sessions.per_user_cap;
        let preload_now = Now::new(Instant::now(), SystemTime::now());
        for i in 0..settings.bench_preload_sessions {
            let _cookie = guard.start_session(preload_now, &format!("bench-user-{}", i / per_user));
        }
        let pool = VerifyPool::start(
            settings.workers,
            settings.verify_queue,
            settings.verify_priority,
            Arc::clone(&waker),
        )?;
        let upgrades = prepared.users_path.clone().map(spawn_upgrade_writer);
        let now = Instant::now();
        Ok(Server {
            poll,
            https,
            http,
            https_addr,
            http_addr,
            tls: prepared.tls.map(|setup| setup.config),
            conns: Slab::new(),
            timers: BTreeSet::new(),
            per_client: HashMap::new(),
            shared: Shared {
                guard,
                site: prepared.site,
                pool,
                scratch: vec![0; SCRATCH],
                limits: Limits::default(),
                handshake_timeout: settings.handshake_timeout,
                access_log: settings.access_log,
                trusted_proxies: settings.trusted_proxies.clone(),
                pool_full_noted: None,
            },
            control: Arc::new(Control::default()),
            waker,
            signals: None,
            users_path: prepared.users_path,
            upgrades,
            max_connections: settings.max_connections,
            max_per_client: settings.max_connections_per_client,
            shutdown_timeout: settings.shutdown_timeout,
            shutdown_deadline: None,
            accept_paused_until: None,
            accept_blocked: false,
            accept_error_noted: None,
            refused_noted: None,
            next_sweep: now + SWEEP_EVERY,
        })
    }

    /// The HTTPS listener's address (with the port the OS chose for `:0`).
    pub fn https_addr(&self) -> Option<SocketAddr> {
        self.https_addr
    }

    /// The plain-HTTP listener's address.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    /// A handle to control the server from another thread.
    pub fn handle(&self) -> ServerHandle {
        ServerHandle {
            control: Arc::clone(&self.control),
            waker: Arc::clone(&self.waker),
        }
    }

    /// SIGINT and SIGTERM shut down gracefully, SIGHUP reloads the password
    /// file. For the binary; embedders keep their own signal handling.
    pub fn handle_signals(&mut self) -> io::Result<()> {
        let mut signals = Signals::new([SIGINT, SIGTERM, SIGHUP])?;
        self.poll
            .registry()
            .register(&mut signals, SIGNALS, Interest::READABLE)?;
        self.signals = Some(signals);
        Ok(())
    }

    /// Runs until a graceful shutdown completes.
    pub fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        loop {
            let timeout = self.next_wakeup().map(|at| {
                // Rounded up: waking a hair early would just spin once more.
                at.saturating_duration_since(Instant::now()) + Duration::from_millis(1)
            });
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            let now = Now::new(Instant::now(), SystemTime::now());
            for event in events.iter() {
                match event.token() {
                    HTTPS | HTTP => self.accept(event.token(), now),
                    WAKER => self.on_wake(now),
                    SIGNALS => self.on_signals(now),
                    Token(key) => {
                        let Some(conn) = self.conns.get_mut(key) else {
                            continue; // closed earlier in this batch
                        };
                        let broken = event.is_error();
                        conn.ready(
                            event.is_readable() || event.is_read_closed() || broken,
                            event.is_writable() || event.is_write_closed() || broken,
                            event.is_read_closed() || broken,
                        );
                        conn.drive(&mut self.shared, key, now);
                        self.settle(key);
                    }
                }
            }
            self.on_timers(now);
            self.housekeeping(now);
            if self.finished(now) {
                log::notice(format_args!("stopped"));
                return Ok(());
            }
        }
    }

    fn next_wakeup(&self) -> Option<Instant> {
        [
            self.timers.first().map(|&(at, _)| at),
            self.accept_paused_until,
            self.shutdown_deadline,
            Some(self.next_sweep),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    // ----- accepting ---------------------------------------------------------

    fn accept(&mut self, token: Token, now: Now) {
        if self.accept_paused_until.is_some() {
            return; // retried when the pause ends
        }
        loop {
            let listener = match token {
                HTTPS => self.https.as_ref(),
                _ => self.http.as_ref(),
            };
            let Some(listener) = listener else {
                return;
            };
            if self.conns.len() >= self.max_connections {
                // Full: the rest wait in the system's accept queue until a
                // connection closes (then `settle` accepts again).
                self.accept_blocked = true;
                if once_a_second(&mut self.refused_noted, now) {
                    log::notice(format_args!(
                        "{} connections open (max-connections): new ones wait",
                        self.conns.len()
                    ));
                }
                return;
            }
            let (mut socket, peer) = match listener.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // EMFILE, ENFILE, ENOBUFS...: the listener stays; we
                    // retry shortly (closing connections frees descriptors).
                    self.accept_paused_until = Some(now.mono + ACCEPT_PAUSE);
                    if once_a_second(&mut self.accept_error_noted, now) {
                        log::notice(format_args!("accept failed ({e}); retrying"));
                    }
                    return;
                }
            };
            let ip = peer.ip();
            let from_client = self.per_client.get(&ip).copied().unwrap_or(0);
            if from_client >= self.max_per_client {
                // Closed at once: one client must not hold the queue.
                if once_a_second(&mut self.refused_noted, now) {
                    log::notice(format_args!(
                        "connection from {ip} refused: {from_client} open from this client (max-connections-per-client)"
                    ));
                }
                continue;
            }
            let _ = socket.set_nodelay(true);
            let (tls, role) = match (token, &self.tls, self.https_addr) {
                (HTTPS, Some(config), _) => {
                    match rustls::server::UnbufferedServerConnection::new(Arc::clone(config)) {
                        Ok(tls) => (Some(tls), Role::Site),
                        Err(_) => continue,
                    }
                }
                (_, Some(_), Some(https)) => (
                    None,
                    Role::Redirect {
                        https_port: https.port(),
                    },
                ),
                _ => (None, Role::Site),
            };
            let entry = self.conns.vacant_entry();
            let key = entry.key();
            if self
                .poll
                .registry()
                .register(&mut socket, Token(key), Interest::READABLE)
                .is_err()
            {
                continue;
            }
            entry.insert(Box::new(Conn::new(
                socket,
                tls,
                role,
                ip,
                &self.shared,
                now,
            )));
            *self.per_client.entry(ip).or_insert(0) += 1;
            self.control.open.store(self.conns.len(), Ordering::SeqCst);
            self.settle(key);
        }
    }

    // ----- per-connection bookkeeping -----------------------------------------

    /// After a connection was driven: drop it if it is finished, else make
    /// its interest and deadline match its state.
    fn settle(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if conn.is_done() {
            let mut conn = self.conns.remove(key);
            let _ = self.poll.registry().deregister(conn.socket_mut());
            if let Some(at) = conn.timer {
                self.timers.remove(&(at, key));
            }
            if let Some(count) = self.per_client.get_mut(&conn.peer) {
                *count -= 1;
                if *count == 0 {
                    self.per_client.remove(&conn.peer);
                }
            }
            self.control.open.store(self.conns.len(), Ordering::SeqCst);
            if self.accept_blocked && self.conns.len() < self.max_connections {
                self.accept_blocked = false;
                let now = Now::new(Instant::now(), SystemTime::now());
                self.accept(HTTPS, now);
                self.accept(HTTP, now);
            }
            return;
        }
        let wanted = conn.interest();
        if wanted != conn.registered {
            conn.registered = wanted;
            let _ = self
                .poll
                .registry()
                .reregister(conn.socket_mut(), Token(key), wanted);
        }
        let deadline = conn.deadline();
        if deadline != conn.timer {
            if let Some(at) = conn.timer {
                self.timers.remove(&(at, key));
            }
            if let Some(at) = deadline {
                self.timers.insert((at, key));
            }
            conn.timer = deadline;
        }
    }

    fn on_timers(&mut self, now: Now) {
        while let Some(&(at, key)) = self.timers.first() {
            if at > now.mono {
                break;
            }
            self.timers.pop_first();
            if let Some(conn) = self.conns.get_mut(key) {
                conn.timer = None;
                conn.on_timeout(&mut self.shared, key, now);
                self.settle(key);
            }
        }
        if self
            .accept_paused_until
            .is_some_and(|until| until <= now.mono)
        {
            self.accept_paused_until = None;
            self.accept(HTTPS, now);
            self.accept(HTTP, now);
        }
    }

    // ----- wake-ups: finished checks, control, signals -------------------------

    fn on_wake(&mut self, now: Now) {
        while let Some(done) = self.shared.pool.poll_done() {
            let decision = self.shared.guard.complete(now, done.ticket, done.verdict);
            // The client may have gone; the guard has settled its side.
            if let Some(conn) = self.conns.get_mut(done.conn) {
                conn.on_verified(&mut self.shared, done.conn, now, done.ticket, decision);
                self.settle(done.conn);
            }
        }
        if self.control.reload.swap(false, Ordering::SeqCst) {
            self.reload();
        }
        if self.control.shutdown.swap(false, Ordering::SeqCst) {
            self.start_shutdown(now);
        }
    }

    fn on_signals(&mut self, now: Now) {
        let Some(signals) = &mut self.signals else {
            return;
        };
        let received: Vec<i32> = signals.pending().collect();
        for signal in received {
            match signal {
                SIGHUP => self.reload(),
                _ if self.shutdown_deadline.is_some() => {
                    log::notice(format_args!("second stop signal: exiting now"));
                    std::process::exit(1);
                }
                _ => self.start_shutdown(now),
            }
        }
    }

    /// Re-reads the password file; the sessions of removed or changed users
    /// end. A file that does not parse changes nothing.
    fn reload(&mut self) {
        let Some(path) = &self.users_path else {
            log::notice(format_args!(
                "reload: the demo user lives in memory; nothing to reload"
            ));
            return;
        };
        let file = match PasswdStore::new(path).load() {
            Ok(file) => file,
            Err(e) => {
                log::notice(format_args!(
                    "reload failed, keeping the users loaded before: {e}"
                ));
                return;
            }
        };
        let users = file.len();
        let Some(checker) = self
            .shared
            .guard
            .portal_mut()
            .checker_mut::<PasswordFileChecker>()
        else {
            return;
        };
        let diff = checker.replace_file(file);
        let ended: Vec<String> = diff.sessions_to_end().map(str::to_string).collect();
        for user in &ended {
            self.shared.guard.end_user_sessions(user);
        }
        log::notice(format_args!(
            "reloaded {}: {users} users ({} added, {} removed, {} changed)",
            path.display(),
            diff.added.len(),
            diff.removed.len(),
            diff.changed.len(),
        ));
    }

    fn start_shutdown(&mut self, now: Now) {
        if self.shutdown_deadline.is_some() {
            return;
        }
        self.shutdown_deadline = Some(now.mono + self.shutdown_timeout);
        for (listener, _) in [(self.https.take(), HTTPS), (self.http.take(), HTTP)] {
            if let Some(mut listener) = listener {
                let _ = self.poll.registry().deregister(&mut listener);
            }
        }
        log::notice(format_args!(
            "shutting down: {} connections finishing (at most {})",
            self.conns.len(),
            humantime::format_duration(self.shutdown_timeout)
        ));
        let keys: Vec<usize> = self.conns.iter().map(|(key, _)| key).collect();
        for key in keys {
            if let Some(conn) = self.conns.get_mut(key) {
                conn.close_when_done(&mut self.shared, key, now);
                self.settle(key);
            }
        }
    }

    fn finished(&self, now: Now) -> bool {
        match self.shutdown_deadline {
            None => false,
            Some(deadline) => self.conns.is_empty() || now.mono >= deadline,
        }
    }

    /// Once per pass: sweep sessions now and then, log the guard's events,
    /// hand bcrypt upgrades to the writer.
    fn housekeeping(&mut self, now: Now) {
        if now.mono >= self.next_sweep {
            self.shared.guard.sweep(now);
            self.next_sweep = now.mono + SWEEP_EVERY;
        }
        while let Some(event) = self.shared.guard.poll_event() {
            log::auth_event(now.wall, &event);
        }
        while let Some(upgrade) = self.shared.guard.poll_upgrade() {
            if let Some(writer) = &self.upgrades {
                let _ = writer.send(upgrade);
            }
        }
        self.control
            .sessions
            .store(self.shared.guard.session_count(), Ordering::SeqCst);
    }
}

/// Whether a rate-limited notice may be written now (and notes that it was).
fn once_a_second(last: &mut Option<Instant>, now: Now) -> bool {
    if last.is_some_and(|at| now.mono.duration_since(at) < Duration::from_secs(1)) {
        return false;
    }
    *last = Some(now.mono);
    true
}

/// A thread that writes bcrypt entries re-hashed at login back to the
/// password file, atomically and under its lock, off the event loop.
fn spawn_upgrade_writer(path: PathBuf) -> mpsc::Sender<PasswordUpgrade> {
    let (sender, receiver) = mpsc::channel::<PasswordUpgrade>();
    let spawned = std::thread::Builder::new()
        .name("passwd-upgrade".to_string())
        .spawn(move || {
            let store = PasswdStore::new(&path);
            for upgrade in receiver {
                let result =
                    store.edit(|file| Ok::<bool, std::convert::Infallible>(upgrade.apply(file)));
                match result {
                    Ok(true) => log::notice(format_args!(
                        "upgraded the password hash of {:?} to argon2id in {}",
                        upgrade.username,
                        path.display()
                    )),
                    // The line changed since the login: nothing to upgrade.
                    Ok(false) => {}
                    Err(EditFailure::Store(e)) => log::notice(format_args!(
                        "could not write the upgraded hash of {:?}: {e}",
                        upgrade.username
                    )),
                    Err(EditFailure::Refused(never)) => match never {},
                }
            }
        });
    if let Err(e) = spawned {
        log::notice(format_args!(
            "bcrypt upgrades will not be written back: {e}"
        ));
    }
    sender
}
