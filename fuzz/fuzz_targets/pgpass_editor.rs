//! Fuzzes the pgpass editor: the first five NUL-separated pieces are the fields, the rest is the file.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(6, |b| *b == 0);
    let mut fields = [""; 5];
    for f in fields.iter_mut() {
        match parts.next().map(std::str::from_utf8) {
            Some(Ok(s)) => *f = s,
            _ => return,
        }
    }
    let content = parts.next().unwrap_or(&[]);
    redshift_creds_core::fuzzing::pgpass(content, fields);
});
