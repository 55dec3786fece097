//! The engine's request-head path against raw httparse on the same bytes.
//!
//! Run with `cargo bench -p portcullis-core --bench head_path`. Without
//! `--bench` in its arguments (as under `cargo test --all-targets`) it makes one
//! quick pass instead, so the test suite stays fast while the bench cannot rot.
//! With `--profile` it only runs 20,000 browser requests (`--profile minimal`:
//! minimal ones) through each path, untimed, for `valgrind --tool=callgrind
//! <bench binary> --profile` (the steps are kept out of line so their
//! inclusive costs show).
//!
//! A small self-contained harness rather than criterion, whose dependency tree
//! would land in every test build. Variants run interleaved (A B C D, A B C D,
//! ...) in batches, so a slow moment of the machine hits them all alike; the
//! figure per variant is the median of its batches, in ns per request.
//!
//! What is measured, per input:
//! - `engine`: what a server does per request on a kept-alive connection:
//!   `receive` the bytes, `poll_event` the request, answer with a bodiless
//!   200 (`send_response`, `finish_response`) and `advance_output` so the next
//!   request can be parsed.
//! - `engine parse`: only `receive` + `poll_event` (and dropping the request).
//!   The engine will not parse the next request before the previous one is
//!   answered, so a pool of kept-alive connections is parsed in a timed loop
//!   and answered in an untimed one. A fresh `Connection` per request would
//!   instead time its construction (two buffer allocations) too.
//! - `httparse`: `httparse::Request::parse` with a 100-slot header array
//!   (the engine's default header limit) built per request, as its docs do.
//!   Nothing is converted or copied: it is the floor the engine builds on.
//! - `httparse uninit`: the same with uninitialised slots, as the engine
//!   itself calls httparse; shows what initialising the array costs.
//!
//! Then it counts the heap allocations of the `engine` path per request with
//! a counting global allocator (the one use of `unsafe` in this package; the
//! library keeps `#![forbid(unsafe_code)]`).

#![allow(unsafe_code)]

use std::hint::black_box;
use std::mem::MaybeUninit;
use std::time::{Instant, SystemTime};

use portcullis_core::{Connection, Event, Limits, Now, ResponseHead};

/// Counts heap allocations. Counting is off while timing: then each
/// allocation pays only one relaxed load.
mod counting {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};

    /// The system allocator, counting when asked to.
    pub struct Counting;

    static ON: AtomicBool = AtomicBool::new(false);
    /// Fresh blocks (`alloc`, `alloc_zeroed`).
    static ALLOCS: AtomicUsize = AtomicUsize::new(0);
    /// Resized blocks (`realloc`), which may move and copy.
    static REALLOCS: AtomicUsize = AtomicUsize::new(0);
    /// The sizes of the first blocks allocated or resized while counting.
    static SIZES: [AtomicUsize; 8] = [const { AtomicUsize::new(0) }; 8];

    fn note(counter: &AtomicUsize, size: usize) {
        if ON.load(Relaxed) {
            let seen = ALLOCS.load(Relaxed) + REALLOCS.load(Relaxed);
            if let Some(slot) = SIZES.get(seen) {
                slot.store(size, Relaxed);
            }
            counter.fetch_add(1, Relaxed);
        }
    }

    // SAFETY: every call goes unchanged to `System`; the bookkeeping only
    // touches atomics and never allocates.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            note(&ALLOCS, layout.size());
            unsafe { System.alloc(layout) }
        }

        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            note(&ALLOCS, layout.size());
            unsafe { System.alloc_zeroed(layout) }
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            note(&REALLOCS, new_size);
            unsafe { System.realloc(ptr, layout, new_size) }
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    /// What `n` calls of `f` allocate: allocations and reallocations per
    /// call, and the block sizes of the first call.
    pub fn per_call(n: usize, mut f: impl FnMut()) -> (f64, f64, Vec<usize>) {
        ALLOCS.store(0, Relaxed);
        REALLOCS.store(0, Relaxed);
        ON.store(true, Relaxed);
        (0..n).for_each(|_| f());
        ON.store(false, Relaxed);
        let (allocs, reallocs) = (ALLOCS.load(Relaxed), REALLOCS.load(Relaxed));
        let first = (allocs + reallocs).div_ceil(n).min(SIZES.len());
        let sizes = SIZES[..first].iter().map(|s| s.load(Relaxed)).collect();
        (allocs as f64 / n as f64, reallocs as f64 / n as f64, sizes)
    }
}

#[global_allocator]
static ALLOCATOR: counting::Counting = counting::Counting;

/// A browser navigation with a session cookie: 698 bytes, 16 fields.
const BROWSER: &[u8] = b"GET /account/settings?tab=security HTTP/1.1\r\n\
Host: www.example.com\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8\r\n\
Accept-Language: en-GB,en;q=0.7,fr;q=0.3\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Referer: https://www.example.com/account\r\n\
Connection: keep-alive\r\n\
Cookie: __Host-portcullis=q3Vb1mYxR8kP2tZ0nWc7LhJ4sA9eDfGi6uOyTzXvBw5; theme=dark; _ga=GA1.1.1234567890.1700000000\r\n\
Upgrade-Insecure-Requests: 1\r\n\
Cache-Control: max-age=0\r\n\
DNT: 1\r\n\
Sec-Fetch-Dest: document\r\n\
Sec-Fetch-Mode: navigate\r\n\
Sec-Fetch-Site: same-origin\r\n\
Sec-Fetch-User: ?1\r\n\
Priority: u=0, i\r\n\
\r\n";

/// What curl sends: 72 bytes, 3 fields.
const MINIMAL: &[u8] =
    b"GET / HTTP/1.1\r\nHost: example.com\r\nUser-Agent: curl/8.0\r\nAccept: */*\r\n\r\n";

/// The header array size for httparse: the engine's default header limit.
const HEADER_SLOTS: usize = 100;

/// How long the run is.
struct Plan {
    /// Interleaved rounds; each times one batch of every variant.
    rounds: usize,
    /// Requests per timed batch (also the connection pool's size).
    batch: usize,
}

const FULL: Plan = Plan {
    rounds: 10_000,
    batch: 64,
};
const QUICK: Plan = Plan {
    rounds: 2,
    batch: 4,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Variant {
    Engine,
    EngineParse,
    Httparse,
    HttparseUninit,
}

const VARIANTS: [Variant; 4] = [
    Variant::Engine,
    Variant::EngineParse,
    Variant::Httparse,
    Variant::HttparseUninit,
];

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Variant::Engine => "engine",
            Variant::EngineParse => "engine parse",
            Variant::Httparse => "httparse",
            Variant::HttparseUninit => "httparse uninit",
        }
    }
}

/// A fixed moment: the bench measures the engine, not the clock (the `Date`
/// text is formatted once and then reused, as within one real second).
fn fixed_now() -> Now {
    #[allow(clippy::disallowed_methods)] // core/clippy.toml guards the library, not its bench
    let mono = Instant::now();
    Now::new(mono, SystemTime::UNIX_EPOCH)
}

/// The bytes and parse of one request, as a server on a kept-alive
/// connection sees it: receive, take the request out.
#[inline(never)]
fn parse_one(conn: &mut Connection, now: Now, input: &[u8]) {
    let taken = conn.receive(now, input);
    debug_assert_eq!(taken, input.len());
    match conn.poll_event() {
        Some(Event::Request(request)) => drop(black_box(request)),
        other => panic!("expected a request, got {other:?}"),
    }
}

/// The answer: a bodiless 200, finished and written out.
#[inline(never)]
fn answer_one(conn: &mut Connection, now: Now) {
    conn.send_response(now, ResponseHead::new(200))
        .expect("a request is waiting for its response");
    conn.finish_response(now).expect("the response was started");
    let written = black_box(conn.pending_output()).len();
    conn.advance_output(now, written);
}

#[inline(never)]
fn httparse_one(input: &[u8]) {
    let mut headers = [httparse::EMPTY_HEADER; HEADER_SLOTS];
    let mut request = httparse::Request::new(&mut headers);
    let status = request.parse(black_box(input));
    assert!(matches!(status, Ok(httparse::Status::Complete(n)) if n == input.len()));
    black_box(&request);
}

#[inline(never)]
fn httparse_uninit_one(input: &[u8]) {
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; HEADER_SLOTS];
    let mut request = httparse::Request::new(&mut []);
    let status = request.parse_with_uninit_headers(black_box(input), &mut slots);
    assert!(matches!(status, Ok(httparse::Status::Complete(n)) if n == input.len()));
    black_box(&request);
}

/// Kept-alive connections, one per request of a batch.
struct Pool {
    now: Now,
    conns: Vec<Connection>,
}

impl Pool {
    fn new(now: Now, size: usize) -> Self {
        let conns = (0..size)
            .map(|_| Connection::new(now, Limits::default()))
            .collect();
        Pool { now, conns }
    }

    /// Times one batch of `variant` on `input`; ns per request.
    fn batch(&mut self, variant: Variant, input: &[u8]) -> f64 {
        let now = self.now;
        let n = self.conns.len();
        #[allow(clippy::disallowed_methods)] // timing the bench itself
        let start = Instant::now();
        match variant {
            // One connection serves the whole batch, as a kept-alive one does.
            Variant::Engine => {
                let conn = &mut self.conns[0];
                for _ in 0..n {
                    parse_one(conn, now, input);
                    answer_one(conn, now);
                }
            }
            Variant::EngineParse => {
                for conn in &mut self.conns {
                    parse_one(conn, now, input);
                }
            }
            Variant::Httparse => (0..n).for_each(|_| httparse_one(input)),
            Variant::HttparseUninit => (0..n).for_each(|_| httparse_uninit_one(input)),
        }
        let elapsed = start.elapsed();
        if variant == Variant::EngineParse {
            // Untimed: answer, so every connection reads a head again.
            for conn in &mut self.conns {
                answer_one(conn, now);
            }
        }
        elapsed.as_nanos() as f64 / n as f64
    }
}

/// The middle sample (the upper one of two: with thousands of samples the
/// difference is noise).
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The engine's answer to one request, to check the bench measures a
/// working exchange and not an error path.
fn check_exchange(input: &[u8]) {
    let now = fixed_now();
    let mut conn = Connection::new(now, Limits::default());
    for _ in 0..2 {
        conn.receive(now, input);
        let Some(Event::Request(request)) = conn.poll_event() else {
            panic!("no request parsed from the bench input");
        };
        assert_eq!(request.raw_head(), input);
        conn.send_response(now, ResponseHead::new(200)).unwrap();
        conn.finish_response(now).unwrap();
        assert!(conn.pending_output().starts_with(b"HTTP/1.1 200 OK\r\n"));
        assert!(!conn.is_closing(), "the connection must stay alive");
        let written = conn.pending_output().len();
        conn.advance_output(now, written);
    }
}

/// The paths one after the other, untimed, for a profiler.
fn profile(input: &[u8]) {
    let now = fixed_now();
    let mut conn = Connection::new(now, Limits::default());
    for _ in 0..20_000 {
        parse_one(&mut conn, now, input);
        answer_one(&mut conn, now);
        httparse_one(input);
        httparse_uninit_one(input);
    }
}

fn main() {
    if std::env::args().any(|arg| arg == "--profile") {
        let minimal = std::env::args().any(|arg| arg == "minimal");
        return profile(if minimal { MINIMAL } else { BROWSER });
    }
    let benching = std::env::args().any(|arg| arg == "--bench");
    let plan = if benching { FULL } else { QUICK };
    let inputs: [(&str, &[u8]); 2] = [("browser", BROWSER), ("minimal", MINIMAL)];
    for (_, input) in inputs {
        check_exchange(input);
    }

    let mut pool = Pool::new(fixed_now(), plan.batch);
    // samples[input][variant]: ns per request of each batch.
    let mut samples = vec![vec![Vec::with_capacity(plan.rounds); VARIANTS.len()]; inputs.len()];
    // A warm-up round, not recorded.
    for (_, input) in inputs {
        for variant in VARIANTS {
            pool.batch(variant, input);
        }
    }
    for _ in 0..plan.rounds {
        for (i, (_, input)) in inputs.iter().enumerate() {
            for (v, variant) in VARIANTS.iter().enumerate() {
                samples[i][v].push(pool.batch(*variant, input));
            }
        }
    }

    println!(
        "head_path: {} rounds x {} requests per variant, median ns/request",
        plan.rounds, plan.batch
    );
    println!(
        "{:<18} {:<16} {:>10} {:>12}",
        "input", "variant", "ns/req", "vs httparse"
    );
    for (i, (name, input)) in inputs.iter().enumerate() {
        let medians: Vec<f64> = samples[i].iter_mut().map(|s| median(s)).collect();
        let base = medians[VARIANTS
            .iter()
            .position(|&v| v == Variant::Httparse)
            .expect("httparse is a variant")];
        let label = format!("{name} ({} B)", input.len());
        for (variant, m) in VARIANTS.iter().zip(&medians) {
            println!(
                "{label:<18} {:<16} {m:>10.1} {:>11.2}x",
                variant.name(),
                m / base
            );
        }
    }

    // Allocations of the engine path on a warmed-up kept-alive connection
    // (its buffers have grown; the Date text of this second is cached).
    println!("heap allocations per request (block sizes of one request)");
    let now = fixed_now();
    for (name, input) in inputs {
        let mut conn = Connection::new(now, Limits::default());
        let mut serve = || {
            parse_one(&mut conn, now, input);
            answer_one(&mut conn, now);
        };
        (0..16).for_each(|_| serve());
        let (allocs, reallocs, sizes) = counting::per_call(1000, serve);
        let (peer, _, _) = counting::per_call(1000, || httparse_one(input));
        println!(
            "{name:<8} engine {allocs:.2} {sizes:?}, reallocations {reallocs:.2}; httparse {peer:.2}"
        );
    }
    if !benching {
        println!(
            "(a quick pass; run `cargo bench -p portcullis-core --bench head_path` for figures)"
        );
    }
}
