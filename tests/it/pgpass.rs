//! `pgpass`: the line written into the pgpass file, once and under `--watch`.

use crate::support::counting::{Behaviour, CountingServer};
use crate::support::{Sandbox, cred_args, stderr};

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// One test's peers: the fake API, a sandbox, and a pgpass file path in it (not made yet).
struct Rig {
    server: CountingServer,
    sb: Sandbox,
    pgpass: PathBuf,
}

impl Rig {
    fn new() -> Rig {
        let sb = Sandbox::new();
        Rig {
            server: CountingServer::start(),
            pgpass: sb.path().join("pgpass"),
            sb,
        }
    }

    /// `pgpass` for db.example.com with `extra` flags, writing to `at` when given, else
    /// to `~/.pgpass`.
    fn cmd_at(&self, at: Option<&Path>, extra: &[&str]) -> Command {
        let url = self.server.url();
        let mut args = vec!["pgpass"];
        args.extend(cred_args(&url, &["--host", "db.example.com"]));
        args.extend_from_slice(extra);
        let mut c = self.sb.cmd(&args);
        if let Some(p) = at {
            c.env("PGPASSFILE", p);
        }
        c
    }

    /// [`Rig::cmd_at`] the rig's pgpass file.
    fn cmd(&self, extra: &[&str]) -> Command {
        self.cmd_at(Some(&self.pgpass), extra)
    }

    /// `pgpass --watch` with this refresh margin; stderr is captured.
    fn watch(&self, margin: &str) -> Child {
        self.cmd(&["--refresh-margin", margin, "--watch"])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// The pgpass file's text.
    fn text(&self) -> String {
        std::fs::read_to_string(&self.pgpass).unwrap()
    }
}

/// Polls `done` every 50 ms for up to `secs` seconds.
fn wait_for(secs: u64, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn pgpass_inserts_then_replaces_its_line_and_keeps_the_rest() {
    let rig = Rig::new();
    let pgpass = &rig.pgpass;
    let others = b"# keep me\n*:*:*:*:wildcard\nother.example.com:5432:db:bob:pw\\:x\n";
    std::fs::write(pgpass, others).unwrap();
    let run = || {
        rig.cmd(&["--db-name", "dev", "--refresh-margin", "899"])
            .output()
            .unwrap()
    };
    let out = run();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(out.stdout.is_empty(), "pgpass prints nothing on stdout");
    let mut expected = b"db.example.com:5439:dev:IAM\\:alice:counting-pw-1\n".to_vec();
    expected.extend_from_slice(others);
    assert_eq!(std::fs::read(pgpass).unwrap(), expected);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(pgpass).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    // With a margin of 899 s the password is due for refresh after a second.
    std::thread::sleep(Duration::from_millis(1100));
    assert!(run().status.success());
    let mut expected = b"db.example.com:5439:dev:IAM\\:alice:counting-pw-2\n".to_vec();
    expected.extend_from_slice(others);
    assert_eq!(
        std::fs::read(pgpass).unwrap(),
        expected,
        "replaced in place, the rest byte for byte"
    );
}

#[test]
fn pgpass_watch_rewrites_the_line_before_expiry() {
    let rig = Rig::new();
    let mut child = rig.watch("898");
    let mut seen = Vec::new();
    wait_for(20, || {
        if let Ok(text) = std::fs::read_to_string(&rig.pgpass)
            && !seen.contains(&text)
        {
            seen.push(text);
        }
        seen.len() >= 3
    });
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
    let rig = Rig::new();
    // A 900 s password with an 899 s margin is due for refresh after 1 s;
    // every refresh fails, so the still-valid password keeps being served.
    let mut child = rig.watch("899");
    wait_for(20, || rig.server.calls() >= 1);
    rig.server.set_behaviour(Behaviour::ClusterNotFound);
    // Long enough for a busy loop to have called several times.
    std::thread::sleep(Duration::from_secs(5));
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        rig.server.calls(),
        2,
        "one call, then one failed refresh and a pause: {}",
        stderr(&out)
    );
    assert_eq!(
        rig.text(),
        "db.example.com:5439:*:IAM\\:alice:counting-pw-1\n",
        "the still-valid line stays"
    );
}

/// Runs `c` and kills it after 15 s: a hang is a failure, not a stuck suite.
fn output_within(mut c: Command) -> (Output, Duration) {
    let start = Instant::now();
    let mut child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(15) {
            child.kill().unwrap();
            panic!(
                "the run hung: {}",
                stderr(&child.wait_with_output().unwrap())
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    (child.wait_with_output().unwrap(), start.elapsed())
}

/// A refused pgpass target: exit 1, one line on stderr saying `why`, nothing on stdout.
fn assert_refused(out: &Output, why: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(out.stdout.is_empty());
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("cannot write the pgpass file") && err.contains(why),
        "{err}"
    );
}

#[cfg(unix)]
#[test]
fn pgpass_refuses_a_fifo_at_once_and_leaves_it_a_fifo() {
    use std::os::unix::fs::FileTypeExt;
    let rig = Rig::new();
    let fifo = rig.sb.path().join("pgpass");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let (out, took) = output_within(rig.cmd_at(Some(&fifo), &[]));
    assert_refused(&out, "is not a regular file (it is a FIFO)");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    let kind = std::fs::symlink_metadata(&fifo).unwrap().file_type();
    assert!(kind.is_fifo(), "the FIFO is still a FIFO");
}

#[cfg(unix)]
#[test]
fn pgpass_refuses_a_device_and_never_replaces_dev_null() {
    use std::os::unix::fs::FileTypeExt;
    let rig = Rig::new();
    // First a device of the test's own (so a regression replaces only that)...
    if crate::support::running_as_root() {
        let dev = rig.sb.path().join("null-device");
        let c = std::ffi::CString::new(dev.to_str().unwrap()).unwrap();
        // SAFETY: a valid path; 1:3 is the null device.
        let made = unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o600, libc::makedev(1, 3)) };
        assert_eq!(made, 0, "mknod as root");
        let (out, _) = output_within(rig.cmd_at(Some(&dev), &[]));
        assert_refused(&out, "is not a regular file (it is a device)");
        let kind = std::fs::symlink_metadata(&dev).unwrap().file_type();
        assert!(kind.is_char_device(), "the device node is still one");
    }
    // ...then /dev/null itself.
    let null = std::path::Path::new("/dev/null");
    let (out, _) = output_within(rig.cmd_at(Some(null), &[]));
    assert_refused(&out, "is not a regular file (it is a device)");
    let kind = std::fs::symlink_metadata(null).unwrap().file_type();
    assert!(kind.is_char_device(), "/dev/null is untouched");
}

#[cfg(unix)]
#[test]
fn pgpass_refuses_a_directory_others_can_write() {
    use std::os::unix::fs::PermissionsExt;
    let rig = Rig::new();
    let shared = rig.sb.path().join("team");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
    let pgpass = shared.join("pgpass");
    std::fs::write(&pgpass, b"x:1:y:z:old\n").unwrap();
    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (out, _) = output_within(rig.cmd_at(Some(&pgpass), &[]));
    assert_refused(&out, "can be written by other users (mode 777)");
    assert_eq!(std::fs::read(&pgpass).unwrap(), b"x:1:y:z:old\n");
    assert_eq!(
        std::fs::read_dir(&shared).unwrap().count(),
        1,
        "no file left"
    );
}

#[cfg(unix)]
#[test]
fn pgpass_refuses_a_file_or_directory_of_another_user() {
    if !crate::support::running_as_root() {
        crate::support::skip_or_fail("chown to another user needs root");
        return;
    }
    let nobody = 65534;
    let rig = Rig::new();
    // A file of another user's, in a directory of ours.
    let theirs = rig.sb.path().join("pgpass");
    std::fs::write(&theirs, b"x:1:y:z:theirs\n").unwrap();
    std::os::unix::fs::chown(&theirs, Some(nobody), Some(nobody)).unwrap();
    let (out, _) = output_within(rig.cmd_at(Some(&theirs), &[]));
    assert_refused(&out, "belongs to uid 65534, not to you");
    assert_eq!(std::fs::read(&theirs).unwrap(), b"x:1:y:z:theirs\n");
    // A missing file in a directory of another user's (mode 755).
    let their_dir = rig.sb.path().join("their-dir");
    std::fs::create_dir(&their_dir).unwrap();
    std::os::unix::fs::chown(&their_dir, Some(nobody), Some(nobody)).unwrap();
    let inside = their_dir.join("pgpass");
    let (out, _) = output_within(rig.cmd_at(Some(&inside), &[]));
    assert_refused(&out, "belongs to uid 65534");
    assert!(!inside.exists());
}

#[cfg(unix)]
#[test]
fn pgpass_through_a_symlink_of_ours_writes_the_target_and_keeps_the_link() {
    let rig = Rig::new();
    let dotfiles = rig.sb.path().join("dotfiles");
    std::fs::create_dir(&dotfiles).unwrap();
    let real = dotfiles.join("pgpass");
    std::fs::write(&real, b"other:5432:db:bob:pw\n").unwrap();
    let link = rig.sb.path().join(".pgpass");
    std::os::unix::fs::symlink("dotfiles/pgpass", &link).unwrap();
    let (out, _) = output_within(rig.cmd_at(None, &[]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(&real).unwrap(),
        "db.example.com:5439:*:IAM\\:alice:counting-pw-1\nother:5432:db:bob:pw\n"
    );
    let kind = std::fs::symlink_metadata(&link).unwrap().file_type();
    assert!(kind.is_symlink(), "the link stays a link");
    assert_eq!(
        std::fs::read_dir(&dotfiles).unwrap().count(),
        1,
        "no temporary file left"
    );
}

#[test]
fn pgpass_refuses_a_file_over_one_mib() {
    let rig = Rig::new();
    let pgpass = &rig.pgpass;
    let big = vec![b'#'; 1024 * 1024 + 1];
    std::fs::write(pgpass, &big).unwrap();
    let (out, _) = output_within(rig.cmd_at(Some(pgpass), &[]));
    assert_refused(&out, "is larger than 1 MiB");
    assert_eq!(std::fs::read(pgpass).unwrap(), big);
}

/// Holds an exclusive lock on the only `pgpass-*.lock` in the sandbox's
/// cache directory, as a concurrent writer would, until dropped.
#[cfg(unix)]
pub fn hold_the_pgpass_lock(sb: &Sandbox) -> std::fs::File {
    use std::os::fd::AsRawFd;
    let names: Vec<String> = sb
        .cache_files()
        .into_iter()
        .filter(|n| n.starts_with("pgpass-") && n.ends_with(".lock"))
        .collect();
    assert_eq!(names.len(), 1, "one pgpass lock: {names:?}");
    let file = std::fs::File::open(sb.cache_dir().join(&names[0])).unwrap();
    // SAFETY: a valid open descriptor.
    assert_eq!(unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) }, 0);
    file
}

#[cfg(unix)]
#[test]
fn two_spellings_of_one_pgpass_file_take_one_lock() {
    let rig = Rig::new();
    let dir = rig.sb.path().join("conf");
    std::fs::create_dir(&dir).unwrap();
    let pgpass = dir.join("pgpass");
    let (out, _) = output_within(rig.cmd_at(Some(&pgpass), &[]));
    assert!(out.status.success(), "{}", stderr(&out));
    let _held = hold_the_pgpass_lock(&rig.sb);
    // The same file through a symlinked directory and a `..`.
    std::os::unix::fs::symlink(&dir, rig.sb.path().join("alias")).unwrap();
    let other = rig.sb.path().join("alias/../conf/./pgpass");
    let (out, _) = output_within(rig.cmd_at(Some(&other), &["--lock-timeout", "1"]));
    assert_eq!(
        out.status.code(),
        Some(3),
        "the same lock: {}",
        stderr(&out)
    );
}

#[test]
fn pgpass_says_which_line_it_wrote_and_when_the_next_refresh_is_due() {
    let rig = Rig::new();
    let pgpass = &rig.pgpass;
    let out = rig.cmd(&["--db-name", "dev"]).output().unwrap();
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
    std::fs::remove_file(pgpass).unwrap();
    let out = rig.cmd(&["--db-name", "dev", "-q"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
    assert!(
        std::fs::read_to_string(pgpass)
            .unwrap()
            .starts_with("db.example.com:5439:dev:")
    );
}

#[test]
fn pgpass_watch_says_one_line_per_refresh() {
    let rig = Rig::new();
    let mut child = rig.watch("898");
    wait_for(20, || rig.server.calls() >= 3);
    // Let the third write's line reach stderr.
    std::thread::sleep(Duration::from_millis(300));
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
