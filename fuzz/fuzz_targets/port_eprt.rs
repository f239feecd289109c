//! libFuzzer entry for `lakeftpd_fuzz::port_eprt` (the body and its property are in
//! src/lib.rs, shared with the stable runner).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| lakeftpd_fuzz::port_eprt(data));
