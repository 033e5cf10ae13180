//! Real keyrings: kernel keyutils under `keyctl session -`, and gnome-keyring's Secret Service under dbus-run-session.

use crate::support::counting::CountingServer;
use crate::support::{Sandbox, bin, password, require_tool, stderr};
use std::path::PathBuf;
use std::process::Output;

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

/// `keyctl session - PROGRAM ARGS`: each run in its own new session keyring.
fn in_new_session(
    sb: &Sandbox,
    keyctl: &std::path::Path,
    program: &std::path::Path,
    args: &[String],
) -> Output {
    let mut full = vec!["session", "-", "sh", "-c", "exec \"$0\" \"$@\""];
    full.push(program.to_str().unwrap());
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
/// `$0` is the binary, `$1` the output directory, then `extra`, then `args`;
/// with `deny`, keyutils is refused for everything in it.
fn in_dbus_session_with(
    sb: &Sandbox,
    dbus_run_session: &std::path::Path,
    script: &str,
    out_dir: &std::path::Path,
    extra: &[&str],
    args: &[String],
    deny: bool,
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
    let mut cmd = sb.command(dbus_run_session, &full);
    if deny {
        deny_keyutils(&mut cmd);
    }
    cmd.output().unwrap()
}

/// One test on a private session bus: the fake API, a sandbox, `get` for a user unique to
/// this run (`prefix` and our pid: the keyrings outlive the test) and `cache`, and the
/// directory the script writes its files into.
struct Bus {
    dbus_run_session: PathBuf,
    server: CountingServer,
    sb: Sandbox,
    args: Vec<String>,
    out_dir: PathBuf,
}

impl Bus {
    fn new(dbus_run_session: PathBuf, prefix: &str, cache: &str) -> Bus {
        let server = CountingServer::start();
        let sb = Sandbox::new();
        let user = format!("{prefix}{}", std::process::id());
        let args = get_args(&server.url(), &user, cache);
        let out_dir = sb.path().join("out");
        std::fs::create_dir(&out_dir).unwrap();
        Bus {
            dbus_run_session,
            server,
            sb,
            args,
            out_dir,
        }
    }

    /// [`in_dbus_session_with`] for this test's script.
    fn run(&self, script: &str, extra: &[&str], deny: bool) -> Output {
        in_dbus_session_with(
            &self.sb,
            &self.dbus_run_session,
            script,
            &self.out_dir,
            extra,
            &self.args,
            deny,
        )
    }

    /// A file the script wrote ("" when it did not).
    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.out_dir.join(name)).unwrap_or_default()
    }

    /// The password in the contract a run wrote to `name`.
    fn password(&self, name: &str) -> serde_json::Value {
        serde_json::from_str::<serde_json::Value>(&self.read(name)).unwrap()["DbPassword"].clone()
    }
}

/// The start of a script whose Secret Service never answers: `$2` (dbus-test-tool) owns
/// the name and never replies; `$hole` is its pid. Leaves `$@` as the `get` arguments.
const BLACK_HOLE: &str = r#"
        out="$1"; tool="$2"; shift 2
        "$tool" black-hole --name=org.freedesktop.secrets &
        hole=$!
        i=0
        until dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
              org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets 2>/dev/null | grep -q true; do
            i=$((i + 1)); [ "$i" -gt 200 ] && { echo "the black hole did not start" >"$out/setup"; exit 1; }
            sleep 0.05
        done
"#;

/// `redshift-creds ARGS` with keyutils refused.
fn denied(sb: &Sandbox, args: &[String]) -> std::process::Output {
    let args: Vec<&str> = args.iter().map(|s| &**s).collect();
    deny_keyutils(&mut sb.command(bin(), &args))
        .output()
        .unwrap()
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

    let first = in_new_session(&sb, &keyctl, &bin(), &args);
    assert!(first.status.success(), "{}", stderr(&first));
    assert_eq!(our_stderr(&first), "");
    let second = in_new_session(&sb, &keyctl, &bin(), &args);
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
    let server = CountingServer::start();
    let sb = Sandbox::new();
    let user = format!("r{}", std::process::id());
    // keyutils system calls fail with EPERM (a container's seccomp profile).

    let auto = denied(&sb, &get_args(&server.url(), &user, "auto"));
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
    let hit = denied(&sb, &get_args(&server.url(), &user, "auto"));
    assert!(hit.status.success(), "{}", stderr(&hit));
    assert_eq!(our_stderr(&hit), warning, "the same one warning on a hit");
    assert_eq!(server.calls(), 1, "the second call was a hit");

    let forced = denied(&sb, &get_args(&server.url(), &user, "keyring"));
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
    let Some(dbus_run_session) = secret_service_tools() else {
        return;
    };
    let bus = Bus::new(dbus_run_session, "s", "keyring");
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
    let run = bus.run(script, &[], false);
    assert!(run.status.success(), "dbus-run-session: {}", stderr(&run));
    assert_eq!(bus.read("1.rc").trim(), "0", "first: {}", bus.read("1.err"));
    assert_eq!(
        bus.read("2.rc").trim(),
        "0",
        "second: {}",
        bus.read("2.err")
    );
    assert_eq!(
        bus.read("1.err"),
        "",
        "no fallback warning: the Secret Service was used"
    );
    assert_eq!(bus.read("2.err"), "");
    let first: serde_json::Value = serde_json::from_str(&bus.read("1.out")).unwrap();
    let second: serde_json::Value = serde_json::from_str(&bus.read("2.out")).unwrap();
    assert_eq!(first["DbPassword"], second["DbPassword"]);
    assert_eq!(
        bus.server.calls(),
        1,
        "the second process read the Secret Service, not the API"
    );
    let search = bus.read("search");
    assert!(
        search.contains("attribute.service = redshift-creds"),
        "{search}"
    );
    assert!(
        bus.sb.entries().is_empty(),
        "nothing went to the file store"
    );
}

#[test]
fn a_locked_secret_service_falls_back_to_files_under_auto() {
    let Some(dbus_run_session) = secret_service_tools() else {
        return;
    };
    let bus = Bus::new(dbus_run_session, "h", "auto");
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
    // keyutils refuses too, so the entry must end up in the file store.
    let run = bus.run(script, &[], true);
    assert!(run.status.success(), "dbus-run-session: {}", stderr(&run));
    assert_eq!(bus.read("1.rc").trim(), "0", "{}", bus.read("1.err"));
    let err = bus.read("1.err");
    assert_eq!(err.lines().count(), 1, "one warning: {err}");
    assert!(
        err.starts_with("redshift-creds: warning: ") && err.contains("Secret Service"),
        "{err}"
    );
    assert!(err.contains("caching in private files"), "{err}");
    assert_eq!(bus.password("1.out"), "counting-pw-1");
    assert_eq!(bus.sb.entries().len(), 1, "the file store holds the entry");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "bounded by the 5 s deadline"
    );
}

#[test]
fn a_secret_service_that_never_answers_is_a_refusal_not_a_hang() {
    let Some((dbus_run_session, black_hole)) = black_hole_tools() else {
        return;
    };
    let bus = Bus::new(dbus_run_session, "b", "auto");
    // A process owns org.freedesktop.secrets and never replies (a hung
    // daemon), and the session keyring refuses too, so `auto` must end up in
    // the file store: twice, a miss and then a hit.
    let script = &[
        BLACK_HOLE,
        r#"
        for n in 1 2; do
            "$0" "$@" >"$out/$n.out" 2>"$out/$n.err"
            echo $? >"$out/$n.rc"
        done
        kill "$hole"
    "#,
    ]
    .concat();
    let started = std::time::Instant::now();
    let run = bus.run(script, &[black_hole.to_str().unwrap()], true);
    assert!(
        run.status.success(),
        "dbus-run-session: {}{}",
        stderr(&run),
        bus.read("setup")
    );
    let ours = |name: &str| bus.read(name);
    for n in ["1", "2"] {
        assert_eq!(
            bus.read(&format!("{n}.rc")).trim(),
            "0",
            "run {n}: {}",
            bus.read(&format!("{n}.err"))
        );
        let err = ours(&format!("{n}.err"));
        let fallback = err.lines().last().unwrap_or_default();
        assert!(
            fallback.starts_with("redshift-creds: warning: no OS keyring can be used")
                && fallback.contains("kernel keyutils")
                && fallback.contains("caching in private files"),
            "run {n}: {err}"
        );
        // The first run says the Secret Service did not answer; the second
        // does not ask it again, and does not say it again.
        let lines = if n == "1" { 2 } else { 1 };
        assert_eq!(err.lines().count(), lines, "run {n}: {err}");
        assert_eq!(
            err.contains("the Secret Service did not answer"),
            n == "1",
            "run {n}: {err}"
        );
        assert_eq!(
            bus.password(&format!("{n}.out")),
            "counting-pw-1",
            "run {n}"
        );
    }
    assert_eq!(
        bus.server.calls(),
        1,
        "the second run was a hit from the file store"
    );
    assert_eq!(bus.sb.entries().len(), 1, "the file store holds the entry");
    // Each Secret Service call waits 5 s at most: no hang.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "bounded by the deadline: {:?}",
        started.elapsed()
    );
}

/// Makes keyutils refuse in the child and everything it starts, as a
/// container's default seccomp profile does: `add_key`, `request_key` and
/// `keyctl` fail with EPERM.
fn deny_keyutils(cmd: &mut std::process::Command) -> &mut std::process::Command {
    use std::os::unix::process::CommandExt;
    const LD_NR: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS, offset 0 = the syscall number
    const JEQ: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
    const RET: u16 = 0x06; // BPF_RET | BPF_K
    let insn = |code: u16, jt: u8, jf: u8, k: u32| libc::sock_filter { code, jt, jf, k };
    let filter = [
        insn(LD_NR, 0, 0, 0),
        insn(JEQ, 3, 0, libc::SYS_add_key as u32),
        insn(JEQ, 2, 0, libc::SYS_request_key as u32),
        insn(JEQ, 1, 0, libc::SYS_keyctl as u32),
        insn(RET, 0, 0, libc::SECCOMP_RET_ALLOW),
        insn(RET, 0, 0, libc::SECCOMP_RET_ERRNO | libc::EPERM as u32),
    ];
    // SAFETY: only async-signal-safe prctl calls between fork and exec; the
    // filter outlives them (it is copied into the closure).
    unsafe {
        cmd.pre_exec(move || {
            let prog = libc::sock_fprog {
                len: filter.len() as u16,
                filter: filter.as_ptr() as *mut libc::sock_filter,
            };
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                || libc::prctl(
                    libc::PR_SET_SECCOMP,
                    libc::SECCOMP_MODE_FILTER,
                    &prog as *const libc::sock_fprog,
                ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    }
}

/// Whether this process runs in a plain login session: no session keyring of
/// its own, only the user session keyring `_uid_ses.N`.
fn plain_session(keyctl: &std::path::Path) -> bool {
    let o = std::process::Command::new(keyctl)
        .args(["rdescribe", "@s"])
        .output()
        .unwrap();
    let d = String::from_utf8_lossy(&o.stdout);
    let plain = d
        .trim_end()
        .rsplit(';')
        .next()
        .is_some_and(|n| n.starts_with("_uid_ses."));
    if !plain {
        let msg = format!("SKIPPED: not a plain login session (@s is {})", d.trim());
        assert!(!crate::support::strict(), "{msg}");
        eprintln!("{msg}");
    }
    plain
}

/// The cache key of the one entry in the sandbox (from its `list` record).
fn only_key(sb: &Sandbox) -> String {
    let keys: Vec<String> = std::fs::read_dir(sb.cache_dir())
        .unwrap()
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_suffix(".meta")
                .map(String::from)
        })
        .collect();
    assert_eq!(keys.len(), 1, "{keys:?}");
    keys[0].clone()
}

/// The /proc/keys line of our key for `key`, if the kernel still has it.
fn proc_keys_line(key: &str) -> Option<String> {
    let want = format!("keyring:{key}@redshift-creds");
    std::fs::read_to_string("/proc/keys")
        .unwrap()
        .lines()
        .find(|l| l.contains(&format!(" {want}: ")))
        .map(String::from)
}

/// The README's manual removal recipe for one keyutils entry, as written.
fn readme_keyutils_recipe(key: &str) -> String {
    format!(
        "keyctl session - sh -c 'keyctl search \"$(keyctl get_persistent @s)\" user \"keyring:{key}@redshift-creds\" | xargs -r keyctl invalidate' >/dev/null 2>&1"
    )
}

/// The keyutils lifecycle, run by `run` (plainly, or each in a new session
/// keyring): miss, `-v` hit, hit answered by the front alone, a kernel
/// timeout on the key, `clear`, and the README's recipe.
fn keyutils_lifecycle(
    sb: &Sandbox,
    server: &CountingServer,
    run: &dyn Fn(&std::path::Path, &[String]) -> std::process::Output,
) {
    let user = format!(
        "l{}x{}",
        std::process::id(),
        server.url().len() + sb.path().to_string_lossy().len()
    );
    let args = get_args(&server.url(), &user, "keyring");
    let first = run(&bin(), &args);
    assert!(first.status.success(), "{}", stderr(&first));
    assert_eq!(our_stderr(&first), "", "no warning");
    let mut verbose = args.clone();
    verbose.push("-v".into());
    let logged = run(&bin(), &verbose);
    assert!(logged.status.success(), "{}", stderr(&logged));
    assert!(!stderr(&logged).contains("warning"), "{}", stderr(&logged));
    assert_eq!(password(&logged), password(&first));
    // The front alone, with no redshift-creds-aws beside it: it must answer.
    let alone = sb.path().join("front-only");
    std::fs::create_dir(&alone).unwrap();
    std::fs::copy(bin(), alone.join("redshift-creds")).unwrap();
    let hit = run(&alone.join("redshift-creds"), &args);
    assert!(hit.status.success(), "the front answered: {}", stderr(&hit));
    assert_eq!(our_stderr(&hit), "");
    assert_eq!(password(&hit), password(&first));
    assert_eq!(server.calls(), 1, "one API call for three gets");
    assert!(sb.entries().is_empty(), "nothing went to the file store");

    let key = only_key(sb);
    let line = proc_keys_line(&key).expect("the key is in /proc/keys");
    let timeout = line.split_whitespace().nth(3).unwrap();
    assert_ne!(timeout, "perm", "the key has a kernel timeout: {line}");

    let clear = run(&bin(), &["clear".into(), "--all".into()]);
    assert!(clear.status.success(), "{}", stderr(&clear));
    assert_eq!(stdout_of(&clear), "removed 1 cached entry in all\n");
    assert_eq!(our_stderr(&clear), "");
    let again = run(&bin(), &args);
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(server.calls(), 2, "clear removed the keyutils entry");

    let sh = sb
        .command("sh", &["-c", &readme_keyutils_recipe(&key)])
        .output()
        .unwrap();
    assert!(sh.status.success(), "{}", stderr(&sh));
    let after = run(&bin(), &args);
    assert!(after.status.success(), "{}", stderr(&after));
    assert_eq!(server.calls(), 3, "the README recipe removed the entry");
}

fn stdout_of(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn keyutils_works_in_a_plain_login_session() {
    let Some(keyctl) = require_tool("keyctl", "KEYCTL") else {
        return;
    };
    if !plain_session(&keyctl) {
        return;
    }
    let server = CountingServer::start();
    let sb = Sandbox::new();
    let run = |program: &std::path::Path, args: &[String]| {
        let args: Vec<&str> = args.iter().map(|s| &**s).collect();
        sb.command(program, &args).output().unwrap()
    };
    keyutils_lifecycle(&sb, &server, &run);
}

#[test]
fn keyutils_works_in_new_session_keyrings() {
    let Some(keyctl) = require_tool("keyctl", "KEYCTL") else {
        return;
    };
    let server = CountingServer::start();
    let sb = Sandbox::new();
    let run =
        |program: &std::path::Path, args: &[String]| in_new_session(&sb, &keyctl, program, args);
    keyutils_lifecycle(&sb, &server, &run);
}

#[test]
fn a_secret_service_that_never_answers_is_remembered_for_ten_minutes() {
    let Some((dbus_run_session, black_hole)) = black_hole_tools() else {
        return;
    };
    let bus = Bus::new(dbus_run_session, "m", "auto");
    // Three runs against a Secret Service that never answers; keyutils
    // works. Before the third, the marker is backdated past its TTL.
    let script = &[BLACK_HOLE, r#"
        for n in 1 2 3; do
            if [ "$n" = 3 ]; then
                touch -d "@$(( $(date +%s) - 660 ))" "$REDSHIFT_CREDS_CACHE_DIR/secret-service.unanswered"
                # Another user: a miss, so the full program tells it.
                set -- $(printf '%s\n' "$@" | sed "s/^m[0-9]*$/&x/")
            fi
            t0=$(date +%s%N)
            "$0" "$@" >"$out/$n.out" 2>"$out/$n.err"
            echo $? >"$out/$n.rc"
            echo $(( ($(date +%s%N) - t0) / 1000000 )) >"$out/$n.ms"
        done
        kill "$hole"
    "#]
    .concat();
    let run = bus.run(script, &[black_hole.to_str().unwrap()], false);
    assert!(
        run.status.success(),
        "{}{}",
        stderr(&run),
        bus.read("setup")
    );
    let ms = |n: &str| bus.read(&format!("{n}.ms")).trim().parse::<u64>().unwrap();
    for n in ["1", "2", "3"] {
        assert_eq!(
            bus.read(&format!("{n}.rc")).trim(),
            "0",
            "run {n}: {}",
            bus.read(&format!("{n}.err"))
        );
        let pw = if n == "3" {
            "counting-pw-2"
        } else {
            "counting-pw-1"
        };
        assert_eq!(bus.password(&format!("{n}.out")), pw, "run {n}");
    }
    for n in ["1", "3"] {
        let err = bus.read(&format!("{n}.err"));
        assert_eq!(err.lines().count(), 1, "run {n}, one warning: {err}");
        assert!(
            err.contains("the Secret Service did not answer")
                && err.contains("not asking the Secret Service again for 10 minutes"),
            "run {n}: {err}"
        );
        assert!(
            ms(n) >= 1_500,
            "run {n} asked the Secret Service: {} ms",
            ms(n)
        );
    }
    assert_eq!(bus.read("2.err"), "", "no second warning within the TTL");
    assert!(
        ms("2") < 1_000,
        "the second run skipped the Secret Service: {} ms",
        ms("2")
    );
    assert_eq!(bus.server.calls(), 2, "kernel keyutils held the entry");
    assert!(
        bus.sb.entries().is_empty(),
        "nothing went to the file store"
    );
}

/// Starts gnome-keyring with an unlocked login collection (the default
/// alias) on the session bus, and waits until it owns its name.
const START_GNOME_KEYRING: &str = r#"
        printf 'test-keyring-password' | gnome-keyring-daemon --unlock --components=secrets >/dev/null
        until dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
              org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets 2>/dev/null | grep -q true; do
            sleep 0.05
        done
"#;

/// The Secret Service tools, or `None` (the test is skipped, or fails
/// under `REDSHIFT_CREDS_TEST_STRICT`).
fn secret_service_tools() -> Option<std::path::PathBuf> {
    let dbus_run_session = require_tool("dbus-run-session", "DBUS_RUN_SESSION")?;
    require_tool("gnome-keyring-daemon", "GNOME_KEYRING_DAEMON")?;
    require_tool("secret-tool", "SECRET_TOOL")?;
    Some(dbus_run_session)
}

/// dbus-run-session and dbus-test-tool (for a Secret Service that never answers), or `None`
/// as in [`secret_service_tools`].
fn black_hole_tools() -> Option<(PathBuf, PathBuf)> {
    let dbus_run_session = require_tool("dbus-run-session", "DBUS_RUN_SESSION")?;
    let black_hole = require_tool("dbus-test-tool", "DBUS_TEST_TOOL")?;
    Some((dbus_run_session, black_hole))
}

/// How many items of `search` (`secret-tool search --all` output) have a
/// label that is `label` or starts with `label` and a space.
fn labelled(search: &str, label: &str) -> usize {
    search
        .lines()
        .filter_map(|l| l.strip_prefix("label = "))
        .filter(|l| *l == label || l.starts_with(&format!("{label} ")))
        .count()
}

#[test]
fn secret_service_ignores_planted_items_and_drops_duplicates() {
    let Some(dbus_run_session) = secret_service_tools() else {
        return;
    };
    let bus = Bus::new(dbus_run_session, "p", "auto");
    // 1: a miss into the Secret Service. Then another app plants a valid
    // looking entry with a made-up password twice: in another collection
    // (the session one) with all our attributes, and in the default one
    // under service/username only (gnome-keyring's replace-on-create drops
    // our item, which carries those too). 2: must call the API. Then two
    // more items with our attributes appear: a valid newer one and a garbage
    // newest one. 3: serves the newer valid one and deletes the other two.
    let script = format!(
        r#"
        set -e
        out="$1"; shift
        {START_GNOME_KEYRING}
        "$0" "$@" >"$out/1.out" 2>"$out/1.err"
        key=$(basename "$(ls "$REDSHIFT_CREDS_CACHE_DIR"/*.meta)" .meta)
        fake=$(secret-tool lookup application redshift-creds redshift-creds-key "$key" | sed 's/counting-pw-1/planted-pw/')
        printf '%s' "$fake" >"$out/fake"
        printf '%s' "$fake" | secret-tool store --collection=session --label=elsewhere \
            application redshift-creds redshift-creds-key "$key" service redshift-creds username "$key"
        printf '%s' "$fake" | secret-tool store --label=planted service redshift-creds username "$key"
        secret-tool search --all service redshift-creds >"$out/planted" 2>&1
        "$0" "$@" >"$out/2.out" 2>"$out/2.err"
        # Item times have one-second steps: the newer copy is valid, the newest garbage.
        sleep 1.1
        printf '%s' "$fake" | sed 's/planted-pw/newer-pw/' | secret-tool store --label=newer \
            application redshift-creds redshift-creds-key "$key" copy 1
        sleep 1.1
        printf 'garbage' | secret-tool store --label=dup application redshift-creds redshift-creds-key "$key" copy 2
        secret-tool search --all redshift-creds-key "$key" >"$out/before" 2>&1
        "$0" "$@" >"$out/3.out" 2>"$out/3.err"
        secret-tool search --all redshift-creds-key "$key" >"$out/after" 2>&1
    "#
    );
    let run = bus.run(&script, &[], false);
    assert!(
        run.status.success(),
        "{}{}",
        stderr(&run),
        bus.read("2.err")
    );
    for n in ["1", "2", "3"] {
        assert_eq!(bus.read(&format!("{n}.err")), "", "run {n}: no warning");
    }
    assert!(bus.read("fake").contains("\"password\":\"planted-pw\""));
    let planted = bus.read("planted");
    assert_eq!(labelled(&planted, "elsewhere"), 1, "{planted}");
    assert_eq!(labelled(&planted, "planted"), 1, "{planted}");
    assert_eq!(
        labelled(&planted, "redshift-creds cache entry"),
        0,
        "only the planted items were there for run 2: {planted}"
    );
    assert_eq!(bus.password("1.out"), "counting-pw-1");
    assert_eq!(
        bus.password("2.out"),
        "counting-pw-2",
        "an API call, not a planted item"
    );
    let before = bus.read("before");
    for label in ["redshift-creds cache entry", "newer", "dup", "elsewhere"] {
        assert_eq!(labelled(&before, label), 1, "{label}: {before}");
    }
    assert_eq!(
        bus.password("3.out"),
        "newer-pw",
        "the newest valid item was served"
    );
    let after = bus.read("after");
    assert_eq!(labelled(&after, "newer"), 1, "{after}");
    assert_eq!(labelled(&after, "dup"), 0, "the garbage one went: {after}");
    assert_eq!(
        labelled(&after, "redshift-creds cache entry"),
        0,
        "the older valid one went: {after}"
    );
    assert_eq!(
        labelled(&after, "elsewhere"),
        1,
        "other collections untouched"
    );
    assert_eq!(bus.server.calls(), 2, "run 3 was a hit");
    assert!(
        bus.sb.entries().is_empty(),
        "nothing went to the file store"
    );
}

#[test]
fn clear_all_with_a_session_bus_also_removes_keyutils_copies() {
    let Some(dbus_run_session) = secret_service_tools() else {
        return;
    };
    let bus = Bus::new(dbus_run_session, "q", "auto");
    // 1: an entry in the Secret Service. 2: one for another user in kernel
    // keyutils (no bus). `clear --all` on the bus must remove both, so 3
    // (no bus) and 4 (bus) call the API again.
    let script = format!(
        r#"
        set -e
        out="$1"; shift
        {START_GNOME_KEYRING}
        other=$(printf '%s\n' "$@" | sed "s/^q[0-9]*$/&k/")
        nobus() {{ env -u DBUS_SESSION_BUS_ADDRESS XDG_RUNTIME_DIR=/nonexistent "$@"; }}
        "$0" "$@" >"$out/1.out" 2>"$out/1.err"
        nobus "$0" $other >"$out/2.out" 2>"$out/2.err"
        "$0" clear --all >"$out/clear.out" 2>"$out/clear.err"
        secret-tool search --all application redshift-creds >"$out/cleared" 2>&1 || true
        nobus "$0" $other >"$out/3.out" 2>"$out/3.err"
        "$0" "$@" >"$out/4.out" 2>"$out/4.err"
    "#
    );
    let run = bus.run(&script, &[], false);
    assert!(
        run.status.success(),
        "{}{}",
        stderr(&run),
        bus.read("clear.err")
    );
    for n in ["1", "2", "3", "4"] {
        assert_eq!(bus.read(&format!("{n}.err")), "", "run {n}: no warning");
    }
    assert_eq!(bus.password("1.out"), "counting-pw-1");
    assert_eq!(bus.password("2.out"), "counting-pw-2");
    assert_eq!(
        bus.read("clear.out"),
        "removed 2 cached entries in all\n",
        "{}",
        bus.read("clear.err")
    );
    assert_eq!(bus.read("clear.err"), "");
    let cleared = bus.read("cleared");
    assert_eq!(
        labelled(&cleared, "redshift-creds cache entry"),
        0,
        "{cleared}"
    );
    assert_eq!(
        bus.password("3.out"),
        "counting-pw-3",
        "the keyutils copy went"
    );
    assert_eq!(
        bus.password("4.out"),
        "counting-pw-4",
        "the Secret Service item went"
    );
    assert_eq!(bus.server.calls(), 4);
    assert!(
        bus.sb.entries().is_empty(),
        "nothing went to the file store"
    );
}
