//! The server's TLS policy, seen from a client: versions, ALPN, cipher
//! order, resumption, no 0-RTT, and certificates loaded from PEM files.
//!
//! Everything runs in memory: a rustls client and server connection are
//! driven against each other by moving their TLS bytes through buffers, so
//! no sockets or threads are involved.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use portcullis_mio::tls::{self, TlsError, TlsSetup};
use rustls::client::{Resumption, Tls12Resumption};
use rustls::crypto::ring::{cipher_suite, default_provider};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::server::{NoServerSessionStorage, ProducesTickets};
use rustls::{
    AlertDescription, ClientConfig, ClientConnection, ConnectionCommon, Error, HandshakeKind,
    PeerIncompatible, ProtocolVersion, RootCertStore, ServerConfig, ServerConnection,
    SupportedProtocolVersion,
};

// ---------------------------------------------------------------------------
// The in-memory driver.

/// How a handshake failed: each side's error, if it saw one. The side that
/// gave up first has the real reason; the other normally has the alert.
#[derive(Debug)]
struct Failure {
    server: Option<Error>,
    client: Option<Error>,
}

/// A fresh client and server connection, nothing exchanged yet.
fn connect(
    client: &Arc<ClientConfig>,
    server: &Arc<ServerConfig>,
    name: &str,
) -> (ClientConnection, ServerConnection) {
    let name = ServerName::try_from(name.to_string()).expect("a valid server name");
    let client = ClientConnection::new(Arc::clone(client), name).expect("client connection");
    let server = ServerConnection::new(Arc::clone(server)).expect("server connection");
    (client, server)
}

/// Moves everything `from` wants to send into `to` and lets `to` process
/// it. Returns the number of bytes moved, or `to`'s error.
fn transfer<A, B>(
    from: &mut ConnectionCommon<A>,
    to: &mut ConnectionCommon<B>,
) -> Result<usize, Error> {
    let mut bytes = Vec::new();
    while from.wants_write() {
        from.write_tls(&mut bytes).expect("writing into a Vec");
    }
    let mut rest = &bytes[..];
    while !rest.is_empty() {
        // At handshake sizes rustls's receive buffer never fills up.
        to.read_tls(&mut rest).expect("reading from a slice");
        to.process_new_packets()?;
    }
    Ok(bytes.len())
}

/// Passes bytes both ways until neither side has anything to say. When one
/// side fails, its alert is still delivered to the other, as a real server
/// flushes alerts before closing.
fn drive(client: &mut ClientConnection, server: &mut ServerConnection) -> Result<(), Box<Failure>> {
    // A handshake takes two or three round trips, tickets one more; a
    // bound catches a livelock instead of hanging the test.
    for _ in 0..20 {
        let to_server = match transfer(client, server) {
            Ok(n) => n,
            Err(e) => {
                let client_error = transfer(server, client).err();
                return Err(Box::new(Failure {
                    server: Some(e),
                    client: client_error,
                }));
            }
        };
        let to_client = match transfer(server, client) {
            Ok(n) => n,
            Err(e) => {
                let server_error = transfer(client, server).err();
                return Err(Box::new(Failure {
                    server: server_error,
                    client: Some(e),
                }));
            }
        };
        if to_server == 0 && to_client == 0 {
            if client.is_handshaking() || server.is_handshaking() {
                // Both quiet but not done: a stall, with no error on either side.
                return Err(Box::new(Failure {
                    server: None,
                    client: None,
                }));
            }
            return Ok(());
        }
    }
    panic!("the handshake did not settle in 20 rounds");
}

/// A whole handshake between fresh connections.
fn handshake(
    client: &Arc<ClientConfig>,
    server: &Arc<ServerConfig>,
    name: &str,
) -> Result<(ClientConnection, ServerConnection), Box<Failure>> {
    let (mut client, mut server) = connect(client, server, name);
    drive(&mut client, &mut server)?;
    Ok((client, server))
}

// ---------------------------------------------------------------------------
// Clients.

const TLS13: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];
const TLS12: &[&SupportedProtocolVersion] = &[&rustls::version::TLS12];
const BOTH: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13, &rustls::version::TLS12];

/// A client that trusts exactly `cert`, with the given versions and ALPN
/// offer, using `provider`'s cipher suites in `provider`'s order.
fn client_with(
    provider: CryptoProvider,
    cert: &CertificateDer<'static>,
    versions: &[&'static SupportedProtocolVersion],
    alpn: &[&[u8]],
) -> ClientConfig {
    let mut roots = RootCertStore::empty();
    roots
        .add(cert.clone())
        .expect("the certificate as a trust anchor");
    let mut config = ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(versions)
        .expect("versions the provider supports")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    config
}

/// A browser-like client: trusts `cert`, offers TLS 1.3 and 1.2 (or fewer)
/// and ALPN http/1.1.
fn client(
    cert: &CertificateDer<'static>,
    versions: &[&'static SupportedProtocolVersion],
) -> Arc<ClientConfig> {
    Arc::new(client_with(
        default_provider(),
        cert,
        versions,
        &[b"http/1.1"],
    ))
}

fn demo() -> TlsSetup {
    tls::self_signed().expect("the demo certificate")
}

// ---------------------------------------------------------------------------
// Versions and ALPN.

#[test]
fn the_demo_certificate_serves_tls13_and_http11_for_every_loopback_name() {
    let setup = demo();
    let client = client(&setup.leaf, BOTH);
    for name in ["localhost", "127.0.0.1", "::1"] {
        let (client, server) =
            handshake(&client, &setup.config, name).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert_eq!(
            client.protocol_version(),
            Some(ProtocolVersion::TLSv1_3),
            "{name}"
        );
        assert_eq!(client.alpn_protocol(), Some(&b"http/1.1"[..]), "{name}");
        assert_eq!(server.alpn_protocol(), Some(&b"http/1.1"[..]), "{name}");
        assert_eq!(client.handshake_kind(), Some(HandshakeKind::Full), "{name}");
    }
}

#[test]
fn a_client_checks_the_name_so_trusting_the_certificate_is_not_enough() {
    // The control for the test above: the client really verifies the
    // certificate, so a name it does not cover fails.
    let setup = demo();
    let failure = handshake(&client(&setup.leaf, BOTH), &setup.config, "example.org")
        .expect_err("example.org is not in the demo certificate");
    assert!(
        matches!(failure.client, Some(Error::InvalidCertificate(_))),
        "{failure:?}"
    );
}

#[test]
fn a_tls12_only_client_gets_tls12_with_ecdhe() {
    let setup = demo();
    let (client, server) =
        handshake(&client(&setup.leaf, TLS12), &setup.config, "localhost").expect("TLS 1.2");
    assert_eq!(server.protocol_version(), Some(ProtocolVersion::TLSv1_2));
    assert_eq!(client.alpn_protocol(), Some(&b"http/1.1"[..]));
    let suite = format!(
        "{:?}",
        server.negotiated_cipher_suite().expect("a suite").suite()
    );
    assert!(suite.starts_with("TLS_ECDHE_ECDSA_WITH_"), "{suite}");
}

#[test]
fn an_h2_only_client_is_refused_with_no_application_protocol() {
    let setup = demo();
    for versions in [TLS13, TLS12] {
        let h2_only = Arc::new(client_with(
            default_provider(),
            &setup.leaf,
            versions,
            &[b"h2"],
        ));
        let failure =
            handshake(&h2_only, &setup.config, "localhost").expect_err("no protocol in common");
        assert!(
            matches!(failure.server, Some(Error::NoApplicationProtocol)),
            "{failure:?}"
        );
        // The client was told why, by alert.
        assert!(
            matches!(
                failure.client,
                Some(Error::AlertReceived(
                    AlertDescription::NoApplicationProtocol
                ))
            ),
            "{failure:?}"
        );
    }
}

#[test]
fn a_client_offering_h2_and_http11_gets_http11() {
    let setup = demo();
    let both = Arc::new(client_with(
        default_provider(),
        &setup.leaf,
        BOTH,
        &[b"h2", b"http/1.1"],
    ));
    let (client, _) = handshake(&both, &setup.config, "localhost").expect("handshake");
    assert_eq!(client.alpn_protocol(), Some(&b"http/1.1"[..]));
}

#[test]
fn a_client_offering_no_alpn_is_served() {
    let setup = demo();
    let no_alpn = Arc::new(client_with(default_provider(), &setup.leaf, BOTH, &[]));
    let (client, server) = handshake(&no_alpn, &setup.config, "localhost").expect("handshake");
    assert_eq!(client.protocol_version(), Some(ProtocolVersion::TLSv1_3));
    assert_eq!(server.alpn_protocol(), None);
}

#[test]
fn the_servers_cipher_order_wins_over_the_clients() {
    let setup = demo();
    // A client that prefers ChaCha20, then AES-128, and AES-256 last.
    let tls13_backwards = CryptoProvider {
        cipher_suites: vec![
            cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
            cipher_suite::TLS13_AES_128_GCM_SHA256,
            cipher_suite::TLS13_AES_256_GCM_SHA384,
        ],
        ..default_provider()
    };
    let client13 = Arc::new(client_with(
        tls13_backwards,
        &setup.leaf,
        TLS13,
        &[b"http/1.1"],
    ));
    let (_, server) = handshake(&client13, &setup.config, "localhost").expect("TLS 1.3");
    assert_eq!(
        server.negotiated_cipher_suite(),
        Some(cipher_suite::TLS13_AES_256_GCM_SHA384)
    );

    let tls12_backwards = CryptoProvider {
        cipher_suites: vec![
            cipher_suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
            cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        ],
        ..default_provider()
    };
    let client12 = Arc::new(client_with(
        tls12_backwards,
        &setup.leaf,
        TLS12,
        &[b"http/1.1"],
    ));
    let (_, server) = handshake(&client12, &setup.config, "localhost").expect("TLS 1.2");
    assert_eq!(
        server.negotiated_cipher_suite(),
        Some(cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384)
    );
}

// ---------------------------------------------------------------------------
// TLS 1.1: rustls clients cannot speak it, so the ClientHello is built by hand.

/// `body` prefixed with its length in `width` big-endian bytes.
fn prefixed(width: usize, body: &[u8]) -> Vec<u8> {
    let len = body.len().to_be_bytes();
    let mut out = len[len.len() - width..].to_vec();
    out.extend_from_slice(body);
    out
}

/// One extension: 2-byte type, 2-byte length, contents.
fn extension(kind: u16, contents: &[u8]) -> Vec<u8> {
    let mut out = kind.to_be_bytes().to_vec();
    out.extend(prefixed(2, contents));
    out
}

/// A TLS 1.1 ClientHello record, as an OpenSSL 1.0.0-era client sends it:
///
/// ```text
/// record:     16                  content type: handshake
///             03 01               record version (TLS 1.0, as clients send)
///             LL LL               record length
/// handshake:  01                  ClientHello
///             LL LL LL            message length
/// hello:      03 02               client_version: TLS 1.1
///             32 bytes            random
///             00                  session id: empty
///             00 06               cipher suites, 6 bytes:
///               c0 2b               ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
///               c0 09               ECDHE_ECDSA_WITH_AES_128_CBC_SHA
///               00 2f               RSA_WITH_AES_128_CBC_SHA
///             01 00               compression: one method, null
///             LL LL               extensions:
///               00 0a ...           supported_groups: secp256r1
///               00 0b ...           ec_point_formats: uncompressed
///               00 0d ...           signature_algorithms (optional)
/// ```
///
/// There is no supported_versions extension (TLS 1.3's way to offer
/// versions) and no key_share: `client_version` is all the server has.
/// `signature_algorithms` is a TLS 1.2 extension a 1.1 client would not
/// normally send; with it, the only thing wrong with the hello is its
/// version.
fn tls11_client_hello(with_signature_algorithms: bool) -> Vec<u8> {
    let mut hello = vec![0x03, 0x02];
    hello.extend([0x42; 32]);
    hello.push(0x00);
    hello.extend(prefixed(2, &[0xc0, 0x2b, 0xc0, 0x09, 0x00, 0x2f]));
    hello.extend([0x01, 0x00]);
    let mut extensions = extension(0x000a, &prefixed(2, &[0x00, 0x17]));
    extensions.extend(extension(0x000b, &prefixed(1, &[0x00])));
    if with_signature_algorithms {
        // ecdsa_secp256r1_sha256, rsa_pkcs1_sha256
        extensions.extend(extension(0x000d, &prefixed(2, &[0x04, 0x03, 0x04, 0x01])));
    }
    hello.extend(prefixed(2, &extensions));

    let mut handshake = vec![0x01];
    handshake.extend(prefixed(3, &hello));
    let mut record = vec![0x16, 0x03, 0x01];
    record.extend(prefixed(2, &handshake));
    record
}

/// Feeds `record` to a fresh server connection: its error and what it wrote.
fn server_reply_to(record: &[u8]) -> (Error, Vec<u8>) {
    let setup = demo();
    let mut server = ServerConnection::new(setup.config).expect("server connection");
    let mut rest = record;
    server.read_tls(&mut rest).expect("reading from a slice");
    assert!(rest.is_empty(), "the whole record was taken");
    let error = server
        .process_new_packets()
        .expect_err("a TLS 1.1 hello must be refused");
    let mut written = Vec::new();
    while server.wants_write() {
        server.write_tls(&mut written).expect("writing into a Vec");
    }
    (error, written)
}

#[test]
fn a_tls11_client_hello_is_refused_with_a_protocol_version_alert() {
    let (error, written) = server_reply_to(&tls11_client_hello(true));
    assert_eq!(
        error,
        Error::PeerIncompatible(PeerIncompatible::Tls12NotOffered)
    );
    // One plaintext alert record: type 21, any 0x03xx version, length 2,
    // then level fatal (2) and description protocol_version (70).
    assert_eq!(written.len(), 7, "{written:02x?}");
    assert_eq!(written[0], 0x15);
    assert_eq!(written[1], 0x03);
    assert_eq!(&written[3..], [0x00, 0x02, 0x02, 70]);
}

#[test]
fn a_plain_tls11_client_hello_is_refused_too() {
    // Without signature_algorithms the server gives up one check earlier,
    // for that reason instead; the client is turned away all the same.
    let (error, written) = server_reply_to(&tls11_client_hello(false));
    assert!(matches!(error, Error::PeerIncompatible(_)), "{error:?}");
    assert_eq!(
        written.first(),
        Some(&0x15),
        "an alert record: {written:02x?}"
    );
    assert_eq!(written.get(5), Some(&0x02), "a fatal one: {written:02x?}");
}

#[test]
fn the_hand_built_hello_is_accepted_once_it_says_tls12() {
    // The control for the two tests above: the same bytes with
    // client_version 1.2 are a hello the server goes on with (it answers
    // with a ServerHello), so the refusal was about the version alone.
    let mut record = tls11_client_hello(true);
    record[10] = 0x03; // client_version, after the 5-byte record and 4-byte handshake headers
    let setup = demo();
    let mut server = ServerConnection::new(setup.config).expect("server connection");
    let mut rest = &record[..];
    server.read_tls(&mut rest).expect("reading from a slice");
    server
        .process_new_packets()
        .expect("a TLS 1.2 hello is fine");
    let mut written = Vec::new();
    server.write_tls(&mut written).expect("writing into a Vec");
    // A handshake record (22) whose first message is ServerHello (2).
    assert_eq!(written.first(), Some(&0x16), "{written:02x?}");
    assert_eq!(written.get(5), Some(&0x02), "{written:02x?}");
}

// ---------------------------------------------------------------------------
// Resumption and 0-RTT.

#[test]
fn a_second_tls13_connection_resumes_with_a_ticket() {
    let setup = demo();
    let client = client(&setup.leaf, TLS13);
    let (first, _) = handshake(&client, &setup.config, "localhost").expect("first");
    assert_eq!(first.handshake_kind(), Some(HandshakeKind::Full));

    let (again, server) = handshake(&client, &setup.config, "localhost").expect("second");
    assert_eq!(again.handshake_kind(), Some(HandshakeKind::Resumed));
    assert_eq!(server.handshake_kind(), Some(HandshakeKind::Resumed));
    assert_eq!(again.alpn_protocol(), Some(&b"http/1.1"[..]));
}

#[test]
fn tls12_resumes_both_with_tickets_and_with_session_ids() {
    let setup = demo();
    for how in [
        Tls12Resumption::SessionIdOrTickets,
        Tls12Resumption::SessionIdOnly,
    ] {
        let mut config = client_with(default_provider(), &setup.leaf, TLS12, &[b"http/1.1"]);
        // SessionIdOnly makes the server use its stateful cache.
        config.resumption = Resumption::in_memory_sessions(8).tls12_resumption(how);
        let client = Arc::new(config);
        let (first, _) = handshake(&client, &setup.config, "localhost").expect("first");
        assert_eq!(first.handshake_kind(), Some(HandshakeKind::Full), "{how:?}");
        let (_, server) = handshake(&client, &setup.config, "localhost").expect("second");
        assert_eq!(
            server.handshake_kind(),
            Some(HandshakeKind::Resumed),
            "{how:?}"
        );
    }
}

#[test]
fn the_tickets_alone_resume_sessions() {
    // With the stateful cache taken away, resumption still works: the
    // stateless tickets are on.
    let setup = demo();
    let mut tickets_only = (*setup.config).clone();
    tickets_only.session_storage = Arc::new(NoServerSessionStorage {});
    let tickets_only = Arc::new(tickets_only);
    for versions in [TLS13, TLS12] {
        let client = client(&setup.leaf, versions);
        handshake(&client, &tickets_only, "localhost").expect("first");
        let (_, server) = handshake(&client, &tickets_only, "localhost").expect("second");
        assert_eq!(server.handshake_kind(), Some(HandshakeKind::Resumed));
    }
}

#[test]
fn a_client_ready_for_0rtt_is_not_offered_it() {
    let setup = demo();
    let mut config = client_with(default_provider(), &setup.leaf, TLS13, &[b"http/1.1"]);
    config.enable_early_data = true;
    let client = Arc::new(config);
    handshake(&client, &setup.config, "localhost").expect("first");

    let (mut again, mut server) = connect(&client, &setup.config, "localhost");
    // The ticket does not allow early data, so the client cannot send any.
    assert!(again.early_data().is_none());
    drive(&mut again, &mut server).expect("second");
    assert_eq!(again.handshake_kind(), Some(HandshakeKind::Resumed));
    assert!(!again.is_early_data_accepted());
}

/// A ticketer that is switched off, so that rustls falls back to
/// session-id tickets (the only kind it allows early data with).
#[derive(Debug)]
struct NoTickets;

impl ProducesTickets for NoTickets {
    fn enabled(&self) -> bool {
        false
    }
    fn lifetime(&self) -> u32 {
        0
    }
    fn encrypt(&self, _plain: &[u8]) -> Option<Vec<u8>> {
        None
    }
    fn decrypt(&self, _cipher: &[u8]) -> Option<Vec<u8>> {
        None
    }
}

#[test]
fn the_0rtt_test_would_notice_a_server_that_allowed_it() {
    // The control for the test above: the same client against a server
    // configured for early data does get to send it.
    let setup = demo();
    let mut permissive = (*setup.config).clone();
    permissive.max_early_data_size = 16 * 1024;
    permissive.ticketer = Arc::new(NoTickets);
    let permissive = Arc::new(permissive);

    let mut config = client_with(default_provider(), &setup.leaf, TLS13, &[b"http/1.1"]);
    config.enable_early_data = true;
    let client = Arc::new(config);
    handshake(&client, &permissive, "localhost").expect("first");
    let (mut again, _) = connect(&client, &permissive, "localhost");
    assert!(again.early_data().is_some());
}

// ---------------------------------------------------------------------------
// Certificates and keys from PEM files.

/// PEM text for `der` (RFC 7468): base64 in 64-column lines between BEGIN
/// and END lines. rcgen's own PEM output needs its `pem` feature, which the
/// server does not use.
fn pem(label: &str, der: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut base64 = Vec::new();
    for chunk in der.chunks(3) {
        let bits = chunk
            .iter()
            .enumerate()
            .fold(0u32, |bits, (i, &b)| bits | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            base64.push(match i <= chunk.len() {
                true => ALPHABET[(bits >> (18 - 6 * i) & 63) as usize],
                false => b'=',
            });
        }
    }
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in base64.chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// A self-signed certificate and its PKCS#8 key, made by rcgen.
struct Issued {
    cert: CertificateDer<'static>,
    key: Vec<u8>,
}

fn issue(alg: &'static rcgen::SignatureAlgorithm, names: &[&str]) -> Issued {
    issue_with(alg, names, |_| {})
}

fn issue_with(
    alg: &'static rcgen::SignatureAlgorithm,
    names: &[&str],
    adjust: impl FnOnce(&mut rcgen::CertificateParams),
) -> Issued {
    let key = rcgen::KeyPair::generate_for(alg).expect("key");
    let mut params =
        rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .expect("params");
    adjust(&mut params);
    let cert = params.self_signed(&key).expect("certificate");
    Issued {
        cert: cert.der().clone(),
        key: key.serialize_der(),
    }
}

/// A temporary directory to write PEM files into.
struct Files(tempfile::TempDir);

impl Files {
    fn new() -> Self {
        Files(tempfile::tempdir().expect("temporary directory"))
    }

    fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.0.path().join(name);
        std::fs::write(&path, contents).expect("write a test file");
        path
    }

    fn cert(&self, name: &str, certs: &[&CertificateDer<'static>]) -> PathBuf {
        let text: String = certs.iter().map(|c| pem("CERTIFICATE", c)).collect();
        self.write(name, &text)
    }

    fn key(&self, name: &str, key: &[u8]) -> PathBuf {
        self.write(name, &pem("PRIVATE KEY", key))
    }
}

fn load(cert: &Path, key: &Path) -> TlsSetup {
    tls::from_pem_files(cert, key).unwrap_or_else(|e| panic!("{e}"))
}

fn refuse(cert: &Path, key: &Path) -> TlsError {
    match tls::from_pem_files(cert, key) {
        Ok(setup) => panic!("loaded: {setup:?}"),
        Err(e) => e,
    }
}

#[test]
fn a_certificate_and_key_from_pem_files_serve_tls() {
    let files = Files::new();
    let issued = issue(&rcgen::PKCS_ECDSA_P256_SHA256, &["portcullis.test"]);
    let cert = files.cert("cert.pem", &[&issued.cert]);
    let key = files.key("key.pem", &issued.key);

    let setup = load(&cert, &key);
    assert_eq!(setup.names, ["portcullis.test"]);
    assert_eq!(setup.leaf, issued.cert);
    assert_eq!(
        setup.fingerprint,
        format!("SHA256 {}", tls::fingerprint(&issued.cert))
    );
    assert!(setup.warnings.is_empty(), "{:?}", setup.warnings);

    let (client, _) = handshake(
        &client(&issued.cert, BOTH),
        &setup.config,
        "portcullis.test",
    )
    .expect("handshake");
    assert_eq!(client.protocol_version(), Some(ProtocolVersion::TLSv1_3));
    assert_eq!(client.alpn_protocol(), Some(&b"http/1.1"[..]));
}

#[test]
fn p384_and_ed25519_keys_are_accepted() {
    for alg in [&rcgen::PKCS_ECDSA_P384_SHA384, &rcgen::PKCS_ED25519] {
        let files = Files::new();
        let issued = issue(alg, &["portcullis.test"]);
        let setup = load(
            &files.cert("cert.pem", &[&issued.cert]),
            &files.key("key.pem", &issued.key),
        );
        handshake(
            &client(&issued.cert, BOTH),
            &setup.config,
            "portcullis.test",
        )
        .unwrap_or_else(|e| panic!("{alg:?}: {e:?}"));
    }
}

#[test]
fn a_missing_file_is_named() {
    let files = Files::new();
    let issued = issue(&rcgen::PKCS_ECDSA_P256_SHA256, &["portcullis.test"]);
    let cert = files.cert("cert.pem", &[&issued.cert]);
    let key = files.key("key.pem", &issued.key);
    let nowhere = files.0.path().join("nowhere.pem");

    let error = refuse(&nowhere, &key);
    assert!(matches!(error, TlsError::Read { .. }), "{error:?}");
    assert_eq!(
        error.to_string(),
        format!("{}: no such file", nowhere.display())
    );

    let error = refuse(&cert, &nowhere);
    assert_eq!(
        error.to_string(),
        format!("{}: no such file", nowhere.display())
    );
}

#[test]
fn a_certificate_file_without_a_certificate_is_refused() {
    let files = Files::new();
    let issued = issue(&rcgen::PKCS_ECDSA_P256_SHA256, &["portcullis.test"]);
    let key = files.key("key.pem", &issued.key);

    let empty = files.write("empty.pem", "");
    let error = refuse(&empty, &key);
    assert!(matches!(error, TlsError::NoCertificate { .. }), "{error:?}");
    assert!(error
        .to_string()
        .starts_with(&format!("{}: no certificate", empty.display())));

    // The files given the wrong way round: say so.
    let error = refuse(&key, &empty);
    assert!(matches!(error, TlsError::NoCertificate { .. }), "{error:?}");
    assert!(error.to_string().contains("swapped"), "{error}");
}

#[test]
fn a_key_file_without_a_key_is_refused() {
    let files = Files::new();
    let issued = issue(&rcgen::PKCS_ECDSA_P256_SHA256, &["portcullis.test"]);
    let cert = files.cert("cert.pem", &[&issued.cert]);

    let error = refuse(&cert, &cert);
    assert!(matches!(error, TlsError::NoPrivateKey { .. }), "{error:?}");
    assert!(error
        .to_string()
        .starts_with(&format!("{}: no private key", cert.display())));
    assert!(error.to_string().contains("swapped"), "{error}");

    // An encrypted key is not a key the server can use unattended.
    let encrypted = files.write("encrypted.pem", &pem("ENCRYPTED PRIVATE KEY", &issued.key));
    let error = refuse(&cert, &encrypted);
    assert!(matches!(error, TlsError::NoPrivateKey { .. }), "{error:?}");
    assert!(error.to_string().contains("encrypted"), "{error}");
}

#[test]
fn a_key_that_is_not_the_certificates_is_refused() {
    let files = Files::new();
    let ours = issue(&rcgen::PKCS_ECDSA_P256_SHA256, &["portcullis.test"]);
    let theirs = issue(&rcgen::PKCS_ECDSA_P256_SHA256, &["portcullis.test"]);
    let cert = files.cert("cert.pem", &[&ours.cert]);
    let key = files.key("key.pem", &theirs.key);

    let error = refuse(&cert, &key);
    assert!(
        matches!(
            error,
            TlsError::KeyMismatch {
                matches_position: None,
                ..
            }
        ),
        "{error:?}"
    );
    let shown = error.to_string();
    assert!(shown.contains(&*key.to_string_lossy()), "{shown}");
    assert!(shown.contains(&*cert.to_string_lossy()), "{shown}");
    // Never any of the key itself.
    let key_pem = pem("PRIVATE KEY", &theirs.key);
    let body_line = key_pem.lines().nth(1).expect("a base64 line");
    assert!(!shown.contains(body_line), "{shown}");
}

#[test]
fn a_chain_with_the_leaf_not_first_is_refused_and_explained() {
    let files = Files::new();
    let leaf = issue(&rcgen::PKCS_ECDSA_P256_SHA256, &["portcullis.test"]);
    let other = issue(&rcgen::PKCS_ECDSA_P256_SHA256, &["ca.test"]);
    let cert = files.cert("chain.pem", &[&other.cert, &leaf.cert]);
    let key = files.key("key.pem", &leaf.key);
    let error = refuse(&cert, &key);
    assert!(
        matches!(
            error,
            TlsError::KeyMismatch {
                matches_position: Some(2),
                ..
            }
        ),
        "{error:?}"
    );

    // In the right order the same files load, intermediates after the leaf.
    let cert = files.cert("chain.pem", &[&leaf.cert, &other.cert]);
    assert_eq!(load(&cert, &key).names, ["portcullis.test"]);
}

#[test]
fn a_key_ring_cannot_use_is_refused() {
    let files = Files::new();
    let issued = issue(&rcgen::PKCS_ECDSA_P256_SHA256, &["portcullis.test"]);
    let cert = files.cert("cert.pem", &[&issued.cert]);
    // A PRIVATE KEY section holding an empty SEQUENCE, not a key.
    let key = files.key("key.pem", &[0x30, 0x00]);
    let error = refuse(&cert, &key);
    assert!(
        matches!(error, TlsError::UnsupportedKey { .. }),
        "{error:?}"
    );
    assert!(error
        .to_string()
        .starts_with(&format!("{}: unsupported", key.display())));
}

#[test]
fn broken_pem_is_refused() {
    let files = Files::new();
    let issued = issue(&rcgen::PKCS_ECDSA_P256_SHA256, &["portcullis.test"]);
    let key = files.key("key.pem", &issued.key);
    let full = pem("CERTIFICATE", &issued.cert);
    // Cut before the END line.
    let cut = files.write("cut.pem", &full[..full.len() / 2]);
    let error = refuse(&cut, &key);
    assert!(matches!(error, TlsError::BadPem { .. }), "{error:?}");
    assert!(error
        .to_string()
        .starts_with(&format!("{}: malformed PEM", cut.display())));
}

#[test]
fn an_expired_certificate_loads_with_a_warning() {
    let files = Files::new();
    let issued = issue_with(&rcgen::PKCS_ECDSA_P256_SHA256, &["portcullis.test"], |p| {
        p.not_before = rcgen::date_time_ymd(2020, 1, 1);
        p.not_after = rcgen::date_time_ymd(2021, 1, 1);
    });
    let cert = files.cert("cert.pem", &[&issued.cert]);
    let setup = load(&cert, &files.key("key.pem", &issued.key));
    assert_eq!(setup.warnings.len(), 1, "{:?}", setup.warnings);
    assert!(
        setup.warnings[0].contains("expired at 2021-01-01T00:00:00Z"),
        "{:?}",
        setup.warnings
    );
    assert!(
        setup.warnings[0].contains(&*cert.to_string_lossy()),
        "{:?}",
        setup.warnings
    );

    // And clients do refuse it.
    let failure = handshake(
        &client(&issued.cert, BOTH),
        &setup.config,
        "portcullis.test",
    )
    .expect_err("expired");
    assert!(
        matches!(failure.client, Some(Error::InvalidCertificate(_))),
        "{failure:?}"
    );
}
