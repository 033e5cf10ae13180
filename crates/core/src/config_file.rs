//! The TOML config file: named connections, read strictly, with errors that give the line and column.

use crate::choice::Parsed;
use crate::cli::CacheMode;
use crate::env::{self, Env};
use crate::error::Error;
use crate::tls::SslMode;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// `[connections.NAME]` tables.
    #[serde(default)]
    pub connections: BTreeMap<String, FileConnection>,
}

/// One `[connections.NAME]` table. Every key is optional; an unknown key is an error.
/// `cache` and `sslmode` are parsed here; a value that names nothing is kept
/// so that, if it is the one in force, the message names its key and file.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConnection {
    pub cluster_identifier: Option<String>,
    pub workgroup: Option<String>,
    pub host: Option<String>,
    pub port: Option<i64>,
    pub db_user: Option<String>,
    pub db_name: Option<String>,
    pub db_groups: Option<Vec<String>>,
    pub auto_create: Option<bool>,
    pub duration_seconds: Option<i64>,
    pub with_iam: Option<bool>,
    pub custom_domain_name: Option<String>,
    pub region: Option<String>,
    pub aws_profile: Option<String>,
    pub endpoint_url: Option<String>,
    pub refresh_margin: Option<i64>,
    pub refresh_ahead: Option<bool>,
    pub cache: Option<Parsed<CacheMode>>,
    pub sslmode: Option<Parsed<SslMode>>,
    pub sslrootcert: Option<PathBuf>,
    /// Where `redshift-creds proxy` serves this connection (`--listen` values).
    pub listen: Option<Vec<String>>,
}

/// The largest config file we read; anything bigger is a mistake.
const MAX_LEN: u64 = 1024 * 1024;

/// Where the config file is: `REDSHIFT_CREDS_CONFIG`, else
/// `<config dir>/redshift-creds/config.toml`. The variable is a path, so it
/// need not be UTF-8.
pub fn path(e: &dyn Env) -> Option<PathBuf> {
    env::path(e, "REDSHIFT_CREDS_CONFIG")
        .or_else(|| dirs::config_dir().map(|d| d.join("redshift-creds").join("config.toml")))
}

/// Reads and parses the file at `path`. A missing file is `Ok(None)`.
pub fn load(path: &Path) -> Result<Option<ConfigFile>, Error> {
    use std::io::Read;
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Error::Usage(format!(
                "cannot read the config file {}: {e}",
                path.display()
            )));
        }
    };
    check_writers(&file, path)?;
    let mut bytes = Vec::new();
    file.take(MAX_LEN + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| {
            Error::Usage(format!(
                "cannot read the config file {}: {e}",
                path.display()
            ))
        })?;
    if bytes.len() as u64 > MAX_LEN {
        return Err(Error::Usage(format!(
            "the config file {} is larger than 1 MiB",
            path.display()
        )));
    }
    let text = String::from_utf8(bytes)
        .map_err(|_| Error::Usage(format!("the config file {} is not UTF-8", path.display())))?;
    parse(&text)
        .map(Some)
        .map_err(|e| Error::Usage(format!("the config file {}: {e}", path.display())))
}

/// Refuses a config file that another user could have written: the file, or
/// a directory on its path inside the home directory, writable by anyone but
/// this user or root (OpenSSH's StrictModes). Its `endpoint_url` would
/// receive our signed requests.
fn check_writers(file: &std::fs::File, path: &Path) -> Result<(), Error> {
    crate::private_fs::check_trusted_file(file, path, dirs::home_dir().as_deref()).map_err(|rule| {
        Error::Usage(format!(
            "refusing the config file {}: {rule}",
            path.display()
        ))
    })
}

/// Parses config text. The error says the line and column and what was expected.
pub fn parse(text: &str) -> Result<ConfigFile, String> {
    let file: ConfigFile = toml::from_str(text).map_err(|e| {
        let message = e.message().trim().replace('\n', " ");
        match e.span() {
            Some(span) => {
                let (line, column) = line_column(text, span.start);
                format!("line {line}, column {column}: {message}")
            }
            None => message,
        }
    })?;
    for (name, c) in &file.connections {
        check_name(name)
            .map_err(|rule| format!("connection name \"{}\": {rule}", name.escape_debug()))?;
        for spec in c.listen.iter().flatten() {
            check_listen(spec).map_err(|rule| {
                format!(
                    "connection \"{name}\": listen {}: {rule}",
                    crate::error::display_value(spec)
                )
            })?;
        }
    }
    Ok(file)
}

/// Connection names are what users type: keep them plain.
pub fn check_name(name: &str) -> Result<(), &'static str> {
    let ok = (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err("must be 1 to 64 letters, digits, '-', '_' or '.', starting with a letter or digit")
    }
}

/// A `listen` value: `127.0.0.1:PORT`, `[::1]:PORT` (loopback only) or `unix:DIR`.
pub fn check_listen(spec: &str) -> Result<(), &'static str> {
    if let Some(dir) = spec.strip_prefix("unix:") {
        return if dir.is_empty() {
            Err("unix: needs a directory")
        } else {
            Ok(())
        };
    }
    match spec.parse::<std::net::SocketAddr>() {
        Ok(a) if a.ip().is_loopback() => Ok(()),
        Ok(_) => Err("only loopback addresses are allowed (anyone who can connect gets a session)"),
        Err(_) => Err("expected 127.0.0.1:PORT, [::1]:PORT or unix:DIR"),
    }
}

/// This program's own directory under the user's config directory
/// (`$XDG_CONFIG_HOME/redshift-creds`), for files it makes, such as the proxy's local CA.
pub fn config_dir() -> Option<PathBuf> {
    dirs::config_dir().map(|d| d.join("redshift-creds"))
}

fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    (line, column)
}

/// Finds the named connection. A name that is not in the file, or a missing
/// file, is a usage error naming the file.
pub fn connection(env: &dyn Env, name: &str) -> Result<(FileConnection, PathBuf), Error> {
    if let Err(rule) = check_name(name) {
        return Err(Error::invalid("connection name", name, rule));
    }
    let path = path(env).ok_or_else(|| {
        Error::Usage(
            "no config directory is known; set REDSHIFT_CREDS_CONFIG to the config file".into(),
        )
    })?;
    let file = load(&path)?.ok_or_else(|| {
        Error::Usage(format!(
            "connection \"{name}\" needs a config file, and {} does not exist",
            path.display()
        ))
    })?;
    match file.connections.get(name) {
        Some(c) => Ok((c.clone(), path)),
        None => {
            let known: Vec<&str> = file.connections.keys().map(String::as_str).collect();
            Err(Error::Usage(format!(
                "no connection \"{name}\" in {}; it has: {}",
                path.display(),
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_full_connection() {
        let f = parse(
            r#"
            [connections.prod]
            cluster_identifier = "examplecluster"
            db_user = "alice"
            db_name = "dev"
            db_groups = ["analysts", "readers"]
            auto_create = true
            duration_seconds = 3600
            region = "us-east-1"
            aws_profile = "prod"
            port = 5439
            sslmode = "verify-full"
            "#,
        )
        .unwrap();
        let c = &f.connections["prod"];
        assert_eq!(c.cluster_identifier.as_deref(), Some("examplecluster"));
        assert_eq!(
            c.db_groups.as_deref(),
            Some(&["analysts".to_string(), "readers".to_string()][..])
        );
        assert_eq!(c.duration_seconds, Some(3600));
    }

    #[test]
    fn an_unknown_key_is_an_error_that_names_it() {
        let err = parse("[connections.prod]\ncluster_identifier = \"c\"\ndb_usr = \"alice\"\n")
            .unwrap_err();
        assert!(
            err.starts_with("line 3, column 1: unknown field `db_usr`"),
            "{err}"
        );
        assert!(err.contains("expected one of"), "{err}");
        let err = parse("[connection.prod]\n").unwrap_err();
        assert!(err.contains("unknown field `connection`"), "{err}");
    }

    #[test]
    fn syntax_and_type_errors_give_line_and_column() {
        let err = parse("[connections.prod]\nport = \"5439\"\n").unwrap_err();
        assert!(err.starts_with("line 2, column 8:"), "{err}");
        assert!(err.contains("expected i64"), "{err}");
        let err = parse("[connections.prod]\ndb_user = alice\n").unwrap_err();
        assert!(err.starts_with("line 2, column 11:"), "{err}");
        let err = parse("[connections.prod\n").unwrap_err();
        assert!(err.starts_with("line 1, column"), "{err}");
    }

    #[test]
    fn listen_takes_loopback_and_unix_sockets_only() {
        let f = parse(
            "[connections.prod]\nlisten = [\"127.0.0.1:15439\", \"[::1]:5439\", \"unix:/run/rc\"]\n",
        )
        .unwrap();
        assert_eq!(f.connections["prod"].listen.as_ref().unwrap().len(), 3);
        let err = parse("[connections.prod]\nlisten = [\"10.0.0.1:5439\"]\n").unwrap_err();
        assert_eq!(
            err,
            "connection \"prod\": listen \"10.0.0.1:5439\": only loopback addresses are allowed \
             (anyone who can connect gets a session)"
        );
        assert!(parse("[connections.p]\nlisten = [\"unix:\"]\n").is_err());
        assert!(parse("[connections.p]\nlisten = [\"localhost\"]\n").is_err());
        assert!(parse("[connections.p]\nlisten = \"127.0.0.1:1\"\n").is_err());
    }

    #[test]
    fn connection_names_are_plain() {
        assert!(
            parse("[connections.\"a b\"]\n")
                .unwrap_err()
                .contains("connection name \"a b\"")
        );
        assert!(check_name("prod-eu_1.x").is_ok());
        assert!(
            check_name("").is_err() && check_name("-x").is_err() && check_name("../x").is_err()
        );
    }
}
