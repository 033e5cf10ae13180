//! Bad input gets one clear message, exit 2, nothing on stdout, no API call, and the cache untouched.

use crate::support::counting::CountingServer;
use crate::support::{Sandbox, password, stderr};

fn base(url: &str) -> Vec<String> {
    crate::support::get_args(url, &[])
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// Replaces a flag's value in the base arguments, or appends the flag.
fn with(url: &str, flag: &str, value: Option<&str>) -> Vec<String> {
    let mut args = base(url);
    match args.iter().position(|a| a == flag) {
        Some(i) => match value {
            Some(v) => args[i + 1] = v.to_string(),
            None => {
                args.remove(i + 1);
                args.remove(i);
            }
        },
        None => {
            args.push(flag.to_string());
            if let Some(v) = value {
                args.push(v.to_string());
            }
        }
    }
    args
}

/// Each bad flag: (flag, value or None to remove it, what the message must contain).
fn bad_flags<'a>(long: &'a str, very_long: &'a str) -> Vec<(&'a str, Option<&'a str>, &'a str)> {
    vec![
        ("--duration-seconds", Some("60"), "--duration-seconds"),
        ("--duration-seconds", Some("3601"), "from 900 to 3600"),
        ("--duration-seconds", Some("-1"), "from 900 to 3600"),
        (
            "--duration-seconds",
            Some("99999999999999999999"),
            "--duration-seconds",
        ),
        ("--duration-seconds", Some("abc"), "--duration-seconds"),
        ("--duration-seconds", Some(""), "--duration-seconds"),
        ("--db-user", Some(""), "--db-user"),
        ("--db-user", Some("PUBLIC"), "PUBLIC is reserved"),
        (
            "--db-user",
            Some("IAM:alice"),
            "must not contain ':' or '/'",
        ),
        ("--db-user", Some("a/b"), "must not contain ':' or '/'"),
        ("--db-user", Some("1alice"), "must start with a letter"),
        ("--db-user", Some(long), "1 to 64 characters"),
        ("--db-user", Some(very_long), "1 to 64 characters"),
        ("--db-user", Some("al ice"), "only ASCII letters, digits"),
        ("--db-user", Some("a\nb"), "only ASCII letters, digits"),
        ("--db-user", Some("álïce"), "only ASCII letters, digits"),
        ("--db-user", Some("$(touch pwned)"), "--db-user"),
        (
            "--db-user",
            Some("a;rm -rf x"),
            "only ASCII letters, digits",
        ),
        ("--db-user", None, "missing --db-user"),
        ("--db-groups", Some("Admins"), "must be lowercase"),
        ("--db-groups", Some("a:b"), "must not contain"),
        ("--db-groups", Some(""), "--db-groups"),
        ("--db-name", Some("my db"), "--db-name"),
        (
            "--cluster-identifier",
            Some("Bad_Cluster"),
            "--cluster-identifier",
        ),
        ("--cluster-identifier", Some(""), "--cluster-identifier"),
        ("--cluster-identifier", Some("a--b"), "--cluster-identifier"),
        ("--cluster-identifier", Some(long), "--cluster-identifier"),
        (
            "--cluster-identifier",
            Some("clüster"),
            "--cluster-identifier",
        ),
        ("--cluster-identifier", None, "missing --cluster-identifier"),
        ("--refresh-margin", Some("900"), "below the duration"),
        ("--refresh-margin", Some("-5"), "--refresh-margin"),
        ("--lock-timeout", Some("-1"), "--lock-timeout"),
        ("--lock-timeout", Some("3601"), "--lock-timeout"),
        ("--api-timeout", Some("0"), "--api-timeout"),
        ("--region", Some("us east"), "--region"),
        ("--region", Some("US-EAST-1"), "--region"),
        ("--endpoint-url", Some("ftp://x"), "--endpoint-url"),
        ("--endpoint-url", Some("127.0.0.1:5000"), "--endpoint-url"),
        ("--profile", Some(""), "--profile"),
        ("--profile", Some("a b"), "--profile"),
        (
            "--custom-domain-name",
            Some("bad_domain"),
            "--custom-domain-name",
        ),
        ("--cache", Some("sometimes"), "--cache"),
        ("--output", Some("xml"), "--output"),
        ("--no-such-flag", None, "--no-such-flag"),
    ]
}

#[test]
fn every_bad_input_is_refused_cleanly() {
    let server = CountingServer::start();
    let url = server.url();
    let sb = Sandbox::new();
    // A cached entry for the valid request, which no bad input may disturb.
    let base_owned = base(&url);
    let base_args: Vec<&str> = base_owned.iter().map(|s| &**s).collect();
    let cached = password(&sb.cmd(&base_args).output().unwrap());
    let entries_before = sb.entries();
    assert_eq!(server.calls(), 1);

    let long = "a".repeat(65);
    let very_long = "x".repeat(100_000);
    let cases = bad_flags(&long, &very_long);
    let mut failures = Vec::new();
    for (flag, value, expect) in &cases {
        let args = with(&url, flag, *value);
        let argv: Vec<&str> = args.iter().map(|s| &**s).collect();
        let out = sb.run(&argv);
        let err = stderr(&out);
        let ok = out.status.code() == Some(2)
            && out.stdout.is_empty()
            && err.lines().count() == 1
            && err.starts_with("redshift-creds: error: ")
            && err.contains(expect)
            && !err.contains("panicked")
            && err.len() < 600;
        if !ok {
            failures.push(format!(
                "{flag} {value:?}: exit {:?}, stderr {err:?}",
                out.status.code()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(server.calls(), 1, "no bad input reached the API");
    assert_eq!(sb.entries(), entries_before, "the cache is untouched");
    assert_eq!(password(&sb.cmd(&base_args).output().unwrap()), cached);
}

#[test]
fn a_bad_cache_mode_in_the_environment_is_refused() {
    let server = CountingServer::start();
    let url = server.url();
    let sb = Sandbox::new();
    let mut args = base(&url);
    args.truncate(args.len() - 2); // drop --cache file
    let argv: Vec<&str> = args.iter().map(|s| &**s).collect();
    let out = sb
        .cmd(&argv)
        .env("REDSHIFT_CREDS_CACHE", "sometimes")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert_eq!(
        stderr(&out),
        "redshift-creds: error: invalid REDSHIFT_CREDS_CACHE \"sometimes\": must be one of auto, keyring, file, none\n"
    );
    assert_eq!(server.calls(), 0);
}

#[test]
fn help_and_version_touch_nothing() {
    let sb = Sandbox::new();
    for args in [&["--help"][..], &["--version"], &["get", "--help"]] {
        let out = sb
            .cmd(args)
            .env("REDSHIFT_CREDS_CACHE_DIR", "/nonexistent/x")
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}");
        assert!(!out.stdout.is_empty());
        assert!(out.stderr.is_empty());
    }
    assert!(!std::path::Path::new("/nonexistent/x").exists());
    assert!(sb.cache_files().is_empty());
}

#[test]
fn missing_aws_credentials_are_explained() {
    let server = CountingServer::start();
    let url = server.url();
    let sb = Sandbox::new();
    let args = base(&url);
    let argv: Vec<&str> = args.iter().map(|s| &**s).collect();
    let out = sb
        .cmd(&argv)
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("no usable AWS credentials"), "{err}");
    assert!(err.contains("sign in again"), "{err}");
    assert_eq!(server.calls(), 0);
}
