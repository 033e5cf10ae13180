//! `redshift-creds` and `redshift-creds-aws`: the front answers hits alone and hands everything else over, unchanged.

use crate::support::counting::CountingServer;
use crate::support::{Sandbox, contract, password, stderr};
use std::path::Path;

fn args(url: &str) -> Vec<&str> {
    crate::support::get_args(url, &[])
}

/// A copy of the front alone in a directory, without redshift-creds-aws.
fn lone_front(dir: &Path) -> std::path::PathBuf {
    let lone = dir.join(format!("redshift-creds{}", std::env::consts::EXE_SUFFIX));
    std::fs::copy(crate::support::bin(), &lone).unwrap();
    lone
}

#[test]
fn the_helper_sits_beside_the_front() {
    let helper = crate::support::bin().with_file_name(format!(
        "redshift-creds-aws{}",
        std::env::consts::EXE_SUFFIX
    ));
    assert!(helper.is_file(), "{} is built", helper.display());
    // Both are the same program to a user: the same version and help.
    let sb = Sandbox::new();
    let front = sb.run(&["--version"]);
    let full = sb.command(&helper, &["--version"]).output().unwrap();
    assert_eq!(front.stdout, full.stdout);
    assert!(String::from_utf8_lossy(&front.stdout).starts_with("redshift-creds "));
}

#[test]
fn a_hit_needs_no_helper_and_a_miss_without_it_fails_clearly() {
    let server = CountingServer::start();
    let url = server.url();
    let sb = Sandbox::new();
    let first = password(&sb.run(&args(&url)));
    assert_eq!(server.calls(), 1, "the miss went through the helper");

    let bare = tempfile::tempdir().unwrap();
    let lone = lone_front(bare.path());
    let hit = sb.command(&lone, &args(&url)).output().unwrap();
    assert_eq!(
        password(&hit),
        first,
        "a hit is answered without the helper"
    );
    assert!(stderr(&hit).is_empty(), "{}", stderr(&hit));

    let mut miss = args(&url);
    miss[4] = "bob";
    let out = sb.command(&lone, &miss).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("redshift-creds: error: cannot run ")
            && err.contains("redshift-creds-aws")
            && err.contains("reinstall"),
        "{err}"
    );
    assert_eq!(server.calls(), 1, "no API call without the helper");
}

#[test]
fn handed_over_errors_read_as_the_fronts_own() {
    let sb = Sandbox::new();
    // A usage error is reported by the full program, under the same name.
    let out = sb.run(&["get", "--cluster-identifier", "Bad_Id", "--db-user", "u"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("redshift-creds: error: "), "{err}");
    // clap's own errors too.
    let out = sb.run(&["get", "--no-such-flag"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("--no-such-flag"), "{err}");
    assert!(!err.contains("redshift-creds-aws"), "{err}");
}

#[test]
fn verbose_runs_are_told_in_full_once() {
    let server = CountingServer::start();
    let url = server.url();
    let sb = Sandbox::new();
    let mut a = args(&url);
    a.push("-v");
    let miss = sb.run(&a);
    contract(&miss);
    let hit = sb.run(&a);
    contract(&hit);
    let log = stderr(&hit);
    assert_eq!(
        log.matches("outcome=Hit").count(),
        1,
        "one story per run: {log}"
    );
    assert_eq!(server.calls(), 1);
}

#[cfg(unix)]
#[test]
fn a_symlink_to_the_front_still_finds_the_helper() {
    let server = CountingServer::start();
    let url = server.url();
    let sb = Sandbox::new();
    let links = tempfile::tempdir().unwrap();
    let link = links.path().join("redshift-creds");
    std::os::unix::fs::symlink(crate::support::bin(), &link).unwrap();
    let miss = sb.command(&link, &args(&url)).output().unwrap();
    assert_eq!(password(&miss), "counting-pw-1");
    assert_eq!(
        server.calls(),
        1,
        "the miss reached the API through the helper"
    );
}

/// The front never waits on the refresh lock: a miss goes straight to the
/// helper, so `--lock-timeout` is waited out once, not once per program.
#[cfg(unix)]
#[test]
fn a_held_lock_is_waited_for_once() {
    let Some(flock) = crate::support::require_tool("flock", "FLOCK") else {
        return;
    };
    let server = CountingServer::start();
    let url = server.url();
    // Learn the entry's key (the lock file's name) from a first sandbox,
    // seeing the second sandbox's AWS files: their paths are in the key.
    let sb = Sandbox::new();
    let first = Sandbox::new();
    password(
        &first
            .cmd(&args(&url))
            .env("AWS_CONFIG_FILE", sb.path().join("aws-config"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                sb.path().join("aws-credentials"),
            )
            .output()
            .unwrap(),
    );
    let lock_name = first
        .cache_files()
        .into_iter()
        .find(|n| n.ends_with(".lock"))
        .expect("a lock file");

    // In the second sandbox, another process holds that lock throughout.
    sb.make_cache_dir(0o700);
    let lock = sb.cache_dir().join(&lock_name);
    let ready = sb.path().join("held");
    let mut holder = std::process::Command::new(flock)
        .arg(&lock)
        .args(["sh", "-c", "touch \"$0\"; sleep 60"])
        .arg(&ready)
        .spawn()
        .unwrap();
    while !ready.exists() {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let mut a = args(&url);
    a.extend(["--lock-timeout", "4"]);
    let started = std::time::Instant::now();
    let out = sb.run(&a);
    let took = started.elapsed();
    holder.kill().unwrap();
    holder.wait().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    assert_eq!(server.calls(), 1, "no call while the lock is held");
    // One wait of 4 s; two would be 8 s.
    assert!(
        took >= std::time::Duration::from_secs(4) && took < std::time::Duration::from_secs(7),
        "waited {took:?}"
    );
}

/// A pgpass write that finds its lock held waits `--lock-timeout` once (in
/// `redshift-creds-aws`), not once in the front and again in the helper: the
/// front takes no lock.
#[cfg(unix)]
#[test]
fn a_held_pgpass_lock_is_waited_out_once() {
    let server = CountingServer::start();
    let url = server.url();
    let sb = Sandbox::new();
    let pgpass = sb.path().join("pgpass");
    let mut a = vec!["pgpass"];
    a.extend(crate::support::cred_args(
        &url,
        &["--host", "db.example.com", "--lock-timeout", "2"],
    ));
    // A first run caches the password (so the front would answer it) and
    // makes the lock file.
    let out = sb.cmd(&a).env("PGPASSFILE", &pgpass).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let _held = crate::pgpass::hold_the_pgpass_lock(&sb);
    let start = std::time::Instant::now();
    let out = sb.cmd(&a).env("PGPASSFILE", &pgpass).output().unwrap();
    let took = start.elapsed();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        took >= std::time::Duration::from_secs(2) && took < std::time::Duration::from_millis(3500),
        "waited {took:?} for a 2 s lock timeout"
    );
}
