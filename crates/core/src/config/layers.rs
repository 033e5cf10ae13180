//! One partial config per source (flags, environment, config file), each value with its origin, and the field-by-field merge that decides precedence.

use crate::cache::mode::CacheMode;
use crate::choice::Parsed;
use crate::cli::{ConnArgs, CredArgs};
use crate::config_file::FileConnection;
use crate::endpoint::{self, HostInfo};
use crate::env::{self, Env};
use crate::error::Error;
use crate::tls::SslMode;
use std::fmt;
use std::path::PathBuf;

/// Where a value in force came from, so errors and `doctor` can name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A command-line flag, such as `--region`.
    Flag(&'static str),
    /// An environment variable, such as `AWS_REGION`.
    Env(&'static str),
    /// A key of a named connection in the config file.
    File {
        /// The config file.
        path: PathBuf,
        /// The connection's name.
        connection: String,
        /// The key, such as `region`.
        key: &'static str,
    },
    /// Read from a Redshift host name (its cluster or workgroup, its
    /// region); the host came from the origin inside.
    HostName(Box<Origin>),
    /// Nothing named it: the built-in default.
    Default,
}

impl fmt::Display for Origin {
    /// The input as messages name it: `--region`, `AWS_REGION`,
    /// `region of connection "prod" in /path/config.toml`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Flag(name) | Origin::Env(name) => f.write_str(name),
            Origin::File {
                path,
                connection,
                key,
            } => write!(
                f,
                "{key} of connection \"{connection}\" in {}",
                path.display()
            ),
            Origin::HostName(host) => host.fmt(f),
            Origin::Default => f.write_str("the default"),
        }
    }
}

/// A value and where it came from.
#[derive(Debug, Clone)]
pub(crate) struct Sourced<T> {
    pub value: T,
    pub origin: Origin,
}

impl<T> Sourced<T> {
    /// The origin as messages name the input.
    pub fn input(&self) -> String {
        self.origin.to_string()
    }
}

/// One source's values; every field is optional.
#[derive(Debug, Default)]
pub(crate) struct Layer {
    pub host: Option<Sourced<String>>,
    pub port: Option<Sourced<i64>>,
    pub sslmode: Option<Sourced<Parsed<SslMode>>>,
    pub sslrootcert: Option<Sourced<PathBuf>>,
    pub cluster_identifier: Option<Sourced<String>>,
    pub workgroup: Option<Sourced<String>>,
    pub custom_domain_name: Option<Sourced<String>>,
    pub with_iam: Option<Sourced<bool>>,
    pub identity_center: Option<Sourced<bool>>,
    pub auto_create: Option<Sourced<bool>>,
    pub db_user: Option<Sourced<String>>,
    pub db_name: Option<Sourced<String>>,
    pub db_groups: Option<Sourced<Vec<String>>>,
    pub duration_seconds: Option<Sourced<i64>>,
    pub refresh_margin: Option<Sourced<i64>>,
    pub refresh_ahead: Option<Sourced<bool>>,
    pub lock_timeout: Option<Sourced<i64>>,
    pub api_timeout: Option<Sourced<i64>>,
    pub profile: Option<Sourced<String>>,
    pub region: Option<Sourced<String>>,
    pub endpoint_url: Option<Sourced<String>>,
    pub cache: Option<Sourced<Parsed<CacheMode>>>,
}

fn flag<T>(value: Option<T>, name: &'static str) -> Option<Sourced<T>> {
    value.map(|value| Sourced {
        value,
        origin: Origin::Flag(name),
    })
}

/// The flags the user typed.
pub(crate) fn flags(args: &CredArgs, conn: &ConnArgs) -> Layer {
    let on_off = |on: bool, off: bool| match (on, off) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    };
    Layer {
        host: flag(conn.host.clone(), "--host"),
        port: flag(conn.port, "--port"),
        sslmode: flag(conn.sslmode.clone(), "--sslmode"),
        sslrootcert: flag(conn.sslrootcert.clone(), "--sslrootcert"),
        cluster_identifier: flag(args.cluster_identifier.clone(), "--cluster-identifier"),
        workgroup: flag(args.workgroup.clone(), "--workgroup"),
        custom_domain_name: flag(args.custom_domain_name.clone(), "--custom-domain-name"),
        with_iam: match on_off(args.with_iam, args.no_with_iam) {
            Some(false) => flag(Some(false), "--no-with-iam"),
            other => flag(other, "--with-iam"),
        },
        identity_center: flag(args.identity_center.then_some(true), "--identity-center"),
        // Both spellings are named `--auto-create` in messages, as before.
        auto_create: flag(
            on_off(args.auto_create, args.no_auto_create),
            "--auto-create",
        ),
        db_user: flag(args.db_user.clone(), "--db-user"),
        db_name: flag(args.db_name.clone(), "--db-name"),
        db_groups: flag(
            (!args.db_groups.is_empty()).then(|| args.db_groups.clone()),
            "--db-groups",
        ),
        duration_seconds: flag(args.duration_seconds, "--duration-seconds"),
        refresh_margin: flag(args.refresh_margin, "--refresh-margin"),
        refresh_ahead: flag(args.no_refresh_ahead.then_some(false), "--no-refresh-ahead"),
        lock_timeout: flag(args.lock_timeout, "--lock-timeout"),
        api_timeout: flag(args.api_timeout, "--api-timeout"),
        profile: flag(args.profile.clone(), "--profile"),
        region: flag(args.region.clone(), "--region"),
        endpoint_url: flag(args.endpoint_url.clone(), "--endpoint-url"),
        cache: flag(args.cache.map(Parsed::Valid), "--cache"),
    }
}

/// The variables that stand for flags. A value that is not UTF-8 is refused
/// here, naming the variable, rather than read as unset.
pub(crate) fn environment(e: &dyn Env) -> Result<Layer, Error> {
    let var = |names: &[&'static str]| -> Result<Option<Sourced<String>>, Error> {
        let found = env::first_text(e, names).map_err(|n| Error::Usage(n.to_string()))?;
        Ok(found.map(|(value, name)| Sourced {
            value,
            origin: Origin::Env(name),
        }))
    };
    Ok(Layer {
        profile: var(&["AWS_PROFILE"])?,
        region: var(&["AWS_REGION", "AWS_DEFAULT_REGION"])?,
        endpoint_url: var(&["AWS_ENDPOINT_URL_REDSHIFT", "AWS_ENDPOINT_URL"])?,
        cache: var(&["REDSHIFT_CREDS_CACHE"])?.map(|s| Sourced {
            value: Parsed::new(&s.value),
            origin: s.origin,
        }),
        ..Layer::default()
    })
}

/// The named connection's keys.
pub(crate) fn file(c: &FileConnection, connection: &str, path: &std::path::Path) -> Layer {
    let at = FileKey { path, connection };
    Layer {
        host: at.sourced(c.host.clone(), "host"),
        port: at.sourced(c.port, "port"),
        sslmode: at.sourced(c.sslmode.clone(), "sslmode"),
        sslrootcert: at.sourced(c.sslrootcert.clone(), "sslrootcert"),
        cluster_identifier: at.sourced(c.cluster_identifier.clone(), "cluster_identifier"),
        workgroup: at.sourced(c.workgroup.clone(), "workgroup"),
        custom_domain_name: at.sourced(c.custom_domain_name.clone(), "custom_domain_name"),
        with_iam: at.sourced(c.with_iam, "with_iam"),
        identity_center: at.sourced(c.identity_center, "identity_center"),
        auto_create: at.sourced(c.auto_create, "auto_create"),
        db_user: at.sourced(c.db_user.clone(), "db_user"),
        db_name: at.sourced(c.db_name.clone(), "db_name"),
        db_groups: at.sourced(c.db_groups.clone(), "db_groups"),
        duration_seconds: at.sourced(c.duration_seconds, "duration_seconds"),
        refresh_margin: at.sourced(c.refresh_margin, "refresh_margin"),
        refresh_ahead: at.sourced(c.refresh_ahead, "refresh_ahead"),
        lock_timeout: None,
        api_timeout: None,
        profile: at.sourced(c.aws_profile.clone(), "aws_profile"),
        region: at.sourced(c.region.clone(), "region"),
        endpoint_url: at.sourced(c.endpoint_url.clone(), "endpoint_url"),
        cache: at.sourced(c.cache.clone(), "cache"),
    }
}

/// Where the file's values come from.
struct FileKey<'a> {
    path: &'a std::path::Path,
    connection: &'a str,
}

impl FileKey<'_> {
    fn sourced<T>(&self, value: Option<T>, key: &'static str) -> Option<Sourced<T>> {
        value.map(|value| Sourced {
            value,
            origin: Origin::File {
                path: self.path.to_path_buf(),
                connection: self.connection.to_string(),
                key,
            },
        })
    }
}

/// The three sources, before the merge.
pub(crate) struct Layers {
    pub flags: Layer,
    pub env: Layer,
    pub file: Layer,
}

/// What the host name in force says, and where the host came from.
pub(crate) type Inferred = Option<(HostInfo, Origin)>;

impl Layers {
    /// Reads the host name in force. A Redshift host name names its
    /// cluster's region, which stands with the host, just below an explicit
    /// region given the same way: from `--host` it yields only to
    /// `--region`; from the file's `host`, to the environment and to the
    /// file's own `region`.
    pub fn read_host_name(&mut self) -> Inferred {
        let host = self.flags.host.as_ref().or(self.file.host.as_ref())?;
        let info = endpoint::parse_host(&host.value)?;
        let origin = host.origin.clone();
        let layer = match origin {
            Origin::Flag(_) => &mut self.flags,
            _ => &mut self.file,
        };
        layer.region.get_or_insert_with(|| Sourced {
            value: info.region.clone(),
            origin: Origin::HostName(Box::new(origin.clone())),
        });
        Some((info, origin))
    }

    /// Merges field by field: flag, else environment, else file. The one
    /// place that decides precedence (defaults are each resolver's).
    pub fn merge(self) -> Layer {
        let Layers { flags, env, file } = self;
        macro_rules! merge {
            ($($field:ident),* $(,)?) => {
                Layer { $($field: flags.$field.or(env.$field).or(file.$field)),* }
            };
        }
        merge!(
            host,
            port,
            sslmode,
            sslrootcert,
            cluster_identifier,
            workgroup,
            custom_domain_name,
            with_iam,
            identity_center,
            auto_create,
            db_user,
            db_name,
            db_groups,
            duration_seconds,
            refresh_margin,
            refresh_ahead,
            lock_timeout,
            api_timeout,
            profile,
            region,
            endpoint_url,
            cache,
        )
    }
}
