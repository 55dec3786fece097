//! Fuzz target `request_head`: see `portcullis_fuzz::request_head` (src/checks.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| portcullis_fuzz::request_head(data));
