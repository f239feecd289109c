//! libFuzzer entry for `lakeftpd_fuzz::spool_sidecar` (the body and its property are in
//! src/lib.rs, shared with the stable runner).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| lakeftpd_fuzz::spool_sidecar(data));
