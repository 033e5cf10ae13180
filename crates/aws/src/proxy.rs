//! `redshift-creds proxy`: the command's targets from flags or the config file, and the
//! [`PasswordSource`] that gives the proxy engine its logins from the same cache as `get`.

use crate::source::Aws;
use redshift_creds_core::cache::refresh::{self, Clock, SystemClock};
use redshift_creds_core::cli::{ConnArgs, CredArgs, ProxyArgs};
use redshift_creds_core::config::{ProcessEnv, Resolved};
use redshift_creds_core::config_file::ListenAt;
use redshift_creds_core::credential::Credential;
use redshift_creds_core::error::Error;
use redshift_creds_core::{commands, config_file, report, source, tls};
use redshift_creds_proxy::{
    Listen, Login, Options, PasswordSource, ProxyError, SourceError, SslMode, Target, Upstream,
};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Where the proxy listens when neither `--listen` nor the config file says.
const DEFAULT_LISTEN: &str = "127.0.0.1:5439";

/// A cached password with at least this many seconds left logs a session in at once;
/// the background refresh replaces it before then.
const MIN_LEFT: i64 = 10;

/// After a failed background refresh, wait this long before the next one.
const RETRY_AFTER: i64 = 10;

/// A forced fetch this recent is reused by other sessions whose password was rejected too.
const FORCED_REUSE: Duration = Duration::from_secs(5);

/// Runs `redshift-creds proxy` until SIGINT or SIGTERM.
pub(crate) fn proxy(a: &ProxyArgs) -> Result<bool, Error> {
    report::init_service_log(a.cred.verbose);
    let shutdown_timeout = match a.shutdown_timeout {
        None => 30,
        Some(s @ 0..=86_400) => s,
        Some(s) => {
            return Err(Error::invalid(
                "--shutdown-timeout",
                &s.to_string(),
                "must be 0 to 86400 seconds",
            ));
        }
    };
    let listen = parse_listen(&a.listen, "--listen")?;
    let targets = if a.all {
        all_targets(a)?
    } else {
        let r = commands::resolve(&a.cred, &a.conn)?;
        let listen = match (listen, &r.request.connection) {
            (l, _) if !l.is_empty() => l,
            (_, Some(name)) => file_listen(name)?,
            (_, None) => Vec::new(),
        };
        vec![target(r, listen)?]
    };
    let mut options = Options {
        shutdown_timeout: Duration::from_secs(shutdown_timeout as u64),
        ..Options::default()
    };
    options.allowed_uids.extend(&a.allow_uid);
    if a.client_tls {
        let dir = config_file::config_dir()
            .ok_or_else(|| Error::Usage("--client-tls: no config directory is known".into()))?
            .join("proxy-tls");
        if let Some(parent) = dir.parent() {
            std::fs::create_dir_all(parent).map_err(|source| Error::File {
                action: "create",
                path: parent.to_owned(),
                source,
            })?;
        }
        let (config, ca) = redshift_creds_proxy::client_tls(&dir).map_err(from_proxy)?;
        eprintln!(
            "client TLS: clients verify the proxy with sslrootcert={}",
            ca.display()
        );
        options.client_tls = Some(config);
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

/// `--all`: every connection in the config file with `listen`, each resolved as
/// `NAME` would be, with the credential and TLS flags given on top.
fn all_targets(a: &ProxyArgs) -> Result<Vec<Target>, Error> {
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
            let r = commands::resolve(&named(&a.cred, name), &tls_only(&a.conn))?;
            target(r, file_listen(name)?)
        })
        .collect()
}

/// The credential flags as given, for the connection `name`.
fn named(c: &CredArgs, name: &str) -> CredArgs {
    CredArgs {
        name: Some(name.to_owned()),
        cluster_identifier: c.cluster_identifier.clone(),
        db_user: c.db_user.clone(),
        with_iam: c.with_iam,
        no_with_iam: c.no_with_iam,
        workgroup: c.workgroup.clone(),
        db_name: c.db_name.clone(),
        auto_create: c.auto_create,
        no_auto_create: c.no_auto_create,
        db_groups: c.db_groups.clone(),
        duration_seconds: c.duration_seconds,
        custom_domain_name: c.custom_domain_name.clone(),
        profile: c.profile.clone(),
        region: c.region.clone(),
        endpoint_url: c.endpoint_url.clone(),
        cache: c.cache,
        refresh_margin: c.refresh_margin,
        no_refresh_ahead: c.no_refresh_ahead,
        lock_timeout: c.lock_timeout,
        api_timeout: c.api_timeout,
        verbose: c.verbose,
    }
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

/// One proxy target: the endpoint found as `exec` finds it, the TLS rules of `exec`,
/// and passwords from the shared cache.
fn target(r: Resolved, mut listen: Vec<Listen>) -> Result<Target, Error> {
    if listen.is_empty() {
        listen = parse_listen(&[DEFAULT_LISTEN.to_owned()], "--listen")?;
    }
    let endpoint = commands::endpoint(&r, &Aws::new(&r))?;
    let tls = r.tls();
    if let Some(note) = &tls.note {
        report::warn(note);
    }
    // The name in `listening on ADDR for NAME`: the connection, cluster or
    // workgroup, else the upstream it serves.
    let name = Some(r.request.label())
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
        source: Arc::new(AwsPasswords(Arc::new(Inner {
            r,
            refresh: Mutex::new(()),
            known_expiry: AtomicI64::new(0),
            refreshing: AtomicBool::new(false),
            last_attempt: AtomicI64::new(0),
            last_forced: Mutex::new(None),
        }))),
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
    /// The expiry of the last credential handed out (0: none yet), so that
    /// `refresh_ahead` needs no read of the store.
    known_expiry: AtomicI64,
    /// A background refresh is running.
    refreshing: AtomicBool,
    /// When the last background refresh started, for backing off while AWS fails.
    last_attempt: AtomicI64,
    /// When the last forced fetch (after a rejected password) happened.
    last_forced: Mutex<Option<std::time::Instant>>,
}

impl Inner {
    /// The cached credential while it has [`MIN_LEFT`] seconds, else one refreshed under the lock.
    fn current(&self) -> Result<Credential, Error> {
        let mut cache = source::credential_cache(&self.r)?;
        let margin = MIN_LEFT.min(self.r.settings.refresh_margin);
        if let Some(c) = refresh::fresh(&mut cache, &SystemClock, margin)? {
            return Ok(c);
        }
        let _one = self.refresh.lock().unwrap_or_else(|e| e.into_inner());
        Aws::new(&self.r).credential_within(&self.r, self.r.settings.refresh_margin)
    }

    /// A credential fetched past the cache, because upstream rejected the cached one.
    fn forced(&self) -> Result<Credential, Error> {
        let _one = self.refresh.lock().unwrap_or_else(|e| e.into_inner());
        let mut last = self.last_forced.lock().unwrap_or_else(|e| e.into_inner());
        let aws = Aws::new(&self.r);
        if last.is_some_and(|t| t.elapsed() < FORCED_REUSE) {
            return aws.credential_within(&self.r, 0);
        }
        tracing::info!(connection = %self.r.request.label(), "fetching a fresh password");
        // No cached entry outlives this margin: the fetch happens (under the lock).
        let c = aws.credential_within(&self.r, i64::MAX)?;
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
                    Aws::new(&inner.r).credential_within(&inner.r, inner.r.settings.refresh_margin)
                };
                match result {
                    Ok(c) => {
                        tracing::debug!(expiration = c.expiration, "refreshed ahead");
                        inner.known_expiry.store(c.expiration, Ordering::SeqCst);
                    }
                    Err(e) => tracing::warn!(error = %e, "refresh ahead failed"),
                }
                inner.refreshing.store(false, Ordering::SeqCst);
            });
        if spawned.is_err() {
            self.refreshing.store(false, Ordering::SeqCst);
        }
    }
}

impl PasswordSource for AwsPasswords {
    fn login(&self, fresh: bool) -> Result<Login, SourceError> {
        let inner = &self.0;
        let c = if fresh {
            inner.forced()
        } else {
            inner.current()
        }
        .map_err(|e| source_error(&e))?;
        inner.known_expiry.store(c.expiration, Ordering::SeqCst);
        Ok(Login {
            user: c.db_user.clone(),
            password: c.password.clone(),
            expiration: c.expiration,
        })
    }

    fn refresh_ahead(&self) {
        let inner = &self.0;
        let (now, expiry) = (SystemClock.now(), inner.known_expiry.load(Ordering::SeqCst));
        if expiry == 0 || expiry - now > inner.r.settings.refresh_margin {
            return;
        }
        if now - inner.last_attempt.load(Ordering::SeqCst) < RETRY_AFTER
            || inner.refreshing.swap(true, Ordering::SeqCst)
        {
            return;
        }
        inner.last_attempt.store(now, Ordering::SeqCst);
        inner.refresh_in_background();
    }
}

/// The tool's message for the client, with 28000 when AWS refused who we are or what we
/// asked, and 08001 (cannot connect) otherwise.
fn source_error(e: &Error) -> SourceError {
    let denied = matches!(e, Error::Aws { reason, .. }
        if ["access denied", "AWS rejected the credentials", "no usable AWS credentials"]
            .iter()
            .any(|p| reason.starts_with(p)));
    SourceError {
        message: e.to_string(),
        sqlstate: if denied { "28000" } else { "08001" },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aws_error(reason: &str) -> Error {
        Error::Aws {
            api: "GetClusterCredentials",
            target: "cluster \"examplecluster\", user \"alice\"".into(),
            reason: reason.into(),
            hint: None,
        }
    }

    #[test]
    fn access_denied_is_28000_and_the_rest_08001() {
        let e = source_error(&aws_error("access denied (not authorized)"));
        assert_eq!(e.sqlstate, "28000");
        assert_eq!(
            e.message,
            "GetClusterCredentials failed for cluster \"examplecluster\", user \"alice\": \
             access denied (not authorized)"
        );
        assert_eq!(
            source_error(&aws_error("AWS rejected the credentials: ExpiredToken")).sqlstate,
            "28000"
        );
        assert_eq!(
            source_error(&aws_error("AWS is throttling requests")).sqlstate,
            "08001"
        );
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
