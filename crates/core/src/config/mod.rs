//! Raw flags, environment and config file → a checked `Request` (what to ask AWS) and `Settings` (how to run).
//!
//! Built in layers: [`layers`] reads one partial config per source, each
//! value with its [`Origin`], and merges them field by field (flag, then
//! environment, then config file); then one resolver per concept checks and
//! completes its part: [`connection`] (host, port, and TLS on request),
//! [`target`] (target and API), [`aws`], [`settings`].

mod aws;
mod connection;
pub mod identity;
mod layers;
mod settings;
mod target;

pub use crate::env::{Env, ProcessEnv};
pub use connection::TlsChoice;
pub use layers::Origin;
pub use settings::cache_dir;

use crate::cache::mode::CacheMode;
use crate::cli::{ConnArgs, CredArgs};
use crate::error::Error;
use crate::tls::Tls;
use layers::{Layers, Sourced};
use std::path::PathBuf;
use std::time::Duration;

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
pub struct AwsScope {
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
    /// see [`identity::identity`]. Secrets enter hashed.
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
    pub aws: AwsScope,
    /// `Some` when an Identity Center token of this type is asked for
    /// instead of a password (`--identity-center`: `SUBJECT_TOKEN`).
    pub token: Option<crate::token::TokenType>,
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
        if self.token.is_some() {
            return format!("{place}, Identity Center identity");
        }
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
    /// Inside the margin, answer with the cached password (while it is
    /// valid) and refresh it in the background, instead of waiting.
    pub refresh_ahead: bool,
    /// How long to wait for another process's refresh.
    pub lock_timeout: Duration,
    /// How long the whole API call may take, retries included.
    pub api_timeout: Duration,
}

/// Where and how clients connect, as far as the settings say. A missing host
/// is found later (DescribeClusters or GetWorkgroup), and only when needed.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    /// The host.
    pub host: Option<String>,
    /// The port.
    pub port: Option<u16>,
    /// The TLS values given, checked; [`Resolved::tls`] fills in the defaults.
    pub tls: TlsChoice,
}

/// Everything one command run needs, checked.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// What to ask AWS.
    pub request: Request,
    /// How to run.
    pub settings: Settings,
    /// Where clients connect.
    pub client: ClientSettings,
    /// Each value in force and where it came from.
    origins: Origins,
}

impl Resolved {
    /// The TLS settings for clients: a separate step, which only the
    /// commands that hand a connection to a client ask for. The values
    /// given were checked by [`resolve`]; this fills in the defaults, which
    /// means looking for the system CA bundle on disk.
    pub fn tls(&self) -> Tls {
        self.client.tls.resolve()
    }

    /// Every value in force, by its config-file name (`cluster_identifier`,
    /// `region`, `cache`, `sslmode`...), with where it came from. Values that
    /// nothing named and that have no default are left out; TLS values are
    /// shown as given (see [`Resolved::tls`] for the defaults filled in).
    pub fn origins(&self) -> Vec<(&'static str, String, Origin)> {
        let mut all = self.origins.clone();
        self.client.tls.origins(&mut all);
        all.0
    }
}

/// The values in force and their origins, in the order they were resolved.
#[derive(Debug, Clone, Default)]
pub(crate) struct Origins(Vec<(&'static str, String, Origin)>);

impl Origins {
    fn push(&mut self, name: &'static str, value: String, origin: Origin) {
        self.0.push((name, value, origin));
    }

    /// Records a value, when there is one.
    fn record(&mut self, name: &'static str, value: Option<&Sourced<String>>) {
        if let Some(v) = value {
            self.push(name, v.value.clone(), v.origin.clone());
        }
    }

    /// The value in force, else the default; either way recorded.
    fn or_default<T: ToString + Copy>(
        &mut self,
        name: &'static str,
        value: Option<Sourced<T>>,
        default: T,
    ) -> T {
        let (value, origin) = match value {
            Some(v) => (v.value, v.origin),
            None => (default, Origin::Default),
        };
        self.push(name, value.to_string(), origin);
        value
    }
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

/// Turns the raw flags, the environment and the named connection into a
/// checked request, settings and connection. Every input is checked here,
/// before anything touches the cache or the network (the TLS defaults are
/// filled in later: see [`Resolved::tls`]). Precedence is flag, then environment, then config
/// file, then default.
pub fn resolve(args: &CredArgs, conn: &ConnArgs, env: &dyn Env) -> Result<Resolved, Error> {
    let file = match &args.name {
        Some(name) => {
            let (c, path) = crate::config_file::connection(env, name)?;
            layers::file(&c, name, &path)
        }
        None => layers::Layer::default(),
    };
    let mut layers = Layers {
        flags: layers::flags(args, conn),
        env: layers::environment(env)?,
        file,
    };
    let inferred = layers.read_host_name();
    let mut merged = layers.merge();
    let mut origins = Origins::default();
    let client = connection::resolve(&mut merged, &mut origins)?;
    let target = target::resolve(&mut merged, inferred, &mut origins)?;
    let timing = settings::timing(&mut merged, &mut origins)?;
    let aws = aws::resolve(&mut merged, env, &mut origins)?;
    let cache = settings::cache_mode(&mut merged, &mut origins)?;
    let cache_dir = match settings::cache_dir_with_origin(env)? {
        Some((dir, origin)) => {
            origins.push("cache_dir", dir.display().to_string(), origin);
            Some(dir)
        }
        None => None,
    };
    let request = Request {
        connection: args.name.clone(),
        duration_seconds: timing.duration_seconds,
        aws,
        ..target
    };
    let settings = Settings {
        cache,
        cache_dir,
        refresh_margin: timing.refresh_margin,
        refresh_ahead: timing.refresh_ahead,
        lock_timeout: timing.lock_timeout,
        api_timeout: timing.api_timeout,
    };
    Ok(Resolved {
        request,
        settings,
        client,
        origins,
    })
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
    fn refresh_ahead_is_on_unless_a_flag_or_the_file_turns_it_off() {
        let of = |r: &Resolved| {
            let found = r
                .origins()
                .into_iter()
                .find(|(n, _, _)| *n == "refresh_ahead");
            let (_, value, origin) = found.expect("refresh_ahead is recorded");
            assert_eq!(value, r.settings.refresh_ahead.to_string());
            (r.settings.refresh_ahead, origin)
        };
        let on = with_file(PROD, &[], &[]).unwrap();
        assert_eq!(of(&on), (true, Origin::Default));
        let off = with_file(PROD, &["--no-refresh-ahead"], &[]).unwrap();
        assert_eq!(of(&off), (false, Origin::Flag("--no-refresh-ahead")));
        let file = format!("{PROD}refresh_ahead = false\n");
        let (value, origin) = of(&with_file(&file, &[], &[]).unwrap());
        assert!(!value);
        assert!(
            origin
                .to_string()
                .starts_with("refresh_ahead of connection \"prod\""),
            "{origin}"
        );
        let bad = with_file(&format!("{PROD}refresh_ahead = \"no\"\n"), &[], &[]);
        let bad = bad.unwrap_err().to_string();
        assert!(bad.contains("refresh_ahead must be true or false"), "{bad}");
    }

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
        assert_eq!(r.client.host.as_deref(), Some("file.example.com"));
        assert_eq!(r.client.port, Some(6000));
        assert_eq!(r.tls().mode, crate::tls::SslMode::Require);
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
        assert_eq!(r.client.host.as_deref(), Some("flag.example.com"));
        assert_eq!(r.client.port, Some(7000));
        assert_eq!(r.tls().mode, crate::tls::SslMode::VerifyCa);
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
        assert_eq!(r.client.port, None);
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
        assert_eq!(r.client.host.as_deref(), Some(host));
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

    #[test]
    fn identity_center_asks_for_a_token_and_takes_no_user() {
        let (r, _) = try_resolve(&["--identity-center"], &[]).unwrap();
        assert_eq!(r.token, Some(crate::token::TokenType::SubjectToken));
        assert_eq!(r.db_user, None);
        let (r, _) = try_resolve(&["--identity-center", "--workgroup", "wg1"], &[]).unwrap();
        assert_eq!(r.token, Some(crate::token::TokenType::SubjectToken));
        assert_eq!(try_resolve(&[], &[]).unwrap().0.token, None);
        for (flags, says) in [
            (
                &["--identity-center", "--db-user", "u"][..],
                "--db-user cannot be used here: with --identity-center",
            ),
            (
                &["--identity-center", "--with-iam"][..],
                "--identity-center and --with-iam ask for two kinds of login",
            ),
            (
                &["--identity-center", "--db-groups", "g"][..],
                "--db-groups cannot be used here",
            ),
        ] {
            let e = try_resolve(flags, &[]).unwrap_err();
            assert_eq!(e.exit_code(), 2);
            assert!(e.to_string().contains(says), "{flags:?}: {e}");
        }
        let argv = [
            "redshift-creds",
            "get",
            "--identity-center",
            "--custom-domain-name",
            "db.example.com",
        ];
        let Command::Get(a) = Cli::try_parse_from(argv).unwrap().command else {
            unreachable!()
        };
        let e = resolve(&a.cred, &a.conn, &MapEnv(HashMap::new())).unwrap_err();
        assert!(e.to_string().contains("takes no custom domain"), "{e}");
    }

    #[test]
    fn no_with_iam_beats_the_files_with_iam() {
        let file = "[connections.prod]\ncluster_identifier = \"c\"\nwith_iam = true\n";
        let r = with_file(file, &[], &[]).unwrap();
        assert_eq!(r.request.api, Api::GetClusterCredentialsWithIam);
        let r = with_file(file, &["--no-with-iam", "--db-user", "u"], &[]).unwrap();
        assert_eq!(r.request.api, Api::GetClusterCredentials);
        assert_eq!(r.request.db_user.as_deref(), Some("u"));
        let err = with_file(file, &["--db-user", "u"], &[]).unwrap_err();
        assert!(
            err.to_string().contains("--db-user cannot be used here"),
            "{err}"
        );
    }

    #[test]
    fn origins_name_the_flag_variable_file_key_or_default() {
        let r = with_file(
            PROD,
            &[
                "--db-user",
                "flaguser",
                "--host",
                "examplecluster.abc123xyz789.us-west-2.redshift.amazonaws.com",
            ],
            &[("AWS_PROFILE", "envprofile")],
        )
        .unwrap();
        let origins = r.origins();
        let of = |name: &str| {
            origins
                .iter()
                .find(|(n, _, _)| *n == name)
                .map(|(_, v, o)| (v.clone(), o.clone()))
                .unwrap_or_else(|| panic!("{name} in {origins:?}"))
        };
        assert_eq!(
            of("db_user"),
            ("flaguser".into(), Origin::Flag("--db-user"))
        );
        assert_eq!(
            of("aws_profile"),
            ("envprofile".into(), Origin::Env("AWS_PROFILE"))
        );
        let (value, origin) = of("db_name");
        assert_eq!(value, "filedb");
        let Origin::File {
            connection,
            key,
            path,
        } = &origin
        else {
            panic!("{origin:?}")
        };
        assert_eq!((connection.as_str(), *key), ("prod", "db_name"));
        assert!(path.ends_with("config.toml"));
        assert_eq!(
            origin.to_string(),
            format!("db_name of connection \"prod\" in {}", path.display())
        );
        assert_eq!(of("lock_timeout"), ("30".into(), Origin::Default));
        let (value, origin) = of("cache");
        assert_eq!(value, "file");
        assert!(
            matches!(origin, Origin::File { key: "cache", .. }),
            "{origin:?}"
        );
        assert_eq!(of("sslmode").0, "require");
        // A --host flag's region stands with the flag, above the file's region.
        assert_eq!(
            of("region"),
            (
                "us-west-2".into(),
                Origin::HostName(Box::new(Origin::Flag("--host")))
            )
        );
    }

    #[test]
    fn tls_values_are_checked_with_the_rest_and_defaults_filled_in_on_request() {
        let err = try_resolve_all(&["--sslrootcert", "/nonexistent/ca.pem"], &[]).unwrap_err();
        assert!(err.to_string().contains("--sslrootcert"), "{err}");
        let err = try_resolve_all(&["--sslmode", "disable"], &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("invalid --sslmode \"disable\": connections without TLS"),
            "{err}"
        );
        let ca = tempfile::NamedTempFile::new().unwrap();
        let ca_path = ca.path().to_str().unwrap();
        let r = try_resolve_all(&["--sslrootcert", ca_path], &[]).unwrap();
        let tls = r.tls();
        assert_eq!(tls.mode, crate::tls::SslMode::VerifyFull);
        assert_eq!(tls.root_cert.as_deref(), Some(ca.path()));
        let r = try_resolve_all(&["--sslmode", "require"], &[]).unwrap();
        assert_eq!(r.tls().mode, crate::tls::SslMode::Require);
        assert_eq!(r.tls().root_cert, None);
    }

    #[cfg(unix)]
    #[test]
    fn a_text_variable_that_is_not_utf8_is_refused() {
        use std::os::unix::ffi::OsStringExt;
        struct Raw;
        impl Env for Raw {
            fn var_os(&self, name: &str) -> Option<std::ffi::OsString> {
                (name == "AWS_PROFILE").then(|| std::ffi::OsString::from_vec(vec![0xff]))
            }
        }
        let argv = [
            "redshift-creds",
            "get",
            "--cluster-identifier",
            "c",
            "--db-user",
            "u",
        ];
        let Command::Get(args) = Cli::try_parse_from(argv).unwrap().command else {
            unreachable!()
        };
        let err = resolve(&args.cred, &args.conn, &Raw).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert_eq!(
            err.to_string(),
            "invalid AWS_PROFILE: the value is not valid UTF-8; fix or unset it"
        );
    }
}
