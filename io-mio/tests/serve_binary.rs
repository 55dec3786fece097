//! `portcullis serve` run as a user runs it: the real binary, its start-up
//! summary read from stderr, a TLS client that trusts the certificate only
//! by the fingerprint the summary printed, and signals sent with `kill`.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::time::{Duration, Instant};

use portcullis_core::cred::{hash_password, HashParams, PasswordFile};
use portcullis_core::random::TestRng;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme,
    StreamOwned,
};

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

/// How long the test waits for anything before it fails.
const PATIENCE: Duration = Duration::from_secs(20);

// ----- the server process ------------------------------------------------------

/// A running `portcullis serve`; killed on drop if it is still running, so
/// that a failing test leaves no process behind.
struct Serving {
    child: Child,
    /// Lines of its stderr, as they come.
    lines: Receiver<String>,
    /// Every line read so far.
    seen: Vec<String>,
}

impl Serving {
    fn start(dir: &Path, args: &[&str]) -> Serving {
        let mut child = Command::new(BIN)
            .arg("serve")
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the portcullis binary starts");
        let stderr = child.stderr.take().expect("piped stderr");
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { return };
                if sender.send(line).is_err() {
                    return;
                }
            }
        });
        Serving {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a stderr line that `wanted` accepts; returns it.
    fn line(&mut self, wanted: impl Fn(&str) -> bool) -> String {
        if let Some(line) = self.seen.iter().find(|line| wanted(line)) {
            return line.clone();
        }
        let until = Instant::now() + PATIENCE;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if wanted(&line) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no such line on stderr; the server said:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// The address of the summary's `listening on SCHEME://ADDR/` line.
    fn listening(&mut self, scheme: &str) -> SocketAddr {
        let prefix = format!("listening on {scheme}://");
        let line = self.line(|line| line.trim_start().starts_with(&prefix));
        let rest = &line.trim_start()[prefix.len()..];
        let addr = rest.split('/').next().unwrap_or_default();
        addr.parse()
            .unwrap_or_else(|_| panic!("an address in {line:?}"))
    }

    /// Sends `signal` (`TERM`, `HUP`...) with `kill`, as an operator would.
    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    /// Waits for the process to exit; then reads the rest of its stderr.
    fn exit(&mut self) -> ExitStatus {
        let until = Instant::now() + PATIENCE;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("the child can be waited for") {
                break status;
            }
            assert!(Instant::now() < until, "the server did not exit");
            std::thread::sleep(Duration::from_millis(20));
        };
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(2)) {
            self.seen.push(line);
        }
        status
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn scratch() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

// ----- a TLS client that pins the printed fingerprint ------------------------------

/// SHA-256 of `der` as the summary prints it: `AB:CD:...`.
fn fingerprint(der: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, der)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Accepts exactly the certificate whose fingerprint the user was shown
/// (signatures are still checked, so the server must hold its key).
#[derive(Debug)]
struct Pinned {
    fingerprint: String,
    provider: Arc<CryptoProvider>,
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
        if fingerprint(end_entity) == self.fingerprint {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

fn pinned_config(fingerprint: &str) -> Arc<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(Pinned {
        fingerprint: fingerprint.to_string(),
        provider: Arc::clone(&provider),
    });
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

// ----- a small HTTP/1.1 client ----------------------------------------------------

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One keep-alive connection with a cookie jar.
struct Visitor<S: Read + Write> {
    stream: S,
    buffered: Vec<u8>,
    jar: HashMap<String, String>,
}

impl<S: Read + Write> Visitor<S> {
    fn new(stream: S) -> Self {
        Visitor {
            stream,
            buffered: Vec::new(),
            jar: HashMap::new(),
        }
    }

    fn request(&mut self, method: &str, target: &str, form: Option<&str>) -> Reply {
        // A browser: it asks for HTML, so the guard sends it to the form.
        let mut text =
            format!("{method} {target} HTTP/1.1\r\nHost: localhost\r\nAccept: text/html\r\n");
        if !self.jar.is_empty() {
            let cookies: Vec<String> = self.jar.iter().map(|(n, v)| format!("{n}={v}")).collect();
            text.push_str(&format!("Cookie: {}\r\n", cookies.join("; ")));
        }
        if let Some(form) = form {
            text.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
            text.push_str(&format!("Content-Length: {}\r\n\r\n{form}", form.len()));
        } else {
            text.push_str("\r\n");
        }
        self.stream.write_all(text.as_bytes()).unwrap();
        self.stream.flush().unwrap();
        let reply = self.read_reply().expect("a response");
        for (name, value) in &reply.headers {
            if name == "set-cookie" {
                let pair = value.split(';').next().unwrap_or_default();
                if let Some((n, v)) = pair.split_once('=') {
                    self.jar.insert(n.trim().to_string(), v.trim().to_string());
                }
            }
        }
        reply
    }

    fn read_reply(&mut self) -> io::Result<Reply> {
        let head_end = loop {
            if let Some(at) = self.buffered.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            self.fill()?;
        };
        let head = String::from_utf8_lossy(&self.buffered[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|line| line.split(' ').nth(1))
            .and_then(|code| code.parse().ok())
            .unwrap_or(0);
        let headers: Vec<(String, String)> = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let length: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        while self.buffered.len() < head_end + length {
            self.fill()?;
        }
        let body =
            String::from_utf8_lossy(&self.buffered[head_end..head_end + length]).into_owned();
        self.buffered.drain(..head_end + length);
        Ok(Reply {
            status,
            headers,
            body,
        })
    }

    fn fill(&mut self) -> io::Result<()> {
        let mut buf = [0u8; 8192];
        let n = self.stream.read(&mut buf)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.buffered.extend_from_slice(&buf[..n]);
        Ok(())
    }
}

fn tls_visitor(
    addr: SocketAddr,
    fingerprint: &str,
) -> io::Result<Visitor<StreamOwned<ClientConnection, TcpStream>>> {
    let tcp = TcpStream::connect(addr)?;
    tcp.set_read_timeout(Some(PATIENCE))?;
    let name = ServerName::try_from("localhost").unwrap();
    let conn = ClientConnection::new(pinned_config(fingerprint), name).map_err(io::Error::other)?;
    let mut tls = StreamOwned::new(conn, tcp);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock)?;
    }
    Ok(Visitor::new(tls))
}

fn plain_visitor(addr: SocketAddr) -> Visitor<TcpStream> {
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(PATIENCE)).unwrap();
    Visitor::new(tcp)
}

/// The value of the hidden input `name` in `html`.
fn hidden_field(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')?;
    Some(html[start..start + end].to_string())
}

/// Form-urlencodes `text`.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Writes a password file with `users`, hashed with cheap parameters.
fn write_users(path: &Path, users: &[(&str, &str)]) {
    let mut rng = TestRng::seeded(5);
    let cheap = HashParams::new(64, 1, 1).unwrap();
    let mut file = PasswordFile::new();
    for (name, password) in users {
        file.add(
            name,
            hash_password(password.as_bytes(), cheap, &mut rng).unwrap(),
        )
        .unwrap();
    }
    std::fs::write(path, file.to_bytes()).unwrap();
}

// ----- the tests --------------------------------------------------------------------

#[test]
fn demo_mode_prints_what_a_newcomer_needs_to_log_in_and_stops_on_sigterm() {
    let dir = scratch();
    // Port 0 instead of the demo's fixed ports, which may be busy here.
    let mut server = Serving::start(
        dir.path(),
        &["--demo", "--https", "127.0.0.1:0", "--http", "127.0.0.1:0"],
    );
    let https = server.listening("https");
    let http = server.listening("http");
    assert!(https.ip().is_loopback() && https.port() != 0);
    assert!(http.ip().is_loopback() && http.port() != 0);
    let certificate = server.line(|line| line.contains("self-signed certificate"));
    let printed = certificate
        .split("SHA256 ")
        .nth(1)
        .expect("the certificate's fingerprint is printed")
        .trim()
        .to_string();
    let password_line = server.line(|line| line.contains("log in as fred with password "));
    let password = password_line
        .split("with password ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the password follows")
        .to_string();
    server.line(|line| line.contains("DEMO MODE"));

    // A client that trusts only what the summary printed gets in...
    let mut visitor = tls_visitor(https, &printed).expect("the pinned certificate is served");
    let page = visitor.request("GET", "/", None);
    assert_eq!(page.status, 303);
    let form = visitor.request("GET", "/__login__", None);
    assert_eq!(form.status, 200);
    let csrf = hidden_field(&form.body, "csrf").expect("a CSRF token");
    let login = visitor.request(
        "POST",
        "/__login__",
        Some(&format!(
            "username=fred&password={}&csrf={}",
            encode(&password),
            encode(&csrf)
        )),
    );
    assert_eq!(login.status, 303, "{}", login.body);
    let hello = visitor.request("GET", "/", None);
    assert_eq!(hello.status, 200);
    assert!(hello.body.contains("Hello, fred!"), "{}", hello.body);

    // ...and a client pinning another fingerprint does not.
    let first = if printed.starts_with('0') { "1" } else { "0" };
    let wrong = format!("{first}{}", &printed[1..]);
    assert!(tls_visitor(https, &wrong).is_err());

    // The plain listener sends visitors to the HTTPS one.
    let mut plain = plain_visitor(http);
    let moved = plain.request("GET", "/somewhere?x=1", None);
    assert_eq!(moved.status, 308);
    assert_eq!(
        moved.header("location"),
        Some(format!("https://localhost:{}/somewhere?x=1", https.port()).as_str())
    );

    drop(visitor);
    drop(plain);
    server.signal("TERM");
    let status = server.exit();
    assert_eq!(status.code(), Some(0), "{}", server.seen.join("\n"));
    assert!(
        server.seen.iter().any(|line| line.ends_with(" stopped")),
        "{}",
        server.seen.join("\n")
    );
    // The password is printed once, in the summary, and never logged.
    let mentions = server
        .seen
        .iter()
        .filter(|line| line.contains(&password))
        .count();
    assert_eq!(mentions, 1, "{}", server.seen.join("\n"));
}

#[test]
fn sighup_reloads_the_password_file() {
    let dir = scratch();
    let users = dir.path().join("users.passwd");
    write_users(&users, &[("fred", "correct horse battery")]);
    // No certificate: plain HTTP, as behind a TLS-terminating proxy.
    let mut server = Serving::start(
        dir.path(),
        &["--http", "127.0.0.1:0", "--users", "users.passwd"],
    );
    let http = server.listening("http");
    server.line(|line| line.contains("WARNING: no TLS listener"));
    server.line(|line| line.contains("1 users from users.passwd"));

    write_users(
        &users,
        &[
            ("fred", "correct horse battery"),
            ("wilma", "yabba dabba doo"),
        ],
    );
    server.signal("HUP");
    let reloaded = server.line(|line| line.contains("reloaded"));
    assert!(
        reloaded.contains("2 users (1 added, 0 removed, 0 changed)"),
        "{reloaded}"
    );

    // Still serving after the reload.
    let mut visitor = plain_visitor(http);
    assert_eq!(visitor.request("GET", "/", None).status, 303);
    drop(visitor);

    server.signal("TERM");
    assert_eq!(server.exit().code(), Some(0));
}

#[test]
fn a_bad_config_or_a_busy_port_exits_with_status_2() {
    let dir = scratch();
    let mut bad = Serving::start(
        dir.path(),
        &["--demo", "--https", "0.0.0.0:0", "--http", "127.0.0.1:0"],
    );
    assert_eq!(bad.exit().code(), Some(2));
    assert!(
        bad.seen
            .iter()
            .any(|line| line.contains("`--https`") && line.contains("loopback")),
        "{}",
        bad.seen.join("\n")
    );

    // A port another program holds.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let mut busy = Serving::start(
        dir.path(),
        &["--demo", "--https", &addr, "--http", "127.0.0.1:0"],
    );
    assert_eq!(busy.exit().code(), Some(2));
    assert!(
        busy.seen.iter().any(|line| line.contains("cannot listen")),
        "{}",
        busy.seen.join("\n")
    );
}
