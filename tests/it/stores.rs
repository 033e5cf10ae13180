//! Real keyrings: kernel keyutils under `keyctl session -`, and gnome-keyring's Secret Service under dbus-run-session.

use crate::support::counting::CountingServer;
use crate::support::{Sandbox, bin, password, require_tool, stderr};

fn get_args(url: &str, user: &str, cache: &str) -> Vec<String> {
    [
        "get",
        "--cluster-identifier",
        "examplecluster",
        "--db-user",
        user,
        "--region",
        "us-east-1",
        "--endpoint-url",
        url,
        "--cache",
        cache,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// `keyctl session - redshift-creds ARGS`: each run in its own new session keyring.
fn in_new_session(
    sb: &Sandbox,
    keyctl: &std::path::Path,
    prelude: &str,
    args: &[String],
) -> std::process::Output {
    let script = format!("{prelude}exec \"$0\" \"$@\"");
    let mut full = vec!["session", "-", "sh", "-c", &script];
    let bin = bin();
    let bin = bin.to_str().unwrap();
    full.push(bin);
    full.extend(args.iter().map(|s| &**s));
    sb.command(keyctl, &full).output().unwrap()
}

/// Strips keyctl's own "Joined session keyring" line.
fn our_stderr(o: &std::process::Output) -> String {
    without_keyctl_lines(&stderr(o))
}

fn without_keyctl_lines(text: &str) -> String {
    text.lines()
        .filter(|l| !l.starts_with("Joined session keyring"))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Runs `script` with `sh` under `dbus-run-session` (a private session bus):
/// `$0` is the binary, `$1` the output directory, then `extra`, then `args`.
fn in_dbus_session(
    sb: &Sandbox,
    dbus_run_session: &std::path::Path,
    script: &str,
    out_dir: &std::path::Path,
    extra: &[&str],
    args: &[String],
) -> std::process::Output {
    let bin = bin();
    let mut full = vec![
        "--",
        "sh",
        "-c",
        script,
        bin.to_str().unwrap(),
        out_dir.to_str().unwrap(),
    ];
    full.extend_from_slice(extra);
    full.extend(args.iter().map(|s| &**s));
    sb.command(dbus_run_session, &full).output().unwrap()
}

#[test]
fn keyutils_a_second_session_finds_the_first_ones_entry() {
    let Some(keyctl) = require_tool("keyctl", "KEYCTL") else {
        return;
    };
    let server = CountingServer::start();
    let sb = Sandbox::new();
    // A user name unique to this run: the persistent keyring outlives the test.
    let user = format!("k{}", std::process::id());
    let args = get_args(&server.url(), &user, "keyring");

    let first = in_new_session(&sb, &keyctl, "", &args);
    assert!(first.status.success(), "{}", stderr(&first));
    assert_eq!(our_stderr(&first), "");
    let second = in_new_session(&sb, &keyctl, "", &args);
    assert!(second.status.success(), "{}", stderr(&second));
    assert_eq!(password(&second), password(&first));
    assert_eq!(
        server.calls(),
        1,
        "the second session read the keyring, not the API"
    );
    let entries = sb.entries();
    assert!(
        entries.is_empty(),
        "nothing went to the file store: {entries:?}"
    );
}

#[test]
fn keyutils_refusing_access_falls_back_under_auto_and_fails_under_keyring() {
    let Some(keyctl) = require_tool("keyctl", "KEYCTL") else {
        return;
    };
    let server = CountingServer::start();
    let sb = Sandbox::new();
    let user = format!("r{}", std::process::id());
    // A session keyring this process may not search or write: keyutils refuses.
    let refuse = "keyctl setperm @s 0 >/dev/null 2>&1 && ";

    let auto = in_new_session(
        &sb,
        &keyctl,
        refuse,
        &get_args(&server.url(), &user, "auto"),
    );
    assert!(auto.status.success(), "{}", stderr(&auto));
    let warning = our_stderr(&auto);
    assert_eq!(warning.lines().count(), 1, "one warning: {warning}");
    assert!(
        warning.starts_with("redshift-creds: warning: no OS keyring can be used"),
        "{warning}"
    );
    assert!(warning.contains("kernel keyutils"), "{warning}");
    assert!(warning.contains("caching in private files"), "{warning}");
    assert_eq!(sb.entries().len(), 1, "the file store holds the entry");
    // A hit (answered by redshift-creds itself) says it once too.
    let hit = in_new_session(
        &sb,
        &keyctl,
        refuse,
        &get_args(&server.url(), &user, "auto"),
    );
    assert!(hit.status.success(), "{}", stderr(&hit));
    assert_eq!(our_stderr(&hit), warning, "the same one warning on a hit");
    assert_eq!(server.calls(), 1, "the second call was a hit");

    let forced = in_new_session(
        &sb,
        &keyctl,
        refuse,
        &get_args(&server.url(), &user, "keyring"),
    );
    assert_eq!(forced.status.code(), Some(4), "{}", stderr(&forced));
    assert!(forced.stdout.is_empty());
    let err = our_stderr(&forced);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("redshift-creds: error: the keyring cache cannot be used"),
        "{err}"
    );
    assert_eq!(
        server.calls(),
        1,
        "neither the fallback hit nor the refusal called the API again"
    );
}

#[test]
fn secret_service_a_second_process_finds_the_first_ones_entry() {
    let Some(dbus_run_session) = require_tool("dbus-run-session", "DBUS_RUN_SESSION") else {
        return;
    };
    let Some(_) = require_tool("gnome-keyring-daemon", "GNOME_KEYRING_DAEMON") else {
        return;
    };
    let Some(_) = require_tool("secret-tool", "SECRET_TOOL") else {
        return;
    };
    let server = CountingServer::start();
    let sb = Sandbox::new();
    let user = format!("s{}", std::process::id());
    let args = get_args(&server.url(), &user, "keyring");
    let out_dir = sb.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    // Start gnome-keyring with an unlocked login collection, then run the
    // binary twice as separate processes on the same session bus.
    let script = r#"
        set -e
        out="$1"; shift
        printf 'test-keyring-password' | gnome-keyring-daemon --unlock --components=secrets >/dev/null
        "$0" "$@" >"$out/1.out" 2>"$out/1.err"; echo $? >"$out/1.rc"
        "$0" "$@" >"$out/2.out" 2>"$out/2.err"; echo $? >"$out/2.rc"
        secret-tool search --all service redshift-creds >"$out/search" 2>&1 || true
    "#;
    let run = in_dbus_session(&sb, &dbus_run_session, script, &out_dir, &[], &args);
    assert!(run.status.success(), "dbus-run-session: {}", stderr(&run));
    let read = |name: &str| std::fs::read_to_string(out_dir.join(name)).unwrap();
    assert_eq!(read("1.rc").trim(), "0", "first: {}", read("1.err"));
    assert_eq!(read("2.rc").trim(), "0", "second: {}", read("2.err"));
    assert_eq!(
        read("1.err"),
        "",
        "no fallback warning: the Secret Service was used"
    );
    assert_eq!(read("2.err"), "");
    let first: serde_json::Value = serde_json::from_str(&read("1.out")).unwrap();
    let second: serde_json::Value = serde_json::from_str(&read("2.out")).unwrap();
    assert_eq!(first["DbPassword"], second["DbPassword"]);
    assert_eq!(
        server.calls(),
        1,
        "the second process read the Secret Service, not the API"
    );
    let search = read("search");
    assert!(
        search.contains("attribute.service = redshift-creds"),
        "{search}"
    );
    assert!(sb.entries().is_empty(), "nothing went to the file store");
}

#[test]
fn a_locked_secret_service_falls_back_to_files_under_auto() {
    let Some(dbus_run_session) = require_tool("dbus-run-session", "DBUS_RUN_SESSION") else {
        return;
    };
    let Some(_) = require_tool("gnome-keyring-daemon", "GNOME_KEYRING_DAEMON") else {
        return;
    };
    let server = CountingServer::start();
    let sb = Sandbox::new();
    let user = format!("h{}", std::process::id());
    let args = get_args(&server.url(), &user, "auto");
    let out_dir = sb.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    // gnome-keyring without --unlock: no unlocked collection, so storing an
    // item needs an unlock prompt, which fails here (no prompter). The call
    // must neither hang (a 5 s deadline guards every Secret Service call)
    // nor fail the run.
    let script = r#"
        out="$1"; shift
        gnome-keyring-daemon --start --components=secrets >/dev/null 2>&1
        "$0" "$@" >"$out/1.out" 2>"$out/1.err"; echo $? >"$out/1.rc"
    "#;
    let started = std::time::Instant::now();
    let run = in_dbus_session(&sb, &dbus_run_session, script, &out_dir, &[], &args);
    assert!(run.status.success(), "dbus-run-session: {}", stderr(&run));
    let read = |name: &str| std::fs::read_to_string(out_dir.join(name)).unwrap();
    assert_eq!(read("1.rc").trim(), "0", "{}", read("1.err"));
    let err = read("1.err");
    assert_eq!(err.lines().count(), 1, "one warning: {err}");
    assert!(
        err.starts_with("redshift-creds: warning: the Secret Service keyring refused"),
        "{err}"
    );
    assert!(err.contains("caching in private files"), "{err}");
    let out: serde_json::Value = serde_json::from_str(&read("1.out")).unwrap();
    assert_eq!(out["DbPassword"], "counting-pw-1");
    assert_eq!(sb.entries().len(), 1, "the file store holds the entry");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "bounded by the 5 s deadline"
    );
}

#[test]
fn a_secret_service_that_never_answers_is_a_refusal_not_a_hang() {
    let Some(dbus_run_session) = require_tool("dbus-run-session", "DBUS_RUN_SESSION") else {
        return;
    };
    let Some(black_hole) = require_tool("dbus-test-tool", "DBUS_TEST_TOOL") else {
        return;
    };
    let Some(_) = require_tool("keyctl", "KEYCTL") else {
        return;
    };
    let server = CountingServer::start();
    let sb = Sandbox::new();
    let user = format!("b{}", std::process::id());
    let args = get_args(&server.url(), &user, "auto");
    let out_dir = sb.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    // A process owns org.freedesktop.secrets and never replies (a hung
    // daemon), and the session keyring refuses too, so `auto` must end up in
    // the file store: twice, a miss and then a hit.
    let script = r#"
        out="$1"; tool="$2"; shift 2
        "$tool" black-hole --name=org.freedesktop.secrets &
        hole=$!
        i=0
        until dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
              org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets 2>/dev/null | grep -q true; do
            i=$((i + 1)); [ "$i" -gt 200 ] && { echo "the black hole did not start" >"$out/setup"; exit 1; }
            sleep 0.05
        done
        for n in 1 2; do
            keyctl session - sh -c 'keyctl setperm @s 0 >/dev/null 2>&1; exec "$0" "$@"' "$0" "$@" \
                >"$out/$n.out" 2>"$out/$n.err"
            echo $? >"$out/$n.rc"
        done
        kill "$hole"
    "#;
    let started = std::time::Instant::now();
    let run = in_dbus_session(
        &sb,
        &dbus_run_session,
        script,
        &out_dir,
        &[black_hole.to_str().unwrap()],
        &args,
    );
    let read = |name: &str| std::fs::read_to_string(out_dir.join(name)).unwrap_or_default();
    assert!(
        run.status.success(),
        "dbus-run-session: {}{}",
        stderr(&run),
        read("setup")
    );
    let ours = |name: &str| without_keyctl_lines(&read(name));
    for n in ["1", "2"] {
        assert_eq!(
            read(&format!("{n}.rc")).trim(),
            "0",
            "run {n}: {}",
            read(&format!("{n}.err"))
        );
        let err = ours(&format!("{n}.err"));
        assert_eq!(err.lines().count(), 1, "run {n}, one warning: {err}");
        assert!(
            err.starts_with("redshift-creds: warning: no OS keyring can be used")
                && err.contains("Secret Service: ")
                && err.contains("kernel keyutils")
                && err.contains("caching in private files"),
            "run {n}: {err}"
        );
        let out: serde_json::Value = serde_json::from_str(&read(&format!("{n}.out"))).unwrap();
        assert_eq!(out["DbPassword"], "counting-pw-1", "run {n}");
    }
    assert_eq!(
        server.calls(),
        1,
        "the second run was a hit from the file store"
    );
    assert_eq!(sb.entries().len(), 1, "the file store holds the entry");
    // Each Secret Service call waits 5 s at most: no hang.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "bounded by the deadline: {:?}",
        started.elapsed()
    );
}
