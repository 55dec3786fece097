//! Fuzz target `chunked`: see `portcullis_fuzz::chunked` (src/checks.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| portcullis_fuzz::chunked(data));
