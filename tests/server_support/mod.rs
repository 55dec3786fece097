//! A harness for the server tests: the real `portcullis serve` code started
//! in-process on loopback ports the OS picks, a rustls client that trusts
//! its certificate, and a small HTTP/1.1 client that reads responses with
//! httparse. Every test gets its own server, directory and users.
#![allow(dead_code)] // each test file uses a different part

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use portcullis_core::cred::{hash_password, HashParams, PasswordFile};
use portcullis_core::random::TestRng;
use portcullis_mio::config::{Settings, TlsSource, UsersSource, VerifyPriority};
use portcullis_mio::serve_cmd;
use portcullis_mio::server::{Server, ServerHandle};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use tempfile::TempDir;

/// The test user.
pub const USER: &str = "fred";
/// The test user's password.
pub const PASSWORD: &str = "correct horse battery";

/// How long a test waits for anything before it fails.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// Settings for a test server: HTTPS and HTTP on loopback ports the OS
/// picks, a self-signed certificate, `users` in a temporary directory, the
/// demo site, no access log (tests read stderr only when they want to).
pub fn test_settings(dir: &TempDir) -> Settings {
    Settings {
        https: Some("127.0.0.1:0".parse().unwrap()),
        http: Some("127.0.0.1:0".parse().unwrap()),
        tls: Some(TlsSource::SelfSigned),
        users: UsersSource::File(dir.path().join("users.passwd")),
        root: None,
        idle_timeout: Duration::from_secs(30 * 60),
        absolute_timeout: Duration::from_secs(12 * 3600),
        public: Vec::new(),
        demo: false,
        site_name: "Test site".to_string(),
        secure_cookies: true,
        basic_realm: None,
        trusted_proxies: Vec::new(),
        max_connections: 1000,
        max_connections_per_client: 1000,
        workers: 2,
        verify_queue: 16,
        verify_priority: VerifyPriority::default(),
        handshake_timeout: Duration::from_secs(10),
        shutdown_timeout: Duration::from_secs(10),
        access_log: false,
        session_capacity: 100_000,
        bench_preload_sessions: 0,
    }
}

/// Writes a password file with `users` (name, password), hashed with cheap
/// argon2id parameters so that tests stay fast (the file records them).
pub fn write_users(path: &std::path::Path, users: &[(&str, &str)]) {
    let mut rng = TestRng::seeded(9);
    let cheap = HashParams::new(64, 1, 1).unwrap();
    let mut file = PasswordFile::new();
    for (name, password) in users {
        let hash = hash_password(password.as_bytes(), cheap, &mut rng).unwrap();
        file.add(name, hash).unwrap();
    }
    std::fs::write(path, file.to_bytes()).unwrap();
}

/// A server running on its own thread; shut down and joined on drop.
pub struct TestServer {
    /// The HTTPS listener, if any.
    pub https: Option<SocketAddr>,
    /// The plain-HTTP listener, if any.
    pub http: Option<SocketAddr>,
    /// Control (shutdown, reload, counts).
    pub handle: ServerHandle,
    /// The certificate to trust (when there is TLS).
    pub leaf: Option<CertificateDer<'static>>,
    /// The test's directory (users file, site root...).
    pub dir: TempDir,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl TestServer {
    /// A server with fred in its password file and `configure` applied to
    /// the test settings.
    pub fn start(configure: impl FnOnce(&mut Settings, &TempDir)) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        write_users(&dir.path().join("users.passwd"), &[(USER, PASSWORD)]);
        let mut settings = test_settings(&dir);
        configure(&mut settings, &dir);
        Self::start_with(settings, dir)
    }

    /// A server with exactly these settings.
    pub fn start_with(settings: Settings, dir: TempDir) -> TestServer {
        let loaded = serve_cmd::load(&settings).expect("the test settings load");
        let leaf = loaded.prepared.tls.as_ref().map(|tls| tls.leaf.clone());
        let server = Server::bind(&settings, loaded.prepared).expect("the server binds");
        let handle = server.handle();
        let (https, http) = (server.https_addr(), server.http_addr());
        let thread = std::thread::spawn(move || server.run());
        TestServer {
            https,
            http,
            handle,
            leaf,
            dir,
            thread: Some(thread),
        }
    }

    /// A path in the test's directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A TLS client connected to the HTTPS listener.
    pub fn https_client(&self) -> Client {
        Client::tls(
            self.https.expect("an HTTPS listener"),
            tls_client_config(self.leaf.as_ref().expect("a certificate"), &[b"http/1.1"]),
        )
        .expect("TLS connects")
    }

    /// A plain client connected to the HTTP listener.
    pub fn http_client(&self) -> Client {
        Client::plain(self.http.expect("an HTTP listener")).expect("connects")
    }

    /// Waits until the server has `n` open client connections.
    pub fn wait_for_open_connections(&self, n: usize) {
        wait_until(|| self.handle.open_connections() == n).unwrap_or_else(|_| {
            panic!(
                "expected {n} open connections, the server has {}",
                self.handle.open_connections()
            )
        });
    }

    /// Graceful shutdown; returns what `run` returned.
    pub fn stop(mut self) -> io::Result<()> {
        self.handle.shutdown();
        self.thread
            .take()
            .unwrap()
            .join()
            .expect("the server thread")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.handle.shutdown();
            let _ = thread.join();
        }
    }
}

/// Polls `condition` until it holds or [`PATIENCE`] runs out.
pub fn wait_until(mut condition: impl FnMut() -> bool) -> Result<(), ()> {
    let until = Instant::now() + PATIENCE;
    while Instant::now() < until {
        if condition() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Err(())
}

/// A rustls client configuration trusting `leaf`, offering `alpn`.
pub fn tls_client_config(leaf: &CertificateDer<'static>, alpn: &[&[u8]]) -> Arc<ClientConfig> {
    tls_client_config_versions(leaf, alpn, rustls::DEFAULT_VERSIONS)
}

/// Like [`tls_client_config`], limited to `versions`.
pub fn tls_client_config_versions(
    leaf: &CertificateDer<'static>,
    alpn: &[&[u8]],
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(leaf.clone()).unwrap();
    let mut config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// An HTTP response as read off the wire.
#[derive(Debug)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Fields in order, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// The first field called `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every `Set-Cookie` as (name, value).
    pub fn cookies(&self) -> Vec<(String, String)> {
        self.headers
            .iter()
            .filter(|(n, _)| n == "set-cookie")
            .filter_map(|(_, v)| {
                let pair = v.split(';').next()?;
                let (name, value) = pair.split_once('=')?;
                Some((name.trim().to_string(), value.trim().to_string()))
            })
            .collect()
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// The transport under a [`Client`].
pub enum Stream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP.
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// One client connection; reads responses one by one.
pub struct Client {
    /// The connection.
    pub stream: Stream,
    /// Bytes read past the last response.
    buffered: Vec<u8>,
}

impl Client {
    /// Plain TCP to `addr`.
    pub fn plain(addr: SocketAddr) -> io::Result<Client> {
        let tcp = TcpStream::connect(addr)?;
        tcp.set_read_timeout(Some(PATIENCE))?;
        Ok(Client {
            stream: Stream::Plain(tcp),
            buffered: Vec::new(),
        })
    }

    /// TLS to `addr` as `localhost`; the handshake completes before this
    /// returns.
    pub fn tls(addr: SocketAddr, config: Arc<ClientConfig>) -> io::Result<Client> {
        let tcp = TcpStream::connect(addr)?;
        tcp.set_read_timeout(Some(PATIENCE))?;
        let name = ServerName::try_from("localhost").unwrap();
        let conn = ClientConnection::new(config, name).map_err(io::Error::other)?;
        let mut tls = StreamOwned::new(conn, tcp);
        while tls.conn.is_handshaking() {
            tls.conn.complete_io(&mut tls.sock)?;
        }
        Ok(Client {
            stream: Stream::Tls(Box::new(tls)),
            buffered: Vec::new(),
        })
    }

    /// The TLS session, if any (negotiated version, ALPN...).
    pub fn tls_conn(&self) -> Option<&ClientConnection> {
        match &self.stream {
            Stream::Tls(s) => Some(&s.conn),
            Stream::Plain(_) => None,
        }
    }

    /// Sends raw bytes.
    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)?;
        self.stream.flush()
    }

    /// Sends a request with `Host: localhost`, the given extra fields and
    /// body (with its Content-Length), and reads the response.
    pub fn request(
        &mut self,
        method: &str,
        target: &str,
        fields: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<Response> {
        self.send(&request_bytes(method, target, fields, body))?;
        self.read_response(method == "HEAD")
    }

    /// A GET.
    pub fn get(&mut self, target: &str, fields: &[(&str, &str)]) -> io::Result<Response> {
        self.request("GET", target, fields, b"")
    }

    /// Reads one response (no body after a HEAD, 204 or 304).
    pub fn read_response(&mut self, head_only: bool) -> io::Result<Response> {
        loop {
            let mut fields = [httparse::EMPTY_HEADER; 64];
            let mut parsed = httparse::Response::new(&mut fields);
            if let httparse::Status::Complete(head_len) = parsed
                .parse(&self.buffered)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?
            {
                let status = parsed.code.unwrap_or(0);
                let headers: Vec<(String, String)> = parsed
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_ascii_lowercase(),
                            String::from_utf8_lossy(h.value).into_owned(),
                        )
                    })
                    .collect();
                let length = if head_only || status == 204 || status == 304 {
                    0
                } else {
                    headers
                        .iter()
                        .find(|(n, _)| n == "content-length")
                        .and_then(|(_, v)| v.parse().ok())
                        .unwrap_or(0)
                };
                while self.buffered.len() < head_len + length {
                    self.fill()?;
                }
                let body = self.buffered[head_len..head_len + length].to_vec();
                self.buffered.drain(..head_len + length);
                return Ok(Response {
                    status,
                    headers,
                    body,
                });
            }
            self.fill()?;
        }
    }

    /// Reads until the server closes; true if it did (EOF or reset) within
    /// [`PATIENCE`], with nothing more than `allowed` bytes arriving first.
    pub fn closed_by_server(&mut self) -> bool {
        let mut buf = [0u8; 4096];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        || e.kind() == io::ErrorKind::TimedOut =>
                {
                    return false
                }
                Err(_) => return true,
            }
        }
    }

    fn fill(&mut self) -> io::Result<()> {
        let mut buf = [0u8; 16 * 1024];
        let n = self.stream.read(&mut buf)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection",
            ));
        }
        self.buffered.extend_from_slice(&buf[..n]);
        Ok(())
    }
}

/// The bytes of a request with `Host: localhost`.
pub fn request_bytes(method: &str, target: &str, fields: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut text = format!("{method} {target} HTTP/1.1\r\nHost: localhost\r\n");
    for (name, value) in fields {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        text.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    text.push_str("\r\n");
    let mut bytes = text.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// A browser: a cookie jar and the habit of sending `Accept: text/html`
/// and a same-origin `Origin` on posts.
pub struct Browser {
    /// The connection it uses (keep-alive).
    pub client: Client,
    /// Cookies by name.
    pub jar: HashMap<String, String>,
    /// The origin it posts from.
    pub origin: String,
}

impl Browser {
    /// A browser on the server's HTTPS listener.
    pub fn new(server: &TestServer) -> Browser {
        Browser {
            client: server.https_client(),
            jar: HashMap::new(),
            origin: "https://localhost".to_string(),
        }
    }

    fn cookie_field(&self) -> String {
        self.jar
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn remember(&mut self, response: &Response) {
        for (name, value) in response.cookies() {
            if value.is_empty() {
                self.jar.remove(&name);
            } else {
                self.jar.insert(name, value);
            }
        }
    }

    /// GET with the jar.
    pub fn get(&mut self, target: &str) -> Response {
        let cookie = self.cookie_field();
        let mut fields = vec![("Accept", "text/html")];
        if !cookie.is_empty() {
            fields.push(("Cookie", cookie.as_str()));
        }
        let response = self.client.get(target, &fields).expect("GET");
        self.remember(&response);
        response
    }

    /// POST a form with the jar.
    pub fn post_form(&mut self, target: &str, form: &[(&str, &str)]) -> Response {
        let bytes = self.form_post_bytes(target, form);
        self.client.send(&bytes).expect("POST");
        let response = self.client.read_response(false).expect("POST");
        self.remember(&response);
        response
    }

    /// The bytes of a same-origin form post with the jar's cookies.
    pub fn form_post_bytes(&self, target: &str, form: &[(&str, &str)]) -> Vec<u8> {
        let body = form
            .iter()
            .map(|(n, v)| format!("{}={}", encode(n), encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let cookie = self.cookie_field();
        let mut fields = vec![
            ("Accept", "text/html"),
            ("Origin", self.origin.as_str()),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ];
        if !cookie.is_empty() {
            fields.push(("Cookie", cookie.as_str()));
        }
        request_bytes("POST", target, &fields, body.as_bytes())
    }

    /// Fetches the login form and posts `user` and `password` to it;
    /// returns the answer to the post.
    pub fn log_in(&mut self, user: &str, password: &str) -> Response {
        let form = self.get("/__login__");
        let csrf = hidden_field(&form.text(), "csrf").expect("the login form has a CSRF token");
        self.post_form(
            "/__login__",
            &[("username", user), ("password", password), ("csrf", &csrf)],
        )
    }
}

/// The value of the hidden input `name` in `html`.
pub fn hidden_field(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')?;
    Some(html[start..start + end].to_string())
}

/// Form-urlencodes `text`.
pub fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b' ' => "+".to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

// ===== srvtests-b: helpers for tests/server_robustness.rs ====================
// (slowloris, login flood, connection caps, abrupt disconnects, shutdown,
// reload). Appended as a block; nothing above is changed.

/// A password-file line (`name:hash`, newline included) for `user`, hashed
/// with `params`: expensive parameters make a check that takes a while.
pub fn hash_line(user: &str, password: &str, params: HashParams) -> String {
    let mut rng = TestRng::seeded(11);
    let hash = hash_password(password.as_bytes(), params, &mut rng).unwrap();
    format!("{user}:{}\n", hash.as_str())
}

/// Writes a password file made of ready lines (see [`hash_line`]).
pub fn write_user_lines(path: &std::path::Path, lines: &[String]) {
    std::fs::write(path, lines.concat()).unwrap();
}

/// A bare TCP connection to `addr`, reads timing out after [`PATIENCE`].
pub fn raw_tcp(addr: SocketAddr) -> TcpStream {
    let tcp = TcpStream::connect(addr).expect("connects");
    tcp.set_read_timeout(Some(PATIENCE)).unwrap();
    tcp
}

/// The first flight a TLS client sends the server (its ClientHello).
pub fn client_hello(server: &TestServer) -> Vec<u8> {
    let config = tls_client_config(server.leaf.as_ref().expect("a certificate"), &[b"http/1.1"]);
    let name = ServerName::try_from("localhost").unwrap();
    let mut conn = ClientConnection::new(config, name).unwrap();
    let mut hello = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut hello).unwrap();
    }
    hello
}

impl Client {
    /// A plain client over a connection the test opened itself.
    pub fn from_tcp(tcp: TcpStream) -> Client {
        Client {
            stream: Stream::Plain(tcp),
            buffered: Vec::new(),
        }
    }

    /// The TCP socket under the client (timeouts, peeking).
    pub fn tcp(&self) -> &TcpStream {
        match &self.stream {
            Stream::Plain(s) => s,
            Stream::Tls(s) => &s.sock,
        }
    }
}

impl Browser {
    /// Fetches the login form and returns the bytes of a complete login
    /// post for `user` (CSRF token, cookies, Origin), unsent: a test sends
    /// them whole or in part, when it chooses.
    pub fn login_post_bytes(&mut self, user: &str, password: &str) -> Vec<u8> {
        let form = self.get("/__login__");
        let csrf = hidden_field(&form.text(), "csrf").expect("the login form has a CSRF token");
        self.form_post_bytes(
            "/__login__",
            &[("username", user), ("password", password), ("csrf", &csrf)],
        )
    }
}
// ===== end of srvtests-b's helpers ============================================
