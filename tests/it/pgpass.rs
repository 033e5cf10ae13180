//! `pgpass`: the line written into the pgpass file, once and under `--watch`.

use crate::support::counting::{Behaviour, CountingServer};
use crate::support::{Sandbox, stderr};

fn args<'a>(url: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    crate::support::cred_args(url, extra)
}

fn cmd<'a>(sub: &'a str, rest: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![sub];
    v.extend_from_slice(rest);
    v
}

#[test]
fn pgpass_inserts_then_replaces_its_line_and_keeps_the_rest() {
    let server = CountingServer::start();
    let url = server.url();
    let sb = Sandbox::new();
    let pgpass = sb.path().join("pgpass");
    let others = b"# keep me\n*:*:*:*:wildcard\nother.example.com:5432:db:bob:pw\\:x\n";
    std::fs::write(&pgpass, others).unwrap();
    let a = cmd(
        "pgpass",
        &args(
            &url,
            &[
                "--host",
                "db.example.com",
                "--db-name",
                "dev",
                "--refresh-margin",
                "899",
            ],
        ),
    );
    let run = |sb: &Sandbox| sb.cmd(&a).env("PGPASSFILE", &pgpass).output().unwrap();
    let out = run(&sb);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(out.stdout.is_empty(), "pgpass prints nothing on stdout");
    let mut expected = b"db.example.com:5439:dev:IAM\\:alice:counting-pw-1\n".to_vec();
    expected.extend_from_slice(others);
    assert_eq!(std::fs::read(&pgpass).unwrap(), expected);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&pgpass).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    // With a margin of 899 s the password is due for refresh after a second.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert!(run(&sb).status.success());
    let mut expected = b"db.example.com:5439:dev:IAM\\:alice:counting-pw-2\n".to_vec();
    expected.extend_from_slice(others);
    assert_eq!(
        std::fs::read(&pgpass).unwrap(),
        expected,
        "replaced in place, the rest byte for byte"
    );
}

/// `pgpass --watch` for db.example.com with this refresh margin, writing to
/// `pgpass`; stderr is captured.
fn spawn_watch(
    sb: &Sandbox,
    url: &str,
    margin: &str,
    pgpass: &std::path::Path,
) -> std::process::Child {
    let a = cmd(
        "pgpass",
        &args(
            url,
            &[
                "--host",
                "db.example.com",
                "--refresh-margin",
                margin,
                "--watch",
            ],
        ),
    );
    sb.cmd(&a)
        .env("PGPASSFILE", pgpass)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn pgpass_watch_rewrites_the_line_before_expiry() {
    let server = CountingServer::start();
    let url = server.url();
    let sb = Sandbox::new();
    let pgpass = sb.path().join("pgpass");
    let mut child = spawn_watch(&sb, &url, "898", &pgpass);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut seen = Vec::new();
    while std::time::Instant::now() < deadline {
        if let Ok(text) = std::fs::read_to_string(&pgpass) {
            if !seen.contains(&text) {
                seen.push(text);
            }
            if seen.len() >= 3 {
                break;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(seen.len() >= 3, "the line was rewritten twice: {seen:?}");
    for (i, text) in seen.iter().take(3).enumerate() {
        assert_eq!(
            text,
            &format!("db.example.com:5439:*:IAM\\:alice:counting-pw-{}\n", i + 1)
        );
    }
}

#[test]
fn pgpass_watch_backs_off_after_a_failed_refresh() {
    let server = CountingServer::start();
    let url = server.url();
    let sb = Sandbox::new();
    let pgpass = sb.path().join("pgpass");
    // A 900 s password with an 899 s margin is due for refresh after 1 s;
    // every refresh fails, so the still-valid password keeps being served.
    let mut child = spawn_watch(&sb, &url, "899", &pgpass);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while server.calls() < 1 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    server.set_behaviour(Behaviour::ClusterNotFound);
    // Long enough for a busy loop to have called several times.
    std::thread::sleep(std::time::Duration::from_secs(5));
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        server.calls(),
        2,
        "one call, then one failed refresh and a pause: {}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read_to_string(&pgpass).unwrap(),
        "db.example.com:5439:*:IAM\\:alice:counting-pw-1\n",
        "the still-valid line stays"
    );
}

#[test]
fn pgpass_says_which_line_it_wrote_and_when_the_next_refresh_is_due() {
    let server = CountingServer::start();
    let url = server.url();
    let sb = Sandbox::new();
    let pgpass = sb.path().join("pgpass");
    let a = cmd(
        "pgpass",
        &args(&url, &["--host", "db.example.com", "--db-name", "dev"]),
    );
    let out = sb.cmd(&a).env("PGPASSFILE", &pgpass).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    let want = format!(
        "redshift-creds: pgpass: wrote db.example.com:5439:dev:IAM:alice to {}; next refresh due ",
        pgpass.display()
    );
    assert!(err.starts_with(&want), "{err}");
    // A 900 s password with the default 300 s margin: due in about 10 minutes.
    assert!(err.contains("(in 9m") || err.contains("(in 10m"), "{err}");
    assert!(
        err.contains("run pgpass again (or use --watch) then"),
        "{err}"
    );
    assert!(!err.contains("counting-pw"), "never the password: {err}");

    // -q says nothing; the line is still written.
    std::fs::remove_file(&pgpass).unwrap();
    let mut quiet = a.clone();
    quiet.push("-q");
    let out = sb.cmd(&quiet).env("PGPASSFILE", &pgpass).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
    assert!(
        std::fs::read_to_string(&pgpass)
            .unwrap()
            .starts_with("db.example.com:5439:dev:")
    );
}

#[test]
fn pgpass_watch_says_one_line_per_refresh() {
    let server = CountingServer::start();
    let url = server.url();
    let sb = Sandbox::new();
    let pgpass = sb.path().join("pgpass");
    let mut child = spawn_watch(&sb, &url, "898", &pgpass);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while server.calls() < 3 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // Let the third write's line reach stderr.
    std::thread::sleep(std::time::Duration::from_millis(300));
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    let notes: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("pgpass: wrote"))
        .collect();
    assert!(notes.len() >= 3, "one line per refresh: {err}");
    assert!(
        notes.iter().all(|l| l.ends_with("refreshing then")),
        "{err}"
    );
    assert!(!err.contains("counting-pw"), "never the password: {err}");
}
