//! `get` leaves no core dump to read: RLIMIT_CORE 0 and, on Linux, not dumpable, in both binaries.

use crate::support::counting::CountingServer;
use crate::support::{Sandbox, get_args, stdout};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

const NOBODY: u32 = 65534;

/// Gives the sandbox to `nobody`, so the binary can run as that user.
fn chown_all(path: &std::path::Path) {
    std::os::unix::fs::chown(path, Some(NOBODY), Some(NOBODY)).unwrap();
    if path.is_dir() {
        for e in std::fs::read_dir(path).unwrap() {
            chown_all(&e.unwrap().path());
        }
    }
}

/// A process waiting on a slow AWS, run as `nobody`: the kernel hands the
/// /proc files of a non-dumpable process to root, whoever runs it, and
/// /proc/PID/limits shows its core limit.
#[test]
#[cfg(target_os = "linux")]
fn a_process_waiting_on_aws_is_not_dumpable_and_has_no_core_limit() {
    if unsafe { libc::geteuid() } != 0 {
        assert!(
            !crate::support::strict(),
            "this test needs root to run as nobody"
        );
        eprintln!("SKIPPED: not root");
        return;
    }
    let server = CountingServer::start();
    server.set_delay(Duration::from_secs(3));
    let url = server.url();
    let sb = Sandbox::new();
    chown_all(sb.path());
    for program in ["redshift-creds", "redshift-creds-aws"] {
        // The checkout may sit where `nobody` cannot reach its target/debug.
        let bin = crate::support::bin_for_other_users().join(program);
        let child = sb
            .command(&bin, &get_args(&url, &[]))
            .uid(NOBODY)
            .gid(NOBODY)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let proc_dir = format!("/proc/{}", child.id());
        let started = Instant::now();
        let mut owner = None;
        let mut core = String::new();
        while started.elapsed() < Duration::from_secs(2) {
            // Wait until the request is in flight: main has run by then.
            if server.operations().len() > usize::from(program == "redshift-creds-aws") {
                owner = std::fs::metadata(format!("{proc_dir}/status"))
                    .ok()
                    .map(|m| m.uid());
                core = std::fs::read_to_string(format!("{proc_dir}/limits"))
                    .unwrap_or_default()
                    .lines()
                    .find(|l| l.starts_with("Max core file size"))
                    .unwrap_or_default()
                    .to_string();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{program}: {}", stdout(&out));
        assert_eq!(
            owner,
            Some(0),
            "{program}: /proc of a non-dumpable process is root's"
        );
        let fields: Vec<&str> = core.split_whitespace().collect();
        assert_eq!(fields.get(4..6), Some(&["0", "0"][..]), "{program}: {core}");
        std::fs::remove_dir_all(sb.cache_dir()).unwrap();
    }
}
