//! Fuzzes the cache entry decoder.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    redshift_creds_core::fuzzing::entry(data);
});
