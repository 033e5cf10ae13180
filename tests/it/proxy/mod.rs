//! `redshift-creds proxy` through the real binary: real clients through it to a real
//! PostgreSQL over verified TLS with passwords from the counting fake AWS, and how it
//! behaves (one API call for many clients, AWS failures, shutdown, bad listen values).
#![cfg(unix)]

mod attack;
mod behaviour;
mod clients;
mod endpoints;
mod idc;
mod service;
mod upstream_tls;

use crate::support::counting::CountingServer;
use crate::support::pg::{PgBuilder, PgServer};
use crate::support::{Sandbox, cred_args, verified_upstream};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

/// The role the fake AWS hands out, and its password, set on the real PostgreSQL.
pub const ROLE: &str = "IAM:alice";
const PASSWORD: &str = "proxy-test-pw-1";
/// Who the session is and whether its upstream leg is TLS.
pub const WHO: &str =
    "select current_user || '|' || ssl::text from pg_stat_ssl where pid = pg_backend_pid()";
/// What [`WHO`] answers through the proxy.
pub const WHO_ANSWER: &str = "IAM:alice|true";

/// The counting fake AWS answering with the role, a TLS-only PostgreSQL knowing it, a sandbox.
pub struct Rig {
    pub aws: CountingServer,
    pub pg: PgServer,
    pub sb: Sandbox,
    pub url: String,
    _turn: Turn,
}

/// The 200-client test runs alone among this module's tests: on two busy cores, 200 TLS
/// logins beside a dbt run can outlast the proxy's 30-second login timeout.
static TURNS: RwLock<()> = RwLock::new(());

enum Turn {
    Shared(#[allow(dead_code)] RwLockReadGuard<'static, ()>),
    Alone(#[allow(dead_code)] RwLockWriteGuard<'static, ()>),
}

impl Rig {
    pub fn start() -> Option<Rig> {
        let turn = Turn::Shared(TURNS.read().unwrap_or_else(|e| e.into_inner()));
        Self::start_with(30, turn)
    }

    /// With room for `max_connections` upstream sessions, while no other test of this
    /// module runs.
    pub fn start_alone(max_connections: u32) -> Option<Rig> {
        let turn = Turn::Alone(TURNS.write().unwrap_or_else(|e| e.into_inner()));
        Self::start_with(max_connections, turn)
    }

    fn start_with(max_connections: u32, turn: Turn) -> Option<Rig> {
        Self::on(
            PgServer::builder()
                .tls(true)
                .max_connections(max_connections),
            turn,
        )
    }

    /// A rig on the PostgreSQL `pg` starts, taking its `turn`.
    fn on(pg: PgBuilder, turn: Turn) -> Option<Rig> {
        let pg = pg.start()?;
        pg.set_password(ROLE, PASSWORD);
        let aws = CountingServer::start();
        aws.set_login(ROLE, PASSWORD);
        Some(Rig {
            url: aws.url(),
            aws,
            pg,
            sb: Sandbox::new(),
            _turn: turn,
        })
    }

    /// `proxy` with the credential flags, the PostgreSQL as upstream with verify-full, then `extra`.
    pub fn args(&self, extra: &[&str]) -> Vec<String> {
        let mut v = vec!["proxy".to_string()];
        v.extend(cred_args(&self.url, &[]).iter().map(|s| s.to_string()));
        let port = self.pg.port.to_string();
        let upstream = verified_upstream(&port, self.pg.ca_cert.to_str().unwrap());
        v.extend(upstream.iter().map(|s| s.to_string()));
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    }

    /// Starts `redshift-creds proxy` with [`Rig::args`] and waits until it listens.
    pub fn proxy(&self, extra: &[&str]) -> Proxy {
        let args = self.args(extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Proxy::spawn(self.sb.cmd(&args))
    }

    /// The PostgreSQL log, for assertion messages.
    pub fn log(&self) -> String {
        self.pg.log_text()
    }
}

/// The (address, name) of each `listening on ADDR for NAME` line in `stderr`.
fn listening(stderr: &str) -> Vec<(String, String)> {
    stderr
        .lines()
        .filter_map(|l| l.strip_prefix("listening on "))
        .filter_map(|l| l.split_once(" for "))
        .map(|(a, n)| (a.to_string(), n.to_string()))
        .collect()
}

/// A PostgreSQL StartupMessage (protocol 3.0) with these parameters.
pub fn startup_message(params: &[(&str, &str)]) -> Vec<u8> {
    let mut body = 196_608_i32.to_be_bytes().to_vec();
    for (k, v) in params {
        body.extend_from_slice(k.as_bytes());
        body.push(0);
        body.extend_from_slice(v.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut msg = ((body.len() + 4) as i32).to_be_bytes().to_vec();
    msg.extend(body);
    msg
}

/// A running `redshift-creds proxy`, killed on drop.
pub struct Proxy {
    pub child: Child,
    stderr: Arc<Mutex<String>>,
    /// The addresses from the `listening on ADDR for NAME` lines, in order.
    pub listening: Vec<(String, String)>,
}

impl Proxy {
    /// Spawns the command and waits (20 s) for its `listening on` lines; panics with its
    /// stderr if it exits first.
    pub fn spawn(cmd: Command) -> Proxy {
        Proxy::spawn_with(cmd, listening)
    }

    /// [`Proxy::spawn`] for a proxy whose `listening on` lines `listening` reads out of its
    /// stderr (plain text, or JSON for `--structured-logs`).
    pub fn spawn_with(mut cmd: Command, listening: fn(&str) -> Vec<(String, String)>) -> Proxy {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start redshift-creds proxy");
        let stderr = Arc::new(Mutex::new(String::new()));
        let (pipe, text) = (child.stderr.take().unwrap(), stderr.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let mut t = text.lock().unwrap();
                t.push_str(&line);
                t.push('\n');
            }
        });
        let mut p = Proxy {
            child,
            stderr,
            listening: Vec::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            std::thread::sleep(Duration::from_millis(50));
            if let Ok(Some(status)) = p.child.try_wait() {
                std::thread::sleep(Duration::from_millis(100));
                panic!("the proxy exited with {status}: {}", p.stderr());
            }
            assert!(
                Instant::now() < deadline,
                "no listening line: {}",
                p.stderr()
            );
            // Every listener is bound before the first line is printed, so one means all
            // are on their way; give the rest a moment to be read.
            if !listening(&p.stderr()).is_empty() {
                std::thread::sleep(Duration::from_millis(100));
                p.listening = listening(&p.stderr());
                return p;
            }
        }
    }

    /// The first TCP listener.
    pub fn tcp(&self) -> SocketAddr {
        self.listening
            .iter()
            .find_map(|(a, _)| a.parse().ok())
            .expect("a TCP listener")
    }

    /// The Unix socket path of the first `unix:` listener.
    pub fn unix(&self) -> PathBuf {
        self.listening
            .iter()
            .find(|(a, _)| a.starts_with('/'))
            .map(|(a, _)| PathBuf::from(a))
            .expect("a Unix listener")
    }

    /// What the proxy printed on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        // SAFETY: signalling our own child, which has not been reaped.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
    }

    /// Waits up to `limit` for the proxy to exit, returning its exit code.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal PostgreSQL client for the behaviour tests: plain TCP (the proxy's client
/// side), protocol 3.0 startup with no password, and simple queries.
pub struct Raw {
    s: TcpStream,
}

/// An ErrorResponse: SQLSTATE and message.
#[derive(Debug)]
pub struct PgError {
    pub code: String,
    pub message: String,
}

impl Raw {
    /// Connects and starts a session as `user` on `database`; Err when the server says no.
    pub fn connect(addr: SocketAddr, user: &str, database: &str) -> Result<Raw, PgError> {
        let s = TcpStream::connect(addr).map_err(io_error)?;
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let msg = startup_message(&[("user", user), ("database", database)]);
        let mut raw = Raw { s };
        raw.s.write_all(&msg).map_err(io_error)?;
        loop {
            let (kind, data) = raw.read().map_err(io_error)?;
            match kind {
                b'R' if data[..4] != [0, 0, 0, 0] => {
                    return Err(PgError {
                        code: "client".into(),
                        message: "the proxy asked the client for a password".into(),
                    });
                }
                b'E' => return Err(parse_error(&data)),
                b'Z' => return Ok(raw),
                _ => {}
            }
        }
    }

    /// Runs `sql` and returns the first column of each row.
    pub fn query(&mut self, sql: &str) -> Result<Vec<String>, PgError> {
        let mut msg = vec![b'Q'];
        msg.extend(((sql.len() + 5) as i32).to_be_bytes());
        msg.extend(sql.as_bytes());
        msg.push(0);
        self.s.write_all(&msg).map_err(io_error)?;
        let (mut rows, mut err) = (Vec::new(), None);
        loop {
            let (kind, data) = self.read().map_err(io_error)?;
            match kind {
                b'D' => {
                    let len = i32::from_be_bytes(data[2..6].try_into().unwrap());
                    rows.push(String::from_utf8_lossy(&data[6..6 + len.max(0) as usize]).into());
                }
                b'E' => err = Some(parse_error(&data)),
                b'Z' => return err.map_or(Ok(rows), Err),
                _ => {}
            }
        }
    }

    fn read(&mut self) -> std::io::Result<(u8, Vec<u8>)> {
        let mut head = [0u8; 5];
        self.s.read_exact(&mut head)?;
        let len = i32::from_be_bytes(head[1..5].try_into().unwrap()) as usize;
        let mut data = vec![0u8; len - 4];
        self.s.read_exact(&mut data)?;
        Ok((head[0], data))
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        let _ = self.s.write_all(&[b'X', 0, 0, 0, 4]);
    }
}

fn io_error(e: std::io::Error) -> PgError {
    PgError {
        code: "io".into(),
        message: e.to_string(),
    }
}

fn parse_error(data: &[u8]) -> PgError {
    let mut e = PgError {
        code: String::new(),
        message: String::new(),
    };
    for field in data.split(|b| *b == 0) {
        if let Some((&k, v)) = field.split_first() {
            let v = String::from_utf8_lossy(v).into_owned();
            match k {
                b'C' => e.code = v,
                b'M' => e.message = v,
                _ => {}
            }
        }
    }
    e
}
