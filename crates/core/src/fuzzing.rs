//! Entry points for the fuzz targets in `fuzz/`: each runs one parser on arbitrary input and checks the invariants that must hold for any input. Not part of the supported interface.

use crate::cache::entry::{CachedEndpoint, Stored};
use crate::cache::key::CacheKey;
use crate::credential::Credential;

/// The config parser: never panics, and whatever it accepts has only
/// plain connection names.
pub fn config(text: &str) {
    if let Ok(file) = crate::config_file::parse(text) {
        for name in file.connections.keys() {
            assert!(crate::config_file::check_name(name).is_ok(), "{name:?}");
        }
    }
}

/// The cache entry decoder: never panics, accepts only entries of the
/// key it is given, and what it accepts re-encodes to an equal entry.
pub fn entry(bytes: &[u8]) {
    let key = CacheKey::parse(&"0".repeat(40)).expect("a valid key");
    let other = CacheKey::parse(&"1".repeat(40)).expect("a valid key");
    if let Ok(c) = Credential::decode(bytes, &key) {
        assert!(Credential::decode(bytes, &other).is_err());
        let again = Credential::decode(&c.encode(&key), &key).expect("round trip");
        assert_eq!(
            (&again.db_user, again.expiration),
            (&c.db_user, c.expiration)
        );
        assert_eq!(again.expose_password(), c.expose_password());
    }
    if let Ok(e) = CachedEndpoint::decode(bytes, &key) {
        assert_eq!(
            CachedEndpoint::decode(&e.encode(&key), &key).expect("round trip"),
            e
        );
    }
}

/// The pgpass editor: for any file and any fields, the result holds the
/// new line exactly once, it reads back as the same fields, and every
/// line for another connection is kept byte for byte.
pub fn pgpass(content: &[u8], fields: [&str; 5]) {
    use crate::pgpass::{Line, format_line, parse_key, upsert};
    if fields.iter().any(|f| f.contains(['\n', '\r'])) {
        return; // libpq lines cannot hold newlines; callers never pass them
    }
    if crate::rules::host("h", fields[0]).is_err() || fields[1].parse::<u16>().is_err() {
        return; // hosts and ports are checked before they get here (a host of "#x" would be a comment)
    }
    let line = Line {
        host: fields[0],
        port: fields[1],
        database: fields[2],
        user: fields[3],
        password: fields[4],
    };
    let key = [fields[0], fields[1], fields[2], fields[3]].map(str::to_string);
    let out = upsert(content, &line);
    let formatted = format_line(&line);
    assert_eq!(parse_key(&formatted).as_ref(), Some(&key));
    let lines: Vec<&[u8]> = out.split(|b| *b == b'\n').collect();
    let ours = lines.iter().filter(|l| **l == formatted.as_bytes()).count();
    assert_eq!(ours, 1, "the new line appears once");
    for old in content.split_inclusive(|b| *b == b'\n') {
        let text = std::str::from_utf8(old).unwrap_or("");
        let same_key = parse_key(text.strip_suffix('\n').unwrap_or(text)).as_ref() == Some(&key);
        if !same_key && old.ends_with(b"\n") {
            assert!(
                out.windows(old.len()).any(|w| w == old),
                "a foreign line was lost"
            );
        }
    }
}

/// The host-name parser: never panics, and what it accepts satisfies the
/// cluster, workgroup and region rules.
pub fn host(text: &str) {
    if let Some(info) = crate::endpoint::parse_host(text) {
        assert!(crate::rules::region("r", &info.region).is_ok());
        let named = match info.kind {
            crate::endpoint::HostKind::Cluster => crate::rules::cluster_identifier("c", &info.name),
            crate::endpoint::HostKind::Workgroup => crate::rules::workgroup("w", &info.name),
        };
        assert!(named.is_ok());
    }
}
