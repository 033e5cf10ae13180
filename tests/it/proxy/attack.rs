//! The proxy against a hostile second local user and hostile clients: descriptor exhaustion
//! then a connection orphaned before the accept, a flood of idle connections while the owner
//! logs in, forged log lines, and a login refusal that is no fault of the password.

use super::{Raw, Rig, WHO, WHO_ANSWER, parse_error};
use crate::support::{Sandbox, cred_args, stdout, verified_upstream};
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The proxy's owner: a user that is not root.
const OWNER: u32 = 65534;
/// Another local user.
const ATTACKER: u32 = 65533;

/// The attacker's side, in Python run as [`ATTACKER`]: `exhaust` opens 1,100 idle
/// connections, sends a startup and a query on one more and closes it (an orphan the proxy
/// accepts later), then drops the idle ones; `flood` opens 1,100 idle connections and holds
/// them for the given seconds.
const ATTACK_PY: &str = r#"
import socket, struct, sys, time
mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
def idle(n):
    out = []
    for _ in range(n):
        try:
            out.append(socket.create_connection((host, port), timeout=2))
        except OSError:
            pass
    return out
def startup(db):
    body = struct.pack('!i', 196608) + b'user\0mallory\0database\0' + db + b'\0\0'
    return struct.pack('!i', len(body) + 4) + body
if mode == 'exhaust':
    held = idle(1100)
    q = b'create table pwned_by_attacker(x int)'
    s = socket.create_connection((host, port), timeout=5)
    s.sendall(startup(b'postgres') + b'Q' + struct.pack('!i', len(q) + 5) + q + b'\0')
    s.close()
    time.sleep(0.5)
    for h in held:
        h.close()
    time.sleep(3)
    print(len(held))
else:
    held = idle(1100)
    print(len(held), flush=True)
    time.sleep(float(sys.argv[4]))
"#;

/// Root is needed to run the proxy and the attacker as two other users.
fn as_root() -> bool {
    if crate::support::running_as_root() {
        return true;
    }
    crate::support::skip_or_fail("the attack tests run two other users and need root");
    false
}

/// A proxy of [`OWNER`]'s with the usual soft and hard limit of 1,024 descriptors, on a TCP
/// port and a Unix socket, for the rig's PostgreSQL.
struct OwnersProxy {
    proxy: super::Proxy,
    sb: Sandbox,
}

fn owners_proxy(rig: &Rig) -> OwnersProxy {
    let sb = Sandbox::new();
    let bin = crate::support::bin_for_other_users();
    let ca = sb.path().join("ca.pem");
    std::fs::copy(&rig.pg.ca_cert, &ca).unwrap();
    let sock = sb.path().join("sock");
    let mut args = vec!["proxy".to_string()];
    args.extend(cred_args(&rig.url, &[]).iter().map(|s| s.to_string()));
    let port = rig.pg.port.to_string();
    let unix = format!("unix:{}", sock.display());
    let upstream = verified_upstream(&port, ca.to_str().unwrap());
    let listen = ["--listen", "127.0.0.1:0", "--listen", &unix];
    args.extend(upstream.iter().chain(&listen).map(|s| s.to_string()));
    chown_all(sb.path(), OWNER);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut cmd = sb.command(bin.join("redshift-creds"), &args);
    cmd.uid(OWNER).gid(OWNER);
    // SAFETY: setrlimit is async-signal-safe; the struct is a local copy.
    unsafe {
        cmd.pre_exec(|| {
            let l = libc::rlimit {
                rlim_cur: 1024,
                rlim_max: 1024,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &l) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    OwnersProxy {
        proxy: super::Proxy::spawn(cmd),
        sb,
    }
}

fn chown_all(path: &Path, uid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(uid)).unwrap();
    if path.is_dir() {
        for e in std::fs::read_dir(path).unwrap() {
            chown_all(&e.unwrap().path(), uid);
        }
    }
}

/// Starts the attacker's script as [`ATTACKER`].
fn attacker(args: &[&str]) -> std::process::Child {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("attack.py");
    std::fs::write(&script, ATTACK_PY).unwrap();
    let kept: PathBuf = dir.keep();
    for p in [&kept, &script] {
        use std::os::unix::fs::PermissionsExt;
        let mode = if p.is_dir() { 0o755 } else { 0o644 };
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    Command::new("/usr/bin/python3")
        .arg(&script)
        .args(args)
        .uid(ATTACKER)
        .gid(ATTACKER)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("/usr/bin/python3")
}

/// `psql -c WHO` as the owner through `host`/`port`; its stdout, or stderr on failure.
fn owner_psql(rig: &Rig, sb: &Sandbox, host: &str, port: u16) -> Result<String, String> {
    psql_as(OWNER, rig, sb, host, port)
}

/// `psql -c WHO` as `uid` through `host`/`port`; its stdout, or stderr on failure.
fn psql_as(uid: u32, rig: &Rig, sb: &Sandbox, host: &str, port: u16) -> Result<String, String> {
    let o = Command::new(&rig.pg.psql)
        .args([
            "-XAtq",
            "-d",
            &format!("host={host} port={port} user=anyone dbname=postgres sslmode=disable connect_timeout=10"),
            "-c",
            WHO,
        ])
        .env_clear()
        .env("HOME", sb.path())
        .uid(uid)
        .gid(uid)
        .output()
        .unwrap();
    if o.status.success() {
        Ok(stdout(&o).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&o.stderr).into_owned())
    }
}

/// The attack of the review: another user fills the proxy's descriptors with idle
/// connections, then leaves one connection with a startup and a query behind and closes it.
/// Its socket is then a TIME_WAIT or orphaned one the kernel reports as uid 0. Nothing may
/// reach the database, and the refusals are logged with their reason.
#[test]
fn descriptor_exhaustion_then_an_orphaned_connection_reaches_nothing() {
    if !as_root() {
        return;
    }
    let Some(rig) = Rig::start() else { return };
    let p = owners_proxy(&rig);
    let addr = p.proxy.tcp();
    let out = attacker(&["exhaust", &addr.ip().to_string(), &addr.port().to_string()])
        .wait_with_output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::thread::sleep(Duration::from_secs(1));
    let log = p.proxy.stderr();
    assert_eq!(
        rig.aws.calls(),
        0,
        "no password was fetched for the attacker\n{log}"
    );
    let exists = rig
        .pg
        .superuser_sql("select count(*) from pg_class where relname = 'pwned_by_attacker'");
    assert_eq!(exists.trim(), "0", "the attacker's query ran");
    assert!(
        log.contains("connection refused")
            && log.contains(&format!("uid {ATTACKER} is not allowed")),
        "the refusal and its reason are logged: {log}"
    );
    // Rate-limited: over a thousand refusals, a handful of lines.
    let lines = log.matches("connection refused").count();
    assert!(lines <= 20, "{lines} refusal lines: {log}");
    // And the owner still gets in.
    let port = addr.port();
    assert_eq!(
        owner_psql(&rig, &p.sb, "127.0.0.1", port).as_deref(),
        Ok(WHO_ANSWER)
    );
    assert_eq!(rig.aws.calls(), 1);
}

/// While another user keeps 1,100 idle connections open, the owner connects 5 times of 5
/// over TCP and 5 of 5 over the Unix socket.
#[test]
fn the_owner_gets_in_during_a_flood_from_another_user() {
    if !as_root() {
        return;
    }
    let Some(rig) = Rig::start() else { return };
    let p = owners_proxy(&rig);
    let addr = p.proxy.tcp();
    let mut flood = attacker(&[
        "flood",
        &addr.ip().to_string(),
        &addr.port().to_string(),
        "15",
    ]);
    // The attacker says how many it holds once it holds them.
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(flood.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let opened: u64 = line.trim().parse().unwrap_or(0);
    assert!(opened >= 1100, "the flood holds {opened} connections");
    let sock_dir = p
        .proxy
        .unix()
        .parent()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let mut results = Vec::new();
    for _ in 0..5 {
        results.push(owner_psql(&rig, &p.sb, "127.0.0.1", addr.port()));
        results.push(owner_psql(&rig, &p.sb, &sock_dir, addr.port()));
    }
    let _ = flood.kill();
    let _ = flood.wait();
    let ok = results
        .iter()
        .filter(|r| r.as_deref() == Ok(WHO_ANSWER))
        .count();
    assert_eq!(ok, 10, "{results:?}\nproxy: {}", p.proxy.stderr());
}

/// Sends a startup with `params` and returns the first ErrorResponse, if the server ends
/// the login with one.
fn startup_error(addr: std::net::SocketAddr, params: &[(&str, &str)]) -> Option<super::PgError> {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.write_all(&super::startup_message(params)).unwrap();
    loop {
        let mut head = [0u8; 5];
        s.read_exact(&mut head).ok()?;
        let len = i32::from_be_bytes(head[1..5].try_into().unwrap()) as usize;
        let mut data = vec![0u8; len - 4];
        s.read_exact(&mut data).ok()?;
        match head[0] {
            b'E' => return Some(parse_error(&data)),
            b'Z' => return None,
            _ => {}
        }
    }
}

/// A refusal that is no fault of the password (pg_hba.conf has no rule for replication)
/// reaches the client with the server's SQLSTATE, and fetches no new password.
#[test]
fn a_refusal_that_is_not_about_the_password_fetches_nothing() {
    let Some(rig) = Rig::start() else { return };
    let proxy = rig.proxy(&["--listen", "127.0.0.1:0"]);
    let mut c = Raw::connect(proxy.tcp(), "anyone", "postgres").unwrap();
    assert_eq!(c.query(WHO).unwrap(), [WHO_ANSWER]);
    drop(c);
    assert_eq!(rig.aws.calls(), 1);
    let err = startup_error(
        proxy.tcp(),
        &[
            ("user", "anyone"),
            ("database", "postgres"),
            ("replication", "true"),
        ],
    )
    .expect("refused");
    assert_eq!(err.code, "28000", "{err:?}");
    assert!(err.message.contains("replication"), "{err:?}");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        rig.aws.calls(),
        1,
        "no fresh password for a pg_hba refusal\n{}",
        proxy.stderr()
    );
    let log = proxy.stderr();
    assert!(
        !log.contains("(SQLSTATE 28000) (SQLSTATE"),
        "the SQLSTATE is said once: {log}"
    );
}

/// A client's database name with an escape sequence and a line break reaches the log
/// escaped, on the line it belongs to: in the refusal the server's message echoes it, and in
/// the `session closed` line.
#[test]
fn client_strings_cannot_forge_log_lines() {
    let Some(rig) = Rig::start() else { return };
    let evil = "x\u{1b}[2J\nFORGED session closed user=root";
    rig.pg
        .superuser_sql("create database U&\"x\\001B[2J\\000AFORGED session closed user=root\"");
    rig.pg.superuser_sql(&format!(
        "grant all on database U&\"x\\001B[2J\\000AFORGED session closed user=root\" to \"{}\"",
        super::ROLE
    ));
    let proxy = rig.proxy(&["--listen", "127.0.0.1:0"]);
    let mut c = Raw::connect(proxy.tcp(), "anyone", evil).expect("a session on that database");
    assert_eq!(c.query("select 1").unwrap(), ["1"]);
    drop(c);
    let refused = Raw::connect(proxy.tcp(), "anyone", "nope\u{1b}[31m\nFORGED refused")
        .err()
        .expect("no such database");
    assert_eq!(refused.code, "3D000", "{refused:?}");
    std::thread::sleep(Duration::from_millis(500));
    let log = proxy.stderr();
    assert!(log.contains("session closed"), "{log}");
    assert!(
        !log.contains('\u{1b}'),
        "an escape reached the log: {log:?}"
    );
    assert!(
        !log.lines().any(|l| l.starts_with("FORGED")),
        "a forged line: {log}"
    );
    assert!(
        log.contains("\\u{1b}[2J\\nFORGED"),
        "escaped, on its line: {log}"
    );
}

/// `--allow-uid`: a sidecar's app (another uid) gets in, and a third uid is still refused,
/// with the reason in the log.
#[test]
fn allow_uid_lets_that_uid_in_and_no_other() {
    if !as_root() {
        return;
    }
    let Some(rig) = Rig::start() else { return };
    // The proxy runs as root here: its own uid; --allow-uid adds the app's.
    let proxy = rig.proxy(&["--listen", "127.0.0.1:0", "--allow-uid", &OWNER.to_string()]);
    let port = proxy.tcp().port();
    let sb = Sandbox::new();
    chown_all(sb.path(), OWNER);
    assert_eq!(
        psql_as(OWNER, &rig, &sb, "127.0.0.1", port).as_deref(),
        Ok(WHO_ANSWER),
        "the allowed uid gets in\n{}",
        proxy.stderr()
    );
    let refused = psql_as(ATTACKER, &rig, &sb, "127.0.0.1", port).expect_err("a third uid");
    assert!(
        refused.contains(&format!("uid {ATTACKER} may not use this proxy")),
        "{refused}"
    );
    assert!(
        proxy
            .stderr()
            .contains(&format!("uid {ATTACKER} is not allowed")),
        "{}",
        proxy.stderr()
    );
}
