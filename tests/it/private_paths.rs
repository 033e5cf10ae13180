//! Paths `proxy` trusts that another local user must not control: the parents of a `unix:DIR` socket directory, and the config directories `--client-tls` makes.
#![cfg(unix)]

use crate::proxy::Proxy;
use crate::support::counting::CountingServer;
use crate::support::{Sandbox, cred_args, stderr, stdout};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;

/// Another local user.
const NOBODY: u32 = 65534;

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// `proxy` with the credential flags, an upstream that needs no AWS lookup, then `extra`.
fn proxy_args<'a>(url: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec!["proxy"];
    a.extend(cred_args(url, &["--host", "127.0.0.1", "--port", "1"]));
    a.extend_from_slice(extra);
    a
}

/// Runs a proxy that must refuse to start: its output once it exits, or a
/// failure (after killing it) if it is still serving after 20 s.
fn refused_within(mut cmd: std::process::Command) -> std::process::Output {
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > std::time::Duration::from_secs(20) {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("the proxy serves: {}", stderr(&out));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn a_socket_directory_under_a_parent_another_user_controls_is_refused_naming_it() {
    let aws = CountingServer::start();
    let url = aws.url();
    let sb = Sandbox::new();
    let theirs = sb.path().join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    chmod(&theirs, 0o755);
    std::os::unix::fs::chown(&theirs, Some(NOBODY), Some(NOBODY)).unwrap();
    let shared = sb.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    chmod(&shared, 0o777);
    for (parent, rule) in [
        (&theirs, "belongs to uid 65534"),
        (&shared, "can be written by other users (mode 777)"),
    ] {
        let dir = parent.join("sock");
        let listen = format!("unix:{}", dir.display());
        let out = refused_within(sb.cmd(&proxy_args(&url, &["--listen", &listen])));
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{listen}: {err}");
        assert!(stdout(&out).is_empty());
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains(&format!("{} {rule}", parent.display())),
            "names the parent and the rule: {err}"
        );
        assert!(!dir.exists(), "nothing made under it");
    }
    assert_eq!(aws.calls(), 0);

    // A parent of ours, and /tmp's sticky root-owned kind above it, are fine.
    let ours = sb.path().join("ours");
    std::fs::create_dir(&ours).unwrap();
    chmod(&ours, 0o755);
    let listen = format!("unix:{}", ours.join("sock").display());
    let proxy = Proxy::spawn(sb.cmd(&proxy_args(&url, &["--listen", &listen])));
    assert!(
        proxy.unix().starts_with(ours.join("sock")),
        "{:?}",
        proxy.listening
    );
}

#[test]
fn a_group_readable_socket_directory_is_refused_and_a_missing_one_made_0700_under_umask_000() {
    let aws = CountingServer::start();
    let url = aws.url();
    let sb = Sandbox::new();
    let dir = sb.path().join("sock");
    std::fs::create_dir(&dir).unwrap();
    chmod(&dir, 0o750);
    let listen = format!("unix:{}", dir.display());
    let out = refused_within(sb.cmd(&proxy_args(&url, &["--listen", &listen])));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(stdout(&out).is_empty());
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!(
            "the socket directory {} is open to other users (mode 750); run: chmod 700",
            dir.display()
        )),
        "{err}"
    );
    assert_eq!(mode(&dir), 0o750, "left as it was");
    assert!(
        std::fs::read_dir(&dir).unwrap().next().is_none(),
        "nothing bound in it"
    );
    assert_eq!(aws.calls(), 0);

    let made = sb.path().join("made");
    let listen = format!("unix:{}", made.display());
    let mut cmd = sb.cmd(&proxy_args(&url, &["--listen", &listen]));
    // SAFETY: umask is async-signal-safe and allocates nothing.
    unsafe {
        cmd.pre_exec(|| {
            libc::umask(0);
            Ok(())
        });
    }
    let proxy = Proxy::spawn(cmd);
    assert!(proxy.unix().starts_with(&made), "{:?}", proxy.listening);
    assert_eq!(mode(&made), 0o700);
}

#[test]
fn client_tls_under_umask_000_makes_its_config_directories_0700() {
    let aws = CountingServer::start();
    let url = aws.url();
    let sb = Sandbox::new();
    let mut cmd = sb.cmd(&proxy_args(
        &url,
        &["--listen", "127.0.0.1:0", "--client-tls"],
    ));
    // SAFETY: umask is async-signal-safe and allocates nothing.
    unsafe {
        cmd.pre_exec(|| {
            libc::umask(0);
            Ok(())
        });
    }
    let proxy = Proxy::spawn(cmd);
    let config = sb.path().join(".config");
    assert!(
        proxy.stderr().contains("sslrootcert="),
        "{}",
        proxy.stderr()
    );
    for dir in [
        config.clone(),
        config.join("redshift-creds"),
        config.join("redshift-creds/proxy-tls"),
    ] {
        assert_eq!(mode(&dir), 0o700, "{}", dir.display());
    }
}
