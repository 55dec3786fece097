//! B3's load generator (bench/compare.sh): full TLS 1.3 handshakes, one GET
//! per new connection, from a few threads, for a fixed time.
//!
//! ```text
//! cargo build --release --example bench_handshakes
//! taskset -c 1 target/release/examples/bench_handshakes --connect 127.0.0.1:8443 \
//!     --duration 8 --threads 4 --cert cert.pem --cookie '__Host-portcullis=…' \
//!     [--suite TLS_AES_256_GCM_SHA384] [--group X25519] [--path /1k.html]
//! ```
//!
//! It prints one JSON line of totals:
//!
//! ```text
//! {"handshakes":N,"reused":0,"hello_retries":0,"errors":0,"unclean_closes":0,
//!  "statuses":{"200":N},"seconds":S,"client_cpu":S,"threads":T}
//! ```
//!
//! `client_cpu` is this process's own CPU time (user + system, every thread)
//! spent in the loop, so that the bench can show whether the client or the
//! server was the bound.
//!
//! Why its own client: wrk and h2load resume TLS sessions when they
//! reconnect, and a Python client costs about 2 ms of CPU per handshake,
//! several times what the servers spend. This one does what a browser does
//! on a first visit, and little else:
//!
//! - a new TCP connection each time, `TCP_NODELAY`;
//! - a full TLS 1.3 handshake: resumption disabled (no session is stored, so
//!   none is offered) and every connection's [`HandshakeKind`] counted, so a
//!   resumed one would show; ALPN `http/1.1`; one key-exchange group (X25519
//!   unless told) and the cipher suite the bench forces;
//! - the server's certificate pinned (the bench's is self-signed, and may be
//!   a CA certificate, which webpki refuses as an end entity), while the
//!   handshake signature is still verified with the provider's algorithms;
//! - `GET` with the session cookie and `Connection: close`, the answer read
//!   to the end (the server closes), its status counted and its body length
//!   checked against `Content-Length`.

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::Resumption;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, ClientConnection, DigitallySignedStruct, HandshakeKind,
    SignatureScheme, StreamOwned, SupportedCipherSuite,
};

/// Connect, read and write timeout: a server that stops answering costs an
/// error, never a hung benchmark.
const TIMEOUT: Duration = Duration::from_secs(10);

/// After a failed connection, wait this long before the next, so that a
/// refusing server does not turn the client into a busy loop.
const ERROR_PAUSE: Duration = Duration::from_millis(10);

/// Distinct error messages kept per thread, for stderr.
const ERRORS_KEPT: usize = 3;

/// `/proc/self/stat` counts CPU time in clock ticks of `USER_HZ`, which
/// Linux fixes at 100 on x86 and ARM.
const USER_HZ: f64 = 100.0;

const USAGE: &str = "usage: bench_handshakes --connect HOST:PORT --duration SECONDS \
--threads N --cert CERT.pem --cookie COOKIE [--suite TLS_AES_256_GCM_SHA384] \
[--group X25519] [--path /1k.html]";

/// What the command line asks for.
struct Args {
    address: SocketAddr,
    duration: Duration,
    threads: usize,
    cert: String,
    cookie: String,
    suite: Option<String>,
    group: String,
    path: String,
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("bench_handshakes: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("bench_handshakes: {message}");
            ExitCode::FAILURE
        }
    }
}

fn parse_args(mut argv: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut values: BTreeMap<String, String> = BTreeMap::new();
    while let Some(flag) = argv.next() {
        let name = flag
            .strip_prefix("--")
            .filter(|n| {
                [
                    "connect", "duration", "threads", "cert", "cookie", "suite", "group", "path",
                ]
                .contains(n)
            })
            .ok_or_else(|| format!("unknown argument {flag:?}"))?;
        let value = argv.next().ok_or_else(|| format!("{flag} needs a value"))?;
        values.insert(name.to_string(), value);
    }
    let mut take = |name: &str| {
        values
            .remove(name)
            .ok_or_else(|| format!("--{name} is required"))
    };
    let connect = take("connect")?;
    let address = connect
        .to_socket_addrs()
        .map_err(|e| format!("--connect {connect}: {e}"))?
        .next()
        .ok_or_else(|| format!("--connect {connect}: no address"))?;
    let duration = parse_seconds(&take("duration")?)?;
    let threads = take("threads")?
        .parse::<usize>()
        .ok()
        .filter(|n| (1..=1024).contains(n))
        .ok_or("--threads must be a number from 1 to 1024")?;
    Ok(Args {
        address,
        duration,
        threads,
        cert: take("cert")?,
        cookie: take("cookie")?,
        suite: values.remove("suite"),
        group: values.remove("group").unwrap_or_else(|| "X25519".into()),
        path: values.remove("path").unwrap_or_else(|| "/1k.html".into()),
    })
}

/// `8`, `8.0`, `8s` or `500ms`.
fn parse_seconds(text: &str) -> Result<Duration, String> {
    let (number, scale) = match text.strip_suffix("ms") {
        Some(n) => (n, 1e-3),
        None => (text.strip_suffix('s').unwrap_or(text), 1.0),
    };
    number
        .trim()
        .parse::<f64>()
        .ok()
        .map(|n| n * scale)
        .filter(|s| s.is_finite() && *s > 0.0 && *s <= 3600.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| format!("not a duration: {text:?} (use e.g. 8, 8s, 500ms)"))
}

fn run(args: &Args) -> Result<(), String> {
    let cert = CertificateDer::from_pem_file(&args.cert)
        .map_err(|e| format!("{}: no certificate: {e}", args.cert))?;
    let config = Arc::new(client_config(args, cert)?);
    // An IP address as the server name: no SNI, as a client that connects
    // to 127.0.0.1 sends none.
    let name = ServerName::IpAddress(args.address.ip().into());
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nCookie: {}\r\nConnection: close\r\n\r\n",
        args.path, args.address, args.cookie
    )
    .into_bytes();

    let cpu_before = own_cpu_seconds()?;
    let start = Instant::now();
    let deadline = start + args.duration;
    let tallies = thread::scope(|scope| {
        let workers: Vec<_> = (0..args.threads)
            .map(|_| scope.spawn(|| worker(&config, args.address, &name, &request, deadline)))
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().map_err(|_| "a client thread panicked".to_string()))
            .collect::<Result<Vec<Tally>, String>>()
    })?;
    let seconds = start.elapsed().as_secs_f64();
    let cpu = own_cpu_seconds()? - cpu_before;

    let mut total = Tally::default();
    for tally in tallies {
        total.add(tally);
    }
    for message in &total.first_errors {
        eprintln!("bench_handshakes: error: {message}");
    }
    println!("{}", total.json(seconds, cpu, args.threads));
    Ok(())
}

/// TLS 1.3 only, the one suite and group asked for (all of ring's TLS 1.3
/// suites when none is), ALPN `http/1.1`, no resumption, the certificate
/// pinned.
fn client_config(args: &Args, cert: CertificateDer<'static>) -> Result<ClientConfig, String> {
    let mut provider = rustls::crypto::ring::default_provider();
    provider.cipher_suites.retain(|suite| {
        matches!(suite, SupportedCipherSuite::Tls13(_))
            && args
                .suite
                .as_deref()
                .is_none_or(|want| suite_matches(*suite, want))
    });
    if provider.cipher_suites.is_empty() {
        return Err(format!(
            "--suite {:?}: not one of ring's TLS 1.3 cipher suites",
            args.suite.as_deref().unwrap_or("")
        ));
    }
    provider
        .kx_groups
        .retain(|group| group_matches(&format!("{:?}", group.name()), &args.group));
    if provider.kx_groups.is_empty() {
        return Err(format!(
            "--group {:?}: not one of ring's groups",
            args.group
        ));
    }
    let verifier = Arc::new(Pinned {
        cert,
        algorithms: provider.signature_verification_algorithms,
    });
    let mut config = ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| format!("TLS settings: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    // Nothing stored, so nothing offered: every handshake is a full one.
    config.resumption = Resumption::disabled();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// `TLS_AES_256_GCM_SHA384` (OpenSSL's and the RFC's name, which the bench
/// reads from `openssl s_client`) or rustls's `TLS13_AES_256_GCM_SHA384`.
fn suite_matches(suite: SupportedCipherSuite, want: &str) -> bool {
    let ours = format!("{:?}", suite.suite());
    let rfc = ours.replacen("TLS13_", "TLS_", 1);
    want.eq_ignore_ascii_case(&ours) || want.eq_ignore_ascii_case(&rfc)
}

/// rustls's group names (`X25519`, `secp256r1`, `secp384r1`) and OpenSSL's
/// and NIST's for the curves.
fn group_matches(ours: &str, want: &str) -> bool {
    let want = match want.to_ascii_lowercase().as_str() {
        "prime256v1" | "p-256" => "secp256r1".to_string(),
        "p-384" => "secp384r1".to_string(),
        other => other.to_string(),
    };
    ours.eq_ignore_ascii_case(&want)
}

/// Accepts the pinned certificate and no other, and still verifies the
/// server's handshake signature against that certificate's key with the
/// provider's algorithms: the signature check is the client's share of the
/// handshake's public-key work, as in a browser.
#[derive(Debug)]
struct Pinned {
    cert: CertificateDer<'static>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.cert.as_ref() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// One thread's loop: exchanges until the deadline.
fn worker(
    config: &Arc<ClientConfig>,
    address: SocketAddr,
    name: &ServerName<'static>,
    request: &[u8],
    deadline: Instant,
) -> Tally {
    let mut tally = Tally::default();
    let mut answer = Vec::with_capacity(4096);
    while Instant::now() < deadline {
        match exchange(config, address, name, request, &mut answer) {
            Ok(done) => tally.count(done),
            Err(message) => {
                tally.error(message);
                thread::sleep(ERROR_PAUSE);
            }
        }
    }
    tally
}

/// What one connection gave.
struct Exchange {
    kind: HandshakeKind,
    status: u16,
    /// The server closed the TCP connection without a TLS close_notify
    /// (after a complete answer, else it is an error).
    unclean_close: bool,
}

/// Connect, handshake, GET, read to the end, close.
fn exchange(
    config: &Arc<ClientConfig>,
    address: SocketAddr,
    name: &ServerName<'static>,
    request: &[u8],
    answer: &mut Vec<u8>,
) -> Result<Exchange, String> {
    let tcp = TcpStream::connect_timeout(&address, TIMEOUT).map_err(|e| format!("connect: {e}"))?;
    tcp.set_nodelay(true)
        .and_then(|()| tcp.set_read_timeout(Some(TIMEOUT)))
        .and_then(|()| tcp.set_write_timeout(Some(TIMEOUT)))
        .map_err(|e| format!("socket options: {e}"))?;
    let mut conn =
        ClientConnection::new(config.clone(), name.clone()).map_err(|e| format!("TLS: {e}"))?;
    // Queued before the handshake: rustls sends it right behind the
    // client's Finished, in the same flight, as browsers do.
    conn.writer()
        .write_all(request)
        .map_err(|e| format!("queue the request: {e}"))?;
    let mut tls = StreamOwned::new(conn, tcp);
    answer.clear();
    let mut chunk = [0u8; 4096];
    let mut unclean_close = false;
    loop {
        match tls.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => {
                unclean_close = true;
                break;
            }
            Err(e) => return Err(format!("handshake or read: {e}")),
        }
    }
    let kind = tls
        .conn
        .handshake_kind()
        .ok_or("closed before the handshake finished")?;
    let status = check_answer(answer)?;
    Ok(Exchange {
        kind,
        status,
        unclean_close,
    })
}

/// The answer's status, once its head is complete and its body as long as
/// its `Content-Length` says.
fn check_answer(answer: &[u8]) -> Result<u16, String> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let head = match response.parse(answer) {
        Ok(httparse::Status::Complete(head)) => head,
        Ok(httparse::Status::Partial) => {
            return Err(format!(
                "closed inside the answer's head ({} bytes)",
                answer.len()
            ))
        }
        Err(e) => return Err(format!("answer's head: {e}")),
    };
    let status = response.code.ok_or("answer without a status")?;
    let length = response
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .map(|h| {
            std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok())
                .ok_or("answer's Content-Length is not a number")
        })
        .transpose()?;
    let body = answer.len() - head;
    match length {
        Some(length) if length != body => Err(format!(
            "{status} answer with a body of {body} bytes, Content-Length {length}"
        )),
        _ => Ok(status),
    }
}

/// Counts of one thread, then of all.
#[derive(Default)]
struct Tally {
    handshakes: u64,
    reused: u64,
    hello_retries: u64,
    unclean_closes: u64,
    errors: u64,
    statuses: BTreeMap<u16, u64>,
    first_errors: Vec<String>,
}

impl Tally {
    fn count(&mut self, done: Exchange) {
        self.handshakes += 1;
        match done.kind {
            HandshakeKind::Full => {}
            HandshakeKind::FullWithHelloRetryRequest => self.hello_retries += 1,
            HandshakeKind::Resumed => self.reused += 1,
        }
        self.unclean_closes += u64::from(done.unclean_close);
        *self.statuses.entry(done.status).or_default() += 1;
    }

    fn error(&mut self, message: String) {
        self.errors += 1;
        if self.first_errors.len() < ERRORS_KEPT && !self.first_errors.contains(&message) {
            self.first_errors.push(message);
        }
    }

    fn add(&mut self, other: Tally) {
        self.handshakes += other.handshakes;
        self.reused += other.reused;
        self.hello_retries += other.hello_retries;
        self.unclean_closes += other.unclean_closes;
        self.errors += other.errors;
        for (status, n) in other.statuses {
            *self.statuses.entry(status).or_default() += n;
        }
        for message in other.first_errors {
            if self.first_errors.len() < ERRORS_KEPT && !self.first_errors.contains(&message) {
                self.first_errors.push(message);
            }
        }
    }

    /// One JSON line (every value a number; status codes as keys).
    fn json(&self, seconds: f64, client_cpu: f64, threads: usize) -> String {
        let statuses: Vec<String> = self
            .statuses
            .iter()
            .map(|(status, n)| format!("\"{status}\":{n}"))
            .collect();
        format!(
            "{{\"handshakes\":{},\"reused\":{},\"hello_retries\":{},\"errors\":{},\
             \"unclean_closes\":{},\"statuses\":{{{}}},\"seconds\":{seconds:.6},\
             \"client_cpu\":{client_cpu:.3},\"threads\":{threads}}}",
            self.handshakes,
            self.reused,
            self.hello_retries,
            self.errors,
            self.unclean_closes,
            statuses.join(","),
        )
    }
}

/// This process's CPU time so far (user + system, all its threads, the
/// finished ones included), from `/proc/self/stat`.
fn own_cpu_seconds() -> Result<f64, String> {
    let stat =
        std::fs::read_to_string("/proc/self/stat").map_err(|e| format!("/proc/self/stat: {e}"))?;
    // The command name (field 2) is in parentheses and may hold spaces.
    let after_name = stat
        .rfind(')')
        .map(|i| &stat[i + 1..])
        .ok_or("/proc/self/stat: no command name")?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // utime and stime are fields 14 and 15; the state (field 3) is fields[0].
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| "/proc/self/stat: no utime/stime".to_string())
    };
    Ok((ticks(11)? + ticks(12)?) as f64 / USER_HZ)
}
