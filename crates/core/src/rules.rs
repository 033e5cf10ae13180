//! The input rules: what a valid cluster id, user, group, duration and margin look like.

use crate::error::Error;

/// The shortest and longest lifetime GetClusterCredentials will issue, in seconds.
pub const DURATION_RANGE: std::ops::RangeInclusive<i64> = 900..=3600;

/// `Ok` when `ok`, else the error naming `flag`, `value` and `rule`.
fn require(ok: bool, flag: &str, value: &str, rule: impl Into<String>) -> Result<(), Error> {
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(flag, value, rule))
    }
}

/// Whether `value` is `len` bytes long, starts with a character `first` takes, and has
/// only characters `all` takes.
fn shaped(
    value: &str,
    len: std::ops::RangeInclusive<usize>,
    first: impl Fn(char) -> bool,
    all: impl Fn(char) -> bool,
) -> bool {
    len.contains(&value.len()) && value.starts_with(first) && value.chars().all(all)
}

/// A lowercase letter, a digit or a hyphen.
fn lower_digit_hyphen(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'
}

/// Checks a cluster identifier against the AWS rules: 1 to 63 lowercase
/// letters, digits and hyphens, starting with a letter, not ending with a
/// hyphen and without two hyphens in a row.
pub fn cluster_identifier(flag: &str, value: &str) -> Result<(), Error> {
    let rule = "a cluster identifier is 1 to 63 lowercase letters, digits and hyphens, \
                starts with a letter, and has no trailing or double hyphen";
    let ok = shaped(
        value,
        1..=63,
        |c| c.is_ascii_lowercase(),
        lower_digit_hyphen,
    ) && !value.ends_with('-')
        && !value.contains("--");
    require(ok, flag, value, rule)
}

/// Checks a serverless workgroup name: 3 to 64 lowercase letters, digits
/// and hyphens.
pub fn workgroup(flag: &str, value: &str) -> Result<(), Error> {
    let ok = shaped(value, 3..=64, |c| c != '-', lower_digit_hyphen);
    require(
        ok,
        flag,
        value,
        "a workgroup name is 3 to 64 lowercase letters, digits and hyphens, not starting with a hyphen",
    )
}

/// Checks a database user name: 1 to 64 characters, a letter first, then only
/// letters, digits and `_ + . @ -`, and not the reserved name `PUBLIC`.
pub fn db_user(flag: &str, value: &str) -> Result<(), Error> {
    db_identifier(flag, value)?;
    let reserved = value.eq_ignore_ascii_case("public");
    require(
        !reserved,
        flag,
        value,
        "PUBLIC is reserved and cannot be a user",
    )
}

/// Checks a database name with the same character rules as a user name.
pub fn db_name(flag: &str, value: &str) -> Result<(), Error> {
    db_identifier(flag, value)
}

/// Checks one database group: the user-name rules, in lowercase.
pub fn db_group(flag: &str, value: &str) -> Result<(), Error> {
    db_identifier(flag, value)?;
    let upper = value.chars().any(|c| c.is_ascii_uppercase());
    require(!upper, flag, value, "group names must be lowercase")?;
    require(
        value != "public",
        flag,
        value,
        "PUBLIC is reserved and cannot be a group",
    )
}

fn db_identifier(flag: &str, value: &str) -> Result<(), Error> {
    let length = (1..=64).contains(&value.chars().count());
    require(length, flag, value, "must be 1 to 64 characters long")?;
    let separator = value.contains([':', '/']);
    require(!separator, flag, value, "must not contain ':' or '/'")?;
    let allowed = value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_+.@-".contains(c));
    let rule = "may contain only ASCII letters, digits and the characters _ + . @ -";
    require(allowed, flag, value, rule)?;
    let letter = value.starts_with(|c: char| c.is_ascii_alphabetic());
    require(letter, flag, value, "must start with a letter")
}

/// Checks a credential lifetime: 900 to 3600 seconds.
pub fn duration(flag: &str, value: i64) -> Result<(), Error> {
    require(
        DURATION_RANGE.contains(&value),
        flag,
        &value.to_string(),
        "must be from 900 to 3600 seconds (15 to 60 minutes)",
    )
}

/// Checks the refresh margin: zero or more, and below the duration, or a
/// freshly fetched password would already count as near expiry.
pub fn refresh_margin(flag: &str, value: i64, duration: i64) -> Result<(), Error> {
    require(
        (0..duration).contains(&value),
        flag,
        &value.to_string(),
        format!("must be at least 0 and below the duration ({duration} s)"),
    )
}

/// Checks a timeout in seconds: 0 to 3600.
pub fn timeout(flag: &str, value: i64) -> Result<(), Error> {
    require(
        (0..=3600).contains(&value),
        flag,
        &value.to_string(),
        "must be from 0 to 3600 seconds",
    )
}

/// Checks an AWS region name such as `us-east-1` or `cn-north-1`.
pub fn region(flag: &str, value: &str) -> Result<(), Error> {
    let ok = shaped(
        value,
        1..=32,
        |c| c.is_ascii_lowercase(),
        lower_digit_hyphen,
    );
    require(
        ok,
        flag,
        value,
        "a region is lowercase letters, digits and hyphens, such as us-east-1",
    )
}

/// Checks an AWS profile name: 1 to 128 ASCII letters, digits and
/// `_ - . @ + / :`, starting with a letter or digit (so it never reads as an
/// option).
pub fn profile(flag: &str, value: &str) -> Result<(), Error> {
    let ok = shaped(
        value,
        1..=128,
        |c| c.is_ascii_alphanumeric(),
        |c| c.is_ascii_alphanumeric() || "_-.@+/:".contains(c),
    );
    require(
        ok,
        flag,
        value,
        "a profile name is 1 to 128 ASCII letters, digits and _ - . @ + / :, starting with a letter or digit",
    )
}

/// Checks an endpoint URL: `http://` or `https://`, a host, and no spaces or
/// control characters.
pub fn endpoint_url(flag: &str, value: &str) -> Result<(), Error> {
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"));
    let ok = match rest {
        Some(rest) => {
            value.len() <= 2048
                && !rest.is_empty()
                && !rest.starts_with('/')
                && value.chars().all(|c| c.is_ascii_graphic())
        }
        None => false,
    };
    require(
        ok,
        flag,
        value,
        "must be an http:// or https:// URL with a host and no spaces",
    )
}

/// Checks a DNS name such as a custom domain: dot-separated labels of
/// letters, digits and hyphens, each 1 to 63 long, at most 253 in all.
pub fn domain_name(flag: &str, value: &str) -> Result<(), Error> {
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    let ok = (1..=253).contains(&value.len()) && value.split('.').all(label_ok);
    require(
        ok,
        flag,
        value,
        "must be a DNS name: dot-separated labels of letters, digits and hyphens",
    )
}

/// Checks a database host: a DNS name, or an IPv4 or IPv6 address.
pub fn host(flag: &str, value: &str) -> Result<(), Error> {
    if value.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    domain_name(flag, value.strip_suffix('.').unwrap_or(value))
        .map_err(|_| Error::invalid(flag, value, "must be a DNS name or an IP address"))
}

/// Checks a TCP port: 1 to 65535.
pub fn port(flag: &str, value: i64) -> Result<u16, Error> {
    match u16::try_from(value) {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(Error::invalid(
            flag,
            &value.to_string(),
            "must be from 1 to 65535",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule_of(r: Result<(), Error>) -> String {
        match r {
            Ok(()) => "ok".to_string(),
            Err(Error::InvalidInput { rule, .. }) => rule,
            Err(e) => panic!("unexpected error {e}"),
        }
    }

    /// Asserts that `check` takes every one of `good` and refuses every one of `bad`.
    fn sorts(check: fn(&str, &str) -> Result<(), Error>, good: &[&str], bad: &[&str]) {
        for g in good {
            assert_eq!(rule_of(check("--flag", g)), "ok", "{g:?}");
        }
        for b in bad {
            assert_ne!(rule_of(check("--flag", b)), "ok", "{b:?}");
        }
    }

    #[test]
    fn cluster_identifiers() {
        let bad = [
            "",
            "Prod",
            "1abc",
            "a_b",
            "a--b",
            "abc-",
            &"a".repeat(64),
            "a b",
            "é",
        ];
        sorts(
            cluster_identifier,
            &["examplecluster", "a", "prod-1", &"a".repeat(63)],
            &bad,
        );
    }

    #[test]
    fn db_users() {
        for good in [
            "temp_creds_user",
            "alice",
            "a.b+c@d-e",
            "Alice",
            &"u".repeat(64),
        ] {
            assert_eq!(rule_of(db_user("--db-user", good)), "ok", "{good}");
        }
        let cases = [
            ("", "must be 1 to 64 characters long"),
            (&*"u".repeat(65), "must be 1 to 64 characters long"),
            ("IAM:alice", "must not contain ':' or '/'"),
            ("a/b", "must not contain ':' or '/'"),
            ("1alice", "must start with a letter"),
            ("_alice", "must start with a letter"),
            (
                "al ice",
                "may contain only ASCII letters, digits and the characters _ + . @ -",
            ),
            (
                "al;ice",
                "may contain only ASCII letters, digits and the characters _ + . @ -",
            ),
            (
                "alicé",
                "may contain only ASCII letters, digits and the characters _ + . @ -",
            ),
            ("PUBLIC", "PUBLIC is reserved and cannot be a user"),
            ("public", "PUBLIC is reserved and cannot be a user"),
        ];
        for (input, rule) in cases {
            assert_eq!(rule_of(db_user("--db-user", input)), rule, "{input:?}");
        }
    }

    #[test]
    fn db_groups_must_also_be_lowercase() {
        assert_eq!(rule_of(db_group("--db-groups", "analysts")), "ok");
        assert_eq!(
            rule_of(db_group("--db-groups", "Analysts")),
            "group names must be lowercase"
        );
        assert_eq!(
            rule_of(db_group("--db-groups", "a:b")),
            "must not contain ':' or '/'"
        );
    }

    #[test]
    fn durations_and_margins() {
        assert_eq!(rule_of(duration("--duration-seconds", 900)), "ok");
        assert_eq!(rule_of(duration("--duration-seconds", 3600)), "ok");
        for bad in [899, 3601, 0, -1, i64::MAX, i64::MIN] {
            assert_ne!(rule_of(duration("--duration-seconds", bad)), "ok", "{bad}");
        }
        assert_eq!(rule_of(refresh_margin("--refresh-margin", 0, 900)), "ok");
        assert_eq!(rule_of(refresh_margin("--refresh-margin", 899, 900)), "ok");
        assert_eq!(
            rule_of(refresh_margin("--refresh-margin", 900, 900)),
            "must be at least 0 and below the duration (900 s)"
        );
        assert_ne!(rule_of(refresh_margin("--refresh-margin", -1, 900)), "ok");
    }

    #[test]
    fn hosts_and_ports() {
        for good in [
            "127.0.0.1",
            "::1",
            "db.example.com",
            "localhost",
            "a.b.c.",
            "fe80::1",
        ] {
            assert_eq!(rule_of(host("--host", good)), "ok", "{good}");
        }
        for bad in ["", "a b", "a:b:c:zz", "host;rm", "a..b", "-x.com", "\u{0}x"] {
            assert_eq!(
                rule_of(host("--host", bad)),
                "must be a DNS name or an IP address",
                "{bad:?}"
            );
        }
        assert_eq!(port("--port", 5439).unwrap(), 5439);
        for bad in [0, -1, 65536, i64::MAX] {
            assert!(port("--port", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn regions_profiles_endpoints_and_domains() {
        sorts(
            region,
            &["us-east-1", "cn-northwest-1"],
            &["", "US-EAST-1", "us east", "us-east-1;rm", "1us"],
        );
        sorts(
            profile,
            &["dev-admin"],
            &["", "a b", "a\nb", "a\0b", "-rf", "ünï", "$(x)"],
        );
        sorts(
            endpoint_url,
            &["http://127.0.0.1:5000", "https://redshift.example.com/"],
            &[
                "",
                "127.0.0.1:5000",
                "ftp://x",
                "http://",
                "http://a b",
                "http:///x",
            ],
        );
        sorts(
            domain_name,
            &["db.example.com"],
            &["", "a..b", "-a.com", "a_b.com", "a b.com", &"a".repeat(64)],
        );
        sorts(
            workgroup,
            &["abc", "my-group-1", &"w".repeat(64)],
            &["ab", "-abc", "Abc", "a_b", &"w".repeat(65)],
        );
    }
}
