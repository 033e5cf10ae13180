//! `redshift-creds proxy`: the command's targets from flags or the config file, and the
//! [`PasswordSource`] that gives the proxy engine its logins from the same cache as `get`.

use crate::ahead::RefreshAhead;
use crate::source::Aws;
use redshift_creds_core::cache::refresh::{self, Clock, SystemClock};
use redshift_creds_core::cli::{ConnArgs, CredArgs, ProxyArgs};
use redshift_creds_core::config::{ProcessEnv, Resolved};
use redshift_creds_core::config_file::ListenAt;
use redshift_creds_core::credential::Credential;
use redshift_creds_core::endpoint::DEFAULT_PORT;
use redshift_creds_core::error::{AwsFailure, Error};
use redshift_creds_core::signin::Idc;
use redshift_creds_core::token::IdcToken;
use redshift_creds_core::{commands, config_file, private_fs, report, source, tls};
use redshift_creds_proxy::{
    Listen, Login, Options, PasswordSource, ProxyError, SourceError, SslMode, Target, Upstream,
};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Where the proxy listens when neither `--listen` nor the config file says.
const DEFAULT_LISTEN: &str = "127.0.0.1:5439";

/// A cached password with at least this many seconds left logs a session in at once;
/// the background refresh replaces it before then.
const MIN_LEFT: i64 = 10;

/// A forced fetch this recent is reused by other sessions whose password was rejected too.
const FORCED_REUSE: Duration = Duration::from_secs(5);

/// Runs `redshift-creds proxy` until SIGINT or SIGTERM (or, with `--check`, says what it
/// would serve and returns).
pub(crate) fn proxy(a: &ProxyArgs) -> Result<bool, Error> {
    // The flag turns JSON on before anything can be said; the key, once the file is read.
    if a.structured_logs {
        report::init_service_log(a.cred.verbose, true);
    }
    let keys = file_service(a)?;
    if !a.structured_logs {
        report::init_service_log(a.cred.verbose, keys.structured_logs == Some(true));
    }
    let service = service(a, keys)?;
    let plans = plans(a)?;
    if a.check {
        print!("{}", describe(&plans, &service, a.client_tls));
        return Ok(true);
    }
    // Keeps stderr one JSON object a line until the proxy has stopped.
    #[cfg(unix)]
    let _wrapped = if report::structured() {
        Some(
            report::json::wrap_stderr()
                .map_err(|e| Error::Proxy(format!("--structured-logs: cannot wrap stderr: {e}")))?,
        )
    } else {
        None
    };
    let targets = plans
        .into_iter()
        .map(build)
        .collect::<Result<Vec<_>, _>>()?;
    let mut options = Options {
        shutdown_timeout: Duration::from_secs(service.shutdown_timeout),
        http: service.http,
        max_connections: service.max_connections,
        min_shutdown_delay: Duration::from_secs(service.min_shutdown_delay),
        ..Options::default()
    };
    options.allowed_uids.extend(&service.allow_uid);
    if a.client_tls {
        let dir = client_tls_dir()?;
        if let Some(parent) = dir.parent() {
            // 0700 whatever the umask: a config.toml another user could drop
            // here would be read as ours.
            private_fs::create_private_dirs(parent).map_err(|source| Error::File {
                action: "create",
                path: parent.to_owned(),
                source,
            })?;
        }
        private_dir(&dir, "the client TLS directory")?;
        let (config, ca) = redshift_creds_proxy::client_tls(&dir).map_err(from_proxy)?;
        // Wrapped as JSON with --structured-logs, like the engine's `listening on` lines.
        eprintln!(
            "client TLS: clients verify the proxy with sslrootcert={}",
            ca.display()
        );
        options.client_tls = Some(config);
    }
    for dir in targets
        .iter()
        .flat_map(|t| &t.listen)
        .filter_map(|l| match l {
            Listen::Unix(dir) => Some(dir),
            Listen::Tcp(_) => None,
        })
    {
        private_dir(dir, "the socket directory")?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Proxy(format!("cannot start the proxy's runtime: {e}")))?;
    runtime
        .block_on(redshift_creds_proxy::serve(targets, options))
        .map_err(from_proxy)?;
    Ok(true)
}

/// A socket or client-TLS directory (`what`, for messages) by the one rule for private
/// directories, `private_fs`'s: its parents by the path rule (another user who could swap it
/// would receive the clients' logins), then the directory made 0700 whatever the umask,
/// refused unless it is ours with no group or other bits. The engine, which binds in it,
/// only asserts the same.
fn private_dir(dir: &std::path::Path, what: &str) -> Result<(), Error> {
    private_fs::check_parents(dir)
        .map_err(|reason| Error::Proxy(format!("unsafe directory {}: {reason}", dir.display())))?;
    private_fs::SafeDir::ensure_private_as(dir, what)
        .map(drop)
        .map_err(Error::Proxy)
}

/// Where `--client-tls` keeps its local CA.
fn client_tls_dir() -> Result<std::path::PathBuf, Error> {
    Ok(config_file::config_dir()
        .ok_or_else(|| Error::Usage("--client-tls: no config directory is known".into()))?
        .join("proxy-tls"))
}

/// The service options in force, each checked: the flag, else the config file's key.
#[derive(Debug)]
struct ServiceOptions {
    http: Option<SocketAddr>,
    max_connections: Option<usize>,
    shutdown_timeout: u64,
    min_shutdown_delay: u64,
    allow_uid: Vec<u32>,
    structured_logs: bool,
}

/// The config file's service keys for this run: with `--all` the top level's; for a named
/// connection its own, each else the top level's. No file, or no config directory: none.
fn file_service(a: &ProxyArgs) -> Result<Keys, Error> {
    let Some(path) = config_file::path(&ProcessEnv) else {
        return Ok(Keys::default());
    };
    let Some(file) = config_file::load(&path)? else {
        return Ok(Keys::default());
    };
    let top = file.service();
    let keys = match (&a.cred.name, a.all) {
        (_, true) => {
            for (name, c) in &file.connections {
                if !c.service().is_empty() {
                    report::warn(&format!(
                        "--all serves every connection in one process, so connection \
                         \"{name}\"'s own service keys are not used; the top-level ones are"
                    ));
                }
            }
            top
        }
        (Some(name), false) => match file.connections.get(name) {
            Some(c) => c.service().or(top),
            None => top,
        },
        (None, false) => top,
    };
    Ok(Keys {
        keys,
        path: Some(path),
    })
}

/// The service keys read, and the file they were read from.
#[derive(Default)]
struct Keys {
    keys: config_file::Service,
    path: Option<std::path::PathBuf>,
}

impl std::ops::Deref for Keys {
    type Target = config_file::Service;
    fn deref(&self) -> &config_file::Service {
        &self.keys
    }
}

/// Checks each service option; a bad one is a usage error naming the flag, or the key
/// and its file.
fn service(a: &ProxyArgs, keys: Keys) -> Result<ServiceOptions, Error> {
    let key = |name: &str| match &keys.path {
        Some(p) => format!("{name} in {}", p.display()),
        None => name.to_owned(),
    };
    let pick = |flag: Option<i64>, flag_name: &str, k: Option<i64>, key_name: &str| {
        flag.map(|v| (v, flag_name.to_owned()))
            .or_else(|| k.map(|v| (v, key(key_name))))
    };
    let seconds = |v: Option<(i64, String)>, default: u64| match v {
        None => Ok(default),
        Some((s @ 0..=86_400, _)) => Ok(s as u64),
        Some((s, input)) => Err(Error::invalid(
            &input,
            &s.to_string(),
            "must be 0 to 86400 seconds",
        )),
    };
    let shutdown_timeout = seconds(
        pick(
            a.shutdown_timeout,
            "--shutdown-timeout",
            keys.shutdown_timeout,
            "shutdown_timeout",
        ),
        30,
    )?;
    let min_shutdown_delay = seconds(
        pick(
            a.min_shutdown_delay,
            "--min-shutdown-delay",
            keys.min_shutdown_delay,
            "min_shutdown_delay",
        ),
        0,
    )?;
    let max_connections = match pick(
        a.max_connections,
        "--max-connections",
        keys.max_connections,
        "max_connections",
    ) {
        None => None,
        Some((n @ 1..=1_000_000, _)) => Some(n as usize),
        Some((n, input)) => {
            return Err(Error::invalid(
                &input,
                &n.to_string(),
                "must be 1 to 1000000",
            ));
        }
    };
    let http = match (&a.http, &keys.http) {
        (Some(v), _) => Some(parse_http(v, "--http")?),
        (None, Some(v)) => Some(parse_http(v, &key("http"))?),
        (None, None) => None,
    };
    let allow_uid = if a.allow_uid.is_empty() {
        keys.allow_uid.clone().unwrap_or_default()
    } else {
        a.allow_uid.clone()
    };
    Ok(ServiceOptions {
        http,
        max_connections,
        shutdown_timeout,
        min_shutdown_delay,
        allow_uid,
        structured_logs: report::structured(),
    })
}

/// An `--http` address: an IP address and a port (any address: nothing served there is secret).
fn parse_http(v: &str, input: &str) -> Result<SocketAddr, Error> {
    v.parse().map_err(|_| {
        Error::invalid(
            input,
            v,
            "expected IP:PORT, e.g. 127.0.0.1:9090, or 0.0.0.0:9090 in a pod",
        )
    })
}

/// What `--check` prints: each target, then the service options.
fn describe(plans: &[Plan], s: &ServiceOptions, client_tls: bool) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    for p in plans {
        let listen: Vec<String> = p
            .listen
            .iter()
            .map(|l| match l {
                Listen::Tcp(a) => a.to_string(),
                Listen::Unix(dir) => format!("unix:{}", dir.display()),
            })
            .collect();
        let c = &p.r.client;
        let upstream = match c
            .host
            .clone()
            .or_else(|| p.r.request.custom_domain_name.clone())
        {
            Some(host) => format!("{host}:{}", c.port.unwrap_or(DEFAULT_PORT)),
            None => format!("the endpoint of {} (looked up at start)", p.name),
        };
        let _ = writeln!(
            out,
            "serve {} on {} to {upstream} with sslmode {}",
            if p.name.is_empty() {
                &upstream
            } else {
                &p.name
            },
            listen.join(", "),
            p.r.tls().mode.as_str()
        );
    }
    let mut uids = Options::default().allowed_uids;
    uids.extend(&s.allow_uid);
    uids.sort_unstable();
    uids.dedup();
    let uids: Vec<String> = uids.iter().map(ToString::to_string).collect();
    let none = || "none".to_owned();
    let _ = write!(
        out,
        "http: {}\nmax_connections: {}\nshutdown_timeout: {}\nmin_shutdown_delay: {}\n\
         allow_uid: {}\nclient_tls: {client_tls}\nstructured_logs: {}\n",
        s.http.map_or_else(none, |h| h.to_string()),
        s.max_connections
            .map_or_else(|| "unlimited".to_owned(), |n| n.to_string()),
        s.shutdown_timeout,
        s.min_shutdown_delay,
        uids.join(" "),
        s.structured_logs,
    );
    out
}

/// Parses listen values by the core's rule; a bad one is a usage error naming `input` and
/// the rule.
fn parse_listen(specs: &[String], input: &str) -> Result<Vec<Listen>, Error> {
    specs
        .iter()
        .map(|s| {
            config_file::check_listen(s)
                .map(engine_listen)
                .map_err(|rule| Error::invalid(input, s, rule))
        })
        .collect()
}

/// A checked listen address as the engine takes it.
fn engine_listen(at: ListenAt) -> Listen {
    match at {
        ListenAt::Tcp(addr) => Listen::Tcp(addr),
        ListenAt::Unix(dir) => Listen::Unix(dir),
    }
}

/// The core's sslmode as the engine takes it. Exhaustive, so a new mode in the core does
/// not compile until it is mapped here.
pub(crate) fn engine_mode(mode: tls::SslMode) -> SslMode {
    match mode {
        tls::SslMode::Require => SslMode::Require,
        tls::SslMode::VerifyCa => SslMode::VerifyCa,
        tls::SslMode::VerifyFull => SslMode::VerifyFull,
    }
}

/// The `listen` of a named connection in the config file.
fn file_listen(name: &str) -> Result<Vec<Listen>, Error> {
    let (c, _) = config_file::connection(&ProcessEnv, name)?;
    parse_listen(c.listen.as_deref().unwrap_or_default(), "listen")
}

/// One target as resolved, before anything is looked up or bound.
struct Plan {
    r: Resolved,
    listen: Vec<Listen>,
    name: String,
    /// A browser sign-in (`--idc-issuer-url`): its access token logs the sessions in.
    signin: Option<Idc>,
}

/// The request as `get` would resolve it, and the browser sign-in it asks for, if any. A
/// sign-in's request is resolved as a token request (no database user), for the upstream
/// and its TLS; its token comes from the sign-in, not from GetIdentityCenterAuthToken.
fn resolve_target(cred: &CredArgs, conn: &ConnArgs) -> Result<(Resolved, Option<Idc>), Error> {
    let signin = redshift_creds_core::signin::wanted(cred)?;
    let r = match &signin {
        Some(_) => commands::resolve(
            &CredArgs {
                identity_center: true,
                idc_issuer_url: None,
                idc_region: None,
                idc_listen_port: None,
                idc_response_timeout: None,
                idc_client_display_name: None,
                ..cred.clone()
            },
            conn,
        )?,
        None => commands::resolve(cred, conn)?,
    };
    Ok((r, signin))
}

/// The targets of this run, resolved: the named connection or the flags, or with `--all`
/// every connection in the config file with `listen`.
fn plans(a: &ProxyArgs) -> Result<Vec<Plan>, Error> {
    let listen = parse_listen(&a.listen, "--listen")?;
    if a.all {
        return all_plans(a);
    }
    let (r, signin) = resolve_target(&a.cred, &a.conn)?;
    let listen = match (listen, &r.request.connection) {
        (l, _) if !l.is_empty() => l,
        (_, Some(name)) => file_listen(name)?,
        (_, None) => Vec::new(),
    };
    Ok(vec![plan(r, listen, signin)?])
}

/// `--all`: every connection in the config file with `listen`, each resolved as
/// `NAME` would be, with the credential and TLS flags given on top.
fn all_plans(a: &ProxyArgs) -> Result<Vec<Plan>, Error> {
    let path = config_file::path(&ProcessEnv).ok_or_else(|| {
        Error::Usage("--all: no config directory is known; set REDSHIFT_CREDS_CONFIG".into())
    })?;
    let file = config_file::load(&path)?.ok_or_else(|| {
        Error::Usage(format!(
            "--all needs a config file, and {} does not exist",
            path.display()
        ))
    })?;
    let names: Vec<&String> = file
        .connections
        .iter()
        .filter(|(_, c)| c.listen.as_ref().is_some_and(|l| !l.is_empty()))
        .map(|(name, _)| name)
        .collect();
    if names.is_empty() {
        return Err(Error::Usage(format!(
            "--all: no connection in {} has `listen`",
            path.display()
        )));
    }
    names
        .into_iter()
        .map(|name| {
            // The credential flags as given, for the connection `name`.
            let cred = CredArgs {
                name: Some(name.to_owned()),
                ..a.cred.clone()
            };
            let (r, signin) = resolve_target(&cred, &tls_only(&a.conn))?;
            plan(r, file_listen(name)?, signin)
        })
        .collect()
}

/// The TLS flags alone (`--all` takes no host or port: each connection has its own).
fn tls_only(c: &ConnArgs) -> ConnArgs {
    ConnArgs {
        host: None,
        port: None,
        sslmode: c.sslmode.clone(),
        sslrootcert: c.sslrootcert.clone(),
    }
}

/// A target's listeners (the default when none is given) and its name in `listening on
/// ADDR for NAME`: the connection, cluster or workgroup (else, at build, its upstream).
fn plan(r: Resolved, mut listen: Vec<Listen>, signin: Option<Idc>) -> Result<Plan, Error> {
    if listen.is_empty() {
        listen = parse_listen(&[DEFAULT_LISTEN.to_owned()], "--listen")?;
    }
    // The TLS rules and the root certificates are checked here, so that `--check` says a
    // bad sslrootcert (its content: a file that cannot be read is `r`'s error already).
    let tls = r.tls();
    if let Err(e) =
        redshift_creds_proxy::upstream_tls(engine_mode(tls.mode), tls.root_cert.as_deref())
    {
        return Err(match e {
            ProxyError::Tls(reason) => Error::Usage(format!("TLS: {reason}")),
            other => from_proxy(other),
        });
    }
    Ok(Plan {
        name: r.request.label(),
        r,
        listen,
        signin,
    })
}

/// One proxy target: the endpoint found as `exec` finds it, the TLS rules of `exec`,
/// and passwords from the shared cache.
fn build(plan: Plan) -> Result<Target, Error> {
    let Plan {
        r,
        listen,
        name,
        signin,
    } = plan;
    let endpoint = commands::endpoint(&r, &Aws::new(&r))?;
    let tls = r.tls();
    if let Some(note) = &tls.note {
        report::warn(note);
    }
    let name = Some(name)
        .filter(|l| !l.is_empty())
        .unwrap_or_else(|| format!("{}:{}", endpoint.host, endpoint.port));
    let upstream = Upstream {
        host: endpoint.host,
        port: endpoint.port,
        tls: redshift_creds_proxy::upstream_tls(engine_mode(tls.mode), tls.root_cert.as_deref())
            .map_err(from_proxy)?,
        db_name: r.request.db_name.clone(),
    };
    Ok(Target {
        name,
        listen,
        upstream,
        source: match signin {
            Some(idc) => {
                let source = Arc::new(SignedIn::new(idc));
                source.sign_in_at_start();
                source
            }
            None => Arc::new(AwsPasswords(Arc::new(Inner {
                r,
                refresh: Mutex::new(()),
                clock: &SystemClock,
                ahead: RefreshAhead::new(),
                last_forced: Mutex::new(None),
                fetches: AtomicU64::new(0),
            }))),
        },
    })
}

/// The proxy engine's errors as the tool's (a taken port, a socket directory that is not
/// private, a bad root certificate file): exit 1. Bad listen values never reach the engine.
fn from_proxy(e: ProxyError) -> Error {
    Error::Proxy(e.to_string())
}

/// Logins for one connection, from the cache `get` and `exec` use (same key, store and
/// lock), so all of them share one credential and one API call per window.
struct AwsPasswords(Arc<Inner>);

struct Inner {
    r: Resolved,
    /// One refresh at a time in this process; the others then find it in the cache.
    refresh: Mutex<()>,
    /// What every decision reads the time from (a fake one in tests).
    clock: &'static (dyn Clock + Sync),
    /// When to refresh in the background: on the last credential handed out, by the
    /// cache's `Freshness`, one at a time, pausing after each attempt.
    ahead: RefreshAhead,
    /// When the last forced fetch (after a rejected password) happened.
    last_forced: Mutex<Option<std::time::Instant>>,
    /// Fresh credentials fetched from AWS by this source, for `/metrics`.
    fetches: AtomicU64,
}

impl Inner {
    /// The cached credential while it has [`MIN_LEFT`] seconds, else one refreshed under the lock.
    fn current(&self) -> Result<Credential, Error> {
        let mut cache = source::credential_cache(&self.r)?;
        let margin = MIN_LEFT.min(self.r.settings.refresh_margin);
        if let Some(c) = refresh::fresh(&mut cache, self.clock, margin)? {
            return Ok(c);
        }
        let _one = self.refresh.lock().unwrap_or_else(|e| e.into_inner());
        self.obtain(&Aws::new(&self.r), self.r.settings.refresh_margin)
    }

    /// The credential if it outlives `margin`, else a fetched one (counted in `fetches`).
    fn obtain(&self, aws: &Aws, margin: i64) -> Result<Credential, Error> {
        let mut cache = source::credential_cache(&self.r)?;
        let fetch = aws.credential_fetch(&self.r);
        let (c, outcome) = refresh::obtain(&mut cache, &*fetch, self.clock, margin)?;
        if matches!(outcome, refresh::Outcome::Fetched) {
            self.fetches.fetch_add(1, Ordering::SeqCst);
        }
        Ok(c)
    }

    /// A credential fetched past the cache, because upstream rejected the cached one.
    fn forced(&self) -> Result<Credential, Error> {
        let _one = self.refresh.lock().unwrap_or_else(|e| e.into_inner());
        let mut last = self.last_forced.lock().unwrap_or_else(|e| e.into_inner());
        let aws = Aws::new(&self.r);
        if last.is_some_and(|t| t.elapsed() < FORCED_REUSE) {
            return self.obtain(&aws, 0);
        }
        tracing::info!(connection = %self.r.request.label(), "fetching a fresh password");
        // No cached entry outlives this margin: the fetch happens (under the lock).
        let c = self.obtain(&aws, i64::MAX)?;
        *last = Some(std::time::Instant::now());
        Ok(c)
    }

    /// Refreshes the cached entry in the background (AWS is asked only when it is still
    /// inside the refresh margin once the lock is held).
    fn refresh_in_background(self: &Arc<Self>) {
        let inner = self.clone();
        let spawned = std::thread::Builder::new()
            .name("refresh-ahead".into())
            .spawn(move || {
                let result = {
                    let _one = inner.refresh.lock().unwrap_or_else(|e| e.into_inner());
                    inner.obtain(&Aws::new(&inner.r), inner.r.settings.refresh_margin)
                };
                match &result {
                    Ok(c) => tracing::debug!(expiration = c.expiration, "refreshed ahead"),
                    Err(e) => tracing::warn!(error = %e, "refresh ahead failed"),
                }
                inner.ahead.finished(result.as_ref().ok());
            });
        if spawned.is_err() {
            self.ahead.finished(None);
        }
    }
}

/// The engine's login for a database user's temporary password.
fn password_login(c: &Credential) -> Login {
    Login::password(c.db_user.clone(), c.password.clone(), c.expiration)
}

/// The engine's login for an IAM Identity Center token: the proxy logs in with Redshift's
/// token login (authentication request 14) and names no database user.
fn token_login(t: &IdcToken) -> Login {
    Login::token(t.token.clone(), t.token_type.as_str(), t.expiration)
}

impl Inner {
    /// The connection's Identity Center token: the cached one while it outlives the refresh
    /// margin, else fetched under the lock; `fresh` (the server refused the last one, or
    /// tokens here are single-use) always fetches.
    fn token(&self) -> Result<IdcToken, Error> {
        self.token_within(self.r.settings.refresh_margin)
    }

    fn token_within(&self, margin: i64) -> Result<IdcToken, Error> {
        let _one = self.refresh.lock().unwrap_or_else(|e| e.into_inner());
        let (t, outcome) = Aws::new(&self.r).token_within(&self.r, margin)?;
        if matches!(outcome, refresh::Outcome::Fetched) {
            self.fetches.fetch_add(1, Ordering::SeqCst);
        }
        Ok(t)
    }
}

impl PasswordSource for AwsPasswords {
    fn login(&self, fresh: bool) -> Result<Login, SourceError> {
        let inner = &self.0;
        if inner.r.request.token.is_some() {
            let t = if fresh {
                inner.token_within(i64::MAX)
            } else {
                inner.token()
            }
            .map_err(|e| source_error(&e))?;
            return Ok(token_login(&t));
        }
        let c = if fresh {
            inner.forced()
        } else {
            inner.current()
        }
        .map_err(|e| source_error(&e))?;
        inner.ahead.handed_out(&c);
        Ok(password_login(&c))
    }

    fn refresh_ahead(&self) {
        let inner = &self.0;
        if inner.r.request.token.is_some() {
            return; // a token inside its margin is fetched in the foreground by `login`
        }
        if inner
            .ahead
            .start(inner.clock, inner.r.settings.refresh_margin)
        {
            inner.refresh_in_background();
        }
    }

    fn fetches(&self) -> u64 {
        self.0.fetches.load(Ordering::SeqCst)
    }
}

/// Logins for a connection with a browser sign-in: its access token, from the cache `get`
/// uses, renewed by the refresh token, or from one sign-in. The proxy starts that sign-in
/// at start-up when no token is cached; sessions that arrive meanwhile wait for it (as long
/// as a person may take, `--idc-response-timeout`) and share its token, or its failure.
struct SignedIn {
    idc: Idc,
    /// Calls that went past the cache (renewals and sign-ins), for `/metrics`.
    fetches: AtomicU64,
    /// One renewal or sign-in at a time in this process: the others wait here.
    one: Mutex<()>,
    /// Attempts ended so far, and the last failed one's number and error: a session that
    /// waited for an attempt that failed gets its error rather than starting another.
    attempts: AtomicU64,
    failed: Mutex<Option<(u64, SourceError)>>,
    /// The last token got, for a cache that keeps nothing (`--cache none`).
    held: Mutex<Option<IdcToken>>,
}

impl SignedIn {
    fn new(idc: Idc) -> SignedIn {
        SignedIn {
            idc,
            fetches: AtomicU64::new(0),
            one: Mutex::new(()),
            attempts: AtomicU64::new(0),
            failed: Mutex::new(None),
            held: Mutex::new(None),
        }
    }

    /// A token that outlives the refresh margin, from the cache or held in memory.
    fn at_hand(&self) -> Option<IdcToken> {
        if let Some(t) = redshift_creds_core::signin::cached_token(&self.idc)
            .ok()
            .flatten()
        {
            return Some(t);
        }
        let now = SystemClock.now();
        let held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        held.as_ref()
            .filter(|t| t.expiration - now > self.idc.refresh_margin)
            .cloned()
    }

    /// The access token: at hand, else the outcome of the attempt running now (waited
    /// for), else renewed or signed in for by this caller.
    fn token(&self) -> Result<IdcToken, SourceError> {
        if let Some(t) = self.at_hand() {
            return Ok(t);
        }
        let before = self.attempts.load(Ordering::SeqCst);
        let _one = self.one.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(t) = self.at_hand() {
            return Ok(t);
        }
        let failed = self.failed.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((n, e)) = failed.as_ref().filter(|(n, _)| *n > before) {
            tracing::debug!(attempt = n, "the sign-in this session waited for failed");
            return Err(e.clone());
        }
        drop(failed);
        self.fetches.fetch_add(1, Ordering::SeqCst);
        let got = crate::signin::access_token(&self.idc);
        let n = self.attempts.fetch_add(1, Ordering::SeqCst) + 1;
        match got {
            Ok(t) => {
                let t = t.into_access_token();
                *self.held.lock().unwrap_or_else(|e| e.into_inner()) = Some(t.clone());
                Ok(t)
            }
            Err(e) => {
                let e = source_error(&e);
                *self.failed.lock().unwrap_or_else(|e| e.into_inner()) = Some((n, e.clone()));
                Err(e)
            }
        }
    }

    /// With no token cached, starts the sign-in now, in the background (the listeners bind
    /// meanwhile), so that the person signs in before or while the first client waits.
    fn sign_in_at_start(self: &Arc<Self>) {
        if self.at_hand().is_some() {
            return;
        }
        let me = self.clone();
        let spawned = std::thread::Builder::new()
            .name("idc-sign-in".into())
            .spawn(move || match me.token() {
                Ok(t) => tracing::info!(expiration = t.expiration, "signed in to Identity Center"),
                Err(e) => report::warn(&format!("the Identity Center sign-in failed: {e}")),
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start the sign-in at start-up; the first session will");
        }
    }
}

impl PasswordSource for SignedIn {
    fn login(&self, _fresh: bool) -> Result<Login, SourceError> {
        // An access token is not single-use: a refused one is not worth a new sign-in.
        Ok(token_login(&self.token()?))
    }

    /// A session may wait for a person to sign in: the response timeout, the sign-in lock's
    /// margin, and the upstream login after it.
    fn login_timeout(&self) -> Duration {
        self.idc.response_timeout + Duration::from_secs(60)
    }

    fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::SeqCst)
    }
}

/// The tool's message for the client, with 28000 when AWS refused who we are or what we
/// asked, and 08001 (cannot connect) otherwise. Decided on the failure's kind alone.
fn source_error(e: &Error) -> SourceError {
    let refused = match e {
        Error::Aws { kind, .. } => match kind {
            AwsFailure::AccessDenied
            | AwsFailure::CredentialsRejected
            | AwsFailure::NoCredentials => true,
            AwsFailure::Throttled
            | AwsFailure::NotFound
            | AwsFailure::Unavailable
            | AwsFailure::Timeout
            | AwsFailure::BadAnswer
            | AwsFailure::NotSent
            | AwsFailure::Other => false,
        },
        _ => false,
    };
    SourceError {
        message: e.to_string(),
        sqlstate: if refused { "28000" } else { "08001" },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aws_error(kind: AwsFailure, reason: &str) -> Error {
        Error::Aws {
            api: "GetClusterCredentials",
            target: "cluster \"examplecluster\", user \"alice\"".into(),
            kind,
            reason: reason.into(),
            hint: None,
        }
    }

    #[test]
    fn access_denied_is_28000_and_the_rest_08001() {
        let e = source_error(&aws_error(
            AwsFailure::AccessDenied,
            "access denied (not authorized)",
        ));
        assert_eq!(e.sqlstate, "28000");
        assert_eq!(
            e.message,
            "GetClusterCredentials failed for cluster \"examplecluster\", user \"alice\": \
             access denied (not authorized)"
        );
    }

    #[test]
    fn the_sqlstate_comes_from_the_kind_never_the_wording() {
        // Refused who we are or what we asked: 28000; anything else: 08001.
        let refused = [
            AwsFailure::AccessDenied,
            AwsFailure::CredentialsRejected,
            AwsFailure::NoCredentials,
        ];
        let want = |kind| {
            if refused.contains(&kind) {
                "28000"
            } else {
                "08001"
            }
        };
        let wordings = [
            "access denied (not authorized)",
            "AWS rejected the credentials: ExpiredToken",
            "no usable AWS credentials: none found",
            "AWS is throttling requests",
            "the principal is not authorized",
            "",
        ];
        for kind in AwsFailure::ALL {
            for reason in wordings {
                let e = source_error(&aws_error(kind, reason));
                assert_eq!(e.sqlstate, want(kind), "{kind:?} worded {reason:?}");
            }
        }
        let other = source_error(&Error::Usage("access denied".into()));
        assert_eq!(other.sqlstate, "08001");
    }

    #[test]
    fn every_sslmode_maps_to_the_engine_mode_of_the_same_name() {
        for mode in tls::SslMode::ALL {
            assert_eq!(
                format!("{:?}", engine_mode(mode)),
                format!("{mode:?}"),
                "{}",
                mode.as_str()
            );
        }
    }

    #[test]
    fn listen_values_reach_the_engine_as_checked() {
        assert_eq!(
            parse_listen(&["127.0.0.1:15439".into(), "unix:/run/x".into()], "listen").unwrap(),
            [
                Listen::Tcp("127.0.0.1:15439".parse().unwrap()),
                Listen::Unix("/run/x".into())
            ]
        );
    }

    #[test]
    fn a_bad_listen_value_is_a_usage_error_naming_it() {
        let e = parse_listen(&["10.0.0.1:5439".into()], "--listen").unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(
            e.to_string()
                .starts_with("invalid --listen \"10.0.0.1:5439\": only loopback"),
            "{e}"
        );
        assert_eq!(
            parse_listen(&["unix:/tmp/x".into(), "[::1]:1".into()], "--listen")
                .unwrap()
                .len(),
            2
        );
    }
}
