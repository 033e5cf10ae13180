//! Reliability and security through the real binary: load, API and process faults, bad stores, the clock, secrets.

use crate::support::counting::{Behaviour, CountingServer};
use crate::support::{Sandbox, contract, password, stderr};
use std::process::Stdio;
use std::time::{Duration, Instant};

fn args<'a>(url: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    crate::support::get_args(url, extra)
}

/// The one cached entry's file, decoded enough to check it.
fn entry(sb: &Sandbox) -> serde_json::Value {
    let entries = sb.entries();
    assert_eq!(
        entries.len(),
        1,
        "{:?}",
        entries.iter().map(|e| &e.0).collect::<Vec<_>>()
    );
    serde_json::from_slice(&entries[0].1).unwrap()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn load_200_concurrent_in_5_rounds_make_one_call_per_refresh_window() {
    let server = CountingServer::start();
    let url = server.url();
    let sb = Sandbox::new();
    // 900 s passwords with a 898 s margin: each entry is fresh for about two
    // seconds, so every round below starts in a new refresh window, and
    // waits for its refresh (refresh ahead has its own tests).
    let a = args(&url, &["--refresh-margin", "898", "--no-refresh-ahead"]);
    for round in 1..=5 {
        let outputs = sb.run_many(&a, 200);
        let failed: Vec<String> = outputs
            .iter()
            .filter(|o| !o.status.success())
            .map(stderr)
            .collect();
        assert!(
            failed.is_empty(),
            "round {round}: {} failed: {:?}",
            failed.len(),
            &failed[..failed.len().min(3)]
        );
        let expected = format!("counting-pw-{round}");
        assert!(
            outputs.iter().all(|o| password(o) == expected),
            "round {round}: all got {expected}"
        );
        assert_eq!(server.calls(), round, "one API call per refresh window");
        let e = entry(&sb);
        assert!(
            e["expiration"].as_i64().unwrap() > now(),
            "the stored entry is valid"
        );
        assert_eq!(e["password"], expected);
        std::thread::sleep(Duration::from_millis(2100));
    }
}

#[test]
fn throttling_and_5xx_are_retried_with_backoff() {
    let server = CountingServer::start();
    let url = server.url();
    let sb = Sandbox::new();
    server.fail_next(2, Behaviour::Throttle);
    let out = sb.run(&args(&url, &[]));
    assert_eq!(password(&out), "counting-pw-3", "{}", stderr(&out));
    assert_eq!(server.calls(), 3, "two throttled attempts, then success");

    let sb = Sandbox::new();
    server.fail_next(2, Behaviour::ServerError);
    let out = sb.run(&args(&url, &[]));
    assert_eq!(password(&out), "counting-pw-6", "{}", stderr(&out));
}

#[test]
fn a_server_that_never_answers_is_a_clear_timeout_within_the_limit() {
    let server = CountingServer::start();
    server.set_delay(Duration::from_secs(60));
    let url = server.url();
    let sb = Sandbox::new();
    let start = Instant::now();
    let out = sb.run(&args(&url, &["--api-timeout", "2"]));
    let took = start.elapsed();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("the API did not answer in time"), "{err}");
    assert!(err.contains("raise --api-timeout"), "{err}");
    // The limit is the limit: well under the server's 60 s (slack for a loaded CI machine).
    assert!(took < Duration::from_secs(15), "took {took:?}");
}

#[test]
fn sigkill_of_the_lock_holder_mid_refresh_lets_the_others_finish() {
    let server = CountingServer::start();
    server.set_delay(Duration::from_secs(30));
    let url = server.url();
    let sb = Sandbox::new();
    let mut holder = sb
        .cmd(&args(&url, &[]))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.calls() == 0 {
        assert!(Instant::now() < deadline, "the holder never called the API");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Others queue behind the holder, then it dies without unlocking.
    let waiters: Vec<_> = (0..4)
        .map(|_| {
            sb.cmd(&args(&url, &[]))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    server.set_delay(Duration::ZERO);
    holder.kill().unwrap(); // SIGKILL
    holder.wait().unwrap();
    let outputs: Vec<_> = waiters
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let passwords: Vec<String> = outputs.iter().map(password).collect();
    assert!(
        passwords.iter().all(|p| p == "counting-pw-2"),
        "{passwords:?}"
    );
    assert_eq!(
        server.calls(),
        2,
        "the dead holder's call, then exactly one more"
    );
}

#[test]
fn a_kill_during_a_write_leaves_the_old_entry_or_the_new_one() {
    let server = CountingServer::start();
    let url = server.url();
    let sb = Sandbox::new();
    let a = args(&url, &["--refresh-margin", "899"]);
    sb.run(&a);
    for i in 0..40u64 {
        // Each run refreshes (the margin makes the entry stale after a second),
        // and is killed at a different moment.
        std::thread::sleep(Duration::from_millis(1001));
        let mut child = sb
            .cmd(&a)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_micros(500 * (i % 20)));
        let _ = child.kill();
        let _ = child.wait();
        let e = entry(&sb);
        assert!(
            e["password"].as_str().unwrap().starts_with("counting-pw-"),
            "{e}"
        );
        assert!(
            sb.cache_files()
                .iter()
                .all(|f| !f.ends_with(".tmp") || f.starts_with('.'))
        );
    }
    // Whatever happened, the cache still serves: a refresh or a hit.
    let out = sb.run(&a);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn an_unusable_lock_directory_fails_a_demanded_cache_and_runs_uncached_under_auto() {
    let server = CountingServer::start();
    let url = server.url();
    let sb = Sandbox::new();
    let not_a_dir = sb.path().join("file-not-dir");
    std::fs::write(&not_a_dir, b"").unwrap();
    let out = sb
        .cmd(&args(&url, &[]))
        .env("REDSHIFT_CREDS_CACHE_DIR", &not_a_dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    assert!(
        stderr(&out).contains("the file cache cannot be used"),
        "{}",
        stderr(&out)
    );

    let mut auto = args(&url, &[]);
    auto.truncate(auto.len() - 2);
    let out = sb
        .cmd(&auto)
        .env("REDSHIFT_CREDS_CACHE_DIR", &not_a_dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("running without a cache"), "{err}");
    assert!(
        err.lines()
            .all(|l| l.starts_with("redshift-creds: warning: ")),
        "{err}"
    );
    assert_eq!(
        server.calls(),
        1,
        "the demanded cache failed before any call"
    );
}

#[test]
fn bad_entries_are_misses_and_get_overwritten() {
    let server = CountingServer::start();
    let url = server.url();
    let sb = Sandbox::new();
    let a = args(&url, &[]);
    sb.run(&a);
    let (name, good) = sb.entries().remove(0);
    let path = sb.cache_dir().join(&name);
    let key = name.trim_end_matches(".json");
    let far_future = format!(
        "{{\"format\":1,\"key\":\"{key}\",\"db_user\":\"IAM:alice\",\"password\":\"forged\",\"expiration\":{}}}",
        now() + 7200
    );
    let expired = format!(
        "{{\"format\":1,\"key\":\"{key}\",\"db_user\":\"IAM:alice\",\"password\":\"old\",\"expiration\":{}}}",
        now() - 10
    );
    let other_key = String::from_utf8(good.clone())
        .unwrap()
        .replace(key, &"0".repeat(40));
    let older_format = String::from_utf8(good.clone())
        .unwrap()
        .replace("\"format\":1", "\"format\":0");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("garbage", b"\x00\xffnot json at all".to_vec()),
        ("empty", Vec::new()),
        ("older format", older_format.into_bytes()),
        ("another key's entry", other_key.into_bytes()),
        ("too large", vec![b' '; 100_000]),
        ("expired", expired.into_bytes()),
        ("too far in the future", far_future.into_bytes()),
    ];
    for (i, (what, bytes)) in cases.into_iter().enumerate() {
        std::fs::write(&path, &bytes).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let out = sb.run(&a);
        assert_eq!(
            password(&out),
            format!("counting-pw-{}", i + 2),
            "{what}: a miss, refetched"
        );
        assert!(stderr(&out).is_empty(), "{what}: {}", stderr(&out));
        let stored = entry(&sb);
        assert_eq!(
            stored["password"],
            format!("counting-pw-{}", i + 2),
            "{what}: overwritten"
        );
    }
}

#[test]
fn an_entry_others_can_read_is_refused_with_a_message_and_replaced() {
    let server = CountingServer::start();
    let url = server.url();
    let sb = Sandbox::new();
    let a = args(&url, &[]);
    sb.run(&a);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let (name, _) = sb.entries().remove(0);
        let path = sb.cache_dir().join(&name);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let out = sb.run(&a);
        assert_eq!(password(&out), "counting-pw-2");
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains("is readable by other users (mode 644)"),
            "{err}"
        );
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let dir_mode = std::fs::metadata(sb.cache_dir())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dir_mode, 0o700);
    }
}

#[test]
fn no_secret_in_logs_lock_files_or_file_names() {
    let server = CountingServer::start();
    let url = server.url();
    let sb = Sandbox::new();
    let mut a = args(&url, &["-vv", "--refresh-margin", "899"]);
    let cold = sb.cmd(&a).env("RUST_LOG", "trace").output().unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    let refresh = sb.cmd(&a).env("RUST_LOG", "trace").output().unwrap();
    a.retain(|x| *x != "899" && *x != "--refresh-margin");
    let hit = sb.cmd(&a).env("RUST_LOG", "trace").output().unwrap();
    for (what, out) in [("cold", &cold), ("refresh", &refresh), ("hit", &hit)] {
        let err = stderr(out);
        assert!(out.status.success(), "{what}: {err}");
        assert!(!err.is_empty(), "{what}: the log is on");
        assert!(
            !err.contains("counting-pw-"),
            "{what}: password in the log:\n{err}"
        );
        assert!(
            !err.contains("testing-secret-key-value"),
            "{what}: secret key in the log"
        );
    }
    for name in sb.cache_files() {
        assert!(
            !name.contains("counting-pw") && !name.contains("alice"),
            "{name}"
        );
        if name.ends_with(".lock") {
            assert!(
                std::fs::read(sb.cache_dir().join(&name))
                    .unwrap()
                    .is_empty(),
                "lock files are empty"
            );
        }
        if name.ends_with(".meta") {
            let text = std::fs::read_to_string(sb.cache_dir().join(&name)).unwrap();
            assert!(
                !text.contains("counting-pw"),
                "no secret in the list record: {text}"
            );
        }
    }
    assert_eq!(contract(&hit)["DbPassword"], "counting-pw-2");
}

/// The one `<key>.json` in the sandbox's cache directory, as its key.
#[cfg(unix)]
fn only_key(sb: &Sandbox) -> String {
    let keys: Vec<String> = sb
        .cache_files()
        .into_iter()
        .filter_map(|n| n.strip_suffix(".json").map(str::to_string))
        .collect();
    assert_eq!(keys.len(), 1, "{keys:?}");
    keys[0].clone()
}

#[cfg(unix)]
#[test]
fn a_symlink_planted_at_the_list_record_is_replaced_not_followed() {
    let server = CountingServer::start();
    let url = server.url();
    let sb = Sandbox::new();
    // The refresh in the foreground, so that the run below saves.
    let a = crate::support::get_args(&url, &["--refresh-margin", "899", "--no-refresh-ahead"]);
    contract(&sb.run(&a));
    let key = only_key(&sb);
    let victim = sb.path().join("victim");
    std::fs::write(&victim, b"precious\n").unwrap();
    let meta = sb.cache_dir().join(format!("{key}.meta"));
    std::fs::remove_file(&meta).unwrap();
    std::os::unix::fs::symlink(&victim, &meta).unwrap();
    // Due for refresh after a second: the next run saves, and writes the record.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    contract(&sb.run(&a));
    assert_eq!(server.calls(), 2, "the second run refreshed");
    assert_eq!(
        std::fs::read(&victim).unwrap(),
        b"precious\n",
        "the link's target is untouched"
    );
    let kind = std::fs::symlink_metadata(&meta).unwrap().file_type();
    assert!(kind.is_file(), "the record is a file of its own again");
}

#[cfg(unix)]
#[test]
fn cache_directories_are_made_0700_whatever_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let server = CountingServer::start();
    let url = server.url();
    let sb = Sandbox::new();
    let deep = sb.path().join("a/b/cache");
    let bin = crate::support::bin();
    let mut args = vec!["-c", "umask 000; exec \"$0\" \"$@\"", bin.to_str().unwrap()];
    let get = crate::support::get_args(&url, &[]);
    args.extend(get.iter().copied());
    let out = sb
        .command("sh", &args)
        .env("REDSHIFT_CREDS_CACHE_DIR", &deep)
        .output()
        .unwrap();
    contract(&out);
    for d in [sb.path().join("a"), sb.path().join("a/b"), deep.clone()] {
        let mode = std::fs::metadata(&d).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{}", d.display());
    }
}
