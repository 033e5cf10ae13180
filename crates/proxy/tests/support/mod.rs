//! Test peers for the proxy: real PostgreSQL servers (`redshift-creds-testkit`'s, one per
//! auth method, shared by the tests of this binary), fake password sources, a running proxy, and psql.

#![allow(dead_code)]

pub mod fake;

pub use redshift_creds_testkit::pg;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redshift_creds_proxy::{
    Bound, Listen, Login, Options, PasswordSource, Proxy, SourceError, SslMode, Target, Upstream,
    upstream_tls,
};
use secrecy::SecretString;

/// A password source with a fixed user and a password the test can change, counting calls.
pub struct FakeSource {
    pub user: String,
    pub password: Mutex<String>,
    /// Set: `login` fails with it.
    pub fail: Mutex<Option<SourceError>>,
    /// Set: cached logins (fresh = false) return this password instead (a stale cache).
    pub stale: Mutex<Option<String>>,
    pub logins: AtomicUsize,
    pub fresh_logins: AtomicUsize,
    pub refreshes: AtomicUsize,
}

impl FakeSource {
    pub fn new(user: &str, password: &str) -> Arc<FakeSource> {
        Arc::new(FakeSource {
            user: user.to_owned(),
            password: Mutex::new(password.to_owned()),
            fail: Mutex::new(None),
            stale: Mutex::new(None),
            logins: AtomicUsize::new(0),
            fresh_logins: AtomicUsize::new(0),
            refreshes: AtomicUsize::new(0),
        })
    }
    pub fn logins(&self) -> usize {
        self.logins.load(Ordering::SeqCst)
    }
    pub fn fresh_logins(&self) -> usize {
        self.fresh_logins.load(Ordering::SeqCst)
    }
}

/// A fake source's bookkeeping at the start of `login`: counts the call (and a fresh one),
/// then returns the failure the test set, if any.
pub fn count_login(
    fresh: bool,
    logins: &AtomicUsize,
    fresh_logins: &AtomicUsize,
    fail: &Mutex<Option<SourceError>>,
) -> Result<(), SourceError> {
    logins.fetch_add(1, Ordering::SeqCst);
    if fresh {
        fresh_logins.fetch_add(1, Ordering::SeqCst);
    }
    match fail.lock().unwrap().clone() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

impl PasswordSource for FakeSource {
    fn login(&self, fresh: bool) -> Result<Login, SourceError> {
        count_login(fresh, &self.logins, &self.fresh_logins, &self.fail)?;
        let stale = if fresh {
            None
        } else {
            self.stale.lock().unwrap().clone()
        };
        let password = stale.unwrap_or_else(|| self.password.lock().unwrap().clone());
        Ok(Login::password(
            self.user.clone(),
            SecretString::from(password),
            4_000_000_000,
        ))
    }
    fn refresh_ahead(&self) {
        self.refreshes.fetch_add(1, Ordering::SeqCst);
    }
}

/// A proxy running on the current runtime; dropped = shut down.
pub struct Running {
    pub addrs: Vec<(String, Bound)>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    pub task: Option<tokio::task::JoinHandle<Result<(), redshift_creds_proxy::ProxyError>>>,
}

impl Running {
    /// The first TCP address.
    pub fn tcp(&self) -> std::net::SocketAddr {
        self.addrs
            .iter()
            .find_map(|(_, b)| match b {
                Bound::Tcp(a) => Some(*a),
                Bound::Unix(_) => None,
            })
            .expect("a TCP listener")
    }
    /// The first Unix socket path.
    pub fn unix(&self) -> PathBuf {
        self.addrs
            .iter()
            .find_map(|(_, b)| match b {
                Bound::Unix(p) => Some(p.clone()),
                Bound::Tcp(_) => None,
            })
            .expect("a Unix listener")
    }
    /// Triggers the shutdown.
    pub fn shutdown(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Binds and runs a proxy with `targets` and `options`.
pub fn start(targets: Vec<Target>, options: Options) -> Running {
    let proxy = Proxy::bind(targets, options).expect("bind");
    let addrs = proxy.local_addrs().to_vec();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(proxy.run(async move {
        let _ = rx.await;
    }));
    Running {
        addrs,
        stop: Some(tx),
        task: Some(task),
    }
}

/// A target on 127.0.0.1:0 (and `unix` if given) for `host:port` verified against `ca`.
pub fn target(
    port: u16,
    ca: &Path,
    source: Arc<dyn PasswordSource>,
    unix: Option<&Path>,
) -> Target {
    let mut listen = vec![Listen::Tcp("127.0.0.1:0".parse().unwrap())];
    if let Some(d) = unix {
        listen.push(Listen::Unix(d.to_owned()));
    }
    Target {
        name: "test".into(),
        listen,
        upstream: Upstream {
            host: "127.0.0.1".into(),
            port,
            tls: upstream_tls(SslMode::VerifyFull, Some(ca)).unwrap(),
            db_name: None,
        },
        source,
    }
}

/// A proxy in front of a shared PostgreSQL ([`pg::shared`]) that logs in as one role,
/// until [`Front::start`]: scram-sha-256, password `pw`, TCP only, default options.
pub struct Front {
    method: &'static str,
    role: String,
    password: String,
    unix: Option<PathBuf>,
    options: Options,
    db_name: Option<String>,
    source: Option<Arc<FakeSource>>,
}

/// What [`Front::start`] started: the server, the password source, the proxy.
pub struct Fronted {
    pub pg: &'static pg::PgServer,
    pub source: Arc<FakeSource>,
    pub proxy: Running,
}

/// A [`Front`] for `role`.
pub fn front(role: &str) -> Front {
    Front {
        method: "scram-sha-256",
        role: role.to_owned(),
        password: "pw".to_owned(),
        unix: None,
        options: Options::default(),
        db_name: None,
        source: None,
    }
}

impl Front {
    /// The server's auth method (`scram-sha-256`, `md5` or `password`).
    pub fn method(mut self, method: &'static str) -> Self {
        self.method = method;
        self
    }
    /// The role's password, on the server and in the source.
    pub fn password(mut self, password: &str) -> Self {
        self.password = password.to_owned();
        self
    }
    /// Also a Unix socket in `dir`.
    pub fn unix(mut self, dir: &Path) -> Self {
        self.unix = Some(dir.to_owned());
        self
    }
    pub fn options(mut self, options: Options) -> Self {
        self.options = options;
        self
    }
    /// The only database the target serves.
    pub fn db_name(mut self, db: &str) -> Self {
        self.db_name = Some(db.to_owned());
        self
    }
    /// This source instead of a new one.
    pub fn source(mut self, source: Arc<FakeSource>) -> Self {
        self.source = Some(source);
        self
    }
    /// Sets the role's password on the server and starts the proxy on this runtime.
    pub fn start(self) -> Fronted {
        let pg = pg::shared(self.method);
        pg.set_password(&self.role, &self.password);
        let source = self
            .source
            .unwrap_or_else(|| FakeSource::new(&self.role, &self.password));
        let mut t = target(pg.port, &pg.ca_cert, source.clone(), self.unix.as_deref());
        t.upstream.db_name = self.db_name;
        let proxy = start(vec![t], self.options);
        Fronted { pg, source, proxy }
    }
}

/// The psql binary, from PostgreSQL's bindir. Missing = test failure.
pub fn psql() -> PathBuf {
    let p = pg::bindir()
        .expect("PostgreSQL is not installed (set PG_BINDIR)")
        .join("psql");
    assert!(p.is_file(), "psql is missing at {}", p.display());
    p
}

/// Runs psql with `conninfo` and `-Atc sql` (as `user` via runuser when given).
pub async fn run_psql(conninfo: &str, sql: &str, user: Option<&str>) -> Output {
    let mut cmd = match user {
        Some(u) => {
            let mut c = tokio::process::Command::new("runuser");
            c.args(["-u", u, "--"]).arg(psql());
            c
        }
        None => tokio::process::Command::new(psql()),
    };
    cmd.args(["-X", "-At", "-d", conninfo, "-c", sql])
        .env_remove("PGPASSWORD")
        .env("PGCONNECT_TIMEOUT", "10")
        .kill_on_drop(true);
    tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("psql hung")
        .expect("cannot run psql")
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).trim().to_owned()
}

/// A fresh private directory for a Unix socket, short enough for sun_path.
pub fn socket_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("rcp")
        .tempdir_in("/tmp")
        .unwrap()
}

/// Logs to the test output when RUST_LOG is set.
pub fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}
