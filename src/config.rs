//! Raw flags and environment → a checked `Request` (what to ask AWS) and `Settings` (how to run).

use crate::cli::{CacheMode, ConnArgs, CredArgs};
use crate::endpoint;
use crate::error::Error;
use crate::rules;
use crate::tls::Tls;
use std::path::PathBuf;
use std::time::Duration;

/// The environment, as a lookup, so tests can supply their own.
pub(crate) trait Env {
    /// The value of a variable, if it is set to valid Unicode.
    fn var(&self, name: &str) -> Option<String>;
}

/// The real process environment.
pub(crate) struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

/// Which credential API a request goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// redshift:GetClusterCredentials.
    GetClusterCredentials,
}

impl Api {
    /// The operation name, as AWS spells it.
    pub fn name(self) -> &'static str {
        match self {
            Api::GetClusterCredentials => "GetClusterCredentials",
        }
    }
}

/// Where the AWS SDK should look, as given on the command line, plus the
/// effective values that identify the answer in the cache key.
#[derive(Debug, Clone, Default)]
pub struct AwsTarget {
    /// `--profile`, passed to aws-config.
    pub profile_flag: Option<String>,
    /// `--region`, passed to aws-config.
    pub region_flag: Option<String>,
    /// `--endpoint-url`, passed to aws-config.
    pub endpoint_url_flag: Option<String>,
    /// The profile in force: the flag, `AWS_PROFILE`, or `default`. It stands
    /// for whatever region and credentials the profile supplies.
    pub effective_profile: String,
    /// The region from the flag or the environment, when either gives one.
    pub effective_region: Option<String>,
    /// The endpoint from the flag or the environment, when either gives one.
    pub effective_endpoint_url: Option<String>,
    /// `AWS_ACCESS_KEY_ID`, when set: environment credentials win over profiles.
    pub access_key_id: Option<String>,
}

/// One credential request, checked: everything that changes the answer.
#[derive(Debug, Clone)]
pub struct Request {
    /// The API to call.
    pub api: Api,
    /// The cluster, unless a custom domain names it.
    pub cluster_identifier: Option<String>,
    /// The cluster's custom domain name.
    pub custom_domain_name: Option<String>,
    /// The database user, without prefix.
    pub db_user: String,
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
    /// Names the cluster and user for messages: `cluster "c", user "u"`.
    pub fn describe(&self) -> String {
        let place = match (&self.cluster_identifier, &self.custom_domain_name) {
            (Some(c), _) => format!("cluster \"{c}\""),
            (None, Some(d)) => format!("custom domain \"{d}\""),
            (None, None) => "no cluster".to_string(),
        };
        format!("{place}, user \"{}\"", self.db_user)
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

/// Where and how clients connect, as far as the flags say. A missing host is
/// found later, with DescribeClusters, and only when a command needs it.
#[derive(Debug, Clone)]
pub struct Connection {
    /// `--host`.
    pub host: Option<String>,
    /// `--port`.
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
pub(crate) mod defaults {
    /// The password lifetime the AWS API uses when none is given.
    pub const DURATION_SECONDS: i64 = 900;
    /// Refresh this long before expiry.
    pub const REFRESH_MARGIN: i64 = 300;
    /// Wait this long for another process's refresh.
    pub const LOCK_TIMEOUT: i64 = 30;
    /// The whole API call, retries included.
    pub const API_TIMEOUT: i64 = 20;
}

/// Turns the raw `get` flags and the environment into a checked request and
/// settings. Every input is checked here, before anything touches the cache
/// or the network. Precedence is flag, then environment, then default.
pub(crate) fn resolve(args: &CredArgs, conn: &ConnArgs, env: &dyn Env) -> Result<Resolved, Error> {
    let host = match &conn.host {
        Some(h) => {
            rules::host("--host", h)?;
            Some(h.to_ascii_lowercase())
        }
        None => None,
    };
    let port = match conn.port {
        Some(p) => Some(rules::port("--port", p)?),
        None => None,
    };
    let tls = crate::tls::resolve(conn.sslmode.as_deref(), conn.sslrootcert.as_deref())?;
    // A Redshift host name carries the cluster and region: use them when the
    // flags do not say.
    let inferred = host.as_deref().and_then(endpoint::parse_host);
    let mut cluster_identifier = args.cluster_identifier.clone();
    if cluster_identifier.is_none() && args.custom_domain_name.is_none() {
        cluster_identifier = inferred.as_ref().map(|i| i.cluster.clone());
    }
    if let Some(c) = &cluster_identifier {
        rules::cluster_identifier("--cluster-identifier", c)?;
    }
    let custom_domain_name = args.custom_domain_name.clone();
    if let Some(d) = &custom_domain_name {
        rules::domain_name("--custom-domain-name", d)?;
    }
    if cluster_identifier.is_none() && custom_domain_name.is_none() {
        return Err(Error::Usage(
            "missing --cluster-identifier: name the cluster (or give --custom-domain-name, or a \
             Redshift --host name)"
                .into(),
        ));
    }
    let db_user = args
        .db_user
        .clone()
        .ok_or_else(|| Error::Usage("missing --db-user: name the database user".into()))?;
    rules::db_user("--db-user", &db_user)?;
    if let Some(n) = &args.db_name {
        rules::db_name("--db-name", n)?;
    }
    let mut db_groups = Vec::with_capacity(args.db_groups.len());
    for g in &args.db_groups {
        let g = g.trim();
        rules::db_group("--db-groups", g)?;
        db_groups.push(g.to_string());
    }
    db_groups.sort();
    db_groups.dedup();

    let duration_seconds = args.duration_seconds.unwrap_or(defaults::DURATION_SECONDS);
    rules::duration("--duration-seconds", duration_seconds)?;
    let refresh_margin = args.refresh_margin.unwrap_or(defaults::REFRESH_MARGIN);
    rules::refresh_margin("--refresh-margin", refresh_margin, duration_seconds)?;
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

    let mut aws = aws_target(args, env)?;
    if let (None, Some(i)) = (&aws.region_flag, &inferred) {
        aws.region_flag = Some(i.region.clone());
        aws.effective_region = Some(i.region.clone());
    }
    let cache = match args.cache {
        Some(mode) => mode,
        None => match env.var("REDSHIFT_CREDS_CACHE") {
            Some(v) => parse_cache_mode("REDSHIFT_CREDS_CACHE", &v)?,
            None => CacheMode::Auto,
        },
    };
    let cache_dir = match env.var("REDSHIFT_CREDS_CACHE_DIR") {
        Some(d) if d.is_empty() || d.contains('\0') => {
            return Err(Error::invalid(
                "REDSHIFT_CREDS_CACHE_DIR",
                &d,
                "must be a directory path",
            ));
        }
        Some(d) => Some(PathBuf::from(d)),
        None => dirs::cache_dir().map(|d| d.join("redshift-creds")),
    };

    let request = Request {
        api: Api::GetClusterCredentials,
        cluster_identifier,
        custom_domain_name,
        db_user,
        db_name: args.db_name.clone(),
        db_groups,
        auto_create: args.auto_create,
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

fn aws_target(args: &CredArgs, env: &dyn Env) -> Result<AwsTarget, Error> {
    if let Some(p) = &args.profile {
        rules::profile("--profile", p)?;
    }
    if let Some(r) = &args.region {
        rules::region("--region", r)?;
    }
    if let Some(u) = &args.endpoint_url {
        rules::endpoint_url("--endpoint-url", u)?;
    }
    let non_empty = |name: &str| env.var(name).filter(|v| !v.is_empty());
    Ok(AwsTarget {
        profile_flag: args.profile.clone(),
        region_flag: args.region.clone(),
        endpoint_url_flag: args.endpoint_url.clone(),
        effective_profile: args
            .profile
            .clone()
            .or_else(|| non_empty("AWS_PROFILE"))
            .unwrap_or_else(|| "default".to_string()),
        effective_region: args
            .region
            .clone()
            .or_else(|| non_empty("AWS_REGION"))
            .or_else(|| non_empty("AWS_DEFAULT_REGION")),
        effective_endpoint_url: args
            .endpoint_url
            .clone()
            .or_else(|| non_empty("AWS_ENDPOINT_URL_REDSHIFT"))
            .or_else(|| non_empty("AWS_ENDPOINT_URL")),
        access_key_id: non_empty("AWS_ACCESS_KEY_ID"),
    })
}

fn parse_cache_mode(input: &str, value: &str) -> Result<CacheMode, Error> {
    match value {
        "auto" => Ok(CacheMode::Auto),
        "keyring" => Ok(CacheMode::Keyring),
        "file" => Ok(CacheMode::File),
        "none" => Ok(CacheMode::None),
        _ => Err(Error::invalid(
            input,
            value,
            "must be one of auto, keyring, file, none",
        )),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;
    use std::collections::HashMap;

    pub(crate) struct MapEnv(pub HashMap<String, String>);

    impl Env for MapEnv {
        fn var(&self, name: &str) -> Option<String> {
            self.0.get(name).cloned()
        }
    }

    pub(crate) fn try_resolve(
        flags: &[&str],
        env: &[(&str, &str)],
    ) -> Result<(Request, Settings), Error> {
        try_resolve_all(flags, env).map(|r| (r.request, r.settings))
    }

    pub(crate) fn try_resolve_all(flags: &[&str], env: &[(&str, &str)]) -> Result<Resolved, Error> {
        let mut argv = vec!["redshift-creds", "get"];
        if !flags.contains(&"--cluster-identifier") && !flags.contains(&"--host") {
            argv.extend(["--cluster-identifier", "examplecluster"]);
        }
        if !flags.contains(&"--db-user") {
            argv.extend(["--db-user", "temp_creds_user"]);
        }
        argv.extend_from_slice(flags);
        let Command::Get(args) = Cli::try_parse_from(argv).unwrap().command else {
            unreachable!()
        };
        let env = MapEnv(
            env.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        resolve(&args.cred, &args.conn, &env)
    }

    /// A checked request for the example cluster with these extra flags and environment.
    pub(crate) fn request_with(flags: &[&str], env: &[(&str, &str)]) -> Request {
        try_resolve(flags, env).unwrap().0
    }

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
        assert_eq!(r.aws.effective_region.as_deref(), Some("us-west-2"));
        assert_eq!(
            r.aws.effective_endpoint_url.as_deref(),
            Some("http://127.0.0.1:2")
        );
        let (r, s) = try_resolve(&[], &env).unwrap();
        assert_eq!(s.cache, CacheMode::File);
        assert_eq!(r.aws.effective_profile, "envprofile");
        assert_eq!(r.aws.effective_region.as_deref(), Some("eu-west-1"));
        assert_eq!(
            r.aws.effective_endpoint_url.as_deref(),
            Some("http://127.0.0.1:1")
        );
        assert_eq!(
            r.aws.profile_flag, None,
            "env values are left for aws-config to read"
        );
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
        assert_eq!(r.request.aws.effective_region.as_deref(), Some("us-west-2"));
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
        assert_eq!(r.request.aws.effective_region.as_deref(), Some("us-east-1"));
        // A plain host infers nothing.
        let err = try_resolve_all(&["--host", "db.internal.example.com"], &[]).unwrap_err();
        assert!(
            err.to_string().contains("missing --cluster-identifier"),
            "{err}"
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
