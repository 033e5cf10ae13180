//! Raw flags and environment → a checked `Request` (what to ask AWS) and `Settings` (how to run).

use crate::cli::{CacheMode, ConnArgs, CredArgs};
use crate::config_file::FileConnection;
use crate::endpoint;
use crate::error::Error;
use crate::rules;
use crate::tls::Tls;
use std::path::PathBuf;
use std::time::Duration;

/// The environment, as a lookup, so tests can supply their own.
pub trait Env {
    /// The value of a variable, if it is set to valid Unicode.
    fn var(&self, name: &str) -> Option<String>;
}

/// The real process environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

/// Which credential API a request goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// redshift:GetClusterCredentials, for a named database user.
    GetClusterCredentials,
    /// redshift:GetClusterCredentialsWithIAM: the user is the caller's IAM identity.
    GetClusterCredentialsWithIam,
    /// redshift-serverless:GetCredentials, for a workgroup.
    ServerlessGetCredentials,
}

impl Api {
    /// The operation name, as AWS spells it.
    pub fn name(self) -> &'static str {
        match self {
            Api::GetClusterCredentials => "GetClusterCredentials",
            Api::GetClusterCredentialsWithIam => "GetClusterCredentialsWithIAM",
            Api::ServerlessGetCredentials => "GetCredentials",
        }
    }
}

/// Where the AWS SDK should look. Each value is the one in force (flag,
/// environment, config file), so the SDK and the cache key agree.
#[derive(Debug, Clone, Default)]
pub struct AwsTarget {
    /// The profile to pass to aws-config, when one is named anywhere.
    pub profile: Option<String>,
    /// The region to pass to aws-config, when one is named anywhere.
    pub region: Option<String>,
    /// The endpoint URL to pass to aws-config, when one is named anywhere.
    pub endpoint_url: Option<String>,
    /// The profile in force: `profile`, or `default`. It stands for whatever
    /// region and credentials the profile supplies.
    pub effective_profile: String,
    /// `AWS_ACCESS_KEY_ID`, when set: environment credentials win over profiles.
    pub access_key_id: Option<String>,
    /// The rest of what makes the SDK choose an identity or an endpoint
    /// (files, roles, container and endpoint variables), for the cache key:
    /// see [`crate::cache::key::identity`]. Secrets enter hashed.
    pub identity: Vec<(String, String)>,
}

/// One credential request, checked: everything that changes the answer.
#[derive(Debug, Clone)]
pub struct Request {
    /// The API to call.
    pub api: Api,
    /// The named connection it came from, if any (for messages and `list`).
    pub connection: Option<String>,
    /// The cluster (provisioned APIs), unless a custom domain names it.
    pub cluster_identifier: Option<String>,
    /// The serverless workgroup.
    pub workgroup: Option<String>,
    /// The cluster's or workgroup's custom domain name.
    pub custom_domain_name: Option<String>,
    /// The database user, without prefix; `None` when the IAM identity is the user.
    pub db_user: Option<String>,
    /// The database, when restricted to one.
    pub db_name: Option<String>,
    /// Groups to join: lowercase (checked), sorted, no repeats.
    pub db_groups: Vec<String>,
    /// Whether to create the user.
    pub auto_create: bool,
    /// The password lifetime in seconds.
    pub duration_seconds: i64,
    /// Where the SDK looks.
    pub aws: AwsTarget,
}

impl Request {
    /// Names the target and user for messages: `cluster "c", user "u"`.
    pub fn describe(&self) -> String {
        let place = match (
            &self.workgroup,
            &self.cluster_identifier,
            &self.custom_domain_name,
        ) {
            (Some(w), _, _) => format!("workgroup \"{w}\""),
            (None, Some(c), _) => format!("cluster \"{c}\""),
            (None, None, Some(d)) => format!("custom domain \"{d}\""),
            (None, None, None) => "no cluster".to_string(),
        };
        match &self.db_user {
            Some(u) => format!("{place}, user \"{u}\""),
            None => format!("{place}, IAM identity"),
        }
    }

    /// A short label for `list`: the connection name, or the cluster or workgroup.
    pub fn label(&self) -> String {
        match &self.connection {
            Some(name) => name.clone(),
            None => self
                .workgroup
                .clone()
                .or_else(|| self.cluster_identifier.clone())
                .or_else(|| self.custom_domain_name.clone())
                .unwrap_or_default(),
        }
    }
}

/// How this run behaves, checked.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The cache store to use.
    pub cache: CacheMode,
    /// The directory of the file store and of the lock files, if one can be found.
    pub cache_dir: Option<PathBuf>,
    /// Refresh when a cached password has this many seconds left, or fewer.
    pub refresh_margin: i64,
    /// How long to wait for another process's refresh.
    pub lock_timeout: Duration,
    /// How long the whole API call may take, retries included.
    pub api_timeout: Duration,
}

/// Where and how clients connect, as far as the settings say. A missing host
/// is found later (DescribeClusters or GetWorkgroup), and only when needed.
#[derive(Debug, Clone)]
pub struct Connection {
    /// The host.
    pub host: Option<String>,
    /// The port.
    pub port: Option<u16>,
    /// The TLS settings for clients.
    pub tls: Tls,
}

/// Everything one command run needs, checked.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// What to ask AWS.
    pub request: Request,
    /// How to run.
    pub settings: Settings,
    /// Where clients connect.
    pub connection: Connection,
}

/// Defaults, in one place.
pub mod defaults {
    /// The password lifetime the AWS API uses when none is given.
    pub const DURATION_SECONDS: i64 = 900;
    /// Refresh this long before expiry.
    pub const REFRESH_MARGIN: i64 = 300;
    /// Wait this long for another process's refresh.
    pub const LOCK_TIMEOUT: i64 = 30;
    /// The whole API call, retries included.
    pub const API_TIMEOUT: i64 = 20;
}

/// A value and where it came from, so an error can name its source: the
/// flag, the variable, or the key in the config file.
struct Sourced<T> {
    value: T,
    input: String,
}

/// The named connection's file values, and how to name them in messages.
struct FileSource<'a> {
    conn: &'a FileConnection,
    name: &'a str,
    path: &'a std::path::Path,
}

impl FileSource<'_> {
    fn input(&self, key: &str) -> String {
        format!(
            "{key} of connection \"{}\" in {}",
            self.name,
            self.path.display()
        )
    }
}

/// Picks the value in force: the flag, else the environment, else the config
/// file. The one function that decides precedence.
fn pick<T>(
    flag: (Option<T>, &str),
    env: Option<(T, &str)>,
    file: Option<&FileSource<'_>>,
    from_file: impl Fn(&FileConnection) -> Option<T>,
    key: &str,
) -> Option<Sourced<T>> {
    if let (Some(value), name) = flag {
        return Some(Sourced {
            value,
            input: name.to_string(),
        });
    }
    if let Some((value, name)) = env {
        return Some(Sourced {
            value,
            input: name.to_string(),
        });
    }
    let f = file?;
    from_file(f.conn).map(|value| Sourced {
        value,
        input: f.input(key),
    })
}

/// The file store's and the locks' directory: `REDSHIFT_CREDS_CACHE_DIR`,
/// else the user's cache directory (None when there is none). An empty value
/// is an error, not "unset": it would otherwise mean the current directory.
pub fn cache_dir(env: &dyn Env) -> Result<Option<PathBuf>, Error> {
    match env.var("REDSHIFT_CREDS_CACHE_DIR") {
        Some(d) if d.is_empty() || d.contains('\0') => Err(Error::invalid(
            "REDSHIFT_CREDS_CACHE_DIR",
            &d,
            "must be a directory path",
        )),
        Some(d) => Ok(Some(PathBuf::from(d))),
        None => Ok(dirs::cache_dir().map(|d| d.join("redshift-creds"))),
    }
}

/// Turns the raw flags, the environment and the named connection into a
/// checked request, settings and connection. Every input is checked here,
/// before anything touches the cache or the network. Precedence is flag,
/// then environment, then config file, then default.
#[allow(clippy::too_many_lines)] // split into layers by issue 10
pub fn resolve(args: &CredArgs, conn: &ConnArgs, env: &dyn Env) -> Result<Resolved, Error> {
    let loaded = match &args.name {
        Some(name) => Some((name.as_str(), crate::config_file::connection(env, name)?)),
        None => None,
    };
    let file = loaded.as_ref().map(|(name, (c, path))| FileSource {
        conn: c,
        name,
        path,
    });
    let file = file.as_ref();
    let var = |name: &'static str| env.var(name).filter(|v| !v.is_empty()).map(|v| (v, name));

    // Where clients connect.
    let host = pick(
        (conn.host.clone(), "--host"),
        None,
        file,
        |c| c.host.clone(),
        "host",
    );
    if let Some(h) = &host {
        rules::host(&h.input, &h.value)?;
    }
    let host = host.map(|h| h.value.to_ascii_lowercase());
    let port = match pick((conn.port, "--port"), None, file, |c| c.port, "port") {
        Some(p) => Some(rules::port(&p.input, p.value)?),
        None => None,
    };
    let sslmode = pick(
        (conn.sslmode.clone(), "--sslmode"),
        None,
        file,
        |c| c.sslmode.clone(),
        "sslmode",
    );
    let sslrootcert = pick(
        (conn.sslrootcert.clone(), "--sslrootcert"),
        None,
        file,
        |c| c.sslrootcert.clone(),
        "sslrootcert",
    );
    let tls = crate::tls::resolve(
        sslmode
            .as_ref()
            .map(|s| (s.value.as_str(), s.input.as_str())),
        sslrootcert
            .as_ref()
            .map(|s| (s.value.as_path(), s.input.as_str())),
    )?;
    // A Redshift host name carries the cluster or workgroup, and the region.
    let inferred = host.as_deref().and_then(endpoint::parse_host);

    // What to ask for.
    let mut cluster_identifier = pick(
        (args.cluster_identifier.clone(), "--cluster-identifier"),
        None,
        file,
        |c| c.cluster_identifier.clone(),
        "cluster_identifier",
    );
    let mut workgroup = pick(
        (args.workgroup.clone(), "--workgroup"),
        None,
        file,
        |c| c.workgroup.clone(),
        "workgroup",
    );
    let custom_domain_name = pick(
        (args.custom_domain_name.clone(), "--custom-domain-name"),
        None,
        file,
        |c| c.custom_domain_name.clone(),
        "custom_domain_name",
    );
    if cluster_identifier.is_none() && workgroup.is_none() && custom_domain_name.is_none() {
        match &inferred {
            Some(endpoint::HostInfo {
                kind: endpoint::HostKind::Cluster,
                name,
                ..
            }) => {
                cluster_identifier = Some(Sourced {
                    value: name.clone(),
                    input: "--host".into(),
                });
            }
            Some(endpoint::HostInfo {
                kind: endpoint::HostKind::Workgroup,
                name,
                ..
            }) => {
                workgroup = Some(Sourced {
                    value: name.clone(),
                    input: "--host".into(),
                });
            }
            None => {}
        }
    }
    if let Some(c) = &cluster_identifier {
        rules::cluster_identifier(&c.input, &c.value)?;
    }
    if let Some(w) = &workgroup {
        rules::workgroup(&w.input, &w.value)?;
    }
    if let Some(d) = &custom_domain_name {
        rules::domain_name(&d.input, &d.value)?;
    }
    let with_iam = pick(
        (args.with_iam.then_some(true), "--with-iam"),
        None,
        file,
        |c| c.with_iam,
        "with_iam",
    );
    let with_iam = with_iam.map(|w| w.value).unwrap_or(false);
    let auto_create_flag = match (args.auto_create, args.no_auto_create) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    };
    let auto_create = pick(
        (auto_create_flag, "--auto-create"),
        None,
        file,
        |c| c.auto_create,
        "auto_create",
    );
    let db_user = pick(
        (args.db_user.clone(), "--db-user"),
        None,
        file,
        |c| c.db_user.clone(),
        "db_user",
    );
    let groups_flag = (!args.db_groups.is_empty()).then(|| args.db_groups.clone());
    let groups = pick(
        (groups_flag, "--db-groups"),
        None,
        file,
        |c| c.db_groups.clone(),
        "db_groups",
    );

    let api = match (&workgroup, with_iam) {
        (Some(w), _) => {
            if let Some(c) = &cluster_identifier {
                return Err(Error::Usage(format!(
                    "{} and {} name two targets: give a cluster or a workgroup",
                    c.input, w.input
                )));
            }
            Api::ServerlessGetCredentials
        }
        (None, true) => Api::GetClusterCredentialsWithIam,
        (None, false) => Api::GetClusterCredentials,
    };
    if api != Api::GetClusterCredentials {
        let why = match api {
            Api::ServerlessGetCredentials => {
                "Redshift Serverless uses your IAM identity as the database user"
            }
            _ => "with --with-iam the database user is your IAM identity",
        };
        for (present, input) in [
            (db_user.as_ref().map(|u| u.input.clone()), "a database user"),
            (groups.as_ref().map(|g| g.input.clone()), "database groups"),
            (auto_create.as_ref().map(|a| a.input.clone()), "auto-create"),
        ] {
            if let Some(source) = present {
                return Err(Error::Usage(format!(
                    "{source} cannot be used here: {why}, so {input} cannot be given"
                )));
            }
        }
    } else if cluster_identifier.is_none() && custom_domain_name.is_none() {
        return Err(Error::Usage(
            "missing --cluster-identifier: name the cluster (or give --workgroup, --custom-domain-name, or a \
             Redshift --host name)"
                .into(),
        ));
    }
    let db_user = match (api, db_user) {
        (Api::GetClusterCredentials, Some(u)) => {
            rules::db_user(&u.input, &u.value)?;
            Some(u.value)
        }
        (Api::GetClusterCredentials, None) => {
            return Err(Error::Usage(
                "missing --db-user: name the database user (or use --with-iam)".into(),
            ));
        }
        (_, _) => None,
    };
    if api == Api::GetClusterCredentialsWithIam
        && cluster_identifier.is_none()
        && custom_domain_name.is_none()
    {
        return Err(Error::Usage(
            "missing --cluster-identifier: --with-iam needs the cluster".into(),
        ));
    }
    let db_name = pick(
        (args.db_name.clone(), "--db-name"),
        None,
        file,
        |c| c.db_name.clone(),
        "db_name",
    );
    if let Some(n) = &db_name {
        rules::db_name(&n.input, &n.value)?;
    }
    let mut db_groups = Vec::new();
    if let Some(g) = &groups {
        for one in &g.value {
            let one = one.trim();
            rules::db_group(&g.input, one)?;
            db_groups.push(one.to_string());
        }
    }
    db_groups.sort();
    db_groups.dedup();

    let number =
        |flag: Option<i64>, name: &str, key: &str, get: fn(&FileConnection) -> Option<i64>| {
            pick((flag, name), None, file, get, key)
        };
    let duration = number(
        args.duration_seconds,
        "--duration-seconds",
        "duration_seconds",
        |c| c.duration_seconds,
    );
    let duration_seconds = match duration {
        Some(d) => {
            rules::duration(&d.input, d.value)?;
            d.value
        }
        None => defaults::DURATION_SECONDS,
    };
    let refresh_margin = match number(
        args.refresh_margin,
        "--refresh-margin",
        "refresh_margin",
        |c| c.refresh_margin,
    ) {
        Some(m) => {
            rules::refresh_margin(&m.input, m.value, duration_seconds)?;
            m.value
        }
        None => defaults::REFRESH_MARGIN.min(duration_seconds - 1),
    };
    let lock_timeout = args.lock_timeout.unwrap_or(defaults::LOCK_TIMEOUT);
    rules::timeout("--lock-timeout", lock_timeout)?;
    let api_timeout = args.api_timeout.unwrap_or(defaults::API_TIMEOUT);
    rules::timeout("--api-timeout", api_timeout)?;
    if api_timeout == 0 {
        return Err(Error::invalid(
            "--api-timeout",
            "0",
            "must be from 1 to 3600 seconds",
        ));
    }

    let host_from_flag = conn.host.is_some();
    let aws = aws_target(
        args,
        env,
        file,
        &var,
        inferred.as_ref().map(|i| (i, host_from_flag)),
    )?;
    let cache = pick(
        (args.cache.map(Ok), "--cache"),
        var("REDSHIFT_CREDS_CACHE").map(|(v, n)| (parse_cache_mode(n, &v), n)),
        file,
        |c| c.cache.as_deref().map(|v| parse_cache_mode("cache", v)),
        "cache",
    );
    let cache = match cache {
        Some(Sourced {
            value: Ok(mode), ..
        }) => mode,
        Some(Sourced {
            value: Err(_),
            input,
        }) => {
            let raw = match input.as_str() {
                "REDSHIFT_CREDS_CACHE" => env.var("REDSHIFT_CREDS_CACHE").unwrap_or_default(),
                _ => file.and_then(|f| f.conn.cache.clone()).unwrap_or_default(),
            };
            return Err(Error::invalid(
                &input,
                &raw,
                "must be one of auto, keyring, file, none",
            ));
        }
        None => CacheMode::Auto,
    };
    let cache_dir = cache_dir(env)?;

    let request = Request {
        api,
        connection: args.name.clone(),
        cluster_identifier: cluster_identifier.map(|c| c.value),
        workgroup: workgroup.map(|w| w.value),
        custom_domain_name: custom_domain_name.map(|d| d.value),
        db_user,
        db_name: db_name.map(|n| n.value),
        db_groups,
        auto_create: auto_create.map(|a| a.value).unwrap_or(false),
        duration_seconds,
        aws,
    };
    let settings = Settings {
        cache,
        cache_dir,
        refresh_margin,
        lock_timeout: Duration::from_secs(lock_timeout as u64),
        api_timeout: Duration::from_secs(api_timeout as u64),
    };
    let connection = Connection { host, port, tls };
    Ok(Resolved {
        request,
        settings,
        connection,
    })
}

fn aws_target(
    args: &CredArgs,
    env: &dyn Env,
    file: Option<&FileSource<'_>>,
    var: &dyn Fn(&'static str) -> Option<(String, &'static str)>,
    inferred: Option<(&endpoint::HostInfo, bool)>,
) -> Result<AwsTarget, Error> {
    let profile = pick(
        (args.profile.clone(), "--profile"),
        var("AWS_PROFILE"),
        file,
        |c| c.aws_profile.clone(),
        "aws_profile",
    );
    if let Some(p) = &profile {
        rules::profile(&p.input, &p.value)?;
    }
    // A Redshift host name names its cluster's region. That region stands
    // with the host, just below an explicit region given the same way: from
    // `--host` it yields only to `--region`; from the file's `host`, to the
    // environment and to the file's own `region`.
    let (host_flag_region, host_file_region) = match inferred {
        Some((i, true)) => (Some(i.region.clone()), None),
        Some((i, false)) => (None, Some(i.region.clone())),
        None => (None, None),
    };
    let region_flag = match (&args.region, host_flag_region) {
        (Some(r), _) => (Some(r.clone()), "--region"),
        (None, Some(r)) => (Some(r), "--host"),
        (None, None) => (None, "--region"),
    };
    let region = pick(
        region_flag,
        var("AWS_REGION").or_else(|| var("AWS_DEFAULT_REGION")),
        file,
        |c| c.region.clone().or_else(|| host_file_region.clone()),
        "region",
    );
    if let Some(r) = &region {
        rules::region(&r.input, &r.value)?;
    }
    let endpoint_url = pick(
        (args.endpoint_url.clone(), "--endpoint-url"),
        var("AWS_ENDPOINT_URL_REDSHIFT").or_else(|| var("AWS_ENDPOINT_URL")),
        file,
        |c| c.endpoint_url.clone(),
        "endpoint_url",
    );
    if let Some(u) = &endpoint_url {
        rules::endpoint_url(&u.input, &u.value)?;
    }
    let profile = profile.map(|p| p.value);
    Ok(AwsTarget {
        effective_profile: profile.clone().unwrap_or_else(|| "default".to_string()),
        profile,
        region: region.map(|r| r.value),
        endpoint_url: endpoint_url.map(|u| u.value),
        access_key_id: env.var("AWS_ACCESS_KEY_ID").filter(|v| !v.is_empty()),
        identity: crate::cache::key::identity(env),
    })
}

fn parse_cache_mode(_input: &str, value: &str) -> Result<CacheMode, ()> {
    match value {
        "auto" => Ok(CacheMode::Auto),
        "keyring" => Ok(CacheMode::Keyring),
        "file" => Ok(CacheMode::File),
        "none" => Ok(CacheMode::None),
        _ => Err(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use crate::testing::{MapEnv, request_with, try_resolve, try_resolve_all};
    use clap::Parser;
    use std::collections::HashMap;

    fn error_of(flags: &[&str], env: &[(&str, &str)]) -> String {
        try_resolve(flags, env).unwrap_err().to_string()
    }

    #[test]
    fn defaults_apply_when_nothing_is_given() {
        let (r, s) = try_resolve(&[], &[]).unwrap();
        assert_eq!(r.duration_seconds, 900);
        assert!(!r.auto_create);
        assert_eq!(r.aws.effective_profile, "default");
        assert_eq!(s.refresh_margin, 300);
        assert_eq!(s.lock_timeout, Duration::from_secs(30));
        assert_eq!(s.api_timeout, Duration::from_secs(20));
        assert_eq!(s.cache, CacheMode::Auto);
    }

    #[test]
    fn flags_win_over_the_environment() {
        let env = [
            ("REDSHIFT_CREDS_CACHE", "file"),
            ("AWS_PROFILE", "envprofile"),
            ("AWS_REGION", "eu-west-1"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:1"),
        ];
        let flags = [
            "--cache",
            "none",
            "--profile",
            "flagprofile",
            "--region",
            "us-west-2",
            "--endpoint-url",
            "http://127.0.0.1:2",
        ];
        let (r, s) = try_resolve(&flags, &env).unwrap();
        assert_eq!(s.cache, CacheMode::None);
        assert_eq!(r.aws.effective_profile, "flagprofile");
        assert_eq!(r.aws.region.as_deref(), Some("us-west-2"));
        assert_eq!(r.aws.endpoint_url.as_deref(), Some("http://127.0.0.1:2"));
        let (r, s) = try_resolve(&[], &env).unwrap();
        assert_eq!(s.cache, CacheMode::File);
        assert_eq!(r.aws.effective_profile, "envprofile");
        assert_eq!(r.aws.region.as_deref(), Some("eu-west-1"));
        assert_eq!(r.aws.endpoint_url.as_deref(), Some("http://127.0.0.1:1"));
    }

    /// Resolves `get NAME FLAGS` against a config file with this text.
    fn with_file(file: &str, flags: &[&str], env: &[(&str, &str)]) -> Result<Resolved, Error> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, file).unwrap();
        let mut argv = vec!["redshift-creds", "get", "prod"];
        argv.extend_from_slice(flags);
        let Command::Get(args) = Cli::try_parse_from(argv).unwrap().command else {
            unreachable!()
        };
        let mut vars: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        vars.insert(
            "REDSHIFT_CREDS_CONFIG".into(),
            path.to_string_lossy().into_owned(),
        );
        resolve(&args.cred, &args.conn, &MapEnv(vars))
    }

    const PROD: &str = r#"
        [connections.prod]
        cluster_identifier = "filecluster"
        db_user = "fileuser"
        db_name = "filedb"
        db_groups = ["filegroup"]
        auto_create = true
        duration_seconds = 1800
        region = "eu-west-1"
        aws_profile = "fileprofile"
        endpoint_url = "http://127.0.0.1:9"
        refresh_margin = 100
        cache = "file"
        host = "file.example.com"
        port = 6000
        sslmode = "require"
    "#;

    #[test]
    fn the_file_fills_in_what_flags_and_environment_leave_out() {
        let r = with_file(PROD, &[], &[]).unwrap();
        let q = &r.request;
        assert_eq!(q.connection.as_deref(), Some("prod"));
        assert_eq!(q.cluster_identifier.as_deref(), Some("filecluster"));
        assert_eq!(q.db_user.as_deref(), Some("fileuser"));
        assert_eq!(q.db_name.as_deref(), Some("filedb"));
        assert_eq!(q.db_groups, ["filegroup"]);
        assert!(q.auto_create);
        assert_eq!(q.duration_seconds, 1800);
        assert_eq!(q.aws.region.as_deref(), Some("eu-west-1"));
        assert_eq!(q.aws.profile.as_deref(), Some("fileprofile"));
        assert_eq!(q.aws.endpoint_url.as_deref(), Some("http://127.0.0.1:9"));
        assert_eq!(r.settings.refresh_margin, 100);
        assert_eq!(r.settings.cache, CacheMode::File);
        assert_eq!(r.connection.host.as_deref(), Some("file.example.com"));
        assert_eq!(r.connection.port, Some(6000));
        assert_eq!(r.connection.tls.mode, crate::tls::SslMode::Require);
    }

    #[test]
    fn flags_win_over_the_file() {
        let r = with_file(
            PROD,
            &[
                "--cluster-identifier",
                "flagcluster",
                "--db-user",
                "flaguser",
                "--db-name",
                "flagdb",
                "--db-groups",
                "flaggroup",
                "--no-auto-create",
                "--duration-seconds",
                "3600",
                "--region",
                "us-west-2",
                "--profile",
                "flagprofile",
                "--endpoint-url",
                "http://127.0.0.1:8",
                "--refresh-margin",
                "200",
                "--cache",
                "none",
                "--host",
                "flag.example.com",
                "--port",
                "7000",
                "--sslmode",
                "verify-ca",
            ],
            &[],
        )
        .unwrap();
        let q = &r.request;
        assert_eq!(q.cluster_identifier.as_deref(), Some("flagcluster"));
        assert_eq!(q.db_user.as_deref(), Some("flaguser"));
        assert_eq!(q.db_name.as_deref(), Some("flagdb"));
        assert_eq!(q.db_groups, ["flaggroup"]);
        assert!(!q.auto_create);
        assert_eq!(q.duration_seconds, 3600);
        assert_eq!(q.aws.region.as_deref(), Some("us-west-2"));
        assert_eq!(q.aws.profile.as_deref(), Some("flagprofile"));
        assert_eq!(q.aws.endpoint_url.as_deref(), Some("http://127.0.0.1:8"));
        assert_eq!(r.settings.refresh_margin, 200);
        assert_eq!(r.settings.cache, CacheMode::None);
        assert_eq!(r.connection.host.as_deref(), Some("flag.example.com"));
        assert_eq!(r.connection.port, Some(7000));
        assert_eq!(r.connection.tls.mode, crate::tls::SslMode::VerifyCa);
    }

    #[test]
    fn the_environment_wins_over_the_file_and_flags_over_the_environment() {
        let env = [
            ("REDSHIFT_CREDS_CACHE", "none"),
            ("AWS_PROFILE", "envprofile"),
            ("AWS_REGION", "ap-south-1"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:7"),
        ];
        let r = with_file(PROD, &[], &env).unwrap();
        assert_eq!(r.settings.cache, CacheMode::None);
        assert_eq!(r.request.aws.profile.as_deref(), Some("envprofile"));
        assert_eq!(r.request.aws.region.as_deref(), Some("ap-south-1"));
        assert_eq!(
            r.request.aws.endpoint_url.as_deref(),
            Some("http://127.0.0.1:7")
        );
        let r = with_file(
            PROD,
            &[
                "--cache",
                "keyring",
                "--profile",
                "p",
                "--region",
                "us-east-2",
                "--endpoint-url",
                "http://x",
            ],
            &env,
        )
        .unwrap();
        assert_eq!(r.settings.cache, CacheMode::Keyring);
        assert_eq!(r.request.aws.profile.as_deref(), Some("p"));
        assert_eq!(r.request.aws.region.as_deref(), Some("us-east-2"));
        assert_eq!(r.request.aws.endpoint_url.as_deref(), Some("http://x"));
    }

    #[test]
    fn defaults_apply_under_an_empty_connection() {
        let r = with_file(
            "[connections.prod]\ncluster_identifier = \"c\"\ndb_user = \"u\"\n",
            &[],
            &[],
        )
        .unwrap();
        assert_eq!(r.request.duration_seconds, 900);
        assert_eq!(r.settings.refresh_margin, 300);
        assert_eq!(r.settings.cache, CacheMode::Auto);
        assert_eq!(r.request.aws.profile, None);
        assert_eq!(r.request.aws.effective_profile, "default");
        assert_eq!(r.connection.port, None);
    }

    #[test]
    fn a_bad_value_in_the_file_names_the_key_connection_and_file() {
        let err = with_file(
            "[connections.prod]\ncluster_identifier = \"c\"\ndb_user = \"PUBLIC\"\n",
            &[],
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("invalid db_user of connection \"prod\" in "),
            "{err}"
        );
        assert!(
            err.ends_with("config.toml \"PUBLIC\": PUBLIC is reserved and cannot be a user"),
            "{err}"
        );
        let err = with_file(
            "[connections.prod]\ncluster_identifier = \"c\"\ndb_user = \"u\"\ncache = \"x\"\n",
            &[],
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("invalid cache of connection \"prod\""),
            "{err}"
        );
        let err = with_file("[connections.prod]\ncluster_identifier = \"c\"\ndb_user = \"u\"\nsslmode = \"disable\"\n", &[], &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("sslmode of connection \"prod\""), "{err}");
        assert!(err.contains("connections without TLS are refused"), "{err}");
    }

    #[test]
    fn an_unknown_connection_lists_the_known_ones() {
        let err = with_file("[connections.dev]\n", &[], &[])
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("no connection \"prod\" in "), "{err}");
        assert!(err.ends_with("it has: dev"), "{err}");
    }

    #[test]
    fn iam_modes_refuse_a_database_user() {
        let err = try_resolve_all(&["--with-iam", "--db-user", "alice"], &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--db-user cannot be used here"), "{err}");
        let r = try_resolve_all(&["--with-iam"], &[]).unwrap();
        assert_eq!(r.request.api, Api::GetClusterCredentialsWithIam);
        assert_eq!(r.request.db_user, None);
        let r = try_resolve_all(&["--workgroup", "analytics"], &[]).unwrap();
        assert_eq!(r.request.api, Api::ServerlessGetCredentials);
        let err = try_resolve_all(&["--workgroup", "analytics", "--db-groups", "g"], &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--db-groups cannot be used here"), "{err}");
        let err = try_resolve_all(
            &["--workgroup", "analytics", "--cluster-identifier", "c"],
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("give a cluster or a workgroup"), "{err}");
        let host = "analytics.123456789012.us-east-1.redshift-serverless.amazonaws.com";
        let r = try_resolve_all(&["--host", host], &[]).unwrap();
        assert_eq!(r.request.workgroup.as_deref(), Some("analytics"));
        assert_eq!(r.request.aws.region.as_deref(), Some("us-east-1"));
    }

    #[test]
    fn cache_dir_comes_from_the_environment() {
        let (_, s) = try_resolve(&[], &[("REDSHIFT_CREDS_CACHE_DIR", "/tmp/x")]).unwrap();
        assert_eq!(s.cache_dir, Some(PathBuf::from("/tmp/x")));
    }

    #[test]
    fn groups_are_sorted_and_deduplicated() {
        let r = request_with(&["--db-groups", "b", "a,b", " c "], &[]);
        assert_eq!(r.db_groups, ["a", "b", "c"]);
    }

    #[test]
    fn bad_inputs_name_the_input_and_the_rule() {
        assert_eq!(
            error_of(&["--duration-seconds", "60"], &[]),
            "invalid --duration-seconds \"60\": must be from 900 to 3600 seconds (15 to 60 minutes)"
        );
        assert_eq!(
            error_of(&["--refresh-margin", "900"], &[]),
            "invalid --refresh-margin \"900\": must be at least 0 and below the duration (900 s)"
        );
        assert_eq!(
            error_of(&["--db-user", "PUBLIC"], &[]),
            "invalid --db-user \"PUBLIC\": PUBLIC is reserved and cannot be a user"
        );
        assert_eq!(
            error_of(&["--db-groups", "Admins"], &[]),
            "invalid --db-groups \"Admins\": group names must be lowercase"
        );
        assert_eq!(
            error_of(&[], &[("REDSHIFT_CREDS_CACHE", "sometimes")]),
            "invalid REDSHIFT_CREDS_CACHE \"sometimes\": must be one of auto, keyring, file, none"
        );
        assert_eq!(
            error_of(&["--api-timeout", "0"], &[]),
            "invalid --api-timeout \"0\": must be from 1 to 3600 seconds"
        );
    }

    #[test]
    fn a_margin_is_checked_against_the_duration_in_force() {
        assert!(
            try_resolve(
                &["--duration-seconds", "3600", "--refresh-margin", "1800"],
                &[]
            )
            .is_ok()
        );
        assert!(try_resolve(&["--refresh-margin", "1800"], &[]).is_err());
    }

    #[test]
    fn a_redshift_host_supplies_the_cluster_and_region() {
        let host = "examplecluster.abc123xyz789.us-west-2.redshift.amazonaws.com";
        let r = try_resolve_all(&["--host", host], &[("AWS_REGION", "eu-west-1")]).unwrap();
        assert_eq!(
            r.request.cluster_identifier.as_deref(),
            Some("examplecluster")
        );
        assert_eq!(r.request.aws.region.as_deref(), Some("us-west-2"));
        assert_eq!(r.connection.host.as_deref(), Some(host));
        // The flags still win.
        let r = try_resolve_all(
            &[
                "--host",
                host,
                "--cluster-identifier",
                "other",
                "--region",
                "us-east-1",
            ],
            &[],
        )
        .unwrap();
        assert_eq!(r.request.cluster_identifier.as_deref(), Some("other"));
        assert_eq!(r.request.aws.region.as_deref(), Some("us-east-1"));
        // A plain host infers nothing.
        let err = try_resolve_all(&["--host", "db.internal.example.com"], &[]).unwrap_err();
        assert!(
            err.to_string().contains("missing --cluster-identifier"),
            "{err}"
        );
    }

    #[test]
    fn a_host_in_the_file_names_the_region_below_the_environment_and_the_file_region() {
        let file = r#"
            [connections.prod]
            host = "examplecluster.abc123xyz789.us-west-2.redshift.amazonaws.com"
            db_user = "u"
        "#;
        let region = |file: &str, flags: &[&str], env: &[(&str, &str)]| {
            with_file(file, flags, env).unwrap().request.aws.region
        };
        // Alone, the file's host supplies the region (and the cluster).
        let r = with_file(file, &[], &[]).unwrap();
        assert_eq!(r.request.aws.region.as_deref(), Some("us-west-2"));
        assert_eq!(
            r.request.cluster_identifier.as_deref(),
            Some("examplecluster")
        );
        // The environment and --region beat it.
        assert_eq!(
            region(file, &[], &[("AWS_REGION", "eu-west-1")]).as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(
            region(file, &["--region", "ap-south-1"], &[]).as_deref(),
            Some("ap-south-1")
        );
        // So does the file's own region key.
        let with_region = format!("{file}region = \"eu-north-1\"\n");
        assert_eq!(
            region(&with_region, &[], &[]).as_deref(),
            Some("eu-north-1")
        );
        // A --host flag's region beats the environment and the file.
        let flag_host = "c.abc123xyz789.ca-central-1.redshift.amazonaws.com";
        assert_eq!(
            region(
                &with_region,
                &["--host", flag_host],
                &[("AWS_REGION", "eu-west-1")]
            )
            .as_deref(),
            Some("ca-central-1")
        );
    }

    #[test]
    fn missing_cluster_is_a_usage_error() {
        let argv = ["redshift-creds", "get", "--db-user", "u"];
        let Command::Get(args) = Cli::try_parse_from(argv).unwrap().command else {
            unreachable!()
        };
        let err = resolve(&args.cred, &args.conn, &MapEnv(HashMap::new())).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("--cluster-identifier"), "{err}");
    }
}
