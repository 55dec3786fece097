//! TLS: the rustls server configuration, loading the certificate and key from
//! PEM files, and the demo mode's self-signed certificate.
//!
//! The choices, and why (DESIGN.md "Security defaults"):
//!
//! - **Crypto provider: ring, passed explicitly** to
//!   [`ServerConfig::builder_with_provider`]. Nothing here relies on a
//!   process-wide default provider, so no other crate in the process can
//!   change what this server negotiates.
//! - **TLS 1.3 and 1.2 only.** rustls has never implemented anything older; a
//!   TLS 1.0/1.1 ClientHello gets a fatal `protocol_version` alert.
//! - **Cipher suites: ring's defaults.** TLS 1.3: AES-256-GCM, AES-128-GCM,
//!   ChaCha20-Poly1305. TLS 1.2: only ECDHE key exchange (forward secrecy) with
//!   an AEAD (AES-GCM or ChaCha20-Poly1305), for ECDSA and RSA certificates; no
//!   CBC, no static RSA key exchange, no SHA-1 MACs. Key exchange groups:
//!   X25519, P-256, P-384.
//! - **Server order wins** (`ignore_client_order`): the server's list above is
//!   used, not whatever a client happens to put first.
//! - **ALPN exactly `http/1.1`.** A client that offers ALPN without
//!   `http/1.1` (an h2-only client) is refused with a `no_application_protocol`
//!   alert rather than being served a protocol it did not ask for; a client
//!   that offers no ALPN at all is served HTTP/1.1.
//! - **No 0-RTT** (`max_early_data_size` 0, and no 0.5-RTT data either): early
//!   data can be replayed, and a login form is the last place to allow that.
//!   (rustls also refuses early data whenever stateless tickets are on.)
//! - **Resumption on, both kinds.** Stateless tickets (ring's ticketer:
//!   ChaCha20-Poly1305 under a random key that changes every 6 hours, the
//!   previous one still accepted, so a ticket lasts at most 12 hours and a
//!   restart invalidates them all) serve TLS 1.3 and ticket-capable TLS
//!   1.2 clients; a bounded in-memory session-id cache
//!   ([`SESSION_CACHE_SIZE`] entries, oldest evicted first) serves TLS 1.2
//!   clients without tickets. Resumption saves a full key exchange and
//!   signature per reconnect, which matters on a login page that browsers
//!   reconnect to often.
//! - **Certificate and key checked at start**, each error naming the file:
//!   missing or unreadable, no certificate in it, no usable private key, a key
//!   type ring cannot sign with, or a key that is not the certificate's. An
//!   expired, not-yet-valid or soon-expiring certificate, or one without
//!   subject alternative names, is a *warning*, not an error: refusing to
//!   start would take the whole site down (redirect listener included) for
//!   what an operator may be about to fix, and clients will refuse the
//!   certificate anyway.
//! - **Demo certificate:** a fresh ECDSA P-256 key and self-signed
//!   certificate at every start, for `localhost`, `127.0.0.1` and `::1`, valid
//!   from one day ago (tolerating a client clock a little behind) to 30 days
//!   from now. Its SHA-256 fingerprint is printed so a user can check what
//!   the browser shows. The key never leaves memory.
//!
//! Nothing here prints or formats key material: errors about a key file name
//! the file and the problem, never its contents.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ParsedCertificate, ServerSessionMemoryCache};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;

/// The ALPN protocol this server speaks, and the only one it accepts.
pub const ALPN_HTTP_1_1: &[u8] = b"http/1.1";

/// Entries in the stateful TLS 1.2 session cache. One entry is a few hundred
/// bytes, so the cache stays around a megabyte at most; only TLS 1.2 clients
/// that do not take tickets use it.
pub const SESSION_CACHE_SIZE: usize = 4096;

/// A certificate or key file larger than this is refused unread: real ones
/// (a certificate with its chain, or a key) are a few kilobytes.
pub const MAX_PEM_FILE_BYTES: u64 = 1 << 20;

/// Within this long of its expiry, a certificate earns a warning at start.
pub const EXPIRY_WARNING: Duration = Duration::from_secs(14 * 24 * 60 * 60);

/// The demo certificate's names.
const DEMO_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// How long before now the demo certificate becomes valid.
const DEMO_BACKDATE: Duration = Duration::from_secs(24 * 60 * 60);

/// How long after now the demo certificate stays valid.
const DEMO_LIFETIME: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// A ready server configuration and what the start-up summary says about it.
#[derive(Clone)]
pub struct TlsSetup {
    /// The rustls server configuration, shared by every connection.
    pub config: Arc<ServerConfig>,
    /// The leaf (server's own) certificate, DER-encoded; a test client can
    /// trust it directly.
    pub leaf: CertificateDer<'static>,
    /// `"SHA256 AB:CD:..."` of the leaf certificate, for the start-up summary.
    pub fingerprint: String,
    /// The leaf certificate's subject alternative names (DNS names and IP
    /// addresses), for the summary.
    pub names: Vec<String>,
    /// Things an operator should know but that do not stop the server: an
    /// expired, not yet valid or soon-expiring certificate, or one with no
    /// subject alternative names. Empty for the demo certificate.
    pub warnings: Vec<String>,
}

impl fmt::Debug for TlsSetup {
    // By hand, so that no future field of the configuration (the key lives
    // in there) can end up in a log through `{:?}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsSetup")
            .field("fingerprint", &self.fingerprint)
            .field("names", &self.names)
            .field("warnings", &self.warnings)
            .finish_non_exhaustive()
    }
}

/// Why the TLS configuration could not be built. The message names the file
/// and what is wrong with it, and never includes key material.
#[derive(Debug)]
#[non_exhaustive]
pub enum TlsError {
    /// The file could not be opened or read.
    Read {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        error: io::Error,
    },
    /// The file is larger than [`MAX_PEM_FILE_BYTES`].
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// The file has a broken PEM section.
    BadPem {
        /// The file.
        path: PathBuf,
        /// What is broken (no file contents).
        reason: String,
    },
    /// The certificate file has no `CERTIFICATE` section.
    NoCertificate {
        /// The file.
        path: PathBuf,
        /// A likely cause, when one can be seen.
        hint: Option<&'static str>,
    },
    /// The first certificate in the file is not a valid X.509 certificate.
    BadCertificate {
        /// The file.
        path: PathBuf,
        /// What rustls said about it.
        reason: String,
    },
    /// The key file has no unencrypted private key section.
    NoPrivateKey {
        /// The file.
        path: PathBuf,
        /// A likely cause, when one can be seen.
        hint: Option<&'static str>,
    },
    /// The private key is not one ring can sign with (or is corrupt).
    UnsupportedKey {
        /// The key file.
        path: PathBuf,
    },
    /// The private key does not belong to the first certificate.
    KeyMismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// The 1-based position of a later certificate in the file that the
        /// key does match, if any (the chain is out of order).
        matches_position: Option<usize>,
    },
    /// The demo certificate could not be generated.
    Generate(String),
    /// rustls refused the configuration (e.g. no randomness for tickets).
    Config(rustls::Error),
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::Read { path, error } if error.kind() == io::ErrorKind::NotFound => {
                write!(f, "{}: no such file", path.display())
            }
            TlsError::Read { path, error } => {
                write!(f, "{}: cannot read: {error}", path.display())
            }
            TlsError::TooLarge { path } => write!(
                f,
                "{}: larger than {MAX_PEM_FILE_BYTES} bytes; not a PEM certificate or key file",
                path.display()
            ),
            TlsError::BadPem { path, reason } => {
                write!(f, "{}: malformed PEM: {reason}", path.display())
            }
            TlsError::NoCertificate { path, hint } => {
                write!(
                    f,
                    "{}: no certificate in it (expected a PEM \"BEGIN CERTIFICATE\" section)",
                    path.display()
                )?;
                write_hint(f, *hint)
            }
            TlsError::BadCertificate { path, reason } => {
                write!(f, "{}: not a valid certificate: {reason}", path.display())
            }
            TlsError::NoPrivateKey { path, hint } => {
                write!(
                    f,
                    "{}: no private key in it (expected a PEM \"BEGIN PRIVATE KEY\", \
                     \"BEGIN EC PRIVATE KEY\" or \"BEGIN RSA PRIVATE KEY\" section)",
                    path.display()
                )?;
                write_hint(f, *hint)
            }
            TlsError::UnsupportedKey { path } => write!(
                f,
                "{}: unsupported or corrupt private key (supported: RSA, ECDSA P-256 or P-384, \
                 Ed25519)",
                path.display()
            ),
            TlsError::KeyMismatch {
                cert,
                key,
                matches_position,
            } => {
                write!(
                    f,
                    "{}: the private key does not match the certificate in {}",
                    key.display(),
                    cert.display()
                )?;
                match matches_position {
                    Some(n) => write!(
                        f,
                        " (it matches certificate number {n} there: the server's own \
                         certificate must come first, then the intermediates)"
                    ),
                    None => Ok(()),
                }
            }
            TlsError::Generate(why) => write!(f, "cannot generate the demo certificate: {why}"),
            TlsError::Config(e) => write!(f, "TLS configuration refused: {e}"),
        }
    }
}

fn write_hint(f: &mut fmt::Formatter<'_>, hint: Option<&'static str>) -> fmt::Result {
    match hint {
        Some(hint) => write!(f, "; {hint}"),
        None => Ok(()),
    }
}

impl std::error::Error for TlsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TlsError::Read { error, .. } => Some(error),
            TlsError::Config(e) => Some(e),
            _ => None,
        }
    }
}

/// Loads the certificate chain (the server's own certificate first, then
/// any intermediates) and its private key (PKCS#8, SEC1 or PKCS#1, not
/// encrypted) from PEM files, checks that they belong together, and builds
/// the server configuration.
pub fn from_pem_files(cert: &Path, key: &Path) -> Result<TlsSetup, TlsError> {
    let chain = read_certificates(cert)?;
    let key_der = read_private_key(key)?;
    let Some(leaf) = chain.first().cloned() else {
        // read_certificates never returns an empty chain.
        return Err(TlsError::NoCertificate {
            path: cert.to_path_buf(),
            hint: None,
        });
    };

    // Check each part on its own first, so that the error names the right
    // file; with_single_cert below would report the same problems without
    // saying which file they came from.
    ParsedCertificate::try_from(&leaf).map_err(|e| TlsError::BadCertificate {
        path: cert.to_path_buf(),
        reason: e.to_string(),
    })?;
    let provider = provider();
    let signing_key = provider
        .key_provider
        .load_private_key(key_der.clone_key())
        .map_err(|_| TlsError::UnsupportedKey {
            path: key.to_path_buf(),
        })?;
    if key_mismatch(&leaf, &signing_key) {
        // An out-of-order chain is a common slip; say so when it is one.
        let matches_position = chain
            .iter()
            .enumerate()
            .skip(1)
            .find(|(_, other)| !key_mismatch(other, &signing_key))
            .map(|(index, _)| index + 1);
        return Err(TlsError::KeyMismatch {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            matches_position,
        });
    }

    let facts = leaf_facts(&leaf);
    let warnings = certificate_warnings(cert, &facts, SystemTime::now());
    let config = server_config(provider, chain, key_der)?;
    Ok(TlsSetup {
        config,
        fingerprint: format!("SHA256 {}", fingerprint(&leaf)),
        names: facts.names,
        leaf,
        warnings,
    })
}

/// Demo mode: a fresh ECDSA P-256 key and a self-signed certificate for
/// `localhost`, `127.0.0.1` and `::1`, valid from one day ago until 30 days
/// from now.
pub fn self_signed() -> Result<TlsSetup, TlsError> {
    let generate = |e: rcgen::Error| TlsError::Generate(e.to_string());
    let key_pair =
        rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(generate)?;
    let mut params =
        rcgen::CertificateParams::new(DEMO_NAMES.map(String::from).to_vec()).map_err(generate)?;
    let mut subject = rcgen::DistinguishedName::new();
    subject.push(rcgen::DnType::CommonName, "Portcullis demo (localhost)");
    params.distinguished_name = subject;
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];

    // rcgen takes `time` dates; build them from the Unix epoch so this
    // crate need not name `time` itself.
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|_| TlsError::Generate("the system clock is before 1970".into()))?;
    // Adding to a `time` date panics past the year 9999; refuse a clock that
    // far out instead.
    if since_epoch.as_secs() > 250_000_000_000 {
        return Err(TlsError::Generate(
            "the system clock is past the year 9000".into(),
        ));
    }
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    params.not_before = epoch + since_epoch.saturating_sub(DEMO_BACKDATE);
    params.not_after = epoch + since_epoch + DEMO_LIFETIME;

    let cert = params.self_signed(&key_pair).map_err(generate)?;
    let leaf = cert.der().clone();
    let key_der = PrivateKeyDer::from(key_pair);
    let config = server_config(provider(), vec![leaf.clone()], key_der)?;
    Ok(TlsSetup {
        config,
        fingerprint: format!("SHA256 {}", fingerprint(&leaf)),
        names: leaf_facts(&leaf).names,
        leaf,
        warnings: Vec::new(),
    })
}

/// The SHA-256 of a certificate's DER encoding as 32 colon-separated
/// upper-case hex bytes (`"AB:CD:..."`, 95 characters): the form browsers
/// show.
pub fn fingerprint(cert: &CertificateDer) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, cert.as_ref());
    let hex: Vec<String> = digest.as_ref().iter().map(|b| format!("{b:02X}")).collect();
    hex.join(":")
}

/// ring, always passed explicitly.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The server configuration with this module's policy (see the module docs).
fn server_config(
    provider: Arc<rustls::crypto::CryptoProvider>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(TlsError::Config)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(TlsError::Config)?;
    config.alpn_protocols = vec![ALPN_HTTP_1_1.to_vec()];
    config.ignore_client_order = true;
    config.max_early_data_size = 0;
    config.send_half_rtt_data = false;
    config.session_storage = ServerSessionMemoryCache::new(SESSION_CACHE_SIZE);
    config.ticketer = rustls::crypto::ring::Ticketer::new().map_err(TlsError::Config)?;
    Ok(Arc::new(config))
}

/// Whether `key` is known not to belong to `cert`. A key whose public half
/// cannot be compared counts as matching, as rustls itself treats it.
fn key_mismatch(cert: &CertificateDer<'static>, key: &Arc<dyn rustls::sign::SigningKey>) -> bool {
    let pair = CertifiedKey::new(vec![cert.clone()], Arc::clone(key));
    matches!(
        pair.keys_match(),
        Err(rustls::Error::InconsistentKeys(
            rustls::InconsistentKeys::KeyMismatch
        ))
    )
}

/// Reads a PEM file whole, refusing one larger than [`MAX_PEM_FILE_BYTES`].
fn read_pem_file(path: &Path) -> Result<Vec<u8>, TlsError> {
    let read_error = |error| TlsError::Read {
        path: path.to_path_buf(),
        error,
    };
    let file = File::open(path).map_err(read_error)?;
    let mut bytes = Vec::new();
    file.take(MAX_PEM_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() as u64 > MAX_PEM_FILE_BYTES {
        return Err(TlsError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    Ok(bytes)
}

/// Every `CERTIFICATE` section in the file, in order; at least one.
fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read_pem_file(path)?;
    let chain = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(path, e))?;
    if chain.is_empty() {
        let hint = if contains(&bytes, b"PRIVATE KEY-----") {
            Some("it holds a private key: are the certificate and key files swapped?")
        } else {
            der_hint(&bytes)
        };
        return Err(TlsError::NoCertificate {
            path: path.to_path_buf(),
            hint,
        });
    }
    Ok(chain)
}

/// The first private key section in the file.
fn read_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read_pem_file(path)?;
    match PrivateKeyDer::from_pem_slice(&bytes) {
        Ok(key) => Ok(key),
        Err(pem::Error::NoItemsFound) => {
            let hint = if contains(&bytes, b"ENCRYPTED PRIVATE KEY-----") {
                Some("the key is encrypted; decrypt it first (openssl pkey -in KEY -out NEW)")
            } else if contains(&bytes, b"CERTIFICATE-----") {
                Some("it holds a certificate: are the certificate and key files swapped?")
            } else {
                der_hint(&bytes)
            };
            Err(TlsError::NoPrivateKey {
                path: path.to_path_buf(),
                hint,
            })
        }
        Err(e) => Err(pem_error(path, e)),
    }
}

/// A PEM parse error as a message without file contents (the base64
/// decoder's error can quote a byte of a key file).
fn pem_error(path: &Path, error: pem::Error) -> TlsError {
    let reason = match error {
        pem::Error::Io(error) => {
            return TlsError::Read {
                path: path.to_path_buf(),
                error,
            }
        }
        pem::Error::SectionTooLarge => {
            return TlsError::TooLarge {
                path: path.to_path_buf(),
            }
        }
        pem::Error::MissingSectionEnd { .. } => "a section has no END line",
        pem::Error::IllegalSectionStart { .. } => "a BEGIN line is malformed",
        pem::Error::Base64Decode(_) => "a section's base64 is invalid",
        _ => "unreadable PEM",
    };
    TlsError::BadPem {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// A hint for a file that is binary DER (starts with a SEQUENCE tag).
fn der_hint(bytes: &[u8]) -> Option<&'static str> {
    (bytes.first() == Some(&0x30))
        .then_some("it looks like binary DER; convert it to PEM (openssl x509/pkey -outform PEM)")
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// What the start-up summary wants from the leaf certificate.
#[derive(Debug, Default, PartialEq)]
struct LeafFacts {
    /// Subject alternative names: DNS names and IP addresses, in order.
    names: Vec<String>,
    /// Start of validity, if it could be read.
    not_before: Option<SystemTime>,
    /// End of validity, if it could be read.
    not_after: Option<SystemTime>,
}

/// Warnings about a certificate that is loaded anyway.
fn certificate_warnings(path: &Path, facts: &LeafFacts, now: SystemTime) -> Vec<String> {
    let mut warnings = Vec::new();
    let shown = path.display();
    if let Some(not_after) = facts.not_after {
        let at = humantime::format_rfc3339_seconds(not_after);
        match not_after.duration_since(now) {
            Err(_) => warnings.push(format!(
                "certificate {shown} expired at {at}: clients will refuse it"
            )),
            Ok(left) if left < EXPIRY_WARNING => warnings.push(format!(
                "certificate {shown} expires at {at}, in {} days",
                left.as_secs() / 86_400
            )),
            Ok(_) => {}
        }
    }
    if let Some(not_before) = facts.not_before {
        if not_before > now {
            warnings.push(format!(
                "certificate {shown} is not valid until {}: clients will refuse it",
                humantime::format_rfc3339_seconds(not_before)
            ));
        }
    }
    if facts.names.is_empty() {
        warnings.push(format!(
            "certificate {shown} has no subject alternative names: clients will refuse it \
             for any host name"
        ));
    }
    warnings
}

/// Reads the names and validity period out of a DER certificate. rustls
/// offers no accessor for them, so this walks the few fields needed
/// (RFC 5280 section 4.1). Anything unexpected yields empty facts rather
/// than an error: they only feed the summary and warnings.
fn leaf_facts(cert: &CertificateDer) -> LeafFacts {
    read_leaf_facts(cert.as_ref()).unwrap_or_default()
}

const SEQUENCE: u8 = 0x30;

fn read_leaf_facts(der: &[u8]) -> Option<LeafFacts> {
    // Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signature }
    let (cert, _) = der_expect(der, SEQUENCE)?;
    let (tbs, _) = der_expect(cert, SEQUENCE)?;
    // TBSCertificate ::= SEQUENCE { [0] version OPTIONAL, serialNumber,
    //   signature, issuer, validity, subject, subjectPublicKeyInfo,
    //   [1] issuerUniqueID OPTIONAL, [2] subjectUniqueID OPTIONAL,
    //   [3] extensions OPTIONAL }
    let mut rest = tbs;
    let (tag, _, after) = der_next(rest)?;
    if tag == 0xa0 {
        rest = after;
    }
    let (_serial, rest) = der_expect(rest, 0x02)?;
    let (_signature, rest) = der_expect(rest, SEQUENCE)?;
    let (_issuer, rest) = der_expect(rest, SEQUENCE)?;
    let (validity, rest) = der_expect(rest, SEQUENCE)?;
    let (_subject, rest) = der_expect(rest, SEQUENCE)?;
    let (_spki, mut rest) = der_expect(rest, SEQUENCE)?;

    let mut facts = LeafFacts::default();
    // Validity ::= SEQUENCE { notBefore Time, notAfter Time }
    if let Some((tag, value, after)) = der_next(validity) {
        facts.not_before = der_time(tag, value);
        if let Some((tag, value, _)) = der_next(after) {
            facts.not_after = der_time(tag, value);
        }
    }

    while let Some((tag, value, after)) = der_next(rest) {
        rest = after;
        if tag != 0xa3 {
            continue;
        }
        // Extensions ::= SEQUENCE OF Extension
        // Extension ::= SEQUENCE { extnID OID, critical BOOLEAN DEFAULT FALSE,
        //   extnValue OCTET STRING }
        let (mut extensions, _) = der_expect(value, SEQUENCE)?;
        while let Some((extension, after)) = der_expect(extensions, SEQUENCE) {
            extensions = after;
            let (oid, mut fields) = der_expect(extension, 0x06)?;
            // subjectAltName, 2.5.29.17
            if oid != [0x55, 0x1d, 0x11] {
                continue;
            }
            if let Some((0x01, _, after)) = der_next(fields) {
                fields = after;
            }
            let (octets, _) = der_expect(fields, 0x04)?;
            let (mut general_names, _) = der_expect(octets, SEQUENCE)?;
            while let Some((tag, value, after)) = der_next(general_names) {
                general_names = after;
                match tag {
                    // dNSName [2] IMPLICIT IA5String
                    0x82 => {
                        if let Ok(name) = std::str::from_utf8(value) {
                            facts.names.push(name.to_string());
                        }
                    }
                    // iPAddress [7] IMPLICIT OCTET STRING
                    0x87 => {
                        let ip = match value.len() {
                            4 => <[u8; 4]>::try_from(value).ok().map(IpAddr::from),
                            16 => <[u8; 16]>::try_from(value).ok().map(IpAddr::from),
                            _ => None,
                        };
                        if let Some(ip) = ip {
                            facts.names.push(ip.to_string());
                        }
                    }
                    // Other name forms (e-mail, URI, ...) do not name a server.
                    _ => {}
                }
            }
        }
    }
    Some(facts)
}

/// The next DER element: its tag, its contents and the bytes after it.
/// `None` if the input is empty or truncated.
fn der_next(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    if tag & 0x1f == 0x1f {
        // Multi-byte tag numbers never occur in the fields read here.
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let (len_bytes, rest) = rest.split_at(count);
        let len = len_bytes
            .iter()
            .fold(0usize, |len, &b| (len << 8) | usize::from(b));
        (len, rest)
    };
    if rest.len() < len {
        return None;
    }
    let (value, rest) = rest.split_at(len);
    Some((tag, value, rest))
}

/// The next DER element if it has tag `want`: its contents and what follows.
fn der_expect(input: &[u8], want: u8) -> Option<(&[u8], &[u8])> {
    match der_next(input)? {
        (tag, value, rest) if tag == want => Some((value, rest)),
        _ => None,
    }
}

/// A certificate Time: UTCTime (`YYMMDDHHMMSSZ`, years 1950-2049) or
/// GeneralizedTime (`YYYYMMDDHHMMSSZ`), the only forms RFC 5280 allows.
fn der_time(tag: u8, value: &[u8]) -> Option<SystemTime> {
    let text = std::str::from_utf8(value).ok()?;
    let digits = text.strip_suffix('Z')?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let full = match (tag, digits.len()) {
        (0x17, 12) => {
            let century = if &digits[..2] < "50" { "20" } else { "19" };
            format!("{century}{digits}")
        }
        (0x18, 14) => digits.to_string(),
        _ => return None,
    };
    // humantime parses RFC 3339; rearrange YYYYMMDDHHMMSS into it.
    let rfc3339 = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &full[0..4],
        &full[4..6],
        &full[6..8],
        &full[8..10],
        &full[10..12],
        &full[12..14]
    );
    humantime::parse_rfc3339(&rfc3339).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(rfc3339: &str) -> SystemTime {
        humantime::parse_rfc3339(rfc3339).expect("test timestamps are valid")
    }

    #[test]
    fn fingerprint_is_sha256_as_colon_separated_upper_hex() {
        // The SHA-256 of "abc" (FIPS 180-2 appendix B.1), so the format is
        // checked against a known answer, not against ring again.
        let der = CertificateDer::from(b"abc".to_vec());
        assert_eq!(
            fingerprint(&der),
            "BA:78:16:BF:8F:01:CF:EA:41:41:40:DE:5D:AE:22:23:\
             B0:03:61:A3:96:17:7A:9C:B4:10:FF:61:F2:00:15:AD"
        );
    }

    #[test]
    fn fingerprint_of_a_certificate_is_95_characters_of_its_digest() {
        let setup = self_signed().expect("demo certificate");
        let shown = fingerprint(&setup.leaf);
        assert_eq!(shown.len(), 95, "32 bytes, two hex digits each, 31 colons");
        let bytes: Vec<u8> = shown
            .split(':')
            .map(|pair| {
                assert!(pair
                    .chars()
                    .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase()));
                u8::from_str_radix(pair, 16).expect("hex pair")
            })
            .collect();
        let digest = ring::digest::digest(&ring::digest::SHA256, setup.leaf.as_ref());
        assert_eq!(bytes, digest.as_ref());
        assert_eq!(setup.fingerprint, format!("SHA256 {shown}"));
    }

    #[test]
    fn demo_certificate_names_loopback_and_is_valid_from_yesterday_for_30_days() {
        let before = SystemTime::now();
        let setup = self_signed().expect("demo certificate");
        let after = SystemTime::now();

        assert_eq!(setup.names, ["localhost", "127.0.0.1", "::1"]);
        assert!(setup.warnings.is_empty(), "{:?}", setup.warnings);

        let facts = leaf_facts(&setup.leaf);
        assert_eq!(facts.names, setup.names);
        // Certificate times have whole seconds: allow a second either side.
        let second = Duration::from_secs(1);
        let not_before = facts.not_before.expect("notBefore");
        let not_after = facts.not_after.expect("notAfter");
        assert!(
            not_before + second >= before - DEMO_BACKDATE,
            "{not_before:?}"
        );
        assert!(not_before <= after - DEMO_BACKDATE, "{not_before:?}");
        assert!(
            not_after + second >= before + DEMO_LIFETIME,
            "{not_after:?}"
        );
        assert!(not_after <= after + DEMO_LIFETIME, "{not_after:?}");
    }

    #[test]
    fn every_demo_start_gets_a_fresh_key() {
        let first = self_signed().expect("demo certificate");
        let second = self_signed().expect("demo certificate");
        assert_ne!(first.fingerprint, second.fingerprint);
    }

    #[test]
    fn configuration_follows_the_security_defaults() {
        let config = self_signed().expect("demo certificate").config;
        assert_eq!(config.alpn_protocols, [b"http/1.1".to_vec()]);
        assert_eq!(config.max_early_data_size, 0);
        assert!(!config.send_half_rtt_data);
        assert!(config.ignore_client_order);
        assert!(config.ticketer.enabled(), "stateless tickets on");
        assert!(config.session_storage.can_cache(), "session-id cache on");
    }

    #[test]
    fn tls12_suites_are_all_ecdhe_with_an_aead() {
        let config = self_signed().expect("demo certificate").config;
        let mut tls12 = 0;
        for suite in &config.crypto_provider().cipher_suites {
            if let rustls::SupportedCipherSuite::Tls12(suite) = suite {
                tls12 += 1;
                let name = format!("{:?}", suite.common.suite);
                assert!(name.starts_with("TLS_ECDHE_"), "{name}");
                assert!(
                    name.contains("_GCM_") || name.contains("_CHACHA20_POLY1305_"),
                    "{name}"
                );
            }
        }
        // Without this, a provider with no TLS 1.2 suites would pass.
        assert!(tls12 > 0);
    }

    #[test]
    fn leaf_facts_read_dates_and_both_kinds_of_name() {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
        let mut params = rcgen::CertificateParams::new(vec![
            "www.example.org".to_string(),
            "192.0.2.7".to_string(),
            "2001:db8::1".to_string(),
        ])
        .expect("params");
        // 2049 is the last UTCTime year, 2050 the first GeneralizedTime one.
        params.not_before = rcgen::date_time_ymd(2049, 12, 31);
        params.not_after = rcgen::date_time_ymd(2050, 1, 2);
        let cert = params.self_signed(&key).expect("certificate");

        let facts = leaf_facts(cert.der());
        assert_eq!(facts.names, ["www.example.org", "192.0.2.7", "2001:db8::1"]);
        assert_eq!(facts.not_before, Some(at("2049-12-31T00:00:00Z")));
        assert_eq!(facts.not_after, Some(at("2050-01-02T00:00:00Z")));
    }

    #[test]
    fn certificate_times_in_both_encodings() {
        const UTC: u8 = 0x17;
        const GENERALIZED: u8 = 0x18;
        assert_eq!(
            der_time(UTC, b"991231235959Z"),
            Some(at("1999-12-31T23:59:59Z"))
        );
        assert_eq!(
            der_time(UTC, b"491231235959Z"),
            Some(at("2049-12-31T23:59:59Z"))
        );
        assert_eq!(
            der_time(GENERALIZED, b"20500101000000Z"),
            Some(at("2050-01-01T00:00:00Z"))
        );
        // Wrong length for the tag, no Z, a non-digit, an impossible month.
        assert_eq!(der_time(UTC, b"20500101000000Z"), None);
        assert_eq!(der_time(GENERALIZED, b"20500101000000"), None);
        assert_eq!(der_time(UTC, b"99123123595xZ"), None);
        assert_eq!(der_time(UTC, b"991331235959Z"), None);
    }

    #[test]
    fn a_damaged_certificate_never_panics_the_reader() {
        // leaf_facts only runs on certificates rustls has parsed, but it
        // should not depend on that: every truncation and every single-byte
        // change of a real certificate must come back without a panic.
        let der = self_signed()
            .expect("demo certificate")
            .leaf
            .as_ref()
            .to_vec();
        for len in 0..der.len() {
            let _ = read_leaf_facts(&der[..len]);
        }
        for index in 0..der.len() {
            for value in [0x00, 0x7f, 0x80, 0x84, 0xff] {
                let mut damaged = der.clone();
                damaged[index] = value;
                let _ = read_leaf_facts(&damaged);
            }
        }
    }

    #[test]
    fn der_lengths_short_and_long_form() {
        assert_eq!(
            der_next(&[0x04, 0x02, 0xaa, 0xbb, 0xcc]),
            Some((0x04, &[0xaa, 0xbb][..], &[0xcc][..]))
        );
        let mut long = vec![0x04, 0x82, 0x01, 0x00];
        long.extend([0x5a; 256]);
        let (tag, value, rest) = der_next(&long).expect("long form");
        assert_eq!((tag, value.len(), rest.len()), (0x04, 256, 0));
        // Truncated contents, truncated length, indefinite length.
        assert_eq!(der_next(&[0x04, 0x03, 0xaa]), None);
        assert_eq!(der_next(&[0x04, 0x82, 0x01]), None);
        assert_eq!(der_next(&[0x30, 0x80, 0x00, 0x00]), None);
    }

    fn facts(names: &[&str], not_before: &str, not_after: &str) -> LeafFacts {
        LeafFacts {
            names: names.iter().map(|n| n.to_string()).collect(),
            not_before: Some(at(not_before)),
            not_after: Some(at(not_after)),
        }
    }

    #[test]
    fn a_healthy_certificate_gets_no_warnings() {
        let now = at("2030-06-01T00:00:00Z");
        let healthy = facts(
            &["example.org"],
            "2030-01-01T00:00:00Z",
            "2031-01-01T00:00:00Z",
        );
        assert!(certificate_warnings(Path::new("c.pem"), &healthy, now).is_empty());
    }

    #[test]
    fn expired_future_and_nameless_certificates_are_warned_about() {
        let now = at("2030-06-01T00:00:00Z");
        let path = Path::new("/etc/portcullis/cert.pem");

        let expired = facts(
            &["example.org"],
            "2029-01-01T00:00:00Z",
            "2030-05-01T00:00:00Z",
        );
        let warnings = certificate_warnings(path, &expired, now);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("/etc/portcullis/cert.pem"));
        assert!(warnings[0].contains("expired at 2030-05-01T00:00:00Z"));

        let soon = facts(
            &["example.org"],
            "2030-01-01T00:00:00Z",
            "2030-06-04T12:00:00Z",
        );
        let warnings = certificate_warnings(path, &soon, now);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("in 3 days"), "{}", warnings[0]);

        let future = facts(
            &["example.org"],
            "2030-07-01T00:00:00Z",
            "2031-01-01T00:00:00Z",
        );
        let warnings = certificate_warnings(path, &future, now);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("not valid until 2030-07-01T00:00:00Z"));

        let nameless = facts(&[], "2030-01-01T00:00:00Z", "2031-01-01T00:00:00Z");
        let warnings = certificate_warnings(path, &nameless, now);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("no subject alternative names"));
    }

    #[test]
    fn pem_errors_do_not_quote_the_file() {
        // The decoder's message can carry a byte of the (key) file.
        let error = pem_error(
            Path::new("key.pem"),
            pem::Error::Base64Decode("InvalidCharacter(107)".into()),
        );
        let shown = error.to_string();
        assert!(shown.starts_with("key.pem: malformed PEM"), "{shown}");
        assert!(!shown.contains("107"), "{shown}");
    }

    #[test]
    fn a_chain_out_of_order_is_named_as_such() {
        let error = TlsError::KeyMismatch {
            cert: PathBuf::from("chain.pem"),
            key: PathBuf::from("key.pem"),
            matches_position: Some(2),
        };
        assert_eq!(
            error.to_string(),
            "key.pem: the private key does not match the certificate in chain.pem \
             (it matches certificate number 2 there: the server's own certificate must \
             come first, then the intermediates)"
        );
    }
}
