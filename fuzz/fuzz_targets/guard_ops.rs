//! Fuzz target `guard_ops`: see `portcullis_fuzz::guard_ops` (src/guard_ops.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| portcullis_fuzz::guard_ops(data));
