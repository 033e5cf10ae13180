//! redshift-creds: short-lived Amazon Redshift credentials behind a credential-process contract.
//!
//! Two executables share this library, the way git keeps libcurl out of `git`
//! and in `git-remote-https`:
//!
//! * [`run`] is the whole program: `redshift-creds-aws`, with the AWS SDK.
//! * [`front`] is `redshift-creds`, the command people run. It answers cache
//!   hits itself, and hands everything else to `redshift-creds-aws` with the
//!   same arguments. Without the SDK it is a fraction of the size, so it
//!   starts almost as fast as an empty program.
//!
//! The cache-hit path reads one entry and prints it: it builds no async
//! runtime, loads no AWS configuration and takes no lock. Only a miss
//! reaches [`aws`], through [`Backend`].

mod app;
mod aws;
mod cache;
pub mod cli;
mod config;
mod config_file;
mod credential;
mod endpoint;
mod error;
mod handover;
mod housekeeping;
mod output;
mod pgpass;
mod report;
mod rules;
mod tls;

pub use error::Error;

/// Entry points for the fuzz targets in `fuzz/`: each runs one parser on
/// arbitrary input and checks the invariants that must hold for any input.
/// Not part of the supported interface.
#[doc(hidden)]
pub mod fuzzing {
    use crate::cache::entry::{CachedEndpoint, Stored};
    use crate::cache::key::CacheKey;
    use crate::credential::Credential;

    /// The config parser: never panics, and whatever it accepts has only
    /// plain connection names.
    pub fn config(text: &str) {
        if let Ok(file) = crate::config_file::parse(text) {
            for name in file.connections.keys() {
                assert!(crate::config_file::check_name(name).is_ok(), "{name:?}");
            }
        }
    }

    /// The cache entry decoder: never panics, accepts only entries of the
    /// key it is given, and what it accepts re-encodes to an equal entry.
    pub fn entry(bytes: &[u8]) {
        let key = CacheKey::parse(&"0".repeat(40)).expect("a valid key");
        let other = CacheKey::parse(&"1".repeat(40)).expect("a valid key");
        if let Ok(c) = Credential::decode(bytes, &key) {
            assert!(Credential::decode(bytes, &other).is_err());
            let again = Credential::decode(&c.encode(&key), &key).expect("round trip");
            assert_eq!(
                (&again.db_user, again.expiration),
                (&c.db_user, c.expiration)
            );
            assert_eq!(again.expose_password(), c.expose_password());
        }
        if let Ok(e) = CachedEndpoint::decode(bytes, &key) {
            assert_eq!(
                CachedEndpoint::decode(&e.encode(&key), &key).expect("round trip"),
                e
            );
        }
    }

    /// The pgpass editor: for any file and any fields, the result holds the
    /// new line exactly once, it reads back as the same fields, and every
    /// line for another connection is kept byte for byte.
    pub fn pgpass(content: &[u8], fields: [&str; 5]) {
        use crate::pgpass::{Line, format_line, parse_key, upsert};
        if fields.iter().any(|f| f.contains(['\n', '\r'])) {
            return; // libpq lines cannot hold newlines; callers never pass them
        }
        if crate::rules::host("h", fields[0]).is_err() || fields[1].parse::<u16>().is_err() {
            return; // hosts and ports are checked before they get here (a host of "#x" would be a comment)
        }
        let line = Line {
            host: fields[0],
            port: fields[1],
            database: fields[2],
            user: fields[3],
            password: fields[4],
        };
        let key = [fields[0], fields[1], fields[2], fields[3]].map(str::to_string);
        let out = upsert(content, &line);
        let formatted = format_line(&line);
        assert_eq!(parse_key(&formatted).as_ref(), Some(&key));
        let lines: Vec<&[u8]> = out.split(|b| *b == b'\n').collect();
        let ours = lines.iter().filter(|l| **l == formatted.as_bytes()).count();
        assert_eq!(ours, 1, "the new line appears once");
        for old in content.split_inclusive(|b| *b == b'\n') {
            let text = std::str::from_utf8(old).unwrap_or("");
            let same_key =
                parse_key(text.strip_suffix('\n').unwrap_or(text)).as_ref() == Some(&key);
            if !same_key && old.ends_with(b"\n") {
                assert!(
                    out.windows(old.len()).any(|w| w == old),
                    "a foreign line was lost"
                );
            }
        }
    }

    /// The host-name parser: never panics, and what it accepts satisfies the
    /// cluster, workgroup and region rules.
    pub fn host(text: &str) {
        if let Some(info) = crate::endpoint::parse_host(text) {
            assert!(crate::rules::region("r", &info.region).is_ok());
            let named = match info.kind {
                crate::endpoint::HostKind::Cluster => {
                    crate::rules::cluster_identifier("c", &info.name)
                }
                crate::endpoint::HostKind::Workgroup => crate::rules::workgroup("w", &info.name),
            };
            assert!(named.is_ok());
        }
    }
}

use cache::entry::{CachedEndpoint, Stored};
use cache::key::CacheKey;
use clap::{CommandFactory, Parser};
use cli::{Cli, Command, ConnArgs, CredArgs, OutputFormat};
use config::Resolved;
use credential::Credential;
use endpoint::{DEFAULT_PORT, Endpoint};
use std::ffi::OsString;
use std::process::ExitCode;

/// Runs the program on these arguments (the first is the program name) and
/// returns its exit code. Errors are printed here, once.
pub fn run<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help and --version: clap prints them on stdout, exit 0.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            report::error(&one_line(&e));
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Get(a) => get(&a.cred, &a.conn, a.output, &Aws),
        Command::Exec(a) => exec(&a.cred, &a.conn, &a.command, &Aws),
        Command::Pgpass(a) => pgpass(&a.cred, &a.conn, a.watch, &Aws),
        Command::List => housekeeping::list(&mut std::io::stdout().lock()),
        Command::Clear(a) => {
            report::init_log(0);
            housekeeping::clear(&a, &mut std::io::stdout().lock())
        }
        Command::Doctor(a) => match housekeeping::doctor(&a, &mut std::io::stdout().lock()) {
            Ok(true) => Ok(()),
            Ok(false) => return ExitCode::from(1),
            Err(e) => Err(e),
        },
        Command::Completions { shell } => {
            let mut text = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "redshift-creds", &mut text);
            print_document(&text)
        }
        Command::Man => {
            let mut text = Vec::new();
            let rendered = clap_mangen::Man::new(Cli::command()).render(&mut text);
            rendered
                .map_err(Error::Output)
                .and_then(|()| print_document(&text))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            report::error(&e.to_string());
            ExitCode::from(e.exit_code())
        }
    }
}

/// `redshift-creds`: answers `get`, `exec` and `pgpass` from the cache, and
/// hands everything else (a miss, other commands, `-v`, any error) to
/// `redshift-creds-aws`, which then does the whole job as if called directly.
/// So the front never reports an error of its own making: the full program
/// reports it, once. Warnings are held until the front knows it will finish.
pub fn front<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(_) => return handover::run_full(&args),
    };
    // A logged run is told whole by the full program.
    let logging = std::env::var_os("RUST_LOG").is_some_and(|v| !v.is_empty());
    let quiet = |c: &CredArgs| c.verbose == 0 && !logging;
    let full = handover::Full(&args);
    report::hold();
    let result = match cli.command {
        Command::Get(a) if quiet(&a.cred) => get(&a.cred, &a.conn, a.output, &full),
        Command::Exec(a) if quiet(&a.cred) => exec(&a.cred, &a.conn, &a.command, &full),
        Command::Pgpass(a) if quiet(&a.cred) && !a.watch => pgpass(&a.cred, &a.conn, false, &full),
        _ => return handover::run_full(&args),
    };
    match result {
        Ok(()) => {
            report::release();
            ExitCode::SUCCESS
        }
        // Past the point of no return (something reached stdout, the
        // command was about to replace this process, or the hand-over itself
        // failed): say it here rather than try again.
        Err(e @ (Error::Output(_) | Error::Exec { .. } | Error::Helper { .. })) => {
            report::release();
            report::error(&e.to_string());
            ExitCode::from(e.exit_code())
        }
        Err(_) => handover::run_full(&args),
    }
}

/// Where fresh entries come from when the cache cannot answer: the AWS APIs
/// in `redshift-creds-aws` ([`Aws`]); in `redshift-creds`, a hand-over to
/// that program ([`handover::Full`]), which never returns on success.
pub(crate) trait Backend {
    /// A new credential for the request.
    fn credential(&self, r: &Resolved) -> Result<Credential, Error>;
    /// The cluster's or workgroup's endpoint.
    fn endpoint(&self, r: &Resolved, clock: &dyn app::Clock) -> Result<CachedEndpoint, Error>;
    /// Whether a miss goes elsewhere as a whole (the front): then nothing is
    /// locked here, and only the program that calls AWS takes the lock.
    fn hands_over(&self) -> bool {
        false
    }
}

/// The AWS APIs: GetClusterCredentials(WithIAM) or serverless GetCredentials,
/// DescribeClusters or GetWorkgroup.
struct Aws;

impl Backend for Aws {
    fn credential(&self, r: &Resolved) -> Result<Credential, Error> {
        use app::Source;
        let (request, api_timeout) = (&r.request, r.settings.api_timeout);
        match r.request.api {
            config::Api::ServerlessGetCredentials => aws::ServerlessSource {
                request,
                api_timeout,
            }
            .fetch(),
            _ => aws::RedshiftSource {
                request,
                api_timeout,
            }
            .fetch(),
        }
    }

    fn endpoint(&self, r: &Resolved, clock: &dyn app::Clock) -> Result<CachedEndpoint, Error> {
        use app::Source;
        let (request, api_timeout) = (&r.request, r.settings.api_timeout);
        match r.request.workgroup {
            Some(_) => aws::WorkgroupEndpointSource {
                request,
                api_timeout,
                clock,
            }
            .fetch(),
            None => aws::ClusterEndpointSource {
                request,
                api_timeout,
                clock,
            }
            .fetch(),
        }
    }
}

/// A [`Backend`] call as an [`app::Source`].
struct Fetch<F>(F);

impl<T, F: Fn() -> Result<T, Error>> app::Source<T> for Fetch<F> {
    fn fetch(&self) -> Result<T, Error> {
        (self.0)()
    }
}

/// One entry through the cache: [`app::obtain`] (hit, else lock, re-read and
/// fetch) where this program calls AWS; where it hands over, a lock-free hit
/// or the hand-over itself.
fn obtain<T: Stored>(
    cache: &mut cache::Cache,
    backend: &dyn Backend,
    fetch: impl Fn() -> Result<T, Error>,
    clock: &dyn app::Clock,
    margin: i64,
) -> Result<(T, app::Outcome), Error> {
    if backend.hands_over() {
        return match app::fresh(cache, clock, margin)? {
            Some(hit) => Ok((hit, app::Outcome::Hit)),
            None => fetch().map(|fetched| (fetched, app::Outcome::Fetched)),
        };
    }
    app::obtain(cache, &Fetch(fetch), clock, margin)
}

/// Prints a generated document; a reader that stops early (`| head`) is fine.
fn print_document(text: &[u8]) -> Result<(), Error> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Error::Output(e)),
        _ => Ok(()),
    }
}

/// Flattens a clap usage error into one line: the message, the valid values
/// when clap lists them, and where to find help.
fn one_line(e: &clap::Error) -> String {
    let rendered = e.render().to_string();
    let parts: Vec<&str> = rendered
        .lines()
        .map(str::trim)
        .filter(|l| {
            !l.is_empty() && !l.starts_with("For more information") && !l.starts_with("Usage:")
        })
        .collect();
    let message = parts.join(" ");
    let message = message.strip_prefix("error: ").unwrap_or(&message);
    format!("{message} (see --help)")
}

/// Checks the flags and the environment; nothing is touched before this passes.
fn resolve(cred: &CredArgs, conn: &ConnArgs) -> Result<Resolved, Error> {
    report::init_log(cred.verbose);
    config::resolve(cred, conn, &config::ProcessEnv)
}

/// The credential, from the cache or from the API the request names.
fn credential(r: &Resolved, backend: &dyn Backend) -> Result<Credential, Error> {
    let s = &r.settings;
    let key = CacheKey::of(&r.request);
    let mut cache = cache::Cache::open(s.cache, key, s.cache_dir.clone(), s.lock_timeout)?;
    cache.set_label(&r.request);
    let (credential, outcome) = obtain(
        &mut cache,
        backend,
        || backend.credential(r),
        &app::SystemClock,
        s.refresh_margin,
    )?;
    tracing::debug!(?outcome, store = %cache.store().name(), "credential ready");
    Ok(credential)
}

/// Where clients connect: `--host`, else the custom domain, else the
/// endpoint from DescribeClusters or GetWorkgroup (cached for a day).
fn endpoint(r: &Resolved, backend: &dyn Backend) -> Result<Endpoint, Error> {
    let c = &r.connection;
    let given = c
        .host
        .clone()
        .or_else(|| r.request.custom_domain_name.clone());
    if let Some(host) = given {
        return Ok(Endpoint {
            host,
            port: c.port.unwrap_or(DEFAULT_PORT),
        });
    }
    let s = &r.settings;
    let key = CacheKey::endpoint_of(&r.request);
    let mut cache = cache::Cache::open(s.cache, key, s.cache_dir.clone(), s.lock_timeout)?;
    cache.set_label(&r.request);
    let clock = app::SystemClock;
    let (found, _) = obtain(
        &mut cache,
        backend,
        || backend.endpoint(r, &clock),
        &clock,
        0,
    )?;
    let mut endpoint = found.endpoint;
    if let Some(port) = c.port {
        endpoint.port = port;
    }
    Ok(endpoint)
}

/// The credential and everything a client needs to use it.
fn connection(r: &Resolved, backend: &dyn Backend) -> Result<(Credential, Endpoint), Error> {
    // The endpoint first: if it cannot be found, no password is spent.
    let endpoint = endpoint(r, backend)?;
    let credential = credential(r, backend)?;
    if let Some(note) = &r.connection.tls.note {
        report::warn(note);
    }
    Ok((credential, endpoint))
}

fn target<'a>(
    r: &'a Resolved,
    credential: &'a Credential,
    endpoint: &'a Endpoint,
) -> output::Target<'a> {
    output::Target {
        credential,
        endpoint,
        database: r.request.db_name.as_deref(),
        tls: &r.connection.tls,
    }
}

fn get(
    cred: &CredArgs,
    conn: &ConnArgs,
    format: OutputFormat,
    backend: &dyn Backend,
) -> Result<(), Error> {
    let r = resolve(cred, conn)?;
    let mut stdout = std::io::stdout().lock();
    match format {
        OutputFormat::Env => {
            let (credential, endpoint) = connection(&r, backend)?;
            output::write_env(&mut stdout, &target(&r, &credential, &endpoint))
        }
        OutputFormat::Json | OutputFormat::Password => {
            output::write(&mut stdout, format, &credential(&r, backend)?)
        }
    }
    .map_err(Error::Output)
}

/// Runs the command with the connection in its environment. On Unix the
/// process becomes the command, so signals and the exit code are its own.
/// The password travels in the environment only, never in arguments.
fn exec(
    cred: &CredArgs,
    conn: &ConnArgs,
    command: &[OsString],
    backend: &dyn Backend,
) -> Result<(), Error> {
    let r = resolve(cred, conn)?;
    let (credential, endpoint) = connection(&r, backend)?;
    let (program, args) = command.split_first().expect("clap requires a command");
    let mut cmd = std::process::Command::new(program);
    cmd.args(args);
    for (name, value) in output::pg_vars(&target(&r, &credential, &endpoint)) {
        cmd.env(name, &*value);
    }
    let shown = program.to_string_lossy().into_owned();
    report::release();
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        let source = cmd.exec();
        Err(Error::Exec {
            program: shown,
            source,
        })
    }
    #[cfg(not(unix))]
    {
        let status = cmd.status().map_err(|source| Error::Exec {
            program: shown,
            source,
        })?;
        std::process::exit(status.code().unwrap_or(1));
    }
}

/// Writes this connection's pgpass line; with `watch`, keeps rewriting it
/// before each password expires until the process is stopped.
fn pgpass(
    cred: &CredArgs,
    conn: &ConnArgs,
    watch: bool,
    backend: &dyn Backend,
) -> Result<(), Error> {
    let r = resolve(cred, conn)?;
    let path = pgpass::default_path()
        .ok_or_else(|| Error::Usage("no home directory for ~/.pgpass: set PGPASSFILE".into()))?;
    let endpoint = endpoint(&r, backend)?;
    let mut written: Option<String> = None;
    loop {
        let credential = match credential(&r, backend) {
            Ok(c) => c,
            Err(e) if watch && e.exit_code() == 1 => {
                report::warn(&format!("{e}; trying again in 30 s"));
                std::thread::sleep(std::time::Duration::from_secs(30));
                continue;
            }
            Err(e) => return Err(e),
        };
        if written.as_deref() != Some(credential.expose_password()) {
            write_pgpass_line(&r, &path, &endpoint, &credential)?;
            written = Some(credential.expose_password().to_string());
        }
        if !watch {
            if let Some(note) = &r.connection.tls.note {
                report::warn(note);
            }
            return Ok(());
        }
        let wait = watch_wait(
            credential.expiration,
            r.settings.refresh_margin,
            app::Clock::now(&app::SystemClock),
        );
        tracing::debug!(
            wait,
            "pgpass line written; sleeping until the refresh margin"
        );
        std::thread::sleep(std::time::Duration::from_secs(wait));
    }
}

/// Seconds until `pgpass --watch` refreshes again: until the refresh margin
/// begins; or, when a failed refresh left a stale but valid password (already
/// inside the margin), 30 s between attempts instead of a busy loop, and never
/// past its expiry.
fn watch_wait(expiration: i64, refresh_margin: i64, now: i64) -> u64 {
    const RETRY: i64 = 30;
    let until_margin = expiration - refresh_margin - now;
    let wait = if until_margin > 0 {
        until_margin
    } else {
        RETRY.min(expiration - now)
    };
    wait.max(1) as u64
}

fn write_pgpass_line(
    r: &Resolved,
    path: &std::path::Path,
    endpoint: &Endpoint,
    credential: &Credential,
) -> Result<(), Error> {
    let port = endpoint.port.to_string();
    let line = pgpass::Line {
        host: &endpoint.host,
        port: &port,
        database: r.request.db_name.as_deref().unwrap_or("*"),
        user: &credential.db_user,
        password: credential.expose_password(),
    };
    // Serialize writers of the same file so no update is lost.
    let _lock = match &r.settings.cache_dir {
        Some(dir) => cache::RefreshLock::acquire_named(
            dir,
            &pgpass_lock_name(path),
            r.settings.lock_timeout,
        )?
        .ok(),
        None => None,
    };
    let old = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(source) => {
            return Err(Error::File {
                action: "read the pgpass file",
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let new = zeroize::Zeroizing::new(pgpass::upsert(&old, &line));
    pgpass::write_atomically(path, &new).map_err(|source| Error::File {
        action: "write the pgpass file",
        path: path.to_path_buf(),
        source,
    })
}

/// The lock name for a pgpass file: a hash of its path, so the path itself
/// appears in no file name.
fn pgpass_lock_name(path: &std::path::Path) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(path.to_string_lossy().as_bytes());
    let hex: String = digest[..10].iter().map(|b| format!("{b:02x}")).collect();
    format!("pgpass-{hex}")
}

#[cfg(test)]
mod tests {
    use super::watch_wait;

    #[test]
    fn watch_sleeps_until_the_refresh_margin() {
        // Expires at 1000, margin 300: refresh at 700.
        assert_eq!(watch_wait(1000, 300, 100), 600);
        assert_eq!(watch_wait(1000, 300, 699), 1);
    }

    #[test]
    fn watch_backs_off_while_a_stale_password_is_served() {
        // Inside the margin (a refresh failed): 30 s between attempts...
        assert_eq!(watch_wait(1000, 300, 700), 30);
        assert_eq!(watch_wait(1000, 300, 900), 30);
        // ...but not past expiry, and never a busy loop.
        assert_eq!(watch_wait(1000, 300, 990), 10);
        assert_eq!(watch_wait(1000, 300, 1000), 1);
        assert_eq!(watch_wait(1000, 300, 5000), 1);
    }
}
