//! Fuzz target `connection`: see `portcullis_fuzz::connection` (src/checks.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| portcullis_fuzz::connection(data));
