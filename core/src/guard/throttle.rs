//! Brute-force defence: failure counters with exponential backoff, an
//! hourly cap per account, and trusted-device tokens (OWASP's "device
//! cookies") so that a stranger hammering an account cannot lock its real
//! owner out of the browser she already logs in from.
//!
//! # What is counted
//!
//! Every login attempt is charged **before** the password is verified, to
//! up to four counters, each with its own exponential backoff
//! ([`Backoff`]):
//!
//! | counter | key | catches |
//! | --- | --- | --- |
//! | account | the account name, byte for byte | guessing one account from many addresses |
//! | address | the client address: IPv4 as is, IPv6 by its /64 | one source spraying many accounts |
//! | pair | (account, address) | one source guessing one account |
//! | device | one trusted-device token | a stolen device token |
//!
//! plus an hourly cap per account: **at most
//! [`ThrottleConfig::account_hourly_cap`] (100) failures in any 60
//! minutes**, rolling (each failure is remembered in 5-minute slots for 60
//! to 65 minutes, so no 60-minute window ever holds more).
//!
//! Account names are counted exactly as the password file compares them:
//! byte for byte, no case folding. The throttle never asks whether an
//! account exists, so an unknown account is throttled exactly like a known
//! one and throttling reveals nothing about which accounts exist.
//!
//! [`Throttle::check`] refuses an attempt while any applicable counter is
//! in its backoff, with the wait rounded up to whole seconds (the
//! `Retry-After` of a 429). A refused attempt costs nothing and is not
//! verified, so a correct password during a throttle does not get through.
//! An allowed attempt is charged at once as if it had failed: many attempts
//! in flight at the same time (verification is a job that takes a while)
//! cannot slip past the schedule. The verdict then settles it:
//! [`Throttle::record_failure`] confirms the charge,
//! [`Throttle::record_success`] refunds it and also forgives the failures
//! that same (account, address) pair had made, at every level: a user's own
//! typos from her own address are wiped, while failures from other
//! addresses (someone else's guessing) still count against the account, and
//! failures on other accounts still count against the address. (So a
//! success does not "clear the address counter" wholesale: an attacker who
//! owns one account could otherwise launder a spraying address by logging
//! in to it now and then.) The hourly cap is never refunded for a real
//! failure.
//!
//! # Trusted devices
//!
//! After a successful login the guard gives the browser a device token
//! ([`Throttle::issue_device_token`]): a random 128-bit nonce and the time
//! of issue, bound to the account by a BLAKE2b MAC under a secret
//! [`DeviceKey`]; the account name itself is not in the token. When a
//! login attempt presents a token that [`Throttle::verify_device_token`]
//! accepts for the account being attempted, the attempt is **trusted**:
//! the account, address and pair counters neither refuse it nor count it,
//! because those are shared with strangers (anyone can fail against the
//! account; anyone on the same Wi-Fi or carrier NAT shares the address and
//! so the pair), and sharing is exactly what would let a stranger lock the
//! owner out. Instead the token has its own counter, with the pair's
//! backoff, and is revoked at [`ThrottleConfig::device_max_failures`] (10)
//! consecutive failures, after which it is worth nothing and its holder is
//! an untrusted client again. A stolen token is therefore good for at most
//! that many guesses, not an unlimited bypass.
//!
//! Trust is carried by the token, not by an entry in the tables: a flood
//! of random accounts or addresses that evicts every counter cannot take a
//! trusted browser's way in away. A token expires
//! [`ThrottleConfig::device_token_lifetime`] after it was issued (90 days;
//! the guard issues a fresh one at every login). Revoked nonces are
//! remembered until their token would have expired anyway.
//!
//! # Defaults, and why
//!
//! | setting | default | reason |
//! | --- | --- | --- |
//! | pair | 5 free, then 1 s doubling to 15 min | a person rarely mistypes 5 times running; 1 s is not noticed; 15 failures cost a guesser ~17 min and then 4 per hour, while the real user's worst wait stays 15 min |
//! | account | 10 free, then 1 s doubling to 15 min | catches guessing spread over many addresses, which no pair sees; more free failures than the pair because this lock also falls on the owner's new browsers, and a single source always meets its pair lock first |
//! | address | 20 free, then 1 s doubling to 15 min | catches password spraying; generous because an office NAT or a carrier-grade NAT puts many people behind one address |
//! | device | 5 free, then 1 s doubling to 15 min; revoked at 10 | the pair's schedule for a trusted browser; 10 failures in a row is no longer the owner typing |
//! | hourly cap | 100 per account, rolling hour | NIST SP 800-63B's ceiling on failed attempts; a backstop that holds whatever the backoff settings (the default backoff alone allows 22 in the first hour, 4 per hour after) |
//! | forget after | 24 h without a failure | a counter survives an attacker's pause (pausing an hour or two earns no fresh free attempts), yet the owner's stale typos are gone by tomorrow |
//! | device token lifetime | 90 days | a browser used at least once a quarter stays trusted; a leaked token dies on its own |
//! | capacities | 10 000 entries per table, 10 000 revoked tokens | a few MB at most (see below); enough for the accounts and sources of a busy site's day of failures |
//!
//! # Memory
//!
//! Each table has a fixed capacity. A full table evicts its least recently
//! failed entry (which, as entries are ordered by their last failure, is
//! also the first to be forgotten). Entries quiet for
//! [`ThrottleConfig::forget_after`] are forgotten: they count as absent at
//! once, and are removed from the tail a few per call. An entry is one
//! fixed-size slot in a dense vector plus a hash-index entry, whatever the
//! length of the account name (names are stored as a 128-bit keyed hash):
//! 40 bytes (address, pair, device) or 56 bytes (account, with its hourly
//! slots) plus about 34 bytes of index, so about 74 or 90 bytes per entry
//! and at most about 3.5 MB for the default capacities, revoked set
//! included. A flood of random names or addresses evicts other entries but
//! never grows memory past the capacities. The limit of LRU eviction: a
//! flood of `capacity` fresh failures pushes an old entry out, and with it
//! its count, so capacities should exceed the number of distinct failing
//! accounts (and sources) a site sees within a quarter of an hour; each
//! such reset costs the attacker `capacity` failures, each throttled by its
//! own address counter, to earn a few more guesses at one account.
//!
//! # Time and randomness
//!
//! Time is an argument: any [`Moment`] (an `Instant` in a server, a
//! `Duration` since an origin in tests), kept to the nanosecond and never
//! allowed to run backwards inside the throttle. A wait ends exactly at its
//! instant: one nanosecond before it the attempt is refused, at it the
//! attempt is allowed. Device tokens use the wall clock ([`SystemTime`],
//! whole seconds), since they must outlive the process. The keys come from
//! the generator the caller lends.
//!
//! # What the guard does with it
//!
//! ```text
//! POST /__login__ (after CSRF and body checks) or a Basic attempt:
//!   device  = cookie __Host-<name>-device, if any, then
//!             throttle.verify_device_token(now.wall, username, cookie)   (None for Basic)
//!   attempt = throttle.check(now.mono, username, peer_ip, device.as_ref())
//!     Err(t)  -> 429, Retry-After: t.retry_after_secs(); same page for every
//!                account; log a throttle event with t.limit(). Do not verify.
//!     Ok(a)   -> start the verification job; keep `a` with the job.
//!   verdict success -> throttle.record_success(now.mono, a); new session;
//!                      Set-Cookie the fresh throttle.issue_device_token(now.wall, username, rng)
//!                      (__Host-, Secure, HttpOnly, SameSite=Strict, Path=/,
//!                       Max-Age = device_token_lifetime)
//!   verdict failure (unknown user and wrong password alike) ->
//!                      throttle.record_failure(now.mono, a);
//!                      on Recorded::DeviceRevoked also clear the device cookie.
//! ```
//!
//! An `Attempt` that is dropped without a verdict stays charged as a
//! failure, which is the safe way to err.

use core::net::IpAddr;
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::time::{Duration, Instant, SystemTime};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use blake2::digest::consts::U16;
use blake2::digest::Mac;
use blake2::Blake2bMac;
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

use crate::random::{random_array, CryptoRng};
use crate::session::Moment;

/// Characters in a device token (base64url without padding of 41 bytes:
/// version, issue time, nonce, MAC).
pub const DEVICE_TOKEN_CHARS: usize = 55;

/// An exponential backoff: after `free_failures` failures the next attempt
/// waits `first_delay`, and each further failure doubles the wait, up to
/// `max_delay`. The wait runs from the last failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// Failures that cost no wait.
    pub free_failures: u32,
    /// The wait after the first failure beyond the free ones.
    pub first_delay: Duration,
    /// The longest wait.
    pub max_delay: Duration,
}

impl Backoff {
    /// A backoff of `free_failures` free failures, then `first_delay`
    /// doubling up to `max_delay`.
    #[must_use]
    pub const fn new(free_failures: u32, first_delay: Duration, max_delay: Duration) -> Self {
        Backoff {
            free_failures,
            first_delay,
            max_delay,
        }
    }

    /// A backoff that never waits.
    #[must_use]
    pub const fn off() -> Self {
        Backoff::new(u32::MAX, Duration::ZERO, Duration::ZERO)
    }

    /// The wait after `failures` consecutive failures.
    #[must_use]
    pub fn delay(&self, failures: u32) -> Duration {
        let Some(doublings) = failures.checked_sub(self.free_failures) else {
            return Duration::ZERO;
        };
        1u32.checked_shl(doublings)
            .and_then(|factor| self.first_delay.checked_mul(factor))
            .unwrap_or(Duration::MAX)
            .min(self.max_delay)
    }
}

/// The throttle's limits, schedules and capacities. The module docs give
/// the reason for each default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThrottleConfig {
    /// Backoff per account (untrusted attempts only). Default 10 free, then
    /// 1 s doubling to 15 min.
    pub account: Backoff,
    /// Backoff per client address (IPv6 by /64; untrusted attempts only).
    /// Default 20 free, then 1 s doubling to 15 min.
    pub address: Backoff,
    /// Backoff per (account, address) (untrusted attempts only). Default 5
    /// free, then 1 s doubling to 15 min.
    pub pair: Backoff,
    /// Backoff per trusted-device token. Default 5 free, then 1 s doubling
    /// to 15 min.
    pub device: Backoff,
    /// Most failed untrusted attempts per account in any 60 minutes.
    /// Default 100; at least 1.
    pub account_hourly_cap: u8,
    /// Consecutive failures that revoke a device token. Default 10; at
    /// least 1.
    pub device_max_failures: u32,
    /// How long a device token stays valid after it is issued. Default 90
    /// days.
    pub device_token_lifetime: Duration,
    /// A counter with no failure for this long is forgotten. Default 24 h;
    /// never less than its table's longest wait (and, for accounts, the 65
    /// minutes of the hourly cap).
    pub forget_after: Duration,
    /// Most accounts counted at once. Default 10 000.
    pub account_capacity: usize,
    /// Most client addresses counted at once. Default 10 000.
    pub address_capacity: usize,
    /// Most (account, address) pairs counted at once. Default 10 000.
    pub pair_capacity: usize,
    /// Most device tokens with failures counted at once. Default 10 000.
    pub device_capacity: usize,
    /// Most revoked device tokens remembered; when full, the one that
    /// expires soonest is dropped. Default 10 000.
    pub revoked_capacity: usize,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        const SECOND: Duration = Duration::from_secs(1);
        const QUARTER_HOUR: Duration = Duration::from_secs(15 * 60);
        ThrottleConfig {
            account: Backoff::new(10, SECOND, QUARTER_HOUR),
            address: Backoff::new(20, SECOND, QUARTER_HOUR),
            pair: Backoff::new(5, SECOND, QUARTER_HOUR),
            device: Backoff::new(5, SECOND, QUARTER_HOUR),
            account_hourly_cap: 100,
            device_max_failures: 10,
            device_token_lifetime: Duration::from_secs(90 * 24 * 3600),
            forget_after: Duration::from_secs(24 * 3600),
            account_capacity: 10_000,
            address_capacity: 10_000,
            pair_capacity: 10_000,
            device_capacity: 10_000,
            revoked_capacity: 10_000,
        }
    }
}

/// Why an attempt was refused: the counter whose wait is the longest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Limit {
    /// The account's backoff.
    Account,
    /// The account's hourly cap.
    AccountHourlyCap,
    /// The client address's backoff.
    Address,
    /// The (account, address) backoff.
    Pair,
    /// The trusted-device token's backoff.
    Device,
}

/// A refused attempt: answer 429 with `Retry-After`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Throttled {
    retry_after_secs: u64,
    limit: Limit,
}

impl Throttled {
    /// How long until the attempt would be allowed, rounded up to whole
    /// seconds (at least 1 s).
    #[must_use]
    pub fn retry_after(&self) -> Duration {
        Duration::from_secs(self.retry_after_secs)
    }

    /// The `Retry-After` header value: whole seconds, at least 1.
    #[must_use]
    pub fn retry_after_secs(&self) -> u64 {
        self.retry_after_secs
    }

    /// Which counter refused (for the log; the client is not told).
    #[must_use]
    pub fn limit(&self) -> Limit {
        self.limit
    }
}

/// An allowed attempt, already charged as a failure. Give it back with the
/// verdict to [`Throttle::record_failure`] or [`Throttle::record_success`];
/// dropped, it stays a failure.
#[must_use = "an attempt must be settled with record_failure or record_success"]
pub struct Attempt {
    account: Key,
    address: Key,
    pair: Key,
    charge: Charge,
    /// When it was charged, and the stamps the charged entries had before
    /// (address, pair, account; or the device's), so that a cancel can put
    /// the clock back as well as the count.
    at: u64,
    before: [Option<u64>; 3],
}

#[derive(Clone, Copy)]
enum Charge {
    /// Charged to the account (and its hourly slot), address and pair.
    Untrusted { hour_slot: u32 },
    /// Charged to one device token, which expires `remaining` ns after the
    /// check.
    Trusted { nonce: Key, remaining: u64 },
}

impl Attempt {
    /// Whether the attempt was made with a trusted device token.
    #[must_use]
    pub fn is_trusted(&self) -> bool {
        matches!(self.charge, Charge::Trusted { .. })
    }
}

impl fmt::Debug for Attempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Attempt")
            .field("trusted", &self.is_trusted())
            .finish_non_exhaustive()
    }
}

/// What a recorded failure did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use = "a revoked device token's cookie should be cleared"]
pub enum Recorded {
    /// The failure is counted.
    Counted,
    /// The failure is counted and it was the device token's last: the
    /// token is revoked (clear its cookie).
    DeviceRevoked,
}

/// How many entries each table holds (for tests and monitoring).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThrottleEntries {
    /// Accounts counted.
    pub accounts: usize,
    /// Client addresses counted.
    pub addresses: usize,
    /// (account, address) pairs counted.
    pub pairs: usize,
    /// Device tokens with failures counted.
    pub devices: usize,
    /// Revoked device tokens remembered.
    pub revoked: usize,
}

/// The secret that signs device tokens. A server that keeps it across
/// restarts (see [`DeviceKey::from_bytes`]) keeps its browsers trusted
/// across restarts; a fresh key makes every earlier token worthless.
///
/// `Debug` is redacted and the bytes are wiped on drop.
pub struct DeviceKey([u8; 32]);

impl DeviceKey {
    /// A fresh key from the caller's CSPRNG.
    #[must_use]
    pub fn generate(rng: &mut dyn CryptoRng) -> Self {
        DeviceKey(random_array(rng))
    }

    /// A key kept by the server (32 secret random bytes).
    #[must_use]
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        DeviceKey(bytes)
    }

    /// The key's bytes, for the server to store.
    #[must_use]
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0
    }
}

impl fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DeviceKey(<redacted>)")
    }
}

impl Drop for DeviceKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// A device token that [`Throttle::verify_device_token`] accepted for one
/// account. Pass it to [`Throttle::check`] for that account's attempts.
#[derive(Clone)]
pub struct TrustedDevice {
    account: Key,
    nonce: Key,
    /// Whole seconds until the token expires (from the verifying clock).
    remaining_secs: u64,
}

impl fmt::Debug for TrustedDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TrustedDevice { .. }")
    }
}

/// The brute-force defence: see the module docs.
pub struct Throttle<M = Instant> {
    config: ThrottleConfig,
    /// Keys the hashes that name accounts, addresses and pairs, so their
    /// placement in the tables cannot be chosen by an attacker.
    table_key: [u8; 32],
    device_key: DeviceKey,
    /// The first moment seen; times are nanoseconds after it.
    epoch: Option<M>,
    /// The latest time seen, in nanoseconds after `epoch`.
    latest: u64,
    accounts: Table<AccountState>,
    addresses: Table<u32>,
    pairs: Table<u32>,
    devices: Table<u32>,
    /// Revoked device nonces and when their tokens expire (ns).
    revoked: HashMap<Key, u64, BuildHasherDefault<KeyHasher>>,
}

/// Entries removed from each table's quiet tail per call.
const PRUNE_PER_CALL: usize = 2;

impl<M: Moment> Throttle<M> {
    /// A throttle with a fresh device key: tokens from an earlier process
    /// are not trusted.
    pub fn new(config: ThrottleConfig, rng: &mut dyn CryptoRng) -> Self {
        let device_key = DeviceKey::generate(rng);
        Throttle::with_device_key(config, device_key, rng)
    }

    /// A throttle that signs and checks device tokens with `device_key`.
    pub fn with_device_key(
        config: ThrottleConfig,
        device_key: DeviceKey,
        rng: &mut dyn CryptoRng,
    ) -> Self {
        // A counter is never forgotten while it can still refuse.
        let forget = |backoff: Backoff| nanos(config.forget_after).max(nanos(backoff.max_delay));
        let device_forget = nanos(config.device_token_lifetime).max(nanos(config.device.max_delay));
        Throttle {
            accounts: Table::new(
                config.account_capacity,
                forget(config.account).max(HourRing::MEMORY),
            ),
            addresses: Table::new(config.address_capacity, forget(config.address)),
            pairs: Table::new(config.pair_capacity, forget(config.pair)),
            devices: Table::new(config.device_capacity, device_forget),
            revoked: HashMap::default(),
            table_key: random_array(rng),
            device_key,
            epoch: None,
            latest: 0,
            config,
        }
    }

    /// Whether an attempt to log in to `account` from `client` may be
    /// verified now. Call it before verifying anything, for every attempt
    /// (unknown accounts included), with the trusted device the request
    /// presents for that account, if any.
    ///
    /// `Ok` charges the attempt as a failure until its verdict is recorded;
    /// `Err` tells how long to wait and charges nothing.
    pub fn check(
        &mut self,
        now: M,
        account: &str,
        client: IpAddr,
        device: Option<&TrustedDevice>,
    ) -> Result<Attempt, Throttled> {
        let t = self.tick(now);
        self.prune(t);
        let group = address_group(client);
        let account_key = self.hash(b"portcullis-acct", &[account.as_bytes()]);
        let address = self.hash(b"portcullis-addr", &[&group]);
        let pair = self.hash(b"portcullis-pair", &[&group, account.as_bytes()]);

        if let Some(device) = device.filter(|d| self.is_trusted(d, &account_key, t)) {
            let (failures, last) = self.devices.get(&device.nonce, t).unwrap_or_default();
            let until = last.saturating_add(nanos(self.config.device.delay(failures)));
            if t < until {
                return Err(Throttled::new(until - t, Limit::Device));
            }
            let before = [self.devices.stamp(&device.nonce), None, None];
            let count = self.devices.touch(device.nonce, t);
            *count = count.saturating_add(1);
            let remaining = nanos(Duration::from_secs(device.remaining_secs));
            return Ok(Attempt {
                account: account_key,
                address,
                pair,
                charge: Charge::Trusted {
                    nonce: device.nonce,
                    remaining,
                },
                at: t,
                before,
            });
        }

        let mut refusal: Option<(u64, Limit)> = None;
        let mut consider = |until: u64, limit| {
            if until > t && refusal.is_none_or(|(longest, _)| until > longest) {
                refusal = Some((until, limit));
            }
        };
        if let Some((failures, last)) = self.addresses.get(&address, t) {
            consider(until(last, self.config.address, failures), Limit::Address);
        }
        if let Some((failures, last)) = self.pairs.get(&pair, t) {
            consider(until(last, self.config.pair, failures), Limit::Pair);
        }
        let cap = u32::from(self.config.account_hourly_cap.max(1));
        if let Some((state, last)) = self.accounts.get(&account_key, t) {
            consider(
                until(last, self.config.account, state.failures),
                Limit::Account,
            );
            if let Some(below) = state.hour.below_cap_at(t, cap) {
                consider(below, Limit::AccountHourlyCap);
            }
        }
        if let Some((until, limit)) = refusal {
            return Err(Throttled::new(until - t, limit));
        }

        let before = [
            self.addresses.stamp(&address),
            self.pairs.stamp(&pair),
            self.accounts.stamp(&account_key),
        ];
        for (table, key) in [(&mut self.addresses, address), (&mut self.pairs, pair)] {
            let count = table.touch(key, t);
            *count = count.saturating_add(1);
        }
        let state = self.accounts.touch(account_key, t);
        state.failures = state.failures.saturating_add(1);
        let hour_slot = state.hour.add(t);
        Ok(Attempt {
            account: account_key,
            address,
            pair,
            charge: Charge::Untrusted { hour_slot },
            at: t,
            before,
        })
    }

    /// The attempt failed (wrong password or unknown account alike): its
    /// charge stands, and the backoff runs from now.
    pub fn record_failure(&mut self, now: M, attempt: Attempt) -> Recorded {
        let t = self.tick(now);
        match attempt.charge {
            Charge::Untrusted { .. } => {
                // A counter evicted while the password was being checked
                // is charged again rather than let off.
                for (table, key) in [
                    (&mut self.addresses, attempt.address),
                    (&mut self.pairs, attempt.pair),
                ] {
                    table.confirm(key, t, |count| *count = count.saturating_add(1));
                }
                self.accounts.confirm(attempt.account, t, |state| {
                    state.failures = state.failures.saturating_add(1);
                    state.hour.add(t);
                });
                Recorded::Counted
            }
            Charge::Trusted { nonce, remaining } => {
                let failures = self.devices.confirm(nonce, t, |count| {
                    *count = count.saturating_add(1);
                });
                if failures >= self.config.device_max_failures.max(1) {
                    self.devices.remove(&nonce);
                    self.revoke_nonce(nonce, t.saturating_add(remaining));
                    Recorded::DeviceRevoked
                } else {
                    Recorded::Counted
                }
            }
        }
    }

    /// The attempt succeeded: its charge is refunded, and the failures the
    /// same (account, address) pair made before are forgiven at every
    /// level (not in the hourly cap). A trusted device's count restarts.
    pub fn record_success(&mut self, now: M, attempt: Attempt) {
        let t = self.tick(now);
        let forgiven = self.pairs.take(&attempt.pair, t).unwrap_or(0);
        // Untrusted, this attempt's own charge is in `forgiven` already.
        if let Some(count) = self.addresses.get_mut(&attempt.address, t) {
            *count = count.saturating_sub(forgiven);
            if *count == 0 {
                self.addresses.remove(&attempt.address);
            }
        }
        if let Some(state) = self.accounts.get_mut(&attempt.account, t) {
            state.failures = state.failures.saturating_sub(forgiven);
            if let Charge::Untrusted { hour_slot } = attempt.charge {
                state.hour.refund(hour_slot);
            }
            if state.failures == 0 && state.hour.is_empty() {
                self.accounts.remove(&attempt.account);
            }
        }
        if let Charge::Trusted { nonce, .. } = attempt.charge {
            self.devices.remove(&nonce);
        }
    }

    /// The attempt was never checked (the server had no capacity to verify
    /// it): exactly its own charge is taken back, nothing more is forgiven.
    pub fn cancel(&mut self, now: M, attempt: Attempt) {
        let t = self.tick(now);
        let at = attempt.at;
        let [first, second, third] = attempt.before;
        match attempt.charge {
            Charge::Trusted { nonce, .. } => {
                self.devices.take_back(&nonce, at, first, |count| {
                    *count = count.saturating_sub(1);
                    *count == 0
                });
            }
            Charge::Untrusted { hour_slot } => {
                // A success of the same pair since then took this charge
                // back already (it forgives the pair's failures).
                if self.pairs.get(&attempt.pair, t).is_none_or(|(n, _)| n == 0) {
                    return;
                }
                let one_less = |count: &mut u32| {
                    *count = count.saturating_sub(1);
                    *count == 0
                };
                self.addresses
                    .take_back(&attempt.address, at, first, one_less);
                self.pairs.take_back(&attempt.pair, at, second, one_less);
                self.accounts
                    .take_back(&attempt.account, at, third, |state| {
                        state.failures = state.failures.saturating_sub(1);
                        state.hour.refund(hour_slot);
                        state.failures == 0 && state.hour.is_empty()
                    });
            }
        }
    }

    /// A new device token for `account`, to set as a cookie after a
    /// successful login. `now` is the wall clock.
    pub fn issue_device_token(
        &self,
        now: SystemTime,
        account: &str,
        rng: &mut dyn CryptoRng,
    ) -> String {
        let mut token = [0u8; TOKEN_BYTES];
        token[0] = TOKEN_VERSION;
        token[1..9].copy_from_slice(&unix_secs(now).to_be_bytes());
        token[9..25].copy_from_slice(&random_array::<16>(rng));
        let tag = self.device_tag(&token[..25], account);
        token[25..].copy_from_slice(&tag);
        URL_SAFE_NO_PAD.encode(token)
    }

    /// The trusted device that `token` proves for `account` at wall time
    /// `now`, or `None` if the token is malformed, forged, for another
    /// account, expired (at exactly its lifetime) or revoked.
    #[must_use]
    pub fn verify_device_token(
        &self,
        now: SystemTime,
        account: &str,
        token: &str,
    ) -> Option<TrustedDevice> {
        if token.len() != DEVICE_TOKEN_CHARS {
            return None;
        }
        let mut bytes = [0u8; TOKEN_BYTES];
        // The decoder refuses padding, other alphabets and non-zero
        // trailing bits: one spelling per token.
        if URL_SAFE_NO_PAD.decode_slice(token, &mut bytes).ok()? != TOKEN_BYTES
            || bytes[0] != TOKEN_VERSION
        {
            return None;
        }
        let tag = self.device_tag(&bytes[..25], account);
        if !bool::from(tag.ct_eq(&bytes[25..])) {
            return None;
        }
        let mut issued = [0u8; 8];
        issued.copy_from_slice(&bytes[1..9]);
        let expires =
            u64::from_be_bytes(issued).saturating_add(self.config.device_token_lifetime.as_secs());
        let remaining_secs = expires.checked_sub(unix_secs(now)).filter(|&r| r > 0)?;
        let mut nonce = [0u8; 16];
        nonce.copy_from_slice(&bytes[9..25]);
        let device = TrustedDevice {
            account: self.hash(b"portcullis-acct", &[account.as_bytes()]),
            nonce: Key(nonce),
            remaining_secs,
        };
        (!self.revoked.contains_key(&device.nonce)).then_some(device)
    }

    /// Revokes a device token ("forget this browser").
    pub fn revoke_device(&mut self, now: M, device: &TrustedDevice) {
        let t = self.tick(now);
        self.devices.remove(&device.nonce);
        let expires = t.saturating_add(nanos(Duration::from_secs(device.remaining_secs)));
        self.revoke_nonce(device.nonce, expires);
    }

    /// The configuration in force (for instance the device token
    /// lifetime, as the cookie's `Max-Age`).
    #[must_use]
    pub fn config(&self) -> &ThrottleConfig {
        &self.config
    }

    /// How many entries each table holds.
    #[must_use]
    pub fn entries(&self) -> ThrottleEntries {
        ThrottleEntries {
            accounts: self.accounts.len(),
            addresses: self.addresses.len(),
            pairs: self.pairs.len(),
            devices: self.devices.len(),
            revoked: self.revoked.len(),
        }
    }

    /// Whether `device` makes this attempt on `account` trusted: it was
    /// verified for this account, is not revoked, and has failures left.
    fn is_trusted(&self, device: &TrustedDevice, account: &Key, t: u64) -> bool {
        device.account == *account
            && !self.revoked.contains_key(&device.nonce)
            && self
                .devices
                .get(&device.nonce, t)
                .is_none_or(|(failures, _)| failures < self.config.device_max_failures.max(1))
    }

    fn revoke_nonce(&mut self, nonce: Key, expires: u64) {
        let capacity = self.config.revoked_capacity.max(1);
        if !self.revoked.contains_key(&nonce) && self.revoked.len() >= capacity {
            // Rare (each revocation takes a login and ten failures), so a
            // scan is fine: first the tokens that have expired anyway,
            // then, if still full, the one that expires soonest.
            let now = self.latest;
            self.revoked.retain(|_, &mut expiry| expiry > now);
            if self.revoked.len() >= capacity {
                if let Some(soonest) = self
                    .revoked
                    .iter()
                    .min_by_key(|&(_, &expiry)| expiry)
                    .map(|(&key, _)| key)
                {
                    self.revoked.remove(&soonest);
                }
            }
        }
        self.revoked.insert(nonce, expires);
    }

    fn tick(&mut self, now: M) -> u64 {
        let epoch = *self.epoch.get_or_insert(now);
        self.latest = self.latest.max(nanos(now.since(epoch)));
        self.latest
    }

    fn prune(&mut self, t: u64) {
        self.accounts.prune(t, PRUNE_PER_CALL);
        self.addresses.prune(t, PRUNE_PER_CALL);
        self.pairs.prune(t, PRUNE_PER_CALL);
        self.devices.prune(t, PRUNE_PER_CALL);
    }

    /// A 128-bit keyed hash naming an entry. `persona` (at most 16 bytes)
    /// keeps the kinds apart; every part but the last has a fixed length.
    fn hash(&self, persona: &[u8], parts: &[&[u8]]) -> Key {
        Key(mac(&self.table_key, persona, parts))
    }

    fn device_tag(&self, body: &[u8], account: &str) -> [u8; 16] {
        mac(
            &self.device_key.0,
            b"portcullis-dev1",
            &[body, account.as_bytes()],
        )
    }
}

impl<M> fmt::Debug for Throttle<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Throttle")
            .field("accounts", &self.accounts.len())
            .field("addresses", &self.addresses.len())
            .field("pairs", &self.pairs.len())
            .field("devices", &self.devices.len())
            .field("revoked", &self.revoked.len())
            .finish_non_exhaustive()
    }
}

impl<M> Drop for Throttle<M> {
    fn drop(&mut self) {
        self.table_key.zeroize();
    }
}

impl Throttled {
    fn new(wait_ns: u64, limit: Limit) -> Self {
        Throttled {
            retry_after_secs: wait_ns.div_ceil(NANOS_PER_SEC).max(1),
            limit,
        }
    }
}

const NANOS_PER_SEC: u64 = 1_000_000_000;
const TOKEN_VERSION: u8 = 1;
/// Version (1), issue time in Unix seconds (8), nonce (16), MAC (16).
const TOKEN_BYTES: usize = 41;

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// When the backoff after `failures` failures, the last at `last`, ends.
fn until(last: u64, backoff: Backoff, failures: u32) -> u64 {
    last.saturating_add(nanos(backoff.delay(failures)))
}

/// BLAKE2b-128 keyed with `key`, personalised with `persona`.
fn mac(key: &[u8; 32], persona: &[u8], parts: &[&[u8]]) -> [u8; 16] {
    // A 32-byte key and a persona of at most 16 bytes are always valid.
    let mut mac = Blake2bMac::<U16>::new_with_salt_and_personal(Some(key), &[], persona)
        .expect("BLAKE2b accepts a 32-byte key and a 16-byte persona");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// The address a client is counted under: an IPv4 address as it is (also
/// when written IPv4-mapped in IPv6), an IPv6 address by its /64, the
/// smallest block a single subscriber is normally given.
fn address_group(client: IpAddr) -> [u8; 9] {
    let v4 = match client {
        IpAddr::V4(v4) => v4,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4,
            None => {
                let mut group = [6u8; 9];
                group[1..].copy_from_slice(&v6.octets()[..8]);
                return group;
            }
        },
    };
    let mut group = [4u8; 9];
    group[1..5].copy_from_slice(&v4.octets());
    group[5..].fill(0);
    group
}

/// A table key: a keyed hash (or a random nonce), so uniformly spread and
/// not chosen by the client.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
struct Key([u8; 16]);

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let [a, b, c, d, e, f, g, h, ..] = self.0;
        state.write_u64(u64::from_le_bytes([a, b, c, d, e, f, g, h]));
    }
}

/// Hashes a [`Key`] to its first eight bytes: the key is already a keyed
/// hash, so hashing it again would add cost and no safety.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// An account's counters: its backoff and its hourly cap.
#[derive(Clone, Copy, Default)]
struct AccountState {
    failures: u32,
    hour: HourRing,
}

/// Failures in the last hour, in 5-minute slots: the current slot and the
/// twelve before it. A failure is counted until its slot is 13 slots old,
/// so for more than 60 and at most 65 minutes: no 60-minute window can hold
/// more failures than the cap allows.
#[derive(Clone, Copy, Default)]
struct HourRing {
    /// The slot (5-minute periods since the epoch) of `counts[0]`;
    /// `counts[k]` is slot `newest - k`.
    newest: u32,
    counts: [u8; HourRing::SLOTS],
}

impl HourRing {
    const SLOTS: usize = 13;
    const SLOT_NS: u64 = 300 * NANOS_PER_SEC;
    /// How long a failure can stay counted (65 minutes).
    const MEMORY: u64 = HourRing::SLOTS as u64 * HourRing::SLOT_NS;

    fn slot(t: u64) -> u32 {
        u32::try_from(t / Self::SLOT_NS).unwrap_or(u32::MAX)
    }

    /// Counts a failure at `t`; returns its slot.
    fn add(&mut self, t: u64) -> u32 {
        let slot = Self::slot(t);
        let shift = slot.saturating_sub(self.newest) as usize;
        if shift >= Self::SLOTS {
            self.counts = [0; Self::SLOTS];
        } else if shift > 0 {
            self.counts.copy_within(..Self::SLOTS - shift, shift);
            self.counts[..shift].fill(0);
        }
        self.newest = self.newest.max(slot);
        let k = (self.newest - slot) as usize;
        if let Some(count) = self.counts.get_mut(k) {
            *count = count.saturating_add(1);
        }
        slot
    }

    /// Takes back the failure counted in `slot`, if it is still counted.
    fn refund(&mut self, slot: u32) {
        if let Some(count) = self
            .newest
            .checked_sub(slot)
            .and_then(|k| self.counts.get_mut(k as usize))
        {
            *count = count.saturating_sub(1);
        }
    }

    fn is_empty(&self) -> bool {
        self.counts.iter().all(|&c| c == 0)
    }

    /// The slots still counted at `t`: `counts[..live]`.
    fn live(&self, t: u64) -> usize {
        let age = Self::slot(t).saturating_sub(self.newest) as usize;
        Self::SLOTS.saturating_sub(age)
    }

    /// If `cap` or more failures are counted at `t`, when fewer will be.
    fn below_cap_at(&self, t: u64, cap: u32) -> Option<u64> {
        let live = &self.counts[..self.live(t)];
        let mut counted: u32 = live.iter().map(|&c| u32::from(c)).sum();
        if counted < cap {
            return None;
        }
        // Oldest slot first: slot `newest - k` stops counting when slot
        // `newest - k + 13` begins.
        for (k, &count) in live.iter().enumerate().rev() {
            counted -= u32::from(count);
            if counted < cap {
                let ends = u64::from(self.newest) + Self::SLOTS as u64 - k as u64;
                return Some(ends.saturating_mul(Self::SLOT_NS));
            }
        }
        None
    }
}

const NIL: u32 = u32::MAX;

/// A fixed-capacity map from [`Key`] to a counter, kept in the order of
/// last failure (most recent first) so that both the least recently failed
/// entry (evicted when full) and the quiet ones (forgotten) are at the
/// tail. Slots live in a dense vector and are reused; the index maps keys
/// to slots.
struct Table<V> {
    slots: Vec<Slot<V>>,
    index: HashMap<Key, u32, BuildHasherDefault<KeyHasher>>,
    /// Most recently failed.
    head: u32,
    /// Least recently failed.
    tail: u32,
    /// Unused slots, chained through `next`.
    free: u32,
    capacity: usize,
    /// Nanoseconds without a failure after which an entry is forgotten.
    forget_after: u64,
}

struct Slot<V> {
    key: Key,
    /// The time of the last failure (ns).
    last: u64,
    prev: u32,
    next: u32,
    value: V,
}

impl<V: Copy + Default> Table<V> {
    fn new(capacity: usize, forget_after: u64) -> Self {
        Table {
            slots: Vec::new(),
            index: HashMap::default(),
            head: NIL,
            tail: NIL,
            free: NIL,
            capacity: capacity.clamp(1, NIL as usize - 1),
            forget_after,
        }
    }

    fn len(&self) -> usize {
        self.index.len()
    }

    fn is_quiet(&self, slot: u32, t: u64) -> bool {
        t.saturating_sub(self.slots[slot as usize].last) >= self.forget_after
    }

    /// The entry's value and last failure, unless absent or forgotten.
    fn get(&self, key: &Key, t: u64) -> Option<(V, u64)> {
        let &i = self.index.get(key)?;
        let slot = &self.slots[i as usize];
        (!self.is_quiet(i, t)).then_some((slot.value, slot.last))
    }

    /// The entry's value, to change in place, unless absent or forgotten.
    fn get_mut(&mut self, key: &Key, t: u64) -> Option<&mut V> {
        let &i = self.index.get(key)?;
        if self.is_quiet(i, t) {
            return None;
        }
        Some(&mut self.slots[i as usize].value)
    }

    /// The entry for a failure at `t`: found (fresh again if it had been
    /// forgotten) or made (evicting the least recently failed entry when
    /// full), moved to the front and stamped with `t`.
    fn touch(&mut self, key: Key, t: u64) -> &mut V {
        let i = match self.index.get(&key) {
            Some(&i) => {
                if self.is_quiet(i, t) {
                    self.slots[i as usize].value = V::default();
                }
                self.unlink(i);
                i
            }
            None => {
                let i = self.allocate();
                let slot = &mut self.slots[i as usize];
                slot.key = key;
                slot.value = V::default();
                self.index.insert(key, i);
                i
            }
        };
        self.push_front(i);
        let slot = &mut self.slots[i as usize];
        slot.last = t;
        &mut slot.value
    }

    /// Confirms a failure charged earlier: stamps the entry with `t`, or,
    /// if it is gone, makes it again and applies `charge`. Returns the
    /// value.
    fn confirm(&mut self, key: Key, t: u64, charge: impl FnOnce(&mut V)) -> V {
        let present = self.get(&key, t).is_some();
        let value = self.touch(key, t);
        if !present {
            charge(value);
        }
        *value
    }

    /// Removes the entry, returning its value unless it had been forgotten.
    fn take(&mut self, key: &Key, t: u64) -> Option<V> {
        let value = self.get(key, t).map(|(value, _)| value);
        self.remove(key);
        value
    }

    fn remove(&mut self, key: &Key) {
        if let Some(i) = self.index.remove(key) {
            self.unlink(i);
            self.slots[i as usize].next = self.free;
            self.free = i;
        }
    }

    /// Removes up to `budget` forgotten entries from the tail.
    fn prune(&mut self, t: u64, budget: usize) {
        for _ in 0..budget {
            if self.tail == NIL || !self.is_quiet(self.tail, t) {
                break;
            }
            let key = self.slots[self.tail as usize].key;
            self.remove(&key);
        }
    }

    fn allocate(&mut self) -> u32 {
        if self.index.len() >= self.capacity {
            let victim = self.tail;
            let key = self.slots[victim as usize].key;
            self.index.remove(&key);
            self.unlink(victim);
            return victim;
        }
        if self.free != NIL {
            let i = self.free;
            self.free = self.slots[i as usize].next;
            return i;
        }
        if self.slots.len() == self.slots.capacity() {
            // Grow geometrically, but never past the capacity.
            let room = self.capacity - self.slots.len();
            self.slots.reserve_exact(self.slots.len().max(16).min(room));
        }
        self.slots.push(Slot {
            key: Key::default(),
            last: 0,
            prev: NIL,
            next: NIL,
            value: V::default(),
        });
        // The capacity is below NIL, so the index fits.
        (self.slots.len() - 1) as u32
    }

    /// When `key` was last stamped, if it is in the table.
    fn stamp(&self, key: &Key) -> Option<u64> {
        self.index.get(key).map(|&i| self.slots[i as usize].last)
    }

    /// Takes back a charge made at `at`: `uncharge` lowers the value and
    /// says whether nothing is left (the entry goes). If nothing stamped
    /// the entry since, its stamp goes back to `before`, in order.
    fn take_back(
        &mut self,
        key: &Key,
        at: u64,
        before: Option<u64>,
        uncharge: impl FnOnce(&mut V) -> bool,
    ) {
        let Some(&i) = self.index.get(key) else {
            return;
        };
        if uncharge(&mut self.slots[i as usize].value) {
            self.remove(key);
            return;
        }
        let Some(before) = before.filter(|_| self.slots[i as usize].last == at) else {
            return;
        };
        self.unlink(i);
        self.slots[i as usize].last = before;
        // Back among the entries stamped no later than `before` (a walk,
        // but only on a cancel, which is rare).
        let mut j = self.head;
        while j != NIL && self.slots[j as usize].last > before {
            j = self.slots[j as usize].next;
        }
        let prev = if j == NIL {
            self.tail
        } else {
            self.slots[j as usize].prev
        };
        let slot = &mut self.slots[i as usize];
        slot.prev = prev;
        slot.next = j;
        if prev == NIL {
            self.head = i;
        } else {
            self.slots[prev as usize].next = i;
        }
        if j == NIL {
            self.tail = i;
        } else {
            self.slots[j as usize].prev = i;
        }
    }

    fn unlink(&mut self, i: u32) {
        let Slot { prev, next, .. } = self.slots[i as usize];
        if prev == NIL {
            self.head = next;
        } else {
            self.slots[prev as usize].next = next;
        }
        if next == NIL {
            self.tail = prev;
        } else {
            self.slots[next as usize].prev = prev;
        }
        let slot = &mut self.slots[i as usize];
        slot.prev = NIL;
        slot.next = NIL;
    }

    fn push_front(&mut self, i: u32) {
        let old_head = self.head;
        let slot = &mut self.slots[i as usize];
        slot.prev = NIL;
        slot.next = old_head;
        if old_head == NIL {
            self.tail = i;
        } else {
            self.slots[old_head as usize].prev = i;
        }
        self.head = i;
    }
}

#[cfg(test)]
mod tests {
    use core::net::{Ipv4Addr, Ipv6Addr};
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;
    use crate::random::TestRng;

    // Moments are `Duration`s since the start of the story.
    type Th = Throttle<Duration>;

    const NS: Duration = Duration::from_nanos(1);
    const HOME: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn millis(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    /// The wall clock, `at` after the story starts.
    fn wall(at: Duration) -> SystemTime {
        SystemTime::UNIX_EPOCH + secs(1_700_000_000) + at
    }

    fn throttle_with(config: ThrottleConfig) -> Th {
        Throttle::new(config, &mut TestRng::seeded(7))
    }

    fn throttle() -> Th {
        throttle_with(ThrottleConfig::default())
    }

    /// The `n`th address of a pool of strangers (10.0.0.0/8).
    fn stranger(n: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n))
    }

    fn v6(text: &str) -> IpAddr {
        IpAddr::V6(text.parse::<Ipv6Addr>().expect("test address"))
    }

    /// A failed login: checked, then recorded as failed.
    fn fail(th: &mut Th, now: Duration, account: &str, client: IpAddr) -> Result<(), Throttled> {
        let attempt = th.check(now, account, client, None)?;
        assert_eq!(th.record_failure(now, attempt), Recorded::Counted);
        Ok(())
    }

    /// A successful login.
    fn succeed(
        th: &mut Th,
        now: Duration,
        account: &str,
        client: IpAddr,
        device: Option<&TrustedDevice>,
    ) -> Result<(), Throttled> {
        let attempt = th.check(now, account, client, device)?;
        th.record_success(now, attempt);
        Ok(())
    }

    /// A login as the guard runs it: the throttle first, the password only
    /// if the throttle allows it, then the verdict.
    fn login(
        th: &mut Th,
        now: Duration,
        users: &[(&str, &str)],
        (account, password): (&str, &str),
        client: IpAddr,
        device: Option<&TrustedDevice>,
    ) -> Result<bool, Throttled> {
        let attempt = th.check(now, account, client, device)?;
        let right = users.iter().any(|&(u, p)| u == account && p == password);
        if right {
            th.record_success(now, attempt);
        } else {
            let _ = th.record_failure(now, attempt);
        }
        Ok(right)
    }

    /// The (account, address, pair) failure counts, read from inside.
    fn counts(th: &Th, account: &str, client: IpAddr) -> (u32, u32, u32) {
        let t = th.latest;
        let group = address_group(client);
        let account_key = th.hash(b"portcullis-acct", &[account.as_bytes()]);
        let address = th.hash(b"portcullis-addr", &[&group]);
        let pair = th.hash(b"portcullis-pair", &[&group, account.as_bytes()]);
        (
            th.accounts
                .get(&account_key, t)
                .map_or(0, |(s, _)| s.failures),
            th.addresses.get(&address, t).map_or(0, |(c, _)| c),
            th.pairs.get(&pair, t).map_or(0, |(c, _)| c),
        )
    }

    /// Checks a table's list, index and free chain against each other.
    fn assert_consistent<V: Copy + Default>(table: &Table<V>) {
        let mut seen = 0;
        let mut prev = NIL;
        let mut i = table.head;
        while i != NIL {
            let slot = &table.slots[i as usize];
            assert_eq!(slot.prev, prev, "broken back link");
            assert_eq!(table.index.get(&slot.key), Some(&i), "index disagrees");
            if prev != NIL {
                assert!(
                    table.slots[prev as usize].last >= slot.last,
                    "not in failure order"
                );
            }
            seen += 1;
            prev = i;
            i = slot.next;
        }
        assert_eq!(table.tail, prev);
        assert_eq!(seen, table.index.len());
        let mut free = 0;
        let mut i = table.free;
        while i != NIL {
            free += 1;
            i = table.slots[i as usize].next;
        }
        assert_eq!(seen + free, table.slots.len());
        assert!(table.slots.len() <= table.capacity);
    }

    fn assert_all_consistent(th: &Th) {
        assert_consistent(&th.accounts);
        assert_consistent(&th.addresses);
        assert_consistent(&th.pairs);
        assert_consistent(&th.devices);
    }

    #[test]
    fn an_accounts_backoff_doubles_from_one_second_and_stops_at_fifteen_minutes() {
        // Every guess comes from a new address: only the account counts.
        let mut th = throttle();
        let mut now = Duration::ZERO;
        for n in 0..10 {
            fail(&mut th, now, "alice", stranger(n)).expect("ten free failures");
        }
        let waits = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900, 900];
        for (n, &wait) in (100..).zip(&waits) {
            let refused = th.check(now, "alice", stranger(n), None).unwrap_err();
            assert_eq!(refused.limit(), Limit::Account);
            assert_eq!(refused.retry_after(), secs(wait));
            now += secs(wait);
            fail(&mut th, now, "alice", stranger(n)).expect("open once the wait is over");
        }
    }

    #[test]
    fn one_source_meets_its_pair_lock_after_five_failures() {
        let mut th = throttle();
        for _ in 0..5 {
            fail(&mut th, Duration::ZERO, "alice", HOME).unwrap();
        }
        let refused = th.check(Duration::ZERO, "alice", HOME, None).unwrap_err();
        assert_eq!(
            (refused.limit(), refused.retry_after_secs()),
            (Limit::Pair, 1)
        );
        fail(&mut th, secs(1), "alice", HOME).unwrap();
        let refused = th.check(secs(1), "alice", HOME, None).unwrap_err();
        assert_eq!(
            (refused.limit(), refused.retry_after_secs()),
            (Limit::Pair, 2)
        );
        // Another address is not held back by this pair.
        fail(&mut th, secs(1), "alice", stranger(1)).unwrap();
    }

    #[test]
    fn a_source_spraying_many_accounts_meets_its_address_lock_after_twenty() {
        let mut th = throttle();
        for n in 0..20 {
            fail(&mut th, Duration::ZERO, &format!("user{n}"), HOME).unwrap();
        }
        let refused = th.check(Duration::ZERO, "user20", HOME, None).unwrap_err();
        assert_eq!(
            (refused.limit(), refused.retry_after_secs()),
            (Limit::Address, 1)
        );
        // The longest wait is the one reported: alice's pair is fresh, but
        // the address is not.
        fail(&mut th, secs(1), "user20", HOME).unwrap();
        assert_eq!(
            th.check(secs(1), "alice", HOME, None)
                .unwrap_err()
                .retry_after_secs(),
            2
        );
    }

    #[test]
    fn retry_after_is_rounded_up_to_whole_seconds() {
        let mut th = throttle();
        for _ in 0..5 {
            fail(&mut th, Duration::ZERO, "alice", HOME).unwrap();
        }
        // 1 s wait from t = 0.
        let wait = |th: &mut Th, at| th.check(at, "alice", HOME, None).unwrap_err().retry_after();
        assert_eq!(wait(&mut th, millis(300)), secs(1), "0.7 s left");
        assert_eq!(wait(&mut th, secs(1) - NS), secs(1), "1 ns left");
        fail(&mut th, secs(1), "alice", HOME).unwrap();
        // 2 s wait from t = 1 s.
        assert_eq!(wait(&mut th, millis(1500)), secs(2), "1.5 s left");
        assert_eq!(wait(&mut th, secs(2) + NS), secs(1), "1 s less 1 ns left");
    }

    #[test]
    fn a_wait_ends_exactly_on_its_nanosecond() {
        let mut th = throttle();
        let t0 = Duration::new(12, 345_678_901);
        for _ in 0..5 {
            fail(&mut th, t0, "alice", HOME).unwrap();
        }
        let opens = t0 + secs(1);
        assert!(th.check(opens - NS, "alice", HOME, None).is_err());
        assert!(th.check(opens, "alice", HOME, None).is_ok());
    }

    #[test]
    fn attempts_in_flight_are_charged_before_their_verdicts() {
        // Five verifications running at once use up the free failures: a
        // sixth is refused without waiting for any of them.
        let mut th = throttle();
        let running: Vec<Attempt> = (0..5)
            .map(|_| th.check(Duration::ZERO, "alice", HOME, None).unwrap())
            .collect();
        let refused = th.check(Duration::ZERO, "alice", HOME, None).unwrap_err();
        assert_eq!(refused.limit(), Limit::Pair);
        for attempt in running {
            let _ = th.record_failure(Duration::ZERO, attempt);
        }
        assert_eq!(counts(&th, "alice", HOME), (5, 5, 5), "charged once each");
    }

    #[test]
    fn a_correct_password_during_a_throttle_does_not_get_through() {
        let users = [("alice", "correct horse")];
        let mut th = throttle();
        for _ in 0..5 {
            let verdict = login(
                &mut th,
                Duration::ZERO,
                &users,
                ("alice", "guess"),
                HOME,
                None,
            );
            assert_eq!(verdict, Ok(false));
        }
        // The right password now: refused before it is even looked at.
        let verdict = login(
            &mut th,
            millis(999),
            &users,
            ("alice", "correct horse"),
            HOME,
            None,
        );
        assert!(verdict.is_err());
        let verdict = login(
            &mut th,
            secs(1),
            &users,
            ("alice", "correct horse"),
            HOME,
            None,
        );
        assert_eq!(verdict, Ok(true));
    }

    #[test]
    fn success_forgives_the_users_own_failures_and_no_one_elses() {
        let mut th = throttle();
        // Alice mistypes three times at home; someone else on the same
        // home network fails four times on carol; and two guesses at alice
        // come from elsewhere.
        for _ in 0..3 {
            fail(&mut th, Duration::ZERO, "alice", HOME).unwrap();
        }
        for _ in 0..4 {
            fail(&mut th, Duration::ZERO, "carol", HOME).unwrap();
        }
        fail(&mut th, Duration::ZERO, "alice", stranger(1)).unwrap();
        fail(&mut th, Duration::ZERO, "alice", stranger(2)).unwrap();
        assert_eq!(counts(&th, "alice", HOME), (5, 7, 3));

        succeed(&mut th, secs(1), "alice", HOME, None).unwrap();
        // Her pair is cleared, and her three failures leave the address
        // and the account; carol's four and the two strangers' stay.
        assert_eq!(counts(&th, "alice", HOME), (2, 4, 0));
        assert_eq!(counts(&th, "carol", HOME), (4, 4, 4));
        assert_eq!(counts(&th, "alice", stranger(1)), (2, 1, 1));
        // The hourly cap keeps the real failures and only those.
        let alice = th.hash(b"portcullis-acct", &[b"alice"]);
        let (state, _) = th.accounts.get(&alice, th.latest).unwrap();
        let counted: u32 = state.hour.counts.iter().map(|&c| u32::from(c)).sum();
        assert_eq!(counted, 5);
    }

    #[test]
    fn no_hour_holds_more_than_a_hundred_failures_of_one_account() {
        // Backoffs off, so that only the cap is at work.
        let mut th = throttle_with(ThrottleConfig {
            account: Backoff::off(),
            address: Backoff::off(),
            pair: Backoff::off(),
            ..ThrottleConfig::default()
        });
        // A hundred failures, one every 30 s from new addresses: the first
        // ten fall in the first 5-minute slot.
        for n in 0..100 {
            fail(&mut th, secs(30 * u64::from(n)), "alice", stranger(n)).unwrap();
        }
        let now = secs(3000);
        let refused = th.check(now, "alice", stranger(100), None).unwrap_err();
        assert_eq!(refused.limit(), Limit::AccountHourlyCap);
        // The first slot stops counting 65 minutes after it began.
        let freed = secs(13 * 300);
        assert_eq!(refused.retry_after(), freed - now);
        assert!(th.check(freed - NS, "alice", stranger(100), None).is_err());
        // Then its ten failures are forgotten, and ten more may be made.
        for n in 100..110 {
            fail(&mut th, freed, "alice", stranger(n)).unwrap();
        }
        let refused = th.check(freed, "alice", stranger(110), None).unwrap_err();
        assert_eq!(refused.retry_after(), secs(300));
        // A success refunds its own attempt, not the failures before it.
        let mut th2 = throttle_with(th.config.clone());
        for n in 0..99 {
            fail(&mut th2, Duration::ZERO, "bob", stranger(n)).unwrap();
        }
        succeed(&mut th2, Duration::ZERO, "bob", HOME, None).unwrap();
        fail(&mut th2, Duration::ZERO, "bob", HOME).unwrap();
        assert_eq!(
            th2.check(Duration::ZERO, "bob", HOME, None)
                .unwrap_err()
                .limit(),
            Limit::AccountHourlyCap
        );
    }

    #[test]
    fn a_stranger_hammering_an_account_cannot_lock_its_owner_out() {
        let users = [("alice", "correct horse")];
        let mut rng = TestRng::seeded(3);
        let mut th = throttle();
        // Alice logged in from home once and her browser kept a token.
        login(
            &mut th,
            Duration::ZERO,
            &users,
            ("alice", "correct horse"),
            HOME,
            None,
        )
        .unwrap();
        let token = th.issue_device_token(wall(Duration::ZERO), "alice", &mut rng);

        // A stranger guesses from two thousand addresses, one a second.
        let mut now = Duration::ZERO;
        let mut let_through = 0;
        for n in 0..2000 {
            now += secs(1);
            if login(&mut th, now, &users, ("alice", "123456"), stranger(n), None).is_ok() {
                let_through += 1;
            }
        }
        // The account lock held them to 10 free and then the doubling
        // schedule (1 + 2 + ... + 512 s + 900 s fits in 2000 s 11 times).
        assert_eq!(let_through, 21);
        // A browser without a token is locked out, even at home...
        let refused = th.check(now, "alice", HOME, None).unwrap_err();
        assert_eq!(refused.limit(), Limit::Account);
        // ...but alice's browser, with its token, gets in.
        let device = th
            .verify_device_token(wall(now), "alice", &token)
            .expect("valid token");
        let verdict = login(
            &mut th,
            now,
            &users,
            ("alice", "correct horse"),
            HOME,
            Some(&device),
        );
        assert_eq!(verdict, Ok(true));

        // Someone who stole the token gets ten guesses with it, at the
        // device's own pace, and then the token is worthless.
        let thief = stranger(5000);
        let mut revoked_at = None;
        for guess in 1..=10 {
            let attempt = match th.check(now, "alice", thief, Some(&device)) {
                Ok(attempt) => attempt,
                Err(refused) => {
                    assert_eq!(refused.limit(), Limit::Device);
                    now += refused.retry_after();
                    th.check(now, "alice", thief, Some(&device)).unwrap()
                }
            };
            assert!(attempt.is_trusted());
            if th.record_failure(now, attempt) == Recorded::DeviceRevoked {
                revoked_at = Some(guess);
            }
        }
        assert_eq!(revoked_at, Some(10));
        assert!(th.verify_device_token(wall(now), "alice", &token).is_none());
        // The revoked token counts for nothing: the account lock applies.
        let attempt = th.check(now, "alice", thief, Some(&device));
        assert_eq!(attempt.unwrap_err().limit(), Limit::Account);
        assert_eq!(th.entries().revoked, 1);
    }

    #[test]
    fn the_owners_typos_with_her_token_are_forgiven_by_her_next_success() {
        let mut th = throttle();
        let token = th.issue_device_token(wall(Duration::ZERO), "alice", &mut TestRng::seeded(1));
        let device = th
            .verify_device_token(wall(Duration::ZERO), "alice", &token)
            .unwrap();
        let mut now = Duration::ZERO;
        for _ in 0..9 {
            let attempt = match th.check(now, "alice", HOME, Some(&device)) {
                Ok(attempt) => attempt,
                Err(refused) => {
                    now += refused.retry_after();
                    th.check(now, "alice", HOME, Some(&device)).unwrap()
                }
            };
            assert_eq!(th.record_failure(now, attempt), Recorded::Counted);
        }
        // Trusted failures do not touch the shared counters.
        assert_eq!(counts(&th, "alice", HOME), (0, 0, 0));
        now += secs(900);
        succeed(&mut th, now, "alice", HOME, Some(&device)).unwrap();
        assert_eq!(th.entries().devices, 0, "the token's count restarts");
        // A token is trusted only for the account it was issued for.
        assert!(th.verify_device_token(wall(now), "bob", &token).is_none());
        let attempt = th.check(now, "bob", HOME, Some(&device)).unwrap();
        assert!(!attempt.is_trusted());
        let _ = th.record_failure(now, attempt);
    }

    #[test]
    fn unknown_and_known_accounts_are_throttled_alike() {
        let users = [("alice", "correct horse")];
        let transcript = |account: &str| {
            let mut th = throttle();
            let mut out = Vec::new();
            for n in 0..40u32 {
                let now = millis(700 * u64::from(n));
                let client = if n % 3 == 0 { HOME } else { stranger(n % 7) };
                let verdict = login(&mut th, now, &users, (account, "guess"), client, None);
                out.push(verdict.map_err(|t| (t.limit(), t.retry_after_secs())));
            }
            (out, th.entries())
        };
        let known = transcript("alice");
        let unknown = transcript("mallory");
        assert_eq!(known, unknown);
        assert!(
            known.0.iter().any(Result::is_err),
            "the script reaches a lock"
        );
    }

    #[test]
    fn account_names_are_counted_byte_for_byte_like_the_password_file() {
        let mut th = throttle();
        for n in 0..10 {
            fail(&mut th, Duration::ZERO, "alice", stranger(n)).unwrap();
        }
        assert!(th
            .check(Duration::ZERO, "alice", stranger(10), None)
            .is_err());
        // Different names in the password file, so different counters.
        for name in ["Alice", "alice ", "al\u{200b}ice"] {
            assert!(th.check(Duration::ZERO, name, stranger(10), None).is_ok());
        }
    }

    #[test]
    fn a_flood_of_random_accounts_and_addresses_stays_within_the_capacities() {
        let config = ThrottleConfig {
            account_capacity: 64,
            address_capacity: 48,
            pair_capacity: 80,
            device_capacity: 8,
            revoked_capacity: 8,
            ..ThrottleConfig::default()
        };
        let mut th = throttle_with(config);
        let mut rng = TestRng::seeded(11);
        let token = th.issue_device_token(wall(Duration::ZERO), "alice", &mut rng);
        let mut now = Duration::ZERO;
        for n in 0..20_000u32 {
            now += millis(10);
            let name: [u8; 6] = random_array(&mut rng);
            let account = format!("{name:02x?}");
            let client = if n % 2 == 0 {
                IpAddr::V4(Ipv4Addr::from(rng.next_u32()))
            } else {
                IpAddr::V6(Ipv6Addr::from(u128::from(rng.next_u64()) << 64))
            };
            let _ = fail(&mut th, now, &account, client);
            // Some guesses go at alice herself.
            let _ = fail(&mut th, now, "alice", client);
            let entries = th.entries();
            assert!(entries.accounts <= 64 && entries.addresses <= 48 && entries.pairs <= 80);
        }
        assert_all_consistent(&th);
        assert_eq!(
            th.accounts.slots.capacity(),
            64,
            "no allocation past the cap"
        );
        // Device trust is in the token: the flood did not take it away.
        let device = th.verify_device_token(wall(now), "alice", &token).unwrap();
        assert!(th.check(now, "alice", HOME, Some(&device)).is_ok());
        assert!(
            th.check(now, "alice", HOME, None).is_err(),
            "alice is under attack"
        );
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64_and_mapped_ipv4_as_ipv4() {
        let mut th = throttle();
        for n in 0..20 {
            let client = v6(&format!("2001:db8:1:2::{n:x}"));
            fail(&mut th, Duration::ZERO, &format!("user{n}"), client).unwrap();
        }
        let same_64 = v6("2001:db8:1:2:ffff:ffff:ffff:ffff");
        let refused = th
            .check(Duration::ZERO, "someone", same_64, None)
            .unwrap_err();
        assert_eq!(refused.limit(), Limit::Address);
        let next_64 = v6("2001:db8:1:3::1");
        assert!(th.check(Duration::ZERO, "someone", next_64, None).is_ok());

        for n in 0..20 {
            fail(&mut th, Duration::ZERO, &format!("user{n}"), HOME).unwrap();
        }
        let mapped = v6("::ffff:192.0.2.1");
        let refused = th
            .check(Duration::ZERO, "someone", mapped, None)
            .unwrap_err();
        assert_eq!(refused.limit(), Limit::Address);
        // IPv4 is counted per address, not per block.
        let neighbour = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));
        assert!(th.check(Duration::ZERO, "someone", neighbour, None).is_ok());
    }

    #[test]
    fn a_counter_quiet_for_a_day_is_forgotten() {
        // Twelve failures at alice, the last at 1100 s: a 4 s wait.
        let twelve_failures = || {
            let mut th = throttle();
            for n in 0..12 {
                fail(&mut th, secs(100 * u64::from(n)), "alice", stranger(n)).unwrap();
            }
            th
        };
        let last = secs(1100);
        let day = secs(24 * 3600);
        // 1 ns short of a quiet day: remembered, so the 13th failure
        // brings an 8 s wait.
        let mut th = twelve_failures();
        fail(&mut th, last + day - NS, "alice", HOME).unwrap();
        let refused = th.check(last + day - NS, "alice", HOME, None).unwrap_err();
        assert_eq!(refused.retry_after_secs(), 8);
        // A full quiet day: forgotten, and counting starts again at one.
        let mut th = twelve_failures();
        fail(&mut th, last + day, "alice", HOME).unwrap();
        assert_eq!(counts(&th, "alice", HOME), (1, 1, 1));
        // The quiet entries leave memory a few per call (these logins
        // leave nothing behind themselves).
        for n in 0..6 {
            succeed(
                &mut th,
                last + day,
                &format!("bob{n}"),
                stranger(100 + n),
                None,
            )
            .unwrap();
        }
        let entries = th.entries();
        assert_eq!(
            (entries.accounts, entries.addresses, entries.pairs),
            (1, 1, 1)
        );
        assert_all_consistent(&th);
    }

    #[test]
    fn a_counter_evicted_while_the_password_is_checked_is_charged_again() {
        let mut th = throttle_with(ThrottleConfig {
            pair_capacity: 1,
            ..ThrottleConfig::default()
        });
        let alice = th.check(Duration::ZERO, "alice", HOME, None).unwrap();
        // Another pair takes the only place while alice's password is
        // being verified.
        let bob = th.check(Duration::ZERO, "bob", stranger(1), None).unwrap();
        assert_eq!(counts(&th, "alice", HOME).2, 0);
        let _ = th.record_failure(Duration::ZERO, alice);
        assert_eq!(counts(&th, "alice", HOME), (1, 1, 1));
        th.record_success(Duration::ZERO, bob);
    }

    #[test]
    fn a_counter_is_not_forgotten_while_it_can_still_refuse() {
        // Even with forgetting set to zero, a wait runs to its end.
        let mut th = throttle_with(ThrottleConfig {
            forget_after: Duration::ZERO,
            ..ThrottleConfig::default()
        });
        let mut now = Duration::ZERO;
        for _ in 0..15 {
            let attempt = th.check(now, "alice", HOME, None).or_else(|refused| {
                now += refused.retry_after();
                th.check(now, "alice", HOME, None)
            });
            let _ = th.record_failure(now, attempt.unwrap());
        }
        let refused = th.check(now + secs(899), "alice", HOME, None).unwrap_err();
        assert_eq!(refused.retry_after_secs(), 1);
    }

    #[test]
    fn device_tokens_are_bound_to_their_account_key_and_lifetime() {
        let mut rng = TestRng::seeded(5);
        let key = [9u8; 32];
        let th: Th = Throttle::with_device_key(
            ThrottleConfig::default(),
            DeviceKey::from_bytes(key),
            &mut rng,
        );
        let issued = wall(Duration::ZERO);
        let token = th.issue_device_token(issued, "alice", &mut rng);
        assert_eq!(token.len(), DEVICE_TOKEN_CHARS);
        assert_ne!(token, th.issue_device_token(issued, "alice", &mut rng));
        assert!(th.verify_device_token(issued, "alice", &token).is_some());

        // Any changed character breaks it.
        for i in 0..token.len() {
            for c in ['A', 'g', '-', '_'] {
                let mut forged = token.clone().into_bytes();
                if forged[i] == c as u8 {
                    continue;
                }
                forged[i] = c as u8;
                let forged = String::from_utf8(forged).unwrap();
                assert!(th.verify_device_token(issued, "alice", &forged).is_none());
            }
        }
        for malformed in [
            "",
            "x",
            &token[1..],
            &format!("{token}A"),
            &format!("{token}="),
        ] {
            assert!(th.verify_device_token(issued, "alice", malformed).is_none());
        }
        assert!(th.verify_device_token(issued, "Alice", &token).is_none());

        // Valid until exactly its lifetime.
        let lifetime = ThrottleConfig::default().device_token_lifetime;
        assert!(th
            .verify_device_token(wall(lifetime - secs(1)), "alice", &token)
            .is_some());
        assert!(th
            .verify_device_token(wall(lifetime), "alice", &token)
            .is_none());

        // A server that keeps its key keeps its browsers; a new key does not.
        let restarted: Th = Throttle::with_device_key(
            ThrottleConfig::default(),
            DeviceKey::from_bytes(key),
            &mut rng,
        );
        assert!(restarted
            .verify_device_token(issued, "alice", &token)
            .is_some());
        let fresh: Th = Throttle::new(ThrottleConfig::default(), &mut rng);
        assert!(fresh.verify_device_token(issued, "alice", &token).is_none());
    }

    #[test]
    fn a_forgotten_browser_is_revoked() {
        let mut th = throttle();
        let token = th.issue_device_token(wall(Duration::ZERO), "alice", &mut TestRng::seeded(2));
        let device = th
            .verify_device_token(wall(Duration::ZERO), "alice", &token)
            .unwrap();
        th.revoke_device(Duration::ZERO, &device);
        assert!(th
            .verify_device_token(wall(Duration::ZERO), "alice", &token)
            .is_none());
        let attempt = th
            .check(Duration::ZERO, "alice", HOME, Some(&device))
            .unwrap();
        assert!(!attempt.is_trusted());
        th.record_success(Duration::ZERO, attempt);
    }

    #[test]
    fn the_revoked_set_is_bounded_and_drops_the_soonest_to_expire() {
        let mut th = throttle_with(ThrottleConfig {
            revoked_capacity: 3,
            ..ThrottleConfig::default()
        });
        let mut rng = TestRng::seeded(4);
        // Tokens issued a day apart expire a day apart.
        let devices: Vec<(String, TrustedDevice)> = (0..4)
            .map(|day| {
                let issued = wall(secs(day * 24 * 3600));
                let token = th.issue_device_token(issued, "alice", &mut rng);
                let device = th.verify_device_token(wall(secs(4 * 24 * 3600)), "alice", &token);
                (token, device.unwrap())
            })
            .collect();
        for (_, device) in &devices {
            th.revoke_device(Duration::ZERO, device);
        }
        assert_eq!(th.entries().revoked, 3);
        let still_valid: Vec<bool> = devices
            .iter()
            .map(|(token, _)| {
                th.verify_device_token(wall(secs(4 * 24 * 3600)), "alice", token)
                    .is_some()
            })
            .collect();
        assert_eq!(still_valid, [true, false, false, false]);
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let mut rng = TestRng::seeded(6);
        let th = throttle();
        let token = th.issue_device_token(wall(Duration::ZERO), "alice", &mut rng);
        let device = th
            .verify_device_token(wall(Duration::ZERO), "alice", &token)
            .unwrap();
        assert_eq!(format!("{device:?}"), "TrustedDevice { .. }");
        assert_eq!(
            format!("{:?}", DeviceKey::from_bytes([1; 32])),
            "DeviceKey(<redacted>)"
        );
        assert!(!format!("{th:?}").contains(&token));
    }

    // ----- cancelled attempts -----------------------------------------------

    /// An attempt the server could not queue: checked, then cancelled.
    fn cancelled(
        th: &mut Th,
        now: Duration,
        account: &str,
        client: IpAddr,
        device: Option<&TrustedDevice>,
    ) -> Result<(), Throttled> {
        let attempt = th.check(now, account, client, device)?;
        th.cancel(now, attempt);
        Ok(())
    }

    #[test]
    fn cancelled_attempts_never_build_up_a_delay() {
        // An overloaded server turns away fifty of alice's logins from home,
        // and a hundred and fifty more from strangers: no password was tried.
        let mut th = throttle();
        let mut now = Duration::ZERO;
        for n in 0..200 {
            let client = if n < 50 { HOME } else { stranger(n) };
            cancelled(&mut th, now, "alice", client, None).expect("never throttled");
            now += millis(10);
        }
        assert_eq!(counts(&th, "alice", HOME), (0, 0, 0));
        let entries = th.entries();
        assert_eq!(
            (entries.accounts, entries.addresses, entries.pairs),
            (0, 0, 0),
            "nothing is left behind, not even in the hourly cap"
        );
        // Her next real attempt goes through, and the schedule starts from
        // scratch: five free failures at home, then the pair's wait.
        for _ in 0..5 {
            fail(&mut th, now, "alice", HOME).expect("free failures");
        }
        let refused = th.check(now, "alice", HOME, None).unwrap_err();
        assert_eq!(
            (refused.limit(), refused.retry_after_secs()),
            (Limit::Pair, 1)
        );
        assert_all_consistent(&th);

        // The contrast: attempts dropped without a verdict stay charged, so
        // the same fifty at home would have locked her out after five.
        let mut th = throttle();
        let mut let_through = 0;
        for _ in 0..50 {
            if let Ok(attempt) = th.check(Duration::ZERO, "alice", HOME, None) {
                drop(attempt);
                let_through += 1;
            }
        }
        assert_eq!(let_through, 5);
    }

    #[test]
    fn a_cancel_takes_back_its_own_charge_and_forgives_no_real_failure() {
        let mut th = throttle();
        let t0 = secs(10);
        // Four real failures at home; one attempt in flight.
        for _ in 0..4 {
            fail(&mut th, t0, "alice", HOME).unwrap();
        }
        let in_flight = th.check(t0, "alice", HOME, None).unwrap();
        assert_eq!(counts(&th, "alice", HOME), (5, 5, 5));
        th.cancel(t0, in_flight);
        assert_eq!(counts(&th, "alice", HOME), (4, 4, 4), "only its own charge");
        // However many are cancelled now, the four stay.
        for _ in 0..20 {
            cancelled(&mut th, t0, "alice", HOME, None).unwrap();
        }
        assert_eq!(counts(&th, "alice", HOME), (4, 4, 4));

        // The fifth real failure locks the pair as it would have anyway.
        fail(&mut th, t0, "alice", HOME).unwrap();
        let refused = th.check(t0, "alice", HOME, None).unwrap_err();
        assert_eq!(
            (refused.limit(), refused.retry_after_secs()),
            (Limit::Pair, 1)
        );
        // A check once the wait is over, then cancelled: the five stay, so
        // the next real failure brings the doubled wait, not a fresh start.
        let later = t0 + secs(2);
        cancelled(&mut th, later, "alice", HOME, None).expect("the wait is over");
        assert_eq!(counts(&th, "alice", HOME), (5, 5, 5));
        fail(&mut th, later + secs(1), "alice", HOME).expect("open again");
        let refused = th.check(later + secs(1), "alice", HOME, None).unwrap_err();
        assert_eq!(
            (refused.limit(), refused.retry_after_secs()),
            (Limit::Pair, 2)
        );
        // The hourly cap holds the six real failures, and only those.
        let alice = th.hash(b"portcullis-acct", &[b"alice"]);
        let (state, _) = th.accounts.get(&alice, th.latest).unwrap();
        let counted: u32 = state.hour.counts.iter().map(|&c| u32::from(c)).sum();
        assert_eq!(counted, 6);
    }

    #[test]
    fn a_cancelled_attempt_does_not_restart_the_wait() {
        // Five failures at t0 lock the pair until t0 + 1 s. At t0 + 1 s an
        // attempt is allowed, but the server cannot queue it: taking it back
        // leaves the throttle as it was, open, rather than waiting another
        // second from the attempt that never tried a password.
        let mut th = throttle();
        let t0 = secs(10);
        for _ in 0..5 {
            fail(&mut th, t0, "alice", HOME).unwrap();
        }
        let opens = t0 + secs(1);
        cancelled(&mut th, opens, "alice", HOME, None).expect("the wait is over");
        assert!(
            th.check(opens, "alice", HOME, None).is_ok(),
            "the cancelled attempt re-armed the pair's wait"
        );
    }

    #[test]
    fn a_cancel_after_the_same_pairs_success_forgives_nothing_more() {
        // Alice has a login in flight when another of hers, from the same
        // address, succeeds: the success forgives her pair's failures, the
        // charge in flight included. Cancelling the first one afterwards
        // must not take a second failure off the shared counters: carol's
        // failures from that address stay.
        let mut th = throttle();
        let in_flight = th.check(Duration::ZERO, "alice", HOME, None).unwrap();
        for _ in 0..4 {
            fail(&mut th, Duration::ZERO, "carol", HOME).unwrap();
        }
        succeed(&mut th, Duration::ZERO, "alice", HOME, None).unwrap();
        assert_eq!(counts(&th, "carol", HOME), (4, 4, 4));
        th.cancel(Duration::ZERO, in_flight);
        assert_eq!(counts(&th, "carol", HOME), (4, 4, 4));
        assert_eq!(counts(&th, "alice", HOME), (0, 4, 0));
    }

    #[test]
    fn cancelled_trusted_attempts_are_refunded_to_their_device() {
        let mut th = throttle();
        let token = th.issue_device_token(wall(Duration::ZERO), "alice", &mut TestRng::seeded(8));
        let device = th
            .verify_device_token(wall(Duration::ZERO), "alice", &token)
            .unwrap();
        // Fifty of her browser's logins turned away: past the device's five
        // free failures and its ten that revoke, had they counted.
        for _ in 0..50 {
            let attempt = th
                .check(Duration::ZERO, "alice", HOME, Some(&device))
                .expect("never throttled");
            assert!(attempt.is_trusted());
            th.cancel(Duration::ZERO, attempt);
        }
        assert!(th
            .verify_device_token(wall(Duration::ZERO), "alice", &token)
            .is_some());
        assert_eq!(
            counts(&th, "alice", HOME),
            (0, 0, 0),
            "shared counters untouched"
        );
        // Her token still has all five free failures, then the device wait.
        for _ in 0..5 {
            let attempt = th
                .check(Duration::ZERO, "alice", HOME, Some(&device))
                .expect("free failures");
            assert!(attempt.is_trusted());
            assert_eq!(
                th.record_failure(Duration::ZERO, attempt),
                Recorded::Counted
            );
        }
        let refused = th
            .check(Duration::ZERO, "alice", HOME, Some(&device))
            .unwrap_err();
        assert_eq!(
            (refused.limit(), refused.retry_after_secs()),
            (Limit::Device, 1)
        );
        // A cancel does not forgive those five either.
        cancelled(&mut th, secs(1), "alice", HOME, Some(&device)).expect("the wait is over");
        let attempt = th.check(secs(2), "alice", HOME, Some(&device)).unwrap();
        let _ = th.record_failure(secs(2), attempt);
        let refused = th.check(secs(2), "alice", HOME, Some(&device)).unwrap_err();
        assert_eq!(
            (refused.limit(), refused.retry_after_secs()),
            (Limit::Device, 2)
        );
    }

    #[test]
    fn entries_are_compact() {
        // The module docs quote these sizes.
        assert_eq!(std::mem::size_of::<Slot<u32>>(), 40);
        assert_eq!(std::mem::size_of::<Slot<AccountState>>(), 56);
    }

    /// Milliseconds to seconds, rounded up: the model of Retry-After.
    fn ceil_secs(d: Duration) -> u64 {
        nanos(d).div_ceil(NANOS_PER_SEC)
    }

    proptest! {
        #[test]
        fn an_account_is_never_let_in_before_its_schedule_nor_kept_out_after(
            gaps in prop::collection::vec(0u64..1_500_000_000_000, 1..60),
        ) {
            // Attempts at one account, each from a new address, at random
            // nanosecond gaps: the account schedule alone decides, exactly.
            let backoff = ThrottleConfig::default().account;
            let mut th = throttle();
            let mut now = Duration::ZERO;
            let mut failures = 0;
            let mut last: Option<Duration> = None;
            for (n, gap) in (0..).zip(gaps) {
                now += Duration::from_nanos(gap);
                let opens = last.map_or(now, |last| last + backoff.delay(failures));
                match th.check(now, "alice", stranger(n), None) {
                    Ok(attempt) => {
                        prop_assert!(now >= opens);
                        let _ = th.record_failure(now, attempt);
                        failures += 1;
                        last = Some(now);
                    }
                    Err(refused) => {
                        prop_assert!(now < opens);
                        prop_assert_eq!(refused.limit(), Limit::Account);
                        prop_assert_eq!(refused.retry_after_secs(), ceil_secs(opens - now));
                    }
                }
            }
        }

        #[test]
        fn no_sixty_minutes_hold_more_failures_than_the_cap(
            cap in 1u8..12,
            gaps in prop::collection::vec(0u64..900_000_000_000, 1..80),
        ) {
            let mut th = throttle_with(ThrottleConfig {
                account: Backoff::off(),
                address: Backoff::off(),
                pair: Backoff::off(),
                account_hourly_cap: cap,
                ..ThrottleConfig::default()
            });
            let mut failed: Vec<Duration> = Vec::new();
            let mut now = Duration::ZERO;
            // Slots are counted from the first moment the throttle sees.
            let origin = Duration::from_nanos(gaps[0]);
            let slot = |t: Duration| nanos(t - origin) / HourRing::SLOT_NS;
            for (n, gap) in (0..).zip(gaps) {
                now += Duration::from_nanos(gap);
                // The model: a failure counts while its slot is at most
                // twelve slots old.
                let counted = failed.iter().filter(|&&f| slot(now) - slot(f) <= 12).count();
                match th.check(now, "alice", stranger(n), None) {
                    Ok(attempt) => {
                        prop_assert!(counted < usize::from(cap));
                        let _ = th.record_failure(now, attempt);
                        failed.push(now);
                    }
                    Err(refused) => {
                        prop_assert!(counted >= usize::from(cap));
                        prop_assert_eq!(refused.limit(), Limit::AccountHourlyCap);
                    }
                }
                let hour = secs(3600);
                let in_last_hour = failed.iter().filter(|&&f| now - f < hour).count();
                prop_assert!(in_last_hour <= usize::from(cap));
            }
        }

        #[test]
        fn memory_never_exceeds_the_capacities(
            ops in prop::collection::vec(
                (0u8..4, 0u16..40, 0u16..30, any::<bool>(), 0u64..4000),
                1..300,
            ),
        ) {
            let config = ThrottleConfig {
                account_capacity: 7,
                address_capacity: 5,
                pair_capacity: 9,
                device_capacity: 3,
                revoked_capacity: 2,
                device_max_failures: 3,
                forget_after: secs(3 * 3600),
                ..ThrottleConfig::default()
            };
            let mut th = throttle_with(config);
            let mut rng = TestRng::seeded(9);
            let mut tokens: BTreeMap<String, String> = BTreeMap::new();
            let mut now = Duration::ZERO;
            for (kind, account, address, with_token, gap) in ops {
                now += secs(gap);
                let account = format!("user{account}");
                let client = if address % 2 == 0 {
                    stranger(u32::from(address))
                } else {
                    IpAddr::V6(Ipv6Addr::from(u128::from(address) << 64))
                };
                let device = tokens
                    .get(&account)
                    .filter(|_| with_token)
                    .and_then(|token| th.verify_device_token(wall(now), &account, token));
                if let Ok(attempt) = th.check(now, &account, client, device.as_ref()) {
                    if kind == 0 {
                        th.record_success(now, attempt);
                        let token = th.issue_device_token(wall(now), &account, &mut rng);
                        tokens.insert(account, token);
                    } else if kind == 1 {
                        drop(attempt); // no verdict: stays charged
                    } else {
                        let _ = th.record_failure(now, attempt);
                    }
                }
                let entries = th.entries();
                prop_assert!(entries.accounts <= 7);
                prop_assert!(entries.addresses <= 5);
                prop_assert!(entries.pairs <= 9);
                prop_assert!(entries.devices <= 3);
                prop_assert!(entries.revoked <= 2);
                assert_all_consistent(&th);
            }
        }
    }
}
