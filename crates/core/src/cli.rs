//! The command line, as clap definitions only: names, help and raw values.

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Short-lived Amazon Redshift database credentials from IAM, cached in the OS
/// keyring, for psql, dbt and every other client.
#[derive(Debug, Parser)]
#[command(name = "redshift-creds", version, about, max_term_width = 100)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
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
    /// Check this machine: the cache store `auto` picks, AWS credentials, the config file, the lock directory.
    Doctor(DoctorArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff).
    Man,
}

/// Where cached credentials live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CacheMode {
    /// The OS keyring, or a private file when no keyring can be used.
    Auto,
    /// The OS keyring only; fail when it cannot be used.
    Keyring,
    /// A private file (0600 in a 0700 directory).
    File,
    /// No cache: call AWS every time.
    None,
}

/// What `get` prints on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// One JSON object: Version, DbUser, DbPassword, Expiration.
    Json,
    /// The password alone, for a tool's "password command" setting.
    Password,
    /// Shell `export` lines for PGHOST, PGPORT, PGDATABASE, PGUSER, PGPASSWORD, PGSSLMODE
    /// and, when there is one, PGSSLROOTCERT.
    Env,
}

/// The credential flags every command takes: the AWS CLI's, plus cache control.
#[derive(Debug, Args)]
pub struct CredArgs {
    /// A named connection from the config file ([connections.NAME]).
    #[arg(value_name = "NAME")]
    pub name: Option<String>,

    /// The cluster that holds the database.
    #[arg(long, value_name = "ID")]
    pub cluster_identifier: Option<String>,

    /// The database user to get credentials for (without the IAM: prefix).
    #[arg(long, value_name = "USER")]
    pub db_user: Option<String>,

    /// Use GetClusterCredentialsWithIAM: the database user is your IAM identity.
    #[arg(long)]
    pub with_iam: bool,

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

    /// The cluster's custom domain name, instead of --cluster-identifier (also with --with-iam).
    #[arg(long, value_name = "NAME")]
    pub custom_domain_name: Option<String>,

    /// The AWS profile to use (default: $AWS_PROFILE, else "default").
    #[arg(long, value_name = "AWS_PROFILE")]
    pub profile: Option<String>,

    /// The AWS region (default: $AWS_REGION, $AWS_DEFAULT_REGION, else the profile's region).
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

    /// Wait at most this long for another process that is refreshing [default: 30].
    #[arg(long, value_name = "SECONDS", allow_negative_numbers = true)]
    pub lock_timeout: Option<i64>,

    /// Give up on the AWS call, retries included, after this long [default: 20].
    #[arg(long, value_name = "SECONDS", allow_negative_numbers = true)]
    pub api_timeout: Option<i64>,

    /// Log what happens to stderr; repeat for more detail. RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// Where and how to connect: used by `--output env`, `exec` and `pgpass`.
#[derive(Debug, Args)]
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
    #[arg(long, value_name = "MODE")]
    pub sslmode: Option<String>,

    /// The CA certificate file to verify the server with [default: the system CA bundle].
    #[arg(long, value_name = "PATH")]
    pub sslrootcert: Option<std::path::PathBuf>,
}

/// `clear`: what to remove.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["name", "all"])))]
pub struct ClearArgs {
    /// The connection (or cluster, or workgroup) whose entries to remove.
    #[arg(value_name = "NAME")]
    pub name: Option<String>,

    /// Remove every cached entry.
    #[arg(long)]
    pub all: bool,
}

/// `doctor`: what to check against.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// The AWS profile to check (default: $AWS_PROFILE, else "default").
    #[arg(long, value_name = "AWS_PROFILE")]
    pub profile: Option<String>,

    /// The AWS region to use for the check.
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,

    /// Send the identity check to this URL instead of AWS.
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,
}

/// `get`: credentials on stdout.
#[derive(Debug, Args)]
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
#[derive(Debug, Args)]
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
#[derive(Debug, Args)]
pub struct PgpassArgs {
    #[command(flatten)]
    pub cred: CredArgs,

    #[command(flatten)]
    pub conn: ConnArgs,

    /// Keep running, rewriting the line before each password expires.
    #[arg(long)]
    pub watch: bool,
}

/// `proxy`: a local PostgreSQL proxy that logs every upstream connection in with the IAM password.
#[derive(Debug, Args)]
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
}

/// Flattens a clap usage error into one line: the message, the valid values
/// when clap lists them, and where to find help.
pub fn usage_line(e: &clap::Error) -> String {
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

/// The completion script for `shell`.
pub fn completions(shell: clap_complete::Shell) -> Vec<u8> {
    use clap::CommandFactory;
    let mut text = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "redshift-creds", &mut text);
    text
}

/// The man page, as roff.
pub fn man_page() -> std::io::Result<Vec<u8>> {
    use clap::CommandFactory;
    let mut text = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut text)?;
    Ok(text)
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

    #[test]
    fn negative_numbers_reach_the_input_rules() {
        let g = parse(&["--duration-seconds", "-5"]);
        assert_eq!(g.duration_seconds, Some(-5));
    }
}
