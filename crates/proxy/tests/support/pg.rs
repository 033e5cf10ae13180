//! Throwaway PostgreSQL servers with TLS (certificates from the crate's own `client_tls`),
//! `hostssl`-only pg_hba with one auth method each, shared by the tests of a binary and
//! stopped at exit.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// A running server.
pub struct PgServer {
    pub port: u16,
    /// The CA that signed the server's certificate (for localhost/127.0.0.1).
    pub ca: PathBuf,
    pub socket_dir: PathBuf,
    pub log: PathBuf,
}

/// Servers to stop at exit: (postmaster pid, its top directory).
static STARTED: Mutex<Vec<(i32, PathBuf)>> = Mutex::new(Vec::new());

extern "C" fn stop_all() {
    let list = std::mem::take(&mut *STARTED.lock().unwrap_or_else(|e| e.into_inner()));
    for (pid, dir) in list {
        // SAFETY: plain syscalls on a child pid we started.
        unsafe {
            libc::kill(pid, libc::SIGQUIT);
            libc::waitpid(pid, std::ptr::null_mut(), 0);
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// PostgreSQL's bindir ($PG_BINDIR or /usr/lib/postgresql/15/bin). Missing = failure.
pub fn bindir() -> PathBuf {
    let d = std::env::var_os("PG_BINDIR").map_or_else(
        || PathBuf::from("/usr/lib/postgresql/15/bin"),
        PathBuf::from,
    );
    assert!(
        d.join("initdb").is_file() && d.join("postgres").is_file(),
        "PostgreSQL server binaries are missing in {} (apt-get install -y postgresql)",
        d.display()
    );
    d
}

/// The `postgres` OS user's (uid, gid). Missing = failure.
fn postgres_user() -> (u32, u32) {
    let o = Command::new("id")
        .args(["-u", "postgres"])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "there is no `postgres` OS user to run the server as"
    );
    let g = Command::new("id")
        .args(["-g", "postgres"])
        .output()
        .unwrap();
    let n = |b: &[u8]| String::from_utf8_lossy(b).trim().parse::<u32>().unwrap();
    (n(&o.stdout), n(&g.stdout))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn check(o: std::process::Output, what: &str) {
    assert!(
        o.status.success(),
        "{what}: {}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The shared server for `method` (`scram-sha-256`, `md5` or `password`).
pub fn server(method: &'static str) -> &'static PgServer {
    static SCRAM: OnceLock<PgServer> = OnceLock::new();
    static MD5: OnceLock<PgServer> = OnceLock::new();
    static PASSWORD: OnceLock<PgServer> = OnceLock::new();
    let cell = match method {
        "scram-sha-256" => &SCRAM,
        "md5" => &MD5,
        "password" => &PASSWORD,
        m => panic!("no server for {m}"),
    };
    cell.get_or_init(|| PgServer::start(method, true))
}

impl PgServer {
    /// Starts a server with `ssl = on/off` and TCP clients authenticated by `method`.
    pub fn start(method: &str, tls: bool) -> PgServer {
        let bin = bindir();
        let (uid, gid) = postgres_user();
        let top = tempfile::Builder::new()
            .prefix("rcp-pg")
            .tempdir_in("/tmp")
            .unwrap()
            .keep();
        std::fs::set_permissions(&top, std::fs::Permissions::from_mode(0o755)).unwrap();
        let (pg, sock, data) = (top.join("pg"), top.join("sock"), top.join("pg/data"));
        std::fs::create_dir(&pg).unwrap();
        std::fs::create_dir(&sock).unwrap();
        let (_, ca) = redshift_creds_proxy::client_tls(&top.join("tls")).unwrap();
        for f in ["server.crt", "server.key"] {
            std::fs::copy(top.join("tls").join(f), pg.join(f)).unwrap();
        }
        for p in [&pg, &sock, &pg.join("server.crt"), &pg.join("server.key")] {
            std::os::unix::fs::chown(p, Some(uid), Some(gid)).unwrap();
        }
        std::fs::set_permissions(&pg, std::fs::Permissions::from_mode(0o700)).unwrap();
        let as_pg = |prog: &str| {
            let mut c = Command::new(bin.join(prog));
            c.uid(uid).gid(gid).current_dir(&top).env("LC_ALL", "C");
            c
        };
        check(
            as_pg("initdb")
                .arg("-D")
                .arg(&data)
                .args(["-U", "postgres", "-E", "UTF8", "--no-locale", "--no-sync"])
                .args(["--auth-local=trust", "--auth-host=reject"])
                .output()
                .unwrap(),
            "initdb",
        );
        let hba = format!("local all all trust\nhostssl all all 127.0.0.1/32 {method}\n");
        std::fs::write(data.join("pg_hba.conf"), hba).unwrap();
        let encryption = if method == "md5" {
            "md5"
        } else {
            "scram-sha-256"
        };
        let conf = format!(
            "listen_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\nfsync = off\n\
             synchronous_commit = off\nfull_page_writes = off\nshared_buffers = 16MB\n\
             max_connections = 240\npassword_encryption = '{encryption}'\n\
             ssl = {}\nssl_cert_file = '{}'\nssl_key_file = '{}'\n",
            sock.display(),
            if tls { "on" } else { "off" },
            pg.join("server.crt").display(),
            pg.join("server.key").display(),
        );
        std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .and_then(|mut f| std::io::Write::write_all(&mut f, conf.as_bytes()))
            .unwrap();
        let log = top.join("postgres.log");
        let port = free_port();
        // Reaped by stop_all (waitpid) at exit, not through the Child.
        #[allow(clippy::zombie_processes)]
        let child = as_pg("postgres")
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("cannot start postgres");
        {
            let mut started = STARTED.lock().unwrap();
            if started.is_empty() {
                // SAFETY: registers a plain extern "C" function.
                unsafe { libc::atexit(stop_all) };
            }
            started.push((i32::try_from(child.id()).unwrap(), top.clone()));
        }
        let server = PgServer {
            port,
            ca,
            socket_dir: sock,
            log,
        };
        server.wait_ready();
        server
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ok = Command::new(bindir().join("pg_isready"))
                .arg("-h")
                .arg(&self.socket_dir)
                .args(["-p", &self.port.to_string(), "-U", "postgres", "-q"])
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "postgres not ready:\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs SQL as the superuser over the Unix socket; returns stdout.
    pub fn sql(&self, sql: &str) -> String {
        let o = Command::new(bindir().join("psql"))
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
            .args(["-X", "-Atq", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()
            .unwrap();
        check(o.clone(), sql);
        String::from_utf8_lossy(&o.stdout).trim().to_owned()
    }

    /// Creates a login role `name` with `password`.
    pub fn role(&self, name: &str, password: &str) {
        self.sql(&format!("CREATE ROLE {name} LOGIN PASSWORD '{password}'"));
    }

    pub fn ca(&self) -> &Path {
        &self.ca
    }
}
