//! Fuzzes the Redshift host-name parser.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        redshift_creds_core::fuzzing::host(text);
    }
});
