//! The command line, as clap definitions only: names, help and raw values.

use crate::cache::mode::CacheMode;
use crate::choice::{Parsed, parse_flag};
use crate::output::OutputFormat;
use crate::tls::SslMode;
use clap::error::ContextValue;
use clap::{Args, Parser, Subcommand};
use clap_complete::ArgValueCandidates;

/// Short-lived Amazon Redshift database credentials from IAM, cached in the OS
/// keyring, for psql, dbt and every other client.
#[derive(Debug, Parser)]
#[command(name = "redshift-creds", version, max_term_width = 100)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The front's parser for `get` alone: a cache hit builds only the arguments it can
/// answer, since building the whole command tree cost more than the hit itself. Whatever
/// it refuses (help, a typo) goes to the full program, which parses with [`Cli`] and says
/// why.
#[derive(Debug, Parser)]
#[command(name = "redshift-creds")]
pub struct FrontGet {
    #[command(subcommand)]
    pub command: OnlyGet,
}

/// The one subcommand of [`FrontGet`].
#[derive(Debug, Subcommand)]
pub enum OnlyGet {
    Get(GetArgs),
}

/// The front's parser for `exec` alone (see [`FrontGet`]).
#[derive(Debug, Parser)]
#[command(name = "redshift-creds")]
pub struct FrontExec {
    #[command(subcommand)]
    pub command: OnlyExec,
}

/// The one subcommand of [`FrontExec`].
#[derive(Debug, Subcommand)]
pub enum OnlyExec {
    Exec(ExecArgs),
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print temporary database credentials (a drop-in for `aws redshift get-cluster-credentials`).
    Get(GetArgs),
    /// Run a command (psql, pgcli, dbt...) with PGHOST, PGUSER, PGPASSWORD and the rest set.
    Exec(ExecArgs),
    /// Write this connection's line into the pgpass file (PGPASSFILE or ~/.pgpass).
    Pgpass(PgpassArgs),
    /// List cached entries: connection, user, expiry, time left and store (never a password).
    List,
    /// Remove cached entries from whichever store holds them.
    Clear(ClearArgs),
    /// Serve the connection on a local port: any client logs in with no password (IAM upstream).
    Proxy(ProxyArgs),
    /// Check what `get` would do with these inputs: config, region, cache store, AWS credentials, endpoint.
    Doctor(DoctorArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff).
    Man,
}

/// The credential flags every command takes: the AWS CLI's, plus cache control.
#[derive(Debug, Clone, Args)]
pub struct CredArgs {
    /// A named connection from the config file ([connections.NAME]).
    #[arg(value_name = "NAME", add = ArgValueCandidates::new(crate::candidates::connection_names))]
    pub name: Option<String>,

    /// The cluster that holds the database.
    #[arg(long, value_name = "ID")]
    pub cluster_identifier: Option<String>,

    /// The database user to get credentials for (without the IAM: prefix).
    #[arg(long, value_name = "USER")]
    pub db_user: Option<String>,

    /// Use GetClusterCredentialsWithIAM: the database user is your IAM identity.
    #[arg(long, overrides_with = "no_with_iam")]
    pub with_iam: bool,

    /// Use GetClusterCredentials with --db-user, even when the config file says with_iam.
    #[arg(long, overrides_with = "with_iam")]
    pub no_with_iam: bool,

    /// Get an Identity Center token (GetIdentityCenterAuthToken) for the cluster or workgroup
    /// instead of a password: for a driver's token login, or the proxy.
    #[arg(long)]
    pub identity_center: bool,

    /// A Redshift Serverless workgroup, instead of a cluster (uses your IAM identity).
    #[arg(long, value_name = "NAME")]
    pub workgroup: Option<String>,

    /// The database the user may log on to (default: any).
    #[arg(long, value_name = "DB")]
    pub db_name: Option<String>,

    /// Create the database user if it does not exist.
    #[arg(long, overrides_with = "no_auto_create")]
    pub auto_create: bool,

    /// Do not create the database user (the default).
    #[arg(long, overrides_with = "auto_create")]
    pub no_auto_create: bool,

    /// Database groups to join for this session, space- or comma-separated.
    #[arg(long, value_name = "GROUP", num_args = 1.., value_delimiter = ',')]
    pub db_groups: Vec<String>,

    /// Password lifetime in seconds, 900 to 3600 [default: 900].
    #[arg(long, value_name = "SECONDS", allow_negative_numbers = true)]
    pub duration_seconds: Option<i64>,

    /// The custom domain name of the cluster (or, with --workgroup, of the workgroup), instead
    /// of --cluster-identifier; also with --with-iam.
    #[arg(long, value_name = "NAME")]
    pub custom_domain_name: Option<String>,

    /// The AWS profile to use (default: $AWS_PROFILE, else "default").
    #[arg(long, value_name = "AWS_PROFILE")]
    pub profile: Option<String>,

    /// The AWS region (default: the region in a Redshift --host name, then $AWS_REGION,
    /// $AWS_DEFAULT_REGION, the connection's region or host, else the profile's region).
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,

    /// Send API calls to this URL instead of the AWS endpoint
    /// (default: $AWS_ENDPOINT_URL_REDSHIFT, else $AWS_ENDPOINT_URL).
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,

    /// Where to cache credentials [default: $REDSHIFT_CREDS_CACHE, else auto].
    #[arg(long, value_enum, value_name = "MODE")]
    pub cache: Option<CacheMode>,

    /// Refresh a cached password this many seconds before it expires [default: 300].
    #[arg(long, value_name = "SECONDS", allow_negative_numbers = true)]
    pub refresh_margin: Option<i64>,

    /// Inside the refresh margin, wait for the new password instead of printing the cached
    /// one at once and refreshing it in the background.
    #[arg(long)]
    pub no_refresh_ahead: bool,

    /// Wait at most this long for another process that is refreshing [default: 30].
    #[arg(long, value_name = "SECONDS", allow_negative_numbers = true)]
    pub lock_timeout: Option<i64>,

    /// Give up on the AWS call, retries included, after this long [default: 20].
    #[arg(long, value_name = "SECONDS", allow_negative_numbers = true)]
    pub api_timeout: Option<i64>,

    /// IAM Identity Center: sign in with a browser at this issuer URL and print an
    /// Identity Center access token instead of a password (needs --idc-region).
    #[arg(long, value_name = "URL")]
    pub idc_issuer_url: Option<String>,

    /// The region of the Identity Center instance (its SSO-OIDC endpoint).
    #[arg(long, value_name = "REGION")]
    pub idc_region: Option<String>,

    /// The loopback port the browser is sent back to after sign-in [default: 7890].
    #[arg(long, value_name = "PORT", allow_negative_numbers = true)]
    pub idc_listen_port: Option<i64>,

    /// How long to wait for the browser sign-in, in seconds [default: 120].
    #[arg(long, value_name = "SECONDS", allow_negative_numbers = true)]
    pub idc_response_timeout: Option<i64>,

    /// The application name the sign-in page shows [default: redshift-creds].
    #[arg(long, value_name = "NAME")]
    pub idc_client_display_name: Option<String>,

    /// Log what happens to stderr; repeat for more detail. RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// Where and how to connect: used by `--output env`, `exec` and `pgpass`.
#[derive(Debug, Clone, Args)]
pub struct ConnArgs {
    /// The database host [default: found with DescribeClusters, or GetWorkgroup for
    /// --workgroup]. A Redshift host name also gives the cluster and region.
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,

    /// The database port [default: 5439, or the cluster's].
    #[arg(long, value_name = "PORT", allow_negative_numbers = true)]
    pub port: Option<i64>,

    /// TLS mode: require, verify-ca or verify-full [default: verify-full with the system CA
    /// bundle, else require]. Modes without TLS are refused.
    #[arg(long, value_name = "MODE", value_parser = parse_flag::<SslMode>, add = ArgValueCandidates::new(crate::candidates::ssl_modes))]
    pub sslmode: Option<Parsed<SslMode>>,

    /// The CA certificate file to verify the server with [default: the system CA bundle].
    #[arg(long, value_name = "PATH", value_hint = clap::ValueHint::FilePath)]
    pub sslrootcert: Option<std::path::PathBuf>,
}

/// `clear`: what to remove.
#[derive(Debug, Clone, Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["name", "all"])))]
pub struct ClearArgs {
    /// The connection (or cluster, or workgroup) whose entries to remove.
    #[arg(value_name = "NAME", add = ArgValueCandidates::new(crate::candidates::connection_names))]
    pub name: Option<String>,

    /// Remove every cached entry.
    #[arg(long)]
    pub all: bool,
}

/// `doctor`: the inputs `get` would take, to check what it would do with them.
#[derive(Debug, Clone, Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    pub cred: CredArgs,

    #[command(flatten)]
    pub conn: ConnArgs,
}

/// `get`: credentials on stdout.
#[derive(Debug, Clone, Args)]
pub struct GetArgs {
    #[command(flatten)]
    pub cred: CredArgs,

    #[command(flatten)]
    pub conn: ConnArgs,

    /// What to print on stdout.
    #[arg(long, value_enum, default_value_t = OutputFormat::Json)]
    pub output: OutputFormat,
}

/// `exec`: run a command with the connection in its environment.
#[derive(Debug, Clone, Args)]
pub struct ExecArgs {
    #[command(flatten)]
    pub cred: CredArgs,

    #[command(flatten)]
    pub conn: ConnArgs,

    /// The command to run, after `--`, and its arguments.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<std::ffi::OsString>,
}

/// `pgpass`: keep a pgpass line current.
#[derive(Debug, Clone, Args)]
pub struct PgpassArgs {
    #[command(flatten)]
    pub cred: CredArgs,

    #[command(flatten)]
    pub conn: ConnArgs,

    /// Keep running, rewriting the line before each password expires.
    #[arg(long)]
    pub watch: bool,

    /// Say nothing on stderr about the line written (errors and warnings still show).
    #[arg(short, long)]
    pub quiet: bool,
}

/// `proxy`: a local PostgreSQL proxy that logs every upstream connection in with the IAM password.
#[derive(Debug, Clone, Args)]
pub struct ProxyArgs {
    #[command(flatten)]
    pub cred: CredArgs,

    #[command(flatten)]
    pub conn: ConnArgs,

    /// Where clients connect: 127.0.0.1:PORT, [::1]:PORT or unix:DIR (a libpq socket
    /// DIR/.s.PGSQL.PORT); repeatable [default: the config file's `listen`, else 127.0.0.1:5439].
    #[arg(long, value_name = "ADDR")]
    pub listen: Vec<String>,

    /// Serve every connection in the config file that has `listen`, in one process.
    #[arg(long, conflicts_with_all = ["name", "listen", "host", "port", "cluster_identifier", "workgroup"])]
    pub all: bool,

    /// Offer TLS to clients, with a local CA made once under the config directory.
    #[arg(long)]
    pub client_tls: bool,

    /// On SIGINT or SIGTERM, wait this long for open sessions [default: 30].
    #[arg(long, value_name = "SECONDS", allow_negative_numbers = true)]
    pub shutdown_timeout: Option<i64>,

    /// Let this uid connect too, besides the proxy's own; repeatable. Root is let in only
    /// when the proxy runs as root or with --allow-uid 0.
    #[arg(long, value_name = "UID")]
    pub allow_uid: Vec<u32>,

    /// Serve /startup, /liveness, /readiness, /metrics and POST /quitquitquit over HTTP at
    /// ADDR (HOST:PORT; any address, as nothing served there is secret).
    #[arg(long, value_name = "ADDR")]
    pub http: Option<String>,

    /// Serve at most N sessions at once; the next client is refused with SQLSTATE 53300.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub max_connections: Option<i64>,

    /// On SIGTERM or POST /quitquitquit, keep accepting this long before draining [default: 0].
    #[arg(long, value_name = "SECONDS", allow_negative_numbers = true)]
    pub min_shutdown_delay: Option<i64>,

    /// Log every line on stderr as one JSON object (timestamp, level, message and fields).
    #[arg(long)]
    pub structured_logs: bool,

    /// Resolve the configuration, print what would be served, bind nothing, and exit.
    #[arg(long)]
    pub check: bool,
}

/// Says a clap usage error in one line from its kind and context (never by
/// reading clap's rendered text): what is wrong, with which argument, the
/// valid values or a similar name when clap knows them, and where to find help.
pub fn usage_line(e: &clap::Error) -> String {
    use clap::error::{ContextKind as K, ErrorKind};
    let text = |kind| match e.get(kind) {
        Some(ContextValue::String(s)) => Some(s.as_str()),
        _ => None,
    };
    let arg = text(K::InvalidArg).unwrap_or("?");
    let value = text(K::InvalidValue).unwrap_or("");
    let mut line = match e.kind() {
        ErrorKind::InvalidValue if value.is_empty() => {
            format!("a value is required for '{arg}' but none was supplied")
        }
        ErrorKind::InvalidValue => format!("invalid value '{value}' for '{arg}'"),
        ErrorKind::ValueValidation => match std::error::Error::source(e) {
            Some(why) => format!("invalid value '{value}' for '{arg}': {why}"),
            None => format!("invalid value '{value}' for '{arg}'"),
        },
        ErrorKind::UnknownArgument => format!("unexpected argument '{arg}' found"),
        ErrorKind::InvalidSubcommand => format!(
            "unrecognized subcommand '{}'",
            text(K::InvalidSubcommand).unwrap_or("?")
        ),
        ErrorKind::MissingRequiredArgument => format!(
            "the following required arguments were not provided: {}",
            list(e.get(K::InvalidArg))
        ),
        ErrorKind::ArgumentConflict => conflict(e, arg),
        ErrorKind::TooManyValues => {
            format!("unexpected value '{value}' for '{arg}' found; no more were expected")
        }
        ErrorKind::NoEquals => format!("equal sign is needed when assigning values to '{arg}'"),
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand | ErrorKind::MissingSubcommand => {
            use clap::CommandFactory;
            let names: Vec<String> = Cli::command()
                .get_subcommands()
                .map(|c| c.get_name().to_string())
                .collect();
            format!("a subcommand is required: {}", names.join(", "))
        }
        other => other.as_str().unwrap_or("invalid arguments").to_string(),
    };
    if e.kind() == ErrorKind::InvalidValue {
        match e.get(K::ValidValue) {
            Some(ContextValue::Strings(valid)) if !valid.is_empty() => {
                line.push_str(&format!(" [possible values: {}]", valid.join(", ")));
            }
            _ => {}
        }
    }
    for (kind, what) in [
        (K::SuggestedArg, "argument"),
        (K::SuggestedValue, "value"),
        (K::SuggestedSubcommand, "subcommand"),
    ] {
        match e.get(kind) {
            Some(ContextValue::String(s)) => {
                line.push_str(&format!(" tip: a similar {what} exists: '{s}'"));
            }
            Some(ContextValue::Strings(s)) if !s.is_empty() => {
                line.push_str(&format!(" tip: a similar {what} exists: '{}'", s[0]));
            }
            _ => {}
        }
    }
    format!("{line} (see --help)")
}

/// A list of names from an error's context, comma-separated.
fn list(value: Option<&ContextValue>) -> String {
    match value {
        Some(ContextValue::Strings(v)) if !v.is_empty() => v.join(", "),
        Some(ContextValue::String(s)) => s.clone(),
        _ => "none".to_string(),
    }
}

/// An argument given twice, or with one it excludes.
fn conflict(e: &clap::Error, arg: &str) -> String {
    use clap::error::ContextKind as K;
    match e.get(K::PriorArg) {
        Some(ContextValue::String(prior)) if prior == arg => {
            format!("the argument '{arg}' cannot be used multiple times")
        }
        Some(ContextValue::String(prior)) => {
            format!("the argument '{arg}' cannot be used with '{prior}'")
        }
        Some(ContextValue::Strings(prior)) => {
            format!(
                "the argument '{arg}' cannot be used with: {}",
                prior.join(", ")
            )
        }
        _ => format!("the argument '{arg}' cannot be used with one or more of the other arguments"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    fn parse(args: &[&str]) -> CredArgs {
        let mut full = vec!["redshift-creds", "get"];
        full.extend_from_slice(args);
        match Cli::try_parse_from(full).unwrap().command {
            Command::Get(g) => g.cred,
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn exec_takes_the_command_after_a_double_dash() {
        let cli = Cli::try_parse_from([
            "redshift-creds",
            "exec",
            "--db-user",
            "u",
            "--",
            "psql",
            "-c",
            "select 1",
        ])
        .unwrap();
        let Command::Exec(e) = cli.command else {
            panic!()
        };
        assert_eq!(e.command, ["psql", "-c", "select 1"]);
        assert_eq!(e.cred.db_user.as_deref(), Some("u"));
        assert!(Cli::try_parse_from(["redshift-creds", "exec", "--db-user", "u"]).is_err());
    }

    #[test]
    fn db_groups_take_spaces_and_commas_like_the_aws_cli() {
        let g = parse(&["--db-groups", "a", "b,c", "--db-user", "u"]);
        assert_eq!(g.db_groups, ["a", "b", "c"]);
        assert_eq!(g.db_user.as_deref(), Some("u"));
    }

    #[test]
    fn the_last_auto_create_flag_wins() {
        let g = parse(&["--auto-create", "--no-auto-create"]);
        assert!(!g.auto_create && g.no_auto_create);
        let g = parse(&["--no-auto-create", "--auto-create"]);
        assert!(g.auto_create && !g.no_auto_create);
    }

    /// The one line a usage error becomes, for these arguments after the program name.
    fn usage(args: &[&str]) -> String {
        let mut full = vec!["redshift-creds"];
        full.extend_from_slice(args);
        usage_line(&Cli::try_parse_from(full).unwrap_err())
    }

    #[test]
    fn usage_errors_become_one_line_from_the_kind_and_context() {
        let cases = [
            (
                &["get", "--cache", "sometimes"][..],
                "invalid value 'sometimes' for '--cache <MODE>' [possible values: auto, keyring, file, none] (see --help)",
            ),
            (
                &["get", "--duration-seconds", "abc"],
                "invalid value 'abc' for '--duration-seconds <SECONDS>': invalid digit found in string (see --help)",
            ),
            (
                &["get", "--duration-seconds"],
                "a value is required for '--duration-seconds <SECONDS>' but none was supplied (see --help)",
            ),
            (
                &["get", "--cach", "file"],
                "unexpected argument '--cach' found tip: a similar argument exists: '--cache' (see --help)",
            ),
            (
                &["get", "--no-such-flag"],
                "unexpected argument '--no-such-flag' found (see --help)",
            ),
            (&["bogus"], "unrecognized subcommand 'bogus' (see --help)"),
            (
                &["clear"],
                "the following required arguments were not provided: <NAME|--all> (see --help)",
            ),
            (
                &["get", "--with-iam", "--with-iam"],
                "the argument '--with-iam' cannot be used multiple times (see --help)",
            ),
            (
                &["clear", "x", "--all"],
                "the argument '[NAME]' cannot be used with '--all' (see --help)",
            ),
            (
                &["completions", "nosh"],
                "invalid value 'nosh' for '<SHELL>' [possible values: bash, elvish, fish, powershell, zsh] tip: a similar value exists: 'zsh' (see --help)",
            ),
        ];
        for (args, want) in cases {
            assert_eq!(usage(args), want, "{args:?}");
        }
        let none = usage(&[]);
        assert!(
            none.starts_with("a subcommand is required: get, exec, pgpass"),
            "{none}"
        );
        assert!(!none.contains('\n'), "{none}");
    }

    #[test]
    fn no_with_iam_turns_with_iam_off_and_the_last_one_wins() {
        let g = parse(&["--with-iam", "--no-with-iam"]);
        assert!(!g.with_iam && g.no_with_iam);
        let g = parse(&["--no-with-iam", "--with-iam"]);
        assert!(g.with_iam && !g.no_with_iam);
    }

    #[test]
    fn negative_numbers_reach_the_input_rules() {
        let g = parse(&["--duration-seconds", "-5"]);
        assert_eq!(g.duration_seconds, Some(-5));
    }
}
