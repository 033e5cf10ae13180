//! Refresh ahead: inside the refresh margin the front prints the cached password at once and one detached background process refreshes it.

use crate::support::counting::CountingServer;
use crate::support::{Sandbox, get_args, password, stderr};
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

/// 900 s passwords with a 898 s margin: an entry is inside the margin about
/// two seconds after it was fetched.
const MARGIN: &[&str] = &["--refresh-margin", "898"];
/// How long the fake API takes to answer once the entry is inside the margin.
const DELAY: Duration = Duration::from_secs(2);

/// A sandbox whose entry (`counting-pw-1`) is inside the refresh margin, and
/// a server that now answers after [`DELAY`].
fn inside_the_margin(extra: &[&str]) -> (CountingServer, Sandbox) {
    let server = CountingServer::start();
    let sb = Sandbox::new();
    let url = server.url();
    let first = sb.run(&get_args(&url, &[MARGIN, extra].concat()));
    assert_eq!(password(&first), "counting-pw-1");
    std::thread::sleep(Duration::from_millis(2100));
    server.set_delay(DELAY);
    (server, sb)
}

/// Runs `get` with the margin and `extra`, timed.
fn timed_get(server: &CountingServer, sb: &Sandbox, extra: &[&str]) -> (Output, Duration) {
    let url = server.url();
    let start = Instant::now();
    let out = sb.run(&get_args(&url, &[MARGIN, extra].concat()));
    (out, start.elapsed())
}

/// The `redshift-creds-aws` processes (live or zombie) started for this
/// sandbox, by pid: their environment names its cache directory.
fn refreshers(sb: &Sandbox) -> Vec<u32> {
    let needle = sb.cache_dir().into_os_string().into_encoded_bytes();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        let env = std::fs::read(entry.path().join("environ")).unwrap_or_default();
        if comm.starts_with("redshift-creds")
            && env.windows(needle.len()).any(|w| w == needle.as_slice())
        {
            found.push(pid);
        }
    }
    found
}

/// A process's state letter and session id, from /proc/PID/stat.
fn state_and_session(pid: u32) -> Option<(char, u32)> {
    let fields = stat_fields(pid)?;
    Some((fields[0].chars().next()?, fields[3].parse().ok()?))
}

/// A process's parent.
fn parent(pid: u32) -> Option<u32> {
    stat_fields(pid)?[1].parse().ok()
}

/// The fields of /proc/PID/stat after the command name.
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    Some(rest.split(' ').map(str::to_string).collect())
}

/// Waits up to `limit` for `done`.
fn wait_for(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    done()
}

/// Waits until the API was called `calls` times and the process `pid` is
/// gone: exited and reaped, neither left running nor a zombie.
fn settle(server: &CountingServer, calls: usize, pid: u32) {
    assert!(
        wait_for(Duration::from_secs(10), || server.calls() >= calls),
        "the background refresh calls the API ({} calls)",
        server.calls()
    );
    assert!(
        wait_for(Duration::from_secs(15), || state_and_session(pid).is_none()),
        "the background refresh {pid} exits and is reaped: {:?}",
        state_and_session(pid)
    );
}

#[test]
fn inside_the_margin_the_cached_password_comes_at_once_and_the_next_call_gets_the_new_one() {
    let (server, sb) = inside_the_margin(&[]);
    let (out, elapsed) = timed_get(&server, &sb, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(password(&out), "counting-pw-1", "the cached password");
    assert!(
        elapsed < Duration::from_millis(1500),
        "answered at hit speed, without waiting for the {DELAY:?} API call: {elapsed:?}"
    );
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));

    // One detached refresh runs: in a session of its own, not our child.
    let running = refreshers(&sb);
    assert_eq!(running.len(), 1, "one background refresh: {running:?}");
    let pid = running[0];
    let (_, session) = state_and_session(pid).expect("running");
    assert_eq!(session, pid, "the refresh leads its own session");

    settle(&server, 2, pid);
    assert!(refreshers(&sb).is_empty(), "nothing left behind");
    let (out, _) = timed_get(&server, &sb, &[]);
    assert_eq!(password(&out), "counting-pw-2", "the refreshed password");
    assert_eq!(server.calls(), 2, "a hit makes no call");
}

#[test]
fn exec_inside_the_margin_runs_the_command_at_once_and_leaves_it_no_child() {
    use std::io::BufRead;
    let (server, sb) = inside_the_margin(&[]);
    let url = server.url();
    let mut a = vec!["exec"];
    a.extend(crate::support::cred_args(&url, MARGIN));
    // The command replaces the front, and never reaps a child.
    let script = "echo \"$PGPASSWORD\"; exec sleep 5";
    a.extend(["--host", "127.0.0.1", "--", "sh", "-c", script]);
    let start = Instant::now();
    let mut child = sb
        .cmd(&a)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let elapsed = start.elapsed();
    assert_eq!(line.trim_end(), "counting-pw-1", "the cached password");
    assert!(
        elapsed < Duration::from_millis(1500),
        "at once: {elapsed:?}"
    );
    let running = refreshers(&sb);
    assert_eq!(running.len(), 1, "one background refresh: {running:?}");
    let pid = running[0];
    assert_ne!(
        parent(pid),
        Some(child.id()),
        "the refresh is not the command's child"
    );
    settle(&server, 2, pid);
    let _ = child.kill();
    child.wait().unwrap();
}

#[test]
fn a_burst_of_50_inside_the_margin_makes_one_api_call() {
    let (server, sb) = inside_the_margin(&[]);
    let url = server.url();
    let a = get_args(&url, MARGIN);
    let outputs = sb.run_many(&a, 50);
    for o in &outputs {
        assert!(o.status.success(), "{}", stderr(o));
        // A call that comes after the refresh finished gets the new one.
        assert!(
            ["counting-pw-1", "counting-pw-2"].contains(&password(o).as_str()),
            "{}",
            password(o)
        );
    }
    assert!(
        outputs
            .iter()
            .filter(|o| password(o) == "counting-pw-1")
            .count()
            > 0,
        "the cached password was answered"
    );
    let running = refreshers(&sb);
    assert!(running.len() <= 1, "at most one refresh: {running:?}");
    if let Some(&pid) = running.first() {
        settle(&server, 2, pid);
    }
    assert!(
        wait_for(Duration::from_secs(10), || server.calls() >= 2),
        "the refresh happened"
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(server.calls(), 2, "one API call for the whole burst");
}

#[test]
fn no_refresh_ahead_waits_for_the_new_password() {
    let (server, sb) = inside_the_margin(&[]);
    let (out, elapsed) = timed_get(&server, &sb, &["--no-refresh-ahead"]);
    assert_eq!(password(&out), "counting-pw-2");
    assert!(elapsed >= DELAY, "waited for the API: {elapsed:?}");
    assert_eq!(server.calls(), 2);
    assert!(refreshers(&sb).is_empty(), "no background refresh");
}

/// Writes a config file with connection `c` saying `refresh_ahead = false`.
fn config_without_refresh_ahead(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("config.toml");
    std::fs::write(&path, "[connections.c]\nrefresh_ahead = false\n").unwrap();
    path
}

#[test]
fn refresh_ahead_false_in_the_config_file_waits_for_the_new_password() {
    let server = CountingServer::start();
    let sb = Sandbox::new();
    let config = config_without_refresh_ahead(sb.path());
    let url = server.url();
    let mut a = get_args(&url, MARGIN);
    a.insert(1, "c");
    let run = || {
        let start = Instant::now();
        let out = sb
            .cmd(&a)
            .env("REDSHIFT_CREDS_CONFIG", &config)
            .output()
            .unwrap();
        (out, start.elapsed())
    };
    assert_eq!(password(&run().0), "counting-pw-1");
    std::thread::sleep(Duration::from_millis(2100));
    server.set_delay(DELAY);
    let (out, elapsed) = run();
    assert_eq!(password(&out), "counting-pw-2");
    assert!(elapsed >= DELAY, "waited for the API: {elapsed:?}");
    assert!(refreshers(&sb).is_empty(), "no background refresh");
}

#[test]
fn an_expired_password_is_never_printed_ahead() {
    let (server, sb) = inside_the_margin(&[]);
    // The entry, as if its password had expired a second ago.
    let (name, bytes) = sb.entries().remove(0);
    let mut entry: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    entry["expiration"] = (now - 1).into();
    std::fs::write(sb.cache_dir().join(name), entry.to_string()).unwrap();
    let (out, elapsed) = timed_get(&server, &sb, &[]);
    assert_eq!(password(&out), "counting-pw-2", "not the expired one");
    assert!(elapsed >= DELAY, "waited for the API: {elapsed:?}");
    assert!(refreshers(&sb).is_empty(), "no background refresh");
}

#[test]
fn with_no_cache_there_is_nothing_to_refresh_ahead() {
    let server = CountingServer::start();
    let sb = Sandbox::new();
    let url = server.url();
    let mut a = get_args(&url, MARGIN);
    let at = a.iter().position(|x| *x == "file").unwrap();
    a[at] = "none";
    assert_eq!(password(&sb.run(&a)), "counting-pw-1");
    assert_eq!(password(&sb.run(&a)), "counting-pw-2");
    assert!(refreshers(&sb).is_empty(), "no background refresh");
    assert_eq!(server.calls(), 2);
}

/// Waits until the API was called `calls` times and no background refresh
/// of this sandbox is left.
fn settle_all(server: &CountingServer, calls: usize, sb: &Sandbox) {
    assert!(
        wait_for(Duration::from_secs(10), || server.calls() >= calls),
        "the background refresh calls the API ({} calls)",
        server.calls()
    );
    assert!(
        wait_for(Duration::from_secs(15), || refreshers(sb).is_empty()),
        "the background refresh exits"
    );
}

#[test]
fn a_failed_background_refresh_is_told_by_the_next_call_that_serves_the_password() {
    use crate::support::counting::Behaviour;
    let (server, sb) = inside_the_margin(&[]);
    server.set_delay(Duration::ZERO);
    server.fail_next(1, Behaviour::ExpiredToken);
    let (out, _) = timed_get(&server, &sb, &[]);
    assert_eq!(password(&out), "counting-pw-1");
    assert!(
        stderr(&out).is_empty(),
        "nothing failed yet: {}",
        stderr(&out)
    );
    settle_all(&server, 2, &sb);

    // The record: private, beside the entry, and no secret in it.
    let failed: Vec<String> = sb
        .cache_files()
        .into_iter()
        .filter(|n| n.ends_with(".failed"))
        .collect();
    assert_eq!(failed.len(), 1, "{:?}", sb.cache_files());
    let path = sb.cache_dir().join(&failed[0]);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let record = std::fs::read_to_string(&path).unwrap();
    assert!(!record.contains("counting-pw"), "{record}");

    // The next call serves the cached password, exit 0, and says why the
    // refresh failed, when, and how long the password stays valid.
    let (out, _) = timed_get(&server, &sb, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(password(&out), "counting-pw-1");
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(
            "redshift-creds: warning: refreshing the cached password in the background failed "
        ),
        "{err}"
    );
    for part in [" s ago (at ", "GetClusterCredentials", "still valid for "] {
        assert!(err.contains(part), "{part}: {err}");
    }

    // That call started a refresh that works: the record goes, and so does the warning.
    settle_all(&server, 3, &sb);
    assert!(
        !sb.cache_files().iter().any(|n| n.ends_with(".failed")),
        "{:?}",
        sb.cache_files()
    );
    let (out, _) = timed_get(&server, &sb, &[]);
    // The failed call was the second: the new password is the third.
    assert_eq!(password(&out), "counting-pw-3");
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
}
