//! The session store with a million live sessions against a `HashMap`
//! holding the same keys and values (issue 6, row B7).
//!
//! Run with `cargo bench -p portcullis-core --bench session_store`. Without
//! `--bench` in its arguments (as under `cargo test --all-targets`) it makes
//! one quick pass over 10,000 sessions instead, so the test suite stays fast
//! while the bench cannot rot.
//!
//! What is filled:
//! - `store`: a [`SessionStore`] of capacity 1,000,000, filled with
//!   1,000,000 sessions of 15,625 users, 64 each (the default per-user cap,
//!   so none is evicted), created round-robin over the users as logins
//!   would arrive. The payload is what the guard keeps per session with the
//!   server's realm: the avatar, a `String` holding the user's name
//!   (`user00042`, 9 bytes; each session its own copy, as the realm hands
//!   out), and `Some(LogoutHook::noop())` (a box of a zero-sized closure:
//!   no heap block). 40 bytes inline, as the guard's private `SessionData`.
//! - `hashmap`: a `std::collections::HashMap<[u8; 32], Payload>` keyed by
//!   the same sessions' 32-byte ids, with the same payloads, grown by
//!   inserts as the store grows by creates.
//!
//! What is measured:
//! - bytes per session: the heap bytes each structure holds once filled
//!   (a counting global allocator: bytes asked for, net of what was freed),
//!   divided by the sessions. A second, human-readable figure estimates
//!   what glibc's malloc really reserves for those blocks (16-byte chunks
//!   with an 8-byte header, 32 bytes at least; big blocks are whole pages).
//! - lookup time: `store.lookup(now, id)` (a use: keyed BLAKE2b of the id,
//!   the index probe, the entry, and moving it to the back of the LRU list)
//!   against `map.get(key)` (SipHash, probe), for ids drawn at random from
//!   the million beforehand. Variants run interleaved in batches (store,
//!   hashmap, hash only; store, hashmap, hash only; ...), each batch on the
//!   same ids, so a slow moment of the machine hits them all alike; the
//!   figure per variant is the median of its batches, in ns per lookup.
//!   `hash only` times the keyed BLAKE2b of an id alone, as the store
//!   computes it, to show how much of a lookup it is.
//!
//! The four lines `bench/compare.py` reads are `B7 store bytes_per_session
//! N`, `B7 store lookup_ns N`, `B7 hashmap bytes_per_session N` and `B7
//! hashmap lookup_ns N`.

#![allow(unsafe_code)]

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Instant;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use blake2::digest::consts::U32;
use blake2::digest::{KeyInit, Mac};
use blake2::Blake2bMac;
use portcullis_core::cred::LogoutHook;
use portcullis_core::random::{random_array, Rng, TestRng};
use portcullis_core::session::{Lookup, SessionConfig, SessionId, SessionStore};

/// Counts the heap: bytes held, an estimate of what malloc reserves for
/// them, and allocation calls. Always on: the lookups being timed allocate
/// nothing (checked), so the bookkeeping costs them nothing.
mod counting {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

    /// The system allocator, counting.
    pub struct Counting;

    /// Bytes asked for and not yet freed.
    static LIVE: AtomicUsize = AtomicUsize::new(0);
    /// The same, as glibc's chunks (see [`chunk`]).
    static CHUNKS: AtomicUsize = AtomicUsize::new(0);
    /// Allocation and reallocation calls.
    static CALLS: AtomicUsize = AtomicUsize::new(0);

    /// What glibc's malloc (64-bit) takes for a block of `size` bytes: an
    /// 8-byte header, rounded up to 16, at least 32; blocks from 128 KiB
    /// (its default mmap threshold) get whole pages and a 16-byte header.
    /// An estimate: other allocators differ, and free chunks are not seen.
    fn chunk(size: usize) -> usize {
        if size >= 128 * 1024 {
            (size + 16).div_ceil(4096) * 4096
        } else {
            (size + 8).div_ceil(16).max(2) * 16
        }
    }

    fn add(size: usize) {
        LIVE.fetch_add(size, Relaxed);
        CHUNKS.fetch_add(chunk(size), Relaxed);
    }

    fn sub(size: usize) {
        LIVE.fetch_sub(size, Relaxed);
        CHUNKS.fetch_sub(chunk(size), Relaxed);
    }

    // SAFETY: every call goes unchanged to `System`; the bookkeeping only
    // touches atomics and never allocates.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            let block = unsafe { System.alloc(layout) };
            if !block.is_null() {
                add(layout.size());
                CALLS.fetch_add(1, Relaxed);
            }
            block
        }

        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            let block = unsafe { System.alloc_zeroed(layout) };
            if !block.is_null() {
                add(layout.size());
                CALLS.fetch_add(1, Relaxed);
            }
            block
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            let block = unsafe { System.realloc(ptr, layout, new_size) };
            if !block.is_null() {
                sub(layout.size());
                add(new_size);
                CALLS.fetch_add(1, Relaxed);
            }
            block
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            unsafe { System.dealloc(ptr, layout) };
            sub(layout.size());
        }
    }

    /// A reading of the counters.
    #[derive(Clone, Copy)]
    pub struct Heap {
        /// Bytes held.
        pub live: usize,
        /// Estimated malloc chunks for them.
        pub chunks: usize,
        /// Allocation calls so far.
        pub calls: usize,
    }

    /// The counters now.
    pub fn heap() -> Heap {
        Heap {
            live: LIVE.load(Relaxed),
            chunks: CHUNKS.load(Relaxed),
            calls: CALLS.load(Relaxed),
        }
    }
}

#[global_allocator]
static ALLOCATOR: counting::Counting = counting::Counting;

/// What the guard keeps per session (its `SessionData` with the server's
/// realm): the avatar and the logout hook.
struct Payload {
    #[allow(dead_code)] // held for its size, as the guard holds it
    avatar: String,
    #[allow(dead_code)]
    logout: Option<LogoutHook>,
}

impl Payload {
    fn for_user(name: &str) -> Payload {
        Payload {
            avatar: name.to_string(),
            logout: Some(LogoutHook::noop()),
        }
    }
}

/// How big and how long the run is.
struct Plan {
    /// Sessions (and the store's capacity).
    sessions: usize,
    /// Interleaved rounds; each times one batch of every variant.
    rounds: usize,
    /// Lookups per timed batch.
    batch: usize,
    /// Distinct ids drawn for the lookups.
    sample: usize,
}

const FULL: Plan = Plan {
    sessions: 1_000_000,
    rounds: 2_000,
    batch: 256,
    sample: 1 << 16,
};
const QUICK: Plan = Plan {
    sessions: 10_000,
    rounds: 4,
    batch: 16,
    sample: 256,
};

/// Sessions per user: `SessionConfig::default().per_user_cap`, so the
/// fill evicts nothing and every user is at the cap.
const PER_USER: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Variant {
    Store,
    HashMap,
    HashOnly,
}

const VARIANTS: [Variant; 3] = [Variant::Store, Variant::HashMap, Variant::HashOnly];

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Variant::Store => "store",
            Variant::HashMap => "hashmap",
            Variant::HashOnly => "hash only",
        }
    }
}

/// The id's 32 bytes, read back from its cookie form (the store never
/// hands them out otherwise).
fn id_bytes(id: &SessionId) -> [u8; 32] {
    let mut bytes = [0u8; 32];
    let n = URL_SAFE_NO_PAD
        .decode_slice(id.to_cookie(), &mut bytes)
        .expect("a session cookie is base64url");
    assert_eq!(n, 32);
    bytes
}

/// The keyed hash the store computes for every lookup: BLAKE2b-256 with a
/// 32-byte key, set up per call as the store does.
#[inline(never)]
fn keyed_hash(key: &[u8; 32], id: &[u8; 32]) -> [u8; 32] {
    let mut mac = <Blake2bMac<U32> as KeyInit>::new_from_slice(key).expect("a 32-byte key");
    mac.update(id);
    mac.finalize().into_bytes().into()
}

/// The middle sample (the upper one of two).
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let benching = std::env::args().any(|arg| arg == "--bench");
    let plan = if benching { FULL } else { QUICK };
    let n = plan.sessions;
    let users = n.div_ceil(PER_USER);
    let names: Vec<String> = (0..users).map(|u| format!("user{u:05}")).collect();
    #[allow(clippy::disallowed_methods)] // core/clippy.toml guards the library, not its bench
    let now = Instant::now();

    // The store, filled; its ids kept (in room reserved beforehand, so the
    // heap counted below is the store's alone).
    let mut ids: Vec<SessionId> = Vec::with_capacity(n);
    let mut rng = TestRng::seeded(7);
    let config = SessionConfig {
        capacity: n,
        ..SessionConfig::default()
    };
    assert_eq!(config.per_user_cap, PER_USER);
    #[allow(clippy::disallowed_methods)] // timing the bench itself
    let started = Instant::now();
    let before = counting::heap();
    let mut store: SessionStore<Payload> = SessionStore::new(config, &mut rng);
    for i in 0..n {
        let name = &names[i % users];
        let (id, ended) = store.create(now, name, Payload::for_user(name), &mut rng);
        assert!(ended.is_empty(), "the fill must not evict");
        ids.push(id);
    }
    let after = counting::heap();
    let fill_store = started.elapsed();
    assert_eq!(store.len(), n);
    let store_bytes = (after.live - before.live) as f64 / n as f64;
    let store_chunks = (after.chunks - before.chunks) as f64 / n as f64;

    // The same sessions' ids as map keys, made before counting the map.
    let keys: Vec<[u8; 32]> = ids.iter().map(id_bytes).collect();
    #[allow(clippy::disallowed_methods)] // timing the bench itself
    let started = Instant::now();
    let before = counting::heap();
    let mut map: HashMap<[u8; 32], Payload> = HashMap::new();
    for (i, key) in keys.iter().enumerate() {
        map.insert(*key, Payload::for_user(&names[i % users]));
    }
    let after = counting::heap();
    let fill_map = started.elapsed();
    assert_eq!(map.len(), n);
    let map_bytes = (after.live - before.live) as f64 / n as f64;
    let map_chunks = (after.chunks - before.chunks) as f64 / n as f64;

    // The lookups' ids, drawn beforehand and kept compact, so the timed
    // loops touch the structures and not a 32 MB array of ids.
    let mut draw = TestRng::seeded(11);
    let picks: Vec<usize> = (0..plan.sample)
        .map(|_| (draw.next_u64() % n as u64) as usize)
        .collect();
    let sample_ids: Vec<SessionId> = picks.iter().map(|&i| ids[i].clone()).collect();
    let sample_keys: Vec<[u8; 32]> = picks.iter().map(|&i| keys[i]).collect();
    drop((ids, keys));
    let hash_key: [u8; 32] = random_array(&mut draw);

    // Every sampled id is live in the store and present in the map.
    for (id, key) in sample_ids.iter().zip(&sample_keys) {
        assert!(matches!(store.lookup(now, id), Lookup::Live { .. }));
        assert!(map.contains_key(key));
    }

    // (Not `vec![..; n]`: a clone of an empty vector drops its capacity.)
    let mut samples: Vec<Vec<f64>> = VARIANTS
        .iter()
        .map(|_| Vec::with_capacity(plan.rounds))
        .collect();
    let calls_before = counting::heap().calls;
    let mut at = 0;
    for round in 0..=plan.rounds {
        let range = at..at + plan.batch;
        at = (at + plan.batch) % (plan.sample - plan.batch);
        for (v, variant) in VARIANTS.iter().enumerate() {
            #[allow(clippy::disallowed_methods)] // timing the bench itself
            let start = Instant::now();
            match variant {
                Variant::Store => {
                    for id in &sample_ids[range.clone()] {
                        let found = store.lookup(now, id);
                        black_box(matches!(found, Lookup::Live { .. }));
                    }
                }
                Variant::HashMap => {
                    for key in &sample_keys[range.clone()] {
                        black_box(map.get(key));
                    }
                }
                Variant::HashOnly => {
                    for key in &sample_keys[range.clone()] {
                        black_box(keyed_hash(&hash_key, key));
                    }
                }
            }
            let ns = start.elapsed().as_nanos() as f64 / plan.batch as f64;
            // Round 0 warms up and is not recorded.
            if round > 0 {
                samples[v].push(ns);
            }
        }
    }
    let lookup_allocations = counting::heap().calls - calls_before;
    // A lookup that allocated would be a cost the figures should name.
    assert_eq!(lookup_allocations, 0, "the timed loops allocated");
    let medians: Vec<f64> = samples.iter_mut().map(|s| median(s)).collect();

    println!(
        "session_store: {n} sessions of {users} users (at most {PER_USER} each), capacity {n}; \
         payload: the user's name as a String ({} bytes) + Some(LogoutHook::noop()), {} bytes inline",
        names[0].len(),
        std::mem::size_of::<Payload>()
    );
    println!(
        "fill: store {:.2} s, hashmap {:.2} s",
        fill_store.as_secs_f64(),
        fill_map.as_secs_f64()
    );
    println!(
        "heap per session (bytes asked for): store {store_bytes:.1}, hashmap {map_bytes:.1}; \
         as glibc malloc chunks (estimate): store {store_chunks:.1}, hashmap {map_chunks:.1}"
    );
    println!(
        "lookups: {} rounds x {} per variant, median ns/lookup: {}; heap allocations during \
         lookups: {lookup_allocations}",
        plan.rounds,
        plan.batch,
        VARIANTS
            .iter()
            .zip(&medians)
            .map(|(v, m)| format!("{} {m:.1}", v.name()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("B7 store bytes_per_session {store_bytes:.1}");
    println!("B7 store lookup_ns {:.1}", medians[0]);
    println!("B7 hashmap bytes_per_session {map_bytes:.1}");
    println!("B7 hashmap lookup_ns {:.1}", medians[1]);
    if !benching {
        println!(
            "(a quick pass; run `cargo bench -p portcullis-core --bench session_store` for figures)"
        );
    }
    // The structures live until the figures are out (and their drop, a
    // million frees each, is not timed).
    drop(black_box(store));
    drop(black_box(map));
}
