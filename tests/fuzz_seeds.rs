//! The fuzz targets' seeds, run on stable as ordinary tests.
//!
//! `fuzz/` is a cargo-fuzz project that only nightly builds. Its checks live
//! in one plain file, compiled here as well, and every seed under
//! `fuzz/seeds/<target>/` goes through the same check the fuzzer runs: so a
//! change to the engine that breaks a target's invariants fails here, and the
//! targets cannot rot between fuzzing sessions.

#[path = "../fuzz/src/checks.rs"]
mod checks;

use std::panic;
use std::path::Path;

use checks::{reference_chunked, Verdict};
use portcullis_core::{Limits, ProtocolErrorKind};

/// Runs every seed of `target` through `check`, and reports all the seeds
/// that fail (by file name) rather than only the first.
fn run_seeds(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(target);
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .collect();
    paths.sort();
    // A seed directory that went missing or empty would pass vacuously.
    assert!(
        paths.len() >= 5,
        "only {} seeds in {}",
        paths.len(),
        dir.display()
    );
    let failures: Vec<String> = paths
        .iter()
        .filter_map(|path| {
            let data = std::fs::read(path).expect("a readable seed");
            let outcome = panic::catch_unwind(|| check(&data));
            outcome.err().map(|payload| {
                let message = payload
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                format!("{}: {message}", path.display())
            })
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} {target} seeds failed:\n{}",
        failures.len(),
        paths.len(),
        failures.join("\n")
    );
}

#[test]
fn request_head_seeds() {
    run_seeds("request_head", checks::request_head);
}

#[test]
fn connection_seeds() {
    run_seeds("connection", checks::connection);
}

#[test]
fn chunked_seeds() {
    run_seeds("chunked", checks::chunked);
}

#[test]
fn guard_ops_seeds() {
    run_seeds("guard_ops", checks::guard_ops);
}

#[test]
fn password_file_seeds() {
    run_seeds(
        "password_file",
        portcullis_core::cred::password_file::fuzz_check,
    );
}

// The chunked target trusts its reference decoder; these pin the reference
// itself to answers worked out by hand.

#[test]
fn reference_decoder_decodes_a_body_with_extensions_and_trailers() {
    let input = b"5;a=b\r\nhello\r\n1 ;x\r\n!\r\n0\r\nX-Sum: 1\r\n\r\nGET";
    let (verdict, used) = reference_chunked(input, &Limits::default());
    assert_eq!(verdict, Verdict::Body(b"hello!".to_vec()));
    assert_eq!(
        used,
        input.len() - b"GET".len(),
        "stops after the final CRLF"
    );
}

#[test]
fn reference_decoder_rejects_what_rfc_9112_forbids() {
    use ProtocolErrorKind::{BadChunk, BadTrailer};
    let cases: [(&[u8], ProtocolErrorKind); 8] = [
        (b"3\nabc\r\n0\r\n\r\n", BadChunk),     // bare LF in a size line
        (b"0x3\r\nabc\r\n0\r\n\r\n", BadChunk), // hex prefix
        (b"3 \r\nabc\r\n0\r\n\r\n", BadChunk),  // whitespace without an extension
        (b"3;\x01\r\nabc\r\n0\r\n\r\n", BadChunk), // CTL in an extension
        (b"3\r\nabcX\r\n0\r\n\r\n", BadChunk),  // no CRLF after the data
        (b"10000000000000000\r\n", BadChunk),   // size overflows 64 bits
        (b"0\r\nX-A: 1\r\n folded\r\n\r\n", BadTrailer), // obs-fold in trailers
        (b"0\r\nno colon\r\n\r\n", BadTrailer),
    ];
    for (input, kind) in cases {
        let (verdict, _) = reference_chunked(input, &Limits::default());
        assert_eq!(verdict, Verdict::Invalid(kind), "{}", input.escape_ascii());
    }
}

#[test]
fn reference_decoder_waits_for_a_whole_line_before_judging_it() {
    for input in [&b"zz"[..], b"5\r\nhel", b"5\r\nhello\r", b"0\r\nX-A: 1\r\n"] {
        let (verdict, _) = reference_chunked(input, &Limits::default());
        assert_eq!(verdict, Verdict::Incomplete, "{}", input.escape_ascii());
    }
}

#[test]
fn reference_decoder_models_the_limits() {
    let limits = Limits {
        max_chunk_line: 4,
        max_trailer_bytes: 10,
        max_body: 5,
        ..Limits::default()
    };
    let judge = |input: &[u8]| reference_chunked(input, &limits).0;
    // A size line of exactly the limit passes; one byte more is rejected,
    // with or without its CRLF in sight.
    assert_eq!(
        judge(b"1;ab\r\nx\r\n0\r\n\r\n"),
        Verdict::Body(b"x".to_vec())
    );
    let too_long = Verdict::Invalid(ProtocolErrorKind::BadChunk);
    assert_eq!(judge(b"1;abc\r\nx\r\n0\r\n\r\n"), too_long);
    assert_eq!(judge(b"1;abcd"), too_long);
    assert_eq!(judge(b"1;abc"), Verdict::Incomplete);
    // Chunk sizes add up against max_body.
    assert_eq!(
        judge(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"),
        Verdict::Body(b"abcde".to_vec())
    );
    let large = Verdict::Invalid(ProtocolErrorKind::BodyTooLarge);
    assert_eq!(judge(b"3\r\nabc\r\n3\r\n"), large);
    // Trailer lines share max_trailer_bytes, each counted with its CRLF.
    assert_eq!(judge(b"0\r\nA: 1234\r\n\r\n"), Verdict::Body(Vec::new()));
    let bad_trailer = Verdict::Invalid(ProtocolErrorKind::BadTrailer);
    assert_eq!(judge(b"0\r\nA: 12345678\r\n\r\n"), bad_trailer);
    assert_eq!(
        judge(b"0\r\nA: 1\r\nB: 1\r\n\r\n"),
        Verdict::Body(Vec::new())
    );
    assert_eq!(judge(b"0\r\nA: 1\r\nB: 12\r\n\r\n"), bad_trailer);
}
