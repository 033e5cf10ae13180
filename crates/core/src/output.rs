//! What goes on stdout: the JSON credential-process contract (or token contract), the bare password or token, or shell `export` lines.

use crate::credential::Credential;
use crate::endpoint::Endpoint;
use crate::tls::Tls;
use crate::token::IdcToken;
use clap::ValueEnum;
use serde::Serialize;
use std::io::{self, Write};
use zeroize::Zeroizing;

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

/// The contract object: the AWS CLI's keys plus `Version`.
#[derive(Serialize)]
struct Contract<'a> {
    #[serde(rename = "Version")]
    version: u32,
    #[serde(rename = "DbUser")]
    db_user: &'a str,
    #[serde(rename = "DbPassword")]
    db_password: &'a str,
    #[serde(rename = "Expiration")]
    expiration: String,
}

/// The token contract (`schemas/token.schema.json`).
#[derive(Serialize)]
struct TokenContract<'a> {
    #[serde(rename = "Version")]
    version: u32,
    #[serde(rename = "Token")]
    token: &'a str,
    #[serde(rename = "TokenType")]
    token_type: &'a str,
    #[serde(rename = "ExpirationTime")]
    expiration_time: String,
}

/// Writes an Identity Center token as JSON or alone (`password`: for a
/// driver's `token=` setting), with a trailing newline, in one write from a
/// buffer that is zeroized afterwards. `env` never reaches here: a token is
/// not a password.
pub fn write_token(out: &mut dyn Write, format: OutputFormat, t: &IdcToken) -> io::Result<()> {
    let mut buf = Zeroizing::new(Vec::with_capacity(t.expose_token().len() + 128));
    match format {
        OutputFormat::Json => {
            let contract = TokenContract {
                version: 1,
                token: t.expose_token(),
                token_type: t.token_type.as_str(),
                expiration_time: t.expiration_rfc3339(),
            };
            serde_json::to_writer(&mut *buf, &contract).map_err(io::Error::other)?;
        }
        OutputFormat::Password => buf.extend_from_slice(t.expose_token().as_bytes()),
        OutputFormat::Env => unreachable!("a token is refused for env output"),
    }
    buf.push(b'\n');
    out.write_all(&buf)?;
    out.flush()
}

/// Where a client connects, with what: everything the PG* variables carry.
pub struct Login<'a> {
    /// The credential.
    pub credential: &'a Credential,
    /// Host and port.
    pub endpoint: &'a Endpoint,
    /// The database, when one was named.
    pub database: Option<&'a str>,
    /// TLS mode and root certificate.
    pub tls: &'a Tls,
}

/// The libpq environment for a connection, in a fixed order. The password is
/// in a buffer that is zeroized on drop.
pub fn pg_vars(t: &Login<'_>) -> Vec<(&'static str, Zeroizing<String>)> {
    let mut v = vec![
        ("PGHOST", Zeroizing::new(t.endpoint.host.clone())),
        ("PGPORT", Zeroizing::new(t.endpoint.port.to_string())),
    ];
    if let Some(db) = t.database {
        v.push(("PGDATABASE", Zeroizing::new(db.to_string())));
    }
    v.push(("PGUSER", Zeroizing::new(t.credential.db_user.clone())));
    v.push((
        "PGPASSWORD",
        Zeroizing::new(t.credential.expose_password().to_string()),
    ));
    v.push(("PGSSLMODE", Zeroizing::new(t.tls.mode.as_str().to_string())));
    if let Some(root) = &t.tls.root_cert {
        v.push((
            "PGSSLROOTCERT",
            Zeroizing::new(root.to_string_lossy().into_owned()),
        ));
    }
    v
}

/// Appends `value`, quoted for sh, bash and zsh, to `out`: inside single
/// quotes nothing is special, and a single quote itself is written as `'\''`.
fn sh_quote_into(out: &mut String, value: &str) {
    out.push('\'');
    for c in value.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
}

/// Writes `export NAME='value'` lines for a connection, in one write.
pub fn write_env(out: &mut dyn Write, t: &Login<'_>) -> io::Result<()> {
    let vars = pg_vars(t);
    // Sized for the worst case up front, so that no reallocation leaves a
    // copy of the password behind.
    let most = vars.iter().map(|(n, v)| n.len() + v.len() * 4 + 11).sum();
    let mut buf = Zeroizing::new(String::with_capacity(most));
    for (name, value) in vars {
        buf.push_str("export ");
        buf.push_str(name);
        buf.push('=');
        sh_quote_into(&mut buf, &value);
        buf.push('\n');
    }
    out.write_all(buf.as_bytes())?;
    out.flush()
}

/// Writes the credential as JSON or the bare password, with a trailing
/// newline, in one write from a buffer that is zeroized afterwards.
pub fn write(out: &mut dyn Write, format: OutputFormat, c: &Credential) -> io::Result<()> {
    let mut buf = Zeroizing::new(Vec::with_capacity(256));
    match format {
        OutputFormat::Json => {
            let contract = Contract {
                version: 1,
                db_user: &c.db_user,
                db_password: c.expose_password(),
                expiration: c.expiration_rfc3339(),
            };
            serde_json::to_writer(&mut *buf, &contract).map_err(io::Error::other)?;
        }
        OutputFormat::Password => buf.extend_from_slice(c.expose_password().as_bytes()),
        OutputFormat::Env => unreachable!("env output goes through write_env"),
    }
    buf.push(b'\n');
    out.write_all(&buf)?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    fn cred() -> Credential {
        Credential {
            db_user: "IAM:temp_creds_user".into(),
            password: SecretString::from(
                "EXAMPLEjArE3hcnQj8zt4XQj9Xtma8oxYEM8OyxpDHwXVPyJYBDm/gqX2Eeaq6P3DgTzgPg==",
            ),
            expiration: 1_481_231_573,
        }
    }

    #[test]
    fn json_has_the_aws_cli_keys_plus_version() {
        let mut out = Vec::new();
        write(&mut out, OutputFormat::Json, &cred()).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"Version\":1,\"DbUser\":\"IAM:temp_creds_user\",\"DbPassword\":\
             \"EXAMPLEjArE3hcnQj8zt4XQj9Xtma8oxYEM8OyxpDHwXVPyJYBDm/gqX2Eeaq6P3DgTzgPg==\",\
             \"Expiration\":\"2016-12-08T21:12:53Z\"}\n"
        );
    }

    fn run_in(shell: &str, script: &str) -> Option<String> {
        let out = std::process::Command::new(shell)
            .arg("-c")
            .arg(script)
            .output()
            .ok()?;
        assert!(
            out.status.success(),
            "{shell}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(String::from_utf8(out.stdout).unwrap())
    }

    /// Evaluates `export X=<quoted>` in a real shell and reads `$X` back.
    fn round_trip(shell: &str, value: &str) -> Option<String> {
        let mut quoted = String::new();
        sh_quote_into(&mut quoted, value);
        let script = format!("export X={quoted}\nprintf '%s' \"$X\"");
        run_in(shell, &script)
    }

    #[test]
    fn shell_quoting_survives_odd_characters() {
        let odd = [
            "IAM:alice",
            "it's",
            "'",
            "''",
            "a\"b",
            "$(touch /tmp/pwned)",
            "`id`",
            "back\\slash",
            "new\nline",
            "tab\there",
            "semi;colon & amp | pipe > gt < lt",
            "glob * ? [a]",
            "!bang !! ^caret",
            "unicodé ☃",
            "EXAMPLEjArE3hcnQj8zt4XQj9Xtma8oxYEM8OyxpDHwXVPyJYBDm/gqX2Eeaq6P3DgTzgPg==",
            "",
        ];
        for shell in ["sh", "bash", "zsh"] {
            for value in odd {
                match round_trip(shell, value) {
                    Some(back) => assert_eq!(back, value, "{shell}"),
                    None => break, // that shell is not installed
                }
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]
        #[test]
        fn shell_quoting_round_trips_any_text(value in "[^\\x00]{0,40}") {
            for shell in ["sh", "bash"] {
                if let Some(back) = round_trip(shell, &value) {
                    proptest::prop_assert_eq!(back, value.clone());
                }
            }
        }
    }

    #[test]
    fn env_output_exports_the_pg_variables() {
        let tls = Tls {
            mode: crate::tls::SslMode::VerifyFull,
            root_cert: Some("/etc/ssl/certs/ca-certificates.crt".into()),
            note: None,
        };
        let endpoint = Endpoint {
            host: "c.abc.us-east-1.redshift.amazonaws.com".into(),
            port: 5439,
        };
        let c = cred();
        let t = Login {
            credential: &c,
            endpoint: &endpoint,
            database: Some("dev"),
            tls: &tls,
        };
        let mut out = Vec::new();
        write_env(&mut out, &t).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "export PGHOST='c.abc.us-east-1.redshift.amazonaws.com'\n\
             export PGPORT='5439'\n\
             export PGDATABASE='dev'\n\
             export PGUSER='IAM:temp_creds_user'\n\
             export PGPASSWORD='EXAMPLEjArE3hcnQj8zt4XQj9Xtma8oxYEM8OyxpDHwXVPyJYBDm/gqX2Eeaq6P3DgTzgPg=='\n\
             export PGSSLMODE='verify-full'\n\
             export PGSSLROOTCERT='/etc/ssl/certs/ca-certificates.crt'\n"
        );
    }

    #[test]
    fn a_token_prints_as_its_contract_or_alone() {
        let t = IdcToken {
            token: SecretString::from("tok.AbC/+="),
            token_type: crate::token::TokenType::SubjectToken,
            expiration: 1_481_231_573,
        };
        let mut out = Vec::new();
        write_token(&mut out, OutputFormat::Json, &t).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"Version\":1,\"Token\":\"tok.AbC/+=\",\"TokenType\":\"SUBJECT_TOKEN\",\
             \"ExpirationTime\":\"2016-12-08T21:12:53Z\"}\n"
        );
        let mut out = Vec::new();
        write_token(&mut out, OutputFormat::Password, &t).unwrap();
        assert_eq!(out, b"tok.AbC/+=\n");
    }

    #[test]
    fn password_output_is_the_password_and_a_newline() {
        let mut out = Vec::new();
        write(&mut out, OutputFormat::Password, &cred()).unwrap();
        assert_eq!(
            out,
            b"EXAMPLEjArE3hcnQj8zt4XQj9Xtma8oxYEM8OyxpDHwXVPyJYBDm/gqX2Eeaq6P3DgTzgPg==\n"
        );
    }
}
