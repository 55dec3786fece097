//! `portcullis serve` settings: defaults, the TOML config file and the
//! command-line flags (flags override the file), checked into [`Settings`].
//!
//! # Where a value comes from
//!
//! For each setting the first of these that gives it wins:
//!
//! 1. a command-line flag (`--idle-timeout 1h`). `--public` may be repeated,
//!    and the flags' list replaces the file's list as a whole;
//! 2. the config file named by `--config FILE` (`idle-timeout = "1h"`);
//! 3. the default, given in the doc of each [`Settings`] field.
//!
//! # The config file
//!
//! TOML, one flat table of keys in kebab-case: the flags' names without the
//! leading `--` (`https`, `http`, `tls-cert`, `tls-key`, `users`, `root`,
//! `idle-timeout`, `absolute-timeout`, `public`, `demo`), plus keys that
//! have no flag (`site-name`, `secure-cookies`, `basic-realm`,
//! `trusted-proxies`, `max-connections`, `max-connections-per-client`,
//! `workers`, `verify-queue`, `verify-priority`, `handshake-timeout`,
//! `shutdown-timeout`,
//! `access-log`, `session-capacity`, and `bench-preload-sessions` for
//! benchmarks). An unknown key is an error, so a typo never passes
//! silently. A key that a flag overrides is still checked.
//!
//! ```toml
//! https = "0.0.0.0:443"
//! http = "0.0.0.0:80"          # redirects to https
//! tls-cert = "tls/fullchain.pem"
//! tls-key = "tls/privkey.pem"
//! users = "users.passwd"
//! root = "/srv/www"
//! idle-timeout = "20m"
//! public = ["/favicon.ico", "/static/"]
//! ```
//!
//! - **Paths** in the file are relative to the file's directory; paths in
//!   flags, and the default `users.passwd`, are relative to the working
//!   directory.
//! - **Addresses** are an IP address and a port: `"0.0.0.0:8443"`,
//!   `"[::]:8443"`, `"127.0.0.1:8443"` (no host names). Port 0 asks the
//!   system for a free port.
//! - **Durations** are strings with units: `"10s"`, `"30m"`, `"12h"`,
//!   `"1h 30m"`, `"7days"` (the humantime format), at most 366 days.
//! - **Numbers** are TOML integers, **switches** TOML booleans.
//!
//! # Errors
//!
//! [`load`] stops at the first problem and returns a [`ConfigError`] that
//! names the key and where its value came from: `FILE:LINE: …` for the
//! config file, the flag for the command line, `(default)` for a default.
//! `portcullis serve` and `check-config` print it and exit with status 2.

use std::fmt;
use std::fs;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::num::NonZeroUsize;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use portcullis_core::guard::paths::PublicPaths;
use portcullis_core::session::SessionConfig;
use serde::Deserialize;
use toml::{Spanned, Value};

/// Where the TLS certificate comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TlsSource {
    /// PEM files: the certificate chain and its private key.
    Files {
        /// `tls-cert`.
        cert: PathBuf,
        /// `tls-key`.
        key: PathBuf,
    },
    /// Demo mode: a self-signed certificate made at start.
    SelfSigned,
}

/// Where the users come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UsersSource {
    /// A password file (`portcullis passwd`).
    File(PathBuf),
    /// Demo mode: the user `fred` with a fresh random password.
    Demo,
}

/// Everything `portcullis serve` needs, checked.
///
/// Each field's doc names its config key and flag, its default and its
/// rules; a value that breaks a rule is refused with an error naming the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// The HTTPS listener (`https`, `--https ADDR`), if any.
    ///
    /// Default: `0.0.0.0:8443` when a certificate is given (`tls-cert` and
    /// `tls-key`), none without one; in demo mode `127.0.0.1:8443`. Setting
    /// it without a certificate is an error naming `tls-cert` (demo mode
    /// makes its own certificate). In demo mode it must be a loopback
    /// address. It must not overlap `http`.
    pub https: Option<SocketAddr>,
    /// The plain-HTTP listener (`http`, `--http ADDR`), if any: it redirects
    /// to HTTPS when there is an HTTPS listener, and serves the guard
    /// otherwise.
    ///
    /// Default: none when a certificate is given (set it to redirect plain
    /// HTTP to HTTPS); `0.0.0.0:8080` without a certificate (deployments
    /// behind a TLS-terminating proxy: the server warns at start that it
    /// serves plain HTTP); in demo mode `127.0.0.1:8080`, redirecting. In
    /// demo mode it must be a loopback address. It must not overlap `https`
    /// (the same address, or the same port on the same family where one of
    /// the two is the unspecified address `0.0.0.0`/`::`; port 0 never
    /// clashes).
    pub http: Option<SocketAddr>,
    /// Certificate and key; `Some` exactly when `https` is.
    ///
    /// `tls-cert` (`--tls-cert PEM`): the certificate chain, PEM.
    /// `tls-key` (`--tls-key PEM`): its private key, PEM. Both or neither:
    /// one without the other is an error naming the missing key. Each must
    /// be an existing file. Default: none; in demo mode a self-signed
    /// certificate made at start (its SHA-256 fingerprint is printed).
    pub tls: Option<TlsSource>,
    /// The users (`users`, `--users FILE`): a password file written by
    /// `portcullis passwd`. It must be an existing file.
    ///
    /// Default: `users.passwd` in the working directory (where
    /// `portcullis passwd` writes by default); in demo mode, unless set,
    /// the single user `fred` with a fresh password printed at start.
    pub users: UsersSource,
    /// The static site (`root`, `--root DIR`); `None` serves the built-in
    /// demo site. It must be an existing directory. Default: none (the
    /// built-in site), in demo mode too.
    pub root: Option<PathBuf>,
    /// Session idle timeout (`idle-timeout`, `--idle-timeout DUR`): a
    /// session unused this long ends. Default `30m`. More than zero, at most
    /// `absolute-timeout`.
    pub idle_timeout: Duration,
    /// Session absolute timeout (`absolute-timeout`, `--absolute-timeout
    /// DUR`): a session this old ends however busy. Default `12h`. More than
    /// zero, at least `idle-timeout`, at most 366 days.
    pub absolute_timeout: Duration,
    /// Paths anonymous visitors may fetch (`public`, an array of strings in
    /// the file; `--public PATH`, repeated, which replaces the file's list).
    /// An entry ending in `/` is a prefix (`/static/`), any other is exact
    /// (`/favicon.ico`). Each must begin with `/` and be in normal form (no
    /// `..`, `//`, `%2F`, `;`...). Default: none (every path needs a login).
    pub public: Vec<String>,
    /// Demo mode (`demo = true`, `--demo`): loopback listeners, a
    /// self-signed certificate, the user `fred`, the built-in site, each
    /// unless set. Default off.
    pub demo: bool,
    /// The name on the login page (`site-name`, file only). Default
    /// `Portcullis`. Not empty, no control characters, at most 200
    /// characters.
    pub site_name: String,
    /// Whether the session cookie is `__Host-`/`Secure` and guard pages send
    /// HSTS (`secure-cookies`, file only). Default `true`, also without TLS
    /// (behind a TLS-terminating proxy the browser still speaks HTTPS).
    /// Turn off only to use plain HTTP without TLS anywhere (testing):
    /// passwords and cookies then travel in clear.
    pub secure_cookies: bool,
    /// HTTP Basic for API clients (`basic-realm`, file only): the realm
    /// named in the challenge; off when `None`. Default off. Not empty, no
    /// control characters, at most 200 characters.
    pub basic_realm: Option<String>,
    /// Peers whose `X-Forwarded-For` names the client (`trusted-proxies`,
    /// file only: an array of IP addresses such as `["127.0.0.1", "::1"]`).
    /// Default: none (the client is the peer address).
    pub trusted_proxies: Vec<IpAddr>,
    /// Most open connections (`max-connections`, file only); more wait in
    /// the system's accept queue. Default 10000; from 1 to 1000000.
    pub max_connections: usize,
    /// Most open connections from one client address
    /// (`max-connections-per-client`, file only). Default 256; from 1 to
    /// 1000000.
    pub max_connections_per_client: usize,
    /// Password-check worker threads (`workers`, file only). Default: the
    /// number of CPUs, at most 8 (each check takes ~19 MiB and ~15 ms of
    /// CPU; more threads than cores add memory, not speed). From 1 to 256.
    pub workers: usize,
    /// Password checks that may wait for a worker (`verify-queue`, file
    /// only); more are answered 503 at once. Default 64; from 1 to 65536.
    pub verify_queue: usize,
    /// How password checks share the CPU (`verify-priority`, file only).
    /// Default `idle`.
    pub verify_priority: VerifyPriority,
    /// How long a TLS handshake may take (`handshake-timeout`, file only).
    /// Default `10s`; more than zero.
    pub handshake_timeout: Duration,
    /// How long a graceful shutdown waits for requests in flight
    /// (`shutdown-timeout`, file only). Default `10s`; `0s` closes at once.
    pub shutdown_timeout: Duration,
    /// One access-log line per request on stderr (`access-log`, file only).
    /// Default `true`.
    pub access_log: bool,
    /// Most sessions at once (`session-capacity`, file only): at the limit,
    /// a new login ends an expired session, else the least recently used
    /// one. Default 100000 (`SessionConfig::default()`); from 1 to
    /// 10000000. Each session takes about 160 bytes of memory.
    pub session_capacity: usize,
    /// For benchmarks only (`bench-preload-sessions`, file only): starts N
    /// sessions for synthetic users `bench-user-K` (64 per user) before
    /// listening, so that session-table size can be measured. Default 0; at
    /// most `session-capacity`.
    pub bench_preload_sessions: usize,
}

/// The default password file, relative to the working directory.
pub const DEFAULT_USERS_FILE: &str = "users.passwd";
/// The HTTPS listener when a certificate is given.
pub const DEFAULT_HTTPS: SocketAddr = v4([0, 0, 0, 0], 8443);
/// The plain-HTTP listener when no certificate is given.
pub const DEFAULT_HTTP: SocketAddr = v4([0, 0, 0, 0], 8080);
/// The demo mode's HTTPS listener.
pub const DEMO_HTTPS: SocketAddr = v4([127, 0, 0, 1], 8443);
/// The demo mode's plain-HTTP listener (it redirects to [`DEMO_HTTPS`]).
pub const DEMO_HTTP: SocketAddr = v4([127, 0, 0, 1], 8080);
/// The default `idle-timeout`.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// The default `absolute-timeout`.
pub const DEFAULT_ABSOLUTE_TIMEOUT: Duration = Duration::from_secs(12 * 60 * 60);
/// The longest duration accepted for any key: beyond it a deadline is
/// meaningless, and far beyond it `Instant` arithmetic would overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(366 * 24 * 60 * 60);
/// How password checks (argon2id: tens of milliseconds of CPU each) share
/// the CPU with the event loop and with the rest of the machine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum VerifyPriority {
    /// Only CPU time nothing else wants (Linux `SCHED_IDLE`; elsewhere as
    /// `low`): a login storm never delays pages, since the loop takes the
    /// CPU back the moment it wakes. On a machine kept busy by other work,
    /// checks wait until it has time to spare.
    #[default]
    Idle,
    /// The lowest nice value (19): checks get a small share of a busy
    /// machine, but may finish their time slice (milliseconds) before the
    /// loop runs again.
    Low,
    /// The same priority as the rest of the server.
    Normal,
}

/// The default `workers` is the number of CPUs, but at most this.
pub const DEFAULT_WORKERS_CAP: usize = 8;
/// The largest `session-capacity` (and `bench-preload-sessions`).
pub const MAX_SESSION_CAPACITY: usize = 10_000_000;

const fn v4(ip: [u8; 4], port: u16) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(
        Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3]),
        port,
    ))
}

/// The default `workers`: the number of CPUs, at least 1, at most
/// [`DEFAULT_WORKERS_CAP`].
#[must_use]
pub fn default_workers() -> usize {
    std::thread::available_parallelism()
        .map_or(1, NonZeroUsize::get)
        .clamp(1, DEFAULT_WORKERS_CAP)
}

/// The flags of `portcullis serve` and `portcullis check-config`. Each
/// overrides the config file's key of the same name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Args)]
pub struct ServeArgs {
    /// A TOML config file with these settings and more; flags override it.
    /// Relative paths in it are relative to its directory.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// The HTTPS listener, IP:PORT [default: 0.0.0.0:8443 with a
    /// certificate, none without; demo: 127.0.0.1:8443]
    #[arg(long, value_name = "ADDR")]
    pub https: Option<SocketAddr>,

    /// The plain-HTTP listener, IP:PORT: redirects to HTTPS, or serves the
    /// site when there is no certificate [default: none with a certificate,
    /// 0.0.0.0:8080 without; demo: 127.0.0.1:8080]
    #[arg(long, value_name = "ADDR")]
    pub http: Option<SocketAddr>,

    /// The certificate chain, a PEM file (needs --tls-key)
    #[arg(long, value_name = "PEM")]
    pub tls_cert: Option<PathBuf>,

    /// The certificate's private key, a PEM file (needs --tls-cert)
    #[arg(long, value_name = "PEM")]
    pub tls_key: Option<PathBuf>,

    /// The password file (see `portcullis passwd`) [default: users.passwd;
    /// demo: the user fred with a fresh password]
    #[arg(long, value_name = "FILE")]
    pub users: Option<PathBuf>,

    /// Serve the static files under DIR [default: the built-in site]
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,

    /// End a session unused this long, e.g. 30m [default: 30m]
    #[arg(long, value_name = "DUR", value_parser = humantime::parse_duration)]
    pub idle_timeout: Option<Duration>,

    /// End a session this old however busy, e.g. 12h [default: 12h]
    #[arg(long, value_name = "DUR", value_parser = humantime::parse_duration)]
    pub absolute_timeout: Option<Duration>,

    /// A path anonymous visitors may fetch: exact, or a prefix when it ends
    /// in / (repeat for more; replaces the config file's list)
    #[arg(long, value_name = "PATH")]
    pub public: Vec<String>,

    /// Demo mode: loopback only, a self-signed certificate, the user fred
    /// with a fresh password, the built-in site
    #[arg(long)]
    pub demo: bool,
}

/// A config file as read from disk, not yet parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigFile {
    /// The file's name as given; errors show it, and relative paths in the
    /// file are resolved against its directory.
    pub path: PathBuf,
    /// Its text.
    pub text: String,
}

impl ConfigFile {
    /// Reads `path`.
    pub fn read(path: &Path) -> Result<ConfigFile, ConfigError> {
        match fs::read_to_string(path) {
            Ok(text) => Ok(ConfigFile {
                path: path.to_path_buf(),
                text,
            }),
            Err(error) => Err(ConfigError::Read {
                path: path.to_path_buf(),
                error: error.to_string(),
            }),
        }
    }
}

/// Where a setting's value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The built-in default.
    Default,
    /// A command-line flag.
    Flag,
    /// The config file.
    File {
        /// The file's name as given.
        path: PathBuf,
        /// The line of the value, from 1.
        line: usize,
    },
}

/// A key, and where its value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setting {
    /// The config key, kebab-case (`idle-timeout`); the flag is `--` and the
    /// key.
    pub key: &'static str,
    /// Where the value came from.
    pub origin: Origin,
}

impl Setting {
    /// `FILE:LINE: ` when the value came from the config file, else empty.
    fn prefix(&self) -> String {
        match &self.origin {
            Origin::File { path, line } => format!("{}:{line}: ", path.display()),
            Origin::Default | Origin::Flag => String::new(),
        }
    }
}

/// Names the setting as its origin spells it: ``key `k` (line N)``,
/// ``flag `--k` ``, ``key `k` (default)``.
impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.origin {
            Origin::Default => write!(f, "key `{}` (default)", self.key),
            Origin::Flag => write!(f, "flag `--{}`", self.key),
            Origin::File { line, .. } => write!(f, "key `{}` (line {line})", self.key),
        }
    }
}

/// Why the settings were refused. Each names the key (or keys) at fault
/// and where the value came from; see the `Display` formats on each
/// variant. Nothing secret is ever in one (the settings hold no secrets).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// The config file cannot be read: `FILE: cannot read the config file:
    /// ERROR`.
    Read {
        /// The file's name as given.
        path: PathBuf,
        /// The system's reason.
        error: String,
    },
    /// The config file is not TOML, has an unknown or duplicate key:
    /// `FILE:LINE: MESSAGE` (for example ``site.toml:2: unknown field
    /// `idel-timeout`, expected one of `https`, …``).
    Syntax {
        /// The file's name as given.
        path: PathBuf,
        /// The line, from 1, when the parser knows it.
        line: Option<usize>,
        /// The parser's message.
        message: String,
    },
    /// One setting's value is wrong. From the file: ``FILE:LINE: key
    /// `idle-timeout`: invalid duration "3x": …``; from a flag: ``flag
    /// `--idle-timeout`: must be more than zero``; a default: ``key `users`
    /// (default): users.passwd does not exist…``.
    Invalid {
        /// The setting.
        setting: Setting,
        /// What is wrong with its value.
        message: String,
    },
    /// A setting needs another that is not set: ``[FILE:LINE: ]key
    /// `tls-key` is missing: flag `--tls-cert` needs it (…)``, the location
    /// being that of the setting that needs it.
    Missing {
        /// The missing key.
        key: &'static str,
        /// The setting that needs it.
        needed_by: Setting,
        /// Why, for the message.
        why: &'static str,
    },
    /// Two settings contradict each other: ``[FILE:LINE: ]key
    /// `idle-timeout` (line 3) and key `absolute-timeout` (default):
    /// MESSAGE``, the location being that of the first from the file.
    Conflict {
        /// The first setting.
        first: Setting,
        /// The second setting.
        second: Setting,
        /// What is wrong, naming the values.
        message: String,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Read { path, error } => {
                write!(
                    f,
                    "{}: cannot read the config file: {error}",
                    path.display()
                )
            }
            ConfigError::Syntax {
                path,
                line: Some(line),
                message,
            } => write!(f, "{}:{line}: {message}", path.display()),
            ConfigError::Syntax {
                path,
                line: None,
                message,
            } => write!(f, "{}: {message}", path.display()),
            ConfigError::Invalid { setting, message } => match &setting.origin {
                Origin::File { .. } => {
                    write!(f, "{}key `{}`: {message}", setting.prefix(), setting.key)
                }
                Origin::Flag | Origin::Default => write!(f, "{setting}: {message}"),
            },
            ConfigError::Missing {
                key,
                needed_by,
                why,
            } => write!(
                f,
                "{}key `{key}` is missing: {needed_by} {why}",
                needed_by.prefix()
            ),
            ConfigError::Conflict {
                first,
                second,
                message,
            } => {
                let prefix = match first.origin {
                    Origin::File { .. } => first.prefix(),
                    _ => second.prefix(),
                };
                write!(f, "{prefix}{first} and {second}: {message}")
            }
        }
    }
}

impl std::error::Error for ConfigError {}

/// Reads the config file `args.config` names, if any, and resolves the
/// settings with [`resolve`].
pub fn load(args: &ServeArgs) -> Result<Settings, ConfigError> {
    let file = match &args.config {
        Some(path) => Some(ConfigFile::read(path)?),
        None => None,
    };
    resolve(args, file.as_ref())
}

/// The settings from the flags over the config file over the defaults,
/// checked. The only disk access is checking that the files and the
/// directory named exist.
pub fn resolve(args: &ServeArgs, file: Option<&ConfigFile>) -> Result<Settings, ConfigError> {
    let layer = file.map(FileLayer::parse).transpose()?;
    let file = layer.as_ref();

    // Every value the file gives is converted first, even one a flag
    // overrides: a wrong file is wrong whatever the command line says.
    let demo = given(
        "demo",
        args.demo.then_some(true),
        file,
        |k| &k.demo,
        to_bool,
    )?;
    let https = given("https", args.https, file, |k| &k.https, to_addr)?;
    let http = given("http", args.http, file, |k| &k.http, to_addr)?;
    let cert = given(
        "tls-cert",
        args.tls_cert.clone(),
        file,
        |k| &k.tls_cert,
        to_path,
    )?;
    let key = given(
        "tls-key",
        args.tls_key.clone(),
        file,
        |k| &k.tls_key,
        to_path,
    )?;
    let users = given("users", args.users.clone(), file, |k| &k.users, to_path)?;
    let root = given("root", args.root.clone(), file, |k| &k.root, to_path)?;
    let idle = given(
        "idle-timeout",
        args.idle_timeout,
        file,
        |k| &k.idle_timeout,
        to_duration,
    )?;
    let absolute = given(
        "absolute-timeout",
        args.absolute_timeout,
        file,
        |k| &k.absolute_timeout,
        to_duration,
    )?;
    let flag_public = (!args.public.is_empty()).then(|| args.public.clone());
    let public = given("public", flag_public, file, |k| &k.public, to_strings)?;
    // The keys without a flag.
    let site_name = given("site-name", None, file, |k| &k.site_name, to_string)?;
    let secure_cookies = given("secure-cookies", None, file, |k| &k.secure_cookies, to_bool)?;
    let basic_realm = given("basic-realm", None, file, |k| &k.basic_realm, to_string)?;
    let proxies = given(
        "trusted-proxies",
        None,
        file,
        |k| &k.trusted_proxies,
        to_ips,
    )?;
    let max_conns = given(
        "max-connections",
        None,
        file,
        |k| &k.max_connections,
        to_integer,
    )?;
    let max_per_client = given(
        "max-connections-per-client",
        None,
        file,
        |k| &k.max_connections_per_client,
        to_integer,
    )?;
    let workers = given("workers", None, file, |k| &k.workers, to_integer)?;
    let verify_queue = given("verify-queue", None, file, |k| &k.verify_queue, to_integer)?;
    let verify_priority = given(
        "verify-priority",
        None,
        file,
        |k| &k.verify_priority,
        to_priority,
    )?;
    let handshake = given(
        "handshake-timeout",
        None,
        file,
        |k| &k.handshake_timeout,
        to_duration,
    )?;
    let shutdown = given(
        "shutdown-timeout",
        None,
        file,
        |k| &k.shutdown_timeout,
        to_duration,
    )?;
    let access_log = given("access-log", None, file, |k| &k.access_log, to_bool)?;
    let session_capacity = given(
        "session-capacity",
        None,
        file,
        |k| &k.session_capacity,
        to_integer,
    )?;
    let preload = given(
        "bench-preload-sessions",
        None,
        file,
        |k| &k.bench_preload_sessions,
        to_integer,
    )?;

    let demo = demo.is_some_and(|d| d.value);

    // The certificate: both files, or neither.
    let tls = match (cert, key) {
        (Some(cert), Some(key)) => {
            check_file(&cert)?;
            check_file(&key)?;
            Some(TlsSource::Files {
                cert: cert.value,
                key: key.value,
            })
        }
        (Some(cert), None) => {
            return Err(ConfigError::Missing {
                key: "tls-key",
                needed_by: cert.setting(),
                why: "needs it (a certificate takes both files)",
            });
        }
        (None, Some(key)) => {
            return Err(ConfigError::Missing {
                key: "tls-cert",
                needed_by: key.setting(),
                why: "needs it (a certificate takes both files)",
            });
        }
        (None, None) if demo => Some(TlsSource::SelfSigned),
        (None, None) => None,
    };

    // The listeners.
    let (https, http) = if demo {
        let https = https.unwrap_or_else(|| Given::default("https", DEMO_HTTPS));
        let http = http.unwrap_or_else(|| Given::default("http", DEMO_HTTP));
        check_loopback(&https)?;
        check_loopback(&http)?;
        (Some(https), Some(http))
    } else if tls.is_some() {
        let https = https.unwrap_or_else(|| Given::default("https", DEFAULT_HTTPS));
        (Some(https), http)
    } else {
        if let Some(https) = https {
            return Err(ConfigError::Missing {
                key: "tls-cert",
                needed_by: https.setting(),
                why: "needs a certificate (`tls-cert` and `tls-key`; or `demo` for a \
                      self-signed one)",
            });
        }
        let http = http.unwrap_or_else(|| Given::default("http", DEFAULT_HTTP));
        (None, Some(http))
    };
    if let (Some(a), Some(b)) = (&https, &http) {
        if overlap(a.value, b.value) {
            return Err(ConfigError::Conflict {
                first: a.setting(),
                second: b.setting(),
                message: format!(
                    "the listeners {} and {} would share a port; give each its own",
                    a.value, b.value
                ),
            });
        }
    }

    let users = match users {
        Some(file) => {
            check_file(&file)?;
            UsersSource::File(file.value)
        }
        None if demo => UsersSource::Demo,
        None => {
            let file = Given::default("users", PathBuf::from(DEFAULT_USERS_FILE));
            check_file(&file).map_err(|_| {
                file.invalid(format!(
                    "{DEFAULT_USERS_FILE} does not exist in the working directory: add a user \
                     with `portcullis passwd add USER`, or name the password file with `users`"
                ))
            })?;
            UsersSource::File(file.value)
        }
    };

    let root = match root {
        Some(dir) => {
            check_dir(&dir)?;
            Some(dir.value)
        }
        None => None,
    };

    // Session timeouts.
    let idle = idle.unwrap_or_else(|| Given::default("idle-timeout", DEFAULT_IDLE_TIMEOUT));
    let absolute =
        absolute.unwrap_or_else(|| Given::default("absolute-timeout", DEFAULT_ABSOLUTE_TIMEOUT));
    check_duration(&idle, false)?;
    check_duration(&absolute, false)?;
    if idle.value > absolute.value {
        return Err(ConfigError::Conflict {
            first: idle.setting(),
            second: absolute.setting(),
            message: format!(
                "the idle timeout ({}) must not exceed the absolute timeout ({})",
                humantime::format_duration(idle.value),
                humantime::format_duration(absolute.value)
            ),
        });
    }

    let public = match public {
        Some(list) => {
            for entry in &list.value {
                PublicPaths::new(std::slice::from_ref(entry))
                    .map_err(|error| list.invalid(error.to_string()))?;
            }
            list.value
        }
        None => Vec::new(),
    };

    let site_name = match site_name {
        Some(name) => {
            check_label(&name)?;
            name.value
        }
        None => "Portcullis".to_string(),
    };
    let basic_realm = match basic_realm {
        Some(realm) => {
            check_label(&realm)?;
            Some(realm.value)
        }
        None => None,
    };

    let handshake =
        handshake.unwrap_or_else(|| Given::default("handshake-timeout", Duration::from_secs(10)));
    check_duration(&handshake, false)?;
    let shutdown =
        shutdown.unwrap_or_else(|| Given::default("shutdown-timeout", Duration::from_secs(10)));
    check_duration(&shutdown, true)?;

    // The session store, and the benchmark's sessions that must fit in it.
    let capacity_setting = session_capacity.as_ref().map_or(
        Setting {
            key: "session-capacity",
            origin: Origin::Default,
        },
        Given::setting,
    );
    let session_capacity = count(
        session_capacity,
        SessionConfig::default().capacity,
        MAX_SESSION_CAPACITY,
    )?;
    let bench_preload_sessions = match preload {
        Some(preload) => {
            let setting = preload.setting();
            let n = count_from(Some(preload), 0, 0, MAX_SESSION_CAPACITY)?;
            if n > session_capacity {
                return Err(ConfigError::Conflict {
                    first: setting,
                    second: capacity_setting,
                    message: format!(
                        "{n} preloaded sessions do not fit in a session capacity of \
                         {session_capacity}"
                    ),
                });
            }
            n
        }
        None => 0,
    };

    Ok(Settings {
        https: https.map(|a| a.value),
        http: http.map(|a| a.value),
        tls,
        users,
        root,
        idle_timeout: idle.value,
        absolute_timeout: absolute.value,
        public,
        demo,
        site_name,
        secure_cookies: secure_cookies.is_none_or(|s| s.value),
        basic_realm,
        trusted_proxies: proxies.map_or_else(Vec::new, |p| p.value),
        max_connections: count(max_conns, 10_000, 1_000_000)?,
        max_connections_per_client: count(max_per_client, 256, 1_000_000)?,
        workers: count(workers, default_workers(), 256)?,
        verify_queue: count(verify_queue, 64, 65_536)?,
        verify_priority: verify_priority.map_or(VerifyPriority::default(), |p| p.value),
        handshake_timeout: handshake.value,
        shutdown_timeout: shutdown.value,
        access_log: access_log.is_none_or(|a| a.value),
        session_capacity,
        bench_preload_sessions,
    })
}

/// The config file's keys, each with the span of its value. Every type is
/// checked by hand afterwards, so that each error can name its key.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileKeys {
    https: Option<Spanned<Value>>,
    http: Option<Spanned<Value>>,
    tls_cert: Option<Spanned<Value>>,
    tls_key: Option<Spanned<Value>>,
    users: Option<Spanned<Value>>,
    root: Option<Spanned<Value>>,
    idle_timeout: Option<Spanned<Value>>,
    absolute_timeout: Option<Spanned<Value>>,
    public: Option<Spanned<Value>>,
    demo: Option<Spanned<Value>>,
    site_name: Option<Spanned<Value>>,
    secure_cookies: Option<Spanned<Value>>,
    basic_realm: Option<Spanned<Value>>,
    trusted_proxies: Option<Spanned<Value>>,
    max_connections: Option<Spanned<Value>>,
    max_connections_per_client: Option<Spanned<Value>>,
    workers: Option<Spanned<Value>>,
    verify_queue: Option<Spanned<Value>>,
    verify_priority: Option<Spanned<Value>>,
    handshake_timeout: Option<Spanned<Value>>,
    shutdown_timeout: Option<Spanned<Value>>,
    access_log: Option<Spanned<Value>>,
    session_capacity: Option<Spanned<Value>>,
    bench_preload_sessions: Option<Spanned<Value>>,
}

/// A parsed config file.
struct FileLayer<'a> {
    file: &'a ConfigFile,
    /// The directory relative paths in the file are relative to (empty
    /// for a file in the working directory, which `join` treats as `.`).
    dir: &'a Path,
    keys: FileKeys,
}

impl<'a> FileLayer<'a> {
    fn parse(file: &'a ConfigFile) -> Result<FileLayer<'a>, ConfigError> {
        let keys = toml::from_str::<FileKeys>(&file.text).map_err(|error| ConfigError::Syntax {
            path: file.path.clone(),
            line: error.span().map(|span| line_of(&file.text, span.start)),
            message: error.message().to_string(),
        })?;
        Ok(FileLayer {
            file,
            dir: file.path.parent().unwrap_or(Path::new("")),
            keys,
        })
    }

    fn origin(&self, span: Range<usize>) -> Origin {
        Origin::File {
            path: self.file.path.clone(),
            line: line_of(&self.file.text, span.start),
        }
    }
}

/// The line (from 1) of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    let before = text.as_bytes().get(..offset).unwrap_or(text.as_bytes());
    before.iter().filter(|&&b| b == b'\n').count() + 1
}

/// A value and where it came from.
struct Given<T> {
    key: &'static str,
    value: T,
    origin: Origin,
}

impl<T> Given<T> {
    fn default(key: &'static str, value: T) -> Given<T> {
        Given {
            key,
            value,
            origin: Origin::Default,
        }
    }

    fn setting(&self) -> Setting {
        Setting {
            key: self.key,
            origin: self.origin.clone(),
        }
    }

    fn invalid(&self, message: String) -> ConfigError {
        ConfigError::Invalid {
            setting: self.setting(),
            message,
        }
    }
}

/// `key`'s value: the flag's if given, else the file's (converted by
/// `convert`, which gets the file's directory), else `None`. The file's
/// value is converted even when the flag overrides it.
fn given<T>(
    key: &'static str,
    flag: Option<T>,
    file: Option<&FileLayer<'_>>,
    field: fn(&FileKeys) -> &Option<Spanned<Value>>,
    convert: fn(&Value, &Path) -> Result<T, String>,
) -> Result<Option<Given<T>>, ConfigError> {
    let from_file = match file.and_then(|f| field(&f.keys).as_ref().map(|v| (f, v))) {
        Some((layer, spanned)) => {
            let origin = layer.origin(spanned.span());
            match convert(spanned.get_ref(), layer.dir) {
                Ok(value) => Some(Given { key, value, origin }),
                Err(message) => {
                    return Err(ConfigError::Invalid {
                        setting: Setting { key, origin },
                        message,
                    });
                }
            }
        }
        None => None,
    };
    Ok(match flag {
        Some(value) => Some(Given {
            key,
            value,
            origin: Origin::Flag,
        }),
        None => from_file,
    })
}

fn expected(what: &str, found: &Value) -> String {
    format!(
        "expected {what}, found {} {found}",
        article(found.type_str())
    )
}

fn article(type_name: &str) -> String {
    match type_name.as_bytes().first() {
        Some(b'a' | b'e' | b'i' | b'o' | b'u') => format!("an {type_name}"),
        _ => format!("a {type_name}"),
    }
}

fn to_bool(value: &Value, _: &Path) -> Result<bool, String> {
    match value {
        Value::Boolean(b) => Ok(*b),
        other => Err(expected("true or false", other)),
    }
}

fn to_string(value: &Value, _: &Path) -> Result<String, String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        other => Err(expected("a string", other)),
    }
}

fn to_priority(value: &Value, dir: &Path) -> Result<VerifyPriority, String> {
    match to_string(value, dir).as_deref() {
        Ok("idle") => Ok(VerifyPriority::Idle),
        Ok("low") => Ok(VerifyPriority::Low),
        Ok("normal") => Ok(VerifyPriority::Normal),
        _ => Err(expected("\"idle\", \"low\" or \"normal\"", value)),
    }
}

fn to_integer(value: &Value, _: &Path) -> Result<i64, String> {
    match value {
        Value::Integer(n) => Ok(*n),
        other => Err(expected("a whole number", other)),
    }
}

fn to_addr(value: &Value, dir: &Path) -> Result<SocketAddr, String> {
    let text = to_string(value, dir)
        .map_err(|_| expected("an address string such as \"0.0.0.0:8443\"", value))?;
    text.parse().map_err(|_| {
        format!(
            "invalid address {text:?}: expected an IP address and a port, such as \
             \"0.0.0.0:8443\" or \"[::1]:8443\""
        )
    })
}

fn to_path(value: &Value, dir: &Path) -> Result<PathBuf, String> {
    let text = to_string(value, dir).map_err(|_| expected("a path string", value))?;
    if text.is_empty() {
        return Err("the path is empty".to_string());
    }
    // `join` keeps an absolute path as it is.
    Ok(dir.join(text))
}

fn to_duration(value: &Value, dir: &Path) -> Result<Duration, String> {
    let text =
        to_string(value, dir).map_err(|_| expected("a duration string such as \"30m\"", value))?;
    humantime::parse_duration(&text).map_err(|error| format!("invalid duration {text:?}: {error}"))
}

fn to_strings(value: &Value, dir: &Path) -> Result<Vec<String>, String> {
    const WHAT: &str = "an array of strings such as [\"/favicon.ico\"]";
    match value {
        Value::Array(items) => items
            .iter()
            .map(|item| to_string(item, dir).map_err(|_| expected(WHAT, item)))
            .collect(),
        other => Err(expected(WHAT, other)),
    }
}

fn to_ips(value: &Value, dir: &Path) -> Result<Vec<IpAddr>, String> {
    to_strings(value, dir)
        .map_err(|_| expected("an array of IP addresses such as [\"127.0.0.1\"]", value))?
        .iter()
        .map(|text| {
            text.parse()
                .map_err(|_| format!("invalid IP address {text:?}"))
        })
        .collect()
}

/// The path exists and is a file (or a link to one).
fn check_file(path: &Given<PathBuf>) -> Result<(), ConfigError> {
    match fs::metadata(&path.value) {
        Ok(meta) if meta.is_file() => Ok(()),
        Ok(meta) if meta.is_dir() => Err(path.invalid(format!(
            "{} is a directory, not a file",
            path.value.display()
        ))),
        Ok(_) => Err(path.invalid(format!("{} is not a regular file", path.value.display()))),
        Err(error) => Err(path.invalid(describe_io(&path.value, &error))),
    }
}

/// The path exists and is a directory (or a link to one).
fn check_dir(path: &Given<PathBuf>) -> Result<(), ConfigError> {
    match fs::metadata(&path.value) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(path.invalid(format!("{} is not a directory", path.value.display()))),
        Err(error) => Err(path.invalid(describe_io(&path.value, &error))),
    }
}

fn describe_io(path: &Path, error: &io::Error) -> String {
    if error.kind() == io::ErrorKind::NotFound {
        format!("{} does not exist", path.display())
    } else {
        format!("{}: {error}", path.display())
    }
}

fn check_loopback(addr: &Given<SocketAddr>) -> Result<(), ConfigError> {
    if addr.value.ip().to_canonical().is_loopback() {
        Ok(())
    } else {
        Err(addr.invalid(format!(
            "demo mode binds loopback only: {} is not a loopback address (use 127.0.0.1 or \
             [::1], or leave demo mode)",
            addr.value
        )))
    }
}

/// Whether binding both would clash: the same port (other than 0, which
/// asks for any free port) on the same address, or on the same family when
/// either is the unspecified address.
fn overlap(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port()
        && a.port() != 0
        && (a.ip() == b.ip()
            || (a.is_ipv4() == b.is_ipv4() && (a.ip().is_unspecified() || b.ip().is_unspecified())))
}

fn check_duration(duration: &Given<Duration>, zero_allowed: bool) -> Result<(), ConfigError> {
    if duration.value.is_zero() && !zero_allowed {
        Err(duration.invalid("must be more than zero".to_string()))
    } else if duration.value > MAX_DURATION {
        Err(duration.invalid("must be at most 366 days".to_string()))
    } else {
        Ok(())
    }
}

/// A name shown to people (`site-name`, `basic-realm`).
fn check_label(label: &Given<String>) -> Result<(), ConfigError> {
    let chars = label.value.chars().count();
    if chars == 0 {
        Err(label.invalid("must not be empty".to_string()))
    } else if chars > 200 {
        Err(label.invalid(format!("is {chars} characters long: at most 200")))
    } else if label.value.chars().any(char::is_control) {
        Err(label.invalid("must not contain control characters".to_string()))
    } else {
        Ok(())
    }
}

/// A count from the file, in `1..=max`, or `default`.
fn count(value: Option<Given<i64>>, default: usize, max: usize) -> Result<usize, ConfigError> {
    count_from(value, default, 1, max)
}

/// A count from the file, in `min..=max`, or `default`.
fn count_from(
    value: Option<Given<i64>>,
    default: usize,
    min: usize,
    max: usize,
) -> Result<usize, ConfigError> {
    let Some(value) = value else {
        return Ok(default);
    };
    match usize::try_from(value.value) {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(value.invalid(format!(
            "{} is out of range: from {min} to {max}",
            value.value
        ))),
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv6Addr;

    use clap::Parser;

    use super::*;

    /// The flags, parsed as clap parses them.
    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        args: ServeArgs,
    }

    fn flags(args: &[&str]) -> ServeArgs {
        let argv = std::iter::once("serve").chain(args.iter().copied());
        Flags::try_parse_from(argv).unwrap().args
    }

    /// A config file that is never read from disk.
    fn file(text: &str) -> ConfigFile {
        ConfigFile {
            path: PathBuf::from("/etc/portcullis/site.toml"),
            text: text.to_string(),
        }
    }

    fn refused(args: &ServeArgs, file: Option<&ConfigFile>) -> String {
        match resolve(args, file) {
            Ok(settings) => panic!("accepted: {settings:?}"),
            Err(error) => error.to_string(),
        }
    }

    /// A scratch directory holding a certificate, a key, a password file
    /// and a site directory, all empty: only their existence is checked.
    struct Scratch {
        dir: tempfile::TempDir,
    }

    impl Scratch {
        fn new() -> Scratch {
            let dir = tempfile::tempdir().unwrap();
            for name in ["cert.pem", "key.pem", "users.passwd"] {
                fs::write(dir.path().join(name), "").unwrap();
            }
            fs::create_dir(dir.path().join("site")).unwrap();
            Scratch { dir }
        }

        fn path(&self, name: &str) -> PathBuf {
            self.dir.path().join(name)
        }

        fn arg(&self, name: &str) -> String {
            self.path(name).to_str().unwrap().to_string()
        }

        /// A config file `site.toml` in the scratch directory.
        fn config(&self, text: &str) -> ConfigFile {
            let path = self.path("site.toml");
            fs::write(&path, text).unwrap();
            ConfigFile::read(&path).unwrap()
        }
    }

    #[test]
    fn demo_mode_alone_is_a_complete_loopback_server() {
        let settings = resolve(&flags(&["--demo"]), None).unwrap();
        assert_eq!(
            settings,
            Settings {
                https: Some("127.0.0.1:8443".parse().unwrap()),
                http: Some("127.0.0.1:8080".parse().unwrap()),
                tls: Some(TlsSource::SelfSigned),
                users: UsersSource::Demo,
                root: None,
                idle_timeout: Duration::from_secs(30 * 60),
                absolute_timeout: Duration::from_secs(12 * 3600),
                public: vec![],
                demo: true,
                site_name: "Portcullis".to_string(),
                secure_cookies: true,
                basic_realm: None,
                trusted_proxies: vec![],
                max_connections: 10_000,
                max_connections_per_client: 256,
                workers: default_workers(),
                verify_queue: 64,
                verify_priority: VerifyPriority::Idle,
                handshake_timeout: Duration::from_secs(10),
                shutdown_timeout: Duration::from_secs(10),
                access_log: true,
                session_capacity: 100_000,
                bench_preload_sessions: 0,
            }
        );
        // The same from the file.
        let from_file = resolve(&ServeArgs::default(), Some(&file("demo = true\n"))).unwrap();
        assert_eq!(from_file, settings);
    }

    #[test]
    fn default_workers_follow_the_cpus_within_bounds() {
        let workers = default_workers();
        assert!((1..=DEFAULT_WORKERS_CAP).contains(&workers), "{workers}");
        let cpus = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
        assert_eq!(workers, cpus.min(DEFAULT_WORKERS_CAP));
    }

    #[test]
    fn demo_mode_keeps_what_is_given_explicitly() {
        let scratch = Scratch::new();
        let args = flags(&[
            "--demo",
            "--tls-cert",
            &scratch.arg("cert.pem"),
            "--tls-key",
            &scratch.arg("key.pem"),
            "--users",
            &scratch.arg("users.passwd"),
            "--root",
            &scratch.arg("site"),
            "--https",
            "[::1]:9443",
            "--http",
            "127.0.0.2:9080",
        ]);
        let settings = resolve(&args, None).unwrap();
        assert_eq!(
            settings.tls,
            Some(TlsSource::Files {
                cert: scratch.path("cert.pem"),
                key: scratch.path("key.pem"),
            })
        );
        assert_eq!(
            settings.users,
            UsersSource::File(scratch.path("users.passwd"))
        );
        assert_eq!(settings.root, Some(scratch.path("site")));
        assert_eq!(
            settings.https,
            Some(SocketAddr::new(Ipv6Addr::LOCALHOST.into(), 9443))
        );
        assert_eq!(settings.http, Some("127.0.0.2:9080".parse().unwrap()));
    }

    #[test]
    fn demo_mode_refuses_to_listen_beyond_loopback() {
        let error = refused(&flags(&["--demo", "--https", "0.0.0.0:8443"]), None);
        assert_eq!(
            error,
            "flag `--https`: demo mode binds loopback only: 0.0.0.0:8443 is not a loopback \
             address (use 127.0.0.1 or [::1], or leave demo mode)"
        );
        // From the file, with its line; the demo switch itself may come from
        // either place.
        let config = file("demo = true\n\nhttp = \"192.168.1.5:80\"\n");
        let error = refused(&ServeArgs::default(), Some(&config));
        assert!(
            error.starts_with(
                "/etc/portcullis/site.toml:3: key `http`: demo mode binds loopback only"
            ),
            "{error}"
        );
        let config = file("http = \"[::]:8080\"\n");
        let error = refused(&flags(&["--demo"]), Some(&config));
        assert!(
            error.starts_with("/etc/portcullis/site.toml:1: key `http`: demo mode binds"),
            "{error}"
        );
        // An IPv4-mapped loopback address is loopback.
        let mapped = flags(&["--demo", "--https", "[::ffff:127.0.0.1]:8443"]);
        assert!(resolve(&mapped, None).is_ok());
    }

    #[test]
    fn with_a_certificate_https_listens_everywhere_and_plain_http_is_off() {
        let scratch = Scratch::new();
        let args = flags(&[
            "--tls-cert",
            &scratch.arg("cert.pem"),
            "--tls-key",
            &scratch.arg("key.pem"),
            "--users",
            &scratch.arg("users.passwd"),
        ]);
        let settings = resolve(&args, None).unwrap();
        assert_eq!(settings.https, Some("0.0.0.0:8443".parse().unwrap()));
        assert_eq!(settings.http, None);
        assert!(!settings.demo);
        assert_eq!(settings.root, None);

        // The redirect listener is there when asked for.
        let mut with_http = args.clone();
        with_http.http = Some("0.0.0.0:80".parse().unwrap());
        let settings = resolve(&with_http, None).unwrap();
        assert_eq!(settings.http, Some("0.0.0.0:80".parse().unwrap()));
    }

    #[test]
    fn without_a_certificate_only_plain_http_listens() {
        let scratch = Scratch::new();
        let args = flags(&["--users", &scratch.arg("users.passwd")]);
        let settings = resolve(&args, None).unwrap();
        assert_eq!(settings.https, None);
        assert_eq!(settings.tls, None);
        assert_eq!(settings.http, Some("0.0.0.0:8080".parse().unwrap()));
        // Secure cookies stay on: behind a TLS-terminating proxy the browser
        // still speaks HTTPS.
        assert!(settings.secure_cookies);
    }

    #[test]
    fn https_without_a_certificate_names_the_certificate() {
        let scratch = Scratch::new();
        let args = flags(&[
            "--users",
            &scratch.arg("users.passwd"),
            "--https",
            "0.0.0.0:443",
        ]);
        assert_eq!(
            refused(&args, None),
            "key `tls-cert` is missing: flag `--https` needs a certificate (`tls-cert` and \
             `tls-key`; or `demo` for a self-signed one)"
        );
        let error = refused(
            &ServeArgs::default(),
            Some(&file("https = \"0.0.0.0:443\"\n")),
        );
        assert!(
            error.starts_with(
                "/etc/portcullis/site.toml:1: key `tls-cert` is missing: key `https` (line 1)"
            ),
            "{error}"
        );
    }

    #[test]
    fn half_a_certificate_names_the_missing_half() {
        let scratch = Scratch::new();
        let cert_only = flags(&["--tls-cert", &scratch.arg("cert.pem")]);
        assert_eq!(
            refused(&cert_only, None),
            "key `tls-key` is missing: flag `--tls-cert` needs it (a certificate takes both files)"
        );
        let key_only = file("# keys\ntls-key = \"key.pem\"\n");
        assert_eq!(
            refused(&ServeArgs::default(), Some(&key_only)),
            "/etc/portcullis/site.toml:2: key `tls-cert` is missing: key `tls-key` (line 2) \
             needs it (a certificate takes both files)"
        );
        // Demo mode does not change the rule.
        let demo = flags(&["--demo", "--tls-key", &scratch.arg("key.pem")]);
        assert!(refused(&demo, None).starts_with("key `tls-cert` is missing"));
    }

    #[test]
    fn named_files_and_the_root_must_exist_and_be_what_they_say() {
        let scratch = Scratch::new();
        let users = scratch.arg("users.passwd");
        let missing = scratch.path("nope.pem");
        let args = flags(&[
            "--users",
            &users,
            "--tls-cert",
            missing.to_str().unwrap(),
            "--tls-key",
            &scratch.arg("key.pem"),
        ]);
        assert_eq!(
            refused(&args, None),
            format!("flag `--tls-cert`: {} does not exist", missing.display())
        );

        let args = flags(&["--users", &scratch.arg("site")]);
        assert_eq!(
            refused(&args, None),
            format!(
                "flag `--users`: {} is a directory, not a file",
                scratch.path("site").display()
            )
        );

        let config = scratch.config("users = \"users.passwd\"\nroot = \"cert.pem\"\n");
        assert_eq!(
            refused(&ServeArgs::default(), Some(&config)),
            format!(
                "{}:2: key `root`: {} is not a directory",
                scratch.path("site.toml").display(),
                scratch.path("cert.pem").display()
            )
        );

        let config = scratch.config("users = \"users.passwd\"\nroot = \"gone\"\n");
        let error = refused(&ServeArgs::default(), Some(&config));
        assert!(error.ends_with("gone does not exist"), "{error}");
        assert!(error.contains(":2: key `root`: "), "{error}");
    }

    #[test]
    fn the_default_password_file_is_in_the_working_directory() {
        // Tests run in the package directory, which has no users.passwd.
        assert!(!Path::new(DEFAULT_USERS_FILE).exists());
        assert_eq!(
            refused(&ServeArgs::default(), None),
            "key `users` (default): users.passwd does not exist in the working directory: add a \
             user with `portcullis passwd add USER`, or name the password file with `users`"
        );
    }

    #[test]
    fn relative_paths_in_the_file_are_relative_to_its_directory() {
        let scratch = Scratch::new();
        fs::create_dir(scratch.path("conf")).unwrap();
        fs::create_dir(scratch.path("conf/tls")).unwrap();
        fs::write(scratch.path("conf/tls/cert.pem"), "").unwrap();
        let config_path = scratch.path("conf/site.toml");
        fs::write(
            &config_path,
            format!(
                "tls-cert = \"tls/cert.pem\"\n\
                 tls-key = \"../key.pem\"\n\
                 users = {:?}\n\
                 root = \"../site\"\n",
                scratch.arg("users.passwd")
            ),
        )
        .unwrap();
        let config = ConfigFile::read(&config_path).unwrap();
        let settings = resolve(&ServeArgs::default(), Some(&config)).unwrap();
        assert_eq!(
            settings.tls,
            Some(TlsSource::Files {
                cert: scratch.path("conf/tls/cert.pem"),
                key: scratch.path("conf/../key.pem"),
            })
        );
        // An absolute path stays as it is.
        assert_eq!(
            settings.users,
            UsersSource::File(scratch.path("users.passwd"))
        );
        assert_eq!(settings.root, Some(scratch.path("conf/../site")));
    }

    #[test]
    fn relative_paths_in_flags_are_relative_to_the_working_directory() {
        // Tests run in the package directory, which has `src/`; the file's
        // directory plays no part for a flag.
        let args = flags(&["--demo", "--root", "src"]);
        let config = file("root = \"elsewhere\"\n");
        let settings = resolve(&args, Some(&config)).unwrap();
        assert_eq!(settings.root, Some(PathBuf::from("src")));
    }

    #[test]
    fn flags_override_the_file() {
        let config = file(
            "idle-timeout = \"1h\"\n\
             absolute-timeout = \"2h\"\n\
             public = [\"/favicon.ico\", \"/static/\"]\n\
             https = \"127.0.0.1:9443\"\n",
        );
        // The file alone.
        let settings = resolve(&flags(&["--demo"]), Some(&config)).unwrap();
        assert_eq!(settings.idle_timeout, Duration::from_secs(3600));
        assert_eq!(settings.absolute_timeout, Duration::from_secs(7200));
        assert_eq!(settings.public, ["/favicon.ico", "/static/"]);
        assert_eq!(settings.https, Some("127.0.0.1:9443".parse().unwrap()));

        // Flags win, and `--public` replaces the whole list.
        let args = flags(&[
            "--demo",
            "--idle-timeout",
            "90m",
            "--public",
            "/robots.txt",
            "--https",
            "127.0.0.1:10443",
        ]);
        let settings = resolve(&args, Some(&config)).unwrap();
        assert_eq!(settings.idle_timeout, Duration::from_secs(90 * 60));
        assert_eq!(settings.absolute_timeout, Duration::from_secs(7200));
        assert_eq!(settings.public, ["/robots.txt"]);
        assert_eq!(settings.https, Some("127.0.0.1:10443".parse().unwrap()));
    }

    #[test]
    fn a_bad_value_in_the_file_is_refused_even_when_a_flag_overrides_it() {
        let config = file("\n\nidle-timeout = \"3x\"\n");
        let error = refused(&flags(&["--demo", "--idle-timeout", "5m"]), Some(&config));
        assert!(
            error.starts_with(
                "/etc/portcullis/site.toml:3: key `idle-timeout`: invalid duration \"3x\": "
            ),
            "{error}"
        );
    }

    #[test]
    fn durations_must_be_positive_bounded_and_idle_within_absolute() {
        let demo = flags(&["--demo"]);
        let error = refused(&demo, Some(&file("absolute-timeout = \"0s\"\n")));
        assert_eq!(
            error,
            "/etc/portcullis/site.toml:1: key `absolute-timeout`: must be more than zero"
        );
        let error = refused(&flags(&["--demo", "--idle-timeout", "0s"]), None);
        assert_eq!(error, "flag `--idle-timeout`: must be more than zero");
        let error = refused(&demo, Some(&file("handshake-timeout = \"0s\"\n")));
        assert!(
            error.contains(":1: key `handshake-timeout`: must be more"),
            "{error}"
        );
        let error = refused(&demo, Some(&file("absolute-timeout = \"400days\"\n")));
        assert_eq!(
            error,
            "/etc/portcullis/site.toml:1: key `absolute-timeout`: must be at most 366 days"
        );
        let error = refused(&demo, Some(&file("idle-timeout = 1800\n")));
        assert_eq!(
            error,
            "/etc/portcullis/site.toml:1: key `idle-timeout`: expected a duration string such \
             as \"30m\", found an integer 1800"
        );

        // A shutdown that does not wait is a choice, not a mistake.
        let settings = resolve(&demo, Some(&file("shutdown-timeout = \"0s\"\n"))).unwrap();
        assert_eq!(settings.shutdown_timeout, Duration::ZERO);

        // Idle beyond absolute: both keys named, with where each came from.
        let error = refused(&demo, Some(&file("\nidle-timeout = \"13h\"\n")));
        assert_eq!(
            error,
            "/etc/portcullis/site.toml:2: key `idle-timeout` (line 2) and key `absolute-timeout` \
             (default): the idle timeout (13h) must not exceed the absolute timeout (12h)"
        );
        let error = refused(
            &flags(&["--demo", "--absolute-timeout", "10m"]),
            Some(&file("idle-timeout = \"20m\"\n")),
        );
        assert_eq!(
            error,
            "/etc/portcullis/site.toml:1: key `idle-timeout` (line 1) and flag \
             `--absolute-timeout`: the idle timeout (20m) must not exceed the absolute timeout \
             (10m)"
        );
        // Equal is fine.
        let equal = flags(&["--demo", "--idle-timeout", "1h", "--absolute-timeout", "1h"]);
        assert!(resolve(&equal, None).is_ok());
    }

    #[test]
    fn an_unknown_key_is_named_with_its_line() {
        let config = file("demo = true\nidel-timeout = \"1h\"\n");
        let error = refused(&ServeArgs::default(), Some(&config));
        assert!(
            error.starts_with("/etc/portcullis/site.toml:2: unknown field `idel-timeout`"),
            "{error}"
        );
        // The message lists the real keys, so the typo is easy to fix.
        assert!(error.contains("`idle-timeout`"), "{error}");
        // A table is an unknown key too: the file is flat.
        let error = refused(
            &ServeArgs::default(),
            Some(&file("[server]\nhttps = \"x\"\n")),
        );
        assert!(
            error.starts_with("/etc/portcullis/site.toml:1: unknown field `server`"),
            "{error}"
        );
    }

    #[test]
    fn broken_toml_is_refused_with_its_line() {
        let error = refused(
            &ServeArgs::default(),
            Some(&file("demo = true\nusers = \n")),
        );
        assert!(
            error.starts_with("/etc/portcullis/site.toml:2: "),
            "{error}"
        );
        let error = refused(
            &ServeArgs::default(),
            Some(&file("demo = true\ndemo = false\n")),
        );
        assert!(
            error.starts_with("/etc/portcullis/site.toml:2: "),
            "{error}"
        );
        assert!(error.contains("duplicate"), "{error}");
    }

    #[test]
    fn wrong_types_name_the_key_and_line() {
        let demo = flags(&["--demo"]);
        for (text, expected) in [
            (
                "workers = \"4\"",
                "key `workers`: expected a whole number, found a string \"4\"",
            ),
            (
                "verify-priority = \"lowest\"",
                "key `verify-priority`: expected \"idle\", \"low\" or \"normal\", found a string \
                 \"lowest\"",
            ),
            (
                "demo = \"yes\"",
                "key `demo`: expected true or false, found a string \"yes\"",
            ),
            (
                "public = \"/static/\"",
                "key `public`: expected an array of strings such as [\"/favicon.ico\"], found a \
                 string \"/static/\"",
            ),
            (
                "public = [\"/a\", 1]",
                "key `public`: expected an array of strings such as [\"/favicon.ico\"], found an \
                 integer 1",
            ),
            (
                "https = 8443",
                "key `https`: expected an address string such as \"0.0.0.0:8443\", found an \
                 integer 8443",
            ),
            (
                "https = \"localhost:8443\"",
                "key `https`: invalid address \"localhost:8443\": expected an IP address and a \
                 port, such as \"0.0.0.0:8443\" or \"[::1]:8443\"",
            ),
            ("root = \"\"", "key `root`: the path is empty"),
            (
                "trusted-proxies = [\"10.0.0.x\"]",
                "key `trusted-proxies`: invalid IP address \"10.0.0.x\"",
            ),
            (
                "site-name = 7",
                "key `site-name`: expected a string, found an integer 7",
            ),
        ] {
            let config = file(&format!("# line 1\n{text}\n"));
            assert_eq!(
                refused(&demo, Some(&config)),
                format!("/etc/portcullis/site.toml:2: {expected}"),
                "{text}"
            );
        }
    }

    #[test]
    fn public_paths_must_be_absolute_and_normal() {
        let error = refused(&flags(&["--demo", "--public", "static/"]), None);
        assert_eq!(
            error,
            "flag `--public`: public path \"static/\": the path does not begin with '/'"
        );
        let config = file("public = [\"/ok\", \"/static/../img/\"]\n");
        let error = refused(&flags(&["--demo"]), Some(&config));
        assert_eq!(
            error,
            "/etc/portcullis/site.toml:1: key `public`: public path \"/static/../img/\" is not \
             in normal form: write \"/img/\""
        );
    }

    #[test]
    fn the_listeners_may_not_share_a_port() {
        let error = refused(
            &flags(&["--demo", "--http", "127.0.0.1:8443"]),
            Some(&file("")),
        );
        assert_eq!(
            error,
            "key `https` (default) and flag `--http`: the listeners 127.0.0.1:8443 and \
             127.0.0.1:8443 would share a port; give each its own"
        );
        // The unspecified address overlaps every address of its family.
        let scratch = Scratch::new();
        let config = scratch.config(
            "tls-cert = \"cert.pem\"\ntls-key = \"key.pem\"\nusers = \"users.passwd\"\n\
             https = \"0.0.0.0:443\"\nhttp = \"10.0.0.1:443\"\n",
        );
        let error = refused(&ServeArgs::default(), Some(&config));
        assert!(
            error.starts_with(&format!(
                "{}:4: key `https` (line 4) and key `http` (line 5): ",
                scratch.path("site.toml").display()
            )),
            "{error}"
        );
        // Port 0 (any free port) never clashes, and different ports are fine.
        assert!(resolve(
            &flags(&["--demo", "--https", "127.0.0.1:0", "--http", "127.0.0.1:0"]),
            None
        )
        .is_ok());
        assert!(resolve(
            &flags(&[
                "--demo",
                "--https",
                "[::1]:8443",
                "--http",
                "127.0.0.1:8443"
            ]),
            None
        )
        .is_ok());
    }

    #[test]
    fn the_file_only_keys_are_read() {
        let config = file(
            "demo = true\n\
             site-name = \"Example Wiki\"\n\
             secure-cookies = false\n\
             basic-realm = \"wiki API\"\n\
             trusted-proxies = [\"127.0.0.1\", \"::1\"]\n\
             max-connections = 500\n\
             max-connections-per-client = 20\n\
             workers = 3\n\
             verify-queue = 10\n\
             verify-priority = \"low\"\n\
             handshake-timeout = \"5s\"\n\
             shutdown-timeout = \"1m\"\n\
             access-log = false\n\
             session-capacity = 2000000\n\
             bench-preload-sessions = 1000000\n",
        );
        let settings = resolve(&ServeArgs::default(), Some(&config)).unwrap();
        assert_eq!(settings.site_name, "Example Wiki");
        assert!(!settings.secure_cookies);
        assert_eq!(settings.basic_realm.as_deref(), Some("wiki API"));
        assert_eq!(
            settings.trusted_proxies,
            [
                IpAddr::from(Ipv4Addr::LOCALHOST),
                IpAddr::from(Ipv6Addr::LOCALHOST)
            ]
        );
        assert_eq!(settings.max_connections, 500);
        assert_eq!(settings.max_connections_per_client, 20);
        assert_eq!(settings.workers, 3);
        assert_eq!(settings.verify_queue, 10);
        assert_eq!(settings.verify_priority, VerifyPriority::Low);
        assert_eq!(settings.handshake_timeout, Duration::from_secs(5));
        assert_eq!(settings.shutdown_timeout, Duration::from_secs(60));
        assert!(!settings.access_log);
        assert_eq!(settings.session_capacity, 2_000_000);
        assert_eq!(settings.bench_preload_sessions, 1_000_000);
    }

    #[test]
    fn counts_are_bounded() {
        let demo = flags(&["--demo"]);
        for (text, expected) in [
            (
                "max-connections = 0",
                "key `max-connections`: 0 is out of range: from 1 to 1000000",
            ),
            (
                "max-connections-per-client = -1",
                "key `max-connections-per-client`: -1 is out of range: from 1 to 1000000",
            ),
            (
                "workers = 1000",
                "key `workers`: 1000 is out of range: from 1 to 256",
            ),
            (
                "verify-queue = 0",
                "key `verify-queue`: 0 is out of range: from 1 to 65536",
            ),
            (
                "session-capacity = 0",
                "key `session-capacity`: 0 is out of range: from 1 to 10000000",
            ),
            (
                "session-capacity = 10000001",
                "key `session-capacity`: 10000001 is out of range: from 1 to 10000000",
            ),
            (
                "bench-preload-sessions = -1",
                "key `bench-preload-sessions`: -1 is out of range: from 0 to 10000000",
            ),
            (
                "session-capacity = \"1M\"",
                "key `session-capacity`: expected a whole number, found a string \"1M\"",
            ),
        ] {
            assert_eq!(
                refused(&demo, Some(&file(text))),
                format!("/etc/portcullis/site.toml:1: {expected}"),
                "{text}"
            );
        }
    }

    #[test]
    fn the_session_capacity_bounds_the_store_and_the_benchmarks_preload() {
        let demo = flags(&["--demo"]);
        // Both extremes of the capacity are accepted.
        for n in [1, 10_000_000] {
            let config = file(&format!("session-capacity = {n}\n"));
            let settings = resolve(&demo, Some(&config)).unwrap();
            assert_eq!(settings.session_capacity, n);
            assert_eq!(settings.bench_preload_sessions, 0);
        }

        // A preload that fills the store exactly is fine, even the default
        // store; zero is the default and means none.
        let config = file("bench-preload-sessions = 100000\n");
        let settings = resolve(&demo, Some(&config)).unwrap();
        assert_eq!(settings.bench_preload_sessions, 100_000);
        assert_eq!(settings.session_capacity, 100_000);
        let config = file("bench-preload-sessions = 0\n");
        assert_eq!(
            resolve(&demo, Some(&config))
                .unwrap()
                .bench_preload_sessions,
            0
        );

        // One more does not fit: both keys are named, with their origins.
        let error = refused(&demo, Some(&file("bench-preload-sessions = 100001\n")));
        assert_eq!(
            error,
            "/etc/portcullis/site.toml:1: key `bench-preload-sessions` (line 1) and key \
             `session-capacity` (default): 100001 preloaded sessions do not fit in a session \
             capacity of 100000"
        );
        let config = file("session-capacity = 1000\n\nbench-preload-sessions = 5000\n");
        let error = refused(&demo, Some(&config));
        assert_eq!(
            error,
            "/etc/portcullis/site.toml:3: key `bench-preload-sessions` (line 3) and key \
             `session-capacity` (line 1): 5000 preloaded sessions do not fit in a session \
             capacity of 1000"
        );
        // The benchmark's setting of bench/compare.py passes.
        let config = file("bench-preload-sessions = 1000000\nsession-capacity = 1001000\n");
        let settings = resolve(&demo, Some(&config)).unwrap();
        assert_eq!(
            (settings.session_capacity, settings.bench_preload_sessions),
            (1_001_000, 1_000_000)
        );
    }

    #[test]
    fn names_shown_to_people_are_plain_text() {
        let demo = flags(&["--demo"]);
        let error = refused(&demo, Some(&file("site-name = \"\"\n")));
        assert_eq!(
            error,
            "/etc/portcullis/site.toml:1: key `site-name`: must not be empty"
        );
        let error = refused(&demo, Some(&file("basic-realm = \"api\\r\\nX: y\"\n")));
        assert_eq!(
            error,
            "/etc/portcullis/site.toml:1: key `basic-realm`: must not contain control characters"
        );
        let long = "x".repeat(201);
        let error = refused(&demo, Some(&file(&format!("site-name = \"{long}\"\n"))));
        assert_eq!(
            error,
            "/etc/portcullis/site.toml:1: key `site-name`: is 201 characters long: at most 200"
        );
    }

    #[test]
    fn load_reads_the_named_file_or_says_why_not() {
        let scratch = Scratch::new();
        let path = scratch.path("site.toml");
        fs::write(&path, "demo = true\nsite-name = \"Loaded\"\n").unwrap();
        let args = ServeArgs {
            config: Some(path.clone()),
            ..ServeArgs::default()
        };
        assert_eq!(load(&args).unwrap().site_name, "Loaded");

        let missing = scratch.path("missing.toml");
        let args = ServeArgs {
            config: Some(missing.clone()),
            ..ServeArgs::default()
        };
        let error = load(&args).unwrap_err().to_string();
        assert!(
            error.starts_with(&format!(
                "{}: cannot read the config file: ",
                missing.display()
            )),
            "{error}"
        );
    }

    #[test]
    fn a_file_in_the_working_directory_resolves_paths_there() {
        // `--config site.toml` has an empty parent: its paths stay relative
        // to the working directory, which is the file's directory.
        let config = ConfigFile {
            path: PathBuf::from("site.toml"),
            text: "demo = true\nroot = \"src\"\n".to_string(),
        };
        let settings = resolve(&ServeArgs::default(), Some(&config)).unwrap();
        assert_eq!(settings.root, Some(PathBuf::from("src")));
    }
}
