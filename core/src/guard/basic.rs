//! HTTP Basic authentication for API clients (twisted.web.guard's
//! `HTTPAuthSessionWrapper`): parsing `Authorization: Basic` and a short
//! cache of credentials that were verified, so a script does not pay an
//! argon2 check on every request.
//!
//! ## Parsing policy ([`parse_authorization`])
//!
//! - The scheme is case-insensitive (`Basic`, `basic`, `BASIC`); any other
//!   scheme is [`BasicError::UnknownScheme`], so the guard can answer 401
//!   with its own challenge.
//! - The credentials are standard base64, padded or not; anything else,
//!   including non-canonical trailing bits and inner spaces, is
//!   [`BasicError::BadBase64`].
//! - The decoded text splits at the *first* colon: the user-id has none
//!   (RFC 7617), the password may. No colon is [`BasicError::NoColon`].
//! - Both halves must be UTF-8 (the guard's challenge says
//!   `charset="UTF-8"`): else [`BasicError::NotUtf8`]. Nothing is trimmed or
//!   normalised; the decoded bytes are wiped after the split.
//!
//! ## The cache ([`BasicCache`])
//!
//! Keys are a keyed BLAKE2b-256 hash of (user, password) under a key drawn
//! from the injected generator, so the cache holds no password and its
//! contents are worthless without the key. An entry stays valid for a fixed
//! time after the verification (60 s by default), not a sliding one: a
//! password removed from the password file stops working within that time
//! even if nobody calls [`BasicCache::invalidate_user`]. The guard should
//! call that when a user is removed or changed. When full, the entry
//! verified longest ago goes first.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD_PAD_INDIFFERENT;
use base64::Engine as _;
use blake2::digest::consts::U32;
use blake2::digest::{FixedOutput, Update};
use blake2::Blake2bMac;
use zeroize::Zeroizing;

use crate::cred::Password;
use crate::random::{random_array, CryptoRng};
use crate::session::Moment;

/// Why an `Authorization` header gave no Basic credentials. The guard
/// answers each with 401 and its `WWW-Authenticate: Basic` challenge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BasicError {
    /// The scheme is not `Basic` (`Bearer`, `Digest`, ...).
    UnknownScheme,
    /// `Basic` with nothing after it.
    MissingCredentials,
    /// The credentials are not valid base64.
    BadBase64,
    /// The decoded credentials have no `:` between user and password.
    NoColon,
    /// The user or the password is not UTF-8.
    NotUtf8,
}

impl fmt::Display for BasicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BasicError::UnknownScheme => "the authorization scheme is not Basic",
            BasicError::MissingCredentials => "Basic authorization without credentials",
            BasicError::BadBase64 => "the Basic credentials are not valid base64",
            BasicError::NoColon => "the Basic credentials have no ':' after the user",
            BasicError::NotUtf8 => "the Basic credentials are not UTF-8",
        })
    }
}

impl std::error::Error for BasicError {}

fn trim_ows(bytes: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = bytes.iter().position(|b| !is_ows(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_ows(b))
        .map_or(start, |i| i + 1);
    &bytes[start..end]
}

/// The user and password in an `Authorization` header value, e.g.
/// `Basic YWxpY2U6c2VjcmV0` gives `("alice", "secret")`.
pub fn parse_authorization(header: &[u8]) -> Result<(String, Password), BasicError> {
    let value = trim_ows(header);
    let (scheme, credentials) = match value.iter().position(|&b| b == b' ' || b == b'\t') {
        Some(space) => (&value[..space], trim_ows(&value[space..])),
        None => (value, &value[value.len()..]),
    };
    if !scheme.eq_ignore_ascii_case(b"basic") {
        return Err(BasicError::UnknownScheme);
    }
    if credentials.is_empty() {
        return Err(BasicError::MissingCredentials);
    }
    let decoded = Zeroizing::new(
        STANDARD_PAD_INDIFFERENT
            .decode(credentials)
            .map_err(|_| BasicError::BadBase64)?,
    );
    let colon = decoded
        .iter()
        .position(|&b| b == b':')
        .ok_or(BasicError::NoColon)?;
    let user = std::str::from_utf8(&decoded[..colon]).map_err(|_| BasicError::NotUtf8)?;
    let password = &decoded[colon + 1..];
    if std::str::from_utf8(password).is_err() {
        return Err(BasicError::NotUtf8);
    }
    Ok((user.to_string(), Password::new(password)))
}

/// The `WWW-Authenticate` value that asks for Basic credentials in `realm`:
/// `Basic realm="…", charset="UTF-8"`. Quotes and backslashes in the realm
/// are escaped and control characters dropped, so no configuration can
/// break the header.
#[must_use]
pub fn www_authenticate(realm: &str) -> String {
    let mut value = String::with_capacity(realm.len() + 32);
    value.push_str("Basic realm=\"");
    for c in realm.chars().filter(|c| !c.is_control()) {
        if c == '"' || c == '\\' {
            value.push('\\');
        }
        value.push(c);
    }
    value.push_str("\", charset=\"UTF-8\"");
    value
}

/// Limits of a [`BasicCache`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BasicCacheConfig {
    /// How long a verification is trusted (default 60 s). Zero disables
    /// the cache.
    pub ttl: Duration,
    /// How many (user, password) pairs are remembered (default 1024;
    /// roughly 200 bytes each with the maps' overhead, plus the user's name
    /// and the payload). Zero disables the cache.
    pub capacity: usize,
}

impl Default for BasicCacheConfig {
    fn default() -> Self {
        BasicCacheConfig {
            ttl: Duration::from_secs(60),
            capacity: 1024,
        }
    }
}

/// A keyed hash of (user, password).
type PairHash = [u8; 32];

struct Entry<T, M> {
    user: String,
    /// Trusted while `now < until`.
    until: M,
    /// Tie-breaker in the expiry index, unique per insertion.
    serial: u64,
    payload: T,
}

/// Credentials verified recently, under a keyed hash, each with a payload
/// (for example the avatar id the portal gave). See the module docs.
///
/// `M` is the caller's clock ([`Moment`]): [`Instant`] in a server, a
/// `Duration` since an origin in tests.
pub struct BasicCache<T, M = Instant> {
    key: Zeroizing<[u8; 32]>,
    config: BasicCacheConfig,
    entries: BTreeMap<PairHash, Entry<T, M>>,
    /// The same entries in expiry order: the first is the next to expire
    /// and the first evicted.
    by_expiry: BTreeMap<(M, u64), PairHash>,
    next_serial: u64,
}

impl<T, M> fmt::Debug for BasicCache<T, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasicCache")
            .field("config", &self.config)
            .field("len", &self.entries.len())
            .finish_non_exhaustive()
    }
}

impl<T, M: Moment + Ord> BasicCache<T, M> {
    /// An empty cache with a hash key of 32 bytes from `rng`.
    pub fn new(config: BasicCacheConfig, rng: &mut dyn CryptoRng) -> Self {
        BasicCache {
            key: Zeroizing::new(random_array(rng)),
            config,
            entries: BTreeMap::new(),
            by_expiry: BTreeMap::new(),
            next_serial: 0,
        }
    }

    fn hash(&self, user: &str, password: &Password) -> PairHash {
        let mut mac = Blake2bMac::<U32>::new_with_salt_and_personal(
            Some(&self.key[..]),
            &[],
            b"portcullis basic",
        )
        .expect("a 32-byte key and a 16-byte persona are within BLAKE2b's limits");
        // Length-prefixed user, so ("ab", "c") and ("a", "bc") differ.
        mac.update(&(user.len() as u64).to_le_bytes());
        mac.update(user.as_bytes());
        mac.update(password.as_bytes());
        mac.finalize_fixed().into()
    }

    fn remove(&mut self, hash: &PairHash) -> Option<Entry<T, M>> {
        let entry = self.entries.remove(hash)?;
        self.by_expiry.remove(&(entry.until, entry.serial));
        Some(entry)
    }

    /// Drops every entry that has expired at `now`.
    fn purge_expired(&mut self, now: M) {
        while let Some((&(until, serial), &hash)) = self.by_expiry.first_key_value() {
            if now < until {
                break;
            }
            self.by_expiry.remove(&(until, serial));
            self.entries.remove(&hash);
        }
    }

    /// The payload stored when this exact (user, password) was verified, if
    /// that was less than the TTL ago. An expired entry is dropped.
    pub fn get(&mut self, now: M, user: &str, password: &Password) -> Option<&T> {
        self.purge_expired(now);
        let hash = self.hash(user, password);
        // The hash is keyed, so which entries exist cannot be probed through
        // timing; the user check only guards against the impossible.
        self.entries
            .get(&hash)
            .filter(|e| e.user == user)
            .map(|e| &e.payload)
    }

    /// Remembers that (user, password) was verified at `now`, replacing an
    /// older entry for the same pair. When the cache is full, the entry
    /// verified longest ago is evicted.
    pub fn insert(&mut self, now: M, user: &str, password: &Password, payload: T) {
        if self.config.capacity == 0 || self.config.ttl.is_zero() {
            return;
        }
        // A TTL so long that the deadline overflows: trust nothing rather
        // than panic.
        let Some(until) = now.checked_after(self.config.ttl) else {
            return;
        };
        self.purge_expired(now);
        let hash = self.hash(user, password);
        self.remove(&hash);
        while self.entries.len() >= self.config.capacity {
            let Some((_, oldest)) = self.by_expiry.pop_first() else {
                break;
            };
            self.entries.remove(&oldest);
        }
        let serial = self.next_serial;
        self.next_serial += 1;
        self.by_expiry.insert((until, serial), hash);
        self.entries.insert(
            hash,
            Entry {
                user: user.to_string(),
                until,
                serial,
                payload,
            },
        );
    }

    /// Forgets every entry of `user` (removed from or changed in the
    /// password file, logged out everywhere); returns how many went. It
    /// scans the whole cache, which is bounded.
    pub fn invalidate_user(&mut self, user: &str) -> usize {
        let doomed: Vec<PairHash> = self
            .entries
            .iter()
            .filter(|(_, e)| e.user == user)
            .map(|(hash, _)| *hash)
            .collect();
        for hash in &doomed {
            self.remove(hash);
        }
        doomed.len()
    }

    /// Forgets everything (the password file was replaced).
    pub fn clear(&mut self) {
        self.entries.clear();
        self.by_expiry.clear();
    }

    /// How many entries are held (expired ones included until the next
    /// call that takes `now`).
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the cache holds nothing.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::TestRng;
    use base64::engine::general_purpose::STANDARD;

    fn header(credentials: &[u8]) -> Vec<u8> {
        format!("Basic {}", STANDARD.encode(credentials)).into_bytes()
    }

    fn parsed(header: &[u8]) -> (String, Vec<u8>) {
        let (user, password) = parse_authorization(header).expect("valid Basic credentials");
        (user, password.as_bytes().to_vec())
    }

    #[test]
    fn a_client_s_credentials_are_read() {
        assert_eq!(
            parsed(b"Basic YWxpY2U6c2VjcmV0"),
            ("alice".into(), b"secret".to_vec())
        );
        // RFC 7617's example.
        assert_eq!(
            parsed(b"Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="),
            ("Aladdin".into(), b"open sesame".to_vec())
        );
    }

    #[test]
    fn the_scheme_is_case_insensitive_and_whitespace_is_tolerated() {
        for value in [
            &b"basic YTpi"[..],
            b"BASIC YTpi",
            b"BaSiC   YTpi",
            b" Basic\tYTpi ",
            b"Basic YTpi\t",
        ] {
            assert_eq!(parsed(value), ("a".into(), b"b".to_vec()), "{value:?}");
        }
    }

    #[test]
    fn padding_is_optional() {
        assert_eq!(parsed(b"Basic YTpiYw=="), ("a".into(), b"bc".to_vec()));
        assert_eq!(parsed(b"Basic YTpiYw"), ("a".into(), b"bc".to_vec()));
    }

    #[test]
    fn the_password_keeps_colons_and_spaces_and_may_be_empty() {
        assert_eq!(
            parsed(&header(b"alice:a:b: c ")),
            ("alice".into(), b"a:b: c ".to_vec())
        );
        assert_eq!(parsed(&header(b"alice:")), ("alice".into(), Vec::new()));
        assert_eq!(
            parsed(&header(b":secret")),
            (String::new(), b"secret".to_vec())
        );
        assert_eq!(
            parsed(&header(" j\u{f6}rg :p\u{e4}ss".as_bytes())),
            (" j\u{f6}rg ".into(), "p\u{e4}ss".as_bytes().to_vec())
        );
    }

    #[test]
    fn other_schemes_are_unknown() {
        for value in [
            &b"Bearer abc.def"[..],
            b"Digest username=\"a\"",
            b"Negotiate YTpi",
            b"Basicx YTpi",
            b"",
            b"YTpi",
        ] {
            assert_eq!(
                parse_authorization(value).unwrap_err(),
                BasicError::UnknownScheme,
                "{value:?}"
            );
        }
    }

    #[test]
    fn bad_base64_is_its_own_error() {
        // After Twisted's test_httpauth: "Basic " + garbage.
        for value in [
            &b"Basic junk!"[..],
            b"Basic YTpi YTpi",
            b"Basic YTpi=",
            b"Basic YT",
            b"Basic YTp",
            b"Basic ====",
            b"Basic \xff\xfe",
        ] {
            assert_eq!(
                parse_authorization(value).unwrap_err(),
                BasicError::BadBase64,
                "{value:?}"
            );
        }
        assert_eq!(
            parse_authorization(b"Basic").unwrap_err(),
            BasicError::MissingCredentials
        );
        assert_eq!(
            parse_authorization(b"Basic   ").unwrap_err(),
            BasicError::MissingCredentials
        );
    }

    #[test]
    fn credentials_without_a_colon_or_not_utf8_are_refused() {
        assert_eq!(
            parse_authorization(&header(b"alice")).unwrap_err(),
            BasicError::NoColon
        );
        assert_eq!(
            parse_authorization(&header(b"a")).unwrap_err(),
            BasicError::NoColon
        );
        assert_eq!(
            parse_authorization(&header(b"al\xffce:pw")).unwrap_err(),
            BasicError::NotUtf8
        );
        // Latin-1 "é" in the password.
        assert_eq!(
            parse_authorization(&header(b"alice:caf\xe9")).unwrap_err(),
            BasicError::NotUtf8
        );
    }

    #[test]
    fn debug_of_parsed_credentials_hides_the_password() {
        let credentials = parse_authorization(&header(b"alice:hunter2")).expect("valid");
        assert!(!format!("{credentials:?}").contains("hunter2"));
    }

    #[test]
    fn the_challenge_names_the_realm_safely() {
        assert_eq!(
            www_authenticate("Portcullis"),
            "Basic realm=\"Portcullis\", charset=\"UTF-8\""
        );
        assert_eq!(
            www_authenticate("a \"quoted\\\" realm\r\nSet-Cookie: x"),
            "Basic realm=\"a \\\"quoted\\\\\\\" realmSet-Cookie: x\", charset=\"UTF-8\""
        );
    }

    /// The story's start: moments are `Duration`s since an origin (the
    /// core cannot make an `Instant` without reading the clock).
    fn base() -> Duration {
        Duration::from_secs(1_000)
    }

    fn cache(capacity: usize) -> BasicCache<&'static str, Duration> {
        BasicCache::new(
            BasicCacheConfig {
                ttl: Duration::from_secs(60),
                capacity,
            },
            &mut TestRng::seeded(9),
        )
    }

    fn pw(s: &str) -> Password {
        Password::from(s)
    }

    #[test]
    fn a_verified_pair_is_trusted_until_exactly_the_ttl() {
        let t0 = base();
        let mut cache = cache(8);
        assert_eq!(cache.get(t0, "alice", &pw("secret")), None);
        cache.insert(t0, "alice", &pw("secret"), "alice's avatar");
        assert_eq!(
            cache.get(t0, "alice", &pw("secret")),
            Some(&"alice's avatar")
        );
        let just_before = t0 + Duration::from_secs(60) - Duration::from_nanos(1);
        assert_eq!(
            cache.get(just_before, "alice", &pw("secret")),
            Some(&"alice's avatar")
        );
        // At exactly the deadline it has expired, and is gone.
        assert_eq!(
            cache.get(t0 + Duration::from_secs(60), "alice", &pw("secret")),
            None
        );
        assert!(cache.is_empty());
    }

    #[test]
    fn use_does_not_extend_the_ttl() {
        let t0 = base();
        let mut cache = cache(8);
        cache.insert(t0, "alice", &pw("secret"), "a");
        for s in [10, 30, 59] {
            assert!(cache
                .get(t0 + Duration::from_secs(s), "alice", &pw("secret"))
                .is_some());
        }
        assert!(cache
            .get(t0 + Duration::from_secs(60), "alice", &pw("secret"))
            .is_none());
    }

    #[test]
    fn a_wrong_password_or_another_user_misses() {
        // After Twisted's test_httpauth: wrong password, unknown user.
        let t0 = base();
        let mut cache = cache(8);
        cache.insert(t0, "alice", &pw("secret"), "a");
        assert_eq!(cache.get(t0, "alice", &pw("secreT")), None);
        assert_eq!(cache.get(t0, "alice", &pw("secret ")), None);
        assert_eq!(cache.get(t0, "alic", &pw("esecret")), None);
        assert_eq!(cache.get(t0, "bob", &pw("secret")), None);
        assert_eq!(cache.get(t0, "Alice", &pw("secret")), None);
    }

    #[test]
    fn invalidating_a_user_forgets_all_their_pairs_only() {
        let t0 = base();
        let mut cache = cache(8);
        cache.insert(t0, "alice", &pw("old"), "a1");
        cache.insert(t0, "alice", &pw("new"), "a2");
        cache.insert(t0, "bob", &pw("pw"), "b");
        assert_eq!(cache.invalidate_user("alice"), 2);
        assert_eq!(cache.get(t0, "alice", &pw("old")), None);
        assert_eq!(cache.get(t0, "alice", &pw("new")), None);
        assert_eq!(cache.get(t0, "bob", &pw("pw")), Some(&"b"));
        assert_eq!(cache.invalidate_user("alice"), 0);
        cache.clear();
        assert_eq!(cache.get(t0, "bob", &pw("pw")), None);
    }

    #[test]
    fn when_full_the_pair_verified_longest_ago_goes_first() {
        let t0 = base();
        let mut cache = cache(2);
        cache.insert(t0, "a", &pw("1"), "a");
        cache.insert(t0 + Duration::from_secs(1), "b", &pw("2"), "b");
        // Re-verifying "a" makes it the newest.
        cache.insert(t0 + Duration::from_secs(2), "a", &pw("1"), "a again");
        assert_eq!(cache.len(), 2);
        cache.insert(t0 + Duration::from_secs(3), "c", &pw("3"), "c");
        assert_eq!(cache.len(), 2);
        let now = t0 + Duration::from_secs(3);
        assert_eq!(cache.get(now, "b", &pw("2")), None);
        assert_eq!(cache.get(now, "a", &pw("1")), Some(&"a again"));
        assert_eq!(cache.get(now, "c", &pw("3")), Some(&"c"));
    }

    #[test]
    fn expired_pairs_make_room_before_live_ones_are_evicted() {
        let t0 = base();
        let mut cache = cache(2);
        cache.insert(t0, "a", &pw("1"), "a");
        cache.insert(t0 + Duration::from_secs(30), "b", &pw("2"), "b");
        // At t0 + 60 "a" has expired: inserting "c" drops it, keeps "b".
        let now = t0 + Duration::from_secs(60);
        cache.insert(now, "c", &pw("3"), "c");
        assert_eq!(cache.get(now, "b", &pw("2")), Some(&"b"));
        assert_eq!(cache.get(now, "c", &pw("3")), Some(&"c"));
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn the_cache_stays_within_its_capacity() {
        let t0 = base();
        let mut cache = cache(16);
        for i in 0..1000u32 {
            let user = format!("user{i}");
            cache.insert(t0 + Duration::from_millis(i.into()), &user, &pw("p"), "x");
            assert!(cache.len() <= 16);
        }
        assert_eq!(cache.len(), 16);
        assert_eq!(cache.entries.len(), cache.by_expiry.len());
    }

    #[test]
    fn a_zero_capacity_or_ttl_disables_the_cache() {
        let t0 = base();
        for config in [
            BasicCacheConfig {
                ttl: Duration::from_secs(60),
                capacity: 0,
            },
            BasicCacheConfig {
                ttl: Duration::ZERO,
                capacity: 8,
            },
            BasicCacheConfig {
                ttl: Duration::MAX,
                capacity: 8,
            },
        ] {
            let mut cache: BasicCache<(), Duration> =
                BasicCache::new(config, &mut TestRng::seeded(1));
            cache.insert(t0, "alice", &pw("secret"), ());
            assert_eq!(cache.get(t0, "alice", &pw("secret")), None, "{config:?}");
        }
    }

    #[test]
    fn two_caches_hash_differently_and_debug_shows_no_key() {
        let a: BasicCache<(), Duration> =
            BasicCache::new(BasicCacheConfig::default(), &mut TestRng::seeded(1));
        let b: BasicCache<(), Duration> =
            BasicCache::new(BasicCacheConfig::default(), &mut TestRng::seeded(2));
        assert_ne!(
            a.hash("alice", &pw("secret")),
            b.hash("alice", &pw("secret"))
        );
        assert_ne!(a.hash("ab", &pw("c")), a.hash("a", &pw("bc")));
        let shown = format!("{a:?}");
        assert!(
            shown.starts_with("BasicCache") && !shown.contains("key"),
            "{shown}"
        );
    }
}
