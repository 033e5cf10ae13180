//! `get` against the counting test server: concurrency, stale-on-error, lock timeout and API faults.

use crate::support::counting::{Behaviour, CountingServer};
use crate::support::{Sandbox, contract, password, stderr};
use std::process::Stdio;
use std::time::Duration;

fn args<'a>(url: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    crate::support::get_args(url, extra)
}

#[test]
fn thirty_two_concurrent_processes_on_a_cold_cache_make_one_call() {
    let server = CountingServer::start();
    server.set_delay(Duration::from_millis(300));
    let url = server.url();
    let sb = Sandbox::new();
    let outputs = sb.run_many(&args(&url, &[]), 32);
    let passwords: Vec<String> = outputs.iter().map(password).collect();
    assert_eq!(server.calls(), 1, "exactly one API call");
    assert!(
        passwords.iter().all(|p| p == "counting-pw-1"),
        "{passwords:?}"
    );
    for o in &outputs {
        assert!(stderr(o).is_empty(), "{}", stderr(o));
    }
}

#[test]
fn stale_on_error_prints_the_cached_password_with_a_warning() {
    let server = CountingServer::start();
    let url = server.url();
    let sb = Sandbox::new();
    // Issue a password that is already inside the default 300 s margin.
    server.set_expires_in(Some(200));
    let first = password(&sb.run(&args(&url, &[])));
    server.set_behaviour(Behaviour::Throttle);
    // In the foreground: in the background, a failed refresh says nothing.
    let out = sb.run(&args(&url, &["--no-refresh-ahead"]));
    assert_eq!(password(&out), first);
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("redshift-creds: warning: GetClusterCredentials failed"),
        "{err}"
    );
    assert!(err.contains("Rate exceeded"), "{err}");
    assert!(
        err.contains("using the cached password, which expires in"),
        "{err}"
    );
    assert!(server.calls() >= 2, "the refresh was tried");
    // Once the API answers again, the entry is replaced.
    server.set_behaviour(Behaviour::Ok);
    server.set_expires_in(None);
    let fresh = password(&sb.run(&args(&url, &["--no-refresh-ahead"])));
    assert_ne!(fresh, first);
}

#[test]
fn an_expired_entry_and_a_failing_api_is_a_clean_error() {
    let server = CountingServer::start();
    server.set_behaviour(Behaviour::ServerError);
    let url = server.url();
    let sb = Sandbox::new();
    let out = sb.run(&args(&url, &["--api-timeout", "5"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("for cluster \"examplecluster\", user \"alice\" in us-east-1"),
        "{err}"
    );
    assert!(
        server.calls() > 1,
        "5xx is retried: {} calls",
        server.calls()
    );
}

#[test]
fn lock_timeout_exits_3() {
    let server = CountingServer::start();
    server.set_delay(Duration::from_secs(4));
    let url = server.url();
    let sb = Sandbox::new();
    let holder = sb
        .cmd(&args(&url, &[]))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the holder is inside the API call, that is, holds the lock.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while server.calls() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the holder never called the API"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let waiter = sb.run(&args(&url, &["--lock-timeout", "1"]));
    assert_eq!(waiter.status.code(), Some(3), "{}", stderr(&waiter));
    assert!(waiter.stdout.is_empty());
    let err = stderr(&waiter);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("timed out after 1 s waiting for the lock"),
        "{err}"
    );
    assert!(err.contains(".lock"), "{err}");
    let held = holder.wait_with_output().unwrap();
    assert_eq!(password(&held), "counting-pw-1");
    assert_eq!(server.calls(), 1, "the waiter made no call");
}

#[test]
fn a_malformed_response_is_an_error_and_leaves_the_cache_alone() {
    let server = CountingServer::start();
    let url = server.url();
    let sb = Sandbox::new();
    server.set_expires_in(Some(70));
    // An entry that is nearly expired: a refresh is due, and it still works.
    sb.run(&args(&url, &[]));
    let before = sb.entries();
    server.set_behaviour(Behaviour::Malformed);
    let out = sb.run(&args(
        &url,
        &[
            "--refresh-margin",
            "899",
            "--api-timeout",
            "5",
            "--no-refresh-ahead",
        ],
    ));
    // Stale-on-error applies: the old password is still valid for a few seconds.
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("could not be read"),
        "{}",
        stderr(&out)
    );
    assert_eq!(sb.entries(), before, "the cache is untouched");
}

#[test]
fn expired_aws_credentials_say_to_sign_in_again() {
    let server = CountingServer::start();
    server.set_behaviour(Behaviour::ExpiredToken);
    let url = server.url();
    let sb = Sandbox::new();
    let out = sb.run(&args(&url, &["--profile", "dev"]));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("AWS rejected the credentials: ExpiredToken"),
        "{err}"
    );
    assert!(err.contains("aws sso login --profile dev"), "{err}");
}

#[test]
fn the_json_names_the_user_and_an_rfc3339_expiry() {
    let server = CountingServer::start();
    let url = server.url();
    let sb = Sandbox::new();
    let c = contract(&sb.run(&args(&url, &["--duration-seconds", "3600"])));
    assert_eq!(c["DbUser"], "IAM:alice");
    let exp = humantime::parse_rfc3339(c["Expiration"].as_str().unwrap()).unwrap();
    let left = exp
        .duration_since(std::time::SystemTime::now())
        .unwrap()
        .as_secs();
    assert!((3590..=3600).contains(&left), "{left}");
}

/// SECURITY.md: with `-vv` and `RUST_LOG=trace`, no crate but ours logs
/// below INFO (the SDK's runtime and config loader included: at debug and
/// trace they show requests and responses), and no password shows.
#[test]
fn the_log_shows_no_sdk_event_below_info_and_no_password() {
    let server = CountingServer::start();
    let url = server.url();
    for (verbose, rust_log) in [("-v", None), ("-vv", Some("trace")), ("-v", Some("debug"))] {
        // A cold cache each time: the SDK is loaded and called.
        let sb = Sandbox::new();
        let mut cmd = sb.cmd(&args(&url, &[verbose]));
        if let Some(spec) = rust_log {
            cmd.env("RUST_LOG", spec);
        }
        let out = cmd.output().unwrap();
        let err = stderr(&out);
        assert!(out.status.success(), "{err}");
        assert!(err.contains("redshift_creds"), "the log is on: {err}");
        for line in err.lines() {
            let low = line.contains(" DEBUG ") || line.contains(" TRACE ");
            for sdk in [
                "aws_runtime",
                "aws_config",
                "aws_smithy",
                "aws_sdk",
                "hyper",
                "rustls",
            ] {
                assert!(
                    !(low && line.contains(sdk)),
                    "{verbose} {rust_log:?}: an SDK event below INFO: {line}"
                );
            }
        }
        assert!(
            !err.contains("counting-pw-"),
            "a password in the log:\n{err}"
        );
        assert!(
            !err.contains("testing-secret-key-value"),
            "the secret key in the log"
        );
    }
    assert_eq!(server.calls(), 3);
}
