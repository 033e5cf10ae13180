//! The TOML config file: named connections, read strictly, with errors that give the line and column.

use crate::cache::mode::CacheMode;
use crate::choice::Parsed;
use crate::env::{self, Env};
use crate::error::Error;
use crate::tls::SslMode;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Declares a table of the file with the proxy's service keys (see [`Service`]) as its last
/// fields, and its `service()` (for [`Service`] itself, a copy): the one list of those keys. serde's `flatten` would say it
/// more plainly, but it does not work with `deny_unknown_fields`.
macro_rules! with_service_keys {
    ($(#[$attr:meta])* pub struct $name:ident {
        $($(#[$field_attr:meta])* pub $field:ident: $ty:ty,)*
    }) => {
        $(#[$attr])*
        pub struct $name {
            $($(#[$field_attr])* pub $field: $ty,)*
            pub http: Option<String>,
            pub max_connections: Option<i64>,
            pub shutdown_timeout: Option<i64>,
            pub min_shutdown_delay: Option<i64>,
            pub structured_logs: Option<bool>,
            pub allow_uid: Option<Vec<u32>>,
        }

        impl $name {
            /// This table's service keys.
            pub fn service(&self) -> Service {
                Service {
                    http: self.http.clone(),
                    max_connections: self.max_connections,
                    shutdown_timeout: self.shutdown_timeout,
                    min_shutdown_delay: self.min_shutdown_delay,
                    structured_logs: self.structured_logs,
                    allow_uid: self.allow_uid.clone(),
                }
            }
        }
    };
}

with_service_keys! {
    /// The whole file. Its service keys are `redshift-creds proxy --all`'s; a connection's
    /// own keys of the same names apply when it is served alone.
    #[derive(Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct ConfigFile {
        /// `[connections.NAME]` tables.
        #[serde(default)]
        pub connections: BTreeMap<String, FileConnection>,
    }
}

with_service_keys! {
    /// The proxy's service options as written in the file, each `None` when absent:
    /// the keys of `--http`, `--max-connections`, `--shutdown-timeout`,
    /// `--min-shutdown-delay`, `--structured-logs` and `--allow-uid`.
    #[derive(Debug, Default, Clone, PartialEq, Eq)]
    pub struct Service {}
}

impl Service {
    /// Each key of `self`, else of `under` (a connection's keys over the top level's).
    pub fn or(self, under: Service) -> Service {
        Service {
            http: self.http.or(under.http),
            max_connections: self.max_connections.or(under.max_connections),
            shutdown_timeout: self.shutdown_timeout.or(under.shutdown_timeout),
            min_shutdown_delay: self.min_shutdown_delay.or(under.min_shutdown_delay),
            structured_logs: self.structured_logs.or(under.structured_logs),
            allow_uid: self.allow_uid.or(under.allow_uid),
        }
    }

    /// Whether no key is set.
    pub fn is_empty(&self) -> bool {
        *self == Service::default()
    }
}

with_service_keys! {
    /// One `[connections.NAME]` table. Every key is optional; an unknown key is an error.
    /// `cache` and `sslmode` are parsed here; a value that names nothing is kept
    /// so that, if it is the one in force, the message names its key and file.
    /// Its service keys apply when this connection is served alone.
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
        /// Ask for an Identity Center token (GetIdentityCenterAuthToken), not a password.
        pub identity_center: Option<bool>,
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
        /// IAM Identity Center browser sign-in: the issuer URL and its region (`--idc-issuer-url`, `--idc-region`).
        pub idc_issuer_url: Option<String>,
        pub idc_region: Option<String>,
    }
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
                let message = type_mismatch(text, span, &message).unwrap_or(message);
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

/// Where a `listen` value says to serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAt {
    /// A loopback TCP address (port 0 picks one).
    Tcp(std::net::SocketAddr),
    /// A directory for a libpq-style socket `DIR/.s.PGSQL.PORT`.
    Unix(PathBuf),
}

/// A `listen` value (in the file or `--listen`): `127.0.0.1:PORT`, `[::1]:PORT` (loopback
/// only: the proxy hands out database sessions without a password) or `unix:DIR`. The one
/// home of this rule: the proxy command builds the engine's listen addresses from the result.
pub fn check_listen(spec: &str) -> Result<ListenAt, &'static str> {
    if let Some(dir) = spec.strip_prefix("unix:") {
        return if dir.is_empty() {
            Err("unix: needs a directory")
        } else {
            Ok(ListenAt::Unix(PathBuf::from(dir)))
        };
    }
    match spec.parse::<std::net::SocketAddr>() {
        Ok(a) if a.ip().is_loopback() => Ok(ListenAt::Tcp(a)),
        Ok(_) => Err("only loopback addresses are allowed (anyone who can connect gets a session)"),
        Err(_) => Err("expected 127.0.0.1:PORT, [::1]:PORT or unix:DIR"),
    }
}

/// This program's own directory under the user's config directory
/// (`$XDG_CONFIG_HOME/redshift-creds`), for files it makes, such as the proxy's local CA.
pub fn config_dir() -> Option<PathBuf> {
    dirs::config_dir().map(|d| d.join("redshift-creds"))
}

/// The kinds of TOML value a key can want or be given, in the words of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Number,
    Decimal,
    Boolean,
    Text,
    List,
    Table,
}

impl Kind {
    /// The kind serde names in "expected ...".
    fn expected(what: &str) -> Option<Kind> {
        Some(match what {
            "i8" | "i16" | "i32" | "i64" | "u8" | "u16" | "u32" | "u64" => Kind::Number,
            "f32" | "f64" => Kind::Decimal,
            "a boolean" => Kind::Boolean,
            "a string" | "path string" | "a character" => Kind::Text,
            "a sequence" => Kind::List,
            w if w == "a map" || w.starts_with("struct ") => Kind::Table,
            _ => return None,
        })
    }

    /// The kind serde names in "invalid type: ...".
    fn found(what: &str) -> Option<Kind> {
        let word = what.split([' ', '`']).next()?;
        Some(match word {
            "integer" => Kind::Number,
            "floating" => Kind::Decimal,
            "boolean" => Kind::Boolean,
            "string" => Kind::Text,
            "sequence" => Kind::List,
            "map" => Kind::Table,
            _ => return None,
        })
    }

    fn noun(self) -> &'static str {
        match self {
            Kind::Number => "a number",
            Kind::Decimal => "a decimal number",
            Kind::Boolean => "true or false",
            Kind::Text => "a string",
            Kind::List => "a list",
            Kind::Table => "a table",
        }
    }
}

/// serde's "invalid type: string \"25439\", expected i64", said for the key
/// and with the fix: "port must be a number, not a string: write 25439
/// without quotes". `None` for any other error (it is kept as serde says it).
fn type_mismatch(text: &str, span: std::ops::Range<usize>, message: &str) -> Option<String> {
    let (found, expected) = message
        .strip_prefix("invalid type: ")?
        .rsplit_once(", expected ")?;
    let (want, got) = (Kind::expected(expected)?, Kind::found(found)?);
    let key = key_at(text, span.start)?;
    let written = text.get(span)?.trim();
    let unquoted = written.trim_matches(['"', '\'']);
    // The hints that echo the value echo only a short, one-line one.
    let plain = written.len() <= 64 && !written.chars().any(char::is_control);
    let hint = match (want, got) {
        (Kind::Number, Kind::Text) if unquoted.parse::<i64>().is_ok() => {
            format!(": write {unquoted} without quotes")
        }
        (Kind::Boolean, Kind::Text)
            if unquoted.eq_ignore_ascii_case("true") || unquoted.eq_ignore_ascii_case("false") =>
        {
            format!(": write {} without quotes", unquoted.to_ascii_lowercase())
        }
        (Kind::Number, Kind::Decimal) => ": write a whole number".to_owned(),
        (Kind::Text, Kind::Number | Kind::Decimal | Kind::Boolean) if plain => {
            format!(": write \"{written}\" in quotes")
        }
        (Kind::List, Kind::Text) if plain => format!(": write [{written}]"),
        _ => String::new(),
    };
    Some(format!(
        "{key} must be {}, not {}{hint}",
        want.noun(),
        got.noun()
    ))
}

/// The key whose value holds byte `offset`: `port` for a key of a
/// connection, else its dotted path (`connections.prod`).
fn key_at(text: &str, offset: usize) -> Option<String> {
    fn walk(table: &toml::de::DeTable<'_>, offset: usize, path: &mut Vec<String>) -> bool {
        for (key, value) in table {
            path.push(key.get_ref().to_string());
            let holds = value.span().contains(&offset);
            match value.get_ref() {
                toml::de::DeValue::Table(inner) if walk(inner, offset, path) => return true,
                _ if holds => return true,
                _ => {}
            }
            path.pop();
        }
        false
    }
    let doc = toml::de::DeTable::parse(text).ok()?;
    let mut path = Vec::new();
    if !walk(doc.get_ref(), offset, &mut path) {
        return None;
    }
    Some(match path.as_slice() {
        [top, _, key] if top == "connections" => key.clone(),
        _ => path.join("."),
    })
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
        assert_eq!(
            err,
            "line 2, column 8: port must be a number, not a string: write 5439 without quotes"
        );
        let err = parse("[connections.prod]\ndb_user = alice\n").unwrap_err();
        assert!(err.starts_with("line 2, column 11:"), "{err}");
        let err = parse("[connections.prod\n").unwrap_err();
        assert!(err.starts_with("line 1, column"), "{err}");
    }

    #[test]
    fn a_value_of_the_wrong_type_is_said_in_words_with_the_fix() {
        for (toml, said) in [
            (
                "auto_create = \"true\"",
                "auto_create must be true or false, not a string: write true without quotes",
            ),
            (
                "auto_create = 1",
                "auto_create must be true or false, not a number",
            ),
            (
                "db_user = 42",
                "db_user must be a string, not a number: write \"42\" in quotes",
            ),
            (
                "sslrootcert = true",
                "sslrootcert must be a string, not true or false: write \"true\" in quotes",
            ),
            (
                "sslmode = 1",
                "sslmode must be a string, not a number: write \"1\" in quotes",
            ),
            (
                "db_groups = \"analysts\"",
                "db_groups must be a list, not a string: write [\"analysts\"]",
            ),
            (
                "db_groups = [\"a\", 7]",
                "db_groups must be a string, not a number: write \"7\" in quotes",
            ),
            (
                "duration_seconds = 900.5",
                "duration_seconds must be a number, not a decimal number: write a whole number",
            ),
            ("port = \"fifty\"", "port must be a number, not a string"),
            (
                "refresh_margin = '300'",
                "refresh_margin must be a number, not a string: write 300 without quotes",
            ),
        ] {
            let err = parse(&format!("[connections.prod]\n{toml}\n")).unwrap_err();
            let message = err.split_once(": ").map(|(_, m)| m).unwrap_or(&err);
            assert_eq!(message, said, "{toml}");
            assert!(err.starts_with("line 2, column "), "{err}");
        }
        // Inline tables and dotted keys find the key too.
        let err = parse("connections = { prod = { port = \"1\" } }\n").unwrap_err();
        assert!(
            err.ends_with("port must be a number, not a string: write 1 without quotes"),
            "{err}"
        );
        let err = parse("connections.prod.with_iam = \"yes\"\n").unwrap_err();
        assert!(
            err.ends_with("with_iam must be true or false, not a string"),
            "{err}"
        );
        // A connection that is not a table.
        let err = parse("[connections]\nprod = 5\n").unwrap_err();
        assert!(
            err.ends_with("connections.prod must be a table, not a number"),
            "{err}"
        );
    }

    #[test]
    fn check_listen_gives_the_address_it_accepts() {
        assert_eq!(
            check_listen("127.0.0.1:15439"),
            Ok(ListenAt::Tcp("127.0.0.1:15439".parse().unwrap()))
        );
        assert_eq!(
            check_listen("[::1]:0"),
            Ok(ListenAt::Tcp("[::1]:0".parse().unwrap()))
        );
        assert_eq!(
            check_listen("unix:/run/x"),
            Ok(ListenAt::Unix("/run/x".into()))
        );
        for (bad, rule) in [
            ("0.0.0.0:5439", "only loopback"),
            ("10.1.2.3:5439", "only loopback"),
            ("[::]:1", "only loopback"),
            ("localhost", "expected 127.0.0.1:PORT"),
            ("", "expected 127.0.0.1:PORT"),
            ("unix:", "unix: needs a directory"),
        ] {
            let e = check_listen(bad).unwrap_err();
            assert!(e.starts_with(rule), "{bad}: {e}");
        }
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
