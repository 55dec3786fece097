//! Password hashes: the argon2id hashes Portcullis writes, the bcrypt ones
//! it also reads, and the reasons it refuses everything else.
//!
//! Hashing and verifying are the slow part of a login (~15 ms and 19 MiB
//! at the default parameters). The portal never calls them itself: they run
//! inside a [`VerifyJob`](super::VerifyJob), which its caller runs where
//! slow work belongs. [`hash_password`] is for tools (the `passwd`
//! command) and tests.

use std::fmt;

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, PasswordHasher, PasswordVerifier, Version, ARGON2ID_IDENT};

use super::bcrypt::{self, BcryptHash};
use crate::random::{random_array, CryptoRng};

/// The longest password accepted, in bytes. Longer ones are refused before
/// any hashing: argon2 would hash a megabyte happily, at the cost of the
/// server's time.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// The salt length of the hashes Portcullis writes.
pub const SALT_BYTES: usize = 16;

/// The length of the argon2id output Portcullis writes.
const OUTPUT_BYTES: usize = 32;

/// The shortest salt and output accepted when reading an argon2id hash.
const MIN_SALT_BYTES: usize = 8;
const MIN_OUTPUT_BYTES: usize = 16;

/// argon2id cost parameters: memory in KiB, passes (time) and lanes
/// (parallelism).
///
/// The default is OWASP's recommendation: m = 19456 KiB (19 MiB), t = 2,
/// p = 1. Every login for a user costs that much, and anyone can start a
/// login, so the parameters read from a file are bounded too (see
/// [`HashParams::new`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HashParams {
    m_kib: u32,
    t: u32,
    p: u32,
}

impl HashParams {
    /// OWASP's recommendation (Password Storage Cheat Sheet): 19 MiB, two
    /// passes, one lane.
    pub const OWASP: HashParams = HashParams {
        m_kib: 19_456,
        t: 2,
        p: 1,
    };

    /// The most memory accepted: 1 GiB.
    pub const MAX_M_KIB: u32 = 1 << 20;
    /// The most passes accepted.
    pub const MAX_T: u32 = 32;
    /// The most lanes accepted.
    pub const MAX_P: u32 = 16;

    /// Parameters within bounds: 1 ≤ p ≤ 16, 8·p ≤ m ≤ 1 GiB (argon2 needs
    /// 8 KiB per lane), 1 ≤ t ≤ 32. Small values are allowed, for tests.
    pub fn new(m_kib: u32, t: u32, p: u32) -> Result<HashParams, InvalidParams> {
        let ok = (1..=Self::MAX_P).contains(&p)
            && (8 * p..=Self::MAX_M_KIB).contains(&m_kib)
            && (1..=Self::MAX_T).contains(&t);
        if ok {
            Ok(HashParams { m_kib, t, p })
        } else {
            Err(InvalidParams { m_kib, t, p })
        }
    }

    /// Memory cost in KiB.
    #[must_use]
    pub fn m_kib(&self) -> u32 {
        self.m_kib
    }

    /// Time cost (passes).
    #[must_use]
    pub fn t(&self) -> u32 {
        self.t
    }

    /// Parallelism (lanes).
    #[must_use]
    pub fn p(&self) -> u32 {
        self.p
    }

    fn argon2_params(&self) -> argon2::Params {
        // Bounds were checked in `new`, and argon2's own checks are looser:
        // this cannot fail.
        argon2::Params::new(self.m_kib, self.t, self.p, Some(OUTPUT_BYTES))
            .unwrap_or(argon2::Params::DEFAULT)
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.argon2_params())
    }
}

impl Default for HashParams {
    fn default() -> Self {
        HashParams::OWASP
    }
}

impl fmt::Display for HashParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "m={},t={},p={}", self.m_kib, self.t, self.p)
    }
}

/// argon2id parameters outside [`HashParams::new`]'s bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvalidParams {
    m_kib: u32,
    t: u32,
    p: u32,
}

impl fmt::Display for InvalidParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "argon2id parameters m={},t={},p={} are out of range \
             (p 1..={}, m 8*p..={} KiB, t 1..={})",
            self.m_kib,
            self.t,
            self.p,
            HashParams::MAX_P,
            HashParams::MAX_M_KIB,
            HashParams::MAX_T
        )
    }
}

impl std::error::Error for InvalidParams {}

/// The algorithm of a [`StoredHash`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Scheme {
    /// argon2id (written by Portcullis) with its parameters.
    Argon2id(HashParams),
    /// bcrypt (`$2y$`/`$2b$`, from `htpasswd -B`) with its cost; upgraded
    /// to argon2id at the next successful login.
    Bcrypt {
        /// log2 of the number of key-schedule rounds.
        cost: u32,
    },
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scheme::Argon2id(params) => write!(f, "argon2id ({params})"),
            Scheme::Bcrypt { cost } => write!(f, "bcrypt (cost {cost})"),
        }
    }
}

/// An accepted password hash: its text exactly as stored (a PHC string for
/// argon2id, modular crypt for bcrypt) and what it was parsed as.
///
/// `Debug` shows the scheme, not the hash: a hash is not a password, but it
/// can be attacked offline.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredHash {
    text: String,
    parsed: Parsed,
}

#[derive(Clone, PartialEq, Eq)]
enum Parsed {
    Argon2id(HashParams),
    /// Boxed: bcrypt is the rare case, and it would double the size.
    Bcrypt(Box<BcryptHash>),
}

impl StoredHash {
    /// Accepts an argon2id PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`)
    /// or a bcrypt `$2y$`/`$2b$` hash; anything else is refused with the
    /// reason. Cheap: nothing is hashed.
    pub fn parse(text: &str) -> Result<StoredHash, HashRefusal> {
        let parsed = classify(text)?;
        Ok(StoredHash {
            text: text.to_owned(),
            parsed,
        })
    }

    /// The hash exactly as stored.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The algorithm and its parameters.
    #[must_use]
    pub fn scheme(&self) -> Scheme {
        match &self.parsed {
            Parsed::Argon2id(params) => Scheme::Argon2id(*params),
            Parsed::Bcrypt(hash) => Scheme::Bcrypt { cost: hash.cost },
        }
    }

    /// Whether a successful login should rewrite this hash as argon2id.
    #[must_use]
    pub fn needs_upgrade(&self) -> bool {
        matches!(self.parsed, Parsed::Bcrypt(_))
    }

    /// A hash that no password matches in practice but that costs exactly
    /// what a real one with `params` costs: an unknown user is checked
    /// against it, so that the time of a refusal does not tell whether the
    /// user exists. Its salt and output are random; nothing is hashed here.
    pub fn dummy(params: HashParams, rng: &mut dyn CryptoRng) -> StoredHash {
        let salt: [u8; SALT_BYTES] = random_array(rng);
        let output: [u8; OUTPUT_BYTES] = random_array(rng);
        let phc = build_phc(params, &salt, &output);
        StoredHash {
            text: phc,
            parsed: Parsed::Argon2id(params),
        }
    }

    /// Whether `password` matches: the slow part. Constant-time comparison
    /// (argon2's output comparison and [`subtle`] for bcrypt). Passwords
    /// over [`MAX_PASSWORD_BYTES`] never match.
    pub(crate) fn verify(&self, password: &[u8]) -> bool {
        if password.len() > MAX_PASSWORD_BYTES {
            return false;
        }
        match &self.parsed {
            Parsed::Argon2id(_) => match PasswordHash::new(&self.text) {
                // argon2 compares its outputs in constant time.
                Ok(phc) => Argon2::default().verify_password(password, &phc).is_ok(),
                Err(_) => false,
            },
            Parsed::Bcrypt(hash) => hash.verify(password),
        }
    }
}

impl fmt::Debug for StoredHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoredHash({})", self.scheme())
    }
}

/// Hashes `password` as argon2id with `params` and a 16-byte salt from
/// `rng`. Slow by design: call it from a tool, a test or a worker, never
/// from an event loop.
pub fn hash_password(
    password: &[u8],
    params: HashParams,
    rng: &mut dyn CryptoRng,
) -> Result<StoredHash, HashError> {
    let salt: [u8; SALT_BYTES] = random_array(rng);
    hash_with_salt(password, params, &salt)
}

/// [`hash_password`] with the salt drawn beforehand (a job that may upgrade
/// a hash draws its salt when it is made, since it runs away from the
/// generator).
pub(crate) fn hash_with_salt(
    password: &[u8],
    params: HashParams,
    salt: &[u8; SALT_BYTES],
) -> Result<StoredHash, HashError> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(HashError::PasswordTooLong);
    }
    let phc = params
        .argon2()
        .hash_password_with_salt(password, salt)
        .map_err(|e| HashError::Argon2(e.to_string()))?;
    Ok(StoredHash {
        text: phc.to_string(),
        parsed: Parsed::Argon2id(params),
    })
}

fn build_phc(params: HashParams, salt: &[u8], output: &[u8]) -> String {
    let phc = PasswordHash {
        algorithm: ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params.argon2_params()).unwrap_or_default(),
        salt: Salt::new(salt).ok(),
        hash: Output::new(output).ok(),
    };
    phc.to_string()
}

/// Why hashing failed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HashError {
    /// The password is over [`MAX_PASSWORD_BYTES`]: nobody could log in
    /// with it.
    PasswordTooLong,
    /// argon2 refused (out of memory, say).
    Argon2(String),
}

impl fmt::Display for HashError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HashError::PasswordTooLong => {
                write!(f, "the password is longer than {MAX_PASSWORD_BYTES} bytes")
            }
            HashError::Argon2(e) => write!(f, "argon2 failed: {e}"),
        }
    }
}

impl std::error::Error for HashError {}

/// Why the hash of a password-file line is not accepted. The messages never
/// quote the hash: a "hash" that is really a plain-text password must not
/// end up in a log.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HashRefusal {
    /// Nothing after the `:`.
    Empty,
    /// `$argon2i$` or `$argon2d$`: only argon2id is accepted.
    Argon2Variant,
    /// An argon2id PHC string that does not parse (the detail says where).
    Argon2Malformed(&'static str),
    /// An argon2id version other than `v=19` (or none, which tools read
    /// differently).
    Argon2Version,
    /// argon2id parameters outside the accepted bounds.
    Argon2Params(InvalidParams),
    /// bcrypt `$2a$`/`$2x$`/`$2$`: old variants with known bugs.
    BcryptOldVariant,
    /// A `$2y$`/`$2b$` string that is not 60 well-formed characters.
    BcryptMalformed,
    /// A bcrypt cost outside 4..=17.
    BcryptCost(u32),
    /// Apache's `$apr1$` (MD5).
    Apr1,
    /// `{SHA}`: unsalted SHA-1.
    Sha1,
    /// crypt(3): `$1$` (MD5), `$5$` (SHA-256), `$6$` (SHA-512) or 13-char DES.
    Crypt(&'static str),
    /// No known hash format: most likely a plain-text password.
    PlainText,
}

impl fmt::Display for HashRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const RESET: &str = "set a new password with `portcullis passwd set`";
        match self {
            HashRefusal::Empty => write!(f, "the hash is empty; {RESET}"),
            HashRefusal::Argon2Variant => {
                write!(
                    f,
                    "argon2i and argon2d hashes are not accepted, only argon2id; {RESET}"
                )
            }
            HashRefusal::Argon2Malformed(detail) => {
                write!(f, "malformed argon2id hash ({detail})")
            }
            HashRefusal::Argon2Version => {
                write!(f, "argon2id hashes must be version 19 (`$v=19$`)")
            }
            HashRefusal::Argon2Params(e) => write!(f, "{e}"),
            HashRefusal::BcryptOldVariant => write!(
                f,
                "old bcrypt variant ($2a$/$2x$/$2$) is not accepted, only $2y$ and $2b$; {RESET}"
            ),
            HashRefusal::BcryptMalformed => {
                write!(
                    f,
                    "malformed bcrypt hash (expected $2y$NN$ and 53 characters)"
                )
            }
            HashRefusal::BcryptCost(cost) => write!(
                f,
                "bcrypt cost {cost} is outside {}..={}",
                bcrypt::MIN_COST,
                bcrypt::MAX_COST
            ),
            HashRefusal::Apr1 => write!(f, "apr1 (Apache MD5) hashes are too weak; {RESET}"),
            HashRefusal::Sha1 => write!(f, "{{SHA}} (unsalted SHA-1) hashes are too weak; {RESET}"),
            HashRefusal::Crypt(kind) => write!(f, "crypt {kind} hashes are not accepted; {RESET}"),
            HashRefusal::PlainText => write!(
                f,
                "not a password hash (plain text?); passwords are never stored in clear: {RESET}"
            ),
        }
    }
}

impl std::error::Error for HashRefusal {}

fn classify(text: &str) -> Result<Parsed, HashRefusal> {
    if text.is_empty() {
        return Err(HashRefusal::Empty);
    }
    if text.starts_with("$argon2id$") {
        return parse_argon2id(text).map(Parsed::Argon2id);
    }
    if text.starts_with("$argon2i$") || text.starts_with("$argon2d$") {
        return Err(HashRefusal::Argon2Variant);
    }
    if text.starts_with("$2") {
        return BcryptHash::parse(text).map(|hash| Parsed::Bcrypt(Box::new(hash)));
    }
    if text.starts_with("$apr1$") {
        return Err(HashRefusal::Apr1);
    }
    if text.starts_with("{SHA}") {
        return Err(HashRefusal::Sha1);
    }
    if text.starts_with("$1$") {
        return Err(HashRefusal::Crypt("MD5 ($1$)"));
    }
    if text.starts_with("$5$") {
        return Err(HashRefusal::Crypt("SHA-256 ($5$)"));
    }
    if text.starts_with("$6$") {
        return Err(HashRefusal::Crypt("SHA-512 ($6$)"));
    }
    let des_alphabet = |b: u8| b.is_ascii_alphanumeric() || b == b'.' || b == b'/';
    if text.len() == 13 && text.bytes().all(des_alphabet) {
        return Err(HashRefusal::Crypt("DES"));
    }
    Err(HashRefusal::PlainText)
}

fn parse_argon2id(text: &str) -> Result<HashParams, HashRefusal> {
    let phc =
        PasswordHash::new(text).map_err(|_| HashRefusal::Argon2Malformed("not a PHC string"))?;
    if phc.version != Some(Version::V0x13.into()) {
        return Err(HashRefusal::Argon2Version);
    }
    let params = argon2::Params::try_from(&phc)
        .map_err(|_| HashRefusal::Argon2Malformed("bad m, t or p"))?;
    let params = HashParams::new(params.m_cost(), params.t_cost(), params.p_cost())
        .map_err(HashRefusal::Argon2Params)?;
    match &phc.salt {
        Some(salt) if salt.len() >= MIN_SALT_BYTES => {}
        _ => {
            return Err(HashRefusal::Argon2Malformed(
                "salt missing or under 8 bytes",
            ))
        }
    }
    match &phc.hash {
        Some(output) if output.len() >= MIN_OUTPUT_BYTES => {}
        _ => {
            return Err(HashRefusal::Argon2Malformed(
                "hash missing or under 16 bytes",
            ))
        }
    }
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::TestRng;

    /// The cheapest parameters argon2 allows: microseconds per hash.
    fn cheap() -> HashParams {
        HashParams::new(8, 1, 1).unwrap()
    }

    #[test]
    fn written_hashes_are_argon2id_phc_with_owasp_parameters_and_a_16_byte_salt() {
        // The one test that pays for the real parameters (~15 ms, 19 MiB).
        let hash = hash_password(
            b"correct horse",
            HashParams::default(),
            &mut TestRng::seeded(1),
        )
        .unwrap();
        let text = hash.as_str();
        assert!(
            text.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{text}"
        );
        let phc = PasswordHash::new(text).unwrap();
        assert_eq!(phc.salt.unwrap().len(), 16);
        assert_eq!(phc.hash.unwrap().len(), 32);
        assert_eq!(hash.scheme(), Scheme::Argon2id(HashParams::OWASP));
        assert!(hash.verify(b"correct horse"));
        assert!(!hash.verify(b"correct horse "));
        // What we write, we read back.
        assert_eq!(StoredHash::parse(text).unwrap(), hash);
    }

    #[test]
    fn the_salt_comes_from_the_injected_generator() {
        let a = hash_password(b"pw", cheap(), &mut TestRng::seeded(5)).unwrap();
        let b = hash_password(b"pw", cheap(), &mut TestRng::seeded(5)).unwrap();
        let c = hash_password(b"pw", cheap(), &mut TestRng::seeded(6)).unwrap();
        assert_eq!(a.as_str(), b.as_str(), "same seed, same salt, same hash");
        assert_ne!(a.as_str(), c.as_str());
    }

    #[test]
    fn a_password_over_1_kib_is_refused_before_hashing() {
        let long = vec![b'a'; MAX_PASSWORD_BYTES + 1];
        let at_limit = vec![b'a'; MAX_PASSWORD_BYTES];
        let mut rng = TestRng::seeded(1);
        assert_eq!(
            hash_password(&long, cheap(), &mut rng),
            Err(HashError::PasswordTooLong)
        );
        let hash = hash_password(&at_limit, cheap(), &mut rng).unwrap();
        assert!(hash.verify(&at_limit));
        assert!(!hash.verify(&long));
    }

    #[test]
    fn the_dummy_hash_has_the_given_parameters_and_matches_nothing_tried() {
        let params = HashParams::new(64, 3, 2).unwrap();
        let dummy = StoredHash::dummy(params, &mut TestRng::seeded(3));
        assert!(
            dummy.as_str().starts_with("$argon2id$v=19$m=64,t=3,p=2$"),
            "{}",
            dummy.as_str()
        );
        // It parses as a real hash with the same parameters: same work.
        assert_eq!(
            StoredHash::parse(dummy.as_str()).unwrap().scheme(),
            Scheme::Argon2id(params)
        );
        for guess in [&b""[..], b"password", b"dummy", dummy.as_str().as_bytes()] {
            assert!(!dummy.verify(guess));
        }
    }

    #[test]
    fn debug_shows_the_scheme_but_not_the_hash() {
        let hash = hash_password(b"pw", cheap(), &mut TestRng::seeded(1)).unwrap();
        let shown = format!("{hash:?}");
        assert_eq!(shown, "StoredHash(argon2id (m=8,t=1,p=1))");
    }

    #[test]
    fn every_refused_format_says_why() {
        let cases: &[(&str, HashRefusal)] = &[
            ("", HashRefusal::Empty),
            ("$apr1$abcdefgh$0123456789abcdefghijkl", HashRefusal::Apr1),
            ("{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=", HashRefusal::Sha1),
            (
                "$1$saltsalt$0123456789abcdefghijkl",
                HashRefusal::Crypt("MD5 ($1$)"),
            ),
            (
                "$5$saltsalt$0123456789abcdefghijklmnopqrstuvwxyzABCDEFG",
                HashRefusal::Crypt("SHA-256 ($5$)"),
            ),
            (
                "$6$saltsalt$0123456789",
                HashRefusal::Crypt("SHA-512 ($6$)"),
            ),
            ("rl.3StKT.4T8M", HashRefusal::Crypt("DES")),
            ("hunter2", HashRefusal::PlainText),
            (
                "$argon2i$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
                HashRefusal::Argon2Variant,
            ),
            (
                "$argon2d$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
                HashRefusal::Argon2Variant,
            ),
            (
                "$argon2id$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
                HashRefusal::Argon2Version,
            ),
            (
                "$argon2id$v=16$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
                HashRefusal::Argon2Version,
            ),
            (
                "$argon2id$v=19$m=8,t=1,p=1$c2FsdA$aGFzaGhhc2hoYXNoaGFzaA",
                HashRefusal::Argon2Malformed("not a PHC string"),
            ),
            (
                "$argon2id$v=19$m=8,t=1,p=1",
                HashRefusal::Argon2Malformed("salt missing or under 8 bytes"),
            ),
            (
                "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA",
                HashRefusal::Argon2Malformed("not a PHC string"),
            ),
            (
                "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
                HashRefusal::Argon2Malformed("hash missing or under 16 bytes"),
            ),
            (
                "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ",
                HashRefusal::Argon2Malformed("hash missing or under 16 bytes"),
            ),
            (
                "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA ",
                HashRefusal::Argon2Malformed("not a PHC string"),
            ),
            (
                "$argon2id$v=19$garbage",
                HashRefusal::Argon2Malformed("not a PHC string"),
            ),
        ];
        for (text, reason) in cases {
            assert_eq!(
                StoredHash::parse(text).err().as_ref(),
                Some(reason),
                "{text:?}"
            );
            // The message never quotes the hash (it may be a password).
            if text.len() > 3 {
                assert!(!reason.to_string().contains(text), "{reason}");
            }
        }
    }

    #[test]
    fn argon2id_parameters_are_bounded_when_read() {
        let line = |m: u32, t: u32, p: u32| {
            format!("$argon2id$v=19$m={m},t={t},p={p}$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA")
        };
        assert!(StoredHash::parse(&line(19456, 2, 1)).is_ok());
        assert!(StoredHash::parse(&line(HashParams::MAX_M_KIB, 32, 16)).is_ok());
        for (m, t, p) in [
            (HashParams::MAX_M_KIB + 1, 2, 1),
            (19456, 33, 1),
            (19456, 2, 17),
            (15, 1, 2),
        ] {
            let refusal = StoredHash::parse(&line(m, t, p)).unwrap_err();
            assert!(
                matches!(
                    refusal,
                    HashRefusal::Argon2Params(_) | HashRefusal::Argon2Malformed(_)
                ),
                "m={m} t={t} p={p}: {refusal:?}"
            );
        }
        let message = StoredHash::parse(&line(19456, 33, 1))
            .unwrap_err()
            .to_string();
        assert!(message.contains("t=33"), "{message}");
    }

    #[test]
    fn parameters_outside_the_bounds_cannot_be_made() {
        assert!(HashParams::new(8, 1, 1).is_ok());
        assert!(HashParams::new(7, 1, 1).is_err());
        assert!(HashParams::new(8, 0, 1).is_err());
        assert!(HashParams::new(8, 1, 0).is_err());
        assert!(
            HashParams::new(15, 1, 2).is_err(),
            "argon2 needs 8 KiB per lane"
        );
        assert_eq!(HashParams::default(), HashParams::OWASP);
    }
}
