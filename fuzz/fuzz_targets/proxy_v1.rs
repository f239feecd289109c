//! libFuzzer entry for `lakeftpd_fuzz::proxy_v1` (the body and its property are in
//! src/lib.rs, shared with the stable runner).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| lakeftpd_fuzz::proxy_v1(data));
