//! Fuzz target `password_file`: see
//! `portcullis_core::cred::password_file::fuzz_check`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    portcullis_core::cred::password_file::fuzz_check(data)
});
