//! Fuzzes the cache entry decoder.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    redshift_creds::fuzzing::entry(data);
});
