//! libFuzzer entry for `lakeftpd_fuzz::config` (the body and its property are in
//! src/lib.rs, shared with the stable runner).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| lakeftpd_fuzz::config(data));
