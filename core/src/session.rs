//! The server-side session store.
//!
//! A session is what a successful login leaves behind: a [`SessionId`] in
//! the browser's cookie and, here, the user it belongs to, a payload (the
//! realm's avatar, the logout hook...) and two deadlines. The store keeps
//! only a keyed hash of each id, so a copy of its memory (a core dump, a
//! debugger) yields no cookie that works.
//!
//! ## Lifetime of a session
//!
//! [`SessionStore::create`] draws a fresh 256-bit id from the generator the
//! caller lends. The session then lives while **both** hold:
//!
//! - `now < last use + idle_timeout` (default 30 min; every successful
//!   [`SessionStore::lookup`] is a use), and
//! - `now < creation + absolute_timeout` (default 12 h; use does not extend it).
//!
//! At exactly a deadline it is dead. Time is the caller's monotonic clock
//! (any [`Moment`]: [`Instant`] in a server, a [`Duration`] since an
//! arbitrary origin in tests), kept to the nanosecond; a `now` earlier than
//! one the store has already seen counts as that one, so time never runs
//! backwards inside the store.
//!
//! A session ends by logout ([`SessionStore::end`]), for all of a user's
//! sessions at once ([`SessionStore::end_user`]: "log out everywhere", or the
//! user was removed or changed in the password file), by expiry (found dead
//! by `lookup`, or removed by [`SessionStore::sweep`]), or by eviction. Every
//! ending hands back an [`Ended`] with the user, the payload and an
//! [`EndReason`], so the caller can run the logout hook and log the event.
//! An ended id never works again: its hash is gone, and a new session drawing
//! the same 256 bits would be a 2^-256 coincidence.
//!
//! ## Capacity policy
//!
//! Memory is bounded by [`SessionConfig::capacity`] sessions in all and
//! [`SessionConfig::per_user_cap`] per user. When `create` would pass a
//! bound, it makes room first and returns what it removed:
//!
//! 1. If the user already has `per_user_cap` sessions, the user's **oldest**
//!    (by creation) ends: a user who logs in from one more browser loses the
//!    stalest one, never anyone else's.
//! 2. If the store still holds `capacity` sessions, one ends: a session that
//!    has already expired if there is one (reason [`EndReason::Idle`] or
//!    [`EndReason::Absolute`]), else the **least recently used** session of
//!    any user (reason [`EndReason::Evicted`]).
//!
//! Logins therefore always succeed; under a flood of logins (which needs
//! valid credentials) the idlest sessions go first.
//!
//! ## Work and memory
//!
//! Every operation is O(1) (amortised: the id index grows by doubling),
//! except that `create` finds the user in an ordered map (O(log users)) and
//! [`SessionStore::end_user`] is linear in that user's sessions (at most
//! `per_user_cap`). Hashing the id (keyed BLAKE2b, two compressions) is the
//! main cost of a lookup: about 1 µs on the development machine. Expired sessions are removed lazily by
//! `lookup` and in deadline order by `sweep`, which removes at most
//! [`SessionConfig::sweep_batch`] per call and looks at no other session
//! than the ones it removes and the two with the earliest deadlines.
//! [`SessionStore::next_deadline`] tells the caller when the next one falls
//! due.
//!
//! A session costs one entry of 76 bytes plus its payload, rounded up to a
//! multiple of 8 (80 bytes with no payload): the id hash, two deadlines,
//! three list links and a user number. Entries live in a dense vector that
//! grows by a quarter at a time and never past the capacity. The id index
//! adds 4-byte slots, at most half full (8 to 16 bytes per session at its
//! largest). A user name is stored once per user (about 100 bytes per user
//! with sessions), never per session. Measured with a counting allocator,
//! one million sessions of 20 000 users with a `()` payload take 91 bytes
//! per session in a store of capacity one million, 104 in a larger one
//! (vector slack); a `u64` payload adds 8 bytes. With the guard's real
//! payload (the avatar, here the user name as a `String`, and the logout
//! hook) it is 139 bytes asked of the allocator, about 162 bytes of the
//! server's memory with glibc's overhead (`cargo bench -p portcullis-core
//! --bench session_store`, and bench/compare.sh's B7).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use blake2::digest::consts::U32;
use blake2::digest::{KeyInit, Mac};
use blake2::Blake2bMac;
use rand_core::CryptoRng;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

use crate::random::random_array;

/// Bytes in a session id (256 bits).
pub const SESSION_ID_BYTES: usize = 32;

/// Characters in a session id's cookie form (base64url without padding).
pub const SESSION_COOKIE_CHARS: usize = 43;

/// A session id: 256 bits from the caller's CSPRNG, handed to the browser
/// once (in the cookie) and never kept by the store.
///
/// Its `Debug` output is redacted, it has no `Display`, and it compares in
/// constant time. Its bytes are wiped when it is dropped.
#[derive(Clone)]
pub struct SessionId([u8; SESSION_ID_BYTES]);

impl SessionId {
    /// The cookie value: base64url without padding, 43 characters.
    #[must_use]
    pub fn to_cookie(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    /// The id in a cookie value: exactly 43 characters of the base64url
    /// alphabet, without padding, in the one canonical encoding (the two
    /// spare bits of the last character are zero). Anything else is `None`,
    /// so a cookie has a single spelling and a malformed one is refused
    /// before it reaches the store.
    #[must_use]
    pub fn from_cookie(value: &str) -> Option<SessionId> {
        if value.len() != SESSION_COOKIE_CHARS {
            return None;
        }
        let mut bytes = [0u8; SESSION_ID_BYTES];
        // The default decoder refuses padding, other alphabets and
        // non-zero trailing bits.
        match URL_SAFE_NO_PAD.decode_slice(value, &mut bytes) {
            Ok(SESSION_ID_BYTES) => Some(SessionId(bytes)),
            _ => None,
        }
    }

    fn random(rng: &mut dyn CryptoRng) -> SessionId {
        SessionId(random_array(rng))
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The id is a bearer credential: never in a log.
        f.write_str("SessionId(<redacted>)")
    }
}

impl PartialEq for SessionId {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for SessionId {}

impl Drop for SessionId {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// A reading of the caller's monotonic clock. The store measures
/// everything from the first moment it is given, to the nanosecond.
///
/// Implemented for [`Instant`] (servers) and for [`Duration`], read as the
/// time since an arbitrary origin (tests and simulations, where an
/// `Instant` cannot be made without reading the real clock).
pub trait Moment: Copy {
    /// How long after `earlier` this moment is; zero if it is not after.
    fn since(self, earlier: Self) -> Duration;
    /// This moment `d` later, or `None` if the clock cannot represent it.
    fn checked_after(self, d: Duration) -> Option<Self>;
}

impl Moment for Instant {
    fn since(self, earlier: Self) -> Duration {
        self.saturating_duration_since(earlier)
    }

    fn checked_after(self, d: Duration) -> Option<Self> {
        self.checked_add(d)
    }
}

impl Moment for Duration {
    fn since(self, earlier: Self) -> Duration {
        self.saturating_sub(earlier)
    }

    fn checked_after(self, d: Duration) -> Option<Self> {
        self.checked_add(d)
    }
}

/// The store's bounds and timeouts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionConfig {
    /// A session unused this long is dead. Default 30 minutes.
    pub idle_timeout: Duration,
    /// A session this old is dead however much it is used. Default 12 hours.
    pub absolute_timeout: Duration,
    /// Most sessions in the store (see the capacity policy in the module
    /// docs). Default 100 000; at least 1, at most `u32::MAX - 1`.
    pub capacity: usize,
    /// Most sessions of one user; a new one ends the user's oldest.
    /// Default 64; at least 1.
    pub per_user_cap: usize,
    /// Most sessions one [`SessionStore::sweep`] call removes. Default 64;
    /// at least 1.
    pub sweep_batch: usize,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            idle_timeout: Duration::from_secs(30 * 60),
            absolute_timeout: Duration::from_secs(12 * 60 * 60),
            capacity: 100_000,
            per_user_cap: 64,
            sweep_batch: 64,
        }
    }
}

/// Why a session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndReason {
    /// The user logged out ([`SessionStore::end`]).
    Logout,
    /// Unused for `idle_timeout`.
    Idle,
    /// Older than `absolute_timeout`. (When both deadlines have passed, the
    /// reason is the one that passed first; a tie counts as absolute.)
    Absolute,
    /// Removed to make room for a new session (capacity policy).
    Evicted,
    /// Ended with all of its user's sessions ([`SessionStore::end_user`]):
    /// "log out everywhere", or the user changed in the password file.
    UserEnded,
}

/// A session that has just ended, handed back so the caller can run its
/// logout hook and log the event. It carries no id.
#[derive(Debug, PartialEq, Eq)]
pub struct Ended<T> {
    /// The user the session belonged to.
    pub user: String,
    /// The payload given to [`SessionStore::create`].
    pub payload: T,
    /// Why it ended.
    pub reason: EndReason,
}

/// The answer of [`SessionStore::lookup`].
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup<'a, T> {
    /// The session is alive; this use pushed its idle deadline back.
    Live {
        /// The user it belongs to.
        user: &'a str,
        /// Its payload.
        payload: &'a mut T,
    },
    /// The session had expired and is now removed (reason `Idle` or
    /// `Absolute`). The id will be `Unknown` from now on.
    Ended(Ended<T>),
    /// No such session: never issued, ended, or forged.
    Unknown,
}

/// "No entry": the end of a list, an empty index slot.
const NIL: u32 = u32::MAX;

#[derive(Clone, Copy)]
struct Link {
    prev: u32,
    next: u32,
}

const UNLINKED: Link = Link {
    prev: NIL,
    next: NIL,
};

#[derive(Clone, Copy)]
struct Ends {
    head: u32,
    tail: u32,
}

const EMPTY: Ends = Ends {
    head: NIL,
    tail: NIL,
};

/// The three doubly linked lists threaded through the entries. Each is
/// sorted by construction, which is what makes expiry and eviction O(1).
#[derive(Clone, Copy)]
enum List {
    /// All sessions, least recently used first: sorted by idle deadline.
    Lru,
    /// All sessions, oldest first: sorted by absolute deadline.
    Age,
    /// One user's sessions, oldest first.
    Peers,
}

const LISTS: [List; 3] = [List::Lru, List::Age, List::Peers];

/// One session. Deadlines are nanoseconds since the store's epoch.
struct Entry<T> {
    hash: [u8; 32],
    idle_deadline: u64,
    absolute_deadline: u64,
    lru: Link,
    age: Link,
    peers: Link,
    user: u32,
    payload: T,
}

impl<T> Entry<T> {
    fn link(&self, list: List) -> Link {
        match list {
            List::Lru => self.lru,
            List::Age => self.age,
            List::Peers => self.peers,
        }
    }

    fn link_mut(&mut self, list: List) -> &mut Link {
        match list {
            List::Lru => &mut self.lru,
            List::Age => &mut self.age,
            List::Peers => &mut self.peers,
        }
    }

    /// Why the session is dead at `tick`, or `None` while it lives.
    fn expiry(&self, tick: u64) -> Option<EndReason> {
        if tick < self.idle_deadline.min(self.absolute_deadline) {
            None
        } else if self.absolute_deadline <= self.idle_deadline {
            Some(EndReason::Absolute)
        } else {
            Some(EndReason::Idle)
        }
    }
}

/// A user with sessions. `name` is `None` on the free list.
struct UserRecord {
    name: Option<Arc<str>>,
    peers: Ends,
    count: u32,
}

/// The session store: see the module docs. `T` is the per-session payload;
/// `M` the caller's clock ([`Instant`] unless said otherwise).
pub struct SessionStore<T, M = Instant> {
    config: SessionConfig,
    idle_ns: u64,
    absolute_ns: u64,
    /// The id hash (BLAKE2b-256 keyed with a key drawn at construction),
    /// with its key block already compressed: see [`keyed_hasher`].
    hasher: Blake2bMac<U32>,
    /// The sessions, dense: removal moves the last entry into the hole.
    entries: Vec<Entry<T>>,
    /// Open addressing (linear probing) from id hash to entry number; its
    /// length is zero or a power of two, and it is at most half full.
    index: Vec<u32>,
    lru: Ends,
    age: Ends,
    users: Vec<UserRecord>,
    free_users: Vec<u32>,
    user_numbers: BTreeMap<Arc<str>, u32>,
    /// The first moment the store was given; ticks count from it.
    epoch: Option<M>,
    /// The latest tick seen: the store's time never runs backwards.
    clock: u64,
}

impl<T, M> fmt::Debug for SessionStore<T, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Counts only: no hash, key or user name.
        f.debug_struct("SessionStore")
            .field("sessions", &self.entries.len())
            .field("users", &self.user_numbers.len())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// A BLAKE2b-256 MAC under `key` that has taken one domain byte. Keyed
/// BLAKE2b spends a whole compression on the key block, but only once the
/// next byte arrives (the last block is compressed differently); with that
/// byte given here, every id hash clones this state and pays the one
/// compression of its own block: half the cost on every request.
fn keyed_hasher(key: &[u8; 32]) -> Blake2bMac<U32> {
    let mut mac = <Blake2bMac<U32> as KeyInit>::new_from_slice(key)
        .expect("BLAKE2b takes keys up to 64 bytes");
    mac.update(b"S");
    mac
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl<T, M: Moment> SessionStore<T, M> {
    /// An empty store. The id-hash key comes from `rng`. Bounds below their
    /// minimum (see [`SessionConfig`]) are raised to it.
    pub fn new(config: SessionConfig, rng: &mut dyn CryptoRng) -> Self {
        let config = SessionConfig {
            capacity: config.capacity.clamp(1, (NIL - 1) as usize),
            per_user_cap: config.per_user_cap.max(1),
            sweep_batch: config.sweep_batch.max(1),
            ..config
        };
        SessionStore {
            idle_ns: nanos(config.idle_timeout),
            absolute_ns: nanos(config.absolute_timeout),
            config,
            hasher: keyed_hasher(&Zeroizing::new(random_array(rng))),
            entries: Vec::new(),
            index: Vec::new(),
            lru: EMPTY,
            age: EMPTY,
            users: Vec::new(),
            free_users: Vec::new(),
            user_numbers: BTreeMap::new(),
            epoch: None,
            clock: 0,
        }
    }

    /// The configuration in force (after the minimums).
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// Sessions in the store, including expired ones not yet removed.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the store holds no session.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Sessions of `user` in the store (expired ones included until removed).
    pub fn user_sessions(&self, user: &str) -> usize {
        self.user_numbers
            .get(user)
            .map_or(0, |&u| self.users[u as usize].count as usize)
    }

    /// A new session for `user`: a fresh id (never one the client chose)
    /// and the sessions removed to make room for it (see the capacity
    /// policy in the module docs; usually none).
    ///
    /// # Panics
    ///
    /// If `rng` gives, four times running, the id of a session already in
    /// the store: a generator that repeats 256-bit values is broken, and
    /// handing one user another's session would be worse than stopping.
    #[must_use]
    pub fn create(
        &mut self,
        now: M,
        user: &str,
        payload: T,
        rng: &mut dyn CryptoRng,
    ) -> (SessionId, Vec<Ended<T>>) {
        let tick = self.tick(now);
        let mut ended = Vec::new();
        if let Some(&u) = self.user_numbers.get(user) {
            while self.users[u as usize].count as usize >= self.config.per_user_cap {
                let oldest = self.users[u as usize].peers.head;
                let reason = self.entries[oldest as usize]
                    .expiry(tick)
                    .unwrap_or(EndReason::Evicted);
                ended.push(self.remove(oldest, reason));
            }
        }
        while self.entries.len() >= self.config.capacity {
            let (victim, reason) = self.victim(tick);
            ended.push(self.remove(victim, reason));
        }
        let (id, hash) = self.fresh_id(rng);
        let user = self.user_number(user);
        let number = self.entries.len() as u32;
        self.reserve_one();
        self.entries.push(Entry {
            hash,
            idle_deadline: tick.saturating_add(self.idle_ns),
            absolute_deadline: tick.saturating_add(self.absolute_ns),
            lru: UNLINKED,
            age: UNLINKED,
            peers: UNLINKED,
            user,
            payload,
        });
        for list in LISTS {
            self.push_back(number, list);
        }
        self.users[user as usize].count += 1;
        self.index_insert(number);
        (id, ended)
    }

    /// The session of `id` at `now`. A live session's idle deadline moves
    /// to `now + idle_timeout`; an expired one is removed and returned.
    #[must_use]
    pub fn lookup(&mut self, now: M, id: &SessionId) -> Lookup<'_, T> {
        let tick = self.tick(now);
        let Some((_, number)) = self.find(&self.hash(id)) else {
            return Lookup::Unknown;
        };
        if let Some(reason) = self.entries[number as usize].expiry(tick) {
            return Lookup::Ended(self.remove(number, reason));
        }
        self.entries[number as usize].idle_deadline = tick.saturating_add(self.idle_ns);
        self.unlink(number, List::Lru);
        self.push_back(number, List::Lru);
        let entry = &mut self.entries[number as usize];
        let name = self.users[entry.user as usize].name.as_deref();
        Lookup::Live {
            user: name.unwrap_or_default(),
            payload: &mut entry.payload,
        }
    }

    /// The user and payload of `id` if it is alive at `now`, without
    /// counting this as a use and without removing it if expired.
    pub fn peek(&self, now: M, id: &SessionId) -> Option<(&str, &T)> {
        let tick = self.clock.max(nanos(now.since(self.epoch?)));
        let (_, number) = self.find(&self.hash(id))?;
        let entry = &self.entries[number as usize];
        if entry.expiry(tick).is_some() {
            return None;
        }
        let name = self.users[entry.user as usize].name.as_deref();
        Some((name.unwrap_or_default(), &entry.payload))
    }

    /// Ends the session of `id` (logout): `None` if there was none. The id
    /// never works again.
    #[must_use]
    pub fn end(&mut self, id: &SessionId) -> Option<Ended<T>> {
        let (_, number) = self.find(&self.hash(id))?;
        Some(self.remove(number, EndReason::Logout))
    }

    /// Ends every session of `user`, oldest first, with `reason` (usually
    /// [`EndReason::UserEnded`]).
    #[must_use]
    pub fn end_user(&mut self, user: &str, reason: EndReason) -> Vec<Ended<T>> {
        let mut ended = Vec::new();
        if let Some(&u) = self.user_numbers.get(user) {
            ended.reserve(self.users[u as usize].count as usize);
            // The record is freed with the last session, so count down.
            for _ in 0..self.users[u as usize].count {
                let oldest = self.users[u as usize].peers.head;
                ended.push(self.remove(oldest, reason));
            }
        }
        ended
    }

    /// Removes sessions that have expired at `now`, earliest deadline
    /// first, at most `sweep_batch` of them. Call it when
    /// [`SessionStore::next_deadline`] passes (or on a timer); a result of
    /// `sweep_batch` sessions means more may be waiting.
    #[must_use]
    pub fn sweep(&mut self, now: M) -> Vec<Ended<T>> {
        let tick = self.tick(now);
        let mut ended = Vec::new();
        while ended.len() < self.config.sweep_batch {
            let Some(number) = self.earliest() else { break };
            let Some(reason) = self.entries[number as usize].expiry(tick) else {
                break;
            };
            ended.push(self.remove(number, reason));
        }
        ended
    }

    /// When the next session falls due (the earliest idle or absolute
    /// deadline), or `None` when the store is empty (or that moment is
    /// beyond what `M` can represent).
    pub fn next_deadline(&self) -> Option<M> {
        let number = self.earliest()?;
        let entry = &self.entries[number as usize];
        let due = entry.idle_deadline.min(entry.absolute_deadline);
        self.epoch?.checked_after(Duration::from_nanos(due))
    }

    /// `now` as ticks since the epoch (set by the first call), never
    /// earlier than a tick already seen.
    fn tick(&mut self, now: M) -> u64 {
        let epoch = *self.epoch.get_or_insert(now);
        self.clock = self.clock.max(nanos(now.since(epoch)));
        self.clock
    }

    fn hash(&self, id: &SessionId) -> [u8; 32] {
        let mut mac = self.hasher.clone();
        mac.update(&id.0);
        mac.finalize().into_bytes().into()
    }

    fn fresh_id(&self, rng: &mut dyn CryptoRng) -> (SessionId, [u8; 32]) {
        for _ in 0..4 {
            let id = SessionId::random(rng);
            let hash = self.hash(&id);
            if self.find(&hash).is_none() {
                return (id, hash);
            }
        }
        panic!("the session generator keeps repeating ids: it is not a CSPRNG");
    }

    /// The session to remove when the store is full: an expired one if
    /// any (the earliest deadline), else the least recently used.
    fn victim(&self, tick: u64) -> (u32, EndReason) {
        if let Some(number) = self.earliest() {
            if let Some(reason) = self.entries[number as usize].expiry(tick) {
                return (number, reason);
            }
        }
        (self.lru.head, EndReason::Evicted)
    }

    /// The session with the earliest deadline: the head of the LRU list
    /// (earliest idle deadline) or of the age list (earliest absolute one).
    fn earliest(&self) -> Option<u32> {
        let (lru, age) = (self.lru.head, self.age.head);
        if lru == NIL {
            return None;
        }
        let idle = self.entries[lru as usize].idle_deadline;
        let absolute = self.entries[age as usize].absolute_deadline;
        Some(if absolute <= idle { age } else { lru })
    }

    /// Room for one more entry. The vector grows by a quarter (not the
    /// doubling of `push`) and never past the capacity, so at most a fifth
    /// of it is slack: entries are most of the store's memory.
    fn reserve_one(&mut self) {
        let len = self.entries.len();
        if len == self.entries.capacity() {
            let room = self.config.capacity.saturating_sub(len);
            self.entries
                .reserve_exact((len / 4).max(16).min(room).max(1));
        }
    }

    /// The number of `user`, creating its record if needed.
    fn user_number(&mut self, user: &str) -> u32 {
        if let Some(&u) = self.user_numbers.get(user) {
            return u;
        }
        let name: Arc<str> = Arc::from(user);
        let record = UserRecord {
            name: Some(Arc::clone(&name)),
            peers: EMPTY,
            count: 0,
        };
        let u = match self.free_users.pop() {
            Some(u) => {
                self.users[u as usize] = record;
                u
            }
            None => {
                self.users.push(record);
                (self.users.len() - 1) as u32
            }
        };
        self.user_numbers.insert(name, u);
        u
    }

    /// Takes session `number` out of every structure. The last entry moves
    /// into its place, and whatever pointed at the last entry is updated.
    fn remove(&mut self, number: u32, reason: EndReason) -> Ended<T> {
        let bucket = self.bucket_of(number);
        self.index_remove(bucket);
        for list in LISTS {
            self.unlink(number, list);
        }
        let u = self.entries[number as usize].user as usize;
        let record = &mut self.users[u];
        record.count -= 1;
        let name = if record.count == 0 {
            let name = record.name.take().unwrap_or_default();
            self.user_numbers.remove(&name);
            self.free_users.push(u as u32);
            name
        } else {
            record.name.clone().unwrap_or_default()
        };
        let last = (self.entries.len() - 1) as u32;
        let entry = self.entries.swap_remove(number as usize);
        if number != last {
            self.renumber(last, number);
        }
        Ended {
            user: name.to_string(),
            payload: entry.payload,
            reason,
        }
    }

    /// The entry that was number `from` is now number `to`: fix its
    /// neighbours, the list ends and its index slot.
    fn renumber(&mut self, from: u32, to: u32) {
        for list in LISTS {
            let Link { prev, next } = self.entries[to as usize].link(list);
            match prev {
                NIL => self.ends_mut(to, list).head = to,
                prev => self.entries[prev as usize].link_mut(list).next = to,
            }
            match next {
                NIL => self.ends_mut(to, list).tail = to,
                next => self.entries[next as usize].link_mut(list).prev = to,
            }
        }
        let mask = self.index.len() - 1;
        let mut bucket = self.home(&self.entries[to as usize].hash);
        while self.index[bucket] != from {
            bucket = (bucket + 1) & mask;
        }
        self.index[bucket] = to;
    }

    /// The ends of `list` as seen from session `number`.
    fn ends_mut(&mut self, number: u32, list: List) -> &mut Ends {
        match list {
            List::Lru => &mut self.lru,
            List::Age => &mut self.age,
            List::Peers => {
                let u = self.entries[number as usize].user;
                &mut self.users[u as usize].peers
            }
        }
    }

    fn push_back(&mut self, number: u32, list: List) {
        let tail = self.ends_mut(number, list).tail;
        *self.entries[number as usize].link_mut(list) = Link {
            prev: tail,
            next: NIL,
        };
        match tail {
            NIL => self.ends_mut(number, list).head = number,
            tail => self.entries[tail as usize].link_mut(list).next = number,
        }
        self.ends_mut(number, list).tail = number;
    }

    fn unlink(&mut self, number: u32, list: List) {
        let Link { prev, next } = self.entries[number as usize].link(list);
        match prev {
            NIL => self.ends_mut(number, list).head = next,
            prev => self.entries[prev as usize].link_mut(list).next = next,
        }
        match next {
            NIL => self.ends_mut(number, list).tail = prev,
            next => self.entries[next as usize].link_mut(list).prev = prev,
        }
        *self.entries[number as usize].link_mut(list) = UNLINKED;
    }

    // The index. The hashes are keyed BLAKE2b outputs, uniform and unknown
    // to clients, so their first bytes are a fine slot number: no client
    // can aim many ids at one slot.

    fn home(&self, hash: &[u8; 32]) -> usize {
        let mut first = [0u8; 8];
        first.copy_from_slice(&hash[..8]);
        (u64::from_le_bytes(first) as usize) & (self.index.len() - 1)
    }

    /// The slot and number of the session whose id hashes to `hash`.
    fn find(&self, hash: &[u8; 32]) -> Option<(usize, u32)> {
        if self.index.is_empty() {
            return None;
        }
        let mask = self.index.len() - 1;
        let mut bucket = self.home(hash);
        // Ends: the index is at most half full, so an empty slot comes.
        loop {
            match self.index[bucket] {
                NIL => return None,
                number if self.entries[number as usize].hash == *hash => {
                    return Some((bucket, number))
                }
                _ => bucket = (bucket + 1) & mask,
            }
        }
    }

    fn bucket_of(&self, number: u32) -> usize {
        let mask = self.index.len() - 1;
        let mut bucket = self.home(&self.entries[number as usize].hash);
        while self.index[bucket] != number {
            bucket = (bucket + 1) & mask;
        }
        bucket
    }

    /// Indexes entry `number` (already pushed), growing the index first
    /// if it would pass half full.
    fn index_insert(&mut self, number: u32) {
        if self.entries.len() * 2 > self.index.len() {
            let slots = (self.entries.len() * 2).next_power_of_two().max(16);
            self.index = vec![NIL; slots];
            for n in 0..self.entries.len() as u32 {
                self.place(n);
            }
        } else {
            self.place(number);
        }
    }

    fn place(&mut self, number: u32) {
        let mask = self.index.len() - 1;
        let mut bucket = self.home(&self.entries[number as usize].hash);
        while self.index[bucket] != NIL {
            bucket = (bucket + 1) & mask;
        }
        self.index[bucket] = number;
    }

    /// Empties `bucket` and shifts later members of its probe run back, so
    /// that every entry stays reachable from its home slot without
    /// tombstones.
    fn index_remove(&mut self, bucket: usize) {
        let mask = self.index.len() - 1;
        let mut hole = bucket;
        let mut next = (bucket + 1) & mask;
        self.index[hole] = NIL;
        loop {
            let number = self.index[next];
            if number == NIL {
                return;
            }
            let home = self.home(&self.entries[number as usize].hash);
            // It may fill the hole if its home is not after the hole in
            // probe order (cyclically, within hole+1 ..= next).
            if next.wrapping_sub(home) & mask >= next.wrapping_sub(hole) & mask {
                self.index[hole] = number;
                self.index[next] = NIL;
                hole = next;
            }
            next = (next + 1) & mask;
        }
    }
}

#[cfg(test)]
impl<T, M: Moment> SessionStore<T, M> {
    /// Panics unless every structure agrees with the entries: each entry
    /// is findable by its hash, each list links every entry it should, in
    /// deadline order, and the user records count right.
    fn check_invariants(&self) {
        let n = self.entries.len();
        assert_eq!(self.index.iter().filter(|&&s| s != NIL).count(), n);
        for (number, entry) in self.entries.iter().enumerate() {
            assert_eq!(self.find(&entry.hash).map(|(_, e)| e), Some(number as u32));
        }
        let walk = |ends: Ends, list: List| {
            let mut seen = Vec::new();
            let mut prev = NIL;
            let mut at = ends.head;
            while at != NIL {
                let link = self.entries[at as usize].link(list);
                assert_eq!(link.prev, prev);
                seen.push(at);
                prev = at;
                at = link.next;
            }
            assert_eq!(ends.tail, prev);
            seen
        };
        let lru = walk(self.lru, List::Lru);
        let age = walk(self.age, List::Age);
        assert_eq!((lru.len(), age.len()), (n, n));
        let idle: Vec<u64> = lru
            .iter()
            .map(|&e| self.entries[e as usize].idle_deadline)
            .collect();
        assert!(idle.is_sorted());
        let absolute: Vec<u64> = age
            .iter()
            .map(|&e| self.entries[e as usize].absolute_deadline)
            .collect();
        assert!(absolute.is_sorted());
        let mut total = 0;
        for (name, &u) in &self.user_numbers {
            let record = &self.users[u as usize];
            assert_eq!(record.name.as_deref(), Some(&**name));
            let peers = walk(record.peers, List::Peers);
            assert_eq!(peers.len(), record.count as usize);
            assert!(peers.iter().all(|&e| self.entries[e as usize].user == u));
            total += peers.len();
        }
        assert_eq!(total, n);
        assert_eq!(
            self.user_numbers.len() + self.free_users.len(),
            self.users.len()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::TestRng;
    use proptest::prelude::*;

    /// Virtual time in these stories: a `Duration` since an arbitrary origin.
    type Store = SessionStore<u32, Duration>;

    const NS: Duration = Duration::from_nanos(1);

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn minutes(m: u64) -> Duration {
        Duration::from_secs(m * 60)
    }

    /// The moment stories start at (not zero, so no arithmetic hides at 0).
    const T0: Duration = Duration::from_secs(1_000);

    fn store(config: SessionConfig) -> (Store, TestRng) {
        let mut rng = TestRng::seeded(4);
        (Store::new(config, &mut rng), rng)
    }

    fn is_live(store: &mut Store, now: Duration, id: &SessionId) -> bool {
        matches!(store.lookup(now, id), Lookup::Live { .. })
    }

    #[test]
    fn a_created_session_is_found_with_its_user_and_payload() {
        let (mut store, mut rng) = store(SessionConfig::default());
        let (id, evicted) = store.create(T0, "alice", 7, &mut rng);
        assert!(evicted.is_empty());
        assert_eq!(store.len(), 1);

        // The browser sends the cookie back; the store knows it.
        let cookie = id.to_cookie();
        assert_eq!(cookie.len(), SESSION_COOKIE_CHARS);
        let presented = SessionId::from_cookie(&cookie).expect("own cookie parses");
        match store.lookup(T0 + secs(1), &presented) {
            Lookup::Live { user, payload } => {
                assert_eq!(user, "alice");
                // The payload is the caller's to update.
                *payload += 1;
            }
            other => panic!("expected live, got {other:?}"),
        }
        assert_eq!(store.peek(T0 + secs(2), &presented), Some(("alice", &8)));
    }

    #[test]
    fn idle_expiry_falls_exactly_at_the_deadline() {
        let (mut store, mut rng) = store(SessionConfig::default());
        let (id, _) = store.create(T0, "alice", 0, &mut rng);
        let deadline = T0 + minutes(30);
        assert_eq!(store.next_deadline(), Some(deadline));

        // One nanosecond before: still alive (peek does not count as use).
        assert_eq!(store.peek(deadline - NS, &id), Some(("alice", &0)));
        // At the deadline: dead, removed, and reported as idle.
        match store.lookup(deadline, &id) {
            Lookup::Ended(ended) => {
                assert_eq!(ended.reason, EndReason::Idle);
                assert_eq!(ended.user, "alice");
            }
            other => panic!("expected idle expiry, got {other:?}"),
        }
        assert!(store.is_empty());
        assert_eq!(store.lookup(deadline, &id), Lookup::Unknown);
    }

    #[test]
    fn each_use_pushes_the_idle_deadline_back() {
        let (mut store, mut rng) = store(SessionConfig::default());
        let (id, _) = store.create(T0, "alice", 0, &mut rng);
        // Used one nanosecond before each deadline, it keeps living.
        let mut last_use = T0;
        for _ in 0..5 {
            last_use += minutes(30) - NS;
            assert!(is_live(&mut store, last_use, &id));
            assert_eq!(store.next_deadline(), Some(last_use + minutes(30)));
        }
        // Left alone for exactly the idle timeout after the last use, it dies.
        assert!(store.peek(last_use + minutes(30) - NS, &id).is_some());
        assert!(!is_live(&mut store, last_use + minutes(30), &id));
    }

    #[test]
    fn the_absolute_timeout_ends_a_session_however_busy() {
        let (mut store, mut rng) = store(SessionConfig::default());
        let (id, _) = store.create(T0, "alice", 0, &mut rng);
        let absolute = T0 + Duration::from_secs(12 * 3600);
        // Used every 10 minutes for 12 hours...
        let mut now = T0;
        while now + minutes(10) < absolute {
            now += minutes(10);
            assert!(is_live(&mut store, now, &id));
        }
        assert!(is_live(&mut store, absolute - NS, &id));
        // ...it still ends at 12 h exactly, for the absolute reason.
        match store.lookup(absolute, &id) {
            Lookup::Ended(ended) => assert_eq!(ended.reason, EndReason::Absolute),
            other => panic!("expected absolute expiry, got {other:?}"),
        }
    }

    #[test]
    fn when_both_deadlines_fall_together_the_reason_is_absolute() {
        let config = SessionConfig {
            idle_timeout: secs(10),
            absolute_timeout: secs(20),
            ..SessionConfig::default()
        };
        let (mut store, mut rng) = store(config);
        let (id, _) = store.create(T0, "alice", 0, &mut rng);
        // Used at T0+10 s: idle deadline T0+20 s, the absolute one too.
        assert!(is_live(&mut store, T0 + secs(9), &id));
        assert!(is_live(&mut store, T0 + secs(10), &id));
        match store.lookup(T0 + secs(20), &id) {
            Lookup::Ended(ended) => assert_eq!(ended.reason, EndReason::Absolute),
            other => panic!("expected absolute expiry, got {other:?}"),
        }
    }

    #[test]
    fn a_logged_out_id_is_dead_forever() {
        let (mut store, mut rng) = store(SessionConfig::default());
        let (id, _) = store.create(T0, "alice", 3, &mut rng);
        let ended = store.end(&id).expect("the session existed");
        assert_eq!(
            ended,
            Ended {
                user: "alice".into(),
                payload: 3,
                reason: EndReason::Logout
            }
        );
        // Neither at once nor later, nor after the user logs in again.
        assert_eq!(store.lookup(T0, &id), Lookup::Unknown);
        let (fresh, _) = store.create(T0 + secs(1), "alice", 4, &mut rng);
        assert_ne!(fresh, id);
        assert_eq!(store.lookup(T0 + secs(2), &id), Lookup::Unknown);
        assert!(store.end(&id).is_none());
        assert!(is_live(&mut store, T0 + secs(2), &fresh));
    }

    #[test]
    fn ending_a_user_ends_all_and_only_their_sessions() {
        let (mut store, mut rng) = store(SessionConfig::default());
        let (a1, _) = store.create(T0, "alice", 1, &mut rng);
        let (b1, _) = store.create(T0, "bob", 2, &mut rng);
        let (a2, _) = store.create(T0 + secs(1), "alice", 3, &mut rng);
        let (b2, _) = store.create(T0 + secs(1), "bob", 4, &mut rng);
        assert_eq!(store.user_sessions("alice"), 2);

        // Alice was removed from the password file.
        let ended = store.end_user("alice", EndReason::UserEnded);
        let payloads: Vec<u32> = ended.iter().map(|e| e.payload).collect();
        assert_eq!(payloads, [1, 3], "alice's sessions, oldest first");
        assert!(ended
            .iter()
            .all(|e| e.user == "alice" && e.reason == EndReason::UserEnded));

        let now = T0 + secs(2);
        assert!(!is_live(&mut store, now, &a1));
        assert!(!is_live(&mut store, now, &a2));
        assert!(is_live(&mut store, now, &b1));
        assert!(is_live(&mut store, now, &b2));
        assert_eq!(store.user_sessions("alice"), 0);
        assert_eq!(store.len(), 2);
        // A user without sessions: nothing to end.
        assert!(store.end_user("carol", EndReason::UserEnded).is_empty());
    }

    #[test]
    fn a_user_over_their_cap_loses_their_oldest_session() {
        let config = SessionConfig {
            per_user_cap: 3,
            ..SessionConfig::default()
        };
        let (mut store, mut rng) = store(config);
        let (bob, _) = store.create(T0, "bob", 100, &mut rng);
        let mut ids = Vec::new();
        for i in 0..3 {
            let (id, evicted) = store.create(T0 + secs(i), "alice", i as u32, &mut rng);
            assert!(evicted.is_empty());
            ids.push(id);
        }
        // Using the oldest does not save it: the cap goes by creation.
        assert!(is_live(&mut store, T0 + secs(5), &ids[0]));
        let (_, evicted) = store.create(T0 + secs(6), "alice", 3, &mut rng);
        assert_eq!(
            evicted,
            [Ended {
                user: "alice".into(),
                payload: 0,
                reason: EndReason::Evicted
            }]
        );
        assert!(!is_live(&mut store, T0 + secs(7), &ids[0]));
        assert!(is_live(&mut store, T0 + secs(7), &ids[1]));
        assert!(
            is_live(&mut store, T0 + secs(7), &bob),
            "others are untouched"
        );
        assert_eq!(store.user_sessions("alice"), 3);
    }

    #[test]
    fn a_full_store_evicts_the_least_recently_used_session() {
        let config = SessionConfig {
            capacity: 3,
            ..SessionConfig::default()
        };
        let (mut store, mut rng) = store(config);
        let (a, _) = store.create(T0, "alice", 1, &mut rng);
        let (b, _) = store.create(T0 + secs(1), "bob", 2, &mut rng);
        let (c, _) = store.create(T0 + secs(2), "carol", 3, &mut rng);
        // Alice comes back; Bob is now the least recently used.
        assert!(is_live(&mut store, T0 + secs(3), &a));
        let (d, evicted) = store.create(T0 + secs(4), "dave", 4, &mut rng);
        assert_eq!(
            evicted,
            [Ended {
                user: "bob".into(),
                payload: 2,
                reason: EndReason::Evicted
            }]
        );
        assert_eq!(store.len(), 3);
        let now = T0 + secs(5);
        assert!(!is_live(&mut store, now, &b));
        for id in [&a, &c, &d] {
            assert!(is_live(&mut store, now, id));
        }
    }

    #[test]
    fn a_full_store_ends_an_expired_session_before_evicting_a_live_one() {
        let config = SessionConfig {
            capacity: 2,
            idle_timeout: secs(10),
            ..SessionConfig::default()
        };
        let (mut store, mut rng) = store(config);
        let (old, _) = store.create(T0, "alice", 1, &mut rng);
        let (_busy, _) = store.create(T0 + secs(8), "bob", 2, &mut rng);
        // At T0+10 s Alice's session is dead but still stored: it makes room.
        let (_, ended) = store.create(T0 + secs(10), "carol", 3, &mut rng);
        assert_eq!(ended.len(), 1);
        assert_eq!((ended[0].payload, ended[0].reason), (1, EndReason::Idle));
        assert_eq!(store.lookup(T0 + secs(11), &old), Lookup::Unknown);
        assert_eq!(store.user_sessions("bob"), 1);
    }

    #[test]
    fn sweep_removes_at_most_a_batch_per_call_and_eventually_everything_expired() {
        let config = SessionConfig {
            sweep_batch: 4,
            idle_timeout: secs(60),
            ..SessionConfig::default()
        };
        let (mut store, mut rng) = store(config);
        let mut ids = Vec::new();
        for i in 0..10 {
            ids.push(store.create(T0 + secs(i), "alice", i as u32, &mut rng).0);
        }
        let (keeper, _) = store.create(T0 + secs(50), "bob", 99, &mut rng);
        // Nothing has expired yet: a sweep removes nothing.
        assert!(store.sweep(T0 + secs(59)).is_empty());

        // At T0+69 s, alice's ten (last used T0..T0+9 s) are all idle.
        let now = T0 + secs(69);
        let mut swept = Vec::new();
        let mut calls = 0;
        loop {
            let batch = store.sweep(now);
            assert!(batch.len() <= 4, "one call did {} removals", batch.len());
            calls += 1;
            if batch.is_empty() {
                break;
            }
            swept.extend(batch);
        }
        assert_eq!(calls, 4, "4 + 4 + 2, then an empty call");
        // Earliest deadline first.
        let payloads: Vec<u32> = swept.iter().map(|e| e.payload).collect();
        assert_eq!(payloads, (0..10).collect::<Vec<_>>());
        assert!(swept.iter().all(|e| e.reason == EndReason::Idle));
        assert_eq!(store.len(), 1);
        assert!(is_live(&mut store, now, &keeper));
        assert_eq!(store.next_deadline(), Some(now + secs(60)));
    }

    #[test]
    fn sweep_finds_absolute_expiry_behind_recent_use() {
        let config = SessionConfig {
            idle_timeout: secs(10),
            absolute_timeout: secs(30),
            ..SessionConfig::default()
        };
        let (mut store, mut rng) = store(config);
        let (old, _) = store.create(T0, "alice", 1, &mut rng);
        for t in [8, 16, 24] {
            assert!(is_live(&mut store, T0 + secs(t), &old));
        }
        let (_, _) = store.create(T0 + secs(25), "bob", 2, &mut rng);
        // Alice is used last, so she is the most recently used...
        assert!(is_live(&mut store, T0 + secs(28), &old));
        // ...yet her absolute deadline comes first and the sweep sees it.
        assert_eq!(store.next_deadline(), Some(T0 + secs(30)));
        let ended = store.sweep(T0 + secs(30));
        assert_eq!(ended.len(), 1);
        assert_eq!(
            (ended[0].payload, ended[0].reason),
            (1, EndReason::Absolute)
        );
        assert_eq!(store.next_deadline(), Some(T0 + secs(35)));
    }

    #[test]
    fn cookies_other_than_43_base64url_characters_are_refused() {
        let mut rng = TestRng::seeded(9);
        let id = SessionId::random(&mut rng);
        let cookie = id.to_cookie();
        assert_eq!(SessionId::from_cookie(&cookie), Some(id.clone()));

        let refused = [
            String::new(),
            cookie[..42].to_string(),                       // truncated
            format!("{cookie}A"),                           // oversized
            format!("{cookie}="),                           // padded
            format!("{}=", &cookie[..42]),                  // padding in place of a character
            format!("{}+{}", &cookie[..10], &cookie[11..]), // standard alphabet
            format!("{}/{}", &cookie[..10], &cookie[11..]),
            format!("{}.{}", &cookie[..10], &cookie[11..]),
            format!("{} {}", &cookie[..10], &cookie[11..]),
            format!("{}é", &cookie[..41]), // 43 bytes, not ASCII
            cookie.repeat(2),              // duplicated
        ];
        for value in &refused {
            assert_eq!(SessionId::from_cookie(value), None, "accepted {value:?}");
        }
    }

    #[test]
    fn a_cookie_with_nonzero_spare_bits_is_refused() {
        // All zero bytes encode as 43 'A's; 'B' sets a spare bit.
        let zero = format!("{}A", "A".repeat(42));
        assert!(SessionId::from_cookie(&zero).is_some());
        for spare in ["B", "C", "D"] {
            let respelled = format!("{}{}", "A".repeat(42), spare);
            assert_eq!(SessionId::from_cookie(&respelled), None);
        }
        // 'E' is the next value with zero spare bits.
        assert!(SessionId::from_cookie(&format!("{}E", "A".repeat(42))).is_some());
    }

    #[test]
    fn a_forged_id_is_unknown() {
        let (mut store, mut rng) = store(SessionConfig::default());
        let (_real, _) = store.create(T0, "alice", 0, &mut rng);
        let forged = SessionId(random_array(&mut TestRng::seeded(12345)));
        assert_eq!(store.lookup(T0, &forged), Lookup::Unknown);
        assert!(store.peek(T0, &forged).is_none());
        assert!(store.end(&forged).is_none());
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn debug_output_never_shows_an_id() {
        let (mut store, mut rng) = store(SessionConfig::default());
        let (id, _) = store.create(T0, "alice", 0, &mut rng);
        let cookie = id.to_cookie();
        let shown = format!("{id:?} {id:#?} {store:?} {store:#?}");
        assert!(shown.contains("redacted"));
        assert!(!shown.contains(&cookie));
        // Not even a fragment: any 6 characters of the cookie (36 bits).
        for start in 0..=cookie.len() - 6 {
            assert!(!shown.contains(&cookie[start..start + 6]), "{shown}");
        }
        // Nor the bytes in Rust's array notation.
        let first = format!("{}, {}", id.0[0], id.0[1]);
        assert!(!shown.contains(&first), "{shown}");
        // The store names counts, not users.
        assert!(!shown.contains("alice"));
    }

    #[test]
    fn the_store_keeps_only_a_keyed_hash_of_each_id() {
        // Two stores (two keys) hash the same id differently, and neither
        // hash is the id.
        let mut rng = TestRng::seeded(1);
        let a: Store = SessionStore::new(SessionConfig::default(), &mut rng);
        let b: Store = SessionStore::new(SessionConfig::default(), &mut rng);
        let id = SessionId::random(&mut rng);
        assert_ne!(a.hash(&id), b.hash(&id));
        assert_ne!(a.hash(&id), id.0);
        let (mut store, mut rng) = store(SessionConfig::default());
        let (id, _) = store.create(T0, "alice", 0, &mut rng);
        assert!(store.entries.iter().all(|e| e.hash != id.0));
    }

    #[test]
    fn entries_stay_compact() {
        // The per-session cost the module docs promise: 80 bytes plus the
        // payload. A new field here is a memory decision, not an accident.
        assert_eq!(std::mem::size_of::<Entry<()>>(), 80);
        assert_eq!(std::mem::size_of::<Entry<u64>>(), 88);
    }

    #[test]
    fn many_sessions_survive_index_growth_and_removal_in_any_order() {
        // Enough sessions to grow the index several times, then end them
        // in an order unrelated to creation: every survivor stays findable.
        let (mut store, mut rng) = store(SessionConfig::default());
        let mut ids: Vec<(SessionId, u32)> = (0..500)
            .map(|i| (store.create(T0, &format!("u{}", i % 50), i, &mut rng).0, i))
            .collect();
        store.check_invariants();
        let mut order = TestRng::seeded(77);
        while !ids.is_empty() {
            let pick = (rand_core::Rng::next_u32(&mut order) as usize) % ids.len();
            let (id, payload) = ids.swap_remove(pick);
            assert_eq!(store.end(&id).map(|e| e.payload), Some(payload));
            store.check_invariants();
            if ids.len().is_multiple_of(50) {
                for (id, payload) in &ids {
                    assert_eq!(store.peek(T0, id).map(|(_, p)| *p), Some(*payload));
                }
            }
        }
        assert!(store.is_empty());
        assert!(store.user_numbers.is_empty());
    }

    // The model: every session ever created, with what the store should
    // know about it.

    #[derive(Debug, Clone)]
    enum Op {
        Create { user: u8 },
        Lookup { pick: usize },
        Peek { pick: usize },
        Forged,
        End { pick: usize },
        EndUser { user: u8 },
        Advance { nanos: u64 },
        Sweep,
    }

    const IDLE: u64 = 10_000_000_000;
    const ABSOLUTE: u64 = 25_000_000_000;

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (0u8..4).prop_map(|user| Op::Create { user }),
            4 => any::<usize>().prop_map(|pick| Op::Lookup { pick }),
            1 => any::<usize>().prop_map(|pick| Op::Peek { pick }),
            1 => Just(Op::Forged),
            1 => any::<usize>().prop_map(|pick| Op::End { pick }),
            1 => (0u8..4).prop_map(|user| Op::EndUser { user }),
            3 => prop_oneof![
                Just(1),
                Just(IDLE - 1),
                Just(IDLE),
                Just(1_000_000_000),
                Just(ABSOLUTE),
                0..IDLE,
            ]
            .prop_map(|nanos| Op::Advance { nanos }),
            2 => Just(Op::Sweep),
        ]
    }

    struct Record {
        id: SessionId,
        user: String,
        created: u64,
        last_use: u64,
        /// Order of last use, to tell the least recently used apart when
        /// two uses fall at the same nanosecond.
        used_seq: u64,
        /// Still in the store (alive or not yet noticed dead).
        present: bool,
    }

    impl Record {
        fn idle_deadline(&self) -> u64 {
            self.last_use + IDLE
        }
        fn absolute_deadline(&self) -> u64 {
            self.created + ABSOLUTE
        }
        fn due(&self) -> u64 {
            self.idle_deadline().min(self.absolute_deadline())
        }
        fn alive(&self, now: u64) -> bool {
            self.present && now < self.due()
        }
        fn expiry(&self, now: u64) -> Option<EndReason> {
            if now < self.due() {
                None
            } else if self.absolute_deadline() <= self.idle_deadline() {
                Some(EndReason::Absolute)
            } else {
                Some(EndReason::Idle)
            }
        }
    }

    struct Model {
        records: Vec<Record>,
        now: u64,
        seq: u64,
    }

    impl Model {
        fn present(&self) -> usize {
            self.records.iter().filter(|r| r.present).count()
        }

        /// Checks what the store returned as ended (payload = record
        /// number) and marks those records gone.
        fn take_ended(&mut self, ended: &[Ended<u32>], allowed: impl Fn(&Record) -> bool) {
            for e in ended {
                let r = &mut self.records[e.payload as usize];
                assert!(r.present, "ended twice: {e:?}");
                assert_eq!(e.user, r.user);
                assert!(allowed(r), "unexpected ending {e:?}");
                r.present = false;
            }
        }
    }

    fn user_name(user: u8) -> String {
        format!("user{user}")
    }

    fn run(ops: &[Op]) {
        const CAPACITY: usize = 6;
        const PER_USER: usize = 3;
        const BATCH: usize = 2;
        let config = SessionConfig {
            idle_timeout: Duration::from_nanos(IDLE),
            absolute_timeout: Duration::from_nanos(ABSOLUTE),
            capacity: CAPACITY,
            per_user_cap: PER_USER,
            sweep_batch: BATCH,
        };
        let mut rng = TestRng::seeded(ops.len() as u64);
        let mut store = Store::new(config, &mut rng);
        let mut model = Model {
            records: Vec::new(),
            now: 0,
            seq: 0,
        };
        let at = |t: u64| T0 + Duration::from_nanos(t);
        let mut cookies = std::collections::BTreeSet::new();

        for op in ops {
            let now = model.now;
            match op {
                Op::Create { user } => {
                    let name = user_name(*user);
                    let payload = model.records.len() as u32;
                    let (id, ended) = store.create(at(now), &name, payload, &mut rng);
                    assert!(cookies.insert(id.to_cookie()), "an id repeated");
                    // The user's oldest present record if at the cap.
                    let mine: Vec<usize> = (0..model.records.len())
                        .filter(|&i| model.records[i].present && model.records[i].user == name)
                        .collect();
                    let mut expected_removals = 0;
                    if mine.len() >= PER_USER {
                        let oldest = &model.records[mine[0]];
                        assert_eq!(ended[0].payload as usize, mine[0]);
                        let reason = oldest.expiry(now).unwrap_or(EndReason::Evicted);
                        assert_eq!(ended[0].reason, reason);
                        model.take_ended(&ended[..1], |_| true);
                        expected_removals += 1;
                    }
                    if model.present() >= CAPACITY {
                        let rest = &ended[expected_removals..];
                        assert_eq!(rest.len(), 1, "{ended:?}");
                        let any_expired = model
                            .records
                            .iter()
                            .any(|r| r.present && r.expiry(now).is_some());
                        if any_expired {
                            // An expired one, with its expiry reason.
                            let r = &model.records[rest[0].payload as usize];
                            assert_eq!(Some(rest[0].reason), r.expiry(now));
                        } else {
                            let lru = model
                                .records
                                .iter()
                                .enumerate()
                                .filter(|(_, r)| r.present)
                                .min_by_key(|(_, r)| r.used_seq)
                                .map(|(i, _)| i);
                            assert_eq!(Some(rest[0].payload as usize), lru);
                            assert_eq!(rest[0].reason, EndReason::Evicted);
                        }
                        model.take_ended(rest, |r| r.present);
                        expected_removals += 1;
                    }
                    assert_eq!(ended.len(), expected_removals, "{ended:?}");
                    model.seq += 1;
                    model.records.push(Record {
                        id,
                        user: name,
                        created: now,
                        last_use: now,
                        used_seq: model.seq,
                        present: true,
                    });
                }
                Op::Lookup { .. } | Op::Peek { .. } | Op::End { .. }
                    if model.records.is_empty() => {}
                Op::Lookup { pick } => {
                    let i = pick % model.records.len();
                    model.seq += 1;
                    let seq = model.seq;
                    let r = &mut model.records[i];
                    match store.lookup(at(now), &r.id) {
                        Lookup::Live { user, payload } => {
                            assert!(r.alive(now), "a dead id worked");
                            assert_eq!((user, *payload as usize), (r.user.as_str(), i));
                            r.last_use = now;
                            r.used_seq = seq;
                        }
                        Lookup::Ended(ended) => {
                            assert!(r.present && !r.alive(now));
                            assert_eq!(Some(ended.reason), r.expiry(now));
                            assert_eq!(ended.payload as usize, i);
                            r.present = false;
                        }
                        Lookup::Unknown => assert!(!r.present, "a stored id was unknown"),
                    }
                }
                Op::Peek { pick } => {
                    let i = pick % model.records.len();
                    let r = &model.records[i];
                    let seen = store.peek(at(now), &r.id).map(|(u, p)| (u.to_string(), *p));
                    let expected = r.alive(now).then(|| (r.user.clone(), i as u32));
                    assert_eq!(seen, expected);
                }
                Op::Forged => {
                    let forged = SessionId(random_array(&mut rng));
                    assert_eq!(store.lookup(at(now), &forged), Lookup::Unknown);
                }
                Op::End { pick } => {
                    let i = pick % model.records.len();
                    let ended = store.end(&model.records[i].id);
                    assert_eq!(ended.is_some(), model.records[i].present);
                    if let Some(e) = ended {
                        assert_eq!((e.payload as usize, e.reason), (i, EndReason::Logout));
                        model.records[i].present = false;
                    }
                }
                Op::EndUser { user } => {
                    let name = user_name(*user);
                    let ended = store.end_user(&name, EndReason::UserEnded);
                    let expected = model
                        .records
                        .iter()
                        .filter(|r| r.present && r.user == name)
                        .count();
                    assert_eq!(ended.len(), expected);
                    assert!(ended.iter().all(|e| e.reason == EndReason::UserEnded));
                    model.take_ended(&ended, |r| r.user == name);
                }
                Op::Advance { nanos } => model.now += nanos,
                Op::Sweep => {
                    let ended = store.sweep(at(now));
                    let expired = model
                        .records
                        .iter()
                        .filter(|r| r.present && !r.alive(now))
                        .count();
                    // Exactly a batch of what has expired, never a live one.
                    assert_eq!(ended.len(), expired.min(BATCH));
                    for e in &ended {
                        let r = &model.records[e.payload as usize];
                        assert_eq!(Some(e.reason), r.expiry(now));
                    }
                    model.take_ended(&ended, |r| !r.alive(now));
                }
            }
            store.check_invariants();
            // The store holds exactly what the model says is present, and
            // its next deadline is the earliest among them.
            assert_eq!(store.len(), model.present());
            let due = model
                .records
                .iter()
                .filter(|r| r.present)
                .map(Record::due)
                .min();
            assert_eq!(store.next_deadline(), due.map(at));
        }

        // Sweeps catch up: what remains is exactly the live sessions.
        let now = model.now;
        while !store.sweep(at(now)).is_empty() {}
        let alive = model.records.iter().filter(|r| r.alive(now)).count();
        assert_eq!(store.len(), alive);
        // And every id that ever ended is dead, every live one works.
        for r in &model.records {
            assert_eq!(is_live(&mut store, at(now), &r.id), r.alive(now));
        }
    }

    proptest! {
        #[test]
        fn the_store_agrees_with_a_model(ops in prop::collection::vec(op(), 1..120)) {
            run(&ops);
        }
    }
}
