//! A real PostgreSQL peer: a throwaway server on loopback, optionally with TLS
//! under a test CA, for end-to-end runs of psql, pgcli, dbt and the proxy. One
//! harness for every test crate: [`PgServer::builder`] for one test's own
//! server, [`shared`] for one per auth method kept for the whole test process.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::{free_port, require_tool, run_ok as run, skip_or_fail};

/// A running PostgreSQL server, stopped (immediate shutdown) and removed on drop.
pub struct PgServer {
    /// The TCP port on 127.0.0.1.
    pub port: u16,
    /// The test CA's certificate (PEM, readable by everyone). Without TLS it
    /// is still created, so `sslmode=verify-ca` has a root to fail against.
    pub ca_cert: PathBuf,
    /// The directory holding the server's Unix socket.
    pub socket_dir: PathBuf,
    /// The psql this server is driven with (also usable by tests as a client).
    pub psql: PathBuf,
    /// The server's stderr log.
    pub log: PathBuf,
    child: Child,
    _dir: tempfile::TempDir,
}

/// What to start: see [`PgServer::builder`].
#[derive(Debug, Clone)]
pub struct PgBuilder {
    tls: bool,
    self_signed: bool,
    max_connections: u32,
    auth: &'static str,
}

impl PgBuilder {
    /// `ssl=on` with a certificate for localhost/127.0.0.1 signed by a test CA, and TCP
    /// clients must use `hostssl`; without, `ssl=off` and `host`.
    pub fn tls(mut self, on: bool) -> Self {
        self.tls = on;
        self
    }
    /// TLS, and the server's certificate is the self-signed CA itself
    /// (`basicConstraints=CA:TRUE`): `ca_cert` is both the server's certificate
    /// and the root that verifies it, a set-up psql accepts.
    pub fn self_signed(mut self) -> Self {
        self.tls = true;
        self.self_signed = true;
        self
    }
    /// How many sessions the server allows at once (30 unless set).
    pub fn max_connections(mut self, n: u32) -> Self {
        self.max_connections = n;
        self
    }
    /// How TCP clients log in: `scram-sha-256` (the default), `md5` or `password`.
    /// Passwords are stored as MD5 for `md5`, as SCRAM otherwise.
    pub fn auth(mut self, method: &'static str) -> Self {
        self.auth = method;
        self
    }
    /// Starts it; None (SKIPPED) when initdb/postgres, psql or openssl is missing
    /// and the run is not strict.
    pub fn start(self) -> Option<PgServer> {
        PgServer::start_built(&self)
    }
}

/// The directory with initdb and postgres: $PG_BINDIR, `pg_config --bindir`,
/// or the newest /usr/lib/postgresql/*/bin (Debian keeps them off PATH).
pub fn bindir() -> Option<PathBuf> {
    let has_server = |d: &Path| d.join("initdb").is_file() && d.join("postgres").is_file();
    if let Some(d) = std::env::var_os("PG_BINDIR") {
        let d = PathBuf::from(d);
        return has_server(&d).then_some(d);
    }
    if let Ok(o) = Command::new("pg_config").arg("--bindir").output()
        && o.status.success()
    {
        let d = PathBuf::from(String::from_utf8_lossy(&o.stdout).trim());
        if has_server(&d) {
            return Some(d);
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let d = e.path().join("bin");
            has_server(&d).then_some((v, d))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, d)| d)
}

/// The OS user the server runs as: `postgres` when we are root (PostgreSQL
/// refuses to run as root), otherwise ourselves (None: no switch).
fn server_user() -> Result<Option<(u32, u32)>, ()> {
    // SAFETY: geteuid cannot fail. getpwnam_r (reentrant, unlike getpwnam:
    // tests start servers from parallel threads) writes only into `pw` and
    // `buf`, which outlive the call, and sets `found` to null or to `&pw`.
    unsafe {
        if libc::geteuid() != 0 {
            return Ok(None);
        }
        let mut pw: libc::passwd = std::mem::zeroed();
        let mut buf = vec![0 as libc::c_char; 16384];
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwnam_r(
            c"postgres".as_ptr(),
            &mut pw,
            buf.as_mut_ptr(),
            buf.len(),
            &mut found,
        );
        if rc != 0 || found.is_null() {
            return Err(());
        }
        Ok(Some((pw.pw_uid, pw.pw_gid)))
    }
}

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Makes a test CA and a server certificate for localhost/127.0.0.1 signed by it.
/// Returns (ca_cert, server_cert, server_key).
pub fn make_certs(openssl: &Path, ca_dir: &Path, server_dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let ca_key = ca_dir.join("ca.key");
    let ca_cert = ca_dir.join("ca.crt");
    let key = server_dir.join("server.key");
    let csr = server_dir.join("server.csr");
    let cert = server_dir.join("server.crt");
    let ext = server_dir.join("server.ext");
    // P-256 keys: as good as RSA for libpq and far quicker to generate.
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
    run(
        Command::new(openssl)
            .args(["req", "-x509", "-nodes", "-days", "2"])
            .args(ec)
            .arg("-keyout")
            .arg(&ca_key)
            .arg("-out")
            .arg(&ca_cert)
            .args(["-subj", "/CN=redshift-creds test CA"])
            .args(["-addext", "basicConstraints=critical,CA:TRUE"])
            .args([
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
            ])
            // Names, so that the CA can also serve as the server's own
            // certificate ([`PgBuilder::self_signed`]).
            .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"]),
        "openssl: CA",
    );
    run(
        Command::new(openssl)
            .args(["req", "-new", "-nodes"])
            .args(ec)
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&csr)
            .args(["-subj", "/CN=localhost"]),
        "openssl: server key",
    );
    std::fs::write(
        &ext,
        "basicConstraints=CA:FALSE\n\
         keyUsage=critical,digitalSignature,keyEncipherment\n\
         extendedKeyUsage=serverAuth\n\
         subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .unwrap();
    let serial = format!(
        "0x{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    run(
        Command::new(openssl)
            .args(["x509", "-req", "-days", "2", "-set_serial", &serial])
            .arg("-in")
            .arg(&csr)
            .arg("-CA")
            .arg(&ca_cert)
            .arg("-CAkey")
            .arg(&ca_key)
            .arg("-extfile")
            .arg(&ext)
            .arg("-out")
            .arg(&cert),
        "openssl: sign server certificate",
    );
    chmod(&ca_cert, 0o644);
    chmod(&ca_key, 0o600);
    chmod(&key, 0o600);
    chmod(&cert, 0o644);
    (ca_cert, cert, key)
}

/// [`make_certs`]; with `self_signed`, the server presents the CA's own
/// certificate and key (copied into `pg`) instead. Returns (ca_cert, server_cert, server_key).
fn server_certs(
    openssl: &Path,
    top: &Path,
    pg: &Path,
    self_signed: bool,
) -> (PathBuf, PathBuf, PathBuf) {
    let (ca_cert, cert, key) = make_certs(openssl, top, pg);
    if !self_signed {
        return (ca_cert, cert, key);
    }
    let (cert, key) = (pg.join("server-ca.crt"), pg.join("server-ca.key"));
    std::fs::copy(&ca_cert, &cert).unwrap();
    std::fs::copy(top.join("ca.key"), &key).unwrap();
    chmod(&key, 0o600);
    (ca_cert, cert, key)
}

/// Another self-signed CA certificate (CA:TRUE) for localhost, in `dir`.
pub fn other_ca(dir: &Path) -> PathBuf {
    let openssl = require_tool("openssl", "OPENSSL").expect("openssl");
    let (key, cert) = (dir.join("other-ca.key"), dir.join("other-ca.crt"));
    run(
        Command::new(openssl)
            .args(["req", "-x509", "-nodes", "-days", "2"])
            .args(["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .args(["-subj", "/CN=another test CA"])
            .args(["-addext", "basicConstraints=critical,CA:TRUE"])
            .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"]),
        "openssl: another CA",
    );
    cert
}

/// A PostgreSQL string literal.
fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Polls until the server accepts connections on its socket (30 s), or
/// returns its log when it exits or the deadline passes.
fn wait_ready(
    child: &mut Child,
    bin: &Path,
    sock: &Path,
    port: u16,
    log: &Path,
) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let log = || std::fs::read_to_string(log).unwrap_or_default();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("postgres exited with {status}:\n{}", log()));
        }
        let ready = Command::new(bin.join("pg_isready"))
            .arg("-h")
            .arg(sock)
            .args([
                "-p",
                &port.to_string(),
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-q",
            ])
            .status()
            .is_ok_and(|s| s.success());
        if ready {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("postgres not ready after 30 s:\n{}", log()));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Writes pg_hba.conf (TCP clients: `hostssl` with `tls`, else `host`; both with the
/// builder's auth method) and the test settings into postgresql.conf; `tls` is the
/// server's certificate and key.
fn configure(data: &Path, sock: &Path, tls: Option<(&PathBuf, &PathBuf)>, b: &PgBuilder) {
    let host = if tls.is_some() { "hostssl" } else { "host" };
    let hba = format!(
        "local all all trust\n{host} all all 127.0.0.1/32 {}\n",
        b.auth
    );
    std::fs::write(data.join("pg_hba.conf"), hba).unwrap();
    let encryption = if b.auth == "md5" {
        "md5"
    } else {
        "scram-sha-256"
    };
    let max_connections = b.max_connections;
    let mut conf = format!(
        "\n# redshift-creds tests\n\
         listen_addresses = '127.0.0.1'\n\
         unix_socket_directories = {}\n\
         fsync = off\n\
         synchronous_commit = off\n\
         full_page_writes = off\n\
         shared_buffers = 16MB\n\
         max_connections = {max_connections}\n\
         password_encryption = '{encryption}'\n\
         logging_collector = off\n\
         log_connections = on\n",
        literal(sock.to_str().unwrap()),
    );
    if let Some((cert, key)) = tls {
        conf += &format!(
            "ssl = on\nssl_cert_file = {}\nssl_key_file = {}\n",
            literal(cert.to_str().unwrap()),
            literal(key.to_str().unwrap())
        );
    } else {
        conf += "ssl = off\n";
    }
    std::fs::OpenOptions::new()
        .append(true)
        .open(data.join("postgresql.conf"))
        .unwrap()
        .write_all(conf.as_bytes())
        .unwrap();
}

impl PgServer {
    /// What to start: TLS off, scram-sha-256, 30 connections, until set otherwise.
    /// The superuser `postgres` is trusted over the Unix socket only.
    pub fn builder() -> PgBuilder {
        PgBuilder {
            tls: false,
            self_signed: false,
            max_connections: 30,
            auth: "scram-sha-256",
        }
    }

    /// A server with or without TLS and the other defaults of [`PgServer::builder`].
    pub fn start(tls: bool) -> Option<PgServer> {
        Self::builder().tls(tls).start()
    }

    fn start_built(b: &PgBuilder) -> Option<PgServer> {
        let Some(bin) = bindir() else {
            skip_or_fail(
                "PostgreSQL's initdb and postgres are not installed \
                 (set PG_BINDIR, or run tests/run.sh, which installs them)",
            );
            return None;
        };
        let psql = Some(bin.join("psql"))
            .filter(|p| p.is_file())
            .or_else(|| require_tool("psql", "PSQL"))?;
        let openssl = require_tool("openssl", "OPENSSL")?;
        let Ok(owner) = server_user() else {
            skip_or_fail(
                "running as root, and there is no `postgres` OS user to run PostgreSQL as \
                 (run tests/run.sh, which installs the postgresql package that creates it)",
            );
            return None;
        };

        // Layout (the top is world-traversable so the server user can reach
        // its parts, and clients can read the CA):
        //   top/ca.crt ca.key postgres.log
        //   top/pg/    (server user, 0700) data/ server.crt server.key
        //   top/sock/  (server user, 0755) the Unix socket
        let dir = Self::tempdir(owner);
        let top = dir.path().to_path_buf();
        let pg = top.join("pg");
        let sock = top.join("sock");
        std::fs::create_dir(&pg).unwrap();
        std::fs::create_dir(&sock).unwrap();
        chmod(&pg, 0o700);
        chmod(&sock, 0o755);
        let (ca_cert, cert, key) = server_certs(&openssl, &top, &pg, b.self_signed);
        let data = pg.join("data");
        if let Some((uid, gid)) = owner {
            for p in [
                &pg,
                &sock,
                &cert,
                &key,
                &pg.join("server.csr"),
                &pg.join("server.ext"),
            ] {
                std::os::unix::fs::chown(p, Some(uid), Some(gid)).unwrap();
            }
        }

        let as_server = |program: PathBuf| {
            let mut c = Command::new(program);
            c.env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                .env("LC_ALL", "C")
                .current_dir(&top);
            if let Some((uid, gid)) = owner {
                // std drops root's supplementary groups when it sets the uid.
                c.uid(uid).gid(gid);
            }
            c
        };

        run(
            as_server(bin.join("initdb"))
                .arg("-D")
                .arg(&data)
                .args(["-U", "postgres", "-E", "UTF8", "--no-locale", "--no-sync"])
                .args(["--auth-local=trust", "--auth-host=scram-sha-256"]),
            "initdb",
        );
        configure(&data, &sock, b.tls.then_some((&cert, &key)), b);

        let log = top.join("postgres.log");
        let mut attempt = 0;
        loop {
            attempt += 1;
            // A port picked by the kernel and released: another process can
            // take it before the server binds, so a bind failure retries.
            let port = free_port();
            let mut child = as_server(bin.join("postgres"))
                .arg("-D")
                .arg(&data)
                .args(["-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .expect("postgres: cannot start");
            match wait_ready(&mut child, &bin, &sock, port, &log) {
                Ok(()) => {
                    return Some(PgServer {
                        port,
                        ca_cert,
                        socket_dir: sock,
                        psql,
                        log,
                        child,
                        _dir: dir,
                    });
                }
                Err(text) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let bind_failed = text.contains("could not bind")
                        || text.contains("could not create any TCP/IP sockets")
                        || text.contains("Address already in use");
                    assert!(
                        bind_failed && attempt < 3,
                        "postgres did not start (attempt {attempt}):\n{text}"
                    );
                }
            }
        }
    }

    /// The temp dir, where the server user can reach it: $TMPDIR normally,
    /// /tmp when $TMPDIR's ancestors are closed to that user or its path is
    /// too long for a Unix socket.
    fn tempdir(owner: Option<(u32, u32)>) -> tempfile::TempDir {
        let make = |base: &Path| {
            let d = tempfile::Builder::new()
                .prefix("redshift-creds-pg")
                .tempdir_in(base)
                .unwrap();
            chmod(d.path(), 0o755);
            d
        };
        let d = make(&std::env::temp_dir());
        // The socket path (dir + "/sock/.s.PGSQL.NNNNN") must fit in
        // sun_path (107 bytes on Linux); a long $TMPDIR would not.
        if d.path().as_os_str().len() > 80 {
            return make(Path::new("/tmp"));
        }
        let Some((uid, gid)) = owner else {
            return d;
        };
        let reachable = Command::new("test")
            .arg("-x")
            .arg(d.path())
            .uid(uid)
            .gid(gid)
            .status()
            .is_ok_and(|s| s.success());
        if reachable {
            d
        } else {
            make(Path::new("/tmp"))
        }
    }

    /// `psql -At` as the superuser over the Unix socket, with `sql` on stdin
    /// (so psql variables given as `vars` are interpolated: `:'v'` as a
    /// literal, `:"v"` as an identifier). Panics on any SQL error.
    fn psql_stdin(&self, sql: &str, vars: &[(&str, &str)]) -> String {
        let mut c = Command::new(&self.psql);
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .arg("-X")
            .arg("-h")
            .arg(&self.socket_dir)
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                "postgres",
            ])
            .args(["-At", "-q", "-v", "ON_ERROR_STOP=1", "-f", "-"]);
        for (k, v) in vars {
            c.arg("-v").arg(format!("{k}={v}"));
        }
        let mut child = c
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("psql: cannot start");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(sql.as_bytes())
            .unwrap();
        let o = child.wait_with_output().unwrap();
        assert!(
            o.status.success(),
            "psql as superuser failed ({}): {sql}\nstderr: {}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }

    /// Runs SQL as the superuser over the Unix socket and returns stdout
    /// (`psql -At`, one line per row, `|` between columns).
    pub fn superuser_sql(&self, sql: &str) -> String {
        self.psql_stdin(sql, &[])
    }

    /// Creates `role` (LOGIN) when missing and sets its password. Both go to
    /// psql as variables, so `IAM:alice` and passwords with quotes,
    /// backslashes or colons arrive exactly.
    pub fn set_password(&self, role: &str, password: &str) {
        self.psql_stdin(
            "select format('create role %I login', :'role')\n\
             where not exists (select from pg_roles where rolname = :'role') \\gexec\n\
             alter role :\"role\" with login password :'pw';\n",
            &[("role", role), ("pw", password)],
        );
    }

    /// The server's log so far (connections are logged), for assertion messages.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        // SIGQUIT: immediate shutdown; the postmaster takes its backends with it.
        // SAFETY: signalling our own child's pid, which we have not reaped.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGQUIT);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The shared servers' (postmaster pid, top directory), stopped at exit: a
/// static is never dropped.
static SHARED: Mutex<Vec<(libc::pid_t, PathBuf)>> = Mutex::new(Vec::new());

extern "C" fn stop_shared() {
    let list = std::mem::take(&mut *SHARED.lock().unwrap_or_else(|e| e.into_inner()));
    for (pid, dir) in list {
        // SAFETY: plain syscalls on a child pid we started and have not reaped.
        unsafe {
            libc::kill(pid, libc::SIGQUIT);
            libc::waitpid(pid, std::ptr::null_mut(), 0);
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// One TLS server per auth method (`scram-sha-256`, `md5` or `password`), 240
/// connections, started on first use and kept for the whole test process (then
/// stopped and removed at exit). A missing PostgreSQL is a failure here, strict or not.
pub fn shared(method: &'static str) -> &'static PgServer {
    static SCRAM: OnceLock<PgServer> = OnceLock::new();
    static MD5: OnceLock<PgServer> = OnceLock::new();
    static PASSWORD: OnceLock<PgServer> = OnceLock::new();
    let cell = match method {
        "scram-sha-256" => &SCRAM,
        "md5" => &MD5,
        "password" => &PASSWORD,
        m => panic!("no shared server for {m}"),
    };
    cell.get_or_init(|| {
        let server = PgServer::builder()
            .tls(true)
            .max_connections(240)
            .auth(method)
            .start()
            .expect("PostgreSQL (initdb, postgres, psql, openssl) is required here");
        let mut list = SHARED.lock().unwrap();
        if list.is_empty() {
            // SAFETY: registers a plain extern "C" function, run at exit().
            unsafe { libc::atexit(stop_shared) };
        }
        let pid = libc::pid_t::try_from(server.child.id()).unwrap();
        list.push((pid, server._dir.path().to_path_buf()));
        server
    })
}
