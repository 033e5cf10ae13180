//! `get` against a hostile AWS: every answer is checked before it is cached, printed or handed on, and nothing from outside reaches the terminal raw.

use crate::support::counting::{Answer, Behaviour, CountingServer};
use crate::support::{Sandbox, contract, serverless_get, stderr, stdout};
use std::process::Output;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The run failed with exit 1, one clear message naming `field`, nothing on
/// stdout, nothing cached, and `list` still works.
fn refused(sb: &Sandbox, out: &Output, field: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(out.stdout.is_empty(), "{}", stdout(out));
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!("the response's {field} was refused")),
        "{err}"
    );
    assert!(!err.contains('\u{1b}') && !err.contains('\u{7}'), "{err:?}");
    assert!(
        sb.entries().is_empty(),
        "nothing cached: {:?}",
        sb.cache_files()
    );
    let list = sb.run(&["list"]);
    assert!(list.status.success(), "{}", stderr(&list));
    assert_eq!(stdout(&list), "no cached entries\n");
}

#[test]
fn a_far_future_serverless_expiration_is_refused_without_a_panic() {
    let server = CountingServer::start();
    let url = server.url();
    let sb = Sandbox::new();
    for expiration in [1_000_000_000_000, i64::from(i32::MAX) * 1000, now() + 3700] {
        server.set_answer(Answer {
            expiration: Some(expiration),
            ..Answer::default()
        });
        let out = sb.run(&serverless_get(Some(&url)));
        assert_eq!(out.status.code(), Some(1), "{expiration}: {}", stderr(&out));
        refused(&sb, &out, "Expiration");
        assert!(
            stderr(&out).contains("between 60 s and 3660 s from now"),
            "{}",
            stderr(&out)
        );
    }
}

#[test]
fn an_expired_or_nearly_expired_password_is_refused() {
    let server = CountingServer::start();
    let url = server.url();
    let sb = Sandbox::new();
    for expiration in [now() - 10, now() + 30, 0] {
        server.set_answer(Answer {
            expiration: Some(expiration),
            ..Answer::default()
        });
        refused(
            &sb,
            &sb.run(&crate::support::get_args(&url, &[])),
            "Expiration",
        );
    }
}

#[test]
fn a_huge_or_control_laden_db_user_is_refused() {
    let server = CountingServer::start();
    let url = server.url();
    let sb = Sandbox::new();
    let huge = "u".repeat(5 * 1024 * 1024);
    for user in [
        huge.as_str(),
        "IAM:a\nb",
        "IAM:\u{1b}]0;pwned\u{7}",
        "IAM:a\0b",
    ] {
        server.set_answer(Answer {
            db_user: Some(user.to_string()),
            ..Answer::default()
        });
        refused(&sb, &sb.run(&serverless_get(Some(&url))), "DbUser");
    }
    server.set_answer(Answer {
        db_user: Some("u".repeat(129)),
        ..Answer::default()
    });
    refused(&sb, &sb.run(&crate::support::get_args(&url, &[])), "DbUser");
}

#[test]
fn a_password_with_whitespace_controls_or_too_long_is_refused() {
    let server = CountingServer::start();
    let url = server.url();
    let sb = Sandbox::new();
    let long = "p".repeat(1025);
    for pw in [
        "a b",
        "pw\nlocalhost:5439:*:x:y",
        "p\u{1b}w",
        "p\0w",
        "pä",
        long.as_str(),
    ] {
        server.set_answer(Answer {
            db_password: Some(pw.to_string()),
            ..Answer::default()
        });
        refused(&sb, &sb.run(&serverless_get(Some(&url))), "DbPassword");
    }
}

#[test]
fn a_sound_answer_at_the_limits_is_accepted() {
    let server = CountingServer::start();
    let url = server.url();
    let sb = Sandbox::new();
    let pw = format!("{}~", "P".repeat(1023));
    server.set_answer(Answer {
        db_user: Some(format!("IAM:{}", "é".repeat(62))),
        db_password: Some(pw.clone()),
        expiration: Some(now() + 3600),
    });
    let c = contract(&sb.run(&serverless_get(Some(&url))));
    assert_eq!(c["DbPassword"], pw.as_str());
    assert_eq!(sb.entries().len(), 1);
}

#[test]
fn control_characters_in_an_aws_error_message_are_escaped() {
    let server = CountingServer::start();
    server.set_behaviour(Behaviour::HostileError);
    let url = server.url();
    let sb = Sandbox::new();
    let out = sb.run(&serverless_get(Some(&url)));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!err.contains('\u{1b}') && !err.contains('\u{7}'), "{err:?}");
    assert!(
        err.contains("not authorized \\u{1b}]0;pwned\\u{7}"),
        "{err}"
    );
    assert!(
        err.contains("redshift-serverless:GetCredentials"),
        "the hint names the API that was called: {err}"
    );
}
